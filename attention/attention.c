/* attention.c - causal attention with GQA/MQA over the KV cache.
 *
 * Glossary: hd = head_dim, group = query heads per KV head, query = one
 * (token, query head) pair; a query sees keys [first, n_keys): n_keys =
 * pos + t + 1, first = 0, or n_keys - window with a sliding window.
 *
 * Algorithm: exact two-pass softmax per query, the way the reference runtime
 * (llama.cpp without flash attention) computes it, so an F16 cache
 * reproduces its rounding:
 *   pass 1  s[j] = dot(q, k_j) * kq_scale     q (times q_scale, in F32, when the
 *           model scales Q first) rounded like the cache wants:
 *           F32 cache: q as is; F16: q rounded to F16 (products of two
 *           halves are exact in F32); Q8_0/Q4_0: q quantized to Q8_0 and
 *           dotted with integer sums, block scales in F32 (q and the stored
 *           keys rotated and replicated per block, see kv_rows.h)
 *   softmax m = max s, e[j] = exp(s[j] - m), sum in double, w = e / sum
 *           (F32); w rounded to F16 when V is F16 (the reference multiplies
 *           F16 weights with F16 values)
 *   pass 2  out[d] = sum_j w[j] * v_j[d] in F32. Float V (F32, F16) is
 *           stored transposed (kv_cache.c), so out[d] is one dot product of
 *           the weights with V's row d; quantized V rows are dequantized a
 *           tile at a time and summed row by row.
 * Numerically stable (max subtracted). The only per-query state is one score
 * per key: scratch is O(n_ctx + hd), never n x n. Exact two-pass (rather
 * than an online running max/sum) is chosen because the F16 rounding of the
 * normalized weights can only be reproduced once the sum is known.
 *
 * Kernels: the dot products of both passes, the softmax and the F16
 * conversions go through the kernel table the caller passes (the
 * context's; simd/kernels.h: gemm or vec_dot of the cache's type, F32 /
 * F16 rows against float queries and weights, Q8_0 / Q4_0 keys against
 * the Q8_0 queries; a gemm call takes a tile of rows against every query
 * of a batch, or all hd rows of transposed V against the queries that see
 * one key range, with the bits of one vec_dot per pair), so they run with
 * AVX2/AVX-512/NEON although this file is compiled for the baseline ISA. An
 * entry the table lacks falls back to the plain C in kv_rows.h and here.
 * The weighted sum of dequantized V rows is plain C written so GCC keeps its
 * running sums in vector registers.
 *
 * Batching: queries that share a KV head (the group's query heads, and
 * consecutive tokens of a prompt) are processed together, up to ATT_BATCH at
 * a time, walking the keys ATT_TILE rows at a time (and V's rows one at a
 * time), so each row is read from memory once per batch, not once per
 * query, and each quantized row dequantized once. Every query's arithmetic
 * is the same whatever batch it lands in, so any split over threads, heads
 * or tokens gives the same bits (for one kernel table).
 */
#include <math.h>
#include <string.h>

#include "attention.h"
#include "kv_rows.h"
#include "../gguf/check.h"
#include "../simd/kernels.h"

#define ATT_BATCH 8 /* queries processed together (TinyLlama's group size) */
#define ATT_TILE 32 /* K/V rows converted at a time (a few KB, stays in L1) */

/* ------------------------------------------------------------ scratch */

/* Per-thread scratch, carved from the caller's float buffer. */
struct att_scratch {
    float *scores;    /* [ATT_BATCH][n_ctx]  scores, then weights */
    uint16_t *w16;    /* [ATT_BATCH][n_ctx]  weights as F16 (F16 V) */
    float *q;         /* [ATT_BATCH][hd]     query rows as pass 1 uses them (F32 K) */
    uint16_t *q16;    /* [ATT_BATCH][hd]     query rows as F16 (F16 K) */
    float *acc;       /* [ATT_BATCH][hd]     output accumulators */
    float *tile;      /* [ATT_TILE][hd]      quantized V rows dequantized */
    block_q8_0 *q8;   /* [ATT_BATCH][n_blk]  query rows as Q8_0 (quantized K) */
};

