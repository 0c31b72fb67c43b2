// Signed checkpoints: the known answer of golang.org/x/mod/sumdb/note's
// published example (Ed25519 is deterministic, so our signature must be
// Go's byte for byte), round trips, every kind of alteration, malformed
// notes and keys, and PEM keys as the openssl tool writes them.
#include "service/audit/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

namespace trialrules {
namespace {

// golang.org/x/mod/sumdb/note example_test.go (ExampleSign, ExampleOpen).
constexpr absl::string_view kGoVerifierKey =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
// The key after "PRIVATE+KEY+PeterNeumann+c74f20a3+": 0x01 || seed.
constexpr absl::string_view kGoPrivateKey = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr absl::string_view kGoText =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
constexpr absl::string_view kGoNote =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\xE2\x80\x94 PeterNeumann "
    "x08go/ZJkuBS9UG/"
    "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

// Written by `openssl genpkey -algorithm ed25519` and `openssl pkey
// -pubout`; its seed is kPemSeedHex.
constexpr absl::string_view kEd25519PrivatePem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIBXBdoT4Lpyuh4KOCEt4UojZuga6OTKJO2fTZrGo6ypc\n"
    "-----END PRIVATE KEY-----\n";
constexpr absl::string_view kEd25519PublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAKkQUIFUlwSjGMSimi0hgwv+0AdQFerF1v3xWyVRz+7I=\n"
    "-----END PUBLIC KEY-----\n";
constexpr absl::string_view kPemSeedHex =
    "15c17684f82e9cae87828e084b785288d9ba06ba3932893b67d366b1a8eb2a5c";
// The same key encrypted (`-aes-128-cbc -pass pass:secret`).
constexpr absl::string_view kEncryptedPem =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhdW9ZBA0UckAICCAAw\n"
    "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEAQIEEJddJny+T2dnCdKJvp6cTuYEQP2b\n"
    "U09YMj+BxrQD+MPOQ7lGKRLReMEn+diBZgksuzoymmYTyqNtmrdBrTt3/4aUamSl\n"
    "uaK+hRqnvWBtrxaW08Y=\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n";
// `openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024`.
constexpr absl::string_view kRsaPrivatePem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAL7Le/SfYlon3sWX\n"
    "lZSSVh9vJl7F3KCyNYr4I8+rJxSt+vDgWD6wP+0ekJFKZPWlaWzKZ6AyANcHsGZc\n"
    "mxf4jZYiYgI0JBr7+4k71Tv/YydVPWS2G5yws9TQcdIYOmpkP9ZmmptCyGcBySw5\n"
    "zL+PaSq+uP0NUT/TM1D1Oz2MNK9JAgMBAAECgYEAnqPa4T9VK9lS5cBwYyR575Ef\n"
    "ulWSaRtEYdSJEjchO5SdvoMLXLR3stVjJytQXt+2lPqGxzBMen6uMa52VqwYLHjB\n"
    "0rBGJvzwMDCNcgzZzOZeBSd2HYRBKAFr6naAuvMIJ2aSnCfYtMGnP4Qc/xotm/hx\n"
    "O3pB0fERYC2TcTx/FsECQQDuRFQXCsrUTWcuUJneCN5J87gpeFw5roMsyCMnivuo\n"
    "p2SofeDRDegbDi0OcRtc9y4DRkK8YgiDREdSF46OKQ7VAkEAzP6tJTtUYy3C403c\n"
    "p+It1TXQOlog5wadQ5S7KYi7x7ObEliforu7rnfKvk6ahe8EdvvyDgxq4cxq2haX\n"
    "XxWgpQJBAIc1Uxq4Tx1mxzSrHIW5Npt0qH8wA/XfqCSTdg+MeP7d7usGc7tuTtZ7\n"
    "lunpGYQJ6JyHFHvejcIfzvEw2P6nIfkCQFibnOwDAS79kMf/1+kZcwY+BIu0eZRi\n"
    "34deuqfxWnmvwM/lTttgmneHgDNSdqh98EgeDzrTUz/WxDkQms2W46ECQB1VYq5h\n"
    "HhRiQ40F1X1ECy0JgOrc30gsSQ7EjorOxaZmlDEpWuW9h3Tm5JrxuQE/S+XPRYIP\n"
    "E+7mkQmLBKeZsOU=\n"
    "-----END PRIVATE KEY-----\n";
// `openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256`, public.
constexpr absl::string_view kEcPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/fmx8+ZSTg3nD6oTxAQWS4bGYX0f\n"
    "uG3pgd1C33lrW6vpGBwqSysPonGJhL55ctorWs+z04zs2zHK3Jlibj0u9g==\n"
    "-----END PUBLIC KEY-----\n";

// The tlog-checkpoint specification's example tree head.
constexpr absl::string_view kOrigin = "example.com/behind-the-sofa";
constexpr absl::string_view kRootBase64 = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

void ExpectError(const absl::Status& status, absl::StatusCode code, absl::string_view part) {
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), part))
      << "\"" << status.message() << "\" does not contain \"" << part << "\"";
}

