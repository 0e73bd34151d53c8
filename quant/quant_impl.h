/* quant_impl.h - private to quant/: the per-format row functions the traits
 * table (traits.c) points at. Each takes n elements, n a multiple of the
 * format's block size (the table's callers check that). */
#ifndef RB_QUANT_IMPL_H
#define RB_QUANT_IMPL_H

#include "quant.h"

/* q4_q5_q8.c */
void rb_dequantize_row_q4_0(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q4_1(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q5_0(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q5_1(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q8_0(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q8_1(const void *src, float *dst, int64_t n);
void rb_quantize_row_q4_0(const float *src, void *dst, int64_t n);
void rb_quantize_row_q4_1(const float *src, void *dst, int64_t n);
void rb_quantize_row_q5_0(const float *src, void *dst, int64_t n);
void rb_quantize_row_q5_1(const float *src, void *dst, int64_t n);
void rb_quantize_row_q8_0(const float *src, void *dst, int64_t n);

/* kquants.c: dequantize every K-quant, quantize Q4_K/Q5_K/Q6_K */
void rb_dequantize_row_q2_K(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q3_K(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q4_K(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q5_K(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q6_K(const void *src, float *dst, int64_t n);
void rb_dequantize_row_q8_K(const void *src, float *dst, int64_t n);
void rb_quantize_row_q4_K(const float *src, void *dst, int64_t n);
void rb_quantize_row_q5_K(const float *src, void *dst, int64_t n);
void rb_quantize_row_q6_K(const float *src, void *dst, int64_t n);

/* kquants_low.c: Q2_K, Q3_K quantizers */
void rb_quantize_row_q2_K(const float *src, void *dst, int64_t n);
void rb_quantize_row_q3_K(const float *src, void *dst, int64_t n);

/* Q4_K/Q5_K 6-bit scale j (0..7) and min of a 12-byte scales field. */
static inline void rb_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q3_K 6-bit scale j (0..15), stored biased by 32: low 4 bits in the nibbles
 * of bytes 0..7 (j < 8 low nibble, else high nibble of byte j - 8), high 2
 * bits in bytes 8..11 (byte 8 + j % 4, bit pair j / 4). Returns scale - 32. */
static inline int rb_get_scale_q3_K(int j, const uint8_t *s) {
    int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

#endif
