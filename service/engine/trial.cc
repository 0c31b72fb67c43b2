#include "service/engine/trial.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/engine/boin.h"
#include "service/engine/facts.h"
#include "service/util/dates.h"
#include "service/util/sha256.h"

namespace trialrules {
namespace {

namespace pb = ::trialrules::v1;

constexpr int kMaxGrade = 5;

Outcome Known(bool value) { return value ? Outcome::kTrue : Outcome::kFalse; }

Outcome And(Outcome a, Outcome b) {
  if (a == Outcome::kFalse || b == Outcome::kFalse) return Outcome::kFalse;
  if (a == Outcome::kUnknown || b == Outcome::kUnknown) return Outcome::kUnknown;
  return Outcome::kTrue;
}

Outcome Or(Outcome a, Outcome b) {
  if (a == Outcome::kTrue || b == Outcome::kTrue) return Outcome::kTrue;
  if (a == Outcome::kUnknown || b == Outcome::kUnknown) return Outcome::kUnknown;
  return Outcome::kFalse;
}

pb::Truth ToTruth(Outcome outcome) {
  switch (outcome) {
    case Outcome::kTrue: return pb::TRUTH_TRUE;
    case Outcome::kFalse: return pb::TRUTH_FALSE;
    case Outcome::kUnknown: return pb::TRUTH_UNKNOWN;
  }
  return pb::TRUTH_UNKNOWN;
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list,
              absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// One adverse event, its record checked and graded.
struct Event {
  const pb::AdverseEventRecord* record = nullptr;
  int grade_min = 0;  // equal to grade_max when the grade is known
  int grade_max = 0;
  std::string graded_by;                 // "table@version" when graded here
  std::vector<std::string> missing;      // observations an unknown grade needs
  bool hematologic = false;
  Outcome related = Outcome::kUnknown;
  DayNumber onset = 0;
  std::optional<DayNumber> resolution;  // none: ongoing

  // Judged against the DLT definition.
  Outcome dlt = Outcome::kFalse;
  int criterion = -1;  // the first criterion that holds, when dlt is TRUE
  std::vector<std::string> cleared_if;
};

struct Patient {
  const pb::PatientRecord* record = nullptr;
  int dose = 0;  // index into the rule set's dose levels
  std::optional<DayNumber> infusion;
  std::optional<DayNumber> death;
  std::vector<Event> events;
  Outcome dlt = Outcome::kFalse;
  Outcome evaluable = Outcome::kFalse;
  bool window_finished = false;
};

// Checks the records field by field and grades the ungraded events. Every
// refusal names the patient and the field.
class RecordsReader {
 public:
  RecordsReader(const RuleSet& rules,
                absl::Span<const std::shared_ptr<const DecisionTableSet>> tables,
                const pb::TrialRecords& records)
      : rules_(rules), dlt_(*rules.definition().dlt), tables_(tables), records_(records) {}

  absl::Status Read(DayNumber* as_of, int* current_dose, std::vector<Patient>* patients) {
    if (records_.as_of_date().empty()) return absl::InvalidArgumentError("as_of_date is required");
    absl::StatusOr<DayNumber> day = ParseIsoDate(records_.as_of_date());
    if (!day.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "as_of_date \"", records_.as_of_date(), "\": ", day.status().message()));
    }
    as_of_ = *day;
    *as_of = *day;
    absl::StatusOr<int> current = DoseIndex(records_.current_dose_level());
    if (!current.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("current_dose_level: ", current.status().message()));
    }
    *current_dose = *current;
    std::set<std::string> subjects;
    patients->reserve(records_.patients_size());
    for (int p = 0; p < records_.patients_size(); ++p) {
      const pb::PatientRecord& record = records_.patients(p);
      where_ = absl::StrCat("patients[", p, "] (", record.subject_ref(), ")");
      if (record.subject_ref().empty()) return Refuse("subject_ref", "is required");
      if (!subjects.insert(record.subject_ref()).second) {
        return Refuse("subject_ref", "is given for two patients");
      }
      Patient patient;
      patient.record = &record;
      absl::StatusOr<int> dose = DoseIndex(record.dose_level());
      if (!dose.ok()) return Refuse("dose_level", dose.status().message());
      patient.dose = *dose;
      absl::Status read = ReadDate("infusion_date", record.infusion_date(), &patient.infusion);
      if (!read.ok()) return read;
      read = ReadDate("death_date", record.death_date(), &patient.death);
      if (!read.ok()) return read;
      if (!patient.death && record.has_death_treatment_related()) {
        return Refuse("death_treatment_related", "is given without a death_date");
      }
      if (patient.death && patient.infusion && *patient.death < *patient.infusion) {
        return Refuse("death_date", absl::StrCat("\"", record.death_date(),
                                                 "\" is before the infusion_date"));
      }
      for (int e = 0; e < record.events_size(); ++e) {
        absl::StatusOr<Event> event = ReadEvent(record.events(e), e, patient);
        if (!event.ok()) return event.status();
        patient.events.push_back(*std::move(event));
      }
      patients->push_back(std::move(patient));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Refuse(absl::string_view field, absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, ": ", field, " ", message));
  }

