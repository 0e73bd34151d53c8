/* facts.h - what the bench needs to know about a model file, read from its
 * GGUF header: parameters, type label, and the bytes one generated token
 * reads (the roofline's numerator). */
#ifndef RB_FACTS_H
#define RB_FACTS_H

#include <stdint.h>
#include "../gguf/gguf.h"

struct rb_model_facts {
    char arch[32];
    char type_label[16];     /* "Q4_0", "Q4_K_M"; from general.file_type, else the most common weight type */
    uint64_t n_params;       /* elements of every tensor */
    uint64_t weight_bytes;   /* bytes of every tensor */
    /* Weight bytes one token reads: every tensor except the embedding tables,
     * plus one row of token_embd (and of position_embd). When there is no
     * output.weight the output matmul reads all of token_embd (tied), so it
     * counts whole. */
    uint64_t weight_bytes_per_token;
    int n_layers, n_heads, n_heads_kv, head_dim, n_ctx_train;
};

int rb_model_facts(const struct gguf_file *f, struct rb_model_facts *out, char *err);

/* Bytes generating one token at context n_ctx reads: weights plus the K and V
 * rows of every layer for n_ctx positions, stored as type_k / type_v. */
double rb_bytes_per_token(const struct rb_model_facts *m, int n_ctx, uint32_t type_k, uint32_t type_v);

#endif
