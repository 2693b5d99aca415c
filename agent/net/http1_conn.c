/* http1_conn.c: one connection of the HTTP/1.1 server (http_server.c
 * runs the loops that own them): reading heads and bodies into its buffer
 * and handing them to the request (http1_req.c), writing the answer,
 * closing. A connection reads into its buffer while it waits for a head
 * or reads a body, and not at all while an answer is unsent: a client
 * that pipelines requests it never reads holds one buffer and the
 * kernel's socket buffers, nothing more. The head stays at the start of
 * the buffer for the request's life (handlers read headers from it); body
 * bytes pass through the rest and are handed on as they come. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/http1_int.h"

#define BUF_CAP (64u << 10)
#define STREAM_PIECE (64u << 10)
#define STREAM_PREFIX 24 /* room for a chunk's size line before its data */
#define INLINE_BODY (16u << 10)

/* ---- socket I/O ---------------------------------------------------------------- */

/* > 0 bytes, 0 end of stream, -1 error, -2 try again later */
static ssize_t conn_read(h1conn *c, char *p, size_t n)
{
    if (c->ssl) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return -2;
        return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }
    ssize_t r = recv(c->fd, p, n, 0);
    if (r >= 0)
        return r;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -2 : -1;
}

/* bytes written (0: try again later), -1 error */
static ssize_t conn_write(h1conn *c, const void *a, size_t an, const void *b, size_t bn)
{
    if (c->ssl) {
        const void *p = an ? a : b;
        size_t n = an ? an : bn;
        ERR_clear_error();
        int r = SSL_write(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    struct iovec iov[2] = {{(void *)a, an}, {(void *)b, bn}};
    struct msghdr m = {.msg_iov = an ? iov : iov + 1, .msg_iovlen = an && bn ? 2 : 1};
    ssize_t r = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (r >= 0)
        return r;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
}

static char *buf_get(h1loop *lp)
{
    return lp->nspare ? lp->spare[--lp->nspare] : malloc(BUF_CAP);
}

static void buf_put(h1loop *lp, char *b)
{
    if (!b)
        return;
    if (lp->nspare < SPARE_BUFS)
        lp->spare[lp->nspare++] = b;
    else
        free(b);
}

static void touch(h1conn *c)
{
    h1loop *lp = c->lp;
    c->active_at = ot_now_ns();
    if (lp->tail == c)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else if (lp->head == c)
        lp->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = lp->tail;
    c->next = NULL;
    if (lp->tail)
        lp->tail->next = c;
    else
        lp->head = c;
    lp->tail = c;
}

/* ---- the request's end and the connection's -------------------------------------- */

static void end_request(h1conn *c)
{
    ot_http_server *s = c->lp->s;
    if (c->resp) {
        ot_h1_resp_free(c->resp);
        c->resp = NULL;
    }
    if (!c->in_req)
        return;
    c->in_req = false;
    /* first: from here the guard's thread no longer hands q to cut */
    ot_http_guard_done(s->guard, c->gc);
    if (s->o.stream && s->o.stream->done)
        s->o.stream->done(c->q, s->o.arg);
    free(c->q->body);
    c->q->body = NULL;
    atomic_fetch_sub(&s->active, 1);
}

void ot_h1_conn_close(h1conn *c)
{
    h1loop *lp = c->lp;
    ot_http_server *s = lp->s;
    end_request(c);
    ot_http_guard_closed(s->guard, c->gc);
    if (c->prev)
        c->prev->next = c->next;
    else
        lp->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        lp->tail = c->prev;
    if (c->ssl)
        SSL_free(c->ssl);
    close(c->fd);
    buf_put(lp, c->buf);
    free(c->q);
    ot_buf_free(&c->out);
    free(c);
    atomic_fetch_sub(&s->nconns, 1);
}

/* ---- answers ------------------------------------------------------------------------ */

static const char *reason(unsigned st)
{
    switch (st) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return st < 300 ? "OK" : st < 400 ? "Redirect" : st < 500 ? "Client Error"
                                                                       : "Server Error";
    }
}

int ot_h1_conn_queue(h1conn *c, unsigned status, ot_http_resp *r, const char *xname,
                     const char *xvalue)
{
    ot_http_server *s = c->lp->s;
    if (!ot_http_guard_answer(s->guard, c->gc)) {
        /* the guard answered 408 and closed it already */
        ot_h1_resp_free(r);
        c->q->cut_off = true;
        return -1;
    }
    if (xname && xvalue)
        ot_http_resp_header(r, xname, xvalue);
    bool stream = r->read != NULL;
    bool chunked = stream && r->slen < 0 && c->q->h.minor >= 1;
    bool close_after = !c->keep_alive || !c->body_done || atomic_load(&s->stopping) ||
                       (stream && r->slen < 0 && !chunked);
    bool nobody = status < 200 || status == 204 || status == 304;
    ot_buf *o = &c->out;
    ot_buf_reset(o);
    c->out_off = 0;
    ot_buf_printf(o, "HTTP/1.1 %u %s\r\n", status, reason(status));
    if (!nobody) {
        if (!stream)
            ot_buf_printf(o, "Content-Length: %zu\r\n", r->len);
        else if (r->slen >= 0)
            ot_buf_printf(o, "Content-Length: %lld\r\n", (long long)r->slen);
        else if (chunked && !c->head_only)
            ot_buf_puts(o, "Transfer-Encoding: chunked\r\n");
    }
    if (close_after)
        ot_buf_puts(o, "Connection: close\r\n");
    else if (c->q->h.minor == 0)
        ot_buf_puts(o, "Connection: keep-alive\r\n");
    ot_buf_append(o, r->head.data, r->head.len);
    ot_buf_puts(o, "\r\n");
    bool body = !nobody && !c->head_only;
    if (body && !stream && r->len <= INLINE_BODY)
        ot_buf_append(o, r->body, r->len);
    if (o->oom) {
        ot_h1_resp_free(r);
        c->q->cut_off = true;
        return -1;
    }
    c->resp = r;
    c->body_off = body && !stream && r->len > INLINE_BODY ? 0 : r->len;
    c->resp_eof = !body || !stream;
    c->resp_chunked = chunked;
    c->streamed = 0;
    c->keep_alive = !close_after;
    c->st = C_SEND;
    return 0;
}

/* The next piece of a streamed body into out: 1 more to send, 0 the end,
 * -1 the producer failed (the connection is cut). */
static int refill(h1conn *c)
{
    ot_http_resp *r = c->resp;
    ot_buf *o = &c->out;
    ot_buf_reset(o);
    c->out_off = 0;
    if (ot_buf_reserve(o, STREAM_PREFIX + STREAM_PIECE + 8) < 0)
        return -1;
    size_t cap = STREAM_PIECE;
    if (r->slen >= 0 && (uint64_t)r->slen - c->streamed < cap)
        cap = (size_t)((uint64_t)r->slen - c->streamed);
    ssize_t n = cap ? r->read(r->ctx, o->data + STREAM_PREFIX, cap) : 0;
    if (n < 0 || (size_t)n > cap)
        return -1;
    if (n == 0) {
        c->resp_eof = true;
        if (r->slen >= 0 && c->streamed != (uint64_t)r->slen)
            return -1; /* shorter than it said: the client must not take it whole */
        if (!c->resp_chunked)
            return 0;
        memcpy(o->data, "0\r\n\r\n", 5);
        o->len = 5;
        return 1;
    }
    c->streamed += (uint64_t)n;
    if (!c->resp_chunked) {
        c->out_off = STREAM_PREFIX;
        o->len = STREAM_PREFIX + (size_t)n;
        return 1;
    }
    char sz[STREAM_PREFIX];
    int k = snprintf(sz, sizeof sz, "%zx\r\n", (size_t)n);
    c->out_off = STREAM_PREFIX - (size_t)k;
    memcpy(o->data + c->out_off, sz, (size_t)k);
    o->len = STREAM_PREFIX + (size_t)n;
    memcpy(o->data + o->len, "\r\n", 2);
    o->len += 2;
    return 1;
}

/* 1 all sent, 0 the socket is full, -1 the connection is to be cut */
static int flush(h1conn *c)
{
    for (;;) {
        ot_http_resp *r = c->resp;
        size_t hn = c->out.len - c->out_off;
        size_t bn = r && !r->read ? r->len - c->body_off : 0;
        if (hn || bn) {
            ssize_t w = conn_write(c, c->out.data + c->out_off, hn,
                                   r ? r->body + c->body_off : NULL, bn);
            if (w < 0)
                return -1;
            if (w == 0)
                return 0;
            touch(c);
            size_t wn = (size_t)w;
            size_t h = wn < hn ? wn : hn;
            c->out_off += h;
            c->body_off += wn - h;
            continue;
        }
        if (!r || c->resp_eof)
            return 1;
        int f = refill(c);
        if (f < 0)
            return -1;
        if (f == 0)
            return 1;
    }
}

/* The server's answer to a head it could not parse: nothing of the
 * request can be trusted, so no handler sees it and the connection ends. */
static void raw_refusal(h1conn *c, unsigned status)
{
    const char *msg = status == 431   ? "request header fields too large\n"
                      : status == 413 ? "request body too large\n"
                      : status == 501 ? "transfer coding not implemented\n"
                      : status == 505 ? "HTTP version not supported\n"
                      : status == 417 ? "expectation failed\n"
                                      : "bad request\n";
    ot_http_guard_answer(c->lp->s->guard, c->gc);
    ot_buf_reset(&c->out);
    c->out_off = 0;
    ot_buf_printf(&c->out,
                  "HTTP/1.1 %u %s\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                  "Content-Length: %zu\r\n\r\n%s",
                  status, reason(status), strlen(msg), msg);
    c->keep_alive = false;
    c->body_done = false;
    c->st = C_SEND;
}

/* ---- reading requests ------------------------------------------------------------- */

static void start_request(h1conn *c)
{
    ot_http_server *s = c->lp->s;
    ot_http_req *q = c->q;
    ot_h1_head h = q->h;
    size_t extra = s->o.stream ? s->o.stream->state_size : 0;
    memset(q, 0, sizeof *q + extra);
    q->h = h;
    q->s = s;
    q->c = c;
    c->in_req = true;
    atomic_fetch_add(&s->active, 1);
    ot_http_guard_begin(s->guard, c->gc, q);
    c->head_only = strcmp(q->h.method, "HEAD") == 0;
    c->keep_alive = q->h.keep_alive;
    c->body_chunked = q->h.chunked;
    c->body_left = q->h.content_length > 0 ? (uint64_t)q->h.content_length : 0;
    c->body_done = !c->body_chunked && !c->body_left;
    ot_h1_req_begin(q);
    if (q->replied || q->cut_off)
        return;
    if (q->h.content_length > (int64_t)s->o.max_body) {
        ot_h1_refuse(q, 413, "request body too large", NULL, NULL);
        return;
    }
    if (c->body_done) {
        ot_h1_req_end(q);
        return;
    }
    if (c->body_chunked)
        ot_h1_chunk_init(&c->ch, s->o.max_body);
    c->st = C_BODY;
    if (q->h.expect_continue && q->h.minor >= 1 && c->pos == c->len) {
        ot_buf_reset(&c->out);
        c->out_off = 0;
        ot_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
    }
}

static bool deliver(h1conn *c, const uint8_t *p, size_t n)
{
    ot_http_req *q = c->q;
    q->received += n;
    if (q->received > c->lp->s->o.max_body) {
        ot_h1_refuse(q, 413, "request body too large", NULL, NULL);
        return true;
    }
    return ot_h1_req_data(q, p, n);
}

/* What the buffered input allows: 1 the state moved on, 0 more input is
 * needed, -1 the connection is to be cut. */
static int process(h1conn *c)
{
    ot_http_server *s = c->lp->s;
    if (c->st == C_HEAD) {
        if (c->len == 0)
            return 0;
        if (!c->q) {
            size_t extra = s->o.stream ? s->o.stream->state_size : 0;
            if (!(c->q = calloc(1, sizeof *c->q + extra)))
                return -1;
        }
        long h = ot_h1_parse_head(c->buf, c->len, &c->scanned, &c->q->h);
        if (h == 0)
            return 0;
        if (h < 0) {
            raw_refusal(c, (unsigned)-h);
            return 1;
        }
        c->head_len = c->pos = (size_t)h;
        start_request(c);
        return c->q->cut_off ? -1 : 1;
    }
    if (c->st == C_LINGER) {
        c->lingered += c->len - c->pos;
        c->len = c->pos = 0;
        return c->lingered > 4 * (uint64_t)s->o.max_body + BUF_CAP ? -1 : 0;
    }
    /* C_BODY */
    ot_http_req *q = c->q;
    while (c->pos < c->len && c->st == C_BODY) {
        const uint8_t *p = (const uint8_t *)c->buf + c->pos;
        size_t n = c->len - c->pos;
        if (c->body_chunked) {
            size_t off, dl;
            long k = ot_h1_chunk_step(&c->ch, p, n, &off, &dl);
            if (k < 0) {
                ot_h1_refuse(q, (unsigned)-k,
                             k == -413 ? "request body too large" : "malformed chunked body",
                             NULL, NULL);
                break;
            }
            c->pos += (size_t)k;
            if (dl && !deliver(c, p + off, dl))
                return -1;
            if (c->st == C_BODY && ot_h1_chunk_done(&c->ch))
                c->body_done = true;
        } else {
            size_t k = n < c->body_left ? n : (size_t)c->body_left;
            c->pos += k;
            c->body_left -= k;
            if (!deliver(c, p, k))
                return -1;
            if (c->st == C_BODY && !c->body_left)
                c->body_done = true;
        }
        if (c->body_done) {
            ot_h1_req_end(q);
            break;
        }
    }
    if (q->cut_off)
        return -1;
    if (c->st == C_BODY && c->pos == c->len) {
        c->pos = c->len = c->head_len; /* the window starts again after the head */
        return 0;
    }
    return c->st == C_BODY ? 0 : 1;
}

/* The answer went out: the next request, a lingering close or the end. */
static int request_over(h1conn *c)
{
    ot_http_server *s = c->lp->s;
    end_request(c);
    if (!c->keep_alive || atomic_load(&s->stopping)) {
        if (!c->body_done && !c->ssl) {
            /* the rest of the body is read and dropped, so that closing
             * does not reset the connection under the answer */
            shutdown(c->fd, SHUT_WR);
            c->st = C_LINGER;
            c->lingered = 0;
            c->len = c->pos = c->head_len = 0;
            return 0;
        }
        ot_h1_conn_close(c);
        return -1;
    }
    c->st = C_HEAD;
    size_t left = c->len - c->pos;
    if (left)
        memmove(c->buf, c->buf + c->pos, left);
    c->len = left;
    c->pos = c->head_len = c->scanned = 0;
    if (!left) {
        /* an idle keep-alive connection holds no buffer */
        buf_put(c->lp, c->buf);
        c->buf = NULL;
    }
    return 0;
}

void ot_h1_conn_run(h1conn *c)
{
    for (;;) {
        if (c->st == C_SEND) {
            int f = flush(c);
            if (f < 0) {
                ot_h1_conn_close(c);
                return;
            }
            if (f == 0 || request_over(c) < 0)
                return;
            continue;
        }
        if (c->out_off < c->out.len) { /* 100 Continue */
            ssize_t w = conn_write(c, c->out.data + c->out_off, c->out.len - c->out_off, NULL, 0);
            if (w < 0) {
                ot_h1_conn_close(c);
                return;
            }
            c->out_off += (size_t)w;
        }
        int p = process(c);
        if (p < 0) {
            ot_h1_conn_close(c);
            return;
        }
        if (p > 0)
            continue;
        if (c->drained)
            return;
        if (!c->buf && !(c->buf = buf_get(c->lp))) {
            ot_h1_conn_close(c);
            return;
        }
        if (c->len == BUF_CAP) { /* cannot happen: heads are bounded below it */
            ot_h1_conn_close(c);
            return;
        }
        ssize_t n = conn_read(c, c->buf + c->len, BUF_CAP - c->len);
        if (n == -2) {
            if (c->len == 0 && c->st == C_HEAD) {
                buf_put(c->lp, c->buf);
                c->buf = NULL;
            }
            return;
        }
        if (n <= 0) {
            ot_h1_conn_close(c);
            return;
        }
        c->drained = !c->ssl && (size_t)n < BUF_CAP - c->len;
        c->len += (size_t)n;
        touch(c);
    }
}

const struct sockaddr *ot_h1_conn_peer(const h1conn *c)
{
    return (const struct sockaddr *)&c->peer;
}

bool ot_h1_conn_client_cert_ok(const h1conn *c)
{
    return c->ssl && SSL_get0_peer_certificate(c->ssl) &&
           SSL_get_verify_result(c->ssl) == X509_V_OK;
}

void ot_h1_conn_new(h1loop *lp, int fd, const struct sockaddr_storage *sa)
{
    ot_http_server *s = lp->s;
    h1conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->fd = fd;
    c->lp = lp;
    c->peer = *sa;
    c->st = C_HEAD;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s->tls) {
        pthread_mutex_lock(&s->mu);
        c->ssl = SSL_new(s->ctx);
        pthread_mutex_unlock(&s->mu);
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
            if (c->ssl)
                SSL_free(c->ssl);
            free(c);
            close(fd);
            return;
        }
        SSL_set_accept_state(c->ssl);
    }
    atomic_fetch_add(&s->nconns, 1);
    c->gc = ot_http_guard_opened(s->guard, fd);
    touch(c);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        ot_h1_conn_close(c);
}
