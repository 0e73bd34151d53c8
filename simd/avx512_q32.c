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
 * Float part, the order every path keeps: a row is summed in chunks of
 * KCHUNK blocks; within a chunk, the int32 lanes of four quads (a hex of 16
 * blocks, a partial hex padded with zero blocks) reduce to one exact sum per
 * block in hex order (lane 4j + q: block 4q + j), which meets dx * dy in
 * its lane: acc = fma(sum, dx * dy, acc), 16 float lanes, added together
 * (hsum16) at the chunk's end; the chunk sums add up in order. So one block gives the
 * scalar reference's bits, and a row differs from it only in the order its
 * block terms are added. That order does not depend on how many tokens a
 * tile holds, on the path, nor on the thread split, so gemm and vec_dot
 * give the same bits.
 *
 * Paths: generation and short batches ("direct") prepare T tokens (T = 1,
 * 2, 4, 8; per-call heap scratch) and run each row over them from start to
 * end, unpacking each hex of the row once for the T tokens. Batches of
 * PP_MIN_TOK tokens or more ("prompt") repack PP_ZR rows at a time into
 * per-call heap scratch (see pp_hex below). Without scratch (out of
 * memory), and for vec_dot, a row at a time meets the token prepared 64
 * blocks at a time on the stack (4 KiB).
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "avx512.h"
#include "avx512_util.h"
#include "../quant/quant.h"

#define KCHUNK 256   /* blocks per chunk: 8192 elements (a row shorter than that is one chunk) */
#define TOK_MAX 8    /* tokens per tile of the direct path */

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

/* Blocks b0 .. b0+nb-1 of one Q8_0 row -> hexes of four prepared groups,
 * a partial last hex padded with zero blocks (they add nothing). The first
 * group of a hex holds its 16 scales and corrections in hex order (lane
 * 4j + q: block 4q + j, see reduce_quads); the other three groups' d and
 * corr fields are unused. */
static void prepare_row(const struct q32_fmt *f, const uint8_t *y, int64_t b0, int64_t nb,
                        struct prep_group *g) {
    const __m512i ones = _mm512_set1_epi8(1);
    const int64_t n_groups = (nb + 15) / 16 * 4;
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
        for (int j = 0; j < 4; j++) g[gi & ~3].d[4 * j + (gi & 3)] = d[j];
    }
    /* a hex's correction goes in once, after its lanes are reduced */
    for (int64_t h = 0; h < n_groups / 4; h++) {
        __m512i c[4];
        for (int k = 0; k < 4; k++) c[k] = _mm512_loadu_si512(g[4 * h + k].corr);
        _mm512_storeu_si512(g[4 * h].corr, reduce_quads(c));
    }
}

/* ------------------------------------------------------------ weights */

/* A quad of four weight blocks as the unsigned quants that meet a prepared
 * group's lo and hi. */
struct wquad { __m512i lo, hi; };

/* The first min(max(n, 0), cap) bytes at p, zeros after them: a masked
 * load, or a plain one where a full hex (nbh == 16) reads all cap = 64. */
ALWAYS_INLINE __m512i load_first(const uint8_t *p, int64_t n, int cap, int nbh) {
    if (nbh == 16 && cap == 64) return _mm512_loadu_si512(p);
    if (__builtin_constant_p(n) && n <= 0) return _mm512_setzero_si512();
    if (__builtin_constant_p(n) && n >= 64 && cap == 64) return _mm512_loadu_si512(p);
    n = n < 0 ? 0 : n > cap ? cap : n;
    return _mm512_maskz_loadu_epi8(n >= 64 ? ~0ULL : (1ULL << n) - 1, p);
}

/* The first nbh (16, or fewer at a row's end) weight blocks of a hex at x,
 * blocks past nbh as zero blocks: each quad's quants gathered from wide
 * loads by one word permute (every quant run and scale starts at an even
 * byte), and the 16 scales in hex order (lane 4j + q: block 4q + j). Loads
 * are masked to the hex's bytes, so nothing past them is read. */
