// Rule files for tests: the bundled ones, and small ones written inline.
#ifndef TRIALRULES_TESTS_RULE_FILES_H_
#define TRIALRULES_TESTS_RULE_FILES_H_

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "service/engine/loader.h"

namespace trialrules::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

inline std::string SourcePath(const std::string& relative) {
  return std::string(TRIALRULES_SOURCE_DIR) + "/" + relative;
}

// Loads a bundled rule file, failing the test on any problem.
inline std::shared_ptr<const RuleSet> LoadBundled(const std::string& name) {
  const LoadResult result =
      LoadRuleSet(ReadFile(SourcePath("rules/" + name)), name);
  for (const Problem& problem : result.problems) {
    ADD_FAILURE() << problem.ToString();
  }
  return result.rule_set;
}

// A small rule file around the given rule lines.
inline std::shared_ptr<const RuleSet> LoadInline(const std::string& body) {
  const std::string text =
      "protocol_id: \"T\" version: \"1\" effective_from: \"2020-01-01\"\n" + body;
  const LoadResult result = LoadRuleSet(text, "inline.textproto");
  for (const Problem& problem : result.problems) {
    ADD_FAILURE() << problem.ToString();
  }
  return result.rule_set;
}

}  // namespace trialrules::testing

#endif  // TRIALRULES_TESTS_RULE_FILES_H_
