/* test_quant.c - block formats, F16/BF16, the traits table and the scalar
 * reference kernels.
 *
 *  - F16/BF16 conversion: known bit patterns, ties to even, subnormals,
 *    overflow, NaN, and the full 65536-value round trip.
 *  - Bit layouts: hand-packed blocks with known values, and every K-quant
 *    dequantizer against a second, independently written (ggml-style loop)
 *    decoder on random bytes.
 *  - vec_dot of every weight type against dequantize-then-double-dot on
 *    random data; tolerance stated per test.
 *  - Activation quantizers: rounding, scale conventions, bsums, zero blocks.
 *  (The weight quantizers are tested in test_quantize.c.)
 *  - Float helpers against closed forms.
 */
#include <stdint.h>

#include "test.h"
#include "../quant/quant.h"
#include "../simd/kernels.h"
#include "../simd/scalar.h"

/* ------------------------------------------------------------- helpers */

static uint64_t rng_state = 1;
static void rng_seed(uint64_t s) { rng_state = s * 0x9e3779b97f4a7c15ull + 1; }
static uint64_t rng_u64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float rng_uniform(void) { /* [-1, 1) */
    return (float)((rng_u64() >> 40) * (1.0 / (1ull << 23)) - 1.0);
}
static float rng_gauss(void) { /* sum of uniforms: good enough, bounded tails */
    float s = 0.0f;
    for (int i = 0; i < 6; i++) s += rng_uniform();
    return s * 0.7071f;
}
static void fill_bytes(void *p, size_t n) {
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(rng_u64() >> 32);
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float f32_from(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* A sane F16 scale in [lo, 2 lo). */
static rb_f16 rand_scale(float lo) { return rb_f32_to_f16(lo * (1.0f + 0.5f * (rng_uniform() + 1.0f))); }

static float *dequant(uint32_t type, const void *src, int64_t n) {
    float *out = malloc((size_t)n * sizeof(float));
    rb_traits(type)->to_float(src, out, n);
    return out;
}

static size_t row_size(uint32_t type, int64_t n) {
    const struct rb_type_traits *t = rb_traits(type);
    return (size_t)(n / t->block_size) * t->type_size;
}

/* Random blocks of a weight type with sane F16 scale fields (random bytes
 * elsewhere), so every bit of qs/qh/scales is exercised. */
static void *random_weights(uint32_t type, int64_t n) {
    size_t bytes = row_size(type, n);
    uint8_t *p = malloc(bytes);
    fill_bytes(p, bytes);
    int64_t nb = n / rb_traits(type)->block_size;
    for (int64_t i = 0; i < nb; i++) {
        switch (type) {
        case RB_TYPE_F32: ((float *)p)[i] = rng_uniform(); break;
        case RB_TYPE_F16: ((rb_f16 *)p)[i] = rb_f32_to_f16(rng_uniform()); break;
        case RB_TYPE_BF16: ((rb_bf16 *)p)[i] = rb_f32_to_bf16(rng_uniform()); break;
        case RB_TYPE_Q4_0: ((block_q4_0 *)p)[i].d = rand_scale(0.01f); break;
        case RB_TYPE_Q4_1: ((block_q4_1 *)p)[i].d = rand_scale(0.01f); ((block_q4_1 *)p)[i].m = rb_f32_to_f16(-0.08f * (rng_uniform() + 1.5f)); break;
        case RB_TYPE_Q5_0: ((block_q5_0 *)p)[i].d = rand_scale(0.005f); break;
        case RB_TYPE_Q5_1: ((block_q5_1 *)p)[i].d = rand_scale(0.005f); ((block_q5_1 *)p)[i].m = rb_f32_to_f16(-0.08f * (rng_uniform() + 1.5f)); break;
        case RB_TYPE_Q8_0: ((block_q8_0 *)p)[i].d = rand_scale(0.001f); break;
        case RB_TYPE_Q2_K: ((block_q2_K *)p)[i].d = rand_scale(0.002f); ((block_q2_K *)p)[i].dmin = rand_scale(0.001f); break;
        case RB_TYPE_Q3_K: ((block_q3_K *)p)[i].d = rand_scale(0.001f); break;
        case RB_TYPE_Q4_K: ((block_q4_K *)p)[i].d = rand_scale(0.0005f); ((block_q4_K *)p)[i].dmin = rand_scale(0.0005f); break;
        case RB_TYPE_Q5_K: ((block_q5_K *)p)[i].d = rand_scale(0.0003f); ((block_q5_K *)p)[i].dmin = rand_scale(0.0005f); break;
        case RB_TYPE_Q6_K: ((block_q6_K *)p)[i].d = rand_scale(0.0001f); break;
        default: break;
        }
    }
    return p;
}

/* ------------------------------------------------------------- F16 / BF16 */

TEST(f16_known_values) {
    CHECK_EQ_INT(rb_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(rb_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(rb_f32_to_f16(0.0f), 0x0000);
    CHECK_EQ_INT(rb_f32_to_f16(-0.0f), 0x8000);
    CHECK_EQ_INT(rb_f32_to_f16(65504.0f), 0x7bff);        /* largest finite */
    CHECK_EQ_INT(rb_f32_to_f16(65519.0f), 0x7bff);        /* rounds down */
    CHECK_EQ_INT(rb_f32_to_f16(65520.0f), 0x7c00);        /* tie goes to Inf */
    CHECK_EQ_INT(rb_f32_to_f16(1e10f), 0x7c00);
    CHECK_EQ_INT(rb_f32_to_f16(-INFINITY), 0xfc00);
    CHECK_EQ_INT(rb_f32_to_f16(0x1p-14f), 0x0400);        /* smallest normal */
    CHECK_EQ_INT(rb_f32_to_f16(0x1p-24f), 0x0001);        /* smallest subnormal */
    CHECK_EQ_INT(rb_f32_to_f16(0x1p-25f), 0x0000);        /* tie to even: 0 */
    CHECK_EQ_INT(rb_f32_to_f16(0x3p-25f), 0x0002);        /* 1.5 ulp: tie to even: 2 */
    CHECK_EQ_INT(rb_f32_to_f16(0x1.8p-24f * 1.01f), 0x0002);
    CHECK_EQ_INT(rb_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie to even (down) */
    CHECK_EQ_INT(rb_f32_to_f16(1.0f + 0x3p-11f), 0x3c02); /* tie to even (up) */
    CHECK_EQ_INT(rb_f32_to_f16(0x1.ff8p-15f), 0x03ff);    /* largest subnormal, exact */
    CHECK_EQ_INT(rb_f32_to_f16(0x1.ffcp-15f), 0x0400);    /* tie: rounds up into the normals */
    CHECK_EQ_INT(rb_f32_to_f16(0x1.ffbp-15f), 0x03ff);
    CHECK_EQ_INT(rb_f32_to_f16(0.1f), 0x2e66);
    CHECK_NEAR(rb_f16_to_f32(0x3555), 0.333251953125, 0);
    CHECK_NEAR(rb_f16_to_f32(0x0001), 0x1p-24, 0);
    CHECK_NEAR(rb_f16_to_f32(0x83ff), -0x1.ff8p-15, 0);
    CHECK(isinf(rb_f16_to_f32(0x7c00)) && rb_f16_to_f32(0x7c00) > 0);
    CHECK(isnan(rb_f16_to_f32(0x7e00)));
    rb_f16 h = rb_f32_to_f16(NAN);
    CHECK((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
}

TEST(f16_round_trip_all) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rb_f16_to_f32((rb_f16)h);
        rb_f16 back = rb_f32_to_f16(f);
        int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan ? !(isnan(f) && (back & 0x7c00) == 0x7c00 && (back & 0x3ff)) : back != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    /* the scalar kernel table's row converter agrees bit for bit */
    static uint16_t all[65536];
    static float conv[65536];
    for (uint32_t h = 0; h < 65536; h++) all[h] = (uint16_t)h;
    rb_scalar_f16_to_f32(all, conv, 65536);
    int differ = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float ref = rb_f16_to_f32((rb_f16)h);
        differ += memcmp(&ref, &conv[h], 4) != 0;
    }
    CHECK_EQ_INT(differ, 0);
    /* every float halfway between two neighbouring halves rounds to the even one */
    int bad_ties = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        double mid = 0.5 * ((double)rb_f16_to_f32((rb_f16)h) + (double)rb_f16_to_f32((rb_f16)(h + 1)));
        rb_f16 r = rb_f32_to_f16((float)mid);
        if (r != ((h & 1) ? h + 1 : h)) bad_ties++;
    }
    CHECK_EQ_INT(bad_ties, 0);
}

TEST(bf16_known_values) {
    CHECK_EQ_INT(rb_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(rb_f32_to_bf16(-1.0f), 0xbf80);
    CHECK_EQ_INT(rb_f32_to_bf16(f32_from(0x3f808000u)), 0x3f80); /* tie, even stays */
    CHECK_EQ_INT(rb_f32_to_bf16(f32_from(0x3f818000u)), 0x3f82); /* tie, odd goes up */
    CHECK_EQ_INT(rb_f32_to_bf16(f32_from(0x3f808001u)), 0x3f81);
    CHECK_EQ_INT(rb_f32_to_bf16(INFINITY), 0x7f80);
    rb_bf16 n = rb_f32_to_bf16(f32_from(0x7f800001u)); /* NaN with only a low payload bit */
    CHECK(isnan(rb_bf16_to_f32(n)));
    CHECK_NEAR(rb_bf16_to_f32(0x4049), 3.140625, 0);
    CHECK_EQ_INT(f32_bits(rb_bf16_to_f32(0x1234)), 0x12340000u);
}

/* ------------------------------------------------------------- traits */

TEST(traits_match_gguf_sizes) {
    const uint32_t types[] = { RB_TYPE_F32, RB_TYPE_F16, RB_TYPE_BF16, RB_TYPE_Q4_0, RB_TYPE_Q4_1,
                               RB_TYPE_Q5_0, RB_TYPE_Q5_1, RB_TYPE_Q8_0, RB_TYPE_Q8_1, RB_TYPE_Q2_K,
                               RB_TYPE_Q3_K, RB_TYPE_Q4_K, RB_TYPE_Q5_K, RB_TYPE_Q6_K, RB_TYPE_Q8_K };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const struct rb_type_traits *t = rb_traits(types[i]);
        const struct rb_type_size *s = rb_type_size(types[i]);
        CHECK(t && s && t->to_float);
        if (!t || !s) continue;
        CHECK_STR(t->name, s->name);
        CHECK_EQ_INT(t->block_size, s->block_size);
        CHECK_EQ_INT(t->type_size, s->type_size);
        if (t->can_compute) CHECK(rb_kernels_scalar.vec_dot[types[i]] != NULL);
        if (t->can_compute && types[i] != RB_TYPE_F32) /* F32 rows are used as they are */
            CHECK(rb_kernels_scalar.quantize_act[t->vec_dot_type] != NULL);
    }
    CHECK_EQ_INT(rb_traits(RB_TYPE_Q4_1)->vec_dot_type, RB_TYPE_Q8_1);
    CHECK_EQ_INT(rb_traits(RB_TYPE_Q5_0)->vec_dot_type, RB_TYPE_Q8_0);
    CHECK_EQ_INT(rb_traits(RB_TYPE_Q6_K)->vec_dot_type, RB_TYPE_Q8_K);
    CHECK_EQ_INT(rb_traits(RB_TYPE_BF16)->vec_dot_type, RB_TYPE_BF16);
    CHECK(rb_traits(RB_TYPE_IQ2_XXS) && rb_traits(RB_TYPE_IQ2_XXS)->to_float == NULL);
    CHECK(rb_traits(RB_TYPE_COUNT) == NULL);
    CHECK(rb_traits(4)->block_size == 0);
}

/* ------------------------------------------------------------- bit layouts */

TEST(layout_q4_0_q4_1_nibbles) {
    block_q4_0 b;
    b.d = rb_f32_to_f16(0.5f);
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)((j & 0xf) | (15 - j) << 4);
    float x[32];
    rb_traits(RB_TYPE_Q4_0)->to_float(&b, x, 32);
    /* element j = low nibble of byte j; element j + 16 = its high nibble */
    CHECK_NEAR(x[0], (0 - 8) * 0.5, 0);
    CHECK_NEAR(x[3], (3 - 8) * 0.5, 0);
    CHECK_NEAR(x[16], (15 - 8) * 0.5, 0);
    CHECK_NEAR(x[31], (0 - 8) * 0.5, 0);
    CHECK_NEAR(x[1], -3.5, 0);

    block_q4_1 c;
    c.d = rb_f32_to_f16(2.0f);
    c.m = rb_f32_to_f16(-1.0f);
    memset(c.qs, 0, sizeof c.qs);
    c.qs[5] = 0x3a; /* element 5 = 10, element 21 = 3 */
    rb_traits(RB_TYPE_Q4_1)->to_float(&c, x, 32);
    CHECK_NEAR(x[5], 19.0, 0);
    CHECK_NEAR(x[21], 5.0, 0);
    CHECK_NEAR(x[0], -1.0, 0);
}

TEST(layout_q5_high_bits) {
    block_q5_0 b;
    b.d = rb_f32_to_f16(1.0f);
    memset(b.qs, 0, sizeof b.qs);
    /* qh little-endian u32: bit 0 -> element 0, bit 17 -> element 17 (high nibble of byte 1) */
    b.qh[0] = 0x01; b.qh[1] = 0x00; b.qh[2] = 0x02; b.qh[3] = 0x80;
    b.qs[1] = 0x70; /* element 17 low 4 bits = 7 */
    float x[32];
    rb_traits(RB_TYPE_Q5_0)->to_float(&b, x, 32);
    CHECK_NEAR(x[0], 16 - 16, 0);
    CHECK_NEAR(x[1], 0 - 16, 0);
    CHECK_NEAR(x[17], (16 + 7) - 16, 0);
    CHECK_NEAR(x[31], 16 - 16, 0); /* bit 31 */
    CHECK_NEAR(x[15], -16, 0);

    block_q5_1 c;
    c.d = rb_f32_to_f16(1.0f);
    c.m = rb_f32_to_f16(0.25f);
    memset(c.qs, 0xff, sizeof c.qs);
    memset(c.qh, 0, sizeof c.qh);
    c.qh[1] = 0x80; /* bit 15 -> element 15 */
    rb_traits(RB_TYPE_Q5_1)->to_float(&c, x, 32);
    CHECK_NEAR(x[15], 31.25, 0);
    CHECK_NEAR(x[14], 15.25, 0);
    CHECK_NEAR(x[31], 15.25, 0);
}

TEST(layout_q8_0_and_k_quants_known) {
    block_q8_0 b;
    b.d = rb_f32_to_f16(0.25f);
    for (int j = 0; j < 32; j++) b.qs[j] = (int8_t)(j - 16);
    float x[QK_K];
    rb_traits(RB_TYPE_Q8_0)->to_float(&b, x, 32);
    CHECK_NEAR(x[0], -4.0, 0);
    CHECK_NEAR(x[31], 3.75, 0);

    /* Q4_K: sub-block 1 (elements 32..63) is the HIGH nibble of qs[0..31]. */
    block_q4_K k4;
    memset(&k4, 0, sizeof k4);
    k4.d = rb_f32_to_f16(1.0f);
    k4.dmin = rb_f32_to_f16(1.0f);
    k4.scales[0] = 2;  /* sc0 = 2 */
    k4.scales[1] = 3;  /* sc1 = 3 */
    k4.scales[5] = 1;  /* m1 = 1 */
    k4.scales[8] = 0x45; /* sub 4: sc low 5, m low 4 */
    k4.scales[0] |= 0x40; /* sub 4: sc high bits 01 -> sc4 = 16 + 5 = 21 */
    k4.qs[0] = 0x93;   /* element 0 = 3, element 32 = 9 */
    k4.qs[64] = 0x02;  /* element 128 (sub 4) = 2 */
    rb_traits(RB_TYPE_Q4_K)->to_float(&k4, x, QK_K);
    CHECK_NEAR(x[0], 2 * 3, 0);
    CHECK_NEAR(x[32], 3 * 9 - 1, 0);
    CHECK_NEAR(x[128], 21 * 2 - 4, 0);
    CHECK_NEAR(x[1], 0, 0);

    /* Q6_K: element 64 is the high nibble of ql[0], its bits 4-5 in qh[0] bits 4-5 */
    block_q6_K k6;
    memset(&k6, 0, sizeof k6);
    k6.d = rb_f32_to_f16(0.5f);
    for (int j = 0; j < 16; j++) k6.scales[j] = (int8_t)(j - 8);
    k6.ql[0] = 0x5a;  /* element 0 low = 10, element 64 low = 5 */
    k6.qh[0] = 0x30;  /* element 64 high bits = 3 -> q = 53 */
    k6.ql[32] = 0x07; /* element 32 low = 7 */
    rb_traits(RB_TYPE_Q6_K)->to_float(&k6, x, QK_K);
    CHECK_NEAR(x[0], 0.5 * -8 * (10 - 32), 0);
    CHECK_NEAR(x[64], 0.5 * (4 - 8) * (53 - 32), 0);
    CHECK_NEAR(x[32], 0.5 * (2 - 8) * (7 - 32), 0);
    CHECK_NEAR(x[96], 0.5 * (6 - 8) * (0 - 32), 0);
}

TEST(layout_q2_K_q3_K_q5_K_known) {
    float x[QK_K];
    /* Q2_K: value 32*s + l of each half sits at bits 2s..2s+1 of qs[l] */
    block_q2_K k2;
    memset(&k2, 0, sizeof k2);
    k2.d = rb_f32_to_f16(1.0f);
    k2.dmin = rb_f32_to_f16(0.5f);
    k2.scales[4] = 0x23;   /* sub-block 4 (values 64..79): sc 3, m 2 */
    k2.scales[8] = 0x01;   /* sub-block 8 (values 128..143): sc 1, m 0 */
    k2.qs[0] = 0x20;       /* value 64 (shift 4) = 2 */
    k2.qs[32] = 0xc0;      /* second half, value 128 + 96 = 224 (shift 6) = 3, sub-block 14 */
    k2.scales[14] = 0x05;
    k2.qs[33] = 0x01;      /* value 129 (shift 0) = 1 */
    rb_traits(RB_TYPE_Q2_K)->to_float(&k2, x, QK_K);
    CHECK_NEAR(x[64], 3 * 2 - 0.5 * 2, 0);
    CHECK_NEAR(x[65], -1.0, 0);
    CHECK_NEAR(x[224], 5 * 3, 0);
    CHECK_NEAR(x[129], 1 * 1, 0);
    CHECK_NEAR(x[0], 0, 0);

    /* Q3_K: scale 9 = low nibble of byte 1's high half, high bits in byte 9 pair 2;
     * the third quant bit of value v is bit v / 32 of hmask[v % 32] */
    block_q3_K k3;
    memset(&k3, 0, sizeof k3);
    k3.d = rb_f32_to_f16(0.5f);
    k3.scales[1] = 0x70;   /* sub-block 9 low 4 bits = 7 */
    k3.scales[9] = 0x20;   /* sub-block 9 (9 % 4 = 1 -> byte 9, 9 / 4 = 2 -> bits 4-5) high = 2: 39 - 32 = 7 */
    k3.qs[32 + 16] = 0x01; /* value 128 + 16 = 144 (sub-block 9), low bits 1 */
    k3.hmask[16] = 0x10;   /* value 144: bit 144 / 32 = 4 */
    rb_traits(RB_TYPE_Q3_K)->to_float(&k3, x, QK_K);
    CHECK_NEAR(x[144], 0.5 * 7 * ((1 | 4) - 4), 0);
    CHECK_NEAR(x[145], 0.5 * 7 * (0 - 4), 0);
    CHECK_NEAR(x[0], 0.5 * -32 * -4, 0); /* scale code 0 means -32, quant 0 means -4 */

    /* Q5_K: the fifth bit of value v is bit v / 32 of qh[v % 32] */
    block_q5_K k5;
    memset(&k5, 0, sizeof k5);
    k5.d = rb_f32_to_f16(1.0f);
    k5.dmin = rb_f32_to_f16(1.0f);
    k5.scales[3] = 2;      /* sub-block 3 (values 96..127): sc 2, m 0 */
    k5.qs[32 + 5] = 0x70;  /* value 96 + 5 = 101: high nibble of qs[37] = 7 */
    k5.qh[5] = 0x08;       /* value 101: bit 101 / 32 = 3 -> +16 */
    rb_traits(RB_TYPE_Q5_K)->to_float(&k5, x, QK_K);
    CHECK_NEAR(x[101], 2 * (16 + 7), 0);
    CHECK_NEAR(x[69], 0, 0); /* qs[37] low nibble belongs to value 69 (sc 0) */
}

/* A second decoder for each K-quant, written the way ggml's reference walks
 * the bytes (pointer bumps and running bit masks), compared on random bytes
 * with the library's. A swapped nibble, shift or mask would disagree. */
static void ggml_style_q2_K(const block_q2_K *b, float *y) {
    const float d = rb_f16_to_f32(b->d), min = rb_f16_to_f32(b->dmin);
    const uint8_t *q = b->qs;
    int is = 0;
    for (int n = 0; n < QK_K; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
            uint8_t sc = b->scales[is++];
            float dl = d * (sc & 0xf), ml = min * (sc >> 4);
            for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l] >> shift) & 3) - ml;
            sc = b->scales[is++];
            dl = d * (sc & 0xf); ml = min * (sc >> 4);
            for (int l = 0; l < 16; ++l) *y++ = dl * ((q[l + 16] >> shift) & 3) - ml;
            shift += 2;
        }
        q += 32;
    }
}

