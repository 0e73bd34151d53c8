/* cli_run.c - `rbee run`, `rbee logits`, `rbee tokenize`: llama.cpp-like
 * flags, built on the public API (rbee.h) only. Errors: one line
 * "rbee: error: <what>: <why>" and exit status 1. */
#define _DEFAULT_SOURCE /* getrusage's ru_maxrss */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "logits_report.h"
#include "rbee.h"

/* ------------------------------------------------------------ options */

struct opts {
    const char *model, *prompt, *prompt_file;
    int n_predict, n_ctx, n_threads, top, no_bos, no_parse_special, help;
    const char *type_k, *type_v;
    struct rbee_sampler_params sp;
    const char *text; /* tokenize: the positional TEXT */
    const char *system, *chat_template; /* chat */
    int verbose;
    char *prompt_buf; /* -f contents, owned */
};

static int fail(const char *what, const char *why) {
    fprintf(stderr, "rbee: error: %s: %s\n", what, why);
    return 1;
}

static int parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        char why[160];
        snprintf(why, sizeof why, "expected an integer in %ld..%ld, got '%s'", lo, hi, s);
        return fail(flag, why);
    }
    *out = (int)v;
    return 0;
}

static int parse_float(const char *flag, const char *s, float lo, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        char why[160];
        snprintf(why, sizeof why, "expected a number in %g..%g, got '%s'", (double)lo, (double)hi, s);
        return fail(flag, why);
    }
    *out = v;
    return 0;
}

/* Which flags a command accepts. */
enum { F_GEN = 1, F_SAMPLE = 2, F_LOGITS = 4, F_TOKENIZE = 8, F_CHAT = 16 };

/* A fresh seed for each run, so runs differ unless --seed repeats one
 * (printed with the stats); 32 bits, short enough to type back. */
static uint64_t random_seed(void) {
    uint32_t x = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, &x, sizeof x) != (ssize_t)sizeof x) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint32_t)ts.tv_nsec * 2654435761u ^ (uint32_t)ts.tv_sec ^ (uint32_t)getpid() << 16;
    }
    if (fd >= 0) close(fd);
    return x;
}

