// glibc malloc tuning for tensor workloads; see TensorStorage.allocatorTuned.
#include "CAttendKernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void attend_tune_allocator(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
