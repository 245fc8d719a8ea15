// Sizes as people write them: "6GiB", "512MiB", "50331648", "1.5 GB".
#pragma once
#include <cstdint>
#include <string>

namespace framesmith {

// Plain bytes or a B/KiB/MiB/GiB/TiB (or KB/MB/GB/TB, decimal) suffix. Throws Error on junk.
std::int64_t parse_size(const std::string& text);
// "3.1 GiB", "512.0 MiB", "17 B".
std::string format_size(double bytes);

}  // namespace framesmith
