/* main.c - the `rbee` command: git-style subcommands, each in its own file. */
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
    (void)argc; (void)argv;
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
    { "isas",     cli_isas,     "list the kernel ISAs this CPU can run, best last" },
};

static void usage(FILE *out) {
    fprintf(out, "usage: rbee <command> [options]\n\n"
                 "rbee runs GGUF language models on the CPU.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(out, "  %-9s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n'rbee <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (!strcmp(argv[1], subcommands[i].name))
            return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "rbee: error: unknown command '%s' (see 'rbee --help')\n", argv[1]);
    return 1;
}
