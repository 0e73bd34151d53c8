/* synth.h - synthetic models: a GGUF file with random weights in the exact
 * layout of a real model (names, shapes, per-tensor types of a llama.cpp
 * quantization mix), a real tokenizer copied from a vocab GGUF, and the
 * hyperparameters rbee's loader reads. Used by `rbee synth` and
 * `rbee bench --synthetic`, so throughput can be measured on real layouts
 * without downloading multi-GB models.
 *
 * Weights: each block of a weight tensor is drawn at random from a pool of
 * independently generated N(0, 0.02) blocks quantized with our own reference
 * quantizer (rb_traits(type)->from_float). Drawing quantized blocks from a
 * pool instead of quantizing every block makes generation memory-bound (a
 * 1.1B model in seconds) while every block still holds a genuine quantized
 * normal sample. Norm weights are 1 + N(0, 0.02); biases N(0, 0.02).
 * Output is deterministic for a seed, whatever the thread count. */
#ifndef RB_SYNTH_H
#define RB_SYNTH_H

#include <stdint.h>
#include "../gguf/gguf.h"

struct rb_synth_shape {
    const char *name;   /* "tinyllama-1.1b" */
    const char *arch;   /* "llama", "qwen2", "phi3" or "gpt2" */
    int n_embd, n_layers, n_heads, n_heads_kv, n_ff, n_vocab, n_ctx;
    /* what the real model's file has; 0 / NULL for the usual: */
    float rope_base;       /* 0: 10000 */
    float norm_eps;        /* 0: 1e-5 */
    int tied;              /* 1: no output.weight (logits from token_embd, which takes output's type) */
    int llama3_rope;       /* 1: rope_freqs.weight by Llama 3's formula (factor 32, low 1, high 4, original 8192) */
    int window;            /* {arch}.attention.sliding_window (phi3) */
    const char *vocab;     /* vocab file under $SHARED; NULL: by arch (synth_vocab.c) */
    const char *tokenizer; /* its tokenizer.ggml.model: "llama" (SPM) or "gpt2" (BPE); NULL: by arch */
    int cut_vocab;         /* 1: the vocab has more tokens than n_vocab; keep the first ones (synth_vocab.c) */
};

/* A known shape by name, or NULL. */
const struct rb_synth_shape *rb_synth_shape_find(const char *name);
/* "tinyllama-1.1b, llama2-7b, ..." (for usage and errors) */
const char *rb_synth_shape_names(void);

/* File types (llama.cpp's general.file_type ids): parse "q4_0", "q4_k_m", ... */
struct rb_synth_ftype {
    const char *name;    /* "q4_k_m" (what the user types) */
    const char *label;   /* "Q4_K_M" (what the bench table shows) */
    uint32_t file_type;  /* general.file_type */
    uint32_t base_type;  /* tensor type of most weights */
};
const struct rb_synth_ftype *rb_synth_ftype_find(const char *name);
const struct rb_synth_ftype *rb_synth_ftype_by_id(uint32_t file_type); /* NULL if unknown */
const char *rb_synth_ftype_names(void);

/* The tensor type a weight gets in the mix, as llama.cpp's quantizer chooses
 * it: 1-D tensors F32; output.weight Q6_K (Q8_0 in a q8_0 file, itself in
 * float files); in Q4_K_M/Q5_K_M, attn_v and ffn_down of the layers
 * use_more_bits picks are Q6_K and gpt2's attn_qkv one step up; a row length
 * the type's block does not divide falls back (Q4_K->Q5_0, Q5_K->Q5_1,
 * Q6_K->Q8_0, then F16). layer is -1 for tensors outside the blocks. */
uint32_t rb_synth_tensor_type(const struct rb_synth_ftype *ft, const char *name, int n_dims,
                              int64_t row_len, int layer, int n_layers);

struct rb_synth_opts {
    const struct rb_synth_shape *shape;
    const struct rb_synth_ftype *ftype;
    uint64_t seed;
    const char *vocab_path; /* NULL: rb_synth_default_vocab */
    int n_threads;          /* <= 0: all online CPUs */
    int progress;           /* 1: draw a progress bar on stderr */
    int64_t pool_floats;    /* values per block pool; 0: 4M (tests use fewer to run fast) */
};

/* splitmix64: the next number of the stream at *state (synthetic weights,
 * bench's random prompts); every seed gives a good stream. */
uint64_t rb_synth_rng_next(uint64_t *state);

/* Write the model to out_path through rb_outfile (gguf.h): whole or not at
 * all; tensors are written in place, so a device or FIFO is refused. */
int rb_synth_write(const struct rb_synth_opts *o, const char *out_path, char *err);

/* synth_vocab.c: the vocabulary.
 * The default vocab file of a shape (buf gets the path): $SHARED (or
 * ../shared)/ + shape->vocab, else reference/tokenizer/ggml-vocab-gpt-2.gguf
 * for gpt2 and ggml-vocab-llama-spm.gguf for the rest. */
const char *rb_synth_default_vocab(const struct rb_synth_shape *s, char *buf, size_t cap);
/* Copy every tokenizer.* key of the vocab at path into w, checking it suits
 * the shape (tokenizer model, token count). With shape->cut_vocab, a larger
 * vocab is cut to n_vocab tokens: the first n_vocab - 2, then its BOS and
 * EOS tokens (ids n_vocab - 2 and - 1), and the merges among the kept tokens. */
int rb_synth_copy_vocab(struct gguf_writer *w, const struct rb_synth_shape *s, const char *path, char *err);

#endif
