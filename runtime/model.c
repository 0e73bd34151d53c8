/* model.c - load a GGUF model: map it, pick the architecture, read and
 * check hyperparameters, bind every tensor by name, type and shape, load
 * the tokenizer. Every failure is returned with a message, never asserted. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "tokenizer.h"
#include "../quant/quant.h"
#include "../simd/kernels.h"

/* The architectures rbee can run. A new one adds its rb_arch here. */
static const struct rb_arch *const archs[] = {
    &rb_arch_llama,
    &rb_arch_qwen2,
    &rb_arch_phi3,
    &rb_arch_gpt2,
};

/* ---- metadata helpers ---- */

int rb_hp_u32(const struct rbee_model *m, const char *suffix, int required, uint32_t dflt,
              int *out, char *err) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", m->arch->name, suffix);
    uint32_t v = dflt;
    if (rb_gguf_find_key(&m->file, key) >= 0) {
        if (rb_gguf_get_u32(&m->file, key, &v, err)) return -1;
    } else if (required) {
        snprintf(err, RB_ERR_MAX, "missing hyperparameter '%s'", key);
        return -1;
    }
    if (v > (uint32_t)INT32_MAX) {
        snprintf(err, RB_ERR_MAX, "hyperparameter '%s' = %u is too large", key, v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int rb_hp_f32(const struct rbee_model *m, const char *suffix, int required, float dflt,
              float *out, char *err) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", m->arch->name, suffix);
    float v = dflt;
    if (rb_gguf_find_key(&m->file, key) >= 0) {
        if (rb_gguf_get_f32(&m->file, key, &v, err)) return -1;
    } else if (required) {
        snprintf(err, RB_ERR_MAX, "missing hyperparameter '%s'", key);
        return -1;
    }
    if (!isfinite(v)) {
        snprintf(err, RB_ERR_MAX, "hyperparameter '%s' is not a finite number", key);
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- binding tensors ---- */

static void shape_str(char *buf, size_t cap, const struct gguf_tensor *t) {
    int n = snprintf(buf, cap, "[%lld", (long long)t->ne[0]);
    for (uint32_t d = 1; d < t->n_dims && n > 0 && (size_t)n < cap; d++)
        n += snprintf(buf + n, cap - (size_t)n, ", %lld", (long long)t->ne[d]);
    if (n > 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, "]");
}

static int check_type(const struct gguf_tensor *t, const char *name, int need_dot, char *err) {
    const struct rb_type_traits *tr = rb_traits(t->type);
    const struct rb_kernels *k = rb_kernels();
    int ok = tr && tr->to_float &&
             (!need_dot || (tr->can_compute && k->vec_dot[t->type] &&
                            (tr->vec_dot_type == RB_TYPE_F32 || k->quantize_act[tr->vec_dot_type])));
    if (!ok) {
        snprintf(err, RB_ERR_MAX, "tensor '%s' has type %s, which rbee cannot compute",
                 name, rb_type_name(t->type));
        return -1;
    }
    return 0;
}

/* Byte offsets of the F16 scales inside one block, per type (0-terminated
 * after the first entry; offset 0 is a real offset for the first). */
struct scale_at { uint32_t type; int n; size_t off[2]; };
static const struct scale_at scale_table[] = {
    { RB_TYPE_Q4_0, 1, { offsetof(block_q4_0, d) } },
    { RB_TYPE_Q4_1, 2, { offsetof(block_q4_1, d), offsetof(block_q4_1, m) } },
    { RB_TYPE_Q5_0, 1, { offsetof(block_q5_0, d) } },
    { RB_TYPE_Q5_1, 2, { offsetof(block_q5_1, d), offsetof(block_q5_1, m) } },
    { RB_TYPE_Q8_0, 1, { offsetof(block_q8_0, d) } },
    { RB_TYPE_Q2_K, 2, { offsetof(block_q2_K, d), offsetof(block_q2_K, dmin) } },
    { RB_TYPE_Q3_K, 1, { offsetof(block_q3_K, d) } },
    { RB_TYPE_Q4_K, 2, { offsetof(block_q4_K, d), offsetof(block_q4_K, dmin) } },
    { RB_TYPE_Q5_K, 2, { offsetof(block_q5_K, d), offsetof(block_q5_K, dmin) } },
    { RB_TYPE_Q6_K, 1, { offsetof(block_q6_K, d) } },
};

/* Refuse NaN/Inf block scales, as ggml's row validation does: one bad
 * scale turns a whole block, then every logit, into NaN. */
static int check_scales(const struct gguf_tensor *t, const char *name, char *err) {
    const struct rb_type_size *ts = rb_type_size(t->type);
    for (size_t i = 0; i < sizeof scale_table / sizeof scale_table[0]; i++) {
        if (scale_table[i].type != t->type) continue;
        uint64_t n_blocks = t->n_bytes / ts->type_size;
        const uint8_t *p = t->data;
        for (uint64_t b = 0; b < n_blocks; b++, p += ts->type_size)
            for (int k = 0; k < scale_table[i].n; k++) {
                uint16_t h;
                memcpy(&h, p + scale_table[i].off[k], 2);
                if ((h & 0x7c00) == 0x7c00) { /* exponent all ones: Inf or NaN */
                    snprintf(err, RB_ERR_MAX, "tensor '%s' block %llu has a NaN or infinite scale",
                             name, (unsigned long long)b);
                    return -1;
                }
            }
    }
    return 0;
}

/* The tensor, marked as read by a binding (load() refuses files with
 * tensors no binding read). */
static const struct gguf_tensor *find_tensor(const struct rbee_model *m, const char *name,
                                             int required, char *err) {
    int64_t i = rb_gguf_find_tensor(&m->file, name);
    if (i < 0) {
        if (required) snprintf(err, RB_ERR_MAX, "missing tensor '%s'", name);
        return NULL;
    }
    if (m->bound) m->bound[i] = 1;
    return &m->file.tensors[i];
}

/* Shared by weights (need_dot: multiplied by activations, so the type needs
 * kernels and rows must split into activation blocks) and tables (only
 * dequantized row by row). */
static int bind_rows(struct rbee_model *m, const char *name, int64_t n_in, int64_t n_out,
                     int required, int need_dot, struct rb_weight *w, char *err) {
    memset(w, 0, sizeof *w);
    const struct gguf_tensor *t = find_tensor(m, name, required, err);
    if (!t) return required ? -1 : 0;
    if (t->n_dims > 2 || t->ne[0] != n_in || t->ne[1] != n_out) {
        char got[96];
        shape_str(got, sizeof got, t);
        snprintf(err, RB_ERR_MAX, "tensor '%s' has shape %s, expected [%lld, %lld]",
                 name, got, (long long)n_in, (long long)n_out);
        return -1;
    }
    if (check_type(t, name, need_dot, err) || check_scales(t, name, err)) return -1;
    uint64_t row = rb_row_bytes(t->type, n_in);
    const struct rb_type_traits *act = rb_traits(rb_traits(t->type)->vec_dot_type);
    if (row == 0 || (need_dot && (!act || act->block_size == 0 || n_in % act->block_size))) {
        snprintf(err, RB_ERR_MAX, "tensor '%s': rows of %lld do not split into %s blocks",
                 name, (long long)n_in, rb_type_name(t->type));
        return -1;
    }
    w->data = t->data;
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = (size_t)row;
    return 0;
}

int rb_bind_weight(struct rbee_model *m, const char *name, int64_t n_in, int64_t n_out,
                   int required, struct rb_weight *w, char *err) {
    return bind_rows(m, name, n_in, n_out, required, 1, w, err);
}

int rb_bind_table(struct rbee_model *m, const char *name, int64_t n_in, int64_t n_out,
                  int required, struct rb_weight *w, char *err) {
    return bind_rows(m, name, n_in, n_out, required, 0, w, err);
}

int rb_bind_split(struct rbee_model *m, const char *name, int64_t n_in, int n_parts, const int64_t *rows,
                  struct rb_weight *const *parts, const char *bias_name, float **biases, char *err) {
    struct rb_weight whole;
    float *bias = NULL;
    int64_t n_out = 0;
    for (int i = 0; i < n_parts; i++) n_out += rows[i];
    if (rb_bind_weight(m, name, n_in, n_out, 1, &whole, err) ||
        (bias_name && rb_bind_vector(m, bias_name, n_out, 1, &bias, err)))
        return -1;
    int64_t row0 = 0;
    for (int i = 0; i < n_parts; row0 += rows[i], i++) {
        *parts[i] = whole;
        parts[i]->data = whole.data + (size_t)row0 * whole.row_bytes;
        parts[i]->n_out = rows[i];
        if (bias_name) biases[i] = bias + row0;
    }
    return 0;
}

static int own(struct rbee_model *m, float *v) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        float **p = realloc(m->owned, (size_t)cap * sizeof *p);
        if (!p) return -1;
        m->owned = p;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = v;
    return 0;
}

int rb_bind_vector(struct rbee_model *m, const char *name, int64_t n, int required,
                   float **v, char *err) {
    *v = NULL;
    const struct gguf_tensor *t = find_tensor(m, name, required, err);
    if (!t) return required ? -1 : 0;
    if (t->n_dims != 1 || t->ne[0] != n) {
        char got[96];
        shape_str(got, sizeof got, t);
        snprintf(err, RB_ERR_MAX, "tensor '%s' has shape %s, expected [%lld]", name, got, (long long)n);
        return -1;
    }
    if (check_type(t, name, 0, err)) return -1;
    if (rb_row_bytes(t->type, n) == 0) {
        snprintf(err, RB_ERR_MAX, "tensor '%s': %lld elements do not split into %s blocks",
                 name, (long long)n, rb_type_name(t->type));
        return -1;
    }
    float *f = malloc((size_t)n * sizeof *f);
    if (!f || own(m, f)) {
        free(f);
        snprintf(err, RB_ERR_MAX, "out of memory");
        return -1;
    }
    rb_traits(t->type)->to_float(t->data, f, n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(f[i])) {
            snprintf(err, RB_ERR_MAX, "tensor '%s' holds a NaN or infinity at %lld", name, (long long)i);
            return -1;
        }
    *v = f;
    return 0;
}

void rb_weight_row_f32(const struct rb_weight *w, int64_t row, float *out) {
    rb_traits(w->type)->to_float(w->data + (size_t)row * w->row_bytes, out, w->n_in);
}

const float *rb_rope_factors(const struct rbee_model *m, int n_ctx) {
    /* the reference pads its context to a multiple of 32 before comparing */
    int64_t padded = ((int64_t)n_ctx + 31) / 32 * 32;
    return m->rope_long && padded > m->hp.rope_n_ctx_orig ? m->rope_long : m->rope_freqs;
}

/* ---- checks common to every architecture ---- */

static int check_hparams(const struct rb_hparams *hp, int rotary, char *err) {
    const struct { const char *name; int v; int max; } pos[] = {
        { "n_vocab", hp->n_vocab, 1 << 24 }, { "context_length", hp->n_ctx_train, 1 << 24 },
        { "embedding_length", hp->n_embd, 1 << 20 }, { "block_count", hp->n_layers, 1 << 12 },
        { "head_count", hp->n_heads, 1 << 12 }, { "head_count_kv", hp->n_heads_kv, 1 << 12 },
        { "head_dim", hp->head_dim, 1 << 16 }, { "feed_forward_length", hp->n_ff, 1 << 22 },
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0 || pos[i].v > pos[i].max) {
            snprintf(err, RB_ERR_MAX, "hyperparameter %s = %d is out of range 1..%d",
                     pos[i].name, pos[i].v, pos[i].max);
            return -1;
        }
    if (hp->n_heads % hp->n_heads_kv) {
        snprintf(err, RB_ERR_MAX, "head_count_kv %d does not divide head_count %d", hp->n_heads_kv, hp->n_heads);
        return -1;
    }
    if (!(hp->norm_eps > 0.0f && hp->norm_eps < 1.0f)) {
        snprintf(err, RB_ERR_MAX, "norm epsilon %g is out of range (0, 1)", (double)hp->norm_eps);
        return -1;
    }
    if (!rotary) return 0;
    if (hp->rope_dim <= 0 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2) {
        snprintf(err, RB_ERR_MAX, "rope dimension_count %d must be even, from 2 to the head dim %d",
                 hp->rope_dim, hp->head_dim);
        return -1;
    }
    if (!(hp->rope_base > 0.0f) || !isfinite(hp->rope_base) || !(hp->rope_freq_scale > 0.0f) ||
        !isfinite(hp->rope_freq_scale) || !(hp->rope_attn_factor > 0.0f) || !isfinite(hp->rope_attn_factor)) {
        snprintf(err, RB_ERR_MAX, "rope freq_base %g / scaling %g / attn_factor %g must be positive",
                 (double)hp->rope_base, (double)hp->rope_freq_scale, (double)hp->rope_attn_factor);
        return -1;
    }
    return 0;
}

static void fill_info(struct rbee_model *m) {
    struct rbee_model_info *in = &m->info;
    const struct rb_hparams *hp = &m->hp;
    uint64_t by_type[RB_TYPE_COUNT] = { 0 };
    in->arch = m->arch->name;
    in->name = m->name;
    in->file_bytes = m->file.size;
    for (uint64_t i = 0; i < m->file.n_tensors; i++) {
        const struct gguf_tensor *t = &m->file.tensors[i];
        int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        in->n_params += n;
        in->weight_bytes += t->n_bytes;
        if (t->type < RB_TYPE_COUNT && t->n_dims >= 2) by_type[t->type] += t->n_bytes;
    }
    /* every tensor is read once per token, except the embedding table, of
     * which one row is read (unless it also serves as the output) */
    const struct gguf_tensor *te = rb_gguf_get_tensor(&m->file, "token_embd.weight");
    in->bytes_per_token = in->weight_bytes;
    if (te && m->output.data != m->tok_embd.data)
        in->bytes_per_token -= te->n_bytes - m->tok_embd.row_bytes;
    uint32_t best = RB_TYPE_F32;
    for (uint32_t t = 0; t < RB_TYPE_COUNT; t++) if (by_type[t] > by_type[best]) best = t;
    in->weight_type = rb_type_name(best);
    in->n_vocab = hp->n_vocab; in->n_ctx_train = hp->n_ctx_train; in->n_embd = hp->n_embd;
    in->n_layers = hp->n_layers; in->n_heads = hp->n_heads; in->n_heads_kv = hp->n_heads_kv;
    in->head_dim = hp->head_dim; in->n_ff = hp->n_ff;
}

/* ---- load ---- */

/* Copies of every string value, so rbee_model_meta_str can hand out C
 * strings without writing to a loaded (shared, read-only) model. */
static int copy_meta_strings(struct rbee_model *m, char *err) {
    const struct gguf_file *f = &m->file;
    m->meta_str = calloc(f->n_kv ? (size_t)f->n_kv : 1, sizeof *m->meta_str);
    if (!m->meta_str) { snprintf(err, RB_ERR_MAX, "out of memory"); return -1; }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const struct gguf_kv *kv = &f->kv[i];
        if (kv->type != GGUF_TYPE_STRING) continue;
        uint64_t len;
        memcpy(&len, kv->value, 8);
        m->meta_str[i] = malloc((size_t)len + 1); /* len lies inside the mapping: checked at open */
        if (!m->meta_str[i]) { snprintf(err, RB_ERR_MAX, "out of memory"); return -1; }
        memcpy(m->meta_str[i], kv->value + 8, (size_t)len);
        m->meta_str[i][len] = '\0';
    }
    return 0;
}

/* What model and vocabulary loads share once the file is open: its
 * strings copied, general.name. */
static int read_strings(struct rbee_model *m, char *err) {
    if (copy_meta_strings(m, err)) return -1;
    if (rb_gguf_find_key(&m->file, "general.name") >= 0 &&
        rb_gguf_get_str(&m->file, "general.name", m->name, sizeof m->name, err)) return -1;
    return 0;
}

static int load_tokenizer(struct rbee_model *m, char *err) {
    char terr[RB_ERR_MAX];
    if (rb_tokenizer_load(&m->tok, &m->file, terr)) {
        snprintf(err, RB_ERR_MAX, "tokenizer: %.200s", terr);
        return -1;
    }
    return 0;
}

/* Everything after the file is open: architecture, hyperparameters,
 * tensors, tokenizer. */
static int bind_model(struct rbee_model *m, char *err) {
    if (rb_kernels_select_env(err)) return -1;
    if (m->file.n_tensors == 0 && rb_gguf_find_key(&m->file, "tokenizer.ggml.model") >= 0) {
        snprintf(err, RB_ERR_MAX, "the file holds a vocabulary only (no tensors): it can be tokenized with, not run");
        return -1;
    }
    char arch[64];
    if (rb_gguf_get_str(&m->file, "general.architecture", arch, sizeof arch, err)) return -1;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i]->name, arch)) m->arch = archs[i];
    if (!m->arch) {
        char shown[64];
        struct gguf_str a = { strlen(arch), arch };
        snprintf(err, RB_ERR_MAX, "architecture '%s' is not supported", rb_gguf_show(&a, shown, sizeof shown));
        return -1;
    }

    const struct gguf_tensor *te = find_tensor(m, "token_embd.weight", 1, err);
    if (!te) return -1;
    if (te->n_dims != 2 || te->ne[1] > INT32_MAX) {
        char got[96];
        shape_str(got, sizeof got, te);
        snprintf(err, RB_ERR_MAX, "tensor 'token_embd.weight' has shape %s, expected [n_embd, n_vocab]", got);
        return -1;
    }
    m->hp.n_vocab = (int)te->ne[1];
    if (m->arch->read_hparams(m, err) || check_hparams(&m->hp, m->arch->rope != RB_ROPE_NONE, err)) return -1;

    /* token_embd is only dequantized row by row, unless it is the output too */
    const struct rb_hparams *hp = &m->hp;
    if (te->ne[0] != hp->n_embd) {
        snprintf(err, RB_ERR_MAX, "tensor 'token_embd.weight' has shape [%lld, %lld], expected [%d, %d]",
                 (long long)te->ne[0], (long long)te->ne[1], hp->n_embd, hp->n_vocab);
        return -1;
    }
    if (check_type(te, "token_embd.weight", 0, err) || check_scales(te, "token_embd.weight", err)) return -1;
    m->tok_embd = (struct rb_weight){ .data = te->data, .type = te->type, .n_in = hp->n_embd,
                                      .n_out = hp->n_vocab,
                                      .row_bytes = (size_t)rb_row_bytes(te->type, hp->n_embd) };
    if (m->tok_embd.row_bytes == 0) {
        snprintf(err, RB_ERR_MAX, "tensor 'token_embd.weight': rows of %d do not split into %s blocks",
                 hp->n_embd, rb_type_name(te->type));
        return -1;
    }
    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    m->bound = calloc(m->file.n_tensors ? m->file.n_tensors : 1, 1);
    if (!m->layers || !m->bound) { snprintf(err, RB_ERR_MAX, "out of memory"); return -1; }
    m->bound[rb_gguf_find_tensor(&m->file, "token_embd.weight")] = 1;
    if (m->arch->bind_tensors(m, err)) return -1;
    if (!m->output.data) { /* tied: the embedding is the output projection */
        if (rb_bind_weight(m, "token_embd.weight", hp->n_embd, hp->n_vocab, 1, &m->output, err)) return -1;
    }
    /* every tensor must have been read: one the layout does not know means
     * the file computes something rbee would silently leave out */
    for (uint64_t i = 0; i < m->file.n_tensors; i++)
        if (!m->bound[i]) {
            char name[96];
            snprintf(err, RB_ERR_MAX, "tensor '%s' is not used by rbee's '%s' architecture",
                     rb_gguf_show(&m->file.tensors[i].name, name, sizeof name), m->arch->name);
            return -1;
        }

    if (load_tokenizer(m, err)) return -1;
    int32_t n_tok_vocab = rb_tokenizer_n_vocab(m->tok);
    if (n_tok_vocab != hp->n_vocab) {
        snprintf(err, RB_ERR_MAX, "vocabulary has %d tokens but token_embd.weight has %d rows",
                 n_tok_vocab, hp->n_vocab);
        return -1;
    }
    fill_info(m);
    return 0;
}

