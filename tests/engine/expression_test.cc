#include "service/engine/expression.h"

#include <cmath>
#include <limits>

#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

constexpr double U = std::numeric_limits<double>::quiet_NaN();  // unknown
constexpr double T = 1.0;
constexpr double F = 0.0;

// Evaluates `text` with bools a, b and numbers x, y.
class ExpressionTest : public ::testing::Test {
 protected:
  double Eval(const std::string& text, double a, double b, double x = 0,
              double y = 0, bool* not_finite_out = nullptr) {
    const ExpressionCheck check = CheckExpression(text, symbols_);
    EXPECT_EQ(check.error, "") << text;
    slots_[0] = a;
    slots_[1] = b;
    slots_[2] = x;
    slots_[3] = y;
    auto expression = BoundExpression::Create(text, slot_of_, slots_);
    bool not_finite = false;
    const double value = expression->Evaluate(&not_finite);
    bool muparser_not_finite = !not_finite;
    const double muparser_value = expression->EvaluateByMuparser(&muparser_not_finite);
    EXPECT_TRUE(std::isnan(value) ? std::isnan(muparser_value) : value == muparser_value)
        << text << ": " << value << " but muparser gives " << muparser_value;
    EXPECT_EQ(not_finite, muparser_not_finite) << text;
    if (not_finite_out != nullptr) *not_finite_out = not_finite;
    return value;
  }
  std::string Error(const std::string& text) {
    return CheckExpression(text, symbols_).error;
  }

  absl::flat_hash_map<std::string, ValueType> symbols_ = {
      {"a", ValueType::kBool}, {"b", ValueType::kBool},
      {"x", ValueType::kNumber}, {"y", ValueType::kNumber},
      {"d", ValueType::kDate}};
  absl::flat_hash_map<std::string, int> slot_of_ = {
      {"a", 0}, {"b", 1}, {"x", 2}, {"y", 3}, {"d", 4}};
  double slots_[5] = {};
};

void ExpectSame(double expected, double actual, const std::string& what) {
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(actual)) << what << " gave " << actual;
  } else {
    EXPECT_EQ(expected, actual) << what;
  }
}

TEST_F(ExpressionTest, AndFollowsKleeneTruthTable) {
  const double values[] = {T, F, U};
  const double expected[3][3] = {{T, F, U}, {F, F, F}, {U, F, U}};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      ExpectSame(expected[i][j], Eval("a && b", values[i], values[j]),
                 "and " + std::to_string(i) + "," + std::to_string(j));
    }
  }
}

TEST_F(ExpressionTest, OrFollowsKleeneTruthTable) {
  const double values[] = {T, F, U};
  const double expected[3][3] = {{T, T, T}, {T, F, U}, {T, U, U}};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      ExpectSame(expected[i][j], Eval("a || b", values[i], values[j]),
                 "or " + std::to_string(i) + "," + std::to_string(j));
    }
  }
}

TEST_F(ExpressionTest, NotOfUnknownIsUnknown) {
  ExpectSame(F, Eval("!a", T, F), "!T");
  ExpectSame(T, Eval("!a", F, F), "!F");
  ExpectSame(U, Eval("!a", U, F), "!U");
}

TEST_F(ExpressionTest, ComparisonsOfUnknownAreUnknownNotFalse) {
  for (const char* op : {"<", "<=", ">", ">=", "==", "!="}) {
    ExpectSame(U, Eval(std::string("x ") + op + " 5", F, F, U), op);
  }
  // muparser alone makes both of these false for a missing value.
  ExpectSame(U, Eval("x < 5 * y", F, F, U, 40), "x < 5*y");
  ExpectSame(U, Eval("x >= 5 * y", F, F, U, 40), "x >= 5*y");
}

TEST_F(ExpressionTest, ComparisonBoundaries) {
  ExpectSame(T, Eval("x >= 70", F, F, 70), ">= at boundary");
  ExpectSame(F, Eval("x > 70", F, F, 70), "> at boundary");
  ExpectSame(F, Eval("x < 70", F, F, 70), "< at boundary");
  ExpectSame(T, Eval("x <= 70", F, F, 70), "<= at boundary");
}

