#include "service/audit/merkle.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/util/sha256.h"

namespace trialrules {
namespace {

absl::string_view BytesOf(const Hash& hash) {
  return absl::string_view(reinterpret_cast<const char*>(hash.data()), hash.size());
}

// RFC 6962's k for a tree of n > 1 leaves: the largest power of two below
// n, the size of the left subtree.
uint64_t SplitOf(uint64_t n) { return std::bit_floor(n - 1); }

// The MTH of `leaves` by appending them to a stack of perfect subtree roots
// (as CompactTree does, without allocating): each node is hashed once.
Hash FoldLeaves(absl::Span<const Hash> leaves) {
  if (leaves.empty()) return EmptyTreeHash();
  Hash stack[64];
  int depth = 0;
  for (uint64_t size = 1; size <= leaves.size(); ++size) {
    stack[depth++] = leaves[size - 1];
    for (uint64_t s = size; (s & 1) == 0; s >>= 1) {
      --depth;
      stack[depth - 1] = NodeHash(stack[depth - 1], stack[depth]);
    }
  }
  Hash root = stack[--depth];
  while (depth > 0) {
    --depth;
    root = NodeHash(stack[depth], root);
  }
  return root;
}

// RFC 6962 2.1.1 PATH(index, D[0:size]), walked from the root down: each
// step keeps the half holding `index` and takes the other half's root.
// `subtree(begin, end)` gives the MTH of leaves [begin, end).
template <typename Subtree>
std::vector<Hash> InclusionPath(uint64_t index, uint64_t size, const Subtree& subtree) {
  std::vector<Hash> path;
  uint64_t begin = 0, end = size;
  while (end - begin > 1) {
    const uint64_t k = SplitOf(end - begin);
    if (index < begin + k) {
      path.push_back(subtree(begin + k, end));
      end = begin + k;
    } else {
      path.push_back(subtree(begin, begin + k));
      begin += k;
    }
  }
  std::reverse(path.begin(), path.end());  // leaves up
  return path;
}

// RFC 6962 2.1.2 PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true), walked from
// the root down; `whole` is SUBPROOF's b: whether [begin, end) still starts
// at leaf 0, so that the verifier knows its root (root_m) already.
template <typename Subtree>
std::vector<Hash> ConsistencyPath(uint64_t m, uint64_t n, const Subtree& subtree) {
  std::vector<Hash> path;
  if (m == 0 || m == n) return path;
  uint64_t begin = 0, end = n;
  bool whole = true;
  while (m - begin != end - begin) {
    const uint64_t k = SplitOf(end - begin);
    if (m - begin <= k) {
      path.push_back(subtree(begin + k, end));
      end = begin + k;
    } else {
      path.push_back(subtree(begin, begin + k));
      begin += k;
      whole = false;
    }
  }
  if (!whole) path.push_back(subtree(begin, end));
  std::reverse(path.begin(), path.end());
  return path;
}

// The number of hashes in the inclusion proof of `index` in a tree of
// `size`: one per level below the point where the paths to `index` and to
// the last leaf part, then one per left sibling along the right border.
uint64_t InclusionProofLength(uint64_t index, uint64_t size) {
  const int inner = std::bit_width(index ^ (size - 1));
  return inner + std::popcount(index >> inner);
}

// The same for the consistency proof of 0 < m < n: the inclusion proof of
// leaf m - 1 without the levels inside the perfect subtree that ends at m
// (whose root is the proof's first hash, or root_m itself when m is a
// power of two).
uint64_t ConsistencyProofLength(uint64_t m, uint64_t n) {
  const int shift = std::countr_zero(m);
  const int inner = std::bit_width((m - 1) ^ (n - 1));
  const uint64_t border = std::popcount((m - 1) >> inner);
  return (std::has_single_bit(m) ? 0 : 1) + (inner - shift) + border;
}

absl::Status Mismatch(absl::string_view what, const Hash& computed, const Hash& expected) {
  return absl::DataLossError(absl::StrCat(what, " computes ", HexOf(computed), " but expected ",
                                          HexOf(expected)));
}

}  // namespace

Hash LeafHash(absl::string_view leaf) {
  return Sha256Digest({absl::string_view("\0", 1), leaf});
}

Hash NodeHash(const Hash& left, const Hash& right) {
  return Sha256Digest({absl::string_view("\1", 1), BytesOf(left), BytesOf(right)});
}

Hash EmptyTreeHash() {
  static const Hash empty = Sha256Digest({});
  return empty;
}

std::string HexOf(const Hash& hash) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(2 * hash.size(), '\0');
  for (size_t i = 0; i < hash.size(); ++i) {
    hex[2 * i] = kHex[hash[i] >> 4];
    hex[2 * i + 1] = kHex[hash[i] & 0xf];
  }
  return hex;
}

