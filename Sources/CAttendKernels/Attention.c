// Causal attention for many query rows at once (a prompt, or a chunk of one) straight from the KV cache, tiled
// as in FlashAttention (Dao et al., 2022): each work item is one query head and a block of BQ rows; it walks the
// cached keys in blocks of BK with an online softmax (running max and sum per row), so the [T, S] score matrix is
// never built, key blocks past the block's last row are never visited, and grouped-query heads read their
// shared K/V rows in place. The AVX2 path transposes each key block once so that scores for 8 keys come from one
// FMA per dimension, with no horizontal sums; the portable path is the same algorithm in plain C.
#include "CAttendKernels.h"
#include "SIMD.h"
#include "Half.h"
#include <math.h>
#include <string.h>

enum { BQ = 32, BK = 64, MAX_HEAD = 256 };

/// Shape of one call: q [t, hq, hs], k / v [hkv, capacity, hs], y [t, hq, hs]; row i sits at position start + i.
/// Causal when kv_len < 0 (row i sees keys 0 ... start + i); otherwise every row sees keys 0 ..< kv_len (an
/// encoder, padding cut off).
typedef struct {
    const float *q, *k, *v;
    float *y;
    long t, start, hq, hkv, capacity, hs, kv_len;
    float scale;
} attention_shape;

/// Keys of the block starting at j0 (of nb keys) that row `row` may see: a prefix of the block.
static inline long visible_keys(const attention_shape *a, long row, long j0, long nb) {
    long v = (a->kv_len < 0 ? a->start + row + 1 : a->kv_len) - j0;
    return v < 0 ? 0 : v > nb ? nb : v;
}

/// The rows r0..r1 of head h: online softmax over the keys 0 ..< start + r1 (key j visible to row i when
/// j <= start + i).
static void block_generic(const attention_shape *a, long h, long r0, long r1) {
    const long hs = a->hs, group = a->hq / a->hkv;
    const float *kh = a->k + (h / group) * a->capacity * hs, *vh = a->v + (h / group) * a->capacity * hs;
    float m[BQ], l[BQ], o[BQ * MAX_HEAD], s[BK];
    long n = r1 - r0, keys = a->kv_len < 0 ? a->start + r1 : a->kv_len;
    for (long i = 0; i < n; i++) { m[i] = -INFINITY; l[i] = 0; }
    memset(o, 0, sizeof(float) * n * hs);
    for (long j0 = 0; j0 < keys; j0 += BK) {
        long nb = keys - j0 < BK ? keys - j0 : BK;
        for (long i = 0; i < n; i++) {
            const float *qi = a->q + ((r0 + i) * a->hq + h) * hs;
            long visible = visible_keys(a, r0 + i, j0, nb);  // keys j0 ..< j0 + visible
            if (visible == 0) continue;
            float mx = m[i];
            for (long jj = 0; jj < visible; jj++) {
                const float *kj = kh + (j0 + jj) * hs;
                float d = 0;
                for (long c = 0; c < hs; c++) d += qi[c] * kj[c];
                s[jj] = d * a->scale;
                if (s[jj] > mx) mx = s[jj];
            }
            float correction = expf(m[i] - mx), sum = 0;
            float *oi = o + i * hs;
            for (long c = 0; c < hs; c++) oi[c] *= correction;
            for (long jj = 0; jj < visible; jj++) {
                float p = expf(s[jj] - mx);
                sum += p;
                const float *vj = vh + (j0 + jj) * hs;
                for (long c = 0; c < hs; c++) oi[c] += p * vj[c];
            }
            l[i] = l[i] * correction + sum;
            m[i] = mx;
        }
    }
    for (long i = 0; i < n; i++) {
        float *yi = a->y + ((r0 + i) * a->hq + h) * hs, inv = 1 / l[i];
        for (long c = 0; c < hs; c++) yi[c] = o[i * hs + c] * inv;
    }
}

