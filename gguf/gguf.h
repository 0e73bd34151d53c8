/* gguf.h - GGUF v2/v3 reader (memory-mapped, every byte untrusted) and writer.
 *
 * This is the lowest layer: it knows the file format and the size of every
 * tensor type GGUF defines (so any real file can be listed), nothing about
 * what the blocks mean (quant/) or how to compute with them (simd/).
 *
 * Error convention for the whole library: functions return 0 on success and
 * -1 on failure, writing one line (no trailing newline) into a caller-owned
 * buffer `err` of RB_ERR_MAX bytes. Nothing here calls exit() or abort().
 */
#ifndef RB_GGUF_H
#define RB_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define RB_ERR_MAX 256

/* ---- tensor types: the ids GGUF files store (ggml_type) ---- */
enum rb_type {
    RB_TYPE_F32 = 0, RB_TYPE_F16 = 1, RB_TYPE_Q4_0 = 2, RB_TYPE_Q4_1 = 3,
    /* 4, 5: Q4_2, Q4_3, retired */
    RB_TYPE_Q5_0 = 6, RB_TYPE_Q5_1 = 7, RB_TYPE_Q8_0 = 8, RB_TYPE_Q8_1 = 9,
    RB_TYPE_Q2_K = 10, RB_TYPE_Q3_K = 11, RB_TYPE_Q4_K = 12, RB_TYPE_Q5_K = 13,
    RB_TYPE_Q6_K = 14, RB_TYPE_Q8_K = 15,
    RB_TYPE_IQ2_XXS = 16, RB_TYPE_IQ2_XS = 17, RB_TYPE_IQ3_XXS = 18,
    RB_TYPE_IQ1_S = 19, RB_TYPE_IQ4_NL = 20, RB_TYPE_IQ3_S = 21,
    RB_TYPE_IQ2_S = 22, RB_TYPE_IQ4_XS = 23,
    RB_TYPE_I8 = 24, RB_TYPE_I16 = 25, RB_TYPE_I32 = 26, RB_TYPE_I64 = 27,
    RB_TYPE_F64 = 28, RB_TYPE_IQ1_M = 29, RB_TYPE_BF16 = 30,
    /* 31..33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8, retired */
    RB_TYPE_TQ1_0 = 34, RB_TYPE_TQ2_0 = 35,
    /* 36..38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8, retired */
    RB_TYPE_MXFP4 = 39,
    RB_TYPE_COUNT = 40
};

/* Storage facts about a tensor type; block_size == 0 means the id is unknown
 * or retired. Defined for every id < RB_TYPE_COUNT. */
struct rb_type_size {
    const char *name;    /* "q4_K", as ggml spells it; NULL when unknown */
    uint32_t block_size; /* elements per block */
    uint32_t type_size;  /* bytes per block */
};
const struct rb_type_size *rb_type_size(uint32_t type); /* NULL if out of range or retired */
const char *rb_type_name(uint32_t type);                /* "?" when unknown */
/* bytes of a row of n elements; 0 if n is not a multiple of the block size or the type is unknown */
uint64_t rb_row_bytes(uint32_t type, int64_t n);

/* ---- metadata ---- */
enum gguf_type {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3, GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7, GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12, GGUF_TYPE_COUNT = 13
};
const char *rb_gguf_type_name(enum gguf_type t);

/* A string inside the mapping: NOT NUL-terminated. */
struct gguf_str {
    uint64_t len;
    const char *data;
};

struct gguf_kv {
    struct gguf_str key;
    enum gguf_type type;     /* GGUF_TYPE_ARRAY for arrays */
    enum gguf_type arr_type; /* element type when type == ARRAY */
    uint64_t arr_len;        /* element count when type == ARRAY */
    const uint8_t *value;    /* first byte of the value (or of the first element) in the mapping */
    const uint64_t *str_offsets; /* string arrays only: byte offset of string i from value (reader-owned) */
};