std::array<uint8_t, 32> Bytes32(absl::string_view bytes) {
  std::array<uint8_t, 32> array{};
  EXPECT_EQ(bytes.size(), array.size());
  std::copy_n(bytes.begin(), std::min(bytes.size(), array.size()), array.begin());
  return array;
}

std::array<uint8_t, 32> GoSeed() {
  std::string key;
  EXPECT_TRUE(absl::Base64Unescape(kGoPrivateKey, &key));
  EXPECT_EQ(key[0], '\x01');
  return Bytes32(absl::string_view(key).substr(1));
}

std::array<uint8_t, 32> Seed(char fill) {
  std::array<uint8_t, 32> seed;
  seed.fill(static_cast<uint8_t>(fill));
  return seed;
}

NoteSigner Signer(char fill, std::string name) {
  absl::StatusOr<NoteSigner> signer = NoteSigner::FromSeed(Seed(fill), std::move(name));
  EXPECT_TRUE(signer.ok()) << signer.status();
  return *std::move(signer);
}

NoteVerifier VerifierOf(const NoteSigner& signer) {
  absl::StatusOr<NoteVerifier> verifier = NoteVerifier::FromVerifierKey(signer.VerifierKey());
  EXPECT_TRUE(verifier.ok()) << verifier.status();
  return *std::move(verifier);
}

Checkpoint ExampleCheckpoint() {
  std::string root;
  EXPECT_TRUE(absl::Base64Unescape(kRootBase64, &root));
  return Checkpoint{std::string(kOrigin), 20852163, Bytes32(root), {}};
}

std::string SignedExample(const NoteSigner& signer) {
  absl::StatusOr<std::string> note = signer.Sign(CheckpointBody(ExampleCheckpoint()));
  EXPECT_TRUE(note.ok()) << note.status();
  return note.value_or("");
}

bool operator==(const Checkpoint& a, const Checkpoint& b) {
  return a.origin == b.origin && a.size == b.size && a.root == b.root &&
         a.extensions == b.extensions;
}

// Go's note package, byte for byte.

TEST(CheckpointTest, SignsGoNotesExample) {
  absl::StatusOr<NoteSigner> signer = NoteSigner::FromSeed(GoSeed(), "PeterNeumann");
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ(signer->key_name(), "PeterNeumann");
  EXPECT_EQ(signer->key_id(), 0xc74f20a3u);
  EXPECT_EQ(signer->VerifierKey(), kGoVerifierKey);
  absl::StatusOr<std::string> note = signer->Sign(kGoText);
  ASSERT_TRUE(note.ok()) << note.status();
  EXPECT_EQ(*note, kGoNote);
}

TEST(CheckpointTest, OpensGoNotesExampleButItIsNoCheckpoint) {
  absl::StatusOr<NoteVerifier> verifier = NoteVerifier::FromVerifierKey(kGoVerifierKey);
  ASSERT_TRUE(verifier.ok()) << verifier.status();
  // Verified (an altered note is DATA_LOSS), then refused as a checkpoint.
  ExpectError(verifier->Open(kGoNote).status(), absl::StatusCode::kInvalidArgument,
              "the signed text is not a checkpoint");
  const std::string altered = absl::StrReplaceAll(kGoNote, {{"cryptography", "Cryptography"}});
  ExpectError(verifier->Open(altered).status(), absl::StatusCode::kDataLoss,
              "checkpoint signature does not verify with key PeterNeumann (key id c74f20a3)");
}