ALWAYS_INLINE void load_hex(const struct q32_fmt *f, const uint8_t *x, int nbh, struct wquad q[4], __m512 *dx) {
    if (f->type == RB_TYPE_Q4_0) {
        const int64_t valid = (int64_t)nbh * (int64_t)sizeof(block_q4_0);
        /* quant word i of a quad: block i / 8, word 1 + 9 (i / 8) + i % 8 */
        const __m512i qidx = _mm512_set_epi16(35, 34, 33, 32, 31, 30, 29, 28, 26, 25, 24, 23, 22, 21, 20, 19,
                                              17, 16, 15, 14, 13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1);
        /* scale of block j of the first (second) source at word 4j + 0|2 (4j + 1|3) */
        const __m512i didx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                              59, 27, 59, 27, 50, 18, 50, 18, 41, 9, 41, 9, 32, 0, 32, 0);
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        __m512i a[4];
        UNROLL for (int k = 0; k < 4; k++) {
            const int64_t o = k * 4 * (int64_t)sizeof(block_q4_0);
            a[k] = load_first(x + o, valid - o, 64, nbh);
            __m512i v = _mm512_permutex2var_epi16(a[k], qidx, load_first(x + o + 64, valid - o - 64, 8, nbh));
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
        const int64_t valid = (int64_t)nbh * (int64_t)sizeof(block_q8_0);
        __m512i d = _mm512_setzero_si512();
        UNROLL for (int k = 0; k < 4; k++) {
            const int64_t o = k * 4 * (int64_t)sizeof(block_q8_0);
            const uint8_t *xk = x + o;
            __m512i a0 = load_first(xk, valid - o, 64, nbh), a1 = load_first(xk + 64, valid - o - 64, 64, nbh);
            __m512i b0 = load_first(xk + 16, valid - o - 16, 64, nbh);
            __m512i b1 = load_first(xk + 80, valid - o - 80, 56, nbh); /* to byte 135 */
            /* a zero block's quants read as 0 ^ 0x80 = 128 = w + 128 with w = 0: it adds nothing */
            q[k].lo = _mm512_xor_si512(_mm512_permutex2var_epi16(a0, qidx, a1), flip);
            q[k].hi = _mm512_xor_si512(_mm512_permutex2var_epi16(b0, qidx, b1), flip);
            d = _mm512_or_si512(d, _mm512_maskz_permutex2var_epi16(0x1111u << k, a0, didx, a1));
        }
        *dx = _mm512_cvtph_ps(_mm512_castsi512_si256(d));
    }
}

/* ---------------------------------------------------------------- tile */

/* acc[t] += the first nbh blocks of one hex of a weight row at xh against T
 * prepared tokens (their hex groups p[t]): exact block sums, acc += (dx *
 * dy) * sum per block lane. */
ALWAYS_INLINE void hex_pass(const struct q32_fmt *f, int T, const uint8_t *xh, int nbh,
                            const struct prep_group *const *p, __m512 acc[TOK_MAX]) {
    struct wquad q[4];
    __m512 dx;
    if (T == 1) /* generation streams weights from DRAM: ask ahead */
        for (int l = 0; l < 16 * (int)f->xsize; l += 64) _mm_prefetch((const char *)xh + PREFETCH + l, PF_HINT);
    load_hex(f, xh, nbh, q, &dx);
    UNROLL for (int t = 0; t < T; t++) {
        __m512i s[4];
        UNROLL for (int k = 0; k < 4; k++) {
            s[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[k].lo, _mm512_loadu_si512(p[t][k].lo));
            s[k] = _mm512_dpbusd_epi32(s[k], q[k].hi, _mm512_loadu_si512(p[t][k].hi));
        }
        __m512i sum = _mm512_add_epi32(reduce_quads(s), _mm512_loadu_si512(p[t][0].corr));
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dx, _mm512_loadu_ps(p[t][0].d)), acc[t]);
    }
}

/* A row's partial last hex, kept out of line: inlined next to the full
 * hexes' loop, GCC may merge the two and compute every load's mask at run
 * time. */
