/* context.c - create and free a context; rbee_eval splits a batch into
 * forward calls and keeps the logits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "../quant/quant.h"

struct rbee_context_params rbee_context_default_params(void) {
    struct rbee_context_params p = { .n_ctx = 0, .n_threads = 1, .type_k = NULL, .type_v = NULL };
    return p;
}

static size_t max_z(size_t a, size_t b) { return a > b ? a : b; }

/* Largest activation row any weight of the model needs, in bytes. */
static size_t act_row_bytes(const struct rb_weight *w) {
    uint32_t at = rb_traits(w->type)->vec_dot_type;
    return at == RB_TYPE_F32 ? 0 : (size_t)rb_row_bytes(at, w->n_in);
}

static size_t max_act_row(const struct rbee_model *m) {
    size_t best = act_row_bytes(&m->output);
    for (int il = 0; il < m->hp.n_layers; il++) {
        const struct rb_layer *l = &m->layers[il];
        const struct rb_weight *ws[] = { &l->wq, &l->wk, &l->wv, &l->wo,
                                         &l->w_gate, &l->w_up, &l->w_down };
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i]->data) best = max_z(best, act_row_bytes(ws[i]));
    }
    return best;
}

/* count_only: add n floats to scratch_bytes and allocate nothing (what
 * rbee_context_memory reports); else calloc them too. */
static void *alloc_floats(struct rbee_context *c, size_t n, int count_only, int *failed) {
    c->scratch_bytes += n * sizeof(float);
    if (count_only) return NULL;
    void *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *failed = 1;
    return p;
}

/* Every scratch buffer of a context whose n_ctx, n_batch, n_threads and KV
 * shape are set; count_only: only their sizes, into c->scratch_bytes. */
static int alloc_scratch(struct rbee_context *c, int count_only, char *err) {
    const struct rb_hparams *hp = &c->m->hp;
    size_t b = (size_t)c->n_batch, e = (size_t)hp->n_embd;
    size_t q_dim = (size_t)hp->n_heads * hp->head_dim, kv_dim = (size_t)hp->n_heads_kv * hp->head_dim;
    int failed = 0, co = count_only;
    c->x = alloc_floats(c, b * e, co, &failed);
    c->xn = alloc_floats(c, b * e, co, &failed);
    c->q = alloc_floats(c, b * q_dim, co, &failed);
    c->k = alloc_floats(c, b * kv_dim, co, &failed);
    c->v = alloc_floats(c, b * kv_dim, co, &failed);
    c->att = alloc_floats(c, b * q_dim, co, &failed);
    c->proj = alloc_floats(c, b * e, co, &failed);
    c->gate = alloc_floats(c, b * (size_t)hp->n_ff, co, &failed);
    c->up = alloc_floats(c, b * (size_t)hp->n_ff, co, &failed);
    c->act_row_max = (max_act_row(c->m) + 63) / 64 * 64; /* rows start on cache lines */
    c->act = alloc_floats(c, (3 * b * c->act_row_max + 3) / 4, co, &failed);
    c->att_scratch_floats = (rb_attention_scratch_floats(&c->kv) + 15) / 16 * 16;
    c->att_scratch = alloc_floats(c, (size_t)c->n_threads * c->att_scratch_floats, co, &failed);
    c->rope_cos = alloc_floats(c, b * (size_t)(hp->rope_dim / 2 + 1), co, &failed);
    c->rope_sin = alloc_floats(c, b * (size_t)(hp->rope_dim / 2 + 1), co, &failed);
    c->embd_row = alloc_floats(c, e, co, &failed);
    c->logits_cap = 1;
    c->logits = alloc_floats(c, (size_t)hp->n_vocab, co, &failed);
    if (failed) { snprintf(err, RB_ERR_MAX, "out of memory for scratch buffers"); return -1; }
    return 0;
}

