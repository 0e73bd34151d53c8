/* avx512_util.h - small helpers the AVX-512 kernel files share
 * (avx512_q32.c, avx512_kq.c; included after <immintrin.h>, compiled with
 * avx512.c's flags). */
#ifndef RB_AVX512_UTIL_H
#define RB_AVX512_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")
/* Keeps a loaded vector in a register: without it GCC folds the load into
 * every instruction that uses the vector, loading it again each time. */
#define IN_REGISTER(v) __asm__("" : "+v"(v))

/* Generation streams the weights from DRAM: each kernel prefetches this far
 * ahead of the row it reads, into L2 (-DPREFETCH=.. -DPF_HINT=.. to
 * measure others). Zen 4, one core, 4 KiB pages, against llama.cpp's
 * kernels from DRAM: Q4_0 (its repacked gemv) 4 KiB 0.96x, 8 KiB
 * 0.77-1.20x, 16 KiB 1.14-1.33x, 32 KiB 1.14-1.24x; Q6_K 2 KiB into L1
 * 0.74x, 8 KiB into L2 1.04x, 16 KiB 1.07x; Q4_K 1.02x / 0.98x / 1.00x. */
#ifndef PREFETCH
#define PREFETCH 16384
#endif
#ifndef PF_HINT
#define PF_HINT _MM_HINT_T1
#endif

/* The F16 value at p (unaligned), widened. */
ALWAYS_INLINE float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* out[c] lane 4j + q = in[q] lane 4j + c (a 4 x 4 transpose in every 128-bit lane) */
ALWAYS_INLINE void transpose4(const __m512i in[4], __m512i out[4]) {
    __m512i t0 = _mm512_unpacklo_epi32(in[0], in[1]), t1 = _mm512_unpackhi_epi32(in[0], in[1]);
    __m512i t2 = _mm512_unpacklo_epi32(in[2], in[3]), t3 = _mm512_unpackhi_epi32(in[2], in[3]);
    out[0] = _mm512_unpacklo_epi64(t0, t2);
    out[1] = _mm512_unpackhi_epi64(t0, t2);
    out[2] = _mm512_unpacklo_epi64(t1, t3);
    out[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* Per-call scratch of the prompt paths: tokens prepared per pass, so that
 * they take about budget bytes (tok_bytes each; at least min_tok, at most
 * n_tok), and two 64-byte aligned buffers, or none (0: out of memory). */
ALWAYS_INLINE int64_t tokens_per_pass(size_t budget, size_t tok_bytes, int64_t min_tok, int64_t n_tok) {
    int64_t tb = (int64_t)(budget / tok_bytes);
    return tb < min_tok ? min_tok : tb > n_tok ? n_tok : tb;
}

ALWAYS_INLINE int scratch_pair(size_t a_bytes, void **a, size_t b_bytes, void **b) {
    /* C11 wants sizes that are multiples of the alignment */
    *a = aligned_alloc(64, (a_bytes + 63) / 64 * 64);
    *b = aligned_alloc(64, (b_bytes + 63) / 64 * 64);
    if (*a && *b) return 1;
    free(*a);
    free(*b);
    return 0;
}

#endif
