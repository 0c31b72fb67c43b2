// Translation between the engine's types and the API's messages.
#include "gtest/gtest.h"
#include "service/server/convert.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

TEST(ConvertTest, StatusKeepsItsCodeAndMessage) {
  const grpc::Status status = ToGrpcStatus(absl::NotFoundError("no such protocol"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "no such protocol");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(ConvertTest, EvaluationNamesEveryRuleItsOutcomeAndTheMissingFacts) {
  const auto rule_set = testing::LoadBundled("NCT04094766-v1.0.textproto");
  ASSERT_NE(rule_set, nullptr);
  const Evaluation evaluation = rule_set->Evaluate(
      EvaluationKind::kEligibility, *rule_set->BindFacts({{"karnofsky", 50.0, ""}}));
  v1::EvaluateResponse response;
  FillEvaluation(*rule_set, evaluation, &response);
  EXPECT_EQ(response.decision(), v1::DECISION_INELIGIBLE);
  EXPECT_EQ(response.rule_set().version(), "1.0");
  EXPECT_EQ(response.rule_set().sha256(), rule_set->sha256());
  ASSERT_EQ(response.rules_size(), static_cast<int>(evaluation.rules.size()));
  for (int i = 0; i < response.rules_size(); ++i) {
    const RuleResult& result = evaluation.rules[i];
    EXPECT_EQ(response.rules(i).id(), rule_set->rules()[result.rule].id);
    EXPECT_EQ(response.rules(i).outcome(), ToProto(result.outcome));
    EXPECT_EQ(response.rules(i).missing_facts_size(),
              static_cast<int>(result.missing_facts.size()));
  }
  ASSERT_EQ(response.missing_facts_size(), static_cast<int>(evaluation.missing_facts.size()));
  EXPECT_EQ(response.missing_facts(0), rule_set->facts()[evaluation.missing_facts[0]].name);
}

TEST(ConvertTest, FullRuleSetInfoCarriesFactsRangesAndRules) {
  const auto rule_set = testing::LoadBundled("NCT04094766-v1.0.textproto");
  ASSERT_NE(rule_set, nullptr);
  v1::RuleSetInfo summary, full;
  FillRuleSetInfo(*rule_set, /*full=*/false, &summary);
  FillRuleSetInfo(*rule_set, /*full=*/true, &full);
  EXPECT_EQ(summary.facts_size(), 0);
  EXPECT_EQ(summary.effective_from(), "2019-09-01");
  ASSERT_EQ(full.facts_size(), static_cast<int>(rule_set->facts().size()));
  EXPECT_EQ(full.rules_size(), static_cast<int>(rule_set->rules().size()));
  for (const v1::Fact& fact : full.facts()) {
    if (fact.name() == "karnofsky") {
      EXPECT_EQ(fact.min(), 0);
      EXPECT_EQ(fact.max(), 100);
    }
    if (fact.type() == v1::DATE) {
      EXPECT_FALSE(fact.min_date().empty()) << fact.name();
    }
  }
}

TEST(ConvertTest, ProblemsAreValidUtf8WhateverTheFileName) {
  google::protobuf::RepeatedPtrField<v1::Problem> out;
  FillProblems({{"bad\xff.textproto", 3, 7, "I1", "unknown name"}}, &out);
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(out[0].file(), "bad\xEF\xBF\xBD.textproto");
  EXPECT_EQ(out[0].text(), "bad\xEF\xBF\xBD.textproto:3:7: rule I1: unknown name");
}

TEST(ConvertTest, OneValueSwitchServesFactsAndScreenValues) {
  v1::ScreenValue screen;
  EXPECT_EQ(FactValueOf(screen), std::nullopt);
  screen.set_date("2020-01-15");
  EXPECT_EQ(FactValueOf(screen), FactValue(std::string("2020-01-15")));
  v1::FactValue fact;
  fact.set_name("karnofsky");
  EXPECT_EQ(FactInputFromProto(fact).status().message(),
            "fact \"karnofsky\" has no value (set number, boolean, date or text; leave a missing "
            "fact out)");
  fact.set_number(70);
  EXPECT_EQ(FactInputFromProto(fact)->value, FactValue(70.0));
}

}  // namespace
}  // namespace trialrules