// Both sides and the equality as exact decimal arithmetic has them, where
// the nearest doubles disagree: 1.5 * 1.2 is 1.7999999999999998 in double,
// 5 * 10.06 is 50.300000000000004, and 159.156 / 88.42 is 1.7999999999999998.
TEST_F(ExpressionTest, ComparisonsAreDecidedOnDecimalValues) {
  struct Boundary {
    double value, factor, reference;
  };
  for (const Boundary& b : {Boundary{1.8, 1.5, 1.2}, Boundary{50.3, 5, 10.06},
                            Boundary{3.3, 3, 1.1}, Boundary{2.1, 3.0, 0.7}}) {
    const std::string what = absl::StrCat(b.value, " vs ", b.factor, " x ", b.reference);
    slots_[2] = b.value;
    const std::string product = absl::StrCat(b.factor, " * y");
    EXPECT_EQ(Eval("x == " + product, T, T, b.value, b.reference), T) << what;
    EXPECT_EQ(Eval("x != " + product, T, T, b.value, b.reference), F) << what;
    EXPECT_EQ(Eval("x < " + product, T, T, b.value, b.reference), F) << what;
    EXPECT_EQ(Eval("x <= " + product, T, T, b.value, b.reference), T) << what;
    EXPECT_EQ(Eval("x > " + product, T, T, b.value, b.reference), F) << what;
    EXPECT_EQ(Eval("x >= " + product, T, T, b.value, b.reference), T) << what;
    // One unit in the last of 6 significant digits either side is not equal.
    const double step = b.value * 1e-5;
    EXPECT_EQ(Eval("x < " + product, T, T, b.value - step, b.reference), T) << what;
    EXPECT_EQ(Eval("x > " + product, T, T, b.value + step, b.reference), T) << what;
    EXPECT_EQ(Eval("x == " + product, T, T, b.value + step, b.reference), F) << what;
  }
  EXPECT_EQ(Eval("x / 88.42 == 1.8", T, T, 159.156), T);
  EXPECT_EQ(Eval("x / 88.42 > 1.8", T, T, 159.156), F);
  // Different 12-digit decimals stay different.
  EXPECT_EQ(Eval("x < y", T, T, 9.99999999998, 9.99999999999), T);
  EXPECT_EQ(Eval("x == 0", T, T, 1e-300), F);
}

TEST_F(ExpressionTest, LogicOnFractionsIsNotTruncated) {
  // muparser's constant folding would make 0.5 && 1 false.
  ExpectSame(T, Eval("x > 0.4 && 0.5 < 1", F, F, 0.5), "fractions");
}

TEST_F(ExpressionTest, IfWithUnknownConditionIsUnknownUnlessBranchesAgree) {
  ExpectSame(0.85, Eval("if(a, 0.85, 1) + 0", T, F), "if T");
  ExpectSame(1, Eval("if(a, 0.85, 1) + 0", F, F), "if F");
  ExpectSame(U, Eval("if(a, 0.85, 1) + 0", U, F), "if U");
  ExpectSame(2, Eval("if(a, 2, 2) + 0", U, F), "if U, same branches");
}

TEST_F(ExpressionTest, DivisionByZeroIsNotFiniteNeverAnAnswer) {
  bool not_finite = false;
  ExpectSame(U, Eval("1 / (x - x) > 5", F, F, 3, 0, &not_finite), "1/0");
  EXPECT_TRUE(not_finite);
  ExpectSame(U, Eval("sqrt(x) > 1", F, F, -1, 0, &not_finite), "sqrt(-1)");
  EXPECT_TRUE(not_finite);
  ExpectSame(U, Eval("x ^ y > 1", F, F, 10, 400, &not_finite), "overflow");
  EXPECT_TRUE(not_finite);
  ExpectSame(U, Eval("ln(x) > 1", F, F, 0, 0, &not_finite), "ln(0)");
  EXPECT_TRUE(not_finite);
  // A missing operand is unknown, not a computation failure.
  ExpectSame(U, Eval("1 / x > 5", F, F, U, 0, &not_finite), "1/U");
  EXPECT_FALSE(not_finite);
}

