/* test_quantize.c - the weight quantizers, quantization against real files
 * and `rbee quantize`.
 *
 *  - Row quantizers (traits from_float): round-trip error budgets on Gaussian
 *    data and edge cases: all-zero blocks, one huge outlier, negative-only
 *    blocks, F16 subnormals, NaN/Inf input never crashes (UBSan-clean).
 *  - Dequantizing every tensor of every quantized file in $SHARED/models
 *    agrees with the F16/F32 original within the format's expected error.
 *  - The model quantizer (runtime/quantize.h) against llama.cpp's files made
 *    from the same F16 source: same type per tensor (the mix) and the same
 *    bytes in every tensor, K-quants included (the RMSE table is printed).
 *  - Fallbacks for rows that do not divide into blocks (with the reason),
 *    metadata copied, file_type set, NaN/Inf refused with tensor/row/column,
 *    -t 1 and -t N give the same bytes, atomic file write.
 */
#include <stdint.h>
#include <unistd.h>

#include "test.h"
#include "../gguf/gguf.h"
#include "../quant/quant.h"
#include "../runtime/quantize.h"

/* ------------------------------------------------------------- helpers */

static int open_model(struct gguf_file *f, const char *name) {
    char path[512], err[RB_ERR_MAX];
    snprintf(path, sizeof path, "%s/models/%s", test_shared_dir(), name);
    if (rb_gguf_open(f, path, err) != 0) {
        TEST_FAIL_AT("open %s: %s", path, err);
        return -1;
    }
    return 0;
}

static int64_t n_elements(const struct gguf_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

/* The tensor as floats (malloc'd), NULL if its type cannot be dequantized. */
static float *tensor_floats(const struct gguf_tensor *t) {
    const struct rb_type_traits *tr = rb_traits(t->type);
    if (!tr || !tr->to_float) return NULL;
    int64_t n = n_elements(t);
    float *out = malloc((size_t)n * sizeof(float));
    tr->to_float(t->data, out, n);
    return out;
}

static double rmse(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

static double rms(const float *a, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * a[i];
    return sqrt(s / (double)n);
}

static char *tensor_name(const struct gguf_tensor *t, char *buf, size_t cap) {
    size_t len = t->name.len < cap - 1 ? (size_t)t->name.len : cap - 1;
    memcpy(buf, t->name.data, len);
    buf[len] = 0;
    return buf;
}

/* Expected relative RMSE (error rms / value rms) for Gaussian-like weights. */
static double rel_err_budget(uint32_t type) {
    switch (type) {
    case RB_TYPE_F32: return 0.0;
    case RB_TYPE_F16: return 0.001;
    case RB_TYPE_BF16: return 0.005;
    case RB_TYPE_Q8_0: return 0.01;
    case RB_TYPE_Q6_K: return 0.03;
    case RB_TYPE_Q5_0: case RB_TYPE_Q5_1: case RB_TYPE_Q5_K: return 0.06;
    case RB_TYPE_Q4_0: case RB_TYPE_Q4_1: case RB_TYPE_Q4_K: return 0.13;
    case RB_TYPE_Q3_K: return 0.25;
    case RB_TYPE_Q2_K: return 0.45;
    default: return 0.0;
    }
}

/* ------------------------------------------------------------- row quantizers */

static uint64_t rng_state = 1;
static void rng_seed(uint64_t s) { rng_state = s * 0x9e3779b97f4a7c15ull + 1; }
static float rng_uniform(void) { /* [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) * (1.0 / (1ull << 23)) - 1.0);
}
static float rng_gauss(void) { /* sum of uniforms: good enough, bounded tails */
    float s = 0.0f;
    for (int i = 0; i < 6; i++) s += rng_uniform();
    return s * 0.7071f;
}

static size_t row_size(uint32_t type, int64_t n) {
    const struct rb_type_traits *t = rb_traits(type);
    return (size_t)(n / t->block_size) * t->type_size;
}

static float *dequant(uint32_t type, const void *src, int64_t n) {
    float *out = malloc((size_t)n * sizeof(float));
    rb_traits(type)->to_float(src, out, n);
    return out;
}

static const uint32_t quantizer_types[] = { RB_TYPE_Q4_0, RB_TYPE_Q4_1, RB_TYPE_Q5_0, RB_TYPE_Q5_1, RB_TYPE_Q8_0,
                                            RB_TYPE_Q2_K, RB_TYPE_Q3_K, RB_TYPE_Q4_K, RB_TYPE_Q5_K, RB_TYPE_Q6_K,
                                            RB_TYPE_F16, RB_TYPE_BF16 };
#define N_QUANTIZERS (sizeof quantizer_types / sizeof quantizer_types[0])

/* Quantize then dequantize n values; returns the round-tripped copy. */
static float *round_trip(uint32_t type, const float *x, int64_t n) {
    const struct rb_type_traits *t = rb_traits(type);
    void *q = malloc(row_size(type, n));
    t->from_float(x, q, n);
    float *y = dequant(type, q, n);
    free(q);
    return y;
}

static double rel_rmse(const float *x, const float *y, int64_t n) {
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) { e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]); s += (double)x[i] * x[i]; }
    return sqrt(e / s);
}

