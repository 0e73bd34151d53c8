/* json.h - a strict JSON reader (RFC 8259) into a read-only tree, and a
 * growable text buffer with JSON string escaping for writers.
 *
 * The reader is for untrusted bytes (request bodies, messages files): it
 * refuses anything that is not exactly JSON, checks UTF-8, bounds nesting,
 * the number of values and therefore memory (see rb_json_parse), and never
 * reads past len. The tree is one allocation family owned by the doc.
 *
 *   struct rb_json_doc *d;
 *   if (rb_json_parse(body, n, 0, &d, err)) ...;   // err: one line with the byte offset
 *   const struct rb_json *msgs = rb_json_get(rb_json_root(d), "messages");
 *   for (const struct rb_json *m = msgs ? msgs->child : NULL; m; m = m->next) ...
 *   rb_json_free(d);
 */
#ifndef RB_JSON_H
#define RB_JSON_H

#include <stddef.h>

enum rb_json_type {
    RB_JSON_NULL, RB_JSON_FALSE, RB_JSON_TRUE, RB_JSON_NUMBER,
    RB_JSON_STRING, RB_JSON_ARRAY, RB_JSON_OBJECT,
};

struct rb_json {
    enum rb_json_type type;
    double number;               /* NUMBER */
    const char *str;             /* STRING: decoded UTF-8, NUL-terminated; len excludes the NUL
                                    and may count \0 bytes written as \u0000 */
    size_t len;
    const char *key;             /* member name when the value sits in an object, else NULL */
    size_t key_len;
    const struct rb_json *child; /* ARRAY / OBJECT: first element or member, in document order */
    const struct rb_json *next;  /* next sibling */
    size_t n_children;
};

struct rb_json_doc;

/* Values one document may hold: memory stays within about 80 bytes per value
 * plus len, whatever the input (an 8 MiB body of "[0,0,0..." is refused
 * rather than turned into hundreds of MiB of nodes). */
#define RB_JSON_MAX_VALUES (1 << 18)

/* Parse len bytes (need not be NUL-terminated). Refuses, returning -1 with a
 * one-line err that gives the byte offset: invalid JSON, invalid UTF-8, lone
 * surrogates, nesting deeper than max_depth (0 = 64), more than
 * RB_JSON_MAX_VALUES values, a key twice in one object, trailing bytes other
 * than whitespace. err holds at least RB_JSON_ERR_MAX bytes. */
#define RB_JSON_ERR_MAX 256
int rb_json_parse(const char *text, size_t len, int max_depth, struct rb_json_doc **out, char *err);
const struct rb_json *rb_json_root(const struct rb_json_doc *d);
void rb_json_free(struct rb_json_doc *d);

/* The member named key of an object (NULL if obj is NULL, not an object, or
 * has no such member). Keys are compared as bytes, so "a\u0000b" never
 * matches "a". */
const struct rb_json *rb_json_get(const struct rb_json *obj, const char *key);
const char *rb_json_type_name(enum rb_json_type t); /* "string", "number", ... */

/* A growable, NUL-terminated text buffer. An allocation failure sets failed
 * (sticky) and later calls do nothing, so a writer checks once at the end. */
struct rb_buf {
    char *data;
    size_t len, cap;
    int failed;
};
void rb_buf_free(struct rb_buf *b);
void rb_buf_add(struct rb_buf *b, const void *p, size_t n);
void rb_buf_puts(struct rb_buf *b, const char *s);
void rb_buf_printf(struct rb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s[0..n) as a quoted JSON string: ", \ and control bytes escaped, invalid
 * UTF-8 replaced by U+FFFD, so the output is always valid JSON. */
void rb_json_put_string(struct rb_buf *b, const char *s, size_t n);

#endif
