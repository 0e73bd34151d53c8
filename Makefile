# rbee - one Makefile. `make` builds build/rbee and build/librbee.a;
# `make test` builds and runs every test (unit, kernel per ISA, golden,
# sanitizers, fuzz smoke, ARM under qemu when available).

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
SHARED  ?= ../shared
MODEL   ?= $(SHARED)/models/stories260K.gguf
PROMPT  ?= Once upon a time
N       ?= 200

WARN     = -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
# -ffp-contract=off: no compiler may fuse a*b + c into an FMA behind our
# back (clang does by default), so scalar and NEON float results, which the
# SIMD kernels are held to, do not change with the compiler.
BASEFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -ffp-contract=off -pthread -MMD -MP
LDLIBS   = -lm -lpthread

# libnuma is optional: used only if its header is present at build time.
ifneq ($(wildcard /usr/include/numa.h),)
  ifneq ($(NO_NUMA),1)
    NUMA_CFLAGS = -DRB_HAVE_NUMA
    LDLIBS += -lnuma
  endif
endif

TARGET_ARCH_NAME := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq ($(findstring x86_64,$(TARGET_ARCH_NAME)),)
  ISA_EXCLUDE = simd/neon%.c
  # -mavxvnni needs GCC 11 / clang 12; an older compiler builds without that table.
  ifneq ($(shell $(CC) -mavxvnni -E -x c /dev/null >/dev/null 2>&1 && echo ok),ok)
    ISA_EXCLUDE += simd/avxvnni.c
    ISA_DEFS = -DRB_NO_AVXVNNI
  endif
else ifneq ($(findstring aarch64,$(TARGET_ARCH_NAME)),)
  ISA_EXCLUDE = simd/avx%.c
  # GCC 12.2 for aarch64 (Debian 12, Raspberry Pi OS) ICEs vectorizing a
  # double fmax() reduction over floats (in vect_transform_reduction); test
  # binaries do not need the vectorizer.
  TEST_FLAGS = -fno-tree-vectorize
else
  ISA_EXCLUDE = simd/avx%.c simd/neon%.c
endif

# Each ISA file is compiled with its own flags; the rest of the code is
# plain C, so one binary runs on any CPU of the architecture.
ISA_FLAGS_avx2        = -mavx2 -mfma -mf16c
ISA_FLAGS_avx2_float  = $(ISA_FLAGS_avx2)
ISA_FLAGS_avxvnni     = $(ISA_FLAGS_avx2) -mavxvnni
ISA_FLAGS_avxvnni_evex = $(ISA_FLAGS_avx2) -mavx512f -mavx512vl -mavx512vnni
ISA_FLAGS_avx512      = -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c
ISA_FLAGS_avx512_q32  = $(ISA_FLAGS_avx512)
ISA_FLAGS_avx512_kq   = $(ISA_FLAGS_avx512)
ISA_FLAGS_neon        = -march=armv8-a
ISA_FLAGS_neon_dotprod = -march=armv8.2-a+dotprod

LIB_SRC  := $(filter-out runtime/main.c $(ISA_EXCLUDE), \
              $(wildcard gguf/*.c quant/*.c simd/*.c attention/*.c runtime/*.c bench/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(filter-out $(TEST_SRC) tests/fuzz_%.c,$(wildcard tests/*.c))
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/obj/%.o)

.PHONY: all tests test check asan fuzz fuzz-smoke run bench install clean cross-arm test-arm
all: $(BUILD)/rbee $(BUILD)/librbee.a

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(NUMA_CFLAGS) $(ISA_DEFS) $(ISA_FLAGS_$(basename $(notdir $<))) -c $< -o $@

$(BUILD)/librbee.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/rbee: $(BUILD)/obj/runtime/main.o $(BUILD)/librbee.a
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(TEST_SUPPORT_OBJ) $(BUILD)/librbee.a
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(TEST_FLAGS) $(ISA_DEFS) -o $@ $< $(TEST_SUPPORT_OBJ) $(BUILD)/librbee.a $(LDFLAGS) $(LDLIBS)

tests: all $(TEST_BIN)

# The whole suite: plain build, sanitizer build, fuzz smoke, ARM (if the
# cross tools are installed; .ci/run installs them). One closing line.
test:
	$(MAKE) tests
	$(MAKE) asan-build
	-$(MAKE) fuzz-build
	@if [ "$$(uname -m)" = aarch64 ]; then echo "test: native ARM build, no cross build"; \
	elif command -v aarch64-linux-gnu-gcc >/dev/null; then $(MAKE) cross-arm; \
	else echo "test: aarch64-linux-gnu-gcc not found, ARM run skipped (.ci/run installs it)"; fi
	SHARED=$(SHARED) sh tests/run_tests.sh

check: test

asan-build:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" LDFLAGS="-fsanitize=address,undefined" tests

asan: asan-build
	SHARED=$(SHARED) SUITES=asan sh tests/run_tests.sh

# libFuzzer harness for the GGUF reader (needs clang).
FUZZ_SRC := $(filter-out $(ISA_EXCLUDE) simd/avx%.c,$(LIB_SRC))
fuzz-build:
	@command -v clang >/dev/null || { echo "fuzz: clang not found, skipped"; exit 1; }
	@mkdir -p build-fuzz
	clang -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined \
	    -o build-fuzz/fuzz_gguf tests/fuzz_gguf.c gguf/*.c -lm

FUZZ_SECONDS ?= 600
fuzz: fuzz-build
	@mkdir -p build-fuzz/corpus
	build-fuzz/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build-fuzz/corpus $(SHARED)/models

fuzz-smoke: fuzz-build
	@mkdir -p build-fuzz/corpus
	build-fuzz/fuzz_gguf -max_total_time=60 -max_len=65536 build-fuzz/corpus $(SHARED)/models

# ARM: cross build and qemu runs (gcc-aarch64-linux-gnu, qemu-user).
cross-arm:
	@command -v aarch64-linux-gnu-gcc >/dev/null || { echo "cross-arm: aarch64-linux-gnu-gcc not found"; exit 1; }
	$(MAKE) CC=aarch64-linux-gnu-gcc BUILD=build-arm NO_NUMA=1 tests

test-arm: cross-arm
	@command -v qemu-aarch64 >/dev/null || { echo "test-arm: qemu-aarch64 not found (Debian package qemu-user)"; exit 1; }
	SHARED=$(SHARED) SUITES=arm sh tests/run_tests.sh

run: $(BUILD)/rbee
	$(BUILD)/rbee run -m $(MODEL) -p "$(PROMPT)" -n $(N)

bench: $(BUILD)/rbee
	sh bench/make_bench.sh $(BUILD)/rbee

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 $(BUILD)/rbee $(DESTDIR)$(PREFIX)/bin/rbee
	install -m 644 $(BUILD)/librbee.a $(DESTDIR)$(PREFIX)/lib/librbee.a
	install -m 644 runtime/rbee.h $(DESTDIR)$(PREFIX)/include/rbee.h

clean:
	rm -rf build build-asan build-fuzz build-arm build-*

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
