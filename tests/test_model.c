/* test_model.c - model loading: every kind of bad file is refused with a
 * message that names the problem; a good tiny model loads, binds, reports
 * its facts, evaluates, and respects the context limits. Files are built
 * with the gguf writer into a temp directory. */
#include <unistd.h>

#include "test.h"
#include "gpt2_build.h"
#include "llama_build.h"
#include "../gguf/gguf.h"
#include "../quant/quant.h"
#include "../runtime/cli.h"
#include "../runtime/context.h"
#include "../runtime/model.h"
#include "../runtime/rbee.h"

static char dir[64];

static const char *tmp_model(enum ll_defect d) {
    static char path[128];
    snprintf(path, sizeof path, "%s/m%d.gguf", dir, (int)d);
    ll_write(path, d);
    return path;
}

/* Load a model with defect d; expect failure with exactly `want`. */
static void expect_refused(enum ll_defect d, const char *want) {
    char err[RBEE_ERR_MAX] = "";
    rbee_model *m = NULL;
    int rc = rbee_model_load(&m, tmp_model(d), err);
    CHECK_MSG(rc == -1 && m == NULL, "defect %d loaded", (int)d);
    CHECK_STR(err, want);
    rbee_model_free(m);
}

/* Hyperparameters that are zero, NaN, of the wrong type or inconsistent. */
TEST(refuses_bad_hparams) {
    expect_refused(LL_HEADS_NOT_DIVIDING, "head_count 5 does not divide embedding_length 256");
    expect_refused(LL_KV_NOT_DIVIDING, "head_count_kv 3 does not divide head_count 4");
    expect_refused(LL_ROPE_TOO_BIG, "rope dimension_count 66 must be even, from 2 to the head dim 64");
    expect_refused(LL_ROPE_ZERO, "rope dimension_count 0 must be even, from 2 to the head dim 64");
    expect_refused(LL_ZERO_EMBD, "hyperparameter 'llama.embedding_length' is 0");
    expect_refused(LL_ZERO_HEADS, "hyperparameter 'llama.attention.head_count' is 0");
    expect_refused(LL_ZERO_HEADS_KV, "hyperparameter head_count_kv = 0 is out of range 1..4096");
    expect_refused(LL_ZERO_LAYERS, "hyperparameter block_count = 0 is out of range 1..4096");
    expect_refused(LL_ZERO_CTX, "hyperparameter context_length = 0 is out of range 1..16777216");
    expect_refused(LL_ZERO_FF, "hyperparameter feed_forward_length = 0 is out of range 1..4194304");
    expect_refused(LL_NAN_EPS, "hyperparameter 'llama.attention.layer_norm_rms_epsilon' is not a finite number");
    expect_refused(LL_ZERO_EPS, "norm epsilon 0 is out of range (0, 1)");
    expect_refused(LL_EMBD_AS_STR, "llama.embedding_length: expected u32, got str");
    expect_refused(LL_EPS_AS_U32, "llama.attention.layer_norm_rms_epsilon: expected f32, got u32");
}

/* Vocabulary arrays of the wrong element type or length, special ids out
 * of range: refused by the model load (through the tokenizer). */
TEST(refuses_bad_vocab) {
    expect_refused(LL_SCORES_AS_U8, "tokenizer: tokenizer.ggml.scores: expected array of f32, got array of u8");
    expect_refused(LL_SHORT_TYPES, "tokenizer: tokenizer.ggml.token_type: 263 types for 264 tokens");
    expect_refused(LL_EOS_OUT_OF_RANGE,
                   "tokenizer: tokenizer.ggml.eos_token_id: token id 264 out of range (vocabulary has 264 tokens)");
    expect_refused(LL_VOCAB_MISMATCH, "vocabulary has 264 tokens but token_embd.weight has 272 rows");
}

