/* gpt2_build.h - a tiny GPT-2 model for the tests, written with the gguf
 * writer: 2 layers, n_embd 64, 4 heads of 16, ffn 128, 16 learned
 * positions, a 260-token byte-level BPE vocabulary, every tensor F32 with
 * seeded random values scaled so attention is far from uniform and logits
 * spread over a few units. g2_write can plant one defect, so a load test
 * sees each refusal alone. Header-only, like gguf_build.h. */
#ifndef RB_TEST_GPT2_BUILD_H
#define RB_TEST_GPT2_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gguf/gguf.h"
#include "../quant/quant.h"

enum { G2_E = 64, G2_HEADS = 4, G2_HD = 16, G2_FF = 128, G2_LAYERS = 2, G2_CTX = 16, G2_VOCAB = 260 };

enum g2_defect {
    G2_OK,
    G2_TIED,           /* no output.weight: the token embedding serves */
    G2_NO_POS,         /* position_embd.weight missing */
    G2_POS_ROWS,       /* position table of 8 rows for a context_length of 16 */
    G2_NO_QKV_BIAS,    /* blk.1.attn_qkv.bias missing */
    G2_QKV_ROWS,       /* blk.0.attn_qkv.weight [64, 128]: no room for v */
    G2_UP_BIAS_LEN,    /* blk.0.ffn_up.bias of n_embd floats, not n_ff */
    G2_NO_OUT_NORM_B,  /* output_norm.bias missing */
    G2_NO_EPS,         /* gpt2.attention.layer_norm_epsilon missing */
    G2_POS_Q4_0,       /* position table in Q4_0 (dequantized row by row: allowed) */
    G2_N_DEFECTS
};

static inline float g2_rand(uint32_t *s) { /* uniform in [-1, 1) */
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 8388608.0f - 1.0f;
}

/* name, [n0] or [n0, n1] (n1 = 0: a vector), values mean + spread * U(-1, 1) */
static inline void g2_tensor(struct gguf_writer *w, const char *name, int64_t n0, int64_t n1,
                             float mean, float spread, uint32_t *seed) {
    int64_t n = n0 * (n1 ? n1 : 1);
    float *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = mean + spread * g2_rand(seed);
    int64_t ne[2] = { n0, n1 };
    rb_gguf_writer_add_tensor(w, name, RB_TYPE_F32, n1 ? 2 : 1, ne, d, (uint64_t)n * sizeof *d, 0);
    free(d);
}

/* 256 byte tokens (GPT-2's byte-to-unicode characters, in byte order),
 * "he", "Ġt", "Ġthe" from three merges, and <|endoftext|> (BOS and EOS;
 * with eot: <|eot_id|>, a control token that only its text marks as the
 * end of a turn, and EOS is "he") */
static inline void g2_tokenizer(struct gguf_writer *w, int eot) {
    char *toks[G2_VOCAB];
    int32_t types[G2_VOCAB];
    unsigned next = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        unsigned cp = printable ? (unsigned)b : next++;
        toks[b] = malloc(4);
        if (cp < 0x80) { toks[b][0] = (char)cp; toks[b][1] = 0; }
        else { toks[b][0] = (char)(0xC0 | (cp >> 6)); toks[b][1] = (char)(0x80 | (cp & 0x3F)); toks[b][2] = 0; }
        types[b] = 1;
    }
    const char *more[] = { "he", "\xC4\xA0t", "\xC4\xA0the", eot ? "<|eot_id|>" : "<|endoftext|>" };
    for (int i = 0; i < 4; i++) {
        toks[256 + i] = malloc(16);
        snprintf(toks[256 + i], 16, "%s", more[i]);
        types[256 + i] = i == 3 ? 3 : 1;
    }
    const char *merges[] = { "h e", "\xC4\xA0 t", "\xC4\xA0t he" };
    rb_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    rb_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)toks, G2_VOCAB);
    rb_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, G2_VOCAB);
    rb_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", merges, 3);
    rb_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 259);
    rb_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", eot ? 256 : 259);
    for (int i = 0; i < G2_VOCAB; i++) free(toks[i]);
}

/* Write w to path and free it; 0 on success (a failure is printed). */
static inline int g2_finish(struct gguf_writer *w, const char *path) {
    char err[RB_ERR_MAX];
    int rc = rb_gguf_writer_write_file(w, path, err);
    if (rc) printf("  cannot write %s: %s\n", path, err);
    rb_gguf_writer_free(w);
    return rc;
}

/* The F32 tensor `name` of f as n doubles (n < 0: whatever its size), for
 * the tests' double-precision references; NULL if it is missing, not F32
 * or not of n values. */
static inline double *g2_read_doubles(const struct gguf_file *f, const char *name, int64_t n) {
    const struct gguf_tensor *t = rb_gguf_get_tensor(f, name);
    int64_t have = t ? t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3] : 0;
    if (!t || t->type != RB_TYPE_F32 || (n >= 0 && have != n)) return NULL;
    double *d = malloc((size_t)have * sizeof *d);
    for (int64_t i = 0; d && i < have; i++) {
        float v;
        memcpy(&v, (const uint8_t *)t->data + i * 4, 4);
        d[i] = v;
    }
    return d;
}

