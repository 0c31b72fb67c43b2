// `trialrules audit verify|prove|check-proof` and `trialrules replay`: the
// auditor's tools, offline, needing only the log's files, its public key
// and (for replay) the rule archive.
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/args.h"
#include "client/facts_file.h"
#include "service/audit/canonical_facts.h"
#include "service/audit/checkpoint.h"
#include "service/audit/log_audit.h"
#include "service/audit/log_files.h"
#include "service/engine/compare.h"
#include "service/engine/loader.h"
#include "service/util/file.h"
#include "service/util/sha256.h"
#include "simdjson.h"

namespace trialrules::cli {
namespace {

constexpr char kAuditUsage[] =
    "usage: trialrules audit verify LOG [--checkpoints FILE] --public-key KEY\n"
    "       trialrules audit prove LOG DECISION_ID [--checkpoints FILE]\n"
    "       trialrules audit check-proof PROOF --public-key KEY\n"
    "  LOG          the audit log's live file; its rotated files (LOG.<index>) are read too\n"
    "  --checkpoints the signed checkpoints (default LOG.checkpoints)\n"
    "  --public-key the log's Ed25519 public key: PEM (openssl pkey -pubout) or a\n"
    "               note verifier key (NAME+ID+KEY, as the server prints at start)\n";

constexpr char kReplayUsage[] =
    "usage: trialrules replay --audit LOG --archive DIR --decision DECISION_ID [--facts F.json]\n"
    "  re-evaluates a recorded decision under the archived rule file its record names,\n"
    "  with the facts of the record (--audit-include-facts) or of F.json, whose canonical\n"
    "  digest must equal the record's facts_sha256; exit 0 only if every rule outcome\n"
    "  and the decision are the same\n";

int Fail(absl::string_view message) {
  std::cerr << "error: " << message << "\n";
  return kExitProblems;
}

absl::StatusOr<NoteVerifier> PublicKey(const Args& args) {
  if (args.Get("public-key").empty()) {
    return absl::InvalidArgumentError("--public-key is required");
  }
  return NoteVerifier::FromFile(args.Get("public-key"));
}

int Verify(const Args& args) {
  if (args.positional.size() != 2) {
    std::cerr << kAuditUsage;
    return kExitUsage;
  }
  const std::string& log = args.positional[1];
  absl::StatusOr<NoteVerifier> key = PublicKey(args);
  if (!key.ok()) return Fail(key.status().message());
  absl::StatusOr<LogVerification> result =
      VerifyLog(log, args.Get("checkpoints", log + ".checkpoints"), *key);
  if (!result.ok()) return Fail(result.status().message());
  for (const LogProblem& problem : result->problems) {
    std::cout << (problem.index ? absl::StrCat("record ", *problem.index, ": ") : "")
              << (problem.where.empty() ? "" : problem.where + ": ") << problem.message << "\n";
  }
  std::cout << (result->problems.empty() ? "OK: " : "FAILED: ") << result->records
            << " records in " << result->files << " file(s), " << result->checkpoints
            << " signed checkpoint(s) up to tree size " << result->checkpointed_size;
  if (result->torn_lines > 0) {
    std::cout << ", " << result->torn_lines << " torn line(s) accounted for";
  }
  std::cout << (result->problems.empty() ? "" : absl::StrCat(", ", result->problems.size(),
                                                             " problem(s)"))
            << "\n";
  return result->problems.empty() ? kExitOk : kExitProblems;
}

int Prove(const Args& args) {
  if (args.positional.size() != 3) {
    std::cerr << kAuditUsage;
    return kExitUsage;
  }
  const std::string& log = args.positional[1];
  absl::StatusOr<DecisionProof> proof = ProveDecision(
      log, args.Get("checkpoints", log + ".checkpoints"), args.positional[2]);
  if (!proof.ok()) return Fail(proof.status().message());
  std::cout << proof->Text();
  return kExitOk;
}

int CheckProof(const Args& args) {
  if (args.positional.size() != 2) {
    std::cerr << kAuditUsage;
    return kExitUsage;
  }
  absl::StatusOr<NoteVerifier> key = PublicKey(args);
  if (!key.ok()) return Fail(key.status().message());
  absl::StatusOr<std::string> text = ReadFileBytes(args.positional[1]);
  if (!text.ok()) return Fail(text.status().message());
  absl::StatusOr<DecisionProof> proof = CheckDecisionProof(*text, *key);
  if (!proof.ok()) return Fail(proof.status().message());
  std::cout << proof->line << "\nOK: record " << proof->index
            << " is in the signed tree of size " << proof->tree_size << "\n";
  return kExitOk;
}

// A decision's entry within its record: for a screening batch, the entry of
// the batch's decisions; outcomes by rule id.
struct RecordedDecision {
  std::string method, sha256, as_of_date, site_id, decision, facts_sha256, facts;
  std::vector<std::pair<std::string, std::string>> outcomes;  // rule id, outcome name
};

absl::StatusOr<RecordedDecision> ReadRecordedDecision(absl::string_view record,
                                                      absl::string_view decision_id) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(record.data(), record.size()).get(root)) {
    return absl::DataLossError("the decision's record is not valid JSON");
  }
  const auto text = [](simdjson::dom::element element, const char* key) {
    std::string_view value;
    return element[key].get(value) ? std::string() : std::string(value);
  };
  RecordedDecision recorded;
  recorded.method = text(root, "method");
  recorded.sha256 = text(root, "sha256");
  recorded.as_of_date = text(root, "as_of_date");
  recorded.site_id = text(root, "site_id");
  simdjson::dom::element entry = root;
  simdjson::dom::array batch;
  if (!root["decisions"].get(batch)) {
    bool found = false;
    for (simdjson::dom::element item : batch) {
      if (text(item, "decision_id") == decision_id) {
        entry = item;
        found = true;
        break;
      }
    }
    if (!found) return absl::NotFoundError("the batch record does not list the decision");
    simdjson::dom::array rule_ids;
    const std::string letters = text(entry, "outcomes");
    if (root["rule_ids"].get(rule_ids)) return absl::DataLossError("no rule_ids in the batch");
    size_t i = 0;
    for (simdjson::dom::element id : rule_ids) {
      std::string_view name;
      if (id.get(name) || i >= letters.size()) return absl::DataLossError("bad rule_ids");
      recorded.outcomes.emplace_back(std::string(name), std::string(1, letters[i++]));
    }
  } else {
    simdjson::dom::object rules;
    if (root["rules"].get(rules)) return absl::DataLossError("the record has no rules");
    for (auto [id, outcome] : rules) {
      std::string_view name;
      if (outcome.get(name)) return absl::DataLossError("a rule outcome is not text");
      recorded.outcomes.emplace_back(std::string(id), std::string(name));
    }
  }
  recorded.decision = text(entry, "decision");
  recorded.facts_sha256 = text(entry, "facts_sha256");
  simdjson::dom::element facts;
  if (!entry["facts"].get(facts)) recorded.facts = simdjson::minify(facts);
  return recorded;
}

