/* test_arch.c - the rotary decoder architectures (llama with rope_freqs,
 * qwen2, phi3) on tiny files (tests/arch_build.h):
 *  - the forward pass against a plain double-precision transcription of
 *    each model, read from the tensors by name (not through the binding):
 *    NORM and NEOX rope, rope factors, linear scaling, LongRoPE's factor
 *    choice by context length and attn_factor, biases, fused weights,
 *    phi3's Q scaling and sliding window, tied output. F32 weights and an
 *    F32 KV cache leave only float rounding between the two.
 *  - every malformed file is refused with a message naming the tensor or key.
 * tests/run_tests.sh runs it once per ISA.
 *
 * Glossary: T tokens, E n_embd, H heads of HD, KV KV heads, FF ffn width, V vocab. */
#include <unistd.h>

#include "test.h"
#include "arch_build.h"
#include "../runtime/context.h"
#include "../runtime/model.h"
#include "../runtime/rbee.h"

#define TOL 5e-4 /* |logit| difference; logits spread over a few units */
#define T_MAX 24

static char dir[64];

static const char *tmp_model(const struct ab_opts *o) {
    static char path[128];
    snprintf(path, sizeof path, "%s/a%d_%d.gguf", dir, (int)o->arch, (int)o->defect);
    ab_write(path, o);
    return path;
}

/* ---- the reference ---- */

/* Tensor `name` as doubles (F32 in the file), or NULL with a failure. */
static double *ref_tensor(const rbee_model *m, const char *name) {
    double *d = g2_read_doubles(&m->file, name, -1);
    if (!d) TEST_FAIL_AT("tensor %s: missing or not F32", name);
    return d;
}

/* out[r] = sum_i w[(row0 + r) * n_in + i] * x[i] (+ b[r]) for r < n_out */
static void linear(double *out, const double *w, int64_t row0, const double *b, const double *x, int n_in,
                   int n_out) {
    for (int r = 0; r < n_out; r++) {
        double s = b ? b[r] : 0;
        for (int i = 0; i < n_in; i++) s += w[(row0 + r) * n_in + i] * x[i];
        out[r] = s;
    }
}

static void rmsnorm(double *out, const double *x, const double *w) {
    double ss = 0;
    for (int i = 0; i < AB_E; i++) ss += x[i] * x[i];
    double inv = 1.0 / sqrt(ss / AB_E + 1e-5);
    for (int i = 0; i < AB_E; i++) out[i] = x[i] * inv * w[i];
}

/* How the reference rotates: pair i turns by pos * base^(-2i/HD) * freq_scale
 * / factor[i]; cos and sin times attn_factor; NEOX pairs (i, i + HD/2). */
struct ref_rope { int neox; double base, freq_scale, attn_factor; const double *factor; };

static void rope(double *x, int pos, const struct ref_rope *r) {
    for (int i = 0; i < AB_HD / 2; i++) {
        double angle = pos * pow(r->base, -2.0 * i / AB_HD) * r->freq_scale / (r->factor ? r->factor[i] : 1.0);
        double c = cos(angle) * r->attn_factor, s = sin(angle) * r->attn_factor;
        int a = r->neox ? i : 2 * i, b = r->neox ? i + AB_HD / 2 : 2 * i + 1;
        double x0 = x[a], x1 = x[b];
        x[a] = x0 * c - x1 * s;
        x[b] = x0 * s + x1 * c;
    }
}

/* Logits [T][V] of the model in m for tokens ids, in double. window: keys
 * a query sees (0: all). */
