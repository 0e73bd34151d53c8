/* f16_gemm.h - the F16 gemm's loop over rows and tokens, shared by the
 * tables that have one (avx2_float.c, neon.c; expanded under each file's
 * flags).
 *
 * F16 rows against F16 tokens: attention's keys against its queries and
 * transposed values against its weights, F16 weight matrices. Each
 * includer first defines its tile,
 *   f16_tile(T, wide, n, x, y16, y32, out, out_stride): out[t * out_stride]
 *   = dot(x, token t) for T <= 4 tokens, token t as F16 at y16[t] or, when
 *   wide, already widened to F32 at y32[t],
 * always inline (its one-token case is the table's vec_dot_f16, so gemm
 * and vec_dot give the same bits), then RB_DEFINE_GEMM_F16(name, widen). Rows go
 * one after another (a weight row stays in L1 while every token meets it),
 * the tokens in tiles of four; the tokens are widened once per call when
 * they fit in RB_F16_WIDE_MAX floats on the stack, else per use (widening is
 * exact, so the products are equal either way). */
#ifndef RB_F16_GEMM_H
#define RB_F16_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define RB_F16_WIDE_MAX 4096

#define RB_DEFINE_GEMM_F16(name, widen)                                                              \
static void name##_tile(int T, int wide, int64_t n, const uint16_t *x, const uint16_t *const *y16,  \
                        const float *const *y32, float *out, int64_t out_stride) {                   \
    switch (T * 2 + wide) { /* T and wide as constants: the tile's sums stay in registers */        \
    case 8: f16_tile(4, 0, n, x, y16, y32, out, out_stride); break;                                  \
    case 9: f16_tile(4, 1, n, x, y16, y32, out, out_stride); break;                                  \
    case 6: f16_tile(3, 0, n, x, y16, y32, out, out_stride); break;                                  \
    case 7: f16_tile(3, 1, n, x, y16, y32, out, out_stride); break;                                  \
    case 4: f16_tile(2, 0, n, x, y16, y32, out, out_stride); break;                                  \
    case 5: f16_tile(2, 1, n, x, y16, y32, out, out_stride); break;                                  \
    case 3: f16_tile(1, 1, n, x, y16, y32, out, out_stride); break;                                  \
    default: f16_tile(1, 0, n, x, y16, y32, out, out_stride); break;                                 \
    }                                                                                                \
}                                                                                                    \
void name(int64_t n, int64_t n_rows, int64_t n_tok, const void *w, size_t w_row_bytes,              \
          const void *act, size_t act_row_bytes, float *out, int64_t out_stride) {                   \
    float wide[RB_F16_WIDE_MAX];                                                                     \
    const int is_wide = n_tok * n <= RB_F16_WIDE_MAX;                                                \
    const uint8_t *a = act;                                                                          \
    if (is_wide)                                                                                     \
        for (int64_t t = 0; t < n_tok; t++)                                                          \
            widen((const uint16_t *)(const void *)(a + t * act_row_bytes), wide + t * n, n);         \
    for (int64_t r = 0; r < n_rows; r++) {                                                           \
        const uint16_t *x = (const uint16_t *)(const void *)((const uint8_t *)w + r * w_row_bytes); \
        for (int64_t t0 = 0; t0 < n_tok; t0 += 4) {                                                  \
            const int T = n_tok - t0 < 4 ? (int)(n_tok - t0) : 4;                                    \
            const uint16_t *y16[4];                                                                  \
            const float *y32[4];                                                                     \
            for (int t = 0; t < T; t++) {                                                            \
                y16[t] = (const uint16_t *)(const void *)(a + (t0 + t) * act_row_bytes);             \
                y32[t] = wide + (t0 + t) * n;                                                        \
            }                                                                                        \
            name##_tile(T, is_wide, n, x, y16, y32, out + t0 * out_stride + r, out_stride);          \
        }                                                                                            \
    }                                                                                                \
}

#endif
