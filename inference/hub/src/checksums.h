// The digests the hub names files by: SHA-256 of an LFS file's content, the git blob id (SHA-1 of
// "blob <size>\0" + content) of the others. Read in 4 MiB blocks; `on_bytes` reports progress
// and may stop the hashing (returns false: the result is empty).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace framesmith::hub {

enum class Digest { kSha256 = 1, kGitBlobSha1 };
std::string file_digest(const std::string& path, Digest kind,
                        const std::function<bool(std::uint64_t)>& on_bytes = {});
// True for a lowercase hex string of `digits` digits.
bool is_hex(const std::string& s, std::size_t digits);

}  // namespace framesmith::hub
