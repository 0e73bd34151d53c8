/* cli_synth.c - `rbee synth`: write a GGUF with random weights of a real
 * model's layout (see synth.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../runtime/cli.h"
#include "membw.h"
#include "synth.h"

static void synth_usage(FILE *out) {
    fprintf(out,
            "usage: rbee synth --shape SHAPE --type TYPE -o OUT.gguf [--seed S] [--vocab VOCAB.gguf] [-t N]\n\n"
            "Writes a model with random weights (blocks of N(0, 0.02), quantized with rbee's\n"
            "quantizer) in the layout of a real one, with a real tokenizer copied from VOCAB.\n\n"
            "  --shape SHAPE   %s\n"
            "  --type TYPE     %s\n"
            "  --seed S        random seed (default 1)\n"
            "  --vocab FILE    tokenizer source (default: the shape's vocab under $SHARED, SHARED=../shared:\n"
            "                  reference/tokenizer/ggml-vocab-llama-bpe.gguf for llama3.2 and smollm2,\n"
            "                  ggml-vocab-qwen2.gguf for qwen2.5, models/phi3-mini-q8_0.gguf for phi3,\n"
            "                  ggml-vocab-gpt-2.gguf for gpt2, ggml-vocab-llama-spm.gguf for the rest)\n"
            "  -t N            threads (default: all CPUs)\n",
            rb_synth_shape_names(), rb_synth_ftype_names());
}

int cli_synth(int argc, char **argv) {
    const char *shape = NULL, *type = NULL, *out = NULL;
    struct rb_synth_opts o = { .seed = 1 };
    static const char *const flags[] = { "--shape", "--type", "-o", "--output", "--vocab", "--seed", "-t", "--threads" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { synth_usage(stdout); return 0; }
        int known = 0;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) known |= !strcmp(a, flags[k]);
        if (!known) { /* whether a value follows or not */
            fprintf(stderr, "rbee: error: synth: unknown option '%s' (see 'rbee synth --help')\n", a);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "rbee: error: synth: %s needs a value (see 'rbee synth --help')\n", a);
            return 1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--shape")) shape = v;
        else if (!strcmp(a, "--type")) type = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--vocab")) o.vocab_path = v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            o.seed = strtoull(v, &end, 10);
            if (*end || !*v) { fprintf(stderr, "rbee: error: synth: --seed %s: not a number\n", v); return 1; }
        } else { /* -t, --threads: the last of flags */
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 64) { fprintf(stderr, "rbee: error: synth: -t %s: expected 1..64\n", v); return 1; }
            o.n_threads = (int)t;
        }
    }
    if (!shape || !type || !out) {
        fprintf(stderr, "rbee: error: synth: --shape, --type and -o are required (see 'rbee synth --help')\n");
        return 1;
    }
    o.shape = rb_synth_shape_find(shape);
    if (!o.shape) {
        fprintf(stderr, "rbee: error: synth: unknown shape '%s' (known: %s)\n", shape, rb_synth_shape_names());
        return 1;
    }
    o.ftype = rb_synth_ftype_find(type);
    if (!o.ftype) {
        fprintf(stderr, "rbee: error: synth: unknown type '%s' (known: %s)\n", type, rb_synth_ftype_names());
        return 1;
    }
    o.progress = isatty(2);
    char err[RB_ERR_MAX] = "";
    double t0 = rb_now_s();
    if (rb_synth_write(&o, out, err) != 0) {
        fprintf(stderr, "rbee: error: synth: %s\n", err);
        return 1;
    }
    struct stat st;
    double mib = stat(out, &st) == 0 ? (double)st.st_size / (1 << 20) : 0.0;
    fprintf(stderr, "wrote %s: %s %s, %.1f MiB in %.1f s\n", out, o.shape->name, o.ftype->label, mib,
            rb_now_s() - t0);
    return 0;
}
