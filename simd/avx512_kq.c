/* avx512_kq.c - AVX-512 VNNI matmul for Q4_K and Q6_K weights against Q8_K
 * activations (the bulk of a Q4_K_M file, and the output matrix of most
 * Q4_0 files). Compiled with avx512.c's flags.
 *
 * One super-block of 256 weights is unpacked once into four zmm of 64
 * unsigned quants in element order, plus a zmm of int16 sub-block scales for
 * each; then it meets up to 8 tokens. Per token:
 *   vpmaddubsw  quant (u8) x activation (s8), pairs -> int16 (|.| <= 2*63*128)
 *   vpdpwssd    int16 pairs x their sub-block scale -> int32 lanes
 * Every int32 lane is exact. The part that does not depend on the quants
 * (Q4_K's mins, Q6_K's offset of 32) is one vpmaddwd of the activation's
 * bsums (sums of 16) with per-16 factors, also exact. Four super-blocks'
 * lanes then reduce to one exact sum each, and the float part is the scalar
 * reference's, rounding for rounding, per super-block; the block terms are
 * added in 4 float lanes (lane i: super-blocks 4j + i), summed at the end.
 * So one super-block gives scalar's bits, and every output sees the same
 * operations whatever the tile (gemm and vec_dot give the same bits).
 *
 * Paths: generation (one token) meets Q4_K in the nibbles' own order (the
 * token's quants reordered once instead); rows of one super-block go four
 * rows to a quad; batches of KP_MIN_TOK tokens or more repack four rows at
 * a time so that each lane follows one (row, super-block) pair (see "prompt
 * processing" below). Every path gives the same bits.
 */
#include <immintrin.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "avx512.h"
#include "avx512_util.h"
#include "../quant/quant.h"

#define TOK_MAX 8
#define NIB_MAX 16 /* super-blocks of one token reordered on the stack (4 KiB) */

/* The Q4_K/Q5_K 12-byte scale field decoded (bytes 0-7 the eight 6-bit scales, 8-15 the
 * mins, the values of quant.h's rb_get_scale_min_k4), in vector registers
 * from one 16-byte load of the field and the 4 bytes after it: a short
 * dependency chain (x86_kquants.h's scalar scales_mins_k4 builds its vector
 * with three serial inserts, and a super-block's dot products wait for it:
 * 1.15x in cache). */
ALWAYS_INLINE __m128i scales_mins_q4_K(const uint8_t *b) {
    const __m128i v = _mm_loadu_si128((const __m128i *)(b + offsetof(block_q4_K, scales))); /* u0 u1 u2 - */
    const __m128i p = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4));
    const __m128i q = _mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 0, 0)), 2);
    const __m128i low = _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f);
    const __m128i top = _mm_setr_epi32(0, 0x30303030, 0, 0x30303030);
    /* lanes: u0 & 63 | (u2 & 15) + (u0 >> 6) << 4 | u1 & 63 | (u2 >> 4 & 15) + (u1 >> 6) << 4 */
    return _mm_or_si128(_mm_and_si128(p, low), _mm_and_si128(q, top));
}

/* A super-block ready for the tokens: q[c] holds elements 64c .. 64c+63. */
struct ksuper {
    __m512i q[4];
    __m512i scale[4];   /* int16 per maddubs pair of q[c] */
    __m512i minf;       /* int16 factor per bsum (low 16 words); its sum is subtracted */
};

/* Words w of a zmm: word w of result = s16[w / 16 + 2c]: sub-blocks of 32. */
ALWAYS_INLINE __m512i spread32(__m512i s16, int c) {
    __m512i idx = _mm512_add_epi16(_mm512_set1_epi16((short)(2 * c)),
                                   _mm512_set_epi64(0x0001000100010001LL, 0x0001000100010001LL,
                                                    0x0001000100010001LL, 0x0001000100010001LL, 0, 0, 0, 0));
    return _mm512_permutexvar_epi16(idx, s16);
}

/* Words 0-15 of result = s16[a], words 16-31 = s16[b]. */
ALWAYS_INLINE __m512i spread_pair(__m512i s16, int a, int b) {
    return _mm512_permutexvar_epi16(_mm512_inserti64x4(_mm512_set1_epi16((short)a), _mm256_set1_epi16((short)b), 1), s16);
}

/* Word w of result = s16[w / 8 + 4c]: sub-blocks of 16. */
ALWAYS_INLINE __m512i spread16(__m512i s16, int c) {
    __m512i idx = _mm512_add_epi16(_mm512_set1_epi16((short)(4 * c)),
                                   _mm512_set_epi64(0x0003000300030003LL, 0x0003000300030003LL,
                                                    0x0002000200020002LL, 0x0002000200020002LL,
                                                    0x0001000100010001LL, 0x0001000100010001LL, 0, 0));
    return _mm512_permutexvar_epi16(idx, s16);
}

/* Q4_K: qs[32g + l] holds element 64g + l (low nibble) and 64g + 32 + l
 * (high nibble), so one 64-byte load's nibbles are sub-blocks (0, 2) and
 * (1, 3) of two 64-element runs; 128-bit lane shuffles put them in order. */
