// `trialrules design boin`: a BOIN design's boundaries and, from per-dose
// counts, its next-dose decision and MTD selection (service/engine/boin.h).
// Offline: the design is arithmetic on its parameters, no rule file.
#include <algorithm>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/args.h"
#include "service/engine/boin.h"
#include "service/util/number_text.h"

namespace trialrules::cli {
namespace {

constexpr char kUsage[] =
    "usage: trialrules design boin --target PHI [--phi1 X] [--phi2 Y] [--n-earlystop N]\n"
    "         [--n N1,N2,... --y Y1,Y2,... --current DOSE [--select-mtd]] [--max-n N] [--json]\n"
    "  --target      target DLT rate phi (0.05 to 0.6)\n"
    "  --phi1/--phi2 highest rate deemed subtherapeutic / lowest deemed overly toxic\n"
    "                (default 0.6 phi and 1.4 phi)\n"
    "  --n-earlystop patients at one dose that end the trial (default 100)\n"
    "  --n, --y      evaluable patients and patients with a DLT per dose, lowest first\n"
    "  --current     the dose now given, from 1; decides the next dose\n"
    "  --select-mtd  also select the MTD from the counts\n"
    "  --max-n       boundary rows up to this n (at least 12 and the largest n treated)\n";

// Rows and counts beyond this many patients at one dose are refused: far
// past any phase I cohort, and the table's cost grows with its square.
constexpr int kMaxPatients = 1000;
constexpr int kMinRows = 12;

int Fail(absl::string_view message) {
  std::cerr << "error: " << message << "\n";
  return kExitProblems;
}

absl::StatusOr<double> NumberFlag(const Args& args, const std::string& name) {
  double value = 0;
  if (!absl::SimpleAtod(args.Get(name), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " \"", args.Get(name), "\" is not a number"));
  }
  return value;
}

absl::StatusOr<int> WholeFlag(const Args& args, const std::string& name) {
  int value = 0;
  if (!absl::SimpleAtoi(args.Get(name), &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " \"", args.Get(name), "\" is not a whole number"));
  }
  return value;
}

// "3,3,0": one whole number from 0 to kMaxPatients per dose.
absl::StatusOr<std::vector<int>> CountsFlag(const Args& args, const std::string& name) {
  std::vector<int> counts;
  for (absl::string_view item : absl::StrSplit(args.Get(name), ',')) {
    int value = 0;
    if (!absl::SimpleAtoi(item, &value)) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " \"", args.Get(name), "\": \"",
                                                     item, "\" is not a whole number"));
    }
    if (value < 0 || value > kMaxPatients) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " \"", args.Get(name),
                                                     "\": ", value, " is not 0 to ", kMaxPatients));
    }
    counts.push_back(value);
  }
  return counts;
}

absl::StatusOr<BoinDesign> DesignOf(const Args& args) {
  BoinParameters parameters;
  absl::StatusOr<double> target = NumberFlag(args, "target");
  if (!target.ok()) return target.status();
  parameters.target = *target;
  for (auto [name, field] : {std::pair{"phi1", &parameters.phi1}, {"phi2", &parameters.phi2}}) {
    if (args.Get(name).empty()) continue;
    absl::StatusOr<double> value = NumberFlag(args, name);
    if (!value.ok()) return value.status();
    *field = *value;
  }
  if (!args.Get("n-earlystop").empty()) {
    absl::StatusOr<int> n_earlystop = WholeFlag(args, "n-earlystop");
    if (!n_earlystop.ok()) return n_earlystop.status();
    parameters.n_earlystop = *n_earlystop;
  }
  return BoinDesign::Create(parameters);
}

// What the counts give, when there are counts.
struct Answer {
  std::vector<BoinDoseCounts> counts;
  int current = 0;
  BoinDecision decision;
  std::optional<MtdSelection> selection;
};

