/* cli_bench.c - `rbee bench`: prompt processing (pp N: one batch of N
 * tokens from an empty cache) and generation (tg N: N tokens one at a time
 * after a short prompt; tgN@dD after D tokens, -d) throughput, mean ±
 * stddev over repetitions (taken in rounds over all tests) after a warm-up,
 * with each tg row's fraction of the memory-bandwidth roofline:
 *
 *   bw% = t/s × bytes read per token / measured read bandwidth
 *
 * bytes read per token (facts.h) = weights a token touches + the KV cache
 * read at the mid-point context of the generation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../runtime/cli.h"
#include "../runtime/context.h"
#include "../runtime/rbee.h"
#include "../attention/attention.h"
#include "facts.h"
#include "membw.h"
#include "report.h"
#include "synth.h"

#define MAX_LIST 16
#define MAX_MODELS 32
#define MAX_ROWS 1024
#define DEFAULT_DEPTH 16 /* tokens of prompt before a tg test */

struct int_list { int n; int v[MAX_LIST]; };

struct bench_opts {
    const char *models[MAX_MODELS];
    int is_synth[MAX_MODELS];   /* models[i] is "SHAPE:TYPE" */
    int n_models;
    struct int_list pp, tg, threads, depth;
    int reps;
    char kv_k[MAX_LIST][8], kv_v[MAX_LIST][8];
    int n_kv;
    const char *format;         /* "md", "json", "csv" */
    uint64_t seed;
};

/* ---- options ---- */

static void bench_usage(FILE *out) {
    fprintf(out,
            "usage: rbee bench -m MODEL [-m MODEL2 ...] [--synthetic SHAPE:TYPE ...] [options]\n\n"
            "  -m FILE               a GGUF model (repeatable)\n"
            "  --synthetic SHAPE:TYPE  a synthetic model written to a temp file, benched, deleted\n"
            "                        (shapes: %s;\n"
            "                         types: %s)\n"
            "  -p N[,N...]           prompt processing tests: one batch of N tokens (default 128; 0: none)\n"
            "  -n N[,N...]           generation tests: N tokens one at a time (default 64; 0: none)\n"
            "  -d N[,N...]           tokens in the cache before a generation test (default %d; 0: none)\n"
            "  -t N[,N...]           threads (default: all CPUs)\n"
            "  -r N                  repetitions after one warm-up run (default 3)\n"
            "  --kv-type T[,T...]    KV cache type for K and V: f32, f16, q8_0, q4_0 (default f16)\n"
            "  -ctk T, -ctv T        K and V cache types separately\n"
            "  -o md|json|csv        output format (default md)\n"
            "  --seed S              seed for prompt tokens and synthetic weights (default 1)\n\n"
            "Memory read bandwidth is measured before and after the tests with each -t thread\n"
            "count (streaming read of a 1 GiB buffer, RBEE_BW_MIB to change; the best counts);\n"
            "bw%% in tg rows is t/s x bytes read per token / that bandwidth.\n",
            rb_synth_shape_names(), rb_synth_ftype_names(), DEFAULT_DEPTH);
}

static int parse_int_list(const char *s, struct int_list *l, int min, const char *opt) {
    l->n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < min || v > 1000000 || l->n == MAX_LIST || (*end && *end != ',')) {
            fprintf(stderr, "rbee: error: bench: %s %s: expected comma-separated integers >= %d\n", opt, s, min);
            return -1;
        }
        l->v[l->n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (l->n == 0) {
        fprintf(stderr, "rbee: error: bench: %s: empty list\n", opt);
        return -1;
    }
    return 0;
}

static int check_kv_type(const char *t) {
    uint32_t type;
    if (strlen(t) >= 8 || rb_kv_type_parse(t, &type) != 0) {
        fprintf(stderr, "rbee: error: bench: KV cache type '%s': expected f32, f16, q8_0 or q4_0\n", t);
        return -1;
    }
    return 0;
}

static int parse_kv_list(const char *s, struct bench_opts *o) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    o->n_kv = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (check_kv_type(tok) != 0) return -1;
        if (o->n_kv == MAX_LIST) break;
        snprintf(o->kv_k[o->n_kv], 8, "%s", tok);
        snprintf(o->kv_v[o->n_kv], 8, "%s", tok);
        o->n_kv++;
    }
    return o->n_kv ? 0 : -1;
}