/* Floats needed to hold n bytes. */
static size_t att_bytes_as_floats(size_t n) { return (n + sizeof(float) - 1) / sizeof(float); }

size_t rb_attention_scratch_floats(const struct rb_kv_cache *kv) {
    size_t hd = (size_t)kv->head_dim, n_blk = (size_t)kv_blocks(kv->head_dim), n_ctx = (size_t)kv->n_ctx;
    return ATT_BATCH * n_ctx + att_bytes_as_floats(ATT_BATCH * n_ctx * sizeof(uint16_t)) +
           ATT_BATCH * hd + att_bytes_as_floats(ATT_BATCH * hd * sizeof(uint16_t)) + ATT_BATCH * hd +
           ATT_TILE * hd + att_bytes_as_floats(ATT_BATCH * n_blk * sizeof(block_q8_0));
}

/* Float alignment is enough for every piece (their fields are 2 or 4 bytes). */
static struct att_scratch att_carve(const struct rb_kv_cache *kv, float *p) {
    size_t hd = (size_t)kv->head_dim, n_ctx = (size_t)kv->n_ctx;
    struct att_scratch s;
    s.scores = p;                  p += ATT_BATCH * n_ctx;
    s.w16 = (uint16_t *)(void *)p; p += att_bytes_as_floats(ATT_BATCH * n_ctx * sizeof(uint16_t));
    s.q = p;                       p += ATT_BATCH * hd;
    s.q16 = (uint16_t *)(void *)p; p += att_bytes_as_floats(ATT_BATCH * hd * sizeof(uint16_t));
    s.acc = p;                     p += ATT_BATCH * hd;
    s.tile = p;                    p += ATT_TILE * hd;
    s.q8 = (block_q8_0 *)(void *)p;
    return s;
}

/* ------------------------------------------------------ reading rows */

static int att_is_quant(uint32_t type) { return type == RB_TYPE_Q8_0 || type == RB_TYPE_Q4_0; }

/* n floats -> F16 bits (round to nearest even), vectorized where the table can. */
static void att_to_f16(const struct rb_kernels *kern, const float *x, uint16_t *h, int n) {
    if (kern->f32_to_f16) kern->f32_to_f16(x, h, n);
    else for (int i = 0; i < n; i++) h[i] = rb_f32_to_f16(x[i]);
}

/* One quantized row (hd values of padded blocks) -> hd floats. Each block
 * is decoded whole (fixed-count loops vectorize) into blk_f, then its real
 * values copied out. */
static void att_dequant_row(uint32_t type, const uint8_t *src, int hd, float *restrict dst) {
    for (int b = 0; b < kv_blocks(hd); b++) {
        int n = hd - b * KV_QK < KV_QK ? hd - b * KV_QK : KV_QK;
        float blk_f[KV_QK];
        if (type == RB_TYPE_Q8_0) {
            block_q8_0 blk;
            memcpy(&blk, src + (size_t)b * sizeof blk, sizeof blk);
            float d = rb_f16_to_f32(blk.d);
            for (int i = 0; i < KV_QK; i++) blk_f[i] = d * (float)blk.qs[i];
        } else {
            block_q4_0 blk;
            memcpy(&blk, src + (size_t)b * sizeof blk, sizeof blk);
            float d = rb_f16_to_f32(blk.d);
            for (int i = 0; i < KV_QK / 2; i++) {
                blk_f[i] = d * (float)((blk.qs[i] & 0x0f) - 8);
                blk_f[i + KV_QK / 2] = d * (float)((blk.qs[i] >> 4) - 8);
            }
        }
        memcpy(dst + b * KV_QK, blk_f, (size_t)n * sizeof(float));
    }
}

/* Plain C fallback: one Q8_0 / Q4_0 row . one Q8_0 row over n_blk blocks,
 * integer sums per block, scales in F32 (the reference's order). */
