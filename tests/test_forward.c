/* test_forward.c - the forward pass against a plain double-precision
 * transcription of the model, written here from the tensors in the file
 * (by name, not through the runtime's binding), for a tiny GPT-2
 * (tests/gpt2_build.h: learned positions, LayerNorm, fused qkv, GELU, all
 * biases). F32 weights and an F32 KV cache leave only float rounding
 * between the two, so the tolerance is tight. tests/run_tests.sh runs it
 * once per ISA, which covers every layernorm / gelu / add kernel.
 *
 * Glossary: T tokens, E n_embd, H heads of HD, FF ffn width, V vocab. */
#include <unistd.h>

#include "test.h"
#include "gpt2_build.h"
#include "../runtime/context.h"
#include "../runtime/model.h"
#include "../runtime/rbee.h"

#define TOL 2e-4 /* |logit| difference; logits spread over a few units */

/* ---- the reference: one struct of doubles, read by tensor name ---- */

struct ref_layer {
    double *ln1_w, *ln1_b, *qkv_w, *qkv_b, *o_w, *o_b, *ln2_w, *ln2_b, *up_w, *up_b, *down_w, *down_b;
};

struct ref_model {
    double *tok, *pos, *lnf_w, *lnf_b, *out; /* out: output.weight or tok (tied) */
    struct ref_layer l[G2_LAYERS];
};

static double *ref_tensor(const rbee_model *m, const char *name, int64_t n) {
    double *d = g2_read_doubles(&m->file, name, n);
    if (!d) TEST_FAIL_AT("tensor %s: missing or not F32 of %lld", name, (long long)n);
    return d;
}

static void ref_load(struct ref_model *r, const rbee_model *m) {
    char n[64];
    r->tok = ref_tensor(m, "token_embd.weight", (int64_t)G2_E * G2_VOCAB);
    r->pos = ref_tensor(m, "position_embd.weight", (int64_t)G2_E * G2_CTX);
    r->lnf_w = ref_tensor(m, "output_norm.weight", G2_E);
    r->lnf_b = ref_tensor(m, "output_norm.bias", G2_E);
    r->out = rb_gguf_get_tensor(&m->file, "output.weight") ? ref_tensor(m, "output.weight", (int64_t)G2_E * G2_VOCAB)
                                                       : NULL;
    for (int il = 0; il < G2_LAYERS; il++) {
        struct ref_layer *l = &r->l[il];
#define T(s, len) (snprintf(n, sizeof n, "blk.%d." s, il), ref_tensor(m, n, len))
        l->ln1_w = T("attn_norm.weight", G2_E);
        l->ln1_b = T("attn_norm.bias", G2_E);
        l->qkv_w = T("attn_qkv.weight", 3 * G2_E * G2_E);
        l->qkv_b = T("attn_qkv.bias", 3 * G2_E);
        l->o_w = T("attn_output.weight", G2_E * G2_E);
        l->o_b = T("attn_output.bias", G2_E);
        l->ln2_w = T("ffn_norm.weight", G2_E);
        l->ln2_b = T("ffn_norm.bias", G2_E);
        l->up_w = T("ffn_up.weight", G2_FF * G2_E);
        l->up_b = T("ffn_up.bias", G2_FF);
        l->down_w = T("ffn_down.weight", G2_E * G2_FF);
        l->down_b = T("ffn_down.bias", G2_E);
#undef T
    }
}

static void ref_free(struct ref_model *r) {
    free(r->tok); free(r->pos); free(r->lnf_w); free(r->lnf_b); free(r->out);
    for (int il = 0; il < G2_LAYERS; il++) {
        struct ref_layer *l = &r->l[il];
        double *p[] = { l->ln1_w, l->ln1_b, l->qkv_w, l->qkv_b, l->o_w, l->o_b,
                        l->ln2_w, l->ln2_b, l->up_w, l->up_b, l->down_w, l->down_b };
        for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    }
}

