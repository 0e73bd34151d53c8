/* arch_build.h - tiny rotary decoder models for the tests, written with the
 * gguf writer: llama (optionally rope_freqs.weight and attention biases),
 * qwen2 (q/k/v biases, tied output) and phi3 (fused attn_qkv, fused
 * ffn_up [gate | up], separate output, a sliding window, optional LongRoPE
 * factor pair). 2 layers, n_embd 64, 4 heads of 16 over 2 KV heads, ffn 96,
 * the 260-token byte-level vocabulary of gpt2_build.h, every tensor F32
 * with seeded random values (norm weights 1 + noise, so a norm weight that
 * is not applied shows). ab_write can plant one defect, so a load test sees
 * each refusal alone. Header-only, like gpt2_build.h. */
#ifndef RB_TEST_ARCH_BUILD_H
#define RB_TEST_ARCH_BUILD_H

#include "gpt2_build.h"

enum { AB_E = 64, AB_HEADS = 4, AB_KV = 2, AB_HD = 16, AB_FF = 96, AB_LAYERS = 2, AB_CTX = 128 };

enum ab_arch { AB_LLAMA, AB_QWEN2, AB_PHI3 };

enum ab_defect {
    AB_OK,
    AB_ROPE_FREQS_SHAPE,  /* llama: rope_freqs.weight of head_dim floats, not head_dim / 2 */
    AB_ROPE_FREQS_ZERO,   /* llama: a factor of 0 */
    AB_QWEN2_NO_BK,       /* qwen2: blk.1.attn_k.bias missing */
    AB_QWEN2_BQ_LEN,      /* qwen2: blk.0.attn_q.bias of kv_dim floats */
    AB_QWEN2_OUT_BIAS,    /* qwen2: an attn_output.bias (not in the layout) */
    AB_PHI3_QKV_ROWS,     /* phi3: attn_qkv with no room for V */
    AB_PHI3_UP_ROWS,      /* phi3: ffn_up of n_ff rows, not gate and up */
    AB_PHI3_NO_QKV,       /* phi3: separate attn_q/k/v instead of attn_qkv */
    AB_PHI3_NO_OUTPUT,    /* phi3: output.weight missing (it is never tied) */
    AB_PHI3_NO_WINDOW,    /* phi3: no sliding_window key, no default for the shape */
    AB_PHI3_HALF_LONGROPE,/* phi3: rope_factors_short without rope_factors_long */
    AB_EXTRA_TENSOR,      /* any: a tensor the layout does not read */
    AB_EXPERTS,           /* any: {arch}.expert_count = 8 */
    AB_YARN,              /* any: rope.scaling.type yarn */
    AB_VALUE_LEN,         /* any: value_length differs from key_length */
    AB_N_DEFECTS
};

struct ab_opts {
    enum ab_arch arch;
    enum ab_defect defect;
    int window;          /* phi3's sliding_window */
    int rope_freqs;      /* llama: write rope_freqs.weight (factors 1 .. 8) */
    int longrope;        /* phi3: short and long factors, original context 32, attn_factor 1.2 */
    float linear_factor; /* > 0: rope.scaling.type linear with this factor */
    int biases;          /* llama: q/k/v/output biases */
};

static inline const char *ab_arch_name(enum ab_arch a) {
    return a == AB_LLAMA ? "llama" : a == AB_QWEN2 ? "qwen2" : "phi3";
}

/* Rope factors of pair i (rope_freqs / LongRoPE short, long): spread over
 * 1 .. 8 so pairs turn at visibly different speeds. */
static inline float ab_factor(int i, int which) {
    return which == 0 ? 1.0f + 7.0f * (float)i / (AB_HD / 2 - 1) : 2.0f + 0.5f * (float)i;
}

static inline void ab_vector(struct gguf_writer *w, const char *name, int n, int which) {
    float v[AB_HD];
    for (int i = 0; i < n; i++) v[i] = ab_factor(i, which);
    int64_t ne[1] = { n };
    rb_gguf_writer_add_tensor(w, name, RB_TYPE_F32, 1, ne, v, (uint64_t)n * sizeof(float), 0);
}

/* Write the model to path; 0 on success. */
static inline int ab_write(const char *path, const struct ab_opts *o) {
    struct gguf_writer *w = rb_gguf_writer_new();
    uint32_t seed = 23 + (uint32_t)o->arch;
    const char *a = ab_arch_name(o->arch);
    const float mat = 0.3f;
    enum ab_defect d = o->defect;
    char k[96], n[64];
#define KEY(s) (snprintf(k, sizeof k, "%s." s, a), k)
    rb_gguf_writer_add_str(w, "general.architecture", a);
    rb_gguf_writer_add_u32(w, KEY("context_length"), AB_CTX);
    rb_gguf_writer_add_u32(w, KEY("embedding_length"), AB_E);
    rb_gguf_writer_add_u32(w, KEY("block_count"), AB_LAYERS);
    rb_gguf_writer_add_u32(w, KEY("feed_forward_length"), AB_FF);
    rb_gguf_writer_add_u32(w, KEY("attention.head_count"), AB_HEADS);
    rb_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), AB_KV);
    rb_gguf_writer_add_u32(w, KEY("attention.key_length"), AB_HD);
    rb_gguf_writer_add_u32(w, KEY("attention.value_length"), d == AB_VALUE_LEN ? AB_HD / 2 : AB_HD);
    rb_gguf_writer_add_u32(w, KEY("rope.dimension_count"), AB_HD);
    rb_gguf_writer_add_f32(w, KEY("rope.freq_base"), o->arch == AB_QWEN2 ? 1000000.0f : 10000.0f);
    rb_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    if (o->arch == AB_PHI3 && d != AB_PHI3_NO_WINDOW) rb_gguf_writer_add_u32(w, KEY("attention.sliding_window"), (uint32_t)o->window);
    if (o->linear_factor > 0.0f) {
        rb_gguf_writer_add_str(w, KEY("rope.scaling.type"), "linear");
        rb_gguf_writer_add_f32(w, KEY("rope.scaling.factor"), o->linear_factor);
    }
    if (d == AB_YARN) rb_gguf_writer_add_str(w, KEY("rope.scaling.type"), "yarn");
    if (d == AB_EXPERTS) rb_gguf_writer_add_u32(w, KEY("expert_count"), 8);
    if (o->longrope) {
        rb_gguf_writer_add_u32(w, KEY("rope.scaling.original_context_length"), 32);
        rb_gguf_writer_add_f32(w, KEY("rope.scaling.attn_factor"), 1.2f);
    }
