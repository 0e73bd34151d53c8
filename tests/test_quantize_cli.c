/* test_quantize_cli.c - `rbee quantize` end to end.
 *
 *  - llama-mini-f16 quantized by us to q4_0, q8_0 and q4_k_m: every tensor
 *    gets the type llama.cpp's file of that type has (the mix), the file
 *    loads, generates (16 greedy steps, finite logits), and its logits are
 *    no farther from the F16 model's than those of llama.cpp's file (both
 *    run by rbee; RMS over the whole vocabulary at every prompt position).
 *  - The CLI: a progress bar on a terminal (a pseudo-terminal here) and
 *    none when stderr is a file, one note per fallback, a summary line;
 *    bad arguments, an unreadable input and OUT == IN give one
 *    "rbee: error:" line, exit status 1, and leave no file behind.
 *  - Atomic output: a write failing half way leaves the old OUT intact.
 */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "../gguf/gguf.h"
#include "../runtime/cli.h"
#include "../runtime/quantize.h"
#include "../runtime/rbee.h"

static char dir[64];

/* ------------------------------------------------------------- files load and generate */

#define PROMPT "Once upon a time there was a little dog who liked to play in the park"
#define STEPS 16

/* Logits of every prompt position (all n_vocab each) followed by STEPS
 * greedy steps; malloc'd, NULL on failure. *n_prompt: prompt positions. */
static float *run_model(const char *path, int *n_prompt, int *n_vocab) {
    char err[RBEE_ERR_MAX];
    rbee_model *m;
    if (rbee_model_load(&m, path, err)) { TEST_FAIL_AT("%s: %s", path, err); return NULL; }
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_threads = 2;
    cp.n_ctx = 128;
    rbee_context *c = NULL;
    int32_t ids[64];
    int64_t n = rbee_tokenize(m, PROMPT, strlen(PROMPT), 1, 1, ids, 64, err);
    float *logits = NULL;
    if (n <= 0 || n > 64 || rbee_context_new(&c, m, &cp, err) || rbee_eval(c, ids, (int)n, 1, err)) {
        TEST_FAIL_AT("%s: %s", path, err);
        goto done;
    }
    size_t nv = (size_t)rbee_n_vocab(c);
    *n_vocab = (int)nv;
    *n_prompt = (int)n;
    logits = malloc(((size_t)n + STEPS) * nv * sizeof *logits);
    memcpy(logits, rbee_get_logits(c, 0), (size_t)n * nv * sizeof *logits);
    for (size_t s = 0; s < STEPS; s++) {
        const float *last = logits + ((size_t)n + s - 1) * nv;
        int32_t best = 0;
        for (size_t v = 1; v < nv; v++)
            if (last[v] > last[best]) best = (int32_t)v;
        if (rbee_eval(c, &best, 1, 0, err)) {
            TEST_FAIL_AT("%s: step %zu: %s", path, s, err);
            free(logits);
            logits = NULL;
            goto done;
        }
        memcpy(logits + ((size_t)n + s) * nv, rbee_get_logits(c, -1), nv * sizeof *logits);
    }
done:
    rbee_context_free(c);
    rbee_model_free(m);
    return logits;
}

