/* test_tok_special.c - what the tokenizer does as llama.cpp b4748 beyond
 * plain text: special-token text parsed as those tokens (and the strip
 * rules), the end-of-generation set, each tokenizer.ggml.pre family and the
 * flags it implies, unknown pre-tokenizers refused, vocabulary-only files.
 *
 * Truth: the chat references' `tokens:` lines (../shared/reference/chat),
 * and tests/data/tok_llamacpp.txt, which holds the ids llama.cpp b4748
 * itself gives for tricky inputs over every shared vocabulary and over
 * copies of them with another pre-tokenizer (tests/data/make_tok_llamacpp.py
 * regenerates it). */
#include <stdint.h>

#include "../runtime/json.h"
#include "tok_test_util.h"
#include "../runtime/rbee.h"

/* ---- vocabularies with tokenizer.ggml.pre rewritten ---- */

/* Open `rel` (under ../shared) with its string key `key` set to value
 * (NULL: removed), through a copy in memory. */
static int load_with_key(struct loaded *l, const char *rel, const char *key, const char *value, char *err) {
    char path[512];
    struct gguf_file src;
    memset(l, 0, sizeof *l);
    if (rb_gguf_open(&src, test_path(path, sizeof path, rel), err) != 0) {
        printf("  %s: %s\n", path, err);
        return -1;
    }
    struct gguf_writer *w = rb_gguf_writer_new();
    for (uint64_t i = 0; i < src.n_kv; i++)
        if (src.kv[i].key.len != strlen(key) || memcmp(src.kv[i].key.data, key, strlen(key)) != 0)
            rb_gguf_writer_copy_kv(w, &src.kv[i]);
    if (value)
        rb_gguf_writer_add_str(w, key, value);
    size_t size;
    int rc = rb_gguf_writer_write_mem(w, &l->mem, &size, err);
    rb_gguf_writer_free(w);
    rb_gguf_close(&src);
    if (rc == 0)
        rc = rb_gguf_open_memory(&l->f, l->mem, size, err);
    if (rc == 0)
        rc = rb_tokenizer_load(&l->tok, &l->f, err);
    return rc;
}

/* ---- llama.cpp's own ids for tricky inputs ---- */

/* One "input: " line: \\ \n \t \r \xNN escapes, every other byte as it is. */
static size_t unescape(const char *s, const char *end, char *out) {
    size_t n = 0;
    while (s < end) {
        if (*s != '\\' || s + 1 >= end) {
            out[n++] = *s++;
            continue;
        }
        char e = s[1];
        s += 2;
        if (e == 'n') out[n++] = '\n';
        else if (e == 't') out[n++] = '\t';
        else if (e == 'r') out[n++] = '\r';
        else if (e == 'x' && end - s >= 2) {
            out[n++] = (char)strtol((char[]){ s[0], s[1], 0 }, NULL, 16);
            s += 2;
        } else out[n++] = e;
    }
    return n;
}

enum { MAX_INPUTS = 1024 };

struct extra_inputs {
    char *text[MAX_INPUTS];
    size_t len[MAX_INPUTS];
    int n;
};

/* Compare one vocabulary's block: a 'plain:' and a 'prompt:' line per input. */
static int check_vocab_block(const struct rb_tokenizer *t, const char *label, const struct extra_inputs *in,
                             char **line, int *bad) {
    int32_t want[4096];
    int n_checked = 0;
    for (int i = 0; i < in->n; i++) {
        for (int mode = 0; mode < 2; mode++) {
            const char *tag = mode ? "prompt: " : "plain: ";
            char *eol = *line ? strchr(*line, '\n') : NULL;
            if (!eol || strncmp(*line, tag, strlen(tag)) != 0) {
                printf("  %s: input %d: expected a '%s' line\n", label, i, tag);
                (*bad)++;
                return n_checked;
            }
            *eol = '\0';
            int64_t n_want = parse_ids(*line + strlen(tag), want, 4096), n_got;
            *line = eol + 1;
            /* plain: no BOS/EOS, special text is text; prompt: as llama.cpp tokenizes a prompt */
            int32_t *got = tokenize_ps(t, in->text[i], in->len[i], mode ? -1 : 0, mode, &n_got);
            if (!got || !ids_equal(got, n_got, want, n_want)) {
                if (*bad < 8) {
                    printf("  %s %s input %d '%.*s'\n", label, tag, i, (int)in->len[i], in->text[i]);
                    print_ids("want", want, n_want);
                    if (got)
                        print_ids("got ", got, n_got);
                }
                (*bad)++;
            }
            free(got);
            n_checked++;
        }
    }
    return n_checked;
}

