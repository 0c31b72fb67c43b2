// Invariant checks for the fuzz targets: a violated invariant prints what was
// expected and aborts, which libFuzzer (and the regression tests, which run
// the same code without libFuzzer) report as a crash with this input.
#ifndef TRIALRULES_TESTS_FUZZ_FUZZ_CHECK_H_
#define TRIALRULES_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(condition, message)                                        \
  do {                                                                        \
    if (!(condition)) {                                                       \
      const std::string fuzz_check_message = (message);                      \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__,    \
                   __LINE__, #condition, fuzz_check_message.c_str());         \
      std::abort();                                                           \
    }                                                                         \
  } while (0)

#endif  // TRIALRULES_TESTS_FUZZ_FUZZ_CHECK_H_
