/* test_session.c - the generation session: greedy text equal to a plain
 * eval/sample loop, prompt reuse by common prefix, stop strings held back
 * and cut, cancels, a full context, bad prompts. On stories260K (real
 * weights: its greedy story is text with spaces and punctuation). */
#include "test.h"
#include "../runtime/rbee.h"

#define PROMPT "Once upon a time"

struct text { char s[8192]; size_t n; int calls; int cancel_after; };

static int collect(void *user, const char *p, size_t n) {
    struct text *t = user;
    if (t->n + n < sizeof t->s) {
        memcpy(t->s + t->n, p, n);
        t->n += n;
        t->s[t->n] = 0;
    }
    t->calls++;
    return t->cancel_after && t->calls >= t->cancel_after;
}

static rbee_model *load(void) {
    char path[512], err[RBEE_ERR_MAX];
    rbee_model *m = NULL;
    if (rbee_model_load(&m, test_path(path, sizeof path, "models/stories260K.gguf"), err))
        TEST_FAIL_AT("load: %s", err);
    return m;
}

static rbee_session *open_session(rbee_model *m, int n_ctx) {
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    rbee_session *s = NULL;
    char err[RBEE_ERR_MAX];
    if (rbee_session_new(&s, m, &cp, err)) TEST_FAIL_AT("session: %s", err);
    return s;
}

static int tokenize(rbee_model *m, const char *text, int32_t *ids, int cap) {
    char err[RBEE_ERR_MAX];
    int64_t n = rbee_tokenize(m, text, strlen(text), -1, 1, ids, cap, err);
    if (n < 0 || n > cap) TEST_FAIL_AT("tokenize: %s", err);
    return (int)n;
}

static struct rbee_gen_params greedy(int n_predict, struct text *t) {
    struct rbee_gen_params gp = { .n_predict = n_predict, .on_text = collect, .user = t };
    gp.sampling = rbee_sampler_default_params();
    gp.sampling.temp = 0;
    return gp;
}

/* The same story through rbee_eval / rbee_sample / the detokenizer. */
static void plain_loop(rbee_model *m, int n_predict, char *out, size_t cap, int32_t *gen) {
    int32_t ids[64];
    int n = tokenize(m, PROMPT, ids, 64);
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_threads = 1;
    rbee_context *c;
    char err[RBEE_ERR_MAX], piece[256];
    if (rbee_context_new(&c, m, &cp, err)) { TEST_FAIL_AT("%s", err); return; }
    struct rbee_sampler_params sp = rbee_sampler_default_params();
    sp.temp = 0;
    rbee_sampler *smp = rbee_sampler_new(&sp, rbee_n_vocab(c));
    rbee_detok *d = rbee_detok_new(m);
    size_t len = 0;
    for (int i = 0; i < n; i++) rbee_detok_push(d, ids[i], piece, sizeof piece);
    CHECK(rbee_eval(c, ids, n, 0, err) == 0);
    for (int i = 0; i < n_predict; i++) {
        int32_t id = rbee_sample(smp, rbee_get_logits(c, -1));
        gen[i] = id;
        size_t k = rbee_detok_push(d, id, piece, sizeof piece);
        if (len + k < cap) { memcpy(out + len, piece, k); len += k; }
        CHECK(rbee_eval(c, &id, 1, 0, err) == 0);
    }
    len += rbee_detok_flush(d, out + len, cap - len);
    out[len] = 0;
    rbee_detok_free(d);
    rbee_sampler_free(smp);
    rbee_context_free(c);
}