/* Error budget (rms error / rms value) on Gaussian data; measured values
 * are about 60-80% of these. */
static double gauss_budget(uint32_t type) {
    switch (type) {
    case RB_TYPE_Q4_0: return 0.13;  case RB_TYPE_Q4_1: return 0.11;
    case RB_TYPE_Q5_0: return 0.065; case RB_TYPE_Q5_1: return 0.055;
    case RB_TYPE_Q8_0: return 0.006; case RB_TYPE_Q2_K: return 0.45;
    case RB_TYPE_Q3_K: return 0.25;  case RB_TYPE_Q4_K: return 0.11;
    case RB_TYPE_Q5_K: return 0.055; case RB_TYPE_Q6_K: return 0.027;
    case RB_TYPE_F16: return 0.0005; case RB_TYPE_BF16: return 0.004;
    default: return 0;
    }
}

TEST(quantizers_round_trip_gaussian) {
    rng_seed(21);
    const int64_t n = 256 * 64;
    float *x = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = 0.05f * rng_gauss();
    for (size_t k = 0; k < N_QUANTIZERS; k++) {
        float *y = round_trip(quantizer_types[k], x, n);
        double e = rel_rmse(x, y, n);
        printf("    %-5s relative rmse %.5f (budget %.4f)\n", rb_traits(quantizer_types[k])->name, e, gauss_budget(quantizer_types[k]));
        CHECK_MSG(e <= gauss_budget(quantizer_types[k]), "%s: %.5f", rb_traits(quantizer_types[k])->name, e);
        free(y);
    }
    free(x);
}

/* Each 32-element group of the K-quants keeps its fitted scale: a row whose
 * groups differ 100x in magnitude must not lose the small ones. */
TEST(k_quants_keep_small_subblocks) {
    rng_seed(22);
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = rng_gauss() * ((i / 32) % 2 ? 1.0f : 0.05f);
    const uint32_t types[] = { RB_TYPE_Q4_K, RB_TYPE_Q5_K, RB_TYPE_Q6_K };
    for (size_t k = 0; k < 3; k++) {
        float *y = round_trip(types[k], x, 256);
        double e = rel_rmse(x, y, 32); /* a small sub-block, against its own size */
        CHECK_MSG(e <= 2 * gauss_budget(types[k]), "%s: small sub-block error %.4f", rb_traits(types[k])->name, e);
        free(y);
    }
}

TEST(quantizers_all_zero_blocks) {
    float x[512] = { 0 };
    for (size_t k = 0; k < N_QUANTIZERS; k++) {
        float *y = round_trip(quantizer_types[k], x, 512);
        int bad = 0;
        for (int i = 0; i < 512; i++) bad += y[i] != 0.0f; /* also catches NaN */
        CHECK_MSG(bad == 0, "%s: %d non-zero outputs for zero input", rb_traits(quantizer_types[k])->name, bad);
        free(y);
    }
}

/* A zero sub-block next to non-zero ones: any code decodes to 0 there, and
 * each K-quant stores the one llama.cpp's quantizer stores (Q6_K: code 0,
 * i.e. -32; Q4_K/Q5_K: 0), so the files stay byte-equal to its files. */
