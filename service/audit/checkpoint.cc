#include "service/audit/checkpoint.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "service/util/file.h"
#include "service/util/sha256.h"
#include "service/util/utf8.h"

namespace trialrules {

namespace checkpoint_internal {
void EvpPkeyFree::operator()(evp_pkey_st* key) const { EVP_PKEY_free(key); }
}  // namespace checkpoint_internal

namespace {

using checkpoint_internal::UniqueEvpPkey;
using PublicKey = std::array<uint8_t, 32>;

// U+2014 EM DASH and a space: how every signature line starts.
constexpr absl::string_view kSignaturePrefix = "\xE2\x80\x94 ";
// signed-note's signature type byte for Ed25519.
constexpr char kEd25519Type = '\x01';
constexpr size_t kEd25519SignatureSize = 64;
// Go's note package stops at this many; signed-note asks for at least 16.
constexpr int kMaxSignatures = 100;

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using UniqueMdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

template <size_t N>
absl::string_view AsChars(const std::array<uint8_t, N>& bytes) {
  return absl::string_view(reinterpret_cast<const char*>(bytes.data()), N);
}

uint32_t KeyId(absl::string_view name, const PublicKey& key) {
  const std::array<uint8_t, 32> digest =
      Sha256Digest({name, absl::string_view("\n\x01", 2), AsChars(key)});
  return uint32_t{digest[0]} << 24 | uint32_t{digest[1]} << 16 | uint32_t{digest[2]} << 8 |
         uint32_t{digest[3]};
}

std::string KeyIdHex(uint32_t id) { return absl::StrCat(absl::Hex(id, absl::kZeroPad8)); }

std::string DescribeKey(absl::string_view name, uint32_t id) {
  return absl::StrCat("key ", name, " (key id ", KeyIdHex(id), ")");
}

// Text from a file or a note, quoted in an error message: at most 64
// bytes, cut at a character boundary.
std::string Quoted(absl::string_view text) {
  constexpr size_t kMax = 64;
  if (text.size() <= kMax) return absl::StrCat("\"", text, "\"");
  size_t cut = kMax;
  while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat("\"", text.substr(0, cut), "...\"");
}

// The bytes of `text` only when it is their one standard base64 spelling:
// padded, no whitespace, zero trailing bits. A note that another spelling
// would also open is a note that can be altered without breaking it.
std::optional<std::string> DecodeBase64Exactly(absl::string_view text) {
  std::string bytes;
  if (!absl::Base64Unescape(text, &bytes) || absl::Base64Escape(bytes) != text) {
    return std::nullopt;
  }
  return bytes;
}

// Signed-note allows no control characters but newline, so that what an
// auditor reads on a terminal is what was signed.
absl::Status CheckNoteCharacters(absl::string_view text, absl::string_view what) {
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError(absl::StrCat(what, " is not UTF-8"));
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<uint8_t>(text[i]);
    if (byte < 0x20 && byte != '\n') {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has the control character 0x", absl::Hex(byte, absl::kZeroPad2), " at byte ", i));
    }
  }
  return absl::OkStatus();
}

// Go's unicode.IsSpace, which golang.org/x/mod/sumdb/note forbids in names.
bool IsUnicodeSpace(uint32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Non-empty UTF-8 with no space and no '+': a signature line is split at
// the first space, a verifier key at the first '+'.
bool IsValidKeyName(absl::string_view name) {
  if (name.empty() || !IsValidUtf8(name)) return false;
  for (size_t i = 0; i < name.size();) {
    const size_t length = Utf8SequenceLength(name, i);
    const auto lead = static_cast<uint8_t>(name[i]);
    uint32_t c = length == 1 ? lead : lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) c = c << 6 | (static_cast<uint8_t>(name[i + k]) & 0x3F);
    if (c == '+' || c < 0x20 || IsUnicodeSpace(c)) return false;
    i += length;
  }
  return true;
}

absl::Status CheckKeyName(absl::string_view name) {
  if (IsValidKeyName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the key name ", Quoted(name),
      " is not a signed-note key name: it must be non-empty UTF-8 without spaces or '+'"));
}

// OpenSSL leaves its reasons on a per-thread queue that the next OpenSSL
// user (a TLS handshake on this thread) would read as its own: every
// failure here empties it.
absl::Status OpenSslFailure(absl::string_view what) {
  char reason[256] = "";
  if (const unsigned long error = ERR_peek_last_error(); error != 0) {
    ERR_error_string_n(error, reason, sizeof reason);
  }
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(what, " failed in OpenSSL: ", reason));
}

