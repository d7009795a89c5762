// Vector search: distance kernels (scalar, AVX2 + FMA, AVX-512) and a hierarchical navigable small world graph
// (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using HNSW graphs", 2016), the
// algorithm hnswlib implements: greedy descent through sparse upper layers, a beam of `ef` candidates on layer 0,
// neighbours chosen by the paper's heuristic (a candidate is kept only if it is closer to the new point than to every
// neighbour already kept), deletions as marks that still route searches but never appear in results.
//
// Memory layout (why it is fast): vectors in one aligned block, layer-0 links in one flat int array of
// (1 + 2M) ints per node (count, then neighbours), so a search touches two streams; upper layers are rare (1/M of
// nodes) and live in per-node arrays. The visited set is a per-thread array of 16-bit stamps, cleared only when the
// stamp wraps, so a query costs no memset.

#include "CAttendKernels.h"
#include "SIMD.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// MARK: - distances

static float dot_scalar(const float *a, const float *b, long n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    long i = 0;
    for (; i + 4 <= n; i += 4) { s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]; }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float l2_scalar(const float *a, const float *b, long n) {
    float s0 = 0, s1 = 0;
    long i = 0;
    for (; i + 2 <= n; i += 2) { float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1]; s0 += d0 * d0; s1 += d1 * d1; }
    for (; i < n; i++) { float d = a[i] - b[i]; s0 += d * d; }
    return s0 + s1;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static float dot_avx2(const float *a, const float *b, long n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = attend_hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma")))
static float l2_avx2(const float *a, const float *b, long n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    for (; i + 8 <= n; i += 8) { __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)); s0 = _mm256_fmadd_ps(d, d, s0); }
    float s = attend_hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) { float d = a[i] - b[i]; s += d * d; }
    return s;
}

__attribute__((target("avx512f")))
static float dot_avx512(const float *a, const float *b, long n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f")))
static float l2_avx512(const float *a, const float *b, long n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i + 16 <= n; i += 16) { __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)); s0 = _mm512_fmadd_ps(d, d, s0); }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#endif

// Four rows against one query at once: the query is loaded once per step, and the four rows' loads are independent,
// so their cache misses overlap. Each row's sums run in the same order as the one-row kernel's, so the distances are
// bit-identical to it.
#define ROWS4_BODY(OP)                                                                                               \
    __m512 s0[4], s1[4];                                                                                             \
    for (int r = 0; r < 4; r++) s0[r] = s1[r] = _mm512_setzero_ps();                                                 \
    long i = 0;                                                                                                      \
    for (; i + 32 <= n; i += 32) {                                                                                   \
        __m512 qa = _mm512_loadu_ps(a + i), qb = _mm512_loadu_ps(a + i + 16);                                        \
        for (int r = 0; r < 4; r++) {                                                                                \
            s0[r] = OP(qa, _mm512_loadu_ps(b[r] + i), s0[r]);                                                        \
            s1[r] = OP(qb, _mm512_loadu_ps(b[r] + i + 16), s1[r]);                                                   \
        }                                                                                                            \
    }                                                                                                                \
    for (; i + 16 <= n; i += 16) {                                                                                   \
        __m512 qa = _mm512_loadu_ps(a + i);                                                                          \
        for (int r = 0; r < 4; r++) s0[r] = OP(qa, _mm512_loadu_ps(b[r] + i), s0[r]);                                \
    }                                                                                                                \
    if (i < n) {                                                                                                     \
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);                                                              \
        __m512 qa = _mm512_maskz_loadu_ps(m, a + i);                                                                 \
        for (int r = 0; r < 4; r++) s1[r] = OP(qa, _mm512_maskz_loadu_ps(m, b[r] + i), s1[r]);                       \
    }                                                                                                                \
    for (int r = 0; r < 4; r++) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(s0[r], s1[r]));

#if defined(__x86_64__)
__attribute__((target("avx512f")))
static inline __m512 l2_step(__m512 q, __m512 x, __m512 s) { __m512 d = _mm512_sub_ps(q, x); return _mm512_fmadd_ps(d, d, s); }

__attribute__((target("avx512f")))
static void l2_avx512_rows4(const float *a, const float *const b[4], long n, float out[4]) { ROWS4_BODY(l2_step) }

__attribute__((target("avx512f")))
static void dot_avx512_rows4(const float *a, const float *const b[4], long n, float out[4]) { ROWS4_BODY(_mm512_fmadd_ps) }
#endif

