#!/bin/sh
# fuzz.sh - run the libFuzzer targets that `make fuzz-build` made.
#
#   sh tests/fuzz.sh NAME SECONDS   one target (tests/fuzz_NAME.c); the last line
#                                   is "1 passed, 0 failed" or "0 passed, 1 failed"
#   sh tests/fuzz.sh all TOTAL      every target, TOTAL seconds shared out evenly
#   sh tests/fuzz.sh share TOTAL    the seconds each target gets out of TOTAL
#
# A target declares its inputs in its source, one line each, anywhere:
#   fuzz-seeds: DIR...      seed directories or files ($SHARED expands, paths
#                           are relative to the repository root)
#   fuzz-max-len: N         longest input in bytes (default 65536)
# and tests/fuzz_seeds/NAME/, when it exists, is a seed directory too (small
# hand-made inputs committed with the target). New inputs go to
# $FUZZ_BUILD/corpus/NAME; a crash leaves $FUZZ_BUILD/NAME-crash-*.
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
SHARED=${SHARED:-../shared}
MIN_SECONDS=5

targets() { ls tests/fuzz_*.c 2>/dev/null | sed 's|tests/fuzz_\(.*\)\.c|\1|'; }

share() {
    n=$(targets | wc -l)
    [ "$n" -gt 0 ] || n=1
    s=$(($1 / n))
    [ "$s" -ge $MIN_SECONDS ] || s=$MIN_SECONDS
    echo "$s"
}

# The value of "key: ..." in the target's source, or nothing.
declared() { sed -n "s|.*$2: *\([^*]*\).*|\1|p" "tests/fuzz_$1.c" | head -n 1 | sed 's/ *$//'; }

run_one() {
    name=$1 seconds=$2
    bin=$FUZZ_BUILD/fuzz_$name
    log=$FUZZ_BUILD/fuzz_$name.log
    if [ ! -x "$bin" ]; then
        echo "fuzz $name: $bin was not built (see the fuzz-build output above)"
        echo "0 passed, 1 failed"
        return 1
    fi
    corpus=$FUZZ_BUILD/corpus/$name
    mkdir -p "$corpus"
    seeds=""
    [ -d "tests/fuzz_seeds/$name" ] && seeds="tests/fuzz_seeds/$name"
    # libFuzzer reads directories: seed files go into one of their own
    files=$FUZZ_BUILD/seeds/$name
    rm -rf "$files"
    for s in $(declared "$name" fuzz-seeds | sed "s|\$SHARED|$SHARED|g"); do
        if [ -d "$s" ]; then seeds="$seeds $s"
        elif [ -f "$s" ]; then mkdir -p "$files" && cp "$s" "$files/"
        else
            echo "fuzz $name: seed $s not found"
            echo "0 passed, 1 failed"
            return 1
        fi
    done
    [ -d "$files" ] && seeds="$seeds $files"
    max_len=$(declared "$name" fuzz-max-len)
    # shellcheck disable=SC2086 # seeds is a list of paths
    if "$bin" -max_total_time="$seconds" -max_len="${max_len:-65536}" -timeout=20 \
        -artifact_prefix="$FUZZ_BUILD/$name-" "$corpus" $seeds >"$log" 2>&1; then
        echo "fuzz $name: $(grep -E '^#[0-9]+.*(DONE|pulse|NEW)' "$log" | tail -n 1 | cut -c1-60) in ${seconds}s"
        echo "1 passed, 0 failed"
    else
        tail -n 40 "$log"
        echo "0 passed, 1 failed"
        return 1
    fi
}

case "$1" in
share) share "${2:-60}" ;;
all)
    s=$(share "${2:-600}")
    rc=0
    for name in $(targets); do
        echo "fuzz $name: ${s}s"
        run_one "$name" "$s" || rc=1
    done
    exit $rc ;;
"") echo "usage: sh tests/fuzz.sh NAME SECONDS | all TOTAL | share TOTAL" >&2; exit 2 ;;
*) run_one "$1" "${2:-60}" ;;
esac
