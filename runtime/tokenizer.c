/* tokenizer.c - loading a GGUF vocabulary (every array checked), the
 * text -> id hash both encoders share, and the streaming detokenizer.
 *
 * The encoders live in tok_spm.c (SentencePiece, "llama") and tok_bpe.c
 * (byte-level BPE, "gpt2"); both reproduce llama.cpp's tokenizers token for
 * token, so our prompts match the reference runtime's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"

/* ---- text -> id hash ---- */

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

/* Insert every non-empty piece; a later duplicate replaces the earlier id. */
static int build_hash(struct rb_tokenizer *t) {
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

/* ---- BPE merge table: (left, right) -> rank, result ---- */

static uint64_t merge_key(int32_t left, int32_t right) {
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

static size_t merge_hash(uint64_t key) {
    key ^= key >> 33; /* murmur3 finalizer: spread the two ids over all bits */
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key;
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

/* ---- loading ---- */

/* A short printable excerpt of untrusted text for error messages. */
/* ------------------------------------------------------------ bigram heap */

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

static const char *excerpt(const char *s, size_t n, char *buf, size_t cap) {
    size_t j = 0;
    for (size_t i = 0; i < n && j + 5 < cap; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != 0x7F && c != '\'')
            buf[j++] = (char)c;
        else
            j += (size_t)snprintf(buf + j, cap - j, "\\x%02x", c);
    }
    buf[j < cap ? j : cap - 1] = '\0';
    return buf;
}

/* The kv of an array whose elements must have type `elem`; NULL with err if
 * the key is absent (only when required) or of another type. */
static const struct gguf_kv *find_array(const struct gguf_file *f, const char *key, enum gguf_type elem,
                                        int required, int *missing, char *err) {
    int64_t i = gguf_find_key(f, key);
    *missing = i < 0;
    if (i < 0) {
        if (required)
            snprintf(err, RB_ERR_MAX, "%s: missing", key);
        return NULL;
    }
    const struct gguf_kv *kv = &f->kv[i];
    if (kv->type != GGUF_TYPE_ARRAY) {
        snprintf(err, RB_ERR_MAX, "%s: expected array of %s, got %s", key, gguf_type_name(elem),
                 gguf_type_name(kv->type));
        return NULL;
    }
    if (kv->arr_type != elem) {
        snprintf(err, RB_ERR_MAX, "%s: expected array of %s, got array of %s", key, gguf_type_name(elem),
                 gguf_type_name(kv->arr_type));
        return NULL;
    }
    return kv;
}

static int load_pieces(struct rb_tokenizer *t, const struct gguf_file *f, char *err) {
    int missing;
    const struct gguf_kv *kv = find_array(f, KEY_TOKENS, GGUF_TYPE_STRING, 1, &missing, err);
    if (!kv)
        return -1;
    if (kv->arr_len == 0) {
        snprintf(err, RB_ERR_MAX, "%s: empty vocabulary", KEY_TOKENS);
        return -1;
    }
    if (kv->arr_len > INT32_MAX) {
        snprintf(err, RB_ERR_MAX, "%s: %" PRIu64 " tokens is more than token ids can hold", KEY_TOKENS, kv->arr_len);
        return -1;
    }
    t->n_vocab = (int32_t)kv->arr_len;
    size_t total = 0;
    for (uint64_t i = 0; i < kv->arr_len; i++) {
        struct gguf_str s = gguf_arr_str(kv, i);
        if (!s.data || s.len > UINT32_MAX || s.len > SIZE_MAX - total) {
            snprintf(err, RB_ERR_MAX, "%s: token %" PRIu64 " unreadable", KEY_TOKENS, i);
            return -1;
        }
        total += (size_t)s.len;
    }
    t->text = malloc(total ? total : 1);
    t->piece_off = malloc((size_t)t->n_vocab * sizeof *t->piece_off);
    t->piece_len = malloc((size_t)t->n_vocab * sizeof *t->piece_len);
    if (!t->text || !t->piece_off || !t->piece_len) {
        snprintf(err, RB_ERR_MAX, "%s: out of memory for %d tokens", KEY_TOKENS, t->n_vocab);
        return -1;
    }
    size_t off = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        struct gguf_str s = gguf_arr_str(kv, (uint64_t)i);
        memcpy(t->text + off, s.data, (size_t)s.len);
        t->piece_off[i] = off;
        t->piece_len[i] = (uint32_t)s.len;
        off += (size_t)s.len;
    }
    return 0;
}

/* Scores and token types are optional (llama.cpp defaults: 0 and NORMAL),
 * but when present they must be the right type and length. */
static int load_scores_and_types(struct rb_tokenizer *t, const struct gguf_file *f, char *err) {
    size_t n = (size_t)t->n_vocab;
    t->scores = calloc(n, sizeof *t->scores);
    t->types = malloc(n);
    if (!t->scores || !t->types) {
        snprintf(err, RB_ERR_MAX, "tokenizer: out of memory");
        return -1;
    }
    memset(t->types, RB_TT_NORMAL, n);

    int missing;
    const struct gguf_kv *kv = find_array(f, KEY_SCORES, GGUF_TYPE_FLOAT32, 0, &missing, err);
    if (!kv && !missing)
        return -1;
    if (kv) {
        if (kv->arr_len != n) {
            snprintf(err, RB_ERR_MAX, "%s: %" PRIu64 " scores for %zu tokens", KEY_SCORES, kv->arr_len, n);
            return -1;
        }
        memcpy(t->scores, kv->value, n * sizeof(float));
    }

    kv = find_array(f, KEY_TYPES, GGUF_TYPE_INT32, 0, &missing, err);
    if (!kv && !missing)
        return -1;
    if (kv) {
        if (kv->arr_len != n) {
            snprintf(err, RB_ERR_MAX, "%s: %" PRIu64 " types for %zu tokens", KEY_TYPES, kv->arr_len, n);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            int32_t type;
            memcpy(&type, kv->value + i * 4, 4);
            if (type < RB_TT_UNDEFINED || type > RB_TT_BYTE) {
                snprintf(err, RB_ERR_MAX, "%s: token %zu has unknown type %d", KEY_TYPES, i, type);
                return -1;
            }
            t->types[i] = (uint8_t)type;
        }
    }
    return 0;
}

/* A special token id: absent keeps *id; 4294967295 (or -1) means "none". */
static int load_special(const struct rb_tokenizer *t, const struct gguf_file *f, const char *key, int32_t *id,
                        char *err) {
    if (gguf_find_key(f, key) < 0)
        return 0;
    uint32_t u;
    int32_t s;
    char err2[RB_ERR_MAX];
    if (gguf_get_u32(f, key, &u, err) != 0) {
        if (gguf_get_i32(f, key, &s, err2) == 0 && s == -1) {
            *id = -1;
            return 0;
        }
        return -1;
    }
    if (u == UINT32_MAX) {
        *id = -1;
        return 0;
    }
    if (u >= (uint32_t)t->n_vocab) {
        snprintf(err, RB_ERR_MAX, "%s: token id %" PRIu32 " out of range (vocabulary has %d tokens)", key, u,
                 t->n_vocab);
        return -1;
    }
    *id = (int32_t)u;
    return 0;
}

static int load_flag(const struct gguf_file *f, const char *key, int *flag, char *err) {
    if (gguf_find_key(f, key) < 0)
        return 0;
    return gguf_get_bool(f, key, flag, err);
}

static int load_specials(struct rb_tokenizer *t, const struct gguf_file *f, char *err) {
    /* llama.cpp's defaults: SPM has <unk> <s> </s> at 0 1 2 and adds BOS and
     * a leading space; GPT-2 BPE adds neither. */
    int spm = t->kind == RB_TOK_SPM;
    t->unk = spm ? 0 : -1;
    t->bos = spm ? 1 : -1;
    t->eos = spm ? 2 : -1;
    t->pad = -1;
    if (t->bos >= t->n_vocab) t->bos = -1;
    if (t->eos >= t->n_vocab) t->eos = -1;
    t->add_bos = spm;
    t->add_space_prefix = spm;
    if (load_special(t, f, "tokenizer.ggml.bos_token_id", &t->bos, err) ||
        load_special(t, f, "tokenizer.ggml.eos_token_id", &t->eos, err) ||
        load_special(t, f, "tokenizer.ggml.unknown_token_id", &t->unk, err) ||
        load_special(t, f, "tokenizer.ggml.padding_token_id", &t->pad, err) ||
        load_flag(f, "tokenizer.ggml.add_bos_token", &t->add_bos, err) ||
        load_flag(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err))
        return -1;
    return 0;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes take the code points 256, 257, ... in byte order, so
 * every byte has a visible character and token texts stay printable. */
static void build_byte_map(struct rb_tokenizer *t) {
    uint32_t next = 256;
    for (int i = 0; i < 324; i++)
        t->cpt_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = printable ? (uint32_t)b : next++;
        t->byte_to_cpt[b] = (uint16_t)cp;
        t->cpt_to_byte[cp] = (int16_t)b;
    }
}

static void find_byte_tokens(struct rb_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char buf[8];
        size_t n;
        if (t->kind == RB_TOK_SPM) {
            n = (size_t)snprintf(buf, sizeof buf, "<0x%02X>", b);
        } else {
            n = rb_utf8_encode(t->byte_to_cpt[b], (uint8_t *)buf);
        }
        t->byte_ids[b] = rb_tok_find(t, buf, n);
    }
}

