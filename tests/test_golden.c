/* test_golden.c - our logits against the reference runtime's
 * (every .ref file in ../shared/reference, rules in its README): prompt tokens exact;
 * every listed logit within TOL (0.05 float models, 0.3 quantized); top-1
 * agrees unless the reference had a near tie (gap <= 2 TOL); the greedy
 * continuation matches until the end or a reference near tie.
 * Runs the same code as `rbee logits` (rb_logits_report) and parses its
 * text with the parser used for the .ref files. When the prompt tokens
 * differ (a tokenizer fault, reported as such), the logits are still
 * checked, from the reference's own token ids.
 * Every .ref file in the reference directory is run (golden_stories:
 * stories260K, golden_all: the others).
 * RBEE_GOLDEN_QUICK=1 (qemu): only stories260K and quick_models below. */
#define _GNU_SOURCE /* open_memstream */
#include <dirent.h>

#include "test.h"
#include "../runtime/context.h"
#include "../runtime/logits_report.h"
#include "../runtime/model.h"
#include "../runtime/rbee.h"

#define MAX_POS 128   /* prompt positions or greedy steps per block */
#define MAX_TOP 64    /* logits listed per line (ours: OUR_TOP) */
#define OUR_TOP 64
#define MAX_BLOCKS 8

struct top_line { int n; int id[MAX_TOP]; double logit[MAX_TOP]; };

struct block {
    char prompt[512];
    int n_tokens, n_top, n_gtop, n_greedy;
    int tokens[MAX_POS], greedy[MAX_POS];
    struct top_line top[MAX_POS], gtop[MAX_POS];
};

/* ---- parsing (.ref files and our output alike) ---- */

static int parse_ids(const char *s, int *out, int cap) {
    int n = 0;
    char *end;
    for (;;) {
        long v = strtol(s, &end, 10);
        if (end == s || n == cap) return n;
        out[n++] = (int)v;
        s = end;
    }
}

static void parse_top(const char *s, struct top_line *t) {
    t->n = 0;
    while (*s && t->n < MAX_TOP) {
        char *end;
        long id = strtol(s, &end, 10);
        if (end == s || *end != ':') return;
        t->id[t->n] = (int)id;
        t->logit[t->n] = strtod(end + 1, &end);
        t->n++;
        s = end;
    }
}

/* Parse every block of text; returns the block count. */
static int parse_blocks(char *text, struct block *b, int cap) {
    int n = -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        int idx;
        char *colon = strchr(line, ':');
        if (!strncmp(line, "prompt: ", 8)) {
            if (++n == cap) return n;
            memset(&b[n], 0, sizeof b[n]);
            snprintf(b[n].prompt, sizeof b[n].prompt, "%s", line + 8);
        } else if (n < 0 || !colon) {
            continue;
        } else if (!strncmp(line, "tokens:", 7)) {
            b[n].n_tokens = parse_ids(line + 7, b[n].tokens, MAX_POS);
        } else if (!strncmp(line, "greedy:", 7)) {
            b[n].n_greedy = parse_ids(line + 7, b[n].greedy, MAX_POS);
        } else if (sscanf(line, "top %d:", &idx) == 1 && idx >= 0 && idx < MAX_POS) {
            parse_top(colon + 1, &b[n].top[idx]);
            if (idx + 1 > b[n].n_top) b[n].n_top = idx + 1;
        } else if (sscanf(line, "gtop %d:", &idx) == 1 && idx >= 0 && idx < MAX_POS) {
            parse_top(colon + 1, &b[n].gtop[idx]);
            if (idx + 1 > b[n].n_gtop) b[n].n_gtop = idx + 1;
        }
    }
    return n + 1;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) { free(buf); buf = NULL; }
    if (buf) buf[size] = 0;
    fclose(f);
    return buf;
}

/* ---- comparison ---- */

/* One comparison. strict: a rule broken is a test failure (and the block
 * stops there); otherwise (how far a run follows the reference, e.g. with a
 * Q4_0 KV cache) it is counted and the comparison goes on. */
struct cmp {
    double tol;
    int strict;
    double max_diff;   /* over every listed logit compared */
    int n_over;        /* listed logits off by more than tol */
    int n_top1;        /* top-1 disagreements outside a near tie */
    int steps;         /* greedy steps compared (both runs on the same path) */
    int parted;        /* 0: followed to the end; 1: parted at a near tie; 2: elsewhere */
};

