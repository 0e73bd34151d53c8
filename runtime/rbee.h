/* rbee.h - public C API of rbee, a CPU inference runtime for GGUF models.
 *
 * Self-contained: includes only the C standard library, so it can be
 * installed alone next to librbee.a (link with -lrbee -lm -lpthread).
 *
 *   char err[RBEE_ERR_MAX];
 *   rbee_model *m;   rbee_model_load(&m, "model.gguf", err);
 *   struct rbee_context_params cp = rbee_context_default_params();
 *   rbee_context *c; rbee_context_new(&c, m, &cp, err);
 *   int32_t ids[512]; int64_t n = rbee_tokenize(m, text, strlen(text), -1, 1, ids, 512, err);
 *   rbee_eval(c, ids, (int)n, 0, err);           // prompt as one batch
 *   const float *logits = rbee_get_logits(c, -1); // after the last token
 *   ... id = rbee_sample(s, logits); if (rbee_token_is_eog(m, id)) break;
 *       rbee_eval(c, &id, 1, 0, err); ...
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
/* Load only the vocabulary (tokenizer.ggml.*) of a GGUF file: a vocab-only
 * file such as llama.cpp's ggml-vocab-*.gguf, or any model file, whose
 * tensors are then not looked at. The handle tokenizes, detokenizes and
 * answers the token and metadata queries below; rbee_context_new and
 * rbee_context_memory refuse it. rbee_model_get_info gives its name, arch
 * (general.architecture or ""), n_vocab and file_bytes, other fields 0.
 * Free it with rbee_model_free. */
int rbee_vocab_load(rbee_model **out, const char *path, char *err);
int rbee_model_vocab_only(const rbee_model *m); /* 1 for a handle from rbee_vocab_load */
void rbee_model_free(rbee_model *m);

/* A string metadata value ("tokenizer.chat_template", "general.name", ...),
 * NUL-terminated and living as long as the model; NULL when the key is
 * absent or not a string. A value holding a NUL byte ends there. */
const char *rbee_model_meta_str(const rbee_model *m, const char *key);

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
/* 1 if id ends a turn: EOS, tokenizer.ggml.eot_token_id / eom_token_id,
 * and the tokens llama.cpp b4748 takes as such by their text (<|eot_id|>,
 * <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|>, ...).
 * Generation stops at any of them. */
int rbee_token_is_eog(const rbee_model *m, int32_t id);
/* The text of token id as the vocabulary stores it (not NUL-terminated;
 * SPM spaces as U+2581, BPE bytes as GPT-2's mapped characters), length
 * in *len; NULL when id is out of range. */
const char *rbee_token_text(const rbee_model *m, int32_t id, size_t *len);

/* Encode UTF-8 text; writes at most cap ids, returns the count needed
 * (call again with a larger buffer when > cap), -1 on error.
 * add_bos: -1 = BOS/EOS as the vocabulary adds them (what a prompt gets;
 * llama.cpp's add_special), 0 = none, 1 = BOS (and EOS if the vocabulary
 * adds one) whatever the vocabulary says.
 * parse_special: 1 = the text of a control token (<|im_start|>, <s>, ...)
 * becomes that token, as llama.cpp tokenizes prompts; 0 = such text is
 * plain text. User-defined tokens (<think>, ...) are matched either way. */
int64_t rbee_tokenize(const rbee_model *m, const char *text, size_t len, int add_bos, int parse_special,
                      int32_t *ids, int64_t cap, char *err);

/* Streaming detokenizer: feed ids, get complete UTF-8 characters, always
 * well-formed (byte tokens that spell anything else come out as U+FFFD).
 * Control and unknown tokens print nothing, as llama.cpp streams them.
 * push/flush return the bytes written to out (cap >= 64). */
rbee_detok *rbee_detok_new(const rbee_model *m); /* NULL on out of memory */
size_t rbee_detok_push(rbee_detok *d, int32_t id, char *out, size_t cap);
size_t rbee_detok_flush(rbee_detok *d, char *out, size_t cap);
void rbee_detok_free(rbee_detok *d);
size_t rbee_detok_max_piece(const rbee_model *m); /* a cap that no push exceeds (>= 64) */

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

/* ---- session: a context, the tokens its cache holds, one generation loop ---- */

typedef struct rbee_session rbee_session;

