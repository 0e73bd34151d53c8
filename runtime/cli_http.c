/* cli_http.c - the HTTP/1.x request head parser (see cli_http.h).
 * Grammar references are to RFC 9110 (semantics) and RFC 9112 (HTTP/1.1). */
#include <stdio.h>
#include <string.h>

#include "cli_http.h"

struct rb_http_limits rb_http_default_limits(void) {
    struct rb_http_limits l = { 16 * 1024, 64, 8u << 20 };
    return l;
}

/* ------------------------------------------------------------ characters */

/* tchar (RFC 9110 5.6.2): the characters of methods and field names. */
static int is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / obs-text, plus SP and HTAB inside a value (RFC 9110 5.5):
 * every control byte, NUL, CR and LF included, is refused. */
static int is_field_char(unsigned char c) {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static char lower(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int rb_http_str_ieq(struct rb_http_str s, const char *lit) {
    size_t n = strlen(lit);
    if (s.n != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s.p[i]) != lower(lit[i])) return 0;
    return 1;
}

const struct rb_http_str *rb_http_header(const struct rb_http_request *req, const char *name) {
    for (int i = 0; i < req->n_headers; i++)
        if (rb_http_str_ieq(req->headers[i].name, name)) return &req->headers[i].value;
    return NULL;
}

/* ------------------------------------------------------------ lines */

static int refuse(int *status, int code, char *err, const char *why) {
    *status = code;
    snprintf(err, RB_HTTP_ERR_MAX, "%s", why);
    return -1;
}

/* The line starting at pos: [*start, *start + *n) without its LF or CRLF,
 * *next just past the LF. 0 if buf holds no LF after pos yet. A CR not
 * followed by LF stays in the line, where the character checks refuse it. */
static int next_line(const char *buf, size_t len, size_t pos, size_t *n, size_t *next) {
    if (pos >= len) return 0; /* buf may be NULL when len is 0 */
    const char *lf = memchr(buf + pos, '\n', len - pos);
    if (!lf) return 0;
    size_t end = (size_t)(lf - buf);
    *next = end + 1;
    if (end > pos && buf[end - 1] == '\r') end--;
    *n = end - pos;
    return 1;
}

/* ------------------------------------------------------------ request line */

/* method SP request-target SP HTTP-version (RFC 9112 3), one space each. */
static int parse_request_line(const char *s, size_t n, struct rb_http_request *req, int *status, char *err) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i])) i++;
    if (i == 0 || i == n || s[i] != ' ')
        return refuse(status, 400, err, "malformed request line (expected METHOD /path HTTP/1.1)");
    req->method = (struct rb_http_str){ s, i };
    size_t t = ++i;
    while (i < n && (unsigned char)s[i] > 0x20 && (unsigned char)s[i] < 0x7f) i++;
    if (i == t || i == n || s[i] != ' ')
        return refuse(status, 400, err, "malformed request line (expected METHOD /path HTTP/1.1)");
    req->target = (struct rb_http_str){ s + t, i - t };
    const char *v = s + i + 1;
    size_t vn = n - i - 1;
    if (vn != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
        return refuse(status, 400, err, "malformed HTTP version in the request line");
    if (v[5] != '1') return refuse(status, 505, err, "only HTTP/1.0 and HTTP/1.1 are served");
    /* a higher minor version is read as the highest we speak (RFC 9110 6.2) */
    req->version = v[7] == '0' ? 10 : 11;
    const struct rb_http_str tg = req->target;
    if (tg.p[0] != '/') return refuse(status, 400, err, "the request target must be a path starting with '/'");
    if (memchr(tg.p, '#', tg.n)) return refuse(status, 400, err, "a fragment ('#') in the request target");
    const char *q = memchr(tg.p, '?', tg.n);
    size_t pn = q ? (size_t)(q - tg.p) : tg.n;
    req->path = (struct rb_http_str){ tg.p, pn };
    req->query = q ? (struct rb_http_str){ q + 1, tg.n - pn - 1 } : (struct rb_http_str){ tg.p + tg.n, 0 };
    return 0;
}

/* ------------------------------------------------------------ fields */

/* field-name ":" OWS field-value OWS (RFC 9112 5). */
static int parse_field(const char *s, size_t n, struct rb_http_field *f, int *status, char *err) {
    if (s[0] == ' ' || s[0] == '\t')
        return refuse(status, 400, err, "a folded header line (obsolete line folding is refused)");
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i])) i++;
    if (i == 0 || i == n || s[i] != ':') {
        if (i < n && (s[i] == ' ' || s[i] == '\t'))
            return refuse(status, 400, err, "whitespace between a header name and its colon");
        return refuse(status, 400, err, "malformed header line (expected Name: value)");
    }
    f->name = (struct rb_http_str){ s, i };
    size_t a = i + 1, b = n;
    for (size_t k = a; k < n; k++)
        if (!is_field_char((unsigned char)s[k])) return refuse(status, 400, err, "a control character in a header value");
    while (a < b && (s[a] == ' ' || s[a] == '\t')) a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t')) b--;
    f->value = (struct rb_http_str){ s + a, b - a };
    return 0;
}

/* Calls fn for each element of a comma-separated list (RFC 9110 5.6.1),
 * trimmed; empty elements are passed too, for the caller to judge. Stops at
 * a non-zero return. */
