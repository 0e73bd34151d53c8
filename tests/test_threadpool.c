/* test_threadpool.c - every share runs exactly once per job, jobs do not
 * overlap, the pool survives many back-to-back jobs, and rb_split covers
 * [0, n) exactly in chunk-aligned pieces. */
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
    RUN(bad_thread_count);
    return test_summary();
}
