// Convolution kernels. im2col / col2im, which turn a dense convolution into a GEMM and fold its gradient back; and
// depthwise 2-D convolution (one filter per channel, MobileNet / EfficientNet), forward and backward, directly:
// im2col would copy each input K*K times to feed a GEMM of one row. The portable loops and the backward build rows by
// axpy over input rows, contiguous when the stride is 1, so the compiler vectorizes them (an AVX2 copy of each is
// chosen at run time); the AVX2 forward reads a zero-bordered copy of each plane, 8 outputs per register.

#include "CAttendKernels.h"
#include <stdlib.h>
#include <string.h>

/// Output columns ox whose input column ox * stride - pad_left + kj lies in [0, w).
static inline void valid_columns(long w, long ow, long stride, long pad_left, long kj, long *lo, long *hi) {
    long first = pad_left - kj;
    long l = first <= 0 ? 0 : (first + stride - 1) / stride;
    long last = w - 1 + pad_left - kj;
    long h = last < 0 ? 0 : (last / stride + 1 < ow ? last / stride + 1 : ow);
    *lo = l < h ? l : h;
    *hi = h;
}

#define DEPTHWISE_FORWARD_BODY                                                                                  \
    for (long n = 0; n < batch; n++) {                                                                          \
        for (long c = c0; c < c1; c++) {                                                                        \
            const float *xp = x + (n * channels + c) * h * w;                                                   \
            const float *wp = weight + c * kh * kw;                                                             \
            float *yp = y + (n * channels + c) * oh * ow;                                                       \
            float b = bias ? bias[c] : 0.0f;                                                                    \
            for (long i = 0; i < oh * ow; i++) yp[i] = b;                                                       \
            for (long oy = 0; oy < oh; oy++) {                                                                  \
                float *row = yp + oy * ow;                                                                      \
                for (long ki = 0; ki < kh; ki++) {                                                              \
                    long iy = oy * stride - pad_top + ki;                                                       \
                    if (iy < 0 || iy >= h) continue;                                                            \
                    const float *in = xp + iy * w;                                                              \
                    for (long kj = 0; kj < kw; kj++) {                                                          \
                        long lo, hi;                                                                            \
                        valid_columns(w, ow, stride, pad_left, kj, &lo, &hi);                                   \
                        float v = wp[ki * kw + kj];                                                             \
                        const float *src = in - pad_left + kj;                                                  \
                        if (stride == 1) {                                                                      \
                            for (long ox = lo; ox < hi; ox++) row[ox] += v * src[ox];                           \
                        } else {                                                                                \
                            for (long ox = lo; ox < hi; ox++) row[ox] += v * src[ox * stride];                  \
                        }                                                                                       \
                    }                                                                                           \
                }                                                                                               \
            }                                                                                                   \
        }                                                                                                       \
    }

#define DEPTHWISE_BACKWARD_BODY                                                                                 \
    for (long c = c0; c < c1; c++) {                                                                            \
        const float *wp = weight + c * kh * kw;                                                                 \
        float *dwp = dweight ? dweight + c * kh * kw : 0;                                                       \
        for (long n = 0; n < batch; n++) {                                                                      \
            const float *xp = x + (n * channels + c) * h * w;                                                   \
            const float *gp = grad + (n * channels + c) * oh * ow;                                              \
            float *dxp = dx ? dx + (n * channels + c) * h * w : 0;                                              \
            for (long oy = 0; oy < oh; oy++) {                                                                  \
                const float *grow = gp + oy * ow;                                                               \
                for (long ki = 0; ki < kh; ki++) {                                                              \
                    long iy = oy * stride - pad_top + ki;                                                       \
                    if (iy < 0 || iy >= h) continue;                                                            \
                    for (long kj = 0; kj < kw; kj++) {                                                          \
                        long lo, hi;                                                                            \
                        valid_columns(w, ow, stride, pad_left, kj, &lo, &hi);                                   \
                        long off = iy * w - pad_left + kj;                                                      \
                        if (dwp) {                                                                              \
                            float acc = 0.0f;                                                                   \
                            if (stride == 1) {                                                                  \
                                for (long ox = lo; ox < hi; ox++) acc += grow[ox] * xp[off + ox];               \
                            } else {                                                                            \
                                for (long ox = lo; ox < hi; ox++) acc += grow[ox] * xp[off + ox * stride];      \
                            }                                                                                   \
                            dwp[ki * kw + kj] += acc;                                                           \
                        }                                                                                       \
                        if (dxp) {                                                                              \
                            float v = wp[ki * kw + kj];                                                         \
                            if (stride == 1) {                                                                  \
                                for (long ox = lo; ox < hi; ox++) dxp[off + ox] += v * grow[ox];                \
                            } else {                                                                            \
                                for (long ox = lo; ox < hi; ox++) dxp[off + ox * stride] += v * grow[ox];       \
                            }                                                                                   \
                        }                                                                                       \
                    }                                                                                           \
                }                                                                                               \
            }                                                                                                   \
        }                                                                                                       \
    }

