/* model.h - a loaded model: hyperparameters, the architecture description
 * and every weight bound by name, type and shape (weights stay in the
 * mapping; small vectors such as norms and biases are copied to F32).
 *
 * Architectures are data: struct rb_arch holds the kinds the one forward
 * pass (forward.c) switches on, plus two hooks, read_hparams and
 * bind_tensors, implemented per architecture in runtime/arch_<name>.c
 * (shared pieces in arch_common.c). Adding an architecture = one
 * arch_<name>.c + one line in model.c's table + its extern below; no
 * kernel and, for the families below, no line of forward.c changes:
 *
 *   norm   RMSNorm, or LayerNorm with the *_b bias vectors
 *   rope   rotary positions: NORM rotates adjacent pairs (llama), NEOX the
 *          two halves of each head (qwen2, phi3); NONE = learned positions
 *          (gpt2: pos_embd = position_embd.weight, n_ctx_train rows)
 *   ffn    SwiGLU down(silu(gate) * up), or GELU down(gelu(up + b)) + b
 *   per layer, struct rb_attn_params (attention/attention.h): the q and
 *          q.k scales and a sliding window, handed to attention as is
 *   weights a fused tensor is bound once and split into row views
 *          (rb_bind_split): gpt2/phi3 attn_qkv -> wq, wk, wv (+ biases),
 *          phi3 ffn_up -> w_gate, w_up; the forward pass only sees views
 *   rope frequencies  rope_freqs.weight (llama 3.1+) divides each pair's
 *          angle by its factor; phi3's LongRoPE pair (rope_factors_short /
 *          _long, by context length) likewise, with rope_attn_factor
 *
 * A tensor in the file that no binding reads refuses the load (by name):
 * an ignored tensor means a wrong result, as an ignored rope_freqs did.
 *
 * What the next families would need:
 *   Qwen3   q_norm / k_norm: an RMSNorm per head of Q and K before rope
 *           (two [head_dim] vectors per layer and one call in forward.c);
 *           head_dim from attention.key_length (already read), no biases.
 *   Gemma 2 embeddings scaled by sqrt(n_embd); post-attention and post-FFN
 *           RMSNorms (the converter already stores norm weights as 1 + w);
 *           GELU-gated FFN (an RB_FFN_GEGLU kind: down(gelu(gate) * up));
 *           attention soft-capping
 *           s = cap * tanh(s / cap) (a `softcap` field in rb_attn_params,
 *           applied in attention.c's pass 1) and final logit soft-capping;
 *           sliding window on every other layer (the per-layer params
 *           already allow it); q scaled by query_pre_attn_scalar^-1/2
 *           (kq_scale).
 *   Gemma 3 as Gemma 2 plus q_norm / k_norm (as Qwen3), 5 local : 1 global
 *           layers, and a second rope (base 10000 for local layers, the
 *           file's base and linear scaling for global): rope tables per
 *           rope setting instead of one per batch.
 */
#ifndef RB_MODEL_H
#define RB_MODEL_H

#include <stdint.h>
#include "../attention/attention.h"
#include "../gguf/gguf.h"
#include "rbee.h"

enum rb_norm_kind { RB_NORM_RMS, RB_NORM_LAYER };   /* RMSNorm, or LayerNorm with bias */
/* NONE: no rotary positions (learned position_embd); NORM: pairs (x[2i], x[2i+1]);
 * NEOX: pairs (x[i], x[i + rope_dim/2]) of the first rope_dim values of each head */
enum rb_rope_kind { RB_ROPE_NONE, RB_ROPE_NORM, RB_ROPE_NEOX };
enum rb_ffn_kind { RB_FFN_SWIGLU, RB_FFN_GELU };     /* down(silu(gate) * up), or down(gelu(up)) */

struct rb_hparams {
    int n_vocab;     /* rows of token_embd */
    int n_ctx_train; /* {arch}.context_length */
    int n_embd;      /* width of the residual stream */
    int n_layers;
    int n_heads, n_heads_kv, head_dim; /* head_dim: attention.key_length, else n_embd / n_heads */
    int n_ff;        /* hidden width of the feed-forward block */
    int rope_dim;    /* leading dims of each head that rotate (<= head_dim) */
    float rope_base;       /* theta base, default 10000 */
    float rope_freq_scale; /* 1 / linear scaling factor */
    float rope_attn_factor;/* cos and sin are multiplied by it (rope.scaling.attn_factor, default 1) */
    int rope_n_ctx_orig;   /* LongRoPE: contexts longer than this use the long factors */
    float norm_eps;
};

/* A 2-D weight as stored: n_out rows of n_in elements of `type`. */
struct rb_weight {
    const uint8_t *data; /* in the mapping; NULL when absent */
    uint32_t type;
    int64_t n_in, n_out;
    size_t row_bytes;
};

struct rb_layer {
    float *attn_norm, *attn_norm_b;        /* [n_embd] (b: LayerNorm only) */
    struct rb_weight wq, wk, wv, wo;       /* views of attn_qkv where it is fused */
    float *bq, *bk, *bv, *bo;              /* biases or NULL */
    struct rb_attn_params attn;            /* scales and window of this layer's attention */
    float *ffn_norm, *ffn_norm_b;          /* [n_embd] */
    struct rb_weight w_gate, w_up, w_down; /* w_gate: SwiGLU only (a view of a fused ffn_up in phi3) */
    float *b_up, *b_down;                  /* biases or NULL */
};

