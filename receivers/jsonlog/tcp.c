/* tcp.c: the optional `endpoint`: newline-delimited JSON over TCP, for
 * applications that ship their logs straight to the agent, mapped as file
 * lines are. One thread polls the listener and every connection. When the
 * pipeline says RETRYABLE, the refused batch is kept and no connection is
 * read until it is accepted: the senders' socket buffers fill and TCP
 * pushes back on them, so memory stays at one batch plus one partial line
 * per connection (bounded by max_log_size). With `tls:` each connection
 * is an OpenSSL session over the same non-blocking socket, its context
 * taken from net/tls.h's reloader when it is accepted, so a renewed
 * certificate serves the next connection.
 *
 * Slots are few (MAX_CONNS), so a neighbour must not be able to hold them
 * all: a connection that is full when another arrives gives up the slot of
 * the one that has sent nothing for longest, and a TLS handshake that has
 * not finished within HANDSHAKE_NS is closed. */
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "jlr.h"
#include "net/listen.h"

#define MAX_CONNS 256
#define FLUSH_BYTES (256u << 10)
#define HANDSHAKE_NS (10 * 1000000000LL)

typedef struct conn {
    int fd;
    SSL *ssl;        /* with tls: */
    bool want_write; /* the handshake waits for room to send */
    ot_buf carry;    /* bytes after the last newline */
    bool skipping;
    int64_t opened_ns, last_ns; /* accepted; last bytes read (or accepted) */
} conn;

typedef struct tcp {
    jlr *r;
    int lfd;
    ot_tls_reloader *tls;
    conn conns[MAX_CONNS];
    size_t n;
    pthread_t th;
    atomic_bool stop;
    jl_enc enc;
    ot_buf out;
    size_t items;
    ot_batch *pending;
    unsigned fails;
} tcp;

static void drop(tcp *t, size_t i)
{
    SSL_free(t->conns[i].ssl);
    close(t->conns[i].fd);
    ot_buf_free(&t->conns[i].carry);
    t->conns[i] = t->conns[--t->n];
}

static void line(tcp *t, const char *s, size_t n, bool truncated)
{
    jlr *r = t->r;
    if (!jlr_line_prep(r, &n, s, &truncated))
        return;
    jl_rec rec = {.observed_ns = jlr_realtime_ns(), .truncated = truncated};
    bool pe = false;
    if (jl_encode_json(&t->enc, &r->map, &rec, s, n, &t->out, &pe) < 0)
        return;
    if (pe)
        ot_counter_add(r->tel.parse_errors, 1);
    if (truncated)
        ot_counter_add(r->tel.truncated, 1);
    t->items++;
}

/* 0 accepted (or nothing to send), -1 refused for now (kept). */
static int send_pending(tcp *t)
{
    if (!t->pending && t->out.len) {
        t->pending = jlr_batch(&t->out, t->items, NULL, 0);
        t->items = 0;
    }
    if (!t->pending)
        return 0;
    ot_batch *b = t->pending;
    size_t items = b->items;
    ot_err e = {{0}};
    ot_batch_ref(b);
    ot_status st = ot_consume(t->r->next, b, &e);
    if (st == OT_RETRYABLE) {
        ot_counter_add(t->r->tel.refused, items);
        return -1;
    }
    ot_batch_unref(b);
    t->pending = NULL;
    t->fails = 0;
    ot_counter_add(st == OT_OK ? t->r->tel.records : t->r->tel.refused, items);
    return 0;
}

/* Bytes from c: recv, or SSL_read on a TLS connection (which runs the
 * handshake first). >0 bytes; 0 closed or failed (a plaintext client on a
 * TLS endpoint fails here); -1 nothing yet. */
static ssize_t conn_read(conn *c, char *buf, size_t cap)
{
    if (!c->ssl) {
        ssize_t n = recv(c->fd, buf, cap, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return -1;
        return n < 0 ? 0 : n;
    }
    c->want_write = false;
    int n = SSL_read(c->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
    if (n > 0)
        return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        return -1;
    case SSL_ERROR_WANT_WRITE:
        c->want_write = true;
        return -1;
    default:
        ERR_clear_error();
        return 0;
    }
}

static void read_conn(tcp *t, size_t i, char *buf, size_t cap)
{
    conn *c = &t->conns[i];
    ssize_t n;
again:
    n = conn_read(c, buf, cap);
    if (n == 0) {
        if (c->carry.len && !c->skipping)
            line(t, c->carry.data, c->carry.len, false); /* the last line needs no newline */
        drop(t, i);
        return;
    }
    if (n < 0)
        return;
    ot_counter_add(t->r->tel.bytes, (uint64_t)n);
    c->last_ns = ot_now_ns();
    const char *p = buf, *e = buf + n;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        if (!nl) {
            size_t room = t->r->c->max_log_size + 1 - c->carry.len;
            size_t k = (size_t)(e - p);
            if (!c->skipping && k >= room) {
                ot_buf_append(&c->carry, p, room);
                line(t, c->carry.data, c->carry.len, true);
                c->carry.len = 0;
                c->skipping = true;
            } else if (!c->skipping)
                ot_buf_append(&c->carry, p, k);
            break;
        }
        size_t k = (size_t)(nl - p);
        if (c->skipping) {
            c->skipping = false;
        } else if (c->carry.len) {
            ot_buf_append(&c->carry, p, k);
            line(t, c->carry.data, c->carry.len, false);
            c->carry.len = 0;
        } else
            line(t, p, k, false);
        p = nl + 1;
    }
    /* what OpenSSL decrypted already is not seen by poll */
    if (c->ssl && SSL_pending(c->ssl) > 0)
        goto again;
}

