/* grpc_h2.c: the HTTP/2 side of the gRPC client, as nghttp2 callbacks on
 * the loop thread. A call becomes a stream (submit); its DATA frames come
 * from the caller's buffer with NO_COPY, the message prefix first; the
 * response's headers, trailers and message are gathered on the stream and
 * turned into the call's status when the stream closes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/compress.h"
#include "base/log.h"
#include "net/grpc_client_int.h"

static ssize_t cb_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    gconn *c = ud;
    if (out_pending(c) >= OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    struct iovec iov = {(void *)(uintptr_t)data, len};
    if (ot_grpcc_conn_write(c, &iov, 1) < 0)
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
    if (ot_grpcc_conn_write(c, iov, n) < 0)
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
            ot_grpc_status_from_bin((const char *)value, valuelen, &st->details) == 0;
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
    ot_grpc_client *g = c->g;
    gstream *st = stream_of(c, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    gcall *call = st->call;
    if (call) {
        int code;
        char msg[256];
        msg[0] = '\0';
        ot_grpc_reply *r = call->reply;
        if (st->have_status) {
            code = st->grpc_status;
            snprintf(msg, sizeof msg, "%s", st->grpc_message);
        } else if (error_code != NGHTTP2_NO_ERROR) {
            code = ot_grpc_code_from_h2(error_code);
            snprintf(msg, sizeof msg, "stream reset: %s", nghttp2_http2_strerror(error_code));
        } else if (st->http_status == 0) {
            code = OT_GRPC_UNAVAILABLE;
            snprintf(msg, sizeof msg, "stream closed without a response");
        } else if (st->http_status != 200 || !st->grpc_content) {
            code = st->http_status == 200 ? OT_GRPC_UNKNOWN
                                          : ot_grpc_code_from_http(st->http_status);
            snprintf(msg, sizeof msg, "not a gRPC response: HTTP status %d", st->http_status);
        } else {
            code = OT_GRPC_INTERNAL;
            snprintf(msg, sizeof msg, "server closed the stream without grpc-status");
        }
        if (st->have_details) {
            r->has_details = true;
            r->details = st->details;
            if (!msg[0])
                snprintf(msg, sizeof msg, "%s", st->details.msg);
        }
        if (code == OT_GRPC_OK) {
            char why[200];
            if (st->resp_overflow) {
                ot_buf_reset(r->resp);
            } else if (unframe(st, r->resp, why, sizeof why) < 0) {
                /* The call succeeded; only its response message is
                 * unreadable, which the caller sees as an empty one. */
                ot_warn(g->log, "unreadable response", "exporter=%s error=\"%s\"", g->cfg->id, why);
                ot_buf_reset(r->resp);
            }
        }
        ot_grpcc_finish(g, call, code, msg);
    }
    ot_grpcc_stream_free(c, st);
    g->need_dispatch = true;
    return 0;
}

static int cb_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    gconn *c = ud;
    c->last_rx = ot_now_ns();
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        c->goaway = true;
        c->g->need_dispatch = true;
    } else if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        c->ping_at = 0;
    }
    return 0;
}

int ot_grpcc_callbacks(nghttp2_session_callbacks **out)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cbs, cb_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, cb_send_data);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, cb_read_length);
    nghttp2_session_callbacks_set_on_header_callback(cbs, cb_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, cb_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, cb_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, cb_frame_recv);
    *out = cbs;
    return 0;
}

/* ---- calls --------------------------------------------------------------- */

bool ot_grpc_client_reserved(const char *n)
{
    static const char *const r[] = {"content-type", "te", "user-agent", "content-length",
                                    "connection", "host", "transfer-encoding", "keep-alive",
                                    "upgrade", "proxy-connection", NULL};
    if (n[0] == ':' || !n[0] || strncasecmp(n, "grpc-", 5) == 0)
        return true;
    for (size_t i = 0; r[i]; i++)
        if (strcasecmp(n, r[i]) == 0)
            return true;
    return false;
}

bool ot_grpcc_submit(ot_grpc_client *g, gconn *c, gcall *call)
{
    gstream *st = calloc(1, sizeof *st);
    if (!st)
        return false;
    st->c = c;
    st->call = call;
    st->body = call->msg;
    st->body_len = call->len;
    ot_grpc_prefix(st->prefix, call->compressed, (uint32_t)call->len);
    ot_grpc_timeout_format(call->deadline - ot_now_ns(), st->timeout);

    nghttp2_nv nv[16 + 64];
    size_t n = 0;
#define NV(nm, val, vl)                                                                           \
    nv[n++] = (nghttp2_nv){(uint8_t *)(uintptr_t)(nm), (uint8_t *)(uintptr_t)(val), strlen(nm),   \
                           (vl), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE}
    NV(":method", "POST", 4);
    NV(":scheme", g->tls ? "https" : "http", g->tls ? 5 : 4);
    /* The path and this call's metadata belong to the caller, who may be
     * gone (deadline) before HEADERS leaves: nghttp2 copies them. */
    nv[n++] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)(uintptr_t)call->path, 5,
                           strlen(call->path), NGHTTP2_NV_FLAG_NO_COPY_NAME};
    for (size_t i = 0; i < g->n_fixed; i++)
        nv[n++] = g->fixed[i];
    if (call->deadline != INT64_MAX) /* the helper's "no timeout" */
        NV("grpc-timeout", st->timeout, strlen(st->timeout));
    if (call->compressed)
        NV("grpc-encoding", "gzip", 4);
    for (size_t i = 0; i < g->n_hdr && n < sizeof nv / sizeof nv[0]; i++) {
        if (!g->hdr_names[i])
            continue;
        const char *v = g->cfg->metadata->vals[i] ? g->cfg->metadata->vals[i] : "";
        NV(g->hdr_names[i], v, strlen(v));
    }
    const ot_strmap *md = call->md;
    for (size_t i = 0; md && i < md->n && n < sizeof nv / sizeof nv[0]; i++) {
        const char *k = md->keys[i], *v = md->vals[i] ? md->vals[i] : "";
        if (!k || ot_grpc_client_reserved(k))
            continue;
        nv[n++] = (nghttp2_nv){(uint8_t *)(uintptr_t)k, (uint8_t *)(uintptr_t)v, strlen(k),
                               strlen(v), NGHTTP2_NV_FLAG_NONE};
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

