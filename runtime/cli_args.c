/* cli_args.c - the error line and integer flag values, shared by commands
 * (declared in cli.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cli_fail(const char *what, const char *why) {
    fprintf(stderr, "rbee: error: %s: %s\n", what, why);
    return 1;
}

int cli_parse_int(const char *flag, const char *s, long lo, long hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        char why[160];
        snprintf(why, sizeof why, "expected an integer in %ld..%ld, got '%s'", lo, hi, s);
        return cli_fail(flag, why);
    }
    *out = (int)v;
    return 0;
}
