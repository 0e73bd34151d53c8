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

#endif
