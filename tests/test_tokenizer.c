/* test_tokenizer.c - SPM and BPE tokenizers against llama.cpp's test
 * vectors (../shared/reference/tokenizer: llama-spm, gpt-2, llama-bpe,
 * qwen2), the prompts of every golden
 * reference, hand-made vocabularies whose answer depends on the merge order,
 * the streaming detokenizer, and loading of bad vocabularies. */
#include <stdint.h>
#include <time.h>

#include "tok_test_util.h"

/* ---- llama.cpp's test-tokenizer-0 vectors ---- */

/* Inputs are separated by "\n__ggml_vocab_test__\n" (so the newline before a
 * separator belongs to it, not to the input), as test-tokenizer-0.cpp splits
 * them, and tokenized without BOS. With `roundtrip`, detokenizing must give
 * the input back too (it does for every vector of both vocabularies).
 * Returns the passes. */
static int run_vectors(const char *vocab, int roundtrip, int *n_cases) {
    char rel[256], path[512];
    struct loaded l;
    *n_cases = 0;
    snprintf(rel, sizeof rel, "reference/tokenizer/%s", vocab);
    if (load_path(&l, rel) != 0)
        return -1;
    size_t n_inp, n_out;
    snprintf(rel, sizeof rel, "reference/tokenizer/%s.inp", vocab);
    char *inp = read_file(test_path(path, sizeof path, rel), &n_inp);
    snprintf(rel, sizeof rel, "reference/tokenizer/%s.out", vocab);
    char *out = read_file(test_path(path, sizeof path, rel), &n_out);
    if (!inp || !out) {
        printf("  cannot read %s\n", path);
        free(inp);
        free(out);
        unload(&l);
        return -1;
    }

    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sep_len = strlen(sep);
    int passed = 0;
    char *line = out, *input = inp, *inp_end = inp + n_inp;
    int32_t want[512];
    char *text = malloc(65536);
    while (input < inp_end) {
        char *next = strstr(input, sep); /* the .inp has no NUL bytes */
        size_t len = next ? (size_t)(next - input) : (size_t)(inp_end - input);
        char *eol = strchr(line, '\n');
        if (!eol) {
            printf("  %s: more inputs than output lines\n", vocab);
            break;
        }
        *eol = '\0';
        int64_t n_want = parse_ids(line, want, 512), n_got;
        line = eol + 1;

        int32_t *got = tokenize(l.tok, input, len, 0, &n_got);
        int ok = got && ids_equal(got, n_got, want, n_want);
        if (ok && roundtrip) {
            size_t n_text = detok_all(l.tok, got, n_got, text, 65536);
            if (n_text != len || memcmp(text, input, len) != 0) {
                printf("  %s case %d: detokenized to '%s' instead of '%.*s'\n", vocab, *n_cases, text, (int)len,
                       input);
                ok = 0;
            }
        }
        if (!ok && got) {
            printf("  %s case %d failed: '%.*s'\n", vocab, *n_cases, (int)len, input);
            print_ids("want", want, n_want);
            print_ids("got ", got, n_got);
        }
        passed += ok;
        (*n_cases)++;
        free(got);
        if (!next)
            break;
        input = next + sep_len;
    }
    free(text);
    free(inp);
    free(out);
    unload(&l);
    return passed;
}

/* Every case of one vocabulary's vectors, and the count of cases. */
static void check_vectors(const char *vocab, int n_expected) {
    int n_cases, passed = run_vectors(vocab, 1, &n_cases);
    printf("  %s: %d/%d cases pass\n", vocab, passed, n_cases);
    CHECK_EQ_INT(n_cases, n_expected);
    CHECK_EQ_INT(passed, n_cases);
}

TEST(spm_vectors) { check_vectors("ggml-vocab-llama-spm.gguf", 46); }
TEST(bpe_vectors) { check_vectors("ggml-vocab-gpt-2.gguf", 46); }
/* Llama 3 (pre-tokenizer "llama-bpe": its regex, whole words looked up
 * before merging) and Qwen2 ("qwen2": digits one at a time). */
