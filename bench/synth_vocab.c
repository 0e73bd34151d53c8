/* synth_vocab.c - the tokenizer of a synthetic model: every tokenizer.* key
 * copied from a real vocab file, or (shape->cut_vocab) a real vocab cut
 * down to the shape's token count, for models whose own vocab is not in
 * ../shared (SmolLM2: the first 49150 Llama 3 tokens, its BOS and EOS, and
 * the merges among them; only the token count matters to throughput). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_MERGES "tokenizer.ggml.merges"
#define KEY_BOS "tokenizer.ggml.bos_token_id"
#define KEY_EOS "tokenizer.ggml.eos_token_id"

const char *rb_synth_default_vocab(const struct rb_synth_shape *s, char *buf, size_t cap) {
    const char *shared = getenv("SHARED");
    if (!shared || !*shared) shared = "../shared";
    snprintf(buf, cap, "%s/%s", shared,
             s->vocab ? s->vocab
             : !strcmp(s->arch, "gpt2") ? "reference/tokenizer/ggml-vocab-gpt-2.gguf"
                                        : "reference/tokenizer/ggml-vocab-llama-spm.gguf");
    return buf;
}

/* The tokenizer model (tokenizer.ggml.model) a shape's vocab must have. */
static const char *tokenizer_model(const struct rb_synth_shape *s) {
    return s->tokenizer ? s->tokenizer : !strcmp(s->arch, "gpt2") ? "gpt2" : "llama";
}

/* ---- cutting a vocab ---- */