TEST(llamacpp_vectors) {
    size_t size;
    char *data = read_file("tests/data/tok_llamacpp.txt", &size);
    if (!data) {
        CHECK_MSG(0, "cannot read tests/data/tok_llamacpp.txt (run from the repository root)");
        return;
    }
    struct extra_inputs in = { .n = 0 };
    char *line = data;
    int bad = 0, n_vocabs = 0, n_checked = 0;
    while (line && *line) {
        char *eol = strchr(line, '\n');
        if (!eol)
            break;
        if (strncmp(line, "input: ", 7) == 0 && in.n < MAX_INPUTS) {
            in.text[in.n] = malloc((size_t)(eol - line));
            in.len[in.n] = unescape(line + 7, eol, in.text[in.n]);
            in.n++;
        } else if (strncmp(line, "vocab: ", 7) == 0) {
            *eol = '\0';
            char rel[256], *pre = strstr(line, " pre=");
            if (pre)
                *pre = '\0';
            snprintf(rel, sizeof rel, "%s", line + 7);
            struct loaded l;
            char err[RB_ERR_MAX] = "";
            int rc = pre ? load_with_key(&l, rel, "tokenizer.ggml.pre", pre + 5, err) : load_path(&l, rel);
            line = eol + 1;
            if (rc != 0) {
                printf("  %s: %s\n", rel, err);
                bad++;
                break;
            }
            char label[300];
            snprintf(label, sizeof label, "%s%s%s", rel, pre ? " pre=" : "", pre ? pre + 5 : "");
            int before = bad;
            n_checked += check_vocab_block(l.tok, label, &in, &line, &bad);
            printf("  %s: %d inputs x 2, %d wrong\n", label, in.n, bad - before);
            unload(&l);
            n_vocabs++;
            continue;
        }
        line = eol + 1;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(in.n >= 300);
    CHECK_EQ_INT(n_vocabs, 13);
    CHECK_EQ_INT(n_checked, 2 * in.n * n_vocabs);
    for (int i = 0; i < in.n; i++)
        free(in.text[i]);
    free(data);
}

/* ---- chat prompts of ../shared/reference/chat ---- */

/* A JSON string literal after `key` in text -> out (NUL-terminated); its length or -1. */
static long json_value(const char *text, const char *key, char *out, size_t cap) {
    const char *p = strstr(text, key);
    if (!p)
        return -1;
    p += strlen(key);
    const char *eol = strchr(p, '\n');
    struct rb_json_doc *d = NULL;
    char err[RB_JSON_ERR_MAX];
    long n = -1;
    if (rb_json_parse(p, eol ? (size_t)(eol - p) : strlen(p), 0, &d, err) == 0 &&
        rb_json_root(d)->type == RB_JSON_STRING && rb_json_root(d)->len + 1 < cap) {
        n = (long)rb_json_root(d)->len;
        memcpy(out, rb_json_root(d)->str, (size_t)n + 1);
    }
    rb_json_free(d);
    return n;
}

static void check_chat(const char *family) {
    char rel[256], path[512];
    snprintf(rel, sizeof rel, "reference/chat/%s.txt", family);
    size_t size;
    char *text = read_file(test_path(path, sizeof path, rel), &size);
    static char prompt[16384];
    long n_prompt = text ? json_value(text, "\nprompt: ", prompt, sizeof prompt) : -1;
    const char *tok = text ? strstr(text, "\ntokens: ") : NULL;
    if (n_prompt < 0 || !tok) {
        CHECK_MSG(0, "%s: no prompt: / tokens: lines", path);
        free(text);
        return;
    }
    /* "tokens: VOCAB: ids": the vocabulary is in reference/tokenizer or models */
    char vocab[128];
    tok += 9;
    const char *colon = strchr(tok, ':');
    snprintf(vocab, sizeof vocab, "%.*s", colon ? (int)(colon - tok) : 0, tok);
    snprintf(rel, sizeof rel, "%s/%s", strncmp(vocab, "ggml-vocab-", 11) == 0 ? "reference/tokenizer" : "models",
             vocab);
    int32_t want[1024];
    int64_t n_want = colon ? parse_ids(colon + 1, want, 1024) : 0, n_got;
    struct loaded l;
    if (load_path(&l, rel) != 0) {
        CHECK(0);
        free(text);
        return;
    }
    int32_t *got = tokenize_ps(l.tok, prompt, (size_t)n_prompt, -1, 1, &n_got);
    CHECK_MSG(got && n_want > 10 && ids_equal(got, n_got, want, n_want), "%s: chat prompt tokenized wrong", family);
    if (got && !ids_equal(got, n_got, want, n_want)) {
        print_ids("want", want, n_want);
        print_ids("got ", got, n_got);
    }
    free(got);
    unload(&l);
    free(text);
}

TEST(chat_reference_tokens) {
    check_chat("chatml");
    check_chat("chatml-qwen3");
    check_chat("llama3");
    check_chat("phi3"); /* the Phi-3 rule: whitespace after a special token is dropped */
}

/* ---- special tokens, with and without parsing ---- */

static void expect_ids(const char *rel, const char *text, int add_bos, int parse_special, const int32_t *want,
                       int n_want) {
    struct loaded l;
    if (load_path(&l, rel) != 0) {
        CHECK(0);
        return;
    }
    int64_t n;
    int32_t *got = tokenize_ps(l.tok, text, strlen(text), add_bos, parse_special, &n);
    CHECK_MSG(got && ids_equal(got, n, want, n_want), "%s: '%s' (parse_special %d)", rel, text, parse_special);
    if (got && !ids_equal(got, n, want, n_want))
        print_ids("got", got, n);
    free(got);
    unload(&l);
}

#define IDS(...) ((const int32_t[]){ __VA_ARGS__ }), (int)(sizeof((const int32_t[]){ __VA_ARGS__ }) / sizeof(int32_t))

TEST(special_tokens_in_text) {
    const char *l3 = "reference/tokenizer/ggml-vocab-llama-bpe.gguf", *qw = "reference/tokenizer/ggml-vocab-qwen2.gguf";
    expect_ids(l3, "Hello<|eot_id|>", -1, 1, IDS(128000, 9906, 128009));
    expect_ids(l3, "Hello<|eot_id|>", -1, 0, IDS(128000, 9906, 27, 91, 68, 354, 851, 91, 29));
    /* control tokens only when parsed; user-defined (<think>) always */
    const char *chat = "<|im_start|>user\n<think>x</think><|im_end|>";
    expect_ids(qw, chat, -1, 1, IDS(151644, 872, 198, 151667, 87, 151668, 151645));
    expect_ids(qw, chat, -1, 0, IDS(27, 91, 318, 4906, 91, 29, 872, 198, 151667, 87, 151668, 27, 91, 318, 6213, 91, 29));
    /* Phi-3: whitespace after a special token goes, except after <s>, <unk>,
     * <|endoftext|>; "</s>" is user-defined there, so parsed either way */
    const char *phi = "<|user|>\n  Hi<|end|>\n<s>\nA<|endoftext|>\nB</s>\nC";
    expect_ids("models/phi3-mini-q8_0.gguf", phi, -1, 1,
               IDS(1, 32010, 6324, 32007, 1, 29871, 13, 29909, 32000, 29871, 13, 29933, 2, 315));
    expect_ids("models/phi3-mini-q8_0.gguf", phi, -1, 0,
               IDS(1, 529, 29989, 1792, 29989, 29958, 13, 29871, 6324, 29966, 29989, 355, 29989, 29958, 13, 29966,
                   29879, 29958, 13, 29909, 29966, 29989, 355, 974, 726, 29989, 29958, 13, 29933, 2, 315));
    /* the same text in Llama 2's vocabulary (no Phi-3 name): nothing stripped,
     * and a leading space after each special token */
    expect_ids("reference/tokenizer/ggml-vocab-llama-spm.gguf", phi, -1, 1,
               IDS(1, 529, 29989, 1792, 29989, 29958, 13, 29871, 6324, 29966, 29989, 355, 29989, 29958, 13, 1, 29871,
                   13, 29909, 29966, 29989, 355, 974, 726, 29989, 29958, 13, 29933, 2, 29871, 13, 29907));
}

/* The strip flags hang on names: "phi3"/"phi-3" in general.name (any case),
 * "jina-v2-*" pre-tokenizers (whitespace before <mask>). */
static const char *const strip_tokens[] = { "<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b", "<|end|>", "<mask>" };
static const int32_t strip_types[] = { 2, 3, 3, 1, 1, 1, 3, 3 };
static void name_phi3(struct gguf_writer *w) { rb_gguf_writer_add_str(w, "general.name", "My-PHI-3-Finetune"); }
static void name_other(struct gguf_writer *w) { rb_gguf_writer_add_str(w, "general.name", "phi-2"); }

static void strip_case(void (*extra)(struct gguf_writer *), const char *text, const int32_t *want, int n_want) {
    const float scores[8] = { 0 };
    struct vocab_spec v = { "llama", strip_tokens, 8, scores, strip_types, NULL, 0 };
    struct loaded l;
    if (build_tok(&l, &v, extra) != 0)
        return;
    int64_t n;
    int32_t *got = tokenize_ps(l.tok, text, strlen(text), 0, 1, &n);
    CHECK_MSG(got && ids_equal(got, n, want, n_want), "'%s'", text);
    if (got && !ids_equal(got, n, want, n_want))
        print_ids("got", got, n);
    free(got);
    unload(&l);
}

static void bpe_mask_case(const char *pre, const char *text, const int32_t *want, int n_want) {
    const char *extra[] = { "<mask>" };
    struct bpe_vocab bv;
    make_bpe_vocab(&bv, extra, 1);
    int32_t types[257];
    for (int i = 0; i < 257; i++)
        types[i] = i == 256 ? 3 : 1;
    const char *merges[] = { "a b" };
    struct loaded l;
    char err[RB_ERR_MAX] = "";
    struct gguf_writer *w = rb_gguf_writer_new();
    rb_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    rb_gguf_writer_add_str(w, "tokenizer.ggml.pre", pre);
    rb_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", bv.tokens, (uint64_t)bv.n);
    rb_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)bv.n);
    rb_gguf_writer_add_str_arr(w, "tokenizer.ggml.merges", merges, 0);
    size_t size;
    memset(&l, 0, sizeof l);
    int rc = rb_gguf_writer_write_mem(w, &l.mem, &size, err);
    rb_gguf_writer_free(w);
    if (rc || rb_gguf_open_memory(&l.f, l.mem, size, err) || rb_tokenizer_load(&l.tok, &l.f, err)) {
        CHECK_MSG(0, "load: %s", err);
        unload(&l);
        return;
    }
    int64_t n;
    int32_t *got = tokenize_ps(l.tok, text, strlen(text), 0, 1, &n);
    CHECK_MSG(got && ids_equal(got, n, want, n_want), "%s: '%s'", pre, text);
    if (got && !ids_equal(got, n, want, n_want))
        print_ids("got", got, n);
    free(got);
    unload(&l);
}

