/* cli_serve.c - `rbee serve`: an OpenAI-compatible HTTP server over libc
 * sockets and pthreads (see cli_serve.h for how the files divide).
 *
 * Everything from the socket is untrusted. A request must arrive whole
 * within --timeout seconds (a slow client gets 408); its head is parsed by
 * cli_http.c within size limits and its body is read only when it is within
 * --max-body (else 413 without reading it). A connection's thread answers
 * its requests in turn (keep-alive); connections past a bound get 503 at
 * once. SIGINT/SIGTERM stop accepting, cancel running generations, let the
 * connection threads finish, and exit 0.
 */
#define _DEFAULT_SOURCE /* gmtime_r, NI_MAXHOST under strict C11 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_serve.h"

/* ------------------------------------------------------------ options */

static void usage(FILE *out) {
    fprintf(out,
        "usage: rbee serve -m MODEL [options]\n\n"
        "Serve the model over HTTP with the OpenAI API: GET /health, GET /v1/models,\n"
        "POST /v1/completions, POST /v1/chat/completions (\"stream\": true for server-sent\n"
        "events). One line per request goes to stderr.\n\n"
        "  -m, --model FILE        GGUF model\n"
        "  --host ADDR             address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)\n"
        "  --port N                TCP port (default 8080; 0: any free port, printed at start)\n"
        "  -np, --parallel N       requests generated at once, one context each (default 1)\n"
        "  -c, --ctx-size N        context size of each slot (default min(model context, 4096))\n"
        "  -t, --threads N         threads of each slot (default: online CPUs / parallel)\n"
        "  --api-key KEY           require \"Authorization: Bearer KEY\" (all but /health)\n"
        "  --queue N               requests that may wait for a slot (default 64; more get 503)\n"
        "  --max-body N            largest request body in bytes (default 8388608; more get 413)\n"
        "  --timeout S             seconds a client has to send a request, and to take each\n"
        "                          write of the answer (default 30)\n"
        "  --chat-template NAME    chat template for /v1/chat/completions (default: the model's\n"
        "                          tokenizer.chat_template, else chatml)\n"
        "  --kv-type T             KV cache type for K and V: f32, f16 (default), q8_0, q4_0\n"
        "  -ctk T, -ctv T          KV cache type for K / V alone\n");
}

static int parse_opts(int argc, char **argv, struct srv_opts *o, int *help) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->parallel = 1;
    o->queue = 64;
    o->timeout_s = 30;
    o->max_body = 8u << 20;
    *help = 0;
    int threads_set = 0;
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { *help = 1; return 0; }
        if (a[0] != '-') return cli_fail(a, "unexpected argument");
        if (!v) return cli_fail(a, "missing value (see --help)");
        int rc = 0, big = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--host")) o->host = v;
        else if (!strcmp(a, "--port")) rc = cli_parse_int(a, v, 0, 65535, &o->port);
        else if (!strcmp(a, "-np") || !strcmp(a, "--parallel")) rc = cli_parse_int(a, v, 1, 256, &o->parallel);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) rc = cli_parse_int(a, v, 0, 1 << 24, &o->n_ctx);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) { rc = cli_parse_int(a, v, 1, 1024, &o->n_threads); threads_set = 1; }
        else if (!strcmp(a, "--api-key")) o->api_key = v;
        else if (!strcmp(a, "--queue")) rc = cli_parse_int(a, v, 0, 65536, &o->queue);
        else if (!strcmp(a, "--max-body")) rc = cli_parse_int(a, v, 1, 1 << 30, &big);
        else if (!strcmp(a, "--timeout")) rc = cli_parse_int(a, v, 1, 3600, &o->timeout_s);
        else if (!strcmp(a, "--chat-template")) o->chat_template = v;
        else if (!strcmp(a, "--kv-type")) o->type_k = o->type_v = v;
        else if (!strcmp(a, "-ctk") || !strcmp(a, "--cache-type-k")) o->type_k = v;
        else if (!strcmp(a, "-ctv") || !strcmp(a, "--cache-type-v")) o->type_v = v;
        else return cli_fail(a, "unknown option (see --help)");
        if (rc) return rc;
        if (big) o->max_body = (uint64_t)big;
    }
    if (!o->model) return cli_fail("-m", "a model file is required (see --help)");
    if (o->api_key && !o->api_key[0]) return cli_fail("--api-key", "the key is empty");
    if (!threads_set) {
        long n_cpu = sysconf(_SC_NPROCESSORS_ONLN);
        long t = (n_cpu < 1 ? 1 : n_cpu) / o->parallel;
        o->n_threads = t < 1 ? 1 : t > 64 ? 64 : (int)t;
    }
    return 0;
}

