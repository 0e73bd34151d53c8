/* neon.c - AArch64 NEON kernels, plain ARMv8.0 (Raspberry Pi 4 / Cortex-A72),
 * compiled with -march=armv8-a. simd/neon_dotprod.c builds the same integer
 * dot products with `sdot` for ARMv8.2 CPUs (Pi 5) and points its float
 * entries here; simd/cpu.c offers both where HWCAP_ASIMDDP is set (dotprod
 * best), this one alone where not.
 *
 * This file: activation quantizers (bit-identical to the scalar reference:
 * round half to even with vcvtnq), F16 and BF16 conversions (round to nearest
 * even, bit-identical), F32/F16/BF16 dot products and the float helpers of
 * the forward pass (within a float tolerance of the scalar ones: they sum in
 * vector lanes and use a polynomial e^x). The integer dot products are in
 * neon_common.h.
 *
 * Every function handles any n the same way: whole vectors, then the last
 * n % 4 elements through a padded 4-lane buffer, so no scalar copies.
 */
#include <math.h>

#include "neon_common.h"
#include "f16_gemm.h"

/* ============================================================== utilities */

/* The last r (< 4) elements, padded with `pad`. */
static inline float32x4_t load_tail(const float *x, int64_t r, float pad) {
    float t[4] = { pad, pad, pad, pad };
    memcpy(t, x, (size_t)r * sizeof(float));
    return vld1q_f32(t);
}

static inline void store_tail(float *y, float32x4_t v, int64_t r) {
    float t[4];
    vst1q_f32(t, v);
    memcpy(y, t, (size_t)r * sizeof(float));
}

static inline rb_f16 f32_to_f16_one(float f) {
    return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0);
}

/* e^x in four lanes, within ~1 ulp of expf over the range that matters:
 * x = k ln2 + r with |r| <= ln2/2, e^r by its Taylor polynomial to degree 7
 * (truncation error < 1e-8 relative), then 2^k applied in two halves so that
 * large x gives inf and very negative x denormals or 0, as expf does. */
static inline float32x4_t exp_f32x4(float32x4_t x) {
    x = vmaxq_f32(vminq_f32(x, vdupq_n_f32(100.0f)), vdupq_n_f32(-110.0f)); /* NaN stays NaN */
    float32x4_t k = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, k, vdupq_n_f32(0.693359375f));   /* ln2, high part (exact) */
    r = vfmsq_f32(r, k, vdupq_n_f32(-2.12194440e-4f));             /* ln2, low part */
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t ki = vcvtq_s32_f32(k);          /* |k| <= 159 */
    int32x4_t k1 = vshrq_n_s32(ki, 1), k2 = vsubq_s32(ki, k1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k2, vdupq_n_s32(127)), 23));
    return vmulq_f32(vmulq_f32(p, s1), s2);
}

/* ========================================================== dot products */

/* F32 . F32: sixteen lanes of partial sums, added pairwise at the end. */
void rb_neon_vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    float32x4_t acc[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; j++)
            acc[j] = vfmaq_f32(acc[j], vld1q_f32(x + i + 4 * j), vld1q_f32(y + i + 4 * j));
    for (; i + 4 <= n; i += 4)
        acc[0] = vfmaq_f32(acc[0], vld1q_f32(x + i), vld1q_f32(y + i));
    if (i < n)
        acc[1] = vfmaq_f32(acc[1], load_tail(x + i, n - i, 0.0f), load_tail(y + i, n - i, 0.0f));
    *s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
}

/* F16 . F16: each half widened to F32 (exact), then as F32, in a tile of T
 * tokens (f16_gemm.h): four running sums over steps of 16, a zero-padded
 * tail 4 at a time into the first. vec_dot_f16 is its one-token case, so
 * the gemm and vec_dot give the same bits by construction. */
static inline float32x4_t f16x4_padded(const uint16_t *p, int64_t r) {
    uint16_t t[4] = { 0 };
    memcpy(t, p, (size_t)r * 2);
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(t)));
}

