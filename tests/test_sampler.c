/* test_sampler.c - greedy, temperature, top-k, top-p, min-p, repetition
 * penalty and seeding, on hand-made logits whose answers are known. */
#include "test.h"
#include "../runtime/rbee.h"
#include "../runtime/sampler.h"

static struct rbee_sampler_params plain(float temp) {
    struct rbee_sampler_params p = rbee_sampler_default_params();
    p.temp = temp; p.top_k = 0; p.top_p = 1.0f; p.min_p = 0.0f; p.repeat_penalty = 1.0f;
    return p;
}

TEST(greedy_is_argmax_lowest_id_on_ties) {
    float l[6] = { 0.5f, 3.0f, -1.0f, 3.0f, 2.9f, 0.0f };
    struct rbee_sampler_params p = plain(0.0f);
    rbee_sampler *s = rbee_sampler_new(&p, 6);
    CHECK_EQ_INT(rbee_sample(s, l), 1);
    CHECK_EQ_INT(l[1], 3); /* logits untouched */
    rbee_sampler_free(s);
}

TEST(repeat_penalty_changes_the_winner) {
    float l[4] = { 2.0f, 1.8f, -1.0f, -1.2f };
    struct rbee_sampler_params p = plain(0.0f);
    p.repeat_penalty = 1.2f;
    p.repeat_last_n = 2;
    rbee_sampler *s = rbee_sampler_new(&p, 4);
    rbee_sampler_accept(s, 0);      /* 2.0 / 1.2 = 1.67 < 1.8 */
    CHECK_EQ_INT(rbee_sample(s, l), 1);
    rbee_sampler_accept(s, 3);
    rbee_sampler_accept(s, 3);      /* 0 has left the window of 2 */
    CHECK_EQ_INT(rbee_sample(s, l), 0);
    float neg[2] = { -1.0f, -1.1f }; /* negative logits are multiplied: -1.2 < -1.1 */
    rbee_sampler *s2 = rbee_sampler_new(&p, 2);
    rbee_sampler_accept(s2, 0);
    CHECK_EQ_INT(rbee_sample(s2, neg), 1);
    rbee_sampler_free(s);
    rbee_sampler_free(s2);
}

TEST(top_k_one_is_greedy_at_any_temperature) {
    float l[5] = { 0.1f, 0.2f, 0.3f, 0.25f, 0.0f };
    struct rbee_sampler_params p = plain(5.0f);
    p.top_k = 1;
    rbee_sampler *s = rbee_sampler_new(&p, 5);
    for (int i = 0; i < 100; i++) CHECK_EQ_INT(rbee_sample(s, l), 2);
    rbee_sampler_free(s);
}

/* Counts over many draws follow softmax(l / temp) within a few sigma. */
TEST(temperature_draws_follow_softmax) {
    float l[3] = { 1.0f, 0.0f, -1.0f };
    struct rbee_sampler_params p = plain(0.5f);
    rbee_sampler *s = rbee_sampler_new(&p, 3);
    int n = 20000, count[3] = { 0 };
    for (int i = 0; i < n; i++) count[rbee_sample(s, l)]++;
    double z = exp(2.0) + 1.0 + exp(-2.0);
    double want[3] = { exp(2.0) / z, 1.0 / z, exp(-2.0) / z };
    for (int k = 0; k < 3; k++) {
        double sigma = sqrt(want[k] * (1 - want[k]) / n);
        CHECK_NEAR((double)count[k] / n, want[k], 5 * sigma);
    }
    rbee_sampler_free(s);
}

TEST(top_p_and_min_p_cut_the_tail) {
    /* probs at temp 1: ~0.64, 0.24, 0.09, 0.03 */
    float l[4] = { 3.0f, 2.0f, 1.0f, 0.0f };
    struct rbee_sampler_params p = plain(1.0f);
    p.top_p = 0.7f; /* keeps 0 and 1 (0.64 < 0.7 <= 0.88) */
    rbee_sampler *s = rbee_sampler_new(&p, 4);
    int seen[4] = { 0 };
    for (int i = 0; i < 3000; i++) seen[rbee_sample(s, l)]++;
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    rbee_sampler_free(s);

    p = plain(1.0f);
    p.min_p = 0.3f; /* keeps probs >= 0.3 * 0.64 = 0.19: ids 0 and 1 */
    s = rbee_sampler_new(&p, 4);
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < 3000; i++) seen[rbee_sample(s, l)]++;
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    rbee_sampler_free(s);
}

TEST(top_k_partial_selection_matches_full_sort) {
    enum { N = 1000 };
    static float l[N];
    uint64_t st = 7;
    for (int i = 0; i < N; i++) l[i] = rb_rand_uniform(&st) * 10.0f;
    /* the 3 largest, found by hand */
    int best[3] = { -1, -1, -1 };
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < N; i++) {
            if ((k > 0 && (i == best[0] || i == best[1]))) continue;
            if (best[k] < 0 || l[i] > l[best[k]]) best[k] = i;
        }
    struct rbee_sampler_params p = plain(100.0f); /* nearly uniform over the kept 3 */
    p.top_k = 3;
    rbee_sampler *s = rbee_sampler_new(&p, N);
    int hits[3] = { 0 };
    for (int i = 0; i < 600; i++) {
        int id = rbee_sample(s, l);
        int ok = 0;
        for (int k = 0; k < 3; k++) if (id == best[k]) { hits[k]++; ok = 1; }
        if (!ok) { TEST_FAIL_AT("sampled %d, not in the top 3", id); break; }
    }
    CHECK(hits[0] > 100 && hits[1] > 100 && hits[2] > 100);
    rbee_sampler_free(s);
}

TEST(seed_reproduces_and_differs) {
    float l[50];
    for (int i = 0; i < 50; i++) l[i] = (float)(i % 7) * 0.3f;
    struct rbee_sampler_params p = plain(1.0f);
    int a[64], b[64], c[64];
    rbee_sampler *s1 = rbee_sampler_new(&p, 50), *s2 = rbee_sampler_new(&p, 50);
    p.seed = 43;
    rbee_sampler *s3 = rbee_sampler_new(&p, 50);
    int same_ab = 1, same_ac = 1;
    for (int i = 0; i < 64; i++) {
        a[i] = rbee_sample(s1, l); b[i] = rbee_sample(s2, l); c[i] = rbee_sample(s3, l);
        same_ab &= a[i] == b[i];
        same_ac &= a[i] == c[i];
    }
    CHECK(same_ab);
    CHECK(!same_ac);
    rbee_sampler_free(s1); rbee_sampler_free(s2); rbee_sampler_free(s3);
}

int main(void) {
    RUN(greedy_is_argmax_lowest_id_on_ties);
    RUN(repeat_penalty_changes_the_winner);
    RUN(top_k_one_is_greedy_at_any_temperature);
    RUN(temperature_draws_follow_softmax);
    RUN(top_p_and_min_p_cut_the_tail);
    RUN(top_k_partial_selection_matches_full_sort);
    RUN(seed_reproduces_and_differs);
    return test_summary();
}
