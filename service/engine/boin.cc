#include "service/engine/boin.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/util/number_text.h"

namespace trialrules {
namespace {

// BOIN 2.7.2 treats lambda_d * n within this of a whole number as that
// number, so that a rate exactly at lambda_d stays rather than
// de-escalates whatever the last bit of the product says.
constexpr double kWholeTolerance = 1e-12;
// Added i times to the i-th isotonic estimate (from 1) before choosing
// the MTD: among doses pooled to one estimate, the highest wins below the
// target and the lowest above it.
constexpr double kTieBreak = 1e-10;
// Elimination needs at least this many evaluable patients.
constexpr int kMinPatientsToEliminate = 3;

// Walks the Binomial(trials, p) distribution from k = 0 up, keeping the
// running CDF. The pmf follows the ratio recurrence in log space, so no
// term underflows to zero before it is negligible.
class BinomialWalk {
 public:
  BinomialWalk(int trials, double p)
      : trials_(trials),
        log_ratio_(std::log(p) - std::log1p(-p)),
        log_pmf_(trials * std::log1p(-p)),
        cdf_(std::exp(log_pmf_)) {}

  int k() const { return k_; }
  double cdf() const { return cdf_; }  // P(X <= k)
  void Next() {
    log_pmf_ += std::log(static_cast<double>(trials_ - k_) / (k_ + 1)) + log_ratio_;
    ++k_;
    cdf_ += std::exp(log_pmf_);
  }

 private:
  int trials_;
  double log_ratio_;
  double log_pmf_;
  double cdf_;
  int k_ = 0;
};

// Pr(p > phi | y of n) under Beta(1, 1) is 1 - I_phi(y + 1, n - y + 1),
// which for whole parameters is P(Binomial(n + 1, phi) <= y): a sum of
// positive terms, with none of the cancellation of 1 - pbeta.
double OverdoseProbabilityOf(int y, int n, double phi) {
  BinomialWalk walk(n + 1, phi);
  while (walk.k() < y) walk.Next();
  return std::min(walk.cdf(), 1.0);
}

// The isotonic (non-decreasing) regression of `x` with weights `wt`, by
// pooling adjacent violators as BOIN's own pava() does: always the first
// violating pair, the pooled mean over the union of their level sets, sums
// in long double as R's sum() takes them. The same steps give the same
// last bits as the package.
std::vector<double> Pava(std::vector<double> x, const std::vector<double>& wt) {
  const int size = static_cast<int>(x.size());
  std::vector<int> level(size);
  std::iota(level.begin(), level.end(), 0);
  for (;;) {
    int i = 0;
    while (i + 1 < size && !(x[i + 1] - x[i] < 0)) ++i;
    if (i + 1 >= size) break;
    const int first = level[i];
    const int second = level[i + 1];
    long double weighted = 0;
    long double weights = 0;
    for (int j = 0; j < size; ++j) {
      if (level[j] != first && level[j] != second) continue;
      weighted += x[j] * wt[j];
      weights += wt[j];
    }
    const double pooled = static_cast<double>(weighted) / static_cast<double>(weights);
    for (int j = 0; j < size; ++j) {
      if (level[j] != first && level[j] != second) continue;
      x[j] = pooled;
      level[j] = first;
    }
  }
  return x;
}

absl::Status CheckCounts(absl::Span<const BoinDoseCounts> counts) {
  if (counts.empty()) return absl::InvalidArgumentError("no doses: counts for at least one dose");
  for (size_t d = 0; d < counts.size(); ++d) {
    const BoinDoseCounts& c = counts[d];
    if (c.n < 0 || c.y < 0) {
      return absl::InvalidArgumentError(absl::StrCat("dose ", d + 1, ": n = ", c.n, ", y = ", c.y,
                                                     ": counts cannot be negative"));
    }
    if (c.y > c.n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dose ", d + 1, ": y = ", c.y, " DLTs is more than n = ", c.n, " evaluable patients"));
    }
  }
  return absl::OkStatus();
}

absl::Status Refuse(absl::string_view parameter, double value, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("BOIN ", parameter, " = ", ShortestNumber(value), ": ", why));
}

}  // namespace

absl::string_view BoinActionName(BoinAction action) {
  switch (action) {
    case BoinAction::kEscalate: return "ESCALATE";
    case BoinAction::kStay: return "STAY";
    case BoinAction::kDeEscalate: return "DE_ESCALATE";
    case BoinAction::kStopNoMtd: return "STOP_NO_MTD";
    case BoinAction::kStopSelectMtd: return "STOP_SELECT_MTD";
  }
  return "STAY";
}

