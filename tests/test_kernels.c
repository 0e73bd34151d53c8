/* test_kernels.c - every kernel table this CPU can run against the scalar
 * reference (simd/scalar.c), on randomized and edge-case inputs.
 *
 * Error budgets:
 *  - activation quantizers, add, F16<->F32: bit-identical to scalar;
 *  - integer dot products: one block (32 or 256 elements) bit-identical; a
 *    longer row may add the per-block terms in another order, so
 *    |simd - scalar| <= 2e-7 * nblocks * sum over blocks of |block term|
 *    (each block term is exact in both; only float additions differ);
 *  - gemm: bit-identical to the same table's vec_dot, n_tok 1..9, 16, 17, 35
 *    (F16: 1..9 and 16 tokens, rows of 1 to 4100 values);
 *  - F32/F16/BF16 dots: 1e-5 * sum |x_i y_i| (scalar sums in double);
 *  - rmsnorm/layernorm/softmax/silu_mul/gelu: 2e-6 relative + 1e-7 absolute
 *    per element (1e-6 absolute for softmax of long rows).
 * The ISA under test is chosen with rb_kernels_select, as RBEE_ISA does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../simd/kernels.h"
#include "../quant/quant.h"

static const struct rb_kernels *K;                    /* table under test */
static const struct rb_kernels *const S = &rb_kernels_scalar;

/* ------------------------------------------------------------- random */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rnd_unit(void) { return (float)rnd() / 4294967296.0f * 2.0f - 1.0f; } /* [-1, 1) */
static void rnd_floats(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = rnd_unit() * scale;
}

/* --------------------------------------------------- block format facts */

struct wtype {
    int type, act_type, block, wsize, asize;
    int f16_off[2]; /* offsets of the F16 scale fields in a weight block (-1: none) */
};

static const struct wtype wtypes[] = {
    { RB_TYPE_Q4_0, RB_TYPE_Q8_0, 32, sizeof(block_q4_0), sizeof(block_q8_0), { 0, -1 } },
    { RB_TYPE_Q4_1, RB_TYPE_Q8_1, 32, sizeof(block_q4_1), sizeof(block_q8_1), { 0, 2 } },
    { RB_TYPE_Q5_0, RB_TYPE_Q8_0, 32, sizeof(block_q5_0), sizeof(block_q8_0), { 0, -1 } },
    { RB_TYPE_Q5_1, RB_TYPE_Q8_1, 32, sizeof(block_q5_1), sizeof(block_q8_1), { 0, 2 } },
    { RB_TYPE_Q8_0, RB_TYPE_Q8_0, 32, sizeof(block_q8_0), sizeof(block_q8_0), { 0, -1 } },
    { RB_TYPE_Q2_K, RB_TYPE_Q8_K, 256, sizeof(block_q2_K), sizeof(block_q8_K), { 80, 82 } },
    { RB_TYPE_Q3_K, RB_TYPE_Q8_K, 256, sizeof(block_q3_K), sizeof(block_q8_K), { 108, -1 } },
    { RB_TYPE_Q4_K, RB_TYPE_Q8_K, 256, sizeof(block_q4_K), sizeof(block_q8_K), { 0, 2 } },
    { RB_TYPE_Q5_K, RB_TYPE_Q8_K, 256, sizeof(block_q5_K), sizeof(block_q8_K), { 0, 2 } },
    { RB_TYPE_Q6_K, RB_TYPE_Q8_K, 256, sizeof(block_q6_K), sizeof(block_q8_K), { 208, -1 } },
};
#define N_WTYPES (int)(sizeof wtypes / sizeof wtypes[0])

enum fill { FILL_RANDOM, FILL_ZERO_BLOCKS, FILL_EXTREMES };

/* Random quant bytes, sane random scales; FILL_ZERO_BLOCKS zeroes every other
 * block; FILL_EXTREMES sets every quant bit (max nibbles, qh all ones). */
