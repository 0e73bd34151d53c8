#!/bin/sh
# make_bench.sh RBEE - the standard table (`make bench`): synthetic
# TinyLlama-1.1B in Q4_0, Q8_0 and Q4_K_M, pp128 and tg64, 2 threads, into
# bench/results/<date>-<cpu>.md so results accumulate and can be compared.
# Also runs bench/plain/membw_plain.c, the plain C read loop that rbee's
# bandwidth figure is checked against (they should agree within 15%).
#   THREADS=2 REPS=3 CC=cc sh bench/make_bench.sh build/rbee
set -e
RBEE=${1:-build/rbee}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
CC=${CC:-cc}
[ -x "$RBEE" ] || { echo "make_bench.sh: $RBEE not built" >&2; exit 1; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
[ -n "$cpu" ] || cpu=$(uname -m)
slug=$(echo "$cpu" | tr 'A-Z' 'a-z' | sed 's/([^)]*)//g; s/[^a-z0-9][^a-z0-9]*/-/g; s/^-//; s/-$//')
mkdir -p bench/results
out=bench/results/$(date -u +%Y-%m-%d)-$slug.md
[ -e "$out" ] && out=bench/results/$(date -u +%Y-%m-%d-%H%M)-$slug.md

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

"$CC" -std=c11 -O3 -pthread bench/plain/membw_plain.c -o "$work/membw_plain"
# before and after the bench, best of both, as rbee measures its own figure:
# on a shared machine one measurement can land on a busy moment
plain_before=$("$work/membw_plain" "$THREADS")

"$RBEE" bench --synthetic tinyllama-1.1b:q4_0 --synthetic tinyllama-1.1b:q8_0 \
    --synthetic tinyllama-1.1b:q4_k_m -p 128 -n 64 -t "$THREADS" -r "$REPS" >"$work/table.md"

plain_after=$("$work/membw_plain" "$THREADS")
gbs() { echo "$1" | sed -n 's/^plain read loop: \([0-9.]*\) GB\/s.*/\1/p'; }
plain_best=$(printf '%s\n%s\n' "$(gbs "$plain_before")" "$(gbs "$plain_after")" | sort -g | tail -n 1)
rbee_gbs=$(sed -n 's/^memory read bandwidth .*: \([0-9.]*\) GB\/s with.*/\1/p' "$work/table.md" | head -n 1)
verdict=$(awk -v r="$rbee_gbs" -v p="$plain_best" 'BEGIN {
    if (p <= 0 || r <= 0) { print "not comparable"; exit }
    d = (r - p) / p; printf "rbee %.1f GB/s is %+.1f%% of it: %s", r, 100 * d, (d <= 0.15 && d >= -0.15) ? "within 15%" : "NOT within 15%" }')

{
    echo "# rbee bench, $(date -u '+%Y-%m-%d %H:%M') UTC"
    echo
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $REPS repetitions after a warm-up"
    echo
    cat "$work/table.md"
    echo
    echo "cross-check, plain read loop (bench/plain/membw_plain.c, $THREADS threads) before: $(gbs "$plain_before") GB/s, after: $(gbs "$plain_after") GB/s; best $plain_best GB/s; $verdict"
} >"$out"
cat "$out"
echo "wrote $out"
