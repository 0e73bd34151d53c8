/* avx512.h - AVX-512 kernels defined outside avx512.c (avx512_q32.c, avx512_kq.c), for
 * its table. Only for CPUs with AVX-512 F/BW/VL/DQ and VNNI. */
#ifndef RB_AVX512_H
#define RB_AVX512_H

#include <stddef.h>
#include <stdint.h>

void rb_avx512_gemm_q4_0(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                         const void *act, size_t act_row_bytes, float *out, int64_t out_stride);
void rb_avx512_gemm_q8_0(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                         const void *act, size_t act_row_bytes, float *out, int64_t out_stride);
void rb_avx512_vec_dot_q4_0(int64_t n, float *s, const void *x, const void *y);
void rb_avx512_vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y);

void rb_avx512_gemm_q4_K(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                         const void *act, size_t act_row_bytes, float *out, int64_t out_stride);
void rb_avx512_gemm_q6_K(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                         const void *act, size_t act_row_bytes, float *out, int64_t out_stride);
void rb_avx512_vec_dot_q4_K(int64_t n, float *s, const void *x, const void *y);
void rb_avx512_vec_dot_q6_K(int64_t n, float *s, const void *x, const void *y);

#endif
