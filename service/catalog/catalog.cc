#include "service/catalog/catalog.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace trialrules {
namespace {

namespace fs = std::filesystem;

FileLoad LoadFile(const fs::path& path) {
  FileLoad load{path.string(), {}};
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    load.result.problems.push_back({load.path, 0, 0, "", "cannot open the file"});
    return load;
  }
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) {
    load.result.problems.push_back({load.path, 0, 0, "", "cannot read the file"});
    return load;
  }
  load.result = LoadRuleSet(bytes.str(), load.path);
  return load;
}

}  // namespace

std::vector<std::string> ListRuleFiles(absl::Span<const std::string> paths,
                                       std::vector<Problem>* problems) {
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code error;
    if (!fs::is_directory(path, error)) {
      files.push_back(path);
      continue;
    }
    std::vector<std::string> in_directory;
    for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with(".") || !absl::EndsWith(name, kRuleFileExtension)) continue;
      std::error_code type_error;
      if (entry.is_regular_file(type_error)) in_directory.push_back(entry.path().string());
    }
    if (error) {
      problems->push_back(
          {path, 0, 0, "", absl::StrCat("cannot list the directory: ", error.message())});
    }
    std::sort(in_directory.begin(), in_directory.end());
    files.insert(files.end(), in_directory.begin(), in_directory.end());
  }
  return files;
}

std::vector<FileLoad> LoadRuleFiles(absl::Span<const std::string> paths) {
  std::vector<FileLoad> loads;
  std::vector<Problem> problems;
  for (const std::string& file : ListRuleFiles(paths, &problems)) {
    loads.push_back(LoadFile(file));
  }
  for (Problem& problem : problems) {
    loads.push_back({problem.file, {}});
    loads.back().result.problems.push_back(std::move(problem));
  }
  return loads;
}

absl::StatusOr<Catalog> Catalog::Build(
    std::vector<std::shared_ptr<const RuleSet>> rule_sets) {
  Catalog catalog;
  for (auto& rule_set : rule_sets) {
    for (const auto& loaded : catalog.rule_sets_) {
      if (loaded->protocol_id() == rule_set->protocol_id() &&
          loaded->version() == rule_set->version()) {
        return absl::AlreadyExistsError(absl::StrCat(
            rule_set->definition().file_name, ": protocol ",
            rule_set->protocol_id(), " version ", rule_set->version(),
            " is already loaded from ", loaded->definition().file_name));
      }
    }
    catalog.rule_sets_.push_back(std::move(rule_set));
  }
  return catalog;
}

absl::StatusOr<std::shared_ptr<const RuleSet>> Catalog::Select(
    absl::string_view protocol_id, absl::string_view version,
    DayNumber as_of) const {
  std::shared_ptr<const RuleSet> in_force;
  bool protocol_known = false;
  for (const auto& rule_set : rule_sets_) {
    if (rule_set->protocol_id() != protocol_id) continue;
    protocol_known = true;
    const RuleSetDefinition& def = rule_set->definition();
    if (!version.empty()) {
      if (def.version == version) return rule_set;
      continue;
    }
    if (def.effective_from > as_of ||
        (def.effective_until && *def.effective_until < as_of)) {
      continue;
    }
    if (in_force == nullptr ||
        def.effective_from > in_force->definition().effective_from) {
      in_force = rule_set;
    }
  }
  if (!protocol_known) {
    return absl::NotFoundError(
        absl::StrCat("protocol_id \"", protocol_id, "\": no such protocol is loaded"));
  }
  if (!version.empty()) {
    return absl::NotFoundError(absl::StrCat("version \"", version,
                                            "\": protocol ", protocol_id,
                                            " has no such version loaded"));
  }
  if (in_force == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("protocol ", protocol_id, ": no version is in force on ",
                     FormatIsoDate(as_of)));
  }
  return in_force;
}

}  // namespace trialrules
