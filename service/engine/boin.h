// The Bayesian optimal interval (BOIN) dose-finding design (Liu & Yuan
// 2015) for single-agent trials, computed exactly as the R package BOIN
// 2.7.2 computes it: the escalation and de-escalation boundaries, the
// Bayesian elimination rule, the next-dose decision and the selection of the
// maximum tolerated dose (MTD) by isotonic regression.
//
// Pure arithmetic on per-dose counts (evaluable patients, patients with a
// DLT); turning adverse-event records into those counts is the caller's job.
// Doses are 0-based indices into the counts, lowest dose first; messages
// number them from 1, as a protocol does.
#ifndef TRIALRULES_SERVICE_ENGINE_BOIN_H_
#define TRIALRULES_SERVICE_ENGINE_BOIN_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace trialrules {

struct BoinParameters {
  double target = 0;                 // phi, the target DLT rate
  std::optional<double> phi1;        // highest rate deemed subtherapeutic; absent: 0.6 phi
  std::optional<double> phi2;        // lowest rate deemed overly toxic; absent: 1.4 phi
  int n_earlystop = 100;             // patients at one dose that end the trial
  double elimination_cutoff = 0.95;  // Pr(p > phi | data) above this eliminates
};

// One row of the boundary table: with `n` evaluable patients at the
// current dose, escalate when y <= escalate_max, de-escalate when
// y >= deescalate_min, eliminate the dose (and all higher) when
// y >= eliminate_min (none below 3 patients, or when no y qualifies).
struct BoinBoundary {
  int n = 0;
  int escalate_max = 0;
  int deescalate_min = 0;
  std::optional<int> eliminate_min;
};

// One dose's counts: evaluable patients and, of them, patients with a DLT.
struct BoinDoseCounts {
  int n = 0;
  int y = 0;
};

enum class BoinAction { kEscalate, kStay, kDeEscalate, kStopNoMtd, kStopSelectMtd };

// "ESCALATE", "STAY", "DE_ESCALATE", "STOP_NO_MTD", "STOP_SELECT_MTD".
absl::string_view BoinActionName(BoinAction action);

struct BoinDecision {
  BoinAction action = BoinAction::kStay;
  std::optional<int> next_dose;  // none when the trial stops
  std::vector<int> eliminated;   // ascending: the lowest eliminated dose and all above it
};

struct MtdSelection {
  std::optional<int> mtd;  // none: no dose qualifies
  // One per dose: the isotonic estimate of the DLT rate of each treated,
  // not eliminated dose (without the tie-break); none for the others.
  std::vector<std::optional<double>> estimates;
};

// One design, its parameters checked. Immutable and thread-safe.
class BoinDesign {
 public:
  // InvalidArgument naming the parameter and its value when BOIN refuses
  // it: phi outside 0.05..0.6, phi - phi1 < 0.1 phi, phi2 - phi < 0.1 phi;
  // and what its formulas cannot take: phi1 <= 0, phi2 >= 1, n_earlystop
  // < 1, a cut-off outside (0, 1), a value that is not finite.
  static absl::StatusOr<BoinDesign> Create(const BoinParameters& parameters);

  double phi() const { return phi_; }
  double phi1() const { return phi1_; }
  double phi2() const { return phi2_; }
  int n_earlystop() const { return n_earlystop_; }
  double elimination_cutoff() const { return elimination_cutoff_; }
  // Escalate when y/n <= lambda_e; de-escalate when y/n > lambda_d.
  double lambda_e() const { return lambda_e_; }
  double lambda_d() const { return lambda_d_; }

  // The row for `n` >= 1 evaluable patients.
  BoinBoundary Boundary(int n) const;
  // Rows for n = 1..max_n.
  std::vector<BoinBoundary> Boundaries(int max_n) const;

  // Pr(p > phi | y DLTs in n) under a Beta(1, 1) prior.
  double OverdoseProbability(BoinDoseCounts counts) const;
  // n >= 3 and OverdoseProbability > the cut-off: this dose and all higher
  // are eliminated.
  bool Eliminated(BoinDoseCounts counts) const;

  // The next dose from `counts` (one per dose, at least one) with the
  // trial at dose `current`. Doses from the lowest eliminated one upward
  // are eliminated; the trial stops with no MTD when that is the lowest
  // dose. No evaluable patient at `current` yet: STAY. InvalidArgument
  // naming the dose and values for counts that cannot be (y > n, a
  // negative count) or a `current` outside the doses.
  absl::StatusOr<BoinDecision> Decide(absl::Span<const BoinDoseCounts> counts, int current) const;

  // The MTD from `counts` at the end of a trial (or on request).
  // InvalidArgument as Decide.
  absl::StatusOr<MtdSelection> SelectMtd(absl::Span<const BoinDoseCounts> counts) const;

  // The parameters, lambdas and the boundary table for
  // n = 1..max(12, max_n), as stable text: the design's part of a rule
  // version's hash.
  std::string CanonicalText(int max_n) const;

 private:
  BoinDesign(const BoinParameters& parameters, double phi1, double phi2);

  double phi_;
  double phi1_;
  double phi2_;
  int n_earlystop_;
  double elimination_cutoff_;
  double lambda_e_;
  double lambda_d_;
};

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_ENGINE_BOIN_H_
