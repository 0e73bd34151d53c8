/* read.c - parse a GGUF v2/v3 file that lies in memory (usually a read-only
 * mapping). Every byte is untrusted: each count and length is checked
 * against the bytes that remain before anything is allocated or read, all
 * size arithmetic is overflow-checked, and multi-byte fields are read with
 * memcpy (the file is little-endian; so are the hosts we build for).
 *
 * File layout (v2/v3):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv x      { str key, u32 type, value }
 *   n_tensors x { str name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   padding to `alignment`, then the data section (tensor offsets are relative to it)
 * where str = u64 length + bytes (no NUL) and an array value is
 *   u32 element type, u64 count, elements.
 */
#define _DEFAULT_SOURCE /* madvise */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_BYTES   65536u      /* longest key or tensor name we accept */
#define ALIGNMENT_MAX    (1u << 20)  /* general.alignment above this is absurd */
#define KV_MIN_BYTES     13u         /* u64 key length + u32 type + a 1-byte value */
#define TENSOR_MIN_BYTES 32u         /* u64 name length + u32 n_dims + one u64 dim + u32 type + u64 offset */

/* ---- cursor over the untrusted bytes ---- */

struct cursor {
    const uint8_t *buf;
    size_t size;
    size_t pos; /* always <= size */
};

static size_t cur_left(const struct cursor *c) { return c->size - c->pos; }

static int cur_skip(struct cursor *c, uint64_t n) {
    if (n > cur_left(c))
        return -1;
    c->pos += (size_t)n;
    return 0;
}