struct gguf_tensor {
    struct gguf_str name;
    uint32_t n_dims;  /* 1..4 */
    int64_t ne[4];    /* elements per dimension, ne[0] = row length; unused dims are 1 */
    uint32_t type;    /* enum rb_type */
    uint64_t offset;  /* relative to the data section */
    uint64_t n_bytes; /* total bytes, checked to lie inside the file */
    const void *data; /* into the mapping */
};

struct gguf_file {
    const char *path;     /* as given to rb_gguf_open (borrowed) */
    const uint8_t *map;   /* whole file, read-only */
    size_t size;
    int owns_map;         /* 1 when rb_gguf_close must munmap */
    uint32_t version;
    uint64_t n_kv;
    struct gguf_kv *kv;
    uint64_t n_tensors;
    struct gguf_tensor *tensors;
    uint64_t alignment;   /* general.alignment or 32 */
    uint64_t data_offset; /* start of the data section */
    uint64_t header_size; /* end of the tensor infos (data_offset minus alignment padding) */
};

/* Map and parse a file. On failure `err` holds "reason" (the caller adds the path). */
int rb_gguf_open(struct gguf_file *f, const char *path, char *err);
/* Parse bytes already in memory (used by the fuzzer and tests); buf must outlive f. */
int rb_gguf_open_memory(struct gguf_file *f, const void *buf, size_t size, char *err);
void rb_gguf_close(struct gguf_file *f);
/* A one-pass reader (quantize) is done with [data, data + n) of f's
 * mapping: its pages leave the process's resident memory (they are read
 * from the file again if touched). No-op for rb_gguf_open_memory files. */
void rb_gguf_drop_pages(const struct gguf_file *f, const void *data, uint64_t n);

/* Lookup: index or -1. */
int64_t rb_gguf_find_key(const struct gguf_file *f, const char *key);
int64_t rb_gguf_find_tensor(const struct gguf_file *f, const char *name);
const struct gguf_tensor *rb_gguf_get_tensor(const struct gguf_file *f, const char *name);

/* Typed getters: 0 on success; -1 with err "KEY: missing" or "KEY: expected u32, got f32".
 * Integer getters accept any integer type whose value fits the destination. */
int rb_gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *out, char *err);
int rb_gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *out, char *err);
int rb_gguf_get_i32(const struct gguf_file *f, const char *key, int32_t *out, char *err);
int rb_gguf_get_f32(const struct gguf_file *f, const char *key, float *out, char *err);
int rb_gguf_get_bool(const struct gguf_file *f, const char *key, int *out, char *err);
/* string into out (NUL-terminated, truncated to cap - 1) */
int rb_gguf_get_str(const struct gguf_file *f, const char *key, char *out, size_t cap, char *err);
/* array of the given element type: *data points at the first element in the mapping
 * (for GGUF_TYPE_STRING arrays use rb_gguf_arr_str). */
int rb_gguf_get_arr(const struct gguf_file *f, const char *key, enum gguf_type elem_type,
                 const void **data, uint64_t *len, char *err);
/* s as printable text for a message: bytes outside ASCII 0x20..0x7e become
 * '?', and a string longer than cap - 4 bytes is cut and ends in "...". */
const char *rb_gguf_show(const struct gguf_str *s, char *buf, size_t cap);
/* i-th string of a string array kv (bounds already verified at open). */
struct gguf_str rb_gguf_arr_str(const struct gguf_kv *kv, uint64_t i);

/* The valid UTF-8 character at s: its length (1..4, at most n) and code
 * point in *cp; 0 when s does not start one (a stray continuation byte, a
 * cut or overlong sequence, a surrogate, past U+10FFFF). Keys and tensor
 * names must be valid UTF-8 without NUL (checked at open). */
size_t rb_gguf_utf8_char(const char *s, size_t n, uint32_t *cp);

/* Where every byte of the file goes (for `rbee info`): header + padding +
 * tensor bytes + unused == file size. padding counts the alignment gaps
 * (each smaller than the alignment); unused counts larger gaps and bytes
 * after the last tensor beyond its padding (0 in files written by llama.cpp or us). */
struct rb_gguf_layout {
    uint64_t header_bytes, padding_bytes, tensor_bytes, unused_bytes, file_bytes;
};
void rb_gguf_layout(const struct gguf_file *f, struct rb_gguf_layout *out);