static void make_weights(const struct wtype *t, uint8_t *w, int64_t nb, enum fill fill) {
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = w + b * t->wsize;
        for (int i = 0; i < t->wsize; i++) blk[i] = fill == FILL_EXTREMES ? 0xFF : (uint8_t)rnd();
        for (int f = 0; f < 2; f++)
            if (t->f16_off[f] >= 0) {
                rb_f16 h = rb_f32_to_f16(rnd_unit() * 0.05f);
                memcpy(blk + t->f16_off[f], &h, 2);
            }
        if (fill == FILL_ZERO_BLOCKS && b % 2 == 0) memset(blk, 0, t->wsize);
    }
}

/* An activation row: scalar-quantized random floats, then edge values. */
static void make_acts(const struct wtype *t, uint8_t *a, int64_t n, enum fill fill) {
    float *x = malloc(n * sizeof *x);
    rnd_floats(x, n, 3.0f);
    if (fill == FILL_ZERO_BLOCKS)
        for (int64_t i = 0; i < n; i++)
            if ((i / t->block) % 3 == 1) x[i] = 0.0f;
    S->quantize_act[t->act_type](x, a, n);
    free(x);
    if (fill != FILL_EXTREMES) return;
    /* -128/127 activations: not produced by our quantizers, allowed in a row */
    for (int64_t b = 0; b < n / t->block; b++) {
        int8_t *qs;
        if (t->act_type == RB_TYPE_Q8_K) qs = ((block_q8_K *)a)[b].qs;
        else if (t->act_type == RB_TYPE_Q8_1) qs = ((block_q8_1 *)a)[b].qs;
        else qs = ((block_q8_0 *)a)[b].qs;
        for (int i = 0; i < t->block; i++) qs[i] = (rnd() & 1) ? -128 : 127;
        if (t->act_type == RB_TYPE_Q8_K) {
            block_q8_K *k = &((block_q8_K *)a)[b];
            for (int j = 0; j < QK_K / 16; j++) {
                int sum = 0;
                for (int l = 0; l < 16; l++) sum += k->qs[16 * j + l];
                k->bsums[j] = (int16_t)sum;
            }
        }
    }
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* --------------------------------------------------- integer dot products */

static void check_vec_dot(const struct wtype *t, int64_t n, enum fill fill) {
    const int64_t nb = n / t->block;
    uint8_t *w = malloc(nb * t->wsize), *a = malloc(nb * t->asize);
    make_weights(t, w, nb, fill);
    make_acts(t, a, n, fill);
    float got = -1.0f, want = -2.0f;
    K->vec_dot[t->type](n, &got, w, a);
    S->vec_dot[t->type](n, &want, w, a);
    if (nb == 1) {
        CHECK_MSG(same_bits(got, want), "%s n=%lld fill=%d: %.9g != scalar %.9g (one block: bit-exact)",
                  rb_type_name(t->type), (long long)n, (int)fill, got, want);
    } else {
        double abs_terms = 0.0;
        for (int64_t b = 0; b < nb; b++) {
            float term;
            S->vec_dot[t->type](t->block, &term, w + b * t->wsize, a + b * t->asize);
            abs_terms += fabs(term);
        }
        double tol = 2e-7 * (double)nb * abs_terms;
        CHECK_MSG(fabs((double)got - want) <= tol, "%s n=%lld fill=%d: %.9g vs scalar %.9g (tol %g)",
                  rb_type_name(t->type), (long long)n, (int)fill, got, want, tol);
    }
    free(w);
    free(a);
}

TEST(vec_dot_quant) {
    static const int64_t len32[] = { 32, 96, 160, 288, 1056, 1312, 4096 };
    static const int64_t len256[] = { 256, 768, 2304, 4096, 4352 };
    for (int i = 0; i < N_WTYPES; i++) {
        const struct wtype *t = &wtypes[i];
        if (!S->vec_dot[t->type]) continue;
        CHECK_MSG(K->vec_dot[t->type] != NULL, "%s: no vec_dot", rb_type_name(t->type));
        if (!K->vec_dot[t->type]) continue;
        const int64_t *lens = t->block == 32 ? len32 : len256;
        int n_lens = t->block == 32 ? 7 : 5;
        for (int l = 0; l < n_lens; l++)
            for (int fill = FILL_RANDOM; fill <= FILL_EXTREMES; fill++)
                for (int rep = 0; rep < 3; rep++) check_vec_dot(t, lens[l], (enum fill)fill);
    }
}

/* Every single-block row of many random blocks: the per-block sums must be
 * exact, so each must match scalar bit for bit. */
TEST(vec_dot_one_block_exact) {
    for (int i = 0; i < N_WTYPES; i++) {
        const struct wtype *t = &wtypes[i];
        if (!S->vec_dot[t->type] || !K->vec_dot[t->type]) continue;
        for (int rep = 0; rep < 200; rep++) check_vec_dot(t, t->block, (enum fill)(rep % 3));
    }
}

TEST(gemm_matches_vec_dot) {
    for (int i = 0; i < N_WTYPES; i++) {
        const struct wtype *t = &wtypes[i];
        if (!K->gemm[t->type]) continue;
        /* 41 blocks: two groups of 16, one of 8 and a single one; 289 blocks:
         * several chunks of a row (kernels may sum a long row in pieces) and
         * a partial group of 16; 3, 9 and 17 super-blocks (a partial quad); rows of
         * one block or super-block, and of 8 blocks (kernels may put several
         * rows in one vector);
         * 11 rows: whole groups of 4 and 8 rows and a partial one */
        const int64_t lens32[] = { 1312, 9248, 32, 256 }, lens256[] = { 768, 2304, 256, 4352 };
        for (int li = 0; li < 4; li++) {
        const int64_t n = t->block == 32 ? lens32[li] : lens256[li], nb = n / t->block, n_rows = 11;
        /* padded strides (kept aligned for the block structs scalar code uses) */
        const size_t wrb = nb * t->wsize + 6, arb = nb * t->asize + 8;
        /* 1..9 tokens, then batches long enough for a prompt path (kernels may
         * repack rows when the tokens are many) with partial token tiles */
        static const int toks[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 35 };
        for (int ti = 0; ti < (int)(sizeof toks / sizeof toks[0]); ti++) {
            const int n_tok = toks[ti];
            uint8_t *w = malloc(n_rows * wrb), *a = malloc(n_tok * arb);
            for (int r = 0; r < n_rows; r++) make_weights(t, w + r * wrb, nb, r == 1 ? FILL_EXTREMES : FILL_RANDOM);
            for (int tk = 0; tk < n_tok; tk++) make_acts(t, a + tk * arb, n, tk == 2 ? FILL_EXTREMES : FILL_RANDOM);
            const int64_t stride = n_rows + 2;
            float *out = malloc(n_tok * stride * sizeof *out);
            for (int64_t j = 0; j < n_tok * stride; j++) out[j] = -7.0f;
            K->gemm[t->type](n, n_rows, n_tok, w, wrb, a, arb, out, stride);
            for (int tk = 0; tk < n_tok; tk++)
                for (int r = 0; r < n_rows; r++) {
                    float want;
                    K->vec_dot[t->type](n, &want, w + r * wrb, a + tk * arb);
                    CHECK_MSG(same_bits(out[tk * stride + r], want), "%s gemm n=%lld n_tok=%d r=%d t=%d: %.9g != vec_dot %.9g",
                              rb_type_name(t->type), (long long)n, n_tok, r, tk, out[tk * stride + r], want);
                }
            for (int tk = 0; tk < n_tok; tk++) /* padding untouched */
                CHECK(out[tk * stride + n_rows] == -7.0f && out[tk * stride + n_rows + 1] == -7.0f);
            free(w);
            free(a);
            free(out);
        }
        }
    }
}

/* F16 rows against F16 tokens (attention's keys and values): bit-identical
 * to vec_dot[F16] per pair. Lengths with and without a tail of under 16,
 * head dims, and a key range long enough that the tokens no longer fit
 * widened on the kernel's stack; 1..9 tokens (tiles of 4 and their rest). */
TEST(gemm_f16_matches_vec_dot) {
    if (!K->gemm[RB_TYPE_F16]) {
        printf("  (table %s has no F16 gemm: callers loop vec_dot)\n", K->isa);
        return;
    }
    static const int64_t lens[] = { 1, 7, 16, 17, 64, 100, 128, 1000, 4100 };
    static const int toks[] = { 1, 2, 3, 4, 5, 7, 8, 9, 16 };
    for (int li = 0; li < (int)(sizeof lens / sizeof lens[0]); li++)
        for (int ti = 0; ti < (int)(sizeof toks / sizeof toks[0]); ti++) {
            const int64_t n = lens[li], n_rows = 5, stride = n_rows + 2;
            const int n_tok = toks[ti];
            const size_t wrb = (size_t)(n + 3) * 2, arb = (size_t)(n + 5) * 2; /* padded, odd element strides */
            rb_f16 *w = malloc(n_rows * wrb), *a = malloc(n_tok * arb);
            for (size_t j = 0; j < n_rows * wrb / 2; j++) w[j] = rb_f32_to_f16(rnd_unit() * 4.0f);
            for (size_t j = 0; j < n_tok * arb / 2; j++) a[j] = rb_f32_to_f16(rnd_unit());
            float *out = malloc(n_tok * stride * sizeof *out);
            for (int64_t j = 0; j < n_tok * stride; j++) out[j] = -7.0f;
            K->gemm[RB_TYPE_F16](n, n_rows, n_tok, w, wrb, a, arb, out, stride);
            for (int tk = 0; tk < n_tok; tk++) {
                for (int r = 0; r < n_rows; r++) {
                    float want;
                    K->vec_dot[RB_TYPE_F16](n, &want, (const uint8_t *)w + r * wrb, (const uint8_t *)a + tk * arb);
                    CHECK_MSG(same_bits(out[tk * stride + r], want), "f16 gemm n=%lld n_tok=%d r=%d t=%d: %.9g != vec_dot %.9g",
                              (long long)n, n_tok, r, tk, out[tk * stride + r], want);
                }
                CHECK(out[tk * stride + n_rows] == -7.0f && out[tk * stride + n_rows + 1] == -7.0f);
            }
            free(w);
            free(a);
            free(out);
        }
}

/* ------------------------------------------------ activation quantizers */

static void check_quantize(int act_type, int block, size_t bsize, const float *x, int64_t n) {
    size_t bytes = (size_t)(n / block) * bsize;
    uint8_t *got = malloc(bytes), *want = malloc(bytes);
    memset(got, 0xAB, bytes);
    memset(want, 0xCD, bytes);
    K->quantize_act[act_type](x, got, n);
    S->quantize_act[act_type](x, want, n);
    size_t first = bytes;
    for (size_t i = 0; i < bytes && first == bytes; i++)
        if (got[i] != want[i]) first = i;
    CHECK_MSG(first == bytes, "quantize %s n=%lld: byte %zu differs (%d vs scalar %d)",
              rb_type_name(act_type), (long long)n, first, first < bytes ? got[first] : 0, first < bytes ? want[first] : 0);
    free(got);
    free(want);
}

TEST(quantize_act_bit_exact) {
    static const struct { int type, block; size_t size; } acts[] = {
        { RB_TYPE_Q8_0, 32, sizeof(block_q8_0) }, { RB_TYPE_Q8_1, 32, sizeof(block_q8_1) },
        { RB_TYPE_Q8_K, 256, sizeof(block_q8_K) }, { RB_TYPE_F16, 1, 2 }, { RB_TYPE_BF16, 1, 2 },
    };
    const int64_t n_max = 2304;
    float *x = malloc(n_max * sizeof *x);
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        if (!S->quantize_act[acts[a].type]) continue;
        CHECK_MSG(K->quantize_act[acts[a].type] != NULL, "no quantize_act for %s", rb_type_name(acts[a].type));
        if (!K->quantize_act[acts[a].type]) continue;
        for (int64_t n = acts[a].block; n <= n_max; n += acts[a].block * (acts[a].block == 1 ? 37 : 3)) {
            rnd_floats(x, n, 10.0f);
            check_quantize(acts[a].type, acts[a].block, acts[a].size, x, n);
        }
        /* ties: amax 127 makes the multiplier 1, so k + 0.5 must round to even;
         * a zero block and a block whose extreme is negative */
        const int64_t n = acts[a].block == 1 ? 256 : acts[a].block * 4;
        for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(rnd() % 254) - 127) + 0.5f;
        for (int64_t b = 0; b < n; b += (acts[a].block == 1 ? 32 : acts[a].block)) x[b] = 127.0f;
        if (acts[a].block > 1) {
            for (int64_t i = acts[a].block; i < 2 * acts[a].block; i++) x[i] = 0.0f;
            x[2 * acts[a].block + 5] = -127.0f;
            x[2 * acts[a].block] = 3.0f;
        }
        check_quantize(acts[a].type, acts[a].block, acts[a].size, x, n);
        /* NaN and Inf inputs (scalar: NaN quantizes to 0, an Inf block to 0s) */
        rnd_floats(x, n, 10.0f);
        x[3] = NAN;
        x[n - 1] = INFINITY;
        if (n > 64) x[40] = -INFINITY;
        check_quantize(acts[a].type, acts[a].block, acts[a].size, x, n);
    }
    free(x);
}

