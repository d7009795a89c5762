// Small SIMD helpers shared by the kernel files (internal; not part of the module's public header).
#ifndef CATTEND_SIMD_H
#define CATTEND_SIMD_H
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/// Set by attend_set_quantized_generic_only (tests): the quantized kernels then take their portable paths.
extern int attend_quantized_generic_only;

/// Whether the quantized kernels may use AVX2 + FMA + F16C (the CPU is asked once per file).
static inline int attend_quantized_use_avx2(void) {
    static int cached = -1;
    if (attend_quantized_generic_only) return 0;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cached;
}

/// Whether they may use AVX-512F + F16C.
static inline int attend_quantized_use_avx512(void) {
    static int cached = -1;
    if (attend_quantized_generic_only) return 0;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("f16c");
    }
    return cached;
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