  absl::StatusOr<int> DoseIndex(absl::string_view id) const {
    const std::vector<DoseLevelSpec>& levels = rules_.definition().dose_levels;
    for (size_t i = 0; i < levels.size(); ++i) {
      if (levels[i].id == id) return static_cast<int>(i);
    }
    std::vector<std::string> ids;
    for (const DoseLevelSpec& level : levels) ids.push_back(level.id);
    return absl::InvalidArgumentError(
        absl::StrCat("\"", id, "\" is not a dose level of ", rules_.protocol_id(), " ",
                     rules_.version(), " (", absl::StrJoin(ids, ", "), ")"));
  }

  // An optional date: empty stays none; after as_of_date is refused.
  absl::Status ReadDate(absl::string_view field, const std::string& text,
                        std::optional<DayNumber>* out) const {
    if (text.empty()) return absl::OkStatus();
    absl::StatusOr<DayNumber> day = ParseIsoDate(text);
    if (!day.ok()) return Refuse(field, absl::StrCat("\"", text, "\": ", day.status().message()));
    if (*day > as_of_) {
      return Refuse(field, absl::StrCat("\"", text, "\" is after as_of_date ",
                                        records_.as_of_date()));
    }
    *out = *day;
    return absl::OkStatus();
  }

  absl::StatusOr<Event> ReadEvent(const pb::AdverseEventRecord& record, int index,
                                  const Patient& patient) {
    const std::string field = absl::StrCat("events[", index, "]");
    auto refuse = [&](absl::string_view name, absl::string_view message) {
      return Refuse(absl::StrCat(field, ".", name), message);
    };
    Event event;
    event.record = &record;
    if (record.term().empty()) return refuse("term", "is required");
    std::optional<DayNumber> onset;
    if (record.onset_date().empty()) return refuse("onset_date", "is required");
    if (absl::Status s = ReadDate(absl::StrCat(field, ".onset_date"), record.onset_date(), &onset);
        !s.ok()) {
      return s;
    }
    event.onset = *onset;
    if (!patient.infusion) {
      return refuse("onset_date", "is given for a patient without an infusion_date");
    }
    if (event.onset < *patient.infusion) {
      return refuse("onset_date", absl::StrCat("\"", record.onset_date(),
                                               "\" is before the infusion_date ",
                                               patient.record->infusion_date()));
    }
    if (absl::Status s = ReadDate(absl::StrCat(field, ".resolution_date"),
                                  record.resolution_date(), &event.resolution);
        !s.ok()) {
      return s;
    }
    if (event.resolution && *event.resolution < event.onset) {
      return refuse("resolution_date", absl::StrCat("\"", record.resolution_date(),
                                                    "\" is before the onset_date"));
    }
    if (patient.death && event.onset > *patient.death) {
      return refuse("onset_date", absl::StrCat("\"", record.onset_date(),
                                               "\" is after the death_date"));
    }
    // An event still open at the patient's death lasted until the death:
    // it can last no longer.
    if (!event.resolution && patient.death) event.resolution = *patient.death;
    if (record.attribution().empty()) {
      event.related = Outcome::kUnknown;
    } else if (std::find(std::begin(kAttributions), std::end(kAttributions),
                         record.attribution()) == std::end(kAttributions)) {
      return refuse("attribution", absl::StrCat("\"", record.attribution(), "\" is not one of ",
                                                absl::StrJoin(kAttributions, ", ")));
    } else {
      event.related = Known(Contains(dlt_.related_attributions(), record.attribution()));
    }
    event.hematologic = (record.has_hematologic() && record.hematologic()) ||
                        Contains(dlt_.hematologic_terms(), record.term());
    if (record.has_grade()) {
      if (record.grade() < 0 || record.grade() > kMaxGrade) {
        return refuse("grade", absl::StrCat(record.grade(), " is not a grade from 0 to 5"));
      }
      event.grade_min = event.grade_max = record.grade();
      return event;
    }
    if (record.observations().empty()) {
      return refuse("grade", "is absent and there are no observations to grade");
    }
    if (absl::Status graded = Grade(record, &event); !graded.ok()) {
      return refuse("observations", graded.message());
    }
    return event;
  }

