#ifndef CATTEND_KERNELS_H
#define CATTEND_KERNELS_H

#include <stddef.h>

/// Single-threaded row-major SGEMM: C = alpha * op(A) * op(B) + beta * C.
/// op(A) is M x K, op(B) is K x N. When transA is non-zero, A is stored K x M (lda >= M), and so on.
/// The caller splits work across threads; this function keeps its packing buffers on the heap per call.
/// SIMD levels: 0 = portable C (what arm64 and pre-AVX2 CPUs run), 1 = AVX2 + FMA + F16C, 2 = AVX-512F as well.
/// The best level this CPU runs.
int attend_simd_cpu_level(void);
/// The level every kernel uses now: the CPU's best, lowered by ATTEND_SIMD=portable|avx2|avx512 (read once; any
/// other value is an error and exit status 2) or by attend_set_simd_limit.
int attend_simd_level(void);
/// Caps the level every kernel uses (tests run each path the machine has); -1 goes back to ATTEND_SIMD or the CPU.
void attend_set_simd_limit(int level);
/// The level a name gives ("portable", "avx2", "avx512"), or -1.
int attend_simd_level_named(const char *name);

void attend_sgemm(int transA, int transB, long M, long N, long K, float alpha,
                  const float *A, long lda, const float *B, long ldb, float beta, float *C, long ldc);

/// Which micro-kernel `attend_sgemm` uses now: "avx512f", "avx2-fma" or "generic".
const char *attend_sgemm_kernel_name(void);

/// y[i] = exp(x[i]) for n elements; a polynomial kernel with AVX2 when the CPU has it (max rel. error ~2e-7).
void attend_vexp(const float *x, float *y, long n);
/// log(sum_i exp(x_i)) of one row, computed after subtracting the row's maximum (-inf for an all -inf row).
float attend_row_logsumexp(const float *x, long n);
/// out_i = scale * exp(x_i - lse) + shift: a row's softmax, scaled and shifted (cross-entropy's gradient).
void attend_row_softmax_affine(const float *x, long n, float lse, float scale, float shift, float *out);

/// GPT-2's tanh GELU over n floats: y = gelu(x) when y is non-null; dx = g * gelu'(x) when dx is non-null.
void attend_vgelu_tanh(const float *x, float *y, const float *g, float *dx, long n);

/// y[i] = GELU(x[i]) with the exact (erf) form; AVX2 path accurate to ~2e-7 absolute per unit of |x|.
void attend_vgelu(const float *x, float *y, long n);
// dx = g * GELU'(x) (exact GELU; erf as in attend_vgelu).
void attend_vgelu_grad(const float *x, const float *g, float *dx, long n);

/// y[r] = <row r of W, x> for a GGML-quantized W of `rows` x `cols` (cols a multiple of 32), stored as
/// consecutive blocks: type 2 = Q4_0 (18-byte blocks), 3 = Q4_1 (20), 8 = Q8_0 (34).
void attend_gemv_quantized(int type, const unsigned char *w, long rows, long cols, const float *x, float *y);

/// Rows of a GGML-quantized matrix (type 2 = Q4_0, 3 = Q4_1, 8 = Q8_0; cols a multiple of 32) as float32,
/// row-major in `out` (rows * cols floats): q d + m rounded twice, as the gguf package computes it.
void attend_dequantize_rows(int type, const unsigned char *w, long rows, long cols, float *out);


/// 32 activations quantized to int8 with scale d (q = round(x / d)) and s = d * sum(q), as GGML's Q8_1; `sum` is
/// sum(q) exactly (Q4_0's offset of 8 is taken off as 8 sum(q)).
typedef struct { float d; float s; int sum; signed char q[32]; } attend_q8_block;

/// A chunk of a parallel loop: called with the context and the chunk index.
typedef void (*attend_chunk_fn)(void *ctx, long chunk);

/// Runs fn(ctx, 0..<chunks) on a persistent pool of `threads` threads (the caller is one of them) and
/// returns 1. Runs nothing and returns 0 inside a pool loop or for one thread (run it serially), or -1 when
/// another caller's loop is in flight (use other threads).
int attend_parallel_for(int threads, long chunks, attend_chunk_fn fn, void *ctx);

