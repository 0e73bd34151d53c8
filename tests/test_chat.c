/* test_chat.c - `rbee template`, `rbee chat` and Ctrl-C / the seed of
 * `rbee run`, through the built binary (build/rbee beside build/tests):
 *  - template: every conversation of ../shared/reference/chat byte for
 *    byte from the template text; bad messages files give one error line;
 *  - chat in a pipe: one reply line per input line, and --verbose counts
 *    that show turn 2 evaluating only its new tokens (the cache keeps
 *    turn 1); the oldest turns dropped when the context is full;
 *  - chat on a pseudo-terminal: a reply stopped by Ctrl-C, another turn,
 *    Ctrl-D at the prompt (exit 0); Ctrl-C at the prompt (exit 0); on a
 *    TinyLlama-shaped synthetic model slow enough to interrupt;
 *  - run: Ctrl-C stops it with the stats, a random seed that --seed repeats.
 * Every wait is bounded; a child that outlives it is killed and fails. */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */
#define _DEFAULT_SOURCE   /* TIOCSCTTY */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "chat_ref.h"
#include "../runtime/cli.h"

static char rbee[1100];   /* the binary under test */
static char tmpdir[256];  /* scratch, removed at the end */
static char stories[512]; /* a fast real model */

/* ------------------------------------------------------------ child processes */

struct sbuf { char *s; size_t n, cap; };

static void sbuf_add(struct sbuf *b, const char *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}

struct proc {
    pid_t pid;
    int in, out, err; /* on a pty: in == out == the master, err = -1 */
    struct sbuf o, e;
    int status;       /* exit status, 128 + signal, or -1 when it had to be killed */
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Start rbee with args (NULL-terminated, without argv[0]); stdin, stdout
 * and stderr are pipes, or all three one pseudo-terminal. */
static int proc_start(struct proc *p, const char *const *args, int pty) {
    const char *argv[64] = { rbee };
    int n = 1;
    for (; args[n - 1] && n < 63; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    memset(p, 0, sizeof *p);
    p->err = -1;
    int pin[2], pout[2], perr[2], master = -1;
    const char *slave = NULL;
    if (pty) {
        master = posix_openpt(O_RDWR | O_NOCTTY);
        if (master < 0 || grantpt(master) || unlockpt(master) || !(slave = ptsname(master))) return -1;
    } else if (pipe(pin) || pipe(pout) || pipe(perr)) {
        return -1;
    }
    fflush(stdout);
    p->pid = fork();
    if (p->pid < 0) return -1;
    if (p->pid == 0) {
        if (pty) {
            setsid(); /* a new session whose controlling terminal is the pty: ^C there is our SIGINT */
            int s = open(slave, O_RDWR);
            if (s < 0) _exit(127);
            ioctl(s, TIOCSCTTY, 0);
            dup2(s, 0); dup2(s, 1); dup2(s, 2);
            if (s > 2) close(s);
            close(master);
        } else {
            dup2(pin[0], 0); dup2(pout[1], 1); dup2(perr[1], 2);
            close(pin[0]); close(pin[1]); close(pout[0]); close(pout[1]); close(perr[0]); close(perr[1]);
        }
        execv(rbee, (char *const *)argv);
        _exit(127);
    }
    if (pty) {
        p->in = p->out = master;
    } else {
        close(pin[0]); close(pout[1]); close(perr[1]);
        p->in = pin[1]; p->out = pout[0]; p->err = perr[0];
    }
    return 0;
}

/* Read what is there, waiting at most timeout_s; 0 when both ends are closed. */
static int proc_pump(struct proc *p, double timeout_s) {
    struct pollfd fds[2] = { { p->out, POLLIN, 0 }, { p->err, POLLIN, 0 } };
    int nfds = p->err >= 0 ? 2 : 1;
    if (p->out < 0 && p->err < 0) return 0;
    if (poll(fds, (nfds_t)nfds, (int)(timeout_s * 1000)) <= 0) return 1;
    for (int i = 0; i < nfds; i++) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[4096];
        ssize_t k = read(fds[i].fd, buf, sizeof buf);
        if (k > 0) sbuf_add(i ? &p->e : &p->o, buf, (size_t)k);
        else if (k == 0 || errno != EINTR) { /* EOF (EIO on a pty whose child is gone) */
            close(fds[i].fd);
            if (i) p->err = -1;
            else { if (p->in == p->out) p->in = -1; p->out = -1; }
        }
    }
    return 1;
}

/* Wait until stdout (or the pty) holds needle at or after from; returns
 * its offset or -1 after timeout_s. */
static long proc_expect(struct proc *p, const char *needle, size_t from, double timeout_s) {
    double end = now() + timeout_s;
    for (;;) {
        if (p->o.n > from) {
            const char *hit = strstr(p->o.s + from, needle);
            if (hit) return hit - p->o.s;
        }
        double left = end - now();
        if (left <= 0 || (!proc_pump(p, left > 0.2 ? 0.2 : left) && p->out < 0)) return -1;
    }
}

/* Wait until stdout grows past n bytes. */
static int proc_expect_bytes(struct proc *p, size_t n, double timeout_s) {
    double end = now() + timeout_s;
    while (p->o.n <= n) {
        double left = end - now();
        if (left <= 0 || (!proc_pump(p, left > 0.2 ? 0.2 : left) && p->out < 0)) return -1;
    }
    return 0;
}

static void proc_write(struct proc *p, const char *s) {
    size_t n = strlen(s);
    /* EPIPE: the child is gone already (an error before reading its input) */
    if (p->in >= 0 && write(p->in, s, n) != (ssize_t)n && errno != EPIPE)
        TEST_FAIL_AT("write to the child: %s", strerror(errno));
}

/* Close stdin, read everything, reap; kill after timeout_s. Returns the status. */
static int proc_finish(struct proc *p, double timeout_s) {
    if (p->in >= 0 && p->in != p->out) close(p->in);
    double end = now() + timeout_s;
    int st = 0, reaped = 0;
    while (!reaped) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) { reaped = 1; break; }
        if (now() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            p->status = -1;
            TEST_FAIL_AT("rbee did not finish within %.0f s; output so far:\n%s\n%s", timeout_s, p->o.s ? p->o.s : "",
                         p->e.s ? p->e.s : "");
            break;
        }
        proc_pump(p, 0.1);
    }
    while (proc_pump(p, 1.0) && (p->out >= 0 || p->err >= 0)) {}
    if (p->out >= 0) close(p->out);
    if (p->err >= 0) close(p->err);
    if (reaped) p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (!p->o.s) sbuf_add(&p->o, "", 0);
    if (!p->e.s) sbuf_add(&p->e, "", 0);
    return p->status;
}

