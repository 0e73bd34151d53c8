/* tokenizer.c - loading a GGUF vocabulary: every array checked, special
 * ids, flags and the pre-tokenizer with llama.cpp b4748's defaults.
 *
 * Lookups live in tok_vocab.c, special tokens and the end-of-generation set
 * in tok_special.c, encoding and the streaming detokenizer in tok_encode.c,
 * the encoders in tok_spm.c (SentencePiece, "llama") and tok_bpe.c
 * (byte-level BPE, "gpt2", cut into words by tok_pre.c); together they
 * reproduce llama.cpp's tokenizers token for token, so our prompts match
 * the reference runtime's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_PRE "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"

/* A short printable excerpt of untrusted text for error messages. */
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
    int64_t i = rb_gguf_find_key(f, key);
    *missing = i < 0;
    if (i < 0) {
        if (required)
            snprintf(err, RB_ERR_MAX, "%s: missing", key);
        return NULL;
    }
    const struct gguf_kv *kv = &f->kv[i];
    if (kv->type != GGUF_TYPE_ARRAY) {
        snprintf(err, RB_ERR_MAX, "%s: expected array of %s, got %s", key, rb_gguf_type_name(elem),
                 rb_gguf_type_name(kv->type));
        return NULL;
    }
    if (kv->arr_type != elem) {
        snprintf(err, RB_ERR_MAX, "%s: expected array of %s, got array of %s", key, rb_gguf_type_name(elem),
                 rb_gguf_type_name(kv->arr_type));
        return NULL;
    }
    return kv;
}

/* llama.cpp names an empty token "[EMPTY_<id>]" (so it can be looked up
 * and printed like any other); so do we. */
#define EMPTY_NAME_MAX 24