/* ---------------------------------------------------- float dot products */

TEST(vec_dot_float) {
    static const int64_t lens[] = { 1, 7, 8, 15, 16, 33, 64, 100, 257, 4096 };
    static const int types[] = { RB_TYPE_F32, RB_TYPE_F16, RB_TYPE_BF16 };
    for (size_t ti = 0; ti < 3; ti++) {
        int type = types[ti];
        if (!S->vec_dot[type]) continue;
        CHECK_MSG(K->vec_dot[type] != NULL, "no vec_dot for %s", rb_type_name(type));
        if (!K->vec_dot[type]) continue;
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            int64_t n = lens[l];
            float *xf = malloc(n * 4), *yf = malloc(n * 4);
            rnd_floats(xf, n, 2.0f);
            rnd_floats(yf, n, 2.0f);
            void *x = xf, *y = yf;
            uint16_t *xh = malloc(n * 2), *yh = malloc(n * 2);
            if (type != RB_TYPE_F32) {
                S->quantize_act[type](xf, xh, n);
                S->quantize_act[type](yf, yh, n);
                x = xh;
                y = yh;
            }
            float got, want;
            K->vec_dot[type](n, &got, x, y);
            S->vec_dot[type](n, &want, x, y);
            double abs_terms = 0.0;
            for (int64_t i = 0; i < n; i++) abs_terms += fabs((double)xf[i] * yf[i]);
            CHECK_MSG(fabs((double)got - want) <= 1e-5 * abs_terms + 1e-30, "%s n=%lld: %.9g vs scalar %.9g",
                      rb_type_name(type), (long long)n, got, want);
            free(xf); free(yf); free(xh); free(yh);
        }
    }
}

