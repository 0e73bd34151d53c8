/* test_neon.c - the two AArch64 NEON tables, plain ARMv8.0 (simd/neon.c) and
 * ARMv8.2 dotprod (simd/neon_dotprod.c):
 *   - dispatch offers the dotprod table ("neon_dotprod") exactly when
 *     HWCAP_ASIMDDP is set, picks it then, and prints which one ran (make test-arm runs this under qemu with -cpu max
 *     and -cpu cortex-a72, so both paths are seen);
 *   - every table this CPU can run agrees with the scalar reference:
 *     bit-identical activation quantizers, F16/BF16 conversions and integer
 *     dot products (rows of 1..9 blocks); F32/F16/BF16 dots within
 *     1.2e-7 * (n/16 + 8) * sum|x_i y_i| (they sum in 16 float lanes), float
 *     helpers within a few ulp-scale relative error (polynomial e^x);
 *   - gemm gives the same bits as vec_dot for every (row, token).
 * tests/test_kernels.c covers the chosen table like every other ISA; this
 * file adds the table the dispatcher did not choose and the dispatch itself.
 * On other architectures there is nothing to run: "0 passed, 0 failed".
 */
#include "test.h"

#if defined(__aarch64__)
#include <stddef.h>
#include <sys/auxv.h>

#include "../quant/quant.h"
#include "../simd/kernels.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif

static int has_dotprod(void) { return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0; }

/* The NEON tables this CPU runs, NULL-terminated. */
static void neon_tables(const struct rb_kernels *t[3]) {
    t[0] = &rb_kernels_neon;
    t[1] = has_dotprod() ? &rb_kernels_neon_dotprod : NULL;
    t[2] = NULL;
}

static const char *table_name(const struct rb_kernels *k) {
    return k == &rb_kernels_neon_dotprod ? "neon_dotprod (sdot)" : k == &rb_kernels_neon ? "neon (plain ARMv8.0)" : k->isa;
}

/* xorshift: the same inputs every run */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)rng_state;
}
static float rng_f(void) { return (float)((rng_u32() >> 8) / 8388608.0 - 1.0); } /* [-1, 1) */

/* Weight types, where their F16 scale fields sit, and their partner. */
struct wtype {
    int type, act, block, size, n_scales;
    size_t scale_at[2];
};
static const struct wtype WTYPES[] = {
    { RB_TYPE_Q4_0, RB_TYPE_Q8_0, QK4_0, sizeof(block_q4_0), 1, { offsetof(block_q4_0, d) } },
    { RB_TYPE_Q4_1, RB_TYPE_Q8_1, QK4_1, sizeof(block_q4_1), 2, { offsetof(block_q4_1, d), offsetof(block_q4_1, m) } },
    { RB_TYPE_Q5_0, RB_TYPE_Q8_0, QK5_0, sizeof(block_q5_0), 1, { offsetof(block_q5_0, d) } },
    { RB_TYPE_Q5_1, RB_TYPE_Q8_1, QK5_1, sizeof(block_q5_1), 2, { offsetof(block_q5_1, d), offsetof(block_q5_1, m) } },
    { RB_TYPE_Q8_0, RB_TYPE_Q8_0, QK8_0, sizeof(block_q8_0), 1, { offsetof(block_q8_0, d) } },
    { RB_TYPE_Q2_K, RB_TYPE_Q8_K, QK_K, sizeof(block_q2_K), 2, { offsetof(block_q2_K, d), offsetof(block_q2_K, dmin) } },
    { RB_TYPE_Q3_K, RB_TYPE_Q8_K, QK_K, sizeof(block_q3_K), 1, { offsetof(block_q3_K, d) } },
    { RB_TYPE_Q4_K, RB_TYPE_Q8_K, QK_K, sizeof(block_q4_K), 2, { offsetof(block_q4_K, d), offsetof(block_q4_K, dmin) } },
    { RB_TYPE_Q5_K, RB_TYPE_Q8_K, QK_K, sizeof(block_q5_K), 2, { offsetof(block_q5_K, d), offsetof(block_q5_K, dmin) } },
    { RB_TYPE_Q6_K, RB_TYPE_Q8_K, QK_K, sizeof(block_q6_K), 1, { offsetof(block_q6_K, d) } },
};
#define N_WTYPES (int)(sizeof WTYPES / sizeof WTYPES[0])

static size_t act_block_bytes(int act) {
    return act == RB_TYPE_Q8_0 ? sizeof(block_q8_0) : act == RB_TYPE_Q8_1 ? sizeof(block_q8_1) : sizeof(block_q8_K);
}
static int act_block_len(int act) { return act == RB_TYPE_Q8_K ? QK_K : QK8_0; }

