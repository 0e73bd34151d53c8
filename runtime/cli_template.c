/* cli_template.c - `rbee template`: the exact prompt text a model's chat
 * template (or --chat-template) makes of a conversation in a JSON file,
 * and the template choice `rbee chat` shares. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "rbee.h"

/* "chatml, chatglm3, ..." for error lines. */
static void builtin_names(char *out, size_t cap) {
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; rbee_chat_template_builtin(i) && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", rbee_chat_template_builtin(i));
}

int cli_chat_template(const rbee_model *m, const char *model_path, const char *flag, const char **tmpl) {
    char names[1024];
    builtin_names(names, sizeof names);
    *tmpl = flag;
    if (flag) {
        if (rbee_chat_template_detect(flag)) return 0;
        /* a template text can be long: name its start only */
        fprintf(stderr, "rbee: error: --chat-template: '%.40s%s' is neither a built-in name nor a template "
                        "rbee recognizes (built-in: %s)\n", flag, strlen(flag) > 40 ? "..." : "", names);
        return 1;
    }
    *tmpl = m ? rbee_model_meta_str(m, "tokenizer.chat_template") : NULL;
    if (!*tmpl) {
        fprintf(stderr, "rbee: error: %s: the model has no chat template (tokenizer.chat_template); "
                        "choose one with --chat-template NAME (built-in: %s)\n", model_path, names);
        return 1;
    }
    if (!rbee_chat_template_detect(*tmpl)) {
        fprintf(stderr, "rbee: error: %s: rbee does not recognize the model's chat template; choose one with "
                        "--chat-template NAME (built-in: %s)\n", model_path, names);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ messages file */

/* A conversation file bigger than this is refused rather than read. */
#define MAX_MESSAGES_BYTES ((size_t)64 << 20)

/* The whole file (or stdin for "-"); NUL-terminated, owned by the caller. */
static char *slurp(const char *path, size_t *len, char *why, size_t why_cap) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        snprintf(why, why_cap, "%s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 12, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n > MAX_MESSAGES_BYTES) {
            snprintf(why, why_cap, "larger than %zu MiB", MAX_MESSAGES_BYTES >> 20);
            free(buf);
            if (f != stdin) fclose(f);
            return NULL;
        }
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || bad) {
        snprintf(why, why_cap, "%s", buf ? "read error (is it a directory?)" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Check the conversation [{"role": "system"|"user"|"assistant", "content": "..."}, ...]
 * and point msgs (n_children of them, caller frees) into the document. */
static int read_messages(const char *path, const struct rb_json *root, struct rbee_chat_message **msgs, size_t *n) {
    char why[320];
    if (root->type != RB_JSON_ARRAY) {
        snprintf(why, sizeof why, "expected an array of messages [{\"role\": ..., \"content\": ...}], got %s",
                 rb_json_type_name(root->type));
        return cli_fail(path, why);
    }
    if (!root->n_children) return cli_fail(path, "no messages (the array is empty)");
    *msgs = calloc(root->n_children, sizeof **msgs);
    if (!*msgs) return cli_fail(path, "out of memory");
    size_t i = 0;
    for (const struct rb_json *e = root->child; e; e = e->next, i++) {
        const struct rb_json *role = rb_json_get(e, "role"), *content = rb_json_get(e, "content");
        why[0] = 0;
        if (e->type != RB_JSON_OBJECT)
            snprintf(why, sizeof why, "expected an object, got %s", rb_json_type_name(e->type));
        else if (!role) snprintf(why, sizeof why, "no \"role\"");
        else if (role->type != RB_JSON_STRING)
            snprintf(why, sizeof why, "\"role\" must be a string (got %s)", rb_json_type_name(role->type));
        else if (strcmp(role->str, "system") && strcmp(role->str, "user") && strcmp(role->str, "assistant"))
            snprintf(why, sizeof why, "unknown role '%.40s' (expected system, user or assistant)", role->str);
        else if (!content) snprintf(why, sizeof why, "no \"content\"");
        else if (content->type != RB_JSON_STRING)
            snprintf(why, sizeof why, "\"content\" must be a string (got %s)", rb_json_type_name(content->type));
        else if (strlen(content->str) != content->len)
            snprintf(why, sizeof why, "\"content\" holds a NUL character (\\u0000)");
        if (why[0]) {
            char what[1024];
            snprintf(what, sizeof what, "%s: message %zu", path, i + 1);
            free(*msgs);
            *msgs = NULL;
            return cli_fail(what, why);
        }
        (*msgs)[i] = (struct rbee_chat_message){ role->str, content->str };
    }
    *n = i;
    return 0;
}

/* ------------------------------------------------------------ command */

static void usage(FILE *out) {
    char names[1024];
    builtin_names(names, sizeof names);
    fprintf(out,
        "usage: rbee template -m MODEL [--chat-template X] MESSAGES.json\n\n"
        "Print the prompt text a chat template makes of a conversation, with the opening\n"
        "of the assistant's turn appended, exactly (no newline is added).\n\n"
        "  -m, --model FILE        GGUF model or vocabulary; its tokenizer.chat_template is used\n"
        "  --chat-template X       a built-in template name or a template text (overrides the model's)\n"
        "  MESSAGES.json           [{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": \"...\"}, ...];\n"
        "                          - reads stdin\n\n"
        "Templates are recognized as llama.cpp does, by the markers in their text.\n"
        "Built-in: %s\n", names);
}

int cli_template(int argc, char **argv) {
    const char *model = NULL, *flag = NULL, *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        int is_model = !strcmp(a, "-m") || !strcmp(a, "--model"), is_tmpl = !strcmp(a, "--chat-template");
        if (is_model || is_tmpl) {
            if (i + 1 >= argc) return cli_fail(a, "missing value (see --help)");
            *(is_model ? &model : &flag) = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(a, "unknown option (see --help)");
        } else if (path) {
            return cli_fail(a, "unexpected argument (one MESSAGES.json only)");
        } else {
            path = a;
        }
    }
    if (!model && !flag) return cli_fail("-m", "a model file is required (or --chat-template X; see --help)");
    if (!path) return cli_fail("template", "MESSAGES.json is required (see --help)");

    char why[RB_JSON_ERR_MAX + 32];
    size_t len;
    char *text = slurp(path, &len, why, sizeof why);
    if (!strcmp(path, "-")) path = "stdin";
    if (!text) return cli_fail(path, why);
    struct rb_json_doc *doc = NULL;
    if (rb_json_parse(text, len, 0, &doc, why)) {
        char msg[sizeof why + 16];
        snprintf(msg, sizeof msg, "not JSON: %s", why);
        free(text);
        return cli_fail(path, msg);
    }
    struct rbee_chat_message *msgs = NULL;
    size_t n = 0;
    rbee_model *m = NULL;
    const char *tmpl;
    char err[RBEE_ERR_MAX];
    char *out = NULL;
    int rc = 1;
    if (read_messages(path, rb_json_root(doc), &msgs, &n)) goto done;
    if (model && rbee_vocab_load(&m, model, err)) { cli_fail(model, err); goto done; }
    if (cli_chat_template(m, model, flag, &tmpl)) goto done;
    int64_t need = rbee_chat_apply_template(tmpl, msgs, n, 1, NULL, 0, err);
    if (need < 0 || !(out = malloc((size_t)need + 1))) { cli_fail("template", need < 0 ? err : "out of memory"); goto done; }
    rbee_chat_apply_template(tmpl, msgs, n, 1, out, (size_t)need + 1, err);
    if (fwrite(out, 1, (size_t)need, stdout) != (size_t)need || fflush(stdout)) {
        cli_fail("stdout", strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(out);
    free(msgs);
    rb_json_free(doc);
    free(text);
    rbee_model_free(m);
    return rc;
}
