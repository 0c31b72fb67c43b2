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
#include "client/records_file.h"
#include "google/protobuf/util/json_util.h"
#include "service/audit/canonical_facts.h"
#include "service/audit/checkpoint.h"
#include "service/audit/log_audit.h"
#include "service/audit/log_files.h"
#include "service/audit/records.h"
#include "service/engine/decision_table.h"
#include "service/engine/compare.h"
#include "service/engine/loader.h"
#include "service/engine/trial.h"
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
    "usage: trialrules replay --audit LOG --archive DIR --decision DECISION_ID\n"
    "         [--facts F.json | --records R.json]\n"
    "  re-evaluates a recorded decision under the archived rule file (and grading tables)\n"
    "  its record names, with the facts of the record (--audit-include-facts) or of\n"
    "  F.json (a trial's records: R.json), whose canonical digest must equal the\n"
    "  record's; exit 0 only if every rule outcome and the decision are the same\n";

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

// A string member of a record; empty when absent.
std::string Member(simdjson::dom::element object, const char* key) {
  std::string_view value;
  return object[key].get(value) ? std::string() : std::string(value);
}

absl::StatusOr<RecordedDecision> ReadRecordedDecision(absl::string_view record,
                                                      absl::string_view decision_id) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(record.data(), record.size()).get(root)) {
    return absl::DataLossError("the decision's record is not valid JSON");
  }
  RecordedDecision recorded;
  recorded.method = Member(root, "method");
  recorded.sha256 = Member(root, "sha256");
  recorded.as_of_date = Member(root, "as_of_date");
  recorded.site_id = Member(root, "site_id");
  simdjson::dom::element entry = root;
  simdjson::dom::array batch;
  if (!root["decisions"].get(batch)) {
    bool found = false;
    for (simdjson::dom::element item : batch) {
      if (Member(item, "decision_id") == decision_id) {
        entry = item;
        found = true;
        break;
      }
    }
    if (!found) return absl::NotFoundError("the batch record does not list the decision");
    simdjson::dom::array rule_ids;
    const std::string letters = Member(entry, "outcomes");
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
  recorded.decision = Member(entry, "decision");
  recorded.facts_sha256 = Member(entry, "facts_sha256");
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

// An archived file exactly as it was: its bytes must still hash to its name.
absl::StatusOr<std::string> ArchivedBytes(const std::string& archive, absl::string_view sha256,
                                          absl::string_view extension) {
  const std::string path = absl::StrCat(archive, "/", sha256, extension);
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  if (!bytes.ok()) {
    return absl::NotFoundError(absl::StrCat("the archive has no file ", sha256, extension, " (",
                                            bytes.status().message(), ")"));
  }
  if (Sha256Hex(*bytes) != sha256) {
    return absl::DataLossError(
        absl::StrCat(path, " does not hash to its name: the archive was altered"));
  }
  return bytes;
}

absl::StatusOr<std::shared_ptr<const RuleSet>> ArchivedRuleSet(const std::string& archive,
                                                               absl::string_view sha256) {
  absl::StatusOr<std::string> bytes = ArchivedBytes(archive, sha256, ".textproto");
  if (!bytes.ok()) return bytes.status();
  LoadResult loaded = LoadRuleSet(*bytes, absl::StrCat(sha256, ".textproto"));
  if (loaded.rule_set == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the archived rule file ", sha256, " no longer loads: ",
        loaded.problems.empty() ? "" : loaded.problems.front().ToString()));
  }
  return loaded.rule_set;
}

absl::StatusOr<std::shared_ptr<const DecisionTableSet>> ArchivedTables(
    const std::string& archive, absl::string_view sha256) {
  absl::StatusOr<std::string> bytes = ArchivedBytes(archive, sha256, ".table.textproto");
  if (!bytes.ok()) return bytes.status();
  TableLoadResult loaded = LoadDecisionTables(*bytes, absl::StrCat(sha256, ".table.textproto"));
  if (loaded.tables == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the archived decision tables ", sha256, " no longer load: ",
        loaded.problems.empty() ? "" : loaded.problems.front().ToString()));
  }
  return loaded.tables;
}

// A record written again from the replayed evaluation is compared byte for
// byte: every outcome, grade, count and decision it holds.
int Compare(absl::string_view recorded, const std::string& replayed) {
  if (recorded == replayed) {
    std::cout << "IDENTICAL\n";
    return kExitOk;
  }
  std::cout << "recorded: " << recorded << "\nreplayed: " << replayed << "\nDIFFERENT\n";
  return kExitProblems;
}