absl::StatusOr<BoinDesign> BoinDesign::Create(const BoinParameters& parameters) {
  const double phi = parameters.target;
  // The defaults as BOIN computes them, so that the boundaries match.
  const double phi1 = parameters.phi1.value_or(0.6 * phi);
  const double phi2 = parameters.phi2.value_or(1.4 * phi);
  for (const auto& [name, value] : {std::pair<const char*, double>{"phi", phi},
                                    {"phi1", phi1},
                                    {"phi2", phi2},
                                    {"elimination_cutoff", parameters.elimination_cutoff}}) {
    if (!std::isfinite(value)) return Refuse(name, value, "not a finite number");
  }
  if (phi < 0.05 || phi > 0.6) return Refuse("phi", phi, "the target must be 0.05 to 0.6");
  // The comparisons are BOIN's own, in its order of operations, so that a
  // value at the edge is refused exactly when the package refuses it.
  if (phi - phi1 < 0.1 * phi) {
    return Refuse("phi1", phi1,
                  absl::StrCat("must be at most phi - 0.1 phi (phi = ", ShortestNumber(phi), ")"));
  }
  if (phi2 - phi < 0.1 * phi) {
    return Refuse("phi2", phi2,
                  absl::StrCat("must be at least phi + 0.1 phi (phi = ", ShortestNumber(phi), ")"));
  }
  if (phi1 <= 0) return Refuse("phi1", phi1, "must be above 0");
  if (phi2 >= 1) return Refuse("phi2", phi2, "must be below 1");
  if (parameters.n_earlystop < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("BOIN n_earlystop = ", parameters.n_earlystop, ": must be at least 1"));
  }
  if (!(parameters.elimination_cutoff > 0 && parameters.elimination_cutoff < 1)) {
    return Refuse("elimination_cutoff", parameters.elimination_cutoff, "must be between 0 and 1");
  }
  return BoinDesign(parameters, phi1, phi2);
}

BoinDesign::BoinDesign(const BoinParameters& parameters, double phi1, double phi2)
    : phi_(parameters.target),
      phi1_(phi1),
      phi2_(phi2),
      n_earlystop_(parameters.n_earlystop),
      elimination_cutoff_(parameters.elimination_cutoff),
      // Written as BOIN writes them (same operations, same order).
      lambda_e_(std::log((1 - phi1) / (1 - phi_)) /
                std::log(phi_ * (1 - phi1) / (phi1 * (1 - phi_)))),
      lambda_d_(std::log((1 - phi_) / (1 - phi2)) /
                std::log(phi2 * (1 - phi_) / (phi_ * (1 - phi2)))) {}

BoinBoundary BoinDesign::Boundary(int n) const {
  BoinBoundary row;
  row.n = n;
  row.escalate_max = static_cast<int>(std::floor(lambda_e_ * n));
  // De-escalate when y > lambda_d n: the next whole number above it.
  const double deescalate = lambda_d_ * n;
  const double whole = std::nearbyint(deescalate);
  row.deescalate_min = static_cast<int>(
      std::abs(whole - deescalate) < kWholeTolerance ? whole + 1 : std::ceil(deescalate));
  if (n >= kMinPatientsToEliminate) {
    BinomialWalk walk(n + 1, phi_);
    while (walk.k() < n) {
      walk.Next();
      if (walk.cdf() > elimination_cutoff_) {
        row.eliminate_min = walk.k();
        break;
      }
    }
  }
  // A dose that must be eliminated is also left.
  if (row.eliminate_min && row.deescalate_min > *row.eliminate_min) {
    row.deescalate_min = *row.eliminate_min;
  }
  return row;
}

std::vector<BoinBoundary> BoinDesign::Boundaries(int max_n) const {
  std::vector<BoinBoundary> rows;
  for (int n = 1; n <= max_n; ++n) rows.push_back(Boundary(n));
  return rows;
}

double BoinDesign::OverdoseProbability(BoinDoseCounts counts) const {
  return OverdoseProbabilityOf(counts.y, counts.n, phi_);
}

bool BoinDesign::Eliminated(BoinDoseCounts counts) const {
  return counts.n >= kMinPatientsToEliminate && OverdoseProbability(counts) > elimination_cutoff_;
}

namespace {

// The lowest eliminated dose (all above it are eliminated too), or the
// number of doses when none is.
int LowestEliminated(const BoinDesign& design, absl::Span<const BoinDoseCounts> counts) {
  int d = 0;
  while (d < static_cast<int>(counts.size()) && !design.Eliminated(counts[d])) ++d;
  return d;
}

std::vector<int> DosesFrom(int first, int size) {
  std::vector<int> doses;
  for (int d = first; d < size; ++d) doses.push_back(d);
  return doses;
}

}  // namespace