TEST(k_quants_zero_subblock_codes) {
    rng_seed(24);
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = i < 32 ? 0.0f : rng_gauss();
    block_q6_K q6;
    rb_traits(RB_TYPE_Q6_K)->from_float(x, &q6, 256);
    CHECK_EQ_INT(q6.scales[0], 0);
    CHECK_EQ_INT(q6.scales[1], 0);
    int bad = 0;
    for (int l = 0; l < 32; l++) bad += (q6.ql[l] & 0xf) != 0 || (q6.qh[l] & 3) != 0; /* values 0..31 */
    CHECK_MSG(bad == 0, "Q6_K: %d of the zero sub-blocks' codes are not 0", bad);
    block_q4_K q4;
    rb_traits(RB_TYPE_Q4_K)->from_float(x, &q4, 256);
    bad = 0;
    for (int l = 0; l < 32; l++) bad += (q4.qs[l] & 0xf) != 0;
    CHECK_MSG(bad == 0, "Q4_K: %d of the zero sub-block's codes are not 0", bad);
    float *y = round_trip(RB_TYPE_Q6_K, x, 256);
    for (int i = 0; i < 32; i++) CHECK(y[i] == 0.0f);
    free(y);
}

TEST(quantizers_one_huge_outlier) {
    rng_seed(23);
    float x[512];
    for (int i = 0; i < 512; i++) x[i] = 0.01f * rng_gauss();
    x[77] = 1000.0f;
    x[300] = -30000.0f; /* near the top of the F16 range */
    for (size_t k = 0; k < N_QUANTIZERS; k++) {
        uint32_t type = quantizer_types[k];
        float *y = round_trip(type, x, 512);
        int finite = 1;
        for (int i = 0; i < 512; i++) finite &= isfinite(y[i]) != 0;
        CHECK_MSG(finite, "%s: non-finite output", rb_traits(type)->name);
        /* the outliers themselves survive within a few percent (Q2_K: 4 levels) */
        double tol = type == RB_TYPE_Q2_K ? 0.2 : type == RB_TYPE_Q3_K ? 0.1 : 0.03;
        CHECK_MSG(fabs(y[77] - 1000.0) <= tol * 1000.0, "%s: outlier 1000 -> %g", rb_traits(type)->name, y[77]);
        CHECK_MSG(fabs(y[300] + 30000.0) <= tol * 30000.0, "%s: outlier -30000 -> %g", rb_traits(type)->name, y[300]);
        free(y);
    }
}

TEST(quantizers_negative_only_blocks) {
    rng_seed(24);
    float x[512];
    for (int i = 0; i < 512; i++) x[i] = -1.0f - 0.5f * (rng_uniform() + 1.0f); /* [-2, -1) */
    for (size_t k = 0; k < N_QUANTIZERS; k++) {
        uint32_t type = quantizer_types[k];
        float *y = round_trip(type, x, 512);
        int positive = 0;
        for (int i = 0; i < 512; i++) positive += y[i] > 0.0f;
        double e = rel_rmse(x, y, 512);
        /* values far from 0 with little spread: relative error is small for every format */
        CHECK_MSG(e <= gauss_budget(type), "%s: relative rmse %.5f", rb_traits(type)->name, e);
        CHECK_MSG(positive == 0, "%s: %d values changed sign", rb_traits(type)->name, positive);
        free(y);
    }
}

/* Values in F16's subnormal range (as a tiny F16 weight would be): no NaN,
 * no blow-up, and F16 itself keeps them exactly. */
TEST(quantizers_subnormal_f16_values) {
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = rb_f16_to_f32((rb_f16)((i * 37) % 1024)) * ((i & 1) ? -1.0f : 1.0f); /* all subnormal or 0 */
    for (size_t k = 0; k < N_QUANTIZERS; k++) {
        uint32_t type = quantizer_types[k];
        float *y = round_trip(type, x, 256);
        double worst = 0;
        int finite = 1;
        for (int i = 0; i < 256; i++) {
            finite &= isfinite(y[i]) != 0;
            worst = fmax(worst, fabs((double)y[i] - x[i]));
        }
        CHECK_MSG(finite, "%s: non-finite output for subnormal input", rb_traits(type)->name);
        /* the scale may underflow to 0 (then everything decodes to 0): error <= the largest input */
        CHECK_MSG(worst <= 0x1p-14, "%s: error %g", rb_traits(type)->name, worst);
        if (type == RB_TYPE_F16) CHECK(worst == 0.0);
        free(y);
    }
}

/* NaN/Inf input is refused by the model quantizer before it gets here; the
 * row quantizers must still not crash or invoke undefined behaviour on it
 * (UBSan checks the float -> int conversions). */
TEST(quantizers_survive_nan_inf) {
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = 0.1f * (float)(i % 7);
    x[3] = NAN; x[100] = INFINITY; x[200] = -INFINITY;
    for (size_t k = 0; k < N_QUANTIZERS; k++) {
        float *y = round_trip(quantizer_types[k], x, 256);
        free(y);
    }
    CHECK(1);
}

