/* kv_rows.h - private to attention/: how one cache row is stored and read.
 *
 * The hot loops of attention read F16 rows and take dot products; the plain
 * C versions here (the fallbacks for kernel-table entries a table lacks)
 * are small static inline functions written with fixed-width inner loops so
 * the compiler vectorizes them at -O2 with the baseline ISA (attention/
 * gets no special flags). F16 conversion and the Q8_0 / Q4_0 block
 * quantizers are quant/'s (quant.h), the only ones in the code base.
 *
 * Row layout in the cache (one row = one token's head_dim values of one KV head):
 *   F32, F16: head_dim values, no padding.
 *   Q8_0, Q4_0: whole 32-value blocks, so a head_dim of 8 (stories260K)
 *   works. V rows are zero padded (the padding quantizes to 0 and is never
 *   read back); K rows fill the padding with replicas (below). Cost: a row is
 *   bigger than needed when head_dim is not a multiple of 32 (rb_kv_bytes).
 */
#ifndef RB_KV_ROWS_H
#define RB_KV_ROWS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../quant/quant.h"

/* Values per quant block of the cache (Q8_0 and Q4_0 both use 32). */
#define KV_QK 32

/* The loops below walk their rows KV_LANES values at a time with a fixed-count
 * inner loop, then finish the tail one by one. At -O2, GCC vectorizes only
 * loops it can replace entirely, so a plain loop of unknown length stays
 * scalar; the fixed 8-wide body is vectorized (SLP) whatever n is. */
#define KV_LANES 8

/* Dot product of two float rows; eight running sums so it vectorizes without
 * reassociation flags. */
static inline float kv_dot_f32(const float *restrict a, const float *restrict b, int n) {
    float acc[KV_LANES] = {0};
    int i = 0;
    for (; i + KV_LANES <= n; i += KV_LANES)
        for (int l = 0; l < KV_LANES; l++) acc[l] += a[i + l] * b[i + l];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Dot product of two F16 rows; products of halves are exact in float. */
static inline float kv_dot_f16(const uint16_t *restrict a, const uint16_t *restrict b, int n) {
    float acc[KV_LANES] = {0};
    int i = 0;
    for (; i + KV_LANES <= n; i += KV_LANES)
        for (int l = 0; l < KV_LANES; l++) acc[l] += rb_f16_to_f32(a[i + l]) * rb_f16_to_f32(b[i + l]);
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += rb_f16_to_f32(a[i]) * rb_f16_to_f32(b[i]);
    return s;
}

/* Number of 32-value blocks for head_dim values (Q8_0 / Q4_0 rows). */
static inline int kv_blocks(int head_dim) { return (head_dim + KV_QK - 1) / KV_QK; }

/* ---- quantized keys: rotation and replicas ----
 *
 * A key row of a quantized K cache is stored block by block, and a query is
 * prepared the same way before it is quantized to Q8_0, so that the integer
 * dot product of the two blocks gives back q.k:
 *
 *   rotate   the m values of the block (m = 32, or what is left of head_dim
 *            in the last block) by the orthonormal Walsh-Hadamard matrix
 *            when m is a power of two. q.k is unchanged, but a few large
 *            components are spread over the block, so the scale (set by the
 *            largest value) shrinks and every component rounds finer.
 *   replicate  a block with m < 32 real values holds R = 32 / m copies of
 *            them instead of zero padding. Each key copy is rounded with a
 *            different offset (c + 1/2) / R - 1/2, so the R roundings
 *            together resolve steps R times finer; the query copies are
 *            plain and divided by R, so the block still sums to q.k.
 *
 * Why: head_dim 8 (stories260K) pads each row to a 32-value block. With
 * plain zero padding, Q8_0 keys move its logits by up to 0.55 against the
 * reference; the padding bytes are paid for anyway, and used this way they
 * bring the error under the 0.3 budget. With m = 32 (head_dim 64, 128)
 * there is one copy, no offset, and the block is exactly ggml's Q8_0 / Q4_0
 * of the rotated values. Values are never changed for V rows. */

static inline int kv_is_pow2(int m) { return m > 0 && (m & (m - 1)) == 0; }

/* Copies of an m-value block in 32 slots. */
static inline int kv_copies(int m) { return KV_QK / m; }

/* x[0..m) <- H x / sqrt(m) for m a power of two (fast Walsh-Hadamard). */
static inline void kv_rotate(float *x, int m) {
    for (int h = 1; h < m; h *= 2)
        for (int i = 0; i < m; i += 2 * h)
            for (int j = i; j < i + h; j++) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
    float norm = 1.0f / sqrtf((float)m);
    for (int i = 0; i < m; i++) x[i] *= norm;
}

/* blk[32] <- the key or query block built from x[0..m): rotated if m is a
 * power of two, then copied kv_copies(m) times, zeros after. A query block
 * is also divided by the number of copies, so the block's dot product with
 * a key block sums to q.k (its Q8_0 scale absorbs the factor). */
static inline void kv_key_block(const float *x, int m, int is_query, float *blk) {
    float r[KV_QK];
    memcpy(r, x, (size_t)m * sizeof(float));
    if (kv_is_pow2(m)) kv_rotate(r, m);
    if (is_query && kv_copies(m) > 1)
        for (int i = 0; i < m; i++) r[i] /= (float)kv_copies(m);
    for (int i = 0; i < KV_QK; i++) blk[i] = 0.0f;
    for (int c = 0; c < kv_copies(m); c++) memcpy(blk + c * m, r, (size_t)m * sizeof(float));
}

/* Rounding offset of slot i of a key block of m values (0 when one copy). */
static inline float kv_key_offset(int i, int m) {
    int copies = kv_copies(m), c = i / m;
    return c < copies ? ((float)c + 0.5f) / (float)copies - 0.5f : 0.0f;
}

#endif