ALWAYS_INLINE void unpack_q4_K(const uint8_t *b, struct ksuper *k) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const uint8_t *qs = b + offsetof(block_q4_K, qs);
    UNROLL for (int h = 0; h < 2; h++) {
        __m512i v = _mm512_loadu_si512(qs + 64 * h);
        __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        k->q[2 * h] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));     /* elements 128h + 0..63 */
        k->q[2 * h + 1] = _mm512_shuffle_i64x2(lo, hi, _MM_SHUFFLE(3, 2, 3, 2)); /* 128h + 64..127 */
    }
    __m512i s16 = _mm512_cvtepu8_epi16(_mm256_castsi128_si256(scales_mins_q4_K(b))); /* words 0-7 scales, 8-15 mins */
    UNROLL for (int c = 0; c < 4; c++) k->scale[c] = spread32(s16, c);
    /* bsum j (16 elements) takes the min of sub-block j / 2: words 8 + j / 2 */
    k->minf = _mm512_permutexvar_epi16(_mm512_setr_epi32(0x00080008, 0x00090009, 0x000a000a, 0x000b000b,
                                                         0x000c000c, 0x000d000d, 0x000e000e, 0x000f000f,
                                                         0, 0, 0, 0, 0, 0, 0, 0), s16);
}

/* Q4_K in the nibble order: q[2h] = the low nibbles of qs[64h .. 64h+63]
 * (elements 128h + 0..31 and 128h + 64..95: sub-blocks 4h, 4h + 2), q[2h + 1]
 * the high ones (sub-blocks 4h + 1, 4h + 3). No lane shuffles: it meets an
 * activation laid out the same way (nibble_order_q8_K). */
ALWAYS_INLINE void unpack_q4_K_nib(const uint8_t *b, struct ksuper *k) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const uint8_t *qs = b + offsetof(block_q4_K, qs);
    UNROLL for (int h = 0; h < 2; h++) {
        __m512i v = _mm512_loadu_si512(qs + 64 * h);
        k->q[2 * h] = _mm512_and_si512(v, m4);
        k->q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    }
    __m512i s16 = _mm512_cvtepu8_epi16(_mm256_castsi128_si256(scales_mins_q4_K(b))); /* words 0-7 scales, 8-15 mins */
    UNROLL for (int c = 0; c < 4; c++) k->scale[c] = spread_pair(s16, 4 * (c / 2) + c % 2, 4 * (c / 2) + c % 2 + 2);
    k->minf = _mm512_permutexvar_epi16(_mm512_setr_epi32(0x00080008, 0x00090009, 0x000a000a, 0x000b000b,
                                                         0x000c000c, 0x000d000d, 0x000e000e, 0x000f000f,
                                                         0, 0, 0, 0, 0, 0, 0, 0), s16);
}

/* A Q8_K row's quants in unpack_q4_K_nib's order, 256 bytes per super-block
 * (d and bsums stay in the row). */
static void nibble_order_q8_K(const uint8_t *y, int64_t nb, uint8_t *out) {
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *qs = y + (size_t)i * sizeof(block_q8_K) + offsetof(block_q8_K, qs);
        UNROLL for (int h = 0; h < 2; h++)
            UNROLL for (int half = 0; half < 2; half++) {
                __m256i a = _mm256_loadu_si256((const __m256i *)(qs + 128 * h + 32 * half));
                __m256i b = _mm256_loadu_si256((const __m256i *)(qs + 128 * h + 64 + 32 * half));
                _mm512_storeu_si512(out + 256 * i + 128 * h + 64 * half,
                                    _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1));
            }
    }
}

/* Q6_K: element 128h + 32s + l is the low (s < 2) or high nibble of
 * ql[64h + 32(s & 1) + l] with bits 2s..2s+1 of qh[32h + l] above it; value
 * q - 32, so the offset goes with the bsums: factor -32 * scale. */
ALWAYS_INLINE void unpack_q6_K(const uint8_t *b, struct ksuper *k) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x03);
    UNROLL for (int h = 0; h < 2; h++) {
        __m512i ql = _mm512_loadu_si512(b + offsetof(block_q6_K, ql) + 64 * h);
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b + offsetof(block_q6_K, qh) + 32 * h));
        __m512i qh2 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
        __m512i hi_lo = _mm512_slli_epi16(_mm512_and_si512(qh2, m2), 4);                      /* s = 0, 1 */
        __m512i hi_hi = _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh2, 4), m2), 4); /* s = 2, 3 */
        k->q[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), hi_lo);
        k->q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), hi_hi);
    }
    __m512i s16 = _mm512_cvtepi8_epi16(_mm256_castsi128_si256(
        _mm_loadu_si128((const __m128i *)(b + offsetof(block_q6_K, scales)))));
    UNROLL for (int c = 0; c < 4; c++) k->scale[c] = spread16(s16, c);
    k->minf = _mm512_slli_epi16(s16, 5); /* 32 * scale per bsum (sums go negative below) */
}

/* Exact int32 sums of one super-block against one token: sum(scale * q * y)
 * in 16 lanes, sum(minf * bsum) in 8. The token's quants at qs, in k's
 * order; its bsums in the Q8_K block y. */
ALWAYS_INLINE void ksuper_sums_q(const struct ksuper *k, const uint8_t *y, const uint8_t *qs, __m512i *sum,
                                 __m256i *mins) {
    /* two chains: a super-block's sums are on the critical path */
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    UNROLL for (int c = 0; c < 4; c += 2) {
        s0 = _mm512_dpwssd_epi32(s0, _mm512_maddubs_epi16(k->q[c], _mm512_loadu_si512(qs + 64 * c)), k->scale[c]);
        s1 = _mm512_dpwssd_epi32(s1, _mm512_maddubs_epi16(k->q[c + 1], _mm512_loadu_si512(qs + 64 * c + 64)),
                                 k->scale[c + 1]);
    }
    *sum = _mm512_add_epi32(s0, s1);
    *mins = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(y + offsetof(block_q8_K, bsums))),
                              _mm512_castsi512_si256(k->minf));
}


