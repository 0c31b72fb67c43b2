// EvaluateTrial against its contract, /work/shared/protocols/SAFETY.md
// sections 2-4 (copied where a test needs it; nothing is read from there at
// run time): the NCT04094766 DLT definition at each boundary, three-valued
// DLTs, grading through the protocol's tables, evaluability, per-dose
// counts, 3+3 and BOIN escalation and the stopping rules over every way the
// pending events could resolve, the refusals, and the checker's gates on
// the rule file's `dlt`, `record_counts` and `boin`.
//
// Records are built in C++ on a study calendar: study day 0 is 2020-01-01;
// a patient is infused on a study day, an event's onset is a day after the
// patient's infusion (day 0 = the infusion, as in the contract), and its
// resolution is how many days it lasted.
#include "service/engine/trial.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/engine/decision_table.h"
#include "service/engine/loader.h"
#include "service/util/dates.h"
#include "tests/rule_files.h"

namespace trialrules {
namespace {

namespace pb = ::trialrules::v1;

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// ------------------------------------------------------------ records

std::string StudyDate(int study_day) {
  return FormatIsoDate(*ParseIsoDate("2020-01-01") + study_day);
}

// One adverse event. Attribution defaults to "probable" (related), so that
// a test about another condition need not repeat it.
class Event {
 public:
  explicit Event(std::string term) {
    record_.set_term(std::move(term));
    record_.set_attribution("probable");
  }
  Event& Grade(int grade) {
    record_.set_grade(grade);
    return *this;
  }
  // Days after the patient's infusion.
  Event& OnsetDay(int day) {
    onset_day_ = day;
    return *this;
  }
  // Resolved this many days after its onset; never called: ongoing.
  Event& LastedDays(int days) {
    lasted_days_ = days;
    return *this;
  }
  Event& Attribution(std::string attribution) {
    record_.set_attribution(std::move(attribution));
    return *this;
  }
  Event& Unadjudicated() {
    record_.clear_attribution();
    return *this;
  }
  Event& Hematologic(bool hematologic) {
    record_.set_hematologic(hematologic);
    return *this;
  }
  Event& Number(const std::string& name, double value) {
    pb::FactValue* observation = record_.add_observations();
    observation->set_name(name);
    observation->set_number(value);
    return *this;
  }
  Event& Flag(const std::string& name, bool value) {
    pb::FactValue* observation = record_.add_observations();
    observation->set_name(name);
    observation->set_boolean(value);
    return *this;
  }
  Event& Word(const std::string& name, const std::string& value) {
    pb::FactValue* observation = record_.add_observations();
    observation->set_name(name);
    observation->set_text(value);
    return *this;
  }

  pb::AdverseEventRecord For(int infusion_study_day) const {
    pb::AdverseEventRecord record = record_;
    record.set_onset_date(StudyDate(infusion_study_day + onset_day_));
    if (lasted_days_) {
      record.set_resolution_date(StudyDate(infusion_study_day + onset_day_ + *lasted_days_));
    }
    return record;
  }

 private:
  pb::AdverseEventRecord record_;
  int onset_day_ = 0;
  std::optional<int> lasted_days_;
};

class Patient {
 public:
  Patient(std::string subject_ref, std::string dose_level) {
    record_.set_subject_ref(std::move(subject_ref));
    record_.set_dose_level(std::move(dose_level));
  }
  Patient& InfusedOn(int study_day) {
    infusion_ = study_day;
    record_.set_infusion_date(StudyDate(study_day));
    return *this;
  }
  // Died this many days after the infusion; `treatment_related` absent:
  // not adjudicated.
  Patient& DiedOnDay(int day, std::optional<bool> treatment_related) {
    record_.set_death_date(StudyDate(infusion_ + day));
    if (treatment_related) record_.set_death_treatment_related(*treatment_related);
    return *this;
  }
  Patient& With(const Event& event) {
    *record_.add_events() = event.For(infusion_);
    return *this;
  }
  const pb::PatientRecord& record() const { return record_; }

 private:
  pb::PatientRecord record_;
  int infusion_ = 0;
};

pb::TrialRecords Records(int as_of_study_day, const std::string& current_dose_level,
                         const std::vector<Patient>& patients,
                         const std::string& protocol_id = "NCT04094766") {
  pb::TrialRecords records;
  records.set_protocol_id(protocol_id);
  records.set_as_of_date(StudyDate(as_of_study_day));
  records.set_current_dose_level(current_dose_level);
  for (const Patient& patient : patients) *records.add_patients() = patient.record();
  return records;
}

// ------------------------------------------------------------ rules

const std::shared_ptr<const RuleSet>& Nct04094766() {
  static const auto* rules =
      new std::shared_ptr<const RuleSet>(testing::LoadBundled("NCT04094766-v1.0.textproto"));
  return *rules;
}

std::shared_ptr<const DecisionTableSet> LoadTable(const std::string& name) {
  TableLoadResult result =
      LoadDecisionTables(testing::ReadFile(testing::SourcePath("rules/" + name)), name);
  for (const Problem& problem : result.problems) ADD_FAILURE() << problem.ToString();
  return result.tables;
}

// The three grading tables NCT04094766 names, as loaded from rules/.
const std::vector<std::shared_ptr<const DecisionTableSet>>& GradingTables() {
  static const auto* tables = new std::vector<std::shared_ptr<const DecisionTableSet>>{
      LoadTable("astct-crs-2019-1.0.table.textproto"),
      LoadTable("astct-icans-2019-1.0.table.textproto"),
      LoadTable("ctcae-5.0-1.0.table.textproto")};
  return *tables;
}

// A three-dose protocol escalating by BOIN (target 0.3) with
// NCT04094766's DLT definition and no escalation rules. A file without
// inclusion rules passes the loader's gates, so it has none.
constexpr char kBoinRuleFile[] = R"(
facts { name: "n_treated" type: NUMBER min: 0 max: 1000 integer: true }
facts { name: "n_dlt" type: NUMBER min: 0 max: 1000 integer: true }
dose_levels { id: "DL1" cells_per_kg: 0.5e6 }
dose_levels { id: "DL2" cells_per_kg: 1.5e6 }
dose_levels { id: "DL3" cells_per_kg: 2.0e6 }
dlt {
  window_first_day: 0
  window_last_day: 28
  related_attributions: ["possible", "probable", "definite"]
  hematologic_terms: ["neutrophil_count_decreased", "platelet_count_decreased"]
  evaluation_days: 28
  criteria { id: "D1" min_grade: 5 }
  criteria { id: "D2" terms: "cytokine_release_syndrome" min_grade: 4 }
  criteria { id: "D3" terms: "icans" min_grade: 3 lasting_more_than_days: 3 }
  criteria { id: "D4" excluded_terms: ["cytokine_release_syndrome", "icans"]
             category: NON_HEMATOLOGIC min_grade: 3 lasting_more_than_days: 7 }
  criteria { id: "D5" terms: ["neutrophil_count_decreased", "platelet_count_decreased"]
             min_grade: 4 lasting_more_than_days: 28 }
}
record_counts { fact: "n_treated" evaluable_at_current_dose {} }
record_counts { fact: "n_dlt" dlts_at_current_dose {} }
boin { target: 0.3 }
)";

const std::shared_ptr<const RuleSet>& BoinRules() {
  static const auto* rules = new std::shared_ptr<const RuleSet>(testing::LoadInline(kBoinRuleFile));
  return *rules;
}

absl::StatusOr<pb::TrialEvaluation> Evaluate(const pb::TrialRecords& records) {
  const std::shared_ptr<const RuleSet>& rules = Nct04094766();
  if (rules == nullptr) return absl::InternalError("NCT04094766 v1.0 did not load");
  return EvaluateTrial(*rules, GradingTables(), records);
}

absl::StatusOr<pb::TrialEvaluation> EvaluateBoin(const pb::TrialRecords& records) {
  const std::shared_ptr<const RuleSet>& rules = BoinRules();
  if (rules == nullptr) return absl::InternalError("the inline BOIN rule file did not load");
  return EvaluateTrial(*rules, GradingTables(), records);
}

// ------------------------------------------------------------ reading answers

std::string TruthName(pb::Truth truth) {
  switch (truth) {
    case pb::TRUTH_TRUE: return "TRUE";
    case pb::TRUTH_FALSE: return "FALSE";
    case pb::TRUTH_UNKNOWN: return "UNKNOWN";
    default: return "UNSPECIFIED";
  }
}

// "TRUE D3", "FALSE", "UNKNOWN": the event's DLT and its criterion (which
// must be empty unless the DLT is TRUE, so it is always shown).
std::string Verdict(const pb::EventAssessment& event) {
  return event.criterion().empty() ? TruthName(event.dlt())
                                   : absl::StrCat(TruthName(event.dlt()), " ", event.criterion());
}

// One patient, DL1, infused on study day 0, with `event`; the records are
// as of `as_of_day` days after the infusion (default: long after the
// window). Returns the event's assessment.
pb::EventAssessment Judge(const Event& event, int as_of_day = 100) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      Evaluate(Records(as_of_day, "DL1", {Patient("P01", "DL1").InfusedOn(0).With(event)}));
  if (!evaluation.ok()) {
    ADD_FAILURE() << evaluation.status();
    return {};
  }
  if (evaluation->patients_size() != 1 || evaluation->patients(0).events_size() != 1) {
    ADD_FAILURE() << "expected one patient with one event: " << evaluation->DebugString();
    return {};
  }
  return evaluation->patients(0).events(0);
}

