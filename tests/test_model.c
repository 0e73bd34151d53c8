/* test_model.c - model loading: every kind of bad file is refused with a
 * message that names the problem; a good tiny model loads, binds, reports
 * its facts, evaluates, and respects the context limits. Files are built
 * with the gguf writer into a temp directory. */
#include <unistd.h>

#include "test.h"
#include "gpt2_build.h"
#include "../gguf/gguf.h"
#include "../quant/quant.h"
#include "../runtime/cli.h"
#include "../runtime/context.h"
#include "../runtime/model.h"
#include "../runtime/rbee.h"

/* tiny llama: n_embd 256 (so one IQ2_XXS block fits a row), 4 heads of 64,
 * 2 KV heads, ffn 64, 1 layer, vocab 3 specials + 256 bytes + 5 words */
enum { E = 256, HEADS = 4, KV = 2, HD = 64, FF = 64, VOCAB = 264 };

enum defect {
    OK, HEADS_NOT_DIVIDING, KV_NOT_DIVIDING, ROPE_TOO_BIG, ZERO_EMBD, NAN_EPS, MISSING_FFN_UP,
    BAD_SHAPE_Q, IQ2_FFN_UP, VOCAB_MISMATCH, UNKNOWN_ARCH, TIED, NAN_NORM, NAN_SCALE,
    ZERO_HEADS, ZERO_HEADS_KV, ZERO_LAYERS, ZERO_CTX, ZERO_FF, ZERO_EPS, EMBD_AS_STR, EPS_AS_U32,
    SCORES_AS_U8, SHORT_TYPES, EOS_OUT_OF_RANGE, BAD_SHAPE_NORM, BAD_SHAPE_DOWN, MISSING_OUTPUT_NORM,
    N_DEFECTS
};

static float frand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return ((float)(*s >> 8) / 16777216.0f - 0.5f) * 0.2f;
}

static void add_f32(struct gguf_writer *w, const char *name, int64_t n0, int64_t n1, uint32_t *seed, float fill) {
    int64_t n = n0 * n1;
    float *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = fill != 0.0f ? fill : frand(seed);
    int64_t ne[2] = { n0, n1 };
    gguf_writer_add_tensor(w, name, RB_TYPE_F32, n1 > 1 ? 2 : 1, ne, d, (uint64_t)n * 4, 0);
    free(d);
}

static void add_tokenizer(struct gguf_writer *w, int n_vocab, enum defect d) {
    char **toks = malloc((size_t)n_vocab * sizeof *toks);
    float *scores = malloc((size_t)n_vocab * sizeof *scores);
    int32_t *types = malloc((size_t)n_vocab * sizeof *types);
    const char *words[] = { "\xe2\x96\x81" "a", "\xe2\x96\x81" "b", "\xe2\x96\x81" "ab", "a", "b" };
    for (int i = 0; i < n_vocab; i++) {
        toks[i] = malloc(16);
        scores[i] = 0;
        types[i] = 1;
        if (i < 3) { snprintf(toks[i], 16, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>"); types[i] = i ? 3 : 2; }
        else if (i < 259) { snprintf(toks[i], 16, "<0x%02X>", i - 3); types[i] = 6; }
        else if (i < 264) { snprintf(toks[i], 16, "%s", words[i - 259]); scores[i] = -(float)(i - 259); }
        else snprintf(toks[i], 16, "x%d", i);
    }
    gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)n_vocab);
    if (d == SCORES_AS_U8) { /* token scores stored as bytes */
        uint8_t *bytes = calloc((size_t)n_vocab, 1);
        gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_UINT8, bytes, (uint64_t)n_vocab);
        free(bytes);
    } else {
        gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n_vocab);
    }
    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types,
                        (uint64_t)(d == SHORT_TYPES ? n_vocab - 1 : n_vocab));
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", d == EOS_OUT_OF_RANGE ? (uint32_t)n_vocab : 2);
    for (int i = 0; i < n_vocab; i++) free(toks[i]);
    free(toks); free(scores); free(types);
}

