/* forward.c - the transformer forward pass over a batch of tokens.
 *
 * Glossary: T = tokens in this batch, e = n_embd, hd = head_dim,
 * q_dim = n_heads * hd, kv_dim = n_heads_kv * hd, ff = n_ff, V = n_vocab.
 * Buffers live in the context (context.h), each with its shape there.
 *
 * One step, top to bottom (rb_forward):
 *   x = embed(tokens)                                  [T][e]
 *   for each layer:
 *     x += attention_block(norm(x))                    [T][e]
 *     x += ffn_block(norm(x))                          [T][e]
 *   logits = output(norm(x)) for the rows asked for    [T'][V]
 * The architecture's kinds (model.h) pick RMSNorm or LayerNorm, rotary
 * (adjacent pairs or halves) or learned positions, SwiGLU or GELU; each
 * layer's attention parameters go to attention as they are. Fused weights
 * arrive as row views, so this file never sees them.
 *
 * Threads: matmuls split output rows, attention splits (heads, query
 * tokens); every output value is computed by exactly one thread in the
 * same order whatever the thread count, so -t 1 and -t N give equal bits.
 */
#include <math.h>
#include <string.h>

#include "context.h"
#include "../quant/quant.h"

/* hand a named activation [T][len] to the debug hook, if any */
#define DUMP(c, name, layer, rows, n_tok, len) \
    do { if ((c)->dump) (c)->dump((c)->dump_user, name, layer, rows, n_tok, len); } while (0)

#define MM_CHUNK 16   /* output rows per work unit: a few cache lines of output */
#define ATT_TOKENS 8  /* query tokens per attention work unit */

/* ------------------------------------------------------------ matmul */

/* Up to three weights that read the same input (q/k/v, gate/up). */
struct mm_job {
    const struct rb_kernels *kern;
    int n_w, n_tok;
    const struct rb_weight *w[3];
    const uint8_t *act[3];  /* [T] activation rows for weight i, act_stride apart */
    size_t act_stride[3];
    float *out[3];          /* [T][w[i]->n_out] */
    struct rb_pool *share;  /* hands out the rows (rb_pool_take) */
};

/* Rows [r0, r1) of weight i against every token. */
static void mm_rows(const struct mm_job *j, int i, int64_t r0, int64_t r1) {
    const struct rb_weight *w = j->w[i];
    rb_gemm_fn gemm = j->kern->gemm[w->type];
    if (gemm) {
        gemm(w->n_in, r1 - r0, j->n_tok, w->data + (size_t)r0 * w->row_bytes, w->row_bytes,
             j->act[i], j->act_stride[i], j->out[i] + r0, w->n_out);
        return;
    }
    rb_vec_dot_fn dot = j->kern->vec_dot[w->type];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w_row = w->data + (size_t)r * w->row_bytes;
        for (int t = 0; t < j->n_tok; t++)
            dot(w->n_in, &j->out[i][(size_t)t * w->n_out + r], w_row, j->act[i] + (size_t)t * j->act_stride[i]);
    }
}

/* Rows in units of MM_CHUNK, numbered across the job's weights in turn. */
static int64_t mm_units(const struct mm_job *j, int i) {
    return (j->w[i]->n_out + MM_CHUNK - 1) / MM_CHUNK;
}

static void mm_task(void *arg, int ith, int nth) {
    const struct mm_job *j = arg;
    (void)nth;
    int64_t u0, u1;
    while (rb_pool_take(j->share, ith, &u0, &u1)) {
        int64_t base = 0; /* weight i's first unit */
        for (int i = 0; i < j->n_w; i++) {
            const int64_t n_units = mm_units(j, i);
            const int64_t a = u0 > base ? u0 : base, b = u1 < base + n_units ? u1 : base + n_units;
            if (a < b) mm_rows(j, i, (a - base) * MM_CHUNK, b - base == n_units ? j->w[i]->n_out : (b - base) * MM_CHUNK);
            base += n_units;
        }
    }
}

