// One switch for every kernel's SIMD path. Each kernel file asks attend_simd_level() which instruction set it may
// use; the answer is the best level the CPU runs, lowered by the ATTEND_SIMD environment variable (portable, avx2,
// avx512) or by attend_set_simd_limit (tests). CI runs the kernel tests once per level, so the portable code that an
// Apple or pre-AVX2 machine runs is tested on an AVX-512 machine too.

#include "CAttendKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cpu_level = -1;   // -1: not asked yet
static int limit = -1;       // -1: not read from the environment yet

int attend_simd_cpu_level(void) {
    int level = __atomic_load_n(&cpu_level, __ATOMIC_RELAXED);
    if (level >= 0) return level;
    level = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
        level = __builtin_cpu_supports("avx512f") ? 2 : 1;
    }
#endif
    __atomic_store_n(&cpu_level, level, __ATOMIC_RELAXED);
    return level;
}

int attend_simd_level_named(const char *name) {
    if (!strcmp(name, "portable")) return 0;
    if (!strcmp(name, "avx2")) return 1;
    if (!strcmp(name, "avx512")) return 2;
    return -1;
}

/// ATTEND_SIMD's level; unset or empty is the CPU's best. Anything else is an error a user should see, not a
/// silent fallback: a benchmark run under a misspelt value would measure the wrong kernels.
static int environment_limit(void) {
    const char *value = getenv("ATTEND_SIMD");
    if (!value || !*value) return 2;
    int level = attend_simd_level_named(value);
    if (level < 0) {
        fprintf(stderr, "error: ATTEND_SIMD must be portable, avx2 or avx512, got \"%s\"\n", value);
        exit(2);
    }
    return level;
}

void attend_set_simd_limit(int level) { __atomic_store_n(&limit, level < 0 ? environment_limit() : level, __ATOMIC_RELAXED); }

int attend_simd_level(void) {
    int cap = __atomic_load_n(&limit, __ATOMIC_RELAXED);
    if (cap < 0) {
        cap = environment_limit();
        __atomic_store_n(&limit, cap, __ATOMIC_RELAXED);
    }
    int cpu = attend_simd_cpu_level();
    return cap < cpu ? cap : cpu;
}