static __attribute__((noinline)) void partial_hex(const struct q32_fmt *f, int T, const uint8_t *xh, int nbh,
                                                  const struct prep_group *const *p, __m512 acc[TOK_MAX]) {
    switch (T) {
    case 8: hex_pass(f, 8, xh, nbh, p, acc); break;
    case 4: hex_pass(f, 4, xh, nbh, p, acc); break;
    case 2: hex_pass(f, 2, xh, nbh, p, acc); break;
    default: hex_pass(f, 1, xh, nbh, p, acc); break;
    }
}

/* acc[t] += weight row x (from block b0 of its row) against T prepared
 * tokens yp[t], a hex of 16 blocks at a time, a partial last hex read as
 * padded with zero blocks. */
ALWAYS_INLINE void tile(const struct q32_fmt *f, int T, const uint8_t *x, int64_t nb,
                        const struct prep_group *const *yp, __m512 acc[TOK_MAX]) {
    const struct prep_group *p[TOK_MAX];
    int64_t h = 0;
    for (; (h + 1) * 16 <= nb; h++) {
        UNROLL for (int t = 0; t < T; t++) p[t] = yp[t] + 4 * h;
        hex_pass(f, T, x + (size_t)h * 16 * f->xsize, 16, p, acc);
    }
    if (h * 16 < nb) {
        UNROLL for (int t = 0; t < T; t++) p[t] = yp[t] + 4 * h;
        partial_hex(f, T, x + (size_t)h * 16 * f->xsize, (int)(nb - h * 16), p, acc);
    }
}

/* out = (first ? 0 : out) + v: chunks of a row add up in order. */
ALWAYS_INLINE void put(float *o, float v, int first) { *o = first ? v : *o + v; }

/* The 16 lanes' partial sums s[i] = (v[i] + v[i + 8]) + (v[i + 4] + v[i + 12])
 * for i < 4 (spelled out so that every path, and every compiler, adds the
 * lanes in one order). */
ALWAYS_INLINE __m128 hsum16_part(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    return _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
}

/* The sum of the 16 lanes: (s[0] + s[2]) + (s[1] + s[3]). */
ALWAYS_INLINE float hsum16(__m512 v) {
    __m128 s = hsum16_part(v);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* Rows r, r + 1 of 8 blocks (at x, x + w_row_bytes) as one hex: row r in
 * its quads 0 and 1, row r + 1 in 2 and 3, each meeting the same 8 blocks
 * of the tokens (buf: T prepared tokens of one hex, groups 2 and 3 empty).
 * Lane 4j + q holds what a hex of row r alone (q < 2) or of row r + 1 alone
 * (q - 2) would, and hsum16 keeps lanes q < 2 and q >= 2 apart until its
 * last two additions, where the other row's lanes would add zeros: so
 * s[0] + s[1] and s[2] + s[3] are the rows' sums, bit for bit. */
ALWAYS_INLINE void pair_pass(const struct q32_fmt *f, int T, const uint8_t *x, size_t w_row_bytes,
                             const struct prep_group *buf, float *out, int64_t out_stride) {
    /* load_hex's first 8 blocks come from x, its last 8 from the next row */
    struct wquad q[4], q2[4];
    __m512 dx, dx2;
    load_hex(f, x, 8, q, &dx);
    load_hex(f, x + w_row_bytes, 8, q2, &dx2);
    q[2] = q2[0];
    q[3] = q2[1];
    dx = _mm512_mask_permutexvar_ps(dx, 0xCCCC, _mm512_setr_epi32(0, 0, 0, 1, 0, 0, 4, 5, 0, 0, 8, 9, 0, 0, 12, 13), dx2);
    UNROLL for (int t = 0; t < T; t++) {
        const struct prep_group *p = buf + t * (KCHUNK / 4);
        const __m512i ylo0 = _mm512_loadu_si512(p[0].lo), yhi0 = _mm512_loadu_si512(p[0].hi);
        const __m512i ylo1 = _mm512_loadu_si512(p[1].lo), yhi1 = _mm512_loadu_si512(p[1].hi);
        __m512i s[4];
        s[0] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0].lo, ylo0), q[0].hi, yhi0);
        s[1] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q[1].lo, ylo1), q[1].hi, yhi1);
        s[2] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q[2].lo, ylo0), q[2].hi, yhi0);
        s[3] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q[3].lo, ylo1), q[3].hi, yhi1);
        /* the hex's scales and corrections: lanes 4j + 2, 4j + 3 repeat 4j, 4j + 1 */
        const __m512i dup = _mm512_setr_epi32(0, 1, 0, 1, 4, 5, 4, 5, 8, 9, 8, 9, 12, 13, 12, 13);
        const __m512i corr = _mm512_permutexvar_epi32(dup, _mm512_loadu_si512(p[0].corr));
        const __m512 dy = _mm512_permutexvar_ps(dup, _mm512_loadu_ps(p[0].d));
        __m512i sum = _mm512_add_epi32(reduce_quads(s), corr);
        __m512 acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dx, dy), _mm512_setzero_ps());
        __m128 h = hsum16_part(acc);
        out[t * out_stride] = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
        out[t * out_stride + 1] = _mm_cvtss_f32(_mm_add_ss(_mm_movehl_ps(h, h), _mm_shuffle_ps(h, h, 3)));
    }
}

