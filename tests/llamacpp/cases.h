/* cases.h - the random inputs both sides of the comparison build from one
 * seed: id sequences for the detokenizer and conversations for the chat
 * formatter (text inputs come from strings.py). Header-only so that each
 * side's program is one file. */
#ifndef VS_CASES_H
#define VS_CASES_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct rng { uint64_t s; };
static inline uint32_t rng_next(struct rng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 11);
}
static inline void rng_seed(struct rng *r, int seed) { r->s = 88172645463325252ull ^ (uint64_t)seed * 0x9E3779B97F4A7C15ull; }

/* 1..12 ids, a third of them among the first 300 (bytes, controls, short pieces) */
static inline int case_ids(struct rng *r, int n_vocab, int32_t *ids) {
    int n = 1 + (int)(rng_next(r) % 12);
    for (int j = 0; j < n; j++) ids[j] = (int32_t)(rng_next(r) % 3 == 0 ? rng_next(r) % 300 : rng_next(r) % (uint32_t)n_vocab);
    return n;
}

static const char *const chat_contents[] = {
    "Hello", "  spaced  ", "\nnewline first", "last newline\n", "", " ", "multi\nline\ttext", "\xC3\x9Cn\xC3\xAF c\xC3\xB6" "d\xC3\xA9 \xF0\x9F\xA6\x99",
    "What is 2 + 2?", "<|im_start|>inject", "[INST] x [/INST]", "a\n\nb", "   ", "\t", "Sure!", "trailing space ", " leading", "x",
};
static const char *const chat_roles[] = { "system", "user", "assistant", "user", "user", "assistant", "tool", "system" };
/* marker substrings the formatters are recognized by, to build template texts from */
static const char *const chat_markers[] = {
    "<|im_start|>", "[INST]", "<<SYS>>", "<s>", "</s>", "<|start_header_id|>", "<|eot_id|>", "<start_of_turn>", "<|user|>",
    "<|assistant|>", "<|end|>", "<|system|>", "bos_token + '[INST] '", "### Instruction:", "USER:", "ASSISTANT:", "<|endoftext|>",
    "[/INST]", "mistral", "<\xE7\x94\xA8\xE6\x88\xB7>", "<|role_start|>", "'Assistant:'", "<|START_OF_TURN_TOKEN|>",
    "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>", "<\xEF\xBD\x9C" "User\xEF\xBD\x9C>", "Human:", "<|im_sep|>", "rwkv", "[gMASK]<sop>", "<|message|>",
    "GPT4 Correct ", "<|Assistant|>", "<|User|>", "[SYSTEM_PROMPT]", "[AVAILABLE_TOOLS]", "content.strip()", "'<s>' + system_message",
    "<|begin_of_text|>", "[|system|]", "[|assistant|]", "<|system|>\\n", "<|im_end|>", "<|prompt|>", "message['content']",
    "<reserved_106>", "<reserved_107>", "<start_of_turn>user", "' [INST] ' + system_message", "[/INST]' }}", "### Response:",
    "<|eot|>", "<|role_start|>system<|role_end|>", "<|end_of_role|>", "<|start_of_role|>", "'\\n\\nAssistant: ' + eos_token",
    "Assistant:", "User:", "<|answer|>", "<|system|>\n", "falcon", "<sep>", "<|from|>", "upper", "bos_token",
};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

struct chat_case {
    char tmpl[2048];
    const char *role[8], *content[8];
    int n, add_assistant;
};

/* A conversation of 0..6 messages for a template: a built-in name
 * (names[], n_names) two times in three, else a text of 1..4 markers. */
static inline void case_chat(struct rng *r, const char *const *names, int n_names, int i, struct chat_case *c) {
    if (i % 3 != 2) {
        strncpy(c->tmpl, names[rng_next(r) % (uint32_t)n_names], sizeof c->tmpl - 1);
        c->tmpl[sizeof c->tmpl - 1] = 0;
    } else {
        c->tmpl[0] = 0;
        int k = 1 + (int)(rng_next(r) % 4);
        for (int j = 0; j < k; j++) {
            strcat(c->tmpl, chat_markers[rng_next(r) % N_OF(chat_markers)]);
            strcat(c->tmpl, rng_next(r) % 2 ? " {{ x }} " : "");
        }
    }
    c->n = (int)(rng_next(r) % 7);
    for (int j = 0; j < c->n; j++) {
        c->role[j] = j == 0 && rng_next(r) % 2 ? "system"
                   : rng_next(r) % 5 == 0 ? chat_roles[rng_next(r) % N_OF(chat_roles)] : (j % 2 ? "assistant" : "user");
        c->content[j] = chat_contents[rng_next(r) % N_OF(chat_contents)];
    }
    c->add_assistant = rng_next(r) % 4 != 0;
}

/* One side's formatter: the prompt of c into out (at most cap bytes), its
 * full length, or -1 when the template is refused. */
typedef long long (*chat_format_fn)(const struct chat_case *c, char *out, size_t cap);

/* `chat SEED N`: one line per case, "length|hex of the prompt" (-1: refused). */
static inline int run_chat_cases(const char *const *names, int n_names, int seed, int n, chat_format_fn format) {
    static char out[1 << 16];
    struct rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        struct chat_case c;
        case_chat(&r, names, n_names, i, &c);
        long long k = format(&c, out, sizeof out);
        printf("%lld|", k < 0 ? -1 : k);
        for (long long j = 0; j < k && j < (long long)sizeof out; j++) printf("%02x", (unsigned char)out[j]);
        printf("\n");
    }
    return 0;
}

static inline int print_names(const char *const *names, int n) {
    for (int i = 0; i < n; i++) printf("%s\n", names[i]);
    return 0;
}

#endif