static inline __attribute__((always_inline)) void f16_tile(int T, int wide, int64_t n, const uint16_t *x,
                                                           const uint16_t *const *y16, const float *const *y32,
                                                           float *out, int64_t out_stride) {
    float32x4_t acc[4][4];
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++)
        for (int k = 0; k < 4; k++) acc[t][k] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 2; j++) {
            float16x8_t a = vreinterpretq_f16_u16(vld1q_u16(x + i + 8 * j));
            float32x4_t xl = vcvt_f32_f16(vget_low_f16(a)), xh = vcvt_high_f32_f16(a);
            _Pragma("GCC unroll 4") for (int t = 0; t < T; t++) {
                float32x4_t yl, yh;
                if (wide) {
                    yl = vld1q_f32(y32[t] + i + 8 * j);
                    yh = vld1q_f32(y32[t] + i + 8 * j + 4);
                } else {
                    float16x8_t b = vreinterpretq_f16_u16(vld1q_u16(y16[t] + i + 8 * j));
                    yl = vcvt_f32_f16(vget_low_f16(b));
                    yh = vcvt_high_f32_f16(b);
                }
                acc[t][2 * j] = vfmaq_f32(acc[t][2 * j], xl, yl);
                acc[t][2 * j + 1] = vfmaq_f32(acc[t][2 * j + 1], xh, yh);
            }
        }
    for (; i < n; i += 4) {
        int64_t r = n - i < 4 ? n - i : 4;
        float32x4_t xv = f16x4_padded(x + i, r);
        _Pragma("GCC unroll 4") for (int t = 0; t < T; t++)
            acc[t][0] = vfmaq_f32(acc[t][0], xv, f16x4_padded(y16[t] + i, r));
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < T; t++)
        out[t * out_stride] = vaddvq_f32(vaddq_f32(vaddq_f32(acc[t][0], acc[t][1]), vaddq_f32(acc[t][2], acc[t][3])));
}

void rb_neon_vec_dot_f16(int64_t n, float *s, const void *x, const void *y) {
    const uint16_t *y16[1] = { y };
    f16_tile(1, 0, n, x, y16, NULL, s, 0);
}

RB_DEFINE_GEMM_F16(rb_neon_gemm_f16, rb_neon_f16_to_f32)

/* BF16 . BF16: a bfloat16 is the top half of an F32, so widening is a shift. */
static inline float32x4_t bf16x4_to_f32(uint16x4_t h) {
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

void rb_neon_vec_dot_bf16(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    float32x4_t acc[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; j++)
            acc[j] = vfmaq_f32(acc[j], bf16x4_to_f32(vld1_u16(x + i + 4 * j)), bf16x4_to_f32(vld1_u16(y + i + 4 * j)));
    for (; i < n; i += 4) {
        uint16_t ta[4] = { 0 }, tb[4] = { 0 };
        int64_t r = n - i < 4 ? n - i : 4;
        memcpy(ta, x + i, (size_t)r * 2);
        memcpy(tb, y + i, (size_t)r * 2);
        acc[0] = vfmaq_f32(acc[0], bf16x4_to_f32(vld1_u16(ta)), bf16x4_to_f32(vld1_u16(tb)));
    }
    *s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
}

/* ============================================ activation quantizers */

/* Eight vectors (32 floats) -> 32 int8 of round-half-even(v * scale),
 * clamped to [-127, 127] as the scalar reference does (NaN gives 0). */
static inline void round_to_s8(const float32x4_t v[8], float scale, int8_t *out) {
    for (int j = 0; j < 8; j += 2) {
        int32x4_t a = vmaxq_s32(vcvtnq_s32_f32(vmulq_n_f32(v[j], scale)), vdupq_n_s32(-127));
        int32x4_t b = vmaxq_s32(vcvtnq_s32_f32(vmulq_n_f32(v[j + 1], scale)), vdupq_n_s32(-127));
        vst1_s8(out + 4 * j, vqmovn_s16(vcombine_s16(vqmovn_s32(a), vqmovn_s32(b))));
    }
}

/* Load 32 floats; return their largest |x| (NaN ignored, like fmaxf). */
static inline float load32_amax(const float *x, float32x4_t v[8]) {
    float32x4_t amax = vdupq_n_f32(0.0f);
    for (int j = 0; j < 8; j++) {
        v[j] = vld1q_f32(x + 4 * j);
        amax = vmaxnmq_f32(amax, vabsq_f32(v[j]));
    }
    return vmaxnmvq_f32(amax);
}

/* Q8_0: d = amax / 127, q = round(x * 127 / amax) (the multiplier is
 * 127 / amax, not 1 / d, exactly as the scalar reference). */
void rb_neon_quantize_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        float32x4_t v[8];
        const float amax = load32_amax(x + i * QK8_0, v);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = f32_to_f16_one(amax / 127.0f);
        round_to_s8(v, id, y[i].qs);
    }
}

/* Q8_1: as Q8_0, plus s = d * sum(q). */
void rb_neon_quantize_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK8_1; i++) {
        float32x4_t v[8];
        const float amax = load32_amax(x + i * QK8_1, v);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = f32_to_f16_one(d);
        round_to_s8(v, id, y[i].qs);
        int32_t sum = vaddlvq_s8(vld1q_s8(y[i].qs)) + vaddlvq_s8(vld1q_s8(y[i].qs + 16));
        y[i].s = f32_to_f16_one((float)sum * d);
    }
}

