/* json_parse.h - a strict little JSON parser (RFC 8259) for the bench
 * tests: it validates any document; for an array of flat objects it also
 * records each object's fields so the tests can look at the values. */
#ifndef RB_TEST_JSON_PARSE_H
#define RB_TEST_JSON_PARSE_H

#include <stdlib.h>
#include <string.h>

#define J_MAX_OBJS 16
#define J_MAX_FIELDS 32

enum j_kind { J_STR, J_NUM, J_BOOL, J_NULL, J_NESTED };
struct j_field { char key[32]; enum j_kind kind; char str[128]; double num; };
struct j_obj { int n; struct j_field f[J_MAX_FIELDS]; };
struct j_doc { int n_objs; struct j_obj objs[J_MAX_OBJS]; int top_is_array; };

struct j_parser { const char *p, *end; int depth; struct j_doc *doc; };

static inline void j_ws(struct j_parser *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static inline int j_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* a string; its unescaped bytes (ASCII escapes only) go to out if given */
static inline int j_string(struct j_parser *j, char *out, size_t cap) {
    size_t n = 0;
    if (j->p >= j->end || *j->p != '"') return -1;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20) return -1; /* raw control characters are not allowed */
        if (c == '\\') {
            if (j->p >= j->end) return -1;
            char e = *j->p++;
            switch (e) {
            case '"': case '\\': case '/': c = (unsigned char)e; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'u':
                if (j->end - j->p < 4) return -1;
                for (int i = 0; i < 4; i++) if (!j_hex(j->p[i])) return -1;
                c = (unsigned char)strtol((char[]){ j->p[2], j->p[3], 0 }, NULL, 16);
                j->p += 4;
                break;
            default: return -1;
            }
        }
        if (out && n + 1 < cap) out[n++] = (char)c;
    }
    if (j->p >= j->end) return -1;
    j->p++;
    if (out) out[n] = 0;
    return 0;
}

static inline int j_number(struct j_parser *j, double *v) {
    const char *s = j->p;
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p >= j->end) return -1;
    if (*j->p == '0') j->p++;
    else if (*j->p >= '1' && *j->p <= '9') while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    else return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return -1;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9') return -1;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    char buf[64];
    size_t n = (size_t)(j->p - s);
    if (n >= sizeof buf) return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    *v = strtod(buf, NULL);
    return 0;
}

static inline int j_literal(struct j_parser *j, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n)) return -1;
    j->p += n;
    return 0;
}

static inline int j_value(struct j_parser *j, struct j_field *rec);

static inline int j_object(struct j_parser *j, struct j_obj *rec) {
    j->p++; /* '{' */
    j_ws(j);
    if (j->p < j->end && *j->p == '}') { j->p++; return 0; }
    for (;;) {
        struct j_field tmp, *f = rec && rec->n < J_MAX_FIELDS ? &rec->f[rec->n] : &tmp;
        j_ws(j);
        if (j_string(j, f->key, sizeof f->key) != 0) return -1;
        for (int i = 0; rec && i < rec->n; i++)
            if (!strcmp(rec->f[i].key, f->key)) return -1; /* duplicate keys: reject */
        j_ws(j);
        if (j->p >= j->end || *j->p++ != ':') return -1;
        j_ws(j);
        if (j_value(j, f) != 0) return -1;
        if (rec && f != &tmp) rec->n++;
        j_ws(j);
        if (j->p >= j->end) return -1;
        if (*j->p == ',') { j->p++; continue; }
        if (*j->p == '}') { j->p++; return 0; }
        return -1;
    }
}

static inline int j_array(struct j_parser *j, int top) {
    j->p++; /* '[' */
    j_ws(j);
    if (j->p < j->end && *j->p == ']') { j->p++; return 0; }
    for (;;) {
        j_ws(j);
        if (top && j->p < j->end && *j->p == '{' && j->doc->n_objs < J_MAX_OBJS) {
            if (++j->depth > 64) return -1;
            struct j_obj *o = &j->doc->objs[j->doc->n_objs++];
            o->n = 0;
            if (j_object(j, o) != 0) return -1;
            j->depth--;
        } else if (j_value(j, NULL) != 0) {
            return -1;
        }
        j_ws(j);
        if (j->p >= j->end) return -1;
        if (*j->p == ',') { j->p++; continue; }
        if (*j->p == ']') { j->p++; return 0; }
        return -1;
    }
}

static inline int j_value(struct j_parser *j, struct j_field *rec) {
    struct j_field tmp;
    if (!rec) rec = &tmp;
    if (j->p >= j->end) return -1;
    if (++j->depth > 64) return -1;
    int rc;
    switch (*j->p) {
    case '{': rec->kind = J_NESTED; rc = j_object(j, NULL); break;
    case '[': rec->kind = J_NESTED; rc = j_array(j, 0); break;
    case '"': rec->kind = J_STR; rc = j_string(j, rec->str, sizeof rec->str); break;
    case 't': rec->kind = J_BOOL; rec->num = 1; rc = j_literal(j, "true"); break;
    case 'f': rec->kind = J_BOOL; rec->num = 0; rc = j_literal(j, "false"); break;
    case 'n': rec->kind = J_NULL; rc = j_literal(j, "null"); break;
    default: rec->kind = J_NUM; rc = j_number(j, &rec->num); break;
    }
    j->depth--;
    return rc;
}

/* 0 if text is one valid JSON document (filling doc for a top-level array). */
static inline int j_parse(const char *text, size_t len, struct j_doc *doc) {
    struct j_parser j = { text, text + len, 0, doc };
    memset(doc, 0, sizeof *doc);
    j_ws(&j);
    if (j.p < j.end && *j.p == '[') {
        doc->top_is_array = 1;
        if (j_array(&j, 1) != 0) return -1;
    } else if (j_value(&j, NULL) != 0) {
        return -1;
    }
    j_ws(&j);
    return j.p == j.end ? 0 : -1;
}

static inline const struct j_field *j_get(const struct j_obj *o, const char *key) {
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->f[i].key, key)) return &o->f[i];
    return NULL;
}

#endif
