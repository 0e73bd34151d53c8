/* x86_kquants.h - the K-quant dot products (Q2_K..Q6_K against Q8_K) in
 * 256-bit AVX2 code, written once and compiled into the x86 tables:
 * avx2_common.h includes it for avx2 / avxvnni / avxvnni_evex, avx512.c
 * under its AVX-512 flags (32 registers there).
 *
 * The includer defines ALWAYS_INLINE, AT(p, T, f), f16_at(p) and TOK_TILE
 * (x86_common.h has the first three), includes <immintrin.h>, <string.h>
 * and quant.h first. (VNNI's vpdpwssd in place of vpmaddwd + vpaddd was
 * measured slower on Zen 4, so the VNNI tables build this code as it is.)
 *
 * A super-block of 256 against a Q8_K block: the whole integer sum is exact
 * int32 (vpmaddubsw pairs of quant x activation, then vpmaddwd with the
 * sub-block scale), and so is the part that does not depend on the quants:
 * the mins (Q2_K, Q4_K, Q5_K) or the offset (Q3_K 4, Q6_K 32, as
 * offset x scale) times the activation's bsums, one vpmaddwd. A weight
 * super-block is unpacked once into 8 vectors of 32 unsigned quants
 * (q[c] = elements 32c..32c+31) plus int16 scales and then meets up to
 * TOK_TILE tokens; four super-blocks' lanes (a quad) reduce together to one
 * exact sum each, and the float part is the scalar reference's, rounding for
 * rounding, per super-block, in 4 float lanes (lane i: super-blocks 4j + i)
 * added at the end. So one super-block gives scalar's bits, and every output
 * sees the same operations whatever the tile (gemm = vec_dot, bit for bit).
 */
#ifndef RB_X86_KQUANTS_H
#define RB_X86_KQUANTS_H

#define KQ_PREFETCH 2048 /* bytes ahead of the weights being read (generation) */

struct kblock {
    __m256i q[8];       /* unsigned stored quants, element order */
    __m256i scale[4];   /* int16 scales of kblock_dot's paired words (kq_levels) */
    __m256i mins16;     /* per bsum (16 int16): the min, or offset x scale */
    float d, dmin;      /* weight super-block scales (F16 widened) */
};

/* The products of a sub-block (vpmaddubsw words, |.| <= 2 * qmax * 128)
 * are paired in int16 across sub-blocks before the one vpmaddwd by the
 * scales: as many levels as the quants' range allows (each doubles |word|:
 * Q4_K 3, Q5_K 2, Q6_K 1) and the scales' granularity (a scale per 16
 * elements stops at 2: the third level would add the two halves). Each
 * level halves the multiplies, which share two pipes with vpmaddubsw. */
ALWAYS_INLINE int kq_levels(int type) {
    switch (type) {
    case RB_TYPE_Q4_K: return 3;
    case RB_TYPE_Q6_K: return 1;
    default: return 2; /* Q2_K, Q3_K (quants <= 7), Q5_K (<= 31) */
    }
}

/* pshufb patterns: word w of paired vector v takes the scale word of the
 * sub-block that level L left there (see kblock_dot); the scale words hold
 * sub-block c at word c, first 16 elements' scales in the low half, second
 * 16's in the high half. */
static const uint8_t kq_scale_pick[7][32] = {
#define W2(c) 2 * (c), 2 * (c) + 1, 2 * (c), 2 * (c) + 1
    /* level 1, vectors 0-3: dwords [2v, 2v+1, 2v, 2v+1] per half */
    { W2(0), W2(1), W2(0), W2(1), W2(0), W2(1), W2(0), W2(1) },
    { W2(2), W2(3), W2(2), W2(3), W2(2), W2(3), W2(2), W2(3) },
    { W2(4), W2(5), W2(4), W2(5), W2(4), W2(5), W2(4), W2(5) },
    { W2(6), W2(7), W2(6), W2(7), W2(6), W2(7), W2(6), W2(7) },
    /* level 2, vectors 0-1: dwords [4v .. 4v+3] per half */
    { W2(0), W2(1), W2(2), W2(3), W2(0), W2(1), W2(2), W2(3) },
    { W2(4), W2(5), W2(6), W2(7), W2(4), W2(5), W2(6), W2(7) },
    /* level 3: dwords [0 .. 3 | 4 .. 7] */
    { W2(0), W2(1), W2(2), W2(3), W2(4), W2(5), W2(6), W2(7) },
#undef W2
};

