#include "studio_settings.h"

#include <algorithm>

#include "framesmith/request_json.h"

namespace framesmith::app {

StudioSettings load_settings(QSettings& s) {
  StudioSettings st;
  st.stored = s.contains("job/params");
  st.model_dir = s.value("model/dir").toString();
  st.output_dir = s.value("job/output_dir").toString();
  st.image_path = s.value("job/image").toString();
  st.crf = std::clamp(s.value("job/crf", 16).toInt(), 0, 51);
  st.randomize_seed = s.value("job/randomize_seed", false).toBool();
  const QString json = s.value("job/params").toString();
  if (!json.isEmpty()) {
    GenerationRequest r;
    try {
      request_from_json(json.toStdString(), r);
      st.params = r;
    } catch (const std::exception&) {
      // A settings file from another version with values now out of range: start from defaults.
    }
  }
  st.params.model_dir = st.model_dir.toStdString();
  return st;
}

void save_settings(QSettings& s, const StudioSettings& st) {
  GenerationRequest params = st.params;
  params.image = Frames{};
  s.setValue("model/dir", st.model_dir);
  s.setValue("job/output_dir", st.output_dir);
  s.setValue("job/image", st.image_path);
  s.setValue("job/crf", st.crf);
  s.setValue("job/randomize_seed", st.randomize_seed);
  s.setValue("job/params", QString::fromStdString(request_to_json(params)));
  s.sync();
}

}  // namespace framesmith::app
