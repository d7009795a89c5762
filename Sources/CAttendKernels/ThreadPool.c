// A small thread pool for short parallel loops (one decoding step makes about 240 of them per token). Idle
// workers spin briefly, then yield, then sleep, so back-to-back loops start in well under a microsecond
// instead of waking threads through the kernel each time.
//
// Protocol: one 64-bit word holds the loop's epoch (24 bits), its chunk count (20 bits) and the next chunk
// to hand out (20 bits). Every participant, the caller included, takes chunks by compare-and-swap on that
// word, so a chunk is taken once, by a thread that saw the right epoch and count in the same read. The caller
// returns when all chunks are done; a worker that was not scheduled in time simply finds nothing left, so a
// busy machine costs the caller its own time, not a wait for a sleeping thread. The function and context are
// written before the word is published and not rewritten until every chunk of the loop has finished.
#include "CAttendKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

// Spin (pause) this many times, then yield the core this many times, then sleep.
enum { MAX_WORKERS = 63, SPINS = 2000, YIELDS = 200 };
#define CHUNK_BITS 20
#define CHUNK_MASK ((1ull << CHUNK_BITS) - 1)

static struct {
    int workers;
    attend_chunk_fn fn;
    void *ctx;
    _Atomic uint64_t word;  // epoch << 40 | chunks << 20 | next
    _Atomic long done;
    _Atomic int sleepers;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_mutex_t busy;  // one caller at a time
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .busy = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int inside_pool = 0;
static pthread_once_t started = PTHREAD_ONCE_INIT;
static int requested_threads = 1;

static inline uint64_t epoch_of(uint64_t w) { return w >> (2 * CHUNK_BITS); }

/// Takes and runs chunks of the loop with epoch `e` until none are left.
static void work(uint64_t e) {
    uint64_t w = atomic_load_explicit(&pool.word, memory_order_acquire);
    for (;;) {
        long next = (long)(w & CHUNK_MASK), chunks = (long)((w >> CHUNK_BITS) & CHUNK_MASK);
        if (epoch_of(w) != e || next >= chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.word, &w, w + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        pool.fn(pool.ctx, next);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
        w = atomic_load_explicit(&pool.word, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    inside_pool = 1;
    uint64_t seen = 0;
    for (;;) {
        uint64_t e;
        int spins = 0;
        while ((e = epoch_of(atomic_load_explicit(&pool.word, memory_order_acquire))) == seen) {
            if (++spins < SPINS) { CPU_RELAX(); continue; }
            if (spins < SPINS + YIELDS) { sched_yield(); continue; }
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while (epoch_of(atomic_load(&pool.word)) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
            spins = 0;
        }
        seen = e;
        work(e);
    }
    return NULL;
}

static void start_pool(void) {
    int n = requested_threads - 1;
    if (n > MAX_WORKERS) n = MAX_WORKERS;
    for (int k = 0; k < n; k++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&t, &attr, worker_main, NULL) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        pool.workers++;
    }
}

int attend_parallel_for(int threads, long chunks, attend_chunk_fn fn, void *ctx) {
    if (chunks <= 0) return 1;
    // A loop nested in a pool loop runs serially (the outer loop has the cores); with another caller's loop
    // in flight, no workers or too many chunks, the caller is told to use other threads.
    if (inside_pool || threads <= 1) return 0;
    if (chunks > (long)CHUNK_MASK) return -1;
    if (pthread_mutex_trylock(&pool.busy) != 0) return -1;
    requested_threads = threads;
    pthread_once(&started, start_pool);
    if (pool.workers == 0) { pthread_mutex_unlock(&pool.busy); return -1; }
    pool.fn = fn;
    pool.ctx = ctx;
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    uint64_t e = epoch_of(atomic_load(&pool.word)) + 1;
    // Sequentially consistent store: pairs with the sleepers count read below.
    atomic_store(&pool.word, (e << (2 * CHUNK_BITS)) | ((uint64_t)chunks << CHUNK_BITS));
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    inside_pool = 1;
    work(e);
    inside_pool = 0;
    for (int spins = 0; atomic_load_explicit(&pool.done, memory_order_acquire) < chunks; spins++) {
        if (spins < SPINS) CPU_RELAX(); else sched_yield();
    }
    pthread_mutex_unlock(&pool.busy);
    return 1;
}
