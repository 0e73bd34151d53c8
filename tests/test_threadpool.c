/* test_threadpool.c - every share runs exactly once per job, jobs do not
 * overlap, the pool survives many back-to-back jobs, rb_split covers
 * [0, n) exactly in chunk-aligned pieces, and rb_pool_take hands out every
 * unit once, in the order its header promises, taking a late thread's
 * units away from it. */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "test.h"
#include "../runtime/threadpool.h"

struct job { atomic_int calls; atomic_int seen[8]; int nth_seen; int64_t *data; int64_t n; int round; };

static void count_task(void *arg, int ith, int nth) {
    struct job *j = arg;
    atomic_fetch_add(&j->calls, 1);
    atomic_fetch_add(&j->seen[ith], 1);
    if (ith == 0) j->nth_seen = nth;
    int64_t b, e;
    rb_split(j->n, 16, ith, nth, &b, &e);
    for (int64_t i = b; i < e; i++) j->data[i] += j->round; /* would race if shares overlapped */
}

TEST(every_share_once_per_job) {
    for (int nt = 1; nt <= 4; nt++) {
        char err[256];
        struct rb_pool *p;
        CHECK(rb_pool_new(&p, nt, err) == 0);
        CHECK_EQ_INT(rb_pool_n_threads(p), nt);
        int64_t n = 1000;
        int64_t *data = calloc((size_t)n, sizeof *data);
        struct job j = { .data = data, .n = n };
        int rounds = 2000;
        for (int r = 1; r <= rounds; r++) { j.round = r; rb_pool_run(p, count_task, &j); }
        CHECK_EQ_INT(atomic_load(&j.calls), rounds * nt);
        for (int i = 0; i < nt; i++) CHECK_EQ_INT(atomic_load(&j.seen[i]), rounds);
        CHECK_EQ_INT(j.nth_seen, nt);
        int64_t want = (int64_t)rounds * (rounds + 1) / 2;
        for (int64_t i = 0; i < n; i++) if (data[i] != want) { TEST_FAIL_AT("data[%lld] = %lld", (long long)i, (long long)data[i]); break; }
        free(data);
        rb_pool_free(p);
    }
}

/* Jobs far apart: the workers have gone to sleep and must wake up. */
TEST(wakes_sleeping_workers) {
    char err[256];
    struct rb_pool *p;
    CHECK(rb_pool_new(&p, 3, err) == 0);
    int64_t data[64] = { 0 };
    struct job j = { .data = data, .n = 64, .round = 1 };
    for (int r = 0; r < 3; r++) {
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        rb_pool_run(p, count_task, &j);
    }
    CHECK_EQ_INT(atomic_load(&j.calls), 9);
    for (int i = 0; i < 64; i++) CHECK_EQ_INT(data[i], 3);
    rb_pool_free(p);
}

TEST(split_covers_exactly) {
    for (int64_t n = 0; n < 200; n += 7)
        for (int nth = 1; nth <= 5; nth++) {
            int64_t next = 0;
            for (int ith = 0; ith < nth; ith++) {
                int64_t b, e;
                rb_split(n, 16, ith, nth, &b, &e);
                CHECK_EQ_INT(b, next);
                CHECK(e >= b);
                CHECK(b % 16 == 0 || b == n);
                next = e;
            }
            CHECK_EQ_INT(next, n);
        }
}

struct take_job { struct rb_pool *p; atomic_int *count; atomic_int taken[4]; int late; };

static void take_task(void *arg, int ith, int nth) {
    (void)nth;
    struct take_job *j = arg;
    if (ith == j->late) { struct timespec ts = { 0, 50 * 1000 * 1000 }; nanosleep(&ts, NULL); }
    int64_t b, e;
    while (rb_pool_take(j->p, ith, &b, &e))
        for (int64_t u = b; u < e; u++) { atomic_fetch_add(&j->count[u], 1); atomic_fetch_add(&j->taken[ith], 1); }
}

