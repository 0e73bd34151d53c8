/* synth.c - synthetic GGUF models with random weights of a real layout
 * (see synth.h for what the weights are and why they come from a pool).
 *
 * Sections, in data-flow order: shapes and file types, the per-tensor type
 * choice, the tensor list, random numbers and block pools, the threaded fill,
 * and writing the file.
 *
 * Writing: the gguf writer lays out header, metadata and tensor data; we hand
 * it every tensor as a view of one read-only anonymous mapping (the kernel's
 * zero page, so no memory is used), let it write the file, read the data
 * offsets back with the reader, then fill each tensor's bytes in place with
 * pwrite from several threads. Peak memory stays a few MB whatever the size.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "synth.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../quant/quant.h"

#define SYNTH_STD 0.02f
#define SYNTH_POOL_FLOATS ((int64_t)1 << 22) /* 4M values per pool: 16 MB of floats while quantizing */
#define SYNTH_CHUNK_BYTES ((uint64_t)1 << 20) /* work item: about 1 MiB of tensor data */
#define SYNTH_MAX_THREADS 64

/* One line into err, truncated if long (paths can be). */
static void set_err(char *err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, RB_ERR_MAX, fmt, ap);
    va_end(ap);
}

/* ---- shapes and file types ---- */

/* The real models' hyperparameters (their config.json, as llama.cpp's
 * converter writes them), and the vocab in ../shared that matches: */
static const struct rb_synth_shape shapes[] = {
    /* name             arch     embd  layers heads kv   ffn    vocab  ctx */
    { "tinyllama-1.1b", "llama", 2048, 22,    32,   4,   5632,  32000, 2048, .vocab = NULL },
    { "llama2-7b",      "llama", 4096, 32,    32,   32,  11008, 32000, 4096, .vocab = NULL },
    { "llama-mini",     "llama", 256,  4,     8,    2,   768,   32000, 512, .vocab = NULL },
    { "gpt2-124m",      "gpt2",  768,  12,    12,   12,  3072,  50257, 1024, .vocab = NULL },
    /* Llama 3.2 1B: rope_freqs, tied embeddings, the Llama 3 BPE vocab */
    { "llama3.2-1b",    "llama", 2048, 16,    32,   8,   8192, 128256, 131072, .rope_base = 500000.0f,
      .tied = 1, .llama3_rope = 1, .vocab = "reference/tokenizer/ggml-vocab-llama-bpe.gguf", .tokenizer = "gpt2" },
    /* Qwen2.5: q/k/v biases, NEOX rope, tied embeddings, the Qwen2 BPE vocab */
    { "qwen2.5-0.5b",   "qwen2", 896,  24,    14,   2,   4864, 151936, 32768, .rope_base = 1000000.0f,
      .norm_eps = 1e-6f, .tied = 1, .vocab = "reference/tokenizer/ggml-vocab-qwen2.gguf", .tokenizer = "gpt2" },
    { "qwen2.5-1.5b",   "qwen2", 1536, 28,    12,   2,   8960, 151936, 32768, .rope_base = 1000000.0f,
      .norm_eps = 1e-6f, .tied = 1, .vocab = "reference/tokenizer/ggml-vocab-qwen2.gguf", .tokenizer = "gpt2" },
    /* Phi-3-mini-4k: fused attn_qkv and gate/up, window 2047, its SPM vocab */
    { "phi3-mini",      "phi3",  3072, 32,    32,   32,  8192,  32064, 4096, .window = 2047,
      .vocab = "models/phi3-mini-q8_0.gguf" },
    /* SmolLM2-360M: tied; its own 49152-token BPE vocab is not in ../shared,
     * so the first Llama 3 tokens stand in (synth_vocab.c) */
    { "smollm2-360m",   "llama", 960,  32,    15,   5,   2560,  49152, 8192, .rope_base = 100000.0f,
      .tied = 1, .vocab = "reference/tokenizer/ggml-vocab-llama-bpe.gguf", .tokenizer = "gpt2", .cut_vocab = 1 },
};

const struct rb_synth_shape *rb_synth_shape_find(const char *name) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, name)) return &shapes[i];
    return NULL;
}

const char *rb_synth_shape_names(void) {
    return "tinyllama-1.1b, llama2-7b, llama-mini, gpt2-124m, llama3.2-1b, qwen2.5-0.5b, qwen2.5-1.5b, "
           "phi3-mini, smollm2-360m";
}