/* The position table as Q4_0 (same random values, quantized). */
static inline void g2_pos_q4_0(struct gguf_writer *w, uint32_t *seed) {
    int64_t n = (int64_t)G2_E * G2_CTX;
    float *f = malloc((size_t)n * sizeof *f);
    for (int64_t i = 0; i < n; i++) f[i] = 0.5f * g2_rand(seed);
    size_t bytes = (size_t)rb_row_bytes(RB_TYPE_Q4_0, G2_E) * G2_CTX;
    uint8_t *q = malloc(bytes);
    rb_traits(RB_TYPE_Q4_0)->from_float(f, q, n);
    int64_t ne[2] = { G2_E, G2_CTX };
    rb_gguf_writer_add_tensor(w, "position_embd.weight", RB_TYPE_Q4_0, 2, ne, q, bytes, 0);
    free(f);
    free(q);
}

/* A row of the output projection that wins whatever the hidden state: with
 * output_norm's weight 0 and bias 1 every hidden state is all ones, and row
 * `winner` is the only one with a large sum. */
static inline void g2_rigged_output(struct gguf_writer *w, int winner, uint32_t *seed) {
    float *d = malloc((size_t)G2_E * G2_VOCAB * sizeof *d);
    for (int64_t i = 0; i < (int64_t)G2_E * G2_VOCAB; i++) d[i] = 0.1f * g2_rand(seed);
    for (int i = 0; i < G2_E; i++) d[(size_t)winner * G2_E + (size_t)i] = 1.0f;
    int64_t ne[2] = { G2_E, G2_VOCAB };
    rb_gguf_writer_add_tensor(w, "output.weight", RB_TYPE_F32, 2, ne, d, (uint64_t)G2_E * G2_VOCAB * sizeof *d, 0);
    free(d);
}

/* Write the tiny model with defect d to path; 0 on success. eot: the
 * tokenizer with <|eot_id|> (g2_tokenizer), and every greedy step picks it. */
static inline int g2_write_model(const char *path, enum g2_defect d, int eot) {
    struct gguf_writer *w = rb_gguf_writer_new();
    uint32_t seed = 11;
    const float mat = 0.25f; /* U(-0.25, 0.25): q.k / sqrt(16) has a spread of about 1 */
    rb_gguf_writer_add_str(w, "general.architecture", "gpt2");
    rb_gguf_writer_add_str(w, "general.name", "tiny-gpt2-test");
    rb_gguf_writer_add_u32(w, "gpt2.context_length", G2_CTX);
    rb_gguf_writer_add_u32(w, "gpt2.embedding_length", G2_E);
    rb_gguf_writer_add_u32(w, "gpt2.block_count", G2_LAYERS);
    rb_gguf_writer_add_u32(w, "gpt2.feed_forward_length", G2_FF);
    rb_gguf_writer_add_u32(w, "gpt2.attention.head_count", G2_HEADS);
    if (d != G2_NO_EPS) rb_gguf_writer_add_f32(w, "gpt2.attention.layer_norm_epsilon", 1e-5f);
    g2_tokenizer(w, eot);

    g2_tensor(w, "token_embd.weight", G2_E, G2_VOCAB, 0.0f, 0.5f, &seed);
    if (d == G2_POS_Q4_0) g2_pos_q4_0(w, &seed);
    else if (d != G2_NO_POS)
        g2_tensor(w, "position_embd.weight", G2_E, d == G2_POS_ROWS ? 8 : G2_CTX, 0.0f, 0.5f, &seed);
    char n[64];
    for (int il = 0; il < G2_LAYERS; il++) {
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, il), n)
        g2_tensor(w, NAME("attn_norm.weight"), G2_E, 0, 1.0f, 0.2f, &seed);
        g2_tensor(w, NAME("attn_norm.bias"), G2_E, 0, 0.0f, 0.1f, &seed);
        g2_tensor(w, NAME("attn_qkv.weight"), G2_E, d == G2_QKV_ROWS && il == 0 ? 2 * G2_E : 3 * G2_E,
                  0.0f, mat, &seed);
        if (!(d == G2_NO_QKV_BIAS && il == 1))
            g2_tensor(w, NAME("attn_qkv.bias"), 3 * G2_E, 0, 0.0f, 0.1f, &seed);
        g2_tensor(w, NAME("attn_output.weight"), G2_E, G2_E, 0.0f, mat, &seed);
        g2_tensor(w, NAME("attn_output.bias"), G2_E, 0, 0.0f, 0.1f, &seed);
        g2_tensor(w, NAME("ffn_norm.weight"), G2_E, 0, 1.0f, 0.2f, &seed);
        g2_tensor(w, NAME("ffn_norm.bias"), G2_E, 0, 0.0f, 0.1f, &seed);
        g2_tensor(w, NAME("ffn_up.weight"), G2_E, G2_FF, 0.0f, mat, &seed);
        g2_tensor(w, NAME("ffn_up.bias"), d == G2_UP_BIAS_LEN && il == 0 ? G2_E : G2_FF, 0, 0.0f, 0.1f, &seed);
        g2_tensor(w, NAME("ffn_down.weight"), G2_FF, G2_E, 0.0f, 0.18f, &seed);
        g2_tensor(w, NAME("ffn_down.bias"), G2_E, 0, 0.0f, 0.1f, &seed);
#undef NAME
    }
    g2_tensor(w, "output_norm.weight", G2_E, 0, eot ? 0.0f : 1.0f, eot ? 0.0f : 0.2f, &seed);
    if (d != G2_NO_OUT_NORM_B) g2_tensor(w, "output_norm.bias", G2_E, 0, eot ? 1.0f : 0.0f, eot ? 0.0f : 0.1f, &seed);
    if (eot) g2_rigged_output(w, 259, &seed);
    else if (d != G2_TIED) g2_tensor(w, "output.weight", G2_E, G2_VOCAB, 0.0f, mat, &seed);
    return g2_finish(w, path);
}

static inline int g2_write(const char *path, enum g2_defect d) { return g2_write_model(path, d, 0); }

#endif
