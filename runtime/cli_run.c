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
    size_t prompt_len; /* the prompt may hold a NUL (-p '\x00') */
    int n_predict, n_ctx, n_threads, top, no_bos, no_parse_special, help, no_escape;
    const char *type_k, *type_v;
    struct rbee_sampler_params sp;
    const char *text; /* tokenize: the positional TEXT */
    const char *system, *chat_template; /* chat */
    int verbose;
    char *prompt_buf; /* -p after escapes, or -f contents; owned */
};

/* A number in [lo, hi], or (lo, hi] when lo_open: a value outside means
 * nothing (a repeat penalty of 0 divides by zero, of -1 rewards repeats). */
static int parse_float(const char *flag, const char *s, float lo, int lo_open, float hi, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(lo_open ? v > lo : v >= lo) || !(v <= hi)) {
        char why[160];
        snprintf(why, sizeof why, "expected a number in %c%g, %g], got '%s'", lo_open ? '(' : '[', (double)lo,
                 (double)hi, s);
        return cli_fail(flag, why);
    }
    *out = v;
    return 0;
}

/* Which commands take a flag. */
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

enum opt_id {
    O_HELP, O_MODEL, O_PROMPT, O_FILE, O_PREDICT, O_CTX, O_THREADS, O_TOP, O_TEMP, O_TOP_K, O_TOP_P,
    O_MIN_P, O_REPEAT_PENALTY, O_REPEAT_LAST_N, O_SEED, O_KV_TYPE, O_KV_K, O_KV_V, O_NO_BOS, O_NO_PARSE_SPECIAL, O_ESCAPE, O_NO_ESCAPE,
    O_SYSTEM, O_CHAT_TEMPLATE, O_VERBOSE,
};

static const struct opt_def {
    const char *name, *alias; /* alias may be NULL */
    int commands;             /* F_* that accept it */
    int takes_value;
    enum opt_id id;
} opt_defs[] = {
    { "-h", "--help", F_GEN | F_LOGITS | F_TOKENIZE | F_CHAT, 0, O_HELP },
    { "-m", "--model", F_GEN | F_LOGITS | F_TOKENIZE | F_CHAT, 1, O_MODEL },
    { "-p", "--prompt", F_GEN | F_LOGITS, 1, O_PROMPT },
    { "-f", "--file", F_GEN, 1, O_FILE },
    { "-n", "--n-predict", F_GEN | F_LOGITS | F_CHAT, 1, O_PREDICT },
    { "-c", "--ctx-size", F_GEN | F_LOGITS | F_CHAT, 1, O_CTX },
    { "-t", "--threads", F_GEN | F_LOGITS | F_CHAT, 1, O_THREADS },
    { "--top", NULL, F_LOGITS, 1, O_TOP },
    { "--temp", NULL, F_GEN | F_CHAT, 1, O_TEMP },
    { "--top-k", NULL, F_GEN | F_CHAT, 1, O_TOP_K },
    { "--top-p", NULL, F_GEN | F_CHAT, 1, O_TOP_P },
    { "--min-p", NULL, F_GEN | F_CHAT, 1, O_MIN_P },
    { "--repeat-penalty", NULL, F_GEN | F_CHAT, 1, O_REPEAT_PENALTY },
    { "--repeat-last-n", NULL, F_GEN | F_CHAT, 1, O_REPEAT_LAST_N },
    { "--seed", NULL, F_GEN | F_CHAT, 1, O_SEED },
    { "--kv-type", NULL, F_GEN | F_LOGITS | F_CHAT, 1, O_KV_TYPE },
    { "-ctk", "--cache-type-k", F_GEN | F_LOGITS | F_CHAT, 1, O_KV_K },
    { "-ctv", "--cache-type-v", F_GEN | F_LOGITS | F_CHAT, 1, O_KV_V },
    { "--no-bos", NULL, F_TOKENIZE, 0, O_NO_BOS },
    { "--no-parse-special", NULL, F_GEN | F_LOGITS | F_TOKENIZE, 0, O_NO_PARSE_SPECIAL },
    { "-e", "--escape", F_GEN | F_LOGITS, 0, O_ESCAPE },
    { "--no-escape", NULL, F_GEN | F_LOGITS, 0, O_NO_ESCAPE },
    { "--system", NULL, F_CHAT, 1, O_SYSTEM },
    { "--chat-template", NULL, F_CHAT, 1, O_CHAT_TEMPLATE },
    { "-v", "--verbose", F_CHAT, 0, O_VERBOSE },
};