/* Writes the tiny model with one defect to path. */
static void write_model(const char *path, enum defect d) {
    struct gguf_writer *w = gguf_writer_new();
    uint32_t seed = 1;
    gguf_writer_add_str(w, "general.architecture", d == UNKNOWN_ARCH ? "mamba" : "llama");
    const char *a = d == UNKNOWN_ARCH ? "mamba" : "llama";
    char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s." s, a), k)
    gguf_writer_add_u32(w, KEY("context_length"), d == ZERO_CTX ? 0 : 64);
    if (d == EMBD_AS_STR)
        gguf_writer_add_str(w, KEY("embedding_length"), "256");
    else
        gguf_writer_add_u32(w, KEY("embedding_length"), d == ZERO_EMBD ? 0 : E);
    gguf_writer_add_u32(w, KEY("block_count"), d == ZERO_LAYERS ? 0 : 1);
    gguf_writer_add_u32(w, KEY("feed_forward_length"), d == ZERO_FF ? 0 : FF);
    gguf_writer_add_u32(w, KEY("attention.head_count"), d == HEADS_NOT_DIVIDING ? 5 : d == ZERO_HEADS ? 0 : HEADS);
    gguf_writer_add_u32(w, KEY("attention.head_count_kv"), d == KV_NOT_DIVIDING ? 3 : d == ZERO_HEADS_KV ? 0 : KV);
    gguf_writer_add_u32(w, KEY("rope.dimension_count"), d == ROPE_TOO_BIG ? HD + 2 : HD);
    if (d == EPS_AS_U32)
        gguf_writer_add_u32(w, KEY("attention.layer_norm_rms_epsilon"), 0);
    else
        gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), d == NAN_EPS ? NAN : d == ZERO_EPS ? 0.0f : 1e-5f);
#undef KEY
    int n_vocab = d == VOCAB_MISMATCH ? VOCAB + 8 : VOCAB;
    add_tokenizer(w, VOCAB, d);
    add_f32(w, "token_embd.weight", E, n_vocab, &seed, 0);
    if (d == BAD_SHAPE_NORM) /* [E, 1] written as a 2-D tensor */
        gguf_writer_add_tensor(w, "blk.0.attn_norm.weight", RB_TYPE_F32, 2, (const int64_t[]){ E / 2, 2 },
                               (float[E]){ 0 }, E * sizeof(float), 0);
    else
        add_f32(w, "blk.0.attn_norm.weight", E, 1, &seed, d == NAN_NORM ? NAN : 1.0f);
    add_f32(w, "blk.0.attn_q.weight", E, d == BAD_SHAPE_Q ? E / 2 : E, &seed, 0);
    add_f32(w, "blk.0.attn_k.weight", E, KV * HD, &seed, 0);
    add_f32(w, "blk.0.attn_v.weight", E, KV * HD, &seed, 0);
    add_f32(w, "blk.0.attn_output.weight", E, E, &seed, 0);
    add_f32(w, "blk.0.ffn_norm.weight", E, 1, &seed, 1.0f);
    if (d == NAN_SCALE) { /* Q8_0 gate with one NaN block scale */
        float *f = malloc(sizeof(float) * E * FF);
        for (int i = 0; i < E * FF; i++) f[i] = frand(&seed);
        size_t n = (size_t)rb_row_bytes(RB_TYPE_Q8_0, E) * FF;
        uint8_t *q = malloc(n);
        rb_traits(RB_TYPE_Q8_0)->from_float(f, q, (int64_t)E * FF);
        uint16_t nan_h = 0x7e00;
        memcpy(q + 5 * sizeof(block_q8_0), &nan_h, 2);
        int64_t ne[2] = { E, FF };
        gguf_writer_add_tensor(w, "blk.0.ffn_gate.weight", RB_TYPE_Q8_0, 2, ne, q, n, 0);
        free(f); free(q);
    } else {
        add_f32(w, "blk.0.ffn_gate.weight", E, FF, &seed, 0);
    }
    if (d == IQ2_FFN_UP) {
        size_t n = (size_t)FF * 66; /* one 66-byte IQ2_XXS block per row of 256 */
        uint8_t *z = calloc(n, 1);
        int64_t ne[2] = { E, FF };
        gguf_writer_add_tensor(w, "blk.0.ffn_up.weight", RB_TYPE_IQ2_XXS, 2, ne, z, n, 0);
        free(z);
    } else if (d != MISSING_FFN_UP) {
        add_f32(w, "blk.0.ffn_up.weight", E, FF, &seed, 0);
    }
    if (d == BAD_SHAPE_DOWN) /* transposed: [E, FF] instead of [FF, E] */
        add_f32(w, "blk.0.ffn_down.weight", E, FF, &seed, 0);
    else
        add_f32(w, "blk.0.ffn_down.weight", FF, E, &seed, 0);
    if (d != MISSING_OUTPUT_NORM) add_f32(w, "output_norm.weight", E, 1, &seed, 1.0f);
    if (d != TIED) add_f32(w, "output.weight", E, n_vocab, &seed, 0);
    char err[RB_ERR_MAX];
    if (gguf_writer_write_file(w, path, err)) printf("  cannot write %s: %s\n", path, err);
    gguf_writer_free(w);
}

