/* test_gguf_bad.c - one bad file per class the GGUF reader must refuse,
 * built with the writer (or by patching bytes of a writer-built buffer),
 * each asserting the exact error message; truncation at every byte. */
#include "test.h"
#include "gguf_build.h"

/* ---- bad files: one per class ---- */

TEST(bad_truncated_every_byte) {
    size_t size;
    uint8_t *buf = build(small_writer(), &size);
    char err[RB_ERR_MAX];
    CHECK_STR(open_err(buf, size, err), "");
    for (size_t n = 0; n < size; n++) {
        open_err(buf, n, err);
        CHECK_MSG(err[0] != '\0', "prefix of %zu bytes opened", n);
        if (err[0] == '\0')
            break;
    }
    CHECK_STR(open_err(buf, 3, err), "truncated file: header ends past the end of the file");
    CHECK_STR(open_err(buf, 30, err), "metadata count 3 is more than the file could hold");
    CHECK_STR(open_err(buf, find_bytes(buf, size, "b.weight") + 10, err),
              "truncated file: tensor 'b.weight' info ends past the end of the file");
    CHECK_STR(open_err(buf, size - 1, err), "tensor 'b.weight': data (offset 32, 32 bytes) extends past the end of the file");
    free(buf);
}

/* A real file cut anywhere in its header or data is refused, never crashes. */
TEST(bad_truncated_real_file) {
    char path[512], err[RB_ERR_MAX];
    struct gguf_file f;
    CHECK(rb_gguf_open(&f, test_path(path, sizeof path, "models/stories260K-q8_0.gguf"), err) == 0);
    if (!f.map)
        return;
    size_t size = f.size, step;
    int n_refused = 0, n_tried = 0;
    for (size_t n = 0; n < size; n += step) {
        step = n < f.data_offset + 64 ? 3 : 4099; /* dense through the header, sparse through the data */
        open_err(f.map, n, err);
        n_tried++;
        n_refused += err[0] != '\0';
    }
    CHECK_EQ_INT(n_refused, n_tried);
    CHECK_STR(open_err(f.map, f.header_size - 1, err),
              "truncated file: tensor 'blk.4.ffn_norm.weight' info ends past the end of the file");
    CHECK_STR(open_err(f.map, size - 1, err),
              "tensor 'blk.4.ffn_norm.weight': data (offset 474752, 256 bytes) extends past the end of the file");
    rb_gguf_close(&f);
}

TEST(bad_magic_and_version) {
    size_t size;
    uint8_t *buf = build(small_writer(), &size);
    char err[RB_ERR_MAX];
    memcpy(buf, "GGML", 4);
    CHECK_STR(open_err(buf, size, err), "not a GGUF file (magic 'GGML')");
    memcpy(buf, "\x7f" "ELF", 4);
    CHECK_STR(open_err(buf, size, err), "not a GGUF file (magic '?ELF')");
    memcpy(buf, "GGUF", 4);
    put_u32_at(buf, 4, 1);
    CHECK_STR(open_err(buf, size, err), "GGUF version 1 is not supported (only 2 and 3)");
    put_u32_at(buf, 4, 4);
    CHECK_STR(open_err(buf, size, err), "GGUF version 4 is not supported (only 2 and 3)");
    put_u32_at(buf, 4, 0x03000000u);
    CHECK_STR(open_err(buf, size, err), "big-endian GGUF files are not supported");
    put_u32_at(buf, 4, 2); /* v2 has the same layout */
    CHECK_STR(open_err(buf, size, err), "");
    free(buf);
    struct gguf_writer *w = small_writer();
    rb_gguf_writer_set_version(w, 1);
    buf = build(w, &size);
    CHECK_STR(open_err(buf, size, err), "GGUF version 1 is not supported (only 2 and 3)");
    free(buf);
}

