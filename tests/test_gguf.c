/* test_gguf.c - GGUF reader/writer: type table, round trip, typed
 * getters, the shared model files (all bytes accounted for, byte-identical
 * rewrite), atomic file output and `rbee info`. The bad-file classes the
 * reader must refuse are in test_gguf_bad.c. */
#include "test.h"
#include "gguf_build.h"
#include "../runtime/cli.h"
#include "../runtime/rbee.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- type table ---- */

TEST(type_sizes) {
    /* ggml type_traits: block size, bytes per block */
    static const struct { uint32_t t, bs, ts; } want[] = {
        { RB_TYPE_F32, 1, 4 }, { RB_TYPE_F16, 1, 2 }, { RB_TYPE_Q4_0, 32, 18 }, { RB_TYPE_Q4_1, 32, 20 },
        { RB_TYPE_Q5_0, 32, 22 }, { RB_TYPE_Q5_1, 32, 24 }, { RB_TYPE_Q8_0, 32, 34 }, { RB_TYPE_Q8_1, 32, 36 },
        { RB_TYPE_Q2_K, 256, 84 }, { RB_TYPE_Q3_K, 256, 110 }, { RB_TYPE_Q4_K, 256, 144 },
        { RB_TYPE_Q5_K, 256, 176 }, { RB_TYPE_Q6_K, 256, 210 }, { RB_TYPE_Q8_K, 256, 292 },
        { RB_TYPE_IQ2_XXS, 256, 66 }, { RB_TYPE_IQ2_XS, 256, 74 }, { RB_TYPE_IQ3_XXS, 256, 98 },
        { RB_TYPE_IQ1_S, 256, 50 }, { RB_TYPE_IQ4_NL, 32, 18 }, { RB_TYPE_IQ3_S, 256, 110 },
        { RB_TYPE_IQ2_S, 256, 82 }, { RB_TYPE_IQ4_XS, 256, 136 }, { RB_TYPE_I8, 1, 1 }, { RB_TYPE_I16, 1, 2 },
        { RB_TYPE_I32, 1, 4 }, { RB_TYPE_I64, 1, 8 }, { RB_TYPE_F64, 1, 8 }, { RB_TYPE_IQ1_M, 256, 56 },
        { RB_TYPE_BF16, 1, 2 }, { RB_TYPE_TQ1_0, 256, 54 }, { RB_TYPE_TQ2_0, 256, 66 }, { RB_TYPE_MXFP4, 32, 17 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct rb_type_size *ts = rb_type_size(want[i].t);
        CHECK_MSG(ts && ts->block_size == want[i].bs && ts->type_size == want[i].ts, "type %u", want[i].t);
    }
    static const uint32_t retired[] = { 4, 5, 31, 32, 33, 36, 37, 38, 40, 1000 };
    for (size_t i = 0; i < sizeof retired / sizeof retired[0]; i++) {
        CHECK(rb_type_size(retired[i]) == NULL);
        CHECK_STR(rb_type_name(retired[i]), "?");
    }
    CHECK_STR(rb_type_name(RB_TYPE_Q4_K), "q4_K");
    CHECK_STR(rb_type_name(RB_TYPE_BF16), "bf16");
    CHECK_EQ_INT(rb_row_bytes(RB_TYPE_Q4_0, 64), 36);
    CHECK_EQ_INT(rb_row_bytes(RB_TYPE_Q6_K, 512), 420);
    CHECK_EQ_INT(rb_row_bytes(RB_TYPE_F16, 7), 14);
    CHECK_EQ_INT(rb_row_bytes(RB_TYPE_Q4_0, 33), 0);
    CHECK_EQ_INT(rb_row_bytes(4, 32), 0);
    CHECK_STR(rb_gguf_type_name(GGUF_TYPE_FLOAT32), "f32");
}

/* ---- round trip ---- */

TEST(round_trip) {
    struct gguf_writer *w = rb_gguf_writer_new();
    rb_gguf_writer_set_alignment(w, 64);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int64_t i64 = -5000000000LL;
    double f64 = 2.5e300;
    CHECK(rb_gguf_writer_add_raw(w, "k.u8", GGUF_TYPE_UINT8, &u8, 1) == 0);
    rb_gguf_writer_add_raw(w, "k.i8", GGUF_TYPE_INT8, &i8, 1);
    rb_gguf_writer_add_raw(w, "k.u16", GGUF_TYPE_UINT16, &u16, 2);
    rb_gguf_writer_add_raw(w, "k.i16", GGUF_TYPE_INT16, &i16, 2);
    rb_gguf_writer_add_u32(w, "k.u32", 4000000000u);
    rb_gguf_writer_add_i32(w, "k.i32", -7);
    rb_gguf_writer_add_f32(w, "k.f32", 1e-5f);
    rb_gguf_writer_add_bool(w, "k.bool", 1);
    rb_gguf_writer_add_str(w, "k.str", "héllo \"world\"");
    rb_gguf_writer_add_u64(w, "k.u64", 1ULL << 40);
    rb_gguf_writer_add_raw(w, "k.i64", GGUF_TYPE_INT64, &i64, 8);
    rb_gguf_writer_add_raw(w, "k.f64", GGUF_TYPE_FLOAT64, &f64, 8);
    const float scores[3] = { 0.5f, -1.25f, 3.0f };
    const int32_t types[3] = { 1, 2, 3 };
    const char *const strs[4] = { "a", "", "long string with spaces", "\xe2\x96\x81the" };
    CHECK(rb_gguf_writer_add_arr(w, "arr.f32", GGUF_TYPE_FLOAT32, scores, 3) == 0);
    rb_gguf_writer_add_arr(w, "arr.i32", GGUF_TYPE_INT32, types, 3);
    rb_gguf_writer_add_arr(w, "arr.empty", GGUF_TYPE_UINT8, NULL, 0);
    CHECK(rb_gguf_writer_add_str_arr(w, "arr.str", strs, 4) == 0);
    CHECK(rb_gguf_writer_add_arr(w, "arr.bad", GGUF_TYPE_STRING, strs, 4) == -1);

    float t1[64];
    uint8_t t2[18 * 4];
    for (int i = 0; i < 64; i++) t1[i] = (float)i * 0.5f;
    for (int i = 0; i < (int)sizeof t2; i++) t2[i] = (uint8_t)(i * 7);
    CHECK(rb_gguf_writer_add_tensor(w, "t1", RB_TYPE_F32, 3, (const int64_t[]){ 4, 4, 4 }, t1, sizeof t1, 0) == 0);
    CHECK(rb_gguf_writer_add_tensor(w, "t2.q4", RB_TYPE_Q4_0, 2, (const int64_t[]){ 64, 2 }, t2, sizeof t2, 1) == 0);
    CHECK(rb_gguf_writer_add_tensor(w, "t3", RB_TYPE_F16, 4, (const int64_t[]){ 3, 1, 1, 1 }, NULL, 6, 0) == 0);

    size_t size;
    uint8_t *buf = build(w, &size);
    struct gguf_file f;
    char err[RB_ERR_MAX];
    CHECK(rb_gguf_open_memory(&f, buf, size, err) == 0);
    CHECK_EQ_INT(f.version, 3);
    CHECK_EQ_INT(f.alignment, 64);
    CHECK_EQ_INT(f.n_kv, 17); /* 16 + general.alignment */
    CHECK_EQ_INT(f.data_offset % 64, 0);

    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    float f32;
    int b;
    char s[64];
    CHECK(rb_gguf_get_u32(&f, "k.u8", &u32, err) == 0 && u32 == 200);
    CHECK(rb_gguf_get_i32(&f, "k.i8", &i32, err) == 0 && i32 == -100);
    CHECK(rb_gguf_get_u32(&f, "k.u16", &u32, err) == 0 && u32 == 60000);
    CHECK(rb_gguf_get_i32(&f, "k.i16", &i32, err) == 0 && i32 == -30000);
    CHECK(rb_gguf_get_u32(&f, "k.u32", &u32, err) == 0 && u32 == 4000000000u);
    CHECK(rb_gguf_get_u64(&f, "k.u32", &u64, err) == 0 && u64 == 4000000000u);
    CHECK(rb_gguf_get_i32(&f, "k.i32", &i32, err) == 0 && i32 == -7);
    CHECK(rb_gguf_get_f32(&f, "k.f32", &f32, err) == 0 && f32 == 1e-5f);
    CHECK(rb_gguf_get_bool(&f, "k.bool", &b, err) == 0 && b == 1);
    CHECK(rb_gguf_get_str(&f, "k.str", s, sizeof s, err) == 0);
    CHECK_STR(s, "héllo \"world\"");
    CHECK(rb_gguf_get_str(&f, "k.str", s, 4, err) == 0);
    CHECK_STR(s, "hé"); /* truncated to cap - 1 bytes */
    CHECK(rb_gguf_get_u64(&f, "k.u64", &u64, err) == 0 && u64 == (1ULL << 40));
    CHECK(rb_gguf_get_f32(&f, "general.alignment", &f32, err) == -1);
    CHECK_STR(err, "general.alignment: expected f32, got u32");
    int64_t ki = rb_gguf_find_key(&f, "k.i64");
    CHECK(ki >= 0 && f.kv[ki].type == GGUF_TYPE_INT64);
    int64_t got_i64;
    memcpy(&got_i64, f.kv[ki].value, 8);
    CHECK(got_i64 == i64);

    const void *data;
    uint64_t n;
    CHECK(rb_gguf_get_arr(&f, "arr.f32", GGUF_TYPE_FLOAT32, &data, &n, err) == 0 && n == 3);
    float sc[3];
    memcpy(sc, data, sizeof sc);
    CHECK(sc[0] == 0.5f && sc[1] == -1.25f && sc[2] == 3.0f);
    CHECK(rb_gguf_get_arr(&f, "arr.i32", GGUF_TYPE_INT32, &data, &n, err) == 0 && n == 3);
    CHECK(rb_gguf_get_arr(&f, "arr.empty", GGUF_TYPE_UINT8, &data, &n, err) == 0 && n == 0);
    int64_t si = rb_gguf_find_key(&f, "arr.str");
    CHECK(si >= 0 && f.kv[si].arr_len == 4);
    for (uint64_t i = 0; si >= 0 && i < 4; i++) {
        struct gguf_str str = rb_gguf_arr_str(&f.kv[si], i);
        CHECK(str.len == strlen(strs[i]) && !memcmp(str.data, strs[i], str.len));
    }
    CHECK(si >= 0 && rb_gguf_arr_str(&f.kv[si], 4).data == NULL);

    const struct gguf_tensor *t = rb_gguf_get_tensor(&f, "t1");
    CHECK(t && t->n_dims == 3 && t->ne[0] == 4 && t->ne[2] == 4 && t->ne[3] == 1 && t->n_bytes == sizeof t1);
    CHECK(t && !memcmp(t->data, t1, sizeof t1));
    t = rb_gguf_get_tensor(&f, "t2.q4");
    CHECK(t && t->type == RB_TYPE_Q4_0 && t->n_bytes == sizeof t2 && t->offset % 64 == 0);
    CHECK(t && !memcmp(t->data, t2, sizeof t2));
    t = rb_gguf_get_tensor(&f, "t3");
    CHECK(t && t->n_dims == 4 && t->n_bytes == 6 && ((const uint8_t *)t->data)[5] == 0);
    CHECK(rb_gguf_find_tensor(&f, "t") == -1 && rb_gguf_find_tensor(&f, "t3") == 2);

    /* copy_kv reproduces every kv byte for byte */
    struct gguf_writer *w2 = rb_gguf_writer_new();
    for (uint64_t i = 0; i < f.n_kv; i++)
        CHECK(rb_gguf_writer_copy_kv(w2, &f.kv[i]) == 0);
    size_t size2;
    uint8_t *buf2 = build(w2, &size2);
    struct gguf_file f2;
    CHECK(rb_gguf_open_memory(&f2, buf2, size2, err) == 0);
    CHECK_EQ_INT(f2.n_kv, f.n_kv);
    CHECK(f2.header_size < f.header_size &&
          !memcmp(buf + 24, buf2 + 24, (size_t)f2.header_size - 24)); /* same kv bytes, no tensors */
    si = rb_gguf_find_key(&f2, "arr.str");
    CHECK(si >= 0 && rb_gguf_arr_str(&f2.kv[si], 2).len == strlen(strs[2]));
    CHECK(rb_gguf_get_str(&f2, "k.str", s, sizeof s, err) == 0);
    CHECK_STR(s, "héllo \"world\"");
    rb_gguf_close(&f2);
    free(buf2);
    rb_gguf_close(&f);
    free(buf);
}

TEST(getter_errors) {
    size_t size;
    struct gguf_writer *w = small_writer();
    rb_gguf_writer_add_i32(w, "neg", -1);
    rb_gguf_writer_add_u64(w, "big", 1ULL << 33);
    uint8_t bytes[2] = { 1, 2 };
    rb_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_UINT8, bytes, 2);
    uint8_t *buf = build(w, &size);
    struct gguf_file f;
    char err[RB_ERR_MAX];
    CHECK(rb_gguf_open_memory(&f, buf, size, err) == 0);
    uint32_t u32 = 77;
    int32_t i32;
    float x;
    const void *data;
    uint64_t n;
    CHECK(rb_gguf_get_u32(&f, "nope", &u32, err) == -1);
    CHECK_STR(err, "nope: missing");
    CHECK(rb_gguf_get_u32(&f, "neg", &u32, err) == -1 && u32 == 77);
    CHECK_STR(err, "neg: value -1 does not fit u32");
    CHECK(rb_gguf_get_i32(&f, "big", &i32, err) == -1);
    CHECK_STR(err, "big: value 8589934592 does not fit i32");
    CHECK(rb_gguf_get_u32(&f, "general.architecture", &u32, err) == -1);
    CHECK_STR(err, "general.architecture: expected u32, got str");
    CHECK(rb_gguf_get_f32(&f, "llama.block_count", &x, err) == -1);
    CHECK_STR(err, "llama.block_count: expected f32, got u32");
    CHECK(rb_gguf_get_arr(&f, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, &data, &n, err) == -1);
    CHECK_STR(err, "tokenizer.ggml.scores: expected array of f32, got array of u8");
    CHECK(rb_gguf_get_arr(&f, "llama.block_count", GGUF_TYPE_FLOAT32, &data, &n, err) == -1);
    CHECK_STR(err, "llama.block_count: expected array of f32, got u32");
    rb_gguf_close(&f);
    free(buf);
}

