/* test_http.c - the HTTP request head parser of `rbee serve` (runtime/cli_http.c):
 * what it accepts and the fields it reports, every refusal with its status
 * code, the size and count limits at their edges, and that every prefix of a
 * valid head asks for more bytes rather than guessing. */
#include "test.h"
#include "../runtime/cli_http.h"

static struct rb_http_request req;
static int status;
static char err[RB_HTTP_ERR_MAX];

static int parse_lim(const char *s, const struct rb_http_limits *lim) {
    return rb_http_parse(s, strlen(s), lim, &req, &status, err);
}

static int parse(const char *s) {
    struct rb_http_limits lim = rb_http_default_limits();
    return parse_lim(s, &lim);
}

static int str_is(struct rb_http_str s, const char *lit) {
    return s.n == strlen(lit) && !memcmp(s.p, lit, s.n);
}

#define EXPECT_REFUSED(code, needle, text) do { \
        CHECK_EQ_INT(parse(text), -1); \
        CHECK_EQ_INT(status, code); \
        CHECK_CONTAINS(err, needle); \
    } while (0)

TEST(get_with_fields) {
    const char *s = "GET /v1/models?x=1&y HTTP/1.1\r\nHost: localhost:8080\r\n"
                    "User-Agent:\tcurl/8 \t\r\nAccept: */*\r\nX-Empty:\r\n\r\n";
    CHECK_EQ_INT(parse(s), 1);
    CHECK(str_is(req.method, "GET"));
    CHECK(str_is(req.target, "/v1/models?x=1&y"));
    CHECK(str_is(req.path, "/v1/models"));
    CHECK(str_is(req.query, "x=1&y"));
    CHECK_EQ_INT(req.version, 11);
    CHECK_EQ_INT(req.n_headers, 4);
    CHECK(str_is(req.headers[1].name, "User-Agent"));
    CHECK(str_is(req.headers[1].value, "curl/8")); /* surrounding spaces and tabs trimmed */
    CHECK(str_is(req.headers[3].value, ""));
    CHECK_EQ_INT(req.head_len, strlen(s));
    CHECK_EQ_INT(req.content_length, 0);
    CHECK_EQ_INT(req.keep_alive, 1);
    CHECK_EQ_INT(req.expect_continue, 0);
    const struct rb_http_str *h = rb_http_header(&req, "host");
    CHECK(h && str_is(*h, "localhost:8080"));
    CHECK(rb_http_header(&req, "HOST") == h);
    CHECK(rb_http_header(&req, "hos") == NULL);
    CHECK(rb_http_header(&req, "Content-Length") == NULL);
}

TEST(post_body_follows_head) {
    const char *s = "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n"
                    "Content-Type: application/json\r\n\r\n{\"prompt\":1}GET / HTTP/1.1\r\n";
    CHECK_EQ_INT(parse(s), 1);
    CHECK(str_is(req.method, "POST"));
    CHECK(str_is(req.path, "/v1/completions"));
    CHECK_EQ_INT(req.query.n, 0);
    CHECK_EQ_INT(req.content_length, 11);
    CHECK(!strncmp(s + req.head_len, "{\"prompt\":1}", 12));
    /* repeated or listed equal lengths are one length */
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\ncontent-length: 7\r\n\r\n"), 1);
    CHECK_EQ_INT(req.content_length, 7);
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), 1);
    CHECK_EQ_INT(req.content_length, 0);
}

TEST(bare_lf_and_leading_blank_lines) {
    const char *s = "\r\n\nGET /health HTTP/1.0\nX: y\n\n";
    CHECK_EQ_INT(parse(s), 1);
    CHECK(str_is(req.path, "/health"));
    CHECK(str_is(req.headers[0].value, "y"));
    CHECK_EQ_INT(req.head_len, strlen(s));
    CHECK_EQ_INT(req.version, 10);
}

TEST(keep_alive_rules) {
    CHECK_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n"), 1);
    CHECK_EQ_INT(req.keep_alive, 0); /* HTTP/1.0 closes by default */
    CHECK_EQ_INT(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), 1);
    CHECK_EQ_INT(req.keep_alive, 1);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n"), 1);
    CHECK_EQ_INT(req.keep_alive, 0);
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n"), 1);
    CHECK_EQ_INT(req.keep_alive, 1);
    /* a newer 1.x minor version is read as 1.1 */
    CHECK_EQ_INT(parse("GET / HTTP/1.7\r\nHost: a\r\n\r\n"), 1);
    CHECK_EQ_INT(req.version, 11);
}

