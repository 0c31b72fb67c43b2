#include "service/engine/expression.h"

#include <muParser.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <regex>

#include <boost/math/distributions/beta.hpp>
#include <boost/math/distributions/binomial.hpp>

#include "absl/strings/str_cat.h"
#include "service/util/number_text.h"

namespace trialrules {
namespace {

constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------
// Evaluation: three-valued operators over doubles, NaN meaning unknown.
// ---------------------------------------------------------------------------

// Set by an operator whose finite operands gave no finite result. Operators
// are plain function pointers (muparser passes no context to operators), and
// a thread evaluates one expression at a time, so a thread-local flag is the
// evaluation's own.
thread_local bool tl_not_finite = false;

bool IsUnknown(double v) { return std::isnan(v); }

double Checked(double result, double a, double b) {
  if (!std::isfinite(result) && std::isfinite(a) && std::isfinite(b)) {
    tl_not_finite = true;
    return kUnknown;
  }
  return result;
}

double Checked1(double result, double a) { return Checked(result, a, 0.0); }

double Add(double a, double b) { return Checked(a + b, a, b); }
double Sub(double a, double b) { return Checked(a - b, a, b); }
double Mul(double a, double b) { return Checked(a * b, a, b); }
double Div(double a, double b) { return Checked(a / b, a, b); }
double Pow(double a, double b) { return Checked(std::pow(a, b), a, b); }
double Neg(double a) { return -a; }

double Truth(bool b) { return b ? 1.0 : 0.0; }

// Comparisons are decided on the decimal values the operands stand for, not
// on their nearest doubles: 1.5 * 1.2 is 1.7999999999999998 in double, and a
// bilirubin of 1.8 must still be exactly 1.5 x ULN. Operands within
// kDecimalTolerance of each other (relative) are equal. The computation's
// own error is far below it (a few operations of 1.1e-16 each), and two
// different results of decimals with at most 12 significant digits (the
// product of two 6-digit lab values, a unit conversion) differ by far more
// (at least 1e-12 relative), so both sides and the equality come out as in
// exact decimal arithmetic.
constexpr double kDecimalTolerance = 1e-13;
bool DecimalEqual(double a, double b) {
  return a == b || std::fabs(a - b) <= kDecimalTolerance * std::max(std::fabs(a), std::fabs(b));
}
#define TRIALRULES_COMPARISON(name, result)                 \
  double name(double a, double b) {                         \
    if (IsUnknown(a) || IsUnknown(b)) return kUnknown;      \
    return Truth(result);                                   \
  }
TRIALRULES_COMPARISON(Less, a < b && !DecimalEqual(a, b))
TRIALRULES_COMPARISON(LessEqual, a <= b || DecimalEqual(a, b))
TRIALRULES_COMPARISON(Greater, a > b && !DecimalEqual(a, b))
TRIALRULES_COMPARISON(GreaterEqual, a >= b || DecimalEqual(a, b))
TRIALRULES_COMPARISON(Equal, DecimalEqual(a, b))
TRIALRULES_COMPARISON(NotEqual, !DecimalEqual(a, b))
#undef TRIALRULES_COMPARISON

// Kleene: false && unknown is false; true || unknown is true.
double And(double a, double b) {
  if (a == 0.0 || b == 0.0) return 0.0;
  if (IsUnknown(a) || IsUnknown(b)) return kUnknown;
  return 1.0;
}
double Or(double a, double b) {
  if ((!IsUnknown(a) && a != 0.0) || (!IsUnknown(b) && b != 0.0)) return 1.0;
  if (IsUnknown(a) || IsUnknown(b)) return kUnknown;
  return 0.0;
}
double Not(double a) { return IsUnknown(a) ? kUnknown : Truth(a == 0.0); }

// An unknown condition still decides the value when both branches agree.
double If(double condition, double then_value, double else_value) {
  if (IsUnknown(condition)) {
    return then_value == else_value ? then_value : kUnknown;
  }
  return condition != 0.0 ? then_value : else_value;
}

double Abs(double a) { return std::fabs(a); }
double Sqrt(double a) { return Checked1(std::sqrt(a), a); }
double Exp(double a) { return Checked1(std::exp(a), a); }
double Ln(double a) { return Checked1(std::log(a), a); }
double Log10(double a) { return Checked1(std::log10(a), a); }
double Floor(double a) { return std::floor(a); }
double Ceil(double a) { return std::ceil(a); }
double Min(double a, double b) {
  return IsUnknown(a) || IsUnknown(b) ? kUnknown : std::min(a, b);
}
double Max(double a, double b) {
  return IsUnknown(a) || IsUnknown(b) ? kUnknown : std::max(a, b);
}

double OutsideDomain() {
  tl_not_finite = true;
  return kUnknown;
}

// Boost.Math's time for these grows with the shape parameters or n without
// bound (0.1 ms near 1e9, 35 s at 1e25, where it also stops being accurate);
// up to this bound every call takes microseconds, and trial counts never
// come near it.
constexpr double kMaxDistributionParameter = 1e6;

// P(X <= x) for X ~ Beta(a, b).
double BetaCdf(double x, double a, double b) {
  if (IsUnknown(x) || IsUnknown(a) || IsUnknown(b)) return kUnknown;
  if (!(x >= 0 && x <= 1 && a > 0 && b > 0 && a <= kMaxDistributionParameter &&
        b <= kMaxDistributionParameter)) {
    return OutsideDomain();
  }
  try {
    return boost::math::cdf(boost::math::beta_distribution<double>(a, b), x);
  } catch (const std::exception&) {
    return OutsideDomain();
  }
}

// P(K <= k) for K ~ Binomial(n, p).
double BinomCdf(double k, double n, double p) {
  if (IsUnknown(k) || IsUnknown(n) || IsUnknown(p)) return kUnknown;
  if (!(n >= 0 && n <= kMaxDistributionParameter && n == std::floor(n) && p >= 0 &&
        p <= 1 && std::isfinite(k))) {
    return OutsideDomain();
  }
  if (k < 0) return 0.0;
  if (k >= n) return 1.0;
  try {
    return boost::math::cdf(boost::math::binomial_distribution<double>(n, p),
                            std::floor(k));
  } catch (const std::exception&) {
    return OutsideDomain();
  }
}

// ---------------------------------------------------------------------------
// Type checking: the same parser, with operators over types. A type is
// encoded as a negative sentinel double; literals are never negative (a
// leading '-' is the unary operator), so any other value is a number literal.
// ---------------------------------------------------------------------------

constexpr double kNumberType = -9.25e307;
constexpr double kBoolType = -8.25e307;
constexpr double kDateType = -7.25e307;
constexpr double kErrorType = -6.25e307;
constexpr double kTextType = -5.25e307;

double TypeCode(ValueType type) {
  switch (type) {
    case ValueType::kBool: return kBoolType;
    case ValueType::kDate: return kDateType;
    case ValueType::kNumber: return kNumberType;
    case ValueType::kText: return kTextType;
  }
  return kErrorType;
}

struct TypeCheckContext {
  const absl::flat_hash_map<std::string, ValueType>* symbols = nullptr;
  std::deque<double> storage;  // muparser keeps pointers: must not move
  std::vector<std::string> unknown_names;
  std::string first_error;
};
thread_local TypeCheckContext* tl_type_context = nullptr;

absl::string_view TypeWord(double code) {
  if (code == kBoolType) return "a true/false value";
  if (code == kDateType) return "a date";
  if (code == kTextType) return "a text value";
  return "a number";
}

double TypeError(const std::string& message) {
  if (tl_type_context->first_error.empty()) {
    tl_type_context->first_error = message;
  }
  return kErrorType;
}

bool IsType(double code, double type) {
  if (type == kNumberType) {
    return code != kBoolType && code != kDateType && code != kTextType &&
           code != kErrorType;
  }
  return code == type;
}

double OperandError(absl::string_view op, double a, double b,
                    absl::string_view wanted) {
  const double bad = IsType(a, kNumberType) && wanted == "numbers" ? b : a;
  return TypeError(absl::StrCat("'", op, "' needs ", wanted, " but got ",
                                TypeWord(bad == kErrorType ? b : bad)));
}

#define TRIALRULES_PROPAGATE(a, b) \
  if ((a) == kErrorType || (b) == kErrorType) return kErrorType

// A literal, or an operation on literals only: its value is known at load.
bool IsConstant(double code) {
  return code != kNumberType && code != kBoolType && code != kDateType &&
         code != kTextType && code != kErrorType;
}

// The value of an operation on constants, which stays a constant; one with
// no finite value (1/0, ln(0)) would make every rule using it UNKNOWN for
// every patient, so it is refused at load.
double ConstantResult(double value, const std::string& text) {
  if (!std::isfinite(value)) {
    return TypeError(absl::StrCat("the constant ", text, " has no finite value"));
  }
  return IsConstant(value) ? value : kNumberType;
}

double ConstantBinary(absl::string_view op, double a, double b, double value) {
  return ConstantResult(value, absl::StrCat(ShortestNumber(a), " ", op, " ",
                                            ShortestNumber(b)));
}

double TypeAdd(double a, double b) {
  TRIALRULES_PROPAGATE(a, b);
  if (IsConstant(a) && IsConstant(b)) return ConstantBinary("+", a, b, a + b);
  if (IsType(a, kNumberType) && IsType(b, kNumberType)) return kNumberType;
  if ((IsType(a, kDateType) && IsType(b, kNumberType)) ||
      (IsType(a, kNumberType) && IsType(b, kDateType))) {
    return kDateType;
  }
  return TypeError(absl::StrCat("'+' cannot add ", TypeWord(a), " and ",
                                TypeWord(b)));
}
double TypeSub(double a, double b) {
  TRIALRULES_PROPAGATE(a, b);
  if (IsConstant(a) && IsConstant(b)) return ConstantBinary("-", a, b, a - b);
  if (IsType(a, kNumberType) && IsType(b, kNumberType)) return kNumberType;
  if (IsType(a, kDateType) && IsType(b, kNumberType)) return kDateType;
  if (IsType(a, kDateType) && IsType(b, kDateType)) return kNumberType;
  return TypeError(absl::StrCat("'-' cannot subtract ", TypeWord(b), " from ",
                                TypeWord(a)));
}
double TypeArithmetic(absl::string_view op, double a, double b, double value) {
  TRIALRULES_PROPAGATE(a, b);
  if (IsConstant(a) && IsConstant(b)) return ConstantBinary(op, a, b, value);
  if (IsType(a, kNumberType) && IsType(b, kNumberType)) return kNumberType;
  return OperandError(op, a, b, "numbers");
}
double TypeMul(double a, double b) { return TypeArithmetic("*", a, b, a * b); }
double TypeDiv(double a, double b) {
  if (!IsConstant(a) && IsConstant(b) && b == 0 && IsType(a, kNumberType)) {
    return TypeError("division by the constant 0 has no finite value");
  }
  return TypeArithmetic("/", a, b, a / b);
}
double TypePow(double a, double b) { return TypeArithmetic("^", a, b, std::pow(a, b)); }
double TypeNeg(double a) {
  if (a == kErrorType) return kErrorType;
  if (IsConstant(a)) return ConstantResult(-a, absl::StrCat("-", ShortestNumber(a)));
  if (IsType(a, kNumberType)) return kNumberType;
  return TypeError(absl::StrCat("unary '-' needs a number but got ",
                                TypeWord(a)));
}

double TypeOrder(absl::string_view op, double a, double b) {
  TRIALRULES_PROPAGATE(a, b);
  if ((IsType(a, kNumberType) && IsType(b, kNumberType)) ||
      (IsType(a, kDateType) && IsType(b, kDateType))) {
    return kBoolType;
  }
  return TypeError(absl::StrCat("'", op, "' cannot compare ", TypeWord(a),
                                " with ", TypeWord(b)));
}
double TypeLess(double a, double b) { return TypeOrder("<", a, b); }
double TypeLessEqual(double a, double b) { return TypeOrder("<=", a, b); }
double TypeGreater(double a, double b) { return TypeOrder(">", a, b); }
double TypeGreaterEqual(double a, double b) { return TypeOrder(">=", a, b); }

double TypeEquality(absl::string_view op, double a, double b) {
  TRIALRULES_PROPAGATE(a, b);
  if ((IsType(a, kBoolType) && IsType(b, kBoolType)) ||
      (IsType(a, kTextType) && IsType(b, kTextType))) {
    return kBoolType;
  }
  return TypeOrder(op, a, b);
}
double TypeEqual(double a, double b) { return TypeEquality("==", a, b); }
double TypeNotEqual(double a, double b) { return TypeEquality("!=", a, b); }

double TypeLogic(absl::string_view op, double a, double b) {
  TRIALRULES_PROPAGATE(a, b);
  if (IsType(a, kBoolType) && IsType(b, kBoolType)) return kBoolType;
  const double bad = IsType(a, kBoolType) ? b : a;
  return TypeError(absl::StrCat("'", op, "' needs true/false operands but got ",
                                TypeWord(bad)));
}
double TypeAnd(double a, double b) { return TypeLogic("&&", a, b); }
double TypeOr(double a, double b) { return TypeLogic("||", a, b); }
double TypeNot(double a) {
  if (a == kErrorType) return kErrorType;
  if (IsType(a, kBoolType)) return kBoolType;
  return TypeError(absl::StrCat("'!' needs a true/false operand but got ",
                                TypeWord(a)));
}

double TypeIf(double condition, double then_value, double else_value) {
  if (condition == kErrorType || then_value == kErrorType ||
      else_value == kErrorType) {
    return kErrorType;
  }
  if (!IsType(condition, kBoolType)) {
    return TypeError(absl::StrCat("if() needs a true/false condition but got ",
                                  TypeWord(condition)));
  }
  for (double type : {kBoolType, kDateType, kTextType, kNumberType}) {
    if (IsType(then_value, type) && IsType(else_value, type)) return type;
  }
  return TypeError(absl::StrCat("if() branches differ: ", TypeWord(then_value),
                                " and ", TypeWord(else_value)));
}

double TypeNumeric1(absl::string_view name, double a, double (*function)(double)) {
  if (a == kErrorType) return kErrorType;
  if (IsConstant(a)) {
    return ConstantResult(function(a), absl::StrCat(name, "(", ShortestNumber(a), ")"));
  }
  if (IsType(a, kNumberType)) return kNumberType;
  return TypeError(absl::StrCat(name, "() needs a number but got ",
                                TypeWord(a)));
}
double TypeNumeric3(absl::string_view name, double a, double b, double c) {
  for (double v : {a, b, c}) {
    if (v == kErrorType) return kErrorType;
    if (!IsType(v, kNumberType)) {
      return TypeError(absl::StrCat(name, "() needs numbers but got ",
                                    TypeWord(v)));
    }
  }
  return kNumberType;
}
double TypeAbs(double a) { return TypeNumeric1("abs", a, [](double v) { return std::fabs(v); }); }
double TypeSqrt(double a) { return TypeNumeric1("sqrt", a, [](double v) { return std::sqrt(v); }); }
double TypeExp(double a) { return TypeNumeric1("exp", a, [](double v) { return std::exp(v); }); }
double TypeLn(double a) { return TypeNumeric1("ln", a, [](double v) { return std::log(v); }); }
double TypeLog10(double a) {
  return TypeNumeric1("log10", a, [](double v) { return std::log10(v); });
}
double TypeFloor(double a) {
  return TypeNumeric1("floor", a, [](double v) { return std::floor(v); });
}
double TypeCeil(double a) { return TypeNumeric1("ceil", a, [](double v) { return std::ceil(v); }); }
double TypeMin(double a, double b) { return TypeArithmetic("min", a, b, std::min(a, b)); }
double TypeMax(double a, double b) { return TypeArithmetic("max", a, b, std::max(a, b)); }
double TypeBetaCdf(double x, double a, double b) {
  return TypeNumeric3("beta_cdf", x, a, b);
}
double TypeBinomCdf(double k, double n, double p) {
  return TypeNumeric3("binom_cdf", k, n, p);
}
#undef TRIALRULES_PROPAGATE

// The operator and function table, once for evaluation and once for types.
struct Operators {
  mu::fun_type2 add, sub, mul, div, pow;
  mu::fun_type2 less, less_equal, greater, greater_equal, equal, not_equal;
  mu::fun_type2 logical_and, logical_or;
  mu::fun_type1 neg, logical_not;
  mu::fun_type3 if_then_else;
  mu::fun_type1 abs, sqrt, exp, ln, log10, floor, ceil;
  mu::fun_type2 min, max;
  mu::fun_type3 beta_cdf, binom_cdf;
};

constexpr Operators kEvaluationOperators = {
    Add,  Sub,   Mul,  Div,   Pow,   Less,  LessEqual, Greater,
    GreaterEqual, Equal, NotEqual, And, Or, Neg, Not, If,
    Abs,  Sqrt,  Exp,  Ln,    Log10, Floor, Ceil,      Min,
    Max,  BetaCdf, BinomCdf};

constexpr Operators kTypeOperators = {
    TypeAdd,  TypeSub,   TypeMul,  TypeDiv,   TypePow,   TypeLess,
    TypeLessEqual, TypeGreater, TypeGreaterEqual, TypeEqual, TypeNotEqual,
    TypeAnd,  TypeOr,    TypeNeg,  TypeNot,   TypeIf,    TypeAbs,
    TypeSqrt, TypeExp,   TypeLn,   TypeLog10, TypeFloor, TypeCeil,
    TypeMin,  TypeMax,   TypeBetaCdf, TypeBinomCdf};

// Replaces muparser's built-in operators, functions and constants with ours.
// Constant folding is off: it would run operators at parse time, outside any
// evaluation, and muparser's own folding of && and || truncates to integers.
std::unique_ptr<mu::Parser> NewParser(const Operators& ops) {
  auto parser = std::make_unique<mu::Parser>();
  parser->EnableBuiltInOprt(false);
  parser->EnableOptimizer(false);
  parser->ClearFun();
  parser->ClearConst();
  parser->ClearInfixOprt();
  parser->ClearPostfixOprt();
  parser->ClearOprt();
  parser->DefineOprt("+", ops.add, mu::prADD_SUB, mu::oaLEFT);
  parser->DefineOprt("-", ops.sub, mu::prADD_SUB, mu::oaLEFT);
  parser->DefineOprt("*", ops.mul, mu::prMUL_DIV, mu::oaLEFT);
  parser->DefineOprt("/", ops.div, mu::prMUL_DIV, mu::oaLEFT);
  parser->DefineOprt("^", ops.pow, mu::prPOW, mu::oaRIGHT);
  parser->DefineOprt("<", ops.less, mu::prCMP, mu::oaLEFT);
  parser->DefineOprt("<=", ops.less_equal, mu::prCMP, mu::oaLEFT);
  parser->DefineOprt(">", ops.greater, mu::prCMP, mu::oaLEFT);
  parser->DefineOprt(">=", ops.greater_equal, mu::prCMP, mu::oaLEFT);
  parser->DefineOprt("==", ops.equal, mu::prCMP, mu::oaLEFT);
  parser->DefineOprt("!=", ops.not_equal, mu::prCMP, mu::oaLEFT);
  parser->DefineOprt("&&", ops.logical_and, mu::prLAND, mu::oaLEFT);
  parser->DefineOprt("||", ops.logical_or, mu::prLOR, mu::oaLEFT);
  parser->DefineInfixOprt("-", ops.neg, mu::prINFIX, false);
  parser->DefineInfixOprt("!", ops.logical_not, mu::prINFIX, false);
  parser->DefineFun("if", ops.if_then_else, false);
  parser->DefineFun("abs", ops.abs, false);
  parser->DefineFun("sqrt", ops.sqrt, false);
  parser->DefineFun("exp", ops.exp, false);
  parser->DefineFun("ln", ops.ln, false);
  parser->DefineFun("log10", ops.log10, false);
  parser->DefineFun("floor", ops.floor, false);
  parser->DefineFun("ceil", ops.ceil, false);
  parser->DefineFun("min", ops.min, false);
  parser->DefineFun("max", ops.max, false);
  parser->DefineFun("beta_cdf", ops.beta_cdf, false);
  parser->DefineFun("binom_cdf", ops.binom_cdf, false);
  return parser;
}

// Called by muparser for each name the expression uses that is not defined:
// gives every name storage holding its type code, and records the unknown.
double* CollectName(const char* name, void* /*user_data*/) {
  TypeCheckContext& context = *tl_type_context;
  const auto it = context.symbols->find(name);
  if (it == context.symbols->end()) {
    context.unknown_names.emplace_back(name);
    context.storage.push_back(kErrorType);
  } else {
    context.storage.push_back(TypeCode(it->second));
  }
  return &context.storage.back();
}

// muparser's messages end with " at position N." (0-based, of the
// expression): the caller reports the position itself, as a file column.
std::string WithoutPosition(std::string message) {
  static const std::regex kPosition(
      R"(( found)? at (expression )?position \d+\.?)");
  message = std::regex_replace(message, kPosition, "");
  while (!message.empty() && (message.back() == '.' || message.back() == ' '))
    message.pop_back();
  return message;
}

// Errors found by reading the text, with clearer words than muparser's.
bool PreScan(absl::string_view text, ExpressionCheck* check) {
  if (text.size() > kMaxExpressionLength) {
    check->error = absl::StrCat("expression is ", text.size(),
                                " characters long; the limit is ",
                                kMaxExpressionLength);
    return false;
  }
  int depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '(' && ++depth > kMaxNestingDepth) {
      check->error = absl::StrCat("parentheses nest deeper than ", kMaxNestingDepth,
                                  " levels");
      check->error_offset = static_cast<int>(i);
      return false;
    }
    if (c == ')') --depth;
    const char prev = i > 0 ? text[i - 1] : '\0';
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    if (c == '?' || c == ':') {
      check->error =
          "'?:' is not allowed: it is not three-valued (an unknown condition "
          "would pick a branch); write if(condition, then, else)";
    } else if (c == '=' && next != '=' && prev != '=' && prev != '<' &&
               prev != '>' && prev != '!') {
      check->error = "'=' assigns in muparser; write '==' to compare";
    } else if (c == '"') {
      check->error = "string literals are not allowed";
    } else if (static_cast<unsigned char>(c) >= 0x80 ||
               (static_cast<unsigned char>(c) < 0x20 && c != '\n' &&
                c != '\t' && c != '\r')) {
      check->error = "unexpected character (only ASCII is allowed)";
    } else {
      continue;
    }
    check->error_offset = static_cast<int>(i);
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// The program Evaluate() runs: muparser's bytecode read once. With built-in
// operators and the optimizer off, muparser compiles an expression to
// pushes of variables and values and calls of our functions; calling each
// of our operators through a pointer costs about as much as the operator,
// so each one muparser names by its address becomes an opcode run inline.
// ---------------------------------------------------------------------------

enum class Opcode : uint8_t {
  kEnd, kVariable, kValue,
  kAdd, kSub, kMul, kDiv, kPow,
  kLess, kLessEqual, kGreater, kGreaterEqual, kEqual, kNotEqual,
  kAnd, kOr, kNeg, kNot, kIf,
  kCall1, kCall2, kCall3,  // the other functions, through their pointer
};

}  // namespace

struct BoundExpression::Instruction {
  Opcode opcode = Opcode::kEnd;
  const double* variable = nullptr;
  double value = 0;
  mu::fun_type1 call1 = nullptr;
  mu::fun_type2 call2 = nullptr;
  mu::fun_type3 call3 = nullptr;
};

namespace {

using Instruction = BoundExpression::Instruction;

template <typename Function>
bool Is(const mu::generic_callable_type& callable, Function function) {
  return callable._pUserData == nullptr &&
         callable._pRawFun == reinterpret_cast<mu::erased_fun_type>(function);
}

// False when the bytecode holds something this reading does not know.
bool ReadBytecode(const mu::ParserByteCode& bytecode, std::vector<Instruction>* program) {
  static constexpr std::pair<mu::fun_type2, Opcode> kBinary[] = {
      {Add, Opcode::kAdd}, {Sub, Opcode::kSub}, {Mul, Opcode::kMul},
      {Div, Opcode::kDiv}, {Pow, Opcode::kPow}, {Less, Opcode::kLess},
      {LessEqual, Opcode::kLessEqual}, {Greater, Opcode::kGreater},
      {GreaterEqual, Opcode::kGreaterEqual}, {Equal, Opcode::kEqual},
      {NotEqual, Opcode::kNotEqual}, {And, Opcode::kAnd}, {Or, Opcode::kOr}};
  const mu::SToken* token = bytecode.GetBase();
  for (size_t i = 0; i < bytecode.GetSize(); ++i, ++token) {
    Instruction instruction;
    switch (token->Cmd) {
      case mu::cmEND:
        program->push_back(instruction);
        return true;
      case mu::cmVAR:
        // muparser reads data * *ptr + data2 for a variable it has folded.
        if (token->Val.data != 1 || token->Val.data2 != 0) return false;
        instruction.opcode = Opcode::kVariable;
        instruction.variable = token->Val.ptr;
        break;
      case mu::cmVAL:
        instruction.opcode = Opcode::kValue;
        instruction.value = token->Val.data2;
        break;
      case mu::cmFUNC: {
        const mu::generic_callable_type& callable = token->Fun.cb;
        if (callable._pUserData != nullptr) return false;
        switch (token->Fun.argc) {
          case 1:
            instruction.opcode = Is(callable, Neg)   ? Opcode::kNeg
                                 : Is(callable, Not) ? Opcode::kNot
                                                     : Opcode::kCall1;
            instruction.call1 = reinterpret_cast<mu::fun_type1>(callable._pRawFun);
            break;
          case 2:
            instruction.opcode = Opcode::kCall2;
            for (const auto& [function, opcode] : kBinary) {
              if (Is(callable, function)) instruction.opcode = opcode;
            }
            instruction.call2 = reinterpret_cast<mu::fun_type2>(callable._pRawFun);
            break;
          case 3:
            instruction.opcode = Is(callable, If) ? Opcode::kIf : Opcode::kCall3;
            instruction.call3 = reinterpret_cast<mu::fun_type3>(callable._pRawFun);
            break;
          default:
            return false;
        }
        break;
      }
      default:
        return false;
    }
    program->push_back(instruction);
  }
  return false;  // no end
}

// The operators are the same functions muparser would call, inlined here.
double Run(const Instruction* instruction, double* stack) {
  int top = -1;
  for (;; ++instruction) {
    switch (instruction->opcode) {
      case Opcode::kEnd: return stack[top];
      case Opcode::kVariable: stack[++top] = *instruction->variable; continue;
      case Opcode::kValue: stack[++top] = instruction->value; continue;
#define TRIALRULES_BINARY(opcode, function)            \
  case Opcode::opcode:                                 \
    --top;                                             \
    stack[top] = function(stack[top], stack[top + 1]); \
    continue;
      TRIALRULES_BINARY(kAdd, Add)
      TRIALRULES_BINARY(kSub, Sub)
      TRIALRULES_BINARY(kMul, Mul)
      TRIALRULES_BINARY(kDiv, Div)
      TRIALRULES_BINARY(kPow, Pow)
      TRIALRULES_BINARY(kLess, Less)
      TRIALRULES_BINARY(kLessEqual, LessEqual)
      TRIALRULES_BINARY(kGreater, Greater)
      TRIALRULES_BINARY(kGreaterEqual, GreaterEqual)
      TRIALRULES_BINARY(kEqual, Equal)
      TRIALRULES_BINARY(kNotEqual, NotEqual)
      TRIALRULES_BINARY(kAnd, And)
      TRIALRULES_BINARY(kOr, Or)
      TRIALRULES_BINARY(kCall2, instruction->call2)
#undef TRIALRULES_BINARY
      case Opcode::kNeg: stack[top] = Neg(stack[top]); continue;
      case Opcode::kNot: stack[top] = Not(stack[top]); continue;
      case Opcode::kCall1: stack[top] = instruction->call1(stack[top]); continue;
      case Opcode::kIf:
        top -= 2;
        stack[top] = If(stack[top], stack[top + 1], stack[top + 2]);
        continue;
      case Opcode::kCall3:
        top -= 2;
        stack[top] = instruction->call3(stack[top], stack[top + 1], stack[top + 2]);
        continue;
    }
  }
}

}  // namespace

ExpressionCheck CheckExpression(
    absl::string_view text,
    const absl::flat_hash_map<std::string, ValueType>& symbols) {
  ExpressionCheck check;
  if (!PreScan(text, &check)) return check;
  if (text.find_first_not_of(" \t\r\n") == absl::string_view::npos) {
    check.error = "expression is empty";
    return check;
  }
  TypeCheckContext context;
  context.symbols = &symbols;
  tl_type_context = &context;
  double result = kErrorType;
  try {
    std::unique_ptr<mu::Parser> parser = NewParser(kTypeOperators);
    parser->SetVarFactory(CollectName, nullptr);
    parser->SetExpr(std::string(text));
    int results = 0;
    result = parser->Eval(results)[results - 1];
    for (const auto& [name, unused] : parser->GetUsedVar()) {
      check.used_names.push_back(name);
    }
    if (results != 1) {
      check.error = absl::StrCat("',' outside a function call gives ", results,
                                 " values; a rule must give one");
      check.error_offset = static_cast<int>(text.find(','));
    }
  } catch (mu::Parser::exception_type& e) {
    check.error = WithoutPosition(e.GetMsg());
    check.error_offset = e.GetPos() >= 0 && e.GetPos() <= static_cast<int>(text.size())
                             ? e.GetPos()
                             : -1;
  }
  tl_type_context = nullptr;
  if (!check.error.empty()) return check;
  if (!context.unknown_names.empty()) {
    const std::string& name = context.unknown_names.front();
    check.error = absl::StrCat("unknown name '", name,
                               "': not a declared fact, derived value or rule");
    check.error_offset = static_cast<int>(text.find(name));
    return check;
  }
  if (!context.first_error.empty()) {
    check.error = context.first_error;
    return check;
  }
  check.type = result == kBoolType   ? ValueType::kBool
               : result == kDateType ? ValueType::kDate
               : result == kTextType ? ValueType::kText
                                     : ValueType::kNumber;
  std::sort(check.used_names.begin(), check.used_names.end());
  return check;
}

std::unique_ptr<BoundExpression> BoundExpression::Create(
    absl::string_view text, const absl::flat_hash_map<std::string, int>& slot_of,
    double* slots, const absl::flat_hash_map<std::string, double>& constants) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  const size_t last = text.find_last_not_of(" \t\r\n");
  if (first != absl::string_view::npos) {
    const auto name = slot_of.find(text.substr(first, last - first + 1));
    if (name != slot_of.end()) {
      return std::unique_ptr<BoundExpression>(
          new BoundExpression(nullptr, &slots[name->second]));
    }
  }
  std::unique_ptr<mu::Parser> parser = NewParser(kEvaluationOperators);
  for (const auto& [name, slot] : slot_of) {
    parser->DefineVar(name, &slots[slot]);
  }
  for (const auto& [name, value] : constants) {
    parser->DefineConst(name, value);
  }
  parser->SetExpr(std::string(text));
  // muparser parses lazily, on the first Eval: do it now, not on a request.
  try {
    parser->Eval();
  } catch (mu::Parser::exception_type&) {
    return nullptr;  // not checked by CheckExpression, or names not bound
  }
  std::unique_ptr<BoundExpression> bound(new BoundExpression(std::move(parser), nullptr));
  if (ReadBytecode(bound->parser_->GetByteCode(), &bound->program_)) {
    bound->stack_.resize(bound->parser_->GetByteCode().GetMaxStackSize() + 1);
  } else {
    bound->program_.clear();
  }
  return bound;
}

BoundExpression::BoundExpression(std::unique_ptr<mu::Parser> parser,
                                 const double* direct)
    : parser_(std::move(parser)), direct_(direct) {}

BoundExpression::~BoundExpression() = default;

double BoundExpression::Evaluate(bool* not_finite) const {
  if (direct_ != nullptr) {
    *not_finite = false;
    return *direct_;
  }
  if (program_.empty()) return EvaluateByMuparser(not_finite);
  tl_not_finite = false;
  const double value = Run(program_.data(), stack_.data());
  *not_finite = tl_not_finite;
  return value;
}

double BoundExpression::EvaluateByMuparser(bool* not_finite) const {
  if (direct_ != nullptr) {
    *not_finite = false;
    return *direct_;
  }
  tl_not_finite = false;
  double value;
  try {
    value = parser_->Eval();
  } catch (mu::Parser::exception_type&) {
    // Not expected after CheckExpression; never let it become an answer.
    tl_not_finite = true;
    value = kUnknown;
  }
  *not_finite = tl_not_finite;
  return value;
}

}  // namespace trialrules
