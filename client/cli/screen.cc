// `trialrules screen`: which of several protocols could each patient join?
// Every patient of a patients file, or of a FHIR Bulk Data export (NDJSON,
// read through each protocol's fhir_bindings), is screened for eligibility
// under each protocol named, in one pass, offline; then per protocol the
// counts and the screen-failure funnel.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/args.h"
#include "client/cli/screen_output.h"
#include "client/facts_file.h"
#include "client/fhir_export.h"
#include "service/catalog/reload.h"
#include "service/fhir/ndjson.h"
#include "service/util/file.h"
#include "service/util/json.h"

namespace trialrules::cli {
namespace {

constexpr char kUsage[] =
    "usage: trialrules screen --rules PATH --protocols ID[,ID...]\n"
    "         (--patients FILE.json | --fhir-ndjson FILE|DIR [--assessment-date YYYY-MM-DD])\n"
    "         [--json]\n"
    "       trialrules screen --server TARGET [TLS options] --protocols ID[,ID...]\n"
    "         --fhir-ndjson FILE|DIR [--assessment-date YYYY-MM-DD] [--json]\n"
    "         [--batch PATIENTS] [--streams-per-server N] [--deadline-ms N]\n"
    "FILE.json is {\"patients\": [{\"subject_ref\": \"...\", \"facts\": {...}}, ...]}; a\n"
    "patient's facts may serve several protocols: each protocol uses the facts it\n"
    "declares and ignores the others\n"
    "--fhir-ndjson reads a FHIR Bulk Data export (a file, or every *.ndjson file of a\n"
    "directory in name order) through each protocol's FHIR bindings, assessed on\n"
    "--assessment-date (default today); a patient is named Patient/ID\n"
    "With --server the servers screen the export: a dns:///NAME:PORT target (or an\n"
    "ipv4:A:P,B:P list) spreads it over every address, each with --streams-per-server\n"
    "streams (default 3) taking messages of --batch patients (default 150) as they\n"
    "finish; a stream's deadline is --deadline-ms times one more than the export's\n"
    "messages. A progress line shows on a terminal.\n";

Screened ScreenOne(const Catalog& catalog, const std::string& protocol,
                   const PatientFacts& patient, Tally* tally) {
  Screened screened;
  const std::optional<std::string> date = AssessmentDate(patient.facts);
  absl::StatusOr<std::optional<DayNumber>> as_of =
      ParseAsOfDate("fact \"assessment_date\"", date.value_or(""));
  absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set =
      as_of.ok() ? catalog.Select({protocol, "", *as_of, ""}, TodayUtc())
                 : absl::StatusOr<std::shared_ptr<const RuleSet>>(as_of.status());
  absl::StatusOr<FactValues> facts = absl::InternalError("");
  std::vector<std::string> ignored;
  if (rule_set.ok()) facts = (*rule_set)->BindFacts(patient.facts, &ignored);
  const absl::Status status = !rule_set.ok() ? rule_set.status() : facts.status();
  if (!status.ok()) {
    screened.decision = "REFUSED";
    screened.error = std::string(status.message());
    return screened;
  }
  const RuleSet& rules = **rule_set;
  const Evaluation evaluation = rules.Evaluate(EvaluationKind::kEligibility, *facts);
  screened.version = rules.version();
  screened.decision = std::string(DecisionName(evaluation.decision));
  for (const RuleResult& result : evaluation.rules) {
    const RuleSpec& spec = rules.rules()[result.rule];
    const Outcome excluding =
        spec.kind == RuleKind::kInclusion ? Outcome::kFalse : Outcome::kTrue;
    tally->CountRule(spec.id, !spec.informational && result.outcome == excluding);
  }
  return screened;
}

// A FHIR export's patients, per protocol: their facts through that
// protocol's bindings, or why its resources were refused.
struct FhirExport {
  bool used = false;  // the patients are the export's
  // protocol → per patient (in the export's order): the facts, with
  // assessment_date; or the refusal.
  std::map<std::string, std::vector<PatientFacts>> facts;
  std::map<std::string, std::vector<std::string>> refused;
  std::map<std::string, std::string> protocol_error;  // no rule set on the date
  std::vector<std::string> line_errors;
};

// The patients of the export, one PatientFacts each (subject_ref
// "Patient/ID"; the facts are in `fhir`, per protocol).
absl::StatusOr<std::vector<PatientFacts>> ReadFhirExport(const Catalog& catalog,
                                                         const std::vector<std::string>& protocols,
                                                         const std::string& path,
                                                         const std::string& date_text,
                                                         FhirExport* fhir) {
  DayNumber date = TodayUtc();
  if (!date_text.empty()) {
    absl::StatusOr<DayNumber> day = ParseIsoDate(date_text);
    if (!day.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--assessment-date: ", day.status().message()));
    }
    date = *day;
  }
  absl::StatusOr<std::string> text = ReadNdjsonExport(path);
  if (!text.ok()) return text.status();
  std::vector<PatientFacts> patients;
  for (const std::string& protocol : protocols) {
    std::vector<PatientFacts>& facts = fhir->facts[protocol];
    std::vector<std::string>& refused = fhir->refused[protocol];
    absl::StatusOr<std::shared_ptr<const RuleSet>> rule_set =
        catalog.Select({protocol, "", date, ""}, TodayUtc());
    if (!rule_set.ok()) {
      fhir->protocol_error[protocol] = std::string(rule_set.status().message());
      continue;
    }
    BundleOptions options;
    options.assessment_date = date;
    // As for a patients file: each protocol takes the facts it declares.
    options.ignore_unknown_facts = true;
    NdjsonFacts read = FactsFromNdjson(*text, **rule_set, options);
    if (fhir->line_errors.empty()) fhir->line_errors = read.line_errors;
    const bool first = patients.empty();
    for (NdjsonPatient& patient : read.patients) {
      if (first) patients.push_back({absl::StrCat("Patient/", patient.id), {}});
      PatientFacts one{absl::StrCat("Patient/", patient.id), {}};
      if (patient.facts.ok()) {
        one.facts = std::move(patient.facts->facts);
        // The assessment date is the screen's, as eval --fhir takes it.
        if ((*rule_set)->FindFact("assessment_date") >= 0) {
          one.facts.push_back({"assessment_date", FormatIsoDate(date), ""});
        }
        refused.emplace_back();
      } else {
        refused.emplace_back(patient.facts.status().message());
      }
      facts.push_back(std::move(one));
    }
  }
  for (const std::string& line : fhir->line_errors) std::cerr << "skipped: " << line << "\n";
  fhir->used = true;
  return patients;
}

// The export's `index`th patient under one protocol, from its facts
// through the protocol's bindings (every protocol finds the same patients
// in the same order: grouping does not depend on the bindings).
Screened ScreenFhir(const Catalog& catalog, const std::string& protocol, size_t index,
                    const FhirExport& fhir, Tally* tally) {
  Screened screened;
  std::string error;
  if (const auto it = fhir.protocol_error.find(protocol); it != fhir.protocol_error.end()) {
    error = it->second;
  } else {
    const std::string& refused = fhir.refused.at(protocol)[index];
    if (refused.empty()) return ScreenOne(catalog, protocol, fhir.facts.at(protocol)[index], tally);
    error = refused;
  }
  screened.decision = "REFUSED";
  screened.error = error;
  return screened;
}

}  // namespace

int RunScreen(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args =
      ParseArgs(argv,
                WithServerOptions({"rules", "protocols", "patients", "fhir-ndjson",
                                   "assessment-date", "batch", "streams-per-server"}),
                {"json"});
  const std::vector<std::string> protocols =
      args.ok() ? absl::StrSplit(args->Get("protocols"), ',', absl::SkipEmpty())
                : std::vector<std::string>();
  const bool on_servers = args.ok() && !args->Get("server").empty();
  if (!args.ok() || !args->positional.empty() || protocols.empty() ||
      args->Get("rules").empty() != on_servers ||
      args->Get("patients").empty() == args->Get("fhir-ndjson").empty() ||
      (on_servers && args->Get("fhir-ndjson").empty()) ||
      (!args->Get("assessment-date").empty() && args->Get("fhir-ndjson").empty())) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kUsage << kServerUsage;
    return kExitUsage;
  }
  if (on_servers) return ScreenExportOnServers(*args, protocols);
  const std::shared_ptr<const Catalog> catalog =
      LoadLocalCatalog(args->Get("rules"), /*report_refusals=*/true);
  FhirExport fhir;
  absl::StatusOr<std::vector<PatientFacts>> patients =
      args->Get("fhir-ndjson").empty()
          ? ReadPatientsFile(args->Get("patients"))
          : ReadFhirExport(*catalog, protocols, args->Get("fhir-ndjson"),
                           args->Get("assessment-date"), &fhir);
  if (!patients.ok()) {
    std::cerr << "error: " << patients.status().message() << "\n";
    return kExitProblems;
  }
  ScreenPrinter printer(protocols, args->Has("json"));
  std::vector<Screened> screened(protocols.size());
  for (const PatientFacts& patient : *patients) {
    for (size_t i = 0; i < protocols.size(); ++i) {
      Tally* tally = &printer.tallies()[protocols[i]];
      screened[i] = fhir.used ? ScreenFhir(*catalog, protocols[i], &patient - patients->data(),
                                           fhir, tally)
                              : ScreenOne(*catalog, protocols[i], patient, tally);
    }
    printer.Patient(patient.subject_ref, screened);
  }
  printer.Summary();
  return kExitOk;
}

}  // namespace trialrules::cli
