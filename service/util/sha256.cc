#include "service/util/sha256.h"

#include <openssl/evp.h>

namespace trialrules {

void AppendSha256Hex(absl::string_view bytes, std::string* out) {
  // Fetched once: OpenSSL 3 otherwise looks the algorithm up (under a lock)
  // on every call, and audit hashes every decision's facts.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, sha256, nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  char hex[2 * EVP_MAX_MD_SIZE];
  for (unsigned int i = 0; i < length; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  out->append(hex, 2 * length);
}

std::string Sha256Hex(absl::string_view bytes) {
  std::string hex;
  AppendSha256Hex(bytes, &hex);
  return hex;
}

}  // namespace trialrules
