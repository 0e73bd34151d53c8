/* x86_common.h - helpers every x86 kernel file shares, written once (as
 * neon_common.h is for the NEON tables): 256-bit AVX2 + F16C code that each
 * includer compiles under its own ISA flags (avx2*.c, avxvnni*.c, avx512*.c).
 *
 * Block fields are read through byte pointers (AT): blocks in a row need not
 * be aligned for their struct, so kernels never dereference block pointers.
 */
#ifndef RB_X86_COMMON_H
#define RB_X86_COMMON_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../quant/quant.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8") /* loops over a tile's tokens: keeps their sums in registers */
/* Field f of the block of type T at p, as bytes. */
#define AT(p, T, f) ((const uint8_t *)(p) + offsetof(T, f))

ALWAYS_INLINE float f16_at(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

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

/* Eight F16 fields as floats: lanes 0-3 at p0 + k * stride, lanes 4-7 at
 * p1 + k * stride. The halves are gathered in general registers (integer
 * ports, off the vector pipes). */
ALWAYS_INLINE __m256 load_f16x8_2(const void *p0, const void *p1, size_t stride) {
    uint64_t lo = 0, hi = 0;
    #pragma GCC unroll 4
    for (int k = 0; k < 4; k++) {
        uint16_t a, b;
        memcpy(&a, (const uint8_t *)p0 + k * stride, 2);
        memcpy(&b, (const uint8_t *)p1 + k * stride, 2);
        lo |= (uint64_t)a << (16 * k);
        hi |= (uint64_t)b << (16 * k);
    }
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)hi, (long long)lo));
}

/* Eight F16 fields at base, base + stride, ... as floats. */
ALWAYS_INLINE __m256 load_f16x8(const void *base, size_t stride) {
    return load_f16x8_2(base, (const uint8_t *)base + 4 * stride, stride);
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

/* 16 bytes at lo and 16 at hi as one vector (lo in the low half). */
ALWAYS_INLINE __m256i load_2x128(const void *lo, const void *hi) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)lo)),
                                   _mm_loadu_si128((const __m128i *)hi), 1);
}

/* --------------------------------- 32-element formats Q4_1, Q5_0, Q5_1
 * (avx2_common.h and avx512.c each drive them their own way; the block
 * description and the float folds, which fix the bits, are these). */

enum fold_kind {
    FOLD_DXDY_SUMI,    /* acc += (dx * dy) * sumi             (Q5_0) */
    FOLD_DXDY_SUMI_MS, /* acc += (dx * dy) * sumi + m * s     (Q4_1, Q5_1) */
};

struct blk32 {
    size_t xsize, ysize;   /* bytes per weight / activation block */
    size_t xm_off;         /* offset of the weight min m (FOLD_DXDY_SUMI_MS) */
    size_t ys_off;         /* offset of the activation s (Q8_1) */
    int signed_w;          /* weights signed (Q5_0) or unsigned (Q4_1, Q5_1) */
    enum fold_kind fold;
};

/* acc lane k += block k's term of 8 consecutive blocks at x, y (sumi: their
 * exact integer sums), each in the scalar reference's float order. */
ALWAYS_INLINE __m256 fold8(__m256 acc, __m256i sumi, const char *x, const char *y, const struct blk32 *f) {
    __m256 dx = load_f16x8(x, f->xsize), dy = load_f16x8(y, f->ysize);
    __m256 t = _mm256_mul_ps(_mm256_mul_ps(dx, dy), _mm256_cvtepi32_ps(sumi));
    if (f->fold == FOLD_DXDY_SUMI_MS)
        t = _mm256_add_ps(t, _mm256_mul_ps(load_f16x8(x + f->xm_off, f->xsize), load_f16x8(y + f->ys_off, f->ysize)));
    return _mm256_add_ps(acc, t);
}

/* One statement per rounding step, as scalar rounds: a compiler that
 * contracted a*b + c into an FMA within one expression would change bits. */
ALWAYS_INLINE float fold1(float acc, int sumi, const char *x, const char *y, const struct blk32 *f) {
    float dxdy = f16_at(x) * f16_at(y);
    float t = dxdy * (float)sumi;
    if (f->fold == FOLD_DXDY_SUMI_MS) {
        float ms = f16_at(x + f->xm_off) * f16_at(y + f->ys_off);
        t = t + ms;
    }
    return acc + t;
}

/* The block description of a 32-element format (inlined with a constant
 * type, the lookup folds away). */
ALWAYS_INLINE const struct blk32 *blk32_fmt(int type) {
    static const struct blk32 q5_0 = { sizeof(block_q5_0), sizeof(block_q8_0), 0, 0, 1, FOLD_DXDY_SUMI };
    static const struct blk32 q4_1 = { sizeof(block_q4_1), sizeof(block_q8_1), 2, 2, 0, FOLD_DXDY_SUMI_MS };
    static const struct blk32 q5_1 = { sizeof(block_q5_1), sizeof(block_q8_1), 2, 2, 0, FOLD_DXDY_SUMI_MS };
    return type == RB_TYPE_Q5_0 ? &q5_0 : type == RB_TYPE_Q4_1 ? &q4_1 : &q5_1;
}

/* The kernel-table entries gemm_NAME and vec_dot_NAME of a 32-element
 * format, over the includer's gemm_blk32(type, fmt, ...) (avx2_common.h,
 * avx512.c: each has its own driver). */
#define DEFINE_BLK32(name, TYPE) \
    static void gemm_##name(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t wrb, \
                            const void *act, size_t arb, float *out, int64_t os) { \
        gemm_blk32(TYPE, blk32_fmt(TYPE), n, n_rows, n_tok, w, wrb, act, arb, out, os); \
    } \
    static void vec_dot_##name(int64_t n, float *s, const void *x, const void *y) { \
        gemm_blk32(TYPE, blk32_fmt(TYPE), n, 1, 1, x, 0, y, 0, s, 1); \
    }

#endif
