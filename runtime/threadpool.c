/* threadpool.c - pthreads created once, parked between jobs.
 *
 * A job is published by bumping `generation`; workers notice it by spinning
 * for a short while and then by sleeping on `wake`. The caller runs share 0
 * itself and waits for `n_busy` to drop to zero. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "threadpool.h"
#include "../gguf/gguf.h"

/* Spins before a worker sleeps / before the caller yields. A generation step
 * launches a job every few microseconds, so a short spin avoids most
 * sleep/wake round trips without burning a core when idle. */
#define RB_SPIN_WORKER 20000
#define RB_SPIN_CALLER 2000

struct rb_pool;

struct rb_worker {
    struct rb_pool *pool;
    pthread_t thread;
    int ith;
};

/* A thread's range of units, front << 32 | back, alone on its cache line
 * (its owner and the others change it with compare-and-swap), and the size
 * it was shared out with. */
struct rb_range {
    _Alignas(64) _Atomic uint64_t v;
    uint64_t n0;
};

struct rb_pool {
    int n_threads;
    struct rb_range *ranges;   /* [n_threads] */
    struct rb_worker *workers; /* [n_threads - 1]: thread 0 is the caller */
    int n_started;

    rb_task_fn fn;             /* the current job; written before generation moves */
    void *arg;
    atomic_uint generation;    /* bumped once per job */
    atomic_int n_busy;         /* workers still running the current job */
    atomic_int quit;

    pthread_mutex_t lock;
    pthread_cond_t wake;
};

static void *worker_main(void *p_) {
    struct rb_worker *w = p_;
    struct rb_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        for (int spin = 0; gen == seen && spin < RB_SPIN_WORKER; spin++) {
            if (atomic_load_explicit(&p->quit, memory_order_relaxed)) return NULL;
            gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (gen == seen) {
            pthread_mutex_lock(&p->lock);
            while ((gen = atomic_load(&p->generation)) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->wake, &p->lock);
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->quit)) return NULL;
        seen = gen;
        p->fn(p->arg, w->ith, p->n_threads);
        atomic_fetch_sub_explicit(&p->n_busy, 1, memory_order_acq_rel);
    }
}

int rb_pool_new(struct rb_pool **out, int n_threads, char *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024) {
        snprintf(err, RB_ERR_MAX, "thread count %d out of range 1..1024", n_threads);
        return -1;
    }
    struct rb_pool *p = calloc(1, sizeof *p);
    if (!p) { snprintf(err, RB_ERR_MAX, "out of memory"); return -1; }
    p->n_threads = n_threads;
    atomic_init(&p->generation, 0);
    atomic_init(&p->n_busy, 0);
    atomic_init(&p->quit, 0);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->ranges = aligned_alloc(64, (size_t)n_threads * sizeof *p->ranges);
    if (!p->ranges) { rb_pool_free(p); snprintf(err, RB_ERR_MAX, "out of memory"); return -1; }
    for (int i = 0; i < n_threads; i++) { atomic_init(&p->ranges[i].v, 0); p->ranges[i].n0 = 0; }
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) { rb_pool_free(p); snprintf(err, RB_ERR_MAX, "out of memory"); return -1; }
    }
    for (int i = 0; i < n_threads - 1; i++) {
        p->workers[i].pool = p;
        p->workers[i].ith = i + 1;
        int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
        if (rc) {
            snprintf(err, RB_ERR_MAX, "cannot start thread %d: %s", i + 1, strerror(rc));
            rb_pool_free(p);
            return -1;
        }
        p->n_started++;
    }
    *out = p;
    return 0;
}

void rb_pool_free(struct rb_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p->ranges);
    free(p);
}

int rb_pool_n_threads(const struct rb_pool *p) { return p->n_threads; }

void rb_pool_run(struct rb_pool *p, rb_task_fn fn, void *arg) {
    if (p->n_threads == 1) { fn(arg, 0, 1); return; }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->n_busy, p->n_threads - 1, memory_order_relaxed);
    /* The lock orders the bump against a worker about to sleep. */
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);

    fn(arg, 0, p->n_threads);

    for (int spin = 0; atomic_load_explicit(&p->n_busy, memory_order_acquire) > 0; spin++)
        if (spin > RB_SPIN_CALLER) sched_yield();
}

void rb_split(int64_t n, int64_t chunk, int ith, int nth, int64_t *begin, int64_t *end) {
    if (chunk < 1) chunk = 1;
    int64_t n_chunks = (n + chunk - 1) / chunk;
    int64_t c0 = n_chunks * ith / nth, c1 = n_chunks * (ith + 1) / nth;
    *begin = c0 * chunk < n ? c0 * chunk : n;
    *end = c1 * chunk < n ? c1 * chunk : n;
}

void rb_pool_share(struct rb_pool *p, int64_t n_units) {
    for (int i = 0; i < p->n_threads; i++) {
        int64_t b, e;
        rb_split(n_units, 1, i, p->n_threads, &b, &e);
        atomic_store_explicit(&p->ranges[i].v, (uint64_t)b << 32 | (uint64_t)e, memory_order_relaxed);
        p->ranges[i].n0 = (uint64_t)(e - b);
    }
}

/* Takes part of what is left of range r, from its front (the owner: three
 * quarters of an untouched range, else half) or its back (half): 1 with
 * [*begin, *end), 0 when the range is empty. Halves round up. */
static int take_part(struct rb_range *r, int owner, int64_t *begin, int64_t *end) {
    uint64_t v = atomic_load_explicit(&r->v, memory_order_relaxed);
    for (;;) {
        uint64_t f = v >> 32, b = v & 0xFFFFFFFFu, left = b - f;
        if (f >= b) return 0;
        uint64_t k = owner && left == r->n0 ? left - left / 4 : (left + 1) / 2;
        uint64_t nv = owner ? (f + k) << 32 | b : f << 32 | (b - k);
        if (atomic_compare_exchange_weak_explicit(&r->v, &v, nv, memory_order_relaxed, memory_order_relaxed)) {
            *begin = (int64_t)(owner ? f : b - k);
            *end = (int64_t)(owner ? f + k : b);
            return 1;
        }
    }
}

int rb_pool_take(struct rb_pool *p, int ith, int64_t *begin, int64_t *end) {
    if (take_part(&p->ranges[ith], 1, begin, end)) return 1;
    for (int d = 1; d < p->n_threads; d++)
        if (take_part(&p->ranges[(ith + d) % p->n_threads], 0, begin, end)) return 1;
    return 0;
}