static const struct rb_synth_ftype ftypes[] = {
    { "f32",    "F32",    0,  RB_TYPE_F32 },
    { "f16",    "F16",    1,  RB_TYPE_F16 },
    { "bf16",   "BF16",   32, RB_TYPE_BF16 },
    { "q4_0",   "Q4_0",   2,  RB_TYPE_Q4_0 },
    { "q4_1",   "Q4_1",   3,  RB_TYPE_Q4_1 },
    { "q5_0",   "Q5_0",   8,  RB_TYPE_Q5_0 },
    { "q5_1",   "Q5_1",   9,  RB_TYPE_Q5_1 },
    { "q8_0",   "Q8_0",   7,  RB_TYPE_Q8_0 },
    { "q4_k_m", "Q4_K_M", 15, RB_TYPE_Q4_K },
    { "q5_k_m", "Q5_K_M", 17, RB_TYPE_Q5_K },
    { "q6_k",   "Q6_K",   18, RB_TYPE_Q6_K },
};

const struct rb_synth_ftype *rb_synth_ftype_find(const char *name) {
    for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
        if (!strcmp(ftypes[i].name, name)) return &ftypes[i];
    return NULL;
}

const struct rb_synth_ftype *rb_synth_ftype_by_id(uint32_t file_type) {
    for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
        if (ftypes[i].file_type == file_type) return &ftypes[i];
    return NULL;
}

const char *rb_synth_ftype_names(void) {
    return "f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q4_k_m, q5_k_m, q6_k";
}

/* ---- which type each tensor gets ---- */

/* llama.cpp's use_more_bits: the first and last eighth of the layers and
 * every third one between get more bits in the _M mixes. */
static int use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static uint32_t fit_row(uint32_t type, int64_t row_len) {
    for (int tries = 0; tries < 3; tries++) {
        const struct rb_type_size *ts = rb_type_size(type);
        if (ts && row_len % ts->block_size == 0) return type;
        switch (type) {
        case RB_TYPE_Q4_K: type = RB_TYPE_Q5_0; break;
        case RB_TYPE_Q5_K: type = RB_TYPE_Q5_1; break;
        case RB_TYPE_Q6_K: type = RB_TYPE_Q8_0; break;
        default: type = RB_TYPE_F16; break;
        }
    }
    return RB_TYPE_F16;
}

uint32_t rb_synth_tensor_type(const struct rb_synth_ftype *ft, const char *name, int n_dims,
                              int64_t row_len, int layer, int n_layers) {
    uint32_t base = ft->base_type;
    int is_float = base == RB_TYPE_F32 || base == RB_TYPE_F16 || base == RB_TYPE_BF16;
    int is_k_mix = ft->file_type == 15 || ft->file_type == 17;
    if (n_dims < 2) return RB_TYPE_F32;
    if (is_float) return base;
    if (!strcmp(name, "position_embd.weight")) return RB_TYPE_F16;
    if (!strcmp(name, "output.weight"))
        return fit_row(base == RB_TYPE_Q8_0 ? RB_TYPE_Q8_0 : RB_TYPE_Q6_K, row_len);
    if (is_k_mix && layer >= 0 && use_more_bits(layer, n_layers) &&
        (ends_with(name, ".attn_v.weight") || ends_with(name, ".ffn_down.weight")))
        return fit_row(RB_TYPE_Q6_K, row_len);
    if (is_k_mix && ends_with(name, ".attn_qkv.weight"))
        return fit_row(base == RB_TYPE_Q4_K ? RB_TYPE_Q5_K : RB_TYPE_Q6_K, row_len);
    return fit_row(base, row_len);
}

/* ---- the tensor list ---- */

/* weights from the block pools; norms 1 + noise and biases noise, F32;
 * Llama 3's rope factors by their formula */
enum synth_kind { SYNTH_WEIGHT, SYNTH_NORM, SYNTH_BIAS, SYNTH_ROPE_FREQS };

struct synth_tensor {
    char name[64];
    uint32_t type;
    uint32_t n_dims;
    int64_t ne[2];          /* ne[0]: row length, ne[1]: rows */
    enum synth_kind kind;
    uint64_t n_bytes;
    uint64_t file_offset;   /* absolute, filled after the header is written */
};

