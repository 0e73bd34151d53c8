/* rbee_side.c - rbee's answers to the questions llama_side.c answers for
 * llama.cpp, in the same formats (see there), for run.sh to compare:
 *
 *   tokenize VOCAB RECORDS ADD_SPECIAL PARSE_SPECIAL
 *   detok VOCAB SEED N     the detokenizer in mid-text (a reply after its
 *                          prompt): the first piece keeps its space
 *   chat SEED N
 *   names
 *   logits MODEL FILE TOL [CHUNK]   checks rbee's logits against llama_side's
 *                          file: every listed logit within TOL, the same top
 *                          token unless the reference had a near tie (gap <=
 *                          2 TOL), greedy steps followed until they part at
 *                          such a tie; prompts evaluated in batches of CHUNK
 *                          (default: all at once). Prints "N passed, N failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../gguf/gguf.h"
#include "../../runtime/rbee.h"
#include "../../runtime/tokenizer.h"
#include "cases.h"

static struct rb_tokenizer *load_tokenizer(const char *path, struct gguf_file *g) {
    char err[RB_ERR_MAX];
    struct rb_tokenizer *t;
    if (rb_gguf_open(g, path, err) || rb_tokenizer_load(&t, g, err)) { fprintf(stderr, "%s: %s\n", path, err); exit(1); }
    return t;
}

static void hex(const char *p, size_t n) { for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)p[i]); }

static int cmd_tokenize(char **argv) {
    struct gguf_file g;
    struct rb_tokenizer *t = load_tokenizer(argv[0], &g);
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    static char buf[1 << 20];
    static int32_t ids[1 << 20];
    char err[RB_ERR_MAX];
    uint32_t len;
    while (fread(&len, 4, 1, f) == 1) {
        if (len > sizeof buf || fread(buf, 1, len, f) != len) { fprintf(stderr, "%s: bad record\n", argv[1]); return 1; }
        int64_t n = rb_tokenize(t, buf, len, atoi(argv[2]) ? -1 : 0, atoi(argv[3]), ids, 1 << 20, err);
        if (n < 0) printf("error: %s", err);
        for (int64_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    fclose(f);
    rb_tokenizer_free(t);
    rb_gguf_close(&g);
    return 0;
}

static int cmd_detok(char **argv) {
    struct gguf_file g;
    struct rb_tokenizer *t = load_tokenizer(argv[0], &g);
    struct rng r;
    rng_seed(&r, atoi(argv[1]));
    int n_cases = atoi(argv[2]);
    size_t cap = rb_tokenizer_max_piece(t);
    char *piece = malloc(cap);
    if (!piece) return 1;
    for (int i = 0; i < n_cases; i++) {
        int32_t ids[16];
        int n = case_ids(&r, rb_tokenizer_n_vocab(t), ids);
        for (int j = 0; j < n; j++) printf("%d ", ids[j]);
        printf("|");
        struct rb_detok d;
        rb_detok_init(&d);
        d.at_start = 0; /* mid-text */
        for (int j = 0; j < n; j++) hex(piece, rb_detok_push(t, &d, ids[j], piece, cap));
        hex(piece, rb_detok_flush(&d, piece, cap));
        printf("\n");
    }
    free(piece);
    rb_tokenizer_free(t);
    rb_gguf_close(&g);
    return 0;
}

static int builtin_names(const char **names, int cap) {
    int n = 0;
    while (n < cap && (names[n] = rbee_chat_template_builtin((size_t)n))) n++;
    return n;
}