TEST(llama_bpe_vectors) { check_vectors("ggml-vocab-llama-bpe.gguf", 46); }
TEST(qwen2_vectors) { check_vectors("ggml-vocab-qwen2.gguf", 46); }

TEST(hello_gpt2) {
    struct loaded l;
    if (load_path(&l, "reference/tokenizer/ggml-vocab-gpt-2.gguf") != 0) {
        CHECK(0);
        return;
    }
    int64_t n;
    int32_t *ids = tokenize(l.tok, "Hello.", 6, rb_tokenizer_add_bos(l.tok), &n);
    const int32_t want[] = { 15496, 13 };
    CHECK(ids && ids_equal(ids, n, want, 2));
    CHECK_EQ_INT(rb_tokenizer_kind(l.tok), RB_TOK_BPE);
    CHECK_EQ_INT(rb_tokenizer_n_vocab(l.tok), 50257);
    CHECK_EQ_INT(rb_tokenizer_bos(l.tok), 50256);
    CHECK_EQ_INT(rb_tokenizer_add_bos(l.tok), 0);
    free(ids);
    unload(&l);
}

/* The SPM round trip holds where SentencePiece is lossless: the leading
 * space it adds comes off again, bytes come back through <0xNN>. */
TEST(spm_roundtrip) {
    struct loaded l;
    if (load_path(&l, "reference/tokenizer/ggml-vocab-llama-spm.gguf") != 0) {
        CHECK(0);
        return;
    }
    const char *texts[] = {
        "Hello world", " Hello World!", "  leading spaces", "tabs\tand\nnewlines\n",
        "нещо на Български", " this is \xF0\x9F\xA6\x99.cpp", "w048 7tuijk dsdfhu", "3333333 ...",
    };
    char buf[4096];
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        int64_t n;
        int32_t *ids = tokenize(l.tok, texts[i], strlen(texts[i]), 1, &n);
        CHECK(ids && n > 1 && ids[0] == 1);
        detok_all(l.tok, ids, n, buf, sizeof buf);
        CHECK_STR(buf, texts[i]);
        free(ids);
    }
    unload(&l);
}

/* ---- prompts of the golden references (BOS as each model adds it) ---- */

static void check_ref_prompts(const char *model, const char *ref) {
    char rel[256], path[512];
    struct loaded l;
    snprintf(rel, sizeof rel, "models/%s", model);
    if (load_path(&l, rel) != 0) {
        CHECK(0);
        return;
    }
    size_t size;
    snprintf(rel, sizeof rel, "reference/%s", ref);
    char *text = read_file(test_path(path, sizeof path, rel), &size);
    CHECK(text != NULL);
    int n_prompts = 0;
    char *prompt = NULL;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "prompt: ", 8) == 0) {
            prompt = line + 8;
        } else if (strncmp(line, "tokens: ", 8) == 0 && prompt) {
            int32_t want[256];
            int64_t n_want = parse_ids(line + 8, want, 256), n_got;
            int32_t *got = tokenize(l.tok, prompt, strlen(prompt), rb_tokenizer_add_bos(l.tok), &n_got);
            CHECK_MSG(got && ids_equal(got, n_got, want, n_want), "%s: prompt '%s' tokenized wrong", model, prompt);
            free(got);
            n_prompts++;
            prompt = NULL;
        }
    }
    CHECK(n_prompts >= 1);
    free(text);
    unload(&l);
}

TEST(reference_prompts) {
    check_ref_prompts("stories260K.gguf", "stories260K.ref");
    check_ref_prompts("llama-mini-f16.gguf", "llama-mini-f16.ref");
    check_ref_prompts("gpt2-mini-f16.gguf", "gpt2-mini-f16.ref");
}

/* ---- streaming detokenizer ---- */