int ReplayTrial(const Args& args, const std::string& decision_id, absl::string_view record) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(record.data(), record.size()).get(root)) {
    return Fail("the decision's record is not valid JSON");
  }
  const std::string sha256 = Member(root, "sha256"), site_id = Member(root, "site_id"),
                    records_sha256 = Member(root, "records_sha256");
  simdjson::dom::object tables_member;
  if (sha256.empty() || records_sha256.empty() || root["tables"].get(tables_member)) {
    return Fail("the trial record lacks sha256, records_sha256 or tables");
  }
  v1::TrialRecords records;
  simdjson::dom::element embedded;
  const bool included = !root["records"].get(embedded);
  if (!args.Get("records").empty()) {
    absl::StatusOr<std::string> text = ReadFileBytes(args.Get("records"));
    if (!text.ok()) return Fail(text.status().message());
    absl::StatusOr<v1::TrialRecords> parsed = ParseTrialRecordsJson(*text);
    if (!parsed.ok()) return Fail(parsed.status().message());
    records = *std::move(parsed);
  } else if (included) {
    if (!google::protobuf::util::JsonStringToMessage(simdjson::minify(embedded), &records).ok()) {
      return Fail("the records in the decision's record do not read as trial records");
    }
  } else {
    return Fail(absl::StrCat("the record of decision ", decision_id,
                             " holds only its records' digest (the server ran without "
                             "--audit-include-facts): give them with --records R.json"));
  }
  const std::string digest = Sha256Hex(CanonicalRecords(records));
  if (digest != records_sha256) {
    return Fail(absl::StrCat("these records are not the decision's: their canonical digest is ",
                             digest, ", the record's records_sha256 ", records_sha256));
  }
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set =
      ArchivedRuleSet(args.Get("archive"), sha256);
  if (!rule_set.ok()) return Fail(rule_set.status().message());
  std::vector<std::shared_ptr<const DecisionTableSet>> tables;
  for (auto [table_id, table_sha] : tables_member) {
    std::string_view hash;
    if (table_sha.get(hash)) return Fail("a grading table's hash is not text");
    absl::StatusOr<std::shared_ptr<const DecisionTableSet>> set =
        ArchivedTables(args.Get("archive"), std::string(hash));
    if (!set.ok()) return Fail(set.status().message());
    tables.push_back(*std::move(set));
  }
  absl::StatusOr<v1::TrialEvaluation> evaluation = EvaluateTrial(**rule_set, tables, records);
  if (!evaluation.ok()) return Fail(evaluation.status().message());
  std::cout << "decision " << decision_id << ": EvaluateTrial under " << (*rule_set)->protocol_id()
            << " " << (*rule_set)->version() << " (sha256 " << sha256 << ") with "
            << tables.size() << " grading table(s), as of " << evaluation->as_of_date()
            << "\n  escalation " << evaluation->escalation().decision() << ", stopping "
            << evaluation->stopping().decision() << "\n";
  return Compare(record, TrialRecordJson({decision_id, rule_set->get(), tables, site_id,
                                          &records, &*evaluation},
                                         included));
}

int ReplayGrading(const Args& args, const std::string& decision_id, absl::string_view record) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(record.data(), record.size()).get(root)) {
    return Fail("the decision's record is not valid JSON");
  }
  const std::string sha256 = Member(root, "sha256"), term = Member(root, "term"),
                    site_id = Member(root, "site_id"), subject_ref = Member(root, "subject_ref");
  simdjson::dom::array gradings;
  if (sha256.empty() || root["gradings"].get(gradings)) {
    return Fail("the grading record lacks sha256 or gradings");
  }
  absl::StatusOr<std::shared_ptr<const DecisionTableSet>> tables =
      ArchivedTables(args.Get("archive"), sha256);
  if (!tables.ok()) return Fail(tables.status().message());
  absl::StatusOr<const DecisionTable*> table = (*tables)->Find(term);
  if (!table.ok()) return Fail(table.status().message());
  std::vector<TableResult> results;
  for (simdjson::dom::element grading : gradings) {
    simdjson::dom::element observations;
    if (grading["facts"].get(observations)) {
      return Fail(absl::StrCat("the record of decision ", decision_id,
                               " holds only its observations' digests (the server ran without "
                               "--audit-include-facts): a grading replays from the record alone"));
    }
    absl::StatusOr<std::vector<FactInput>> inputs = ParseObservationsJson(
        "{\"observations\":" + simdjson::minify(observations) + "}");
    if (!inputs.ok()) return Fail(inputs.status().message());
    absl::StatusOr<TableResult> result = (*tables)->Evaluate(**table, *inputs);
    if (!result.ok()) return Fail(result.status().message());
    results.push_back(*std::move(result));
  }
  std::cout << "decision " << decision_id << ": GradeEvents with " << (*tables)->table_id() << " "
            << (*tables)->version() << " (sha256 " << sha256 << "), term " << term << ", "
            << results.size() << " observation set(s)\n";
  return Compare(record, GradingRecordJson({decision_id, tables->get(), *table, subject_ref,
                                            site_id, results},
                                           /*include_facts=*/true));
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
  absl::StatusOr<Args> args =
      ParseArgs(argv, {"audit", "archive", "decision", "facts", "records"}, {});
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
  const std::string method = RecordString(envelope->record, "method");
  if (method == "EvaluateTrial") return ReplayTrial(*args, decision_id, envelope->record);
  if (method == "GradeEvents") return ReplayGrading(*args, decision_id, envelope->record);
  absl::StatusOr<RecordedDecision> recorded = ReadRecordedDecision(envelope->record, decision_id);
  if (!recorded.ok()) return Fail(recorded.status().message());
  const std::optional<EvaluationKind> kind = KindOfMethod(recorded->method);
  if (!kind) {
    return Fail(absl::StrCat("decision ", decision_id, " was made by ", recorded->method,
                             ", which replay does not know"));
  }
  absl::StatusOr<std::shared_ptr<const RuleSet>> archived =
      ArchivedRuleSet(args->Get("archive"), recorded->sha256);
  if (!archived.ok()) return Fail(archived.status().message());
  const RuleSet& rule_set = **archived;

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
