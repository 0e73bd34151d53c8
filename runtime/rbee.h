/* rbee.h - public C API of rbee, a CPU inference runtime for GGUF models.
 *
 * Self-contained: includes only the C standard library, so it can be
 * installed alone next to librbee.a (link with -lrbee -lm -lpthread).
 *
 *   char err[RBEE_ERR_MAX];
 *   rbee_model *m;   rbee_model_load(&m, "model.gguf", err);
 *   struct rbee_context_params cp = rbee_context_default_params();
 *   rbee_context *c; rbee_context_new(&c, m, &cp, err);
 *   int32_t ids[512]; int64_t n = rbee_tokenize(m, text, strlen(text), 1, ids, 512, err);
 *   rbee_eval(c, ids, (int)n, 0, err);           // prompt as one batch
 *   const float *logits = rbee_get_logits(c, -1); // after the last token
 *   ... id = rbee_sample(s, logits); rbee_eval(c, &id, 1, 0, err); ...
 *
 * Errors: functions returning int give 0 on success and -1 on failure with
 * one line (no newline) in a caller-owned buffer of RBEE_ERR_MAX bytes.
 * Nothing in the library prints or exits.
 * Threads: a context owns its thread pool; one context must not be used from
 * two threads at once. A model is read-only after load and may be shared.
 */
#ifndef RBEE_H
#define RBEE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RBEE_ERR_MAX 256

typedef struct rbee_model rbee_model;
typedef struct rbee_context rbee_context;
typedef struct rbee_sampler rbee_sampler;
typedef struct rbee_detok rbee_detok;

/* ---- model ---- */

/* Map, validate and bind a GGUF model (weights stay in the mapping). */
int rbee_model_load(rbee_model **out, const char *path, char *err);
void rbee_model_free(rbee_model *m);

/* Facts about a loaded model (strings live as long as the model). */
struct rbee_model_info {
    const char *arch;        /* general.architecture: "llama", "gpt2" */
    const char *name;        /* general.name, or "" */
    const char *weight_type; /* type name of most weight bytes, e.g. "q4_0", "q4_K", "f16" */
    int64_t n_params;        /* elements of all weight tensors */
    uint64_t file_bytes;     /* size of the GGUF file */
    uint64_t weight_bytes;   /* bytes of all tensors */
    uint64_t bytes_per_token;/* weight bytes read to generate one token: every
                                tensor except token_embd (only one row of it is
                                read), plus token_embd when it is also the output */
    int n_vocab, n_ctx_train, n_embd, n_layers, n_heads, n_heads_kv, head_dim, n_ff;
};
void rbee_model_get_info(const rbee_model *m, struct rbee_model_info *info);

int32_t rbee_token_bos(const rbee_model *m); /* -1 if none */
int32_t rbee_token_eos(const rbee_model *m); /* -1 if none */
int rbee_add_bos(const rbee_model *m);       /* 1 if prompts start with BOS */

/* Encode UTF-8 text; writes at most cap ids, returns the count needed
 * (call again with a larger buffer when > cap), -1 on error. */
int64_t rbee_tokenize(const rbee_model *m, const char *text, size_t len, int add_bos,
                      int32_t *ids, int64_t cap, char *err);

/* Streaming detokenizer: feed ids, get complete UTF-8 characters.
 * push/flush return the bytes written to out (cap >= 64). */
rbee_detok *rbee_detok_new(const rbee_model *m); /* NULL on out of memory */
size_t rbee_detok_push(rbee_detok *d, int32_t id, char *out, size_t cap);
size_t rbee_detok_flush(rbee_detok *d, char *out, size_t cap);
void rbee_detok_free(rbee_detok *d);

/* ---- context: KV cache, scratch buffers, thread pool ---- */

struct rbee_context_params {
    int n_ctx;          /* tokens of context; 0 = min(training context, 4096) */
    int n_threads;      /* >= 1; 0 = 1 */
    const char *type_k; /* KV cache types: "f32", "f16", "q8_0", "q4_0"; NULL = "f16" */
    const char *type_v;
};
struct rbee_context_params rbee_context_default_params(void);

int rbee_context_new(rbee_context **out, const rbee_model *m,
                     const struct rbee_context_params *p, char *err);
void rbee_context_free(rbee_context *c);

/* What rbee_context_new(m, p) would allocate, without allocating it, so a
 * caller can tell before a run whether it fits: the context size and thread
 * count it would use, the KV cache bytes and the other buffers' bytes (the
 * logits of one token; rbee_eval with all_logits grows them). Fails as
 * rbee_context_new would on bad parameters. */
struct rbee_context_memory {
    int n_ctx, n_threads;
    size_t kv_bytes;      /* = rbee_kv_bytes of that context */
    size_t scratch_bytes; /* = rbee_scratch_bytes of that context, before any eval */
};
int rbee_context_memory(const rbee_model *m, const struct rbee_context_params *p,
                        struct rbee_context_memory *out, char *err);

int rbee_n_ctx(const rbee_context *c);
int rbee_n_vocab(const rbee_context *c);
int rbee_n_threads(const rbee_context *c);
size_t rbee_kv_bytes(const rbee_context *c);      /* bytes of the KV cache */
size_t rbee_scratch_bytes(const rbee_context *c); /* bytes of the other buffers */

/* Evaluate n_tokens tokens at the current position (one batch), then advance
 * the position by n_tokens. all_logits: keep logits for every token of the
 * batch (else only for the last). Fails, changing nothing, if the batch would
 * pass n_ctx or holds an id outside the vocabulary. */
int rbee_eval(rbee_context *c, const int32_t *tokens, int n_tokens, int all_logits, char *err);

/* Logits [n_vocab] after batch token i of the last eval (i = -1: the last
 * token). NULL if i was not kept or nothing was evaluated. */
const float *rbee_get_logits(const rbee_context *c, int i);

int rbee_pos(const rbee_context *c);            /* tokens in the cache */
int rbee_set_pos(rbee_context *c, int pos);     /* rewind to pos <= current; -1 otherwise */
void rbee_reset(rbee_context *c);               /* same as rbee_set_pos(c, 0) */

/* ---- sampler ---- */

struct rbee_sampler_params {
    float temp;           /* <= 0: greedy (argmax) */
    int top_k;            /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off; divides positive logits, multiplies negative ones */
    int repeat_last_n;    /* tokens the penalty looks back over */
    uint64_t seed;        /* same seed, same logits: same tokens */
};
/* temp 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1.0, last_n 64, seed 42 */
struct rbee_sampler_params rbee_sampler_default_params(void);

rbee_sampler *rbee_sampler_new(const struct rbee_sampler_params *p, int n_vocab); /* NULL on OOM */
void rbee_sampler_free(rbee_sampler *s);
/* Pick a token from logits [n_vocab] (logits are not modified). */
int32_t rbee_sample(rbee_sampler *s, const float *logits);
/* Record a token (prompt or generated) for the repetition penalty. */
void rbee_sampler_accept(rbee_sampler *s, int32_t id);

/* ---- misc ---- */
const char *rbee_isa(void); /* kernel path in use: "scalar", "avx2", "avxvnni", "avx512", "neon", ... */

#ifdef __cplusplus
}
#endif
#endif
