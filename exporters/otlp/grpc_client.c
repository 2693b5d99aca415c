/* grpc_client.c: the gRPC client of the `otlp` exporter. Unary Export
 * calls over HTTP/2 (nghttp2), plaintext with prior knowledge or TLS with
 * ALPN h2 (OpenSSL), on one or more connections multiplexing many streams.
 *
 * One event-loop thread owns every socket and nghttp2 session; sender
 * threads hand it a call (which lives on the sender's stack) and sleep until
 * the loop completes it. The loop alone measures deadlines, so a call
 * is completed exactly once and the loop never touches it afterwards. The
 * body is never copied into the session: DATA frames are written straight
 * from the sender's buffer (NO_COPY), buffered only when the socket pushes
 * back or TLS needs a contiguous record.
 *
 * Connections that fail to connect back off as gRPC channels do (1s growing
 * by 1.6 with jitter, here capped at 30s) and reconnect by themselves; a
 * connection the server closes cleanly (GOAWAY, idle close) reconnects at
 * once. While no connection is usable and none is being made, calls fail
 * fast with UNAVAILABLE (unless wait_for_ready), which the exporter helper
 * retries. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/backoff.h"
#include "pipeline/factory.h"
#include "base/log.h"
#include "otlpexp.h"
#include "telemetry/telemetry.h"

#include "base/version.h"

#define OUT_HIGH (256u << 10)     /* stop taking frames from nghttp2 above this */
#define RESP_MAX (4u << 20)       /* gRPC's default receive limit */
#define CONNECT_TIMEOUT 20000000000LL
#define LOCAL_WINDOW (1 << 20)

typedef struct gconn gconn;
typedef struct gstream gstream;
typedef struct gcall gcall;

enum { CALL_WAITING, CALL_INFLIGHT };

/* One Export call as the sender hands it over; on the sender's stack. */
struct gcall {
    gcall *next, *prev; /* incoming (next only) or the loop's live list */
    int state;
    ot_signal sig;
    const uint8_t *msg;
    size_t len;
    bool compressed;
    int64_t deadline;
    ot_otlpexp_grpc_reply *reply;
    gstream *st;
    bool done; /* under g->mu */
    pthread_cond_t cond;
};

/* One HTTP/2 stream; outlives its call when the call's deadline passes
 * first (then call is NULL and the body is gone). */
struct gstream {
    gstream *next, *prev;
    gconn *c;
    gcall *call;
    int32_t id;
    uint8_t prefix[5];
    const uint8_t *body;
    size_t body_len;
    size_t sent; /* of 5 + body_len */
    char timeout[16];
    int http_status;
    bool grpc_content;
    bool have_status;
    int grpc_status;
    char grpc_message[256];
    bool have_details;
    ot_otlpexp_rpc_status details;
    bool resp_gzip;
    bool resp_overflow;
};

enum { CS_IDLE, CS_CONNECTING, CS_TLS, CS_READY, CS_BACKOFF };

struct gconn {
    ot_otlpexp_grpc *g;
    int idx;
    int state;
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    ot_buf out;
    size_t out_off;
    uint32_t events; /* registered with epoll */
    bool want_write;
    /* TLS can need the other direction: a read that must write first (wait
     * for EPOLLOUT, then read) or a write that must read first (wait for
     * EPOLLIN, not a writable socket that would spin the loop). */
    bool read_wants_write, write_wants_read;
    int64_t until; /* CONNECTING/TLS: give up; BACKOFF: try again */
    unsigned failures;
    size_t active;
    gstream *streams;
    bool goaway;
    bool dead; /* a callback saw a fatal socket error */
    int64_t last_rx;
    int64_t ping_at;
    struct addrinfo *addrs; /* of the attempt under way */
    size_t n_addrs, first, tried;
    char err[160];
};

struct ot_otlpexp_grpc {
    const ot_otlpexp_grpc_cfg *cfg;
    SSL_CTX *ssl_ctx;
    const char *verify_name; /* server_name_override or host */
    bool verify_ip;
    nghttp2_session_callbacks *cbs;
    nghttp2_nv fixed[8];
    size_t n_fixed;
    char **hdr_names; /* lower-cased copies of cfg->headers keys */
    size_t n_hdr;
    ot_backoff_cfg reconnect;
    uint64_t rng;