static char dir[64];

static const char *tmp_model(enum defect d) {
    static char path[128];
    snprintf(path, sizeof path, "%s/m%d.gguf", dir, (int)d);
    write_model(path, d);
    return path;
}

/* Load a model with defect d; expect failure with exactly `want`. */
static void expect_refused(enum defect d, const char *want) {
    char err[RBEE_ERR_MAX] = "";
    rbee_model *m = NULL;
    int rc = rbee_model_load(&m, tmp_model(d), err);
    CHECK_MSG(rc == -1 && m == NULL, "defect %d loaded", (int)d);
    CHECK_STR(err, want);
    rbee_model_free(m);
}

/* Hyperparameters that are zero, NaN, of the wrong type or inconsistent. */
TEST(refuses_bad_hparams) {
    expect_refused(HEADS_NOT_DIVIDING, "head_count 5 does not divide embedding_length 256");
    expect_refused(KV_NOT_DIVIDING, "head_count_kv 3 does not divide head_count 4");
    expect_refused(ROPE_TOO_BIG, "rope dimension_count 66 must be even and at most the head dim 64");
    expect_refused(ZERO_EMBD, "hyperparameter 'llama.embedding_length' is 0");
    expect_refused(ZERO_HEADS, "hyperparameter 'llama.attention.head_count' is 0");
    expect_refused(ZERO_HEADS_KV, "hyperparameter head_count_kv = 0 is out of range 1..4096");
    expect_refused(ZERO_LAYERS, "hyperparameter block_count = 0 is out of range 1..4096");
    expect_refused(ZERO_CTX, "hyperparameter context_length = 0 is out of range 1..16777216");
    expect_refused(ZERO_FF, "hyperparameter feed_forward_length = 0 is out of range 1..4194304");
    expect_refused(NAN_EPS, "hyperparameter 'llama.attention.layer_norm_rms_epsilon' is not a finite number");
    expect_refused(ZERO_EPS, "norm epsilon 0 is out of range (0, 1)");
    expect_refused(EMBD_AS_STR, "llama.embedding_length: expected u32, got str");
    expect_refused(EPS_AS_U32, "llama.attention.layer_norm_rms_epsilon: expected f32, got u32");
}

/* Vocabulary arrays of the wrong element type or length, special ids out
 * of range: refused by the model load (through the tokenizer). */
TEST(refuses_bad_vocab) {
    expect_refused(SCORES_AS_U8, "tokenizer: tokenizer.ggml.scores: expected array of f32, got array of u8");
    expect_refused(SHORT_TYPES, "tokenizer: tokenizer.ggml.token_type: 263 types for 264 tokens");
    expect_refused(EOS_OUT_OF_RANGE,
                   "tokenizer: tokenizer.ggml.eos_token_id: token id 264 out of range (vocabulary has 264 tokens)");
    expect_refused(VOCAB_MISMATCH, "vocabulary has 264 tokens but token_embd.weight has 272 rows");
}

