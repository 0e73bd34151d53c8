/* tok_vocab.c - what both encoders look up in a loaded vocabulary: the
 * text -> id table, the BPE merge table and the bigram heap. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

/* ---- text -> id ---- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int piece_is(const struct rb_tokenizer *t, int32_t id, const char *s, size_t n) {
    return t->piece_len[id] == n && memcmp(t->text + t->piece_off[id], s, n) == 0;
}

int32_t rb_tok_find(const struct rb_tokenizer *t, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & t->slot_mask;; i = (i + 1) & t->slot_mask) {
        int32_t id = t->slots[i];
        if (id < 0)
            return -1;
        if (piece_is(t, id, s, n))
            return id;
    }
}

/* A later duplicate replaces the earlier id. */
int rb_tok_build_hash(struct rb_tokenizer *t) {
    size_t cap = 16;
    while (cap < (size_t)t->n_vocab * 2)
        cap *= 2;
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->slots)
        return -1;
    memset(t->slots, 0xFF, cap * sizeof *t->slots); /* all -1 */
    t->slot_mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->text + t->piece_off[id];
        size_t n = t->piece_len[id];
        if (n == 0)
            continue;
        size_t i = hash_bytes(s, n) & t->slot_mask;
        while (t->slots[i] >= 0 && !piece_is(t, t->slots[i], s, n))
            i = (i + 1) & t->slot_mask;
        t->slots[i] = id;
    }
    return 0;
}

/* ---- BPE merges: (left, right) -> rank, result ---- */

static uint64_t merge_key(int32_t left, int32_t right) {
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

static size_t merge_hash(uint64_t key) {
    key ^= key >> 33; /* murmur3 finalizer: spread the two ids over all bits */
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key;
}

int rb_tok_merges_init(struct rb_tokenizer *t, size_t n) {
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    t->merges = malloc(cap * sizeof *t->merges);
    if (!t->merges)
        return -1;
    for (size_t i = 0; i < cap; i++)
        t->merges[i].key = RB_MERGE_EMPTY;
    t->merge_mask = cap - 1;
    return 0;
}

void rb_tok_merge_add(struct rb_tokenizer *t, int32_t left, int32_t right, int32_t rank, int32_t result) {
    uint64_t key = merge_key(left, right);
    size_t i = merge_hash(key) & t->merge_mask;
    while (t->merges[i].key != RB_MERGE_EMPTY && t->merges[i].key != key)
        i = (i + 1) & t->merge_mask;
    if (t->merges[i].key == RB_MERGE_EMPTY) {
        t->merges[i].key = key;
        t->merges[i].rank = rank;
        t->merges[i].result = result;
    }
}

const struct rb_merge_slot *rb_tok_find_merge(const struct rb_tokenizer *t, int32_t left, int32_t right) {
    if (!t->merges)
        return NULL;
    uint64_t key = merge_key(left, right);
    for (size_t i = merge_hash(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merges[i].key == key)
            return &t->merges[i];
        if (t->merges[i].key == RB_MERGE_EMPTY)
            return NULL;
    }
}

/* ---- bigram heap ---- */

static int bigram_before(const struct rb_bigram *a, const struct rb_bigram *b) {
    return a->priority > b->priority || (a->priority == b->priority && a->left < b->left);
}

void rb_bigram_push(struct rb_bigram_heap *h, struct rb_bigram x) {
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(&x, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = x;
}

struct rb_bigram rb_bigram_pop(struct rb_bigram_heap *h) {
    struct rb_bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && bigram_before(&h->v[child + 1], &h->v[child]))
            child++;
        if (!bigram_before(&h->v[child], &last))
            break;
        h->v[i] = h->v[child];
        i = child;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}