// Checkpoint text.

TEST(CheckpointTest, BodyIsTheSpecificationsFormat) {
  EXPECT_EQ(CheckpointBody(ExampleCheckpoint()),
            absl::StrCat(kOrigin, "\n20852163\n", kRootBase64, "\n"));
  Checkpoint with_extensions = ExampleCheckpoint();
  with_extensions.extensions = {"ext one", "ext two"};
  EXPECT_EQ(CheckpointBody(with_extensions),
            absl::StrCat(kOrigin, "\n20852163\n", kRootBase64, "\next one\next two\n"));
}

TEST(CheckpointTest, BodyRoundTrips) {
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, uint64_t{20852163}, ~uint64_t{0}}) {
    Checkpoint checkpoint = ExampleCheckpoint();
    checkpoint.size = size;
    checkpoint.root[31] = static_cast<uint8_t>(size);
    if (size == 1) checkpoint.extensions = {"x", "é ünïcode"};
    absl::StatusOr<Checkpoint> parsed = ParseCheckpointBody(CheckpointBody(checkpoint));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_TRUE(*parsed == checkpoint) << CheckpointBody(*parsed);
  }
}

TEST(CheckpointTest, MalformedBodiesAreRefused) {
  const std::string root(kRootBase64);
  const struct {
    std::string body;
    absl::string_view error;
  } cases[] = {
      {"", "does not end in a newline"},
      {absl::StrCat("o\n1\n", root), "does not end in a newline"},
      {"o\n1\n", "2 line(s)"},
      {absl::StrCat("\n1\n", root, "\n"), "line 1: the origin is empty"},
      {absl::StrCat("o\n\n", root, "\n"), "line 2"},
      {absl::StrCat("o\n+1\n", root, "\n"), "line 2: the tree size \"+1\""},
      {absl::StrCat("o\n-1\n", root, "\n"), "line 2"},
      {absl::StrCat("o\n01\n", root, "\n"), "line 2: the tree size \"01\""},
      {absl::StrCat("o\n 1\n", root, "\n"), "line 2"},
      {absl::StrCat("o\n0x10\n", root, "\n"), "line 2"},
      {absl::StrCat("o\n18446744073709551616\n", root, "\n"), "line 2"},
      {"o\n1\nnot base64!\n", "line 3: the root hash"},
      {"o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n", "line 3"},       // unpadded
      {"o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", "line 3"},      // trailing bits
      {"o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx\n", "line 3"},          // 30 bytes
      {"o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=AA==\n", "line 3"},  // 2 more
      {absl::StrCat("o\n1\n", root, "\n\n"), "line 4: an extension line is empty"},
      {absl::StrCat("o\n1\n", root, "\next\n\nmore\n"), "line 5"},
      {absl::StrCat("o\r\n1\n", root, "\n"), "control character 0x0d"},
      {absl::StrCat("o\xff\n1\n", root, "\n"), "not UTF-8"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(absl::CEscape(c.body));
    ExpectError(ParseCheckpointBody(c.body).status(), absl::StatusCode::kInvalidArgument, c.error);
  }
  // The largest size is accepted.
  EXPECT_TRUE(ParseCheckpointBody(absl::StrCat("o\n18446744073709551615\n", root, "\n")).ok());
}

// Signing and opening.

TEST(CheckpointTest, SignedCheckpointOpens) {
  const NoteSigner signer = Signer('a', std::string(kOrigin));
  const std::string note = SignedExample(signer);
  EXPECT_TRUE(absl::StartsWith(
      note, absl::StrCat(CheckpointBody(ExampleCheckpoint()), "\n", "\xE2\x80\x94 ", kOrigin, " ")))
      << note;
  absl::StatusOr<Checkpoint> opened = VerifierOf(signer).Open(note);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(*opened == ExampleCheckpoint());

  Checkpoint with_extensions = ExampleCheckpoint();
  with_extensions.extensions = {"kept as given"};
  absl::StatusOr<std::string> extended = signer.Sign(CheckpointBody(with_extensions));
  ASSERT_TRUE(extended.ok());
  opened = VerifierOf(signer).Open(*extended);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_TRUE(*opened == with_extensions);
}

TEST(CheckpointTest, AlteredNotesDoNotVerify) {
  const NoteSigner signer = Signer('a', "log.example");
  const NoteVerifier verifier = VerifierOf(signer);
  const std::string note = SignedExample(signer);
  const std::string key =
      absl::StrCat("key log.example (key id ", absl::Hex(signer.key_id(), absl::kZeroPad8), ")");
  const std::string altered_text[] = {
      absl::StrReplaceAll(note, {{"\n20852163\n", "\n20852164\n"}}),
      absl::StrReplaceAll(note, {{"\n20852163\n", "\n2085216\n"}}),
      absl::StrReplaceAll(note, {{"CsUY", "DsUY"}}),
      absl::StrReplaceAll(note, {{"behind-the-sofa", "behind-the-sofb"}}),
      absl::StrReplaceAll(note, {{"2I=\n\n", "2I=\nextension\n\n"}}),
  };
  for (const std::string& altered : altered_text) {
    ASSERT_NE(altered, note);
    ExpectError(verifier.Open(altered).status(), absl::StatusCode::kDataLoss,
                absl::StrCat("checkpoint signature does not verify with ", key));
  }

  // Each byte of the Ed25519 signature, after the 4-byte key id.
  const size_t line = note.rfind("\xE2\x80\x94");
  const size_t base64_at = note.find(' ', line + 4) + 1;
  std::string signature;
  ASSERT_TRUE(absl::Base64Unescape(
      absl::string_view(note).substr(base64_at, note.size() - base64_at - 1), &signature));
  ASSERT_EQ(signature.size(), 68u);
  for (size_t i = 4; i < signature.size(); ++i) {
    std::string flipped = signature;
    flipped[i] ^= 0x01;
    const std::string altered =
        absl::StrCat(note.substr(0, base64_at), absl::Base64Escape(flipped), "\n");
    ExpectError(verifier.Open(altered).status(), absl::StatusCode::kDataLoss, key);
  }
  // A signature cut short or made longer is this key's and does not verify.
  for (size_t size : {5u, 67u, 69u}) {
    std::string resized = signature;
    resized.resize(size, '\0');
    ExpectError(
        verifier.Open(absl::StrCat(note.substr(0, base64_at), absl::Base64Escape(resized), "\n"))
            .status(),
        absl::StatusCode::kDataLoss, key);
  }
  // Another key id is another key's signature: none is left of this key.
  std::string other_id = signature;
  other_id[0] ^= 0x01;
  ExpectError(
      verifier.Open(absl::StrCat(note.substr(0, base64_at), absl::Base64Escape(other_id), "\n"))
          .status(),
      absl::StatusCode::kNotFound, absl::StrCat("no signature by ", key));
}

TEST(CheckpointTest, WrongKeyIsNamed) {
  const NoteSigner signer = Signer('a', "log.example");
  const std::string note = SignedExample(signer);
  // Another key under another name, and under the same name.
  const NoteSigner other = Signer('b', "other.example");
  ExpectError(VerifierOf(other).Open(note).status(), absl::StatusCode::kNotFound,
              absl::StrCat("no signature by key other.example (key id ",
                           absl::Hex(other.key_id(), absl::kZeroPad8),
                           "); the note is signed by key log.example (key id ",
                           absl::Hex(signer.key_id(), absl::kZeroPad8), ")"));
  const NoteSigner same_name = Signer('b', "log.example");
  ASSERT_NE(same_name.key_id(), signer.key_id());
  ExpectError(VerifierOf(same_name).Open(note).status(), absl::StatusCode::kNotFound,
              "no signature by key log.example");
  // The same key under another name.
  const NoteSigner renamed = Signer('a', "renamed.example");
  ExpectError(VerifierOf(renamed).Open(note).status(), absl::StatusCode::kNotFound,
              "no signature by key renamed.example");
}

TEST(CheckpointTest, OtherKeysSignaturesAreSkipped) {
  const NoteSigner log = Signer('a', "log.example");
  const NoteSigner witness = Signer('w', "witness.example");
  const std::string body = CheckpointBody(ExampleCheckpoint());
  const std::string by_log = SignedExample(log);
  absl::StatusOr<std::string> by_witness = witness.Sign(body);
  ASSERT_TRUE(by_witness.ok());
  const std::string witness_line = by_witness->substr(body.size() + 1);
  // The witness's line before and after the log's.
  for (const std::string& note :
       {absl::StrCat(by_log, witness_line),
        absl::StrCat(body, "\n", witness_line, by_log.substr(body.size() + 1))}) {
    for (const NoteSigner* signer : {&log, &witness}) {
      absl::StatusOr<Checkpoint> opened = VerifierOf(*signer).Open(note);
      ASSERT_TRUE(opened.ok()) << opened.status() << "\n" << note;
      EXPECT_TRUE(*opened == ExampleCheckpoint());
    }
  }
  // Unknown lines need only be well formed: they are not verified.
  const std::string unknown = absl::StrCat(by_log, "\xE2\x80\x94 unknown.example ",
                                           absl::Base64Escape("\x01\x02\x03\x04garbage"), "\n");
  EXPECT_TRUE(VerifierOf(log).Open(unknown).ok());
  // A bad signature by this key is not saved by a good one.
  const std::string good_line = by_log.substr(body.size() + 1);
  // (The last character before the padding carries zero bits: change the
  // one before it, so that the base64 stays canonical.)
  std::string bad_line = good_line;
  char& changed = bad_line[bad_line.size() - 4];
  changed = changed == 'A' ? 'B' : 'A';
  ExpectError(VerifierOf(log).Open(absl::StrCat(body, "\n", bad_line, good_line)).status(),
              absl::StatusCode::kDataLoss, "does not verify");
  // Nor is the same signature counted twice.
  ExpectError(VerifierOf(log).Open(absl::StrCat(by_log, good_line)).status(),
              absl::StatusCode::kInvalidArgument, "signature line 2: a second signature by key");
}

TEST(CheckpointTest, MalformedNotesAreRefused) {
  const NoteSigner signer = Signer('a', "log.example");
  const NoteVerifier verifier = VerifierOf(signer);
  const std::string note = SignedExample(signer);
  const std::string body = CheckpointBody(ExampleCheckpoint());
  const std::string line = note.substr(body.size() + 1);
  const std::string base64 = line.substr(line.find(' ', 4) + 1);
  std::string many = note;
  for (int i = 0; i < 100; ++i) {
    absl::StrAppend(&many, "\xE2\x80\x94 w", i, " ", absl::Base64Escape("\x01\x02\x03\x04xx"),
                    "\n");
  }
  const struct {
    std::string note;
    absl::string_view error;
  } cases[] = {
      {"", "no empty line before its signatures"},
      {absl::StrCat(body, line), "no empty line before its signatures"},
      {note.substr(0, note.size() - 1), "does not end in a newline"},
      {absl::StrCat(note, "\n"), "no signature after its last empty line"},
      {absl::StrCat(body, "\n"), "no signature after its last empty line"},
      {absl::StrCat(body, "\n- log.example ", base64),
       "signature line 1 does not start with an em dash"},
      {absl::StrCat(body, "\n\xE2\x80\x94log.example ", base64), "signature line 1 does not start"},
      {absl::StrCat(note, "trailing text\n"), "signature line 2 does not start"},
      {absl::StrCat(body, "\n\xE2\x80\x94 log+example ", base64),
       "\"log+example\" is not a key name"},
      {absl::StrCat(body, "\n\xE2\x80\x94  ", base64), "\"\" is not a key name"},
      {absl::StrCat(body, "\n\xE2\x80\x94 log.example\n"),
       "(by log.example): the signature is not"},
      {absl::StrCat(body, "\n\xE2\x80\x94 log.example !!!!\n"), "the signature is not the base64"},
      {absl::StrCat(body, "\n\xE2\x80\x94 log.example ", base64.substr(0, base64.size() - 2), "\n"),
       "the signature is not the base64"},
      {absl::StrCat(body, "\n\xE2\x80\x94 log.example  ", base64),
       "the signature is not the base64"},
      {absl::StrCat(body, "\n\xE2\x80\x94 log.example AQIDBA==\n"),
       "the signature is not the base64"},
      {absl::StrCat(body, "\n\xE2\x80\x94 log.example ", base64.substr(0, base64.size() - 1),
                    "\r\n"),
       "control character 0x0d"},
      {absl::StrCat("\xc3", note), "not UTF-8"},
      {absl::StrCat("o\tx", note.substr(1)), "control character 0x09"},
      {many, "more than 100 signatures"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(absl::CEscape(c.note));
    ExpectError(verifier.Open(c.note).status(), absl::StatusCode::kInvalidArgument, c.error);
  }
}

TEST(CheckpointTest, SignRefusesTextNoVerifierCouldOpen) {
  const NoteSigner signer = Signer('a', "log.example");
  ExpectError(signer.Sign("").status(), absl::StatusCode::kInvalidArgument,
              "does not end in a newline");
  ExpectError(signer.Sign("no newline").status(), absl::StatusCode::kInvalidArgument,
              "does not end in a newline");
  ExpectError(signer.Sign("carriage\r\n").status(), absl::StatusCode::kInvalidArgument,
              "control character 0x0d");
  ExpectError(signer.Sign("\xff\n").status(), absl::StatusCode::kInvalidArgument, "not UTF-8");
}

TEST(CheckpointTest, KeyNamesAreChecked) {
  for (absl::string_view name : {"", "a b", "a+b", "tab\there", "nbsp\xC2\xA0here",
                                 "ideographic\xE3\x80\x80space", "bad\xFFutf8"}) {
    SCOPED_TRACE(absl::CEscape(name));
    ExpectError(NoteSigner::FromSeed(Seed('a'), std::string(name)).status(),
                absl::StatusCode::kInvalidArgument, "is not a signed-note key name");
  }
  EXPECT_TRUE(NoteSigner::FromSeed(Seed('a'), "ünïcode.example/log-1").ok());
}

TEST(CheckpointTest, MalformedVerifierKeysAreRefused) {
  const std::string good(kGoVerifierKey);
  EXPECT_TRUE(NoteVerifier::FromVerifierKey(good).ok());
  // Either case of hex.
  EXPECT_TRUE(
      NoteVerifier::FromVerifierKey(absl::StrReplaceAll(good, {{"c74f20a3", "C74F20A3"}})).ok());
  const struct {
    std::string vkey;
    absl::string_view error;
  } cases[] = {
      {"", "is not <name>+<key id>+<base64 key>"},
      {"PeterNeumann+c74f20a3", "is not <name>+<key id>+<base64 key>"},
      {absl::StrCat("Peter Neumann", good.substr(12)), "is not a signed-note key name"},
      {absl::StrReplaceAll(good, {{"c74f20a3", "c74f20a"}}), "\"c74f20a\" is not 8 hex digits"},
      {absl::StrReplaceAll(good, {{"c74f20a3", "+74f20a3"}}), "is not 8 hex digits"},
      {absl::StrReplaceAll(good, {{"c74f20a3", "c74f20a4"}}),
       "the key id c74f20a4 is not that of its name and key, c74f20a3"},
      {absl::StrReplaceAll(good, {{"PeterNeumann+", "PeterNeuman+"}}), "is not that of its name"},
      {absl::StrReplaceAll(good, {{"ARpc", "ARpd"}}), "is not that of its name"},
      {absl::StrReplaceAll(good, {{"ARpc", "AhRpc"}}), "the key is not base64"},
      {absl::StrCat(good, "AA"), "the key is not base64"},
      {absl::StrReplaceAll(good, {{"ARpc", "AhRp"}}), "is not an Ed25519 key"},
      {"name+00000000+", "the key is not base64"},
      {"name+00000000+AQ==", "is not an Ed25519 key"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.vkey);
    ExpectError(NoteVerifier::FromVerifierKey(c.vkey).status(), absl::StatusCode::kInvalidArgument,
                c.error);
  }
}

// Keys in files.

class CheckpointFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(::testing::TempDir()) / absl::StrCat("checkpoint_test_", ::getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(absl::string_view name, absl::string_view text) {
    const std::string path = (dir_ / std::string(name)).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(CheckpointFileTest, OpensslKeysSignAndVerify) {
  const std::string private_path = Write("log.key", kEd25519PrivatePem);
  const std::string public_path = Write("log.pub", kEd25519PublicPem);
  absl::StatusOr<NoteSigner> signer = NoteSigner::FromPemFile(private_path, "log.example");
  ASSERT_TRUE(signer.ok()) << signer.status();
  // The PEM's seed is the key.
  const std::string seed = absl::HexStringToBytes(kPemSeedHex);
  EXPECT_EQ(signer->VerifierKey(),
            NoteSigner::FromSeed(Bytes32(seed), "log.example")->VerifierKey());
  const std::string note = SignedExample(*signer);

  absl::StatusOr<NoteVerifier> from_pem = NoteVerifier::FromPemFile(public_path);
  ASSERT_TRUE(from_pem.ok()) << from_pem.status();
  absl::StatusOr<NoteVerifier> either_pem = NoteVerifier::FromFile(public_path);
  ASSERT_TRUE(either_pem.ok()) << either_pem.status();
  absl::StatusOr<NoteVerifier> either_vkey =
      NoteVerifier::FromFile(Write("log.vkey", absl::StrCat(signer->VerifierKey(), "\n")));
  ASSERT_TRUE(either_vkey.ok()) << either_vkey.status();
  for (const NoteVerifier* verifier : {&*from_pem, &*either_pem, &*either_vkey}) {
    absl::StatusOr<Checkpoint> opened = verifier->Open(note);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_TRUE(*opened == ExampleCheckpoint());
  }

  // A PEM key is trusted under any name; a verifier key under its own.
  absl::StatusOr<NoteSigner> renamed = NoteSigner::FromPem(kEd25519PrivatePem, "renamed.example");
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  const std::string renamed_note = SignedExample(*renamed);
  EXPECT_TRUE(from_pem->Open(renamed_note).ok());
  ExpectError(either_vkey->Open(renamed_note).status(), absl::StatusCode::kNotFound,
              "no signature by key log.example");
  // A PEM key names itself by its file.
  ExpectError(from_pem->Open(SignedExample(Signer('a', "log.example"))).status(),
              absl::StatusCode::kNotFound,
              absl::StrCat("no signature by the public key in ", public_path, " (under any name)"));
  std::string altered = absl::StrReplaceAll(note, {{"20852163", "20852164"}});
  ExpectError(from_pem->Open(altered).status(), absl::StatusCode::kDataLoss,
              "does not verify with key log.example");
}

TEST_F(CheckpointFileTest, OtherKeysAreRefusedByName) {
  const std::string rsa = Write("rsa.key", kRsaPrivatePem);
  ExpectError(NoteSigner::FromPemFile(rsa, "log.example").status(),
              absl::StatusCode::kInvalidArgument,
              absl::StrCat(rsa, ": the key is RSA, not Ed25519"));
  const std::string ec = Write("ec.pub", kEcPublicPem);
  ExpectError(NoteVerifier::FromPemFile(ec).status(), absl::StatusCode::kInvalidArgument,
              absl::StrCat(ec, ": the key is EC, not Ed25519"));
  ExpectError(NoteVerifier::FromFile(ec).status(), absl::StatusCode::kInvalidArgument,
              "the key is EC");

  const std::string missing = (dir_ / "missing.key").string();
  ExpectError(NoteSigner::FromPemFile(missing, "log.example").status(), absl::StatusCode::kNotFound,
              absl::StrCat(missing, ": cannot open the file"));
  ExpectError(NoteVerifier::FromPemFile(missing).status(), absl::StatusCode::kNotFound, missing);
  ExpectError(NoteVerifier::FromFile(missing).status(), absl::StatusCode::kNotFound, missing);

  // Never a passphrase prompt.
  const std::string encrypted = Write("encrypted.key", kEncryptedPem);
  ExpectError(NoteSigner::FromPemFile(encrypted, "log.example").status(),
              absl::StatusCode::kInvalidArgument, "is encrypted");
  // Each half where the other belongs.
  const std::string public_key = Write("log.pub", kEd25519PublicPem);
  ExpectError(NoteSigner::FromPemFile(public_key, "log.example").status(),
              absl::StatusCode::kInvalidArgument, "holds a public key");
  const std::string private_key = Write("log.key", kEd25519PrivatePem);
  ExpectError(NoteVerifier::FromPemFile(private_key).status(), absl::StatusCode::kInvalidArgument,
              "holds a private key");
  ExpectError(NoteVerifier::FromFile(private_key).status(), absl::StatusCode::kInvalidArgument,
              "holds a private key");

  const std::string garbage = Write("garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n");
  ExpectError(NoteVerifier::FromFile(garbage).status(), absl::StatusCode::kInvalidArgument,
              "no PEM public key");
  ExpectError(NoteSigner::FromPem("not PEM", "log.example").status(),
              absl::StatusCode::kInvalidArgument, "the PEM text: no PEM private key");
  ExpectError(NoteSigner::FromPemFile(private_key, "bad name").status(),
              absl::StatusCode::kInvalidArgument, "is not a signed-note key name");
  ExpectError(
      NoteVerifier::FromFile(Write("two.vkey", "a+00000000+AQ==\nb+00000000+AQ==\n")).status(),
      absl::StatusCode::kInvalidArgument, "neither a PEM public key nor one line");
  const std::string bad_vkey =
      Write("bad.vkey", "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW");
  ExpectError(NoteVerifier::FromFile(bad_vkey).status(), absl::StatusCode::kInvalidArgument,
              absl::StrCat(bad_vkey, ": the verifier key of PeterNeumann: the key id c74f20a4"));
}

// Checkpoints files.

TEST(CheckpointTest, SplitsNotesWrittenOneAfterAnother) {
  const NoteSigner log = Signer('a', "log.example");
  const NoteSigner witness = Signer('w', "witness.example");
  std::vector<std::string> notes;
  for (uint64_t size : {1, 2, 3}) {
    Checkpoint checkpoint = ExampleCheckpoint();
    checkpoint.size = size;
    const std::string body = CheckpointBody(checkpoint);
    std::string note = *log.Sign(body);
    // The second note has two signatures.
    if (size == 2) note += witness.Sign(body)->substr(body.size() + 1);
    notes.push_back(note);
  }
  const std::string file = absl::StrCat(notes[0], notes[1], notes[2]);
  EXPECT_EQ(SplitNotes(file), notes);
  for (size_t i = 0; i < notes.size(); ++i) {
    absl::StatusOr<Checkpoint> opened = VerifierOf(log).Open(SplitNotes(file)[i]);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->size, i + 1);
  }
  // Empty lines between notes are dropped.
  EXPECT_EQ(SplitNotes(absl::StrCat(notes[0], "\n", notes[1], "\n\n", notes[2], "\n")), notes);
  // A note cut short is returned as it is, for Open to refuse.
  const std::string cut = notes[2].substr(0, notes[2].size() - 10);
  EXPECT_EQ(SplitNotes(absl::StrCat(notes[0], cut)), (std::vector<std::string>{notes[0], cut}));
  EXPECT_FALSE(VerifierOf(log).Open(cut).ok());
  EXPECT_TRUE(SplitNotes("").empty());
  // A text line starting with a dash ends no note: signatures follow an
  // empty line.
  const std::string dashed = *log.Sign("\xE2\x80\x94 a dashed line\nand another\n");
  EXPECT_EQ(SplitNotes(absl::StrCat(dashed, notes[0])),
            (std::vector<std::string>{dashed, notes[0]}));
}

}  // namespace
}  // namespace trialrules
