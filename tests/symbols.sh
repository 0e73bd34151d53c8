#!/bin/sh
# The library's exported names all start with rb_ or rbee_, so a program
# can link librbee.a next to another runtime (ggml's own gguf_* API, say)
# without one library's function silently standing in for the other's.
lib=${1:-build/librbee.a}
if ! command -v nm >/dev/null 2>&1; then echo "nm not found (binutils)"; echo "0 passed, 1 failed"; exit 1; fi
if [ ! -f "$lib" ]; then echo "$lib: not built"; echo "0 passed, 1 failed"; exit 1; fi
all=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u)
n=$(echo "$all" | grep -c .)
bad=$(echo "$all" | grep -v -E '^(rb_|rbee_)')
if [ "$n" -lt 50 ]; then
    echo "only $n exported names read from $lib: nm could not read it"
    echo "0 passed, 1 failed"; exit 1
fi
if [ -n "$bad" ]; then
    echo "exported without the rb_/rbee_ prefix:"; echo "$bad" | sed 's/^/  /'
    echo "0 passed, 1 failed"; exit 1
fi
echo "ok   $n exported names, all prefixed"
echo "1 passed, 0 failed"