TEST(greedy_equals_plain_loop_and_reuses_prefix) {
    rbee_model *m = load();
    if (!m) return;
    char want[8192];
    int32_t gen[40];
    plain_loop(m, 40, want, sizeof want, gen);
    CHECK(strlen(want) > 60 && strchr(want, ' ') && strchr(want, '.'));

    rbee_session *s = open_session(m, 256);
    int32_t ids[256];
    int n = tokenize(m, PROMPT, ids, 256);
    struct text t = { 0 };
    struct rbee_gen_params gp = greedy(40, &t);
    struct rbee_gen_result r;
    char err[RBEE_ERR_MAX];
    CHECK(rbee_session_generate(s, ids, n, &gp, &r, err) == 0);
    CHECK_STR(t.s, want);
    CHECK(r.finish == RBEE_FINISH_LENGTH);
    CHECK_EQ_INT(r.n_prompt, n);
    CHECK_EQ_INT(r.n_prompt_eval, n);
    CHECK_EQ_INT(r.n_generated, 40);
    CHECK_EQ_INT(r.n_cached, n + 40);
    CHECK_EQ_INT(rbee_session_n_cached(s), n + 40);
    CHECK(!memcmp(rbee_session_tokens(s), ids, (size_t)n * sizeof *ids));
    CHECK(!memcmp(rbee_session_tokens(s) + n, gen, sizeof gen));

    /* prompt + the first 20 generated tokens: all cached but the last,
     * which is evaluated again for its logits; the continuation is the rest */
    memcpy(ids + n, gen, 20 * sizeof *ids);
    struct text t2 = { 0 };
    gp = greedy(20, &t2);
    CHECK(rbee_session_generate(s, ids, n + 20, &gp, &r, err) == 0);
    CHECK_EQ_INT(r.n_prompt_eval, 1);
    CHECK_EQ_INT(r.n_cached, n + 40);
    CHECK(!memcmp(rbee_session_tokens(s) + n, gen, sizeof gen));

    /* a prompt that parts from the cache after n + 10 tokens */
    memcpy(ids + n, gen, 10 * sizeof *ids);
    ids[n + 10] = gen[10] == 100 ? 101 : 100;
    struct text t3 = { 0 };
    gp = greedy(5, &t3);
    CHECK(rbee_session_generate(s, ids, n + 11, &gp, &r, err) == 0);
    CHECK_EQ_INT(r.n_prompt_eval, 1);
    CHECK_EQ_INT(r.n_cached, n + 16);
    /* ... gives what a fresh session gives for it */
    rbee_session *fresh = open_session(m, 256);
    struct text t4 = { 0 };
    gp = greedy(5, &t4);
    CHECK(rbee_session_generate(fresh, ids, n + 11, &gp, &r, err) == 0);
    CHECK_EQ_INT(r.n_prompt_eval, n + 11);
    CHECK_STR(t3.s, t4.s);
    CHECK(!memcmp(rbee_session_tokens(s), rbee_session_tokens(fresh), (size_t)(n + 16) * sizeof *ids));
    rbee_session_free(fresh);

    rbee_session_reset(s);
    CHECK_EQ_INT(rbee_session_n_cached(s), 0);
    rbee_session_free(s);
    rbee_model_free(m);
}

static void stop_case(rbee_model *m, const char *const *stop, int n_stop, const char *want,
                      enum rbee_finish want_finish) {
    rbee_session *s = open_session(m, 256);
    if (!s) return;
    int32_t ids[64];
    int n = tokenize(m, PROMPT, ids, 64);
    struct text t = { 0 };
    struct rbee_gen_params gp = greedy(40, &t);
    gp.stop = stop;
    gp.n_stop = n_stop;
    struct rbee_gen_result r;
    char err[RBEE_ERR_MAX];
    CHECK(rbee_session_generate(s, ids, n, &gp, &r, err) == 0);
    CHECK_STR(t.s, want);
    CHECK_EQ_INT(r.finish, want_finish);
    if (want_finish == RBEE_FINISH_STOP) CHECK(r.n_generated < 40);
    rbee_session_free(s);
}

