/* avx512_util.h - small helpers the AVX-512 kernel files share
 * (avx512_q32.c, avx512_kq.c; included after <immintrin.h>, compiled with
 * avx512.c's flags). */
#ifndef RB_AVX512_UTIL_H
#define RB_AVX512_UTIL_H

#include <stdint.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")
/* Keeps a loaded vector in a register: without it GCC folds the load into
 * every instruction that uses the vector, loading it again each time. */
#define IN_REGISTER(v) __asm__("" : "+v"(v))

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

#endif