absl::StatusOr<UniqueEvpPkey> RequireEd25519(UniqueEvpPkey key, absl::string_view source) {
  if (EVP_PKEY_get_id(key.get()) == EVP_PKEY_ED25519) return key;
  const char* type = EVP_PKEY_get0_type_name(key.get());
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": the key is ", type != nullptr ? type : "of an unknown type",
                   ", not Ed25519 (openssl genpkey -algorithm ed25519 makes one)"));
}

absl::StatusOr<PublicKey> RawPublicKey(evp_pkey_st* key) {
  PublicKey public_key;
  size_t length = public_key.size();
  if (EVP_PKEY_get_raw_public_key(key, public_key.data(), &length) != 1 ||
      length != public_key.size()) {
    return OpenSslFailure("reading the Ed25519 public key");
  }
  return public_key;
}

std::unique_ptr<BIO, BioFree> MemoryBio(absl::string_view pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Refuses where OpenSSL would otherwise ask for a passphrase on the
// terminal of a server that has none.
int RefusePassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<UniqueEvpPkey> ReadPrivateKey(absl::string_view pem, absl::string_view source) {
  if (absl::StrContains(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
    return absl::InvalidArgumentError(absl::StrCat(
        source,
        ": the private key is encrypted; the server reads an unencrypted key, so protect "
        "the file instead"));
  }
  std::unique_ptr<BIO, BioFree> bio = MemoryBio(pem);
  if (bio == nullptr) return OpenSslFailure("reading the PEM text");
  UniqueEvpPkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, &RefusePassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, absl::StrContains(pem, "PUBLIC KEY-----")
                                 ? ": it holds a public key, and signing needs the private key"
                                 : ": no PEM private key could be read from it"));
  }
  return RequireEd25519(std::move(key), source);
}

absl::StatusOr<UniqueEvpPkey> ReadPublicKey(absl::string_view pem, absl::string_view source) {
  if (absl::StrContains(pem, "PRIVATE KEY-----")) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": it holds a private key; a verifier takes the public key "
                     "(openssl pkey -in KEY -pubout), so that no copy of it can sign"));
  }
  std::unique_ptr<BIO, BioFree> bio = MemoryBio(pem);
  if (bio == nullptr) return OpenSslFailure("reading the PEM text");
  UniqueEvpPkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, &RefusePassphrase, nullptr));
  ERR_clear_error();
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no PEM public key (BEGIN PUBLIC KEY) could be read from it"));
  }
  return RequireEd25519(std::move(key), source);
}

absl::StatusOr<std::string> ReadFileNamed(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  if (!bytes.ok()) {
    return absl::Status(bytes.status().code(), absl::StrCat(path, ": ", bytes.status().message()));
  }
  return bytes;
}

absl::StatusOr<bool> VerifiesEd25519(evp_pkey_st* key, absl::string_view signature,
                                     absl::string_view text) {
  if (signature.size() != kEd25519SignatureSize) return false;
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  // Ed25519 hashes the message itself: no digest is named.
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key) != 1) {
    return OpenSslFailure("starting an Ed25519 verification");
  }
  const int verified = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(text.data()), text.size());
  ERR_clear_error();
  return verified == 1;
}

}  // namespace

std::string CheckpointBody(const Checkpoint& checkpoint) {
  std::string body = absl::StrCat(checkpoint.origin, "\n", checkpoint.size, "\n",
                                  absl::Base64Escape(AsChars(checkpoint.root)), "\n");
  for (const std::string& extension : checkpoint.extensions)
    absl::StrAppend(&body, extension, "\n");
  return body;
}

