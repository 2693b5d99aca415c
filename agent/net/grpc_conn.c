/* grpc_conn.c: the connections of the gRPC client. Resolving and
 * connecting (every address of the host in turn), the TLS handshake with
 * ALPN h2, reading the socket into nghttp2 and writing nghttp2's frames
 * out (straight from the caller's buffer when the socket takes them, queued
 * when it pushes back or TLS needs a contiguous record), and teardown with
 * reconnect backoff. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "net/grpc_client_int.h"

static double next_rand(ot_grpc_client *g)
{
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static void set_ready_count(ot_grpc_client *g, int delta)
{
    int n = atomic_fetch_add(&g->nready, delta) + delta;
    ot_gauge_set(g->g_ready, n);
}

static void epoll_update(gconn *c)
{
    if (c->fd < 0)
        return;
    uint32_t ev = EPOLLIN;
    if (c->state == CS_CONNECTING || c->want_write || (out_pending(c) && !c->write_wants_read))
        ev |= EPOLLOUT;
    if (c->state == CS_CONNECTING)
        ev = EPOLLOUT;
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(c->g->epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) == 0)
        c->events = ev;
}

/* ---- connection teardown -------------------------------------------------- */

void ot_grpcc_stream_free(gconn *c, gstream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (c->active)
        c->active--;
    free(st);
}

static void addrs_free(gconn *c)
{
    if (c->addrs)
        freeaddrinfo(c->addrs);
    c->addrs = NULL;
    c->n_addrs = c->tried = 0;
}

/* Closes the socket and session. Calls still on it fail with UNAVAILABLE:
 * the server may or may not have seen them, and OTLP receivers tolerate a
 * duplicate better than exporters tolerate loss. clean: the server ended it
 * in order, so reconnect without backing off. */
void ot_grpcc_conn_close(gconn *c, bool clean, const char *reason)
{
    ot_grpc_client *g = c->g;
    char why[160], msg[256];
    snprintf(why, sizeof why, "%s", reason); /* reason is often c->err */
    snprintf(msg, sizeof msg, "connection to %s lost: %s", g->cfg->target.authority, why);
    while (c->streams) {
        gstream *st = c->streams;
        if (st->call) {
            gcall *call = st->call;
            ot_grpcc_finish(g, call, OT_GRPC_UNAVAILABLE, msg);
        }
        ot_grpcc_stream_free(c, st);
    }
    c->active = 0;
    bool was_ready = c->state == CS_READY;
    if (was_ready)
        set_ready_count(g, -1);
    if (c->h2)
        nghttp2_session_del(c->h2);
    c->h2 = NULL;
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0) {
        epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->events = 0;
    addrs_free(c);
    c->want_write = false;
    c->goaway = false;
    c->dead = false;
    c->ping_at = 0;
    ot_buf_reset(&c->out);
    if (c->out.cap > OUT_HIGH * 4)
        ot_buf_free(&c->out);
    c->out_off = 0;
    snprintf(c->err, sizeof c->err, "%s", why);
    if (clean || was_ready) {
        /* A connection that worked reconnects when next needed, without
         * waiting: the server restarting or dropping idle connections is
         * not a reason to hold data back. */
        c->state = CS_IDLE;
        c->failures = 0;
        if (clean)
            ot_debug(g->log, "connection closed", "exporter=%s conn=%d reason=\"%s\"", g->cfg->id,
                     c->idx, why);
        else
            ot_warn(g->log, "connection lost", "exporter=%s endpoint=%s conn=%d error=\"%s\"",
                    g->cfg->id, g->cfg->target.authority, c->idx, why);
        if (!clean)
            snprintf(g->last_err, sizeof g->last_err, "%s: %s", g->cfg->target.authority, why);
    } else {
        c->failures++;
        int64_t d = ot_backoff_delay(&g->reconnect, c->failures, 0, next_rand(g), 0);
        c->state = CS_BACKOFF;
        c->until = ot_now_ns() + d;
        snprintf(g->last_err, sizeof g->last_err, "%s: %s", g->cfg->target.authority, why);
        /* Once per outage at warn; every further attempt at debug. */
        ot_log(c->failures == 1 ? OT_LOG_WARN : OT_LOG_DEBUG, g->log, "cannot connect",
               "exporter=%s endpoint=%s conn=%d error=\"%s\" retry_in_ms=%lld", g->cfg->id,
               g->cfg->target.authority, c->idx, why, (long long)(d / 1000000));
    }
    g->need_dispatch = true;
}