/* sw: the scale words (word c of the low half: sub-block c's first 16
 * elements, of the high half: its second 16) -> k->scale. */
ALWAYS_INLINE void kscales(struct kblock *k, int type, __m256i sw) {
    const int L = kq_levels(type), first = L == 1 ? 0 : L == 2 ? 4 : 6;
    for (int v = 0; v < (8 >> L); v++)
        k->scale[v] = _mm256_shuffle_epi8(sw, _mm256_loadu_si256((const __m256i *)kq_scale_pick[first + v]));
}

/* Q4_K/Q5_K: the 12-byte field q -> bytes 0-7 the eight 6-bit scales, bytes
 * 8-15 the eight 6-bit mins (the values of scalar's rb_get_scale_min_k4):
 *   scale j < 4 = q[j] & 63          scale j >= 4 = q[j + 4] & 15 | (q[j - 4] >> 6) << 4
 *   min j < 4   = q[j + 4] & 63      min j >= 4   = q[j + 4] >> 4 | (q[j] >> 6) << 4
 * in vector registers. Reads 16 bytes: the field is followed by the quants. */
ALWAYS_INLINE __m128i scales_mins_k4(const uint8_t *q) {
    const __m128i v = _mm_loadu_si128((const __m128i *)q);
    /* [q0..3, q8..11, q4..7, q8..11] and [0, q0..3, 0, q4..7] */
    const __m128i a = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i b = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i low = _mm_and_si128(a, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0));
    const __m128i nib = _mm_and_si128(_mm_srli_epi16(a, 4), _mm_setr_epi32(0, 0, 0, 0x0f0f0f0f));
    /* bits 6-7 to 4-5: masked first, so no bit crosses into the byte below */
    const __m128i top = _mm_srli_epi16(_mm_and_si128(b, _mm_set1_epi8((char)0xc0)), 2);
    return _mm_or_si128(_mm_or_si128(low, nib), top);
}

/* Scales of 32-element sub-blocks (Q4_K, Q5_K): the 8 scales as int16. */
ALWAYS_INLINE void scales_per_32(struct kblock *k, int type, __m128i s16) {
    kscales(k, type, _mm256_broadcastsi128_si256(s16));
}

/* Scales of 16-element groups (Q2_K, Q3_K, Q6_K): 16 int8, group 2c + h is
 * half h of sub-block c: evens to the low half, odds to the high half. */
ALWAYS_INLINE void scales_per_16(struct kblock *k, int type, __m128i s8) {
    const __m128i evens_odds = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    kscales(k, type, _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, evens_odds)));
}

/* Q4_K/Q5_K mins (8 u8 in the high half of sm) -> one per bsum (16 int16). */
ALWAYS_INLINE __m256i mins_per_bsum(__m128i sm) {
    __m128i m = _mm_unpackhi_epi8(sm, sm); /* m0 m0 m1 m1 ... m7 m7 */
    return _mm256_cvtepu8_epi16(m);
}

/* Q2_K/Q3_K low bits: element 128h + 32s + l is bits 2s..2s+1 of qs[32h + l]. */
ALWAYS_INLINE void unpack_2bit(const uint8_t *qs, struct kblock *k) {
    const __m256i m2 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
        #pragma GCC unroll 4
        for (int s = 0; s < 4; s++) k->q[4 * h + s] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * s), m2);
    }
}

/* Q4_K/Q5_K nibbles: elements 64g..64g+31 low nibbles of qs[32g..], next 32 high. */
ALWAYS_INLINE void unpack_4bit(const uint8_t *qs, struct kblock *k) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    #pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * g));
        k->q[2 * g] = _mm256_and_si256(v, m4);
        k->q[2 * g + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    }
}

/* Adds (bit c of byte l of bits32) << shift to quant c*32 + l (Q3_K hmask, Q5_K qh). */
ALWAYS_INLINE void add_high_bit(const uint8_t *bits32, int shift, struct kblock *k) {
    const __m256i one = _mm256_set1_epi8(1);
    __m256i v = _mm256_loadu_si256((const __m256i *)bits32);
    #pragma GCC unroll 8
    for (int c = 0; c < 8; c++) {
        __m256i b = _mm256_and_si256(_mm256_srli_epi16(v, c), one);
        k->q[c] = _mm256_or_si256(k->q[c], _mm256_slli_epi16(b, shift));
    }
}

