#include "job_output.h"

#include <sys/stat.h>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QRegularExpression>
#include <QSaveFile>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "framesmith/error.h"
#include "framesmith/request_json.h"
#include "png_export.h"
#include "video_concat.h"
#include "video_reader.h"
#include "video_writer.h"

namespace framesmith::app {
namespace {

constexpr const char* kSavedOutputFile = "output.json";

std::string stem_of(const std::string& path) {
  const QFileInfo fi(QString::fromStdString(path));
  return (fi.dir().path() + "/" + fi.completeBaseName()).toStdString();
}

void make_folder(const std::string& path, const char* what) {
  const QString dir = QString::fromStdString(path);
  const QFileInfo fi(dir);
  if (fi.isDir()) return;
  if (fi.exists()) throw Error(path + ": " + what + " is a file, not a folder");
  if (!QDir().mkpath(dir)) throw Error(path + ": " + what + " does not exist and cannot be made");
}

// QSaveFile: a temporary file renamed over `path` on commit; on failure `path` is untouched.
void write_file(const std::string& path, const std::string& bytes, const char* what) {
  QSaveFile f(QString::fromStdString(path));
  if (!f.open(QIODevice::WriteOnly) || f.write(QByteArray::fromStdString(bytes)) < 0 || !f.commit())
    throw Error(path + ": cannot write " + what + " (" + f.errorString().toStdString() + ")");
}

// "video.job" -> "video": the job's name in its partial videos, as FramePack's job_id.
// Every output is written to a temporary name and renamed over its path: a rename replaces
// whatever is there, a device node, a FIFO or a symlink included (as root, --out /dev/null
// replaced the device). So a path that exists must be a regular file; symlinks are refused, not
// followed (say the real path), and a folder is refused before any work starts.
void check_file_target(const std::string& path, const char* what) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;  // absent: it will be created
  if (S_ISREG(st.st_mode)) return;
  std::string kind = "not a regular file";
  if (S_ISDIR(st.st_mode))
    kind = "a folder (give a file name, e.g. " + path + "/video.mp4)";
  else if (S_ISLNK(st.st_mode))
    kind = "a symbolic link (give the path it points to)";
  else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
    kind = "a device";
  else if (S_ISFIFO(st.st_mode))
    kind = "a FIFO";
  else if (S_ISSOCK(st.st_mode))
    kind = "a socket";
  throw Error(path + " (" + what + ") is " + kind + "; Framesmith writes only regular files");
}

// The job folder: absent, or a folder (a symlink to one is fine: nothing is renamed over it).
void check_folder_target(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (::lstat(path.c_str(), &st) == 0)
      throw Error(path + " (the job folder) is a symbolic link to nothing");
    return;
  }
  if (!S_ISDIR(st.st_mode)) throw Error(path + " (the job folder) exists and is not a folder");
}

std::string job_name(const std::string& job_dir) {
  QString name = QFileInfo(QDir::cleanPath(QString::fromStdString(job_dir))).fileName();
  if (name.endsWith(".job") && name.size() > 4) name.chop(4);
  return name.isEmpty() ? std::string("job") : name.toStdString();
}

}  // namespace

std::string default_job_dir(const std::string& video_path) {
  return stem_of(video_path) + ".job";
}

JobOutput::JobOutput(std::string video_path, int crf, const GenerationRequest& request,
                     std::string job_dir)
    : video_path_(std::move(video_path)),
      crf_(crf),
      fps_(request.input_video_source.path.empty() ? 30.0 : request.input_video_source.fps),
      params_json_(request_to_json(request)),
      job_dir_(job_dir.empty() ? request.job_dir : std::move(job_dir)) {
  // Before anything is created: a bad target costs the user nothing.
  check_file_target(video_path_, "the video");
  check_file_target(sidecar_path(), "the parameters");
  check_file_target(input_image_path(), "the input image");
  if (!job_dir_.empty()) {
    check_folder_target(job_dir_);
    check_file_target(job_dir_ + "/" + kSavedOutputFile, "the job's output settings");
    // Before the sidecar: a second run on the same --out must change nothing.
    lock_ = std::make_unique<JobFolderLock>(job_dir_);
  }
  make_folder(QFileInfo(QString::fromStdString(video_path_)).dir().path().toStdString(),
              "output folder");
  // Real writes, not permission bits: they also catch read-only mounts, full disks and root.
  write_file(sidecar_path(), params_json_, "the parameters");
  if (job_dir_.empty()) return;
  make_folder(job_dir_, "job folder");
  nlohmann::ordered_json saved;
  saved["video"] = QFileInfo(QString::fromStdString(video_path_)).absoluteFilePath().toStdString();
  saved["crf"] = crf_;
  write_file(job_dir_ + "/" + kSavedOutputFile, saved.dump(2) + "\n", "the job's output settings");
}