static void reference_logits(const rbee_model *m, const struct ab_opts *o, const struct ref_rope *rp, int window,
                             const int32_t *ids, int n_tok, double *logits) {
    enum { QD = AB_HEADS * AB_HD, KVD = AB_KV * AB_HD };
    static double x[T_MAX][AB_E], xn[AB_E], q[T_MAX][QD], k[T_MAX][KVD], v[T_MAX][KVD], att[QD], tmp[AB_E];
    static double gate[AB_FF], up[AB_FF], sc[T_MAX];
    char n[64];
    double *tok = ref_tensor(m, "token_embd.weight");
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < AB_E; i++) x[t][i] = tok ? tok[(int64_t)ids[t] * AB_E + i] : 0;
    for (int il = 0; il < AB_LAYERS; il++) {
#define T(s) (snprintf(n, sizeof n, "blk.%d." s, il), ref_tensor(m, n))
#define T_OPT(s) (snprintf(n, sizeof n, "blk.%d." s, il), rb_gguf_get_tensor(&m->file, n) ? ref_tensor(m, n) : NULL)
        double *an = T("attn_norm.weight"), *fn = T("ffn_norm.weight"), *wo = T("attn_output.weight");
        double *wd = T("ffn_down.weight"), *bo = T_OPT("attn_output.bias");
        double *bq = T_OPT("attn_q.bias"), *bk = T_OPT("attn_k.bias"), *bv = T_OPT("attn_v.bias");
        int fused = o->arch == AB_PHI3;
        double *wqkv = fused ? T("attn_qkv.weight") : NULL, *wup = T("ffn_up.weight");
        double *wq = fused ? wqkv : T("attn_q.weight"), *wk = fused ? wqkv : T("attn_k.weight");
        double *wv = fused ? wqkv : T("attn_v.weight"), *wg = fused ? wup : T("ffn_gate.weight");
        for (int t = 0; t < n_tok; t++) { /* rows of a fused weight: Q, K, V; gate, up */
            rmsnorm(xn, x[t], an);
            linear(q[t], wq, 0, bq, xn, AB_E, QD);
            linear(k[t], wk, fused ? QD : 0, bk, xn, AB_E, KVD);
            linear(v[t], wv, fused ? QD + KVD : 0, bv, xn, AB_E, KVD);
            for (int h = 0; h < AB_HEADS; h++) rope(q[t] + h * AB_HD, t, rp);
            for (int h = 0; h < AB_KV; h++) rope(k[t] + h * AB_HD, t, rp);
        }
        for (int t = 0; t < n_tok; t++) {
            int first = window > 0 && t + 1 > window ? t + 1 - window : 0;
            for (int h = 0; h < AB_HEADS; h++) {
                int kvh = h / (AB_HEADS / AB_KV);
                double max = -INFINITY, sum = 0;
                for (int j = first; j <= t; j++) {
                    double d = 0;
                    for (int i = 0; i < AB_HD; i++) d += q[t][h * AB_HD + i] * k[j][kvh * AB_HD + i];
                    sc[j] = d / sqrt((double)AB_HD);
                    if (sc[j] > max) max = sc[j];
                }
                for (int j = first; j <= t; j++) { sc[j] = exp(sc[j] - max); sum += sc[j]; }
                for (int i = 0; i < AB_HD; i++) {
                    double a = 0;
                    for (int j = first; j <= t; j++) a += sc[j] / sum * v[j][kvh * AB_HD + i];
                    att[h * AB_HD + i] = a;
                }
            }
            linear(tmp, wo, 0, bo, att, QD, AB_E);
            for (int i = 0; i < AB_E; i++) x[t][i] += tmp[i];
            rmsnorm(xn, x[t], fn);
            linear(gate, wg, 0, NULL, xn, AB_E, AB_FF);
            linear(up, wup, fused ? AB_FF : 0, NULL, xn, AB_E, AB_FF);
            for (int i = 0; i < AB_FF; i++) gate[i] = gate[i] / (1.0 + exp(-gate[i])) * up[i];
            linear(tmp, wd, 0, NULL, gate, AB_FF, AB_E);
            for (int i = 0; i < AB_E; i++) x[t][i] += tmp[i];
        }
        double *p[] = { an, fn, wo, wd, bo, bq, bk, bv, wup, fused ? wqkv : wq, fused ? NULL : wk,
                        fused ? NULL : wv, fused ? NULL : wg };
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
#undef T
#undef T_OPT
    }
    double *on = ref_tensor(m, "output_norm.weight");
    double *out = rb_gguf_get_tensor(&m->file, "output.weight") ? ref_tensor(m, "output.weight") : tok;
    for (int t = 0; t < n_tok && on && out; t++) {
        rmsnorm(xn, x[t], on);
        linear(logits + (size_t)t * G2_VOCAB, out, 0, NULL, xn, AB_E, G2_VOCAB);
    }
    if (out != tok) free(out);
    free(tok);
    free(on);
}

/* rbee's logits for the same tokens: the first n_batch as one batch (all
 * logits), the rest one generation step at a time; F32 KV cache. */
