/* test_json.c - the JSON reader (strict RFC 8259, bounded) and the escaping writer. */
#include "test.h"
#include "../runtime/json.h"

static struct rb_json_doc *parse_ok(const char *s) {
    struct rb_json_doc *d = NULL;
    char err[RB_JSON_ERR_MAX] = "";
    if (rb_json_parse(s, strlen(s), 0, &d, err)) TEST_FAIL_AT("'%s' refused: %s", s, err);
    return d;
}

/* refused, and the message says why */
static void check_refused(const char *s, size_t n, const char *why, int line) {
    struct rb_json_doc *d = NULL;
    char err[RB_JSON_ERR_MAX] = "";
    int rc = rb_json_parse(s, n, 0, &d, err);
    if (rc == 0 || d) {
        printf("  line %d: accepted invalid JSON '%.*s'\n", line, (int)(n > 60 ? 60 : n), s);
        test_cur_failed = 1;
        rb_json_free(d);
    } else if (!strstr(err, why)) {
        printf("  line %d: '%.*s': message \"%s\" lacks \"%s\"\n", line, (int)(n > 60 ? 60 : n), s, err, why);
        test_cur_failed = 1;
    }
}
#define REFUSED(s, why) check_refused(s, strlen(s), why, __LINE__)

TEST(values_and_tree) {
    struct rb_json_doc *d = parse_ok(" {\"model\": \"m\", \"n\": -12.5e1, \"ok\": true, \"no\": false, "
                                     "\"z\": null, \"a\": [1, [], {}, \"x\"], \"o\": {\"k\": 0}}\n");
    const struct rb_json *r = rb_json_root(d);
    CHECK(r && r->type == RB_JSON_OBJECT);
    CHECK_EQ_INT(r->n_children, 7);
    CHECK_STR(rb_json_get(r, "model")->str, "m");
    CHECK_NEAR(rb_json_get(r, "n")->number, -125.0, 0);
    CHECK(rb_json_get(r, "ok")->type == RB_JSON_TRUE);
    CHECK(rb_json_get(r, "no")->type == RB_JSON_FALSE);
    CHECK(rb_json_get(r, "z")->type == RB_JSON_NULL);
    const struct rb_json *a = rb_json_get(r, "a");
    CHECK(a->type == RB_JSON_ARRAY && a->n_children == 4);
    CHECK(a->child->type == RB_JSON_NUMBER && a->child->number == 1.0 && !a->child->key);
    CHECK(a->child->next->type == RB_JSON_ARRAY && a->child->next->n_children == 0);
    CHECK(a->child->next->next->type == RB_JSON_OBJECT && !a->child->next->next->child);
    CHECK_STR(a->child->next->next->next->str, "x");
    CHECK(a->child->next->next->next->next == NULL);
    CHECK_NEAR(rb_json_get(rb_json_get(r, "o"), "k")->number, 0, 0);
    CHECK(rb_json_get(r, "missing") == NULL);
    CHECK(rb_json_get(a, "model") == NULL); /* not an object */
    CHECK(rb_json_get(NULL, "model") == NULL);
    /* document order is kept */
    CHECK_STR(r->child->key, "model");
    CHECK_STR(r->child->next->key, "n");
    rb_json_free(d);

    d = parse_ok("0");
    CHECK(rb_json_root(d)->type == RB_JSON_NUMBER && rb_json_root(d)->number == 0);
    rb_json_free(d);
    d = parse_ok("-0.0e-0");
    CHECK(rb_json_root(d)->number == 0);
    rb_json_free(d);
    d = parse_ok("[1E3, 2e+2, 0.25, 123456789012]");
    const struct rb_json *v = rb_json_root(d)->child;
    CHECK(v->number == 1000 && v->next->number == 200 && v->next->next->number == 0.25 &&
          v->next->next->next->number == 123456789012.0);
    rb_json_free(d);
    CHECK_STR(rb_json_type_name(RB_JSON_STRING), "string");
    CHECK_STR(rb_json_type_name(RB_JSON_TRUE), "boolean");
}

