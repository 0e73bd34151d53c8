/* arch_llama.c - general.architecture = "llama" (Llama 1/2/3, TinyLlama,
 * Mistral-style, SmolLM): RMSNorm, rotary positions (NORM mode: adjacent
 * pairs), separate q/k/v with grouped-query attention, SwiGLU feed-forward,
 * output projection or the tied token embedding. */
#include <stdio.h>
#include <string.h>

#include "model.h"

static int llama_read_hparams(struct rbee_model *m, char *err) {
    struct rb_hparams *hp = &m->hp;
    if (rb_hp_u32(m, "context_length", 1, 0, &hp->n_ctx_train, err) ||
        rb_hp_u32(m, "embedding_length", 1, 0, &hp->n_embd, err) ||
        rb_hp_u32(m, "block_count", 1, 0, &hp->n_layers, err) ||
        rb_hp_u32(m, "feed_forward_length", 1, 0, &hp->n_ff, err) ||
        rb_hp_u32(m, "attention.head_count", 1, 0, &hp->n_heads, err))
        return -1;
    /* zero before the division below, so the message names the real fault */
    if (hp->n_embd <= 0 || hp->n_heads <= 0) {
        snprintf(err, RB_ERR_MAX, "hyperparameter '%s.%s' is 0", m->arch->name,
                 hp->n_embd <= 0 ? "embedding_length" : "attention.head_count");
        return -1;
    }
    if (hp->n_embd % hp->n_heads) {
        snprintf(err, RB_ERR_MAX, "head_count %d does not divide embedding_length %d",
                 hp->n_heads, hp->n_embd);
        return -1;
    }
    hp->head_dim = hp->n_embd / hp->n_heads;
    if (rb_hp_u32(m, "attention.head_count_kv", 0, (uint32_t)hp->n_heads, &hp->n_heads_kv, err) ||
        rb_hp_u32(m, "rope.dimension_count", 0, (uint32_t)hp->head_dim, &hp->rope_dim, err) ||
        rb_hp_f32(m, "rope.freq_base", 0, 10000.0f, &hp->rope_base, err) ||
        rb_hp_f32(m, "attention.layer_norm_rms_epsilon", 1, 0.0f, &hp->norm_eps, err))
        return -1;

    /* linear rope scaling divides positions by the factor */
    hp->rope_freq_scale = 1.0f;
    char key[96], type[32] = "";
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch->name);
    if (gguf_find_key(&m->file, key) >= 0 && gguf_get_str(&m->file, key, type, sizeof type, err))
        return -1;
    if (!strcmp(type, "linear")) {
        float factor;
        if (rb_hp_f32(m, "rope.scaling.factor", 1, 1.0f, &factor, err)) return -1;
        if (!(factor > 0.0f)) {
            snprintf(err, RB_ERR_MAX, "rope.scaling.factor %g must be positive", (double)factor);
            return -1;
        }
        hp->rope_freq_scale = 1.0f / factor;
    } else if (type[0] && strcmp(type, "none")) {
        snprintf(err, RB_ERR_MAX, "rope scaling type '%s' is not supported", type);
        return -1;
    }
    return 0;
}

static int llama_bind_layer(struct rbee_model *m, int il, char *err) {
    const struct rb_hparams *hp = &m->hp;
    struct rb_layer *l = &m->layers[il];
    int64_t e = hp->n_embd, q_dim = (int64_t)hp->n_heads * hp->head_dim;
    int64_t kv_dim = (int64_t)hp->n_heads_kv * hp->head_dim;
    char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, il), n)
    if (rb_bind_vector(m, NAME("attn_norm.weight"), e, 1, &l->attn_norm, err) ||
        rb_bind_weight(m, NAME("attn_q.weight"), e, q_dim, 1, &l->wq, err) ||
        rb_bind_weight(m, NAME("attn_k.weight"), e, kv_dim, 1, &l->wk, err) ||
        rb_bind_weight(m, NAME("attn_v.weight"), e, kv_dim, 1, &l->wv, err) ||
        rb_bind_weight(m, NAME("attn_output.weight"), q_dim, e, 1, &l->wo, err) ||
        rb_bind_vector(m, NAME("attn_q.bias"), q_dim, 0, &l->bq, err) ||
        rb_bind_vector(m, NAME("attn_k.bias"), kv_dim, 0, &l->bk, err) ||
        rb_bind_vector(m, NAME("attn_v.bias"), kv_dim, 0, &l->bv, err) ||
        rb_bind_vector(m, NAME("attn_output.bias"), e, 0, &l->bo, err) ||
        rb_bind_vector(m, NAME("ffn_norm.weight"), e, 1, &l->ffn_norm, err) ||
        rb_bind_weight(m, NAME("ffn_gate.weight"), e, hp->n_ff, 1, &l->w_gate, err) ||
        rb_bind_weight(m, NAME("ffn_up.weight"), e, hp->n_ff, 1, &l->w_up, err) ||
        rb_bind_weight(m, NAME("ffn_down.weight"), hp->n_ff, e, 1, &l->w_down, err))
        return -1;
#undef NAME
    return 0;
}

static int llama_bind_tensors(struct rbee_model *m, char *err) {
    for (int il = 0; il < m->hp.n_layers; il++)
        if (llama_bind_layer(m, il, err)) return -1;
    return rb_bind_vector(m, "output_norm.weight", m->hp.n_embd, 1, &m->out_norm, err) ||
           rb_bind_weight(m, "output.weight", m->hp.n_embd, m->hp.n_vocab, 0, &m->output, err) ? -1 : 0;
}

const struct rb_arch rb_arch_llama = {
    .name = "llama",
    .norm = RB_NORM_RMS,
    .pos = RB_POS_ROPE,
    .ffn = RB_FFN_SWIGLU,
    .fused_qkv = 0,
    .read_hparams = llama_read_hparams,
    .bind_tensors = llama_bind_tensors,
};