/* "SHAPE:TYPE" -> synth options (NULL: only check); -1 with the error printed. */
static int parse_synth_spec(const char *spec, struct rb_synth_opts *so) {
    char shape[64];
    const char *colon = strchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof shape) {
        fprintf(stderr, "rbee: error: bench: --synthetic %s: expected SHAPE:TYPE, e.g. tinyllama-1.1b:q4_0\n", spec);
        return -1;
    }
    memcpy(shape, spec, (size_t)(colon - spec));
    shape[colon - spec] = 0;
    const struct rb_synth_shape *sh = rb_synth_shape_find(shape);
    const struct rb_synth_ftype *ft = rb_synth_ftype_find(colon + 1);
    if (!sh || !ft) {
        fprintf(stderr, "rbee: error: bench: --synthetic %s: unknown %s (known: %s)\n", spec,
                !sh ? "shape" : "type", !sh ? rb_synth_shape_names() : rb_synth_ftype_names());
        return -1;
    }
    if (so) {
        so->shape = sh;
        so->ftype = ft;
    }
    return 0;
}

/* Every option takes a value. */
static const char *const bench_flags[] = {
    "-m", "--model", "--synthetic", "-p", "--n-prompt", "-n", "--n-gen", "-d", "--depth", "-t", "--threads",
    "-r", "--repetitions", "--kv-type", "-ctk", "--cache-type-k", "-ctv", "--cache-type-v", "-o", "--output", "--seed",
};

/* 0 ok, 1 help printed, -1 error printed */
static int parse_args(int argc, char **argv, struct bench_opts *o) {
    const char *ctk = NULL, *ctv = NULL;
    memset(o, 0, sizeof *o);
    o->pp = (struct int_list){ 1, { 128 } };
    o->tg = (struct int_list){ 1, { 64 } };
    o->depth = (struct int_list){ 1, { DEFAULT_DEPTH } };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = (struct int_list){ 1, { ncpu > 0 ? (int)ncpu : 1 } };
    o->reps = 3;
    o->n_kv = 1;
    snprintf(o->kv_k[0], 8, "f16");
    snprintf(o->kv_v[0], 8, "f16");
    o->format = "md";
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { bench_usage(stdout); return 1; }
        int known = 0;
        for (size_t k = 0; k < sizeof bench_flags / sizeof bench_flags[0]; k++) known |= !strcmp(a, bench_flags[k]);
        if (!known) { /* whether a value follows or not */
            fprintf(stderr, "rbee: error: bench: unknown option '%s' (see 'rbee bench --help')\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "rbee: error: bench: %s needs a value (see 'rbee bench --help')\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--synthetic")) {
            if (o->n_models == MAX_MODELS) { fprintf(stderr, "rbee: error: bench: too many models\n"); return -1; }
            o->is_synth[o->n_models] = !strcmp(a, "--synthetic");
            o->models[o->n_models++] = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) rc = parse_int_list(v, &o->pp, 0, a);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) rc = parse_int_list(v, &o->tg, 0, a);
        else if (!strcmp(a, "-d") || !strcmp(a, "--depth")) rc = parse_int_list(v, &o->depth, 0, a); /* 0: llama-bench's default */
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) rc = parse_int_list(v, &o->threads, 1, a);
        else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            struct int_list l;
            rc = parse_int_list(v, &l, 1, a);
            o->reps = l.v[0];
        } else if (!strcmp(a, "--kv-type")) rc = parse_kv_list(v, o);
        else if (!strcmp(a, "-ctk") || !strcmp(a, "--cache-type-k")) { ctk = v; rc = check_kv_type(v); }
        else if (!strcmp(a, "-ctv") || !strcmp(a, "--cache-type-v")) { ctv = v; rc = check_kv_type(v); }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            o->format = v;
            if (strcmp(v, "md") && strcmp(v, "json") && strcmp(v, "csv")) {
                fprintf(stderr, "rbee: error: bench: -o %s: expected md, json or csv\n", v);
                rc = -1;
            }
        } else { /* --seed, the last of bench_flags */
            char *end;
            o->seed = strtoull(v, &end, 10);
            if (*end || !*v) { fprintf(stderr, "rbee: error: bench: --seed %s: not a number\n", v); rc = -1; }
        }
        if (rc != 0) return -1;
    }
    if (ctk || ctv) { /* -ctk/-ctv name one combination; the other side defaults to f16 */
        o->n_kv = 1;
        snprintf(o->kv_k[0], 8, "%s", ctk ? ctk : "f16");
        snprintf(o->kv_v[0], 8, "%s", ctv ? ctv : "f16");
    }
    /* fail before the bandwidth measurement, not after it */
    for (int i = 0; i < o->n_models; i++) {
        struct stat st;
        if (o->is_synth[i] ? parse_synth_spec(o->models[i], NULL) != 0 : stat(o->models[i], &st) != 0) {
            if (!o->is_synth[i]) fprintf(stderr, "rbee: error: bench: %s: no such file\n", o->models[i]);
            return -1;
        }
    }
    if (o->n_models == 0) {
        fprintf(stderr, "rbee: error: bench: no model (-m FILE or --synthetic SHAPE:TYPE; see 'rbee bench --help')\n");
        return -1;
    }
    return 0;
}