absl::StatusOr<Hash> HashFromHex(absl::string_view hex) {
  Hash hash;
  if (hex.size() != 2 * hash.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a SHA-256 hash is 64 hex digits, not ", hex.size(), " characters"));
  }
  for (size_t i = 0; i < hex.size(); ++i) {
    const char c = hex[i];
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("character ", i + 1, " of a hash is not a hex digit"));
    }
    if (i % 2 == 0) {
      hash[i / 2] = static_cast<uint8_t>(digit << 4);
    } else {
      hash[i / 2] |= static_cast<uint8_t>(digit);
    }
  }
  return hash;
}

Hash RootOf(absl::Span<const Hash> leaf_hashes) { return FoldLeaves(leaf_hashes); }

absl::StatusOr<std::vector<Hash>> InclusionProof(absl::Span<const Hash> leaf_hashes,
                                                 uint64_t index, uint64_t size) {
  if (size > leaf_hashes.size()) {
    return absl::OutOfRangeError(
        absl::StrCat("tree size ", size, " is beyond the ", leaf_hashes.size(), " leaves"));
  }
  if (index >= size) {
    return absl::OutOfRangeError(
        absl::StrCat("leaf index ", index, " is not in a tree of size ", size));
  }
  // The subtrees PATH names are disjoint, so the proof hashes each leaf at
  // most once.
  return InclusionPath(index, size, [&](uint64_t begin, uint64_t end) {
    return FoldLeaves(leaf_hashes.subspan(begin, end - begin));
  });
}

absl::StatusOr<std::vector<Hash>> ConsistencyProof(absl::Span<const Hash> leaf_hashes,
                                                   uint64_t m, uint64_t n) {
  if (n > leaf_hashes.size()) {
    return absl::OutOfRangeError(
        absl::StrCat("tree size ", n, " is beyond the ", leaf_hashes.size(), " leaves"));
  }
  if (m > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("no consistency proof from size ", m, " to the smaller size ", n));
  }
  return ConsistencyPath(m, n, [&](uint64_t begin, uint64_t end) {
    return FoldLeaves(leaf_hashes.subspan(begin, end - begin));
  });
}

absl::Status VerifyInclusion(const Hash& leaf_hash, uint64_t index, uint64_t size,
                             absl::Span<const Hash> proof, const Hash& root) {
  if (index >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf index ", index, " is not in a tree of size ", size));
  }
  // The algorithm below also fails a proof of the wrong length; checking
  // first says so plainly.
  const uint64_t want = InclusionProofLength(index, size);
  if (proof.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("an inclusion proof of leaf ", index,
                                                   " in a tree of size ", size, " has ", want,
                                                   " hashes, not ", proof.size()));
  }
  // RFC 9162 2.1.3.2: fn is the node's index on its level, sn the last
  // node's; a node that is a right child or the last of its level (whose
  // missing right sibling promotes it unchanged) takes its proof hash on
  // the left.
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return absl::InvalidArgumentError("the inclusion proof is too long");
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::InvalidArgumentError("the inclusion proof is too short");
  if (r != root) return Mismatch("the inclusion proof", r, root);
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t m, uint64_t n, const Hash& root_m, const Hash& root_n,
                               absl::Span<const Hash> proof) {
  if (m > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("no consistency proof from size ", m, " to the smaller size ", n));
  }
  if (m == 0 || m == n) {
    if (!proof.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a consistency proof from size ", m, " to size ", n, " is empty, not ", proof.size(),
          " hashes"));
    }
    if (m == 0 && root_m != EmptyTreeHash()) {
      return Mismatch("a tree of size 0", EmptyTreeHash(), root_m);
    }
    if (m == n && root_m != root_n) return Mismatch("a tree of the same size", root_m, root_n);
    return absl::OkStatus();
  }
  const uint64_t want = ConsistencyProofLength(m, n);
  if (proof.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("a consistency proof from size ", m,
                                                   " to size ", n, " has ", want,
                                                   " hashes, not ", proof.size()));
  }
  // RFC 9162 2.1.4.2. When m is a power of two the tree of m is itself a
  // perfect subtree of the tree of n and root_m starts the chain; otherwise
  // the proof's first hash (the largest perfect subtree ending at leaf m)
  // does. fr rebuilds root_m from the hashes left of the path, sr root_n
  // from all of them.
  const bool starts_with_root_m = std::has_single_bit(m);
  absl::Span<const Hash> rest = starts_with_root_m ? proof : proof.subspan(1);
  uint64_t fn = m - 1, sn = n - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = starts_with_root_m ? root_m : proof[0];
  Hash sr = fr;
  for (const Hash& c : rest) {
    if (sn == 0) return absl::InvalidArgumentError("the consistency proof is too long");
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return absl::InvalidArgumentError("the consistency proof is too short");
  if (fr != root_m) return Mismatch("the consistency proof's first tree", fr, root_m);
  if (sr != root_n) return Mismatch("the consistency proof's second tree", sr, root_n);
  return absl::OkStatus();
}