  absl::Status Grade(const pb::AdverseEventRecord& record, Event* event) const {
    for (const std::shared_ptr<const DecisionTableSet>& set : tables_) {
      absl::StatusOr<const DecisionTable*> table = set->Find(record.term());
      if (!table.ok()) continue;
      std::vector<FactInput> inputs;
      inputs.reserve(record.observations_size());
      for (const pb::FactValue& observation : record.observations()) {
        absl::StatusOr<FactInput> input = FactInputFromProto(observation);
        if (!input.ok()) return input.status();
        if (absl::Status s = (*table)->rules->CheckValueField(observation); !s.ok()) return s;
        inputs.push_back(*std::move(input));
      }
      absl::StatusOr<TableResult> result = set->Evaluate(**table, inputs);
      if (!result.ok()) return result.status();
      set->MarkServed();
      event->graded_by = absl::StrCat(set->table_id(), "@", set->version());
      event->grade_min = static_cast<int>(result->output ? *result->output : result->min);
      event->grade_max = static_cast<int>(result->output ? *result->output : result->max);
      for (int input : result->missing_inputs) {
        event->missing.push_back((*table)->inputs()[input].name);
      }
      return absl::OkStatus();
    }
    std::vector<std::string> names;
    for (const auto& [id, version] : rules_.definition().decision_tables) names.push_back(id);
    return absl::InvalidArgumentError(absl::StrCat(
        "no grading table of ", rules_.protocol_id(), " ", rules_.version(), " (",
        absl::StrJoin(names, ", "), ") grades term \"", record.term(),
        "\": give the event's grade"));
  }

  const RuleSet& rules_;
  const pb::DltDefinition& dlt_;
  absl::Span<const std::shared_ptr<const DecisionTableSet>> tables_;
  const pb::TrialRecords& records_;
  DayNumber as_of_ = 0;
  std::string where_;
};

// Whether `event` meets `criterion`; for UNKNOWN, adds to `clearing` what
// would make it not (any one suffices).
Outcome MeetsCriterion(const pb::DltCriterion& criterion, const Event& event, DayNumber as_of,
                       std::vector<std::string>* clearing) {
  const std::string& term = event.record->term();
  if (!criterion.terms().empty() && !Contains(criterion.terms(), term)) return Outcome::kFalse;
  if (Contains(criterion.excluded_terms(), term)) return Outcome::kFalse;
  if ((criterion.category() == pb::DltCriterion::HEMATOLOGIC && !event.hematologic) ||
      (criterion.category() == pb::DltCriterion::NON_HEMATOLOGIC && event.hematologic)) {
    return Outcome::kFalse;
  }
  Outcome holds = Outcome::kTrue;
  if (event.grade_min < criterion.min_grade()) {
    if (event.grade_max < criterion.min_grade()) return Outcome::kFalse;
    holds = Outcome::kUnknown;
    std::string graded = absl::StrCat("is graded below ", criterion.min_grade());
    if (!event.missing.empty()) {
      absl::StrAppend(&graded, " (", absl::StrJoin(event.missing, ", "), " unknown)");
    }
    clearing->push_back(std::move(graded));
  }
  if (criterion.has_lasting_more_than_days()) {
    const int days = criterion.lasting_more_than_days();
    if (event.resolution) {
      if (*event.resolution - event.onset <= days) return Outcome::kFalse;
    } else if (as_of - event.onset <= days) {
      // Ongoing and not yet long enough: it may still become a DLT.
      holds = Outcome::kUnknown;
      clearing->push_back(absl::StrCat("resolves by ", FormatIsoDate(event.onset + days)));
    }
  }
  if (holds == Outcome::kTrue) clearing->clear();
  return holds;
}

void JudgeEvent(const pb::DltDefinition& dlt, const Patient& patient, DayNumber as_of,
                Event* event) {
  const int day = event->onset - *patient.infusion;
  if (day < dlt.window_first_day() || day > dlt.window_last_day()) {
    event->dlt = Outcome::kFalse;
    return;
  }
  Outcome any = Outcome::kFalse;
  std::vector<std::string> unknown_criteria;  // each: what clears that criterion
  for (int c = 0; c < dlt.criteria_size(); ++c) {
    std::vector<std::string> clearing;
    const Outcome holds = MeetsCriterion(dlt.criteria(c), *event, as_of, &clearing);
    if (holds == Outcome::kTrue && event->criterion < 0) event->criterion = c;
    if (holds == Outcome::kUnknown) {
      unknown_criteria.push_back(clearing.size() == 1
                                     ? clearing[0]
                                     : absl::StrCat("(", absl::StrJoin(clearing, " or "), ")"));
    }
    any = Or(any, holds);
  }
  event->dlt = And(event->related, any);
  if (event->dlt != Outcome::kTrue) event->criterion = -1;
  if (event->dlt != Outcome::kUnknown) return;
  if (event->related == Outcome::kUnknown) {
    std::vector<std::string> unrelated;
    for (absl::string_view attribution : kAttributions) {
      if (!Contains(dlt.related_attributions(), attribution)) {
        unrelated.emplace_back(attribution);
      }
    }
    event->cleared_if.push_back(absl::StrCat("is adjudicated ", absl::StrJoin(unrelated, " or ")));
  }
  if (any == Outcome::kUnknown) event->cleared_if.push_back(absl::StrJoin(unknown_criteria, " and "));
}

void JudgePatient(const pb::DltDefinition& dlt, DayNumber as_of, Patient* patient) {
  if (!patient->infusion) return;  // not infused: no DLT, not evaluable
  for (Event& event : patient->events) {
    JudgeEvent(dlt, *patient, as_of, &event);
    patient->dlt = Or(patient->dlt, event.dlt);
  }
  patient->window_finished = as_of - *patient->infusion >= dlt.evaluation_days();
  patient->evaluable = Or(patient->dlt, Known(patient->window_finished));
}

