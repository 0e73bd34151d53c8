/* traits.c - the type-traits table: for each tensor type its block size and
 * bytes, how to dequantize and quantize a row, and which activation format
 * its dot product pairs with (ggml's vec_dot_type). */
#include <string.h>

#include "quant_impl.h"

static void f32_to_float(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f32_from_float(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f16_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src; /* F16 data in a mapping may be unaligned */
    for (int64_t i = 0; i < n; i++) {
        rb_f16 h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = rb_f16_to_f32(h);
    }
}

static void f16_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        rb_f16 h = rb_f32_to_f16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        rb_bf16 h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = rb_bf16_to_f32(h);
    }
}

static void bf16_from_float(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        rb_bf16 h = rb_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

#define T(id, nm, bs, ts, to, from, dot, comp) \
    [id] = { .name = nm, .block_size = bs, .type_size = ts, .to_float = to, \
             .from_float = from, .vec_dot_type = dot, .can_compute = comp }

static const struct rb_type_traits traits[RB_TYPE_COUNT] = {
    T(RB_TYPE_F32,  "f32",  1, 4, f32_to_float, f32_from_float, RB_TYPE_F32, 1),
    T(RB_TYPE_F16,  "f16",  1, 2, f16_to_float, f16_from_float, RB_TYPE_F16, 1),
    T(RB_TYPE_BF16, "bf16", 1, 2, bf16_to_float, bf16_from_float, RB_TYPE_BF16, 1),
    T(RB_TYPE_Q4_0, "q4_0", QK4_0, sizeof(block_q4_0), rb_dequantize_row_q4_0, rb_quantize_row_q4_0, RB_TYPE_Q8_0, 1),
    T(RB_TYPE_Q4_1, "q4_1", QK4_1, sizeof(block_q4_1), rb_dequantize_row_q4_1, rb_quantize_row_q4_1, RB_TYPE_Q8_1, 1),
    T(RB_TYPE_Q5_0, "q5_0", QK5_0, sizeof(block_q5_0), rb_dequantize_row_q5_0, rb_quantize_row_q5_0, RB_TYPE_Q8_0, 1),
    T(RB_TYPE_Q5_1, "q5_1", QK5_1, sizeof(block_q5_1), rb_dequantize_row_q5_1, rb_quantize_row_q5_1, RB_TYPE_Q8_1, 1),
    T(RB_TYPE_Q8_0, "q8_0", QK8_0, sizeof(block_q8_0), rb_dequantize_row_q8_0, rb_quantize_row_q8_0, RB_TYPE_Q8_0, 1),
    /* activation-only formats: quantized by the kernel table's quantize_act */
    T(RB_TYPE_Q8_1, "q8_1", QK8_1, sizeof(block_q8_1), rb_dequantize_row_q8_1, NULL, RB_TYPE_Q8_1, 0),
    T(RB_TYPE_Q8_K, "q8_K", QK_K, sizeof(block_q8_K), rb_dequantize_row_q8_K, NULL, RB_TYPE_Q8_K, 0),
    T(RB_TYPE_Q2_K, "q2_K", QK_K, sizeof(block_q2_K), rb_dequantize_row_q2_K, rb_quantize_row_q2_K, RB_TYPE_Q8_K, 1),
    T(RB_TYPE_Q3_K, "q3_K", QK_K, sizeof(block_q3_K), rb_dequantize_row_q3_K, rb_quantize_row_q3_K, RB_TYPE_Q8_K, 1),
    T(RB_TYPE_Q4_K, "q4_K", QK_K, sizeof(block_q4_K), rb_dequantize_row_q4_K, rb_quantize_row_q4_K, RB_TYPE_Q8_K, 1),
    T(RB_TYPE_Q5_K, "q5_K", QK_K, sizeof(block_q5_K), rb_dequantize_row_q5_K, rb_quantize_row_q5_K, RB_TYPE_Q8_K, 1),
    T(RB_TYPE_Q6_K, "q6_K", QK_K, sizeof(block_q6_K), rb_dequantize_row_q6_K, rb_quantize_row_q6_K, RB_TYPE_Q8_K, 1),
};

const struct rb_type_traits *rb_traits(uint32_t type) {
    return type < RB_TYPE_COUNT ? &traits[type] : NULL;
}