absl::StatusOr<BoinDecision> BoinDesign::Decide(absl::Span<const BoinDoseCounts> counts,
                                                int current) const {
  if (absl::Status status = CheckCounts(counts); !status.ok()) return status;
  const int doses = static_cast<int>(counts.size());
  if (current < 0 || current >= doses) {
    return absl::InvalidArgumentError(
        absl::StrCat("current dose ", current + 1, ": not one of the ", doses, " doses"));
  }
  BoinDecision decision;
  const int lowest_eliminated = LowestEliminated(*this, counts);
  decision.eliminated = DosesFrom(lowest_eliminated, doses);
  if (lowest_eliminated == 0) {
    decision.action = BoinAction::kStopNoMtd;
    return decision;
  }
  // Following the design, the current dose is never above an eliminated
  // one: it is at most the dose just eliminated, whose DLTs reach the
  // de-escalation boundary. Counts that put it higher still leave every
  // eliminated dose: down to the highest dose that is left.
  if (current >= lowest_eliminated) {
    decision.action = BoinAction::kDeEscalate;
    decision.next_dose = lowest_eliminated - 1;
    return decision;
  }
  const BoinDoseCounts at = counts[current];
  if (at.n == 0) {  // no one evaluable yet: nothing to move on
    decision.action = BoinAction::kStay;
    decision.next_dose = current;
    return decision;
  }
  const BoinBoundary row = Boundary(at.n);
  const bool escalate = at.y <= row.escalate_max;
  const bool deescalate = at.y >= row.deescalate_min;
  const bool top = current + 1 >= lowest_eliminated;  // highest dose left
  // n_earlystop ends the trial where the dose would not move: a stay, or a
  // move blocked at either end of the doses that are left.
  if (at.n >= n_earlystop_ &&
      ((!escalate && !deescalate) || (current == 0 && deescalate) || (top && escalate))) {
    decision.action = BoinAction::kStopSelectMtd;
    return decision;
  }
  if (escalate && !top) {
    decision.action = BoinAction::kEscalate;
    decision.next_dose = current + 1;
  } else if (deescalate && current > 0) {
    decision.action = BoinAction::kDeEscalate;
    decision.next_dose = current - 1;
  } else {
    decision.action = BoinAction::kStay;
    decision.next_dose = current;
  }
  return decision;
}

absl::StatusOr<MtdSelection> BoinDesign::SelectMtd(absl::Span<const BoinDoseCounts> counts) const {
  if (absl::Status status = CheckCounts(counts); !status.ok()) return status;
  MtdSelection selection;
  selection.estimates.resize(counts.size());
  const int lowest_eliminated = LowestEliminated(*this, counts);
  // Admissible: treated and not eliminated.
  std::vector<int> admissible;
  std::vector<double> estimate;
  std::vector<double> weight;
  for (int d = 0; d < lowest_eliminated; ++d) {
    const double n = counts[d].n;
    const double y = counts[d].y;
    if (n == 0) continue;
    admissible.push_back(d);
    // Posterior mean and variance under a Beta(0.05, 0.05) prior, written
    // as BOIN writes them.
    estimate.push_back((y + 0.05) / (n + 0.1));
    const double variance = (y + 0.05) * (n - y + 0.05) / ((n + 0.1) * (n + 0.1) * (n + 0.1 + 1));
    weight.push_back(1 / variance);
  }
  if (lowest_eliminated == 0 || admissible.empty()) return selection;
  estimate = Pava(std::move(estimate), weight);
  int best = 0;
  double best_distance = 0;
  for (size_t i = 0; i < estimate.size(); ++i) {
    selection.estimates[admissible[i]] = estimate[i];
    const double distance = std::abs(estimate[i] + static_cast<double>(i + 1) * kTieBreak - phi_);
    if (i == 0 || distance < best_distance) {
      best = static_cast<int>(i);
      best_distance = distance;
    }
  }
  selection.mtd = admissible[best];
  return selection;
}

std::string BoinDesign::CanonicalText(int max_n) const {
  std::string text =
      absl::StrCat("BOIN phi=", ShortestNumber(phi_), " phi1=", ShortestNumber(phi1_),
                   " phi2=", ShortestNumber(phi2_), " n_earlystop=", n_earlystop_,
                   " elimination_cutoff=", ShortestNumber(elimination_cutoff_), "\n",
                   absl::StrFormat("lambda_e=%.10f lambda_d=%.10f\n", lambda_e_, lambda_d_),
                   "n escalate_max deescalate_min eliminate_min\n");
  for (const BoinBoundary& row : Boundaries(std::max(12, max_n))) {
    absl::StrAppend(&text, row.n, " ", row.escalate_max, " ", row.deescalate_min, " ",
                    row.eliminate_min ? absl::StrCat(*row.eliminate_min) : "-", "\n");
  }
  return text;
}

}  // namespace trialrules
