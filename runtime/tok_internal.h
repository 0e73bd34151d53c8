/* tok_internal.h - the tokenizer struct shared by tokenizer.c (loading),
 * tok_special.c (special tokens, end of generation), tok_encode.c (the
 * encode entry and the detokenizer), tok_vocab.c (lookups both encoders
 * share), tok_pre.c (BPE pre-tokenizers), tok_spm.c and tok_bpe.c. Not part
 * of the public interface. */
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

/* BPE pre-tokenizer families (tok_pre.c): llama.cpp's regex lists. */
enum rb_pre_family { RB_PRE_DEFAULT, RB_PRE_GPT2, RB_PRE_LLAMA3, RB_PRE_QWEN2, RB_PRE_STARCODER, RB_PRE_FALCON };

/* What a tokenizer.ggml.pre name sets, as llama.cpp's vocabulary loader. */
struct rb_pre_config {
    enum rb_pre_family family;
    int add_bos;       /* prompts start with BOS unless add_bos_token says otherwise */
    int ignore_merges; /* a whole word that is a token is taken as it is, before merging */
    int clean_spaces;  /* clean_up_tokenization_spaces (whole-text decoding only) */
};

enum { RB_FIM_PRE, RB_FIM_SUF, RB_FIM_MID, RB_FIM_PAD, RB_FIM_REP, RB_FIM_SEP };

/* A special token matched in raw text (control, user-defined, unknown). */
struct rb_special {
    int32_t id;
    uint32_t len;           /* of its text */
    uint8_t lstrip, rstrip; /* whitespace before / after it is dropped */
};

struct rb_tokenizer {
    enum rb_tok_kind kind;
    int32_t n_vocab;

    /* every token's text, copied out of the file so we outlive it */
    char *text;           /* all pieces back to back */
    size_t *piece_off;    /* [n_vocab] */
    uint32_t *piece_len;  /* [n_vocab] */
    float *scores;        /* [n_vocab], SPM merge priority (0 when absent) */
    uint8_t *types;       /* [n_vocab], RB_TT_*, after llama.cpp's overrides by text */

    /* text -> id: open addressing over ids, -1 = empty slot; the last of
     * duplicate texts wins, as in llama.cpp's token_to_id map */
    int32_t *slots;
    size_t slot_mask;

    int32_t bos, eos, unk, pad; /* -1 when none */
    int32_t eot, eom;           /* end of turn / of message, by key or by text; -1 when none */
    int32_t fim[6];             /* fill-in-the-middle: RB_FIM_*, by key or by text; -1 when none */
    int add_bos, add_eos, add_space_prefix;
    struct rb_pre_config pre;   /* BPE only */

    /* SPM: id of <0xNN>; BPE: id of the single mapped character of byte NN (-1 if none) */
    int32_t byte_ids[256];

    /* control, user-defined and unknown tokens, longest text first: cut out
     * of raw text before encoding (user-defined ones even when special
     * tokens are not parsed), as llama.cpp's tokenizer_st_partition */
    struct rb_special *specials;
    int32_t n_specials;
    size_t max_piece; /* most bytes one rb_detok_push can write */

    /* ids that end a turn, ascending */
    int32_t *eog;
    int32_t n_eog;

    /* BPE only */
    struct rb_merge_slot *merges;
    size_t merge_mask;
    uint16_t byte_to_cpt[256]; /* GPT-2's bytes_to_unicode */
    int16_t cpt_to_byte[324];  /* its inverse over code points 0..323, -1 elsewhere */
};

/* ---- tok_vocab.c: lookups ---- */

/* Build the text -> id table over every non-empty piece; -1 on out of memory. */
int rb_tok_build_hash(struct rb_tokenizer *t);
/* Lookup of a piece's text; -1 when no token has it. */
int32_t rb_tok_find(const struct rb_tokenizer *t, const char *s, size_t n);

/* An empty merge table for n merges (-1 on out of memory), then add each;
 * a repeated pair keeps its first rank. */
int rb_tok_merges_init(struct rb_tokenizer *t, size_t n);
void rb_tok_merge_add(struct rb_tokenizer *t, int32_t left, int32_t right, int32_t rank, int32_t result);
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

/* ---- tok_pre.c: BPE pre-tokenizers ---- */

/* The settings of a tokenizer.ggml.pre name ("" = absent = "default");
 * -1 with err naming it when unknown or not implemented. */
int rb_pre_lookup(const char *name, struct rb_pre_config *out, char *err);
const char *rb_pre_family_name(enum rb_pre_family f);
/* The class bits the splitters read, for one code point. */
uint8_t rb_pre_class(uint32_t cp);
/* Cut n code points (their classes in cls) into words; writes each word's
 * end (exclusive) to ends and returns the count. ends and tmp hold n each. */
size_t rb_pre_split(enum rb_pre_family family, const uint32_t *cpts, const uint8_t *cls, size_t n, size_t *ends,
                    size_t *tmp);

/* ---- tok_special.c ---- */

/* After the ids given by keys are loaded: find eot/eom/FIM tokens by text
 * where no key named them, build the end-of-generation set, the special
 * tokens and their strip flags (model_name: general.name, pre_name:
 * tokenizer.ggml.pre, "" when absent). -1 on out of memory. */
int rb_tok_specials_init(struct rb_tokenizer *t, const char *model_name, const char *pre_name, char *err);

/* Cut text at every special token (control and unknown ones only when
 * parse_special), longest first, as llama.cpp's tokenizer_st_partition.
 * a and b must have room for 2 * len + 1 fragments each; returns the one
 * holding the result and its count in *n_frags. */
struct rb_fragment {
    size_t off, len; /* a run of text to encode (id < 0) ... */
    int32_t id;      /* ... or a special token */
};
const struct rb_fragment *rb_tok_partition(const struct rb_tokenizer *t, const char *text, size_t len,
                                           int parse_special, struct rb_fragment *a, struct rb_fragment *b,
                                           size_t *n_frags);

/* ---- the two encoders, over one non-empty run of text (BOS and special
 * tokens are handled by the caller). space_prefix: SPM's leading U+2581. ---- */
int rb_spm_encode(const struct rb_tokenizer *t, const char *text, size_t len, int space_prefix,
                  struct rb_tok_out *out, char *err);
int rb_bpe_encode(const struct rb_tokenizer *t, const char *text, size_t len, struct rb_tok_out *out, char *err);

#endif
