/* test_cli_args.c - what every `rbee` command shares and how `run` and
 * `logits` read their options: unknown flags named wherever they stand,
 * sampling values outside their meaning refused, the reference's escapes
 * in the prompt, -f - from stdin, the training-context warning, output
 * that cannot be written as an error, --help on every command, --version,
 * and RBEE_ISA refused by name. All in-process (tests/cli_capture.h). */
#include <fcntl.h>
#include <signal.h>

#include "test.h"
#include "cli_capture.h"
#include "../runtime/rbee.h"

static char model[512];

/* One "rbee: error: ..." line containing needle, exit status 1. */
#define EXPECT_ERROR(needle, ...) do { \
        const char *args_[] = { "rbee", __VA_ARGS__, NULL }; \
        CHECK_EQ_INT(capture_main(args_), 1); \
        CHECK_MSG(!strncmp(cap_err, "rbee: error: ", 13) && strchr(cap_err, '\n') == cap_err + strlen(cap_err) - 1, \
                  "not one error line: %s", cap_err); \
        CHECK_CONTAINS(cap_err, needle); \
    } while (0)

TEST(unknown_flags_anywhere) {
    EXPECT_ERROR("--bogus: unknown option", "run", "-m", model, "-p", "hi", "--bogus");
    EXPECT_ERROR("--bogus: unknown option", "run", "--bogus", "-m", model, "-p", "hi");
    EXPECT_ERROR("--bogus: unknown option", "logits", "-m", model, "-p", "hi", "--bogus");
    EXPECT_ERROR("--top: unknown option", "run", "-m", model, "-p", "hi", "--top"); /* a logits flag */
    EXPECT_ERROR("-n: missing value", "run", "-m", model, "-p", "hi", "-n");
    EXPECT_ERROR("unknown option '--bogus'", "synth", "--shape", "llama-mini", "--bogus");
    EXPECT_ERROR("unknown option '-x'", "quantize", "-x");
    EXPECT_ERROR("unknown option '--bogus'", "info", model, "--bogus");
    EXPECT_ERROR("isas: unknown option '--bogus'", "isas", "--bogus");
}

/* llama.cpp's meanings: repeat penalty 1 = off and divides by it (0 divides
 * by zero, below 0 rewards repeats); top-p in (0, 1], min-p in [0, 1],
 * temperature 0 = greedy; repeat-last-n -1 = the context. */
TEST(sampling_values_outside_their_meaning) {
    EXPECT_ERROR("--repeat-penalty: expected a number in (0, 100], got '0'", "run", "-m", model, "-p", "hi",
                 "--repeat-penalty", "0");
    EXPECT_ERROR("--repeat-penalty: expected a number in (0, 100], got '-1.5'", "run", "-m", model, "-p", "hi",
                 "--repeat-penalty", "-1.5");
    EXPECT_ERROR("--top-p: expected a number in (0, 1], got '0'", "run", "-m", model, "-p", "hi", "--top-p", "0");
    EXPECT_ERROR("--top-p: expected a number in (0, 1], got '1.5'", "run", "-m", model, "-p", "hi", "--top-p", "1.5");
    EXPECT_ERROR("--min-p: expected a number in [0, 1], got '1.01'", "run", "-m", model, "-p", "hi", "--min-p", "1.01");
    EXPECT_ERROR("--temp: expected a number in [0, 100], got '-0.5'", "run", "-m", model, "-p", "hi", "--temp", "-0.5");
    EXPECT_ERROR("--temp: expected a number in [0, 100], got 'nan'", "run", "-m", model, "-p", "hi", "--temp", "nan");
    EXPECT_ERROR("--top-k: expected an integer in 0..", "run", "-m", model, "-p", "hi", "--top-k", "-1");
    EXPECT_ERROR("--repeat-last-n: expected an integer in -1..", "run", "-m", model, "-p", "hi", "--repeat-last-n", "-2");
    /* the edges that mean something run */
    const char *ok[] = { "rbee", "run", "-m", model, "-p", "Once", "-n", "4", "--top-p", "1", "--min-p", "0",
                         "--repeat-penalty", "1.3", "--repeat-last-n", "-1", "--temp", "0", NULL };
    CHECK_EQ_INT(capture_main(ok), 0);
    CHECK(!strncmp(cap_out, "Once", 4) && strlen(cap_out) > 4);
}