#if defined(__x86_64__) || defined(__i386__)
/// o = o * correction + sum over keys jj < visible of p[jj] v[jj] (v rows of hs floats, hs a multiple of 8).
__attribute__((target("avx2,fma")))
static inline void weighted_values_1(const float *p, const float *v, long hs, long visible, float *o, float correction) {
    const __m256 corr = _mm256_set1_ps(correction);
    for (long c = 0; c < hs; c += 8) {
        // Four accumulators: one chain of dependent FMAs would wait on each one's latency.
        __m256 a0 = _mm256_mul_ps(_mm256_load_ps(o + c), corr), a1 = _mm256_setzero_ps(), a2 = a1, a3 = a1;
        long jj = 0;
        for (; jj + 4 <= visible; jj += 4) {
            const float *vb = v + jj * hs + c;
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + jj), _mm256_loadu_ps(vb), a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + jj + 1), _mm256_loadu_ps(vb + hs), a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + jj + 2), _mm256_loadu_ps(vb + 2 * hs), a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + jj + 3), _mm256_loadu_ps(vb + 3 * hs), a3);
        }
        for (; jj < visible; jj++) a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + jj), _mm256_loadu_ps(v + jj * hs + c), a0);
        _mm256_store_ps(o + c, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
}

/// The same for two rows over the same value rows (keys past a row's own visible count carry p = 0), 32 columns at
/// a time: eight independent accumulators, six loads per eight multiply-adds.
__attribute__((target("avx2,fma")))
static inline void weighted_values_2(const float *p0, const float *p1, const float *v, long hs, long visible, float *o0, float *o1,
                                     float correction0, float correction1) {
    const __m256 corr0 = _mm256_set1_ps(correction0), corr1 = _mm256_set1_ps(correction1);
    long c = 0;
    for (; c + 32 <= hs; c += 32) {
        __m256 a0 = _mm256_mul_ps(_mm256_load_ps(o0 + c), corr0), a1 = _mm256_mul_ps(_mm256_load_ps(o0 + c + 8), corr0);
        __m256 a2 = _mm256_mul_ps(_mm256_load_ps(o0 + c + 16), corr0), a3 = _mm256_mul_ps(_mm256_load_ps(o0 + c + 24), corr0);
        __m256 b0 = _mm256_mul_ps(_mm256_load_ps(o1 + c), corr1), b1 = _mm256_mul_ps(_mm256_load_ps(o1 + c + 8), corr1);
        __m256 b2 = _mm256_mul_ps(_mm256_load_ps(o1 + c + 16), corr1), b3 = _mm256_mul_ps(_mm256_load_ps(o1 + c + 24), corr1);
        for (long jj = 0; jj < visible; jj++) {
            const float *vb = v + jj * hs + c;
            __m256 x = _mm256_broadcast_ss(p0 + jj), y = _mm256_broadcast_ss(p1 + jj);
            __m256 v0 = _mm256_loadu_ps(vb), v1 = _mm256_loadu_ps(vb + 8), v2 = _mm256_loadu_ps(vb + 16), v3 = _mm256_loadu_ps(vb + 24);
            a0 = _mm256_fmadd_ps(x, v0, a0); a1 = _mm256_fmadd_ps(x, v1, a1); a2 = _mm256_fmadd_ps(x, v2, a2); a3 = _mm256_fmadd_ps(x, v3, a3);
            b0 = _mm256_fmadd_ps(y, v0, b0); b1 = _mm256_fmadd_ps(y, v1, b1); b2 = _mm256_fmadd_ps(y, v2, b2); b3 = _mm256_fmadd_ps(y, v3, b3);
        }
        _mm256_store_ps(o0 + c, a0); _mm256_store_ps(o0 + c + 8, a1); _mm256_store_ps(o0 + c + 16, a2); _mm256_store_ps(o0 + c + 24, a3);
        _mm256_store_ps(o1 + c, b0); _mm256_store_ps(o1 + c + 8, b1); _mm256_store_ps(o1 + c + 16, b2); _mm256_store_ps(o1 + c + 24, b3);
    }
    for (; c < hs; c += 8) {  // the last columns, 8 at a time
        __m256 a = _mm256_mul_ps(_mm256_load_ps(o0 + c), corr0), b = _mm256_mul_ps(_mm256_load_ps(o1 + c), corr1);
        for (long jj = 0; jj < visible; jj++) {
            __m256 vv = _mm256_loadu_ps(v + jj * hs + c);
            a = _mm256_fmadd_ps(_mm256_broadcast_ss(p0 + jj), vv, a);
            b = _mm256_fmadd_ps(_mm256_broadcast_ss(p1 + jj), vv, b);
        }
        _mm256_store_ps(o0 + c, a);
        _mm256_store_ps(o1 + c, b);
    }
}

