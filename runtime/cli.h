/* cli.h - the subcommands of `rbee`. Each takes argv as seen after the
 * command name (argv[0] is the command) and returns the exit status.
 * Errors are printed as one line: "rbee: error: <what>: <why>". */
#ifndef RB_CLI_H
#define RB_CLI_H

/* runtime/cli_main.c: the whole command (argv[0] = "rbee"); version is
 * what `rbee --version` prints */
int cli_main(int argc, char **argv, const char *version);
int cli_run(int argc, char **argv);      /* runtime/cli_run.c */
int cli_logits(int argc, char **argv);   /* runtime/cli_run.c */
int cli_tokenize(int argc, char **argv); /* runtime/cli_run.c */
int cli_info(int argc, char **argv);     /* runtime/cli_info.c */
int cli_quantize(int argc, char **argv); /* runtime/cli_quantize.c */
int cli_bench(int argc, char **argv);    /* bench/cli_bench.c */
int cli_synth(int argc, char **argv);    /* bench/cli_synth.c */
int cli_serve(int argc, char **argv);    /* runtime/cli_serve.c */

/* runtime/cli_args.c: prints "rbee: error: <what>: <why>" and returns 1. */
int cli_fail(const char *what, const char *why);
/* A flag's value as a number in lo..hi, else the error line and 1. */
int cli_parse_int(const char *flag, const char *s, long lo, long hi, int *out);

#endif