/* ---- timing one test ---- */

static void random_tokens(uint64_t *rng, int32_t *ids, int n, int n_vocab) {
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(rb_synth_rng_next(rng) % (uint64_t)n_vocab);
}

/* pp: tokens/s of one batch of n random tokens into an empty cache. */
static int run_pp(rbee_context *c, int n, uint64_t *rng, int32_t *ids, double *ts, char *err) {
    rbee_reset(c);
    random_tokens(rng, ids, n, rbee_n_vocab(c));
    double t0 = rb_now_s();
    if (rbee_eval(c, ids, n, 0, err) != 0) return -1;
    *ts = n / (rb_now_s() - t0);
    return 0;
}

/* tg: tokens/s of n single-token steps after depth tokens in the cache.
 * The cache is brought to depth untimed: moved there if its rows were
 * written before (by an earlier test; attention costs the same whatever
 * tokens the rows came from), else filled up with random tokens. So the
 * prompt of a deep test is processed once, not before every repetition,
 * and tests at several depths can take turns. */
static int run_tg(rbee_context *c, int n, int depth, uint64_t *rng, int32_t *ids, double *ts, char *err) {
    int written = c->n_written < depth ? c->n_written : depth;
    rb_context_seek(c, written);
    random_tokens(rng, ids, depth + n, rbee_n_vocab(c));
    if (written < depth && rbee_eval(c, ids + written, depth - written, 0, err) != 0) return -1;
    double t0 = rb_now_s();
    for (int i = 0; i < n; i++)
        if (rbee_eval(c, &ids[depth + i], 1, 0, err) != 0) return -1;
    *ts = n / (rb_now_s() - t0);
    return 0;
}

static void mean_std(const double *x, int n, double *mean, double *std) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

/* ---- one model ---- */

struct bench_run {
    const struct bench_opts *o;
    struct rb_bench_header h;
    struct rb_bench_row *rows;
    int n_rows;
};

