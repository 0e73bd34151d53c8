/* test_cli.c - `rbee run / logits / tokenize / info` called in-process with
 * stdout and stderr captured: bad input gives one "rbee: error:" line and
 * exit status 1, never a crash; good input gives the documented output.
 * Also the KV cache options of every command that runs a model and the
 * memory report of `rbee info -c N --kv-type T`. */
#include <fcntl.h>
#include <unistd.h>

#include "gpt2_build.h"
#include "test.h"
#include "cli_capture.h"
#include "../runtime/cli.h"
#include "../runtime/rbee.h"

static char model[512];

/* The command function for argv[0]. */
static int (*command(const char *name))(int, char **) {
    if (!strcmp(name, "run")) return cli_run;
    if (!strcmp(name, "logits")) return cli_logits;
    if (!strcmp(name, "info")) return cli_info;
    return cli_tokenize;
}

#define EXPECT_ERROR(needle, ...) do { \
        const char *args_[] = { __VA_ARGS__, NULL }; \
        int rc_ = capture(command(args_[0]), args_); \
        CHECK_EQ_INT(rc_, 1); \
        CHECK_CONTAINS(cap_err, "rbee: error: "); \
        CHECK_CONTAINS(cap_err, needle); \
    } while (0)

TEST(bad_input_is_one_error_line) {
    EXPECT_ERROR("a model file is required", "run", "-p", "hi");
    EXPECT_ERROR("-t: expected an integer in 1..1024, got '0'", "run", "-m", model, "-p", "hi", "-t", "0");
    EXPECT_ERROR("--bogus: unknown option", "run", "-m", model, "-p", "hi", "--bogus", "1");
    EXPECT_ERROR("no such file", "run", "-m", "/nonexistent.gguf", "-p", "hi");
    EXPECT_ERROR("is a directory", "run", "-m", "/tmp", "-p", "hi");
    EXPECT_ERROR("the prompt is empty", "run", "-m", model, "-p", "");
    EXPECT_ERROR("longer than the context of 4", "run", "-m", model, "-p", "Once upon a time there was", "-c", "4");
    EXPECT_ERROR("-n: missing value", "run", "-m", model, "-p", "hi", "-n");
    EXPECT_ERROR("--temp: expected a number", "run", "-m", model, "-p", "hi", "--temp", "abc");
    EXPECT_ERROR("not one of f32, f16, q8_0, q4_0", "run", "-m", model, "-p", "hi", "--kv-type", "q5_1");
    EXPECT_ERROR("do not fit the context", "logits", "-m", model, "-p", "Once upon a time", "-n", "30", "-c", "16");
    EXPECT_ERROR("TEXT is required", "tokenize", "-m", model);
}

TEST(help_exits_zero) {
    const char *a[] = { "run", "--help", NULL };
    CHECK_EQ_INT(capture(cli_run, a), 0);
    CHECK_CONTAINS(cap_out, "--repeat-penalty");
    const char *b[] = { "logits", "-h", NULL };
    CHECK_EQ_INT(capture(cli_logits, b), 0);
    CHECK_CONTAINS(cap_out, "usage: rbee logits");
}

TEST(generation_stops_at_context_end) {
    const char *a[] = { "run", "-m", model, "-p", "Once", "-c", "16", "-n", "100", NULL };
    CHECK_EQ_INT(capture(cli_run, a), 0);
    CHECK_CONTAINS(cap_err, "context of 16 tokens is full");
    CHECK_CONTAINS(cap_err, "generation:    15 tokens");
    CHECK_CONTAINS(cap_err, "peak RSS:");
    /* the same with quantized caches (head_dim 8: one padded block per row),
     * a prompt of 7 tokens filling the context, and -n -1 (until full):
     * one token is sampled from the last logits, printed, and never stored */
    const char *b[] = { "run", "-m", model, "-p", "Once upon a time there was", "-c", "7", "-n", "-1",
                        "-ctk", "q4_0", "-ctv", "q8_0", "--temp", "0", NULL };
    CHECK_EQ_INT(capture(cli_run, b), 0);
    CHECK_CONTAINS(cap_err, "context of 7 tokens is full");
    CHECK_CONTAINS(cap_err, "generation:     1 tokens");
    CHECK_CONTAINS(cap_out, "Once upon a time there was");
    CHECK(strlen(cap_out) > strlen("Once upon a time there was")); /* the generated token is kept */
}

