/* grpc_client.c: the gRPC client's event loop and public API (see
 * grpc_client.h). Unary calls over HTTP/2 (nghttp2), plaintext with prior
 * knowledge or TLS with ALPN h2 (OpenSSL), on one or more connections
 * multiplexing many streams.
 *
 * One event-loop thread owns every socket and nghttp2 session; caller
 * threads hand it a call (which lives on the caller's stack) and sleep until
 * the loop completes it. The loop alone measures deadlines, so a call
 * is completed exactly once and the loop never touches it afterwards. The
 * body is never copied into the session: DATA frames are written straight
 * from the caller's buffer (NO_COPY), buffered only when the socket pushes
 * back or TLS needs a contiguous record.
 *
 * Connections that fail to connect back off as gRPC channels do (1s growing
 * by 1.6 with jitter, here capped at 30s) and reconnect by themselves; a
 * connection the server closes cleanly (GOAWAY, idle close) reconnects at
 * once. While no connection is usable and none is being made, calls fail
 * fast with UNAVAILABLE (unless wait_for_ready), which the caller may
 * retry. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "base/log.h"
#include "base/version.h"
#include "net/grpc_client_int.h"

/* Completes a call: the last time the loop touches it. */
static void complete(ot_grpc_client *g, gcall *call, int code, const char *msg)
{
    ot_grpc_reply *r = call->reply;
    r->code = code;
    if (msg)
        snprintf(r->msg, sizeof r->msg, "%s", msg);
    if (call->st) {
        call->st->call = NULL;
        call->st->body = NULL;
        call->st = NULL;
    }
    pthread_mutex_lock(&g->mu);
    call->done = true;
    pthread_cond_signal(&call->cond);
    pthread_mutex_unlock(&g->mu);
}

static void live_unlink(ot_grpc_client *g, gcall *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        g->live = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->next = call->prev = NULL;
}

void ot_grpcc_finish(ot_grpc_client *g, gcall *call, int code, const char *msg)
{
    live_unlink(g, call);
    complete(g, call, code, msg);
}

static gconn *pick_conn(ot_grpc_client *g)
{
    gconn *best = NULL;
    for (int k = 0; k < g->nconn; k++) {
        gconn *c = &g->conns[(g->rr + (unsigned)k) % (unsigned)g->nconn];
        if (c->state != CS_READY || c->goaway)
            continue;
        if (!best || c->active < best->active)
            best = c;
    }
    if (best)
        g->rr++;
    return best;
}

static void dispatch(ot_grpc_client *g)
{
    g->need_dispatch = false;
    bool any_waiting = false;
    gcall *next;
    for (gcall *call = g->live; call; call = next) {
        next = call->next;
        if (call->state != CALL_WAITING)
            continue;
        gconn *c = pick_conn(g);
        if (c) {
            if (ot_grpcc_submit(g, c, call)) {
                if (ot_grpcc_conn_flush(c) < 0)
                    ot_grpcc_conn_close(c, false, c->err); /* fails this call too */
                /* conn_close may have finished calls after this one. */
                next = g->live;
                continue;
            }
            if (c->goaway)
                g->need_dispatch = true;
            else
                ot_grpcc_finish(g, call, OT_GRPC_INTERNAL, "cannot start an HTTP/2 stream");
            continue;
        }
        any_waiting = true;
    }
    if (!any_waiting)
        return;
    /* No usable connection: start idle ones; fail fast when every one is
     * backing off, as a gRPC channel in TRANSIENT_FAILURE does. */
    bool pending = false;
    for (int k = 0; k < g->nconn; k++) {
        gconn *c = &g->conns[k];
        if (c->state == CS_IDLE || (c->state == CS_READY && c->goaway && c->active == 0)) {
            if (c->state == CS_READY)
                ot_grpcc_conn_close(c, true, "server sent GOAWAY");
            ot_grpcc_conn_connect(c);
        }
        if (c->state == CS_CONNECTING || c->state == CS_TLS || c->state == CS_READY)
            pending = true;
    }
    if (pick_conn(g)) {
        g->need_dispatch = true;
        return;
    }
    if (pending || g->cfg->wait_for_ready)
        return;
    char msg[256];
    snprintf(msg, sizeof msg, "no connection: %s", g->last_err[0] ? g->last_err : "not connected");
    for (gcall *call = g->live; call; call = next) {
        next = call->next;
        if (call->state == CALL_WAITING)
            ot_grpcc_finish(g, call, OT_GRPC_UNAVAILABLE, msg);
    }
}

