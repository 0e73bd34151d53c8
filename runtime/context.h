/* context.h - what one inference stream owns: the KV cache, every scratch
 * buffer (allocated once, sized for n_batch tokens), the thread pool and
 * the logits of the last eval. forward.c fills it; context.c manages it. */
#ifndef RB_CONTEXT_H
#define RB_CONTEXT_H

#include <stdint.h>
#include "model.h"
#include "threadpool.h"
#include "../attention/attention.h"
#include "../simd/kernels.h"

#define RB_MAX_BATCH 512 /* tokens per forward call; longer evals are split */

/* Debug hook: called with every named intermediate activation (names as
 * llama.cpp's graph callback uses: inp_embd, attn_norm, Qcur, Kcur, Vcur,
 * kqv_out, ffn_inp, ffn_norm, ffn_out, l_out, result_norm, result_output),
 * rows [n_tok][row_len], layer -1 outside the blocks. To find the first
 * layer that diverges from the reference when a golden test fails. */
typedef void (*rb_dump_fn)(void *user, const char *name, int layer, const float *rows,
                           int n_tok, int64_t row_len);

struct rbee_context {
    const struct rbee_model *m;
    const struct rb_kernels *kern;
    int n_ctx, n_batch, n_threads;
    int pos;                    /* tokens already in the cache */
    int n_written;              /* cache rows [0, n_written) have been written (>= pos) */
    struct rb_pool *pool;
    struct rb_kv_cache kv;

    /* scratch, in rows of one forward batch (at most n_batch tokens) */
    float *x;        /* [n_batch][n_embd] residual stream */
    float *xn;       /* [n_batch][n_embd] normed input of a block */
    float *q;        /* [n_batch][n_heads * head_dim] queries */
    float *k, *v;    /* [n_batch][n_heads_kv * head_dim] keys, values */
    float *att;      /* [n_batch][n_heads * head_dim] attention output */
    float *proj;     /* [n_batch][n_embd] attn_output / ffn_down result */
    float *gate, *up;/* [n_batch][n_ff] feed-forward hidden */
    uint8_t *act;    /* [3][n_batch][act_row_max] activation rows in weight partner formats */
    size_t act_row_max;
    float *att_scratch;        /* [n_threads][att_scratch_floats] */
    size_t att_scratch_floats;
    float *rope_cos, *rope_sin;/* [n_batch][rope_dim / 2] */
    const float *rope_factors; /* [rope_dim / 2] of the model's, chosen for n_ctx (rb_rope_factors), or NULL */
    float *embd_row;           /* [n_embd] one dequantized row (learned positions) */

    float *logits;   /* [logits_cap][n_vocab] */
    int logits_cap;  /* rows allocated */
    int n_logits;    /* rows valid after the last eval */
    int logits_all;  /* 1: row i = batch token i; 0: one row, the last token */
    size_t scratch_bytes;
    double pool_min_work; /* smaller jobs (multiply-adds) skip the pool; tests set 0 */
    rb_dump_fn dump;      /* NULL unless debugging */
    void *dump_user;
};

#define RB_POOL_MIN_WORK (1 << 18)

/* Move to any position up to n_written: back, as rbee_set_pos does, or
 * forward again over rows written before a rewind. Those rows keep what
 * they hold, which need not be one consistent prompt: this is for
 * measuring the cost of a step at a depth (bench/), not for generating
 * text. -1 if pos is out of range. */
int rb_context_seek(struct rbee_context *c, int pos);

/* One forward call: n_tok <= n_batch tokens at positions [pos, pos + n_tok),
 * all ids checked. Logits of tokens [first_logit, n_tok) go to consecutive
 * rows of `logits` (first_logit = n_tok: none). Does not move c->pos. */
void rb_forward(struct rbee_context *c, const int32_t *tokens, int n_tok,
                int first_logit, float *logits);

#endif