ALWAYS_INLINE void ksuper_sums(const struct ksuper *k, const uint8_t *y, __m512i *sum, __m256i *mins) {
    ksuper_sums_q(k, y, y + offsetof(block_q8_K, qs), sum, mins);
}

static inline float q8k_d(const uint8_t *y) {
    float d;
    memcpy(&d, y + offsetof(block_q8_K, d), sizeof d);
    return d;
}

/* Lane i = the sum of all lanes of v[i] (exact). */
ALWAYS_INLINE __m128i reduce4_512(const __m512i v[4]) {
    __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
    __m512i b = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
    __m512i c = _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
    __m256i d = _mm256_add_epi32(_mm512_castsi512_si256(c), _mm512_extracti64x4_epi64(c, 1));
    return _mm_add_epi32(_mm256_castsi256_si128(d), _mm256_extracti128_si256(d, 1));
}

ALWAYS_INLINE __m128i reduce4_256(const __m256i v[4]) {
    __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi32(v[0], v[1]), _mm256_unpackhi_epi32(v[0], v[1]));
    __m256i b = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2], v[3]), _mm256_unpackhi_epi32(v[2], v[3]));
    __m256i c = _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
    return _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
}

/* The float part for four super-blocks (a quad) against one token, from
 * their exact sums (lane i: super-block i's sum(scale * q * y) in s, its
 * bsum term in m) and the token's scales dy: acc lane i += block i's term,
 * rounded as the scalar reference rounds it. */
ALWAYS_INLINE __m128 kquad_float(int type, __m128i s, __m128i m, __m128 d, __m128 dmin, __m128 dy, __m128 acc) {
    if (type == RB_TYPE_Q6_K) /* scalar: (d * dy) * (sumi - 32 * sum(scale * bsum)) */
        return _mm_add_ps(acc, _mm_mul_ps(_mm_mul_ps(d, dy), _mm_cvtepi32_ps(_mm_sub_epi32(s, m))));
    /* scalar: d dy * sumi - dmin dy * summins */
    __m128 t = _mm_mul_ps(_mm_mul_ps(d, dy), _mm_cvtepi32_ps(s));
    __m128 u = _mm_mul_ps(_mm_mul_ps(dmin, dy), _mm_cvtepi32_ps(m));
    return _mm_add_ps(acc, _mm_sub_ps(t, u));
}

ALWAYS_INLINE void unpack_k(int type, const uint8_t *b, struct ksuper *k) {
    if (type == RB_TYPE_Q4_K) unpack_q4_K(b, k);
    else unpack_q6_K(b, k);
}

/* The first n super-blocks stride bytes apart into k[0..n) (the rest zeroed:
 * never read, but the compiler cannot tell). */
ALWAYS_INLINE void unpack_quad(int type, const uint8_t *x, size_t stride, int n, struct ksuper k[4]) {
    UNROLL for (int i = 0; i < 4; i++)
        if (i < n) unpack_k(type, x + i * stride, &k[i]);
        else memset(&k[i], 0, sizeof k[i]);
}

ALWAYS_INLINE size_t ksize(int type) { return type == RB_TYPE_Q4_K ? sizeof(block_q4_K) : sizeof(block_q6_K); }

/* F16 field at offset off of the first n super-blocks stride bytes apart,
 * as floats (0 past n: nothing past them is read). */
ALWAYS_INLINE __m128 quad_f16(const uint8_t *x, size_t stride, size_t off, int n) {
    uint16_t h[4] = { 0, 0, 0, 0 };
    UNROLL for (int i = 0; i < 4; i++)
        if (i < n) memcpy(&h[i], x + i * stride + off, 2);
    return _mm_cvtph_ps(_mm_setr_epi16((short)h[0], (short)h[1], (short)h[2], (short)h[3], 0, 0, 0, 0));
}

/* The weight scales d, dmin of the first n super-blocks stride bytes apart. */
ALWAYS_INLINE void quad_scales(int type, const uint8_t *x, size_t stride, int n, __m128 *d, __m128 *dmin) {
    if (type == RB_TYPE_Q4_K) {
        *d = quad_f16(x, stride, offsetof(block_q4_K, d), n);
        *dmin = quad_f16(x, stride, offsetof(block_q4_K, dmin), n);
    } else {
        *d = *dmin = quad_f16(x, stride, offsetof(block_q6_K, d), n);
    }
}

/* Activation scales of the first n super-blocks of a Q8_K row (0 past n). */
ALWAYS_INLINE __m128 quad_dy(const uint8_t *y, int n) {
    float d[4] = { 0, 0, 0, 0 };
    UNROLL for (int i = 0; i < 4; i++)
        if (i < n) d[i] = q8k_d(y + i * sizeof(block_q8_K));
    return _mm_loadu_ps(d);
}

/* acc[t] += the first n (4, or fewer at a row's end) super-blocks of a quad
 * at x against T tokens; missing ones add a zero term, as zero super-blocks
 * would. One token: each super-block is used as soon as it is unpacked;
 * more: the quad is unpacked once (to the stack) and meets every token. */