TEST(bad_counts) {
    size_t size;
    uint8_t *buf = build(small_writer(), &size);
    char err[RB_ERR_MAX];
    put_u64_at(buf, 8, 1ULL << 40); /* n_tensors */
    CHECK_STR(open_err(buf, size, err), "tensor count 1099511627776 is more than the file could hold");
    put_u64_at(buf, 8, UINT64_MAX);
    CHECK_STR(open_err(buf, size, err), "tensor count 18446744073709551615 is more than the file could hold");
    put_u64_at(buf, 8, 2);
    put_u64_at(buf, 16, UINT64_MAX / 2); /* n_kv */
    CHECK_STR(open_err(buf, size, err), "metadata count 9223372036854775807 is more than the file could hold");
    put_u64_at(buf, 16, 4); /* one more kv than written: the tensor infos are read as a kv */
    CHECK(open_err(buf, size, err)[0] != '\0');
    CHECK_STR(err, "tensor 0: name too long (more than 65536 bytes)"); /* the tensor infos, read as a kv */
    free(buf);
}

TEST(bad_string_and_array_lengths) {
    char err[RB_ERR_MAX];
    uint8_t v[16];
    uint64_t huge = UINT64_MAX - 3;
    memcpy(v, &huge, 8);
    memcpy(v + 8, "abcdefgh", 8);
    CHECK_STR(raw_kv_err("s", GGUF_TYPE_STRING, v, 16, err),
              "truncated file: metadata 's' value ends past the end of the file");
    uint32_t et = GGUF_TYPE_FLOAT32;
    memcpy(v, &et, 4);
    memcpy(v + 4, &huge, 8);
    CHECK_STR(raw_kv_err("arr", GGUF_TYPE_ARRAY, v, 12, err),
              "truncated file: metadata 'arr' (array) ends past the end of the file");
    uint64_t quarter = 1ULL << 62; /* n * 4 would wrap to 0 without a division check */
    memcpy(v + 4, &quarter, 8);
    CHECK_STR(raw_kv_err("arr", GGUF_TYPE_ARRAY, v, 12, err),
              "truncated file: metadata 'arr' (array) ends past the end of the file");
    et = GGUF_TYPE_STRING;
    memcpy(v, &et, 4);
    memcpy(v + 4, &huge, 8);
    CHECK_STR(raw_kv_err("tokens", GGUF_TYPE_ARRAY, v, 12, err),
              "truncated file: metadata 'tokens' (array) ends past the end of the file");
    /* a string array whose second string claims more than the file holds */
    uint8_t sa[12 + 9 + 8];
    uint64_t two = 2, one = 1;
    memcpy(sa, &et, 4);
    memcpy(sa + 4, &two, 8);
    memcpy(sa + 12, &one, 8);
    sa[20] = 'x';
    memcpy(sa + 21, &huge, 8);
    CHECK_STR(raw_kv_err("tokens", GGUF_TYPE_ARRAY, sa, sizeof sa, err),
              "truncated file: metadata 'tokens' string 1 ends past the end of the file");
    /* key length far beyond the file, and over the name limit */
    size_t size;
    uint8_t *buf = build(small_writer(), &size);
    put_u64_at(buf, 24, 1ULL << 20);
    CHECK_STR(open_err(buf, size, err), "metadata key 0: name too long (more than 65536 bytes)");
    put_u64_at(buf, 24, 60000);
    CHECK_STR(open_err(buf, size, err), "truncated file: metadata key 0 ends past the end of the file");
    put_u64_at(buf, 24, 0);
    CHECK_STR(open_err(buf, size, err), "metadata key 0: empty name");
    free(buf);
    buf = build(small_writer(), &size);
    put_u64_at(buf, find_bytes(buf, size, "a.weight") - 8, 70000);
    CHECK_STR(open_err(buf, size, err), "tensor 0: name too long (more than 65536 bytes)");
    free(buf);
}

