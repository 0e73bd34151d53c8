/* json.c - the strict JSON reader and the escaping writer of json.h.
 *
 * Memory: decoded strings never outgrow their quoted source (an escape is
 * at least as long as what it stands for, and the two quotes pay for the
 * NUL), so one arena of len + 1 bytes holds every string and key. Nodes
 * come in blocks, at most RB_JSON_MAX_VALUES of them. */
#include "json.h"
#include "unicode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_BLOCK 256
_Static_assert(RB_JSON_MAX_VALUES == 262144, "new_node's message names the limit");

struct node_block {
    struct node_block *next;
    struct rb_json nodes[NODE_BLOCK];
};

struct rb_json_doc {
    struct rb_json *root;
    char *strings;       /* arena of len + 1 bytes */
    size_t str_used;
    struct node_block *blocks;
    int block_used;      /* nodes taken from blocks (the newest) */
    size_t n_values;
};

struct parser {
    const unsigned char *start, *p, *end;
    int depth, max_depth;
    struct rb_json_doc *doc;
    char *err;
    int failed;
};

static int fail(struct parser *ps, const char *what) {
    if (!ps->failed)
        snprintf(ps->err, RB_JSON_ERR_MAX, "invalid JSON at byte %zu: %s",
                 (size_t)(ps->p - ps->start), what);
    ps->failed = 1;
    return -1;
}

static struct rb_json *new_node(struct parser *ps) {
    struct rb_json_doc *d = ps->doc;
    if (d->n_values >= RB_JSON_MAX_VALUES) {
        fail(ps, "more than 262144 values");
        return NULL;
    }
    if (!d->blocks || d->block_used == NODE_BLOCK) {
        struct node_block *b = malloc(sizeof *b);
        if (!b) {
            fail(ps, "out of memory");
            return NULL;
        }
        b->next = d->blocks;
        d->blocks = b;
        d->block_used = 0;
    }
    struct rb_json *n = &d->blocks->nodes[d->block_used++];
    memset(n, 0, sizeof *n);
    d->n_values++;
    return n;
}

static void skip_ws(struct parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* ---- values ---- */

static int hex4(struct parser *ps, uint32_t *out) {
    if (ps->end - ps->p < 4) return fail(ps, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = ps->p[i];
        unsigned d = c >= '0' && c <= '9' ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 16;
        if (d == 16) return fail(ps, "bad hex digit in \\u escape");
        v = v << 4 | d;
    }
    ps->p += 4;
    *out = v;
    return 0;
}

/* A string at ps->p (the opening quote), decoded into the arena. */
static int parse_string(struct parser *ps, const char **out, size_t *out_len) {
    struct rb_json_doc *d = ps->doc;
    char *dst = d->strings + d->str_used, *w = dst;
    ps->p++; /* the quote */
    for (;;) {
        if (ps->p >= ps->end) return fail(ps, "unterminated string");
        unsigned c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) return fail(ps, "control character in string");
        if (c != '\\') {
            size_t n = rb_utf8_valid(ps->p, (size_t)(ps->end - ps->p));
            if (!n) return fail(ps, "invalid UTF-8 in string");
            memcpy(w, ps->p, n);
            w += n;
            ps->p += n;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) return fail(ps, "unterminated string");
        char e = (char)*ps->p++;
        switch (e) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (hex4(ps, &cp)) return -1;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(ps, "lone low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
                    return fail(ps, "lone high surrogate");
                ps->p += 2;
                if (hex4(ps, &lo)) return -1;
                if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, "high surrogate without a low one");
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            w += rb_utf8_encode(cp, (uint8_t *)w);
            break;
        }
        default:
            ps->p--;
            return fail(ps, "unknown escape");
        }
    }
    *w = 0;
    *out = dst;
    *out_len = (size_t)(w - dst);
    d->str_used += *out_len + 1;
    return 0;
}

