// The Merkle tree of RFC 6962 / RFC 9162 (section 2.1) with SHA-256, for a
// tamper-evident audit log: each record is a leaf, a published root commits
// to every record before it, an inclusion proof shows that one record is in
// the log, and a consistency proof shows that a later log only appended to
// an earlier one. Pure hashing: no files, no clock.
//
// Proofs are lists of hashes ordered from the leaves up, as RFC 6962 PATH
// and PROOF give them, so that they interoperate with Certificate
// Transparency and transparency-dev/merkle clients.
#ifndef TRIALRULES_SERVICE_AUDIT_MERKLE_H_
#define TRIALRULES_SERVICE_AUDIT_MERKLE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace trialrules {

using Hash = std::array<uint8_t, 32>;

// SHA-256(0x00 || leaf). The distinct prefixes of leaves and nodes keep a
// leaf from being passed off as an interior node (a second preimage).
Hash LeafHash(absl::string_view leaf);
// SHA-256(0x01 || left || right).
Hash NodeHash(const Hash& left, const Hash& right);
// The root of the tree of no leaves: SHA-256 of nothing.
Hash EmptyTreeHash();

// Lowercase hex, 64 digits.
std::string HexOf(const Hash& hash);
// Exactly 64 hex digits, either case.
absl::StatusOr<Hash> HashFromHex(absl::string_view hex);

// The root (RFC 6962 MTH) of the tree whose leaves have these hashes:
// n - 1 node hashes, O(log n) memory.
Hash RootOf(absl::Span<const Hash> leaf_hashes);

// The inclusion proof (RFC 6962 PATH) of leaf `index` in the tree of the
// first `size` of `leaf_hashes`. Needs index < size <= leaf_hashes.size().
// Hashes the `size` leaves once (fewer than `size` node hashes); to answer
// many proofs over the same leaves, build a MerkleTree.
absl::StatusOr<std::vector<Hash>> InclusionProof(absl::Span<const Hash> leaf_hashes,
                                                 uint64_t index, uint64_t size);
// The consistency proof (RFC 6962 PROOF) that the tree of the first `m`
// leaves is a prefix of the tree of the first `n`. Needs m <= n <=
// leaf_hashes.size(); empty when m is 0 or m == n, which need no proof.
absl::StatusOr<std::vector<Hash>> ConsistencyProof(absl::Span<const Hash> leaf_hashes,
                                                   uint64_t m, uint64_t n);

// RFC 9162 2.1.3.2: OK when `proof` shows the leaf with `leaf_hash` at
// `index` in the tree of `size` leaves whose root is `root`.
// INVALID_ARGUMENT when no proof could (index >= size, a proof of the wrong
// length); DATA_LOSS when the hashes do not lead to `root`: the leaf, the
// proof or the root is not what was logged.
absl::Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t size,
                             absl::Span<const Hash> proof, const Hash& root);
// RFC 9162 2.1.4.2: OK when `proof` shows that the tree of `m` leaves with
// root `root_m` is a prefix of the tree of `n` leaves with root `root_n`.
// The empty tree is a prefix of every tree and the same size of itself, with
// an empty proof; `root_m` must still be the root of a tree of that size
// (EmptyTreeHash() for 0, `root_n` for n). Errors as for VerifyInclusion.
absl::Status VerifyConsistency(uint64_t m, uint64_t n, const Hash& root_m, const Hash& root_n,
                               absl::Span<const Hash> proof);

// An append-only tree that keeps only the roots of its perfect subtrees
// (the "compact range" of the whole tree: one per set bit of size()), for
// the log writer, which must publish roots without keeping every record.
// Append is amortised O(1) hashes, Root O(log n).
class CompactTree {
 public:
  CompactTree() = default;

  // Resumes a tree from a size and frontier() saved earlier, so that a
  // writer restarting need not rehash every record. INVALID_ARGUMENT unless
  // there is one hash per set bit of `size`.
  static absl::StatusOr<CompactTree> FromFrontier(uint64_t size, std::vector<Hash> frontier);

  void Append(const Hash& leaf_hash);
  uint64_t size() const { return size_; }
  // Equals RootOf(every leaf hash appended).
  Hash Root() const;
  // The perfect subtrees' roots, leftmost (largest) first.
  absl::Span<const Hash> frontier() const { return frontier_; }

 private:
  uint64_t size_ = 0;
  std::vector<Hash> frontier_;
};

// Every level of the tree over a list of leaf hashes, built once (n - 1
// node hashes, about 2n hashes of memory), for an auditor that answers many
// proofs: each then takes O(log n) lookups and, for a size that is not a
// power of two, O(log^2 n) node hashes at most. Proofs and roots may be for
// any size up to size(), as of an earlier published root.
class MerkleTree {
 public:
  explicit MerkleTree(absl::Span<const Hash> leaf_hashes);

  uint64_t size() const { return levels_[0].size(); }
  // The root of the first `size` leaves. Needs size <= size().
  absl::StatusOr<Hash> Root(uint64_t size) const;
  // As the functions of the same name over all the leaves.
  absl::StatusOr<std::vector<Hash>> InclusionProof(uint64_t index, uint64_t size) const;
  absl::StatusOr<std::vector<Hash>> ConsistencyProof(uint64_t m, uint64_t n) const;

 private:
  // The MTH of leaves [begin, end), where begin is a multiple of a power of
  // two at least end - begin: every subtree a proof names is.
  Hash Subtree(uint64_t begin, uint64_t end) const;

  // levels_[l][i] is the root of the perfect subtree of leaves
  // [i * 2^l, (i + 1) * 2^l); levels_[0] are the leaf hashes.
  std::vector<std::vector<Hash>> levels_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_AUDIT_MERKLE_H_
