/* quantize.c - library side of `rbee quantize`: pick each tensor's type
 * (llama.cpp's mix), convert rows across threads, write a new GGUF.
 *
 * Sections: file types, the per-tensor type rules, row conversion (threads),
 * the model.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "quantize.h"
#include "../quant/quant.h"

/* ------------------------------------------------------------- file types */

static const struct {
    const char *name;
    uint32_t ftype;
    uint32_t base_type;
} ftypes[] = {
    { "f16", RB_FTYPE_F16, RB_TYPE_F16 },
    { "bf16", RB_FTYPE_BF16, RB_TYPE_BF16 },
    { "q4_0", RB_FTYPE_Q4_0, RB_TYPE_Q4_0 },
    { "q4_1", RB_FTYPE_Q4_1, RB_TYPE_Q4_1 },
    { "q5_0", RB_FTYPE_Q5_0, RB_TYPE_Q5_0 },
    { "q5_1", RB_FTYPE_Q5_1, RB_TYPE_Q5_1 },
    { "q8_0", RB_FTYPE_Q8_0, RB_TYPE_Q8_0 },
    { "q4_k_m", RB_FTYPE_Q4_K_M, RB_TYPE_Q4_K },
    { "q5_k_m", RB_FTYPE_Q5_K_M, RB_TYPE_Q5_K },
    { "q6_k", RB_FTYPE_Q6_K, RB_TYPE_Q6_K },
};
#define N_FTYPES (sizeof ftypes / sizeof ftypes[0])

int rb_ftype_from_name(const char *name, uint32_t *ftype) {
    char lower[16];
    size_t n = strlen(name);
    if (n >= sizeof lower) return -1;
    for (size_t i = 0; i <= n; i++) lower[i] = (char)tolower((unsigned char)name[i]);
    for (size_t i = 0; i < N_FTYPES; i++)
        if (!strcmp(lower, ftypes[i].name)) {
            *ftype = ftypes[i].ftype;
            return 0;
        }
    return -1;
}

const char *rb_ftype_name(uint32_t ftype) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (ftypes[i].ftype == ftype) return ftypes[i].name;
    return NULL;
}

uint32_t rb_ftype_base_type(uint32_t ftype) {
    for (size_t i = 0; i < N_FTYPES; i++)
        if (ftypes[i].ftype == ftype) return ftypes[i].base_type;
    return RB_TYPE_COUNT;
}

/* ------------------------------------------------------------- type rules */

/* gguf names are not NUL-terminated; names longer than this never match a rule */
#define NAME_MAX_LEN 256