/* The direct path (generation, short batches): the activations are
 * prepared once per call, then each row meets them. Tiles of 8, 4, 2 and 1
 * tokens.
 *
 * With the whole of each token prepared (in buf: T tokens x every chunk),
 * rows go one after another, each read once from start to end: the stream
 * the prefetcher and the 16 KiB software prefetch expect. */
ALWAYS_INLINE void direct_rows(const struct q32_fmt *f, int T, int64_t n, int64_t n_rows, const uint8_t *w,
                               size_t w_row_bytes, const uint8_t *act, size_t act_row_bytes, float *out,
                               int64_t out_stride, struct prep_group *buf) {
    const int64_t nb = n / 32, n_chunks = (nb + KCHUNK - 1) / KCHUNK;
    for (int t = 0; t < T; t++)
        for (int64_t c = 0; c < n_chunks; c++)
            prepare_row(f, act + (size_t)t * act_row_bytes, c * KCHUNK, nb - c * KCHUNK < KCHUNK ? nb - c * KCHUNK : KCHUNK,
                        buf + (t * n_chunks + c) * (KCHUNK / 4));
    int64_t r = 0;
    if (nb == 8) /* rows of 256 (small models): two rows to a hex */
        for (; r + 2 <= n_rows; r += 2) pair_pass(f, T, w + (size_t)r * w_row_bytes, w_row_bytes, buf, out + r, out_stride);
    for (; r < n_rows; r++)
        for (int64_t c = 0; c < n_chunks; c++) {
            const struct prep_group *yp[TOK_MAX];
            UNROLL for (int t = 0; t < T; t++) yp[t] = buf + (t * n_chunks + c) * (KCHUNK / 4);
            __m512 acc[TOK_MAX];
            UNROLL for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
            tile(f, T, w + (size_t)r * w_row_bytes + (size_t)c * KCHUNK * f->xsize,
                 nb - c * KCHUNK < KCHUNK ? nb - c * KCHUNK : KCHUNK, yp, acc);
            UNROLL for (int t = 0; t < T; t++) put(&out[t * out_stride + r], hsum16(acc[t]), c == 0);
        }
}

/* One token without scratch: row after row, each chunk prepared SUB_CHUNK
 * blocks at a time into 4 KiB of stack (whole hexes, so the sums are the
 * same as from a chunk prepared at once). vec_dot (one row) and the
 * fallback when no scratch can be had (every row prepares the token again:
 * slow, but the same bits). */