/* ------------------------------------------------------------ time */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ writing */

static void mark_gone(struct srv_conn *c) {
    c->gone = 1;
    c->keep_alive = 0;
}

int srv_send(struct srv_conn *c, const void *p, size_t n) {
    const char *b = p;
    while (n > 0 && !c->gone) {
        /* MSG_NOSIGNAL: a closed peer is an error here, not a SIGPIPE */
        ssize_t k = send(c->fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) { /* also SO_SNDTIMEO running out: a client that does not read */
            mark_gone(c);
            break;
        }
        b += k;
        n -= (size_t)k;
    }
    return c->gone ? -1 : 0;
}

int srv_peer_closed(int fd) {
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return 1;
    /* readable: either a pipelined request (data) or the end of the stream */
    char byte;
    ssize_t k = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

int srv_client_gone(struct srv_conn *c) {
    if (!c->gone && srv_peer_closed(c->fd)) mark_gone(c);
    return c->gone;
}

static void put_head(struct srv_conn *c, struct rb_buf *b, int status, const char *content_type) {
    c->status = status;
    rb_buf_printf(b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nConnection: %s\r\n", status, rb_http_reason(status),
                  content_type, c->keep_alive && !atomic_load(&c->srv->stopping) ? "keep-alive" : "close");
    if (status == 405) rb_buf_puts(b, "Allow: ");
    if (status == 405) rb_buf_puts(b, c->allow);
    if (status == 405) rb_buf_puts(b, "\r\n");
    if (status == 401) rb_buf_puts(b, "WWW-Authenticate: Bearer\r\n");
}

int srv_respond(struct srv_conn *c, int status, const char *content_type, const char *body, size_t n) {
    struct rb_buf b = { 0 };
    put_head(c, &b, status, content_type);
    rb_buf_printf(&b, "Content-Length: %zu\r\n\r\n", n);
    rb_buf_add(&b, body, n);
    int rc = b.failed ? (mark_gone(c), -1) : srv_send(c, b.data, b.len);
    rb_buf_free(&b);
    c->sent_head = 1;
    return rc;
}

static const char *error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 501: return "not_supported_error";
    case 503: return "unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

int srv_error(struct srv_conn *c, int status, const char *param, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->log_extra, sizeof c->log_extra, "error: %.140s", msg);
    struct rb_buf b = { 0 };
    rb_buf_puts(&b, "{\"error\":{\"message\":");
    rb_json_put_string(&b, msg, strlen(msg));
    rb_buf_printf(&b, ",\"type\":\"%s\",\"param\":", error_type(status));
    if (param) rb_json_put_string(&b, param, strlen(param));
    else rb_buf_puts(&b, "null");
    rb_buf_printf(&b, ",\"code\":%d}}", status);
    int rc;
    if (b.failed) rc = -1;
    else if (c->sent_head) rc = srv_stream_event(c, b.data, b.len); /* mid-stream: the status is already 200 */
    else rc = srv_respond(c, status, "application/json", b.data, b.len);
    rb_buf_free(&b);
    return rc;
}

int srv_stream_begin(struct srv_conn *c) {
    struct rb_buf b = { 0 };
    if (c->http10) c->keep_alive = 0; /* no chunked encoding: the body ends when the connection does */
    put_head(c, &b, 200, "text/event-stream");
    rb_buf_puts(&b, c->http10 ? "Cache-Control: no-cache\r\n\r\n" : "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n");
    int rc = b.failed ? (mark_gone(c), -1) : srv_send(c, b.data, b.len);
    rb_buf_free(&b);
    c->sent_head = 1;
    return rc;
}

int srv_stream_event(struct srv_conn *c, const char *data, size_t n) {
    struct rb_buf b = { 0 };
    if (!c->http10) rb_buf_printf(&b, "%zx\r\n", n + 8);
    rb_buf_puts(&b, "data: ");
    rb_buf_add(&b, data, n);
    rb_buf_puts(&b, "\n\n");
    if (!c->http10) rb_buf_puts(&b, "\r\n");
    int rc = b.failed ? (mark_gone(c), -1) : srv_send(c, b.data, b.len);
    rb_buf_free(&b);
    return rc;
}