/* Every id the reference lists must be in ours, its logit within tol; top-1
 * must agree unless the reference's top two are within 2 tol. */
static int compare_line(const char *what, int i, const struct top_line *ref,
                        const struct top_line *ours, struct cmp *c) {
    int ok = 1;
    double tol = c->tol;
    for (int r = 0; r < ref->n; r++) {
        int found = -1;
        for (int o = 0; o < ours->n; o++) if (ours->id[o] == ref->id[r]) { found = o; break; }
        if (found < 0) {
            c->n_over++;
            if (!c->strict) { ok = 0; continue; }
            TEST_FAIL_AT("%s %d: id %d (ref %.6f) is not in our top %d", what, i, ref->id[r],
                         ref->logit[r], ours->n);
            return 0;
        }
        double d = fabs(ours->logit[found] - ref->logit[r]);
        if (!(d <= c->max_diff)) c->max_diff = d; /* NaN sticks */
        if (!(d <= tol)) { /* NaN fails too */
            c->n_over++;
            if (c->strict)
                TEST_FAIL_AT("%s %d: id %d logit %.6f, reference %.6f (tol %.2f)", what, i,
                             ref->id[r], ours->logit[found], ref->logit[r], tol);
            ok = 0;
        }
    }
    int near_tie = ref->n >= 2 && ref->logit[0] - ref->logit[1] <= 2 * tol;
    if (ref->n && ours->n && ours->id[0] != ref->id[0] && !near_tie) {
        c->n_top1++;
        if (c->strict)
            TEST_FAIL_AT("%s %d: top-1 is %d, reference %d (gap %.3f)", what, i, ours->id[0],
                         ref->id[0], ref->logit[0] - ref->logit[1]);
        ok = 0;
    }
    return ok;
}

/* 1 when the prompt tokens agree; else a failure that says so. */
static int same_tokens(const char *label, const struct block *ref, const struct block *ours) {
    int n = ref->n_tokens < ours->n_tokens ? ref->n_tokens : ours->n_tokens;
    for (int i = 0; i <= n; i++)
        if (i == n ? ours->n_tokens != ref->n_tokens : ours->tokens[i] != ref->tokens[i]) {
            TEST_FAIL_AT("%s '%s': prompt tokens differ from the reference's at %d (%d tokens, reference %d): "
                         "a tokenizer fault; logits checked from the reference's ids", label, ref->prompt, i,
                         ours->n_tokens, ref->n_tokens);
            return 0;
        }
    return 1;
}

/* A block that compares nothing must not pass: the reference's has tokens,
 * a top line per prompt position and greedy steps with their gtop lines;
 * ours (parsed from our own report) has at least as many of each. */
static int block_complete(const char *label, const char *who, const struct block *b, const struct block *need) {
    int ok = b->n_tokens > 0 && b->n_top >= b->n_tokens && b->n_greedy > 0 && b->n_gtop >= b->n_greedy;
    for (int i = 0; ok && i < b->n_top; i++) ok = b->top[i].n > 0;
    for (int i = 0; ok && i < b->n_gtop; i++) ok = b->gtop[i].n > 0;
    if (need) ok = ok && b->n_tokens >= need->n_tokens && b->n_top >= need->n_top && b->n_greedy >= need->n_greedy &&
                   b->n_gtop >= need->n_gtop;
    CHECK_MSG(ok, "%s: %s block '%s' is incomplete: %d tokens, %d top lines, %d greedy, %d gtop lines", label, who,
              b->prompt, b->n_tokens, b->n_top, b->n_greedy, b->n_gtop);
    return ok;
}