/* Merges are "left right" strings, rank = position; the split is at the
 * first space after the first byte (a piece may itself be a space). */
static int load_merges(struct rb_tokenizer *t, const struct gguf_file *f, char *err) {
    int missing;
    const struct gguf_kv *kv = find_array(f, KEY_MERGES, GGUF_TYPE_STRING, 1, &missing, err);
    if (!kv)
        return -1;
    if (kv->arr_len > INT32_MAX) {
        snprintf(err, RB_ERR_MAX, "%s: too many merges (%" PRIu64 ")", KEY_MERGES, kv->arr_len);
        return -1;
    }
    size_t cap = 16;
    while (cap < kv->arr_len * 2)
        cap *= 2;
    t->merges = malloc(cap * sizeof *t->merges);
    if (!t->merges) {
        snprintf(err, RB_ERR_MAX, "%s: out of memory", KEY_MERGES);
        return -1;
    }
    for (size_t i = 0; i < cap; i++)
        t->merges[i].key = RB_MERGE_EMPTY;
    t->merge_mask = cap - 1;

    char *joined = NULL;
    size_t joined_cap = 0;
    int rc = 0;
    for (uint64_t r = 0; r < kv->arr_len && rc == 0; r++) {
        struct gguf_str m = gguf_arr_str(kv, r);
        const char *space = m.len > 1 ? memchr(m.data + 1, ' ', (size_t)m.len - 1) : NULL;
        char ex[64];
        if (!space) {
            snprintf(err, RB_ERR_MAX, "%s: entry %" PRIu64 " '%s' has no space between two pieces", KEY_MERGES, r,
                     excerpt(m.data, (size_t)m.len, ex, sizeof ex));
            rc = -1;
            break;
        }
        size_t nl = (size_t)(space - m.data), nr = (size_t)m.len - nl - 1;
        int32_t left = rb_tok_find(t, m.data, nl);
        int32_t right = rb_tok_find(t, space + 1, nr);
        /* the merged piece is the two texts joined */
        if (nl + nr > joined_cap) {
            joined_cap = (nl + nr) * 2;
            char *p = realloc(joined, joined_cap);
            if (!p) {
                snprintf(err, RB_ERR_MAX, "%s: out of memory", KEY_MERGES);
                rc = -1;
                break;
            }
            joined = p;
        }
        memcpy(joined, m.data, nl);
        memcpy(joined + nl, space + 1, nr);
        int32_t result = rb_tok_find(t, joined, nl + nr);
        if (left < 0 || right < 0 || result < 0) {
            const char *what = left < 0 ? "left piece" : right < 0 ? "right piece" : "merged piece";
            snprintf(err, RB_ERR_MAX, "%s: entry %" PRIu64 " '%s': %s is not in the vocabulary", KEY_MERGES, r,
                     excerpt(m.data, (size_t)m.len, ex, sizeof ex), what);
            rc = -1;
            break;
        }
        uint64_t key = merge_key(left, right);
        size_t i = merge_hash(key) & t->merge_mask;
        while (t->merges[i].key != RB_MERGE_EMPTY && t->merges[i].key != key)
            i = (i + 1) & t->merge_mask;
        if (t->merges[i].key == RB_MERGE_EMPTY) { /* a repeated merge keeps its first rank */
            t->merges[i].key = key;
            t->merges[i].rank = (int32_t)r;
            t->merges[i].result = result;
        }
    }
    free(joined);
    return rc;
}