struct rbee_model;

struct rb_arch {
    const char *name;          /* general.architecture */
    enum rb_norm_kind norm;
    enum rb_rope_kind rope;
    enum rb_ffn_kind ffn;
    /* fill m->hp from {arch}.* metadata; n_vocab from token_embd */
    int (*read_hparams)(struct rbee_model *m, char *err);
    /* bind every tensor with rb_bind_weight / rb_bind_split / rb_bind_vector,
     * and set each layer's attn */
    int (*bind_tensors)(struct rbee_model *m, char *err);
};

struct rbee_model {
    struct gguf_file file;
    char *path;
    const struct rb_arch *arch; /* NULL for a vocabulary only (rbee_vocab_load) */
    struct rb_hparams hp;
    struct rb_weight tok_embd;  /* [n_vocab] rows of n_embd */
    struct rb_weight pos_embd;  /* [n_ctx_train] rows of n_embd, learned positions only */
    float *rope_freqs;          /* [rope_dim / 2] divisors of each pair's angle, or NULL */
    float *rope_long;           /* LongRoPE factors for contexts over rope_n_ctx_orig, or NULL */
    float *out_norm, *out_norm_b;
    struct rb_weight output;    /* [n_vocab] rows of n_embd; = tok_embd when tied */
    struct rb_layer *layers;    /* [n_layers] */
    struct rb_tokenizer *tok;
    char name[128];
    struct rbee_model_info info;
    float **owned;              /* copied vectors, freed with the model */
    int n_owned, cap_owned;
    uint8_t *bound;             /* [file.n_tensors] 1 once a binding read the tensor */
    char **meta_str;            /* [n_kv] NUL-terminated copies of string values, NULL for others */
    char arch_name[64];         /* general.architecture (rbee_vocab_load only) */
};

/* Bind "name" as a weight of n_out rows of n_in, or a vector of n floats.
 * required = 0: a missing tensor leaves *w zeroed / *v NULL and returns 0.
 * Errors name the tensor and print expected and actual shape or type.
 * rb_bind_table: a weight only ever read a row at a time with
 * rb_weight_row_f32 (position_embd), so any type that dequantizes will do. */
int rb_bind_weight(struct rbee_model *m, const char *name, int64_t n_in, int64_t n_out,
                   int required, struct rb_weight *w, char *err);
int rb_bind_table(struct rbee_model *m, const char *name, int64_t n_in, int64_t n_out,
                  int required, struct rb_weight *w, char *err);
int rb_bind_vector(struct rbee_model *m, const char *name, int64_t n, int required,
                   float **v, char *err);
/* A fused weight (always required): n_parts blocks of rows, rows[i] each,
 * stored one after the other; parts[i] becomes a view of block i. If
 * bias_name is not NULL its vector (sum of rows, required) is split the
 * same way into biases[i]. */
int rb_bind_split(struct rbee_model *m, const char *name, int64_t n_in, int n_parts, const int64_t *rows,
                  struct rb_weight *const *parts, const char *bias_name, float **biases, char *err);

/* Metadata helpers for read_hparams: "{arch}.suffix". */
int rb_hp_u32(const struct rbee_model *m, const char *suffix, int required, uint32_t dflt,
              int *out, char *err);
int rb_hp_f32(const struct rbee_model *m, const char *suffix, int required, float dflt,
              float *out, char *err);

/* arch_common.c: what every rotary decoder reads and binds alike.
 * rb_read_decoder_hparams: context_length, embedding_length, block_count,
 * feed_forward_length, head counts, key_length / value_length, RMS epsilon,
 * rope dimension / base / scaling (linear, or none), rope attn_factor; and
 * refuses what rbee cannot run (experts) by name. */
int rb_read_decoder_hparams(struct rbee_model *m, char *err);
/* Every layer's attention: 1/sqrt(head_dim) on q.k, no window. */
void rb_set_attn_default(struct rbee_model *m);
/* output_norm.weight, then output.weight (required or not: absent = tied). */
int rb_bind_output(struct rbee_model *m, int output_required, char *err);

/* The llama block of layer il: attn_norm, attn_q/k/v, attn_output, ffn_norm,
 * ffn_gate/up/down. qkv_bias 0: the four attention biases are optional
 * (llama); 1: q/k/v biases are required and there is no output bias (qwen2). */
int rb_bind_llama_layer(struct rbee_model *m, int il, int qkv_bias, char *err);
/* An optional [rope_dim / 2] vector of rope factors (rope_freqs.weight,
 * rope_factors_long.weight ...), every one positive. */
int rb_bind_rope_factors(struct rbee_model *m, const char *name, float **v, char *err);
/* rbee_model_load for a file already in memory (the fuzzer); buf must
 * outlive the model. */
int rb_model_load_memory(rbee_model **out, const void *buf, size_t size, char *err);

/* Dequantize row `row` of a weight into n_in floats. */
void rb_weight_row_f32(const struct rb_weight *w, int64_t row, float *out);

/* The rope factors a context of n_ctx positions uses ([rope_dim / 2] or NULL). */
const float *rb_rope_factors(const struct rbee_model *m, int n_ctx);

extern const struct rb_arch rb_arch_llama; /* arch_llama.c */
extern const struct rb_arch rb_arch_qwen2; /* arch_qwen2.c */
extern const struct rb_arch rb_arch_phi3;  /* arch_phi3.c */
extern const struct rb_arch rb_arch_gpt2;  /* arch_gpt2.c */

#endif
