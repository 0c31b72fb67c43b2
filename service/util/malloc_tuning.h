// Process-wide allocator settings for a long-running server.
#ifndef TRIALRULES_SERVICE_UTIL_MALLOC_TUNING_H_
#define TRIALRULES_SERVICE_UTIL_MALLOC_TUNING_H_

#include <malloc.h>

namespace trialrules {

// glibc hands memory at the top of each thread's heap back to the kernel
// once 128 KiB are free there, and adapts its mmap threshold as it goes;
// under load every call's gRPC and protobuf arenas then fault that memory
// back in (page faults, madvise and sysmalloc: about a tenth of a loaded
// server's CPU). Fixed, generous thresholds keep it: a server's working set
// is small and stable. Call once, first thing in main().
inline void KeepFreedMemory() {
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
}

}  // namespace trialrules

#endif  // TRIALRULES_SERVICE_UTIL_MALLOC_TUNING_H_