static void layernorm(double *out, const double *x, const double *w, const double *b) {
    double mean = 0, var = 0;
    for (int i = 0; i < G2_E; i++) mean += x[i];
    mean /= G2_E;
    for (int i = 0; i < G2_E; i++) var += (x[i] - mean) * (x[i] - mean);
    double s = 1.0 / sqrt(var / G2_E + 1e-5);
    for (int i = 0; i < G2_E; i++) out[i] = (x[i] - mean) * s * w[i] + b[i];
}

/* out[n_out] = W x + b, W stored as n_out rows of n_in (GGUF ne = [n_in, n_out]) */
static void linear(double *out, const double *w, const double *b, const double *x, int n_in, int n_out) {
    for (int o = 0; o < n_out; o++) {
        double s = b[o];
        for (int i = 0; i < n_in; i++) s += w[(size_t)o * n_in + i] * x[i];
        out[o] = s;
    }
}

static double gelu_tanh(double x) {
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 /* sqrt(2/pi) */ * (x + 0.044715 * x * x * x)));
}

/* logits [T][V] for tokens at positions 0 .. T-1, all of them causal */
static void ref_forward(const struct ref_model *r, const int32_t *tokens, int n_tok, double *logits) {
    static double x[G2_CTX][G2_E], xn[G2_E], qkv[G2_CTX][3 * G2_E], att[G2_E], proj[G2_E], h[G2_FF];
    for (int t = 0; t < n_tok; t++)
        for (int i = 0; i < G2_E; i++)
            x[t][i] = r->tok[(size_t)tokens[t] * G2_E + i] + r->pos[(size_t)t * G2_E + i];
    for (int il = 0; il < G2_LAYERS; il++) {
        const struct ref_layer *l = &r->l[il];
        for (int t = 0; t < n_tok; t++) {
            layernorm(xn, x[t], l->ln1_w, l->ln1_b);
            linear(qkv[t], l->qkv_w, l->qkv_b, xn, G2_E, 3 * G2_E); /* [q | k | v] */
        }
        for (int t = 0; t < n_tok; t++) {
            for (int hh = 0; hh < G2_HEADS; hh++) {
                const double *q = qkv[t] + hh * G2_HD;
                double p[G2_CTX], max = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const double *k = qkv[j] + G2_E + hh * G2_HD;
                    double s = 0;
                    for (int i = 0; i < G2_HD; i++) s += q[i] * k[i];
                    p[j] = s / sqrt((double)G2_HD);
                    if (p[j] > max) max = p[j];
                }
                for (int j = 0; j <= t; j++) sum += p[j] = exp(p[j] - max);
                for (int i = 0; i < G2_HD; i++) {
                    double o = 0;
                    for (int j = 0; j <= t; j++) o += p[j] / sum * qkv[j][2 * G2_E + hh * G2_HD + i];
                    att[hh * G2_HD + i] = o;
                }
            }
            linear(proj, l->o_w, l->o_b, att, G2_E, G2_E);
            for (int i = 0; i < G2_E; i++) x[t][i] += proj[i];
        }
        for (int t = 0; t < n_tok; t++) {
            layernorm(xn, x[t], l->ln2_w, l->ln2_b);
            linear(h, l->up_w, l->up_b, xn, G2_E, G2_FF);
            for (int i = 0; i < G2_FF; i++) h[i] = gelu_tanh(h[i]);
            linear(proj, l->down_w, l->down_b, h, G2_FF, G2_E);
            for (int i = 0; i < G2_E; i++) x[t][i] += proj[i];
        }
    }
    static const double zero[G2_VOCAB];
    for (int t = 0; t < n_tok; t++) {
        layernorm(xn, x[t], r->lnf_w, r->lnf_b);
        linear(logits + (size_t)t * G2_VOCAB, r->out ? r->out : r->tok, zero, xn, G2_E, G2_VOCAB);
    }
}