/* --kv-type, -ctk and -ctv reach the cache of `run` and `logits`: the
 * logits move (a little) with the cache type, and stay the reference's
 * top tokens; a bad type is refused before anything runs. */
TEST(kv_type_flags_reach_the_cache) {
    static char base[sizeof cap_out];
    const char *a[] = { "logits", "-m", model, "-p", "Once upon a time", "-n", "4", NULL, NULL, NULL, NULL, NULL };
    CHECK_EQ_INT(capture(cli_logits, a), 0);
    snprintf(base, sizeof base, "%s", cap_out);
    CHECK_CONTAINS(base, "\ngreedy: 432 383 286 ");
    const char *types[][4] = { { "--kv-type", "f16", NULL, NULL }, { "--kv-type", "q8_0", NULL, NULL },
                               { "-ctk", "q4_0", NULL, NULL }, { "-ctv", "q4_0", NULL, NULL },
                               { "-ctk", "q8_0", "-ctv", "f32" }, { "--cache-type-k", "f32", "--cache-type-v", "f32" } };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        for (int j = 0; j < 4; j++) a[7 + j] = types[i][j];
        CHECK_EQ_INT(capture(cli_logits, a), 0);
        CHECK_CONTAINS(cap_out, "\ngreedy: 432 383 286 ");
        if (i == 0) CHECK_STR(cap_out, base); /* f16 is the default */
        else CHECK_MSG(strcmp(cap_out, base) != 0, "%s %s %s %s: same logits as the F16 cache", types[i][0],
                       types[i][1], types[i][2] ? types[i][2] : "", types[i][3] ? types[i][3] : "");
    }
    EXPECT_ERROR("not one of f32, f16, q8_0, q4_0", "logits", "-m", model, "-p", "hi", "-ctv", "q4_1");
    EXPECT_ERROR("not one of f32, f16, q8_0, q4_0", "run", "-m", model, "-p", "hi", "-ctk", "bf16");
    EXPECT_ERROR("-ctk: missing value", "run", "-m", model, "-p", "hi", "-ctk");
    EXPECT_ERROR("-ctv: expected f32, f16, q8_0 or q4_0", "info", model, "-ctv", "q5_0");
    EXPECT_ERROR("--kv-type: expected f32, f16, q8_0 or q4_0", "info", model, "--kv-type", "x");
    EXPECT_ERROR("-t: expected a thread count", "info", model, "-t", "0");
}

/* Value of "key": N in a JSON text, or -1. */
static double json_number(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1.0;
}

/* `rbee info MODEL -c N --kv-type T` reports the KV cache bytes and the
 * memory of a run: the numbers a context with those settings allocates,
 * and the budget, q8_0 <= 0.55 x and q4_0 <= 0.30 x the F16 bytes,
 * holds on the reported sizes (head_dim 32 here; 64 and 128 in
 * test_attention's kv_bytes_exact). */
