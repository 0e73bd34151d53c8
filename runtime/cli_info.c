/* cli_info.c - `rbee info MODEL.gguf [--json] [-c N] [-t N] [--kv-type T]
 * [-ctk T] [-ctv T]`: describe a GGUF file (metadata, hyperparameters,
 * tokenizer, tensors) and account for every byte of it: header + padding +
 * tensors == file size. It also prints what the KV cache and a whole run
 * with those settings would take in memory (file + KV cache + scratch),
 * so a user knows before a run whether it fits. A file `rbee run` would
 * refuse is listed as far as it reads, then the one error line that run
 * would print, and exit status 1: no memory plan for what cannot run.
 * Strings from the file are printed with control characters escaped.
 * A vocabulary-only file (no tensors, a tokenizer.ggml.model) is described
 * as such, without a plan, and is not an error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rbee.h"
#include "../gguf/gguf.h"
#include "../attention/attention.h"
#include "../simd/kernels.h"

/* ---- options ---- */

struct info_opts {
    const char *path;
    int json;
    long n_ctx;         /* 0: as `rbee run`: the model's context_length, at most 4096 */
    int n_threads;      /* threads of the run the memory is reported for */
    uint32_t type_k, type_v;
    const char *name_k, *name_v;
};

static void info_usage(FILE *out) {
    fprintf(out, "usage: rbee info MODEL.gguf [--json] [-c N] [-t N] [--kv-type T] [-ctk T] [-ctv T]\n\n"
                 "Prints architecture, file type, hyperparameters, tokenizer, parameter count,\n"
                 "bits per weight, every tensor, and checks that the sizes add up to the file.\n"
                 "Then the KV cache bytes and the memory a run with these settings needs\n"
                 "(file + KV cache + scratch buffers), so you know before a run whether it fits.\n"
                 "  --json        one JSON object instead of text\n"
                 "  -c N          context size (default as rbee run: the model's, at most 4096)\n"
                 "  -t N          threads of the run (default: the number of online CPUs)\n"
                 "  --kv-type T   KV cache type for K and V: f32, f16 (default), q8_0, q4_0\n"
                 "  -ctk T, -ctv T  KV cache type for K / V alone\n");
}

/* argv[i + 1] as a long in lo..hi, or -1 with the error printed. */
static int parse_long_arg(int argc, char **argv, int i, long lo, long hi, const char *what, long *out) {
    char *end;
    errno = 0;
    long n = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
    if (i + 1 >= argc || errno || *end || end == argv[i + 1] || n < lo || n > hi) {
        fprintf(stderr, "rbee: error: %s: expected %s\n", argv[i], what);
        return -1;
    }
    *out = n;
    return 0;
}

/* argv[i + 1] as a KV cache type, or -1 with the error printed. */
static int parse_kv_arg(int argc, char **argv, int i, uint32_t *type, const char **name) {
    if (i + 1 >= argc || rb_kv_type_parse(argv[i + 1], type) != 0) {
        fprintf(stderr, "rbee: error: %s: expected f32, f16, q8_0 or q4_0\n", argv[i]);
        return -1;
    }
    *name = argv[i + 1];
    return 0;
}

