/* http_server.c: the agent's own HTTP/1.1 server (see http_server.h): one
 * listening socket, opts.threads epoll loops that share it, connections
 * with one buffer each, TLS through OpenSSL with files reloaded while
 * serving, and the guard (http_guard.h) for floods and deadlines.
 *
 * Why our own: libmicrohttpd brought GnuTLS and its friends into every
 * agent (about 2.4 MiB resident at idle) and could not be made to answer a
 * chunk size of 16 hex digits. Requests are parsed by http1_parse.c and
 * live in http1_req.c, certificates are loaded and reloaded by
 * http1_tls.c.
 *
 * A connection's own work (reading, answering, closing) is http1_conn.c;
 * this file runs the loops that accept and wake connections, and starts
 * and stops the server. */
#include "net/http_server.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/http1_int.h"
#include "net/listen.h"

/* ---- the loops -------------------------------------------------------------------------- */

static void listen_on(h1loop *lp, bool on)
{
    ot_http_server *s = lp->s;
    if (on == lp->listening)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = s};
    if (epoll_ctl(lp->ep, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->fd, &ev) == 0 || !on)
        lp->listening = on;
}

static void do_accept(h1loop *lp)
{
    ot_http_server *s = lp->s;
    for (int i = 0; i < 64 && !atomic_load(&s->stopping); i++) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(s->fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* out of descriptors: stop looking for a moment rather than
                 * spin on a socket that stays readable */
                listen_on(lp, false);
                lp->relisten_at = ot_now_ns() + 100000000LL;
            }
            return;
        }
        if (atomic_load(&s->nconns) >= s->hard_limit) {
            close(fd); /* evicted ones not closed yet fill the table */
            continue;
        }
        ot_h1_conn_new(lp, fd, &sa);
    }
}

static void sweep(h1loop *lp, int64_t now)
{
    ot_http_server *s = lp->s;
    /* idle the whole timeout and one second more: the guard's deadline,
     * which answers 408, comes first where it applies */
    int64_t cut = now - ((int64_t)s->o.timeout_s + 1) * 1000000000LL;
    while (lp->head && lp->head->active_at < cut)
        ot_h1_conn_close(lp->head);
    if (!lp->listening && lp->relisten_at && now >= lp->relisten_at &&
        !atomic_load(&s->stopping)) {
        lp->relisten_at = 0;
        listen_on(lp, true);
    }
}

static void on_stop(h1loop *lp)
{
    listen_on(lp, false);
    lp->stop_seen = true;
    /* connections with no request past its head are closed now */
    for (h1conn *c = lp->head, *nx; c; c = nx) {
        nx = c->next;
        if (!c->in_req)
            ot_h1_conn_close(c);
    }
    atomic_fetch_add(&lp->s->stop_acked, 1);
}

static void *loop_run(void *arg)
{
    h1loop *lp = arg;
    ot_http_server *s = lp->s;
    struct epoll_event evs[64];
    while (!atomic_load(&s->quit)) {
        int n = epoll_wait(lp->ep, evs, 64, 250);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == s) {
                do_accept(lp);
            } else if (p == lp) {
                uint64_t v;
                ssize_t r = read(lp->wake, &v, sizeof v);
                (void)r;
            } else {
                h1conn *c = p;
                c->drained = false;
                if (evs[i].events & (EPOLLERR | EPOLLHUP))
                    ot_h1_conn_close(c);
                else
                    ot_h1_conn_run(c);
            }
        }
        if (atomic_load(&s->stopping) && !lp->stop_seen)
            on_stop(lp);
        int64_t now = ot_now_ns();
        if (now >= lp->next_sweep) {
            lp->next_sweep = now + 250000000LL;
            sweep(lp, now);
        }
    }
    while (lp->head)
        ot_h1_conn_close(lp->head);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------------- */

static void wake(h1loop *lp)
{
    uint64_t one = 1;
    ssize_t n = write(lp->wake, &one, sizeof one);
    (void)n;
}

/* The guard closed q's connection; its loop reaps it when it next looks. */
static void cut_request(void *req, void *arg)
{
    ot_http_server *s = arg;
    s->o.stream->cut(req, s->o.arg);
}

static void free_server(ot_http_server *s)
{
    for (int i = 0; i < s->nloops; i++) {
        h1loop *lp = &s->loops[i];
        if (lp->started)
            pthread_join(lp->thr, NULL);
        while (lp->head)
            ot_h1_conn_close(lp->head);
        while (lp->nspare)
            free(lp->spare[--lp->nspare]);
        if (lp->ep >= 0)
            close(lp->ep);
        if (lp->wake >= 0)
            close(lp->wake);
    }
    free(s->loops);
    ot_http_guard_free(s->guard);
    if (s->ctx)
        SSL_CTX_free(s->ctx);
    ot_tls_server_pems_free(&s->pems);
    if (s->fd >= 0)
        close(s->fd);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    OPENSSL_cleanse(s->auth_digest, sizeof s->auth_digest);
    free(s);
}