TEST(expect_continue) {
    CHECK_EQ_INT(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n"), 1);
    CHECK_EQ_INT(req.expect_continue, 1);
    EXPECT_REFUSED(417, "100-continue", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n");
    /* ignored from an HTTP/1.0 client */
    CHECK_EQ_INT(parse("POST / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n"), 1);
    CHECK_EQ_INT(req.expect_continue, 0);
}

TEST(malformed_request_lines) {
    EXPECT_REFUSED(400, "request line", "GET /\r\n\r\n");
    EXPECT_REFUSED(400, "request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "request line", " GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "request line", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "request line", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "HTTP version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "HTTP version", "GET / http/1.1\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "HTTP version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "HTTP version", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(505, "HTTP/1.0 and HTTP/1.1", "GET / HTTP/2.0\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(505, "HTTP/1.0 and HTTP/1.1", "GET / HTTP/0.9\r\n\r\n");
    EXPECT_REFUSED(400, "starting with '/'", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "starting with '/'", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n");
    /* a NUL byte is a byte like any other, and refused */
    const char nul[] = "GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n";
    struct rb_http_limits lim = rb_http_default_limits();
    CHECK_EQ_INT(rb_http_parse(nul, sizeof nul - 1, &lim, &req, &status, err), -1);
    CHECK_EQ_INT(status, 400);
}

TEST(malformed_fields) {
    EXPECT_REFUSED(400, "between a header name and its colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n");
    EXPECT_REFUSED(400, "folded", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  c\r\n\r\n");
    EXPECT_REFUSED(400, "folded", "GET / HTTP/1.1\r\n Host: a\r\n\r\n");
    EXPECT_REFUSED(400, "header", "GET / HTTP/1.1\r\nHost a\r\n\r\n");
    EXPECT_REFUSED(400, "Name: value", "GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n");
    EXPECT_REFUSED(400, "Name: value", "GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n");
    EXPECT_REFUSED(400, "control character", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n");
    EXPECT_REFUSED(400, "control character", "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n");
    EXPECT_REFUSED(400, "without a Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n");
    EXPECT_REFUSED(400, "more than one Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    /* obs-text (bytes >= 0x80) is allowed in values */
    CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\n\r\n"), 1);
}

TEST(content_length_and_transfer_encoding) {
    const char *bad[] = { "abc", "-1", "+5", "5 5", "5,", ",5", "5, 6", "0x10", "", "1.0" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char s[200];
        snprintf(s, sizeof s, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n", bad[i]);
        CHECK_MSG(parse(s) == -1 && status == 400, "Content-Length '%s': rc status %d", bad[i], status);
    }
    EXPECT_REFUSED(400, "Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
    EXPECT_REFUSED(501, "Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    EXPECT_REFUSED(501, "Transfer-Encoding",
                   "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ntransfer-encoding: gzip, chunked\r\n\r\n");
    /* the body limit: at it is fine, past it 413, and a length past 64 bits too */
    struct rb_http_limits lim = rb_http_default_limits();
    lim.max_body = 1000;
    CHECK_EQ_INT(parse_lim("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n", &lim), 1);
    CHECK_EQ_INT(req.content_length, 1000);
    CHECK_EQ_INT(parse_lim("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", &lim), -1);
    CHECK_EQ_INT(status, 413);
    CHECK_CONTAINS(err, "limit of 1000 bytes");
    EXPECT_REFUSED(413, "larger than the limit of 8388608", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 8388609\r\n\r\n");
    EXPECT_REFUSED(413, "larger", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n");
    EXPECT_REFUSED(413, "larger", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000000000000000009999999999\r\n\r\n");
    /* an over-long length equal to itself is still too long, not a conflict */
    EXPECT_REFUSED(413, "larger", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999, 99999999999999999999\r\n\r\n");
}

/* Every proper prefix of a valid head needs more bytes (0), never -1 or 1. */
TEST(prefixes_ask_for_more) {
    const char *heads[] = {
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n",
        "\r\nGET /health HTTP/1.0\n\n",
    };
    for (size_t h = 0; h < 2; h++) {
        size_t n = strlen(heads[h]);
        struct rb_http_limits lim = rb_http_default_limits();
        for (size_t i = 0; i < n; i++) {
            int rc = rb_http_parse(heads[h], i, &lim, &req, &status, err);
            CHECK_MSG(rc == 0, "head %zu prefix of %zu bytes: rc %d (%s)", h, i, rc, err);
        }
        CHECK_EQ_INT(rb_http_parse(heads[h], n, &lim, &req, &status, err), 1);
    }
}

TEST(size_and_count_limits) {
    static char s[40000];
    struct rb_http_limits lim = rb_http_default_limits();
    lim.max_head = 64;
    /* a head of exactly max_head bytes is fine, one more is not */
    const char *base = "GET / HTTP/1.1\r\nHost: a\r\nX: "; /* 28 bytes + value + 4 */
    snprintf(s, sizeof s, "%s%.*s\r\n\r\n", base, 32, "................................................");
    CHECK_EQ_INT(strlen(s), 64);
    CHECK_EQ_INT(parse_lim(s, &lim), 1);
    snprintf(s, sizeof s, "%s%.*s\r\n\r\n", base, 33, "................................................");
    CHECK_EQ_INT(parse_lim(s, &lim), -1);
    CHECK_EQ_INT(status, 431);
    /* an unfinished head: more bytes are wanted until the limit, then 431 / 414 */
    CHECK_EQ_INT(parse_lim("GET / HTTP/1.1\r\nHost: a\r\nX: aaaaaaaaaaaa", &lim), 0);
    memset(s, 'a', 64);
    s[64] = 0;
    memcpy(s, "GET / HTTP/1.1\r\nX: ", 19);
    CHECK_EQ_INT(parse_lim(s, &lim), -1);
    CHECK_EQ_INT(status, 431);
    memcpy(s, "GET /aaaaaaaaaaaaaaaaaaaa", 25);
    CHECK_EQ_INT(parse_lim(s, &lim), -1);
    CHECK_EQ_INT(status, 414);
    /* blank lines before the request line count too */
    for (int i = 0; i < 40; i++) memcpy(s + 2 * i, "\r\n", 2);
    s[80] = 0;
    CHECK_EQ_INT(parse_lim(s, &lim), -1);
    CHECK_EQ_INT(status, 414);
    s[62] = 0;
    CHECK_EQ_INT(parse_lim(s, &lim), 0);
    /* header count: max_headers fields are fine, one more is 431 */
    lim = rb_http_default_limits();
    lim.max_headers = 5;
    CHECK_EQ_INT(parse_lim("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", &lim), 1);
    CHECK_EQ_INT(req.n_headers, 5);
    CHECK_EQ_INT(parse_lim("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", &lim), -1);
    CHECK_EQ_INT(status, 431);
    CHECK_CONTAINS(err, "more than 5 header fields");
    /* the default limits: 64 fields, 16 KiB */
    lim = rb_http_default_limits();
    size_t n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 63; i++) n += (size_t)snprintf(s + n, sizeof s - n, "X-%d: v\r\n", i);
    snprintf(s + n, sizeof s - n, "\r\n");
    CHECK_EQ_INT(parse(s), 1);
    CHECK_EQ_INT(req.n_headers, 64);
    snprintf(s + n, sizeof s - n, "Y: z\r\n\r\n");
    CHECK_EQ_INT(parse(s), -1);
    CHECK_EQ_INT(status, 431);
    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = 0;
    memcpy(s, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
    CHECK_EQ_INT(parse(s), -1);
    CHECK_EQ_INT(status, 431);
}

TEST(nothing_yet) {
    struct rb_http_limits lim = rb_http_default_limits();
    CHECK_EQ_INT(rb_http_parse(NULL, 0, &lim, &req, &status, err), 0);
    CHECK_EQ_INT(rb_http_parse("\r\n", 2, &lim, &req, &status, err), 0);
}

TEST(reason_phrases) {
    CHECK_STR(rb_http_reason(413), "Content Too Large");
    CHECK_STR(rb_http_reason(503), "Service Unavailable");
    CHECK_STR(rb_http_reason(299), "Unknown");
}

int main(void) {
    RUN(get_with_fields);
    RUN(post_body_follows_head);
    RUN(bare_lf_and_leading_blank_lines);
    RUN(keep_alive_rules);
    RUN(expect_continue);
    RUN(malformed_request_lines);
    RUN(malformed_fields);
    RUN(content_length_and_transfer_encoding);
    RUN(prefixes_ask_for_more);
    RUN(size_and_count_limits);
    RUN(nothing_yet);
    RUN(reason_phrases);
    return test_summary();
}