static int rbee_logits(rbee_model *m, int n_ctx, int n_threads, const int32_t *ids, int n_tok, int n_batch,
                       float *out) {
    char err[RBEE_ERR_MAX];
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    cp.type_k = cp.type_v = "f32";
    rbee_context *c;
    if (rbee_context_new(&c, m, &cp, err)) { TEST_FAIL_AT("context: %s", err); return -1; }
    c->pool_min_work = 0; /* every job through the pool */
    int rc = rbee_eval(c, ids, n_batch, 1, err);
    for (int i = 0; rc == 0 && i < n_batch; i++)
        memcpy(out + (size_t)i * G2_VOCAB, rbee_get_logits(c, i), G2_VOCAB * sizeof(float));
    for (int t = n_batch; rc == 0 && t < n_tok; t++) {
        rc = rbee_eval(c, &ids[t], 1, 0, err);
        if (rc == 0) memcpy(out + (size_t)t * G2_VOCAB, rbee_get_logits(c, -1), G2_VOCAB * sizeof(float));
    }
    if (rc) TEST_FAIL_AT("eval: %s", err);
    rbee_context_free(c);
    return rc;
}

/* Load the file o describes and compare rbee with the reference (rope rp,
 * window) for n_tok tokens at context n_ctx, with 1 and 2 threads. */
static void compare(const char *label, const struct ab_opts *o, const struct ref_rope *rp, int window, int n_ctx,
                    int n_tok) {
    char err[RBEE_ERR_MAX];
    rbee_model *m;
    if (rbee_model_load(&m, tmp_model(o), err)) { TEST_FAIL_AT("%s: %s", label, err); return; }
    int32_t ids[T_MAX];
    for (int t = 0; t < n_tok; t++) ids[t] = (t * 97 + 13) % G2_VOCAB;
    static double ref[T_MAX * G2_VOCAB];
    static float ours[T_MAX * G2_VOCAB];
    reference_logits(m, o, rp, window, ids, n_tok, ref);
    for (int threads = 1; threads <= 2; threads++) {
        if (rbee_logits(m, n_ctx, threads, ids, n_tok, n_tok / 2, ours)) break;
        double max_diff = 0, spread = 0;
        for (int i = 0; i < n_tok * G2_VOCAB; i++) {
            double dd = fabs(ours[i] - ref[i]);
            if (!(dd <= max_diff)) max_diff = dd; /* NaN sticks */
            if (fabs(ref[i]) > spread) spread = fabs(ref[i]);
        }
        printf("  %-28s %d thread(s): max |logit - reference| %.2e (largest logit %.2f, tol %.0e)\n", label, threads,
               max_diff, spread, TOL);
        CHECK_MSG(max_diff <= TOL, "%s: logits off by %g", label, max_diff);
        CHECK_MSG(spread > 1.0, "%s: logits too flat to test anything", label);
    }
    rbee_model_free(m);
}

/* ---- the forward pass ---- */

TEST(llama_rope_freqs_and_biases) {
    static double f[AB_HD / 2];
    for (int i = 0; i < AB_HD / 2; i++) f[i] = ab_factor(i, 0);
    struct ab_opts o = { .arch = AB_LLAMA, .rope_freqs = 1, .biases = 1 };
    struct ref_rope rp = { .neox = 0, .base = 10000, .freq_scale = 1, .attn_factor = 1, .factor = f };
    compare("llama rope_freqs, biases", &o, &rp, 0, 64, 20);
    /* and the teeth: the same file against a reference without rope_freqs is far off */
    char err[RBEE_ERR_MAX];
    rbee_model *m;
    if (rbee_model_load(&m, tmp_model(&o), err)) { TEST_FAIL_AT("%s", err); return; }
    CHECK(m->rope_freqs && m->rope_freqs[7] == 8.0f);
    struct ref_rope plain = rp;
    plain.factor = NULL;
    int32_t ids[20];
    for (int t = 0; t < 20; t++) ids[t] = (t * 97 + 13) % G2_VOCAB;
    static double ref[20 * G2_VOCAB];
    static float ours[20 * G2_VOCAB];
    reference_logits(m, &o, &plain, 0, ids, 20, ref);
    if (rbee_logits(m, 64, 1, ids, 20, 10, ours) == 0) {
        double max_diff = 0;
        for (int i = 0; i < 20 * G2_VOCAB; i++) max_diff = fmax(max_diff, fabs(ours[i] - ref[i]));
        CHECK_MSG(max_diff > 100 * TOL, "rope_freqs changes nothing (%g)", max_diff);
    }
    rbee_model_free(m);
}

