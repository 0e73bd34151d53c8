/* fuzz_tokenizer.c - libFuzzer entry for the tokenizers (`make fuzz`).
 *
 * Every vocabulary of ../shared ($SHARED), loaded once: the four of
 * reference/tokenizer (Llama 2 SPM, GPT-2, Llama 3, Qwen2) and the two only
 * models have (Phi-3, with its strip rules; stories260K's small SPM); the
 * other models hold exactly the reference four (same tokens, types, merges,
 * pre-tokenizer and special ids). Each input is encoded by each of them as
 * a prompt (BOS, special tokens parsed) and as plain text, then decoded
 * again through the streaming detokenizer, so
 * a wrong bound in the pre-tokenizers, the special-token partition, either
 * encoder or the decoder shows up as an ASan/UBSan report. Ids out of range
 * and a count that changes between the counting and the writing call abort.
 * The input is also read as token ids (two bytes each, any id), and what the
 * detokenizer makes of them must be well-formed UTF-8, or the run aborts.
 *
 * fuzz-seeds: $SHARED/reference/tokenizer/ggml-vocab-llama-bpe.gguf.inp $SHARED/reference/tokenizer/ggml-vocab-qwen2.gguf.inp $SHARED/reference/tokenizer/ggml-vocab-llama-spm.gguf.inp
 * fuzz-max-len: 2048
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gguf/gguf.h"
#include "../runtime/tokenizer.h"
#include "../runtime/unicode.h"

static const char *const vocab_files[] = {
    "reference/tokenizer/ggml-vocab-llama-spm.gguf",
    "reference/tokenizer/ggml-vocab-gpt-2.gguf",
    "reference/tokenizer/ggml-vocab-llama-bpe.gguf",
    "reference/tokenizer/ggml-vocab-qwen2.gguf",
    "models/phi3-mini-q8_0.gguf",
    "models/stories260K.gguf",
};
enum { N_VOCABS = sizeof vocab_files / sizeof vocab_files[0] };

/* Loaded on the first input and kept for the whole run (the harness's only state). */
static struct gguf_file files[N_VOCABS];
static struct rb_tokenizer *toks[N_VOCABS];
static int n_loaded = -1;

static void load_all(void) {
    const char *shared = getenv("SHARED");
    if (!shared || !*shared)
        shared = "../shared";
    n_loaded = 0;
    for (int i = 0; i < N_VOCABS; i++) {
        char path[1024], err[RB_ERR_MAX];
        snprintf(path, sizeof path, "%s/%s", shared, vocab_files[i]);
        if (rb_gguf_open(&files[n_loaded], path, err) != 0) {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, err);
            abort(); /* a fuzz run over fewer vocabularies than it claims would pass for nothing */
        }
        if (rb_tokenizer_load(&toks[n_loaded], &files[n_loaded], err) != 0) {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, err);
            abort();
        }
        n_loaded++;
    }
}

/* Well-formed UTF-8 throughout. */
static int well_formed(const uint8_t *s, size_t n) {
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = rb_utf8_valid(s + i, n - i))) return 0;
    return 1;
}

/* The input as ids, detokenized: well-formed UTF-8 whatever the ids. */
static void detok_ids(const struct rb_tokenizer *t, const uint8_t *data, size_t size) {
    size_t piece_cap = rb_tokenizer_max_piece(t), cap = (size / 2 + 1) * piece_cap, total = 0;
    char *text = malloc(cap);
    if (!text)
        return;
    struct rb_detok d;
    rb_detok_init(&d);
    for (size_t i = 0; i + 1 < size; i += 2) {
        int32_t id = (int32_t)((data[i] | (uint32_t)data[i + 1] << 8) % (uint32_t)rb_tokenizer_n_vocab(t));
        total += rb_detok_push(t, &d, id, text + total, piece_cap);
    }
    total += rb_detok_flush(&d, text + total, piece_cap);
    if (!well_formed((const uint8_t *)text, total))
        abort();
    free(text);
}

static void roundtrip(const struct rb_tokenizer *t, const char *text, size_t len, int add_bos, int parse_special) {
    char err[RB_ERR_MAX];
    int64_t cap = 2 * (int64_t)len + 8; /* usually enough: one call; else the count, then a second */
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids)
        return;
    int64_t n = rb_tokenize(t, text, len, add_bos, parse_special, ids, cap, err);
    if (n > cap) {
        int32_t *more = realloc(ids, (size_t)n * sizeof *ids);
        if (!more) {
            free(ids);
            return;
        }
        ids = more;
        if (rb_tokenize(t, text, len, add_bos, parse_special, ids, n, err) != n)
            abort();
    }
    if (n < 0) { /* refused (out of memory): an error, not a crash */
        free(ids);
        return;
    }
    int32_t n_vocab = rb_tokenizer_n_vocab(t);
    size_t piece_cap = rb_tokenizer_max_piece(t);
    char *piece = malloc(piece_cap);
    if (!piece) {
        free(ids);
        return;
    }
    struct rb_detok d;
    rb_detok_init(&d);
    volatile size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= n_vocab)
            abort();
        if (rb_tokenizer_is_eog(t, ids[i]))
            total += 1;
        total += rb_detok_push(t, &d, ids[i], piece, piece_cap);
    }
    total += rb_detok_flush(&d, piece, piece_cap);
    if (total > (size_t)n * (piece_cap + 1) + piece_cap) /* no push writes more than its cap */
        abort();
    free(piece);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (n_loaded < 0)
        load_all();
    if (size > 2048)
        return 0; /* longer inputs add time, not paths */
    const char *text = (const char *)data;
    for (int i = 0; i < n_loaded; i++) {
        roundtrip(toks[i], text, size, -1, 1);
        roundtrip(toks[i], text, size, 0, 0);
        detok_ids(toks[i], data, size);
    }
    return 0;
}
