/* fuzz_chat_template.c - libFuzzer entry for rbee_chat_apply_template.
 *
 * The input is split at NUL bytes: the first piece is the template (text,
 * or, when it is one byte, the built-in name that byte picks), the rest are
 * role / content pairs; the first byte of the input also sets add_assistant.
 * The sizing call (no buffer), a call with a buffer one byte short and a
 * call with room must agree: same length, same bytes, nothing written past
 * the buffer (ASan), detection consistent with the result.
 *
 * fuzz-seeds: $SHARED/reference/chat
 * fuzz-max-len: 4096 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/rbee.h"

#define MAX_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    const char *piece[2 * MAX_MSGS + 1];
    size_t n = 0;
    for (size_t at = 0; at <= size && n < 2 * MAX_MSGS + 1; at += strlen(text + at) + 1) piece[n++] = text + at;
    const char *tmpl = piece[0];
    if (strlen(tmpl) == 1) { /* a built-in name */
        size_t count = 0;
        while (rbee_chat_template_builtin(count)) count++;
        tmpl = rbee_chat_template_builtin((unsigned char)tmpl[0] % count);
    }
    struct rbee_chat_message msgs[MAX_MSGS];
    size_t n_msgs = 0;
    for (size_t i = 1; i + 1 < n; i += 2) msgs[n_msgs++] = (struct rbee_chat_message){ piece[i], piece[i + 1] };
    int add_ass = size && (data[0] & 1);

    char err[RBEE_ERR_MAX];
    int64_t len = rbee_chat_apply_template(tmpl, msgs, n_msgs, add_ass, NULL, 0, err);
    if ((len < 0) != (rbee_chat_template_detect(tmpl) == NULL)) abort();
    if (len >= 0) {
        char *full = malloc((size_t)len + 1), *shy = malloc((size_t)len + 1);
        if (full && shy) {
            if (rbee_chat_apply_template(tmpl, msgs, n_msgs, add_ass, full, (size_t)len + 1, err) != len) abort();
            if (full[len] != 0 || memchr(full, 0, (size_t)len)) abort(); /* NUL-terminated, no NUL inside */
            if (len > 0) {
                if (rbee_chat_apply_template(tmpl, msgs, n_msgs, add_ass, shy, (size_t)len, err) != len) abort();
                if (memcmp(shy, full, (size_t)len)) abort();
            }
        }
        free(full);
        free(shy);
    }
    free(text);
    return 0;
}