/* The token ids `rbee logits` prints for a prompt given as args. */
static const char *tokens_of(const char **args) {
    static char line[512];
    line[0] = 0;
    if (capture_main(args) != 0) return "(failed)";
    const char *t = strstr(cap_out, "\ntokens: ");
    if (t) snprintf(line, sizeof line, "%.*s", (int)strcspn(t + 9, "\n"), t + 9);
    return line;
}

/* -p text goes through llama.cpp's string_process_escapes: \n \r \t \' \"
 * \\ and \xHH become characters, anything else keeps its backslash. */
TEST(prompt_escapes_as_the_reference) {
    char plain[512];
    const char *a[] = { "rbee", "logits", "-m", model, "-n", "0", "-p", "Once upon\na\ttime", NULL };
    snprintf(plain, sizeof plain, "%s", tokens_of(a));
    CHECK(plain[0] == '1');
    a[7] = "Once\\x20upon\\na\\ttime";
    CHECK_STR(tokens_of(a), plain);
    CHECK_CONTAINS(cap_out, "prompt: Once upon\na\ttime\n");
    a[7] = "\\x4fnce upon\\na\\ttime"; /* 'O' */
    CHECK_STR(tokens_of(a), plain);
    /* unknown escapes, a lone \x and a final backslash stay as they are */
    const char *b[] = { "rbee", "logits", "-m", model, "-n", "0", "-p", "a\\qb\\x4g\\", NULL };
    tokens_of(b);
    CHECK_CONTAINS(cap_out, "prompt: a\\qb\\x4g\\\n");
    const char *c[] = { "rbee", "logits", "-m", model, "-n", "0", "-p", "say \\\"hi\\\" \\\\ \\'", NULL };
    tokens_of(c);
    CHECK_CONTAINS(cap_out, "prompt: say \"hi\" \\ '\n");
    /* --no-escape keeps every backslash */
    const char *d[] = { "rbee", "logits", "-m", model, "-n", "0", "--no-escape", "-p", "a\\nb", NULL };
    tokens_of(d);
    CHECK_CONTAINS(cap_out, "prompt: a\\nb\n");
    const char *r[] = { "rbee", "run", "-m", model, "-n", "1", "--temp", "0", "-p", "Once\\nupon", NULL };
    CHECK_EQ_INT(capture_main(r), 0);
    CHECK(!strncmp(cap_out, "Once\nupon", 9));
}

/* -f - reads the prompt from stdin; one final newline is dropped, as the
 * reference does, and escapes apply as to -p. */
TEST(prompt_from_stdin) {
    const char *a[] = { "rbee", "run", "-m", model, "-f", "-", "-n", "16", "--temp", "0", NULL };
    CHECK_EQ_INT(capture_io(cap_main_fn, a, "Once upon a time\n"), 0);
    CHECK(!strncmp(cap_out, "Once upon a time, there was a little girl named Lily.", 53));
    CHECK_EQ_INT(capture_io(cap_main_fn, a, "\n"), 1);
    CHECK_CONTAINS(cap_err, "rbee: error: stdin: the prompt is empty");
    const char *f[] = { "rbee", "run", "-m", model, "-f", "-", "-n", "0", NULL };
    CHECK_EQ_INT(capture_io(cap_main_fn, f, "Once\\x20upon a time"), 0);
    CHECK(!strncmp(cap_out, "Once upon a time", 16));
}

/* More context than the model was trained on runs, with a warning. */
TEST(context_past_training_warns) {
    const char *a[] = { "rbee", "run", "-m", model, "-p", "Once", "-n", "2", "-c", "4096", NULL };
    CHECK_EQ_INT(capture_main(a), 0);
    CHECK_CONTAINS(cap_err, "rbee: warning: -c 4096 is more than the 2048 tokens the model was trained on");
    a[9] = "2048";
    CHECK_EQ_INT(capture_main(a), 0);
    CHECK(strstr(cap_err, "warning") == NULL);
}

/* Run args (the whole command) with stdout on fd; stderr captured. */
static int run_with_stdout(const char **args, int fd) {
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    char err_path[] = "/tmp/rbee_args_err_XXXXXX";
    int fe = mkstemp(err_path), saved_err = dup(2);
    dup2(fe, 2);
    int argc = 0;
    while (args[argc]) argc++;
    int rc = cli_main(argc, (char **)args, "test-version");
    fflush(stdout);
    clearerr(stdout);
    fflush(stderr);
    dup2(saved, 1);
    dup2(saved_err, 2);
    close(saved);
    close(saved_err);
    cap_read(fe, cap_err, sizeof cap_err);
    close(fe);
    unlink(err_path);
    return rc;
}