#define SUB_CHUNK 64
ALWAYS_INLINE void direct_stack(const struct q32_fmt *f, int64_t n, int64_t n_rows, const uint8_t *w,
                                size_t w_row_bytes, const uint8_t *act, float *out) {
    struct prep_group buf[SUB_CHUNK / 4];
    const struct prep_group *yp[1] = { buf };
    const int64_t nb = n / 32;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b0 = 0; b0 < nb; b0 += KCHUNK) {
            const int64_t end = nb - b0 < KCHUNK ? nb : b0 + KCHUNK;
            __m512 acc[TOK_MAX] = { _mm512_setzero_ps() };
            for (int64_t s0 = b0; s0 < end; s0 += SUB_CHUNK) {
                const int64_t ns = end - s0 < SUB_CHUNK ? end - s0 : SUB_CHUNK;
                prepare_row(f, act, s0, ns, buf);
                tile(f, 1, w + (size_t)r * w_row_bytes + (size_t)s0 * f->xsize, ns, yp, acc);
            }
            put(&out[r], hsum16(acc[0]), b0 == 0);
        }
}

ALWAYS_INLINE void direct(const struct q32_fmt *f, int64_t n, int64_t n_rows, int64_t n_tok, const uint8_t *w,
                          size_t w_row_bytes, const uint8_t *act, size_t act_row_bytes, float *out,
                          int64_t out_stride) {
    const int64_t n_chunks = (n / 32 + KCHUNK - 1) / KCHUNK;
    const int t_max = n_tok < TOK_MAX ? (int)n_tok : TOK_MAX;
    struct prep_group *buf = aligned_alloc(64, (size_t)t_max * n_chunks * (KCHUNK / 4) * sizeof *buf);
    for (int64_t t0 = 0; t0 < n_tok;) {
        const int64_t left = n_tok - t0;
        const int T = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        const uint8_t *a = act + (size_t)t0 * act_row_bytes;
        float *o = out + t0 * out_stride;
        if (!buf) { /* out of memory: the same sums, a token at a time */
            direct_stack(f, n, n_rows, w, w_row_bytes, a, o);
            t0++;
            continue;
        }
        switch (T) {
        case 8: direct_rows(f, 8, n, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride, buf); break;
        case 4: direct_rows(f, 4, n, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride, buf); break;
        case 2: direct_rows(f, 2, n, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride, buf); break;
        default: direct_rows(f, 1, n, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride, buf); break;
        }
        t0 += T;
    }
    free(buf);
}

/* ------------------------------------------------- prompt processing */

/* Many tokens: rows are repacked a few at a time, per thread, so that each
 * lane of a vector holds one whole block. A hex of one row (or token) as
 * ten vectors: v[c] lane L = bytes 4c .. 4c+3 of the 32 (in prep_group's
 * lo/hi order) of the block in lane L (hex order, L = 4j + q: block 4q + j),
 * then that block's scale (and, for tokens, its correction). Eight vpdpbusd
 * then leave each lane with its block's exact sum, with no reduction, and
 * a tile of ZR rows x TT tokens shares every load: per hex, ZR + TT vector
 * loads feed 8 ZR TT vpdpbusd. The float part is tile()'s, lane for lane
 * (acc += (dx * dy) * sum, 16 lanes, one chunk of KCHUNK blocks at a time),
 * so the bits are the direct path's. */
struct pp_hex {
    __m512i v[8];
    __m512i corr; /* tokens: -off * sum(y) per block; rows: unused */
    __m512 d;
};
_Static_assert(sizeof(struct pp_hex) == 640, "pp_hex size");

#define PP_MIN_TOK 16   /* fewer tokens: the repacking would cost more than it saves */
#ifndef PP_ZR           /* -DPP_ZR=.. -DPP_TT=..: other tiles, for measuring */
#define PP_ZR 4         /* rows per register tile */
#endif
#ifndef PP_TT
#define PP_TT 2         /* tokens per register tile (4 x 2, 4 x 3, 4 x 4: within 3%) */
#endif
#define PP_ACT_BYTES (512u << 10) /* prepared tokens per pass: about half of L2 */

/* Quads (lane 4j + l: block 4q + j, bytes 4l .. 4l+3 of lo or hi) -> pp_hex vectors. */
ALWAYS_INLINE void quads_to_hex(const __m512i lo[4], const __m512i hi[4], struct pp_hex *o) {
    __m512i v[8];
    transpose4(lo, v);
    transpose4(hi, v + 4);
    UNROLL for (int c = 0; c < 8; c++) _mm512_store_si512(&o->v[c], v[c]);
}