struct synth_list {
    struct synth_tensor *t;
    int n, cap;
};

static int list_add(struct synth_list *l, const struct rb_synth_shape *s, const struct rb_synth_ftype *ft,
                    int layer, const char *suffix, enum synth_kind kind, int64_t ne0, int64_t ne1) {
    if (l->n == l->cap) return -1; /* sized exactly by the caller */
    struct synth_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    if (layer >= 0) snprintf(t->name, sizeof t->name, "blk.%d.%s", layer, suffix);
    else snprintf(t->name, sizeof t->name, "%s", suffix);
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->kind = kind;
    /* a tied embedding is also the output, and llama.cpp gives it output's type */
    const char *as = s->tied && !strcmp(t->name, "token_embd.weight") ? "output.weight" : t->name;
    t->type = rb_synth_tensor_type(ft, as, (int)t->n_dims, ne0, layer, s->n_layers);
    t->n_bytes = rb_row_bytes(t->type, ne0) * (uint64_t)ne1;
    return t->n_bytes ? 0 : -1;
}

/* llama, qwen2 (q/k/v biases) and phi3 (fused attn_qkv, fused ffn_up) */
static int build_rotary(struct synth_list *l, const struct rb_synth_shape *s, const struct rb_synth_ftype *ft) {
    int64_t d = s->n_embd, d_kv = (int64_t)s->n_embd / s->n_heads * s->n_heads_kv, f = s->n_ff;
    int qwen2 = !strcmp(s->arch, "qwen2"), phi3 = !strcmp(s->arch, "phi3");
    int rc = list_add(l, s, ft, -1, "token_embd.weight", SYNTH_WEIGHT, d, s->n_vocab);
    if (s->llama3_rope) rc |= list_add(l, s, ft, -1, "rope_freqs.weight", SYNTH_ROPE_FREQS, d / s->n_heads / 2, 1);
    for (int i = 0; i < s->n_layers; i++) {
        rc |= list_add(l, s, ft, i, "attn_norm.weight", SYNTH_NORM, d, 1);
        if (phi3) {
            rc |= list_add(l, s, ft, i, "attn_qkv.weight", SYNTH_WEIGHT, d, d + 2 * d_kv);
        } else {
            rc |= list_add(l, s, ft, i, "attn_q.weight", SYNTH_WEIGHT, d, d);
            rc |= list_add(l, s, ft, i, "attn_k.weight", SYNTH_WEIGHT, d, d_kv);
            rc |= list_add(l, s, ft, i, "attn_v.weight", SYNTH_WEIGHT, d, d_kv);
        }
        if (qwen2) {
            rc |= list_add(l, s, ft, i, "attn_q.bias", SYNTH_BIAS, d, 1);
            rc |= list_add(l, s, ft, i, "attn_k.bias", SYNTH_BIAS, d_kv, 1);
            rc |= list_add(l, s, ft, i, "attn_v.bias", SYNTH_BIAS, d_kv, 1);
        }
        rc |= list_add(l, s, ft, i, "attn_output.weight", SYNTH_WEIGHT, d, d);
        rc |= list_add(l, s, ft, i, "ffn_norm.weight", SYNTH_NORM, d, 1);
        if (!phi3) rc |= list_add(l, s, ft, i, "ffn_gate.weight", SYNTH_WEIGHT, d, f);
        rc |= list_add(l, s, ft, i, "ffn_down.weight", SYNTH_WEIGHT, f, d);
        rc |= list_add(l, s, ft, i, "ffn_up.weight", SYNTH_WEIGHT, d, phi3 ? 2 * f : f);
    }
    rc |= list_add(l, s, ft, -1, "output_norm.weight", SYNTH_NORM, d, 1);
    if (!s->tied) rc |= list_add(l, s, ft, -1, "output.weight", SYNTH_WEIGHT, d, s->n_vocab);
    return rc;
}

