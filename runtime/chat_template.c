/* chat_template.c - a conversation -> prompt text, the way llama.cpp b4748's
 * llama_chat_apply_template does it (src/llama-chat.cpp at c392e50): no
 * Jinja engine; the template text is only searched for marker substrings
 * that pick one of a fixed set of formatters, in a fixed order (the first
 * match wins, so the order is part of the behaviour). A template that is
 * exactly a built-in name selects that formatter directly.
 *
 * Glossary: "trim" = ASCII whitespace (" \t\n\v\f\r", C-locale isspace)
 * removed from both ends, as the reference's trim() does. Messages are
 * NUL-terminated strings, as in the reference's C API; roles other than
 * system/user/assistant are passed through where the reference does so.
 */
#include <stdio.h>
#include <string.h>

#include "rbee.h"

enum tmpl {
    T_CHATML, T_LLAMA2, T_LLAMA2_SYS, T_LLAMA2_SYS_BOS, T_LLAMA2_SYS_STRIP,
    T_MISTRAL_V1, T_MISTRAL_V3, T_MISTRAL_V3_TEKKEN, T_MISTRAL_V7,
    T_PHI3, T_PHI4, T_FALCON3, T_ZEPHYR, T_MONARCH, T_GEMMA, T_ORION, T_OPENCHAT,
    T_VICUNA, T_VICUNA_ORCA, T_DEEPSEEK, T_DEEPSEEK2, T_DEEPSEEK3, T_COMMAND_R,
    T_LLAMA3, T_CHATGLM3, T_CHATGLM4, T_GLMEDGE, T_MINICPM, T_EXAONE3,
    T_RWKV_WORLD, T_GRANITE, T_GIGACHAT, T_MEGREZ,
    T_UNKNOWN
};

/* Sorted by name (byte order), as the reference lists them. */
static const struct { const char *name; enum tmpl id; } builtin[] = {
    { "chatglm3", T_CHATGLM3 },       { "chatglm4", T_CHATGLM4 },
    { "chatml", T_CHATML },           { "command-r", T_COMMAND_R },
    { "deepseek", T_DEEPSEEK },       { "deepseek2", T_DEEPSEEK2 },
    { "deepseek3", T_DEEPSEEK3 },     { "exaone3", T_EXAONE3 },
    { "falcon3", T_FALCON3 },         { "gemma", T_GEMMA },
    { "gigachat", T_GIGACHAT },       { "glmedge", T_GLMEDGE },
    { "granite", T_GRANITE },         { "llama2", T_LLAMA2 },
    { "llama2-sys", T_LLAMA2_SYS },   { "llama2-sys-bos", T_LLAMA2_SYS_BOS },
    { "llama2-sys-strip", T_LLAMA2_SYS_STRIP }, { "llama3", T_LLAMA3 },
    { "megrez", T_MEGREZ },           { "minicpm", T_MINICPM },
    { "mistral-v1", T_MISTRAL_V1 },   { "mistral-v3", T_MISTRAL_V3 },
    { "mistral-v3-tekken", T_MISTRAL_V3_TEKKEN }, { "mistral-v7", T_MISTRAL_V7 },
    { "monarch", T_MONARCH },         { "openchat", T_OPENCHAT },
    { "orion", T_ORION },             { "phi3", T_PHI3 },
    { "phi4", T_PHI4 },               { "rwkv-world", T_RWKV_WORLD },
    { "vicuna", T_VICUNA },           { "vicuna-orca", T_VICUNA_ORCA },
    { "zephyr", T_ZEPHYR },
};
#define N_BUILTIN (sizeof builtin / sizeof builtin[0])
_Static_assert(N_BUILTIN == T_UNKNOWN, "one name per formatter");

const char *rbee_chat_template_builtin(size_t i) {
    return i < N_BUILTIN ? builtin[i].name : NULL;
}

static const char *name_of(enum tmpl t) {
    for (size_t i = 0; i < N_BUILTIN; i++)
        if (builtin[i].id == t) return builtin[i].name;
    return NULL;
}