TEST(strip_rules_follow_names) {
    /* <|end|> 6, then "\n a": rstrip only for a Phi-3 name; SPM's space prefix either way */
    strip_case(name_phi3, "a<|end|>\n a", IDS(3, 4, 6, 3, 4));
    strip_case(name_other, "a<|end|>\n a", IDS(3, 4, 6, 3, 0, 3, 4)); /* \n has no piece: <unk> */
    strip_case(name_phi3, "<s> a", IDS(1, 3, 3, 4));                   /* <s> keeps what follows */
    strip_case(name_phi3, "</s> a", IDS(2, 3, 4));
    /* jina-v2-*: whitespace before <mask> goes; token b is byte b, 256 is <mask> */
    bpe_mask_case("jina-v2-de", "a  <mask> b", IDS('a', 256, ' ', 'b'));
    bpe_mask_case("gpt-2", "a  <mask> b", IDS('a', ' ', ' ', 256, ' ', 'b'));
}

/* ---- end of generation ---- */

static void expect_eog(const char *rel, const int32_t *want, int n_want) {
    struct loaded l;
    if (load_path(&l, rel) != 0) {
        CHECK(0);
        return;
    }
    int32_t n;
    const int32_t *eog = rb_tokenizer_eog(l.tok, &n);
    CHECK_MSG(ids_equal(eog, n, want, n_want), "%s: end-of-generation set", rel);
    if (!ids_equal(eog, n, want, n_want))
        print_ids("got", eog, n);
    for (int i = 0; i < n_want; i++)
        CHECK(rb_tokenizer_is_eog(l.tok, want[i]));
    CHECK(!rb_tokenizer_is_eog(l.tok, 0) || want[0] == 0);
    CHECK(!rb_tokenizer_is_eog(l.tok, -1));
    unload(&l);
}