/// The same block with AVX2 + FMA; hs a multiple of 8.
__attribute__((target("avx2,fma")))
static void block_avx2(const attention_shape *a, long h, long r0, long r1) {
    const long hs = a->hs, group = a->hq / a->hkv;
    const float *kh = a->k + (h / group) * a->capacity * hs, *vh = a->v + (h / group) * a->capacity * hs;
    float m[BQ], l[BQ], s[BQ * BK] __attribute__((aligned(32)));
    float o[BQ * MAX_HEAD] __attribute__((aligned(32))), kt[MAX_HEAD * BK] __attribute__((aligned(32)));
    long n = r1 - r0, keys = a->kv_len < 0 ? a->start + r1 : a->kv_len;
    for (long i = 0; i < n; i++) { m[i] = -INFINITY; l[i] = 0; }
    memset(o, 0, sizeof(float) * n * hs);
    const __m256 scale = _mm256_set1_ps(a->scale), minus_inf = _mm256_set1_ps(-INFINITY);
    for (long j0 = 0; j0 < keys; j0 += BK) {
        long nb = keys - j0 < BK ? keys - j0 : BK, nb8 = (nb + 7) & ~7L;
        // kt[c][jj] = key j0 + jj, dimension c (zero past nb, so the padded lanes are finite before masking).
        for (long jj = 0; jj < nb8; jj++) {
            if (jj < nb) { const float *kj = kh + (j0 + jj) * hs; for (long c = 0; c < hs; c++) kt[c * BK + jj] = kj[c]; }
            else { for (long c = 0; c < hs; c++) kt[c * BK + jj] = 0; }
        }
        // Scores for 4 rows x 8 keys per pass over the dimensions.
        for (long i = 0; i < n; i += 4) {
            long rows = n - i < 4 ? n - i : 4;
            const float *qr[4];
            for (long u = 0; u < 4; u++) qr[u] = a->q + ((r0 + i + (u < rows ? u : 0)) * a->hq + h) * hs;
            long jj = 0;
            // 4 rows x 16 keys per pass over the dimensions: six loads per eight multiply-adds (the 8-key pass below,
            // for what is left, takes five per four and was bound by the loads).
            for (; jj + 16 <= nb8; jj += 16) {
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
                for (long c = 0; c < hs; c++) {
                    __m256 k0 = _mm256_load_ps(kt + c * BK + jj), k1 = _mm256_load_ps(kt + c * BK + jj + 8);
                    __m256 x0 = _mm256_broadcast_ss(qr[0] + c), x1 = _mm256_broadcast_ss(qr[1] + c);
                    __m256 x2 = _mm256_broadcast_ss(qr[2] + c), x3 = _mm256_broadcast_ss(qr[3] + c);
                    a0 = _mm256_fmadd_ps(x0, k0, a0); b0 = _mm256_fmadd_ps(x0, k1, b0);
                    a1 = _mm256_fmadd_ps(x1, k0, a1); b1 = _mm256_fmadd_ps(x1, k1, b1);
                    a2 = _mm256_fmadd_ps(x2, k0, a2); b2 = _mm256_fmadd_ps(x2, k1, b2);
                    a3 = _mm256_fmadd_ps(x3, k0, a3); b3 = _mm256_fmadd_ps(x3, k1, b3);
                }
                __m256 lo[4] = {a0, a1, a2, a3}, hi[4] = {b0, b1, b2, b3};
                for (long u = 0; u < rows; u++) {
                    long visible = visible_keys(a, r0 + i + u, j0, nb);
                    __m256i lane = _mm256_add_epi32(_mm256_set1_epi32((int)jj), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                    __m256i limit = _mm256_set1_epi32((int)visible);
                    __m256 keep0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(limit, lane));
                    __m256 keep1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(limit, _mm256_add_epi32(lane, _mm256_set1_epi32(8))));
                    _mm256_store_ps(s + (i + u) * BK + jj, _mm256_blendv_ps(minus_inf, _mm256_mul_ps(lo[u], scale), keep0));
                    _mm256_store_ps(s + (i + u) * BK + jj + 8, _mm256_blendv_ps(minus_inf, _mm256_mul_ps(hi[u], scale), keep1));
                }
            }
            for (; jj < nb8; jj += 8) {
                __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
                for (long c = 0; c < hs; c++) {
                    __m256 kv = _mm256_load_ps(kt + c * BK + jj);
                    acc0 = _mm256_fmadd_ps(_mm256_broadcast_ss(qr[0] + c), kv, acc0);
                    acc1 = _mm256_fmadd_ps(_mm256_broadcast_ss(qr[1] + c), kv, acc1);
                    acc2 = _mm256_fmadd_ps(_mm256_broadcast_ss(qr[2] + c), kv, acc2);
                    acc3 = _mm256_fmadd_ps(_mm256_broadcast_ss(qr[3] + c), kv, acc3);
                }
                __m256 accs[4] = {acc0, acc1, acc2, acc3};
                for (long u = 0; u < rows; u++) {
                    // Keys past this row's position (and past nb) are masked to -inf.
                    long visible = visible_keys(a, r0 + i + u, j0, nb);
                    __m256i lane = _mm256_add_epi32(_mm256_set1_epi32((int)jj), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                    __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)visible), lane));
                    _mm256_store_ps(s + (i + u) * BK + jj, _mm256_blendv_ps(minus_inf, _mm256_mul_ps(accs[u], scale), keep));
                }
            }
        }
        // Online softmax, row by row; a row's probabilities past what it sees are 0 (exp of -inf).
        float corrections[BQ];
        long visibles[BQ];
        for (long i = 0; i < n; i++) {
            long visible = visibles[i] = visible_keys(a, r0 + i, j0, nb);
            if (visible == 0) continue;
            float *si = s + i * BK;
            __m256 mv = _mm256_set1_ps(m[i]);
            for (long jj = 0; jj < nb8; jj += 8) mv = _mm256_max_ps(mv, _mm256_load_ps(si + jj));
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
            float mx = _mm_cvtss_f32(m4);
            __m256 mxv = _mm256_set1_ps(mx), sumv = _mm256_setzero_ps();
            for (long jj = 0; jj < nb8; jj += 8) {
                __m256 p = attend_exp8(_mm256_sub_ps(_mm256_load_ps(si + jj), mxv));
                _mm256_store_ps(si + jj, p);
                sumv = _mm256_add_ps(sumv, p);
            }
            float correction = corrections[i] = expf(m[i] - mx);
            l[i] = l[i] * correction + attend_hsum256(sumv);
            m[i] = mx;
        }
        // The weighted values, two rows at a time: each value row loaded once for both (the loads, not the
        // multiply-adds, bounded the one-row loop).
        for (long i = 0; i < n; i++) {
            if (visibles[i] == 0) continue;
            long i2 = i + 1;
            while (i2 < n && visibles[i2] == 0) i2++;
            if (i2 < n) {
                long visible = visibles[i] > visibles[i2] ? visibles[i] : visibles[i2];
                weighted_values_2(s + i * BK, s + i2 * BK, vh + j0 * hs, hs, visible, o + i * hs, o + i2 * hs, corrections[i], corrections[i2]);
                i = i2;
            } else {
                weighted_values_1(s + i * BK, vh + j0 * hs, hs, visibles[i], o + i * hs, corrections[i]);
            }
        }
    }
    for (long i = 0; i < n; i++) {
        float *yi = a->y + ((r0 + i) * a->hq + h) * hs;
        const __m256 inv = _mm256_set1_ps(1 / l[i]);
        for (long c = 0; c < hs; c += 8) _mm256_storeu_ps(yi + c, _mm256_mul_ps(_mm256_load_ps(o + i * hs + c), inv));
    }
}
#endif