TEST(info_reports_kv_and_run_memory) {
    char path[512], err[RBEE_ERR_MAX];
    test_path(path, sizeof path, "models/llama-mini-q4_0.gguf");
    static const char *const types[] = { "f16", "q8_0", "q4_0", "f32" };
    /* 4 layers x 512 tokens x 2 KV heads x (K + V) rows of 32 values */
    static const double row_bytes[] = { 64, 34, 18, 128 };
    double kv[4] = { 0 };
    rbee_model *m = NULL;
    CHECK(rbee_model_load(&m, path, err) == 0);
    for (int i = 0; i < 4; i++) {
        const char *a[] = { "info", path, "--json", "-c", "512", "-t", "3", "--kv-type", types[i], NULL };
        CHECK_EQ_INT(capture(cli_info, a), 0);
        const char *cache = strstr(cap_out, "\"kv_cache\"");
        CHECK(cache != NULL);
        if (!cache) continue;
        kv[i] = json_number(cache, "bytes");
        CHECK_NEAR(kv[i], 4.0 * 512 * 2 * 2 * row_bytes[i], 0);
        CHECK_NEAR(json_number(cache, "n_ctx"), 512, 0);
        double scratch = json_number(cap_out, "scratch_bytes"), size = json_number(cap_out, "size");
        CHECK_NEAR(json_number(cap_out, "memory_bytes"), size + kv[i] + scratch, 0);
        /* the same numbers as a context made with these settings */
        struct rbee_context_params cp = rbee_context_default_params();
        cp.n_ctx = 512;
        cp.n_threads = 3;
        cp.type_k = cp.type_v = types[i];
        rbee_context *c = NULL;
        if (m && rbee_context_new(&c, m, &cp, err) == 0) {
            CHECK_NEAR(kv[i], (double)rbee_kv_bytes(c), 0);
            CHECK_NEAR(scratch, (double)rbee_scratch_bytes(c), 0);
            rbee_context_free(c);
        } else {
            TEST_FAIL_AT("context: %s", err);
        }
    }
    CHECK_MSG(kv[1] <= 0.55 * kv[0], "q8_0 cache %.0f bytes > 0.55 x f16 %.0f", kv[1], kv[0]);
    CHECK_MSG(kv[2] <= 0.30 * kv[0], "q4_0 cache %.0f bytes > 0.30 x f16 %.0f", kv[2], kv[0]);
    rbee_model_free(m);

    /* text: K and V types apart, and the total */
    const char *t[] = { "info", path, "-c", "100", "-t", "2", "-ctk", "q8_0", "-ctv", "q4_0", NULL };
    CHECK_EQ_INT(capture(cli_info, t), 0);
    CHECK_CONTAINS(cap_out, "kv cache:      41600 bytes (0.0 MiB; K q8_0, V q4_0, 100 tokens)"); /* 4*100*2*(34+18) */
    CHECK_CONTAINS(cap_out, "= file + kv cache + scratch ");
    CHECK_CONTAINS(cap_out, "(2 threads)");
    /* default context as `rbee run`: the model's 512 (at most 4096) */
    const char *d[] = { "info", path, NULL };
    CHECK_EQ_INT(capture(cli_info, d), 0);
    CHECK_CONTAINS(cap_out, "kv cache:      524288 bytes (0.5 MiB; f16, 512 tokens)");
    /* stories260K's head_dim 8 pads a quantized row to a 32-value block:
     * there a Q8_0 cache is larger than F16 (34 bytes a row against 16) */
    const char *s[] = { "info", model, "-c", "64", "--kv-type", "q8_0", NULL };
    CHECK_EQ_INT(capture(cli_info, s), 0);
    CHECK_CONTAINS(cap_out, "kv cache:      87040 bytes"); /* 5 layers x 64 x 4 heads x 2 x 34 */
}

TEST(greedy_story_is_reference_text) {
    const char *a[] = { "run", "-m", model, "-p", "Once upon a time", "-n", "16", "--temp", "0", NULL };
    CHECK_EQ_INT(capture(cli_run, a), 0);
    /* the reference's greedy continuation of this prompt, as text */
    CHECK_CONTAINS(cap_out, "Once upon a time, there was a little girl named Lily.");
}