/* ---- the shared model files ---- */

TEST(shared_models) {
    char dir[512];
    test_path(dir, sizeof dir, "models");
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d)
        return;
    int n_opened = 0, saw_v1 = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf"))
            continue;
        char path[1024], err[RB_ERR_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct gguf_file f;
        int rc = rb_gguf_open(&f, path, err);
        if (strstr(e->d_name, "gguf-v1")) {
            CHECK(rc == -1);
            CHECK_STR(err, "GGUF version 1 is not supported (only 2 and 3)");
            saw_v1 = 1;
            continue;
        }
        CHECK_MSG(rc == 0, "%s: %s", path, err);
        if (rc)
            continue;
        n_opened++;
        /* every byte accounted for: header + padding + tensors == file size */
        struct rb_gguf_layout l;
        rb_gguf_layout(&f, &l);
        CHECK_MSG(l.header_bytes + l.padding_bytes + l.tensor_bytes + l.unused_bytes == l.file_bytes &&
                  l.unused_bytes == 0, "%s: layout does not add up", path);
        CHECK(l.file_bytes == f.size && l.tensor_bytes > 0 && f.n_tensors > 0);
        char arch[32];
        CHECK(rb_gguf_get_str(&f, "general.architecture", arch, sizeof arch, err) == 0);
        char key[64];
        snprintf(key, sizeof key, "%s.block_count", arch);
        uint32_t n_layers = 0;
        CHECK(rb_gguf_get_u32(&f, key, &n_layers, err) == 0 && n_layers >= 3 && n_layers <= 5);
        CHECK(rb_gguf_get_tensor(&f, "token_embd.weight") != NULL);
        rb_gguf_close(&f);
    }
    closedir(d);
    CHECK(n_opened >= 10 && saw_v1);

    /* stories260K: known shape facts */
    char path[512], err[RB_ERR_MAX];
    struct gguf_file f;
    CHECK(rb_gguf_open(&f, test_path(path, sizeof path, "models/stories260K.gguf"), err) == 0);
    const struct gguf_tensor *t = rb_gguf_get_tensor(&f, "blk.0.ffn_down.weight");
    CHECK(t && t->ne[0] == 172 && t->ne[1] == 64 && t->type == RB_TYPE_F32 && t->n_bytes == 172 * 64 * 4);
    int64_t k = rb_gguf_find_key(&f, "tokenizer.ggml.tokens");
    CHECK(k >= 0 && f.kv[k].arr_len == 512);
    rb_gguf_close(&f);
}

