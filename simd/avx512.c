/* avx512.c - the AVX-512 kernel table (F+BW+VL+DQ+VNNI; compiled with
 * -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c).
 *
 * Q4_0, Q8_0 (avx512_q32.c) and Q4_K, Q6_K (avx512_kq.c), the types of the
 * files people run, have kernels of their own. The rest live here:
 *
 * Q4_1, Q5_0, Q5_1: the scheme of avx2.c, twice as wide: a zmm holds two
 * 32-element blocks; VNNI vpdpbusd sums u8 x s8 products four at a time
 * into int32 lanes. It wants one unsigned operand, so for signed weights w
 * (Q5_0) dot(w, y) = dot(y + 128, w) - 128 * sum(w), the correction computed
 * once per weight group and reused by every token; exact for every int8
 * activation including -128. Sixteen blocks' lanes reduce to one vector of
 * exact per-block sums (reduce16), then the scales enter in the scalar
 * reference's float order per block. What is left of a row then goes 8
 * blocks at a time (256-bit, as avx2.c) and block by block in scalar order:
 * a row of up to 7 blocks is bit-identical to scalar; longer rows add the
 * per-block terms in float lanes.
 *
 * Activation quantizers, float dots and helpers: the AVX2 versions (avx2.h).
 * Q2_K, Q3_K, Q5_K: x86_kquants.h (per super-block exact int sums, float part
 * in scalar order).
 */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "kernels.h"
#include "scalar.h"
#include "avx2.h"
#include "avx512.h"
#include "x86_common.h"
#include "../quant/quant.h"

/* ---------------------------------------------------------------- helpers */

/* P[k] holds block 2k in dwords 0-7 and block 2k+1 in dwords 8-15. Returns
 * the 16 exact block sums, dword i holding block
 * { 0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15 }[i]. */
ALWAYS_INLINE __m512i reduce16(const __m512i P[8]) {
    __m512i q[4], r[2];
    #pragma GCC unroll 8
    for (int k = 0; k < 4; k++)
        q[k] = _mm512_add_epi32(_mm512_unpacklo_epi32(P[2 * k], P[2 * k + 1]),
                                _mm512_unpackhi_epi32(P[2 * k], P[2 * k + 1]));
    #pragma GCC unroll 8
    for (int k = 0; k < 2; k++)
        r[k] = _mm512_add_epi32(_mm512_unpacklo_epi64(q[2 * k], q[2 * k + 1]),
                                _mm512_unpackhi_epi64(q[2 * k], q[2 * k + 1]));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(r[0], r[1], _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(r[0], r[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Sixteen F16 fields, one per block at base + stride * k, as floats in
 * reduce16's block order (a gather of dwords whose low halves are the fields;
 * every block has at least two more bytes after the field, so no read leaves
 * the block). */
ALWAYS_INLINE __m512 load_f16x16(const void *base, size_t stride) {
    const __m512i order = _mm512_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
    __m512i off = _mm512_mullo_epi32(order, _mm512_set1_epi32((int)stride));
    __m512i words = _mm512_i32gather_epi32(off, base, 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
}

/* ------------------------------------------- 32-element block formats */

/* One group of 16 weight blocks, unpacked once for every token it meets. */
struct wgroup {
    __m512i w[8];       /* block pairs: signed values, or unsigned quants */
    __m512i base[8];    /* dpbusd start: -128 * sum(w) per lane for signed w, else 0 */
    __m512 dx, m;       /* weight scales (and mins), in reduce16's block order */
};

/* Weight block -> its 32 quants as bytes: signed values for Q5_0, the
 * unsigned stored quants for Q4_1/Q5_1. */
ALWAYS_INLINE __m256i blk_unpack(int type, const char *x) {
    switch (type) {
    case RB_TYPE_Q4_1: return unpack_nibbles(AT(x, block_q4_1, qs));
    case RB_TYPE_Q5_0:
        return _mm256_sub_epi8(_mm256_or_si256(unpack_nibbles(AT(x, block_q5_0, qs)),
                                               _mm256_and_si256(bits_to_bytes(AT(x, block_q5_0, qh)), _mm256_set1_epi8(0x10))),
                               _mm256_set1_epi8(16));
    default: /* Q5_1 */
        return _mm256_or_si256(unpack_nibbles(AT(x, block_q5_1, qs)),
                               _mm256_and_si256(bits_to_bytes(AT(x, block_q5_1, qh)), _mm256_set1_epi8(0x10)));
    }
}

ALWAYS_INLINE __m512i unpack_pair(int type, const char *x, size_t xsize) {
    if (type == RB_TYPE_Q4_1) {
        /* [qs0 qs1 qs0 qs1] >> (0 0 4 4) & 15 = [lo0 lo1 hi0 hi1] -> [lo0 hi0 lo1 hi1] */
        const size_t qo = offsetof(block_q4_1, qs);
        __m256i v = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(x + xsize + qo)),
                                     _mm_loadu_si128((const __m128i *)(x + qo)));
        __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v), v, 1);
        z = _mm512_and_si512(_mm512_srlv_epi64(z, _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4)), _mm512_set1_epi8(0x0F));
        return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
    }
    return _mm512_inserti64x4(_mm512_castsi256_si512(blk_unpack(type, x)), blk_unpack(type, x + xsize), 1);
}