TEST(logits_and_tokenize_format) {
    const char *a[] = { "logits", "-m", model, "-p", "Once upon a time", "-n", "3", "--top", "2", NULL };
    CHECK_EQ_INT(capture(cli_logits, a), 0);
    CHECK(!strncmp(cap_out, "prompt: Once upon a time\ntokens: 1 403 407 261 378\ntop 0: 403:17.02", 66));
    CHECK_CONTAINS(cap_out, "\ngtop 2: ");
    CHECK_CONTAINS(cap_out, "\ngreedy: 432 383 286\n");
    const char *t[] = { "tokenize", "-m", model, "Once upon a time", NULL };
    CHECK_EQ_INT(capture(cli_tokenize, t), 0);
    CHECK_STR(cap_out, "1 403 407 261 378\n");
    const char *t2[] = { "tokenize", "-m", model, "--no-bos", "Once upon a time", NULL };
    CHECK_EQ_INT(capture(cli_tokenize, t2), 0);
    CHECK_STR(cap_out, "403 407 261 378\n");
}

TEST(seed_reproduces_and_file_prompt) {
    static char first[sizeof cap_out];
    const char *a[] = { "run", "-m", model, "-p", "Once upon a time", "-n", "40", "--temp", "1.0",
                        "--seed", "5", NULL };
    CHECK_EQ_INT(capture(cli_run, a), 0);
    snprintf(first, sizeof first, "%s", cap_out);
    CHECK_EQ_INT(capture(cli_run, a), 0);
    CHECK_STR(cap_out, first);
    a[10] = "6";
    CHECK_EQ_INT(capture(cli_run, a), 0);
    CHECK(strcmp(cap_out, first) != 0);

    char path[] = "/tmp/rbee_cli_prompt_XXXXXX";
    int fd = mkstemp(path);
    CHECK(write(fd, "Once upon a time", 16) == 16);
    close(fd);
    const char *f[] = { "run", "-m", model, "-f", path, "-n", "16", "--temp", "0", NULL };
    CHECK_EQ_INT(capture(cli_run, f), 0);
    CHECK_CONTAINS(cap_out, "Once upon a time, there was a little girl named Lily.");
    unlink(path);
    EXPECT_ERROR("No such file", "run", "-m", model, "-f", "/nonexistent/prompt.txt");
}

/* gpt2-mini: prompt ids and greedy ids as in reference/gpt2-mini-f16.ref,
 * the greedy ids as text, and a context past the position table refused. */
TEST(gpt2_run_and_logits) {
    char gpt2[512];
    test_path(gpt2, sizeof gpt2, "models/gpt2-mini-f16.gguf");
    const char *a[] = { "logits", "-m", gpt2, "-p", "Once upon a time", "-n", "4", "--top", "2", NULL };
    CHECK_EQ_INT(capture(cli_logits, a), 0);
    CHECK(!strncmp(cap_out, "prompt: Once upon a time\ntokens: 7454 2402 257 640\ntop 0: 30729:3.06", 68));
    CHECK_CONTAINS(cap_out, "\ngreedy: 5234 14124 6889 9545\n");
    const char *r[] = { "run", "-m", gpt2, "-p", "Once upon a time", "-n", "4", "--temp", "0", NULL };
    CHECK_EQ_INT(capture(cli_run, r), 0);
    CHECK_STR(cap_out, "Once upon a time Atlizards Makeieties"); /* 5234 14124 6889 9545 */
    EXPECT_ERROR("context size 300 is more than the 256 positions the model has learned",
                 "run", "-m", gpt2, "-p", "hi", "-c", "300");
}

/* A model whose every greedy step is <|eot_id|>, a token that ends the turn
 * only by its text (EOS is another token): run must stop before it. */