std::optional<EvaluationKind> KindOfMethod(absl::string_view method) {
  if (method == "CheckEligibility" || method == "ScreenPatients") {
    return EvaluationKind::kEligibility;
  }
  if (method == "CheckWithdrawal") return EvaluationKind::kWithdrawal;
  if (method == "EvaluateEscalation") return EvaluationKind::kEscalation;
  if (method == "EvaluateStopping") return EvaluationKind::kStopping;
  return std::nullopt;
}

}  // namespace

int RunAudit(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(argv, {"checkpoints", "public-key"}, {});
  if (!args.ok() || args->positional.empty()) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kAuditUsage;
    return kExitUsage;
  }
  const std::string& verb = args->positional[0];
  if (verb == "verify") return Verify(*args);
  if (verb == "prove") return Prove(*args);
  if (verb == "check-proof") return CheckProof(*args);
  std::cerr << "unknown audit command \"" << verb << "\"\n" << kAuditUsage;
  return kExitUsage;
}

int RunReplay(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(argv, {"audit", "archive", "decision", "facts"}, {});
  if (!args.ok() || !args->positional.empty() || args->Get("audit").empty() ||
      args->Get("archive").empty() || args->Get("decision").empty()) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kReplayUsage;
    return kExitUsage;
  }
  const std::string decision_id = args->Get("decision");
  absl::StatusOr<std::string> line = FindDecisionRecord(args->Get("audit"), decision_id);
  if (!line.ok()) return Fail(line.status().message());
  absl::StatusOr<LogEnvelope> envelope = ParseLogLine(*line);
  if (!envelope.ok()) return Fail(absl::StrCat("the decision's line: ", envelope.status().message()));
  absl::StatusOr<RecordedDecision> recorded = ReadRecordedDecision(envelope->record, decision_id);
  if (!recorded.ok()) return Fail(recorded.status().message());
  const std::optional<EvaluationKind> kind = KindOfMethod(recorded->method);
  if (!kind) {
    return Fail(absl::StrCat("decision ", decision_id, " was made by ", recorded->method,
                             "; replay re-evaluates CheckEligibility, CheckWithdrawal, "
                             "EvaluateEscalation, EvaluateStopping and ScreenPatients decisions"));
  }

  // The rule file exactly as it was: its bytes must still hash to the name.
  const std::string rule_file =
      absl::StrCat(args->Get("archive"), "/", recorded->sha256, ".textproto");
  absl::StatusOr<std::string> bytes = ReadFileBytes(rule_file);
  if (!bytes.ok()) {
    return Fail(absl::StrCat("the archive has no rule file ", recorded->sha256, " (",
                             bytes.status().message(), ")"));
  }
  if (Sha256Hex(*bytes) != recorded->sha256) {
    return Fail(absl::StrCat(rule_file, " does not hash to its name: the archive was altered"));
  }
  LoadResult loaded = LoadRuleSet(*bytes, rule_file);
  if (loaded.rule_set == nullptr) {
    return Fail(absl::StrCat(rule_file, " no longer loads: ",
                             loaded.problems.empty() ? "" : loaded.problems.front().message));
  }
  const RuleSet& rule_set = *loaded.rule_set;

  std::string facts_json;
  if (!args->Get("facts").empty()) {
    absl::StatusOr<std::string> text = ReadFileBytes(args->Get("facts"));
    if (!text.ok()) return Fail(text.status().message());
    facts_json = *std::move(text);
  } else if (!recorded->facts.empty()) {
    facts_json = absl::StrCat("{\"facts\":", recorded->facts, "}");
  } else {
    return Fail(absl::StrCat("the record of decision ", decision_id,
                             " holds only its facts' digest (the server ran without "
                             "--audit-include-facts): give the facts with --facts F.json"));
  }
  absl::StatusOr<std::vector<FactInput>> inputs = ParseFactsJson(facts_json);
  if (!inputs.ok()) return Fail(inputs.status().message());
  absl::StatusOr<FactValues> facts = rule_set.BindFacts(*inputs);
  if (!facts.ok()) return Fail(facts.status().message());
  const std::string digest = Sha256Hex(CanonicalFacts(rule_set, *facts));
  if (digest != recorded->facts_sha256) {
    return Fail(absl::StrCat("these facts are not the decision's: their canonical digest is ",
                             digest, ", the record's facts_sha256 ", recorded->facts_sha256));
  }

  const Evaluation evaluation = rule_set.Evaluate(*kind, *facts);
  std::map<std::string, std::string> replayed;
  for (const RuleResult& result : evaluation.rules) {
    replayed[rule_set.rules()[result.rule].id] = std::string(OutcomeName(result.outcome));
  }
  int differences = 0;
  std::cout << "decision " << decision_id << ": " << recorded->method << " under "
            << rule_set.protocol_id() << " " << rule_set.version() << " (sha256 "
            << recorded->sha256 << "), as of " << recorded->as_of_date << ", site \""
            << recorded->site_id << "\"\n";
  for (const auto& [id, outcome] : recorded->outcomes) {
    const auto again = replayed.find(id);
    const std::string now = again == replayed.end() ? "(no such rule)" : again->second;
    // A batch records outcomes by their first letter.
    const bool same = outcome.size() == 1 ? !now.empty() && now[0] == outcome[0] : now == outcome;
    if (!same) ++differences;
    std::cout << "  " << id << ": recorded " << outcome << ", replayed " << now
              << (same ? "" : "  <- differs") << "\n";
  }
  if (recorded->outcomes.size() != replayed.size()) ++differences;
  const std::string decision(DecisionName(evaluation.decision));
  const bool same_decision = decision == recorded->decision;
  if (!same_decision) ++differences;
  std::cout << "  decision: recorded " << recorded->decision << ", replayed " << decision
            << "\n"
            << (differences == 0 ? "IDENTICAL" : "DIFFERENT") << "\n";
  return differences == 0 ? kExitOk : kExitProblems;
}

}  // namespace trialrules::cli
