/* scalar.c - the scalar reference kernel table: the specification every SIMD
 * table is tested against.
 *
 * Dot products follow ggml's reference: within a block the integer products
 * are summed exactly in int32; per block the float part is
 *     sumf += (d_w * d_a) * (float)sumi        (legacy 32-blocks)
 *     sumf += d * (float)sumi - dmin * (float)summins   (K-quants, d = d_w * d_a)
 * accumulated in one float, block after block. A SIMD kernel that computes
 * the same int sums gets the same integers; its float order may differ within
 * the stated tolerance. F32/F16/BF16 dots accumulate in double (ggml's
 * scalar ggml_vec_dot_f16 does too), in 8 partial sums.
 *
 * Activation quantizers round half to even (nearbyintf under the default
 * rounding mode), as ggml's x86 SIMD quantize_row_q8_0 (_mm256_round_ps) and
 * nearest_int do, so SIMD versions can be bit-identical.
 */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "scalar.h"
#include "../quant/quant.h"

/* ---- float dot products ---- */

/* Float dots accumulate the F32 products in double, in 8 partial sums
 * (element i goes to sum i % 8) added pairwise at the end: as exact as one
 * double sum for any practical n, and the compiler can vectorize it. */
static float sum8(const double *acc) {
    return (float)(((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
}

void rb_scalar_vec_dot_f32(int64_t n, float *s, const void *x, const void *y) {
    const float *a = x, *b = y;
    double acc[8] = { 0 };
    for (int64_t i = 0; i < n; i++) acc[i % 8] += (double)(a[i] * b[i]);
    *s = sum8(acc);
}

void rb_scalar_vec_dot_f16(int64_t n, float *s, const void *x, const void *y) {
    const rb_f16 *a = x, *b = y;
    double acc[8] = { 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)(rb_f16_to_f32(a[i + k]) * rb_f16_to_f32(b[i + k]));
    for (; i < n; i++) acc[i % 8] += (double)(rb_f16_to_f32(a[i]) * rb_f16_to_f32(b[i]));
    *s = sum8(acc);
}

void rb_scalar_vec_dot_bf16(int64_t n, float *s, const void *x, const void *y) {
    const rb_bf16 *a = x, *b = y;
    double acc[8] = { 0 };
    for (int64_t i = 0; i < n; i++) acc[i % 8] += (double)(rb_bf16_to_f32(a[i]) * rb_bf16_to_f32(b[i]));
    *s = sum8(acc);
}

/* ---- 32-element blocks ---- */

static uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void rb_scalar_vec_dot_q4_0(int64_t n, float *s, const void *x, const void *y) {
    const block_q4_0 *w = x;
    const block_q8_0 *a = y;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            sumi += ((w[ib].qs[j] & 0xf) - 8) * a[ib].qs[j];
            sumi += ((w[ib].qs[j] >> 4) - 8) * a[ib].qs[j + QK4_0 / 2];
        }
        sumf += (rb_f16_to_f32(w[ib].d) * rb_f16_to_f32(a[ib].d)) * (float)sumi;
    }
    *s = sumf;
}

void rb_scalar_vec_dot_q4_1(int64_t n, float *s, const void *x, const void *y) {
    const block_q4_1 *w = x;
    const block_q8_1 *a = y;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < n / QK8_1; ib++) {
        int sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sumi += (w[ib].qs[j] & 0xf) * a[ib].qs[j];
            sumi += (w[ib].qs[j] >> 4) * a[ib].qs[j + QK4_1 / 2];
        }
        /* x = d q + m, so dot = d_w d_a sumi + m * (d_a * sum(q_a)) */
        sumf += (rb_f16_to_f32(w[ib].d) * rb_f16_to_f32(a[ib].d)) * (float)sumi
              + rb_f16_to_f32(w[ib].m) * rb_f16_to_f32(a[ib].s);
    }
    *s = sumf;
}