static double bw_for_threads(const struct rb_bench_header *h, int threads) {
    for (int i = 0; i < h->n_bw; i++)
        if (h->bw_threads[i] == threads) return h->bw_gbs[i];
    return 0.0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Every test of one (model, kv type, threads) combination. */
static int bench_context(struct bench_run *run, const rbee_model *m, const struct rb_model_facts *facts,
                         const struct rb_bench_row *proto, int ik, int threads, const char *who) {
    const struct bench_opts *o = run->o;
    char err[RBEE_ERR_MAX] = "";
    int n_ctx = 0;
    for (int i = 0; i < o->pp.n; i++) if (o->pp.v[i] > n_ctx) n_ctx = o->pp.v[i];
    for (int i = 0; i < o->tg.n; i++)
        for (int d = 0; d < o->depth.n; d++)
            if (o->tg.v[i] > 0 && o->tg.v[i] + o->depth.v[d] > n_ctx) n_ctx = o->tg.v[i] + o->depth.v[d];
    if (n_ctx == 0) return 0;
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    cp.type_k = o->kv_k[ik];
    cp.type_v = o->kv_v[ik];
    rbee_context *c = NULL;
    if (rbee_context_new(&c, m, &cp, err) != 0) {
        fprintf(stderr, "rbee: error: bench: %s: context (n_ctx %d, %d threads, kv %s/%s): %s\n", who, n_ctx,
                threads, cp.type_k, cp.type_v, err);
        return -1;
    }
    /* pp tests, then tg tests at each depth */
    int n_tests = o->pp.n + o->tg.n * o->depth.n;
    int32_t *ids = malloc((size_t)n_ctx * sizeof *ids);
    double *samples = malloc((size_t)n_tests * (size_t)o->reps * sizeof *samples);
    uint64_t rng = o->seed * 0x9E3779B97F4A7C15ull + 12345;
    uint32_t tk = RB_TYPE_F16, tv = RB_TYPE_F16;
    rb_kv_type_parse(cp.type_k, &tk);
    rb_kv_type_parse(cp.type_v, &tv);
    int rc = ids && samples ? 0 : -1;
    if (rc) snprintf(err, sizeof err, "out of memory");

    /* In rounds: each repetition runs every test once, so a load that comes
     * and goes on a shared machine falls on all tests alike and their ratios
     * hold. Round -1 is the warm-up: it pages the weights in, touches the
     * scratch buffers and wakes the threads; a batch of up to 32 tokens for
     * pp (every weight is read whatever the batch size, and a full batch
     * would cost a whole repetition on big models), a few steps for tg, as
     * llama-bench does. */
    for (int r = -1; rc == 0 && r < o->reps; r++) {
        for (int t = 0; rc == 0 && t < n_tests; t++) {
            int is_tg = t >= o->pp.n;
            int n = is_tg ? o->tg.v[(t - o->pp.n) / o->depth.n] : o->pp.v[t];
            int depth = is_tg ? o->depth.v[(t - o->pp.n) % o->depth.n] : 0;
            if (n <= 0) continue;
            double ts = 0;
            int warm_n = is_tg ? 4 : 32;
            int n_run = r < 0 && n > warm_n ? warm_n : n;
            rc = is_tg ? run_tg(c, n_run, depth, &rng, ids, &ts, err) : run_pp(c, n_run, &rng, ids, &ts, err);
            if (r >= 0) samples[(size_t)t * o->reps + r] = ts;
        }
        if (rc == 0 && r >= 0 && o->reps > 1)
            fprintf(stderr, "bench: %s kv=%s/%s t=%d: round %d of %d done\n", who, cp.type_k, cp.type_v, threads,
                    r + 1, o->reps);
    }

    for (int t = 0; rc == 0 && t < n_tests && run->n_rows < MAX_ROWS; t++) {
        int is_tg = t >= o->pp.n;
        int n = is_tg ? o->tg.v[(t - o->pp.n) / o->depth.n] : o->pp.v[t];
        int depth = is_tg ? o->depth.v[(t - o->pp.n) % o->depth.n] : 0;
        if (n <= 0) continue;
        struct rb_bench_row *row = &run->rows[run->n_rows++];
        *row = *proto;
        row->threads = threads;
        row->is_tg = is_tg;
        row->reps = o->reps;
        if (is_tg && depth != DEFAULT_DEPTH) snprintf(row->test, sizeof row->test, "tg%d@d%d", n, depth);
        else snprintf(row->test, sizeof row->test, "%s%d", is_tg ? "tg" : "pp", n);
        if (strcmp(cp.type_k, cp.type_v)) snprintf(row->kv_type, sizeof row->kv_type, "%s/%s", cp.type_k, cp.type_v);
        else snprintf(row->kv_type, sizeof row->kv_type, "%s", cp.type_k);
        mean_std(samples + (size_t)t * o->reps, o->reps, &row->avg_ts, &row->stddev_ts);
        if (is_tg) {
            row->n_ctx_mid = depth + n / 2;
            row->bytes_per_token = rb_bytes_per_token(facts, row->n_ctx_mid, tk, tv);
            row->bw_gbs = bw_for_threads(&run->h, threads);
            row->bw_frac = row->bw_gbs > 0 ? row->avg_ts * row->bytes_per_token / (row->bw_gbs * 1e9) : 0.0;
        }
        fprintf(stderr, "bench: %s %s kv=%s t=%d: %.2f ± %.2f t/s", row->model, row->test, row->kv_type,
                threads, row->avg_ts, row->stddev_ts);
        if (is_tg) fprintf(stderr, " (%.1f%% of %.1f GB/s)", 100 * row->bw_frac, row->bw_gbs);
        fprintf(stderr, "\n");
    }
    if (rc != 0) fprintf(stderr, "rbee: error: bench: %s: %s\n", who, err);
    free(ids);
    free(samples);
    rbee_context_free(c);
    return rc;
}

static int bench_model(struct bench_run *run, const char *path, const char *label) {
    char err[RBEE_ERR_MAX] = "";
    rbee_model *m = NULL;
    if (rbee_model_load(&m, path, err) != 0) {
        fprintf(stderr, "rbee: error: bench: %s: %s\n", label, err);
        return -1;
    }
    /* the bench's own reading of the file: type label and bytes per token */
    struct gguf_file f;
    struct rb_model_facts facts;
    if (rb_gguf_open(&f, path, err) != 0) {
        fprintf(stderr, "rbee: error: bench: %s: %s\n", label, err);
        rbee_model_free(m);
        return -1;
    }
    if (rb_model_facts(&f, &facts, err) != 0) {
        fprintf(stderr, "rbee: error: bench: %s: %s\n", label, err);
        rb_gguf_close(&f);
        rbee_model_free(m);
        return -1;
    }
    struct rb_bench_row proto;
    memset(&proto, 0, sizeof proto);
    snprintf(proto.model, sizeof proto.model, "%s", label);
    proto.size_bytes = (uint64_t)f.size;
    proto.n_params = facts.n_params;
    snprintf(proto.type, sizeof proto.type, "%s", facts.type_label);
    snprintf(proto.isa, sizeof proto.isa, "%s", rbee_isa());
    rb_gguf_close(&f);

    int rc = 0;
    for (int ik = 0; rc == 0 && ik < run->o->n_kv; ik++)
        for (int it = 0; rc == 0 && it < run->o->threads.n; it++)
            rc = bench_context(run, m, &facts, &proto, ik, run->o->threads.v[it], label);
    rbee_model_free(m);
    return rc;
}

/* "SHAPE:TYPE" -> a temp file, benched, deleted. */
static int bench_synthetic(struct bench_run *run, const char *spec) {
    char label[96], path[256];
    struct rb_synth_opts so = { .seed = run->o->seed, .progress = isatty(2) };
    if (parse_synth_spec(spec, &so) != 0) return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/rbee-synth-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "rbee: error: bench: --synthetic %s: cannot create a temp file in %s\n", spec,
                tmp && *tmp ? tmp : "/tmp");
        return -1;
    }
    close(fd);
    char err[RB_ERR_MAX] = "";
    double t0 = rb_now_s();
    if (rb_synth_write(&so, path, err) != 0) {
        fprintf(stderr, "rbee: error: bench: --synthetic %s: %s\n", spec, err);
        unlink(path);
        return -1;
    }
    fprintf(stderr, "bench: synthesized %s in %.1f s\n", spec, rb_now_s() - t0);
    snprintf(label, sizeof label, "%s (synthetic)", so.shape->name);
    int rc = bench_model(run, path, label);
    unlink(path);
    return rc;
}