absl::StatusOr<CompactTree> CompactTree::FromFrontier(uint64_t size, std::vector<Hash> frontier) {
  if (frontier.size() != static_cast<size_t>(std::popcount(size))) {
    return absl::InvalidArgumentError(absl::StrCat("a tree of size ", size, " has ",
                                                   std::popcount(size),
                                                   " perfect subtrees, not ", frontier.size()));
  }
  CompactTree tree;
  tree.size_ = size;
  tree.frontier_ = std::move(frontier);
  return tree;
}

void CompactTree::Append(const Hash& leaf_hash) {
  frontier_.push_back(leaf_hash);
  ++size_;
  // Each trailing zero bit of the new size is two equal perfect subtrees
  // becoming one.
  for (uint64_t s = size_; (s & 1) == 0; s >>= 1) {
    const Hash right = frontier_.back();
    frontier_.pop_back();
    frontier_.back() = NodeHash(frontier_.back(), right);
  }
}

Hash CompactTree::Root() const {
  if (frontier_.empty()) return EmptyTreeHash();
  // RFC 6962 splits off the largest perfect subtree on the left, so the
  // root joins the frontier from the right.
  Hash root = frontier_.back();
  for (size_t i = frontier_.size() - 1; i-- > 0;) root = NodeHash(frontier_[i], root);
  return root;
}

MerkleTree::MerkleTree(absl::Span<const Hash> leaf_hashes) {
  levels_.emplace_back(leaf_hashes.begin(), leaf_hashes.end());
  while (levels_.back().size() > 1) {
    const std::vector<Hash>& below = levels_.back();
    std::vector<Hash> level(below.size() / 2);
    for (size_t i = 0; i < level.size(); ++i) level[i] = NodeHash(below[2 * i], below[2 * i + 1]);
    levels_.push_back(std::move(level));
  }
}

Hash MerkleTree::Subtree(uint64_t begin, uint64_t end) const {
  if (begin == end) return EmptyTreeHash();
  // Perfect subtrees, largest first, each aligned to its own size because
  // begin is aligned to a larger one; joined from the right as in MTH.
  Hash pieces[64];
  int count = 0;
  for (uint64_t at = begin; at < end;) {
    const int level = std::bit_width(end - at) - 1;
    pieces[count++] = levels_[level][at >> level];
    at += uint64_t{1} << level;
  }
  Hash root = pieces[--count];
  while (count > 0) {
    --count;
    root = NodeHash(pieces[count], root);
  }
  return root;
}

absl::StatusOr<Hash> MerkleTree::Root(uint64_t size) const {
  if (size > this->size()) {
    return absl::OutOfRangeError(
        absl::StrCat("tree size ", size, " is beyond the ", this->size(), " leaves"));
  }
  return Subtree(0, size);
}

absl::StatusOr<std::vector<Hash>> MerkleTree::InclusionProof(uint64_t index, uint64_t size) const {
  if (size > this->size()) {
    return absl::OutOfRangeError(
        absl::StrCat("tree size ", size, " is beyond the ", this->size(), " leaves"));
  }
  if (index >= size) {
    return absl::OutOfRangeError(
        absl::StrCat("leaf index ", index, " is not in a tree of size ", size));
  }
  return InclusionPath(index, size,
                       [this](uint64_t begin, uint64_t end) { return Subtree(begin, end); });
}

absl::StatusOr<std::vector<Hash>> MerkleTree::ConsistencyProof(uint64_t m, uint64_t n) const {
  if (n > size()) {
    return absl::OutOfRangeError(
        absl::StrCat("tree size ", n, " is beyond the ", size(), " leaves"));
  }
  if (m > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("no consistency proof from size ", m, " to the smaller size ", n));
  }
  return ConsistencyPath(m, n,
                         [this](uint64_t begin, uint64_t end) { return Subtree(begin, end); });
}

}  // namespace trialrules
