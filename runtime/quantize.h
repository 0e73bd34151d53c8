/* quantize.h - library side of `rbee quantize`: convert a GGUF model's
 * weights to another type with llama.cpp's per-tensor mix.
 *
 * File types (general.file_type) use llama.cpp's LLAMA_FTYPE numbers so the
 * files we write read the same in both runtimes.
 */
#ifndef RB_QUANTIZE_H
#define RB_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>
#include "../gguf/gguf.h"

enum rb_ftype {
    RB_FTYPE_F32 = 0, RB_FTYPE_F16 = 1, RB_FTYPE_Q4_0 = 2, RB_FTYPE_Q4_1 = 3,
    RB_FTYPE_Q8_0 = 7, RB_FTYPE_Q5_0 = 8, RB_FTYPE_Q5_1 = 9,
    RB_FTYPE_Q4_K_M = 15, RB_FTYPE_Q5_K_M = 17, RB_FTYPE_Q6_K = 18,
    RB_FTYPE_BF16 = 32
};

/* "q4_k_m" (any case) -> RB_FTYPE_Q4_K_M; -1 if not one we write. */
int rb_ftype_from_name(const char *name, uint32_t *ftype);
/* "q4_k_m", or NULL for an ftype we do not write. */
const char *rb_ftype_name(uint32_t ftype);
/* The tensor type most weights get (Q4_K_M -> q4_K); RB_TYPE_COUNT if unknown. */
uint32_t rb_ftype_base_type(uint32_t ftype);

/* The type tensor t of f gets under ftype: llama.cpp's llama_tensor_get_type
 * rules (output in Q6_K, more bits for some attn_v / ffn_down layers in the
 * _M mixes, ...), tensors that are not 2-D weights kept as they are, and a
 * fallback to a wider type when rows do not divide into blocks. When the
 * choice differs from what the mix asked for, `note` gets the reason (else
 * ""). note may be NULL; it holds RB_ERR_MAX bytes. */
uint32_t rb_quantize_tensor_type(const struct gguf_file *f, const struct gguf_tensor *t,
                                 uint32_t ftype, char *note);

struct rb_quantize_opts {
    uint32_t ftype;
    int n_threads;                                  /* <= 0: 1 */
    /* optional: one line per fallback or other news, no newline */
    void (*note)(void *user, const char *line);
    /* optional: called after each tensor, from the calling thread */
    void (*progress)(void *user, uint64_t done_bytes, uint64_t total_bytes, const char *tensor);
    /* optional: polled from the calling thread between tensors and every
     * few rows; nonzero stops the run with the error "interrupted" */
    int (*cancelled)(void *user);
    void *user;
};

/* Plan the quantized model of `in` into a new writer (*out, free with
 * rb_gguf_writer_free; `in` must stay open until it is written). Metadata is
 * copied, general.file_type and general.quantization_version set; each
 * tensor's type is chosen (notes go out now) and its bytes are converted
 * when the writer reaches it, so writing holds one output tensor in memory,
 * not the model, and NaN/Inf weights fail the write, naming the tensor and
 * row. Same bytes for any n_threads. */
int rb_quantize_gguf(const struct gguf_file *in, const struct rb_quantize_opts *opts,
                     struct gguf_writer **out, char *err);

/* Open in_path, quantize, write out_path through rb_outfile (a file appears
 * whole or not at all; a device is written through; see gguf.h). Refuses
 * an out_path that is in_path. */
int rb_quantize_file(const char *in_path, const char *out_path, const struct rb_quantize_opts *opts, char *err);

#endif
