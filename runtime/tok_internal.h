/* tok_internal.h - the tokenizer struct shared by tokenizer.c (loading,
 * detokenizer), tok_spm.c and tok_bpe.c. Not part of the public interface. */
#ifndef RB_TOK_INTERNAL_H
#define RB_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "tokenizer.h"

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type) */
enum {
    RB_TT_UNDEFINED = 0, RB_TT_NORMAL = 1, RB_TT_UNKNOWN = 2, RB_TT_CONTROL = 3,
    RB_TT_USER_DEFINED = 4, RB_TT_UNUSED = 5, RB_TT_BYTE = 6,
};

/* One merge of the BPE table: (left id, right id) -> rank and the merged id. */
struct rb_merge_slot {
    uint64_t key; /* (uint64)left << 32 | right; RB_MERGE_EMPTY when free */
    int32_t rank;
    int32_t result;
};
#define RB_MERGE_EMPTY UINT64_MAX

struct rb_tokenizer {
    enum rb_tok_kind kind;
    int32_t n_vocab;

    /* every token's text, copied out of the file so we outlive it */
    char *text;           /* all pieces back to back */
    size_t *piece_off;    /* [n_vocab] */
    uint32_t *piece_len;  /* [n_vocab] */
    float *scores;        /* [n_vocab], SPM merge priority (0 when absent) */
    uint8_t *types;       /* [n_vocab], RB_TT_* */

    /* text -> id: open addressing over ids, -1 = empty slot; the last of
     * duplicate texts wins, as in llama.cpp's token_to_id map */
    int32_t *slots;
    size_t slot_mask;

    int32_t bos, eos, unk, pad; /* -1 when none */
    int add_bos, add_space_prefix;

    /* SPM: id of <0xNN>; BPE: id of the single mapped character of byte NN (-1 if none) */
    int32_t byte_ids[256];

    /* USER_DEFINED tokens, longest text first: matched in raw text before
     * encoding, as llama.cpp does even when it does not parse special tokens */
    int32_t *user_ids;
    int32_t n_user;
    size_t max_piece; /* most bytes one rb_detok_push can write */

    /* BPE only */
    struct rb_merge_slot *merges;
    size_t merge_mask;
    uint16_t byte_to_cpt[256]; /* GPT-2's bytes_to_unicode */
    int16_t cpt_to_byte[324];  /* its inverse over code points 0..323, -1 elsewhere */
};

/* Lookup of a piece's text; -1 when no token has it. */
int32_t rb_tok_find(const struct rb_tokenizer *t, const char *s, size_t n);
/* The merge (left, right) -> slot, or NULL. */
const struct rb_merge_slot *rb_tok_find_merge(const struct rb_tokenizer *t, int32_t left, int32_t right);

/* Where encoded ids go: the first cap are stored, all are counted. */
struct rb_tok_out {
    int32_t *ids;
    int64_t cap;
    int64_t n;
};
static inline void rb_tok_emit(struct rb_tok_out *o, int32_t id) {
    if (o->n < o->cap)
        o->ids[o->n] = id;
    o->n++;
}

/* A candidate merge of two adjacent symbols, as both encoders queue them:
 * the heap pops the highest priority first, then the leftmost. */
struct rb_bigram {
    float priority;             /* SPM: the merged piece's score; BPE: -rank (exact below 2^24) */
    int32_t left, right;        /* symbol indexes */
    int32_t check[2];           /* what the symbols held when queued: a later mismatch means stale */
};

struct rb_bigram_heap {
    struct rb_bigram *v;        /* room for every push the caller makes */
    size_t n;
};

void rb_bigram_push(struct rb_bigram_heap *h, struct rb_bigram x);
struct rb_bigram rb_bigram_pop(struct rb_bigram_heap *h); /* h->n > 0 */

/* The two encoders, over one non-empty run of text (BOS and user-defined
 * tokens are handled by the caller). space_prefix: SPM's leading U+2581. */
int rb_spm_encode(const struct rb_tokenizer *t, const char *text, size_t len, int space_prefix,
                  struct rb_tok_out *out, char *err);
int rb_bpe_encode(const struct rb_tokenizer *t, const char *text, size_t len, struct rb_tok_out *out, char *err);

#endif
