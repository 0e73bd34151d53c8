/* api.c - the parts of rbee.h that forward to the tokenizer and kernels. */
#include <stdlib.h>

#include "model.h"
#include "tokenizer.h"
#include "../simd/kernels.h"

int32_t rbee_token_bos(const rbee_model *m) { return rb_tokenizer_bos(m->tok); }
int32_t rbee_token_eos(const rbee_model *m) { return rb_tokenizer_eos(m->tok); }
int rbee_add_bos(const rbee_model *m) { return rb_tokenizer_add_bos(m->tok); }
int rbee_token_is_eog(const rbee_model *m, int32_t id) { return rb_tokenizer_is_eog(m->tok, id); }

const char *rbee_token_text(const rbee_model *m, int32_t id, size_t *len) {
    return rb_tokenizer_piece(m->tok, id, len);
}

int64_t rbee_tokenize(const rbee_model *m, const char *text, size_t len, int add_bos, int parse_special,
                      int32_t *ids, int64_t cap, char *err) {
    return rb_tokenize(m->tok, text, len, add_bos, parse_special, ids, cap, err);
}

struct rbee_detok {
    const struct rb_tokenizer *tok;
    struct rb_detok state;
};

rbee_detok *rbee_detok_new(const rbee_model *m) {
    rbee_detok *d = malloc(sizeof *d);
    if (!d) return NULL;
    d->tok = m->tok;
    rb_detok_init(&d->state);
    return d;
}

size_t rbee_detok_push(rbee_detok *d, int32_t id, char *out, size_t cap) {
    return rb_detok_push(d->tok, &d->state, id, out, cap);
}

size_t rbee_detok_flush(rbee_detok *d, char *out, size_t cap) {
    return rb_detok_flush(&d->state, out, cap);
}

void rbee_detok_free(rbee_detok *d) { free(d); }
size_t rbee_detok_max_piece(const rbee_model *m) { return rb_tokenizer_max_piece(m->tok); }

const char *rbee_isa(void) { return rb_kernels()->isa; }