static size_t empty_name(int32_t id, char *buf) {
    return (size_t)snprintf(buf, EMPTY_NAME_MAX, "[EMPTY_%d]", (int)id);
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
        struct gguf_str s = rb_gguf_arr_str(kv, i);
        uint64_t n = s.len ? s.len : EMPTY_NAME_MAX;
        if (!s.data || n > UINT32_MAX || n > SIZE_MAX - total) {
            snprintf(err, RB_ERR_MAX, "%s: token %" PRIu64 " unreadable", KEY_TOKENS, i);
            return -1;
        }
        total += (size_t)n;
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
        struct gguf_str s = rb_gguf_arr_str(kv, (uint64_t)i);
        size_t n = (size_t)s.len;
        if (n)
            memcpy(t->text + off, s.data, n);
        else
            n = empty_name(i, t->text + off);
        t->piece_off[i] = off;
        t->piece_len[i] = (uint32_t)n;
        off += n;
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
    if (rb_gguf_find_key(f, key) < 0)
        return 0;
    uint32_t u;
    int32_t s;
    char err2[RB_ERR_MAX];
    if (rb_gguf_get_u32(f, key, &u, err) != 0) {
        if (rb_gguf_get_i32(f, key, &s, err2) == 0 && s == -1) {
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
    if (rb_gguf_find_key(f, key) < 0)
        return 0;
    return rb_gguf_get_bool(f, key, flag, err);
}

/* The special ids and flags: llama.cpp's defaults for the vocabulary kind
 * and pre-tokenizer, then whatever the file's keys say. */
static int load_specials(struct rb_tokenizer *t, const struct gguf_file *f, char *err) {
    /* SPM has <unk> <s> </s> at 0 1 2, adds BOS and a leading space */
    int spm = t->kind == RB_TOK_SPM;
    t->unk = spm ? 0 : -1;
    t->bos = spm ? 1 : -1;
    t->eos = spm ? 2 : -1;
    t->pad = t->eot = t->eom = -1;
    for (int i = 0; i < 6; i++)
        t->fim[i] = -1;
    if (t->bos >= t->n_vocab) t->bos = -1;
    if (t->eos >= t->n_vocab) t->eos = -1;
    t->add_bos = spm || t->pre.add_bos;
    t->add_eos = 0;
    t->add_space_prefix = spm;
    const struct { const char *key; int32_t *id; } ids[] = {
        { "tokenizer.ggml.bos_token_id", &t->bos },
        { "tokenizer.ggml.eos_token_id", &t->eos },
        { "tokenizer.ggml.eot_token_id", &t->eot },
        { "tokenizer.ggml.eom_token_id", &t->eom },
        { "tokenizer.ggml.unknown_token_id", &t->unk },
        { "tokenizer.ggml.padding_token_id", &t->pad },
        { "tokenizer.ggml.fim_pre_token_id", &t->fim[RB_FIM_PRE] },
        { "tokenizer.ggml.fim_suf_token_id", &t->fim[RB_FIM_SUF] },
        { "tokenizer.ggml.fim_mid_token_id", &t->fim[RB_FIM_MID] },
        { "tokenizer.ggml.fim_pad_token_id", &t->fim[RB_FIM_PAD] },
        { "tokenizer.ggml.fim_rep_token_id", &t->fim[RB_FIM_REP] },
        { "tokenizer.ggml.fim_sep_token_id", &t->fim[RB_FIM_SEP] },
        /* older names of the first three, read last as llama.cpp does */
        { "tokenizer.ggml.prefix_token_id", &t->fim[RB_FIM_PRE] },
        { "tokenizer.ggml.suffix_token_id", &t->fim[RB_FIM_SUF] },
        { "tokenizer.ggml.middle_token_id", &t->fim[RB_FIM_MID] },
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (load_special(t, f, ids[i].key, ids[i].id, err))
            return -1;
    if (load_flag(f, "tokenizer.ggml.add_bos_token", &t->add_bos, err) ||
        load_flag(f, "tokenizer.ggml.add_eos_token", &t->add_eos, err) ||
        load_flag(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err))
        return -1;
    return 0;
}

/* An optional string key, with its length (NULL when absent); -1 when it
 * is not a string. */
static int opt_string(const struct gguf_file *f, const char *key, struct gguf_str *out, char *err) {
    out->data = NULL;
    out->len = 0;
    int64_t i = rb_gguf_find_key(f, key);
    if (i < 0)
        return 0;
    const struct gguf_kv *kv = &f->kv[i];
    if (kv->type != GGUF_TYPE_STRING) {
        snprintf(err, RB_ERR_MAX, "%s: expected string, got %s", key, rb_gguf_type_name(kv->type));
        return -1;
    }
    memcpy(&out->len, kv->value, 8);
    out->data = (const char *)kv->value + 8;
    return 0;
}

/* The key's string as a C string (truncated to cap - 1; "" when absent);
 * a NUL byte inside becomes 0x01, so a search in it still sees what follows. */
static void copy_str(struct gguf_str s, char *buf, size_t cap) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = s.data[i] ? s.data[i] : '\x01';
    buf[n] = '\0';
}

/* The vocabulary kind and, for BPE, its pre-tokenizer. */
static int load_kind(struct rb_tokenizer *t, const struct gguf_file *f, char *pre_name, size_t cap, char *err) {
    struct gguf_str model, pre;
    if (opt_string(f, KEY_MODEL, &model, err) || opt_string(f, KEY_PRE, &pre, err))
        return -1;
    char ex[64];
    if (!model.data) {
        snprintf(err, RB_ERR_MAX, "%s: missing", KEY_MODEL);
        return -1;
    }
    if (model.len == 5 && memcmp(model.data, "llama", 5) == 0) {
        t->kind = RB_TOK_SPM; /* llama.cpp reads no pre-tokenizer for SPM */
    } else if (model.len == 4 && memcmp(model.data, "gpt2", 4) == 0) {
        t->kind = RB_TOK_BPE;
    } else {
        snprintf(err, RB_ERR_MAX, "%s: unsupported tokenizer '%s' (rbee supports 'llama' and 'gpt2')", KEY_MODEL,
                 excerpt(model.data, (size_t)model.len, ex, sizeof ex));
        return -1;
    }
    copy_str(pre, pre_name, cap);
    if (t->kind != RB_TOK_BPE)
        return 0;
    if (pre.len >= cap || memchr(pre_name, 1, strlen(pre_name))) { /* no name is that long or holds a NUL */
        snprintf(err, RB_ERR_MAX, "%s: unknown pre-tokenizer '%s'", KEY_PRE,
                 excerpt(pre.data, (size_t)pre.len, ex, sizeof ex));
        return -1;
    }
    return rb_pre_lookup(pre_name, &t->pre, err);
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
    if (rb_tok_merges_init(t, (size_t)kv->arr_len) != 0) {
        snprintf(err, RB_ERR_MAX, "%s: out of memory", KEY_MERGES);
        return -1;
    }

    char *joined = NULL;
    size_t joined_cap = 0;
    int rc = 0;
    for (uint64_t r = 0; r < kv->arr_len && rc == 0; r++) {
        struct gguf_str m = rb_gguf_arr_str(kv, r);
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
        rb_tok_merge_add(t, left, right, (int32_t)r, result);
    }
    free(joined);
    return rc;
}

/* The most bytes one rb_detok_push can write: every piece byte may come
 * out as U+FFFD, plus one held back from before. */
static void find_max_piece(struct rb_tokenizer *t) {
    size_t longest = 0;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->piece_len[id] > longest)
            longest = t->piece_len[id];
    t->max_piece = 3 * longest + 3;
}

int rb_tokenizer_load(struct rb_tokenizer **out, const struct gguf_file *f, char *err) {
    *out = NULL;
    struct rb_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, RB_ERR_MAX, "tokenizer: out of memory");
        return -1;
    }
    char pre_name[64], model_name[1024];
    struct gguf_str name;
    if (load_kind(t, f, pre_name, sizeof pre_name, err) || opt_string(f, "general.name", &name, err))
        goto fail;
    copy_str(name, model_name, sizeof model_name);
    if (load_pieces(t, f, err) || load_scores_and_types(t, f, err) || load_specials(t, f, err))
        goto fail;
    if (rb_tok_build_hash(t) != 0) {
        snprintf(err, RB_ERR_MAX, "tokenizer: out of memory");
        goto fail;
    }
    build_byte_map(t);
    find_byte_tokens(t);
    if (t->kind == RB_TOK_BPE && load_merges(t, f, err) != 0)
        goto fail;
    if (rb_tok_specials_init(t, model_name, pre_name, err) != 0)
        goto fail;
    find_max_piece(t);
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
    free(t->specials);
    free(t->eog);
    free(t);
}

