/* avx512_q32.c - AVX-512 VNNI matmul for Q4_0 and Q8_0 weights against Q8_0
 * activations: the hot path of the files people run most (compiled with
 * avx512.c's flags).
 *
 * The activation rows are laid out again once per call ("prepared"), so the
 * loop over weight rows does the least work per weight byte. A prepared group
 * covers 4 blocks (128 elements) of one token:
 *   lo[16j + i] = y_j[i]        hi[16j + i] = y_j[16 + i]      (i < 16, j < 4)
 *   corr[4j + l] = -off * sum of the 8 y_j bytes lane l meets   (int32)
 *   d[4j + l]    = scale of y_j                                  (float)
 * Weights stay as the file stores them. Four blocks' quants load as one zmm
 * [qs_0 | qs_1 | qs_2 | qs_3]; its low nibbles meet `lo` and its high nibbles
 * `hi` (Q4_0), so vpdpbusd's 4-byte lanes never straddle blocks: int32 lane
 * 4j + l holds part of block j's exact sum. vpdpbusd multiplies u8 by s8, so
 * the weight quants enter unsigned (Q4_0's stored nibble q = w + 8; Q8_0's
 * w ^ 0x80 = w + 128) and the activation side subtracts off * sum(y) through
 * `corr` (added to the block sums of a hex, or starting a lone quad's
 * accumulator): every int32 lane is exact.
 *
 * Float part: the int32 lanes of four quads (a hex of 16 blocks) reduce to
 * one exact sum per block, which meets dx * dy in its lane; one float
 * accumulator per output sums the block terms, its 16 lanes added at the
 * end. So one block gives the scalar reference's bits, and a row differs
 * from it only in the order its block terms are added. That order is fixed
 * for every output (it does not depend on how many tokens a tile holds, nor
 * on the thread split), so gemm and vec_dot give the same bits.
 *
 * Tiles: R weight rows against T tokens (1 x 8 in prompt processing, 2 x 4
 * for long rows) share each unpacked hex and each activation load. Rows are
 * long (thousands of elements), so a chunk of KCHUNK blocks of T tokens is
 * prepared at a time, on the stack (128 KiB).
 */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "avx512.h"
#include "../quant/quant.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")

#define KCHUNK 256   /* blocks per prepared chunk: 8192 elements */
#define PREFETCH 8192 /* bytes ahead of the weights being read (generation), into L2 */
#define TOK_MAX 8    /* tokens per prepared chunk */

struct prep_group {
    int8_t lo[64], hi[64];
    int32_t corr[16];
    float d[16];
};
_Static_assert(sizeof(struct prep_group) == 256, "prep_group size");

/* Weight type facts the loops specialize on. */
struct q32_fmt {
    int type;        /* RB_TYPE_Q4_0 or RB_TYPE_Q8_0 */
    size_t xsize;    /* bytes per weight block */
    int off_shift;   /* log2 of the unsigned offset: 3 (8) or 7 (128) */
};
static const struct q32_fmt fmt_q4_0 = { RB_TYPE_Q4_0, sizeof(block_q4_0), 3 };
static const struct q32_fmt fmt_q8_0 = { RB_TYPE_Q8_0, sizeof(block_q8_0), 7 };

ALWAYS_INLINE __m128i load16(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }

/* v with its 128-bit lane j (a run-time value) replaced by the 16 bytes at p */
ALWAYS_INLINE __m512i insert_lane(__m512i v, const uint8_t *p, int j) {
    switch (j) {
    case 0: return _mm512_inserti32x4(v, load16(p), 0);
    case 1: return _mm512_inserti32x4(v, load16(p), 1);
    case 2: return _mm512_inserti32x4(v, load16(p), 2);
    default: return _mm512_inserti32x4(v, load16(p), 3);
    }
}

/* s[q]: int32 lanes of quad q (lane 4j + l: part of block 4q + j). Returns
 * the 16 exact block sums, lane 4j + q holding block 4q + j (hex order). */
