// Quantized weights times 8-bit activations, as llama.cpp computes them: each block of 32 activations is
// scaled to int8 (d = max|x| / 127), and a block's dot product is an integer sum scaled once:
//   Q4_1 weights (w = q4 d + m):  d_w d_x sum(q4 q8) + m_w s_x,   s_x = d_x sum(q8)
//   Q8_0 weights (w = q8 d):      d_w d_x sum(q8w q8x)
//   Q4_0 weights (w = (q4 - 8) d): d_w d_x sum((q4 - 8) q8)
// Scales are rounded to f16 as in GGML's Q8_1 / Q8_0 blocks.
// The AVX2 path multiplies 32 int8 pairs per instruction (maddubs), 4x the work of the float32 path.
#include "CAttendKernels.h"
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "Half.h"

void attend_quantize_q8(const float *x, long n, attend_q8_block *out) {
    for (long b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int q = (int)nearbyintf(xb[j] * id);  // round half to even, as _mm256_round_ps
            out[b].q[j] = (int8_t)q;
            sum += q;
        }
        out[b].d = half_round(d);
        out[b].s = half_round(d * (float)sum);
        out[b].sum = sum;
    }
}

// Portable path: per block d_w d_x sum(q_w q_x) + m_w s_x (m_w = 0 but for Q4_1).
static void dot_q8_generic(int type, const uint8_t *w, long cols, const attend_q8_block *x, float *y) {
    long blocks = cols / 32, bytes = ggml_block_bytes(type);
    float acc = 0;
    for (long k = 0; k < blocks; k++, w += bytes) {
        int8_t q[32];
        float d, m;
        ggml_block_unpack(type, w, q, &d, &m);
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += q[j] * x[k].q[j];
        acc += d * x[k].d * (float)sum + m * x[k].s;
    }
    *y = acc;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "SIMD.h"

__attribute__((target("avx2,fma,f16c")))
static inline __m256 sum_pairs_u8_i8(__m256i u, __m256i s) {
    __m256i p16 = _mm256_maddubs_epi16(u, s);                       // u8 x i8 pairs -> i16 (no overflow: 15 * 127 * 2)
    __m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));      // -> i32
    return _mm256_cvtepi32_ps(p32);
}

__attribute__((target("avx2,fma,f16c")))
static void q4_1_q8_avx2(const uint8_t *w, long cols, const attend_q8_block *x, float *y) {
    long blocks = cols / 32;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    const __m256i low = _mm256_set1_epi8(0x0F);
    for (long k = 0; k < blocks; k++, w += 20) {
        __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(*(const int32_t *)w));
        float d = _mm_cvtss_f32(dm), m = _mm_cvtss_f32(_mm_shuffle_ps(dm, dm, 1));
        mins += m * x[k].s;
        __m128i q = _mm_loadu_si128((const __m128i *)(w + 4));
        // Weights 0-15 are the low nibbles, 16-31 the high ones.
        __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low);
        __m256i xq = _mm256_loadu_si256((const __m256i *)x[k].q);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[k].d), sum_pairs_u8_i8(nib, xq), acc);
    }
    *y = attend_hsum256(acc) + mins;
}

__attribute__((target("avx2,fma,f16c")))
static void q4_0_q8_avx2(const uint8_t *w, long cols, const attend_q8_block *x, float *y) {
    long blocks = cols / 32;
    __m256 acc = _mm256_setzero_ps();
    const __m256i low = _mm256_set1_epi8(0x0F), eight = _mm256_set1_epi8(8);
    for (long k = 0; k < blocks; k++, w += 18) {
        float d = attend_load_half(w);
        __m128i q = _mm_loadu_si128((const __m128i *)(w + 2));
        __m256i wq = _mm256_sub_epi8(_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), low), eight);  // -8..7
        __m256i xq = _mm256_loadu_si256((const __m256i *)x[k].q);
        __m256 s = sum_pairs_u8_i8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[k].d), s, acc);
    }
    *y = attend_hsum256(acc);
}

__attribute__((target("avx2,fma,f16c")))
static void q8_0_q8_avx2(const uint8_t *w, long cols, const attend_q8_block *x, float *y) {
    long blocks = cols / 32;
    __m256 acc = _mm256_setzero_ps();
    for (long k = 0; k < blocks; k++, w += 34) {
        float d = attend_load_half(w);
        __m256i wq = _mm256_loadu_si256((const __m256i *)(w + 2));
        __m256i xq = _mm256_loadu_si256((const __m256i *)x[k].q);
        // maddubs needs an unsigned operand: |w| times x with w's sign moved onto x.
        __m256 s = sum_pairs_u8_i8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * x[k].d), s, acc);
    }
    *y = attend_hsum256(acc);
}