TEST(detok_streams_whole_characters) {
    struct loaded l;
    if (load_path(&l, "reference/tokenizer/ggml-vocab-llama-spm.gguf") != 0) {
        CHECK(0);
        return;
    }
    /* 🦙 is not in the vocabulary: it becomes <0xF0><0x9F><0xA6><0x99> */
    int64_t n;
    int32_t *ids = tokenize(l.tok, "\xF0\x9F\xA6\x99", 4, 1, &n);
    const int32_t want[] = { 1, 29871, 243, 162, 169, 156 };
    CHECK(ids && ids_equal(ids, n, want, 6));
    struct rb_detok d;
    rb_detok_init(&d);
    char out[64];
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 1, out, sizeof out), 0);     /* BOS prints nothing */
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 29871, out, sizeof out), 0); /* the added leading space */
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 243, out, sizeof out), 0);
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 162, out, sizeof out), 0);
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 169, out, sizeof out), 0);
    size_t k = rb_detok_push(l.tok, &d, 156, out, sizeof out);
    CHECK(k == 4 && memcmp(out, "\xF0\x9F\xA6\x99", 4) == 0);
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 2, out, sizeof out), 0); /* EOS */
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 0, out, sizeof out), 0); /* <unk>, as llama.cpp shows it */

    /* a second piece keeps its space; a cut-off character is U+FFFD at flush */
    k = rb_detok_push(l.tok, &d, 15043, out, sizeof out); /* "▁Hello" */
    CHECK(k == 6 && memcmp(out, " Hello", 6) == 0);
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 243, out, sizeof out), 0);
    k = rb_detok_flush(&d, out, sizeof out);
    CHECK(k == 3 && memcmp(out, "\xEF\xBF\xBD", 3) == 0);
    CHECK_EQ_INT(rb_detok_flush(&d, out, sizeof out), 0);

    /* a lead byte interrupted by ASCII: the broken char is replaced, the ASCII kept */
    rb_detok_init(&d);
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 243, out, sizeof out), 0);
    k = rb_detok_push(l.tok, &d, 3 + 'A', out, sizeof out); /* <0x41> */
    CHECK(k == 4 && memcmp(out, "\xEF\xBF\xBD" "A", 4) == 0);
    free(ids);
    unload(&l);
}

/* Byte tokens that spell ill-formed UTF-8 (overlong forms, surrogates,
 * values past U+10FFFF) come out as U+FFFD, one per maximal subpart, as
 * Python's decoder replaces them; the well-formed extremes pass. */
static size_t detok_bytes(const struct rb_tokenizer *tok, const uint8_t *bytes, int n, char *out, size_t cap) {
    struct rb_detok d;
    rb_detok_init(&d);
    size_t total = 0;
    for (int i = 0; i < n; i++) /* <0xXX> is id 3 + XX in this vocabulary */
        total += rb_detok_push(tok, &d, 3 + bytes[i], out + total, cap - total);
    return total + rb_detok_flush(&d, out + total, cap - total);
}