const pb::DoseLevelCounts& DoseLevel(const pb::TrialEvaluation& evaluation,
                                     const std::string& id) {
  for (const pb::DoseLevelCounts& level : evaluation.dose_levels()) {
    if (level.id() == id) return level;
  }
  ADD_FAILURE() << "no dose level " << id;
  return pb::DoseLevelCounts::default_instance();
}

std::map<std::string, std::string> StoppingRules(const pb::TrialEvaluation& evaluation) {
  std::map<std::string, std::string> rules;
  for (const auto& rule : evaluation.stopping().rules()) {
    rules[rule.id()] = TruthName(rule.outcome());
  }
  return rules;
}

const pb::StoppingOutcome::Count& StoppingCount(const pb::TrialEvaluation& evaluation,
                                                const std::string& fact) {
  for (const auto& count : evaluation.stopping().counts()) {
    if (count.fact() == fact) return count;
  }
  ADD_FAILURE() << "no stopping count " << fact;
  return pb::StoppingOutcome::Count::default_instance();
}

// Escalation resolutions as (pending patients counted with a DLT, decision).
std::vector<std::pair<std::vector<std::string>, std::string>> EscalationResolutions(
    const pb::TrialEvaluation& evaluation) {
  std::vector<std::pair<std::vector<std::string>, std::string>> out;
  for (const auto& resolution : evaluation.escalation().by_resolution()) {
    out.emplace_back(std::vector<std::string>(resolution.dlt().begin(), resolution.dlt().end()),
                     resolution.decision());
  }
  return out;
}

// Stopping resolutions as ("subject:fact" memberships counted, decision).
std::vector<std::pair<std::vector<std::string>, std::string>> StoppingResolutions(
    const pb::TrialEvaluation& evaluation) {
  std::vector<std::pair<std::vector<std::string>, std::string>> out;
  for (const auto& resolution : evaluation.stopping().by_resolution()) {
    std::vector<std::string> counted;
    for (const auto& m : resolution.counted()) {
      counted.push_back(absl::StrCat(m.subject_ref(), ":", m.fact()));
    }
    out.emplace_back(std::move(counted), resolution.decision());
  }
  return out;
}

std::vector<std::string> List(const google::protobuf::RepeatedPtrField<std::string>& list) {
  return {list.begin(), list.end()};
}

const std::vector<std::string> kNone;

// A patient at `dose` who finished the DLT window without any event.
Patient Clean(const std::string& ref, const std::string& dose, int infused_on = 0) {
  return Patient(ref, dose).InfusedOn(infused_on);
}

// A patient on day `window_day` after the infusion at `as_of_study_day`,
// with a related grade 3 ICANS begun 2 days before and still ongoing: its
// DLT (D3) is pending. Day 28 (the default): the window is over, the
// patient evaluable.
Patient PendingIcans(const std::string& ref, const std::string& dose, int as_of_study_day,
                     int window_day = 28) {
  return Patient(ref, dose).InfusedOn(as_of_study_day - window_day).With(
      Event("icans").Grade(3).OnsetDay(window_day - 2));
}

// A grade 4 CRS on day 3, resolved after 2 days: a DLT (D2).
Patient WithCrsDlt(const std::string& ref, const std::string& dose, int infused_on = 0) {
  return Patient(ref, dose).InfusedOn(infused_on).With(
      Event("cytokine_release_syndrome").Grade(4).OnsetDay(3).LastedDays(2));
}

// ============================================================ 3. DLT criteria

TEST(TrialDltTest, TheDltWindowIsDays0To28Inclusive) {
  const Event crs4 = Event("cytokine_release_syndrome").Grade(4).LastedDays(1);
  EXPECT_EQ(Verdict(Judge(Event(crs4).OnsetDay(0))), "TRUE D2");
  EXPECT_EQ(Verdict(Judge(Event(crs4).OnsetDay(28))), "TRUE D2");
  EXPECT_EQ(Verdict(Judge(Event(crs4).OnsetDay(29))), "FALSE");
}

TEST(TrialDltTest, D1AGrade5EventOfAnyTermIsADlt) {
  EXPECT_EQ(Verdict(Judge(Event("sepsis").Grade(5).OnsetDay(10).LastedDays(0))), "TRUE D1");
  EXPECT_EQ(Verdict(Judge(Event("neutrophil_count_decreased").Grade(5).OnsetDay(10).LastedDays(0))),
            "TRUE D1");
  EXPECT_EQ(Verdict(Judge(Event("sepsis").Grade(4).OnsetDay(10).LastedDays(0))), "FALSE");
}

TEST(TrialDltTest, D2CrsFromGrade4) {
  EXPECT_EQ(Verdict(Judge(Event("cytokine_release_syndrome").Grade(4).OnsetDay(2).LastedDays(1))),
            "TRUE D2");
  EXPECT_EQ(Verdict(Judge(Event("cytokine_release_syndrome").Grade(3).OnsetDay(2).LastedDays(30))),
            "FALSE");
}

TEST(TrialDltTest, D3IcansGrade3MustLastMoreThan3Days) {
  // Resolved after exactly 3 days: not "more than 3 days".
  EXPECT_EQ(Verdict(Judge(Event("icans").Grade(3).OnsetDay(5).LastedDays(3))), "FALSE");
  EXPECT_EQ(Verdict(Judge(Event("icans").Grade(3).OnsetDay(5).LastedDays(4))), "TRUE D3");
  EXPECT_EQ(Verdict(Judge(Event("icans").Grade(2).OnsetDay(5).LastedDays(20))), "FALSE");
}

TEST(TrialDltTest, D4NonHaematologicGrade3MustLastMoreThan7Days) {
  const Event fn3 = Event("febrile_neutropenia").Grade(3).Hematologic(false).OnsetDay(4);
  EXPECT_EQ(Verdict(Judge(Event(fn3).LastedDays(7))), "FALSE");
  EXPECT_EQ(Verdict(Judge(Event(fn3).LastedDays(8))), "TRUE D4");
  // `hematologic` absent means false.
  EXPECT_EQ(Verdict(Judge(Event("pneumonia").Grade(3).OnsetDay(4).LastedDays(8))), "TRUE D4");
  EXPECT_EQ(Verdict(Judge(Event("pneumonia").Grade(2).OnsetDay(4).LastedDays(20))), "FALSE");
}

TEST(TrialDltTest, D4ExcludesHaematologicEventsWhateverTheRecordSays) {
  // hematologic: true.
  EXPECT_EQ(Verdict(Judge(Event("anaemia").Grade(3).Hematologic(true).OnsetDay(4).LastedDays(20))),
            "FALSE");
  // The CTCAE cytopenias are haematologic even when the record says false.
  EXPECT_EQ(Verdict(Judge(Event("neutrophil_count_decreased").Grade(3).Hematologic(false)
                              .OnsetDay(4).LastedDays(20))),
            "FALSE");
  EXPECT_EQ(Verdict(Judge(Event("platelet_count_decreased").Grade(3).Hematologic(false)
                              .OnsetDay(4).LastedDays(20))),
            "FALSE");
}

TEST(TrialDltTest, D4ExcludesCrsAndIcans) {
  EXPECT_EQ(Verdict(Judge(Event("cytokine_release_syndrome").Grade(3).OnsetDay(4).LastedDays(20))),
            "FALSE");
  // A long grade 3 ICANS is a DLT by D3, not D4.
  EXPECT_EQ(Verdict(Judge(Event("icans").Grade(3).OnsetDay(4).LastedDays(20))), "TRUE D3");
}

TEST(TrialDltTest, D5Grade4CytopeniaMustLastMoreThan28Days) {
  EXPECT_EQ(Verdict(Judge(Event("neutrophil_count_decreased").Grade(4).OnsetDay(1).LastedDays(28))),
            "FALSE");
  EXPECT_EQ(Verdict(Judge(Event("neutrophil_count_decreased").Grade(4).OnsetDay(1).LastedDays(29))),
            "TRUE D5");
  EXPECT_EQ(Verdict(Judge(Event("platelet_count_decreased").Grade(4).OnsetDay(1).LastedDays(29))),
            "TRUE D5");
  EXPECT_EQ(Verdict(Judge(Event("neutrophil_count_decreased").Grade(3).OnsetDay(1).LastedDays(60))),
            "FALSE");
}