long attend_prefill_attention_items(long t, long hq) { return hq * ((t + BQ - 1) / BQ); }

void attend_prefill_attention(const float *q, const float *k, const float *v, long t, long start, long hq, long hkv, long capacity,
                              long hs, float scale, long w0, long w1, float *y) {
    attend_fused_attention(q, k, v, t, start, -1, hq, hkv, capacity, hs, scale, w0, w1, y);
}

void attend_fused_attention(const float *q, const float *k, const float *v, long t, long start, long kv_len, long hq, long hkv,
                            long capacity, long hs, float scale, long w0, long w1, float *y) {
    attention_shape a = {q, k, v, y, t, start, hq, hkv, capacity, hs, kv_len, scale};
    long blocks = (t + BQ - 1) / BQ;
    void (*block)(const attention_shape *, long, long, long) = block_generic;
#if defined(__x86_64__) || defined(__i386__)
    if (hs % 8 == 0 && attend_use_avx2()) block = block_avx2;
#endif
    for (long w = w0; w < w1; w++) {
        // The longest row blocks (causal: the last rows see the most keys) come first, so the pool's last chunks are short.
        long rb = blocks - 1 - w / hq, h = w % hq;
        long r0 = rb * BQ, r1 = r0 + BQ < t ? r0 + BQ : t;
        block(&a, h, r0, r1);
    }
}

