/* cli.h - the subcommands of `rbee`. Each takes argv as seen after the
 * command name (argv[0] is the command) and returns the exit status.
 * Errors are printed as one line: "rbee: error: <what>: <why>". */
#ifndef RB_CLI_H
#define RB_CLI_H

#include "rbee.h"

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
int cli_template(int argc, char **argv); /* runtime/cli_template.c */
int cli_chat(int argc, char **argv);     /* runtime/cli_run.c: run's flags, then cli_chat_main */

/* `rbee chat` after option parsing. runtime/cli_chat.c */
struct cli_chat_args {
    const char *model, *system, *chat_template; /* system, chat_template: NULL when not given */
    int verbose, n_predict, n_ctx, n_threads;
    const char *type_k, *type_v;
    struct rbee_sampler_params sp;
};
int cli_chat_main(const struct cli_chat_args *a);
/* What a chat turn feeds after the cache's tokens when msgs[n - 2] is the
 * reply just generated and msgs[n - 1] the new user message: the text the
 * template puts after a reply (its end marker), then the new turn up to the
 * opening of the assistant's. malloc'd; NULL when msgs do not end so, the
 * template does not append, or memory runs out (then format it all). */
char *cli_chat_next_text(const char *tmpl, const struct rbee_chat_message *msgs, size_t n, size_t *len);
void cli_chat_usage(void);

/* The chat template a command uses: flag (--chat-template's value) when
 * given, else the model's tokenizer.chat_template (m may be NULL with a
 * flag). Prints one error line, naming the built-in templates, and returns
 * 1 when there is none or rbee does not recognize it. runtime/cli_template.c */
int cli_chat_template(const rbee_model *m, const char *model_path, const char *flag, const char **tmpl);


/* Ctrl-C sets a flag instead of killing (a second one kills): catch
 * installs the handler (0, or -1 with errno), flag is what generation
 * loops poll, clear re-arms it. runtime/cli_signal.c */
int cli_sigint_catch(void);
const volatile int *cli_sigint_flag(void);
void cli_sigint_clear(void);

/* runtime/cli_args.c: prints "rbee: error: <what>: <why>" and returns 1. */
int cli_fail(const char *what, const char *why);
/* A flag's value as a number in lo..hi, else the error line and 1. */
int cli_parse_int(const char *flag, const char *s, long lo, long hi, int *out);

#endif
