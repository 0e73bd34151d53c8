/* kquants.c - dequantize the K-quants (super-blocks of QK_K = 256 values).
 *
 * Glossary: d = super-block scale (F16; F32 in Q8_K), dmin = super-block
 * scale of the sub-block minimums, sc/m = a sub-block's integer scale/min.
 *
 * Where the bits sit, per super-block (ggml's layouts):
 *  Q2_K  16 sub-blocks of 16. scales[j]: sc low nibble, m high nibble.
 *        qs: 2-bit q; within each half (128 values, 32 bytes of qs) byte l
 *        holds values l, l+32, l+64, l+96 at bit shifts 0, 2, 4, 6.
 *        x = d*sc*q - dmin*m.
 *  Q3_K  16 sub-blocks of 16, 6-bit scales (rb_get_scale_q3_K). 2 low bits
 *        of q as Q2_K's qs; the third bit of value v is bit (v / 32) of
 *        hmask[v % 32]. x = d*(sc-32)*(q-4), q = low | high << 2.
 *  Q4_K  8 sub-blocks of 32, 6-bit sc and m (rb_get_scale_min_k4). qs: each
 *        64 values use 32 bytes: value l in the low nibble of byte l, value
 *        l+32 in the high nibble. x = d*sc*q - dmin*m.
 *  Q5_K  as Q4_K, plus the fifth bit of value v (v in 0..255) at bit v / 32
 *        of qh[v % 32].
 *  Q6_K  16 sub-blocks of 16, int8 scales. Each 128 values use 64 bytes of
 *        ql and 32 of qh: value l (l < 32) low nibble of ql[l], l+32 low
 *        nibble of ql[l+32], l+64 high nibble of ql[l], l+96 high nibble of
 *        ql[l+32]; qh[l] bit pairs 0,2,4,6 hold bits 4-5 of l, l+32, l+64,
 *        l+96. x = d*sc*(q-32).
 *  Q8_K  F32 d, int8 qs, bsums[j] = sum of qs[16j..16j+15]. x = d*q.
 */
#include <string.h>

#include "quant_impl.h"

void rb_dequantize_row_q2_K(const void *src, float *dst, int64_t n) {
    const block_q2_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = rb_f16_to_f32(b[i].d), dmin = rb_f16_to_f32(b[i].dmin);
        for (int v = 0; v < QK_K; v++) {
            int half = v / 128, r = v % 128;                /* r = 32*shift_idx + l */
            int q = (b[i].qs[32 * half + r % 32] >> (2 * (r / 32))) & 3;
            uint8_t sc = b[i].scales[v / 16];
            dst[v] = d * (sc & 0xf) * q - dmin * (sc >> 4);
        }
        dst += QK_K;
    }
}

void rb_dequantize_row_q3_K(const void *src, float *dst, int64_t n) {
    const block_q3_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = rb_f16_to_f32(b[i].d);
        for (int v = 0; v < QK_K; v++) {
            int half = v / 128, r = v % 128;
            int lo = (b[i].qs[32 * half + r % 32] >> (2 * (r / 32))) & 3;
            int hi = (b[i].hmask[v % 32] >> (v / 32)) & 1;
            dst[v] = d * rb_get_scale_q3_K(v / 16, b[i].scales) * ((lo | hi << 2) - 4);
        }
        dst += QK_K;
    }
}

void rb_dequantize_row_q4_K(const void *src, float *dst, int64_t n) {
    const block_q4_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = rb_f16_to_f32(b[i].d), dmin = rb_f16_to_f32(b[i].dmin);
        for (int sub = 0; sub < QK_K / 32; sub++) {
            uint8_t sc, m;
            rb_get_scale_min_k4(sub, b[i].scales, &sc, &m);
            float dl = d * sc, ml = dmin * m;
            const uint8_t *q = b[i].qs + 32 * (sub / 2);
            int shift = 4 * (sub % 2);
            for (int l = 0; l < 32; l++) dst[32 * sub + l] = dl * ((q[l] >> shift) & 0xf) - ml;
        }
        dst += QK_K;
    }
}

void rb_dequantize_row_q5_K(const void *src, float *dst, int64_t n) {
    const block_q5_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = rb_f16_to_f32(b[i].d), dmin = rb_f16_to_f32(b[i].dmin);
        for (int sub = 0; sub < QK_K / 32; sub++) {
            uint8_t sc, m;
            rb_get_scale_min_k4(sub, b[i].scales, &sc, &m);
            float dl = d * sc, ml = dmin * m;
            const uint8_t *q = b[i].qs + 32 * (sub / 2);
            int shift = 4 * (sub % 2);
            for (int l = 0; l < 32; l++) {
                int hi = (b[i].qh[l] >> sub) & 1;
                dst[32 * sub + l] = dl * (((q[l] >> shift) & 0xf) | hi << 4) - ml;
            }
        }
        dst += QK_K;
    }
}

/* 6-bit quant of value v (0..255) of a Q6_K block, 0..63. */
static int q6_K_get(const block_q6_K *b, int v) {
    int half = v / 128, r = v % 128, l = r % 32, quarter = r / 32;
    const uint8_t *ql = b->ql + 64 * half, *qh = b->qh + 32 * half;
    int lo = (ql[l + 32 * (quarter & 1)] >> (4 * (quarter >> 1))) & 0xf;
    int hi = (qh[l] >> (2 * quarter)) & 3;
    return lo | hi << 4;
}

void rb_dequantize_row_q6_K(const void *src, float *dst, int64_t n) {
    const block_q6_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = rb_f16_to_f32(b[i].d);
        for (int v = 0; v < QK_K; v++)
            dst[v] = d * b[i].scales[v / 16] * (q6_K_get(&b[i], v) - 32);
        dst += QK_K;
    }
}

void rb_dequantize_row_q8_K(const void *src, float *dst, int64_t n) {
    const block_q8_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        for (int v = 0; v < QK_K; v++) dst[v] = b[i].d * b[i].qs[v];
        dst += QK_K;
    }
}