void rb_scalar_vec_dot_q5_0(int64_t n, float *s, const void *x, const void *y) {
    const block_q5_0 *w = x;
    const block_q8_0 *a = y;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        uint32_t qh = load_u32le(w[ib].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int lo = ((w[ib].qs[j] & 0xf) | (int)((qh >> j) & 1) << 4) - 16;
            int hi = ((w[ib].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - 16;
            sumi += lo * a[ib].qs[j] + hi * a[ib].qs[j + QK5_0 / 2];
        }
        sumf += (rb_f16_to_f32(w[ib].d) * rb_f16_to_f32(a[ib].d)) * (float)sumi;
    }
    *s = sumf;
}

void rb_scalar_vec_dot_q5_1(int64_t n, float *s, const void *x, const void *y) {
    const block_q5_1 *w = x;
    const block_q8_1 *a = y;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < n / QK8_1; ib++) {
        uint32_t qh = load_u32le(w[ib].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int lo = (w[ib].qs[j] & 0xf) | (int)((qh >> j) & 1) << 4;
            int hi = (w[ib].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            sumi += lo * a[ib].qs[j] + hi * a[ib].qs[j + QK5_1 / 2];
        }
        sumf += (rb_f16_to_f32(w[ib].d) * rb_f16_to_f32(a[ib].d)) * (float)sumi
              + rb_f16_to_f32(w[ib].m) * rb_f16_to_f32(a[ib].s);
    }
    *s = sumf;
}

void rb_scalar_vec_dot_q8_0(int64_t n, float *s, const void *x, const void *y) {
    const block_q8_0 *w = x;
    const block_q8_0 *a = y;
    float sumf = 0.0f;
    for (int64_t ib = 0; ib < n / QK8_0; ib++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += w[ib].qs[j] * a[ib].qs[j];
        sumf += (rb_f16_to_f32(w[ib].d) * rb_f16_to_f32(a[ib].d)) * (float)sumi;
    }
    *s = sumf;
}

/* ---- K-quants (super-blocks of 256) ----
 * Each kernel unpacks a super-block's quants into int8 q[256] (bit layouts are
 * drawn in quant/kquants.c), then sums sub-block by sub-block. The min part
 * uses Q8_K's bsums: sum over a sub-block of m * q_a = m * bsum. */

static int dot16(const int8_t *q, const int8_t *a) {
    int sum = 0;
    for (int l = 0; l < 16; l++) sum += q[l] * a[l];
    return sum;
}

void rb_scalar_vec_dot_q2_K(int64_t n, float *s, const void *x, const void *y) {
    const block_q2_K *w = x;
    const block_q8_K *a = y;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        for (int half = 0; half < 2; half++) /* value 128 half + 32 s + l: bits 2s of qs[32 half + l] */
            for (int sh = 0; sh < 4; sh++)
                for (int l = 0; l < 32; l++)
                    q[128 * half + 32 * sh + l] = (int8_t)((w[i].qs[32 * half + l] >> (2 * sh)) & 3);
        int sumi = 0, summins = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            sumi += (w[i].scales[j] & 0xf) * dot16(q + 16 * j, a[i].qs + 16 * j);
            summins += (w[i].scales[j] >> 4) * a[i].bsums[j];
        }
        float d = rb_f16_to_f32(w[i].d) * a[i].d;
        float dmin = rb_f16_to_f32(w[i].dmin) * a[i].d;
        sumf += d * (float)sumi - dmin * (float)summins;
    }
    *s = sumf;
}

void rb_scalar_vec_dot_q3_K(int64_t n, float *s, const void *x, const void *y) {
    const block_q3_K *w = x;
    const block_q8_K *a = y;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        for (int half = 0; half < 2; half++) /* low bits as Q2_K; high bit: bit v / 32 of hmask[v % 32] */
            for (int sh = 0; sh < 4; sh++)
                for (int l = 0; l < 32; l++) {
                    int lo = (w[i].qs[32 * half + l] >> (2 * sh)) & 3;
                    int hi = (w[i].hmask[l] >> (4 * half + sh)) & 1;
                    q[128 * half + 32 * sh + l] = (int8_t)((lo | hi << 2) - 4);
                }
        int sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            sumi += rb_get_scale_q3_K(j, w[i].scales) * dot16(q + 16 * j, a[i].qs + 16 * j);
        }
        sumf += (rb_f16_to_f32(w[i].d) * a[i].d) * (float)sumi;
    }
    *s = sumf;
}