/* ---- writer ---- */
struct gguf_writer;
struct gguf_writer *rb_gguf_writer_new(void);
void rb_gguf_writer_free(struct gguf_writer *w);
void rb_gguf_writer_set_version(struct gguf_writer *w, uint32_t version); /* default 3 */
void rb_gguf_writer_set_alignment(struct gguf_writer *w, uint32_t alignment); /* default 32; also written as general.alignment when not 32 */
/* Raw escape hatch for tests that build bad files: write a kv whose value bytes are given verbatim. */
int rb_gguf_writer_add_raw(struct gguf_writer *w, const char *key, enum gguf_type type, const void *value, size_t n_bytes);
int rb_gguf_writer_add_u32(struct gguf_writer *w, const char *key, uint32_t v);
int rb_gguf_writer_add_i32(struct gguf_writer *w, const char *key, int32_t v);
int rb_gguf_writer_add_u64(struct gguf_writer *w, const char *key, uint64_t v);
int rb_gguf_writer_add_f32(struct gguf_writer *w, const char *key, float v);
int rb_gguf_writer_add_bool(struct gguf_writer *w, const char *key, int v);
int rb_gguf_writer_add_str(struct gguf_writer *w, const char *key, const char *v);
int rb_gguf_writer_add_arr(struct gguf_writer *w, const char *key, enum gguf_type elem_type, const void *data, uint64_t n);
int rb_gguf_writer_add_str_arr(struct gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copy one kv of an open file verbatim (used by quantize). */
int rb_gguf_writer_copy_kv(struct gguf_writer *w, const struct gguf_kv *kv);
/* Tensor data is copied into the writer (or referenced, if `borrow`), written in order, each aligned.
 * data == NULL: the bytes come from the writer's fill function when it has one, else they are zeros. */
int rb_gguf_writer_add_tensor(struct gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t n_bytes, int borrow);
/* Tensor bytes made at write time, one tensor at a time, in order (so a
 * writer never holds a whole model): fill sets *data to the n_bytes bytes
 * of tensor i (valid until its next call) and returns 0, or returns -1 with
 * err set, which stops the write. free_user (may be NULL) is called on user
 * by rb_gguf_writer_free. */
typedef int (*gguf_fill_fn)(void *user, size_t i, const void **data, char *err);
void rb_gguf_writer_set_fill(struct gguf_writer *w, gguf_fill_fn fill, void *user, void (*free_user)(void *user));
/* Write to a path through rb_outfile: whole or not at all. */
int rb_gguf_writer_write_file(struct gguf_writer *w, const char *path, char *err);
/* Write to an open descriptor from its current position (no fsync, no close). */
int rb_gguf_writer_write_fd(struct gguf_writer *w, int fd, char *err);
/* Serialize to a malloc'd buffer (tests). */
int rb_gguf_writer_write_mem(struct gguf_writer *w, void **buf, size_t *size, char *err);

/* ---- output files ----
 * rb_outfile_open looks at path before anything is written:
 *   a regular file, or no file: a temp file "PATH.tmp.XXXXXX" beside it is
 *     written and renamed over PATH by commit (it appears whole or not at all)
 *   a symbolic link: followed; its target is replaced and the link kept
 *     (a link to a missing file is refused)
 *   a character device or FIFO (/dev/null, a pipe): written straight
 *     through, never replaced; refused when need_seek (output written in place)
 *   a directory, block device or socket: refused, saying which
 * After open, write to fd; then commit (fsync, rename) or abort (close,
 * remove the temp file). Both release everything; the struct may be reused.
 * Messages leave out path (the caller adds it). */
struct rb_outfile {
    int fd;
    char *tmp_path;   /* NULL when writing straight through */
    char *final_path; /* what tmp_path becomes (a symbolic link's target) */
    unsigned mode;    /* permissions of the file replaced, or 0644 */
};
int rb_outfile_open(struct rb_outfile *o, const char *path, int need_seek, char *err);
int rb_outfile_commit(struct rb_outfile *o, char *err);
void rb_outfile_abort(struct rb_outfile *o);

#endif
