/* http.c: the OTLP/HTTP target. A minimal HTTP/1.1 client on non-blocking
 * sockets and epoll, because a general client (libcurl) costs more per
 * request than the agent under test would: each keep-alive connection has
 * one request in flight, written with one writev (fixed header + the
 * pre-encoded body), and the answer is parsed only as far as the status
 * line, Content-Length / chunked framing and Connection: close. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "loadgen.h"

enum { C_DOWN, C_CONNECTING, C_IDLE, C_SENDING, C_WAITING };
enum { R_HEAD, R_BODY, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_END, R_TRAILER, R_UNTIL_CLOSE };

#define RBUF 16384
#define GRACE_NS 5000000000LL /* how long answers are awaited after the run */

typedef struct hconn {
    int fd;
    int state;
    bool want_out;
    int64_t retry_at;
    int backoff_ms;
    lg_body body;
    char hdr[768];
    size_t hdr_len, sent;
    int64_t due;
    size_t items;
    char rbuf[RBUF];
    size_t rlen;
    int rstate;
    int status;
    int64_t remaining;
    bool close_after;
} hconn;

typedef struct hctx {
    lg_worker *w;
    int ep;
    hconn *c;
    int n;
    int inflight;
} hctx;

static void ep_set(hctx *x, hconn *c, bool out)
{
    if (c->want_out == out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(x->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = out;
}

static void conn_open(hctx *x, hconn *c)
{
    c->fd = lg_tcp_connect(x->w->o->host, x->w->o->port);
    if (c->fd < 0) {
        x->w->st.connect_failures++;
        c->state = C_DOWN;
        c->retry_at = lg_now() + (int64_t)c->backoff_ms * 1000000;
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(x->ep, EPOLL_CTL_ADD, c->fd, &ev);
    c->want_out = true;
    c->state = C_CONNECTING;
    c->rlen = 0;
}

/* Drops the connection; a request in flight counts as a transport failure. */
static void conn_fail(hctx *x, hconn *c, bool count)
{
    if (c->state == C_SENDING || c->state == C_WAITING) {
        x->inflight--;
        if (count)
            lg_stats_done(&x->w->st, 0, false, c->items, lg_now() - c->due);
    }
    if (c->fd >= 0) {
        epoll_ctl(x->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_DOWN;
    c->backoff_ms = c->backoff_ms ? (c->backoff_ms * 2 > 1000 ? 1000 : c->backoff_ms * 2) : 10;
    c->retry_at = lg_now() + (int64_t)c->backoff_ms * 1000000;
}

static void try_send(hctx *x, hconn *c)
{
    size_t total = c->hdr_len + c->body.len;
    while (c->sent < total) {
        struct iovec iov[2];
        int n = 0;
        if (c->sent < c->hdr_len) {
            iov[n++] = (struct iovec){c->hdr + c->sent, c->hdr_len - c->sent};
            iov[n++] = (struct iovec){c->body.data, c->body.len};
        } else {
            size_t off = c->sent - c->hdr_len;
            iov[n++] = (struct iovec){c->body.data + off, c->body.len - off};
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                ep_set(x, c, true);
                return;
            }
            conn_fail(x, c, true);
            return;
        }
        c->sent += (size_t)w;
    }
    x->w->st.bytes += total;
    ep_set(x, c, false);
    c->state = C_WAITING;
}

static int start_request(hctx *x, hconn *c, uint64_t seq0, size_t n, int64_t due)
{
    lg_worker *w = x->w;
    const lg_opts *o = w->o;
    ot_err err = {{0}};
    if (lg_content_body(w->content, seq0, n, lg_wall_ns(), &c->body, &err) < 0) {
        snprintf(w->fatal_msg, sizeof w->fatal_msg, "%s", err.msg);
        return -1;
    }
    bool v6 = strchr(o->host, ':') != NULL;
    int l = snprintf(c->hdr, sizeof c->hdr,
                     "POST %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUser-Agent: otelite-loadgen\r\n"
                     "Content-Type: application/%s\r\nContent-Length: %zu\r\n\r\n",
                     o->path, v6 ? "[" : "", o->host, v6 ? "]" : "", o->port,
                     o->json ? "json" : "x-protobuf", c->body.len);
    c->hdr_len = (size_t)l;
    c->sent = 0;
    c->due = due;
    c->items = n;
    c->rstate = R_HEAD;
    c->status = 0;
    c->close_after = false;
    c->state = C_SENDING;
    x->inflight++;
    try_send(x, c);
    return 0;
}

static void finish(hctx *x, hconn *c)
{
    bool ok = c->status >= 200 && c->status < 300;
    lg_stats_done(&x->w->st, c->status, ok, c->items, lg_now() - c->due);
    x->inflight--;
    c->backoff_ms = 0;
    if (c->close_after) {
        epoll_ctl(x->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->state = C_DOWN;
        c->retry_at = 0;
        return;
    }
    c->state = C_IDLE;
}

/* Parses the head in rbuf[0..end). -1 when it is not HTTP. */
static int parse_head(hconn *c, size_t end)
{
    char *p = c->rbuf;
    if (end < 12 || strncmp(p, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(p + 9);
    if (c->status < 100 || c->status > 999)
        return -1;
    bool chunked = false;
    int64_t len = -1;
    c->close_after = p[7] == '0';
    char *line = memchr(p, '\n', end);
    while (line && (size_t)(line - p) + 1 < end) {
        line++;
        char *eol = memchr(line, '\n', end - (size_t)(line - p));
        if (!eol)
            break;
        size_t ll = (size_t)(eol - line);
        if (ll >= 15 && !strncasecmp(line, "content-length:", 15))
            len = strtoll(line + 15, NULL, 10);
        else if (ll >= 18 && !strncasecmp(line, "transfer-encoding:", 18))
            chunked = memmem(line, ll, "chunked", 7) != NULL;
        else if (ll >= 11 && !strncasecmp(line, "connection:", 11))
            c->close_after = memmem(line, ll, "close", 5) != NULL;
        line = eol;
    }
    if (chunked)
        c->rstate = R_CHUNK_SIZE;
    else if (len >= 0) {
        c->rstate = R_BODY;
        c->remaining = len;
    } else if (c->status == 204 || c->status == 304 || c->status < 200) {
        c->rstate = R_BODY;
        c->remaining = 0;
    } else {
        c->rstate = R_UNTIL_CLOSE;
        c->close_after = true;
    }
    return 0;
}

/* Consumes what rbuf holds; 1 when the response is complete, 0 for more,
 * -1 on a framing error. */
static int parse(hconn *c)
{
    for (;;) {
        switch (c->rstate) {
        case R_HEAD: {
            char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
            if (!e)
                return c->rlen == RBUF ? -1 : 0;
            size_t hl = (size_t)(e - c->rbuf) + 4;
            if (parse_head(c, hl) < 0)
                return -1;
            memmove(c->rbuf, c->rbuf + hl, c->rlen - hl);
            c->rlen -= hl;
            if (c->status == 100) {
                c->rstate = R_HEAD;
                continue;
            }
            continue;
        }
        case R_BODY: {
            size_t take = c->rlen < (size_t)c->remaining ? c->rlen : (size_t)c->remaining;
            memmove(c->rbuf, c->rbuf + take, c->rlen - take);
            c->rlen -= take;
            c->remaining -= (int64_t)take;
            return c->remaining == 0 ? 1 : 0;
        }
        case R_CHUNK_SIZE: {
            char *e = memmem(c->rbuf, c->rlen, "\r\n", 2);
            if (!e)
                return c->rlen == RBUF ? -1 : 0;
            c->remaining = strtoll(c->rbuf, NULL, 16);
            size_t hl = (size_t)(e - c->rbuf) + 2;
            memmove(c->rbuf, c->rbuf + hl, c->rlen - hl);
            c->rlen -= hl;
            c->rstate = c->remaining ? R_CHUNK_DATA : R_TRAILER;
            continue;
        }
        case R_CHUNK_DATA: {
            size_t take = c->rlen < (size_t)c->remaining ? c->rlen : (size_t)c->remaining;
            memmove(c->rbuf, c->rbuf + take, c->rlen - take);
            c->rlen -= take;
            c->remaining -= (int64_t)take;
            if (c->remaining)
                return 0;
            c->rstate = R_CHUNK_END;
            continue;
        }
        case R_CHUNK_END:
            if (c->rlen < 2)
                return 0;
            memmove(c->rbuf, c->rbuf + 2, c->rlen - 2);
            c->rlen -= 2;
            c->rstate = R_CHUNK_SIZE;
            continue;
        case R_TRAILER: {
            if (c->rlen >= 2 && c->rbuf[0] == '\r' && c->rbuf[1] == '\n') {
                memmove(c->rbuf, c->rbuf + 2, c->rlen - 2);
                c->rlen -= 2;
                return 1;
            }
            char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
            if (!e)
                return c->rlen == RBUF ? -1 : 0;
            size_t hl = (size_t)(e - c->rbuf) + 4;
            memmove(c->rbuf, c->rbuf + hl, c->rlen - hl);
            c->rlen -= hl;
            return 1;
        }
        default: /* R_UNTIL_CLOSE: the end is the peer closing */
            c->rlen = 0;
            return 0;
        }
    }
}

static void on_readable(hctx *x, hconn *c)
{
    for (;;) {
        if (c->rlen == RBUF) {
            conn_fail(x, c, true);
            return;
        }
        ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return;
            conn_fail(x, c, true);
            return;
        }
        if (r == 0) {
            if (c->state == C_WAITING && c->rstate == R_UNTIL_CLOSE) {
                c->close_after = true;
                finish(x, c);
                return;
            }
            conn_fail(x, c, true);
            return;
        }
        c->rlen += (size_t)r;
        if (c->state != C_WAITING && c->state != C_SENDING) {
            conn_fail(x, c, false); /* an answer nobody asked for */
            return;
        }
        int pr = parse(c);
        if (pr < 0) {
            conn_fail(x, c, true);
            return;
        }
        if (pr == 1) {
            if (c->state == C_SENDING) /* answered before we finished: it refused early */
                c->close_after = true;
            finish(x, c);
            return;
        }
    }
}

static void on_event(hctx *x, hconn *c, uint32_t ev)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (ev & (EPOLLERR | EPOLLHUP))) {
            x->w->st.connect_failures++;
            conn_fail(x, c, false);
            return;
        }
        if (!(ev & EPOLLOUT))
            return;
        x->w->st.connects++;
        c->state = C_IDLE;
        ep_set(x, c, false);
        return;
    }
    if (ev & EPOLLIN) {
        on_readable(x, c);
        if (c->fd < 0)
            return;
    } else if (ev & (EPOLLERR | EPOLLHUP)) {
        conn_fail(x, c, true);
        return;
    }
    if ((ev & EPOLLOUT) && c->state == C_SENDING)
        try_send(x, c);
}

int lg_http_worker(lg_worker *w)
{
    hctx x = {.w = w, .n = w->o->conns};
    x.ep = epoll_create1(EPOLL_CLOEXEC);
    x.c = calloc((size_t)x.n, sizeof *x.c);
    if (x.ep < 0 || !x.c) {
        snprintf(w->fatal_msg, sizeof w->fatal_msg, "out of memory");
        return -1;
    }
    for (int i = 0; i < x.n; i++) {
        x.c[i].fd = -1;
        conn_open(&x, &x.c[i]);
    }
    int rc = 0;
    bool done = false;
    int64_t grace_end = 0;
    struct epoll_event evs[64];
    int next_conn = 0;
    while (!done || x.inflight > 0) {
        int64_t now = lg_now();
        if (!done && lg_time_over(w, now))
            done = true;
        if (done && !grace_end)
            grace_end = now + GRACE_NS;
        if (done && now >= grace_end)
            break;
        int64_t timeout = 100000000; /* 100 ms */
        /* reconnects */
        for (int i = 0; i < x.n; i++) {
            hconn *c = &x.c[i];
            if (c->state == C_DOWN && !done) {
                if (now >= c->retry_at)
                    conn_open(&x, c);
                else if (c->retry_at - now < timeout)
                    timeout = c->retry_at - now;
            }
        }
        /* send what is due on idle connections, round-robin */
        while (!done) {
            int64_t d = lg_due_in(w, now);
            if (d > 0) {
                if (d < timeout)
                    timeout = d;
                break;
            }
            hconn *idle = NULL;
            for (int k = 0; k < x.n; k++) {
                hconn *c = &x.c[(next_conn + k) % x.n];
                if (c->state == C_IDLE) {
                    idle = c;
                    next_conn = (next_conn + k + 1) % x.n;
                    break;
                }
            }
            if (!idle)
                break;
            uint64_t seq0;
            size_t n = lg_claim(w, &seq0);
            if (!n) {
                done = true;
                break;
            }
            if (start_request(&x, idle, seq0, n, lg_take_due(w, now)) < 0) {
                rc = -1;
                done = true;
                grace_end = now;
                break;
            }
            now = lg_now();
        }
        if (done && x.inflight == 0)
            break;
        if (done && grace_end - now < timeout)
            timeout = grace_end - now > 0 ? grace_end - now : 0;
        int ne = lg_epoll_wait(x.ep, evs, 64, timeout);
        for (int i = 0; i < ne; i++)
            on_event(&x, evs[i].data.ptr, evs[i].events);
    }
    /* answers that never came count as transport failures */
    for (int i = 0; i < x.n; i++) {
        conn_fail(&x, &x.c[i], true);
        lg_body_free(&x.c[i].body);
    }
    free(x.c);
    close(x.ep);
    return rc;
}
