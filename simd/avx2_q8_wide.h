/* avx2_q8_wide.h - Q8_0 prompt batches on AVX2 without VNNI (included by
 * avx2_q32.h, for the avx2 table only).
 *
 * vpmaddubsw wants one unsigned operand and Q8_0 has two signed ones: the
 * sign trick (|w| x y negated where w < 0) spends two more operations per
 * product vector on the negation, and y = -128 breaks it. Widened to int16,
 * both operands are plain signed: vpmaddwd sums two exact products per
 * int32 lane, for every byte. Per 32 products and token that is two
 * vpmaddwd, two adds and one broadcast, against six operations for the sign
 * trick; the two multiplies per 32 products remain either way (no vpdpbusd),
 * and they bound both. On Zen 3 the kernel alone went from 44.7 to 50.4
 * GMAC/s per core (2048 x 512 x 128, best of 40, alternating in one process).
 *
 * 16 weight rows at a time are repacked on the heap (struct q8w_block):
 * step j of a block holds quants 2j and 2j+1 of row 8h + r, as int16, in
 * int32 lane r of vector h. Each token's quants are widened once per call,
 * so one broadcast pair meets both vectors. A block's exact sum builds up in
 * its lane over 16 steps; its float term then goes to the accumulator that
 * the direct path uses for that block (pair_lane), and a chunk's
 * accumulators add in hsum_ps's order: the same bits as vec_dot. Those
 * accumulators (8 per token and row vector) live in memory: each is touched
 * once per block, after 16 steps of integer work.
 */
#ifndef RB_AVX2_Q8_WIDE_H
#define RB_AVX2_Q8_WIDE_H

#define Q8W_VEC 2                /* 8-lane vectors of rows per repacked group */
#define Q8W_ROWS (8 * Q8W_VEC)   /* weight rows per repacked group */
#define Q8W_TOK 4                /* tokens per register tile: 8 int32 sums, 2 weights, broadcasts */

struct q8w_block {          /* one block of 16 rows: 1088 bytes */
    __m256i q[16][Q8W_VEC];    /* step j, vector h: lane r = quants 2j, 2j+1 of row 8h + r */
    __m256 dx[Q8W_VEC];        /* the rows' scales (0 for rows past the matrix) */
};

/* Rows w[0 .. nr) (nr <= 16) -> nb repacked blocks. */
static void q8w_repack(const uint8_t *w, size_t w_row_bytes, int nr, int64_t nb, struct q8w_block *out) {
    for (int64_t b = 0; b < nb; b++) {
        for (int h = 0; h < Q8W_VEC; h++) {
            __m256i lo[8], hi[8]; /* dwords of row 8h + r: pairs 0..7, 8..15 */
            float dx[8] = { 0, 0, 0, 0, 0, 0, 0, 0 };
            for (int r = 0; r < 8; r++) {
                const int row = 8 * h + r;
                if (row >= nr) {
                    lo[r] = hi[r] = _mm256_setzero_si256();
                    continue;
                }
                const uint8_t *x = w + (size_t)row * w_row_bytes + (size_t)b * sizeof(block_q8_0);
                dx[r] = f16_at(AT(x, block_q8_0, d));
                __m256i q = _mm256_loadu_si256((const __m256i *)AT(x, block_q8_0, qs));
                lo[r] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q));
                hi[r] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1));
            }
            transpose8(lo);
            transpose8(hi);
            for (int j = 0; j < 8; j++) {
                out[b].q[j][h] = lo[j];
                out[b].q[j + 8][h] = hi[j];
            }
            out[b].dx[h] = _mm256_loadu_ps(dx);
        }
    }
}

/* A token's Q8_0 row -> its quants as int16 (32 per block) and its scales. */
static void q8w_widen(const uint8_t *y, int64_t nb, int16_t *q, float *dy) {
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = y + (size_t)b * sizeof(block_q8_0);
        __m256i v = _mm256_loadu_si256((const __m256i *)AT(blk, block_q8_0, qs));
        _mm256_storeu_si256((__m256i *)(q + 32 * b), _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)));
        _mm256_storeu_si256((__m256i *)(q + 32 * b + 16), _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)));
        dy[b] = f16_at(AT(blk, block_q8_0, d));
    }
}

/* One group of 16 repacked rows against T tokens (int16 quants yq[t],
 * scales yd[t]): out[t][0 .. nr), in the direct path's float order. */
