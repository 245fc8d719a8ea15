#include "checksums.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <vector>

#include "framesmith/hub.h"

namespace framesmith::hub {

bool is_hex(const std::string& s, std::size_t digits) {
  if (s.size() != digits) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string file_digest(const std::string& path, Digest kind,
                        const std::function<bool(std::uint64_t)>& on_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(path + ": cannot open to verify it");
  const auto size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  const EVP_MD* md = kind == Digest::kSha256 ? EVP_sha256() : EVP_sha1();
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1)
    throw Error("could not start a " + std::string(kind == Digest::kSha256 ? "SHA-256" : "SHA-1") +
                " digest");
  if (kind == Digest::kGitBlobSha1) {
    const std::string head = "blob " + std::to_string(size) + std::string(1, '\0');
    EVP_DigestUpdate(ctx.get(), head.data(), head.size());
  }
  std::vector<char> block(std::size_t(4) << 20);
  std::uint64_t done = 0;
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got == 0) break;
    EVP_DigestUpdate(ctx.get(), block.data(), got);
    done += got;
    if (on_bytes && !on_bytes(done)) return "";
  }
  if (done != size)
    throw Error(path + ": read " + std::to_string(done) + " of " + std::to_string(size) +
                " bytes while verifying it");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), out, &len);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned int i = 0; i < len; ++i) {
    s += hex[out[i] >> 4];
    s += hex[out[i] & 15];
  }
  return s;
}

}  // namespace framesmith::hub