static const struct opt_def *find_opt(const char *a, int allowed) {
    for (size_t i = 0; i < sizeof opt_defs / sizeof opt_defs[0]; i++)
        if ((opt_defs[i].commands & allowed) &&
            (!strcmp(a, opt_defs[i].name) || (opt_defs[i].alias && !strcmp(a, opt_defs[i].alias))))
            return &opt_defs[i];
    return NULL;
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
        if (a[0] != '-' || !a[1]) {
            if ((allowed & F_TOKENIZE) && !o->text) { o->text = a; continue; }
            return cli_fail(a, "unexpected argument");
        }
        /* known or not is decided before anything else, wherever the flag stands */
        const struct opt_def *d = find_opt(a, allowed);
        if (!d) return cli_fail(a, "unknown option (see --help)");
        const char *v = NULL;
        if (d->takes_value) {
            if (i + 1 >= argc) return cli_fail(a, "missing value (see --help)");
            v = argv[++i];
        }
        int rc = 0;
        switch (d->id) {
        case O_HELP: o->help = 1; return 0;
        case O_MODEL: o->model = v; break;
        case O_PROMPT: o->prompt = v; o->prompt_file = NULL; break;
        case O_FILE: o->prompt_file = v; o->prompt = NULL; break;
        case O_PREDICT: rc = cli_parse_int(a, v, -1, INT_MAX, &o->n_predict); break;
        case O_CTX: rc = cli_parse_int(a, v, 0, 1 << 24, &o->n_ctx); break;
        case O_THREADS: rc = cli_parse_int(a, v, 1, 1024, &o->n_threads); break;
        case O_TOP: rc = cli_parse_int(a, v, 1, 1 << 20, &o->top); break;
        /* the ranges where each value means something (llama.cpp's own meanings) */
        case O_TEMP: rc = parse_float(a, v, 0.0f, 0, 100.0f, &o->sp.temp); break;    /* 0: greedy */
        case O_TOP_K: rc = cli_parse_int(a, v, 0, INT_MAX, &o->sp.top_k); break;          /* 0: off */
        case O_TOP_P: rc = parse_float(a, v, 0.0f, 1, 1.0f, &o->sp.top_p); break;     /* 1: off */
        case O_MIN_P: rc = parse_float(a, v, 0.0f, 0, 1.0f, &o->sp.min_p); break;     /* 0: off */
        case O_REPEAT_PENALTY: rc = parse_float(a, v, 0.0f, 1, 100.0f, &o->sp.repeat_penalty); break; /* 1: off */
        case O_REPEAT_LAST_N: rc = cli_parse_int(a, v, -1, 1 << 20, &o->sp.repeat_last_n); break; /* -1: the context */
        case O_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') return cli_fail(a, "expected a non-negative integer");
            o->sp.seed = s;
            break;
        }
        case O_KV_TYPE: o->type_k = o->type_v = v; break;
        case O_KV_K: o->type_k = v; break;
        case O_KV_V: o->type_v = v; break;
        case O_NO_BOS: o->no_bos = 1; break;
        case O_NO_PARSE_SPECIAL: o->no_parse_special = 1; break;
        case O_ESCAPE: o->no_escape = 0; break;
        case O_NO_ESCAPE: o->no_escape = 1; break;
        case O_SYSTEM: o->system = v; break;
        case O_CHAT_TEMPLATE: o->chat_template = v; break;
        case O_VERBOSE: o->verbose = 1; break;
        }
        if (rc) return rc;
    }
    if (!o->model) return cli_fail("-m", "a model file is required (see --help)");
    return 0;
}

/* The reference runtime's escapes (llama.cpp's string_process_escapes), in
 * place: \n \r \t \' \" \\ and \xHH become the character; any other
 * backslash stays as it is. Returns the new length. */