/// Causal attention of t query rows q [t, hq, hs] at positions start ..< start + t over the first start + t rows
/// of a KV cache k, v [hkv, capacity, hs] (read in place; query head h reads KV head h / (hq / hkv)), into
/// y [t, hq, hs]; work items [w0, w1) of attend_prefill_attention_items(t, hq) (one head, 32 rows each). Tiled with
/// an online softmax: the [t, s] scores are never stored. hs at most 256.
void attend_prefill_attention(const float *q, const float *k, const float *v, long t, long start, long hq, long hkv, long capacity,
                              long hs, float scale, long w0, long w1, float *y);
long attend_prefill_attention_items(long t, long hq);
/// The same kernel, non-causal when kv_len >= 0: every row sees keys 0 ..< kv_len (an encoder row with its padding
/// cut off); kv_len < 0 is attend_prefill_attention.
void attend_fused_attention(const float *q, const float *k, const float *v, long t, long start, long kv_len, long hq, long hkv,
                            long capacity, long hs, float scale, long w0, long w1, float *y);

/// Self-attention for training, one (sequence, head) per call: q, k, v, y and their gradients point at the head's
/// first row; rows of q, k, v, dq, dk, dv are `ldq` floats apart and rows of y and dy `ldy` apart ([T, H, hs] with
/// H * hs for both, or q, k and v packed side by side in one [T, 3 H hs] projection, ldq = 3 H hs); row i sees keys
/// 0 ..< min(i + 1 if causal, kv_len). The forward writes y and each row's log-sum-exp of the scaled scores (lse,
/// t floats); the backward recomputes the probabilities from them and writes dq, dk, dv (all three overwritten).
/// Both need attend_attention_train_scratch(t) floats of scratch; no [t, t] matrix is stored.
long attend_attention_train_scratch(long t);
void attend_attention_train_forward(const float *q, const float *k, const float *v, long t, long hs, long ldq, long ldy,
                                    long kv_len, int causal, float scale, float *y, float *lse, float *scratch);
void attend_attention_train_backward(const float *q, const float *k, const float *v, const float *y, const float *dy,
                                     const float *lse, long t, long hs, long ldq, long ldy, long kv_len, int causal,
                                     float scale, float *dq, float *dk, float *dv, float *scratch);

/// Rotary embeddings on adjacent pairs for rows [r0, r1) of x [t, heads, d] into y: y = x * cos2 + swap(x) * sin2,
/// cos2 / sin2 [t, d] holding (cos, cos) and (-sin, +sin) per pair.
void attend_rope(const float *x, float *y, long r0, long r1, long heads, long d, const float *cos2, const float *sin2);

/// One decoding step over cached keys [j0, j1) for every query head, each K/V row read once for its group of query
/// heads: per head the local max m[h], sum l[h] of exp(score - m) and unnormalized weighted values o[h * hs];
/// scores needs hq * (j1 - j0) floats. attend_decode_attention_merge turns `parts` such partials (part p at
/// m + p * hq, l + p * hq, o + p * hq * hs) into y [hq, hs].
void attend_decode_attention_part(const float *q, const float *k, const float *v, long hq, long hkv, long capacity, long hs, float scale,
                                  long j0, long j1, float *scores, float *m, float *l, float *o);

/// The same over a half-precision cache (k, v as IEEE f16 bits): what a KVCache of precision .float16 reads.
void attend_decode_attention_part_half(const float *q, const unsigned short *k, const unsigned short *v, long hq, long hkv, long capacity,
                                       long hs, float scale, long j0, long j1, float *scores, float *m, float *l, float *o);

/// src [rows, heads, hs] (float) rounded to f16 into dst[(h * capacity + start + r) * hs + c].
void attend_store_half_rows(const float *src, long rows, long heads, long hs, unsigned short *dst, long capacity, long start);

/// Rows [0, s) of each head of an f16 cache [heads, capacity, hs] as floats into dst [heads, s, hs].
void attend_load_half_rows(const unsigned short *src, long heads, long capacity, long hs, long s, float *dst);
void attend_decode_attention_merge(long parts, long hq, long hs, const float *m, const float *l, const float *o, float *y);

/// Quantizes x (n a multiple of 32) into n / 32 blocks.
void attend_quantize_q8(const float *x, long n, attend_q8_block *out);

/// y[t * ldy + r] = <row r of W, activations of token t> for a Q4_0 (2), Q4_1 (3) or Q8_0 (8) W of `rows` x
/// `cols` and `tokens` rows of quantized activations (cols / 32 blocks each): llama.cpp's arithmetic.
void attend_gemm_quantized_q8(int type, const unsigned char *w, long rows, long cols, const attend_q8_block *x, long tokens, float *y,
                              long ldy);