/* Copying every kv and tensor of a llama.cpp-written file through our
 * writer reproduces it byte for byte (same layout, padding and offsets). */
TEST(rewrite_is_byte_identical) {
    char path[512], err[RB_ERR_MAX];
    static const char *const files[] = { "models/stories260K.gguf", "models/stories260K-q4_0.gguf" };
    for (size_t k = 0; k < 2; k++) {
        struct gguf_file f;
        CHECK(rb_gguf_open(&f, test_path(path, sizeof path, files[k]), err) == 0);
        if (!f.map)
            continue;
        struct gguf_writer *w = rb_gguf_writer_new();
        rb_gguf_writer_set_alignment(w, (uint32_t)f.alignment);
        for (uint64_t i = 0; i < f.n_kv; i++)
            CHECK(rb_gguf_writer_copy_kv(w, &f.kv[i]) == 0);
        for (uint64_t i = 0; i < f.n_tensors; i++) {
            const struct gguf_tensor *t = &f.tensors[i];
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
            CHECK(rb_gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->n_bytes, 1) == 0);
        }
        void *buf;
        size_t size;
        CHECK(rb_gguf_writer_write_mem(w, &buf, &size, err) == 0);
        CHECK_MSG(size == f.size && !memcmp(buf, f.map, size), "%s: rewrite differs", files[k]);
        free(buf);
        rb_gguf_writer_free(w);
        rb_gguf_close(&f);
    }
}

