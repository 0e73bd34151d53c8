/* test_attention.c - KV cache and attention: every cache type against a
 * float64 reference, the reference runtime's F16 numerics, causality,
 * sliding windows and the two scales, split-invariance across threads,
 * sizes and parsing. */
#include <pthread.h>
#include <stdint.h>

#include "test.h"
#include "../attention/attention.h"
#include "../attention/kv_rows.h"
#include "../simd/kernels.h"

/* Kernel table the helpers below run attention with: the one chosen at
 * start, or (plain_c_fallbacks) an empty one that forces attention/'s own C;
 * and the attention parameters (window, q_scale; 0 window and q_scale 1 =
 * plain causal attention with 1/sqrt(hd) on q.k). */
static const struct rb_kernels no_kernels = { .isa = "none" };
static const struct rb_kernels *test_kern;
static int test_window;
static float test_q_scale = 1.0f;
static void attend(const struct rb_kv_cache *kv, int layer, int n_heads, const float *q, float *out, int pos,
                   int t0, int t1, int h0, int h1, float *scratch) {
    struct rb_attn_params ap = rb_attn_params_default(kv->head_dim);
    ap.window = test_window;
    if (test_q_scale != 1.0f) { /* the scale moves from q.k to q, as phi3 does */
        ap.q_scale = test_q_scale;
        ap.kq_scale = ap.kq_scale / test_q_scale;
    }
    rb_attention(test_kern ? test_kern : rb_kernels(), kv, &ap, layer, n_heads, q, out, pos, t0, t1, h0, h1,
                 scratch);
}

/* ------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static void rng_seed(uint64_t s) { rng_state = s * 0x9e3779b97f4a7c15ull + 1; }
static float rng_uniform(void) { /* [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1ull << 23)) - 1.0);
}
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_uniform();
}

/* A test problem: n_tok tokens, q [n_tok][n_heads*hd], k and v [n_tok][n_kv*hd]. */
struct problem {
    int n_heads, n_kv, hd, n_tok;
    float *q, *k, *v;
};

static struct problem problem_new(int n_heads, int n_kv, int hd, int n_tok, uint64_t seed) {
    struct problem p = { n_heads, n_kv, hd, n_tok, NULL, NULL, NULL };
    rng_seed(seed);
    p.q = malloc(sizeof(float) * (size_t)n_tok * n_heads * hd);
    p.k = malloc(sizeof(float) * (size_t)n_tok * n_kv * hd);
    p.v = malloc(sizeof(float) * (size_t)n_tok * n_kv * hd);
    /* q scaled so scores have unit spread: attention is neither uniform nor one-hot */
    fill(p.q, (size_t)n_tok * n_heads * hd, 3.0f);
    fill(p.k, (size_t)n_tok * n_kv * hd, 1.0f);
    fill(p.v, (size_t)n_tok * n_kv * hd, 1.0f);
    return p;
}
static void problem_free(struct problem *p) { free(p->q); free(p->k); free(p->v); }

/* float64 causal GQA attention from the unrounded inputs; window > 0: token
 * t sees only keys t - window + 1 .. t. */
static void reference_attention_window(const struct problem *p, int window, double *out) {
    int hd = p->hd, group = p->n_heads / p->n_kv;
    double *s = malloc(sizeof(double) * (size_t)p->n_tok);
    for (int t = 0; t < p->n_tok; t++) {
        int first = window > 0 && t + 1 > window ? t + 1 - window : 0;
        for (int h = 0; h < p->n_heads; h++) {
            const float *q = p->q + ((size_t)t * p->n_heads + h) * hd;
            int kvh = h / group;
            double max = -INFINITY, sum = 0;
            for (int j = first; j <= t; j++) {
                const float *k = p->k + ((size_t)j * p->n_kv + kvh) * hd;
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)q[i] * k[i];
                s[j] = d / sqrt((double)hd);
                if (s[j] > max) max = s[j];
            }
            for (int j = first; j <= t; j++) { s[j] = exp(s[j] - max); sum += s[j]; }
            double *o = out + ((size_t)t * p->n_heads + h) * hd;
            for (int i = 0; i < hd; i++) o[i] = 0;
            for (int j = first; j <= t; j++) {
                const float *v = p->v + ((size_t)j * p->n_kv + kvh) * hd;
                for (int i = 0; i < hd; i++) o[i] += s[j] / sum * v[i];
            }
        }
    }
    free(s);
}

static void reference_attention(const struct problem *p, double *out) { reference_attention_window(p, 0, out); }

/* Run rb_attention over the whole problem: store all tokens, attend them
 * in one call (a prompt) into out; then, if out_step, attend the last
 * n_step tokens again one call each, as generation does, into out_step
 * (rows before those copied from out). */
static void run_attention(const struct problem *p, uint32_t tk, uint32_t tv, int n_ctx,
                          float *out, int n_step, float *out_step) {
    struct rb_kv_cache kv;
    char err[RB_ERR_MAX];
    int layer = 1; /* layer 1 of 2: catches layer offset mistakes */
    if (rb_kv_init(&kv, 2, n_ctx, p->n_kv, p->hd, tk, tv, err)) { printf("  %s\n", err); exit(1); }
    float *scratch = malloc(sizeof(float) * rb_attention_scratch_floats(&kv));
    size_t q_row = (size_t)p->n_heads * p->hd;
    rb_kv_store(&kv, layer, 0, p->n_tok, p->k, p->v);
    attend(&kv, layer, p->n_heads, p->q, out, 0, 0, p->n_tok, 0, p->n_heads, scratch);
    if (out_step) {
        int first = p->n_tok - n_step;
        memcpy(out_step, out, first * q_row * sizeof *out);
        for (int t = first; t < p->n_tok; t++)
            attend(&kv, layer, p->n_heads, p->q + t * q_row, out_step + t * q_row, t, 0, 1, 0, p->n_heads, scratch);
    }
    free(scratch);
    rb_kv_free(&kv);
}

