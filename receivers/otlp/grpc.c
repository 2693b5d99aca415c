/* grpc.c: OTLP/gRPC on nghttp2. One thread runs an epoll loop over the
 * listening socket and every connection (non-blocking, h2c with prior
 * knowledge, or TLS with ALPN h2), feeds bytes to nghttp2 and calls the
 * pipeline when a request stream ends (the call itself is grpc_call.c). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "grpc_int.h"
#include "net/listen.h"
#include "net/tls.h"

#define READ_CHUNK 16384
#define OTLPR_GRPC_SNDBUF (64 << 10)
#define TICK_MS 200
/* Connections one receiver serves at once; more are accepted and closed. */
#define OTLPR_GRPC_MAX_CONNS 4096

/* ---- connections ------------------------------------------------------------------ */

static void conn_close(gconn *c)
{
    otlpr_grpc *g = c->g;
    epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->h2)
        nghttp2_session_del(c->h2);
    while (c->streams)
        grpcs_stream_free(c->streams);
    if (c->ssl)
        SSL_free(c->ssl);
    close(c->fd);
    free(c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->n_conns--;
    free(c);
}

static void conn_watch(gconn *c, bool want_out)
{
    uint32_t ev = EPOLLIN | (want_out ? EPOLLOUT : 0);
    if (ev == c->ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->g->epfd, EPOLL_CTL_MOD, c->fd, &e);
    c->ev = ev;
}

/* Raw bytes to the socket; how many went, 0 when it would block, -1 when
 * the connection is gone. */
static ssize_t sock_write(gconn *c, const uint8_t *p, size_t n)
{
    if (c->ssl) {
        ERR_clear_error();
        int w = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (w > 0)
            return w;
        int e = SSL_get_error(c->ssl, w);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
            return 0;
        return -1;
    }
    for (;;) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* Writes what nghttp2 has to say until the socket is full. -1: close. */
static int conn_flush(gconn *c)
{
    for (;;) {
        if (c->out_off < c->out_len) {
            ssize_t w = sock_write(c, c->out + c->out_off, c->out_len - c->out_off);
            if (w < 0)
                return -1;
            c->out_off += (size_t)w;
            if (c->out_off < c->out_len) {
                conn_watch(c, true);
                return 0;
            }
            c->out_off = c->out_len = 0;
        }
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        ssize_t w = sock_write(c, data, (size_t)n);
        if (w < 0)
            return -1;
        if (w < n) {
            size_t rest = (size_t)(n - w);
            if (rest > c->out_cap) {
                uint8_t *no = realloc(c->out, rest);
                if (!no)
                    return -1;
                c->out = no;
                c->out_cap = rest;
            }
            memcpy(c->out, data + w, rest);
            c->out_len = rest;
            c->out_off = 0;
        }
    }
    conn_watch(c, false);
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
        return -1;
    return 0;
}

static int conn_handshake(gconn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->tls_done = true;
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        conn_watch(c, false);
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        conn_watch(c, true);
        return 0;
    }
    char buf[200] = "";
    unsigned long le = ERR_get_error();
    if (le)
        ERR_error_string_n(le, buf, sizeof buf);
    ot_debug("otlp", "tls handshake failed", "receiver=%s err=\"%s\"", c->g->r->id, buf);
    return -1;
}

/* Reads what the socket has (a bounded amount per wakeup, so one busy
 * client cannot starve the others) into nghttp2. -1: close. */
static int conn_read(gconn *c)
{
    uint8_t buf[READ_CHUNK];
    for (int i = 0; i < 16; i++) {
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, buf, sizeof buf);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    return 0;
                if (e == SSL_ERROR_WANT_WRITE) {
                    conn_watch(c, true);
                    return 0;
                }
                return -1;
            }
            n = r;
        } else {
            n = recv(c->fd, buf, sizeof buf, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
            }
            if (n == 0)
                return -1;
        }
        c->last_recv = ot_now_ns();
        ssize_t used = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
        if (used < 0) {
            ot_debug("otlp", "http2 error", "receiver=%s err=\"%s\"", c->g->r->id,
                     nghttp2_strerror((int)used));
            return -1;
        }
        /* answers made while reading go out before more is read */
        if (conn_flush(c) < 0)
            return -1;
        if ((size_t)n < sizeof buf && !c->ssl)
            return 0;
    }
    return 0;
}

static void conn_event(gconn *c, uint32_t events)
{
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
        conn_close(c);
        return;
    }
    if (c->ssl && !c->tls_done) {
        int h = conn_handshake(c);
        if (h < 0) {
            conn_close(c);
            return;
        }
        if (h == 0)
            return;
    }
    if (conn_read(c) < 0 || conn_flush(c) < 0)
        conn_close(c);
}

