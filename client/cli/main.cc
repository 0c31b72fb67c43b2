// trialrules: the rule author's command-line tool.
#include <iostream>
#include <string>
#include <vector>

#include "client/cli/args.h"

namespace {

constexpr char kUsage[] =
    "usage: trialrules COMMAND [OPTIONS]\n"
    "commands:\n"
    "  check [--coverage] [--server HOST:PORT] PATH...\n"
    "                          load rule files, decision-table files or directories,\n"
    "                          run their test cases, print problems\n"
    "                          (file:line:col: rule ID: message)\n"
    "  eval (--rules PATH | --server HOST:PORT) --protocol ID [--version V]\n"
    "       [--kind eligibility|withdrawal|escalation|stopping]\n"
    "       --facts FILE.json [--json]\n"
    "                          evaluate one patient (or cohort, or the trial)\n"
    "  diff (--rules PATH | --server HOST:PORT) --protocol ID --from V1 --to V2\n"
    "       --patients FILE.json [--json]\n"
    "                          amendment impact: whose decision changes, and why\n"
    "  grade (--rules PATH | --server HOST:PORT) --table ID [--version V] [--term TERM]\n"
    "       --observations FILE.json [--json]\n"
    "                          grade an adverse event with a grading table\n"
    "  trial (--rules PATH | --server HOST:PORT) --records FILE.json [--version V] [--json]\n"
    "                          a trial's adverse-event records: DLTs, per-dose counts,\n"
    "                          the escalation and stopping decisions, pending events\n"
    "  screen --rules PATH --protocols ID[,ID...] --patients FILE.json [--json]\n"
    "  screen --rules PATH --protocols ID[,ID...] --fhir-ndjson FILE|DIR\n"
    "       [--assessment-date YYYY-MM-DD] [--json]\n"
    "                          which of several protocols could each patient join\n"
    "  design boin --target PHI [--phi1 X] [--phi2 Y] [--n-earlystop N]\n"
    "       [--n N1,N2,... --y Y1,Y2,... --current DOSE [--select-mtd]] [--max-n N] [--json]\n"
    "                          a BOIN design's boundaries, next dose and MTD selection\n"
    "  audit verify LOG --public-key KEY | audit prove LOG DECISION_ID |\n"
    "  audit check-proof PROOF --public-key KEY\n"
    "                          a signed audit log: verify it whole, prove one decision's\n"
    "                          record, check such a proof (offline)\n"
    "  replay --audit LOG --archive DIR --decision ID [--facts F.json]\n"
    "                          re-evaluate a recorded decision under its archived rule file\n"
    "  bench --server HOST:PORT [--method CheckEligibility|ScreenPatients] ...\n"
    "                          load generator (trialrules bench --help)\n"
    "HOST:PORT may be dns:///NAME:PORT (round-robin over its addresses)\n"
    "exit codes: 0 ok, 1 problems or refused input, 2 usage\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return trialrules::cli::kExitUsage;
  }
  const std::string command = argv[1];
  const std::vector<std::string> rest(argv + 2, argv + argc);
  if (command == "check") return trialrules::cli::RunCheck(rest);
  if (command == "eval") return trialrules::cli::RunEval(rest);
  if (command == "bench") return trialrules::cli::RunBench(rest);
  if (command == "diff") return trialrules::cli::RunDiff(rest);
  if (command == "grade") return trialrules::cli::RunGrade(rest);
  if (command == "screen") return trialrules::cli::RunScreen(rest);
  if (command == "design") return trialrules::cli::RunDesign(rest);
  if (command == "trial") return trialrules::cli::RunTrial(rest);
  if (command == "audit") return trialrules::cli::RunAudit(rest);
  if (command == "replay") return trialrules::cli::RunReplay(rest);
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << kUsage;
    return trialrules::cli::kExitOk;
  }
  std::cerr << "unknown command \"" << command << "\"\n" << kUsage;
  return trialrules::cli::kExitUsage;
}