std::string JobOutput::sidecar_path() const {
  return stem_of(video_path_) + ".json";
}

std::string JobOutput::input_image_path() const {
  return stem_of(video_path_) + ".input.png";
}

std::string JobOutput::partial_path(std::int64_t latent_frames) const {
  return job_dir_ + "/" + job_name(job_dir_) + "_" + std::to_string(latent_frames) + ".mp4";
}

void JobOutput::write_video(const std::string& path, const Frames& video) {
  std::map<std::string, std::string> meta = {{"framesmith_params", params_json_},
                                             {"comment", "made with Framesmith"}};
  VideoWriter w;  // writes path.partial and renames it on finish()
  w.open(path, video.width, video.height, fps_, crf_, "medium", meta);
  for (int i = 0; i < video.count; ++i) w.write_frame(video.frame(i), video.width * 3);
  w.finish();
}

void JobOutput::write_partial(const Frames& video, std::int64_t latent_frames) {
  if (job_dir_.empty()) {
    write_video(video_path_, video);
    return;
  }
  const std::string path = partial_path(latent_frames);
  write_video(path, video);
  last_partial_ = path;
}

std::string JobOutput::segments_dir() const {
  return job_dir_.empty() ? stem_of(video_path_) + ".segments" : job_dir_ + "/segments";
}

std::string JobOutput::playlist_path() const {
  return (job_dir_.empty() ? segments_dir() : job_dir_) + "/video-so-far.ffconcat";
}

// Segments from an earlier run of this job (a kill, a resume) are replaced, not mixed in.
void JobOutput::start_segments() {
  segments_started_ = true;
  QDir dir(QString::fromStdString(segments_dir()));
  if (dir.exists()) dir.removeRecursively();
  make_folder(segments_dir(), "segments folder");
}

namespace {

// final_00000123.mp4: names sort as the frames do.
std::string segment_name(const char* kind, std::int64_t first_frame) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s_%08lld.mp4", kind, static_cast<long long>(first_frame));
  return buf;
}

}  // namespace

std::string JobOutput::write_chunk(const VideoChunk& chunk) {
  if (!segments_started_) start_segments();
  std::string path;
  if (chunk.final_frames.count > 0) {
    path = segments_dir() + "/" + segment_name("final", chunk.first_final_frame);
    write_video(path, chunk.final_frames);
    finals_[chunk.first_final_frame] = path;
    segment_frames_ += chunk.final_frames.count;
  }
  const std::string old_tail = tail_;
  segment_frames_ -= tail_frames_;
  tail_.clear();
  tail_frames_ = 0;
  if (chunk.tail.count > 0) {
    tail_ = segments_dir() + "/" + segment_name("tail", chunk.first_tail_frame);
    write_video(tail_, chunk.tail);
    tail_first_ = chunk.first_tail_frame;
    tail_frames_ = chunk.tail.count;
    segment_frames_ += tail_frames_;
  }
  write_playlist();
  if (!old_tail.empty() && old_tail != tail_) QFile::remove(QString::fromStdString(old_tail));
  last_partial_ = playlist_path();
  return path;
}

std::vector<std::string> JobOutput::segments_in_order() const {
  std::map<std::int64_t, std::string> all = finals_;
  if (!tail_.empty()) all[tail_first_] = tail_;
  std::vector<std::string> paths;
  for (const auto& [first, path] : all) paths.push_back(path);
  return paths;
}