/* Longest text first, then lowest id (llama.cpp sorts its special-token
 * cache by length only). */
struct len_id {
    uint32_t len;
    int32_t id;
};

static int by_length_desc(const void *a, const void *b) {
    const struct len_id *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int find_user_tokens(struct rb_tokenizer *t, char *err) {
    size_t longest = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (t->piece_len[id] > longest)
            longest = t->piece_len[id];
        if (t->types[id] == RB_TT_USER_DEFINED && t->piece_len[id] > 0)
            t->n_user++;
    }
    /* every piece byte may come out as U+FFFD, plus one held back from before */
    t->max_piece = 3 * longest + 3;
    if (t->n_user == 0)
        return 0;
    t->user_ids = malloc((size_t)t->n_user * sizeof *t->user_ids);
    struct len_id *order = malloc((size_t)t->n_user * sizeof *order);
    if (!t->user_ids || !order) {
        free(order);
        snprintf(err, RB_ERR_MAX, "tokenizer: out of memory");
        return -1;
    }
    int32_t k = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->types[id] == RB_TT_USER_DEFINED && t->piece_len[id] > 0)
            order[k++] = (struct len_id){ t->piece_len[id], id };
    qsort(order, (size_t)t->n_user, sizeof *order, by_length_desc);
    for (k = 0; k < t->n_user; k++)
        t->user_ids[k] = order[k].id;
    free(order);
    return 0;
}