/* ---------------------------------------------------------- float helpers */

static int close_rel(float got, float want, double rel, double abs_tol) {
    return fabs((double)got - want) <= rel * fabs(want) + abs_tol;
}

/* Compares n floats; reports the first mismatch. */
static void check_floats(const char *what, int64_t n, const float *got, const float *want, double rel, double abs_tol) {
    for (int64_t i = 0; i < n; i++)
        if (!close_rel(got[i], want[i], rel, abs_tol)) {
            TEST_FAIL_AT("%s n=%lld [%lld]: %.9g vs scalar %.9g", what, (long long)n, (long long)i, got[i], want[i]);
            return;
        }
}

TEST(float_helpers) {
    static const int64_t lens[] = { 1, 3, 8, 17, 31, 64, 65, 288, 2048, 5632 };
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        int64_t n = lens[l];
        float *x = malloc(n * 4), *w = malloc(n * 4), *b = malloc(n * 4), *got = malloc(n * 4), *want = malloc(n * 4);
        rnd_floats(x, n, 4.0f);
        rnd_floats(w, n, 1.5f);
        rnd_floats(b, n, 0.5f);

        K->rmsnorm(got, x, w, n, 1e-5f);
        S->rmsnorm(want, x, w, n, 1e-5f);
        check_floats("rmsnorm", n, got, want, 2e-6, 1e-7);
        K->rmsnorm(got, x, NULL, n, 1e-6f);
        S->rmsnorm(want, x, NULL, n, 1e-6f);
        check_floats("rmsnorm w=NULL", n, got, want, 2e-6, 1e-7);

        K->layernorm(got, x, w, b, n, 1e-5f);
        S->layernorm(want, x, w, b, n, 1e-5f);
        check_floats("layernorm", n, got, want, 2e-6, 1e-6);
        K->layernorm(got, x, NULL, NULL, n, 1e-5f);
        S->layernorm(want, x, NULL, NULL, n, 1e-5f);
        check_floats("layernorm w,b=NULL", n, got, want, 2e-6, 1e-6);

        memcpy(got, x, n * 4);
        memcpy(want, x, n * 4);
        got[n / 2] = want[n / 2] = 60.0f; /* max subtraction must keep exp finite */
        K->softmax(got, n);
        S->softmax(want, n);
        check_floats("softmax", n, got, want, 2e-6, 1e-7);

        K->silu_mul(got, x, w, n);
        S->silu_mul(want, x, w, n);
        check_floats("silu_mul", n, got, want, 2e-6, 1e-7);

        memcpy(got, x, n * 4);
        memcpy(want, x, n * 4);
        K->gelu(got, n);
        S->gelu(want, n);
        check_floats("gelu", n, got, want, 2e-6, 1e-7);

        K->add(got, x, w, n);
        S->add(want, x, w, n);
        check_floats("add", n, got, want, 0.0, 0.0);

        /* in place (out == an input), as the forward pass calls them */
        memcpy(got, x, n * 4);
        memcpy(want, x, n * 4);
        K->add(got, got, w, n);
        S->add(want, want, w, n);
        K->silu_mul(got, got, b, n);
        S->silu_mul(want, want, b, n);
        K->rmsnorm(got, got, w, n, 1e-5f);
        S->rmsnorm(want, want, w, n, 1e-5f);
        check_floats("add, silu_mul, rmsnorm in place", n, got, want, 1e-5, 1e-6);

        free(x); free(w); free(b); free(got); free(want);
    }
}

