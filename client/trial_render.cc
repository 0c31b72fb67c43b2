#include "client/trial_render.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "service/util/json.h"
#include "service/util/number_text.h"

namespace trialrules {
namespace {

std::string TruthName(v1::Truth truth) {
  switch (truth) {
    case v1::TRUTH_TRUE: return "TRUE";
    case v1::TRUTH_FALSE: return "FALSE";
    default: return "UNKNOWN";
  }
}

std::string QuotedOrNull(const std::string& text) {
  return text.empty() ? "null" : JsonQuote(text);
}

template <typename Strings>
std::string List(const Strings& items) {
  return JsonList(std::vector<std::string>(items.begin(), items.end()));
}

std::string Number(double value) { return ShortestNumber(value); }

std::string EventJson(const v1::EventAssessment& event) {
  return absl::StrCat(
      "{\"term\":", JsonQuote(event.term()),
      ",\"grade\":", event.grade_known() ? absl::StrCat(event.grade()) : "null",
      ",\"grade_min\":", event.grade_min(), ",\"grade_max\":", event.grade_max(),
      ",\"dlt\":", JsonQuote(TruthName(event.dlt())), ",\"criterion\":", QuotedOrNull(event.criterion()),
      ",\"cleared_if\":", List(event.cleared_if()), "}");
}

std::string BoinJson(const v1::BoinOutcome& boin) {
  std::vector<std::string> rows;
  for (const v1::BoinBoundaryRow& row : boin.boundaries()) {
    rows.push_back(absl::StrCat(
        "{\"n\":", row.n(), ",\"escalate_max\":", row.escalate_max(),
        ",\"deescalate_min\":", row.deescalate_min(), ",\"eliminate_min\":",
        row.has_eliminate_min() ? absl::StrCat(row.eliminate_min()) : "null", "}"));
  }
  std::vector<std::string> estimates;
  for (const v1::BoinOutcome::Estimate& estimate : boin.estimates()) {
    estimates.push_back(absl::StrCat("{\"dose_level\":", JsonQuote(estimate.dose_level()),
                                     ",\"estimate\":",
                                     estimate.has_estimate() ? Number(estimate.estimate()) : "null",
                                     "}"));
  }
  return absl::StrCat(
      "{\"target\":", Number(boin.target()), ",\"lambda_e\":", absl::StrFormat("%.10f", boin.lambda_e()),
      ",\"lambda_d\":", absl::StrFormat("%.10f", boin.lambda_d()),
      ",\"design_sha256\":", JsonQuote(boin.design_sha256()),
      ",\"boundaries\":[", absl::StrJoin(rows, ","), "]",
      ",\"next_dose_level\":", QuotedOrNull(boin.next_dose_level()),
      ",\"eliminated\":", List(boin.eliminated()),
      ",\"possibly_eliminated\":", List(boin.possibly_eliminated()), ",\"mtd\":", QuotedOrNull(boin.mtd()),
      ",\"estimates\":[", absl::StrJoin(estimates, ","), "]}");
}

std::string MembershipJson(const v1::StoppingOutcome::Membership& m) {
  return absl::StrCat("{\"subject_ref\":", JsonQuote(m.subject_ref()), ",\"fact\":", JsonQuote(m.fact()),
                      "}");
}

// What makes a pending patient's DLT FALSE: every undecided event cleared.
std::string ClearingOf(const v1::EscalationOutcome& escalation, const std::string& subject) {
  std::vector<std::string> events;
  for (const v1::PendingEvent& pending : escalation.pending()) {
    if (pending.subject_ref() != subject) continue;
    events.push_back(absl::StrCat(subject, "'s ", pending.term(), " ",
                                  absl::StrJoin(pending.cleared_if(), ", or ")));
  }
  return absl::StrJoin(events, " and ");
}

// "DE_ESCALATE", or with BOIN's eliminations "DE_ESCALATE (DL2-DL5 eliminated)".
std::string ResolutionText(const v1::EscalationOutcome::Resolution& resolution) {
  if (resolution.eliminated().empty()) return resolution.decision();
  const std::string& first = resolution.eliminated(0);
  const std::string& last = *resolution.eliminated().rbegin();
  return absl::StrCat(resolution.decision(), " (", first == last ? first : absl::StrCat(first, "-", last),
                      " eliminated)");
}

}  // namespace

std::string RenderTrialJson(const v1::TrialEvaluation& evaluation) {
  std::vector<std::string> patients;
  for (const v1::PatientAssessment& patient : evaluation.patients()) {
    patients.push_back(absl::StrCat(
        "{\"subject_ref\":", JsonQuote(patient.subject_ref()),
        ",\"dose_level\":", JsonQuote(patient.dose_level()), ",\"dlt\":", JsonQuote(TruthName(patient.dlt())),
        ",\"evaluable\":", JsonQuote(TruthName(patient.evaluable())), ",\"events\":["));
    std::vector<std::string> events;
    for (const v1::EventAssessment& event : patient.events()) {
      events.push_back(EventJson(event));
    }
    absl::StrAppend(&patients.back(), absl::StrJoin(events, ","), "]}");
  }
  std::vector<std::string> doses;
  for (const v1::DoseLevelCounts& dose : evaluation.dose_levels()) {
    doses.push_back(absl::StrCat(
        "{\"id\":", JsonQuote(dose.id()), ",\"n_infused\":", dose.n_infused(),
        ",\"n_evaluable\":", dose.n_evaluable(), ",\"n_dlt\":", dose.n_dlt(),
        ",\"n_dlt_unknown\":", dose.n_dlt_unknown(), ",\"infused\":", List(dose.infused()),
        ",\"evaluable\":", List(dose.evaluable()), ",\"dlt\":", List(dose.with_dlt()),
        ",\"dlt_unknown\":", List(dose.dlt_unknown()), "}"));
  }
  const v1::EscalationOutcome& escalation = evaluation.escalation();
  std::vector<std::string> pending;
  for (const v1::PendingEvent& p : escalation.pending()) {
    pending.push_back(absl::StrCat("{\"subject_ref\":", JsonQuote(p.subject_ref()),
                                   ",\"event\":", p.event(), ",\"term\":", JsonQuote(p.term()),
                                   ",\"cleared_if\":", List(p.cleared_if()), "}"));
  }
  std::vector<std::string> resolutions;
  for (const v1::EscalationOutcome::Resolution& r : escalation.by_resolution()) {
    resolutions.push_back(absl::StrCat("{\"dlt\":", List(r.dlt()),
                                       ",\"decision\":", JsonQuote(r.decision()),
                                       escalation.has_boin()
                                           ? absl::StrCat(",\"next_dose_level\":",
                                                          QuotedOrNull(r.next_dose_level()),
                                                          ",\"eliminated\":", List(r.eliminated()),
                                                          ",\"mtd\":", QuotedOrNull(r.mtd()))
                                           : "",
                                       "}"));
  }
  std::string out = absl::StrCat(
      "{\"protocol_id\":", JsonQuote(evaluation.protocol_id()), ",\"version\":",
      JsonQuote(evaluation.version()), ",\"sha256\":", JsonQuote(evaluation.sha256()),
      ",\"as_of_date\":", JsonQuote(evaluation.as_of_date()), ",\"patients\":[",
      absl::StrJoin(patients, ","), "],\"dose_levels\":[", absl::StrJoin(doses, ","),
      "],\"escalation\":{\"design\":", JsonQuote(escalation.design()),
      ",\"dose_level\":", JsonQuote(escalation.dose_level()),
      ",\"decision\":", JsonQuote(escalation.decision()),
      ",\"resolutions\":", escalation.resolutions(), ",\"pending\":[",
      absl::StrJoin(pending, ","), "],\"by_resolution\":[", absl::StrJoin(resolutions, ","), "]");
  if (escalation.has_boin()) absl::StrAppend(&out, ",\"boin\":", BoinJson(escalation.boin()));
  out += "}";

  const v1::StoppingOutcome& stopping = evaluation.stopping();
  std::vector<std::string> rules;
  for (const v1::StoppingOutcome::RuleTruth& rule : stopping.rules()) {
    rules.push_back(absl::StrCat(JsonQuote(rule.id()), ":", JsonQuote(TruthName(rule.outcome()))));
  }
  std::vector<std::string> counts;
  for (const v1::StoppingOutcome::Count& count : stopping.counts()) {
    counts.push_back(absl::StrCat("{\"fact\":", JsonQuote(count.fact()), ",\"known\":", count.known(),
                                  ",\"counted\":", List(count.counted()),
                                  ",\"unknown\":", List(count.unknown()), "}"));
  }
  std::vector<std::string> memberships;
  for (const auto& m : stopping.pending()) memberships.push_back(MembershipJson(m));
  std::vector<std::string> stop_resolutions;
  for (const v1::StoppingOutcome::Resolution& r : stopping.by_resolution()) {
    std::vector<std::string> counted;
    for (const auto& m : r.counted()) counted.push_back(MembershipJson(m));
    stop_resolutions.push_back(absl::StrCat("{\"counted\":[", absl::StrJoin(counted, ","),
                                            "],\"decision\":", JsonQuote(r.decision()), "}"));
  }
  absl::StrAppend(&out, ",\"stopping\":{\"decision\":", QuotedOrNull(stopping.decision()),
                  ",\"rules\":{", absl::StrJoin(rules, ","), "},\"counts\":[",
                  absl::StrJoin(counts, ","), "],\"pending\":[", absl::StrJoin(memberships, ","),
                  "],\"resolutions\":", stopping.resolutions(), ",\"by_resolution\":[",
                  absl::StrJoin(stop_resolutions, ","), "]}}\n");
  return out;
}

std::string RenderTrialText(const v1::TrialEvaluation& evaluation) {
  std::string out = absl::StrCat(evaluation.protocol_id(), " version ", evaluation.version(),
                                 " (sha256 ", evaluation.sha256(), "), records as of ",
                                 evaluation.as_of_date(), "\n\n");
  size_t subject_width = 7;
  size_t dose_width = 4;
  for (const v1::PatientAssessment& patient : evaluation.patients()) {
    subject_width = std::max(subject_width, patient.subject_ref().size());
    dose_width = std::max(dose_width, patient.dose_level().size());
  }
  absl::StrAppendFormat(&out, "%-*s  %-*s  %-7s  %-9s  %s\n", subject_width, "PATIENT", dose_width,
                        "DOSE", "DLT", "EVALUABLE", "EVENTS");
  for (const v1::PatientAssessment& patient : evaluation.patients()) {
    std::vector<std::string> events;
    for (const v1::EventAssessment& event : patient.events()) {
      std::string grade = event.grade_known()
                              ? absl::StrCat("grade ", event.grade())
                              : absl::StrCat("grade ", event.grade_min(), "-", event.grade_max());
      std::string verdict = event.dlt() == v1::TRUTH_TRUE    ? absl::StrCat("DLT (", event.criterion(), ")")
                            : event.dlt() == v1::TRUTH_FALSE ? std::string("no DLT")
                                                             : absl::StrCat("pending: not a DLT if it ",
                                                                            absl::StrJoin(event.cleared_if(), ", or "));
      events.push_back(absl::StrCat(event.term(), " ", grade, ": ", verdict));
    }
    absl::StrAppendFormat(&out, "%-*s  %-*s  %-7s  %-9s  %s\n", subject_width,
                          patient.subject_ref(), dose_width, patient.dose_level(),
                          TruthName(patient.dlt()), TruthName(patient.evaluable()),
                          events.empty() ? "-" : absl::StrJoin(events, "; "));
  }
  out += "\n";
  absl::StrAppendFormat(&out, "%-*s  %7s  %9s  %3s  %11s\n", dose_width, "DOSE", "INFUSED",
                        "EVALUABLE", "DLT", "DLT UNKNOWN");
  for (const v1::DoseLevelCounts& dose : evaluation.dose_levels()) {
    absl::StrAppendFormat(&out, "%-*s  %7d  %9d  %3d  %11d\n", dose_width, dose.id(),
                          dose.n_infused(), dose.n_evaluable(), dose.n_dlt(), dose.n_dlt_unknown());
  }

  const v1::EscalationOutcome& escalation = evaluation.escalation();
  absl::StrAppend(&out, "\nescalation at ", escalation.dose_level(), " (", escalation.design(),
                  "): ", escalation.decision(), "\n");
  std::vector<std::string> subjects;
  for (const v1::PendingEvent& p : escalation.pending()) {
    if (std::find(subjects.begin(), subjects.end(), p.subject_ref()) == subjects.end()) {
      subjects.push_back(p.subject_ref());
    }
  }
  if (subjects.size() == 1 && escalation.by_resolution_size() == 2) {
    const std::string without = ResolutionText(escalation.by_resolution(0));
    const std::string with = ResolutionText(escalation.by_resolution(1));
    if (without != with) {
      absl::StrAppend(&out, "  ", without, " if ", ClearingOf(escalation, subjects[0]), "; ",
                      with, " otherwise\n");
    } else {
      absl::StrAppend(&out, "  ", without, " whether or not ", subjects[0], " has a DLT\n");
    }
  } else if (!subjects.empty()) {
    for (const std::string& subject : subjects) {
      absl::StrAppend(&out, "  ", subject, " has no DLT if ", ClearingOf(escalation, subject), "\n");
    }
    for (const v1::EscalationOutcome::Resolution& r : escalation.by_resolution()) {
      absl::StrAppend(&out, "  with a DLT: ", r.dlt().empty() ? "none" : absl::StrJoin(r.dlt(), ", "),
                      " -> ", ResolutionText(r), "\n");
    }
    if (escalation.by_resolution().empty()) {
      absl::StrAppend(&out, "  decided over ", escalation.resolutions(),
                      " resolutions of ", subjects.size(), " pending patients (not listed)\n");
    }
  }
  if (escalation.has_boin()) {
    const v1::BoinOutcome& boin = escalation.boin();
    absl::StrAppend(&out, "  BOIN target ", Number(boin.target()), ": escalate if y/n <= ",
                    absl::StrFormat("%.4f", boin.lambda_e()), ", de-escalate if y/n > ",
                    absl::StrFormat("%.4f", boin.lambda_d()), "\n");
    if (!boin.next_dose_level().empty()) {
      absl::StrAppend(&out, "  next dose level: ", boin.next_dose_level(), "\n");
    }
    if (!boin.eliminated().empty()) {
      absl::StrAppend(&out, "  eliminated: ", absl::StrJoin(boin.eliminated(), ", "), "\n");
    }
    if (!boin.possibly_eliminated().empty()) {
      absl::StrAppend(&out, "  eliminated in some resolutions: ",
                      absl::StrJoin(boin.possibly_eliminated(), ", "), "\n");
    }
    if (escalation.decision() == "STOP_SELECT_MTD") {
      absl::StrAppend(&out, "  MTD: ", boin.mtd().empty() ? "none" : boin.mtd(), "\n");
    }
  }

  const v1::StoppingOutcome& stopping = evaluation.stopping();
  if (!stopping.decision().empty()) {
    std::vector<std::string> rules;
    for (const auto& rule : stopping.rules()) {
      rules.push_back(absl::StrCat(rule.id(), " ", TruthName(rule.outcome())));
    }
    std::vector<std::string> counts;
    for (const auto& count : stopping.counts()) {
      counts.push_back(count.unknown().empty()
                           ? absl::StrCat(count.fact(), " ", count.known())
                           : absl::StrCat(count.fact(), " ", count.known(), "-",
                                          count.known() + count.unknown_size()));
    }
    absl::StrAppend(&out, "stopping: ", stopping.decision(), " (", absl::StrJoin(rules, ", "),
                    ")\n  from ", absl::StrJoin(counts, ", "), "\n");
    std::map<std::string, int> by_decision;
    for (const auto& r : stopping.by_resolution()) ++by_decision[r.decision()];
    if (stopping.pending_size() == 1 && by_decision.size() > 1) {
      const auto& pending = stopping.pending(0);
      absl::StrAppend(&out, "  ", stopping.by_resolution(1).decision(), " if ",
                      pending.subject_ref(), " counts in ", pending.fact(), "; ",
                      stopping.by_resolution(0).decision(), " otherwise\n");
    } else if (by_decision.size() > 1) {
      std::vector<std::string> parts;
      for (const auto& [decision, n] : by_decision) {
        parts.push_back(absl::StrCat(decision, " in ", n));
      }
      std::vector<std::string> pending;
      for (const auto& m : stopping.pending()) {
        pending.push_back(absl::StrCat(m.subject_ref(), " in ", m.fact()));
      }
      absl::StrAppend(&out, "  pending: ", absl::StrJoin(pending, ", "), "; of ",
                      stopping.by_resolution_size(), " resolutions: ", absl::StrJoin(parts, ", "),
                      "\n");
    }
  }
  return out;
}

}  // namespace trialrules
