// IEEE half precision <-> float by bit manipulation, for the quantized kernels' f16 block scales
// (internal; the F16C instructions are used where the kernels are vectorized).
#ifndef CATTEND_HALF_H
#define CATTEND_HALF_H
#include <stdint.h>
#include <string.h>

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    bits = exp == 31 ? sign | 0x7F800000 | (man << 13) : sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/// Rounds to the nearest half (ties to even).
static inline uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7FFFFF;
    int exp = (int)((x >> 23) & 0xFF) - 127 + 15;
    if (((x >> 23) & 0xFF) == 0xFF) return (uint16_t)(sign | 0x7C00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7C00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - exp;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline float half_round(float f) { return half_to_float(float_to_half(f)); }
/// Bytes of one block of 32 weights: Q4_0 (type 2), Q4_1 (3), Q8_0 (8).
static inline long ggml_block_bytes(int type) { return type == 2 ? 18 : type == 3 ? 20 : 34; }

/// One block of 32 weights as integers with its scale and offset: w[j] = q[j] * d + m. Q4_1: q in 0..15;
/// Q4_0: q - 8 in -8..7, m = 0; Q8_0: q as stored, m = 0. Nibbles: low ones are weights 0-15, high ones 16-31.
static inline void ggml_block_unpack(int type, const uint8_t *b, int8_t q[32], float *d, float *m) {
    uint16_t h;
    memcpy(&h, b, 2);
    *d = half_to_float(h);
    *m = 0;
    if (type == 8) {
        memcpy(q, b + 2, 32);
        return;
    }
    const uint8_t *qs = b + (type == 3 ? 4 : 2);
    int bias = type == 3 ? 0 : 8;
    if (type == 3) { memcpy(&h, b + 2, 2); *m = half_to_float(h); }
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((qs[j] & 0x0F) - bias);
        q[j + 16] = (int8_t)((qs[j] >> 4) - bias);
    }
}

#endif