TEST(open_errors) {
    struct gguf_file f;
    char err[RB_ERR_MAX];
    CHECK(rb_gguf_open(&f, "/nonexistent/x.gguf", err) == -1);
    CHECK_STR(err, "cannot open: No such file or directory");
    CHECK(rb_gguf_open(&f, ".", err) == -1);
    CHECK_STR(err, "is a directory, not a GGUF file");
    rb_gguf_close(&f); /* safe on a failed open */
    char dir[] = "/tmp/rbee_open_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/fifo", dir);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK(rb_gguf_open(&f, path, err) == -1); /* must not block waiting for a writer */
    CHECK_STR(err, "not a regular file");
    unlink(path);
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (fp)
        fclose(fp);
    CHECK(rb_gguf_open(&f, path, err) == -1);
    CHECK_STR(err, "empty file, not a GGUF file");
    unlink(path);
    rmdir(dir);
}

/* ---- the writer's file output ---- */

TEST(write_file_atomic) {
    char dir[] = "/tmp/rbee_gguf_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], err[RB_ERR_MAX];
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    struct gguf_writer *w = small_writer();
    CHECK(rb_gguf_writer_write_file(w, path, err) == 0);
    size_t mem_size;
    void *mem;
    CHECK(rb_gguf_writer_write_mem(w, &mem, &mem_size, err) == 0);
    rb_gguf_writer_free(w);
    struct gguf_file f;
    CHECK(rb_gguf_open(&f, path, err) == 0);
    CHECK(f.size == mem_size && !memcmp(f.map, mem, mem_size));
    CHECK_EQ_INT(f.n_tensors, 2);
    rb_gguf_close(&f);
    free(mem);
    /* only the final file is left in the directory */
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
        {
            n++;
            CHECK_STR(e->d_name, "out.gguf");
        }
    if (d)
        closedir(d);
    CHECK_EQ_INT(n, 1);
    unlink(path);
    rmdir(dir);
    /* an unwritable place fails cleanly */
    w = small_writer();
    CHECK(rb_gguf_writer_write_file(w, "/nonexistent/dir/out.gguf", err) == -1);
    CHECK_CONTAINS(err, "cannot create /nonexistent/dir/out.gguf.tmp.");
    rb_gguf_writer_free(w);
}