/* Missing or wrongly shaped tensors, types rbee cannot compute, NaN data. */
TEST(refuses_bad_tensors) {
    expect_refused(LL_MISSING_FFN_UP, "missing tensor 'blk.0.ffn_up.weight'");
    expect_refused(LL_MISSING_OUTPUT_NORM, "missing tensor 'output_norm.weight'");
    expect_refused(LL_BAD_SHAPE_Q, "tensor 'blk.0.attn_q.weight' has shape [256, 128], expected [256, 256]");
    expect_refused(LL_BAD_SHAPE_DOWN, "tensor 'blk.0.ffn_down.weight' has shape [256, 64], expected [64, 256]");
    expect_refused(LL_BAD_SHAPE_NORM, "tensor 'blk.0.attn_norm.weight' has shape [128, 2], expected [256]");
    expect_refused(LL_IQ2_FFN_UP, "tensor 'blk.0.ffn_up.weight' has type iq2_xxs, which rbee cannot compute");
    expect_refused(LL_UNKNOWN_ARCH, "architecture 'mamba' is not supported");
    expect_refused(LL_NAN_NORM, "tensor 'blk.0.attn_norm.weight' holds a NaN or infinity at 0");
    expect_refused(LL_NAN_SCALE, "tensor 'blk.0.ffn_gate.weight' block 5 has a NaN or infinite scale");
    /* keys and tensor names are checked when the file is read */
    expect_refused(LL_KEY_NUL, "metadata key 'general.nul?key': NUL byte at byte 11");
    expect_refused(LL_KEY_BAD_UTF8, "metadata key 'general.??key': invalid UTF-8 at byte 8");
    expect_refused(LL_NAME_BAD_UTF8, "tensor name 'extra.??.weight': invalid UTF-8 at byte 6");
}

/* `rbee run` on a refused file: the one line "rbee: error: FILE: reason"
 * on stderr and exit status 1. */
TEST(cli_refuses_with_one_line) {
    const char *path = tmp_model(LL_ZERO_EMBD);
    char *argv[] = { "run", "-m", (char *)path, "-p", "hi", NULL };
    char tmp[] = "/tmp/rbee_model_err_XXXXXX", got[1024] = "", want[1024];
    int fd = mkstemp(tmp);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    int rc = cli_run(5, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, got, sizeof got - 1);
    got[n > 0 ? n : 0] = 0;
    close(fd);
    unlink(tmp);
    CHECK_EQ_INT(rc, 1);
    snprintf(want, sizeof want, "rbee: error: %s: hyperparameter 'llama.embedding_length' is 0\n", path);
    CHECK_STR(got, want);
}

TEST(refuses_bad_paths) {
    char err[RBEE_ERR_MAX] = "", path[512];
    rbee_model *m;
    CHECK(rbee_model_load(&m, "/nonexistent/model.gguf", err) == -1);
    CHECK_CONTAINS(err, "no such file");
    CHECK(rbee_model_load(&m, dir, err) == -1);
    CHECK_CONTAINS(err, "is a directory");
    CHECK(rbee_model_load(&m, test_path(path, sizeof path, "models/stories260K-gguf-v1.gguf"), err) == -1);
    CHECK(err[0] != 0);
}

