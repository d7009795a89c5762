// Self-attention for training, forward and backward, one (sequence, head) per call, as FlashAttention-2 (Dao, 2023)
// arranges it: the forward keeps only the output and each row's log-sum-exp of the scores; the backward recomputes
// the probabilities block by block from them. Query rows go in blocks of BQ; a causal block multiplies only the keys
// its last row sees (5/8 of the full [T, T] products at T = 4 BQ, nearing half as T grows), and nothing
// [T, T] is ever stored: the scratch is BQ rows of scores. The products are attend_sgemm calls (single-threaded;
// the caller runs heads in parallel), so every SIMD level the GEMM has, this has.
#include "CAttendKernels.h"
#include <math.h>
#include <string.h>

enum { BQ = 64 };

/// Keys row i sees: 0 ..< min(i + 1 if causal, kv_len).
static inline long visible_keys(long i, long kv_len, int causal) {
    long v = causal ? i + 1 : kv_len;
    return v < kv_len ? v : kv_len;
}

/// Row i of a block's scores (keys columns): the probabilities exp(s - lse) over the visible keys, 0 past them.
static void probabilities(float *s, long keys, long visible, float lse) {
    attend_row_softmax_affine(s, visible, lse, 1, 0, s);
    if (visible < keys) memset(s + visible, 0, sizeof(float) * (keys - visible));
}

long attend_attention_train_scratch(long t) { return BQ * t * 2 + t; }

void attend_attention_train_forward(const float *q, const float *k, const float *v, long t, long hs, long ldq, long ldy,
                                    long kv_len, int causal, float scale, float *y, float *lse, float *scratch) {
    float *s = scratch;
    for (long r0 = 0; r0 < t; r0 += BQ) {
        long n = t - r0 < BQ ? t - r0 : BQ;
        long keys = visible_keys(r0 + n - 1, kv_len, causal);
        attend_sgemm(0, 1, n, keys, hs, scale, q + r0 * ldq, ldq, k, ldq, 0, s, keys);
        for (long i = 0; i < n; i++) {
            float *si = s + i * keys;
            long visible = visible_keys(r0 + i, kv_len, causal);
            float row_lse = attend_row_logsumexp(si, visible);
            lse[r0 + i] = row_lse;
            probabilities(si, keys, visible, row_lse);
        }
        attend_sgemm(0, 0, n, hs, keys, 1, s, keys, v, ldq, 0, y + r0 * ldy, ldy);
    }
}

void attend_attention_train_backward(const float *q, const float *k, const float *v, const float *y, const float *dy,
                                     const float *lse, long t, long hs, long ldq, long ldy, long kv_len, int causal,
                                     float scale, float *dq, float *dk, float *dv, float *scratch) {
    float *p = scratch, *dp = scratch + BQ * t, *delta = scratch + 2 * BQ * t;
    // delta_i = <dy_i, y_i> = sum_j p_ij dp_ij: the softmax's backward needs it per row.
    for (long i = 0; i < t; i++) {
        float d = 0;
        for (long c = 0; c < hs; c++) d += dy[i * ldy + c] * y[i * ldy + c];
        delta[i] = d;
    }
    for (long i = 0; i < t; i++) { memset(dk + i * ldq, 0, sizeof(float) * hs); memset(dv + i * ldq, 0, sizeof(float) * hs); }
    for (long r0 = 0; r0 < t; r0 += BQ) {
        long n = t - r0 < BQ ? t - r0 : BQ;
        long keys = visible_keys(r0 + n - 1, kv_len, causal);
        attend_sgemm(0, 1, n, keys, hs, scale, q + r0 * ldq, ldq, k, ldq, 0, p, keys);
        for (long i = 0; i < n; i++) probabilities(p + i * keys, keys, visible_keys(r0 + i, kv_len, causal), lse[r0 + i]);
        // dv[0 ..< keys] += p^T dy; dp = dy v^T.
        attend_sgemm(1, 0, keys, hs, n, 1, p, keys, dy + r0 * ldy, ldy, 1, dv, ldq);
        attend_sgemm(0, 1, n, keys, hs, 1, dy + r0 * ldy, ldy, v, ldq, 0, dp, keys);
        // ds = p (dp - delta), in place of dp (0 wherever p is).
        for (long i = 0; i < n; i++) {
            float *pi = p + i * keys, *di = dp + i * keys, d = delta[r0 + i];
            for (long j = 0; j < keys; j++) di[j] = pi[j] * (di[j] - d);
        }
        // dq = scale ds k; dk[0 ..< keys] += scale ds^T q.
        attend_sgemm(0, 0, n, hs, keys, scale, dp, keys, k, ldq, 0, dq + r0 * ldq, ldq);
        attend_sgemm(1, 0, keys, hs, n, scale, dp, keys, q + r0 * ldq, ldq, 1, dk, ldq);
    }
}