static void ggml_style_q3_K(const block_q3_K *b, float *y) {
    uint32_t aux[4];
    memcpy(aux, b->scales, 12);
    uint32_t tmp = aux[2];
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t scales[16];
    memcpy(scales, aux, 16); /* little-endian host assumed by this test decoder */
    const float d_all = rb_f16_to_f32(b->d);
    const uint8_t *q = b->qs, *hm = b->hmask;
    uint8_t m = 1;
    int is = 0;
    for (int n = 0; n < QK_K; n += 128) {
        int shift = 0;
        for (int j = 0; j < 4; ++j) {
            float dl = d_all * (scales[is++] - 32);
            for (int l = 0; l < 16; ++l) *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
            dl = d_all * (scales[is++] - 32);
            for (int l = 0; l < 16; ++l) *y++ = dl * (((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
            shift += 2;
            m <<= 1;
        }
        q += 32;
    }
}

static void scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) { *d = q[j] & 63; *m = q[j + 4] & 63; }
    else { *d = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

static void ggml_style_q5_K(const block_q5_K *b, float *y) { /* Q4_K is this with qh = 0 */
    const float d = rb_f16_to_f32(b->d), min = rb_f16_to_f32(b->dmin);
    const uint8_t *ql = b->qs, *qh = b->qh;
    int is = 0;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < QK_K; j += 64) {
        uint8_t sc, m;
        scale_min(is + 0, b->scales, &sc, &m);
        const float d1 = d * sc, m1 = min * m;
        scale_min(is + 1, b->scales, &sc, &m);
        const float d2 = d * sc, m2 = min * m;
        for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xf) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32; is += 2;
        u1 <<= 2; u2 <<= 2;
    }
}

static void ggml_style_q6_K(const block_q6_K *b, float *y) {
    const float d = rb_f16_to_f32(b->d);
    const uint8_t *ql = b->ql, *qh = b->qh;
    const int8_t *sc = b->scales;
    for (int n = 0; n < QK_K; n += 128) {
        for (int l = 0; l < 32; ++l) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is + 0] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128; ql += 64; qh += 32; sc += 8;
    }
}