absl::StatusOr<Checkpoint> ParseCheckpointBody(absl::string_view body) {
  if (body.empty() || body.back() != '\n') {
    return absl::InvalidArgumentError("the checkpoint does not end in a newline");
  }
  if (absl::Status status = CheckNoteCharacters(body, "the checkpoint"); !status.ok()) {
    return status;
  }
  const std::vector<absl::string_view> lines =
      absl::StrSplit(body.substr(0, body.size() - 1), '\n');
  if (lines.size() < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("the checkpoint has ", lines.size(),
                     " line(s), not an origin, a tree size and a root hash"));
  }
  Checkpoint checkpoint;
  if (lines[0].empty()) return absl::InvalidArgumentError("checkpoint line 1: the origin is empty");
  checkpoint.origin = std::string(lines[0]);

  // Only one spelling of each size, so that a signed size cannot be
  // respelled ("+7", "007") into an unsigned note that still verifies.
  const absl::string_view size = lines[1];
  const bool digits_only =
      !size.empty() && std::all_of(size.begin(), size.end(), absl::ascii_isdigit);
  if (!digits_only || (size.size() > 1 && size[0] == '0') ||
      !absl::SimpleAtoi(size, &checkpoint.size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint line 2: the tree size ", Quoted(size),
                     " is not a decimal number below 2^64 without sign or leading zeros"));
  }

  const std::optional<std::string> root = DecodeBase64Exactly(lines[2]);
  if (!root.has_value() || root->size() != checkpoint.root.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint line 3: the root hash ", Quoted(lines[2]), " is not the base64 of 32 bytes"));
  }
  std::copy(root->begin(), root->end(), checkpoint.root.begin());

  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint line ", i + 1, ": an extension line is empty"));
    }
    checkpoint.extensions.emplace_back(lines[i]);
  }
  return checkpoint;
}

// NoteSigner

NoteSigner::NoteSigner(UniqueEvpPkey key, std::string key_name, const PublicKey& public_key)
    : key_(std::move(key)),
      key_name_(std::move(key_name)),
      public_key_(public_key),
      key_id_(KeyId(key_name_, public_key_)) {}

absl::StatusOr<NoteSigner> NoteSigner::FromKey(UniqueEvpPkey key, std::string key_name) {
  absl::StatusOr<PublicKey> public_key = RawPublicKey(key.get());
  if (!public_key.ok()) return public_key.status();
  return NoteSigner(std::move(key), std::move(key_name), *public_key);
}

absl::StatusOr<NoteSigner> NoteSigner::FromPemFile(const std::string& path, std::string key_name) {
  if (absl::Status status = CheckKeyName(key_name); !status.ok()) return status;
  absl::StatusOr<std::string> pem = ReadFileNamed(path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<UniqueEvpPkey> key = ReadPrivateKey(*pem, path);
  if (!key.ok()) return key.status();
  return FromKey(*std::move(key), std::move(key_name));
}

absl::StatusOr<NoteSigner> NoteSigner::FromPem(absl::string_view pem, std::string key_name) {
  if (absl::Status status = CheckKeyName(key_name); !status.ok()) return status;
  absl::StatusOr<UniqueEvpPkey> key = ReadPrivateKey(pem, "the PEM text");
  if (!key.ok()) return key.status();
  return FromKey(*std::move(key), std::move(key_name));
}

absl::StatusOr<NoteSigner> NoteSigner::FromSeed(const std::array<uint8_t, 32>& seed,
                                                std::string key_name) {
  if (absl::Status status = CheckKeyName(key_name); !status.ok()) return status;
  UniqueEvpPkey key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (key == nullptr) return OpenSslFailure("making an Ed25519 key from its seed");
  return FromKey(std::move(key), std::move(key_name));
}

absl::StatusOr<std::string> NoteSigner::Sign(absl::string_view body) const {
  if (body.empty() || body.back() != '\n') {
    return absl::InvalidArgumentError("the text to sign does not end in a newline");
  }
  if (absl::Status status = CheckNoteCharacters(body, "the text to sign"); !status.ok()) {
    return status;
  }
  std::array<uint8_t, 4 + kEd25519SignatureSize> signature;
  signature[0] = static_cast<uint8_t>(key_id_ >> 24);
  signature[1] = static_cast<uint8_t>(key_id_ >> 16);
  signature[2] = static_cast<uint8_t>(key_id_ >> 8);
  signature[3] = static_cast<uint8_t>(key_id_);
  size_t length = kEd25519SignatureSize;
  UniqueMdCtx ctx(EVP_MD_CTX_new());
  // Ed25519 hashes the message itself: no digest is named.
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), signature.data() + 4, &length,
                     reinterpret_cast<const unsigned char*>(body.data()), body.size()) != 1 ||
      length != kEd25519SignatureSize) {
    return OpenSslFailure("Ed25519 signing");
  }
  return absl::StrCat(body, "\n", kSignaturePrefix, key_name_, " ",
                      absl::Base64Escape(AsChars(signature)), "\n");
}