static double rms_diff(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

/* Every tensor of ours has the type of the same-named tensor of theirs. */
static void check_same_types(const char *ours_path, const char *theirs_path) {
    struct gguf_file a, b;
    char err[RB_ERR_MAX], name[256];
    if (rb_gguf_open(&a, ours_path, err)) { TEST_FAIL_AT("%s: %s", ours_path, err); return; }
    if (rb_gguf_open(&b, theirs_path, err)) { TEST_FAIL_AT("%s: %s", theirs_path, err); rb_gguf_close(&a); return; }
    CHECK_EQ_INT(a.n_tensors, b.n_tensors);
    int n_diff = 0;
    for (uint64_t i = 0; i < a.n_tensors; i++) {
        const struct gguf_tensor *t = &a.tensors[i];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        const struct gguf_tensor *u = rb_gguf_get_tensor(&b, name);
        if (!u || u->type != t->type) {
            n_diff++;
            TEST_FAIL_AT("%s: %s is %s, llama.cpp's %s", ours_path, name, rb_type_name(t->type),
                         u ? rb_type_name(u->type) : "(missing)");
        }
    }
    uint32_t ft = 0;
    CHECK(rb_gguf_get_u32(&a, "general.file_type", &ft, err) == 0);
    uint32_t ft_theirs = 1;
    CHECK(rb_gguf_get_u32(&b, "general.file_type", &ft_theirs, err) == 0 && ft == ft_theirs);
    CHECK_EQ_INT(n_diff, 0);
    rb_gguf_close(&a);
    rb_gguf_close(&b);
}

TEST(quantized_llama_mini_loads_and_generates) {
    const char *quick = getenv("RBEE_GOLDEN_QUICK"); /* set under qemu, where this takes minutes */
    if (quick && !strcmp(quick, "1")) { printf("  skipped (RBEE_GOLDEN_QUICK=1)\n"); return; }
    static const char *const types[] = { "q4_0", "q8_0", "q4_k_m" };
    char in[512], theirs[512], rel[128], out[128], err[RB_ERR_MAX];
    test_path(in, sizeof in, "models/llama-mini-f16.gguf");
    int n_prompt = 0, n_vocab = 0, np, nv;
    float *f16 = run_model(in, &n_prompt, &n_vocab);
    if (!f16) return;
    size_t n_prompt_logits = (size_t)n_prompt * (size_t)n_vocab;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct rb_quantize_opts opts = { .n_threads = 2 };
        CHECK(rb_ftype_from_name(types[i], &opts.ftype) == 0);
        snprintf(out, sizeof out, "%s/mini-%s.gguf", dir, types[i]);
        snprintf(rel, sizeof rel, "models/llama-mini-%s.gguf", types[i]);
        test_path(theirs, sizeof theirs, rel);
        if (rb_quantize_file(in, out, &opts, err)) { TEST_FAIL_AT("quantize %s: %s", types[i], err); continue; }
        check_same_types(out, theirs);
        float *a = run_model(out, &np, &nv);
        float *b = run_model(theirs, &np, &nv);
        if (a && b && np == n_prompt && nv == n_vocab) {
            int finite = 1;
            for (size_t k = 0; k < ((size_t)n_prompt + STEPS) * (size_t)n_vocab; k++) finite &= isfinite(a[k]) != 0;
            CHECK_MSG(finite, "%s: non-finite logits", types[i]);
            double ours = rms_diff(a, f16, n_prompt_logits), llama = rms_diff(b, f16, n_prompt_logits);
            printf("  %-7s prompt logits vs f16: rms %.4f, llama.cpp's file %.4f (ratio %.3f)\n", types[i], ours,
                   llama, ours / llama);
            CHECK_MSG(ours <= llama * 1.05, "%s: logits rms %.4f from f16, llama.cpp's file %.4f", types[i], ours,
                      llama);
        }
        free(a);
        free(b);
        unlink(out);
    }
    free(f16);
}

/* ------------------------------------------------------------- the CLI */

struct drain { int fd; char *buf; size_t cap, len; };

/* Reads the pty master until the slave side is closed (EIO). */
static void *drain_master(void *arg) {
    struct drain *d = arg;
    for (;;) {
        ssize_t n = read(d->fd, d->buf + d->len, d->cap - 1 - d->len);
        if (n <= 0) break;
        d->len += (size_t)n;
        if (d->len == d->cap - 1) d->len = 0; /* keep going; the tail is what we check */
    }
    d->buf[d->len] = 0;
    return NULL;
}

/* Runs `rbee quantize ARGS` with stderr on a pseudo-terminal (tty) or a
 * file; returns the exit status, stderr in out. */