TEST(f16_conversion) {
    /* every half value, NaNs compared as NaN */
    enum { N = 65536 };
    uint16_t *h = malloc(N * 2), *hg = malloc(N * 2), *hw = malloc(N * 2);
    float *got = malloc(N * 4), *want = malloc(N * 4);
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    K->f16_to_f32(h, got, N - 3); /* odd length: vector body and a tail */
    S->f16_to_f32(h, want, N - 3);
    int bad = -1;
    for (int i = 0; i < N - 3 && bad < 0; i++)
        if (!(isnan(want[i]) ? isnan(got[i]) : same_bits(got[i], want[i]))) bad = i;
    CHECK_MSG(bad < 0, "f16_to_f32(0x%04x): %.9g vs scalar %.9g", bad, bad >= 0 ? got[bad] : 0, bad >= 0 ? want[bad] : 0);

    /* f32 -> f16: random magnitudes over the whole half range, exact halves
     * and halfway points between neighbours (round to even), overflow. */
    for (int i = 0; i < N; i++) {
        float v;
        switch (i % 4) {
        case 0: v = rnd_unit() * ldexpf(1.0f, (int)(rnd() % 40) - 26); break;
        case 1: v = want[rnd() % 0x7C00]; break;
        case 2: { int k = rnd() % 0x7BFF; v = (want[k] + want[k + 1]) * 0.5f; break; }
        default: v = rnd_unit() * 70000.0f; break;
        }
        got[i] = (i & 8) ? -v : v;
    }
    K->f32_to_f16(got, hg, N - 5);
    S->f32_to_f16(got, hw, N - 5);
    bad = -1;
    for (int i = 0; i < N - 5 && bad < 0; i++)
        if (hg[i] != hw[i]) bad = i;
    CHECK_MSG(bad < 0, "f32_to_f16(%.9g): 0x%04x vs scalar 0x%04x", bad >= 0 ? got[bad] : 0,
              bad >= 0 ? hg[bad] : 0, bad >= 0 ? hw[bad] : 0);
    free(h); free(hg); free(hw); free(got); free(want);
}