/* Generation from an empty cache: store one token, attend it, next. */
static void run_generation(const struct problem *p, uint32_t tk, uint32_t tv, float *out) {
    struct rb_kv_cache kv;
    char err[RB_ERR_MAX];
    if (rb_kv_init(&kv, 1, p->n_tok, p->n_kv, p->hd, tk, tv, err)) { printf("  %s\n", err); exit(1); }
    float *scratch = malloc(sizeof(float) * rb_attention_scratch_floats(&kv));
    size_t q_row = (size_t)p->n_heads * p->hd, kv_row = (size_t)p->n_kv * p->hd;
    for (int t = 0; t < p->n_tok; t++) {
        rb_kv_store(&kv, 0, t, 1, p->k + t * kv_row, p->v + t * kv_row);
        attend(&kv, 0, p->n_heads, p->q + t * q_row, out + t * q_row, t, 0, 1, 0, p->n_heads, scratch);
    }
    free(scratch);
    rb_kv_free(&kv);
}

static double rms_diff(const float *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

static double max_abs_diff(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

/* One token's V values of one KV head as row bytes (v_row_bytes), from
 * either layout: rows, or transposed float V (head_dim rows of n_ctx). */
static void v_token_row(const struct rb_kv_cache *kv, int layer, int head, int pos, uint8_t *out) {
    size_t head_row0 = ((size_t)layer * kv->n_heads_kv + head) * kv->n_ctx;
    const uint8_t *v_head = kv->v + head_row0 * kv->v_row_bytes;
    if (!kv->v_trans) {
        memcpy(out, v_head + (size_t)pos * kv->v_row_bytes, kv->v_row_bytes);
        return;
    }
    size_t elem = kv->v_row_bytes / (size_t)kv->head_dim;
    for (int d = 0; d < kv->head_dim; d++)
        memcpy(out + d * elem, v_head + ((size_t)d * kv->n_ctx + (size_t)pos) * elem, elem);
}

/* ------------------------------------------------------------- parsing */

TEST(kv_type_parse) {
    uint32_t t = 999;
    CHECK(rb_kv_type_parse("f32", &t) == 0 && t == RB_TYPE_F32);
    CHECK(rb_kv_type_parse("f16", &t) == 0 && t == RB_TYPE_F16);
    CHECK(rb_kv_type_parse("q8_0", &t) == 0 && t == RB_TYPE_Q8_0);
    CHECK(rb_kv_type_parse("q4_0", &t) == 0 && t == RB_TYPE_Q4_0);
    CHECK(rb_kv_type_parse("Q8_0", &t) == 0 && t == RB_TYPE_Q8_0);
    t = 999;
    CHECK(rb_kv_type_parse("q4_1", &t) == -1);
    CHECK(rb_kv_type_parse("bf16", &t) == -1);
    CHECK(rb_kv_type_parse("q8", &t) == -1);
    CHECK(rb_kv_type_parse("", &t) == -1);
    CHECK(rb_kv_type_parse(NULL, &t) == -1);
    CHECK(t == 999);
}

/* --------------------------------------------------------------- sizes */

TEST(kv_bytes_exact) {
    /* TinyLlama-1.1B: 22 layers, 4 KV heads, head_dim 64, ctx 2048 */
    size_t f16 = rb_kv_bytes(22, 2048, 4, 64, RB_TYPE_F16, RB_TYPE_F16);
    CHECK(f16 == (size_t)2 * 22 * 4 * 2048 * 64 * 2);
    CHECK(rb_kv_bytes(22, 2048, 4, 64, RB_TYPE_F32, RB_TYPE_F32) == 2 * f16);
    CHECK(rb_kv_bytes(22, 2048, 4, 64, RB_TYPE_Q8_0, RB_TYPE_Q8_0) == (size_t)2 * 22 * 4 * 2048 * 2 * 34);
    CHECK(rb_kv_bytes(22, 2048, 4, 64, RB_TYPE_Q4_0, RB_TYPE_Q4_0) == (size_t)2 * 22 * 4 * 2048 * 2 * 18);
    CHECK(rb_kv_bytes(22, 2048, 4, 64, RB_TYPE_F16, RB_TYPE_Q4_0) == (size_t)22 * 4 * 2048 * (128 + 36));
    /* head_dim 8 (stories260K): a quantized row is one zero-padded block */
    CHECK(rb_kv_bytes(5, 512, 4, 8, RB_TYPE_Q8_0, RB_TYPE_Q8_0) == (size_t)2 * 5 * 4 * 512 * 34);
    CHECK(rb_kv_bytes(1, 1, 1, 48, RB_TYPE_Q4_0, RB_TYPE_F32) == 2 * 18 + 48 * 4);
    /* invalid input: 0 */
    CHECK(rb_kv_bytes(22, 2048, 4, 64, RB_TYPE_Q4_1, RB_TYPE_F16) == 0);
    CHECK(rb_kv_bytes(0, 2048, 4, 64, RB_TYPE_F16, RB_TYPE_F16) == 0);
    CHECK(rb_kv_bytes(22, -1, 4, 64, RB_TYPE_F16, RB_TYPE_F16) == 0);
    CHECK(rb_kv_bytes(1 << 30, 1 << 30, 1 << 30, 1 << 30, RB_TYPE_F32, RB_TYPE_F32) == 0); /* overflow */

    /* the memory budget, on realistic shapes (head_dim 64 and 128) */
    static const int shapes[][4] = { { 22, 1024, 4, 64 }, { 32, 4096, 8, 128 }, { 12, 2048, 12, 64 } };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        double f = (double)rb_kv_bytes(s[0], s[1], s[2], s[3], RB_TYPE_F16, RB_TYPE_F16);
        double q8 = (double)rb_kv_bytes(s[0], s[1], s[2], s[3], RB_TYPE_Q8_0, RB_TYPE_Q8_0);
        double q4 = (double)rb_kv_bytes(s[0], s[1], s[2], s[3], RB_TYPE_Q4_0, RB_TYPE_Q4_0);
        CHECK(q8 <= 0.55 * f);
        CHECK(q4 <= 0.30 * f);
    }
}

TEST(kv_init_and_errors) {
    struct rb_kv_cache kv;
    char err[RB_ERR_MAX] = "";
    CHECK(rb_kv_init(&kv, 2, 16, 2, 8, RB_TYPE_Q8_0, RB_TYPE_Q4_0, err) == 0);
    CHECK(kv.k_row_bytes == 34 && kv.v_row_bytes == 18);
    CHECK(kv.n_ctx == 16 && kv.head_dim == 8 && kv.type_k == RB_TYPE_Q8_0 && kv.type_v == RB_TYPE_Q4_0);
    rb_kv_free(&kv);
    CHECK(kv.k == NULL && kv.v == NULL);
    CHECK(rb_kv_init(&kv, 2, 16, 2, 64, RB_TYPE_Q4_1, RB_TYPE_F16, err) == -1);
    CHECK_CONTAINS(err, "not supported");
    CHECK(rb_kv_init(&kv, 2, 0, 2, 64, RB_TYPE_F16, RB_TYPE_F16, err) == -1);
    CHECK_CONTAINS(err, "bad shape");
    CHECK(rb_kv_init(&kv, 1 << 30, 1 << 30, 1 << 30, 1 << 30, RB_TYPE_F16, RB_TYPE_F16, err) == -1);
    CHECK_CONTAINS(err, "overflow");
}

/* Out-of-range calls are a caller's bug: they stop the program with the
 * file, line and condition (RB_CHECK) before touching memory outside the
 * cache, instead of returning as if nothing happened. */
TEST(out_of_range_calls_abort) {
    struct rb_kv_cache kv;
    char err[RB_ERR_MAX];
    CHECK(rb_kv_init(&kv, 2, 4, 1, 8, RB_TYPE_F16, RB_TYPE_Q8_0, err) == 0);
    float x[5 * 8], out[8] = { 42 };
    for (int i = 0; i < 40; i++) x[i] = 1.0f;
    float *scratch = malloc(sizeof(float) * rb_attention_scratch_floats(&kv));
    const char *store = "kv_cache.c:", *in_attention = "attention.c:";
    CHECK_ABORTS(store, rb_kv_store(&kv, 0, 2, 3, x, x)); /* positions 2..4 of 4 */
    CHECK_ABORTS(store, rb_kv_store(&kv, 2, 0, 1, x, x)); /* layer 2 of 2 */
    CHECK_ABORTS("check failed: layer >= 0", rb_kv_store(&kv, 0, -1, 1, x, x));
    CHECK_ABORTS(in_attention, attend(&kv, 0, 1, x, out, 4, 0, 1, 0, 1, scratch)); /* position 4 of 4 */
    CHECK_ABORTS(in_attention, attend(&kv, 2, 1, x, out, 0, 0, 1, 0, 1, scratch)); /* layer 2 */
    CHECK_ABORTS(in_attention, attend(&kv, 0, 1, x, out, 0, 0, 1, 0, 2, scratch)); /* head 1 of 1 */
    test_window = -1;
    CHECK_ABORTS(in_attention, attend(&kv, 0, 1, x, out, 0, 0, 1, 0, 1, scratch)); /* a negative window */
    test_window = 0;
    /* the last rows in range: no abort; every value is 1, so is their mean */
    rb_kv_store(&kv, 1, 0, 4, x, x);
    attend(&kv, 1, 1, x, out, 3, 0, 1, 0, 1, scratch);
    CHECK_NEAR(out[0], 1.0, 0.01);
    free(scratch);
    rb_kv_free(&kv);
}

/* ---------------------------------------------------------- row formats */

/* Plain reference for a half: sign * 2^(e-15) * (1 + m/1024), subnormals 2^-14 * m/1024. */
static float half_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    float sign = h & 0x8000 ? -1.0f : 1.0f;
    if (e == 31) return m ? NAN : sign * INFINITY;
    if (e == 0) return sign * ldexpf((float)m, -24);
    return sign * ldexpf((float)(1024 + m), e - 25);
}