static size_t process_escapes(char *s, size_t len) {
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\' || i + 1 >= len) {
            s[out++] = s[i];
            continue;
        }
        char c = s[++i];
        switch (c) {
        case 'n': s[out++] = '\n'; break;
        case 'r': s[out++] = '\r'; break;
        case 't': s[out++] = '\t'; break;
        case '\'': case '"': case '\\': s[out++] = c; break;
        case 'x':
            if (i + 2 < len) { /* two more characters, read as strtol reads them */
                char hex[3] = { s[i + 1], s[i + 2], 0 }, *end;
                long v = strtol(hex, &end, 16);
                if (end == hex + 2) {
                    i += 2;
                    s[out++] = (char)v;
                    break;
                }
            }
            /* fall through */
        default:
            s[out++] = '\\';
            s[out++] = c;
        }
    }
    return out;
}

/* All of f into a NUL-terminated malloc'd buffer (*n bytes before the NUL). */
static char *read_stream(FILE *f, size_t *n) {
    size_t cap = 4096;
    char *buf = malloc(cap);
    *n = 0;
    for (size_t got; buf && (got = fread(buf + *n, 1, cap - *n - 1, f)) > 0;) {
        *n += got;
        if (cap - *n - 1 == 0) {
            char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    if (buf) buf[*n] = 0;
    return buf;
}

/* The prompt from -p, or -f FILE (- is stdin; one final newline dropped, as
 * the reference does), escapes processed unless --no-escape; owned by o. */
static int read_prompt(struct opts *o) {
    size_t n;
    if (o->prompt_file) {
        int from_stdin = !strcmp(o->prompt_file, "-");
        const char *what = from_stdin ? "stdin" : o->prompt_file;
        FILE *f = from_stdin ? stdin : fopen(o->prompt_file, "rb");
        if (!f) return cli_fail(what, strerror(errno));
        char *buf = read_stream(f, &n);
        int bad = ferror(f);
        if (!from_stdin) fclose(f);
        if (!buf) return cli_fail(what, "out of memory");
        if (bad) { free(buf); return cli_fail(what, "read error (is it a directory?)"); }
        if (n && buf[n - 1] == '\n') buf[--n] = 0;
        o->prompt_buf = buf;
    } else if (o->prompt) {
        n = strlen(o->prompt);
        o->prompt_buf = malloc(n + 1);
        if (!o->prompt_buf) return cli_fail("-p", "out of memory");
        memcpy(o->prompt_buf, o->prompt, n + 1);
    } else {
        return cli_fail("-p", "a prompt is required (-p TEXT or -f FILE)");
    }
    if (!o->no_escape) n = process_escapes(o->prompt_buf, n);
    o->prompt_buf[n] = 0;
    o->prompt = o->prompt_buf;
    o->prompt_len = n;
    if (n == 0) {
        const char *from = !o->prompt_file ? "-p" : strcmp(o->prompt_file, "-") ? o->prompt_file : "stdin";
        return cli_fail(from, "the prompt is empty");
    }
    return 0;
}

/* The model, and a context (logits) or a session (run) of o's settings. */
static int open_model(const struct opts *o, rbee_model **m, rbee_context **c, rbee_session **ss) {
    char err[RBEE_ERR_MAX];
    *m = NULL;
    if (c) *c = NULL;
    if (ss) *ss = NULL;
    if (rbee_model_load(m, o->model, err)) return cli_fail(o->model, err); /* "rbee: error: FILE: reason" */
    if (!c && !ss) return 0;
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = o->n_ctx;
    cp.n_threads = o->n_threads;
    cp.type_k = o->type_k;
    cp.type_v = o->type_v;
    if (c ? rbee_context_new(c, *m, &cp, err) : rbee_session_new(ss, *m, &cp, err)) {
        rbee_model_free(*m);
        *m = NULL;
        return cli_fail("context", err);
    }
    int n_ctx = rbee_n_ctx(c ? *c : rbee_session_context(*ss));
    struct rbee_model_info info;
    rbee_model_get_info(*m, &info);
    if (n_ctx > info.n_ctx_train) /* runs, as llama.cpp does, but not silently */
        fprintf(stderr, "rbee: warning: -c %d is more than the %d tokens the model was trained on; "
                "text past them may degrade\n", n_ctx, info.n_ctx_train);
    return 0;
}

/* ------------------------------------------------------------ run */

static void run_usage(FILE *out) {
    fprintf(out,
        "usage: rbee run -m MODEL (-p PROMPT | -f FILE) [options]\n\n"
        "Generate text from a prompt, streaming it to stdout; speed and peak memory go to stderr.\n\n"
        "  -m, --model FILE        GGUF model\n"
        "  -p, --prompt TEXT       prompt; \\n \\r \\t \\' \\\" \\\\ and \\xHH become characters\n"
        "  -f, --file FILE         read the prompt from FILE (- for stdin; a final newline is\n"
        "                          dropped; escapes as in -p)\n"
        "  --no-escape             take \\ in the prompt literally\n"
        "  --no-parse-special      take special-token text (<|im_start|>, <s>) in the prompt as\n"
        "                          plain text, not as those tokens\n"
        "  -n, --n-predict N       tokens to generate (default 128; -1: until the context is full)\n"
        "  -c, --ctx-size N        context size (default min(model context, 4096))\n"
        "  -t, --threads N         threads (default: the number of online CPUs)\n"
        "  --temp T                temperature, 0..100 (default 0.8; 0 = greedy)\n"
        "  --top-k K               keep the K most likely tokens (default 40; 0 = off)\n"
        "  --top-p P               nucleus sampling, (0, 1] (default 0.95; 1 = off)\n"
        "  --min-p M               drop tokens below M x the top probability, 0..1 (default 0.05)\n"
        "  --repeat-penalty R      penalize recent tokens, (0, 100] (default 1.0 = off)\n"
        "  --repeat-last-n N       tokens the penalty looks back over (default 64; -1: the context)\n"
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

/* Text to stdout, now (it streams); -1 once stdout cannot take it (a full
 * disk, /dev/full): generating on would be for nobody. */
static int emit(const char *piece, size_t k) {
    if ((k && fwrite(piece, 1, k, stdout) != k) || fflush(stdout) != 0) {
        cli_fail("stdout", strerror(errno));
        return -1;
    }
    return 0;
}

/* The ids of text[0..len) as a prompt (malloc'd, count in *n), or NULL with
 * the error printed. */
static int32_t *tokenize_prompt(const rbee_model *m, const char *text, size_t len, int add_bos,
                                int parse_special, int64_t *n) {
    char err[RBEE_ERR_MAX];
    *n = rbee_tokenize(m, text, len, add_bos, parse_special, NULL, 0, err); /* the count first */
    if (*n < 0) { cli_fail("tokenize", err); return NULL; }
    int32_t *ids = malloc((size_t)(*n ? *n : 1) * sizeof *ids);
    if (!ids) { cli_fail("tokenize", "out of memory"); return NULL; }
    rbee_tokenize(m, text, len, add_bos, parse_special, ids, *n, err);
    return ids;
}

/* The session's text goes straight out; a write error stops generation. */
static int on_text(void *user, const char *p, size_t n) {
    int *write_failed = user;
    if (emit(p, n)) {
        *write_failed = 1;
        return 1;
    }
    return 0;
}

static int generate(const struct opts *o, rbee_model *m, rbee_session *ss) {
    char err[RBEE_ERR_MAX], piece[256];
    int n_ctx = rbee_n_ctx(rbee_session_context(ss));
    int64_t n;
    int32_t *ids = tokenize_prompt(m, o->prompt, o->prompt_len, -1, !o->no_parse_special, &n);
    rbee_detok *d = rbee_detok_new(m);
    int rc = 1;
    if (!ids) goto done;
    if (!d) { cli_fail("run", "out of memory"); goto done; }
    if (n == 0) { cli_fail("-p", "the prompt has no tokens"); goto done; }
    if (n > n_ctx) {
        snprintf(err, sizeof err, "%lld tokens, longer than the context of %d (raise -c)", (long long)n, n_ctx);
        cli_fail("prompt", err);
        goto done;
    }
    /* the prompt as the detokenizer reads it back (SPM's leading space dropped) */
    for (int64_t i = 0; i < n; i++)
        if (emit(piece, rbee_detok_push(d, ids[i], piece, sizeof piece))) goto done;

    int write_failed = 0;
    struct rbee_gen_params gp = { .n_predict = o->n_predict, .sampling = o->sp, .cancel = cli_sigint_flag(),
                                  .on_text = on_text, .user = &write_failed };
    if (gp.sampling.repeat_last_n < 0) gp.sampling.repeat_last_n = n_ctx;
    struct rbee_gen_result res;
    if (rbee_session_generate(ss, ids, (int)n, &gp, &res, err)) { cli_fail("generate", err); goto done; }
    if (write_failed) goto done;
    if (res.finish == RBEE_FINISH_CONTEXT)
        fprintf(stderr, "\nrbee: context of %d tokens is full; generation stopped\n", n_ctx);
    int stopped = res.finish == RBEE_FINISH_CANCELLED; /* Ctrl-C: stop, but print what we have */
    if (stopped) fprintf(stderr, "\nrbee: interrupted\n");
    print_stats((int)n, res.prompt_ms / 1e3, res.n_generated, res.gen_ms / 1e3, o->sp.seed);
    rc = stopped ? 130 : 0; /* as a shell reports a SIGINT */
done:
    free(ids);
    rbee_detok_free(d);
    return rc;
}

int cli_run(int argc, char **argv) {
    struct opts o;
    if (parse(argc, argv, F_GEN | F_SAMPLE, &o)) return 1;
    if (o.help) { run_usage(stdout); return 0; }
    rbee_model *m;
    rbee_session *ss;
    int rc = 1;
    if (!read_prompt(&o) && !open_model(&o, &m, NULL, &ss)) {
        cli_sigint_catch();
        rc = generate(&o, m, ss);
        rbee_session_free(ss);
        rbee_model_free(m);
    }
    free(o.prompt_buf);
    return rc;
}

/* ------------------------------------------------------------ chat */

int cli_chat(int argc, char **argv) {
    struct opts o;
    if (parse(argc, argv, F_CHAT, &o)) return 1;
    if (o.help) { cli_chat_usage(); return 0; }
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
               "                   [--kv-type T] [-ctk T] [-ctv T] [--no-escape]\n"
               "                   [--no-parse-special]\n\n"
               "Print the prompt tokens, the K highest logits after each prompt position\n"
               "(default 8) and N greedy tokens (default 48), in the format of the golden\n"
               "reference files (../shared/reference/README.md). Escapes in PROMPT as in\n"
               "'rbee run' (\\n, \\xHH, ...) unless --no-escape.\n"
               "  --kv-type T     KV cache type for K and V: f32, f16 (default), q8_0, q4_0\n"
               "  -ctk T, -ctv T  KV cache type for K / V alone\n"
               "  --no-parse-special  special-token text in the prompt is plain text\n");
        return 0;
    }
    rbee_model *m;
    rbee_context *c;
    int rc = 1;
    if (o.n_predict < 0) return cli_fail("-n", "must be 0 or more");
    if (!read_prompt(&o) && !open_model(&o, &m, &c, NULL)) {
        char err[RBEE_ERR_MAX];
        rc = rb_logits_report(m, c, o.prompt, !o.no_parse_special, o.n_predict, o.top, stdout, err) ? cli_fail("logits", err) : 0;
        rbee_context_free(c);
        rbee_model_free(m);
    }
    free(o.prompt_buf);
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
    if (!o.text) return cli_fail("tokenize", "TEXT is required (see --help)");
    rbee_model *m;
    char err[RBEE_ERR_MAX];
    if (rbee_vocab_load(&m, o.model, err)) return cli_fail(o.model, err);
    int64_t n;
    int32_t *ids = tokenize_prompt(m, o.text, strlen(o.text), o.no_bos ? 0 : -1, !o.no_parse_special, &n);
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
