/* fuzz_gguf.c - libFuzzer entry for the GGUF reader (`make fuzz`).
 * fuzz-seeds: $SHARED/models
 *
 * Parses arbitrary bytes; when they open, walks everything a caller would
 * touch (every kv through the typed getters, every string of every string
 * array, every tensor's bytes, the byte accounting) so an unchecked length
 * shows up as an ASan report rather than hiding behind a successful parse.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../gguf/gguf.h"

static void touch_kv(const struct gguf_file *f, const struct gguf_kv *kv, volatile uint64_t *sink) {
    char key[256], err[RB_ERR_MAX], s[64];
    size_t n = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
    memcpy(key, kv->key.data, n);
    key[n] = '\0';
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    float f32;
    int b;
    const void *data;
    uint64_t len;
    *sink += (uint64_t)rb_gguf_get_u32(f, key, &u32, err) + (uint64_t)rb_gguf_get_u64(f, key, &u64, err) +
             (uint64_t)rb_gguf_get_i32(f, key, &i32, err) + (uint64_t)rb_gguf_get_f32(f, key, &f32, err) +
             (uint64_t)rb_gguf_get_bool(f, key, &b, err) + (uint64_t)rb_gguf_get_str(f, key, s, sizeof s, err);
    if (kv->type != GGUF_TYPE_ARRAY)
        return;
    if (rb_gguf_get_arr(f, key, kv->arr_type, &data, &len, err) == 0 && len && kv->arr_type != GGUF_TYPE_STRING)
        *sink += ((const uint8_t *)data)[0];
    if (kv->arr_type == GGUF_TYPE_STRING)
        for (uint64_t i = 0; i < kv->arr_len; i++) {
            struct gguf_str str = rb_gguf_arr_str(kv, i);
            if (str.len)
                *sink += (uint8_t)str.data[0] + (uint8_t)str.data[str.len - 1];
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct gguf_file f;
    char err[RB_ERR_MAX];
    volatile uint64_t sink = 0;
    if (rb_gguf_open_memory(&f, data, size, err) != 0) {
        sink += (uint64_t)strlen(err);
        return 0;
    }
    for (uint64_t i = 0; i < f.n_kv; i++)
        touch_kv(&f, &f.kv[i], &sink);
    for (uint64_t i = 0; i < f.n_tensors; i++) {
        const struct gguf_tensor *t = &f.tensors[i];
        const uint8_t *p = t->data;
        sink += p[0] + p[t->n_bytes - 1];
        sink += (uint64_t)rb_gguf_find_tensor(&f, "token_embd.weight");
    }
    /* whatever opens must survive a rewrite by the writer and reopen */
    struct gguf_writer *w = rb_gguf_writer_new();
    rb_gguf_writer_set_alignment(w, (uint32_t)f.alignment);
    for (uint64_t i = 0; i < f.n_kv; i++)
        if (rb_gguf_writer_copy_kv(w, &f.kv[i]) != 0)
            __builtin_trap();
    for (uint64_t i = 0; i < f.n_tensors; i++) {
        const struct gguf_tensor *t = &f.tensors[i];
        char name[256];
        size_t n = t->name.len < sizeof name - 1 ? (size_t)t->name.len : sizeof name - 1;
        memcpy(name, t->name.data, n);
        name[n] = '\0';
        if (n != t->name.len || memchr(t->name.data, 0, n)) { /* writer takes C strings */
            rb_gguf_writer_free(w);
            w = NULL;
            break;
        }
        rb_gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->n_bytes, 1);
    }
    if (w) {
        void *buf;
        size_t buf_size;
        struct gguf_file g;
        if (rb_gguf_writer_write_mem(w, &buf, &buf_size, err) != 0)
            __builtin_trap();
        if (rb_gguf_open_memory(&g, buf, buf_size, err) != 0 || g.n_kv != f.n_kv || g.n_tensors != f.n_tensors)
            __builtin_trap();
        rb_gguf_close(&g);
        free(buf);
        rb_gguf_writer_free(w);
    }
    struct rb_gguf_layout l;
    rb_gguf_layout(&f, &l);
    if (l.header_bytes + l.padding_bytes + l.tensor_bytes + l.unused_bytes != l.file_bytes)
        __builtin_trap(); /* the accounting must always add up */
    rb_gguf_close(&f);
    return 0;
}
