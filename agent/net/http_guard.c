/* http_guard.c: an HTTP server's count of connections, eviction when full
 * and the whole-request deadline, checked by one thread (see http_guard.h
 * for why).
 *
 * Connections sit on one of three lists, each in the order they got
 * there, so the oldest is always at the head: waiting for a request
 * (since it opened or its last request ended), reading a body (since its
 * headers), and sending an answer. Deadlines are checked from the heads,
 * so a tick costs what it closes. Closing is a shutdown() of the socket:
 * the server's own thread then sees the end and closes it, and tells us
 * (ot_http_guard_closed) before the descriptor is released, so a number
 * the kernel has handed out again is never touched. */
#include "net/http_guard.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"

unsigned ot_http_guard_hard_limit(unsigned max_connections)
{
    /* room for the ones evicted but not yet closed by the server's thread */
    return 2 * max_connections + 64;
}

#define GUARD_TICK_MS 100

enum { L_WAIT, L_BODY, L_SENT, L_NONE };

struct ot_http_gconn {
    int fd, list;
    int64_t since;
    bool dead; /* the guard closed it: no answer may be queued */
    void *req; /* the request under way, between begin and done */
    ot_http_gconn *prev, *next;
};

typedef struct glist {
    ot_http_gconn *head, *tail;
} glist;

struct ot_http_guard {
    ot_http_guard_opts o;
    pthread_mutex_t mu;
    glist l[3];
    unsigned open, dying;
    ot_http_guard_stats st;
    int wake;
    pthread_t thr;
    bool running;
};

static void unlink_c(ot_http_guard *g, ot_http_gconn *c)
{
    if (c->list == L_NONE)
        return;
    glist *l = &g->l[c->list];
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    c->list = L_NONE;
}

static void push(ot_http_guard *g, ot_http_gconn *c, int list)
{
    unlink_c(g, c);
    glist *l = &g->l[list];
    c->list = list;
    c->since = ot_now_ns();
    c->prev = l->tail;
    c->next = NULL;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void kill_c(ot_http_guard *g, ot_http_gconn *c, bool answer_408)
{
    static const char late[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                               "Content-Type: text/plain\r\nContent-Length: 36\r\n\r\n"
                               "the request did not arrive in time.\n";
    unlink_c(g, c);
    c->dead = true;
    g->dying++;
    /* before the shutdown: a client that sees its connection end finds the
     * request's reservation back already */
    if (c->req && g->o.cut)
        g->o.cut(c->req, g->o.arg);
    c->req = NULL;
    if (answer_408 && !g->o.tls) {
        /* nothing else writes to it: no answer was queued (answer() refuses
         * from now on) and the one before was sent whole */
        ssize_t n = send(c->fd, late, sizeof late - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
        shutdown(c->fd, SHUT_WR);
    }
    shutdown(c->fd, SHUT_RDWR);
}

/* ---- the server's account ------------------------------------------------------ */

ot_http_gconn *ot_http_guard_opened(ot_http_guard *g, int fd)
{
    ot_http_gconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL; /* not guarded; the server's own limit and timeout still hold */
    c->fd = fd;
    c->list = L_NONE;
    pthread_mutex_lock(&g->mu);
    if (g->open - g->dying >= g->o.max_connections) {
        /* full: the one that waited longest without a request under way
         * goes, so this one (a probe, say) is served */
        ot_http_gconn *old = g->l[L_WAIT].head ? g->l[L_WAIT].head : g->l[L_SENT].head;
        if (old) {
            kill_c(g, old, false);
            g->st.evicted++;
        }
    }
    g->open++;
    g->st.accepted++;
    push(g, c, L_WAIT);
    pthread_mutex_unlock(&g->mu);
    return c;
}

void ot_http_guard_closed(ot_http_guard *g, ot_http_gconn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    unlink_c(g, c);
    g->open--;
    if (c->dead)
        g->dying--;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

void ot_http_guard_begin(ot_http_guard *g, ot_http_gconn *c, void *req)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (!c->dead) {
        c->req = req;
        push(g, c, L_BODY);
    }
    pthread_mutex_unlock(&g->mu);
}

bool ot_http_guard_answer(ot_http_guard *g, ot_http_gconn *c)
{
    if (!c)
        return true;
    pthread_mutex_lock(&g->mu);
    bool ok = !c->dead;
    if (ok)
        push(g, c, L_SENT);
    pthread_mutex_unlock(&g->mu);
    return ok;
}

void ot_http_guard_done(ot_http_guard *g, ot_http_gconn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    c->req = NULL;
    if (!c->dead)
        push(g, c, L_WAIT);
    pthread_mutex_unlock(&g->mu);
}

ot_http_guard_stats ot_http_guard_get_stats(ot_http_guard *g)
{
    pthread_mutex_lock(&g->mu);
    ot_http_guard_stats st = g->st;
    st.open = g->open;
    pthread_mutex_unlock(&g->mu);
    return st;
}

/* ---- the thread ---------------------------------------------------------------- */

static void expire(ot_http_guard *g)
{
    int64_t cut = ot_now_ns() - g->o.request_timeout_ns;
    pthread_mutex_lock(&g->mu);
    for (int l = L_WAIT; l <= L_BODY; l++) {
        ot_http_gconn *c;
        while ((c = g->l[l].head) && c->since < cut) {
            kill_c(g, c, l == L_BODY);
            g->st.timed_out++;
        }
    }
    pthread_mutex_unlock(&g->mu);
}

static void *run(void *arg)
{
    ot_http_guard *g = arg;
    struct pollfd p = {.fd = g->wake, .events = POLLIN};
    while (poll(&p, 1, GUARD_TICK_MS) <= 0 || !p.revents)
        expire(g);
    return NULL;
}

ot_http_guard *ot_http_guard_start(const ot_http_guard_opts *o, ot_err *err)
{
    ot_http_guard *g = calloc(1, sizeof *g);
    if (!g) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    g->o = *o;
    for (int l = 0; l < 3; l++)
        g->l[l] = (glist){0};
    pthread_mutex_init(&g->mu, NULL);
    if ((g->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        ot_err_set(err, "eventfd: %s", strerror(errno));
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    if (pthread_create(&g->thr, NULL, run, g) != 0) {
        ot_err_set(err, "cannot start the HTTP server's deadline thread");
        close(g->wake);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    g->running = true;
    return g;
}

void ot_http_guard_stop(ot_http_guard *g)
{
    if (!g || !g->running)
        return;
    uint64_t one = 1;
    ssize_t n = write(g->wake, &one, sizeof one);
    (void)n;
    pthread_join(g->thr, NULL);
    g->running = false;
}

void ot_http_guard_free(ot_http_guard *g)
{
    if (!g)
        return;
    ot_http_guard_stop(g);
    /* connections the server never reported closed (it frees them with
     * itself) are only unlinked here */
    for (int l = 0; l < 3; l++) {
        for (ot_http_gconn *c = g->l[l].head, *nx; c; c = nx) {
            nx = c->next;
            free(c);
        }
    }
    close(g->wake);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