static float att_dot_quant(uint32_t type, const uint8_t *krow, const block_q8_0 *q, int n_blk) {
    float sum = 0.0f;
    for (int b = 0; b < n_blk; b++) {
        int8_t k[KV_QK];
        float dk;
        if (type == RB_TYPE_Q8_0) {
            block_q8_0 blk;
            memcpy(&blk, krow + (size_t)b * sizeof blk, sizeof blk);
            dk = rb_f16_to_f32(blk.d);
            memcpy(k, blk.qs, KV_QK);
        } else {
            block_q4_0 blk;
            memcpy(&blk, krow + (size_t)b * sizeof blk, sizeof blk);
            dk = rb_f16_to_f32(blk.d);
            for (int i = 0; i < KV_QK / 2; i++) {
                k[i] = (int8_t)((blk.qs[i] & 0x0f) - 8);
                k[i + KV_QK / 2] = (int8_t)((blk.qs[i] >> 4) - 8);
            }
        }
        int32_t sumi = 0;
        for (int i = 0; i < KV_QK; i++) sumi += (int32_t)k[i] * (int32_t)q[b].qs[i];
        sum += (float)sumi * (dk * rb_f16_to_f32(q[b].d));
    }
    return sum;
}

/* ------------------------------------------------------- micro-kernels */

/* Scores of one query against rows [0, n) of F32 rows hd apart. */
static void att_scores_f32(const struct rb_kernels *kern, const float *q, const float *rows, int n, int hd,
                           float scale, float *sc) {
    rb_vec_dot_fn dot = kern->vec_dot[RB_TYPE_F32];
    for (int j = 0; j < n; j++) {
        float d;
        if (dot) dot(hd, &d, rows + (size_t)j * hd, q);
        else d = kv_dot_f32(rows + (size_t)j * hd, q, hd);
        sc[j] = d * scale;
    }
}

/* Scores of one F16 query against rows [0, n) of F16 rows hd apart. */
static void att_scores_f16(const struct rb_kernels *kern, const uint16_t *q, const uint16_t *rows, int n, int hd,
                           float scale, float *sc) {
    rb_vec_dot_fn dot = kern->vec_dot[RB_TYPE_F16];
    for (int j = 0; j < n; j++) {
        float d;
        if (dot) dot(hd, &d, rows + (size_t)j * hd, q);
        else d = kv_dot_f16(rows + (size_t)j * hd, q, hd);
        sc[j] = d * scale;
    }
}

/* Scores of one Q8_0 query against quantized rows [0, n), row_bytes apart. */
static void att_scores_quant(const struct rb_kernels *kern, uint32_t type, const block_q8_0 *q,
                             const uint8_t *rows, size_t row_bytes, int n, int hd, float scale, float *sc) {
    rb_vec_dot_fn dot = kern->vec_dot[type];
    int n_blk = kv_blocks(hd);
    for (int j = 0; j < n; j++) {
        float d;
        if (dot) dot((int64_t)n_blk * KV_QK, &d, rows + (size_t)j * row_bytes, q);
        else d = att_dot_quant(type, rows + (size_t)j * row_bytes, q, n_blk);
        sc[j] = d * scale;
    }
}

/* acc[d] += sum over rows j < n of w[j] * tile[j][d], each acc[d] summed in
 * row order. Sixteen columns at a time, their running sums in named locals
 * so they stay in registers across all rows (an array here is kept in
 * memory by GCC at -O2); the leftover columns one at a time, in the same
 * order, so every element gets the same operations either way. */
