/* kquants_quant.c - reference quantizers for Q4_K, Q5_K and Q6_K.
 *
 * Two steps per super-block of 256, as in ggml's reference quantizer:
 *  1. fit each sub-block on its own: a float scale (and for Q4_K/Q5_K a
 *     minimum) chosen by trying a small grid of candidate scales, rounding
 *     every value for each candidate, and keeping the weighted least-squares
 *     fit with the smallest weighted error;
 *  2. quantize the sub-block scales (and mins) to 6 or 8 bits against one F16
 *     super-block scale, then re-round every value with the scale it will
 *     really be decoded with.
 * Bit layouts are drawn in kquants.c.
 */
#include <math.h>
#include <string.h>

#include "quant_impl.h"
#include "kquants_fit.h"

/* ---- Q4_K / Q5_K: 8 sub-blocks of 32, x ~ d*sc*q - dmin*m ---- */

/* Fit all 8 sub-blocks of x (256 values) with q in [0, nmax]; writes scales
 * and mins (as positive numbers subtracted). */
static void fit_subblocks_32(const float *x, int nmax, float rmin, int nstep, float *scales, float *mins) {
    float weights[32];
    uint8_t L[32];
    for (int j = 0; j < QK_K / 32; j++) {
        const float *xs = x + 32 * j;
        /* weight large values more, but never zero: rms + |x| */
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        float rms = sqrtf(sum_x2 / 32.0f);
        for (int l = 0; l < 32; l++) weights[l] = rms + fabsf(xs[l]);
        scales[j] = rb_fit_scale_min(32, nmax, xs, weights, L, &mins[j], rmin, 0.1f, nstep, 0);
    }
}

/* Quantize 8 (scale, min) pairs to 6 bits each under super-block scales
 * d = max_scale / 63, dmin = max_min / 63, packed as rb_get_scale_min_k4
 * reads them. */
static void pack_scales_k4(const float *scales, const float *mins, uint8_t *packed, rb_f16 *d, rb_f16 *dmin) {
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    memset(packed, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        int ls = rb_round_clamp(inv_scale * scales[j], 0, 63);
        int lm = rb_round_clamp(inv_min * mins[j], 0, 63);
        if (j < 4) {
            packed[j] = (uint8_t)ls;
            packed[j + 4] = (uint8_t)lm;
        } else { /* low 4 bits in bytes 8..11, high 2 bits on top of bytes 0..7 */
            packed[j + 4] = (uint8_t)((ls & 0xf) | (lm & 0xf) << 4);
            packed[j - 4] |= (uint8_t)((ls >> 4) << 6);
            packed[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d = rb_f32_to_f16(max_scale / 63.0f);
    *dmin = rb_f32_to_f16(max_min / 63.0f);
}

/* Squared error of 32 values rounded with step d and offset dm, q in [0, nmax]. */
static float subblock_error(const float *x, float d, float dm, int nmax, uint8_t *L) {
    float err = 0.0f;
    for (int l = 0; l < 32; l++) {
        int q = d != 0.0f ? rb_round_clamp((x[l] + dm) / d, 0, nmax) : 0;
        if (L) L[l] = (uint8_t)q;
        float diff = d * q - dm - x[l];
        err += diff * diff;
    }
    return err;
}

static void set_scale_min_k4(int j, uint8_t *packed, int ls, int lm) {
    if (j < 4) {
        packed[j] = (uint8_t)((packed[j] & 0xc0) | ls);
        packed[j + 4] = (uint8_t)((packed[j + 4] & 0xc0) | lm);
    } else {
        packed[j + 4] = (uint8_t)((ls & 0xf) | (lm & 0xf) << 4);
        packed[j - 4] = (uint8_t)((packed[j - 4] & 0x3f) | (ls >> 4) << 6);
        packed[j] = (uint8_t)((packed[j] & 0x3f) | (lm >> 4) << 6);
    }
}

/* Final quants of 256 values with the decoded 6-bit scales: q in [0, nmax].
 * Rounding the fitted scale and min to 6 bits moves them off their optimum;
 * trying the neighbouring 6-bit codes (+-1 each) and keeping the one with
 * the smallest squared error wins back part of that loss (this step is ours,
 * not ggml's; it only ever lowers the error). */
static void requantize_k4(const float *x, uint8_t *packed, rb_f16 d16, rb_f16 dmin16, int nmax, uint8_t *L) {
    float d = rb_f16_to_f32(d16), dmin = rb_f16_to_f32(dmin16);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        rb_get_scale_min_k4(j, packed, &sc, &m);
        const float *xs = x + 32 * j;
        int best_ls = sc, best_lm = m;
        float best = subblock_error(xs, d * sc, dmin * m, nmax, NULL);
        for (int ls = sc - 1; ls <= sc + 1; ls++)
            for (int lm = m - 1; lm <= m + 1; lm++) {
                if (ls < 0 || ls > 63 || lm < 0 || lm > 63 || (ls == sc && lm == m)) continue;
                float err = subblock_error(xs, d * ls, dmin * lm, nmax, NULL);
                if (err < best) { best = err; best_ls = ls; best_lm = lm; }
            }
        set_scale_min_k4(j, packed, best_ls, best_lm);
        subblock_error(xs, d * best_ls, dmin * best_lm, nmax, L + 32 * j);
    }
}

void rb_quantize_row_q4_K(const float *x, void *dst, int64_t n) {
    block_q4_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float scales[8], mins[8];
        uint8_t L[QK_K];
        fit_subblocks_32(x, 15, -1.0f, 20, scales, mins);
        pack_scales_k4(scales, mins, b[i].scales, &b[i].d, &b[i].dmin);
        requantize_k4(x, b[i].scales, b[i].d, b[i].dmin, 15, L);
        /* each 64 values: first 32 in the low nibbles, next 32 in the high */
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; l++)
                b[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 4);
    }
}