TEST(detok_only_well_formed_utf8) {
    struct loaded l;
    if (load_path(&l, "reference/tokenizer/ggml-vocab-llama-spm.gguf") != 0) {
        CHECK(0);
        return;
    }
#define R3 "\xEF\xBF\xBD"
    static const struct { uint8_t in[5]; int n; const char *want; } cases[] = {
        { { 0xC0, 0xAF }, 2, R3 R3 },                   /* overlong '/' */
        { { 0xC1, 0xBF, 'a' }, 3, R3 R3 "a" },
        { { 0xE0, 0x80, 0xAF }, 3, R3 R3 R3 },          /* overlong three bytes */
        { { 0xED, 0xA0, 0x80 }, 3, R3 R3 R3 },          /* surrogate U+D800 */
        { { 0xED, 0xB7 }, 2, R3 R3 },
        { { 0xF0, 0x8F, 0xBF, 0xBF }, 4, R3 R3 R3 R3 }, /* overlong four bytes */
        { { 0xF4, 0x90, 0x80, 0x80 }, 4, R3 R3 R3 R3 }, /* U+110000 */
        { { 0xF5, 0x80 }, 2, R3 R3 },
        { { 0xE2, 0x96, 'x' }, 3, R3 "x" },             /* cut short: one for the two bytes */
        { { 0xF0, 0x9F, 0xA6 }, 3, R3 },                /* cut short at the end */
        { { 0xE0, 0xA0, 0x80 }, 3, "\xE0\xA0\x80" },     /* U+0800 */
        { { 0xED, 0x9F, 0xBF }, 3, "\xED\x9F\xBF" },     /* U+D7FF */
        { { 0xEE, 0x80, 0x80 }, 3, "\xEE\x80\x80" },     /* U+E000 */
        { { 0xF4, 0x8F, 0xBF, 0xBF }, 4, "\xF4\x8F\xBF\xBF" }, /* U+10FFFF */
        { { 0xC2, 0x80 }, 2, "\xC2\x80" },
    };
#undef R3
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        size_t k = detok_bytes(l.tok, cases[i].in, cases[i].n, out, sizeof out);
        if (k != strlen(cases[i].want) || memcmp(out, cases[i].want, k) != 0) {
            printf("  case %zu: %zu bytes out, not the %zu expected\n", i, k, strlen(cases[i].want));
            CHECK(0);
        }
    }
    unload(&l);
}

TEST(detok_bpe_bytes) {
    struct loaded l;
    if (load_path(&l, "reference/tokenizer/ggml-vocab-gpt-2.gguf") != 0) {
        CHECK(0);
        return;
    }
    /* "🦙" in GPT-2: 8582 ('ðŁ'), 99 ('¦'), 247 ('Ļ') - split inside the character */
    int64_t n;
    int32_t *ids = tokenize(l.tok, "\xF0\x9F\xA6\x99", 4, 0, &n);
    CHECK_EQ_INT(n, 3);
    struct rb_detok d;
    rb_detok_init(&d);
    char out[64];
    size_t total = 0;
    for (int64_t i = 0; ids && i < n; i++) {
        size_t k = rb_detok_push(l.tok, &d, ids[i], out + total, sizeof out - total);
        CHECK(i == n - 1 ? k == 4 : k == 0);
        total += k;
    }
    CHECK(total == 4 && memcmp(out, "\xF0\x9F\xA6\x99", 4) == 0);
    /* <|endoftext|> is a control token: nothing; " Hello" keeps its space */
    CHECK_EQ_INT(rb_detok_push(l.tok, &d, 50256, out, sizeof out), 0);
    size_t k = rb_detok_push(l.tok, &d, 18435, out, sizeof out);
    CHECK(k == 6 && memcmp(out, " Hello", 6) == 0);
    free(ids);
    unload(&l);
}

/* ---- hand-made vocabularies ---- */

#define SP "\xE2\x96\x81" /* U+2581 */
static const char *const spm_tokens[] = { "<unk>", "<s>", "</s>", SP, "a", "b", "c", "ab", "bc", SP "a", "<0x64>" };
static const int32_t spm_types[] = { 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 6 };
enum { SPM_N = 11 };

static void spm_encode_with(const float *scores, const char *text, const int32_t *want, int n_want) {
    struct vocab_spec v = { "llama", spm_tokens, SPM_N, scores, spm_types, NULL, 0 };
    struct loaded l;
    if (build_tok(&l, &v, NULL) != 0)
        return;
    int64_t n;
    int32_t *ids = tokenize(l.tok, text, strlen(text), 0, &n);
    CHECK_MSG(ids && ids_equal(ids, n, want, n_want), "'%s' tokenized wrong", text);
    if (ids && !ids_equal(ids, n, want, n_want)) {
        print_ids("want", want, n_want);
        print_ids("got ", ids, n);
    }
    free(ids);
    unload(&l);
}

