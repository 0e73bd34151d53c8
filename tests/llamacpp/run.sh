#!/bin/sh
# rbee against the reference runtime, on random inputs: what the golden
# files check on a few fixed inputs, checked here on thousands.
#
#   sh tests/llamacpp/run.sh LLAMA_CPP [BUILD_DIR]     (from the repository root)
#
# LLAMA_CPP: a llama.cpp checkout (b4748) built with its shared libraries in
# BUILD_DIR/bin (default build-native: what ../shared/tools/anchor-llamacpp.sh
# leaves). Needs python3 and rbee built (make). Not part of `make test`: CI
# has no llama.cpp. Compares
#   - tokenization: 4 kinds of random text x the four reference vocabularies
#     and the models' own, BOS/special-token parsing on and off, and every
#     pre-tokenizer name rbee accepts applied to the three BPE vocabularies;
#   - streaming detokenization of random id sequences (special = false);
#   - chat formatting of random conversations, built-in names and marker texts;
#   - logits of random prompts and their greedy continuations, every model in
#     ../shared/models, TOL as ../shared/reference/README.md sets it;
#   - `rbee quantize` against llama-quantize: the same bytes, every type.
# Ends with "N passed, N failed".
LLAMA=${1:?usage: sh tests/llamacpp/run.sh LLAMA_CPP [BUILD_DIR]}
LIB=$LLAMA/${2:-build-native}/bin
SHARED=${SHARED:-../shared}
HERE=tests/llamacpp
[ -f "$LIB/libllama.so" ] || { echo "$LIB/libllama.so not found"; echo "0 passed, 1 failed"; exit 1; }
[ -x build/rbee ] || { echo "build/rbee not built (make)"; echo "0 passed, 1 failed"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0; failed=0
result() { # result OK LINE
    if [ "$1" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    echo "$2"
}
cc -std=c11 -D_POSIX_C_SOURCE=200809L -O1 -I"$LLAMA/include" -I"$LLAMA/ggml/include" "$HERE/llama_side.c" \
    -L"$LIB" -lllama -Wl,-rpath,"$LIB" -o "$work/llama_side" &&
cc -std=c11 -D_POSIX_C_SOURCE=200809L -O1 "$HERE/rbee_side.c" build/librbee.a -lm -lpthread -o "$work/rbee_side" ||
    { echo "cannot build the two sides"; echo "0 passed, 1 failed"; exit 1; }
L=$work/llama_side; R=$work/rbee_side; PY="python3 $HERE/vs.py"

same() { # same LABEL CMD_ARGS... : both sides' output equal
    label=$1; shift
    "$L" "$@" >"$work/l.out" 2>"$work/l.err"; lrc=$?
    "$R" "$@" >"$work/r.out" 2>"$work/r.err"; rrc=$?
    if [ $lrc -ne 0 ]; then result 1 "FAIL $label: llama.cpp side failed: $(head -c 200 "$work/l.err")"; return; fi
    if [ $rrc -ne 0 ]; then result 1 "FAIL $label: rbee side failed: $(head -c 200 "$work/r.err")"; return; fi
    n=$(wc -l <"$work/l.out"); d=$(diff "$work/l.out" "$work/r.out" | grep -c '^<')
    if [ "$n" -gt 0 ] && [ "$d" -eq 0 ]; then result 0 "ok   $label: $n cases"
    else result 1 "FAIL $label: $d of $n cases differ"; diff "$work/l.out" "$work/r.out" | head -4 | cut -c1-300; fi
}

# ---- tokenizer ----
i=1
for kind in mixed special codepoints long; do
    n=3000; [ $kind = long ] && n=200
    $PY strings $i $n $kind "$work/$kind.bin"; i=$((i + 1))
done
V=$SHARED/reference/tokenizer
for v in "$V"/ggml-vocab-*.gguf "$SHARED"/models/stories260K.gguf "$SHARED"/models/phi3-mini-q8_0.gguf \
         "$SHARED"/models/llama3-mini-q8_0.gguf "$SHARED"/models/qwen2-mini-q8_0.gguf "$SHARED"/models/gpt2-mini-q8_0.gguf; do
    for kind in mixed codepoints long; do same "tokenize $(basename "$v") $kind" tokenize "$v" "$work/$kind.bin" 1 0; done
    same "tokenize $(basename "$v") special, parsed" tokenize "$v" "$work/special.bin" 1 1
    same "tokenize $(basename "$v") special, as text" tokenize "$v" "$work/special.bin" 0 0
done
cat "$work/mixed.bin" "$work/codepoints.bin" >"$work/both.bin"
# (not jina-v2-es/-de/-code: llama.cpp will not load them without a <mask> token)
pres="default llama3 llama-v3 llama-bpe falcon3 dbrx smaug-bpe chatglm-bpe qwen2 deepseek-r1-qwen stablelm2 megrez
      gpt-2 phi-2 jina-es jina-de gigachat jina-v1-en roberta-bpe mpt olmo jais
      starcoder refact command-r smollm codeshell exaone minerva-7b falcon"
for base in gpt-2 llama-bpe qwen2; do
    for p in $pres; do
        $PY setpre "$V/ggml-vocab-$base.gguf" "$work/pre.gguf" "$p"
        same "tokenize $base vocab with pre '$p'" tokenize "$work/pre.gguf" "$work/both.bin" 0 0
    done
done

# ---- detokenizer, chat ----
for v in "$V"/ggml-vocab-*.gguf "$SHARED"/models/stories260K.gguf "$SHARED"/models/phi3-mini-q8_0.gguf; do
    "$L" detok "$v" 7 3000 >"$work/l.out" && "$R" detok "$v" 7 3000 >"$work/r.out"
    line=$($PY detok "$work/l.out" "$work/r.out"); result $? "$(echo "$line" | sed "s|$work/l.out|$(basename "$v")|")"
done
same "names of the built-in chat templates" names
same "chat formatting" chat 5 5000

# ---- logits ----
for m in "$SHARED"/models/*.gguf; do
    case $m in *gguf-v1*) continue ;; esac
    tol=0.3; case $(basename "$m") in stories260K.gguf|*-f16.gguf) tol=0.05 ;; esac
    # gpt2: learned positions, 256. llama3-mini: its sharp attention (q/k std
    # 0.2) makes long random prompts so sensitive that the reference itself
    # moves by 0.3-0.7 there with an F32 KV cache or flash attention.
    len=300; case $m in *gpt2*) len=200 ;; *llama3*) len=128 ;; esac
    if ! "$L" logits "$m" 4 $len 40 7 "$work/ref.bin" 2>"$work/l.err"; then result 1 "FAIL logits $(basename "$m"): llama.cpp side failed"; continue; fi
    for chunk in 0 13; do
        how="one batch"; [ $chunk = 0 ] || how="batches of $chunk"
        "$R" logits "$m" "$work/ref.bin" $tol $chunk >"$work/r.out" 2>&1; rc=$?
        result $rc "$( [ $rc = 0 ] && echo "ok  " || echo FAIL) logits $(basename "$m"), prompt in $how: $(tail -1 "$work/r.out")"
        [ $rc = 0 ] || grep -v '^ok' "$work/r.out" | head -3
    done
done

# ---- quantize ----
# llama_ftype numbers: F16 1, Q4_0 2, Q4_1 3, Q8_0 7, Q5_0 8, Q5_1 9, Q4_K_M 15, Q5_K_M 17, Q6_K 18, BF16 32
for src in llama-mini-f16 gpt2-mini-f16; do
    for pair in f16:1 bf16:32 q4_0:2 q4_1:3 q5_0:8 q5_1:9 q8_0:7 q4_k_m:15 q5_k_m:17 q6_k:18; do
        t=${pair%%:*}; ft=${pair#*:}
        if "$L" quantize "$SHARED/models/$src.gguf" "$work/l.gguf" "$ft" >/dev/null 2>&1 &&
           build/rbee quantize "$SHARED/models/$src.gguf" "$work/r.gguf" "$t" >/dev/null 2>&1; then
            line=$($PY tensors "$work/r.gguf" "$work/l.gguf"); rc=$?
            result $rc "$(echo "$line" | sed "s|$work/r.gguf = $work/l.gguf|$src $t|")"
        else result 1 "FAIL quantize $src $t: a side failed"; fi
    done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
