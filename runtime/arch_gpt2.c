/* arch_gpt2.c - general.architecture = "gpt2": token plus learned position
 * embeddings, LayerNorm with weight and bias, one fused attn_qkv projection
 * (rows [q | k | v], bound as three views) with bias, attention output with bias, a GELU (tanh
 * form) feed-forward with biases, a final LayerNorm, then output.weight or
 * the tied token embedding. Every bias is required, as in the files
 * llama.cpp's converter writes; position_embd's rows bound the context. */
#include <stdio.h>

#include "model.h"

static int gpt2_read_hparams(struct rbee_model *m, char *err) {
    struct rb_hparams *hp = &m->hp;
    if (rb_hp_u32(m, "context_length", 1, 0, &hp->n_ctx_train, err) ||
        rb_hp_u32(m, "embedding_length", 1, 0, &hp->n_embd, err) ||
        rb_hp_u32(m, "block_count", 1, 0, &hp->n_layers, err) ||
        rb_hp_u32(m, "feed_forward_length", 1, 0, &hp->n_ff, err) ||
        rb_hp_u32(m, "attention.head_count", 1, 0, &hp->n_heads, err) ||
        rb_hp_f32(m, "attention.layer_norm_epsilon", 1, 0.0f, &hp->norm_eps, err))
        return -1;
    if (hp->n_heads <= 0 || hp->n_embd <= 0 || hp->n_embd % hp->n_heads) {
        snprintf(err, RB_ERR_MAX, "head_count %d does not divide embedding_length %d",
                 hp->n_heads, hp->n_embd);
        return -1;
    }
    hp->head_dim = hp->n_embd / hp->n_heads;
    /* GPT-2 itself has no grouped heads; the key is honoured if present */
    if (rb_hp_u32(m, "attention.head_count_kv", 0, (uint32_t)hp->n_heads, &hp->n_heads_kv, err))
        return -1;
    hp->rope_dim = 0; /* no rotary positions: the rope fields stay unused */
    hp->rope_base = 0.0f;
    hp->rope_freq_scale = 1.0f;
    hp->rope_attn_factor = 1.0f;
    return 0;
}

static int gpt2_bind_layer(struct rbee_model *m, int il, char *err) {
    const struct rb_hparams *hp = &m->hp;
    struct rb_layer *l = &m->layers[il];
    int64_t e = hp->n_embd, q_dim = (int64_t)hp->n_heads * hp->head_dim;
    int64_t kv_dim = (int64_t)hp->n_heads_kv * hp->head_dim;
    const int64_t qkv_rows[3] = { q_dim, kv_dim, kv_dim };
    struct rb_weight *const qkv[3] = { &l->wq, &l->wk, &l->wv };
    float *qkv_b[3];
    char n[96], nb[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, il), n)
    snprintf(nb, sizeof nb, "blk.%d.attn_qkv.bias", il);
    if (rb_bind_vector(m, NAME("attn_norm.weight"), e, 1, &l->attn_norm, err) ||
        rb_bind_vector(m, NAME("attn_norm.bias"), e, 1, &l->attn_norm_b, err) ||
        rb_bind_split(m, NAME("attn_qkv.weight"), e, 3, qkv_rows, qkv, nb, qkv_b, err) ||
        rb_bind_weight(m, NAME("attn_output.weight"), q_dim, e, 1, &l->wo, err) ||
        rb_bind_vector(m, NAME("attn_output.bias"), e, 1, &l->bo, err) ||
        rb_bind_vector(m, NAME("ffn_norm.weight"), e, 1, &l->ffn_norm, err) ||
        rb_bind_vector(m, NAME("ffn_norm.bias"), e, 1, &l->ffn_norm_b, err) ||
        rb_bind_weight(m, NAME("ffn_up.weight"), e, hp->n_ff, 1, &l->w_up, err) ||
        rb_bind_vector(m, NAME("ffn_up.bias"), hp->n_ff, 1, &l->b_up, err) ||
        rb_bind_weight(m, NAME("ffn_down.weight"), hp->n_ff, e, 1, &l->w_down, err) ||
        rb_bind_vector(m, NAME("ffn_down.bias"), e, 1, &l->b_down, err))
        return -1;
#undef NAME
    l->bq = qkv_b[0];
    l->bk = qkv_b[1];
    l->bv = qkv_b[2];
    l->attn = rb_attn_params_default(hp->head_dim);
    return 0;
}

static int gpt2_bind_tensors(struct rbee_model *m, char *err) {
    const struct rb_hparams *hp = &m->hp;
    /* one row per trained position: forward.c reads row pos for each token,
     * and a context is never made longer than this table (context.c) */
    if (rb_bind_table(m, "position_embd.weight", hp->n_embd, hp->n_ctx_train, 1, &m->pos_embd, err))
        return -1;
    for (int il = 0; il < hp->n_layers; il++)
        if (gpt2_bind_layer(m, il, err)) return -1;
    return rb_bind_vector(m, "output_norm.weight", hp->n_embd, 1, &m->out_norm, err) ||
           rb_bind_vector(m, "output_norm.bias", hp->n_embd, 1, &m->out_norm_b, err) ||
           rb_bind_weight(m, "output.weight", hp->n_embd, hp->n_vocab, 0, &m->output, err) ? -1 : 0;
}

const struct rb_arch rb_arch_gpt2 = {
    .name = "gpt2",
    .norm = RB_NORM_LAYER,
    .rope = RB_ROPE_NONE,
    .ffn = RB_FFN_GELU,
    .read_hparams = gpt2_read_hparams,
    .bind_tensors = gpt2_bind_tensors,
};
