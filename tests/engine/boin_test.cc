// BOIN: the contract's examples (SAFETY.md 4.2), the refusals, and every
// value of tests/data/boin/reference.json, which R computed with BOIN
// 2.7.2's formulas (tests/data/boin/generate.R).
#include "service/engine/boin.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace trialrules {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

BoinDesign Design(double target, int n_earlystop = 100) {
  BoinParameters parameters;
  parameters.target = target;
  parameters.n_earlystop = n_earlystop;
  absl::StatusOr<BoinDesign> design = BoinDesign::Create(parameters);
  EXPECT_TRUE(design.ok()) << design.status();
  return *design;
}

std::vector<BoinDoseCounts> Counts(std::vector<int> n, std::vector<int> y) {
  std::vector<BoinDoseCounts> counts;
  for (size_t d = 0; d < n.size(); ++d) counts.push_back({n[d], y[d]});
  return counts;
}

std::string Message(const BoinParameters& parameters) {
  absl::StatusOr<BoinDesign> design = BoinDesign::Create(parameters);
  EXPECT_FALSE(design.ok());
  EXPECT_EQ(design.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(design.status().message());
}

TEST(BoinTest, ContractBoundariesForTargetThirtyPercent) {
  const BoinDesign design = Design(0.30);
  EXPECT_NEAR(design.lambda_e(), 0.2364906852, 1e-10);
  EXPECT_NEAR(design.lambda_d(), 0.3585194646, 1e-10);
  std::vector<int> escalate, deescalate;
  std::vector<std::string> eliminate;
  for (const BoinBoundary& row : design.Boundaries(12)) {
    escalate.push_back(row.escalate_max);
    deescalate.push_back(row.deescalate_min);
    eliminate.push_back(row.eliminate_min ? absl::StrCat(*row.eliminate_min) : "-");
  }
  EXPECT_EQ(escalate, (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(deescalate, (std::vector<int>{1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5}));
  EXPECT_EQ(absl::StrJoin(eliminate, ","), "-,-,3,3,4,4,5,5,5,6,6,7");
}

TEST(BoinTest, ContractNextDoseExamples) {
  const BoinDesign design = Design(0.30);
  absl::StatusOr<BoinDecision> decision = design.Decide(Counts({3, 0, 0}, {0, 0, 0}), 0);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->action, BoinAction::kEscalate);
  EXPECT_EQ(decision->next_dose, 1);
  EXPECT_TRUE(decision->eliminated.empty());

  decision = design.Decide(Counts({3, 3, 0}, {0, 2, 0}), 1);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->action, BoinAction::kDeEscalate);
  EXPECT_EQ(decision->next_dose, 0);
  EXPECT_TRUE(decision->eliminated.empty());

  decision = design.Decide(Counts({3, 3, 0}, {0, 3, 0}), 1);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->action, BoinAction::kDeEscalate);
  EXPECT_EQ(decision->next_dose, 0);
  EXPECT_EQ(decision->eliminated, (std::vector<int>{1, 2}));

  decision = design.Decide(Counts({6, 0, 0}, {4, 0, 0}), 0);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->action, BoinAction::kStopNoMtd);
  EXPECT_EQ(decision->next_dose, std::nullopt);
  EXPECT_EQ(decision->eliminated, (std::vector<int>{0, 1, 2}));
}

TEST(BoinTest, ContractMtdExample) {
  absl::StatusOr<MtdSelection> selection =
      Design(0.30).SelectMtd(Counts({3, 3, 15, 9, 0}, {0, 0, 4, 4, 0}));
  ASSERT_TRUE(selection.ok()) << selection.status();
  EXPECT_EQ(selection->mtd, 2);
  ASSERT_EQ(selection->estimates.size(), 5u);
  const double expected[] = {0.02, 0.02, 0.27, 0.45};
  for (int d = 0; d < 4; ++d) {
    ASSERT_TRUE(selection->estimates[d].has_value()) << d;
    EXPECT_NEAR(*selection->estimates[d], expected[d], 0.005) << d;
  }
  EXPECT_EQ(selection->estimates[4], std::nullopt);
}

