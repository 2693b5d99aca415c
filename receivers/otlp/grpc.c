/* grpc.c: OTLP/gRPC on nghttp2. One thread runs an epoll loop over the
 * listening socket and every connection (non-blocking, h2c with prior
 * knowledge, or TLS with ALPN h2), feeds bytes to nghttp2 and calls the
 * pipeline when a request stream ends.
 *
 * Each stream reads one length-prefixed message. The prefix is checked
 * against max_recv_msg_size and the in-flight budget before the message is
 * read, and an uncompressed message is read straight into the arena its
 * batch will own. Errors known from the headers (unknown method, bad
 * encoding, expired deadline) are answered at once, without reading the
 * body; the stream is then reset with NO_ERROR so the client stops
 * sending, and whatever still arrives is discarded. */
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

#include "base/codec.h"
#include "grpc_frame.h"
#include "net/grpc_wire.h"
#include "base/log.h"
#include "net/listen.h"
#include "otlp.h"
#include "net/tls.h"

#define ACCEPT_ENCODING "identity,gzip,deflate,zstd"
#define READ_CHUNK 16384
#define TICK_MS 200
/* Connections one receiver serves at once; more are accepted and closed. */
#define OTLPR_GRPC_MAX_CONNS 4096

typedef struct gconn gconn;

typedef struct gstream {
    gconn *c;
    int32_t id;
    int signal; /* -1 until :path names an Export method */
    bool path_seen, post, ct_ok;
    int enc; /* -1: unsupported grpc-encoding */
    int64_t deadline; /* 0: none */
    bool deadline_bad;
    ot_grpcf_reader rd;
    ot_arena *arena;  /* uncompressed message: the batch adopts it */
    uint8_t *heapbuf; /* compressed message */
    uint64_t reserved;
    bool responded, request_done;
    ot_arena *meta_arena;
    ot_meta_kv *meta;
    size_t n_meta, cap_meta;
    ot_buf resp; /* framed response message */
    size_t resp_off;
    struct gstream *prev, *next; /* the connection's open streams */
} gstream;

struct gconn {
    otlpr_grpc *g;
    int fd;
    SSL *ssl;
    bool tls_done;
    bool ssl_want_write;
    nghttp2_session *h2;
    uint8_t *out; /* bytes nghttp2 produced that the socket did not take yet */
    size_t out_len, out_off, out_cap;
    uint32_t ev;
    int64_t created, last_recv, idle_since, ping_sent, goaway_at, last_client_ping;
    int n_streams;
    gstream *streams; /* nghttp2_session_del does not close them for us */
    int ping_strikes;
    bool closing;
    gconn *prev, *next;
};

struct otlpr_grpc {
    otlpr *r;
    const otlpr_grpc_cfg *cfg;
    int lfd, epfd, evfd;
    int port;
    pthread_t thread;
    ot_tls_reloader *tls; /* the current context for each new connection */
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    gconn *conns;
    size_t n_conns;
    int spare_fd; /* given up to accept-and-close when out of descriptors */
    size_t max_msg;
    atomic_bool stopping;
    _Atomic int64_t deadline;
    bool draining;
};

/* ---- streams ------------------------------------------------------------- */

static void stream_free(gstream *st)
{
    gconn *c = st->c;
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    ot_arena_free(st->arena);
    free(st->heapbuf);
    ot_otlpr_budget_give(&st->c->g->r->budget, st->reserved);
    ot_arena_free(st->meta_arena);
    ot_buf_free(&st->resp);
    free(st);
}

static uint8_t *msg_alloc(void *ctx, uint32_t len, bool compressed, int *why)
{
    gstream *st = ctx;
    otlpr *r = st->c->g->r;
    if (len > r->budget.max) {
        *why = OT_GRPCF_TOO_LARGE; /* could never fit: retrying would not help */
        return NULL;
    }
    if (!ot_otlpr_budget_take(&r->budget, len)) {
        *why = OT_GRPCF_REFUSED;
        return NULL;
    }
    st->reserved = len;
    *why = OT_GRPCF_NOMEM;
    if (compressed) {
        st->heapbuf = malloc(len ? len : 1);
        return st->heapbuf;
    }
    st->arena = ot_arena_new((size_t)len + 64);
    return st->arena ? ot_arena_alloc(st->arena, len ? len : 1) : NULL;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME}