static void conn_accept(otlpr_grpc *g)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(g->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE) && g->spare_fd >= 0) {
            /* Out of descriptors: the pending connection would keep the
             * level-triggered listener readable and spin this loop. Accept
             * it with the spare descriptor and close it at once. */
            close(g->spare_fd);
            fd = accept4(g->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                close(fd);
            g->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            static _Atomic int64_t warned;
            if (ot_log_ratelimit(&warned, 10000000000LL))
                ot_warn("otlp", "out of file descriptors; refusing gRPC connections",
                        "connections=%zu", g->n_conns);
            return;
        }
        if (fd < 0)
            return;
        if (g->n_conns >= OTLPR_GRPC_MAX_CONNS) {
            close(fd); /* beyond the cap: refuse rather than grow */
            continue;
        }
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        /* What this server writes is small (export answers, acknowledgements,
         * window updates), so a fixed send buffer costs nothing; left to
         * autotuning it grows to megabytes and a client that never reads
         * could park a quarter of a million PING answers in the kernel
         * before nghttp2's own limit on unsent acknowledgements is reached. */
        int sndbuf = OTLPR_GRPC_SNDBUF;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        gconn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->g = g;
        c->fd = fd;
        c->created = c->last_recv = c->idle_since = ot_now_ns();
        if (nghttp2_session_server_new2(&c->h2, g->cbs, c, g->opt) != 0) {
            close(fd);
            free(c);
            continue;
        }
        nghttp2_settings_entry iv[] = {
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)g->cfg->max_concurrent_streams},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1u << 20},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, OTLPR_GRPC_MAX_HEADER_LIST},
        };
        nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 8 << 20);
        if (g->tls) {
            SSL_CTX *ctx = ot_tls_reloader_get(g->tls);
            c->ssl = SSL_new(ctx);
            SSL_CTX_free(ctx);
            if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                if (c->ssl)
                    SSL_free(c->ssl);
                nghttp2_session_del(c->h2);
                close(fd);
                free(c);
                continue;
            }
            SSL_set_accept_state(c->ssl);
        }
        c->next = g->conns;
        if (g->conns)
            g->conns->prev = c;
        g->conns = c;
        g->n_conns++;
        c->ev = EPOLLIN;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &e);
        /* h2c: our SETTINGS go out at once; TLS: after the handshake */
        if (!c->ssl && conn_flush(c) < 0)
            conn_close(c);
    }
}

/* Keepalive and connection age, checked a few times a second. */
static void conn_timers(gconn *c, int64_t now)
{
    const otlpr_keepalive_server *ka = &c->g->cfg->keepalive.server_parameters;
    if (!c->h2 || (c->ssl && !c->tls_done)) {
        /* a handshake that never finishes holds a socket; give it 10s */
        if (now - c->created > 10000000000LL)
            c->closing = true;
        return;
    }
    if (c->ping_sent && ka->timeout > 0 && now - c->ping_sent >= ka->timeout) {
        c->closing = true;
        return;
    }
    /* an answer the client has not taken within the same timeout (its
     * window never opened, or it does not read): it holds the stream and
     * its memory, so the connection goes */
    for (gstream *st = c->streams; st && ka->timeout > 0; st = st->next)
        if (st->responded && now - st->responded_at >= ka->timeout) {
            ot_debug("otlp", "grpc client does not take its answers; connection closed",
                     "receiver=%s", c->g->r->id);
            c->closing = true;
            return;
        }
    if (ka->time > 0 && !c->ping_sent && now - c->last_recv >= ka->time) {
        nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL);
        c->ping_sent = now;
    }
    if (ka->max_connection_idle > 0 && c->n_streams == 0 &&
        now - c->idle_since >= ka->max_connection_idle)
        nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
    if (ka->max_connection_age > 0 && !c->goaway_at && now - c->created >= ka->max_connection_age) {
        nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->h2), NGHTTP2_NO_ERROR,
                              NULL, 0);
        c->goaway_at = now;
    }
    if (c->goaway_at) {
        if (c->n_streams == 0 ||
            (ka->max_connection_age_grace > 0 && now - c->goaway_at >= ka->max_connection_age_grace))
            c->closing = true;
    }
}

static void begin_drain(otlpr_grpc *g)
{
    g->draining = true;
    epoll_ctl(g->epfd, EPOLL_CTL_DEL, g->lfd, NULL);
    close(g->lfd);
    g->lfd = -1;
    for (gconn *c = g->conns; c; c = c->next) {
        if (!c->h2 || (c->ssl && !c->tls_done)) {
            c->closing = true;
            continue;
        }
        nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->h2), NGHTTP2_NO_ERROR,
                              NULL, 0);
        if (!c->goaway_at)
            c->goaway_at = ot_now_ns();
    }
}

