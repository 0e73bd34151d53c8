/* tok_spm.c - SentencePiece encoding as llama.cpp does it (llm_tokenizer_spm).
 *
 * The text gets a leading space (add_space_prefix), every space becomes
 * U+2581 ("▁"), and the result is cut into UTF-8 characters. Then, over and
 * over, the adjacent pair whose concatenation is the vocabulary piece with the
 * highest score is merged (ties: the leftmost pair). A character left that is
 * no piece at all comes out as its bytes, <0xNN> tokens (byte fallback).
 *
 * Glossary: sym = a run of text that is one piece so far (a linked list in
 * text order); bigram = a candidate merge of two neighbouring syms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

struct spm_sym {
    size_t off;      /* start in the escaped text */
    uint32_t n;      /* bytes; 0 once merged into its left neighbour */
    int32_t prev, next;
};

struct spm_state {
    const struct rb_tokenizer *tok;
    const char *text; /* escaped */
    struct spm_sym *syms;
    struct rb_bigram_heap heap;
};

/* Queue left+right if their joined text is a vocabulary piece. */
static void try_bigram(struct spm_state *st, int32_t left, int32_t right) {
    if (left < 0 || right < 0)
        return;
    const struct spm_sym *l = &st->syms[left], *r = &st->syms[right];
    uint32_t size = l->n + r->n; /* neighbours are contiguous in the text */
    int32_t id = rb_tok_find(st->tok, st->text + l->off, size);
    if (id < 0)
        return;
    struct rb_bigram b = { st->tok->scores[id], left, right, { (int32_t)size, 0 } };
    rb_bigram_push(&st->heap, b);
}

/* " a b" -> "▁▁a▁b" with the leading space when space_prefix. */
static char *escape_spaces(const char *text, size_t len, int space_prefix, size_t *out_len) {
    char *e = malloc(3 * len + 3);
    if (!e)
        return NULL;
    size_t n = 0;
    if (space_prefix) {
        memcpy(e, "\xE2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(e + n, "\xE2\x96\x81", 3);
            n += 3;
        } else {
            e[n++] = text[i];
        }
    }
    *out_len = n;
    return e;
}

static void emit_sym(const struct rb_tokenizer *t, const char *text, const struct spm_sym *s, struct rb_tok_out *out) {
    int32_t id = rb_tok_find(t, text + s->off, s->n);
    if (id >= 0) {
        rb_tok_emit(out, id);
        return;
    }
    /* byte fallback; a vocabulary without <0xNN> gets <unk> (llama.cpp would fail) */
    for (uint32_t k = 0; k < s->n; k++) {
        int32_t b = t->byte_ids[(uint8_t)text[s->off + k]];
        if (b < 0)
            b = t->unk;
        if (b >= 0)
            rb_tok_emit(out, b);
    }
}

int rb_spm_encode(const struct rb_tokenizer *t, const char *text, size_t len, int space_prefix,
                  struct rb_tok_out *out, char *err) {
    if (len > (SIZE_MAX - 3) / 3 || len > INT32_MAX / 4) {
        snprintf(err, RB_ERR_MAX, "tokenize: text of %zu bytes is too long", len);
        return -1;
    }
    size_t n_text = 0;
    char *escaped = escape_spaces(text, len, space_prefix, &n_text);
    if (!escaped) {
        snprintf(err, RB_ERR_MAX, "tokenize: out of memory");
        return -1;
    }
    struct spm_state st = { t, escaped, malloc(n_text * sizeof(struct spm_sym)), { NULL, 0 } };
    /* each merge queues at most two bigrams, so 3 per sym bounds the heap */
    st.heap.v = malloc(3 * n_text * sizeof(struct rb_bigram) + sizeof(struct rb_bigram));
    if (!st.syms || !st.heap.v) {
        free(escaped);
        free(st.syms);
        free(st.heap.v);
        snprintf(err, RB_ERR_MAX, "tokenize: out of memory");
        return -1;
    }

    /* one sym per UTF-8 character (a truncated last one keeps what is there) */
    int32_t n_syms = 0;
    for (size_t off = 0; off < n_text;) {
        size_t n = (size_t)rb_utf8_len((uint8_t)escaped[off]);
        if (n > n_text - off)
            n = n_text - off;
        struct spm_sym s = { off, (uint32_t)n, n_syms - 1, off + n == n_text ? -1 : n_syms + 1 };
        st.syms[n_syms++] = s;
        off += n;
    }
    for (int32_t i = 1; i < n_syms; i++)
        try_bigram(&st, i - 1, i);

    while (st.heap.n > 0) {
        struct rb_bigram b = rb_bigram_pop(&st.heap);
        struct spm_sym *l = &st.syms[b.left], *r = &st.syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != (uint32_t)b.check[0])
            continue; /* one side changed since this was queued */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            st.syms[r->next].prev = b.left;
        try_bigram(&st, l->prev, b.left);
        try_bigram(&st, b.left, l->next);
    }

    for (int32_t i = n_syms > 0 ? 0 : -1; i >= 0; i = st.syms[i].next)
        emit_sym(t, escaped, &st.syms[i], out);

    free(escaped);
    free(st.syms);
    free(st.heap.v);
    return 0;
}