static int parse_number(struct parser *ps, double *out) {
    const unsigned char *s = ps->p, *q = s;
    if (q < ps->end && *q == '-') q++;
    if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, "bad number");
    if (*q == '0') q++;
    else while (q < ps->end && *q >= '0' && *q <= '9') q++;
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, "bad number: no digit after '.'");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-')) q++;
        if (q >= ps->end || *q < '0' || *q > '9') return fail(ps, "bad number: no digit in exponent");
        while (q < ps->end && *q >= '0' && *q <= '9') q++;
    }
    /* strtod wants a NUL-terminated copy; the grammar above already holds */
    size_t n = (size_t)(q - s);
    char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
    if (!buf) return fail(ps, "out of memory");
    memcpy(buf, s, n);
    buf[n] = 0;
    errno = 0;
    double v = strtod(buf, NULL);
    int range = errno == ERANGE && (v > 1.0 || v < -1.0);
    if (buf != small) free(buf);
    if (range) return fail(ps, "number out of range");
    ps->p = q;
    *out = v;
    return 0;
}

static int literal(struct parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n)) return fail(ps, "unexpected token");
    ps->p += n;
    return 0;
}

static int parse_value(struct parser *ps, struct rb_json *v);

static int key_cmp(const void *a, const void *b) {
    const struct rb_json *x = *(const struct rb_json *const *)a, *y = *(const struct rb_json *const *)b;
    if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
    return memcmp(x->key, y->key, x->key_len);
}

/* A key twice in one object is refused: which one a reader would take differs
 * between implementations, so accepting it would let a request mean two things. */
static int check_duplicates(struct parser *ps, const struct rb_json *obj) {
    size_t n = obj->n_children;
    if (n < 2) return 0;
    const struct rb_json *small[16], **v = n <= 16 ? small : malloc(n * sizeof *v);
    if (!v) return fail(ps, "out of memory");
    size_t i = 0;
    for (const struct rb_json *m = obj->child; m; m = m->next) v[i++] = m;
    int dup = 0;
    if (n <= 16) {
        for (size_t a = 0; a < n && !dup; a++)
            for (size_t b = a + 1; b < n && !dup; b++) dup = !key_cmp(&v[a], &v[b]);
    } else {
        qsort(v, n, sizeof *v, key_cmp);
        for (size_t a = 1; a < n && !dup; a++) dup = !key_cmp(&v[a - 1], &v[a]);
    }
    if (v != small) free(v);
    return dup ? fail(ps, "duplicate key in object") : 0;
}

static int parse_container(struct parser *ps, struct rb_json *v, int is_object) {
    if (++ps->depth > ps->max_depth) return fail(ps, "nesting too deep");
    v->type = is_object ? RB_JSON_OBJECT : RB_JSON_ARRAY;
    char close = is_object ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return 0;
    }
    struct rb_json *last = NULL;
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (is_object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a string key");
            if (parse_string(ps, &key, &key_len)) return -1;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return fail(ps, "expected ':'");
            ps->p++;
        }
        struct rb_json *item = new_node(ps);
        if (!item || parse_value(ps, item)) return -1;
        item->key = key;
        item->key_len = key_len;
        if (last) last->next = item;
        else v->child = item;
        last = item;
        v->n_children++;
        skip_ws(ps);
        if (ps->p >= ps->end) return fail(ps, is_object ? "unterminated object" : "unterminated array");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p != close) return fail(ps, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        ps->p++;
        break;
    }
    ps->depth--;
    return is_object ? check_duplicates(ps, v) : 0;
}

static int parse_value(struct parser *ps, struct rb_json *v) {
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end of input");
    switch (*ps->p) {
    case '{': return parse_container(ps, v, 1);
    case '[': return parse_container(ps, v, 0);
    case '"':
        v->type = RB_JSON_STRING;
        return parse_string(ps, &v->str, &v->len);
    case 't': v->type = RB_JSON_TRUE; return literal(ps, "true");
    case 'f': v->type = RB_JSON_FALSE; return literal(ps, "false");
    case 'n': v->type = RB_JSON_NULL; return literal(ps, "null");
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
            v->type = RB_JSON_NUMBER;
            return parse_number(ps, &v->number);
        }
        return fail(ps, "unexpected character");
    }
}

