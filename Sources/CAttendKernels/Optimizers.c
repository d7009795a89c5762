// One Adam / AdamW step over n parameters (Kingma & Ba; Loshchilov & Hutter), vectorized with AVX2 when
// present. Decoupled decay multiplies p by (1 - lr wd) first; coupled decay adds wd p to the gradient.
#include "CAttendKernels.h"
#include <math.h>

static void adam_generic(float *p, const float *g, float *m, float *v, long n, float lr, float b1, float b2, float eps,
                         float wd, int decoupled, float step_size, float inv_c2) {
    for (long i = 0; i < n; i++) {
        float grad = g[i];
        if (decoupled) p[i] -= lr * wd * p[i]; else grad += wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * grad;
        v[i] = b2 * v[i] + (1 - b2) * grad * grad;
        p[i] -= step_size * m[i] / (sqrtf(v[i] * inv_c2) + eps);
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
__attribute__((target("avx2,fma")))
static void adam_avx2(float *p, const float *g, float *m, float *v, long n, float lr, float b1, float b2, float eps,
                      float wd, int decoupled, float step_size, float inv_c2) {
    const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), c1 = _mm256_set1_ps(1 - b1), c2 = _mm256_set1_ps(1 - b2);
    const __m256 decay = _mm256_set1_ps(decoupled ? 1 - lr * wd : 1), l2 = _mm256_set1_ps(decoupled ? 0 : wd);
    const __m256 vs = _mm256_set1_ps(step_size), vinv = _mm256_set1_ps(inv_c2), veps = _mm256_set1_ps(eps);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 pv = _mm256_loadu_ps(p + i);
        __m256 grad = _mm256_fmadd_ps(l2, pv, _mm256_loadu_ps(g + i));
        pv = _mm256_mul_ps(pv, decay);
        __m256 mv = _mm256_fmadd_ps(vb1, _mm256_loadu_ps(m + i), _mm256_mul_ps(c1, grad));
        __m256 vv = _mm256_fmadd_ps(vb2, _mm256_loadu_ps(v + i), _mm256_mul_ps(c2, _mm256_mul_ps(grad, grad)));
        _mm256_storeu_ps(m + i, mv);
        _mm256_storeu_ps(v + i, vv);
        __m256 denom = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vv, vinv)), veps);
        _mm256_storeu_ps(p + i, _mm256_fnmadd_ps(vs, _mm256_div_ps(mv, denom), pv));
    }
    adam_generic(p + i, g + i, m + i, v + i, n - i, lr, b1, b2, eps, wd, decoupled, step_size, inv_c2);
}
#endif

void attend_adam_step(float *p, const float *g, float *m, float *v, long n, float lr, float beta1, float beta2, float eps,
                      float weight_decay, int decoupled, float step_size, float inv_correction2) {
#if defined(__x86_64__) || defined(__i386__)
    static int avx2 = -1;
    if (avx2 < 0) { __builtin_cpu_init(); avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
    if (avx2) { adam_avx2(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, decoupled, step_size, inv_correction2); return; }
#endif
    adam_generic(p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, decoupled, step_size, inv_correction2);
}