/* Q4_0 and Q8_0 follow ggml's reference rounding exactly. */
TEST(quantize_q4_0_q8_0_reference_rounding) {
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)i - 15.0f; /* max |x| = 16 at i = 31 */
    block_q4_0 b;
    rb_traits(RB_TYPE_Q4_0)->from_float(x, &b, 32);
    CHECK_NEAR(rb_f16_to_f32(b.d), -2.0, 0);             /* d = max / -8 */
    CHECK_EQ_INT(b.qs[15] >> 4, 0);                        /* x[31] = 16 -> q 0 -> -8 * -2 */
    CHECK_EQ_INT(b.qs[0] & 0xf, 15);                       /* x[0] = -15: 7.5 + 8 -> trunc(16) clamped 15 */
    CHECK_EQ_INT(b.qs[1] & 0xf, 15);                       /* x[1] = -14: 7 + 8.5 -> 15 */
    CHECK_EQ_INT(b.qs[2] & 0xf, 15);                       /* x[2] = -13: 6.5 + 8.5 = 15 */
    CHECK_EQ_INT(b.qs[3] & 0xf, 14);                       /* x[3] = -12: 6 + 8.5 -> trunc 14 (half rounds up) */
    CHECK_EQ_INT(b.qs[7] >> 4, 4);                         /* x[23] = 8: -4 + 8.5 -> 4 */
    block_q8_0 c;
    for (int i = 0; i < 32; i++) x[i] = (float)i * 0.5f - 4.25f; /* amax 11.25 */
    rb_traits(RB_TYPE_Q8_0)->from_float(x, &c, 32);
    float d = 11.25f / 127.0f, id = 1.0f / d;
    for (int i = 0; i < 32; i++) CHECK_EQ_INT(c.qs[i], (int)roundf(x[i] * id));
}

/* ------------------------------------------------------------- real files */

static void check_dequant_pair(const char *quantized, const char *original) {
    struct gguf_file q, o;
    if (open_model(&q, quantized) != 0) return;
    if (open_model(&o, original) != 0) { rb_gguf_close(&q); return; }
    char name[256];
    int checked = 0;
    for (uint64_t i = 0; i < q.n_tensors; i++) {
        const struct gguf_tensor *tq = &q.tensors[i];
        const struct gguf_tensor *to = rb_gguf_get_tensor(&o, tensor_name(tq, name, sizeof name));
        CHECK_MSG(to != NULL, "%s: %s missing in %s", quantized, name, original);
        if (!to) continue;
        CHECK_EQ_INT(n_elements(tq), n_elements(to));
        float *a = tensor_floats(tq), *b = tensor_floats(to);
        CHECK_MSG(a && b, "%s: %s type %s cannot be dequantized", quantized, name, rb_type_name(tq->type));
        if (a && b) {
            double rel = rmse(a, b, n_elements(tq)) / rms(b, n_elements(tq));
            /* the original itself is F16 in the llama-mini/gpt2-mini files */
            double budget = rel_err_budget(tq->type) + (to->type == RB_TYPE_F16 ? 0 : 0.001);
            CHECK_MSG(rel <= budget, "%s %s (%s): relative rmse %.5f > %.5f",
                      quantized, name, rb_type_name(tq->type), rel, budget);
            checked++;
        }
        free(a); free(b);
    }
    CHECK(checked == (int)q.n_tensors);
    rb_gguf_close(&q); rb_gguf_close(&o);
}

TEST(dequantize_every_model_file) {
    check_dequant_pair("stories260K-q8_0.gguf", "stories260K.gguf");
    check_dequant_pair("stories260K-q4_0.gguf", "stories260K.gguf");
    check_dequant_pair("llama-mini-q8_0.gguf", "llama-mini-f16.gguf");
    check_dequant_pair("llama-mini-q4_0.gguf", "llama-mini-f16.gguf");
    check_dequant_pair("llama-mini-q4_k_m.gguf", "llama-mini-f16.gguf");
    check_dequant_pair("llama-mini-q6_k.gguf", "llama-mini-f16.gguf");
    check_dequant_pair("gpt2-mini-q8_0.gguf", "gpt2-mini-f16.gguf");
}

/* ------------------------------------------------------------- the model quantizer */

