/* serve_client.h - what the `rbee serve` tests need around the server: a
 * server process on a free loopback port (started from the rbee binary of
 * the same build, its stderr log collected), a plain HTTP/1.1 client over
 * sockets (with chunked responses decoded), and reading server-sent events.
 * Everything stays on 127.0.0.1 and every wait is bounded. */
#ifndef RB_SERVE_CLIENT_H
#define RB_SERVE_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runtime/json.h"

static double sc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static void sc_sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* build/rbee beside build/tests/<this test> (build-asan/rbee for the sanitizer build). */
static const char *sc_rbee_path(void) {
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 16);
    if (n <= 0) return "build/rbee";
    path[n] = 0;
    char *slash = strrchr(path, '/');
    if (slash) *slash = 0; /* .../build/tests */
    slash = strrchr(path, '/');
    if (slash) strcpy(slash, "/rbee");
    return path;
}

/* ------------------------------------------------------------ the server process */

struct sc_server {
    pid_t pid;
    int port, log_fd, reading;
    pthread_t reader;
    pthread_mutex_t mu;
    char log[1 << 18];
    size_t log_len;
};

static void sc_log_append(struct sc_server *s, const char *p, size_t n) {
    pthread_mutex_lock(&s->mu);
    if (s->log_len + n >= sizeof s->log) n = sizeof s->log - 1 - s->log_len;
    memcpy(s->log + s->log_len, p, n);
    s->log_len += n;
    s->log[s->log_len] = 0;
    pthread_mutex_unlock(&s->mu);
}

