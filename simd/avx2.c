/* avx2.c - the AVX2 + FMA + F16C kernel table (compiled with -mavx2 -mfma
 * -mf16c): the integer kernels of avx2_common.h with vpmaddubsw products,
 * the float helpers of avx2_float.c. */
#define RB_X86_VNNI 0
#include "avx2_common.h"

const struct rb_kernels rb_kernels_avx2 = RB_AVX2_TABLE("avx2");
