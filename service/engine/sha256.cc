#include "service/engine/sha256.h"

#include <openssl/evp.h>

#include "absl/strings/escaping.h"

namespace trialrules {

std::string Sha256Hex(absl::string_view bytes) {
  // Fetched once: OpenSSL 3 otherwise looks the algorithm up (under a lock)
  // on every call, and audit hashes every decision's facts.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, sha256, nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

}  // namespace trialrules