int srv_stream_end(struct srv_conn *c) {
    static const char done[] = "[DONE]";
    if (srv_stream_event(c, done, sizeof done - 1)) return -1;
    return c->http10 ? 0 : srv_send(c, "0\r\n\r\n", 5);
}

/* ------------------------------------------------------------ reading */

/* Room for want bytes in c->buf. */
static int reserve(struct srv_conn *c, size_t want) {
    if (want <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < want) cap *= 2;
    char *p = realloc(c->buf, cap);
    if (!p) return -1;
    c->buf = p;
    c->cap = cap;
    return 0;
}

enum { READ_OK = 1, READ_EOF = 0, READ_TIMEOUT = -1, READ_STOP = -2, READ_ERROR = -3 };

/* Receive more bytes (up to c->cap) before the deadline; polls in short
 * slices so that a stop is noticed while a keep-alive connection idles. */
static int read_more(struct srv_conn *c, double deadline) {
    for (;;) {
        if (atomic_load(&c->srv->stopping)) return READ_STOP;
        double left = deadline - now_ms();
        if (left <= 0) return READ_TIMEOUT;
        struct pollfd p = { c->fd, POLLIN, 0 };
        int r = poll(&p, 1, left < 100 ? (int)left + 1 : 100);
        if (r < 0 && errno != EINTR) return READ_ERROR;
        if (r <= 0) continue;
        ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k < 0) return READ_ERROR;
        if (k == 0) return READ_EOF;
        c->len += (size_t)k;
        return READ_OK;
    }
}

/* ------------------------------------------------------------ routing */

enum route { R_NONE, R_HEALTH, R_MODELS, R_COMPLETIONS, R_CHAT };

