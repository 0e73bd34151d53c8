/* tok_bpe.c - GPT-2 byte-level BPE as llama.cpp does it (llm_tokenizer_bpe
 * with the "gpt-2" pre-tokenizer).
 *
 * 1. Pre-tokenize: cut the text into words with GPT-2's regex
 *      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *    written out by hand over code points (no regex library).
 * 2. Each word's UTF-8 bytes become one symbol each: the token of that byte's
 *    bytes_to_unicode character.
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

/* ---- 1. pre-tokenizer ---- */

/* Character classes of one code point, as the regex sees it. */
enum { CLS_NONE = 0, CLS_LETTER = 1, CLS_NUMBER = 2, CLS_SPACE = 4, CLS_OTHER = 8 };

static uint8_t classify(uint32_t cp) {
    if (rb_cpt_is_whitespace(cp)) return CLS_SPACE;
    if (rb_cpt_is_letter(cp)) return CLS_LETTER;
    if (rb_cpt_is_number(cp)) return CLS_NUMBER;
    return CLS_OTHER;
}

struct words {
    const uint32_t *cpts;
    const uint8_t *cls;
    size_t n;          /* code points */
    size_t *ends;      /* end (exclusive) of each word, in code points */
    size_t n_words;
};

static uint32_t cpt_at(const struct words *w, size_t i) { return i < w->n ? w->cpts[i] : 0; }
static uint8_t cls_at(const struct words *w, size_t i) { return i < w->n ? w->cls[i] : CLS_NONE; }

/* Length of a contraction ('s 't 'm 'd 're 've 'll) at pos, else 0.
 * Lower case only: GPT-2's regex has no (?i). */
static size_t contraction_len(const struct words *w, size_t pos) {
    if (cpt_at(w, pos) != '\'' || pos + 1 >= w->n)
        return 0;
    uint32_t a = cpt_at(w, pos + 1), b = cpt_at(w, pos + 2);
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (pos + 2 < w->n && ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')))
        return 3;
    return 0;
}

/* Where the word starting at pos ends. */
static size_t word_end(const struct words *w, size_t pos) {
    size_t n = contraction_len(w, pos);
    if (n)
        return pos + n;

    /* " ?X+" for X = letters, numbers, other: an optional leading space
     * belongs to the run of the class of the character after it */
    uint8_t cls = cpt_at(w, pos) == ' ' ? cls_at(w, pos + 1) : cls_at(w, pos);
    if (cls == CLS_LETTER || cls == CLS_NUMBER || cls == CLS_OTHER) {
        size_t end = pos + (cpt_at(w, pos) == ' ');
        while (cls_at(w, end) == cls)
            end++;
        return end;
    }

    /* "\s+(?!\S)|\s+": a run of spaces gives its last one to the word after
     * it, unless the run reaches the end of the text */
    size_t n_space = 0;
    while (cls_at(w, pos + n_space) == CLS_SPACE)
        n_space++;
    if (n_space > 1 && pos + n_space < w->n)
        return pos + n_space - 1;
    if (n_space > 0)
        return pos + n_space;
    return pos + 1; /* nothing matched: the character on its own */
}

static void split_words(struct words *w) {
    w->n_words = 0;
    for (size_t pos = 0; pos < w->n;) {
        pos = word_end(w, pos);
        w->ends[w->n_words++] = pos;
    }
}

/* ---- 3. merging ---- */

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

/* ---- the whole encoder ---- */

int rb_bpe_encode(const struct rb_tokenizer *t, const char *text, size_t len, struct rb_tok_out *out, char *err) {
    if (len > INT32_MAX / 4) {
        snprintf(err, RB_ERR_MAX, "tokenize: text of %zu bytes is too long", len);
        return -1;
    }
    /* invalid UTF-8 bytes become U+FFFD (3 bytes), so a word has at most 3*len bytes */
    uint32_t *cpts = malloc(len * sizeof *cpts);
    uint8_t *cls = malloc(len);
    size_t *ends = malloc(len * sizeof *ends);
    uint8_t *bytes = malloc(3 * len);
    struct bpe_sym *syms = malloc(3 * len * sizeof *syms);
    struct rb_bigram_heap heap = { malloc(9 * len * sizeof(struct rb_bigram)), 0 };
    int rc = 0;
    if (!cpts || !cls || !ends || !bytes || !syms || !heap.v) {
        snprintf(err, RB_ERR_MAX, "tokenize: out of memory");
        rc = -1;
        goto done;
    }

    struct words w = { cpts, cls, 0, ends, 0 };
    for (size_t off = 0; off < len;) {
        size_t used;
        uint32_t cp = rb_utf8_decode((const uint8_t *)text + off, len - off, &used);
        cpts[w.n] = cp;
        cls[w.n] = classify(cp);
        w.n++;
        off += used;
    }
    split_words(&w);

    size_t start = 0;
    for (size_t k = 0; k < w.n_words; k++) {
        size_t n_bytes = 0;
        for (size_t i = start; i < w.ends[k]; i++)
            n_bytes += rb_utf8_encode(cpts[i], bytes + n_bytes);
        merge_word(t, bytes, n_bytes, syms, &heap, out);
        start = w.ends[k];
    }
done:
    free(cpts);
    free(cls);
    free(ends);
    free(bytes);
    free(syms);
    free(heap.v);
    return rc;
}
