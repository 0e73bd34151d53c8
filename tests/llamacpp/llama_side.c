/* llama_side.c - the reference runtime's answers (llama.cpp's C API, b4748),
 * printed for run.sh to compare with rbee_side.c's. Built against a
 * llama.cpp build by run.sh; not part of `make test`.
 *
 *   tokenize VOCAB RECORDS ADD_SPECIAL PARSE_SPECIAL   one line of ids per record
 *   detok VOCAB SEED N                               "ids|hex of the text" per case
 *   chat SEED N                                      "len|hex of the prompt" per case (-1: refused)
 *   names                                            the built-in template names
 *   logits MODEL N_PROMPTS MAX_LEN N_GEN SEED OUT    random prompts + greedy steps, top 8 per position
 *   quantize IN OUT FTYPE                            llama_model_quantize, no imatrix
 * RECORDS: u32 length + bytes, repeated (strings.py writes them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"
#include "cases.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) { (void)level; (void)text; (void)user; }

static const struct llama_vocab *load_vocab(const char *path, int vocab_only, struct llama_model **m) {
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = vocab_only;
    *m = llama_model_load_from_file(path, mp);
    if (!*m) { fprintf(stderr, "%s: cannot load\n", path); exit(1); }
    return llama_model_get_vocab(*m);
}

static void hex(const char *p, int n) { for (int i = 0; i < n; i++) printf("%02x", (unsigned char)p[i]); }

static int cmd_tokenize(char **argv) {
    struct llama_model *m;
    const struct llama_vocab *vb = load_vocab(argv[0], 1, &m);
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    static char buf[1 << 20];
    static llama_token ids[1 << 20];
    uint32_t len;
    while (fread(&len, 4, 1, f) == 1) {
        if (len > sizeof buf || fread(buf, 1, len, f) != len) { fprintf(stderr, "%s: bad record\n", argv[1]); return 1; }
        int n = llama_tokenize(vb, buf, (int)len, ids, 1 << 20, atoi(argv[2]), atoi(argv[3]));
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    fclose(f);
    llama_model_free(m);
    return 0;
}

/* token_to_piece per id, no lstrip, special = false: what llama-cli and
 * llama-server print while they stream */
static int cmd_detok(char **argv) {
    struct llama_model *m;
    const struct llama_vocab *vb = load_vocab(argv[0], 1, &m);
    struct rng r;
    rng_seed(&r, atoi(argv[1]));
    int n_cases = atoi(argv[2]), n_vocab = llama_vocab_n_tokens(vb);
    for (int i = 0; i < n_cases; i++) {
        int32_t ids[16];
        int n = case_ids(&r, n_vocab, ids);
        for (int j = 0; j < n; j++) printf("%d ", ids[j]);
        printf("|");
        for (int j = 0; j < n; j++) {
            char piece[1024];
            int k = llama_token_to_piece(vb, ids[j], piece, sizeof piece, 0, false);
            if (k > 0) hex(piece, k);
        }
        printf("\n");
    }
    llama_model_free(m);
    return 0;
}

static int builtin_names(const char **names, int cap) { return llama_chat_builtin_templates(names, (size_t)cap); }

static long long format_chat(const struct chat_case *c, char *out, size_t cap) {
    struct llama_chat_message msgs[8];
    for (int j = 0; j < c->n; j++) msgs[j] = (struct llama_chat_message){ c->role[j], c->content[j] };
    return llama_chat_apply_template(c->tmpl, msgs, (size_t)c->n, c->add_assistant, out, (int32_t)cap);
}

static void top8(const float *a, int n, int32_t *ids, float *v) {
    for (int k = 0; k < 8; k++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= ids[j] == i;
            if (!taken && (best < 0 || a[i] > a[best])) best = i;
        }
        ids[k] = best;
        v[k] = a[best];
    }
}

/* Per prompt: len, n_gen, the len + n_gen tokens (prompt, then the greedy
 * ones), then for every position its 8 highest logits (ids, values). F16 KV
 * cache, no flash attention, 2 threads: how ../reference was made. */