static void compare_block(const char *label, const struct block *ref, const struct block *ours,
                          struct cmp *c) {
    if (!block_complete(label, "reference", ref, NULL) || !block_complete(label, "our", ours, ref)) return;
    CHECK_EQ_INT(ours->n_tokens, ref->n_tokens);
    for (int i = 0; i < ref->n_tokens && i < ours->n_tokens; i++)
        if (ours->tokens[i] != ref->tokens[i]) {
            TEST_FAIL_AT("%s '%s': token %d is %d, reference %d", label, ref->prompt, i,
                         ours->tokens[i], ref->tokens[i]);
            return;
        }
    for (int i = 0; i < ref->n_top; i++)
        if (!compare_line("top", i, &ref->top[i], &ours->top[i], c) && c->strict) return;
    for (int g = 0; g < ref->n_greedy; g++) {
        if (!compare_line("gtop", g, &ref->gtop[g], &ours->gtop[g], c) && c->strict) return;
        c->steps++;
        if (ours->greedy[g] != ref->greedy[g]) {
            const struct top_line *t = &ref->gtop[g];
            c->parted = t->n >= 2 && t->logit[0] - t->logit[1] <= 2 * c->tol ? 1 : 2;
            if (c->parted == 2 && c->strict)
                TEST_FAIL_AT("%s: greedy %d is %d, reference %d", label, g, ours->greedy[g], ref->greedy[g]);
            break;
        }
    }
    printf("  %-30s %-12.12s... max |diff| %.4f (tol %.2f), greedy %d/%d%s", label, ref->prompt,
           c->max_diff, c->tol, c->steps, ref->n_greedy,
           c->parted == 1 ? " (parted at a near tie)" : c->parted == 2 ? " (parted, no near tie)" : "");
    if (!c->strict)
        printf(", %d logits over tol, %d top-1 misses", c->n_over, c->n_top1);
    printf("\n");
}

static int all_float(const struct rbee_model *m) {
    for (uint64_t i = 0; i < m->file.n_tensors; i++) {
        uint32_t t = m->file.tensors[i].type;
        if (t != RB_TYPE_F32 && t != RB_TYPE_F16) return 0;
    }
    return 1;
}

/* How one model file is run against its reference. */
struct golden_run {
    int n_threads;
    const char *kv_type; /* K and V cache type ("q8_0"...); NULL: the default (F16) */
    double tol;          /* 0: by the weights (0.05 all F32/F16, 0.3 quantized) */
    int strict;          /* 0: logits past tol are counted, not failures; then: */
    double bound;        /* every listed logit within bound, and top-1 agreeing and the greedy path
                          * parting only where the reference had a near tie (2 tol) */
    double bound_small_head; /* bound for heads smaller than a 32-value block (padded when quantized) */
};

static void golden_file(const char *name, const struct golden_run *run) {
    char path[512], ref_path[512], model_rel[256], err[RBEE_ERR_MAX], label[64];
    snprintf(model_rel, sizeof model_rel, "models/%s.gguf", name);
    test_path(path, sizeof path, model_rel);
    snprintf(model_rel, sizeof model_rel, "reference/%s.ref", name);
    test_path(ref_path, sizeof ref_path, model_rel);
    snprintf(label, sizeof label, "%s%s%s", name, run->kv_type ? " kv=" : "", run->kv_type ? run->kv_type : "");

    rbee_model *m;
    if (rbee_model_load(&m, path, err)) {
        TEST_FAIL_AT("%s: %s", path, err);
        return;
    }
    char *ref_text = read_all(ref_path);
    static struct block ref[MAX_BLOCKS], ours[MAX_BLOCKS];
    int n_ref = ref_text ? parse_blocks(ref_text, ref, MAX_BLOCKS) : 0;
    CHECK_MSG(n_ref > 0, "%s: no blocks (missing or unreadable?)", ref_path);
    double tol = run->tol > 0 ? run->tol : all_float(m) ? 0.05 : 0.3;
    for (int b = 0; b < n_ref; b++) {
        struct rbee_context_params cp = rbee_context_default_params();
        cp.n_threads = run->n_threads;
        cp.type_k = cp.type_v = run->kv_type;
        rbee_context *c;
        if (rbee_context_new(&c, m, &cp, err)) { TEST_FAIL_AT("%s: %s", label, err); break; }
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        int rc = rb_logits_report(m, c, ref[b].prompt, 1, ref[b].n_greedy, OUR_TOP, out, err);
        fclose(out);
        CHECK_MSG(rc == 0, "%s: %s", label, err);
        int parsed = rc == 0 ? parse_blocks(text, &ours[b], 1) : 0;
        CHECK_MSG(rc != 0 || parsed == 1, "%s: our report does not parse into one block:\n%.300s", label, text);
        if (parsed == 1 && !same_tokens(label, &ref[b], &ours[b])) {
            free(text);
            text = NULL;
            rbee_reset(c);
            out = open_memstream(&text, &len);
            rc = rb_logits_report_ids(c, ref[b].prompt, ref[b].tokens, ref[b].n_tokens, ref[b].n_greedy,
                                      OUR_TOP, out, err);
            fclose(out);
            CHECK_MSG(rc == 0, "%s: %s", label, err);
            parsed = rc == 0 ? parse_blocks(text, &ours[b], 1) : 0;
            CHECK_MSG(rc != 0 || parsed == 1, "%s: our report does not parse into one block", label);
        }
        struct cmp cmp = { .tol = tol, .strict = run->strict };
        if (parsed == 1) compare_block(label, &ref[b], &ours[b], &cmp);
        if (parsed == 1 && !run->strict) {
            double bound = m->hp.head_dim < 32 ? run->bound_small_head : run->bound;
            CHECK_MSG(cmp.max_diff <= bound, "%s '%s': max |diff| %.4f over %.2f", label, ref[b].prompt, cmp.max_diff,
                      bound);
            CHECK_MSG(cmp.n_top1 == 0, "%s '%s': %d top-1 misses outside a near tie", label, ref[b].prompt, cmp.n_top1);
            CHECK_MSG(cmp.parted != 2, "%s '%s': greedy parted without a near tie", label, ref[b].prompt);
        }
        free(text);
        rbee_context_free(c);
    }
    free(ref_text);
    rbee_model_free(m);
}