static long long format_chat(const struct chat_case *c, char *out, size_t cap) {
    struct rbee_chat_message msgs[8];
    char err[RBEE_ERR_MAX];
    for (int j = 0; j < c->n; j++) msgs[j] = (struct rbee_chat_message){ c->role[j], c->content[j] };
    return rbee_chat_apply_template(c->tmpl, msgs, (size_t)c->n, c->add_assistant, out, cap, err);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

/* worst |rbee - reference| over the reference's 8 listed logits at one position */
static float worst_listed(const float *logits, const int32_t *ids, const float *vals) {
    float w = 0;
    for (int k = 0; k < 8; k++) w = fmaxf(w, fabsf(logits[ids[k]] - vals[k]));
    return w;
}

static int cmd_logits(char **argv, int argc) {
    char err[RBEE_ERR_MAX];
    rbee_model *m;
    if (rbee_model_load(&m, argv[0], err)) { fprintf(stderr, "%s: %s\n", argv[0], err); return 1; }
    FILE *in = fopen(argv[1], "rb");
    if (!in) { perror(argv[1]); return 1; }
    float tol = (float)atof(argv[2]);
    int chunk = argc > 3 ? atoi(argv[3]) : 0, passed = 0, failed = 0, len, n_gen;
    while (fread(&len, 4, 1, in) == 1 && fread(&n_gen, 4, 1, in) == 1) {
        int n = len + n_gen;
        int32_t *toks = malloc(4 * (size_t)n), (*ids)[8] = malloc(32 * (size_t)n);
        float (*vals)[8] = malloc(32 * (size_t)n);
        if (!toks || !ids || !vals) return 1;
        if (fread(toks, 4, (size_t)n, in) != (size_t)n || fread(ids, 32, (size_t)n, in) != (size_t)n ||
            fread(vals, 32, (size_t)n, in) != (size_t)n) { fprintf(stderr, "%s: truncated\n", argv[1]); return 1; }
        struct rbee_context_params cp = rbee_context_default_params();
        cp.n_ctx = n + 8;
        cp.n_threads = 2;
        rbee_context *c;
        if (rbee_context_new(&c, m, &cp, err)) { fprintf(stderr, "context: %s\n", err); return 1; }
        int nv = rbee_n_vocab(c), bad = 0, compared = n, worst_at = -1;
        float worst = 0;
        int step = chunk > 0 ? chunk : len;
        for (int i0 = 0; i0 < len; i0 += step) {
            int k = len - i0 < step ? len - i0 : step;
            if (rbee_eval(c, toks + i0, k, 1, err)) { fprintf(stderr, "eval: %s\n", err); return 1; }
            for (int i = i0; i < i0 + k; i++) {
                const float *l = rbee_get_logits(c, i - i0);
                float w = worst_listed(l, ids[i], vals[i]);
                if (w > worst) { worst = w; worst_at = i; }
                bad |= w > tol || (argmax(l, nv) != ids[i][0] && vals[i][0] - vals[i][1] > 2 * tol);
            }
        }
        for (int i = len; i < n; i++) {
            if (argmax(rbee_get_logits(c, -1), nv) != toks[i]) { /* parted: only at a near tie */
                bad |= vals[i - 1][0] - vals[i - 1][1] > 2 * tol;
                compared = i;
                break;
            }
            if (rbee_eval(c, toks + i, 1, 0, err)) { fprintf(stderr, "eval: %s\n", err); return 1; }
            float w = worst_listed(rbee_get_logits(c, -1), ids[i], vals[i]);
            if (w > worst) { worst = w; worst_at = i; }
            bad |= w > tol;
        }
        printf("%s prompt of %d tokens: worst %.4f at position %d, %d of %d positions compared\n",
               bad ? "FAIL" : "ok  ", len, worst, worst_at, compared, n);
        passed += !bad;
        failed += bad;
        rbee_context_free(c);
        free(toks);
        free(ids);
        free(vals);
    }
    fclose(in);
    rbee_model_free(m);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "tokenize") && argc == 6) return cmd_tokenize(argv + 2);
    if (!strcmp(cmd, "detok") && argc == 5) return cmd_detok(argv + 2);
    const char *names[256];
    int n_names = builtin_names(names, 256);
    if (!strcmp(cmd, "chat") && argc == 4) return run_chat_cases(names, n_names, atoi(argv[2]), atoi(argv[3]), format_chat);
    if (!strcmp(cmd, "names") && argc == 2) return print_names(names, n_names);
    if (!strcmp(cmd, "logits") && (argc == 5 || argc == 6)) return cmd_logits(argv + 2, argc - 2);
    fprintf(stderr, "usage: see the top of rbee_side.c\n");
    return 2;
}
