// Sizes as people write them: "6GiB", "512MiB", "50331648", "1.5 GB".
#pragma once
#include <cstdint>
#include <string>

namespace framesmith {

// Plain bytes or a B/KiB/MiB/GiB/TiB (or KB/MB/GB/TB, decimal) suffix. Throws Error on junk.
std::int64_t parse_size(const std::string& text);
// "3.1 GiB", "512.0 MiB", "17 B".
std::string format_size(double bytes);

// A seed as people write it: a decimal integer from 0 to 2^64 - 1 (FramePack's seeds are 64-bit),
// exactly, never through a double; or -1 for "random". Throws Error for anything else (a fraction,
// an exponent, a sign other than -1's, a number out of range, junk). `random` tells which.
struct SeedChoice {
  std::uint64_t seed = 0;
  bool random = false;  // -1: the caller draws one (random_seed()) and records what it used
};
SeedChoice parse_seed(const std::string& text);
// A fresh 64-bit seed from the operating system's entropy.
std::uint64_t random_seed();

}  // namespace framesmith
