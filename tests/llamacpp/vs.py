#!/usr/bin/env python3
"""Helpers for run.sh (standard library only).

  vs.py strings SEED N KIND OUT        random texts as records (u32 length + bytes);
                                       KIND: mixed, special, codepoints, long
  vs.py setpre IN OUT NAME             a tensor-less GGUF (vocab file) with tokenizer.ggml.pre = NAME
  vs.py detok LLAMA_OUT RBEE_OUT       rbee's text must be llama.cpp's, where that is valid
                                       UTF-8, else its decoding with U+FFFD per maximal subpart
  vs.py tensors A.gguf B.gguf          every tensor's type, shape and bytes equal
Each check prints one line and exits 1 when it fails.
"""
import random, struct, sys

# ---- texts ----
WORDS = ["hello", "world", "The", "THE", "don", "can", "I", "you", "it", "a", "Hello", "HELLO", "llama", "cpp",
         "function", "return", "def", "int", "main", "x", "foo_bar", "camelCase", "URL", "http", "ing", "tion", "un"]
CONTRACTIONS = ["'s", "'S", "'t", "'T", "'re", "'RE", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'d", "'D", "'", "''", "\u2019s", "`"]
SPACES = [" ", "  ", "   ", "    ", "\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", "\t\t", "\u00a0", "\u3000", "\u2009",
          "\u200b", "\f", "\v", "\u2028", "\u0085"]
PUNCT = list("!?.,;:-_()[]{}<>/\\|@#$%^&*+=~`\"") + ["...", "--", "->", "=>", "!=", "==", "::", "//", "/*", "*/",
         "<<", ">>", "\u2026", "\u2014", "\u2013", "\u00ab", "\u00bb", "\u201c", "\u201d", "\u00bf", "\u00a1", "\u00b7"]
UNICODE = ["\u00e9", "\u00fc", "\u00f1", "\u00df", "\u00c6", "e\u0301", "a\u0308", "F\u00fchrer", "caf\u00e9",
           "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", "\u041f\u0440\u0438\u0432\u0435\u0442", "\u4f60\u597d",
           "\u65e5\u672c\u8a9e", "\ud55c\uad6d\uc5b4", "\u3072\u3089\u304c\u306a", "\u0645\u0631\u062d\u0628\u0627",
           "\u05e9\u05dc\u05d5\u05dd", "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
           "\ufb01", "\u01c4", "\u01c5", "\u0130", "\u0131", "\u1e9e", "\u03a3\u03c3\u03c2", "\u216b\u2163", "\u2460\u2461",
           "\u00bd", "\u00b2\u00b3", "\u0967\u0968\u0969", "\u0663\u0664\u0665", "\uff11\uff12\uff13", "\uff21\uff22\uff23",
           "\u2211\u222b\u221a", "\u20ac\u00a3\u00a5\u20b9", "\u2122\u00a9\u00ae", "\U0001d538\U0001d54f", "\U00010348"]
EMOJI = ["\U0001f999", "\U0001f44d", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
         "\U0001f1fa\U0001f1f8", "\u2764\ufe0f", "\U0001f600\U0001f603", "\U0001f916", "\u2b50", "\U0001f525\U0001f525"]
SPECIALS = ["<|im_start|>", "<|im_end|>", "<s>", "</s>", "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
            "<|start_header_id|>", "<|end_header_id|>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>",
            "<|system|>", "<unk>", "<|im_start|>user", "<|fim_prefix|>", "<|reserved_special_token_5|>", "<pad>"]
RANGES = [(0x20, 0x7f), (0x1, 0x20), (0xa0, 0x250), (0x300, 0x370), (0x370, 0x530), (0x530, 0x10ff), (0x1100, 0x1200),
          (0x1e00, 0x2000), (0x2000, 0x2100), (0x2100, 0x2c00), (0x3000, 0x3100), (0x4e00, 0x4f00), (0xac00, 0xad00),
          (0xe000, 0xe010), (0xfb00, 0xfb50), (0xfe00, 0xfe10), (0xff00, 0xfff0), (0x10000, 0x10100),
          (0x1d400, 0x1d800), (0x1f300, 0x1fa00), (0xe0000, 0xe0080), (0x10fff0, 0x110000)]

def text(r, kind):
    def number():
        s = "".join(r.choice("0123456789") for _ in range(r.choice([1, 1, 2, 3, 4, 5, 6, 7, 9, 12])))
        if r.random() < 0.2:
            s += r.choice(".,ex_") + "".join(r.choice("0123456789") for _ in range(r.randint(1, 5)))
        return s
    def codepoint():
        a, b = r.choice(RANGES)
        c = r.randrange(a, b)
        return chr(0x41 if 0xd800 <= c < 0xe000 else c)
    if kind == "codepoints":
        return "".join(codepoint() if r.random() < 0.6 else r.choice([" ", "a", "1", "'s", "\n", "  ", "Hello"])
                       for _ in range(r.randint(1, 40)))
    if kind == "long":
        return "".join(codepoint() if r.random() < 0.2 else r.choice([" ", "the ", "1", "99999", "'ll", "\n", "    ", "xyz", "\u00e9"])
                       for _ in range(r.randint(200, 3000)))
    s = ""
    for _ in range(r.randint(1, 14)):
        x = r.random()
        s += (r.choice(WORDS) if x < 0.25 else r.choice(WORDS) + r.choice(CONTRACTIONS) if x < 0.33 else
              number() if x < 0.43 else r.choice(SPACES) if x < 0.55 else r.choice(PUNCT) if x < 0.66 else
              r.choice(UNICODE) if x < 0.82 else r.choice(EMOJI) if x < 0.90 else
              r.choice(SPECIALS) if x < 0.95 and kind == "special" else
              "".join(chr(r.randint(0x20, 0x7e)) for _ in range(r.randint(1, 6))))
        if r.random() < 0.5:
            s += " "
    if r.random() < 0.1:
        s = " " + s
    if r.random() < 0.05:
        s = s * r.randint(2, 4)
    return s

def cmd_strings(seed, n, kind, out):
    r = random.Random(int(seed))
    with open(out, "wb") as f:
        for _ in range(int(n)):
            b = text(r, kind).encode()
            f.write(struct.pack("<I", len(b)) + b)

# ---- GGUF ----
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

class Reader:
    def __init__(self, path):
        self.d = open(path, "rb").read()
        self.o = 0
        if self.d[:4] != b"GGUF":
            sys.exit("%s: not a GGUF file" % path)
        self.o = 4
    def get(self, fmt):
        v = struct.unpack_from("<" + fmt, self.d, self.o)
        self.o += struct.calcsize("<" + fmt)
        return v[0]
    def string(self):
        n = self.get("Q")
        s = self.d[self.o:self.o + n]
        self.o += n
        return s
    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.get("I"), self.get("Q")
            return [self.value(et) for _ in range(n)]
        return self.get(SCALARS[t])

def read_gguf(path):
    r = Reader(path)
    _version, n_tensors, n_kv = r.get("I"), r.get("Q"), r.get("Q")
    kv = {}
    for _ in range(n_kv):
        k = r.string().decode()
        t = r.get("I")
        start = r.o
        kv[k] = (t, r.value(t), r.d[start:r.o])
    infos = []
    for _ in range(n_tensors):
        name = r.string().decode()
        dims = [r.get("Q") for _ in range(r.get("I"))]
        infos.append((name, dims, r.get("I"), r.get("Q")))
    align = kv["general.alignment"][1] if "general.alignment" in kv else 32
    base = (r.o + align - 1) // align * align
    ends = sorted({off for _, _, _, off in infos} | {len(r.d) - base})
    tensors = {}
    for name, dims, typ, off in infos:
        end = min(e for e in ends if e > off)
        tensors[name] = (typ, dims, r.d[base + off:base + end])
    return r, kv, tensors

def cmd_setpre(src, dst, name):
    r, kv, tensors = read_gguf(src)
    if tensors:
        sys.exit("%s: setpre takes vocab-only files" % src)
    out = bytearray(r.d[:24])
    for k, (t, _v, raw) in kv.items():
        if k == "tokenizer.ggml.pre":
            raw = struct.pack("<Q", len(name)) + name.encode()
        out += struct.pack("<Q", len(k)) + k.encode() + struct.pack("<I", t) + raw
    open(dst, "wb").write(out)

def cmd_detok(llama_out, rbee_out):
    bad = []
    la, rb = open(llama_out).read().splitlines(), open(rbee_out).read().splitlines()
    for a, b in zip(la, rb):
        ids, ha = a.split("|")
        ids_b, hb = b.split("|")
        want = bytes.fromhex(ha).decode("utf-8", "replace").encode()
        if ids != ids_b or bytes.fromhex(hb) != want:
            bad.append("ids %s: llama.cpp %r, rbee %r" % (ids, bytes.fromhex(ha), bytes.fromhex(hb)))
    ok = not bad and len(la) == len(rb) and la
    print("%s detok %s: %d cases%s" % ("ok  " if ok else "FAIL", llama_out, len(la), "".join("\n  " + x for x in bad[:5])))
    sys.exit(0 if ok else 1)

def cmd_tensors(a, b):
    _, _, ta = read_gguf(a)
    _, _, tb = read_gguf(b)
    bad = []
    for name in sorted(set(ta) | set(tb)):
        if name not in ta or name not in tb:
            bad.append("%s: only in one file" % name)
            continue
        (t1, d1, x1), (t2, d2, x2) = ta[name], tb[name]
        n = min(len(x1), len(x2))  # the padding after a tensor may differ
        if t1 != t2 or d1 != d2 or x1[:n] != x2[:n]:
            bad.append("%s: type %d/%d, %d bytes differ" % (name, t1, t2, sum(p != q for p, q in zip(x1[:n], x2[:n]))))
    ok = not bad and ta
    print("%s tensors %s = %s: %d tensors%s" % ("ok  " if ok else "FAIL", a, b, len(ta), "".join("\n  " + x for x in bad[:5])))
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    cmds = {"strings": cmd_strings, "setpre": cmd_setpre, "detok": cmd_detok, "tensors": cmd_tensors}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])
