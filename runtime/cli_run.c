/* PLACEHOLDER until its issue lands: replaced by the real command. */
#include <stdio.h>
#include "../runtime/cli.h"
int cli_run(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "rbee: error: cli_run: not built yet\n"); return 1; }
int cli_logits(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "rbee: error: cli_logits: not built yet\n"); return 1; }
int cli_tokenize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "rbee: error: cli_tokenize: not built yet\n"); return 1; }
