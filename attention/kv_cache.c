/* kv_cache.c - the KV cache: sizes, allocation, and storing K/V rows as
 * F32, F16, Q8_0 or Q4_0.
 *
 * Layout: k = [n_layers][n_heads_kv][n_ctx] rows of k_row_bytes, so one
 * KV head's keys for every position are contiguous and generation streams
 * them. v: the same rows when quantized; float V (F32, F16) transposed,
 * [n_layers][n_heads_kv][head_dim][n_ctx], so attention's weighted sum is
 * hd contiguous dot products (attention.c); both take the same bytes.
 * Quantized rows are padded with zeros to whole 32-value blocks (see
 * kv_rows.h), which lets head_dim 8 use Q8_0/Q4_0; quantized K blocks are
 * stored rotated and replicated (kv_key_block).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "attention.h"
#include "kv_rows.h"
#include "../gguf/check.h"

/* ------------------------------------------------------------ row sizes */

static int kv_type_ok(uint32_t type) {
    return type == RB_TYPE_F32 || type == RB_TYPE_F16 || type == RB_TYPE_Q8_0 || type == RB_TYPE_Q4_0;
}

/* Bytes of one stored row of head_dim values; 0 for a type the cache cannot hold. */
static size_t kv_row_bytes(uint32_t type, int head_dim) {
    switch (type) {
    case RB_TYPE_F32: return (size_t)head_dim * sizeof(float);
    case RB_TYPE_F16: return (size_t)head_dim * sizeof(rb_f16);
    case RB_TYPE_Q8_0: return (size_t)kv_blocks(head_dim) * sizeof(block_q8_0);
    case RB_TYPE_Q4_0: return (size_t)kv_blocks(head_dim) * sizeof(block_q4_0);
    default: return 0;
    }
}

/* rows * row_bytes, or 0 on overflow. */
static size_t kv_mul(size_t rows, size_t row_bytes) {
    if (row_bytes && rows > SIZE_MAX / row_bytes) return 0;
    return rows * row_bytes;
}

/* Rows of one of k or v: n_layers * n_heads_kv * n_ctx, or 0 on bad input / overflow. */
static size_t kv_n_rows(int n_layers, int n_ctx, int n_heads_kv) {
    if (n_layers <= 0 || n_ctx <= 0 || n_heads_kv <= 0) return 0;
    size_t lh = kv_mul((size_t)n_layers, (size_t)n_heads_kv);
    return kv_mul(lh, (size_t)n_ctx);
}

size_t rb_kv_bytes(int n_layers, int n_ctx, int n_heads_kv, int head_dim, uint32_t type_k, uint32_t type_v) {
    if (head_dim <= 0 || !kv_type_ok(type_k) || !kv_type_ok(type_v)) return 0;
    size_t rows = kv_n_rows(n_layers, n_ctx, n_heads_kv);
    size_t kb = kv_mul(rows, kv_row_bytes(type_k, head_dim));
    size_t vb = kv_mul(rows, kv_row_bytes(type_v, head_dim));
    if (!kb || !vb || kb > SIZE_MAX - vb) return 0;
    return kb + vb;
}

int rb_kv_type_parse(const char *s, uint32_t *type) {
    static const struct { const char *name; uint32_t type; } names[] = {
        { "f32", RB_TYPE_F32 }, { "f16", RB_TYPE_F16 }, { "q8_0", RB_TYPE_Q8_0 }, { "q4_0", RB_TYPE_Q4_0 },
    };
    if (!s) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name)) { *type = names[i].type; return 0; }
    return -1;
}

/* ------------------------------------------------------ init and free */

int rb_kv_init(struct rb_kv_cache *kv, int n_layers, int n_ctx, int n_heads_kv, int head_dim,
               uint32_t type_k, uint32_t type_v, char *err) {
    memset(kv, 0, sizeof *kv);
    if (n_layers <= 0 || n_ctx <= 0 || n_heads_kv <= 0 || head_dim <= 0) {
        snprintf(err, RB_ERR_MAX, "kv cache: bad shape (layers %d, ctx %d, kv heads %d, head dim %d)",
                 n_layers, n_ctx, n_heads_kv, head_dim);
        return -1;
    }
    if (!kv_type_ok(type_k) || !kv_type_ok(type_v)) {
        snprintf(err, RB_ERR_MAX, "kv cache: type %s/%s not supported (f32, f16, q8_0, q4_0)",
                 rb_type_name(type_k), rb_type_name(type_v));
        return -1;
    }
    size_t rows = kv_n_rows(n_layers, n_ctx, n_heads_kv);
    size_t kb = kv_mul(rows, kv_row_bytes(type_k, head_dim));
    size_t vb = kv_mul(rows, kv_row_bytes(type_v, head_dim));
    if (!kb || !vb) {
        snprintf(err, RB_ERR_MAX, "kv cache: size overflows (ctx %d)", n_ctx);
        return -1;
    }
    /* calloc: pages are only touched when a position is first written. */
    uint8_t *k = calloc(1, kb), *v = calloc(1, vb);
    if (!k || !v) {
        free(k);
        free(v);
        snprintf(err, RB_ERR_MAX, "kv cache: out of memory (%zu bytes)", kb + vb);
        return -1;
    }
    kv->n_layers = n_layers;
    kv->n_ctx = n_ctx;
    kv->n_heads_kv = n_heads_kv;
    kv->head_dim = head_dim;
    kv->type_k = type_k;
    kv->type_v = type_v;
    kv->k_row_bytes = kv_row_bytes(type_k, head_dim);
    kv->v_row_bytes = kv_row_bytes(type_v, head_dim);
    kv->v_trans = type_v == RB_TYPE_F32 || type_v == RB_TYPE_F16;
    kv->k = k;
    kv->v = v;
    return 0;
}