TEST(TrialDltTest, TheCriterionIsTheFirstThatHolds) {
  // Grade 5 CRS meets D1 and D2: D1.
  EXPECT_EQ(Verdict(Judge(Event("cytokine_release_syndrome").Grade(5).OnsetDay(3).LastedDays(1))),
            "TRUE D1");
  // Grade 5 ICANS lasting 10 days meets D1 and D3: D1.
  EXPECT_EQ(Verdict(Judge(Event("icans").Grade(5).OnsetDay(3).LastedDays(10))), "TRUE D1");
}

TEST(TrialDltTest, OnlyAtLeastPossiblyRelatedEventsAreDlts) {
  const Event grade5 = Event("sepsis").Grade(5).OnsetDay(3).LastedDays(0);
  EXPECT_EQ(Verdict(Judge(Event(grade5).Attribution("possible"))), "TRUE D1");
  EXPECT_EQ(Verdict(Judge(Event(grade5).Attribution("definite"))), "TRUE D1");
  EXPECT_EQ(Verdict(Judge(Event(grade5).Attribution("unlikely"))), "FALSE");
  EXPECT_EQ(Verdict(Judge(Event(grade5).Attribution("unrelated"))), "FALSE");
}

// ============================================================ 3. three-valued

TEST(TrialDltTest, AnOngoingIcansGrade3IsUnknownUntilItHasLastedMoreThan3Days) {
  // Onset on day 5 after the infusion (study day 5).
  const Event ongoing = Event("icans").Grade(3).OnsetDay(5);
  // Day 2 of the event: may still become a DLT.
  pb::EventAssessment day2 = Judge(ongoing, /*as_of_day=*/7);
  EXPECT_EQ(Verdict(day2), "UNKNOWN");
  EXPECT_THAT(day2.cleared_if(), ElementsAre(absl::StrCat("resolves by ", StudyDate(5 + 3))));
  // Day 3: lasted 3 days, not more: still open.
  EXPECT_EQ(Verdict(Judge(ongoing, /*as_of_day=*/8)), "UNKNOWN");
  // Day 4, still ongoing: lasted more than 3 days.
  pb::EventAssessment day4 = Judge(ongoing, /*as_of_day=*/9);
  EXPECT_EQ(Verdict(day4), "TRUE D3");
  EXPECT_THAT(day4.cleared_if(), IsEmpty());
}

TEST(TrialDltTest, AnOngoingEventOutsideTheCriteriaIsFalseNotUnknown) {
  // Grade 2 ICANS, ongoing on day 1: no duration makes it a DLT.
  EXPECT_EQ(Verdict(Judge(Event("icans").Grade(2).OnsetDay(5), /*as_of_day=*/6)), "FALSE");
}

TEST(TrialDltTest, UnadjudicatedAttributionOfAGrade5EventIsUnknown) {
  pb::EventAssessment event =
      Judge(Event("sepsis").Grade(5).OnsetDay(3).LastedDays(0).Unadjudicated());
  EXPECT_EQ(Verdict(event), "UNKNOWN");
  EXPECT_THAT(event.cleared_if(), ElementsAre(HasSubstr("unrelated or unlikely")));
}

TEST(TrialDltTest, AttributionUnlikelyDecidesAGrade5EventNotADlt) {
  pb::EventAssessment event =
      Judge(Event("sepsis").Grade(5).OnsetDay(3).LastedDays(0).Attribution("unlikely"));
  EXPECT_EQ(Verdict(event), "FALSE");
  EXPECT_THAT(event.cleared_if(), IsEmpty());
}

TEST(TrialDltTest, UnadjudicatedAttributionDoesNotMatterWhenNoCriterionCanHold) {
  EXPECT_EQ(Verdict(Judge(Event("cytokine_release_syndrome").Grade(2).OnsetDay(3).LastedDays(2)
                              .Unadjudicated())),
            "FALSE");
}

// ============================================================ 2. grading

// The contract's record example (section 2): 39.4 Cel, hypotension on one
// vasopressor, no oxygen: ASTCT grade 3.
Event ContractCrs(int vasopressors = 1) {
  return Event("cytokine_release_syndrome").OnsetDay(2).LastedDays(3)
      .Number("temp_c", 39.4).Flag("fever_other_cause", false).Flag("crs_treated", false)
      .Flag("hypotension", true).Number("vasopressors", vasopressors).Word("o2_device", "none")
      .Flag("crs_death", false);
}

TEST(TrialGradingTest, AnUngradedCrsIsGradedByTheProtocolsTable) {
  pb::EventAssessment event = Judge(ContractCrs());
  EXPECT_TRUE(event.grade_known());
  EXPECT_EQ(event.grade(), 3);
  EXPECT_EQ(event.grade_min(), 3);
  EXPECT_EQ(event.grade_max(), 3);
  EXPECT_EQ(event.graded_by(), "astct-crs-2019@1.0");
  EXPECT_EQ(Verdict(event), "FALSE");  // D2 needs grade 4
  // Two vasopressors: grade 4, a DLT by D2.
  pb::EventAssessment grade4 = Judge(ContractCrs(/*vasopressors=*/2));
  EXPECT_EQ(grade4.grade(), 4);
  EXPECT_EQ(Verdict(grade4), "TRUE D2");
}

TEST(TrialGradingTest, AGivenGradeIsUsedAsIs) {
  pb::EventAssessment event =
      Judge(Event("cytokine_release_syndrome").Grade(4).OnsetDay(2).LastedDays(1));
  EXPECT_TRUE(event.grade_known());
  EXPECT_EQ(event.grade(), 4);
  EXPECT_EQ(event.graded_by(), "");
}

TEST(TrialGradingTest, UngradedIcansAndCytopeniaAreGradedByTheirTables) {
  // ICE 3 with a rapidly resolving seizure: grade 3; lasting 4 days: D3.
  pb::EventAssessment icans = Judge(
      Event("icans").OnsetDay(6).LastedDays(4).Number("ice_score", 3).Flag("unarousable", false)
          .Word("consciousness", "normal").Word("seizure", "rapidly_resolving")
          .Flag("motor_weakness", false).Word("cerebral_edema", "none").Flag("icans_death", false)
          .Number("age_years", 30));
  EXPECT_EQ(icans.grade(), 3);
  EXPECT_EQ(icans.graded_by(), "astct-icans-2019@1.0");
  EXPECT_EQ(Verdict(icans), "TRUE D3");
  // ANC 0.3 with no LLN is grade 4 (section 1.3); lasting 29 days: D5.
  pb::EventAssessment anc = Judge(
      Event("neutrophil_count_decreased").OnsetDay(1).LastedDays(29).Number("value", 0.3));
  EXPECT_TRUE(anc.grade_known());
  EXPECT_EQ(anc.grade(), 4);
  EXPECT_EQ(anc.graded_by(), "ctcae-5.0@1.0");
  EXPECT_EQ(Verdict(anc), "TRUE D5");
}

TEST(TrialGradingTest, AMissingObservationCarriesTheGradeRangeAndLeavesD2Unknown) {
  // Fever without hypotension; the oxygen device is not reported: grade 1
  // (no oxygen) to 4 (mechanical ventilation).
  pb::EventAssessment event = Judge(
      Event("cytokine_release_syndrome").OnsetDay(2).LastedDays(3).Number("temp_c", 39.4)
          .Flag("fever_other_cause", false).Flag("crs_treated", false).Flag("hypotension", false)
          .Number("vasopressors", 0).Flag("crs_death", false));
  EXPECT_FALSE(event.grade_known());
  EXPECT_EQ(event.grade_min(), 1);
  EXPECT_EQ(event.grade_max(), 4);
  EXPECT_EQ(event.graded_by(), "astct-crs-2019@1.0");
  EXPECT_EQ(Verdict(event), "UNKNOWN");
  EXPECT_THAT(event.cleared_if(),
              ElementsAre(AllOf(HasSubstr("is graded below 4 ("), HasSubstr("o2_device"))));
}

TEST(TrialGradingTest, AnUnknownObservationThatCannotMatterLeavesTheGradeKnown) {
  // No fever and no prior treatment: no CRS, grade 0, whatever the
  // unreported oxygen device would say.
  pb::EventAssessment event = Judge(
      Event("cytokine_release_syndrome").OnsetDay(2).LastedDays(3).Number("temp_c", 37.0)
          .Flag("fever_other_cause", false).Flag("crs_treated", false).Flag("hypotension", false)
          .Number("vasopressors", 0).Flag("crs_death", false));
  EXPECT_TRUE(event.grade_known()) << event.DebugString();
  EXPECT_EQ(event.grade(), 0);
  EXPECT_EQ(Verdict(event), "FALSE");
}

// ============================================================ 3. evaluable