/* Every entry the scalar table has, this table has. */
TEST(table_complete) {
    for (int t = 0; t < RB_TYPE_COUNT; t++) {
        CHECK_MSG(!S->vec_dot[t] || K->vec_dot[t], "%s: vec_dot missing for %s", K->isa, rb_type_name(t));
        CHECK_MSG(!S->quantize_act[t] || K->quantize_act[t], "%s: quantize_act missing for %s", K->isa, rb_type_name(t));
    }
    CHECK(K->rmsnorm && K->layernorm && K->softmax && K->silu_mul && K->gelu && K->add && K->f16_to_f32 && K->f32_to_f16);
}

/* ---------------------------------------------------------------- dispatch */

/* Runs before anything selects: the first rb_kernels() honours RBEE_ISA when
 * this CPU has it, else picks the best table (the last one listed). */
TEST(first_choice) {
    char names[128];
    snprintf(names, sizeof names, "%s", rb_kernels_available());
    const char *best = strrchr(names, ' ') ? strrchr(names, ' ') + 1 : names;
    const char *env = getenv("RBEE_ISA");
    int env_ok = 0;
    if (env && *env)
        for (char *isa = strtok(names, " "); isa; isa = strtok(NULL, " "))
            if (!strcmp(isa, env)) env_ok = 1;
    CHECK_STR(rb_kernels()->isa, env_ok ? env : best);
    CHECK(rb_kernels() == rb_kernels()); /* chosen once */
}