TEST(string_escapes) {
    struct rb_json_doc *d = parse_ok("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\", "
                                     "\"\\ud83d\\ude00\", \"x\\u0000y\", \"h\xc3\xa9 \xf0\x9f\x98\x80\", \"\"]");
    const struct rb_json *s = rb_json_root(d)->child;
    CHECK_STR(s->str, "a\"b\\c/d\b\f\n\r\t");
    CHECK_EQ_INT(s->len, 12);
    CHECK_STR(s->next->str, "\xc3\xa9\xe2\x82\xac");
    CHECK_STR(s->next->next->str, "\xf0\x9f\x98\x80");
    const struct rb_json *z = s->next->next->next;
    CHECK_EQ_INT(z->len, 3);
    CHECK(!memcmp(z->str, "x\0y", 4));
    CHECK_STR(z->next->str, "h\xc3\xa9 \xf0\x9f\x98\x80");
    CHECK_EQ_INT(z->next->next->len, 0);
    CHECK_STR(z->next->next->str, "");
    rb_json_free(d);

    /* a key holding NUL matches only itself */
    d = parse_ok("{\"a\\u0000b\": 1, \"a\": 2}");
    CHECK_NEAR(rb_json_get(rb_json_root(d), "a")->number, 2, 0);
    rb_json_free(d);
}