static void proc_free(struct proc *p) {
    free(p->o.s);
    free(p->e.s);
}

/* Run to the end with stdin text; returns the status. */
static int run_rbee(struct proc *p, const char *const *args, const char *input, double timeout_s) {
    if (proc_start(p, args, 0)) { TEST_FAIL_AT("cannot start %s", rbee); return -1; }
    if (input) proc_write(p, input);
    return proc_finish(p, timeout_s);
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (; (s = strstr(s, needle)); s++) n++;
    return n;
}

static int write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) || w != n ? -1 : 0;
}

/* ------------------------------------------------------------ rbee template */

/* [{"role": ..., "content": ...}, ...] */
static void messages_json(struct rb_buf *json, const struct chat_ref_conv *c) {
    rb_buf_puts(json, "[");
    for (size_t k = 0; k < c->n_msgs; k++) {
        rb_buf_puts(json, k ? ",\n {\"role\": " : "{\"role\": ");
        rb_json_put_string(json, c->msgs[k].role, strlen(c->msgs[k].role));
        rb_buf_puts(json, ", \"content\": ");
        rb_json_put_string(json, c->msgs[k].content, strlen(c->msgs[k].content));
        rb_buf_puts(json, "}");
    }
    rb_buf_puts(json, "]\n");
}

/* The conversation as a messages file, through `rbee template` with the
 * template text. */
static void check_template_cli(const char *file, const struct chat_ref *r, int i, void *user) {
    const struct chat_ref_conv *c = &r->conv[i];
    struct rb_buf json = { 0 };
    messages_json(&json, c);
    char path[512];
    snprintf(path, sizeof path, "%s/messages.json", tmpdir);
    CHECK(!json.failed && !write_file(path, json.data, json.len));
    rb_buf_free(&json);
    const char *args[] = { "template", "-m", stories, "--chat-template", r->tmpl, path, NULL };
    struct proc p;
    int st = run_rbee(&p, args, NULL, 30);
    CHECK_MSG(st == 0 && p.o.n == c->prompt_len && !memcmp(p.o.s, c->prompt, c->prompt_len),
              "%s conversation %d: exit %d, %zu bytes:\n    got  [%s]\n    want [%s]\n    stderr %s", file, i + 1, st,
              p.o.n, p.o.s, c->prompt, p.e.s);
    CHECK_MSG(p.e.n == 0, "stderr: %s", p.e.s);
    proc_free(&p);
    (*(int *)user)++;
}