// Rotary position embeddings on adjacent pairs (llama.cpp's normal mode): for rows [r0, r1) of x [t, heads, d],
// pair (2i, 2i+1) of row p turns by angle p_i: out = x * cos + swap(x) * sin, with cos2 [t, d] holding each
// cosine twice and sin2 [t, d] holding (-sin, +sin) per pair, so 8 lanes turn 4 pairs with one shuffle.
static void rope_generic(const float *x, float *y, long r0, long r1, long heads, long d, const float *cos2, const float *sin2) {
    for (long p = r0; p < r1; p++) {
        const float *c = cos2 + p * d, *s = sin2 + p * d;
        for (long h = 0; h < heads; h++) {
            const float *xi = x + (p * heads + h) * d;
            float *yi = y + (p * heads + h) * d;
            for (long i = 0; i < d; i += 2) {
                float a = xi[i], b = xi[i + 1];
                yi[i] = a * c[i] + b * s[i];
                yi[i + 1] = b * c[i + 1] + a * s[i + 1];
            }
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma")))
static void rope_avx2(const float *x, float *y, long r0, long r1, long heads, long d, const float *cos2, const float *sin2) {
    for (long p = r0; p < r1; p++) {
        const float *c = cos2 + p * d, *s = sin2 + p * d;
        for (long h = 0; h < heads; h++) {
            const float *xi = x + (p * heads + h) * d;
            float *yi = y + (p * heads + h) * d;
            for (long i = 0; i < d; i += 8) {
                __m256 v = _mm256_loadu_ps(xi + i);
                __m256 swapped = _mm256_permute_ps(v, 0xB1);  // (b, a) per pair
                _mm256_storeu_ps(yi + i, _mm256_fmadd_ps(swapped, _mm256_loadu_ps(s + i), _mm256_mul_ps(v, _mm256_loadu_ps(c + i))));
            }
        }
    }
}
#endif

void attend_rope(const float *x, float *y, long r0, long r1, long heads, long d, const float *cos2, const float *sin2) {
#if defined(__x86_64__) || defined(__i386__)
    if (d % 8 == 0 && attend_use_avx2()) { rope_avx2(x, y, r0, r1, heads, d, cos2, sin2); return; }
#endif
    rope_generic(x, y, r0, r1, heads, d, cos2, sin2);
}

// One decoding step over keys [j0, j1) of the cache for every query head, reading each cached key and value row
// once for the whole group of query heads that shares it (the per-head loop read them hq / hkv times, which at
// long contexts made decoding memory-bound on the cache). Leaves per head the local max m, the sum l of
// exp(score - m) and the unnormalized weighted values o; attend_decode_attention_merge combines the parts.
static inline float dot_plain(const float *a, const void *b, long n) {
    const float *x = b;
    float s = 0;
    for (long i = 0; i < n; i++) s += a[i] * x[i];
    return s;
}

static inline void axpy_plain(float alpha, const void *x, float *y, long n) {
    const float *xs = x;
    for (long i = 0; i < n; i++) y[i] += alpha * xs[i];
}

// The same over a half-precision cache (the stored f16 values widened exactly, then float arithmetic).
static inline float dot_half_plain(const float *a, const void *b, long n) {
    const uint16_t *x = b;
    float s = 0;
    for (long i = 0; i < n; i++) s += a[i] * half_to_float(x[i]);
    return s;
}

static inline void axpy_half_plain(float alpha, const void *x, float *y, long n) {
    const uint16_t *xs = x;
    for (long i = 0; i < n; i++) y[i] += alpha * half_to_float(xs[i]);
}

/// x[j] = exp(x[j] - mx) for j < n; returns their sum.
static inline float exp_sum_plain(float *x, long n, float mx) {
    float sum = 0;
    for (long j = 0; j < n; j++) { x[j] = expf(x[j] - mx); sum += x[j]; }
    return sum;
}

/// The one body of every path; inlined into each with its own dot product, axpy and exp, which it then inlines too.
/// k and v hold rows of hs elements of `elementBytes` each (4: float32, 2: f16).
static inline __attribute__((always_inline)) void decode_part(const float *q, const void *k, const void *v, long elementBytes,
        long hq, long hkv, long capacity, long hs, float scale, long j0, long j1, float *scores, float *m, float *l, float *o,
        float (*dot)(const float *, const void *, long), void (*axpy)(float, const void *, float *, long),
        float (*exp_sum)(float *, long, float)) {
    long group = hq / hkv, n = j1 - j0, rowBytes = hs * elementBytes;
    for (long g = 0; g < hkv; g++) {
        const char *kg = (const char *)k + g * capacity * rowBytes, *vg = (const char *)v + g * capacity * rowBytes;
        for (long u = 0; u < group; u++) m[g * group + u] = -INFINITY;
        for (long j = j0; j < j1; j++) {
            const void *kj = kg + j * rowBytes;  // read once for the group's query heads
            for (long u = 0; u < group; u++) {
                long h = g * group + u;
                float sc = dot(q + h * hs, kj, hs) * scale;
                scores[h * n + (j - j0)] = sc;
                if (sc > m[h]) m[h] = sc;
            }
        }
        for (long u = 0; u < group; u++) {
            long h = g * group + u;
            l[h] = exp_sum(scores + h * n, n, m[h]);
            memset(o + h * hs, 0, sizeof(float) * hs);
        }
        for (long j = j0; j < j1; j++) {
            const void *vj = vg + j * rowBytes;
            for (long u = 0; u < group; u++) { long h = g * group + u; axpy(scores[h * n + (j - j0)], vj, o + h * hs, hs); }
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma")))
static inline float dot8(const float *a, const void *b, long n) {
    const float *x = b;
    __m256 acc = _mm256_setzero_ps();
    for (long i = 0; i < n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(x + i), acc);
    return attend_hsum256(acc);
}

__attribute__((target("avx2,fma")))
static inline void axpy8(float alpha, const void *x, float *y, long n) {
    const float *xs = x;
    __m256 a = _mm256_set1_ps(alpha);
    for (long i = 0; i < n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(xs + i), _mm256_loadu_ps(y + i)));
}

__attribute__((target("avx2,fma,f16c")))
static inline float dot8_half(const float *a, const void *b, long n) {
    const uint16_t *x = b;
    __m256 acc = _mm256_setzero_ps();
    for (long i = 0; i < n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))), acc);
    return attend_hsum256(acc);
}

__attribute__((target("avx2,fma,f16c")))
static inline void axpy8_half(float alpha, const void *x, float *y, long n) {
    const uint16_t *xs = x;
    __m256 a = _mm256_set1_ps(alpha);
    for (long i = 0; i < n; i += 8) {
        __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xs + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, xv, _mm256_loadu_ps(y + i)));
    }
}

