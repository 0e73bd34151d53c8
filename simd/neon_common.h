/* neon_common.h - AArch64 NEON kernels shared by simd/neon.c (ARMv8.0, e.g.
 * Raspberry Pi 4 / Cortex-A72) and simd/neon_dotprod.c (ARMv8.2 + dotprod,
 * Pi 5 / Cortex-A76).
 *
 * The integer dot products live here as static functions so that each of the
 * two files compiles them with its own -march flags: the only difference is
 * rb_neon_dot_s8(), one `sdot` with dotprod, a widening multiply and pairwise
 * add without. The float helpers do not depend on dotprod; neon.c defines
 * them once (rb_neon_*) and both tables point at them.
 *
 * Exactness: every block's integer sum is exact (int32), and the block scales
 * then meet it in float in the scalar reference's order (simd/scalar.c), one
 * block after another. So every integer vec_dot gives the same bits as the
 * scalar one, for any row length, and the result never depends on how rows
 * are split across threads. gemm (up to 4 tokens per unpacked weight block)
 * is the same driver as vec_dot, so it gives the same bits too.
 *
 * Glossary: w/x = weight row, act/y = activation row, nb = blocks in the row,
 * wrb/arb = bytes between weight/activation rows, os = output row stride,
 * qs/qh = low/high bits of the quants, d = block scale, dmin/m = block minimum,
 * sc = sub-block scale, sumi = exact integer sum of one block, summ = exact
 * sum of mins times activation sums, sumf = float result.
 */
#ifndef RB_NEON_COMMON_H
#define RB_NEON_COMMON_H

#include <arm_neon.h>
#include <stddef.h>
#include <string.h>

#include "kernels.h"
#include "../quant/quant.h"

/* ---- float helpers, defined once in neon.c (no dotprod needed) ---- */
void rb_neon_vec_dot_f32(int64_t n, float *s, const void *x, const void *y);
void rb_neon_vec_dot_f16(int64_t n, float *s, const void *x, const void *y);
void rb_neon_gemm_f16(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                      const void *act, size_t act_row_bytes, float *out, int64_t out_stride);
void rb_neon_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y);
void rb_neon_quantize_q8_0(const float *x, void *y, int64_t n);
void rb_neon_quantize_q8_1(const float *x, void *y, int64_t n);
void rb_neon_quantize_q8_K(const float *x, void *y, int64_t n);
void rb_neon_quantize_f16(const float *x, void *y, int64_t n);
void rb_neon_quantize_bf16(const float *x, void *y, int64_t n);
void rb_neon_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
void rb_neon_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps);
void rb_neon_softmax(float *x, int64_t n);
void rb_neon_silu_mul(float *out, const float *gate, const float *up, int64_t n);
void rb_neon_gelu(float *x, int64_t n);
void rb_neon_add(float *out, const float *a, const float *b, int64_t n);
void rb_neon_f16_to_f32(const uint16_t *x, float *y, int64_t n);
void rb_neon_f32_to_f16(const float *x, uint16_t *y, int64_t n);

/* ================================================================ helpers */

/* One IEEE half -> float with the hardware converter (exact). */
static inline float rb_neon_f16(rb_f16 h) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* acc += a . b, 16 int8 products summed into the four int32 lanes. Exact on
 * both paths (a product fits int16, a lane sum int32); the lanes group the
 * products differently, but only their total is ever used. */
static inline int32x4_t rb_neon_dot_s8(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    int16x8_t hi = vmull_high_s8(a, b);
    return vpadalq_s16(vpadalq_s16(acc, lo), hi);
#endif
}

/* dot of 32 int8 pairs, as one int32x4 (sum its lanes for the total) */
static inline int32x4_t rb_neon_dot32(int8x16_t a0, int8x16_t a1, const int8_t *b) {
    int32x4_t acc = rb_neon_dot_s8(vdupq_n_s32(0), a0, vld1q_s8(b));
    return rb_neon_dot_s8(acc, a1, vld1q_s8(b + 16));
}

