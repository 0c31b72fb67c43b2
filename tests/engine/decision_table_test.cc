#include "service/engine/decision_table.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trialrules {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A small grading table: a level, a flag and a word; rows at 1-4.
std::string Table(const std::string& policy, const std::string& extra_rows = "",
                  const std::string& test_cases = "") {
  return absl::StrCat(R"(
table_id: "demo" version: "1.0"
tables {
  term: "finding" hit_policy: )", policy, R"( default_output: 0
  inputs { name: "level" type: NUMBER unit: "mg/dL" min: 0 max: 100
           accepted_units { unit: "umol/L" per_canonical_unit: 17.1 } }
  inputs { name: "ref" type: NUMBER unit: "mg/dL" min: 0.1 max: 100 }
  inputs { name: "flag" type: BOOL }
  inputs { name: "device" type: TEXT allowed_values: "none" allowed_values: "mask" allowed_values: "tube" }
  inputs { name: "age" type: NUMBER min: 0 max: 120 }
  required: "age"
  refusals { id: "child" text: "children are graded elsewhere" expression: "age < 12" }
  rows { id: "mild" domain: "level" output: 1 text: "over ref to 1.5 x ref"
         expression: "level > ref && level <= 1.5 * ref" }
  rows { id: "moderate" domain: "level" output: 2 text: "over 1.5 x ref" expression: "level > 1.5 * ref" }
  rows { id: "flagged" domain: "flag" output: 3 text: "flag" expression: "flag" }
  rows { id: "tubed" domain: "device" output: 4 text: "tube" expression: "device == tube" }
)", extra_rows, R"(
}
)", test_cases.empty() ? R"(
test_cases { name: "mild" observations { name: "age" number: 40 }
  observations { name: "level" number: 1.8 } observations { name: "ref" number: 1.2 }
  observations { name: "flag" boolean: false } observations { name: "device" text: "none" }
  expect_output: "1" expect_domains: "level" }
test_cases { name: "moderate" observations { name: "age" number: 40 }
  observations { name: "level" number: 1.81 } observations { name: "ref" number: 1.2 }
  observations { name: "flag" boolean: false } observations { name: "device" text: "none" }
  expect_output: "2" }
test_cases { name: "flag" observations { name: "age" number: 40 } observations { name: "level" number: 0.5 }
  observations { name: "ref" number: 1.2 } observations { name: "flag" boolean: true }
  observations { name: "device" text: "mask" } expect_output: "3" }
test_cases { name: "tube" observations { name: "age" number: 40 } observations { name: "level" number: 0.5 }
  observations { name: "ref" number: 1.2 } observations { name: "flag" boolean: false }
  observations { name: "device" text: "tube" } expect_output: "4" }
)" : test_cases);
}

std::shared_ptr<const DecisionTableSet> MustLoad(const std::string& text) {
  TableLoadResult result = LoadDecisionTables(text, "demo.table.textproto");
  for (const Problem& problem : result.problems) ADD_FAILURE() << problem.ToString();
  return result.tables;
}

std::vector<std::string> Problems(const std::string& text) {
  std::vector<std::string> out;
  for (const Problem& p : LoadDecisionTables(text, "demo.table.textproto").problems) {
    out.push_back(p.ToString());
  }
  return out;
}

class DecisionTableTest : public ::testing::Test {
 protected:
  absl::StatusOr<TableResult> Grade(const DecisionTableSet& set,
                                    std::vector<FactInput> observations) {
    table_ = *set.Find("finding");
    return set.Evaluate(*table_, observations);
  }
  std::vector<std::string> Missing(const TableResult& result) {
    std::vector<std::string> names;
    for (int i : result.missing_inputs) names.push_back(table_->inputs()[i].name);
    return names;
  }
  const DecisionTable* table_ = nullptr;
};