/* ---- header facts: CPU name, bandwidth ---- */

static void cpu_name(char *out, size_t cap) {
    snprintf(out, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* x86: "model name"; ARM: "Model" or "Hardware" */
        if (!strncmp(line, "model name", 10) || !strncmp(line, "Model", 5) || !strncmp(line, "Hardware", 8)) {
            char *colon = strchr(line, ':');
            if (!colon) continue;
            colon++;
            while (*colon == ' ' || *colon == '\t') colon++;
            colon[strcspn(colon, "\n")] = 0;
            snprintf(out, cap, "%s", colon);
            break;
        }
    }
    fclose(f);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    size_t len = strlen(out);
    if (n > 0 && len + 16 < cap) snprintf(out + len, cap - len, " (%ld CPUs)", n);
}

/* "0.52 0.31 0.20": the 1, 5 and 15 minute load averages */
static void load_average(char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    double a, b, c;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

/* Bandwidth for every -t thread count, kept as the best seen so far. It is
 * measured before the tests and again after them: others sharing the
 * machine can depress one measurement, and a depressed denominator would
 * inflate bw%. The buffer is freed before any model is mapped. */
static int measure_bandwidth(struct bench_run *run, const char *when) {
    struct rb_membw bw;
    char err[RB_ERR_MAX];
    if (rb_membw_init(&bw, rb_membw_default_bytes(), err) != 0) {
        fprintf(stderr, "rbee: error: bench: bandwidth: %s (set RBEE_BW_MIB smaller)\n", err);
        return -1;
    }
    run->h.bw_buf_mib = (double)bw.n_bytes / (1 << 20);
    run->h.bw_runs = RB_MEMBW_RUNS;
    for (int i = 0; i < run->o->threads.n; i++) {
        int t = run->o->threads.v[i], slot = 0;
        while (slot < run->h.n_bw && run->h.bw_threads[slot] != t) slot++;
        if (slot == 16) break;
        if (slot == run->h.n_bw) { /* first time for this thread count */
            run->h.bw_threads[slot] = t;
            run->h.bw_gbs[slot] = 0;
            run->h.n_bw++;
        }
        double gbs = rb_membw_measure(&bw, t, RB_MEMBW_RUNS) / 1e9;
        fprintf(stderr, "bench: memory read bandwidth %s: %.1f GB/s with %d thread%s\n", when, gbs, t,
                t == 1 ? "" : "s");
        if (gbs > run->h.bw_gbs[slot]) run->h.bw_gbs[slot] = gbs;
    }
    rb_membw_free(&bw);
    return 0;
}

/* Recompute bw% of every tg row against the best bandwidth measured. */
static void update_roofline(struct bench_run *run) {
    for (int i = 0; i < run->n_rows; i++) {
        struct rb_bench_row *r = &run->rows[i];
        if (!r->is_tg) continue;
        r->bw_gbs = bw_for_threads(&run->h, r->threads);
        r->bw_frac = r->bw_gbs > 0 ? r->avg_ts * r->bytes_per_token / (r->bw_gbs * 1e9) : 0.0;
    }
}

int cli_bench(int argc, char **argv) {
    struct bench_opts o;
    int prc = parse_args(argc, argv, &o);
    if (prc != 0) return prc > 0 ? 0 : 1;
    struct bench_run run = { .o = &o };
    run.rows = calloc(MAX_ROWS, sizeof *run.rows);
    if (!run.rows) {
        fprintf(stderr, "rbee: error: bench: out of memory\n");
        return 1;
    }
    cpu_name(run.h.cpu, sizeof run.h.cpu);
    snprintf(run.h.isa, sizeof run.h.isa, "%s", rbee_isa());
    load_average(run.h.load, sizeof run.h.load);
    int rc = measure_bandwidth(&run, "before");
    for (int i = 0; rc == 0 && i < o.n_models; i++)
        rc = o.is_synth[i] ? bench_synthetic(&run, o.models[i]) : bench_model(&run, o.models[i], base_name(o.models[i]));
    if (rc == 0 && run.n_rows > 0 && measure_bandwidth(&run, "after") == 0) update_roofline(&run);
    /* print what was measured, even after a failure */
    if (run.n_rows == 0 && rc != 0) {
        free(run.rows);
        return 1;
    }
    if (!strcmp(o.format, "json")) rb_report_json(stdout, run.rows, run.n_rows);
    else if (!strcmp(o.format, "csv")) rb_report_csv(stdout, run.rows, run.n_rows);
    else rb_report_md(stdout, &run.h, run.rows, run.n_rows);
    free(run.rows);
    return rc == 0 ? 0 : 1;
}