/* Four dot products -> one vector whose lane k is the total of dk. */
static inline int32x4_t rb_neon_hsum4(int32x4_t d0, int32x4_t d1, int32x4_t d2, int32x4_t d3) {
    return vpaddq_s32(vpaddq_s32(d0, d1), vpaddq_s32(d2, d3));
}

/* Q4_0 nibbles of 16 bytes: low nibbles are quants 0..15, high 16..31. */
static inline int8x16_t rb_neon_lo4(uint8x16_t q) {
    return vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F)));
}
static inline int8x16_t rb_neon_hi4(uint8x16_t q) {
    return vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
}

/* Q5_0/Q5_1: the 32 fifth bits (bit j of the little-endian u32 qh belongs to
 * quant j) spread to bytes: 0x10 where set, 0 where not. */
static inline void rb_neon_qh_bytes(const uint8_t qh[4], uint8x16_t *h0, uint8x16_t *h1) {
    static const uint8_t idx0[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 };
    static const uint8_t idx1[16] = { 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3 };
    static const uint8_t bit[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
    uint32_t bits;
    memcpy(&bits, qh, 4);
    uint8x16_t b = vreinterpretq_u8_u32(vdupq_n_u32(bits)); /* bytes 0..3 = qh[0..3] */
    uint8x16_t sel = vld1q_u8(bit), x10 = vdupq_n_u8(0x10);
    *h0 = vandq_u8(vtstq_u8(vqtbl1q_u8(b, vld1q_u8(idx0)), sel), x10);
    *h1 = vandq_u8(vtstq_u8(vqtbl1q_u8(b, vld1q_u8(idx1)), sel), x10);
}

/* ===================================================== weight x tokens
 *
 * Every integer kernel is one driver: a weight block is unpacked to int8
 * once, then meets the matching activation block of up to RB_NEON_TOK tokens.
 * vec_dot is the driver with one row and one token, so gemm gives the same
 * bits as vec_dot by construction. Blocks are read through byte pointers
 * (rows may start anywhere: scales are read with memcpy, vectors with vld1).
 */
#define RB_NEON_TOK 4
#define RB_ALWAYS_INLINE static inline __attribute__((always_inline))

static inline float rb_neon_f16_at(const uint8_t *p) {
    rb_f16 h;
    memcpy(&h, p, sizeof h);
    return rb_neon_f16(h);
}

static inline float rb_neon_f32_at(const uint8_t *p) {
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

/* ---------------------------------------------- Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 */

RB_ALWAYS_INLINE size_t rb_blk32_size(int type) {
    switch (type) {
    case RB_TYPE_Q4_0: return sizeof(block_q4_0);
    case RB_TYPE_Q4_1: return sizeof(block_q4_1);
    case RB_TYPE_Q5_0: return sizeof(block_q5_0);
    case RB_TYPE_Q5_1: return sizeof(block_q5_1);
    default: return sizeof(block_q8_0);
    }
}

/* Q4_1/Q5_1 carry a minimum and pair with Q8_1; the others pair with Q8_0. */
RB_ALWAYS_INLINE int rb_blk32_has_min(int type) {
    return type == RB_TYPE_Q4_1 || type == RB_TYPE_Q5_1;
}

/* One weight block -> its 32 quants as int8 (q[0]: quants 0..15, q[1]: 16..31),
 * the format's offset (8 or 16) already subtracted. */
RB_ALWAYS_INLINE void rb_blk32_unpack(int type, const uint8_t *b, int8x16_t q[2]) {
    const uint8x16_t low4 = vdupq_n_u8(0x0F);
    uint8x16_t v, h0, h1;
    switch (type) {
    case RB_TYPE_Q4_0:
        v = vld1q_u8(b + offsetof(block_q4_0, qs));
        q[0] = vsubq_s8(rb_neon_lo4(v), vdupq_n_s8(8));
        q[1] = vsubq_s8(rb_neon_hi4(v), vdupq_n_s8(8));
        break;
    case RB_TYPE_Q4_1:
        v = vld1q_u8(b + offsetof(block_q4_1, qs));
        q[0] = rb_neon_lo4(v);
        q[1] = rb_neon_hi4(v);
        break;
    case RB_TYPE_Q5_0:
        v = vld1q_u8(b + offsetof(block_q5_0, qs));
        rb_neon_qh_bytes(b + offsetof(block_q5_0, qh), &h0, &h1);
        q[0] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, low4), h0)), vdupq_n_s8(16));
        q[1] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), h1)), vdupq_n_s8(16));
        break;
    case RB_TYPE_Q5_1:
        v = vld1q_u8(b + offsetof(block_q5_1, qs));
        rb_neon_qh_bytes(b + offsetof(block_q5_1, qh), &h0, &h1);
        q[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, low4), h0));
        q[1] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(v, 4), h1));
        break;
    default: /* Q8_0 */
        q[0] = vld1q_s8((const int8_t *)b + offsetof(block_q8_0, qs));
        q[1] = vld1q_s8((const int8_t *)b + offsetof(block_q8_0, qs) + 16);
        break;
    }
}