/* Hexes of one weight row, blocks past nb as zero blocks. */
static void pp_pack_row(const struct q32_fmt *f, const uint8_t *x, int64_t nb, struct pp_hex *o) {
    for (int64_t h = 0; h * 16 < nb; h++) {
        struct wquad q[4];
        __m512 dx;
        const uint8_t *xh = x + (size_t)h * 16 * f->xsize;
        load_hex(f, xh, nb - h * 16 >= 16 ? 16 : (int)(nb - h * 16), q, &dx); /* repacking: rarely hot */
        __m512i lo[4] = { q[0].lo, q[1].lo, q[2].lo, q[3].lo }, hi[4] = { q[0].hi, q[1].hi, q[2].hi, q[3].hi };
        quads_to_hex(lo, hi, &o[h]);
        o[h].d = dx;
    }
}

/* Hexes of one Q8_0 activation row, likewise. */
static void pp_prepare_row(const struct q32_fmt *f, const uint8_t *y, int64_t nb, struct pp_hex *o) {
    for (int64_t h = 0; h * 16 < nb; h++) {
        struct prep_group g[4];
        prepare_row(f, y, h * 16, nb - h * 16 < 16 ? nb - h * 16 : 16, g);
        __m512i lo[4], hi[4];
        UNROLL for (int k = 0; k < 4; k++) {
            lo[k] = _mm512_loadu_si512(g[k].lo);
            hi[k] = _mm512_loadu_si512(g[k].hi);
        }
        quads_to_hex(lo, hi, &o[h]);
        o[h].corr = _mm512_loadu_si512(g[0].corr);
        o[h].d = _mm512_loadu_ps(g[0].d);
    }
}

/* ZR packed rows (wp[z], one hex after another) x TT prepared tokens (ap[t])
 * over nh hexes: out[t][z] gets (first ? 0 : out) + the chunk's sum. */
ALWAYS_INLINE void pp_tile(int ZR, int TT, const struct pp_hex *const *wp, const struct pp_hex *const *ap, int64_t nh,
                           float *out, int64_t out_stride, int first) {
    __m512 acc[PP_ZR][PP_TT];
    UNROLL for (int z = 0; z < ZR; z++)
        UNROLL for (int t = 0; t < TT; t++) acc[z][t] = _mm512_setzero_ps();
    for (int64_t h = 0; h < nh; h++) {
        __m512i s[PP_ZR][PP_TT];
        UNROLL for (int t = 0; t < TT; t++) {
            __m512i corr = _mm512_load_si512(&ap[t][h].corr);
            UNROLL for (int z = 0; z < ZR; z++) s[z][t] = corr;
        }
        UNROLL for (int c = 0; c < 8; c++) {
            __m512i wv[PP_ZR];
            UNROLL for (int z = 0; z < ZR; z++) {
                wv[z] = _mm512_load_si512(&wp[z][h].v[c]);
                IN_REGISTER(wv[z]);
            }
            UNROLL for (int t = 0; t < TT; t++) {
                __m512i a = _mm512_load_si512(&ap[t][h].v[c]);
                IN_REGISTER(a);
                UNROLL for (int z = 0; z < ZR; z++) s[z][t] = _mm512_dpbusd_epi32(s[z][t], wv[z], a);
            }
        }
        UNROLL for (int t = 0; t < TT; t++) {
            __m512 dy = _mm512_load_ps(&ap[t][h].d);
            UNROLL for (int z = 0; z < ZR; z++)
                acc[z][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[z][t]), _mm512_mul_ps(wp[z][h].d, dy), acc[z][t]);
        }
    }
    UNROLL for (int z = 0; z < ZR; z++)
        UNROLL for (int t = 0; t < TT; t++) put(&out[t * out_stride + z], hsum16(acc[z][t]), first);
}