TEST(refuses_invalid) {
    REFUSED("", "unexpected end");
    REFUSED("   ", "unexpected end");
    REFUSED("[1,]", "unexpected character");
    REFUSED("{\"a\":1,}", "expected a string key");
    REFUSED("{\"a\" 1}", "expected ':'");
    REFUSED("{a:1}", "expected a string key");
    REFUSED("[1 2]", "expected ',' or ']'");
    REFUSED("01", "trailing");
    REFUSED("1.", "no digit after '.'");
    REFUSED(".5", "unexpected character");
    REFUSED("+1", "unexpected character");
    REFUSED("1e", "no digit in exponent");
    REFUSED("-", "bad number");
    REFUSED("NaN", "unexpected character");
    REFUSED("Infinity", "unexpected character");
    REFUSED("1e999", "out of range");
    REFUSED("tru", "unexpected token");
    REFUSED("nulll", "trailing");
    REFUSED("'a'", "unexpected character");
    REFUSED("\"a", "unterminated string");
    REFUSED("\"a\tb\"", "control character");
    REFUSED("\"\\x41\"", "unknown escape");
    REFUSED("\"\\u12zz\"", "bad hex digit");
    REFUSED("\"\\u12", "truncated");
    REFUSED("\"\\ud83d\"", "lone high surrogate");
    REFUSED("\"\\ud83d\\u0041\"", "without a low one");
    REFUSED("\"\\ude00\"", "lone low surrogate");
    REFUSED("\"\xc0\x80\"", "invalid UTF-8");         /* overlong NUL */
    REFUSED("\"\xed\xa0\x80\"", "invalid UTF-8");     /* encoded surrogate */
    REFUSED("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); /* above U+10FFFF */
    REFUSED("\"\xe2\x82\"", "invalid UTF-8");         /* truncated sequence */
    REFUSED("\"\xff\"", "invalid UTF-8");
    REFUSED("{\"a\":1,\"b\":2,\"a\":3}", "duplicate key");
    REFUSED("[1] [2]", "trailing");
    REFUSED("{\"a\":1}}", "trailing");
    REFUSED("[", "unexpected end");
    REFUSED("{", "expected a string key");
    /* a NUL byte inside the given length is not whitespace */
    check_refused("[1]\0", 4, "trailing", __LINE__);
    /* the offset is reported */
    struct rb_json_doc *d = NULL;
    char err[RB_JSON_ERR_MAX];
    CHECK(rb_json_parse("[1, x]", 6, 0, &d, err) == -1);
    CHECK_CONTAINS(err, "at byte 4");
}

TEST(duplicates_in_big_objects) {
    /* objects past the small-object path are checked by sorting */
    char doc[4096];
    size_t n = 0;
    n += (size_t)snprintf(doc + n, sizeof doc - n, "{");
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(doc + n, sizeof doc - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    n += (size_t)snprintf(doc + n, sizeof doc - n, "}");
    struct rb_json_doc *d = parse_ok(doc);
    CHECK_EQ_INT(rb_json_root(d)->n_children, 100);
    CHECK_NEAR(rb_json_get(rb_json_root(d), "k77")->number, 77, 0);
    rb_json_free(d);
    doc[n - 1] = 0;
    strcat(doc, ",\"k42\":0}");
    REFUSED(doc, "duplicate key");
}

TEST(depth_limit) {
    char doc[300];
    for (int depth = 64; depth <= 65; depth++) {
        memset(doc, '[', (size_t)depth);
        memset(doc + depth, ']', (size_t)depth);
        doc[2 * depth] = 0;
        struct rb_json_doc *d = NULL;
        char err[RB_JSON_ERR_MAX] = "";
        int rc = rb_json_parse(doc, strlen(doc), 0, &d, err);
        if (depth == 64) CHECK_MSG(rc == 0, "64 levels refused: %s", err);
        else CHECK(rc == -1 && strstr(err, "nesting too deep"));
        rb_json_free(d);
    }
    /* an explicit limit */
    struct rb_json_doc *d = NULL;
    char err[RB_JSON_ERR_MAX];
    CHECK(rb_json_parse("[[[1]]]", 7, 2, &d, err) == -1);
    CHECK(rb_json_parse("[[[1]]]", 7, 3, &d, err) == 0);
    rb_json_free(d);
}

TEST(value_limit) {
    /* RB_JSON_MAX_VALUES values in all: the array itself plus its elements */
    size_t n_elems = RB_JSON_MAX_VALUES - 1;
    size_t cap = 2 * (n_elems + 1) + 8;
    char *doc = malloc(cap);
    CHECK(doc != NULL);
    if (!doc) return;
    size_t n = 0;
    doc[n++] = '[';
    for (size_t i = 0; i < n_elems; i++) { doc[n++] = '0'; doc[n++] = ','; }
    doc[n - 1] = ']';
    struct rb_json_doc *d = NULL;
    char err[RB_JSON_ERR_MAX] = "";
    CHECK_MSG(rb_json_parse(doc, n, 0, &d, err) == 0, "at the limit: %s", err);
    CHECK(d && rb_json_root(d)->n_children == n_elems);
    rb_json_free(d);
    doc[n - 1] = ',';
    doc[n++] = '0';
    doc[n++] = ']';
    check_refused(doc, n, "more than 262144 values", __LINE__);
    free(doc);
}

TEST(every_prefix_refused) {
    const char *doc = "{\"messages\": [{\"role\": \"user\", \"content\": \"h\\u00e9\\n\xe2\x82\xac\"}], "
                      "\"n\": [1.5e3, true, null]}";
    size_t len = strlen(doc);
    struct rb_json_doc *d = parse_ok(doc);
    rb_json_free(d);
    for (size_t n = 0; n < len; n++) {
        char err[RB_JSON_ERR_MAX];
        d = NULL;
        int rc = rb_json_parse(doc, n, 0, &d, err);
        CHECK_MSG(rc == -1 && !d, "prefix of %zu bytes accepted", n);
        rb_json_free(d);
    }
}

/* the writer's output parses back to the same bytes */
static void check_roundtrip(const char *s, size_t n, const char *want_json) {
    struct rb_buf b = { 0 };
    rb_json_put_string(&b, s, n);
    CHECK(!b.failed);
    if (want_json) CHECK_STR(b.data, want_json);
    struct rb_json_doc *d = NULL;
    char err[RB_JSON_ERR_MAX] = "";
    CHECK_MSG(rb_json_parse(b.data, b.len, 0, &d, err) == 0, "writer output %s refused: %s", b.data, err);
    if (d) {
        const struct rb_json *r = rb_json_root(d);
        CHECK(r->type == RB_JSON_STRING);
        if (!want_json || !strstr(want_json, "\xEF\xBF\xBD")) CHECK(r->len == n && !memcmp(r->str, s, n));
    }
    rb_json_free(d);
    rb_buf_free(&b);
}

TEST(writer) {
    check_roundtrip("plain", 5, "\"plain\"");
    check_roundtrip("q\"b\\s/", 6, "\"q\\\"b\\\\s/\"");
    check_roundtrip("\n\r\t\b\f\x01\x1f", 7, "\"\\n\\r\\t\\b\\f\\u0001\\u001f\"");
    check_roundtrip("x\0y", 3, "\"x\\u0000y\"");
    check_roundtrip("\xc3\xa9\xf0\x9f\x98\x80", 6, "\"\xc3\xa9\xf0\x9f\x98\x80\"");
    check_roundtrip("a\xff" "b\xc3", 4, "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\"");
    check_roundtrip("\xed\xa0\x80", 3, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    check_roundtrip("", 0, "\"\"");

    struct rb_buf b = { 0 };
    for (int i = 0; i < 1000; i++) rb_buf_printf(&b, "%d,", i);
    CHECK(!b.failed);
    CHECK_EQ_INT(b.len, 3890);
    CHECK(!strncmp(b.data, "0,1,2,", 6) && !strcmp(b.data + b.len - 4, "999,"));
    rb_buf_puts(&b, "!");
    CHECK(b.data[b.len - 1] == '!' && b.data[b.len] == 0);
    rb_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0);
}

int main(void) {
    RUN(values_and_tree);
    RUN(string_escapes);
    RUN(refuses_invalid);
    RUN(duplicates_in_big_objects);
    RUN(depth_limit);
    RUN(value_limit);
    RUN(every_prefix_refused);
    RUN(writer);
    return test_summary();
}
