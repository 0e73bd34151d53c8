// reftok: llama.cpp b4748's tokenizer as the truth for rbee's tests.
// usage: reftok VOCAB.gguf ADD_SPECIAL PARSE_SPECIAL < inputs  (inputs separated by "\n__ggml_vocab_test__\n")
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include <iostream>
#include <sstream>
static void quiet(ggml_log_level, const char *, void *) {}
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params();
    mp.vocab_only = true;
    llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    const llama_vocab *vocab = llama_model_get_vocab(model);
    bool add = atoi(argv[2]), parse = atoi(argv[3]);
    std::stringstream ss; ss << std::cin.rdbuf();
    std::string all = ss.str(), sep = "\n__ggml_vocab_test__\n";
    size_t pos = 0;
    for (;;) {
        size_t nx = all.find(sep, pos);
        std::string s = all.substr(pos, nx == std::string::npos ? std::string::npos : nx - pos);
        std::vector<llama_token> toks(s.size() + 16);
        int n = llama_tokenize(vocab, s.data(), (int)s.size(), toks.data(), (int)toks.size(), add, parse);
        if (n < 0) { toks.resize(-n); n = llama_tokenize(vocab, s.data(), (int)s.size(), toks.data(), (int)toks.size(), add, parse); }
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", toks[i]);
        printf("\n");
        if (nx == std::string::npos) break;
        pos = nx + sep.size();
    }
    if (argc > 4) { // print eog ids
        int nv = llama_vocab_n_tokens(vocab);
        printf("eog:");
        for (int i = 0; i < nv; i++) if (llama_vocab_is_eog(vocab, i)) printf(" %d", i);
        printf("\nbos %d eos %d eot %d add_bos %d add_eos %d\n", llama_vocab_bos(vocab), llama_vocab_eos(vocab), llama_vocab_eot(vocab), llama_vocab_get_add_bos(vocab), llama_vocab_get_add_eos(vocab));
    }
    llama_model_free(model);
    return 0;
}