    pthread_mutex_t mu;
    gcall *incoming; /* under mu; newest first */
    bool stopping;   /* under mu */
    bool started;
    pthread_t thread;
    int epfd, evfd;

    /* Loop thread only. */
    gcall *live;
    gconn *conns;
    int nconn;
    unsigned rr;
    bool need_dispatch;
    char last_err[200];

    atomic_int nready;
    ot_gauge *g_ready;
};

/* ---- small helpers ------------------------------------------------------- */

static int64_t now_ns(void)
{
    return ot_now_ns();
}

static size_t out_pending(const gconn *c)
{
    return c->out.len - c->out_off;
}

static double next_rand(ot_otlpexp_grpc *g)
{
    uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static void set_ready_count(ot_otlpexp_grpc *g, int delta)
{
    int n = atomic_fetch_add(&g->nready, delta) + delta;
    ot_gauge_set(g->g_ready, n);
}

/* Completes a call: the last time the loop touches it. */
static void complete(ot_otlpexp_grpc *g, gcall *call, int code, const char *msg)
{
    ot_otlpexp_grpc_reply *r = call->reply;
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

static void live_unlink(ot_otlpexp_grpc *g, gcall *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        g->live = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->next = call->prev = NULL;
}

static void finish(ot_otlpexp_grpc *g, gcall *call, int code, const char *msg)
{
    live_unlink(g, call);
    complete(g, call, code, msg);
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

static void stream_free(gconn *c, gstream *st)
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
static void conn_close(gconn *c, bool clean, const char *reason)
{
    ot_otlpexp_grpc *g = c->g;
    char why[160], msg[256];
    snprintf(why, sizeof why, "%s", reason); /* reason is often c->err */
    snprintf(msg, sizeof msg, "connection to %s lost: %s", g->cfg->target.authority, why);
    while (c->streams) {
        gstream *st = c->streams;
        if (st->call) {
            gcall *call = st->call;
            finish(g, call, OT_GRPC_UNAVAILABLE, msg);
        }
        stream_free(c, st);
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
            ot_debug("otlp", "connection closed", "exporter=%s conn=%d reason=\"%s\"", g->cfg->id,
                     c->idx, why);
        else
            ot_warn("otlp", "connection lost", "exporter=%s endpoint=%s conn=%d error=\"%s\"",
                    g->cfg->id, g->cfg->target.authority, c->idx, why);
        if (!clean)
            snprintf(g->last_err, sizeof g->last_err, "%s: %s", g->cfg->target.authority, why);
    } else {
        c->failures++;
        int64_t d = ot_backoff_delay(&g->reconnect, c->failures, 0, next_rand(g), 0);
        c->state = CS_BACKOFF;
        c->until = now_ns() + d;
        snprintf(g->last_err, sizeof g->last_err, "%s: %s", g->cfg->target.authority, why);
        /* Once per outage at warn; every further attempt at debug. */
        ot_log(c->failures == 1 ? OT_LOG_WARN : OT_LOG_DEBUG, "otlp", "cannot connect",
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
static int conn_write(gconn *c, const struct iovec *iov, int n)
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

static ssize_t cb_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    gconn *c = ud;
    if (out_pending(c) >= OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    struct iovec iov = {(void *)(uintptr_t)data, len};
    if (conn_write(c, &iov, 1) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static ssize_t cb_data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    gstream *st = src->ptr;
    if (!st->call)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t total = 5 + st->body_len, left = total - st->sent;
    size_t n = left < length ? left : length;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == left)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int cb_send_data(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *src, void *ud)
{
    gconn *c = ud;
    gstream *st = src->ptr;
    if (out_pending(c) >= OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    struct iovec iov[5];
    int n = 0;
    uint8_t padlen = 0;
    iov[n++] = (struct iovec){(void *)(uintptr_t)framehd, 9};
    if (frame->data.padlen > 0) {
        padlen = (uint8_t)(frame->data.padlen - 1);
        iov[n++] = (struct iovec){&padlen, 1};
    }
    size_t off = st->sent, left = length;
    if (off < 5) {
        size_t k = 5 - off < left ? 5 - off : left;
        iov[n++] = (struct iovec){st->prefix + off, k};
        off += k;
        left -= k;
    }
    if (left) {
        /* A call whose deadline passed is gone with its body; the stream is
         * being reset, so what the frame carries no longer matters. */
        void *p = st->body ? (void *)(uintptr_t)(st->body + (off - 5)) : NULL;
        iov[n++] = (struct iovec){p, left};
    }
    if (frame->data.padlen > 1)
        iov[n++] = (struct iovec){NULL, frame->data.padlen - 1};
    if (conn_write(c, iov, n) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->sent += length;
    return 0;
}

static ssize_t cb_read_length(nghttp2_session *s, uint8_t type, int32_t id, int32_t session_win,
                              int32_t stream_win, uint32_t max_frame, void *ud)
{
    int64_t n = session_win < stream_win ? session_win : stream_win;
    if (n > (int64_t)max_frame)
        n = max_frame;
    /* Large frames mean fewer callbacks; 64 KiB keeps TLS records and the
     * queue in step. */
    if (n > 65536)
        n = 65536;
    return n > 0 ? (ssize_t)n : 1;
}

/* Drains the queue to the socket, then lets nghttp2 produce more, until the
 * socket pushes back or there is nothing left. */
static int conn_flush(gconn *c)
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

/* ---- reading ------------------------------------------------------------- */

static gstream *stream_of(gconn *c, int32_t id)
{
    return nghttp2_session_get_stream_user_data(c->h2, id);
}

static int cb_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    gconn *c = ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    gstream *st = stream_of(c, frame->hd.stream_id);
    if (!st)
        return 0;
#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)
    if (IS(":status")) {
        int v = 0;
        for (size_t i = 0; i < valuelen && i < 4; i++)
            v = v * 10 + (value[i] - '0');
        st->http_status = v;
    } else if (IS("content-type")) {
        st->grpc_content = valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0;
    } else if (IS("grpc-status")) {
        int v = 0;
        for (size_t i = 0; i < valuelen && i < 6 && value[i] >= '0' && value[i] <= '9'; i++)
            v = v * 10 + (value[i] - '0');
        st->have_status = true;
        st->grpc_status = v;
    } else if (IS("grpc-message")) {
        ot_grpc_percent_decode((const char *)value, valuelen, st->grpc_message,
                               sizeof st->grpc_message);
    } else if (IS("grpc-status-details-bin")) {
        st->have_details =
            ot_otlpexp_status_from_bin_header((const char *)value, valuelen, &st->details) == 0;
    } else if (IS("grpc-encoding")) {
        st->resp_gzip = valuelen == 4 && memcmp(value, "gzip", 4) == 0;
    }
#undef IS
    return 0;
}

static int cb_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    gconn *c = ud;
    gstream *st = stream_of(c, id);
    if (!st || !st->call)
        return 0;
    ot_buf *b = st->call->reply->resp;
    if (!b || st->resp_overflow)
        return 0;
    if (b->len + len > RESP_MAX + 5) {
        st->resp_overflow = true;
        return 0;
    }
    ot_buf_append(b, data, len);
    return 0;
}

/* The message of a gRPC response body: 1 flag byte, 4 length bytes, then
 * the (maybe compressed) message. Leaves only the message in b. */
static int unframe(gstream *st, ot_buf *b, char *why, size_t cap)
{
    if (!b || b->len == 0)
        return 0;
    if (b->len < 5) {
        snprintf(why, cap, "truncated response message");
        return -1;
    }
    const uint8_t *p = (const uint8_t *)b->data;
    uint32_t mlen = ot_grpc_prefix_len(p);
    if (mlen > b->len - 5) {
        snprintf(why, cap, "truncated response message");
        return -1;
    }
    if (p[0] & 1) {
        if (!st->resp_gzip) {
            snprintf(why, cap, "compressed response without a known grpc-encoding");
            return -1;
        }
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        uint64_t taken = 0;
        ot_err e = {{0}};
        if (ot_decompress(OT_COMPRESS_GZIP, p + 5, mlen, RESP_MAX, NULL, &taken, &plain,
                          &plain_len, &e) != OT_DECOMP_OK) {
            snprintf(why, cap, "%s", e.msg);
            return -1;
        }
        ot_buf_reset(b);
        ot_buf_append(b, plain, plain_len);
        free(plain);
    } else {
        memmove(b->data, b->data + 5, mlen);
        b->len = mlen;
        b->data[mlen] = '\0';
    }
    return 0;
}

static int cb_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
    gconn *c = ud;
    ot_otlpexp_grpc *g = c->g;
    gstream *st = stream_of(c, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    gcall *call = st->call;
    if (call) {
        int code;
        char msg[256];
        msg[0] = '\0';
        ot_otlpexp_grpc_reply *r = call->reply;
        if (st->have_status) {
            code = st->grpc_status;
            snprintf(msg, sizeof msg, "%s", st->grpc_message);
        } else if (error_code != NGHTTP2_NO_ERROR) {
            code = ot_otlpexp_grpc_code_from_h2(error_code);
            snprintf(msg, sizeof msg, "stream reset: %s", nghttp2_http2_strerror(error_code));
        } else if (st->http_status == 0) {
            code = OT_GRPC_UNAVAILABLE;
            snprintf(msg, sizeof msg, "stream closed without a response");
        } else if (st->http_status != 200 || !st->grpc_content) {
            code = st->http_status == 200 ? OT_GRPC_UNKNOWN
                                          : ot_otlpexp_grpc_code_from_http(st->http_status);
            snprintf(msg, sizeof msg, "not a gRPC response: HTTP status %d", st->http_status);
        } else {
            code = OT_GRPC_INTERNAL;
            snprintf(msg, sizeof msg, "server closed the stream without grpc-status");
        }
        if (st->have_details) {
            r->has_retry_info = st->details.has_retry_info;
            r->retry_delay_ns = st->details.retry_delay_ns;
            if (!msg[0])
                snprintf(msg, sizeof msg, "%s", st->details.msg);
        }
        if (code == OT_GRPC_OK) {
            char why[200];
            if (st->resp_overflow) {
                ot_buf_reset(r->resp);
            } else if (unframe(st, r->resp, why, sizeof why) < 0) {
                /* The data was accepted; only its partial-success answer is
                 * unreadable. */
                ot_warn("otlp", "unreadable response", "exporter=%s error=\"%s\"", g->cfg->id, why);
                ot_buf_reset(r->resp);
            }
        }
        finish(g, call, code, msg);
    }
    stream_free(c, st);
    g->need_dispatch = true;
    return 0;
}

static int cb_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    gconn *c = ud;
    c->last_rx = now_ns();
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        c->g->need_dispatch = true;
    } else if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        c->ping_at = 0;
    }
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
    ot_otlpexp_grpc *g = c->g;
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
    c->last_rx = now_ns();
    set_ready_count(g, 1);
    ot_debug("otlp", "connected", "exporter=%s endpoint=%s conn=%d tls=%s", g->cfg->id,
             g->cfg->target.authority, c->idx, c->ssl ? "true" : "false");
    g->need_dispatch = true;
    return conn_flush(c);
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
    ot_otlpexp_grpc *g = c->g;
    if (!g->ssl_ctx)
        return start_h2(c);
    c->ssl = SSL_new(g->ssl_ctx);
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
    c->until = now_ns() + CONNECT_TIMEOUT;
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
    conn_close(c, false, c->err);
}

static void conn_connect(gconn *c)
{
    ot_otlpexp_grpc *g = c->g;
    const ot_otlpexp_target *t = &g->cfg->target;
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
        conn_close(c, false, why);
        return;
    }
    for (struct addrinfo *a = c->addrs; a; a = a->ai_next)
        c->n_addrs++;
    /* round_robin spreads connections over the addresses; pick_first
     * starts every connection at the first. Each failed attempt moves on
     * by one, so a dead first address is not retried forever. */
    c->first = (g->cfg->balancer == OT_OTLPEXP_ROUND_ROBIN ? (size_t)c->idx : 0) + c->failures;
    if (try_next_addr(c) < 0) {
        if (c->state == CS_CONNECTING)
            connect_failed(c);
        else
            conn_close(c, false, c->err);
    }
}

static void conn_event(gconn *c, uint32_t ev)
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
            conn_close(c, false, c->err);
        return;
    }
    if (c->state == CS_TLS) {
        if (tls_step(c) < 0)
            conn_close(c, false, c->err);
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
    if (r == 0 && conn_flush(c) < 0)
        r = -1;
    if (r != 0) {
        /* An orderly close after GOAWAY, or with nothing in flight, is the
         * server managing its connections, not a failure. */
        bool clean = r > 0 && (c->goaway || c->active == 0);
        conn_close(c, clean, c->err);
        return;
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
        conn_close(c, true, "session ended");
    else if (c->goaway && c->active == 0)
        conn_close(c, true, "server sent GOAWAY");
}

/* ---- calls --------------------------------------------------------------- */

static bool submit(ot_otlpexp_grpc *g, gconn *c, gcall *call)
{
    gstream *st = calloc(1, sizeof *st);
    if (!st)
        return false;
    st->c = c;
    st->call = call;
    st->body = call->msg;
    st->body_len = call->len;
    ot_grpc_prefix(st->prefix, call->compressed, (uint32_t)call->len);
    ot_grpc_timeout_format(call->deadline - now_ns(), st->timeout);

    nghttp2_nv nv[16 + 64];
    size_t n = 0;
#define NV(nm, val, vl)                                                                           \
    nv[n++] = (nghttp2_nv){(uint8_t *)(uintptr_t)(nm), (uint8_t *)(uintptr_t)(val), strlen(nm),   \
                           (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}
    const char *path = ot_grpc_path(call->sig);
    NV(":method", "POST", 4);
    NV(":scheme", g->ssl_ctx ? "https" : "http", g->ssl_ctx ? 5 : 4);
    NV(":path", path, strlen(path));
    for (size_t i = 0; i < g->n_fixed; i++)
        nv[n++] = g->fixed[i];
    if (call->deadline != INT64_MAX) /* the helper's "no timeout" */
        NV("grpc-timeout", st->timeout, strlen(st->timeout));
    if (call->compressed)
        NV("grpc-encoding", "gzip", 4);
    for (size_t i = 0; i < g->n_hdr && n < sizeof nv / sizeof nv[0]; i++) {
        if (!g->hdr_names[i])
            continue;
        const char *v = g->cfg->headers->vals[i] ? g->cfg->headers->vals[i] : "";
        NV(g->hdr_names[i], v, strlen(v));
    }
#undef NV
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = cb_data_read};
    int32_t id = nghttp2_submit_request(c->h2, NULL, nv, n, &prd, st);
    if (id < 0) {
        free(st);
        if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE)
            c->goaway = true; /* out of stream ids: drain and reconnect */
        return false;
    }
    st->id = id;
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    c->active++;
    call->st = st;
    call->state = CALL_INFLIGHT;
    return true;
}

static gconn *pick_conn(ot_otlpexp_grpc *g)
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

static void dispatch(ot_otlpexp_grpc *g)
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
            if (submit(g, c, call)) {
                if (conn_flush(c) < 0)
                    conn_close(c, false, c->err); /* fails this call too */
                /* conn_close may have finished calls after this one. */
                next = g->live;
                continue;
            }
            if (c->goaway)
                g->need_dispatch = true;
            else
                finish(g, call, OT_GRPC_INTERNAL, "cannot start an HTTP/2 stream");
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
                conn_close(c, true, "server sent GOAWAY");
            conn_connect(c);
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
            finish(g, call, OT_GRPC_UNAVAILABLE, msg);
    }
}