/* The block's float part, in the scalar reference's order. Every format
 * keeps d at byte 0; the minimum m (Q4_1/Q5_1) and Q8_1's s at byte 2. */
_Static_assert(offsetof(block_q4_1, m) == offsetof(block_q5_1, m), "m of Q4_1 and Q5_1");
_Static_assert(offsetof(block_q4_0, d) == 0 && offsetof(block_q5_0, d) == 0 && offsetof(block_q8_0, d) == 0 &&
               offsetof(block_q4_1, d) == 0 && offsetof(block_q5_1, d) == 0 && offsetof(block_q8_1, d) == 0,
               "d first in every 32-element block");
RB_ALWAYS_INLINE float rb_blk32_float(int type, const uint8_t *wb, const uint8_t *ab, int32_t sumi) {
    const float d = rb_neon_f16_at(wb) * rb_neon_f16_at(ab);
    if (rb_blk32_has_min(type))
        return d * (float)sumi + rb_neon_f16_at(wb + offsetof(block_q4_1, m)) * rb_neon_f16_at(ab + offsetof(block_q8_1, s));
    return d * (float)sumi;
}

/* out[t * os + r] = dot(weight row r, activation row t) */
RB_ALWAYS_INLINE void rb_gemm32(int type, int64_t n, int64_t n_rows, int64_t n_tok,
                                const void *w, size_t wrb, const void *act, size_t arb,
                                float *out, int64_t os) {
    const size_t wsize = rb_blk32_size(type);
    const size_t asize = rb_blk32_has_min(type) ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const size_t a_qs = rb_blk32_has_min(type) ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
    const int64_t nb = n / 32;
    for (int64_t r = 0; r < n_rows; r++) {        /* a weight row stays in L1 across tokens */
        const uint8_t *wrow = (const uint8_t *)w + (size_t)r * wrb;
        for (int64_t t0 = 0; t0 < n_tok; t0 += RB_NEON_TOK) {
            const int nt = n_tok - t0 < RB_NEON_TOK ? (int)(n_tok - t0) : RB_NEON_TOK;
            const uint8_t *arow = (const uint8_t *)act + (size_t)t0 * arb;
            float sumf[RB_NEON_TOK] = { 0.0f, 0.0f, 0.0f, 0.0f };
            for (int64_t i = 0; i < nb; i++) {
                const uint8_t *wb = wrow + (size_t)i * wsize;
                int8x16_t q[2];
                rb_blk32_unpack(type, wb, q);
                for (int t = 0; t < nt; t++) {
                    const uint8_t *ab = arow + (size_t)t * arb + (size_t)i * asize;
                    int32_t sumi = vaddvq_s32(rb_neon_dot32(q[0], q[1], (const int8_t *)(ab + a_qs)));
                    sumf[t] += rb_blk32_float(type, wb, ab, sumi);
                }
            }
            for (int t = 0; t < nt; t++) out[(t0 + t) * os + r] = sumf[t];
        }
    }
}