static int build_gpt2(struct synth_list *l, const struct rb_synth_shape *s, const struct rb_synth_ftype *ft) {
    int64_t d = s->n_embd, f = s->n_ff;
    int rc = list_add(l, s, ft, -1, "token_embd.weight", SYNTH_WEIGHT, d, s->n_vocab);
    rc |= list_add(l, s, ft, -1, "position_embd.weight", SYNTH_WEIGHT, d, s->n_ctx);
    for (int i = 0; i < s->n_layers; i++) {
        rc |= list_add(l, s, ft, i, "attn_norm.weight", SYNTH_NORM, d, 1);
        rc |= list_add(l, s, ft, i, "attn_norm.bias", SYNTH_BIAS, d, 1);
        rc |= list_add(l, s, ft, i, "attn_qkv.weight", SYNTH_WEIGHT, d, 3 * d);
        rc |= list_add(l, s, ft, i, "attn_qkv.bias", SYNTH_BIAS, 3 * d, 1);
        rc |= list_add(l, s, ft, i, "attn_output.weight", SYNTH_WEIGHT, d, d);
        rc |= list_add(l, s, ft, i, "attn_output.bias", SYNTH_BIAS, d, 1);
        rc |= list_add(l, s, ft, i, "ffn_norm.weight", SYNTH_NORM, d, 1);
        rc |= list_add(l, s, ft, i, "ffn_norm.bias", SYNTH_BIAS, d, 1);
        rc |= list_add(l, s, ft, i, "ffn_up.weight", SYNTH_WEIGHT, d, f);
        rc |= list_add(l, s, ft, i, "ffn_up.bias", SYNTH_BIAS, f, 1);
        rc |= list_add(l, s, ft, i, "ffn_down.weight", SYNTH_WEIGHT, f, d);
        rc |= list_add(l, s, ft, i, "ffn_down.bias", SYNTH_BIAS, d, 1);
    }
    rc |= list_add(l, s, ft, -1, "output_norm.weight", SYNTH_NORM, d, 1);
    rc |= list_add(l, s, ft, -1, "output_norm.bias", SYNTH_BIAS, d, 1);
    rc |= list_add(l, s, ft, -1, "output.weight", SYNTH_WEIGHT, d, s->n_vocab);
    return rc;
}

static int build_list(struct synth_list *l, const struct rb_synth_shape *s, const struct rb_synth_ftype *ft,
                      char *err) {
    int is_gpt2 = !strcmp(s->arch, "gpt2");
    if (!is_gpt2 && strcmp(s->arch, "llama") && strcmp(s->arch, "qwen2") && strcmp(s->arch, "phi3")) {
        set_err(err, "shape %s: unknown architecture %s", s->name, s->arch);
        return -1;
    }
    if (s->n_embd <= 0 || s->n_layers <= 0 || s->n_heads <= 0 || s->n_heads_kv <= 0 ||
        s->n_ff <= 0 || s->n_vocab <= 0 || s->n_ctx <= 0 || s->n_embd % s->n_heads != 0 ||
        s->n_heads % s->n_heads_kv != 0 || s->n_layers > 1000) {
        set_err(err, "shape %s: inconsistent hyperparameters", s->name);
        return -1;
    }
    l->cap = 8 + s->n_layers * 12; /* a few outside the blocks; at most 12 in one (gpt2, qwen2) */
    l->n = 0;
    l->t = calloc((size_t)l->cap, sizeof *l->t);
    if (!l->t) { set_err(err, "out of memory"); return -1; }
    if ((is_gpt2 ? build_gpt2(l, s, ft) : build_rotary(l, s, ft)) != 0) {
        set_err(err, "shape %s: a tensor's row length does not fit type %s", s->name, ft->name);
        free(l->t);
        l->t = NULL;
        return -1;
    }
    return 0;
}

/* ---- random numbers ---- */

