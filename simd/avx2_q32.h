/* avx2_q32.h - Q4_0 and Q8_0 weights against Q8_0 activations for the
 * 256-bit tables (included by avx2_common.h, which defines RB_X86_VNNI,
 * dot2_u4_i8 and TOK_TILE first).
 *
 * Direct path (generation, small batches, vec_dot): the activation rows are
 * laid out again once per call ("prepared", struct q32_prep): per 8 blocks
 * of a token, the first and second 16 quants of blocks 2p and 2p+1 side by
 * side, the exact correction -off * sum(y) of each block (off: the weights'
 * unsigned offset, 8 for Q4_0, 128 for Q8_0 with VNNI) and the scales as
 * floats. A pair of weight blocks then loads as [qs_2p | qs_2p+1] and meets
 * them with no shuffles: int32 lanes 0-3 hold part of block 2p, lanes 4-7
 * of block 2p+1. Four pairs reduce to the 8 exact block sums (reduce_pairs),
 * which meet dx * dy in their lane: acc lane pair_lane(k) sums the terms of
 * the blocks 8g + k of a chunk of 32 blocks (fused multiply-add), hsum_ps
 * adds the lanes, and each chunk's sum is added to the output's running
 * sum. That order depends only on the block index, so every path, tile and
 * thread split gives the same bits, and one block gives the scalar
 * reference's.
 *
 * Prompt batches (Q32R_MIN_TOK tokens and more; Q8_0 without VNNI has its
 * own path, avx2_q8_wide.h): 8 weight rows at a time are repacked on the
 * heap so that int32 lane r holds row r: step k of a block is 4 quants of
 * each row, and one broadcast of the token's 4 quants meets them. A
 * block's exact sum builds up in its lane over 8 steps, with no reduction
 * across lanes; its float term then goes to the accumulator the direct path
 * uses for that block (one vector per acc lane, lanes = rows), and a
 * chunk's accumulators are added in hsum_ps's order: the same bits.
 * Each weight row is read once per call; a failed allocation falls back to
 * the direct path.
 *
 * Products, all exact in int32:
 *   Q4_0  nibble q (0..15) x y: maddubs pairs |.| <= 2 * 15 * 128, added in
 *         int16 up to 8 at a time before vpmaddwd (AVX2); vpdpbusd (VNNI).
 *         Value q - 8: the correction adds -8 * sum(y).
 *   Q8_0  AVX2 (direct path): |w| x (y negated where w < 0) with
 *         vpmaddubsw, exact unless y is -128 (-(-128) wraps): nothing we
 *         quantize produces it, but a row from elsewhere may, so such tokens
 *         are flagged and take a widening int16 path. VNNI: (w + 128) x y,
 *         and the correction adds -128 * sum(y); exact for every byte.
 */
#ifndef RB_AVX2_Q32_H
#define RB_AVX2_Q32_H

#include <stdlib.h>

#define Q32_CHUNK 32    /* blocks per partial sum of an output (the float order) */
#define Q32_SLOTS 32    /* prepared groups of 8 blocks on the stack: 10 KiB */
#define Q32_PREFETCH 4096 /* bytes ahead of the weights being read (generation) */

/* ------------------------------------------------------- direct path */

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

/* acc[i] holds, lane by lane (one lane per row), what acc lane i holds in
 * the direct path: their sum in hsum_ps's order, for 8 rows at once. */
ALWAYS_INLINE __m256 sum_acc_lanes(const __m256 acc[8]) {
    return _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6])),
                         _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7])));
}

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
ALWAYS_INLINE void q32_chunk(const struct q32_fmt *f, int T, const uint8_t *x, int nblk, int stream,
                             const struct q32_prep *const *yp, const int *has_m128, float *sums) {
    __m256 acc[TOK_TILE];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int gi = 0; gi * 8 < nblk; gi++) {
        const uint8_t *xg = x + (size_t)gi * 8 * f->xsize;
        if (stream) /* rows read whole, one after another: ask ahead in the stream */
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

/* Every row against T tokens prepared for blocks [b0, b0 + nbp) of nb:
 * each chunk's sum is added to the output's running sum (first: b0 == 0).
 * One token over whole rows reads the matrix as one stream, prefetched a
 * fixed distance ahead; otherwise a pass reads a slice of each row, and a
 * fixed distance would fetch bytes of the rows' other slices, which this
 * pass skips (on a 7B model's FFN down rows, half again the bytes). */
ALWAYS_INLINE void q32_rows(const struct q32_fmt *f, int T, int64_t n_rows, const uint8_t *w, size_t w_row_bytes,
                            int64_t b0, int64_t nbp, int64_t nb, const struct q32_prep *const *yp,
                            const int *has_m128, float *out, int64_t out_stride) {
    const int stream = T == 1 && nbp == nb;
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *x = w + (size_t)r * w_row_bytes + (size_t)b0 * f->xsize;
        if (!stream && r + 2 < n_rows) /* fetch the slice of the row after next */
            for (size_t l = 0; l < (size_t)nbp * f->xsize; l += 64) _mm_prefetch((const char *)x + 2 * w_row_bytes + l, _MM_HINT_T0);
        float tot[TOK_TILE];
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) tot[t] = b0 ? out[t * out_stride + r] : 0.0f;
        for (int64_t c = 0; c < nbp; c += Q32_CHUNK) {
            const struct q32_prep *yc[TOK_TILE];
            float sums[TOK_TILE];
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) yc[t] = yp[t] + c / 8;
            q32_chunk(f, T, x + (size_t)c * f->xsize, nbp - c < Q32_CHUNK ? (int)(nbp - c) : Q32_CHUNK, stream, yc,
                      has_m128, sums);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) tot[t] = b0 + c == 0 ? sums[t] : tot[t] + sums[t];
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) out[t * out_stride + r] = tot[t];
    }
}