void FillPatient(const RuleSet& rules, const Patient& patient, pb::PatientAssessment* out) {
  out->set_subject_ref(patient.record->subject_ref());
  out->set_dose_level(rules.definition().dose_levels[patient.dose].id);
  out->set_dlt(ToTruth(patient.dlt));
  out->set_evaluable(ToTruth(patient.evaluable));
  for (const Event& event : patient.events) {
    pb::EventAssessment* e = out->add_events();
    e->set_term(event.record->term());
    e->set_grade_known(event.grade_min == event.grade_max);
    if (e->grade_known()) e->set_grade(event.grade_min);
    e->set_grade_min(event.grade_min);
    e->set_grade_max(event.grade_max);
    e->set_graded_by(event.graded_by);
    e->set_dlt(ToTruth(event.dlt));
    if (event.criterion >= 0) e->set_criterion(rules.definition().dlt->criteria(event.criterion).id());
    for (const std::string& clearing : event.cleared_if) e->add_cleared_if(clearing);
  }
}

void FillDoseCounts(const RuleSet& rules, const std::vector<Patient>& patients,
                    pb::TrialEvaluation* out) {
  for (const DoseLevelSpec& level : rules.definition().dose_levels) {
    out->add_dose_levels()->set_id(level.id);
  }
  for (const Patient& patient : patients) {
    pb::DoseLevelCounts* counts = out->mutable_dose_levels(patient.dose);
    const std::string& subject = patient.record->subject_ref();
    if (patient.infusion) {
      counts->set_n_infused(counts->n_infused() + 1);
      counts->add_infused(subject);
    }
    if (patient.evaluable == Outcome::kTrue) {
      counts->set_n_evaluable(counts->n_evaluable() + 1);
      counts->add_evaluable(subject);
    }
    if (patient.dlt == Outcome::kTrue) {
      counts->set_n_dlt(counts->n_dlt() + 1);
      counts->add_with_dlt(subject);
    } else if (patient.dlt == Outcome::kUnknown) {
      counts->set_n_dlt_unknown(counts->n_dlt_unknown() + 1);
      counts->add_dlt_unknown(subject);
    }
  }
}

// Evaluates one kind's rules on count facts, reusing its storage.
class CountEvaluator {
 public:
  CountEvaluator(const RuleSet& rules, EvaluationKind kind)
      : rules_(rules), kind_(kind), facts_(rules.EmptyFacts()) {}

  // `counts`: (fact index, value) pairs; the other facts stay missing. A
  // count outside the range the rule file declares for its fact is refused
  // (the records are beyond what the protocol's rules were written for).
  absl::StatusOr<const Evaluation*> Evaluate(absl::Span<const std::pair<int, int>> counts) {
    rules_.ResetFacts(&facts_);
    for (const auto& [fact, value] : counts) {
      absl::Status bound = rules_.BindFactAt(fact, static_cast<double>(value), "", &facts_);
      if (!bound.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("the records give ", bound.message()));
      }
    }
    rules_.Evaluate(kind_, facts_, &evaluation_);
    return &evaluation_;
  }

 private:
  const RuleSet& rules_;
  EvaluationKind kind_;
  FactValues facts_;
  Evaluation evaluation_;
};

BoinParameters BoinParametersOf(const v1::BoinDesign& design) {
  BoinParameters parameters;
  parameters.target = design.target();
  if (design.has_phi1()) parameters.phi1 = design.phi1();
  if (design.has_phi2()) parameters.phi2 = design.phi2();
  if (design.has_n_earlystop()) parameters.n_earlystop = design.n_earlystop();
  return parameters;
}

// Resolutions listed one by one in an answer at most: 2^10. Beyond, up to
// 2^kMaxEnumeratedUnknowns are still decided, without the list, so that a
// few kilobytes of records cannot ask for a response of megabytes.
constexpr int kMaxListedUnknowns = 10;
// Count combinations tried beyond kMaxEnumeratedUnknowns.
constexpr uint64_t kMaxCountCombinations = 4096;

// What the escalation design decides for given per-dose counts.
struct Verdict {
  std::string decision;
  // BOIN only.
  std::string next_dose_level;
  std::vector<std::string> eliminated;
  std::string mtd;
};

class EscalationDecider {
 public:
  EscalationDecider(const RuleSet& rules, int current)
      : rules_(rules), current_(current), three_plus_three_(rules, EvaluationKind::kEscalation) {
    const RuleSetDefinition& def = rules.definition();
    for (const pb::RecordCount& count : def.record_counts) {
      if (count.has_evaluable_at_current_dose()) evaluable_fact_ = rules.FindFact(count.fact());
      if (count.has_dlts_at_current_dose()) dlt_fact_ = rules.FindFact(count.fact());
    }
    if (def.boin) boin_ = *BoinDesign::Create(BoinParametersOf(*def.boin));  // checked at load
  }

  bool boin() const { return boin_.has_value(); }
  const BoinDesign& design() const { return *boin_; }