TEST(k_quants_match_ggml_style_decoder) {
    rng_seed(11);
    float a[QK_K], b[QK_K];
    int bad[5] = { 0 };
    for (int trial = 0; trial < 50; trial++) {
        block_q2_K *q2 = random_weights(RB_TYPE_Q2_K, QK_K);
        rb_traits(RB_TYPE_Q2_K)->to_float(q2, a, QK_K); ggml_style_q2_K(q2, b);
        bad[0] += memcmp(a, b, sizeof a) != 0;
        block_q3_K *q3 = random_weights(RB_TYPE_Q3_K, QK_K);
        rb_traits(RB_TYPE_Q3_K)->to_float(q3, a, QK_K); ggml_style_q3_K(q3, b);
        bad[1] += memcmp(a, b, sizeof a) != 0;
        block_q5_K *q5 = random_weights(RB_TYPE_Q5_K, QK_K);
        rb_traits(RB_TYPE_Q5_K)->to_float(q5, a, QK_K); ggml_style_q5_K(q5, b);
        bad[2] += memcmp(a, b, sizeof a) != 0;
        /* Q4_K: same as a Q5_K with qh = 0 */
        block_q4_K *q4 = random_weights(RB_TYPE_Q4_K, QK_K);
        block_q5_K as5;
        as5.d = q4->d; as5.dmin = q4->dmin;
        memcpy(as5.scales, q4->scales, 12); memcpy(as5.qs, q4->qs, 128); memset(as5.qh, 0, 32);
        rb_traits(RB_TYPE_Q4_K)->to_float(q4, a, QK_K); ggml_style_q5_K(&as5, b);
        bad[3] += memcmp(a, b, sizeof a) != 0;
        block_q6_K *q6 = random_weights(RB_TYPE_Q6_K, QK_K);
        rb_traits(RB_TYPE_Q6_K)->to_float(q6, a, QK_K); ggml_style_q6_K(q6, b);
        bad[4] += memcmp(a, b, sizeof a) != 0;
        free(q2); free(q3); free(q4); free(q5); free(q6);
    }
    for (int i = 0; i < 5; i++) CHECK_MSG(bad[i] == 0, "decoder %d disagrees in %d of 50 blocks", i, bad[i]);
}