/* 0 ok, 1 error printed, 2 help printed */
static int parse_opts(int argc, char **argv, struct info_opts *o) {
    memset(o, 0, sizeof *o);
    o->type_k = o->type_v = RB_TYPE_F16;
    o->name_k = o->name_v = "f16";
    long n_cpu = sysconf(_SC_NPROCESSORS_ONLN); /* as rbee run */
    o->n_threads = n_cpu < 1 ? 1 : n_cpu > 64 ? 64 : (int)n_cpu;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            info_usage(stdout);
            return 2;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (parse_long_arg(argc, argv, i++, 1, 1 << 24, "a positive context size", &n)) return 1;
            o->n_ctx = n;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (parse_long_arg(argc, argv, i++, 1, 1024, "a thread count in 1..1024", &n)) return 1;
            o->n_threads = (int)n;
        } else if (!strcmp(a, "--kv-type")) {
            if (parse_kv_arg(argc, argv, i++, &o->type_k, &o->name_k)) return 1;
            o->type_v = o->type_k;
            o->name_v = o->name_k;
        } else if (!strcmp(a, "-ctk") || !strcmp(a, "--cache-type-k")) {
            if (parse_kv_arg(argc, argv, i++, &o->type_k, &o->name_k)) return 1;
        } else if (!strcmp(a, "-ctv") || !strcmp(a, "--cache-type-v")) {
            if (parse_kv_arg(argc, argv, i++, &o->type_v, &o->name_v)) return 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "rbee: error: info: unknown option '%s' (see 'rbee info --help')\n", a);
            return 1;
        } else if (o->path) {
            fprintf(stderr, "rbee: error: info: more than one file given ('%s', '%s')\n", o->path, a);
            return 1;
        } else {
            o->path = a;
        }
    }
    if (!o->path) {
        fprintf(stderr, "rbee: error: info: missing MODEL.gguf (see 'rbee info --help')\n");
        return 1;
    }
    return 0;
}

/* ---- what we print, gathered once ---- */

/* general.file_type ids (llama_ftype); retired ids have no name */
static const char *file_type_name(uint32_t ft) {
    static const char *const names[] = {
        "ALL_F32", "MOSTLY_F16", "MOSTLY_Q4_0", "MOSTLY_Q4_1", "MOSTLY_Q4_1_SOME_F16", NULL, NULL,
        "MOSTLY_Q8_0", "MOSTLY_Q5_0", "MOSTLY_Q5_1", "MOSTLY_Q2_K", "MOSTLY_Q3_K_S", "MOSTLY_Q3_K_M",
        "MOSTLY_Q3_K_L", "MOSTLY_Q4_K_S", "MOSTLY_Q4_K_M", "MOSTLY_Q5_K_S", "MOSTLY_Q5_K_M", "MOSTLY_Q6_K",
        "MOSTLY_IQ2_XXS", "MOSTLY_IQ2_XS", "MOSTLY_Q2_K_S", "MOSTLY_IQ3_XS", "MOSTLY_IQ3_XXS", "MOSTLY_IQ1_S",
        "MOSTLY_IQ4_NL", "MOSTLY_IQ3_S", "MOSTLY_IQ3_M", "MOSTLY_IQ2_S", "MOSTLY_IQ2_M", "MOSTLY_IQ4_XS",
        "MOSTLY_IQ1_M", "MOSTLY_BF16", NULL, NULL, NULL, "MOSTLY_TQ1_0", "MOSTLY_TQ2_0", "MOSTLY_MXFP4_MOE",
    };
    if (ft < sizeof names / sizeof names[0] && names[ft])
        return names[ft];
    return "unknown";
}

/* Hyperparameter keys shown when present, after "<arch>." */
static const char *const hparam_keys[] = {
    "context_length", "embedding_length", "block_count", "feed_forward_length",
    "attention.head_count", "attention.head_count_kv", "attention.key_length", "rope.dimension_count",
    "rope.freq_base", "attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon",
    "attention.value_length", "attention.sliding_window", "rope.scaling.factor",
};
#define N_HPARAMS (sizeof hparam_keys / sizeof hparam_keys[0])

struct info {
    const struct gguf_file *f;
    char arch[64];
    int has_ft;
    uint32_t file_type;
    const struct gguf_kv *name, *tok_model, *tokens;
    const struct gguf_kv *hparams[N_HPARAMS];
    uint64_t n_params, tensor_bytes;
    uint32_t main_type; /* the type holding the most tensor bytes */
    struct rb_gguf_layout layout;
    int has_kv;               /* the runtime loads the model: the memory plan is known */
    long kv_ctx;
    size_t kv_bytes, scratch_bytes;
    char error[RB_ERR_MAX + 512]; /* why it cannot run ("FILE: why" or "context: why"), or "" */
    rbee_model *vocab;           /* the tokenizer as the runtime loads it, or NULL ... */
    char no_vocab[RB_ERR_MAX];   /* ... and why */
};

