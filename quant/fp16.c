/* fp16.c - IEEE half and bfloat16 <-> float, bit-exact with F16C / ggml.
 *
 * half:  1 sign | 5 exponent (bias 15) | 10 mantissa; exponent 0 = subnormal
 *        (value = mantissa * 2^-24), exponent 31 = Inf/NaN.
 * bf16:  the top 16 bits of a float.
 * Both directions round to nearest, ties to even; NaN stays a quiet NaN.
 */
#include <math.h>
#include <string.h>

#include "quant.h"

static float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Branch-free (this is on the hot path of every F16 dot product): place the
 * half's exponent and mantissa in a float and rescale by 2^-112 (exact for
 * normals, Inf and NaN); subnormals are built as 0.5 + m * 2^-24 ... minus
 * 0.5, also exact. */
float rb_f16_to_f32(rb_f16 h) {
    uint32_t w = (uint32_t)h << 16;
    uint32_t sign = w & 0x80000000u;
    uint32_t two_w = w + w; /* exponent and mantissa at the top, sign dropped */
    float normal = f32_from_bits((two_w >> 4) + (0xe0u << 23)) * 0x1p-112f;
    float subnormal = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    uint32_t bits = two_w < (1u << 27) ? f32_bits(subnormal) : f32_bits(normal);
    return f32_from_bits(sign | bits);
}

rb_f16 rb_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) { /* Inf, or NaN made quiet with the top payload bits */
        uint16_t nan = ax > 0x7f800000u ? (uint16_t)(0x200 | ((ax >> 13) & 0x3ff)) : 0;
        return (rb_f16)(sign | 0x7c00 | nan);
    }
    if (ax >= 0x477ff000u) /* >= 65520 rounds to Inf */
        return (rb_f16)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* below 2^-14: a multiple of 2^-24 after rounding */
        float a = f32_from_bits(ax);
        return (rb_f16)(sign | (uint16_t)nearbyintf(a * 0x1p24f));
    }
    /* normal: rebias the exponent (127 -> 15) and round the 13 dropped bits
     * to nearest even; a carry into the exponent is the right answer. */
    uint32_t odd = (ax >> 13) & 1;
    return (rb_f16)(sign | ((ax - 0x38000000u + 0xfffu + odd) >> 13));
}

float rb_bf16_to_f32(rb_bf16 h) {
    return f32_from_bits((uint32_t)h << 16);
}

rb_bf16 rb_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: truncate, force quiet */
        return (rb_bf16)((x >> 16) | 64);
    return (rb_bf16)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}