TEST(TrialEvaluableTest, EvaluableWhenInfusedAndTheWindowIsOverOrWithADlt) {
  // As of study day 40.
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(40, "DL1", {
      Clean("DAY27", "DL1", 40 - 27),
      Clean("DAY28", "DL1", 40 - 28),
      // Day 10 of the window, with a DLT on day 5.
      Patient("DLT", "DL1").InfusedOn(30).With(
          Event("cytokine_release_syndrome").Grade(4).OnsetDay(5).LastedDays(1)),
      // Day 10, an ICANS still pending.
      PendingIcans("PENDING", "DL1", 40, /*window_day=*/10),
      Patient("NOT_INFUSED", "DL1"),
  }));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  std::map<std::string, std::string> evaluable;
  for (const pb::PatientAssessment& p : evaluation->patients()) {
    evaluable[p.subject_ref()] = TruthName(p.evaluable());
  }
  EXPECT_THAT(evaluable, UnorderedElementsAre(Pair("DAY27", "FALSE"), Pair("DAY28", "TRUE"),
                                              Pair("DLT", "TRUE"), Pair("PENDING", "UNKNOWN"),
                                              Pair("NOT_INFUSED", "FALSE")));
  EXPECT_EQ(TruthName(evaluation->patients(2).dlt()), "TRUE");
  EXPECT_EQ(TruthName(evaluation->patients(3).dlt()), "UNKNOWN");
  EXPECT_EQ(TruthName(evaluation->patients(4).dlt()), "FALSE");
}

// ============================================================ 4. counts

TEST(TrialCountsTest, EveryDoseLevelIsCountedWithThePatientsBehindEachNumber) {
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(60, "DL1", {
      Clean("A", "DL1"),
      WithCrsDlt("B", "DL1", 50),  // day 10, a DLT: evaluable
      Clean("C", "DL1", 50),       // day 10, no DLT: not yet evaluable
      Patient("D", "DL1"),         // not infused
      PendingIcans("E", "DL2", 60, /*window_day=*/10),
      // A DLT and a pending event: the patient has a DLT (Kleene ||).
      WithCrsDlt("F", "DL2", 50).With(Event("icans").Grade(3).OnsetDay(8)),
  }));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  ASSERT_EQ(evaluation->dose_levels_size(), 3);
  EXPECT_EQ(evaluation->dose_levels(0).id(), "DL1");
  EXPECT_EQ(evaluation->dose_levels(1).id(), "DL2");
  EXPECT_EQ(evaluation->dose_levels(2).id(), "DL3");

  const pb::DoseLevelCounts& dl1 = DoseLevel(*evaluation, "DL1");
  EXPECT_EQ(dl1.n_infused(), 3);
  EXPECT_EQ(dl1.n_evaluable(), 2);
  EXPECT_EQ(dl1.n_dlt(), 1);
  EXPECT_EQ(dl1.n_dlt_unknown(), 0);
  EXPECT_THAT(List(dl1.infused()), ElementsAre("A", "B", "C"));
  EXPECT_THAT(List(dl1.evaluable()), ElementsAre("A", "B"));
  EXPECT_THAT(List(dl1.with_dlt()), ElementsAre("B"));
  EXPECT_THAT(List(dl1.dlt_unknown()), IsEmpty());

  const pb::DoseLevelCounts& dl2 = DoseLevel(*evaluation, "DL2");
  EXPECT_EQ(dl2.n_infused(), 2);
  EXPECT_EQ(dl2.n_evaluable(), 1);
  EXPECT_EQ(dl2.n_dlt(), 1);
  EXPECT_EQ(dl2.n_dlt_unknown(), 1);
  EXPECT_THAT(List(dl2.infused()), ElementsAre("E", "F"));
  EXPECT_THAT(List(dl2.evaluable()), ElementsAre("F"));
  EXPECT_THAT(List(dl2.with_dlt()), ElementsAre("F"));
  EXPECT_THAT(List(dl2.dlt_unknown()), ElementsAre("E"));

  // Nobody treated at DL3: listed, with zeros.
  const pb::DoseLevelCounts& dl3 = DoseLevel(*evaluation, "DL3");
  EXPECT_EQ(dl3.n_infused(), 0);
  EXPECT_EQ(dl3.n_evaluable(), 0);
  EXPECT_EQ(dl3.n_dlt(), 0);
  EXPECT_EQ(dl3.n_dlt_unknown(), 0);
  EXPECT_THAT(List(dl3.infused()), IsEmpty());

  // Per patient, in the records' order, events in the record's order.
  ASSERT_EQ(evaluation->patients_size(), 6);
  const pb::PatientAssessment& f = evaluation->patients(5);
  EXPECT_EQ(f.subject_ref(), "F");
  EXPECT_EQ(f.dose_level(), "DL2");
  EXPECT_EQ(TruthName(f.dlt()), "TRUE");
  ASSERT_EQ(f.events_size(), 2);
  EXPECT_EQ(Verdict(f.events(0)), "TRUE D2");
  EXPECT_EQ(f.events(0).term(), "cytokine_release_syndrome");
  EXPECT_EQ(Verdict(f.events(1)), "UNKNOWN");
  EXPECT_EQ(f.events(1).term(), "icans");
}

// ============================================================ 4.1 3+3

// The contract's example: 3 evaluable at DL2, none with a DLT, one grade 3
// ICANS ongoing on day 2 -> ESCALATE if it resolves within 3 days, EXPAND
// if not. (The records of tests/data/records/pending_icans.json, on the
// study calendar, with a resolved grade 1 event before the ICANS.)
TEST(TrialEscalationTest, ContractExamplePendingIcansGivesEscalateOrExpand) {
  const int as_of = 89;
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(as_of, "DL2", {
      Patient("P01", "DL1").InfusedOn(9).With(ContractCrs())
          .With(Event("febrile_neutropenia").Grade(3).Hematologic(false).OnsetDay(10)
                    .Attribution("possible")),
      Clean("P02", "DL1", 14),
      Clean("P03", "DL1", 19),
      Clean("P04", "DL2", 50),
      // Infused 28 days before as_of: the window is over, evaluable.
      Patient("P05", "DL2").InfusedOn(as_of - 28)
          .With(Event("headache").Grade(1).OnsetDay(1).LastedDays(1))
          .With(Event("icans").Grade(3).OnsetDay(26)),
      Clean("P06", "DL2", 55),
  }));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(DoseLevel(*evaluation, "DL2").n_evaluable(), 3);
  EXPECT_EQ(DoseLevel(*evaluation, "DL2").n_dlt(), 0);
  const pb::EscalationOutcome& escalation = evaluation->escalation();
  EXPECT_EQ(escalation.design(), "3+3");
  EXPECT_EQ(escalation.dose_level(), "DL2");
  EXPECT_EQ(escalation.decision(), "INDETERMINATE");
  ASSERT_EQ(escalation.pending_size(), 1);
  EXPECT_EQ(escalation.pending(0).subject_ref(), "P05");
  EXPECT_EQ(escalation.pending(0).event(), 1);
  EXPECT_EQ(escalation.pending(0).term(), "icans");
  EXPECT_THAT(escalation.pending(0).cleared_if(),
              ElementsAre(absl::StrCat("resolves by ", StudyDate(as_of - 2 + 3))));
  EXPECT_THAT(EscalationResolutions(*evaluation),
              UnorderedElementsAre(Pair(kNone, "ESCALATE"),
                                   Pair(std::vector<std::string>{"P05"}, "EXPAND")));
  // The febrile neutropenia ongoing since day 10 is a D4 DLT at DL1.
  EXPECT_EQ(Verdict(evaluation->patients(0).events(0)), "FALSE");
  EXPECT_EQ(evaluation->patients(0).events(0).grade(), 3);
  EXPECT_EQ(Verdict(evaluation->patients(0).events(1)), "TRUE D4");
}

TEST(TrialEscalationTest, WithNothingPendingTheRulesDecideOnTheCounts) {
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(60, "DL2", {
      Clean("P1", "DL2"), WithCrsDlt("P2", "DL2"), Clean("P3", "DL2")}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().decision(), "EXPAND");  // 1 of 3
  EXPECT_THAT(evaluation->escalation().pending(), IsEmpty());
  EXPECT_THAT(evaluation->escalation().by_resolution(), IsEmpty());
}

TEST(TrialEscalationTest, WhenEveryResolutionAgreesThatIsTheDecision) {
  // 6 evaluable at DL2, 2 with a DLT, a third pending: 2 or 3 of 6.
  const int as_of = 60;
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(as_of, "DL2", {
      WithCrsDlt("P1", "DL2"), WithCrsDlt("P2", "DL2"), PendingIcans("P3", "DL2", as_of),
      Clean("P4", "DL2"), Clean("P5", "DL2"), Clean("P6", "DL2")}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().decision(), "DE_ESCALATE");
  EXPECT_THAT(EscalationResolutions(*evaluation),
              UnorderedElementsAre(Pair(kNone, "DE_ESCALATE"),
                                   Pair(std::vector<std::string>{"P3"}, "DE_ESCALATE")));
}

