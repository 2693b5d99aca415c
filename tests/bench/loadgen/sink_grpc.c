/* sink_grpc.c: `otelite-loadgen sink --grpc PORT`, the null sink for an
 * exporter that speaks OTLP/gRPC. Plaintext HTTP/2 with prior knowledge
 * (h2c, as gRPC without TLS is); every request stream is answered with an
 * empty Export response and grpc-status 0 once its body has ended. It is
 * here so a benchmark can measure the agent's gRPC client with nothing
 * slower than it downstream; it shares counting and the progress file with
 * the HTTP sink (sink.c). */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"
#include "model/pbwalk.h"

typedef struct hconn {
    struct hconn *prev, *next;
    int fd;
    nghttp2_session *s;
    lg_sink_counts *k;
    uint32_t events;
    int ep;
} hconn;

/* A request body, kept until the stream ends so the walker sees it whole. */
typedef struct hreq {
    uint8_t *buf;
    size_t len, cap;
    bool sent; /* the empty response message, once */
} hreq;

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    hconn *c = ud;
    ssize_t w = send(c->fd, data, len, MSG_NOSIGNAL);
    if (w < 0)
        return (errno == EAGAIN || errno == EINTR) ? NGHTTP2_ERR_WOULDBLOCK
                                                   : NGHTTP2_ERR_CALLBACK_FAILURE;
    return w;
}

static int begin_headers_cb(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    hreq *r = calloc(1, sizeof *r);
    if (!r)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, r);
    return 0;
}

static int chunk_cb(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                    void *ud)
{
    hconn *c = ud;
    hreq *r = nghttp2_session_get_stream_user_data(s, id);
    c->k->bytes += len;
    if (!r || c->k->walk < 0)
        return 0;
    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 1 << 16;
        while (cap < r->len + len)
            cap *= 2;
        uint8_t *nb = realloc(r->buf, cap);
        if (!nb)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    return 0;
}

static ssize_t body_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
    hreq *r = src->ptr;
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    if (r->sent || len < 5)
        return 0;
    memset(buf, 0, 5); /* uncompressed, zero length: an empty Export response */
    r->sent = true;
    nghttp2_nv tr[] = {{(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_trailer(s, id, tr, 1);
    return 5;
}

static void answer(hconn *c, int32_t id, hreq *r)
{
    lg_sink_counts *k = c->k;
    if (k->walk >= 0) {
        size_t it = 0;
        ot_err err = {{0}};
        if (r->len < 5 || r->buf[0] != 0 ||
            ot_pbwalk((ot_signal)k->walk, r->buf + 5, r->len - 5, &it, &err) < 0)
            k->bad++;
        k->items += it;
    }
    k->reqs++;
    k->last = lg_now();
    if (!k->first)
        k->first = k->last;
    nghttp2_nv h[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider p = {.source.ptr = r, .read_callback = body_cb};
    nghttp2_submit_response(c->s, id, h, 2, &p);
}

static int frame_cb(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        hreq *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (r)
            answer(ud, f->hd.stream_id, r);
    }
    return 0;
}

static int close_cb(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    hreq *r = nghttp2_session_get_stream_user_data(s, id);
    if (r) {
        free(r->buf);
        free(r);
    }
    return 0;
}

static void want(hconn *c)
{
    uint32_t ev = EPOLLIN | (nghttp2_session_want_write(c->s) ? EPOLLOUT : 0);
    if (ev == c->events)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    epoll_ctl(c->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->events = ev;
}

/* false: the connection is done. */
static bool conn_io(hconn *c)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0)
            return false;
        if (nghttp2_session_mem_recv(c->s, buf, (size_t)r) < 0)
            return false;
    }
    if (nghttp2_session_send(c->s) != 0)
        return false;
    want(c);
    return nghttp2_session_want_read(c->s) || nghttp2_session_want_write(c->s);
}

static void conn_free(hconn *c, hconn **list)
{
    epoll_ctl(c->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    nghttp2_session_del(c->s);
    if (c->prev)
        c->prev->next = c->next;
    else
        *list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

int lg_sink_grpc_run(int ls, lg_sink_counts *k, volatile sig_atomic_t *stop, double dur,
                     const char *json_out)
{
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, begin_headers_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, chunk_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frame_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, close_cb);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    hconn *conns = NULL;
    int64_t t0 = lg_now(), dumped = 0;
    int one = 1;
    struct epoll_event evs[64];
    while (!*stop && (dur <= 0 || lg_now() - t0 < (int64_t)(dur * 1e9))) {
        int n = epoll_wait(ep, evs, 64, 100);
        if (json_out && lg_now() - dumped > 200000000) {
            lg_sink_dump(json_out, k);
            dumped = lg_now();
        }
        for (int i = 0; i < n; i++) {
            hconn *c = evs[i].data.ptr;
            if (c) {
                if (!conn_io(c))
                    conn_free(c, &conns);
                continue;
            }
            int fd;
            while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                hconn *nc = calloc(1, sizeof *nc);
                if (!nc || nghttp2_session_server_new(&nc->s, cb, nc) != 0) {
                    free(nc);
                    close(fd);
                    continue;
                }
                nc->fd = fd;
                nc->k = k;
                nc->ep = ep;
                nc->events = EPOLLIN;
                nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000},
                                               {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
                nghttp2_submit_settings(nc->s, NGHTTP2_FLAG_NONE, iv, 2);
                /* The connection window too, so big requests keep flowing. */
                nghttp2_session_set_local_window_size(nc->s, NGHTTP2_FLAG_NONE, 0, 16 << 20);
                nc->next = conns;
                if (conns)
                    conns->prev = nc;
                conns = nc;
                struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = nc};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e2);
                if (!conn_io(nc))
                    conn_free(nc, &conns);
            }
        }
    }
    while (conns)
        conn_free(conns, &conns);
    nghttp2_session_callbacks_del(cb);
    close(ep);
    return 0;
}