#undef KEY
    g2_tokenizer(w, 0);

    g2_tensor(w, "token_embd.weight", AB_E, G2_VOCAB, 0.0f, 0.5f, &seed);
    if (o->rope_freqs || d == AB_ROPE_FREQS_SHAPE || d == AB_ROPE_FREQS_ZERO) {
        if (d == AB_ROPE_FREQS_ZERO) {
            float v[AB_HD / 2] = { 1, 2, 0, 4, 5, 6, 7, 8 };
            int64_t ne[1] = { AB_HD / 2 };
            rb_gguf_writer_add_tensor(w, "rope_freqs.weight", RB_TYPE_F32, 1, ne, v, sizeof v, 0);
        } else {
            ab_vector(w, "rope_freqs.weight", d == AB_ROPE_FREQS_SHAPE ? AB_HD : AB_HD / 2, 0);
        }
    }
    if (o->longrope || d == AB_PHI3_HALF_LONGROPE) {
        ab_vector(w, "rope_factors_short.weight", AB_HD / 2, 0);
        if (d != AB_PHI3_HALF_LONGROPE) ab_vector(w, "rope_factors_long.weight", AB_HD / 2, 1);
    }
    int q_dim = AB_HEADS * AB_HD, kv_dim = AB_KV * AB_HD;
    for (int il = 0; il < AB_LAYERS; il++) {
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, il), n)
        g2_tensor(w, NAME("attn_norm.weight"), AB_E, 0, 1.0f, 0.2f, &seed);
        if (o->arch == AB_PHI3 && d != AB_PHI3_NO_QKV) {
            g2_tensor(w, NAME("attn_qkv.weight"), AB_E, q_dim + (d == AB_PHI3_QKV_ROWS ? 1 : 2) * kv_dim, 0.0f, mat,
                      &seed);
        } else {
            g2_tensor(w, NAME("attn_q.weight"), AB_E, q_dim, 0.0f, mat, &seed);
            g2_tensor(w, NAME("attn_k.weight"), AB_E, kv_dim, 0.0f, mat, &seed);
            g2_tensor(w, NAME("attn_v.weight"), AB_E, kv_dim, 0.0f, mat, &seed);
        }
        if (o->arch == AB_QWEN2 || o->biases) {
            g2_tensor(w, NAME("attn_q.bias"), d == AB_QWEN2_BQ_LEN && il == 0 ? kv_dim : q_dim, 0, 0.0f, 0.3f, &seed);
            if (!(d == AB_QWEN2_NO_BK && il == 1)) g2_tensor(w, NAME("attn_k.bias"), kv_dim, 0, 0.0f, 0.3f, &seed);
            g2_tensor(w, NAME("attn_v.bias"), kv_dim, 0, 0.0f, 0.3f, &seed);
        }
        if (o->biases || d == AB_QWEN2_OUT_BIAS) g2_tensor(w, NAME("attn_output.bias"), AB_E, 0, 0.0f, 0.2f, &seed);
        g2_tensor(w, NAME("attn_output.weight"), q_dim, AB_E, 0.0f, mat, &seed);
        g2_tensor(w, NAME("ffn_norm.weight"), AB_E, 0, 1.0f, 0.2f, &seed);
        if (o->arch == AB_PHI3) {
            g2_tensor(w, NAME("ffn_up.weight"), AB_E, d == AB_PHI3_UP_ROWS ? AB_FF : 2 * AB_FF, 0.0f, mat, &seed);
        } else {
            g2_tensor(w, NAME("ffn_gate.weight"), AB_E, AB_FF, 0.0f, mat, &seed);
            g2_tensor(w, NAME("ffn_up.weight"), AB_E, AB_FF, 0.0f, mat, &seed);
        }
        g2_tensor(w, NAME("ffn_down.weight"), AB_FF, AB_E, 0.0f, 0.25f, &seed);
#undef NAME
    }
    g2_tensor(w, "output_norm.weight", AB_E, 0, 1.0f, 0.2f, &seed);
    if (o->arch != AB_QWEN2 && d != AB_PHI3_NO_OUTPUT) g2_tensor(w, "output.weight", AB_E, G2_VOCAB, 0.0f, mat, &seed);
    if (d == AB_EXTRA_TENSOR) g2_tensor(w, "blk.0.ffn_gate.bias", AB_FF, 0, 0.0f, 0.1f, &seed);
    return g2_finish(w, path);
}

#endif