TEST_F(ExpressionTest, StatisticalFunctionsFromBoostMath) {
  // Beta(3, 2): P(X <= 0.2) = 4x^3 - 3x^4 = 0.0272.
  EXPECT_NEAR(Eval("beta_cdf(0.2, 3, 2) + 0", F, F), 0.0272, 1e-12);
  // Binomial(10, 0.5): P(K <= 5) = 638/1024.
  EXPECT_NEAR(Eval("binom_cdf(5, 10, 0.5) + 0", F, F), 638.0 / 1024, 1e-12);
  bool not_finite = false;
  ExpectSame(U, Eval("beta_cdf(0.2, x, 1) > 0", F, F, -1, 0, &not_finite), "a<0");
  EXPECT_TRUE(not_finite);
  // Shape parameters and n up to 1e6 are answered; beyond, Boost's time
  // has no bound (beta_cdf(0.5, 1e300, 1e300) would never return), so they
  // are outside the domain.
  EXPECT_NEAR(Eval("beta_cdf(0.5, x, x) + 0", F, F, 1e6, 0), 0.5, 1e-9);
  EXPECT_NEAR(Eval("binom_cdf(x / 2, x, 0.5) + 0", F, F, 1e6, 0), 0.5004, 1e-4);
  for (const char* expression : {"beta_cdf(0.5, x, x) > 0", "beta_cdf(0.5, 1, x) > 0",
                                 "binom_cdf(5, x, 0.5) > 0"}) {
    not_finite = false;
    ExpectSame(U, Eval(expression, F, F, 1e300, 0, &not_finite), expression);
    EXPECT_TRUE(not_finite) << expression;
    not_finite = false;
    ExpectSame(U, Eval(expression, F, F, 1e6 + 1, 0, &not_finite), expression);
    EXPECT_TRUE(not_finite) << expression;
  }
}

TEST_F(ExpressionTest, DatesSubtractToDays) {
  EXPECT_EQ(CheckExpression("d - d >= 14", symbols_).error, "");
  EXPECT_EQ(CheckExpression("d + 14 > d", symbols_).error, "");
}

TEST_F(ExpressionTest, RefusesMuparserTraps) {
  EXPECT_EQ(Error("x = 5"), "'=' assigns in muparser; write '==' to compare");
  EXPECT_EQ(Error("a, b"), "',' outside a function call gives 2 values; a rule must give one");
  EXPECT_EQ(Error("a ? x : y"),
            "'?:' is not allowed: it is not three-valued (an unknown condition "
            "would pick a branch); write if(condition, then, else)");
  EXPECT_EQ(Error("\"s\" == \"s\""), "string literals are not allowed");
  EXPECT_EQ(Error(""), "expression is empty");
}

TEST_F(ExpressionTest, RefusesMixedTypes) {
  EXPECT_EQ(Error("a + 1 > 0"), "'+' cannot add a true/false value and a number");
  EXPECT_EQ(Error("x && a"), "'&&' needs true/false operands but got a number");
  EXPECT_EQ(Error("!x"), "'!' needs a true/false operand but got a number");
  EXPECT_EQ(Error("d > 5"), "'>' cannot compare a date with a number");
  EXPECT_EQ(Error("a * 2 > 1"), "'*' needs numbers but got a true/false value");
  EXPECT_EQ(Error("if(x, 1, 2) > 0"), "if() needs a true/false condition but got a number");
}

TEST_F(ExpressionTest, ReportsUnknownNamesAndPositions) {
  const ExpressionCheck check = CheckExpression("x > 1 && zz", symbols_);
  EXPECT_EQ(check.error, "unknown name 'zz': not a declared fact, derived value or rule");
  EXPECT_EQ(check.error_offset, 9);
  const ExpressionCheck syntax = CheckExpression("x > ", symbols_);
  EXPECT_EQ(syntax.error, "Unexpected end of expression");
}

TEST_F(ExpressionTest, RefusesConstantsWithoutAFiniteValue) {
  EXPECT_EQ(Error("x > 1/0"), "the constant 1 / 0 has no finite value");
  EXPECT_EQ(Error("x > 2 * (1 - 1) / (3 - 3)"), "the constant 0 / 0 has no finite value");
  EXPECT_EQ(Error("x > ln(0)"), "the constant ln(0) has no finite value");
  EXPECT_EQ(Error("x > sqrt(0 - 4)"), "the constant sqrt(-4) has no finite value");
  EXPECT_EQ(Error("x > 10^400"), "the constant 10 ^ 400 has no finite value");
  EXPECT_EQ(Error("x / 0 > 1"), "division by the constant 0 has no finite value");
  // Constants with a value, and divisions by what may be zero, stay allowed.
  EXPECT_EQ(Error("x > 1/3 && x < ln(10) && x / y > 0"), "");
}