static int parse(int argc, char **argv, int allowed, struct opts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = allowed & F_LOGITS ? 48 : allowed & F_CHAT ? -1 : 128;
    long n_cpu = sysconf(_SC_NPROCESSORS_ONLN); /* like llama.cpp: one thread per core */
    o->n_threads = n_cpu < 1 ? 1 : n_cpu > 64 ? 64 : (int)n_cpu;
    o->top = 8;
    o->sp = rbee_sampler_default_params();
    o->sp.seed = random_seed();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 1, rc = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { o->help = 1; return 0; }
        if (!strcmp(a, "--no-bos") && (allowed & F_TOKENIZE)) { o->no_bos = 1; continue; }
        if ((!strcmp(a, "-v") || !strcmp(a, "--verbose")) && (allowed & F_CHAT)) { o->verbose = 1; continue; }
        if (!strcmp(a, "--no-parse-special")) { o->no_parse_special = 1; continue; }
        if (a[0] != '-' || !a[1]) {
            if ((allowed & F_TOKENIZE) && !o->text) { o->text = a; continue; }
            return fail(a, "unexpected argument");
        }
        if (!v) return fail(a, "missing value (see --help)");
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if ((allowed & (F_GEN | F_LOGITS)) && (!strcmp(a, "-p") || !strcmp(a, "--prompt"))) o->prompt = v;
        else if ((allowed & F_GEN) && (!strcmp(a, "-f") || !strcmp(a, "--file"))) o->prompt_file = v;
        else if ((allowed & F_CHAT) && !strcmp(a, "--system")) o->system = v;
        else if ((allowed & F_CHAT) && !strcmp(a, "--chat-template")) o->chat_template = v;
        else if ((allowed & (F_GEN | F_LOGITS)) && (!strcmp(a, "-n") || !strcmp(a, "--n-predict")))
            rc = parse_int(a, v, -1, INT_MAX, &o->n_predict);
        else if ((allowed & (F_GEN | F_LOGITS)) && (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")))
            rc = parse_int(a, v, 0, 1 << 24, &o->n_ctx);
        else if ((allowed & (F_GEN | F_LOGITS)) && (!strcmp(a, "-t") || !strcmp(a, "--threads")))
            rc = parse_int(a, v, 1, 1024, &o->n_threads);
        else if ((allowed & F_LOGITS) && !strcmp(a, "--top")) rc = parse_int(a, v, 1, 1 << 20, &o->top);
        else if ((allowed & F_GEN) && !strcmp(a, "--temp")) rc = parse_float(a, v, 0.0f, 100.0f, &o->sp.temp);
        else if ((allowed & F_GEN) && !strcmp(a, "--top-k")) rc = parse_int(a, v, 0, INT_MAX, &o->sp.top_k);
        else if ((allowed & F_GEN) && !strcmp(a, "--top-p")) rc = parse_float(a, v, 0.0f, 1.0f, &o->sp.top_p);
        else if ((allowed & F_GEN) && !strcmp(a, "--min-p")) rc = parse_float(a, v, 0.0f, 1.0f, &o->sp.min_p);
        else if ((allowed & F_GEN) && !strcmp(a, "--repeat-penalty"))
            rc = parse_float(a, v, 0.0f, 100.0f, &o->sp.repeat_penalty);
        else if ((allowed & F_GEN) && !strcmp(a, "--repeat-last-n"))
            rc = parse_int(a, v, 0, 1 << 20, &o->sp.repeat_last_n);
        else if ((allowed & F_GEN) && !strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') return fail(a, "expected a non-negative integer");
            o->sp.seed = s;
        } else if ((allowed & (F_GEN | F_LOGITS)) && (!strcmp(a, "--kv-type"))) o->type_k = o->type_v = v;
        else if ((allowed & (F_GEN | F_LOGITS)) && (!strcmp(a, "-ctk") || !strcmp(a, "--cache-type-k"))) o->type_k = v;
        else if ((allowed & (F_GEN | F_LOGITS)) && (!strcmp(a, "-ctv") || !strcmp(a, "--cache-type-v"))) o->type_v = v;
        else { takes_value = 0; rc = fail(a, "unknown option (see --help)"); }
        if (rc) return rc;
        if (takes_value) i++;
    }
    if (!o->model) return fail("-m", "a model file is required (see --help)");
    return 0;
}

/* The prompt from -p or -f (file contents, owned by o). */
static int read_prompt(struct opts *o) {
    if (o->prompt_file) {
        FILE *f = fopen(o->prompt_file, "rb");
        if (!f) return fail(o->prompt_file, strerror(errno));
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap);
        for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0; ) {
            n += got;
            if (cap - n - 1 == 0) {
                char *b = realloc(buf, cap *= 2);
                if (!b) { free(buf); buf = NULL; }
                buf = b;
            }
        }
        int bad = ferror(f);
        fclose(f);
        if (!buf) return fail(o->prompt_file, "out of memory");
        if (bad) { free(buf); return fail(o->prompt_file, "read error (is it a directory?)"); }
        buf[n] = 0;
        o->prompt_buf = buf;
        o->prompt = buf;
    }
    if (!o->prompt) return fail("-p", "a prompt is required (-p TEXT or -f FILE)");
    if (!o->prompt[0]) return fail("-p", "the prompt is empty");
    return 0;
}

static int open_model(const struct opts *o, rbee_model **m, rbee_context **c) {
    char err[RBEE_ERR_MAX];
    *m = NULL;
    if (c) *c = NULL;
    if (rbee_model_load(m, o->model, err)) return fail(o->model, err); /* "rbee: error: FILE: reason" */
    if (!c) return 0;
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = o->n_ctx;
    cp.n_threads = o->n_threads;
    cp.type_k = o->type_k;
    cp.type_v = o->type_v;
    if (rbee_context_new(c, *m, &cp, err)) {
        rbee_model_free(*m);
        *m = NULL;
        return fail("context", err);
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ run */

static void run_usage(FILE *out) {
    fprintf(out,
        "usage: rbee run -m MODEL (-p PROMPT | -f FILE) [options]\n\n"
        "Generate text from a prompt, streaming it to stdout; speed and peak memory go to stderr.\n\n"
        "  -m, --model FILE        GGUF model\n"
        "  -p, --prompt TEXT       prompt\n"
        "  -f, --file FILE         read the prompt from FILE\n"
        "  --no-parse-special      take special-token text (<|im_start|>, <s>) in the prompt as\n"
        "                          plain text, not as those tokens\n"
        "  -n, --n-predict N       tokens to generate (default 128; -1: until the context is full)\n"
        "  -c, --ctx-size N        context size (default min(model context, 4096))\n"
        "  -t, --threads N         threads (default: the number of online CPUs)\n"
        "  --temp T                temperature (default 0.8; 0 = greedy)\n"
        "  --top-k K               keep the K most likely tokens (default 40; 0 = off)\n"
        "  --top-p P               nucleus sampling (default 0.95; 1 = off)\n"
        "  --min-p M               drop tokens below M x the top probability (default 0.05)\n"
        "  --repeat-penalty R      penalize recent tokens (default 1.0 = off)\n"
        "  --repeat-last-n N       tokens the penalty looks back over (default 64)\n"
        "  --seed S                random seed (default: a new one each run, printed with the stats)\n"
        "  --kv-type T             KV cache type for K and V: f32, f16 (default), q8_0, q4_0\n"
        "  -ctk T, -ctv T          KV cache type for K / V alone\n");
}

static void print_stats(int n_prompt, double t_prompt, int n_gen, double t_gen, uint64_t seed) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "\n\nprompt:     %5d tokens in %8.3f s = %9.2f tokens/s\n",
            n_prompt, t_prompt, t_prompt > 0 ? n_prompt / t_prompt : 0.0);
    fprintf(stderr, "generation: %5d tokens in %8.3f s = %9.2f tokens/s\n",
            n_gen, t_gen, t_gen > 0 && n_gen > 0 ? n_gen / t_gen : 0.0);
    fprintf(stderr, "peak RSS:   %.1f MiB\n", (double)ru.ru_maxrss / 1024.0); /* ru_maxrss is in KiB on Linux */
    fprintf(stderr, "seed:       %llu\n", (unsigned long long)seed);
}

