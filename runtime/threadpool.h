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

#endif