TEST_F(DecisionTableTest, MaxGivesTheHighestRowThatHoldsAndTheBoundaryIsDecimal) {
  auto set = MustLoad(Table("MAX"));
  ASSERT_NE(set, nullptr);
  // 1.8 is exactly 1.5 x 1.2: mild (1), not moderate (2).
  auto result = Grade(*set, {{"age", 40.0, ""}, {"level", 1.8, ""}, {"ref", 1.2, ""},
                             {"flag", false, ""}, {"device", std::string("none"), ""}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->output, 1);
  EXPECT_THAT(result->Domains(*table_), ElementsAre("level"));
  // The highest of several holding rows, all of which are named.
  result = Grade(*set, {{"age", 40.0, ""}, {"level", 5.0, ""}, {"ref", 1.2, ""},
                        {"flag", true, ""}, {"device", std::string("tube"), ""}});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->output, 4);
  EXPECT_THAT(result->Domains(*table_), ElementsAre("device"));
  // Nothing holds: the default, from no domain.
  result = Grade(*set, {{"age", 40.0, ""}, {"level", 1.0, ""}, {"ref", 1.2, ""},
                        {"flag", false, ""}, {"device", std::string("mask"), ""}});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->output, 0);
  EXPECT_THAT(result->Domains(*table_), IsEmpty());
  // Units convert exactly: 30.78 umol/L is 1.8 mg/dL.
  result = Grade(*set, {{"age", 40.0, ""}, {"level", 30.78, "umol/L"}, {"ref", 1.2, ""},
                        {"flag", false, ""}, {"device", std::string("none"), ""}});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->output, 1);
}

TEST_F(DecisionTableTest, MissingInputsGiveTheRangeAndWhatWouldDecideIt) {
  auto set = MustLoad(Table("MAX"));
  ASSERT_NE(set, nullptr);
  // Without ref, the level rows may hold: 0 to 2, and only ref decides.
  auto result = Grade(*set, {{"age", 40.0, ""}, {"level", 1.8, ""}, {"flag", false, ""},
                             {"device", std::string("none"), ""}});
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->output.has_value());
  EXPECT_EQ(result->min, 0);
  EXPECT_EQ(result->max, 2);
  EXPECT_THAT(Missing(*result), ElementsAre("ref"));
  // A holding row sets the floor: rows below it no longer matter.
  result = Grade(*set, {{"age", 40.0, ""}, {"device", std::string("tube"), ""}});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->output, 4);
  result = Grade(*set, {{"age", 40.0, ""}, {"flag", true, ""}});
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->output.has_value());
  EXPECT_EQ(result->min, 3);
  EXPECT_EQ(result->max, 4);
  EXPECT_THAT(Missing(*result), ElementsAre("device"));
}

TEST_F(DecisionTableTest, FirstTakesTheFirstRowThatHoldsUnlessAnEarlierOneMay) {
  auto set = MustLoad(Table("FIRST"));
  ASSERT_NE(set, nullptr);
  auto result = Grade(*set, {{"age", 40.0, ""}, {"level", 5.0, ""}, {"ref", 1.2, ""},
                             {"flag", true, ""}, {"device", std::string("tube"), ""}});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->output, 2);  // moderate comes first
  result = Grade(*set, {{"age", 40.0, ""}, {"level", 5.0, ""}, {"flag", true, ""}});
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->output.has_value());  // mild or moderate may come first
  EXPECT_EQ(result->min, 1);
  EXPECT_EQ(result->max, 3);
  EXPECT_THAT(Missing(*result), ElementsAre("ref"));
}

TEST_F(DecisionTableTest, UniqueOverlapIsProvenAtLoadWithAWitness) {
  const std::vector<std::string> problems = Problems(Table("UNIQUE"));
  ASSERT_FALSE(problems.empty());
  EXPECT_THAT(problems[0], HasSubstr("is UNIQUE, but rows mild and flagged both hold for "
                                     "level = 1.5 mg/dL, ref = 1.4985 mg/dL, flag = true"));
}