static void att_values_f32(float *restrict acc, const float *restrict w, const float *restrict tile,
                           int n, int hd) {
    int d = 0;
    for (; d + 16 <= hd; d += 16) {
        float *o = acc + d;
        float a0 = o[0], a1 = o[1], a2 = o[2], a3 = o[3], a4 = o[4], a5 = o[5], a6 = o[6], a7 = o[7];
        float b0 = o[8], b1 = o[9], b2 = o[10], b3 = o[11], b4 = o[12], b5 = o[13], b6 = o[14], b7 = o[15];
        for (int j = 0; j < n; j++) {
            const float *v = tile + (size_t)j * hd + d;
            float x = w[j];
            a0 += x * v[0]; a1 += x * v[1]; a2 += x * v[2];   a3 += x * v[3];
            a4 += x * v[4]; a5 += x * v[5]; a6 += x * v[6];   a7 += x * v[7];
            b0 += x * v[8]; b1 += x * v[9]; b2 += x * v[10];  b3 += x * v[11];
            b4 += x * v[12]; b5 += x * v[13]; b6 += x * v[14]; b7 += x * v[15];
        }
        o[0] = a0; o[1] = a1; o[2] = a2;   o[3] = a3;   o[4] = a4;   o[5] = a5;   o[6] = a6;   o[7] = a7;
        o[8] = b0; o[9] = b1; o[10] = b2; o[11] = b3; o[12] = b4; o[13] = b5; o[14] = b6; o[15] = b7;
    }
    for (; d < hd; d++) {
        float a = acc[d];
        for (int j = 0; j < n; j++) a += w[j] * tile[(size_t)j * hd + d];
        acc[d] = a;
    }
}

/* ------------------------------------------------------- one batch */

/* Queries sharing one KV head: query i is token tok[i] (its row in q/out)
 * of query head head[i], seeing keys [first[i], n_keys[i]). */
struct att_batch {
    int n;
    int tok[ATT_BATCH], head[ATT_BATCH], first[ATT_BATCH], n_keys[ATT_BATCH];
};

/* Prepare each query row the way pass 1 needs it: scaled by q_scale in F32
 * first if the model asks for it, then as F32, F16 or Q8_0 blocks. */
static void att_prepare_queries(const struct rb_kernels *kern, const struct rb_kv_cache *kv, float q_scale,
                                const struct att_batch *bt, const float *q, int q_stride, struct att_scratch *s) {
    int hd = kv->head_dim, n_blk = kv_blocks(hd);
    for (int i = 0; i < bt->n; i++) {
        const float *qrow = q + (size_t)bt->tok[i] * q_stride + (size_t)bt->head[i] * hd;
        float *qf = s->q + (size_t)i * hd;
        if (q_scale != 1.0f) {
            for (int d = 0; d < hd; d++) qf[d] = qrow[d] * q_scale;
            qrow = qf;
        }
        if (att_is_quant(kv->type_k)) {
            for (int b = 0; b < n_blk; b++) {
                float block[KV_QK];
                int m = hd - b * KV_QK < KV_QK ? hd - b * KV_QK : KV_QK;
                kv_key_block(qrow + b * KV_QK, m, 1, block); /* as the keys were built */
                rb_quantize_block_q8_0(block, NULL, &s->q8[(size_t)i * n_blk + b]);
            }
        } else if (kv->type_k == RB_TYPE_F16) {
            att_to_f16(kern, qrow, s->q16 + (size_t)i * hd, hd);
        } else if (qrow != qf) {
            memcpy(qf, qrow, (size_t)hd * sizeof(float));
        }
    }
}

/* Pass 1: scores[i][j] = q_i . k_j * scale for j in [first[i], n_keys[i]),
 * over keys [j_lo, j_hi) (the union of the batch's ranges). */