ALWAYS_INLINE void quad_pass(int type, int T, const uint8_t *x, int n, const uint8_t *act, size_t act_row_bytes,
                             const uint8_t *nib, __m128 acc[TOK_MAX]) {
    const size_t xsize = ksize(type);
    __m128 d, dmin;
    quad_scales(type, x, xsize, n, &d, &dmin);
    __m512i sum[4];
    __m256i mins[4];
    UNROLL for (int i = 0; i < 4; i++) {
        sum[i] = _mm512_setzero_si512();
        mins[i] = _mm256_setzero_si256();
    }
    if (T == 1) {
        /* generation streams weights from DRAM: ask ahead */
        _Pragma("GCC unroll 16") for (size_t l = 0; l < 4 * xsize; l += 64)
            _mm_prefetch((const char *)x + PREFETCH + l, PF_HINT);
        UNROLL for (int i = 0; i < 4; i++) {
            if (i >= n) break;
            struct ksuper k;
            if (nib) {
                unpack_q4_K_nib(x + i * xsize, &k);
                ksuper_sums_q(&k, act + i * sizeof(block_q8_K), nib + 256 * i, &sum[i], &mins[i]);
            } else {
                unpack_k(type, x + i * xsize, &k);
                ksuper_sums(&k, act + i * sizeof(block_q8_K), &sum[i], &mins[i]);
            }
        }
        acc[0] = kquad_float(type, reduce4_512(sum), reduce4_256(mins), d, dmin, quad_dy(act, n), acc[0]);
        return;
    }
    struct ksuper k[4];
    unpack_quad(type, x, xsize, n, k);
    UNROLL for (int t = 0; t < T; t++) {
        const uint8_t *y = act + (size_t)t * act_row_bytes;
        UNROLL for (int i = 0; i < 4; i++)
            if (i < n) ksuper_sums(&k[i], y + i * sizeof(block_q8_K), &sum[i], &mins[i]);
        acc[t] = kquad_float(type, reduce4_512(sum), reduce4_256(mins), d, dmin, quad_dy(y, n), acc[t]);
    }
}

/* Every row against T tokens, one row at a time (several row streams at
 * once read DRAM worse). Each output's lane i sums the terms of
 * super-blocks 4j + i; the lanes are added in one fixed order at the end. */
ALWAYS_INLINE void rows_pass(int type, int T, int64_t nb, int64_t n_rows, const uint8_t *w, size_t w_row_bytes,
                             const uint8_t *act, size_t act_row_bytes, const uint8_t *nib, float *out,
                             int64_t out_stride) {
    const size_t xsize = ksize(type);
    const int64_t n_full = nb / 4 * 4;
    const int n_tail = (int)(nb - n_full);
    for (int64_t r = 0; r < n_rows; r++) {
        const uint8_t *x = w + (size_t)r * w_row_bytes;
        __m128 acc[TOK_MAX];
        UNROLL for (int t = 0; t < T; t++) acc[t] = _mm_setzero_ps();
        for (int64_t i0 = 0; i0 < n_full; i0 += 4)
            quad_pass(type, T, x + (size_t)i0 * xsize, 4, act + (size_t)i0 * sizeof(block_q8_K), act_row_bytes,
                      nib ? nib + 256 * i0 : NULL, acc);
        if (n_tail)
            quad_pass(type, T, x + (size_t)n_full * xsize, n_tail, act + (size_t)n_full * sizeof(block_q8_K),
                      act_row_bytes, nib ? nib + 256 * n_full : NULL, acc);
        UNROLL for (int t = 0; t < T; t++) {
            __m128 v = acc[t];
            v = _mm_add_ps(v, _mm_movehl_ps(v, v));
            v = _mm_add_ss(v, _mm_movehdup_ps(v));
            out[t * out_stride + r] = _mm_cvtss_f32(v);
        }
    }
}

/* Rows of one super-block (model width 256): lane i of a quad is row r + i,
 * so no lane is wasted; each output is 0 + its one term, as in rows_pass
 * (whose other lanes stay zero). */
ALWAYS_INLINE void rows_pass_1(int type, int T, int64_t n_rows, const uint8_t *w, size_t w_row_bytes,
                               const uint8_t *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    for (int64_t r = 0; r < n_rows; r += 4) {
        const int n = n_rows - r < 4 ? (int)(n_rows - r) : 4;
        const uint8_t *x = w + (size_t)r * w_row_bytes;
        if (T == 1)
            for (size_t l = 0; l < 4 * w_row_bytes; l += 64) _mm_prefetch((const char *)x + PREFETCH + l, PF_HINT);
        __m128 d, dmin;
        quad_scales(type, x, w_row_bytes, n, &d, &dmin);
        struct ksuper k[4];
        unpack_quad(type, x, w_row_bytes, n, k);
        UNROLL for (int t = 0; t < T; t++) {
            const uint8_t *y = act + (size_t)t * act_row_bytes;
            __m512i sum[4];
            __m256i mins[4];
            UNROLL for (int i = 0; i < 4; i++) {
                if (i < n) ksuper_sums(&k[i], y, &sum[i], &mins[i]);
                else { sum[i] = _mm512_setzero_si512(); mins[i] = _mm256_setzero_si256(); }
            }
            /* a masked store: GCC makes a loop over n lanes a memcpy call */
            _mm_mask_storeu_ps(out + t * out_stride + r, (__mmask8)((1u << n) - 1),
                               kquad_float(type, reduce4_512(sum), reduce4_256(mins), d, dmin, _mm_set1_ps(q8k_d(y)),
                                           _mm_setzero_ps()));
        }
    }
}

