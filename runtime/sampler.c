/* sampler.c - greedy, temperature, top-k, top-p, min-p, repetition penalty.
 *
 * Glossary: a candidate is (id, logit) or, after softmax, (id, prob).
 * The sampler keeps the last repeat_last_n accepted ids in a ring. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

struct rb_cand { int32_t id; float logit; float prob; };

struct rbee_sampler {
    struct rbee_sampler_params p;
    int n_vocab;
    struct rb_cand *cands; /* [n_vocab] scratch */
    int32_t *recent;       /* [repeat_last_n] ring of accepted ids */
    int n_recent, recent_head;
    uint64_t rng;
};

struct rbee_sampler_params rbee_sampler_default_params(void) {
    struct rbee_sampler_params p = {
        .temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
        .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 42,
    };
    return p;
}

float rb_rand_uniform(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *state = x;
    return (float)((x * 0x2545F4914F6CDD1DULL) >> 40) / 16777216.0f; /* 24 bits */
}

rbee_sampler *rbee_sampler_new(const struct rbee_sampler_params *p, int n_vocab) {
    if (n_vocab < 1) return NULL;
    rbee_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
    s->n_vocab = n_vocab;
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    s->recent = malloc(((size_t)s->p.repeat_last_n + 1) * sizeof *s->recent);
    if (!s->cands || !s->recent) { rbee_sampler_free(s); return NULL; }
    /* splitmix the seed so that seeds 0, 1, 2 give unrelated streams (and
     * xorshift never starts from 0) */
    uint64_t z = p->seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    s->rng = (z ^ (z >> 31)) | 1;
    return s;
}

void rbee_sampler_free(rbee_sampler *s) {
    if (!s) return;
    free(s->cands);
    free(s->recent);
    free(s);
}

void rbee_sampler_accept(rbee_sampler *s, int32_t id) {
    int cap = s->p.repeat_last_n;
    if (cap <= 0) return;
    s->recent[s->recent_head] = id;
    s->recent_head = (s->recent_head + 1) % cap;
    if (s->n_recent < cap) s->n_recent++;
}

/* Penalize each distinct recent id once, like llama.cpp: logits above zero
 * are divided by the penalty, the others multiplied. */
static void apply_repeat_penalty(rbee_sampler *s) {
    float pen = s->p.repeat_penalty;
    if (pen == 1.0f || s->n_recent == 0) return;
    for (int i = 0; i < s->n_recent; i++) {
        int32_t id = s->recent[i];
        if (id < 0 || id >= s->n_vocab) continue;
        int seen_before = 0;
        for (int j = 0; j < i; j++) if (s->recent[j] == id) { seen_before = 1; break; }
        if (seen_before) continue;
        float *l = &s->cands[id].logit;
        *l = *l > 0 ? *l / pen : *l * pen;
    }
}

static int cand_cmp_desc(const void *a_, const void *b_) {
    const struct rb_cand *a = a_, *b = b_;
    if (a->logit != b->logit) return a->logit < b->logit ? 1 : -1;
    return a->id < b->id ? -1 : (a->id > b->id);
}

/* Move the k highest candidates to the front, sorted, by one partial
 * selection pass (k small) or a full sort (k large). */
static void keep_top(struct rb_cand *c, int n, int k) {
    if (k >= n / 4) { qsort(c, (size_t)n, sizeof *c, cand_cmp_desc); return; }
    /* sort the first k, then let each better candidate replace the
     * k-th and bubble up: O(n) for typical logits */
    qsort(c, (size_t)k, sizeof *c, cand_cmp_desc);
    for (int i = k; i < n; i++) {
        if (cand_cmp_desc(&c[i], &c[k - 1]) >= 0) continue;
        struct rb_cand x = c[i];
        c[i] = c[k - 1];
        int j = k - 1;
        while (j > 0 && cand_cmp_desc(&x, &c[j - 1]) < 0) { c[j] = c[j - 1]; j--; }
        c[j] = x;
    }
}

static void softmax_cands(struct rb_cand *c, int n, float temp) {
    float max = c[0].logit;
    for (int i = 1; i < n; i++) if (c[i].logit > max) max = c[i].logit;
    double sum = 0;
    for (int i = 0; i < n; i++) { c[i].prob = expf((c[i].logit - max) / temp); sum += c[i].prob; }
    for (int i = 0; i < n; i++) c[i].prob = (float)(c[i].prob / sum);
}

int32_t rbee_sample(rbee_sampler *s, const float *logits) {
    int n = s->n_vocab;
    for (int i = 0; i < n; i++) { s->cands[i].id = i; s->cands[i].logit = logits[i]; }
    apply_repeat_penalty(s);

    if (s->p.temp <= 0.0f) {
        int best = 0;
        for (int i = 1; i < n; i++) if (s->cands[i].logit > s->cands[best].logit) best = i;
        return best;
    }

    int k = s->p.top_k > 0 && s->p.top_k < n ? s->p.top_k : n;
    keep_top(s->cands, n, k);
    n = k; /* sorted, highest first */

    softmax_cands(s->cands, n, 1.0f);
    if (s->p.top_p < 1.0f) {
        float cum = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += s->cands[i].prob;
            if (cum >= s->p.top_p) { keep = i + 1; break; }
        }
        n = keep;
    }
    if (s->p.min_p > 0.0f) {
        float floor_p = s->cands[0].prob * s->p.min_p;
        int keep = 1;
        while (keep < n && s->cands[keep].prob >= floor_p) keep++;
        n = keep;
    }

    softmax_cands(s->cands, n, s->p.temp);
    float r = rb_rand_uniform(&s->rng), cum = 0;
    for (int i = 0; i < n; i++) {
        cum += s->cands[i].prob;
        if (r < cum) return s->cands[i].id;
    }
    return s->cands[n - 1].id; /* rounding left r just above the total */
}