#endif

typedef void (*dot_fn)(const uint8_t *, long, const attend_q8_block *, float *);

void attend_gemm_quantized_q8(int type, const unsigned char *w, long rows, long cols, const attend_q8_block *x, long tokens, float *y,
                              long ldy) {
    dot_fn f = NULL;
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) f = type == 3 ? q4_1_q8_avx2 : type == 2 ? q4_0_q8_avx2 : q8_0_q8_avx2;
#endif
    long rowBytes = cols / 32 * ggml_block_bytes(type), blocks = cols / 32;
    for (long r = 0; r < rows; r++) {
        for (long t = 0; t < tokens; t++) {
            if (f) f(w + r * rowBytes, cols, x + t * blocks, y + t * ldy + r);
            else dot_q8_generic(type, w + r * rowBytes, cols, x + t * blocks, y + t * ldy + r);
        }
    }
}

// MARK: Q4_0 and Q4_1 repacked in groups of 8 rows (decoding steps; Q4_0's prompts too)
//
// One pass of the one-row kernels above multiplies one row by one token and scales every block by a broadcast
// scalar. Here a register holds 4 columns of 8 rows (a row per 32-bit lane), so one broadcast of 4 activations and
// one maddubs serve 8 rows, the 8 row scales are one vector, and the unpacked weights serve 4 tokens: llama.cpp's
// Q4_0 8x8 repacking, in this layout. Weights are taken unsigned (0-15); Q4_0's offset of 8 comes off as 8 sum(x),
// Q4_1's minimum goes on as m_w s_x, both per row and block, as in the one-row kernels.

// Per group of 8 rows and block of 32 columns: 8 f16 scales, for Q4_1 8 f16 minimums, then 4 x 32 bytes of nibbles.
static long q4x8_head(int type) { return type == 3 ? 32 : 16; }
static long q4x8_block(int type) { return q4x8_head(type) + 128; }

long attend_q4x8_bytes(int type, long rows, long cols) { return rows / 8 * (cols / 32) * q4x8_block(type); }

static inline void q4x8_piece(int pack, unsigned char *packed, unsigned char *row, long n) {
    if (pack) memcpy(packed, row, n);
    else memcpy(row, packed, n);
}

// GGUF rows <-> groups of 8: `pack` 1 writes `packed` from `rows`, 0 writes `rows` back from `packed`.
static void q4x8_convert(int type, unsigned char *rows, long groups, long cols, unsigned char *packed, int pack) {
    long blocks = cols / 32, bytes = ggml_block_bytes(type), head = q4x8_head(type), nibbles = type == 3 ? 4 : 2;
    for (long g = 0; g < groups; g++) {
        for (long k = 0; k < blocks; k++) {
            unsigned char *o = packed + (g * blocks + k) * q4x8_block(type);
            for (int r = 0; r < 8; r++) {
                unsigned char *b = rows + (g * 8 + r) * blocks * bytes + k * bytes;
                q4x8_piece(pack, o + 2 * r, b, 2);                               // the scale
                if (type == 3) q4x8_piece(pack, o + 16 + 2 * r, b + 2, 2);        // Q4_1's minimum
                // A GGUF block's byte i holds weight i (low nibble) and weight 16 + i (high nibble).
                for (int j = 0; j < 4; j++) q4x8_piece(pack, o + head + 32 * j + 4 * r, b + nibbles + 4 * j, 4);
            }
        }
    }
}

void attend_repack_q4x8(int type, const unsigned char *w, long rows, long cols, unsigned char *out) {
    q4x8_convert(type, (unsigned char *)w, rows / 8, cols, out, 1);
}

void attend_unpack_q4x8(int type, const unsigned char *w, long group0, long groups, long cols, unsigned char *out) {
    q4x8_convert(type, out, groups, cols, (unsigned char *)w + group0 * (cols / 32) * q4x8_block(type), 0);
}