#define DEPTHWISE_FORWARD_ARGS                                                                                  \
    const float *x, const float *weight, const float *bias, float *y, long batch, long channels, long c0, long c1,  \
    long h, long w, long kh, long kw, long stride, long pad_top, long pad_left, long oh, long ow
#define DEPTHWISE_BACKWARD_ARGS                                                                                 \
    const float *x, const float *weight, const float *grad, float *dx, float *dweight, long batch, long channels,   \
    long c0, long c1, long h, long w, long kh, long kw, long stride, long pad_top, long pad_left, long oh, long ow

static void forward_generic(DEPTHWISE_FORWARD_ARGS) { DEPTHWISE_FORWARD_BODY }
static void backward_generic(DEPTHWISE_BACKWARD_ARGS) { DEPTHWISE_BACKWARD_BODY }

#if defined(__x86_64__)
#include "SIMD.h"
/// The AVX2 forward copies each input plane once into a zero-bordered buffer whose rows are split into their stride
/// phases (for stride s, columns r, r + s, r + 2s, ... of the padded row stored together for each r < s). Every tap
/// then reads 8 contiguous inputs with no bounds checks, and 8 outputs take all kh * kw taps in one register before a
/// single store. The row-by-row axpy above reloaded and stored each output row kh * kw times, recomputed its valid
/// range with divisions for every tap and row, and ran stride 2 one lane at a time: 45% of EfficientNet-Lite0's time
/// on one picture. The backward reads the same buffer for the weight gradient (one register per tap over the whole
/// plane) and adds the input gradient into a second buffer of that layout, 8 outputs per tap at a time, which is
/// then folded back into the plane.
typedef struct {
    long rows, phase, padded;  // padded rows the outputs read; each phase's length; floats per padded row
} PhasePlane;

static PhasePlane phase_plane(long kh, long kw, long stride, long oh, long ow) {
    PhasePlane p;
    p.rows = (oh - 1) * stride + kh;
    p.phase = ow + (kw - 1) / stride + 9;  // the last block's 8-lane loads and stores stay inside
    p.padded = p.phase * stride;
    return p;
}

/// Copies plane xp [h, w] into buffer in the PhasePlane layout: padded column j of padded row py (input row
/// py - pad_top, column j - pad_left, zero outside) at py * padded + (j % stride) * phase + j / stride.
static void fill_phases(const float *xp, long h, long w, long stride, long pad_top, long pad_left, PhasePlane p, float *buffer) {
    for (long py = 0; py < p.rows; py++) {
        float *dst = buffer + py * p.padded;
        long iy = py - pad_top;
        if (iy < 0 || iy >= h) { memset(dst, 0, sizeof(float) * (size_t)p.padded); continue; }
        const float *src = xp + iy * w;
        if (stride == 1) {
            long left = pad_left < p.padded ? pad_left : p.padded;
            long count = w < p.padded - left ? w : p.padded - left;
            memset(dst, 0, sizeof(float) * (size_t)left);
            memcpy(dst + left, src, sizeof(float) * (size_t)count);
            memset(dst + left + count, 0, sizeof(float) * (size_t)(p.padded - left - count));
        } else {
            // Phase r's column j reads input column j * stride + r - pad_left: zeros before and after the columns
            // [lo, hi) that fall inside the row, so the copy between needs no test.
            for (long r = 0; r < stride; r++) {
                float *out = dst + r * p.phase;
                long first = pad_left - r, last = w - 1 + pad_left - r;
                long lo = first > 0 ? (first + stride - 1) / stride : 0;
                long hi = last >= 0 ? last / stride + 1 : 0;
                if (lo > p.phase) lo = p.phase;
                if (hi > p.phase) hi = p.phase;
                if (hi < lo) hi = lo;
                memset(out, 0, sizeof(float) * (size_t)lo);
                const float *in = src + lo * stride + r - pad_left;
                for (long j = 0; j < hi - lo; j++) out[lo + j] = in[j * stride];
                memset(out + hi, 0, sizeof(float) * (size_t)(p.phase - hi));
            }
        }
    }
}