/* The one F16 conversion (quant.h), as the cache and attention use it. */
TEST(f16_conversions) {
    int bad_to = 0, bad_round = 0, bad_mid = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float want = half_value((uint16_t)h), got = rb_f16_to_f32((uint16_t)h);
        int same = isnan(want) ? isnan(got) : (memcmp(&want, &got, 4) == 0);
        bad_to += !same;
        if (!isnan(want) && rb_f32_to_f16(want) != h) bad_round++; /* every half round-trips */
        /* halfway to the next half up (in magnitude) rounds to the even one */
        if ((h & 0x7fff) < 0x7bff) {
            float next = half_value((uint16_t)(h + 1));
            float mid = (float)(((double)want + next) / 2);
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            if (rb_f32_to_f16(mid) != even) bad_mid++;
            /* just above the midpoint rounds up */
            if (rb_f32_to_f16(nextafterf(mid, next)) != (uint16_t)(h + 1)) bad_mid++;
        }
    }
    CHECK_EQ_INT(bad_to, 0);
    CHECK_EQ_INT(bad_round, 0);
    CHECK_EQ_INT(bad_mid, 0);
    CHECK(rb_f32_to_f16(65520.0f) == 0x7c00);  /* rounds up to inf */
    CHECK(rb_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(rb_f32_to_f16(1e10f) == 0x7c00);
    CHECK(rb_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK((rb_f32_to_f16(NAN) & 0x7e00) == 0x7e00);
    CHECK(rb_f32_to_f16(1e-10f) == 0);           /* below half of the smallest subnormal */
    CHECK(rb_f32_to_f16(-0.0f) == 0x8000);
#ifdef __FLT16_MAX__
    /* Against the compiler's own conversion on random floats of every scale. */
    int bad_cc = 0;
    rng_seed(7);
    for (int i = 0; i < 200000; i++) {
        float f = ldexpf(rng_uniform(), (int)(rng_uniform() * 30));
        _Float16 c = (_Float16)f;
        uint16_t want;
        memcpy(&want, &c, 2);
        bad_cc += rb_f32_to_f16(f) != want;
    }
    CHECK_EQ_INT(bad_cc, 0);
#endif
}

/* Cache rows as stored: F16 rounding, quantized rows padded with zeros. */
TEST(kv_store_rows) {
    struct rb_kv_cache kv;
    char err[RB_ERR_MAX];
    float k[2 * 8], v[2 * 8];
    for (int i = 0; i < 16; i++) { k[i] = 0.1f * (float)(i - 5); v[i] = 0.1f * (float)(i - 5); }
    /* Q8_0 K and V, head_dim 8, 2 KV heads, layer 1, position 3 */
    CHECK(rb_kv_init(&kv, 2, 4, 2, 8, RB_TYPE_Q8_0, RB_TYPE_Q8_0, err) == 0);
    rb_kv_store(&kv, 1, 3, 1, k, v);
    /* KV head 1 of layer 1, position 3 = row (1 * 2 + 1) * 4 + 3 */
    block_q8_0 b;
    memcpy(&b, kv.v + 15 * kv.v_row_bytes, sizeof b);
    /* V: ggml's Q8_0, zero padded. head 1's values are 0.3 .. 1.0:
     * d = 1.0 / 127, q[i] = round((0.1 * (i + 3)) * 127) */
    CHECK_NEAR(rb_f16_to_f32(b.d), 1.0 / 127, 1e-5);
    CHECK_EQ_INT(b.qs[0], 38);
    CHECK_EQ_INT(b.qs[7], 127);
    int pad_nonzero = 0;
    for (int i = 8; i < 32; i++) pad_nonzero += b.qs[i] != 0;
    CHECK_EQ_INT(pad_nonzero, 0);
    /* K: the 8 values rotated (H8 / sqrt 8), four copies rounded with
     * offsets -3/8, -1/8, 1/8, 3/8: their mean is within a quarter step / 2 */
    memcpy(&b, kv.k + 15 * kv.k_row_bytes, sizeof b);
    float rot[8], d = rb_f16_to_f32(b.d);
    memcpy(rot, k + 8, sizeof rot);
    kv_rotate(rot, 8);
    CHECK_NEAR(rot[0], (0.3 + 0.4 + 0.5 + 0.6 + 0.7 + 0.8 + 0.9 + 1.0) / sqrt(8.0), 1e-6);
    int copies_differ = 0;
    for (int i = 0; i < 8; i++) {
        double mean = (b.qs[i] + b.qs[8 + i] + b.qs[16 + i] + b.qs[24 + i]) / 4.0;
        CHECK_NEAR(mean * d, rot[i], d * 0.126);
        copies_differ += b.qs[i] != b.qs[24 + i];
    }
    CHECK(copies_differ > 0);
    /* other rows untouched */
    CHECK(kv.k[14 * kv.k_row_bytes + 2] == 0);
    rb_kv_free(&kv);

    /* F16 rows round to nearest even; float V is stored transposed: layer 1,
     * KV head 1, value d, position p at ((1 * 2 + 1) * 8 + d) * n_ctx + p */
    CHECK(rb_kv_init(&kv, 2, 4, 2, 8, RB_TYPE_F16, RB_TYPE_F16, err) == 0);
    CHECK(kv.v_trans == 1);
    rb_kv_store(&kv, 1, 2, 1, k, v);
    uint16_t h;
    memcpy(&h, kv.v + 2 * ((size_t)(3 * 8 + 7) * 4 + 2), 2);
    CHECK(h == rb_f32_to_f16(1.0f) && rb_f16_to_f32(h) == 1.0f);
    memcpy(&h, kv.v + 2 * ((size_t)(3 * 8 + 0) * 4 + 2), 2);
    CHECK(h == rb_f32_to_f16(0.3f));
    memcpy(&h, kv.k + (size_t)(2 * 4 + 2) * kv.k_row_bytes + 2 * 1, 2); /* K rows: layer 1, head 0, pos 2 */
    CHECK(h == rb_f32_to_f16(-0.4f));
    int written = 0;
    for (size_t i = 0; i < 2 * 2 * 4 * kv.v_row_bytes; i += 2) written += kv.v[i] || kv.v[i + 1];
    CHECK_EQ_INT(written, 15); /* 16 values, one of them 0.0 (-5 + 5) */
    rb_kv_free(&kv);
    CHECK(rb_kv_init(&kv, 1, 3, 1, 8, RB_TYPE_F32, RB_TYPE_Q8_0, err) == 0);
    CHECK(kv.v_trans == 0); /* quantized V: rows, one token's blocks each */
    rb_kv_free(&kv);
    CHECK(rb_kv_init(&kv, 1, 3, 1, 8, RB_TYPE_Q8_0, RB_TYPE_F32, err) == 0);
    CHECK(kv.v_trans == 1);
    rb_kv_store(&kv, 0, 1, 2, k, v); /* two tokens at positions 1, 2 */
    float f;
    memcpy(&f, kv.v + 4 * ((size_t)5 * 3 + 2), 4); /* value 5 of the second token */
    CHECK(f == v[8 + 5]);
    rb_kv_free(&kv);

    /* Q4_0 V: ggml's rule d = max / -8 with max the signed value of largest magnitude */
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) / 2.0f; /* -8 .. 7.5 */
    CHECK(rb_kv_init(&kv, 1, 1, 1, 32, RB_TYPE_Q4_0, RB_TYPE_Q4_0, err) == 0);
    rb_kv_store(&kv, 0, 0, 1, x, x);
    block_q4_0 b4;
    memcpy(&b4, kv.v, sizeof b4);
    CHECK_NEAR(rb_f16_to_f32(b4.d), 1.0, 0);         /* -8 / -8 */
    CHECK_EQ_INT(b4.qs[0] & 15, 0);                    /* x = -8 -> 0 */
    CHECK_EQ_INT(b4.qs[0] >> 4, 8);                    /* x[16] = 0 -> 8 */
    CHECK_EQ_INT(b4.qs[15] >> 4, 15);                  /* x[31] = 7.5 -> min(15, 16) */
    rb_kv_free(&kv);
}