/* ---- the comparison ---- */

static char dir[64];

static double max_diff_row(const float *ours, const double *ref) {
    double d = 0;
    for (int v = 0; v < G2_VOCAB; v++) {
        double e = fabs(ours[v] - ref[v]);
        if (!(e <= d)) d = e; /* NaN sticks */
    }
    return d;
}

static double spread(const double *row) {
    double lo = row[0], hi = row[0];
    for (int v = 1; v < G2_VOCAB; v++) { if (row[v] < lo) lo = row[v]; if (row[v] > hi) hi = row[v]; }
    return hi - lo;
}

/* All 16 positions as one batch (every row's logits), then the same tokens
 * as a batch of 9 followed by 7 single steps, each against the reference. */
static void check_model(enum g2_defect d, int n_threads) {
    char path[128], err[RBEE_ERR_MAX];
    snprintf(path, sizeof path, "%s/g%d.gguf", dir, (int)d);
    if (g2_write(path, d)) { TEST_FAIL_AT("cannot write %s", path); return; }
    rbee_model *m;
    if (rbee_model_load(&m, path, err)) { TEST_FAIL_AT("%s", err); unlink(path); return; }
    struct ref_model r = { 0 };
    ref_load(&r, m);
    int32_t toks[G2_CTX];
    for (int i = 0; i < G2_CTX; i++) toks[i] = (i * 89 + 7) % G2_VOCAB;
    toks[5] = toks[2]; /* a repeated token: only its position tells the rows apart */
    static double ref[G2_CTX][G2_VOCAB];
    ref_forward(&r, toks, G2_CTX, &ref[0][0]);
    CHECK_MSG(spread(ref[G2_CTX - 1]) > 2.0, "reference logits too flat to test anything");

    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_threads = n_threads;
    cp.type_k = "f32";
    cp.type_v = "f32";
    rbee_context *c;
    if (rbee_context_new(&c, m, &cp, err)) { TEST_FAIL_AT("%s", err); goto out; }
    c->pool_min_work = 0; /* through the pool even at this size */
    double batch = 0, steps = 0;
    CHECK(rbee_eval(c, toks, G2_CTX, 1, err) == 0);
    for (int t = 0; t < G2_CTX; t++) {
        double e = max_diff_row(rbee_get_logits(c, t), ref[t]);
        if (!(e <= batch)) batch = e;
    }
    rbee_reset(c);
    CHECK(rbee_eval(c, toks, 9, 0, err) == 0);
    double e9 = max_diff_row(rbee_get_logits(c, -1), ref[8]);
    if (!(e9 <= steps)) steps = e9;
    for (int t = 9; t < G2_CTX; t++) {
        CHECK(rbee_eval(c, &toks[t], 1, 0, err) == 0);
        double e = max_diff_row(rbee_get_logits(c, -1), ref[t]);
        if (!(e <= steps)) steps = e;
    }
    printf("  defect %d, %d thread(s): max |logit - reference| batch %.2e, steps %.2e (tol %.0e)\n",
           (int)d, n_threads, batch, steps, TOL);
    CHECK_MSG(batch <= TOL, "batch logits differ by %g", batch);
    CHECK_MSG(steps <= TOL, "step logits differ by %g", steps);
    rbee_context_free(c);
out:
    ref_free(&r);
    rbee_model_free(m);
    unlink(path);
}

TEST(gpt2_matches_reference) {
    check_model(G2_OK, 1);
    check_model(G2_OK, 2);
}

TEST(gpt2_tied_output_matches_reference) {
    check_model(G2_TIED, 1);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/rbee_test_forward_XXXXXX");
    if (!mkdtemp(dir)) { printf("mkdtemp failed\n"); return 1; }
    printf("isa %s\n", rbee_isa());
    RUN(gpt2_matches_reference);
    RUN(gpt2_tied_output_matches_reference);
    rmdir(dir);
    return test_summary();
}
