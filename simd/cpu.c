/* PLACEHOLDER dispatch (scalar only): replaced by the x86 SIMD issue's cpu.c. */
#include <string.h>
#include <stdio.h>
#include "kernels.h"
const struct rb_kernels *rb_kernels(void) { return &rb_kernels_scalar; }
int rb_kernels_select(const char *isa, char *err) {
    if (!strcmp(isa, "scalar")) return 0;
    snprintf(err, RB_ERR_MAX, "RBEE_ISA=%s: not available", isa);
    return -1;
}
const char *rb_kernels_available(void) { return "scalar"; }