ALWAYS_INLINE void q8w_rows(int T, int64_t nb, const struct q8w_block *wp, const int16_t *const *yq,
                            const float *const *yd, int nr, float *const *out) {
    __m256 tot[Q8W_TOK][Q8W_VEC];
    for (int64_t c0 = 0; c0 < nb; c0 += Q32_CHUNK) {
        /* the chunk's first 8 blocks start their lanes from +0 (fma(x, y, +0)
         * is what the direct path adds to its zeroed lanes); a chunk of
         * fewer blocks leaves lanes that must read as zero */
        __m256 acc[Q8W_TOK][Q8W_VEC][8];
        const int64_t c1 = nb - c0 < Q32_CHUNK ? nb : c0 + Q32_CHUNK;
        if (c1 - c0 < 8)
            for (int t = 0; t < T; t++)
                for (int h = 0; h < Q8W_VEC; h++)
                    for (int i = 0; i < 8; i++) acc[t][h][i] = _mm256_setzero_ps();
        for (int64_t b = c0; b < c1; b++) {
            const struct q8w_block *wb = wp + b;
            __m256i s[Q8W_TOK][Q8W_VEC];
            #pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                for (int h = 0; h < Q8W_VEC; h++) s[t][h] = _mm256_setzero_si256();
            #pragma GCC unroll 2
            for (int j = 0; j < 16; j++) {
                __m256i wv[Q8W_VEC];
                for (int h = 0; h < Q8W_VEC; h++) wv[h] = _mm256_load_si256(&wb->q[j][h]);
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    int32_t pair;
                    memcpy(&pair, yq[t] + 32 * b + 2 * j, 4);
                    const __m256i y = _mm256_set1_epi32(pair);
                    for (int h = 0; h < Q8W_VEC; h++) s[t][h] = _mm256_add_epi32(s[t][h], _mm256_madd_epi16(wv[h], y));
                }
            }
            const int lane = pair_lane((int)(b % 8)), first = b - c0 < 8;
            #pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                const __m256 dy = _mm256_set1_ps(yd[t][b]);
                for (int h = 0; h < Q8W_VEC; h++)
                    acc[t][h][lane] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t][h]), _mm256_mul_ps(wb->dx[h], dy),
                                                      first ? _mm256_setzero_ps() : acc[t][h][lane]);
            }
        }
        for (int t = 0; t < T; t++)
            for (int h = 0; h < Q8W_VEC; h++) {
                __m256 sum = sum_acc_lanes(acc[t][h]);
                tot[t][h] = c0 == 0 ? sum : _mm256_add_ps(tot[t][h], sum);
            }
    }
    for (int t = 0; t < T; t++) {
        float v[Q8W_ROWS];
        for (int h = 0; h < Q8W_VEC; h++) _mm256_storeu_ps(v + 8 * h, tot[t][h]);
        memcpy(out[t], v, (size_t)nr * sizeof(float));
    }
}

/* The widened path; returns -1 (nothing written) if the scratch cannot be
 * allocated. Scratch: the widened tokens (n_tok * n * 2 bytes, at most
 * 14.7 MB for 512 tokens of a 14336-wide FFN row) and one repacked group. */
static int gemm_q8_wide(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,
                        const void *act, size_t act_row_bytes, float *out, int64_t out_stride) {
    const int64_t nb = n / 32;
    const size_t pack_bytes = (size_t)nb * sizeof(struct q8w_block);
    const size_t q_bytes = (size_t)n_tok * (size_t)nb * 32 * sizeof(int16_t);
    uint8_t *scratch = aligned_alloc(32, pack_bytes + q_bytes + ((size_t)n_tok * (size_t)nb * sizeof(float) + 31) / 32 * 32);
    if (!scratch) return -1;
    struct q8w_block *wp = (struct q8w_block *)scratch;
    int16_t *yq = (int16_t *)(scratch + pack_bytes);
    float *yd = (float *)(scratch + pack_bytes + q_bytes);
    for (int64_t t = 0; t < n_tok; t++)
        q8w_widen((const uint8_t *)act + (size_t)t * act_row_bytes, nb, yq + (size_t)t * nb * 32, yd + t * nb);
    for (int64_t r0 = 0; r0 < n_rows; r0 += Q8W_ROWS) {
        const int nr = n_rows - r0 < Q8W_ROWS ? (int)(n_rows - r0) : Q8W_ROWS;
        q8w_repack((const uint8_t *)w + (size_t)r0 * w_row_bytes, w_row_bytes, nr, nb, wp);
        for (int64_t t0 = 0; t0 < n_tok;) {
            const int64_t left = n_tok - t0;
            const int T = left >= Q8W_TOK ? Q8W_TOK : left >= 2 ? 2 : 1;
            const int16_t *q[Q8W_TOK];
            const float *d[Q8W_TOK];
            float *o[Q8W_TOK];
            for (int t = 0; t < T; t++) {
                q[t] = yq + (size_t)(t0 + t) * nb * 32;
                d[t] = yd + (t0 + t) * nb;
                o[t] = out + (t0 + t) * out_stride + r0;
            }
            switch (T) {
            case Q8W_TOK: q8w_rows(Q8W_TOK, nb, wp, q, d, nr, o); break;
            case 2: q8w_rows(2, nb, wp, q, d, nr, o); break;
            default: q8w_rows(1, nb, wp, q, d, nr, o); break;
            }
            t0 += T;
        }
    }
    free(scratch);
    return 0;
}

#endif