static ssize_t resp_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *src, void *user)
{
    gstream *st = src->ptr;
    size_t n = st->resp.len - st->resp_off;
    if (n > length)
        n = length;
    if (n)
        memcpy(buf, st->resp.data + st->resp_off, n);
    st->resp_off += n;
    if (st->resp_off == st->resp.len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv tr[] = {NV("grpc-status", "0")};
        if (nghttp2_submit_trailer(s, id, tr, 1) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

/* Answers a stream: the response message and grpc-status 0, or a
 * trailers-only error with grpc-message (and RetryInfo when the client
 * should come back). */
static void respond(gstream *st, int code, const char *msg)
{
    if (st->responded)
        return;
    st->responded = true;
    gconn *c = st->c;
    otlpr *r = c->g->r;
    c->ping_strikes = 0;
    ot_otlpr_count_request(r, OTLPR_GRPC, code);
    if (code == OT_GRPC_OK) {
        uint8_t prefix[5];
        ot_buf body = OT_BUF_INIT;
        ot_otlpr_success_body((ot_signal)st->signal, OTLPR_PROTOBUF, 0, NULL, &body);
        ot_grpc_prefix(prefix, false, (uint32_t)body.len);
        ot_buf_append(&st->resp, prefix, 5);
        ot_buf_append(&st->resp, body.data, body.len);
        ot_buf_free(&body);
        nghttp2_nv hdrs[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                             NV("grpc-accept-encoding", ACCEPT_ENCODING)};
        nghttp2_data_provider dp = {.source.ptr = st, .read_callback = resp_read};
        if (!st->resp.oom &&
            nghttp2_submit_response(c->h2, st->id, hdrs, sizeof hdrs / sizeof hdrs[0], &dp) == 0)
            return;
        code = OT_GRPC_INTERNAL;
        msg = "out of memory";
    }
    char codebuf[16];
    snprintf(codebuf, sizeof codebuf, "%d", code);
    ot_buf pm = OT_BUF_INIT, details = OT_BUF_INIT;
    ot_grpc_percent_encode(msg ? msg : "", &pm);
    ot_buf_putc(&pm, '\0');
    nghttp2_nv hdrs[6] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                          NV("grpc-accept-encoding", ACCEPT_ENCODING), NV("grpc-status", codebuf),
                          NV("grpc-message", pm.data ? pm.data : "")};
    size_t n = 5;
    if (code == OT_GRPC_UNAVAILABLE) {
        ot_buf st_body = OT_BUF_INIT;
        ot_otlpr_status_body(OTLPR_PROTOBUF, code, msg, 1, &st_body);
        /* -bin header values are base64, sent without padding */
        if (ot_buf_reserve(&details, ot_base64_len(st_body.len, OT_B64_NOPAD)) == 0) {
            details.len = ot_base64_encode((const uint8_t *)st_body.data, st_body.len,
                                           details.data, OT_B64_NOPAD);
            details.data[details.len] = '\0';
        }
        ot_buf_free(&st_body);
        if (!details.oom)
            hdrs[n++] = (nghttp2_nv)NV("grpc-status-details-bin", details.data);
    }
    nghttp2_submit_response(c->h2, st->id, hdrs, n, NULL);
    ot_buf_free(&pm);
    ot_buf_free(&details);
}

static int outcome_code(otlpr_outcome o)
{
    switch (o) {
    case OTLPR_OK:
        return OT_GRPC_OK;
    case OTLPR_INVALID:
    case OTLPR_PERMANENT:
        return OT_GRPC_INVALID_ARGUMENT;
    case OTLPR_NOT_WIRED:
        return OT_GRPC_UNIMPLEMENTED;
    case OTLPR_RETRY:
    case OTLPR_BUSY:
        return OT_GRPC_UNAVAILABLE;
    case OTLPR_TOO_LARGE:
        return OT_GRPC_RESOURCE_EXHAUSTED;
    default:
        return OT_GRPC_INTERNAL;
    }
}

static void respond_http(gstream *st, const char *status)
{
    if (st->responded)
        return;
    st->responded = true;
    ot_otlpr_count_request(st->c->g->r, OTLPR_GRPC, OT_GRPC_INTERNAL);
    nghttp2_nv hdrs[] = {NV(":status", status)};
    nghttp2_submit_response(st->c->h2, st->id, hdrs, 1, NULL);
}

/* The request headers are all in: answer now what can be answered. */
static void check_headers(gstream *st)
{
    otlpr_grpc *g = st->c->g;
    if (!st->post) {
        respond_http(st, "405");
        return;
    }
    if (!st->ct_ok) {
        respond_http(st, "415");
        return;
    }
    if (st->signal < 0) {
        respond(st, OT_GRPC_UNIMPLEMENTED, "unknown service or method");
        return;
    }
    if (!g->r->next[st->signal]) {
        respond(st, OT_GRPC_UNIMPLEMENTED, "this receiver is in no pipeline for this signal");
        return;
    }
    if (st->enc < 0) {
        respond(st, OT_GRPC_UNIMPLEMENTED,
                "unsupported grpc-encoding; supported: " ACCEPT_ENCODING);
        return;
    }
    if (st->deadline && st->deadline <= ot_now_ns()) {
        respond(st, OT_GRPC_DEADLINE_EXCEEDED, "deadline exceeded before the request was read");
        return;
    }
}

static void frame_error(gstream *st, int rc)
{
    char msg[160];
    switch (rc) {
    case OT_GRPCF_TOO_LARGE:
        snprintf(msg, sizeof msg, "received message larger than max (%u vs. %zu)", st->rd.len,
                 st->c->g->max_msg);
        respond(st, OT_GRPC_RESOURCE_EXHAUSTED, msg);
        break;
    case OT_GRPCF_REFUSED:
        respond(st, OT_GRPC_UNAVAILABLE, "too many request bytes in flight; retry later");
        break;
    case OT_GRPCF_NOMEM:
        respond(st, OT_GRPC_INTERNAL, "out of memory");
        break;
    case OT_GRPCF_EXTRA:
        respond(st, OT_GRPC_INTERNAL, "more than one request message on a unary call");
        break;
    case OT_GRPCF_BAD_FLAG:
        respond(st, OT_GRPC_INTERNAL, "invalid compressed flag in message prefix");
        break;
    case OT_GRPCF_NO_MESSAGE:
        respond(st, OT_GRPC_INTERNAL, "no request message");
        break;
    default:
        respond(st, OT_GRPC_INTERNAL, "request message truncated");
        break;
    }
}

/* The client finished the request: decode, hand on, answer. */
static void process(gstream *st)
{
    st->request_done = true;
    if (st->responded)
        return;
    int rc = ot_grpcf_finish(&st->rd);
    if (rc != OT_GRPCF_OK) {
        frame_error(st, rc);
        return;
    }
    if (st->deadline && st->deadline <= ot_now_ns()) {
        respond(st, OT_GRPC_DEADLINE_EXCEEDED, "deadline exceeded");
        return;
    }
    otlpr_grpc *g = st->c->g;
    ot_err err = {{0}};
    otlpr_outcome o = OTLPR_INVALID;
    ot_batch *b = NULL;
    ot_signal s = (ot_signal)st->signal;
    if (st->rd.compressed) {
        if (st->enc == OTLPR_ENC_IDENTITY) {
            respond(st, OT_GRPC_INTERNAL, "compressed message without grpc-encoding");
            return;
        }
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        uint64_t taken = 0;
        int d = ot_otlpr_decompress((otlpr_enc)st->enc, st->heapbuf, st->rd.len, g->max_msg,
                                    &g->r->budget, &taken, &plain, &plain_len, &err);
        o = d == OTLPR_DECOMP_TOO_LARGE ? OTLPR_TOO_LARGE
            : d == OTLPR_DECOMP_BUSY    ? OTLPR_BUSY
            : d == OTLPR_DECOMP_NOMEM   ? OTLPR_INTERNAL
                                        : OTLPR_INVALID;
        if (d == OTLPR_DECOMP_OK)
            b = ot_otlpr_batch(s, OTLPR_PROTOBUF, NULL, plain, plain_len, st->meta, st->n_meta, &o,
                               &err);
        free(plain);
        ot_otlpr_budget_give(&g->r->budget, taken);
    } else {
        ot_arena *a = st->arena;
        st->arena = NULL; /* the batch (or the failure path) owns it now */
        b = ot_otlpr_batch(s, OTLPR_PROTOBUF, a, st->rd.buf, st->rd.len, st->meta, st->n_meta,
                           &o, &err);
    }
    if (b)
        o = ot_otlpr_consume(g->r, OTLPR_GRPC, b, &err);
    if (o != OTLPR_OK)
        ot_debug("otlp", "request refused",
                 "receiver=%s transport=grpc signal=%s outcome=%s err=\"%s\"", g->r->id,
                 ot_signal_name(s), ot_otlpr_outcome_name(o), err.msg);
    respond(st, outcome_code(o), o == OTLPR_OK ? NULL : err.msg);
    /* the message is no longer needed; the budget is given back now, not
     * when the client gets around to closing the stream */
    ot_otlpr_budget_give(&g->r->budget, st->reserved);
    st->reserved = 0;
    free(st->heapbuf);
    st->heapbuf = NULL;
}

/* ---- nghttp2 callbacks --------------------------------------------------------- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    gconn *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    gstream *st = calloc(1, sizeof *st);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->c = c;
    st->id = f->hd.stream_id;
    st->signal = -1;
    ot_grpcf_reader_init(&st->rd, c->g->max_msg, msg_alloc, st);
    nghttp2_session_set_stream_user_data(s, st->id, st);
    st->next = c->streams;
    if (c->streams)
        c->streams->prev = st;
    c->streams = st;
    c->n_streams++;
    return 0;
}

static bool is_reserved_header(const uint8_t *name, size_t n)
{
    return (n >= 5 && memcmp(name, "grpc-", 5) == 0) || (n == 2 && memcmp(name, "te", 2) == 0) ||
           (n == 12 && memcmp(name, "content-type", 12) == 0);
}

static void add_meta(gstream *st, const uint8_t *name, size_t nlen, const uint8_t *value,
                     size_t vlen)
{
    if (!st->meta_arena && !(st->meta_arena = ot_arena_new(2048)))
        return;
    if (st->n_meta == st->cap_meta) {
        size_t ncap = st->cap_meta ? st->cap_meta * 2 : 8;
        ot_meta_kv *nv = ot_arena_alloc(st->meta_arena, ncap * sizeof *nv);
        if (!nv)
            return;
        if (st->n_meta)
            memcpy(nv, st->meta, st->n_meta * sizeof *nv);
        st->meta = nv;
        st->cap_meta = ncap;
    }
    const char *k = ot_arena_strndup(st->meta_arena, (const char *)name, nlen);
    const char *v = ot_arena_strndup(st->meta_arena, (const char *)value, vlen);
    if (k && v)
        st->meta[st->n_meta++] = (ot_meta_kv){k, v};
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
        st->path_seen = true;
        st->signal = ot_grpc_path_signal((const char *)value, vlen);
    } else if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
        st->post = vlen == 4 && memcmp(value, "POST", 4) == 0;
    } else if (nlen == 12 && memcmp(name, "content-type", 12) == 0) {
        /* application/grpc, application/grpc+proto, application/grpc;… */
        st->ct_ok = vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
                    (vlen == 16 || value[16] == '+' || value[16] == ';');
    } else if (nlen == 13 && memcmp(name, "grpc-encoding", 13) == 0) {
        char v[32];
        size_t n = vlen < sizeof v - 1 ? vlen : sizeof v - 1;
        memcpy(v, value, n);
        v[n] = '\0';
        st->enc = vlen < sizeof v - 1 ? ot_otlpr_encoding(v) : -1;
    } else if (nlen == 12 && memcmp(name, "grpc-timeout", 12) == 0) {
        int64_t ns;
        if (ot_grpc_timeout_parse((const char *)value, vlen, &ns) == 0) {
            int64_t now = ot_now_ns();
            st->deadline = ns > INT64_MAX - now ? INT64_MAX : now + ns;
            if (st->deadline == 0)
                st->deadline = 1;
        }
    }
    if (st->c->g->cfg->include_metadata && nlen && name[0] != ':' &&
        !is_reserved_header(name, nlen))
        add_meta(st, name, nlen, value, vlen);
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    gconn *c = user;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS: {
        gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (!st)
            return 0;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
            check_headers(st);
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            process(st);
        break;
    }
    case NGHTTP2_DATA:
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
            if (st)
                process(st);
        }
        break;
    case NGHTTP2_PING:
        if (f->hd.flags & NGHTTP2_FLAG_ACK) {
            c->ping_sent = 0;
        } else if (c->g->cfg->keepalive.enforcement_policy.present) {
            /* as gRPC servers do: pings too often, or without streams when
             * that is not permitted, are strikes; the third one ends the
             * connection */
            const otlpr_enforcement *ep = &c->g->cfg->keepalive.enforcement_policy;
            int64_t now = ot_now_ns();
            bool bad = (c->n_streams == 0 && !ep->permit_without_stream) ||
                       (c->last_client_ping && now - c->last_client_ping < ep->min_time);
            c->last_client_ping = now;
            if (bad && ++c->ping_strikes > 2)
                nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    gstream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->responded)
        return 0; /* answered already: the rest is dropped */
    int rc = ot_grpcf_feed(&st->rd, data, len);
    if (rc != OT_GRPCF_OK)
        frame_error(st, rc);
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        /* answered before the client finished sending: ask it to stop, as
         * HTTP/2 (RFC 9113 8.1) and gRPC servers do */
        if (st && !st->request_done)
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user)
{
    gconn *c = user;
    gstream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    stream_free(st);
    if (--c->n_streams == 0)
        c->idle_since = ot_now_ns();
    return 0;
}

/* ---- connections ------------------------------------------------------------------ */

static void conn_close(gconn *c)
{
    otlpr_grpc *g = c->g;
    epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->h2)
        nghttp2_session_del(c->h2);
    while (c->streams)
        stream_free(c->streams);
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
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 65536},
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
    nghttp2_session_callbacks_set_on_begin_headers_callback(g->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(g->cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(g->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(g->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(g->cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(g->cbs, on_stream_close);

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
