/* fp16.c - bfloat16 <-> float, bit-exact with ggml (the F16 conversion is
 * inline in quant.h, where the hot loops can inline it).
 *
 * bf16:  the top 16 bits of a float. float -> bf16 rounds to nearest, ties
 * to even; NaN stays a quiet NaN.
 */
#include "quant.h"

float rb_bf16_to_f32(rb_bf16 h) {
    return rb_bits_f32((uint32_t)h << 16);
}

rb_bf16 rb_f32_to_bf16(float f) {
    uint32_t x = rb_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: truncate, force quiet */
        return (rb_bf16)((x >> 16) | 64);
    return (rb_bf16)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}