struct notes { int n; char last[RB_ERR_MAX]; char all[8192]; };
static void collect_note(void *user, const char *line) {
    struct notes *nt = user;
    nt->n++;
    snprintf(nt->last, sizeof nt->last, "%s", line);
    size_t used = strlen(nt->all);
    snprintf(nt->all + used, sizeof nt->all - used, "%s\n", line);
}

/* Quantize `in` in memory and reopen the result (buf owned by the caller). */
static int quantize_mem(const struct gguf_file *in, uint32_t ftype, int threads, struct notes *nt,
                        struct gguf_file *out, void **buf, size_t *size) {
    struct rb_quantize_opts opts = { .ftype = ftype, .n_threads = threads, .note = nt ? collect_note : NULL, .user = nt };
    struct gguf_writer *w;
    char err[RB_ERR_MAX];
    if (rb_quantize_gguf(in, &opts, &w, err) != 0) { TEST_FAIL_AT("quantize: %s", err); return -1; }
    int rc = rb_gguf_writer_write_mem(w, buf, size, err);
    rb_gguf_writer_free(w);
    if (rc != 0) { TEST_FAIL_AT("write: %s", err); return -1; }
    if (rb_gguf_open_memory(out, *buf, *size, err) != 0) { TEST_FAIL_AT("reopen: %s", err); free(*buf); return -1; }
    return 0;
}

/* Quantize llama-mini-f16 with our model quantizer and compare with the file
 * llama.cpp made from the same F16 source: every tensor must get the type
 * llama.cpp gave it (the mix), decode close to the original, and hold the
 * same bytes (ggml's reference quantizers, Q4_K/Q5_K/Q6_K searches
 * included). Prints the per-tensor RMSE table. */
static void check_against_llama_file(uint32_t ftype, const char *theirs_name) {
    struct gguf_file src, theirs, ours;
    void *buf; size_t size;
    if (open_model(&src, "llama-mini-f16.gguf") != 0) return;
    if (open_model(&theirs, theirs_name) != 0) { rb_gguf_close(&src); return; }
    if (quantize_mem(&src, ftype, 2, NULL, &ours, &buf, &size) != 0) { rb_gguf_close(&src); rb_gguf_close(&theirs); return; }
    CHECK_EQ_INT(ours.n_tensors, src.n_tensors);
    char name[256], err[RB_ERR_MAX];
    double worst = 0;
    int n_quant = 0, n_same_bytes = 0;
    printf("  %-26s %-5s %12s %12s %7s\n", theirs_name, "type", "rmse ours", "rmse llama", "ratio");
    for (uint64_t i = 0; i < ours.n_tensors; i++) {
        const struct gguf_tensor *to = &ours.tensors[i];
        tensor_name(to, name, sizeof name);
        const struct gguf_tensor *tt = rb_gguf_get_tensor(&theirs, name), *ts = rb_gguf_get_tensor(&src, name);
        CHECK_MSG(tt && ts, "%s missing", name);
        if (!tt || !ts) continue;
        CHECK_MSG(to->type == tt->type, "%s %s: ours %s, llama.cpp %s", theirs_name, name,
                  rb_type_name(to->type), rb_type_name(tt->type));
        CHECK(to->ne[0] == ts->ne[0] && to->ne[1] == ts->ne[1] && to->n_dims == ts->n_dims);
        if (to->type == tt->type && to->type != ts->type) { /* quantized by both */
            int same = to->n_bytes == tt->n_bytes && !memcmp(to->data, tt->data, (size_t)to->n_bytes);
            CHECK_MSG(same, "%s %s: %s bytes differ from llama.cpp's", theirs_name, name, rb_type_name(to->type));
            n_quant++;
            n_same_bytes += same;
        }
        float *a = tensor_floats(to), *b = tensor_floats(ts), *c = tensor_floats(tt);
        if (a && b && c) {
            int64_t n = n_elements(ts);
            double e_ours = rmse(a, b, n), e_theirs = rmse(c, b, n);
            CHECK_MSG(e_ours / rms(b, n) <= rel_err_budget(to->type) + 1e-9, "%s: rel rmse %.5f", name, e_ours / rms(b, n));
            if (to->type != ts->type) { /* quantized: the table row */
                double ratio = e_ours / e_theirs;
                if (ratio > worst) worst = ratio;
                printf("  %-26s %-5s %12.7f %12.7f %7.4f\n", name, rb_type_name(to->type), e_ours, e_theirs, ratio);
                CHECK_MSG(e_ours <= e_theirs * 1.02, "%s %s: ours %.7g > llama %.7g * 1.02", theirs_name, name, e_ours, e_theirs);
            }
        }
        free(a); free(b); free(c);
    }
    printf("  worst ratio %.4f", worst);
    printf("; %d of %d quantized tensors byte-identical to llama.cpp's", n_same_bytes, n_quant);
    CHECK(n_quant > 0);
    printf("\n");
    uint32_t ft = 99, nl = 0, qv = 0;
    CHECK(rb_gguf_get_u32(&ours, "general.file_type", &ft, err) == 0 && ft == ftype);
    CHECK(rb_gguf_get_u32(&ours, "general.quantization_version", &qv, err) == 0 && qv == 2);
    CHECK(rb_gguf_get_u32(&ours, "llama.block_count", &nl, err) == 0 && nl == 4);
    const void *tok; uint64_t n_tok = 0;
    CHECK(rb_gguf_get_arr(&ours, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &tok, &n_tok, err) == 0 && n_tok == 32000);
    CHECK_EQ_INT(ours.n_kv, src.n_kv + (rb_gguf_find_key(&src, "general.file_type") < 0) + (rb_gguf_find_key(&src, "general.quantization_version") < 0));
    rb_gguf_close(&ours); free(buf);
    rb_gguf_close(&src); rb_gguf_close(&theirs);
}

