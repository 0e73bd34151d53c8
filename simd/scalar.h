/* scalar.h - the scalar reference kernels, one exported function per table
 * entry of rb_kernels_scalar (simd/scalar.c). The SIMD tables point at these
 * for entries they have no vector version of, and their tests compare against
 * them.
 *
 * vec_dot: *s = dot(x, y) over n elements; x one row of the weight type, y one
 * row of its activation partner (rb_traits(type)->vec_dot_type). Integer parts
 * are summed exactly in int32 per block; then, in one float accumulator,
 *   32-blocks: sumf += (d_w * d_a) * (float)sumi  [+ m_w * s_a for Q4_1/Q5_1]
 *   K-quants:  sumf += d * (float)sumi - dmin * (float)summins, d = d_w * d_a
 *              (sumi includes the sub-block scales, summins uses Q8_K bsums)
 * F32/F16/BF16 accumulate the float products in double (8 partial sums).
 *
 * quantize_<act>: F32 row -> activation row, round half to even (nearbyintf).
 * Q8_0/Q8_1: d = amax / 127, q = round(x * (127 / amax)). Q8_K: iscale =
 * -127 / (signed extreme), q = round(iscale * x), d = 1 / iscale, bsums filled.
 */
#ifndef RB_SCALAR_H
#define RB_SCALAR_H

#include <stdint.h>

/* ---- dot products: weight row x activation row ---- */
void rb_scalar_vec_dot_f32(int64_t n, float *s, const void *x, const void *y);   /* F32  . F32  */
void rb_scalar_vec_dot_f16(int64_t n, float *s, const void *x, const void *y);   /* F16  . F16  */
void rb_scalar_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y);  /* BF16 . BF16 */
void rb_scalar_vec_dot_q4_0(int64_t n, float *s, const void *x, const void *y);  /* Q4_0 . Q8_0 */
void rb_scalar_vec_dot_q4_1(int64_t n, float *s, const void *x, const void *y);  /* Q4_1 . Q8_1 */
void rb_scalar_vec_dot_q5_0(int64_t n, float *s, const void *x, const void *y);  /* Q5_0 . Q8_0 */
void rb_scalar_vec_dot_q5_1(int64_t n, float *s, const void *x, const void *y);  /* Q5_1 . Q8_1 */
void rb_scalar_vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y);  /* Q8_0 . Q8_0 */
void rb_scalar_vec_dot_q2_K(int64_t n, float *s, const void *x, const void *y);  /* Q2_K . Q8_K */
void rb_scalar_vec_dot_q3_K(int64_t n, float *s, const void *x, const void *y);  /* Q3_K . Q8_K */
void rb_scalar_vec_dot_q4_K(int64_t n, float *s, const void *x, const void *y);  /* Q4_K . Q8_K */
void rb_scalar_vec_dot_q5_K(int64_t n, float *s, const void *x, const void *y);  /* Q5_K . Q8_K */
void rb_scalar_vec_dot_q6_K(int64_t n, float *s, const void *x, const void *y);  /* Q6_K . Q8_K */

/* ---- activation quantizers: F32 row -> partner format ---- */
void rb_scalar_quantize_q8_0(const float *x, void *y, int64_t n); /* n % 32 == 0 */
void rb_scalar_quantize_q8_1(const float *x, void *y, int64_t n); /* n % 32 == 0 */
void rb_scalar_quantize_q8_K(const float *x, void *y, int64_t n); /* n % 256 == 0 */
void rb_scalar_quantize_f16(const float *x, void *y, int64_t n);
void rb_scalar_quantize_bf16(const float *x, void *y, int64_t n);

/* ---- float helpers (any n) ---- */
void rb_scalar_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
void rb_scalar_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps);
void rb_scalar_softmax(float *x, int64_t n);
void rb_scalar_silu_mul(float *out, const float *gate, const float *up, int64_t n);
void rb_scalar_gelu(float *x, int64_t n);
void rb_scalar_add(float *out, const float *a, const float *b, int64_t n);
void rb_scalar_f16_to_f32(const uint16_t *x, float *y, int64_t n);
void rb_scalar_f32_to_f16(const float *x, uint16_t *y, int64_t n);

#endif