TEST(template_matches_reference_files) {
    int n = 0;
    chat_ref_each(check_template_cli, &n);
    CHECK(n >= 9);
}

/* Models whose tokenizer.chat_template is a reference file's template:
 * `rbee template -m MODEL` (no --chat-template) gives that file's prompt. */
struct model_case { const char *file, *model; int n; };

static void check_model_template(const char *file, const struct chat_ref *r, int i, void *user) {
    struct model_case *mc = user;
    const char *base = strrchr(file, '/');
    if (strcmp(base ? base + 1 : file, mc->file)) return;
    const struct chat_ref_conv *c = &r->conv[i];
    struct rb_buf json = { 0 };
    messages_json(&json, c);
    char model[512];
    const char *args[] = { "template", "-m", test_path(model, sizeof model, mc->model), "-", NULL };
    struct proc p;
    int st = run_rbee(&p, args, json.data, 30);
    CHECK_MSG(st == 0 && p.o.n == c->prompt_len && !memcmp(p.o.s, c->prompt, c->prompt_len),
              "%s with %s: exit %d:\n    got  [%s]\n    want [%s]\n    stderr %s", mc->model, file, st, p.o.s,
              c->prompt, p.e.s);
    proc_free(&p);
    rb_buf_free(&json);
    mc->n++;
}

