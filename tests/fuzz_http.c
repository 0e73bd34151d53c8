/* fuzz_http.c - libFuzzer entry for the HTTP request head parser of
 * `rbee serve` (`make fuzz`).
 *
 * Besides memory errors (ASan), it checks what the server relies on:
 * a parsed head lies inside the bytes given, every slice points into them,
 * the limits hold, refusals carry a status and a message, and the parser
 * is consistent over prefixes (the bytes before the end of a valid head
 * only ever ask for more), so a server reading in pieces sees what one
 * reading everything at once would. The first input byte picks small or
 * default limits so both edges are reached.
 *
 * fuzz-max-len: 20000
 * fuzz-dict: tests/fuzz_http.dict
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/cli_http.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

static void inside(struct rb_http_str s, const char *buf, size_t len) {
    REQUIRE(s.n <= len);
    REQUIRE(s.p >= buf && s.p + s.n <= buf + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    struct rb_http_limits lim = rb_http_default_limits();
    if (data[0] & 1) {
        lim.max_head = 64 + (data[0] >> 1);
        lim.max_headers = 1 + (data[0] >> 4);
        lim.max_body = data[0];
    }
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    static struct rb_http_request req, again;
    int status;
    char err[RB_HTTP_ERR_MAX];
    int rc = rb_http_parse(buf, len, &lim, &req, &status, err);
    REQUIRE(rc >= -1 && rc <= 1);
    if (rc == -1) {
        REQUIRE(status >= 400 && status < 600 && err[0]);
        REQUIRE(strlen(err) < RB_HTTP_ERR_MAX);
        return 0;
    }
    if (rc == 0) {
        REQUIRE(len < lim.max_head);
        return 0;
    }
    REQUIRE(req.head_len <= len && req.head_len <= lim.max_head);
    REQUIRE(req.n_headers >= 0 && req.n_headers <= lim.max_headers);
    REQUIRE(req.content_length <= lim.max_body);
    REQUIRE(req.version == 10 || req.version == 11);
    inside(req.method, buf, req.head_len);
    inside(req.target, buf, req.head_len);
    inside(req.path, buf, req.head_len);
    REQUIRE(req.path.n >= 1 && req.path.p[0] == '/');
    for (int i = 0; i < req.n_headers; i++) {
        inside(req.headers[i].name, buf, req.head_len);
        inside(req.headers[i].value, buf, req.head_len);
        REQUIRE(req.headers[i].name.n > 0);
        REQUIRE(memchr(req.headers[i].value.p, '\n', req.headers[i].value.n) == NULL);
        REQUIRE(memchr(req.headers[i].value.p, '\r', req.headers[i].value.n) == NULL);
        REQUIRE(rb_http_header(&req, "x") == NULL || rb_http_header(&req, "x")->n <= len);
    }
    /* the same head alone parses the same; its proper prefixes want more */
    REQUIRE(rb_http_parse(buf, req.head_len, &lim, &again, &status, err) == 1);
    REQUIRE(again.head_len == req.head_len && again.n_headers == req.n_headers &&
            again.content_length == req.content_length && again.keep_alive == req.keep_alive);
    REQUIRE(rb_http_parse(buf, req.head_len - 1, &lim, &again, &status, err) == 0);
    REQUIRE(rb_http_parse(buf, req.head_len / 2, &lim, &again, &status, err) == 0);
    return 0;
}
