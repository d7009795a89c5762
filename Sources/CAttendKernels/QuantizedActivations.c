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