/* ---- writing ------------------------------------------------------------- */

static int out_append_iov(gconn *c, const struct iovec *iov, int n, size_t skip)
{
    for (int i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        const char *p = iov[i].iov_base;
        if (p) {
            if (ot_buf_append(&c->out, p + skip, l - skip) < 0)
                return -1;
        } else {
            if (ot_buf_reserve(&c->out, l - skip) < 0)
                return -1;
            memset(c->out.data + c->out.len, 0, l - skip);
            c->out.len += l - skip;
        }
        skip = 0;
    }
    return 0;
}

/* Writes what the socket takes now (plaintext, nothing queued before it)
 * and queues the rest. iov entries with a NULL base are zeros. */
int ot_grpcc_conn_write(gconn *c, const struct iovec *iov, int n)
{
    size_t done = 0;
    bool zeros = false;
    for (int i = 0; i < n; i++)
        zeros |= iov[i].iov_base == NULL;
    if (!c->ssl && !out_pending(c) && !zeros) {
        struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            snprintf(c->err, sizeof c->err, "send: %s", strerror(errno));
            c->dead = true;
            return -1;
        }
        if (w > 0)
            done = (size_t)w;
    }
    if (out_append_iov(c, iov, n, done) < 0) {
        snprintf(c->err, sizeof c->err, "out of memory");
        c->dead = true;
        return -1;
    }
    return 0;
}

int ot_grpcc_conn_flush(gconn *c)
{
    for (int round = 0; round < 64; round++) {
        while (out_pending(c)) {
            const char *p = c->out.data + c->out_off;
            size_t n = out_pending(c);
            ssize_t w;
            if (c->ssl) {
                ERR_clear_error();
                int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
                if (r <= 0) {
                    int e = SSL_get_error(c->ssl, r);
                    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                        c->write_wants_read = e == SSL_ERROR_WANT_READ;
                        break;
                    }
                    snprintf(c->err, sizeof c->err, "tls write failed (%d)", e);
                    return -1;
                }
                w = r;
                c->write_wants_read = false;
            } else {
                w = send(c->fd, p, n, MSG_NOSIGNAL);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                        break;
                    snprintf(c->err, sizeof c->err, "send: %s", strerror(errno));
                    return -1;
                }
            }
            c->out_off += (size_t)w;
        }
        if (!out_pending(c)) {
            c->out.len = c->out_off = 0;
        } else if (c->out_off > (1u << 20)) {
            memmove(c->out.data, c->out.data + c->out_off, out_pending(c));
            c->out.len -= c->out_off;
            c->out_off = 0;
        }
        if (out_pending(c) >= OUT_HIGH || !c->h2 || !nghttp2_session_want_write(c->h2))
            break;
        size_t before = c->out.len;
        int rv = nghttp2_session_send(c->h2);
        if (rv < 0 || c->dead) {
            if (!c->dead)
                snprintf(c->err, sizeof c->err, "http2: %s", nghttp2_strerror(rv));
            return -1;
        }
        if (c->out.len == before && !out_pending(c))
            break;
    }
    epoll_update(c);
    return 0;
}