std::string NoteSigner::VerifierKey() const {
  return absl::StrCat(
      key_name_, "+", KeyIdHex(key_id_), "+",
      absl::Base64Escape(absl::StrCat(absl::string_view(&kEd25519Type, 1), AsChars(public_key_))));
}

// NoteVerifier

NoteVerifier::NoteVerifier(UniqueEvpPkey key, std::optional<std::string> key_name,
                           const PublicKey& public_key, std::string description)
    : key_(std::move(key)),
      key_name_(std::move(key_name)),
      public_key_(public_key),
      description_(std::move(description)) {}

absl::StatusOr<NoteVerifier> NoteVerifier::FromVerifierKey(absl::string_view vkey) {
  // The name has no '+'; the key's base64 may.
  const size_t first = vkey.find('+');
  const size_t second = first == absl::string_view::npos ? first : vkey.find('+', first + 1);
  if (second == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("the verifier key ", Quoted(vkey), " is not <name>+<key id>+<base64 key>"));
  }
  const absl::string_view name = vkey.substr(0, first);
  const absl::string_view id_hex = vkey.substr(first + 1, second - first - 1);
  const absl::string_view key_base64 = vkey.substr(second + 1);
  if (absl::Status status = CheckKeyName(name); !status.ok()) return status;
  uint32_t id = 0;
  if (id_hex.size() != 8 || !std::all_of(id_hex.begin(), id_hex.end(), absl::ascii_isxdigit) ||
      !absl::SimpleHexAtoi(id_hex, &id)) {
    return absl::InvalidArgumentError(absl::StrCat("the verifier key of ", name, ": the key id ",
                                                   Quoted(id_hex), " is not 8 hex digits"));
  }
  const std::optional<std::string> key = DecodeBase64Exactly(key_base64);
  if (!key.has_value() || key->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the verifier key of ", name, ": the key is not base64"));
  }
  if ((*key)[0] != kEd25519Type || key->size() != 1 + PublicKey().size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the verifier key of ", name, " is not an Ed25519 key (type byte 0x01 and 32 bytes)"));
  }
  PublicKey public_key;
  std::copy(key->begin() + 1, key->end(), public_key.begin());
  if (const uint32_t expected = KeyId(name, public_key); expected != id) {
    return absl::InvalidArgumentError(
        absl::StrCat("the verifier key of ", name, ": the key id ", KeyIdHex(id),
                     " is not that of its name and key, ", KeyIdHex(expected)));
  }
  UniqueEvpPkey evp_key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  if (evp_key == nullptr) return OpenSslFailure("making an Ed25519 public key");
  return NoteVerifier(std::move(evp_key), std::string(name), public_key, DescribeKey(name, id));
}

absl::StatusOr<NoteVerifier> NoteVerifier::FromPemText(absl::string_view pem,
                                                       absl::string_view source,
                                                       std::string description) {
  absl::StatusOr<UniqueEvpPkey> key = ReadPublicKey(pem, source);
  if (!key.ok()) return key.status();
  absl::StatusOr<PublicKey> public_key = RawPublicKey(key->get());
  if (!public_key.ok()) return public_key.status();
  return NoteVerifier(*std::move(key), std::nullopt, *public_key, std::move(description));
}

absl::StatusOr<NoteVerifier> NoteVerifier::FromPem(absl::string_view pem) {
  return FromPemText(pem, "the PEM text", "the PEM public key (under any name)");
}

absl::StatusOr<NoteVerifier> NoteVerifier::FromPemFile(const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFileNamed(path);
  if (!pem.ok()) return pem.status();
  return FromPemText(*pem, path, absl::StrCat("the public key in ", path, " (under any name)"));
}

absl::StatusOr<NoteVerifier> NoteVerifier::FromFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileNamed(path);
  if (!text.ok()) return text.status();
  if (absl::StrContains(*text, "-----BEGIN")) {
    return FromPemText(*text, path, absl::StrCat("the public key in ", path, " (under any name)"));
  }
  const absl::string_view vkey = absl::StripAsciiWhitespace(*text);
  if (vkey.empty() || absl::StrContains(vkey, '\n')) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": it is neither a PEM public key nor one line of verifier key text"));
  }
  absl::StatusOr<NoteVerifier> verifier = FromVerifierKey(vkey);
  if (!verifier.ok()) {
    return absl::Status(verifier.status().code(),
                        absl::StrCat(path, ": ", verifier.status().message()));
  }
  return verifier;
}

