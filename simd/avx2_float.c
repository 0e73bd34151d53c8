/* avx2_float.c - the float side of the AVX2 table: activation quantizers
 * (F32 -> Q8_0/Q8_1/Q8_K/F16, bit-identical to scalar), F32/F16/BF16 dot
 * products and the float helpers (rmsnorm, layernorm, softmax, silu_mul,
 * gelu, add, F16 conversion). The AVX-512 table uses these too (avx2.h).
 *
 * Compiled with avx2.c's flags; only called when cpu.c found them.
 *
 * Float reductions sum in float lanes (dots, rmsnorm) or widen to double
 * (softmax, layernorm, as scalar does); exp is a polynomial good to ~2 ulp,
 * so these match scalar within the tolerances test_kernels.c states.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "avx2.h"
#include "x86_common.h"
#include "f16_gemm.h"
#include "../quant/quant.h"

/* ------------------------------------------------ activation quantizers */

/* round(x * mul) half to even for 8 floats, NaN -> 0 (as scalar's round_q8;
 * the int8 pack saturates to [-128, 127], and |x * mul| <= 127 anyway). */
ALWAYS_INLINE __m256i round8(const float *x, __m256 mul) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), mul);
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

ALWAYS_INLINE __m256i round_pack32(const float *x, __m256 mul) {
    __m256i i0 = round8(x, mul), i1 = round8(x + 8, mul), i2 = round8(x + 16, mul), i3 = round8(x + 24, mul);
    /* packs work per 128-bit lane: undo the interleave with one permute */
    __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
    __m256i b = _mm256_packs_epi16(p01, p23);
    return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* max |x| over 32 floats, NaNs ignored like scalar's fmaxf (maxps returns
 * its second operand when the first is NaN). */
ALWAYS_INLINE float absmax32(const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 32; j += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), m);
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void rb_avx2_quantize_q8_0(const float *x, void *vy, int64_t n) {
    block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = absmax32(x);
        float d = amax / 127.0f;
        float id = amax != 0.0f ? 127.0f / amax : 0.0f; /* not 1 / d: as scalar */
        y[i].d = rb_f32_to_f16(d);
        _mm256_storeu_si256((__m256i *)y[i].qs, round_pack32(x, _mm256_set1_ps(id)));
    }
}

void rb_avx2_quantize_q8_1(const float *x, void *vy, int64_t n) {
    block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        float amax = absmax32(x);
        float d = amax / 127.0f;
        float id = amax != 0.0f ? 127.0f / amax : 0.0f; /* not 1 / d: as scalar */
        __m256i q = round_pack32(x, _mm256_set1_ps(id));
        int sum = hsum_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1)));
        y[i].d = rb_f32_to_f16(d);
        y[i].s = rb_f32_to_f16((float)sum * d);
        _mm256_storeu_si256((__m256i *)y[i].qs, q);
    }
}

void rb_avx2_quantize_q8_K(const float *x, void *vy, int64_t n) {
    block_q8_K *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0.0f;
        for (int j = 0; j < QK_K; j += 32) {
            float a = absmax32(x + j);
            amax = a > amax ? a : amax;
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float max = 0.0f; /* the first value of largest magnitude, with its sign */
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.0f / max;
        const __m256i top = _mm256_set1_epi8(127);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i q = _mm256_min_epi8(round_pack32(x + j, _mm256_set1_ps(iscale)), top);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), q);
            /* bsums: two sums of 16 */
            __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
            __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
            __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm_shuffle_epi32(_mm256_castsi256_si128(s32), 0x4E));
            __m128i u = _mm_add_epi32(_mm256_extracti128_si256(s32, 1),
                                      _mm_shuffle_epi32(_mm256_extracti128_si256(s32, 1), 0x4E));
            t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
            u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0xB1));
            y[i].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(t);
            y[i].bsums[j / 16 + 1] = (int16_t)_mm_cvtsi128_si32(u);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* -------------------------------------------------- float dot products */

void rb_avx2_vec_dot_f32(int64_t n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float sum = hsum_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

/* F16 . F16: a tile of T tokens (f16_gemm.h), two running sums over steps
 * of 16, then hsum and the tail; vec_dot_f16 is its one-token case, so the
 * gemm and vec_dot give the same bits by construction. */
ALWAYS_INLINE __m256 f16x8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

ALWAYS_INLINE void f16_tile(int T, int wide, int64_t n, const uint16_t *x, const uint16_t *const *y16,
                            const float *const *y32, float *out, int64_t out_stride) {
    __m256 a0[4], a1[4];
    UNROLL for (int t = 0; t < T; t++) a0[t] = a1[t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 x0 = f16x8(x + i), x1 = f16x8(x + i + 8);
        UNROLL for (int t = 0; t < T; t++) {
            a0[t] = _mm256_fmadd_ps(x0, wide ? _mm256_loadu_ps(y32[t] + i) : f16x8(y16[t] + i), a0[t]);
            a1[t] = _mm256_fmadd_ps(x1, wide ? _mm256_loadu_ps(y32[t] + i + 8) : f16x8(y16[t] + i + 8), a1[t]);
        }
    }
    UNROLL for (int t = 0; t < T; t++) {
        float sum = hsum_ps(_mm256_add_ps(a0[t], a1[t]));
        for (int64_t j = i; j < n; j++) sum += _cvtsh_ss(x[j]) * _cvtsh_ss(y16[t][j]);
        out[t * out_stride] = sum;
    }
}

void rb_avx2_vec_dot_f16(int64_t n, float *s, const void *x, const void *y) {
    const uint16_t *y16[1] = { y };
    f16_tile(1, 0, n, x, y16, NULL, s, 0);
}

RB_DEFINE_GEMM_F16(rb_avx2_gemm_f16, rb_avx2_f16_to_f32)

ALWAYS_INLINE __m256 load_bf16x8(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

void rb_avx2_vec_dot_bf16(int64_t n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), a0);
        a1 = _mm256_fmadd_ps(load_bf16x8(x + i + 8), load_bf16x8(y + i + 8), a1);
    }
    float sum = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += rb_bf16_to_f32(x[i]) * rb_bf16_to_f32(y[i]);
    *s = sum;
}

