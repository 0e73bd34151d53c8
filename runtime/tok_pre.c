/* tok_pre.c - BPE pre-tokenizers: cutting text into the words that BPE
 * then merges inside, as llama.cpp b4748 does for each tokenizer.ggml.pre.
 *
 * llama.cpp maps its many pre-tokenizer names onto a handful of regex
 * lists; each regex of a list cuts every piece the previous one left. Two
 * regexes (GPT-2's and Llama 3's) run as hand-written code there, with
 * quirks of their own; the others run through std::regex over a text in
 * which every non-ASCII character stands for its Unicode category. Each
 * step below is written to give what llama.cpp's version gives, quirks
 * included, not what the regex would give in another engine:
 *
 *   gpt2     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
 *            (llama.cpp's code also takes a lone \s+, as GPT-2's regex does)
 *   llama3   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *            | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   qwen2    the same with \p{N} one digit at a time (std::regex in
 *            llama.cpp, which for this pattern cuts exactly as the code does)
 *   runs     [class]+ as its own piece: punctuation for "default"/"falcon",
 *            \p{N}+ for "default"
 *   each     every \p{N} alone ("starcoder" and its kin)
 *   digits3  [0-9][0-9][0-9], leftmost first
 *
 * Glossary: cpt = code point; cls = its class bits (CLS_*); a piece is
 * [start, end) in code points, kept as the list of piece ends.
 */
#include <stdio.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

enum { CLS_LETTER = 1, CLS_NUMBER = 2, CLS_SPACE = 4, CLS_PUNCT = 8 };
#define CLS_WORDISH (CLS_LETTER | CLS_NUMBER | CLS_SPACE) /* \s, \p{L}, \p{N}: what "other" is not */

uint8_t rb_pre_class(uint32_t cp) {
    if (rb_cpt_is_whitespace(cp)) return CLS_SPACE;
    if (rb_cpt_is_letter(cp)) return CLS_LETTER;
    if (rb_cpt_is_number(cp)) return CLS_NUMBER;
    return rb_cpt_is_punct(cp) ? CLS_PUNCT : 0;
}

/* ---------------------------------------------------------------- steps */

struct text {
    const uint32_t *cpts;
    const uint8_t *cls;
};

/* Appends piece ends; a piece never has length 0. */
struct ends {
    size_t *v;
    size_t n, last;
};

static void cut(struct ends *e, size_t end) {
    if (end > e->last) {
        e->v[e->n++] = end;
        e->last = end;
    }
}

