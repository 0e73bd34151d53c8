/* cli_signal.c - Ctrl-C for `rbee run` and `rbee chat`: a request to stop
 * the current reply, not a kill. The handler only sets a flag that the
 * generation loops poll (rbee_gen_params.cancel); a second Ctrl-C before
 * the flag is cleared kills the process as usual, for a loop that cannot
 * poll (a long prompt batch). The flag is the one piece of global state a
 * signal handler needs. */
#include <signal.h>
#include <string.h>

#include "cli.h"

_Static_assert(_Generic((sig_atomic_t)0, int: 1, default: 0), "the flag is passed on as a volatile int");

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    if (interrupted) { /* the second one: the default action (async-signal-safe calls only) */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted = 1;
}

int cli_sigint_catch(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a read waiting for the user's line returns EINTR */
    interrupted = 0;
    return sigaction(SIGINT, &sa, NULL);
}

const volatile int *cli_sigint_flag(void) { return &interrupted; }

void cli_sigint_clear(void) { interrupted = 0; }