static int cmd_logits(char **argv) {
    struct llama_model *m;
    const struct llama_vocab *vb = load_vocab(argv[0], 0, &m);
    int n_prompts = atoi(argv[1]), max_len = atoi(argv[2]), n_gen = atoi(argv[3]);
    struct rng r;
    rng_seed(&r, atoi(argv[4]));
    FILE *out = fopen(argv[5], "wb");
    if (!out) { perror(argv[5]); return 1; }
    int n_vocab = llama_vocab_n_tokens(vb);
    for (int p = 0; p < n_prompts; p++) {
        int len = 1 + (int)(rng_next(&r) % (uint32_t)max_len), n = len + n_gen;
        struct llama_context_params cp = llama_context_default_params();
        cp.n_ctx = cp.n_batch = cp.n_ubatch = (uint32_t)n + 8;
        cp.n_threads = cp.n_threads_batch = 2;
        struct llama_context *lc = llama_init_from_model(m, cp);
        int32_t *toks = malloc(sizeof *toks * (size_t)n), (*ids)[8] = malloc(sizeof *ids * (size_t)n);
        float (*vals)[8] = malloc(sizeof *vals * (size_t)n);
        if (!lc || !toks || !ids || !vals) { fprintf(stderr, "out of memory\n"); return 1; }
        for (int i = 0; i < len; i++) toks[i] = (int32_t)(rng_next(&r) % (uint32_t)n_vocab);
        if (llama_vocab_get_add_bos(vb)) toks[0] = llama_vocab_bos(vb);
        struct llama_batch b = llama_batch_init(len, 0, 1);
        for (int i = 0; i < len; i++) {
            b.token[i] = toks[i];
            b.pos[i] = i;
            b.n_seq_id[i] = 1;
            b.seq_id[i][0] = 0;
            b.logits[i] = 1;
        }
        b.n_tokens = len;
        if (llama_decode(lc, b)) { fprintf(stderr, "decode failed\n"); return 1; }
        for (int i = 0; i < len; i++) top8(llama_get_logits_ith(lc, i), n_vocab, ids[i], vals[i]);
        for (int g = 0; g < n_gen; g++) {
            toks[len + g] = ids[len + g - 1][0];
            if (llama_decode(lc, llama_batch_get_one(&toks[len + g], 1))) { fprintf(stderr, "decode failed\n"); return 1; }
            top8(llama_get_logits_ith(lc, -1), n_vocab, ids[len + g], vals[len + g]);
        }
        fwrite(&len, 4, 1, out);
        fwrite(&n_gen, 4, 1, out);
        fwrite(toks, 4, (size_t)n, out);
        fwrite(ids, 32, (size_t)n, out);
        fwrite(vals, 32, (size_t)n, out);
        llama_batch_free(b);
        llama_free(lc);
        free(toks);
        free(ids);
        free(vals);
    }
    llama_model_free(m);
    return fclose(out) ? 1 : 0;
}

static int cmd_quantize(char **argv) {
    struct llama_model_quantize_params p = llama_model_quantize_default_params();
    p.ftype = (enum llama_ftype)atoi(argv[2]);
    p.nthread = 2;
    return llama_model_quantize(argv[0], argv[1], &p) ? 1 : 0;
}

int main(int argc, char **argv) {
    llama_log_set(quiet, NULL);
    llama_backend_init();
    const char *cmd = argc > 1 ? argv[1] : "";
    int need = !strcmp(cmd, "tokenize") ? 4 : !strcmp(cmd, "detok") ? 3 : !strcmp(cmd, "chat") ? 2 : !strcmp(cmd, "names") ? 0
             : !strcmp(cmd, "logits") ? 6 : !strcmp(cmd, "quantize") ? 3 : -1;
    if (need < 0 || argc != need + 2) { fprintf(stderr, "usage: see the top of llama_side.c\n"); return 2; }
    const char *names[256];
    int n_names = builtin_names(names, 256);
    return !strcmp(cmd, "tokenize") ? cmd_tokenize(argv + 2) : !strcmp(cmd, "detok") ? cmd_detok(argv + 2)
         : !strcmp(cmd, "chat") ? run_chat_cases(names, n_names, atoi(argv[2]), atoi(argv[3]), format_chat)
         : !strcmp(cmd, "names") ? print_names(names, n_names)
         : !strcmp(cmd, "logits") ? cmd_logits(argv + 2) : cmd_quantize(argv + 2);
}