static void q4x8_generic(int type, const unsigned char *w, long groups, long cols, const attend_q8_block *x, long tokens, float *y,
                         long ldy) {
    long blocks = cols / 32, head = q4x8_head(type);
    for (long g = 0; g < groups; g++) {
        for (long t = 0; t < tokens; t++) {
            float acc[8] = {0};
            for (long k = 0; k < blocks; k++) {
                const unsigned char *b = w + (g * blocks + k) * q4x8_block(type);
                const attend_q8_block *xb = x + t * blocks + k;
                for (int r = 0; r < 8; r++) {
                    int sum = 0;
                    for (int j = 0; j < 4; j++) {
                        for (int c = 0; c < 4; c++) {
                            int v = b[head + 32 * j + 4 * r + c];
                            sum += (v & 15) * xb->q[4 * j + c] + (v >> 4) * xb->q[16 + 4 * j + c];
                        }
                    }
                    float d = half_to_float((uint16_t)(b[2 * r] | b[2 * r + 1] << 8)) * xb->d;
                    if (type == 3) acc[r] += d * (float)sum + half_to_float((uint16_t)(b[16 + 2 * r] | b[17 + 2 * r] << 8)) * xb->s;
                    else acc[r] += d * (float)(sum - 8 * xb->sum);
                }
            }
            for (int r = 0; r < 8; r++) y[t * ldy + g * 8 + r] = acc[r];
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)

// 8 rows x `nt` tokens (1-4): the unpacked weights of a block stay in registers for all nt tokens. `type` is a
// constant at each call, so each type gets its own copy.
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void q4x8_tile_avx2(int type, const unsigned char *w, long blocks, const attend_q8_block *x, int nt, float *y, long ldy) {
    const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    const long head = q4x8_head(type), step = q4x8_block(type);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (long k = 0; k < blocks; k++, w += step) {
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w));
        __m256 mw = type == 3 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 16))) : _mm256_setzero_ps();
        __m256i u[8];
        for (int j = 0; j < 4; j++) {
            __m256i p = _mm256_loadu_si256((const __m256i *)(w + head + 32 * j));
            u[j] = _mm256_and_si256(p, low);                              // columns 4j..4j+3
            u[j + 4] = _mm256_and_si256(_mm256_srli_epi16(p, 4), low);    // columns 16+4j..16+4j+3
        }
        for (int t = 0; t < nt; t++) {
            const attend_q8_block *xb = x + t * blocks + k;
            int32_t xq[8];
            memcpy(xq, xb->q, 32);
            // Each i16 lane sums 2 products of at most 15 x 127; eight such stay below 2^15.
            __m256i s = _mm256_maddubs_epi16(u[0], _mm256_set1_epi32(xq[0]));
            for (int j = 1; j < 8; j++) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(u[j], _mm256_set1_epi32(xq[j])));
            __m256i dot = _mm256_madd_epi16(s, ones);
            if (type == 3) {
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xb->d)), _mm256_cvtepi32_ps(dot), acc[t]);
                acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(xb->s), acc[t]);
            } else {
                dot = _mm256_sub_epi32(dot, _mm256_set1_epi32(8 * xb->sum));
                acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xb->d)), _mm256_cvtepi32_ps(dot), acc[t]);
            }
        }
    }
    for (int t = 0; t < nt; t++) _mm256_storeu_ps(y + t * ldy, acc[t]);
}

__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void q4x8_avx2(int type, const unsigned char *w, long groups, long cols, const attend_q8_block *x, long tokens, float *y,
                             long ldy) {
    long blocks = cols / 32;
    for (long g = 0; g < groups; g++) {
        const unsigned char *wg = w + g * blocks * q4x8_block(type);
        long t = 0;
        for (; t + 4 <= tokens; t += 4) q4x8_tile_avx2(type, wg, blocks, x + t * blocks, 4, y + t * ldy + g * 8, ldy);
        switch (tokens - t) {
        case 3: q4x8_tile_avx2(type, wg, blocks, x + t * blocks, 3, y + t * ldy + g * 8, ldy); break;
        case 2: q4x8_tile_avx2(type, wg, blocks, x + t * blocks, 2, y + t * ldy + g * 8, ldy); break;
        case 1: q4x8_tile_avx2(type, wg, blocks, x + t * blocks, 1, y + t * ldy + g * 8, ldy); break;
        default: break;
        }
    }
}

__attribute__((target("avx2,fma,f16c")))
static void q4_0x8_avx2(const unsigned char *w, long groups, long cols, const attend_q8_block *x, long tokens, float *y, long ldy) {
    q4x8_avx2(2, w, groups, cols, x, tokens, y, ldy);
}

__attribute__((target("avx2,fma,f16c")))
static void q4_1x8_avx2(const unsigned char *w, long groups, long cols, const attend_q8_block *x, long tokens, float *y, long ldy) {
    q4x8_avx2(3, w, groups, cols, x, tokens, y, ldy);
}

#endif

void attend_gemm_q4x8_q8(int type, const unsigned char *w, long group0, long groups, long cols, const attend_q8_block *x,
                         long tokens, float *y, long ldy) {
    w += group0 * (cols / 32) * q4x8_block(type);
    y += group0 * 8;
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) { (type == 3 ? q4_1x8_avx2 : q4_0x8_avx2)(w, groups, cols, x, tokens, y, ldy); return; }
#endif
    q4x8_generic(type, w, groups, cols, x, tokens, y, ldy);
}