TEST(quantize_model_q4_0_mix) { check_against_llama_file(RB_FTYPE_Q4_0, "llama-mini-q4_0.gguf"); }
TEST(quantize_model_q8_0_mix) { check_against_llama_file(RB_FTYPE_Q8_0, "llama-mini-q8_0.gguf"); }
TEST(quantize_model_q4_k_m_mix) { check_against_llama_file(RB_FTYPE_Q4_K_M, "llama-mini-q4_k_m.gguf"); }
TEST(quantize_model_q6_k_mix) { check_against_llama_file(RB_FTYPE_Q6_K, "llama-mini-q6_k.gguf"); }

/* stories260K: rows of 64 (not a multiple of 256) and ffn_down rows of 172
 * (not a multiple of 32) take the fallbacks, each with a stated reason. */
TEST(quantize_fallbacks_stories) {
    struct gguf_file src, out;
    void *buf; size_t size;
    if (open_model(&src, "stories260K.gguf") != 0) return;
    struct notes nt = { 0 };
    if (quantize_mem(&src, RB_FTYPE_Q4_K_M, 3, &nt, &out, &buf, &size) == 0) {
        CHECK_EQ_INT(rb_gguf_get_tensor(&out, "blk.0.attn_q.weight")->type, RB_TYPE_Q5_0);   /* q4_K -> q5_0 */
        CHECK_EQ_INT(rb_gguf_get_tensor(&out, "blk.4.attn_v.weight")->type, RB_TYPE_Q8_0);   /* q6_K -> q8_0 */
        CHECK_EQ_INT(rb_gguf_get_tensor(&out, "blk.0.ffn_down.weight")->type, RB_TYPE_F16);  /* 172: f16 */
        CHECK_EQ_INT(rb_gguf_get_tensor(&out, "output.weight")->type, RB_TYPE_Q8_0);         /* 64 % 256 */
        CHECK_EQ_INT(rb_gguf_get_tensor(&out, "blk.0.attn_norm.weight")->type, RB_TYPE_F32);
        CHECK_CONTAINS(nt.all, "blk.0.ffn_down.weight: rows of 172 do not divide into q4_K blocks of 256: using f16");
        CHECK_CONTAINS(nt.all, "blk.0.attn_q.weight: rows of 64 do not divide into q4_K blocks of 256: using q5_0");
        rb_gguf_close(&out); free(buf);
    }
    memset(&nt, 0, sizeof nt);
    if (quantize_mem(&src, RB_FTYPE_Q4_0, 1, &nt, &out, &buf, &size) == 0) {
        CHECK_EQ_INT(rb_gguf_get_tensor(&out, "blk.1.attn_k.weight")->type, RB_TYPE_Q4_0);
        CHECK_EQ_INT(rb_gguf_get_tensor(&out, "blk.1.ffn_down.weight")->type, RB_TYPE_F16);
        CHECK_EQ_INT(nt.n, 5); /* one per ffn_down */
        CHECK_CONTAINS(nt.last, "rows of 172 do not divide into q4_0 blocks of 32: using f16");
        rb_gguf_close(&out); free(buf);
    }
    /* f16: every 2-D weight, whatever its rows; 1-D stays f32 */
    if (quantize_mem(&src, RB_FTYPE_F16, 2, NULL, &out, &buf, &size) == 0) {
        CHECK_EQ_INT(rb_gguf_get_tensor(&out, "blk.1.ffn_down.weight")->type, RB_TYPE_F16);
        CHECK_EQ_INT(rb_gguf_get_tensor(&out, "output_norm.weight")->type, RB_TYPE_F32);
        rb_gguf_close(&out); free(buf);
    }
    rb_gguf_close(&src);
}

