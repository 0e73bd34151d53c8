/* report.h - `rbee bench` results as a markdown table, a JSON array or CSV.
 *
 * One row per (model, kv type, threads, test). The markdown form starts with
 * a few header lines (CPU, ISA, measured bandwidth); JSON and CSV carry the
 * same facts in every row so each row stands alone. */
#ifndef RB_REPORT_H
#define RB_REPORT_H

#include <stdint.h>
#include <stdio.h>

struct rb_bench_row {
    char model[96];         /* file name without directories */
    uint64_t size_bytes;    /* file size */
    uint64_t n_params;      /* weight elements */
    char type[16];          /* file type, e.g. "Q4_0", "Q4_K_M" */
    char kv_type[16];       /* "f16" or "q8_0/f16" when K and V differ */
    char isa[16];
    int threads;
    char test[16];          /* "pp128", "tg64" */
    int is_tg;
    int n_ctx_mid;          /* tg: context at the mid-point of generation */
    double avg_ts, stddev_ts; /* tokens per second over the repetitions */
    int reps;
    double bytes_per_token; /* tg: weights + KV read per generated token */
    double bw_gbs;          /* tg: measured read bandwidth for this thread count, GB/s (1e9) */
    double bw_frac;         /* tg: avg_ts * bytes_per_token / bandwidth */
};

struct rb_bench_header {
    char cpu[128];
    char isa[16];
    char load[64];          /* /proc/loadavg at start, "" if unknown: others' work makes numbers noisy */
    int n_bw;               /* bandwidth measured per thread count */
    int bw_threads[16];
    double bw_gbs[16];
    double bw_buf_mib;
    int bw_runs;            /* passes, best counted */
};

void rb_report_md(FILE *out, const struct rb_bench_header *h, const struct rb_bench_row *rows, int n);
void rb_report_json(FILE *out, const struct rb_bench_row *rows, int n);
void rb_report_csv(FILE *out, const struct rb_bench_row *rows, int n);

/* "1.10 B", "256.5 M": parameters as people say them */
void rb_fmt_params(char *buf, size_t cap, uint64_t n);
/* "636.2 MiB", "1.10 GiB" */
void rb_fmt_bytes(char *buf, size_t cap, uint64_t n);

/* Number of columns rb_report_csv writes (tests check every line has them). */
#define RB_REPORT_CSV_COLUMNS 16

#endif
