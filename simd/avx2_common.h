/* avx2_common.h - the integer kernels of the 256-bit x86 tables, written once
 * and built by three files with their own flags (as neon_common.h is by the
 * two NEON files):
 *   avx2.c          AVX2 + FMA + F16C: u8 x s8 products with vpmaddubsw
 *   avxvnni.c       + AVX-VNNI: vpdpbusd (VEX), Intel laptops without AVX-512
 *   avxvnni_evex.c  the avxvnni code with the EVEX vpdpbusd of AVX512-VNNI+VL,
 *                   so that CPUs without AVX-VNNI (AMD Zen 4) run and test it
 * The includer defines RB_X86_VNNI (0 or 1) and, with 1, RB_DPBUSD(acc, u, s)
 * (acc + the sums of four u8 x s8 products per int32 lane, exact).
 *
 * Q4_0 and Q8_0 (the files people run): avx2_q32.h. Q4_1, Q5_0, Q5_1: one
 * driver over 8 blocks at a time here (gemm_blk32). K-quants: x86_kquants.h.
 * Every integer sum is exact; the float part follows a fixed order per
 * output (whatever the tile or thread split), so gemm = vec_dot bit for bit.
 *
 * Glossary: x/w = weight row, y = activation row, nb = blocks per row,
 * sumi = exact int32 block sum, dx/dy = block scales, acc = per-lane floats,
 * T = tokens in a tile.
 */
#ifndef RB_AVX2_COMMON_H
#define RB_AVX2_COMMON_H

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "kernels.h"
#include "scalar.h"
#include "avx2.h"
#include "x86_common.h"
#include "../quant/quant.h"

#ifndef RB_X86_VNNI
#error "define RB_X86_VNNI (0: vpmaddubsw, 1: vpdpbusd through RB_DPBUSD) before including avx2_common.h"
#endif

#define TOK_TILE 8      /* tokens per tile: each unpacked weight group meets them all */

/* -------------------------------------------------- u8 x s8 products */

/* sum(u * y) per 4-byte lane for u <= 63 (vpmaddubsw's int16 pairs cannot
 * saturate) or any u with VNNI. */
ALWAYS_INLINE __m256i dot_u8_i8(__m256i u, __m256i y) {
#if RB_X86_VNNI
    return RB_DPBUSD(_mm256_setzero_si256(), u, y);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), _mm256_set1_epi16(1));
#endif
}

/* sum(u * ylo) + sum(v * yhi) per lane, u and v <= 15 (or any, VNNI): with
 * vpmaddubsw the two int16 results add before widening (|.| <= 2 * 2 * 15 * 128). */
ALWAYS_INLINE __m256i dot2_u4_i8(__m256i u, __m256i ylo, __m256i v, __m256i yhi) {
#if RB_X86_VNNI
    return RB_DPBUSD(RB_DPBUSD(_mm256_setzero_si256(), u, ylo), v, yhi);
#else
    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(u, ylo), _mm256_maddubs_epi16(v, yhi));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
#endif
}

#include "avx2_q32.h"

/* ------------------------------------------------- Q4_1, Q5_0, Q5_1 */

/* A block's 32 products summed to 8 int32 lanes, eight blocks' lanes reduced
 * together to eight exact block sums (reduce8), then the block scales in
 * the scalar reference's float order per block; blocks k, k+8, ... share
 * float lane k. A row's last nb % 8 blocks go one at a time in scalar order. */

