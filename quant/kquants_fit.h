/* kquants_fit.h - private to quant/: fitting one small group of values to
 * integer quants and a scale (kquants_fit.c), shared by the K-quant
 * quantizers. */
#ifndef RB_KQUANTS_FIT_H
#define RB_KQUANTS_FIT_H

#include <stdint.h>
#include <string.h>

/* Groups whose largest magnitude is below this are stored as zero. */
#define RB_GROUP_MAX_EPS 1e-15f

/* round(v) half to even, clamped to [lo, hi]; NaN gives lo. The clamp comes
 * first, so the 1.5 * 2^23 trick below is exact and never overflows. */
static inline int rb_round_clamp(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v > (float)hi) return hi;
    float t = v + 12582912.0f; /* 1.5 * 2^23: the integer lands in the low mantissa bits */
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* Asymmetric fit x ~ scale * L + min with L in [0, nmax], min <= 0, weights w.
 * Tries iscale = (nmax + rmin + rdelta * k) / (max - min) for k = 0..nstep
 * (min: the best fit's so far, as in ggml's reference quantizer),
 * solves weighted least squares for (scale, min) given each rounding, keeps
 * the smallest weighted error (squared, or absolute when use_abs).
 * Returns scale; *neg_min = -min (>= 0). All-equal input: L = 0, scale 0. */
float rb_fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L, float *neg_min,
                       float rmin, float rdelta, int nstep, int use_abs);

/* Symmetric fit x ~ scale * L with L in [-nmax, nmax - 1], weights x^2.
 * Tries iscale = -(nmax + 0.1 k) / max for k = 0, then -9..9 (max = the
 * signed extreme) and keeps the best least-squares scale, comparing as
 * ggml's reference quantizer does (same files). Returns scale (0 for an
 * all-zero group, with L = -nmax: any code decodes to 0 there, and this is
 * the one the reference stores). */
float rb_fit_scale_sym(int n, int nmax, const float *x, int8_t *L);

/* Symmetric fit for Q3_K: L in [-nmax, nmax - 1] from iscale = -nmax / max,
 * then up to 5 passes moving single quants while that improves the weighted
 * (x^2) least-squares fit. Returns scale (0 for an all-zero group). */
float rb_fit_scale_q3(int n, int nmax, const float *x, int8_t *L);

#endif
