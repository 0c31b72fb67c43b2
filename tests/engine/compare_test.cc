// Amendment impact in the engine: the same patients under two versions.
#include "client/facts_file.h"
#include "gtest/gtest.h"
#include "service/engine/compare.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

TEST(CompareTest, CountsChangedDecisionsAndTheRulesBehindThem) {
  const auto base = testing::LoadBundled("NCT04094766-v1.0.textproto");
  const auto candidate = testing::LoadBundled("NCT04094766-v2.0.textproto");
  ASSERT_NE(base, nullptr);
  ASSERT_NE(candidate, nullptr);
  absl::StatusOr<std::vector<PatientFacts>> patients = ParsePatientsJson(
      testing::ReadFile(testing::SourcePath("tests/data/facts/screened_patients.json")));
  ASSERT_TRUE(patients.ok()) << patients.status();

  const VersionComparison comparison =
      CompareVersions(*base, *candidate, EvaluationKind::kEligibility, *patients);
  EXPECT_EQ(comparison.patients, 5);
  EXPECT_EQ(comparison.changed, 2);
  ASSERT_EQ(comparison.refused.size(), 1u);
  EXPECT_EQ(comparison.refused[0].first, "P-BAD");
  EXPECT_EQ((comparison.transitions.at({Decision::kIneligible, Decision::kIndeterminate})), 1);
  EXPECT_EQ((comparison.transitions.at({Decision::kIndeterminate, Decision::kIneligible})), 1);
  EXPECT_EQ(comparison.rules_causing_changes.at("I6"), 1);
  EXPECT_EQ(comparison.rules_causing_changes.at("E11"), 1);
  ASSERT_EQ(comparison.changes.size(), 2u);
}

TEST(CompareTest, AVersionAgainstItselfChangesNothing) {
  const auto base = testing::LoadBundled("NCT04094766-v1.0.textproto");
  ASSERT_NE(base, nullptr);
  absl::StatusOr<std::vector<PatientFacts>> patients = ParsePatientsJson(
      testing::ReadFile(testing::SourcePath("tests/data/facts/screened_patients.json")));
  ASSERT_TRUE(patients.ok()) << patients.status();
  const VersionComparison comparison =
      CompareVersions(*base, *base, EvaluationKind::kEligibility, *patients);
  EXPECT_EQ(comparison.changed, 0);
  EXPECT_TRUE(comparison.changes.empty());
  EXPECT_TRUE(comparison.rules_causing_changes.empty());
}

}  // namespace
}  // namespace trialrules
