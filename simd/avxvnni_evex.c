/* avxvnni_evex.c - the avxvnni table's code built with the EVEX-encoded
 * 256-bit vpdpbusd of AVX512-VNNI + AVX512-VL (compiled with those flags).
 * Same source, same results: it exists so that CPUs with AVX-512 VNNI but no
 * AVX-VNNI (AMD Zen 4) run the avxvnni logic in test_kernels and the golden
 * tests. simd/cpu.c lists it ("avxvnni_evex") only where the VEX build cannot
 * run, and never picks it by itself: the avx512 table is better there. */
#define RB_X86_VNNI 1
#define RB_DPBUSD(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
#include "avx2_common.h"

#if !defined(__AVX512VNNI__) || !defined(__AVX512VL__)
#error "avxvnni_evex.c needs -mavx512vnni -mavx512vl (ISA_FLAGS_avxvnni_evex in the Makefile)"
#endif

const struct rb_kernels rb_kernels_avxvnni_evex = RB_AVX2_TABLE("avxvnni_evex");
