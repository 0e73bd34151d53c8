/* gguf_build.h - helpers for the GGUF tests: build files with the writer,
 * patch their bytes, and parse them on an exactly sized copy (so ASan sees
 * any read past the end). Header-only: the .c files in tests/ are linked into
 * every test binary, this is included only where needed. */
#ifndef RB_TEST_GGUF_BUILD_H
#define RB_TEST_GGUF_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gguf/gguf.h"

static inline void *build(struct gguf_writer *w, size_t *size) {
    char err[RB_ERR_MAX] = "";
    void *buf = NULL;
    if (rb_gguf_writer_write_mem(w, &buf, size, err) != 0) {
        printf("  write_mem failed: %s\n", err);
        return NULL;
    }
    rb_gguf_writer_free(w);
    return buf;
}

/* Parse buf and return the error ("" if it opened). The parse runs on an
 * exactly sized copy so ASan sees any read past the end. */
static inline const char *open_err(const void *buf, size_t size, char *err) {
    struct gguf_file f;
    void *copy = malloc(size ? size : 1);
    memcpy(copy, buf, size);
    err[0] = '\0';
    if (rb_gguf_open_memory(&f, copy, size, err) == 0) {
        err[0] = '\0';
        rb_gguf_close(&f);
    }
    free(copy);
    return err;
}

static inline size_t find_bytes(const uint8_t *buf, size_t size, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= size; i++)
        if (!memcmp(buf + i, needle, n))
            return i;
    return (size_t)-1;
}

/* Position of a tensor info's fields in a writer-built buffer: just after its name. */
static inline size_t tensor_field(const uint8_t *buf, size_t size, const char *name, const char *field) {
    size_t at = find_bytes(buf, size, name) + strlen(name);
    uint32_t n_dims;
    memcpy(&n_dims, buf + at, 4);
    if (!strcmp(field, "n_dims")) return at;
    if (!strcmp(field, "ne")) return at + 4;
    if (!strcmp(field, "type")) return at + 4 + 8 * n_dims;
    return at + 4 + 8 * n_dims + 4; /* offset */
}

static inline void put_u64_at(uint8_t *buf, size_t at, uint64_t v) { memcpy(buf + at, &v, 8); }
static inline void put_u32_at(uint8_t *buf, size_t at, uint32_t v) { memcpy(buf + at, &v, 4); }

/* A small valid model-like file: a few kvs and two tensors. */
static inline struct gguf_writer *small_writer(void) {
    static const float a[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    static const float b[8] = { -1, -2, -3, -4, -5, -6, -7, -8 };
    static const char *const toks[3] = { "<s>", "hello", "" };
    struct gguf_writer *w = rb_gguf_writer_new();
    rb_gguf_writer_add_str(w, "general.architecture", "llama");
    rb_gguf_writer_add_u32(w, "llama.block_count", 1);
    rb_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", toks, 3);
    rb_gguf_writer_add_tensor(w, "a.weight", RB_TYPE_F32, 2, (const int64_t[]){ 4, 2 }, a, sizeof a, 0);
    rb_gguf_writer_add_tensor(w, "b.weight", RB_TYPE_F32, 1, (const int64_t[]){ 8 }, b, sizeof b, 1);
    return w;
}

/* Error from a file with one extra raw kv (key, type, value bytes). */
static inline const char *raw_kv_err(const char *key, enum gguf_type type, const void *value, size_t n, char *err) {
    struct gguf_writer *w = small_writer();
    rb_gguf_writer_add_raw(w, key, type, value, n);
    size_t size;
    uint8_t *buf = build(w, &size);
    open_err(buf, size, err);
    free(buf);
    return err;
}

/* Error from a file with one tensor of the given type/shape (no data). */
static inline const char *tensor_err(uint32_t type, uint32_t n_dims, const int64_t *ne, char *err) {
    struct gguf_writer *w = rb_gguf_writer_new();
    rb_gguf_writer_add_tensor(w, "t", type, n_dims, ne, NULL, 0, 0);
    size_t size;
    uint8_t *buf = build(w, &size);
    open_err(buf, size, err);
    free(buf);
    return err;
}

#endif
