/* write.c - build a GGUF file: metadata and tensors are collected in
 * memory (tensor data copied, borrowed, or made at write time by a fill
 * function), then serialized in one pass to a buffer, a descriptor, or a
 * file that appears whole or not at all (rb_outfile: temp file, rename).
 *
 * The writer checks what it needs to stay memory-safe, not what makes a
 * file valid: tests use it (and rb_gguf_writer_add_raw) to build bad files.
 */
#include "gguf.h"
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct writer_kv {
    char *key;
    size_t key_len;
    uint32_t type;
    uint8_t *value; /* encoded bytes after the type field */
    size_t n_bytes;
};

struct writer_tensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    const void *data; /* NULL: write zeros */
    void *owned;
    uint64_t n_bytes;
    uint64_t offset;  /* set when serializing */
};

struct gguf_writer {
    uint32_t version, alignment;
    struct writer_kv *kvs;
    size_t n_kv, cap_kv;
    struct writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
    gguf_fill_fn fill; /* bytes of tensors added without data, or NULL: zeros */
    void *fill_user;
    void (*free_fill_user)(void *user);
};

struct gguf_writer *rb_gguf_writer_new(void) {
    struct gguf_writer *w = calloc(1, sizeof *w);
    if (w) {
        w->version = 3;
        w->alignment = 32;
    }
    return w;
}

void rb_gguf_writer_free(struct gguf_writer *w) {
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].value);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].owned);
    }
    free(w->kvs);
    free(w->tensors);
    if (w->free_fill_user)
        w->free_fill_user(w->fill_user);
    free(w);
}

void rb_gguf_writer_set_fill(struct gguf_writer *w, gguf_fill_fn fill, void *user, void (*free_user)(void *user)) {
    w->fill = fill;
    w->fill_user = user;
    w->free_fill_user = free_user;
}

void rb_gguf_writer_set_version(struct gguf_writer *w, uint32_t version) { w->version = version; }
void rb_gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment) { w->alignment = alignment; }

/* ---- metadata ---- */

static int add_kv_len(struct gguf_writer *w, const char *key, size_t key_len, uint32_t type,
                      const void *value, size_t n_bytes) {
    if (!w || !key || (!value && n_bytes))
        return -1;
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        struct writer_kv *kvs = realloc(w->kvs, cap * sizeof *kvs);
        if (!kvs)
            return -1;
        w->kvs = kvs;
        w->cap_kv = cap;
    }
    struct writer_kv kv = { malloc(key_len + 1), key_len, type, malloc(n_bytes ? n_bytes : 1), n_bytes };
    if (!kv.key || !kv.value) {
        free(kv.key);
        free(kv.value);
        return -1;
    }
    memcpy(kv.key, key, key_len);
    kv.key[key_len] = '\0';
    if (n_bytes)
        memcpy(kv.value, value, n_bytes);
    w->kvs[w->n_kv++] = kv;
    return 0;
}

int rb_gguf_writer_add_raw(struct gguf_writer *w, const char *key, enum gguf_type type, const void *value, size_t n_bytes) {
    return key ? add_kv_len(w, key, strlen(key), (uint32_t)type, value, n_bytes) : -1;
}

int rb_gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v) {
    return rb_gguf_writer_add_raw(w, key, GGUF_TYPE_UINT32, &v, 4);
}
int rb_gguf_writer_add_i32(struct gguf_writer *w, const char *key, int32_t v) {
    return rb_gguf_writer_add_raw(w, key, GGUF_TYPE_INT32, &v, 4);
}
int rb_gguf_writer_add_u64(struct gguf_writer *w, const char *key, uint64_t v) {
    return rb_gguf_writer_add_raw(w, key, GGUF_TYPE_UINT64, &v, 8);
}
int rb_gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v) {
    return rb_gguf_writer_add_raw(w, key, GGUF_TYPE_FLOAT32, &v, 4);
}
int rb_gguf_writer_add_bool(struct gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    return rb_gguf_writer_add_raw(w, key, GGUF_TYPE_BOOL, &b, 1);
}

int rb_gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v) {
    if (!v)
        return -1;
    uint64_t len = strlen(v);
    uint8_t *buf = malloc(8 + len);
    if (!buf)
        return -1;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, v, len);
    int rc = rb_gguf_writer_add_raw(w, key, GGUF_TYPE_STRING, buf, 8 + len);
    free(buf);
    return rc;
}

static size_t elem_size(enum gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

int rb_gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_type elem_type, const void *data, uint64_t n) {
    size_t es = elem_size(elem_type);
    if (es == 0 || n > (SIZE_MAX - 12) / es || (!data && n))
        return -1; /* strings go through rb_gguf_writer_add_str_arr */
    size_t n_bytes = 12 + (size_t)n * es;
    uint8_t *buf = malloc(n_bytes);
    if (!buf)
        return -1;
    uint32_t et = (uint32_t)elem_type;
    memcpy(buf, &et, 4);
    memcpy(buf + 4, &n, 8);
    if (n)
        memcpy(buf + 12, data, (size_t)n * es);
    int rc = rb_gguf_writer_add_raw(w, key, GGUF_TYPE_ARRAY, buf, n_bytes);
    free(buf);
    return rc;
}