TEST(good_model_facts_and_eval) {
    char err[RBEE_ERR_MAX] = "";
    rbee_model *m;
    if (rbee_model_load(&m, tmp_model(LL_OK), err)) { TEST_FAIL_AT("%s", err); return; }
    struct rbee_model_info in;
    rbee_model_get_info(m, &in);
    CHECK_STR(in.arch, "llama");
    CHECK_STR(in.weight_type, "f32");
    int64_t per_layer = 2 * LL_E + LL_E * LL_E * 2 + 2 * (LL_E * LL_KV * LL_HD) + 3 * LL_E * LL_FF;
    int64_t params = 2 * (int64_t)LL_E * LL_VOCAB + per_layer + LL_E;
    CHECK_EQ_INT(in.n_params, params);
    CHECK_EQ_INT(in.weight_bytes, params * 4);
    CHECK_EQ_INT(in.bytes_per_token, (params - (int64_t)LL_E * LL_VOCAB + LL_E) * 4); /* one embedding row */
    CHECK_EQ_INT(in.n_heads_kv, LL_KV);
    CHECK_EQ_INT(in.head_dim, LL_HD);
    CHECK_EQ_INT(in.n_vocab, LL_VOCAB);
    CHECK(m->output.data != m->tok_embd.data);

    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = 8;
    rbee_context *c;
    if (rbee_context_new(&c, m, &cp, err)) { TEST_FAIL_AT("%s", err); rbee_model_free(m); return; }
    CHECK_EQ_INT(rbee_n_ctx(c), 8);
    int32_t toks[9] = { 1, 261, 262, 259, 3, 4, 5, 6, 7 };
    CHECK(rbee_get_logits(c, -1) == NULL);
    CHECK(rbee_eval(c, toks, 9, 0, err) == -1); /* longer than the context */
    CHECK_CONTAINS(err, "do not fit the context of 8");
    int32_t bad = LL_VOCAB;
    CHECK(rbee_eval(c, &bad, 1, 0, err) == -1);
    CHECK_CONTAINS(err, "outside the vocabulary");
    CHECK_EQ_INT(rbee_pos(c), 0);

    /* batch of 4 with all logits == 4 single steps, per token, within float noise */
    CHECK(rbee_eval(c, toks, 4, 1, err) == 0);
    CHECK_EQ_INT(rbee_pos(c), 4);
    float batch[4][LL_VOCAB];
    for (int i = 0; i < 4; i++) memcpy(batch[i], rbee_get_logits(c, i), sizeof batch[i]);
    CHECK(rbee_get_logits(c, 4) == NULL);
    rbee_reset(c);
    double max_diff = 0;
    for (int i = 0; i < 4; i++) {
        CHECK(rbee_eval(c, &toks[i], 1, 0, err) == 0);
        const float *l = rbee_get_logits(c, -1);
        for (int v = 0; v < LL_VOCAB; v++) {
            CHECK(isfinite(l[v]));
            double d = fabs(l[v] - batch[i][v]);
            if (d > max_diff) max_diff = d;
        }
    }
    CHECK_NEAR(max_diff, 0.0, 1e-4);
    CHECK(fabs(batch[0][0] - batch[3][0]) > 1e-6); /* positions actually matter */
    CHECK(rbee_set_pos(c, 5) == -1);
    CHECK(rbee_set_pos(c, 2) == 0);
    CHECK_EQ_INT(rbee_pos(c), 2);
    CHECK(rbee_eval(c, &toks[2], 1, 0, err) == 0);
    for (int v = 0; v < LL_VOCAB; v++) /* rewinding replays position 2 */
        if (fabs(rbee_get_logits(c, -1)[v] - batch[2][v]) > 1e-4) { TEST_FAIL_AT("rewind differs at %d", v); break; }
    CHECK(rbee_eval(c, toks, 6, 0, err) == -1); /* 3 + 6 > 8 */
    rbee_context_free(c);

    cp.type_k = "q5_1";
    CHECK(rbee_context_new(&c, m, &cp, err) == -1);
    CHECK_CONTAINS(err, "q5_1");
    cp.type_k = NULL;
    cp.n_threads = -1;
    CHECK(rbee_context_new(&c, m, &cp, err) == -1);
    rbee_model_free(m);
}

TEST(tied_output_uses_embedding) {
    char err[RBEE_ERR_MAX] = "";
    rbee_model *m;
    if (rbee_model_load(&m, tmp_model(LL_TIED), err)) { TEST_FAIL_AT("%s", err); return; }
    CHECK(m->output.data == m->tok_embd.data);
    struct rbee_model_info in;
    rbee_model_get_info(m, &in);
    CHECK_EQ_INT(in.bytes_per_token, in.weight_bytes); /* the embedding is read whole */
    rbee_model_free(m);
}

