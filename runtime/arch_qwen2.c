/* arch_qwen2.c - general.architecture = "qwen2" (Qwen2, Qwen2.5): the
 * llama block with NEOX rotary positions (each head's two halves rotate
 * against each other), required q/k/v biases and no output bias, SwiGLU,
 * usually a tied output (token_embd.weight). */
#include "model.h"

static int qwen2_bind_tensors(struct rbee_model *m, char *err) {
    for (int il = 0; il < m->hp.n_layers; il++)
        if (rb_bind_llama_layer(m, il, 1, err)) return -1;
    rb_set_attn_default(m);
    return rb_bind_output(m, 0, err);
}

const struct rb_arch rb_arch_qwen2 = {
    .name = "qwen2",
    .norm = RB_NORM_RMS,
    .rope = RB_ROPE_NEOX,
    .ffn = RB_FFN_SWIGLU,
    .read_hparams = rb_read_decoder_hparams,
    .bind_tensors = qwen2_bind_tensors,
};
