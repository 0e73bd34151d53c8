/* test_serve.c - `rbee serve` as a client sees it: the server is started
 * from the rbee binary of this build (build-asan/rbee under the sanitizer
 * build) on a free 127.0.0.1 port, and stopped with SIGTERM by the test,
 * which checks it exits 0.
 *
 * With curl: greedy /v1/completions text equals `rbee run --temp 0` on the
 * same prompt (stories260K and gpt2-mini), and streamed chunks concatenate
 * to it. Over raw sockets: 16 concurrent requests over 4 slots all give
 * the same greedy text; a follow-up prompt reuses its slot's cache; every
 * error case gets its status and an OpenAI error object; keep-alive and
 * pipelining; a slow client gets 408; the API key. On a synthetic
 * TinyLlama (slow enough to hang up on, written once into build/serve/):
 * a client that hangs up mid-stream frees the slot at once, a full queue
 * gives 503, and SIGTERM during a stream exits 0 promptly. */
#include "test.h"
#include "serve_client.h"

#define N_TOK 120

static char model[512], gpt2[512], slow_model[512];
static struct sc_server S; /* stories260K, 4 slots, --timeout 2 */
static const char *const prompts[2] = { "Once upon a time", "The little dog" };
static char greedy[2][8192]; /* rbee run's continuation of each prompt */

