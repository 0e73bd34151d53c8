/* cli_http.h - the HTTP/1.x request head parser of `rbee serve`: a pure
 * function over the bytes received so far (no I/O, no allocation), so it can
 * be unit-tested and fuzzed on its own.
 *
 * Every byte is untrusted. The parser follows RFC 9112 strictly where a
 * lenient reading could be abused (whitespace before a header's colon,
 * folded lines, bare CR, conflicting Content-Length, Transfer-Encoding) and
 * bounds the head's size and header count. Request bodies must come with
 * Content-Length: chunked (or any) Transfer-Encoding is refused with 501,
 * which also closes the door on request smuggling.
 *
 *   struct rb_http_request r; int status; char err[RB_HTTP_ERR_MAX];
 *   int rc = rb_http_parse(buf, n, &limits, &r, &status, err);
 *   // 0: read more and call again; -1: answer `status` (err says why) and
 *   // close; 1: the head is buf[0..r.head_len), the body the next
 *   // r.content_length bytes.
 */
#ifndef RB_CLI_HTTP_H
#define RB_CLI_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define RB_HTTP_MAX_HEADERS 100
#define RB_HTTP_ERR_MAX 160

struct rb_http_limits {
    size_t max_head;    /* bytes of request line + headers + blank line (431 / 414 past it) */
    int max_headers;    /* header fields (431 past it), at most RB_HTTP_MAX_HEADERS */
    uint64_t max_body;  /* Content-Length (413 past it) */
};
/* 16 KiB head, 64 headers, 8 MiB body. */
struct rb_http_limits rb_http_default_limits(void);

/* A slice of the caller's buffer (not NUL-terminated). */
struct rb_http_str {
    const char *p;
    size_t n;
};

struct rb_http_request {
    struct rb_http_str method, target; /* target: origin-form, "/path?query" */
    struct rb_http_str path, query;    /* target split at the first '?' (query without it) */
    int version;                       /* 10 (HTTP/1.0) or 11 (HTTP/1.1) */
    struct rb_http_field { struct rb_http_str name, value; } headers[RB_HTTP_MAX_HEADERS];
    int n_headers;                     /* values trimmed of surrounding spaces and tabs */
    size_t head_len;                   /* bytes of the head, blank line included: the body starts here */
    uint64_t content_length;           /* 0 when absent */
    int keep_alive;                    /* the connection may serve another request after this one */
    int expect_continue;               /* "Expect: 100-continue": answer 100 before reading the body */
};

/* Parse the head at the start of buf[0..len). Returns 1 when it is complete
 * and valid (req filled), 0 when more bytes are needed (and len is still
 * within the limits), -1 when the request must be refused: *status is the
 * response code (400, 413, 414, 417, 431, 501, 505) and err one line saying
 * why. Blank lines before the request line are skipped (RFC 9112 2.2); lines
 * may end in CRLF or LF. */
int rb_http_parse(const char *buf, size_t len, const struct rb_http_limits *lim,
                  struct rb_http_request *req, int *status, char *err);

/* The first field named name (ASCII case-insensitive), or NULL. */
const struct rb_http_str *rb_http_header(const struct rb_http_request *req, const char *name);

/* s equals the NUL-terminated lit, ignoring ASCII case. */
int rb_http_str_ieq(struct rb_http_str s, const char *lit);

/* The reason phrase of a status code ("Not Found"), "Unknown" for others. */
const char *rb_http_reason(int status);

#endif
