/* cli_capture.h - run a command function in-process (cli_run, cli_info,
 * ...; or the whole command through capture_main) with stdout and stderr
 * captured into cap_out and cap_err, and stdin from a string when given.
 * Header-only, like test.h. */
#ifndef RB_TEST_CLI_CAPTURE_H
#define RB_TEST_CLI_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runtime/cli.h"

static char cap_out[1 << 17], cap_err[1 << 17];

static inline void cap_read(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t k;
    lseek(fd, 0, SEEK_SET);
    while (n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)k;
    buf[n] = 0;
}

/* fn(argc, argv) for a NULL-terminated args; stdin_text NULL: stdin as it is. */
static inline int capture_io(int (*fn)(int, char **), const char **args, const char *stdin_text) {
    int argc = 0;
    while (args[argc]) argc++;
    char out_path[] = "/tmp/rbee_cap_out_XXXXXX", err_path[] = "/tmp/rbee_cap_err_XXXXXX";
    char in_path[] = "/tmp/rbee_cap_in_XXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path), fi = -1, save_in = -1;
    if (stdin_text) {
        fi = mkstemp(in_path);
        if (write(fi, stdin_text, strlen(stdin_text)) != (ssize_t)strlen(stdin_text)) fprintf(stderr, "short write\n");
        lseek(fi, 0, SEEK_SET);
        save_in = dup(0);
        dup2(fi, 0);
        clearerr(stdin);
    }
    fflush(stdout);
    fflush(stderr);
    int save_out = dup(1), save_err = dup(2);
    dup2(fo, 1);
    dup2(fe, 2);
    int rc = fn(argc, (char **)args);
    fflush(stdout);
    fflush(stderr);
    clearerr(stdout);
    dup2(save_out, 1);
    dup2(save_err, 2);
    close(save_out);
    close(save_err);
    if (stdin_text) {
        dup2(save_in, 0);
        close(save_in);
        close(fi);
        unlink(in_path);
        clearerr(stdin);
    }
    cap_read(fo, cap_out, sizeof cap_out);
    cap_read(fe, cap_err, sizeof cap_err);
    close(fo);
    close(fe);
    unlink(out_path);
    unlink(err_path);
    return rc;
}

static inline int capture(int (*fn)(int, char **), const char **args) { return capture_io(fn, args, NULL); }

/* The whole command: args[0] is "rbee"; `rbee --version` says "rbee test-version". */
static inline int cap_main_fn(int argc, char **argv) { return cli_main(argc, argv, "test-version"); }
static inline int capture_main(const char **args) { return capture(cap_main_fn, args); }

#endif