/* Jobs smaller than c->pool_min_work multiply-adds run on the calling
 * thread: waking the pool costs more than they do (tiny models, small
 * steps). No result depends on the split, so -t 1 and -t N stay equal. */
static void run_job(struct rbee_context *c, rb_task_fn fn, void *arg, double work) {
    if (work < c->pool_min_work) fn(arg, 0, 1);
    else rb_pool_run(c->pool, fn, arg);
}

/* Activation rows [T][n_in] F32 -> [T] rows of the partner format, split by rows. */
struct quant_job {
    rb_quantize_row_fn quantize;
    const float *x;
    int64_t n_in;
    int n_tok;
    size_t stride;  /* bytes per output row */
    uint8_t *out;
};

static void quant_task(void *arg, int ith, int nth) {
    const struct quant_job *q = arg;
    int64_t t0, t1;
    rb_split(q->n_tok, 1, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++)
        q->quantize(q->x + (size_t)t * q->n_in, q->out + (size_t)t * q->stride, q->n_in);
}

/* out[i] = x · w[i]^T for n_w weights sharing the input x [T][n_in].
 * The activation rows are converted once per partner format (F32 partners
 * use x as it is), then the pool splits every weight's output rows. */
static void matmul(struct rbee_context *c, int n_tok, const float *x, int n_w,
                   const struct rb_weight *const *w, float *const *out) {
    struct mm_job j = { .kern = c->kern, .n_w = n_w, .n_tok = n_tok };
    double work = 0; /* multiply-adds */
    for (int i = 0; i < n_w; i++) {
        int64_t n_in = w[i]->n_in;
        work += (double)n_in * w[i]->n_out * n_tok;
        uint32_t at = rb_traits(w[i]->type)->vec_dot_type;
        j.w[i] = w[i];
        j.out[i] = out[i];
        if (at == RB_TYPE_F32) {
            j.act[i] = (const uint8_t *)x;
            j.act_stride[i] = (size_t)n_in * sizeof(float);
        } else if (i > 0 && at == rb_traits(w[i - 1]->type)->vec_dot_type) {
            j.act[i] = j.act[i - 1];
            j.act_stride[i] = j.act_stride[i - 1];
        } else {
            struct quant_job q = { .quantize = c->kern->quantize_act[at], .x = x, .n_in = n_in,
                                   .n_tok = n_tok, .stride = (size_t)rb_row_bytes(at, n_in),
                                   .out = c->act + (size_t)i * c->n_batch * c->act_row_max };
            run_job(c, quant_task, &q, (double)n_tok * n_in);
            j.act[i] = q.out;
            j.act_stride[i] = q.stride;
        }
    }
    /* A thread whose CPU runs slower for a while (a VM neighbour, P and E
     * cores) hands the rest of its rows to the others instead of holding
     * everyone up. Prompt kernels prepare every token once per call, and a
     * thread makes a few calls instead of one, but that costs less than the
     * wait: on a 2-vCPU Zen 3 VM, TinyLlama pp128 rose 9-19% (Q8_0, Q4_0,
     * Q4_K_M, alternating runs) over fixed slices. */
    j.share = c->pool;
    int64_t n_units = 0;
    for (int i = 0; i < n_w; i++) n_units += mm_units(&j, i);
    rb_pool_share(c->pool, n_units);
    run_job(c, mm_task, &j, work);
}

static void matmul1(struct rbee_context *c, int n_tok, const float *x,
                    const struct rb_weight *w, float *out) {
    matmul(c, n_tok, x, 1, &w, &out);
}

/* rows[t][i] += bias[i] for T rows of n (no-op without a bias) */
static void add_bias(float *rows, const float *bias, int n_tok, int64_t n) {
    if (!bias) return;
    for (int t = 0; t < n_tok; t++)
        for (int64_t i = 0; i < n; i++) rows[(size_t)t * n + i] += bias[i];
}