// ffconcat lists the segments in video order; rewritten whole (one line per segment) and
// renamed into place, so a player never reads half a list.
void JobOutput::write_playlist() {
  std::string text = "ffconcat version 1.0\n";
  const QDir base = QFileInfo(QString::fromStdString(playlist_path())).dir();
  for (const std::string& path : segments_in_order())
    text += "file '" + base.relativeFilePath(QString::fromStdString(path)).toStdString() + "'\n";
  write_file(playlist_path(), text, "the playlist of the video so far");
}

void JobOutput::write_final_from_segments() {
  const std::vector<std::string> parts = segments_in_order();
  if (parts.empty()) throw Error(video_path_ + ": no video was made");
  const std::map<std::string, std::string> meta = {{"framesmith_params", params_json_},
                                                   {"comment", "made with Framesmith"}};
  if (!concat_videos(parts, video_path_, meta)) reencode_segments(parts);
  if (job_dir_.empty()) QDir(QString::fromStdString(segments_dir())).removeRecursively();
}

// The fallback when segments differ in their codec headers: decoded and encoded again, one
// frame at a time (memory stays at one frame).
void JobOutput::reencode_segments(const std::vector<std::string>& parts) {
  VideoWriter w;
  for (const std::string& part : parts) {
    VideoReader r;
    r.open(part);
    if (!w.is_open())
      w.open(video_path_, r.width(), r.height(), fps_, crf_, "medium",
             {{"framesmith_params", params_json_}, {"comment", "made with Framesmith"}});
    for (int i = 0; i < r.frame_count(); ++i) {
      const std::vector<std::uint8_t> rgb = r.read_frame(i);
      w.write_frame(rgb.data(), r.width() * 3);
    }
  }
  w.finish();
}

void JobOutput::write_final(const Frames& video) {
  write_video(video_path_, video);
}

void JobOutput::write_input_image(const Frames& image) {
  export_png(image, 0, input_image_path());
  if (!job_dir_.empty()) export_png(image, 0, job_dir_ + "/input.png");
}

SavedOutput read_saved_output(const std::string& job_dir) {
  const std::string path = job_dir + "/" + kSavedOutputFile;
  QFile f(QString::fromStdString(path));
  if (!f.open(QIODevice::ReadOnly))
    throw Error(path + ": cannot read the job's output settings (" + f.errorString().toStdString() +
                "); give --out FILE.mp4");
  SavedOutput out;
  try {
    const auto j = nlohmann::json::parse(f.readAll().toStdString());
    out.video_path = j.at("video").get<std::string>();
    out.crf = j.value("crf", 16);
  } catch (const std::exception& e) {
    throw Error(path + ": damaged job output settings (" + e.what() + ")");
  }
  return out;
}

std::string read_params_text(const std::string& path, const std::string& text) {
  if (QFileInfo(QString::fromStdString(path)).suffix().toLower() != "mp4") return text;
  VideoReader r;
  r.open(path);
  const auto meta = r.metadata();
  auto it = meta.find("framesmith_params");
  if (it == meta.end()) throw Error(path + ": this video has no Framesmith parameters in it");
  return it->second;
}

std::vector<VideoSegment> read_segment_playlist(const std::string& job_dir) {
  const QString dir = QString::fromStdString(job_dir);
  QFile file(dir + "/video-so-far.ffconcat");
  if (!file.open(QIODevice::ReadOnly)) return {};
  std::vector<VideoSegment> segments;
  const QRegularExpression line("^file '([^']+)'$");
  const QRegularExpression name("(?:^|/)(?:final|tail)_(\\d{1,12})\\.mp4$");
  for (const QByteArray& raw : file.readAll().split('\n')) {
    const QString text = QString::fromUtf8(raw).trimmed();
    if (text.isEmpty() || text.startsWith("ffconcat ") || text.startsWith('#')) continue;
    const QRegularExpressionMatch m = line.match(text);
    if (!m.hasMatch()) return {};
    const QString path = QDir(dir).absoluteFilePath(m.captured(1));
    const QRegularExpressionMatch n = name.match(m.captured(1));
    if (!n.hasMatch() || !QFileInfo(path).isFile()) return {};
    const std::int64_t first = n.captured(1).toLongLong();
    if (segments.empty() ? first != 0 : first <= segments.back().first_frame) return {};
    segments.push_back({path.toStdString(), first});
  }
  return segments;
}

}  // namespace framesmith::app
