/* logits_report.c - prompt tokens, the top logits after every prompt
 * position, and a greedy continuation, as text (see logits_report.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "logits_report.h"

/* The k highest logits, highest first; ties go to the lower id. */
static void print_top(FILE *out, const char *label, int i, const float *logits, int n_vocab,
                      int k, int32_t *best) {
    int n = 0;
    for (int id = 0; id < n_vocab; id++) {
        if (n == k && !(logits[id] > logits[best[k - 1]])) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && logits[id] > logits[best[j - 1]]) { best[j] = best[j - 1]; j--; }
        best[j] = id;
    }
    fprintf(out, "%s %d:", label, i);
    for (int j = 0; j < n; j++) fprintf(out, " %d:%.6f", best[j], (double)logits[best[j]]);
    fprintf(out, "\n");
}

static int32_t argmax(const float *logits, int n_vocab) {
    int32_t best = 0;
    for (int id = 1; id < n_vocab; id++) if (logits[id] > logits[best]) best = id;
    return best;
}

int rb_logits_report_ids(rbee_context *c, const char *prompt, const int32_t *prompt_ids, int n,
                         int n_greedy, int top_k, FILE *out, char *err) {
    int n_vocab = rbee_n_vocab(c), n_ctx = rbee_n_ctx(c);
    if (top_k < 1) top_k = 1;
    if (top_k > n_vocab) top_k = n_vocab;
    if (n_greedy < 0) n_greedy = 0;
    if (n <= 0) { snprintf(err, RBEE_ERR_MAX, "the prompt has no tokens"); return -1; }
    if ((int64_t)n + (n_greedy > 0 ? n_greedy - 1 : 0) > n_ctx) {
        snprintf(err, RBEE_ERR_MAX, "%d prompt tokens + %d greedy steps do not fit the context of %d",
                 n, n_greedy, n_ctx);
        return -1;
    }
    int32_t *best = malloc((size_t)top_k * sizeof *best), *greedy = malloc(((size_t)n_greedy + 1) * sizeof *greedy);
    int rc = -1;
    if (!best || !greedy) { snprintf(err, RBEE_ERR_MAX, "out of memory"); goto done; }
    fprintf(out, "prompt: %s\ntokens:", prompt);
    for (int i = 0; i < n; i++) fprintf(out, " %d", prompt_ids[i]);
    fprintf(out, "\n");
    if (rbee_eval(c, prompt_ids, n, 1, err)) goto done;
    for (int i = 0; i < n; i++)
        print_top(out, "top", i, rbee_get_logits(c, i), n_vocab, top_k, best);
    for (int g = 0; g < n_greedy; g++) {
        if (g > 0 && rbee_eval(c, &greedy[g - 1], 1, 0, err)) goto done;
        const float *logits = rbee_get_logits(c, -1);
        print_top(out, "gtop", g, logits, n_vocab, top_k, best);
        greedy[g] = argmax(logits, n_vocab);
    }
    fprintf(out, "greedy:");
    for (int g = 0; g < n_greedy; g++) fprintf(out, " %d", greedy[g]);
    fprintf(out, "\n");
    rc = 0;
done:
    free(best);
    free(greedy);
    return rc;
}

int rb_logits_report(const rbee_model *m, rbee_context *c, const char *prompt, int parse_special,
                     int n_greedy, int top_k, FILE *out, char *err) {
    size_t len = strlen(prompt);
    int64_t cap = (int64_t)len + 2, n;
    int32_t *ids = NULL;
    for (;;) { /* SPM needs at most one id per byte plus BOS; BPE fewer */
        int32_t *p = realloc(ids, (size_t)cap * sizeof *ids);
        if (!p) { free(ids); snprintf(err, RBEE_ERR_MAX, "out of memory"); return -1; }
        ids = p;
        n = rbee_tokenize(m, prompt, len, -1, parse_special, ids, cap, err);
        if (n < 0 || n <= cap) break;
        cap = n;
    }
    int rc = n < 0 ? -1
           : n > INT32_MAX ? (snprintf(err, RBEE_ERR_MAX, "the prompt has too many tokens"), -1)
           : rb_logits_report_ids(c, prompt, ids, (int)n, n_greedy, top_k, out, err);
    free(ids);
    return rc;
}