static void att_scores(const struct rb_kernels *kern, const struct rb_kv_cache *kv, const uint8_t *k_head,
                       const struct att_batch *bt, int j_lo, int j_hi, float scale, struct att_scratch *s) {
    int hd = kv->head_dim, n_blk = kv_blocks(hd), n_ctx = kv->n_ctx;
    rb_gemm_fn gemm = kern->gemm[kv->type_k];
    /* the queries as the keys' gemm takes them: F32 rows, F16 rows or Q8_0 blocks */
    const void *q_act = s->q;
    int64_t q_len = hd;
    size_t q_bytes = (size_t)hd * sizeof(float);
    if (att_is_quant(kv->type_k)) {
        q_act = s->q8;
        q_len = (int64_t)n_blk * KV_QK;
        q_bytes = (size_t)n_blk * sizeof(block_q8_0);
    } else if (kv->type_k == RB_TYPE_F16) {
        q_act = s->q16;
        q_bytes = (size_t)hd * sizeof(uint16_t);
    }
    for (int j0 = j_lo; j0 < j_hi; j0 += ATT_TILE) {
        int j1 = j0 + ATT_TILE < j_hi ? j0 + ATT_TILE : j_hi;
        const uint8_t *rows = k_head + (size_t)j0 * kv->k_row_bytes;
        if (gemm) /* all rows of the tile x all queries in one call: each K row read once */
            gemm(q_len, j1 - j0, bt->n, rows, kv->k_row_bytes, q_act, q_bytes, s->scores + j0, n_ctx);
        for (int i = 0; i < bt->n; i++) {
            int begin = j0 > bt->first[i] ? j0 : bt->first[i];
            int end = j1 < bt->n_keys[i] ? j1 : bt->n_keys[i];
            if (end <= begin) continue;
            float *sc = s->scores + (size_t)i * n_ctx + begin;
            const uint8_t *row = k_head + (size_t)begin * kv->k_row_bytes;
            /* float rows: calloc'd, hd * 4 (F32) or hd * 2 (F16) bytes each, so aligned */
            if (gemm) /* same bits as vec_dot per row (kernels.h); rows outside [begin, end) are never read */
                for (int j = 0; j < end - begin; j++) sc[j] *= scale;
            else if (att_is_quant(kv->type_k))
                att_scores_quant(kern, kv->type_k, s->q8 + (size_t)i * n_blk, row, kv->k_row_bytes,
                                 end - begin, hd, scale, sc);
            else if (kv->type_k == RB_TYPE_F16)
                att_scores_f16(kern, s->q16 + (size_t)i * hd, (const uint16_t *)(const void *)row, end - begin, hd,
                               scale, sc);
            else
                att_scores_f32(kern, s->q + (size_t)i * hd, (const float *)(const void *)row, end - begin, hd,
                               scale, sc);
        }
    }
}

/* Scores -> softmax weights in place, for n values. Plain C fallback of
 * the kernel table's softmax (same rule: max subtracted, sum in double). */
static void att_softmax_c(float *restrict x, int n) {
    /* max in KV_LANES running lanes: vectorizes, and the max is exact in any order */
    float lane_max[KV_LANES];
    for (int l = 0; l < KV_LANES; l++) lane_max[l] = -INFINITY;
    int j8 = 0;
    for (; j8 + KV_LANES <= n; j8 += KV_LANES)
        for (int l = 0; l < KV_LANES; l++) lane_max[l] = x[j8 + l] > lane_max[l] ? x[j8 + l] : lane_max[l];
    float max = -INFINITY;
    for (int l = 0; l < KV_LANES; l++) max = lane_max[l] > max ? lane_max[l] : max;
    for (; j8 < n; j8++) max = x[j8] > max ? x[j8] : max;
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        x[j] = expf(x[j] - max);
        sum += x[j];
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++) x[j] *= inv;
}

/* Scores -> softmax weights in place: the table's softmax (vectorized
 * exp) where it has one, else plain C. */
static void att_softmax(const struct rb_kernels *kern, float *x, int n) {
    if (kern->softmax) kern->softmax(x, n);
    else att_softmax_c(x, n);
}

/* Pass 2 over transposed float V (v_head: hd rows of n_ctx values):
 * acc_i[d] = dot(w_i, V row d) over the query's keys [first, n_keys). Row d
 * stays in L1 while every query of the batch takes its dot product with it.
 * F16 V meets the weights rounded to F16 (the reference's rounding). */