TEST(bad_metadata_types) {
    char err[RB_ERR_MAX];
    uint32_t x = 0;
    CHECK_STR(raw_kv_err("weird", (enum gguf_type)13, &x, 4, err), "metadata 'weird': unknown value type 13");
    CHECK_STR(raw_kv_err("weird", (enum gguf_type)0xffffffffu, &x, 4, err),
              "metadata 'weird': unknown value type 4294967295");
    uint8_t v[12] = { 0 };
    uint32_t et = 99;
    memcpy(v, &et, 4);
    CHECK_STR(raw_kv_err("arr", GGUF_TYPE_ARRAY, v, 12, err), "metadata 'arr': unknown array element type 99");
    et = GGUF_TYPE_ARRAY;
    memcpy(v, &et, 4);
    CHECK_STR(raw_kv_err("arr", GGUF_TYPE_ARRAY, v, 12, err), "metadata 'arr': arrays of arrays are not supported");
    CHECK_STR(raw_kv_err("llama.block_count", GGUF_TYPE_UINT32, &x, 4, err),
              "duplicate metadata key 'llama.block_count'");
    /* control characters in a key are not echoed raw */
    CHECK_STR(raw_kv_err("bad\nkey", (enum gguf_type)20, &x, 4, err), "metadata 'bad?key': unknown value type 20");
}

TEST(bad_alignment) {
    char err[RB_ERR_MAX];
    uint32_t a = 0;
    CHECK_STR(raw_kv_err("general.alignment", GGUF_TYPE_UINT32, &a, 4, err),
              "metadata 'general.alignment': must not be 0");
    a = 48;
    CHECK_STR(raw_kv_err("general.alignment", GGUF_TYPE_UINT32, &a, 4, err),
              "metadata 'general.alignment': not a power of two (48)");
    a = 1u << 30;
    CHECK_STR(raw_kv_err("general.alignment", GGUF_TYPE_UINT32, &a, 4, err),
              "metadata 'general.alignment': too large (1073741824, at most 1048576)");
    uint64_t a64 = 32;
    CHECK_STR(raw_kv_err("general.alignment", GGUF_TYPE_UINT64, &a64, 8, err),
              "metadata 'general.alignment': expected u32, got u64");
    int32_t ai = 32;
    CHECK_STR(raw_kv_err("general.alignment", GGUF_TYPE_INT32, &ai, 4, err),
              "metadata 'general.alignment': expected u32, got i32");
    a = 32; /* the default, stated explicitly, is fine */
    CHECK_STR(raw_kv_err("general.alignment", GGUF_TYPE_UINT32, &a, 4, err), "");
}

TEST(bad_tensor_shapes) {
    char err[RB_ERR_MAX];
    CHECK_STR(tensor_err(RB_TYPE_F32, 2, (const int64_t[]){ 4, 0 }, err), "tensor 't': dimension 1 is 0");
    CHECK_STR(tensor_err(RB_TYPE_F32, 0, NULL, err), "tensor 't': 0 dimensions (must be 1 to 4)");
    CHECK_STR(tensor_err(RB_TYPE_F32, 1, (const int64_t[]){ -5 }, err),
              "tensor 't': dimension 0 is too large (18446744073709551611)");
    CHECK_STR(tensor_err(RB_TYPE_F32, 2, (const int64_t[]){ 1LL << 32, 1LL << 32 }, err),
              "tensor 't': element count overflows 64 bits");
    CHECK_STR(tensor_err(RB_TYPE_F32, 4, (const int64_t[]){ 1LL << 16, 1LL << 16, 1LL << 16, 1LL << 16 }, err),
              "tensor 't': element count overflows 64 bits");
    CHECK_STR(tensor_err(RB_TYPE_F32, 1, (const int64_t[]){ 1LL << 62 }, err),
              "tensor 't': byte size overflows 64 bits");
    CHECK_STR(tensor_err(RB_TYPE_Q4_0, 2, (const int64_t[]){ 33, 2 }, err),
              "tensor 't': row length 33 is not a multiple of the q4_0 block size 32");
    CHECK_STR(tensor_err(RB_TYPE_Q4_K, 1, (const int64_t[]){ 32 }, err),
              "tensor 't': row length 32 is not a multiple of the q4_K block size 256");
    CHECK_STR(tensor_err(4, 1, (const int64_t[]){ 32 }, err), "tensor 't': unknown or retired tensor type 4");
    CHECK_STR(tensor_err(31, 1, (const int64_t[]){ 32 }, err), "tensor 't': unknown or retired tensor type 31");
    CHECK_STR(tensor_err(40, 1, (const int64_t[]){ 32 }, err), "tensor 't': unknown or retired tensor type 40");
    /* known but not computable types parse fine (the loader refuses them) */
    CHECK(strstr(tensor_err(RB_TYPE_IQ2_XXS, 1, (const int64_t[]){ 256 }, err), "extends past") != NULL);
    /* five dimensions: patch n_dims of a writer-built tensor */
    size_t size;
    uint8_t *buf = build(small_writer(), &size);
    put_u32_at(buf, tensor_field(buf, size, "a.weight", "n_dims"), 5);
    CHECK_STR(open_err(buf, size, err), "tensor 'a.weight': 5 dimensions (must be 1 to 4)");
    free(buf);
}