/* Rows read whole, one after another, are the stream DRAM serves fastest:
 * passes over slices of every row, all that the stack's Q32_SLOTS groups
 * allow for long rows or several tokens, read a 7B model's FFN down matrix
 * (rows of 11008) at under half that speed. So the tokens are prepared
 * whole on the heap when the stack cannot hold them (rows > 1: vec_dot's one
 * row gains nothing); the passes remain for when the heap fails. Chunk
 * sums add up in one order either way: the same bits. */
ALWAYS_INLINE void gemm_q32_direct(const struct q32_fmt *f, int64_t n, int64_t n_rows, int64_t n_tok, const void *w,
                                   size_t w_row_bytes, const void *act, size_t act_row_bytes, float *out,
                                   int64_t out_stride) {
    struct q32_prep stack[Q32_SLOTS];
    const int64_t nb = n / 32, n_groups = (nb + 7) / 8;
    const int t_max = n_tok < TOK_TILE ? (int)n_tok : TOK_TILE;
    struct q32_prep *heap = n_rows > 1 && t_max * n_groups > Q32_SLOTS
                                ? malloc((size_t)(t_max * n_groups) * sizeof *heap) : NULL;
    struct q32_prep *buf = heap ? heap : stack;
    for (int64_t t0 = 0; t0 < n_tok;) {
        const int64_t left = n_tok - t0;
        const int T = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const int64_t per_tok = heap ? n_groups : Q32_SLOTS / T; /* groups */
        const int64_t pass = heap ? nb : per_tok * 8;             /* a multiple of Q32_CHUNK */
        for (int64_t b0 = 0; b0 < nb; b0 += pass) {
            const int64_t nbp = nb - b0 < pass ? nb - b0 : pass;
            const struct q32_prep *yp[TOK_TILE];
            int has_m128[TOK_TILE];
            for (int t = 0; t < T; t++) {
                struct q32_prep *g = buf + t * per_tok;
                has_m128[t] = q32_prepare(f, (const uint8_t *)act + (size_t)(t0 + t) * act_row_bytes, b0, nbp, g);
                yp[t] = g;
            }
            const uint8_t *wp = w;
            float *o = out + t0 * out_stride;
            switch (T) {
            case 8: q32_rows(f, 8, n_rows, wp, w_row_bytes, b0, nbp, nb, yp, has_m128, o, out_stride); break;
            case 4: q32_rows(f, 4, n_rows, wp, w_row_bytes, b0, nbp, nb, yp, has_m128, o, out_stride); break;
            case 2: q32_rows(f, 2, n_rows, wp, w_row_bytes, b0, nbp, nb, yp, has_m128, o, out_stride); break;
            default: q32_rows(f, 1, n_rows, wp, w_row_bytes, b0, nbp, nb, yp, has_m128, o, out_stride); break;
            }
        }
        t0 += T;
    }
    free(heap);
}

/* ------------------------------------------------- repacked rows (prompt) */

#define Q32R_MIN_TOK 16 /* batches from this size repack the weights */
#define Q32R_TOK 4      /* tokens per register tile */

/* 8 rows' block b repacked: step k holds quants 4k..4k+3 of row r in lane r. */
struct q32r_block {
    __m256i u[8];     /* the unsigned operand: Q4_0 nibbles, Q8_0 w + 128 (VNNI) */
    __m256 dx;        /* the rows' scales (0 for rows past the matrix) */
};

/* Per token and block: the scale and the exact correction -off * sum(y). */
struct q32r_act {
    float dy;
    int32_t corr;
};

