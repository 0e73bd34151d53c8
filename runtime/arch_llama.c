/* arch_llama.c - general.architecture = "llama" (Llama 1/2/3.x, TinyLlama,
 * Mistral, SmolLM): RMSNorm, rotary positions (NORM mode: adjacent pairs;
 * Llama 3.1+ divides each pair's angle by its factor in rope_freqs.weight),
 * separate q/k/v (optional biases) with grouped-query attention, SwiGLU
 * feed-forward, output projection or the tied token embedding. */
#include "model.h"

static int llama_bind_tensors(struct rbee_model *m, char *err) {
    if (rb_bind_rope_factors(m, "rope_freqs.weight", &m->rope_freqs, err)) return -1;
    for (int il = 0; il < m->hp.n_layers; il++)
        if (rb_bind_llama_layer(m, il, 0, err)) return -1;
    rb_set_attn_default(m);
    return rb_bind_output(m, 0, err);
}

const struct rb_arch rb_arch_llama = {
    .name = "llama",
    .norm = RB_NORM_RMS,
    .rope = RB_ROPE_NORM,
    .ffn = RB_FFN_SWIGLU,
    .read_hparams = rb_read_decoder_hparams,
    .bind_tensors = llama_bind_tensors,
};
