// Phase 1 of loading a rule file: text → the RuleFile message, with the
// position of every field, every string checked for UTF-8.
#ifndef TRIALRULES_SERVICE_ENGINE_PARSE_H_
#define TRIALRULES_SERVICE_ENGINE_PARSE_H_

#include <google/protobuf/text_format.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "service/engine/problem.h"
#include "trialrules/v1/rule_file.pb.h"

namespace trialrules {

// 1-based line and column; {0, 0} when unknown.
using SourcePosition = std::pair<int, int>;
using ParseTree = google::protobuf::TextFormat::ParseInfoTree;

// A parsed file (a rule file, a decision-table file) and where each of its
// fields was written.
struct ParsedText {
  std::string file_name;
  std::string text;
  std::string sha256;  // hex, of the text
  ParseTree tree;
  std::vector<size_t> line_starts;  // byte offset of each line

  // The position of `field` of `message` (element `index` if repeated);
  // `tree` is the parse tree `message` was read with.
  static SourcePosition Of(const ParseTree* tree, const google::protobuf::Message& message,
                           absl::string_view field, int index = -1);
  // The parse tree of element `index` of repeated message field `field`.
  static const ParseTree* Nested(const ParseTree* tree,
                                 const google::protobuf::Message& message,
                                 absl::string_view field, int index);
  // The position of character `offset` of a string field's value, assuming
  // the value is one quoted literal without escapes before that character
  // (otherwise the field's own position).
  SourcePosition InString(SourcePosition field_position, int offset) const;
};

struct ParsedRuleFile : ParsedText {
  v1::RuleFile file;
};

struct ParsedTableFile : ParsedText {
  v1::DecisionTableFile file;
};

// The largest rule file (or decision-table file) read: a protocol's rules take a few dozen KiB.
inline constexpr size_t kMaxRuleFileBytes = 1 << 20;

// Null with `problems` when the text is not a rule file (or is larger than
// kMaxRuleFileBytes).
std::unique_ptr<ParsedRuleFile> ParseRuleFile(absl::string_view text,
                                              absl::string_view file_name,
                                              std::vector<Problem>* problems);
std::unique_ptr<ParsedTableFile> ParseTableFile(absl::string_view text,
                                                absl::string_view file_name,
                                                std::vector<Problem>* problems);

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_PARSE_H_