static const char *const stories[] = { "stories260K", "stories260K-q8_0", "stories260K-q4_0" };
/* also run under RBEE_GOLDEN_QUICK=1 (qemu): one of the NEOX / fused layouts */
static const char *const quick_models[] = { "phi3-mini-q8_0" };

static int quick(void) {
    const char *q = getenv("RBEE_GOLDEN_QUICK");
    return q && !strcmp(q, "1");
}

static int listed(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++) if (!strcmp(name, list[i])) return 1;
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

/* Model names of every .ref file in the reference directory, sorted; -1 if unreadable. */
static int ref_names(char (*names)[128], int cap) {
    char dir_path[512];
    DIR *d = opendir(test_path(dir_path, sizeof dir_path, "reference"));
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && n < cap;) {
        size_t len = strlen(e->d_name);
        if (len > 4 && len < 128 && !strcmp(e->d_name + len - 4, ".ref")) {
            memcpy(names[n], e->d_name, len - 4);
            names[n++][len - 4] = 0;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], by_name);
    return n;
}

TEST(golden_stories) {
    struct golden_run run = { .n_threads = 1, .strict = 1 };
    for (size_t i = 0; i < sizeof stories / sizeof stories[0]; i++) golden_file(stories[i], &run);
}

/* Every other reference file: new files are covered by being there. */
TEST(golden_all) {
    static char names[64][128];
    int n = ref_names(names, 64), ran = 0;
    CHECK_MSG(n > 0, "no .ref files in %s/reference", test_shared_dir());
    struct golden_run run = { .n_threads = 2, .strict = 1 };
    for (int i = 0; i < n; i++) {
        if (listed(names[i], stories, sizeof stories / sizeof stories[0])) continue;
        if (quick() && !listed(names[i], quick_models, sizeof quick_models / sizeof quick_models[0])) continue;
        golden_file(names[i], &run);
        ran++;
    }
    CHECK_MSG(ran > 0, "no golden model ran");
    if (quick()) printf("  RBEE_GOLDEN_QUICK=1: %d of the models\n", ran);
}

/* The same comparison with a quantized KV cache (issue 7). With Q8_0 K and
 * V every model below must meet the reference at tolerance 0.3, float
 * weights included (the reference itself meets it with a Q8_0 cache on the
 * llama-mini files; stories260K's head_dim of 8 is smaller than a block,
 * which the reference refuses and we must not). Q4_0 is farther off (there
 * is no reference run with it): its logits must stay within 1.0 of the
 * reference's (4.0 for stories260K's 8-value heads, padded to a 32-value
 * block; measured at most 0.73 and 2.96), top-1 must agree at every
 * position and greedy step outside near ties, and greedy may part only at
 * a near tie. Add a model here to cover it. */
