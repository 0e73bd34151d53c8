#!/usr/bin/env python3
"""Regenerate tests/data/tok_llamacpp.txt: the token ids llama.cpp b4748
(commit c392e50, the build that made ../shared/reference) gives for tricky
inputs, over every shared vocabulary and over copies of some with
tokenizer.ggml.pre rewritten to other pre-tokenizer families.

    # build llama.cpp's library at c392e50 (cmake -DLLAMA_BUILD_COMMON=OFF ...,
    # target `llama`), then the driver beside this script:
    g++ -std=c++17 -I LLAMA/include -I LLAMA/ggml/include tests/data/reftok.cpp \\
        LLAMA/build/src/libllama.a LLAMA/build/ggml/src/libggml.a LLAMA/build/ggml/src/libggml-cpu.a \\
        LLAMA/build/ggml/src/libggml-base.a -lpthread -o /tmp/reftok
    python3 tests/data/make_tok_llamacpp.py /tmp/reftok ../shared > tests/data/tok_llamacpp.txt
"""
import os
import random
import struct
import subprocess
import sys
import tempfile

fixed = [
 "Hello world", " Hello", "  Hello", "\tHello", "\nHello\n", "a\r\nb", "a\n\n\nb", "a \n b", "a  \n\n  b", " \n", "\n ", "   ",
 "x\u3000y", "x\u00a0y", "x\u2009\u2009y", "x\x0b\x0cy", "x\x85y", "x\u2028y", "x\u1680\u1680", "\u3000\u3000a",
 "I'm", "I'M", "'Sam", "I'MOK", "'LLama", "'dude", "'tHe", "HE'SAID", "'VEry", "it'sgood", "'REally", "'Dog", "x'Ss", "'ll'LL'Ll", "YOU'RE", "we'Ve", "THEY'LL", "he'D", "it'S", "'s", "''s", "'", "a'", "'x", "don't'", "Ｉ'ｍ",
 "1", "12", "123", "1234", "12345", "1234567890", "a1b22c333d4444", " 1", "  12", "1.5", "3,000,000", "٣٤٥٦", "١٢3", "²³", "Ⅷ", "½¾", "𝟙𝟚𝟛𝟜",
 "café", "naïve", "ÀÉÎÕÜ", "Ελληνικά", "Русский текст", "עברית", "العربية", "हिन्दी", "ภาษาไทย", "日本語のテキスト", "中文字符", "한국어", "𠀀𠀁", "\U00031350\U00031351",
 "🦙", "🦙🦙", "👨‍👩‍👧‍👦", "🇺🇸", "a🦙b", " 🦙", "❤️", "☺", "✓✔", "©®™",
 "e\u0301", "a\u0300\u0301b", " \u0301", "\u0378", " \u0378", "\u0378\u0378", "x\u0378!", "\ue000", "\U000F0000",
 "$100 + 5 = <105> ^ ~ | `code`", "a,b.c;d:e!f?g", "(...)", "--->", "[[{{}}]]", "@#%&*", "«quote»", "“smart”", "—–-", "…", "、。，", "\\path\\to", "a_b_c", "__init__",
 "<|eot_id|>", "<|begin_of_text|>hi", "hi<|end_of_text|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", " <|eot_id|> ", "<|eot_id|><|eot_id|>", "<|eot_id",
 "<|im_start|>system\nYou are<|im_end|>\n<|im_start|>user\nHi<|im_end|>", "<|im_start|> x", "<think>\nhmm\n</think>\n\nok", "<tool_call>{}</tool_call>", "<|endoftext|>", " <|endoftext|>\n", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
 "<s>", "<s>Hi", "<s> Hi", "</s>", "a</s>\nb", "<unk>", " <unk> x", "<s>\n\nHi", "[PAD32011]x", "<|user|>\nHello<|end|>\n<|assistant|>", "<|system|>  \n\t Hi", "<|user|>", "<|end|>\n\n\n", "<|endoftext|>\nHi", "<|placeholder1|> x",
 "\x00", "a\x00b", "\x01\x02\x1f", "\x7f",
 "tab\tsep\tvalues", "line1\nline2\r\nline3\rline4", "    indented code\n        more", "def f(x):\n    return x**2\n", "if (a<b && c>d) { return; }", "<div class=\"x\">Hi</div>", "http://example.com/a?b=c&d=e",
 "Ünïcödé ÇÀPS AND 'S", "HELLO'S", "x'LL'VE'RE", "   'm", "\n's", "ABC123def456", "a1", "1a", "a 1", "1 a", " .", ". ", "  .", "\n.", ".\n\n", "!\r\n", " !\n\n", "a.\n", "\n\n.",
]
# extra random strings from pieces
raw = [b"\xff\xfe", b"abc\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80abc", b"a\xf8b", b"\xf0\x9f\xa6", b"<|eot_id|>\xff", b"\xc3<s>"]
pieces = ["a","Z","é","ß","λ","Ж","中","🦙"," ","  ","\t","\n","\r\n","\u3000","\u00a0","'s","'LL","'t","1","22","333","4444","٣","½","!","?",".","...","$","+","<",">","|","`","~","^","_","-","(",")","\u0301","\u0378","<|eot_id|>","<|im_end|>","<|im_start|>","<s>","</s>","<|end|>","<|user|>","<think>","<|endoftext|>","[PAD32011]","<unk>", "<mask>", " <mask> ", "<user>", "<unkn>", "xyzzy", "<PRE>", "<|fim_pad|>", "<|reserved_special_token_3|>", "\x00", b"\xff", b"\xc3", b"\xe2\x96"]