/* The ids of text as a prompt (malloc'd, count in *n), or NULL with the
 * error printed. */
static int32_t *tokenize_prompt(const rbee_model *m, const char *text, int add_bos, int parse_special, int64_t *n) {
    char err[RBEE_ERR_MAX];
    size_t len = strlen(text);
    *n = rbee_tokenize(m, text, len, add_bos, parse_special, NULL, 0, err); /* the count first */
    if (*n < 0) { fail("tokenize", err); return NULL; }
    int32_t *ids = malloc((size_t)(*n ? *n : 1) * sizeof *ids);
    if (!ids) { fail("tokenize", "out of memory"); return NULL; }
    rbee_tokenize(m, text, len, add_bos, parse_special, ids, *n, err);
    return ids;
}

static int generate(const struct opts *o, rbee_model *m, rbee_context *c) {
    char err[RBEE_ERR_MAX], piece[256];
    int64_t n;
    int32_t *ids = tokenize_prompt(m, o->prompt, -1, !o->no_parse_special, &n);
    rbee_sampler *s = rbee_sampler_new(&o->sp, rbee_n_vocab(c));
    rbee_detok *d = rbee_detok_new(m);
    int rc = 1;
    if (!ids) goto done;
    if (!s || !d) { fail("run", "out of memory"); goto done; }
    if (n == 0) { fail("-p", "the prompt has no tokens"); goto done; }
    if (n > rbee_n_ctx(c)) {
        snprintf(err, sizeof err, "%lld tokens, longer than the context of %d (raise -c)",
                 (long long)n, rbee_n_ctx(c));
        fail("prompt", err);
        goto done;
    }
    /* echo the prompt through the detokenizer, so that the first generated
     * piece keeps its leading space */
    for (int64_t i = 0; i < n; i++) {
        rbee_sampler_accept(s, ids[i]);
        fwrite(piece, 1, rbee_detok_push(d, ids[i], piece, sizeof piece), stdout);
    }
    fflush(stdout);

    double t0 = now_s();
    if (rbee_eval(c, ids, (int)n, 0, err)) { fail("eval", err); goto done; }
    double t_prompt = now_s() - t0, t_gen = 0;
    int n_gen = 0, full = 0, stopped = 0;
    t0 = now_s();
    for (; o->n_predict < 0 || n_gen < o->n_predict; ) {
        if (*cli_sigint_flag()) { stopped = 1; break; } /* Ctrl-C: stop, but print what we have */
        int32_t id = rbee_sample(s, rbee_get_logits(c, -1));
        if (rbee_token_is_eog(m, id)) break; /* EOS, or a token that ends the turn: <|eot_id|>, <|im_end|> */
        rbee_sampler_accept(s, id);
        n_gen++;
        size_t k = rbee_detok_push(d, id, piece, sizeof piece);
        fwrite(piece, 1, k, stdout);
        fflush(stdout);
        if (o->n_predict >= 0 && n_gen == o->n_predict) break;
        if (rbee_pos(c) >= rbee_n_ctx(c)) { full = 1; break; }
        if (rbee_eval(c, &id, 1, 0, err)) { fail("eval", err); goto done; }
    }
    t_gen = now_s() - t0;
    size_t k = rbee_detok_flush(d, piece, sizeof piece);
    fwrite(piece, 1, k, stdout);
    fflush(stdout);
    if (full) fprintf(stderr, "\nrbee: context of %d tokens is full; generation stopped\n", rbee_n_ctx(c));
    if (stopped) fprintf(stderr, "\nrbee: interrupted\n");
    print_stats((int)n, t_prompt, n_gen, t_gen, o->sp.seed);
    rc = stopped ? 130 : 0; /* as a shell reports a SIGINT */
done:
    free(ids);
    rbee_sampler_free(s);
    rbee_detok_free(d);
    return rc;
}

