# rbee - one Makefile. `make` builds build/rbee and build/librbee.a;
# `make check` builds and runs the plain suites (every ISA this CPU has):
# the quick loop while editing; `make test` is the whole suite (plain,
# sanitizers, fuzz smoke, ARM under qemu when available).
#
# Files: everything under gguf/ quant/ simd/ attention/ runtime/ bench/ is
# the library (librbee.a), except the command: runtime/main.c and every
# cli_*.c (cli.a). Tests are tests/test_*.c (one binary each), fuzz
# targets tests/fuzz_*.c (see tests/fuzz.sh); new files are picked up by
# these patterns.

CC      ?= cc
BUILD   ?= build
ASAN_BUILD ?= $(BUILD)-asan
FUZZ_BUILD ?= $(BUILD)-fuzz
ARM_BUILD  ?= $(BUILD)-arm
PREFIX  ?= /usr/local
SHARED  ?= ../shared
MODEL   ?= $(SHARED)/models/stories260K.gguf
PROMPT  ?= Once upon a time
N       ?= 200

# Compile in parallel unless told otherwise (make -j1); sub-makes share
# the top level's job slots.
ifeq ($(MAKELEVEL),0)
  MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

WARN     = -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
# -ffp-contract=off: no compiler may fuse a*b + c into an FMA behind our
# back (clang does by default), so scalar and NEON float results, which the
# SIMD kernels are held to, do not change with the compiler.
BASEFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -ffp-contract=off -pthread -MMD -MP
LDLIBS   = -lm -lpthread

# `rbee --version`: the release, and the commit when built from git.
VERSION := 0.1.0
GIT_DESCRIBE := $(shell git describe --tags --always --dirty 2>/dev/null)
VERSION_STRING := $(VERSION)$(if $(GIT_DESCRIBE), ($(GIT_DESCRIBE)))

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
FILE_FLAGS_main       = -I$(BUILD)

ALL_SRC  := $(filter-out $(ISA_EXCLUDE), \
              $(wildcard gguf/*.c quant/*.c simd/*.c attention/*.c runtime/*.c bench/*.c))
CLI_SRC  := $(filter runtime/main.c runtime/cli_%.c bench/cli_%.c,$(ALL_SRC))
LIB_SRC  := $(filter-out $(CLI_SRC),$(ALL_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
# main.o stays out of cli.a: a libFuzzer target, which has no main of its
# own, would otherwise get rbee's.
CLI_OBJ  := $(filter-out $(BUILD)/obj/runtime/main.o,$(CLI_SRC:%.c=$(BUILD)/obj/%.o))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(filter-out $(TEST_SRC) tests/fuzz_%.c,$(wildcard tests/*.c))
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/obj/%.o)
FUZZ_SRC := $(wildcard tests/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/%.c=$(BUILD)/%)
FUZZ_FLAGS = -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all

.PHONY: all tests test check asan asan-build fuzz fuzz-build fuzz-bins run bench install clean cross-arm test-arm FORCE
.DELETE_ON_ERROR:
all: $(BUILD)/rbee $(BUILD)/librbee.a

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(ISA_DEFS) $(ISA_FLAGS_$(basename $(notdir $<))) $(FILE_FLAGS_$(basename $(notdir $<))) -c $< -o $@

# Rewritten only when the version changes; only main.o (rbee, not the
# tests) includes it, so a new commit relinks one binary.
$(BUILD)/version.h: FORCE
	@mkdir -p $(dir $@)
	@printf '#define RB_VERSION "%s"\n' '$(VERSION_STRING)' >$@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi
$(BUILD)/obj/runtime/main.o: $(BUILD)/version.h

$(BUILD)/librbee.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/cli.a: $(CLI_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/rbee: $(BUILD)/obj/runtime/main.o $(BUILD)/cli.a $(BUILD)/librbee.a
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(TEST_SUPPORT_OBJ) $(BUILD)/cli.a $(BUILD)/librbee.a
	@mkdir -p $(dir $@)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(TEST_FLAGS) $(ISA_DEFS) -o $@ $< $(TEST_SUPPORT_OBJ) $(BUILD)/cli.a $(BUILD)/librbee.a $(LDFLAGS) $(LDLIBS)

tests: all $(TEST_BIN)

# The quick loop: plain suites only, every ISA this CPU has.
check: tests
	SHARED=$(SHARED) BUILD=$(BUILD) SUITES=plain sh tests/run_tests.sh

# The whole suite: plain build, sanitizer build, fuzz smoke, ARM (if the
# cross tools are installed; .ci/run installs them). One closing line. A
# fuzz target that does not build is counted as a failure by run_tests.sh.
test:
	$(MAKE) tests
	$(MAKE) asan-build
	-$(MAKE) fuzz-build
	@if [ "$$(uname -m)" = aarch64 ]; then echo "test: native ARM build, no cross build"; \
	elif command -v aarch64-linux-gnu-gcc >/dev/null; then $(MAKE) cross-arm; \
	else echo "test: aarch64-linux-gnu-gcc not found, ARM run skipped (.ci/run installs it)"; fi
	SHARED=$(SHARED) BUILD=$(BUILD) ASAN_BUILD=$(ASAN_BUILD) FUZZ_BUILD=$(FUZZ_BUILD) ARM_BUILD=$(ARM_BUILD) \
	    sh tests/run_tests.sh

asan-build:
	$(MAKE) BUILD=$(ASAN_BUILD) CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" LDFLAGS="-fsanitize=address,undefined" tests

asan: asan-build
	SHARED=$(SHARED) ASAN_BUILD=$(ASAN_BUILD) SUITES=asan sh tests/run_tests.sh

# libFuzzer targets (clang): the library and cli.a built once with the
# sanitizers, each tests/fuzz_NAME.c linked against them into
# $(FUZZ_BUILD)/fuzz_NAME. A target that fails to build leaves no binary
# (nothing stale is run).
fuzz-build:
	@if command -v clang >/dev/null; then \
	    $(MAKE) -k BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" \
	        LDFLAGS="$(FUZZ_FLAGS) -fsanitize=fuzzer" fuzz-bins; \
	else echo "fuzz: clang not found: $(words $(FUZZ_SRC)) fuzz targets NOT built (install clang)"; fi

fuzz-bins: $(FUZZ_BIN)

$(BUILD)/fuzz_%: tests/fuzz_%.c $(BUILD)/cli.a $(BUILD)/librbee.a
	@rm -f $@
	$(CC) $(BASEFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/cli.a $(BUILD)/librbee.a $(LDFLAGS) $(LDLIBS)

# Every target, FUZZ_SECONDS in all (shared out evenly); corpora grow in
# $(FUZZ_BUILD)/corpus/NAME.
FUZZ_SECONDS ?= 600
fuzz: fuzz-build
	SHARED=$(SHARED) FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz.sh all $(FUZZ_SECONDS)

# ARM: cross build and qemu runs (gcc-aarch64-linux-gnu, qemu-user).
cross-arm:
	@command -v aarch64-linux-gnu-gcc >/dev/null || { echo "cross-arm: aarch64-linux-gnu-gcc not found"; exit 1; }
	$(MAKE) CC=aarch64-linux-gnu-gcc BUILD=$(ARM_BUILD) tests

test-arm: cross-arm
	@command -v qemu-aarch64 >/dev/null || { echo "test-arm: qemu-aarch64 not found (Debian package qemu-user)"; exit 1; }
	SHARED=$(SHARED) ARM_BUILD=$(ARM_BUILD) SUITES=arm sh tests/run_tests.sh

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(ARM_BUILD)

FORCE:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