ALWAYS_INLINE void rows_pass_t(int type, int T, int64_t nb, int64_t n_rows, const uint8_t *w, size_t w_row_bytes,
                               const uint8_t *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    if (nb == 1) rows_pass_1(type, T, n_rows, w, w_row_bytes, act, act_row_bytes, out, out_stride);
    else if (T == 1 && type == RB_TYPE_Q4_K && nb <= NIB_MAX) {
        /* generation: the token's quants reordered once, so no row needs its
         * nibbles shuffled (1.07x in cache) */
        _Alignas(64) uint8_t nib[NIB_MAX * 256];
        nibble_order_q8_K(act, nb, nib);
        rows_pass(type, 1, nb, n_rows, w, w_row_bytes, act, act_row_bytes, nib, out, out_stride);
    } else rows_pass(type, T, nb, n_rows, w, w_row_bytes, act, act_row_bytes, NULL, out, out_stride);
}

/* ------------------------------------------------- prompt processing */

/* Many tokens: rows are repacked four at a time, per call, so that each
 * 32-bit lane of a vector follows one (row, super-block) pair through its
 * 256 elements: lane 4r + p is row r, super-block p of a quad. One
 * vpdpbusd per 4 elements and lane (the activation is a 128-bit pattern,
 * one dword per super-block, broadcast to the four rows), one vpmulld per
 * sub-block to apply its scale: every lane ends with its pair's exact
 * sum(scale * q * y), then the bsum term (vpdpwssd on word pairs) and the
 * float part, lane for lane the direct path's (kquad_float): the same bits.
 * A tile of KP_Z groups of 4 rows x KP_T tokens shares every load. */
#define KP_MIN_TOK 16 /* fewer tokens: the repacking would cost more than it saves */
#define KP_Z 2
#define KP_T 3
#define KP_ACT_BYTES (512u << 10) /* prepared tokens per pass: about half of L2 */

/* The element octets (32 elements) of a super-block in the order the
 * unpacked vectors hold them: Q4_K's nibbles give 0, 2 | 1, 3 | 4, 6 | 5, 7
 * (see unpack_q4_K_nib), Q6_K's are in order. */
ALWAYS_INLINE int kp_octet(int type, int o) {
    static const uint8_t q4[8] = { 0, 2, 1, 3, 4, 6, 5, 7 };
    return type == RB_TYPE_Q4_K ? q4[o] : o;
}

/* 4 rows x a quad of super-blocks (lane 4r + p) */
struct kp_w {
    __m512i q[64];  /* dword c: 4 unsigned quants, elements 32 kp_octet(c / 8) + 4 (c % 8) + 0..3 */
    __m512i sc[16]; /* int32 scale of dwords 8o .. 8o+7 (Q4_K: o < 8) or 4j .. 4j+3 (Q6_K: j < 16) */
    __m512i mn[8];  /* word pairs: Q4_K (min 2k, min 2k+1), k < 4; Q6_K (32 sc 2k, 32 sc 2k+1), k < 8 */
    __m512 d, dmin;
};

/* one token x a quad of super-blocks (32-bit lane p of a pattern) */
struct kp_a {
    __m128i q[64];  /* dword c of each super-block's quants, in kp_w's element order */
    __m128i bs[8];  /* word pairs: Q4_K (bsum of sub-block 2k, of 2k + 1); Q6_K (bsum 2k, bsum 2k + 1) */
    __m128 dy;
};

