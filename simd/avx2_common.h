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
 * Q4_0 and Q8_0 (the files people run): the activation rows are laid out
 * again once per call ("prepared", struct q32_prep): per 8 blocks of a token,
 * the first and second 16 quants of blocks 2p and 2p+1 side by side, the
 * exact correction -off * sum(y) of each block (off: the weights' unsigned
 * offset, 8 for Q4_0, 128 for Q8_0 with VNNI) and the scales as floats. A
 * pair of weight blocks then loads as [qs_2p | qs_2p+1] and meets them with
 * no shuffles: int32 lanes 0-3 hold part of block 2p, lanes 4-7 of block
 * 2p+1. Four pairs reduce to the 8 exact block sums (reduce_pairs), which
 * meet dx * dy in their lane; float lanes sum a chunk of 32 blocks, whose
 * total is added to the output's running sum. That order depends only on
 * the block index, never on how many tokens a tile holds or how rows are
 * split, so gemm and vec_dot give the same bits, and one block gives the
 * scalar reference's.
 *
 * Products, all exact in int32:
 *   Q4_0  nibble q (0..15) x y: maddubs pairs |.| <= 2 * 15 * 128, the two
 *         halves of a block add in int16 before vpmaddwd (AVX2); vpdpbusd
 *         (VNNI). Value q - 8: the correction adds -8 * sum(y).
 *   Q8_0  AVX2: |w| x (y * sign(w)) with vpsignb/vpmaddubsw, exact unless y
 *         is -128 (-(-128) wraps): nothing we quantize produces it, but a
 *         row from elsewhere may, so the preparation flags such tokens and
 *         they take a widening int16 path. VNNI: (w + 128) x y, and the
 *         correction adds -128 * sum(y); exact for every byte.
 * Q4_1, Q5_0, Q5_1: one driver over 8 blocks at a time (gemm_blk32).
 * K-quants: x86_kquants.h.
 *
 * Glossary: x/w = weight row, y = activation row, nb = blocks per row,
 * sumi = exact int32 block sum, dx/dy = block scales, acc = per-lane floats,
 * T = tokens in a tile, pass = the blocks whose activations are prepared at
 * once (the stack holds Q32_SLOTS groups of 8 blocks, whatever T is).
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
#define Q32_CHUNK 32    /* blocks per partial sum of an output (the float order) */
#define Q32_SLOTS 32    /* prepared groups of 8 blocks on the stack: 10 KiB */
#define Q32_PREFETCH 4096 /* bytes ahead of the weights being read (generation) */

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

/* ------------------------------------------------- Q4_0 / Q8_0 matmul */

struct q32_prep {             /* 8 activation blocks of one token: 320 bytes */
    int8_t lo[4][32];         /* pair p: y_2p[0..15] | y_2p+1[0..15] */
    int8_t hi[4][32];         /* pair p: y_2p[16..31] | y_2p+1[16..31] */
    int32_t corr[8];          /* -off * sum(y) per block, reduce_pairs order */
    float d[8];               /* activation scales, reduce_pairs order */
};
_Static_assert(sizeof(struct q32_prep) == 320, "q32_prep size");

/* One group of 8 weight blocks, unpacked once for every token of a tile. */
struct q32_wgroup {
    __m256i lo[4], hi[4];     /* pair p, the unsigned operand: Q4_0 nibbles;
                                 Q8_0 |w| (AVX2) or w + 128 (VNNI) */
    __m256i slo[4], shi[4];   /* Q8_0 on AVX2: 0xFF where the weight is negative */
    __m256 dx;                /* weight scales, reduce_pairs order */
};

struct q32_fmt {
    int type;                 /* RB_TYPE_Q4_0 or RB_TYPE_Q8_0 */
    size_t xsize;             /* bytes per weight block */
    int off;                  /* weights enter as w + off: correction -off * sum(y) */
};

static const struct q32_fmt q32_q4_0 = { RB_TYPE_Q4_0, sizeof(block_q4_0), 8 };
static const struct q32_fmt q32_q8_0 = { RB_TYPE_Q8_0, sizeof(block_q8_0), RB_X86_VNNI ? 128 : 0 };

/* s[p]: lanes 0-3 part of block 2p, lanes 4-7 part of block 2p+1. Returns
 * the 8 exact block sums, lane i holding block {0, 2, 4, 6, 1, 3, 5, 7}[i]. */
