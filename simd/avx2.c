/* avx2.c - the AVX2 + FMA + F16C kernel table (compiled with -mavx2 -mfma -mf16c).
 *
 * Integer dot products (32-element blocks): a block's 32 products are summed
 * to 8 int32 lanes (maddubs/madd), eight blocks' lanes are reduced together
 * to one vector of eight exact per-block sums (reduce8), and only then do the
 * block scales come in, with the same float operations, in the same order, as
 * the scalar reference for each block. Blocks k, k+8, k+16... accumulate in
 * float lane k, so a row of up to 7 blocks gives the scalar bits and longer
 * rows differ from scalar only in float summation order. The gemm kernels run
 * the very same per-(row, token) arithmetic as vec_dot, so they give the same
 * bits; they unpack each group of weight blocks once for up to 8 tokens.
 *
 * K-quants: a super-block's integer sum is exact and the float part follows
 * scalar super-block by super-block, so they match scalar bit for bit.
 * Activation quantizers, float dots and float helpers: avx2_float.c.
 *
 * Activations may hold -128 (nothing we quantize produces it, but a row from
 * elsewhere may): no kernel here relies on |y| <= 127.
 *
 * Glossary: x = weight row, y = activation row, nb = blocks per row,
 * sumi = exact int32 block sum, dx/dy = block scales, acc = per-lane floats.
 */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kernels.h"
#include "scalar.h"
#include "avx2.h"
#include "../quant/quant.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* Field f of the block of type T at p, as bytes: blocks in a row need not be
 * aligned for their struct, so kernels never dereference block pointers. */
#define AT(p, T, f) ((const uint8_t *)(p) + offsetof(T, f))

/* ---------------------------------------------------------------- helpers */

ALWAYS_INLINE float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

ALWAYS_INLINE int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* Lane k of the result = sum of the 8 lanes of s[k] (exact, int32). */
ALWAYS_INLINE __m256i reduce8(const __m256i s[8]) {
    __m256i h0 = _mm256_hadd_epi32(s[0], s[1]), h1 = _mm256_hadd_epi32(s[2], s[3]);
    __m256i h2 = _mm256_hadd_epi32(s[4], s[5]), h3 = _mm256_hadd_epi32(s[6], s[7]);
    __m256i g0 = _mm256_hadd_epi32(h0, h1), g1 = _mm256_hadd_epi32(h2, h3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20),
                            _mm256_permute2x128_si256(g0, g1, 0x31));
}

/* Eight F16 values at base, base + stride, ... as floats. */
ALWAYS_INLINE __m256 load_f16x8(const void *base, size_t stride) {
    uint16_t h[8];
    #pragma GCC unroll 16
    for (int k = 0; k < 8; k++) memcpy(&h[k], (const char *)base + k * stride, 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

ALWAYS_INLINE float f16_at(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Byte j = 0xFF when bit j of the little-endian u32 at p is set. */
ALWAYS_INLINE __m256i bits_to_bytes(const uint8_t *p) {
    uint32_t bits;
    memcpy(&bits, p, 4);
    const __m256i pick = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), pick);
    return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

/* 16 packed nibbles -> 32 bytes: low nibbles first, then high (Q4_0 order). */
ALWAYS_INLINE __m256i unpack_nibbles(const uint8_t *qs) {
    const __m128i m4 = _mm_set1_epi8(0x0F);
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4), _mm_and_si128(v, m4));
}

/* sum(u * y) over 32 bytes, u unsigned <= 63, y any int8: 8 int32 lanes. */
ALWAYS_INLINE __m256i dot_u8_i8(__m256i u, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
}

/* sum((u - off) * y): off times sum(y) subtracted in int16 (no overflow for
 * u <= 31, off <= 16). */
ALWAYS_INLINE __m256i dot_u8off_i8(__m256i u, __m256i y, int off) {
    __m256i p = _mm256_maddubs_epi16(u, y);
    __m256i m = _mm256_maddubs_epi16(_mm256_set1_epi8((char)off), y);
    return _mm256_madd_epi16(_mm256_sub_epi16(p, m), _mm256_set1_epi16(1));
}

