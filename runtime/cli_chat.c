/* cli_chat.c - `rbee chat`: a conversation with an instruct model through
 * its chat template, one user line per turn.
 *
 * The KV cache keeps the conversation: a turn's prompt is the cache's own
 * tokens (the earlier prompts and the replies exactly as sampled) plus the
 * tokens of the text the template puts after the last reply (its end
 * marker) and around the new user message. rbee_session_generate keeps
 * the common prefix, so only that new text is evaluated. When a turn does
 * not fit, the oldest whole turns after the system prompt go and the rest
 * is formatted and evaluated again.
 *
 * Terminal (stdin is a tty): a prompt, the reply streamed; Ctrl-C stops a
 * reply, Ctrl-C or Ctrl-D at the prompt ends. Pipe: one turn per line,
 * each reply on its own line, nothing else on stdout. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "rbee.h"

void cli_chat_usage(void) {
    printf("usage: rbee chat -m MODEL [--system TEXT] [--chat-template X] [options]\n\n"
           "Talk with an instruct model. On a terminal: type a message, read the reply;\n"
           "Ctrl-C stops a reply, Ctrl-C or Ctrl-D at the prompt ends, /reset starts over.\n"
           "In a pipe: each input line is one user turn, each reply is printed on its own line.\n\n"
           "  -m, --model FILE        GGUF model\n"
           "  --system TEXT           system prompt\n"
           "  --chat-template X       built-in template name or template text (default: the model's;\n"
           "                          'rbee template --help' lists the names)\n"
           "  -v, --verbose           after each reply, a line on stderr: tokens processed, cached, speed\n"
           "  -n, --n-predict N       most tokens per reply (default -1: until the end of the turn)\n"
           "  -c, --ctx-size N        context size (default min(model context, 4096)); when full, the\n"
           "                          oldest turns are dropped\n"
           "  -t, --threads N         threads (default: the number of online CPUs)\n"
           "  --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, --seed,\n"
           "  --kv-type, -ctk, -ctv   as in 'rbee run'\n");
}

/* ------------------------------------------------------------ state */

struct chat {
    const struct cli_chat_args *a;
    const rbee_model *m;
    rbee_session *s;
    const char *tmpl;
    int tty, color;
    struct rbee_chat_message *msgs; /* role: a literal; content: owned */
    size_t n_msgs, cap_msgs, first;   /* first: where turns start (after the system prompt) */
    int32_t *ids;                     /* the prompt being built */
    int n_ids, cap_ids;
    int synced;     /* the cache holds the whole conversation so far (a stopped prompt leaves it partial) */
    int turn;
    struct rb_buf reply;
    int out_error;  /* stdout failed (errno saved) */
};

static int push_msg(struct chat *c, const char *role, const char *text, size_t len) {
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? 2 * c->cap_msgs : 16;
        struct rbee_chat_message *m = realloc(c->msgs, cap * sizeof *m);
        if (!m) return -1;
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, text, len);
    copy[len] = 0;
    c->msgs[c->n_msgs++] = (struct rbee_chat_message){ role, copy };
    return 0;
}

/* Remove messages [i, j). */
static void drop_msgs(struct chat *c, size_t i, size_t j) {
    if (i == j) return;
    for (size_t k = i; k < j; k++) free((char *)c->msgs[k].content);
    memmove(c->msgs + i, c->msgs + j, (c->n_msgs - j) * sizeof *c->msgs);
    c->n_msgs -= j - i;
}

/* n messages through the template, malloc'd (NULL: out of memory). */
static char *format(const char *tmpl, const struct rbee_chat_message *msgs, size_t n, int add_ass, size_t *len) {
    char err[RBEE_ERR_MAX];
    int64_t need = rbee_chat_apply_template(tmpl, msgs, n, add_ass, NULL, 0, err);
    char *t = need >= 0 ? malloc((size_t)need + 1) : NULL;
    if (t) rbee_chat_apply_template(tmpl, msgs, n, add_ass, t, (size_t)need + 1, err);
    *len = t ? (size_t)need : 0;
    return t;
}

/* Append the tokens of text to the prompt being built. */
static int add_tokens(struct chat *c, const char *text, size_t len, int add_bos, char *err) {
    if (len > (size_t)INT32_MAX / 2) { strcpy(err, "text too long"); return -1; }
    int need = c->n_ids + (int)len + 2; /* at most one token per byte, and BOS and EOS */
    if (need > c->cap_ids) {
        int32_t *ids = realloc(c->ids, (size_t)need * sizeof *ids);
        if (!ids) { strcpy(err, "out of memory"); return -1; }
        c->ids = ids;
        c->cap_ids = need;
    }
    int64_t n = rbee_tokenize(c->m, text, len, add_bos, 1, c->ids + c->n_ids, (int64_t)len + 2, err);
    if (n < 0) return -1;
    if (n > (int64_t)len + 2) { strcpy(err, "more tokens than bytes"); return -1; }
    c->n_ids += (int)n;
    return 0;
}