/* Random bytes with sane F16 scales (every quant pattern, including the
 * extremes, appears somewhere). */
static void random_weights(const struct wtype *t, uint8_t *w, int nb) {
    for (size_t i = 0; i < (size_t)nb * t->size; i++) w[i] = (uint8_t)rng_u32();
    for (int b = 0; b < nb; b++)
        for (int j = 0; j < t->n_scales; j++) {
            rb_f16 h = rb_f32_to_f16(rng_f() * 0.05f);
            memcpy(w + (size_t)b * t->size + t->scale_at[j], &h, 2);
        }
}

/* Random activation bytes (int8 -128 included), sane scales. */
static void random_acts(int act, uint8_t *a, int nb) {
    size_t bytes = act_block_bytes(act);
    for (size_t i = 0; i < (size_t)nb * bytes; i++) a[i] = (uint8_t)rng_u32();
    for (int b = 0; b < nb; b++) {
        uint8_t *blk = a + (size_t)b * bytes;
        if (act == RB_TYPE_Q8_K) { /* blk may be misaligned (odd row strides): memcpy */
            float d = rng_f() * 0.01f;
            memcpy(blk + offsetof(block_q8_K, d), &d, sizeof d);
            for (int j = 0; j < QK_K / 16; j++) { /* bsums consistent with qs */
                int16_t sum = 0;
                for (int l = 0; l < 16; l++) sum = (int16_t)(sum + (int8_t)blk[offsetof(block_q8_K, qs) + 16 * j + l]);
                memcpy(blk + offsetof(block_q8_K, bsums) + 2 * j, &sum, sizeof sum);
            }
        } else {
            rb_f16 d = rb_f32_to_f16(rng_f() * 0.05f), s = rb_f32_to_f16(rng_f());
            memcpy(blk, &d, 2);
            if (act == RB_TYPE_Q8_1) memcpy(blk + 2, &s, 2);
        }
    }
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ------------------------------------------------------------------ tests */

TEST(dispatch_matches_cpu) {
    const struct rb_kernels *want = has_dotprod() ? &rb_kernels_neon_dotprod : &rb_kernels_neon;
    const char *forced = getenv("RBEE_ISA");
    printf("kernel table: %s (HWCAP_ASIMDDP %s, available: %s)\n", table_name(rb_kernels()),
           has_dotprod() ? "set" : "clear", rb_kernels_available());
    /* one name per table: the dotprod one is listed (best) exactly when the CPU has it */
    CHECK_STR(rb_kernels_available(), has_dotprod() ? "scalar neon neon_dotprod" : "scalar neon");
    if (!forced || !*forced) CHECK(rb_kernels() == want);
    else CHECK_STR(rb_kernels()->isa, forced);
    CHECK_STR(rb_kernels_neon.isa, "neon");
    CHECK_STR(rb_kernels_neon_dotprod.isa, "neon_dotprod");
    char err[RB_ERR_MAX];
    const char *before = rb_kernels()->isa;
    CHECK((rb_kernels_select("neon_dotprod", err) == 0) == has_dotprod());
    CHECK(rb_kernels_select(before, err) == 0);
}

/* Hand-computed: a wrong unpacking or scale order cannot match these. */
TEST(known_values) {
    const struct rb_kernels *t[3];
    neon_tables(t);
    block_q4_0 w;
    block_q8_0 a;
    w.d = rb_f32_to_f16(1.0f);
    memset(w.qs, 0x9A, sizeof w.qs); /* low nibble 10 -> +2 (quants 0..15), high 9 -> +1 (16..31) */
    a.d = rb_f32_to_f16(0.5f);
    for (int j = 0; j < QK8_0; j++) a.qs[j] = (int8_t)(j < 16 ? 3 : -5);
    for (int k = 0; t[k]; k++) {
        float s = 0.0f;
        t[k]->vec_dot[RB_TYPE_Q4_0](QK8_0, &s, &w, &a);
        CHECK_NEAR(s, 0.5 * (16 * 2 * 3 + 16 * 1 * -5), 0); /* 8 */
        /* Q8_K: the extreme (-2) maps to -127 and sets d = -2/127 */
        float x[QK_K] = { 0 };
        x[3] = 1.0f;
        x[7] = -2.0f;
        x[9] = 2.0f; /* same magnitude later: the first one wins */
        block_q8_K q;
        t[k]->quantize_act[RB_TYPE_Q8_K](x, &q, QK_K);
        CHECK_EQ_INT(q.qs[7], -127);
        CHECK_EQ_INT(q.qs[9], 127);
        CHECK_EQ_INT(q.qs[3], 64); /* -127 / -2 * 1 = 63.5: half to even */
        CHECK_NEAR(q.d, 1.0f / (127.0f / 2.0f), 0);
        CHECK_EQ_INT(q.bsums[0], 64);
    }
}

TEST(quantizers_bit_exact) {
    const struct rb_kernels *t[3];
    neon_tables(t);
    const int acts[] = { RB_TYPE_Q8_0, RB_TYPE_Q8_1, RB_TYPE_Q8_K };
    float x[4 * QK_K];
    uint8_t ref[4 * sizeof(block_q8_K)], got[4 * sizeof(block_q8_K)];
    for (int k = 0; t[k]; k++)
        for (int ai = 0; ai < 3; ai++)
            for (int nb = 1; nb <= 4; nb++) {
                int act = acts[ai], n = nb * act_block_len(act);
                for (int i = 0; i < n; i++) x[i] = rng_f() * 4.0f;
                if (nb == 2) memset(x, 0, sizeof(float) * (size_t)act_block_len(act)); /* an all-zero block */
                if (nb == 3) { /* ties: amax 127 makes the multiplier +-1, so k + 0.5 must round to even */
                    for (int i = 0; i < act_block_len(act); i++) x[i] = (float)((int)(rng_u32() % 254) - 127) + 0.5f;
                    x[0] = 127.0f;
                }
                size_t bytes = (size_t)(n / act_block_len(act)) * act_block_bytes(act);
                memset(ref, 0xAA, bytes);
                memset(got, 0x55, bytes);
                rb_kernels_scalar.quantize_act[act](x, ref, n);
                t[k]->quantize_act[act](x, got, n);
                CHECK_MSG(!memcmp(ref, got, bytes), "%s: %s row of %d differs", table_name(t[k]), rb_type_name((uint32_t)act), n);
            }
}

TEST(int_dots_bit_exact) {
    const struct rb_kernels *t[3];
    neon_tables(t);
    enum { MAXB = 9 };
    static uint8_t w[MAXB * 256], a[MAXB * 8 * sizeof(block_q8_K)];
    static float x[MAXB * QK_K];
    for (int k = 0; t[k]; k++)
        for (int ti = 0; ti < N_WTYPES; ti++) {
            const struct wtype *wt = &WTYPES[ti];
            for (int nb = 1; nb <= MAXB; nb++) {
                int n = nb * wt->block;
                random_weights(wt, w, nb);
                for (int pass = 0; pass < 2; pass++) {
                    if (pass == 0) { /* activations as the forward pass makes them */
                        for (int i = 0; i < n; i++) x[i] = rng_f() * 3.0f;
                        rb_kernels_scalar.quantize_act[wt->act](x, a, n);
                    } else {
                        random_acts(wt->act, a, n / act_block_len(wt->act));
                    }
                    float ref = 0.0f, got = 1.0f;
                    rb_kernels_scalar.vec_dot[wt->type](n, &ref, w, a);
                    t[k]->vec_dot[wt->type](n, &got, w, a);
                    CHECK_MSG(same_bits(ref, got), "%s: %s n=%d pass %d: %.9g vs scalar %.9g",
                              table_name(t[k]), rb_type_name((uint32_t)wt->type), n, pass, got, ref);
                }
            }
        }
}

/* gemm: the same bits as vec_dot per (row, token), odd row strides, and
 * nothing written outside the n_rows columns of each output row. */
TEST(gemm_matches_vec_dot) {
    const struct rb_kernels *t[3];
    neon_tables(t);
    enum { ROWS = 3, MAXTOK = 9 };
    static uint8_t w[ROWS * (3 * 210 + 5)], a[MAXTOK * (3 * sizeof(block_q8_K) + 3)];
    static float out[MAXTOK * (ROWS + 2)];
    for (int k = 0; t[k]; k++)
        for (int ti = 0; ti < N_WTYPES; ti++) {
            const struct wtype *wt = &WTYPES[ti];
            if (!t[k]->gemm[wt->type]) continue;
            const int nb = 3, n = nb * wt->block, na = n / act_block_len(wt->act);
            const size_t wrb = (size_t)nb * wt->size + 5, arb = (size_t)na * act_block_bytes(wt->act) + 3;
            for (int r = 0; r < ROWS; r++) random_weights(wt, w + r * wrb, nb);
            for (int tk = 0; tk < MAXTOK; tk++) random_acts(wt->act, a + tk * arb, na);
            for (int n_tok = 1; n_tok <= MAXTOK; n_tok++) {
                const int64_t stride = ROWS + 2;
                for (int j = 0; j < MAXTOK * (ROWS + 2); j++) out[j] = -7.0f;
                t[k]->gemm[wt->type](n, ROWS, n_tok, w, wrb, a, arb, out, stride);
                for (int tk = 0; tk < n_tok; tk++) {
                    for (int r = 0; r < ROWS; r++) {
                        float want;
                        t[k]->vec_dot[wt->type](n, &want, w + r * wrb, a + tk * arb);
                        CHECK_MSG(same_bits(out[tk * stride + r], want), "%s: %s gemm n_tok=%d r=%d t=%d: %.9g vs %.9g",
                                  table_name(t[k]), rb_type_name((uint32_t)wt->type), n_tok, r, tk, out[tk * stride + r], want);
                    }
                    CHECK(out[tk * stride + ROWS] == -7.0f && out[tk * stride + ROWS + 1] == -7.0f);
                }
            }
        }
}

TEST(float_dots) {
    const struct rb_kernels *t[3];
    neon_tables(t);
    float x[300], y[300];
    uint16_t hx[300], hy[300];
    for (int k = 0; t[k]; k++)
        for (int n = 1; n <= 300; n += n < 40 ? 1 : 37) {
            double mag = 0.0;
            for (int i = 0; i < n; i++) {
                x[i] = rng_f() * 4.0f;
                y[i] = rng_f() * 4.0f;
            }
            rb_kernels_scalar.f32_to_f16(x, hx, n);
            rb_kernels_scalar.f32_to_f16(y, hy, n);
            for (int i = 0; i < n; i++) mag += fabs((double)x[i] * y[i]);
            double tol = 1.2e-7 * (n / 16 + 8) * mag;
            float ref, got;
            rb_kernels_scalar.vec_dot[RB_TYPE_F32](n, &ref, x, y);
            t[k]->vec_dot[RB_TYPE_F32](n, &got, x, y);
            CHECK_NEAR(got, ref, tol);
            rb_kernels_scalar.vec_dot[RB_TYPE_F16](n, &ref, hx, hy);
            t[k]->vec_dot[RB_TYPE_F16](n, &got, hx, hy);
            CHECK_NEAR(got, ref, tol);
            rb_kernels_scalar.quantize_act[RB_TYPE_BF16](x, hx, n);
            rb_kernels_scalar.quantize_act[RB_TYPE_BF16](y, hy, n);
            rb_kernels_scalar.vec_dot[RB_TYPE_BF16](n, &ref, hx, hy);
            t[k]->vec_dot[RB_TYPE_BF16](n, &got, hx, hy);
            CHECK_NEAR(got, ref, tol);
        }
}

TEST(f16_bf16_conversions_bit_exact) {
    const struct rb_kernels *t[3];
    neon_tables(t);
    /* every half (NaNs aside, whose payloads may differ), and back */
    static uint16_t h[65536], h2[65536];
    static float f[65536], f2[65536];
    int n = 0;
    for (uint32_t u = 0; u < 65536; u++)
        if ((u & 0x7C00) != 0x7C00 || (u & 0x03FF) == 0) h[n++] = (uint16_t)u;
    for (int k = 0; t[k]; k++) {
        rb_kernels_scalar.f16_to_f32(h, f, n);
        t[k]->f16_to_f32(h, f2, n);
        CHECK(!memcmp(f, f2, sizeof(float) * (size_t)n));
        /* floats between halves: round to nearest even, overflow, denormals */
        for (int i = 0; i < n; i++) f[i] = f[i] * (1.0f + rng_f() * 0.001f);
        for (int m = n - 5; m <= n; m++) { /* tails of every length */
            rb_kernels_scalar.f32_to_f16(f, h, m);
            t[k]->f32_to_f16(f, h2, m);
            CHECK(!memcmp(h, h2, 2 * (size_t)m));
            t[k]->quantize_act[RB_TYPE_F16](f, h2, m);
            CHECK(!memcmp(h, h2, 2 * (size_t)m));
        }
        /* BF16: ties to even, carries into the exponent, inf, NaN kept quiet */
        for (int i = 0; i < n; i++) {
            uint32_t bits = rng_u32();
            if (i % 4 == 0) bits = (bits & 0xFFFF0000u) | 0x8000u; /* exact tie */
            if (i % 97 == 0) bits = 0x7F800001u + (bits & 0x3Fu);  /* signalling NaN */
            if (i % 101 == 0) bits = 0x7F7FFFFFu;                  /* rounds to inf */
            memcpy(&f[i], &bits, 4);
        }
        rb_kernels_scalar.quantize_act[RB_TYPE_BF16](f, h, n);
        t[k]->quantize_act[RB_TYPE_BF16](f, h2, n);
        CHECK(!memcmp(h, h2, 2 * (size_t)n));
        t[k]->quantize_act[RB_TYPE_BF16](f, h2, 3); /* a tail only */
        CHECK(!memcmp(h, h2, 2 * 3));
    }
}

/* |got - ref| <= rel * |ref| + abs_tol for each element */
static int close_all(const float *ref, const float *got, int n, float rel, float abs_tol, int *at) {
    for (int i = 0; i < n; i++)
        if (!(fabsf(got[i] - ref[i]) <= rel * fabsf(ref[i]) + abs_tol)) { *at = i; return 0; }
    return 1;
}

TEST(float_helpers) {
    const struct rb_kernels *t[3];
    neon_tables(t);
    float x[200], w[200], b[200], g[200], r[200], o[200];
    int at = -1;
    for (int k = 0; t[k]; k++)
        for (int n = 1; n <= 200; n += n < 24 ? 1 : 29) {
            for (int i = 0; i < n; i++) {
                x[i] = rng_f() * 5.0f;
                w[i] = rng_f();
                b[i] = rng_f();
                g[i] = rng_f() * 30.0f; /* far into both tails of e^x */
            }
            const char *nm = table_name(t[k]);
            rb_kernels_scalar.rmsnorm(r, x, w, n, 1e-5f);
            t[k]->rmsnorm(o, x, w, n, 1e-5f);
            CHECK_MSG(close_all(r, o, n, 2e-6f, 1e-30f, &at), "%s rmsnorm n=%d i=%d", nm, n, at);
            rb_kernels_scalar.rmsnorm(r, x, NULL, n, 1e-5f);
            t[k]->rmsnorm(o, x, NULL, n, 1e-5f);
            CHECK_MSG(close_all(r, o, n, 2e-6f, 1e-30f, &at), "%s rmsnorm(w NULL) n=%d i=%d", nm, n, at);
            rb_kernels_scalar.layernorm(r, x, w, b, n, 1e-5f);
            t[k]->layernorm(o, x, w, b, n, 1e-5f);
            CHECK_MSG(close_all(r, o, n, 1e-5f, 1e-5f, &at), "%s layernorm n=%d i=%d", nm, n, at);
            memcpy(r, g, sizeof(float) * (size_t)n);
            memcpy(o, g, sizeof(float) * (size_t)n);
            rb_kernels_scalar.softmax(r, n);
            t[k]->softmax(o, n);
            CHECK_MSG(close_all(r, o, n, 2e-6f, 1e-37f, &at), "%s softmax n=%d i=%d", nm, n, at);
            rb_kernels_scalar.silu_mul(r, g, w, n);
            t[k]->silu_mul(o, g, w, n);
            CHECK_MSG(close_all(r, o, n, 2e-6f, 1e-37f, &at), "%s silu_mul n=%d i=%d", nm, n, at);
            memcpy(r, x, sizeof(float) * (size_t)n);
            memcpy(o, x, sizeof(float) * (size_t)n);
            rb_kernels_scalar.gelu(r, n);
            t[k]->gelu(o, n);
            /* tanhf(z) rounds to -1 for x < -9ish, where the true value is tiny */
            CHECK_MSG(close_all(r, o, n, 4e-6f, 1e-6f, &at), "%s gelu n=%d i=%d x=%g", nm, n, at, at >= 0 ? x[at] : 0.0);
            rb_kernels_scalar.add(r, x, w, n);
            t[k]->add(o, x, w, n);
            CHECK(!memcmp(r, o, sizeof(float) * (size_t)n));
        }
}

int main(void) {
    RUN(dispatch_matches_cpu);
    RUN(known_values);
    RUN(quantizers_bit_exact);
    RUN(int_dots_bit_exact);
    RUN(gemm_matches_vec_dot);
    RUN(float_dots);
    RUN(f16_bf16_conversions_bit_exact);
    RUN(float_helpers);
    return test_summary();
}

#else /* not aarch64: the NEON tables are not built */

int main(void) {
    (void)test_cur_failed;
    printf("test_neon: not an aarch64 build, nothing to run (make test-arm runs it under qemu)\n");
    return test_summary();
}

#endif