/* sum(x * y) for two int8 vectors, exact for all values incl. -128. */
ALWAYS_INLINE __m256i dot_i8_i8(__m256i x, __m256i y) {
    __m256i xl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x));
    __m256i xh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(x, 1));
    __m256i yl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(y));
    __m256i yh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(y, 1));
    return _mm256_add_epi32(_mm256_madd_epi16(xl, yl), _mm256_madd_epi16(xh, yh));
}

/* ------------------------------------------- 32-element block formats */

/* Each format: unpack (weight block -> 32 bytes), dot (bytes . activation
 * block -> 8 int32 lanes), fold8 (8 exact block sums -> acc, scalar's float
 * order per block) and fold1 (one block, the same formula in scalar code). */

enum fold_kind {
    FOLD_DXDY_SUMI,    /* acc += (dx * dy) * sumi             (Q4_0, Q5_0, Q8_0) */
    FOLD_DXDY_SUMI_MS, /* acc += (dx * dy) * sumi + m * s     (Q4_1, Q5_1) */
};

struct blk32 {
    size_t xsize, ysize;   /* bytes per weight / activation block */
    size_t xm_off;         /* offset of the weight min m (FOLD_DXDY_SUMI_MS) */
    size_t ys_off;         /* offset of the activation s (Q8_1) */
    enum fold_kind fold;
};

ALWAYS_INLINE __m256 fold8(__m256 acc, __m256i sumi, const char *x, const char *y,
                           const struct blk32 *f) {
    __m256 dx = load_f16x8(x, f->xsize), dy = load_f16x8(y, f->ysize);
    __m256 si = _mm256_cvtepi32_ps(sumi);
    switch (f->fold) {
    case FOLD_DXDY_SUMI:
        return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(dx, dy), si));
    case FOLD_DXDY_SUMI_MS: {
        __m256 m = load_f16x8(x + f->xm_off, f->xsize), s = load_f16x8(y + f->ys_off, f->ysize);
        __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(dx, dy), si), _mm256_mul_ps(m, s));
        return _mm256_add_ps(acc, t);
    }
    }
    return acc;
}

/* One statement per rounding step: a compiler that contracts a*b + c into an
 * FMA within one expression (clang's default) would otherwise change bits. */
ALWAYS_INLINE float fold1(float acc, int sumi, const char *x, const char *y, const struct blk32 *f) {
    float dxdy = f16_at(x) * f16_at(y);
    float t = dxdy * (float)sumi;
    if (f->fold == FOLD_DXDY_SUMI_MS) {
        float ms = f16_at(x + f->xm_off) * f16_at(y + f->ys_off);
        t = t + ms;
    }
    return acc + t;
}

