/* PLACEHOLDER until its issue lands: replaced by the real command. */
#include <stdio.h>
#include "../runtime/cli.h"
int cli_info(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "rbee: error: cli_info: not built yet\n"); return 1; }