int rb_tokenizer_load(struct rb_tokenizer **out, const struct gguf_file *f, char *err) {
    *out = NULL;
    char model[32];
    if (gguf_get_str(f, KEY_MODEL, model, sizeof model, err) != 0)
        return -1;
    struct rb_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, RB_ERR_MAX, "tokenizer: out of memory");
        return -1;
    }
    if (strcmp(model, "llama") == 0) {
        t->kind = RB_TOK_SPM;
    } else if (strcmp(model, "gpt2") == 0) {
        t->kind = RB_TOK_BPE;
    } else {
        snprintf(err, RB_ERR_MAX, "%s: unsupported tokenizer '%s' (rbee supports 'llama' and 'gpt2')", KEY_MODEL,
                 model);
        free(t);
        return -1;
    }
    if (load_pieces(t, f, err) || load_scores_and_types(t, f, err) || load_specials(t, f, err))
        goto fail;
    if (build_hash(t) != 0) {
        snprintf(err, RB_ERR_MAX, "tokenizer: out of memory");
        goto fail;
    }
    if (find_user_tokens(t, err) != 0)
        goto fail;
    build_byte_map(t);
    find_byte_tokens(t);
    if (t->kind == RB_TOK_BPE && load_merges(t, f, err) != 0)
        goto fail;
    *out = t;
    return 0;
fail:
    rb_tokenizer_free(t);
    return -1;
}

void rb_tokenizer_free(struct rb_tokenizer *t) {
    if (!t)
        return;
    free(t->text);
    free(t->piece_off);
    free(t->piece_len);
    free(t->scores);
    free(t->types);
    free(t->slots);
    free(t->merges);
    free(t->user_ids);
    free(t);
}

enum rb_tok_kind rb_tokenizer_kind(const struct rb_tokenizer *t) { return t->kind; }
int32_t rb_tokenizer_n_vocab(const struct rb_tokenizer *t) { return t->n_vocab; }
int32_t rb_tokenizer_bos(const struct rb_tokenizer *t) { return t->bos; }
int32_t rb_tokenizer_eos(const struct rb_tokenizer *t) { return t->eos; }
int rb_tokenizer_add_bos(const struct rb_tokenizer *t) { return t->add_bos; }
size_t rb_tokenizer_max_piece(const struct rb_tokenizer *t) { return t->max_piece > 64 ? t->max_piece : 64; }