int rb_gguf_writer_add_str_arr(struct gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if (!strs && n)
        return -1;
    size_t n_bytes = 12;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i])
            return -1;
        n_bytes += 8 + strlen(strs[i]);
    }
    uint8_t *buf = malloc(n_bytes), *p = buf;
    if (!buf)
        return -1;
    uint32_t et = GGUF_TYPE_STRING;
    memcpy(p, &et, 4);
    memcpy(p + 4, &n, 8);
    p += 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = strlen(strs[i]);
        memcpy(p, &len, 8);
        memcpy(p + 8, strs[i], len);
        p += 8 + len;
    }
    int rc = rb_gguf_writer_add_raw(w, key, GGUF_TYPE_ARRAY, buf, n_bytes);
    free(buf);
    return rc;
}

/* Encoded size of a kv's value as it lies in a parsed file. */
static uint64_t kv_value_bytes(const struct gguf_kv *kv) {
    if (kv->type == GGUF_TYPE_STRING) {
        uint64_t len;
        memcpy(&len, kv->value, 8);
        return 8 + len;
    }
    if (kv->type != GGUF_TYPE_ARRAY)
        return elem_size(kv->type);
    if (kv->arr_type != GGUF_TYPE_STRING)
        return 12 + kv->arr_len * elem_size(kv->arr_type); /* checked at open */
    if (kv->arr_len == 0)
        return 12;
    uint64_t last = kv->str_offsets[kv->arr_len - 1], len;
    memcpy(&len, kv->value + last, 8);
    return 12 + last + 8 + len;
}

int rb_gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv) {
    if (!kv || !kv->value)
        return -1;
    const uint8_t *start = kv->type == GGUF_TYPE_ARRAY ? kv->value - 12 : kv->value;
    return add_kv_len(w, kv->key.data, (size_t)kv->key.len, (uint32_t)kv->type, start, (size_t)kv_value_bytes(kv));
}

/* ---- tensors ---- */

int rb_gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t n_bytes, int borrow) {
    if (!w || !name || n_dims > 4 || (n_dims && !ne) || n_bytes > SIZE_MAX)
        return -1;
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        struct writer_tensor *ts = realloc(w->tensors, cap * sizeof *ts);
        if (!ts)
            return -1;
        w->tensors = ts;
        w->cap_tensors = cap;
    }
    struct writer_tensor t = { .type = type, .n_dims = n_dims, .n_bytes = n_bytes, .data = data };
    t.name = strdup(name);
    if (!t.name)
        return -1;
    for (uint32_t d = 0; d < 4; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    if (data && !borrow) {
        t.owned = malloc(n_bytes ? (size_t)n_bytes : 1);
        if (!t.owned) {
            free(t.name);
            return -1;
        }
        memcpy(t.owned, data, (size_t)n_bytes);
        t.data = t.owned;
    }
    w->tensors[w->n_tensors++] = t;
    return 0;
}

/* ---- serialization ---- */

/* Bytes go either into a buffer sized in advance or, through a staging
 * buffer, to a file descriptor. */
struct sink {
    uint8_t *buf;
    size_t pos, cap;
    int fd;           /* -1 for memory */
    int failed;
    char *err;
};

static void write_all(struct sink *s, const uint8_t *p, size_t n) {
    size_t done = 0;
    while (!s->failed && done < n) {
        ssize_t k = write(s->fd, p + done, n - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            snprintf(s->err, RB_ERR_MAX, "write failed: %s", k < 0 ? strerror(errno) : "short write");
            s->failed = 1;
        } else {
            done += (size_t)k;
        }
    }
}

static void sink_flush(struct sink *s) {
    write_all(s, s->buf, s->pos);
    s->pos = 0;
}

static void put(struct sink *s, const void *p, uint64_t n) {
    const uint8_t *src = p;
    if (s->fd >= 0 && src && n >= s->cap) { /* large tensor data: no staging copy */
        sink_flush(s);
        write_all(s, src, (size_t)n);
        return;
    }
    while (n && !s->failed) {
        if (s->pos == s->cap) {
            RB_CHECK(s->fd >= 0); /* a memory sink is sized in advance */
            sink_flush(s);
        }
        size_t take = s->cap - s->pos < n ? s->cap - s->pos : (size_t)n;
        if (src) {
            memcpy(s->buf + s->pos, src, take);
            src += take;
        } else {
            memset(s->buf + s->pos, 0, take);
        }
        s->pos += take;
        n -= take;
    }
}

