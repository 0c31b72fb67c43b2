#include "service/catalog/reload.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>
#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/catalog/sites.h"
#include "service/util/file.h"
#include "service/util/sha256.h"

namespace trialrules {
namespace {

namespace fs = std::filesystem;

FileLoad LoadFile(const std::string& path) {
  FileLoad load{path, {}};
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  if (!bytes.ok()) {
    load.result.problems.push_back(
        {load.path, 0, 0, "", std::string(bytes.status().message())});
    return load;
  }
  load.result = LoadRuleSet(*bytes, load.path);
  return load;
}

// The site-activation files of `dir`; a refused file keeps what it gave.
std::vector<ProtocolSites> ReloadSites(const std::string& dir, const Catalog* previous,
                                       std::vector<Problem>* refused) {
  std::vector<ProtocolSites> sites;
  std::set<std::string> protocols;
  std::error_code error;
  std::vector<std::string> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(".") && absl::EndsWith(name, kSiteFileExtension)) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  for (const std::string& path : files) {
    const absl::StatusOr<std::string> text = ReadFileBytes(path);
    std::vector<Problem> problems;
    absl::StatusOr<ProtocolSites> loaded =
        text.ok() ? LoadSiteActivations(*text, path, &problems)
                  : absl::StatusOr<ProtocolSites>(text.status());
    if (!text.ok()) problems.push_back({path, 0, 0, "", "cannot read the file"});
    if (loaded.ok() && !protocols.insert(loaded->protocol_id).second) {
      problems.push_back({path, 0, 0, "",
                          absl::StrCat("a second site-activation file for protocol ",
                                       loaded->protocol_id, "; this file is refused")});
      loaded = absl::InvalidArgumentError("duplicate");
    }
    if (loaded.ok()) {
      sites.push_back(*std::move(loaded));
      continue;
    }
    refused->insert(refused->end(), problems.begin(), problems.end());
    if (previous == nullptr) continue;
    for (const ProtocolSites& before : previous->sites()) {
      if (before.file_name == path && protocols.insert(before.protocol_id).second) {
        sites.push_back(before);
      }
    }
  }
  return sites;
}

// What the reload needs to know of a loaded file, the same way for rule
// sets and decision-table sets.
const std::string& FileName(const RuleSet& rule_set) { return rule_set.definition().file_name; }
const std::string& FileName(const DecisionTableSet& tables) { return tables.header().file_name; }
std::string Subject(const RuleSet& rule_set) {
  return absl::StrCat("protocol ", rule_set.protocol_id(), " version ", rule_set.version());
}
std::string Subject(const DecisionTableSet& tables) {
  return absl::StrCat("decision table ", tables.table_id(), " version ", tables.version());
}
std::string Key(const RuleSet& rule_set) {
  return absl::StrCat(rule_set.protocol_id(), "\n", rule_set.version());
}
std::string Key(const DecisionTableSet& tables) {
  return absl::StrCat(tables.table_id(), "\n", tables.version());
}
// "NCT04094766 version 3.0 from FILE"; tables with the word "table".
std::string Describe(const RuleSet& rule_set) {
  return absl::StrCat(rule_set.protocol_id(), " version ", rule_set.version(), " from ",
                      FileName(rule_set));
}
std::string Describe(const DecisionTableSet& tables) {
  return absl::StrCat("table ", tables.table_id(), " version ", tables.version(), " from ",
                      FileName(tables));
}

struct Loaded {
  std::shared_ptr<const RuleSet> rule_set;
  std::shared_ptr<const DecisionTableSet> tables;
  std::vector<Problem> problems;
};
template <typename T>
std::shared_ptr<const T> LoadedOf(Loaded&& loaded);
template <>
std::shared_ptr<const RuleSet> LoadedOf(Loaded&& loaded) { return std::move(loaded.rule_set); }
template <>
std::shared_ptr<const DecisionTableSet> LoadedOf(Loaded&& loaded) {
  return std::move(loaded.tables);
}

Loaded LoadBytes(absl::string_view bytes, const std::string& path, KeepGoing keep_going) {
  if (absl::EndsWith(path, kTableFileExtension)) {
    TableLoadResult result = LoadDecisionTables(bytes, path, keep_going);
    return {nullptr, std::move(result.tables), std::move(result.problems)};
  }
  LoadResult result = LoadRuleSet(bytes, path, keep_going);
  return {std::move(result.rule_set), nullptr, std::move(result.problems)};
}

// Merges a new read of `files` (rule files, or decision-table files) with
// what `previous` had, as ReloadCatalog describes; returns what the new
// catalog holds and notes what changed in `reload`.
template <typename T>
std::vector<std::shared_ptr<const T>> ReloadFiles(
    const std::vector<std::string>& files,
    const std::vector<std::shared_ptr<const T>>* previous, ReloadMemory* memory,
    const ReloadOptions& options, std::vector<Problem>* refused, CatalogReload* reload) {
  // What the previous catalog had, by file and by id/version.
  std::map<std::string, std::shared_ptr<const T>> previous_by_file;
  std::map<std::string, std::shared_ptr<const T>> previous_by_key;
  if (previous != nullptr) {
    for (const auto& item : *previous) {
      previous_by_file[FileName(*item)] = item;
      previous_by_key[Key(*item)] = item;
    }
  }

  struct Candidate {
    std::string path;
    std::string bytes;
    std::string sha256;
    bool readable = false;
  };
  std::vector<Candidate> candidates;
  for (const std::string& path : files) {
    Candidate candidate{path, "", "", false};
    if (absl::StatusOr<std::string> bytes = ReadFileBytes(path); bytes.ok()) {
      candidate.readable = true;
      candidate.bytes = *std::move(bytes);
      candidate.sha256 = Sha256Hex(candidate.bytes);
    }
    candidates.push_back(std::move(candidate));
  }

  std::vector<std::shared_ptr<const T>> kept;
  std::map<std::string, std::string> claimed;  // key → file
  auto claim = [&](const std::shared_ptr<const T>& item) {
    claimed[Key(*item)] = FileName(*item);
    kept.push_back(item);
  };
  // Unchanged files first: what serves keeps serving, whatever newcomers say.
  std::vector<const Candidate*> changed_files;
  for (const Candidate& candidate : candidates) {
    const auto before = previous_by_file.find(candidate.path);
    if (candidate.readable && before != previous_by_file.end() &&
        before->second->sha256() == candidate.sha256) {
      claim(before->second);
    } else {
      changed_files.push_back(&candidate);
    }
  }
  for (const Candidate* candidate : changed_files) {
    const auto before = previous_by_file.find(candidate->path);
    auto keep_previous = [&] {
      if (before != previous_by_file.end() && !claimed.count(Key(*before->second))) {
        claim(before->second);
      }
    };
    if (!candidate->readable) {
      refused->push_back({candidate->path, 0, 0, "", "cannot read the file"});
      keep_previous();
      continue;
    }
    if (memory != nullptr) {
      const auto known = memory->refused.find(candidate->path);
      if (known != memory->refused.end() && known->second.sha256 == candidate->sha256) {
        refused->insert(refused->end(), known->second.problems.begin(),
                        known->second.problems.end());
        keep_previous();
        continue;
      }
      memory->refused.erase(candidate->path);
    }
    if (memory != nullptr && previous != nullptr && options.settle > absl::ZeroDuration()) {
      const auto [seen, first] = memory->unsettled.try_emplace(
          candidate->path, ReloadMemory::Unsettled{candidate->sha256, options.now});
      if (!first && seen->second.sha256 != candidate->sha256) {
        seen->second = {candidate->sha256, options.now};
      }
      if (options.now - seen->second.first_read < options.settle) {
        reload->unsettled.push_back(candidate->path);
        keep_previous();
        continue;
      }
      memory->unsettled.erase(candidate->path);
    }
    Loaded result = LoadBytes(candidate->bytes, candidate->path, options.keep_going);
    std::shared_ptr<const T> item = LoadedOf<T>(std::move(result));
    if (item == nullptr) {
      if (memory != nullptr) {
        memory->refused[candidate->path] = {candidate->sha256, result.problems};
      }
      refused->insert(refused->end(), result.problems.begin(), result.problems.end());
      keep_previous();
      continue;
    }
    const auto same_version = previous_by_key.find(Key(*item));
    const bool replaces_unserved = same_version != previous_by_key.end() &&
                                   !same_version->second->served() &&
                                   FileName(*same_version->second) == candidate->path;
    if (replaces_unserved && same_version->second->sha256() != item->sha256()) {
      reload->replaced.push_back(Describe(*same_version->second));
    } else if (same_version != previous_by_key.end() &&
               same_version->second->sha256() != item->sha256()) {
      refused->push_back(
          {candidate->path, 0, 0, "",
           absl::StrCat(Subject(*item), " is already loaded from ",
                        FileName(*same_version->second),
                        " with other content; a loaded version never changes: give the "
                        "change a new version")});
      keep_previous();
      continue;
    }
    if (const auto other = claimed.find(Key(*item)); other != claimed.end()) {
      refused->push_back({candidate->path, 0, 0, "",
                          absl::StrCat(Subject(*item), " is already loaded from ",
                                       other->second, "; this file is refused")});
      keep_previous();
      continue;
    }
    claim(item);
    reload->loaded.push_back({candidate->path, item->sha256(), candidate->bytes,
                              std::is_same_v<T, DecisionTableSet>});
  }

  std::set<const T*> now;
  for (const auto& item : kept) now.insert(item.get());
  std::set<const T*> before;
  if (previous != nullptr) {
    for (const auto& item : *previous) {
      before.insert(item.get());
      if (!now.count(item.get()) &&
          std::find(reload->replaced.begin(), reload->replaced.end(), Describe(*item)) ==
              reload->replaced.end()) {
        reload->retired.push_back(Describe(*item));
      }
    }
  }
  for (const auto& item : kept) {
    if (!before.count(item.get())) reload->added.push_back(Describe(*item));
  }
  return kept;
}

}  // namespace