TEST(take_hands_out_every_unit_once) {
    static const int64_t ns[] = { 0, 1, 3, 5, 64, 1001 };
    for (int nt = 1; nt <= 4; nt++) {
        char err[256];
        struct rb_pool *p;
        CHECK(rb_pool_new(&p, nt, err) == 0);
        atomic_int *count = calloc(1001, sizeof *count);
        int bad = 0;
        for (int k = 0; k < (int)(sizeof ns / sizeof ns[0]) && !bad; k++)
            for (int round = 0; round < 200 && !bad; round++) {
                for (int64_t u = 0; u < ns[k]; u++) atomic_store(&count[u], 0);
                struct take_job j = { .p = p, .count = count, .late = -1 };
                rb_pool_share(p, ns[k]);
                rb_pool_run(p, take_task, &j);
                int sum = 0;
                for (int t = 0; t < nt; t++) sum += atomic_load(&j.taken[t]);
                CHECK_EQ_INT(sum, ns[k]);
                for (int64_t u = 0; u < ns[k] && !bad; u++)
                    if (atomic_load(&count[u]) != 1) {
                        TEST_FAIL_AT("%d threads, %lld units: unit %lld taken %d times", nt, (long long)ns[k],
                                     (long long)u, atomic_load(&count[u]));
                        bad = 1;
                    }
            }
        free(count);
        rb_pool_free(p);
    }
}

/* From one thread, so the order is fixed: three quarters of its untouched
 * range, half of the rest, then halves of the other range's back. */
TEST(take_order) {
    char err[256];
    struct rb_pool *p;
    CHECK(rb_pool_new(&p, 2, err) == 0);
    rb_pool_share(p, 10); /* [0, 5) and [5, 10) */
    static const int64_t want[][2] = { { 0, 4 }, { 4, 5 }, { 7, 10 }, { 6, 7 }, { 5, 6 } };
    for (int i = 0; i < 5; i++) {
        int64_t b = -1, e = -1;
        CHECK(rb_pool_take(p, 0, &b, &e) == 1);
        CHECK_EQ_INT(b, want[i][0]);
        CHECK_EQ_INT(e, want[i][1]);
    }
    int64_t b, e;
    CHECK(rb_pool_take(p, 0, &b, &e) == 0);
    CHECK(rb_pool_take(p, 1, &b, &e) == 0);
    rb_pool_share(p, 10); /* shared again: whole ranges again */
    CHECK(rb_pool_take(p, 1, &b, &e) == 1);
    CHECK_EQ_INT(b, 5);
    CHECK_EQ_INT(e, 9);
    rb_pool_free(p);
}

/* A thread that starts 50 ms late finds its units done by the other. */
TEST(take_late_thread_loses_its_units) {
    char err[256];
    struct rb_pool *p;
    CHECK(rb_pool_new(&p, 2, err) == 0);
    atomic_int count[64];
    for (int u = 0; u < 64; u++) atomic_init(&count[u], 0);
    struct take_job j = { .p = p, .count = count, .late = 1 };
    rb_pool_share(p, 64);
    rb_pool_run(p, take_task, &j);
    CHECK_EQ_INT(atomic_load(&j.taken[0]), 64);
    CHECK_EQ_INT(atomic_load(&j.taken[1]), 0);
    for (int u = 0; u < 64; u++) CHECK_EQ_INT(atomic_load(&count[u]), 1);
    rb_pool_free(p);
}

TEST(bad_thread_count) {
    char err[256] = "";
    struct rb_pool *p;
    CHECK(rb_pool_new(&p, 0, err) == -1);
    CHECK(p == NULL);
    CHECK_CONTAINS(err, "thread count 0");
}

int main(void) {
    RUN(every_share_once_per_job);
    RUN(wakes_sleeping_workers);
    RUN(split_covers_exactly);
    RUN(take_hands_out_every_unit_once);
    RUN(take_order);
    RUN(take_late_thread_loses_its_units);
    RUN(bad_thread_count);
    return test_summary();
}