static int str_cmp(const struct gguf_str *a, const struct gguf_str *b) {
    size_t n = a->len < b->len ? (size_t)a->len : (size_t)b->len;
    int c = memcmp(a->data, b->data, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int str_ptr_cmp(const void *a, const void *b) {
    return str_cmp(*(const struct gguf_str *const *)a, *(const struct gguf_str *const *)b);
}

/* 1 when s is one of the n sorted strings. */
static int has_str(const struct gguf_str *const *sorted, size_t n, const char *s, size_t len) {
    struct gguf_str key = { len, s };
    const struct gguf_str *kp = &key;
    return bsearch(&kp, sorted, n, sizeof *sorted, str_ptr_cmp) != NULL;
}

/* A malloc'd NUL-terminated copy. */
static char *dup_str(struct gguf_str s) {
    char *p = malloc((size_t)s.len + 1);
    if (p) {
        memcpy(p, s.data, (size_t)s.len);
        p[s.len] = 0;
    }
    return p;
}

/* The first n - 2 tokens, then BOS and EOS (their types and scores along),
 * and the merges "A B" whose A, B and AB are all kept, in their order. */
static int write_cut(struct gguf_writer *w, const struct gguf_file *f, int n, const char *path, char *err) {
    int64_t k_tok = rb_gguf_find_key(f, KEY_TOKENS), k_types = rb_gguf_find_key(f, KEY_TYPES);
    int64_t k_scores = rb_gguf_find_key(f, KEY_SCORES), k_merges = rb_gguf_find_key(f, KEY_MERGES);
    uint32_t bos, eos;
    char e[RB_ERR_MAX];
    const struct gguf_kv *tok = &f->kv[k_tok];
    if (rb_gguf_get_u32(f, KEY_BOS, &bos, e) || rb_gguf_get_u32(f, KEY_EOS, &eos, e) || bos >= tok->arr_len ||
        eos >= tok->arr_len || k_types < 0 || f->kv[k_types].arr_type != GGUF_TYPE_INT32 ||
        f->kv[k_types].arr_len != tok->arr_len || n < 3 ||
        (k_scores >= 0 && (f->kv[k_scores].arr_type != GGUF_TYPE_FLOAT32 || f->kv[k_scores].arr_len != tok->arr_len)) ||
        (k_merges >= 0 && f->kv[k_merges].arr_type != GGUF_TYPE_STRING)) {
        snprintf(err, RB_ERR_MAX, "vocab %s: cannot be cut to %d tokens (needs BOS, EOS and token types)", path, n);
        return -1;
    }
    uint64_t src[2] = { bos, eos };
    char **toks = calloc((size_t)n, sizeof *toks);
    const struct gguf_str **sorted = malloc((size_t)n * sizeof *sorted);
    struct gguf_str *kept = malloc((size_t)n * sizeof *kept);
    int32_t *types = malloc((size_t)n * sizeof *types);
    float *scores = malloc((size_t)n * sizeof *scores);
    uint64_t n_merges = k_merges >= 0 ? f->kv[k_merges].arr_len : 0, n_kept = 0;
    char **merges = calloc(n_merges ? (size_t)n_merges : 1, sizeof *merges);
    int rc = toks && sorted && kept && types && scores && merges ? 0 : -1;
    for (int i = 0; rc == 0 && i < n; i++) {
        uint64_t from = i < n - 2 ? (uint64_t)i : src[i - (n - 2)];
        kept[i] = rb_gguf_arr_str(tok, from);
        sorted[i] = &kept[i];
        toks[i] = dup_str(kept[i]);
        memcpy(&types[i], f->kv[k_types].value + from * 4, 4);
        if (k_scores >= 0) memcpy(&scores[i], f->kv[k_scores].value + from * 4, 4);
        if (!toks[i]) rc = -1;
    }
    if (rc == 0) qsort(sorted, (size_t)n, sizeof *sorted, str_ptr_cmp);
    char joined[512];
    for (uint64_t r = 0; rc == 0 && r < n_merges; r++) {
        struct gguf_str m = rb_gguf_arr_str(&f->kv[k_merges], r);
        const char *space = memchr(m.data, ' ', (size_t)m.len);
        size_t a = space ? (size_t)(space - m.data) : 0, b = space ? (size_t)m.len - a - 1 : 0;
        if (!space || a + b >= sizeof joined) continue;
        memcpy(joined, m.data, a);
        memcpy(joined + a, space + 1, b);
        if (has_str(sorted, (size_t)n, m.data, a) && has_str(sorted, (size_t)n, space + 1, b) &&
            has_str(sorted, (size_t)n, joined, a + b) && !(merges[n_kept++] = dup_str(m)))
            rc = -1;
    }
    if (rc == 0)
        rc = rb_gguf_writer_add_str_arr(w, KEY_TOKENS, (const char *const *)toks, (uint64_t)n) ||
             rb_gguf_writer_add_arr(w, KEY_TYPES, GGUF_TYPE_INT32, types, (uint64_t)n) ||
             (k_scores >= 0 && rb_gguf_writer_add_arr(w, KEY_SCORES, GGUF_TYPE_FLOAT32, scores, (uint64_t)n)) ||
             (k_merges >= 0 && rb_gguf_writer_add_str_arr(w, KEY_MERGES, (const char *const *)merges, n_kept)) ||
             rb_gguf_writer_add_u32(w, KEY_BOS, (uint32_t)n - 2) || rb_gguf_writer_add_u32(w, KEY_EOS, (uint32_t)n - 1)
                 ? -1 : 0;
    if (rc) snprintf(err, RB_ERR_MAX, "vocab %s: out of memory cutting it to %d tokens", path, n);
    for (int i = 0; toks && i < n; i++) free(toks[i]);
    for (uint64_t i = 0; merges && i < n_kept; i++) free(merges[i]);
    free(toks); free(sorted); free(kept); free(types); free(scores); free(merges);
    return rc;
}

/* ---- copying ---- */

/* Keys write_cut writes itself, and token ids that would point past the cut. */
static int cut_replaces(const struct gguf_str *k) {
    static const char *const keys[] = { KEY_TOKENS, KEY_TYPES, KEY_SCORES, KEY_MERGES };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (k->len == strlen(keys[i]) && !memcmp(k->data, keys[i], (size_t)k->len)) return 1;
    return k->len > 9 && !memcmp(k->data + k->len - 9, "_token_id", 9);
}

int rb_synth_copy_vocab(struct gguf_writer *w, const struct rb_synth_shape *s, const char *path, char *err) {
    struct gguf_file f;
    char e[RB_ERR_MAX];
    if (rb_gguf_open(&f, path, e) != 0) {
        snprintf(err, RB_ERR_MAX, "vocab %.120s: %.120s", path, e);
        return -1;
    }
    int rc = 0;
    char model[32] = "";
    int64_t tok = rb_gguf_find_key(&f, KEY_TOKENS);
    const char *want = tokenizer_model(s);
    uint64_t have = tok >= 0 ? f.kv[tok].arr_len : 0;
    int cut = s->cut_vocab && have > (uint64_t)s->n_vocab;
    if (rb_gguf_get_str(&f, "tokenizer.ggml.model", model, sizeof model, e) != 0 || tok < 0 ||
        f.kv[tok].type != GGUF_TYPE_ARRAY || f.kv[tok].arr_type != GGUF_TYPE_STRING) {
        snprintf(err, RB_ERR_MAX, "vocab %s: no tokenizer.ggml.model or tokenizer.ggml.tokens", path);
        rc = -1;
    } else if (strcmp(model, want) != 0) {
        snprintf(err, RB_ERR_MAX, "vocab %s: tokenizer '%s', but shape %s needs '%s'", path, model, s->name, want);
        rc = -1;
    } else if (have != (uint64_t)s->n_vocab && !cut) {
        snprintf(err, RB_ERR_MAX, "vocab %s: %llu tokens, but shape %s has %d", path, (unsigned long long)have,
                 s->name, s->n_vocab);
        rc = -1;
    }
    if (rc == 0 && cut) rc = write_cut(w, &f, s->n_vocab, path, err);
    for (uint64_t i = 0; rc == 0 && i < f.n_kv; i++) {
        const struct gguf_str *k = &f.kv[i].key;
        if (k->len < 10 || memcmp(k->data, "tokenizer.", 10) || (cut && cut_replaces(k))) continue;
        if (rb_gguf_writer_copy_kv(w, &f.kv[i]) != 0) {
            snprintf(err, RB_ERR_MAX, "vocab %s: cannot copy a tokenizer key", path);
            rc = -1;
        }
    }
    rb_gguf_close(&f);
    return rc;
}