/* ------------------------------------------------------------- vec_dot */

/* dot(dequant(w), dequant(a)) in double and the sum of |products|, the scale
 * of the rounding error any float summation makes. */
static double ref_dot(uint32_t wtype, const void *w, uint32_t atype, const void *a, int64_t n, double *mag) {
    float *x = dequant(wtype, w, n), *y = dequant(atype, a, n);
    double sum = 0.0, m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        sum += (double)x[i] * y[i];
        m += fabs((double)x[i] * y[i]);
    }
    free(x); free(y);
    *mag = m;
    return sum;
}

/* Tolerance: 1e-5 * sum|x_i y_i| (float accumulation over up to 16 blocks),
 * except Q4_1/Q5_1 whose min term uses the activation's F16 s = d * sum(q):
 * there the error is up to 2^-11 of |m| * |s| per block. */
static void check_vec_dot(uint32_t wtype, int64_t n, int trials) {
    const struct rb_type_traits *t = rb_traits(wtype);
    uint32_t atype = t->vec_dot_type;
    for (int trial = 0; trial < trials; trial++) {
        void *w = random_weights(wtype, n);
        float *act = malloc((size_t)n * sizeof(float));
        for (int64_t i = 0; i < n; i++) act[i] = rng_gauss() * (trial == 1 ? 100.0f : 1.0f);
        void *a = malloc(row_size(atype, n));
        if (atype == RB_TYPE_F32) memcpy(a, act, (size_t)n * sizeof(float));
        else rb_kernels_scalar.quantize_act[atype](act, a, n);
        float got = -1.0f;
        rb_kernels_scalar.vec_dot[wtype](n, &got, w, a);
        double mag, want = ref_dot(wtype, w, atype, a, n, &mag);
        double tol = 1e-5 * mag + 1e-30;
        if (atype == RB_TYPE_Q8_1) {
            const block_q8_1 *a1 = a;
            double extra = 0;
            for (int64_t b = 0; b < n / 32; b++) extra += 0.5 * fabs(rb_f16_to_f32(a1[b].s)) * 0x1p-10;
            tol += extra;
        }
        CHECK_MSG(fabs(got - want) <= tol, "%s n=%lld trial %d: got %.9g want %.9g (tol %.3g)",
                  t->name, (long long)n, trial, got, want, tol);
        free(w); free(act); free(a);
    }
}