/* out[j] lane i = in[i] lane j, for 16 vectors of 16 dwords (in place) */
ALWAYS_INLINE void transpose16(__m512i v[16]) {
    __m512i a[16], b[16];
    UNROLL for (int m = 0; m < 8; m++) {
        a[2 * m] = _mm512_unpacklo_epi32(v[2 * m], v[2 * m + 1]);
        a[2 * m + 1] = _mm512_unpackhi_epi32(v[2 * m], v[2 * m + 1]);
    }
    UNROLL for (int m = 0; m < 4; m++) { /* b[4m + e] lane l: rows 4m .. 4m+3, dword 4l + e */
        b[4 * m] = _mm512_unpacklo_epi64(a[4 * m], a[4 * m + 2]);
        b[4 * m + 1] = _mm512_unpackhi_epi64(a[4 * m], a[4 * m + 2]);
        b[4 * m + 2] = _mm512_unpacklo_epi64(a[4 * m + 1], a[4 * m + 3]);
        b[4 * m + 3] = _mm512_unpackhi_epi64(a[4 * m + 1], a[4 * m + 3]);
    }
    UNROLL for (int e = 0; e < 4; e++) {
        __m512i c0 = _mm512_shuffle_i32x4(b[e], b[4 + e], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i c1 = _mm512_shuffle_i32x4(b[e], b[4 + e], _MM_SHUFFLE(3, 2, 3, 2));
        __m512i c2 = _mm512_shuffle_i32x4(b[8 + e], b[12 + e], _MM_SHUFFLE(1, 0, 1, 0));
        __m512i c3 = _mm512_shuffle_i32x4(b[8 + e], b[12 + e], _MM_SHUFFLE(3, 2, 3, 2));
        v[e] = _mm512_shuffle_i32x4(c0, c2, _MM_SHUFFLE(2, 0, 2, 0));
        v[4 + e] = _mm512_shuffle_i32x4(c0, c2, _MM_SHUFFLE(3, 1, 3, 1));
        v[8 + e] = _mm512_shuffle_i32x4(c1, c3, _MM_SHUFFLE(2, 0, 2, 0));
        v[12 + e] = _mm512_shuffle_i32x4(c1, c3, _MM_SHUFFLE(3, 1, 3, 1));
    }
}

/* Rows x0 + r * w_row_bytes (r < nr), super-blocks sb0 + p (p < ns) into o;
 * missing ones are zero (they add zero terms, as in the direct path). */
static void kp_pack(int type, const uint8_t *x0, size_t w_row_bytes, int nr, int64_t sb0, int ns, struct kp_w *o) {
    const size_t xs = ksize(type);
    int32_t sc[16][16] = { { 0 } };
    int16_t mn[8][16][2] = { { { 0 } } };
    float d[16] = { 0 }, dmin[16] = { 0 };
    for (int k = 0; k < 4; k++) { /* vector k of every lane's super-block, then transposed */
        __m512i v[16];
        for (int l = 0; l < 16; l++) {
            v[l] = _mm512_setzero_si512();
            if (l / 4 >= nr || l % 4 >= ns) continue;
            const uint8_t *b = x0 + (size_t)(l / 4) * w_row_bytes + (size_t)(sb0 + l % 4) * xs;
            struct ksuper ks;
            if (type == RB_TYPE_Q4_K) {
                const __m512i m4 = _mm512_set1_epi8(0x0F);
                __m512i q = _mm512_loadu_si512(b + offsetof(block_q4_K, qs) + 64 * (k / 2));
                v[l] = k % 2 ? _mm512_and_si512(_mm512_srli_epi16(q, 4), m4) : _mm512_and_si512(q, m4);
            } else {
                unpack_q6_K(b, &ks);
                v[l] = ks.q[k];
            }
        }
        transpose16(v);
        for (int j = 0; j < 16; j++) _mm512_store_si512(&o->q[16 * k + j], v[j]);
    }
    for (int l = 0; l < 16; l++) {
        if (l / 4 >= nr || l % 4 >= ns) continue;
        const uint8_t *b = x0 + (size_t)(l / 4) * w_row_bytes + (size_t)(sb0 + l % 4) * xs;
        if (type == RB_TYPE_Q4_K) {
            uint8_t s[8], m[8];
            for (int j = 0; j < 8; j++) rb_get_scale_min_k4(j, b + offsetof(block_q4_K, scales), &s[j], &m[j]);
            for (int oc = 0; oc < 8; oc++) sc[oc][l] = s[kp_octet(type, oc)];
            for (int kk = 0; kk < 4; kk++) {
                mn[kk][l][0] = m[2 * kk];
                mn[kk][l][1] = m[2 * kk + 1];
            }
            d[l] = f16_at(b + offsetof(block_q4_K, d));
            dmin[l] = f16_at(b + offsetof(block_q4_K, dmin));
        } else {
            const int8_t *s6 = (const int8_t *)(b + offsetof(block_q6_K, scales));
            for (int j = 0; j < 16; j++) sc[j][l] = s6[j];
            for (int kk = 0; kk < 8; kk++) {
                mn[kk][l][0] = (int16_t)(32 * s6[2 * kk]);
                mn[kk][l][1] = (int16_t)(32 * s6[2 * kk + 1]);
            }
            d[l] = dmin[l] = f16_at(b + offsetof(block_q6_K, d));
        }
    }
    for (int j = 0; j < 16; j++) o->sc[j] = _mm512_loadu_si512(sc[j]);
    for (int kk = 0; kk < 8; kk++) o->mn[kk] = _mm512_loadu_si512(mn[kk]);
    o->d = _mm512_loadu_ps(d);
    o->dmin = _mm512_loadu_ps(dmin);
}

/* Super-blocks sb0 + p (p < ns) of one Q8_K row into o (missing ones zero). */
static void kp_prepare(int type, const uint8_t *y, int64_t sb0, int ns, struct kp_a *o) {
    int16_t bs[8][4][2] = { { { 0 } } };
    float dy[4] = { 0, 0, 0, 0 };
    for (int k = 0; k < 4; k++) {
        __m512i v[4];
        for (int p = 0; p < 4; p++) {
            v[p] = _mm512_setzero_si512();
            if (p >= ns) continue;
            const uint8_t *qs = y + (size_t)(sb0 + p) * sizeof(block_q8_K) + offsetof(block_q8_K, qs);
            v[p] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(
                                          (const __m256i *)(qs + 32 * kp_octet(type, 2 * k)))),
                                      _mm256_loadu_si256((const __m256i *)(qs + 32 * kp_octet(type, 2 * k + 1))), 1);
        }
        __m512i t[4];
        transpose4(v, t); /* t[e] 128-bit lane j: dword 4j + e of the four super-blocks */
        for (int e = 0; e < 4; e++)
            for (int j = 0; j < 4; j++) {
                __m128i lane = j == 0 ? _mm512_castsi512_si128(t[e]) : j == 1 ? _mm512_extracti32x4_epi32(t[e], 1)
                             : j == 2 ? _mm512_extracti32x4_epi32(t[e], 2) : _mm512_extracti32x4_epi32(t[e], 3);
                _mm_store_si128(&o->q[16 * k + 4 * j + e], lane);
            }
    }
    for (int p = 0; p < ns; p++) {
        const uint8_t *blk = y + (size_t)(sb0 + p) * sizeof(block_q8_K);
        int16_t b16[16];
        memcpy(b16, blk + offsetof(block_q8_K, bsums), sizeof b16);
        for (int kk = 0; kk < 8; kk++) {
            if (type == RB_TYPE_Q4_K) {
                if (kk >= 4) break;
                bs[kk][p][0] = (int16_t)(b16[4 * kk] + b16[4 * kk + 1]);
                bs[kk][p][1] = (int16_t)(b16[4 * kk + 2] + b16[4 * kk + 3]);
            } else {
                bs[kk][p][0] = b16[2 * kk];
                bs[kk][p][1] = b16[2 * kk + 1];
            }
        }
        dy[p] = q8k_d(blk);
    }
    for (int kk = 0; kk < 8; kk++) o->bs[kk] = _mm_loadu_si128((const __m128i *)bs[kk]);
    o->dy = _mm_loadu_ps(dy);
}