ALWAYS_INLINE __m512i reduce_quads(const __m512i s[4]) {
    __m512i a01 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[0], s[1]), _mm512_unpackhi_epi32(s[0], s[1]));
    __m512i a23 = _mm512_add_epi32(_mm512_unpacklo_epi32(s[2], s[3]), _mm512_unpackhi_epi32(s[2], s[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(a01, a23), _mm512_unpackhi_epi64(a01, a23));
}

/* ------------------------------------------------------- activations */

static float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Blocks b0 .. b0+nb-1 of one Q8_0 row -> ceil(nb / 4) prepared groups;
 * blocks past nb are zero (so they add nothing). Where four groups make a
 * full hex of 16 blocks, the first one's d and corr hold the hex's 16 scales
 * and corrections in hex order (lane 4j + q: block 4q + j, see
 * reduce_quads), and the other three d and corr fields are unused. */
static void prepare_row(const struct q32_fmt *f, const uint8_t *y, int64_t b0, int64_t nb,
                        struct prep_group *g) {
    const __m512i ones = _mm512_set1_epi8(1);
    const int64_t n_groups = (nb + 3) / 4, n_hex = nb / 16;
    for (int64_t gi = 0; gi < n_groups; gi++) {
        __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
        float d[4] = { 0, 0, 0, 0 };
        for (int j = 0; j < 4 && gi * 4 + j < nb; j++) {
            const uint8_t *blk = y + (size_t)(b0 + gi * 4 + j) * sizeof(block_q8_0);
            const uint8_t *qs = blk + offsetof(block_q8_0, qs);
            lo = insert_lane(lo, qs, j);
            hi = insert_lane(hi, qs + 16, j);
            d[j] = f16_at(blk + offsetof(block_q8_0, d));
        }
        /* dpbusd(0, 1, y): per-lane sums of four s8 values, exact */
        __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, lo), ones, hi);
        __m512i corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, f->off_shift));
        _mm512_storeu_si512(g[gi].lo, lo);
        _mm512_storeu_si512(g[gi].hi, hi);
        _mm512_storeu_si512(g[gi].corr, corr);
        if (gi < 4 * n_hex)
            for (int j = 0; j < 4; j++) g[gi & ~3].d[4 * j + (gi & 3)] = d[j];
        else
            for (int l = 0; l < 16; l++) g[gi].d[l] = d[l / 4];
    }
    /* a hex's correction goes in once, after its lanes are reduced */
    for (int64_t h = 0; h < n_hex; h++) {
        __m512i c[4];
        for (int k = 0; k < 4; k++) c[k] = _mm512_loadu_si512(g[4 * h + k].corr);
        _mm512_storeu_si512(g[4 * h].corr, reduce_quads(c));
    }
}

/* ------------------------------------------------------------ weights */

/* Four weight blocks (fewer at a row's end: nb_here < 4, missing ones zero)
 * as the unsigned quants that meet lo and hi, and their scales spread to
 * the lanes. */
struct wquad { __m512i lo, hi; };

ALWAYS_INLINE void load_quad(const struct q32_fmt *f, const uint8_t *x, int nb_here, struct wquad *q) {
    const size_t xs = f->xsize;
    if (f->type == RB_TYPE_Q4_0) {
        const size_t qo = offsetof(block_q4_0, qs);
        __m512i v;
        if (nb_here == 4) {
            v = _mm512_castsi128_si512(load16(x + qo));
            v = _mm512_inserti32x4(v, load16(x + xs + qo), 1);
            v = _mm512_inserti32x4(v, load16(x + 2 * xs + qo), 2);
            v = _mm512_inserti32x4(v, load16(x + 3 * xs + qo), 3);
        } else {
            v = _mm512_setzero_si512();
            for (int j = 0; j < nb_here; j++) v = insert_lane(v, x + j * xs + qo, j);
        }
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        q->lo = _mm512_and_si512(v, m4);
        q->hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    } else {
        const size_t qo = offsetof(block_q8_0, qs);
        __m512i lo, hi;
        if (nb_here == 4) {
            lo = _mm512_castsi128_si512(load16(x + qo));
            hi = _mm512_castsi128_si512(load16(x + qo + 16));
            lo = _mm512_inserti32x4(lo, load16(x + xs + qo), 1);
            hi = _mm512_inserti32x4(hi, load16(x + xs + qo + 16), 1);
            lo = _mm512_inserti32x4(lo, load16(x + 2 * xs + qo), 2);
            hi = _mm512_inserti32x4(hi, load16(x + 2 * xs + qo + 16), 2);
            lo = _mm512_inserti32x4(lo, load16(x + 3 * xs + qo), 3);
            hi = _mm512_inserti32x4(hi, load16(x + 3 * xs + qo + 16), 3);
        } else {
            lo = hi = _mm512_set1_epi8((char)0x80); /* -128 ^ 0x80 = 0: adds nothing */
            for (int j = 0; j < nb_here; j++) {
                lo = insert_lane(lo, x + j * xs + qo, j);
                hi = insert_lane(hi, x + j * xs + qo + 16, j);
            }
        }
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        q->lo = _mm512_xor_si512(lo, flip);
        q->hi = _mm512_xor_si512(hi, flip);
    }
}