/* stdout of a shell command (stderr dropped), or -1. */
static int capture(const char *cmd, char *out, size_t cap) {
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `rbee run --temp 0` minus the echoed prompt. */
static int run_greedy(const char *path, const char *prompt, int n, char *out, size_t cap) {
    char cmd[1024];
    static char buf[1 << 16];
    snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p '%s' -n %d --temp 0 -t 1 2>/dev/null", sc_rbee_path(), path, prompt, n);
    if (capture(cmd, buf, sizeof buf) != 0 || strncmp(buf, prompt, strlen(prompt))) {
        TEST_FAIL_AT("rbee run failed or did not echo the prompt: %s", buf);
        return -1;
    }
    snprintf(out, cap, "%s", buf + strlen(prompt));
    return 0;
}

/* POST /v1/completions with curl; the parsed JSON body. */
static struct rb_json_doc *curl_completion(int port, const char *json, char *raw, size_t cap) {
    char cmd[2048], err[RB_JSON_ERR_MAX];
    snprintf(cmd, sizeof cmd, "curl -sS -N --max-time 120 -H 'Content-Type: application/json' "
             "http://127.0.0.1:%d/v1/completions -d '%s'", port, json);
    if (capture(cmd, raw, cap) != 0) {
        TEST_FAIL_AT("curl failed: %s", raw);
        return NULL;
    }
    struct rb_json_doc *d = NULL;
    if (!strstr(json, "\"stream\":true") && rb_json_parse(raw, strlen(raw), 0, &d, err))
        TEST_FAIL_AT("not JSON (%s): %s", err, raw);
    return d;
}

static void completion_json(char *out, size_t cap, const char *prompt, int n, const char *more) {
    snprintf(out, cap, "{\"model\":\"x\",\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":0%s}", prompt, n, more);
}

/* ------------------------------------------------------------ greedy text */

TEST(greedy_completion_equals_run) {
    static char raw[1 << 16];
    char json[512];
    for (int i = 0; i < 2; i++) {
        if (run_greedy(model, prompts[i], N_TOK, greedy[i], sizeof greedy[i])) return;
        completion_json(json, sizeof json, prompts[i], N_TOK, "");
        struct rb_json_doc *d = curl_completion(S.port, json, raw, sizeof raw);
        if (!d) return;
        const struct rb_json *r = rb_json_root(d);
        CHECK_STR(sc_json_str(r, "choices.0.text"), greedy[i]);
        CHECK_STR(sc_json_str(r, "object"), "text_completion");
        CHECK_STR(sc_json_str(r, "model"), "stories260K.gguf");
        CHECK(!strncmp(sc_json_str(r, "id") ? sc_json_str(r, "id") : "", "cmpl-", 5));
        CHECK_STR(sc_json_str(r, "choices.0.finish_reason"), "length");
        CHECK_NEAR(sc_json_num(r, "usage.completion_tokens"), N_TOK, 0);
        CHECK_NEAR(sc_json_num(r, "usage.prompt_tokens"), 5, 0); /* BOS + 4 */
        CHECK_NEAR(sc_json_num(r, "usage.total_tokens"), N_TOK + 5, 0);
        rb_json_free(d);
    }
    CHECK_CONTAINS(greedy[0], ", there was a little girl named Lily.");
    /* a byte-level BPE model too (gpt2-mini: noise text, but the same noise) */
    struct sc_server g;
    const char *extra[] = { "-t", "1", NULL };
    if (sc_start(&g, gpt2, extra)) { TEST_FAIL_AT("gpt2 server did not start"); return; }
    char want[8192];
    if (!run_greedy(gpt2, "Hello world, this is", 24, want, sizeof want)) {
        completion_json(json, sizeof json, "Hello world, this is", 24, "");
        struct rb_json_doc *d = curl_completion(g.port, json, raw, sizeof raw);
        if (d) CHECK_STR(sc_json_str(rb_json_root(d), "choices.0.text"), want);
        rb_json_free(d);
    }
    CHECK_EQ_INT(sc_stop(&g, SIGTERM, 10000, NULL), 0);
}

TEST(stream_chunks_concatenate) {
    static char raw[1 << 17];
    char json[512];
    static struct sc_stream st;
    completion_json(json, sizeof json, prompts[0], N_TOK, ",\"stream\":true");
    curl_completion(S.port, json, raw, sizeof raw);
    sc_read_stream(raw, 0, &st);
    CHECK_STR(st.text, greedy[0]);
    CHECK(st.n_events >= 10); /* one piece of text each, not one lump */
    CHECK_EQ_INT(st.n_bad, 0);
    CHECK_EQ_INT(st.done_last, 1);
    CHECK_STR(st.finish, "length");
    CHECK_EQ_INT(st.completion_tokens, N_TOK);
    CHECK_EQ_INT(st.prompt_tokens, 5);
    /* stream_options.include_usage: OpenAI's usage chunk with no choices */
    completion_json(json, sizeof json, prompts[1], 8, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    curl_completion(S.port, json, raw, sizeof raw);
    CHECK_CONTAINS(raw, "\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":8,");
    /* an HTTP/1.0 client gets the events without chunked encoding, ended by the close */
    char req[1024];
    completion_json(json, sizeof json, prompts[1], N_TOK, ",\"stream\":true");
    int n = snprintf(req, sizeof req, "POST /v1/completions HTTP/1.0\r\nContent-Length: %zu\r\n\r\n%s", strlen(json), json);
    struct sc_resp r;
    CHECK_EQ_INT(sc_exchange(S.port, req, (size_t)n, &r, 60000), 200);
    char h[64];
    CHECK_STR(sc_header(&r, "Transfer-Encoding", h, sizeof h), "");
    CHECK_STR(sc_header(&r, "Content-Type", h, sizeof h), "text/event-stream");
    sc_read_stream(r.body ? r.body : "", 0, &st);
    CHECK_STR(st.text, greedy[1]);
    CHECK_EQ_INT(st.done_last, 1);
    sc_resp_free(&r);
}

/* stop strings cut the text (and end it with "stop"); a seed repeats a
 * sampled answer, another seed changes it; top_k 1 is greedy. */
TEST(stop_and_sampling_fields) {
    static char raw[1 << 16];
    static struct sc_stream st;
    char json[512], first[4096];
    completion_json(json, sizeof json, prompts[0], N_TOK, ",\"stop\":[\"zzz\",\" little\"]");
    struct rb_json_doc *d = curl_completion(S.port, json, raw, sizeof raw);
    if (d) {
        CHECK_STR(sc_json_str(rb_json_root(d), "choices.0.text"), ", there was a");
        CHECK_STR(sc_json_str(rb_json_root(d), "choices.0.finish_reason"), "stop");
    }
    rb_json_free(d);
    completion_json(json, sizeof json, prompts[0], N_TOK, ",\"stop\":\"Lily\",\"stream\":true");
    curl_completion(S.port, json, raw, sizeof raw);
    sc_read_stream(raw, 0, &st);
    CHECK_STR(st.text, ", there was a little girl named ");
    CHECK_STR(st.finish, "stop");
    const char *sampled = "{\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"temperature\":1.0,\"seed\":%d%s}";
    snprintf(json, sizeof json, sampled, 5, "");
    d = curl_completion(S.port, json, raw, sizeof raw);
    snprintf(first, sizeof first, "%s", d && sc_json_str(rb_json_root(d), "choices.0.text") ?
             sc_json_str(rb_json_root(d), "choices.0.text") : "?");
    rb_json_free(d);
    d = curl_completion(S.port, json, raw, sizeof raw);
    if (d) CHECK_STR(sc_json_str(rb_json_root(d), "choices.0.text"), first);
    rb_json_free(d);
    snprintf(json, sizeof json, sampled, 6, "");
    d = curl_completion(S.port, json, raw, sizeof raw);
    CHECK(d && strcmp(sc_json_str(rb_json_root(d), "choices.0.text"), first) != 0);
    rb_json_free(d);
    snprintf(json, sizeof json, "{\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":1.0,\"top_k\":1,\"seed\":6}",
             prompts[0], N_TOK);
    d = curl_completion(S.port, json, raw, sizeof raw);
    if (d) CHECK_STR(sc_json_str(rb_json_root(d), "choices.0.text"), greedy[0]);
    rb_json_free(d);
}

/* ------------------------------------------------------------ chat */

/* POST json to path; the parsed body (NULL and a failed check otherwise). */
static struct rb_json_doc *post_json(int port, const char *path, const char *json, int want_status) {
    struct sc_resp r;
    char err[RB_JSON_ERR_MAX];
    struct rb_json_doc *d = NULL;
    int status = sc_post(port, path, json, NULL, &r);
    CHECK_MSG(status == want_status, "%s: status %d, want %d: %s", path, status, want_status, r.body ? r.body : "");
    if (!r.body || rb_json_parse(r.body, r.body_len, 0, &d, err)) TEST_FAIL_AT("%s: not JSON: %s", path, r.body);
    sc_resp_free(&r);
    return d;
}

#define SYSTEM "You are a storyteller."
#define USER "Tell me a story."

/* stories260K has no chat template: the server says so and uses chatml,
 * whose text the test writes out itself. The reply equals a completion of
 * that text; streamed deltas concatenate to it; the next turn, which
 * repeats the conversation, reuses the cache for all of it. */
TEST(chat_completions) {
    static char raw[1 << 16], reply[4096], json[16384];
    static struct sc_stream st;
    CHECK(sc_log_has(&S, "the model has no chat template: chat requests use chatml"));
    const char *msgs = "[{\"role\":\"system\",\"content\":\"" SYSTEM "\"},{\"role\":\"user\",\"content\":\"" USER "\"}]";
    snprintf(json, sizeof json, "{\"messages\":%s,\"max_tokens\":24,\"temperature\":0}", msgs);
    struct rb_json_doc *d = post_json(S.port, "/v1/chat/completions", json, 200);
    if (!d) return;
    const struct rb_json *root = rb_json_root(d);
    CHECK_STR(sc_json_str(root, "object"), "chat.completion");
    CHECK(!strncmp(sc_json_str(root, "id") ? sc_json_str(root, "id") : "", "chatcmpl-", 9));
    CHECK_STR(sc_json_str(root, "choices.0.message.role"), "assistant");
    snprintf(reply, sizeof reply, "%s", sc_json_str(root, "choices.0.message.content") ?
             sc_json_str(root, "choices.0.message.content") : "(none)");
    CHECK(strlen(reply) > 10);
    int n1 = (int)sc_json_num(root, "usage.prompt_tokens"), g1 = (int)sc_json_num(root, "usage.completion_tokens");
    CHECK_STR(sc_json_str(root, "choices.0.finish_reason"), g1 == 24 ? "length" : "stop");
    rb_json_free(d);

    snprintf(json, sizeof json, "{\"prompt\":\"<|im_start|>system\\n" SYSTEM "<|im_end|>\\n<|im_start|>user\\n" USER
             "<|im_end|>\\n<|im_start|>assistant\\n\",\"max_tokens\":24,\"temperature\":0}");
    d = post_json(S.port, "/v1/completions", json, 200);
    if (d) {
        CHECK_STR(sc_json_str(rb_json_root(d), "choices.0.text"), reply);
        CHECK_NEAR(sc_json_num(rb_json_root(d), "usage.prompt_tokens"), n1, 0);
    }
    rb_json_free(d);

    snprintf(json, sizeof json, "{\"messages\":%s,\"max_tokens\":24,\"temperature\":0,\"stream\":true}", msgs);
    char cmd[17000];
    snprintf(cmd, sizeof cmd, "curl -sS -N --max-time 60 http://127.0.0.1:%d/v1/chat/completions -d '%s'", S.port, json);
    CHECK_EQ_INT(capture(cmd, raw, sizeof raw), 0);
    sc_read_stream(raw, 1, &st);
    CHECK_STR(st.text, reply);
    CHECK_EQ_INT(st.done_last, 1);
    CHECK_EQ_INT(st.n_bad, 0);
    CHECK_CONTAINS(raw, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"}");
    CHECK_CONTAINS(raw, "\"object\":\"chat.completion.chunk\"");

    /* the next turn: the conversation so far is in the cache */
    static char escaped[6000];
    struct rb_buf b = { 0 };
    rb_json_put_string(&b, reply, strlen(reply));
    snprintf(escaped, sizeof escaped, "%s", b.data ? b.data : "\"\"");
    rb_buf_free(&b);
    snprintf(json, sizeof json, "{\"messages\":[{\"role\":\"system\",\"content\":\"" SYSTEM "\"},"
             "{\"role\":\"user\",\"content\":\"" USER "\"},{\"role\":\"assistant\",\"content\":%s},"
             "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"And then?\"}]}],"
             "\"max_tokens\":4,\"temperature\":0}", escaped);
    d = post_json(S.port, "/v1/chat/completions", json, 200);
    if (d) {
        int cached = (int)sc_json_num(rb_json_root(d), "usage.prompt_tokens_details.cached_tokens");
        CHECK_MSG(cached >= n1 + g1 - 1, "turn 2 reused %d tokens of a first exchange of %d + %d", cached, n1, g1);
    }
    rb_json_free(d);
}

/* ------------------------------------------------------------ concurrency */

struct job {
    int prompt, status;
    char text[8192];
};

static void *one_request(void *arg) {
    struct job *j = arg;
    char json[512], err[RB_JSON_ERR_MAX];
    completion_json(json, sizeof json, prompts[j->prompt], N_TOK, "");
    struct sc_resp r;
    j->status = sc_post(S.port, "/v1/completions", json, NULL, &r);
    struct rb_json_doc *d = NULL;
    if (r.body && !rb_json_parse(r.body, r.body_len, 0, &d, err)) {
        const char *t = sc_json_str(rb_json_root(d), "choices.0.text");
        snprintf(j->text, sizeof j->text, "%s", t ? t : "(no text)");
    }
    rb_json_free(d);
    sc_resp_free(&r);
    return NULL;
}

TEST(sixteen_concurrent_requests) {
    static struct job jobs[16];
    pthread_t t[16];
    for (int i = 0; i < 16; i++) {
        jobs[i].prompt = i % 2;
        CHECK(pthread_create(&t[i], NULL, one_request, &jobs[i]) == 0);
    }
    for (int i = 0; i < 16; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 16; i++) {
        CHECK_EQ_INT(jobs[i].status, 200);
        CHECK_STR(jobs[i].text, greedy[i % 2]);
    }
    CHECK(sc_log_has(&S, "slot 3:")); /* all four slots ran */
}

/* A follow-up prompt that extends an earlier one lands on the slot holding
 * it and evaluates only the new tokens. */
TEST(follow_up_reuses_the_cache) {
    char json[4096], err[RB_JSON_ERR_MAX];
    const char *p1 = "Lily and Ben went to the park";
    completion_json(json, sizeof json, p1, 24, "");
    struct sc_resp r;
    CHECK_EQ_INT(sc_post(S.port, "/v1/completions", json, NULL, &r), 200);
    struct rb_json_doc *d = NULL;
    if (!r.body || rb_json_parse(r.body, r.body_len, 0, &d, err)) { TEST_FAIL_AT("no JSON"); sc_resp_free(&r); return; }
    const struct rb_json *root = rb_json_root(d);
    int n1 = (int)sc_json_num(root, "usage.total_tokens");
    CHECK(sc_json_num(root, "usage.prompt_tokens_details.cached_tokens") <= 1); /* BOS at most: a new prompt */
    char p2[2048];
    snprintf(p2, sizeof p2, "%s%s They", p1, sc_json_str(root, "choices.0.text"));
    rb_json_free(d);
    sc_resp_free(&r);
    completion_json(json, sizeof json, p2, 4, "");
    CHECK_EQ_INT(sc_post(S.port, "/v1/completions", json, NULL, &r), 200);
    d = NULL;
    if (!r.body || rb_json_parse(r.body, r.body_len, 0, &d, err)) { TEST_FAIL_AT("no JSON"); sc_resp_free(&r); return; }
    int cached = (int)sc_json_num(rb_json_root(d), "usage.prompt_tokens_details.cached_tokens");
    int n2 = (int)sc_json_num(rb_json_root(d), "usage.prompt_tokens");
    /* all of the first exchange but the reply's last token (the cache holds
     * what was evaluated), and only the new word is evaluated */
    CHECK_MSG(cached >= n1 - 1 && cached < n2, "cached %d of %d prompt tokens after an exchange of %d", cached, n2, n1);
    rb_json_free(d);
    sc_resp_free(&r);
}

/* ------------------------------------------------------------ hostile or broken clients */

struct bad_case {
    const char *request; /* %s: a JSON body with its Content-Length header, else raw */
    const char *body;
    int status;
    const char *needle;
};

TEST(errors_get_status_and_error_object) {
    static const struct bad_case cases[] = {
        { "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", NULL, 404, "not_found_error" },
        { "GET /v1/completions HTTP/1.1\r\nHost: a\r\n\r\n", NULL, 405, "takes POST" },
        { "DELETE /health HTTP/1.1\r\nHost: a\r\n\r\n", NULL, 405, "takes GET" },
        { "POST /v1/completions", "{\"prompt\":", 400, "invalid JSON" },
        { "POST /v1/completions", "{\"prompt\":\"a\",\"prompt\":\"b\"}", 400, "invalid JSON" },
        { "POST /v1/completions", "[1]", 400, "must be a JSON object" },
        { "POST /v1/completions", "{}", 400, "'prompt' is required" },
        { "POST /v1/completions", "{\"prompt\":5}", 400, "\"param\":\"prompt\"" },
        { "POST /v1/completions", "{\"prompt\":[\"a\",\"b\"]}", 400, "one string" },
        { "POST /v1/completions", "{\"prompt\":\"a\",\"max_tokens\":\"ten\"}", 400, "\"param\":\"max_tokens\"" },
        { "POST /v1/completions", "{\"prompt\":\"a\",\"max_tokens\":1.5}", 400, "must be an integer" },
        { "POST /v1/completions", "{\"prompt\":\"a\",\"temperature\":-1}", 400, "\"param\":\"temperature\"" },
        { "POST /v1/completions", "{\"prompt\":\"a\",\"top_p\":2}", 400, "\"param\":\"top_p\"" },
        { "POST /v1/completions", "{\"prompt\":\"a\",\"stream\":\"yes\"}", 400, "must be a boolean" },
        { "POST /v1/completions", "{\"prompt\":\"a\",\"stop\":[1]}", 400, "\"param\":\"stop\"" },
        { "POST /v1/completions", "{\"prompt\":\"a\",\"n\":2}", 400, "\"param\":\"n\"" },
        { "POST /v1/completions", "{\"prompt\":\"a\",\"stream_options\":5}", 400, "stream_options" },
        { "POST /v1/chat/completions", "{\"messages\":\"hi\"}", 400, "\"param\":\"messages\"" },
        { "POST /v1/chat/completions", "{\"messages\":[]}", 400, "non-empty array" },
        { "POST /v1/chat/completions", "{\"messages\":[{\"role\":\"user\"}]}", 400, "no 'content'" },
        { "POST /v1/chat/completions", "{\"messages\":[{\"content\":\"x\"}]}", 400, "role must be a string" },
        { "POST /v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
          400, "only parts of type" },
        { "GARBAGE\r\n\r\n", NULL, 400, "request line" },
        { "GET /health HTTP/2.0\r\nHost: a\r\n\r\n", NULL, 505, "HTTP/1.0 and HTTP/1.1" },
        { "GET /health HTTP/1.1\r\n\r\n", NULL, 400, "without a Host" },
        { "GET /health HTTP/1.1\r\nHost : a\r\n\r\n", NULL, 400, "colon" },
        { "POST /v1/completions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
          NULL, 501, "Content-Length" },
        { "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
          NULL, 400, "Content-Length" },
        /* over the 8 MiB body limit: answered without the body ever being sent */
        { "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 8388609\r\n\r\n", NULL, 413, "8388608" },
        { "POST /v1/completions HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}", NULL, 417, "100-continue" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad_case *bc = &cases[i];
        static char req[4096];
        int n = bc->body ? snprintf(req, sizeof req, "%s HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n%s",
                                    bc->request, strlen(bc->body), bc->body)
                         : snprintf(req, sizeof req, "%s", bc->request);
        struct sc_resp r;
        int status = sc_exchange(S.port, req, (size_t)n, &r, 10000);
        CHECK_MSG(status == bc->status, "case %zu (%.40s): status %d, want %d", i, bc->request, status, bc->status);
        CHECK_MSG(r.ms < 5000, "case %zu: %.0f ms", i, r.ms);
        struct rb_json_doc *d = NULL;
        char err[RB_JSON_ERR_MAX];
        if (!r.body || rb_json_parse(r.body, r.body_len, 0, &d, err)) {
            TEST_FAIL_AT("case %zu: the body is not JSON: %s", i, r.body ? r.body : "(none)");
        } else {
            const struct rb_json *root = rb_json_root(d);
            CHECK(sc_json_str(root, "error.message") != NULL);
            CHECK(sc_json_str(root, "error.type") != NULL);
            CHECK_NEAR(sc_json_num(root, "error.code"), bc->status, 0);
            CHECK_MSG(strstr(r.body, bc->needle) != NULL, "case %zu: \"%s\" lacks \"%s\"", i, r.body, bc->needle);
        }
        if (bc->status == 405) {
            char allow[32];
            CHECK(sc_header(&r, "Allow", allow, sizeof allow)[0] != 0);
        }
        rb_json_free(d);
        sc_resp_free(&r);
    }
    /* a prompt longer than the context */
    static char big[40000];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"prompt\":\"");
    for (int i = 0; i < 3000; i++) n += (size_t)snprintf(big + n, sizeof big - n, "a ");
    snprintf(big + n, sizeof big - n, "\"}");
    struct sc_resp r;
    CHECK_EQ_INT(sc_post(S.port, "/v1/completions", big, NULL, &r), 400);
    CHECK_CONTAINS(r.body, "more than the context of 2048");
    sc_resp_free(&r);
    /* still serving */
    CHECK_EQ_INT(sc_get(S.port, "/health", NULL, &r), 200);
    CHECK_STR(r.body, "{\"status\":\"ok\"}");
    sc_resp_free(&r);
}

/* One connection: three pipelined requests, answered in order; then
 * Expect: 100-continue gets its interim answer before the body is sent. */
TEST(keep_alive_pipelining_and_continue) {
    char json[256], req[2048];
    completion_json(json, sizeof json, prompts[0], 6, "");
    int n = snprintf(req, sizeof req,
                     "GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
                     "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n%s"
                     "GET /v1/models HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", strlen(json), json);
    struct sc_resp r;
    memset(&r, 0, sizeof r);
    int fd = sc_connect(S.port);
    CHECK(fd >= 0 && sc_send(fd, req, (size_t)n) == 0);
    sc_read_until(fd, &r, 30000, 1);
    close(fd);
    const char *a = r.raw ? strstr(r.raw, "{\"status\":\"ok\"}") : NULL;
    const char *b = a ? strstr(a, "\"text\":\", there was a little g\"") : NULL;
    const char *c = b ? strstr(b, "\"object\":\"list\"") : NULL;
    CHECK_MSG(a && b && c, "three answers in order: %s", r.raw ? r.raw : "(none)");
    sc_resp_free(&r);

    fd = sc_connect(S.port);
    n = snprintf(req, sizeof req, "POST /v1/completions HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
                 "Connection: close\r\nContent-Length: %zu\r\n\r\n", strlen(json));
    CHECK(fd >= 0 && sc_send(fd, req, (size_t)n) == 0);
    char got[64] = { 0 };
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 5000) > 0 && recv(fd, got, sizeof got - 1, 0) > 0)
        CHECK_STR(got, "HTTP/1.1 100 Continue\r\n\r\n");
    else
        TEST_FAIL_AT("no 100 Continue");
    CHECK(sc_send(fd, json, strlen(json)) == 0);
    memset(&r, 0, sizeof r);
    sc_read_all(fd, &r, 30000);
    close(fd);
    CHECK_EQ_INT(r.status, 200);
    sc_resp_free(&r);
}

/* --timeout 2: a head trickling in a byte at a time, and a body that stops
 * short, are cut off with 408 after 2 s, not served forever. */
TEST(slow_client_times_out) {
    int fd = sc_connect(S.port);
    double t0 = sc_now_ms();
    const char *head = "POST /v1/completions HTTP/1.1\r\nHost: a\r\nX-Slow: ";
    CHECK(fd >= 0 && sc_send(fd, head, strlen(head)) == 0);
    struct sc_resp r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 40; i++) { /* a byte every 200 ms, for up to 8 s */
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 200) > 0) break;
        if (sc_send(fd, "x", 1)) break;
    }
    sc_read_all(fd, &r, 5000);
    close(fd);
    double ms = sc_now_ms() - t0;
    CHECK_EQ_INT(r.status, 408);
    CHECK_MSG(ms > 1500 && ms < 6000, "408 after %.0f ms (--timeout 2)", ms);
    sc_resp_free(&r);

    const char *part = "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{\"prompt\":";
    t0 = sc_now_ms();
    CHECK_EQ_INT(sc_exchange(S.port, part, strlen(part), &r, 10000), 408);
    CHECK_MSG(r.ms > 1500 && r.ms < 6000, "408 after %.0f ms", r.ms);
    sc_resp_free(&r);
}