static enum route find_route(struct rb_http_str path, const char **method) {
    static const struct { const char *path, *method; enum route r; } routes[] = {
        { "/health", "GET", R_HEALTH },
        { "/v1/models", "GET", R_MODELS },
        { "/v1/completions", "POST", R_COMPLETIONS },
        { "/v1/chat/completions", "POST", R_CHAT },
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (path.n == strlen(routes[i].path) && !memcmp(path.p, routes[i].path, path.n)) {
            *method = routes[i].method;
            return routes[i].r;
        }
    return R_NONE;
}

/* "Authorization: Bearer KEY", compared in time independent of where it differs. */
static int authorized(const struct srv *s, const struct rb_http_request *req) {
    if (!s->o.api_key) return 1;
    const struct rb_http_str *h = rb_http_header(req, "authorization");
    if (!h || h->n < 7 || !rb_http_str_ieq((struct rb_http_str){ h->p, 7 }, "bearer ")) return 0;
    const char *k = h->p + 7, *want = s->o.api_key;
    size_t n = h->n - 7, wn = strlen(want);
    while (n > 0 && *k == ' ') k++, n--;
    unsigned diff = n != wn;
    for (size_t i = 0; i < wn; i++) diff |= (unsigned char)want[i] ^ (unsigned char)(i < n ? k[i] : 0);
    return diff == 0;
}

/* ------------------------------------------------------------ a request */

static void log_request(struct srv_conn *c, const struct rb_http_request *req, double t0) {
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int mn = req && req->method.n ? (int)req->method.n : 1, pn = req && req->target.n ? (int)req->target.n : 1;
    fprintf(stderr, "%s %s \"%.*s %.*s\" %d %.1f ms%s%s\n", when, c->peer, mn > 16 ? 16 : mn,
            req && req->method.n ? req->method.p : "-", pn > 120 ? 120 : pn, req && req->target.n ? req->target.p : "-",
            c->status, now_ms() - t0, c->log_extra[0] ? " " : "", c->log_extra);
}

/* Serve one request. Returns 0 when the connection may carry another. */
static int serve_one(struct srv_conn *c) {
    struct srv *s = c->srv;
    struct rb_http_limits lim = rb_http_default_limits();
    lim.max_body = s->o.max_body;
    struct rb_http_request *req = &c->req;
    int status = 0;
    char err[RB_HTTP_ERR_MAX];
    /* an idle keep-alive connection waits --timeout for its next request */
    double deadline = now_ms() + 1e3 * s->o.timeout_s, t0 = now_ms();
    c->status = 0;
    c->sent_head = 0;
    c->log_extra[0] = 0;
    c->keep_alive = 0;
    c->http10 = 0;
    int rc;
    while ((rc = rb_http_parse(c->buf, c->len, &lim, req, &status, err)) == 0) {
        if (reserve(c, lim.max_head)) return 1;
        size_t had = c->len;
        int r = read_more(c, deadline);
        if (r == READ_OK && had == 0) { /* the request's own clock starts at its first byte */
            t0 = now_ms();
            deadline = t0 + 1e3 * s->o.timeout_s;
        }
        if (r == READ_OK) continue;
        if (c->len == 0 || r != READ_TIMEOUT) return 1; /* closed, idle or stopping: close quietly */
        srv_error(c, 408, NULL, "the request did not arrive within %d s", s->o.timeout_s);
        log_request(c, NULL, t0);
        return 1;
    }
    if (rc < 0) {
        srv_error(c, status, NULL, "%s", err);
        log_request(c, NULL, t0);
        return 1;
    }
    c->http10 = req->version == 10;
    const char *method = NULL;
    enum route route = find_route(req->path, &method);
    /* an answer before the body is read closes the connection, unless there is no body */
    c->keep_alive = req->keep_alive && req->content_length == 0;
    if (route == R_NONE) {
        srv_error(c, 404, NULL, "no such endpoint: %.*s", (int)(req->path.n > 200 ? 200 : req->path.n), req->path.p);
    } else if (!rb_http_str_ieq(req->method, method)) {
        snprintf(c->allow, sizeof c->allow, "%s", method);
        srv_error(c, 405, NULL, "%.*s takes %s, not %.*s", (int)req->path.n, req->path.p, method,
                  (int)(req->method.n > 16 ? 16 : req->method.n), req->method.p);
    } else if (route != R_HEALTH && !authorized(s, req)) {
        srv_error(c, 401, NULL, "invalid or missing API key (send \"Authorization: Bearer KEY\")");
    } else {
        size_t need = req->head_len + (size_t)req->content_length;
        if (reserve(c, need)) {
            srv_error(c, 500, NULL, "out of memory for a body of %zu bytes", (size_t)req->content_length);
            log_request(c, req, t0);
            return 1;
        }
        if (req->expect_continue && c->len < need && srv_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25)) return 1;
        while (c->len < need) {
            int r = read_more(c, deadline);
            if (r == READ_OK) continue;
            if (r == READ_TIMEOUT) {
                srv_error(c, 408, NULL, "the request body did not arrive within %d s", s->o.timeout_s);
                log_request(c, req, t0);
            }
            return 1;
        }
        c->keep_alive = req->keep_alive;
        const char *body = c->buf + req->head_len;
        size_t n = (size_t)req->content_length;
        if (route == R_HEALTH) {
            static const char ok[] = "{\"status\":\"ok\"}";
            srv_respond(c, 200, "application/json", ok, sizeof ok - 1);
        } else if (route == R_MODELS) {
            srv_api_models(c);
        } else {
            srv_api_generate(c, body, n, route == R_CHAT);
        }
    }
    log_request(c, req, t0);
    /* the request is done: keep what a pipelining client sent after it (an
     * unread body closes the connection, so only its head is dropped then) */
    size_t used = req->head_len + (c->keep_alive ? (size_t)req->content_length : 0);
    if (used > c->len) used = c->len;
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    if (c->cap > (64u << 10) && c->len <= (16u << 10)) { /* an idle connection keeps no big body */
        char *p = realloc(c->buf, 16u << 10);
        if (p) {
            c->buf = p;
            c->cap = 16u << 10;
        }
    }
    return !c->keep_alive || c->gone || atomic_load(&s->stopping);
}

/* ------------------------------------------------------------ connections */