ALWAYS_INLINE void unpack_kblock(int type, const char *b, struct kblock *k) {
    k->dmin = 0.0f;
    k->mins16 = _mm256_setzero_si256();
    switch (type) {
    case RB_TYPE_Q2_K: {
        unpack_2bit(AT(b, block_q2_K, qs), k);
        __m128i sc = _mm_loadu_si128((const __m128i *)AT(b, block_q2_K, scales));
        scales_per_16(k, type, _mm_and_si128(sc, _mm_set1_epi8(0x0F)));
        k->mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc, 4), _mm_set1_epi8(0x0F)));
        k->d = f16_at(AT(b, block_q2_K, d));
        k->dmin = f16_at(AT(b, block_q2_K, dmin));
        break;
    }
    case RB_TYPE_Q3_K: {
        unpack_2bit(AT(b, block_q3_K, qs), k);
        add_high_bit(AT(b, block_q3_K, hmask), 2, k);
        /* 16 6-bit scales: 4 low bits in bytes 0-7 (low nibbles, then high),
         * 2 high bits in bytes 8-11; value - 32 */
        const uint32_t low4 = 0x0f0f0f0f, top2 = 0x03030303;
        uint32_t u[4];
        memcpy(u, AT(b, block_q3_K, scales), 12);
        uint32_t hi = u[2];
        u[2] = ((u[0] >> 4) & low4) | (((hi >> 4) & top2) << 4); /* scales 8-11 */
        u[3] = ((u[1] >> 4) & low4) | (((hi >> 6) & top2) << 4); /* scales 12-15 */
        u[0] = (u[0] & low4) | ((hi & top2) << 4);               /* scales 0-3 */
        u[1] = (u[1] & low4) | (((hi >> 2) & top2) << 4);        /* scales 4-7 */
        __m128i sc = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)u), _mm_set1_epi8(32));
        scales_per_16(k, type, sc);
        k->mins16 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(sc), 2); /* value = quant - 4 */
        k->d = f16_at(AT(b, block_q3_K, d));
        break;
    }
    case RB_TYPE_Q4_K:
    case RB_TYPE_Q5_K: {
        const int q5 = type == RB_TYPE_Q5_K;
        unpack_4bit(q5 ? AT(b, block_q5_K, qs) : AT(b, block_q4_K, qs), k);
        if (q5) add_high_bit(AT(b, block_q5_K, qh), 4, k);
        __m128i sm = scales_mins_k4(q5 ? AT(b, block_q5_K, scales) : AT(b, block_q4_K, scales));
        scales_per_32(k, type, _mm_cvtepu8_epi16(sm));
        k->mins16 = mins_per_bsum(sm);
        k->d = f16_at(q5 ? AT(b, block_q5_K, d) : AT(b, block_q4_K, d));
        k->dmin = f16_at(q5 ? AT(b, block_q5_K, dmin) : AT(b, block_q4_K, dmin));
        break;
    }
    default: { /* Q6_K: element 128h + 32s + l = ql nibble | 2 bits of qh[32h + l] */
        const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)(AT(b, block_q6_K, ql) + 64 * h));
            __m256i ql1 = _mm256_loadu_si256((const __m256i *)(AT(b, block_q6_K, ql) + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(AT(b, block_q6_K, qh) + 32 * h));
            __m256i lo[4] = { _mm256_and_si256(ql0, m4), _mm256_and_si256(ql1, m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                              _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4) };
            #pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * s), m2);
                k->q[4 * h + s] = _mm256_or_si256(lo[s], _mm256_slli_epi16(hi, 4));
            }
        }
        __m128i sc = _mm_loadu_si128((const __m128i *)AT(b, block_q6_K, scales));
        scales_per_16(k, type, sc);
        k->mins16 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(sc), 5); /* value = quant - 32 */
        k->d = f16_at(AT(b, block_q6_K, d));
        break;
    }
    }
}

