/* threadpool.h - one pool of pthreads per context, parked between steps.
 *
 * rb_pool_run(p, fn, arg) calls fn(arg, ith, nth) once for every ith in
 * [0, nth): ith 0 on the calling thread, the others on the workers, and
 * returns when all have finished. Workers spin briefly waiting for the next
 * job (steps come back to back during generation), then sleep on a
 * condition variable. Work is split by the callee using ith/nth, never a
 * reduction, so results do not depend on nth.
 */
#ifndef RB_THREADPOOL_H
#define RB_THREADPOOL_H

#include <stdint.h>

typedef void (*rb_task_fn)(void *arg, int ith, int nth);

struct rb_pool;

int rb_pool_new(struct rb_pool **out, int n_threads, char *err);
void rb_pool_free(struct rb_pool *p);
int rb_pool_n_threads(const struct rb_pool *p);
void rb_pool_run(struct rb_pool *p, rb_task_fn fn, void *arg);

/* The half-open slice [*begin, *end) of n items that thread ith of nth
 * takes, in whole chunks of `chunk` items (the last may be shorter). */
void rb_split(int64_t n, int64_t chunk, int ith, int nth, int64_t *begin, int64_t *end);

/* Work that threads may finish unevenly: the CPUs of a laptop's P and E
 * cores, or of a VM whose neighbours come and go, run at different speeds
 * from one moment to the next. rb_pool_share(p, n) splits units [0, n) into
 * one range per thread, as rb_split(n, 1, ...) would, before the job
 * starts; in the job, rb_pool_take(p, ith, ...) hands thread ith the front
 * of what is left of its own range (three quarters of it the first time,
 * half after that: its units stay one stream, in a few calls) and, once
 * that is empty, the back half of what is left of another's. Every unit is
 * handed out exactly once; 0 when none is left. n < 2^31. A job run
 * without the pool (ith 0 alone) takes every range in turn. */
void rb_pool_share(struct rb_pool *p, int64_t n_units);
int rb_pool_take(struct rb_pool *p, int ith, int64_t *begin, int64_t *end);

#endif