static void name_of(const struct gguf_tensor *t, char *buf) {
    size_t len = t->name.len < NAME_MAX_LEN - 1 ? (size_t)t->name.len : NAME_MAX_LEN - 1;
    memcpy(buf, t->name.data, len);
    buf[len] = 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Dimensions that are not 1, like ggml_n_dims: a [256, 1] tensor is 1-D. */
static int effective_dims(const struct gguf_tensor *t) {
    int d = 1;
    for (int i = 1; i < 4; i++)
        if (t->ne[i] > 1) d = i + 1;
    return d;
}

/* The layer number of "blk.N.xxx", or -1. */
static int layer_of(const char *name) {
    int layer = -1, used = 0;
    if (sscanf(name, "blk.%d.%n", &layer, &used) == 1 && used > 0) return layer;
    return -1;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers and
 * every third one in between get more bits in the _M mixes. */
static int use_more_bits(int i_layer, int n_layers) {
    return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

/* Does llama.cpp quantize this tensor at all? 2-D (or more) weights, except
 * norms, MoE gates and learned position / token-type tables. */
static int is_quantizable(const struct gguf_tensor *t, const char *name) {
    return ends_with(name, "weight") && effective_dims(t) >= 2 &&
           !strstr(name, "_norm.weight") && !strstr(name, "ffn_gate_inp.weight") &&
           strcmp(name, "position_embd.weight") != 0 && strcmp(name, "token_types.weight") != 0;
}

static int count_names_containing(const struct gguf_file *f, const char *a, const char *b) {
    int n = 0;
    char name[NAME_MAX_LEN];
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        name_of(&f->tensors[i], name);
        if (strstr(name, a) || (b && strstr(name, b))) n++;
    }
    return n;
}

/* The mix: what llama_tensor_get_type picks for our file types. */
static uint32_t mix_type(const struct gguf_file *f, const char *name, const struct gguf_tensor *t,
                         uint32_t ftype, uint32_t type) {
    int has_output = rb_gguf_find_tensor(f, "output.weight") >= 0;
    if (!strcmp(name, "output.weight") || (!has_output && !strcmp(name, "token_embd.weight"))) {
        /* the output matrix (or the tied embedding) is the most sensitive */
        if (t->ne[0] % QK_K != 0) return RB_TYPE_Q8_0;
        return type == RB_TYPE_Q8_0 ? type : RB_TYPE_Q6_K;
    }
    int layer = layer_of(name);
    if (strstr(name, "attn_v.weight")) {
        int n = count_names_containing(f, "attn_v.weight", "attn_qkv.weight");
        if ((ftype == RB_FTYPE_Q4_K_M || ftype == RB_FTYPE_Q5_K_M) && layer >= 0 && use_more_bits(layer, n))
            return RB_TYPE_Q6_K;
    } else if (strstr(name, "ffn_down")) {
        int n = count_names_containing(f, "ffn_down", NULL);
        if ((ftype == RB_FTYPE_Q4_K_M || ftype == RB_FTYPE_Q5_K_M) && layer >= 0 && use_more_bits(layer, n))
            return RB_TYPE_Q6_K;
    } else if (strstr(name, "attn_qkv.weight")) {
        if (ftype == RB_FTYPE_Q4_K_M) return RB_TYPE_Q5_K;
        if (ftype == RB_FTYPE_Q5_K_M) return RB_TYPE_Q6_K;
    }
    return type;
}

/* llama.cpp's fallback for rows that do not divide into blocks, extended
 * to the 32-blocks (where llama.cpp gives up) with F16. */
static uint32_t wider_type(uint32_t type) {
    switch (type) {
    case RB_TYPE_Q2_K: case RB_TYPE_Q3_K: return RB_TYPE_Q4_0;
    case RB_TYPE_Q4_K: return RB_TYPE_Q5_0;
    case RB_TYPE_Q5_K: return RB_TYPE_Q5_1;
    case RB_TYPE_Q6_K: return RB_TYPE_Q8_0;
    default: return RB_TYPE_F16;
    }
}

uint32_t rb_quantize_tensor_type(const struct gguf_file *f, const struct gguf_tensor *t,
                                 uint32_t ftype, char *note) {
    char name[NAME_MAX_LEN];
    name_of(t, name);
    if (note) note[0] = 0;
    uint32_t base = rb_ftype_base_type(ftype);
    if (base == RB_TYPE_COUNT || !is_quantizable(t, name)) return t->type;
    if (base == RB_TYPE_F16 || base == RB_TYPE_BF16) return base;

    uint32_t want = mix_type(f, name, t, ftype, base);
    uint32_t type = want;
    while (t->ne[0] % rb_traits(type)->block_size != 0) /* ends at F16 (block 1) */
        type = wider_type(type);
    if (type != want && note)
        snprintf(note, RB_ERR_MAX, "%.160s: rows of %lld do not divide into %s blocks of %u: using %s",
                 name, (long long)t->ne[0], rb_type_name(want), rb_traits(want)->block_size, rb_type_name(type));
    return type;
}

/* ------------------------------------------------------------- row conversion */

/* Rows between two looks at opts->cancelled by the calling thread. */
#define CANCEL_CHECK_ROWS 64

struct convert_job {
    const uint8_t *src;
    uint32_t src_type, dst_type;
    int64_t ne0;
    size_t src_row_bytes, dst_row_bytes;
    uint8_t *dst;
    float *row;      /* ne0 floats of scratch, owned by the job */
    int64_t row_begin, row_end;
    atomic_int *stop; /* set when any job fails or the run is cancelled */
    const struct rb_quantize_opts *opts; /* the calling thread's job only: polls cancelled */
    /* result: first row with a NaN/Inf, or -1 */
    int64_t bad_row, bad_col;
    int cancelled;
};

static void *convert_rows(void *arg) {
    struct convert_job *job = arg;
    const struct rb_type_traits *from = rb_traits(job->src_type), *to = rb_traits(job->dst_type);
    for (int64_t r = job->row_begin; r < job->row_end; r++) {
        if (atomic_load_explicit(job->stop, memory_order_relaxed)) return NULL;
        if (job->opts && job->opts->cancelled && (r - job->row_begin) % CANCEL_CHECK_ROWS == 0 &&
            job->opts->cancelled(job->opts->user)) {
            job->cancelled = 1;
            atomic_store(job->stop, 1);
            return NULL;
        }
        from->to_float(job->src + (size_t)r * job->src_row_bytes, job->row, job->ne0);
        for (int64_t c = 0; c < job->ne0; c++)
            if (!isfinite(job->row[c])) {
                job->bad_row = r;
                job->bad_col = c;
                atomic_store(job->stop, 1);
                return NULL;
            }
        to->from_float(job->row, job->dst + (size_t)r * job->dst_row_bytes, job->ne0);
    }
    return NULL;
}

/* ------------------------------------------------------------- the model */

/* The output is planned whole (metadata, every tensor's name, type and
 * size), then each tensor is converted when the writer reaches it, into
 * one buffer as large as the largest converted tensor: memory holds one
 * output tensor, not the output model, and input pages are dropped as
 * they are used, so a 7B model quantizes on an 8 GB machine. */
struct quantize_plan {
    const struct gguf_file *in;
    struct rb_quantize_opts opts;
    uint32_t *types;  /* [n_tensors] output type of each tensor */
    uint8_t *buf;     /* largest converted tensor */
    size_t buf_bytes;
    float *rows;      /* [n_threads][max_ne0] conversion scratch */
    size_t max_ne0;   /* longest row of any tensor */
    int n_threads;
    uint64_t done, total; /* input bytes, for progress */
    int fill_failed;      /* the write stopped in fill_tensor, not at the file */
};

#define MAX_THREADS 64

static void plan_free(void *user) {
    struct quantize_plan *p = user;
    free(p->types);
    free(p->buf);
    free(p->rows);
    free(p);
}

static const char *tensor_name(const struct gguf_tensor *t, char *buf) {
    name_of(t, buf);
    return buf;
}

/* Convert tensor i to p->types[i] into p->buf, rows split over the
 * threads (each row is independent, so the bytes do not depend on how). */
static int convert_tensor(struct quantize_plan *p, size_t i, char *err) {
    const struct gguf_tensor *t = &p->in->tensors[i];
    char name[NAME_MAX_LEN];
    tensor_name(t, name);
    uint32_t dst_type = p->types[i];
    const struct rb_type_traits *from = rb_traits(t->type), *to = rb_traits(dst_type);
    if (!from || !from->to_float) {
        snprintf(err, RB_ERR_MAX, "%.160s: cannot convert from %s", name, rb_type_name(t->type));
        return -1;
    }
    if (!to || !to->from_float) {
        snprintf(err, RB_ERR_MAX, "%.160s: no quantizer for %s", name, rb_type_name(dst_type));
        return -1;
    }
    int64_t ne0 = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    int n = p->n_threads < rows ? p->n_threads : (int)rows;
    struct convert_job jobs[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    atomic_int stop = 0;
    for (int k = 0; k < n; k++)
        jobs[k] = (struct convert_job){
            .src = t->data, .src_type = t->type, .dst_type = dst_type, .ne0 = ne0,
            .src_row_bytes = (size_t)rb_row_bytes(t->type, ne0), .dst_row_bytes = (size_t)rb_row_bytes(dst_type, ne0),
            .dst = p->buf, .row = p->rows + (size_t)k * p->max_ne0,
            .row_begin = rows * k / n, .row_end = rows * (k + 1) / n,
            .stop = &stop, .opts = k == 0 ? &p->opts : NULL, .bad_row = -1, .bad_col = -1,
        };
    int started = 0;
    for (int k = 1; k < n; k++, started++)
        if (pthread_create(&tids[k], NULL, convert_rows, &jobs[k]) != 0) break;
    convert_rows(&jobs[0]);
    for (int k = 1; k <= started; k++) pthread_join(tids[k], NULL);
    for (int k = started + 1; k < n; k++) convert_rows(&jobs[k]); /* threads we could not start */

    for (int k = 0; k < n; k++)
        if (jobs[k].bad_row >= 0) {
            snprintf(err, RB_ERR_MAX, "%.160s: row %lld column %lld is NaN or Inf: refusing to quantize",
                     name, (long long)jobs[k].bad_row, (long long)jobs[k].bad_col);
            return -1;
        }
    if (jobs[0].cancelled) {
        snprintf(err, RB_ERR_MAX, "interrupted");
        return -1;
    }
    return 0;
}

/* The writer's fill: tensor i's output bytes. */
static int fill_tensor(void *user, size_t i, const void **data, char *err) {
    struct quantize_plan *p = user;
    const struct gguf_tensor *t = &p->in->tensors[i];
    if (p->opts.cancelled && p->opts.cancelled(p->opts.user)) {
        snprintf(err, RB_ERR_MAX, "interrupted");
        p->fill_failed = 1;
        return -1;
    }
    if (p->types[i] == t->type) { /* kept as it is: straight from the mapping */
        *data = t->data;
    } else {
        if (convert_tensor(p, i, err) != 0) {
            p->fill_failed = 1;
            return -1;
        }
        *data = p->buf;
        rb_gguf_drop_pages(p->in, t->data, t->n_bytes);
    }
    p->done += t->n_bytes;
    if (p->opts.progress) {
        char name[NAME_MAX_LEN];
        p->opts.progress(p->opts.user, p->done, p->total, tensor_name(t, name));
    }
    return 0;
}

static int is_replaced_key(const struct gguf_kv *kv) {
    static const char *const keys[] = { "general.file_type", "general.quantization_version", "general.alignment" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (kv->key.len == strlen(keys[i]) && !memcmp(kv->key.data, keys[i], kv->key.len)) return 1;
    return 0;
}

/* Every tensor's output type and the buffers its conversion needs; the
 * notes (fallbacks, requantizing) go out here, before any byte. */
static int plan_tensors(struct quantize_plan *p, struct gguf_writer *w, char *err) {
    const struct gguf_file *in = p->in;
    char name[NAME_MAX_LEN], note[RB_ERR_MAX];
    p->types = malloc((in->n_tensors ? (size_t)in->n_tensors : 1) * sizeof *p->types);
    if (!p->types) {
        snprintf(err, RB_ERR_MAX, "out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < in->n_tensors; i++) {
        const struct gguf_tensor *t = &in->tensors[i];
        if (t->name.len >= NAME_MAX_LEN) {
            snprintf(err, RB_ERR_MAX, "tensor %llu: name longer than %d bytes", (unsigned long long)i, NAME_MAX_LEN - 1);
            return -1;
        }
        tensor_name(t, name);
        uint32_t type = rb_quantize_tensor_type(in, t, p->opts.ftype, note);
        if (note[0] && p->opts.note) p->opts.note(p->opts.user, note);
        uint64_t bytes = t->n_bytes;
        if (type != t->type) {
            if (t->type != RB_TYPE_F32 && t->type != RB_TYPE_F16 && t->type != RB_TYPE_BF16 && p->opts.note) {
                snprintf(note, RB_ERR_MAX, "%.160s: requantizing from %s to %s adds the errors of both",
                         name, rb_type_name(t->type), rb_type_name(type));
                p->opts.note(p->opts.user, note);
            }
            bytes = rb_row_bytes(type, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
            if (bytes > SIZE_MAX) {
                snprintf(err, RB_ERR_MAX, "%.160s: too large for memory", name);
                return -1;
            }
            if (bytes > p->buf_bytes) p->buf_bytes = (size_t)bytes;
        }
        if ((size_t)t->ne[0] > p->max_ne0) p->max_ne0 = (size_t)t->ne[0];
        p->types[i] = type;
        p->total += t->n_bytes;
        if (rb_gguf_writer_add_tensor(w, name, type, t->n_dims, t->ne, NULL, bytes, 1) != 0) {
            snprintf(err, RB_ERR_MAX, "%.160s: cannot add tensor (out of memory?)", name);
            return -1;
        }
    }
    p->buf = malloc(p->buf_bytes ? p->buf_bytes : 1);
    p->rows = malloc((size_t)p->n_threads * (p->max_ne0 ? p->max_ne0 : 1) * sizeof *p->rows);
    if (!p->buf || !p->rows) {
        snprintf(err, RB_ERR_MAX, "out of memory (%zu bytes for the largest tensor)", p->buf_bytes);
        return -1;
    }
    return 0;
}

/* rb_quantize_gguf, also handing back the plan (owned by the writer) */
static int plan_model(const struct gguf_file *in, const struct rb_quantize_opts *opts,
                      struct gguf_writer **out, struct quantize_plan **plan, char *err) {
    *out = NULL;
    if (!rb_ftype_name(opts->ftype)) {
        snprintf(err, RB_ERR_MAX, "file type %u: not one rbee writes", opts->ftype);
        return -1;
    }
    struct gguf_writer *w = rb_gguf_writer_new();
    struct quantize_plan *p = calloc(1, sizeof *p);
    if (!w || !p) {
        rb_gguf_writer_free(w);
        free(p);
        snprintf(err, RB_ERR_MAX, "out of memory");
        return -1;
    }
    p->in = in;
    p->opts = *opts;
    p->n_threads = opts->n_threads < 1 ? 1 : opts->n_threads > MAX_THREADS ? MAX_THREADS : opts->n_threads;
    rb_gguf_writer_set_fill(w, fill_tensor, p, plan_free);
    rb_gguf_writer_set_alignment(w, (uint32_t)in->alignment);
    for (uint64_t i = 0; i < in->n_kv; i++)
        if (!is_replaced_key(&in->kv[i]) && rb_gguf_writer_copy_kv(w, &in->kv[i]) != 0) {
            snprintf(err, RB_ERR_MAX, "cannot copy metadata key %.*s", (int)(in->kv[i].key.len > 160 ? 160 : in->kv[i].key.len), in->kv[i].key.data);
            goto fail;
        }
    if (rb_gguf_writer_add_u32(w, "general.quantization_version", 2) != 0 ||
        rb_gguf_writer_add_u32(w, "general.file_type", opts->ftype) != 0) {
        snprintf(err, RB_ERR_MAX, "out of memory");
        goto fail;
    }
    if (plan_tensors(p, w, err) != 0) goto fail;
    *out = w;
    *plan = p;
    return 0;
fail:
    rb_gguf_writer_free(w);
    return -1;
}

int rb_quantize_gguf(const struct gguf_file *in, const struct rb_quantize_opts *opts,
                     struct gguf_writer **out, char *err) {
    struct quantize_plan *plan;
    return plan_model(in, opts, out, &plan, err);
}

int rb_quantize_file(const char *in_path, const char *out_path, const struct rb_quantize_opts *opts, char *err) {
    struct gguf_file in;
    char why[RB_ERR_MAX];
    if (rb_gguf_open(&in, in_path, why) != 0) {
        snprintf(err, RB_ERR_MAX, "%.120s: %.120s", in_path, why);
        return -1;
    }
    /* Replacing the model being read (permissions do not stop root) would
     * lose the user's only copy of it. stat, not lstat: rb_outfile follows
     * a symbolic link and replaces its target. */
    struct stat si, so;
    if (stat(in_path, &si) == 0 && stat(out_path, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
        snprintf(err, RB_ERR_MAX, "%.120s: is the input file; refusing to overwrite it", out_path);
        rb_gguf_close(&in);
        return -1;
    }
    /* the output first: a path we cannot write fails before any work */
    struct rb_outfile out;
    if (rb_outfile_open(&out, out_path, 0, why) != 0) {
        snprintf(err, RB_ERR_MAX, "%.120s: %.120s", out_path, why);
        rb_gguf_close(&in);
        return -1;
    }
    struct gguf_writer *w;
    struct quantize_plan *plan;
    int rc = plan_model(&in, opts, &w, &plan, err);
    if (rc == 0) {
        rc = rb_gguf_writer_write_fd(w, out.fd, why) || rb_outfile_commit(&out, why) ? -1 : 0;
        if (rc != 0 && plan->fill_failed) snprintf(err, RB_ERR_MAX, "%s", why); /* about a tensor */
        else if (rc != 0) snprintf(err, RB_ERR_MAX, "%.120s: %.120s", out_path, why);
        rb_gguf_writer_free(w);
    }
    rb_outfile_abort(&out); /* after a commit: nothing left to do */
    rb_gguf_close(&in);
    return rc;
}
