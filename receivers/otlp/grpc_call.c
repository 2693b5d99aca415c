/* grpc_call.c: one OTLP/gRPC call, on one HTTP/2 stream: the nghttp2
 * callbacks that see its headers and data, and its answer.
 *
 * Each stream reads one length-prefixed message. The prefix is checked
 * against max_recv_msg_size and the in-flight budget before the message is
 * read, and an uncompressed message is read straight into the arena its
 * batch will own. Errors known from the headers (unknown method, bad
 * encoding, expired deadline) are answered at once, without reading the
 * body; the stream is then reset with NO_ERROR so the client stops
 * sending, and whatever still arrives is discarded.
 *
 * Apart from grpc.c, which moves the bytes of whole connections: this file
 * never touches a socket, only the nghttp2 session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/log.h"
#include "grpc_int.h"
#include "net/grpc_wire.h"

#define ACCEPT_ENCODING "identity,gzip,deflate,zstd"

/* ---- streams ------------------------------------------------------------- */

void grpcs_stream_free(gstream *st)
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
    ot_otlpr_budget_give(&st->c->g->r->budget, st->reserved + st->meta_charged);
    ot_arena_free(st->meta_arena);
    free(st->authz);
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
    st->responded_at = ot_now_ns();
    gconn *c = st->c;
    otlpr *r = c->g->r;
    c->ping_strikes = 0;
    ot_otlpr_count_request(r, OTLPR_GRPC, code);
    if (code == OT_GRPC_OK) {
        uint8_t prefix[5];
        ot_buf body = OT_BUF_INIT;
        ot_otlpr_partial_body((ot_signal)st->signal, OTLPR_PROTOBUF, &st->rej, &body);
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
    st->responded_at = ot_now_ns();
    ot_otlpr_count_request(st->c->g->r, OTLPR_GRPC, OT_GRPC_INTERNAL);
    nghttp2_nv hdrs[] = {NV(":status", status)};
    nghttp2_submit_response(st->c->h2, st->id, hdrs, 1, NULL);
}

static const char *stream_header(void *ctx, const char *name)
{
    gstream *st = ctx;
    ot_auth *a = st->c->g->r->auth[OTLPR_GRPC];
    return a->header && strcmp(name, a->header) == 0 ? st->authz : NULL;
}

/* The request headers are all in: answer now what can be answered. */
static void check_headers(gstream *st)
{
    otlpr_grpc *g = st->c->g;
    if (g->r->auth[OTLPR_GRPC] && !ot_auth_check(g->r->auth[OTLPR_GRPC], stream_header, st)) {
        respond(st, OT_GRPC_UNAUTHENTICATED, "unauthenticated");
        return;
    }
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
    if (!atomic_load_explicit(&g->r->next[st->signal], memory_order_relaxed)) {
        respond(st, OT_GRPC_UNIMPLEMENTED, "this receiver is in no pipeline for this signal");
        return;
    }
    if (st->meta_busy) {
        respond(st, OT_GRPC_UNAVAILABLE, "too many request bytes in flight; retry later");
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
    otlpr_req req = OTLPR_REQ_INIT(&g->r->budget);
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
            b = ot_otlpr_batch(s, OTLPR_PROTOBUF, NULL, plain, plain_len, st->meta, st->n_meta,
                               &req, &o, &err);
        free(plain);
        ot_otlpr_budget_give(&g->r->budget, taken);
    } else {
        ot_arena *a = st->arena;
        st->arena = NULL; /* the batch (or the failure path) owns it now */
        b = ot_otlpr_batch(s, OTLPR_PROTOBUF, a, st->rd.buf, st->rd.len, st->meta, st->n_meta,
                           &req, &o, &err);
    }
    st->reserved += req.charged; /* given back below, with the message's bytes */
    st->rej = req.rej;
    ot_otlpr_count_rejects(g->r, OTLPR_GRPC, s, &req.rej);
    if (b && !b->items && req.rej.n)
        ot_batch_unref(b); /* every item was rejected: nothing to hand on */
    else if (b)
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

/* The copy lives as long as the stream, so what its arena holds is charged
 * to the in-flight budget like a message: streams held open with large
 * headers cannot grow memory past max_inflight_bytes. */
static bool charge_meta(gstream *st)
{
    uint64_t now = ot_arena_reserved(st->meta_arena);
    if (now <= st->meta_charged)
        return true;
    if (!ot_otlpr_budget_take(&st->c->g->r->budget, now - st->meta_charged)) {
        st->meta_busy = true;
        return false;
    }
    st->meta_charged = now;
    return true;
}

static void add_meta(gstream *st, const uint8_t *name, size_t nlen, const uint8_t *value,
                     size_t vlen)
{
    if (st->meta_busy)
        return;
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
    charge_meta(st);
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    gstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    /* nghttp2 leaves the list's size to us: past what we announced the
     * stream is reset (RFC 9113 6.5.2 counts 32 bytes per field) */
    st->header_bytes += nlen + vlen + 32;
    if (st->header_bytes > OTLPR_GRPC_MAX_HEADER_LIST)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
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
    ot_auth *a = st->c->g->r->auth[OTLPR_GRPC];
    if (a && a->header && !st->authz && strlen(a->header) == nlen &&
        memcmp(name, a->header, nlen) == 0 && vlen < 8192)
        st->authz = strndup((const char *)value, vlen);
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
    grpcs_stream_free(st);
    if (--c->n_streams == 0)
        c->idle_since = ot_now_ns();
    return 0;
}

void grpcs_set_callbacks(nghttp2_session_callbacks *cbs)
{
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
}