/// Bytes of a Q4_0 (type 2) or Q4_1 (3) matrix of `rows` (a multiple of 8) x `cols` repacked by attend_repack_q4x8:
/// the same as the GGUF blocks (144 or 160 bytes per 8 rows x 32 columns).
long attend_q4x8_bytes(int type, long rows, long cols);
/// Q4_0 or Q4_1 weights repacked for 8 rows at a time: rows in groups of 8, each group's 32-column blocks as 8 f16
/// scales, for Q4_1 8 f16 minimums, and 4 x 32 bytes of nibbles where byte 4r + c of part j holds row r's weights
/// 4j + c (low nibble) and 16 + 4j + c (high nibble).
void attend_repack_q4x8(int type, const unsigned char *w, long rows, long cols, unsigned char *out);
/// The GGUF rows of row groups [group0, group0 + groups) of a repacked matrix, back in their own layout (8 * groups
/// rows of cols / 32 blocks each): what attend_repack_q4x8 read, byte for byte.
void attend_unpack_q4x8(int type, const unsigned char *w, long group0, long groups, long cols, unsigned char *out);
/// y[t * ldy + r] for row groups [group0, group0 + groups) of a repacked Q4_0 or Q4_1 matrix: the integer arithmetic
/// of attend_gemm_quantized_q8, 8 rows and up to 4 tokens per pass over the weights.
void attend_gemm_q4x8_q8(int type, const unsigned char *w, long group0, long groups, long cols, const attend_q8_block *x,
                         long tokens, float *y, long ldy);

/// Int8 linear layers (Int8Gemm.c). Weights [n, k] are packed for outputs padded to attend_int8_padded_outputs(n)
/// and inputs to attend_int8_padded_inputs(k): `packed` holds np * kp bytes (64-byte aligned), `scales` and
/// `corrections` np values each.
long attend_int8_padded_inputs(long k);
long attend_int8_padded_outputs(long n);
void attend_int8_pack_weights(const float *w, long n, long k, signed char *packed, float *scales, int *corrections);
/// y[i * ldy + j] = x[i] . w[j] + bias[j] (bias may be NULL) for rows [r0, r1) of x (row stride ldx), through int8:
/// rows are quantized into xq (row stride kp) and xs (one scale per row), which callers size for every row.
void attend_int8_linear_rows(const float *x, long ldx, long r0, long r1, long k, unsigned char *xq, float *xs,
                             const signed char *packed, const float *scales, const int *corrections, const float *bias,
                             long n, float *y, long ldy);
/// 1 when the int8 layers run on AVX-512 VNNI at the SIMD level in force, 0 on the portable path.
int attend_int8_kernel_is_vnni(void);

/// One Adam step over n parameters: m, v updated in place; p -= step_size * m / (sqrt(v * inv_correction2) + eps),
/// with decoupled (AdamW) or coupled (L2) weight decay.
void attend_adam_step(float *p, const float *g, float *m, float *v, long n, float lr, float beta1, float beta2, float eps,
                      float weight_decay, int decoupled, float step_size, float inv_correction2);

/// Keeps large freed blocks in glibc's heap instead of returning them to the OS (no-op elsewhere).
void attend_tune_allocator(void);
// 64-byte aligned tensor memory; blocks of 4 MiB and more are pooled by exact size on free (ATTEND_POOL_MB caps
// the pool, default 2048). attend_free must get the size attend_alloc was asked for.
void *attend_alloc(size_t bytes);
void attend_free(void *p, size_t bytes);
void attend_release_pool(void);

/// Selects the word2vec kernels for this CPU and builds the sigmoid table; call once before training.
void attend_w2v_prepare(void);

/// For each t < count: f = <input, out[rows[t]]>, g = (labels[t] - sigmoid(f)) * alpha;
/// grad += g * out[rows[t]]; out[rows[t]] += g * input. Rows are `dim` floats. With skip_outside_table,
/// |f| > 6 skips the row (hierarchical softmax); otherwise the sigmoid saturates (negative sampling).
void attend_w2v_update(const float *input, float *grad, float *out, const int *rows, const float *labels,
                       long count, long dim, float alpha, int skip_outside_table);

/// y += a * x over n floats.
void attend_saxpy(long n, float a, const float *x, float *y);

// MARK: vector search (VectorSearch.c)

