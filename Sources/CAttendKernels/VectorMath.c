// exp and GELU over vectors. exp: Cody-Waite range reduction to 2^n * exp(r), |r| <= ln2/2, then a
// degree-6 polynomial. The AVX2 paths are selected at run time; the scalar paths use libm.
#include "CAttendKernels.h"
#include <math.h>

static inline float gelu_tanh_scalar(float x, float *tanh_out) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    float t = tanhf(u);
    if (tanh_out) *tanh_out = t;
    return 0.5f * x * (1.0f + t);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "SIMD.h"

// erf(x / sqrt 2) by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7); also returns exp(-x^2 / 2), which it needs
// and GELU's derivative uses.
__attribute__((target("avx2,fma")))
static inline __m256 erf_scaled8(__m256 v, __m256 *gauss) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f), one = _mm256_set1_ps(1.0f);
    __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
    __m256 sign = _mm256_and_ps(z, sign_mask);
    __m256 a = _mm256_andnot_ps(sign_mask, z);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), a, one));
    __m256 poly = _mm256_fmadd_ps(_mm256_set1_ps(1.061405429f), t, _mm256_set1_ps(-1.453152027f));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(1.421413741f));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(-0.284496736f));
    poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(0.254829592f));
    poly = _mm256_mul_ps(poly, t);
    __m256 e = attend_exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a)));
    if (gauss) *gauss = e;
    return _mm256_or_ps(_mm256_fnmadd_ps(poly, e, one), sign);
}

// GELU(x) = x/2 (1 + erf(x/sqrt 2)).
__attribute__((target("avx2,fma")))
static void vgelu_avx2(const float *x, float *y, long n) {
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, erf_scaled8(v, 0))));
    }
    for (; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

// g * GELU'(x) = g (Phi(x) + x phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi) from the erf's own exponential.
__attribute__((target("avx2,fma")))
static void vgelu_grad_avx2(const float *x, const float *g, float *dx, long n) {
    const __m256 one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), e;
        __m256 cdf = _mm256_mul_ps(half, _mm256_add_ps(one, erf_scaled8(v, &e)));
        __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(v, e), _mm256_set1_ps(0.3989422804014327f), cdf);
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(g + i), d));
    }
    for (; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
        dx[i] = g[i] * (cdf + x[i] * expf(-0.5f * x[i] * x[i]) * 0.3989422804014327f);
    }
}

// tanh(u) = 1 - 2 / (exp(2u) + 1); saturates cleanly at +-1 because exp8 clamps.
__attribute__((target("avx2,fma")))
static inline __m256 tanh8(__m256 u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = attend_exp8(_mm256_add_ps(u, u));
    return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
}


// GPT-2's GELU: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), and its derivative times g.
__attribute__((target("avx2,fma")))
static void vgelu_tanh_avx2(const float *x, float *y, const float *g, float *dx, long n) {
    const __m256 k = _mm256_set1_ps(0.7978845608028654f), c = _mm256_set1_ps(0.044715f), c3 = _mm256_set1_ps(3 * 0.044715f);
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), v2 = _mm256_mul_ps(v, v);
        __m256 t = tanh8(_mm256_mul_ps(k, _mm256_fmadd_ps(_mm256_mul_ps(c, v2), v, v)));
        if (y) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
        if (dx) {
            // d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3c x^2)
            __m256 du = _mm256_mul_ps(k, _mm256_fmadd_ps(c3, v2, one));
            __m256 sech2 = _mm256_fnmadd_ps(t, t, one);
            __m256 d = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(half, v), sech2), du, _mm256_mul_ps(half, _mm256_add_ps(one, t)));
            _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(g + i), d));
        }
    }
    for (; i < n; i++) {
        float t, v = x[i];
        float out = gelu_tanh_scalar(v, &t);
        if (y) y[i] = out;
        if (dx) {
            float du = 0.7978845608028654f * (1 + 3 * 0.044715f * v * v);
            dx[i] = g[i] * (0.5f * (1 + t) + 0.5f * v * (1 - t * t) * du);
        }
    }
}

__attribute__((target("avx2,fma")))
static void vexp_avx2(const float *x, float *y, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, attend_exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) y[i] = expf(x[i]);
}
// Cross-entropy's two row passes: log-sum-exp (max, then the sum of shifted exponentials, never stored), and the
// gradient's softmax written once, scaled and shifted.
__attribute__((target("avx2,fma")))
static float row_logsumexp_avx2(const float *x, long n) {
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
        m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + i + 16));
        m3 = _mm256_max_ps(m3, _mm256_loadu_ps(x + i + 24));
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m0 = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
    float lanes[8];
    _mm256_storeu_ps(lanes, m0);
    float m = -INFINITY;
    for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY || m == INFINITY) return m;
    __m256 vm = _mm256_set1_ps(m), s0 = _mm256_setzero_ps(), s1 = s0;
    i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_add_ps(s0, attend_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
        s1 = _mm256_add_ps(s1, attend_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm)));
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_add_ps(s0, attend_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
    double sum = attend_hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) sum += expf(x[i] - m);
    return m + (float)log(sum);
}

__attribute__((target("avx2,fma")))
static void row_softmax_affine_avx2(const float *x, long n, float lse, float scale, float shift, float *out) {
    __m256 vl = _mm256_set1_ps(lse), vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(shift);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = attend_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vl));
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(vs, e, vb));
    }
    for (; i < n; i++) out[i] = scale * expf(x[i] - lse) + shift;
}
#endif

float attend_row_logsumexp(const float *x, long n) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) return row_logsumexp_avx2(x, n);
#endif
    float m = -INFINITY;
    for (long i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY || m == INFINITY) return m;
    double sum = 0;
    for (long i = 0; i < n; i++) sum += expf(x[i] - m);
    return m + (float)log(sum);
}

void attend_row_softmax_affine(const float *x, long n, float lse, float scale, float shift, float *out) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) { row_softmax_affine_avx2(x, n, lse, scale, shift, out); return; }
#endif
    for (long i = 0; i < n; i++) out[i] = scale * expf(x[i] - lse) + shift;
}

void attend_vexp(const float *x, float *y, long n) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) { vexp_avx2(x, y, n); return; }
#endif
    for (long i = 0; i < n; i++) y[i] = expf(x[i]);
}

void attend_vgelu_tanh(const float *x, float *y, const float *g, float *dx, long n) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) { vgelu_tanh_avx2(x, y, g, dx, n); return; }
#endif
    for (long i = 0; i < n; i++) {
        float t, v = x[i];
        float out = gelu_tanh_scalar(v, &t);
        if (y) y[i] = out;
        if (dx) dx[i] = g[i] * (0.5f * (1 + t) + 0.5f * v * (1 - t * t) * 0.7978845608028654f * (1 + 3 * 0.044715f * v * v));
    }
}

void attend_vgelu(const float *x, float *y, long n) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) { vgelu_avx2(x, y, n); return; }
#endif
    for (long i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void attend_vgelu_grad(const float *x, const float *g, float *dx, long n) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) { vgelu_grad_avx2(x, g, dx, n); return; }
#endif
    for (long i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
        dx[i] = g[i] * (cdf + x[i] * expf(-0.5f * x[i] * x[i]) * 0.3989422804014327f);
    }
}
