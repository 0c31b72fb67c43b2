// Signed checkpoints of the audit log's Merkle tree, in the formats that
// transparency logs share (C2SP tlog-checkpoint and signed-note, with
// Ed25519 keys, as Go's checksum database signs its tree heads): an auditor
// checks them with existing tools, and a server that later shows a history
// its signed root does not commit to is refuted by its own signature.
//
// A checkpoint body (tlog-checkpoint):
//
//   <origin>\n                   the log's name, e.g. trials.example/audit
//   <tree size>\n                decimal, no leading zeros
//   <root hash>\n                standard base64 of the RFC 6962 root
//   [<extension line>\n ...]     opaque; none are written, any are kept
//
// A signed note (signed-note) is the body, an empty line, then one line
// per signature, signing the body's bytes exactly (its final newline
// included):
//
//   — <key name> <base64(key id || Ed25519 signature)>\n
//
// where "—" is U+2014 and the key id is the first 4 bytes, big-endian, of
// SHA-256(key name || 0x0A || 0x01 || 32-byte public key). A verifier key,
// as given to an auditor, is the text <name>+<8 hex key id>+<base64(0x01 ||
// public key)> (golang.org/x/mod/sumdb/note's format).
//
// A checkpoints file is signed notes written one after another, nothing
// between them: the log appends a note each time it signs. A signature line
// is one that starts with "— " after the empty line or after another
// signature line; a note ends at its last one, and the next begins at the
// following line. SplitNotes reads such a file.
#ifndef TRIALRULES_SERVICE_AUDIT_CHECKPOINT_H_
#define TRIALRULES_SERVICE_AUDIT_CHECKPOINT_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// OpenSSL's EVP_PKEY, declared here so that users need no OpenSSL headers.
struct evp_pkey_st;

namespace trialrules {

struct Checkpoint {
  // Non-empty and one line, as CheckpointBody writes it unchecked; by
  // tlog-checkpoint's advice, the signer's key name.
  std::string origin;
  uint64_t size = 0;
  std::array<uint8_t, 32> root{};
  // Each non-empty and one line. Not auditable by monitors, so the server
  // writes none; a parsed checkpoint keeps those it was given.
  std::vector<std::string> extensions;
};

// The note text of `checkpoint`. Its origin and extensions must be
// non-empty single lines (ParseCheckpointBody would read anything else as
// a different checkpoint or refuse it).
std::string CheckpointBody(const Checkpoint& checkpoint);
// INVALID_ARGUMENT, naming the line, unless `body` is exactly what
// CheckpointBody writes for some checkpoint: no final newline, fewer than
// three lines, an empty origin or extension line, a size with a sign,
// leading zero or beyond 2^64 - 1, a root that is not the canonical
// base64 of 32 bytes, a control character.
absl::StatusOr<Checkpoint> ParseCheckpointBody(absl::string_view body);

namespace checkpoint_internal {
struct EvpPkeyFree {
  void operator()(evp_pkey_st* key) const;
};
using UniqueEvpPkey = std::unique_ptr<evp_pkey_st, EvpPkeyFree>;
}  // namespace checkpoint_internal

// An Ed25519 private key and the name it signs under. Move-only. Use it
// from one thread at a time: each Sign has its own OpenSSL context, but
// OpenSSL does not promise that one EVP_PKEY may sign in two threads at
// once, and a log signs a checkpoint every few seconds, so a lock costs
// nothing.
class NoteSigner {
 public:
  // A PKCS#8 PEM private key as `openssl genpkey -algorithm ed25519`
  // writes it. NOT_FOUND or UNAVAILABLE naming `path` when it cannot be
  // read; INVALID_ARGUMENT naming `path` for anything else than an
  // unencrypted Ed25519 private key (the type found is named), or for a
  // key name that signed-note forbids.
  static absl::StatusOr<NoteSigner> FromPemFile(const std::string& path, std::string key_name);
  // As FromPemFile, from the PEM text itself.
  static absl::StatusOr<NoteSigner> FromPem(absl::string_view pem, std::string key_name);
  // From the 32-byte RFC 8032 private key (the "seed" from which both
  // halves of the key pair are derived), as Go's note package stores it
  // after the 0x01 of a "PRIVATE+KEY+..." string: for keys kept outside
  // PEM, and to check against that package's published signatures.
  static absl::StatusOr<NoteSigner> FromSeed(const std::array<uint8_t, 32>& seed,
                                             std::string key_name);