/* A vocabulary alone: tokenize and detokenize, nothing to run. */
static int bind_vocab(struct rbee_model *m, char *err) {
    char aerr[RB_ERR_MAX];
    if (rb_gguf_find_key(&m->file, "general.architecture") >= 0 &&
        rb_gguf_get_str(&m->file, "general.architecture", m->arch_name, sizeof m->arch_name, aerr))
        m->arch_name[0] = '\0'; /* only shown in the info: not a reason to refuse the vocabulary */
    if (load_tokenizer(m, err)) return -1;
    m->info = (struct rbee_model_info){ .arch = m->arch_name, .name = m->name, .weight_type = "",
                                        .file_bytes = m->file.size, .n_vocab = rb_tokenizer_n_vocab(m->tok) };
    return 0;
}

static int open_path(struct rbee_model *m, const char *path, char *err) {
    struct stat st;
    if (stat(path, &st) != 0) { snprintf(err, RB_ERR_MAX, "no such file"); return -1; }
    if (S_ISDIR(st.st_mode)) { snprintf(err, RB_ERR_MAX, "is a directory"); return -1; }
    m->path = strdup(path);
    if (!m->path) { snprintf(err, RB_ERR_MAX, "out of memory"); return -1; }
    return rb_gguf_open(&m->file, m->path, err);
}