int cli_run(int argc, char **argv) {
    struct opts o;
    if (parse(argc, argv, F_GEN | F_SAMPLE, &o)) return 1;
    if (o.help) { run_usage(stdout); return 0; }
    rbee_model *m;
    rbee_context *c;
    int rc = 1;
    if (!read_prompt(&o) && !open_model(&o, &m, &c)) {
        cli_sigint_catch();
        rc = generate(&o, m, c);
        rbee_context_free(c);
        rbee_model_free(m);
    }
    free(o.prompt_buf);
    return rc;
}

/* ------------------------------------------------------------ chat */

int cli_chat(int argc, char **argv) {
    struct opts o;
    if (parse(argc, argv, F_GEN | F_SAMPLE | F_CHAT, &o)) return 1;
    if (o.help) { cli_chat_usage(); return 0; }
    if (o.prompt || o.prompt_file) return fail(o.prompt ? "-p" : "-f", "not an option of chat (type the turns)");
    if (o.no_parse_special) return fail("--no-parse-special", "not an option of chat (its templates are special tokens)");
    struct cli_chat_args a = {
        .model = o.model, .system = o.system, .chat_template = o.chat_template, .verbose = o.verbose,
        .n_predict = o.n_predict, .n_ctx = o.n_ctx, .n_threads = o.n_threads,
        .type_k = o.type_k, .type_v = o.type_v, .sp = o.sp,
    };
    return cli_chat_main(&a);
}

/* ------------------------------------------------------------ logits */

int cli_logits(int argc, char **argv) {
    struct opts o;
    if (parse(argc, argv, F_LOGITS, &o)) return 1;
    if (o.help) {
        printf("usage: rbee logits -m MODEL -p PROMPT [-n N] [--top K] [-c CTX] [-t THREADS]\n"
               "                   [--kv-type T] [-ctk T] [-ctv T] [--no-parse-special]\n\n"
               "Print the prompt tokens, the K highest logits after each prompt position\n"
               "(default 8) and N greedy tokens (default 48), in the format of the golden\n"
               "reference files (../shared/reference/README.md).\n"
               "  --kv-type T     KV cache type for K and V: f32, f16 (default), q8_0, q4_0\n"
               "  -ctk T, -ctv T  KV cache type for K / V alone\n"
               "  --no-parse-special  special-token text in the prompt is plain text\n");
        return 0;
    }
    if (read_prompt(&o)) return 1;
    if (o.n_predict < 0) return fail("-n", "must be 0 or more");
    rbee_model *m;
    rbee_context *c;
    if (open_model(&o, &m, &c)) return 1;
    char err[RBEE_ERR_MAX];
    int rc = rb_logits_report(m, c, o.prompt, !o.no_parse_special, o.n_predict, o.top, stdout, err)
                 ? fail("logits", err) : 0;
    rbee_context_free(c);
    rbee_model_free(m);
    return rc;
}

/* ------------------------------------------------------------ tokenize */

int cli_tokenize(int argc, char **argv) {
    struct opts o;
    if (parse(argc, argv, F_TOKENIZE, &o)) return 1;
    if (o.help) {
        printf("usage: rbee tokenize -m MODEL [--no-bos] [--no-parse-special] TEXT\n\n"
               "Print the token ids of TEXT, space-separated, on one line, as a prompt is\n"
               "tokenized (BOS and EOS where the vocabulary adds them). MODEL may be a\n"
               "vocabulary-only GGUF file (e.g. llama.cpp's ggml-vocab-*.gguf).\n"
               "--no-bos             leave out the beginning- and end-of-sequence tokens\n"
               "--no-parse-special   special-token text (<|im_start|>, <s>) is plain text\n");
        return 0;
    }
    if (!o.text) return fail("tokenize", "TEXT is required (see --help)");
    rbee_model *m;
    char err[RBEE_ERR_MAX];
    if (rbee_vocab_load(&m, o.model, err)) return fail(o.model, err);
    int64_t n;
    int32_t *ids = tokenize_prompt(m, o.text, o.no_bos ? 0 : -1, !o.no_parse_special, &n);
    int rc = 1;
    if (ids) {
        for (int64_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        rc = 0;
    }
    free(ids);
    rbee_model_free(m);
    return rc;
}