/* Deadlines, connect timeouts, reconnects and keepalive; returns the
 * nearest time anything is due. */
static int64_t timers(ot_grpc_client *g)
{
    int64_t now = ot_now_ns(), due = now + 1000000000LL;
    gcall *next;
    for (gcall *call = g->live; call; call = next) {
        next = call->next;
        if (call->deadline <= now) {
            if (call->state == CALL_INFLIGHT && call->st) {
                gconn *c = call->st->c;
                nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, call->st->id, NGHTTP2_CANCEL);
                ot_grpcc_finish(g, call, OT_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
                if (ot_grpcc_conn_flush(c) < 0)
                    ot_grpcc_conn_close(c, false, c->err);
                /* The flush can close and finish other streams (a caller
                 * then returns and its call is gone): start over from the
                 * list, which holds only calls still live. */
                next = g->live;
            } else {
                ot_grpcc_finish(g, call, OT_GRPC_DEADLINE_EXCEEDED,
                       "deadline exceeded while waiting for a connection");
            }
            continue;
        }
        if (call->deadline < due)
            due = call->deadline;
    }
    const ot_grpc_client_cfg *cfg = g->cfg;
    for (int k = 0; k < g->nconn; k++) {
        gconn *c = &g->conns[k];
        if (c->state == CS_CONNECTING || c->state == CS_TLS) {
            if (c->until <= now)
                ot_grpcc_conn_close(c, false, "connect timed out");
        } else if (c->state == CS_BACKOFF) {
            if (c->until <= now)
                ot_grpcc_conn_connect(c);
        } else if (c->state == CS_READY && cfg->keepalive_time > 0) {
            if (c->ping_at) {
                if (now - c->ping_at >= cfg->keepalive_timeout) {
                    ot_grpcc_conn_close(c, false, "keepalive ping not answered");
                    continue;
                }
                if (c->ping_at + cfg->keepalive_timeout < due)
                    due = c->ping_at + cfg->keepalive_timeout;
            } else if (c->active || cfg->keepalive_permit_without_stream) {
                if (now - c->last_rx >= cfg->keepalive_time) {
                    nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL);
                    c->ping_at = now;
                    if (ot_grpcc_conn_flush(c) < 0)
                        ot_grpcc_conn_close(c, false, c->err);
                    continue;
                }
                if (c->last_rx + cfg->keepalive_time < due)
                    due = c->last_rx + cfg->keepalive_time;
            }
        }
        if ((c->state == CS_CONNECTING || c->state == CS_TLS || c->state == CS_BACKOFF) &&
            c->until < due)
            due = c->until;
    }
    return due;
}

static void take_incoming(ot_grpc_client *g)
{
    pthread_mutex_lock(&g->mu);
    gcall *in = g->incoming;
    g->incoming = NULL;
    pthread_mutex_unlock(&g->mu);
    /* incoming is newest first; the live list gets them oldest first. */
    gcall *rev = NULL;
    while (in) {
        gcall *n = in->next;
        in->next = rev;
        rev = in;
        in = n;
    }
    gcall *tail = g->live;
    while (tail && tail->next)
        tail = tail->next;
    while (rev) {
        gcall *n = rev->next;
        rev->next = NULL;
        rev->prev = tail;
        rev->state = CALL_WAITING;
        if (tail)
            tail->next = rev;
        else
            g->live = rev;
        tail = rev;
        rev = n;
        g->need_dispatch = true;
    }
}

static void shutdown_all(ot_grpc_client *g)
{
    take_incoming(g);
    while (g->live)
        ot_grpcc_finish(g, g->live, OT_GRPC_UNAVAILABLE, "exporter is shutting down");
    for (int k = 0; k < g->nconn; k++) {
        gconn *c = &g->conns[k];
        if (c->state == CS_READY && c->h2) {
            nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
            ot_grpcc_conn_flush(c);
        }
        if (c->fd >= 0 || c->state != CS_IDLE) {
            ot_grpcc_conn_close(c, true, "exporter is shutting down");
        }
    }
}

