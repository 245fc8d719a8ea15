#include "models/magcache.h"

#include <cmath>
#include <cstdlib>

#include "framesmith/error.h"

namespace framesmith {
namespace {

struct CalibratedTable {
  MagCacheFamily family;
  int resolution;  // pixels: the mean of height and width the calibration ran at
  int steps;
  std::vector<double> ratios;
};

const std::vector<CalibratedTable>& calibrated_tables() {
  static const std::vector<CalibratedTable> tables = {
#include "models/magcache_ratios.inc"
  };
  return tables;
}

// Nearest by |key − target|, the first of equals (in the tables' order).
template <typename Key>
const CalibratedTable* nearest(const std::vector<const CalibratedTable*>& candidates, Key key,
                               double target) {
  const CalibratedTable* best = nullptr;
  double best_d = 0;
  for (const CalibratedTable* t : candidates) {
    const double d = std::abs(double(key(*t)) - target);
    if (!best || d < best_d) {
      best = t;
      best_d = d;
    }
  }
  return best;
}

}  // namespace

MagCacheRatios magcache_ratios(MagCacheFamily family, int height_px, int width_px, int num_steps) {
  if (num_steps < 1) throw Error("MagCache: the step count must be at least 1");
  std::vector<const CalibratedTable*> of_family;
  for (const CalibratedTable& t : calibrated_tables())
    if (t.family == family) of_family.push_back(&t);
  const double mean_side = (height_px + width_px) / 2.0;
  const int group = nearest(
                        of_family, [](const CalibratedTable& t) { return t.resolution; }, mean_side)
                        ->resolution;
  std::vector<const CalibratedTable*> of_group;
  for (const CalibratedTable* t : of_family)
    if (t->resolution == group) of_group.push_back(t);
  const CalibratedTable* table = nearest(
      of_group, [](const CalibratedTable& t) { return t.steps; }, num_steps);

  MagCacheRatios r;
  const std::string family_name = family == MagCacheFamily::kF1 ? "F1" : "Original";
  r.description = "MagCache ratios of " + family_name + ", resolution group " +
                  std::to_string(group) + " (" + std::to_string(width_px) + "x" +
                  std::to_string(height_px) + "), " + std::to_string(table->steps) + " steps";
  const std::vector<double>& src = table->ratios;
  if (table->steps == num_steps) {
    r.ratios = src;
    return r;
  }
  r.description += ", mapped to " + std::to_string(num_steps) + " steps";
  if (num_steps == 1) {
    r.ratios = {src.back()};
    return r;
  }
  const double scale = double(src.size() - 1) / double(num_steps - 1);
  for (int i = 0; i < num_steps; ++i)
    r.ratios.push_back(src[std::size_t(std::nearbyint(i * scale))]);  // halves to even
  return r;
}

bool magcache_should_skip(MagCacheState& s) {
  if (s.step == 0 || s.step >= s.num_steps) {
    s.step = 0;
    s.accumulated_ratio = 1.0;
    s.accumulated_err = 0.0;
    s.accumulated_steps = 0;
  }
  bool skip = false;
  const int retained = static_cast<int>(s.settings.retention_ratio * s.num_steps);
  if (s.step >= retained && s.step >= 1 && std::size_t(s.step) < s.ratios.size()) {
    const double ratio = s.ratios[std::size_t(s.step)];
    s.accumulated_ratio *= ratio;
    s.accumulated_err += std::abs(1.0 - s.accumulated_ratio);
    s.accumulated_steps += 1;
    if (s.accumulated_err <= s.settings.threshold &&
        s.accumulated_steps <= s.settings.max_consecutive_skips && std::abs(1.0 - ratio) <= 0.06) {
      skip = true;
    } else {
      s.accumulated_ratio = 1.0;
      s.accumulated_err = 0.0;
      s.accumulated_steps = 0;
    }
  }
  if (++s.step == s.num_steps) s.step = 0;
  return skip;
}

}  // namespace framesmith