/* A query block meets a key block (rotated, replicated) in an integer dot
 * product that gives q.k: here with exactly representable values. */
TEST(key_blocks_keep_dot_products) {
    for (int m = 1; m <= 32; m++) {
        float q[32], k[32], qb[32], kb[32];
        double want = 0, got = 0;
        rng_seed(40 + m);
        fill(q, 32, 1.0f);
        fill(k, 32, 1.0f);
        for (int i = 0; i < m; i++) want += (double)q[i] * k[i];
        kv_key_block(q, m, 1, qb);
        kv_key_block(k, m, 0, kb);
        for (int i = 0; i < 32; i++) got += (double)qb[i] * kb[i];
        CHECK_MSG(fabs(got - want) < 1e-5, "m %d: %g vs %g", m, got, want);
    }
}

/* Cache rows hold exactly quant/'s conversions and quantizers (keys: of the
 * rotated blocks), whatever the scale of the values. */
TEST(rows_agree_with_quant) {
    static const uint32_t types[] = { RB_TYPE_F16, RB_TYPE_Q8_0, RB_TYPE_Q4_0 };
    for (int ti = 0; ti < 3; ti++) {
        struct rb_kv_cache kv;
        char err[RB_ERR_MAX];
        int n_rows = 64, hd = 64;
        CHECK(rb_kv_init(&kv, 1, n_rows, 1, hd, types[ti], types[ti], err) == 0);
        float x[64];
        uint8_t want[256];
        int bad = 0;
        rng_seed(3 + ti);
        for (int r = 0; r < n_rows; r++) {
            fill(x, 64, ldexpf(1.0f, r % 20 - 10)); /* scales 2^-10 .. 2^9 */
            if (r == 5) memset(x, 0, sizeof x);     /* all-zero block: d = 0 */
            rb_kv_store(&kv, 0, r, 1, x, x);
            if (types[ti] == RB_TYPE_F16)
                for (int i = 0; i < hd; i++) { rb_f16 h = rb_f32_to_f16(x[i]); memcpy(want + 2 * i, &h, 2); }
            else
                rb_traits(types[ti])->from_float(x, want, hd);
            uint8_t got[256];
            v_token_row(&kv, 0, 0, r, got);
            bad += memcmp(got, want, kv.v_row_bytes) != 0;
            /* keys: the same quantizer applied to the rotated blocks */
            if (types[ti] != RB_TYPE_F16) {
                float rot[64];
                memcpy(rot, x, sizeof rot);
                kv_rotate(rot, 32);
                kv_rotate(rot + 32, 32);
                rb_traits(types[ti])->from_float(rot, want, hd);
            }
            bad += memcmp(kv.k + (size_t)r * kv.k_row_bytes, want, kv.k_row_bytes) != 0;
        }
        CHECK_MSG(bad == 0, "%s: %d of %d rows differ from quant/", rb_type_name(types[ti]), bad, n_rows);
        rb_kv_free(&kv);
    }
}