TEST(dispatch) {
    char err[RB_ERR_MAX] = "";
    const char *avail = rb_kernels_available();
    CHECK(strncmp(avail, "scalar", 6) == 0);
    CHECK(rb_kernels_select("no-such-isa", err) == -1);
    CHECK_CONTAINS(err, "no-such-isa");
    CHECK_CONTAINS(err, avail);
    /* an ISA of the other architecture is refused, never selected */
#if defined(__x86_64__)
    CHECK(rb_kernels_select("neon", err) == -1);
    CHECK_CONTAINS(err, "lacks");
#elif defined(__aarch64__)
    CHECK(rb_kernels_select("avx2", err) == -1);
#endif
    CHECK(rb_kernels_select("scalar", err) == 0);
    CHECK(rb_kernels() == &rb_kernels_scalar);
}

#if defined(__x86_64__)
/* The x86 choice for CPUs this machine is not: CPUID/XGETBV as they report
 * it (AVX-VNNI: CPUID 7.1 EAX bit 4; the evex build needs the OS to save
 * the ZMM state). Best last is what rb_kernels() picks. */
static const char *x86_names(uint32_t l1c, uint32_t l7b, uint32_t l7c, uint32_t l71a, uint64_t xcr0) {
    static char names[128];
    const struct rb_x86_cpuid r = { l1c, l7b, l7c, l71a, xcr0 };
    const struct rb_kernels *t[RB_X86_TABLES_MAX];
    int n = rb_x86_tables(&r, t);
    names[0] = 0;
    for (int i = 0; i < n; i++) {
        if (i) strcat(names, " ");
        strcat(names, t[i]->isa);
    }
    return names;
}