uint64_t rb_synth_rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Box-Muller: two uniforms in (0, 1] give two independent N(0, 1) */
static void rng_normal2(uint64_t *state, float *a, float *b) {
    double u1 = ((double)(rb_synth_rng_next(state) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(rb_synth_rng_next(state) >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586 * u2;
    *a = (float)(r * cos(th));
    *b = (float)(r * sin(th));
}

static void fill_normal(uint64_t *state, float *x, int64_t n, float mean, float std) {
    for (int64_t i = 0; i + 1 < n; i += 2) {
        float a, b;
        rng_normal2(state, &a, &b);
        x[i] = mean + std * a;
        x[i + 1] = mean + std * b;
    }
    if (n % 2) {
        float a, b;
        rng_normal2(state, &a, &b);
        x[n - 1] = mean + std * a;
    }
}

/* A stream for one (tensor, chunk): the same bytes whatever thread makes them. */
static uint64_t stream_seed(uint64_t seed, uint64_t tensor, uint64_t chunk) {
    uint64_t s = seed ^ 0x5DEECE66Dull;
    s = rb_synth_rng_next(&s) ^ (tensor * 0xD1B54A32D192ED03ull);
    s = rb_synth_rng_next(&s) ^ (chunk * 0x8CB92BA72F3D8DD7ull);
    return rb_synth_rng_next(&s);
}

/* ---- block pools ---- */

/* A pool: many quantized blocks of N(0, std) values, of one tensor type.
 * A "unit" is what gets copied at once: one block for block types, 32
 * values for F32/F16/BF16. */
struct synth_pool {
    uint32_t type;
    int64_t unit_elems;
    uint64_t unit_bytes;
    uint64_t n_units;
    uint8_t *data;
};

static int pool_init(struct synth_pool *p, uint32_t type, int64_t pool_floats, int64_t max_elems, uint64_t seed,
                     char *err) {
    const struct rb_type_traits *tr = rb_traits(type);
    const struct rb_type_size *ts = rb_type_size(type);
    memset(p, 0, sizeof *p);
    p->type = type;
    if (!tr || !ts || !tr->from_float) {
        set_err(err, "type %s: no quantizer", rb_type_name(type));
        return -1;
    }
    p->unit_elems = ts->block_size > 1 ? ts->block_size : 32;
    p->unit_bytes = rb_row_bytes(type, p->unit_elems);
    /* enough units that rows rarely repeat, but no more than the biggest tensor needs */
    int64_t n_floats = pool_floats > 0 ? pool_floats : SYNTH_POOL_FLOATS;
    if (max_elems > 0 && max_elems < n_floats) n_floats = max_elems;
    n_floats = (n_floats + p->unit_elems - 1) / p->unit_elems * p->unit_elems;
    p->n_units = (uint64_t)(n_floats / p->unit_elems);
    float *x = malloc((size_t)n_floats * sizeof *x);
    p->data = malloc((size_t)(p->n_units * p->unit_bytes));
    if (!x || !p->data) {
        free(x);
        free(p->data);
        p->data = NULL;
        set_err(err, "out of memory for the %s block pool", rb_type_name(type));
        return -1;
    }
    uint64_t st = stream_seed(seed, 0xB10C0000u + type, 0);
    fill_normal(&st, x, n_floats, 0.0f, SYNTH_STD);
    /* quantize unit by unit so the quantizer only ever sees whole blocks */
    for (uint64_t u = 0; u < p->n_units; u++)
        tr->from_float(x + u * (uint64_t)p->unit_elems, p->data + u * p->unit_bytes, p->unit_elems);
    free(x);
    return 0;
}

/* ---- the threaded fill ---- */

struct synth_item { int tensor; int64_t row_begin, row_end; uint64_t chunk; };

struct synth_job {
    const struct synth_list *list;
    const struct synth_pool *pools; /* indexed by tensor type; data NULL if unused */
    const struct synth_item *items;
    int n_items;
    uint64_t max_item_bytes; /* each thread's staging buffer */
    int fd;
    uint64_t seed;
    atomic_int next_item;
    atomic_int failed;
    atomic_uint_fast64_t done_bytes;
    uint64_t total_bytes;
    atomic_int last_percent;
    int progress;
    float rope_base;         /* for rope_freqs.weight */
};

static void progress_draw(struct synth_job *job) {
    uint64_t done = atomic_load(&job->done_bytes);
    int pct = job->total_bytes ? (int)(100 * done / job->total_bytes) : 100;
    int last = atomic_load(&job->last_percent);
    if (pct <= last || !atomic_compare_exchange_strong(&job->last_percent, &last, pct)) return;
    char bar[41];
    int filled = pct * 40 / 100;
    for (int i = 0; i < 40; i++) bar[i] = i < filled ? '#' : ' ';
    bar[40] = 0;
    fprintf(stderr, "\rsynth [%s] %3d%%", bar, pct);
    if (pct == 100) fprintf(stderr, "\n");
    fflush(stderr);
}

/* Llama 3's rope factors for n pairs (llama.cpp's converter): wavelengths
 * under 8192 / 4 keep 1, over 8192 / 1 get the factor 32, and between them
 * a smooth blend; the original context 8192 of Llama 3.1 / 3.2. */
static void llama3_rope_freqs(float *out, int64_t n, float base) {
    const double factor = 32.0, low = 1.0, high = 4.0, old_ctx = 8192.0;
    for (int64_t i = 0; i < n; i++) {
        double freq = 1.0 / pow(base, (double)(2 * i) / (double)(2 * n));
        double wavelen = 2.0 * 3.141592653589793 / freq;
        if (wavelen < old_ctx / high) out[i] = 1.0f;
        else if (wavelen > old_ctx / low) out[i] = (float)factor;
        else {
            double smooth = (old_ctx / wavelen - low) / (high - low);
            out[i] = (float)(1.0 / ((1.0 - smooth) / factor + smooth));
        }
    }
}

static int fill_item(struct synth_job *job, const struct synth_item *it, uint8_t *buf, float *row) {
    const struct synth_tensor *t = &job->list->t[it->tensor];
    uint64_t row_bytes = t->n_bytes / (uint64_t)t->ne[1];
    uint64_t st = stream_seed(job->seed, (uint64_t)it->tensor, it->chunk);
    uint8_t *dst = buf;
    for (int64_t r = it->row_begin; r < it->row_end; r++, dst += row_bytes) {
        if (t->kind == SYNTH_ROPE_FREQS) {
            llama3_rope_freqs(row, t->ne[0], job->rope_base);
            memcpy(dst, row, row_bytes);
            continue;
        }
        if (t->kind != SYNTH_WEIGHT) { /* 1-D, F32: norms around 1, biases around 0 */
            fill_normal(&st, row, t->ne[0], t->kind == SYNTH_NORM ? 1.0f : 0.0f, SYNTH_STD);
            memcpy(dst, row, row_bytes);
            continue;
        }
        const struct synth_pool *p = &job->pools[t->type];
        int64_t n_units = t->ne[0] / p->unit_elems;
        for (int64_t u = 0; u < n_units; u++) {
            uint64_t pick = ((rb_synth_rng_next(&st) >> 32) * p->n_units) >> 32;
            memcpy(dst + (uint64_t)u * p->unit_bytes, p->data + pick * p->unit_bytes, p->unit_bytes);
        }
    }
    uint64_t n = (uint64_t)(it->row_end - it->row_begin) * row_bytes;
    uint64_t off = t->file_offset + (uint64_t)it->row_begin * row_bytes;
    for (uint64_t w = 0; w < n;) {
        ssize_t k = pwrite(job->fd, buf + w, (size_t)(n - w), (off_t)(off + w));
        if (k <= 0) return -1;
        w += (uint64_t)k;
    }
    atomic_fetch_add(&job->done_bytes, n);
    return 0;
}

static void *fill_worker(void *arg) {
    struct synth_job *job = arg;
    uint8_t *buf = malloc((size_t)job->max_item_bytes);
    float *row = NULL;
    int64_t max_row = 0;
    for (int i = 0; i < job->list->n; i++)
        if (job->list->t[i].ne[0] > max_row) max_row = job->list->t[i].ne[0];
    row = malloc((size_t)max_row * sizeof *row);
    if (!buf || !row) atomic_store(&job->failed, 1);
    while (!atomic_load(&job->failed)) {
        int i = atomic_fetch_add(&job->next_item, 1);
        if (i >= job->n_items) break;
        if (fill_item(job, &job->items[i], buf, row) != 0) atomic_store(&job->failed, 1);
        if (job->progress) progress_draw(job);
    }
    free(buf);
    free(row);
    return NULL;
}

/* Split every tensor into runs of whole rows of about SYNTH_CHUNK_BYTES. */
static struct synth_item *make_items(const struct synth_list *l, int *n_items) {
    int n = 0, cap = 1024;
    struct synth_item *items = malloc((size_t)cap * sizeof *items);
    for (int i = 0; items && i < l->n; i++) {
        const struct synth_tensor *t = &l->t[i];
        uint64_t row_bytes = t->n_bytes / (uint64_t)t->ne[1];
        int64_t rows_per = (int64_t)(SYNTH_CHUNK_BYTES / row_bytes);
        if (rows_per < 1) rows_per = 1;
        uint64_t chunk = 0;
        for (int64_t r = 0; r < t->ne[1]; r += rows_per, chunk++) {
            if (n == cap) {
                struct synth_item *more = realloc(items, (size_t)cap * 2 * sizeof *items);
                if (!more) { free(items); return NULL; }
                items = more;
                cap *= 2;
            }
            items[n++] = (struct synth_item){ i, r, r + rows_per < t->ne[1] ? r + rows_per : t->ne[1], chunk };
        }
    }
    *n_items = n;
    return items;
}

static int run_fill(struct synth_job *job, int n_threads, char *err) {
    pthread_t tid[SYNTH_MAX_THREADS];
    int n_started = 0;
    for (int t = 0; t < n_threads; t++) {
        if (pthread_create(&tid[t], NULL, fill_worker, job) != 0) break;
        n_started++;
    }
    if (n_started == 0) fill_worker(job); /* no threads to be had: do it here */
    for (int t = 0; t < n_started; t++) pthread_join(tid[t], NULL);
    if (atomic_load(&job->failed)) {
        set_err(err, "writing tensor data failed (disk full, or out of memory)");
        return -1;
    }
    return 0;
}

/* ---- metadata and the file ---- */

static int add_hparams(struct gguf_writer *w, const struct rb_synth_shape *s, const struct rb_synth_ftype *ft) {
    char key[96], name[96];
    const char *a = s->arch;
    int rc = 0;
    snprintf(name, sizeof name, "synthetic-%s-%s", s->name, ft->name);
    rc |= rb_gguf_writer_add_str(w, "general.architecture", a);
    rc |= rb_gguf_writer_add_str(w, "general.name", name);
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    rc |= rb_gguf_writer_add_u32(w, KEY("context_length"), (uint32_t)s->n_ctx);
    rc |= rb_gguf_writer_add_u32(w, KEY("embedding_length"), (uint32_t)s->n_embd);
    rc |= rb_gguf_writer_add_u32(w, KEY("block_count"), (uint32_t)s->n_layers);
    rc |= rb_gguf_writer_add_u32(w, KEY("feed_forward_length"), (uint32_t)s->n_ff);
    rc |= rb_gguf_writer_add_u32(w, KEY("attention.head_count"), (uint32_t)s->n_heads);
    rc |= rb_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), (uint32_t)s->n_heads_kv);
    if (!strcmp(a, "gpt2")) {
        rc |= rb_gguf_writer_add_f32(w, KEY("attention.layer_norm_epsilon"), 1e-5f);
    } else {
        rc |= rb_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), s->norm_eps > 0 ? s->norm_eps : 1e-5f);
        rc |= rb_gguf_writer_add_u32(w, KEY("rope.dimension_count"), (uint32_t)(s->n_embd / s->n_heads));
        rc |= rb_gguf_writer_add_f32(w, KEY("rope.freq_base"), s->rope_base > 0 ? s->rope_base : 10000.0f);
        rc |= rb_gguf_writer_add_u32(w, KEY("vocab_size"), (uint32_t)s->n_vocab);
        if (s->window > 0) rc |= rb_gguf_writer_add_u32(w, KEY("attention.sliding_window"), (uint32_t)s->window);
    }
