/* membw.c - multi-threaded streaming read bandwidth (see membw.h).
 *
 * Each thread sums the 64-bit words of its slice with eight independent
 * accumulators, so the loop is bound by loads, not by an add chain. The
 * result is stored through a volatile so the compiler cannot drop the loads.
 * Pages are first touched by the thread that will read them (NUMA first-touch).
 */
#include "membw.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../gguf/gguf.h"

#define RB_MEMBW_MAX_THREADS 256

double rb_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t rb_membw_default_bytes(void) {
    const char *s = getenv("RBEE_BW_MIB");
    if (s && *s) {
        long mib = strtol(s, NULL, 10);
        if (mib >= 1 && mib <= (1L << 20)) return (size_t)mib << 20;
    }
    return RB_MEMBW_DEFAULT_BYTES;
}

struct membw_job {
    const uint64_t *words;
    size_t n_words;        /* a multiple of 8 */
    int touch;             /* 1: write the slice instead of reading it */
    atomic_int *go;        /* 1: start; 2: give up (not every thread started) */
    volatile uint64_t sink;
};

static uint64_t sum_words(const uint64_t *w, size_t n) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (size_t i = 0; i < n; i += 8) {
        a0 += w[i + 0]; a1 += w[i + 1]; a2 += w[i + 2]; a3 += w[i + 3];
        a4 += w[i + 4]; a5 += w[i + 5]; a6 += w[i + 6]; a7 += w[i + 7];
    }
    return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

static void *membw_worker(void *arg) {
    struct membw_job *job = arg;
    int go;
    while ((go = atomic_load_explicit(job->go, memory_order_acquire)) == 0)
        ; /* spin: the pass is timed from the moment go flips */
    if (go == 2) return NULL;
    if (job->touch) {
        /* distinct values so no page can be merged with the zero page */
        uint64_t *w = (uint64_t *)job->words;
        for (size_t i = 0; i < job->n_words; i++) w[i] = i * 0x9E3779B97F4A7C15ull;
    } else {
        job->sink = sum_words(job->words, job->n_words);
    }
    return NULL;
}

/* One pass over the buffer by n_threads threads; returns seconds between the
 * common start and the last thread's end. */
static double membw_pass(const struct rb_membw *m, int n_threads, int touch) {
    pthread_t tid[RB_MEMBW_MAX_THREADS];
    struct membw_job job[RB_MEMBW_MAX_THREADS];
    atomic_int go = 0;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > RB_MEMBW_MAX_THREADS) n_threads = RB_MEMBW_MAX_THREADS;

    size_t n_words = m->n_bytes / 8;
    size_t per = (n_words / (size_t)n_threads) & ~(size_t)7;
    int n_started = 0;
    for (int t = 0; t < n_threads; t++) {
        size_t begin = per * (size_t)t;
        size_t end = t == n_threads - 1 ? n_words : begin + per;
        job[t] = (struct membw_job){ .words = (const uint64_t *)m->buf + begin,
                                     .n_words = (end - begin) & ~(size_t)7,
                                     .touch = touch, .go = &go };
        if (pthread_create(&tid[t], NULL, membw_worker, &job[t]) != 0) break;
        n_started++;
    }
    double t0 = rb_now_s();
    atomic_store_explicit(&go, n_started == n_threads ? 1 : 2, memory_order_release);
    for (int t = 0; t < n_started; t++) pthread_join(tid[t], NULL);
    double t1 = rb_now_s();
    return n_started == n_threads ? t1 - t0 : 0.0;
}

int rb_membw_init(struct rb_membw *m, size_t n_bytes, char *err) {
    memset(m, 0, sizeof *m);
    n_bytes = (n_bytes + 4095) & ~(size_t)4095;
    if (n_bytes == 0) n_bytes = 4096;
    void *p = NULL;
    if (posix_memalign(&p, 4096, n_bytes) != 0) {
        snprintf(err, RB_ERR_MAX, "cannot allocate %zu MiB for the bandwidth buffer", n_bytes >> 20);
        return -1;
    }
    m->buf = p;
    m->n_bytes = n_bytes;
    return 0;
}

void rb_membw_free(struct rb_membw *m) {
    free(m->buf);
    memset(m, 0, sizeof *m);
}

double rb_membw_measure(const struct rb_membw *m, int n_threads, int n_runs) {
    double best = 0.0;
    membw_pass(m, n_threads, 1); /* first touch: fault the pages in, on the readers' nodes */
    membw_pass(m, n_threads, 0); /* warm-up read */
    for (int r = 0; r < (n_runs < 1 ? 1 : n_runs); r++) {
        double s = membw_pass(m, n_threads, 0);
        if (s > 0.0) {
            double bps = (double)m->n_bytes / s;
            if (bps > best) best = bps;
        }
    }
    return best;
}
