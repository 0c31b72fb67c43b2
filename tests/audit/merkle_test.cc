// The RFC 6962 Merkle tree against the published test vectors, and its
// proofs against their verifiers over every small tree.
//
// The vectors are those of github.com/transparency-dev/merkle (the
// Certificate Transparency and Trillian tree libraries' successor):
//   testonly/constants.go    leaf inputs, roots, perfect subtree hashes,
//                            compact trees;
//   proof/verify_test.go     inclusion and consistency proofs, the tamper
//                            probes, "some hash";
//   rfc6962/rfc6962_test.go  empty tree, empty leaf and "L123456" leaf hashes.
#include "service/audit/merkle.h"

#include <bit>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace trialrules {
namespace {

Hash H(absl::string_view hex) {
  absl::StatusOr<Hash> hash = HashFromHex(hex);
  EXPECT_TRUE(hash.ok()) << hash.status();
  return hash.value_or(Hash{});
}

std::vector<Hash> Hs(std::initializer_list<absl::string_view> hexes) {
  std::vector<Hash> hashes;
  for (absl::string_view hex : hexes) hashes.push_back(H(hex));
  return hashes;
}

// testonly/constants.go LeafInputs().
const std::vector<std::string>& LeafInputs() {
  static const auto* leaves = new std::vector<std::string>{
      absl::HexStringToBytes(""),
      absl::HexStringToBytes("00"),
      absl::HexStringToBytes("10"),
      absl::HexStringToBytes("2021"),
      absl::HexStringToBytes("3031"),
      absl::HexStringToBytes("40414243"),
      absl::HexStringToBytes("5051525354555657"),
      absl::HexStringToBytes("606162636465666768696a6b6c6d6e6f"),
  };
  return *leaves;
}

std::vector<Hash> LeafHashes() {
  std::vector<Hash> hashes;
  for (const std::string& leaf : LeafInputs()) hashes.push_back(LeafHash(leaf));
  return hashes;
}

// testonly/constants.go RootHashes(), indexed by tree size.
const std::vector<Hash>& Roots() {
  static const auto* roots = new std::vector<Hash>(Hs({
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
      "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
      "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
      "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
      "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
      "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
  }));
  return *roots;
}

// testonly/constants.go NodeHashes(): [level][index] of every perfect
// subtree of the 8 leaves.
const std::vector<std::vector<Hash>>& NodeHashes() {
  static const auto* nodes = new std::vector<std::vector<Hash>>{
      Hs({"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
          "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
          "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
          "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
          "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
          "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
          "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
          "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"}),
      Hs({"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
          "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
          "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
          "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"}),
      Hs({"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
          "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}),
      Hs({"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"}),
  };
  return *nodes;
}

// proof/verify_test.go sha256SomeHash: a hash of nothing in these trees.
const Hash& SomeHash() {
  static const Hash hash = H("abacaba000000000000000000000000000000000000000000060061e00123456");
  return hash;
}

struct InclusionVector {
  uint64_t index;  // 0-based; the source lists leaf numbers from 1
  uint64_t size;
  std::vector<Hash> proof;
};

// proof/verify_test.go inclusionProofs (but its {0, 0, nil}, which is no
// leaf).
const std::vector<InclusionVector>& InclusionVectors() {
  static const auto* vectors = new std::vector<InclusionVector>{
      {0, 1, {}},
      {0, 8,
       Hs({"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
           "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
           "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"})},
      {5, 8,
       Hs({"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
           "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
           "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"})},
      {2, 3, Hs({"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"})},
      {1, 5,
       Hs({"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
           "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
           "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"})},
  };
  return *vectors;
}

struct ConsistencyVector {
  uint64_t m;
  uint64_t n;
  std::vector<Hash> proof;
};

// proof/verify_test.go consistencyProofs.
const std::vector<ConsistencyVector>& ConsistencyVectors() {
  static const auto* vectors = new std::vector<ConsistencyVector>{
      {1, 1, {}},
      {1, 8,
       Hs({"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
           "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
           "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"})},
      {6, 8,
       Hs({"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
           "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
           "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"})},
      {2, 5,
       Hs({"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
           "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"})},
      {6, 7,
       Hs({"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
           "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
           "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"})},
  };
  return *vectors;
}

std::vector<Hash> RandomLeafHashes(size_t n, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<Hash> hashes;
  for (size_t i = 0; i < n; ++i) {
    const std::string leaf = std::to_string(random());
    hashes.push_back(LeafHash(leaf));
  }
  return hashes;
}

std::vector<Hash> With(std::vector<Hash> proof, size_t at, const Hash& inserted) {
  proof.insert(proof.begin() + at, inserted);
  return proof;
}

TEST(MerkleHashTest, PublishedHashes) {
  // rfc6962/rfc6962_test.go.
  EXPECT_EQ(HexOf(EmptyTreeHash()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexOf(LeafHash("")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  EXPECT_EQ(HexOf(LeafHash("L123456")),
            "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56");
  // The empty tree's root is not the empty leaf's hash.
  EXPECT_NE(EmptyTreeHash(), LeafHash(""));
  // A node is not the leaf of its children's bytes, and order matters.
  const Hash a = LeafHash("Hello"), b = LeafHash("World");
  std::string both(a.begin(), a.end());
  both.append(b.begin(), b.end());
  EXPECT_NE(NodeHash(a, b), LeafHash(both));
  EXPECT_NE(NodeHash(a, b), NodeHash(b, a));
}

TEST(MerkleHashTest, HexRoundTripAndErrors) {
  const Hash hash = LeafHash("x");
  EXPECT_EQ(H(HexOf(hash)), hash);
  std::string upper = HexOf(hash);
  for (char& c : upper) c = static_cast<char>(toupper(c));
  EXPECT_EQ(H(upper), hash);
  EXPECT_EQ(HashFromHex("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HashFromHex(HexOf(hash).substr(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string bad = HexOf(hash);
  bad[10] = 'g';
  EXPECT_EQ(HashFromHex(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MerkleRootTest, PublishedRootsOfEverySize) {
  const std::vector<Hash> leaves = LeafHashes();
  const MerkleTree tree(leaves);
  CompactTree compact;
  for (size_t size = 0; size <= leaves.size(); ++size) {
    SCOPED_TRACE(size);
    if (size > 0) compact.Append(leaves[size - 1]);
    EXPECT_EQ(HexOf(RootOf(absl::MakeConstSpan(leaves).first(size))), HexOf(Roots()[size]));
    EXPECT_EQ(HexOf(compact.Root()), HexOf(Roots()[size]));
    EXPECT_EQ(HexOf(*tree.Root(size)), HexOf(Roots()[size]));
  }
}

TEST(MerkleRootTest, PublishedPerfectSubtrees) {
  const std::vector<Hash> leaves = LeafHashes();
  for (size_t level = 0; level < NodeHashes().size(); ++level) {
    for (size_t i = 0; i < NodeHashes()[level].size(); ++i) {
      const size_t width = size_t{1} << level;
      EXPECT_EQ(HexOf(RootOf(absl::MakeConstSpan(leaves).subspan(i * width, width))),
                HexOf(NodeHashes()[level][i]))
          << "level " << level << " index " << i;
    }
  }
}

// testonly/constants.go CompactTrees(): the frontier after each append.
TEST(MerkleCompactTreeTest, PublishedFrontiers) {
  const std::vector<std::vector<Hash>>& nh = NodeHashes();
  const std::vector<std::vector<Hash>> want = {
      {},
      {nh[0][0]},
      {nh[1][0]},
      {nh[1][0], nh[0][2]},
      {nh[2][0]},
      {nh[2][0], nh[0][4]},
      {nh[2][0], nh[1][2]},
      {nh[2][0], nh[1][2], nh[0][6]},
      {nh[3][0]},
  };
  const std::vector<Hash> leaves = LeafHashes();
  CompactTree tree;
  EXPECT_EQ(std::vector<Hash>(tree.frontier().begin(), tree.frontier().end()), want[0]);
  for (size_t size = 1; size <= leaves.size(); ++size) {
    tree.Append(leaves[size - 1]);
    EXPECT_EQ(tree.size(), size);
    EXPECT_EQ(std::vector<Hash>(tree.frontier().begin(), tree.frontier().end()), want[size])
        << size;
  }
}

TEST(MerkleCompactTreeTest, RootEqualsRootOfEverySizeUpTo1000) {
  const std::vector<Hash> leaves = RandomLeafHashes(1000, 6962);
  CompactTree tree;
  EXPECT_EQ(tree.Root(), RootOf({}));
  for (size_t size = 1; size <= leaves.size(); ++size) {
    tree.Append(leaves[size - 1]);
    ASSERT_EQ(HexOf(tree.Root()), HexOf(RootOf(absl::MakeConstSpan(leaves).first(size))))
        << size;
    ASSERT_EQ(tree.frontier().size(), static_cast<size_t>(std::popcount(size)));
  }
}

TEST(MerkleCompactTreeTest, ResumesFromFrontier) {
  const std::vector<Hash> leaves = RandomLeafHashes(77, 9162);
  CompactTree first;
  for (size_t i = 0; i < 50; ++i) first.Append(leaves[i]);
  absl::StatusOr<CompactTree> resumed = CompactTree::FromFrontier(
      first.size(), std::vector<Hash>(first.frontier().begin(), first.frontier().end()));
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  for (size_t i = 50; i < leaves.size(); ++i) resumed->Append(leaves[i]);
  EXPECT_EQ(resumed->size(), leaves.size());
  EXPECT_EQ(resumed->Root(), RootOf(leaves));

  EXPECT_EQ(CompactTree::FromFrontier(50, {leaves[0], leaves[1]}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CompactTree::FromFrontier(0, {}).ok());
}

// Each proof of proof/verify_test.go is what InclusionProof generates, and
// verifies.
TEST(MerkleInclusionTest, PublishedProofs) {
  const std::vector<Hash> leaves = LeafHashes();
  const MerkleTree tree(leaves);
  for (const InclusionVector& v : InclusionVectors()) {
    SCOPED_TRACE(absl::StrCat("index ", v.index, " size ", v.size));
    // Over more leaves than the tree: a proof for an earlier size.
    absl::StatusOr<std::vector<Hash>> proof = InclusionProof(leaves, v.index, v.size);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, v.proof);
    EXPECT_EQ(*tree.InclusionProof(v.index, v.size), v.proof);
    EXPECT_EQ(VerifyInclusion(leaves[v.index], v.index, v.size, v.proof, Roots()[v.size]),
              absl::OkStatus());
  }
}

// proof/verify_test.go corruptInclusionProof: every probe fails.
TEST(MerkleInclusionTest, TamperedProofsFail) {
  const std::vector<Hash> leaves = LeafHashes();
  for (const InclusionVector& v : InclusionVectors()) {
    const Hash& root = Roots()[v.size];
    const Hash& leaf = leaves[v.index];
    const uint64_t i = v.index, n = v.size;
    struct Probe {
      std::string what;
      uint64_t index, size;
      Hash leaf, root;
      std::vector<Hash> proof;
    };
    std::vector<Probe> probes = {
        {"index - 1", i - 1, n, leaf, root, v.proof},
        {"index + 1", i + 1, n, leaf, root, v.proof},
        {"index ^ 2", i ^ 2, n, leaf, root, v.proof},
        {"size * 2", i, n * 2, leaf, root, v.proof},
        {"size / 2", i, n / 2, leaf, root, v.proof},
        {"wrong leaf", i, n, LeafHash("WrongLeaf"), root, v.proof},
        {"empty root", i, n, leaf, EmptyTreeHash(), v.proof},
        {"random root", i, n, leaf, SomeHash(), v.proof},
        {"trailing garbage", i, n, leaf, root, With(v.proof, v.proof.size(), Hash{})},
        {"trailing root", i, n, leaf, root, With(v.proof, v.proof.size(), root)},
        {"preceding garbage", i, n, leaf, root, With(v.proof, 0, Hash{})},
        {"preceding root", i, n, leaf, root, With(v.proof, 0, root)},
    };
    for (size_t k = 0; k < v.proof.size(); ++k) {
      std::vector<Hash> flipped = v.proof;
      flipped[k][0] ^= 8;
      probes.push_back({absl::StrCat("proof[", k, "] bit 3"), i, n, leaf, root, flipped});
    }
    if (!v.proof.empty()) {
      probes.push_back({"removed component", i, n, leaf, root,
                        std::vector<Hash>(v.proof.begin(), v.proof.end() - 1)});
    }
    if (v.proof.size() > 1) {
      probes.push_back({"inserted component", i, n, leaf, root, With(v.proof, 1, SomeHash())});
    }
    for (const Probe& p : probes) {
      EXPECT_FALSE(VerifyInclusion(p.leaf, p.index, p.size, p.proof, p.root).ok())
          << "index " << i << " size " << n << ": " << p.what;
    }
  }
}

// proof/verify_test.go TestVerifyInclusion and TestVerifyInclusionSingleEntry.
TEST(MerkleInclusionTest, DegenerateInputs) {
  const Hash leaf = LeafHash("data");
  EXPECT_EQ(VerifyInclusion(leaf, 0, 1, {}, leaf), absl::OkStatus());
  EXPECT_EQ(VerifyInclusion(leaf, 0, 1, {}, SomeHash()).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(VerifyInclusion(SomeHash(), 0, 1, {}, leaf).code(), absl::StatusCode::kDataLoss);
  for (auto [index, size] : std::vector<std::pair<uint64_t, uint64_t>>{{0, 0}, {1, 0}, {2, 1}}) {
    EXPECT_EQ(VerifyInclusion(SomeHash(), index, size, {}, EmptyTreeHash()).code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(VerifyInclusion(SomeHash(), 0, 1, {}, EmptyTreeHash()).ok());

  const std::vector<Hash> leaves = LeafHashes();
  EXPECT_EQ(InclusionProof(leaves, 0, 0).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(InclusionProof(leaves, 7, 7).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(InclusionProof(leaves, 0, 9).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(MerkleTree(leaves).InclusionProof(8, 8).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST(MerkleInclusionTest, ErrorsSayWhatFailed) {
  const std::vector<Hash> leaves = LeafHashes();
  const InclusionVector& v = InclusionVectors()[2];
  const absl::Status short_proof =
      VerifyInclusion(leaves[v.index], v.index, v.size,
                      absl::MakeConstSpan(v.proof).first(2), Roots()[v.size]);
  EXPECT_EQ(short_proof.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(short_proof.message(),
            "an inclusion proof of leaf 5 in a tree of size 8 has 3 hashes, not 2");
  const absl::Status wrong_root =
      VerifyInclusion(leaves[v.index], v.index, v.size, v.proof, SomeHash());
  EXPECT_EQ(wrong_root.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(wrong_root.message(), absl::StrCat("the inclusion proof computes ",
                                               HexOf(Roots()[8]), " but expected ",
                                               HexOf(SomeHash())));
}

// Each proof of proof/verify_test.go is what ConsistencyProof generates,
// and verifies.
TEST(MerkleConsistencyTest, PublishedProofs) {
  const std::vector<Hash> leaves = LeafHashes();
  const MerkleTree tree(leaves);
  for (const ConsistencyVector& v : ConsistencyVectors()) {
    SCOPED_TRACE(absl::StrCat(v.m, " to ", v.n));
    absl::StatusOr<std::vector<Hash>> proof = ConsistencyProof(leaves, v.m, v.n);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, v.proof);
    EXPECT_EQ(*tree.ConsistencyProof(v.m, v.n), v.proof);
    EXPECT_EQ(VerifyConsistency(v.m, v.n, Roots()[v.m], Roots()[v.n], v.proof),
              absl::OkStatus());
  }
}

// proof/verify_test.go corruptConsistencyProof: every probe fails.
TEST(MerkleConsistencyTest, TamperedProofsFail) {
  const Hash wrong_root = LeafHash("WrongRoot");
  for (const ConsistencyVector& v : ConsistencyVectors()) {
    if (v.proof.empty()) continue;  // as in the source: only proofs with something to tamper
    const uint64_t m = v.m, n = v.n;
    const Hash& r1 = Roots()[m];
    const Hash& r2 = Roots()[n];
    struct Probe {
      std::string what;
      uint64_t m, n;
      Hash root_m, root_n;
      std::vector<Hash> proof;
    };
    std::vector<Probe> probes = {
        {"m - 1", m - 1, n, r1, r2, v.proof},
        {"m + 1", m + 1, n, r1, r2, v.proof},
        {"m ^ 2", m ^ 2, n, r1, r2, v.proof},
        {"n * 2", m, n * 2, r1, r2, v.proof},
        {"n / 2", m, n / 2, r1, r2, v.proof},
        {"wrong root_m", m, n, wrong_root, r2, v.proof},
        {"wrong root_n", m, n, r1, wrong_root, v.proof},
        {"swapped roots", m, n, r2, r1, v.proof},
        {"empty proof", m, n, r1, r2, {}},
        {"trailing garbage", m, n, r1, r2, With(v.proof, v.proof.size(), Hash{})},
        {"trailing root_m", m, n, r1, r2, With(v.proof, v.proof.size(), r1)},
        {"trailing root_n", m, n, r1, r2, With(v.proof, v.proof.size(), r2)},
        {"preceding garbage", m, n, r1, r2, With(v.proof, 0, Hash{})},
        {"preceding root_m", m, n, r1, r2, With(v.proof, 0, r1)},
        {"preceding root_n", m, n, r1, r2, With(v.proof, 0, r2)},
        {"preceding proof[0]", m, n, r1, r2, With(v.proof, 0, v.proof[0])},
        {"truncated proof", m, n, r1, r2,
         std::vector<Hash>(v.proof.begin(), v.proof.end() - 1)},
    };
    for (size_t k = 0; k < v.proof.size(); ++k) {
      std::vector<Hash> flipped = v.proof;
      flipped[k][0] ^= 16;
      probes.push_back({absl::StrCat("proof[", k, "] bit 4"), m, n, r1, r2, flipped});
    }
    for (const Probe& p : probes) {
      EXPECT_FALSE(VerifyConsistency(p.m, p.n, p.root_m, p.root_n, p.proof).ok())
          << m << " to " << n << ": " << p.what;
    }
  }
}

// proof/verify_test.go TestVerifyConsistency, with this verifier's one
// difference: a tree of size 0 must have the empty tree's root.
TEST(MerkleConsistencyTest, DegenerateInputs) {
  const Hash empty = EmptyTreeHash();
  const Hash r1 = LeafHash("don't care 1"), r2 = LeafHash("don't care 2");
  // Sizes that are always consistent, with an empty proof.
  EXPECT_EQ(VerifyConsistency(0, 0, empty, empty, {}), absl::OkStatus());
  EXPECT_EQ(VerifyConsistency(0, 1, empty, r2, {}), absl::OkStatus());
  EXPECT_EQ(VerifyConsistency(1, 1, r2, r2, {}), absl::OkStatus());
  // Different roots of the same size.
  EXPECT_EQ(VerifyConsistency(0, 0, empty, r2, {}).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(VerifyConsistency(1, 1, r1, r2, {}).code(), absl::StatusCode::kDataLoss);
  // A tree of size 0 whose root is not the empty tree's.
  EXPECT_EQ(VerifyConsistency(0, 1, r1, r2, {}).code(), absl::StatusCode::kDataLoss);
  // Time travel to the past.
  EXPECT_EQ(VerifyConsistency(1, 0, r1, r2, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyConsistency(2, 1, r1, r2, {}).code(), absl::StatusCode::kInvalidArgument);
  // Growth with no proof.
  EXPECT_EQ(VerifyConsistency(1, 2, r1, r2, {}).code(), absl::StatusCode::kInvalidArgument);
  // Roots that match but a proof where none is needed.
  EXPECT_EQ(VerifyConsistency(0, 0, empty, empty, {empty}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyConsistency(0, 1, empty, empty, {empty}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyConsistency(1, 1, empty, empty, {empty}).code(),
            absl::StatusCode::kInvalidArgument);

  const std::vector<Hash> leaves = LeafHashes();
  EXPECT_EQ(ConsistencyProof(leaves, 5, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(leaves, 1, 9).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(*ConsistencyProof(leaves, 0, 8), std::vector<Hash>{});
  EXPECT_EQ(*ConsistencyProof(leaves, 8, 8), std::vector<Hash>{});
}

// Generation (RFC 6962's recursion) and verification (RFC 9162's bit walk)
// are separate algorithms: agreeing on every proof of every small tree, and
// both forms of generation agreeing, checks each against the other.
TEST(MerkleProofTest, EveryProofOfEverySmallTreeVerifies) {
  constexpr uint64_t kMax = 70;
  const std::vector<Hash> leaves = RandomLeafHashes(kMax, 2024);
  const MerkleTree tree(leaves);
  for (uint64_t n = 0; n <= kMax; ++n) {
    const Hash root = RootOf(absl::MakeConstSpan(leaves).first(n));
    ASSERT_EQ(*tree.Root(n), root);
    for (uint64_t index = 0; index < n; ++index) {
      const std::vector<Hash> proof = *InclusionProof(leaves, index, n);
      ASSERT_EQ(*tree.InclusionProof(index, n), proof) << index << " of " << n;
      ASSERT_EQ(VerifyInclusion(leaves[index], index, n, proof, root), absl::OkStatus())
          << index << " of " << n;
      const Hash other = leaves[(index + 1) % kMax];
      ASSERT_EQ(VerifyInclusion(other, index, n, proof, root).code(),
                absl::StatusCode::kDataLoss)
          << index << " of " << n;
    }
    for (uint64_t m = 0; m <= n; ++m) {
      const Hash root_m = RootOf(absl::MakeConstSpan(leaves).first(m));
      const std::vector<Hash> proof = *ConsistencyProof(leaves, m, n);
      ASSERT_EQ(*tree.ConsistencyProof(m, n), proof) << m << " to " << n;
      ASSERT_EQ(VerifyConsistency(m, n, root_m, root, proof), absl::OkStatus())
          << m << " to " << n;
      if (m > 0 && m < n) {
        // A different history of the first m leaves is not consistent.
        std::vector<Hash> rewritten(leaves.begin(), leaves.begin() + m);
        rewritten[m / 2] = LeafHash("rewritten");
        ASSERT_EQ(VerifyConsistency(m, n, RootOf(rewritten), root, proof).code(),
                  absl::StatusCode::kDataLoss)
            << m << " to " << n;
      }
    }
  }
}

}  // namespace
}  // namespace trialrules