/* A model (or a vocabulary alone) from a path, or (path NULL) from size
 * bytes at buf. */
static int load(rbee_model **out, const char *path, const void *buf, size_t size, int vocab_only, char *err) {
    *out = NULL;
    struct rbee_model *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, RB_ERR_MAX, "out of memory"); return -1; }
    if ((path ? open_path(m, path, err) : rb_gguf_open_memory(&m->file, buf, size, err)) || read_strings(m, err) ||
        (vocab_only ? bind_vocab(m, err) : bind_model(m, err))) {
        rbee_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int rbee_model_load(rbee_model **out, const char *path, char *err) { return load(out, path, NULL, 0, 0, err); }
int rbee_vocab_load(rbee_model **out, const char *path, char *err) { return load(out, path, NULL, 0, 1, err); }

int rb_model_load_memory(rbee_model **out, const void *buf, size_t size, char *err) {
    return load(out, NULL, buf, size, 0, err);
}

int rbee_model_vocab_only(const rbee_model *m) { return m->arch == NULL; }

const char *rbee_model_meta_str(const rbee_model *m, const char *key) {
    int64_t i = rb_gguf_find_key(&m->file, key);
    return i >= 0 ? m->meta_str[i] : NULL;
}

void rbee_model_free(rbee_model *m) {
    if (!m) return;
    if (m->tok) rb_tokenizer_free(m->tok);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->layers);
    free(m->bound);
    for (uint64_t i = 0; m->meta_str && i < m->file.n_kv; i++) free(m->meta_str[i]);
    free(m->meta_str);
    if (m->file.map) rb_gguf_close(&m->file);
    free(m->path);
    free(m);
}


void rbee_model_get_info(const rbee_model *m, struct rbee_model_info *info) { *info = m->info; }
