/* logits_report.h - the text `rbee logits` prints (format of
 * ../shared/reference/README.md), shared with the golden tests so both
 * take the same code path. */
#ifndef RB_LOGITS_REPORT_H
#define RB_LOGITS_REPORT_H

#include <stdio.h>
#include "rbee.h"

/* Tokenize prompt (with BOS when the model adds one; special-token text as
 * those tokens when parse_special), evaluate it with
 * logits for every position, then n_greedy argmax steps. Writes:
 *   prompt: P / tokens: ids / top i: id:logit x top_k / gtop i: ... / greedy: ids
 * The context must be fresh (position 0). -1 with err on failure. */
int rb_logits_report(const rbee_model *m, rbee_context *c, const char *prompt, int parse_special,
                     int n_greedy, int top_k, FILE *out, char *err);
/* The same from prompt token ids already made (the tests feed a
 * reference's ids this way, to check logits apart from the tokenizer);
 * prompt is only printed. */
int rb_logits_report_ids(rbee_context *c, const char *prompt, const int32_t *prompt_ids, int n,
                         int n_greedy, int top_k, FILE *out, char *err);

#endif