TEST(TrialEscalationTest, TwoPendingPatientsGiveFourResolutions) {
  const int as_of = 60;
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(as_of, "DL2", {
      Clean("P1", "DL2"), PendingIcans("P2", "DL2", as_of),
      PendingIcans("P3", "DL2", as_of)}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().decision(), "INDETERMINATE");
  EXPECT_EQ(evaluation->escalation().pending_size(), 2);
  using Dlts = std::vector<std::string>;
  EXPECT_THAT(EscalationResolutions(*evaluation),
              UnorderedElementsAre(Pair(kNone, "ESCALATE"), Pair(Dlts{"P2"}, "EXPAND"),
                                   Pair(Dlts{"P3"}, "EXPAND"),
                                   Pair(Dlts{"P2", "P3"}, "DE_ESCALATE")));
}

TEST(TrialEscalationTest, APendingPatientStillInTheWindowIsEvaluableOnlyIfItHasADlt) {
  // Two evaluable without a DLT, a third on day 10 with a pending ICANS:
  // no DLT -> 0 of 2 (CONTINUE), a DLT -> 1 of 3 (EXPAND).
  const int as_of = 60;
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(as_of, "DL2", {
      Clean("P1", "DL2"), Clean("P2", "DL2"),
      PendingIcans("P3", "DL2", as_of, /*window_day=*/10)}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().decision(), "INDETERMINATE");
  EXPECT_THAT(EscalationResolutions(*evaluation),
              UnorderedElementsAre(Pair(kNone, "CONTINUE"),
                                   Pair(std::vector<std::string>{"P3"}, "EXPAND")));
}

TEST(TrialEscalationTest, OnlyPendingPatientsAtTheCurrentDoseAreEnumerated) {
  const int as_of = 60;
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(as_of, "DL2", {
      PendingIcans("P1", "DL1", as_of), Clean("P2", "DL2"), Clean("P3", "DL2"),
      Clean("P4", "DL2")}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(TruthName(evaluation->patients(0).dlt()), "UNKNOWN");  // P1 pends at DL1
  EXPECT_EQ(evaluation->escalation().decision(), "ESCALATE");
  EXPECT_THAT(evaluation->escalation().pending(), IsEmpty());
  EXPECT_THAT(evaluation->escalation().by_resolution(), IsEmpty());
}

// ============================================================ 4.3 stopping

TEST(TrialStoppingTest, S1ATreatmentRelatedDeathWithin30DaysTriggers) {
  for (int day : {10, 30}) {
    SCOPED_TRACE(absl::StrCat("death on day ", day));
    absl::StatusOr<pb::TrialEvaluation> evaluation =
        Evaluate(Records(40, "DL1", {Clean("P1", "DL1").DiedOnDay(day, true)}));
    ASSERT_TRUE(evaluation.ok()) << evaluation.status();
    EXPECT_EQ(evaluation->stopping().decision(), "TRIGGERED");
    EXPECT_EQ(StoppingRules(*evaluation)["S1"], "TRUE");
    const auto& deaths = StoppingCount(*evaluation, "n_treatment_related_deaths");
    EXPECT_EQ(deaths.known(), 1);
    EXPECT_THAT(List(deaths.counted()), ElementsAre("P1"));
    EXPECT_THAT(evaluation->stopping().pending(), IsEmpty());
    // A death is not an event: without a grade 5 event it is no DLT.
    EXPECT_EQ(TruthName(evaluation->patients(0).dlt()), "FALSE");
  }
}

TEST(TrialStoppingTest, S1ADeathOnDay31IsNotCounted) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      Evaluate(Records(40, "DL1", {Clean("P1", "DL1").DiedOnDay(31, true)}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->stopping().decision(), "NOT_TRIGGERED");
  EXPECT_EQ(StoppingRules(*evaluation)["S1"], "FALSE");
  EXPECT_EQ(StoppingCount(*evaluation, "n_treatment_related_deaths").known(), 0);
}

TEST(TrialStoppingTest, S1ADeathJudgedNotTreatmentRelatedIsNotCounted) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      Evaluate(Records(40, "DL1", {Clean("P1", "DL1").DiedOnDay(10, false)}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->stopping().decision(), "NOT_TRIGGERED");
  EXPECT_EQ(StoppingRules(*evaluation)["S1"], "FALSE");
}

TEST(TrialStoppingTest, S1UnadjudicatedDeathIsPendingAndEachResolutionIsListed) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      Evaluate(Records(40, "DL1", {Clean("P1", "DL1").DiedOnDay(10, std::nullopt)}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  const pb::StoppingOutcome& stopping = evaluation->stopping();
  EXPECT_EQ(stopping.decision(), "INDETERMINATE");
  EXPECT_THAT(StoppingRules(*evaluation),
              ElementsAre(Pair("S1", "UNKNOWN"), Pair("S2", "FALSE"), Pair("S3", "FALSE")));
  ASSERT_EQ(stopping.pending_size(), 1);
  EXPECT_EQ(stopping.pending(0).subject_ref(), "P1");
  EXPECT_EQ(stopping.pending(0).fact(), "n_treatment_related_deaths");
  const auto& deaths = StoppingCount(*evaluation, "n_treatment_related_deaths");
  EXPECT_EQ(deaths.known(), 0);
  EXPECT_THAT(List(deaths.unknown()), ElementsAre("P1"));
  EXPECT_THAT(StoppingResolutions(*evaluation),
              UnorderedElementsAre(
                  Pair(kNone, "NOT_TRIGGERED"),
                  Pair(std::vector<std::string>{"P1:n_treatment_related_deaths"}, "TRIGGERED")));
}

TEST(TrialStoppingTest, Grade4CrsCountsWhenAtLeastPossiblyRelated) {
  auto crs4 = [](const std::string& attribution) {
    return Event("cytokine_release_syndrome").Grade(4).OnsetDay(3).LastedDays(2)
        .Attribution(attribution);
  };
  // 1 of 3 with grade 4 CRS: P = 0.8192, S2 not triggered.
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(60, "DL1", {
      Clean("P1", "DL1").With(crs4("possible")), Clean("P2", "DL1").With(crs4("unrelated")),
      Clean("P3", "DL1")}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  const auto& crs = StoppingCount(*evaluation, "n_grade4plus_crs");
  EXPECT_EQ(crs.known(), 1);
  EXPECT_THAT(List(crs.counted()), ElementsAre("P1"));
  EXPECT_THAT(List(crs.unknown()), IsEmpty());
  EXPECT_EQ(StoppingCount(*evaluation, "n_infused").known(), 3);
  EXPECT_EQ(StoppingRules(*evaluation)["S2"], "FALSE");
  EXPECT_EQ(evaluation->stopping().decision(), "NOT_TRIGGERED");

  // 2 of 3 (P = 0.9728): S2 triggered.
  evaluation = Evaluate(Records(60, "DL1", {
      Clean("P1", "DL1").With(crs4("possible")), Clean("P2", "DL1").With(crs4("definite")),
      Clean("P3", "DL1")}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(StoppingCount(*evaluation, "n_grade4plus_crs").known(), 2);
  EXPECT_EQ(StoppingRules(*evaluation)["S2"], "TRUE");
  EXPECT_EQ(evaluation->stopping().decision(), "TRIGGERED");
}

TEST(TrialStoppingTest, Grade4CrsAndIcansCountAtAnyTimeNotOnlyInTheDltWindow) {
  // Onset on day 40, outside the DLT window: no DLT, but counted.
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(100, "DL1", {
      Clean("P1", "DL1").With(
          Event("cytokine_release_syndrome").Grade(4).OnsetDay(40).LastedDays(2)),
      Clean("P2", "DL1").With(Event("icans").Grade(4).OnsetDay(40).LastedDays(2)),
      Clean("P3", "DL1")}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(Verdict(evaluation->patients(0).events(0)), "FALSE");
  EXPECT_THAT(List(StoppingCount(*evaluation, "n_grade4plus_crs").counted()), ElementsAre("P1"));
  EXPECT_THAT(List(StoppingCount(*evaluation, "n_grade4plus_icans").counted()), ElementsAre("P2"));
}

TEST(TrialStoppingTest, UnadjudicatedGrade4CrsIsAPendingMembership) {
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(60, "DL1", {
      Clean("P1", "DL1").With(
          Event("cytokine_release_syndrome").Grade(4).OnsetDay(3).LastedDays(2).Unadjudicated()),
      WithCrsDlt("P2", "DL1"), Clean("P3", "DL1")}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  const auto& crs = StoppingCount(*evaluation, "n_grade4plus_crs");
  EXPECT_EQ(crs.known(), 1);
  EXPECT_THAT(List(crs.unknown()), ElementsAre("P1"));
  // 1 of 3 does not trigger S2, 2 of 3 does.
  EXPECT_EQ(StoppingRules(*evaluation)["S2"], "UNKNOWN");
  EXPECT_EQ(evaluation->stopping().decision(), "INDETERMINATE");
  EXPECT_THAT(StoppingResolutions(*evaluation),
              UnorderedElementsAre(
                  Pair(kNone, "NOT_TRIGGERED"),
                  Pair(std::vector<std::string>{"P1:n_grade4plus_crs"}, "TRIGGERED")));
}

// 16 unknown memberships are enumerated (2^16 resolutions); more are not.
std::vector<Patient> UnadjudicatedDeaths(int count) {
  std::vector<Patient> patients;
  for (int i = 0; i < count; ++i) {
    patients.push_back(Clean(absl::StrCat("P", i + 1), "DL1").DiedOnDay(10, std::nullopt));
  }
  return patients;
}

// 2^16 resolutions are decided; only up to 2^10 are listed, so that a few
// kilobytes of records cannot ask for a response of megabytes.
TEST(TrialStoppingTest, SixteenPendingMembershipsAreEnumeratedButNotListed) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      Evaluate(Records(40, "DL1", UnadjudicatedDeaths(16)));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->stopping().pending_size(), 16);
  EXPECT_EQ(evaluation->stopping().resolutions(), 1u << 16);
  EXPECT_EQ(evaluation->stopping().by_resolution_size(), 0);
  evaluation = Evaluate(Records(40, "DL1", UnadjudicatedDeaths(10)));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->stopping().by_resolution_size(), 1 << 10);
  evaluation = Evaluate(Records(40, "DL1", UnadjudicatedDeaths(16)));
  EXPECT_EQ(evaluation->stopping().decision(), "INDETERMINATE");
  EXPECT_EQ(StoppingRules(*evaluation)["S1"], "UNKNOWN");
}

TEST(TrialStoppingTest, MoreThanSixteenPendingMembershipsAreNotEnumerated) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      Evaluate(Records(40, "DL1", UnadjudicatedDeaths(17)));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->stopping().pending_size(), 17);
  EXPECT_THAT(evaluation->stopping().by_resolution(), IsEmpty());
  EXPECT_EQ(evaluation->stopping().decision(), "INDETERMINATE");
  // S1 depends on the deaths; S2 and S3 do not (17 infused, no grade 4).
  EXPECT_THAT(StoppingRules(*evaluation),
              ElementsAre(Pair("S1", "UNKNOWN"), Pair("S2", "FALSE"), Pair("S3", "FALSE")));
}

TEST(TrialStoppingTest, BeyondSixteenRulesNotDependingOnTheUnknownsStillDecide) {
  // 17 unadjudicated grade 4 CRS and one certain treatment-related death:
  // S1 holds whatever the CRS adjudications say (its count has no unknown
  // member), S2 is open. Reading taken: beyond 16 the resolutions are not
  // listed, but the rules are taken over every value the counts could have,
  // so a decision no unknown can change still stands (SAFETY.md 4 says
  // only "beyond that the answer is INDETERMINATE without enumeration").
  std::vector<Patient> patients;
  for (int i = 0; i < 17; ++i) {
    patients.push_back(Clean(absl::StrCat("C", i + 1), "DL1").With(
        Event("cytokine_release_syndrome").Grade(4).OnsetDay(3).LastedDays(2).Unadjudicated()));
  }
  patients.push_back(Clean("DEAD", "DL1").DiedOnDay(10, true));
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(40, "DL1", patients));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_THAT(evaluation->stopping().by_resolution(), IsEmpty());
  EXPECT_THAT(StoppingRules(*evaluation),
              ElementsAre(Pair("S1", "TRUE"), Pair("S2", "UNKNOWN"), Pair("S3", "FALSE")));
  EXPECT_EQ(evaluation->stopping().decision(), "TRIGGERED");
}

TEST(TrialStoppingTest, BeyondSixteenACountsCertainMembersStillDecide) {
  // 17 unadjudicated deaths and one certain: S1 holds however they resolve.
  std::vector<Patient> patients = UnadjudicatedDeaths(17);
  patients.push_back(Clean("DEAD", "DL1").DiedOnDay(10, true));
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(40, "DL1", patients));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_THAT(evaluation->stopping().by_resolution(), IsEmpty());
  EXPECT_THAT(StoppingRules(*evaluation),
              ElementsAre(Pair("S1", "TRUE"), Pair("S2", "FALSE"), Pair("S3", "FALSE")));
  EXPECT_EQ(evaluation->stopping().decision(), "TRIGGERED");
}