absl::StatusOr<Answer> AnswerOf(const Args& args, const BoinDesign& design) {
  absl::StatusOr<std::vector<int>> n = CountsFlag(args, "n");
  if (!n.ok()) return n.status();
  absl::StatusOr<std::vector<int>> y = CountsFlag(args, "y");
  if (!y.ok()) return y.status();
  if (n->size() != y->size()) {
    return absl::InvalidArgumentError(absl::StrCat("--n \"", args.Get("n"), "\" has ", n->size(),
                                                   " doses and --y \"", args.Get("y"), "\" has ",
                                                   y->size()));
  }
  absl::StatusOr<int> current = WholeFlag(args, "current");
  if (!current.ok()) return current.status();
  if (*current < 1 || *current > static_cast<int>(n->size())) {
    return absl::InvalidArgumentError(absl::StrCat("--current ", *current, ": not one of the ",
                                                   n->size(), " doses (1 to ", n->size(), ")"));
  }
  Answer answer;
  for (size_t d = 0; d < n->size(); ++d) answer.counts.push_back({(*n)[d], (*y)[d]});
  answer.current = *current - 1;
  absl::StatusOr<BoinDecision> decision = design.Decide(answer.counts, answer.current);
  if (!decision.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--n/--y: ", decision.status().message()));
  }
  answer.decision = *std::move(decision);
  if (args.Has("select-mtd")) {
    absl::StatusOr<MtdSelection> selection = design.SelectMtd(answer.counts);
    if (!selection.ok()) return selection.status();
    answer.selection = *std::move(selection);
  }
  return answer;
}

std::string Estimate(double value) { return absl::StrFormat("%.10g", value); }

std::string Json(const BoinDesign& design, const std::vector<BoinBoundary>& rows,
                 const std::optional<Answer>& answer) {
  std::string out = absl::StrFormat("{\"lambda_e\":%.10f,\"lambda_d\":%.10f,\"boundaries\":[",
                                    design.lambda_e(), design.lambda_d());
  for (size_t i = 0; i < rows.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", "{\"n\":", rows[i].n,
                    ",\"escalate_max\":", rows[i].escalate_max,
                    ",\"deescalate_min\":", rows[i].deescalate_min, ",\"eliminate_min\":",
                    rows[i].eliminate_min ? absl::StrCat(*rows[i].eliminate_min) : "null", "}");
  }
  out += "]";
  if (answer) {
    const BoinDecision& decision = answer->decision;
    std::vector<int> eliminated;
    for (int d : decision.eliminated) eliminated.push_back(d + 1);
    absl::StrAppend(&out, ",\"decision\":\"", BoinActionName(decision.action), "\",\"next_dose\":",
                    decision.next_dose ? absl::StrCat(*decision.next_dose + 1) : "null",
                    ",\"eliminated\":[", absl::StrJoin(eliminated, ","), "]");
    std::string mtd = "null";
    std::vector<std::string> estimates;
    if (answer->selection) {
      if (answer->selection->mtd) mtd = absl::StrCat(*answer->selection->mtd + 1);
      for (const std::optional<double>& e : answer->selection->estimates) {
        estimates.push_back(e ? Estimate(*e) : "null");
      }
    }
    absl::StrAppend(&out, ",\"mtd\":", mtd, ",\"estimates\":[", absl::StrJoin(estimates, ","), "]");
  }
  return out + "}\n";
}

// "dose 3", "doses 2 and 3", "doses 1, 2 and 3" (1-based).
std::string DoseList(const std::vector<int>& doses) {
  std::vector<std::string> names;
  for (int d : doses) names.push_back(absl::StrCat(d + 1));
  if (names.size() == 1) return absl::StrCat("dose ", names[0]);
  const std::string last = names.back();
  names.pop_back();
  return absl::StrCat("doses ", absl::StrJoin(names, ", "), " and ", last);
}

std::string Sentence(const BoinDesign& design, const Answer& answer) {
  const BoinDecision& decision = answer.decision;
  std::string text(BoinActionName(decision.action));
  switch (decision.action) {
    case BoinAction::kEscalate:
    case BoinAction::kDeEscalate:
      absl::StrAppend(&text, " to dose ", *decision.next_dose + 1);
      break;
    case BoinAction::kStay: absl::StrAppend(&text, " at dose ", *decision.next_dose + 1); break;
    case BoinAction::kStopNoMtd: text += ": the lowest dose is eliminated"; break;
    case BoinAction::kStopSelectMtd:
      absl::StrAppend(&text, ": ", answer.counts[answer.current].n, " patients at dose ",
                      answer.current + 1, " reach n_earlystop ", design.n_earlystop());
      break;
  }
  if (!decision.eliminated.empty()) {
    absl::StrAppend(&text, "; ", DoseList(decision.eliminated), " eliminated");
  }
  return text;
}