TEST(vec_dot_float_types) {
    rng_seed(1);
    check_vec_dot(RB_TYPE_F32, 37, 3);
    check_vec_dot(RB_TYPE_F32, 4096, 3);
    check_vec_dot(RB_TYPE_F16, 1, 3);
    check_vec_dot(RB_TYPE_F16, 1000, 3);
    check_vec_dot(RB_TYPE_BF16, 777, 3);
}

TEST(vec_dot_legacy_blocks) {
    rng_seed(2);
    const uint32_t types[] = { RB_TYPE_Q4_0, RB_TYPE_Q4_1, RB_TYPE_Q5_0, RB_TYPE_Q5_1, RB_TYPE_Q8_0 };
    for (size_t i = 0; i < 5; i++) {
        check_vec_dot(types[i], 32, 4);
        check_vec_dot(types[i], 32 * 37, 4);
    }
}

TEST(vec_dot_k_quants) {
    rng_seed(3);
    const uint32_t types[] = { RB_TYPE_Q2_K, RB_TYPE_Q3_K, RB_TYPE_Q4_K, RB_TYPE_Q5_K, RB_TYPE_Q6_K };
    for (size_t i = 0; i < 5; i++) {
        check_vec_dot(types[i], 256, 4);
        check_vec_dot(types[i], 256 * 11, 4);
    }
}

