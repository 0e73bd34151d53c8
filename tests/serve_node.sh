#!/bin/sh
# The official `openai` client for Node against `rbee serve`: installs the
# package (pinned) from the npm registry into build/node/ once, starts the
# server on a free loopback port, runs tests/serve_openai.cjs, stops the
# server with SIGTERM (it must exit 0). Last line: "N passed, N failed".
#
#   sh tests/serve_node.sh [build/rbee]
# Without node or npm it says so loudly; under CI (CI set) that is a failure.
RBEE=${1:-build/rbee}
SHARED=${SHARED:-../shared}
MODEL=$SHARED/models/stories260K.gguf
OPENAI_VERSION=5.23.2
DIR=build/node

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "########################################################################"
    echo "## node or npm NOT FOUND: the OpenAI client test of rbee serve DID NOT RUN"
    echo "## (Debian: apt-get install nodejs npm; .ci/run installs them)"
    echo "########################################################################"
    if [ -n "$CI" ]; then echo "0 passed, 1 failed"; exit 1; fi
    echo "0 passed, 0 failed"
    exit 0
fi

mkdir -p "$DIR"
have=$(node -p "require('./$DIR/node_modules/openai/package.json').version" 2>/dev/null)
if [ "$have" != "$OPENAI_VERSION" ]; then
    echo "installing openai@$OPENAI_VERSION into $DIR"
    [ -f "$DIR/package.json" ] || echo '{"private":true}' >"$DIR/package.json"
    if ! npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "openai@$OPENAI_VERSION" >"$DIR/npm.log" 2>&1; then
        tail -n 20 "$DIR/npm.log"
        echo "npm install openai@$OPENAI_VERSION failed"
        echo "0 passed, 1 failed"
        exit 1
    fi
fi

log=$DIR/serve.log
"$RBEE" serve -m "$MODEL" --host 127.0.0.1 --port 0 --parallel 2 -t 1 --api-key test-key 2>"$log" &
pid=$!
port=""
i=0
while [ $i -lt 300 ] && kill -0 $pid 2>/dev/null; do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    [ -n "$port" ] && break
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$port" ]; then
    cat "$log"
    kill $pid 2>/dev/null
    echo "the server did not start"
    echo "0 passed, 1 failed"
    exit 1
fi

out=$(timeout 300 node tests/serve_openai.cjs "$port" "$RBEE" "$MODEL" "$DIR/node_modules/openai" 2>&1)
rc=$?
kill -TERM $pid
i=0
while [ $i -lt 100 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
if kill -0 $pid 2>/dev/null; then
    kill -KILL $pid
    stop="the server was still running 10 s after SIGTERM"
fi
wait $pid
src=$?
[ -z "$stop" ] && [ $src -ne 0 ] && stop="the server exited $src after SIGTERM"

echo "$out" | grep -v '^[0-9]* passed, [0-9]* failed$'
p=$(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
[ -z "$p" ] && p=0 && f=1
[ $rc -ne 0 ] && [ "$f" -eq 0 ] && f=1
if [ -n "$stop" ]; then
    echo "FAIL $stop"
    f=$((f + 1))
else
    p=$((p + 1))
    echo "ok   sigterm_exits_0"
fi
[ "$f" -ne 0 ] && tail -n 20 "$log"
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
