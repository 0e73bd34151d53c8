/* test.h - our test runner: no framework, a verdict in the exit code.
 *
 *   TEST(name) { CHECK(x == 3); CHECK_NEAR(a, b, 1e-6); CHECK_STR(s, "ok"); }
 *   int main(void) { RUN(name); ...; return test_summary(); }
 *
 * Each failed check prints file:line and the values; test_summary() prints
 * "N passed, N failed" (tests, not checks) and returns non-zero on failure.
 * tests/run_tests.sh adds the suites up.
 */
#ifndef RB_TEST_H
#define RB_TEST_H

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int test_n_passed, test_n_failed, test_cur_failed;

#define TEST(name) static void test_##name(void)

#define RUN(name) do { \
        test_cur_failed = 0; \
        test_##name(); \
        if (test_cur_failed) { test_n_failed++; printf("FAIL %s\n", #name); } \
        else { test_n_passed++; printf("ok   %s\n", #name); } \
        fflush(stdout); \
    } while (0)

#define TEST_FAIL_AT(...) do { \
        printf("  %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); \
        test_cur_failed = 1; \
    } while (0)

#define CHECK(cond) do { if (!(cond)) TEST_FAIL_AT("CHECK(%s) failed", #cond); } while (0)
#define CHECK_MSG(cond, ...) do { if (!(cond)) TEST_FAIL_AT(__VA_ARGS__); } while (0)
#define CHECK_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
        if (a_ != b_) TEST_FAIL_AT("%s == %s: %lld != %lld", #a, #b, a_, b_); } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); \
        if (!(fabs(a_ - b_) <= (tol))) TEST_FAIL_AT("%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, a_, b_, (double)(tol)); } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) TEST_FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)
/* substring match, for error messages */
#define CHECK_CONTAINS(hay, needle) do { const char *h_ = (hay), *n_ = (needle); \
        if (!h_ || !strstr(h_, n_)) TEST_FAIL_AT("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); } while (0)

/* Death tests: CHECK_ABORTS("needle", statements;) runs the statements in a
 * child process and passes when it dies by abort() (RB_CHECK) with stderr
 * containing needle. */
static inline pid_t test_fork_stderr(int *fd) {
    int p[2];
    fflush(stdout);
    fflush(stderr);
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        return 0;
    }
    close(p[1]);
    *fd = p[0];
    return pid;
}

static inline int test_wait_child(pid_t pid, int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)k;
    buf[n] = 0;
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

#define CHECK_ABORTS(needle, ...) do { \
        int fd_ = -1; \
        pid_t pid_ = test_fork_stderr(&fd_); \
        if (pid_ == 0) { __VA_ARGS__; _exit(0); } \
        char buf_[4096] = ""; \
        int st_ = pid_ > 0 ? test_wait_child(pid_, fd_, buf_, sizeof buf_) : 0; \
        CHECK_MSG(pid_ > 0 && WIFSIGNALED(st_) && WTERMSIG(st_) == SIGABRT, \
                  "%s: did not abort (wait status %d)", #__VA_ARGS__, st_); \
        CHECK_CONTAINS(buf_, needle); \
    } while (0)

static inline int test_summary(void) {
    printf("%d passed, %d failed\n", test_n_passed, test_n_failed);
    return test_n_failed ? 1 : 0;
}

/* Where ../shared lives (models, reference): $SHARED or "../shared". */
static inline const char *test_shared_dir(void) {
    const char *s = getenv("SHARED");
    return s && *s ? s : "../shared";
}

static inline const char *test_path(char *buf, size_t cap, const char *rel) {
    snprintf(buf, cap, "%s/%s", test_shared_dir(), rel);
    return buf;
}

#endif