/* ------------------------------------------------------------ small blocks */

/* x [T][e] = token_embd rows (+ position_embd rows for learned positions) */
static void embed(struct rbee_context *c, const int32_t *tokens, int n_tok) {
    const struct rbee_model *m = c->m;
    int64_t e = m->hp.n_embd;
    for (int t = 0; t < n_tok; t++) {
        float *row = c->x + (size_t)t * e;
        rb_weight_row_f32(&m->tok_embd, tokens[t], row);
        if (m->pos_embd.data) { /* learned positions */
            rb_weight_row_f32(&m->pos_embd, c->pos + t, c->embd_row);
            c->kern->add(row, row, c->embd_row, e);
        }
    }
}

/* out [T][e] = norm(x) * w (+ b) per row */
static void norm_rows(const struct rbee_context *c, float *out, const float *x,
                      const float *w, const float *b, int n_tok) {
    int64_t e = c->m->hp.n_embd;
    float eps = c->m->hp.norm_eps;
    for (int t = 0; t < n_tok; t++) {
        if (c->m->arch->norm == RB_NORM_RMS)
            c->kern->rmsnorm(out + (size_t)t * e, x + (size_t)t * e, w, e, eps);
        else
            c->kern->layernorm(out + (size_t)t * e, x + (size_t)t * e, w, b, e, eps);
    }
}

/* cos/sin [T][rope_dim/2] for positions pos .. pos+T-1, computed the way
 * the reference does: pair i turns by freq_scale * (theta_i / factor_i),
 * theta_i = pos * base^(-2i/rope_dim) with the power advanced by repeated
 * multiplication in F32, factor_i from rope_freqs (1 without), and cos and
 * sin are multiplied by attn_factor. Once per batch, for every layer. */
static void rope_tables(struct rbee_context *c, int n_tok) {
    const struct rb_hparams *hp = &c->m->hp;
    const float *factors = c->rope_factors;
    int half = hp->rope_dim / 2;
    float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->rope_dim), mscale = hp->rope_attn_factor;
    for (int t = 0; t < n_tok; t++) {
        float theta = (float)(c->pos + t);
        for (int i = 0; i < half; i++) {
            float angle = hp->rope_freq_scale * (factors ? theta / factors[i] : theta);
            c->rope_cos[(size_t)t * half + i] = cosf(angle) * mscale;
            c->rope_sin[(size_t)t * half + i] = sinf(angle) * mscale;
            theta *= theta_scale;
        }
    }
}

/* Rotate the first rope_dim dims of every head, v [T][n_heads * hd]: pair
 * i is (x[2i], x[2i+1]) in NORM mode, (x[i], x[i + rope_dim/2]) in NEOX. */
static void rope_apply(const struct rbee_context *c, float *v, int n_heads, int n_tok) {
    const struct rb_hparams *hp = &c->m->hp;
    int half = hp->rope_dim / 2, hd = hp->head_dim;
    int stride = c->m->arch->rope == RB_ROPE_NEOX ? 1 : 2;  /* x0 of pair i at stride * i */
    int gap = c->m->arch->rope == RB_ROPE_NEOX ? half : 1;  /* x1 = x0 + gap */
    for (int t = 0; t < n_tok; t++) {
        const float *cs = c->rope_cos + (size_t)t * half, *sn = c->rope_sin + (size_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *x = v + ((size_t)t * n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float *p = x + stride * i, x0 = p[0], x1 = p[gap];
                p[0] = x0 * cs[i] - x1 * sn[i];
                p[gap] = x0 * sn[i] + x1 * cs[i];
            }
        }
    }
}

/* ------------------------------------------------------------ attention */

struct att_job {
    struct rbee_context *c;
    int layer, n_tok;
    int heads_per_unit, n_head_units, n_tok_units;
};