  NoteSigner(NoteSigner&&) = default;
  NoteSigner& operator=(NoteSigner&&) = default;

  // The signed note of `body`: body, empty line, one signature line.
  // INVALID_ARGUMENT when no verifier could open the note: `body` empty,
  // without a final newline, not UTF-8, or with control characters other
  // than newline. INTERNAL when OpenSSL fails.
  absl::StatusOr<std::string> Sign(absl::string_view body) const;
  // The verifier key text to hand to auditors (NoteVerifier::
  // FromVerifierKey, Go's note.NewVerifier).
  std::string VerifierKey() const;
  const std::string& key_name() const { return key_name_; }
  uint32_t key_id() const { return key_id_; }

 private:
  // Checks the name and reads the public half of `key`, an Ed25519 key.
  static absl::StatusOr<NoteSigner> FromKey(checkpoint_internal::UniqueEvpPkey key,
                                            std::string key_name);
  NoteSigner(checkpoint_internal::UniqueEvpPkey key, std::string key_name,
             const std::array<uint8_t, 32>& public_key);

  checkpoint_internal::UniqueEvpPkey key_;
  std::string key_name_;
  std::array<uint8_t, 32> public_key_;
  uint32_t key_id_;
};

// An Ed25519 public key that opens signed checkpoints. Move-only; Open
// keeps no state, but see NoteSigner on sharing an EVP_PKEY across
// threads.
class NoteVerifier {
 public:
  // A verifier key text, which fixes the key's name: only signatures
  // under that name are this key's. INVALID_ARGUMENT when it is
  // malformed, not Ed25519, or its key id does not match its name and key.
  static absl::StatusOr<NoteVerifier> FromVerifierKey(absl::string_view vkey);
  // A SubjectPublicKeyInfo PEM public key as `openssl pkey -pubout`
  // writes it. A PEM key carries no name, so a signature line under any
  // name is this key's when its key id is that name's key id for this key:
  // whoever has the PEM file trusts the key, whatever the log calls it.
  // Errors as NoteSigner::FromPemFile's.
  static absl::StatusOr<NoteVerifier> FromPemFile(const std::string& path);
  static absl::StatusOr<NoteVerifier> FromPem(absl::string_view pem);
  // Either form, told apart by content: a PEM block, or one line of
  // verifier key text. A private key is refused, so that the auditor's
  // copy is never the one that signs.
  static absl::StatusOr<NoteVerifier> FromFile(const std::string& path);

  NoteVerifier(NoteVerifier&&) = default;
  NoteVerifier& operator=(NoteVerifier&&) = default;

  // The checkpoint that `note` signs with this key. Signatures by other
  // keys (witnesses, a rotated key) are skipped, as signed-note requires.
  // INVALID_ARGUMENT when the note is malformed (not UTF-8, control
  // characters, no empty line before the signatures, a bad signature
  // line, more than 100 signatures, this key's signature twice) or the
  // signed text is no checkpoint; DATA_LOSS when a signature of this key
  // does not verify: the note was altered after signing; NOT_FOUND when
  // no signature is this key's (the message lists those there are).
  // The origin is not checked against the key name: a caller following
  // one log compares it.
  absl::StatusOr<Checkpoint> Open(absl::string_view note) const;

 private:
  // FromPem, with errors naming `source` (the file, or "the PEM text").
  static absl::StatusOr<NoteVerifier> FromPemText(absl::string_view pem, absl::string_view source,
                                                  std::string description);
  NoteVerifier(checkpoint_internal::UniqueEvpPkey key, std::optional<std::string> key_name,
               const std::array<uint8_t, 32>& public_key, std::string description);

  checkpoint_internal::UniqueEvpPkey key_;
  // Unset for a PEM key, which accepts any name.
  std::optional<std::string> key_name_;
  std::array<uint8_t, 32> public_key_;
  // How errors name the key: "key <name> (key id <hex>)" or the PEM's file.
  std::string description_;
};

// The notes of a checkpoints file, in order, each with its signature
// lines. Empty lines after a note's signatures are dropped (a hand edit);
// the last note is returned even when cut short: Open says what is wrong.
std::vector<std::string> SplitNotes(absl::string_view file_text);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_CHECKPOINT_H_
