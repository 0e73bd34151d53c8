/* report.c - bench rows as markdown, JSON and CSV (see report.h). */
#include "report.h"

#include <math.h>
#include <string.h>

void rb_fmt_params(char *buf, size_t cap, uint64_t n) {
    if (n >= 1000000000ull) snprintf(buf, cap, "%.2f B", (double)n / 1e9);
    else if (n >= 1000000ull) snprintf(buf, cap, "%.2f M", (double)n / 1e6);
    else if (n >= 1000ull) snprintf(buf, cap, "%.2f K", (double)n / 1e3);
    else snprintf(buf, cap, "%llu", (unsigned long long)n);
}

void rb_fmt_bytes(char *buf, size_t cap, uint64_t n) {
    double d = (double)n;
    if (n >= (1ull << 30)) snprintf(buf, cap, "%.2f GiB", d / (double)(1ull << 30));
    else if (n >= (1ull << 20)) snprintf(buf, cap, "%.2f MiB", d / (double)(1ull << 20));
    else if (n >= (1ull << 10)) snprintf(buf, cap, "%.2f KiB", d / 1024.0);
    else snprintf(buf, cap, "%llu B", (unsigned long long)n);
}

/* ---- markdown ---- */

void rb_report_md(FILE *out, const struct rb_bench_header *h, const struct rb_bench_row *rows, int n) {
    if (h) {
        fprintf(out, "cpu: %s\n\nisa: %s\n\n", h->cpu, h->isa);
        if (h->load[0]) fprintf(out, "load average at start: %s\n\n", h->load);
        fprintf(out, "memory read bandwidth (streaming read of a %.0f MiB buffer, best of %d passes before and after):", h->bw_buf_mib,
                h->bw_runs);
        for (int i = 0; i < h->n_bw; i++)
            fprintf(out, "%s %.1f GB/s with %d thread%s", i ? "," : "", h->bw_gbs[i],
                    h->bw_threads[i], h->bw_threads[i] == 1 ? "" : "s");
        fprintf(out, "\n\nbw%% = t/s x bytes read per token / bandwidth at the row's thread count\n\n");
        for (int i = 0; i < n; i++)
            if (rows[i].is_tg && rows[i].bw_frac > 1.0) {
                fprintf(out, "note: bw%% above 100%% means the bandwidth measurement was disturbed "
                             "(other processes on the machine); compare t/s instead\n\n");
                break;
            }
    }
    fprintf(out, "| model | size | params | type | kv | isa | threads | test | t/s | bw%% |\n");
    fprintf(out, "| --- | ---: | ---: | --- | --- | --- | ---: | --- | ---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        const struct rb_bench_row *r = &rows[i];
        char size[32], params[32], bw[32];
        rb_fmt_bytes(size, sizeof size, r->size_bytes);
        rb_fmt_params(params, sizeof params, r->n_params);
        if (r->is_tg) snprintf(bw, sizeof bw, "%.1f%%", 100.0 * r->bw_frac);
        else snprintf(bw, sizeof bw, "-");
        fprintf(out, "| %s | %s | %s | %s | %s | %s | %d | %s | %.2f ± %.2f | %s |\n",
                r->model, size, params, r->type, r->kv_type, r->isa, r->threads, r->test,
                r->avg_ts, r->stddev_ts, bw);
    }
}

/* ---- JSON ---- */

/* A JSON string: quotes, backslashes and control bytes escaped. */
static void json_str(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

/* JSON has no NaN/Inf: write null for them. */
static void json_num(FILE *out, double v) {
    if (isfinite(v)) fprintf(out, "%.6g", v);
    else fprintf(out, "null");
}

void rb_report_json(FILE *out, const struct rb_bench_row *rows, int n) {
    fprintf(out, "[");
    for (int i = 0; i < n; i++) {
        const struct rb_bench_row *r = &rows[i];
        fprintf(out, "%s\n  {\"model\": ", i ? "," : "");
        json_str(out, r->model);
        fprintf(out, ", \"size_bytes\": %llu, \"n_params\": %llu, \"type\": ",
                (unsigned long long)r->size_bytes, (unsigned long long)r->n_params);
        json_str(out, r->type);
        fprintf(out, ", \"kv_type\": ");
        json_str(out, r->kv_type);
        fprintf(out, ", \"isa\": ");
        json_str(out, r->isa);
        fprintf(out, ", \"threads\": %d, \"test\": ", r->threads);
        json_str(out, r->test);
        fprintf(out, ", \"reps\": %d, \"avg_ts\": ", r->reps);
        json_num(out, r->avg_ts);
        fprintf(out, ", \"stddev_ts\": ");
        json_num(out, r->stddev_ts);
        if (r->is_tg) {
            fprintf(out, ", \"n_ctx_mid\": %d, \"bytes_per_token\": ", r->n_ctx_mid);
            json_num(out, r->bytes_per_token);
            fprintf(out, ", \"bw_gbs\": ");
            json_num(out, r->bw_gbs);
            fprintf(out, ", \"bw_frac\": ");
            json_num(out, r->bw_frac);
        }
        fprintf(out, "}");
    }
    fprintf(out, "%s]\n", n ? "\n" : "");
}

/* ---- CSV (RFC 4180: fields with commas or quotes are quoted) ---- */

static void csv_str(FILE *out, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { fputs(s, out); return; }
    fputc('"', out);
    for (const char *p = s; *p; p++) {
        if (*p == '"') fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

void rb_report_csv(FILE *out, const struct rb_bench_row *rows, int n) {
    fprintf(out, "model,size_bytes,n_params,type,kv_type,isa,threads,test,reps,avg_ts,stddev_ts,"
                 "n_ctx_mid,bytes_per_token,bw_gbs,bw_frac,is_tg\n");
    for (int i = 0; i < n; i++) {
        const struct rb_bench_row *r = &rows[i];
        csv_str(out, r->model); fputc(',', out);
        fprintf(out, "%llu,%llu,", (unsigned long long)r->size_bytes, (unsigned long long)r->n_params);
        csv_str(out, r->type); fputc(',', out);
        csv_str(out, r->kv_type); fputc(',', out);
        csv_str(out, r->isa); fputc(',', out);
        fprintf(out, "%d,", r->threads);
        csv_str(out, r->test);
        fprintf(out, ",%d,%.6g,%.6g,", r->reps, r->avg_ts, r->stddev_ts);
        if (r->is_tg) fprintf(out, "%d,%.6g,%.6g,%.6g,1\n", r->n_ctx_mid, r->bytes_per_token, r->bw_gbs, r->bw_frac);
        else fprintf(out, ",,,,0\n");
    }
}
