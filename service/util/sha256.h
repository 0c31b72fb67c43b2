// SHA-256 of bytes: as lowercase hex, which identifies a rule file's exact
// content, or as the raw digest a Merkle tree hashes on.
#ifndef TRIALRULES_SERVICE_UTIL_SHA256_H_
#define TRIALRULES_SERVICE_UTIL_SHA256_H_

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"

namespace trialrules {

std::string Sha256Hex(absl::string_view bytes);
// The same, written at the end of `out`.
void AppendSha256Hex(absl::string_view bytes, std::string* out);

// The raw 32-byte SHA-256 of the concatenation of `parts`: a Merkle tree
// hashes a one-byte domain prefix and its payload without copying them
// together first.
std::array<uint8_t, 32> Sha256Digest(std::initializer_list<absl::string_view> parts);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_SHA256_H_