static int quantize_cli(char **argv, int argc, int tty, char *out, size_t cap) {
    int fd, master = -1;
    char tmp[] = "/tmp/rbee_quantize_err_XXXXXX";
    if (tty) {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0 || grantpt(master) || unlockpt(master)) { TEST_FAIL_AT("no pty"); return -1; }
        fd = open(ptsname(master), O_RDWR | O_NOCTTY);
    } else {
        fd = mkstemp(tmp);
    }
    if (fd < 0) { TEST_FAIL_AT("cannot open stderr for the CLI"); return -1; }
    struct drain d = { master, out, cap, 0 };
    pthread_t th;
    if (tty) pthread_create(&th, NULL, drain_master, &d);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    int rc = cli_quantize(argc, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (tty) {
        close(fd);
        pthread_join(th, NULL);
        close(master);
    } else {
        lseek(fd, 0, SEEK_SET);
        ssize_t n = read(fd, out, cap - 1);
        out[n > 0 ? n : 0] = 0;
        close(fd);
        unlink(tmp);
    }
    return rc;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static int n_files(const char *path) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "exit $(ls -A %s | wc -l)", path);
    int rc = system(cmd);
    return rc >= 0 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(cli_progress_bar_and_notes) {
    static char out[1 << 16];
    char in[512], dst[128];
    test_path(in, sizeof in, "models/stories260K.gguf");
    snprintf(dst, sizeof dst, "%s/s-q4_k_m.gguf", dir);
    char *argv[] = { "quantize", in, dst, "q4_k_m", "-t", "2", NULL };

    CHECK_EQ_INT(quantize_cli(argv, 6, 1, out, sizeof out), 0);
    /* tty: the bar is redrawn in place and ends at 100%, then cleared */
    CHECK_CONTAINS(out, "\r\033[K[##############################] 100% ");
    CHECK(count(out, "\r\033[K[") >= 48); /* once per tensor, at least */
    CHECK_CONTAINS(out, "rbee: note: blk.0.ffn_down.weight: rows of 172 do not divide into q4_K blocks of 256: using f16");
    CHECK_CONTAINS(out, "rbee: wrote ");
    CHECK_CONTAINS(out, "(q4_k_m): 1.1 MiB -> 0.3 MiB in ");
    CHECK_CONTAINS(out, " s with 2 threads");

    /* not a tty: no bar, no escapes; the notes and the summary remain */
    CHECK_EQ_INT(quantize_cli(argv, 6, 0, out, sizeof out), 0);
    CHECK(strchr(out, '\033') == NULL && strchr(out, '\r') == NULL);
    /* one note per fallback: token_embd and 6 weights per layer have rows of
     * 64 (q4_K -> q5_0, q6_K -> q8_0), ffn_down rows of 172 (-> f16);
     * output.weight is q8_0 by the mix rule, not a fallback */
    CHECK_EQ_INT(count(out, "rbee: note: "), 1 + 5 * 7);
    CHECK_EQ_INT(count(out, "\n"), 1 + 5 * 7 + 1);
    CHECK_EQ_INT(n_files(dir), 1); /* the output only: no temp file left */
    struct gguf_file f;
    char err[RB_ERR_MAX];
    CHECK(rb_gguf_open(&f, dst, err) == 0);
    if (f.map) rb_gguf_close(&f);
    unlink(dst);
}

/* Expect exit status 1, exactly one "rbee: error: " line containing want,
 * and no file left in the directory. */
static void expect_cli_error(char **argv, int argc, const char *want) {
    static char out[1 << 14];
    CHECK_EQ_INT(quantize_cli(argv, argc, 0, out, sizeof out), 1);
    CHECK_EQ_INT(count(out, "rbee: error: "), 1);
    CHECK_CONTAINS(out, want);
    CHECK_EQ_INT(n_files(dir), 0);
}

