/* tok_shim.c - TEMPORARY stand-ins for the "tok" helper's API
 * (rbee_model_meta_str, rbee_vocab_load), removed when that lands on main. */
#include <string.h>

#include "model.h"

const char *rbee_model_meta_str(const rbee_model *m, const char *key);
int rbee_vocab_load(rbee_model **out, const char *path, char *err);

const char *rbee_model_meta_str(const rbee_model *m, const char *key) {
    static char buf[1 << 17];
    char err[256];
    if (gguf_find_key(&m->file, key) < 0) return NULL;
    if (gguf_get_str(&m->file, key, buf, sizeof buf, err)) return NULL;
    return buf;
}

int rbee_vocab_load(rbee_model **out, const char *path, char *err) { return rbee_model_load(out, path, err); }