void rb_kv_free(struct rb_kv_cache *kv) {
    free(kv->k);
    free(kv->v);
    memset(kv, 0, sizeof *kv);
}

/* ------------------------------------------------------------- storing */

/* Store head_dim floats x as one row of the given type at dst. is_key:
 * quantized blocks are built as key blocks (rotated, replicated; kv_rows.h),
 * else padded with zeros. */
static void kv_store_row(uint32_t type, int head_dim, const float *x, uint8_t *dst, int is_key) {
    if (type == RB_TYPE_F32) {
        memcpy(dst, x, (size_t)head_dim * sizeof(float));
    } else if (type == RB_TYPE_F16) {
        for (int i = 0; i < head_dim; i++) {
            rb_f16 h = rb_f32_to_f16(x[i]);
            memcpy(dst + 2 * (size_t)i, &h, 2);
        }
    } else {
        for (int b = 0; b < kv_blocks(head_dim); b++) {
            float block[KV_QK] = {0}, off[KV_QK]; /* zero padding past head_dim */
            int m = head_dim - b * KV_QK < KV_QK ? head_dim - b * KV_QK : KV_QK;
            if (is_key) {
                kv_key_block(x + b * KV_QK, m, 0, block);
                for (int i = 0; i < KV_QK; i++) off[i] = kv_key_offset(i, m);
            } else {
                memcpy(block, x + b * KV_QK, (size_t)m * sizeof(float));
            }
            const float *offsets = is_key && kv_copies(m) > 1 ? off : NULL;
            if (type == RB_TYPE_Q8_0) {
                block_q8_0 q;
                rb_quantize_block_q8_0(block, offsets, &q);
                memcpy(dst + (size_t)b * sizeof q, &q, sizeof q);
            } else {
                block_q4_0 q;
                rb_quantize_block_q4_0(block, offsets, &q);
                memcpy(dst + (size_t)b * sizeof q, &q, sizeof q);
            }
        }
    }
}

/* Value d of n_tok tokens (x: [n_tok][stride] floats) into one transposed
 * V row, at positions [pos, pos + n_tok). */
static void kv_store_column(uint32_t type, const float *x, size_t stride, int n_tok, uint8_t *row, int pos) {
    if (type == RB_TYPE_F32) {
        float *dst = (float *)(void *)row + pos; /* calloc'd, n_ctx * 4 bytes a row: aligned */
        for (int t = 0; t < n_tok; t++) dst[t] = x[(size_t)t * stride];
    } else {
        uint16_t *dst = (uint16_t *)(void *)row + pos;
        for (int t = 0; t < n_tok; t++) dst[t] = rb_f32_to_f16(x[(size_t)t * stride]);
    }
}

void rb_kv_store(struct rb_kv_cache *kv, int layer, int pos, int n_tok, const float *k, const float *v) {
    int hd = kv->head_dim, n_kv = kv->n_heads_kv;
    /* a range outside the cache is a caller's bug: stop before writing past it */
    RB_CHECK(layer >= 0 && layer < kv->n_layers && pos >= 0 && n_tok >= 0 && pos <= kv->n_ctx - n_tok);
    size_t kv_dim = (size_t)n_kv * hd;
    for (int h = 0; h < n_kv; h++) {
        size_t head_row0 = ((size_t)layer * n_kv + h) * kv->n_ctx;
        for (int t = 0; t < n_tok; t++) {
            size_t row = head_row0 + (size_t)(pos + t);
            const float *kx = k + (size_t)t * kv_dim + (size_t)h * hd;
            kv_store_row(kv->type_k, hd, kx, kv->k + row * kv->k_row_bytes, 1);
            if (!kv->v_trans)
                kv_store_row(kv->type_v, hd, v + (size_t)t * kv_dim + (size_t)h * hd, kv->v + row * kv->v_row_bytes, 0);
        }
        if (kv->v_trans) { /* this head's hd rows of n_ctx values start where its n_ctx token rows would */
            uint8_t *v_head = kv->v + head_row0 * kv->v_row_bytes;
            size_t v_row = kv->v_row_bytes / (size_t)hd * (size_t)kv->n_ctx; /* bytes of one value's row */
            for (int d = 0; d < hd; d++)
                kv_store_column(kv->type_v, v + (size_t)h * hd + d, kv_dim, n_tok, v_head + (size_t)d * v_row, pos);
        }
    }
}