typedef float (*distance_fn)(const float *, const float *, long);

static int current_level(void) { return attend_simd_level(); }

static distance_fn pick(int metric) {
#if defined(__x86_64__)
    int level = current_level();
    if (level == 2) return metric == ATTEND_METRIC_L2 ? l2_avx512 : dot_avx512;
    if (level == 1) return metric == ATTEND_METRIC_L2 ? l2_avx2 : dot_avx2;
#endif
    return metric == ATTEND_METRIC_L2 ? l2_scalar : dot_scalar;
}

// Inner-product "distance" is 1 - dot, so that smaller is closer for both metrics (cosine distance on unit vectors).
static inline float distance(distance_fn f, int metric, const float *a, const float *b, long n) {
    float d = f(a, b, n);
    return metric == ATTEND_METRIC_L2 ? d : 1.0f - d;
}

float attend_vector_distance(int metric, const float *a, const float *b, long n) { return distance(pick(metric), metric, a, b, n); }

void attend_vector_distances(int metric, const float *query, const float *rows, long count, long dim, float *out) {
    distance_fn f = pick(metric);
    for (long r = 0; r < count; r++) out[r] = distance(f, metric, query, rows + r * dim, dim);
}

// MARK: - heaps of (distance, node)

typedef struct { float d; int id; } pair_t;
typedef struct { pair_t *a; long n, cap; } heap_t;

static int heap_reserve(heap_t *h, long cap) {
    if (cap <= h->cap) return 1;
    pair_t *p = realloc(h->a, (size_t)cap * sizeof(pair_t));
    if (!p) return 0;
    h->a = p; h->cap = cap;
    return 1;
}

// max-heap when sign = 1 (the result set: top is the farthest), min-heap when sign = -1 (candidates: top is nearest).
static inline int before(pair_t x, pair_t y, int sign) { return sign > 0 ? x.d > y.d : x.d < y.d; }