static int for_each_element(struct rb_http_str v, int (*fn)(struct rb_http_str e, void *u), void *u) {
    size_t a = 0;
    for (size_t i = 0; i <= v.n; i++) {
        if (i < v.n && v.p[i] != ',') continue;
        size_t x = a, y = i;
        while (x < y && (v.p[x] == ' ' || v.p[x] == '\t')) x++;
        while (y > x && (v.p[y - 1] == ' ' || v.p[y - 1] == '\t')) y--;
        int rc = fn((struct rb_http_str){ v.p + x, y - x }, u);
        if (rc) return rc;
        a = i + 1;
    }
    return 0;
}

struct length_state {
    int seen, too_big;
    uint64_t value;
};

/* One Content-Length element: 1*DIGIT, equal to every other one. */
static int length_element(struct rb_http_str e, void *u) {
    struct length_state *st = u;
    if (e.n == 0) return 1;
    uint64_t v = 0;
    int big = 0;
    for (size_t i = 0; i < e.n; i++) {
        if (e.p[i] < '0' || e.p[i] > '9') return 1;
        unsigned d = (unsigned)(e.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) big = 1;
        else v = v * 10 + d;
    }
    if (st->seen && (big != st->too_big || v != st->value)) return 1;
    st->seen = 1;
    st->too_big = big;
    st->value = v;
    return 0;
}

struct connection_state {
    int close, keep_alive;
};

static int connection_element(struct rb_http_str e, void *u) {
    struct connection_state *st = u;
    if (rb_http_str_ieq(e, "close")) st->close = 1;
    else if (rb_http_str_ieq(e, "keep-alive")) st->keep_alive = 1;
    return 0;
}

/* What the fields mean for reading the body and the connection. */
static int check_fields(struct rb_http_request *req, const struct rb_http_limits *lim, int *status, char *err) {
    struct length_state len = { 0, 0, 0 };
    struct connection_state conn = { 0, 0 };
    int hosts = 0;
    for (int i = 0; i < req->n_headers; i++) {
        struct rb_http_str name = req->headers[i].name, value = req->headers[i].value;
        if (rb_http_str_ieq(name, "transfer-encoding"))
            return refuse(status, 501, err, "Transfer-Encoding (chunked bodies) is not supported: send Content-Length");
        if (rb_http_str_ieq(name, "content-length")) {
            if (for_each_element(value, length_element, &len))
                return refuse(status, 400, err, "Content-Length is not one non-negative integer");
        } else if (rb_http_str_ieq(name, "host")) {
            hosts++;
        } else if (rb_http_str_ieq(name, "connection")) {
            for_each_element(value, connection_element, &conn);
        } else if (rb_http_str_ieq(name, "expect") && req->version == 11) {
            /* an HTTP/1.0 client's expectation is ignored (RFC 9110 10.1.1) */
            if (!rb_http_str_ieq(value, "100-continue"))
                return refuse(status, 417, err, "the only Expect value served is 100-continue");
            req->expect_continue = 1;
        }
    }
    if (hosts > 1 || (hosts == 0 && req->version == 11))
        return refuse(status, 400, err, hosts ? "more than one Host header" : "an HTTP/1.1 request without a Host header");
    if (len.too_big || len.value > lim->max_body) {
        char why[RB_HTTP_ERR_MAX];
        snprintf(why, sizeof why, "the request body is larger than the limit of %llu bytes",
                 (unsigned long long)lim->max_body);
        return refuse(status, 413, err, why);
    }
    req->content_length = len.value;
    req->keep_alive = !conn.close && (req->version == 11 || conn.keep_alive);
    return 0;
}

/* ------------------------------------------------------------ the head */

int rb_http_parse(const char *buf, size_t len, const struct rb_http_limits *lim,
                  struct rb_http_request *req, int *status, char *err) {
    memset(req, 0, sizeof *req);
    *status = 0;
    err[0] = 0;
    int max_headers = lim->max_headers < RB_HTTP_MAX_HEADERS ? lim->max_headers : RB_HTTP_MAX_HEADERS;
    size_t pos = 0, n = 0, next = 0;
    int have_line = 0;
    for (;;) {
        if (!next_line(buf, len, pos, &n, &next)) {
            if (len < lim->max_head) return 0;
            next = len + 1; /* no end in sight: over the limit */
        }
        if (next > lim->max_head) {
            if (!have_line) return refuse(status, 414, err, "the request line is longer than the head limit");
            return refuse(status, 431, err, "the request head (request line and headers) is over its size limit");
        }
        const char *s = buf + pos;
        pos = next;
        if (!have_line) {
            if (n == 0) continue; /* blank lines before the request line */
            if (parse_request_line(s, n, req, status, err)) return -1;
            have_line = 1;
            continue;
        }
        if (n == 0) break;
        if (req->n_headers >= max_headers) {
            char why[RB_HTTP_ERR_MAX];
            snprintf(why, sizeof why, "more than %d header fields", max_headers);
            return refuse(status, 431, err, why);
        }
        if (parse_field(s, n, &req->headers[req->n_headers], status, err)) return -1;
        req->n_headers++;
    }
    req->head_len = pos;
    if (check_fields(req, lim, status, err)) return -1;
    return 1;
}

/* ------------------------------------------------------------ responses */

const char *rb_http_reason(int status) {
    static const struct { int code; const char *text; } reasons[] = {
        { 100, "Continue" }, { 200, "OK" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
        { 404, "Not Found" }, { 405, "Method Not Allowed" }, { 408, "Request Timeout" },
        { 413, "Content Too Large" }, { 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
        { 417, "Expectation Failed" }, { 431, "Request Header Fields Too Large" },
        { 500, "Internal Server Error" }, { 501, "Not Implemented" }, { 503, "Service Unavailable" },
        { 505, "HTTP Version Not Supported" },
    };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == status) return reasons[i].text;
    return "Unknown";
}
