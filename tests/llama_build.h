/* llama_build.h - a tiny llama model for the tests, written with the gguf
 * writer: n_embd 256 (so one IQ2_XXS block fits a row), 4 heads of 64, 2 KV
 * heads, ffn 64, 1 layer, a 264-token SPM vocabulary (3 specials, 256 byte
 * tokens, 5 words), every tensor F32 with seeded random values. ll_write
 * can plant one defect (enum ll_defect), so a test sees each refusal
 * alone. Header-only, like gpt2_build.h. */
#ifndef RB_TEST_LLAMA_BUILD_H
#define RB_TEST_LLAMA_BUILD_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gguf/gguf.h"
#include "../quant/quant.h"

enum { LL_E = 256, LL_HEADS = 4, LL_KV = 2, LL_HD = 64, LL_FF = 64, LL_VOCAB = 264 };

enum ll_defect {
    LL_OK, LL_HEADS_NOT_DIVIDING, LL_KV_NOT_DIVIDING, LL_ROPE_TOO_BIG, LL_ZERO_EMBD, LL_NAN_EPS, LL_MISSING_FFN_UP,
    LL_BAD_SHAPE_Q, LL_IQ2_FFN_UP, LL_VOCAB_MISMATCH, LL_UNKNOWN_ARCH, LL_TIED, LL_NAN_NORM, LL_NAN_SCALE,
    LL_ZERO_HEADS, LL_ZERO_HEADS_KV, LL_ZERO_LAYERS, LL_ZERO_CTX, LL_ZERO_FF, LL_ZERO_EPS, LL_EMBD_AS_STR, LL_EPS_AS_U32,
    LL_SCORES_AS_U8, LL_SHORT_TYPES, LL_EOS_OUT_OF_RANGE, LL_BAD_SHAPE_NORM, LL_BAD_SHAPE_DOWN, LL_MISSING_OUTPUT_NORM,
    LL_ROPE_ZERO,     /* rope.dimension_count 0: rotary positions would silently be off */
    LL_KEY_NUL,       /* a metadata key with a NUL byte inside */
    LL_KEY_BAD_UTF8,  /* a metadata key that is not UTF-8 */
    LL_NAME_BAD_UTF8, /* a tensor name that is not UTF-8 */
    LL_N_DEFECTS
};

static inline float ll_rand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / 16777216.0f - 0.5f) * 0.2f;
}

static inline void ll_tensor(struct gguf_writer *w, const char *name, int64_t n0, int64_t n1, uint32_t *seed, float fill) {
    int64_t n = n0 * n1;
    float *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = fill != 0.0f ? fill : ll_rand(seed);
    int64_t ne[2] = { n0, n1 };
    rb_gguf_writer_add_tensor(w, name, RB_TYPE_F32, n1 > 1 ? 2 : 1, ne, d, (uint64_t)n * 4, 0);
    free(d);
}

static inline void ll_tokenizer(struct gguf_writer *w, int n_vocab, enum ll_defect d) {
    char **toks = malloc((size_t)n_vocab * sizeof *toks);
    float *scores = malloc((size_t)n_vocab * sizeof *scores);
    int32_t *types = malloc((size_t)n_vocab * sizeof *types);
    const char *words[] = { "\xe2\x96\x81" "a", "\xe2\x96\x81" "b", "\xe2\x96\x81" "ab", "a", "b" };
    for (int i = 0; i < n_vocab; i++) {
        toks[i] = malloc(16);
        scores[i] = 0;
        types[i] = 1;
        if (i < 3) { snprintf(toks[i], 16, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>"); types[i] = i ? 3 : 2; }
        else if (i < 259) { snprintf(toks[i], 16, "<0x%02X>", i - 3); types[i] = 6; }
        else if (i < 264) { snprintf(toks[i], 16, "%s", words[i - 259]); scores[i] = -(float)(i - 259); }
        else snprintf(toks[i], 16, "x%d", i);
    }
    rb_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    rb_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)n_vocab);
    if (d == LL_SCORES_AS_U8) { /* token scores stored as bytes */
        uint8_t *bytes = calloc((size_t)n_vocab, 1);
        rb_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_UINT8, bytes, (uint64_t)n_vocab);
        free(bytes);
    } else {
        rb_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n_vocab);
    }
    rb_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types,
                        (uint64_t)(d == LL_SHORT_TYPES ? n_vocab - 1 : n_vocab));
    rb_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    rb_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", d == LL_EOS_OUT_OF_RANGE ? (uint32_t)n_vocab : 2);
    for (int i = 0; i < n_vocab; i++) free(toks[i]);
    free(toks); free(scores); free(types);
}