/* ------------------------------------------------------------ detection */

static int has(const char *tmpl, const char *marker) { return strstr(tmpl, marker) != NULL; }

static enum tmpl detect(const char *tmpl) {
    for (size_t i = 0; i < N_BUILTIN; i++)
        if (!strcmp(tmpl, builtin[i].name)) return builtin[i].id;
    if (has(tmpl, "<|im_start|>"))
        return has(tmpl, "<|im_sep|>") ? T_PHI4 : T_CHATML;
    if (!strncmp(tmpl, "mistral", 7) || has(tmpl, "[INST]")) {
        if (has(tmpl, "[SYSTEM_PROMPT]")) return T_MISTRAL_V7;
        /* the official mistral v1 / v3 / v3-tekken templates */
        if (has(tmpl, "' [INST] ' + system_message") || has(tmpl, "[AVAILABLE_TOOLS]")) {
            if (has(tmpl, " [INST]")) return T_MISTRAL_V1;
            if (has(tmpl, "\"[INST]\"")) return T_MISTRAL_V3_TEKKEN;
            return T_MISTRAL_V3;
        }
        if (has(tmpl, "content.strip()")) return T_LLAMA2_SYS_STRIP;
        if (has(tmpl, "bos_token + '[INST]")) return T_LLAMA2_SYS_BOS;
        if (has(tmpl, "<<SYS>>")) return T_LLAMA2_SYS;
        return T_LLAMA2;
    }
    if (has(tmpl, "<|assistant|>") && has(tmpl, "<|end|>")) return T_PHI3;
    if (has(tmpl, "<|assistant|>") && has(tmpl, "<|user|>"))
        return has(tmpl, "</s>") ? T_FALCON3 : T_GLMEDGE;
    if (has(tmpl, "<|user|>") && has(tmpl, "<|endoftext|>")) return T_ZEPHYR;
    if (has(tmpl, "bos_token + message['role']")) return T_MONARCH;
    if (has(tmpl, "<start_of_turn>")) return T_GEMMA;
    if (has(tmpl, "'\\n\\nAssistant: ' + eos_token")) return T_ORION;
    if (has(tmpl, "GPT4 Correct ")) return T_OPENCHAT;
    if (has(tmpl, "USER: ") && has(tmpl, "ASSISTANT: "))
        return has(tmpl, "SYSTEM: ") ? T_VICUNA_ORCA : T_VICUNA;
    if (has(tmpl, "### Instruction:") && has(tmpl, "<|EOT|>")) return T_DEEPSEEK;
    if (has(tmpl, "<|START_OF_TURN_TOKEN|>") && has(tmpl, "<|USER_TOKEN|>")) return T_COMMAND_R;
    if (has(tmpl, "<|start_header_id|>") && has(tmpl, "<|end_header_id|>")) return T_LLAMA3;
    if (has(tmpl, "[gMASK]sop")) return T_CHATGLM3;
    if (has(tmpl, "[gMASK]<sop>")) return T_CHATGLM4;
    if (has(tmpl, "<\xe7\x94\xa8\xe6\x88\xb7>")) return T_MINICPM; /* <用户> */
    if (has(tmpl, "'Assistant: ' + message['content'] + eos_token")) return T_DEEPSEEK2;
    if (has(tmpl, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>") && has(tmpl, "<\xef\xbd\x9c" "User\xef\xbd\x9c>") &&
        has(tmpl, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"))
        return T_DEEPSEEK3; /* <｜Assistant｜>, <｜User｜>, <｜end▁of▁sentence｜> */
    if (has(tmpl, "[|system|]") && has(tmpl, "[|assistant|]") && has(tmpl, "[|endofturn|]")) return T_EXAONE3;
    if (has(tmpl, "rwkv-world")) return T_RWKV_WORLD;
    if (has(tmpl, "<|start_of_role|>")) return T_GRANITE;
    if (has(tmpl, "message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]"))
        return T_GIGACHAT;
    if (has(tmpl, "<|role_start|>")) return T_MEGREZ;
    return T_UNKNOWN;
}

const char *rbee_chat_template_detect(const char *tmpl) {
    return tmpl ? name_of(detect(tmpl)) : NULL;
}

/* ------------------------------------------------------------ output */

/* Counts every byte and copies those that fit, so one pass both sizes and
 * fills the caller's buffer. */
struct sink { char *out; size_t cap, len; };

static void put(struct sink *s, const char *p, size_t n) {
    if (s->len < s->cap) {
        size_t k = s->cap - s->len < n ? s->cap - s->len : n;
        memcpy(s->out + s->len, p, k);
    }
    s->len += n;
}

static void puts_(struct sink *s, const char *p) { put(s, p, strlen(p)); }

static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static void put_trimmed(struct sink *s, const char *p) {
    size_t b = 0, e = strlen(p);
    while (b < e && is_space(p[b])) b++;
    while (e > b && is_space(p[e - 1])) e--;
    put(s, p + b, e - b);
}

static int is_role(const struct rbee_chat_message *m, const char *role) { return !strcmp(m->role, role); }

/* ------------------------------------------------------------ formatters */

/* The mistral v1 / v3 / v3-tekken family: a turn opens with [INST] and
 * closes after the assistant's message; systems are paragraphs inside it. */
static void fmt_mistral(struct sink *s, enum tmpl t, const struct rbee_chat_message *msg, size_t n) {
    const char *lead = t == T_MISTRAL_V1 ? " " : "";
    const char *trail = t == T_MISTRAL_V3_TEKKEN ? "" : " ";
    int inside = 0;
    for (size_t i = 0; i < n; i++) {
        if (!inside) { puts_(s, lead); puts_(s, "[INST]"); puts_(s, trail); inside = 1; }
        if (is_role(&msg[i], "system")) { puts_(s, msg[i].content); puts_(s, "\n\n"); }
        else if (is_role(&msg[i], "user")) { puts_(s, msg[i].content); puts_(s, lead); puts_(s, "[/INST]"); }
        else {
            puts_(s, trail);
            if (t == T_MISTRAL_V3) put_trimmed(s, msg[i].content);
            else puts_(s, msg[i].content);
            puts_(s, "</s>");
            inside = 0;
        }
    }
}

/* llama2 and its variants: the prompt always opens with "[INST] " (BOS is
 * the tokenizer's); an assistant message closes the turn. */
static void fmt_llama2(struct sink *s, enum tmpl t, const struct rbee_chat_message *msg, size_t n) {
    int inside = 1;
    puts_(s, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        if (!inside) { puts_(s, t == T_LLAMA2_SYS_BOS ? "<s>[INST] " : "[INST] "); inside = 1; }
        void (*content)(struct sink *, const char *) = t == T_LLAMA2_SYS_STRIP ? put_trimmed : puts_;
        if (is_role(&msg[i], "system")) {
            /* without <<SYS>> support the system text still goes in, as a line */
            if (t != T_LLAMA2) { puts_(s, "<<SYS>>\n"); content(s, msg[i].content); puts_(s, "\n<</SYS>>\n\n"); }
            else { content(s, msg[i].content); puts_(s, "\n"); }
        } else if (is_role(&msg[i], "user")) {
            content(s, msg[i].content); puts_(s, " [/INST]");
        } else {
            content(s, msg[i].content); puts_(s, "</s>");
            inside = 0;
        }
    }
}

/* gemma has no system role: the (trimmed) system text is held until the
 * next user turn and written at its start; "assistant" is "model". */
static void fmt_gemma(struct sink *s, const struct rbee_chat_message *msg, size_t n, int add_ass) {
    const char *sys = NULL; /* pending system text, untrimmed */
    for (size_t i = 0; i < n; i++) {
        if (is_role(&msg[i], "system")) { sys = msg[i].content; continue; }
        int ass = is_role(&msg[i], "assistant"), model = ass || is_role(&msg[i], "model");
        puts_(s, "<start_of_turn>");
        puts_(s, ass ? "model" : msg[i].role);
        puts_(s, "\n");
        if (sys && !model) {
            struct sink probe = { NULL, 0, 0 };
            put_trimmed(&probe, sys);
            if (probe.len) { put_trimmed(s, sys); puts_(s, "\n\n"); sys = NULL; }
        }
        put_trimmed(s, msg[i].content);
        puts_(s, "<end_of_turn>\n");
    }
    if (add_ass) puts_(s, "<start_of_turn>model\n");
}

/* Formatters of the form prefix(role) + content + suffix, one per message. */
static void fmt_simple(struct sink *s, enum tmpl t, const struct rbee_chat_message *msg, size_t n, int add_ass) {
    const char *ass = NULL; /* what opens the assistant's turn */
    switch (t) {
    case T_CHATML: ass = "<|im_start|>assistant\n"; break;
    case T_PHI3: case T_FALCON3: case T_ZEPHYR: ass = "<|assistant|>\n"; break;
    case T_PHI4: ass = "<|im_start|>assistant<|im_sep|>"; break;
    case T_MONARCH: ass = "<s>assistant\n"; break;
    case T_LLAMA3: ass = "<|start_header_id|>assistant<|end_header_id|>\n\n"; break;
    case T_CHATGLM3: case T_CHATGLM4: case T_GLMEDGE: ass = "<|assistant|>"; break;
    case T_GRANITE: ass = "<|start_of_role|>assistant<|end_of_role|>\n"; break;
    case T_MEGREZ: ass = "<|role_start|>assistant<|role_end|>"; break;
    default: break;
    }
    if (t == T_CHATGLM3) puts_(s, "[gMASK]sop");
    if (t == T_CHATGLM4) puts_(s, "[gMASK]<sop>");
    for (size_t i = 0; i < n; i++) {
        const char *role = msg[i].role, *c = msg[i].content;
        switch (t) {
        case T_CHATML:
            puts_(s, "<|im_start|>"); puts_(s, role); puts_(s, "\n"); puts_(s, c); puts_(s, "<|im_end|>\n"); break;
        case T_PHI3:
            puts_(s, "<|"); puts_(s, role); puts_(s, "|>\n"); puts_(s, c); puts_(s, "<|end|>\n"); break;
        case T_PHI4:
            puts_(s, "<|im_start|>"); puts_(s, role); puts_(s, "<|im_sep|>"); puts_(s, c); puts_(s, "<|im_end|>"); break;
        case T_FALCON3:
            puts_(s, "<|"); puts_(s, role); puts_(s, "|>\n"); puts_(s, c); puts_(s, "\n"); break;
        case T_ZEPHYR:
            puts_(s, "<|"); puts_(s, role); puts_(s, "|>\n"); puts_(s, c); puts_(s, "<|endoftext|>\n"); break;
        case T_MONARCH: /* BOS inside the history, except before the first message */
            if (i) puts_(s, "<s>");
            puts_(s, role); puts_(s, "\n"); puts_(s, c); puts_(s, "</s>\n"); break;
        case T_LLAMA3:
            puts_(s, "<|start_header_id|>"); puts_(s, role); puts_(s, "<|end_header_id|>\n\n");
            put_trimmed(s, c); puts_(s, "<|eot_id|>"); break;
        case T_CHATGLM3:
            puts_(s, "<|"); puts_(s, role); puts_(s, "|>\n "); puts_(s, c); break;
        case T_CHATGLM4: case T_GLMEDGE:
            puts_(s, "<|"); puts_(s, role); puts_(s, "|>\n"); puts_(s, c); break;
        case T_GRANITE:
            puts_(s, "<|start_of_role|>"); puts_(s, role); puts_(s, "<|end_of_role|>");
            if (!strcmp(role, "assistant_tool_call")) puts_(s, "<|tool_call|>");
            puts_(s, c); puts_(s, "<|end_of_text|>\n"); break;
        case T_MEGREZ:
            puts_(s, "<|role_start|>"); puts_(s, role); puts_(s, "<|role_end|>"); puts_(s, c); puts_(s, "<|turn_end|>");
            break;
        default: break;
        }
    }
    if (add_ass && ass) puts_(s, ass);
}

/* Formatters that switch on the role (system / user / anything else). */
static void fmt_by_role(struct sink *s, enum tmpl t, const struct rbee_chat_message *msg, size_t n, int add_ass) {
    const char *pending = NULL; /* orion: the system text waiting for a user turn */
    for (size_t i = 0; i < n; i++) {
        const char *c = msg[i].content;
        int sys = is_role(&msg[i], "system"), user = is_role(&msg[i], "user");
        int ass = is_role(&msg[i], "assistant");
        switch (t) {
        case T_MISTRAL_V7:
            if (sys) { puts_(s, "[SYSTEM_PROMPT] "); puts_(s, c); puts_(s, "[/SYSTEM_PROMPT]"); }
            else if (user) { puts_(s, "[INST] "); puts_(s, c); puts_(s, "[/INST]"); }
            else { puts_(s, " "); puts_(s, c); puts_(s, "</s>"); }
            break;
        case T_ORION:
            if (sys) pending = c;
            else if (user) {
                puts_(s, "Human: ");
                if (pending && *pending) { puts_(s, pending); puts_(s, "\n\n"); pending = NULL; }
                puts_(s, c); puts_(s, "\n\nAssistant: </s>");
            } else { puts_(s, c); puts_(s, "</s>"); }
            break;
        case T_OPENCHAT:
            if (sys) { puts_(s, c); puts_(s, "<|end_of_turn|>"); }
            else {
                char first = msg[i].role[0]; /* the role with its first letter in upper case */
                if (first >= 'a' && first <= 'z') first = (char)(first - 'a' + 'A');
                puts_(s, "GPT4 Correct ");
                if (first) { put(s, &first, 1); puts_(s, msg[i].role + 1); }
                puts_(s, ": "); puts_(s, c); puts_(s, "<|end_of_turn|>");
            }
            break;
        case T_VICUNA: case T_VICUNA_ORCA:
            if (sys && t == T_VICUNA_ORCA) { puts_(s, "SYSTEM: "); puts_(s, c); puts_(s, "\n"); }
            else if (sys) { puts_(s, c); puts_(s, "\n\n"); }
            else if (user) { puts_(s, "USER: "); puts_(s, c); puts_(s, "\n"); }
            else if (ass) { puts_(s, "ASSISTANT: "); puts_(s, c); puts_(s, "</s>\n"); }
            break;
        case T_DEEPSEEK:
            if (sys) puts_(s, c);
            else if (user) { puts_(s, "### Instruction:\n"); puts_(s, c); puts_(s, "\n"); }
            else if (ass) { puts_(s, "### Response:\n"); puts_(s, c); puts_(s, "\n<|EOT|>\n"); }
            break;
        case T_COMMAND_R:
            if (sys || user || ass) {
                puts_(s, sys ? "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>" : user ? "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>"
                                                                             : "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>");
                put_trimmed(s, c); puts_(s, "<|END_OF_TURN_TOKEN|>");
            }
            break;
        case T_MINICPM:
            if (user) { puts_(s, "<\xe7\x94\xa8\xe6\x88\xb7>"); put_trimmed(s, c); puts_(s, "<AI>"); }
            else put_trimmed(s, c);
            break;
        case T_DEEPSEEK2:
            if (sys) { puts_(s, c); puts_(s, "\n\n"); }
            else if (user) { puts_(s, "User: "); puts_(s, c); puts_(s, "\n\n"); }
            else if (ass) { puts_(s, "Assistant: "); puts_(s, c); puts_(s, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"); }
            break;
        case T_DEEPSEEK3:
            if (sys) { puts_(s, c); puts_(s, "\n\n"); }
            else if (user) { puts_(s, "<\xef\xbd\x9c" "User\xef\xbd\x9c>"); puts_(s, c); }
            else if (ass) {
                puts_(s, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"); puts_(s, c);
                puts_(s, "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>");
            }
            break;
        case T_EXAONE3:
            if (sys) { puts_(s, "[|system|]"); put_trimmed(s, c); puts_(s, "[|endofturn|]\n"); }
            else if (user) { puts_(s, "[|user|]"); put_trimmed(s, c); puts_(s, "\n"); }
            else if (ass) { puts_(s, "[|assistant|]"); put_trimmed(s, c); puts_(s, "[|endofturn|]\n"); }
            break;
        case T_RWKV_WORLD:
            if (user) { puts_(s, "User: "); puts_(s, c); puts_(s, "\n\nAssistant:"); }
            else { puts_(s, c); puts_(s, "\n\n"); }
            break;
        case T_GIGACHAT: /* only a first system message counts; later ones are dropped */
            if (i == 0) { puts_(s, "<s>"); if (sys) { puts_(s, c); puts_(s, "<|message_sep|>"); break; } }
            if (user) {
                puts_(s, "user<|role_sep|>"); puts_(s, c);
                puts_(s, "<|message_sep|>available functions<|role_sep|>[]<|message_sep|>");
            } else if (ass) { puts_(s, "assistant<|role_sep|>"); puts_(s, c); puts_(s, "<|message_sep|>"); }
            break;
        default: break;
        }
    }
    if (t == T_GIGACHAT && n == 0) puts_(s, "<s>");
    if (!add_ass) return;
    switch (t) {
    case T_OPENCHAT: puts_(s, "GPT4 Correct Assistant:"); break;
    case T_VICUNA: case T_VICUNA_ORCA: puts_(s, "ASSISTANT:"); break;
    case T_DEEPSEEK: puts_(s, "### Response:\n"); break;
    case T_COMMAND_R: puts_(s, "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"); break;
    case T_DEEPSEEK2: puts_(s, "Assistant:"); break;
    case T_DEEPSEEK3: puts_(s, "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"); break;
    case T_EXAONE3: puts_(s, "[|assistant|]"); break;
    case T_GIGACHAT: puts_(s, "assistant<|role_sep|>"); break;
    default: break; /* mistral-v7, orion, minicpm, rwkv-world add nothing */
    }
}

/* ------------------------------------------------------------ entry */

int64_t rbee_chat_apply_template(const char *tmpl, const struct rbee_chat_message *msg, size_t n_msg,
                                 int add_assistant, char *out, size_t cap, char *err) {
    if (!tmpl) {
        snprintf(err, RBEE_ERR_MAX, "no chat template");
        return -1;
    }
    enum tmpl t = detect(tmpl);
    if (t == T_UNKNOWN) {
        snprintf(err, RBEE_ERR_MAX, "unrecognized chat template (not a built-in name, and none of the "
                                    "built-in templates' markers are in its text)");
        return -1;
    }
    for (size_t i = 0; i < n_msg; i++)
        if (!msg[i].role || !msg[i].content) {
            snprintf(err, RBEE_ERR_MAX, "message %zu has no %s", i + 1, msg[i].role ? "content" : "role");
            return -1;
        }
    struct sink s = { out, cap, 0 };
    switch (t) {
    case T_MISTRAL_V1: case T_MISTRAL_V3: case T_MISTRAL_V3_TEKKEN: fmt_mistral(&s, t, msg, n_msg); break;
    case T_LLAMA2: case T_LLAMA2_SYS: case T_LLAMA2_SYS_BOS: case T_LLAMA2_SYS_STRIP:
        fmt_llama2(&s, t, msg, n_msg); break;
    case T_GEMMA: fmt_gemma(&s, msg, n_msg, add_assistant); break;
    case T_CHATML: case T_PHI3: case T_PHI4: case T_FALCON3: case T_ZEPHYR: case T_MONARCH: case T_LLAMA3:
    case T_CHATGLM3: case T_CHATGLM4: case T_GLMEDGE: case T_GRANITE: case T_MEGREZ:
        fmt_simple(&s, t, msg, n_msg, add_assistant); break;
    default: fmt_by_role(&s, t, msg, n_msg, add_assistant); break;
    }
    if (s.len < cap) out[s.len] = 0;
    return (int64_t)s.len;
}
