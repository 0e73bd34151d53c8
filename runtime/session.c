/* session.c - one generation loop for `rbee run`, `rbee chat` and the
 * server: a context, the tokens its KV cache holds, prompt reuse by longest
 * common prefix, sampling until an end-of-generation token, a stop string,
 * the token budget, a full context or a cancel, with text streamed out as
 * it becomes final. Built on the public API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rbee.h"

/* Prompt tokens per rbee_eval call: results do not depend on the split
 * (rbee_eval splits batches itself), and a cancel is seen between chunks. */
#define PROMPT_CHUNK 256

struct rbee_session {
    const rbee_model *m;
    rbee_context *c;
    int32_t *tokens; /* [n_ctx]: what the KV cache holds, in order */
    int n_cached;
};

int rbee_session_new(rbee_session **out, const rbee_model *m, const struct rbee_context_params *p, char *err) {
    *out = NULL;
    rbee_session *s = calloc(1, sizeof *s);
    if (!s) {
        strcpy(err, "out of memory");
        return -1;
    }
    s->m = m;
    if (rbee_context_new(&s->c, m, p, err)) {
        free(s);
        return -1;
    }
    s->tokens = malloc((size_t)rbee_n_ctx(s->c) * sizeof *s->tokens);
    if (!s->tokens) {
        rbee_context_free(s->c);
        free(s);
        strcpy(err, "out of memory");
        return -1;
    }
    *out = s;
    return 0;
}

void rbee_session_free(rbee_session *s) {
    if (!s) return;
    rbee_context_free(s->c);
    free(s->tokens);
    free(s);
}

rbee_context *rbee_session_context(rbee_session *s) { return s->c; }
int rbee_session_n_cached(const rbee_session *s) { return s->n_cached; }
const int32_t *rbee_session_tokens(const rbee_session *s) { return s->tokens; }