absl::StatusOr<Checkpoint> NoteVerifier::Open(absl::string_view note) const {
  if (absl::Status status = CheckNoteCharacters(note, "the note"); !status.ok()) return status;
  // The text may have empty lines of its own: the note's last one ends it.
  const size_t split = note.rfind("\n\n");
  if (split == absl::string_view::npos) {
    return absl::InvalidArgumentError("the note has no empty line before its signatures");
  }
  const absl::string_view text = note.substr(0, split + 1);
  const absl::string_view signature_lines = note.substr(split + 2);
  if (signature_lines.empty()) {
    return absl::InvalidArgumentError("the note has no signature after its last empty line");
  }
  if (signature_lines.back() != '\n') {
    return absl::InvalidArgumentError("the note's last line does not end in a newline");
  }

  int count = 0;
  bool verified = false;
  std::set<std::pair<absl::string_view, uint32_t>> seen;
  std::vector<std::string> others;
  for (absl::string_view line :
       absl::StrSplit(signature_lines.substr(0, signature_lines.size() - 1), '\n')) {
    if (++count > kMaxSignatures) {
      return absl::InvalidArgumentError(
          absl::StrCat("the note has more than ", kMaxSignatures, " signatures"));
    }
    const std::string where = absl::StrCat("signature line ", count);
    if (!absl::ConsumePrefix(&line, kSignaturePrefix)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " does not start with an em dash and a space"));
    }
    const size_t space = line.find(' ');
    const absl::string_view name = line.substr(0, space);
    if (!IsValidKeyName(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", Quoted(name), " is not a key name"));
    }
    const std::optional<std::string> signature = space == absl::string_view::npos
                                                     ? std::nullopt
                                                     : DecodeBase64Exactly(line.substr(space + 1));
    if (!signature.has_value() || signature->size() < 5) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " (by ", name, "): the signature is not the base64 of a key id and signature"));
    }
    const uint32_t id = static_cast<uint32_t>(static_cast<uint8_t>((*signature)[0])) << 24 |
                        static_cast<uint32_t>(static_cast<uint8_t>((*signature)[1])) << 16 |
                        static_cast<uint32_t>(static_cast<uint8_t>((*signature)[2])) << 8 |
                        static_cast<uint32_t>(static_cast<uint8_t>((*signature)[3]));
    // signed-note: a signature is a key's when both its name and key id
    // are that key's; the others (witnesses, rotated keys) are skipped.
    if ((key_name_.has_value() && name != *key_name_) || KeyId(name, public_key_) != id) {
      others.push_back(DescribeKey(name, id));
      continue;
    }
    if (!seen.emplace(name, id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": a second signature by ", DescribeKey(name, id)));
    }
    absl::StatusOr<bool> verifies =
        VerifiesEd25519(key_.get(), absl::string_view(*signature).substr(4), text);
    if (!verifies.ok()) return verifies.status();
    if (!*verifies) {
      return absl::DataLossError(absl::StrCat("checkpoint signature does not verify with ",
                                              DescribeKey(name, id),
                                              ": the note was altered after it was signed"));
    }
    verified = true;
  }
  if (!verified) {
    return absl::NotFoundError(absl::StrCat(
        "no signature by ", description_, "; the note is signed by ", absl::StrJoin(others, ", ")));
  }
  absl::StatusOr<Checkpoint> checkpoint = ParseCheckpointBody(text);
  if (!checkpoint.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the signed text is not a checkpoint: ", checkpoint.status().message()));
  }
  return checkpoint;
}

std::vector<std::string> SplitNotes(absl::string_view file_text) {
  std::vector<std::string> notes;
  std::string note;
  // A signature line follows an empty line or another signature line, so
  // that a text line that starts with a dash does not end its note.
  bool after_signature = false;
  bool after_empty = false;
  for (size_t at = 0; at < file_text.size();) {
    const size_t newline = file_text.find('\n', at);
    const size_t end = newline == absl::string_view::npos ? file_text.size() : newline + 1;
    const absl::string_view line = file_text.substr(at, end - at);
    at = end;
    const bool signature =
        (after_signature || after_empty) && absl::StartsWith(line, kSignaturePrefix);
    if (after_signature && !signature) {
      if (line == "\n") continue;
      notes.push_back(std::move(note));
      note.clear();
    }
    note.append(line.data(), line.size());
    after_signature = signature;
    after_empty = line == "\n";
  }
  if (!note.empty()) notes.push_back(std::move(note));
  return notes;
}

}  // namespace trialrules