enum rb_tok_kind rb_tokenizer_kind(const struct rb_tokenizer *t) { return t->kind; }
int32_t rb_tokenizer_n_vocab(const struct rb_tokenizer *t) { return t->n_vocab; }
int32_t rb_tokenizer_bos(const struct rb_tokenizer *t) { return t->bos; }
int32_t rb_tokenizer_eos(const struct rb_tokenizer *t) { return t->eos; }
int rb_tokenizer_add_bos(const struct rb_tokenizer *t) { return t->add_bos; }
int rb_tokenizer_add_eos(const struct rb_tokenizer *t) { return t->add_eos; }
const char *rb_tokenizer_pre(const struct rb_tokenizer *t) {
    return t->kind == RB_TOK_BPE ? rb_pre_family_name(t->pre.family) : NULL;
}

const int32_t *rb_tokenizer_eog(const struct rb_tokenizer *t, int32_t *n) {
    *n = t->n_eog;
    return t->eog;
}

int rb_tokenizer_is_eog(const struct rb_tokenizer *t, int32_t id) {
    for (int32_t lo = 0, hi = t->n_eog; lo < hi;) { /* binary search: the list is short, but sorted anyway */
        int32_t mid = lo + (hi - lo) / 2;
        if (t->eog[mid] == id)
            return 1;
        if (t->eog[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}
size_t rb_tokenizer_max_piece(const struct rb_tokenizer *t) { return t->max_piece > 64 ? t->max_piece : 64; }

const char *rb_tokenizer_piece(const struct rb_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = t->piece_len[id];
    return t->text + t->piece_off[id];
}

