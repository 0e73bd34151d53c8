/* kquants_fit.c - fit a group of 16 or 32 values to integer quants and a
 * float scale (and minimum). These searches are what make the K-quants
 * better than rounding against the largest value: they trade a little error
 * on the extreme element for a finer step everywhere else. */
#include <math.h>

#include "kquants_fit.h"

static float err_term(float diff, int use_abs) {
    return use_abs ? fabsf(diff) : diff * diff;
}

float rb_fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                       float rmin, float rdelta, int nstep, int use_abs) {
    float lo = x[0], hi = x[0], sum_w = 0.0f, sum_x = 0.0f;
    for (int i = 0; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0.0f) lo = 0.0f; /* the min is subtracted, so it is never above 0 */
    if (hi == lo) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *neg_min = -lo;
        return 0.0f;
    }

    /* start from plain min/max rounding */
    float iscale = nmax / (hi - lo);
    float scale = 1.0f / iscale, min = lo, best_err = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)rb_round_clamp(iscale * (x[i] - lo), 0, nmax);
        best_err += w[i] * err_term(scale * L[i] + min - x[i], use_abs);
    }

    /* Each candidate grid starts from the min of the best fit so far, not
     * from the data's: ggml's reference quantizer does so (one variable
     * serves both), and following it keeps our files equal to its files. */
    uint8_t cand[32];
    for (int step = 0; step <= nstep; step++) {
        iscale = (rmin + rdelta * step + nmax) / (hi - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = rb_round_clamp(iscale * (x[i] - min), 0, nmax);
            cand[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        /* weighted least squares for x ~ s * l + m */
        float det = sum_w * sum_l2 - sum_l * sum_l;
        if (!(det > 0.0f)) continue;
        float s = (sum_w * sum_xl - sum_x * sum_l) / det;
        float m = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (m > 0.0f) { /* a positive min cannot be stored: refit with m = 0 */
            m = 0.0f;
            s = sum_xl / sum_l2;
        }
        float err = 0.0f;
        for (int i = 0; i < n; i++) err += w[i] * err_term(s * cand[i] + m - x[i], use_abs);
        if (err < best_err) {
            for (int i = 0; i < n; i++) L[i] = cand[i];
            best_err = err;
            scale = s;
            min = m;
        }
    }
    *neg_min = -min;
    return scale;
}

/* The signed element of largest magnitude. */
static float signed_extreme(int n, const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    return max;
}

float rb_fit_scale_sym(int n, int nmax, const float *x, int8_t *L) {
    float max = signed_extreme(n, x);
    if (fabsf(max) < RB_GROUP_MAX_EPS) { /* the lowest code, which the reference stores for it */
        for (int i = 0; i < n; i++) L[i] = (int8_t)-nmax;
        return 0.0f;
    }
    /* For each candidate rounding, the best scale is sum(w x l) / sum(w l^2)
     * and the error it leaves is sum(w x^2) - sum(w x l)^2 / sum(w l^2): so
     * maximize sum_xl^2 / sum_l2. Plain rounding is taken as it is, then a
     * candidate must beat best = scale * sum_xl in the form sum_xl^2 > best
     * * sum_l2: the reference quantizer's comparison, rounding included, so
     * that near ties fall the same way and the files come out equal. */
    float best_scale = 0.0f, best = 0.0f;
    for (int k = 0; k <= 18; k++) {
        int step = k == 0 ? 0 : (k <= 9 ? k - 10 : k - 9); /* plain rounding first, then -9..-1, 1..9 */
        float iscale = -(nmax + 0.1f * step) / max;
        float sum_xl = 0.0f, sum_l2 = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = rb_round_clamp(iscale * x[i], -nmax, nmax - 1);
            float w = x[i] * x[i];
            sum_xl += w * x[i] * l;
            sum_l2 += w * l * l;
        }
        if (k > 0 && !(sum_l2 > 0.0f && sum_xl * sum_xl > best * sum_l2)) continue;
        for (int i = 0; i < n; i++) L[i] = (int8_t)rb_round_clamp(iscale * x[i], -nmax, nmax - 1);
        best_scale = sum_l2 != 0.0f ? sum_xl / sum_l2 : 0.0f;
        best = best_scale * sum_xl;
    }
    return best_scale;
}

float rb_fit_scale_q3(int n, int nmax, const float *x, int8_t *L) {
    float max = signed_extreme(n, x);
    if (fabsf(max) < RB_GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    float iscale = -nmax / max, sum_xl = 0.0f, sum_l2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = rb_round_clamp(iscale * x[i], -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sum_xl += w * x[i] * l;
        sum_l2 += w * l * l;
    }
    /* coordinate descent: move one quant to its best value under the scale
     * the others imply, keep it if the fit (sum_xl^2 / sum_l2) improves */
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float xl = sum_xl - w * x[i] * L[i];
            if (!(xl > 0.0f)) continue;
            float l2 = sum_l2 - w * L[i] * L[i];
            int l = rb_round_clamp(x[i] * l2 / xl, -nmax, nmax - 1);
            if (l == L[i]) continue;
            xl += w * x[i] * l;
            l2 += w * l * l;
            if (l2 > 0.0f && xl * xl * sum_l2 > sum_xl * sum_xl * l2) {
                L[i] = (int8_t)l;
                sum_xl = xl;
                sum_l2 = l2;
                changed++;
            }
        }
        if (!changed) break;
    }
    return sum_l2 > 0.0f ? sum_xl / sum_l2 : 0.0f;
}