/* "abc" is "▁abc": the candidates are ▁a, ab, bc; the best score merges first. */
TEST(spm_merge_order) {
    /*                       unk s  /s ▁  a  b  c  ab  bc  ▁a  <0x64> */
    const float bc_wins[] = { 0, 0, 0, 0, 0, 0, 0, -2, -1, -3, 0 };
    const int32_t want_bc[] = { 9, 8 }; /* ▁a bc  (bc first, then ▁+a) */
    spm_encode_with(bc_wins, "abc", want_bc, 2);

    const float ab_wins[] = { 0, 0, 0, 0, 0, 0, 0, -1, -2, -3, 0 };
    const int32_t want_ab[] = { 3, 7, 6 }; /* ▁ ab c */
    spm_encode_with(ab_wins, "abc", want_ab, 3);

    const float a_wins[] = { 0, 0, 0, 0, 0, 0, 0, -2, -2, -1, 0 };
    const int32_t want_a[] = { 9, 8 }; /* ▁a then bc */
    spm_encode_with(a_wins, "abc", want_a, 2);

    /* ties go to the leftmost pair: ▁a and ab tie, ▁a is left of ab */
    const float tie[] = { 0, 0, 0, 0, 0, 0, 0, -1, -5, -1, 0 };
    spm_encode_with(tie, "abc", want_bc, 2);
}

/* Unknown characters fall back to <0xNN>; without one, to <unk>. */
TEST(spm_byte_fallback) {
    const float scores[SPM_N] = { 0 };
    /* "▁c" is no piece: ▁ c; "d" is no piece but <0x64> is; "e" has neither: <unk> */
    const int32_t want[] = { 3, 6, 10, 0 };
    spm_encode_with(scores, "cde", want, 4);
}

static void add_bad_bos(struct gguf_writer *w) { rb_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 11); }
static void add_none_pad(struct gguf_writer *w) {
    rb_gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id", 4294967295u);
    rb_gguf_writer_add_i32(w, "tokenizer.ggml.eos_token_id", -1);
    rb_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 0);
}
static void add_u8_scores(struct gguf_writer *w) {
    uint8_t bytes[SPM_N] = { 0 };
    rb_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_UINT8, bytes, SPM_N);
}
static void add_short_scores(struct gguf_writer *w) {
    float s[3] = { 0 };
    rb_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, s, 3);
}
static void add_short_types(struct gguf_writer *w) {
    int32_t ty[4] = { 1, 1, 1, 1 };
    rb_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, ty, 4);
}
static void add_str_bos(struct gguf_writer *w) { rb_gguf_writer_add_str(w, "tokenizer.ggml.bos_token_id", "1"); }
static void add_empty_tokens(struct gguf_writer *w) {
    rb_gguf_writer_add_str_arr(w, "tokenizer.ggml.tokens", NULL, 0);
}

TEST(load_validation) {
    const float scores[SPM_N] = { 0 };
    struct vocab_spec good = { "llama", spm_tokens, SPM_N, scores, spm_types, NULL, 0 };

    struct vocab_spec v = good;
    v.scores = NULL;
    expect_refused(&v, add_u8_scores, "tokenizer.ggml.scores: expected array of f32, got array of u8");
    expect_refused(&v, add_short_scores, "tokenizer.ggml.scores: 3 scores for 11 tokens");
    v = good;
    v.types = NULL;
    expect_refused(&v, add_short_types, "tokenizer.ggml.token_type: 4 types for 11 tokens");
    expect_refused(&good, add_bad_bos, "tokenizer.ggml.bos_token_id: token id 11 out of range");
    expect_refused(&good, add_str_bos, "tokenizer.ggml.bos_token_id");
    v = good;
    v.tokens = NULL;
    v.scores = NULL;
    v.types = NULL;
    expect_refused(&v, NULL, "tokenizer.ggml.tokens: missing");
    expect_refused(&v, add_empty_tokens, "tokenizer.ggml.tokens: empty vocabulary");
    v = good;
    v.model = "bert";
    expect_refused(&v, NULL, "unsupported tokenizer 'bert'");
    v.model = NULL;
    expect_refused(&v, NULL, "tokenizer.ggml.model: missing");

    /* 4294967295 and -1 mean "none", not an error */
    struct loaded l;
    char err[RB_ERR_MAX] = "";
    CHECK(build(&l, &good, add_none_pad) == 0);
    CHECK_MSG(rb_tokenizer_load(&l.tok, &l.f, err) == 0, "%s", err);
    if (l.tok) {
        CHECK_EQ_INT(rb_tokenizer_eos(l.tok), -1);
        CHECK_EQ_INT(rb_tokenizer_bos(l.tok), 1);
        CHECK_EQ_INT(rb_tokenizer_add_bos(l.tok), 0);
        CHECK_EQ_INT(rb_tokenizer_kind(l.tok), RB_TOK_SPM);
    }
    unload(&l);
}

