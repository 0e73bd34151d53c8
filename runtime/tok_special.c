/* tok_special.c - special tokens as llama.cpp b4748 treats them.
 *
 * Loading: tokens named by keys (eos, eot, eom, FIM) are completed by text
 * where no key names them ("<|eot_id|>", "<|im_end|>", ...), the tokens
 * found that way become control tokens, and together they make the set of
 * tokens that end a turn. Every control, user-defined and unknown token is
 * a special token: typed in a prompt, its text becomes that token (control
 * and unknown ones only when special tokens are parsed). Some vocabularies
 * strip the whitespace on one side of their special tokens (Phi-3: after).
 *
 * Encoding: rb_tok_partition cuts the raw text at special tokens, longest
 * first, each searched only in what the longer ones left as text, the
 * order of llama.cpp's tokenizer_st_partition.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* ---------------------------------------------------------------- by text */

static int32_t find_z(const struct rb_tokenizer *t, const char *s) { return rb_tok_find(t, s, strlen(s)); }

/* The lowest id among the tokens with one of these texts (-1 if none).
 * llama.cpp takes the first it meets in a hash map, so which of two
 * present texts wins is not defined there; the lowest id is at least stable. */
static int32_t find_any(const struct rb_tokenizer *t, const char *const *texts) {
    int32_t best = -1;
    for (; *texts; texts++) {
        int32_t id = find_z(t, *texts);
        if (id >= 0 && (best < 0 || id < best))
            best = id;
    }
    return best;
}

/* A key names the token, or else its text does; found by text, it becomes
 * a control token (llama.cpp: "control-looking token ... will be overridden"). */
static void complete(struct rb_tokenizer *t, int32_t *id, const char *const *texts) {
    if (*id >= 0)
        return;
    *id = find_any(t, texts);
    if (*id >= 0)
        t->types[*id] = RB_TT_CONTROL;
}

