// The word2vec inner update shared by negative sampling and hierarchical softmax (Mikolov et al., 2013):
// for each output row t with label y, f = <input, out_t>, g = (y - sigmoid(f)) * alpha,
// grad += g * out_t, out_t += g * input. Sigmoid comes from a table over [-6, 6] as in the original tool.
#include "CAttendKernels.h"
#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "SIMD.h"
#define W2V_X86 1
#endif

enum { EXP_TABLE_SIZE = 1000, MAX_EXP = 6 };
static float exp_table[EXP_TABLE_SIZE];
static int exp_table_ready = 0;

static void init_table(void) {
    for (int i = 0; i < EXP_TABLE_SIZE; i++) {
        float e = expf((i / (float)EXP_TABLE_SIZE * 2 - 1) * MAX_EXP);
        exp_table[i] = e / (e + 1);
    }
    exp_table_ready = 1;
}

// Gradient scale for one (row, label) pair; returns 0 to skip (hierarchical softmax outside the table).
static inline float scale_for(float f, float label, float alpha, int skip_outside) {
    if (f > MAX_EXP) return skip_outside ? 0 : (label - 1) * alpha;
    if (f < -MAX_EXP) return skip_outside ? 0 : (label - 0) * alpha;
    return (label - exp_table[(int)((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))]) * alpha;
}

static void update_generic(const float *input, float *grad, float *out, const int *rows, const float *labels,
                           long count, long dim, float alpha, int skip_outside) {
    for (long t = 0; t < count; t++) {
        float *o = out + (long)rows[t] * dim;
        float f = 0;
        for (long d = 0; d < dim; d++) f += input[d] * o[d];
        float g = scale_for(f, labels[t], alpha, skip_outside);
        if (g == 0) continue;
        for (long d = 0; d < dim; d++) grad[d] += g * o[d];
        for (long d = 0; d < dim; d++) o[d] += g * input[d];
    }
}

#ifdef W2V_X86

__attribute__((target("avx2,fma")))
static void update_avx2(const float *input, float *grad, float *out, const int *rows, const float *labels,
                        long count, long dim, float alpha, int skip_outside) {
    long vec = dim & ~7L;
    for (long t = 0; t < count; t++) {
        float *o = out + (long)rows[t] * dim;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        long d = 0;
        for (; d + 16 <= vec; d += 16) {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(input + d), _mm256_loadu_ps(o + d), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(input + d + 8), _mm256_loadu_ps(o + d + 8), acc1);
        }
        for (; d < vec; d += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(input + d), _mm256_loadu_ps(o + d), acc0);
        float f = attend_hsum256(_mm256_add_ps(acc0, acc1));
        for (; d < dim; d++) f += input[d] * o[d];
        float g = scale_for(f, labels[t], alpha, skip_outside);
        if (g == 0) continue;
        __m256 vg = _mm256_set1_ps(g);
        for (d = 0; d < vec; d += 8) {
            __m256 ov = _mm256_loadu_ps(o + d);
            _mm256_storeu_ps(grad + d, _mm256_fmadd_ps(vg, ov, _mm256_loadu_ps(grad + d)));
            _mm256_storeu_ps(o + d, _mm256_fmadd_ps(vg, _mm256_loadu_ps(input + d), ov));
        }
        for (; d < dim; d++) {
            float od = o[d];
            grad[d] += g * od;
            o[d] = od + g * input[d];
        }
    }
}

__attribute__((target("avx2,fma")))
static void axpy_avx2(long n, float a, const float *x, float *y) {
    long d = 0;
    __m256 va = _mm256_set1_ps(a);
    for (; d + 8 <= n; d += 8) _mm256_storeu_ps(y + d, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + d), _mm256_loadu_ps(y + d)));
    for (; d < n; d++) y[d] += a * x[d];
}
#endif

static void axpy_generic(long n, float a, const float *x, float *y) {
    for (long d = 0; d < n; d++) y[d] += a * x[d];
}

typedef void (*update_fn)(const float *, float *, float *, const int *, const float *, long, long, float, int);
typedef void (*axpy_fn)(long, float, const float *, float *);
static update_fn update_impl = 0;
static axpy_fn axpy_impl = 0;

static void pick(void) {
    if (!exp_table_ready) init_table();
    update_impl = update_generic;
    axpy_impl = axpy_generic;
#ifdef W2V_X86
    if (attend_simd_level() >= 1) {
        update_impl = update_avx2;
        axpy_impl = axpy_avx2;
    }
#endif
}

void attend_w2v_prepare(void) {
    pick();
}

void attend_w2v_update(const float *input, float *grad, float *out, const int *rows, const float *labels,
                       long count, long dim, float alpha, int skip_outside_table) {
    update_impl(input, grad, out, rows, labels, count, dim, alpha, skip_outside_table);
}

void attend_saxpy(long n, float a, const float *x, float *y) {
    axpy_impl(n, a, x, y);
}
