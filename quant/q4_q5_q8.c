/* q4_q5_q8.c - the 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
 * (and Q8_1, the activation partner of Q4_1/Q5_1): dequantize and the
 * reference quantizers.
 *
 * Glossary: d = block scale, m = block minimum, q = stored quant, x = value.
 * Nibble order (Q4_x, Q5_x): byte j holds element j in its low nibble and
 * element j + 16 in its high nibble. Q5_x's fifth bit of element j is bit j
 * of the little-endian u32 qh.
 *
 * The quantizers follow ggml's *_ref rounding exactly (the scale from the
 * element of largest magnitude, q = trunc(x / d + offset + 0.5)), which is
 * what llama.cpp writes when no importance matrix is given.
 */
#include <math.h>
#include <string.h>

#include "quant_impl.h"

/* trunc(t) clamped to [0, hi]; NaN gives 0 (never converts an
 * out-of-range float to int, which would be undefined). */
static int trunc_clamp(float t, int hi) {
    if (!(t > 0.0f)) return 0;
    if (t >= (float)hi) return hi;
    return (int)t;
}

static uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

/* ---- dequantize ---- */

void rb_dequantize_row_q4_0(const void *src, float *dst, int64_t n) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++, dst += QK4_0) {
        float d = rb_f16_to_f32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[j] = ((b[i].qs[j] & 0xf) - 8) * d;
            dst[j + QK4_0 / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void rb_dequantize_row_q4_1(const void *src, float *dst, int64_t n) {
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK4_1; i++, dst += QK4_1) {
        float d = rb_f16_to_f32(b[i].d), m = rb_f16_to_f32(b[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            dst[j] = (b[i].qs[j] & 0xf) * d + m;
            dst[j + QK4_1 / 2] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

void rb_dequantize_row_q5_0(const void *src, float *dst, int64_t n) {
    const block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK5_0; i++, dst += QK5_0) {
        float d = rb_f16_to_f32(b[i].d);
        uint32_t qh = load_u32le(b[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            int lo = (b[i].qs[j] & 0xf) | (int)((qh >> j) & 1) << 4;
            int hi = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            dst[j] = (lo - 16) * d;
            dst[j + QK5_0 / 2] = (hi - 16) * d;
        }
    }
}

void rb_dequantize_row_q5_1(const void *src, float *dst, int64_t n) {
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK5_1; i++, dst += QK5_1) {
        float d = rb_f16_to_f32(b[i].d), m = rb_f16_to_f32(b[i].m);
        uint32_t qh = load_u32le(b[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            int lo = (b[i].qs[j] & 0xf) | (int)((qh >> j) & 1) << 4;
            int hi = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            dst[j] = lo * d + m;
            dst[j + QK5_1 / 2] = hi * d + m;
        }
    }
}

void rb_dequantize_row_q8_0(const void *src, float *dst, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++, dst += QK8_0) {
        float d = rb_f16_to_f32(b[i].d);
        for (int j = 0; j < QK8_0; j++) dst[j] = b[i].qs[j] * d;
    }
}

void rb_dequantize_row_q8_1(const void *src, float *dst, int64_t n) {
    const block_q8_1 *b = src;
    for (int64_t i = 0; i < n / QK8_1; i++, dst += QK8_1) {
        float d = rb_f16_to_f32(b[i].d);
        for (int j = 0; j < QK8_1; j++) dst[j] = b[i].qs[j] * d;
    }
}

/* ---- quantize ---- */

/* The element of largest magnitude, with its sign (first one on ties). */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
    return max;
}

static void min_max(const float *x, int n, float *min, float *max) {
    *min = INFINITY; *max = -INFINITY;
    for (int j = 0; j < n; j++) {
        if (x[j] < *min) *min = x[j];
        if (x[j] > *max) *max = x[j];
    }
}

/* Q4_0: d = max / -8 maps the extreme element to q = 0 (value -8 d), so the
 * other side gets the full 7 steps. off (see quant.h) shifts each rounding. */
void rb_quantize_block_q4_0(const float *x, const float *off, block_q4_0 *y) {
    float d = signed_absmax(x, QK4_0) / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = rb_f32_to_f16(d);
    for (int j = 0; j < QK4_0 / 2; j++) {
        int lo = trunc_clamp(x[j] * id + 8.5f + (off ? off[j] : 0.0f), 15);
        int hi = trunc_clamp(x[j + QK4_0 / 2] * id + 8.5f + (off ? off[j + QK4_0 / 2] : 0.0f), 15);
        y->qs[j] = (uint8_t)(lo | hi << 4);
    }
}

void rb_quantize_row_q4_0(const float *x, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK4_0; i++) rb_quantize_block_q4_0(x + i * QK4_0, NULL, &b[i]);
}

void rb_quantize_row_q4_1(const float *x, void *dst, int64_t n) {
    block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float min, max;
        min_max(x, QK4_1, &min, &max);
        float d = (max - min) / 15.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = rb_f32_to_f16(d);
        b[i].m = rb_f32_to_f16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            int lo = trunc_clamp((x[j] - min) * id + 0.5f, 15);
            int hi = trunc_clamp((x[j + QK4_1 / 2] - min) * id + 0.5f, 15);
            b[i].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

void rb_quantize_row_q5_0(const float *x, void *dst, int64_t n) {
    block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        float d = signed_absmax(x, QK5_0) / -16.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = rb_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int lo = trunc_clamp(x[j] * id + 16.5f, 31);
            int hi = trunc_clamp(x[j + QK5_0 / 2] * id + 16.5f, 31);
            b[i].qs[j] = (uint8_t)((lo & 0xf) | (hi & 0xf) << 4);
            qh |= (uint32_t)(lo >> 4) << j | (uint32_t)(hi >> 4) << (j + 16);
        }
        store_u32le(b[i].qh, qh);
    }
}

void rb_quantize_row_q5_1(const float *x, void *dst, int64_t n) {
    block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        float min, max;
        min_max(x, QK5_1, &min, &max);
        float d = (max - min) / 31.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = rb_f32_to_f16(d);
        b[i].m = rb_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int lo = trunc_clamp((x[j] - min) * id + 0.5f, 31);
            int hi = trunc_clamp((x[j + QK5_1 / 2] - min) * id + 0.5f, 31);
            b[i].qs[j] = (uint8_t)((lo & 0xf) | (hi & 0xf) << 4);
            qh |= (uint32_t)(lo >> 4) << j | (uint32_t)(hi >> 4) << (j + 16);
        }
        store_u32le(b[i].qh, qh);
    }
}

/* Q8_0 weights: d = amax / 127, q = round(x / d) half away from zero (ggml's
 * quantize_row_q8_0_ref). The activation quantizer in simd/scalar.c rounds
 * half to even instead, as ggml's SIMD activation path does. */
void rb_quantize_block_q8_0(const float *x, const float *off, block_q8_0 *y) {
    float amax = fabsf(signed_absmax(x, QK8_0));
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = rb_f32_to_f16(d);
    for (int j = 0; j < QK8_0; j++) {
        float v = roundf(x[j] * id + (off ? off[j] : 0.0f));
        y->qs[j] = (int8_t)(v >= 127.0f ? 127 : v <= -127.0f ? -127 : v == v ? (int)v : 0);
    }
}

void rb_quantize_row_q8_0(const float *x, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++) rb_quantize_block_q8_0(x + i * QK8_0, NULL, &b[i]);
}