/* ------------------------------------------------------------- accuracy */

struct type_case { uint32_t k, v; double tol; };
/* Tolerances on max |out - float64 reference| with |v| <= 1. Measured maxima
 * over the sweep are in the comments; the bounds leave about 3x headroom. */
static const struct type_case type_cases[] = {
    { RB_TYPE_F32, RB_TYPE_F32, 2e-6 },
    { RB_TYPE_F16, RB_TYPE_F16, 4e-3 },
    { RB_TYPE_Q8_0, RB_TYPE_Q8_0, 3e-2 },
    { RB_TYPE_Q4_0, RB_TYPE_Q4_0, 0.4 },
    { RB_TYPE_F16, RB_TYPE_Q8_0, 3e-2 },
    { RB_TYPE_Q8_0, RB_TYPE_F32, 3e-2 },
};
#define N_TYPE_CASES (sizeof type_cases / sizeof type_cases[0])

/* Every type, GQA ratios 1, 2, 4, 8 (2 KV heads), head dims 8, 48, 64, 128,
 * lengths 1, 7, 33 (as a prompt, and as generation from an empty cache) and
 * 300 (as a prompt, and its last 4 tokens again as generation steps). */
static void accuracy_sweep(int n_lens, int ratio_step) {
    static const int ratios[] = { 1, 2, 4, 8 }, dims[] = { 8, 48, 64, 128 }, lens[] = { 1, 7, 33, 300 };
    double worst[N_TYPE_CASES] = {0};
    for (int li = 0; li < n_lens; li++) {
        for (int di = 0; di < 4; di++) {
            for (int ri = 0; ri < 4; ri += ratio_step) {
                int len = lens[li], hd = dims[di], ratio = ratios[ri];
                if (len == 300 && ri != 3 - di) continue; /* long: one ratio per head dim (8..1), keeps it fast */
                struct problem p = problem_new(2 * ratio, 2, hd, len, (uint64_t)(li * 16 + di * 4 + ri));
                size_t n = (size_t)len * p.n_heads * hd;
                double *ref = malloc(n * sizeof *ref);
                float *out = malloc(n * sizeof *out), *out_step = malloc(n * sizeof *out);
                reference_attention(&p, ref);
                for (size_t c = 0; c < N_TYPE_CASES; c++) {
                    if (len == 300)
                        run_attention(&p, type_cases[c].k, type_cases[c].v, len + 3, out, 4, out_step);
                    else {
                        run_attention(&p, type_cases[c].k, type_cases[c].v, len + 3, out, 0, NULL);
                        run_generation(&p, type_cases[c].k, type_cases[c].v, out_step);
                    }
                    double e = max_abs_diff(out, ref, n), es = max_abs_diff(out_step, ref, n);
                    if (e > worst[c]) worst[c] = e;
                    CHECK_MSG(e <= type_cases[c].tol && es <= type_cases[c].tol,
                              "%s/%s ratio %d hd %d len %d: err %.3g (steps %.3g) > %.3g",
                              rb_type_name(type_cases[c].k), rb_type_name(type_cases[c].v), ratio, hd, len,
                              e, es, type_cases[c].tol);
                    /* a query's result does not depend on how tokens are batched */
                    CHECK_MSG(memcmp(out, out_step, n * sizeof *out) == 0, "prompt vs steps differ: %s ratio %d hd %d len %d",
                              rb_type_name(type_cases[c].k), ratio, hd, len);
                }
                free(ref); free(out); free(out_step);
                problem_free(&p);
            }
        }
    }
    for (size_t c = 0; c < N_TYPE_CASES; c++)
        printf("  k %-4s v %-4s  max err %.3g (tol %.3g)\n", rb_type_name(type_cases[c].k),
               rb_type_name(type_cases[c].v), worst[c], type_cases[c].tol);
}