/* Extreme quants: all bits set / all clear, where int32 sums are largest. */
TEST(vec_dot_extreme_quants) {
    const uint32_t types[] = { RB_TYPE_Q4_0, RB_TYPE_Q5_0, RB_TYPE_Q8_0, RB_TYPE_Q2_K, RB_TYPE_Q3_K,
                               RB_TYPE_Q4_K, RB_TYPE_Q5_K, RB_TYPE_Q6_K };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        for (int fill = 0; fill < 2; fill++) {
            uint32_t wt = types[i], at = rb_traits(wt)->vec_dot_type;
            int64_t n = 512;
            rng_seed(40 + i);
            uint8_t *w = random_weights(wt, n);
            /* overwrite all quant bytes, keep the scale fields random-sane */
            size_t bytes = row_size(wt, n);
            uint8_t *tmp = malloc(bytes);
            memset(tmp, fill ? 0xff : 0x00, bytes);
            const struct rb_type_traits *t = rb_traits(wt);
            for (int64_t b = 0; b < n / t->block_size; b++) {
                uint8_t *blk = w + b * t->type_size, *src = tmp + b * t->type_size;
                switch (wt) { /* restore the F16 scales */
                case RB_TYPE_Q2_K: memcpy(src + 80, blk + 80, 4); break;
                case RB_TYPE_Q3_K: memcpy(src + 108, blk + 108, 2); break;
                case RB_TYPE_Q6_K: memcpy(src + 208, blk + 208, 2); src[192] = 0x7f; break;
                case RB_TYPE_Q4_K: case RB_TYPE_Q5_K: memcpy(src, blk, 4); break;
                default: memcpy(src, blk, 2); break;
                }
            }
            float *act = malloc((size_t)n * sizeof(float));
            for (int64_t k = 0; k < n; k++) act[k] = (k & 1) ? 1.0f : -1.0f; /* |q_a| = 127 */
            if (fill) for (int64_t k = 0; k < n; k++) act[k] = -1.0f;
            void *a = malloc(row_size(at, n));
            rb_kernels_scalar.quantize_act[at](act, a, n);
            float got;
            rb_kernels_scalar.vec_dot[wt](n, &got, tmp, a);
            double mag, want = ref_dot(wt, tmp, at, a, n, &mag);
            CHECK_MSG(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s fill %d: %.9g vs %.9g", t->name, fill, got, want);
            free(w); free(tmp); free(act); free(a);
        }
    }
}

