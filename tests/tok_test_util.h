/* tok_test_util.h - what the tokenizer tests share: loading a vocabulary
 * from ../shared or building one in memory, tokenizing into a fresh array,
 * reading id lists. */
#ifndef RB_TEST_TOK_UTIL_H
#define RB_TEST_TOK_UTIL_H

#include <stdint.h>

#include "../gguf/gguf.h"
#include "../runtime/tokenizer.h"
#include "test.h"

static inline char *read_file(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf) {
        buf[n] = '\0';
        *size = (size_t)n;
    }
    return buf;
}

struct loaded {
    struct gguf_file f;
    struct rb_tokenizer *tok;
    void *mem; /* for vocabularies built in memory */
};

static inline int load_path(struct loaded *l, const char *rel) {
    char path[512], err[RB_ERR_MAX];
    memset(l, 0, sizeof *l);
    if (rb_gguf_open(&l->f, test_path(path, sizeof path, rel), err) != 0) {
        printf("  %s: %s\n", path, err);
        return -1;
    }
    if (rb_tokenizer_load(&l->tok, &l->f, err) != 0) {
        printf("  %s: %s\n", path, err);
        rb_gguf_close(&l->f);
        return -1;
    }
    return 0;
}

static inline void unload(struct loaded *l) {
    rb_tokenizer_free(l->tok);
    rb_gguf_close(&l->f);
    free(l->mem);
}

/* Tokenize into a malloc'd array (asking for the size first); count in *n.
 * tokenize(): special-token text parsed, as in a prompt. */
static inline int32_t *tokenize_ps(const struct rb_tokenizer *t, const char *s, size_t len, int add_bos, int parse_special,
                                   int64_t *n) {
    char err[RB_ERR_MAX];
    *n = rb_tokenize(t, s, len, add_bos, parse_special, NULL, 0, err);
    if (*n < 0) {
        printf("  tokenize: %s\n", err);
        return NULL;
    }
    int32_t *ids = malloc(((size_t)*n + 1) * sizeof *ids);
    int64_t again = rb_tokenize(t, s, len, add_bos, parse_special, ids, *n, err);
    if (again != *n)
        printf("  tokenize: second call gave %lld, first %lld\n", (long long)again, (long long)*n);
    return ids;
}

static inline int32_t *tokenize(const struct rb_tokenizer *t, const char *s, size_t len, int add_bos, int64_t *n) {
    return tokenize_ps(t, s, len, add_bos, 1, n);
}

/* Detokenize ids one at a time into buf (NUL-terminated); returns length. */
static inline size_t detok_all(const struct rb_tokenizer *t, const int32_t *ids, int64_t n, char *buf, size_t cap) {
    struct rb_detok d;
    rb_detok_init(&d);
    size_t len = 0;
    for (int64_t i = 0; i < n && cap - len >= 256; i++)
        len += rb_detok_push(t, &d, ids[i], buf + len, 256);
    len += rb_detok_flush(&d, buf + len, 16);
    buf[len] = '\0';
    return len;
}

static inline int ids_equal(const int32_t *a, int64_t na, const int32_t *b, int64_t nb) {
    if (na != nb)
        return 0;
    for (int64_t i = 0; i < na; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static inline void print_ids(const char *label, const int32_t *ids, int64_t n) {
    printf("    %s:", label);
    for (int64_t i = 0; i < n; i++)
        printf(" %d", ids[i]);
    printf("\n");
}

/* Parse space-separated ids; returns the count. */
static inline int64_t parse_ids(const char *s, int32_t *ids, int64_t cap) {
    int64_t n = 0;
    char *end;
    for (;;) {
        long v = strtol(s, &end, 10);
        if (end == s || n >= cap)
            break;
        ids[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

/* ---- hand-made vocabularies ---- */

struct vocab_spec {
    const char *model;
    const char *const *tokens;
    int n_tokens;
    const float *scores;
    const int32_t *types;
    const char *const *merges;
    int n_merges;
};

/* Write a vocabulary to memory and open it (l->tok stays NULL). */
static inline int build(struct loaded *l, const struct vocab_spec *v, void (*extra)(struct gguf_writer *)) {
    char err[RB_ERR_MAX];
    memset(l, 0, sizeof *l);
    struct gguf_writer *w = rb_gguf_writer_new();
    if (v->model)
        rb_gguf_writer_add_str(w, "tokenizer.ggml.model", v->model);
    if (v->tokens)
        rb_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", v->tokens, (uint64_t)v->n_tokens);
    if (v->scores)
        rb_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v->scores, (uint64_t)v->n_tokens);
    if (v->types)
        rb_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->types, (uint64_t)v->n_tokens);
    if (v->merges)
        rb_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", v->merges, (uint64_t)v->n_merges);
    if (extra)
        extra(w);
    size_t size;
    int rc = rb_gguf_writer_write_mem(w, &l->mem, &size, err);
    rb_gguf_writer_free(w);
    if (rc == 0)
        rc = rb_gguf_open_memory(&l->f, l->mem, size, err);
    if (rc != 0)
        printf("  build: %s\n", err);
    return rc;
}

/* build() and load the tokenizer; -1 (a failed check) when either fails. */
static inline int build_tok(struct loaded *l, const struct vocab_spec *v, void (*extra)(struct gguf_writer *)) {
    char err[RB_ERR_MAX] = "";
    if (build(l, v, extra) != 0 || rb_tokenizer_load(&l->tok, &l->f, err) != 0) {
        CHECK_MSG(0, "load: %s", err);
        unload(l);
        return -1;
    }
    return 0;
}

/* Load must fail with a message containing `want`. */
static inline void expect_refused(const struct vocab_spec *v, void (*extra)(struct gguf_writer *), const char *want) {
    struct loaded l;
    char err[RB_ERR_MAX] = "";
    if (build(&l, v, extra) != 0) {
        CHECK(0);
        return;
    }
    struct rb_tokenizer *t = NULL;
    CHECK_EQ_INT(rb_tokenizer_load(&t, &l.f, err), -1);
    CHECK(t == NULL);
    CHECK_CONTAINS(err, want);
    unload(&l);
}

/* A tiny byte-level vocabulary: the 256 byte characters (in byte order,
 * so byte b is token b) plus extra pieces. */
struct bpe_vocab {
    char store[256][4];
    const char *tokens[300];
    int n;
};

static inline void make_bpe_vocab(struct bpe_vocab *v, const char *const *extra, int n_extra) {
    unsigned next = 256; /* GPT-2's bytes_to_unicode */
    v->n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        unsigned cp = printable ? (unsigned)b : next++;
        char *s = v->store[b];
        if (cp < 0x80) {
            s[0] = (char)cp;
            s[1] = 0;
        } else {
            s[0] = (char)(0xC0 | (cp >> 6));
            s[1] = (char)(0x80 | (cp & 0x3F));
            s[2] = 0;
        }
        v->tokens[v->n++] = s;
    }
    for (int i = 0; i < n_extra; i++)
        v->tokens[v->n++] = extra[i];
}

#endif