/* The scales of a quad's blocks spread to their lanes (zero past nb_here:
 * a zero here keeps a missing block's garbage out). Both formats keep
 * their F16 scale at offset 0. */
ALWAYS_INLINE __m512 quad_dx(const struct q32_fmt *f, const uint8_t *x, int nb_here) {
    float s[4] = { 0, 0, 0, 0 };
    for (int j = 0; j < nb_here; j++) s[j] = f16_at(x + j * f->xsize);
    return _mm512_setr_ps(s[0], s[0], s[0], s[0], s[1], s[1], s[1], s[1],
                          s[2], s[2], s[2], s[2], s[3], s[3], s[3], s[3]);
}

/* A whole hex of 16 weight blocks at x: each quad's quants gathered from
 * wide loads by one word permute (every quant run and scale starts at an
 * even byte), and the 16 scales in hex order (lane 4j + q: block 4q + j).
 * The last load of a quad is masked to the quad's own bytes, so nothing is
 * read past the row. */
ALWAYS_INLINE void load_hex(const struct q32_fmt *f, const uint8_t *x, struct wquad q[4], __m512 *dx) {
    if (f->type == RB_TYPE_Q4_0) {
        /* quant word i of a quad: block i / 8, word 1 + 9 (i / 8) + i % 8 */
        const __m512i qidx = _mm512_set_epi16(35, 34, 33, 32, 31, 30, 29, 28, 26, 25, 24, 23, 22, 21, 20, 19,
                                              17, 16, 15, 14, 13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1);
        /* scale of block j of the first (second) source at word 4j + 0|2 (4j + 1|3) */
        const __m512i didx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                              59, 27, 59, 27, 50, 18, 50, 18, 41, 9, 41, 9, 32, 0, 32, 0);
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        __m512i a[4];
        UNROLL for (int k = 0; k < 4; k++) {
            const uint8_t *xk = x + (size_t)k * 4 * sizeof(block_q4_0);
            a[k] = _mm512_loadu_si512(xk);
            __m512i v = _mm512_permutex2var_epi16(a[k], qidx, _mm512_maskz_loadu_epi8(0xFF, xk + 64));
            q[k].lo = _mm512_and_si512(v, m4);
            q[k].hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        }
        __m512i d01 = _mm512_permutex2var_epi16(a[0], didx, a[1]);
        __m512i d23 = _mm512_permutex2var_epi16(a[2], didx, a[3]);
        __m512i d = _mm512_mask_blend_epi16(0xCCCC, d01, d23);
        *dx = _mm512_cvtph_ps(_mm512_castsi512_si256(d));
    } else {
        /* quant word i of a quad's low (high) halves: word 1 + 17 (i / 8) + i % 8
         * of the bytes from 0 (16) */
        const __m512i qidx = _mm512_set_epi16(59, 58, 57, 56, 55, 54, 53, 52, 42, 41, 40, 39, 38, 37, 36, 35,
                                              25, 24, 23, 22, 21, 20, 19, 18, 8, 7, 6, 5, 4, 3, 2, 1);
        /* scale of block j at word 17 j */
        const __m512i didx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                              51, 51, 51, 51, 34, 34, 34, 34, 17, 17, 17, 17, 0, 0, 0, 0);
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        __m512i d = _mm512_setzero_si512();
        UNROLL for (int k = 0; k < 4; k++) {
            const uint8_t *xk = x + (size_t)k * 4 * sizeof(block_q8_0);
            __m512i a0 = _mm512_loadu_si512(xk), a1 = _mm512_loadu_si512(xk + 64);
            __m512i b0 = _mm512_loadu_si512(xk + 16);
            __m512i b1 = _mm512_maskz_loadu_epi8(0x00FFFFFFFFFFFFFFULL, xk + 80); /* to byte 135 */
            q[k].lo = _mm512_xor_si512(_mm512_permutex2var_epi16(a0, qidx, a1), flip);
            q[k].hi = _mm512_xor_si512(_mm512_permutex2var_epi16(b0, qidx, b1), flip);
            d = _mm512_or_si512(d, _mm512_maskz_permutex2var_epi16(0x1111u << k, a0, didx, a1));
        }
        *dx = _mm512_cvtph_ps(_mm512_castsi512_si256(d));
    }
}