/* ------------------------------------------------------ K-quants x Q8_K */

/* A super-block unpacked: 256 quants as int8 in element order (q[j] holds
 * quants 16j..16j+15), one scale per 16 quants (Q4_K/Q5_K's scale of 32
 * twice), one min per 16 (Q2_K, Q4_K, Q5_K; zero otherwise), and the F16
 * scales d and dmin as floats. Integer sums over it are exact:
 *   sumi = sum_j sc[j] * dot(q[j], a[16j..]),  summ = sum_j m[j] * bsums[j]. */
struct rb_neon_sblk {
    int8x16_t q[16];
    int32x4_t sc[4]; /* scales of quants 64v .. 64v+63 in vector v */
    int16x8_t m[2];
    float d, dmin;
};

/* Q4_K/Q5_K: the 8 6-bit scales and mins packed in 12 bytes, widened to one
 * per 16 quants. */
static inline void rb_neon_scales_k4(const uint8_t *s, int16_t sc16[16], int16_t m16[16]) {
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        rb_get_scale_min_k4(j, s, &sc, &m);
        sc16[2 * j] = sc16[2 * j + 1] = (int16_t)sc;
        m16[2 * j] = m16[2 * j + 1] = (int16_t)m;
    }
}

/* Q2_K/Q3_K 2-bit planes: in half h, quant 32g + l (g < 4, l < 32) is bits
 * 2g..2g+1 of qs[32h + l], so vector 8h + 2g + l/16. For Q3_K (hmask given)
 * the quant is 4 less where bit 4h + g of hmask[l] is clear. */
static inline void rb_neon_unpack_2bit(const uint8_t *qs, const uint8_t *hmask, int8x16_t q[16]) {
    const uint8x16_t three = vdupq_n_u8(3), four = vdupq_n_u8(4);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 2; k++) {
            uint8x16_t v = vld1q_u8(qs + 32 * h + 16 * k);
            uint8x16_t u[4] = { vandq_u8(v, three), vandq_u8(vshrq_n_u8(v, 2), three),
                                vandq_u8(vshrq_n_u8(v, 4), three), vshrq_n_u8(v, 6) };
            uint8x16_t hm = hmask ? vld1q_u8(hmask + 16 * k) : vdupq_n_u8(0);
            for (int g = 0; g < 4; g++) {
                int8x16_t s = vreinterpretq_s8_u8(u[g]);
                if (hmask) {
                    uint8x16_t set = vtstq_u8(hm, vdupq_n_u8((uint8_t)(1u << (4 * h + g))));
                    s = vsubq_s8(s, vreinterpretq_s8_u8(vbicq_u8(four, set)));
                }
                q[8 * h + 2 * g + k] = s;
            }
        }
}

/* Q6_K: in half h, for l < 32 with a = ql[64h + l], b = ql[64h + 32 + l],
 * c = qh[32h + l]: quant l = (a & 15) | (c & 3) << 4, l + 32 = (b & 15) |
 * (c >> 2 & 3) << 4, l + 64 = (a >> 4) | (c >> 4 & 3) << 4, l + 96 = (b >> 4)
 * | (c >> 6) << 4; each minus 32. */