TEST(api_key) {
    struct sc_server k;
    const char *extra[] = { "--api-key", "sekrit", "-t", "1", NULL };
    if (sc_start(&k, model, extra)) { TEST_FAIL_AT("server did not start"); return; }
    struct sc_resp r;
    CHECK_EQ_INT(sc_get(k.port, "/health", NULL, &r), 200); /* liveness stays open */
    sc_resp_free(&r);
    CHECK_EQ_INT(sc_get(k.port, "/v1/models", NULL, &r), 401);
    CHECK_CONTAINS(r.body, "authentication_error");
    sc_resp_free(&r);
    CHECK_EQ_INT(sc_get(k.port, "/v1/models", "Authorization: Bearer sekri\r\n", &r), 401);
    sc_resp_free(&r);
    CHECK_EQ_INT(sc_get(k.port, "/v1/models", "Authorization: Bearer sekritt\r\n", &r), 401);
    sc_resp_free(&r);
    CHECK_EQ_INT(sc_get(k.port, "/v1/models", "Authorization: sekrit\r\n", &r), 401);
    sc_resp_free(&r);
    CHECK_EQ_INT(sc_get(k.port, "/v1/models", "Authorization: Bearer sekrit\r\n", &r), 200);
    sc_resp_free(&r);
    CHECK_EQ_INT(sc_post(k.port, "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":2}", NULL, &r), 401);
    sc_resp_free(&r);
    CHECK_EQ_INT(sc_post(k.port, "/v1/completions", "{\"prompt\":\"Once\",\"max_tokens\":2}",
                         "authorization: bearer sekrit\r\n", &r), 200);
    sc_resp_free(&r);
    CHECK_EQ_INT(sc_stop(&k, SIGINT, 10000, NULL), 0);
}

TEST(sigterm_exits_0) {
    double ms = 0;
    CHECK_EQ_INT(sc_stop(&S, SIGTERM, 10000, &ms), 0);
    CHECK_MSG(ms < 3000, "exit took %.0f ms", ms);
    CHECK(sc_log_has(&S, "rbee serve: SIGTERM: stopping"));
    CHECK(sc_log_has(&S, "rbee serve: stopped"));
}

/* Bad flags, a bad model, a taken port: one error line, exit status 1. */
TEST(bad_options_are_one_error_line) {
    static const struct { const char *args, *needle; } cases[] = {
        { "", "-m: a model file is required" },
        { "-m MODEL --port 70000", "--port: expected an integer in 0..65535, got '70000'" },
        { "-m MODEL --parallel 0", "--parallel: expected an integer in 1..256" },
        { "-m MODEL --bogus 1", "--bogus: unknown option" },
        { "-m MODEL --timeout", "--timeout: missing value" },
        { "-m MODEL --api-key ''", "--api-key: the key is empty" },
        { "-m /nonexistent.gguf", "/nonexistent.gguf: " },
        { "-m MODEL --kv-type q5_1", "not one of f32, f16, q8_0, q4_0" },
        { "-m MODEL --chat-template nosuch", "is neither a built-in name nor a template rbee recognizes" },
        { "-m MODEL --host 192.0.2.1", "--port: cannot listen on 192.0.2.1 port 8080" }, /* not ours: no bind */
        { "-m MODEL --host 127.0.0.1 --port PORT", "--port: cannot listen on 127.0.0.1 port" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[512], cmd[1024], out[4096], port[16];
        snprintf(port, sizeof port, "%d", S.port); /* S is listening there */
        snprintf(args, sizeof args, "%s", cases[i].args);
        for (char *p; (p = strstr(args, "MODEL")) || (p = strstr(args, "PORT"));) {
            char rest[512];
            int model_ = p[0] == 'M';
            snprintf(rest, sizeof rest, "%s", p + (model_ ? 5 : 4));
            snprintf(p, sizeof args - (size_t)(p - args), "%s%s", model_ ? model : port, rest);
        }
        snprintf(cmd, sizeof cmd, "'%s' serve %s 2>&1", sc_rbee_path(), args);
        int rc = capture(cmd, out, sizeof out);
        CHECK_MSG(rc == 1, "serve %s: exit %d", args, rc);
        CHECK_MSG(!strncmp(out, "rbee: error: ", 13) && strchr(out, '\n') == out + strlen(out) - 1,
                  "serve %s: not one error line: %s", args, out);
        CHECK_CONTAINS(out, cases[i].needle);
    }
}

/* ------------------------------------------------------------ a slow model */

static struct sc_server T; /* the synthetic TinyLlama: 1 slot, queue of 1 */

/* Open a stream of n tokens and wait for its first events; the fd, or -1. */
static int open_stream(int port, int n_tokens, int n_events) {
    char json[256];
    snprintf(json, sizeof json, "{\"prompt\":\"Once upon a time\",\"max_tokens\":%d,\"stream\":true}", n_tokens);
    int fd = sc_post_send(port, "/v1/completions", json, NULL);
    if (fd < 0) return -1;
    char buf[8192];
    int seen = 0;
    double until = sc_now_ms() + 120000;
    while (seen < n_events && sc_now_ms() < until) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t k = recv(fd, buf, sizeof buf - 1, 0);
        if (k <= 0) break;
        buf[k] = 0;
        for (char *q = buf; (q = strstr(q, "data: ")); q += 6) seen++;
    }
    if (seen < n_events) {
        close(fd);
        return -1;
    }
    return fd;
}

TEST(hang_up_frees_the_slot) {
    int fd = open_stream(T.port, 2000, 3);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd); /* mid-stream: ~2000 tokens to go, minutes of work */
    struct sc_resp r;
    double t0 = sc_now_ms();
    char json[256];
    completion_json(json, sizeof json, "Once", 2, "");
    CHECK_EQ_INT(sc_post(T.port, "/v1/completions", json, NULL, &r), 200);
    double ms = sc_now_ms() - t0;
    CHECK_MSG(ms < 20000, "the next request took %.0f ms after the hang-up", ms);
    CHECK(sc_log_line_has(&T, "\"POST /v1/completions\" 200 ", "client gone"));
    sc_resp_free(&r);
    /* the same for a client waiting for a whole (not streamed) answer */
    completion_json(json, sizeof json, "Once upon a time", 2000, "");
    int fd2 = sc_post_send(T.port, "/v1/completions", json, NULL);
    CHECK(fd2 >= 0);
    sc_sleep_ms(1000);
    if (fd2 >= 0) close(fd2);
    t0 = sc_now_ms();
    completion_json(json, sizeof json, "Once", 2, "");
    CHECK_EQ_INT(sc_post(T.port, "/v1/completions", json, NULL, &r), 200);
    ms = sc_now_ms() - t0;
    CHECK_MSG(ms < 20000, "the next request took %.0f ms after the hang-up", ms);
    CHECK(sc_log_line_has(&T, "\"POST /v1/completions\" 0 ", "client gone"));
    sc_resp_free(&r);
}

