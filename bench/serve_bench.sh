#!/bin/sh
# Load on `rbee serve`: C concurrent clients (curl), each sending R
# /v1/completions requests one after another; prints requests/s, generated
# tokens/s and the mean latency per client count. Loopback only; the server
# is started here and stopped with SIGTERM.
#
#   sh bench/serve_bench.sh MODEL [CLIENTS (default "1 2 8")] [server options...]
#   env: RBEE (build/rbee), R requests per client (4), N max_tokens (32),
#        PROMPT ("Once upon a time")
# e.g. sh bench/serve_bench.sh tl.gguf "1 2 8" --parallel 2 -t 1
set -e
MODEL=${1:?usage: serve_bench.sh MODEL [CLIENTS] [server options...]}
CLIENTS=${2:-1 2 8}
[ $# -ge 2 ] && shift 2 || shift $#
RBEE=${RBEE:-build/rbee}
R=${R:-4}
N=${N:-32}
PROMPT=${PROMPT:-Once upon a time}
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM

"$RBEE" serve -m "$MODEL" --host 127.0.0.1 --port 0 "$@" 2>"$tmp/log" &
pid=$!
port=""
while [ -z "$port" ] && kill -0 $pid 2>/dev/null; do
    sleep 0.1
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/log")
done
[ -n "$port" ] || { cat "$tmp/log"; exit 1; }
head -n 1 "$tmp/log"
body="{\"prompt\":\"$PROMPT\",\"max_tokens\":$N,\"temperature\":0}"
# warm-up: the weights into the page cache, each slot's context touched once
curl -s "http://127.0.0.1:$port/v1/completions" -d "$body" >/dev/null

now() { date +%s.%N; }
echo "clients  requests  seconds  req/s   tokens/s  mean latency (s)"
for c in $CLIENTS; do
    t0=$(now)
    i=0
    pids=""
    while [ $i -lt "$c" ]; do
        (
            j=0
            while [ $j -lt "$R" ]; do
                curl -s -o "$tmp/r.$c.$i.$j" -w '%{time_total}\n' "http://127.0.0.1:$port/v1/completions" \
                     -d "$body" >>"$tmp/lat.$c"
                j=$((j + 1))
            done
        ) &
        pids="$pids $!"
        i=$((i + 1))
    done
    wait $pids
    t1=$(now)
    toks=$(grep -ho '"completion_tokens":[0-9]*' "$tmp"/r.$c.* | cut -d: -f2 | awk '{s += $1} END {print s + 0}')
    ok=$(grep -l '"finish_reason"' "$tmp"/r.$c.* | wc -l)
    awk -v c="$c" -v n="$ok" -v t0="$t0" -v t1="$t1" -v toks="$toks" -v lat="$tmp/lat.$c" 'BEGIN {
        s = t1 - t0; m = 0; k = 0
        while ((getline x < lat) > 0) { m += x; k++ }
        printf "%7d  %8d  %7.2f  %6.2f  %8.1f  %6.2f\n", c, n, s, n / s, toks / s, k ? m / k : 0 }'
done
kill -TERM $pid
wait $pid
