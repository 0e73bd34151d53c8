/* test_bench_cli.c - `rbee bench` run as a command, end to end: every
 * output format from a real run, depths, thread counts, KV types and
 * errors; and rb_context_seek, which its deep generation tests use. */
#include "test.h"

#include <fcntl.h>
#include <unistd.h>

#include "cli_capture.h"
#include "../runtime/json.h"
#include "../runtime/cli.h"
#include "../runtime/context.h"
#include "../runtime/rbee.h"

/* ---- `rbee bench` itself, end to end ---- */

/* Every format from a real run on stories260K (a small bandwidth buffer,
 * a few tokens): the JSON parses with the fields, tests at two
 * depths and two thread counts, the KV types of -ctk/-ctv. */
TEST(bench_command_outputs) {
    char model[512];
    test_path(model, sizeof model, "models/stories260K.gguf");
    setenv("RBEE_BW_MIB", "32", 1);
    const char *a[] = { "bench", "-m", model, "-p", "16", "-n", "4", "-d", "4,40", "-t", "1,2", "-r", "2",
                        "-ctk", "q8_0", "-ctv", "q4_0", "-o", "json", NULL };
    CHECK_EQ_INT(capture(cli_bench, a), 0);
    CHECK_CONTAINS(cap_err, "bench: memory read bandwidth before:");
    struct rb_json_doc *doc = NULL;
    char perr[RB_JSON_ERR_MAX] = "";
    CHECK_MSG(rb_json_parse(cap_out, strlen(cap_out), 0, &doc, perr) == 0, "JSON does not parse (%s):\n%s", perr,
              cap_out);
    const struct rb_json *root = rb_json_root(doc);
    CHECK(root && root->type == RB_JSON_ARRAY);
    CHECK_EQ_INT(root ? root->n_children : 0, 6); /* per thread count: pp16, tg4@d4, tg4@d40 */
    static const char *const tests[] = { "pp16", "tg4@d4", "tg4@d40" };
    int i = 0;
    for (const struct rb_json *o = root ? root->child : NULL; o && i < 6; o = o->next, i++) {
        const struct rb_json *f;
        CHECK((f = rb_json_get(o, "model")) && !strcmp(f->str, "stories260K.gguf"));
        CHECK((f = rb_json_get(o, "size_bytes")) && f->number == 1185376);
        CHECK((f = rb_json_get(o, "type")) && !strcmp(f->str, "F32"));
        CHECK((f = rb_json_get(o, "isa")) && f->type == RB_JSON_STRING && f->str[0]);
        CHECK((f = rb_json_get(o, "threads")) && f->number == (i < 3 ? 1 : 2));
        CHECK_MSG((f = rb_json_get(o, "test")) && !strcmp(f->str, tests[i % 3]), "row %d: test %s", i, f ? f->str : "?");
        CHECK((f = rb_json_get(o, "kv_type")) && !strcmp(f->str, "q8_0/q4_0"));
        CHECK((f = rb_json_get(o, "avg_ts")) && f->number > 0);
        CHECK((f = rb_json_get(o, "stddev_ts")) && f->number >= 0);
        int tg = i % 3 != 0;
        const struct rb_json *bw = rb_json_get(o, "bw_gbs"), *frac = rb_json_get(o, "bw_frac"), *bpt = rb_json_get(o, "bytes_per_token");
        CHECK_MSG(tg ? bw && frac && bw->number > 0 && frac->number > 0 : !bw && !frac, "row %d: bw fields", i);
        if (tg && bpt) {
            /* weights read per token: all tensors but token_embd (one row) for a model with an output matrix;
             * plus the KV cache read at the middle of the test (q8_0 K 34, q4_0 V 18 bytes a row) */
            double ctx_mid = i % 3 == 1 ? 4 + 2 : 40 + 2;
            double kv = 5.0 * 4 * ctx_mid * (34 + 18);
            CHECK_MSG(bpt->number > kv && bpt->number < kv + 1185376.0, "row %d: %g bytes per token", i, bpt->number);
            if (frac && bw) CHECK_NEAR(frac->number, rb_json_get(o, "avg_ts")->number * bpt->number / (bw->number * 1e9), 1e-4 * frac->number);
        }
    }
    rb_json_free(doc);

    /* CSV: a header and one line per row; markdown: the table with the columns */
    const char *c[] = { "bench", "-m", model, "-p", "8", "-n", "2", "-t", "1", "-r", "1", "--kv-type", "f16,q8_0",
                        "-o", "csv", NULL };
    CHECK_EQ_INT(capture(cli_bench, c), 0);
    const char *head = "model,size_bytes,n_params,type,kv_type,isa,threads,test,";
    CHECK(!strncmp(cap_out, head, strlen(head)));
    int lines = 0;
    for (const char *p = cap_out; *p; p++) lines += *p == '\n';
    CHECK_EQ_INT(lines, 1 + 4); /* f16 and q8_0: pp8, tg2 */
    CHECK_CONTAINS(cap_out, ",q8_0,");
    c[14] = "md";
    CHECK_EQ_INT(capture(cli_bench, c), 0);
    CHECK_CONTAINS(cap_out, "| model | size | params | type | kv | isa | threads | test | t/s | bw% |");
    CHECK_CONTAINS(cap_out, "memory read bandwidth (streaming read of a 32 MiB buffer");
    CHECK_CONTAINS(cap_out, "| stories260K.gguf | 1.13 MiB | 292.80 K | F32 | q8_0 | ");

    /* -d 0, llama-bench's default: generation from an empty cache */
    const char *d0[] = { "bench", "-m", model, "-p", "0", "-n", "2", "-d", "0", "-t", "1", "-r", "1", "-o", "csv", NULL };
    CHECK_EQ_INT(capture(cli_bench, d0), 0);
    CHECK_CONTAINS(cap_out, ",tg2@d0,");

    /* errors: one line, exit status 1, nothing measured */
    const char *bad_kv[] = { "bench", "-m", model, "-ctv", "q5_1", NULL };
    CHECK_EQ_INT(capture(cli_bench, bad_kv), 1);
    CHECK_CONTAINS(cap_err, "rbee: error: bench: KV cache type 'q5_1'");
    const char *bad_depth[] = { "bench", "-m", model, "-d", "-1", NULL };
    CHECK_EQ_INT(capture(cli_bench, bad_depth), 1);
    CHECK_CONTAINS(cap_err, "rbee: error: bench: -d -1");
    const char *unknown_last[] = { "bench", "-m", model, "--bogus", NULL };
    CHECK_EQ_INT(capture(cli_bench, unknown_last), 1);
    CHECK_STR(cap_err, "rbee: error: bench: unknown option '--bogus' (see 'rbee bench --help')\n");
    const char *no_model[] = { "bench", "-m", "/nonexistent.gguf", NULL };
    CHECK_EQ_INT(capture(cli_bench, no_model), 1);
    CHECK_STR(cap_err, "rbee: error: bench: /nonexistent.gguf: no such file\n");
    unsetenv("RBEE_BW_MIB");
}