/* Lane i of the result = dword k of v[i]: the 8 x 8 dword transpose. */
ALWAYS_INLINE void transpose8(__m256i v[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int k = 0; k < 4; k++) {
        v[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
        v[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
    }
}

/* Rows r0 .. r0 + nr - 1 (nr <= 8) of the weights -> nb repacked blocks. */
static void q32r_repack(const struct q32_fmt *f, const uint8_t *w, size_t w_row_bytes, int nr, int64_t nb,
                        struct q32r_block *out) {
    for (int64_t b = 0; b < nb; b++) {
        __m256i v[8];
        float dx[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
        for (int r = 0; r < 8; r++) {
            const uint8_t *x = w + (size_t)r * w_row_bytes + (size_t)b * f->xsize;
            if (r >= nr) {
                v[r] = _mm256_setzero_si256();
                continue;
            }
            dx[r] = f16_at(x); /* both formats keep their F16 scale at offset 0 */
            v[r] = f->type == RB_TYPE_Q4_0 ? unpack_nibbles(AT(x, block_q4_0, qs))
                                           : _mm256_loadu_si256((const __m256i *)AT(x, block_q8_0, qs));
        }
        transpose8(v);
        for (int k = 0; k < 8; k++)
            out[b].u[k] = f->type == RB_TYPE_Q4_0 ? v[k] : _mm256_xor_si256(v[k], _mm256_set1_epi8((char)0x80));
        out[b].dx = _mm256_loadu_ps(dx);
    }
}

/* A token's blocks -> scales and corrections. */
static void q32r_prepare(const struct q32_fmt *f, const uint8_t *y, int64_t nb, struct q32r_act *a) {
    const __m256i ones8 = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = y + (size_t)b * sizeof(block_q8_0);
        __m256i q = _mm256_loadu_si256((const __m256i *)AT(blk, block_q8_0, qs));
        a[b].dy = f16_at(AT(blk, block_q8_0, d));
        a[b].corr = -f->off * hsum_epi32(dot_u8_i8(ones8, q));
    }
}

/* The exact sums of one repacked block against T tokens (quants at y[t]). */
ALWAYS_INLINE void q32r_block_sums(int T, const struct q32r_block *wb, const uint8_t *const *y, __m256i *sumi) {
    __m256i s[Q32R_TOK];
    #pragma GCC unroll 4
    for (int t = 0; t < T; t++) s[t] = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++) { /* rolled: unrolled, GCC reassociates the sums and parks every product */
        const __m256i u = wb->u[k];
        #pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            int32_t q4;
            memcpy(&q4, y[t] + 4 * k, 4);
            const __m256i yv = _mm256_set1_epi32(q4);
#if RB_X86_VNNI
            s[t] = RB_DPBUSD(s[t], u, yv);
#else /* Q4_0 (Q8_0 is avx2_q8_wide.h's): int16 words, 8 steps of |.| <= 2 * 15 * 128 */
            s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(u, yv));
#endif
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < T; t++)
        sumi[t] = RB_X86_VNNI ? s[t] : _mm256_madd_epi16(s[t], _mm256_set1_epi16(1));
}

/* One group of 8 rows (repacked at wp) against T tokens: out[t][r] for the
 * nr rows, with the direct path's float order. */
ALWAYS_INLINE void q32r_rows(const struct q32_fmt *f, int T, int64_t nb, const struct q32r_block *wp,
                             const uint8_t *const *yq, const struct q32r_act *const *ya, int nr,
                             float *const *out) {
    __m256 tot[Q32R_TOK] = { _mm256_setzero_ps() }; /* set by the first chunk */
    for (int64_t c0 = 0; c0 < nb; c0 += Q32_CHUNK) {
        __m256 acc[Q32R_TOK][8];
        #pragma GCC unroll 4
        for (int t = 0; t < T; t++)
            #pragma GCC unroll 8
            for (int i = 0; i < 8; i++) acc[t][i] = _mm256_setzero_ps();
        const int64_t c1 = nb - c0 < Q32_CHUNK ? nb : c0 + Q32_CHUNK;
        for (int64_t g = c0; g < c1; g += 8) {
            #pragma GCC unroll 8
            for (int k = 0; k < 8; k++) { /* acc[t][pair_lane(k)]: the direct path's lane of block k */
                const int64_t b = g + k;
                if (b >= c1) break;
                const uint8_t *yb[Q32R_TOK];
                __m256i sumi[Q32R_TOK];
                #pragma GCC unroll 4
                for (int t = 0; t < T; t++) yb[t] = yq[t] + (size_t)b * sizeof(block_q8_0) + offsetof(block_q8_0, qs);
                q32r_block_sums(T, wp + b, yb, sumi);
                #pragma GCC unroll 4
                for (int t = 0; t < T; t++) {
                    __m256i si = sumi[t];
                    if (f->off) si = _mm256_add_epi32(si, _mm256_set1_epi32(ya[t][b].corr));
                    __m256 dxdy = _mm256_mul_ps(wp[b].dx, _mm256_set1_ps(ya[t][b].dy));
                    acc[t][pair_lane(k)] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), dxdy, acc[t][pair_lane(k)]);
                }
            }
        }
        #pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256 sum = sum_acc_lanes(acc[t]);
            tot[t] = c0 == 0 ? sum : _mm256_add_ps(tot[t], sum);
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < T; t++) {
        if (nr == 8) {
            _mm256_storeu_ps(out[t], tot[t]);
        } else {
            float v[8];
            _mm256_storeu_ps(v, tot[t]);
            memcpy(out[t], v, (size_t)nr * sizeof(float));
        }
    }
}