TEST(stop_strings) {
    rbee_model *m = load();
    if (!m) return;
    char full[8192];
    int32_t gen[40];
    plain_loop(m, 40, full, sizeof full, gen);
    /* a stop string from the middle of the story, spanning token pieces */
    const char *mid = full + strlen(full) / 2;
    char stop1[16];
    memcpy(stop1, mid, 7);
    stop1[7] = 0;
    char want[8192];
    size_t at = (size_t)(strstr(full, stop1) - full);
    memcpy(want, full, at);
    want[at] = 0;
    const char *s1[] = { stop1 };
    stop_case(m, s1, 1, want, RBEE_FINISH_STOP);

    /* the earliest of several wins; one that never occurs changes nothing */
    char stop2[8];
    memcpy(stop2, full + at / 2, 3);
    stop2[3] = 0;
    size_t at2 = (size_t)(strstr(full, stop2) - full);
    memcpy(want, full, at2);
    want[at2] = 0;
    const char *s2[] = { "zzzz-never", stop1, stop2 };
    stop_case(m, s2, 3, want, RBEE_FINISH_STOP);

    /* a stop string that begins near the end but never completes: the held
     * text comes out at the end */
    char stop3[64];
    size_t fl = strlen(full);
    snprintf(stop3, sizeof stop3, "%s@@@", full + fl - 2);
    const char *s3[] = { "never-seen", stop3 };
    stop_case(m, s3, 2, full, RBEE_FINISH_LENGTH);
    rbee_model_free(m);
}

TEST(cancels_and_limits) {
    rbee_model *m = load();
    if (!m) return;
    int32_t ids[64];
    int n = tokenize(m, PROMPT, ids, 64);
    struct rbee_gen_result r;
    char err[RBEE_ERR_MAX];

    rbee_session *s = open_session(m, 256);
    volatile int flag = 1;
    struct text t = { 0 };
    struct rbee_gen_params gp = greedy(40, &t);
    gp.cancel = &flag;
    CHECK(rbee_session_generate(s, ids, n, &gp, &r, err) == 0);
    CHECK_EQ_INT(r.finish, RBEE_FINISH_CANCELLED);
    CHECK_EQ_INT(r.n_generated, 0);
    CHECK_EQ_INT(t.n, 0);

    /* on_text asks to stop after its third piece */
    struct text t2 = { .cancel_after = 3 };
    gp = greedy(40, &t2);
    CHECK(rbee_session_generate(s, ids, n, &gp, &r, err) == 0);
    CHECK_EQ_INT(r.finish, RBEE_FINISH_CANCELLED);
    CHECK_EQ_INT(t2.calls, 3);
    CHECK(r.n_generated >= 3 && r.n_generated < 10);

    /* n_predict 0: the prompt only */
    struct text t3 = { 0 };
    gp = greedy(0, &t3);
    CHECK(rbee_session_generate(s, ids, n, &gp, &r, err) == 0);
    CHECK_EQ_INT(r.finish, RBEE_FINISH_LENGTH);
    CHECK_EQ_INT(r.n_generated, 0);
    CHECK_EQ_INT(r.n_cached, n);
    rbee_session_free(s);

    /* a context of 16: generation stops when it is full */
    s = open_session(m, 16);
    struct text t4 = { 0 };
    gp = greedy(-1, &t4);
    CHECK(rbee_session_generate(s, ids, n, &gp, &r, err) == 0);
    CHECK_EQ_INT(r.finish, RBEE_FINISH_CONTEXT);
    CHECK_EQ_INT(r.n_cached, 16);
    CHECK_EQ_INT(r.n_generated, 16 - n + 1); /* the last from the full context's last logits */

    /* bad prompts fail with a message and change nothing */
    int32_t many[20];
    for (int i = 0; i < 20; i++) many[i] = ids[i % n];
    CHECK(rbee_session_generate(s, many, 20, &gp, &r, err) == -1);
    CHECK_CONTAINS(err, "more than the context of 16");
    CHECK(rbee_session_generate(s, ids, 0, &gp, &r, err) == -1);
    CHECK_CONTAINS(err, "no tokens");
    CHECK_EQ_INT(rbee_session_n_cached(s), 16);
    rbee_session_free(s);
    rbee_model_free(m);
}

int main(void) {
    RUN(greedy_equals_plain_loop_and_reuses_prefix);
    RUN(stop_strings);
    RUN(cancels_and_limits);
    return test_summary();
}