/* Offset of the int8 quants in the activation block. */
ALWAYS_INLINE size_t act_qs_off(int type) {
    return (type == RB_TYPE_Q4_1 || type == RB_TYPE_Q5_1) ? offsetof(block_q8_1, qs) : offsetof(block_q8_0, qs);
}

ALWAYS_INLINE void unpack_group(int type, const struct blk32 *f, const char *xb, struct wgroup *g) {
    #pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        g->w[k] = unpack_pair(type, xb + 2 * k * f->xsize, f->xsize);
        /* dot(w, y) = dot(y + 128, w) - 128 * sum(w): vpdpbusd wants u8 x s8 */
        g->base[k] = f->signed_w ? _mm512_sub_epi32(_mm512_setzero_si512(),
                                                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), g->w[k]))
                                 : _mm512_setzero_si512();
    }
    g->dx = load_f16x16(xb, f->xsize);
    g->m = f->fold == FOLD_DXDY_SUMI_MS ? load_f16x16(xb + f->xm_off, f->xsize) : _mm512_setzero_ps();
}

/* One block's exact int32 lanes (groups of 8 blocks and single blocks). */
ALWAYS_INLINE __m256i dot_one_lanes(int type, const struct blk32 *f, __m256i w, const char *yb) {
    __m256i y = _mm256_loadu_si256((const __m256i *)(yb + act_qs_off(type)));
    if (f->signed_w) {
        __m256i c = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)0x80), w);
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_xor_si256(y, _mm256_set1_epi8((char)0x80)), w);
        return _mm256_sub_epi32(s, c);
    }
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, y);
}

ALWAYS_INLINE int dot_one(int type, const struct blk32 *f, __m256i w, const char *yb) {
    return hsum_epi32(dot_one_lanes(type, f, w, yb));
}

/* Eight blocks at once where fewer than 16 remain (e.g. rows of 256):
 * acc8 lane k += block k's term, in the scalar per-block float order. */
ALWAYS_INLINE __m256 group8(int type, const struct blk32 *f, const char *xb, const char *yb, __m256 acc8) {
    __m256i s[8];
    #pragma GCC unroll 8
    for (int k = 0; k < 8; k++) s[k] = dot_one_lanes(type, f, blk_unpack(type, xb + k * f->xsize), yb + k * f->ysize);
    return fold8(acc8, reduce8(s), xb, yb, f);
}


#define TOK_TILE 8

/* Activation block pair at yb as the dpbusd operand: y + 128 (u8) against
 * signed weights, y itself against unsigned ones. */
ALWAYS_INLINE __m512i load_act_pair(int type, const struct blk32 *f, const char *yb) {
    const size_t qo = act_qs_off(type);
    __m512i y = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(yb + qo))),
                                   _mm256_loadu_si256((const __m256i *)(yb + f->ysize + qo)), 1);
    return f->signed_w ? _mm512_xor_si512(y, _mm512_set1_epi8((char)0x80)) : y;
}

/* Exact int32 lanes of dot(weight pair k, activation pair y). */
ALWAYS_INLINE __m512i dot_pair(const struct blk32 *f, const struct wgroup *g, int k, __m512i y) {
    if (f->signed_w) return _mm512_dpbusd_epi32(g->base[k], y, g->w[k]);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), g->w[k], y);
}

/* acc += (dx * dy) * sumi [+ m * s], per block, as scalar orders it. */
ALWAYS_INLINE __m512 fold16(__m512 acc, __m512i sumi, const struct wgroup *g, __m512 dy, __m512 ys,
                            const struct blk32 *f) {
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(g->dx, dy), _mm512_cvtepi32_ps(sumi));
    if (f->fold == FOLD_DXDY_SUMI_MS) t = _mm512_add_ps(t, _mm512_mul_ps(g->m, ys));
    return _mm512_add_ps(acc, t);
}

/* The one driver behind vec_dot and gemm of every 32-element format: each
 * 16-block group of a row is unpacked once for a tile of up to 8 tokens.
 * Every output gets exactly the operations vec_dot (one row, one token)
 * performs, so the same bits. (Pairing two rows per activation load was
 * measured slower: 36 zmm of live state spill.) */