TEST(full_queue_gets_503) {
    int a = open_stream(T.port, 2000, 2); /* holds the one slot */
    CHECK(a >= 0);
    if (a < 0) return;
    char json[256];
    completion_json(json, sizeof json, "Once", 2, "");
    int b = sc_post_send(T.port, "/v1/completions", json, NULL); /* waits in the queue of one */
    CHECK(b >= 0);
    sc_sleep_ms(500);
    struct sc_resp r;
    CHECK_EQ_INT(sc_post(T.port, "/v1/completions", json, NULL, &r), 503);
    CHECK_CONTAINS(r.body, "unavailable_error");
    CHECK_MSG(r.ms < 5000, "503 after %.0f ms", r.ms);
    sc_resp_free(&r);
    close(a); /* the waiting one gets the slot */
    memset(&r, 0, sizeof r);
    if (b >= 0) {
        sc_read_all(b, &r, 60000);
        close(b);
    }
    CHECK_EQ_INT(r.status, 200);
    sc_resp_free(&r);
}

TEST(sigterm_during_a_stream_exits_0) {
    int fd = open_stream(T.port, 2000, 2);
    CHECK(fd >= 0);
    double ms = 0;
    CHECK_EQ_INT(sc_stop(&T, SIGTERM, 20000, &ms), 0);
    CHECK_MSG(ms < 10000, "exit took %.0f ms", ms);
    if (fd >= 0) { /* the stream ended without [DONE] */
        struct sc_resp r;
        memset(&r, 0, sizeof r);
        sc_read_all(fd, &r, 5000);
        CHECK(r.raw && !strstr(r.raw, "[DONE]"));
        sc_resp_free(&r);
        close(fd);
    }
}

