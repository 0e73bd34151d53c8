/* cli_serve.h - the pieces of `rbee serve` shared by its files:
 *   cli_serve.c       options, listening socket, connections, HTTP I/O, routing
 *   cli_serve_slots.c the slots (one session each) and the bounded queue before them
 *   cli_serve_api.c   the OpenAI endpoints: request fields, generation, response shapes
 *
 * Threads: one accepts, one waits for SIGINT/SIGTERM, one serves each
 * connection (bounded); generation runs in the connection's thread on a
 * slot it holds alone. Everything shared sits in struct srv behind srv->mu.
 */
#ifndef RB_CLI_SERVE_H
#define RB_CLI_SERVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cli_http.h"
#include "json.h"
#include "rbee.h"

struct srv_opts {
    const char *model, *host, *api_key, *chat_template;
    const char *type_k, *type_v;
    int port, parallel, n_ctx, n_threads, queue, timeout_s;
    uint64_t max_body;
};

struct srv_slot {
    rbee_session *session;
    int busy;
    uint64_t last_used;  /* srv->use_clock when it was last released: the least recent goes first */
    volatile int cancel; /* set by shutdown or the watcher; polled by the generation loop */
    int fd;              /* the socket of the request being served, while busy */
};

/* A request waiting for a slot, in arrival order. */
struct srv_waiter {
    struct srv_waiter *next;
};

struct srv {
    struct srv_opts o;
    rbee_model *model;
    char model_id[256];     /* the model file's name, as /v1/models and responses report it */
    const char *chat_template; /* the template text (the model's) or built-in name chat requests use */
    const char *chat_note;     /* why that is chatml, said once the server listens; else NULL */
    long long started;         /* time(NULL) at start: "created" of /v1/models */
    int n_ctx;              /* tokens of each slot's context */
    struct srv_slot *slots; /* o.parallel */
    pthread_mutex_t mu;
    pthread_cond_t changed; /* a slot was freed, the queue moved, a connection ended or stop began */
    struct srv_waiter *queue_head, *queue_tail;
    int n_waiting, n_conns, max_conns;
    uint64_t use_clock;
    atomic_int stopping;    /* SIGINT/SIGTERM: no new work, running generations cancelled */
    atomic_uint_fast64_t n_requests; /* for ids and default seeds */
};

/* One client connection: the bytes received and not yet consumed. */
struct srv_conn {
    struct srv *srv;
    int fd;
    char peer[64];         /* "127.0.0.1:54321" for the log */
    char *buf;
    size_t len, cap;
    struct rb_http_request req; /* the request being served */
    int gone;              /* the client hung up, or stopped reading: nothing more is sent */
    char allow[8];         /* the method a 405 names */
    int http10;            /* the current request is HTTP/1.0: no chunked responses */
    int keep_alive;        /* the connection may serve another request after this response */
    int sent_head;         /* a response head went out (an error can no longer get its own status) */
    int status;            /* the response status, for the log */
    char log_extra[160];   /* what the handler adds to the log line */
};

/* ---- cli_serve.c: writing responses ---- */

/* Every byte of p, or -1 when the client is gone or does not read within the timeout. */
int srv_send(struct srv_conn *c, const void *p, size_t n);
/* A whole response with Content-Length. */
int srv_respond(struct srv_conn *c, int status, const char *content_type, const char *body, size_t n);
/* An OpenAI-style error: {"error":{"message","type","param","code"}}. param may be NULL. */
int srv_error(struct srv_conn *c, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Streaming: a 200 head for server-sent events, then each event as one
 * chunk (or raw bytes to an HTTP/1.0 client, whose response ends at close). */
int srv_stream_begin(struct srv_conn *c);
int srv_stream_event(struct srv_conn *c, const char *data, size_t n); /* writes "data: <data>\n\n" */
int srv_stream_end(struct srv_conn *c);
/* The client hung up (or the connection broke): nothing more will be read or written. */
int srv_client_gone(struct srv_conn *c);
/* The peer of a socket closed it (a non-blocking look; a pipelined request does not count). */
int srv_peer_closed(int fd);

/* ---- cli_serve_slots.c ---- */

int srv_slots_init(struct srv *s, const struct rbee_context_params *cp, char *err);
void srv_slots_free(struct srv *s);
/* Wait for a free slot, in arrival order, and take the one whose cached
 * tokens share the longest prefix with prompt[0..n) (the least recently
 * used among equals). Returns the slot index, -1 when the queue is full
 * (answer 503), -2 when the client hung up or the server is stopping. */
int srv_slot_acquire(struct srv *s, struct srv_conn *c, const int32_t *prompt, int n);
void srv_slot_release(struct srv *s, int slot);
/* Cancel every running generation (shutdown). */
void srv_slots_cancel_all(struct srv *s);
/* Thread body: every 100 ms, cancel the generations whose clients hung up
 * (also while a prompt is evaluated or text is held back), until stop. */
void *srv_watch_main(void *srv);

/* ---- cli_serve_api.c ---- */

/* Picks the chat template: --chat-template (refused, one error line and 1,
 * when rbee does not know it), else the model's, else chatml. */
int srv_api_init(struct srv *s);

/* POST /v1/completions (chat = 0) and /v1/chat/completions (chat = 1). */
void srv_api_generate(struct srv_conn *c, const char *body, size_t n, int chat);
/* GET /v1/models */
void srv_api_models(struct srv_conn *c);

#endif
