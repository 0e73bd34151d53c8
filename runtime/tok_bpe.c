/* tok_bpe.c - byte-level BPE as llama.cpp does it (llm_tokenizer_bpe).
 *
 * 1. Pre-tokenize: cut the text into words with the vocabulary's
 *    pre-tokenizer (tok_pre.c: GPT-2's regex, Llama 3's, Qwen2's, ...).
 * 2. Each word's UTF-8 bytes become one symbol each: the token of that byte's
 *    bytes_to_unicode character. With ignore_merges (Llama 3), a word that
 *    is itself a token is taken whole instead.
 * 3. Merge: repeatedly join the adjacent pair with the lowest merge rank
 *    (ties: leftmost) until no pair is in the merge table.
 *
 * Glossary: cpt = Unicode code point; sym = one token-so-far of a word.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

/* ---- 2, 3. merging ---- */

struct bpe_sym {
    int32_t id;        /* token so far; -1 for a byte with no token */
    int32_t prev, next;
    int alive;
};

static void try_bigram(const struct rb_tokenizer *t, struct bpe_sym *syms, struct rb_bigram_heap *h, int32_t left,
                       int32_t right) {
    if (left < 0 || right < 0 || syms[left].id < 0 || syms[right].id < 0)
        return;
    const struct rb_merge_slot *m = rb_tok_find_merge(t, syms[left].id, syms[right].id);
    if (!m)
        return;
    struct rb_bigram b = { -(float)m->rank, left, right, { syms[left].id, syms[right].id } };
    rb_bigram_push(h, b);
}

/* BPE over one word's bytes; syms and heap have room for n (heap: 3n). */
static void merge_word(const struct rb_tokenizer *t, const uint8_t *bytes, size_t n, struct bpe_sym *syms,
                       struct rb_bigram_heap *heap, struct rb_tok_out *out) {
    for (size_t i = 0; i < n; i++) {
        struct bpe_sym s = { t->byte_ids[bytes[i]], (int32_t)i - 1, i + 1 == n ? -1 : (int32_t)i + 1, 1 };
        syms[i] = s;
    }
    heap->n = 0;
    for (size_t i = 1; i < n; i++)
        try_bigram(t, syms, heap, (int32_t)i - 1, (int32_t)i);

    while (heap->n > 0) {
        struct rb_bigram b = rb_bigram_pop(heap);
        struct bpe_sym *l = &syms[b.left], *r = &syms[b.right];
        if (!l->alive || !r->alive || l->id != b.check[0] || r->id != b.check[1])
            continue; /* stale: one side was merged since */
        l->id = rb_tok_find_merge(t, l->id, r->id)->result;
        r->alive = 0;
        l->next = r->next;
        if (r->next >= 0)
            syms[r->next].prev = b.left;
        try_bigram(t, syms, heap, l->prev, b.left);
        try_bigram(t, syms, heap, b.left, l->next);
    }

    /* a byte without a token is dropped, as llama.cpp drops it */
    for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = syms[i].next)
        if (syms[i].id >= 0)
            rb_tok_emit(out, syms[i].id);
}

/* With ignore_merges: the token whose text is the whole word in
 * bytes_to_unicode characters, or -1. map has room for 2 bytes per byte. */
static int32_t whole_word(const struct rb_tokenizer *t, const uint8_t *bytes, size_t n, char *map) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += rb_utf8_encode(t->byte_to_cpt[bytes[i]], (uint8_t *)map + m);
    return rb_tok_find(t, map, m);
}

/* ---- the whole encoder ---- */

int rb_bpe_encode(const struct rb_tokenizer *t, const char *text, size_t len, struct rb_tok_out *out, char *err) {
    if (len > INT32_MAX / 4) {
        snprintf(err, RB_ERR_MAX, "tokenize: text of %zu bytes is too long", len);
        return -1;
    }
    uint32_t *cpts = malloc(len * sizeof *cpts);
    uint8_t *cls = malloc(len);
    size_t *ends = malloc(2 * len * sizeof *ends);
    uint8_t *bytes = NULL;
    char *map = NULL;
    struct bpe_sym *syms = NULL;
    struct rb_bigram_heap heap = { NULL, 0 };
    int rc = -1;
    if (!cpts || !cls || !ends)
        goto done;

    size_t n = 0;
    for (size_t off = 0; off < len; n++) {
        size_t used;
        cpts[n] = rb_utf8_decode((const uint8_t *)text + off, len - off, &used);
        cls[n] = rb_pre_class(cpts[n]);
        off += used;
    }
    size_t n_words = rb_pre_split(t->pre.family, cpts, cls, n, ends, ends + len);

    /* the merge buffers fit the longest word (in bytes: an invalid byte
     * became U+FFFD, 3 bytes), not the whole text */
    size_t longest = 1;
    for (size_t k = 0, start = 0; k < n_words; start = ends[k++]) {
        size_t n_bytes = 0;
        for (size_t i = start; i < ends[k]; i++)
            n_bytes += rb_utf8_size(cpts[i]);
        if (n_bytes > longest)
            longest = n_bytes;
    }
    bytes = malloc(longest);
    map = t->pre.ignore_merges ? malloc(2 * longest) : NULL;
    syms = malloc(longest * sizeof *syms);
    heap.v = malloc(3 * longest * sizeof *heap.v); /* n - 1 first bigrams, then at most 2 per merge */
    if (!bytes || !syms || !heap.v || (t->pre.ignore_merges && !map))
        goto done;

    for (size_t k = 0, start = 0; k < n_words; start = ends[k++]) {
        size_t n_bytes = 0;
        for (size_t i = start; i < ends[k]; i++)
            n_bytes += rb_utf8_encode(cpts[i], bytes + n_bytes);
        int32_t id = map ? whole_word(t, bytes, n_bytes, map) : -1;
        if (id >= 0)
            rb_tok_emit(out, id);
        else
            merge_word(t, bytes, n_bytes, syms, &heap, out);
    }
    rc = 0;
done:
    if (rc != 0)
        snprintf(err, RB_ERR_MAX, "tokenize: out of memory for %zu bytes of text", len);
    free(cpts);
    free(cls);
    free(ends);
    free(bytes);
    free(map);
    free(syms);
    free(heap.v);
    return rc;
}
