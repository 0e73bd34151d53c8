/* PLACEHOLDER until its issue lands: replaced by the real command. */
#include <stdio.h>
#include "../runtime/cli.h"
int cli_bench(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "rbee: error: cli_bench: not built yet\n"); return 1; }