def inputs():
    rng = random.Random(7)
    out = [x.encode() for x in fixed] + raw
    for _ in range(150):
        k = rng.randint(1, 14)
        ps = [rng.choice(pieces) for _ in range(k)]
        out.append(b"".join(p if isinstance(p, bytes) else p.encode() for p in ps))
    return out


# ---- a tensor-less GGUF with one string key rewritten ----

SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def rewrite_key(src, dst, key, value):
    f = open(src, "rb")
    def rd(fmt):
        return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))
    def rstr():
        n, = rd("Q")
        return f.read(n)
    def rval(t):
        if t == 8:
            return rstr()
        if t == 9:
            et, = rd("I")
            n, = rd("Q")
            return (et, [rval(et) for _ in range(n)])
        return rd(SCALAR[t])[0]
    magic = f.read(4)
    ver, = rd("I")
    n_tensors, = rd("Q")
    n_kv, = rd("Q")
    assert n_tensors == 0, "vocabulary-only files only"
    kvs = []
    for _ in range(n_kv):
        k = rstr().decode()
        t, = rd("I")
        kvs.append((k, t, rval(t)))
    kvs = [kv for kv in kvs if kv[0] != key] + [(key, 8, value.encode())]
    o = open(dst, "wb")
    def wval(t, v):
        if t == 8:
            o.write(struct.pack("<Q", len(v)) + v)
        elif t == 9:
            et, arr = v
            o.write(struct.pack("<IQ", et, len(arr)))
            for x in arr:
                wval(et, x)
        else:
            o.write(struct.pack("<" + SCALAR[t], v))
    o.write(magic + struct.pack("<IQQ", ver, 0, len(kvs)))
    for k, t, v in kvs:
        kb = k.encode()
        o.write(struct.pack("<Q", len(kb)) + kb + struct.pack("<I", t))
        wval(t, v)
    o.close()