/* The repacked path; returns -1 (nothing written) if the scratch cannot be
 * allocated. */
ALWAYS_INLINE int gemm_q32_repacked(const struct q32_fmt *f, int64_t n, int64_t n_rows, int64_t n_tok, const void *w,
                                   size_t w_row_bytes, const void *act, size_t act_row_bytes, float *out,
                                   int64_t out_stride) {
    const int64_t nb = n / 32;
    const size_t pack_bytes = (size_t)nb * sizeof(struct q32r_block);
    const size_t act_bytes = (size_t)n_tok * (size_t)nb * sizeof(struct q32r_act);
    uint8_t *scratch = aligned_alloc(32, (pack_bytes + act_bytes + 31) / 32 * 32);
    if (!scratch) return -1;
    struct q32r_block *wp = (struct q32r_block *)scratch;
    struct q32r_act *ya = (struct q32r_act *)(scratch + pack_bytes);
    for (int64_t t = 0; t < n_tok; t++) q32r_prepare(f, (const uint8_t *)act + (size_t)t * act_row_bytes, nb, ya + t * nb);
    for (int64_t r0 = 0; r0 < n_rows; r0 += 8) {
        const int nr = n_rows - r0 < 8 ? (int)(n_rows - r0) : 8;
        q32r_repack(f, (const uint8_t *)w + (size_t)r0 * w_row_bytes, w_row_bytes, nr, nb, wp);
        for (int64_t i = 0; i < n_tok;) {
            const int T = n_tok - i >= Q32R_TOK ? Q32R_TOK : 1;
            const uint8_t *yq[Q32R_TOK];
            const struct q32r_act *yt[Q32R_TOK];
            float *o[Q32R_TOK];
            for (int t = 0; t < T; t++) {
                yq[t] = (const uint8_t *)act + (size_t)(i + t) * act_row_bytes;
                yt[t] = ya + (i + t) * nb;
                o[t] = out + (i + t) * out_stride + r0;
            }
            if (T == Q32R_TOK) q32r_rows(f, Q32R_TOK, nb, wp, yq, yt, nr, o);
            else q32r_rows(f, 1, nb, wp, yq, yt, nr, o);
            i += T;
        }
    }
    free(scratch);
    return 0;
}

/* The prompt path of a format: Q8_0 without VNNI widens to int16
 * (avx2_q8_wide.h), the rest repack bytes. */
#if RB_X86_VNNI
#define Q32_PROMPT(f, ...) gemm_q32_repacked(f, __VA_ARGS__)
#else
#include "avx2_q8_wide.h"
#define Q32_PROMPT(f, ...) ((f)->type == RB_TYPE_Q8_0 ? gemm_q8_wide(__VA_ARGS__) : gemm_q32_repacked(f, __VA_ARGS__))
#endif

/* Prompt batches repack (same bits as the direct path), the rest go direct. */
ALWAYS_INLINE void gemm_q32(const struct q32_fmt *f, int64_t n, int64_t n_rows, int64_t n_tok, const void *w,
                            size_t w_row_bytes, const void *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    if (n_tok >= Q32R_MIN_TOK && Q32_PROMPT(f, n, n_rows, n_tok, w, w_row_bytes, act, act_row_bytes, out, out_stride) == 0)
        return;
    gemm_q32_direct(f, n, n_rows, n_tok, w, w_row_bytes, act, act_row_bytes, out, out_stride);
}

#define DEFINE_Q32(name, fmt) \
    static void gemm_##name(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t wrb, \
                            const void *act, size_t arb, float *out, int64_t os) { \
        gemm_q32(&fmt, n, n_rows, n_tok, w, wrb, act, arb, out, os); \
    } \
    static void vec_dot_##name(int64_t n, float *s, const void *x, const void *y) { \
        gemm_q32_direct(&fmt, n, 1, 1, x, 0, y, 0, s, 1); \
    }

DEFINE_Q32(q4_0, q32_q4_0)
DEFINE_Q32(q8_0, q32_q8_0)

#endif