static uint32_t lower_ascii(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* Length of a contraction at pos ('s 't 'm 'd 're 've 'll), else 0;
 * fold: also in upper case (Llama 3's (?i:...)). */
static size_t contraction(const struct text *t, size_t pos, size_t end, int fold) {
    if (t->cpts[pos] != '\'' || pos + 1 >= end)
        return 0;
    uint32_t a = t->cpts[pos + 1], b = pos + 2 < end ? t->cpts[pos + 2] : 0;
    if (fold) {
        a = lower_ascii(a);
        b = lower_ascii(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* Where a run of whitespace starting at pos ends as a piece: "\s+(?!\S)"
 * leaves the last space to the word after it unless the run ends the piece. */
static size_t space_run_end(const struct text *t, size_t pos, size_t end) {
    size_t n = 0;
    while (pos + n < end && (t->cls[pos + n] & CLS_SPACE))
        n++;
    if (n > 1 && pos + n < end)
        return pos + n - 1;
    return pos + (n ? n : 1); /* n == 0 cannot happen: every character is of some class */
}

static void split_gpt2(const struct text *t, size_t start, size_t end, struct ends *e) {
    for (size_t pos = start; pos < end;) {
        size_t n = contraction(t, pos, end, 0);
        if (n) {
            cut(e, pos += n);
            continue;
        }
        /* " ?X+" for letters, numbers and "other": an optional space joins the run after it */
        int space = t->cpts[pos] == ' ' && pos + 1 < end;
        uint8_t c = t->cls[pos + space] & CLS_WORDISH;
        if (!(c & CLS_SPACE)) {
            pos += (size_t)space;
            while (pos < end && (t->cls[pos] & CLS_WORDISH) == c)
                pos++;
            cut(e, pos);
            continue;
        }
        cut(e, pos = space_run_end(t, pos, end));
    }
}

static void split_llama3(const struct text *t, size_t start, size_t end, size_t max_digits, struct ends *e) {
    for (size_t pos = start; pos < end;) {
        uint32_t cp = t->cpts[pos];
        uint8_t c = t->cls[pos];
        size_t n = contraction(t, pos, end, 1);
        if (n) {
            cut(e, pos += n);
            continue;
        }
        /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        if (cp != '\r' && cp != '\n' && !(c & CLS_NUMBER) &&
            ((c & CLS_LETTER) || (pos + 1 < end && (t->cls[pos + 1] & CLS_LETTER)))) {
            pos++;
            while (pos < end && (t->cls[pos] & CLS_LETTER))
                pos++;
            cut(e, pos);
            continue;
        }
        /* \p{N}{1,max_digits}, repeatedly */
        if (c & CLS_NUMBER) {
            size_t first = pos;
            while (pos < end && (t->cls[pos] & CLS_NUMBER)) {
                if (++pos - first >= max_digits) {
                    cut(e, pos);
                    first = pos;
                }
            }
            cut(e, pos);
            continue;
        }
        /* " ?[^\s\p{L}\p{N}]+[\r\n]*" */
        int space = cp == ' ' && pos + 1 < end;
        if (!(t->cls[pos + space] & CLS_WORDISH)) {
            pos += (size_t)space;
            while (pos < end && !(t->cls[pos] & CLS_WORDISH))
                pos++;
            while (pos < end && (t->cpts[pos] == '\r' || t->cpts[pos] == '\n'))
                pos++;
            cut(e, pos);
            continue;
        }
        /* "\s*[\r\n]+": whitespace up to its last line break */
        size_t last_break = 0;
        for (size_t i = pos; i < end && (t->cls[i] & CLS_SPACE); i++)
            if (t->cpts[i] == '\r' || t->cpts[i] == '\n')
                last_break = i + 1;
        cut(e, pos = last_break ? last_break : space_run_end(t, pos, end));
    }
}

/* The characters of a "[class]+" run; extra: ASCII characters the regex lists besides \p{P}. */
static int in_run_class(const struct text *t, size_t i, uint8_t cls, const char *extra) {
    if (t->cls[i] & cls)
        return 1;
    return extra && t->cpts[i] < 0x80 && t->cpts[i] != 0 && strchr(extra, (int)t->cpts[i]) != NULL;
}

static void split_runs(const struct text *t, size_t start, size_t end, uint8_t cls, const char *extra,
                       struct ends *e) {
    for (size_t i = start + 1; i < end; i++)
        if (in_run_class(t, i, cls, extra) != in_run_class(t, i - 1, cls, extra))
            cut(e, i);
    cut(e, end);
}

static void split_each_number(const struct text *t, size_t start, size_t end, struct ends *e) {
    for (size_t i = start; i < end; i++)
        if (t->cls[i] & CLS_NUMBER) {
            cut(e, i);
            cut(e, i + 1);
        }
    cut(e, end);
}

static int ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }

static void split_digits3(const struct text *t, size_t start, size_t end, struct ends *e) {
    for (size_t i = start; i + 3 <= end;) {
        if (ascii_digit(t->cpts[i]) && ascii_digit(t->cpts[i + 1]) && ascii_digit(t->cpts[i + 2])) {
            cut(e, i);
            cut(e, i += 3);
        } else {
            i++;
        }
    }
    cut(e, end);
}

/* ---------------------------------------------------------------- families */

enum step { S_END, S_GPT2, S_LLAMA3, S_QWEN2, S_PUNCT_RUNS, S_PUNCT_RUNS_BACKTICK, S_NUMBER_RUNS, S_EACH_NUMBER,
            S_DIGITS3 };

/* The regex list of each family, in llama.cpp's order. */
static const uint8_t family_steps[][5] = {
    [RB_PRE_DEFAULT] = { S_PUNCT_RUNS, S_GPT2, S_NUMBER_RUNS, S_DIGITS3, S_END },
    [RB_PRE_GPT2] = { S_GPT2, S_END },
    [RB_PRE_LLAMA3] = { S_LLAMA3, S_END },
    [RB_PRE_QWEN2] = { S_QWEN2, S_END },
    [RB_PRE_STARCODER] = { S_EACH_NUMBER, S_GPT2, S_END },
    [RB_PRE_FALCON] = { S_PUNCT_RUNS_BACKTICK, S_GPT2, S_DIGITS3, S_END },
};

static void run_step(enum step s, const struct text *t, size_t start, size_t end, struct ends *e) {
    switch (s) {
    case S_GPT2: split_gpt2(t, start, end, e); break;
    case S_LLAMA3: split_llama3(t, start, end, 3, e); break;
    case S_QWEN2: split_llama3(t, start, end, 1, e); break;
    case S_PUNCT_RUNS: split_runs(t, start, end, CLS_PUNCT, "$+<=>^~|", e); break;
    case S_PUNCT_RUNS_BACKTICK: split_runs(t, start, end, CLS_PUNCT, "$+<=>^~|`", e); break;
    case S_NUMBER_RUNS: split_runs(t, start, end, CLS_NUMBER, NULL, e); break;
    case S_EACH_NUMBER: split_each_number(t, start, end, e); break;
    case S_DIGITS3: split_digits3(t, start, end, e); break;
    case S_END: break;
    }
}

size_t rb_pre_split(enum rb_pre_family family, const uint32_t *cpts, const uint8_t *cls, size_t n, size_t *ends,
                    size_t *tmp) {
    if (n == 0)
        return 0;
    const struct text t = { cpts, cls };
    size_t n_ends = 1;
    ends[0] = n;
    for (const uint8_t *s = family_steps[family]; *s != S_END; s++) {
        /* each step cuts every piece of the last; the result goes to tmp, then back */
        struct ends e = { tmp, 0, 0 };
        size_t start = 0;
        for (size_t k = 0; k < n_ends; k++) {
            run_step((enum step)*s, &t, start, ends[k], &e);
            start = ends[k];
        }
        memcpy(ends, tmp, e.n * sizeof *ends);
        n_ends = e.n;
    }
    return n_ends;
}

/* ---------------------------------------------------------------- names */

/* Every tokenizer.ggml.pre name llama.cpp b4748 knows, with its family and
 * the flags it sets (BPE defaults otherwise: no BOS, clean_spaces on).
 * "chatglm-bpe" also clears llama.cpp's default BOS id, which rbee's BPE
 * vocabularies never have (no bos_token_id: no BOS). */
struct pre_name {
    const char *name;
    int family; /* enum rb_pre_family, or -1: a family rbee does not implement */
    uint8_t add_bos, ignore_merges, no_clean_spaces;
};

static const struct pre_name pre_names[] = {
    { "default", RB_PRE_DEFAULT, 0, 0, 0 },
    { "llama3", RB_PRE_LLAMA3, 1, 1, 0 },
    { "llama-v3", RB_PRE_LLAMA3, 1, 1, 0 },
    { "llama-bpe", RB_PRE_LLAMA3, 1, 1, 0 },
    { "falcon3", RB_PRE_LLAMA3, 1, 1, 0 },
    { "dbrx", RB_PRE_LLAMA3, 0, 0, 0 },
    { "smaug-bpe", RB_PRE_LLAMA3, 0, 0, 0 },
    { "chatglm-bpe", RB_PRE_LLAMA3, 0, 0, 0 },
    { "qwen2", RB_PRE_QWEN2, 0, 0, 1 },
    { "deepseek-r1-qwen", RB_PRE_QWEN2, 0, 0, 1 },
    { "stablelm2", RB_PRE_QWEN2, 0, 0, 0 },
    { "megrez", RB_PRE_QWEN2, 0, 0, 0 },
    { "gpt-2", RB_PRE_GPT2, 0, 0, 0 },
    { "phi-2", RB_PRE_GPT2, 0, 0, 0 },
    { "jina-es", RB_PRE_GPT2, 0, 0, 0 },
    { "jina-de", RB_PRE_GPT2, 0, 0, 0 },
    { "gigachat", RB_PRE_GPT2, 0, 0, 0 },
    { "jina-v1-en", RB_PRE_GPT2, 0, 0, 0 },
    { "jina-v2-es", RB_PRE_GPT2, 0, 0, 0 },
    { "jina-v2-de", RB_PRE_GPT2, 0, 0, 0 },
    { "jina-v2-code", RB_PRE_GPT2, 0, 0, 0 },
    { "roberta-bpe", RB_PRE_GPT2, 0, 0, 0 },
    { "mpt", RB_PRE_GPT2, 0, 0, 0 },
    { "olmo", RB_PRE_GPT2, 0, 0, 0 },
    { "jais", RB_PRE_GPT2, 0, 0, 0 },
    { "starcoder", RB_PRE_STARCODER, 0, 0, 0 },
    { "refact", RB_PRE_STARCODER, 0, 0, 0 },
    { "command-r", RB_PRE_STARCODER, 0, 0, 1 },
    { "smollm", RB_PRE_STARCODER, 0, 0, 1 },
    { "codeshell", RB_PRE_STARCODER, 0, 0, 0 },
    { "exaone", RB_PRE_STARCODER, 0, 0, 0 },
    { "minerva-7b", RB_PRE_STARCODER, 0, 0, 0 },
    { "falcon", RB_PRE_FALCON, 0, 0, 0 },
    /* known to llama.cpp, but their regexes need classes rbee does not have (\p{M}, \p{S}, CJK ranges) */
    { "deepseek-llm", -1, 0, 0, 0 },
    { "deepseek-coder", -1, 0, 0, 0 },
    { "deepseek-v3", -1, 0, 0, 0 },
    { "poro-chat", -1, 0, 0, 0 },
    { "bloom", -1, 0, 0, 0 },
    { "gpt3-finnish", -1, 0, 0, 0 },
    { "viking", -1, 0, 0, 0 },
    { "tekken", -1, 0, 0, 0 },
    { "chameleon", -1, 0, 0, 0 },
};

int rb_pre_lookup(const char *name, struct rb_pre_config *out, char *err) {
    if (name[0] == '\0') /* absent or empty: llama.cpp's "default" (with a warning there) */
        name = "default";
    for (size_t i = 0; i < sizeof pre_names / sizeof pre_names[0]; i++) {
        const struct pre_name *p = &pre_names[i];
        if (strcmp(p->name, name) != 0)
            continue;
        if (p->family < 0) {
            snprintf(err, RB_ERR_MAX, "tokenizer.ggml.pre: pre-tokenizer '%s' is not supported by rbee", name);
            return -1;
        }
        *out = (struct rb_pre_config){ (enum rb_pre_family)p->family, p->add_bos, p->ignore_merges,
                                       !p->no_clean_spaces };
        return 0;
    }
    snprintf(err, RB_ERR_MAX, "tokenizer.ggml.pre: unknown pre-tokenizer '%.64s'", name);
    return -1;
}

const char *rb_pre_family_name(enum rb_pre_family f) {
    static const char *const names[] = {
        [RB_PRE_DEFAULT] = "default", [RB_PRE_GPT2] = "gpt-2", [RB_PRE_LLAMA3] = "llama3",
        [RB_PRE_QWEN2] = "qwen2", [RB_PRE_STARCODER] = "starcoder", [RB_PRE_FALCON] = "falcon",
    };
    return names[f];
}