TEST(bad_tensor_offsets) {
    char err[RB_ERR_MAX];
    size_t size;
    uint8_t *buf = build(small_writer(), &size);
    size_t off_b = tensor_field(buf, size, "b.weight", "offset");
    put_u64_at(buf, off_b, 33);
    CHECK_STR(open_err(buf, size, err), "tensor 'b.weight': data offset 33 is not a multiple of the alignment 32");
    put_u64_at(buf, off_b, 1ULL << 40);
    CHECK_STR(open_err(buf, size, err),
              "tensor 'b.weight': data (offset 1099511627776, 32 bytes) extends past the end of the file");
    put_u64_at(buf, off_b, UINT64_MAX - 31); /* offset + size wraps around */
    CHECK_STR(open_err(buf, size, err),
              "tensor 'b.weight': data (offset 18446744073709551584, 32 bytes) extends past the end of the file");
    put_u64_at(buf, off_b, 0);
    CHECK_STR(open_err(buf, size, err), "tensors 'a.weight' and 'b.weight' overlap");
    put_u64_at(buf, off_b, 64); /* past a (32 bytes) but inside the file? file data is 64 bytes: no */
    CHECK_STR(open_err(buf, size, err),
              "tensor 'b.weight': data (offset 64, 32 bytes) extends past the end of the file");
    free(buf);
    /* a partly overlapping larger tensor */
    struct gguf_writer *w = rb_gguf_writer_new();
    rb_gguf_writer_add_tensor(w, "x", RB_TYPE_F32, 1, (const int64_t[]){ 16 }, NULL, 64, 0);
    rb_gguf_writer_add_tensor(w, "y", RB_TYPE_F32, 1, (const int64_t[]){ 16 }, NULL, 64, 0);
    buf = build(w, &size);
    CHECK_STR(open_err(buf, size, err), "");
    put_u64_at(buf, tensor_field(buf, size, "y", "offset"), 32);
    CHECK_STR(open_err(buf, size, err), "tensors 'x' and 'y' overlap");
    free(buf);
}

TEST(bad_duplicate_tensor) {
    char err[RB_ERR_MAX];
    struct gguf_writer *w = small_writer();
    rb_gguf_writer_add_tensor(w, "a.weight", RB_TYPE_F32, 1, (const int64_t[]){ 4 }, NULL, 16, 0);
    size_t size;
    uint8_t *buf = build(w, &size);
    CHECK_STR(open_err(buf, size, err), "duplicate tensor name 'a.weight'");
    free(buf);
}

TEST(vocab_only_file) {
    /* no tensors and no trailing padding: opens, data section is empty */
    struct gguf_writer *w = rb_gguf_writer_new();
    rb_gguf_writer_add_str(w, "general.architecture", "llama");
    size_t size;
    uint8_t *buf = build(w, &size);
    char err[RB_ERR_MAX];
    struct gguf_file f;
    size_t header = 24 + 8 + 20 + 4 + 8 + 5;
    CHECK(rb_gguf_open_memory(&f, buf, header, err) == 0);
    CHECK(f.data_offset == header && f.n_tensors == 0);
    rb_gguf_close(&f);
    free(buf);
}

int main(void) {
    RUN(bad_truncated_every_byte);
    RUN(bad_truncated_real_file);
    RUN(bad_magic_and_version);
    RUN(bad_counts);
    RUN(bad_string_and_array_lengths);
    RUN(bad_metadata_types);
    RUN(bad_alignment);
    RUN(bad_tensor_shapes);
    RUN(bad_tensor_offsets);
    RUN(bad_duplicate_tensor);
    RUN(vocab_only_file);
    return test_summary();
}