static void att_values_trans(const struct rb_kernels *kern, const struct rb_kv_cache *kv, const uint8_t *v_head,
                             const struct att_batch *bt, struct att_scratch *s) {
    int hd = kv->head_dim, n_ctx = kv->n_ctx, is_f16 = kv->type_v == RB_TYPE_F16;
    size_t row_bytes = (size_t)n_ctx * (is_f16 ? sizeof(uint16_t) : sizeof(float));
    rb_vec_dot_fn dot = kern->vec_dot[kv->type_v];
    if (is_f16)
        for (int i = 0; i < bt->n; i++) {
            size_t at = (size_t)i * n_ctx + (size_t)bt->first[i];
            att_to_f16(kern, s->scores + at, s->w16 + at, bt->n_keys[i] - bt->first[i]);
        }
    rb_gemm_fn gemm = kern->gemm[kv->type_v];
    if (gemm) { /* queries with one key range (a token's heads) meet all hd rows in one call */
        size_t elt = is_f16 ? sizeof(uint16_t) : sizeof(float);
        const uint8_t *w = is_f16 ? (const uint8_t *)s->w16 : (const uint8_t *)s->scores;
        for (int i0 = 0, i1; i0 < bt->n; i0 = i1) {
            for (i1 = i0 + 1; i1 < bt->n && bt->first[i1] == bt->first[i0] && bt->n_keys[i1] == bt->n_keys[i0]; i1++) {}
            size_t first = (size_t)bt->first[i0];
            gemm(bt->n_keys[i0] - bt->first[i0], hd, i1 - i0, v_head + first * elt, row_bytes,
                 w + ((size_t)i0 * n_ctx + first) * elt, (size_t)n_ctx * elt, s->acc + (size_t)i0 * hd, hd);
        }
        return;
    }
    for (int d = 0; d < hd; d++) {
        const uint8_t *row = v_head + (size_t)d * row_bytes;
        for (int i = 0; i < bt->n; i++) {
            float *out = s->acc + (size_t)i * hd + d;
            int first = bt->first[i], n = bt->n_keys[i] - first;
            size_t at = (size_t)i * n_ctx + (size_t)first;
            if (is_f16) {
                const uint16_t *w = s->w16 + at, *v = (const uint16_t *)(const void *)row + first;
                if (dot) dot(n, out, v, w);
                else *out = kv_dot_f16(v, w, n);
            } else {
                const float *w = s->scores + at, *v = (const float *)(const void *)row + first;
                if (dot) dot(n, out, v, w);
                else *out = kv_dot_f32(v, w, n);
            }
        }
    }
}

/* Pass 2 over quantized V rows: acc_i = sum_j w_ij v_j over keys [j_lo, j_hi),
 * a tile of rows dequantized at a time. */
static void att_values_rows(const struct rb_kv_cache *kv, const uint8_t *v_head,
                            const struct att_batch *bt, int j_lo, int j_hi, struct att_scratch *s) {
    int hd = kv->head_dim, n_ctx = kv->n_ctx;
    memset(s->acc, 0, (size_t)bt->n * hd * sizeof(float));
    for (int j0 = j_lo; j0 < j_hi; j0 += ATT_TILE) {
        int j1 = j0 + ATT_TILE < j_hi ? j0 + ATT_TILE : j_hi;
        for (int j = j0; j < j1; j++)
            att_dequant_row(kv->type_v, v_head + (size_t)j * kv->v_row_bytes, hd, s->tile + (size_t)(j - j0) * hd);
        for (int i = 0; i < bt->n; i++) {
            const float *w = s->scores + (size_t)i * n_ctx;
            float *acc = s->acc + (size_t)i * hd;
            int begin = j0 > bt->first[i] ? j0 : bt->first[i];
            int end = j1 < bt->n_keys[i] ? j1 : bt->n_keys[i];
            if (end > begin) att_values_f32(acc, w + begin, s->tile + (size_t)(begin - j0) * hd, end - begin, hd);
        }
    }
}