TEST(real_model_hparams) {
    char err[RBEE_ERR_MAX], path[512];
    rbee_model *m;
    if (rbee_model_load(&m, test_path(path, sizeof path, "models/stories260K.gguf"), err)) {
        TEST_FAIL_AT("%s", err);
        return;
    }
    CHECK_EQ_INT(m->hp.n_embd, 64);
    CHECK_EQ_INT(m->hp.n_layers, 5);
    CHECK_EQ_INT(m->hp.n_heads, 8);
    CHECK_EQ_INT(m->hp.n_heads_kv, 4);
    CHECK_EQ_INT(m->hp.head_dim, 8);
    CHECK_EQ_INT(m->hp.n_ff, 172);
    CHECK_EQ_INT(m->hp.n_vocab, 512);
    CHECK_EQ_INT(m->hp.rope_dim, 8);
    CHECK_NEAR(m->hp.rope_base, 10000.0, 0);
    CHECK_EQ_INT(rbee_token_bos(m), 1);
    int32_t ids[16];
    CHECK_EQ_INT(rbee_tokenize(m, "Once upon a time", 16, 1, 1, ids, 16, err), 5);
    CHECK_EQ_INT(ids[1], 403);
    rbee_model_free(m);
}

/* A batch longer than RB_MAX_BATCH is split into forward calls; the logits
 * must equal (bit for bit: every row is computed independently of the
 * batch it sits in) those of feeding the same tokens in chunks of 100. */
TEST(long_batch_equals_chunks) {
    char err[RBEE_ERR_MAX], path[512];
    const char *quick = getenv("RBEE_GOLDEN_QUICK"); /* set under qemu, where this takes 10 s */
    if (quick && !strcmp(quick, "1")) { printf("  skipped (RBEE_GOLDEN_QUICK=1)\n"); return; }
    rbee_model *m;
    if (rbee_model_load(&m, test_path(path, sizeof path, "models/stories260K-q8_0.gguf"), err)) {
        TEST_FAIL_AT("%s", err);
        return;
    }
    enum { N = 530 };
    int32_t toks[N];
    for (int i = 0; i < N; i++) toks[i] = 3 + (i * 37) % 500;
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = 600;
    cp.n_threads = 2;
    rbee_context *a, *b;
    CHECK(rbee_context_new(&a, m, &cp, err) == 0);
    CHECK(rbee_context_new(&b, m, &cp, err) == 0);
    CHECK(rbee_eval(a, toks, N, 1, err) == 0);
    for (int done = 0; done < N; done += 100)
        CHECK(rbee_eval(b, toks + done, N - done < 100 ? N - done : 100, 0, err) == 0);
    CHECK_EQ_INT(rbee_pos(a), N);
    CHECK_EQ_INT(rbee_pos(b), N);
    CHECK(!memcmp(rbee_get_logits(a, N - 1), rbee_get_logits(b, -1), 512 * sizeof(float)));
    CHECK(!memcmp(rbee_get_logits(a, -1), rbee_get_logits(b, -1), 512 * sizeof(float)));
    rbee_context_free(a);
    rbee_context_free(b);
    rbee_model_free(m);
}

struct dump_log { int calls, l_out_layers, saw_embd, saw_output; double embd0; };

static void on_dump(void *user, const char *name, int layer, const float *rows, int n_tok, int64_t len) {
    struct dump_log *d = user;
    d->calls++;
    if (!strcmp(name, "l_out")) d->l_out_layers |= 1 << layer;
    if (!strcmp(name, "inp_embd")) { d->saw_embd = n_tok == 5 && len == 64; d->embd0 = rows[0]; }
    if (!strcmp(name, "result_output")) d->saw_output = n_tok == 1 && len == 512 && layer == -1;
}

/* The debug hook sees every named activation of every layer. */
TEST(dump_hook_names_activations) {
    char err[RBEE_ERR_MAX], path[512];
    rbee_model *m;
    if (rbee_model_load(&m, test_path(path, sizeof path, "models/stories260K.gguf"), err)) {
        TEST_FAIL_AT("%s", err);
        return;
    }
    rbee_context *c;
    CHECK(rbee_context_new(&c, m, NULL, err) == 0);
    struct dump_log d = { 0 };
    c->dump = on_dump;
    c->dump_user = &d;
    int32_t toks[5] = { 1, 403, 407, 261, 378 };
    CHECK(rbee_eval(c, toks, 5, 0, err) == 0);
    CHECK_EQ_INT(d.calls, 1 + 5 * 9 + 2); /* inp_embd, 9 per layer, result_norm/output */
    CHECK_EQ_INT(d.l_out_layers, 0x1f);
    CHECK(d.saw_embd && d.saw_output);
    float row[64];
    rb_weight_row_f32(&m->tok_embd, 1, row);
    CHECK_NEAR(d.embd0, row[0], 0);
    rbee_context_free(c);
    rbee_model_free(m);
}

