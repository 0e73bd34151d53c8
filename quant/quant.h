/* quant.h - what a block means: the block layouts GGUF stores, F16/BF16
 * conversion, and the traits table (dequantize, quantize, activation partner).
 *
 * Every layout below is byte-for-byte what ggml writes; sizes are asserted.
 * "d" is a block scale, "dmin"/"m" a block minimum, "qs" the low bits of the
 * quants, "qh" their high bits. QK_K = 256 elements form one super-block of
 * the K-quants.
 */
#ifndef RB_QUANT_H
#define RB_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "../gguf/gguf.h"

typedef uint16_t rb_f16;  /* IEEE half, stored bits */
typedef uint16_t rb_bf16; /* bfloat16, stored bits */

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

/* Q4_0: x[i] = d * (q[i] - 8). qs[j] holds q[j] in its low nibble and
 * q[j + 16] in its high nibble. */
typedef struct { rb_f16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");

/* Q4_1: x[i] = d * q[i] + m, nibbles as Q4_0. */
typedef struct { rb_f16 d; rb_f16 m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");

/* Q5_0: x[i] = d * (q[i] - 16), q 5 bits: low 4 as Q4_0's nibbles, bit 4 of
 * q[j] is bit j of the little-endian u32 qh. */
typedef struct { rb_f16 d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");

/* Q5_1: x[i] = d * q[i] + m, bits as Q5_0. */
typedef struct { rb_f16 d; rb_f16 m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");

/* Q8_0: x[i] = d * qs[i]. Also the activation format of Q4_0/Q5_0/Q8_0. */
typedef struct { rb_f16 d; int8_t qs[QK8_0]; } block_q8_0;
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");

/* Q8_1: as Q8_0 plus s = d * sum(qs) (activation format of Q4_1/Q5_1). */
typedef struct { rb_f16 d; rb_f16 s; int8_t qs[QK8_1]; } block_q8_1;
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");

/* Q2_K: 16 sub-blocks of 16. scales[j]: low nibble scale, high nibble min
 * (4 bits each); x = d * sc * q - dmin * m, q 2 bits. */
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; rb_f16 d; rb_f16 dmin; } block_q2_K;
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");

/* Q3_K: 16 sub-blocks of 16, 6-bit signed scales packed in 12 bytes;
 * q = 2 low bits (qs) + 1 high bit (hmask), x = d * (sc - 32) * (q - 4). */
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; rb_f16 d; } block_q3_K;
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");

/* Q3_K 6-bit scale j (0..15), stored biased by 32: low 4 bits in the nibbles
 * of bytes 0..7 (j < 8 low nibble, else high nibble of byte j - 8), high 2
 * bits in bytes 8..11 (byte 8 + j % 4, bit pair j / 4). Returns scale - 32. */
static inline int rb_get_scale_q3_K(int j, const uint8_t *s) {
    int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* Q4_K: 8 sub-blocks of 32, 6-bit scale and min each packed in 12 bytes;
 * x = d * sc * q - dmin * m, q 4 bits. */
typedef struct { rb_f16 d; rb_f16 dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");

/* Q4_K/Q5_K 6-bit scale j (0..7) and min of a 12-byte scales field. */
static inline void rb_get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Q5_K: as Q4_K with a fifth bit per quant in qh. */
typedef struct { rb_f16 d; rb_f16 dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");

/* Q6_K: 16 sub-blocks of 16 with int8 scales; q 6 bits = 4 (ql) + 2 (qh);
 * x = d * sc * (q - 32). */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; rb_f16 d; } block_q6_K;
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");

/* Q8_K: activation format of the K-quants. d is F32; bsums[j] = sum of
 * qs[16j .. 16j+15]. */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");

/* ---- F16 / BF16 ----
 *
 * half:  1 sign | 5 exponent (bias 15) | 10 mantissa; exponent 0 = subnormal
 *        (value = mantissa * 2^-24), exponent 31 = Inf/NaN.
 * The one F16 conversion of the code base, bit-exact with F16C / ggml in
 * both directions (round to nearest even; NaN stays NaN, made quiet, its
 * top payload bits kept). Inline and branch-free (every case computed,
 * then selected) so the loops that call them (dot products, the KV cache,
 * attention) vectorize at -O2 on the baseline ISA. */

static inline uint32_t rb_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float rb_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Exponent and mantissa go to the float's; rescaling by 2^-112 rebiases
 * the exponent (exact for normals, Inf and NaN). A subnormal is built as
 * 0.5 + m * 2^-24, then 0.5 is taken away (exact, and no float subnormal
 * is ever formed, so flush-to-zero modes cannot spoil it). */
static inline float rb_f16_to_f32(rb_f16 h) {
    uint32_t w = (uint32_t)h << 16, two_w = w + w; /* exponent and mantissa at the top */
    float normal = rb_bits_f32((two_w >> 4) + (0xe0u << 23)) * 0x1p-112f;
    float subnormal = rb_bits_f32((two_w >> 17) | (126u << 23)) - 0.5f;
    uint32_t bits = two_w < (1u << 27) ? rb_f32_bits(subnormal) : rb_f32_bits(normal);
    return rb_bits_f32(bits | (w & 0x80000000u));
}

/* Normal half: drop 13 mantissa bits with round-half-even and rebias the
 * exponent (a carry into the exponent is the right answer, up to Inf).
 * Subnormal half (|f| < 2^-14): a float add of 0.5 aligns the mantissa to
 * steps of 2^-24 and rounds it. */
static inline rb_f16 rb_f32_to_f16(float f) {
    uint32_t u = rb_f32_bits(f);
    uint32_t sign = u & 0x80000000u;
    u ^= sign;
    uint32_t odd = (u >> 13) & 1u;
    uint32_t normal = (u + 0xc8000fffu + odd) >> 13; /* 0xc8000000 = (15 - 127) << 23 */
    uint32_t subnormal = rb_f32_bits(rb_bits_f32(u) + 0.5f) - 0x3f000000u;
    uint32_t big = u > 0x7f800000u ? 0x7e00u | ((u >> 13) & 0x3ffu) : 0x7c00u; /* NaN : Inf */
    uint32_t h = u >= 0x47800000u ? big : (u < 0x38800000u ? subnormal : normal);
    return (rb_f16)(h | (sign >> 16));
}

float rb_bf16_to_f32(rb_bf16 h);
rb_bf16 rb_f32_to_bf16(float f); /* round to nearest even, NaN kept quiet */

/* ---- block quantizers ----
 * One 32-value block, by ggml's reference rule (quantize_row_q8_0_ref /
 * quantize_row_q4_0_ref), which the row quantizers of the traits table
 * apply block by block. off: NULL for exactly that rule, or 32 offsets in
 * (-1/2, 1/2) added to each scaled value before it is rounded (the KV
 * cache's replicated key blocks, attention/kv_rows.h). */
void rb_quantize_block_q8_0(const float *x, const float *off, block_q8_0 *y);
void rb_quantize_block_q4_0(const float *x, const float *off, block_q4_0 *y);

/* ---- traits ---- */
typedef void (*rb_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*rb_from_float_fn)(const float *src, void *dst, int64_t n);

struct rb_type_traits {
    const char *name;          /* same as rb_type_name */
    uint32_t block_size;
    uint32_t type_size;
    rb_to_float_fn to_float;   /* NULL if we cannot dequantize this type */
    rb_from_float_fn from_float; /* reference quantizer; NULL if none */
    uint32_t vec_dot_type;     /* activation partner: F32->F32, F16->F16, BF16->BF16,
                                  Q4_0/Q5_0/Q8_0->Q8_0, Q4_1/Q5_1->Q8_1, K-quants->Q8_K */
    int can_compute;           /* 1 when simd/scalar.c has a dot product for it */
};
/* Traits for every id < RB_TYPE_COUNT (zeroed entry for unknown ids); NULL if out of range. */
const struct rb_type_traits *rb_traits(uint32_t type);

#endif