TEST(bpe_merge_ranks) {
    /* "abc": with ab ranked first -> [ab, c]; with bc first -> [a, bc] */
    const char *extra[] = { "ab", "bc", "abc" };
    struct bpe_vocab bv;
    make_bpe_vocab(&bv, extra, 3);
    const char *ab_first[] = { "a b", "b c", "ab c" };
    const char *bc_first[] = { "b c", "a b", "a bc" };
    for (int order = 0; order < 2; order++) {
        struct vocab_spec v = { "gpt2", bv.tokens, bv.n, NULL, NULL, order ? bc_first : ab_first, order ? 3 : 2 };
        struct loaded l;
        if (build_tok(&l, &v, NULL) != 0)
            continue;
        int64_t k;
        int32_t *ids = tokenize(l.tok, "abc", 3, 0, &k);
        if (order == 0) {
            const int32_t want[] = { 256, 'c' }; /* "ab", "c" ("ab c" is not among the 2 merges given) */
            CHECK(ids && ids_equal(ids, k, want, 2));
        } else {
            const int32_t want[] = { 258 }; /* b c, then a bc -> "abc" */
            CHECK(ids && ids_equal(ids, k, want, 1));
        }
        free(ids);
        unload(&l);
    }

    /* merges must name pieces of the vocabulary */
    const char *bad[] = { "a b", "x yz" };
    struct vocab_spec v = { "gpt2", bv.tokens, bv.n, NULL, NULL, bad, 2 };
    expect_refused(&v, NULL, "tokenizer.ggml.merges: entry 1 'x yz': right piece is not in the vocabulary");
    const char *nospace[] = { "ab" };
    v.merges = nospace;
    v.n_merges = 1;
    expect_refused(&v, NULL, "has no space");
    v.merges = NULL;
    expect_refused(&v, NULL, "tokenizer.ggml.merges: missing");
}

/* GPT-2 pre-tokenizer edge cases, checked against what the regex gives. */
TEST(bpe_pretokenizer) {
    struct loaded l;
    if (load_path(&l, "reference/tokenizer/ggml-vocab-gpt-2.gguf") != 0) {
        CHECK(0);
        return;
    }
    struct { const char *text; int32_t want[8]; int n; } cases[] = {
        { "I'm", { 40, 1101 }, 2 },                 /* contraction splits off */
        { "I'M", { 40, 6, 44 }, 3 },                /* ...only in lower case */
        { "a  b", { 64, 220, 275 }, 3 },            /* run of spaces gives its last to "b" */
        { "a \n\nb", { 64, 220, 198, 198, 65 }, 5 }, /* " \n" | "\n" | "b", not " \n\n" (-> 220 628) */
        { "12abc", { 1065, 39305 }, 2 },            /* digits and letters part */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t n;
        int32_t *ids = tokenize(l.tok, cases[i].text, strlen(cases[i].text), 0, &n);
        CHECK_MSG(ids && ids_equal(ids, n, cases[i].want, cases[i].n), "'%s'", cases[i].text);
        if (ids && !ids_equal(ids, n, cases[i].want, cases[i].n))
            print_ids("got", ids, n);
        free(ids);
    }
    unload(&l);
}