void CheckTableReferences(const std::vector<std::shared_ptr<const RuleSet>>& rule_sets,
                          const std::vector<std::shared_ptr<const DecisionTableSet>>& tables,
                          std::vector<Problem>* problems) {
  std::set<std::string> loaded;
  for (const auto& table : tables) loaded.insert(Key(*table));
  for (const auto& rule_set : rule_sets) {
    for (const auto& [id, version] : rule_set->definition().decision_tables) {
      if (loaded.count(absl::StrCat(id, "\n", version))) continue;
      problems->push_back(
          {FileName(*rule_set), 0, 0, "",
           absl::StrCat(Subject(*rule_set), " uses decision table ", id, " version ", version,
                        ", which is not loaded: its grading is unavailable until it is")});
    }
  }
}

namespace {

// Expands `paths` into the files of one kind: rule files, or decision-table
// files (a path naming a file of the other kind is left out).
std::vector<std::string> ListFiles(absl::Span<const std::string> paths, bool tables,
                                   std::vector<Problem>* problems) {
  auto of_kind = [&](const std::string& name) {
    return absl::EndsWith(name, kTableFileExtension) == tables;
  };
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code error;
    if (!fs::is_directory(path, error)) {
      if (of_kind(path)) files.push_back(path);
      continue;
    }
    std::vector<std::string> in_directory;
    for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with(".") || !absl::EndsWith(name, kRuleFileExtension) ||
          absl::EndsWith(name, kSiteFileExtension) || !of_kind(name)) {
        continue;
      }
      // A symlink counts even when dangling (its target being replaced, as
      // in a ConfigMap volume): reading it then fails, and a failed read
      // keeps the version the file gave, where a missing file would retire it.
      std::error_code type_error;
      if (entry.is_regular_file(type_error) || entry.is_symlink(type_error)) {
        in_directory.push_back(entry.path().string());
      }
    }
    if (error && problems != nullptr) {
      problems->push_back(
          {path, 0, 0, "", absl::StrCat("cannot list the directory: ", error.message())});
    }
    std::sort(in_directory.begin(), in_directory.end());
    files.insert(files.end(), in_directory.begin(), in_directory.end());
  }
  return files;
}

}  // namespace