static inline void heap_push(heap_t *h, pair_t v, int sign) {
    long i = h->n++;
    while (i > 0) {
        long p = (i - 1) / 2;
        if (!before(v, h->a[p], sign)) break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = v;
}

static inline pair_t heap_pop(heap_t *h, int sign) {
    pair_t top = h->a[0], last = h->a[--h->n];
    long i = 0, n = h->n;
    for (;;) {
        long c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(h->a[c + 1], h->a[c], sign)) c++;
        if (!before(h->a[c], last, sign)) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (n > 0) h->a[i] = last;
    return top;
}

// MARK: - the graph

struct attend_hnsw {
    long dim, m, m0, ef_construction;
    int metric;
    distance_fn dist;
    double level_mult;
    uint64_t rng;
    long count, capacity;
    float *vectors;          // capacity * dim
    long long *labels;       // capacity
    unsigned char *deleted;  // capacity
    int *levels;             // capacity
    int *links0;             // capacity * (1 + m0)
    int **upper;             // capacity; node i's layers 1...levels[i], (1 + m) ints each
    long deleted_count;
    int entry, max_level;    // entry = -1 when empty
};

static inline int *links_at(const attend_hnsw *g, int node, int layer) {
    return layer == 0 ? g->links0 + (long)node * (1 + g->m0) : g->upper[node] + (long)(layer - 1) * (1 + g->m);
}

static inline const float *vector_at(const attend_hnsw *g, int node) { return g->vectors + (long)node * g->dim; }

static inline float node_distance(const attend_hnsw *g, const float *q, int node) {
    return distance(g->dist, g->metric, q, vector_at(g, node), g->dim);
}

// Distances from q to `count` nodes, as node_distance gives them (bit for bit).
static void node_distances(const attend_hnsw *g, const float *q, const int *nodes, int count, float *out) {
    int i = 0;
#if defined(__x86_64__)
    if (g->dist == l2_avx512 || g->dist == dot_avx512) {
        for (; i + 4 <= count; i += 4) {
            const float *rows[4] = {vector_at(g, nodes[i]), vector_at(g, nodes[i + 1]), vector_at(g, nodes[i + 2]), vector_at(g, nodes[i + 3])};
            if (g->dist == l2_avx512) l2_avx512_rows4(q, rows, g->dim, out + i);
            else {
                dot_avx512_rows4(q, rows, g->dim, out + i);
                for (int r = 0; r < 4; r++) out[i + r] = 1.0f - out[i + r];
            }
        }
    }
#endif
    for (; i < count; i++) out[i] = node_distance(g, q, nodes[i]);
}

attend_hnsw *attend_hnsw_create(long dim, int metric, long m, long ef_construction, unsigned long long seed) {
    if (dim < 1 || m < 2 || m > 512 || ef_construction < 1) return NULL;
    attend_hnsw *g = calloc(1, sizeof(attend_hnsw));
    if (!g) return NULL;
    g->dim = dim; g->metric = metric; g->m = m; g->m0 = 2 * m; g->ef_construction = ef_construction;
    g->dist = pick(metric);
    g->level_mult = 1.0 / log((double)m);
    g->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    g->entry = -1; g->max_level = -1;
    return g;
}

void attend_hnsw_free(attend_hnsw *g) {
    if (!g) return;
    if (g->upper) for (long i = 0; i < g->count; i++) free(g->upper[i]);
    free(g->upper); free(g->vectors); free(g->labels); free(g->deleted); free(g->levels); free(g->links0);
    free(g);
}

long attend_hnsw_count(const attend_hnsw *g) { return g->count; }
long attend_hnsw_deleted_count(const attend_hnsw *g) { return g->deleted_count; }
long long attend_hnsw_label(const attend_hnsw *g, long node) { return g->labels[node]; }
int attend_hnsw_is_deleted(const attend_hnsw *g, long node) { return g->deleted[node]; }
const float *attend_hnsw_vector(const attend_hnsw *g, long node) { return vector_at(g, (int)node); }

static int reserve(attend_hnsw *g, long need) {
    if (need <= g->capacity) return 1;
    long cap = g->capacity ? g->capacity : 1024;
    while (cap < need) cap *= 2;
    if (cap > INT32_MAX) return 0;
    float *v = realloc(g->vectors, (size_t)cap * g->dim * sizeof(float));
    if (!v) return 0;
    g->vectors = v;
    long long *l = realloc(g->labels, (size_t)cap * sizeof(long long)); if (!l) return 0; g->labels = l;
    unsigned char *d = realloc(g->deleted, (size_t)cap); if (!d) return 0; g->deleted = d;
    int *lv = realloc(g->levels, (size_t)cap * sizeof(int)); if (!lv) return 0; g->levels = lv;
    int *l0 = realloc(g->links0, (size_t)cap * (1 + g->m0) * sizeof(int)); if (!l0) return 0; g->links0 = l0;
    int **up = realloc(g->upper, (size_t)cap * sizeof(int *)); if (!up) return 0; g->upper = up;
    g->capacity = cap;
    return 1;
}

// Per-thread visited stamps, grown to the graph's size; a stamp of 0 is never used.
typedef struct { uint16_t *stamp; long size; uint16_t current; heap_t candidates, results, scratch; } visit_t;
static __thread visit_t tls_visit;

static visit_t *visit_begin(long n) {
    visit_t *v = &tls_visit;
    if (v->size < n) {
        long size = n + n / 2 + 1024;
        uint16_t *s = realloc(v->stamp, (size_t)size * sizeof(uint16_t));
        if (!s) return NULL;
        memset(s, 0, (size_t)size * sizeof(uint16_t));
        v->stamp = s; v->size = size; v->current = 0;
    }
    if (++v->current == 0) { memset(v->stamp, 0, (size_t)v->size * sizeof(uint16_t)); v->current = 1; }
    return v;
}

static uint64_t next_random(attend_hnsw *g) {   // splitmix64
    uint64_t z = (g->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Greedy walk on one layer: move to any closer neighbour until none is closer.
static int greedy(const attend_hnsw *g, const float *q, int ep, float *ep_dist, int layer) {
    int changed = 1;
    while (changed) {
        changed = 0;
        int *l = links_at(g, ep, layer);
        for (int i = 1; i <= l[0]; i++) {
            float d = node_distance(g, q, l[i]);
            if (d < *ep_dist) { *ep_dist = d; ep = l[i]; changed = 1; }
        }
    }
    return ep;
}

// The beam search of one layer into v->results (a max-heap of at most ef pairs). Deleted nodes and nodes outside
// `allowed` route the search but are not results (when `filter_results`).
static int search_layer(const attend_hnsw *g, visit_t *v, const float *q, int ep, float ep_dist, long ef, int layer,
                        const unsigned char *allowed, int filter_results) {
    heap_t *cand = &v->candidates, *res = &v->results;
    cand->n = 0; res->n = 0;
    if (!heap_reserve(cand, g->count + 1) || !heap_reserve(res, ef + 2)) return 0;
    float bound = INFINITY;
    v->stamp[ep] = v->current;
    heap_push(cand, (pair_t){ep_dist, ep}, -1);
    if (!filter_results || (!g->deleted[ep] && (!allowed || allowed[ep]))) {
        heap_push(res, (pair_t){ep_dist, ep}, 1);
        bound = res->n >= ef ? res->a[0].d : INFINITY;
    }
    while (cand->n > 0) {
        pair_t c = cand->a[0];
        if (c.d > bound && res->n >= ef) break;
        heap_pop(cand, -1);
        int *l = links_at(g, c.id, layer);
        int n = l[0];
        // The neighbours not seen yet, their vectors asked for all at once, then their distances four at a time:
        // the misses overlap instead of coming one after another.
        int fresh[n > 0 ? n : 1];
        float ds[n > 0 ? n : 1];
        int t = 0;
        for (int i = 1; i <= n; i++) {
            int e = l[i];
            if (v->stamp[e] == v->current) continue;
            v->stamp[e] = v->current;
            fresh[t++] = e;
#if defined(__GNUC__)
            __builtin_prefetch(vector_at(g, e));
#endif
        }
        node_distances(g, q, fresh, t, ds);
        for (int j = 0; j < t; j++) {
            int e = fresh[j];
            float d = ds[j];
            if (res->n < ef || d < bound) {
                heap_push(cand, (pair_t){d, e}, -1);
                if (!filter_results || (!g->deleted[e] && (!allowed || allowed[e]))) {
                    heap_push(res, (pair_t){d, e}, 1);
                    if (res->n > ef) heap_pop(res, 1);
                }
                if (res->n >= ef) bound = res->a[0].d;
            }
        }
    }
    return 1;
}

static int cmp_pair(const void *a, const void *b) {
    float x = ((const pair_t *)a)->d, y = ((const pair_t *)b)->d;
    return x < y ? -1 : x > y;
}

// The paper's heuristic (Algorithm 4, hnswlib's getNeighborsByHeuristic2): from candidates sorted nearest first,
// keep one only if it is closer to the base than to every neighbour already kept; at most m. In place; returns m'.
static long select_neighbors(const attend_hnsw *g, pair_t *c, long n, long m) {
    qsort(c, (size_t)n, sizeof(pair_t), cmp_pair);
    if (n <= m) return n;
    long kept = 0;
    for (long i = 0; i < n && kept < m; i++) {
        int good = 1;
        for (long j = 0; j < kept; j++) {
            if (distance(g->dist, g->metric, vector_at(g, c[i].id), vector_at(g, c[j].id), g->dim) < c[i].d) { good = 0; break; }
        }
        if (good) c[kept++] = c[i];
    }
    return kept;
}

// Adds `node` to `target`'s list on `layer`, shrinking the list by the heuristic when it overflows.
static void link_back(attend_hnsw *g, visit_t *v, int target, int node, float d, int layer) {
    long cap = layer == 0 ? g->m0 : g->m;
    int *l = links_at(g, target, layer);
    for (int i = 1; i <= l[0]; i++) if (l[i] == node) return;
    if (l[0] < cap) { l[++l[0]] = node; return; }
    heap_t *s = &v->scratch;
    if (!heap_reserve(s, cap + 1)) return;
    s->n = 0;
    const float *tv = vector_at(g, target);
    s->a[s->n++] = (pair_t){d, node};
    for (int i = 1; i <= l[0]; i++) s->a[s->n++] = (pair_t){distance(g->dist, g->metric, tv, vector_at(g, l[i]), g->dim), l[i]};
    long kept = select_neighbors(g, s->a, s->n, cap);
    l[0] = (int)kept;
    for (long i = 0; i < kept; i++) l[1 + i] = s->a[i].id;
}

long attend_hnsw_add(attend_hnsw *g, const float *vector, long long label) {
    if (!reserve(g, g->count + 1)) return -1;
    int node = (int)g->count;
    visit_t *v = visit_begin(g->count + 1);
    if (!v) return -1;
    double u = ((double)(next_random(g) >> 11) + 1.0) / 9007199254740993.0;   // (0, 1]
    int level = (int)(-log(u) * g->level_mult);
    if (level > 30) level = 30;
    memcpy(g->vectors + (long)node * g->dim, vector, (size_t)g->dim * sizeof(float));
    g->labels[node] = label; g->deleted[node] = 0; g->levels[node] = level;
    g->links0[(long)node * (1 + g->m0)] = 0;
    g->upper[node] = NULL;
    if (level > 0) {
        g->upper[node] = calloc((size_t)level * (1 + g->m), sizeof(int));
        if (!g->upper[node]) return -1;
    }
    g->count++;
    if (g->entry < 0) { g->entry = node; g->max_level = level; return node; }

    const float *q = vector;
    int ep = g->entry;
    float ep_dist = node_distance(g, q, ep);
    for (int layer = g->max_level; layer > level; layer--) ep = greedy(g, q, ep, &ep_dist, layer);
    for (int layer = level < g->max_level ? level : g->max_level; layer >= 0; layer--) {
        visit_begin(g->count);
        if (!search_layer(g, v, q, ep, ep_dist, g->ef_construction, layer, NULL, 0)) return -1;
        long n = v->results.n;
        pair_t *c = v->results.a;   // reuse the result heap's storage as the candidate list
        long kept = select_neighbors(g, c, n, g->m);
        int *l = links_at(g, node, layer);
        l[0] = (int)kept;
        for (long i = 0; i < kept; i++) l[1 + i] = c[i].id;
        ep = c[0].id; ep_dist = c[0].d;   // nearest found: the entry for the layer below
        for (long i = 0; i < kept; i++) link_back(g, v, l[1 + i], node, distance(g->dist, g->metric, vector_at(g, l[1 + i]), q, g->dim), layer);
    }
    if (level > g->max_level) { g->max_level = level; g->entry = node; }
    return node;
}

int attend_hnsw_mark_deleted(attend_hnsw *g, long node) {
    if (node < 0 || node >= g->count) return 0;
    if (!g->deleted[node]) { g->deleted[node] = 1; g->deleted_count++; }
    return 1;
}

long attend_hnsw_search(const attend_hnsw *g, const float *q, long k, long ef, const unsigned char *allowed, long long *labels, float *distances) {
    if (g->entry < 0 || k < 1) return 0;
    if (k > g->count) k = g->count;
    if (ef < k) ef = k;
    if (ef > g->count) ef = g->count;
    visit_t *v = visit_begin(g->count);
    if (!v) return -1;
    int ep = g->entry;
    float ep_dist = node_distance(g, q, ep);
    for (int layer = g->max_level; layer > 0; layer--) ep = greedy(g, q, ep, &ep_dist, layer);
    if (!search_layer(g, v, q, ep, ep_dist, ef, 0, allowed, 1)) return -1;
    heap_t *res = &v->results;
    while (res->n > k) heap_pop(res, 1);
    long n = res->n;
    for (long i = n - 1; i >= 0; i--) {
        pair_t p = heap_pop(res, 1);
        labels[i] = g->labels[p.id];
        distances[i] = p.d;
    }
    return n;
}

// MARK: - persistence: links only (the vectors live with their owner, e.g. the chunks table)

long attend_hnsw_links_size(const attend_hnsw *g) {
    long size = 8 * 8;   // header fields
    for (long i = 0; i < g->count; i++) size += 8 + 1 + 4 + 4 * (1 + g->m0) + 4L * g->levels[i] * (1 + g->m);
    return size;
}

static void put64(unsigned char **p, int64_t x) { memcpy(*p, &x, 8); *p += 8; }
static void put32(unsigned char **p, int32_t x) { memcpy(*p, &x, 4); *p += 4; }

// Little-endian on every machine Attend runs on (x86-64, arm64).
void attend_hnsw_write_links(const attend_hnsw *g, unsigned char *out) {
    unsigned char *p = out;
    put64(&p, 0x31574e48444e5441ll);   // "ATNDHNW1"
    put64(&p, g->dim); put64(&p, g->metric); put64(&p, g->m); put64(&p, g->ef_construction);
    put64(&p, g->count); put64(&p, g->entry); put64(&p, g->max_level);
    for (long i = 0; i < g->count; i++) {
        put64(&p, g->labels[i]);
        *p++ = g->deleted[i];
        put32(&p, g->levels[i]);
        memcpy(p, links_at(g, (int)i, 0), 4 * (size_t)(1 + g->m0)); p += 4 * (1 + g->m0);
        if (g->levels[i] > 0) { memcpy(p, g->upper[i], 4 * (size_t)g->levels[i] * (1 + g->m)); p += 4L * g->levels[i] * (1 + g->m); }
    }
}

static int get64(const unsigned char **p, const unsigned char *end, int64_t *x) {
    if (end - *p < 8) return 0;
    memcpy(x, *p, 8); *p += 8; return 1;
}

// Rebuilds a graph from attend_hnsw_write_links' bytes; vector(ctx, label, out) must fill the node's vector and
// return 1 (0 = that label is unknown). Returns NULL with a reason in *error for anything inconsistent: every count,
// level and neighbour index is checked against the header before it is used.
attend_hnsw *attend_hnsw_read_links(const unsigned char *bytes, long size, int (*vector)(void *, long long, float *), void *ctx,
                                    unsigned long long seed, const char **error) {
    const unsigned char *p = bytes, *end = bytes + size;
    int64_t magic, dim, metric, m, efc, count, entry, max_level;
    *error = "truncated header";
    if (!get64(&p, end, &magic) || !get64(&p, end, &dim) || !get64(&p, end, &metric) || !get64(&p, end, &m) || !get64(&p, end, &efc)
        || !get64(&p, end, &count) || !get64(&p, end, &entry) || !get64(&p, end, &max_level)) return NULL;
    *error = "not an Attend HNSW graph (bad magic)";
    if (magic != 0x31574e48444e5441ll) return NULL;
    *error = "header values out of range";
    if (dim < 1 || dim > 1 << 16 || (metric != ATTEND_METRIC_L2 && metric != ATTEND_METRIC_INNER_PRODUCT) || m < 2 || m > 512 || efc < 1
        || count < 0 || count > INT32_MAX || max_level < -1 || max_level > 30 || entry < -1 || entry >= count
        || (count == 0) != (entry < 0)) return NULL;
    // Each node needs at least its fixed part: a count that the bytes cannot hold is refused before allocating.
    if (count > (size - 64) / (8 + 1 + 4 + 4 * (1 + 2 * m))) { *error = "node count larger than the data"; return NULL; }
    attend_hnsw *g = attend_hnsw_create(dim, (int)metric, m, efc, seed);
    if (!g || !reserve(g, count ? count : 1)) { attend_hnsw_free(g); *error = "out of memory"; return NULL; }
    for (long i = 0; i < count; i++) {
        int64_t label; int32_t level;
        if (!get64(&p, end, &label) || end - p < 5) goto truncated;
        unsigned char deleted = *p++;
        memcpy(&level, p, 4); p += 4;
        if (deleted > 1 || level < 0 || level > max_level) { *error = "node level or flag out of range"; goto fail; }
        if (end - p < 4 * (1 + g->m0) + 4L * level * (1 + m)) goto truncated;
        g->labels[i] = label; g->deleted[i] = deleted; g->levels[i] = level; g->upper[i] = NULL;
        g->count = i + 1;
        memcpy(links_at(g, (int)i, 0), p, 4 * (size_t)(1 + g->m0)); p += 4 * (1 + g->m0);
        if (level > 0) {
            g->upper[i] = malloc(4 * (size_t)level * (1 + m));
            if (!g->upper[i]) { *error = "out of memory"; goto fail; }
            memcpy(g->upper[i], p, 4 * (size_t)level * (1 + m)); p += 4L * level * (1 + m);
        }
        if (deleted) g->deleted_count++;
        if (!vector(ctx, label, g->vectors + i * dim)) { *error = "a node's label has no vector"; goto fail; }
    }
    if (p != end) { *error = "trailing bytes after the last node"; goto fail; }
    for (long i = 0; i < count; i++) {
        for (int layer = 0; layer <= g->levels[i]; layer++) {
            int *l = links_at(g, (int)i, layer);
            if (l[0] < 0 || l[0] > (layer == 0 ? g->m0 : m)) { *error = "neighbour count out of range"; goto fail; }
            for (int j = 1; j <= l[0]; j++) {
                if (l[j] < 0 || l[j] >= count || g->levels[l[j]] < layer) { *error = "neighbour index out of range"; goto fail; }
            }
        }
    }
    if (count > 0 && g->levels[entry] != max_level) { *error = "entry point is not on the top layer"; goto fail; }
    g->entry = (int)entry; g->max_level = (int)max_level;
    return g;
truncated:
    *error = "truncated node data";
fail:
    attend_hnsw_free(g);
    return NULL;
}