#undef KEY
    rc |= rb_gguf_writer_add_u32(w, "general.quantization_version", 2);
    rc |= rb_gguf_writer_add_u32(w, "general.file_type", ft->file_type);
    return rc ? -1 : 0;
}

/* Header + metadata + zero tensors, written by the gguf writer to fd. */
static int write_skeleton(const struct rb_synth_opts *o, const struct synth_list *l, int fd, char *err) {
    struct gguf_writer *w = rb_gguf_writer_new();
    char vocab[512];
    const char *vocab_path = o->vocab_path ? o->vocab_path : rb_synth_default_vocab(o->shape, vocab, sizeof vocab);
    int rc = w ? 0 : -1;
    if (!w) set_err(err, "out of memory");
    if (rc == 0 && add_hparams(w, o->shape, o->ftype) != 0) {
        set_err(err, "cannot add metadata");
        rc = -1;
    }
    if (rc == 0) rc = rb_synth_copy_vocab(w, o->shape, vocab_path, err);
    for (int i = 0; rc == 0 && i < l->n; i++) {
        const struct synth_tensor *t = &l->t[i];
        if (rb_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL, t->n_bytes, 1) != 0) {
            set_err(err, "cannot add tensor %s", t->name);
            rc = -1;
        }
    }
    if (rc == 0) rc = rb_gguf_writer_write_fd(w, fd, err);
    rb_gguf_writer_free(w);
    return rc;
}