/* ---- rbee info ---- */

/* Runs `rbee info ARGS` with stdout and stderr captured into out (NUL-terminated). */
static int run_info(int argc, char **argv, char *out, size_t cap) {
    char tmp[] = "/tmp/rbee_info_out_XXXXXX";
    int fd = mkstemp(tmp);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(fd, 1);
    dup2(fd, 2);
    int rc = cli_info(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(tmp);
    return rc;
}

TEST(cli_info_output) {
    static char out[1 << 16];
    char path[512];
    test_path(path, sizeof path, "models/stories260K.gguf");
    char *text_args[] = { "info", path, "-c", "256", NULL };
    CHECK_EQ_INT(run_info(4, text_args, out, sizeof out), 0);
    CHECK_CONTAINS(out, "totals:        header 14152 + padding 24 + tensors 1171200 = 1185376 bytes; file size 1185376: ok");
    CHECK_CONTAINS(out, "tokenizer:     llama, 512 tokens");
    CHECK_CONTAINS(out, "parameters:    292800\n");
    CHECK_CONTAINS(out, "bits/weight:   32.000");
    CHECK_CONTAINS(out, "  blk.0.ffn_down.weight            f32      [172, 64]                     44032");
    CHECK_CONTAINS(out, "  attention.head_count_kv              4\n");
    CHECK_CONTAINS(out, "kv cache:");
    char *json_args[] = { "info", "--json", path, NULL };
    CHECK_EQ_INT(run_info(3, json_args, out, sizeof out), 0);
    CHECK(out[0] == '{' && strstr(out, "}\n") == out + strlen(out) - 2);
    CHECK_CONTAINS(out, "\"n_tensors\": 48");
    CHECK_CONTAINS(out, "\"n_params\": 292800");
    CHECK_CONTAINS(out, "\"ok\": true");
    CHECK_CONTAINS(out, "{\"name\": \"blk.0.ffn_down.weight\", \"type\": \"f32\", \"shape\": [172, 64]");

    test_path(path, sizeof path, "models/llama-mini-q4_k_m.gguf");
    CHECK_EQ_INT(run_info(2, text_args, out, sizeof out), 0);
    CHECK_CONTAINS(out, "file type:     MOSTLY_Q4_K_M (15)");
    CHECK_CONTAINS(out, "rope.freq_base                       10000\n");

    /* strings from the file are escaped in JSON and in text: no control
     * character (ESC, C1 CSI) reaches the terminal, and bytes that are not
     * UTF-8 are shown as such. The file is no model: listed, then refused. */
    char dir[] = "/tmp/rbee_info_test_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char fpath[128], err[RB_ERR_MAX], line[512];
    snprintf(fpath, sizeof fpath, "%s/odd.gguf", dir);
    struct gguf_writer *w = small_writer();
    rb_gguf_writer_add_str(w, "general.name", "a \"quoted\"\\name\n\x01\x1b[2J\xc2\x9b\xff\xc3\xa9");
    CHECK(rb_gguf_writer_write_file(w, fpath, err) == 0);
    rb_gguf_writer_free(w);
    json_args[2] = fpath;
    CHECK_EQ_INT(run_info(3, json_args, out, sizeof out), 1);
    CHECK_CONTAINS(out, "\"name\": \"a \\\"quoted\\\"\\\\name\\n\\u0001\\u001b[2J\\u009b\\ufffd\xc3\xa9\"");
    snprintf(line, sizeof line, ", \"error\": \"%s: missing tensor 'token_embd.weight'\"}\nrbee: error: %s: missing tensor 'token_embd.weight'\n",
             fpath, fpath);
    CHECK_CONTAINS(out, line);
    char *odd_text[] = { "info", fpath, NULL };
    CHECK_EQ_INT(run_info(2, odd_text, out, sizeof out), 1);
    CHECK_CONTAINS(out, "\nname:          a \"quoted\"\\\\name\\n\\x01\\x1b[2J\\u009b\\xff\xc3\xa9\n");
    CHECK(strchr(out, 0x1b) == NULL && !strstr(out, "\xc2\x9b"));
    CHECK(strstr(out, "kv cache:") == NULL && strstr(out, "memory:") == NULL); /* no plan for what cannot run */
    snprintf(line, sizeof line, "ok\nrbee: error: %s: missing tensor 'token_embd.weight'\n", fpath);
    CHECK_MSG(strlen(out) > strlen(line) && !strcmp(out + strlen(out) - strlen(line), line), "ends: %s", out);
    unlink(fpath);
    rmdir(dir);

    /* refused files: exit status 1 */
    test_path(path, sizeof path, "models/stories260K-gguf-v1.gguf");
    json_args[2] = path;
    CHECK_EQ_INT(run_info(3, json_args, out, sizeof out), 1);
    char want[1024];
    snprintf(want, sizeof want, "rbee: error: %s: GGUF version 1 is not supported (only 2 and 3)\n", path);
    CHECK_STR(out, want);
    char *missing[] = { "info", "/nonexistent.gguf", NULL };
    CHECK_EQ_INT(run_info(2, missing, out, sizeof out), 1);
    CHECK_STR(out, "rbee: error: /nonexistent.gguf: cannot open: No such file or directory\n");
    char *dir_arg[] = { "info", "/tmp", NULL };
    CHECK_EQ_INT(run_info(2, dir_arg, out, sizeof out), 1);
    CHECK_STR(out, "rbee: error: /tmp: is a directory, not a GGUF file\n");
    char *no_file[] = { "info", NULL };
    CHECK_EQ_INT(run_info(1, no_file, out, sizeof out), 1);
    CHECK_STR(out, "rbee: error: info: missing MODEL.gguf (see 'rbee info --help')\n");
    char *bad_opt[] = { "info", path, "-c", "0", NULL };
    CHECK_EQ_INT(run_info(4, bad_opt, out, sizeof out), 1);
    CHECK_STR(out, "rbee: error: -c: expected a positive context size\n");
}

/* A strict JSON syntax check (RFC 8259 values; no NaN, no trailing
 * commas): returns the position after one value, NULL on a syntax error. */
static const char *json_ws(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    return p;
}

static const char *json_value(const char *p, int depth);

static const char *json_string(const char *p) {
    if (*p++ != '"') return NULL;
    while (*p != '"') {
        if ((unsigned char)*p < 0x20) return NULL; /* also the terminating NUL */
        if (*p++ != '\\') continue;
        if (*p == 'u') {
            for (int i = 1; i <= 4; i++)
                if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL;
            p += 5;
        } else if (*p && strchr("\"\\/bfnrt", *p)) {
            p++;
        } else {
            return NULL;
        }
    }
    return p + 1;
}

static const char *json_number(const char *p) {
    const char *start = p;
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (*p >= '0' && *p <= '9') p++;
    else return NULL;
    if (*p == '.') { p++; if (!(*p >= '0' && *p <= '9')) return NULL; while (*p >= '0' && *p <= '9') p++; }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p > start ? p : NULL;
}

static const char *json_value(const char *p, int depth) {
    p = json_ws(p);
    if (depth > 64) return NULL;
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int object = *p == '{';
        p = json_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (object) {
                p = json_string(json_ws(p));
                if (!p) return NULL;
                p = json_ws(p);
                if (*p++ != ':') return NULL;
            }
            p = json_value(p, depth + 1);
            if (!p) return NULL;
            p = json_ws(p);
            if (*p == close) return p + 1;
            if (*p++ != ',') return NULL;
        }
    }
    if (*p == '"') return json_string(p);
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (!strncmp(p, "null", 4)) return p + 4;
    return json_number(p);
}