TEST(TrialEscalationTest, BeyondSixteenPendingPatientsTheDecisionIsStillTakenOverTheCounts) {
  // 17 evaluable patients at DL2 with a DLT for certain, 17 more pending:
  // 3+3 de-escalates (n_dlt >= 2) whatever the pending ones resolve to, so
  // the decision stands though the 2^17 resolutions are not listed.
  const int as_of = 60;
  std::vector<Patient> patients;
  for (int i = 0; i < 2; ++i) patients.push_back(WithCrsDlt(absl::StrCat("D", i + 1), "DL2"));
  for (int i = 0; i < 17; ++i) {
    patients.push_back(PendingIcans(absl::StrCat("P", i + 1), "DL2", as_of));
  }
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(as_of, "DL2", patients));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().pending_size(), 17);
  EXPECT_THAT(evaluation->escalation().by_resolution(), IsEmpty());
  EXPECT_EQ(evaluation->escalation().decision(), "DE_ESCALATE");
  // One certain DLT among 18: no DLT among the pending gives 1 of 18, which
  // no 3+3 rule decides; two or more give DE_ESCALATE: INDETERMINATE.
  patients.erase(patients.begin());
  evaluation = Evaluate(Records(as_of, "DL2", patients));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().decision(), "INDETERMINATE");
}

// ============================================================ 4.2 BOIN

// At DL1..DL3, `n` evaluable each and `y` of them with a DLT; the current
// dose is `current`. Patients finished the window long ago.
std::vector<Patient> BoinCohorts(std::vector<int> n, std::vector<int> y) {
  std::vector<Patient> patients;
  for (size_t d = 0; d < n.size(); ++d) {
    const std::string dose = absl::StrCat("DL", d + 1);
    for (int i = 0; i < n[d]; ++i) {
      const std::string ref = absl::StrCat(dose, "-", i + 1);
      patients.push_back(i < y[d] ? WithCrsDlt(ref, dose) : Clean(ref, dose));
    }
  }
  return patients;
}

TEST(TrialBoinTest, TheInlineBoinRuleFileLoads) {
  ASSERT_NE(BoinRules(), nullptr);
  EXPECT_TRUE(BoinRules()->definition().boin.has_value());
}

// The design's boundary table is computed at load and hashed with its
// parameters: the version carries the hash, and every answer repeats it.
TEST(TrialBoinTest, TheDesignHashIsComputedAtLoadAndRepeatedInTheAnswer) {
  ASSERT_NE(BoinRules(), nullptr);
  const std::string& sha256 = BoinRules()->definition().boin_sha256;
  EXPECT_EQ(sha256.size(), 64u);
  pb::BoinDesign design;
  design.set_target(0.3);
  EXPECT_EQ(*BoinDesignSha256(design), sha256);
  design.set_target(0.25);
  EXPECT_NE(*BoinDesignSha256(design), sha256);
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      EvaluateBoin(Records(100, "DL1", BoinCohorts({3, 0, 0}, {0, 0, 0}), "T"));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().boin().design_sha256(), sha256);
  design.set_n_earlystop(1001);
  EXPECT_EQ(BoinDesignSha256(design).status().message(), "n_earlystop 1001 is more than 1000");
}

TEST(TrialBoinTest, ContractExample0Of3EscalatesToDose2) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      EvaluateBoin(Records(100, "DL1", BoinCohorts({3, 0, 0}, {0, 0, 0}), "T"));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().design(), "BOIN");
  EXPECT_EQ(evaluation->escalation().decision(), "ESCALATE");
  EXPECT_EQ(evaluation->escalation().boin().next_dose_level(), "DL2");
}

TEST(TrialBoinTest, ContractExample2Of3AtDose2DeEscalatesToDose1) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      EvaluateBoin(Records(100, "DL2", BoinCohorts({3, 3, 0}, {0, 2, 0}), "T"));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  const pb::EscalationOutcome& escalation = evaluation->escalation();
  EXPECT_EQ(escalation.design(), "BOIN");
  EXPECT_EQ(escalation.dose_level(), "DL2");
  EXPECT_EQ(escalation.decision(), "DE_ESCALATE");
  EXPECT_EQ(escalation.boin().next_dose_level(), "DL1");
  EXPECT_THAT(List(escalation.boin().eliminated()), IsEmpty());
  EXPECT_DOUBLE_EQ(escalation.boin().target(), 0.3);
  EXPECT_NEAR(escalation.boin().lambda_e(), 0.2364906852, 1e-10);
  EXPECT_NEAR(escalation.boin().lambda_d(), 0.3585194646, 1e-10);
  // The boundary table for phi = 0.30, n = 1..12.
  std::vector<int> escalate, deescalate;
  for (const pb::BoinBoundaryRow& row : escalation.boin().boundaries()) {
    if (row.n() > 12) break;
    escalate.push_back(row.escalate_max());
    deescalate.push_back(row.deescalate_min());
  }
  EXPECT_EQ(escalate, (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(deescalate, (std::vector<int>{1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5}));
}

TEST(TrialBoinTest, ContractExample3Of3AtDose2EliminatesDoses2And3) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      EvaluateBoin(Records(100, "DL2", BoinCohorts({3, 3, 0}, {0, 3, 0}), "T"));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().decision(), "DE_ESCALATE");
  EXPECT_EQ(evaluation->escalation().boin().next_dose_level(), "DL1");
  EXPECT_THAT(List(evaluation->escalation().boin().eliminated()), ElementsAre("DL2", "DL3"));
}