  // The verdict for `counts` (per dose: evaluable, with a DLT). 3+3 reads
  // the current dose only; BOIN every dose (elimination).
  absl::StatusOr<const Verdict*> Decide(const std::vector<BoinDoseCounts>& counts) {
    std::vector<std::pair<int, int>> key;
    if (boin_) {
      for (const BoinDoseCounts& c : counts) key.emplace_back(c.n, c.y);
    } else {
      key.emplace_back(counts[current_].n, counts[current_].y);
    }
    auto [it, inserted] = verdicts_.try_emplace(std::move(key));
    if (!inserted) return &it->second;
    Verdict& verdict = it->second;
    if (!boin_) {
      std::vector<std::pair<int, int>> facts;
      if (evaluable_fact_ >= 0) facts.emplace_back(evaluable_fact_, counts[current_].n);
      if (dlt_fact_ >= 0) facts.emplace_back(dlt_fact_, counts[current_].y);
      absl::StatusOr<const Evaluation*> evaluation = three_plus_three_.Evaluate(facts);
      if (!evaluation.ok()) {
        verdicts_.erase(it);
        return evaluation.status();
      }
      verdict.decision = std::string(DecisionName((*evaluation)->decision));
      return &verdict;
    }
    const std::vector<DoseLevelSpec>& levels = rules_.definition().dose_levels;
    absl::StatusOr<BoinDecision> decision = boin_->Decide(counts, current_);
    if (!decision.ok()) {
      verdicts_.erase(it);
      return decision.status();
    }
    verdict.decision = std::string(BoinActionName(decision->action));
    if (decision->next_dose) verdict.next_dose_level = levels[*decision->next_dose].id;
    for (int dose : decision->eliminated) verdict.eliminated.push_back(levels[dose].id);
    if (decision->action == BoinAction::kStopSelectMtd) {
      absl::StatusOr<MtdSelection> mtd = boin_->SelectMtd(counts);
      if (mtd.ok() && mtd->mtd) verdict.mtd = levels[*mtd->mtd].id;
    }
    return &verdict;
  }

 private:
  const RuleSet& rules_;
  int current_;
  int evaluable_fact_ = -1;
  int dlt_fact_ = -1;
  CountEvaluator three_plus_three_;
  std::optional<BoinDesign> boin_;
  std::map<std::vector<std::pair<int, int>>, Verdict> verdicts_;
};

void FillBoinDesign(const RuleSet& rules, const BoinDesign& design, int max_n,
                    pb::BoinOutcome* out) {
  out->set_target(design.phi());
  out->set_lambda_e(design.lambda_e());
  out->set_lambda_d(design.lambda_d());
  out->set_design_sha256(rules.definition().boin_sha256);
  for (const BoinBoundary& row : design.Boundaries(std::max(12, max_n))) {
    pb::BoinBoundaryRow* r = out->add_boundaries();
    r->set_n(row.n);
    r->set_escalate_max(row.escalate_max);
    r->set_deescalate_min(row.deescalate_min);
    if (row.eliminate_min) r->set_eliminate_min(*row.eliminate_min);
  }
}