static const struct gguf_kv *kv_of(const struct gguf_file *f, const char *key, enum gguf_type type) {
    int64_t i = rb_gguf_find_key(f, key);
    if (i < 0 || f->kv[i].type != type)
        return NULL;
    return &f->kv[i];
}

static struct gguf_str kv_str(const struct gguf_kv *kv) {
    struct gguf_str s;
    memcpy(&s.len, kv->value, 8);
    s.data = (const char *)kv->value + 8;
    return s;
}

/* Vocab-only files (tokenizer tests) hold no tensors and are not meant
 * to run. */
static int vocab_only(const struct info *in) { return in->f->n_tensors == 0 && in->tok_model; }

/* Load the model as `rbee run` does; the KV cache and scratch bytes of a
 * run with opts' settings come from the runtime itself
 * (rbee_context_memory: the sizes rbee_context_new allocates). A file or
 * setting the runtime refuses gets its error instead. */
static void gather_run_memory(struct info *in, const struct info_opts *o) {
    char err[RBEE_ERR_MAX];
    rbee_model *m;
    if (vocab_only(in)) return;
    if (rbee_model_load(&m, o->path, err) != 0) {
        snprintf(in->error, sizeof in->error, "%.500s: %s", o->path, err);
        return;
    }
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = (int)o->n_ctx;
    cp.n_threads = o->n_threads;
    cp.type_k = o->name_k;
    cp.type_v = o->name_v;
    struct rbee_context_memory mem;
    if (rbee_context_memory(m, &cp, &mem, err) != 0) {
        snprintf(in->error, sizeof in->error, "context: %s", err);
    } else {
        in->kv_ctx = mem.n_ctx;
        in->kv_bytes = mem.kv_bytes;
        in->scratch_bytes = mem.scratch_bytes;
        in->has_kv = 1;
    }
    rbee_model_free(m);
}

static void gather(struct info *in, const struct gguf_file *f, const struct info_opts *o) {
    char err[RB_ERR_MAX], key[128];
    memset(in, 0, sizeof *in);
    in->f = f;
    if (rb_gguf_get_str(f, "general.architecture", in->arch, sizeof in->arch, err) != 0)
        strcpy(in->arch, "?");
    in->has_ft = rb_gguf_get_u32(f, "general.file_type", &in->file_type, err) == 0;
    in->name = kv_of(f, "general.name", GGUF_TYPE_STRING);
    in->tok_model = kv_of(f, "tokenizer.ggml.model", GGUF_TYPE_STRING);
    in->tokens = kv_of(f, "tokenizer.ggml.tokens", GGUF_TYPE_ARRAY);
    for (size_t i = 0; i < N_HPARAMS; i++) {
        snprintf(key, sizeof key, "%s.%s", in->arch, hparam_keys[i]);
        int64_t k = rb_gguf_find_key(f, key);
        in->hparams[i] = k >= 0 && f->kv[k].type != GGUF_TYPE_ARRAY && f->kv[k].type != GGUF_TYPE_STRING
                             ? &f->kv[k] : NULL;
    }
    uint64_t bytes_by_type[RB_TYPE_COUNT] = { 0 };
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        bytes_by_type[t->type] += t->n_bytes; /* type < RB_TYPE_COUNT: checked at open */
        if (bytes_by_type[t->type] > bytes_by_type[in->main_type])
            in->main_type = t->type;
        /* element counts fit int64 (checked at open); their sum may not: saturate */
        uint64_t n = (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        in->n_params = n > UINT64_MAX - in->n_params ? UINT64_MAX : in->n_params + n;
        in->tensor_bytes += t->n_bytes; /* disjoint ranges of the file: cannot overflow */
    }
    rb_gguf_layout(f, &in->layout);
    if (in->tok_model && rbee_vocab_load(&in->vocab, o->path, in->no_vocab) != 0)
        in->vocab = NULL;
    gather_run_memory(in, o);
}