void rbee_session_reset(rbee_session *s) {
    rbee_reset(s->c);
    s->n_cached = 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cancelled(const struct rbee_gen_params *gp) { return gp->cancel && *gp->cancel; }

/* Evaluate tokens and record them as cached. */
static int feed(rbee_session *s, const int32_t *ids, int n, char *err) {
    if (rbee_eval(s->c, ids, n, 0, err)) return -1;
    memcpy(s->tokens + s->n_cached, ids, (size_t)n * sizeof *ids);
    s->n_cached += n;
    return 0;
}

/* ---- text out, holding back what could begin a stop string ---- */

struct text_out {
    const struct rbee_gen_params *gp;
    char *held;         /* final text not yet passed on: a possible stop-string start */
    size_t n_held, cap;
    size_t max_stop;    /* longest stop string */
    int stopped;        /* a stop string was seen: nothing more goes out */
    int user_cancel;    /* on_text asked to stop */
};

static void emit(struct text_out *t, const char *p, size_t n) {
    if (!n || t->user_cancel || !t->gp->on_text) return;
    if (t->gp->on_text(t->gp->user, p, n)) t->user_cancel = 1;
}

/* Does some stop string begin with the last k bytes of held? */
static int could_start_stop(const struct text_out *t, size_t k) {
    const char *tail = t->held + t->n_held - k;
    for (int i = 0; i < t->gp->n_stop; i++) {
        const char *st = t->gp->stop[i];
        if (strlen(st) > k && !memcmp(st, tail, k)) return 1;
    }
    return 0;
}

/* Append final text; pass on all of it except a tail that may begin a stop
 * string. Returns 1 when a stop string is complete (its text is dropped). */
static int text_push(struct text_out *t, const char *p, size_t n, char *err) {
    if (t->stopped) return 1;
    if (!t->gp->n_stop) {
        emit(t, p, n);
        return 0;
    }
    if (t->n_held + n + 1 > t->cap) {
        size_t cap = (t->n_held + n + 1) * 2;
        char *h = realloc(t->held, cap);
        if (!h) {
            strcpy(err, "out of memory");
            return -1;
        }
        t->held = h;
        t->cap = cap;
    }
    memcpy(t->held + t->n_held, p, n);
    t->n_held += n;
    t->held[t->n_held] = 0;
    /* the earliest complete stop string wins */
    size_t cut = SIZE_MAX;
    for (int i = 0; i < t->gp->n_stop; i++) {
        const char *st = t->gp->stop[i];
        size_t sl = strlen(st);
        for (size_t at = 0; sl && at + sl <= t->n_held && at < cut; at++)
            if (!memcmp(t->held + at, st, sl)) {
                cut = at;
                break;
            }
    }
    if (cut != SIZE_MAX) {
        emit(t, t->held, cut);
        t->n_held = 0;
        t->stopped = 1;
        return 1;
    }
    size_t keep = t->n_held < t->max_stop ? t->n_held : t->max_stop;
    while (keep && !could_start_stop(t, keep)) keep--;
    emit(t, t->held, t->n_held - keep);
    memmove(t->held, t->held + t->n_held - keep, keep);
    t->n_held = keep;
    return 0;
}

/* ---- the loop ---- */

/* Make the cache hold prompt: keep the longest common prefix, evaluate the
 * rest. At least the last prompt token is evaluated, for its logits. */
static int prefill(rbee_session *s, const int32_t *prompt, int n_prompt,
                   const struct rbee_gen_params *gp, int *n_eval, char *err) {
    int keep = 0;
    while (keep < s->n_cached && keep < n_prompt && s->tokens[keep] == prompt[keep]) keep++;
    if (keep == n_prompt) keep--;
    if (rbee_set_pos(s->c, keep)) {
        strcpy(err, "cannot rewind the cache");
        return -1;
    }
    s->n_cached = keep;
    *n_eval = n_prompt - keep;
    for (int done = keep; done < n_prompt; ) {
        if (cancelled(gp)) return 1;
        int n = n_prompt - done < PROMPT_CHUNK ? n_prompt - done : PROMPT_CHUNK;
        if (feed(s, prompt + done, n, err)) return -1;
        done += n;
    }
    return 0;
}

int rbee_session_generate(rbee_session *s, const int32_t *prompt, int n_prompt,
                          const struct rbee_gen_params *gp, struct rbee_gen_result *res, char *err) {
    memset(res, 0, sizeof *res);
    res->n_prompt = n_prompt;
    int n_ctx = rbee_n_ctx(s->c);
    if (n_prompt <= 0) {
        strcpy(err, "the prompt has no tokens");
        return -1;
    }
    if (n_prompt > n_ctx) {
        snprintf(err, RBEE_ERR_MAX, "the prompt has %d tokens, more than the context of %d", n_prompt, n_ctx);
        return -1;
    }
    struct text_out out = { .gp = gp };
    for (int i = 0; i < gp->n_stop; i++) {
        size_t sl = strlen(gp->stop[i]);
        if (sl > out.max_stop) out.max_stop = sl;
    }
    rbee_sampler *smp = rbee_sampler_new(&gp->sampling, rbee_n_vocab(s->c));
    rbee_detok *d = rbee_detok_new(s->m);
    char *piece = malloc(rbee_detok_max_piece(s->m));
    size_t piece_cap = rbee_detok_max_piece(s->m);
    int rc = -1;
    if (!smp || !d || !piece) {
        strcpy(err, "out of memory");
        goto done;
    }

    double t0 = now_ms();
    int pf = prefill(s, prompt, n_prompt, gp, &res->n_prompt_eval, err);
    res->prompt_ms = now_ms() - t0;
    if (pf < 0) goto done;
    res->finish = RBEE_FINISH_CANCELLED;
    if (pf > 0) {
        res->n_cached = s->n_cached;
        rc = 0;
        goto done;
    }
    /* the prompt goes through the detokenizer unseen, so the first piece of
     * the reply decodes as it would in the middle of the text */
    for (int i = 0; i < n_prompt; i++) {
        rbee_sampler_accept(smp, prompt[i]);
        rbee_detok_push(d, prompt[i], piece, piece_cap);
    }

    t0 = now_ms();
    res->finish = RBEE_FINISH_LENGTH;
    for (;;) {
        if (gp->n_predict >= 0 && res->n_generated >= gp->n_predict) break;
        if (cancelled(gp) || out.user_cancel) { res->finish = RBEE_FINISH_CANCELLED; break; }
        int32_t id = rbee_sample(smp, rbee_get_logits(s->c, -1));
        if (rbee_token_is_eog(s->m, id)) { res->finish = RBEE_FINISH_STOP; break; }
        rbee_sampler_accept(smp, id);
        res->n_generated++;
        /* evaluated at once, so the cache holds every token passed on, but
         * for the one sampled from the logits of a full context's last row */
        int full = s->n_cached >= n_ctx;
        if (!full && feed(s, &id, 1, err)) goto done;
        size_t k = rbee_detok_push(d, id, piece, piece_cap);
        int st = text_push(&out, piece, k, err);
        if (st < 0) goto done;
        if (st > 0) { res->finish = RBEE_FINISH_STOP; break; }
        if (full) { res->finish = RBEE_FINISH_CONTEXT; break; }
    }
    res->gen_ms = now_ms() - t0;
    /* nothing more can complete a stop string: what is still held is text */
    size_t k = rbee_detok_flush(d, piece, piece_cap);
    int st = text_push(&out, piece, k, err);
    if (st < 0) goto done;
    if (st > 0) res->finish = RBEE_FINISH_STOP;
    else emit(&out, out.held, out.n_held);
    if (out.user_cancel) res->finish = RBEE_FINISH_CANCELLED;
    res->n_cached = s->n_cached;
    rc = 0;
done:
    rbee_sampler_free(smp);
    rbee_detok_free(d);
    free(piece);
    free(out.held);
    return rc;
}