static int cur_u32(struct cursor *c, uint32_t *v) {
    if (cur_left(c) < 4)
        return -1;
    memcpy(v, c->buf + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int cur_u64(struct cursor *c, uint64_t *v) {
    if (cur_left(c) < 8)
        return -1;
    memcpy(v, c->buf + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* Reads a length-prefixed string. Returns 0, -1 when truncated, -2 when
 * longer than max_len (checked before the bytes are touched). */
static int cur_str(struct cursor *c, struct gguf_str *s, uint64_t max_len) {
    uint64_t len;
    if (cur_u64(c, &len) != 0)
        return -1;
    if (len > max_len)
        return -2;
    if (len > cur_left(c))
        return -1;
    s->len = len;
    s->data = (const char *)c->buf + c->pos;
    c->pos += (size_t)len;
    return 0;
}

/* A printable, bounded copy of a file string for error messages. */
const char *rb_gguf_show(const struct gguf_str *s, char *buf, size_t cap) {
    size_t n = s->len < cap - 4 ? (size_t)s->len : cap - 4;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s->data[i];
        buf[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    if (n < s->len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

#define SHOW_MAX 72

size_t rb_gguf_utf8_char(const char *s, size_t n, uint32_t *cp) {
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    size_t len = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t c = p[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (p[i] & 0x3f);
    }
    static const uint32_t least[5] = { 0, 0, 0x80, 0x800, 0x10000 }; /* below: overlong */
    if (c < least[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

/* Keys and tensor names are looked up as C strings and printed: a NUL would
 * cut them short, invalid UTF-8 garbles them. */
static int check_name(const struct gguf_str *s, const char *what, char *err) {
    char name[SHOW_MAX];
    uint32_t cp;
    for (uint64_t i = 0; i < s->len;) {
        size_t k = rb_gguf_utf8_char(s->data + i, (size_t)(s->len - i), &cp);
        if (k == 0 || cp == 0) {
            snprintf(err, RB_ERR_MAX, "%s '%s': %s at byte %llu", what, rb_gguf_show(s, name, sizeof name),
                     k ? "NUL byte" : "invalid UTF-8", (unsigned long long)i);
            return -1;
        }
        i += k;
    }
    return 0;
}

/* ---- metadata ---- */

/* Bytes of one scalar value; 0 for strings and arrays (variable size). */
static uint64_t scalar_size(uint32_t type) {
    switch (type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

/* Array value: element type, count, elements. Strings get an offset table
 * so rb_gguf_arr_str is O(1); its size is bounded by the bytes it indexes. */
static int parse_array(struct cursor *c, struct gguf_kv *kv, const char *key, char *err) {
    uint32_t elem;
    uint64_t n;
    if (cur_u32(c, &elem) != 0 || cur_u64(c, &n) != 0)
        goto truncated;
    if (elem == GGUF_TYPE_ARRAY) {
        snprintf(err, RB_ERR_MAX, "metadata '%s': arrays of arrays are not supported", key);
        return -1;
    }
    if (elem >= GGUF_TYPE_COUNT) {
        snprintf(err, RB_ERR_MAX, "metadata '%s': unknown array element type %u", key, elem);
        return -1;
    }
    kv->arr_type = (enum gguf_type)elem;
    kv->arr_len = n;
    kv->value = c->buf + c->pos;
    if (elem != GGUF_TYPE_STRING) {
        uint64_t es = scalar_size(elem);
        if (n > cur_left(c) / es)
            goto truncated;
        c->pos += (size_t)(n * es);
        return 0;
    }
    if (n > cur_left(c) / 8) /* each string needs at least its length field */
        goto truncated;
    uint64_t *offs = malloc(n ? (size_t)n * sizeof *offs : 1);
    if (!offs) {
        snprintf(err, RB_ERR_MAX, "metadata '%s': out of memory for %llu strings", key, (unsigned long long)n);
        return -1;
    }
    kv->str_offsets = offs;
    size_t start = c->pos;
    for (uint64_t i = 0; i < n; i++) {
        struct gguf_str s;
        offs[i] = c->pos - start;
        if (cur_str(c, &s, UINT64_MAX) != 0) {
            snprintf(err, RB_ERR_MAX, "truncated file: metadata '%s' string %llu ends past the end of the file",
                     key, (unsigned long long)i);
            return -1;
        }
    }
    return 0;
truncated:
    snprintf(err, RB_ERR_MAX, "truncated file: metadata '%s' (array) ends past the end of the file", key);
    return -1;
}

static int parse_kv(struct cursor *c, struct gguf_kv *kv, uint64_t index, char *err) {
    char key[SHOW_MAX];
    int rc = cur_str(c, &kv->key, NAME_MAX_BYTES);
    if (rc == -2) {
        snprintf(err, RB_ERR_MAX, "metadata key %llu: name too long (more than %u bytes)",
                 (unsigned long long)index, NAME_MAX_BYTES);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, RB_ERR_MAX, "truncated file: metadata key %llu ends past the end of the file",
                 (unsigned long long)index);
        return -1;
    }
    if (check_name(&kv->key, "metadata key", err) != 0)
        return -1;
    if (kv->key.len == 0) {
        snprintf(err, RB_ERR_MAX, "metadata key %llu: empty name", (unsigned long long)index);
        return -1;
    }
    rb_gguf_show(&kv->key, key, sizeof key);
    uint32_t type;
    if (cur_u32(c, &type) != 0) {
        snprintf(err, RB_ERR_MAX, "truncated file: metadata '%s' ends past the end of the file", key);
        return -1;
    }
    if (type >= GGUF_TYPE_COUNT) {
        snprintf(err, RB_ERR_MAX, "metadata '%s': unknown value type %u", key, type);
        return -1;
    }
    kv->type = (enum gguf_type)type;
    if (type == GGUF_TYPE_ARRAY)
        return parse_array(c, kv, key, err);
    kv->value = c->buf + c->pos;
    if (type == GGUF_TYPE_STRING) {
        struct gguf_str s;
        rc = cur_str(c, &s, UINT64_MAX);
    } else {
        rc = cur_skip(c, scalar_size(type));
    }
    if (rc != 0) {
        snprintf(err, RB_ERR_MAX, "truncated file: metadata '%s' value ends past the end of the file", key);
        return -1;
    }
    return 0;
}

static int str_cmp(const struct gguf_str *a, const struct gguf_str *b) {
    size_t n = a->len < b->len ? (size_t)a->len : (size_t)b->len;
    int d = memcmp(a->data, b->data, n);
    if (d)
        return d;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int str_ptr_cmp(const void *a, const void *b) {
    return str_cmp(*(const struct gguf_str *const *)a, *(const struct gguf_str *const *)b);
}

/* Finds a repeated name among n strings (each `stride` bytes apart) by
 * sorting pointers to them: O(n log n) even for hostile counts. Returns the
 * duplicate, NULL if none; *oom set when the scratch could not be allocated. */
static const struct gguf_str *find_duplicate(const void *first, size_t stride, uint64_t n, int *oom) {
    *oom = 0;
    if (n < 2)
        return NULL;
    const struct gguf_str **names = malloc((size_t)n * sizeof *names);
    if (!names) {
        *oom = 1;
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++)
        names[i] = (const struct gguf_str *)((const char *)first + i * stride);
    qsort(names, (size_t)n, sizeof *names, str_ptr_cmp);
    const struct gguf_str *dup = NULL;
    for (uint64_t i = 1; i < n && !dup; i++)
        if (str_cmp(names[i - 1], names[i]) == 0)
            dup = names[i];
    free(names);
    return dup;
}

/* -1 with "duplicate WHAT 'name'" when two of the n names are equal. */
static int check_unique(const void *first, size_t stride, uint64_t n, const char *what, char *err) {
    int oom;
    const struct gguf_str *dup = find_duplicate(first, stride, n, &oom);
    char name[SHOW_MAX];
    if (oom)
        snprintf(err, RB_ERR_MAX, "out of memory");
    else if (dup)
        snprintf(err, RB_ERR_MAX, "duplicate %s '%s'", what, rb_gguf_show(dup, name, sizeof name));
    return oom || dup ? -1 : 0;
}

/* general.alignment: u32, nonzero, a power of two, at most ALIGNMENT_MAX. */
static int read_alignment(struct gguf_file *f, char *err) {
    f->alignment = 32;
    int64_t i = rb_gguf_find_key(f, "general.alignment");
    if (i < 0)
        return 0;
    const struct gguf_kv *kv = &f->kv[i];
    if (kv->type != GGUF_TYPE_UINT32) {
        snprintf(err, RB_ERR_MAX, "metadata 'general.alignment': expected u32, got %s", rb_gguf_type_name(kv->type));
        return -1;
    }
    uint32_t a;
    memcpy(&a, kv->value, 4);
    if (a == 0) {
        snprintf(err, RB_ERR_MAX, "metadata 'general.alignment': must not be 0");
        return -1;
    }
    if (a & (a - 1)) {
        snprintf(err, RB_ERR_MAX, "metadata 'general.alignment': not a power of two (%u)", a);
        return -1;
    }
    if (a > ALIGNMENT_MAX) {
        snprintf(err, RB_ERR_MAX, "metadata 'general.alignment': too large (%u, at most %u)", a, ALIGNMENT_MAX);
        return -1;
    }
    f->alignment = a;
    return 0;
}

/* ---- tensor infos ---- */

static int parse_tensor_info(struct cursor *c, struct gguf_tensor *t, uint64_t index, char *err) {
    char name[SHOW_MAX];
    int rc = cur_str(c, &t->name, NAME_MAX_BYTES);
    if (rc == -2) {
        snprintf(err, RB_ERR_MAX, "tensor %llu: name too long (more than %u bytes)",
                 (unsigned long long)index, NAME_MAX_BYTES);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, RB_ERR_MAX, "truncated file: tensor info %llu ends past the end of the file",
                 (unsigned long long)index);
        return -1;
    }
    rb_gguf_show(&t->name, name, sizeof name);
    if (cur_u32(c, &t->n_dims) != 0)
        goto truncated;
    if (check_name(&t->name, "tensor name", err) != 0)
        return -1;
    if (t->n_dims == 0 || t->n_dims > 4) {
        snprintf(err, RB_ERR_MAX, "tensor '%s': %u dimensions (must be 1 to 4)", name, t->n_dims);
        return -1;
    }
    for (int d = 0; d < 4; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if (cur_u64(c, &ne) != 0)
            goto truncated;
        if (ne == 0) {
            snprintf(err, RB_ERR_MAX, "tensor '%s': dimension %u is 0", name, d);
            return -1;
        }
        if (ne > (uint64_t)INT64_MAX) {
            snprintf(err, RB_ERR_MAX, "tensor '%s': dimension %u is too large (%llu)", name, d,
                     (unsigned long long)ne);
            return -1;
        }
        t->ne[d] = (int64_t)ne;
    }
    if (cur_u32(c, &t->type) != 0 || cur_u64(c, &t->offset) != 0)
        goto truncated;
    return 0;
truncated:
    snprintf(err, RB_ERR_MAX, "truncated file: tensor '%s' info ends past the end of the file", name);
    return -1;
}

/* Type, shape and byte size of one tensor (everything but its position). */
static int check_tensor_size(struct gguf_tensor *t, char *err) {
    char name[SHOW_MAX];
    rb_gguf_show(&t->name, name, sizeof name);
    const struct rb_type_size *ts = rb_type_size(t->type);
    if (!ts) {
        snprintf(err, RB_ERR_MAX, "tensor '%s': unknown or retired tensor type %u", name, t->type);
        return -1;
    }
    uint64_t n_elems = 1;
    for (int d = 0; d < 4; d++) {
        if ((uint64_t)t->ne[d] > (uint64_t)INT64_MAX / n_elems) {
            snprintf(err, RB_ERR_MAX, "tensor '%s': element count overflows 64 bits", name);
            return -1;
        }
        n_elems *= (uint64_t)t->ne[d];
    }
    if (t->ne[0] % ts->block_size != 0) {
        snprintf(err, RB_ERR_MAX, "tensor '%s': row length %lld is not a multiple of the %s block size %u",
                 name, (long long)t->ne[0], ts->name, ts->block_size);
        return -1;
    }
    uint64_t blocks = n_elems / ts->block_size;
    if (blocks > (uint64_t)INT64_MAX / ts->type_size) {
        snprintf(err, RB_ERR_MAX, "tensor '%s': byte size overflows 64 bits", name);
        return -1;
    }
    t->n_bytes = blocks * ts->type_size;
    return 0;
}

/* Offset aligned, data inside the file (no wrap-around). */
static int check_tensor_place(const struct gguf_file *f, struct gguf_tensor *t, char *err) {
    char name[SHOW_MAX];
    rb_gguf_show(&t->name, name, sizeof name);
    if (t->offset % f->alignment != 0) {
        snprintf(err, RB_ERR_MAX, "tensor '%s': data offset %llu is not a multiple of the alignment %llu",
                 name, (unsigned long long)t->offset, (unsigned long long)f->alignment);
        return -1;
    }
    uint64_t avail = f->size - f->data_offset;
    if (t->offset > avail || t->n_bytes > avail - t->offset) {
        snprintf(err, RB_ERR_MAX, "tensor '%s': data (offset %llu, %llu bytes) extends past the end of the file",
                 name, (unsigned long long)t->offset, (unsigned long long)t->n_bytes);
        return -1;
    }
    t->data = f->map + f->data_offset + t->offset;
    return 0;
}

static int tensor_offset_cmp(const void *a, const void *b) {
    const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a;
    const struct gguf_tensor *y = *(const struct gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int check_overlaps(const struct gguf_file *f, char *err) {
    if (f->n_tensors < 2)
        return 0;
    const struct gguf_tensor **by_off = malloc((size_t)f->n_tensors * sizeof *by_off);
    if (!by_off) {
        snprintf(err, RB_ERR_MAX, "out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        by_off[i] = &f->tensors[i];
    qsort(by_off, (size_t)f->n_tensors, sizeof *by_off, tensor_offset_cmp);
    int rc = 0;
    for (uint64_t i = 1; i < f->n_tensors && rc == 0; i++) {
        const struct gguf_tensor *a = by_off[i - 1], *b = by_off[i];
        if (a->offset + a->n_bytes > b->offset) { /* both inside the file: no overflow */
            char na[SHOW_MAX], nb[SHOW_MAX];
            snprintf(err, RB_ERR_MAX, "tensors '%s' and '%s' overlap", rb_gguf_show(&a->name, na, 48),
                     rb_gguf_show(&b->name, nb, 48));
            rc = -1;
        }
    }
    free(by_off);
    return rc;
}

/* ---- the whole file ---- */

static int parse_header(struct cursor *c, struct gguf_file *f, char *err) {
    if (cur_left(c) < 4) {
        snprintf(err, RB_ERR_MAX, "truncated file: header ends past the end of the file");
        return -1;
    }
    if (memcmp(c->buf, "GGUF", 4) != 0) {
        struct gguf_str magic = { 4, (const char *)c->buf };
        char m[8];
        snprintf(err, RB_ERR_MAX, "not a GGUF file (magic '%s')", rb_gguf_show(&magic, m, sizeof m));
        return -1;
    }
    c->pos = 4;
    if (cur_u32(c, &f->version) != 0) {
        snprintf(err, RB_ERR_MAX, "truncated file: header ends past the end of the file");
        return -1;
    }
    if (f->version == 0x02000000u || f->version == 0x03000000u) {
        snprintf(err, RB_ERR_MAX, "big-endian GGUF files are not supported");
        return -1;
    }
    if (f->version != 2 && f->version != 3) {
        snprintf(err, RB_ERR_MAX, "GGUF version %u is not supported (only 2 and 3)", f->version);
        return -1;
    }
    if (cur_u64(c, &f->n_tensors) != 0 || cur_u64(c, &f->n_kv) != 0) {
        snprintf(err, RB_ERR_MAX, "truncated file: header ends past the end of the file");
        return -1;
    }
    /* Each entry has a minimum encoded size, so the counts are bounded by
     * the bytes left; checked before the arrays are allocated. */
    uint64_t left = cur_left(c);
    if (f->n_kv > left / KV_MIN_BYTES) {
        snprintf(err, RB_ERR_MAX, "metadata count %llu is more than the file could hold",
                 (unsigned long long)f->n_kv);
        return -1;
    }
    if (f->n_tensors > left / TENSOR_MIN_BYTES ||
        f->n_tensors * TENSOR_MIN_BYTES > left - f->n_kv * KV_MIN_BYTES) {
        snprintf(err, RB_ERR_MAX, "tensor count %llu is more than the file could hold",
                 (unsigned long long)f->n_tensors);
        return -1;
    }
    return 0;
}

static int parse_file(struct gguf_file *f, char *err) {
    struct cursor c = { f->map, f->size, 0 };
    if (parse_header(&c, f, err) != 0)
        return -1;

    f->kv = calloc(f->n_kv ? (size_t)f->n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(f->n_tensors ? (size_t)f->n_tensors : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors) {
        snprintf(err, RB_ERR_MAX, "out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (parse_kv(&c, &f->kv[i], i, err) != 0)
            return -1;
    if (check_unique(&f->kv[0].key, sizeof f->kv[0], f->n_kv, "metadata key", err) != 0)
        return -1;
    if (read_alignment(f, err) != 0)
        return -1;

    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (parse_tensor_info(&c, &f->tensors[i], i, err) != 0 || check_tensor_size(&f->tensors[i], err) != 0)
            return -1;
    if (check_unique(&f->tensors[0].name, sizeof f->tensors[0], f->n_tensors, "tensor name", err) != 0)
        return -1;

    /* The data section starts at the aligned end of the header. A file
     * without tensors (vocab-only) may end before that padding. */
    f->header_size = c.pos;
    uint64_t pad = (f->alignment - c.pos % f->alignment) % f->alignment;
    f->data_offset = c.pos + pad;
    if (f->data_offset > f->size) {
        if (f->n_tensors > 0) {
            snprintf(err, RB_ERR_MAX, "truncated file: data section (at byte %llu) starts past the end of the file",
                     (unsigned long long)f->data_offset);
            return -1;
        }
        f->data_offset = f->size;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (check_tensor_place(f, &f->tensors[i], err) != 0)
            return -1;
    return check_overlaps(f, err);
}

static void free_parsed(struct gguf_file *f) {
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++)
            free((void *)f->kv[i].str_offsets);
    free(f->kv);
    free(f->tensors);
    f->kv = NULL;
    f->tensors = NULL;
}

int rb_gguf_open_memory(struct gguf_file *f, const void *buf, size_t size, char *err) {
    memset(f, 0, sizeof *f);
    f->map = buf;
    f->size = size;
    if (!buf && size) {
        snprintf(err, RB_ERR_MAX, "no data");
        return -1;
    }
    if (parse_file(f, err) != 0) {
        free_parsed(f);
        memset(f, 0, sizeof *f);
        return -1;
    }
    return 0;
}

int rb_gguf_open(struct gguf_file *f, const char *path, char *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* NONBLOCK: a FIFO must not hang us */
    if (fd < 0) {
        snprintf(err, RB_ERR_MAX, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, RB_ERR_MAX, "cannot stat: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, RB_ERR_MAX, "is a directory, not a GGUF file");
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, RB_ERR_MAX, "not a regular file");
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        close(fd);
        snprintf(err, RB_ERR_MAX, "empty file, not a GGUF file");
        return -1;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        snprintf(err, RB_ERR_MAX, "file too large to map");
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED) {
        snprintf(err, RB_ERR_MAX, "cannot map: %s", strerror(errno));
        return -1;
    }
    if (rb_gguf_open_memory(f, map, size, err) != 0) {
        munmap(map, size);
        return -1;
    }
    f->path = path;
    f->owns_map = 1;
    return 0;
}

void rb_gguf_close(struct gguf_file *f) {
    if (!f)
        return;
    free_parsed(f);
    if (f->owns_map && f->map)
        munmap((void *)f->map, f->size);
    memset(f, 0, sizeof *f);
}

void rb_gguf_drop_pages(const struct gguf_file *f, const void *data, uint64_t n) {
    long page = sysconf(_SC_PAGESIZE);
    const uint8_t *p = data;
    if (!f->owns_map || page <= 0 || p < f->map || n > f->size || (size_t)(p - f->map) > f->size - n)
        return;
    /* whole pages inside the range only: a neighbour's bytes stay */
    uintptr_t begin = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t end = ((uintptr_t)p + (uintptr_t)n) & ~((uintptr_t)page - 1);
    if (end > begin)
        madvise((void *)begin, end - begin, MADV_DONTNEED);
}

/* ---- byte accounting for `rbee info` ---- */

void rb_gguf_layout(const struct gguf_file *f, struct rb_gguf_layout *out) {
    memset(out, 0, sizeof *out);
    out->file_bytes = f->size;
    out->header_bytes = f->header_size;
    out->padding_bytes = f->data_offset - f->header_size;
    /* Walk tensors in file order; gaps smaller than the alignment are padding. */
    uint64_t pos = 0; /* relative to the data section */
    const struct gguf_tensor **by_off = f->n_tensors ? malloc((size_t)f->n_tensors * sizeof *by_off) : NULL;
    if (f->n_tensors && !by_off) { /* fall back to totals only */
        for (uint64_t i = 0; i < f->n_tensors; i++)
            out->tensor_bytes += f->tensors[i].n_bytes;
        out->unused_bytes = f->size - f->data_offset - out->tensor_bytes;
        return;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        by_off[i] = &f->tensors[i];
    if (by_off)
        qsort(by_off, (size_t)f->n_tensors, sizeof *by_off, tensor_offset_cmp);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        uint64_t gap = by_off[i]->offset - pos;
        if (gap < f->alignment)
            out->padding_bytes += gap;
        else
            out->unused_bytes += gap;
        out->tensor_bytes += by_off[i]->n_bytes;
        pos = by_off[i]->offset + by_off[i]->n_bytes;
    }
    free(by_off);
    uint64_t tail = f->size - f->data_offset - pos;
    if (tail < f->alignment)
        out->padding_bytes += tail;
    else
        out->unused_bytes += tail;
}
