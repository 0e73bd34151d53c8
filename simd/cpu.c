/* cpu.c - which kernel table runs: CPU feature detection and RBEE_ISA.
 *
 * The table is chosen once, on the first rb_kernels() call, as the best one
 * the CPU (and the OS, for the YMM/ZMM register state) supports. RBEE_ISA=
 * forces one by name (rbee isas lists them). Policy for a forced ISA the CPU lacks
 * (or an unknown name): rb_kernels() never fails, it ignores such a value and
 * uses the best table; the CLI (at start) and rbee_model_load call
 * rb_kernels_select_env, which refuses it with a message naming the value
 * and the valid names, so no run goes ahead on a path nobody asked for.
 *
 * x86-64, worst to best: avx2 needs AVX2+FMA+F16C; avxvnni also AVX-VNNI
 * (CPUID 7.1 EAX bit 4); avx512 needs AVX-512 F+BW+VL+DQ+VNNI. All need the
 * OS to save the registers (XGETBV). avxvnni_evex, the avxvnni code with the
 * EVEX vpdpbusd of AVX512-VNNI+VL, is listed where avxvnni cannot run but
 * that can (AMD Zen 4), so its logic is tested there; avx512 still wins.
 * aarch64: neon always, neon_dotprod when HWCAP_ASIMDDP is set.
 * This file is the one place with an x86-vs-ARM #if.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* What this CPU can run, filled once by detect(). */
struct cpu_isas {
    const struct rb_kernels *tables[6]; /* usable tables, best last */
    int n_tables;
    char names[96];                     /* "scalar avx2 avx512" */
};

static void add_table(struct cpu_isas *c, const struct rb_kernels *k) {
    c->tables[c->n_tables++] = k;
    if (c->names[0]) strcat(c->names, " ");
    strcat(c->names, k->isa);
}

/* ---------------------------------------------------------------- x86-64 */
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

/* XCR0: which register state the OS saves on context switch. */
static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int bit(uint64_t v, int i) { return (int)((v >> i) & 1); }

int rb_x86_tables(const struct rb_x86_cpuid *r, const struct rb_kernels **t) {
    int n = 0;
    t[n++] = &rb_kernels_scalar;
    /* the OS must save the YMM (and, for EVEX code, the opmask and ZMM) state */
    const int ymm = bit(r->leaf1_ecx, 27) && bit(r->leaf1_ecx, 28) && (r->xcr0 & 0x6) == 0x6;
    const int zmm = ymm && (r->xcr0 & 0xe0) == 0xe0;
    if (!ymm || !bit(r->leaf7_ebx, 5) || !bit(r->leaf1_ecx, 12) || !bit(r->leaf1_ecx, 29))
        return n; /* AVX2, FMA, F16C */
    t[n++] = &rb_kernels_avx2;
    const int vl_vnni = zmm && bit(r->leaf7_ebx, 31) && bit(r->leaf7_ecx, 11);
#ifndef RB_NO_AVXVNNI
    if (bit(r->leaf7_1_eax, 4)) /* AVX-VNNI */
        t[n++] = &rb_kernels_avxvnni;
    else
#endif
    if (vl_vnni)
        t[n++] = &rb_kernels_avxvnni_evex;
    if (vl_vnni && bit(r->leaf7_ebx, 16) && bit(r->leaf7_ebx, 17) && bit(r->leaf7_ebx, 30)) /* F, DQ, BW */
        t[n++] = &rb_kernels_avx512;
    return n;
}

static void detect(struct cpu_isas *c) {
    struct rb_x86_cpuid r = { 0 };
    unsigned a, b, cx, d;
    if (__get_cpuid(1, &a, &b, &cx, &d)) {
        r.leaf1_ecx = cx;
        if (bit(cx, 27)) r.xcr0 = read_xcr0(); /* OSXSAVE: XGETBV may run */
    }
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, cx, d);
        r.leaf7_ebx = b;
        r.leaf7_ecx = cx;
        if (a >= 1) { /* subleaf 1 exists */
            __cpuid_count(7, 1, a, b, cx, d);
            r.leaf7_1_eax = a;
        }
    }
    const struct rb_kernels *t[RB_X86_TABLES_MAX];
    int n = rb_x86_tables(&r, t);
    for (int i = 0; i < n; i++) add_table(c, t[i]);
}

/* --------------------------------------------------------------- aarch64 */
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif

static void detect(struct cpu_isas *c) {
    add_table(c, &rb_kernels_scalar);
    add_table(c, &rb_kernels_neon);
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) add_table(c, &rb_kernels_neon_dotprod);
}

/* ------------------------------------------------------------ other CPUs */
#else
static void detect(struct cpu_isas *c) {
    add_table(c, &rb_kernels_scalar);
}
#endif

/* ------------------------------------------------------------- dispatch */

/* Detected once; after that read-only. The chosen table is the one mutable
 * global of the library (an atomic pointer so threads may read it freely). */
static struct cpu_isas cpu;
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static _Atomic(const struct rb_kernels *) chosen;

static void detect_once(void) { detect(&cpu); }

static const struct rb_kernels *best_table(void) {
    pthread_once(&cpu_once, detect_once);
    return cpu.tables[cpu.n_tables - 1];
}

/* The usable table named isa, or NULL. */
static const struct rb_kernels *find_table(const char *isa) {
    pthread_once(&cpu_once, detect_once);
    for (int i = 0; i < cpu.n_tables; i++)
        if (!strcmp(cpu.tables[i]->isa, isa)) return cpu.tables[i];
    return NULL;
}

const struct rb_kernels *rb_kernels(void) {
    const struct rb_kernels *k = atomic_load(&chosen);
    if (k) return k;
    const char *env = getenv("RBEE_ISA");
    k = env && *env ? find_table(env) : NULL;
    if (!k) k = best_table(); /* bad RBEE_ISA: the CLI reports it via rb_kernels_select */
    const struct rb_kernels *expected = NULL;
    /* If another thread chose first (or rb_kernels_select ran), keep its choice. */
    if (!atomic_compare_exchange_strong(&chosen, &expected, k)) k = expected;
    return k;
}

int rb_kernels_select(const char *isa, char *err) {
    static const char *const known[] = { "scalar", "avx2", "avxvnni", "avxvnni_evex", "avx512", "neon", "neon_dotprod" };
    if (!isa || !*isa) {
        snprintf(err, RB_ERR_MAX, "RBEE_ISA: empty ISA name (this CPU runs: %s)", rb_kernels_available());
        return -1;
    }
    const struct rb_kernels *k = find_table(isa);
    if (!k) {
        int is_known = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (!strcmp(known[i], isa)) is_known = 1;
        snprintf(err, RB_ERR_MAX, "RBEE_ISA=%s: %s (this CPU runs: %s)", isa,
                 is_known ? "this CPU or build lacks it"
                          : "unknown ISA, expected scalar|avx2|avxvnni|avxvnni_evex|avx512|neon|neon_dotprod",
                 rb_kernels_available());
        return -1;
    }
    atomic_store(&chosen, k);
    return 0;
}

int rb_kernels_select_env(char *err) {
    const char *isa = getenv("RBEE_ISA");
    return isa && *isa ? rb_kernels_select(isa, err) : 0;
}

const char *rb_kernels_available(void) {
    pthread_once(&cpu_once, detect_once);
    return cpu.names;
}
