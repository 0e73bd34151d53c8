/* cli_main.c - the `rbee` command: git-style subcommands, each in its own
 * file, and what every one of them shares: RBEE_ISA checked before any
 * work, --help and --version, and stdout checked at the end (output that
 * could not be written is an error, not a silent exit 0). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "../simd/kernels.h"

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static int cli_isas(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: rbee isas\n\n"
                   "Print the kernel ISAs this CPU (and this build) can run, best last; the\n"
                   "best is used unless RBEE_ISA names another (scalar, avx2, avx512, neon).\n");
            return 0;
        }
        fprintf(stderr, "rbee: error: isas: %s '%s' (see 'rbee isas --help')\n",
                argv[i][0] == '-' ? "unknown option" : "unexpected argument", argv[i]);
        return 1;
    }
    printf("%s\n", rb_kernels_available());
    return 0;
}

static const struct subcommand subcommands[] = {
    { "run",      cli_run,      "generate text from a prompt" },
    { "logits",   cli_logits,   "print prompt tokens, top logits and a greedy continuation" },
    { "chat",     cli_chat,     "talk with an instruct model, turn by turn" },
    { "template", cli_template, "print the prompt a chat template makes of a conversation" },
    { "tokenize", cli_tokenize, "print the token ids of a text" },
    { "info",     cli_info,     "describe a GGUF file: metadata, hyperparameters, tensors" },
    { "quantize", cli_quantize, "convert a GGUF model to another weight type" },
    { "bench",    cli_bench,    "measure prompt and generation throughput against the memory roofline" },
    { "synth",    cli_synth,    "write a GGUF model with random weights of a real layout" },
    { "serve",    cli_serve,    "serve a model over HTTP with the OpenAI API (completions, chat)" },
    { "isas",     cli_isas,     "list the kernel ISAs this CPU can run, best last" },
};

static void usage(FILE *out) {
    fprintf(out, "usage: rbee <command> [options]\n\n"
                 "rbee runs GGUF language models on the CPU.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(out, "  %-9s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n'rbee <command> --help' describes a command's options; 'rbee --version' the build.\n");
}

/* 0 when everything written to stdout reached it; else the one error line. */
static int check_stdout(void) {
    errno = 0;
    int e = fflush(stdout) != 0 ? errno : 0;
    if (!e && !ferror(stdout)) return 0;
    fprintf(stderr, "rbee: error: stdout: %s\n", e ? strerror(e) : "write error");
    return 1;
}

int cli_main(int argc, char **argv, const char *version) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return check_stdout();
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("rbee %s\n", version);
        return check_stdout();
    }
    /* a forced kernel path this machine cannot run, or a misspelt one, is
     * refused by name before any work, never silently replaced */
    char err[RB_ERR_MAX];
    if (rb_kernels_select_env(err) != 0) {
        fprintf(stderr, "rbee: error: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(cmd, subcommands[i].name)) {
            int rc = subcommands[i].fn(argc - 1, argv + 1);
            return rc == 0 ? check_stdout() : rc; /* a failed command has said why already */
        }
    fprintf(stderr, "rbee: error: unknown command '%s' (see 'rbee --help')\n", cmd);
    return 1;
}