TEST(cli_errors) {
    char in[512], dst[128], missing[128];
    test_path(in, sizeof in, "models/stories260K.gguf");
    snprintf(dst, sizeof dst, "%s/out.gguf", dir);
    snprintf(missing, sizeof missing, "%s/missing.gguf", dir);
    expect_cli_error((char *[]){ "quantize", in, dst, NULL }, 3,
                     "rbee: error: quantize: expected IN.gguf OUT.gguf TYPE, got 2 arguments\n");
    expect_cli_error((char *[]){ "quantize", in, dst, "q3_k_s", NULL }, 4,
                     "rbee: error: quantize: unknown type 'q3_k_s' (one of f16 bf16 q4_0");
    expect_cli_error((char *[]){ "quantize", in, dst, "q8_0", "-t", "0", NULL }, 6,
                     "rbee: error: -t 0: expected a thread count from 1 to 64\n");
    expect_cli_error((char *[]){ "quantize", missing, dst, "q8_0", NULL }, 4,
                     ": cannot open: No such file or directory\n");
    char v1[512];
    test_path(v1, sizeof v1, "models/stories260K-gguf-v1.gguf");
    expect_cli_error((char *[]){ "quantize", v1, dst, "q8_0", NULL }, 4, "GGUF version 1");

    /* OUT == IN: refused before anything is written, the input untouched */
    char copy[128], cmd[1200];
    snprintf(copy, sizeof copy, "%s/in.gguf", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", in, copy);
    CHECK_EQ_INT(system(cmd), 0);
    static char out[1 << 14];
    CHECK_EQ_INT(quantize_cli((char *[]){ "quantize", copy, copy, "q8_0", NULL }, 4, 0, out, sizeof out), 1);
    char want[256];
    snprintf(want, sizeof want, "rbee: error: quantize: %s: is the input file; refusing to overwrite it\n", copy);
    CHECK_STR(out, want);
    struct stat a, b;
    CHECK(stat(in, &a) == 0 && stat(copy, &b) == 0 && a.st_size == b.st_size);
    CHECK_EQ_INT(n_files(dir), 1);
    unlink(copy);
}

/* A write that fails half way (here: the file size limit) leaves neither a
 * partial OUT nor a temp file, and an OUT that was there stays as it was. */
TEST(failed_write_keeps_old_output) {
    char in[512], dst[128], err[RB_ERR_MAX] = "";
    test_path(in, sizeof in, "models/stories260K.gguf");
    snprintf(dst, sizeof dst, "%s/keep.gguf", dir);
    FILE *fp = fopen(dst, "wb");
    if (!fp) { TEST_FAIL_AT("cannot create %s", dst); return; }
    fputs("the previous model", fp);
    fclose(fp);
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    struct rlimit small = { 200000, old.rlim_max };
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of a signal */
    setrlimit(RLIMIT_FSIZE, &small);
    struct rb_quantize_opts opts = { .ftype = RB_FTYPE_F16, .n_threads = 2 }; /* ~600 KB */
    int rc = rb_quantize_file(in, dst, &opts, err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);
    CHECK_EQ_INT(rc, -1);
    CHECK_CONTAINS(err, "write failed: File too large");
    char back[64] = "";
    fp = fopen(dst, "rb");
    if (fp) {
        size_t n = fread(back, 1, sizeof back - 1, fp);
        back[n] = 0;
        fclose(fp);
    }
    CHECK_STR(back, "the previous model");
    CHECK_EQ_INT(n_files(dir), 1);
    unlink(dst);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/rbee_test_quantize_XXXXXX");
    if (!mkdtemp(dir)) { printf("mkdtemp failed\n"); return 1; }
    RUN(quantized_llama_mini_loads_and_generates);
    RUN(cli_progress_bar_and_notes);
    RUN(cli_errors);
    RUN(failed_write_keeps_old_output);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("cannot remove %s\n", dir);
    return test_summary();
}