ALWAYS_INLINE __m256i reduce_pairs(const __m256i s[4]) {
    __m256i a01 = _mm256_add_epi32(_mm256_unpacklo_epi32(s[0], s[1]), _mm256_unpackhi_epi32(s[0], s[1]));
    __m256i a23 = _mm256_add_epi32(_mm256_unpacklo_epi32(s[2], s[3]), _mm256_unpackhi_epi32(s[2], s[3]));
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a01, a23), _mm256_unpackhi_epi64(a01, a23));
}

/* Block k of a group of 8 -> its lane after reduce_pairs. */
ALWAYS_INLINE int pair_lane(int k) { return (k & 1) * 4 + k / 2; }

/* Blocks b0 .. b0 + nb - 1 of a Q8_0 row -> ceil(nb / 8) prepared groups
 * (blocks past nb are zero: they add nothing). Returns 1 when a quant is
 * -128 (see the header: the AVX2 Q8_0 product needs the exact path). */
static int q32_prepare(const struct q32_fmt *f, const uint8_t *y, int64_t b0, int64_t nb, struct q32_prep *g) {
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    __m256i m128 = _mm256_setzero_si256();
    for (int64_t gi = 0; gi * 8 < nb; gi++) {
        __m256i s[4];
        float d[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
        for (int p = 0; p < 4; p++) {
            __m256i q[2];
            for (int h = 0; h < 2; h++) {
                int64_t b = gi * 8 + 2 * p + h;
                const uint8_t *blk = y + (size_t)(b0 + b) * sizeof(block_q8_0);
                q[h] = b < nb ? _mm256_loadu_si256((const __m256i *)AT(blk, block_q8_0, qs)) : _mm256_setzero_si256();
                if (b < nb) d[pair_lane(2 * p + h)] = f16_at(AT(blk, block_q8_0, d));
            }
            __m256i lo = _mm256_permute2x128_si256(q[0], q[1], 0x20);
            __m256i hi = _mm256_permute2x128_si256(q[0], q[1], 0x31);
            _mm256_storeu_si256((__m256i *)g[gi].lo[p], lo);
            _mm256_storeu_si256((__m256i *)g[gi].hi[p], hi);
            m128 = _mm256_or_si256(m128, _mm256_or_si256(_mm256_cmpeq_epi8(lo, _mm256_set1_epi8(-128)),
                                                         _mm256_cmpeq_epi8(hi, _mm256_set1_epi8(-128))));
            s[p] = _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(ones8, lo), _mm256_maddubs_epi16(ones8, hi)),
                                     ones16);
        }
        __m256i corr = _mm256_mullo_epi32(reduce_pairs(s), _mm256_set1_epi32(-f->off));
        _mm256_storeu_si256((__m256i *)g[gi].corr, corr);
        _mm256_storeu_ps(g[gi].d, _mm256_loadu_ps(d));
    }
    return !_mm256_testz_si256(m128, m128);
}

/* Weight blocks 2p, 2p+1 of a group at x (h = 0: quants 0..15, 1: 16..31 of
 * Q8_0), only those below nbg read. */
ALWAYS_INLINE __m256i load_pair(const uint8_t *x, size_t xsize, size_t qo, int p, int nbg) {
    const uint8_t *a = x + (size_t)(2 * p) * xsize + qo;
    if (2 * p + 1 < nbg) return load_2x128(a, a + xsize);
    if (2 * p < nbg) return _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)); /* upper half zero */
    return _mm256_setzero_si256();
}

/* The 8 weight blocks of a group at x (only the first nbg exist). */
ALWAYS_INLINE void q32_load_group(const struct q32_fmt *f, const uint8_t *x, int nbg, struct q32_wgroup *g) {
    const size_t xs = f->xsize;
    if (f->type == RB_TYPE_Q4_0) {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        #pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            __m256i v = load_pair(x, xs, offsetof(block_q4_0, qs), p, nbg);
            g->lo[p] = _mm256_and_si256(v, m4);
            g->hi[p] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
    } else {
        #pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            __m256i lo = load_pair(x, xs, offsetof(block_q8_0, qs), p, nbg);
            __m256i hi = load_pair(x, xs, offsetof(block_q8_0, qs) + 16, p, nbg);
#if RB_X86_VNNI
            g->lo[p] = _mm256_xor_si256(lo, _mm256_set1_epi8((char)0x80));
            g->hi[p] = _mm256_xor_si256(hi, _mm256_set1_epi8((char)0x80));
#else
            g->slo[p] = _mm256_cmpgt_epi8(_mm256_setzero_si256(), lo);
            g->shi[p] = _mm256_cmpgt_epi8(_mm256_setzero_si256(), hi);
            g->lo[p] = _mm256_abs_epi8(lo);
            g->hi[p] = _mm256_abs_epi8(hi);
#endif
        }
    }
    /* Both formats keep their F16 scale at offset 0. */
    if (nbg == 8) {
        g->dx = load_f16x8_2(x, x + xs, 2 * xs);
    } else {
        float d[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
        for (int k = 0; k < nbg; k++) d[pair_lane(k)] = f16_at(x + k * xs);
        g->dx = _mm256_loadu_ps(d);
    }
}