static int json_valid(const char *text) {
    const char *end = json_value(text, 0);
    return end && *json_ws(end) == '\0';
}

/* `rbee info` on every file of ../shared/models: the text table has one
 * row per tensor and its totals add up to the file size; --json is valid
 * JSON with the same totals; the v1 file is refused. */
TEST(cli_info_every_model) {
    static char out[1 << 16];
    char dir[512];
    test_path(dir, sizeof dir, "models");
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return;
    CHECK(json_valid("{\"a\": [1, -2.5e3, \"x\\u0001\", true, null, {}]}"));
    CHECK(!json_valid("{\"a\": [1, ]}") && !json_valid("{\"a\": nan}") && !json_valid("{\"a\": 1} x"));
    int n_files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf")) continue;
        char path[1024], err[RB_ERR_MAX], want[256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *text_args[] = { "info", path, NULL }, *json_args[] = { "info", "--json", path, NULL };
        if (strstr(e->d_name, "gguf-v1")) {
            CHECK_EQ_INT(run_info(2, text_args, out, sizeof out), 1);
            CHECK_CONTAINS(out, "GGUF version 1 is not supported");
            continue;
        }
        struct gguf_file f;
        if (rb_gguf_open(&f, path, err)) { TEST_FAIL_AT("%s: %s", path, err); continue; }
        struct rb_gguf_layout l;
        rb_gguf_layout(&f, &l);
        n_files++;
        /* a file rbee cannot run (phi3, qwen2 here) is listed, then refused with run's error */
        rbee_model *m = NULL;
        char load_err[RBEE_ERR_MAX], refusal[1400] = "";
        int runs = rbee_model_load(&m, path, load_err) == 0;
        rbee_model_free(m);
        if (!runs) snprintf(refusal, sizeof refusal, "\nrbee: error: %s: %s\n", path, load_err);
        CHECK_EQ_INT(run_info(2, text_args, out, sizeof out), runs ? 0 : 1);
        if (!runs) {
            size_t n = strlen(out), k = strlen(refusal);
            CHECK_MSG(n > k && !strcmp(out + n - k, refusal), "%s: does not end with the load error", path);
        }
        snprintf(want, sizeof want, "totals:        header %llu + padding %llu + tensors %llu = %zu bytes; file size %zu: ok\n",
                 (unsigned long long)l.header_bytes, (unsigned long long)l.padding_bytes,
                 (unsigned long long)l.tensor_bytes, f.size, f.size);
        CHECK_CONTAINS(out, want);
        /* one table row per tensor, each with its byte size */
        int rows = 0;
        for (uint64_t i = 0; i < f.n_tensors; i++) {
            const struct gguf_tensor *t = &f.tensors[i];
            char row[160];
            snprintf(row, sizeof row, "\n  %.*s ", (int)t->name.len, t->name.data);
            const char *at = strstr(out, row);
            char bytes[32];
            snprintf(bytes, sizeof bytes, " %llu\n", (unsigned long long)t->n_bytes);
            const char *eol = at ? strchr(at + 1, '\n') : NULL;
            rows += at && eol && strstr(at + 1, bytes) == eol - strlen(bytes) + 1;
        }
        CHECK_MSG(rows == (int)f.n_tensors, "%s: %d of %llu tensor rows found", path, rows,
                  (unsigned long long)f.n_tensors);
        CHECK_EQ_INT(run_info(3, json_args, out, sizeof out), runs ? 0 : 1);
        if (!runs) out[strlen(out) - strlen(refusal) + 1] = 0; /* the JSON before the error line */
        CHECK_MSG(json_valid(out), "%s: --json output is not valid JSON", path);
        CHECK_MSG(runs == !strstr(out, "\"error\": "), "%s: error field", path);
        snprintf(want, sizeof want, "\"header_bytes\": %llu, \"padding_bytes\": %llu, \"tensor_bytes\": %llu, "
                 "\"unused_bytes\": 0, \"file_bytes\": %zu, \"ok\": true",
                 (unsigned long long)l.header_bytes, (unsigned long long)l.padding_bytes,
                 (unsigned long long)l.tensor_bytes, f.size);
        CHECK_CONTAINS(out, want);
        CHECK_EQ_INT(l.header_bytes + l.padding_bytes + l.tensor_bytes, f.size);
        rb_gguf_close(&f);
    }
    closedir(d);
    CHECK(n_files >= 10);
}

int main(void) {
    RUN(type_sizes);
    RUN(round_trip);
    RUN(getter_errors);
    RUN(shared_models);
    RUN(rewrite_is_byte_identical);
    RUN(open_errors);
    RUN(write_file_atomic);
    RUN(cli_info_output);
    RUN(cli_info_every_model);
    return test_summary();
}