static inline void rb_neon_unpack_q6(const uint8_t *ql, const uint8_t *qh, int8x16_t q[16]) {
    const uint8x16_t low4 = vdupq_n_u8(0x0F), three = vdupq_n_u8(3);
    const int8x16_t m32 = vdupq_n_s8(32);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 2; k++) {
            uint8x16_t a = vld1q_u8(ql + 64 * h + 16 * k), b = vld1q_u8(ql + 64 * h + 32 + 16 * k);
            uint8x16_t c = vld1q_u8(qh + 32 * h + 16 * k);
            uint8x16_t u[4] = {
                vorrq_u8(vandq_u8(a, low4), vshlq_n_u8(vandq_u8(c, three), 4)),
                vorrq_u8(vandq_u8(b, low4), vshlq_n_u8(vandq_u8(vshrq_n_u8(c, 2), three), 4)),
                vorrq_u8(vshrq_n_u8(a, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(c, 4), three), 4)),
                vorrq_u8(vshrq_n_u8(b, 4), vshlq_n_u8(vshrq_n_u8(c, 6), 4)),
            };
            for (int g = 0; g < 4; g++) q[8 * h + 2 * g + k] = vsubq_s8(vreinterpretq_s8_u8(u[g]), m32);
        }
}

/* Q4_K/Q5_K quants: chunk j (64 quants) is 32 bytes of qs, low nibbles first
 * then high nibbles; Q5_K's fifth bit of quant l of chunk j is bit 2j (low
 * nibble) or 2j+1 (high nibble) of qh[l]. */
static inline void rb_neon_unpack_k4(const uint8_t *qs, const uint8_t *qh, int8x16_t q[16]) {
    const uint8x16_t low4 = vdupq_n_u8(0x0F), x10 = vdupq_n_u8(0x10);
    uint8x16_t qh0 = qh ? vld1q_u8(qh) : vdupq_n_u8(0), qh1 = qh ? vld1q_u8(qh + 16) : vdupq_n_u8(0);
    for (int j = 0; j < 4; j++) {
        uint8x16_t v0 = vld1q_u8(qs + 32 * j), v1 = vld1q_u8(qs + 32 * j + 16);
        uint8x16_t lo0 = vandq_u8(v0, low4), lo1 = vandq_u8(v1, low4);
        uint8x16_t hi0 = vshrq_n_u8(v0, 4), hi1 = vshrq_n_u8(v1, 4);
        if (qh) {
            uint8x16_t blo = vdupq_n_u8((uint8_t)(1u << (2 * j))), bhi = vdupq_n_u8((uint8_t)(2u << (2 * j)));
            lo0 = vorrq_u8(lo0, vandq_u8(vtstq_u8(qh0, blo), x10));
            lo1 = vorrq_u8(lo1, vandq_u8(vtstq_u8(qh1, blo), x10));
            hi0 = vorrq_u8(hi0, vandq_u8(vtstq_u8(qh0, bhi), x10));
            hi1 = vorrq_u8(hi1, vandq_u8(vtstq_u8(qh1, bhi), x10));
        }
        q[4 * j] = vreinterpretq_s8_u8(lo0);
        q[4 * j + 1] = vreinterpretq_s8_u8(lo1);
        q[4 * j + 2] = vreinterpretq_s8_u8(hi0);
        q[4 * j + 3] = vreinterpretq_s8_u8(hi1);
    }
}

RB_ALWAYS_INLINE size_t rb_sblk_size(int type) {
    switch (type) {
    case RB_TYPE_Q2_K: return sizeof(block_q2_K);
    case RB_TYPE_Q3_K: return sizeof(block_q3_K);
    case RB_TYPE_Q4_K: return sizeof(block_q4_K);
    case RB_TYPE_Q5_K: return sizeof(block_q5_K);
    default: return sizeof(block_q6_K);
    }
}

RB_ALWAYS_INLINE int rb_sblk_has_min(int type) {
    return type == RB_TYPE_Q2_K || type == RB_TYPE_Q4_K || type == RB_TYPE_Q5_K;
}