/* ---- value formatting ---- */

/* A scalar metadata value as text (numbers JSON-compatible; NaN/Inf as null in JSON). */
static void format_scalar(const struct gguf_kv *kv, char *buf, size_t cap, int json) {
    const uint8_t *p = kv->value;
    switch (kv->type) {
    case GGUF_TYPE_UINT8:  { uint8_t v;  memcpy(&v, p, 1); snprintf(buf, cap, "%u", v); break; }
    case GGUF_TYPE_INT8:   { int8_t v;   memcpy(&v, p, 1); snprintf(buf, cap, "%d", v); break; }
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); snprintf(buf, cap, "%u", v); break; }
    case GGUF_TYPE_INT16:  { int16_t v;  memcpy(&v, p, 2); snprintf(buf, cap, "%d", v); break; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); snprintf(buf, cap, "%u", v); break; }
    case GGUF_TYPE_INT32:  { int32_t v;  memcpy(&v, p, 4); snprintf(buf, cap, "%d", v); break; }
    case GGUF_TYPE_UINT64: { uint64_t v; memcpy(&v, p, 8); snprintf(buf, cap, "%llu", (unsigned long long)v); break; }
    case GGUF_TYPE_INT64:  { int64_t v;  memcpy(&v, p, 8); snprintf(buf, cap, "%lld", (long long)v); break; }
    case GGUF_TYPE_BOOL:   snprintf(buf, cap, "%s", p[0] ? "true" : "false"); break;
    case GGUF_TYPE_FLOAT32: case GGUF_TYPE_FLOAT64: {
        double v;
        if (kv->type == GGUF_TYPE_FLOAT32) {
            float x;
            memcpy(&x, p, 4);
            v = x;
        } else {
            memcpy(&v, p, 8);
        }
        if (json && (v != v || v > 1e308 || v < -1e308)) {
            snprintf(buf, cap, "null");
            break;
        }
        if (v == (double)(long long)v && v < 1e15 && v > -1e15) { /* 10000, not 1e+04 */
            snprintf(buf, cap, "%lld", (long long)v);
            break;
        }
        /* shortest text that reads back as the stored value: 1e-05, not 9.99999975e-06 */
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, cap, "%.*g", prec, v);
            double back = strtod(buf, NULL);
            if (kv->type == GGUF_TYPE_FLOAT32 ? (float)back == (float)v : back == v)
                break;
        }
        break;
    }
    default: snprintf(buf, cap, "?"); break;
    }
}

static int print_plain(const char *s, uint64_t len);

/* The end-of-generation tokens: "id text, ..." in text, [id, ...] in JSON. */
static void print_eog(const struct info *in, int json) {
    struct rbee_model_info mi;
    rbee_model_get_info(in->vocab, &mi);
    int n = 0;
    printf(json ? "[" : "");
    for (int32_t id = 0; id < mi.n_vocab; id++) {
        if (!rbee_token_is_eog(in->vocab, id))
            continue;
        printf("%s%d", n++ ? ", " : "", (int)id);
        if (!json) {
            size_t len;
            const char *text = rbee_token_text(in->vocab, id, &len);
            putchar(' ');
            print_plain(text, len);
        }
    }
    printf(json ? "]" : n ? "\n" : "-\n");
}

/* A control character (C0, DEL, C1) would let a file drive the terminal:
 * ESC [ ... and its one-character form U+009B start escape sequences. */
static int is_control(uint32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp < 0xa0); }

/* File bytes for a terminal: valid UTF-8 as it is; control characters as
 * \n \t \r \xHH or \u00HH, bytes that are not UTF-8 as \xHH, and the
 * backslash as \\ so nothing is ambiguous. Returns the columns used. */
