// Small SIMD helpers shared by the kernel files (internal; not part of the module's public header).
#ifndef CATTEND_SIMD_H
#define CATTEND_SIMD_H
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/// Sum of the 8 lanes.
__attribute__((target("avx2,fma")))
static inline float attend_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#endif
#endif