static int conn_read(gconn *c)
{
    uint8_t buf[65536];
    /* TLS keeps decrypted bytes epoll cannot see: read until it asks for
     * more. */
    for (int i = 0; c->ssl || i < 64; i++) {
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, buf, sizeof buf);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    return 0;
                if (e == SSL_ERROR_WANT_WRITE) {
                    c->want_write = true;
                    c->read_wants_write = true;
                    return 0;
                }
                if (e == SSL_ERROR_ZERO_RETURN) {
                    snprintf(c->err, sizeof c->err, "closed by the server");
                    return 1;
                }
                if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
                    snprintf(c->err, sizeof c->err, "closed by the server");
                    return 1;
                }
                char es[120];
                ERR_error_string_n(ERR_get_error(), es, sizeof es);
                snprintf(c->err, sizeof c->err, "tls read: %s", es);
                return -1;
            }
            n = r;
        } else {
            n = recv(c->fd, buf, sizeof buf, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    return 0;
                snprintf(c->err, sizeof c->err, "recv: %s", strerror(errno));
                return -1;
            }
            if (n == 0) {
                snprintf(c->err, sizeof c->err, "closed by the server");
                return 1;
            }
        }
        ssize_t rv = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
        if (rv < 0) {
            snprintf(c->err, sizeof c->err, "http2: %s", nghttp2_strerror((int)rv));
            return -1;
        }
        if ((size_t)n < sizeof buf && !c->ssl)
            return 0;
    }
    return 0;
}

/* ---- connecting ---------------------------------------------------------- */

static int start_h2(gconn *c)
{
    ot_grpc_client *g = c->g;
    if (nghttp2_session_client_new(&c->h2, g->cbs, c) != 0) {
        snprintf(c->err, sizeof c->err, "http2: out of memory");
        return -1;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, LOCAL_WINDOW},
    };
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    c->state = CS_READY;
    c->failures = 0;
    addrs_free(c);
    c->last_rx = ot_now_ns();
    set_ready_count(g, 1);
    ot_debug(g->log, "connected", "exporter=%s endpoint=%s conn=%d tls=%s", g->cfg->id,
             g->cfg->target.authority, c->idx, c->ssl ? "true" : "false");
    g->need_dispatch = true;
    return ot_grpcc_conn_flush(c);
}

static int tls_step(gconn *c)
{
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r == 1) {
        const unsigned char *proto = NULL;
        unsigned plen = 0;
        SSL_get0_alpn_selected(c->ssl, &proto, &plen);
        if (plen && !(plen == 2 && memcmp(proto, "h2", 2) == 0)) {
            snprintf(c->err, sizeof c->err, "the server did not agree to HTTP/2 (ALPN %.*s)",
                     (int)plen, proto);
            return -1;
        }
        c->want_write = false;
        return start_h2(c);
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        c->want_write = false;
        epoll_update(c);
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        c->want_write = true;
        epoll_update(c);
        return 0;
    }
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK) {
        snprintf(c->err, sizeof c->err, "tls handshake: certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
    } else {
        char es[120] = "connection closed";
        unsigned long le = ERR_get_error();
        if (le)
            ERR_error_string_n(le, es, sizeof es);
        snprintf(c->err, sizeof c->err, "tls handshake: %s", es);
    }
    return -1;
}

static int on_connected(gconn *c)
{
    ot_grpc_client *g = c->g;
    if (!g->tls)
        return start_h2(c);
    /* Each connection takes the context current now: a reload of the TLS
     * files applies from the next connection on. */
    SSL_CTX *ctx = ot_tls_reloader_get(g->tls);
    c->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        snprintf(c->err, sizeof c->err, "tls: cannot create a session");
        return -1;
    }
    if (!g->verify_ip)
        SSL_set_tlsext_host_name(c->ssl, g->verify_name);
    if (!g->cfg->tls->insecure_skip_verify) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (g->verify_ip)
            X509_VERIFY_PARAM_set1_ip_asc(vp, g->verify_name);
        else
            SSL_set1_host(c->ssl, g->verify_name);
    }
    c->state = CS_TLS;
    return tls_step(c);
}

/* Starts a TCP connect to the next address of this attempt: 0 when it is
 * under way (or done), -1 with c->err set when it failed at once. */
