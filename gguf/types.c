/* types.c - storage facts for every tensor type id GGUF defines.
 *
 * Sizes follow ggml's type_traits (ggml.c) and the block structs of
 * ggml-common.h: block_size elements are stored in type_size bytes.
 * Retired ids (4, 5: Q4_2/Q4_3; 31..33: Q4_0_4_4/4_8/8_8; 36..38:
 * IQ4_NL_4_4/4_8/8_8) have block_size 0, so the reader refuses them.
 */
#include "gguf.h"

static const struct rb_type_size type_sizes[RB_TYPE_COUNT] = {
    [RB_TYPE_F32]     = { "f32",      1,   4 },
    [RB_TYPE_F16]     = { "f16",      1,   2 },
    [RB_TYPE_Q4_0]    = { "q4_0",    32,  18 }, /* f16 d + 16 nibble bytes */
    [RB_TYPE_Q4_1]    = { "q4_1",    32,  20 }, /* f16 d, m + 16 */
    [RB_TYPE_Q5_0]    = { "q5_0",    32,  22 }, /* f16 d + 4 qh + 16 */
    [RB_TYPE_Q5_1]    = { "q5_1",    32,  24 }, /* f16 d, m + 4 qh + 16 */
    [RB_TYPE_Q8_0]    = { "q8_0",    32,  34 }, /* f16 d + 32 int8 */
    [RB_TYPE_Q8_1]    = { "q8_1",    32,  36 }, /* f16 d, s + 32 int8 */
    [RB_TYPE_Q2_K]    = { "q2_K",   256,  84 }, /* 16 scales + 64 qs + d, dmin */
    [RB_TYPE_Q3_K]    = { "q3_K",   256, 110 }, /* 32 hmask + 64 qs + 12 scales + d */
    [RB_TYPE_Q4_K]    = { "q4_K",   256, 144 }, /* d, dmin + 12 scales + 128 qs */
    [RB_TYPE_Q5_K]    = { "q5_K",   256, 176 }, /* d, dmin + 12 scales + 32 qh + 128 qs */
    [RB_TYPE_Q6_K]    = { "q6_K",   256, 210 }, /* 128 ql + 64 qh + 16 scales + d */
    [RB_TYPE_Q8_K]    = { "q8_K",   256, 292 }, /* f32 d + 256 int8 + 16 int16 bsums */
    [RB_TYPE_IQ2_XXS] = { "iq2_xxs", 256,  66 },
    [RB_TYPE_IQ2_XS]  = { "iq2_xs",  256,  74 },
    [RB_TYPE_IQ3_XXS] = { "iq3_xxs", 256,  98 },
    [RB_TYPE_IQ1_S]   = { "iq1_s",   256,  50 },
    [RB_TYPE_IQ4_NL]  = { "iq4_nl",   32,  18 },
    [RB_TYPE_IQ3_S]   = { "iq3_s",   256, 110 },
    [RB_TYPE_IQ2_S]   = { "iq2_s",   256,  82 },
    [RB_TYPE_IQ4_XS]  = { "iq4_xs",  256, 136 },
    [RB_TYPE_I8]      = { "i8",       1,   1 },
    [RB_TYPE_I16]     = { "i16",      1,   2 },
    [RB_TYPE_I32]     = { "i32",      1,   4 },
    [RB_TYPE_I64]     = { "i64",      1,   8 },
    [RB_TYPE_F64]     = { "f64",      1,   8 },
    [RB_TYPE_IQ1_M]   = { "iq1_m",   256,  56 },
    [RB_TYPE_BF16]    = { "bf16",     1,   2 },
    [RB_TYPE_TQ1_0]   = { "tq1_0",   256,  54 },
    [RB_TYPE_TQ2_0]   = { "tq2_0",   256,  66 },
    [RB_TYPE_MXFP4]   = { "mxfp4",    32,  17 }, /* e8m0 scale + 16 nibble bytes */
};

const struct rb_type_size *rb_type_size(uint32_t type) {
    if (type >= RB_TYPE_COUNT || type_sizes[type].block_size == 0)
        return NULL;
    return &type_sizes[type];
}

const char *rb_type_name(uint32_t type) {
    const struct rb_type_size *ts = rb_type_size(type);
    return ts ? ts->name : "?";
}

uint64_t rb_row_bytes(uint32_t type, int64_t n) {
    const struct rb_type_size *ts = rb_type_size(type);
    if (!ts || n < 0 || n % ts->block_size != 0)
        return 0;
    uint64_t blocks = (uint64_t)n / ts->block_size;
    if (blocks > UINT64_MAX / ts->type_size)
        return 0;
    return blocks * ts->type_size;
}

const char *rb_gguf_type_name(enum gguf_type t) {
    static const char *const names[GGUF_TYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "array", "u64", "i64", "f64",
    };
    if ((unsigned)t >= GGUF_TYPE_COUNT)
        return "?";
    return names[t];
}