/// The first (tap-ordered) float of the 8 inputs that outputs (oy, ox ... ox + 7) read at tap (ki, kj).
static inline long phase_offset(PhasePlane p, long stride, long oy, long ox, long ki, long kj) {
    return (oy * stride + ki) * p.padded + (kj % stride) * p.phase + kj / stride + ox;
}

/// acc plus the taps' weights times the 8 inputs each reads, from base + offsets[t].
__attribute__((target("avx2,fma"), always_inline)) static inline __m256 depthwise_taps(const float *base, const long *offsets, const __m256 *wv,
                                                                                     long taps, __m256 acc) {
    for (long t = 0; t < taps; t++) acc = _mm256_fmadd_ps(wv[t], _mm256_loadu_ps(base + offsets[t]), acc);
    return acc;
}

__attribute__((target("avx2,fma"))) static void forward_avx2(DEPTHWISE_FORWARD_ARGS) {
    long taps = kh * kw;
    PhasePlane pp = phase_plane(kh, kw, stride, oh, ow);
    float *buffer = taps <= 64 ? malloc(sizeof(float) * (size_t)(pp.rows * pp.padded)) : NULL;
    if (!buffer) { forward_generic(x, weight, bias, y, batch, channels, c0, c1, h, w, kh, kw, stride, pad_top, pad_left, oh, ow); return; }
    __m256 wv[64];
    // Each tap's offset from the block's first input, computed once: in the loop, phase_offset's % and / by the
    // stride compiled to a division per tap, and the divisions took most of the kernel's time.
    long offsets[64];
    for (long ki = 0; ki < kh; ki++)
        for (long kj = 0; kj < kw; kj++) offsets[ki * kw + kj] = phase_offset(pp, stride, 0, 0, ki, kj);
    for (long n = 0; n < batch; n++) {
        for (long c = c0; c < c1; c++) {
            const float *xp = x + (n * channels + c) * h * w;
            float *yp = y + (n * channels + c) * oh * ow;
            for (long t = 0; t < taps; t++) wv[t] = _mm256_set1_ps(weight[c * taps + t]);
            __m256 b = _mm256_set1_ps(bias ? bias[c] : 0.0f);
            fill_phases(xp, h, w, stride, pad_top, pad_left, pp, buffer);
            for (long oy = 0; oy < oh; oy++) {
                float *yrow = yp + oy * ow;
                const float *row = buffer + oy * stride * pp.padded;
                for (long ox = 0; ox < ow; ox += 8) {
                    // 3 x 3 and 5 x 5 (every depthwise filter of EfficientNet and MobileNet) get fully unrolled loops.
                    __m256 acc = taps == 9    ? depthwise_taps(row + ox, offsets, wv, 9, b)
                                 : taps == 25 ? depthwise_taps(row + ox, offsets, wv, 25, b)
                                              : depthwise_taps(row + ox, offsets, wv, taps, b);
                    if (ox + 8 <= ow) {
                        _mm256_storeu_ps(yrow + ox, acc);
                    } else {
                        float tail[8];
                        _mm256_storeu_ps(tail, acc);
                        memcpy(yrow + ox, tail, sizeof(float) * (size_t)(ow - ox));
                    }
                }
            }
        }
    }
    free(buffer);
}

/// 8 gradients of row grow from ox, zeros past ow.
__attribute__((target("avx2,fma"))) static inline __m256 load_gradients(const float *grow, long ox, long ow) {
    if (ox + 8 <= ow) return _mm256_loadu_ps(grow + ox);
    float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(tail, grow + ox, sizeof(float) * (size_t)(ow - ox));
    return _mm256_loadu_ps(tail);
}