TEST(accuracy) { accuracy_sweep(4, 1); }

/* The F16 cache follows the reference runtime's rounding: q and k in F16,
 * scores and softmax in F32, weights rounded to F16, v in F16. An emulation
 * of exactly that (q.k summed in double) agrees up to float summation noise,
 * which now and then flips the F16 rounding of one weight, so the maximum
 * error is a few 1e-6 and the RMS error far smaller; skipping the weight
 * rounding gives a 10x larger RMS error (checked too, so the test has teeth). */
static void emulate_f16(const struct problem *p, int round_weights, double *out) {
    int hd = p->hd, group = p->n_heads / p->n_kv;
    float *s = malloc(sizeof(float) * (size_t)p->n_tok);
    for (int t = 0; t < p->n_tok; t++)
        for (int h = 0; h < p->n_heads; h++) {
            const float *q = p->q + ((size_t)t * p->n_heads + h) * hd;
            int kvh = h / group;
            float max = -INFINITY;
            for (int j = 0; j <= t; j++) {
                const float *k = p->k + ((size_t)j * p->n_kv + kvh) * hd;
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)half_value(rb_f32_to_f16(q[i])) * half_value(rb_f32_to_f16(k[i]));
                s[j] = (float)d * (1.0f / sqrtf((float)hd));
                if (s[j] > max) max = s[j];
            }
            double sum = 0;
            for (int j = 0; j <= t; j++) { s[j] = expf(s[j] - max); sum += s[j]; }
            double *o = out + ((size_t)t * p->n_heads + h) * hd;
            for (int i = 0; i < hd; i++) o[i] = 0;
            for (int j = 0; j <= t; j++) {
                float w = s[j] * (float)(1.0 / sum);
                if (round_weights) w = half_value(rb_f32_to_f16(w));
                const float *v = p->v + ((size_t)j * p->n_kv + kvh) * hd;
                for (int i = 0; i < hd; i++) o[i] += (double)w * half_value(rb_f32_to_f16(v[i]));
            }
        }
    free(s);
}