int rbee_session_new(rbee_session **out, const rbee_model *m, const struct rbee_context_params *p, char *err);
void rbee_session_free(rbee_session *s);
rbee_context *rbee_session_context(rbee_session *s);
int rbee_session_n_cached(const rbee_session *s);          /* tokens in the cache */
const int32_t *rbee_session_tokens(const rbee_session *s); /* those tokens, in order */
void rbee_session_reset(rbee_session *s);                  /* empty the cache */

struct rbee_gen_params {
    int n_predict;                        /* most tokens to generate; < 0: until the end of
                                             the turn or a full context */
    struct rbee_sampler_params sampling;
    const char *const *stop;              /* stop strings (OpenAI "stop"): text that could begin
                                             one is held back; the stop string is not passed on */
    int n_stop;
    const volatile int *cancel;           /* polled between tokens and prompt chunks; non-zero
                                             stops (a volatile sig_atomic_t set by a handler) */
    /* each piece of complete UTF-8 text once final; non-zero return cancels */
    int (*on_text)(void *user, const char *text, size_t len);
    void *user;
};

enum rbee_finish {
    RBEE_FINISH_STOP,      /* an end-of-generation token or a stop string */
    RBEE_FINISH_LENGTH,    /* n_predict tokens */
    RBEE_FINISH_CANCELLED, /* *cancel or on_text */
    RBEE_FINISH_CONTEXT,   /* the context is full */
};

struct rbee_gen_result {
    enum rbee_finish finish;
    int n_prompt;       /* tokens in the prompt */
    int n_prompt_eval;  /* of those, evaluated by this call (the rest were in the cache) */
    int n_generated;    /* tokens generated */
    int n_cached;       /* tokens in the cache afterwards */
    double prompt_ms, gen_ms;
};

/* Make the cache hold prompt (keeping the longest common prefix it already
 * holds, evaluating the rest, at least the last token), then sample up to
 * n_predict tokens. Every generated token passed on is evaluated into the
 * cache (a stopping end-of-generation token is not, nor the last token of
 * a reply that filled the context: RBEE_FINISH_CONTEXT), so a next call whose
 * prompt is this prompt + the reply's tokens + a new turn evaluates only the
 * new turn. Re-tokenizing the reply's text may give other tokens than were
 * generated; reuse then stops where they part. Fails (-1, err) when the
 * prompt is empty or longer than the context; a cancel is not a failure. */
int rbee_session_generate(rbee_session *s, const int32_t *prompt, int n_prompt,
                          const struct rbee_gen_params *gp, struct rbee_gen_result *res, char *err);

/* ---- chat templates ---- */

/* One message of a conversation: NUL-terminated UTF-8 (a NUL inside ends
 * the text, as in the reference runtime's C API). Roles are usually
 * "system", "user", "assistant"; formatters pass other roles through or
 * skip them as llama.cpp b4748 does. */
struct rbee_chat_message { const char *role, *content; };

/* Format a conversation as llama.cpp b4748's llama_chat_apply_template
 * does (no Jinja engine). tmpl: a built-in name ("chatml", "llama3", ...)
 * or a template text as stored in a GGUF's tokenizer.chat_template (see
 * rbee_model_meta_str), recognized by marker substrings. add_assistant:
 * append the opening of the assistant's turn (where the format has one).
 * The text never holds BOS: that comes from tokenizing with the vocab's
 * add-BOS setting and parse_special on.
 * Writes at most cap bytes to out (NUL-terminated when the result < cap)
 * and returns the length of the whole text (call again with a larger
 * buffer when >= cap); -1 with err when tmpl is NULL or unrecognized (list
 * the names with rbee_chat_template_builtin for the user). */
int64_t rbee_chat_apply_template(const char *tmpl, const struct rbee_chat_message *msgs, size_t n_msgs,
                                 int add_assistant, char *out, size_t cap, char *err);
/* The built-in name the text selects ("chatml", ...), or NULL if none. */
const char *rbee_chat_template_detect(const char *tmpl);
/* The i-th built-in template name in byte order, NULL past the last. */
const char *rbee_chat_template_builtin(size_t i);

/* ---- misc ---- */
const char *rbee_isa(void); /* kernel path in use: "scalar", "avx2", "avxvnni", "avx512", "neon", ... */

#ifdef __cplusplus
}
#endif
#endif