int rb_json_parse(const char *text, size_t len, int max_depth, struct rb_json_doc **out, char *err) {
    *out = NULL;
    struct rb_json_doc *d = calloc(1, sizeof *d);
    if (!d || len == SIZE_MAX || !(d->strings = malloc(len + 1))) {
        free(d);
        snprintf(err, RB_JSON_ERR_MAX, "out of memory for a JSON text of %zu bytes", len);
        return -1;
    }
    struct parser ps = {
        .start = (const unsigned char *)text, .p = (const unsigned char *)text,
        .end = (const unsigned char *)text + len,
        .max_depth = max_depth <= 0 ? 64 : max_depth > 1024 ? 1024 : max_depth,
        .doc = d, .err = err,
    };
    d->root = new_node(&ps);
    if (d->root && parse_value(&ps, d->root) == 0) {
        skip_ws(&ps);
        if (ps.p == ps.end) {
            *out = d;
            return 0;
        }
        fail(&ps, "trailing characters after the value");
    }
    rb_json_free(d);
    return -1;
}

const struct rb_json *rb_json_root(const struct rb_json_doc *d) { return d ? d->root : NULL; }

void rb_json_free(struct rb_json_doc *d) {
    if (!d) return;
    while (d->blocks) {
        struct node_block *next = d->blocks->next;
        free(d->blocks);
        d->blocks = next;
    }
    free(d->strings);
    free(d);
}

const struct rb_json *rb_json_get(const struct rb_json *obj, const char *key) {
    if (!obj || obj->type != RB_JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (const struct rb_json *m = obj->child; m; m = m->next)
        if (m->key_len == n && !memcmp(m->key, key, n)) return m;
    return NULL;
}

const char *rb_json_type_name(enum rb_json_type t) {
    switch (t) {
    case RB_JSON_NULL: return "null";
    case RB_JSON_FALSE: case RB_JSON_TRUE: return "boolean";
    case RB_JSON_NUMBER: return "number";
    case RB_JSON_STRING: return "string";
    case RB_JSON_ARRAY: return "array";
    case RB_JSON_OBJECT: return "object";
    }
    return "?";
}

/* ---- writer ---- */

void rb_buf_free(struct rb_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int buf_reserve(struct rb_buf *b, size_t extra) {
    if (b->failed) return -1;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void rb_buf_add(struct rb_buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

void rb_buf_puts(struct rb_buf *b, const char *s) { rb_buf_add(b, s, strlen(s)); }

void rb_buf_printf(struct rb_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if (buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void rb_json_put_string(struct rb_buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    rb_buf_add(b, "\"", 1);
    while (p < end) {
        const unsigned char *run = p;   /* bytes that go out as they are */
        size_t k;
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && (k = rb_utf8_valid(p, (size_t)(end - p))))
            p += k;
        rb_buf_add(b, run, (size_t)(p - run));
        if (p == end) break;
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            rb_buf_add(b, esc, 2);
        } else if (c < 0x20) {
            switch (c) {
            case '\n': rb_buf_add(b, "\\n", 2); break;
            case '\r': rb_buf_add(b, "\\r", 2); break;
            case '\t': rb_buf_add(b, "\\t", 2); break;
            case '\b': rb_buf_add(b, "\\b", 2); break;
            case '\f': rb_buf_add(b, "\\f", 2); break;
            default: rb_buf_printf(b, "\\u%04x", c);
            }
        } else {
            rb_buf_add(b, "\xEF\xBF\xBD", 3); /* one invalid byte -> U+FFFD */
        }
        p++;
    }
    rb_buf_add(b, "\"", 1);
}