static int try_next_addr(gconn *c)
{
    struct addrinfo *ai = c->addrs;
    for (size_t i = 0; i < (c->first + c->tried) % c->n_addrs; i++)
        ai = ai->ai_next;
    c->tried++;
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(c->err, sizeof c->err, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = CS_CONNECTING;
    c->until = ot_now_ns() + CONNECT_TIMEOUT;
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return on_connected(c);
    if (errno != EINPROGRESS) {
        snprintf(c->err, sizeof c->err, "connect: %s", strerror(errno));
        return -1;
    }
    epoll_update(c);
    return 0;
}

/* A TCP connect failed: try the host's other addresses (localhost is
 * often ::1 and 127.0.0.1, and a server may listen on one only) before
 * backing off. */
static void connect_failed(gconn *c)
{
    while (c->tried < c->n_addrs) {
        if (c->fd >= 0) {
            epoll_ctl(c->g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->fd = -1;
            c->events = 0;
        }
        if (try_next_addr(c) == 0)
            return;
        if (c->state != CS_CONNECTING) /* TCP worked, TLS or HTTP/2 setup did not */
            break;
    }
    ot_grpcc_conn_close(c, false, c->err);
}

void ot_grpcc_conn_connect(gconn *c)
{
    ot_grpc_client *g = c->g;
    const ot_grpc_target *t = &g->cfg->target;
    char port[8];
    snprintf(port, sizeof port, "%d", t->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    addrs_free(c);
    c->err[0] = '\0';
    c->state = CS_CONNECTING;
    /* Resolved on every attempt, so a moved server is found again. A slow
     * resolver stalls this exporter's loop only. */
    int rc = getaddrinfo(t->host, port, &hints, &c->addrs);
    if (rc != 0 || !c->addrs) {
        char why[160];
        snprintf(why, sizeof why, "resolve %s: %s", t->host, gai_strerror(rc));
        ot_grpcc_conn_close(c, false, why);
        return;
    }
    for (struct addrinfo *a = c->addrs; a; a = a->ai_next)
        c->n_addrs++;
    /* round_robin spreads connections over the addresses; pick_first
     * starts every connection at the first. Each failed attempt moves on
     * by one, so a dead first address is not retried forever. */
    c->first = (g->cfg->balancer == OT_GRPC_ROUND_ROBIN ? (size_t)c->idx : 0) + c->failures;
    if (try_next_addr(c) < 0) {
        if (c->state == CS_CONNECTING)
            connect_failed(c);
        else
            ot_grpcc_conn_close(c, false, c->err);
    }
}

void ot_grpcc_conn_event(gconn *c, uint32_t ev)
{
    if (c->state == CS_CONNECTING) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            snprintf(c->err, sizeof c->err, "connect: %s", strerror(soerr));
            connect_failed(c);
            return;
        }
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (on_connected(c) < 0)
            ot_grpcc_conn_close(c, false, c->err);
        return;
    }
    if (c->state == CS_TLS) {
        if (tls_step(c) < 0)
            ot_grpcc_conn_close(c, false, c->err);
        return;
    }
    if (c->state != CS_READY)
        return;
    c->want_write = false;
    bool retry_read = c->read_wants_write && (ev & EPOLLOUT);
    c->read_wants_write = false;
    int r = 0;
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) || retry_read)
        r = conn_read(c);
    if (r == 0 && ot_grpcc_conn_flush(c) < 0)
        r = -1;
    if (r != 0) {
        /* An orderly close after GOAWAY, or with nothing in flight, is the
         * server managing its connections, not a failure. */
        bool clean = r > 0 && (c->goaway || c->active == 0);
        ot_grpcc_conn_close(c, clean, c->err);
        return;
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
        ot_grpcc_conn_close(c, true, "session ended");
    else if (c->goaway && c->active == 0)
        ot_grpcc_conn_close(c, true, "server sent GOAWAY");
}

