// Tensor memory. glibc serves blocks above its mmap threshold (at most 32 MiB) with mmap and unmaps them on
// free, so every large activation of every training step (a [1024, 49152] logits tensor is 200 MB) is
// page-faulted and zeroed by the kernel again: 12% of a LoRA step, measured with perf (clear_page_erms).
// Large blocks are therefore kept on free in a small pool keyed by exact size, up to a byte cap, and handed
// back to the next request of that size; training repeats the same shapes every step, or nearly: a language
// model's loss is taken over the batch's answer tokens, whose count changes from batch to batch, so large sizes are
// rounded up to one of eight classes per power of two (at most 12.5% more), and a 198 MB and a 203 MB logits tensor
// share one block.
#include "CAttendKernels.h"
#include <pthread.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

enum { POOL_SLOTS = 1024 };
static const size_t POOL_MIN_BYTES = (size_t)4 << 20;
static size_t pool_cap_bytes = (size_t)2 << 30;
static struct { void *p; size_t bytes; unsigned long age; } pool[POOL_SLOTS];
static size_t pooled_bytes;
static unsigned long pool_clock;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

void attend_tune_allocator(void) {
#if defined(__GLIBC__)
    // The largest threshold glibc accepts; smaller blocks stay in the heap between steps.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
    const char *cap = getenv("ATTEND_POOL_MB");
    if (cap) pool_cap_bytes = (size_t)strtoul(cap, NULL, 10) << 20;
}

/// The pool's size class of a large block: bytes rounded up to a multiple of an eighth of its power of two.
static size_t size_class(size_t bytes) {
    size_t top = (size_t)1 << (63 - __builtin_clzll((unsigned long long)bytes));
    size_t step = top / 8;
    return (bytes + step - 1) / step * step;
}

void *attend_alloc(size_t bytes) {
    if (bytes >= POOL_MIN_BYTES) {
        bytes = size_class(bytes);
        pthread_mutex_lock(&pool_lock);
        for (int i = 0; i < POOL_SLOTS; i++) {
            if (pool[i].p && pool[i].bytes == bytes) {
                void *p = pool[i].p;
                pool[i].p = NULL;
                pooled_bytes -= bytes;
                pthread_mutex_unlock(&pool_lock);
                return p;
            }
        }
        pthread_mutex_unlock(&pool_lock);
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes < 64 ? 64 : bytes) != 0) return NULL;
    return p;
}

void attend_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < POOL_MIN_BYTES) { free(p); return; }
    bytes = size_class(bytes);
    if (bytes > pool_cap_bytes) { free(p); return; }
    void *evicted[POOL_SLOTS];
    int n = 0;
    pthread_mutex_lock(&pool_lock);
    // Make room: the oldest entries go first.
    for (;;) {
        int empty = -1, oldest = -1;
        for (int i = 0; i < POOL_SLOTS; i++) {
            if (!pool[i].p) { if (empty < 0) empty = i; continue; }
            if (oldest < 0 || pool[i].age < pool[oldest].age) oldest = i;
        }
        if (empty >= 0 && pooled_bytes + bytes <= pool_cap_bytes) {
            pool[empty].p = p;
            pool[empty].bytes = bytes;
            pool[empty].age = ++pool_clock;
            pooled_bytes += bytes;
            break;
        }
        if (oldest < 0) { evicted[n++] = p; break; }
        evicted[n++] = pool[oldest].p;
        pooled_bytes -= pool[oldest].bytes;
        pool[oldest].p = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    for (int i = 0; i < n; i++) free(evicted[i]);
}

void attend_release_pool(void) {
    pthread_mutex_lock(&pool_lock);
    for (int i = 0; i < POOL_SLOTS; i++) {
        if (pool[i].p) { free(pool[i].p); pool[i].p = NULL; }
    }
    pooled_bytes = 0;
    pthread_mutex_unlock(&pool_lock);
}