/* Writes the tiny model with one defect to path. */
static inline int ll_write(const char *path, enum ll_defect d) {
    struct gguf_writer *w = rb_gguf_writer_new();
    uint32_t seed = 1;
    rb_gguf_writer_add_str(w, "general.architecture", d == LL_UNKNOWN_ARCH ? "mamba" : "llama");
    const char *a = d == LL_UNKNOWN_ARCH ? "mamba" : "llama";
    char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s." s, a), k)
    rb_gguf_writer_add_u32(w, KEY("context_length"), d == LL_ZERO_CTX ? 0 : 64);
    if (d == LL_EMBD_AS_STR)
        rb_gguf_writer_add_str(w, KEY("embedding_length"), "256");
    else
        rb_gguf_writer_add_u32(w, KEY("embedding_length"), d == LL_ZERO_EMBD ? 0 : LL_E);
    rb_gguf_writer_add_u32(w, KEY("block_count"), d == LL_ZERO_LAYERS ? 0 : 1);
    rb_gguf_writer_add_u32(w, KEY("feed_forward_length"), d == LL_ZERO_FF ? 0 : LL_FF);
    rb_gguf_writer_add_u32(w, KEY("attention.head_count"), d == LL_HEADS_NOT_DIVIDING ? 5 : d == LL_ZERO_HEADS ? 0 : LL_HEADS);
    rb_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), d == LL_KV_NOT_DIVIDING ? 3 : d == LL_ZERO_HEADS_KV ? 0 : LL_KV);
    rb_gguf_writer_add_u32(w, KEY("rope.dimension_count"), d == LL_ROPE_TOO_BIG ? LL_HD + 2 : d == LL_ROPE_ZERO ? 0 : LL_HD);
    if (d == LL_KEY_NUL) rb_gguf_writer_add_u32(w, "general.nul\x01key", 1); /* the 0x01 becomes 0 below */
    if (d == LL_KEY_BAD_UTF8) rb_gguf_writer_add_u32(w, "general.\xff\xfekey", 1);
    if (d == LL_EPS_AS_U32)
        rb_gguf_writer_add_u32(w, KEY("attention.layer_norm_rms_epsilon"), 0);
    else
        rb_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), d == LL_NAN_EPS ? NAN : d == LL_ZERO_EPS ? 0.0f : 1e-5f);
#undef KEY
    int n_vocab = d == LL_VOCAB_MISMATCH ? LL_VOCAB + 8 : LL_VOCAB;
    ll_tokenizer(w, LL_VOCAB, d);
    ll_tensor(w, "token_embd.weight", LL_E, n_vocab, &seed, 0);
    if (d == LL_BAD_SHAPE_NORM) /* [LL_E, 1] written as a 2-D tensor */
        rb_gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", RB_TYPE_F32, 2, (const int64_t[]){ LL_E / 2, 2 },
                               (float[LL_E]){ 0 }, LL_E * sizeof(float), 0);
    else
        ll_tensor(w, "blk.0.attn_norm.weight", LL_E, 1, &seed, d == LL_NAN_NORM ? NAN : 1.0f);
    ll_tensor(w, "blk.0.attn_q.weight", LL_E, d == LL_BAD_SHAPE_Q ? LL_E / 2 : LL_E, &seed, 0);
    ll_tensor(w, "blk.0.attn_k.weight", LL_E, LL_KV * LL_HD, &seed, 0);
    ll_tensor(w, "blk.0.attn_v.weight", LL_E, LL_KV * LL_HD, &seed, 0);
    ll_tensor(w, "blk.0.attn_output.weight", LL_E, LL_E, &seed, 0);
    ll_tensor(w, "blk.0.ffn_norm.weight", LL_E, 1, &seed, 1.0f);
    if (d == LL_NAN_SCALE) { /* Q8_0 gate with one NaN block scale */
        float *f = malloc(sizeof(float) * LL_E * LL_FF);
        for (int i = 0; i < LL_E * LL_FF; i++) f[i] = ll_rand(&seed);
        size_t n = (size_t)rb_row_bytes(RB_TYPE_Q8_0, LL_E) * LL_FF;
        uint8_t *q = malloc(n);
        rb_traits(RB_TYPE_Q8_0)->from_float(f, q, (int64_t)LL_E * LL_FF);
        uint16_t nan_h = 0x7e00;
        memcpy(q + 5 * sizeof(block_q8_0), &nan_h, 2);
        int64_t ne[2] = { LL_E, LL_FF };
        rb_gguf_writer_add_tensor(w, "blk.0.ffn_gate.weight", RB_TYPE_Q8_0, 2, ne, q, n, 0);
        free(f); free(q);
    } else {
        ll_tensor(w, "blk.0.ffn_gate.weight", LL_E, LL_FF, &seed, 0);
    }
    if (d == LL_IQ2_FFN_UP) {
        size_t n = (size_t)LL_FF * 66; /* one 66-byte IQ2_XXS block per row of 256 */
        uint8_t *z = calloc(n, 1);
        int64_t ne[2] = { LL_E, LL_FF };
        rb_gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", RB_TYPE_IQ2_XXS, 2, ne, z, n, 0);
        free(z);
    } else if (d != LL_MISSING_FFN_UP) {
        ll_tensor(w, "blk.0.ffn_up.weight", LL_E, LL_FF, &seed, 0);
    }
    if (d == LL_BAD_SHAPE_DOWN) /* transposed: [LL_E, LL_FF] instead of [LL_FF, LL_E] */
        ll_tensor(w, "blk.0.ffn_down.weight", LL_E, LL_FF, &seed, 0);
    else
        ll_tensor(w, "blk.0.ffn_down.weight", LL_FF, LL_E, &seed, 0);
    if (d != LL_MISSING_OUTPUT_NORM) ll_tensor(w, "output_norm.weight", LL_E, 1, &seed, 1.0f);
    if (d == LL_NAME_BAD_UTF8) ll_tensor(w, "extra.\xc0\xaf.weight", LL_E, 1, &seed, 1.0f); /* overlong '/' */
    if (d != LL_TIED) ll_tensor(w, "output.weight", LL_E, n_vocab, &seed, 0);
    char err[RB_ERR_MAX];
    void *buf = NULL;
    size_t size = 0;
    int rc = rb_gguf_writer_write_mem(w, &buf, &size, err);
    rb_gguf_writer_free(w);
    for (size_t i = 0; rc == 0 && d == LL_KEY_NUL && i + 7 <= size; i++)
        if (!memcmp((char *)buf + i, "nul\x01key", 7)) ((char *)buf)[i + 3] = 0;
    FILE *f = rc ? NULL : fopen(path, "wb");
    if (!f || fwrite(buf, 1, size, f) != size) rc = -1;
    if (f && fclose(f) != 0) rc = -1;
    if (rc) printf("  cannot write %s\n", path);
    free(buf);
    return rc;
}

#endif
