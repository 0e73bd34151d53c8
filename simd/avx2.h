/* avx2.h - AVX2 kernels (avx2_float.c) that the AVX-512 table reuses as they
 * are: activation quantizers, float dots and helpers, where 512-bit versions
 * gain little. Only for tables used on CPUs with AVX2+FMA+F16C. */
#ifndef RB_AVX2_H
#define RB_AVX2_H

#include <stddef.h>
#include <stdint.h>

void rb_avx2_quantize_q8_0(const float *x, void *y, int64_t n);
void rb_avx2_quantize_q8_1(const float *x, void *y, int64_t n);
void rb_avx2_quantize_q8_K(const float *x, void *y, int64_t n);
void rb_avx2_quantize_f16(const float *x, void *y, int64_t n);
void rb_avx2_vec_dot_f32(int64_t n, float *s, const void *x, const void *y);
void rb_avx2_vec_dot_f16(int64_t n, float *s, const void *x, const void *y);
void rb_avx2_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y);
void rb_avx2_gemm_f16(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                      const void *act, size_t act_row_bytes, float *out, int64_t out_stride);
void rb_avx2_f16_to_f32(const uint16_t *x, float *y, int64_t n);
void rb_avx2_f32_to_f16(const float *x, uint16_t *y, int64_t n);
void rb_avx2_add(float *out, const float *a, const float *b, int64_t n);
void rb_avx2_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
void rb_avx2_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps);
void rb_avx2_softmax(float *x, int64_t n);
void rb_avx2_silu_mul(float *out, const float *gate, const float *up, int64_t n);
void rb_avx2_gelu(float *x, int64_t n);

#endif
