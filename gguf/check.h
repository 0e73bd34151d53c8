/* check.h - RB_CHECK(cond): the always-on check for programmer errors.
 *
 * Bad input (a file, a flag, a socket) is never a programmer error: it gets
 * a returned error and a message. RB_CHECK is for what only a bug in rbee
 * can make false (a caller passing a range outside the buffer it owns):
 * going on would read or write out of bounds, and returning silently would
 * hide the bug, so it prints file:line and the condition and aborts. It does
 * not vanish under NDEBUG. The lowest layer's header, so every layer may
 * include it.
 */
#ifndef RB_CHECK_H
#define RB_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static inline _Noreturn void rb_check_failed(const char *file, int line, const char *cond) {
    fprintf(stderr, "rbee: internal error: %s:%d: check failed: %s\n", file, line, cond);
    fflush(stderr);
    abort();
}

#define RB_CHECK(cond) ((cond) ? (void)0 : rb_check_failed(__FILE__, __LINE__, #cond))

#endif
