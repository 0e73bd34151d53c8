/* fuzz_model.c - libFuzzer entry for model loading: a fuzzed GGUF through
 * rb_model_load_memory (architecture, hyperparameters, every tensor bound by
 * name, type and shape, the tokenizer), and when it loads, a few tokens
 * through tokenizer, forward pass and sampler, so a header that binds but
 * breaks the forward pass is found too.
 * fuzz-seeds: $SHARED/models
 * fuzz-max-len: 2097152
 *
 * Inputs are the head of a file: metadata and tensor infos, where the
 * loader's bugs live (the seeds' headers run up to 1.8 MB). The harness
 * places them at the start of a 64 MiB zero-filled mapping and loads all of
 * it, so the tensor data a header describes lies inside (as zeros) and the
 * binding code runs instead of stopping at "data extends past the end".
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "../runtime/model.h"
#include "../runtime/rbee.h"

#define ZERO_SPACE ((size_t)64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A few tokens through a small model; big ones (zero weights give nothing
 * new per byte) only load. */
static void run_a_little(rbee_model *m) {
    struct rbee_model_info info;
    rbee_model_get_info(m, &info);
    if (info.weight_bytes > (8u << 20)) return;
    struct rbee_context_params cp = rbee_context_default_params();
    cp.n_ctx = 8;
    cp.n_threads = 1;
    rbee_context *c;
    char err[RBEE_ERR_MAX];
    if (rbee_context_new(&c, m, &cp, err) != 0) return;
    int32_t ids[8];
    int64_t n = rbee_tokenize(m, "Hi there<|im_end|>", 18, -1, 1, ids, 8, err);
    if (n > 0 && n <= 8 && rbee_eval(c, ids, (int)(n < 4 ? n : 4), 0, err) == 0) {
        struct rbee_sampler_params sp = rbee_sampler_default_params();
        rbee_sampler *s = rbee_sampler_new(&sp, rbee_n_vocab(c));
        if (s) {
            int32_t id = rbee_sample(s, rbee_get_logits(c, -1));
            if (id < 0 || id >= rbee_n_vocab(c)) __builtin_trap();
            rbee_sampler_free(s);
        }
    }
    rbee_context_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t *space;
    if (!space) {
        /* untouched pages of an anonymous mapping read as zeros and cost nothing */
        void *p = mmap(NULL, ZERO_SPACE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) __builtin_trap();
        space = p;
    }
    if (size > ZERO_SPACE) return 0;
    memcpy(space, data, size);
    rbee_model *m;
    char err[RBEE_ERR_MAX] = "";
    if (rb_model_load_memory(&m, space, ZERO_SPACE, err) == 0) {
        run_a_little(m);
        rbee_model_free(m);
    } else if (!err[0]) {
        __builtin_trap(); /* a refusal always says why */
    }
    memset(space, 0, size); /* zeros again for the next input */
    return 0;
}