/* Weight block -> its 32 unsigned quants (Q5_0: value + 16). */
ALWAYS_INLINE __m256i blk_unpack(int type, const char *x) {
    switch (type) {
    case RB_TYPE_Q4_1: return unpack_nibbles(AT(x, block_q4_1, qs));
    case RB_TYPE_Q5_0: {
        __m256i hi = _mm256_and_si256(bits_to_bytes(AT(x, block_q5_0, qh)), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(unpack_nibbles(AT(x, block_q5_0, qs)), hi);
    }
    default: { /* Q5_1 */
        __m256i hi = _mm256_and_si256(bits_to_bytes(AT(x, block_q5_1, qh)), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(unpack_nibbles(AT(x, block_q5_1, qs)), hi);
    }
    }
}

ALWAYS_INLINE __m256i blk_dot(int type, __m256i u, const char *yb) {
    if (type == RB_TYPE_Q5_0) { /* sum((u - 16) * y): the offset's products subtracted in int32 */
        __m256i y = _mm256_loadu_si256((const __m256i *)AT(yb, block_q8_0, qs));
        return _mm256_sub_epi32(dot_u8_i8(u, y), dot_u8_i8(_mm256_set1_epi8(16), y));
    }
    return dot_u8_i8(u, _mm256_loadu_si256((const __m256i *)AT(yb, block_q8_1, qs)));
}

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

DEFINE_BLK32(q4_1, RB_TYPE_Q4_1)
DEFINE_BLK32(q5_0, RB_TYPE_Q5_0)
DEFINE_BLK32(q5_1, RB_TYPE_Q5_1)

/* ------------------------------------------------------------- K-quants */

#include "x86_kquants.h"

DEFINE_KQUANT(q2_K, RB_TYPE_Q2_K)
DEFINE_KQUANT(q3_K, RB_TYPE_Q3_K)
DEFINE_KQUANT(q4_K, RB_TYPE_Q4_K)
DEFINE_KQUANT(q5_K, RB_TYPE_Q5_K)
DEFINE_KQUANT(q6_K, RB_TYPE_Q6_K)

/* ------------------------------------------------------------------ table */

/* The table each includer builds under its own name; the float entries are
 * avx2_float.c's (they gain nothing from VNNI). */
#define RB_AVX2_TABLE(name) {                                        \
    .isa = name,                                                     \
    .vec_dot = {                                                     \
        [RB_TYPE_F32] = rb_avx2_vec_dot_f32,                         \
        [RB_TYPE_F16] = rb_avx2_vec_dot_f16,                         \
        [RB_TYPE_BF16] = rb_avx2_vec_dot_bf16,                       \
        [RB_TYPE_Q4_0] = vec_dot_q4_0,                               \
        [RB_TYPE_Q4_1] = vec_dot_q4_1,                               \
        [RB_TYPE_Q5_0] = vec_dot_q5_0,                               \
        [RB_TYPE_Q5_1] = vec_dot_q5_1,                               \
        [RB_TYPE_Q8_0] = vec_dot_q8_0,                               \
        [RB_TYPE_Q2_K] = vec_dot_q2_K,                               \
        [RB_TYPE_Q3_K] = vec_dot_q3_K,                               \
        [RB_TYPE_Q4_K] = vec_dot_q4_K,                               \
        [RB_TYPE_Q5_K] = vec_dot_q5_K,                               \
        [RB_TYPE_Q6_K] = vec_dot_q6_K,                               \
    },                                                               \
    .gemm = {                                                        \
        [RB_TYPE_F16] = rb_avx2_gemm_f16,                            \
        [RB_TYPE_Q4_0] = gemm_q4_0,                                  \
        [RB_TYPE_Q4_1] = gemm_q4_1,                                  \
        [RB_TYPE_Q5_0] = gemm_q5_0,                                  \
        [RB_TYPE_Q5_1] = gemm_q5_1,                                  \
        [RB_TYPE_Q8_0] = gemm_q8_0,                                  \
        [RB_TYPE_Q2_K] = gemm_q2_K,                                  \
        [RB_TYPE_Q3_K] = gemm_q3_K,                                  \
        [RB_TYPE_Q4_K] = gemm_q4_K,                                  \
        [RB_TYPE_Q5_K] = gemm_q5_K,                                  \
        [RB_TYPE_Q6_K] = gemm_q6_K,                                  \
    },                                                               \
    .quantize_act = {                                                \
        [RB_TYPE_Q8_0] = rb_avx2_quantize_q8_0,                      \
        [RB_TYPE_Q8_1] = rb_avx2_quantize_q8_1,                      \
        [RB_TYPE_Q8_K] = rb_avx2_quantize_q8_K,                      \
        [RB_TYPE_F16] = rb_avx2_quantize_f16,                        \
        [RB_TYPE_BF16] = rb_scalar_quantize_bf16,                    \
    },                                                               \
    .rmsnorm = rb_avx2_rmsnorm,                                      \
    .layernorm = rb_avx2_layernorm,                                  \
    .softmax = rb_avx2_softmax,                                      \
    .silu_mul = rb_avx2_silu_mul,                                    \
    .gelu = rb_avx2_gelu,                                            \
    .add = rb_avx2_add,                                              \
    .f16_to_f32 = rb_avx2_f16_to_f32,                                \
    .f32_to_f16 = rb_avx2_f32_to_f16,                                \
}

#endif