/* ---- gpt2 (tests/gpt2_build.h) ---- */

static const char *tmp_gpt2(enum g2_defect d) {
    static char path[128];
    snprintf(path, sizeof path, "%s/g%d.gguf", dir, (int)d);
    g2_write(path, d);
    return path;
}

static void expect_gpt2_refused(enum g2_defect d, const char *needle) {
    char err[RBEE_ERR_MAX] = "";
    rbee_model *m = NULL;
    int rc = rbee_model_load(&m, tmp_gpt2(d), err);
    CHECK_MSG(rc == -1 && m == NULL, "gpt2 defect %d loaded", (int)d);
    CHECK_CONTAINS(err, needle);
    rbee_model_free(m);
}

TEST(gpt2_refuses_bad_tensors) {
    expect_gpt2_refused(G2_NO_POS, "missing tensor 'position_embd.weight'");
    expect_gpt2_refused(G2_POS_ROWS, "tensor 'position_embd.weight' has shape [64, 8], expected [64, 16]");
    expect_gpt2_refused(G2_NO_QKV_BIAS, "missing tensor 'blk.1.attn_qkv.bias'");
    expect_gpt2_refused(G2_QKV_ROWS, "tensor 'blk.0.attn_qkv.weight' has shape [64, 128], expected [64, 192]");
    expect_gpt2_refused(G2_UP_BIAS_LEN, "tensor 'blk.0.ffn_up.bias' has shape [64], expected [128]");
    expect_gpt2_refused(G2_NO_OUT_NORM_B, "missing tensor 'output_norm.bias'");
    expect_gpt2_refused(G2_NO_EPS, "missing hyperparameter 'gpt2.attention.layer_norm_epsilon'");
}

TEST(gpt2_binds_every_tensor) {
    char err[RBEE_ERR_MAX] = "";
    rbee_model *m;
    if (rbee_model_load(&m, tmp_gpt2(G2_OK), err)) { TEST_FAIL_AT("%s", err); return; }
    struct rbee_model_info in;
    rbee_model_get_info(m, &in);
    CHECK_STR(in.arch, "gpt2");
    CHECK_EQ_INT(in.n_ctx_train, G2_CTX);
    CHECK_EQ_INT(in.n_heads_kv, G2_HEADS);
    CHECK_EQ_INT(in.head_dim, G2_HD);
    CHECK_NEAR(m->hp.norm_eps, 1e-5, 1e-12);
    CHECK(m->arch->norm == RB_NORM_LAYER && m->arch->rope == RB_ROPE_NONE && m->arch->ffn == RB_FFN_GELU);
    CHECK(m->pos_embd.data && m->pos_embd.n_in == G2_E && m->pos_embd.n_out == G2_CTX);
    for (int il = 0; il < G2_LAYERS; il++) {
        const struct rb_layer *l = &m->layers[il];
        CHECK(l->attn_norm && l->attn_norm_b && l->bq && l->bo && l->ffn_norm && l->ffn_norm_b &&
              l->b_up && l->b_down);
        /* attn_qkv is bound once and split into three row views, its bias likewise */
        const struct gguf_tensor *t = rb_gguf_get_tensor(&m->file, il ? "blk.1.attn_qkv.weight" : "blk.0.attn_qkv.weight");
        CHECK(t && l->wq.data == t->data && l->wq.n_out == G2_E && l->wk.n_out == G2_E && l->wv.n_out == G2_E);
        CHECK(l->wk.data == l->wq.data + G2_E * l->wq.row_bytes && l->wv.data == l->wk.data + G2_E * l->wk.row_bytes);
        CHECK(l->bk == l->bq + G2_E && l->bv == l->bk + G2_E && !l->w_gate.data);
    }
    CHECK(m->out_norm && m->out_norm_b);
    CHECK(m->output.data && m->output.data != m->tok_embd.data);
    int32_t ids[8];
    /* words " the", " he": merged to "Ġthe"; "Ġ" (byte 0x20) and "he" */
    CHECK_EQ_INT(rbee_tokenize(m, " the he", 7, 0, 1, ids, 8, err), 3);
    CHECK(ids[0] == 258 && ids[1] == 0x20 && ids[2] == 256);
    rbee_model_free(m);

    if (rbee_model_load(&m, tmp_gpt2(G2_TIED), err)) { TEST_FAIL_AT("%s", err); return; }
    CHECK(m->output.data == m->tok_embd.data);
    rbee_model_free(m);
    /* the position table is only dequantized row by row: any such type loads */
    if (rbee_model_load(&m, tmp_gpt2(G2_POS_Q4_0), err)) { TEST_FAIL_AT("%s", err); return; }
    CHECK_EQ_INT(m->pos_embd.type, RB_TYPE_Q4_0);
    rbee_model_free(m);
}

