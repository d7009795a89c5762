// Matrix-vector products straight from GGML quantized blocks (32 weights each), for decoding one token,
// where reading the weights dominates: Q4_1 moves 5 bits per weight instead of 32. Activations stay float32.
//   Q4_1 block (20 bytes): f16 d, f16 m, 16 bytes of nibbles (low = weights 0-15, high = 16-31); w = q d + m.
//   Q8_0 block (34 bytes): f16 d, 32 int8; w = q d.
//   Q4_0 block (18 bytes): f16 d, 16 bytes of nibbles as in Q4_1; w = (q - 8) d.
#include "CAttendKernels.h"
#include <stdint.h>
#include <string.h>
#include "Half.h"


// Portable path: w x = sum over blocks of d sum(q x) + m sum(x).
static void gemv_generic(int type, const uint8_t *w, long rows, long cols, const float *x, float *y) {
    long blocks = cols / 32, bytes = ggml_block_bytes(type);
    for (long r = 0; r < rows; r++) {
        const uint8_t *b = w + r * blocks * bytes;
        float acc = 0;
        for (long k = 0; k < blocks; k++, b += bytes) {
            int8_t q[32];
            float d, m, sq = 0, sx = 0;
            ggml_block_unpack(type, b, q, &d, &m);
            for (int j = 0; j < 32; j++) { sq += q[j] * x[32 * k + j]; sx += x[32 * k + j]; }
            acc += d * sq + m * sx;
        }
        y[r] = acc;
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "SIMD.h"


__attribute__((target("avx2,fma,f16c")))
static void q4_1_avx2(const uint8_t *w, long rows, long cols, const float *x, float *y) {
    long blocks = cols / 32;
    for (long r = 0; r < rows; r++) {
        const uint8_t *b = w + r * blocks * 20;
        __m256 acc = _mm256_setzero_ps();
        for (long k = 0; k < blocks; k++, b += 20) {
            const float *xb = x + 32 * k;
            __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(*(const int32_t *)b));  // d, m in lanes 0, 1
            __m256 d = _mm256_broadcastss_ps(dm), m = _mm256_broadcastss_ps(_mm_shuffle_ps(dm, dm, 1));
            __m128i q = _mm_loadu_si128((const __m128i *)(b + 4));
            __m128i lo = _mm_and_si128(q, _mm_set1_epi8(0x0F)), hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F));
            __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8), x2 = _mm256_loadu_ps(xb + 16), x3 = _mm256_loadu_ps(xb + 24);
            __m256 q0 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
            __m256 q1 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
            __m256 q2 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
            __m256 q3 = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
            __m256 sq = _mm256_fmadd_ps(q0, x0, _mm256_fmadd_ps(q1, x1, _mm256_fmadd_ps(q2, x2, _mm256_mul_ps(q3, x3))));
            __m256 sx = _mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3));
            acc = _mm256_fmadd_ps(d, sq, _mm256_fmadd_ps(m, sx, acc));
        }
        y[r] = attend_hsum256(acc);
    }
}

__attribute__((target("avx2,fma,f16c")))
static void q4_0_avx2(const uint8_t *w, long rows, long cols, const float *x, float *y) {
    long blocks = cols / 32;
    for (long r = 0; r < rows; r++) {
        const uint8_t *b = w + r * blocks * 18;
        __m256 acc = _mm256_setzero_ps();
        for (long k = 0; k < blocks; k++, b += 18) {
            const float *xb = x + 32 * k;
            __m256 d = _mm256_set1_ps(attend_load_half(b));
            __m128i q = _mm_loadu_si128((const __m128i *)(b + 2)), eight = _mm_set1_epi8(8);
            __m128i lo = _mm_sub_epi8(_mm_and_si128(q, _mm_set1_epi8(0x0F)), eight);
            __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F)), eight);
            __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), _mm256_loadu_ps(xb));
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), _mm256_loadu_ps(xb + 8), s);
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), _mm256_loadu_ps(xb + 16), s);
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), _mm256_loadu_ps(xb + 24), s);
            acc = _mm256_fmadd_ps(d, s, acc);
        }
        y[r] = attend_hsum256(acc);
    }
}

__attribute__((target("avx2,fma,f16c")))
static void q8_0_avx2(const uint8_t *w, long rows, long cols, const float *x, float *y) {
    long blocks = cols / 32;
    for (long r = 0; r < rows; r++) {
        const uint8_t *b = w + r * blocks * 34;
        __m256 acc = _mm256_setzero_ps();
        for (long k = 0; k < blocks; k++, b += 34) {
            const float *xb = x + 32 * k;
            __m256 d = _mm256_set1_ps(attend_load_half(b));
            __m128i q01 = _mm_loadu_si128((const __m128i *)(b + 2)), q23 = _mm_loadu_si128((const __m128i *)(b + 18));
            __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q01)), _mm256_loadu_ps(xb));
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q01, 8))), _mm256_loadu_ps(xb + 8), s);
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q23)), _mm256_loadu_ps(xb + 16), s);
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q23, 8))), _mm256_loadu_ps(xb + 24), s);
            acc = _mm256_fmadd_ps(d, s, acc);
        }
        y[r] = attend_hsum256(acc);
    }
}
#endif