ALWAYS_INLINE size_t kblock_size(int type) {
    switch (type) {
    case RB_TYPE_Q2_K: return sizeof(block_q2_K);
    case RB_TYPE_Q3_K: return sizeof(block_q3_K);
    case RB_TYPE_Q4_K: return sizeof(block_q4_K);
    case RB_TYPE_Q5_K: return sizeof(block_q5_K);
    default: return sizeof(block_q6_K);
    }
}

/* Lane i = the sum of the 8 lanes of v[i] (exact). */
ALWAYS_INLINE __m128i reduce4(const __m256i v[4]) {
    __m256i a = _mm256_add_epi32(_mm256_unpacklo_epi32(v[0], v[1]), _mm256_unpackhi_epi32(v[0], v[1]));
    __m256i b = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2], v[3]), _mm256_unpackhi_epi32(v[2], v[3]));
    __m256i c = _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
    return _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
}

ALWAYS_INLINE float kq_y_d(const char *y) {
    float d;
    memcpy(&d, AT(y, block_q8_K, d), sizeof d);
    return d;
}

/* The int32 lanes of sum over sub-blocks c of scale * q_c * y_c, exact:
 * the words of sub-blocks 2j and 2j+1 add after a 32-bit interleave (level
 * 1: dwords [2j, 2j+1, 2j, 2j+1] per half), then those of 4j..4j+3 after a
 * 64-bit one (level 2: [4j .. 4j+3]), then the two halves (level 3: [0..3 |
 * 4..7]); kq_scale_pick puts each word's scale beside it. */
ALWAYS_INLINE __m256i kblock_dot(int type, const struct kblock *k, const char *y) {
    const int L = kq_levels(type);
    const uint8_t *qs = AT(y, block_q8_K, qs);
    __m256i p[8];
    #pragma GCC unroll 8
    for (int c = 0; c < 8; c++) p[c] = _mm256_maddubs_epi16(k->q[c], _mm256_loadu_si256((const __m256i *)(qs + 32 * c)));
    #pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        p[j] = _mm256_add_epi16(_mm256_unpacklo_epi32(p[2 * j], p[2 * j + 1]), _mm256_unpackhi_epi32(p[2 * j], p[2 * j + 1]));
    if (L >= 2) {
        #pragma GCC unroll 2
        for (int j = 0; j < 2; j++)
            p[j] = _mm256_add_epi16(_mm256_unpacklo_epi64(p[2 * j], p[2 * j + 1]), _mm256_unpackhi_epi64(p[2 * j], p[2 * j + 1]));
    }
    if (L >= 3)
        p[0] = _mm256_add_epi16(_mm256_permute2x128_si256(p[0], p[1], 0x20), _mm256_permute2x128_si256(p[0], p[1], 0x31));
    __m256i s = _mm256_madd_epi16(p[0], k->scale[0]);
    for (int v = 1; v < (8 >> L); v++) s = _mm256_add_epi32(s, _mm256_madd_epi16(p[v], k->scale[v]));
    return s;
}

/* acc[t] lane i += the term of super-block i of the quad at x (nq of the 4
 * exist) against token t, in the scalar reference's rounding order. */