/* Per-format unpack and dot, chosen by weight type (a constant after inlining). */
ALWAYS_INLINE __m256i blk_unpack(int type, const char *x) {
    switch (type) {
    case RB_TYPE_Q4_0: return unpack_nibbles(AT(x, block_q4_0, qs));
    case RB_TYPE_Q4_1: return unpack_nibbles(AT(x, block_q4_1, qs));
    case RB_TYPE_Q5_0: {
        __m256i hi = _mm256_and_si256(bits_to_bytes(AT(x, block_q5_0, qh)), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(unpack_nibbles(AT(x, block_q5_0, qs)), hi);
    }
    case RB_TYPE_Q5_1: {
        __m256i hi = _mm256_and_si256(bits_to_bytes(AT(x, block_q5_1, qh)), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(unpack_nibbles(AT(x, block_q5_1, qs)), hi);
    }
    default: /* Q8_0 */
        return _mm256_loadu_si256((const __m256i *)AT(x, block_q8_0, qs));
    }
}

ALWAYS_INLINE __m256i blk_dot(int type, __m256i w, const char *yb) {
    switch (type) {
    case RB_TYPE_Q4_0:
        return dot_u8off_i8(w, _mm256_loadu_si256((const __m256i *)AT(yb, block_q8_0, qs)), 8);
    case RB_TYPE_Q5_0:
        return dot_u8off_i8(w, _mm256_loadu_si256((const __m256i *)AT(yb, block_q8_0, qs)), 16);
    case RB_TYPE_Q4_1:
    case RB_TYPE_Q5_1:
        return dot_u8_i8(w, _mm256_loadu_si256((const __m256i *)AT(yb, block_q8_1, qs)));
    default: /* Q8_0 */
        return dot_i8_i8(w, _mm256_loadu_si256((const __m256i *)AT(yb, block_q8_0, qs)));
    }
}

#define TOK_TILE 8

/* The one driver behind vec_dot and gemm of every 32-element format. */
ALWAYS_INLINE void gemm_blk32(int type, const struct blk32 *f, int64_t n, int64_t n_rows, int64_t n_tok,
                              const void *w, size_t w_row_bytes, const void *act, size_t act_row_bytes,
                              float *out, int64_t out_stride) {
    const int64_t nb = n / 32;
    for (int64_t r = 0; r < n_rows; r++) {
        const char *xr = (const char *)w + r * w_row_bytes;
        for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_TILE) {
            const int nt = n_tok - t0 < TOK_TILE ? (int)(n_tok - t0) : TOK_TILE;
            const char *yr[TOK_TILE];
            __m256 acc[TOK_TILE];
            float tail[TOK_TILE];
            for (int t = 0; t < nt; t++) {
                yr[t] = (const char *)act + (t0 + t) * act_row_bytes;
                acc[t] = _mm256_setzero_ps();
                tail[t] = 0.0f;
            }
            int64_t ib = 0;
            for (; ib + 8 <= nb; ib += 8) {
                const char *xb = xr + ib * f->xsize;
                __m256i wv[8];
                #pragma GCC unroll 8
                for (int k = 0; k < 8; k++) wv[k] = blk_unpack(type, xb + k * f->xsize);
                for (int t = 0; t < nt; t++) {
                    const char *yb = yr[t] + ib * f->ysize;
                    __m256i s[8];
                    #pragma GCC unroll 8
                    for (int k = 0; k < 8; k++) s[k] = blk_dot(type, wv[k], yb + k * f->ysize);
                    acc[t] = fold8(acc[t], reduce8(s), xb, yb, f);
                }
            }
            for (; ib < nb; ib++) {
                const char *xb = xr + ib * f->xsize;
                __m256i wv = blk_unpack(type, xb);
                for (int t = 0; t < nt; t++) {
                    const char *yb = yr[t] + ib * f->ysize;
                    tail[t] = fold1(tail[t], hsum_epi32(blk_dot(type, wv, yb)), xb, yb, f);
                }
            }
            for (int t = 0; t < nt; t++) out[(t0 + t) * out_stride + r] = hsum_ps(acc[t]) + tail[t];
        }
    }
}

static const struct blk32 fmt_q4_0 = { sizeof(block_q4_0), sizeof(block_q8_0), 0, 0, FOLD_DXDY_SUMI };
static const struct blk32 fmt_q5_0 = { sizeof(block_q5_0), sizeof(block_q8_0), 0, 0, FOLD_DXDY_SUMI };
static const struct blk32 fmt_q8_0 = { sizeof(block_q8_0), sizeof(block_q8_0), 0, 0, FOLD_DXDY_SUMI };
static const struct blk32 fmt_q4_1 = { sizeof(block_q4_1), sizeof(block_q8_1), 2, 2, FOLD_DXDY_SUMI_MS };
static const struct blk32 fmt_q5_1 = { sizeof(block_q5_1), sizeof(block_q8_1), 2, 2, FOLD_DXDY_SUMI_MS };

#define DEFINE_BLK32(name, TYPE, fmt) \
    static void gemm_##name(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t wrb, \
                            const void *act, size_t arb, float *out, int64_t os) { \
        gemm_blk32(TYPE, &fmt, n, n_rows, n_tok, w, wrb, act, arb, out, os); \
    } \
    static void vec_dot_##name(int64_t n, float *s, const void *x, const void *y) { \
        gemm_blk32(TYPE, &fmt, n, 1, 1, x, 0, y, 0, s, 1); \
    }