/* ZR packed rows against n_tok prepared tokens over hexes [h0, h0 + nh). */
ALWAYS_INLINE void pp_rows(int ZR, const struct pp_hex *const *wp, const struct pp_hex *ap, int64_t hex_per_tok,
                           int64_t n_tok, int64_t h0, int64_t nh, float *out, int64_t out_stride, int first) {
    const struct pp_hex *wh[PP_ZR];
    UNROLL for (int z = 0; z < ZR; z++) wh[z] = wp[z] + h0;
    int64_t t = 0;
    for (; t + PP_TT <= n_tok; t += PP_TT) {
        const struct pp_hex *at[PP_TT];
        UNROLL for (int i = 0; i < PP_TT; i++) at[i] = ap + (t + i) * hex_per_tok + h0;
        pp_tile(ZR, PP_TT, wh, at, nh, out + t * out_stride, out_stride, first);
    }
    for (; t < n_tok; t++) {
        const struct pp_hex *at[1] = { ap + t * hex_per_tok + h0 };
        pp_tile(ZR, 1, wh, at, nh, out + t * out_stride, out_stride, first);
    }
}

/* 0 when the scratch cannot be had (the caller takes the direct path). */
static int prompt(const struct q32_fmt *f, int64_t n, int64_t n_rows, int64_t n_tok, const uint8_t *w,
                  size_t w_row_bytes, const uint8_t *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    const int64_t nb = n / 32, n_hex = (nb + 15) / 16;
    const size_t tok_bytes = (size_t)n_hex * sizeof(struct pp_hex);
    const int64_t tb = tokens_per_pass(PP_ACT_BYTES, tok_bytes, PP_MIN_TOK, n_tok);
    struct pp_hex *ap, *wbuf;
    if (!scratch_pair((size_t)tb * tok_bytes, (void **)&ap, PP_ZR * tok_bytes, (void **)&wbuf)) return 0;
    for (int64_t t0 = 0; t0 < n_tok; t0 += tb) {
        const int64_t nt = n_tok - t0 < tb ? n_tok - t0 : tb;
        for (int64_t t = 0; t < nt; t++) pp_prepare_row(f, act + (size_t)(t0 + t) * act_row_bytes, nb, ap + t * n_hex);
        for (int64_t r0 = 0; r0 < n_rows; r0 += PP_ZR) {
            const int zr = n_rows - r0 < PP_ZR ? (int)(n_rows - r0) : PP_ZR;
            const struct pp_hex *wp[PP_ZR];
            for (int z = 0; z < zr; z++) {
                pp_pack_row(f, w + (size_t)(r0 + z) * w_row_bytes, nb, wbuf + z * n_hex);
                wp[z] = wbuf + z * n_hex;
            }
            float *o = out + t0 * out_stride + r0;
            for (int64_t h0 = 0; h0 < n_hex; h0 += KCHUNK / 16) {
                const int64_t nh = n_hex - h0 < KCHUNK / 16 ? n_hex - h0 : KCHUNK / 16;
                if (zr == PP_ZR) pp_rows(PP_ZR, wp, ap, n_hex, nt, h0, nh, o, out_stride, h0 == 0);
                else
                    for (int z = 0; z < zr; z++) pp_rows(1, wp + z, ap, n_hex, nt, h0, nh, o + z, out_stride, h0 == 0);
            }
        }
    }
    free(ap);
    free(wbuf);
    return 1;
}

/* ------------------------------------------------------------- entries */

ALWAYS_INLINE void gemm_q32(const struct q32_fmt *f, int64_t n, int64_t n_rows, int64_t n_tok,
                            const void *w, size_t w_row_bytes, const void *act, size_t act_row_bytes,
                            float *out, int64_t out_stride) {
    if (n_tok >= PP_MIN_TOK && prompt(f, n, n_rows, n_tok, w, w_row_bytes, act, act_row_bytes, out, out_stride))
        return;
    direct(f, n, n_rows, n_tok, w, w_row_bytes, act, act_row_bytes, out, out_stride);
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
    direct_stack(&fmt_q4_0, n, 1, x, 0, y, s);
}

void rb_avx512_vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y) {
    direct_stack(&fmt_q8_0, n, 1, x, 0, y, s);
}