void rb_quantize_row_q5_K(const float *x, void *dst, int64_t n) {
    block_q5_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float scales[8], mins[8];
        uint8_t L[QK_K];
        fit_subblocks_32(x, 31, -0.5f, 15, scales, mins);
        pack_scales_k4(scales, mins, b[i].scales, &b[i].d, &b[i].dmin);
        requantize_k4(x, b[i].scales, b[i].d, b[i].dmin, 31, L);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; l++) {
                int lo = L[j + l], hi = L[j + l + 32];
                b[i].qs[j / 2 + l] = (uint8_t)((lo & 0xf) | (hi & 0xf) << 4);
                /* fifth bit of value v at bit v / 32 of qh[v % 32] */
                b[i].qh[l] |= (uint8_t)((lo >> 4) << (j / 32) | (hi >> 4) << (j / 32 + 1));
            }
    }
}

/* ---- Q6_K: 16 sub-blocks of 16, x ~ d*sc*(q - 32), sc int8 ---- */

/* Squared error of 16 values rounded with step d to q in [-32, 31]; the
 * quants (+32) go to Q when given. */
static float q6_subblock_error(const float *x, float d, uint8_t *Q) {
    float err = 0.0f;
    for (int l = 0; l < 16; l++) {
        int q = d != 0.0f ? rb_round_clamp(x[l] / d, -32, 31) : 0;
        if (Q) Q[l] = (uint8_t)(q + 32);
        float diff = d * q - x[l];
        err += diff * diff;
    }
    return err;
}

void rb_quantize_row_q6_K(const float *x, void *dst, int64_t n) {
    block_q6_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float scales[QK_K / 16];
        int8_t L[QK_K]; /* signed quants in [-32, 31] */
        float max_scale = 0.0f, max_abs = 0.0f;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = rb_fit_scale_sym(16, 32, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > max_abs) { max_abs = fabsf(scales[j]); max_scale = scales[j]; }
        }
        memset(&b[i], 0, sizeof b[i]);
        if (max_abs < RB_GROUP_MAX_EPS) { /* all (near) zero: d = 0 decodes to 0 */
            continue;
        }
        /* the sub-block scale of largest magnitude becomes -128 */
        float iscale = -128.0f / max_scale;
        b[i].d = rb_f32_to_f16(1.0f / iscale);
        for (int j = 0; j < QK_K / 16; j++) b[i].scales[j] = (int8_t)rb_round_clamp(iscale * scales[j], -128, 127);
        uint8_t Q[QK_K]; /* unsigned 0..63 */
        float d = rb_f16_to_f32(b[i].d);
        for (int j = 0; j < QK_K / 16; j++) {
            /* as for Q4_K: the neighbouring 8-bit scale codes may round better */
            int best_sc = b[i].scales[j];
            float best = q6_subblock_error(x + 16 * j, d * best_sc, NULL);
            for (int sc = b[i].scales[j] - 1; sc <= b[i].scales[j] + 1; sc += 2) {
                if (sc < -128 || sc > 127) continue;
                float err = q6_subblock_error(x + 16 * j, d * sc, NULL);
                if (err < best) { best = err; best_sc = sc; }
            }
            b[i].scales[j] = (int8_t)best_sc;
            q6_subblock_error(x + 16 * j, d * best_sc, Q + 16 * j);
        }
        for (int j = 0; j < QK_K; j += 128) {
            uint8_t *ql = b[i].ql + j / 2, *qh = b[i].qh + j / 4;
            for (int l = 0; l < 32; l++) {
                const uint8_t *q = Q + j + l;
                ql[l] = (uint8_t)((q[0] & 0xf) | (q[64] & 0xf) << 4);
                ql[l + 32] = (uint8_t)((q[32] & 0xf) | (q[96] & 0xf) << 4);
                qh[l] = (uint8_t)((q[0] >> 4) | (q[32] >> 4) << 2 | (q[64] >> 4) << 4 | (q[96] >> 4) << 6);
            }
        }
    }
}