TEST_F(DecisionTableTest, UniqueTwoRowsHoldingIsAnErrorNamingThem) {
  // Exclusive rows, but for `special`, whose overlap with `flagged` needs a
  // value no number of the table suggests: it shows at evaluation.
  const std::string text = R"(
table_id: "demo" version: "1.0"
tables {
  term: "finding" hit_policy: UNIQUE
  inputs { name: "level" type: NUMBER min: 0 max: 1000 }
  inputs { name: "ref" type: NUMBER min: 0.1 max: 100 }
  inputs { name: "flag" type: BOOL }
  rows { id: "raised" output: 1 text: "raised" expression: "!flag && level > ref" }
  rows { id: "flagged" output: 3 text: "flag" expression: "flag && level <= 50" }
  rows { id: "special" output: 5 text: "special" expression: "flag && level == ref * ref + 0.7" }
}
test_cases { name: "raised" observations { name: "flag" boolean: false } observations { name: "level" number: 2 }
  observations { name: "ref" number: 1 } expect_output: "1" }
test_cases { name: "flag" observations { name: "flag" boolean: true } observations { name: "level" number: 2 }
  observations { name: "ref" number: 1 } expect_output: "3" }
test_cases { name: "special" observations { name: "flag" boolean: true } observations { name: "level" number: 100.7 }
  observations { name: "ref" number: 10 } expect_output: "5" }
)";
  auto set = MustLoad(text);
  ASSERT_NE(set, nullptr);
  auto result = Grade(*set, {{"level", 2.95, ""}, {"ref", 1.5, ""}, {"flag", true, ""}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(),
              HasSubstr("is UNIQUE, but rows flagged, special all hold"));
}

TEST_F(DecisionTableTest, ObservationsAreRefusedNamingTheObservation) {
  auto set = MustLoad(Table("MAX"));
  ASSERT_NE(set, nullptr);
  auto result = Grade(*set, {{"age", 40.0, ""}, {"device", std::string("cpap"), ""}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(),
              HasSubstr("observation \"device\" = \"cpap\": not an allowed value (none, mask, tube)"));
  result = Grade(*set, {{"age", 40.0, ""}, {"colour", 1.0, ""}});
  EXPECT_THAT(result.status().message(),
              HasSubstr("unknown observation for term finding of table demo version 1.0"));
  result = Grade(*set, {{"level", 1.0, ""}});
  EXPECT_THAT(result.status().message(), HasSubstr("observation \"age\" is required"));
  result = Grade(*set, {{"age", 8.0, ""}});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("children are graded elsewhere"));
  result = Grade(*set, {{"age", 40.0, ""}, {"level", 1000.0, ""}});
  EXPECT_THAT(result.status().message(), HasSubstr("outside the valid range"));
}

TEST_F(DecisionTableTest, AFileLoadsOnlyWhenEveryRowHoldsInATestCase) {
  const std::string cases = R"(
test_cases { name: "tube" observations { name: "age" number: 40 } observations { name: "device" text: "tube" }
  expect_output: "4" }
)";
  const std::vector<std::string> problems = Problems(Table("MAX", "", cases));
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_THAT(problems[0], HasSubstr("no test case makes row mild hold"));
  EXPECT_THAT(problems[1], HasSubstr("row moderate"));
  EXPECT_THAT(problems[2], HasSubstr("row flagged"));
}

TEST_F(DecisionTableTest, FailingTestCasesAreProblemsWithWhatWasGot) {
  const std::string cases = R"(
test_cases { name: "wrong" observations { name: "age" number: 40 } observations { name: "device" text: "tube" }
  expect_output: "3" }
)";
  const std::vector<std::string> problems = Problems(Table("MAX", "", cases));
  ASSERT_FALSE(problems.empty());
  EXPECT_THAT(problems[0], HasSubstr("test case \"wrong\": expected 3, got 4 (rows holding: tubed"));
}

TEST_F(DecisionTableTest, TablesAreCheckedLikeRuleFiles) {
  // A word used as a row id, a comparison of a word with a number, an
  // unknown name: each a problem with its position.
  EXPECT_THAT(Problems(Table("MAX", R"(rows { id: "tube" output: 1 text: "x" expression: "flag" })")),
              testing::Contains(HasSubstr("is an allowed value of a TEXT fact")));
  EXPECT_THAT(Problems(Table("MAX", R"(rows { id: "x1" output: 1 text: "x" expression: "device == 2" })")),
              testing::Contains(HasSubstr("cannot compare a text value with a number")));
  EXPECT_THAT(Problems(Table("MAX", R"(rows { id: "x1" output: 1 text: "x" expression: "device < tube" })")),
              testing::Contains(HasSubstr("cannot compare a text value with a text value")));
  EXPECT_THAT(Problems(Table("MAX", R"(rows { id: "x1" output: 1 text: "x" expression: "lvel > 1" })")),
              testing::Contains(HasSubstr("unknown name 'lvel'")));
  EXPECT_THAT(Problems(Table("HIT_POLICY_UNSPECIFIED")),
              testing::Contains(HasSubstr("hit_policy is required")));
}