TEST(BoinTest, ActionNamesAreTheContractsWords) {
  EXPECT_EQ(BoinActionName(BoinAction::kEscalate), "ESCALATE");
  EXPECT_EQ(BoinActionName(BoinAction::kStay), "STAY");
  EXPECT_EQ(BoinActionName(BoinAction::kDeEscalate), "DE_ESCALATE");
  EXPECT_EQ(BoinActionName(BoinAction::kStopNoMtd), "STOP_NO_MTD");
  EXPECT_EQ(BoinActionName(BoinAction::kStopSelectMtd), "STOP_SELECT_MTD");
}

TEST(BoinTest, RefusesParametersNamingThem) {
  BoinParameters p;
  p.target = 0.04;
  EXPECT_EQ(Message(p), "BOIN phi = 0.04: the target must be 0.05 to 0.6");
  p.target = 0.61;
  EXPECT_EQ(Message(p), "BOIN phi = 0.61: the target must be 0.05 to 0.6");
  p.target = 0.3;
  p.phi1 = 0.28;
  EXPECT_EQ(Message(p), "BOIN phi1 = 0.28: must be at most phi - 0.1 phi (phi = 0.3)");
  p.phi1 = 0;
  EXPECT_EQ(Message(p), "BOIN phi1 = 0: must be above 0");
  p.phi1.reset();
  p.phi2 = 0.31;
  EXPECT_EQ(Message(p), "BOIN phi2 = 0.31: must be at least phi + 0.1 phi (phi = 0.3)");
  p.phi2 = 1;
  EXPECT_EQ(Message(p), "BOIN phi2 = 1: must be below 1");
  p.phi2.reset();
  p.n_earlystop = 0;
  EXPECT_EQ(Message(p), "BOIN n_earlystop = 0: must be at least 1");
  p.n_earlystop = 100;
  p.elimination_cutoff = 1;
  EXPECT_EQ(Message(p), "BOIN elimination_cutoff = 1: must be between 0 and 1");
}

// At 0.1 phi from the target the comparison is on doubles, as BOIN makes
// it: R gives (0.3 - 0.27) < 0.1 * 0.3 TRUE, (0.33 - 0.3) < 0.03 FALSE,
// (0.2 - 0.18) < 0.02 FALSE and (0.22 - 0.2) < 0.02 TRUE.
TEST(BoinTest, RefusesAtTheEdgesExactlyWhenBoinDoes) {
  BoinParameters p;
  p.target = 0.05;
  EXPECT_TRUE(BoinDesign::Create(p).ok());
  p.target = 0.6;
  EXPECT_TRUE(BoinDesign::Create(p).ok());
  p.target = 0.3;
  p.phi1 = 0.27;
  EXPECT_FALSE(BoinDesign::Create(p).ok());
  p.phi1.reset();
  p.phi2 = 0.33;
  EXPECT_TRUE(BoinDesign::Create(p).ok()) << BoinDesign::Create(p).status();
  p.target = 0.2;
  p.phi1 = 0.18;
  p.phi2.reset();
  EXPECT_TRUE(BoinDesign::Create(p).ok()) << BoinDesign::Create(p).status();
  p.phi1.reset();
  p.phi2 = 0.22;
  EXPECT_FALSE(BoinDesign::Create(p).ok());
}

