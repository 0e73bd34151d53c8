/* arch_phi3.c - general.architecture = "phi3" (Phi-3, Phi-3.5, Phi-4):
 * RMSNorm, NEOX rotary positions, one fused attn_qkv weight (rows: Q, then
 * K, then V; no biases), a fused ffn_up whose first n_ff rows are the gate
 * (through SiLU) and the next n_ff the up projection, a separate output.
 * Q is multiplied by 1/sqrt(head_dim) in F32 before Q.K (the reference's
 * rounding). Sliding-window attention over phi3.attention.sliding_window
 * keys (0: none, Phi-4). Long-context files (128k) carry LongRoPE factors:
 * rope_factors_short below rope.scaling.original_context_length, _long
 * above it, with rope.scaling.attn_factor on cos and sin. */
#include <math.h>
#include <stdio.h>

#include "model.h"

/* The window: the key, else the reference's defaults for the files that
 * predate it (Phi-3-mini/medium 4k: 2047; mini 128k: 262144; medium 128k:
 * 131072); neither is an error, as there. */
static int phi3_read_window(struct rbee_model *m, int *window, char *err) {
    const struct rb_hparams *hp = &m->hp;
    int dflt = 0;
    if ((hp->n_layers == 32 || hp->n_layers == 40) && hp->n_ctx_train == 4096) dflt = 2047;
    else if (hp->n_layers == 32 && hp->n_heads_kv == 32 && hp->n_ctx_train == 131072) dflt = 262144;
    else if (hp->n_layers == 40 && hp->n_ctx_train == 131072) dflt = 131072;
    return rb_hp_u32(m, "attention.sliding_window", dflt == 0, (uint32_t)dflt, window, err);
}

static int phi3_bind_layer(struct rbee_model *m, int il, char *err) {
    const struct rb_hparams *hp = &m->hp;
    struct rb_layer *l = &m->layers[il];
    int64_t e = hp->n_embd, q_dim = (int64_t)hp->n_heads * hp->head_dim;
    int64_t kv_dim = (int64_t)hp->n_heads_kv * hp->head_dim;
    const int64_t qkv_rows[3] = { q_dim, kv_dim, kv_dim }, up_rows[2] = { hp->n_ff, hp->n_ff };
    struct rb_weight *const qkv[3] = { &l->wq, &l->wk, &l->wv }, *const gate_up[2] = { &l->w_gate, &l->w_up };
    char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, il), n)
    if (rb_bind_vector(m, NAME("attn_norm.weight"), e, 1, &l->attn_norm, err) ||
        rb_bind_split(m, NAME("attn_qkv.weight"), e, 3, qkv_rows, qkv, NULL, NULL, err) ||
        rb_bind_weight(m, NAME("attn_output.weight"), q_dim, e, 1, &l->wo, err) ||
        rb_bind_vector(m, NAME("ffn_norm.weight"), e, 1, &l->ffn_norm, err) ||
        rb_bind_split(m, NAME("ffn_up.weight"), e, 2, up_rows, gate_up, NULL, NULL, err) ||
        rb_bind_weight(m, NAME("ffn_down.weight"), hp->n_ff, e, 1, &l->w_down, err))
        return -1;
#undef NAME
    return 0;
}

static int phi3_bind_tensors(struct rbee_model *m, char *err) {
    int window;
    if (phi3_read_window(m, &window, err) ||
        rb_bind_rope_factors(m, "rope_factors_short.weight", &m->rope_freqs, err) ||
        rb_bind_rope_factors(m, "rope_factors_long.weight", &m->rope_long, err))
        return -1;
    if (!m->rope_freqs != !m->rope_long) {
        snprintf(err, RB_ERR_MAX, "missing tensor '%s' (LongRoPE needs both factor tensors)",
                 m->rope_freqs ? "rope_factors_long.weight" : "rope_factors_short.weight");
        return -1;
    }
    for (int il = 0; il < m->hp.n_layers; il++) {
        if (phi3_bind_layer(m, il, err)) return -1;
        struct rb_attn_params *a = &m->layers[il].attn;
        a->q_scale = 1.0f / sqrtf((float)m->hp.head_dim);
        a->kq_scale = 1.0f;
        a->window = window;
    }
    return rb_bind_output(m, 1, err);
}

const struct rb_arch rb_arch_phi3 = {
    .name = "phi3",
    .norm = RB_NORM_RMS,
    .rope = RB_ROPE_NEOX,
    .ffn = RB_FFN_SWIGLU,
    .read_hparams = rb_read_decoder_hparams,
    .bind_tensors = phi3_bind_tensors,
};
