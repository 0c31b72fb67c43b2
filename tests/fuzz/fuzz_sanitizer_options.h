// The sanitizer settings every fuzz target runs with, built into the binary
// so that running one by hand behaves as scripts/fuzz.sh does. Include from
// exactly one source file of each fuzz target.
//  - UBSan: stop at the first finding (libFuzzer then writes the input), with
//    the suppressions of findings already reported but not yet fixed
//    (tests/fuzz/ubsan.supp: each line names its regression input).
//  - LeakSanitizer: see tests/fuzz/lsan.supp.
// An environment variable (UBSAN_OPTIONS, LSAN_OPTIONS) still overrides.
#ifndef TRIALRULES_TESTS_FUZZ_FUZZ_SANITIZER_OPTIONS_H_
#define TRIALRULES_TESTS_FUZZ_FUZZ_SANITIZER_OPTIONS_H_

#ifndef TRIALRULES_SOURCE_DIR
#error "TRIALRULES_SOURCE_DIR must be defined (the repository, for tests/fuzz/*.supp)"
#endif

extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:suppressions=" TRIALRULES_SOURCE_DIR
         "/tests/fuzz/ubsan.supp";
}

extern "C" const char* __lsan_default_options() {
  return "suppressions=" TRIALRULES_SOURCE_DIR "/tests/fuzz/lsan.supp:print_suppressions=0";
}

#endif  // TRIALRULES_TESTS_FUZZ_FUZZ_SANITIZER_OPTIONS_H_