/* Q8_K: scale from the signed value of largest magnitude (the first one, on
 * ties), so that value maps to -127: iscale = -127 / max, d = 1 / iscale. */
void rb_neon_quantize_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float32x4_t amax4 = vdupq_n_f32(0.0f);
        for (int j = 0; j < QK_K; j += 4)
            amax4 = vmaxnmq_f32(amax4, vabsq_f32(vld1q_f32(x + j)));
        const float amax = vmaxnmvq_f32(amax4);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        int first = 0;
        while (first < QK_K - 1 && fabsf(x[first]) != amax) first++;
        const float iscale = -127.0f / x[first];
        for (int j = 0; j < QK_K; j += 32) {
            float32x4_t v[8];
            for (int k = 0; k < 8; k++) v[k] = vld1q_f32(x + j + 4 * k);
            round_to_s8(v, iscale, y[i].qs + j);
        }
        for (int j = 0; j < QK_K / 16; j++)
            y[i].bsums[j] = vaddlvq_s8(vld1q_s8(y[i].qs + 16 * j));
        y[i].d = 1.0f / iscale;
    }
}

/* ======================================================= F16 conversion */

void rb_neon_f16_to_f32(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
    if (i < n) {
        uint16_t t[4] = { 0 };
        memcpy(t, x + i, (size_t)(n - i) * 2);
        store_tail(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(t))), n - i);
    }
}

void rb_neon_f32_to_f16(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    if (i < n) {
        uint16_t t[4];
        vst1_u16(t, vreinterpret_u16_f16(vcvt_f16_f32(load_tail(x + i, n - i, 0.0f))));
        memcpy(y + i, t, (size_t)(n - i) * 2);
    }
}

void rb_neon_quantize_f16(const float *x, void *y, int64_t n) {
    rb_neon_f32_to_f16(x, y, n);
}

/* F32 -> BF16, round to nearest even on the dropped 16 bits; a NaN is
 * truncated and kept quiet, as rb_f32_to_bf16 does. */
static inline uint16x4_t f32x4_to_bf16(float32x4_t f) {
    uint32x4_t x = vreinterpretq_u32_f32(f);
    uint32x4_t odd = vandq_u32(vshrq_n_u32(x, 16), vdupq_n_u32(1));
    uint32x4_t rounded = vshrq_n_u32(vaddq_u32(vaddq_u32(x, vdupq_n_u32(0x7FFF)), odd), 16);
    uint32x4_t nan = vcgtq_u32(vandq_u32(x, vdupq_n_u32(0x7FFFFFFF)), vdupq_n_u32(0x7F800000));
    uint32x4_t quiet = vorrq_u32(vshrq_n_u32(x, 16), vdupq_n_u32(64));
    return vmovn_u32(vbslq_u32(nan, quiet, rounded));
}

void rb_neon_quantize_bf16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, f32x4_to_bf16(vld1q_f32(x + i)));
    if (i < n) {
        uint16_t t[4];
        vst1_u16(t, f32x4_to_bf16(load_tail(x + i, n - i, 0.0f)));
        memcpy(y + i, t, (size_t)(n - i) * 2);
    }
}

/* ========================================================= float helpers */

/* sum of x[i] * x[i] over sixteen lanes */
static float sum_squares(const float *x, int64_t n, float shift) {
    float32x4_t acc[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
    const float32x4_t sh = vdupq_n_f32(shift);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; j++) {
            float32x4_t v = vsubq_f32(vld1q_f32(x + i + 4 * j), sh);
            acc[j] = vfmaq_f32(acc[j], v, v);
        }
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vsubq_f32(vld1q_f32(x + i), sh);
        acc[0] = vfmaq_f32(acc[0], v, v);
    }
    if (i < n) {
        float32x4_t v = vsubq_f32(load_tail(x + i, n - i, shift), sh); /* pad gives 0 */
        acc[1] = vfmaq_f32(acc[1], v, v);
    }
    return vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
}

static float sum_f32(const float *x, int64_t n) {
    float32x4_t acc[2] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        acc[0] = vaddq_f32(acc[0], vld1q_f32(x + i));
        acc[1] = vaddq_f32(acc[1], vld1q_f32(x + i + 4));
    }
    for (; i + 4 <= n; i += 4) acc[0] = vaddq_f32(acc[0], vld1q_f32(x + i));
    if (i < n) acc[1] = vaddq_f32(acc[1], load_tail(x + i, n - i, 0.0f));
    return vaddvq_f32(vaddq_f32(acc[0], acc[1]));
}