__attribute__((target("avx2,fma"))) static void backward_avx2(DEPTHWISE_BACKWARD_ARGS) {
    long taps = kh * kw;
    PhasePlane pp = phase_plane(kh, kw, stride, oh, ow);
    size_t planeFloats = (size_t)(pp.rows * pp.padded);
    float *buffer = taps <= 64 ? malloc(sizeof(float) * planeFloats * (dx ? 2 : 1)) : NULL;
    if (!buffer) {
        backward_generic(x, weight, grad, dx, dweight, batch, channels, c0, c1, h, w, kh, kw, stride, pad_top, pad_left, oh, ow);
        return;
    }
    float *dbuffer = dx ? buffer + planeFloats : NULL;
    __m256 wv[64];
    for (long c = c0; c < c1; c++) {
        for (long t = 0; t < taps; t++) wv[t] = _mm256_set1_ps(weight[c * taps + t]);
        for (long n = 0; n < batch; n++) {
            const float *xp = x + (n * channels + c) * h * w;
            const float *gp = grad + (n * channels + c) * oh * ow;
            // dW: each tap's products over the whole plane in four registers, so that the additions do not wait on
            // each other (gradients past ow are zero). A frozen filter (style transfer, a locked tower) passes no
            // dweight and skips this and the copy of x.
            if (dweight) {
                fill_phases(xp, h, w, stride, pad_top, pad_left, pp, buffer);
                for (long ki = 0; ki < kh; ki++) {
                    for (long kj = 0; kj < kw; kj++) {
                        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                        for (long oy = 0; oy < oh; oy++) {
                            const float *grow = gp + oy * ow, *xrow = buffer + phase_offset(pp, stride, oy, 0, ki, kj);
                            long ox = 0;
                            for (; ox + 32 <= ow; ox += 32) {
                                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(grow + ox), _mm256_loadu_ps(xrow + ox), a0);
                                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(grow + ox + 8), _mm256_loadu_ps(xrow + ox + 8), a1);
                                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(grow + ox + 16), _mm256_loadu_ps(xrow + ox + 16), a2);
                                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(grow + ox + 24), _mm256_loadu_ps(xrow + ox + 24), a3);
                            }
                            for (; ox < ow; ox += 8)
                                a0 = _mm256_fmadd_ps(load_gradients(grow, ox, ow), _mm256_loadu_ps(xrow + ox), a0);
                        }
                        __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
                        dweight[c * taps + ki * kw + kj] += attend_hsum256(sum);
                    }
                }
            }
            if (!dx) continue;
            // dX: every output's gradient times each tap, added where that tap read its input, then folded back. One
            // tap at a time over the plane: with the taps innermost, each tap's 8 lanes overlapped the ones the tap
            // before had just stored, one float over, which the CPU cannot forward from the store, and the
            // kernel ran no faster than the row loops.
            memset(dbuffer, 0, sizeof(float) * planeFloats);
            for (long ki = 0; ki < kh; ki++) {
                for (long kj = 0; kj < kw; kj++) {
                    __m256 wt = wv[ki * kw + kj];
                    for (long oy = 0; oy < oh; oy++) {
                        const float *grow = gp + oy * ow;
                        float *drow = dbuffer + phase_offset(pp, stride, oy, 0, ki, kj);
                        for (long ox = 0; ox < ow; ox += 8)
                            _mm256_storeu_ps(drow + ox, _mm256_fmadd_ps(wt, load_gradients(grow, ox, ow), _mm256_loadu_ps(drow + ox)));
                    }
                }
            }
            float *dxp = dx + (n * channels + c) * h * w;
            for (long iy = 0; iy < h; iy++) {
                long py = iy + pad_top;
                if (py >= pp.rows) break;  // rows no output reads
                const float *src = dbuffer + py * pp.padded;
                float *dst = dxp + iy * w;
                if (stride == 1) {
                    long count = w < pp.padded - pad_left ? w : pp.padded - pad_left;
                    for (long ix = 0; ix < count; ix++) dst[ix] += src[pad_left + ix];
                    continue;
                }
                // Padded column j = ix + pad_left sits in phase j % stride at j / stride; both stepped, not divided.
                long r = pad_left % stride, q = pad_left / stride, ix = 0;
                if (stride == 2) {
                    // The row is the two phases interleaved: from ix = 0, columns alternate between `first` (the
                    // phase of pad_left) and `second`, 8 of each per step (the scalar loop below was half of the
                    // backward's time on stride-2 layers).
                    const float *first = src + r * pp.phase + q, *second = src + (1 - r) * pp.phase + q + r;
                    for (long k = 0; 2 * k + 16 <= w && q + r + k + 8 <= pp.phase; k += 8, ix += 16) {
                        __m256 a = _mm256_loadu_ps(first + k), b = _mm256_loadu_ps(second + k);
                        __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
                        _mm256_storeu_ps(dst + ix, _mm256_add_ps(_mm256_loadu_ps(dst + ix), _mm256_permute2f128_ps(lo, hi, 0x20)));
                        _mm256_storeu_ps(dst + ix + 8, _mm256_add_ps(_mm256_loadu_ps(dst + ix + 8), _mm256_permute2f128_ps(lo, hi, 0x31)));
                    }
                    q += ix / 2;  // ix is even here, so the phase r is where it started
                }
                for (; ix < w && q < pp.phase; ix++) {
                    dst[ix] += src[r * pp.phase + q];
                    if (++r == stride) { r = 0; q++; }
                }
            }
        }
    }
    free(buffer);
}
#endif

