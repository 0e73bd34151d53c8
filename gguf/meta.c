/* meta.c - lookups and typed getters over a parsed GGUF file.
 *
 * Getters never reinterpret bytes: a value of the wrong type is an error
 * naming both types. Integer getters accept any integer type whose value
 * fits the destination (files disagree on u32 vs i32 for counts).
 */
#include "gguf.h"

#include <stdio.h>
#include <string.h>

static int str_eq(const struct gguf_str *s, const char *z) {
    size_t n = strlen(z);
    return s->len == n && memcmp(s->data, z, n) == 0;
}

int64_t rb_gguf_find_key(const struct gguf_file *f, const char *key) {
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (str_eq(&f->kv[i].key, key))
            return (int64_t)i;
    return -1;
}

int64_t rb_gguf_find_tensor(const struct gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (str_eq(&f->tensors[i].name, name))
            return (int64_t)i;
    return -1;
}

const struct gguf_tensor *rb_gguf_get_tensor(const struct gguf_file *f, const char *name) {
    int64_t i = rb_gguf_find_tensor(f, name);
    return i < 0 ? NULL : &f->tensors[i];
}

/* ---- typed getters ---- */

static const struct gguf_kv *find_kv(const struct gguf_file *f, const char *key, char *err) {
    int64_t i = rb_gguf_find_key(f, key);
    if (i < 0) {
        snprintf(err, RB_ERR_MAX, "%s: missing", key);
        return NULL;
    }
    return &f->kv[i];
}

static void type_mismatch(const struct gguf_kv *kv, const char *key, const char *want, char *err) {
    if (kv->type == GGUF_TYPE_ARRAY)
        snprintf(err, RB_ERR_MAX, "%s: expected %s, got array of %s", key, want, rb_gguf_type_name(kv->arr_type));
    else
        snprintf(err, RB_ERR_MAX, "%s: expected %s, got %s", key, want, rb_gguf_type_name(kv->type));
}

/* An integer value as sign + magnitude-ish: *neg set for negative values
 * (then *s holds it), otherwise *u holds it. -1 if not an integer type. */
static int kv_integer(const struct gguf_kv *kv, int *neg, int64_t *s, uint64_t *u) {
    const uint8_t *p = kv->value;
    int64_t sv = 0;
    *neg = 0;
    switch (kv->type) {
    case GGUF_TYPE_UINT8:  { uint8_t v;  memcpy(&v, p, 1); *u = v; return 0; }
    case GGUF_TYPE_UINT16: { uint16_t v; memcpy(&v, p, 2); *u = v; return 0; }
    case GGUF_TYPE_UINT32: { uint32_t v; memcpy(&v, p, 4); *u = v; return 0; }
    case GGUF_TYPE_UINT64: { uint64_t v; memcpy(&v, p, 8); *u = v; return 0; }
    case GGUF_TYPE_INT8:   { int8_t v;   memcpy(&v, p, 1); sv = v; break; }
    case GGUF_TYPE_INT16:  { int16_t v;  memcpy(&v, p, 2); sv = v; break; }
    case GGUF_TYPE_INT32:  { int32_t v;  memcpy(&v, p, 4); sv = v; break; }
    case GGUF_TYPE_INT64:  { int64_t v;  memcpy(&v, p, 8); sv = v; break; }
    default: return -1;
    }
    *s = sv;
    *neg = sv < 0;
    *u = sv < 0 ? 0 : (uint64_t)sv;
    return 0;
}

static void does_not_fit(const char *key, int neg, int64_t s, uint64_t u, const char *want, char *err) {
    if (neg)
        snprintf(err, RB_ERR_MAX, "%s: value %lld does not fit %s", key, (long long)s, want);
    else
        snprintf(err, RB_ERR_MAX, "%s: value %llu does not fit %s", key, (unsigned long long)u, want);
}

int rb_gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out, char *err) {
    const struct gguf_kv *kv = find_kv(f, key, err);
    int neg;
    int64_t s = 0;
    uint64_t u = 0;
    if (!kv)
        return -1;
    if (kv_integer(kv, &neg, &s, &u) != 0) {
        type_mismatch(kv, key, "u64", err);
        return -1;
    }
    if (neg) {
        does_not_fit(key, neg, s, u, "u64", err);
        return -1;
    }
    *out = u;
    return 0;
}