absl::Status DecideEscalation(const RuleSet& rules, const std::vector<Patient>& patients,
                              int current, pb::TrialEvaluation* evaluation) {
  EscalationDecider decider(rules, current);
  pb::EscalationOutcome* out = evaluation->mutable_escalation();
  out->set_design(decider.boin() ? "BOIN" : "3+3");
  out->set_dose_level(rules.definition().dose_levels[current].id);

  // The certain counts, then the patients whose DLT is pending: at the
  // current dose for 3+3; at every dose for BOIN, whose eliminations read
  // every dose's counts.
  std::vector<BoinDoseCounts> known;
  for (const pb::DoseLevelCounts& level : evaluation->dose_levels()) {
    known.push_back({level.n_evaluable(), level.n_dlt()});
  }
  std::vector<const Patient*> pending;
  for (const Patient& patient : patients) {
    if (patient.dlt != Outcome::kUnknown || (!decider.boin() && patient.dose != current)) continue;
    pending.push_back(&patient);
    for (size_t e = 0; e < patient.events.size(); ++e) {
      const Event& event = patient.events[e];
      if (event.dlt != Outcome::kUnknown) continue;
      pb::PendingEvent* p = out->add_pending();
      p->set_subject_ref(patient.record->subject_ref());
      p->set_event(static_cast<int>(e));
      p->set_term(event.record->term());
      for (const std::string& clearing : event.cleared_if) p->add_cleared_if(clearing);
    }
  }

  // Every resolution's verdict, combined.
  std::set<std::string> decisions, next_doses, mtds;
  std::map<std::string, int> eliminated_in;  // dose level -> resolutions eliminating it
  uint64_t resolutions = 0;
  auto take = [&](const Verdict& verdict) {
    ++resolutions;
    decisions.insert(verdict.decision);
    next_doses.insert(verdict.next_dose_level);
    mtds.insert(verdict.mtd);
    for (const std::string& level : verdict.eliminated) ++eliminated_in[level];
  };
  bool decided = true;
  if (pending.size() <= static_cast<size_t>(kMaxEnumeratedUnknowns)) {
    const bool listed = pending.size() <= static_cast<size_t>(kMaxListedUnknowns);
    for (uint32_t mask = 0; mask < (1u << pending.size()); ++mask) {
      std::vector<BoinDoseCounts> counts = known;
      for (size_t i = 0; i < pending.size(); ++i) {
        if ((mask >> i & 1) == 0) continue;
        BoinDoseCounts& c = counts[pending[i]->dose];
        ++c.y;
        // A patient whose window has not finished is evaluable only by a DLT.
        if (!pending[i]->window_finished) ++c.n;
      }
      absl::StatusOr<const Verdict*> verdict = decider.Decide(counts);
      if (!verdict.ok()) return verdict.status();
      take(**verdict);
      if (!listed || pending.empty()) continue;
      pb::EscalationOutcome::Resolution* resolution = out->add_by_resolution();
      for (size_t i = 0; i < pending.size(); ++i) {
        if (mask >> i & 1) resolution->add_dlt(pending[i]->record->subject_ref());
      }
      resolution->set_decision((*verdict)->decision);
      resolution->set_next_dose_level((*verdict)->next_dose_level);
      for (const std::string& level : (*verdict)->eliminated) resolution->add_eliminated(level);
      resolution->set_mtd((*verdict)->mtd);
    }
  } else {
    // Too many to enumerate one by one. When all are at the current dose,
    // a resolution is some number of DLTs among those whose window has
    // finished and some among those still in it (who then become
    // evaluable): those pairs decide exactly, if few enough.
    int finished = 0;
    bool all_current = true;
    for (const Patient* patient : pending) {
      finished += patient->window_finished;
      all_current = all_current && patient->dose == current;
    }
    const int in_window = static_cast<int>(pending.size()) - finished;
    decided = all_current &&
              static_cast<uint64_t>(finished + 1) * (in_window + 1) <= kMaxCountCombinations;
    for (int a = 0; decided && a <= finished; ++a) {
      for (int b = 0; b <= in_window; ++b) {
        std::vector<BoinDoseCounts> counts = known;
        counts[current].n += b;
        counts[current].y += a + b;
        absl::StatusOr<const Verdict*> verdict = decider.Decide(counts);
        if (!verdict.ok()) return verdict.status();
        take(**verdict);
      }
    }
  }
  out->set_resolutions(resolutions);
  out->set_decision(decided && decisions.size() == 1 ? *decisions.begin() : "INDETERMINATE");
  if (!decider.boin()) return absl::OkStatus();

  int max_n = 0;
  for (const BoinDoseCounts& c : known) max_n = std::max(max_n, c.n);
  pb::BoinOutcome* boin = out->mutable_boin();
  FillBoinDesign(rules, decider.design(), max_n + static_cast<int>(pending.size()), boin);
  if (!decided) return absl::OkStatus();
  // What every resolution agrees on is said plainly; a dose some
  // resolutions eliminate and others not is only possibly eliminated.
  if (next_doses.size() == 1) boin->set_next_dose_level(*next_doses.begin());
  if (mtds.size() == 1) boin->set_mtd(*mtds.begin());
  for (const DoseLevelSpec& level : rules.definition().dose_levels) {
    const auto it = eliminated_in.find(level.id);
    if (it == eliminated_in.end()) continue;
    if (static_cast<uint64_t>(it->second) == resolutions) {
      boin->add_eliminated(level.id);
    } else {
      boin->add_possibly_eliminated(level.id);
    }
  }
  if (pending.empty() && *decisions.begin() == BoinActionName(BoinAction::kStopSelectMtd)) {
    absl::StatusOr<MtdSelection> mtd = decider.design().SelectMtd(known);
    if (mtd.ok()) {
      for (size_t d = 0; d < mtd->estimates.size(); ++d) {
        pb::BoinOutcome::Estimate* estimate = boin->add_estimates();
        estimate->set_dose_level(rules.definition().dose_levels[d].id);
        if (mtd->estimates[d]) estimate->set_estimate(*mtd->estimates[d]);
      }
    }
  }
  return absl::OkStatus();
}

// One stopping count's membership per patient.
struct StoppingCount {
  int fact = -1;
  std::string name;
  std::vector<Outcome> members;  // per patient
};