/* Output that never arrives is an error: one line, exit status 1, and
 * `run` stops generating instead of talking to nobody. */
TEST(stdout_write_errors) {
    void (*old)(int) = signal(SIGPIPE, SIG_IGN); /* a closed pipe gives EPIPE, not death */
    int p[2];
    CHECK(pipe(p) == 0);
    close(p[0]);
    const char *run[] = { "rbee", "run", "-m", model, "-p", "Once", "-n", "64", NULL };
    CHECK_EQ_INT(run_with_stdout(run, p[1]), 1);
    CHECK_STR(cap_err, "rbee: error: stdout: Broken pipe\n"); /* no stats: it stopped */
    const char *info[] = { "rbee", "info", model, NULL };
    CHECK_EQ_INT(run_with_stdout(info, p[1]), 1);
    CHECK_STR(cap_err, "rbee: error: stdout: Broken pipe\n");
    const char *version[] = { "rbee", "--version", NULL };
    CHECK_EQ_INT(run_with_stdout(version, p[1]), 1);
    close(p[1]);
    signal(SIGPIPE, old);
    int full = open("/dev/full", O_WRONLY);
    if (full >= 0) { /* a full disk, where the system has the device */
        const char *logits[] = { "rbee", "logits", "-m", model, "-p", "Once", NULL };
        CHECK_EQ_INT(run_with_stdout(logits, full), 1);
        CHECK_STR(cap_err, "rbee: error: stdout: No space left on device\n");
        close(full);
    }
}

TEST(help_on_every_command_and_version) {
    static const char *const cmds[] = { "run", "logits", "tokenize", "info", "quantize", "bench", "synth", "isas" };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: rbee %s", cmds[i]);
        for (int form = 0; form < 2; form++) {
            const char *a[] = { "rbee", cmds[i], form ? "-h" : "--help", NULL };
            CHECK_MSG(capture_main(a) == 0, "rbee %s %s", cmds[i], a[2]);
            CHECK_CONTAINS(cap_out, want);
            CHECK_STR(cap_err, "");
        }
    }
    const char *v[] = { "rbee", "--version", NULL };
    CHECK_EQ_INT(capture_main(v), 0);
    CHECK_STR(cap_out, "rbee test-version\n");
    const char *h[] = { "rbee", "--help", NULL };
    CHECK_EQ_INT(capture_main(h), 0);
    CHECK_CONTAINS(cap_out, "--version");
}

/* RBEE_ISA that is not a kernel path this machine runs: refused by name,
 * listing the valid names, by the command and by model loading. */
TEST(rbee_isa_refused_by_name) {
    const char *isas[] = { "rbee", "isas", NULL };
    setenv("RBEE_ISA", "avx513", 1);
    EXPECT_ERROR("RBEE_ISA=avx513: unknown ISA, expected scalar|avx2|avxvnni|avxvnni_evex|avx512|neon|neon_dotprod (this CPU runs: ", "isas");
    EXPECT_ERROR("RBEE_ISA=avx513", "run", "-m", model, "-p", "hi");
    char err[RBEE_ERR_MAX];
    rbee_model *m = NULL;
    CHECK(rbee_model_load(&m, model, err) == -1 && m == NULL);
    CHECK_CONTAINS(err, "RBEE_ISA=avx513: unknown ISA");
#if defined(__x86_64__)
    setenv("RBEE_ISA", "neon", 1);
#else
    setenv("RBEE_ISA", "avx2", 1);
#endif
    EXPECT_ERROR("this CPU or build lacks it", "info", model);
    setenv("RBEE_ISA", "scalar", 1);
    const char *info[] = { "rbee", "info", model, NULL };
    CHECK_EQ_INT(capture_main(info), 0);
    CHECK_CONTAINS(cap_out, "kernels:       scalar\n");
    setenv("RBEE_ISA", "", 1); /* empty: as if unset */
    CHECK_EQ_INT(capture_main(isas), 0);
    unsetenv("RBEE_ISA");
}

int main(void) {
    test_path(model, sizeof model, "models/stories260K.gguf");
    unsetenv("RBEE_ISA"); /* the suite picks the kernels; this test sets its own */
    RUN(unknown_flags_anywhere);
    RUN(sampling_values_outside_their_meaning);
    RUN(prompt_escapes_as_the_reference);
    RUN(prompt_from_stdin);
    RUN(context_past_training_warns);
    RUN(stdout_write_errors);
    RUN(help_on_every_command_and_version);
    RUN(rbee_isa_refused_by_name);
    return test_summary();
}
