#!/bin/sh
# Runs the test suites and adds them up; the last line is "N passed, N failed".
# SUITES picks what runs: "all" (default) = plain build, every ISA, sanitizer
# build, fuzz smoke and ARM under qemu where built; or one of "plain asan
# fuzz arm". Build directories as the Makefile names them: BUILD (build),
# ASAN_BUILD, FUZZ_BUILD, ARM_BUILD ($BUILD-asan, -fuzz, -arm).
SUITES=${SUITES:-all}
SHARED=${SHARED:-../shared}
BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-$BUILD-asan}
FUZZ_BUILD=${FUZZ_BUILD:-$BUILD-fuzz}
ARM_BUILD=${ARM_BUILD:-$BUILD-arm}
export SHARED FUZZ_BUILD
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# run LABEL CMD... : a suite prints "N passed, N failed" last; a crash or a
# missing summary counts as one failure.
run() {
    label=$1; shift
    "$@" >"$log" 2>&1
    rc=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    else
        p=0; f=0
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        echo "---- $label: FAILED (exit $rc)"
        grep -v '^ok ' "$log" | tail -n 60
    fi
    echo "  [$label] $p passed, $f failed"
}

want() { [ "$SUITES" = all ] || [ "$SUITES" = "$1" ]; }

# Suites that run once per ISA the CPU has (RBEE_ISA forces the kernel table).
PER_ISA="test_golden test_forward test_arch"

if want plain; then
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        case " $PER_ISA " in
        *" $name "*)
            for isa in $("$BUILD"/rbee isas 2>/dev/null || echo scalar); do
                RBEE_ISA=$isa run "$name isa=$isa" "$t"
            done ;;
        *) run "$name" "$t" ;;
        esac
    done
fi

if want plain; then
    run "library symbols" sh tests/symbols.sh "$BUILD"/librbee.a
fi

# rbee serve through the official OpenAI client for Node (npm installs it
# into build/node once; without node/npm it says so, and fails under CI).
if want plain && [ -x "$BUILD"/rbee ]; then
    run "serve openai-node" sh tests/serve_node.sh "$BUILD"/rbee
fi

if want asan; then
    for t in "$ASAN_BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        ASAN_OPTIONS=detect_leaks=1 run "asan $(basename "$t")" "$t"
    done
fi

# Fuzz smoke: every tests/fuzz_*.c, FUZZ_SMOKE_SECONDS in all (tests/fuzz.sh
# shares them out). Without clang they are skipped, loudly; with clang a
# target whose binary is missing did not build, and fails.
if want fuzz; then
    targets=$(ls tests/fuzz_*.c 2>/dev/null | sed 's|tests/fuzz_\(.*\)\.c|\1|')
    n=$(echo $targets | wc -w)
    if [ "$n" -eq 0 ]; then
        :
    elif ! command -v clang >/dev/null; then
        echo "  [fuzz] SKIPPED: clang not found, $n fuzz targets not run ($(echo $targets))"
    else
        for name in $targets; do
            run "fuzz $name" sh tests/fuzz.sh "$name" "$(sh tests/fuzz.sh share "${FUZZ_SMOKE_SECONDS:-100}")"
        done
    fi
fi

# ARM (make cross-arm builds build-arm/): the test binaries under qemu-user.
# -cpu max has dotprod (the sdot table, like a Pi 5), -cpu cortex-a72 has not
# (the plain ARMv8.0 table, a Pi 4). Suites whose results go through the
# kernel table run under both; the rest, plain C either way, run once (under
# cortex-a72) to keep emulation time down. The runs go ARM_JOBS (2) at a time,
# then are counted in order (a run over 15 minutes is killed and fails);
# test_neon prints which table ran. Under emulation the golden tests check
# only stories260K and phi3-mini (NEOX rope, fused tensors; ~15 s more).
ARM_PER_CPU="test_kernels test_neon test_golden test_forward test_arch test_model test_cli test_attention"
ARM_SLOW="test_quantize test_attention" # slowest first
if want arm && [ -d "$ARM_BUILD"/tests ]; then
    if command -v qemu-aarch64 >/dev/null; then
        arm_start=$(date +%s)
        arm_dir=$(mktemp -d)
        for cpu in max cortex-a72; do
            for t in "$ARM_BUILD"/tests/test_*; do
                [ -x "$t" ] || continue
                case " $ARM_PER_CPU " in
                *" $(basename "$t") "*) ;;
                *) [ $cpu = cortex-a72 ] || continue ;;
                esac
                echo "$cpu $t $arm_dir/$cpu-$(basename "$t")"
            done
        done >"$arm_dir/jobs"
        # each job: CPU BINARY LOGPREFIX -> LOGPREFIX.log and LOGPREFIX.rc
        # RBEE_GOLDEN_QUICK=0 make test-arm: every golden model (~2.5 min more per CPU);
        # RBEE_EMULATED=1 tells timing tests they time qemu, not the machine
        # The slowest runs start first so the short ones fill the other slot
        # (test_quantize alone is most of the emulated time: K-quant searches).
        {
            for s in $ARM_SLOW; do grep " $ARM_BUILD/tests/$s " "$arm_dir/jobs"; done
            grep -vE " $ARM_BUILD/tests/($(echo $ARM_SLOW | tr ' ' '|')) " "$arm_dir/jobs"
        } |
            RBEE_GOLDEN_QUICK=${RBEE_GOLDEN_QUICK:-1} RBEE_EMULATED=1 xargs -P "${ARM_JOBS:-2}" -L 1 sh -c \
                'timeout 900 qemu-aarch64 -cpu "$0" -L /usr/aarch64-linux-gnu "$1" >"$2.log" 2>&1; echo $? >"$2.rc"'
        replay() { cat "$1.log"; return "$(cat "$1.rc" 2>/dev/null || echo 1)"; }
        while read -r cpu t prefix; do
            run "arm $cpu $(basename "$t")" replay "$prefix"
            case "$t" in
            */test_neon) echo "  [arm $cpu] $(grep '^kernel table' "$prefix.log" || echo 'kernel table: ?')" ;;
            esac
        done <"$arm_dir/jobs"
        rm -rf "$arm_dir"
        echo "  [arm] qemu runs took $(($(date +%s) - arm_start))s"
    else
        echo "  [arm] qemu-aarch64 not found, ARM tests not run (.ci/run installs qemu-user)"
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