#if !RB_X86_VNNI
/* v with the bytes where m is 0xFF negated (two's complement, so -128 stays
 * -128): vpsignb's work on the integer ALUs, off the two pipes that
 * vpmaddubsw and vpmaddwd need (vpsignb shares them on Zen 4). */
ALWAYS_INLINE __m256i negate_where(__m256i v, __m256i m) {
    return _mm256_sub_epi8(_mm256_xor_si256(v, m), m);
}

/* dot(w, y) of a pair, exact for every int8 (activations holding -128):
 * widened to int16, lanes 0-3 block 2p, 4-7 block 2p+1. */
ALWAYS_INLINE __m256i pair_dot_i16(__m256i w, __m256i y) {
    __m256i a = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(w)),
                                  _mm256_cvtepi8_epi16(_mm256_castsi256_si128(y)));
    __m256i b = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(w, 1)),
                                  _mm256_cvtepi8_epi16(_mm256_extracti128_si256(y, 1)));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}
#endif

/* sumi[t] = the 8 exact block sums (reduce_pairs order, without the
 * correction) of a weight group against the prepared group of token t. */
ALWAYS_INLINE void q32_group_sums(const struct q32_fmt *f, int T, const struct q32_wgroup *g,
                                  const struct q32_prep *const *y, const int *has_m128, __m256i *sumi) {
    (void)f;
    (void)has_m128;
#if RB_X86_VNNI
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        __m256i s[4];
        #pragma GCC unroll 4
        for (int p = 0; p < 4; p++)
            s[p] = dot2_u4_i8(g->lo[p], _mm256_loadu_si256((const __m256i *)y[t]->lo[p]), g->hi[p],
                              _mm256_loadu_si256((const __m256i *)y[t]->hi[p]));
        sumi[t] = reduce_pairs(s);
    }
#else
    const __m256i ones = _mm256_set1_epi16(1);
    if (f->type == RB_TYPE_Q4_0) {
        /* A pair's two halves add in int16 (|.| <= 2 * 2 * 15 * 128), and two
         * pairs' words of the same block once more before vpmaddwd widens
         * them: the reduce_pairs order with half the multiplies. */
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m256i p[4];
            #pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                p[k] = _mm256_add_epi16(_mm256_maddubs_epi16(g->lo[k], _mm256_loadu_si256((const __m256i *)y[t]->lo[k])),
                                        _mm256_maddubs_epi16(g->hi[k], _mm256_loadu_si256((const __m256i *)y[t]->hi[k])));
            __m256i m01 = _mm256_madd_epi16(_mm256_add_epi16(_mm256_unpacklo_epi32(p[0], p[1]),
                                                             _mm256_unpackhi_epi32(p[0], p[1])), ones);
            __m256i m23 = _mm256_madd_epi16(_mm256_add_epi16(_mm256_unpacklo_epi32(p[2], p[3]),
                                                             _mm256_unpackhi_epi32(p[2], p[3])), ones);
            sumi[t] = _mm256_add_epi32(_mm256_unpacklo_epi64(m01, m23), _mm256_unpackhi_epi64(m01, m23));
        }
        return;
    }
    /* Q8_0: one pair of weight blocks at a time meets every token (16
     * vectors of a whole group would not stay in registers). Both paths give
     * the same exact sums, so one -128 sends the whole tile the slow way. */
    int any_m128 = 0;
    for (int t = 0; t < T; t++) any_m128 |= has_m128[t];
    __m256i s[TOK_TILE][4];
    if (!any_m128) {
        #pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const __m256i alo = g->lo[k], ahi = g->hi[k], mlo = g->slo[k], mhi = g->shi[k];
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m256i ylo = _mm256_loadu_si256((const __m256i *)y[t]->lo[k]);
                __m256i yhi = _mm256_loadu_si256((const __m256i *)y[t]->hi[k]);
                s[t][k] = _mm256_add_epi32(dot_u8_i8(alo, negate_where(ylo, mlo)),
                                           dot_u8_i8(ahi, negate_where(yhi, mhi)));
            }
        }
    } else {
        for (int k = 0; k < 4; k++)
            for (int t = 0; t < T; t++)
                s[t][k] = _mm256_add_epi32(
                    pair_dot_i16(negate_where(g->lo[k], g->slo[k]), _mm256_loadu_si256((const __m256i *)y[t]->lo[k])),
                    pair_dot_i16(negate_where(g->hi[k], g->shi[k]), _mm256_loadu_si256((const __m256i *)y[t]->hi[k])));
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) sumi[t] = reduce_pairs(s[t]);
#endif
}