// One exp per cached position and query head: at a few thousand positions, libm's expf one at a time took as long
// as reading the cache.
__attribute__((target("avx2,fma")))
static inline float exp_sum8(float *x, long n, float mx) {
    __m256 acc = _mm256_setzero_ps(), m8 = _mm256_set1_ps(mx);
    long j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = attend_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), m8));
        _mm256_storeu_ps(x + j, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = attend_hsum256(acc);
    for (; j < n; j++) { x[j] = expf(x[j] - mx); sum += x[j]; }
    return sum;
}

__attribute__((target("avx2,fma")))
static void decode_part_avx2(const float *q, const float *k, const float *v, long hq, long hkv, long capacity, long hs, float scale,
                             long j0, long j1, float *scores, float *m, float *l, float *o) {
    decode_part(q, k, v, 4, hq, hkv, capacity, hs, scale, j0, j1, scores, m, l, o, dot8, axpy8, exp_sum8);
}

__attribute__((target("avx2,fma,f16c")))
static void decode_part_half_avx2(const float *q, const uint16_t *k, const uint16_t *v, long hq, long hkv, long capacity, long hs,
                                  float scale, long j0, long j1, float *scores, float *m, float *l, float *o) {
    decode_part(q, k, v, 2, hq, hkv, capacity, hs, scale, j0, j1, scores, m, l, o, dot8_half, axpy8_half, exp_sum8);
}
#endif