static void *sc_log_reader(void *arg) {
    struct sc_server *s = arg;
    char buf[4096];
    ssize_t k;
    while ((k = read(s->log_fd, buf, sizeof buf)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0) sc_log_append(s, buf, (size_t)k);
    return NULL;
}

static int sc_log_has(struct sc_server *s, const char *needle) {
    pthread_mutex_lock(&s->mu);
    int yes = strstr(s->log, needle) != NULL;
    pthread_mutex_unlock(&s->mu);
    return yes;
}

/* The end of the server's log, to show why a test failed. */
static void sc_print_log(struct sc_server *s, const char *name) {
    pthread_mutex_lock(&s->mu);
    size_t from = s->log_len > 4000 ? s->log_len - 4000 : 0;
    printf("  ---- %s server log (last %zu bytes):\n%s\n  ----\n", name, s->log_len - from, s->log + from);
    pthread_mutex_unlock(&s->mu);
}

/* Some line of the log holds both a and b. */
static int sc_log_line_has(struct sc_server *s, const char *a, const char *b) {
    int yes = 0;
    pthread_mutex_lock(&s->mu);
    for (const char *p = s->log; p && *p && !yes;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        const char *x = strstr(p, a), *y = strstr(p, b);
        yes = x && y && x < p + n && y < p + n;
        p = eol ? eol + 1 : NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return yes;
}

/* Start `rbee serve -m model --port 0 extra...` and wait (up to 60 s) for
 * its "listening on" line. Returns 0, or -1 with the log printed. */
static int sc_start(struct sc_server *s, const char *model, const char *const *extra) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    const char *argv[40] = { sc_rbee_path(), "serve", "-m", model, "--host", "127.0.0.1", "--port", "0" };
    int argc = 8;
    for (int i = 0; extra && extra[i] && argc < 39; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    int fds[2];
    if (pipe(fds)) return -1;
    fflush(stdout);
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that dies (killed, SIGPIPE) takes its server along */
#endif
        dup2(fds[1], 2);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    s->log_fd = fds[0];
    double until = sc_now_ms() + 60000;
    const char *mark = "listening on http://127.0.0.1:";
    while (sc_now_ms() < until) {
        struct pollfd p = { s->log_fd, POLLIN, 0 };
        if (poll(&p, 1, 200) > 0) {
            char buf[1024];
            ssize_t k = read(s->log_fd, buf, sizeof buf);
            if (k <= 0) break;
            sc_log_append(s, buf, (size_t)k);
        }
        const char *at = strstr(s->log, mark);
        if (at && strchr(at, '\n')) {
            s->port = atoi(at + strlen(mark));
            s->reading = pthread_create(&s->reader, NULL, sc_log_reader, s) == 0;
            return 0;
        }
    }
    printf("  server did not start: %s\n", s->log);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    close(s->log_fd);
    s->pid = 0;
    return -1;
}

/* Send sig and wait up to timeout_ms for the exit. Returns the exit status,
 * or -1 (killed by a signal, or still running: then SIGKILL). */
static int sc_stop(struct sc_server *s, int sig, int timeout_ms, double *took_ms) {
    if (s->pid <= 0) return -1;
    double t0 = sc_now_ms();
    kill(s->pid, sig);
    int status = 0, rc = -1;
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        if (sc_now_ms() - t0 > timeout_ms) {
            printf("  server still running %d ms after signal %d: killed\n", timeout_ms, sig);
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            break;
        }
        sc_sleep_ms(10);
    }
    if (took_ms) *took_ms = sc_now_ms() - t0;
    if (s->reading) pthread_join(s->reader, NULL);
    close(s->log_fd);
    s->pid = 0;
    return rc;
}

/* ------------------------------------------------------------ HTTP */

static int sc_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

static int sc_send(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

struct sc_resp {
    int status;      /* 0: no response */
    char *raw;       /* everything received */
    size_t raw_len;
    char *body;      /* after the head, chunked encoding removed; NUL-terminated */
    size_t body_len;
    double ms;       /* from sending to the end of the response */
};

static void sc_resp_free(struct sc_resp *r) {
    free(r->raw);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* A header's value in the response head ("" if absent). */
static const char *sc_header(const struct sc_resp *r, const char *name, char *out, size_t cap) {
    out[0] = 0;
    const char *end = r->raw ? strstr(r->raw, "\r\n\r\n") : NULL;
    for (const char *p = r->raw; p && end && p < end; p = strstr(p, "\r\n") + 2) {
        size_t n = strlen(name);
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1, *e = strstr(v, "\r\n");
            while (*v == ' ') v++;
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            break;
        }
    }
    return out;
}

static void sc_parse(struct sc_resp *r) {
    if (!r->raw || r->raw_len < 12 || strncmp(r->raw, "HTTP/1.", 7)) return;
    r->status = atoi(r->raw + 9);
    const char *end = strstr(r->raw, "\r\n\r\n");
    if (!end) return;
    const char *b = end + 4;
    size_t n = r->raw_len - (size_t)(b - r->raw);
    char te[64];
    r->body = malloc(n + 1);
    if (!r->body) return;
    if (strcasecmp(sc_header(r, "Transfer-Encoding", te, sizeof te), "chunked")) {
        memcpy(r->body, b, n);
        r->body_len = n;
    } else {
        const char *p = b, *lim = b + n;
        while (p < lim) {
            char *after;
            unsigned long size = strtoul(p, &after, 16);
            const char *data = strstr(after, "\r\n");
            if (!data || size == 0 || data + 2 + size > lim) break;
            memcpy(r->body + r->body_len, data + 2, size);
            r->body_len += size;
            p = data + 2 + size + 2;
        }
    }
    r->body[r->body_len] = 0;
}

/* The bytes hold one whole response (by Content-Length or the last chunk). */
static int sc_complete(const char *raw, size_t n) {
    const char *end = strstr(raw, "\r\n\r\n");
    if (!end) return 0;
    struct sc_resp tmp = { .raw = (char *)raw, .raw_len = n };
    char v[64];
    if (!strcasecmp(sc_header(&tmp, "Transfer-Encoding", v, sizeof v), "chunked"))
        return n >= 5 && !memcmp(raw + n - 5, "0\r\n\r\n", 5);
    if (!sc_header(&tmp, "Content-Length", v, sizeof v)[0]) return 0; /* ends at the close */
    return n - (size_t)(end + 4 - raw) >= (size_t)atol(v);
}

/* Read from fd until the response is complete (or, with until_close, until
 * the server closes) or timeout_ms passes. */
static void sc_read_until(int fd, struct sc_resp *r, int timeout_ms, int until_close) {
    double until = sc_now_ms() + timeout_ms;
    size_t cap = 1 << 16;
    r->raw = malloc(cap);
    while (r->raw && sc_now_ms() < until) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 50) <= 0) continue;
        if (r->raw_len + 4096 + 1 > cap) {
            char *g = realloc(r->raw, cap *= 2);
            if (!g) break;
            r->raw = g;
        }
        ssize_t k = recv(fd, r->raw + r->raw_len, cap - r->raw_len - 1, 0);
        if (k <= 0) break;
        r->raw_len += (size_t)k;
        r->raw[r->raw_len] = 0;
        if (!until_close && sc_complete(r->raw, r->raw_len)) break;
    }
    if (r->raw) r->raw[r->raw_len] = 0;
    sc_parse(r);
}

static void sc_read_all(int fd, struct sc_resp *r, int timeout_ms) {
    sc_read_until(fd, r, timeout_ms, 0);
}

/* Send raw request bytes on a new connection and read the answer to the end. */
static int sc_exchange(int port, const char *req, size_t n, struct sc_resp *r, int timeout_ms) {
    memset(r, 0, sizeof *r);
    double t0 = sc_now_ms();
    int fd = sc_connect(port);
    if (fd < 0) return -1;
    if (sc_send(fd, req, n) == 0) sc_read_all(fd, r, timeout_ms);
    close(fd);
    r->ms = sc_now_ms() - t0;
    return r->status;
}

