/* PLACEHOLDER: replaced by the quant issue's scalar reference kernels. */
#include "kernels.h"
const struct rb_kernels rb_kernels_scalar = { .isa = "scalar" };
