/* attention.h - causal multi-head attention (MHA/GQA/MQA) over a KV cache
 * stored as F32, F16 (default), Q8_0 or Q4_0.
 *
 * Layout: for each layer and KV head, K is n_ctx rows of head_dim values,
 * so generation reads one KV head's keys contiguously. Float V (F32, F16)
 * is stored transposed, head_dim rows of n_ctx values, so each output value
 * is one contiguous dot product with the attention weights; quantized V
 * (Q8_0, Q4_0) is stored in rows like K, since its 32-value blocks must
 * hold one token's values to be written one token at a time.
 * Threads: this layer knows nothing about the thread pool; the caller splits
 * work by calling rb_attention on disjoint ranges of query heads (and query
 * tokens during prompt processing), each thread with its own scratch.
 */
#ifndef RB_ATTENTION_H
#define RB_ATTENTION_H

#include <stddef.h>
#include <stdint.h>
#include "../gguf/gguf.h"

struct rb_kv_cache {
    int n_layers, n_ctx, n_heads_kv, head_dim;
    uint32_t type_k, type_v;  /* RB_TYPE_F32, F16, Q8_0 or Q4_0 */
    size_t k_row_bytes, v_row_bytes; /* bytes of one token's head_dim values as stored (may be padded) */
    int v_trans;              /* 1: V is [n_layers][n_heads_kv][head_dim][n_ctx] (float types) */
    uint8_t *k, *v;
};

/* Bytes the cache will take (so `rbee info -c N` can print it before loading). */
size_t rb_kv_bytes(int n_layers, int n_ctx, int n_heads_kv, int head_dim, uint32_t type_k, uint32_t type_v);
int rb_kv_init(struct rb_kv_cache *kv, int n_layers, int n_ctx, int n_heads_kv, int head_dim,
               uint32_t type_k, uint32_t type_v, char *err);
void rb_kv_free(struct rb_kv_cache *kv);
/* Parse "f32", "f16", "q8_0", "q4_0"; -1 if not a cache type. */
int rb_kv_type_parse(const char *s, uint32_t *type);

/* Store K and V of n_tok tokens at positions [pos, pos + n_tok) for one layer.
 * k, v: [n_tok][n_heads_kv * head_dim] F32. Caller guarantees pos + n_tok <= n_ctx
 * (a range outside the cache stores nothing rather than write past it). */
void rb_kv_store(struct rb_kv_cache *kv, int layer, int pos, int n_tok, const float *k, const float *v);

/* Floats of scratch one thread needs for rb_attention. */
size_t rb_attention_scratch_floats(const struct rb_kv_cache *kv);

/* How a model scales and masks its attention (filled per layer by the
 * architecture, runtime/model.h). */
struct rb_attn_params {
    float q_scale;  /* each query row is multiplied by this in F32 before q.k (phi3: 1/sqrt(hd),
                       as its reference scales Q); 1: left as it is */
    float kq_scale; /* q.k is multiplied by this before the softmax (usually 1/sqrt(hd)) */
    int window;     /* 0: a query at position p sees keys 0 .. p; w > 0: only the last w of them,
                       p - w + 1 .. p (sliding-window attention) */
};

/* Plain causal attention: q_scale 1, kq_scale 1/sqrt(head_dim), no window. */
struct rb_attn_params rb_attn_params_default(int head_dim);

/* For query heads [head_begin, head_end) and query tokens [tok_begin, tok_end)
 * of a batch whose first token sits at position pos (token t sees keys up to
 * pos + t, and at most ap->window of them): out = softmax(q k^T * scales) v.
 * q, out: [n_tok][n_heads * head_dim] F32 (rows of the whole batch).
 * kern: the kernel table the dot products, softmax and F16 conversions run
 * with (the context's); an entry the table lacks (NULL) uses attention/'s
 * plain C, so a zeroed table runs the portable code alone.
 * Numerics match the reference runtime for an F16 cache: q rounded to F16
 * for q.k, softmax in F32, weights rounded to F16 before the product with v. */
struct rb_kernels;
void rb_attention(const struct rb_kernels *kern, const struct rb_kv_cache *kv, const struct rb_attn_params *ap,
                  int layer, int n_heads, const float *q, float *out, int pos,
                  int tok_begin, int tok_end, int head_begin, int head_end, float *scratch);

#endif