/* rb_context_seek (bench's deep tg tests): back and forth over written rows only. */
TEST(context_seek_stays_within_written_rows) {
    char model[512], err[RBEE_ERR_MAX];
    rbee_model *m;
    CHECK(rbee_model_load(&m, test_path(model, sizeof model, "models/stories260K.gguf"), err) == 0);
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = 64;
    rbee_context *c;
    CHECK(rbee_context_new(&c, m, &cp, err) == 0);
    int32_t ids[40];
    for (int i = 0; i < 40; i++) ids[i] = 1 + i * 7;
    CHECK(c->n_written == 0 && rb_context_seek(c, 1) == -1);
    CHECK(rbee_eval(c, ids, 40, 0, err) == 0);
    CHECK_EQ_INT(c->n_written, 40);
    CHECK(rbee_set_pos(c, 10) == 0 && rbee_pos(c) == 10 && c->n_written == 40);
    CHECK(rbee_set_pos(c, 20) == -1);            /* the public call only rewinds */
    CHECK(rb_context_seek(c, 40) == 0 && rbee_pos(c) == 40);
    CHECK(rb_context_seek(c, 41) == -1 && rbee_pos(c) == 40);
    CHECK(rb_context_seek(c, -1) == -1);
    CHECK(rbee_get_logits(c, -1) == NULL);       /* no logits for a position not just evaluated */
    CHECK(rbee_eval(c, ids, 1, 0, err) == 0 && c->n_written == 41);
    rbee_reset(c);
    CHECK(rbee_pos(c) == 0 && c->n_written == 41);
    rbee_context_free(c);
    rbee_model_free(m);
}

int main(void) {
    RUN(context_seek_stays_within_written_rows);
    RUN(bench_command_outputs);
    return test_summary();
}
