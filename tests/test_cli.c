/* test_cli.c - `rbee run / logits / tokenize` called in-process with
 * stdout and stderr captured: bad input gives one "rbee: error:" line and
 * exit status 1, never a crash; good input gives the documented output. */
#include <fcntl.h>
#include <unistd.h>

#include "test.h"
#include "../runtime/cli.h"

static char out_buf[1 << 16], err_buf[1 << 16];

/* Run fn with argv (NULL-terminated) and capture both streams. */
static int capture(int (*fn)(int, char **), const char **args) {
    char **argv = (char **)args;
    int argc = 0;
    while (argv[argc]) argc++;
    char out_path[] = "/tmp/rbee_cli_out_XXXXXX", err_path[] = "/tmp/rbee_cli_err_XXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    fflush(stdout); fflush(stderr);
    int save_out = dup(1), save_err = dup(2);
    dup2(fo, 1); dup2(fe, 2);
    int rc = fn(argc, argv);
    fflush(stdout); fflush(stderr);
    dup2(save_out, 1); dup2(save_err, 2);
    close(save_out); close(save_err);
    const int fds[2] = { fo, fe };
    char *bufs[2] = { out_buf, err_buf };
    for (int i = 0; i < 2; i++) {
        lseek(fds[i], 0, SEEK_SET);
        ssize_t n = read(fds[i], bufs[i], sizeof out_buf - 1);
        bufs[i][n > 0 ? n : 0] = 0;
        close(fds[i]);
    }
    unlink(out_path); unlink(err_path);
    return rc;
}

static char model[512];

#define EXPECT_ERROR(needle, ...) do { \
        const char *args_[] = { __VA_ARGS__, NULL }; \
        int rc_ = capture(args_[0][0] == 'r' ? cli_run : args_[0][0] == 'l' ? cli_logits : cli_tokenize, args_); \
        CHECK_EQ_INT(rc_, 1); \
        CHECK_CONTAINS(err_buf, "rbee: error: "); \
        CHECK_CONTAINS(err_buf, needle); \
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
    CHECK_CONTAINS(out_buf, "--repeat-penalty");
    const char *b[] = { "logits", "-h", NULL };
    CHECK_EQ_INT(capture(cli_logits, b), 0);
    CHECK_CONTAINS(out_buf, "usage: rbee logits");
}

TEST(generation_stops_at_context_end) {
    const char *a[] = { "run", "-m", model, "-p", "Once", "-c", "16", "-n", "100", NULL };
    CHECK_EQ_INT(capture(cli_run, a), 0);
    CHECK_CONTAINS(err_buf, "context of 16 tokens is full");
    CHECK_CONTAINS(err_buf, "generation:    15 tokens");
    CHECK_CONTAINS(err_buf, "peak RSS:");
}

TEST(greedy_story_is_reference_text) {
    const char *a[] = { "run", "-m", model, "-p", "Once upon a time", "-n", "16", "--temp", "0", NULL };
    CHECK_EQ_INT(capture(cli_run, a), 0);
    /* the reference's greedy continuation of this prompt, as text */
    CHECK_CONTAINS(out_buf, "Once upon a time, there was a little girl named Lily.");
}

TEST(logits_and_tokenize_format) {
    const char *a[] = { "logits", "-m", model, "-p", "Once upon a time", "-n", "3", "--top", "2", NULL };
    CHECK_EQ_INT(capture(cli_logits, a), 0);
    CHECK(!strncmp(out_buf, "prompt: Once upon a time\ntokens: 1 403 407 261 378\ntop 0: 403:17.02", 66));
    CHECK_CONTAINS(out_buf, "\ngtop 2: ");
    CHECK_CONTAINS(out_buf, "\ngreedy: 432 383 286\n");
    const char *t[] = { "tokenize", "-m", model, "Once upon a time", NULL };
    CHECK_EQ_INT(capture(cli_tokenize, t), 0);
    CHECK_STR(out_buf, "1 403 407 261 378\n");
    const char *t2[] = { "tokenize", "-m", model, "--no-bos", "Once upon a time", NULL };
    CHECK_EQ_INT(capture(cli_tokenize, t2), 0);
    CHECK_STR(out_buf, "403 407 261 378\n");
}

TEST(seed_reproduces_and_file_prompt) {
    static char first[1 << 16];
    const char *a[] = { "run", "-m", model, "-p", "Once upon a time", "-n", "40", "--temp", "1.0",
                        "--seed", "5", NULL };
    CHECK_EQ_INT(capture(cli_run, a), 0);
    snprintf(first, sizeof first, "%s", out_buf);
    CHECK_EQ_INT(capture(cli_run, a), 0);
    CHECK_STR(out_buf, first);
    a[10] = "6";
    CHECK_EQ_INT(capture(cli_run, a), 0);
    CHECK(strcmp(out_buf, first) != 0);

    char path[] = "/tmp/rbee_cli_prompt_XXXXXX";
    int fd = mkstemp(path);
    CHECK(write(fd, "Once upon a time", 16) == 16);
    close(fd);
    const char *f[] = { "run", "-m", model, "-f", path, "-n", "16", "--temp", "0", NULL };
    CHECK_EQ_INT(capture(cli_run, f), 0);
    CHECK_CONTAINS(out_buf, "Once upon a time, there was a little girl named Lily.");
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
    CHECK(!strncmp(out_buf, "prompt: Once upon a time\ntokens: 7454 2402 257 640\ntop 0: 30729:3.06", 68));
    CHECK_CONTAINS(out_buf, "\ngreedy: 5234 14124 6889 9545\n");
    const char *r[] = { "run", "-m", gpt2, "-p", "Once upon a time", "-n", "4", "--temp", "0", NULL };
    CHECK_EQ_INT(capture(cli_run, r), 0);
    CHECK_STR(out_buf, "Once upon a time Atlizards Makeieties"); /* 5234 14124 6889 9545 */
    EXPECT_ERROR("context size 300 is more than the 256 positions the model has learned",
                 "run", "-m", gpt2, "-p", "hi", "-c", "300");
}

int main(void) {
    test_path(model, sizeof model, "models/stories260K.gguf");
    RUN(bad_input_is_one_error_line);
    RUN(help_exits_zero);
    RUN(generation_stops_at_context_end);
    RUN(greedy_story_is_reference_text);
    RUN(logits_and_tokenize_format);
    RUN(seed_reproduces_and_file_prompt);
    RUN(gpt2_run_and_logits);
    return test_summary();
}