TEST(quantize_same_bytes_any_thread_count) {
    struct gguf_file src, o1, o4;
    void *b1, *b4; size_t s1, s4;
    if (open_model(&src, "stories260K.gguf") != 0) return;
    if (quantize_mem(&src, RB_FTYPE_Q5_K_M, 1, NULL, &o1, &b1, &s1) == 0) {
        if (quantize_mem(&src, RB_FTYPE_Q5_K_M, 4, NULL, &o4, &b4, &s4) == 0) {
            CHECK(s1 == s4 && memcmp(b1, b4, s1) == 0);
            rb_gguf_close(&o4); free(b4);
        }
        rb_gguf_close(&o1); free(b1);
    }
    rb_gguf_close(&src);
}

/* A small model file written with the gguf writer: one 2-D F16 weight. */
static void *tiny_f16_model(float poison, size_t *size) {
    struct gguf_writer *w = rb_gguf_writer_new();
    rb_gguf_writer_add_str(w, "general.architecture", "llama");
    uint16_t data[64 * 4];
    for (int i = 0; i < 64 * 4; i++) data[i] = rb_f32_to_f16(0.01f * (float)(i % 17) - 0.05f);
    data[64 * 2 + 7] = rb_f32_to_f16(poison);
    data[5] = 0x0001; /* a subnormal F16 is fine */
    int64_t ne[2] = { 64, 4 };
    rb_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", RB_TYPE_F16, 2, ne, data, sizeof data, 0);
    void *buf = NULL;
    char err[RB_ERR_MAX];
    if (rb_gguf_writer_write_mem(w, &buf, size, err) != 0) TEST_FAIL_AT("write: %s", err);
    rb_gguf_writer_free(w);
    return buf;
}

TEST(quantize_refuses_nan_and_inf) {
    const float poisons[2] = { NAN, -INFINITY };
    for (int k = 0; k < 2; k++) {
        size_t size;
        void *buf = tiny_f16_model(poisons[k], &size);
        struct gguf_file f;
        char err[RB_ERR_MAX] = "";
        if (!buf || rb_gguf_open_memory(&f, buf, size, err) != 0) { TEST_FAIL_AT("open: %s", err); free(buf); continue; }
        struct rb_quantize_opts opts = { .ftype = RB_FTYPE_Q8_0, .n_threads = 2 };
        struct gguf_writer *w = NULL;
        void *out = NULL;
        size_t out_size;
        /* tensors are converted as they are written: the write refuses */
        CHECK_EQ_INT(rb_quantize_gguf(&f, &opts, &w, err), 0);
        CHECK_EQ_INT(rb_gguf_writer_write_mem(w, &out, &out_size, err), -1);
        CHECK(out == NULL);
        CHECK_CONTAINS(err, "blk.0.attn_q.weight: row 2 column 7 is NaN or Inf");
        rb_gguf_writer_free(w);
        rb_gguf_close(&f);
        free(buf);
    }
    /* a finite model with a subnormal quantizes fine */
    size_t size;
    void *buf = tiny_f16_model(0.5f, &size);
    struct gguf_file f, out;
    char err[RB_ERR_MAX];
    void *qbuf; size_t qsize;
    if (buf && rb_gguf_open_memory(&f, buf, size, err) == 0) {
        if (quantize_mem(&f, RB_FTYPE_Q8_0, 1, NULL, &out, &qbuf, &qsize) == 0) {
            CHECK_EQ_INT(out.tensors[0].type, RB_TYPE_Q8_0);
            rb_gguf_close(&out); free(qbuf);
        }
        rb_gguf_close(&f);
    }
    free(buf);
}

/* The file path: written atomically, readable, no temp file left behind;
 * a bad type or input leaves no output. */