static void att_task(void *arg, int ith, int nth) {
    const struct att_job *j = arg;
    struct rbee_context *c = j->c;
    int n_heads = c->m->hp.n_heads;
    float *scratch = c->att_scratch + (size_t)ith * c->att_scratch_floats;
    for (int u = ith; u < j->n_head_units * j->n_tok_units; u += nth) {
        int h0 = (u / j->n_tok_units) * j->heads_per_unit;
        int t0 = (u % j->n_tok_units) * ATT_TOKENS;
        int h1 = h0 + j->heads_per_unit < n_heads ? h0 + j->heads_per_unit : n_heads;
        int t1 = t0 + ATT_TOKENS < j->n_tok ? t0 + ATT_TOKENS : j->n_tok;
        rb_attention(c->kern, &c->kv, &c->m->layers[j->layer].attn, j->layer, n_heads, c->q, c->att, c->pos,
                     t0, t1, h0, h1, scratch);
    }
}

/* att [T][q_dim] = causal attention of q over the cache, split over the
 * pool in units of (query heads of one KV head, ATT_TOKENS tokens); with
 * few units (generation), the heads of a group are split further. */
static void attention(struct rbee_context *c, int il, int n_tok) {
    const struct rb_hparams *hp = &c->m->hp;
    struct att_job j = { .c = c, .layer = il, .n_tok = n_tok };
    j.heads_per_unit = hp->n_heads / hp->n_heads_kv;
    j.n_tok_units = (n_tok + ATT_TOKENS - 1) / ATT_TOKENS;
    while (j.heads_per_unit > 1 &&
           (hp->n_heads / j.heads_per_unit) * j.n_tok_units < 2 * c->n_threads)
        j.heads_per_unit = (j.heads_per_unit + 1) / 2;
    j.n_head_units = (hp->n_heads + j.heads_per_unit - 1) / j.heads_per_unit;
    double n_keys = (double)c->pos + n_tok;
    run_job(c, att_task, &j, 2.0 * n_keys * n_tok * hp->n_heads * hp->head_dim);
}

/* x += wo · attention(rope(wq · xn + bq), rope(wk · xn + bk), wv · xn + bv), xn = norm(x) */
static void attention_block(struct rbee_context *c, int il, int n_tok) {
    const struct rbee_model *m = c->m;
    const struct rb_hparams *hp = &m->hp;
    const struct rb_layer *l = &m->layers[il];
    int64_t e = hp->n_embd, q_dim = (int64_t)hp->n_heads * hp->head_dim;
    int64_t kv_dim = (int64_t)hp->n_heads_kv * hp->head_dim;

    norm_rows(c, c->xn, c->x, l->attn_norm, l->attn_norm_b, n_tok);
    DUMP(c, "attn_norm", il, c->xn, n_tok, e);
    const struct rb_weight *w[3] = { &l->wq, &l->wk, &l->wv };
    float *out[3] = { c->q, c->k, c->v };
    matmul(c, n_tok, c->xn, 3, w, out);
    add_bias(c->q, l->bq, n_tok, q_dim);
    add_bias(c->k, l->bk, n_tok, kv_dim);
    add_bias(c->v, l->bv, n_tok, kv_dim);
    if (m->arch->rope != RB_ROPE_NONE) {
        rope_apply(c, c->q, hp->n_heads, n_tok);
        rope_apply(c, c->k, hp->n_heads_kv, n_tok);
    }
    DUMP(c, "Qcur", il, c->q, n_tok, q_dim);
    DUMP(c, "Kcur", il, c->k, n_tok, kv_dim);
    DUMP(c, "Vcur", il, c->v, n_tok, kv_dim);
    rb_kv_store(&c->kv, il, c->pos, n_tok, c->k, c->v);
    attention(c, il, n_tok);
    DUMP(c, "kqv_out", il, c->att, n_tok, q_dim);

    matmul1(c, n_tok, c->att, &l->wo, c->proj);
    add_bias(c->proj, l->bo, n_tok, e);
    c->kern->add(c->x, c->x, c->proj, (int64_t)n_tok * e);
    DUMP(c, "ffn_inp", il, c->x, n_tok, e);
}

