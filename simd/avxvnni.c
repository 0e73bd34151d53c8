/* avxvnni.c - the AVX-VNNI kernel table (Intel CPUs with the 256-bit VEX
 * vpdpbusd and no AVX-512, e.g. Alder Lake; compiled with -mavx2 -mfma
 * -mf16c -mavxvnni): the integer kernels of avx2_common.h with vpdpbusd
 * products, the float helpers of avx2_float.c. simd/cpu.c offers it when
 * CPUID reports AVX-VNNI; on an AVX-512 CPU the avx512 table still wins. */
#define RB_X86_VNNI 1
#define RB_DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#include "avx2_common.h"

#if !defined(__AVXVNNI__)
#error "avxvnni.c needs -mavxvnni (ISA_FLAGS_avxvnni in the Makefile)"
#endif

const struct rb_kernels rb_kernels_avxvnni = RB_AVX2_TABLE("avxvnni");