// Rows taken one by one would leave 1 to 4 (each vasopressor row "may
// hold"); every count is tried, and one of them always holds: 2 to 4.
// Likewise a number only compared with written numbers (the flow), and a
// truth value that does not change the grade (both branches give 4).
TEST_F(DecisionTableTest, AnUnknownRangeIsTakenOverTheValuesTheMissingInputsCanTake) {
  const std::string text = R"(
table_id: "demo" version: "1.0"
tables {
  term: "finding" hit_policy: MAX
  inputs { name: "fever" type: BOOL }
  inputs { name: "pressors" type: NUMBER min: 0 max: 20 integer: true }
  inputs { name: "flow" type: NUMBER min: 0 max: 100 }
  inputs { name: "level" type: NUMBER min: 0 max: 1000 }
  inputs { name: "ref" type: NUMBER min: 0.1 max: 100 }
  inputs { name: "abnormal" type: BOOL }
  rows { id: "fever_1" output: 1 text: "fever" expression: "fever" }
  rows { id: "none_2" output: 2 text: "no pressor" expression: "fever && pressors == 0" }
  rows { id: "one_3" output: 3 text: "one pressor" expression: "fever && pressors == 1" }
  rows { id: "more_4" output: 4 text: "more" expression: "fever && pressors >= 2" }
  rows { id: "low_flow_2" output: 2 text: "low flow" expression: "fever && flow <= 6" }
  rows { id: "high_flow_3" output: 3 text: "high flow" expression: "fever && 6 < flow" }
  rows { id: "ref_4" domain: "ref" output: 4 text: "ref" expression: "!abnormal && level > 20 * ref" }
  rows { id: "base_4" domain: "base" output: 4 text: "base" expression: "abnormal && level > 20" }
}
test_cases { name: "pressors" observations { name: "fever" boolean: true } observations { name: "flow" number: 0 }
  observations { name: "level" number: 0 } observations { name: "ref" number: 1 } observations { name: "abnormal" boolean: false }
  expect_output: "UNKNOWN" expect_min: 2 expect_max: 4 expect_missing: "pressors" }
test_cases { name: "flow" observations { name: "fever" boolean: true } observations { name: "pressors" number: 0 }
  observations { name: "level" number: 0 } observations { name: "ref" number: 1 } observations { name: "abnormal" boolean: false }
  expect_output: "UNKNOWN" expect_min: 2 expect_max: 3 expect_missing: "flow" }
test_cases { name: "either way" observations { name: "fever" boolean: false } observations { name: "pressors" number: 0 }
  observations { name: "flow" number: 0 } observations { name: "level" number: 900 } observations { name: "ref" number: 40 }
  expect_output: "4" expect_domains: "ref" expect_domains: "base" }
test_cases { name: "all" observations { name: "fever" boolean: true } observations { name: "pressors" number: 5 }
  observations { name: "flow" number: 2 } observations { name: "level" number: 0 } observations { name: "ref" number: 1 }
  observations { name: "abnormal" boolean: false } expect_output: "4" }
test_cases { name: "one" observations { name: "fever" boolean: true } observations { name: "pressors" number: 1 }
  observations { name: "flow" number: 9 } observations { name: "level" number: 0 } observations { name: "ref" number: 1 }
  observations { name: "abnormal" boolean: false } expect_output: "3" }
test_cases { name: "ref" observations { name: "fever" boolean: false } observations { name: "level" number: 900 }
  observations { name: "ref" number: 40 } observations { name: "abnormal" boolean: false } expect_output: "4" }
test_cases { name: "base" observations { name: "fever" boolean: false } observations { name: "level" number: 900 }
  observations { name: "ref" number: 40 } observations { name: "abnormal" boolean: true } expect_output: "4" }
)";
  auto set = MustLoad(text);
  ASSERT_NE(set, nullptr);
  const DecisionTable& table = **set->Find("");
  // The flow is a number only compared with 6: tried below, at and above.
  EXPECT_EQ(table.completion_values[2].size(), 5u);  // 0, 6-, 6, 6+, 100
  // A number used in arithmetic is not tried: it stays three-valued.
  EXPECT_TRUE(table.completion_values[3].empty());
  // A whole number compared with written numbers is tried at and next to
  // each: pressors is a small range, tried whole (0 to 20).
  EXPECT_EQ(table.completion_values[1].size(), 21u);
  auto result = Grade(*set, {{"fever", true, ""}, {"flow", 0.0, ""}, {"abnormal", false, ""},
                             {"ref", 1.0, ""}});
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->min, 2);
  EXPECT_EQ(result->max, 4);
  EXPECT_THAT(Missing(*result), ElementsAre("pressors", "level"));
}

