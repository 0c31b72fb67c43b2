#include "service/engine/problem.h"

#include "absl/strings/str_cat.h"
#include "service/util/utf8.h"

namespace trialrules {

std::string Problem::ToString() const {
  std::string out = absl::StrCat(file, ":", line, ":", column, ": ");
  if (!rule_id.empty()) absl::StrAppend(&out, "rule ", rule_id, ": ");
  absl::StrAppend(&out, message);
  return out;
}

void ProblemCollector::AddError(int line, google::protobuf::io::ColumnNumber column,
                                const std::string& message) {
  // protobuf quotes a bad character byte by byte: keep the message UTF-8.
  problems_->push_back({file_, line + 1, column + 1, "", ToValidUtf8(message)});
}

}  // namespace trialrules
