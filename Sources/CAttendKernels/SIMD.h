// Small SIMD helpers shared by the kernel files (internal; not part of the module's public header).
#ifndef CATTEND_SIMD_H
#define CATTEND_SIMD_H
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

int attend_simd_level(void);

/// Whether a kernel may use AVX2 + FMA + F16C now (Dispatch.c: the CPU, lowered by ATTEND_SIMD or a test).
static inline int attend_use_avx2(void) { return attend_simd_level() >= 1; }

/// Whether it may use AVX-512F as well.
static inline int attend_use_avx512(void) { return attend_simd_level() >= 2; }

/// exp of 8 lanes (inputs clamped to the float range; below -87.3 gives 0): Cody-Waite range reduction, then a
/// degree-6 polynomial. Shared by vexp, vgelu and the attention kernels.
__attribute__((target("avx2,fma")))
static inline __m256 attend_exp8(__m256 v) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365447505531f);
    __m256 under = _mm256_cmp_ps(v, lo, _CMP_LT_OQ);
    v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(v, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), v);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500E-4f), r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/// Sum of the 8 lanes.
__attribute__((target("avx2,fma")))
static inline float attend_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/// The f16 at p as a float. Not _cvtsh_ss or a plain load: since only the low lane is used, compilers build
/// the operand by inserting the 16 bits into whatever register is free, often a loop's accumulator, which
/// chains every iteration to the last (SmolLM2 Q4_0 decoding ran at 150 instead of 235 tokens/s). Passing the bits through an empty asm
/// makes them a whole integer register, which moves into a fresh vector register.
__attribute__((target("f16c")))
static inline float attend_load_half(const void *p) {
    unsigned short h;
    __builtin_memcpy(&h, p, 2);
    int bits = h;
    __asm__("" : "+r"(bits));
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)));
}
#endif
#endif