static void *loop_main(void *arg)
{
    ot_grpc_client *g = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int k = 0; k < g->nconn; k++)
        ot_grpcc_conn_connect(&g->conns[k]);
    for (;;) {
        if (g->need_dispatch)
            dispatch(g);
        int64_t due = timers(g);
        if (g->need_dispatch)
            dispatch(g);
        int64_t wait = due - ot_now_ns();
        int ms = wait <= 0 ? 0 : (int)((wait + 999999) / 1000000);
        if (g->need_dispatch)
            ms = 0;
        struct epoll_event evs[32];
        int n = epoll_wait(g->epfd, evs, 32, ms);
        if (n < 0 && errno != EINTR) {
            ot_error(g->log, "event loop failed", "exporter=%s error=\"%s\"", g->cfg->id,
                     strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            if (!evs[i].data.ptr) {
                uint64_t v;
                if (read(g->evfd, &v, sizeof v) < 0) {
                    /* spurious wakeup; nothing to drain */
                }
                pthread_mutex_lock(&g->mu);
                bool stop = g->stopping;
                pthread_mutex_unlock(&g->mu);
                if (stop) {
                    shutdown_all(g);
                    return NULL;
                }
                take_incoming(g);
                continue;
            }
            gconn *c = evs[i].data.ptr;
            ot_grpcc_conn_event(c, evs[i].events);
        }
    }
    /* Calls made from now on fail at once instead of waiting for a loop
     * that is gone. */
    pthread_mutex_lock(&g->mu);
    g->stopping = true;
    pthread_mutex_unlock(&g->mu);
    shutdown_all(g);
    return NULL;
}

/* ---- public API ---------------------------------------------------------- */

static bool is_ip(const char *h)
{
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1;
}

ot_grpc_client *ot_grpc_client_new(const ot_grpc_client_cfg *cfg, ot_err *err)
{
    ot_grpc_client *g = calloc(1, sizeof *g);
    if (!g) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    g->cfg = cfg;
    g->log = cfg->log_module && *cfg->log_module ? cfg->log_module : "grpc";
    g->epfd = g->evfd = -1;
    pthread_mutex_init(&g->mu, NULL);
    g->rng = (uint64_t)ot_now_ns() ^ (uint64_t)(uintptr_t)g;
    g->reconnect = (ot_backoff_cfg){.initial_interval = 1000000000LL,
                                    .randomization_factor = 0.2,
                                    .multiplier = 1.6,
                                    .max_interval = 30000000000LL,
                                    .max_elapsed_time = 0};
    if (cfg->target.tls) {
        g->tls = ot_tls_client_reloader_new(cfg->tls, "h2", err);
        if (!g->tls)
            goto fail;
        const char *sno = cfg->tls->server_name_override;
        g->verify_name = sno && *sno ? sno : cfg->target.host;
        g->verify_ip = is_ip(g->verify_name);
    }
    if (ot_grpcc_callbacks(&g->cbs) != 0) {
        ot_err_set(err, "out of memory");
        goto fail;
    }

    /* :authority: the authority key, else the TLS name override (as gRPC
     * does), else the endpoint. */
    static char ua[] = "otelite/" OT_VERSION " grpc-c-nghttp2";
    const char *auth = cfg->authority && *cfg->authority ? cfg->authority : NULL;
    if (!auth && cfg->target.tls && cfg->tls->server_name_override && *cfg->tls->server_name_override)
        auth = cfg->tls->server_name_override;
    if (!auth)
        auth = cfg->target.authority;
#define FIX(nm, val)                                                                              \
    g->fixed[g->n_fixed++] = (nghttp2_nv){(uint8_t *)(uintptr_t)(nm), (uint8_t *)(uintptr_t)(val), \
                                          strlen(nm), strlen(val),                                \
                                          NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}
    FIX(":authority", auth);
    FIX("content-type", "application/grpc");
    FIX("te", "trailers");
    FIX("user-agent", ua);
    FIX("grpc-accept-encoding", "identity,gzip");
#undef FIX
    if (cfg->metadata && cfg->metadata->n) {
        g->n_hdr = cfg->metadata->n;
        g->hdr_names = calloc(g->n_hdr, sizeof *g->hdr_names);
        if (!g->hdr_names) {
            ot_err_set(err, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < g->n_hdr; i++) {
            char *nm = strdup(cfg->metadata->keys[i]);
            if (!nm) {
                ot_err_set(err, "out of memory");
                goto fail;
            }
            /* Lower-cased once here, so every call can pass them uncopied. */
            for (char *p = nm; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            if (ot_grpc_client_reserved(nm)) {
                free(nm);
                continue;
            }
            g->hdr_names[i] = nm;
        }
    }
    g->nconn = cfg->num_connections > 0 ? cfg->num_connections : 1;
    g->conns = calloc((size_t)g->nconn, sizeof *g->conns);
    if (!g->conns) {
        ot_err_set(err, "out of memory");
        goto fail;
    }
    for (int k = 0; k < g->nconn; k++) {
        g->conns[k].g = g;
        g->conns[k].idx = k;
        g->conns[k].fd = -1;
    }
    char labels[300];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", cfg->id);
    g->g_ready = ot_tel_gauge("otelite_exporter_grpc_connections_ready",
                              "gRPC connections of an exporter that are ready to carry calls.", labels);
    return g;
fail:
    ot_grpc_client_free(g);
    return NULL;
}

int ot_grpc_client_start(ot_grpc_client *g, ot_err *err)
{
    g->epfd = epoll_create1(EPOLL_CLOEXEC);
    g->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (g->epfd < 0 || g->evfd < 0)
        return ot_err_set(err, "event loop: %s", strerror(errno));
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, g->evfd, &e) < 0)
        return ot_err_set(err, "event loop: %s", strerror(errno));
    int rc = pthread_create(&g->thread, NULL, loop_main, g);
    if (rc != 0)
        return ot_err_set(err, "cannot start the gRPC thread: %s", strerror(rc));
    g->started = true;
    return 0;
}

