/* x86_kquants.h - the K-quant dot products (Q2_K..Q6_K against Q8_K) in
 * 256-bit AVX2 code, written once and compiled into both x86 tables: avx2.c
 * includes it under -mavx2, avx512.c under its AVX-512 flags, where the same
 * code gets 32 registers (measured 8-15% faster in cache for Q4_K/Q5_K).
 *
 * The includer defines ALWAYS_INLINE, AT(p, T, f), f16_at(p) and TOK_TILE,
 * and includes <immintrin.h>, <string.h> and quant.h first.
 */
#ifndef RB_X86_KQUANTS_H
#define RB_X86_KQUANTS_H

ALWAYS_INLINE int kq_hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}


/* A super-block of 256 against a Q8_K block: the whole integer sum (and the
 * min correction) is exact int32, then the float part in the scalar order,
 * one super-block after another in one float: bit-identical to scalar for
 * every row length. A weight super-block is unpacked once into 8 vectors of
 * 32 unsigned quants (q[c] = elements 32c..32c+31) plus int16 scales, and
 * then meets up to 8 tokens (gemm). */

struct kblock {
    __m256i q[8];       /* unsigned stored quants, element order */
    __m256i scale16[8]; /* int16 scale of each maddubs lane of q[c] */
    __m256i mins16;     /* the min of each of the 16 bsums (0 without mins) */
    int off;            /* value = stored quant - off (Q3_K 4, Q6_K 32) */
    float d, dmin;      /* weight super-block scales (F16 widened) */
};

/* Q4_K/Q5_K: the 12-byte field -> bytes 0-7 the eight 6-bit scales, bytes
 * 8-15 the eight 6-bit mins (same values as scalar's scale_min_k4). */
ALWAYS_INLINE __m128i scales_mins_k4(const uint8_t *q) {
    const uint32_t six = 0x3f3f3f3f, low4 = 0x0f0f0f0f, top2 = 0x03030303;
    uint32_t u[4];
    memcpy(u, q, 12);
    u[3] = ((u[2] >> 4) & low4) | (((u[1] >> 6) & top2) << 4); /* mins 4-7 */
    uint32_t mins_0_3 = u[1] & six;
    u[1] = (u[2] & low4) | (((u[0] >> 6) & top2) << 4);       /* scales 4-7 */
    u[2] = mins_0_3;
    u[0] &= six;                                               /* scales 0-3 */
    /* from registers: a 16-byte load of four fresh 4-byte stores would wait
     * for store forwarding to fail */
    return _mm_setr_epi32((int)u[0], (int)u[1], (int)u[2], (int)u[3]);
}

/* Scales of 32-element sub-blocks (Q4_K, Q5_K): the 8 scales as int16 in s16
 * -> scale16[c] all lanes word c. */
ALWAYS_INLINE void scales_per_32(struct kblock *k, __m128i s16) {
    __m256i v = _mm256_broadcastsi128_si256(s16);
    #pragma GCC unroll 8
    for (int c = 0; c < 8; c++)
        k->scale16[c] = _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)((2 * c + 1) << 8 | 2 * c)));
}

/* Scales of 16-element sub-blocks (Q2_K, Q3_K, Q6_K): 16 int8 -> scale16[c]
 * = scale 2c on the low 16 quants' lanes, scale 2c+1 on the high ones. */
