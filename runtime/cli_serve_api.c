/* cli_serve_api.c - the OpenAI endpoints of `rbee serve`: request fields
 * (each checked for type and range: a wrong one is a 400 naming it), the
 * prompt (text, or messages through the chat template), generation on a
 * slot, and the response in OpenAI's shapes, whole or as server-sent events.
 *
 * Fields of /v1/completions and /v1/chat/completions read here: prompt |
 * messages, max_tokens (max_completion_tokens, n_predict), temperature,
 * top_p, top_k, min_p, repeat_penalty, seed, stop, stream, stream_options
 * .include_usage, n (must be 1). Others (model, user, ...) are ignored, as
 * OpenAI clients send fields a local server has no use for.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_serve.h"

#define SRV_MAX_STOP 16

/* ------------------------------------------------------------ chat template */

int srv_api_init(struct srv *s) {
    if (s->o.chat_template) return cli_chat_template(s->model, s->o.model, s->o.chat_template, &s->chat_template);
    /* as llama.cpp's server: the model's template, else chatml, said once */
    const char *mt = rbee_model_meta_str(s->model, "tokenizer.chat_template");
    s->chat_template = mt && rbee_chat_template_detect(mt) ? mt : "chatml";
    if (s->chat_template != mt)
        s->chat_note = mt ? "rbee does not recognize the model's chat template" : "the model has no chat template";
    return 0;
}

/* The conversation as prompt text, through the chat template, with the
 * opening of the assistant's turn. */
static int render_chat(const struct srv *s, const struct rbee_chat_message *m, size_t n, struct rb_buf *out,
                       char *err) {
    int64_t len = rbee_chat_apply_template(s->chat_template, m, n, 1, NULL, 0, err); /* the size first */
    char *text = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (len >= 0 && !text) snprintf(err, RBEE_ERR_MAX, "out of memory");
    if (!text) return -1;
    rbee_chat_apply_template(s->chat_template, m, n, 1, text, (size_t)len + 1, err);
    rb_buf_add(out, text, (size_t)len);
    free(text);
    return out->failed ? (snprintf(err, RBEE_ERR_MAX, "out of memory"), -1) : 0;
}

/* ------------------------------------------------------------ request fields */

struct gen_req {
    int chat, stream, include_usage, n_predict;
    struct rbee_sampler_params sp;
    const char *stop[SRV_MAX_STOP];
    int n_stop;
    const char *prompt; /* completions: the JSON string; chat: rendered.data */
    size_t prompt_len;
    struct rb_buf rendered;
};

/* A number field. Absent or null: 0 and *out unchanged; 1 when set; -1
 * after answering 400 naming the field. */
static int num_field(struct srv_conn *c, const struct rb_json *root, const char *key, double lo, double hi,
                     int integer, double *out) {
    const struct rb_json *v = rb_json_get(root, key);
    if (!v || v->type == RB_JSON_NULL) return 0;
    if (v->type != RB_JSON_NUMBER)
        return srv_error(c, 400, key, "'%s' must be %s, got %s", key, integer ? "an integer" : "a number",
                         rb_json_type_name(v->type)), -1;
    if (integer && v->number != floor(v->number))
        return srv_error(c, 400, key, "'%s' must be an integer, got %g", key, v->number), -1;
    if (!(v->number >= lo && v->number <= hi))
        return srv_error(c, 400, key, "'%s' must be in %g..%g, got %g", key, lo, hi, v->number), -1;
    *out = v->number;
    return 1;
}

static int bool_field(struct srv_conn *c, const struct rb_json *obj, const char *key, int *out) {
    const struct rb_json *v = rb_json_get(obj, key);
    if (!v || v->type == RB_JSON_NULL) return 0;
    if (v->type != RB_JSON_TRUE && v->type != RB_JSON_FALSE)
        return srv_error(c, 400, key, "'%s' must be a boolean, got %s", key, rb_json_type_name(v->type)), -1;
    *out = v->type == RB_JSON_TRUE;
    return 1;
}