VOCABS = [
    ("reference/tokenizer/ggml-vocab-llama-bpe.gguf", None),
    ("reference/tokenizer/ggml-vocab-qwen2.gguf", None),
    ("reference/tokenizer/ggml-vocab-gpt-2.gguf", None),
    ("reference/tokenizer/ggml-vocab-llama-spm.gguf", None),
    ("models/phi3-mini-q8_0.gguf", None),
    ("models/stories260K.gguf", None),
    ("reference/tokenizer/ggml-vocab-gpt-2.gguf", "default"),
    ("reference/tokenizer/ggml-vocab-gpt-2.gguf", "starcoder"),
    ("reference/tokenizer/ggml-vocab-gpt-2.gguf", "falcon"),
    ("reference/tokenizer/ggml-vocab-qwen2.gguf", "default"),
    ("reference/tokenizer/ggml-vocab-llama-bpe.gguf", "qwen2"),
    ("reference/tokenizer/ggml-vocab-llama-bpe.gguf", "dbrx"),
    ("reference/tokenizer/ggml-vocab-gpt-2.gguf", "llama-bpe"),
]


def esc(b):
    out = []
    i = 0
    while i < len(b):
        c = b[i]
        if c == 0x5c: out.append('\\\\'); i += 1; continue
        if c == 0x0a: out.append('\\n'); i += 1; continue
        if c == 0x09: out.append('\\t'); i += 1; continue
        if c == 0x0d: out.append('\\r'); i += 1; continue
        if c < 0x20 or c == 0x7f: out.append('\\x%02x' % c); i += 1; continue
        if c < 0x80: out.append(chr(c)); i += 1; continue
        # a valid UTF-8 character stays as it is (unless a line/format separator), else \xNN
        n = 2 if c >> 5 == 6 else 3 if c >> 4 == 14 else 4 if c >> 3 == 30 else 0
        try:
            ch = b[i:i+n].decode('utf-8') if n else None
        except UnicodeDecodeError:
            ch = None
        if ch and len(ch) == 1 and ord(ch) not in (0x85, 0x2028, 0x2029) and not 0xd800 <= ord(ch) < 0xe000:
            out.append(ch); i += n
        else:
            out.append('\\x%02x' % c); i += 1
    s = ''.join(out)
    n = len(s) - len(s.rstrip(' '))  # trailing spaces escaped: editors strip them
    return s[:len(s) - n] + '\\x20' * n

def main():
    reftok, shared = sys.argv[1], sys.argv[2]
    ins = inputs()
    sep = b"\n__ggml_vocab_test__\n"
    assert not any(sep in x for x in ins)
    blob = sep.join(ins)
    lines = ["# llama.cpp b4748 (commit c392e50) token ids for tricky inputs: every",
             "# shared vocabulary, and copies with tokenizer.ggml.pre rewritten to other",
             "# pre-tokenizer families. Made by tests/data/make_tok_llamacpp.py with",
             "# llama_tokenize() of that build (tests/data/reftok.cpp, vocab_only load).",
             "# input: text with \\\\ \\n \\t \\r \\xNN escapes (any other byte as it is)",
             "# vocab: path under ../shared [pre=NAME: tokenizer.ggml.pre rewritten]",
             "# then per input, in order: 'plain:' ids without BOS/EOS or special-token",
             "# parsing, 'prompt:' ids with both (llama.cpp's add_special, parse_special)"]
    lines += ["input: " + esc(x) for x in ins]
    with tempfile.TemporaryDirectory() as tmp:
        for rel, pre in VOCABS:
            path = os.path.join(shared, rel)
            if pre:
                path = os.path.join(tmp, "vocab.gguf")
                rewrite_key(os.path.join(shared, rel), path, "tokenizer.ggml.pre", pre)
            ids = {}
            for mode, args in (("plain", ["0", "0"]), ("prompt", ["1", "1"])):
                r = subprocess.run([reftok, path] + args, input=blob, capture_output=True, check=True)
                ids[mode] = r.stdout.decode().split("\n")[:len(ins)]
            lines.append("vocab: " + rel + (" pre=" + pre if pre else ""))
            for i in range(len(ins)):
                lines.append("plain: " + ids["plain"][i])
                lines.append("prompt: " + ids["prompt"][i])
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
