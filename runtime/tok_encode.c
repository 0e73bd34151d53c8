/* tok_encode.c - text -> ids (special tokens cut out first, then the
 * vocabulary's encoder over each run of text) and the streaming
 * detokenizer, ids -> UTF-8 text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

/* ---- encoding ---- */

int64_t rb_tokenize(const struct rb_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                    int32_t *ids, int64_t cap, char *err) {
    struct rb_tok_out out = { ids, ids ? cap : 0, 0 };
    int bos = add_bos > 0 || (add_bos < 0 && t->add_bos), eos = add_bos != 0 && t->add_eos;
    if (bos && t->bos >= 0)
        rb_tok_emit(&out, t->bos);
    int rc = 0;
    if (len > 0) { /* no text, no leading space either (as llama.cpp) */
        struct rb_fragment whole = { 0, len, -1 }, *bufs = NULL;
        const struct rb_fragment *frags = &whole;
        size_t n_frags = 1;
        if (t->n_specials > 0) {
            if (len > SIZE_MAX / (4 * sizeof *bufs) - 1 || !(bufs = malloc((4 * len + 2) * sizeof *bufs))) {
                snprintf(err, RB_ERR_MAX, "tokenize: out of memory for %zu bytes of text", len);
                return -1;
            }
            frags = rb_tok_partition(t, text, len, parse_special, bufs, bufs + 2 * len + 1, &n_frags);
        }
        /* SPM puts its leading space in front of text that starts the input or
         * follows a special token */
        int after_token = 1;
        for (size_t i = 0; i < n_frags && rc == 0; i++) {
            const struct rb_fragment *fr = &frags[i];
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
        free(bufs);
    }
    if (eos && t->eos >= 0)
        rb_tok_emit(&out, t->eos);
    return rc == 0 ? out.n : -1;
}

/* ---- streaming decode ---- */

/* Bytes go out through a small UTF-8 assembler: a multi-byte character is
 * held in d->pending until complete, so a character split over byte tokens
 * (<0xE2><0x96><0x81>) is printed whole. Only well-formed UTF-8 comes out
 * (Unicode's table 3-7: no overlong forms, surrogates or values past
 * U+10FFFF), so a client can always parse what a server streams. A byte
 * that cannot continue the character at hand ends it: the bytes held so
 * far become one U+FFFD (the "maximal subpart" rule, as Python's and the
 * WHATWG decoders replace), and the byte is read again on its own. */
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

/* Can b follow the n_pending bytes held? Only the second byte of a
 * character has a range narrower than 80..BF, set by the lead byte. */
static int continues(const struct rb_detok *d, uint8_t b) {
    if (d->n_pending > 1) return (b & 0xC0) == 0x80;
    switch (d->pending[0]) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF; /* below: overlong */
    case 0xED: return b >= 0x80 && b <= 0x9F; /* above: surrogates */
    case 0xF0: return b >= 0x90 && b <= 0xBF; /* below: overlong */
    case 0xF4: return b >= 0x80 && b <= 0x8F; /* above: past U+10FFFF */
    default: return (b & 0xC0) == 0x80;
    }
}

static void put_byte(struct rb_detok *d, struct sink *s, uint8_t b) {
    if (d->n_pending > 0) {
        if (continues(d, b)) {
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
    else if (b >= 0xC2 && b <= 0xF4) /* C0, C1 only start overlong forms; F5.. values past U+10FFFF */
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
        }
        /* unknown, control, unused and undefined tokens print nothing, as
         * llama.cpp's token_to_piece without `special` (b4748; older builds
         * showed <unk> as U+2585) */
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