TEST(BoinTest, RefusesCountsThatCannotBeNamingTheDose) {
  const BoinDesign design = Design(0.30);
  absl::StatusOr<BoinDecision> decision = design.Decide(Counts({3, 2, 0}, {0, 3, 0}), 1);
  EXPECT_EQ(decision.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(decision.status().message(),
            "dose 2: y = 3 DLTs is more than n = 2 evaluable patients");
  decision = design.Decide(Counts({3, -1}, {0, 0}), 0);
  EXPECT_EQ(decision.status().message(), "dose 2: n = -1, y = 0: counts cannot be negative");
  decision = design.Decide(Counts({3, 3}, {0, 0}), 2);
  EXPECT_EQ(decision.status().message(), "current dose 3: not one of the 2 doses");
  decision = design.Decide({}, 0);
  EXPECT_EQ(decision.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(design.SelectMtd(Counts({3}, {4})).status().message(),
            "dose 1: y = 4 DLTs is more than n = 3 evaluable patients");
}

TEST(BoinTest, EliminationIsThePosteriorOverTheCutOffFromThreePatients) {
  const BoinDesign design = Design(0.30);
  // Pr(p > 0.3 | 3 of 3) = P(Binomial(4, 0.3) <= 3) = 1 - 0.3^4.
  EXPECT_NEAR(design.OverdoseProbability({3, 3}), 1 - 0.3 * 0.3 * 0.3 * 0.3, 1e-15);
  EXPECT_TRUE(design.Eliminated({3, 3}));
  EXPECT_FALSE(design.Eliminated({3, 2}));
  EXPECT_FALSE(design.Eliminated({2, 2}));  // too few patients, whatever they show
}

TEST(BoinTest, NoEvaluablePatientAtTheCurrentDoseStays) {
  absl::StatusOr<BoinDecision> decision = Design(0.30).Decide(Counts({3, 0, 0}, {0, 0, 0}), 1);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->action, BoinAction::kStay);
  EXPECT_EQ(decision->next_dose, 1);
}

// BOIN never treats above an eliminated dose; counts that say it did still
// leave every eliminated dose.
TEST(BoinTest, ACurrentDoseAboveAnEliminatedOneGoesToTheHighestDoseLeft) {
  absl::StatusOr<BoinDecision> decision =
      Design(0.30).Decide(Counts({3, 6, 3, 3}, {0, 5, 0, 0}), 3);
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_EQ(decision->action, BoinAction::kDeEscalate);
  EXPECT_EQ(decision->next_dose, 0);
  EXPECT_EQ(decision->eliminated, (std::vector<int>{1, 2, 3}));
}

TEST(BoinTest, CanonicalTextHoldsParametersAndAtLeastTwelveRows) {
  const std::string text = Design(0.30).CanonicalText(3);
  EXPECT_EQ(text.rfind("BOIN phi=0.3 phi1=0.18 phi2=0.42 n_earlystop=100 "
                       "elimination_cutoff=0.95\nlambda_e=0.2364906852 lambda_d=0.3585194646\n",
                       0),
            0u)
      << text;
  EXPECT_NE(text.find("\n3 0 2 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n12 2 5 7\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("\n13 "), std::string::npos) << text;
  EXPECT_NE(Design(0.30).CanonicalText(14).find("\n14 "), std::string::npos);
  EXPECT_NE(Design(0.30, 12).CanonicalText(12), text);
}

// ---- tests/data/boin/reference.json ----

Struct ReadReference() {
  const std::string path = std::string(TRIALRULES_SOURCE_DIR) + "/tests/data/boin/reference.json";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  Struct reference;
  const auto parsed = google::protobuf::util::JsonStringToMessage(text.str(), &reference);
  EXPECT_TRUE(parsed.ok()) << path << ": " << parsed.ToString();
  return reference;
}

const Struct& Reference() {
  static const Struct* reference = new Struct(ReadReference());
  return *reference;
}

const Value& Field(const Struct& s, const std::string& name) {
  static const Value* null_value = new Value();
  const auto it = s.fields().find(name);
  EXPECT_NE(it, s.fields().end()) << name;
  return it == s.fields().end() ? *null_value : it->second;
}
const ListValue& List(const Struct& s, const std::string& name) {
  return Field(s, name).list_value();
}
int Int(const Value& v) { return static_cast<int>(v.number_value()); }
std::optional<double> OptionalNumber(const Value& v) {
  if (v.kind_case() == Value::kNullValue) return std::nullopt;
  return v.number_value();
}
std::optional<int> OptionalInt(const Value& v) {
  if (v.kind_case() == Value::kNullValue) return std::nullopt;
  return Int(v);
}
std::vector<int> Ints(const ListValue& list) {
  std::vector<int> values;
  for (const Value& v : list.values()) values.push_back(Int(v));
  return values;
}

// The design a case names; phi1/phi2 null means BOIN's defaults.
BoinDesign DesignOf(const Struct& c) {
  BoinParameters parameters;
  parameters.target = Field(c, "target").number_value();
  if (const auto it = c.fields().find("phi1"); it != c.fields().end()) {
    parameters.phi1 = OptionalNumber(it->second);
  }
  if (const auto it = c.fields().find("phi2"); it != c.fields().end()) {
    parameters.phi2 = OptionalNumber(it->second);
  }
  if (const auto it = c.fields().find("n_earlystop"); it != c.fields().end()) {
    parameters.n_earlystop = Int(it->second);
  }
  absl::StatusOr<BoinDesign> design = BoinDesign::Create(parameters);
  EXPECT_TRUE(design.ok()) << design.status();
  return *design;
}

std::string Describe(const Struct& c) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(c, &json);
  return json;
}

TEST(BoinReferenceTest, HoldsTheDesignsAndCasesTheIssueAsksFor) {
  EXPECT_EQ(List(Reference(), "designs").values_size(), 6);
  EXPECT_GE(List(Reference(), "next_dose").values_size(), 100);
  EXPECT_GE(List(Reference(), "mtd").values_size(), 60);
}

TEST(BoinReferenceTest, BoundariesAndLambdasMatchR) {
  for (const Value& entry : List(Reference(), "designs").values()) {
    const Struct& expected = entry.struct_value();
    const BoinDesign design = DesignOf(expected);
    SCOPED_TRACE(
        absl::StrCat("target ", design.phi(), " phi1 ", design.phi1(), " phi2 ", design.phi2()));
    EXPECT_DOUBLE_EQ(design.lambda_e(), Field(expected, "lambda_e").number_value());
    EXPECT_DOUBLE_EQ(design.lambda_d(), Field(expected, "lambda_d").number_value());
    const ListValue& rows = List(expected, "boundaries");
    ASSERT_EQ(rows.values_size(), 30);
    const std::vector<BoinBoundary> actual = design.Boundaries(30);
    for (int i = 0; i < 30; ++i) {
      const Struct& row = rows.values(i).struct_value();
      EXPECT_EQ(actual[i].n, Int(Field(row, "n")));
      EXPECT_EQ(actual[i].escalate_max, Int(Field(row, "escalate_max"))) << "n " << i + 1;
      EXPECT_EQ(actual[i].deescalate_min, Int(Field(row, "deescalate_min"))) << "n " << i + 1;
      EXPECT_EQ(actual[i].eliminate_min, OptionalInt(Field(row, "eliminate_min"))) << "n " << i + 1;
    }
  }
}

TEST(BoinReferenceTest, NextDoseDecisionsMatchR) {
  for (const Value& entry : List(Reference(), "next_dose").values()) {
    const Struct& expected = entry.struct_value();
    SCOPED_TRACE(Describe(expected));
    const BoinDesign design = DesignOf(expected);
    const std::vector<BoinDoseCounts> counts =
        Counts(Ints(List(expected, "n")), Ints(List(expected, "y")));
    absl::StatusOr<BoinDecision> decision =
        design.Decide(counts, Int(Field(expected, "current")) - 1);
    ASSERT_TRUE(decision.ok()) << decision.status();
    EXPECT_EQ(BoinActionName(decision->action), Field(expected, "decision").string_value());
    const std::optional<int> next = OptionalInt(Field(expected, "next_dose"));
    EXPECT_EQ(decision->next_dose, next ? std::optional<int>(*next - 1) : std::nullopt);
    std::vector<int> eliminated;
    for (int d : decision->eliminated) eliminated.push_back(d + 1);
    EXPECT_EQ(eliminated, Ints(List(expected, "eliminated")));
  }
}

TEST(BoinReferenceTest, MtdSelectionsAndEstimatesMatchR) {
  for (const Value& entry : List(Reference(), "mtd").values()) {
    const Struct& expected = entry.struct_value();
    SCOPED_TRACE(Describe(expected));
    absl::StatusOr<MtdSelection> selection =
        DesignOf(expected).SelectMtd(Counts(Ints(List(expected, "n")), Ints(List(expected, "y"))));
    ASSERT_TRUE(selection.ok()) << selection.status();
    const std::optional<int> mtd = OptionalInt(Field(expected, "mtd"));
    EXPECT_EQ(selection->mtd, mtd ? std::optional<int>(*mtd - 1) : std::nullopt);
    const ListValue& estimates = List(expected, "estimates");
    ASSERT_EQ(static_cast<int>(selection->estimates.size()), estimates.values_size());
    for (int d = 0; d < estimates.values_size(); ++d) {
      const std::optional<double> want = OptionalNumber(estimates.values(d));
      ASSERT_EQ(selection->estimates[d].has_value(), want.has_value()) << "dose " << d + 1;
      if (want) {
        EXPECT_DOUBLE_EQ(*selection->estimates[d], *want) << "dose " << d + 1;
      }
    }
  }
}

}  // namespace
}  // namespace trialrules
