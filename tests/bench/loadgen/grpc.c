/* grpc.c: the OTLP/gRPC target. An nghttp2 client session per connection
 * over plaintext HTTP/2 (prior knowledge, as gRPC without TLS does), with
 * several concurrent streams each carrying one pre-encoded Export request.
 * nghttp2 does framing and flow control; this file only moves bytes
 * between it and non-blocking sockets (mem_send / mem_recv) and reads the
 * answer's grpc-status. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

#define GRACE_NS 5000000000LL
#define OUTBUF (256 * 1024)

typedef struct gconn gconn;

typedef struct gstream {
    gconn *conn;
    bool busy;
    int32_t id;
    lg_body body;
    size_t off;
    int64_t due;
    size_t items;
    int http_status;
    int grpc_status;
} gstream;

struct gconn {
    struct gctx *x;
    int fd;
    int state; /* 0 down, 1 connecting, 2 up */
    nghttp2_session *s;
    gstream *st;
    int n_busy;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    bool want_out;
    int64_t retry_at;
    int backoff_ms;
};

typedef struct gctx {
    lg_worker *w;
    int ep;
    gconn *c;
    int n;
    int inflight;
    const char *path;
    char authority[300];
} gctx;

static const char *const grpc_paths[OT_SIGNAL_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

static void ep_set(gctx *x, gconn *c, bool out)
{
    if (c->want_out == out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(x->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void stream_done(gctx *x, gstream *s, int code, bool ok)
{
    if (!s->busy)
        return;
    s->busy = false;
    s->conn->n_busy--;
    x->inflight--;
    lg_stats_done(&x->w->st, code, ok, s->items, lg_now() - s->due);
}

static void conn_down(gctx *x, gconn *c)
{
    for (int i = 0; i < x->w->o->streams; i++)
        stream_done(x, &c->st[i], 0, false);
    if (c->s)
        nghttp2_session_del(c->s);
    c->s = NULL;
    if (c->fd >= 0) {
        epoll_ctl(x->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = 0;
    c->out_len = c->out_off = 0;
    c->backoff_ms = c->backoff_ms ? (c->backoff_ms * 2 > 1000 ? 1000 : c->backoff_ms * 2) : 10;
    c->retry_at = lg_now() + (int64_t)c->backoff_ms * 1000000;
}

/* ---- nghttp2 callbacks -------------------------------------------------- */

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user)
{
    gstream *s = source->ptr;
    size_t left = s->body.len - s->off;
    size_t n = left < length ? left : length;
    memcpy(buf, s->body.data + s->off, n);
    s->off += n;
    if (s->off == s->body.len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    gstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s)
        return 0;
    if (namelen == 7 && !memcmp(name, ":status", 7))
        s->http_status = atoi((const char *)value);
    else if (namelen == 11 && !memcmp(name, "grpc-status", 11))
        s->grpc_status = atoi((const char *)value);
    (void)valuelen;
    return 0;
}

static int on_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user)
{
    gconn *c = user;
    gstream *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!s || !s->busy)
        return 0;
    int code;
    if (s->grpc_status >= 0)
        code = LG_CODE_GRPC + (s->grpc_status > 16 ? 2 : s->grpc_status);
    else if (s->http_status && s->http_status != 200)
        code = s->http_status;
    else
        code = 0; /* reset or closed without a status */
    (void)error_code;
    stream_done(c->x, s, code, code == LG_CODE_GRPC);
    return 0;
}

static int on_data(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                   size_t len, void *user)
{
    return 0; /* the Export response carries nothing we count */
}

static nghttp2_session_callbacks *callbacks(void)
{
    static nghttp2_session_callbacks *cb;
    if (!cb) {
        nghttp2_session_callbacks_new(&cb);
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    }
    return cb;
}

/* ---- I/O ---------------------------------------------------------------- */

/* Writes what nghttp2 has to send, gathering frames into one buffer so a
 * request costs about one write. */
static void flush_out(gctx *x, gconn *c)
{
    for (;;) {
        bool more = false;
        if (c->out_off == c->out_len) {
            c->out_off = c->out_len = 0;
            while (c->out_len < OUTBUF) {
                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(c->s, &data);
                if (n < 0) {
                    conn_down(x, c);
                    return;
                }
                if (n == 0)
                    break;
                if (c->out_len + (size_t)n > c->out_cap) {
                    size_t nc = c->out_cap * 2;
                    while (nc < c->out_len + (size_t)n)
                        nc *= 2;
                    uint8_t *p = realloc(c->out, nc);
                    if (!p) {
                        conn_down(x, c);
                        return;
                    }
                    c->out = p;
                    c->out_cap = nc;
                }
                memcpy(c->out + c->out_len, data, (size_t)n);
                c->out_len += (size_t)n;
                more = true;
            }
            if (!more) {
                ep_set(x, c, false);
                return;
            }
        }
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                ep_set(x, c, true);
                return;
            }
            conn_down(x, c);
            return;
        }
        x->w->st.bytes += (uint64_t)w;
        c->out_off += (size_t)w;
    }
}

static void conn_open(gctx *x, gconn *c)
{
    c->fd = lg_tcp_connect(x->w->o->host, x->w->o->port);
    if (c->fd < 0) {
        x->w->st.connect_failures++;
        c->state = 0;
        c->backoff_ms = c->backoff_ms ? c->backoff_ms : 10;
        c->retry_at = lg_now() + (int64_t)c->backoff_ms * 1000000;
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(x->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->want_out = true;
    c->state = 1;
}

static int conn_up(gctx *x, gconn *c)
{
    if (nghttp2_session_client_new(&c->s, callbacks(), c) != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
    };
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, 1 << 24);
    c->state = 2;
    x->w->st.connects++;
    c->backoff_ms = 0;
    flush_out(x, c);
    return 0;
}

static int submit(gctx *x, gconn *c, gstream *s, uint64_t seq0, size_t n, int64_t due)
{
    lg_worker *w = x->w;
    ot_err err = {{0}};
    s->body.prefix = 5;
    if (lg_content_body(w->content, seq0, n, lg_wall_ns(), &s->body, &err) < 0) {
        snprintf(w->fatal_msg, sizeof w->fatal_msg, "%s", err.msg);
        return -1;
    }
    size_t ml = s->body.len - 5;
    s->body.data[0] = 0;
    s->body.data[1] = (uint8_t)(ml >> 24);
    s->body.data[2] = (uint8_t)(ml >> 16);
    s->body.data[3] = (uint8_t)(ml >> 8);
    s->body.data[4] = (uint8_t)ml;
    s->off = 0;
    s->due = due;
    s->items = n;
    s->http_status = 0;
    s->grpc_status = -1;
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME}
    nghttp2_nv hdrs[] = {
        NV(":method", "POST"),
        NV(":scheme", "http"),
        NV(":authority", x->authority),
        NV(":path", x->path),
        NV("content-type", "application/grpc"),
        NV("te", "trailers"),
        NV("user-agent", "otelite-loadgen"),
    };
#undef NV
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(c->s, NULL, hdrs, sizeof hdrs / sizeof hdrs[0], &dp, s);
    if (id < 0)
        return 1; /* try later (e.g. out of stream ids: reconnect) */
    s->id = id;
    s->busy = true;
    c->n_busy++;
    x->inflight++;
    return 0;
}

static void on_event(gctx *x, gconn *c, uint32_t ev)
{
    if (c->state == 1) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (ev & (EPOLLERR | EPOLLHUP))) {
            x->w->st.connect_failures++;
            conn_down(x, c);
            return;
        }
        if (!(ev & EPOLLOUT))
            return;
        if (conn_up(x, c) < 0)
            conn_down(x, c);
        return;
    }
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        uint8_t buf[65536];
        for (;;) {
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && errno == EAGAIN)
                break;
            if (r <= 0) {
                conn_down(x, c);
                return;
            }
            if (nghttp2_session_mem_recv(c->s, buf, (size_t)r) < 0) {
                conn_down(x, c);
                return;
            }
            if ((size_t)r < sizeof buf)
                break;
        }
    }
    if (c->state == 2)
        flush_out(x, c);
    if (c->state == 2 && !nghttp2_session_want_read(c->s) && !nghttp2_session_want_write(c->s))
        conn_down(x, c);
}