/* ---------------------------------------------------------- float helpers */

void rb_avx2_f16_to_f32(const uint16_t *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = rb_f16_to_f32(x[i]);
}

void rb_avx2_f32_to_f16(const float *x, uint16_t *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = rb_f32_to_f16(x[i]);
}

void rb_avx2_quantize_f16(const float *x, void *y, int64_t n) { rb_avx2_f32_to_f16(x, y, n); }

void rb_avx2_add(float *out, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) out[i] = a[i] + b[i];
}

static float sum_squares(const float *x, int64_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_ps(v0, v0, a0);
        a1 = _mm256_fmadd_ps(v1, v1, a1);
    }
    float sum = hsum_ps(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += x[i] * x[i];
    return sum;
}

void rb_avx2_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    const float scale = 1.0f / sqrtf(sum_squares(x, n) / (float)n + eps);
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t i = 0;
    for (; w && i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    if (!w) {
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
        for (; i < n; i++) out[i] = x[i] * scale;
        return;
    }
    for (; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* Sum of 8 floats widened to double, as the scalar reference sums. */
ALWAYS_INLINE __m256d widen_add(__m256d acc, __m256 v) {
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    return _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

ALWAYS_INLINE double hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* e^x to about 2 ulp (Cephes expf: x = n ln2 + r, |r| <= ln2/2, e^r by a
 * degree-6 polynomial, 2^n into the exponent). Inputs are clamped to
 * [-87.3, 88.3], so tiny results flush towards 1e-38 rather than 0. */
ALWAYS_INLINE __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* Mask of the first n (< 8) lanes, for maskload/maskstore of a row tail. */
ALWAYS_INLINE __m256i tail_mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void rb_avx2_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    __m256 vmax = _mm256_set1_ps(x[0]);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    float max = _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
    for (; i < n; i++) max = fmaxf(max, x[i]);
    __m256d sum = _mm256_setzero_pd();
    const __m256 vm = _mm256_set1_ps(max);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        sum = widen_add(sum, e);
    }
    if (i < n) {
        __m256i mask = tail_mask(n - i);
        __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), vm)), _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(x + i, mask, e);
        sum = widen_add(sum, e);
    }
    double total = hsum_pd(sum);
    const __m256 inv = _mm256_set1_ps(total > 0.0 ? (float)(1.0 / total) : 0.0f);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= _mm256_cvtss_f32(inv);
}

/* out = gate / (1 + e^-gate) * up */
ALWAYS_INLINE __m256 silu_mul8(__m256 g, __m256 u) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void rb_avx2_silu_mul(float *out, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, silu_mul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        __m256i mask = tail_mask(n - i);
        _mm256_maskstore_ps(out + i, mask, silu_mul8(_mm256_maskload_ps(gate + i, mask), _mm256_maskload_ps(up + i, mask)));
    }
}

/* 0.5 x (1 + tanh(u)), u = sqrt(2/pi) x (1 + 0.044715 x^2), computed as
 * x / (1 + e^(-2u)) (the same value; no cancellation where tanh(u) ~ -1). */
ALWAYS_INLINE __m256 gelu8(__m256 x) {
    const __m256 k = _mm256_set1_ps(0.79788456080286535587989211986876f);
    __m256 u = _mm256_mul_ps(_mm256_mul_ps(k, x),
                             _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), x), x, _mm256_set1_ps(1.0f)));
    __m256 e = exp8(_mm256_mul_ps(u, _mm256_set1_ps(-2.0f)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

void rb_avx2_gelu(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i mask = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, mask, gelu8(_mm256_maskload_ps(x + i, mask)));
    }
}

void rb_avx2_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps) {
    __m256d acc = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc = widen_add(acc, _mm256_loadu_ps(x + i));
    double sum = hsum_pd(acc);
    for (; i < n; i++) sum += x[i];
    const float mean = (float)(sum / (double)n);
    const __m256 vmean = _mm256_set1_ps(mean);
    acc = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 c = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmean);
        acc = widen_add(acc, _mm256_mul_ps(c, c));
    }
    double var = hsum_pd(acc);
    for (; i < n; i++) var += (double)((x[i] - mean) * (x[i] - mean));
    const float scale = 1.0f / sqrtf((float)(var / (double)n) + eps);
    const __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmean), vs);
        if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(out + i, v);
    }
    for (; i < n; i++) {
        float v = (x[i] - mean) * scale;
        if (w) v *= w[i];
        if (b) v += b[i];
        out[i] = v;
    }
}
