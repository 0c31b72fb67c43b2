// The muparser adapter: the only code in trialrules that includes muParser.h.
//
// Rule expressions are muparser syntax, but evaluated with our own operators
// so that muparser's traps (docs/rule-files.md) cannot reach a clinical answer:
//  - unknown (missing) values are NaN, and every operator is three-valued:
//    `&&`, `||`, `!` follow Kleene's logic, comparisons of an unknown are
//    unknown (never false), and `if(c, a, b)` with an unknown `c` is unknown
//    unless both branches agree;
//  - a computation on finite operands that is not finite (division by zero,
//    overflow, a function outside its domain) is reported, never folded into
//    a true/false answer;
//  - `=` (assignment), `?:` (not three-valued), `,` (several results) and
//    string literals are refused when the expression is checked;
//  - types are checked at load: a true/false value used as a number, a
//    number used as a condition, a date mixed with a number, or a text value
//    (a word, held as its code) used other than with `==` / `!=` is an error.
#ifndef TRIALRULES_SERVICE_ENGINE_EXPRESSION_H_
#define TRIALRULES_SERVICE_ENGINE_EXPRESSION_H_

#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "service/engine/vocabulary.h"

namespace mu {
class Parser;
}

namespace trialrules {

// The functions an expression may call; no fact, derived value or rule may
// take one of these names.
inline constexpr absl::string_view kFunctionNames[] = {
    "if", "abs", "sqrt", "exp", "ln", "log10", "floor", "ceil", "min", "max",
    "beta_cdf", "binom_cdf"};

// The longest expression accepted: muparser's compile time grows with the
// square of the length, and no criterion needs more.
inline constexpr size_t kMaxExpressionLength = 2000;
// The deepest nesting of parentheses accepted: muparser parses and
// evaluates with recursion and stacks that grow with it, and no criterion
// nests deeper than a few levels.
inline constexpr int kMaxNestingDepth = 32;

// The outcome of checking an expression. On success `error` is empty.
struct ExpressionCheck {
  std::string error;      // what is wrong, for the rule author
  int error_offset = -1;  // 0-based offset in the expression text, or -1
  ValueType type = ValueType::kNumber;
  std::vector<std::string> used_names;  // sorted, unique
};

// Parses `text` and checks its names against `symbols` and its operand
// types. Never throws.
ExpressionCheck CheckExpression(
    absl::string_view text,
    const absl::flat_hash_map<std::string, ValueType>& symbols);

// An expression compiled against value slots (doubles, NaN = unknown).
// Thread-compatible: a BoundExpression must not be evaluated by two threads
// at once (muparser writes its stack while evaluating); each thread uses its
// own, bound to its own slots.
class BoundExpression {
 public:
  // `text` must have passed CheckExpression. `slot_of` gives each used name
  // its index into `slots`, which must outlive this object; `constants`
  // gives the others their value (the words of TEXT facts).
  static std::unique_ptr<BoundExpression> Create(
      absl::string_view text,
      const absl::flat_hash_map<std::string, int>& slot_of, double* slots,
      const absl::flat_hash_map<std::string, double>& constants = {});
  ~BoundExpression();
  BoundExpression(const BoundExpression&) = delete;
  BoundExpression& operator=(const BoundExpression&) = delete;

  // Evaluates over the current slot values. Returns NaN when the value is
  // unknown; sets *not_finite when a computation on known operands had no
  // finite value.
  double Evaluate(bool* not_finite) const;
  // The same through muparser's own interpreter, which Evaluate() replaces
  // by a reading of muparser's bytecode (tests compare the two).
  double EvaluateByMuparser(bool* not_finite) const;

  // Whether Evaluate() runs its own reading of the bytecode (false: a single
  // name read directly, or muparser's interpreter).
  bool RunsOwnProgram() const { return !program_.empty(); }

  // One step of the program Evaluate() runs (expression.cc).
  struct Instruction;

 private:
  BoundExpression(std::unique_ptr<mu::Parser> parser, const double* direct);
  std::unique_ptr<mu::Parser> parser_;
  // An expression that is a single name reads its slot directly: many
  // criteria are one fact, and the interpreter would only copy it.
  const double* direct_ = nullptr;
  // muparser's bytecode with our operators recognised, so that each runs
  // inline instead of through a function pointer per operator; empty when
  // the bytecode holds anything else (then muparser evaluates).
  std::vector<Instruction> program_;
  mutable std::vector<double> stack_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_EXPRESSION_H_
