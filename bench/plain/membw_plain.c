/* membw_plain.c - the cross-check for `rbee bench`'s bandwidth figure: the
 * plainest multi-threaded C read loop (one accumulator per thread, whatever
 * the compiler makes of it), independent of rbee's code.
 *
 *   cc -O3 -pthread bench/plain/membw_plain.c -o membw_plain   (-O3: the compiler vectorizes
 *   the sum; at -O2 gcc 12 leaves one scalar add chain, measured ~20% slower here)
 *   ./membw_plain THREADS [MiB]      -> "plain read loop: 26.9 GB/s (2 threads, 1024 MiB, best of 5)"
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct slice { const uint64_t *p; size_t n; uint64_t sum; };

static void *reader(void *arg) {
    struct slice *s = arg;
    uint64_t sum = 0;
    for (size_t i = 0; i < s->n; i++) sum += s->p[i];
    s->sum = sum;
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
    if (nt < 1 || nt > 256 || mib < 1) { fprintf(stderr, "usage: membw_plain THREADS [MiB]\n"); return 1; }
    size_t n = mib << 17; /* 64-bit words */
    uint64_t *buf = malloc(n * sizeof *buf);
    if (!buf) { fprintf(stderr, "out of memory\n"); return 1; }
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double best = 0;
    uint64_t check = 0;
    for (int run = 0; run < 6; run++) {
        pthread_t th[256];
        struct slice sl[256];
        double t0 = now();
        for (int t = 0; t < nt; t++) {
            sl[t].p = buf + n / (size_t)nt * (size_t)t;
            sl[t].n = n / (size_t)nt;
            pthread_create(&th[t], NULL, reader, &sl[t]);
        }
        for (int t = 0; t < nt; t++) { pthread_join(th[t], NULL); check += sl[t].sum; }
        double gbs = (double)(n / (size_t)nt * (size_t)nt * 8) / (now() - t0) / 1e9;
        if (run > 0 && gbs > best) best = gbs; /* run 0 is the warm-up */
    }
    printf("plain read loop: %.1f GB/s (%d threads, %zu MiB, best of 5; checksum %llu)\n", best, nt, mib,
           (unsigned long long)(check & 0xff));
    free(buf);
    return 0;
}