static int print_plain(const char *s, uint64_t len) {
    int cols = 0;
    uint32_t cp;
    for (uint64_t i = 0; i < len;) {
        size_t k = rb_gguf_utf8_char(s + i, (size_t)(len - i), &cp);
        if (k == 0) cols += printf("\\x%02x", (unsigned char)s[i++]);
        else if (cp == '\n') cols += printf("\\n");
        else if (cp == '\t') cols += printf("\\t");
        else if (cp == '\r') cols += printf("\\r");
        else if (cp == '\\') cols += printf("\\\\");
        else if (is_control(cp)) cols += printf(cp < 0x80 ? "\\x%02x" : "\\u%04x", (unsigned)cp);
        else {
            fwrite(s + i, 1, k, stdout);
            cols++;
        }
        i += k; /* 0 after a stray byte, already stepped over */
    }
    return cols;
}

/* A JSON string literal: quotes, backslashes and control characters
 * escaped, bytes that are not UTF-8 as U+FFFD (JSON text is UTF-8). */
static void print_json_str(const char *s, uint64_t len) {
    uint32_t cp;
    putchar('"');
    for (uint64_t i = 0; i < len;) {
        size_t k = rb_gguf_utf8_char(s + i, (size_t)(len - i), &cp);
        if (k == 0) {
            printf("\\ufffd");
            i++;
            continue;
        }
        if (cp == '"' || cp == '\\')
            printf("\\%c", (char)cp);
        else if (cp == '\n')
            printf("\\n");
        else if (cp == '\t')
            printf("\\t");
        else if (is_control(cp))
            printf("\\u%04x", (unsigned)cp);
        else
            fwrite(s + i, 1, k, stdout);
        i += k;
    }
    putchar('"');
}

static void print_json_z(const char *s) { print_json_str(s, strlen(s)); }

