// exp over a vector: Cody-Waite range reduction to 2^n * exp(r), |r| <= ln2/2, then a degree-6 polynomial.
// The AVX2 path is selected at run time; the scalar path uses libm.
#include "CAttendKernels.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

__attribute__((target("avx2,fma")))
static void vexp_avx2(const float *x, float *y, long n) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3365447505531f);
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2hi = _mm256_set1_ps(0.693359375f), ln2lo = _mm256_set1_ps(-2.12194440e-4f);
    const __m256 p0 = _mm256_set1_ps(1.9875691500E-4f), p1 = _mm256_set1_ps(1.3981999507E-3f),
                 p2 = _mm256_set1_ps(8.3334519073E-3f), p3 = _mm256_set1_ps(4.1665795894E-2f),
                 p4 = _mm256_set1_ps(1.6666665459E-1f), p5 = _mm256_set1_ps(5.0000001201E-1f);
    const __m256 one = _mm256_set1_ps(1.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 under = _mm256_cmp_ps(v, lo, _CMP_LT_OQ);
        v = _mm256_max_ps(_mm256_min_ps(v, hi), lo);
        __m256 fx = _mm256_round_ps(_mm256_mul_ps(v, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 r = _mm256_fnmadd_ps(fx, ln2hi, v);
        r = _mm256_fnmadd_ps(fx, ln2lo, r);
        __m256 r2 = _mm256_mul_ps(r, r);
        __m256 p = _mm256_fmadd_ps(p0, r, p1);
        p = _mm256_fmadd_ps(p, r, p2);
        p = _mm256_fmadd_ps(p, r, p3);
        p = _mm256_fmadd_ps(p, r, p4);
        p = _mm256_fmadd_ps(p, r, p5);
        p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, one));
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
        __m256 res = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
        _mm256_storeu_ps(y + i, _mm256_andnot_ps(under, res));
    }
    for (; i < n; i++) y[i] = expf(x[i]);
}
#endif

void attend_vexp(const float *x, float *y, long n) {
#if defined(__x86_64__) || defined(__i386__)
    static int has_avx2 = -1;
    if (has_avx2 < 0) {
        __builtin_cpu_init();
        has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    if (has_avx2) { vexp_avx2(x, y, n); return; }
#endif
    for (long i = 0; i < n; i++) y[i] = expf(x[i]);
}