/* Missing or wrongly shaped tensors, types rbee cannot compute, NaN data. */
TEST(refuses_bad_tensors) {
    expect_refused(MISSING_FFN_UP, "missing tensor 'blk.0.ffn_up.weight'");
    expect_refused(MISSING_OUTPUT_NORM, "missing tensor 'output_norm.weight'");
    expect_refused(BAD_SHAPE_Q, "tensor 'blk.0.attn_q.weight' has shape [256, 128], expected [256, 256]");
    expect_refused(BAD_SHAPE_DOWN, "tensor 'blk.0.ffn_down.weight' has shape [256, 64], expected [64, 256]");
    expect_refused(BAD_SHAPE_NORM, "tensor 'blk.0.attn_norm.weight' has shape [128, 2], expected [256]");
    expect_refused(IQ2_FFN_UP, "tensor 'blk.0.ffn_up.weight' has type iq2_xxs, which rbee cannot compute");
    expect_refused(UNKNOWN_ARCH, "architecture 'mamba' is not supported");
    expect_refused(NAN_NORM, "tensor 'blk.0.attn_norm.weight' holds a NaN or infinity at 0");
    expect_refused(NAN_SCALE, "tensor 'blk.0.ffn_gate.weight' block 5 has a NaN or infinite scale");
}

/* `rbee run` on a refused file: the one line "rbee: error: FILE: reason"
 * on stderr and exit status 1. */
TEST(cli_refuses_with_one_line) {
    const char *path = tmp_model(ZERO_EMBD);
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
    if (rbee_model_load(&m, tmp_model(OK), err)) { TEST_FAIL_AT("%s", err); return; }
    struct rbee_model_info in;
    rbee_model_get_info(m, &in);
    CHECK_STR(in.arch, "llama");
    CHECK_STR(in.weight_type, "f32");
    int64_t per_layer = 2 * E + E * E * 2 + 2 * (E * KV * HD) + 3 * E * FF;
    int64_t params = 2 * (int64_t)E * VOCAB + per_layer + E;
    CHECK_EQ_INT(in.n_params, params);
    CHECK_EQ_INT(in.weight_bytes, params * 4);
    CHECK_EQ_INT(in.bytes_per_token, (params - (int64_t)E * VOCAB + E) * 4); /* one embedding row */
    CHECK_EQ_INT(in.n_heads_kv, KV);
    CHECK_EQ_INT(in.head_dim, HD);
    CHECK_EQ_INT(in.n_vocab, VOCAB);
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
    int32_t bad = VOCAB;
    CHECK(rbee_eval(c, &bad, 1, 0, err) == -1);
    CHECK_CONTAINS(err, "outside the vocabulary");
    CHECK_EQ_INT(rbee_pos(c), 0);

    /* batch of 4 with all logits == 4 single steps, per token, within float noise */
    CHECK(rbee_eval(c, toks, 4, 1, err) == 0);
    CHECK_EQ_INT(rbee_pos(c), 4);
    float batch[4][VOCAB];
    for (int i = 0; i < 4; i++) memcpy(batch[i], rbee_get_logits(c, i), sizeof batch[i]);
    CHECK(rbee_get_logits(c, 4) == NULL);
    rbee_reset(c);
    double max_diff = 0;
    for (int i = 0; i < 4; i++) {
        CHECK(rbee_eval(c, &toks[i], 1, 0, err) == 0);
        const float *l = rbee_get_logits(c, -1);
        for (int v = 0; v < VOCAB; v++) {
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
    for (int v = 0; v < VOCAB; v++) /* rewinding replays position 2 */
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
    if (rbee_model_load(&m, tmp_model(TIED), err)) { TEST_FAIL_AT("%s", err); return; }
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
        const struct gguf_tensor *t = gguf_get_tensor(&m->file, il ? "blk.1.attn_qkv.weight" : "blk.0.attn_qkv.weight");
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
    for (int d = OK; d < N_DEFECTS; d++) {
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
