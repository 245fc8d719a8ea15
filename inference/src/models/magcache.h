// MagCache (Ma et al., "Magnitude-aware cache", arXiv 2506.09045) as FramePack-Studio runs it on
// the packed transformer: a call of the blocks is skipped, and the last computed residual reused,
// while the product of the calibrated per-step magnitude ratios since the last computed call stays
// close to 1 (accumulated error <= threshold, at most `max_skips` in a row, this step's ratio
// within 0.06 of 1); the first `retention_ratio` of the steps always compute. The decisions
// depend only on the calibration table, the picture size, the step count and these settings,
// not on the model's values. Plain decision logic: the transformer keeps the residual.
#pragma once
#include <string>
#include <vector>

namespace framesmith {

enum class MagCacheFamily { kOriginal, kF1 };  // the transformer's weights (FramePack or F1)

struct MagCacheSettings {
  double threshold = 0.1;  // FramePack-Studio's defaults
  int max_consecutive_skips = 2;
  double retention_ratio = 0.25;
};

struct MagCacheRatios {
  std::vector<double> ratios;  // one per step, the first 1.0
  std::string description;     // which calibration was picked, for the log
};

// The calibrated table for the family whose resolution group is nearest (height + width) / 2
// pixels and whose step count is nearest `num_steps` (the first of equals, as FramePack-Studio's
// min() picks); another step count is mapped by nearest index (round(i·(L−1)/(N−1)), halves
// to even). Throws Error for num_steps < 1.
MagCacheRatios magcache_ratios(MagCacheFamily family, int height_px, int width_px, int num_steps);

// The running decision state of one section (a transformer call per step).
struct MagCacheState {
  bool enabled = false;
  MagCacheSettings settings;
  std::vector<double> ratios;
  int num_steps = 0;
  int step = 0;  // the call the next decision is for
  double accumulated_ratio = 1.0;
  double accumulated_err = 0.0;
  int accumulated_steps = 0;
};

// Decides the current call (true: skip the blocks) and advances to the next; at step 0 the
// accumulators start afresh.
bool magcache_should_skip(MagCacheState& s);

}  // namespace framesmith