static void format_shape(const struct gguf_tensor *t, char *buf, size_t cap) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (uint32_t d = 0; d < t->n_dims && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

static double bits_per_weight(const struct info *in) {
    return in->n_params ? (double)in->tensor_bytes * 8.0 / (double)in->n_params : 0.0;
}

/* ---- text output ---- */

static void print_text(const struct info *in, const struct info_opts *o) {
    const struct gguf_file *f = in->f;
    char buf[64];
    printf("file:          %s (%zu bytes, GGUF v%u, %llu metadata keys, %llu tensors)\n", o->path, f->size,
           f->version, (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors);
    printf("architecture:  ");
    print_plain(in->arch, strlen(in->arch));
    printf("\nname:          ");
    if (in->name) {
        struct gguf_str s = kv_str(in->name);
        print_plain(s.data, s.len);
    } else {
        printf("-");
    }
    if (in->has_ft)
        printf("\nfile type:     %s (%u)\n", file_type_name(in->file_type), in->file_type);
    else if (f->n_tensors)
        printf("\nfile type:     not stored (most tensor bytes are %s)\n", rb_type_name(in->main_type));
    else
        printf("\nfile type:     -\n");
    printf("kernels:       %s\n", rb_kernels()->isa);
    printf("hyperparameters:\n");
    for (size_t i = 0; i < N_HPARAMS; i++) {
        if (!in->hparams[i])
            continue;
        format_scalar(in->hparams[i], buf, sizeof buf, 0);
        printf("  %-36s %s\n", hparam_keys[i], buf);
    }
    printf("tokenizer:     ");
    if (in->tok_model) {
        struct gguf_str s = kv_str(in->tok_model);
        print_plain(s.data, s.len);
    } else {
        printf("-");
    }
    if (in->tokens)
        printf(", %llu tokens", (unsigned long long)in->tokens->arr_len);
    const char *pre = in->vocab ? rbee_model_meta_str(in->vocab, "tokenizer.ggml.pre") : NULL;
    if (pre)
        printf(", pre-tokenizer %s", pre);
    if (in->tok_model) {
        printf("\nend of turn:   ");
        if (in->vocab)
            print_eog(in, 0);
        else
            printf("? (%s)\n", in->no_vocab);
    } else {
        printf("\n");
    }
    printf("parameters:    %llu\n", (unsigned long long)in->n_params);
    printf("bits/weight:   %.3f\n", bits_per_weight(in));
    printf("tensors:\n  %-32s %-8s %-22s %12s\n", "name", "type", "shape", "bytes");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        char shape[128];
        format_shape(t, shape, sizeof shape);
        printf("  ");
        int cols = print_plain(t->name.data, t->name.len);
        printf("%*s %-8s %-22s %12llu\n", cols < 32 ? 32 - cols : 0, "",
               rb_type_name(t->type), shape, (unsigned long long)t->n_bytes);
    }
    const struct rb_gguf_layout *l = &in->layout;
    printf("totals:        header %llu + padding %llu + tensors %llu",
           (unsigned long long)l->header_bytes, (unsigned long long)l->padding_bytes,
           (unsigned long long)l->tensor_bytes);
    if (l->unused_bytes)
        printf(" + unused %llu", (unsigned long long)l->unused_bytes);
    uint64_t sum = l->header_bytes + l->padding_bytes + l->tensor_bytes + l->unused_bytes;
    printf(" = %llu bytes; file size %llu: %s\n", (unsigned long long)sum, (unsigned long long)l->file_bytes,
           sum == l->file_bytes && l->unused_bytes == 0 ? "ok" : "MISMATCH (bytes not explained by alignment)");
    if (vocab_only(in))
        printf("vocabulary only: no tensors, nothing to run (no memory plan)\n");
    if (in->has_kv) {
        char types[32];
        if (o->type_k == o->type_v) snprintf(types, sizeof types, "%s", rb_type_name(o->type_k));
        else snprintf(types, sizeof types, "K %s, V %s", rb_type_name(o->type_k), rb_type_name(o->type_v));
        printf("kv cache:      %llu bytes (%.1f MiB; %s, %ld tokens)\n", (unsigned long long)in->kv_bytes,
               (double)in->kv_bytes / (1 << 20), types, in->kv_ctx);
        uint64_t total = (uint64_t)f->size + in->kv_bytes + in->scratch_bytes;
        printf("memory:        %llu bytes (%.1f MiB) = file + kv cache + scratch %llu (%d threads)\n",
               (unsigned long long)total, (double)total / (1 << 20), (unsigned long long)in->scratch_bytes,
               o->n_threads);
    }
}

/* ---- JSON output ---- */

static void print_json(const struct info *in, const struct info_opts *o) {
    const struct gguf_file *f = in->f;
    char buf[64];
    printf("{\"file\": ");
    print_json_z(o->path);
    printf(", \"size\": %zu, \"version\": %u, \"n_kv\": %llu, \"n_tensors\": %llu, \"kernels\": ", f->size,
           f->version, (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors);
    print_json_z(rb_kernels()->isa);
    printf(", \"architecture\": ");
    print_json_z(in->arch);
    printf(", \"name\": ");
    if (in->name) {
        struct gguf_str s = kv_str(in->name);
        print_json_str(s.data, s.len);
    } else {
        printf("null");
    }
    if (in->has_ft) {
        printf(", \"file_type\": ");
        print_json_z(file_type_name(in->file_type));
        printf(", \"file_type_id\": %u", in->file_type);
    } else {
        printf(", \"file_type\": null");
    }
    printf(", \"main_tensor_type\": ");
    if (f->n_tensors)
        print_json_z(rb_type_name(in->main_type));
    else
        printf("null");
    printf(", \"hyperparameters\": {");
    int first = 1;
    for (size_t i = 0; i < N_HPARAMS; i++) {
        if (!in->hparams[i])
            continue;
        format_scalar(in->hparams[i], buf, sizeof buf, 1);
        printf("%s\"%s\": %s", first ? "" : ", ", hparam_keys[i], buf);
        first = 0;
    }
    printf("}, \"tokenizer\": {\"model\": ");
    if (in->tok_model) {
        struct gguf_str s = kv_str(in->tok_model);
        print_json_str(s.data, s.len);
    } else {
        printf("null");
    }
    printf(", \"vocab_size\": ");
    if (in->tokens)
        printf("%llu", (unsigned long long)in->tokens->arr_len);
    else
        printf("null");
    const char *pre = in->vocab ? rbee_model_meta_str(in->vocab, "tokenizer.ggml.pre") : NULL;
    printf(", \"pre\": ");
    if (pre)
        print_json_z(pre);
    else
        printf("null");
    printf(", \"eog\": ");
    if (in->vocab)
        print_eog(in, 1);
    else
        printf("null");
    printf("}, \"vocab_only\": %s, \"n_params\": %llu, \"bits_per_weight\": %.6f, \"tensors\": [",
           vocab_only(in) ? "true" : "false", (unsigned long long)in->n_params, bits_per_weight(in));
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        printf("%s{\"name\": ", i ? ", " : "");
        print_json_str(t->name.data, t->name.len);
        printf(", \"type\": \"%s\", \"shape\": [", rb_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++)
            printf("%s%lld", d ? ", " : "", (long long)t->ne[d]);
        printf("], \"offset\": %llu, \"bytes\": %llu}", (unsigned long long)(f->data_offset + t->offset),
               (unsigned long long)t->n_bytes);
    }
    const struct rb_gguf_layout *l = &in->layout;
    uint64_t sum = l->header_bytes + l->padding_bytes + l->tensor_bytes + l->unused_bytes;
    printf("], \"totals\": {\"header_bytes\": %llu, \"padding_bytes\": %llu, \"tensor_bytes\": %llu, "
           "\"unused_bytes\": %llu, \"file_bytes\": %llu, \"ok\": %s}",
           (unsigned long long)l->header_bytes, (unsigned long long)l->padding_bytes,
           (unsigned long long)l->tensor_bytes, (unsigned long long)l->unused_bytes,
           (unsigned long long)l->file_bytes, sum == l->file_bytes && !l->unused_bytes ? "true" : "false");
    if (in->has_kv) {
        printf(", \"kv_cache\": {\"type_k\": \"%s\", \"type_v\": \"%s\", \"n_ctx\": %ld, \"bytes\": %llu}",
               rb_type_name(o->type_k), rb_type_name(o->type_v), in->kv_ctx, (unsigned long long)in->kv_bytes);
        printf(", \"scratch_bytes\": %llu, \"n_threads\": %d", (unsigned long long)in->scratch_bytes,
               o->n_threads);
        printf(", \"memory_bytes\": %llu", (unsigned long long)((uint64_t)f->size + in->kv_bytes + in->scratch_bytes));
    }
    if (in->error[0]) {
        printf(", \"error\": ");
        print_json_z(in->error);
    }
    printf("}\n");
}

int cli_info(int argc, char **argv) {
    struct info_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc)
        return rc == 2 ? 0 : 1;
    struct gguf_file f;
    char err[RB_ERR_MAX];
    if (rb_gguf_open(&f, o.path, err) != 0) {
        fprintf(stderr, "rbee: error: %s: %s\n", o.path, err);
        return 1;
    }
    struct info in;
    gather(&in, &f, &o);
    if (o.json)
        print_json(&in, &o);
    else
        print_text(&in, &o);
    rbee_model_free(in.vocab);
    rb_gguf_close(&f);
    if (in.error[0]) { /* what `rbee run` would say, after all that could be listed */
        fflush(stdout);
        fprintf(stderr, "rbee: error: %s\n", in.error);
        return 1;
    }
    return 0;
}
