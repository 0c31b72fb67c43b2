#include "service/util/sha256.h"

#include <openssl/evp.h>

#include <memory>

namespace trialrules {
namespace {

// Fetched once: OpenSSL 3 otherwise looks the algorithm up (under a lock)
// on every call, and audit hashes every decision's facts.
const EVP_MD* Sha256Md() {
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return sha256;
}

}  // namespace

void AppendSha256Hex(absl::string_view bytes, std::string* out) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, Sha256Md(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  char hex[2 * EVP_MAX_MD_SIZE];
  for (unsigned int i = 0; i < length; ++i) {
    hex[2 * i] = kHex[digest[i] >> 4];
    hex[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  out->append(hex, 2 * length);
}

std::array<uint8_t, 32> Sha256Digest(std::initializer_list<absl::string_view> parts) {
  // One context per thread, reset by each Init: a Merkle root over a million
  // leaves is a million digests, and EVP_Digest would allocate a context
  // for every one.
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
  };
  thread_local const std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  std::array<uint8_t, 32> digest;
  EVP_DigestInit_ex(ctx.get(), Sha256Md(), nullptr);
  for (absl::string_view part : parts) EVP_DigestUpdate(ctx.get(), part.data(), part.size());
  EVP_DigestFinal_ex(ctx.get(), digest.data(), nullptr);
  return digest;
}

std::string Sha256Hex(absl::string_view bytes) {
  std::string hex;
  AppendSha256Hex(bytes, &hex);
  return hex;
}

}  // namespace trialrules