/* The whole conversation as a fresh prompt. */
static int prompt_full(struct chat *c, char *err) {
    size_t len;
    char *text = format(c->tmpl, c->msgs, c->n_msgs, 1, &len);
    if (!text) { strcpy(err, "out of memory"); return -1; }
    c->n_ids = 0;
    int rc = add_tokens(c, text, len, -1, err); /* BOS (and EOS) as the vocab adds them, as llama.cpp does */
    free(text);
    return rc;
}

char *cli_chat_next_text(const char *tmpl, const struct rbee_chat_message *msgs, size_t n, size_t *len) {
    if (n < 2 || strcmp(msgs[n - 2].role, "assistant")) return NULL;
    /* what the template writes after a reply: format a marker in its place */
    static const char marker[] = "\x01rbee-reply\x01";
    struct rbee_chat_message *m = malloc(n * sizeof *m);
    if (!m) return NULL;
    memcpy(m, msgs, n * sizeof *m);
    m[n - 2].content = marker;
    size_t n_marked, n_old, n_new;
    char *marked = format(tmpl, m, n - 1, 0, &n_marked);
    char *old = format(tmpl, msgs, n - 1, 0, &n_old), *new = format(tmpl, msgs, n, 1, &n_new), *out = NULL;
    free(m);
    const char *at = NULL;
    for (const char *p = marked; p && (p = strstr(p, marker)); p++) at = p;
    /* only when the new message is appended to the text, as every built-in formatter does */
    if (at && old && new && n_new >= n_old && !memcmp(old, new, n_old)) {
        size_t tail = n_marked - (size_t)(at - marked) - (sizeof marker - 1);
        if ((out = malloc(tail + n_new - n_old + 1))) {
            memcpy(out, at + sizeof marker - 1, tail);
            memcpy(out + tail, new + n_old, n_new - n_old + 1);
            *len = tail + n_new - n_old;
        }
    }
    free(marked);
    free(old);
    free(new);
    return out;
}

/* The prompt for the newest user message (the last message): the cache's
 * own tokens + the text after them, when the cache holds the conversation
 * and the template appends; else the whole conversation again. */
static int prompt_next(struct chat *c, char *err) {
    size_t len;
    int n_cached = rbee_session_n_cached(c->s);
    char *text = c->synced && n_cached ? cli_chat_next_text(c->tmpl, c->msgs, c->n_msgs, &len) : NULL;
    if (!text) return prompt_full(c, err);
    if (n_cached > c->cap_ids) {
        int32_t *ids = realloc(c->ids, (size_t)n_cached * sizeof *ids);
        if (!ids) { free(text); strcpy(err, "out of memory"); return -1; }
        c->ids = ids;
        c->cap_ids = n_cached;
    }
    memcpy(c->ids, rbee_session_tokens(c->s), (size_t)n_cached * sizeof *c->ids);
    c->n_ids = n_cached;
    /* one piece, so that the end marker and the new turn tokenize as in a whole prompt */
    int rc = add_tokens(c, text, len, 0, err);
    free(text);
    return rc;
}

/* Room a reply needs besides the prompt. */
static int reply_room(const struct chat *c) {
    int n_ctx = rbee_n_ctx(rbee_session_context(c->s));
    int r = c->a->n_predict >= 0 ? (c->a->n_predict < n_ctx / 2 ? c->a->n_predict : n_ctx / 2) : n_ctx / 4;
    return r < 1 ? 1 : r;
}

/* Drop the oldest whole turn after the system prompt (never the newest
 * user message). Returns 0 when there is none to drop. */
static int drop_oldest_turn(struct chat *c) {
    size_t i = c->first, j = i + 1;
    if (i + 1 >= c->n_msgs) return 0;
    while (j < c->n_msgs - 1 && strcmp(c->msgs[j].role, "user")) j++;
    drop_msgs(c, i, j);
    return 1;
}

/* ------------------------------------------------------------ a turn */