TEST(f16_matches_reference_numerics) {
    struct problem p = problem_new(8, 2, 64, 40, 99);
    size_t n = (size_t)p.n_tok * p.n_heads * p.hd;
    double *emu = malloc(n * sizeof *emu), *emu_unrounded = malloc(n * sizeof *emu);
    float *out = malloc(n * sizeof *out);
    emulate_f16(&p, 1, emu);
    emulate_f16(&p, 0, emu_unrounded);
    run_attention(&p, RB_TYPE_F16, RB_TYPE_F16, 64, out, 0, NULL);
    double e = max_abs_diff(out, emu, n), rms = rms_diff(out, emu, n);
    double rms_unrounded = rms_diff(out, emu_unrounded, n);
    printf("  f16 vs emulation: max %.3g rms %.3g; rms vs emulation without weight rounding %.3g\n",
           e, rms, rms_unrounded);
    CHECK(e < 3e-5);
    CHECK(rms < 1e-6);
    CHECK(rms_unrounded > 10 * rms);
    free(emu); free(emu_unrounded); free(out);
    problem_free(&p);
}

/* ------------------------------------------------------------ causality */

TEST(causality) {
    for (size_t c = 0; c < N_TYPE_CASES; c++) {
        struct problem p = problem_new(4, 2, 48, 20, 5);
        size_t n = (size_t)p.n_tok * p.n_heads * p.hd, q_row = (size_t)p.n_heads * p.hd;
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        run_attention(&p, type_cases[c].k, type_cases[c].v, 32, a, 0, NULL);
        /* change token 12's key and value (both KV heads) */
        for (int i = 0; i < 2 * p.hd; i++) { p.k[12 * 2 * p.hd + i] += 0.5f; p.v[12 * 2 * p.hd + i] -= 0.7f; }
        run_attention(&p, type_cases[c].k, type_cases[c].v, 32, b, 0, NULL);
        CHECK_MSG(memcmp(a, b, 12 * q_row * sizeof *a) == 0, "%s: output before token 12 changed",
                  rb_type_name(type_cases[c].k));
        CHECK_MSG(memcmp(a + 12 * q_row, b + 12 * q_row, q_row * sizeof *a) != 0, "%s: token 12 ignores its key",
                  rb_type_name(type_cases[c].k));
        free(a); free(b);
        problem_free(&p);
    }
}

/* ------------------------------------------------- windows and scales */

/* A sliding window of w keys against the float64 reference with the same
 * window, as a prompt and as generation steps; a window as long as the
 * context changes nothing (bit for bit), a short one changes the output.
 * The q_scale runs move 1/sqrt(hd) from q.k onto q (phi3's order): the
 * result must still be the reference's, so an ignored q_scale fails. */
TEST(sliding_window_and_q_scale) {
    static const int windows[] = { 1, 5, 17 };
    static const float q_scales[] = { 1.0f, 0.125f };
    for (size_t c = 0; c < N_TYPE_CASES; c++) {
        struct problem p = problem_new(4, 2, 64, 40, 77 + c);
        size_t n = (size_t)p.n_tok * p.n_heads * p.hd;
        double *ref = malloc(n * sizeof *ref);
        float *full = malloc(n * sizeof *full), *out = malloc(n * sizeof *out), *steps = malloc(n * sizeof *out);
        run_attention(&p, type_cases[c].k, type_cases[c].v, 48, full, 0, NULL);
        test_window = 40;
        run_attention(&p, type_cases[c].k, type_cases[c].v, 48, out, 0, NULL);
        CHECK_MSG(memcmp(full, out, n * sizeof *out) == 0, "%s: a window of the whole context changed the output",
                  rb_type_name(type_cases[c].k));
        for (size_t qi = 0; qi < 2; qi++)
            for (size_t wi = 0; wi < 3; wi++) {
                test_window = windows[wi];
                test_q_scale = q_scales[qi];
                reference_attention_window(&p, windows[wi], ref);
                run_attention(&p, type_cases[c].k, type_cases[c].v, 48, out, 6, steps);
                double e = max_abs_diff(out, ref, n), es = max_abs_diff(steps, ref, n);
                CHECK_MSG(e <= type_cases[c].tol && es <= type_cases[c].tol,
                          "%s/%s window %d q_scale %g: err %.3g (steps %.3g) > %.3g",
                          rb_type_name(type_cases[c].k), rb_type_name(type_cases[c].v), windows[wi],
                          (double)q_scales[qi], e, es, type_cases[c].tol);
                CHECK_MSG(memcmp(full, out, n * sizeof *out) != 0, "window %d changed nothing", windows[wi]);
            }
        test_window = 0;
        test_q_scale = 1.0f;
        free(ref); free(full); free(out); free(steps);
        problem_free(&p);
    }
}

/* ---------------------------------------------------- split over threads */

struct split_job {
    const struct rb_kv_cache *kv;
    const float *q;
    float *out;
    int n_heads, pos, t0, t1, h0, h1;
};

static void *split_worker(void *arg) {
    struct split_job *j = arg;
    float *scratch = malloc(sizeof(float) * rb_attention_scratch_floats(j->kv));
    attend(j->kv, 0, j->n_heads, j->q, j->out, j->pos, j->t0, j->t1, j->h0, j->h1, scratch);
    free(scratch);
    return NULL;
}