const char *rb_tokenizer_piece(const struct rb_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = t->piece_len[id];
    return t->text + t->piece_off[id];
}

/* ---- encoding ---- */

/* A run of the text to encode (id < 0) or a user-defined token found in it. */
struct fragment {
    size_t off, len;
    int32_t id;
};

/* Cut text at every occurrence of a user-defined token, longest tokens
 * first, each searched only in what earlier ones left as plain text (the
 * order llama.cpp's tokenizer_st_partition uses). Returns the count; frags
 * has room for 2 * len + 1. */
static size_t partition(const struct rb_tokenizer *t, const char *text, size_t len, struct fragment *frags) {
    size_t n = 1;
    frags[0] = (struct fragment){ 0, len, -1 };
    for (int32_t u = 0; u < t->n_user; u++) {
        int32_t id = t->user_ids[u];
        const char *piece = t->text + t->piece_off[id];
        size_t plen = t->piece_len[id];
        for (size_t i = 0; i < n; i++) {
            if (frags[i].id >= 0 || frags[i].len < plen)
                continue;
            const char *start = text + frags[i].off, *end = start + frags[i].len;
            const char *hit = NULL;
            for (const char *p = start; p + plen <= end; p++) {
                p = memchr(p, piece[0], (size_t)(end - p) - plen + 1);
                if (!p)
                    break;
                if (memcmp(p, piece, plen) == 0) {
                    hit = p;
                    break;
                }
            }
            if (!hit)
                continue;
            /* [before][token][after]: the after part is searched next round of i */
            size_t before = (size_t)(hit - start), after = frags[i].len - before - plen;
            size_t n_new = (before > 0) + 1 + (after > 0);
            memmove(&frags[i + n_new], &frags[i + 1], (n - i - 1) * sizeof *frags);
            size_t k = i, off = frags[i].off;
            if (before > 0)
                frags[k++] = (struct fragment){ off, before, -1 };
            frags[k++] = (struct fragment){ off + before, plen, id };
            if (after > 0)
                frags[k] = (struct fragment){ off + before + plen, after, -1 };
            n += n_new - 1;
            i = k - 1; /* continue with the after part (or the next fragment) */
        }
    }
    return n;
}

int64_t rb_tokenize(const struct rb_tokenizer *t, const char *text, size_t len, int add_bos, int32_t *ids,
                    int64_t cap, char *err) {
    struct rb_tok_out out = { ids, ids ? cap : 0, 0 };
    if (add_bos && t->bos >= 0)
        rb_tok_emit(&out, t->bos);
    if (len == 0) /* no text, no leading space either (as llama.cpp) */
        return out.n;
    struct fragment whole = { 0, len, -1 }, *frags = &whole;
    size_t n_frags = 1;
    if (t->n_user > 0) {
        if (len > SIZE_MAX / (2 * sizeof *frags) - 1 || !(frags = malloc((2 * len + 1) * sizeof *frags))) {
            snprintf(err, RB_ERR_MAX, "tokenize: out of memory for %zu bytes of text", len);
            return -1;
        }
        n_frags = partition(t, text, len, frags);
    }
    /* SPM puts its leading space in front of text that starts the input or
     * follows a user-defined token */
    int rc = 0, after_token = 1;
    for (size_t i = 0; i < n_frags && rc == 0; i++) {
        const struct fragment *fr = &frags[i];
        if (fr->id >= 0) {
            rb_tok_emit(&out, fr->id);
            after_token = 1;
        } else if (t->kind == RB_TOK_SPM) {
            rc = rb_spm_encode(t, text + fr->off, fr->len, t->add_space_prefix && after_token, &out, err);
            after_token = 0;
        } else {
            rc = rb_bpe_encode(t, text + fr->off, fr->len, &out, err);
        }
    }
    if (frags != &whole)
        free(frags);
    return rc == 0 ? out.n : -1;
}

/* ---- streaming decode ---- */

/* Bytes go out through a small UTF-8 assembler: a multi-byte character is
 * held in d->pending until complete, so a character split over byte tokens
 * (<0xE2><0x96><0x81>) is printed whole; bytes that cannot be part of any
 * character come out as U+FFFD. */