ALWAYS_INLINE void gemm_blk32(int type, const struct blk32 *f, int64_t n, int64_t n_rows, int64_t n_tok,
                              const void *w, size_t w_row_bytes, const void *act, size_t act_row_bytes,
                              float *out, int64_t out_stride) {
    const int64_t nb = n / 32;
    for (int64_t r = 0; r < n_rows; r++) {
        const char *xr = (const char *)w + r * w_row_bytes;
        for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_TILE) {
            const int nt = n_tok - t0 < TOK_TILE ? (int)(n_tok - t0) : TOK_TILE;
            const char *yr[TOK_TILE];
            __m512 acc[TOK_TILE];
            __m256 acc8[TOK_TILE];
            float tail[TOK_TILE];
            for (int t = 0; t < nt; t++) {
                yr[t] = (const char *)act + (t0 + t) * act_row_bytes;
                acc[t] = _mm512_setzero_ps();
                acc8[t] = _mm256_setzero_ps();
                tail[t] = 0.0f;
            }
            int64_t ib = 0;
            for (; ib + 16 <= nb; ib += 16) {
                struct wgroup g;
                unpack_group(type, f, xr + ib * f->xsize, &g);
                for (int t = 0; t < nt; t++) {
                    const char *yb = yr[t] + ib * f->ysize;
                    __m512 dy = load_f16x16(yb, f->ysize);
                    __m512 ys = f->fold == FOLD_DXDY_SUMI_MS ? load_f16x16(yb + f->ys_off, f->ysize) : _mm512_setzero_ps();
                    __m512i s[8];
                    #pragma GCC unroll 8
                    for (int k = 0; k < 8; k++) s[k] = dot_pair(f, &g, k, load_act_pair(type, f, yb + 2 * k * f->ysize));
                    acc[t] = fold16(acc[t], reduce16(s), &g, dy, ys, f);
                }
            }
            for (; ib + 8 <= nb; ib += 8)
                for (int t = 0; t < nt; t++)
                    acc8[t] = group8(type, f, xr + ib * f->xsize, yr[t] + ib * f->ysize, acc8[t]);
            for (; ib < nb; ib++) {
                const char *xb = xr + ib * f->xsize;
                __m256i wv = blk_unpack(type, xb);
                for (int t = 0; t < nt; t++) {
                    const char *yb = yr[t] + ib * f->ysize;
                    tail[t] = fold1(tail[t], dot_one(type, f, wv, yb), xb, yb, f);
                }
            }
            for (int t = 0; t < nt; t++)
                out[(t0 + t) * out_stride + r] = (_mm512_reduce_add_ps(acc[t]) + hsum_ps(acc8[t])) + tail[t];
        }
    }
}

DEFINE_BLK32(q4_1, RB_TYPE_Q4_1)
DEFINE_BLK32(q5_0, RB_TYPE_Q5_0)
DEFINE_BLK32(q5_1, RB_TYPE_Q5_1)

/* ------------------------------------------------------------- K-quants */

/* Q2_K, Q3_K, Q5_K: the 256-bit code of x86_kquants.h, compiled here with
 * 32 registers. */

#include "x86_kquants.h"

DEFINE_KQUANT(q2_K, RB_TYPE_Q2_K)
DEFINE_KQUANT(q3_K, RB_TYPE_Q3_K)
DEFINE_KQUANT(q5_K, RB_TYPE_Q5_K)

/* ------------------------------------------------------------------ table */

const struct rb_kernels rb_kernels_avx512 = {
    .isa = "avx512",
    .vec_dot = {
        [RB_TYPE_F32] = rb_avx2_vec_dot_f32,
        [RB_TYPE_F16] = rb_avx2_vec_dot_f16,
        [RB_TYPE_BF16] = rb_avx2_vec_dot_bf16,
        [RB_TYPE_Q4_0] = rb_avx512_vec_dot_q4_0,
        [RB_TYPE_Q4_1] = vec_dot_q4_1,
        [RB_TYPE_Q5_0] = vec_dot_q5_0,
        [RB_TYPE_Q5_1] = vec_dot_q5_1,
        [RB_TYPE_Q8_0] = rb_avx512_vec_dot_q8_0,
        [RB_TYPE_Q2_K] = vec_dot_q2_K,
        [RB_TYPE_Q3_K] = vec_dot_q3_K,
        [RB_TYPE_Q4_K] = rb_avx512_vec_dot_q4_K,
        [RB_TYPE_Q5_K] = vec_dot_q5_K,
        [RB_TYPE_Q6_K] = rb_avx512_vec_dot_q6_K,
    },
    .gemm = {
        [RB_TYPE_F16] = rb_avx2_gemm_f16,
        [RB_TYPE_Q4_0] = rb_avx512_gemm_q4_0,
        [RB_TYPE_Q4_1] = gemm_q4_1,
        [RB_TYPE_Q5_0] = gemm_q5_0,
        [RB_TYPE_Q5_1] = gemm_q5_1,
        [RB_TYPE_Q8_0] = rb_avx512_gemm_q8_0,
        [RB_TYPE_Q2_K] = gemm_q2_K,
        [RB_TYPE_Q3_K] = gemm_q3_K,
        [RB_TYPE_Q4_K] = rb_avx512_gemm_q4_K,
        [RB_TYPE_Q5_K] = gemm_q5_K,
        [RB_TYPE_Q6_K] = rb_avx512_gemm_q6_K,
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