void rb_scalar_vec_dot_q4_K(int64_t n, float *s, const void *x, const void *y) {
    const block_q4_K *w = x;
    const block_q8_K *a = y;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, summins = 0;
        for (int sub = 0; sub < QK_K / 32; sub++) {
            uint8_t sc, m;
            rb_get_scale_min_k4(sub, w[i].scales, &sc, &m);
            const uint8_t *qs = w[i].qs + 32 * (sub / 2);
            int shift = 4 * (sub % 2), dot = 0;
            for (int l = 0; l < 32; l++) dot += ((qs[l] >> shift) & 0xf) * a[i].qs[32 * sub + l];
            sumi += sc * dot;
            summins += m * (a[i].bsums[2 * sub] + a[i].bsums[2 * sub + 1]);
        }
        float d = rb_f16_to_f32(w[i].d) * a[i].d;
        float dmin = rb_f16_to_f32(w[i].dmin) * a[i].d;
        sumf += d * (float)sumi - dmin * (float)summins;
    }
    *s = sumf;
}

void rb_scalar_vec_dot_q5_K(int64_t n, float *s, const void *x, const void *y) {
    const block_q5_K *w = x;
    const block_q8_K *a = y;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, summins = 0;
        for (int sub = 0; sub < QK_K / 32; sub++) {
            uint8_t sc, m;
            rb_get_scale_min_k4(sub, w[i].scales, &sc, &m);
            const uint8_t *qs = w[i].qs + 32 * (sub / 2);
            int shift = 4 * (sub % 2), dot = 0;
            for (int l = 0; l < 32; l++) {
                int q = ((qs[l] >> shift) & 0xf) | ((w[i].qh[l] >> sub) & 1) << 4;
                dot += q * a[i].qs[32 * sub + l];
            }
            sumi += sc * dot;
            summins += m * (a[i].bsums[2 * sub] + a[i].bsums[2 * sub + 1]);
        }
        float d = rb_f16_to_f32(w[i].d) * a[i].d;
        float dmin = rb_f16_to_f32(w[i].dmin) * a[i].d;
        sumf += d * (float)sumi - dmin * (float)summins;
    }
    *s = sumf;
}

void rb_scalar_vec_dot_q6_K(int64_t n, float *s, const void *x, const void *y) {
    const block_q6_K *w = x;
    const block_q8_K *a = y;
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; i++) {
        int8_t q[QK_K];
        for (int half = 0; half < 2; half++) { /* 128 values from 64 bytes of ql, 32 of qh */
            const uint8_t *ql = w[i].ql + 64 * half, *qh = w[i].qh + 32 * half;
            int8_t *qq = q + 128 * half;
            for (int l = 0; l < 32; l++) {
                qq[l] = (int8_t)(((ql[l] & 0xf) | ((qh[l] >> 0) & 3) << 4) - 32);
                qq[l + 32] = (int8_t)(((ql[l + 32] & 0xf) | ((qh[l] >> 2) & 3) << 4) - 32);
                qq[l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
                qq[l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
            }
        }
        int sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) sumi += w[i].scales[j] * dot16(q + 16 * j, a[i].qs + 16 * j);
        sumf += (rb_f16_to_f32(w[i].d) * a[i].d) * (float)sumi;
    }
    *s = sumf;
}

/* ---- activation quantizers ---- */

static float absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

/* round half to even, clamped to [-127, 127]; NaN gives 0 */
static int8_t round_q8(float v) {
    if (!(v == v)) return 0;
    v = nearbyintf(v);
    return (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : (int)v);
}

/* d = amax / 127; the multiplier is 127 / amax (not 1 / d), as ggml's SIMD
 * quantize_row_q8_0 computes it. */
void rb_scalar_quantize_q8_0(const float *x, void *y, int64_t n) {
    block_q8_0 *b = y;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax = absmax(x, QK8_0);
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        b[i].d = rb_f32_to_f16(amax / 127.0f);
        for (int j = 0; j < QK8_0; j++) b[i].qs[j] = round_q8(x[j] * id);
    }
}

void rb_scalar_quantize_q8_1(const float *x, void *y, int64_t n) {
    block_q8_1 *b = y;
    for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
        float amax = absmax(x, QK8_1);
        float d = amax / 127.0f;
        float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            b[i].qs[j] = round_q8(x[j] * id);
            sum += b[i].qs[j];
        }
        b[i].d = rb_f32_to_f16(d);
        b[i].s = rb_f32_to_f16(d * (float)sum);
    }
}

/* Q8_K: scale from the signed extreme, iscale = -127 / max, so the extreme
 * maps to -127 exactly and d = 1 / iscale is negative when max > 0. */
