/* chat_ref.h - reads ../shared/reference/chat/<family>.txt (format in its
 * README.md): a header (family, source, template), then conversations
 * separated by blank lines: "ROLE: <JSON string>" lines, "prompt: <JSON
 * string>", optional "tokens: VOCAB: ids..." and "same_as_builtin: names".
 * JSON string literals are decoded with the library's JSON reader. */
#ifndef RB_TEST_CHAT_REF_H
#define RB_TEST_CHAT_REF_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "../runtime/json.h"
#include "../runtime/rbee.h"

#define CHAT_REF_MAX_MSGS 64
#define CHAT_REF_MAX_CONV 64
#define CHAT_REF_MAX_TOKENS 4096

struct chat_ref_conv {
    struct rbee_chat_message msgs[CHAT_REF_MAX_MSGS]; /* role and content malloc'd */
    size_t n_msgs;
    char *prompt;           /* malloc'd */
    size_t prompt_len;
    char *vocab;            /* tokens: the vocab file named, or NULL */
    int32_t *tokens;        /* malloc'd */
    int n_tokens;
    char *same_as;          /* same_as_builtin: space-separated names, or NULL */
};

struct chat_ref {
    char *family, *tmpl;    /* malloc'd */
    size_t tmpl_len;
    struct chat_ref_conv conv[CHAT_REF_MAX_CONV];
    int n_conv;
};

static inline void chat_ref_free(struct chat_ref *r) {
    for (int i = 0; i < r->n_conv; i++) {
        struct chat_ref_conv *c = &r->conv[i];
        for (size_t k = 0; k < c->n_msgs; k++) {
            free((char *)c->msgs[k].role);
            free((char *)c->msgs[k].content);
        }
        free(c->prompt);
        free(c->vocab);
        free(c->tokens);
        free(c->same_as);
    }
    free(r->family);
    free(r->tmpl);
    memset(r, 0, sizeof *r);
}

/* A JSON string literal (the rest of a line) decoded into a malloc'd string. */
static inline char *chat_ref_str(const char *s, size_t n, size_t *len) {
    char err[RB_JSON_ERR_MAX];
    struct rb_json_doc *d;
    if (rb_json_parse(s, n, 0, &d, err)) return NULL;
    const struct rb_json *v = rb_json_root(d);
    char *r = NULL;
    if (v->type == RB_JSON_STRING && (r = malloc(v->len + 1))) {
        memcpy(r, v->str, v->len + 1);
        if (len) *len = v->len;
    }
    rb_json_free(d);
    return r;
}

static inline char *chat_ref_dup(const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (r) { memcpy(r, s, n); r[n] = 0; }
    return r;
}

/* Load path into r; -1 with a message in err (256 bytes) when it cannot be
 * read or a line does not parse. */