void attend_depthwise_forward(DEPTHWISE_FORWARD_ARGS) {
#if defined(__x86_64__)
    if (attend_use_avx2()) { forward_avx2(x, weight, bias, y, batch, channels, c0, c1, h, w, kh, kw, stride, pad_top, pad_left, oh, ow); return; }
#endif
    forward_generic(x, weight, bias, y, batch, channels, c0, c1, h, w, kh, kw, stride, pad_top, pad_left, oh, ow);
}

void attend_depthwise_backward(DEPTHWISE_BACKWARD_ARGS) {
#if defined(__x86_64__)
    if (attend_use_avx2()) { backward_avx2(x, weight, grad, dx, dweight, batch, channels, c0, c1, h, w, kh, kw, stride, pad_top, pad_left, oh, ow); return; }
#endif
    backward_generic(x, weight, grad, dx, dweight, batch, channels, c0, c1, h, w, kh, kw, stride, pad_top, pad_left, oh, ow);
}

// im2col and col2im. The rows they copy are short (a 28-wide image has 28-wide rows, and a 14-wide one 14), so a
// memcpy per row is mostly call overhead (Fashion-MNIST's CNN spent 19% of its training in the two, plus 9% in
// memmove and memset called from them). The AVX2 copies move 8 lanes at a time under a mask that is the row's
// valid range, so the padding's zeros and the copy are one pass with no call.

#define IM2COL_ARGS const float *x, long channels, long h, long w, long kh, long kw, long stride, long pad_top, long pad_left, \
    long oh, long ow, float *cols, long ld
#define COL2IM_ARGS const float *cols, long ld, long channels, long h, long w, long kh, long kw, long stride, long pad_top, \
    long pad_left, long oh, long ow, float *x

static void im2col_generic(IM2COL_ARGS) {
    long row = 0;
    for (long c = 0; c < channels; c++) {
        const float *plane = x + c * h * w;
        for (long ki = 0; ki < kh; ki++) {
            for (long kj = 0; kj < kw; kj++, row++) {
                long lo, hi, off = kj - pad_left;
                valid_columns(w, ow, stride, pad_left, kj, &lo, &hi);
                for (long oy = 0; oy < oh; oy++) {
                    float *line = cols + row * ld + oy * ow;
                    long iy = oy * stride - pad_top + ki;
                    if (iy < 0 || iy >= h) { for (long ox = 0; ox < ow; ox++) line[ox] = 0; continue; }
                    const float *in = plane + iy * w;
                    for (long ox = 0; ox < lo; ox++) line[ox] = 0;
                    for (long ox = lo; ox < hi; ox++) line[ox] = in[ox * stride + off];
                    for (long ox = hi; ox < ow; ox++) line[ox] = 0;
                }
            }
        }
    }
}

// The fold, with the addition of one row's valid range as a parameter (ADD_ROW(out, line, lo, hi)).
#define COL2IM_BODY(ADD_ROW)                                                                                    \
    long row = 0;                                                                                               \
    for (long c = 0; c < channels; c++) {                                                                       \
        float *plane = x + c * h * w;                                                                           \
        for (long ki = 0; ki < kh; ki++) {                                                                      \
            for (long kj = 0; kj < kw; kj++, row++) {                                                           \
                long lo, hi, off = kj - pad_left;                                                               \
                valid_columns(w, ow, stride, pad_left, kj, &lo, &hi);                                           \
                for (long oy = 0; oy < oh; oy++) {                                                              \
                    long iy = oy * stride - pad_top + ki;                                                       \
                    if (iy < 0 || iy >= h) continue;                                                            \
                    ADD_ROW(plane + iy * w, cols + row * ld + oy * ow, lo, hi);                                 \
                }                                                                                               \
            }                                                                                                   \
        }                                                                                                       \
    }