/* USER_DEFINED tokens are cut out of the text before encoding (longest
 * first), and SPM puts its leading space on the text after one. */
TEST(user_defined_tokens) {
    const char *const tokens[] = { "<unk>", "<s>", "</s>", SP, "a", "b", SP "a", "<|u|>", "|u|" };
    const int32_t types[] = { 2, 3, 3, 1, 1, 1, 1, 4, 4 };
    const float scores[9] = { 0 };
    struct vocab_spec v = { "llama", tokens, 9, scores, types, NULL, 0 };
    struct loaded l;
    if (build_tok(&l, &v, NULL) != 0)
        return;
    struct { const char *text; int32_t want[8]; int n; } cases[] = {
        { "a<|u|>b", { 6, 7, 3, 5 }, 4 },    /* ▁a <|u|> ▁ b */
        { "<|u|>", { 7 }, 1 },               /* the longer token wins over |u| */
        { "|u|a|u|", { 8, 6, 8 }, 3 },       /* |u| ▁a |u|: no space before a leading token */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t n;
        int32_t *ids = tokenize(l.tok, cases[i].text, strlen(cases[i].text), 0, &n);
        CHECK_MSG(ids && ids_equal(ids, n, cases[i].want, cases[i].n), "'%s'", cases[i].text);
        if (ids && !ids_equal(ids, n, cases[i].want, cases[i].n))
            print_ids("got", ids, n);
        free(ids);
    }
    unload(&l);
}

static int valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t b = (uint8_t)s[i];
        size_t k = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        if (k == 0 || i + k > n)
            return 0;
        for (size_t j = 1; j < k; j++)
            if (((uint8_t)s[i + j] & 0xC0) != 0x80)
                return 0;
        i += k;
    }
    return 1;
}

/* Random texts from awkward pieces: ids stay in range, the decoded text is
 * valid UTF-8, and valid input comes back unchanged. */
TEST(random_texts) {
    struct loaded spm, bpe;
    if (load_path(&spm, "reference/tokenizer/ggml-vocab-llama-spm.gguf") != 0 ||
        load_path(&bpe, "reference/tokenizer/ggml-vocab-gpt-2.gguf") != 0) {
        CHECK(0);
        return;
    }
    static const char *const pieces[] = {
        "a", "Z", " ", "  ", "\n", "\t", "'s", "'LL", "42", "\xC3\xA9", "\xF0\x9F\xA6\x99", "\xE2\x80\x83", "?!",
        "\xD9\xA3", "\xE3\x80\x80", "\x80", "\xC3", "\xFF", "\xE2\x96",
    };
    enum { N_VALID = 15 }; /* pieces before this index are valid UTF-8 */
    uint64_t rng = 12345;
    char text[256], back[8192];
    int failures = 0;
    for (int iter = 0; iter < 3000 && failures < 5; iter++) {
        size_t len = 0;
        int valid = 1;
        int n_pieces = (int)((rng >> 33) % 12);
        for (int k = 0; k < n_pieces; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t p = (size_t)(rng >> 33) % (sizeof pieces / sizeof pieces[0]);
            valid &= p < N_VALID;
            size_t pl = strlen(pieces[p]);
            memcpy(text + len, pieces[p], pl);
            len += pl;
        }
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        struct loaded *both[2] = { &spm, &bpe };
        for (int k = 0; k < 2; k++) {
            int64_t n;
            int32_t *ids = tokenize(both[k]->tok, text, len, k == 0, &n);
            int ok = ids != NULL;
            for (int64_t i = 0; ok && i < n; i++)
                ok = ids[i] >= 0 && ids[i] < rb_tokenizer_n_vocab(both[k]->tok);
            size_t m = ok ? detok_all(both[k]->tok, ids, n, back, sizeof back) : 0;
            ok = ok && valid_utf8(back, m);
            if (ok && valid)
                ok = m == len && memcmp(back, text, len) == 0;
            if (!ok) {
                printf("  %s: '%.*s' -> '%s'\n", k ? "gpt-2" : "llama-spm", (int)len, text, back);
                failures++;
            }
            CHECK(ok);
            free(ids);
        }
    }
    unload(&spm);
    unload(&bpe);
}