static const char *const kv_models[] = { "stories260K", "llama-mini-f16", "llama-mini-q4_0", "gpt2-mini-f16",
                                         "qwen2-mini-q8_0", "phi3-mini-q8_0" };

TEST(golden_kv_q8_0) {
    struct golden_run run = { .n_threads = 2, .kv_type = "q8_0", .tol = 0.3, .strict = 1 };
    for (size_t i = 0; i < sizeof kv_models / sizeof kv_models[0]; i++)
        if (!quick() || !strncmp(kv_models[i], "stories", 7)) golden_file(kv_models[i], &run);
}

TEST(golden_kv_q4_0) {
    struct golden_run run = { .n_threads = 2, .kv_type = "q4_0", .tol = 0.3, .strict = 0, .bound = 1.0,
                              .bound_small_head = 4.0 };
    for (size_t i = 0; i < sizeof kv_models / sizeof kv_models[0]; i++)
        if (!quick() || !strncmp(kv_models[i], "stories", 7)) golden_file(kv_models[i], &run);
}

/* The same tokens with 1 and 2 threads must give the same bits: a prompt
 * long enough for the prompt kernels (repacked rows, from 16 tokens), whose
 * rows the threads share out in pieces that depend on timing, then
 * generation steps. */
static void parity(const char *name) {
    char path[512], rel[256], err[RBEE_ERR_MAX];
    snprintf(rel, sizeof rel, "models/%s.gguf", name);
    test_path(path, sizeof path, rel);
    rbee_model *m;
    if (rbee_model_load(&m, path, err)) { TEST_FAIL_AT("%s: %s", path, err); return; }
    int32_t prompt[] = { 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315,
                         261, 407, 286, 383, 432, 376, 298, 403 };
    int n_prompt = 20, n_vocab = m->hp.n_vocab;
    float *logits[2];
    for (int run = 0; run < 2; run++) {
        struct rbee_context_params cp = rbee_context_default_params();
        cp.n_threads = run + 1;
        cp.n_ctx = 64;
        rbee_context *c;
        logits[run] = malloc((size_t)(n_prompt + 4) * n_vocab * sizeof(float));
        if (rbee_context_new(&c, m, &cp, err)) { TEST_FAIL_AT("%s", err); rbee_model_free(m); return; }
        c->pool_min_work = 0; /* every job through the pool, however small */
        CHECK(rbee_eval(c, prompt, n_prompt, 1, err) == 0);
        memcpy(logits[run], rbee_get_logits(c, 0), (size_t)n_prompt * n_vocab * sizeof(float));
        for (int s = 0; s < 4; s++) { /* generation steps */
            int32_t id = prompt[s + 1];
            CHECK(rbee_eval(c, &id, 1, 0, err) == 0);
            memcpy(logits[run] + (size_t)(n_prompt + s) * n_vocab, rbee_get_logits(c, -1),
                   (size_t)n_vocab * sizeof(float));
        }
        rbee_context_free(c);
    }
    CHECK_MSG(!memcmp(logits[0], logits[1], (size_t)(n_prompt + 4) * n_vocab * sizeof(float)),
              "%s: logits differ between -t 1 and -t 2", name);
    free(logits[0]);
    free(logits[1]);
    rbee_model_free(m);
}

TEST(threads_bit_identical) {
    parity("stories260K");
    parity("stories260K-q4_0");
    parity("stories260K-q8_0");
    if (!quick()) parity("llama-mini-q4_k_m");
    if (!quick()) parity("gpt2-mini-q8_0"); /* learned positions, fused qkv, GELU */
    if (!quick()) parity("qwen2-mini-q8_0"); /* NEOX rope, q/k/v biases */
    if (!quick()) parity("phi3-mini-q8_0");  /* fused qkv and gate/up views, q scaled first */
}

int main(void) {
    printf("isa %s\n", rbee_isa());
    RUN(golden_stories);
    RUN(golden_all);
    RUN(golden_kv_q8_0);
    RUN(golden_kv_q4_0);
    RUN(threads_bit_identical);
    return test_summary();
}