/* A TLS session for a new connection, or NULL (then it is closed). */
static SSL *tls_session(tcp *t, int fd)
{
    SSL_CTX *ctx = ot_tls_reloader_get(t->tls);
    SSL *s = SSL_new(ctx);
    SSL_CTX_free(ctx);
    if (s && SSL_set_fd(s, fd) == 1) {
        SSL_set_accept_state(s);
        return s;
    }
    SSL_free(s);
    ERR_clear_error();
    return NULL;
}

/* The slot of the connection that has sent nothing for longest. Its last
 * partial line, if any, is kept as a record: it is what the sender wrote. */
static void evict_idlest(tcp *t)
{
    size_t v = 0;
    for (size_t i = 1; i < t->n; i++)
        if (t->conns[i].last_ns < t->conns[v].last_ns)
            v = i;
    conn *c = &t->conns[v];
    if (c->carry.len && !c->skipping)
        line(t, c->carry.data, c->carry.len, false);
    ot_debug("jsonlog", "every connection slot taken; the idlest connection closed",
             "receiver=%s slots=%d idle_ms=%lld", t->r->id, MAX_CONNS,
             (long long)((ot_now_ns() - c->last_ns) / 1000000));
    drop(t, v);
}

static void accept_one(tcp *t)
{
    int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (t->n == MAX_CONNS)
        evict_idlest(t);
    SSL *ssl = NULL;
    if (t->tls && !(ssl = tls_session(t, fd))) {
        close(fd);
        return;
    }
    int64_t now = ot_now_ns();
    t->conns[t->n++] = (conn){.fd = fd, .ssl = ssl, .opened_ns = now, .last_ns = now};
}

/* TLS handshakes that never finish hold a slot each: closed after a while. */
static void reap_handshakes(tcp *t, int64_t now)
{
    for (size_t i = t->n; i-- > 0;) {
        conn *c = &t->conns[i];
        if (c->ssl && !SSL_is_init_finished(c->ssl) && now - c->opened_ns > HANDSHAKE_NS)
            drop(t, i);
    }
}

static void *run(void *arg)
{
    tcp *t = arg;
    char *buf = malloc(65536);
    struct pollfd pf[MAX_CONNS + 1];
    while (buf && !atomic_load(&t->stop)) {
        bool blocked = t->pending && send_pending(t) < 0;
        if (blocked) {
            t->fails++;
            int ms = 10 << (t->fails < 6 ? t->fails : 6);
            poll(NULL, 0, ms > 500 ? 500 : ms);
            continue;
        }
        size_t np = 0;
        pf[np++] = (struct pollfd){.fd = t->lfd, .events = POLLIN};
        for (size_t i = 0; i < t->n; i++)
            pf[np++] = (struct pollfd){
                .fd = t->conns[i].fd,
                .events = (short)(POLLIN | (t->conns[i].want_write ? POLLOUT : 0))};
        int rc = poll(pf, np, 100);
        /* back to front: drop() moves the last connection into slot i, one
         * already served; anything that drops or adds slots comes after */
        for (size_t i = np - 1; rc > 0 && i >= 1; i--)
            if (pf[i].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR) && i - 1 < t->n)
                read_conn(t, i - 1, buf, 65536);
        if (t->tls)
            reap_handshakes(t, ot_now_ns());
        if (rc > 0 && (pf[0].revents & POLLIN))
            accept_one(t);
        if (t->out.len)
            send_pending(t);
    }
    free(buf);
    return NULL;
}

int jlr_tcp_start(jlr *r, ot_err *err)
{
    tcp *t = calloc(1, sizeof *t);
    if (!t)
        return ot_err_set(err, "out of memory");
    if (r->c->tls.present && !(t->tls = ot_tls_reloader_new(&r->c->tls, NULL, err))) {
        free(t);
        return ot_err_prefix(err, "tls");
    }
    if ((t->lfd = ot_net_listen(&r->c->endpoint, 128, err)) < 0) {
        ot_tls_reloader_free(t->tls);
        free(t);
        return -1;
    }
    t->r = r;
    if (pthread_create(&t->th, NULL, run, t) != 0) {
        close(t->lfd);
        ot_tls_reloader_free(t->tls);
        free(t);
        return ot_err_set(err, "endpoint: cannot start its thread");
    }
    r->tcp = t;
    ot_info("jsonlog", "listening", "receiver=%s endpoint=%s tls=%s", r->id, r->c->endpoint.text,
            t->tls ? "on" : "off");
    return 0;
}

void jlr_tcp_stop(jlr *r)
{
    tcp *t = r->tcp;
    if (!t)
        return;
    atomic_store(&t->stop, true);
    pthread_join(t->th, NULL);
    send_pending(t); /* once more; what is still refused is dropped at stop */
    if (t->pending)
        ot_batch_unref(t->pending);
    while (t->n)
        drop(t, 0);
    close(t->lfd);
    ot_tls_reloader_free(t->tls);
    jl_enc_free(&t->enc);
    ot_buf_free(&t->out);
    free(t);
    r->tcp = NULL;
}