static void put_u32(struct sink *s, uint32_t v) { put(s, &v, 4); }
static void put_u64(struct sink *s, uint64_t v) { put(s, &v, 8); }

static uint64_t pad_to(uint64_t pos, uint64_t align) { return align ? (align - pos % align) % align : 0; }

static int has_key(const struct gguf_writer *w, const char *key) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kvs[i].key_len == strlen(key) && !memcmp(w->kvs[i].key, key, w->kvs[i].key_len))
            return 1;
    return 0;
}

/* Header size; also assigns each tensor its offset and returns the total file size. */
static uint64_t plan(struct gguf_writer *w, int add_alignment, uint64_t *total) {
    uint64_t pos = 4 + 4 + 8 + 8;
    for (size_t i = 0; i < w->n_kv; i++)
        pos += 8 + w->kvs[i].key_len + 4 + w->kvs[i].n_bytes;
    if (add_alignment)
        pos += 8 + strlen("general.alignment") + 4 + 4;
    for (size_t i = 0; i < w->n_tensors; i++)
        pos += 8 + strlen(w->tensors[i].name) + 4 + 8 * (uint64_t)w->tensors[i].n_dims + 4 + 8;
    uint64_t header = pos, off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        w->tensors[i].offset = off;
        off += w->tensors[i].n_bytes;
        off += pad_to(off, w->alignment);
    }
    *total = header + pad_to(header, w->alignment) + off;
    return header;
}

static void serialize(struct gguf_writer *w, struct sink *s, int add_alignment) {
    uint64_t total, header = plan(w, add_alignment, &total);
    put(s, "GGUF", 4);
    put_u32(s, w->version);
    put_u64(s, w->n_tensors);
    put_u64(s, w->n_kv + (add_alignment ? 1 : 0));
    for (size_t i = 0; i < w->n_kv; i++) {
        put_u64(s, w->kvs[i].key_len);
        put(s, w->kvs[i].key, w->kvs[i].key_len);
        put_u32(s, w->kvs[i].type);
        put(s, w->kvs[i].value, w->kvs[i].n_bytes);
    }
    if (add_alignment) {
        const char *key = "general.alignment";
        put_u64(s, strlen(key));
        put(s, key, strlen(key));
        put_u32(s, GGUF_TYPE_UINT32);
        put_u32(s, w->alignment);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct writer_tensor *t = &w->tensors[i];
        put_u64(s, strlen(t->name));
        put(s, t->name, strlen(t->name));
        put_u32(s, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(s, (uint64_t)t->ne[d]);
        put_u32(s, t->type);
        put_u64(s, t->offset);
    }
    put(s, NULL, pad_to(header, w->alignment));
    for (size_t i = 0; i < w->n_tensors && !s->failed; i++) {
        const struct writer_tensor *t = &w->tensors[i];
        const void *data = t->data;
        if (!data && w->fill && w->fill(w->fill_user, i, &data, s->err) != 0) {
            s->failed = 1;
            break;
        }
        put(s, data, t->n_bytes);
        put(s, NULL, pad_to(t->n_bytes, w->alignment));
    }
}

int rb_gguf_writer_write_mem(struct gguf_writer *w, void **buf, size_t *size, char *err) {
    int add_alignment = w->alignment != 32 && !has_key(w, "general.alignment");
    uint64_t total;
    plan(w, add_alignment, &total);
    if (total > SIZE_MAX) {
        snprintf(err, RB_ERR_MAX, "file too large for memory");
        return -1;
    }
    struct sink s = { malloc((size_t)total ? (size_t)total : 1), 0, (size_t)total, -1, 0, err };
    if (!s.buf) {
        snprintf(err, RB_ERR_MAX, "out of memory (%llu bytes)", (unsigned long long)total);
        return -1;
    }
    serialize(w, &s, add_alignment);
    RB_CHECK(s.failed || s.pos == total);
    if (s.failed) {
        free(s.buf);
        return -1;
    }
    *buf = s.buf;
    *size = (size_t)total;
    return 0;
}

int rb_gguf_writer_write_fd(struct gguf_writer *w, int fd, char *err) {
    int add_alignment = w->alignment != 32 && !has_key(w, "general.alignment");
    struct sink s = { malloc(1 << 20), 0, 1 << 20, fd, 0, err };
    if (!s.buf) {
        snprintf(err, RB_ERR_MAX, "out of memory");
        return -1;
    }
    serialize(w, &s, add_alignment);
    sink_flush(&s);
    free(s.buf);
    return s.failed ? -1 : 0;
}

int rb_gguf_writer_write_file(struct gguf_writer *w, const char *path, char *err) {
    struct rb_outfile o;
    if (rb_outfile_open(&o, path, 0, err) != 0)
        return -1;
    if (rb_gguf_writer_write_fd(w, o.fd, err) != 0) {
        rb_outfile_abort(&o);
        return -1;
    }
    return rb_outfile_commit(&o, err);
}
