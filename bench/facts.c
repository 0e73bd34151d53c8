/* facts.c - model facts for the bench (see facts.h). */
#include "facts.h"

#include <stdio.h>
#include <string.h>

#include "../attention/attention.h"
#include "synth.h"

static int name_is(const struct gguf_str *s, const char *name) {
    size_t n = strlen(name);
    return s->len == n && !memcmp(s->data, name, n);
}

/* "<arch>.<suffix>" as u32, or fallback when missing. */
static uint32_t arch_u32(const struct gguf_file *f, const char *arch, const char *suffix, uint32_t fallback) {
    char key[128], e[RB_ERR_MAX];
    uint32_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return rb_gguf_get_u32(f, key, &v, e) == 0 ? v : fallback;
}

static void type_label(const struct gguf_file *f, char *out, size_t cap) {
    char e[RB_ERR_MAX];
    uint32_t ft;
    const struct rb_synth_ftype *known;
    if (rb_gguf_get_u32(f, "general.file_type", &ft, e) == 0 && (known = rb_synth_ftype_by_id(ft))) {
        snprintf(out, cap, "%s", known->label);
        return;
    }
    /* no (known) file type: name the type holding the most weight bytes */
    uint64_t bytes[RB_TYPE_COUNT] = { 0 };
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].type < RB_TYPE_COUNT && f->tensors[i].n_dims >= 2)
            bytes[f->tensors[i].type] += f->tensors[i].n_bytes;
    uint32_t best = 0;
    for (uint32_t t = 1; t < RB_TYPE_COUNT; t++)
        if (bytes[t] > bytes[best]) best = t;
    snprintf(out, cap, "%s", rb_type_name(best));
    for (char *p = out; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
}

int rb_model_facts(const struct gguf_file *f, struct rb_model_facts *m, char *err) {
    char e[RB_ERR_MAX];
    memset(m, 0, sizeof *m);
    if (rb_gguf_get_str(f, "general.architecture", m->arch, sizeof m->arch, e) != 0) {
        snprintf(err, RB_ERR_MAX, "%s", e);
        return -1;
    }
    m->n_layers = (int)arch_u32(f, m->arch, "block_count", 0);
    m->n_heads = (int)arch_u32(f, m->arch, "attention.head_count", 0);
    m->n_heads_kv = (int)arch_u32(f, m->arch, "attention.head_count_kv", (uint32_t)m->n_heads);
    m->n_ctx_train = (int)arch_u32(f, m->arch, "context_length", 0);
    uint32_t n_embd = arch_u32(f, m->arch, "embedding_length", 0);
    uint32_t key_len = arch_u32(f, m->arch, "attention.key_length", 0); /* head size when given */
    if (m->n_layers <= 0 || m->n_heads <= 0 || m->n_heads_kv <= 0 || n_embd == 0 ||
        (!key_len && n_embd % (uint32_t)m->n_heads) || key_len > 65536) {
        snprintf(err, RB_ERR_MAX, "%s: missing or inconsistent block_count/head_count/embedding_length", m->arch);
        return -1;
    }
    m->head_dim = key_len ? (int)key_len : (int)(n_embd / (uint32_t)m->n_heads);
    type_label(f, m->type_label, sizeof m->type_label);

    int has_output = rb_gguf_find_tensor(f, "output.weight") >= 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const struct gguf_tensor *t = &f->tensors[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
        m->n_params += n;
        m->weight_bytes += t->n_bytes;
        int is_tok = name_is(&t->name, "token_embd.weight");
        int is_pos = name_is(&t->name, "position_embd.weight");
        uint64_t rows = t->n_dims >= 2 ? n / (uint64_t)t->ne[0] : 1;
        if ((is_tok && has_output) || is_pos) m->weight_bytes_per_token += t->n_bytes / (rows ? rows : 1);
        else m->weight_bytes_per_token += t->n_bytes;
    }
    return 0;
}

double rb_bytes_per_token(const struct rb_model_facts *m, int n_ctx, uint32_t type_k, uint32_t type_v) {
    double kv = n_ctx > 0 ? (double)rb_kv_bytes(m->n_layers, n_ctx, m->n_heads_kv, m->head_dim, type_k, type_v) : 0.0;
    return (double)m->weight_bytes_per_token + kv;
}