struct sink {
    char *out;
    size_t cap, n;
};

static void sink_put(struct sink *s, const void *p, size_t n) {
    if (n > s->cap - s->n) /* the caller's buffer is full: drop what does not fit */
        n = s->cap - s->n;
    memcpy(s->out + s->n, p, n);
    s->n += n;
}

static void put_replacement(struct sink *s) { sink_put(s, "\xEF\xBF\xBD", 3); }

static void put_byte(struct rb_detok *d, struct sink *s, uint8_t b) {
    if (d->n_pending > 0) {
        if ((b & 0xC0) == 0x80) {
            d->pending[d->n_pending++] = b;
            if (d->n_pending == rb_utf8_len(d->pending[0])) {
                sink_put(s, d->pending, (size_t)d->n_pending);
                d->n_pending = 0;
            }
            return;
        }
        put_replacement(s); /* an unfinished character, cut off */
        d->n_pending = 0;
    }
    if (b < 0x80)
        sink_put(s, &b, 1);
    else if (b >= 0xC0 && b < 0xF8)
        d->pending[d->n_pending++] = b;
    else
        put_replacement(s);
}

void rb_detok_init(struct rb_detok *d) {
    memset(d, 0, sizeof *d);
    d->at_start = 1;
}

/* SPM piece text: U+2581 stands for a space. */
static void spm_piece(struct rb_detok *d, struct sink *s, const char *p, size_t n, int strip_space) {
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && memcmp(p + i, "\xE2\x96\x81", 3) == 0) {
            if (!strip_space)
                put_byte(d, s, ' ');
            i += 3;
        } else {
            put_byte(d, s, (uint8_t)p[i]);
            i++;
        }
        strip_space = 0;
    }
}

/* BPE piece text: each character stands for one byte (bytes_to_unicode). */
static void bpe_piece(const struct rb_tokenizer *t, struct rb_detok *d, struct sink *s, const char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t used;
        uint32_t cp = rb_utf8_decode((const uint8_t *)p + i, n - i, &used);
        if (cp < 324 && t->cpt_to_byte[cp] >= 0) {
            put_byte(d, s, (uint8_t)t->cpt_to_byte[cp]);
        } else { /* not a mapped character: pass its bytes through */
            for (size_t k = 0; k < used; k++)
                put_byte(d, s, (uint8_t)p[i + k]);
        }
        i += used;
    }
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

size_t rb_detok_push(const struct rb_tokenizer *t, struct rb_detok *d, int32_t id, char *out, size_t cap) {
    struct sink s = { out, cap, 0 };
    if (id < 0 || id >= t->n_vocab)
        return 0;
    const char *p = t->text + t->piece_off[id];
    size_t n = t->piece_len[id];
    int type = t->types[id];
    if (t->kind == RB_TOK_SPM) {
        /* the space the encoder put in front of the text comes off the first piece */
        int strip = d->at_start && t->add_space_prefix;
        if (type == RB_TT_NORMAL || type == RB_TT_USER_DEFINED) {
            spm_piece(d, &s, p, n, strip);
            d->at_start = 0;
        } else if (type == RB_TT_BYTE && n == 6 && hex_digit(p[3]) >= 0 && hex_digit(p[4]) >= 0) {
            uint8_t b = (uint8_t)(hex_digit(p[3]) * 16 + hex_digit(p[4]));
            if (!(strip && b == ' '))
                put_byte(d, &s, b);
            d->at_start = 0;
        } else if (type == RB_TT_UNKNOWN) {
            spm_piece(d, &s, "\xE2\x96\x85", 3, 0); /* llama.cpp shows <unk> as U+2585 */
            d->at_start = 0;
        }
        /* control, unused and undefined tokens print nothing */
    } else if (type == RB_TT_NORMAL || type == RB_TT_USER_DEFINED) {
        bpe_piece(t, d, &s, p, n);
        d->at_start = 0;
    }
    return s.n;
}

size_t rb_detok_flush(struct rb_detok *d, char *out, size_t cap) {
    struct sink s = { out, cap, 0 };
    if (d->n_pending > 0)
        put_replacement(&s);
    d->n_pending = 0;
    return s.n;
}