TEST(llama_linear_scaling) {
    struct ab_opts o = { .arch = AB_LLAMA, .linear_factor = 4.0f };
    struct ref_rope rp = { .neox = 0, .base = 10000, .freq_scale = 0.25, .attn_factor = 1 };
    compare("llama linear x4", &o, &rp, 0, 64, 20);
}

TEST(qwen2_neox_biases_tied) {
    struct ab_opts o = { .arch = AB_QWEN2 };
    struct ref_rope rp = { .neox = 1, .base = 1000000, .freq_scale = 1, .attn_factor = 1 };
    compare("qwen2", &o, &rp, 0, 64, 20);
}

TEST(phi3_fused_scaled_window) {
    struct ab_opts o = { .arch = AB_PHI3, .window = 5 };
    struct ref_rope rp = { .neox = 1, .base = 10000, .freq_scale = 1, .attn_factor = 1 };
    compare("phi3 window 5", &o, &rp, 5, 64, 20);
    o.window = 0; /* Phi-4: no window */
    compare("phi3 no window", &o, &rp, 0, 64, 20);
}

/* LongRoPE: a context up to the original 32 positions uses the short
 * factors, a longer one the long factors; cos and sin are scaled by 1.2. */
TEST(phi3_longrope_by_context) {
    static double fs[AB_HD / 2], fl[AB_HD / 2];
    for (int i = 0; i < AB_HD / 2; i++) { fs[i] = ab_factor(i, 0); fl[i] = ab_factor(i, 1); }
    struct ab_opts o = { .arch = AB_PHI3, .window = 2047, .longrope = 1 };
    struct ref_rope rp = { .neox = 1, .base = 10000, .freq_scale = 1, .attn_factor = 1.2, .factor = fs };
    compare("phi3 longrope ctx 32 (short)", &o, &rp, 0, 32, 20);
    rp.factor = fl;
    compare("phi3 longrope ctx 33 (long)", &o, &rp, 0, 33, 20);
}

/* ---- binding ---- */

TEST(phi3_binds_views_and_params) {
    char err[RBEE_ERR_MAX];
    struct ab_opts o = { .arch = AB_PHI3, .window = 7 };
    rbee_model *m;
    if (rbee_model_load(&m, tmp_model(&o), err)) { TEST_FAIL_AT("%s", err); return; }
    const struct rb_layer *l = &m->layers[1];
    const struct gguf_tensor *qkv = rb_gguf_get_tensor(&m->file, "blk.1.attn_qkv.weight");
    const struct gguf_tensor *up = rb_gguf_get_tensor(&m->file, "blk.1.ffn_up.weight");
    CHECK(qkv && l->wq.data == qkv->data && l->wq.n_out == AB_HEADS * AB_HD);
    CHECK(l->wk.data == l->wq.data + (size_t)AB_HEADS * AB_HD * l->wq.row_bytes && l->wk.n_out == AB_KV * AB_HD);
    CHECK(l->wv.data == l->wk.data + (size_t)AB_KV * AB_HD * l->wk.row_bytes && l->wv.n_out == AB_KV * AB_HD);
    CHECK(up && l->w_gate.data == up->data && l->w_gate.n_out == AB_FF);
    CHECK(l->w_up.data == l->w_gate.data + (size_t)AB_FF * l->w_gate.row_bytes && l->w_up.n_out == AB_FF);
    CHECK(l->attn.window == 7 && l->attn.q_scale == 0.25f && l->attn.kq_scale == 1.0f);
    CHECK(m->arch->rope == RB_ROPE_NEOX && m->output.data != m->tok_embd.data);
    rbee_model_free(m);
    o.arch = AB_QWEN2;
    if (rbee_model_load(&m, tmp_model(&o), err)) { TEST_FAIL_AT("%s", err); return; }
    CHECK(m->output.data == m->tok_embd.data && m->layers[0].bq && !m->layers[0].bo);
    CHECK(m->layers[0].attn.window == 0 && m->layers[0].attn.q_scale == 1.0f && m->layers[0].attn.kq_scale == 0.25f);
    rbee_model_free(m);
}

/* ---- refusals ---- */