#define ADD_ROW_STRIDED(out, line, lo, hi) \
    for (long ox = lo; ox < hi; ox++) (out)[ox * stride + off] += (line)[ox];

static void col2im_generic(COL2IM_ARGS) { COL2IM_BODY(ADD_ROW_STRIDED) }

#if defined(__x86_64__)
/// Lanes ox ..< ox + 8 that lie in [lo, hi), as a mask for maskload / maskstore.
__attribute__((target("avx2,fma"))) static inline __m256i lanes_within(long ox, long lo, long hi) {
    __m256i index = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)ox));
    return _mm256_and_si256(_mm256_cmpgt_epi32(index, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), index));
}

__attribute__((target("avx2,fma"))) static void im2col_avx2(IM2COL_ARGS) {
    long chunks = (ow + 7) / 8;
    if (stride != 1 || chunks > 64) { im2col_generic(x, channels, h, w, kh, kw, stride, pad_top, pad_left, oh, ow, cols, ld); return; }
    __m256i masks[64];
    long row = 0;
    for (long c = 0; c < channels; c++) {
        const float *plane = x + c * h * w;
        for (long ki = 0; ki < kh; ki++) {
            for (long kj = 0; kj < kw; kj++, row++) {
                long lo, hi, off = kj - pad_left;
                valid_columns(w, ow, stride, pad_left, kj, &lo, &hi);
                for (long k = 0; k < chunks; k++) masks[k] = lanes_within(8 * k, lo, hi);
                float *dst = cols + row * ld;
                for (long oy = 0; oy < oh; oy++) {
                    float *line = dst + oy * ow;
                    long iy = oy - pad_top + ki;
                    if (iy < 0 || iy >= h) {
                        for (long ox = 0; ox < ow; ox++) line[ox] = 0;
                        continue;
                    }
                    const float *in = plane + iy * w + off;
                    for (long k = 0; k < chunks; k++) {
                        // Masked-off lanes are not read, so the address may lie outside the row.
                        __m256 v = _mm256_maskload_ps(in + 8 * k, masks[k]);
                        if (oy * ow + 8 * k + 8 <= oh * ow) {
                            // A ragged end may spill into the row's next lines, which are written after it; never
                            // past the row's end (the next row may be written already, or be past the buffer).
                            _mm256_storeu_ps(line + 8 * k, v);
                        } else {
                            for (long ox = 8 * k; ox < ow; ox++) line[ox] = v[ox - 8 * k];
                        }
                    }
                }
            }
        }
    }
}

// Stride 1: whole vectors where the range allows, then single floats.
__attribute__((target("avx2,fma"))) static inline void add_row_avx2(float *out, const float *line, long lo, long hi) {
    long ox = lo;
    for (; ox + 8 <= hi; ox += 8) _mm256_storeu_ps(out + ox, _mm256_add_ps(_mm256_loadu_ps(out + ox), _mm256_loadu_ps(line + ox)));
    for (; ox < hi; ox++) out[ox] += line[ox];
}
#define ADD_ROW_AVX2(out, line, lo, hi) add_row_avx2((out) + off, line, lo, hi);

__attribute__((target("avx2,fma"))) static void col2im_avx2(COL2IM_ARGS) {
    if (stride != 1) { col2im_generic(cols, ld, channels, h, w, kh, kw, stride, pad_top, pad_left, oh, ow, x); return; }
    COL2IM_BODY(ADD_ROW_AVX2)
}
#endif

void attend_im2col(IM2COL_ARGS) {
#if defined(__x86_64__)
    if (attend_use_avx2()) { im2col_avx2(x, channels, h, w, kh, kw, stride, pad_top, pad_left, oh, ow, cols, ld); return; }
#endif
    im2col_generic(x, channels, h, w, kh, kw, stride, pad_top, pad_left, oh, ow, cols, ld);
}

void attend_col2im(COL2IM_ARGS) {
#if defined(__x86_64__)
    if (attend_use_avx2()) { col2im_avx2(cols, ld, channels, h, w, kh, kw, stride, pad_top, pad_left, oh, ow, x); return; }
#endif
    col2im_generic(cols, ld, channels, h, w, kh, kw, stride, pad_top, pad_left, oh, ow, x);
}