static int start_loops(ot_http_server *s, ot_err *err)
{
    s->nloops = s->o.threads > 0 ? s->o.threads : 1;
    if (!(s->loops = calloc((size_t)s->nloops, sizeof *s->loops))) {
        s->nloops = 0;
        return ot_err_set(err, "out of memory");
    }
    for (int i = 0; i < s->nloops; i++) {
        h1loop *lp = &s->loops[i];
        lp->s = s;
        lp->ep = lp->wake = -1;
    }
    for (int i = 0; i < s->nloops; i++) {
        h1loop *lp = &s->loops[i];
        if ((lp->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
            (lp->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
            return ot_err_set(err, "epoll: %s", strerror(errno));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = lp};
        if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->wake, &ev) < 0)
            return ot_err_set(err, "epoll: %s", strerror(errno));
        listen_on(lp, true);
        if (!lp->listening)
            return ot_err_set(err, "epoll: %s", strerror(errno));
        if (pthread_create(&lp->thr, NULL, loop_run, lp) != 0)
            return ot_err_set(err, "cannot start the HTTP server's threads");
        lp->started = true;
    }
    return 0;
}

ot_http_server *ot_http_server_start(const ot_endpoint *ep, const ot_http_server_opts *opts,
                                     ot_err *err)
{
    ot_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    s->o = *opts;
    s->fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!s->o.log_component)
        s->o.log_component = "http";
    if (!s->o.max_connections)
        s->o.max_connections = 64;
    if (!s->o.timeout_s)
        s->o.timeout_s = 10;
    if (!s->o.backlog)
        s->o.backlog = 64;
    if (!s->o.max_body)
        s->o.max_body = 1u << 20;
    s->hard_limit = ot_http_guard_hard_limit(s->o.max_connections);
    s->tls = opts->tls && opts->tls->present;
    s->need_client_cert = s->tls && opts->tls->client_ca_file && *opts->tls->client_ca_file;
    if (opts->basic_auth_user && *opts->basic_auth_user) {
        ot_buf b = OT_BUF_INIT;
        ot_buf_printf(&b, "%s:%s", opts->basic_auth_user,
                      opts->basic_auth_password ? opts->basic_auth_password : "");
        if (b.oom) {
            ot_buf_free(&b);
            ot_err_set(err, "out of memory");
            free_server(s);
            return NULL;
        }
        ot_h1_sha256(b.data, b.len, s->auth_digest);
        OPENSSL_cleanse(b.data, b.len);
        ot_buf_free(&b);
        s->auth = true;
        snprintf(s->auth_challenge, sizeof s->auth_challenge, "Basic realm=\"%s\", charset=\"UTF-8\"",
                 opts->realm ? opts->realm : "otelite");
    }
    if (s->tls) {
        s->stamp = ot_tls_server_files_stamp(opts->tls);
        if (ot_tls_server_pems_load(opts->tls, &s->pems, err) < 0 ||
            !(s->ctx = ot_h1_tls_ctx(opts->tls, &s->pems, err))) {
            free_server(s);
            return NULL;
        }
    }
    if ((s->fd = ot_net_listen(ep, s->o.backlog, err)) < 0) {
        free_server(s);
        return NULL;
    }
    s->port = ot_net_bound_port(s->fd);
    ot_http_guard_opts go = {
        .max_connections = s->o.max_connections,
        .request_timeout_ns = (int64_t)s->o.timeout_s * 1000000000LL,
        .tls = s->tls,
        .cut = s->o.stream && s->o.stream->cut ? cut_request : NULL,
        .arg = s,
    };
    if (!(s->guard = ot_http_guard_start(&go, err)) || start_loops(s, err) < 0) {
        atomic_store(&s->quit, true);
        for (int i = 0; i < s->nloops; i++)
            if (s->loops[i].wake >= 0)
                wake(&s->loops[i]);
        free_server(s);
        return NULL;
    }
    if (ot_tls_server_check_interval(opts->tls) > 0) {
        if (pthread_create(&s->watcher, NULL, ot_h1_tls_watch, s) == 0)
            s->watching = true;
        else
            ot_warn(s->o.log_component, "cannot watch the tls files; they will not be reloaded",
                    "port=%d", s->port);
    }
    return s;
}

int ot_http_server_port(const ot_http_server *s)
{
    return s ? s->port : -1;
}

unsigned ot_http_server_reloads(const ot_http_server *s)
{
    return s ? atomic_load(&s->reloads) : 0;
}

void ot_http_server_stop(ot_http_server *s, int64_t deadline_ns)
{
    if (!s)
        return;
    if (s->watching) {
        pthread_mutex_lock(&s->mu);
        s->watch_stop = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->watcher, NULL);
    }
    /* No new connections; requests past their heads finish until the
     * deadline, then everything closes. */
    ot_http_guard_stop(s->guard);
    atomic_store(&s->stopping, true);
    for (int i = 0; i < s->nloops; i++)
        wake(&s->loops[i]);
    struct timespec ts = {0, 2 * 1000 * 1000};
    while (atomic_load(&s->stop_acked) < s->nloops && ot_now_ns() < deadline_ns + 1000000000LL)
        nanosleep(&ts, NULL);
    if (atomic_load(&s->stop_acked) == s->nloops) {
        /* no loop accepts any more: the port is free at once */
        close(s->fd);
        s->fd = -1;
    }
    while (atomic_load(&s->active) > 0 && ot_now_ns() < deadline_ns)
        nanosleep(&ts, NULL);
    atomic_store(&s->quit, true);
    for (int i = 0; i < s->nloops; i++)
        wake(&s->loops[i]);
    free_server(s);
}
