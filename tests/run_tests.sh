#!/bin/sh
# Runs the test suites and adds them up; the last line is "N passed, N failed".
# SUITES picks what runs: "all" (default) = plain build, every ISA, sanitizer
# build, fuzz smoke and ARM under qemu where built; or one of "plain asan arm".
SUITES=${SUITES:-all}
SHARED=${SHARED:-../shared}
export SHARED
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
PER_ISA="test_golden test_forward"

if want plain; then
    for t in build/tests/test_*; do
        [ -x "$t" ] || continue
        name=$(basename "$t")
        case " $PER_ISA " in
        *" $name "*)
            for isa in $(build/rbee isas 2>/dev/null || echo scalar); do
                RBEE_ISA=$isa run "$name isa=$isa" "$t"
            done ;;
        *) run "$name" "$t" ;;
        esac
    done
fi

if want asan; then
    for t in build-asan/tests/test_*; do
        [ -x "$t" ] || continue
        ASAN_OPTIONS=detect_leaks=1 run "asan $(basename "$t")" "$t"
    done
fi

if want fuzz && [ -x build-fuzz/fuzz_gguf ]; then
    mkdir -p build-fuzz/corpus
    fuzz_suite() {
        if build-fuzz/fuzz_gguf -max_total_time=${FUZZ_SECONDS:-60} -max_len=65536 \
             build-fuzz/corpus "$SHARED/models" >build-fuzz/last.log 2>&1; then
            echo "1 passed, 0 failed"
        else
            tail -n 40 build-fuzz/last.log; echo "0 passed, 1 failed"
        fi
    }
    run "fuzz gguf ${FUZZ_SECONDS:-60}s" fuzz_suite
fi

if want arm && [ -d build-arm/tests ] && command -v qemu-aarch64 >/dev/null; then
    for cpu in max cortex-a72; do
        for t in build-arm/tests/test_*; do
            [ -x "$t" ] || continue
            run "arm $cpu $(basename "$t")" qemu-aarch64 -cpu $cpu -L /usr/aarch64-linux-gnu "$t"
        done
    done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