/* Check p against m and fill in the defaults: context size, threads, KV types. */
static int resolve_params(const rbee_model *m, const struct rbee_context_params *p, int *n_ctx_out,
                          int *n_threads_out, uint32_t *tk, uint32_t *tv, char *err) {
    if (!m->arch) {
        snprintf(err, RB_ERR_MAX, "the model holds a vocabulary only (loaded with rbee_vocab_load): it cannot run");
        return -1;
    }
    int n_ctx = p->n_ctx > 0 ? p->n_ctx : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    int n_threads = p->n_threads == 0 ? 1 : p->n_threads;
    if (p->n_ctx < 0 || n_ctx > (1 << 24)) {
        snprintf(err, RB_ERR_MAX, "context size %d is out of range 1..%d", p->n_ctx, 1 << 24);
        return -1;
    }
    if (n_threads < 1 || n_threads > 1024) {
        snprintf(err, RB_ERR_MAX, "thread count %d is out of range 1..1024", p->n_threads);
        return -1;
    }
    if (m->pos_embd.data && n_ctx > m->hp.n_ctx_train) { /* learned positions end at the table */
        snprintf(err, RB_ERR_MAX, "context size %d is more than the %d positions the model has learned",
                 n_ctx, m->hp.n_ctx_train);
        return -1;
    }
    *tk = *tv = RB_TYPE_F16;
    const char *bad = NULL;
    if (p->type_k && rb_kv_type_parse(p->type_k, tk)) bad = p->type_k;
    else if (p->type_v && rb_kv_type_parse(p->type_v, tv)) bad = p->type_v;
    if (bad) {
        snprintf(err, RB_ERR_MAX, "KV cache type '%.32s' is not one of f32, f16, q8_0, q4_0", bad);
        return -1;
    }
    *n_ctx_out = n_ctx;
    *n_threads_out = n_threads;
    return 0;
}