static void find_by_text(struct rb_tokenizer *t) {
    static const char *const eot[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                       "<EOT>", "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                                       NULL }; /* the last: DeepSeek's <｜end▁of▁sentence｜> */
    static const char *const eom[] = { "<|eom_id|>", NULL };
    static const char *const fim[6][5] = {
        [RB_FIM_PRE] = { "<|fim_prefix|>", "<fim-prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
                         "<PRE>", NULL },
        [RB_FIM_SUF] = { "<|fim_suffix|>", "<fim-suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>",
                         "<SUF>", NULL },
        [RB_FIM_MID] = { "<|fim_middle|>", "<fim-middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
                         "<MID>", NULL },
        [RB_FIM_PAD] = { "<|fim_pad|>", "<fim-pad>", "<PAD>", NULL },
        [RB_FIM_REP] = { "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", NULL },
        [RB_FIM_SEP] = { "<|file_sep|>", NULL },
    };
    complete(t, &t->eot, eot);
    complete(t, &t->eom, eom);
    for (int k = 0; k < 6; k++)
        complete(t, &t->fim[k], fim[k]);
}

/* ---------------------------------------------------------------- end of generation */

static int cmp_id(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int build_eog(struct rb_tokenizer *t, char *err) {
    /* "this is currently determined based on the token text" (llama.cpp) */
    static const char *const texts[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                         "<|eom_id|>", "<EOT>" };
    enum { N_TEXTS = sizeof texts / sizeof texts[0] };
    int32_t ids[N_TEXTS + 6];
    int n = 0;
    ids[n++] = t->fim[RB_FIM_PAD];
    ids[n++] = t->fim[RB_FIM_REP];
    ids[n++] = t->fim[RB_FIM_SEP];
    for (int k = 0; k < N_TEXTS; k++) {
        int32_t id = find_z(t, texts[k]);
        if (id >= 0)
            t->types[id] = RB_TT_CONTROL;
        ids[n++] = id;
    }
    ids[n++] = t->eos;
    ids[n++] = t->eot;
    ids[n++] = t->eom;
    qsort(ids, (size_t)n, sizeof ids[0], cmp_id);
    t->eog = malloc((size_t)n * sizeof *t->eog);
    if (!t->eog) {
        snprintf(err, RB_ERR_MAX, "tokenizer: out of memory");
        return -1;
    }
    for (int k = 0; k < n; k++)
        if (ids[k] >= 0 && (t->n_eog == 0 || t->eog[t->n_eog - 1] != ids[k]))
            t->eog[t->n_eog++] = ids[k];
    return 0;
}

/* ---------------------------------------------------------------- special tokens */

static int is_special_type(uint8_t type) {
    return type == RB_TT_CONTROL || type == RB_TT_USER_DEFINED || type == RB_TT_UNKNOWN;
}

/* Longest text first, then lowest id (llama.cpp sorts by length only, with
 * std::sort, whose order among equal lengths is not defined). */
static int by_length_desc(const void *a, const void *b) {
    const struct rb_special *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static struct rb_special *special_of(struct rb_tokenizer *t, const char *text) {
    int32_t id = find_z(t, text);
    for (int32_t k = 0; id >= 0 && k < t->n_specials; k++)
        if (t->specials[k].id == id)
            return &t->specials[k];
    return NULL;
}

static void to_lower_ascii(char *s) {
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

/* llama.cpp sets these by model or pre-tokenizer name, as the GGUF file
 * does not store them. */
static void set_strip_flags(struct rb_tokenizer *t, const char *model_name, const char *pre_name) {
    char name[1024];
    snprintf(name, sizeof name, "%s", model_name);
    to_lower_ascii(name);
    if (strstr(pre_name, "jina-v2-de") || strstr(pre_name, "jina-v2-es") || strstr(pre_name, "jina-v2-code")) {
        struct rb_special *s = special_of(t, "<mask>");
        if (s)
            s->lstrip = 1;
    } else if (strstr(name, "phi-3") || strstr(name, "phi3")) {
        /* "<|user|>\nHello": the newline after a special token goes, except after these three */
        for (int32_t k = 0; k < t->n_specials; k++)
            t->specials[k].rstrip = 1;
        static const char *const keep[] = { "<unk>", "<s>", "<|endoftext|>" };
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
            struct rb_special *s = special_of(t, keep[k]);
            if (s)
                s->rstrip = 0;
        }
    }
}

static int build_specials(struct rb_tokenizer *t, const char *model_name, const char *pre_name, char *err) {
    int32_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        n += is_special_type(t->types[id]);
    if (n == 0)
        return 0;
    t->specials = calloc((size_t)n, sizeof *t->specials);
    if (!t->specials) {
        snprintf(err, RB_ERR_MAX, "tokenizer: out of memory");
        return -1;
    }
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (is_special_type(t->types[id]))
            t->specials[t->n_specials++] = (struct rb_special){ id, t->piece_len[id], 0, 0 };
    qsort(t->specials, (size_t)n, sizeof *t->specials, by_length_desc);
    set_strip_flags(t, model_name, pre_name);
    return 0;
}

int rb_tok_specials_init(struct rb_tokenizer *t, const char *model_name, const char *pre_name, char *err) {
    find_by_text(t);
    return build_eog(t, err) || build_specials(t, model_name, pre_name, err) ? -1 : 0;
}

/* ---------------------------------------------------------------- partition */

/* isspace() in the C locale, which llama.cpp's strip rules use */
static int c_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static const char *find_piece(const char *p, const char *end, const char *piece, size_t plen) {
    for (; (size_t)(end - p) >= plen; p++) {
        p = memchr(p, piece[0], (size_t)(end - p) - plen + 1);
        if (!p)
            return NULL;
        if (memcmp(p, piece, plen) == 0)
            return p;
    }
    return NULL;
}

/* One special token over every text fragment of in: its occurrences become
 * token fragments, the text around them fragments of their own. */
static size_t cut_at(const struct rb_tokenizer *t, const struct rb_special *s, const char *text,
                     const struct rb_fragment *in, size_t n_in, struct rb_fragment *out) {
    const char *piece = t->text + t->piece_off[s->id];
    size_t plen = t->piece_len[s->id], n = 0;
    for (size_t i = 0; i < n_in; i++) {
        if (in[i].id >= 0 || in[i].len < plen) {
            out[n++] = in[i];
            continue;
        }
        size_t off = in[i].off, len = in[i].len; /* the part not searched yet */
        const char *hit;
        while (len > 0 && (hit = find_piece(text + off, text + off + len, piece, plen)) != NULL) {
            size_t before = (size_t)(hit - (text + off)), after_off = off + before + plen;
            size_t after = len - before - plen;
            if (s->lstrip)
                while (before > 0 && c_space(text[off + before - 1]))
                    before--;
            if (before > 0)
                out[n++] = (struct rb_fragment){ off, before, -1 };
            out[n++] = (struct rb_fragment){ 0, 0, s->id };
            if (s->rstrip)
                while (after > 0 && c_space(text[after_off])) {
                    after_off++;
                    after--;
                }
            off = after_off;
            len = after;
        }
        if (len > 0)
            out[n++] = (struct rb_fragment){ off, len, -1 };
    }
    return n;
}

const struct rb_fragment *rb_tok_partition(const struct rb_tokenizer *t, const char *text, size_t len,
                                           int parse_special, struct rb_fragment *a, struct rb_fragment *b,
                                           size_t *n_frags) {
    size_t n = 1;
    a[0] = (struct rb_fragment){ 0, len, -1 };
    for (int32_t k = 0; k < t->n_specials; k++) {
        const struct rb_special *s = &t->specials[k];
        uint8_t type = t->types[s->id];
        if (!parse_special && (type == RB_TT_CONTROL || type == RB_TT_UNKNOWN))
            continue; /* user-defined tokens are cut out even then */
        n = cut_at(t, s, text, a, n, b);
        struct rb_fragment *swap = a; /* the result becomes the next token's input */
        a = b;
        b = swap;
    }
    *n_frags = n;
    return a;
}
