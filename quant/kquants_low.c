/* kquants_low.c - reference quantizers for the 2- and 3-bit K-quants.
 * Same two steps as kquants_quant.c: fit each sub-block of 16, then store
 * the sub-block scales in 4 (Q2_K) or 6 (Q3_K) bits under one F16 scale and
 * re-round the values with the scales as decoded. Layouts: kquants.c. */
#include <math.h>
#include <string.h>

#include "quant_impl.h"
#include "kquants_fit.h"

/* 2-bit quants of 256 values into 64 bytes: in each half of 128 values,
 * byte l holds values l, l+32, l+64, l+96 at bit shifts 0, 2, 4, 6. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | L[j + l + 32] << 2 | L[j + l + 64] << 4 | L[j + l + 96] << 6);
}

void rb_quantize_row_q2_K(const float *x, void *dst, int64_t n) {
    block_q2_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        uint8_t L[QK_K];
        float weights[16], scales[16], mins[16], max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            /* with only 4 levels the absolute error fits better than squared */
            scales[j] = rb_fit_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        /* 4-bit sub-block scale (low nibble) and min (high nibble) */
        float is = max_scale > 0.0f ? 15.0f / max_scale : 0.0f;
        float im = max_min > 0.0f ? 15.0f / max_min : 0.0f;
        for (int j = 0; j < 16; j++)
            b[i].scales[j] = (uint8_t)(rb_round_clamp(is * scales[j], 0, 15) | rb_round_clamp(im * mins[j], 0, 15) << 4);
        b[i].d = rb_f32_to_f16(max_scale / 15.0f);
        b[i].dmin = rb_f32_to_f16(max_min / 15.0f);
        for (int j = 0; j < 16; j++) {
            float d = rb_f16_to_f32(b[i].d) * (b[i].scales[j] & 0xf);
            float dm = rb_f16_to_f32(b[i].dmin) * (b[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = d != 0.0f ? (uint8_t)rb_round_clamp((x[16 * j + l] + dm) / d, 0, 3) : 0;
        }
        pack_2bit(L, b[i].qs);
    }
}

void rb_quantize_row_q3_K(const float *x, void *dst, int64_t n) {
    block_q3_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        int8_t Ls[QK_K];
        uint8_t L[QK_K];
        float scales[16], max_scale = 0.0f, amax = 0.0f;
        for (int j = 0; j < 16; j++) {
            scales[j] = rb_fit_scale_q3(16, 4, x + 16 * j, Ls + 16 * j);
            if (fabsf(scales[j]) > amax) { amax = fabsf(scales[j]); max_scale = scales[j]; }
        }
        memset(&b[i], 0, sizeof b[i]);
        if (max_scale != 0.0f) {
            /* 6-bit signed scales, biased by 32; the largest becomes -32 */
            float iscale = -32.0f / max_scale;
            for (int j = 0; j < 16; j++) {
                int l = rb_round_clamp(iscale * scales[j], -32, 31) + 32;
                if (j < 8) b[i].scales[j] = (uint8_t)(l & 0xf);
                else b[i].scales[j - 8] |= (uint8_t)((l & 0xf) << 4);
                b[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            b[i].d = rb_f32_to_f16(1.0f / iscale);
        }
        for (int j = 0; j < 16; j++) {
            float d = rb_f16_to_f32(b[i].d) * rb_get_scale_q3_K(j, b[i].scales);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = (uint8_t)(d != 0.0f ? rb_round_clamp(x[16 * j + l] / d, -4, 3) + 4 : 4);
        }
        /* bit 2 of value v goes to bit v / 32 of hmask[v % 32] */
        for (int v = 0; v < QK_K; v++) {
            if (L[v] > 3) {
                b[i].hmask[v % 32] |= (uint8_t)(1 << (v / 32));
                L[v] -= 4;
            }
        }
        pack_2bit(L, b[i].qs);
    }
}