RB_ALWAYS_INLINE void rb_sblk_unpack(int type, const uint8_t *b, struct rb_neon_sblk *u) {
    int16_t sc[16], m[16] = { 0 };
    u->dmin = 0.0f;
    switch (type) {
    case RB_TYPE_Q2_K:
        rb_neon_unpack_2bit(b + offsetof(block_q2_K, qs), NULL, u->q);
        for (int j = 0; j < 16; j++) {
            sc[j] = b[offsetof(block_q2_K, scales) + j] & 0x0F;
            m[j] = b[offsetof(block_q2_K, scales) + j] >> 4;
        }
        u->d = rb_neon_f16_at(b + offsetof(block_q2_K, d));
        u->dmin = rb_neon_f16_at(b + offsetof(block_q2_K, dmin));
        break;
    case RB_TYPE_Q3_K: {
        const uint8_t *s = b + offsetof(block_q3_K, scales);
        for (int j = 0; j < 16; j++) sc[j] = (int16_t)rb_get_scale_q3_K(j, s);
        rb_neon_unpack_2bit(b + offsetof(block_q3_K, qs), b + offsetof(block_q3_K, hmask), u->q);
        u->d = rb_neon_f16_at(b + offsetof(block_q3_K, d));
        break;
    }
    case RB_TYPE_Q4_K:
    case RB_TYPE_Q5_K: {
        const int q5 = type == RB_TYPE_Q5_K;
        rb_neon_scales_k4(b + (q5 ? offsetof(block_q5_K, scales) : offsetof(block_q4_K, scales)), sc, m);
        rb_neon_unpack_k4(b + (q5 ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs)),
                          q5 ? b + offsetof(block_q5_K, qh) : NULL, u->q);
        _Static_assert(offsetof(block_q4_K, d) == offsetof(block_q5_K, d) &&
                       offsetof(block_q4_K, dmin) == offsetof(block_q5_K, dmin), "Q4_K/Q5_K scales");
        u->d = rb_neon_f16_at(b + offsetof(block_q4_K, d));
        u->dmin = rb_neon_f16_at(b + offsetof(block_q4_K, dmin));
        break;
    }
    default: /* Q6_K */
        for (int j = 0; j < 16; j++) sc[j] = ((const int8_t *)b)[offsetof(block_q6_K, scales) + j];
        rb_neon_unpack_q6(b + offsetof(block_q6_K, ql), b + offsetof(block_q6_K, qh), u->q);
        u->d = rb_neon_f16_at(b + offsetof(block_q6_K, d));
        break;
    }
    for (int v = 0; v < 4; v++) u->sc[v] = vmovl_s16(vld1_s16(sc + 4 * v));
    u->m[0] = vld1q_s16(m);
    u->m[1] = vld1q_s16(m + 8);
}

/* One unpacked super-block . one Q8_K block, in the scalar reference's order:
 * d = d_w * d_a, then d * sumi (- dmin_w * d_a * summ). */
