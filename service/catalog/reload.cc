#include "service/catalog/reload.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

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

std::string Describe(const RuleSet& rule_set) {
  return absl::StrCat(rule_set.protocol_id(), " version ", rule_set.version(), " from ",
                      rule_set.definition().file_name);
}

std::string Key(const RuleSet& rule_set) {
  return absl::StrCat(rule_set.protocol_id(), "\n", rule_set.version());
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
      if (name.starts_with(".") || !absl::EndsWith(name, kRuleFileExtension) ||
          absl::EndsWith(name, kSiteFileExtension)) {
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

CatalogReload ReloadCatalog(const std::string& dir, const Catalog* previous,
                            ReloadMemory* memory, const ReloadOptions& options) {
  CatalogReload reload;
  std::vector<Problem> refused;
  const std::vector<std::string> files = ListRuleFiles({dir}, &refused);

  // What the previous catalog had, by file and by protocol/version.
  std::map<std::string, std::shared_ptr<const RuleSet>> previous_by_file;
  std::map<std::string, std::shared_ptr<const RuleSet>> previous_by_key;
  if (previous != nullptr) {
    for (const auto& rule_set : previous->rule_sets()) {
      previous_by_file[rule_set->definition().file_name] = rule_set;
      previous_by_key[Key(*rule_set)] = rule_set;
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

  std::vector<std::shared_ptr<const RuleSet>> kept;
  std::map<std::string, std::string> claimed;  // key → file
  auto claim = [&](const std::shared_ptr<const RuleSet>& rule_set) {
    claimed[Key(*rule_set)] = rule_set->definition().file_name;
    kept.push_back(rule_set);
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
      refused.push_back({candidate->path, 0, 0, "", "cannot read the file"});
      keep_previous();
      continue;
    }
    if (memory != nullptr) {
      const auto known = memory->refused.find(candidate->path);
      if (known != memory->refused.end() && known->second.sha256 == candidate->sha256) {
        refused.insert(refused.end(), known->second.problems.begin(),
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
        reload.unsettled.push_back(candidate->path);
        keep_previous();
        continue;
      }
      memory->unsettled.erase(candidate->path);
    }
    LoadResult result = LoadRuleSet(candidate->bytes, candidate->path);
    if (result.rule_set == nullptr) {
      if (memory != nullptr) {
        memory->refused[candidate->path] = {candidate->sha256, result.problems};
      }
      refused.insert(refused.end(), result.problems.begin(), result.problems.end());
      keep_previous();
      continue;
    }
    const RuleSet& loaded = *result.rule_set;
    const auto same_version = previous_by_key.find(Key(loaded));
    const bool replaces_unserved =
        same_version != previous_by_key.end() && !same_version->second->served() &&
        same_version->second->definition().file_name == candidate->path;
    if (replaces_unserved && same_version->second->sha256() != loaded.sha256()) {
      reload.replaced.push_back(Describe(*same_version->second));
    } else if (same_version != previous_by_key.end() &&
               same_version->second->sha256() != loaded.sha256()) {
      refused.push_back(
          {candidate->path, 0, 0, "",
           absl::StrCat("protocol ", loaded.protocol_id(), " version ", loaded.version(),
                        " is already loaded from ",
                        same_version->second->definition().file_name,
                        " with other content; a loaded version never changes: give the "
                        "change a new version")});
      keep_previous();
      continue;
    }
    if (const auto other = claimed.find(Key(loaded)); other != claimed.end()) {
      refused.push_back({candidate->path, 0, 0, "",
                         absl::StrCat("protocol ", loaded.protocol_id(), " version ",
                                      loaded.version(), " is already loaded from ",
                                      other->second, "; this file is refused")});
      keep_previous();
      continue;
    }
    claim(result.rule_set);
  }
  if (memory != nullptr) {
    // Forget what no longer stands in the directory.
    const std::set<std::string> present(files.begin(), files.end());
    auto gone = [&](const auto& entry) { return !present.count(entry.first); };
    std::erase_if(memory->unsettled, gone);
    std::erase_if(memory->refused, gone);
  }

  std::set<const RuleSet*> now;
  for (const auto& rule_set : kept) now.insert(rule_set.get());
  std::set<const RuleSet*> before;
  if (previous != nullptr) {
    for (const auto& rule_set : previous->rule_sets()) {
      before.insert(rule_set.get());
      if (!now.count(rule_set.get()) &&
          std::find(reload.replaced.begin(), reload.replaced.end(), Describe(*rule_set)) ==
              reload.replaced.end()) {
        reload.retired.push_back(Describe(*rule_set));
      }
    }
  }
  for (const auto& rule_set : kept) {
    if (!before.count(rule_set.get())) reload.added.push_back(Describe(*rule_set));
  }
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
  reload.catalog = std::make_shared<const Catalog>(
      *Catalog::Build(std::move(kept), std::move(refused), std::move(sites)));
  return reload;
}

}  // namespace trialrules