/* The sets llama.cpp b4748 builds (llama_vocab_is_eog over every id). */
TEST(end_of_generation_sets) {
    expect_eog("reference/tokenizer/ggml-vocab-llama-bpe.gguf", IDS(128001, 128009)); /* <|eot_id|> by its text */
    expect_eog("models/llama3-mini-q8_0.gguf", IDS(128001, 128009));
    expect_eog("reference/tokenizer/ggml-vocab-qwen2.gguf", IDS(151643, 151645, 151662, 151663, 151664)); /* + FIM */
    expect_eog("models/phi3-mini-q8_0.gguf", IDS(32000, 32007));                      /* <|end|> */
    expect_eog("reference/tokenizer/ggml-vocab-gpt-2.gguf", IDS(50256));
    expect_eog("reference/tokenizer/ggml-vocab-llama-spm.gguf", IDS(2));
}

/* Keys name eot/eom/FIM tokens; a token found by text becomes a control
 * token, so its text is parsed as it even if the file typed it normal. */
static const char *const eog_tokens[] = { "<unk>", "<s>", "</s>", "\xE2\x96\x81", "x", "<|fim_pad|>", "<EOT>", "<|file_sep|>" };
static const int32_t eog_types[] = { 2, 3, 3, 1, 1, 1, 1, 3 };
static void eog_keys(struct gguf_writer *w) {
    rb_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 4);
    rb_gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", 7);
    rb_gguf_writer_add_u32(w, "tokenizer.ggml.eom_token_id", 3);
    rb_gguf_writer_add_u32(w, "tokenizer.ggml.fim_sep_token_id", 1);
}
static void eog_bad_key(struct gguf_writer *w) { rb_gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", 8); }

TEST(end_of_generation_by_key_and_text) {
    const float scores[8] = { 0 };
    struct vocab_spec v = { "llama", eog_tokens, 8, scores, eog_types, NULL, 0 };
    struct loaded l;
    if (build_tok(&l, &v, eog_keys) != 0)
        return;
    /* by key: fim_sep <s> 1, eom 3, eos 4, eot <|file_sep|> 7; by text:
     * <|fim_pad|> 5 and <EOT> 6 (an end-of-turn text, though eot is keyed) */
    int32_t n;
    const int32_t *eog = rb_tokenizer_eog(l.tok, &n);
    CHECK(ids_equal(eog, n, IDS(1, 3, 4, 5, 6, 7)));
    if (!ids_equal(eog, n, IDS(1, 3, 4, 5, 6, 7)))
        print_ids("got", eog, n);
    int64_t k;
    int32_t *ids = tokenize_ps(l.tok, "x<EOT>", 6, 0, 1, &k); /* typed normal, made a control token */
    CHECK(ids && ids_equal(ids, k, IDS(3, 4, 6)));
    free(ids);
    unload(&l);
    expect_refused(&v, eog_bad_key, "tokenizer.ggml.eot_token_id: token id 8 out of range");
}

/* ---- pre-tokenizers: names, flags ---- */

static void pre_u32(struct gguf_writer *w) { rb_gguf_writer_add_u32(w, "tokenizer.ggml.pre", 2); }

TEST(unknown_pre_tokenizer_refused) {
    static const struct { const char *pre; const char *want; } bad[] = {
        { "gpt-5-magic", "tokenizer.ggml.pre: unknown pre-tokenizer 'gpt-5-magic'" },
        { "deepseek-llm", "tokenizer.ggml.pre: pre-tokenizer 'deepseek-llm' is not supported" },
        { "GPT-2", "unknown pre-tokenizer 'GPT-2'" }, /* names are exact */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct loaded l;
        char err[RB_ERR_MAX] = "";
        CHECK_EQ_INT(load_with_key(&l, "reference/tokenizer/ggml-vocab-gpt-2.gguf", "tokenizer.ggml.pre",
                                   bad[i].pre, err), -1);
        CHECK(l.tok == NULL);
        CHECK_CONTAINS(err, bad[i].want);
        unload(&l);
    }
    struct bpe_vocab bv;
    make_bpe_vocab(&bv, NULL, 0);
    const char *merges[] = { "a b" };
    struct vocab_spec v = { "gpt2", bv.tokens, bv.n, NULL, NULL, merges, 1 };
    expect_refused(&v, pre_u32, "tokenizer.ggml.pre: expected string, got u32");
    /* SPM vocabularies have no pre-tokenizer: llama.cpp reads none, so any value is fine */
    struct loaded l;
    char err[RB_ERR_MAX] = "";
    CHECK_EQ_INT(load_with_key(&l, "reference/tokenizer/ggml-vocab-llama-spm.gguf", "tokenizer.ggml.pre", "xyz", err),
                 0);
    unload(&l);
}

/* llama.cpp's per-pre-tokenizer defaults, and what the keys change. */
TEST(pre_tokenizer_defaults) {
    struct loaded l;
    if (load_path(&l, "reference/tokenizer/ggml-vocab-llama-bpe.gguf") == 0) {
        CHECK_STR(rb_tokenizer_pre(l.tok), "llama3");
        CHECK_EQ_INT(rb_tokenizer_add_bos(l.tok), 1); /* no add_bos_token key: llama-bpe adds BOS */
        int64_t n;
        int32_t *ids = tokenize_ps(l.tok, "Hello", 5, -1, 1, &n);
        CHECK(ids && ids_equal(ids, n, IDS(128000, 9906)));
        free(ids);
        unload(&l);
    } else {
        CHECK(0);
    }
    if (load_path(&l, "reference/tokenizer/ggml-vocab-qwen2.gguf") == 0) {
        CHECK_STR(rb_tokenizer_pre(l.tok), "qwen2");
        CHECK_EQ_INT(rb_tokenizer_add_bos(l.tok), 0); /* add_bos_token false */
        int64_t n;
        int32_t *ids = tokenize_ps(l.tok, "Hello", 5, -1, 1, &n);
        CHECK(ids && ids_equal(ids, n, IDS(9707)));
        free(ids);
        ids = tokenize_ps(l.tok, "Hello", 5, 1, 1, &n); /* forced */
        CHECK(ids && ids_equal(ids, n, IDS(151643, 9707)));
        free(ids);
        unload(&l);
    } else {
        CHECK(0);
    }
    /* a file without tokenizer.ggml.pre gets llama.cpp's "default" regexes,
     * which split punctuation runs and digit triples apart */
    char err[RB_ERR_MAX] = "";
    if (load_with_key(&l, "reference/tokenizer/ggml-vocab-gpt-2.gguf", "tokenizer.ggml.pre", NULL, err) == 0) {
        CHECK_STR(rb_tokenizer_pre(l.tok), "default");
        int64_t n;
        int32_t *ids = tokenize_ps(l.tok, "12345", 5, 0, 0, &n);
        CHECK(ids && ids_equal(ids, n, IDS(10163, 2231))); /* 123 45; GPT-2's own regex: 10163 2231 too */
        free(ids);
        ids = tokenize_ps(l.tok, "x+=y", 4, 0, 0, &n);
        CHECK(ids && n == 3); /* x | += | y */
        free(ids);
        unload(&l);
    } else {
        CHECK(0);
    }
    if (load_path(&l, "reference/tokenizer/ggml-vocab-llama-spm.gguf") == 0) {
        CHECK(rb_tokenizer_pre(l.tok) == NULL);
        CHECK_EQ_INT(rb_tokenizer_add_eos(l.tok), 0);
        unload(&l);
    }
}

static void add_eos_on(struct gguf_writer *w) { rb_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", 1); }

TEST(add_eos_key) {
    const float scores[8] = { 0 };
    struct vocab_spec v = { "llama", strip_tokens, 8, scores, strip_types, NULL, 0 };
    struct loaded l;
    if (build_tok(&l, &v, add_eos_on) != 0)
        return;
    int64_t n;
    int32_t *ids = tokenize_ps(l.tok, "a", 1, -1, 1, &n);
    CHECK(ids && ids_equal(ids, n, IDS(1, 3, 4, 2))); /* <s> ▁ a </s> */
    free(ids);
    ids = tokenize_ps(l.tok, "", 0, -1, 1, &n);
    CHECK(ids && ids_equal(ids, n, IDS(1, 2)));
    free(ids);
    ids = tokenize_ps(l.tok, "a", 1, 0, 1, &n);
    CHECK(ids && ids_equal(ids, n, IDS(3, 4)));
    free(ids);
    unload(&l);
}

/* ---- a vocabulary without a model ---- */

TEST(vocab_only_handle) {
    char path[512], err[RBEE_ERR_MAX];
    test_path(path, sizeof path, "reference/tokenizer/ggml-vocab-llama-bpe.gguf");
    rbee_model *m;
    CHECK_EQ_INT(rbee_model_load(&m, path, err), -1);
    CHECK_CONTAINS(err, "vocabulary only");
    if (rbee_vocab_load(&m, path, err) != 0) {
        CHECK_MSG(0, "%s", err);
        return;
    }
    CHECK_EQ_INT(rbee_model_vocab_only(m), 1);
    struct rbee_model_info info;
    rbee_model_get_info(m, &info);
    CHECK_EQ_INT(info.n_vocab, 128256);
    CHECK_STR(info.arch, "llama");
    CHECK_STR(info.name, "llama-bpe");
    CHECK_EQ_INT(info.n_layers, 0);
    int32_t ids[8];
    CHECK_EQ_INT(rbee_tokenize(m, "Hi<|eot_id|>", 12, -1, 1, ids, 8, err), 3);
    CHECK_EQ_INT(ids[2], 128009);
    CHECK_EQ_INT(rbee_token_is_eog(m, 128009), 1);
    CHECK_EQ_INT(rbee_token_is_eog(m, 128000), 0);
    size_t len;
    const char *text = rbee_token_text(m, 128009, &len);
    CHECK(text && len == 10 && memcmp(text, "<|eot_id|>", 10) == 0);
    CHECK(rbee_token_text(m, 128256, &len) == NULL);
    CHECK_STR(rbee_model_meta_str(m, "general.name"), "llama-bpe");
    const char *tmpl = rbee_model_meta_str(m, "tokenizer.chat_template");
    CHECK(tmpl && strncmp(tmpl, "{% set loop_messages", 20) == 0);
    CHECK(rbee_model_meta_str(m, "tokenizer.ggml.bos_token_id") == NULL); /* not a string */
    CHECK(rbee_model_meta_str(m, "no.such.key") == NULL);
    rbee_context *c;
    CHECK_EQ_INT(rbee_context_new(&c, m, NULL, err), -1);
    CHECK_CONTAINS(err, "vocabulary only");
    struct rbee_context_memory mem;
    CHECK_EQ_INT(rbee_context_memory(m, NULL, &mem, err), -1);
    CHECK_CONTAINS(err, "vocabulary only");
    rbee_model_free(m);

    /* a whole model loads as a vocabulary too, and as a model answers the same */
    test_path(path, sizeof path, "models/qwen2-mini-q8_0.gguf");
    if (rbee_vocab_load(&m, path, err) != 0) {
        CHECK_MSG(0, "%s", err);
        return;
    }
    CHECK_EQ_INT(rbee_token_is_eog(m, 151645), 1);
    CHECK_STR(rbee_model_meta_str(m, "tokenizer.ggml.pre"), "qwen2");
    rbee_model_free(m);
    test_path(path, sizeof path, "models/stories260K.gguf");
    if (rbee_model_load(&m, path, err) != 0) {
        CHECK_MSG(0, "%s", err);
        return;
    }
    CHECK_EQ_INT(rbee_model_vocab_only(m), 0);
    CHECK_STR(rbee_model_meta_str(m, "general.architecture"), "llama");
    CHECK_EQ_INT(rbee_token_is_eog(m, 2), 1);
    rbee_model_free(m);
}

int main(void) {
    RUN(llamacpp_vectors);
    RUN(chat_reference_tokens);
    RUN(special_tokens_in_text);
    RUN(strip_rules_follow_names);
    RUN(end_of_generation_sets);
    RUN(end_of_generation_by_key_and_text);
    RUN(unknown_pre_tokenizer_refused);
    RUN(pre_tokenizer_defaults);
    RUN(add_eos_key);
    RUN(vocab_only_handle);
    return test_summary();
}