/* ------------------------------------------------------------- activation quantizers */

TEST(quantize_q8_0_rounding) {
    float x[32] = { 0 };
    x[0] = 127.0f;  /* amax 127: id = 1 exactly, so q = round(x) */
    x[1] = 2.5f; x[2] = 3.5f; x[3] = -2.5f; x[4] = 0.5f; x[5] = -126.5f; x[6] = 1.4999f;
    block_q8_0 b;
    rb_scalar_quantize_q8_0(x, &b, 32);
    CHECK_NEAR(rb_f16_to_f32(b.d), 1.0, 0);
    CHECK_EQ_INT(b.qs[0], 127);
    CHECK_EQ_INT(b.qs[1], 2);  /* half to even */
    CHECK_EQ_INT(b.qs[2], 4);
    CHECK_EQ_INT(b.qs[3], -2);
    CHECK_EQ_INT(b.qs[4], 0);
    CHECK_EQ_INT(b.qs[5], -126);
    CHECK_EQ_INT(b.qs[6], 1);
    /* the negative extreme maps to -127 */
    for (int j = 0; j < 32; j++) x[j] = -0.01f * j;
    rb_scalar_quantize_q8_0(x, &b, 32);
    CHECK_EQ_INT(b.qs[31], -127);
    CHECK_NEAR(rb_f16_to_f32(b.d), rb_f16_to_f32(rb_f32_to_f16(0.31f / 127.0f)), 0);
    /* all zero: d = 0, q = 0, no NaN */
    memset(x, 0, sizeof x);
    rb_scalar_quantize_q8_0(x, &b, 32);
    CHECK_EQ_INT(b.d, 0);
    CHECK_EQ_INT(b.qs[7], 0);
}

TEST(quantize_q8_1_sum) {
    rng_seed(5);
    float x[64];
    for (int j = 0; j < 64; j++) x[j] = rng_uniform() + 0.3f;
    block_q8_1 b[2];
    rb_scalar_quantize_q8_1(x, b, 64);
    for (int k = 0; k < 2; k++) {
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += b[k].qs[j];
        CHECK_NEAR(rb_f16_to_f32(b[k].s), rb_f16_to_f32(rb_f32_to_f16(rb_f16_to_f32(b[k].d) * sum)), 0.002 * fabs(sum * rb_f16_to_f32(b[k].d)));
        block_q8_0 c;
        rb_scalar_quantize_q8_0(x + 32 * k, &c, 32);
        CHECK(memcmp(c.qs, b[k].qs, 32) == 0); /* same quants as Q8_0 */
    }
}