DEFINE_BLK32(q4_0, RB_TYPE_Q4_0, fmt_q4_0)
DEFINE_BLK32(q4_1, RB_TYPE_Q4_1, fmt_q4_1)
DEFINE_BLK32(q5_0, RB_TYPE_Q5_0, fmt_q5_0)
DEFINE_BLK32(q5_1, RB_TYPE_Q5_1, fmt_q5_1)
DEFINE_BLK32(q8_0, RB_TYPE_Q8_0, fmt_q8_0)

/* ------------------------------------------------------------- K-quants */

#include "x86_kquants.h"

DEFINE_KQUANT(q2_K, RB_TYPE_Q2_K)
DEFINE_KQUANT(q3_K, RB_TYPE_Q3_K)
DEFINE_KQUANT(q4_K, RB_TYPE_Q4_K)
DEFINE_KQUANT(q5_K, RB_TYPE_Q5_K)
DEFINE_KQUANT(q6_K, RB_TYPE_Q6_K)

/* ------------------------------------------------------------------ table */

const struct rb_kernels rb_kernels_avx2 = {
    .isa = "avx2",
    .vec_dot = {
        [RB_TYPE_F32] = rb_avx2_vec_dot_f32,
        [RB_TYPE_F16] = rb_avx2_vec_dot_f16,
        [RB_TYPE_BF16] = rb_avx2_vec_dot_bf16,
        [RB_TYPE_Q4_0] = vec_dot_q4_0,
        [RB_TYPE_Q4_1] = vec_dot_q4_1,
        [RB_TYPE_Q5_0] = vec_dot_q5_0,
        [RB_TYPE_Q5_1] = vec_dot_q5_1,
        [RB_TYPE_Q8_0] = vec_dot_q8_0,
        [RB_TYPE_Q2_K] = vec_dot_q2_K,
        [RB_TYPE_Q3_K] = vec_dot_q3_K,
        [RB_TYPE_Q4_K] = vec_dot_q4_K,
        [RB_TYPE_Q5_K] = vec_dot_q5_K,
        [RB_TYPE_Q6_K] = vec_dot_q6_K,
    },
    .gemm = {
        [RB_TYPE_Q4_0] = gemm_q4_0,
        [RB_TYPE_Q4_1] = gemm_q4_1,
        [RB_TYPE_Q5_0] = gemm_q5_0,
        [RB_TYPE_Q5_1] = gemm_q5_1,
        [RB_TYPE_Q8_0] = gemm_q8_0,
        [RB_TYPE_Q2_K] = gemm_q2_K,
        [RB_TYPE_Q3_K] = gemm_q3_K,
        [RB_TYPE_Q4_K] = gemm_q4_K,
        [RB_TYPE_Q5_K] = gemm_q5_K,
        [RB_TYPE_Q6_K] = gemm_q6_K,
    },
    .quantize_act = {
        [RB_TYPE_Q8_0] = rb_avx2_quantize_q8_0,
        [RB_TYPE_Q8_1] = rb_avx2_quantize_q8_1,
        [RB_TYPE_Q8_K] = rb_avx2_quantize_q8_K,
        [RB_TYPE_F16] = rb_avx2_quantize_f16,
        [RB_TYPE_BF16] = rb_scalar_quantize_bf16,
    },
    .rmsnorm = rb_avx2_rmsnorm,
    .layernorm = rb_avx2_layernorm,
    .softmax = rb_avx2_softmax,
    .silu_mul = rb_avx2_silu_mul,
    .gelu = rb_avx2_gelu,
    .add = rb_avx2_add,
    .f16_to_f32 = rb_avx2_f16_to_f32,
    .f32_to_f16 = rb_avx2_f32_to_f16,
};