TEST(x86_choice) {
    const uint32_t avx_f16c_fma = 1u << 12 | 1u << 27 | 1u << 28 | 1u << 29;
    const uint32_t avx2 = 1u << 5, avx512 = 1u << 5 | 1u << 16 | 1u << 17 | 1u << 30 | 1u << 31;
    const uint32_t vnni512 = 1u << 11, avxvnni = 1u << 4, bf16 = 1u << 5;
    /* Haswell .. Zen 3: AVX2 */
    CHECK_STR(x86_names(avx_f16c_fma, avx2, 0, 0, 0x7), "scalar avx2");
    /* Alder Lake: AVX-VNNI, no AVX-512 (and no ZMM state) */
#ifndef RB_NO_AVXVNNI
    CHECK_STR(x86_names(avx_f16c_fma, avx2, 0, avxvnni, 0x7), "scalar avx2 avxvnni");
    /* Sapphire Rapids: both; the VEX build, avx512 best */
    CHECK_STR(x86_names(avx_f16c_fma, avx512, vnni512, avxvnni | bf16, 0xe7), "scalar avx2 avxvnni avx512");
#endif
    /* Zen 4: AVX-512 VNNI and BF16, no AVX-VNNI: the evex build is tested there */
    CHECK_STR(x86_names(avx_f16c_fma, avx512, vnni512, bf16, 0xe7), "scalar avx2 avxvnni_evex avx512");
    /* Skylake-X: AVX-512 without VNNI */
    CHECK_STR(x86_names(avx_f16c_fma, avx512, 0, 0, 0xe7), "scalar avx2");
    /* an OS that does not save the ZMM state: no EVEX code */
    CHECK_STR(x86_names(avx_f16c_fma, avx512, vnni512, 0, 0x7), "scalar avx2");
    /* an OS without YMM state, no OSXSAVE, no F16C, no FMA: scalar only */
    CHECK_STR(x86_names(avx_f16c_fma, avx512, vnni512, avxvnni, 0x3), "scalar");
    CHECK_STR(x86_names(avx_f16c_fma & ~(1u << 27), avx2, 0, avxvnni, 0x7), "scalar");
    CHECK_STR(x86_names(avx_f16c_fma & ~(1u << 29), avx2, 0, 0, 0x7), "scalar");
    CHECK_STR(x86_names(avx_f16c_fma & ~(1u << 12), avx2, 0, 0, 0x7), "scalar");
#ifndef RB_NO_AVXVNNI
    /* the VEX table cannot run here: at least it is whole (its code is the
     * avxvnni_evex table's, which runs every test above where it can) */
    CHECK_STR(rb_kernels_avxvnni.isa, "avxvnni");
    for (int t = 0; t < RB_TYPE_COUNT; t++) {
        CHECK(!S->vec_dot[t] || rb_kernels_avxvnni.vec_dot[t]);
        CHECK(!S->quantize_act[t] || rb_kernels_avxvnni.quantize_act[t]);
        CHECK(!rb_kernels_avxvnni_evex.gemm[t] == !rb_kernels_avxvnni.gemm[t]);
    }
#endif
}
#endif

int main(void) {
    char names[128], err[RB_ERR_MAX];
    snprintf(names, sizeof names, "%s", rb_kernels_available());
    printf("kernel ISAs on this CPU: %s\n", names);
    RUN(first_choice);
    RUN(dispatch);
#if defined(__x86_64__)
    RUN(x86_choice);
#endif
    for (char *isa = strtok(names, " "); isa; isa = strtok(NULL, " ")) {
        if (rb_kernels_select(isa, err) != 0) {
            printf("FAIL select %s: %s\n", isa, err);
            test_n_failed++;
            continue;
        }
        K = rb_kernels();
        printf("-- isa %s\n", K->isa);
        RUN(table_complete);
        RUN(quantize_act_bit_exact);
        RUN(vec_dot_one_block_exact);
        RUN(vec_dot_quant);
        RUN(gemm_matches_vec_dot);
        RUN(gemm_f16_matches_vec_dot);
        RUN(vec_dot_float);
        RUN(float_helpers);
        RUN(f16_conversion);
    }
    return test_summary();
}