static int stream_cap(gctx *x, gconn *c)
{
    uint32_t remote = nghttp2_session_get_remote_settings(c->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    int cap = x->w->o->streams;
    return remote < (uint32_t)cap ? (int)remote : cap;
}

int lg_grpc_worker(lg_worker *w)
{
    gctx x = {.w = w, .n = w->o->conns, .path = grpc_paths[w->o->sig]};
    if (strchr(w->o->host, ':'))
        snprintf(x.authority, sizeof x.authority, "[%s]:%d", w->o->host, w->o->port);
    else
        snprintf(x.authority, sizeof x.authority, "%s:%d", w->o->host, w->o->port);
    x.ep = epoll_create1(EPOLL_CLOEXEC);
    x.c = calloc((size_t)x.n, sizeof *x.c);
    if (x.ep < 0 || !x.c) {
        snprintf(w->fatal_msg, sizeof w->fatal_msg, "out of memory");
        return -1;
    }
    for (int i = 0; i < x.n; i++) {
        gconn *c = &x.c[i];
        c->x = &x;
        c->fd = -1;
        c->st = calloc((size_t)w->o->streams, sizeof *c->st);
        c->out_cap = OUTBUF + 65536;
        c->out = malloc(c->out_cap);
        if (!c->st || !c->out) {
            snprintf(w->fatal_msg, sizeof w->fatal_msg, "out of memory");
            return -1;
        }
        for (int k = 0; k < w->o->streams; k++)
            c->st[k].conn = c;
        conn_open(&x, c);
    }
    int rc = 0;
    bool done = false;
    int64_t grace_end = 0;
    struct epoll_event evs[64];
    int next = 0;
    while (!done || x.inflight > 0) {
        int64_t now = lg_now();
        if (!done && lg_time_over(w, now))
            done = true;
        if (done && !grace_end)
            grace_end = now + GRACE_NS;
        if (done && now >= grace_end)
            break;
        int64_t timeout = 100000000;
        for (int i = 0; i < x.n; i++) {
            gconn *c = &x.c[i];
            if (c->state == 0 && !done) {
                if (now >= c->retry_at)
                    conn_open(&x, c);
                else if (c->retry_at - now < timeout)
                    timeout = c->retry_at - now;
            }
        }
        while (!done) {
            int64_t d = lg_due_in(w, now);
            if (d > 0) {
                if (d < timeout)
                    timeout = d;
                break;
            }
            gconn *c = NULL;
            gstream *s = NULL;
            for (int k = 0; k < x.n && !s; k++) {
                gconn *cc = &x.c[(next + k) % x.n];
                if (cc->state != 2 || cc->n_busy >= stream_cap(&x, cc))
                    continue;
                for (int q = 0; q < w->o->streams; q++)
                    if (!cc->st[q].busy) {
                        c = cc;
                        s = &cc->st[q];
                        next = (next + k + 1) % x.n;
                        break;
                    }
            }
            if (!s)
                break;
            uint64_t seq0;
            size_t n = lg_claim(w, &seq0);
            if (!n) {
                done = true;
                break;
            }
            int sr = submit(&x, c, s, seq0, n, lg_take_due(w, now));
            if (sr < 0) {
                rc = -1;
                done = true;
                grace_end = now;
                break;
            }
            if (sr > 0) {
                lg_stats_done(&w->st, 0, false, n, 0);
                conn_down(&x, c);
                continue;
            }
            flush_out(&x, c);
            now = lg_now();
        }
        if (done && x.inflight == 0)
            break;
        if (done && grace_end - now < timeout)
            timeout = grace_end - now > 0 ? grace_end - now : 0;
        int ne = lg_epoll_wait(x.ep, evs, 64, timeout);
        for (int i = 0; i < ne; i++) {
            gconn *c = evs[i].data.ptr;
            if (c->fd >= 0)
                on_event(&x, c, evs[i].events);
        }
    }
    for (int i = 0; i < x.n; i++) {
        gconn *c = &x.c[i];
        if (c->s || c->fd >= 0)
            conn_down(&x, c);
        for (int k = 0; k < w->o->streams; k++)
            lg_body_free(&c->st[k].body);
        free(c->st);
        free(c->out);
    }
    free(x.c);
    close(x.ep);
    return rc;
}