Outcome Membership(const pb::RecordCount& count, const pb::DltDefinition* dlt,
                   const Patient& patient) {
  if (!patient.infusion) return Outcome::kFalse;
  switch (count.count_case()) {
    case pb::RecordCount::kInfused:
      return Outcome::kTrue;
    case pb::RecordCount::kTreatmentRelatedDeaths: {
      if (!patient.death) return Outcome::kFalse;
      const int day = *patient.death - *patient.infusion;
      if (day < 0 || day > count.treatment_related_deaths().within_days()) return Outcome::kFalse;
      if (!patient.record->has_death_treatment_related()) return Outcome::kUnknown;
      return Known(patient.record->death_treatment_related());
    }
    case pb::RecordCount::kPatientsWithEvent: {
      const pb::RecordCount::PatientsWithEvent& with = count.patients_with_event();
      Outcome any = Outcome::kFalse;
      for (const Event& event : patient.events) {
        if (!Contains(with.terms(), event.record->term())) continue;
        Outcome member = event.grade_min >= with.min_grade()   ? Outcome::kTrue
                         : event.grade_max < with.min_grade() ? Outcome::kFalse
                                                               : Outcome::kUnknown;
        if (with.related() && dlt != nullptr) member = And(member, event.related);
        any = Or(any, member);
      }
      return any;
    }
    default:
      return Outcome::kFalse;
  }
}