static void *loop(void *arg)
{
    otlpr_grpc *g = arg;
    struct epoll_event evs[64];
    int64_t next_tick = ot_now_ns() + TICK_MS * 1000000LL;
    for (;;) {
        int n = epoll_wait(g->epfd, evs, 64, TICK_MS);
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &g->lfd) {
                if (!g->draining)
                    conn_accept(g);
            } else if (tag == &g->evfd) {
                uint64_t v;
                if (read(g->evfd, &v, sizeof v) < 0 && errno != EAGAIN)
                    break;
            } else {
                conn_event(tag, evs[i].events);
            }
        }
        if (atomic_load(&g->stopping) && !g->draining)
            begin_drain(g);
        int64_t now = ot_now_ns();
        if (now >= next_tick || g->draining) {
            next_tick = now + TICK_MS * 1000000LL;
            for (gconn *c = g->conns, *nx; c; c = nx) {
                nx = c->next;
                conn_timers(c, now);
                bool handshaking = c->ssl && !c->tls_done;
                if (g->draining && c->n_streams == 0 && !c->closing) {
                    if (!handshaking)
                        conn_flush(c); /* the GOAWAY, if the socket takes it */
                    c->closing = true;
                }
                if (c->closing || (!handshaking && conn_flush(c) < 0))
                    conn_close(c);
            }
        }
        if (g->draining && (!g->conns || now >= atomic_load(&g->deadline)))
            break;
    }
    while (g->conns)
        conn_close(g->conns);
    return NULL;
}

/* ---- start and stop -------------------------------------------------------------------- */

static void free_grpc(otlpr_grpc *g)
{
    if (g->lfd >= 0)
        close(g->lfd);
    if (g->epfd >= 0)
        close(g->epfd);
    if (g->evfd >= 0)
        close(g->evfd);
    if (g->spare_fd >= 0)
        close(g->spare_fd);
    if (g->cbs)
        nghttp2_session_callbacks_del(g->cbs);
    if (g->opt)
        nghttp2_option_del(g->opt);
    ot_tls_reloader_free(g->tls);
    free(g);
}

otlpr_grpc *ot_otlpr_grpc_start(otlpr *r, const otlpr_grpc_cfg *cfg, ot_err *err)
{
    otlpr_grpc *g = calloc(1, sizeof *g);
    if (!g) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    g->r = r;
    g->cfg = cfg;
    g->lfd = g->epfd = g->evfd = -1;
    g->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    g->max_msg = (size_t)cfg->max_recv_msg_size_mib << 20;
    atomic_init(&g->stopping, false);
    atomic_init(&g->deadline, 0);
    if (cfg->tls.present && !(g->tls = ot_tls_reloader_new(&cfg->tls, "h2", err))) {
        free_grpc(g);
        return NULL;
    }
    if (nghttp2_session_callbacks_new(&g->cbs) != 0 || nghttp2_option_new(&g->opt) != 0) {
        ot_err_set(err, "out of memory");
        free_grpc(g);
        return NULL;
    }
    grpcs_set_callbacks(g->cbs);
    /* Abuse limits, set rather than left to the library's defaults: a
     * client resetting more than 200 streams at once, or 50 a second after
     * that (rapid reset, CVE-2023-44487), more than 8 CONTINUATION frames
     * for one header block, or 1000 unread acknowledgements (SETTINGS and
     * PING floods) loses its connection. */
    nghttp2_option_set_stream_reset_rate_limit(g->opt, 200, 50);
    nghttp2_option_set_max_continuations(g->opt, 8);
    nghttp2_option_set_max_outbound_ack(g->opt, 1000);
    nghttp2_option_set_max_settings(g->opt, 32);

    if ((g->lfd = ot_net_listen(&cfg->endpoint, 1024, err)) < 0) {
        free_grpc(g);
        return NULL;
    }
    g->port = ot_net_bound_port(g->lfd);
    g->epfd = epoll_create1(EPOLL_CLOEXEC);
    g->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event el = {.events = EPOLLIN, .data.ptr = &g->lfd};
    struct epoll_event ee = {.events = EPOLLIN, .data.ptr = &g->evfd};
    if (g->epfd < 0 || g->evfd < 0 || epoll_ctl(g->epfd, EPOLL_CTL_ADD, g->lfd, &el) < 0 ||
        epoll_ctl(g->epfd, EPOLL_CTL_ADD, g->evfd, &ee) < 0) {
        ot_err_set(err, "epoll: %s", strerror(errno));
        free_grpc(g);
        return NULL;
    }
    int rc = pthread_create(&g->thread, NULL, loop, g);
    if (rc != 0) {
        ot_err_set(err, "thread: %s", strerror(rc));
        free_grpc(g);
        return NULL;
    }
    return g;
}

int ot_otlpr_grpc_port(const otlpr_grpc *g)
{
    return g ? g->port : 0;
}

void ot_otlpr_grpc_stop(otlpr_grpc *g, int64_t deadline_ns)
{
    if (!g)
        return;
    atomic_store(&g->deadline, deadline_ns);
    atomic_store(&g->stopping, true);
    uint64_t one = 1;
    if (write(g->evfd, &one, sizeof one) < 0) {
        /* the loop also notices stopping on its next tick */
    }
    pthread_join(g->thread, NULL);
    free_grpc(g);
}