TEST(TrialBoinTest, ContractExample4Of6AtTheLowestDoseStopsWithNoMtd) {
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      EvaluateBoin(Records(100, "DL1", BoinCohorts({6, 0, 0}, {4, 0, 0}), "T"));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().decision(), "STOP_NO_MTD");
  EXPECT_EQ(evaluation->escalation().boin().next_dose_level(), "");
}

TEST(TrialBoinTest, PendingPatientsAtTheCurrentDoseAreEnumeratedWithBoinDecisions) {
  // DL2: 3 evaluable, 1 with a DLT, and one of the others pending:
  // 1 of 3 (0.33: STAY) or 2 of 3 (0.67: DE_ESCALATE).
  const int as_of = 100;
  std::vector<Patient> patients = BoinCohorts({3, 0, 0}, {0, 0, 0});
  patients.push_back(WithCrsDlt("A", "DL2"));
  patients.push_back(Clean("B", "DL2"));
  patients.push_back(PendingIcans("C", "DL2", as_of));
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      EvaluateBoin(Records(as_of, "DL2", patients, "T"));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  const pb::EscalationOutcome& escalation = evaluation->escalation();
  EXPECT_EQ(escalation.design(), "BOIN");
  EXPECT_EQ(escalation.decision(), "INDETERMINATE");
  ASSERT_EQ(escalation.pending_size(), 1);
  EXPECT_EQ(escalation.pending(0).subject_ref(), "C");
  EXPECT_THAT(EscalationResolutions(*evaluation),
              UnorderedElementsAre(Pair(kNone, "STAY"),
                                   Pair(std::vector<std::string>{"C"}, "DE_ESCALATE")));
  // Indeterminate: no next dose.
  EXPECT_EQ(escalation.boin().next_dose_level(), "");
}

TEST(TrialBoinTest, APendingPatientInTheWindowAddsToNOnlyWithADlt) {
  // DL1: 2 evaluable without a DLT and one on day 10 pending: 0 of 2
  // (ESCALATE) or 1 of 3 (0.33: STAY).
  const int as_of = 100;
  std::vector<Patient> patients = {Clean("A", "DL1"), Clean("B", "DL1"),
                                   PendingIcans("C", "DL1", as_of, /*window_day=*/10)};
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      EvaluateBoin(Records(as_of, "DL1", patients, "T"));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().decision(), "INDETERMINATE");
  EXPECT_THAT(EscalationResolutions(*evaluation),
              UnorderedElementsAre(Pair(kNone, "ESCALATE"),
                                   Pair(std::vector<std::string>{"C"}, "STAY")));
}

// ============================================================ 2. refusals

// A valid single-patient record to break one field of.
pb::TrialRecords OnePatient() {
  return Records(60, "DL1", {Patient("P01", "DL1").InfusedOn(10).With(
                                 Event("icans").Grade(3).OnsetDay(5).LastedDays(2))});
}

void ExpectRefused(const pb::TrialRecords& records, std::vector<std::string> words) {
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(records);
  ASSERT_FALSE(evaluation.ok()) << "not refused: " << records.DebugString();
  EXPECT_EQ(evaluation.status().code(), absl::StatusCode::kInvalidArgument)
      << evaluation.status();
  for (const std::string& word : words) {
    EXPECT_THAT(evaluation.status().message(), HasSubstr(word));
  }
}

TEST(TrialRefusalTest, TheUnbrokenRecordIsAccepted) {
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(OnePatient());
  EXPECT_TRUE(evaluation.ok()) << evaluation.status();
}

TEST(TrialRefusalTest, DatesAfterAsOfDateAreRefused) {
  pb::TrialRecords records = OnePatient();
  records.mutable_patients(0)->mutable_events(0)->set_onset_date(StudyDate(61));
  ExpectRefused(records, {"P01", "onset_date", "after as_of_date"});
  records = OnePatient();
  records.mutable_patients(0)->mutable_events(0)->set_resolution_date(StudyDate(61));
  ExpectRefused(records, {"P01", "resolution_date", "after as_of_date"});
  records = OnePatient();
  records.mutable_patients(0)->set_death_date(StudyDate(61));
  ExpectRefused(records, {"P01", "death_date", "after as_of_date"});
  records = OnePatient();
  records.mutable_patients(0)->set_infusion_date(StudyDate(61));
  ExpectRefused(records, {"P01", "infusion_date", "after as_of_date"});
}

TEST(TrialRefusalTest, AnOnsetBeforeTheInfusionIsRefused) {
  pb::TrialRecords records = OnePatient();
  records.mutable_patients(0)->mutable_events(0)->set_onset_date(StudyDate(9));
  ExpectRefused(records, {"P01", "events[0].onset_date", "before the infusion"});
}

TEST(TrialRefusalTest, AResolutionBeforeTheOnsetIsRefused) {
  pb::TrialRecords records = OnePatient();
  records.mutable_patients(0)->mutable_events(0)->set_resolution_date(StudyDate(14));
  ExpectRefused(records, {"P01", "events[0].resolution_date", "before the onset"});
}

TEST(TrialRefusalTest, ADoseLevelTheProtocolDoesNotHaveIsRefused) {
  pb::TrialRecords records = OnePatient();
  records.mutable_patients(0)->set_dose_level("DL9");
  ExpectRefused(records, {"P01", "dose_level", "DL9"});
  records = OnePatient();
  records.set_current_dose_level("DL9");
  ExpectRefused(records, {"current_dose_level", "DL9"});
}

TEST(TrialRefusalTest, TwoPatientsWithOneSubjectRefAreRefused) {
  pb::TrialRecords records = OnePatient();
  *records.add_patients() = records.patients(0);
  ExpectRefused(records, {"P01", "subject_ref", "patients[1]"});
}

TEST(TrialRefusalTest, AnEventWithNeitherGradeNorObservationsIsRefused) {
  pb::TrialRecords records = OnePatient();
  records.mutable_patients(0)->mutable_events(0)->clear_grade();
  ExpectRefused(records, {"P01", "events[0]", "grade"});
}

TEST(TrialRefusalTest, Grade6IsRefused) {
  pb::TrialRecords records = OnePatient();
  records.mutable_patients(0)->mutable_events(0)->set_grade(6);
  ExpectRefused(records, {"P01", "events[0].grade", "6"});
}

TEST(TrialRefusalTest, AnAttributionOutsideTheFiveWordsIsRefused) {
  pb::TrialRecords records = OnePatient();
  records.mutable_patients(0)->mutable_events(0)->set_attribution("maybe");
  ExpectRefused(records, {"P01", "events[0].attribution", "maybe"});
}

TEST(TrialRefusalTest, AnUngradedTermNoTableGradesIsRefused) {
  pb::TrialRecords records = OnePatient();
  pb::AdverseEventRecord* event = records.mutable_patients(0)->mutable_events(0);
  event->set_term("febrile_neutropenia");
  event->clear_grade();
  pb::FactValue* observation = event->add_observations();
  observation->set_name("temp_c");
  observation->set_number(39.0);
  ExpectRefused(records, {"P01", "events[0]", "febrile_neutropenia"});
}

TEST(TrialRefusalTest, AMissingOnsetDateIsRefused) {
  pb::TrialRecords records = OnePatient();
  records.mutable_patients(0)->mutable_events(0)->clear_onset_date();
  ExpectRefused(records, {"P01", "events[0].onset_date"});
}

TEST(TrialRefusalTest, AnAsOfDateThatIsNotADateIsRefused) {
  pb::TrialRecords records = OnePatient();
  records.set_as_of_date("2020-02-30");
  ExpectRefused(records, {"as_of_date", "2020-02-30"});
  records.set_as_of_date("yesterday");
  ExpectRefused(records, {"as_of_date", "yesterday"});
}

TEST(TrialRefusalTest, AnObservationTheGradingTableRefusesIsRefusedNamingThePatient) {
  // ICANS at age 8: the table holds no CAPD grading (section 1.2).
  ExpectRefused(Records(60, "DL1", {Patient("P01", "DL1").InfusedOn(0).With(
                    Event("icans").OnsetDay(2).LastedDays(1).Number("ice_score", 3)
                        .Number("age_years", 8))}),
                {"P01", "events[0].observations", "age_years"});
}