int rb_gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out, char *err) {
    const struct gguf_kv *kv = find_kv(f, key, err);
    int neg;
    int64_t s = 0;
    uint64_t u = 0;
    if (!kv)
        return -1;
    if (kv_integer(kv, &neg, &s, &u) != 0) {
        type_mismatch(kv, key, "u32", err);
        return -1;
    }
    if (neg || u > UINT32_MAX) {
        does_not_fit(key, neg, s, u, "u32", err);
        return -1;
    }
    *out = (uint32_t)u;
    return 0;
}

int rb_gguf_get_i32(const struct gguf_file *f, const char *key, int32_t *out, char *err) {
    const struct gguf_kv *kv = find_kv(f, key, err);
    int neg;
    int64_t s = 0;
    uint64_t u = 0;
    if (!kv)
        return -1;
    if (kv_integer(kv, &neg, &s, &u) != 0) {
        type_mismatch(kv, key, "i32", err);
        return -1;
    }
    if (neg ? s < INT32_MIN : u > INT32_MAX) {
        does_not_fit(key, neg, s, u, "i32", err);
        return -1;
    }
    *out = neg ? (int32_t)s : (int32_t)u;
    return 0;
}

/* f32, or f64 narrowed (a value, not a reinterpretation). */
int rb_gguf_get_f32(const struct gguf_file *f, const char *key, float *out, char *err) {
    const struct gguf_kv *kv = find_kv(f, key, err);
    if (!kv)
        return -1;
    if (kv->type == GGUF_TYPE_FLOAT32) {
        memcpy(out, kv->value, 4);
        return 0;
    }
    if (kv->type == GGUF_TYPE_FLOAT64) {
        double d;
        memcpy(&d, kv->value, 8);
        *out = (float)d;
        return 0;
    }
    type_mismatch(kv, key, "f32", err);
    return -1;
}

int rb_gguf_get_bool(const struct gguf_file *f, const char *key, int *out, char *err) {
    const struct gguf_kv *kv = find_kv(f, key, err);
    if (!kv)
        return -1;
    if (kv->type != GGUF_TYPE_BOOL) {
        type_mismatch(kv, key, "bool", err);
        return -1;
    }
    *out = kv->value[0] != 0;
    return 0;
}

int rb_gguf_get_str(const struct gguf_file *f, const char *key, char *out, size_t cap, char *err) {
    const struct gguf_kv *kv = find_kv(f, key, err);
    if (!kv)
        return -1;
    if (kv->type != GGUF_TYPE_STRING) {
        type_mismatch(kv, key, "str", err);
        return -1;
    }
    if (cap == 0)
        return 0;
    uint64_t len;
    memcpy(&len, kv->value, 8);
    if (memchr(kv->value + 8, 0, (size_t)len)) { /* "llama\0..." must not read as "llama" */
        snprintf(err, RB_ERR_MAX, "%s: the string holds a NUL byte", key);
        return -1;
    }
    size_t n = len < cap - 1 ? (size_t)len : cap - 1;
    memcpy(out, kv->value + 8, n);
    out[n] = '\0';
    return 0;
}

int rb_gguf_get_arr(const struct gguf_file *f, const char *key, enum gguf_type elem_type,
                 const void **data, uint64_t *len, char *err) {
    const struct gguf_kv *kv = find_kv(f, key, err);
    if (!kv)
        return -1;
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != elem_type) {
        char want[32];
        snprintf(want, sizeof want, "array of %s", rb_gguf_type_name(elem_type));
        type_mismatch(kv, key, want, err);
        return -1;
    }
    *data = kv->value;
    *len = kv->arr_len;
    return 0;
}

struct gguf_str rb_gguf_arr_str(const struct gguf_kv *kv, uint64_t i) {
    struct gguf_str s = { 0, NULL };
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING || i >= kv->arr_len || !kv->str_offsets)
        return s;
    const uint8_t *p = kv->value + kv->str_offsets[i];
    memcpy(&s.len, p, 8);
    s.data = (const char *)p + 8;
    return s;
}