static void expect_refused(enum ab_arch arch, enum ab_defect d, const char *want) {
    char err[RBEE_ERR_MAX] = "";
    struct ab_opts o = { .arch = arch, .defect = d, .window = 2047 };
    rbee_model *m = NULL;
    int rc = rbee_model_load(&m, tmp_model(&o), err);
    CHECK_MSG(rc == -1 && m == NULL, "%s defect %d loaded", ab_arch_name(arch), (int)d);
    CHECK_STR(err, want);
    rbee_model_free(m);
}

TEST(refuses_bad_rope_freqs) {
    expect_refused(AB_LLAMA, AB_ROPE_FREQS_SHAPE, "tensor 'rope_freqs.weight' has shape [16], expected [8]");
    expect_refused(AB_LLAMA, AB_ROPE_FREQS_ZERO, "tensor 'rope_freqs.weight' holds 0 at 2; rope factors must be positive");
}

TEST(refuses_bad_qwen2) {
    expect_refused(AB_QWEN2, AB_QWEN2_NO_BK, "missing tensor 'blk.1.attn_k.bias'");
    expect_refused(AB_QWEN2, AB_QWEN2_BQ_LEN, "tensor 'blk.0.attn_q.bias' has shape [32], expected [64]");
    expect_refused(AB_QWEN2, AB_QWEN2_OUT_BIAS, "tensor 'blk.0.attn_output.bias' is not used by rbee's 'qwen2' architecture");
    expect_refused(AB_QWEN2, AB_EXTRA_TENSOR, "tensor 'blk.0.ffn_gate.bias' is not used by rbee's 'qwen2' architecture");
}

TEST(refuses_bad_phi3) {
    expect_refused(AB_PHI3, AB_PHI3_QKV_ROWS, "tensor 'blk.0.attn_qkv.weight' has shape [64, 96], expected [64, 128]");
    expect_refused(AB_PHI3, AB_PHI3_UP_ROWS, "tensor 'blk.0.ffn_up.weight' has shape [64, 96], expected [64, 192]");
    expect_refused(AB_PHI3, AB_PHI3_NO_QKV, "missing tensor 'blk.0.attn_qkv.weight'");
    expect_refused(AB_PHI3, AB_PHI3_NO_OUTPUT, "missing tensor 'output.weight'");
    expect_refused(AB_PHI3, AB_PHI3_NO_WINDOW, "missing hyperparameter 'phi3.attention.sliding_window'");
    expect_refused(AB_PHI3, AB_PHI3_HALF_LONGROPE,
                   "missing tensor 'rope_factors_long.weight' (LongRoPE needs both factor tensors)");
    expect_refused(AB_PHI3, AB_EXTRA_TENSOR, "tensor 'blk.0.ffn_gate.bias' is not used by rbee's 'phi3' architecture");
}

TEST(refuses_what_rbee_cannot_run) {
    expect_refused(AB_LLAMA, AB_EXPERTS, "llama.expert_count = 8: mixture-of-experts models are not supported");
    expect_refused(AB_QWEN2, AB_YARN, "rope scaling type 'yarn' is not supported");
    expect_refused(AB_PHI3, AB_VALUE_LEN, "phi3.attention.key_length 16 differs from value_length 8 (not supported)");
    expect_refused(AB_LLAMA, AB_EXTRA_TENSOR, "tensor 'blk.0.ffn_gate.bias' is not used by rbee's 'llama' architecture");
}

int main(void) {
    printf("isa %s\n", rbee_isa());
    snprintf(dir, sizeof dir, "/tmp/rbee_test_arch_XXXXXX");
    if (!mkdtemp(dir)) { printf("mkdtemp failed\n"); return 1; }
    RUN(llama_rope_freqs_and_biases);
    RUN(llama_linear_scaling);
    RUN(qwen2_neox_biases_tied);
    RUN(phi3_fused_scaled_window);
    RUN(phi3_longrope_by_context);
    RUN(phi3_binds_views_and_params);
    RUN(refuses_bad_rope_freqs);
    RUN(refuses_bad_qwen2);
    RUN(refuses_bad_phi3);
    RUN(refuses_what_rbee_cannot_run);
    for (int a = AB_LLAMA; a <= AB_PHI3; a++)
        for (int d = AB_OK; d < AB_N_DEFECTS; d++) {
            char p[128];
            snprintf(p, sizeof p, "%s/a%d_%d.gguf", dir, a, d);
            unlink(p);
        }
    rmdir(dir);
    return test_summary();
}