/* Deadlines, connect timeouts, reconnects and keepalive; returns the
 * nearest time anything is due. */
static int64_t timers(ot_otlpexp_grpc *g)
{
    int64_t now = now_ns(), due = now + 1000000000LL;
    gcall *next;
    for (gcall *call = g->live; call; call = next) {
        next = call->next;
        if (call->deadline <= now) {
            if (call->state == CALL_INFLIGHT && call->st) {
                gconn *c = call->st->c;
                nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, call->st->id, NGHTTP2_CANCEL);
                finish(g, call, OT_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
                if (conn_flush(c) < 0)
                    conn_close(c, false, c->err);
                /* The flush can close and finish other streams (a sender
                 * then returns and its call is gone): start over from the
                 * list, which holds only calls still live. */
                next = g->live;
            } else {
                finish(g, call, OT_GRPC_DEADLINE_EXCEEDED,
                       "deadline exceeded while waiting for a connection");
            }
            continue;
        }
        if (call->deadline < due)
            due = call->deadline;
    }
    const ot_otlpexp_grpc_cfg *cfg = g->cfg;
    for (int k = 0; k < g->nconn; k++) {
        gconn *c = &g->conns[k];
        if (c->state == CS_CONNECTING || c->state == CS_TLS) {
            if (c->until <= now)
                conn_close(c, false, "connect timed out");
        } else if (c->state == CS_BACKOFF) {
            if (c->until <= now)
                conn_connect(c);
        } else if (c->state == CS_READY && cfg->keepalive_time > 0) {
            if (c->ping_at) {
                if (now - c->ping_at >= cfg->keepalive_timeout) {
                    conn_close(c, false, "keepalive ping not answered");
                    continue;
                }
                if (c->ping_at + cfg->keepalive_timeout < due)
                    due = c->ping_at + cfg->keepalive_timeout;
            } else if (c->active || cfg->keepalive_permit_without_stream) {
                if (now - c->last_rx >= cfg->keepalive_time) {
                    nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL);
                    c->ping_at = now;
                    if (conn_flush(c) < 0)
                        conn_close(c, false, c->err);
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

static void take_incoming(ot_otlpexp_grpc *g)
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

static void shutdown_all(ot_otlpexp_grpc *g)
{
    take_incoming(g);
    while (g->live)
        finish(g, g->live, OT_GRPC_UNAVAILABLE, "exporter is shutting down");
    for (int k = 0; k < g->nconn; k++) {
        gconn *c = &g->conns[k];
        if (c->state == CS_READY && c->h2) {
            nghttp2_session_terminate_session(c->h2, NGHTTP2_NO_ERROR);
            conn_flush(c);
        }
        if (c->fd >= 0 || c->state != CS_IDLE) {
            conn_close(c, true, "exporter is shutting down");
        }
    }
}

static void *loop_main(void *arg)
{
    ot_otlpexp_grpc *g = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int k = 0; k < g->nconn; k++)
        conn_connect(&g->conns[k]);
    for (;;) {
        if (g->need_dispatch)
            dispatch(g);
        int64_t due = timers(g);
        if (g->need_dispatch)
            dispatch(g);
        int64_t wait = due - now_ns();
        int ms = wait <= 0 ? 0 : (int)((wait + 999999) / 1000000);
        if (g->need_dispatch)
            ms = 0;
        struct epoll_event evs[32];
        int n = epoll_wait(g->epfd, evs, 32, ms);
        if (n < 0 && errno != EINTR) {
            ot_error("otlp", "event loop failed", "exporter=%s error=\"%s\"", g->cfg->id,
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
            conn_event(c, evs[i].events);
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

/* Headers the transport writes itself or HTTP/2 forbids. */
static bool reserved_header(const char *n)
{
    static const char *const r[] = {"content-type", "te", "grpc-timeout", "grpc-encoding",
                                    "grpc-accept-encoding", "content-length", "connection",
                                    "host", "transfer-encoding", "keep-alive", "upgrade",
                                    "proxy-connection", NULL};
    if (n[0] == ':')
        return true;
    for (size_t i = 0; r[i]; i++)
        if (strcmp(n, r[i]) == 0)
            return true;
    return false;
}

ot_otlpexp_grpc *ot_otlpexp_grpc_new(const ot_otlpexp_grpc_cfg *cfg, ot_err *err)
{
    ot_otlpexp_grpc *g = calloc(1, sizeof *g);
    if (!g) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    g->cfg = cfg;
    g->epfd = g->evfd = -1;
    pthread_mutex_init(&g->mu, NULL);
    g->rng = (uint64_t)now_ns() ^ (uint64_t)(uintptr_t)g;
    g->reconnect = (ot_backoff_cfg){.initial_interval = 1000000000LL,
                                    .randomization_factor = 0.2,
                                    .multiplier = 1.6,
                                    .max_interval = 30000000000LL,
                                    .max_elapsed_time = 0};
    if (cfg->target.tls) {
        g->ssl_ctx = ot_tls_client_ctx(cfg->tls, "h2", err);
        if (!g->ssl_ctx)
            goto fail;
        const char *sno = cfg->tls->server_name_override;
        g->verify_name = sno && *sno ? sno : cfg->target.host;
        g->verify_ip = is_ip(g->verify_name);
    }
    if (nghttp2_session_callbacks_new(&g->cbs) != 0) {
        ot_err_set(err, "out of memory");
        goto fail;
    }
    nghttp2_session_callbacks_set_send_callback(g->cbs, cb_send);
    nghttp2_session_callbacks_set_send_data_callback(g->cbs, cb_send_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(g->cbs, cb_read_length);
    nghttp2_session_callbacks_set_on_header_callback(g->cbs, cb_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(g->cbs, cb_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(g->cbs, cb_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(g->cbs, cb_frame_recv);

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
    if (cfg->headers && cfg->headers->n) {
        g->n_hdr = cfg->headers->n;
        g->hdr_names = calloc(g->n_hdr, sizeof *g->hdr_names);
        if (!g->hdr_names) {
            ot_err_set(err, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < g->n_hdr; i++) {
            char *nm = strdup(cfg->headers->keys[i]);
            if (!nm) {
                ot_err_set(err, "out of memory");
                goto fail;
            }
            for (char *p = nm; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            if (reserved_header(nm) || !*nm) {
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
    ot_otlpexp_grpc_free(g);
    return NULL;
}

int ot_otlpexp_grpc_start(ot_otlpexp_grpc *g, ot_err *err)
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

static void wake(ot_otlpexp_grpc *g)
{
    uint64_t one = 1;
    if (write(g->evfd, &one, sizeof one) < 0) {
        /* the counter is saturated: a wakeup is pending anyway */
    }
}

void ot_otlpexp_grpc_call(ot_otlpexp_grpc *g, ot_signal s, const uint8_t *msg, size_t len,
                          bool compressed, int64_t deadline_ns, ot_otlpexp_grpc_reply *reply)
{
    reply->code = OT_GRPC_UNKNOWN;
    reply->msg[0] = '\0';
    reply->has_retry_info = false;
    reply->retry_delay_ns = 0;
    if (reply->resp)
        ot_buf_reset(reply->resp);
    if (len > UINT32_MAX) {
        reply->code = OT_GRPC_RESOURCE_EXHAUSTED;
        snprintf(reply->msg, sizeof reply->msg, "message of %zu bytes is too large for gRPC", len);
        return;
    }
    gcall call;
    memset(&call, 0, sizeof call);
    call.sig = s;
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

void ot_otlpexp_grpc_stop(ot_otlpexp_grpc *g)
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

int ot_otlpexp_grpc_ready(ot_otlpexp_grpc *g)
{
    return atomic_load(&g->nready);
}

void ot_otlpexp_grpc_free(ot_otlpexp_grpc *g)
{
    if (!g)
        return;
    ot_otlpexp_grpc_stop(g);
    if (g->conns) {
        for (int k = 0; k < g->nconn; k++) {
            gconn *c = &g->conns[k];
            if (c->fd >= 0 || c->h2 || c->ssl)
                conn_close(c, true, "freed");
            ot_buf_free(&c->out);
        }
        free(g->conns);
    }
    for (size_t i = 0; i < g->n_hdr; i++)
        free(g->hdr_names ? g->hdr_names[i] : NULL);
    free(g->hdr_names);
    if (g->cbs)
        nghttp2_session_callbacks_del(g->cbs);
    if (g->ssl_ctx)
        SSL_CTX_free(g->ssl_ctx);
    if (g->epfd >= 0)
        close(g->epfd);
    if (g->evfd >= 0)
        close(g->evfd);
    pthread_mutex_destroy(&g->mu);
    free(g);
}