static void *conn_main(void *arg) {
    struct srv_conn *c = arg;
    struct srv *s = c->srv;
    while (!serve_one(c)) {}
    /* a lingering close: let the client read our last answer before the
     * unread rest of its request would turn the close into a reset */
    shutdown(c->fd, SHUT_WR);
    char sink[4096];
    double until = now_ms() + 1000;
    struct pollfd p = { c->fd, POLLIN, 0 };
    for (size_t total = 0; total < (1u << 20) && now_ms() < until && poll(&p, 1, 100) >= 0;) {
        if (!(p.revents & POLLIN)) {
            if (p.revents) break;
            continue;
        }
        ssize_t k = recv(c->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (k <= 0) break;
        total += (size_t)k;
    }
    close(c->fd);
    free(c->buf);
    free(c);
    pthread_mutex_lock(&s->mu);
    s->n_conns--;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void peer_name(int fd, const struct sockaddr_storage *sa, socklen_t len, char *out, size_t cap) {
    char host[NI_MAXHOST], port[NI_MAXSERV];
    (void)fd;
    if (getnameinfo((const struct sockaddr *)sa, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV))
        snprintf(out, cap, "?");
    else
        snprintf(out, cap, sa->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

/* Answer 503 to a connection over the bound, without a thread. */
static void refuse_busy(int fd) {
    static const char body[] = "{\"error\":{\"message\":\"too many connections\",\"type\":\"unavailable_error\","
                               "\"param\":null,\"code\":503}}";
    char msg[512];
    int n = snprintf(msg, sizeof msg, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", sizeof body - 1, body);
    if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) { /* nothing more to do for it */ }
    close(fd);
}

static void start_conn(struct srv *s, int fd, const struct sockaddr_storage *sa, socklen_t len) {
    pthread_mutex_lock(&s->mu);
    int full = s->n_conns >= s->max_conns;
    if (!full) s->n_conns++;
    pthread_mutex_unlock(&s->mu);
    if (full) {
        refuse_busy(fd);
        return;
    }
    struct srv_conn *c = calloc(1, sizeof *c);
    struct timeval tv = { s->o.timeout_s, 0 };
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* streamed tokens go out at once */
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (c) {
        c->srv = s;
        c->fd = fd;
        peer_name(fd, sa, len, c->peer, sizeof c->peer);
    }
    if (!c || pthread_create(&t, &attr, conn_main, c)) {
        free(c);
        refuse_busy(fd);
        pthread_mutex_lock(&s->mu);
        s->n_conns--;
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_attr_destroy(&attr);
}

/* ------------------------------------------------------------ stopping */

struct stopper {
    struct srv *srv;
    sigset_t set;
    int wake_fd;        /* written once: the accept loop polls its other end */
    atomic_int done;    /* the server has stopped: the next signal only ends this thread */
};

/* Waits for SIGINT or SIGTERM (blocked in every thread), then stops: no new
 * connections, running generations cancelled. A second signal while the
 * connections finish exits at once. */
static void *stop_main(void *arg) {
    struct stopper *st = arg;
    for (int n = 0;; n++) {
        int sig = 0;
        sigwait(&st->set, &sig);
        if (atomic_load(&st->done)) return NULL;
        const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
        if (n > 0) {
            fprintf(stderr, "rbee serve: a second %s: exiting without waiting\n", name);
            _exit(1);
        }
        if (!atomic_exchange(&st->srv->stopping, 1)) fprintf(stderr, "rbee serve: %s: stopping\n", name);
        srv_slots_cancel_all(st->srv);
        if (write(st->wake_fd, "x", 1) < 0) { /* the accept loop also polls the stop flag */ }
    }
}

/* ------------------------------------------------------------ listening */

static int listen_on(const struct srv_opts *o, int *port_out) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[16], why[300];
    snprintf(port, sizeof port, "%d", o->port);
    int rc = getaddrinfo(o->host, port, &hints, &res);
    if (rc) {
        snprintf(why, sizeof why, "cannot resolve: %s", gai_strerror(rc));
        cli_fail("--host", why);
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) { e = errno; continue; }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(why, sizeof why, "cannot listen on %s port %d: %s", o->host, o->port, strerror(e));
        cli_fail("--port", why);
        return -1;
    }
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    *port_out = o->port;
    if (!getsockname(fd, (struct sockaddr *)&sa, &len))
        *port_out = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                   : ((struct sockaddr_in *)&sa)->sin_port);
    return fd;
}

static void accept_loop(struct srv *s, int lfd, int wake_fd) {
    while (!atomic_load(&s->stopping)) {
        struct pollfd p[2] = { { lfd, POLLIN, 0 }, { wake_fd, POLLIN, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[1].revents) break;
        if (!(p[0].revents & POLLIN)) continue;
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        int fd = accept(lfd, (struct sockaddr *)&sa, &len);
        if (fd < 0) {
            /* out of descriptors or memory: back off a little rather than spin */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) usleep(100 * 1000);
            continue;
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        start_conn(s, fd, &sa, len);
    }
}

/* ------------------------------------------------------------ command */

static void model_id(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    snprintf(out, cap, "%s", slash ? slash + 1 : path);
}

int cli_serve(int argc, char **argv) {
    struct srv_opts o;
    int help;
    if (parse_opts(argc, argv, &o, &help)) return 1;
    if (help) {
        usage(stdout);
        return 0;
    }
    /* every thread started from here on inherits the mask: only stop_main takes the signals */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    /* sockets are written with MSG_NOSIGNAL; a closed stderr must not kill the server either */
    struct sigaction ignore = { .sa_handler = SIG_IGN }, old_pipe;
    sigaction(SIGPIPE, &ignore, &old_pipe);

    struct srv *s = calloc(1, sizeof *s);
    char err[RBEE_ERR_MAX];
    int rc = 1, lfd = -1, pipe_fd[2] = { -1, -1 }, port = 0;
    if (!s) {
        cli_fail("serve", "out of memory");
        goto out_mask;
    }
    s->o = o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->changed, NULL);
    s->max_conns = o.parallel + o.queue + 64;
    s->started = (long long)time(NULL);
    model_id(o.model, s->model_id, sizeof s->model_id);
    if (rbee_model_load(&s->model, o.model, err)) {
        cli_fail(o.model, err);
        goto out;
    }
    if (srv_api_init(s)) goto out;
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = o.n_ctx;
    cp.n_threads = o.n_threads;
    cp.type_k = o.type_k;
    cp.type_v = o.type_v;
    if (srv_slots_init(s, &cp, err)) {
        cli_fail("context", err);
        goto out;
    }
    if ((lfd = listen_on(&o, &port)) < 0) goto out;
    if (pipe(pipe_fd)) {
        cli_fail("serve", strerror(errno));
        goto out;
    }
    struct stopper st = { .srv = s, .set = set, .wake_fd = pipe_fd[1] };
    pthread_t stop_thread;
    if (pthread_create(&stop_thread, NULL, stop_main, &st)) {
        cli_fail("serve", "cannot start a thread");
        goto out;
    }
    pthread_t watch_thread;
    int watching = pthread_create(&watch_thread, NULL, srv_watch_main, s) == 0;
    fprintf(stderr, "rbee serve: listening on http://%s%s%s:%d (model %s; %d slot%s of %d tokens, %d thread%s each%s)\n",
            strchr(o.host, ':') ? "[" : "", o.host, strchr(o.host, ':') ? "]" : "", port, s->model_id, o.parallel,
            o.parallel == 1 ? "" : "s", s->n_ctx, o.n_threads, o.n_threads == 1 ? "" : "s",
            o.api_key ? "; API key required" : "");
    if (s->chat_note)
        fprintf(stderr, "rbee serve: %s: chat requests use chatml (--chat-template NAME chooses another)\n",
                s->chat_note);
    if (!o.api_key && strcmp(o.host, "localhost") && strncmp(o.host, "127.", 4) && strcmp(o.host, "::1"))
        fprintf(stderr, "rbee serve: warning: listening on %s without --api-key: whoever reaches this port "
                "can use the model\n", o.host);
    accept_loop(s, lfd, pipe_fd[0]);
    close(lfd);
    lfd = -1;
    if (!atomic_exchange(&s->stopping, 1)) srv_slots_cancel_all(s); /* the loop broke on its own */
    if (watching) pthread_join(watch_thread, NULL);
    /* wait for the connections: they see the stop within 100 ms, a running
     * generation within one token, a blocked write within --timeout */
    pthread_mutex_lock(&s->mu);
    while (s->n_conns > 0) pthread_cond_wait(&s->changed, &s->mu);
    pthread_mutex_unlock(&s->mu);
    atomic_store(&st.done, 1);
    pthread_kill(stop_thread, SIGTERM);
    pthread_join(stop_thread, NULL);
    fprintf(stderr, "rbee serve: stopped\n");
    rc = 0;
out:
    if (lfd >= 0) close(lfd);
    if (pipe_fd[0] >= 0) close(pipe_fd[0]);
    if (pipe_fd[1] >= 0) close(pipe_fd[1]);
    srv_slots_free(s);
    rbee_model_free(s->model);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->mu);
    free(s);
out_mask:
    sigaction(SIGPIPE, &old_pipe, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
