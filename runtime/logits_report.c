/* logits_report.c - prompt tokens, the top logits after every prompt
 * position, and a greedy continuation, as text (see logits_report.h). */
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

int rb_logits_report(const rbee_model *m, rbee_context *c, const char *prompt, int parse_special,
                     int n_greedy, int top_k, FILE *out, char *err) {
    int n_vocab = rbee_n_vocab(c), n_ctx = rbee_n_ctx(c);
    if (top_k < 1) top_k = 1;
    if (top_k > n_vocab) top_k = n_vocab;
    size_t len = strlen(prompt);
    int64_t cap = (int64_t)len + 2, n;
    int32_t *ids = NULL, *best = malloc((size_t)top_k * sizeof *best);
    int rc = -1;
    for (;;) { /* SPM needs at most one id per byte plus BOS; BPE fewer */
        int32_t *p = realloc(ids, (size_t)(cap + (n_greedy > 0 ? n_greedy : 0)) * sizeof *ids);
        if (!p || !best) { free(p ? p : ids); ids = NULL; snprintf(err, RBEE_ERR_MAX, "out of memory"); goto done; }
        ids = p;
        n = rbee_tokenize(m, prompt, len, -1, parse_special, ids, cap, err);
        if (n < 0) goto done;
        if (n <= cap) break;
        cap = n;
    }
    if (n == 0) { snprintf(err, RBEE_ERR_MAX, "the prompt has no tokens"); goto done; }
    if (n + (n_greedy > 0 ? n_greedy - 1 : 0) > n_ctx) {
        snprintf(err, RBEE_ERR_MAX, "%lld prompt tokens + %d greedy steps do not fit the context of %d",
                 (long long)n, n_greedy, n_ctx);
        goto done;
    }

    fprintf(out, "prompt: %s\ntokens:", prompt);
    for (int64_t i = 0; i < n; i++) fprintf(out, " %d", ids[i]);
    fprintf(out, "\n");
    if (rbee_eval(c, ids, (int)n, 1, err)) goto done;
    for (int64_t i = 0; i < n; i++)
        print_top(out, "top", (int)i, rbee_get_logits(c, (int)i), n_vocab, top_k, best);

    int32_t *greedy = ids + n;
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
    free(ids);
    free(best);
    return rc;
}