void rb_scalar_quantize_q8_K(const float *x, void *y, int64_t n) {
    block_q8_K *b = y;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
        memset(&b[i], 0, sizeof b[i]);
        if (amax == 0.0f) continue; /* all zero: d = 0, q = 0, bsums = 0 */
        float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) b[i].qs[j] = round_q8(iscale * x[j]);
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b[i].qs[16 * j + l];
            b[i].bsums[j] = (int16_t)sum;
        }
        b[i].d = 1.0f / iscale;
    }
}

void rb_scalar_quantize_f16(const float *x, void *y, int64_t n) {
    rb_f16 *h = y;
    for (int64_t i = 0; i < n; i++) h[i] = rb_f32_to_f16(x[i]);
}

void rb_scalar_quantize_bf16(const float *x, void *y, int64_t n) {
    rb_bf16 *h = y;
    for (int64_t i = 0; i < n; i++) h[i] = rb_f32_to_bf16(x[i]);
}

/* ---- float helpers ---- */

void rb_scalar_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0.0; /* ggml sums squares in ggml_float (double) */
    for (int64_t i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * (w ? w[i] : 1.0f);
}

void rb_scalar_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += x[i];
    float mean = (float)(sum / (double)n);
    double var = 0.0;
    for (int64_t i = 0; i < n; i++) var += (double)((x[i] - mean) * (x[i] - mean));
    float scale = 1.0f / sqrtf((float)(var / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) {
        float v = (x[i] - mean) * scale;
        if (w) v *= w[i];
        if (b) v += b[i];
        out[i] = v;
    }
}

void rb_scalar_softmax(float *x, int64_t n) {
    if (n <= 0) return;
    float max = x[0];
    for (int64_t i = 1; i < n; i++) max = fmaxf(max, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void rb_scalar_silu_mul(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* GPT-2's tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void rb_scalar_gelu(float *x, int64_t n) {
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(sqrt_2_over_pi * v * (1.0f + 0.044715f * v * v)));
    }
}

void rb_scalar_add(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void rb_scalar_f16_to_f32(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = rb_f16_to_f32(x[i]);
}

void rb_scalar_f32_to_f16(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = rb_f32_to_f16(x[i]);
}

/* ---- the table ---- */

const struct rb_kernels rb_kernels_scalar = {
    .isa = "scalar",
    .vec_dot = {
        [RB_TYPE_F32] = rb_scalar_vec_dot_f32,
        [RB_TYPE_F16] = rb_scalar_vec_dot_f16,
        [RB_TYPE_BF16] = rb_scalar_vec_dot_bf16,
        [RB_TYPE_Q4_0] = rb_scalar_vec_dot_q4_0,
        [RB_TYPE_Q4_1] = rb_scalar_vec_dot_q4_1,
        [RB_TYPE_Q5_0] = rb_scalar_vec_dot_q5_0,
        [RB_TYPE_Q5_1] = rb_scalar_vec_dot_q5_1,
        [RB_TYPE_Q8_0] = rb_scalar_vec_dot_q8_0,
        [RB_TYPE_Q2_K] = rb_scalar_vec_dot_q2_K,
        [RB_TYPE_Q3_K] = rb_scalar_vec_dot_q3_K,
        [RB_TYPE_Q4_K] = rb_scalar_vec_dot_q4_K,
        [RB_TYPE_Q5_K] = rb_scalar_vec_dot_q5_K,
        [RB_TYPE_Q6_K] = rb_scalar_vec_dot_q6_K,
    },
    .gemm = { 0 },
    .quantize_act = {
        [RB_TYPE_Q8_0] = rb_scalar_quantize_q8_0,
        [RB_TYPE_Q8_1] = rb_scalar_quantize_q8_1,
        [RB_TYPE_Q8_K] = rb_scalar_quantize_q8_K,
        [RB_TYPE_F16] = rb_scalar_quantize_f16,
        [RB_TYPE_BF16] = rb_scalar_quantize_bf16,
    },
    .rmsnorm = rb_scalar_rmsnorm,
    .layernorm = rb_scalar_layernorm,
    .softmax = rb_scalar_softmax,
    .silu_mul = rb_scalar_silu_mul,
    .gelu = rb_scalar_gelu,
    .add = rb_scalar_add,
    .f16_to_f32 = rb_scalar_f16_to_f32,
    .f32_to_f16 = rb_scalar_f32_to_f16,
};