// Dequantization of whole rows, for products with several activation rows: a tile of weights is expanded
// to float32 and handed to an SGEMM; GGUFFile.read uses it too. Each weight is q * d + m with two roundings
// (no fused multiply-add), as the gguf package computes it, so both give the same floats.
static void dequantize_generic(int type, const uint8_t *w, long blocks, float *out) {
#pragma STDC FP_CONTRACT OFF
    long bytes = ggml_block_bytes(type);
    for (long k = 0; k < blocks; k++, out += 32) {
        int8_t q[32];
        float d, m;
        ggml_block_unpack(type, w + k * bytes, q, &d, &m);
        for (int j = 0; j < 32; j++) out[j] = (float)q[j] * d + m;  // for Q4_0 and Q8_0, m = 0 adds nothing
    }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma,f16c")))
static void dequantize_avx2(int type, const uint8_t *w, long blocks, float *out) {
    for (long k = 0; k < blocks; k++, out += 32) {
        if (type == 3) {
            const uint8_t *b = w + 20 * k;
            __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(*(const int32_t *)b));
            __m256 d = _mm256_broadcastss_ps(dm), m = _mm256_broadcastss_ps(_mm_shuffle_ps(dm, dm, 1));
            __m128i q = _mm_loadu_si128((const __m128i *)(b + 4));
            __m128i lo = _mm_and_si128(q, _mm_set1_epi8(0x0F)), hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F));
            __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
            for (int i = 0; i < 4; i++)
                _mm256_storeu_ps(out + 8 * i, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[i])), d), m));
        } else if (type == 2) {
            const uint8_t *b = w + 18 * k;
            __m256 d = _mm256_set1_ps(attend_load_half(b));
            __m128i q = _mm_loadu_si128((const __m128i *)(b + 2)), eight = _mm_set1_epi8(8);
            __m128i lo = _mm_sub_epi8(_mm_and_si128(q, _mm_set1_epi8(0x0F)), eight);
            __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F)), eight);
            __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
            for (int i = 0; i < 4; i++)
                _mm256_storeu_ps(out + 8 * i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[i])), d));
        } else {
            const uint8_t *b = w + 34 * k;
            __m256 d = _mm256_set1_ps(attend_load_half(b));
            __m128i q01 = _mm_loadu_si128((const __m128i *)(b + 2)), q23 = _mm_loadu_si128((const __m128i *)(b + 18));
            __m128i parts[4] = {q01, _mm_srli_si128(q01, 8), q23, _mm_srli_si128(q23, 8)};
            for (int i = 0; i < 4; i++)
                _mm256_storeu_ps(out + 8 * i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[i])), d));
        }
    }
}

// The same with 16 lanes, where the CPU has AVX-512: expanding a tile then costs half as much.
__attribute__((target("avx512f,f16c")))
static void dequantize_avx512(int type, const uint8_t *w, long blocks, float *out) {
    for (long k = 0; k < blocks; k++, out += 32) {
        if (type == 3) {
            const uint8_t *b = w + 20 * k;
            __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(*(const int32_t *)b));
            __m512 d = _mm512_broadcastss_ps(dm), m = _mm512_broadcastss_ps(_mm_shuffle_ps(dm, dm, 1));
            __m128i q = _mm_loadu_si128((const __m128i *)(b + 4));
            __m128i lo = _mm_and_si128(q, _mm_set1_epi8(0x0F)), hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F));
            _mm512_storeu_ps(out, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), d), m));
            _mm512_storeu_ps(out + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), d), m));
        } else if (type == 2) {
            const uint8_t *b = w + 18 * k;
            __m512 d = _mm512_set1_ps(attend_load_half(b));
            __m128i q = _mm_loadu_si128((const __m128i *)(b + 2)), eight = _mm_set1_epi8(8);
            __m128i lo = _mm_sub_epi8(_mm_and_si128(q, _mm_set1_epi8(0x0F)), eight);
            __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F)), eight);
            _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), d));
            _mm512_storeu_ps(out + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), d));
        } else {
            const uint8_t *b = w + 34 * k;
            __m512 d = _mm512_set1_ps(attend_load_half(b));
            __m128i q01 = _mm_loadu_si128((const __m128i *)(b + 2)), q23 = _mm_loadu_si128((const __m128i *)(b + 18));
            _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q01)), d));
            _mm512_storeu_ps(out + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q23)), d));
        }
    }
}
#endif

typedef void (*gemv_fn)(const uint8_t *, long, long, const float *, float *);

void attend_gemv_quantized(int type, const uint8_t *w, long rows, long cols, const float *x, float *y) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx2()) {
        gemv_fn f = type == 3 ? q4_1_avx2 : type == 2 ? q4_0_avx2 : q8_0_avx2;
        f(w, rows, cols, x, y);
        return;
    }
#endif
    gemv_generic(type, w, rows, cols, x, y);
}

void attend_dequantize_rows(int type, const unsigned char *w, long rows, long cols, float *out) {
#if defined(__x86_64__) || defined(__i386__)
    if (attend_use_avx512()) { dequantize_avx512(type, w, rows * (cols / 32), out); return; }
    if (attend_use_avx2()) { dequantize_avx2(type, w, rows * (cols / 32), out); return; }
#endif
    dequantize_generic(type, w, rows * (cols / 32), out);
}