/* ---------------------------------------------------------------- tile */

/* acc[r][t] for R weight rows x[r] (from block b0 of their rows) against T
 * prepared tokens yp[t]: full hexes of 16 blocks first (exact block sums,
 * acc += (dx * dy) * sum per block lane), then the quads left, likewise.
 * R rows share each activation load. */
ALWAYS_INLINE void tile(const struct q32_fmt *f, int R, int T, const uint8_t *const *x, int64_t nb,
                        const struct prep_group *const *yp, __m512 acc[2][TOK_MAX]) {
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    const int64_t n_hex = nb / 16, n_groups = (nb + 3) / 4;
    for (int64_t h = 0; h < n_hex; h++) {
        struct wquad q[2][4];
        __m512 dx[2];
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *xh = x[r] + (size_t)h * 16 * f->xsize;
            if (T == 1) /* generation streams weights from DRAM: ask ahead */
                for (int l = 0; l < 16 * (int)f->xsize; l += 64) _mm_prefetch((const char *)xh + PREFETCH + l, _MM_HINT_T1);
            load_hex(f, xh, q[r], &dx[r]);
        }
        UNROLL for (int t = 0; t < T; t++) {
            const struct prep_group *p = yp[t] + 4 * h;
            __m512i s[2][4];
            UNROLL for (int k = 0; k < 4; k++) {
                __m512i ylo = _mm512_loadu_si512(p[k].lo), yhi = _mm512_loadu_si512(p[k].hi);
                UNROLL for (int r = 0; r < R; r++) {
                    s[r][k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[r][k].lo, ylo);
                    s[r][k] = _mm512_dpbusd_epi32(s[r][k], q[r][k].hi, yhi);
                }
            }
            __m512i corr = _mm512_loadu_si512(p[0].corr);
            __m512 dy = _mm512_loadu_ps(p[0].d);
            UNROLL for (int r = 0; r < R; r++) {
                __m512i sum = _mm512_add_epi32(reduce_quads(s[r]), corr);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dx[r], dy), acc[r][t]);
            }
        }
    }
    for (int64_t g = 4 * n_hex; g < n_groups; g++) {
        int nb_here = nb - 4 * g >= 4 ? 4 : (int)(nb - 4 * g);
        UNROLL for (int r = 0; r < R; r++) {
            struct wquad q;
            load_quad(f, x[r] + (size_t)g * 4 * f->xsize, nb_here, &q);
            __m512 dx = quad_dx(f, x[r] + (size_t)g * 4 * f->xsize, nb_here);
            UNROLL for (int t = 0; t < T; t++) {
                const struct prep_group *p = yp[t] + g;
                __m512i s[4] = { _mm512_dpbusd_epi32(_mm512_loadu_si512(p->corr), q.lo, _mm512_loadu_si512(p->lo)),
                                 _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512() };
                s[0] = _mm512_dpbusd_epi32(s[0], q.hi, _mm512_loadu_si512(p->hi));
                /* block j's exact sum lands in lane 4j, where dx and dy hold its scales */
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(reduce_quads(s)), _mm512_mul_ps(dx, _mm512_loadu_ps(p->d)),
                                            acc[r][t]);
            }
        }
    }
}

/* Every row for T prepared tokens over blocks [b0, b0 + nb), R rows at a
 * time: out = (first ? 0 : out) + this chunk's sum. */