// A table the rule set names but the caller did not load is the server's
// fault, not the record's.
TEST(TrialRefusalTest, AGradingTableTheRuleSetNamesButIsNotLoadedIsAFailedPrecondition) {
  absl::StatusOr<pb::TrialEvaluation> evaluation = EvaluateTrial(
      *Nct04094766(), {},
      Records(60, "DL1", {Patient("P01", "DL1").InfusedOn(0).With(ContractCrs())}));
  ASSERT_FALSE(evaluation.ok());
  EXPECT_EQ(evaluation.status().code(), absl::StatusCode::kFailedPrecondition)
      << evaluation.status();
}

TEST(TrialRefusalTest, ARuleSetWithoutADltDefinitionIsAFailedPrecondition) {
  const std::shared_ptr<const RuleSet> rules = testing::LoadBundled("NCT03671460-v1.0.textproto");
  ASSERT_NE(rules, nullptr);
  ASSERT_FALSE(rules->definition().dlt.has_value());
  pb::TrialRecords records = OnePatient();
  records.set_protocol_id(rules->protocol_id());
  absl::StatusOr<pb::TrialEvaluation> evaluation = EvaluateTrial(*rules, {}, records);
  ASSERT_FALSE(evaluation.ok());
  EXPECT_EQ(evaluation.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(evaluation.status().message(), HasSubstr("dlt"));
}

// ============================================================ checker

// NCT04094766 v1.0 with `from` (which must occur once) replaced by `to`;
// the problems of loading it, as text.
std::string ProblemsOfEdited(const std::string& from, const std::string& to) {
  const std::string text =
      testing::ReadFile(testing::SourcePath("rules/NCT04094766-v1.0.textproto"));
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(text.find(from, at + 1), std::string::npos) << "more than one " << from;
  if (at == std::string::npos) return "";
  std::string edited = text;
  edited.replace(at, from.size(), to);
  const LoadResult result = LoadRuleSet(edited, "edited.textproto");
  EXPECT_EQ(result.rule_set, nullptr);
  std::vector<std::string> problems;
  for (const Problem& problem : result.problems) problems.push_back(problem.ToString());
  return absl::StrJoin(problems, "\n");
}

TEST(TrialCheckTest, ADltWindowEndingBeforeItStartsIsRefused) {
  EXPECT_THAT(ProblemsOfEdited("window_first_day: 0\n  window_last_day: 28",
                               "window_first_day: 10\n  window_last_day: 5"),
              AllOf(HasSubstr("window_first_day 10"), HasSubstr("window_last_day 5")));
}

TEST(TrialCheckTest, ADltCriterionMinGrade7IsRefused) {
  EXPECT_THAT(ProblemsOfEdited("criteria { id: \"D1\" text: \"Grade 5 (any term)\" min_grade: 5 }",
                               "criteria { id: \"D1\" text: \"Grade 7\" min_grade: 7 }"),
              AllOf(HasSubstr("D1"), HasSubstr("min_grade 7")));
}

TEST(TrialCheckTest, ADltAttributionOutsideTheFiveWordsIsRefused) {
  EXPECT_THAT(ProblemsOfEdited("related_attributions: [\"possible\", \"probable\", \"definite\"]",
                               "related_attributions: [\"maybe\", \"probable\", \"definite\"]"),
              AllOf(HasSubstr("related_attributions"), HasSubstr("\"maybe\"")));
}

TEST(TrialCheckTest, ADuplicateDltCriterionIdIsRefused) {
  EXPECT_THAT(ProblemsOfEdited("criteria { id: \"D2\"", "criteria { id: \"D1\""),
              AllOf(HasSubstr("\"D1\""), HasSubstr("repeated")));
}

TEST(TrialCheckTest, ARecordCountOfAnUndeclaredFactIsRefused) {
  EXPECT_THAT(ProblemsOfEdited("record_counts { fact: \"n_infused\" infused {} }",
                               "record_counts { fact: \"n_infused\" infused {} }\n"
                               "record_counts { fact: \"n_nobody\" infused {} }"),
              AllOf(HasSubstr("n_nobody"), HasSubstr("not a NUMBER fact")));
}

TEST(TrialCheckTest, ABoinTargetOutsideFivePercentTo60PercentIsRefused) {
  EXPECT_THAT(ProblemsOfEdited("record_counts { fact: \"n_infused\" infused {} }",
                               "record_counts { fact: \"n_infused\" infused {} }\n"
                               "boin { target: 0.9 }"),
              AllOf(HasSubstr("boin"), HasSubstr("0.9")));
}

TEST(TrialCheckTest, EscalationRulesWithoutTheirCountsAreRefused) {
  EXPECT_THAT(ProblemsOfEdited("record_counts { fact: \"n_treated\" evaluable_at_current_dose {} }",
                               ""),
              HasSubstr("record_counts for evaluable_at_current_dose and dlts_at_current_dose"));
}

TEST(TrialCheckTest, BoinBesideEscalationRulesIsRefused) {
  EXPECT_THAT(ProblemsOfEdited("record_counts { fact: \"n_infused\" infused {} }",
                               "record_counts { fact: \"n_infused\" infused {} }\n"
                               "boin { target: 0.3 }"),
              HasSubstr("boin and escalation rules would both decide escalation"));
}

// An event still open when the patient died lasted until the death.
TEST(TrialDltTest, AnEventOpenAtDeathLastedUntilTheDeath) {
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(
      100, "DL1", {Patient("P01", "DL1").InfusedOn(0).DiedOnDay(7, false).With(
                      Event("icans").Grade(3).OnsetDay(5).Attribution("probable"))}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->patients(0).events(0).dlt(), pb::TRUTH_FALSE) << "2 days, not more than 3";
  evaluation = Evaluate(Records(
      100, "DL1", {Patient("P01", "DL1").InfusedOn(0).DiedOnDay(9, false).With(
                      Event("icans").Grade(3).OnsetDay(5).Attribution("probable"))}));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->patients(0).events(0).criterion(), "D3");
}

TEST(TrialRefusalTest, DeathRelatednessWithoutADeathAndEventsAfterDeathAreRefused) {
  pb::TrialRecords records =
      Records(100, "DL1", {Patient("P01", "DL1").InfusedOn(0).DiedOnDay(9, true)});
  records.mutable_patients(0)->clear_death_date();
  ExpectRefused(records, {"P01", "death_treatment_related", "without a death_date"});
  ExpectRefused(Records(100, "DL1", {Patient("P01", "DL1").InfusedOn(0).DiedOnDay(9, true).With(
                                        Event("nausea").Grade(2).OnsetDay(12))}),
                {"P01", "events[0].onset_date", "after the death_date"});
}

// BOIN eliminates from every dose's counts: a DLT pending at DL2 decides
// whether DL1 may escalate (DL2 at 3 of 3 is eliminated), though the
// current dose has nothing pending.
TEST(TrialBoinTest, APendingDltAtAnotherDoseLeavesTheDecisionOpen) {
  std::vector<Patient> patients = BoinCohorts({3, 2, 0}, {0, 2, 0});
  patients.push_back(Patient("X", "DL2").InfusedOn(0).With(
      Event("cytokine_release_syndrome").Grade(4).OnsetDay(3).LastedDays(2).Unadjudicated()));
  absl::StatusOr<pb::TrialEvaluation> evaluation =
      EvaluateBoin(Records(100, "DL1", patients, "T"));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().pending_size(), 1);
  EXPECT_EQ(evaluation->escalation().decision(), "INDETERMINATE");
  ASSERT_EQ(evaluation->escalation().by_resolution_size(), 2);
  EXPECT_EQ(evaluation->escalation().by_resolution(0).decision(), "ESCALATE");
  EXPECT_EQ(evaluation->escalation().by_resolution(1).decision(), "STAY");
  EXPECT_EQ(evaluation->escalation().boin().next_dose_level(), "");
  EXPECT_THAT(evaluation->escalation().boin().possibly_eliminated(), ElementsAre("DL2", "DL3"));
}

// Thousands of pending patients cost a bounded amount of work: beyond
// 4,096 count combinations the decision is left INDETERMINATE.
TEST(TrialEscalationTest, ThousandsOfPendingPatientsAreBounded) {
  const int as_of = 100;
  std::vector<Patient> patients;
  for (int i = 0; i < 2000; ++i) {
    patients.push_back(PendingIcans(absl::StrCat("P", i), "DL2", as_of,
                                    /*window_day=*/i % 2 == 0 ? 10 : 30));
  }
  absl::StatusOr<pb::TrialEvaluation> evaluation = Evaluate(Records(as_of, "DL2", patients));
  ASSERT_TRUE(evaluation.ok()) << evaluation.status();
  EXPECT_EQ(evaluation->escalation().decision(), "INDETERMINATE");
  EXPECT_EQ(evaluation->escalation().resolutions(), 0u);
  EXPECT_THAT(evaluation->escalation().by_resolution(), IsEmpty());
}

}  // namespace
}  // namespace trialrules