TEST_F(ExpressionTest, RefusesNestingDeeperThanTheLimit) {
  const std::string deep(kMaxNestingDepth, '(');
  const std::string close(kMaxNestingDepth, ')');
  EXPECT_EQ(Error(deep + "x" + close + " > 1"), "");
  EXPECT_EQ(Error("(" + deep + "x" + close + ") > 1"),
            "parentheses nest deeper than 32 levels");
}

TEST_F(ExpressionTest, RefusesOverlongExpressions) {
  std::string text = "x > 0";
  while (text.size() <= kMaxExpressionLength) text += " || x > 0";
  EXPECT_EQ(Error(text).rfind("expression is ", 0), 0u);
}

TEST_F(ExpressionTest, ListsUsedNames) {
  const ExpressionCheck check = CheckExpression("y > 1 && a || x < 2", symbols_);
  EXPECT_EQ(check.used_names, (std::vector<std::string>{"a", "x", "y"}));
  EXPECT_EQ(check.type, ValueType::kBool);
}

// Evaluate() runs its own reading of muparser's bytecode: every expression
// of the bundled rule files gives what muparser's interpreter gives, value
// and not_finite, over values that include unknowns, zeros, infinities and
// boundaries.
TEST(BytecodeTest, EveryBundledExpressionAgreesWithMuparser) {
  for (const std::string name : {"NCT04094766-v1.0.textproto", "NCT04094766-v2.0.textproto",
                                 "NCT03671460-v1.0.textproto"}) {
    const auto rule_set = testing::LoadBundled(name);
    ASSERT_NE(rule_set, nullptr);
    const RuleSetDefinition& def = rule_set->definition();
    const int node_count = static_cast<int>(def.nodes.size());
    absl::flat_hash_map<std::string, int> slot_of;
    for (size_t f = 0; f < def.facts.size(); ++f) slot_of[def.facts[f].name] = f;
    for (int n = 0; n < node_count; ++n) slot_of[def.NodeName(n)] = def.facts.size() + n;
    std::vector<double> slots(def.facts.size() + node_count);
    std::mt19937_64 random(7);
    const double kSpecial[] = {U, 0.0, 1.0, -1.0, 2.0, 5.0, 14.0, 50.0, 0.2,
                               std::numeric_limits<double>::infinity(), 1e308};
    int programs = 0;
    for (int n = 0; n < node_count; ++n) {
      const std::string& text = def.NodeExpression(n);
      auto expression = BoundExpression::Create(text, slot_of, slots.data());
      ASSERT_NE(expression, nullptr) << text;
      for (int round = 0; round < 2000; ++round) {
        for (double& slot : slots) {
          const uint64_t draw = random();
          slot = draw % 3 == 0 ? kSpecial[(draw >> 8) % std::size(kSpecial)]
                 : draw % 3 == 1 ? static_cast<double>((draw >> 8) % 200) - 20
                                 : static_cast<double>((draw >> 8) % 100000) / 1000;
        }
        bool not_finite = false, muparser_not_finite = true;
        const double value = expression->Evaluate(&not_finite);
        const double muparser_value = expression->EvaluateByMuparser(&muparser_not_finite);
        ASSERT_TRUE(std::isnan(value) ? std::isnan(muparser_value) : value == muparser_value)
            << name << ": " << text << ": " << value << " but muparser gives " << muparser_value;
        ASSERT_EQ(not_finite, muparser_not_finite) << name << ": " << text;
      }
      // Every expression but a lone name (read directly) runs its own program.
      const bool lone_name = text.find_first_not_of(
                                 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                             std::string::npos;
      EXPECT_EQ(expression->RunsOwnProgram(), !lone_name) << text;
      if (expression->RunsOwnProgram()) ++programs;
    }
    EXPECT_GE(programs, 10) << name;  // the files' expressions that are more than a name
  }
}

}  // namespace
}  // namespace trialrules