/* A seed when the request names none: requests differ, runs differ. */
static uint64_t fresh_seed(struct srv *s) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t z = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
                 (atomic_load(&s->n_requests) * 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u; /* splitmix64's finalizer */
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static int read_sampling(struct srv_conn *c, const struct rb_json *root, struct gen_req *r) {
    double v;
    int rc;
    r->sp = rbee_sampler_default_params();
    r->sp.seed = fresh_seed(c->srv);
    r->n_predict = -1;
    /* the newer name first, as OpenAI reads it */
    const char *max_names[] = { "max_completion_tokens", "max_tokens", "n_predict" };
    for (int i = r->chat ? 0 : 1; i < 3; i++) {
        if ((rc = num_field(c, root, max_names[i], -1, 1 << 30, 1, &v)) < 0) return -1;
        if (rc) {
            r->n_predict = (int)v;
            break;
        }
    }
    if ((rc = num_field(c, root, "temperature", 0, 100, 0, &v)) < 0) return -1;
    if (rc) r->sp.temp = (float)v;
    if ((rc = num_field(c, root, "top_p", 0, 1, 0, &v)) < 0) return -1;
    if (rc) r->sp.top_p = (float)v;
    if ((rc = num_field(c, root, "min_p", 0, 1, 0, &v)) < 0) return -1;
    if (rc) r->sp.min_p = (float)v;
    if ((rc = num_field(c, root, "top_k", 0, 1 << 30, 1, &v)) < 0) return -1;
    if (rc) r->sp.top_k = (int)v;
    if ((rc = num_field(c, root, "repeat_penalty", 0, 100, 0, &v)) < 0) return -1;
    if (rc) r->sp.repeat_penalty = (float)v;
    /* -1: a fresh seed, as llama.cpp's server reads it */
    if ((rc = num_field(c, root, "seed", -1, 9007199254740992.0, 1, &v)) < 0) return -1;
    if (rc && v >= 0) r->sp.seed = (uint64_t)v;
    if ((rc = num_field(c, root, "n", 1, 1, 1, &v)) < 0) return -1;
    return 0;
}

static int read_stream(struct srv_conn *c, const struct rb_json *root, struct gen_req *r) {
    if (bool_field(c, root, "stream", &r->stream) < 0) return -1;
    const struct rb_json *so = rb_json_get(root, "stream_options");
    if (so && so->type != RB_JSON_NULL && so->type != RB_JSON_OBJECT)
        return srv_error(c, 400, "stream_options", "'stream_options' must be an object, got %s",
                         rb_json_type_name(so->type)), -1;
    return bool_field(c, so, "include_usage", &r->include_usage) < 0 ? -1 : 0;
}

/* "stop": a string or an array of strings; empty ones stop nothing. */
static int read_stop(struct srv_conn *c, const struct rb_json *root, struct gen_req *r) {
    const struct rb_json *v = rb_json_get(root, "stop");
    if (!v || v->type == RB_JSON_NULL) return 0;
    if (v->type != RB_JSON_STRING && v->type != RB_JSON_ARRAY)
        return srv_error(c, 400, "stop", "'stop' must be a string or an array of strings, got %s",
                         rb_json_type_name(v->type)), -1;
    const struct rb_json *e = v->type == RB_JSON_STRING ? v : v->child;
    if (v->type == RB_JSON_ARRAY && v->n_children > SRV_MAX_STOP)
        return srv_error(c, 400, "stop", "'stop' has %zu strings, at most %d are taken", v->n_children,
                         SRV_MAX_STOP), -1;
    for (; e; e = v->type == RB_JSON_STRING ? NULL : e->next) {
        if (e->type != RB_JSON_STRING)
            return srv_error(c, 400, "stop", "'stop' must hold strings, got %s", rb_json_type_name(e->type)), -1;
        if (e->len == 0) continue;
        if (strlen(e->str) != e->len)
            return srv_error(c, 400, "stop", "a stop string holds a NUL character"), -1;
        r->stop[r->n_stop++] = e->str;
    }
    return 0;
}

/* "prompt": a string, or an array holding one string. */
static int read_prompt(struct srv_conn *c, const struct rb_json *root, struct gen_req *r) {
    const struct rb_json *p = rb_json_get(root, "prompt");
    if (!p) return srv_error(c, 400, "prompt", "'prompt' is required"), -1;
    if (p->type == RB_JSON_ARRAY && p->n_children == 1) p = p->child;
    else if (p->type == RB_JSON_ARRAY)
        return srv_error(c, 400, "prompt", "'prompt' must be one string (got an array of %zu)", p->n_children), -1;
    if (p->type != RB_JSON_STRING)
        return srv_error(c, 400, "prompt", "'prompt' must be a string, got %s", rb_json_type_name(p->type)), -1;
    r->prompt = p->str;
    r->prompt_len = p->len;
    return 0;
}

/* A message's content: a string, null, or an array of {"type":"text","text":...}
 * parts joined by newlines (as llama.cpp b4748 joins them). */
static int read_content(struct srv_conn *c, const struct rb_json *v, size_t i, struct rb_buf *store) {
    if (!v) return srv_error(c, 400, "messages", "messages[%zu] has no 'content'", i), -1;
    if (v->type == RB_JSON_NULL) return 0;
    if (v->type == RB_JSON_STRING) {
        rb_buf_add(store, v->str, v->len);
        return 0;
    }
    if (v->type != RB_JSON_ARRAY)
        return srv_error(c, 400, "messages", "messages[%zu].content must be a string or an array of parts, got %s",
                         i, rb_json_type_name(v->type)), -1;
    int first = 1;
    for (const struct rb_json *part = v->child; part; part = part->next) {
        const struct rb_json *type = rb_json_get(part, "type"), *text = rb_json_get(part, "text");
        if (!type || type->type != RB_JSON_STRING || strcmp(type->str, "text"))
            return srv_error(c, 400, "messages", "messages[%zu].content: only parts of type \"text\" are served", i), -1;
        if (!text || text->type != RB_JSON_STRING)
            return srv_error(c, 400, "messages", "messages[%zu].content: a text part needs a string 'text'", i), -1;
        if (!first) rb_buf_add(store, "\n", 1);
        rb_buf_add(store, text->str, text->len);
        first = 0;
    }
    return 0;
}

/* "messages" through the chat template into r->rendered. */
static int read_messages(struct srv_conn *c, const struct rb_json *root, struct gen_req *r) {
    const struct rb_json *ms = rb_json_get(root, "messages");
    if (!ms) return srv_error(c, 400, "messages", "'messages' is required"), -1;
    if (ms->type != RB_JSON_ARRAY || ms->n_children == 0)
        return srv_error(c, 400, "messages", "'messages' must be a non-empty array, got %s%s",
                         ms->type == RB_JSON_ARRAY ? "an empty " : "", rb_json_type_name(ms->type)), -1;
    size_t n = ms->n_children, i = 0;
    struct rbee_chat_message *msgs = calloc(n, sizeof *msgs);
    size_t *at = calloc(n, sizeof *at); /* where each content starts in store (it moves as it grows) */
    struct rb_buf store = { 0 };
    char err[RBEE_ERR_MAX];
    int rc = -1;
    if (!msgs || !at) {
        srv_error(c, 500, NULL, "out of memory");
        goto done;
    }
    for (const struct rb_json *m = ms->child; m; m = m->next, i++) {
        if (m->type != RB_JSON_OBJECT) {
            srv_error(c, 400, "messages", "messages[%zu] must be an object, got %s", i, rb_json_type_name(m->type));
            goto done;
        }
        const struct rb_json *role = rb_json_get(m, "role");
        if (!role || role->type != RB_JSON_STRING) {
            srv_error(c, 400, "messages", "messages[%zu].role must be a string", i);
            goto done;
        }
        msgs[i].role = role->str;
        at[i] = store.len;
        if (read_content(c, rb_json_get(m, "content"), i, &store)) goto done;
        rb_buf_add(&store, "", 1); /* each content NUL-terminated in place */
    }
    if (store.failed) {
        srv_error(c, 500, NULL, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++) msgs[i].content = store.data + at[i];
    if (render_chat(c->srv, msgs, n, &r->rendered, err)) {
        srv_error(c, 500, NULL, "chat template: %s", err);
        goto done;
    }
    r->prompt = r->rendered.data;
    r->prompt_len = r->rendered.len;
    rc = 0;
done:
    free(msgs);
    free(at);
    rb_buf_free(&store);
    return rc;
}

static int read_request(struct srv_conn *c, const struct rb_json *root, struct gen_req *r) {
    if (root->type != RB_JSON_OBJECT)
        return srv_error(c, 400, NULL, "the request body must be a JSON object, got %s", rb_json_type_name(root->type)), -1;
    if (read_sampling(c, root, r) || read_stream(c, root, r) || read_stop(c, root, r)) return -1;
    return r->chat ? read_messages(c, root, r) : read_prompt(c, root, r);
}

/* ------------------------------------------------------------ responses */

struct run {
    struct srv_conn *c;
    const struct gen_req *r;
    char id[48];
    long long created;
    struct rb_buf text; /* the whole answer, when not streamed */
};

/* {"id":...,"object":...,"created":...,"model":..., */
static void put_envelope(struct rb_buf *b, const struct run *x, const char *object) {
    rb_buf_printf(b, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%lld,\"model\":", x->id, object, x->created);
    rb_json_put_string(b, x->c->srv->model_id, strlen(x->c->srv->model_id));
}

static void put_usage(struct rb_buf *b, const struct rbee_gen_result *res) {
    rb_buf_printf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":%d}}",
                  res->n_prompt, res->n_generated, res->n_prompt + res->n_generated, res->n_prompt - res->n_prompt_eval);
}

/* One streamed chunk: text (may be empty), finish (NULL while running),
 * res for usage on the last one. role_chunk: chat's opening chunk. */
static int send_chunk(struct run *x, const char *text, size_t n, const char *finish,
                      const struct rbee_gen_result *res, int role_chunk) {
    struct rb_buf b = { 0 };
    put_envelope(&b, x, x->r->chat ? "chat.completion.chunk" : "text_completion");
    rb_buf_puts(&b, ",\"choices\":[{\"index\":0,");
    if (!x->r->chat) {
        rb_buf_puts(&b, "\"text\":");
        rb_json_put_string(&b, text, n);
    } else if (role_chunk) {
        rb_buf_puts(&b, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}");
    } else if (finish) {
        rb_buf_puts(&b, "\"delta\":{}");
    } else {
        rb_buf_puts(&b, "\"delta\":{\"content\":");
        rb_json_put_string(&b, text, n);
        rb_buf_puts(&b, "}");
    }
    rb_buf_puts(&b, ",\"logprobs\":null,\"finish_reason\":");
    rb_buf_puts(&b, finish ? finish : "null");
    rb_buf_puts(&b, "}]");
    if (res) {
        rb_buf_puts(&b, ",");
        put_usage(&b, res);
    }
    rb_buf_puts(&b, "}");
    int rc = b.failed ? -1 : srv_stream_event(x->c, b.data, b.len);
    rb_buf_free(&b);
    return rc;
}

/* OpenAI's separate usage chunk (stream_options.include_usage): no choices. */
static int send_usage_chunk(struct run *x, const struct rbee_gen_result *res) {
    struct rb_buf b = { 0 };
    put_envelope(&b, x, x->r->chat ? "chat.completion.chunk" : "text_completion");
    rb_buf_puts(&b, ",\"choices\":[],");
    put_usage(&b, res);
    rb_buf_puts(&b, "}");
    int rc = b.failed ? -1 : srv_stream_event(x->c, b.data, b.len);
    rb_buf_free(&b);
    return rc;
}

static void send_whole(struct run *x, const char *finish, const struct rbee_gen_result *res) {
    struct rb_buf b = { 0 };
    put_envelope(&b, x, x->r->chat ? "chat.completion" : "text_completion");
    rb_buf_puts(&b, ",\"choices\":[{\"index\":0,");
    if (x->r->chat) {
        rb_buf_puts(&b, "\"message\":{\"role\":\"assistant\",\"content\":");
        rb_json_put_string(&b, x->text.data ? x->text.data : "", x->text.len);
        rb_buf_puts(&b, "}");
    } else {
        rb_buf_puts(&b, "\"text\":");
        rb_json_put_string(&b, x->text.data ? x->text.data : "", x->text.len);
    }
    rb_buf_printf(&b, ",\"logprobs\":null,\"finish_reason\":%s}],", finish);
    put_usage(&b, res);
    rb_buf_puts(&b, "}");
    if (b.failed || x->text.failed) srv_error(x->c, 500, NULL, "out of memory");
    else srv_respond(x->c, 200, "application/json", b.data, b.len);
    rb_buf_free(&b);
}

/* Each final piece of text: streamed as a chunk, or kept for the whole
 * answer. Non-zero (the client does not take the chunk) cancels; a client
 * that hangs up otherwise is caught by srv_watch_main. */
static int on_text(void *user, const char *text, size_t n) {
    struct run *x = user;
    if (x->r->stream) return send_chunk(x, text, n, NULL, NULL, 0) != 0;
    rb_buf_add(&x->text, text, n);
    return 0;
}

/* ------------------------------------------------------------ generation */

/* The prompt's tokens as llama.cpp's server makes them: BOS/EOS as the
 * vocabulary adds them, control-token text (<|im_start|>) parsed. malloc'ed;
 * the count, or -1 with err. */
static int tokenize(const rbee_model *m, const char *text, size_t len, int32_t **out, char *err) {
    int64_t n = rbee_tokenize(m, text, len, -1, 1, NULL, 0, err); /* the count first */
    if (n < 0) return -1;
    if (n > INT32_MAX / 2) {
        snprintf(err, RBEE_ERR_MAX, "%lld tokens", (long long)n);
        return -1;
    }
    int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    if (!ids) {
        snprintf(err, RBEE_ERR_MAX, "out of memory");
        return -1;
    }
    if (rbee_tokenize(m, text, len, -1, 1, ids, n, err) != n) {
        free(ids);
        return -1;
    }
    *out = ids;
    return (int)n;
}

static void generate(struct srv_conn *c, struct gen_req *r) {
    struct srv *s = c->srv;
    char err[RBEE_ERR_MAX];
    int32_t *ids = NULL;
    int n = tokenize(s->model, r->prompt, r->prompt_len, &ids, err);
    if (n < 0) {
        srv_error(c, 400, r->chat ? "messages" : "prompt", "cannot tokenize the prompt: %s", err);
        return;
    }
    if (n == 0 || n > s->n_ctx) {
        free(ids);
        if (n == 0) srv_error(c, 400, r->chat ? "messages" : "prompt", "the prompt is empty");
        else srv_error(c, 400, r->chat ? "messages" : "prompt",
                       "the prompt is %d tokens, more than the context of %d (raise -c)", n, s->n_ctx);
        return;
    }
    int slot = srv_slot_acquire(s, c, ids, n);
    if (slot < 0) {
        free(ids);
        if (slot == -1) srv_error(c, 503, NULL, "the server is busy: %d requests are waiting already", s->o.queue);
        else if (atomic_load(&s->stopping)) srv_error(c, 503, NULL, "the server is stopping");
        else snprintf(c->log_extra, sizeof c->log_extra, "client gone while queued");
        return;
    }
    uint64_t seq = atomic_fetch_add(&s->n_requests, 1);
    struct run x = { .c = c, .r = r, .created = (long long)time(NULL) };
    snprintf(x.id, sizeof x.id, "%s-%llx%06llx", r->chat ? "chatcmpl" : "cmpl", (unsigned long long)x.created,
             (unsigned long long)(seq & 0xffffff));
    struct rbee_gen_params gp = {
        .n_predict = r->n_predict, .sampling = r->sp, .stop = r->stop, .n_stop = r->n_stop,
        .cancel = &s->slots[slot].cancel, .on_text = on_text, .user = &x,
    };
    struct rbee_gen_result res;
    memset(&res, 0, sizeof res);
    int failed = 0;
    if (r->stream && (srv_stream_begin(c) || (r->chat && send_chunk(&x, "", 0, NULL, NULL, 1)))) {
        failed = 1;
    } else if (rbee_session_generate(s->slots[slot].session, ids, n, &gp, &res, err)) {
        failed = 1;
        srv_error(c, 500, NULL, "generation failed: %s", err);
    }
    srv_slot_release(s, slot);
    free(ids);
    const char *finish = NULL; /* NULL: failed or cancelled */
    if (!failed && res.finish == RBEE_FINISH_STOP) finish = "\"stop\"";
    else if (!failed && (res.finish == RBEE_FINISH_LENGTH || res.finish == RBEE_FINISH_CONTEXT)) finish = "\"length\"";
    const char *how = failed ? (c->gone ? "client gone" : "failed")
                    : finish ? (res.finish == RBEE_FINISH_STOP ? "stop" : "length")
                    : c->gone || srv_client_gone(c) ? "client gone" : "cancelled";
    snprintf(c->log_extra, sizeof c->log_extra, "slot %d: prompt %d (%d cached) %.0f ms + %d tokens %.0f ms (%.1f t/s), %s",
             slot, res.n_prompt, res.n_prompt - res.n_prompt_eval, res.prompt_ms, res.n_generated, res.gen_ms,
             res.gen_ms > 0 ? 1e3 * res.n_generated / res.gen_ms : 0.0, how);
    if (failed) {
        /* answered already (an error), or the client is gone */
    } else if (!finish) {
        /* cancelled: the client hung up (nothing to send) or the server stops */
        if (!c->gone && atomic_load(&s->stopping)) srv_error(c, 503, NULL, "the server is stopping");
    } else if (r->stream) {
        if (!send_chunk(&x, "", 0, finish, &res, 0) && (!r->include_usage || !send_usage_chunk(&x, &res)))
            srv_stream_end(c);
    } else {
        send_whole(&x, finish, &res);
    }
    rb_buf_free(&x.text);
}

void srv_api_generate(struct srv_conn *c, const char *body, size_t n, int chat) {
    struct rb_json_doc *doc = NULL;
    char err[RB_JSON_ERR_MAX];
    if (rb_json_parse(body, n, 0, &doc, err)) {
        srv_error(c, 400, NULL, "invalid JSON in the request body: %s", err);
        return;
    }
    struct gen_req r;
    memset(&r, 0, sizeof r);
    r.chat = chat;
    if (!read_request(c, rb_json_root(doc), &r)) generate(c, &r);
    rb_buf_free(&r.rendered);
    rb_json_free(doc);
}

void srv_api_models(struct srv_conn *c) {
    struct srv *s = c->srv;
    struct rb_buf b = { 0 };
    struct rbee_model_info info;
    rbee_model_get_info(s->model, &info);
    rb_buf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    rb_json_put_string(&b, s->model_id, strlen(s->model_id));
    rb_buf_printf(&b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"rbee\",\"meta\":{\"arch\":", s->started);
    rb_json_put_string(&b, info.arch, strlen(info.arch));
    rb_buf_printf(&b, ",\"n_params\":%lld,\"n_vocab\":%d,\"n_ctx_train\":%d,\"n_ctx\":%d,\"slots\":%d}}]}",
                  (long long)info.n_params, info.n_vocab, info.n_ctx_train, s->n_ctx, s->o.parallel);
    if (b.failed) srv_error(c, 500, NULL, "out of memory");
    else srv_respond(c, 200, "application/json", b.data, b.len);
    rb_buf_free(&b);
}
