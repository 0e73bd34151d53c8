/* test_bad_files.c - a corpus of malformed GGUF files, made the way
 * test_gguf_bad.c makes its files (the writer, then patched bytes), fed to
 * `rbee info` and `rbee run` as a user would: each is refused with exit
 * status 1 and exactly one line "rbee: error: FILE: reason" on stderr,
 * never a crash (the sanitizer build runs this too). info lists what it
 * can read first, but gives no memory plan for a file that cannot run.
 * Every tiny-llama and tiny-GPT-2 defect of the load tests is in it, and
 * every class of broken header, on a real model's bytes. */
#include <sys/stat.h>

#include "test.h"
#include "cli_capture.h"
#include "gguf_build.h"
#include "gpt2_build.h"
#include "llama_build.h"

static char dir[64];

/* A refused file: both commands, one error line naming it; `want` (may be
 * NULL) is part of the reason. Returns 1 when all held. */
static int refused_by_info_and_run(const char *path, const char *want) {
    char head[600];
    snprintf(head, sizeof head, "rbee: error: %s: ", path);
    const char *info[] = { "rbee", "info", path, NULL };
    const char *run[] = { "rbee", "run", "-m", path, "-p", "Once upon a time", "-n", "2", NULL };
    const char **cmds[2] = { info, run };
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        int rc = capture_main(cmds[i]);
        const char *nl = strchr(cap_err, '\n');
        int one_line = !strncmp(cap_err, head, strlen(head)) && nl && nl[1] == 0;
        CHECK_MSG(rc == 1 && one_line, "%s %s: exit %d, stderr:\n%s", cmds[i][1], path, rc, cap_err);
        if (want) CHECK_CONTAINS(cap_err, want);
        CHECK_MSG(!strstr(cap_out, "memory:"), "%s: a memory plan for a file that cannot run", path);
        ok &= rc == 1 && one_line;
    }
    return ok;
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    struct stat st;
    if (f && fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size))) {
        *size = (size_t)st.st_size;
        if (fread(buf, 1, *size, f) != *size) { free(buf); buf = NULL; }
    }
    if (f) fclose(f);
    return buf;
}

static void write_bytes(const char *path, const uint8_t *buf, size_t size) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(buf, 1, size, f) == size);
    if (f) fclose(f);
}

/* Hyperparameters zero, NaN, not dividing, of the wrong type; tensors
 * missing, wrongly shaped, of types rbee cannot compute, holding NaN;
 * token ids out of range; an unknown architecture; bad keys and names. */
TEST(llama_defects) {
    int n = 0, refused = 0;
    for (int d = LL_OK + 1; d < LL_N_DEFECTS; d++) {
        if (d == LL_TIED) continue; /* a valid file: tied output */
        char path[128];
        snprintf(path, sizeof path, "%s/llama-%d.gguf", dir, d);
        if (ll_write(path, (enum ll_defect)d) != 0) { TEST_FAIL_AT("cannot write %s", path); continue; }
        n++;
        refused += refused_by_info_and_run(path, NULL);
        unlink(path);
    }
    printf("  %d of %d tiny-llama defects refused by info and run\n", refused, n);
    CHECK(n >= 30);
}

TEST(gpt2_defects) {
    for (int d = G2_OK + 1; d < G2_N_DEFECTS; d++) {
        if (d == G2_TIED || d == G2_POS_Q4_0) continue; /* valid files */
        char path[128];
        snprintf(path, sizeof path, "%s/gpt2-%d.gguf", dir, d);
        if (g2_write(path, (enum g2_defect)d) != 0) { TEST_FAIL_AT("cannot write %s", path); continue; }
        refused_by_info_and_run(path, NULL);
        unlink(path);
    }
}

