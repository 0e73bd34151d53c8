/* kernels.h - the kernel table: how fast a row of weight blocks meets a row of
 * activations, plus the float helpers the forward pass spends time in.
 *
 * One table per ISA (simd/scalar.c, avx2.c, avxvnni.c, avx512.c, neon.c,
 * neon_dotprod.c), each file compiled with its own flags. rb_kernels()
 * returns the table chosen once at start (best the CPU supports, or the one
 * RBEE_ISA names: scalar|avx2|avxvnni|avxvnni_evex|avx512|neon|neon_dotprod).
 * Every SIMD entry must agree with the scalar one: bit-exact for integer dot
 * products, within a stated tolerance for float reductions.
 */
#ifndef RB_KERNELS_H
#define RB_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "../gguf/gguf.h"

/* *s = dot(x, y) over n elements. x: one row of weight type T; y: one row of
 * rb_traits(T)->vec_dot_type. n is a multiple of both block sizes. */
typedef void (*rb_vec_dot_fn)(int64_t n, float *s, const void *x, const void *y);

/* F32 row -> activation format row (Q8_0, Q8_1, Q8_K, F16, BF16); n a multiple of its block size. */
typedef void (*rb_quantize_row_fn)(const float *x, void *y, int64_t n);

/* Many rows times many tokens, reusing each loaded weight block across tokens:
 *   out[t * out_stride + r] = dot(w row r, act row t)  for r < n_rows, t < n_tok
 * w rows are w_row_bytes apart, act rows act_row_bytes apart. Must give the
 * same bits as calling vec_dot per (r, t). NULL entry: callers loop vec_dot. */
typedef void (*rb_gemm_fn)(int64_t n, int64_t n_rows, int64_t n_tok,
                           const void *w, size_t w_row_bytes,
                           const void *act, size_t act_row_bytes,
                           float *out, int64_t out_stride);

struct rb_kernels {
    const char *isa;                                 /* "scalar", "avx2", "avx512", ... (one per table) */
    rb_vec_dot_fn vec_dot[RB_TYPE_COUNT];            /* by weight type; NULL = unsupported */
    rb_gemm_fn gemm[RB_TYPE_COUNT];                  /* by weight type; NULL = loop vec_dot */
    rb_quantize_row_fn quantize_act[RB_TYPE_COUNT];  /* by activation type (Q8_0, Q8_1, Q8_K, F16, BF16) */

    /* float helpers; n is any length; out may be the same buffer as an input
     * (the forward pass calls add(x, x, p) and silu_mul(g, g, u)) */
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
    void (*layernorm)(float *out, const float *x, const float *w, const float *b, int64_t n, float eps);
    void (*softmax)(float *x, int64_t n);                 /* in place, max-subtracted */
    void (*silu_mul)(float *out, const float *gate, const float *up, int64_t n); /* out = silu(gate) * up */
    void (*gelu)(float *x, int64_t n);                    /* tanh approximation, in place */
    void (*add)(float *out, const float *a, const float *b, int64_t n);
    void (*f16_to_f32)(const uint16_t *x, float *y, int64_t n);
    void (*f32_to_f16)(const float *x, uint16_t *y, int64_t n);
};

extern const struct rb_kernels rb_kernels_scalar;
extern const struct rb_kernels rb_kernels_avx2;         /* x86-64 builds only */
extern const struct rb_kernels rb_kernels_avxvnni;      /* x86-64, compilers with -mavxvnni */
extern const struct rb_kernels rb_kernels_avxvnni_evex; /* x86-64: avxvnni's code, EVEX vpdpbusd */
extern const struct rb_kernels rb_kernels_avx512;       /* x86-64 builds only */
extern const struct rb_kernels rb_kernels_neon;         /* aarch64 builds only */
extern const struct rb_kernels rb_kernels_neon_dotprod; /* aarch64 builds only */

/* x86-64: what CPUID and XGETBV report (0 where a leaf is missing), and
 * the tables a CPU reporting it runs, worst to best (cpu.c's choice, apart
 * from reading the registers, so that tests can give it any CPU). */
struct rb_x86_cpuid {
    uint32_t leaf1_ecx;   /* FMA 12, OSXSAVE 27, AVX 28, F16C 29 */
    uint32_t leaf7_ebx;   /* AVX2 5, AVX512F 16, DQ 17, BW 30, VL 31 */
    uint32_t leaf7_ecx;   /* AVX512_VNNI 11 */
    uint32_t leaf7_1_eax; /* AVX-VNNI 4 */
    uint64_t xcr0;        /* OS-saved state: SSE 1, AVX 2, opmask/ZMM 5-7 */
};
#define RB_X86_TABLES_MAX 5
int rb_x86_tables(const struct rb_x86_cpuid *r, const struct rb_kernels **t); /* t: RB_X86_TABLES_MAX */

/* The table in use: chosen on first call from CPU features and RBEE_ISA. */
const struct rb_kernels *rb_kernels(void);
/* Choose explicitly ("scalar", "avx2", ...); -1 with err if unknown or the CPU lacks it. */
int rb_kernels_select(const char *isa, char *err);
/* rb_kernels_select(RBEE_ISA) when it is set and not empty, else 0: the
 * check the CLI and model loading make, so a bad value is refused by name. */
int rb_kernels_select_env(char *err);
/* Space-separated list of ISAs this CPU can run, best last, e.g. "scalar avx2 avx512". */
const char *rb_kernels_available(void);

#endif