static int on_text(void *user, const char *text, size_t len) {
    struct chat *c = user;
    rb_buf_add(&c->reply, text, len);
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout)) {
        c->out_error = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

/* One user turn. Returns 0, 1 on an error that ends the session, 2 on an
 * error a terminal session survives (the turn is dropped). */
static int chat_turn(struct chat *c, const char *line, size_t len) {
    char err[RBEE_ERR_MAX];
    if (push_msg(c, "user", line, len)) return cli_fail("chat", "out of memory");
    c->turn++;
    if (prompt_next(c, err)) return cli_fail("prompt", err);
    int n_ctx = rbee_n_ctx(rbee_session_context(c->s)), dropped = 0;
    while (c->n_ids + reply_room(c) > n_ctx && drop_oldest_turn(c)) {
        dropped++;
        if (prompt_full(c, err)) return cli_fail("prompt", err);
    }
    if (dropped)
        fprintf(stderr, "rbee: the conversation no longer fits the context of %d tokens: dropped the oldest %d "
                        "turn%s\n", n_ctx, dropped, dropped > 1 ? "s" : "");
    if (c->n_ids >= n_ctx) {
        char why[160];
        snprintf(why, sizeof why, "%d tokens, no room in the context of %d for a reply (raise -c)", c->n_ids, n_ctx);
        drop_msgs(c, c->n_msgs - 1, c->n_msgs);
        c->turn--;
        cli_fail("message", why);
        return c->tty ? 2 : 1;
    }

    struct rbee_gen_params gp = {
        .n_predict = c->a->n_predict, .sampling = c->a->sp, .cancel = cli_sigint_flag(),
        .on_text = on_text, .user = c,
    };
    gp.sampling.seed += (uint64_t)(c->turn - 1); /* a new stream per turn, all from one --seed */
    if (gp.sampling.repeat_last_n < 0) gp.sampling.repeat_last_n = n_ctx;
    struct rbee_gen_result res;
    c->reply.len = 0;
    if (c->reply.data) c->reply.data[0] = 0;
    if (rbee_session_generate(c->s, c->ids, c->n_ids, &gp, &res, err)) return cli_fail("generate", err);
    if (c->out_error) return cli_fail("stdout", strerror(c->out_error));
    if (c->reply.failed) return cli_fail("chat", "out of memory");
    c->synced = res.n_cached >= res.n_prompt;
    if (!res.n_generated && res.finish == RBEE_FINISH_CANCELLED) {
        drop_msgs(c, c->n_msgs - 1, c->n_msgs); /* stopped before a word: as if never sent */
    } else if (push_msg(c, "assistant", c->reply.len ? c->reply.data : "", c->reply.len)) {
        return cli_fail("chat", "out of memory");
    }
    fputs(c->tty ? "\n\n" : "\n", stdout);
    if (fflush(stdout)) return cli_fail("stdout", strerror(errno));
    if (res.finish == RBEE_FINISH_CONTEXT)
        fprintf(stderr, "rbee: the context of %d tokens is full: reply cut\n", n_ctx);
    if (c->a->verbose)
        fprintf(stderr, "turn %d: prompt %d tokens, cache %d tokens, reply %d tokens, %.1f prompt tokens/s, "
                        "%.1f tokens/s\n", c->turn, res.n_prompt_eval, res.n_cached, res.n_generated,
                res.prompt_ms > 0 ? 1e3 * res.n_prompt_eval / res.prompt_ms : 0.0,
                res.gen_ms > 0 ? 1e3 * res.n_generated / res.gen_ms : 0.0);
    return 0;
}

static void reset(struct chat *c) {
    drop_msgs(c, c->first, c->n_msgs);
    rbee_session_reset(c->s);
    c->synced = 1;
    c->turn = 0;
}

/* ------------------------------------------------------------ the loop */

/* Input lines, read with read(2) rather than stdio so that no line can
 * wait in a buffer while we wait on the descriptor. */
struct lines { char *buf; size_t start, n, cap; int eof; };

/* The next line (its '\n' replaced by NUL) in *line: its length, -1 at the
 * end of input, -2 for Ctrl-C, -3 for a read error (errno). A Ctrl-C that
 * comes just before the wait still counts: SIGINT stays blocked until
 * pselect unblocks it atomically. */
static ssize_t next_line(struct lines *l, char **line) {
    for (;;) {
        char *nl = l->n > l->start ? memchr(l->buf + l->start, '\n', l->n - l->start) : NULL;
        if (nl || (l->eof && l->n > l->start)) {
            char *s = l->buf + l->start;
            size_t k = nl ? (size_t)(nl - s) : l->n - l->start;
            s[k] = 0;
            l->start += nl ? k + 1 : k;
            *line = s;
            return (ssize_t)k;
        }
        if (l->eof) return -1;
        if (l->start) { /* room at the front */
            memmove(l->buf, l->buf + l->start, l->n - l->start);
            l->n -= l->start;
            l->start = 0;
        }
        if (l->cap - l->n < 4096) {
            char *b = realloc(l->buf, l->cap * 2 + 4096 + 1);
            if (!b) { errno = ENOMEM; return -3; }
            l->buf = b;
            l->cap = l->cap * 2 + 4096;
        }
        sigset_t intr, old;
        sigemptyset(&intr);
        sigaddset(&intr, SIGINT);
        pthread_sigmask(SIG_BLOCK, &intr, &old);
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(STDIN_FILENO, &rd);
        int r = *cli_sigint_flag() ? -1 : pselect(STDIN_FILENO + 1, &rd, NULL, NULL, NULL, &old);
        int e = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (*cli_sigint_flag()) return -2;
        if (r < 0 && e == EINTR) continue;
        if (r < 0) { errno = e; return -3; }
        ssize_t k = read(STDIN_FILENO, l->buf + l->n, l->cap - l->n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -3;
        if (k == 0) l->eof = 1;
        l->n += (size_t)k;
    }
}

static int converse(struct chat *c) {
    struct lines in = { 0 };
    char *line;
    int rc = 0;
    for (;;) {
        cli_sigint_clear();
        if (c->tty) {
            fputs(c->color ? "\033[1;32m>>>\033[0m " : ">>> ", stdout);
            fflush(stdout);
        }
        ssize_t n = next_line(&in, &line);
        if (n < 0) {
            /* Ctrl-D, the end of the input, or Ctrl-C at the prompt: the end */
            if (n == -3) rc = cli_fail("stdin", strerror(errno));
            if (c->tty) fputs("\n", stdout);
            break;
        }
        while (n > 0 && line[n - 1] == '\r') line[--n] = 0;
        if (!n) continue;
        if (!strcmp(line, "/reset")) {
            reset(c);
            if (c->tty) fputs("(conversation reset)\n", stdout);
            continue;
        }
        int t = chat_turn(c, line, (size_t)n);
        if (t == 1) { rc = 1; break; }
        if (!c->tty && *cli_sigint_flag()) { rc = 130; break; } /* a script's Ctrl-C ends it */
    }
    free(in.buf);
    if (fflush(stdout) && !rc) rc = cli_fail("stdout", strerror(errno));
    return rc;
}

int cli_chat_main(const struct cli_chat_args *a) {
    struct chat c = { .a = a, .tty = isatty(STDIN_FILENO), .synced = 1 };
    c.color = c.tty && isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    char err[RBEE_ERR_MAX];
    rbee_model *m = NULL;
    int rc = 1;
    if (rbee_model_load(&m, a->model, err)) return cli_fail(a->model, err);
    c.m = m;
    if (cli_chat_template(m, a->model, a->chat_template, &c.tmpl)) goto done;
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = a->n_ctx;
    cp.n_threads = a->n_threads;
    cp.type_k = a->type_k;
    cp.type_v = a->type_v;
    /* the context's worker threads inherit a blocked SIGINT, so Ctrl-C always
     * reaches this thread, the one that waits for input */
    sigset_t intr, old;
    sigemptyset(&intr);
    sigaddset(&intr, SIGINT);
    pthread_sigmask(SIG_BLOCK, &intr, &old);
    int bad = rbee_session_new(&c.s, m, &cp, err);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (bad) { cli_fail("context", err); goto done; }
    struct rbee_model_info info;
    rbee_model_get_info(m, &info);
    if (rbee_n_ctx(rbee_session_context(c.s)) > info.n_ctx_train) /* as `rbee run` warns */
        fprintf(stderr, "rbee: warning: -c %d is more than the %d tokens the model was trained on\n",
                rbee_n_ctx(rbee_session_context(c.s)), info.n_ctx_train);
    if (a->system && push_msg(&c, "system", a->system, strlen(a->system))) { cli_fail("chat", "out of memory"); goto done; }
    c.first = c.n_msgs;
    if (a->verbose)
        fprintf(stderr, "rbee: chat template %s, context %d tokens, seed %llu\n", rbee_chat_template_detect(c.tmpl),
                rbee_n_ctx(rbee_session_context(c.s)), (unsigned long long)a->sp.seed);
    if (cli_sigint_catch()) { cli_fail("SIGINT", strerror(errno)); goto done; }
    rc = converse(&c);
done:
    drop_msgs(&c, 0, c.n_msgs);
    free(c.msgs);
    free(c.ids);
    rb_buf_free(&c.reply);
    rbee_session_free(c.s);
    rbee_model_free(m);
    return rc;
}
