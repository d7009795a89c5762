// A BLIS-style SGEMM: pack a KC x NC block of B and an MC x KC block of A into contiguous panels, then a
// register-blocked micro-kernel multiplies MR x KC by KC x NR panels. The AVX-512 (12 x 16) and AVX2+FMA (6 x 16)
// micro-kernels are compiled with function-level target attributes and chosen at run time, so a baseline x86-64
// build still gets them.
#include "CAttendKernels.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ATTEND_X86 1
#endif

// MR is the generic and AVX2 kernels' row count; the AVX-512 kernel packs and multiplies MR512 rows.
enum { MR = 6, MR512 = 12, NR = 16, KC = 256, MC = 120, NC = 3072 };

static inline long min_l(long a, long b) { return a < b ? a : b; }

// dst[p * ld + i] = src[i * stride + p] for i < n, p < k: 4 x 4 blocks through SSE registers, the rows past
// the last multiple of 4 and the tail of p scalar.
static void transpose_into(const float *src, long stride, long n, long k, float *dst, long ld) {
    long p = 0, n4 = n / 4 * 4;
    for (long i = n4; i < n; i++)
        for (long q = 0; q < k; q++) dst[q * ld + i] = src[i * stride + q];
#ifdef ATTEND_X86
    for (; p + 4 <= k; p += 4) {
        for (long i = 0; i < n4; i += 4) {
            __m128 r0 = _mm_loadu_ps(src + (i + 0) * stride + p), r1 = _mm_loadu_ps(src + (i + 1) * stride + p);
            __m128 r2 = _mm_loadu_ps(src + (i + 2) * stride + p), r3 = _mm_loadu_ps(src + (i + 3) * stride + p);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(dst + (p + 0) * ld + i, r0);
            _mm_storeu_ps(dst + (p + 1) * ld + i, r1);
            _mm_storeu_ps(dst + (p + 2) * ld + i, r2);
            _mm_storeu_ps(dst + (p + 3) * ld + i, r3);
        }
    }
#endif
    for (; p < k; p++)
        for (long i = 0; i < n4; i++) dst[p * ld + i] = src[i * stride + p];
}

// Packs rows [0, mc) x cols [0, kc) of A (element (i, p) at a[i * rs + p * cs]) into `rows`-row panels,
// each stored p-major, zero-padding the last panel.
static void pack_a(long mc, long kc, const float *a, long rs, long cs, float *buf, long rows) {
    for (long i0 = 0; i0 < mc; i0 += rows) {
        long mr = min_l(rows, mc - i0);
        const float *src = a + i0 * rs;
        if (mr == rows && cs == 1) {
            // Row-major A: a transpose, done 4 x 4 at a time (scalar stores were 10% of a LoRA step).
            transpose_into(src, rs, rows, kc, buf, rows);
        } else if (mr == rows && rs == 1) {
            for (long p = 0; p < kc; p++) memcpy(buf + p * rows, src + p * cs, rows * sizeof(float));
        } else {
            for (long p = 0; p < kc; p++)
                for (long i = 0; i < rows; i++) buf[p * rows + i] = i < mr ? src[i * rs + p * cs] : 0.0f;
        }
        buf += kc * rows;
    }
}

// Packs rows [0, kc) x cols [0, nc) of B (element (p, j) at b[p * rs + j * cs]) into NR-column panels.
static void pack_b(long kc, long nc, const float *b, long rs, long cs, float *buf) {
    for (long j0 = 0; j0 < nc; j0 += NR) {
        long nr = min_l(NR, nc - j0);
        const float *src = b + j0 * cs;
        if (nr == NR && cs == 1) {
            for (long p = 0; p < kc; p++) memcpy(buf + p * NR, src + p * rs, NR * sizeof(float));
        } else if (nr == NR && rs == 1) {
            // B is a transposed view (x W^T): NR rows of W, each contiguous in p.
            transpose_into(src, cs, NR, kc, buf, NR);
        } else {
            for (long p = 0; p < kc; p++)
                for (long j = 0; j < NR; j++) buf[p * NR + j] = j < nr ? src[p * rs + j * cs] : 0.0f;
        }
        buf += kc * NR;
    }
}

// Writes an MR x NR accumulator tile into C: c = alpha * acc + beta * c, clipped to mr x nr.
static inline void store_tile(const float *acc, float *c, long ldc, long mr, long nr, float alpha, float beta) {
    for (long i = 0; i < mr; i++)
        for (long j = 0; j < nr; j++) {
            float v = alpha * acc[i * NR + j];
            c[i * ldc + j] = beta == 0.0f ? v : v + beta * c[i * ldc + j];
        }
}

static void kernel_generic(long kc, const float *a, const float *b, float *c, long ldc,
                           long mr, long nr, float alpha, float beta) {
    float acc[MR * NR];
    memset(acc, 0, sizeof(acc));
    for (long p = 0; p < kc; p++) {
        for (long i = 0; i < MR; i++) {
            float ai = a[p * MR + i];
            for (long j = 0; j < NR; j++) acc[i * NR + j] += ai * b[p * NR + j];
        }
    }
    store_tile(acc, c, ldc, mr, nr, alpha, beta);
}