/* gate = silu(gate) * up over [T][ff], split by token rows */
struct swiglu_job { const struct rbee_context *c; int n_tok; };

static void swiglu_task(void *arg, int ith, int nth) {
    const struct swiglu_job *j = arg;
    int64_t ff = j->c->m->hp.n_ff, t0, t1;
    rb_split(j->n_tok, 1, ith, nth, &t0, &t1);
    float *gate = j->c->gate + t0 * ff;
    if (t1 > t0) j->c->kern->silu_mul(gate, gate, j->c->up + t0 * ff, (t1 - t0) * ff);
}

static void swiglu(struct rbee_context *c, int n_tok) {
    struct swiglu_job j = { c, n_tok };
    run_job(c, swiglu_task, &j, 8.0 * n_tok * c->m->hp.n_ff); /* an expf is several madds */
}

/* x += down(silu(gate · xn) * (up · xn))   or   down(gelu(up · xn + b) ) + b */
static void ffn_block(struct rbee_context *c, int il, int n_tok) {
    const struct rbee_model *m = c->m;
    const struct rb_layer *l = &m->layers[il];
    int64_t e = m->hp.n_embd, ff = m->hp.n_ff;

    norm_rows(c, c->xn, c->x, l->ffn_norm, l->ffn_norm_b, n_tok);
    DUMP(c, "ffn_norm", il, c->xn, n_tok, e);
    if (m->arch->ffn == RB_FFN_SWIGLU) {
        const struct rb_weight *w[2] = { &l->w_gate, &l->w_up };
        float *out[2] = { c->gate, c->up };
        matmul(c, n_tok, c->xn, 2, w, out);
        swiglu(c, n_tok);                                        /* gate [T][ff] */
    } else {
        matmul1(c, n_tok, c->xn, &l->w_up, c->gate);
        add_bias(c->gate, l->b_up, n_tok, ff);
        c->kern->gelu(c->gate, (int64_t)n_tok * ff);
    }
    matmul1(c, n_tok, c->gate, &l->w_down, c->proj);
    add_bias(c->proj, l->b_down, n_tok, e);
    DUMP(c, "ffn_out", il, c->proj, n_tok, e);
    c->kern->add(c->x, c->x, c->proj, (int64_t)n_tok * e);
    DUMP(c, "l_out", il, c->x, n_tok, e);
}

/* logits [T - first][V] = output · norm(x) for tokens first .. T-1 */
static void output_logits(struct rbee_context *c, int n_tok, int first, float *logits) {
    const struct rbee_model *m = c->m;
    int n = n_tok - first;
    if (n <= 0) return;
    const float *x = c->x + (size_t)first * m->hp.n_embd;
    norm_rows(c, c->xn, x, m->out_norm, m->out_norm_b, n);
    DUMP(c, "result_norm", -1, c->xn, n, m->hp.n_embd);
    matmul1(c, n, c->xn, &m->output, logits);
    DUMP(c, "result_output", -1, logits, n, m->hp.n_vocab);
}

/* ------------------------------------------------------------ the step */

void rb_forward(struct rbee_context *c, const int32_t *tokens, int n_tok,
                int first_logit, float *logits) {
    embed(c, tokens, n_tok);
    DUMP(c, "inp_embd", -1, c->x, n_tok, c->m->hp.n_embd);
    if (c->m->arch->rope != RB_ROPE_NONE) rope_tables(c, n_tok);
    for (int il = 0; il < c->m->hp.n_layers; il++) {
        attention_block(c, il, n_tok);
        ffn_block(c, il, n_tok);
    }
    output_logits(c, n_tok, first_logit, logits);
}
