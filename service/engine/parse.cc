#include "service/engine/parse.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "service/util/sha256.h"
#include "service/util/utf8.h"

namespace trialrules {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::TextFormat;

const FieldDescriptor* FieldNamed(const Message& message, absl::string_view name) {
  return message.GetDescriptor()->FindFieldByName(std::string(name));
}

// Reports the first string field, in file order, that is not valid UTF-8:
// protobuf's text parser takes any bytes in a string, and a rule set's
// strings go into answers that must parse on the caller's side.
bool AllStringsUtf8(const Message& message, const ParseTree* tree, const std::string& path,
                    const std::string& file, std::vector<Problem>* problems) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      const int index = field->is_repeated() ? i : -1;
      const std::string name = absl::StrCat(
          path, field->name(), field->is_repeated() ? absl::StrCat("[", i, "]") : "");
      if (field->type() == FieldDescriptor::TYPE_STRING) {
        const std::string value = field->is_repeated()
                                      ? reflection->GetRepeatedString(message, field, i)
                                      : reflection->GetString(message, field);
        if (IsValidUtf8(value)) continue;
        const auto location = tree != nullptr ? tree->GetLocation(field, index)
                                              : TextFormat::ParseLocation();
        problems->push_back({file, location.line + 1, location.column + 1, "",
                             absl::StrCat(name, " is not valid UTF-8")});
        return false;
      }
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const Message& nested = field->is_repeated()
                                    ? reflection->GetRepeatedMessage(message, field, i)
                                    : reflection->GetMessage(message, field);
        const ParseTree* nested_tree =
            tree != nullptr ? tree->GetTreeForNested(field, index) : nullptr;
        if (!AllStringsUtf8(nested, nested_tree, name + ".", file, problems)) return false;
      }
    }
  }
  return true;
}

}  // namespace

SourcePosition ParsedText::Of(const ParseTree* tree, const Message& message,
                                  absl::string_view field, int index) {
  const FieldDescriptor* descriptor = FieldNamed(message, field);
  if (tree == nullptr || descriptor == nullptr) return {0, 0};
  // protobuf aborts on an index out of range: clamp it.
  if (descriptor->is_repeated()) {
    const int size = message.GetReflection()->FieldSize(message, descriptor);
    if (size == 0) return {0, 0};
    index = std::clamp(index, 0, size - 1);
  } else {
    index = -1;
  }
  const auto location = tree->GetLocation(descriptor, index);
  if (location.line < 0) return {0, 0};
  return {location.line + 1, location.column + 1};
}

const ParseTree* ParsedText::Nested(const ParseTree* tree, const Message& message,
                                        absl::string_view field, int index) {
  const FieldDescriptor* descriptor = FieldNamed(message, field);
  if (tree == nullptr || descriptor == nullptr || !descriptor->is_repeated() || index < 0 ||
      index >= message.GetReflection()->FieldSize(message, descriptor)) {
    return nullptr;
  }
  return tree->GetTreeForNested(descriptor, index);
}

SourcePosition ParsedText::InString(SourcePosition field_position, int offset) const {
  if (field_position.first <= 0 || offset < 0) return field_position;
  size_t at = line_starts[field_position.first - 1] + field_position.second - 1;
  while (at < text.size() && text[at] != '"' && text[at] != '\'' && text[at] != '\n') {
    ++at;
  }
  if (at >= text.size() || text[at] == '\n') return field_position;
  const char quote = text[at];
  const size_t start = at + 1;
  for (size_t i = start; i < start + offset; ++i) {
    if (i >= text.size() || text[i] == '\\' || text[i] == quote || text[i] == '\n') {
      return field_position;
    }
  }
  const size_t target = start + offset;
  const auto line_it = std::upper_bound(line_starts.begin(), line_starts.end(), target) - 1;
  return {static_cast<int>(line_it - line_starts.begin()) + 1,
          static_cast<int>(target - *line_it) + 1};
}

namespace {

// Parses `text` into `parsed->file`; false with `problems` when it is not
// a `what`.
template <typename Parsed>
bool ParseInto(absl::string_view text, absl::string_view file_name, absl::string_view what,
               Parsed* parsed, std::vector<Problem>* problems) {
  if (text.size() > kMaxRuleFileBytes) {
    problems->push_back({std::string(file_name), 0, 0, "",
                         absl::StrCat("the file is ", text.size(), " bytes; the limit is ",
                                      kMaxRuleFileBytes)});
    return false;
  }
  parsed->file_name = std::string(file_name);
  parsed->text = std::string(text);
  ProblemCollector errors(parsed->file_name, problems);
  TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.WriteLocationsTo(&parsed->tree);
  const size_t before = problems->size();
  if (!parser.ParseFromString(parsed->text, &parsed->file)) {
    if (problems->size() == before) {
      problems->push_back({parsed->file_name, 0, 0, "", absl::StrCat("not a valid ", what)});
    }
    return false;
  }
  if (!AllStringsUtf8(parsed->file, &parsed->tree, "", parsed->file_name, problems)) {
    return false;
  }
  parsed->sha256 = Sha256Hex(text);
  parsed->line_starts.push_back(0);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') parsed->line_starts.push_back(i + 1);
  }
  return true;
}

}  // namespace

std::unique_ptr<ParsedRuleFile> ParseRuleFile(absl::string_view text,
                                              absl::string_view file_name,
                                              std::vector<Problem>* problems) {
  auto parsed = std::make_unique<ParsedRuleFile>();
  if (!ParseInto(text, file_name, "rule file", parsed.get(), problems)) return nullptr;
  return parsed;
}

std::unique_ptr<ParsedTableFile> ParseTableFile(absl::string_view text,
                                                absl::string_view file_name,
                                                std::vector<Problem>* problems) {
  auto parsed = std::make_unique<ParsedTableFile>();
  if (!ParseInto(text, file_name, "decision-table file", parsed.get(), problems)) {
    return nullptr;
  }
  return parsed;
}

}  // namespace trialrules
