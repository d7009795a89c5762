// Depthwise 2-D convolution (one filter per channel, MobileNet / EfficientNet), forward and backward, directly:
// im2col would copy each input K*K times to feed a GEMM of one row. Output rows are built by axpy over input rows,
// contiguous when the stride is 1, so the compiler vectorizes them; an AVX2 copy of each loop is chosen at run time.

#include "CAttendKernels.h"
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
        float *dwp = dweight + c * kh * kw;                                                                     \
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
                        float acc = 0.0f;                                                                       \
                        if (stride == 1) {                                                                      \
                            for (long ox = lo; ox < hi; ox++) acc += grow[ox] * xp[off + ox];                   \
                        } else {                                                                                \
                            for (long ox = lo; ox < hi; ox++) acc += grow[ox] * xp[off + ox * stride];          \
                        }                                                                                       \
                        dwp[ki * kw + kj] += acc;                                                               \
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
__attribute__((target("avx2,fma"))) static void forward_avx2(DEPTHWISE_FORWARD_ARGS) { DEPTHWISE_FORWARD_BODY }
__attribute__((target("avx2,fma"))) static void backward_avx2(DEPTHWISE_BACKWARD_ARGS) { DEPTHWISE_BACKWARD_BODY }
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
