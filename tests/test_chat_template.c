/* test_chat_template.c - rbee_chat_apply_template against llama.cpp b4748:
 * every conversation of ../shared/reference/chat/ (every .txt: template text and
 * its same_as_builtin names), the expected outputs of the reference's own
 * tests/test-chat-template.cpp (one conversation, every family), and
 * conversations of other shapes (no system, only a system, assistant last,
 * repeated roles, none) whose expected text follows from the reference's
 * formatter code (src/llama-chat.cpp at c392e50). Also detection order and
 * the buffer contract. */
#include <unistd.h>

#include "test.h"
#include "chat_ref.h"

typedef struct rbee_chat_message msg_t;

static char out[1 << 16];

/* The formatted text (in out), or "<error: ...>". */
static const char *fmt(const char *tmpl, const msg_t *m, size_t n, int add_ass) {
    char err[RBEE_ERR_MAX];
    int64_t len = rbee_chat_apply_template(tmpl, m, n, add_ass, out, sizeof out, err);
    if (len < 0) snprintf(out, sizeof out, "<error: %s>", err);
    else if ((size_t)len >= sizeof out) snprintf(out, sizeof out, "<too long: %lld>", (long long)len);
    return out;
}

/* ------------------------------------------------------------ reference files */

static void check_conversation(const char *path, const struct chat_ref *r, int i, void *user) {
    (void)user;
    char err[RBEE_ERR_MAX];
    const struct chat_ref_conv *c = &r->conv[i];
    int64_t got = rbee_chat_apply_template(r->tmpl, c->msgs, c->n_msgs, 1, out, sizeof out, err);
    CHECK_MSG(got == (int64_t)c->prompt_len && !memcmp(out, c->prompt, c->prompt_len),
              "%s: conversation %d:\n    got  [%s]\n    want [%s]", path, i + 1, got >= 0 ? out : err, c->prompt);
    /* the built-in names that give the same prompt */
    char names[256];
    snprintf(names, sizeof names, "%s", c->same_as ? c->same_as : "");
    for (char *save, *name = strtok_r(names, " ,", &save); name; name = strtok_r(NULL, " ,", &save)) {
        const char *g = fmt(name, c->msgs, c->n_msgs, 1);
        CHECK_MSG(!strcmp(g, c->prompt), "%s: built-in %s:\n    got  [%s]\n    want [%s]", path, name, g, c->prompt);
    }
}

TEST(reference_files) {
    int n = chat_ref_each(check_conversation, NULL);
    CHECK(n >= 9);
    printf("  %d conversations\n", n);
}

/* The tokens: lines: the prompt tokenized as llama.cpp tokenizes a chat
 * prompt (the vocab's BOS, special tokens parsed), through a vocab-only
 * load of ../shared/reference/tokenizer/VOCAB or ../shared/models/VOCAB. */
static void check_tokens(const char *path, const struct chat_ref *r, int i, void *user) {
    const struct chat_ref_conv *c = &r->conv[i];
    if (!c->vocab) return;
    char rel[600], vocab[1024], err[RBEE_ERR_MAX];
    snprintf(rel, sizeof rel, "reference/tokenizer/%s", c->vocab);
    test_path(vocab, sizeof vocab, rel);
    if (access(vocab, R_OK)) {
        snprintf(rel, sizeof rel, "models/%s", c->vocab);
        test_path(vocab, sizeof vocab, rel);
    }
    rbee_model *m = NULL;
    if (rbee_vocab_load(&m, vocab, err)) { TEST_FAIL_AT("%s: %s", vocab, err); return; }
    int32_t ids[CHAT_REF_MAX_TOKENS];
    int64_t n = rbee_tokenize(m, c->prompt, c->prompt_len, -1, 1, ids, CHAT_REF_MAX_TOKENS, err);
    CHECK_MSG(n == c->n_tokens && !memcmp(ids, c->tokens, (size_t)n * sizeof *ids),
              "%s conversation %d on %s: %lld tokens, want %d", path, i + 1, c->vocab, (long long)n, c->n_tokens);
    for (int k = 0; k < n && k < c->n_tokens; k++)
        if (ids[k] != c->tokens[k]) {
            printf("    first difference at %d: %d, want %d\n", k, ids[k], c->tokens[k]);
            break;
        }
    (*(int *)user)++;
    rbee_model_free(m);
}