#define ATTEND_METRIC_L2 0
#define ATTEND_METRIC_INNER_PRODUCT 1

/// Squared Euclidean distance (ATTEND_METRIC_L2) or 1 - dot product (ATTEND_METRIC_INNER_PRODUCT) of two n-vectors.
float attend_vector_distance(int metric, const float *a, const float *b, long n);
/// out[r] = distance(query, row r) for `count` rows of `dim` floats.
void attend_vector_distances(int metric, const float *query, const float *rows, long count, long dim, float *out);
/// Both take the kernel of attend_simd_level() at each call; an HNSW graph keeps the one in force when it was created.

/// An HNSW graph over vectors of one dimension, each with a 64-bit label. Adds are not thread-safe; searches
/// are (each thread has its own visited set).
typedef struct attend_hnsw attend_hnsw;
attend_hnsw *attend_hnsw_create(long dim, int metric, long m, long ef_construction, unsigned long long seed);
void attend_hnsw_free(attend_hnsw *g);
/// Copies the vector in; returns its node index, or -1 when out of memory.
long attend_hnsw_add(attend_hnsw *g, const float *vector, long long label);
/// The node stays in the graph as a route but is never a result. Returns 0 for an index out of range.
int attend_hnsw_mark_deleted(attend_hnsw *g, long node);
/// Up to k nearest live nodes (and allowed[node] != 0 when allowed is given), nearest first, with a beam of
/// max(ef, k). Returns how many were written, or -1 when out of memory.
long attend_hnsw_search(const attend_hnsw *g, const float *query, long k, long ef, const unsigned char *allowed,
                        long long *labels, float *distances);
long attend_hnsw_count(const attend_hnsw *g);
long attend_hnsw_deleted_count(const attend_hnsw *g);
long long attend_hnsw_label(const attend_hnsw *g, long node);
int attend_hnsw_is_deleted(const attend_hnsw *g, long node);
const float *attend_hnsw_vector(const attend_hnsw *g, long node);
/// The graph's links (not its vectors) as bytes: attend_hnsw_links_size bytes written by attend_hnsw_write_links.
long attend_hnsw_links_size(const attend_hnsw *g);
void attend_hnsw_write_links(const attend_hnsw *g, unsigned char *out);
/// Rebuilds a graph from those bytes, asking vector(ctx, label, out) for each node's vector (returning 0 for an
/// unknown label). NULL with a reason in *error when anything is inconsistent.
attend_hnsw *attend_hnsw_read_links(const unsigned char *bytes, long size, int (*vector)(void *ctx, long long label, float *out), void *ctx,
                                    unsigned long long seed, const char **error);

/// Depthwise conv2d (weight [C, 1, KH, KW]) of channels c0 ..< c1 over a batch of [N, C, H, W] into [N, C, OH, OW];
/// padding is given at the top and left (the output size sets the rest). bias may be null.
void attend_depthwise_forward(const float *x, const float *weight, const float *bias, float *y, long batch, long channels,
                              long c0, long c1, long h, long w, long kh, long kw, long stride, long pad_top, long pad_left,
                              long oh, long ow);
/// Its gradients for channels c0 ..< c1: dweight += and dx += (each when non-null).
void attend_depthwise_backward(const float *x, const float *weight, const float *grad, float *dx, float *dweight, long batch,
                               long channels, long c0, long c1, long h, long w, long kh, long kw, long stride, long pad_top,
                               long pad_left, long oh, long ow);

/// Unfolds `channels` planes [H, W] of one image into the columns of a convolution's GEMM: row (c, ki, kj), column
/// (oy, ox) at cols[row * ld + oy * ow + ox], zero where the window reads padding. ld >= oh * ow lets several images
/// sit side by side in one matrix.
void attend_im2col(const float *x, long channels, long h, long w, long kh, long kw, long stride, long pad_top, long pad_left,
                   long oh, long ow, float *cols, long ld);
/// Its adjoint: adds each column entry back into the image position it was read from (x +=).
void attend_col2im(const float *cols, long ld, long channels, long h, long w, long kh, long kw, long stride, long pad_top,
                   long pad_left, long oh, long ow, float *x);
/// 2 x 2 max pooling, stride 2, of planes [p0, p1) of x [planes, h, w] into y [planes, h / 2, w / 2], with each
/// output's index within its input plane in argmax (the first of equal maxima).
void attend_maxpool2x2(const float *x, long p0, long p1, long h, long w, float *y, int *argmax);

#endif