std::string Text(const BoinDesign& design, const std::vector<BoinBoundary>& rows,
                 const std::optional<Answer>& answer) {
  std::string out =
      absl::StrCat("BOIN design: target ", ShortestNumber(design.phi()), ", phi1 ",
                   ShortestNumber(design.phi1()), ", phi2 ", ShortestNumber(design.phi2()),
                   ", n_earlystop ", design.n_earlystop(), ", elimination cut-off ",
                   ShortestNumber(design.elimination_cutoff()), "\n",
                   absl::StrFormat("lambda_e %.10f  escalate when y/n <= lambda_e\n"
                                   "lambda_d %.10f  de-escalate when y/n > lambda_d\n\n",
                                   design.lambda_e(), design.lambda_d()),
                   "   n  escalate if y <=  de-escalate if y >=  eliminate if y >=\n");
  for (const BoinBoundary& row : rows) {
    absl::StrAppend(
        &out,
        absl::StrFormat("%4d  %16d  %19d  %17s\n", row.n, row.escalate_max, row.deescalate_min,
                        row.eliminate_min ? absl::StrCat(*row.eliminate_min) : std::string("-")));
  }
  if (!answer) return out;
  const bool estimates = answer->selection.has_value();
  const std::string overdose = absl::StrCat("Pr(p > ", ShortestNumber(design.phi()), ")");
  absl::StrAppend(&out, "\ndose     n     y  ",
                  estimates ? absl::StrFormat("%-14s  estimate", overdose) : overdose, "\n");
  for (size_t d = 0; d < answer->counts.size(); ++d) {
    const BoinDoseCounts c = answer->counts[d];
    std::string line = absl::StrFormat(
        "%4d  %4d  %4d  %-14s", d + 1, c.n, c.y,
        c.n == 0 ? std::string("-") : absl::StrFormat("%.4f", design.OverdoseProbability(c)));
    if (estimates) {
      const std::optional<double> e = answer->selection->estimates[d];
      absl::StrAppend(&line, absl::StrFormat("  %-8s", e ? absl::StrFormat("%.4f", *e) : "-"));
    }
    std::vector<std::string> marks;
    if (static_cast<int>(d) == answer->current) marks.push_back("current");
    for (int e : answer->decision.eliminated) {
      if (e == static_cast<int>(d)) marks.push_back("eliminated");
    }
    if (answer->selection && answer->selection->mtd == static_cast<int>(d)) {
      marks.push_back("MTD");
    }
    if (!marks.empty()) absl::StrAppend(&line, "  ", absl::StrJoin(marks, ", "));
    absl::StrAppend(&out, line.substr(0, line.find_last_not_of(' ') + 1), "\n");
  }
  absl::StrAppend(&out, "\n", Sentence(design, *answer), "\n");
  if (answer->selection) {
    absl::StrAppend(&out, "MTD: ",
                    answer->selection->mtd
                        ? absl::StrCat("dose ", *answer->selection->mtd + 1)
                        : std::string(answer->decision.action == BoinAction::kStopNoMtd
                                          ? "none: the lowest dose is eliminated"
                                          : "none: no treated dose is left"),
                    "\n");
  }
  return out;
}

}  // namespace

int RunDesign(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args =
      ParseArgs(argv, {"target", "phi1", "phi2", "n-earlystop", "n", "y", "current", "max-n"},
                {"json", "select-mtd"});
  const bool counts = args.ok() && (!args->Get("n").empty() || !args->Get("y").empty());
  if (!args.ok() || args->positional.size() != 1 || args->positional[0] != "boin" ||
      args->Get("target").empty() ||
      (counts &&
       (args->Get("n").empty() || args->Get("y").empty() || args->Get("current").empty())) ||
      (!counts && (!args->Get("current").empty() || args->Has("select-mtd")))) {
    if (!args.ok()) std::cerr << args.status().message() << "\n";
    std::cerr << kUsage;
    return kExitUsage;
  }
  absl::StatusOr<BoinDesign> design = DesignOf(*args);
  if (!design.ok()) return Fail(design.status().message());
  int max_n = kMinRows;
  if (!args->Get("max-n").empty()) {
    absl::StatusOr<int> value = WholeFlag(*args, "max-n");
    if (!value.ok()) return Fail(value.status().message());
    if (*value < 1 || *value > kMaxPatients) {
      return Fail(absl::StrCat("--max-n ", *value, ": not 1 to ", kMaxPatients));
    }
    max_n = std::max(max_n, *value);
  }
  std::optional<Answer> answer;
  if (counts) {
    absl::StatusOr<Answer> answered = AnswerOf(*args, *design);
    if (!answered.ok()) return Fail(answered.status().message());
    answer = *std::move(answered);
    for (const BoinDoseCounts& c : answer->counts) max_n = std::max(max_n, c.n);
  }
  const std::vector<BoinBoundary> rows = design->Boundaries(max_n);
  std::cout << (args->Has("json") ? Json(*design, rows, answer) : Text(*design, rows, answer));
  return kExitOk;
}

}  // namespace trialrules::cli