/* Connect and send a POST of json to path (Connection: close), with extra
 * header lines ("K: v\r\n..."), without reading the answer: the fd, or -1. */
static int sc_post_send(int port, const char *path, const char *json, const char *extra) {
    size_t n = strlen(json) + 512 + (extra ? strlen(extra) : 0);
    char *req = malloc(n);
    int fd = req ? sc_connect(port) : -1;
    if (fd >= 0) {
        int k = snprintf(req, n, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s", path, strlen(json),
                         extra ? extra : "", json);
        if (sc_send(fd, req, (size_t)k)) {
            close(fd);
            fd = -1;
        }
    }
    free(req);
    return fd;
}

static int sc_post(int port, const char *path, const char *json, const char *extra, struct sc_resp *r) {
    memset(r, 0, sizeof *r);
    double t0 = sc_now_ms();
    int fd = sc_post_send(port, path, json, extra);
    if (fd < 0) return -1;
    sc_read_all(fd, r, 120000);
    close(fd);
    r->ms = sc_now_ms() - t0;
    return r->status;
}

static int sc_get(int port, const char *path, const char *extra, struct sc_resp *r) {
    char req[1024];
    int k = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n", path,
                     extra ? extra : "");
    return sc_exchange(port, req, (size_t)k, r, 30000);
}

/* ------------------------------------------------------------ JSON */

/* root.a.0.b: object members by name, array elements by index. */
static const struct rb_json *sc_json_at(const struct rb_json *v, const char *path) {
    char key[64];
    while (v && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        path += n + (path[n] == '.');
        if (v->type == RB_JSON_ARRAY) {
            long i = strtol(key, NULL, 10);
            for (v = v->child; v && i > 0; i--) v = v->next;
        } else {
            v = rb_json_get(v, key);
        }
    }
    return v;
}

static const char *sc_json_str(const struct rb_json *root, const char *path) {
    const struct rb_json *v = sc_json_at(root, path);
    return v && v->type == RB_JSON_STRING ? v->str : NULL;
}

static double sc_json_num(const struct rb_json *root, const char *path) {
    const struct rb_json *v = sc_json_at(root, path);
    return v && v->type == RB_JSON_NUMBER ? v->number : -1;
}

/* ------------------------------------------------------------ server-sent events */

struct sc_stream {
    int n_events, n_bad, done_last; /* done_last: "data: [DONE]" was the last event */
    char text[1 << 15];             /* choices[0].text / delta.content, concatenated */
    size_t len;
    char finish[16];                /* the last non-null finish_reason */
    int completion_tokens, prompt_tokens, cached_tokens, has_error;
};

/* Read the events of a streamed body: every event must be JSON (or [DONE]). */
static void sc_read_stream(const char *body, int chat, struct sc_stream *st) {
    memset(st, 0, sizeof *st);
    st->completion_tokens = st->prompt_tokens = st->cached_tokens = -1;
    for (const char *p = body; p && *p;) {
        const char *eol = strstr(p, "\n\n");
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (n > 6 && !strncmp(p, "data: ", 6)) {
            st->n_events++;
            st->done_last = n == 12 && !strncmp(p + 6, "[DONE]", 6);
            struct rb_json_doc *d = NULL;
            char err[RB_JSON_ERR_MAX];
            if (!st->done_last && rb_json_parse(p + 6, n - 6, 0, &d, err)) st->n_bad++;
            if (d) {
                const struct rb_json *root = rb_json_root(d);
                const char *t = sc_json_str(root, chat ? "choices.0.delta.content" : "choices.0.text");
                const char *f = sc_json_str(root, "choices.0.finish_reason");
                if (t && st->len + strlen(t) < sizeof st->text) {
                    memcpy(st->text + st->len, t, strlen(t) + 1);
                    st->len += strlen(t);
                }
                if (f) snprintf(st->finish, sizeof st->finish, "%s", f);
                if (sc_json_at(root, "usage.completion_tokens")) {
                    st->completion_tokens = (int)sc_json_num(root, "usage.completion_tokens");
                    st->prompt_tokens = (int)sc_json_num(root, "usage.prompt_tokens");
                    st->cached_tokens = (int)sc_json_num(root, "usage.prompt_tokens_details.cached_tokens");
                }
                if (sc_json_at(root, "error")) st->has_error = 1;
                rb_json_free(d);
            }
        } else if (n > 0) {
            st->n_bad++;
        }
        p = eol ? eol + 2 : NULL;
    }
}

#endif