/* sums[t] = the float sum of one row's chunk (nblk <= Q32_CHUNK blocks at x)
 * against T prepared tokens: lane i of acc sums the terms of the blocks that
 * reduce to lane i, one group after another; then the lanes are added. */
ALWAYS_INLINE void q32_chunk(const struct q32_fmt *f, int T, const uint8_t *x, int nblk,
                             const struct q32_prep *const *yp, const int *has_m128, float *sums) {
    __m256 acc[TOK_TILE];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int gi = 0; gi * 8 < nblk; gi++) {
        const uint8_t *xg = x + (size_t)gi * 8 * f->xsize;
        if (T == 1) /* generation streams weights from DRAM: ask ahead */
            for (size_t l = 0; l < 8 * f->xsize; l += 64) _mm_prefetch((const char *)xg + Q32_PREFETCH + l, _MM_HINT_T0);
        struct q32_wgroup g;
        q32_load_group(f, xg, nblk - gi * 8 < 8 ? nblk - gi * 8 : 8, &g);
        const struct q32_prep *yg[TOK_TILE];
        __m256i sumi[TOK_TILE];
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) yg[t] = yp[t] + gi;
        q32_group_sums(f, T, &g, yg, has_m128, sumi);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m256i si = sumi[t];
            if (f->off) si = _mm256_add_epi32(si, _mm256_loadu_si256((const __m256i *)yg[t]->corr));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_mul_ps(g.dx, _mm256_loadu_ps(yg[t]->d)), acc[t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) sums[t] = hsum_ps(acc[t]);
}

/* Every row against T tokens prepared for blocks [b0, b0 + nbp): each
 * chunk's sum is added to the output's running sum (first: b0 == 0). */
ALWAYS_INLINE void q32_rows(const struct q32_fmt *f, int T, int64_t n_rows, const uint8_t *w, size_t w_row_bytes,
                            int64_t b0, int64_t nbp, const struct q32_prep *const *yp, const int *has_m128,
                            float *out, int64_t out_stride) {
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *x = w + (size_t)r * w_row_bytes + (size_t)b0 * f->xsize;
        if (T > 1 && r + 2 < n_rows) /* a pass reads a slice of each row: fetch the next one's */
            for (size_t l = 0; l < (size_t)nbp * f->xsize; l += 64) _mm_prefetch((const char *)x + 2 * w_row_bytes + l, _MM_HINT_T0);
        float tot[TOK_TILE];
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) tot[t] = b0 ? out[t * out_stride + r] : 0.0f;
        for (int64_t c = 0; c < nbp; c += Q32_CHUNK) {
            const struct q32_prep *yc[TOK_TILE];
            float sums[TOK_TILE];
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) yc[t] = yp[t] + c / 8;
            q32_chunk(f, T, x + (size_t)c * f->xsize, nbp - c < Q32_CHUNK ? (int)(nbp - c) : Q32_CHUNK, yc, has_m128,
                      sums);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) tot[t] = b0 + c == 0 ? sums[t] : tot[t] + sums[t];
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) out[t * out_stride + r] = tot[t];
    }
}