#ifdef ATTEND_X86
__attribute__((target("avx2,fma")))
static void kernel_avx2(long kc, const float *a, const float *b, float *c, long ldc,
                        long mr, long nr, float alpha, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (long p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 ai;
        ai = _mm256_broadcast_ss(a + 0); c00 = _mm256_fmadd_ps(ai, b0, c00); c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1); c10 = _mm256_fmadd_ps(ai, b0, c10); c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2); c20 = _mm256_fmadd_ps(ai, b0, c20); c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3); c30 = _mm256_fmadd_ps(ai, b0, c30); c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4); c40 = _mm256_fmadd_ps(ai, b0, c40); c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5); c50 = _mm256_fmadd_ps(ai, b0, c50); c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += MR;
        b += NR;
    }
    __m256 va = _mm256_set1_ps(alpha);
    if (mr == MR && nr == NR) {
        __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
        if (beta == 0.0f) {
            for (int i = 0; i < MR; i++) {
                _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(va, acc[2 * i]));
                _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(va, acc[2 * i + 1]));
            }
        } else {
            __m256 vb = _mm256_set1_ps(beta);
            for (int i = 0; i < MR; i++) {
                float *ci = c + i * ldc;
                _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, acc[2 * i], _mm256_mul_ps(vb, _mm256_loadu_ps(ci))));
                _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(va, acc[2 * i + 1], _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8))));
            }
        }
    } else {
        float tile[MR * NR] __attribute__((aligned(32)));
        __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
        for (int i = 0; i < 12; i++) _mm256_store_ps(tile + i * 8, acc[i]);
        store_tile(tile, c, ldc, mr, nr, alpha, beta);
    }
}
#endif

#ifdef ATTEND_X86
// 12 rows x 16 columns: one zmm per row, 12 independent accumulators (enough to cover the FMA latency on two
// ports), one B load and 12 broadcasts per step.
__attribute__((target("avx512f")))
static void kernel_avx512(long kc, const float *a, const float *b, float *c, long ldc,
                          long mr, long nr, float alpha, float beta) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    __m512 c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
    for (long p = 0; p < kc; p++) {
        __m512 bv = _mm512_load_ps(b);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), bv, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[1]), bv, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[2]), bv, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[3]), bv, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[4]), bv, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[5]), bv, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(a[6]), bv, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(a[7]), bv, c7);
        c8 = _mm512_fmadd_ps(_mm512_set1_ps(a[8]), bv, c8);
        c9 = _mm512_fmadd_ps(_mm512_set1_ps(a[9]), bv, c9);
        c10 = _mm512_fmadd_ps(_mm512_set1_ps(a[10]), bv, c10);
        c11 = _mm512_fmadd_ps(_mm512_set1_ps(a[11]), bv, c11);
        a += MR512;
        b += NR;
    }
    __m512 acc[MR512] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 mask = nr >= NR ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        __m512 v = _mm512_mul_ps(va, acc[i]);
        if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, ci), v);
        _mm512_mask_storeu_ps(ci, mask, v);
    }
}
#endif

typedef void (*micro_kernel_fn)(long, const float *, const float *, float *, long, long, long, float, float);

/// The micro-kernel for the SIMD level in force now (Dispatch.c), asked per call so that a test or ATTEND_SIMD
/// can move every GEMM to another path.
static micro_kernel_fn pick_kernel(void) {
#ifdef ATTEND_X86
    int level = attend_simd_level();
    if (level >= 2) return kernel_avx512;
    if (level >= 1) return kernel_avx2;
#endif
    return kernel_generic;
}

const char *attend_sgemm_kernel_name(void) {
    micro_kernel_fn kernel = pick_kernel();
#ifdef ATTEND_X86
    if (kernel == kernel_avx512) return "avx512f";
    if (kernel == kernel_avx2) return "avx2-fma";
#endif
    return "generic";
}

void attend_sgemm(int transA, int transB, long M, long N, long K, float alpha,
                  const float *A, long lda, const float *B, long ldb, float beta, float *C, long ldc) {
    if (M <= 0 || N <= 0) return;
    micro_kernel_fn kernel = pick_kernel();
    long rows = MR;
#ifdef ATTEND_X86
    if (kernel == kernel_avx512) rows = MR512;
#endif
    if (K <= 0 || alpha == 0.0f) {
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    // Element (i, p) of op(A) is at A[i * ars + p * acs]; element (p, j) of op(B) at B[p * brs + j * bcs].
    long ars = transA ? 1 : lda, acs = transA ? lda : 1;
    long brs = transB ? 1 : ldb, bcs = transB ? ldb : 1;
    long ncMax = min_l(NC, ((N + NR - 1) / NR) * NR);
    long mcMax = min_l(MC, ((M + rows - 1) / rows) * rows);
    // C11 aligned_alloc wants a size that is a multiple of the alignment.
    size_t bytesB = ((size_t)(KC * ncMax) * sizeof(float) + 127) / 64 * 64;
    size_t bytesA = ((size_t)(KC * mcMax) * sizeof(float) + 127) / 64 * 64;
    float *bufB = aligned_alloc(64, bytesB);
    float *bufA = aligned_alloc(64, bytesA);
    for (long jc = 0; jc < N; jc += NC) {
        long nc = min_l(NC, N - jc);
        for (long pc = 0; pc < K; pc += KC) {
            long kc = min_l(KC, K - pc);
            float betaBlock = pc == 0 ? beta : 1.0f;
            pack_b(kc, nc, B + pc * brs + jc * bcs, brs, bcs, bufB);
            for (long ic = 0; ic < M; ic += MC) {
                long mc = min_l(MC, M - ic);
                pack_a(mc, kc, A + ic * ars + pc * acs, ars, acs, bufA, rows);
                for (long jr = 0; jr < nc; jr += NR) {
                    long nr = min_l(NR, nc - jr);
                    for (long ir = 0; ir < mc; ir += rows) {
                        long mr = min_l(rows, mc - ir);
                        kernel(kc, bufA + ir * kc, bufB + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc,
                               mr, nr, alpha, betaBlock);
                    }
                }
            }
        }
    }
    free(bufA);
    free(bufB);
}
