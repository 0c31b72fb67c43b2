// A problem with a rule file (or another file the service reads), as data
// with its position: rule authors see every problem, never an exception.
#ifndef TRIALRULES_SERVICE_ENGINE_PROBLEM_H_
#define TRIALRULES_SERVICE_ENGINE_PROBLEM_H_

#include <google/protobuf/io/tokenizer.h>

#include <string>
#include <vector>

namespace trialrules {

// One thing wrong with a file. Lines and columns count from 1; 0 means the
// whole file.
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
                const std::string& message) override;

 private:
  std::string file_;
  std::vector<Problem>* problems_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_PROBLEM_H_