std::vector<std::string> ListRuleFiles(absl::Span<const std::string> paths,
                                       std::vector<Problem>* problems) {
  return ListFiles(paths, false, problems);
}

std::vector<std::string> ListTableFiles(absl::Span<const std::string> paths) {
  return ListFiles(paths, true, nullptr);
}

std::vector<TableFileLoad> LoadTableFiles(absl::Span<const std::string> paths) {
  std::vector<TableFileLoad> loads;
  for (const std::string& path : ListTableFiles(paths)) {
    TableFileLoad load{path, {}};
    absl::StatusOr<std::string> bytes = ReadFileBytes(path);
    if (!bytes.ok()) {
      load.result.problems.push_back({path, 0, 0, "", std::string(bytes.status().message())});
    } else {
      load.result = LoadDecisionTables(*bytes, path);
    }
    loads.push_back(std::move(load));
  }
  return loads;
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

CatalogReload ReloadCatalog(const std::string& dir, const Catalog* previous,
                            ReloadMemory* memory, const ReloadOptions& options) {
  CatalogReload reload;
  std::vector<Problem> refused;
  const std::vector<std::string> files = ListRuleFiles({dir}, &refused);
  const std::vector<std::string> table_files = ListTableFiles({dir});
  std::vector<std::shared_ptr<const RuleSet>> kept = ReloadFiles<RuleSet>(
      files, previous != nullptr ? &previous->rule_sets() : nullptr, memory, options, &refused,
      &reload);
  std::vector<std::shared_ptr<const DecisionTableSet>> tables = ReloadFiles<DecisionTableSet>(
      table_files, previous != nullptr ? &previous->tables() : nullptr, memory, options,
      &refused, &reload);
  if (memory != nullptr) {
    // Forget what no longer stands in the directory.
    std::set<std::string> present(files.begin(), files.end());
    present.insert(table_files.begin(), table_files.end());
    auto gone = [&](const auto& entry) { return !present.count(entry.first); };
    std::erase_if(memory->unsettled, gone);
    std::erase_if(memory->refused, gone);
  }
  CheckTableReferences(kept, tables, &reload.missing_tables);

  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
    return std::tie(a->protocol_id(), a->definition().effective_from, a->version()) <
           std::tie(b->protocol_id(), b->definition().effective_from, b->version());
  });
  std::vector<ProtocolSites> sites = ReloadSites(dir, previous, &refused);
  std::vector<std::string> sites_sha, previous_sites_sha;
  for (const ProtocolSites& protocol : sites) sites_sha.push_back(protocol.sha256);
  if (previous != nullptr) {
    for (const ProtocolSites& protocol : previous->sites()) {
      previous_sites_sha.push_back(protocol.sha256);
    }
  }
  std::vector<std::string> refused_text;
  for (const Problem& problem : refused) refused_text.push_back(problem.ToString());
  std::vector<std::string> previous_refused_text;
  if (previous != nullptr) {
    for (const Problem& problem : previous->refused()) {
      previous_refused_text.push_back(problem.ToString());
    }
  }
  reload.changed = previous == nullptr || !reload.added.empty() || !reload.replaced.empty() ||
                   !reload.retired.empty() || refused_text != previous_refused_text ||
                   sites_sha != previous_sites_sha;
  // Build cannot fail: every protocol/version was claimed once.
  reload.catalog = std::make_shared<const Catalog>(*Catalog::Build(
      std::move(kept), std::move(refused), std::move(sites), std::move(tables)));
  return reload;
}

}  // namespace trialrules
