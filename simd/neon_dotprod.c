/* neon_dotprod.c - the NEON table for ARMv8.2 CPUs with the dot-product
 * extension (Raspberry Pi 5 / Cortex-A76), compiled with
 * -march=armv8.2-a+dotprod. The integer dot products of neon_common.h are
 * built here with `sdot` (vdotq_s32: 16 int8 products into 4 int32 lanes in
 * one instruction); the float helpers do not gain from dotprod and are the
 * ones in neon.c. simd/cpu.c offers it (isa "neon_dotprod") when
 * HWCAP_ASIMDDP is set, after the plain "neon" table.
 */
#include "neon_common.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "neon_dotprod.c needs -march=armv8.2-a+dotprod (ISA_FLAGS_neon_dotprod in the Makefile)"
#endif

const struct rb_kernels rb_kernels_neon_dotprod = RB_NEON_TABLE("neon_dotprod");