RB_ALWAYS_INLINE float rb_sblk_dot(int type, const struct rb_neon_sblk *u, const uint8_t *ab) {
    const int8_t *a = (const int8_t *)ab + offsetof(block_q8_K, qs);
    int32x4_t acc = vdupq_n_s32(0);
    for (int v = 0; v < 4; v++) { /* lane k of sums: quants 64v + 16k .. +15 */
        int32x4_t d0 = rb_neon_dot_s8(vdupq_n_s32(0), u->q[4 * v], vld1q_s8(a + 64 * v));
        int32x4_t d1 = rb_neon_dot_s8(vdupq_n_s32(0), u->q[4 * v + 1], vld1q_s8(a + 64 * v + 16));
        int32x4_t d2 = rb_neon_dot_s8(vdupq_n_s32(0), u->q[4 * v + 2], vld1q_s8(a + 64 * v + 32));
        int32x4_t d3 = rb_neon_dot_s8(vdupq_n_s32(0), u->q[4 * v + 3], vld1q_s8(a + 64 * v + 48));
        acc = vmlaq_s32(acc, rb_neon_hsum4(d0, d1, d2, d3), u->sc[v]);
    }
    const int32_t sumi = vaddvq_s32(acc);
    const float ad = rb_neon_f32_at(ab + offsetof(block_q8_K, d));
    const float d = u->d * ad;
    if (!rb_sblk_has_min(type)) return d * (float)sumi;
    const uint8_t *bs = ab + offsetof(block_q8_K, bsums);
    int16x8_t b0 = vreinterpretq_s16_u8(vld1q_u8(bs)), b1 = vreinterpretq_s16_u8(vld1q_u8(bs + 16));
    int32x4_t p = vmull_s16(vget_low_s16(b0), vget_low_s16(u->m[0]));
    p = vmlal_high_s16(p, b0, u->m[0]);
    p = vmlal_s16(p, vget_low_s16(b1), vget_low_s16(u->m[1]));
    p = vmlal_high_s16(p, b1, u->m[1]);
    const int32_t summ = vaddvq_s32(p);
    const float dmin = u->dmin * ad;
    return d * (float)sumi - dmin * (float)summ;
}

RB_ALWAYS_INLINE void rb_gemm_k(int type, int64_t n, int64_t n_rows, int64_t n_tok,
                                const void *w, size_t wrb, const void *act, size_t arb,
                                float *out, int64_t os) {
    const size_t wsize = rb_sblk_size(type);
    const int64_t nb = n / QK_K;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *wrow = (const uint8_t *)w + (size_t)r * wrb;
        for (int64_t t0 = 0; t0 < n_tok; t0 += RB_NEON_TOK) {
            const int nt = n_tok - t0 < RB_NEON_TOK ? (int)(n_tok - t0) : RB_NEON_TOK;
            const uint8_t *arow = (const uint8_t *)act + (size_t)t0 * arb;
            float sumf[RB_NEON_TOK] = { 0.0f, 0.0f, 0.0f, 0.0f };
            for (int64_t i = 0; i < nb; i++) {
                struct rb_neon_sblk u;
                rb_sblk_unpack(type, wrow + (size_t)i * wsize, &u);
                for (int t = 0; t < nt; t++)
                    sumf[t] += rb_sblk_dot(type, &u, arow + (size_t)t * arb + (size_t)i * sizeof(block_q8_K));
            }
            for (int t = 0; t < nt; t++) out[(t0 + t) * os + r] = sumf[t];
        }
    }
}

/* vec_dot and gemm of each format: the drivers with a constant type. */
#define RB_NEON_INT_KERNELS(name, TYPE, driver)                                           \
    static void rb_neon_gemm_##name(int64_t n, int64_t n_rows, int64_t n_tok,             \
                                    const void *w, size_t wrb, const void *act,           \
                                    size_t arb, float *out, int64_t os) {                 \
        driver(TYPE, n, n_rows, n_tok, w, wrb, act, arb, out, os);                        \
    }                                                                                     \
    static void rb_neon_vec_dot_##name(int64_t n, float *s, const void *x, const void *y) { \
        driver(TYPE, n, 1, 1, x, 0, y, 0, s, 1);                                          \
    }

RB_NEON_INT_KERNELS(q4_0, RB_TYPE_Q4_0, rb_gemm32)
RB_NEON_INT_KERNELS(q4_1, RB_TYPE_Q4_1, rb_gemm32)
RB_NEON_INT_KERNELS(q5_0, RB_TYPE_Q5_0, rb_gemm32)
RB_NEON_INT_KERNELS(q5_1, RB_TYPE_Q5_1, rb_gemm32)
RB_NEON_INT_KERNELS(q8_0, RB_TYPE_Q8_0, rb_gemm32)
RB_NEON_INT_KERNELS(q2_K, RB_TYPE_Q2_K, rb_gemm_k)
RB_NEON_INT_KERNELS(q3_K, RB_TYPE_Q3_K, rb_gemm_k)
RB_NEON_INT_KERNELS(q4_K, RB_TYPE_Q4_K, rb_gemm_k)
RB_NEON_INT_KERNELS(q5_K, RB_TYPE_Q5_K, rb_gemm_k)
RB_NEON_INT_KERNELS(q6_K, RB_TYPE_Q6_K, rb_gemm_k)

