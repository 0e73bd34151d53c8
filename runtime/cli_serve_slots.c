/* cli_serve_slots.c - the slots of `rbee serve` and the queue before them.
 *
 * A slot is a session (a context over the shared model plus the tokens its
 * KV cache holds). A request takes the free slot whose cache shares the
 * longest prefix with its prompt, so a follow-up turn of a conversation
 * evaluates only its new tokens; when every slot is busy it waits in a FIFO
 * queue of bounded length, and a request that finds the queue full is
 * answered 503 at once. A waiting request leaves the queue when its client
 * hangs up or the server stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cli_serve.h"

int srv_slots_init(struct srv *s, const struct rbee_context_params *cp, char *err) {
    s->slots = calloc((size_t)s->o.parallel, sizeof *s->slots);
    if (!s->slots) {
        snprintf(err, RBEE_ERR_MAX, "out of memory");
        return -1;
    }
    for (int i = 0; i < s->o.parallel; i++)
        if (rbee_session_new(&s->slots[i].session, s->model, cp, err)) return -1;
    s->n_ctx = rbee_n_ctx(rbee_session_context(s->slots[0].session));
    return 0;
}

void srv_slots_free(struct srv *s) {
    if (!s->slots) return;
    for (int i = 0; i < s->o.parallel; i++) rbee_session_free(s->slots[i].session);
    free(s->slots);
    s->slots = NULL;
}

static int common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

/* The free slot to use for prompt, or -1 if none is free. Called under s->mu. */
static int best_free_slot(const struct srv *s, const int32_t *prompt, int n) {
    int best = -1, best_len = -1;
    for (int i = 0; i < s->o.parallel; i++) {
        const struct srv_slot *sl = &s->slots[i];
        if (sl->busy) continue;
        int len = common_prefix(rbee_session_tokens(sl->session), rbee_session_n_cached(sl->session), prompt, n);
        if (len > best_len || (len == best_len && sl->last_used < s->slots[best].last_used)) {
            best = i;
            best_len = len;
        }
    }
    return best;
}

static void leave_queue(struct srv *s, struct srv_waiter *w) {
    struct srv_waiter **p = &s->queue_head, *prev = NULL;
    while (*p && *p != w) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p) return;
    *p = w->next;
    if (s->queue_tail == w) s->queue_tail = prev;
    s->n_waiting--;
    pthread_cond_broadcast(&s->changed); /* the next one may be at the head now */
}

/* An absolute time ms from now, for pthread_cond_timedwait. */
static struct timespec in_ms(long ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    return t;
}

int srv_slot_acquire(struct srv *s, struct srv_conn *c, const int32_t *prompt, int n) {
    pthread_mutex_lock(&s->mu);
    int slot = -2;
    if (atomic_load(&s->stopping)) goto out;
    if (!s->queue_head && (slot = best_free_slot(s, prompt, n)) >= 0) goto take;
    if (s->n_waiting >= s->o.queue) {
        slot = -1;
        goto out;
    }
    struct srv_waiter me = { NULL };
    if (s->queue_tail) s->queue_tail->next = &me;
    else s->queue_head = &me;
    s->queue_tail = &me;
    s->n_waiting++;
    for (;;) {
        if (s->queue_head == &me && (slot = best_free_slot(s, prompt, n)) >= 0) break;
        /* check the client and the stop flag every 100 ms while waiting */
        if (atomic_load(&s->stopping) || srv_client_gone(c)) {
            leave_queue(s, &me);
            slot = -2;
            goto out;
        }
        struct timespec until = in_ms(100);
        pthread_cond_timedwait(&s->changed, &s->mu, &until);
    }
    leave_queue(s, &me);
take:
    s->slots[slot].busy = 1;
    s->slots[slot].cancel = 0;
    s->slots[slot].fd = c->fd;
out:
    pthread_mutex_unlock(&s->mu);
    return slot;
}

void srv_slot_release(struct srv *s, int slot) {
    pthread_mutex_lock(&s->mu);
    s->slots[slot].busy = 0;
    s->slots[slot].last_used = ++s->use_clock;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
}

void *srv_watch_main(void *arg) {
    struct srv *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stopping)) {
        /* under the lock: a busy slot's connection does not close its socket meanwhile */
        for (int i = 0; i < s->o.parallel; i++)
            if (s->slots[i].busy && !s->slots[i].cancel && srv_peer_closed(s->slots[i].fd)) s->slots[i].cancel = 1;
        struct timespec until = in_ms(100);
        pthread_cond_timedwait(&s->changed, &s->mu, &until);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void srv_slots_cancel_all(struct srv *s) {
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->o.parallel; i++)
        if (s->slots[i].busy) s->slots[i].cancel = 1;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
}