/* Learned positions end at the table: a longer context is refused when
 * the context is made, and a full context takes no more tokens. */
TEST(gpt2_context_bounded_by_position_table) {
    char err[RBEE_ERR_MAX] = "";
    rbee_model *m;
    if (rbee_model_load(&m, tmp_gpt2(G2_OK), err)) { TEST_FAIL_AT("%s", err); return; }
    struct rbee_context_params cp = rbee_context_default_params();
    rbee_context *c = NULL;
    cp.n_ctx = G2_CTX + 1;
    CHECK(rbee_context_new(&c, m, &cp, err) == -1 && c == NULL);
    CHECK_CONTAINS(err, "context size 17 is more than the 16 positions the model has learned");
    cp.n_ctx = 0; /* default: the trained context */
    if (rbee_context_new(&c, m, &cp, err)) { TEST_FAIL_AT("%s", err); rbee_model_free(m); return; }
    CHECK_EQ_INT(rbee_n_ctx(c), G2_CTX);
    int32_t toks[G2_CTX + 1];
    for (int i = 0; i <= G2_CTX; i++) toks[i] = (i * 37 + 5) % G2_VOCAB;
    CHECK(rbee_eval(c, toks, G2_CTX, 0, err) == 0);
    const float *l = rbee_get_logits(c, -1);
    int finite = l != NULL;
    for (int v = 0; finite && v < G2_VOCAB; v++) finite = isfinite(l[v]);
    CHECK(finite);
    CHECK(rbee_eval(c, &toks[G2_CTX], 1, 0, err) == -1);
    CHECK_CONTAINS(err, "do not fit the context of 16");
    rbee_context_free(c);
    rbee_model_free(m);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/rbee_test_model_XXXXXX");
    if (!mkdtemp(dir)) { printf("mkdtemp failed\n"); return 1; }
    RUN(refuses_bad_hparams);
    RUN(refuses_bad_vocab);
    RUN(refuses_bad_tensors);
    RUN(cli_refuses_with_one_line);
    RUN(refuses_bad_paths);
    RUN(good_model_facts_and_eval);
    RUN(tied_output_uses_embedding);
    RUN(real_model_hparams);
    RUN(long_batch_equals_chunks);
    RUN(dump_hook_names_activations);
    RUN(gpt2_refuses_bad_tensors);
    RUN(gpt2_binds_every_tensor);
    RUN(gpt2_context_bounded_by_position_table);
    for (int d = LL_OK; d < LL_N_DEFECTS; d++) {
        char p[128];
        snprintf(p, sizeof p, "%s/m%d.gguf", dir, d);
        unlink(p);
    }
    for (int d = G2_OK; d < G2_N_DEFECTS; d++) {
        char p[128];
        snprintf(p, sizeof p, "%s/g%d.gguf", dir, d);
        unlink(p);
    }
    rmdir(dir);
    return test_summary();
}