/* The table both files build, each under its own name; only
 * rb_neon_dot_s8 differs between them. */
#define RB_NEON_TABLE(name) {                                        \
    .isa = name,                                                     \
    .vec_dot = {                                                     \
        [RB_TYPE_F32] = rb_neon_vec_dot_f32,                         \
        [RB_TYPE_F16] = rb_neon_vec_dot_f16,                         \
        [RB_TYPE_BF16] = rb_neon_vec_dot_bf16,                       \
        [RB_TYPE_Q4_0] = rb_neon_vec_dot_q4_0,                       \
        [RB_TYPE_Q4_1] = rb_neon_vec_dot_q4_1,                       \
        [RB_TYPE_Q5_0] = rb_neon_vec_dot_q5_0,                       \
        [RB_TYPE_Q5_1] = rb_neon_vec_dot_q5_1,                       \
        [RB_TYPE_Q8_0] = rb_neon_vec_dot_q8_0,                       \
        [RB_TYPE_Q2_K] = rb_neon_vec_dot_q2_K,                       \
        [RB_TYPE_Q3_K] = rb_neon_vec_dot_q3_K,                       \
        [RB_TYPE_Q4_K] = rb_neon_vec_dot_q4_K,                       \
        [RB_TYPE_Q5_K] = rb_neon_vec_dot_q5_K,                       \
        [RB_TYPE_Q6_K] = rb_neon_vec_dot_q6_K,                       \
    },                                                               \
    .gemm = {                                                        \
        [RB_TYPE_F16] = rb_neon_gemm_f16,                            \
        [RB_TYPE_Q4_0] = rb_neon_gemm_q4_0,                          \
        [RB_TYPE_Q4_1] = rb_neon_gemm_q4_1,                          \
        [RB_TYPE_Q5_0] = rb_neon_gemm_q5_0,                          \
        [RB_TYPE_Q5_1] = rb_neon_gemm_q5_1,                          \
        [RB_TYPE_Q8_0] = rb_neon_gemm_q8_0,                          \
        [RB_TYPE_Q2_K] = rb_neon_gemm_q2_K,                          \
        [RB_TYPE_Q3_K] = rb_neon_gemm_q3_K,                          \
        [RB_TYPE_Q4_K] = rb_neon_gemm_q4_K,                          \
        [RB_TYPE_Q5_K] = rb_neon_gemm_q5_K,                          \
        [RB_TYPE_Q6_K] = rb_neon_gemm_q6_K,                          \
    },                                                               \
    .quantize_act = {                                                \
        [RB_TYPE_Q8_0] = rb_neon_quantize_q8_0,                      \
        [RB_TYPE_Q8_1] = rb_neon_quantize_q8_1,                      \
        [RB_TYPE_Q8_K] = rb_neon_quantize_q8_K,                      \
        [RB_TYPE_F16] = rb_neon_quantize_f16,                        \
        [RB_TYPE_BF16] = rb_neon_quantize_bf16,                      \
    },                                                               \
    .rmsnorm = rb_neon_rmsnorm,                                      \
    .layernorm = rb_neon_layernorm,                                  \
    .softmax = rb_neon_softmax,                                      \
    .silu_mul = rb_neon_silu_mul,                                    \
    .gelu = rb_neon_gelu,                                            \
    .add = rb_neon_add,                                              \
    .f16_to_f32 = rb_neon_f16_to_f32,                                \
    .f32_to_f16 = rb_neon_f32_to_f16,                                \
}

#endif