TEST(quantize_q8_K_signed_max_and_bsums) {
    rng_seed(6);
    float x[2 * QK_K];
    for (int j = 0; j < 2 * QK_K; j++) x[j] = rng_uniform();
    x[100] = 3.0f;   /* block 0: positive extreme -> q = -127, d < 0 */
    x[300] = -2.0f;  /* block 1: negative extreme -> q = +127... */
    block_q8_K b[2];
    rb_scalar_quantize_q8_K(x, b, 2 * QK_K);
    CHECK_EQ_INT(b[0].qs[100], -127);
    CHECK(b[0].d < 0);
    CHECK_NEAR(b[0].d, -3.0 / 127.0, 1e-7);
    CHECK_EQ_INT(b[1].qs[300 - QK_K], -127);
    CHECK(b[1].d > 0);
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b[k].qs[16 * j + l];
            CHECK_EQ_INT(b[k].bsums[j], sum);
        }
    /* round trip within half a step */
    float y[2 * QK_K];
    rb_traits(RB_TYPE_Q8_K)->to_float(b, y, 2 * QK_K);
    double worst = 0;
    for (int j = 0; j < 2 * QK_K; j++) worst = fmax(worst, fabs(y[j] - x[j]) / fabs(b[j / QK_K].d));
    CHECK(worst <= 0.5 + 1e-4);
    /* zero block: everything zero */
    memset(x, 0, sizeof x);
    memset(b, 0x55, sizeof b);
    rb_scalar_quantize_q8_K(x, b, QK_K);
    CHECK(b[0].d == 0.0f && b[0].qs[5] == 0 && b[0].bsums[3] == 0);
}

/* ------------------------------------------------------------- float helpers */

TEST(float_helpers) {
    float x[5] = { 1, -2, 3, -4, 5 }, w[5] = { 1, 2, 1, 2, 1 }, b[5] = { 0, 0, 0, 0, 1 }, out[5];
    rb_scalar_rmsnorm(out, x, w, 5, 0.0f);
    double rms = sqrt((1 + 4 + 9 + 16 + 25) / 5.0);
    CHECK_NEAR(out[1], -2 / rms * 2, 1e-6);
    CHECK_NEAR(out[4], 5 / rms, 1e-6);
    rb_scalar_layernorm(out, x, NULL, NULL, 5, 0.0f);
    double sd = sqrt((0.16 + 6.76 + 5.76 + 21.16 + 19.36) / 5.0); /* mean 0.6 */
    CHECK_NEAR(out[0], 0.4 / sd, 1e-6);
    rb_scalar_layernorm(out, x, w, b, 5, 0.0f);
    CHECK_NEAR(out[3], -4.6 / sd * 2, 1e-5);
    CHECK_NEAR(out[4], 4.4 / sd + 1, 1e-5);

    float s[4] = { 1000, 1001, 1002, -INFINITY };
    rb_scalar_softmax(s, 4);
    double e = 1 + exp(1) + exp(2);
    CHECK_NEAR(s[0], 1 / e, 1e-6);
    CHECK_NEAR(s[2], exp(2) / e, 1e-6);
    CHECK_NEAR(s[3], 0, 0);

    float g[3] = { 1.0f, -3.0f, 0.0f }, u[3] = { 2, 2, 2 };
    rb_scalar_silu_mul(out, g, u, 3);
    CHECK_NEAR(out[0], 2 / (1 + exp(-1)), 1e-6);
    CHECK_NEAR(out[1], 2 * -3 / (1 + exp(3)), 1e-6);
    CHECK_NEAR(out[2], 0, 0);

    float ge[3] = { 1.0f, -1.0f, 3.0f };
    rb_scalar_gelu(ge, 3);
    CHECK_NEAR(ge[0], 0.8411919906, 1e-6);   /* tanh form, not erf (0.8413447) */
    CHECK_NEAR(ge[1], -0.1588080094, 1e-6);
    CHECK_NEAR(ge[2], 2.9963625, 1e-5);

    rb_scalar_add(out, x, w, 5);
    CHECK_NEAR(out[3], -2, 0);
    uint16_t h[2];
    float back[2], src[2] = { 0.1f, -65504.0f };
    rb_scalar_f32_to_f16(src, h, 2);
    rb_scalar_f16_to_f32(h, back, 2);
    CHECK_EQ_INT(h[0], 0x2e66);
    CHECK_NEAR(back[1], -65504.0, 0);
}

int main(void) {
    RUN(f16_known_values);
    RUN(f16_round_trip_all);
    RUN(bf16_known_values);
    RUN(traits_match_gguf_sizes);
    RUN(layout_q4_0_q4_1_nibbles);
    RUN(layout_q5_high_bits);
    RUN(layout_q8_0_and_k_quants_known);
    RUN(layout_q2_K_q3_K_q5_K_known);
    RUN(k_quants_match_ggml_style_decoder);
    RUN(vec_dot_float_types);
    RUN(vec_dot_legacy_blocks);
    RUN(vec_dot_k_quants);
    RUN(vec_dot_extreme_quants);
    RUN(quantize_q8_0_rounding);
    RUN(quantize_q8_1_sum);
    RUN(quantize_q8_K_signed_max_and_bsums);
    RUN(float_helpers);
    return test_summary();
}