void attend_decode_attention_part(const float *q, const float *k, const float *v, long hq, long hkv, long capacity, long hs, float scale,
                                  long j0, long j1, float *scores, float *m, float *l, float *o) {
#if defined(__x86_64__) || defined(__i386__)
    if (hs % 8 == 0 && attend_use_avx2()) { decode_part_avx2(q, k, v, hq, hkv, capacity, hs, scale, j0, j1, scores, m, l, o); return; }
#endif
    decode_part(q, k, v, 4, hq, hkv, capacity, hs, scale, j0, j1, scores, m, l, o, dot_plain, axpy_plain, exp_sum_plain);
}

void attend_decode_attention_part_half(const float *q, const unsigned short *k, const unsigned short *v, long hq, long hkv, long capacity,
                                       long hs, float scale, long j0, long j1, float *scores, float *m, float *l, float *o) {
#if defined(__x86_64__) || defined(__i386__)
    if (hs % 8 == 0 && attend_use_avx2()) { decode_part_half_avx2(q, k, v, hq, hkv, capacity, hs, scale, j0, j1, scores, m, l, o); return; }
#endif
    decode_part(q, k, v, 2, hq, hkv, capacity, hs, scale, j0, j1, scores, m, l, o, dot_half_plain, axpy_half_plain, exp_sum_plain);
}

// Rows of a half-precision cache: src [rows, heads, hs] (float, contiguous) into dst[(h * capacity + start + r) * hs],
// rounded to nearest even; and back, rows [0, s) of each head into dst [heads, s, hs].
#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,f16c")))
static void store_half_avx2(const float *src, long n, uint16_t *dst) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = float_to_half(src[i]);
}

__attribute__((target("avx2,f16c")))
static void load_half_avx2(const uint16_t *src, long n, float *dst) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = half_to_float(src[i]);
}
#endif

static void store_half(const float *src, long n, uint16_t *dst) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) { store_half_avx2(src, n, dst); return; }
#endif
    for (long i = 0; i < n; i++) dst[i] = float_to_half(src[i]);
}

static void load_half(const uint16_t *src, long n, float *dst) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) { load_half_avx2(src, n, dst); return; }
#endif
    for (long i = 0; i < n; i++) dst[i] = half_to_float(src[i]);
}

void attend_store_half_rows(const float *src, long rows, long heads, long hs, unsigned short *dst, long capacity, long start) {
    for (long r = 0; r < rows; r++)
        for (long h = 0; h < heads; h++) store_half(src + (r * heads + h) * hs, hs, dst + (h * capacity + start + r) * hs);
}

void attend_load_half_rows(const unsigned short *src, long heads, long capacity, long hs, long s, float *dst) {
    for (long h = 0; h < heads; h++) load_half(src + h * capacity * hs, s * hs, dst + h * s * hs);
}

void attend_decode_attention_merge(long parts, long hq, long hs, const float *m, const float *l, const float *o, float *y) {
    for (long h = 0; h < hq; h++) {
        float mx = -INFINITY, sum = 0;
        for (long p = 0; p < parts; p++) if (m[p * hq + h] > mx) mx = m[p * hq + h];
        float *yh = y + h * hs;
        for (long c = 0; c < hs; c++) yh[c] = 0;
        for (long p = 0; p < parts; p++) {
            float w = expf(m[p * hq + h] - mx);
            sum += l[p * hq + h] * w;
            const float *op = o + (p * hq + h) * hs;
            for (long c = 0; c < hs; c++) yh[c] += w * op[c];
        }
        for (long c = 0; c < hs; c++) yh[c] /= sum;
    }
}