int rbee_context_new(rbee_context **out, const rbee_model *m,
                     const struct rbee_context_params *p, char *err) {
    *out = NULL;
    struct rbee_context_params d = rbee_context_default_params();
    if (!p) p = &d;
    int n_ctx, n_threads;
    uint32_t tk, tv;
    if (resolve_params(m, p, &n_ctx, &n_threads, &tk, &tv, err)) return -1;
    struct rbee_context *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, RB_ERR_MAX, "out of memory"); return -1; }
    c->m = m;
    c->kern = rb_kernels();
    c->n_ctx = n_ctx;
    c->n_batch = n_ctx < RB_MAX_BATCH ? n_ctx : RB_MAX_BATCH;
    c->n_threads = n_threads;
    c->pool_min_work = RB_POOL_MIN_WORK;
    c->rope_factors = rb_rope_factors(m, n_ctx);
    const struct rb_hparams *hp = &m->hp;
    if (rb_kv_init(&c->kv, hp->n_layers, n_ctx, hp->n_heads_kv, hp->head_dim, tk, tv, err) ||
        alloc_scratch(c, 0, err) || rb_pool_new(&c->pool, n_threads, err)) {
        rbee_context_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int rbee_context_memory(const rbee_model *m, const struct rbee_context_params *p,
                        struct rbee_context_memory *out, char *err) {
    struct rbee_context_params d = rbee_context_default_params();
    if (!p) p = &d;
    memset(out, 0, sizeof *out);
    int n_ctx, n_threads;
    uint32_t tk, tv;
    if (resolve_params(m, p, &n_ctx, &n_threads, &tk, &tv, err)) return -1;
    const struct rb_hparams *hp = &m->hp;
    size_t kv_bytes = rb_kv_bytes(hp->n_layers, n_ctx, hp->n_heads_kv, hp->head_dim, tk, tv);
    if (!kv_bytes) {
        snprintf(err, RB_ERR_MAX, "kv cache: size overflows (ctx %d)", n_ctx);
        return -1;
    }
    /* the sizes alloc_scratch would allocate, from a context that owns nothing */
    struct rbee_context c = { .m = m, .n_ctx = n_ctx, .n_threads = n_threads,
                              .n_batch = n_ctx < RB_MAX_BATCH ? n_ctx : RB_MAX_BATCH };
    c.kv.n_ctx = n_ctx;
    c.kv.head_dim = hp->head_dim;
    c.kv.n_heads_kv = hp->n_heads_kv;
    c.kv.n_layers = hp->n_layers;
    alloc_scratch(&c, 1, err);
    out->n_ctx = n_ctx;
    out->n_threads = n_threads;
    out->kv_bytes = kv_bytes;
    out->scratch_bytes = c.scratch_bytes;
    return 0;
}

void rbee_context_free(rbee_context *c) {
    if (!c) return;
    rb_pool_free(c->pool);
    rb_kv_free(&c->kv);
    float *bufs[] = { c->x, c->xn, c->q, c->k, c->v, c->att, c->proj, c->gate, c->up,
                      (float *)c->act, c->att_scratch, c->rope_cos, c->rope_sin, c->embd_row, c->logits };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(c);
}

int rbee_n_ctx(const rbee_context *c) { return c->n_ctx; }
int rbee_n_vocab(const rbee_context *c) { return c->m->hp.n_vocab; }
int rbee_n_threads(const rbee_context *c) { return c->n_threads; }
size_t rbee_kv_bytes(const rbee_context *c) {
    const struct rb_kv_cache *kv = &c->kv;
    return (size_t)kv->n_layers * kv->n_heads_kv * kv->n_ctx * (kv->k_row_bytes + kv->v_row_bytes);
}
size_t rbee_scratch_bytes(const rbee_context *c) { return c->scratch_bytes; }
int rbee_pos(const rbee_context *c) { return c->pos; }

int rbee_set_pos(rbee_context *c, int pos) {
    if (pos < 0 || pos > c->pos) return -1;
    c->pos = pos; /* cache rows past pos are simply overwritten later */
    c->n_logits = 0;
    return 0;
}

void rbee_reset(rbee_context *c) { rbee_set_pos(c, 0); }

int rb_context_seek(struct rbee_context *c, int pos) {
    if (pos < 0 || pos > c->n_written) return -1;
    c->pos = pos;
    c->n_logits = 0;
    return 0;
}

int rbee_eval(rbee_context *c, const int32_t *tokens, int n_tokens, int all_logits, char *err) {
    int n_vocab = c->m->hp.n_vocab;
    if (n_tokens <= 0) { snprintf(err, RB_ERR_MAX, "empty batch"); return -1; }
    if (n_tokens > c->n_ctx - c->pos) {
        snprintf(err, RB_ERR_MAX, "%d tokens at position %d do not fit the context of %d",
                 n_tokens, c->pos, c->n_ctx);
        return -1;
    }
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            snprintf(err, RB_ERR_MAX, "token id %d at %d is outside the vocabulary (0..%d)",
                     tokens[i], i, n_vocab - 1);
            return -1;
        }
    int rows = all_logits ? n_tokens : 1;
    if (rows > c->logits_cap) {
        float *l = realloc(c->logits, (size_t)rows * n_vocab * sizeof *l);
        if (!l) { snprintf(err, RB_ERR_MAX, "out of memory for %d rows of logits", rows); return -1; }
        c->scratch_bytes += (size_t)(rows - c->logits_cap) * n_vocab * sizeof *l;
        c->logits = l;
        c->logits_cap = rows;
    }
    for (int done = 0; done < n_tokens; ) {
        int n = n_tokens - done < c->n_batch ? n_tokens - done : c->n_batch;
        int last_piece = done + n == n_tokens;
        int first_logit = all_logits ? 0 : (last_piece ? n - 1 : n);
        float *dst = all_logits ? c->logits + (size_t)done * n_vocab : c->logits;
        rb_forward(c, tokens + done, n, first_logit, dst);
        c->pos += n;
        if (c->pos > c->n_written) c->n_written = c->pos;
        done += n;
    }
    c->n_logits = rows;
    c->logits_all = all_logits;
    return 0;
}

const float *rbee_get_logits(const rbee_context *c, int i) {
    if (c->n_logits == 0) return NULL;
    if (i < 0) i = c->n_logits - 1;
    if (i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * c->m->hp.n_vocab;
}
