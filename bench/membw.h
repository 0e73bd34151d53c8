/* membw.h - the machine's memory read bandwidth, measured the way token
 * generation reads weights: every thread streams through its own slice of a
 * buffer far larger than the last-level cache. This is the roofline's
 * denominator in `rbee bench`. */
#ifndef RB_MEMBW_H
#define RB_MEMBW_H

#include <stddef.h>

/* Default buffer: 1 GiB (override with RBEE_BW_MIB). The bench runs where the
 * reported L3 is up to ~480 MiB, so 1 GiB is at least twice the LLC. */
#define RB_MEMBW_DEFAULT_BYTES ((size_t)1 << 30)

/* Passes per measurement; the best counts (others share the machine). */
#define RB_MEMBW_RUNS 8

/* A buffer allocated and touched once, reused for every measurement. */
struct rb_membw {
    unsigned char *buf;
    size_t n_bytes;   /* a multiple of 4096 */
};

int rb_membw_init(struct rb_membw *m, size_t n_bytes, char *err);
void rb_membw_free(struct rb_membw *m);

/* Best (highest) read bandwidth in bytes per second over n_runs passes, each
 * pass n_threads threads summing 64-bit words of their own slice. */
double rb_membw_measure(const struct rb_membw *m, int n_threads, int n_runs);

/* Buffer size from RBEE_BW_MIB, else RB_MEMBW_DEFAULT_BYTES. */
size_t rb_membw_default_bytes(void);

/* Monotonic seconds (shared by the bench timers). */
double rb_now_s(void);

#endif