ALWAYS_INLINE void rows_pass(const struct q32_fmt *f, int R, int T, int64_t n_rows, const uint8_t *w,
                             size_t w_row_bytes, int64_t b0, int64_t nb, const struct prep_group *const *yp,
                             float *out, int64_t out_stride, int first) {
    int64_t r0 = 0;
    for (; r0 < n_rows; r0 += R) {
        if (r0 + R > n_rows) break;
        const uint8_t *x[2];
        UNROLL for (int r = 0; r < R; r++) x[r] = w + (size_t)(r0 + r) * w_row_bytes + (size_t)b0 * f->xsize;
        __m512 acc[2][TOK_MAX];
        tile(f, R, T, x, nb, yp, acc);
        UNROLL for (int r = 0; r < R; r++)
            UNROLL for (int t = 0; t < T; t++) {
                float *o = &out[t * out_stride + r0 + r];
                float sum = _mm512_reduce_add_ps(acc[r][t]);
                *o = first ? sum : *o + sum;
            }
    }
    for (; r0 < n_rows; r0++) {
        const uint8_t *x[2] = { w + (size_t)r0 * w_row_bytes + (size_t)b0 * f->xsize, NULL };
        __m512 acc[2][TOK_MAX];
        tile(f, 1, T, x, nb, yp, acc);
        UNROLL for (int t = 0; t < T; t++) {
            float *o = &out[t * out_stride + r0];
            float sum = _mm512_reduce_add_ps(acc[0][t]);
            *o = first ? sum : *o + sum;
        }
    }
}

/* Prepared chunks longer than this (8 tokens of them no longer fit L1 or
 * most of L2) go 2 rows x 4 tokens at a time, so that each activation load
 * feeds two rows: measured 73 -> 90 Gmac/s for rows of 5632, while rows of
 * 2048 keep 1 row x 8 tokens (105 vs 95 Gmac/s). */
#define WIDE_CHUNK 128

ALWAYS_INLINE void rows_pass_t(const struct q32_fmt *f, int T, int64_t n_rows, const uint8_t *w, size_t w_row_bytes,
                               int64_t b0, int64_t nb, const struct prep_group *const *yp, float *out,
                               int64_t out_stride, int first) {
    const int wide = nb > WIDE_CHUNK;
    switch (T) {
    case 8: rows_pass(f, 1, 8, n_rows, w, w_row_bytes, b0, nb, yp, out, out_stride, first); break;
    case 4:
        if (wide) rows_pass(f, 2, 4, n_rows, w, w_row_bytes, b0, nb, yp, out, out_stride, first);
        else rows_pass(f, 1, 4, n_rows, w, w_row_bytes, b0, nb, yp, out, out_stride, first);
        break;
    case 2: rows_pass(f, 1, 2, n_rows, w, w_row_bytes, b0, nb, yp, out, out_stride, first); break;
    default: rows_pass(f, 1, 1, n_rows, w, w_row_bytes, b0, nb, yp, out, out_stride, first); break;
    }
}

/* Token tiles of 8 (4 for long rows), 4, 2, 1: every output sees the same
 * operations whatever its tile. */
ALWAYS_INLINE void gemm_q32(const struct q32_fmt *f, int64_t n, int64_t n_rows, int64_t n_tok,
                            const void *w, size_t w_row_bytes, const void *act, size_t act_row_bytes,
                            float *out, int64_t out_stride) {
    struct prep_group buf[TOK_MAX][KCHUNK / 4];
    const int64_t nb = n / 32;
    const int t_max = nb > WIDE_CHUNK ? 4 : 8;
    for (int64_t t0 = 0; t0 < n_tok;) {
        int64_t left = n_tok - t0;
        int T = left >= t_max ? t_max : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const struct prep_group *yp[TOK_MAX];
        for (int64_t b0 = 0; b0 < nb; b0 += KCHUNK) {
            int64_t nbc = nb - b0 < KCHUNK ? nb - b0 : KCHUNK;
            for (int t = 0; t < T; t++) {
                prepare_row(f, (const uint8_t *)act + (size_t)(t0 + t) * act_row_bytes, b0, nbc, buf[t]);
                yp[t] = buf[t];
            }
            rows_pass_t(f, T, n_rows, w, w_row_bytes, b0, nbc, yp, out + t0 * out_stride, out_stride, b0 == 0);
        }
        t0 += T;
    }
}

void rb_avx512_gemm_q4_0(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                         const void *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    gemm_q32(&fmt_q4_0, n, n_rows, n_tok, w, w_row_bytes, act, act_row_bytes, out, out_stride);
}

void rb_avx512_gemm_q8_0(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                         const void *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    gemm_q32(&fmt_q8_0, n, n_rows, n_tok, w, w_row_bytes, act, act_row_bytes, out, out_stride);
}

void rb_avx512_vec_dot_q4_0(int64_t n, float *s, const void *x, const void *y) {
    rb_avx512_gemm_q4_0(n, 1, 1, x, 0, y, 0, s, 1);
}

void rb_avx512_vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y) {
    rb_avx512_gemm_q8_0(n, 1, 1, x, 0, y, 0, s, 1);
}