/* Z groups of 4 packed rows (w[z]: nq quads) x T prepared tokens (a[t])
 * accumulate into f[z][t] (lane 4r + p: super-blocks 4j + p of row r). */
ALWAYS_INLINE void kp_tile(int type, int Z, int T, const struct kp_w *const *w, const struct kp_a *const *a,
                           int64_t nq, __m512 f[KP_Z][KP_T]) {
    const int ng = type == RB_TYPE_Q4_K ? 8 : 16, gw = 64 / ng; /* scale groups, dwords per group */
    const int nm = type == RB_TYPE_Q4_K ? 4 : 8;
    for (int64_t g = 0; g < nq; g++) {
        __m512i s[KP_Z][KP_T];
        UNROLL for (int z = 0; z < Z; z++)
            UNROLL for (int t = 0; t < T; t++) s[z][t] = _mm512_setzero_si512();
        for (int j = 0; j < ng; j++) {
            __m512i u[KP_Z][KP_T];
            UNROLL for (int z = 0; z < Z; z++)
                UNROLL for (int t = 0; t < T; t++) u[z][t] = _mm512_setzero_si512();
            UNROLL for (int c = 0; c < gw; c++) {
                __m512i wv[KP_Z];
                UNROLL for (int z = 0; z < Z; z++) {
                    wv[z] = _mm512_load_si512(&w[z][g].q[gw * j + c]);
                    IN_REGISTER(wv[z]);
                }
                UNROLL for (int t = 0; t < T; t++) {
                    __m512i av = _mm512_broadcast_i32x4(_mm_load_si128(&a[t][g].q[gw * j + c]));
                    IN_REGISTER(av);
                    UNROLL for (int z = 0; z < Z; z++) u[z][t] = _mm512_dpbusd_epi32(u[z][t], wv[z], av);
                }
            }
            UNROLL for (int z = 0; z < Z; z++) {
                const __m512i sc = _mm512_load_si512(&w[z][g].sc[j]);
                UNROLL for (int t = 0; t < T; t++) s[z][t] = _mm512_add_epi32(s[z][t], _mm512_mullo_epi32(u[z][t], sc));
            }
        }
        UNROLL for (int t = 0; t < T; t++) {
            const __m512 dy = _mm512_broadcast_f32x4(_mm_load_ps((const float *)&a[t][g].dy));
            UNROLL for (int z = 0; z < Z; z++) {
                __m512i m = _mm512_setzero_si512();
                for (int k = 0; k < nm; k++)
                    m = _mm512_dpwssd_epi32(m, w[z][g].mn[k], _mm512_broadcast_i32x4(_mm_load_si128(&a[t][g].bs[k])));
                /* kquad_float, 16 lanes at a time */
                if (type == RB_TYPE_Q6_K) {
                    f[z][t] = _mm512_add_ps(f[z][t], _mm512_mul_ps(_mm512_mul_ps(w[z][g].d, dy),
                                                                   _mm512_cvtepi32_ps(_mm512_sub_epi32(s[z][t], m))));
                } else {
                    __m512 tt = _mm512_mul_ps(_mm512_mul_ps(w[z][g].d, dy), _mm512_cvtepi32_ps(s[z][t]));
                    __m512 uu = _mm512_mul_ps(_mm512_mul_ps(w[z][g].dmin, dy), _mm512_cvtepi32_ps(m));
                    f[z][t] = _mm512_add_ps(f[z][t], _mm512_sub_ps(tt, uu));
                }
            }
        }
    }
}