ALWAYS_INLINE void gemm_q32(const struct q32_fmt *f, int64_t n, int64_t n_rows, int64_t n_tok, const void *w,
                            size_t w_row_bytes, const void *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    struct q32_prep buf[Q32_SLOTS];
    const int64_t nb = n / 32;
    for (int64_t t0 = 0; t0 < n_tok;) {
        const int64_t left = n_tok - t0;
        const int T = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const int64_t pass = (int64_t)(Q32_SLOTS / T) * 8; /* a multiple of Q32_CHUNK */
        for (int64_t b0 = 0; b0 < nb; b0 += pass) {
            const int64_t nbp = nb - b0 < pass ? nb - b0 : pass;
            const struct q32_prep *yp[TOK_TILE];
            int has_m128[TOK_TILE];
            for (int t = 0; t < T; t++) {
                struct q32_prep *g = buf + t * (Q32_SLOTS / T);
                has_m128[t] = q32_prepare(f, (const uint8_t *)act + (size_t)(t0 + t) * act_row_bytes, b0, nbp, g);
                yp[t] = g;
            }
            const uint8_t *wp = w;
            float *o = out + t0 * out_stride;
            switch (T) {
            case 8: q32_rows(f, 8, n_rows, wp, w_row_bytes, b0, nbp, yp, has_m128, o, out_stride); break;
            case 4: q32_rows(f, 4, n_rows, wp, w_row_bytes, b0, nbp, yp, has_m128, o, out_stride); break;
            case 2: q32_rows(f, 2, n_rows, wp, w_row_bytes, b0, nbp, yp, has_m128, o, out_stride); break;
            default: q32_rows(f, 1, n_rows, wp, w_row_bytes, b0, nbp, yp, has_m128, o, out_stride); break;
            }
        }
        t0 += T;
    }
}

#define DEFINE_Q32(name, fmt) \
    static void gemm_##name(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t wrb, \
                            const void *act, size_t arb, float *out, int64_t os) { \
        gemm_q32(&fmt, n, n_rows, n_tok, w, wrb, act, arb, out, os); \
    } \
    static void vec_dot_##name(int64_t n, float *s, const void *x, const void *y) { \
        gemm_q32(&fmt, n, 1, 1, x, 0, y, 0, s, 1); \
    }

DEFINE_Q32(q4_0, q32_q4_0)
DEFINE_Q32(q8_0, q32_q8_0)

/* ------------------------------------------------- Q4_1, Q5_0, Q5_1 */

/* A block's 32 products summed to 8 int32 lanes, eight blocks' lanes reduced
 * together to eight exact block sums (reduce8), then the block scales in
 * the scalar reference's float order per block; blocks k, k+8, ... share
 * float lane k. A row's last nb % 8 blocks go one at a time in scalar order. */

enum fold_kind {
    FOLD_DXDY_SUMI,    /* acc += (dx * dy) * sumi             (Q5_0) */
    FOLD_DXDY_SUMI_MS, /* acc += (dx * dy) * sumi + m * s     (Q4_1, Q5_1) */
};

struct blk32 {
    size_t xsize, ysize;   /* bytes per weight / activation block */
    size_t xm_off;         /* offset of the weight min m (FOLD_DXDY_SUMI_MS) */
    size_t ys_off;         /* offset of the activation s (Q8_1) */
    enum fold_kind fold;
};

ALWAYS_INLINE __m256 fold8(__m256 acc, __m256i sumi, const char *x, const char *y, const struct blk32 *f) {
    __m256 dx = load_f16x8(x, f->xsize), dy = load_f16x8(y, f->ysize);
    __m256 t = _mm256_mul_ps(_mm256_mul_ps(dx, dy), _mm256_cvtepi32_ps(sumi));
    if (f->fold == FOLD_DXDY_SUMI_MS)
        t = _mm256_add_ps(t, _mm256_mul_ps(load_f16x8(x + f->xm_off, f->xsize), load_f16x8(y + f->ys_off, f->ysize)));
    return _mm256_add_ps(acc, t);
}

/* One statement per rounding step, as scalar rounds. */
ALWAYS_INLINE float fold1(float acc, int sumi, const char *x, const char *y, const struct blk32 *f) {
    float dxdy = f16_at(x) * f16_at(y);
    float t = dxdy * (float)sumi;
    if (f->fold == FOLD_DXDY_SUMI_MS) {
        float ms = f16_at(x + f->xm_off) * f16_at(y + f->ys_off);
        t = t + ms;
    }
    return acc + t;
}

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

static const struct blk32 fmt_q5_0 = { sizeof(block_q5_0), sizeof(block_q8_0), 0, 0, FOLD_DXDY_SUMI };
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

DEFINE_BLK32(q4_1, RB_TYPE_Q4_1, fmt_q4_1)
DEFINE_BLK32(q5_0, RB_TYPE_Q5_0, fmt_q5_0)
DEFINE_BLK32(q5_1, RB_TYPE_Q5_1, fmt_q5_1)

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