TEST(reference_tokens) {
    int n_checked = 0;
    chat_ref_each(check_tokens, &n_checked);
    CHECK_MSG(n_checked >= 4, "only %d conversations with tokens", n_checked);
}

/* The real zephyr-7b-beta template has no <|endoftext|> (it writes
 * eos_token), so the reference formats it as glmedge; rbee does the same. */
TEST(zephyr_template_is_glmedge_as_in_the_reference) {
    const char *z = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
                    "message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'"
                    "  + message['content'] + eos_token }}\n{% endif %}\n{% endfor %}";
    CHECK_STR(rbee_chat_template_detect(z), "glmedge");
}

/* ------------------------------------------------------------ the reference's own test */

/* tests/test-chat-template.cpp at c392e50: one conversation and what
 * llama_chat_apply_template makes of it for each built-in formatter. */
static const msg_t conv6[] = {
    { "system", "You are a helpful assistant" }, { "user", "Hello" }, { "assistant", "Hi there" },
    { "user", "Who are you" }, { "assistant", "   I am an assistant   " }, { "user", "Another question" },
};

static const struct { const char *name, *want; } upstream[] = {
    { "chatml", "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
                "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
                "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
                "<|im_start|>assistant\n" },
    { "llama2", "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an "
                "assistant   </s>[INST] Another question [/INST]" },
    { "mistral", "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an "
                 "assistant   </s>[INST] Another question [/INST]" },
    { "llama2-sys-bos", "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] "
                        "Who are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]" },
    { "llama2-sys-strip", "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] "
                          "Who are you [/INST]I am an assistant</s>[INST] Another question [/INST]" },
    { "monarch", "system\nYou are a helpful assistant</s>\n<s>user\nHello</s>\n<s>assistant\nHi there</s>\n<s>user\n"
                 "Who are you</s>\n<s>assistant\n   I am an assistant   </s>\n<s>user\nAnother question</s>\n"
                 "<s>assistant\n" },
    { "gemma", "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there"
               "<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant"
               "<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n" },
    { "orion", "Human: You are a helpful assistant\n\nHello\n\nAssistant: </s>Hi there</s>Human: Who are you\n\n"
               "Assistant: </s>   I am an assistant   </s>Human: Another question\n\nAssistant: </s>" },
    { "openchat", "You are a helpful assistant<|end_of_turn|>GPT4 Correct User: Hello<|end_of_turn|>GPT4 Correct "
                  "Assistant: Hi there<|end_of_turn|>GPT4 Correct User: Who are you<|end_of_turn|>GPT4 Correct "
                  "Assistant:    I am an assistant   <|end_of_turn|>GPT4 Correct User: Another question"
                  "<|end_of_turn|>GPT4 Correct Assistant:" },
    { "deepseek", "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi there\n<|EOT|>\n"
                  "### Instruction:\nWho are you\n### Response:\n   I am an assistant   \n<|EOT|>\n### Instruction:\n"
                  "Another question\n### Response:\n" },
    { "vicuna", "You are a helpful assistant\n\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are you\nASSISTANT:    "
                "I am an assistant   </s>\nUSER: Another question\nASSISTANT:" },
    { "vicuna-orca", "SYSTEM: You are a helpful assistant\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are you\n"
                     "ASSISTANT:    I am an assistant   </s>\nUSER: Another question\nASSISTANT:" },
    { "command-r", "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant<|END_OF_TURN_TOKEN|>"
                   "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|>"
                   "<|CHATBOT_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you"
                   "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>I am an assistant<|END_OF_TURN_TOKEN|>"
                   "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Another question<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|>"
                   "<|CHATBOT_TOKEN|>" },
    { "llama3", "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>"
                "user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there"
                "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>"
                "assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                "Another question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" },
    { "phi3", "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
              "<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother question"
              "<|end|>\n<|assistant|>\n" },
    { "chatglm3", "[gMASK]sop<|system|>\n You are a helpful assistant<|user|>\n Hello<|assistant|>\n Hi there<|user|>\n "
                  "Who are you<|assistant|>\n    I am an assistant   <|user|>\n Another question<|assistant|>" },
    { "chatglm4", "[gMASK]<sop><|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\nHi there<|user|>\n"
                  "Who are you<|assistant|>\n   I am an assistant   <|user|>\nAnother question<|assistant|>" },
    { "glmedge", "<|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\nHi there<|user|>\nWho are you"
                 "<|assistant|>\n   I am an assistant   <|user|>\nAnother question<|assistant|>" },
    { "minicpm", "You are a helpful assistant<\xe7\x94\xa8\xe6\x88\xb7>Hello<AI>Hi there<\xe7\x94\xa8\xe6\x88\xb7>Who "
                 "are you<AI>I am an assistant<\xe7\x94\xa8\xe6\x88\xb7>Another question<AI>" },
    { "deepseek2", "You are a helpful assistant\n\nUser: Hello\n\nAssistant: Hi there<\xef\xbd\x9c" "end\xe2\x96\x81of"
                   "\xe2\x96\x81sentence\xef\xbd\x9c>User: Who are you\n\nAssistant:    I am an assistant   "
                   "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>User: Another question\n\nAssistant:" },
    { "granite", "<|start_of_role|>system<|end_of_role|>You are a helpful assistant<|end_of_text|>\n<|start_of_role|>"
                 "user<|end_of_role|>Hello<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>Hi there"
                 "<|end_of_text|>\n<|start_of_role|>user<|end_of_role|>Who are you<|end_of_text|>\n<|start_of_role|>"
                 "assistant<|end_of_role|>   I am an assistant   <|end_of_text|>\n<|start_of_role|>user<|end_of_role|>"
                 "Another question<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>\n" },
    { "mistral-v1", " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you [/INST]    "
                    "I am an assistant   </s> [INST] Another question [/INST]" },
    { "mistral-v3", "[INST] You are a helpful assistant\n\nHello[/INST] Hi there</s>[INST] Who are you[/INST] I am an "
                    "assistant</s>[INST] Another question[/INST]" },
    { "mistral-v3-tekken", "[INST]You are a helpful assistant\n\nHello[/INST]Hi there</s>[INST]Who are you[/INST]   I "
                           "am an assistant   </s>[INST]Another question[/INST]" },
    { "mistral-v7", "[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST] Hi there</s>[INST] "
                    "Who are you[/INST]    I am an assistant   </s>[INST] Another question[/INST]" },
    { "gigachat", "<s>You are a helpful assistant<|message_sep|>user<|role_sep|>Hello<|message_sep|>available functions"
                  "<|role_sep|>[]<|message_sep|>assistant<|role_sep|>Hi there<|message_sep|>user<|role_sep|>Who are you"
                  "<|message_sep|>available functions<|role_sep|>[]<|message_sep|>assistant<|role_sep|>   I am an "
                  "assistant   <|message_sep|>user<|role_sep|>Another question<|message_sep|>available functions"
                  "<|role_sep|>[]<|message_sep|>assistant<|role_sep|>" },
    { "megrez", "<|role_start|>system<|role_end|>You are a helpful assistant<|turn_end|><|role_start|>user<|role_end|>"
                "Hello<|turn_end|><|role_start|>assistant<|role_end|>Hi there<|turn_end|><|role_start|>user<|role_end|>"
                "Who are you<|turn_end|><|role_start|>assistant<|role_end|>   I am an assistant   <|turn_end|>"
                "<|role_start|>user<|role_end|>Another question<|turn_end|><|role_start|>assistant<|role_end|>" },
    { "phi4", "<|im_start|>system<|im_sep|>You are a helpful assistant<|im_end|><|im_start|>user<|im_sep|>Hello"
              "<|im_end|><|im_start|>assistant<|im_sep|>Hi there<|im_end|><|im_start|>user<|im_sep|>Who are you"
              "<|im_end|><|im_start|>assistant<|im_sep|>   I am an assistant   <|im_end|><|im_start|>user<|im_sep|>"
              "Another question<|im_end|><|im_start|>assistant<|im_sep|>" },
};

TEST(upstream_test_vectors) {
    for (size_t i = 0; i < sizeof upstream / sizeof upstream[0]; i++) {
        const char *got = fmt(upstream[i].name, conv6, 6, 1);
        CHECK_MSG(!strcmp(got, upstream[i].want), "%s:\n    got  [%s]\n    want [%s]", upstream[i].name, got,
                  upstream[i].want);
    }
}

/* ------------------------------------------------------------ other shapes */

/* S: system only; U: user only; C: system, user, assistant last (with
 * spaces to trim); R: repeated roles. Expected texts follow the
 * reference's formatter for each family. */
static const msg_t shape_s[] = { { "system", " Be brief. " } };
static const msg_t shape_u[] = { { "user", "Hi" } };
static const msg_t shape_c[] = { { "system", "S " }, { "user", " U" }, { "assistant", " A " } };
static const msg_t shape_r[] = { { "user", "a" }, { "user", "b" }, { "assistant", "c" }, { "assistant", "d" },
                                 { "system", "e" }, { "user", "f" } };

struct shape_case { const char *name; const msg_t *m; size_t n; int add_ass; const char *want; };
#define S_(m) m, sizeof m / sizeof m[0]

static const struct shape_case shapes[] = {
    /* no messages: only what the formatter writes unconditionally */
    { "chatml", NULL, 0, 1, "<|im_start|>assistant\n" },
    { "llama2", NULL, 0, 1, "[INST] " },
    { "chatglm3", NULL, 0, 0, "[gMASK]sop" },
    { "gigachat", NULL, 0, 1, "<s>assistant<|role_sep|>" },
    { "mistral-v1", NULL, 0, 1, "" },
    /* only a system message */
    { "chatml", S_(shape_s), 1, "<|im_start|>system\n Be brief. <|im_end|>\n<|im_start|>assistant\n" },
    { "llama3", S_(shape_s), 1, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                                "<|start_header_id|>assistant<|end_header_id|>\n\n" },
    { "gemma", S_(shape_s), 1, "<start_of_turn>model\n" }, /* held for a user turn that never comes */
    { "gemma", S_(shape_s), 0, "" },
    { "llama2-sys-strip", S_(shape_s), 1, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n" },
    { "llama2", S_(shape_s), 1, "[INST]  Be brief. \n" },
    { "orion", S_(shape_s), 1, "" },
    { "mistral-v3", S_(shape_s), 1, "[INST]  Be brief. \n\n" },
    { "gigachat", S_(shape_s), 0, "<s> Be brief. <|message_sep|>" },
    { "zephyr", S_(shape_s), 1, "<|system|>\n Be brief. <|endoftext|>\n<|assistant|>\n" },
    /* a user message alone, add_ass off and on */
    { "phi3", S_(shape_u), 0, "<|user|>\nHi<|end|>\n" },
    { "gemma", S_(shape_u), 1, "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n" },
    { "falcon3", S_(shape_u), 1, "<|user|>\nHi\n<|assistant|>\n" },
    { "zephyr", S_(shape_u), 1, "<|user|>\nHi<|endoftext|>\n<|assistant|>\n" },
    { "deepseek3", S_(shape_u), 1, "<\xef\xbd\x9cUser\xef\xbd\x9c>Hi<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>" },
    { "exaone3", S_(shape_u), 1, "[|user|]Hi\n[|assistant|]" },
    { "rwkv-world", S_(shape_u), 1, "User: Hi\n\nAssistant:" },
    { "llama2-sys", S_(shape_u), 0, "[INST] Hi [/INST]" },
    { "mistral-v7", S_(shape_u), 1, "[INST] Hi[/INST]" },
    /* system, user, assistant last */
    { "chatml", S_(shape_c), 0, "<|im_start|>system\nS <|im_end|>\n<|im_start|>user\n U<|im_end|>\n"
                                "<|im_start|>assistant\n A <|im_end|>\n" },
    { "llama2", S_(shape_c), 1, "[INST] S \n U [/INST] A </s>" },
    { "llama2-sys", S_(shape_c), 1, "[INST] <<SYS>>\nS \n<</SYS>>\n\n U [/INST] A </s>" },
    { "llama2-sys-bos", S_(shape_c), 1, "[INST] <<SYS>>\nS \n<</SYS>>\n\n U [/INST] A </s>" },
    { "llama2-sys-strip", S_(shape_c), 1, "[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]A</s>" },
    { "mistral-v1", S_(shape_c), 1, " [INST] S \n\n U [/INST]  A </s>" },
    { "mistral-v3", S_(shape_c), 1, "[INST] S \n\n U[/INST] A</s>" },
    { "mistral-v3-tekken", S_(shape_c), 1, "[INST]S \n\n U[/INST] A </s>" },
    { "mistral-v7", S_(shape_c), 1, "[SYSTEM_PROMPT] S [/SYSTEM_PROMPT][INST]  U[/INST]  A </s>" },
    { "gemma", S_(shape_c), 1, "<start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n"
                               "<start_of_turn>model\n" },
    { "llama3", S_(shape_c), 0, "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user"
                                "<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA"
                                "<|eot_id|>" },
    { "zephyr", S_(shape_c), 1, "<|system|>\nS <|endoftext|>\n<|user|>\n U<|endoftext|>\n<|assistant|>\n A "
                                "<|endoftext|>\n<|assistant|>\n" },
    { "falcon3", S_(shape_c), 0, "<|system|>\nS \n<|user|>\n U\n<|assistant|>\n A \n" },
    { "deepseek3", S_(shape_c), 1, "S \n\n<\xef\xbd\x9cUser\xef\xbd\x9c> U<\xef\xbd\x9c" "Assistant\xef\xbd\x9c> A "
                                   "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c><\xef\xbd\x9c"
                                   "Assistant\xef\xbd\x9c>" },
    { "exaone3", S_(shape_c), 1, "[|system|]S[|endofturn|]\n[|user|]U\n[|assistant|]A[|endofturn|]\n[|assistant|]" },
    { "rwkv-world", S_(shape_c), 1, "S \n\nUser:  U\n\nAssistant: A \n\n" },
    { "minicpm", S_(shape_c), 1, "S<\xe7\x94\xa8\xe6\x88\xb7>U<AI>A" },
    { "orion", S_(shape_c), 1, "Human: S \n\n U\n\nAssistant: </s> A </s>" },
    { "command-r", S_(shape_c), 0, "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>S<|END_OF_TURN_TOKEN|>"
                                   "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>U<|END_OF_TURN_TOKEN|>"
                                   "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>A<|END_OF_TURN_TOKEN|>" },
    /* repeated roles and a late system message */
    { "chatml", S_(shape_r), 1, "<|im_start|>user\na<|im_end|>\n<|im_start|>user\nb<|im_end|>\n<|im_start|>assistant\n"
                                "c<|im_end|>\n<|im_start|>assistant\nd<|im_end|>\n<|im_start|>system\ne<|im_end|>\n"
                                "<|im_start|>user\nf<|im_end|>\n<|im_start|>assistant\n" },
    { "llama2-sys", S_(shape_r), 1, "[INST] a [/INST]b [/INST]c</s>[INST] d</s>[INST] <<SYS>>\ne\n<</SYS>>\n\nf [/INST]" },
    { "llama2-sys-bos", S_(shape_r), 1, "[INST] a [/INST]b [/INST]c</s><s>[INST] d</s><s>[INST] <<SYS>>\ne\n<</SYS>>\n\n"
                                        "f [/INST]" },
    { "mistral-v1", S_(shape_r), 1, " [INST] a [/INST]b [/INST] c</s> [INST]  d</s> [INST] e\n\nf [/INST]" },
    { "gemma", S_(shape_r), 1, "<start_of_turn>user\na<end_of_turn>\n<start_of_turn>user\nb<end_of_turn>\n"
                               "<start_of_turn>model\nc<end_of_turn>\n<start_of_turn>model\nd<end_of_turn>\n"
                               "<start_of_turn>user\ne\n\nf<end_of_turn>\n<start_of_turn>model\n" },
    { "orion", S_(shape_r), 1, "Human: a\n\nAssistant: </s>Human: b\n\nAssistant: </s>c</s>d</s>Human: e\n\nf\n\n"
                               "Assistant: </s>" },
    { "gigachat", S_(shape_r), 1, "<s>user<|role_sep|>a<|message_sep|>available functions<|role_sep|>[]<|message_sep|>"
                                  "user<|role_sep|>b<|message_sep|>available functions<|role_sep|>[]<|message_sep|>"
                                  "assistant<|role_sep|>c<|message_sep|>assistant<|role_sep|>d<|message_sep|>"
                                  "user<|role_sep|>f<|message_sep|>available functions<|role_sep|>[]<|message_sep|>"
                                  "assistant<|role_sep|>" },
    { "vicuna", S_(shape_r), 0, "USER: a\nUSER: b\nASSISTANT: c</s>\nASSISTANT: d</s>\ne\n\nUSER: f\n" },
    { "openchat", S_(shape_r), 0, "GPT4 Correct User: a<|end_of_turn|>GPT4 Correct User: b<|end_of_turn|>GPT4 Correct "
                                  "Assistant: c<|end_of_turn|>GPT4 Correct Assistant: d<|end_of_turn|>e<|end_of_turn|>"
                                  "GPT4 Correct User: f<|end_of_turn|>" },
    { "monarch", S_(shape_r), 0, "user\na</s>\n<s>user\nb</s>\n<s>assistant\nc</s>\n<s>assistant\nd</s>\n<s>system\n"
                                 "e</s>\n<s>user\nf</s>\n" },
};

TEST(other_conversation_shapes) {
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct shape_case *c = &shapes[i];
        const char *got = fmt(c->name, c->m, c->n, c->add_ass);
        CHECK_MSG(!strcmp(got, c->want), "case %zu (%s, %zu messages, add_ass %d):\n    got  [%s]\n    want [%s]", i,
                  c->name, c->n, c->add_ass, got, c->want);
    }
}

/* Roles the API passes through or drops, as the reference does. */
TEST(other_roles) {
    const msg_t m[] = { { "tool", "t" }, { "user", "u" } };
    CHECK_STR(fmt("chatml", m, 2, 0), "<|im_start|>tool\nt<|im_end|>\n<|im_start|>user\nu<|im_end|>\n");
    CHECK_STR(fmt("vicuna", m, 2, 0), "USER: u\n");           /* unknown roles skipped */
    CHECK_STR(fmt("llama2", m, 2, 0), "[INST] t</s>[INST] u [/INST]"); /* anything else is the assistant */
    CHECK_STR(fmt("openchat", m, 2, 0), "GPT4 Correct Tool: t<|end_of_turn|>GPT4 Correct User: u<|end_of_turn|>");
    const msg_t g[] = { { "system", "s" }, { "model", "m" }, { "user", "u" } };
    CHECK_STR(fmt("gemma", g, 3, 0), "<start_of_turn>model\nm<end_of_turn>\n<start_of_turn>user\ns\n\nu<end_of_turn>\n");
    const msg_t t[] = { { "assistant_tool_call", "x" } };
    CHECK_STR(fmt("granite", t, 1, 0), "<|start_of_role|>assistant_tool_call<|end_of_role|><|tool_call|>x<|end_of_text|>\n");
    /* only ASCII whitespace is trimmed (a no-break space stays) */
    const msg_t w[] = { { "user", "\t\v\f\r\n x \xc2\xa0" } };
    CHECK_STR(fmt("llama3", w, 1, 0), "<|start_header_id|>user<|end_header_id|>\n\nx \xc2\xa0<|eot_id|>");
}

/* ------------------------------------------------------------ detection */

TEST(detection_order) {
    static const struct { const char *tmpl, *want; } cases[] = {
        { "chatml", "chatml" }, { "zephyr", "zephyr" }, { "llama2-sys-strip", "llama2-sys-strip" },
        { "x <|im_start|> y", "chatml" }, { "<|im_start|><|im_sep|>", "phi4" },
        { "<|im_start|> [INST] <|start_header_id|><|end_header_id|>", "chatml" },
        { "mistral", "llama2" }, { "mistralai stuff", "llama2" }, { "a mistral", NULL },
        { "[INST] [SYSTEM_PROMPT]", "mistral-v7" },
        { "{{' [INST] ' + system_message}} [INST]", "mistral-v1" },
        { "[AVAILABLE_TOOLS] \"[INST]\"", "mistral-v3-tekken" }, { "[AVAILABLE_TOOLS][INST]", "mistral-v3" },
        { "[INST] content.strip() bos_token + '[INST] <<SYS>>", "llama2-sys-strip" },
        { "[INST] bos_token + '[INST] <<SYS>>", "llama2-sys-bos" }, { "[INST] <<SYS>>", "llama2-sys" },
        { "[INST] <|assistant|><|end|>", "llama2" },
        { "<|assistant|><|end|><|user|>", "phi3" }, { "<|assistant|><|user|></s>", "falcon3" },
        { "<|assistant|><|user|><|endoftext|>", "glmedge" }, { "<|user|><|endoftext|>", "zephyr" },
        { "bos_token + message['role'] <start_of_turn>", "monarch" }, { "<start_of_turn>", "gemma" },
        { "'\\n\\nAssistant: ' + eos_token", "orion" }, { "GPT4 Correct USER: ASSISTANT: ", "openchat" },
        { "USER: ASSISTANT: ", "vicuna" }, { "SYSTEM: USER: ASSISTANT: ", "vicuna-orca" },
        { "### Instruction:<|EOT|>", "deepseek" }, { "### Instruction:", NULL },
        { "<|START_OF_TURN_TOKEN|><|USER_TOKEN|><|start_header_id|><|end_header_id|>", "command-r" },
        { "<|start_header_id|><|end_header_id|>", "llama3" }, { "<|start_header_id|>", NULL },
        { "[gMASK]sop", "chatglm3" }, { "[gMASK]<sop>", "chatglm4" },
        { "<\xe7\x94\xa8\xe6\x88\xb7>", "minicpm" },
        { "'Assistant: ' + message['content'] + eos_token", "deepseek2" },
        { "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><\xef\xbd\x9cUser\xef\xbd\x9c><\xef\xbd\x9c" "end\xe2\x96\x81of"
          "\xe2\x96\x81sentence\xef\xbd\x9c>", "deepseek3" },
        { "[|system|][|assistant|][|endofturn|]", "exaone3" }, { "rwkv-world", "rwkv-world" },
        { "x rwkv-world", "rwkv-world" }, { "<|start_of_role|>", "granite" },
        { "message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]",
          "gigachat" },
        { "<|role_start|>", "megrez" },
        { "", NULL }, { "INVALID TEMPLATE", NULL }, { "Chatml", NULL }, { "chatml ", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = rbee_chat_template_detect(cases[i].tmpl);
        CHECK_MSG(cases[i].want ? got && !strcmp(got, cases[i].want) : !got, "[%s]: got %s, want %s", cases[i].tmpl,
                  got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
    }
    CHECK(rbee_chat_template_detect(NULL) == NULL);
}

TEST(builtin_names) {
    size_t n = 0;
    for (const char *name, *prev = ""; (name = rbee_chat_template_builtin(n)); prev = name, n++) {
        CHECK_MSG(strcmp(prev, name) < 0, "names not sorted: %s, %s", prev, name);
        CHECK_STR(rbee_chat_template_detect(name), name); /* each name selects itself */
        const msg_t m[] = { { "user", "x" } };
        CHECK(strncmp(fmt(name, m, 1, 1), "<error", 6) != 0);
    }
    CHECK_EQ_INT(n, 33); /* llama.cpp b4748 has 33 */
    CHECK(rbee_chat_template_builtin((size_t)-1) == NULL);
}

/* ------------------------------------------------------------ API contract */

TEST(buffer_and_errors) {
    char err[RBEE_ERR_MAX], small[8];
    const msg_t m[] = { { "user", "Hello" } };
    const char *want = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n";
    int64_t n = rbee_chat_apply_template("chatml", m, 1, 1, NULL, 0, err);
    CHECK_EQ_INT(n, (int64_t)strlen(want)); /* sizing call */
    memset(small, 'x', sizeof small);
    CHECK_EQ_INT(rbee_chat_apply_template("chatml", m, 1, 1, small, 5, err), n);
    CHECK(!memcmp(small, "<|im_", 5) && small[5] == 'x'); /* nothing past cap */
    char exact[64];
    CHECK_EQ_INT(rbee_chat_apply_template("chatml", m, 1, 1, exact, (size_t)n + 1, err), n);
    CHECK_STR(exact, want);

    err[0] = 0;
    CHECK_EQ_INT(rbee_chat_apply_template("INVALID TEMPLATE", m, 1, 1, exact, sizeof exact, err), -1);
    CHECK_CONTAINS(err, "unrecognized chat template");
    CHECK_EQ_INT(rbee_chat_apply_template(NULL, m, 1, 1, exact, sizeof exact, err), -1);
    CHECK_CONTAINS(err, "no chat template");
    const msg_t bad[] = { { "user", NULL } };
    CHECK_EQ_INT(rbee_chat_apply_template("chatml", bad, 1, 1, exact, sizeof exact, err), -1);
    CHECK_CONTAINS(err, "message 1 has no content");
}

int main(void) {
    RUN(reference_files);
    RUN(reference_tokens);
    RUN(zephyr_template_is_glmedge_as_in_the_reference);
    RUN(upstream_test_vectors);
    RUN(other_conversation_shapes);
    RUN(other_roles);
    RUN(detection_order);
    RUN(builtin_names);
    RUN(buffer_and_errors);
    return test_summary();
}
