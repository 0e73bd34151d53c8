/* fuzz_json.c - libFuzzer entry for the JSON reader and writer.
 *
 * Arbitrary bytes go through rb_json_parse; a document that parses is
 * written back out (numbers with %.17g, strings through rb_json_put_string)
 * and must parse again to the same tree, so a reader that accepts what it
 * should not, or a writer that emits what the reader refuses, aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/json.h"

static void write_value(struct rb_buf *b, const struct rb_json *v) {
    switch (v->type) {
    case RB_JSON_NULL: rb_buf_puts(b, "null"); break;
    case RB_JSON_FALSE: rb_buf_puts(b, "false"); break;
    case RB_JSON_TRUE: rb_buf_puts(b, "true"); break;
    case RB_JSON_NUMBER: rb_buf_printf(b, "%.17g", v->number); break;
    case RB_JSON_STRING: rb_json_put_string(b, v->str, v->len); break;
    case RB_JSON_ARRAY:
    case RB_JSON_OBJECT:
        rb_buf_puts(b, v->type == RB_JSON_ARRAY ? "[" : "{");
        for (const struct rb_json *c = v->child; c; c = c->next) {
            if (c != v->child) rb_buf_puts(b, ",");
            if (v->type == RB_JSON_OBJECT) {
                rb_json_put_string(b, c->key, c->key_len);
                rb_buf_puts(b, ":");
            }
            write_value(b, c);
        }
        rb_buf_puts(b, v->type == RB_JSON_ARRAY ? "]" : "}");
        break;
    }
}

static int same(const struct rb_json *a, const struct rb_json *b) {
    if (a->type != b->type || a->n_children != b->n_children || a->key_len != b->key_len ||
        (a->key_len && memcmp(a->key, b->key, a->key_len)))
        return 0;
    if (a->type == RB_JSON_NUMBER) return a->number == b->number;
    if (a->type == RB_JSON_STRING) return a->len == b->len && !memcmp(a->str, b->str, a->len);
    const struct rb_json *x = a->child, *y = b->child;
    for (; x && y; x = x->next, y = y->next)
        if (!same(x, y)) return 0;
    return !x && !y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct rb_json_doc *d = NULL;
    char err[RB_JSON_ERR_MAX];
    if (rb_json_parse((const char *)data, size, 0, &d, err)) {
        if (d || !strstr(err, "at byte")) abort();
        return 0;
    }
    struct rb_buf out = { 0 };
    write_value(&out, rb_json_root(d));
    if (out.failed) abort();
    struct rb_json_doc *again = NULL;
    if (rb_json_parse(out.data, out.len, 0, &again, err)) {
        fprintf(stderr, "written form refused: %s\n%s\n", err, out.data);
        abort();
    }
    if (!same(rb_json_root(d), rb_json_root(again))) abort();
    rb_json_free(again);
    rb_json_free(d);
    rb_buf_free(&out);
    return 0;
}