absl::Status DecideStopping(const RuleSet& rules, const std::vector<Patient>& patients,
                            pb::TrialEvaluation* evaluation) {
  const RuleSetDefinition& def = rules.definition();
  std::vector<StoppingCount> counts;
  for (const pb::RecordCount& count : def.record_counts) {
    if (count.has_evaluable_at_current_dose() || count.has_dlts_at_current_dose()) continue;
    StoppingCount c{rules.FindFact(count.fact()), count.fact(), {}};
    for (const Patient& patient : patients) {
      c.members.push_back(Membership(count, def.dlt ? &*def.dlt : nullptr, patient));
    }
    counts.push_back(std::move(c));
  }
  pb::StoppingOutcome* out = evaluation->mutable_stopping();
  std::vector<std::pair<int, int>> unknown;  // (count, patient) of unknown memberships
  std::vector<int> known_counts(counts.size(), 0);
  for (size_t c = 0; c < counts.size(); ++c) {
    pb::StoppingOutcome::Count* count = out->add_counts();
    count->set_fact(counts[c].name);
    for (size_t p = 0; p < patients.size(); ++p) {
      const std::string& subject = patients[p].record->subject_ref();
      if (counts[c].members[p] == Outcome::kTrue) {
        ++known_counts[c];
        count->add_counted(subject);
      } else if (counts[c].members[p] == Outcome::kUnknown) {
        count->add_unknown(subject);
        unknown.emplace_back(static_cast<int>(c), static_cast<int>(p));
        pb::StoppingOutcome::Membership* pending = out->add_pending();
        pending->set_subject_ref(subject);
        pending->set_fact(counts[c].name);
      }
    }
    count->set_known(known_counts[c]);
  }

  CountEvaluator evaluator(rules, EvaluationKind::kStopping);
  const std::vector<int>& rule_indices = rules.RulesFor(EvaluationKind::kStopping);
  std::vector<Outcome> combined(rule_indices.size(), Outcome::kUnknown);
  std::set<Decision> decisions;
  uint64_t resolutions = 0;
  auto record = [&](const Evaluation& e, bool first) {
    ++resolutions;
    for (size_t r = 0; r < e.rules.size(); ++r) {
      combined[r] = first || combined[r] == e.rules[r].outcome ? e.rules[r].outcome
                                                                : Outcome::kUnknown;
    }
    decisions.insert(e.decision);
  };
  std::vector<std::pair<int, int>> facts;
  // Too many to list: the rules read only the counts, so each count's
  // possible values (its certain members plus 0..all of its unknown ones)
  // are tried instead, when there are few enough combinations.
  std::vector<int> open(counts.size(), 0);
  for (const auto& [c, p] : unknown) ++open[c];
  uint64_t combinations = 1;
  for (int members : open) combinations = std::min<uint64_t>(combinations * (members + 1), 1u << 20);
  if (unknown.size() > static_cast<size_t>(kMaxEnumeratedUnknowns) &&
      combinations <= (1u << kMaxEnumeratedUnknowns)) {
    std::vector<int> added(counts.size(), 0);
    for (uint64_t combination = 0; combination < combinations; ++combination) {
      facts.clear();
      for (size_t c = 0; c < counts.size(); ++c) {
        if (counts[c].fact >= 0) facts.emplace_back(counts[c].fact, known_counts[c] + added[c]);
      }
      absl::StatusOr<const Evaluation*> e = evaluator.Evaluate(facts);
      if (!e.ok()) return e.status();
      record(**e, combination == 0);
      for (size_t c = 0; c < counts.size(); ++c) {  // the next combination, odometer-wise
        if (++added[c] <= open[c]) break;
        added[c] = 0;
      }
    }
  } else if (unknown.size() > static_cast<size_t>(kMaxEnumeratedUnknowns)) {
    // Still too many: a count with unknown members stays missing, so the
    // rules that need it are UNKNOWN (Kleene), never narrower.
    for (size_t c = 0; c < counts.size(); ++c) {
      if (open[c] == 0 && counts[c].fact >= 0) facts.emplace_back(counts[c].fact, known_counts[c]);
    }
    absl::StatusOr<const Evaluation*> e = evaluator.Evaluate(facts);
    if (!e.ok()) return e.status();
    record(**e, true);
  } else {
    std::map<std::vector<int>, std::pair<Decision, std::vector<Outcome>>> cache;
    const uint32_t masks = 1u << unknown.size();
    for (uint32_t mask = 0; mask < masks; ++mask) {
      std::vector<int> values = known_counts;
      for (size_t i = 0; i < unknown.size(); ++i) {
        if (mask >> i & 1) ++values[unknown[i].first];
      }
      auto [it, inserted] = cache.try_emplace(values);
      if (inserted) {
        facts.clear();
        for (size_t c = 0; c < counts.size(); ++c) {
          if (counts[c].fact >= 0) facts.emplace_back(counts[c].fact, values[c]);
        }
        absl::StatusOr<const Evaluation*> e = evaluator.Evaluate(facts);
        if (!e.ok()) return e.status();
        it->second.first = (*e)->decision;
        for (const RuleResult& r : (*e)->rules) it->second.second.push_back(r.outcome);
      }
      const auto& [decision, outcomes] = it->second;
      for (size_t r = 0; r < outcomes.size(); ++r) {
        combined[r] = mask == 0 || combined[r] == outcomes[r] ? outcomes[r] : Outcome::kUnknown;
      }
      decisions.insert(decision);
      ++resolutions;
      if (unknown.empty() || unknown.size() > static_cast<size_t>(kMaxListedUnknowns)) continue;
      pb::StoppingOutcome::Resolution* resolution = out->add_by_resolution();
      for (size_t i = 0; i < unknown.size(); ++i) {
        if ((mask >> i & 1) == 0) continue;
        pb::StoppingOutcome::Membership* counted = resolution->add_counted();
        counted->set_subject_ref(patients[unknown[i].second].record->subject_ref());
        counted->set_fact(counts[unknown[i].first].name);
      }
      resolution->set_decision(std::string(DecisionName(decision)));
    }
  }
  out->set_resolutions(resolutions);
  out->set_decision(decisions.size() == 1 ? std::string(DecisionName(*decisions.begin()))
                                          : "INDETERMINATE");
  for (size_t r = 0; r < rule_indices.size(); ++r) {
    pb::StoppingOutcome::RuleTruth* rule = out->add_rules();
    rule->set_id(rules.rules()[rule_indices[r]].id);
    rule->set_outcome(ToTruth(combined[r]));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> BoinDesignSha256(const v1::BoinDesign& design) {
  if (design.has_n_earlystop() && design.n_earlystop() > kMaxBoinEarlyStop) {
    return absl::InvalidArgumentError(absl::StrCat("n_earlystop ", design.n_earlystop(),
                                                   " is more than ", kMaxBoinEarlyStop));
  }
  absl::StatusOr<BoinDesign> boin = BoinDesign::Create(BoinParametersOf(design));
  if (!boin.ok()) return boin.status();
  return Sha256Hex(boin->CanonicalText(boin->n_earlystop()));
}

absl::StatusOr<v1::TrialEvaluation> EvaluateTrial(
    const RuleSet& rules, absl::Span<const std::shared_ptr<const DecisionTableSet>> tables,
    const v1::TrialRecords& records) {
  const RuleSetDefinition& def = rules.definition();
  if (!def.dlt) {
    return absl::FailedPreconditionError(
        absl::StrCat(rules.protocol_id(), " ", rules.version(),
                     " defines no dose-limiting toxicity (no `dlt` in its rule file)"));
  }
  if (!def.boin) {
    if (absl::Status can = rules.CanDecide(EvaluationKind::kEscalation); !can.ok()) return can;
  }
  for (const std::pair<std::string, std::string>& named : def.decision_tables) {
    const bool loaded = std::any_of(tables.begin(), tables.end(), [&](const auto& set) {
      return set->table_id() == named.first && set->version() == named.second;
    });
    if (!loaded) {
      return absl::FailedPreconditionError(
          absl::StrCat(rules.protocol_id(), " ", rules.version(), " grades with decision table ",
                       named.first, " ", named.second, ", which is not loaded"));
    }
  }
  DayNumber as_of = 0;
  int current = 0;
  std::vector<Patient> patients;
  RecordsReader reader(rules, tables, records);
  if (absl::Status read = reader.Read(&as_of, &current, &patients); !read.ok()) return read;

  pb::TrialEvaluation evaluation;
  evaluation.set_protocol_id(rules.protocol_id());
  evaluation.set_version(rules.version());
  evaluation.set_sha256(rules.sha256());
  evaluation.set_as_of_date(FormatIsoDate(as_of));
  for (Patient& patient : patients) {
    JudgePatient(*def.dlt, as_of, &patient);
    FillPatient(rules, patient, evaluation.add_patients());
  }
  FillDoseCounts(rules, patients, &evaluation);
  if (absl::Status s = DecideEscalation(rules, patients, current, &evaluation); !s.ok()) return s;
  if (rules.CanDecide(EvaluationKind::kStopping).ok()) {
    if (absl::Status s = DecideStopping(rules, patients, &evaluation); !s.ok()) return s;
  }
  return evaluation;
}

}  // namespace trialrules