/* A valid tiny model's bytes, cut or patched one way each. */
TEST(broken_headers) {
    char good[128], path[128];
    snprintf(good, sizeof good, "%s/good.gguf", dir);
    CHECK(ll_write(good, LL_OK) == 0);
    const char *ok_run[] = { "rbee", "run", "-m", good, "-p", "a", "-n", "1", NULL };
    CHECK_EQ_INT(capture_main(ok_run), 0); /* the base file is fine */
    size_t size = 0;
    uint8_t *base = read_file(good, &size), *buf = malloc(size);
    if (!base || !buf) { TEST_FAIL_AT("cannot read %s", good); free(base); free(buf); return; }
    size_t tok = find_bytes(base, size, "tokenizer.ggml.tokens");
    size_t emb = find_bytes(base, size, "token_embd.weight");
    size_t q = find_bytes(base, size, "blk.0.attn_q.weight");
    const size_t cuts[] = { 0, 3, 10, 23, 40, tok + 30, emb + 5, q + 20, size / 2, size - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(path, sizeof path, "%s/cut-%zu.gguf", dir, cuts[i]);
        write_bytes(path, base, cuts[i]);
        refused_by_info_and_run(path, NULL);
        unlink(path);
    }
    struct patch { const char *what; size_t at; int width; uint64_t value; const char *want; };
    const struct patch patches[] = {
        { "magic", 0, 4, 0x4c4d4747 /* "GGML" */, "not a GGUF file" },
        { "version 1", 4, 4, 1, "GGUF version 1 is not supported" },
        { "version 4", 4, 4, 4, "GGUF version 4 is not supported" },
        { "big-endian", 4, 4, 0x03000000u, "big-endian" },
        { "n_tensors", 8, 8, 1ull << 40, "tensor count" },
        { "n_kv", 16, 8, UINT64_MAX / 2, "metadata count" },
        { "key length", 24, 8, 1ull << 20, "name too long" },
        { "tokens count", tok + strlen("tokenizer.ggml.tokens") + 8, 8, UINT64_MAX - 1, "tokenizer.ggml.tokens" },
        { "kv type", tok + strlen("tokenizer.ggml.tokens"), 4, 77, "unknown value type 77" },
        { "array of arrays", tok + strlen("tokenizer.ggml.tokens") + 4, 4, GGUF_TYPE_ARRAY, "arrays of arrays" },
        { "n_dims 5", tensor_field(base, size, "token_embd.weight", "n_dims"), 4, 5, "5 dimensions" },
        { "dim 0", tensor_field(base, size, "token_embd.weight", "ne"), 8, 0, "dimension 0 is 0" },
        { "huge dim", tensor_field(base, size, "token_embd.weight", "ne") + 8, 8, 1ull << 62, "token_embd.weight" },
        { "retired type", tensor_field(base, size, "token_embd.weight", "type"), 4, 4, "unknown or retired tensor type 4" },
        { "type q4_0", tensor_field(base, size, "blk.0.attn_q.weight", "type"), 4, RB_TYPE_Q4_0, NULL },
        { "misaligned", tensor_field(base, size, "blk.0.attn_q.weight", "offset"), 8, 33, "not a multiple of the alignment" },
        { "past the end", tensor_field(base, size, "blk.0.attn_q.weight", "offset"), 8, 1ull << 40, "extends past the end" },
        { "overlap", tensor_field(base, size, "blk.0.attn_q.weight", "offset"), 8, 0, "overlap" },
        { "duplicate", find_bytes(base, size, "blk.0.attn_k.weight") + 11, 1, 'q', "duplicate tensor name" },
    };
    for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++) {
        const struct patch *p = &patches[i];
        if (p->at + (size_t)p->width > size) { TEST_FAIL_AT("%s: patch outside the file", p->what); continue; }
        memcpy(buf, base, size);
        memcpy(buf + p->at, &p->value, (size_t)p->width); /* little-endian hosts */
        snprintf(path, sizeof path, "%s/patch-%zu.gguf", dir, i);
        write_bytes(path, buf, size);
        if (!refused_by_info_and_run(path, p->want)) printf("  (the %s patch)\n", p->what);
        unlink(path);
    }
    /* not a file at all */
    refused_by_info_and_run(dir, NULL);
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    write_bytes(path, base, 0);
    refused_by_info_and_run(path, "empty file");
    unlink(path);
    unlink(good);
    free(base);
    free(buf);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/rbee_bad_files_XXXXXX");
    if (!mkdtemp(dir)) { printf("mkdtemp failed\n0 passed, 1 failed\n"); return 1; }
    unsetenv("RBEE_ISA");
    RUN(llama_defects);
    RUN(gpt2_defects);
    RUN(broken_headers);
    rmdir(dir);
    return test_summary();
}