TEST(run_stops_at_end_of_turn) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/rbee_cli_eot_%d.gguf", (int)getpid());
    if (g2_write_model(path, G2_OK, 1)) {
        CHECK(0);
        return;
    }
    const char *r[] = { "run", "-m", path, "-p", "the", "-n", "5", "--temp", "0", NULL };
    CHECK_EQ_INT(capture(cli_run, r), 0);
    CHECK_CONTAINS(cap_err, "generation:     0 tokens");
    CHECK_STR(cap_out, "the");
    /* the greedy token is 259 = <|eot_id|>, and the prompt's text of it parses as it */
    const char *l[] = { "logits", "-m", path, "-p", "the<|eot_id|>", "-n", "2", "--top", "1", NULL };
    CHECK_EQ_INT(capture(cli_logits, l), 0);
    CHECK_CONTAINS(cap_out, "tokens: 116 256 259\n");
    CHECK_CONTAINS(cap_out, "greedy: 259 259\n");
    const char *t[] = { "tokenize", "-m", path, "--no-parse-special", "the<|eot_id|>", NULL };
    CHECK_EQ_INT(capture(cli_tokenize, t), 0);
    CHECK(strstr(cap_out, "259") == NULL);
    unlink(path);
}

TEST(vocab_only_files) {
    char l3[512], qw[512], l3m[512];
    test_path(l3, sizeof l3, "reference/tokenizer/ggml-vocab-llama-bpe.gguf");
    test_path(qw, sizeof qw, "reference/tokenizer/ggml-vocab-qwen2.gguf");
    test_path(l3m, sizeof l3m, "models/llama3-mini-q8_0.gguf");
    const char *t1[] = { "tokenize", "-m", l3, "Hello<|eot_id|>", NULL };
    CHECK_EQ_INT(capture(cli_tokenize, t1), 0);
    CHECK_STR(cap_out, "128000 9906 128009\n");
    const char *t2[] = { "tokenize", "-m", l3, "--no-parse-special", "Hello<|eot_id|>", NULL };
    CHECK_EQ_INT(capture(cli_tokenize, t2), 0);
    CHECK_STR(cap_out, "128000 9906 27 91 68 354 851 91 29\n");
    const char *t3[] = { "tokenize", "-m", qw, "--no-bos", "<|im_start|>user", NULL };
    CHECK_EQ_INT(capture(cli_tokenize, t3), 0);
    CHECK_STR(cap_out, "151644 872\n");

    const char *i1[] = { "info", qw, NULL };
    CHECK_EQ_INT(capture(cli_info, i1), 0);
    CHECK_CONTAINS(cap_out, "vocabulary only");
    CHECK_CONTAINS(cap_out, "pre-tokenizer qwen2");
    CHECK_CONTAINS(cap_out, "end of turn:   151643 <|endoftext|>, 151645 <|im_end|>, 151662 <|fim_pad|>, "
                            "151663 <|repo_name|>, 151664 <|file_sep|>\n");
    CHECK(strstr(cap_out, "kv cache:") == NULL && strstr(cap_out, "memory:") == NULL);
    const char *i2[] = { "info", "--json", l3, NULL };
    CHECK_EQ_INT(capture(cli_info, i2), 0);
    CHECK_CONTAINS(cap_out, "\"pre\": \"llama-bpe\", \"eog\": [128001, 128009]}, \"vocab_only\": true");
    const char *i3[] = { "info", l3m, NULL };
    CHECK_EQ_INT(capture(cli_info, i3), 0);
    CHECK_CONTAINS(cap_out, "end of turn:   128001 <|end_of_text|>, 128009 <|eot_id|>\n");
    CHECK(strstr(cap_out, "vocabulary only") == NULL);

    EXPECT_ERROR("vocabulary only", "run", "-m", l3, "-p", "hi");
    EXPECT_ERROR("vocabulary only", "logits", "-m", qw, "-p", "hi");
}

int main(void) {
    test_path(model, sizeof model, "models/stories260K.gguf");
    RUN(bad_input_is_one_error_line);
    RUN(help_exits_zero);
    RUN(generation_stops_at_context_end);
    RUN(kv_type_flags_reach_the_cache);
    RUN(info_reports_kv_and_run_memory);
    RUN(greedy_story_is_reference_text);
    RUN(logits_and_tokenize_format);
    RUN(seed_reproduces_and_file_prompt);
    RUN(gpt2_run_and_logits);
    RUN(run_stops_at_end_of_turn);
    RUN(vocab_only_files);
    return test_summary();
}
