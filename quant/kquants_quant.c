/* kquants_quant.c - reference quantizers for Q4_K, Q5_K and Q6_K.
 *
 * Two steps per super-block of 256, as in ggml's reference quantizer (and
 * to the bit: `rbee quantize` writes the files llama-quantize writes without
 * an importance matrix, which test_quantize checks):
 *  1. fit each sub-block on its own: a float scale (and for Q4_K/Q5_K a
 *     minimum) chosen by trying a small grid of candidate scales, rounding
 *     every value for each candidate, and keeping the weighted least-squares
 *     fit with the smallest weighted error;
 *  2. quantize the sub-block scales (and mins) to 6 or 8 bits against one F16
 *     super-block scale, then re-round every value with the scale it will
 *     really be decoded with. A sub-block whose decoded scale is 0 keeps
 *     the quants of its fit (they decode to 0 or the min all the same).
 * Bit layouts are drawn in kquants.c.
 */
#include <math.h>
#include <string.h>

#include "quant_impl.h"
#include "kquants_fit.h"

/* ---- Q4_K / Q5_K: 8 sub-blocks of 32, x ~ d*sc*q - dmin*m ---- */

/* Fit all 8 sub-blocks of x (256 values) with q in [0, nmax]; writes scales,
 * mins (as positive numbers subtracted) and the fitted quants L. */
static void fit_subblocks_32(const float *x, int nmax, float rmin, int nstep, float *scales, float *mins,
                             uint8_t *L) {
    float weights[32];
    for (int j = 0; j < QK_K / 32; j++) {
        const float *xs = x + 32 * j;
        /* weight large values more, but never zero: rms + |x| */
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        float rms = sqrtf(sum_x2 / 32.0f);
        for (int l = 0; l < 32; l++) weights[l] = rms + fabsf(xs[l]);
        scales[j] = rb_fit_scale_min(32, nmax, xs, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep, 0);
    }
}

/* A 6-bit code for v: rounded, at most 63. Fits give v >= 0; for any other
 * v the reference's steps are kept too (the rounded value modulo 256, then
 * the cap). */
static uint8_t code6(float v) {
    uint8_t c = (uint8_t)rb_round_clamp(v, -4194303, 4194303);
    return c < 63 ? c : 63;
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
        uint8_t ls = code6(inv_scale * scales[j]), lm = code6(inv_min * mins[j]);
        if (j < 4) {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else { /* low 4 bits in bytes 8..11, high 2 bits on top of bytes 0..7 */
            packed[j + 4] = (uint8_t)((ls & 0xf) | (lm & 0xf) << 4);
            packed[j - 4] |= (uint8_t)((ls >> 4) << 6);
            packed[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d = rb_f32_to_f16(max_scale / 63.0f);
    *dmin = rb_f32_to_f16(max_min / 63.0f);
}

/* Final quants of 256 values with the decoded 6-bit scales: q in [0, nmax]. */
static void requantize_k4(const float *x, const uint8_t *packed, rb_f16 d16, rb_f16 dmin16, int nmax, uint8_t *L) {
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        rb_get_scale_min_k4(j, packed, &sc, &m);
        const float d = rb_f16_to_f32(d16) * sc;
        if (d == 0.0f) continue;
        const float dm = rb_f16_to_f32(dmin16) * m;
        for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)rb_round_clamp((x[32 * j + l] + dm) / d, 0, nmax);
    }
}

void rb_quantize_row_q4_K(const float *x, void *dst, int64_t n) {
    block_q4_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float scales[8], mins[8];
        uint8_t L[QK_K];
        fit_subblocks_32(x, 15, -1.0f, 20, scales, mins, L);
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
        fit_subblocks_32(x, 31, -0.5f, 15, scales, mins, L);
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
        for (int j = 0; j < QK_K / 16; j++) {
            const float d = rb_f16_to_f32(b[i].d) * b[i].scales[j];
            if (d == 0.0f) continue; /* the fit's quants stay */
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)rb_round_clamp(x[16 * j + l] / d, -32, 31);
        }
        uint8_t Q[QK_K]; /* unsigned 0..63 */
        for (int j = 0; j < QK_K; j++) Q[j] = (uint8_t)(L[j] + 32);
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