ALWAYS_INLINE void kquad(int type, int T, const char *x, size_t xsize, int nq, const char *const *y,
                         __m128 *acc) {
    const int has_mins = type == RB_TYPE_Q2_K || type == RB_TYPE_Q4_K || type == RB_TYPE_Q5_K;
    __m256i sum[TOK_TILE][4], mins[TOK_TILE][4];
    float d[4] = { 0, 0, 0, 0 }, dmin[4] = { 0, 0, 0, 0 }, dy[TOK_TILE][4];
    for (int i = 0; i < 4; i++) {
        __m256i s[TOK_TILE];
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) s[t] = _mm256_setzero_si256();
        if (i < nq) {
            const char *b = x + i * xsize;
            if (T == 1) /* generation streams weights from DRAM: ask ahead */
                for (size_t l = 0; l < xsize; l += 64) _mm_prefetch(b + KQ_PREFETCH + l, _MM_HINT_T0);
            struct kblock k;
            unpack_kblock(type, b, &k);
            const char *yi[TOK_TILE];
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) yi[t] = y[t] + i * sizeof(block_q8_K);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) s[t] = kblock_dot(type, &k, yi[t]);
            d[i] = k.d;
            dmin[i] = k.dmin;
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                mins[t][i] = _mm256_madd_epi16(k.mins16, _mm256_loadu_si256((const __m256i *)AT(yi[t], block_q8_K, bsums)));
                dy[t][i] = kq_y_d(yi[t]);
            }
        } else {
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                mins[t][i] = _mm256_setzero_si256();
                dy[t][i] = 0.0f;
            }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) sum[t][i] = s[t];
    }
    const __m128 vd = _mm_loadu_ps(d), vdmin = _mm_loadu_ps(dmin);
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        __m128i si = reduce4(sum[t]), mi = reduce4(mins[t]);
        __m128 vdy = _mm_loadu_ps(dy[t]);
        if (has_mins) { /* scalar: d * dy * sumi - dmin * dy * summins */
            __m128 u = _mm_mul_ps(_mm_mul_ps(vd, vdy), _mm_cvtepi32_ps(si));
            __m128 v = _mm_mul_ps(_mm_mul_ps(vdmin, vdy), _mm_cvtepi32_ps(mi));
            acc[t] = _mm_add_ps(acc[t], _mm_sub_ps(u, v));
        } else {        /* scalar: (d * dy) * sumi, the offset inside sumi */
            acc[t] = _mm_add_ps(acc[t], _mm_mul_ps(_mm_mul_ps(vd, vdy), _mm_cvtepi32_ps(_mm_sub_epi32(si, mi))));
        }
    }
}

ALWAYS_INLINE void kquant_rows(int type, int T, int64_t nb, int64_t n_rows, const void *w, size_t w_row_bytes,
                               const char *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    const size_t xsize = kblock_size(type);
    for (int64_t r = 0; r < n_rows; r++) {
        const char *xr = (const char *)w + r * w_row_bytes;
        if (T > 1 && r + 2 < n_rows) /* rows from DRAM: fetch two ahead */
            for (size_t l = 0; l < (size_t)nb * xsize; l += 64) _mm_prefetch(xr + 2 * w_row_bytes + l, _MM_HINT_T0);
        __m128 acc[TOK_TILE];
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[t] = _mm_setzero_ps();
        for (int64_t i = 0; i < nb; i += 4) {
            const char *y[TOK_TILE];
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) y[t] = act + t * act_row_bytes + i * sizeof(block_q8_K);
            kquad(type, T, xr + i * xsize, xsize, nb - i < 4 ? (int)(nb - i) : 4, y, acc);
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m128 v = acc[t];
            v = _mm_add_ps(v, _mm_movehl_ps(v, v));
            v = _mm_add_ss(v, _mm_movehdup_ps(v));
            out[t * out_stride + r] = _mm_cvtss_f32(v);
        }
    }
}

/* Token tiles of 8, 4, 2, 1: every output sees the same operations. */
ALWAYS_INLINE void gemm_kquant(int type, int64_t n, int64_t n_rows, int64_t n_tok,
                               const void *w, size_t w_row_bytes, const void *act, size_t act_row_bytes,
                               float *out, int64_t out_stride) {
    const int64_t nb = n / QK_K;
    for (int64_t t0 = 0; t0 < n_tok;) {
        const int64_t left = n_tok - t0;
        const char *a = (const char *)act + t0 * act_row_bytes;
        float *o = out + t0 * out_stride;
        if (left >= 8) {
            kquant_rows(type, 8, nb, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride);
            t0 += 8;
        } else if (left >= 4) {
            kquant_rows(type, 4, nb, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride);
            t0 += 4;
        } else if (left >= 2) {
            kquant_rows(type, 2, nb, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride);
            t0 += 2;
        } else {
            kquant_rows(type, 1, nb, n_rows, w, w_row_bytes, a, act_row_bytes, o, out_stride);
            t0 += 1;
        }
    }
}

/* The includer's table entries for K-quant TYPE: gemm_NAME and vec_dot_NAME. */
#define DEFINE_KQUANT(name, TYPE) \
    static void gemm_##name(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t wrb, \
                            const void *act, size_t arb, float *out, int64_t os) { \
        gemm_kquant(TYPE, n, n_rows, n_tok, w, wrb, act, arb, out, os); \
    } \
    static void vec_dot_##name(int64_t n, float *s, const void *x, const void *y) { \
        gemm_kquant(TYPE, n, 1, 1, x, 0, y, 0, s, 1); \
    }

#endif