/* out = x / sqrt(mean(x^2) + eps) * w; w NULL means 1 */
void rb_neon_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    const float scale = 1.0f / sqrtf(sum_squares(x, n, 0.0f) / (float)n + eps);
    for (int64_t i = 0; i < n; i += 4) {
        int64_t r = n - i < 4 ? n - i : 4;
        float32x4_t v = vmulq_n_f32(r == 4 ? vld1q_f32(x + i) : load_tail(x + i, r, 0.0f), scale);
        if (w) v = vmulq_f32(v, r == 4 ? vld1q_f32(w + i) : load_tail(w + i, r, 0.0f));
        if (r == 4) vst1q_f32(out + i, v);
        else store_tail(out + i, v, r);
    }
}

/* out = (x - mean) / sqrt(var + eps) * w + b; w or b NULL means 1 or 0. */
void rb_neon_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps) {
    const float mean = sum_f32(x, n) / (float)n;
    const float rstd = 1.0f / sqrtf(sum_squares(x, n, mean) / (float)n + eps);
    for (int64_t i = 0; i < n; i += 4) {
        int64_t r = n - i < 4 ? n - i : 4;
        float32x4_t v = r == 4 ? vld1q_f32(x + i) : load_tail(x + i, r, 0.0f);
        v = vmulq_n_f32(vsubq_f32(v, vdupq_n_f32(mean)), rstd);
        if (w) v = vmulq_f32(v, r == 4 ? vld1q_f32(w + i) : load_tail(w + i, r, 0.0f));
        if (b) v = vaddq_f32(v, r == 4 ? vld1q_f32(b + i) : load_tail(b + i, r, 0.0f));
        if (r == 4) vst1q_f32(out + i, v);
        else store_tail(out + i, v, r);
    }
}

/* x = exp(x - max) / sum, in place */
void rb_neon_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    float32x4_t mx4 = vdupq_n_f32(-INFINITY);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) mx4 = vmaxq_f32(mx4, vld1q_f32(x + i));
    if (i < n) mx4 = vmaxq_f32(mx4, load_tail(x + i, n - i, -INFINITY));
    const float32x4_t mx = vdupq_n_f32(vmaxvq_f32(mx4));
    float32x4_t sum = vdupq_n_f32(0.0f);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t e = exp_f32x4(vsubq_f32(vld1q_f32(x + i), mx));
        vst1q_f32(x + i, e);
        sum = vaddq_f32(sum, e);
    }
    if (i < n) {
        float32x4_t e = exp_f32x4(vsubq_f32(load_tail(x + i, n - i, -INFINITY), mx)); /* pad -> 0 */
        store_tail(x + i, e, n - i);
        sum = vaddq_f32(sum, e);
    }
    const float total = vaddvq_f32(sum);
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    if (i < n) store_tail(x + i, vmulq_n_f32(load_tail(x + i, n - i, 0.0f), inv), n - i);
}

/* silu(g) * u = g / (1 + e^-g) * u */
static inline float32x4_t silu_mul4(float32x4_t g, float32x4_t u) {
    float32x4_t den = vaddq_f32(vdupq_n_f32(1.0f), exp_f32x4(vnegq_f32(g)));
    return vmulq_f32(vdivq_f32(g, den), u);
}

void rb_neon_silu_mul(float *out, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(out + i, silu_mul4(vld1q_f32(gate + i), vld1q_f32(up + i)));
    if (i < n)
        store_tail(out + i, silu_mul4(load_tail(gate + i, n - i, 0.0f), load_tail(up + i, n - i, 0.0f)), n - i);
}

/* gelu, tanh form: 0.5 x (1 + tanh(z)), z = sqrt(2/pi) (x + 0.044715 x^3),
 * computed as x / (1 + e^(-2z)), the same value without tanh's cancellation. */
static inline float32x4_t gelu4(float32x4_t x) {
    const float sqrt_2_over_pi = 0.79788456080286535588f;
    float32x4_t x3 = vmulq_f32(vmulq_f32(x, x), x);
    float32x4_t z = vmulq_n_f32(vfmaq_f32(x, x3, vdupq_n_f32(0.044715f)), sqrt_2_over_pi);
    float32x4_t den = vaddq_f32(vdupq_n_f32(1.0f), exp_f32x4(vmulq_n_f32(z, -2.0f)));
    return vdivq_f32(x, den);
}

void rb_neon_gelu(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, gelu4(vld1q_f32(x + i)));
    if (i < n) store_tail(x + i, gelu4(load_tail(x + i, n - i, 0.0f)), n - i);
}

void rb_neon_add(float *out, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, vaddq_f32(vld1q_f32(a + i), vld1q_f32(b + i)));
    if (i < n) store_tail(out + i, vaddq_f32(load_tail(a + i, n - i, 0.0f), load_tail(b + i, n - i, 0.0f)), n - i);
}

/* ================================================================= table */

const struct rb_kernels rb_kernels_neon = RB_NEON_TABLE("neon");