TEST(template_from_the_model) {
    struct model_case cases[] = {
        { "llama3.txt", "models/llama3-mini-q8_0.gguf", 0 },
        { "chatml-qwen3.txt", "models/qwen2-mini-q8_0.gguf", 0 },
        { "phi3.txt", "models/phi3-mini-q8_0.gguf", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        chat_ref_each(check_model_template, &cases[i]);
        CHECK_MSG(cases[i].n > 0, "%s: no conversation checked", cases[i].file);
    }
}

/* One "rbee: error:" line on stderr, exit 1, nothing on stdout. */
static void expect_error(const char *const *args, const char *input, const char *needle) {
    struct proc p;
    int st = run_rbee(&p, args, input, 30);
    CHECK_MSG(st == 1, "%s: exit %d, want 1 (stderr %s)", needle, st, p.e.s);
    CHECK_MSG(!strncmp(p.e.s, "rbee: error: ", 13) && count_lines(p.e.s) == 1, "%s: stderr [%s]", needle, p.e.s);
    CHECK_CONTAINS(p.e.s, needle);
    CHECK_MSG(p.o.n == 0, "%s: stdout [%s]", needle, p.o.s);
    proc_free(&p);
}

TEST(template_bad_input) {
    static const struct { const char *json, *needle; } bad[] = {
        { "", "not JSON" },
        { "[{\"role\": \"user\", \"content\": \"hi\"}", "not JSON" },
        { "hello", "not JSON" },
        { "[]", "no messages (the array is empty)" },
        { "{\"role\": \"user\", \"content\": \"hi\"}", "expected an array of messages" },
        { "\"hi\"", "expected an array of messages" },
        { "[{\"role\": \"tool\", \"content\": \"hi\"}]", "message 1: unknown role 'tool'" },
        { "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"bot\", \"content\": \"b\"}]",
          "message 2: unknown role 'bot'" },
        { "[{\"role\": \"user\"}]", "message 1: no \"content\"" },
        { "[{\"content\": \"hi\"}]", "message 1: no \"role\"" },
        { "[{\"role\": \"user\", \"content\": 42}]", "\"content\" must be a string (got number)" },
        { "[{\"role\": \"user\", \"content\": null}]", "\"content\" must be a string (got null)" },
        { "[{\"role\": \"user\", \"content\": [\"a\"]}]", "\"content\" must be a string (got array)" },
        { "[{\"role\": [], \"content\": \"x\"}]", "\"role\" must be a string (got array)" },
        { "[\"hi\"]", "message 1: expected an object, got string" },
        { "[{\"role\": \"user\", \"content\": \"a\\u0000b\"}]", "NUL" },
    };
    char path[512];
    snprintf(path, sizeof path, "%s/bad.json", tmpdir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(!write_file(path, bad[i].json, strlen(bad[i].json)));
        const char *args[] = { "template", "-m", stories, "--chat-template", "chatml", path, NULL };
        expect_error(args, NULL, bad[i].needle);
        const char *stdin_args[] = { "template", "--chat-template", "chatml", "-", NULL }; /* the same from stdin */
        expect_error(stdin_args, bad[i].json, bad[i].needle);
    }
    CHECK(!write_file(path, "[{\"role\": \"user\", \"content\": \"hi\"}]", 35));
    const char *no_tmpl[] = { "template", "-m", stories, path, NULL };
    expect_error(no_tmpl, NULL, "has no chat template (tokenizer.chat_template); choose one with --chat-template");
    expect_error(no_tmpl, NULL, "chatml, command-r"); /* the names rbee knows */
    const char *unknown[] = { "template", "-m", stories, "--chat-template", "{{ bogus }}", path, NULL };
    expect_error(unknown, NULL, "--chat-template: '{{ bogus }}' is neither a built-in name nor a template");
    const char *missing[] = { "template", "-m", stories, "--chat-template", "chatml", "/nonexistent.json", NULL };
    expect_error(missing, NULL, "/nonexistent.json: No such file");
    const char *no_file[] = { "template", "-m", stories, NULL };
    expect_error(no_file, NULL, "MESSAGES.json is required");
    const char *bad_flag[] = { "template", "--bogus", path, NULL };
    expect_error(bad_flag, NULL, "--bogus: unknown option");
    const char *bad_model[] = { "template", "-m", "/nonexistent.gguf", path, NULL };
    expect_error(bad_model, NULL, "/nonexistent.gguf");
}

/* ------------------------------------------------------------ the text of a next turn */

static const char *next_text(const char *tmpl, const struct rbee_chat_message *m, size_t n) {
    static char buf[4096];
    size_t len;
    char *t = cli_chat_next_text(tmpl, m, n, &len);
    snprintf(buf, sizeof buf, "%s", t ? t : "(null)");
    CHECK(!t || strlen(t) == len);
    free(t);
    return buf;
}

/* After a reply the cache holds prompt + reply; the next turn feeds the
 * reply's end marker and the new turn. */
TEST(next_turn_text) {
    const struct rbee_chat_message m[] = { { "system", "S" }, { "user", "U" }, { "assistant", "R" }, { "user", "V" } };
    static const struct { const char *tmpl, *want; } cases[] = {
        { "chatml", "<|im_end|>\n<|im_start|>user\nV<|im_end|>\n<|im_start|>assistant\n" },
        { "llama3", "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nV<|eot_id|><|start_header_id|>assistant"
                    "<|end_header_id|>\n\n" },
        { "gemma", "<end_of_turn>\n<start_of_turn>user\nV<end_of_turn>\n<start_of_turn>model\n" },
        { "phi3", "<|end|>\n<|user|>\nV<|end|>\n<|assistant|>\n" },
        { "llama2-sys-strip", "</s>[INST] V [/INST]" },
        { "mistral-v7", "</s>[INST] V[/INST]" },
        { "glmedge", "<|user|>\nV<|assistant|>" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_MSG(!strcmp(next_text(cases[i].tmpl, m, 4), cases[i].want), "%s: [%s]", cases[i].tmpl,
                  next_text(cases[i].tmpl, m, 4));
    /* where the assistant's opening is the start of its message, prompt +
     * reply + next text is the whole conversation, formatted at once */
    static const char *whole[] = { "chatml", "llama3", "phi3", "phi4", "gemma", "zephyr", "falcon3", "monarch",
                                   "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "mistral-v3-tekken",
                                   "command-r", "deepseek", "deepseek3", "exaone3", "megrez",
                                   "orion", "gigachat", "minicpm", "rwkv-world" };
    char err[RBEE_ERR_MAX], first[2048], all[2048], joined[4096];
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        int64_t a = rbee_chat_apply_template(whole[i], m, 2, 1, first, sizeof first, err);
        int64_t b = rbee_chat_apply_template(whole[i], m, 4, 1, all, sizeof all, err);
        snprintf(joined, sizeof joined, "%sR%s", first, next_text(whole[i], m, 4));
        CHECK_MSG(a > 0 && b > 0 && !strcmp(joined, all), "%s:\n    joined [%s]\n    whole  [%s]", whole[i], joined,
                  all);
    }
    for (size_t i = 0; rbee_chat_template_builtin(i); i++) /* every built-in formatter appends */
        CHECK_MSG(strcmp(next_text(rbee_chat_template_builtin(i), m, 4), "(null)"), "%s", rbee_chat_template_builtin(i));
    CHECK_STR(next_text("chatml", m, 2), "(null)"); /* not after a reply */
    CHECK_STR(next_text("chatml", m, 1), "(null)");
}

/* ------------------------------------------------------------ rbee chat in a pipe */

/* The numbers of "turn N: prompt P tokens, cache C tokens, reply R tokens" */
static int turn_counts(const char *log, int turn, int *p, int *c, int *r) {
    char key[32];
    snprintf(key, sizeof key, "turn %d: ", turn);
    const char *at = strstr(log, key);
    return at && sscanf(at + strlen(key), "prompt %d tokens, cache %d tokens, reply %d tokens", p, c, r) == 3 ? 0 : -1;
}

TEST(chat_pipe_reuses_the_cache) {
    const char *args[] = { "chat", "-m", stories, "--chat-template", "chatml", "--system",
                           "You are a storyteller who tells short stories about cats.",
                           "-n", "12", "-t", "1", "--verbose", "--temp", "0", NULL };
    struct proc p;
    int st = run_rbee(&p, args, "Hi\nAnd then?\n", 60);
    CHECK_EQ_INT(st, 0);
    /* greedy on this model, neither reply holds a newline of its own */
    CHECK_MSG(count_lines(p.o.s) == 2, "want two reply lines, got [%s]", p.o.s);
    CHECK_MSG(!strstr(p.o.s, ">>>") && !strchr(p.o.s, '\033'), "a prompt or colour in a pipe: [%s]", p.o.s);
    int p1 = 0, c1 = 0, r1 = 0, p2 = 0, c2 = 0, r2 = 0;
    CHECK_MSG(!turn_counts(p.e.s, 1, &p1, &c1, &r1) && !turn_counts(p.e.s, 2, &p2, &c2, &r2), "stderr: %s", p.e.s);
    /* turn 1 evaluates its whole prompt; turn 2 only what follows turn 1's
     * cache: the end of the reply and the new user turn */
    CHECK_EQ_INT(c1, p1 + r1);
    CHECK_EQ_INT(c2, c1 + p2 + r2);
    CHECK_MSG(p2 < p1 && 3 * p2 < c2, "turn 2 evaluated %d of %d cached tokens", p2, c2);
    CHECK(r1 > 0 && r1 <= 12 && r2 > 0 && r2 <= 12);

    /* the same conversation, greedy: the same replies (the seed is printed, and repeats) */
    struct proc q;
    CHECK_EQ_INT(run_rbee(&q, args, "Hi\nAnd then?\n", 60), 0);
    CHECK_STR(q.o.s, p.o.s);
    proc_free(&q);
    proc_free(&p);
}

/* On a model with chatml's special tokens (qwen2-mini's own template):
 * turn 1 evaluates its whole prompt, turn 2 exactly the tokens of the end
 * of reply 1 and the new turn, whatever reply 1 was. */
static int n_tokens(const rbee_model *m, const char *text, int add_bos) {
    char err[RBEE_ERR_MAX];
    int64_t n = rbee_tokenize(m, text, strlen(text), add_bos, 1, NULL, 0, err);
    if (n < 0) TEST_FAIL_AT("tokenize: %s", err);
    return (int)n;
}

TEST(chat_pipe_exact_counts) {
    char model[512], err[RBEE_ERR_MAX];
    test_path(model, sizeof model, "models/qwen2-mini-q8_0.gguf");
    rbee_model *m = NULL;
    if (rbee_vocab_load(&m, model, err)) { TEST_FAIL_AT("%s: %s", model, err); return; }
    int want1 = n_tokens(m, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                            "<|im_start|>assistant\n", -1);
    int want2 = n_tokens(m, "<|im_end|>\n<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n", 0);
    rbee_model_free(m);
    CHECK(want1 == 17 && want2 == 13); /* special tokens parsed: <|im_start|> is one token */
    for (int k = 0; k < 2; k++) {
        const char *args[] = { "chat", "-m", model, "--system", "Be brief.", "-n", k ? "3" : "40", "-t", "1",
                               "--verbose", "--temp", "0", NULL };
        struct proc p;
        CHECK_EQ_INT(run_rbee(&p, args, "Hi\nAnd then?\n", 60), 0);
        int p1 = 0, c1 = 0, r1 = 0, p2 = 0, c2 = 0, r2 = 0;
        CHECK_MSG(!turn_counts(p.e.s, 1, &p1, &c1, &r1) && !turn_counts(p.e.s, 2, &p2, &c2, &r2), "%s", p.e.s);
        CHECK_EQ_INT(p1, want1);
        CHECK_EQ_INT(p2, want2);
        CHECK_EQ_INT(c2, c1 + p2 + r2);
        proc_free(&p);
    }
}

TEST(chat_pipe_reset_and_commands) {
    const char *args[] = { "chat", "-m", stories, "--chat-template", "llama2", "-n", "6", "-t", "1", "--verbose",
                           "--temp", "0", NULL };
    struct proc p;
    CHECK_EQ_INT(run_rbee(&p, args, "Hi\n\n/reset\nHi\n", 60), 0);
    CHECK_MSG(count(p.e.s, "\nturn ") == 2, "empty lines and /reset give no reply: [%s]", p.e.s);
    int p1 = 0, c1 = 0, r1 = 0;
    CHECK(!turn_counts(p.e.s, 1, &p1, &c1, &r1));
    const char *first = strstr(p.e.s, "turn 1: ");
    const char *second = first ? strstr(first + 1, "turn 1: ") : NULL; /* numbering restarts */
    CHECK_MSG(second != NULL, "stderr: %s", p.e.s);
    int p1b = 0, c1b = 0, r1b = 0;
    if (second) {
        CHECK(!turn_counts(second, 1, &p1b, &c1b, &r1b));
        CHECK_EQ_INT(p1b, p1); /* the whole prompt again: the cache was emptied */
    }
    proc_free(&p);
}

TEST(chat_pipe_drops_old_turns) {
    /* each turn is about 40 tokens on this vocab (chatml markers are text
     * to it): the third turn no longer fits 100 */
    const char *args[] = { "chat", "-m", stories, "--chat-template", "chatml", "--system", "Be kind.",
                           "-n", "8", "-c", "100", "-t", "1", "--verbose", "--temp", "0", NULL };
    struct proc p;
    CHECK_EQ_INT(run_rbee(&p, args, "One\nTwo\nThree\nFour\nFive\n", 60), 0);
    CHECK_MSG(count(p.e.s, "\nturn ") == 5 && count_lines(p.o.s) >= 5, "five replies: [%s] [%s]", p.o.s, p.e.s);
    CHECK_CONTAINS(p.e.s, "no longer fits the context of 100 tokens: dropped the oldest");
    for (int t = 1; t <= 5; t++) {
        int pp = 0, cc = 0, rr = 0;
        CHECK_MSG(!turn_counts(p.e.s, t, &pp, &cc, &rr) && cc <= 100, "turn %d: %s", t, p.e.s);
    }
    proc_free(&p);

    /* a message that cannot fit at all: one error line, exit 1 */
    const char *tiny[] = { "chat", "-m", stories, "--chat-template", "chatml", "-c", "16", "-t", "1", NULL };
    CHECK_EQ_INT(run_rbee(&p, tiny, "Tell me a long story about a cat and a dog\n", 60), 1);
    CHECK_CONTAINS(p.e.s, "rbee: error: message: ");
    CHECK_CONTAINS(p.e.s, "no room in the context of 16");
    CHECK_EQ_INT(count_lines(p.e.s), 1);
    proc_free(&p);
}

TEST(chat_bad_options) {
    const char *no_tmpl[] = { "chat", "-m", stories, NULL };
    expect_error(no_tmpl, "Hi\n", "has no chat template");
    const char *bad_tmpl[] = { "chat", "-m", stories, "--chat-template", "nope", NULL };
    expect_error(bad_tmpl, "Hi\n", "'nope' is neither a built-in name");
    const char *prompt[] = { "chat", "-m", stories, "-p", "Hi", NULL };
    expect_error(prompt, "Hi\n", "-p: unknown option");
    const char *no_special[] = { "chat", "-m", stories, "--no-parse-special", NULL };
    expect_error(no_special, "Hi\n", "--no-parse-special: unknown option");
    const char *no_model[] = { "chat", "--chat-template", "chatml", NULL };
    expect_error(no_model, "Hi\n", "a model file is required");
}

/* ------------------------------------------------------------ a terminal */

/* A model whose replies take seconds, so that a Ctrl-C lands in one: a
 * TinyLlama-shaped one (about 30 tokens/s on one core); under the
 * sanitizers, which make it 20 times slower, the 4-layer llama-mini shape
 * (about 100 tokens/s there). Its context, SLOW_CTX, is what a reply
 * left alone would fill. */
#if defined(__SANITIZE_ADDRESS__)
#define SLOW_SHAPE "llama-mini"
#define SLOW_TYPE "q8_0"
#define SLOW_CTX 512
#else
#define SLOW_SHAPE "tinyllama-1.1b"
#define SLOW_TYPE "q4_0"
#define SLOW_CTX 1024
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

static char slow_model[512];

static int make_slow_model(void) {
    if (slow_model[0]) return 0;
    snprintf(slow_model, sizeof slow_model, "%s/slow.gguf", tmpdir);
    char vocab[512];
    const char *args[] = { "synth", "--shape", SLOW_SHAPE, "--type", SLOW_TYPE, "-o", slow_model, "--vocab",
                           test_path(vocab, sizeof vocab, "reference/tokenizer/ggml-vocab-llama-spm.gguf"), "-t", "2",
                           NULL };
    struct proc p;
    int st = run_rbee(&p, args, NULL, 120);
    if (st) TEST_FAIL_AT("synth: exit %d: %s", st, p.e.s);
    proc_free(&p);
    return st ? -1 : 0;
}

TEST(chat_terminal_ctrl_c_and_ctrl_d) {
    if (make_slow_model()) return;
    const char *args[] = { "chat", "-m", slow_model, "--chat-template", "chatml", "-t", "1", "-c", STR(SLOW_CTX),
                           "--temp", "0", "--verbose", NULL };
    struct proc p;
    if (proc_start(&p, args, 1)) { TEST_FAIL_AT("cannot open a pty"); return; }
    long at = proc_expect(&p, ">>>", 0, 60);
    int c_prev = 0;
    CHECK_MSG(at >= 0, "no prompt: [%s]", p.o.s ? p.o.s : "");
    for (int turn = 1; turn <= 2 && at >= 0; turn++) {
        proc_write(&p, turn == 1 ? "Hello there\n" : "Tell me more\n");
        long echo = proc_expect(&p, "\n", (size_t)at + 3, 30); /* the terminal echoes the line */
        /* the reply: generation runs until the context is full (seconds) unless stopped */
        CHECK_MSG(echo >= 0 && !proc_expect_bytes(&p, (size_t)echo + 24, 60), "turn %d: no reply: [%s]", turn,
                  p.o.s ? p.o.s : "");
        proc_write(&p, "\x03"); /* Ctrl-C: the line discipline sends SIGINT */
        char key[24];
        snprintf(key, sizeof key, "turn %d: ", turn);
        long stats = proc_expect(&p, key, (size_t)echo, 30);
        at = proc_expect(&p, ">>>", (size_t)echo, 30);
        CHECK_MSG(stats >= 0 && at >= 0, "turn %d: Ctrl-C did not bring the prompt back: [%s]", turn, p.o.s);
        int pp = 0, cc = 0, rr = 0;
        CHECK_MSG(stats >= 0 && !turn_counts(p.o.s + stats, turn, &pp, &cc, &rr) && rr > 0 && cc < SLOW_CTX - 16,
                  "turn %d: the reply was not cut short: [%s]", turn, stats >= 0 ? p.o.s + stats : "");
        /* turn 2 evaluates only its own tokens: the stopped reply stays in the cache */
        if (turn == 2 && stats >= 0) CHECK_MSG(cc == c_prev + pp + rr, "turn 2: %d cached, %d + %d + %d", cc, c_prev, pp, rr);
        c_prev = cc;
    }
    proc_write(&p, "\x04"); /* Ctrl-D at the prompt */
    CHECK_EQ_INT(proc_finish(&p, 30), 0);
    proc_free(&p);

    /* Ctrl-C at the prompt ends the session too, with exit 0 */
    if (proc_start(&p, args, 1)) { TEST_FAIL_AT("cannot open a pty"); return; }
    CHECK_MSG(proc_expect(&p, ">>>", 0, 60) >= 0, "no prompt");
    proc_write(&p, "\x03");
    CHECK_EQ_INT(proc_finish(&p, 30), 0);
    proc_free(&p);
}

/* ------------------------------------------------------------ rbee run */

static unsigned long long seed_of(const char *log) {
    const char *s = strstr(log, "\nseed:");
    return s ? strtoull(s + 6, NULL, 10) : 0;
}

TEST(run_seed_is_random_and_repeatable) {
    const char *args[] = { "run", "-m", stories, "-p", "Once upon a time", "-n", "24", "-t", "1", NULL };
    struct proc a, b, c;
    CHECK_EQ_INT(run_rbee(&a, args, NULL, 60), 0);
    CHECK_EQ_INT(run_rbee(&b, args, NULL, 60), 0);
    unsigned long long sa = seed_of(a.e.s), sb = seed_of(b.e.s);
    CHECK_MSG(sa != sb, "two runs, one seed %llu", sa);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", sa);
    const char *again[] = { "run", "-m", stories, "-p", "Once upon a time", "-n", "24", "-t", "1", "--seed", seed, NULL };
    CHECK_EQ_INT(run_rbee(&c, again, NULL, 60), 0);
    CHECK_STR(c.o.s, a.o.s);
    CHECK_EQ_INT(seed_of(c.e.s), sa);
    proc_free(&a); proc_free(&b); proc_free(&c);
}

TEST(run_ctrl_c_prints_the_stats) {
    if (make_slow_model()) return;
    const char *args[] = { "run", "-m", slow_model, "-p", "Hello", "-n", "-1", "-c", STR(SLOW_CTX), "-t", "1", NULL };
    struct proc p;
    if (proc_start(&p, args, 0)) { TEST_FAIL_AT("cannot start"); return; }
    CHECK_MSG(!proc_expect_bytes(&p, 40, 60), "no text: [%s]", p.o.s ? p.o.s : "");
    kill(p.pid, SIGINT);
    CHECK_EQ_INT(proc_finish(&p, 30), 130);
    CHECK_CONTAINS(p.e.s, "rbee: interrupted");
    const char *g = strstr(p.e.s, "generation: ");
    int n_gen = -1;
    CHECK_MSG(g && sscanf(g, "generation: %d tokens", &n_gen) == 1 && n_gen > 0 && n_gen < SLOW_CTX - 16,
              "not stopped early: %s", p.e.s);
    CHECK(!strstr(p.e.s, "is full"));
    CHECK_CONTAINS(p.e.s, "\nseed:");
    proc_free(&p);
}

/* ------------------------------------------------------------ main */

static void rm_tmpdir(void) {
    char path[512];
    const char *files[] = { "messages.json", "bad.json", "slow.gguf" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int main(void) {
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) { printf("cannot find myself\n0 passed, 1 failed\n"); return 1; }
    self[n] = 0;
    *strrchr(self, '/') = 0; /* build/tests */
    snprintf(rbee, sizeof rbee, "%s/../rbee", self);
    if (access(rbee, X_OK)) { printf("%s: not built\n0 passed, 1 failed\n", rbee); return 1; }
    test_path(stories, sizeof stories, "models/stories260K.gguf");
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rbee-test-chat-%d", (int)getpid());
    if (mkdir(tmpdir, 0700)) { printf("mkdir %s: %s\n0 passed, 1 failed\n", tmpdir, strerror(errno)); return 1; }
    RUN(next_turn_text);
    /* an emulated test binary (qemu-user without binfmt_misc) cannot start
     * the binary it tests: say so, and run only the in-process test */
    struct proc probe;
    const char *isas[] = { "isas", NULL };
    if (run_rbee(&probe, isas, NULL, 30) == 127) {
        printf("%s cannot be executed from this process (an emulated run?): the tests that run it are skipped\n",
               rbee);
        proc_free(&probe);
        rm_tmpdir();
        return test_summary();
    }
    proc_free(&probe);
    RUN(template_matches_reference_files);
    RUN(template_from_the_model);
    RUN(template_bad_input);
    RUN(chat_pipe_reuses_the_cache);
    RUN(chat_pipe_exact_counts);
    RUN(chat_pipe_reset_and_commands);
    RUN(chat_pipe_drops_old_turns);
    RUN(chat_bad_options);
    RUN(chat_terminal_ctrl_c_and_ctrl_d);
    RUN(run_seed_is_random_and_repeatable);
    RUN(run_ctrl_c_prints_the_stats);
    rm_tmpdir();
    return test_summary();
}
