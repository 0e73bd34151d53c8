/* arch_common.c - what the rotary decoder architectures (llama, qwen2,
 * phi3, and the families model.h lists next) read and bind alike: the
 * hyperparameters every one of them has, the rope settings, the default
 * attention parameters and the output head. The keys and defaults are the
 * reference runtime's (llama.cpp's load_hparams). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

/* "{arch}.rope.scaling.type" into type ("" when absent). */
static int rope_scaling_type(const struct rbee_model *m, char *type, size_t cap, char *err) {
    char key[96];
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->arch->name);
    type[0] = 0;
    return rb_gguf_find_key(&m->file, key) >= 0 ? rb_gguf_get_str(&m->file, key, type, cap, err) : 0;
}

/* Rope base, dimension, scaling and attention factor. A file without a
 * scaling type is read as "linear" (the reference's default), whose factor
 * divides positions; "none" never scales; YaRN and others are refused. */
static int read_rope(struct rbee_model *m, char *err) {
    struct rb_hparams *hp = &m->hp;
    if (rb_hp_u32(m, "rope.dimension_count", 0, (uint32_t)hp->head_dim, &hp->rope_dim, err) ||
        rb_hp_f32(m, "rope.freq_base", 0, 10000.0f, &hp->rope_base, err) ||
        rb_hp_f32(m, "rope.scaling.attn_factor", 0, 1.0f, &hp->rope_attn_factor, err) ||
        rb_hp_u32(m, "rope.scaling.original_context_length", 0, (uint32_t)hp->n_ctx_train,
                  &hp->rope_n_ctx_orig, err))
        return -1;
    char type[32];
    if (rope_scaling_type(m, type, sizeof type, err)) return -1;
    float factor = 0.0f; /* rope.scale_linear: the key's old name */
    if (rb_hp_f32(m, "rope.scaling.factor", 0, 0.0f, &factor, err) ||
        (factor == 0.0f && rb_hp_f32(m, "rope.scale_linear", 0, 0.0f, &factor, err)))
        return -1;
    hp->rope_freq_scale = 1.0f;
    if (!type[0] || !strcmp(type, "linear")) {
        if (factor < 0.0f) {
            snprintf(err, RB_ERR_MAX, "rope.scaling.factor %g must be positive", (double)factor);
            return -1;
        }
        if (factor > 0.0f) hp->rope_freq_scale = 1.0f / factor; /* 0: the key's "unset" */
    } else if (strcmp(type, "none")) {
        snprintf(err, RB_ERR_MAX, "rope scaling type '%s' is not supported", type);
        return -1;
    }
    return 0;
}

int rb_read_decoder_hparams(struct rbee_model *m, char *err) {
    struct rb_hparams *hp = &m->hp;
    int n_expert = 0;
    if (rb_hp_u32(m, "context_length", 1, 0, &hp->n_ctx_train, err) ||
        rb_hp_u32(m, "embedding_length", 1, 0, &hp->n_embd, err) ||
        rb_hp_u32(m, "block_count", 1, 0, &hp->n_layers, err) ||
        rb_hp_u32(m, "feed_forward_length", 1, 0, &hp->n_ff, err) ||
        rb_hp_u32(m, "attention.head_count", 1, 0, &hp->n_heads, err) ||
        rb_hp_u32(m, "expert_count", 0, 0, &n_expert, err))
        return -1;
    if (n_expert > 0) {
        snprintf(err, RB_ERR_MAX, "%s.expert_count = %d: mixture-of-experts models are not supported",
                 m->arch->name, n_expert);
        return -1;
    }
    /* zero before the division below, so the message names the real fault */
    if (hp->n_embd <= 0 || hp->n_heads <= 0) {
        snprintf(err, RB_ERR_MAX, "hyperparameter '%s.%s' is 0", m->arch->name,
                 hp->n_embd <= 0 ? "embedding_length" : "attention.head_count");
        return -1;
    }
    /* head size: attention.key_length when given (Qwen3, Gemma: heads need
     * not tile the embedding), else embedding_length / head_count */
    int key_len = 0, value_len = 0;
    if (rb_hp_u32(m, "attention.key_length", 0, 0, &key_len, err) ||
        rb_hp_u32(m, "attention.value_length", 0, (uint32_t)key_len, &value_len, err))
        return -1;
    if (key_len != value_len) {
        snprintf(err, RB_ERR_MAX, "%s.attention.key_length %d differs from value_length %d (not supported)",
                 m->arch->name, key_len, value_len);
        return -1;
    }
    if (!key_len && hp->n_embd % hp->n_heads) {
        snprintf(err, RB_ERR_MAX, "head_count %d does not divide embedding_length %d",
                 hp->n_heads, hp->n_embd);
        return -1;
    }
    hp->head_dim = key_len ? key_len : hp->n_embd / hp->n_heads;
    if (rb_hp_u32(m, "attention.head_count_kv", 0, (uint32_t)hp->n_heads, &hp->n_heads_kv, err) ||
        rb_hp_f32(m, "attention.layer_norm_rms_epsilon", 1, 0.0f, &hp->norm_eps, err))
        return -1;
    return read_rope(m, err);
}

void rb_set_attn_default(struct rbee_model *m) {
    for (int il = 0; il < m->hp.n_layers; il++) m->layers[il].attn = rb_attn_params_default(m->hp.head_dim);
}

int rb_bind_output(struct rbee_model *m, int output_required, char *err) {
    return rb_bind_vector(m, "output_norm.weight", m->hp.n_embd, 1, &m->out_norm, err) ||
           rb_bind_weight(m, "output.weight", m->hp.n_embd, m->hp.n_vocab, output_required, &m->output, err)
               ? -1 : 0;
}

int rb_bind_llama_layer(struct rbee_model *m, int il, int qkv_bias, char *err) {
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
        rb_bind_vector(m, NAME("attn_q.bias"), q_dim, qkv_bias, &l->bq, err) ||
        rb_bind_vector(m, NAME("attn_k.bias"), kv_dim, qkv_bias, &l->bk, err) ||
        rb_bind_vector(m, NAME("attn_v.bias"), kv_dim, qkv_bias, &l->bv, err) ||
        (!qkv_bias && rb_bind_vector(m, NAME("attn_output.bias"), e, 0, &l->bo, err)) ||
        rb_bind_vector(m, NAME("ffn_norm.weight"), e, 1, &l->ffn_norm, err) ||
        rb_bind_weight(m, NAME("ffn_gate.weight"), e, hp->n_ff, 1, &l->w_gate, err) ||
        rb_bind_weight(m, NAME("ffn_up.weight"), e, hp->n_ff, 1, &l->w_up, err) ||
        rb_bind_weight(m, NAME("ffn_down.weight"), hp->n_ff, e, 1, &l->w_down, err))
        return -1;
#undef NAME
    return 0;
}

int rb_bind_rope_factors(struct rbee_model *m, const char *name, float **v, char *err) {
    if (rb_bind_vector(m, name, m->hp.rope_dim / 2, 0, v, err)) return -1;
    for (int i = 0; *v && i < m->hp.rope_dim / 2; i++)
        if (!((*v)[i] > 0.0f)) { /* a zero would turn every later angle into NaN */
            snprintf(err, RB_ERR_MAX, "tensor '%s' holds %g at %d; rope factors must be positive", name,
                     (double)(*v)[i], i);
            return -1;
        }
    return 0;
}
