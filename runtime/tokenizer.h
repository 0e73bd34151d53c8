/* tokenizer.h - text <-> token ids from a GGUF vocabulary:
 * SentencePiece (tokenizer.ggml.model = "llama") and byte-level BPE ("gpt2",
 * with the pre-tokenizer tokenizer.ggml.pre names), as llama.cpp b4748. */
#ifndef RB_TOKENIZER_H
#define RB_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "../gguf/gguf.h"

enum rb_tok_kind { RB_TOK_SPM = 1, RB_TOK_BPE = 2 };

struct rb_tokenizer; /* opaque; pieces point into the mapping or own copies */

/* Load from the file's tokenizer.ggml.* metadata; validates every array
 * (types, lengths agreeing, special ids in range; -1 as u32 means "none")
 * and refuses an unknown tokenizer.ggml.pre by name. */
int rb_tokenizer_load(struct rb_tokenizer **out, const struct gguf_file *f, char *err);
void rb_tokenizer_free(struct rb_tokenizer *t);

enum rb_tok_kind rb_tokenizer_kind(const struct rb_tokenizer *t);
int32_t rb_tokenizer_n_vocab(const struct rb_tokenizer *t);
int32_t rb_tokenizer_bos(const struct rb_tokenizer *t); /* -1 if none */
int32_t rb_tokenizer_eos(const struct rb_tokenizer *t); /* -1 if none */
int rb_tokenizer_add_bos(const struct rb_tokenizer *t); /* tokenizer.ggml.add_bos_token, or the model kind's default */
int rb_tokenizer_add_eos(const struct rb_tokenizer *t); /* tokenizer.ggml.add_eos_token, default 0 */
/* Tokens that end a turn (eos, eot, eom, and llama.cpp's by-text ones such
 * as <|eot_id|> <|im_end|> <|end|>): ascending ids, count in *n. */
const int32_t *rb_tokenizer_eog(const struct rb_tokenizer *t, int32_t *n);
int rb_tokenizer_is_eog(const struct rb_tokenizer *t, int32_t id);
/* The BPE pre-tokenizer family ("gpt-2", "llama3", "qwen2", ...), NULL for SPM. */
const char *rb_tokenizer_pre(const struct rb_tokenizer *t);
/* The raw text of token id as the vocabulary stores it (not NUL-terminated;
 * SPM spaces as U+2581, BPE bytes as GPT-2's mapped characters); NULL if out of range. */
const char *rb_tokenizer_piece(const struct rb_tokenizer *t, int32_t id, size_t *len);

/* Encode len bytes of UTF-8 text. add_bos: 0 = no BOS/EOS; > 0 = BOS, and
 * EOS when the vocabulary adds one; < 0 = BOS and EOS as the vocabulary
 * adds them (llama.cpp's add_special). parse_special: the text of control
 * and unknown tokens becomes those tokens (user-defined ones always do).
 * Writes at most cap ids and returns the total count needed (call again
 * with a bigger buffer if > cap); -1 with err on failure. */
int64_t rb_tokenize(const struct rb_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
                    int32_t *ids, int64_t cap, char *err);

/* Streaming decode: feed ids one at a time; complete UTF-8 characters come out,
 * partial byte sequences wait in the state. Returns bytes written to out (cap >= 64). */
struct rb_detok { uint8_t pending[8]; int n_pending; int at_start; };
void rb_detok_init(struct rb_detok *d);
size_t rb_detok_push(const struct rb_tokenizer *t, struct rb_detok *d, int32_t id, char *out, size_t cap);
/* An upper bound on the bytes one rb_detok_push writes for this vocabulary
 * (>= 64; 771 for GPT-2, whose longest piece decodes to 128 bytes); a
 * smaller cap truncates a piece that does not fit. */
size_t rb_tokenizer_max_piece(const struct rb_tokenizer *t);
size_t rb_detok_flush(struct rb_detok *d, char *out, size_t cap); /* whatever is left, invalid bytes as U+FFFD */

#endif