/* Heads split at awkward points (inside a KV group) and tokens in uneven
 * blocks, run on threads at once: same bits as one call. */
TEST(split_is_bit_identical) {
    for (size_t c = 0; c < N_TYPE_CASES; c++) {
        int n_heads = 12, n_kv = 3, hd = 64, n_tok = 37, pos = 5, n_ctx = 64;
        struct problem p = problem_new(n_heads, n_kv, hd, n_tok + pos, 11 + c);
        struct rb_kv_cache kv;
        char err[RB_ERR_MAX];
        CHECK(rb_kv_init(&kv, 1, n_ctx, n_kv, hd, type_cases[c].k, type_cases[c].v, err) == 0);
        rb_kv_store(&kv, 0, 0, n_tok + pos, p.k, p.v);
        size_t q_row = (size_t)n_heads * hd, n = (size_t)n_tok * q_row;
        const float *q = p.q + pos * q_row; /* the batch: tokens pos .. pos + n_tok - 1 */
        float *whole = malloc(n * sizeof *whole), *split = malloc(n * sizeof *split);
        struct split_job one = { &kv, q, whole, n_heads, pos, 0, n_tok, 0, n_heads };
        split_worker(&one);
        static const int tok_cuts[] = { 0, 1, 17, 37 }, head_cuts[] = { 0, 3, 4, 9, 12 };
        struct split_job jobs[12];
        pthread_t th[12];
        int nj = 0;
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 4; b++)
                jobs[nj++] = (struct split_job){ &kv, q, split, n_heads, pos, tok_cuts[a], tok_cuts[a + 1],
                                                 head_cuts[b], head_cuts[b + 1] };
        for (int i = 0; i < nj; i++) pthread_create(&th[i], NULL, split_worker, &jobs[i]);
        for (int i = 0; i < nj; i++) pthread_join(th[i], NULL);
        CHECK_MSG(memcmp(whole, split, n * sizeof *whole) == 0, "%s/%s: split differs",
                  rb_type_name(type_cases[c].k), rb_type_name(type_cases[c].v));
        free(whole); free(split);
        rb_kv_free(&kv);
        problem_free(&p);
    }
}

/* The same checks with an empty kernel table: attention/'s plain C for the
 * dot products and F16 widening (what runs where simd/ lacks an entry). */
TEST(plain_c_fallbacks) {
    test_kern = &no_kernels;
    accuracy_sweep(3, 2); /* lengths 1, 7, 33; GQA ratios 1 and 4 */
    test_split_is_bit_identical();
    test_sliding_window_and_q_scale();
    test_kern = NULL;
}

/* The table's F16 gemm (keys against a batch's queries, transposed values
 * against its weights, one call per range of keys) gives the bits that one
 * vec_dot per pair gives: prompts whose queries see different key ranges,
 * windows that cut through them, generation steps, GQA ratios 1 and 4. */
TEST(f16_gemm_matches_pairs) {
    const struct rb_kernels *table = rb_kernels();
    if (!table->gemm[RB_TYPE_F16]) {
        printf("  (table %s has no F16 gemm: nothing to compare)\n", table->isa);
        return;
    }
    struct rb_kernels pairs = *table;
    pairs.gemm[RB_TYPE_F16] = NULL;
    static const int windows[] = { 0, 9 }, ratios[] = { 1, 4 };
    for (int wi = 0; wi < 2; wi++)
        for (int ri = 0; ri < 2; ri++) {
            struct problem p = problem_new(2 * ratios[ri], 2, 64, 45, 300 + wi * 2 + ri);
            size_t n = (size_t)p.n_tok * p.n_heads * p.hd;
            float *a = malloc(n * sizeof *a), *a_steps = malloc(n * sizeof *a);
            float *b = malloc(n * sizeof *b), *b_steps = malloc(n * sizeof *b);
            test_window = windows[wi];
            test_kern = table;
            run_attention(&p, RB_TYPE_F16, RB_TYPE_F16, 48, a, 5, a_steps);
            test_kern = &pairs;
            run_attention(&p, RB_TYPE_F16, RB_TYPE_F16, 48, b, 5, b_steps);
            test_kern = NULL;
            test_window = 0;
            CHECK_MSG(memcmp(a, b, n * sizeof *a) == 0 && memcmp(a_steps, b_steps, n * sizeof *a) == 0,
                      "window %d ratio %d: F16 gemm differs from vec_dot pairs", windows[wi], ratios[ri]);
            free(a); free(a_steps); free(b); free(b_steps);
            problem_free(&p);
        }
}

/* Splits stay bit-identical with a window that cuts through the batch. */
TEST(split_with_window) {
    test_window = 9;
    test_split_is_bit_identical();
    test_window = 0;
}

int main(void) {
    RUN(kv_type_parse);
    RUN(kv_bytes_exact);
    RUN(kv_init_and_errors);
    RUN(out_of_range_calls_abort);
    RUN(f16_conversions);
    RUN(kv_store_rows);
    RUN(rows_agree_with_quant);
    RUN(key_blocks_keep_dot_products);
    RUN(accuracy);
    RUN(f16_matches_reference_numerics);
    RUN(causality);
    RUN(split_is_bit_identical);
    RUN(sliding_window_and_q_scale);
    RUN(split_with_window);
    RUN(f16_gemm_matches_pairs);
    RUN(plain_c_fallbacks);
    return test_summary();
}