/* The detokenizer's worst case for a vocabulary bounds one push. */
TEST(max_piece) {
    struct loaded l;
    if (load_path(&l, "reference/tokenizer/ggml-vocab-gpt-2.gguf") != 0) {
        CHECK(0);
        return;
    }
    CHECK_EQ_INT(rb_tokenizer_max_piece(l.tok), 3 * 256 + 3); /* longest piece: 128 two-byte chars */
    size_t n;
    const char *p = rb_tokenizer_piece(l.tok, 15496, &n);
    CHECK(p && n == 5 && memcmp(p, "Hello", 5) == 0);
    CHECK(rb_tokenizer_piece(l.tok, 50257, &n) == NULL);
    unload(&l);
}

/* ---- capacity and speed ---- */

TEST(tokenize_cap_and_speed) {
    struct loaded spm, bpe;
    if (load_path(&spm, "reference/tokenizer/ggml-vocab-llama-spm.gguf") != 0 ||
        load_path(&bpe, "reference/tokenizer/ggml-vocab-gpt-2.gguf") != 0) {
        CHECK(0);
        return;
    }
    char err[RB_ERR_MAX];
    int32_t few[2] = { -7, -7 };
    /* a short buffer gets the first ids and the full count */
    CHECK_EQ_INT(rb_tokenize(spm.tok, "Hello world", 11, 1, 1, few, 1, err), 3);
    CHECK_EQ_INT(few[0], 1);
    CHECK_EQ_INT(few[1], -7);
    CHECK_EQ_INT(rb_tokenize(spm.tok, "", 0, 1, 1, few, 2, err), 1);
    CHECK_EQ_INT(rb_tokenize(spm.tok, "", 0, 0, 1, few, 2, err), 0);

    /* 4 KB of mixed text must take milliseconds, not seconds */
    static const char chunk[] = "Once upon a time, in 1984, a llama \xF0\x9F\xA6\x99 said: "
                                "\"I'll tokenize  this\tquickly\" -- \xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE!\n";
    char text[4096];
    size_t len = 0;
    while (len + sizeof chunk - 1 <= sizeof text) {
        memcpy(text + len, chunk, sizeof chunk - 1);
        len += sizeof chunk - 1;
    }
    struct loaded *which[2] = { &spm, &bpe };
    for (int k = 0; k < 2; k++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int64_t n;
        int32_t *ids = tokenize(which[k]->tok, text, len, 0, &n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        printf("  %s: %zu bytes -> %lld tokens in %.2f ms (two passes)\n", k ? "gpt-2" : "llama-spm", len,
               (long long)n, ms);
        CHECK(ids && n > 500);
        CHECK(ms < 250.0); /* generous for sanitizer builds; ~1 ms optimized */
        free(ids);
    }
    unload(&spm);
    unload(&bpe);
}

int main(void) {
    RUN(spm_vectors);
    RUN(bpe_vectors);
    RUN(llama_bpe_vectors);
    RUN(qwen2_vectors);
    RUN(hello_gpt2);
    RUN(spm_roundtrip);
    RUN(reference_prompts);
    RUN(detok_streams_whole_characters);
    RUN(detok_only_well_formed_utf8);
    RUN(detok_bpe_bytes);
    RUN(spm_merge_order);
    RUN(spm_byte_fallback);
    RUN(load_validation);
    RUN(bpe_merge_ranks);
    RUN(bpe_pretokenizer);
    RUN(user_defined_tokens);
    RUN(random_texts);
    RUN(max_piece);
    RUN(tokenize_cap_and_speed);
    return test_summary();
}