TEST(quantize_file_round_trip) {
    char dir[] = "/tmp/rbee-quantize-XXXXXX";
    if (!mkdtemp(dir)) { TEST_FAIL_AT("mkdtemp failed"); return; }
    char in[512], out[600], err[RB_ERR_MAX];
    snprintf(in, sizeof in, "%s/models/stories260K.gguf", test_shared_dir());
    snprintf(out, sizeof out, "%s/s-q8_0.gguf", dir);
    struct rb_quantize_opts opts = { .ftype = RB_FTYPE_Q8_0, .n_threads = 2 };
    CHECK_EQ_INT(rb_quantize_file(in, out, &opts, err), 0);
    struct gguf_file f, ref;
    if (rb_gguf_open(&f, out, err) == 0) {
        if (open_model(&ref, "stories260K-q8_0.gguf") == 0) {
            /* the shared file keeps ffn_down f32 where we use f16; all else matches */
            for (uint64_t i = 0; i < f.n_tensors; i++) {
                char name[256];
                const struct gguf_tensor *t = &f.tensors[i], *r = rb_gguf_get_tensor(&ref, tensor_name(t, name, sizeof name));
                CHECK(r != NULL);
                if (!r) continue;
                if (strstr(name, "ffn_down")) CHECK_EQ_INT(t->type, RB_TYPE_F16);
                else if (!strcmp(name, "output.weight") || !strcmp(name, "token_embd.weight")) CHECK_EQ_INT(t->type, RB_TYPE_Q8_0);
                else CHECK_MSG(t->type == r->type, "%s: %s vs %s", name, rb_type_name(t->type), rb_type_name(r->type));
            }
            rb_gguf_close(&ref);
        }
        rb_gguf_close(&f);
    } else {
        TEST_FAIL_AT("reopen %s: %s", out, err);
    }
    /* failure: NaN input -> error and no file */
    snprintf(out, sizeof out, "%s/missing-in.gguf", dir);
    char bad_in[600];
    snprintf(bad_in, sizeof bad_in, "%s/does-not-exist.gguf", dir);
    CHECK_EQ_INT(rb_quantize_file(bad_in, out, &opts, err), -1);
    CHECK(access(out, F_OK) != 0);
    opts.ftype = 12345;
    CHECK_EQ_INT(rb_quantize_file(in, out, &opts, err), -1);
    CHECK_CONTAINS(err, "file type 12345");
    CHECK(access(out, F_OK) != 0);
    /* only our file remains in the directory: no temp files left */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    CHECK_EQ_INT(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ_INT(system(cmd), 0);
}

TEST(ftype_names) {
    uint32_t ft;
    CHECK(rb_ftype_from_name("Q4_K_M", &ft) == 0 && ft == 15);
    CHECK(rb_ftype_from_name("q5_k_m", &ft) == 0 && ft == 17);
    CHECK(rb_ftype_from_name("bf16", &ft) == 0 && ft == 32);
    CHECK(rb_ftype_from_name("q6_k", &ft) == 0 && ft == 18);
    CHECK(rb_ftype_from_name("q5_1", &ft) == 0 && ft == 9);
    CHECK(rb_ftype_from_name("q3_k_s", &ft) == -1);
    CHECK(rb_ftype_from_name("a_very_long_type_name", &ft) == -1);
    CHECK_STR(rb_ftype_name(RB_FTYPE_Q8_0), "q8_0");
    CHECK_EQ_INT(rb_ftype_base_type(RB_FTYPE_Q4_K_M), RB_TYPE_Q4_K);
}

int main(void) {
    RUN(quantizers_round_trip_gaussian);
    RUN(k_quants_keep_small_subblocks);
    RUN(quantizers_all_zero_blocks);
    RUN(k_quants_zero_subblock_codes);
    RUN(quantizers_one_huge_outlier);
    RUN(quantizers_negative_only_blocks);
    RUN(quantizers_subnormal_f16_values);
    RUN(quantizers_survive_nan_inf);
    RUN(quantize_q4_0_q8_0_reference_rounding);
    RUN(dequantize_every_model_file);
    RUN(quantize_model_q4_0_mix);
    RUN(quantize_model_q8_0_mix);
    RUN(quantize_model_q4_k_m_mix);
    RUN(quantize_model_q6_k_mix);
    RUN(quantize_fallbacks_stories);
    RUN(quantize_same_bytes_any_thread_count);
    RUN(quantize_refuses_nan_and_inf);
    RUN(quantize_file_round_trip);
    RUN(ftype_names);
    return test_summary();
}