static void wake(ot_grpc_client *g)
{
    uint64_t one = 1;
    if (write(g->evfd, &one, sizeof one) < 0) {
        /* the counter is saturated: a wakeup is pending anyway */
    }
}

void ot_grpc_client_call(ot_grpc_client *g, const char *path, const uint8_t *msg, size_t len,
                         bool compressed, int64_t deadline_ns, const ot_strmap *md,
                         ot_grpc_reply *reply)
{
    reply->code = OT_GRPC_UNKNOWN;
    reply->msg[0] = '\0';
    reply->has_details = false;
    memset(&reply->details, 0, sizeof reply->details);
    if (reply->resp)
        ot_buf_reset(reply->resp);
    if (len > UINT32_MAX) {
        reply->code = OT_GRPC_RESOURCE_EXHAUSTED;
        snprintf(reply->msg, sizeof reply->msg, "message of %zu bytes is too large for gRPC", len);
        return;
    }
    gcall call;
    memset(&call, 0, sizeof call);
    call.path = path && *path ? path : "/";
    call.md = md;
    call.msg = msg;
    call.len = len;
    call.compressed = compressed;
    call.deadline = deadline_ns;
    call.reply = reply;
    pthread_cond_init(&call.cond, NULL);
    pthread_mutex_lock(&g->mu);
    if (g->stopping || !g->started) {
        pthread_mutex_unlock(&g->mu);
        pthread_cond_destroy(&call.cond);
        reply->code = OT_GRPC_UNAVAILABLE;
        snprintf(reply->msg, sizeof reply->msg, "exporter is not running");
        return;
    }
    call.next = g->incoming;
    g->incoming = &call;
    pthread_mutex_unlock(&g->mu);
    wake(g);
    pthread_mutex_lock(&g->mu);
    while (!call.done)
        pthread_cond_wait(&call.cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
    pthread_cond_destroy(&call.cond);
}

void ot_grpc_client_stop(ot_grpc_client *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    bool was = g->stopping;
    g->stopping = true;
    pthread_mutex_unlock(&g->mu);
    if (was || !g->started)
        return;
    wake(g);
    pthread_join(g->thread, NULL);
}

int ot_grpc_client_ready(ot_grpc_client *g)
{
    return atomic_load(&g->nready);
}

void ot_grpc_client_free(ot_grpc_client *g)
{
    if (!g)
        return;
    ot_grpc_client_stop(g);
    if (g->conns) {
        for (int k = 0; k < g->nconn; k++) {
            gconn *c = &g->conns[k];
            if (c->fd >= 0 || c->h2 || c->ssl)
                ot_grpcc_conn_close(c, true, "freed");
            ot_buf_free(&c->out);
        }
        free(g->conns);
    }
    for (size_t i = 0; i < g->n_hdr; i++)
        free(g->hdr_names ? g->hdr_names[i] : NULL);
    free(g->hdr_names);
    if (g->cbs)
        nghttp2_session_callbacks_del(g->cbs);
    ot_tls_reloader_free(g->tls);
    if (g->epfd >= 0)
        close(g->epfd);
    if (g->evfd >= 0)
        close(g->evfd);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