ALWAYS_INLINE void scales_per_16(struct kblock *k, __m128i s8) {
    __m256i s16 = _mm256_cvtepi8_epi16(s8);
    const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
                                          2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    #pragma GCC unroll 8
    for (int c = 0; c < 8; c++)
        k->scale16[c] = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(s16, _mm256_set1_epi32(c)), pick);
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
    k->off = 0;
    k->dmin = 0.0f;
    k->mins16 = _mm256_setzero_si256();
    switch (type) {
    case RB_TYPE_Q2_K: {
        unpack_2bit(AT(b, block_q2_K, qs), k);
        __m128i sc = _mm_loadu_si128((const __m128i *)AT(b, block_q2_K, scales));
        scales_per_16(k, _mm_and_si128(sc, _mm_set1_epi8(0x0F)));
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
        scales_per_16(k, sc);
        k->off = 4;
        k->d = f16_at(AT(b, block_q3_K, d));
        break;
    }
    case RB_TYPE_Q4_K:
    case RB_TYPE_Q5_K: {
        const int q5 = type == RB_TYPE_Q5_K;
        unpack_4bit(q5 ? AT(b, block_q5_K, qs) : AT(b, block_q4_K, qs), k);
        if (q5) add_high_bit(AT(b, block_q5_K, qh), 4, k);
        __m128i sm = scales_mins_k4(q5 ? AT(b, block_q5_K, scales) : AT(b, block_q4_K, scales));
        scales_per_32(k, _mm_cvtepu8_epi16(sm));
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
        scales_per_16(k, _mm_loadu_si128((const __m128i *)AT(b, block_q6_K, scales)));
        k->off = 32;
        k->d = f16_at(AT(b, block_q6_K, d));
        break;
    }
    }
}

/* sum over the super-block of scale * (q - off) * y, exact: stored quants
 * <= 63 keep every maddubs pair within int16. */
ALWAYS_INLINE int kblock_sumi(const struct kblock *k, const char *y) {
    __m256i acc = _mm256_setzero_si256();
    const __m256i off = _mm256_set1_epi8((char)k->off);
    #pragma GCC unroll 8
    for (int c = 0; c < 8; c++) {
        __m256i yv = _mm256_loadu_si256((const __m256i *)(AT(y, block_q8_K, qs) + 32 * c));
        __m256i p = _mm256_maddubs_epi16(k->q[c], yv);
        if (k->off) p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(off, yv));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, k->scale16[c]));
    }
    return kq_hsum_epi32(acc);
}

/* sum over the 16 bsums of min * bsum, exact. */
ALWAYS_INLINE int kblock_summins(const struct kblock *k, const char *y) {
    __m256i b = _mm256_loadu_si256((const __m256i *)AT(y, block_q8_K, bsums));
    return kq_hsum_epi32(_mm256_madd_epi16(k->mins16, b));
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

ALWAYS_INLINE void gemm_kquant(int type, int64_t n, int64_t n_rows, int64_t n_tok,
                               const void *w, size_t w_row_bytes, const void *act, size_t act_row_bytes,
                               float *out, int64_t out_stride) {
    const int64_t nb = n / QK_K;
    const size_t xsize = kblock_size(type);
    const int has_mins = type == RB_TYPE_Q2_K || type == RB_TYPE_Q4_K || type == RB_TYPE_Q5_K;
    for (int64_t r = 0; r < n_rows; r++) {
        const char *xr = (const char *)w + r * w_row_bytes;
        for (int64_t t0 = 0; t0 < n_tok; t0 += TOK_TILE) {
            const int nt = n_tok - t0 < TOK_TILE ? (int)(n_tok - t0) : TOK_TILE;
            float sumf[TOK_TILE];
            for (int t = 0; t < nt; t++) sumf[t] = 0.0f;
            for (int64_t i = 0; i < nb; i++) {
                struct kblock k;
                unpack_kblock(type, xr + i * xsize, &k);
                for (int t = 0; t < nt; t++) {
                    const char *y = (const char *)act + (t0 + t) * act_row_bytes + i * sizeof(block_q8_K);
                    int sumi = kblock_sumi(&k, y);
                    float yd;
                    memcpy(&yd, AT(y, block_q8_K, d), sizeof yd);
                    if (has_mins) { /* scalar: sumf += d * sumi - dmin * summins */
                        float d = k.d * yd, dmin = k.dmin * yd;
                        float dsumi = d * (float)sumi, mins = dmin * (float)kblock_summins(&k, y);
                        sumf[t] += dsumi - mins; /* separate statements: no FMA contraction */
                    } else {        /* scalar: sumf += (d_w * d_a) * sumi */
                        float term = (k.d * yd) * (float)sumi;
                        sumf[t] += term;
                    }
                }
            }
            for (int t = 0; t < nt; t++) out[(t0 + t) * out_stride + r] = sumf[t];
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