// 2 x 2 max pooling with stride 2, the pooling of every small CNN here. The scalar loop's four compares per output
// branch on the data (a coin flip each on activations), which made it 5% of a Fashion-MNIST training epoch; the AVX2
// path takes 8 outputs at a time, the even and odd columns of the two rows split by shuffles, and picks with blends.
// Both keep the first of equal maxima (candidates in the order top-left, top-right, bottom-left, bottom-right, each
// taken only when strictly greater), so the two give the same argmax, NaNs included.

static void maxpool2x2_rows(const float *src, long w, long ow, long oy, long ox0, float *dst, int *argmax) {
    for (long ox = ox0; ox < ow; ox++) {
        long i0 = 2 * oy * w + 2 * ox, bi = i0;
        float best = src[i0];
        if (src[i0 + 1] > best) { best = src[i0 + 1]; bi = i0 + 1; }
        if (src[i0 + w] > best) { best = src[i0 + w]; bi = i0 + w; }
        if (src[i0 + w + 1] > best) { best = src[i0 + w + 1]; bi = i0 + w + 1; }
        dst[ox] = best;
        argmax[ox] = (int)bi;
    }
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void maxpool2x2_avx2(const float *x, long p0, long p1, long h, long w, float *y, int *argmax) {
    long oh = h / 2, ow = w / 2;
    const __m256i steps = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for (long plane = p0; plane < p1; plane++) {
        const float *src = x + plane * h * w;
        for (long oy = 0; oy < oh; oy++) {
            float *dst = y + (plane * oh + oy) * ow;
            int *am = argmax + (plane * oh + oy) * ow;
            long ox = 0;
            for (; ox + 8 <= ow; ox += 8) {
                const float *top = src + 2 * oy * w + 2 * ox, *bottom = top + w;
                __m256 t0 = _mm256_loadu_ps(top), t1 = _mm256_loadu_ps(top + 8);
                __m256 b0 = _mm256_loadu_ps(bottom), b1 = _mm256_loadu_ps(bottom + 8);
                // shuffle_ps works within 128-bit halves: (a0 a2 b0 b2 | a4 a6 b4 b6); permuting the 64-bit quarters
                // 0, 2, 1, 3 puts the eight in order.
                __m256 te = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(t0, t1, 0x88)), 0xD8));
                __m256 to = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(t0, t1, 0xDD)), 0xD8));
                __m256 be = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(b0, b1, 0x88)), 0xD8));
                __m256 bo = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(b0, b1, 0xDD)), 0xD8));
                __m256i index = _mm256_add_epi32(_mm256_set1_epi32((int)(2 * oy * w + 2 * ox)), steps);
                __m256 best = te;
                __m256i bi = index;
                __m256 more = _mm256_cmp_ps(to, best, _CMP_GT_OQ);
                best = _mm256_blendv_ps(best, to, more);
                bi = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bi), _mm256_castsi256_ps(_mm256_add_epi32(index, _mm256_set1_epi32(1))), more));
                more = _mm256_cmp_ps(be, best, _CMP_GT_OQ);
                best = _mm256_blendv_ps(best, be, more);
                bi = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bi), _mm256_castsi256_ps(_mm256_add_epi32(index, _mm256_set1_epi32((int)w))), more));
                more = _mm256_cmp_ps(bo, best, _CMP_GT_OQ);
                best = _mm256_blendv_ps(best, bo, more);
                bi = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bi), _mm256_castsi256_ps(_mm256_add_epi32(index, _mm256_set1_epi32((int)w + 1))), more));
                _mm256_storeu_ps(dst + ox, best);
                _mm256_storeu_si256((__m256i *)(am + ox), bi);
            }
            maxpool2x2_rows(src, w, ow, oy, ox, dst, am);
        }
    }
}
#endif

void attend_maxpool2x2(const float *x, long p0, long p1, long h, long w, float *y, int *argmax) {
#if defined(__x86_64__)
    if (attend_use_avx2()) { maxpool2x2_avx2(x, p0, p1, h, w, y, argmax); return; }
#endif
    long oh = h / 2, ow = w / 2;
    for (long plane = p0; plane < p1; plane++)
        for (long oy = 0; oy < oh; oy++)
            maxpool2x2_rows(x + plane * h * w, w, ow, oy, 0, y + (plane * oh + oy) * ow, argmax + (plane * oh + oy) * ow);
}