/* Where the writer put each tensor's data. */
static int read_offsets(struct synth_list *l, const char *path, char *err) {
    struct gguf_file f;
    char e[RB_ERR_MAX];
    if (rb_gguf_open(&f, path, e) != 0) {
        set_err(err, "reading back %s: %s", path, e);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < l->n; i++) {
        const struct gguf_tensor *t = rb_gguf_get_tensor(&f, l->t[i].name);
        if (!t || t->n_bytes != l->t[i].n_bytes) {
            set_err(err, "reading back %s: tensor %s missing or resized", path, l->t[i].name);
            rc = -1;
            break;
        }
        l->t[i].file_offset = f.data_offset + t->offset;
    }
    rb_gguf_close(&f);
    return rc;
}

int rb_synth_write(const struct rb_synth_opts *o, const char *out_path, char *err) {
    struct synth_list list = { 0 };
    struct synth_pool pools[RB_TYPE_COUNT];
    struct synth_item *items = NULL;
    struct rb_outfile out;
    char why[RB_ERR_MAX];
    int rc = -1, fd;
    memset(pools, 0, sizeof pools);
    if (!o->shape || !o->ftype) {
        set_err(err, "no shape or type given");
        return -1;
    }
    if (build_list(&list, o->shape, o->ftype, err) != 0) return -1;
    /* tensors are written in place (pwrite, from several threads): a file only */
    if (rb_outfile_open(&out, out_path, 1, why) != 0) {
        set_err(err, "%s: %s", out_path, why);
        free(list.t);
        return -1;
    }
    fd = out.fd;

    if (write_skeleton(o, &list, fd, err) != 0) goto done;
    if (read_offsets(&list, out.tmp_path, err) != 0) goto done;
    /* one pool per weight type in the mix, no bigger than its biggest tensor */
    for (int i = 0; i < list.n; i++) {
        const struct synth_tensor *t = &list.t[i];
        if (t->kind != SYNTH_WEIGHT || pools[t->type].data) continue;
        int64_t max_elems = 0;
        for (int j = 0; j < list.n; j++)
            if (list.t[j].type == t->type && list.t[j].ne[0] * list.t[j].ne[1] > max_elems)
                max_elems = list.t[j].ne[0] * list.t[j].ne[1];
        if (pool_init(&pools[t->type], t->type, o->pool_floats, max_elems, o->seed, err) != 0) goto done;
    }

    int n_items = 0;
    items = make_items(&list, &n_items);
    if (!items) {
        set_err(err, "out of memory");
        goto done;
    }
    struct synth_job job = { .list = &list, .pools = pools, .items = items, .n_items = n_items,
                             .fd = fd, .seed = o->seed, .progress = o->progress,
                             .rope_base = o->shape->rope_base > 0 ? o->shape->rope_base : 10000.0f };
    for (int i = 0; i < list.n; i++) job.total_bytes += list.t[i].n_bytes;
    for (int i = 0; i < n_items; i++) {
        const struct synth_tensor *t = &list.t[items[i].tensor];
        uint64_t bytes = (uint64_t)(items[i].row_end - items[i].row_begin) * (t->n_bytes / (uint64_t)t->ne[1]);
        if (bytes > job.max_item_bytes) job.max_item_bytes = bytes;
    }
    atomic_init(&job.next_item, 0);
    atomic_init(&job.failed, 0);
    atomic_init(&job.done_bytes, 0);
    atomic_init(&job.last_percent, -1);
    int n_threads = o->n_threads > 0 ? o->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > SYNTH_MAX_THREADS) n_threads = SYNTH_MAX_THREADS;
    if (run_fill(&job, n_threads, err) != 0) goto done;
    if (rb_outfile_commit(&out, why) != 0) {
        set_err(err, "%s: %s", out_path, why);
        goto done;
    }
    rc = 0;
done:
    rb_outfile_abort(&out); /* after a commit: nothing left to do */
    for (int t = 0; t < RB_TYPE_COUNT; t++) free(pools[t].data);
    free(items);
    free(list.t);
    return rc;
}
