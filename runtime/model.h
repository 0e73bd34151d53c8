/* model.h - a loaded model: hyperparameters, the architecture description
 * and every weight bound by name, type and shape (weights stay in the
 * mapping; small vectors such as norms and biases are copied to F32).
 *
 * Architectures are data: struct rb_arch holds the flags the one forward
 * pass (forward.c) switches on, plus two hooks, read_hparams and
 * bind_tensors, implemented per architecture in runtime/arch_<name>.c.
 * Adding an architecture = one arch_<name>.c + one line in model.c's table
 * + its extern below. GPT-2, for example: norm = RB_NORM_LAYER (the *_b
 * vectors), pos = RB_POS_LEARNED (bind pos_embd = position_embd.weight,
 * n_embd x n_ctx_train), fused_qkv = 1 (wqkv + bqkv: rows [q | k | v]),
 * ffn = RB_FFN_GELU (w_up + b_up, w_down + b_down), bo, out_norm_b;
 * head_dim = n_embd / n_heads, n_heads_kv = n_heads, rope fields unused.
 * forward.c already follows every one of these flags.
 */
#ifndef RB_MODEL_H
#define RB_MODEL_H

#include <stdint.h>
#include "../gguf/gguf.h"
#include "rbee.h"

enum rb_norm_kind { RB_NORM_RMS, RB_NORM_LAYER };   /* RMSNorm, or LayerNorm with bias */
enum rb_pos_kind { RB_POS_ROPE, RB_POS_LEARNED };   /* rotary, or a position_embd table */
enum rb_ffn_kind { RB_FFN_SWIGLU, RB_FFN_GELU };     /* down(silu(gate) * up), or down(gelu(up)) */

struct rb_hparams {
    int n_vocab;     /* rows of token_embd */
    int n_ctx_train; /* {arch}.context_length */
    int n_embd;      /* width of the residual stream */
    int n_layers;
    int n_heads, n_heads_kv, head_dim;
    int n_ff;        /* hidden width of the feed-forward block */
    int rope_dim;    /* leading dims of each head that rotate (<= head_dim) */
    float rope_base;       /* theta base, default 10000 */
    float rope_freq_scale; /* 1 / linear scaling factor */
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
    struct rb_weight wq, wk, wv, wqkv, wo; /* wqkv when fused_qkv, else wq/wk/wv */
    float *bq, *bk, *bv, *bqkv, *bo;       /* biases or NULL */
    float *ffn_norm, *ffn_norm_b;          /* [n_embd] */
    struct rb_weight w_gate, w_up, w_down; /* w_gate: SwiGLU only */
    float *b_up, *b_down;                  /* biases or NULL */
};

struct rbee_model;

struct rb_arch {
    const char *name;          /* general.architecture */
    enum rb_norm_kind norm;
    enum rb_pos_kind pos;
    enum rb_ffn_kind ffn;
    int fused_qkv;             /* one attn_qkv weight [n_embd] -> [q | k | v] */
    /* fill m->hp from {arch}.* metadata; n_vocab from token_embd */
    int (*read_hparams)(struct rbee_model *m, char *err);
    /* bind every tensor with rb_bind_weight / rb_bind_vector */
    int (*bind_tensors)(struct rbee_model *m, char *err);
};

struct rbee_model {
    struct gguf_file file;
    char *path;
    const struct rb_arch *arch;
    struct rb_hparams hp;
    struct rb_weight tok_embd;  /* [n_vocab] rows of n_embd */
    struct rb_weight pos_embd;  /* [n_ctx_train] rows of n_embd, learned positions only */
    float *out_norm, *out_norm_b;
    struct rb_weight output;    /* [n_vocab] rows of n_embd; = tok_embd when tied */
    struct rb_layer *layers;    /* [n_layers] */
    struct rb_tokenizer *tok;
    char name[128];
    struct rbee_model_info info;
    float **owned;              /* copied vectors, freed with the model */
    int n_owned, cap_owned;
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

/* Metadata helpers for read_hparams: "{arch}.suffix". */
int rb_hp_u32(const struct rbee_model *m, const char *suffix, int required, uint32_t dflt,
              int *out, char *err);
int rb_hp_f32(const struct rbee_model *m, const char *suffix, int required, float dflt,
              float *out, char *err);

/* rbee_model_load for a file already in memory (the fuzzer); buf must
 * outlive the model. */
int rb_model_load_memory(rbee_model **out, const void *buf, size_t size, char *err);

/* Dequantize row `row` of a weight into n_in floats. */
void rb_weight_row_f32(const struct rb_weight *w, int64_t row, float *out);

extern const struct rb_arch rb_arch_llama; /* arch_llama.c */
extern const struct rb_arch rb_arch_gpt2;  /* arch_gpt2.c */

#endif