/* The synthetic TinyLlama Q4_0 (607 MiB, seconds to write), made once. */
static int make_slow_model(void) {
    snprintf(slow_model, sizeof slow_model, "build/serve/tinyllama-q4_0.gguf");
    if (access(slow_model, R_OK) == 0) return 0;
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p build/serve && '%s' synth --shape tinyllama-1.1b --type q4_0 -o %s.tmp.%d 2>&1 "
             "&& mv %s.tmp.%d %s", sc_rbee_path(), slow_model, (int)getpid(), slow_model, (int)getpid(), slow_model);
    if (capture(cmd, out, sizeof out) != 0) {
        printf("  synth failed: %s\n", out);
        return -1;
    }
    return 0;
}

int main(void) {
    if (getenv("RBEE_EMULATED")) { /* qemu-user: a child rbee cannot be started without binfmt_misc */
        printf("test_serve: NOT RUN under emulation (the server is plain C over sockets, tested natively)\n");
        return test_summary();
    }
    test_path(model, sizeof model, "models/stories260K.gguf");
    test_path(gpt2, sizeof gpt2, "models/gpt2-mini-f16.gguf");
    char out[256];
    if (capture("curl --version", out, sizeof out) != 0) {
        printf("FAIL curl is not installed (.ci/run installs it)\n0 passed, 1 failed\n");
        return 1;
    }
    const char *extra[] = { "--parallel", "4", "-t", "1", "--timeout", "2", NULL };
    if (sc_start(&S, model, extra)) {
        printf("FAIL the server did not start\n0 passed, 1 failed\n");
        return 1;
    }
    RUN(greedy_completion_equals_run);
    RUN(stream_chunks_concatenate);
    RUN(stop_and_sampling_fields);
    RUN(chat_completions);
    RUN(sixteen_concurrent_requests);
    RUN(follow_up_reuses_the_cache);
    RUN(errors_get_status_and_error_object);
    RUN(keep_alive_pipelining_and_continue);
    RUN(slow_client_times_out);
    RUN(api_key);
    RUN(bad_options_are_one_error_line);
    RUN(sigterm_exits_0);
    if (test_n_failed) sc_print_log(&S, "stories260K");

    const char *slow[] = { "--parallel", "1", "--queue", "1", "-c", "2048", NULL };
    if (make_slow_model() || sc_start(&T, slow_model, slow)) {
        printf("FAIL the TinyLlama server did not start\n");
        test_n_failed++;
    } else {
        int before = test_n_failed;
        RUN(hang_up_frees_the_slot);
        RUN(full_queue_gets_503);
        RUN(sigterm_during_a_stream_exits_0);
        if (test_n_failed > before) sc_print_log(&T, "TinyLlama");
    }
    return test_summary();
}