static void att_run_batch(const struct rb_kernels *kern, const struct rb_kv_cache *kv,
                          const struct rb_attn_params *ap, int layer, int kv_head,
                          const struct att_batch *bt, const float *q, float *out, int q_stride,
                          struct att_scratch *s) {
    /* one KV head's n_ctx rows (K; V as rows or transposed: the same bytes) */
    size_t head_row0 = ((size_t)layer * kv->n_heads_kv + kv_head) * kv->n_ctx;
    const uint8_t *k_head = kv->k + head_row0 * kv->k_row_bytes;
    const uint8_t *v_head = kv->v + head_row0 * kv->v_row_bytes;
    int hd = kv->head_dim, j_lo = kv->n_ctx, j_hi = 0;
    for (int i = 0; i < bt->n; i++) {
        j_lo = bt->first[i] < j_lo ? bt->first[i] : j_lo;
        j_hi = bt->n_keys[i] > j_hi ? bt->n_keys[i] : j_hi;
    }

    att_prepare_queries(kern, kv, ap->q_scale, bt, q, q_stride, s);
    att_scores(kern, kv, k_head, bt, j_lo, j_hi, ap->kq_scale, s);
    for (int i = 0; i < bt->n; i++)
        att_softmax(kern, s->scores + (size_t)i * kv->n_ctx + bt->first[i], bt->n_keys[i] - bt->first[i]);
    if (kv->v_trans) att_values_trans(kern, kv, v_head, bt, s);
    else att_values_rows(kv, v_head, bt, j_lo, j_hi, s);
    for (int i = 0; i < bt->n; i++)
        memcpy(out + (size_t)bt->tok[i] * q_stride + (size_t)bt->head[i] * hd, s->acc + (size_t)i * hd,
               (size_t)hd * sizeof(float));
}

/* ------------------------------------------------------------ entry */

struct rb_attn_params rb_attn_params_default(int head_dim) {
    struct rb_attn_params p = { .q_scale = 1.0f, .kq_scale = 1.0f / sqrtf((float)head_dim), .window = 0 };
    return p;
}

void rb_attention(const struct rb_kernels *kern, const struct rb_kv_cache *kv, const struct rb_attn_params *ap,
                  int layer, int n_heads, const float *q, float *out, int pos,
                  int tok_begin, int tok_end, int head_begin, int head_end, float *scratch) {
    if (head_begin >= head_end || tok_begin >= tok_end) return;
    /* a range outside the cache is a caller's bug: stop before reading past it */
    RB_CHECK(layer >= 0 && layer < kv->n_layers && n_heads > 0 && n_heads % kv->n_heads_kv == 0 &&
             head_begin >= 0 && head_end <= n_heads && tok_begin >= 0 && pos >= 0 && pos <= kv->n_ctx - tok_end &&
             ap->window >= 0);
    struct att_scratch s = att_carve(kv, scratch);
    int group = n_heads / kv->n_heads_kv;
    int q_stride = n_heads * kv->head_dim;
    /* For each KV head touched, gather its queries (tokens outer, heads
     * inner) into batches. */
    for (int kvh = head_begin / group; kvh <= (head_end - 1) / group; kvh++) {
        int h0 = kvh * group > head_begin ? kvh * group : head_begin;
        int h1 = (kvh + 1) * group < head_end ? (kvh + 1) * group : head_end;
        struct att_batch bt = { .n = 0 };
        for (int t = tok_begin; t < tok_end; t++) {
            int n_keys = pos + t + 1;
            int first = ap->window > 0 && n_keys > ap->window ? n_keys - ap->window : 0;
            for (int h = h0; h < h1; h++) {
                bt.tok[bt.n] = t;
                bt.head[bt.n] = h;
                bt.first[bt.n] = first;
                bt.n_keys[bt.n] = n_keys;
                if (++bt.n == ATT_BATCH) {
                    att_run_batch(kern, kv, ap, layer, kvh, &bt, q, out, q_stride, &s);
                    bt.n = 0;
                }
            }
        }
        if (bt.n) att_run_batch(kern, kv, ap, layer, kvh, &bt, q, out, q_stride, &s);
    }
}