/* Row r's output from lanes 4r .. 4r+3: (l0 + l2) + (l1 + l3), as rows_pass adds its four lanes. */
ALWAYS_INLINE void kp_store(__m512 f, float *out, int nr) {
    __m512 v = _mm512_add_ps(f, _mm512_permute_ps(f, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
    float l[16];
    _mm512_storeu_ps(l, v);
    for (int r = 0; r < nr; r++) out[r] = l[4 * r];
}

ALWAYS_INLINE void kp_rows(int type, int Z, const struct kp_w *const *w, const struct kp_a *ap, int64_t nq,
                           int64_t n_tok, int nr_last, float *out, int64_t out_stride) {
    int64_t t = 0;
    for (; t + KP_T <= n_tok; t += KP_T) {
        const struct kp_a *a[KP_T];
        UNROLL for (int i = 0; i < KP_T; i++) a[i] = ap + (t + i) * nq;
        __m512 f[KP_Z][KP_T];
        UNROLL for (int z = 0; z < Z; z++)
            UNROLL for (int i = 0; i < KP_T; i++) f[z][i] = _mm512_setzero_ps();
        kp_tile(type, Z, KP_T, w, a, nq, f);
        UNROLL for (int z = 0; z < Z; z++)
            UNROLL for (int i = 0; i < KP_T; i++) kp_store(f[z][i], out + (t + i) * out_stride + 4 * z, z == Z - 1 ? nr_last : 4);
    }
    for (; t < n_tok; t++) {
        const struct kp_a *a[1] = { ap + t * nq };
        __m512 f[KP_Z][KP_T];
        UNROLL for (int z = 0; z < Z; z++) f[z][0] = _mm512_setzero_ps();
        kp_tile(type, Z, 1, w, a, nq, f);
        UNROLL for (int z = 0; z < Z; z++) kp_store(f[z][0], out + t * out_stride + 4 * z, z == Z - 1 ? nr_last : 4);
    }
}

/* 0 when the scratch cannot be had (the caller takes the direct path). */
ALWAYS_INLINE int kp_prompt(int type, int64_t n, int64_t n_rows, int64_t n_tok, const uint8_t *w, size_t w_row_bytes,
                            const uint8_t *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    const int64_t nb = n / QK_K, nq = (nb + 3) / 4;
    const size_t tok_bytes = (size_t)nq * sizeof(struct kp_a);
    const int64_t tb = tokens_per_pass(KP_ACT_BYTES, tok_bytes, KP_MIN_TOK, n_tok);
    struct kp_a *ap;
    struct kp_w *wbuf;
    if (!scratch_pair((size_t)tb * tok_bytes, (void **)&ap, (size_t)KP_Z * nq * sizeof(struct kp_w), (void **)&wbuf))
        return 0;
    for (int64_t t0 = 0; t0 < n_tok; t0 += tb) {
        const int64_t nt = n_tok - t0 < tb ? n_tok - t0 : tb;
        for (int64_t t = 0; t < nt; t++)
            for (int64_t g = 0; g < nq; g++)
                kp_prepare(type, act + (size_t)(t0 + t) * act_row_bytes, 4 * g, nb - 4 * g < 4 ? (int)(nb - 4 * g) : 4,
                           ap + t * nq + g);
        for (int64_t r0 = 0; r0 < n_rows; r0 += 4 * KP_Z) {
            const int64_t left = n_rows - r0;
            const int z_here = left >= 4 * KP_Z ? KP_Z : (int)((left + 3) / 4);
            const struct kp_w *wp[KP_Z];
            for (int z = 0; z < z_here; z++) {
                const int nr = left - 4 * z >= 4 ? 4 : (int)(left - 4 * z);
                for (int64_t g = 0; g < nq; g++)
                    kp_pack(type, w + (size_t)(r0 + 4 * z) * w_row_bytes, w_row_bytes, nr, 4 * g,
                            nb - 4 * g < 4 ? (int)(nb - 4 * g) : 4, wbuf + z * nq + g);
                wp[z] = wbuf + z * nq;
            }
            const int nr_last = left - 4 * (z_here - 1) >= 4 ? 4 : (int)(left - 4 * (z_here - 1));
            float *o = out + t0 * out_stride + r0;
            if (z_here == KP_Z) kp_rows(type, KP_Z, wp, ap, nq, nt, nr_last, o, out_stride);
            else kp_rows(type, 1, wp, ap, nq, nt, nr_last, o, out_stride); /* KP_Z == 2 */
        }
    }
    free(ap);
    free(wbuf);
    return 1;
}

ALWAYS_INLINE void gemm_k(int type, int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                          const void *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    const int64_t nb = n / QK_K;
    if (n_tok >= KP_MIN_TOK && kp_prompt(type, n, n_rows, n_tok, w, w_row_bytes, act, act_row_bytes, out, out_stride))
        return;
    for (int64_t t0 = 0; t0 < n_tok;) {
        int64_t left = n_tok - t0;
        const uint8_t *a = (const uint8_t *)act + (size_t)t0 * act_row_bytes;
        float *o = out + t0 * out_stride;
        int T = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        switch (T) {
        case 8: rows_pass_t(type, 8, nb, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride); break;
        case 4: rows_pass_t(type, 4, nb, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride); break;
        case 2: rows_pass_t(type, 2, nb, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride); break;
        default: rows_pass_t(type, 1, nb, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride); break;
        }
        t0 += T;
    }
}

void rb_avx512_gemm_q4_K(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                         const void *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    gemm_k(RB_TYPE_Q4_K, n, n_rows, n_tok, w, w_row_bytes, act, act_row_bytes, out, out_stride);
}

void rb_avx512_gemm_q6_K(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                         const void *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    gemm_k(RB_TYPE_Q6_K, n, n_rows, n_tok, w, w_row_bytes, act, act_row_bytes, out, out_stride);
}

void rb_avx512_vec_dot_q4_K(int64_t n, float *s, const void *x, const void *y) {
    rb_avx512_gemm_q4_K(n, 1, 1, x, 0, y, 0, s, 1);
}

void rb_avx512_vec_dot_q6_K(int64_t n, float *s, const void *x, const void *y) {
    rb_avx512_gemm_q6_K(n, 1, 1, x, 0, y, 0, s, 1);
}
