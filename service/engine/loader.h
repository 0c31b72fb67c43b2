// The loader: rule-file text → a checked, compiled, self-tested RuleSet.
// Every problem is returned as data with its position, never thrown.
#ifndef TRIALRULES_SERVICE_ENGINE_LOADER_H_
#define TRIALRULES_SERVICE_ENGINE_LOADER_H_

#include <google/protobuf/io/tokenizer.h>

#include <memory>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "service/engine/rule_set.h"

#include "service/util/utf8.h"

namespace trialrules {

// One thing wrong with a rule file. Lines and columns count from 1; 0 means
// the whole file.
struct Problem {
  std::string file;
  int line = 0;
  int column = 0;
  std::string rule_id;  // the rule (or fact, test case) concerned; may be empty
  std::string message;

  // "file:line:col: rule ID: message" (the rule part only when known).
  std::string ToString() const;
};

// Collects protobuf text-format parse errors as Problems of `file`.
class ProblemCollector : public google::protobuf::io::ErrorCollector {
 public:
  ProblemCollector(std::string file, std::vector<Problem>* problems)
      : file_(std::move(file)), problems_(problems) {}
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    // protobuf quotes a bad character byte by byte: keep the message UTF-8.
    problems_->push_back({file_, line + 1, column + 1, "", ToValidUtf8(message)});
  }

 private:
  std::string file_;
  std::vector<Problem>* problems_;
};

struct TestCaseResult {
  std::string name;
  bool passed = false;
};

struct LoadResult {
  // Null when there is any problem: a file is loaded whole or not at all.
  std::shared_ptr<const RuleSet> rule_set;
  std::vector<Problem> problems;
  std::vector<TestCaseResult> tests;  // empty unless the file compiled
};

// Parses, checks, compiles and runs the file's own test cases. `file_name`
// is used in problems and kept in the rule set.
LoadResult LoadRuleSet(absl::string_view text, absl::string_view file_name);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_LOADER_H_