TEST_F(DecisionTableTest, MaxUsesTheDefaultOnlyWhenNoRowHolds) {
  const std::string text = R"(
table_id: "demo" version: "1.0"
tables {
  term: "finding" hit_policy: MAX default_output: 2
  inputs { name: "x" type: NUMBER min: 0 max: 10 }
  rows { id: "low" output: 1 text: "low" expression: "x < 3" }
  rows { id: "high" output: 3 text: "high" expression: "x > 7" }
}
test_cases { name: "low" observations { name: "x" number: 1 } expect_output: "1" }
test_cases { name: "middle" observations { name: "x" number: 5 } expect_output: "2" }
test_cases { name: "high" observations { name: "x" number: 9 } expect_output: "3" }
test_cases { name: "unknown" expect_output: "UNKNOWN" expect_min: 1 expect_max: 3 expect_missing: "x" }
)";
  EXPECT_NE(MustLoad(text), nullptr);
}

TEST_F(DecisionTableTest, AWordOfAnotherInputIsAProblem) {
  EXPECT_THAT(
      Problems(Table("MAX", R"(inputs { name: "seizure" type: TEXT allowed_values: "none" allowed_values: "focal2" }
  rows { id: "x1" output: 1 text: "x" expression: "seizure == tube" })")),
      testing::Contains(HasSubstr("'tube' is not an allowed value of seizure (focal2, none)")));
}

TEST_F(DecisionTableTest, ARefusalNamesTheObservationsAndAMissingTermIsInvalid) {
  auto set = MustLoad(Table("MAX"));
  ASSERT_NE(set, nullptr);
  auto result = Grade(*set, {{"age", 8.0, ""}});
  EXPECT_THAT(result.status().message(),
              HasSubstr("observation \"age\" = 8: term finding of table demo: children are "
                        "graded elsewhere"));
  const std::string two = absl::StrCat(
      R"(table_id: "two" version: "1"
tables { term: "a" hit_policy: MAX inputs { name: "x" type: BOOL } rows { id: "r" output: 1 text: "r" expression: "x" } }
tables { term: "b" hit_policy: MAX inputs { name: "x" type: BOOL } rows { id: "r" output: 1 text: "r" expression: "x" } }
test_cases { name: "a" term: "a" observations { name: "x" boolean: true } expect_output: "1" }
test_cases { name: "b" term: "b" observations { name: "x" boolean: true } expect_output: "1" }
)");
  auto both = MustLoad(two);
  ASSERT_NE(both, nullptr);
  EXPECT_EQ(both->Find("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(both->Find("c").status().code(), absl::StatusCode::kNotFound);
}

// A whole number over a wide range, compared with written numbers: the
// values between two of them are tried too (here the only grade-0 values).
TEST_F(DecisionTableTest, AWideWholeNumberRangeIsTriedBetweenItsThresholds) {
  const std::string text = R"(
table_id: "demo" version: "1.0"
tables {
  term: "finding" hit_policy: MAX
  inputs { name: "count" type: NUMBER min: 0 max: 1000 integer: true }
  rows { id: "low" output: 2 text: "low" expression: "count <= 100" }
  rows { id: "high" output: 2 text: "high" expression: "count >= 200" }
}
test_cases { name: "low" observations { name: "count" number: 100 } expect_output: "2" }
test_cases { name: "middle" observations { name: "count" number: 101 } expect_output: "0" }
test_cases { name: "high" observations { name: "count" number: 200 } expect_output: "2" }
test_cases { name: "unknown" expect_output: "UNKNOWN" expect_min: 0 expect_max: 2
  expect_missing: "count" }
)";
  EXPECT_NE(MustLoad(text), nullptr);
}

}  // namespace
}  // namespace trialrules