static inline int chat_ref_load(const char *path, struct chat_ref *r, char *err) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, 256, "%.180s: cannot open", path); return -1; }
    char *line = NULL;
    size_t cap = 0;
    int in_header = 1, rc = 0, lineno = 0;
    struct chat_ref_conv *c = NULL;
    for (ssize_t n; (n = getline(&line, &cap, f)) >= 0 && !rc;) {
        lineno++;
        if (n && line[n - 1] == '\n') line[--n] = 0;
        if (!n) { in_header = 0; c = NULL; continue; }
        char *colon = strstr(line, ": ");
        if (!colon) { snprintf(err, 256, "%.180s:%d: no 'key: value'", path, lineno); rc = -1; break; }
        *colon = 0;
        const char *key = line, *v = colon + 2;
        size_t vlen = (size_t)(line + n - v);
        if (in_header) {
            if (!strcmp(key, "family")) r->family = chat_ref_dup(v, vlen);
            else if (!strcmp(key, "template") && !(r->tmpl = chat_ref_str(v, vlen, &r->tmpl_len))) rc = -1;
            continue;
        }
        if (!c) {
            if (r->n_conv == CHAT_REF_MAX_CONV) { snprintf(err, 256, "%.180s: too many conversations", path); rc = -1; break; }
            c = &r->conv[r->n_conv++];
        }
        if (!strcmp(key, "prompt")) {
            if (!(c->prompt = chat_ref_str(v, vlen, &c->prompt_len))) rc = -1;
        } else if (!strcmp(key, "same_as_builtin")) {
            c->same_as = chat_ref_dup(v, vlen);
        } else if (!strcmp(key, "tokens")) {
            const char *sep = strstr(v, ": ");
            c->tokens = malloc(CHAT_REF_MAX_TOKENS * sizeof *c->tokens);
            if (!sep || !c->tokens) { rc = -1; continue; }
            c->vocab = chat_ref_dup(v, (size_t)(sep - v));
            for (char *p = (char *)sep + 2, *end; *p && c->n_tokens < CHAT_REF_MAX_TOKENS; p = end) {
                long id = strtol(p, &end, 10);
                if (end == p) { rc = -1; break; }
                c->tokens[c->n_tokens++] = (int32_t)id;
            }
        } else {
            if (c->n_msgs == CHAT_REF_MAX_MSGS) { snprintf(err, 256, "%.180s: too many messages", path); rc = -1; break; }
            char *content = chat_ref_str(v, vlen, NULL);
            if (!content) { rc = -1; continue; }
            c->msgs[c->n_msgs++] = (struct rbee_chat_message){ chat_ref_dup(key, strlen(key)), content };
        }
        if (rc) snprintf(err, 256, "%.180s:%d: bad %s line", path, lineno, key);
    }
    if (rc && !strstr(err, path)) snprintf(err, 256, "%.180s:%d: bad line", path, lineno);
    free(line);
    fclose(f);
    for (int i = 0; !rc && i < r->n_conv; i++)
        if (!r->conv[i].prompt || !r->conv[i].n_msgs) { snprintf(err, 256, "%.180s: conversation %d has no prompt or messages", path, i + 1); rc = -1; }
    if (!rc && !r->tmpl) { snprintf(err, 256, "%.180s: no template", path); rc = -1; }
    if (!rc && !r->n_conv) { snprintf(err, 256, "%.180s: no conversations", path); rc = -1; }
    if (rc) chat_ref_free(r);
    return rc;
}

/* The paths of every .txt under reference/chat, sorted; returns the count
 * (0 when the directory cannot be read). */
#include <dirent.h>
static inline int chat_ref_files(const char *dir, char paths[][512], int max) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < max;) {
        size_t k = strlen(e->d_name);
        if (k > 4 && !strcmp(e->d_name + k - 4, ".txt")) snprintf(paths[n++], 512, "%.300s/%.200s", dir, e->d_name);
    }
    closedir(d);
    for (int i = 1; i < n; i++) /* insertion sort: a stable order for the messages */
        for (int j = i; j > 0 && strcmp(paths[j - 1], paths[j]) > 0; j--) {
            char t[512];
            memcpy(t, paths[j], 512); memcpy(paths[j], paths[j - 1], 512); memcpy(paths[j - 1], t, 512);
        }
    return n;
}

/* Call fn for every conversation of every file of reference/chat; a file
 * that cannot be read or parsed fails the running test, and so do fewer
 * than 9 files. Returns the number of conversations seen. */
static inline int chat_ref_each(void (*fn)(const char *path, const struct chat_ref *r, int i, void *user),
                                void *user) {
    static char paths[64][512];
    static struct chat_ref r;
    char dir[512], err[256];
    int n_files = chat_ref_files(test_path(dir, sizeof dir, "reference/chat"), paths, 64), n_conv = 0;
    CHECK_MSG(n_files >= 9, "only %d reference files in %s", n_files, dir);
    for (int f = 0; f < n_files; f++) {
        if (chat_ref_load(paths[f], &r, err)) { TEST_FAIL_AT("%s", err); continue; }
        for (int i = 0; i < r.n_conv; i++, n_conv++) fn(paths[f], &r, i, user);
        chat_ref_free(&r);
    }
    return n_conv;
}

#endif
