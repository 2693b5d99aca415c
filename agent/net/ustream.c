/* ustream.c: the Unix stream listener (see ustream.h).
 *
 * Level-triggered epoll: a connection is read a bounded number of times
 * per wake-up, so one busy sender cannot starve the others. A framed
 * connection owns one buffer that holds a whole frame, so messages are
 * handed over in place, never copied out, and the buffer only grows
 * (towards 4 + max_packet_size) when a frame needs it. */
#include "net/ustream.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "net/listen.h"

#define DEFAULT_PACKET 8192
#define DEFAULT_CONNS 1024
#define FIRST_BUF (64u << 10)
#define READS_PER_WAKE 16
#define BATCH 64

typedef struct conn {
    int fd;
    uint64_t id;
    int32_t pid;
    uint32_t uid, gid;
    uint8_t *buf;
    size_t len, cap;
    struct conn *prev, *next;
} conn;

struct ot_ustream {
    ot_ustream_opts o;
    char *path;
    ot_net_unix_id path_id;
    int lfd, evfd, ep;
    pthread_t th;
    bool started;
    bool accept_paused;
    int64_t resume_ns;
    conn *conns;
    uint64_t next_id;
    uint8_t *rawbuf; /* raw mode: one buffer, handed over before the next read */
    ot_ustream_msg msgs[BATCH];
    size_t nmsgs;
    _Atomic uint64_t messages, bytes, accepted, open, oversized, incomplete, refused;
};

/* epoll data for the two fds that are not connections */
static char listen_tag, stop_tag;

static void add(_Atomic uint64_t *v, uint64_t n)
{
    atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void flush(ot_ustream *u)
{
    if (!u->nmsgs)
        return;
    uint64_t bytes = 0;
    for (size_t i = 0; i < u->nmsgs; i++)
        bytes += u->msgs[i].len;
    u->o.fn(u->o.ud, u->msgs, u->nmsgs);
    add(&u->messages, u->nmsgs);
    add(&u->bytes, bytes);
    if (u->o.messages_total)
        ot_counter_add(u->o.messages_total, u->nmsgs);
    if (u->o.bytes_total)
        ot_counter_add(u->o.bytes_total, bytes);
    u->nmsgs = 0;
}

static void push(ot_ustream *u, conn *c, const uint8_t *p, size_t n)
{
    u->msgs[u->nmsgs++] = (ot_ustream_msg){
        .data = p, .len = n, .conn = c->id, .pid = c->pid, .uid = c->uid, .gid = c->gid};
    if (u->nmsgs == BATCH)
        flush(u);
}

static void conn_close(ot_ustream *u, conn *c)
{
    epoll_ctl(u->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->len)
        add(&u->incomplete, 1);
    if (c->prev)
        c->prev->next = c->next;
    else
        u->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    atomic_fetch_sub_explicit(&u->open, 1, memory_order_relaxed);
    if (u->o.on_close)
        u->o.on_close(u->o.ud, c->id);
    free(c->buf);
    free(c);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Hands over every whole frame in c->buf and keeps the rest at its
 * start. Pending messages point into c->buf, so they are flushed before
 * the buffer moves or the connection goes. -1: a frame is too long; -2:
 * no memory to grow for one; either way the connection must go. */
static int frames(ot_ustream *u, conn *c)
{
    size_t off = 0;
    while (c->len - off >= 4) {
        uint32_t fl = le32(c->buf + off);
        if (fl > u->o.max_packet_size) {
            flush(u); /* the whole frames before it were good */
            return -1;
        }
        if (c->len - off - 4 < fl) {
            if (4 + (size_t)fl > c->cap) {
                /* grow only for a frame that needs it; keep the partial */
                flush(u);
                memmove(c->buf, c->buf + off, c->len - off);
                c->len -= off;
                off = 0;
                size_t cap = c->cap;
                while (cap < 4 + (size_t)fl)
                    cap *= 2;
                if (cap > 4 + u->o.max_packet_size)
                    cap = 4 + u->o.max_packet_size;
                uint8_t *nb = realloc(c->buf, cap);
                if (!nb)
                    return -2; /* nothing pending: flushed above */
                c->buf = nb;
                c->cap = cap;
            }
            break;
        }
        if (fl)
            push(u, c, c->buf + off + 4, fl);
        off += 4 + (size_t)fl;
    }
    /* the messages point into buf: hand them over before moving bytes */
    flush(u);
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
    return 0;
}

static void conn_read(ot_ustream *u, conn *c)
{
    static _Atomic int64_t warned;
    bool raw = u->o.framing == OT_USTREAM_RAW;
    for (int i = 0; i < READS_PER_WAKE; i++) {
        uint8_t *dst = raw ? u->rawbuf : c->buf + c->len;
        size_t room = raw ? u->o.max_packet_size : c->cap - c->len;
        ssize_t n = read(c->fd, dst, room);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(u, c);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            continue;
        }
        if (raw) {
            push(u, c, dst, (size_t)n);
            flush(u);
        } else {
            c->len += (size_t)n;
            int rc = frames(u, c);
            if (rc < 0) {
                if (rc == -1) {
                    add(&u->oversized, 1);
                    if (u->o.oversized_total)
                        ot_counter_add(u->o.oversized_total, 1);
                } else if (ot_log_ratelimit(&warned, 10 * 1000000000LL)) {
                    ot_warn("net", "out of memory for a unix stream frame; connection closed",
                            "path=%s", u->path);
                }
                c->len = 0; /* counted as oversized, not also as incomplete */
                conn_close(u, c);
                return;
            }
        }
        if ((size_t)n < room)
            return; /* drained for now */
    }
}

static void refuse(ot_ustream *u, int fd)
{
    close(fd);
    add(&u->refused, 1);
    if (u->o.refused_total)
        ot_counter_add(u->o.refused_total, 1);
}

static void accept_all(ot_ustream *u)
{
    static _Atomic int64_t warned;
    for (;;) {
        int fd = accept4(u->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The pending connection stays readable: stop watching the
                 * listener for a moment instead of spinning on it. */
                if (ot_log_ratelimit(&warned, 10 * 1000000000LL))
                    ot_warn("net", "unix stream accept failed; pausing accepts",
                            "path=%s error=\"%s\"", u->path, strerror(errno));
                epoll_ctl(u->ep, EPOLL_CTL_DEL, u->lfd, NULL);
                u->accept_paused = true;
                u->resume_ns = now_ns() + 100 * 1000000LL;
            }
            return;
        }
        if (atomic_load_explicit(&u->open, memory_order_relaxed) >= u->o.max_connections) {
            refuse(u, fd);
            continue;
        }
        conn *c = calloc(1, sizeof *c);
        size_t cap = 4 + u->o.max_packet_size;
        if (cap > FIRST_BUF)
            cap = FIRST_BUF;
        if (c && u->o.framing == OT_USTREAM_FRAMED && !(c->buf = malloc(cap))) {
            free(c);
            c = NULL;
        }
        if (!c) {
            refuse(u, fd);
            continue;
        }
        c->fd = fd;
        c->cap = c->buf ? cap : 0;
        c->id = ++u->next_id;
        struct ucred uc;
        socklen_t ul = sizeof uc;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0) {
            c->pid = uc.pid;
            c->uid = uc.uid;
            c->gid = uc.gid;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(u->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            free(c->buf);
            free(c);
            refuse(u, fd);
            continue;
        }
        c->next = u->conns;
        if (u->conns)
            u->conns->prev = c;
        u->conns = c;
        add(&u->accepted, 1);
        add(&u->open, 1);
    }
}

static void *loop_main(void *arg)
{
    ot_ustream *u = arg;
    pthread_setname_np(pthread_self(), "ot-ustream");
    struct epoll_event evs[64];
    for (;;) {
        int timeout = -1;
        if (u->accept_paused) {
            int64_t left = u->resume_ns - now_ns();
            if (left <= 0) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
                epoll_ctl(u->ep, EPOLL_CTL_ADD, u->lfd, &ev);
                u->accept_paused = false;
            } else {
                timeout = (int)(left / 1000000) + 1;
            }
        }
        int n = epoll_wait(u->ep, evs, 64, timeout);
        bool stop = false;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &stop_tag)
                stop = true;
            else if (p == &listen_tag)
                accept_all(u);
            else
                conn_read(u, p); /* EPOLLHUP/ERR/RDHUP: read sees EOF or the error */
        }
        if (stop)
            break;
    }
    while (u->conns) {
        u->conns->len = 0; /* cut off by us, not incomplete from the peer */
        conn_close(u, u->conns);
    }
    return NULL;
}

static void ustream_free(ot_ustream *u)
{
    if (u->lfd >= 0) {
        close(u->lfd);
        ot_net_unlink_unix(u->path, &u->path_id);
    }
    if (u->evfd >= 0)
        close(u->evfd);
    if (u->ep >= 0)
        close(u->ep);
    free(u->rawbuf);
    free(u->path);
    free(u);
}

ot_ustream *ot_ustream_start(const ot_ustream_opts *o, ot_err *err)
{
    const char *shown = o->socket_path ? o->socket_path : "";
    if (!o->fn) {
        ot_err_set(err, "listen unix %s: no callback", shown);
        return NULL;
    }
    if (o->max_packet_size > OT_USTREAM_MAX_PACKET) {
        ot_err_set(err, "listen unix %s: max_packet_size is at most %u", shown,
                   OT_USTREAM_MAX_PACKET);
        return NULL;
    }
    ot_ustream *u = calloc(1, sizeof *u);
    if (!u) {
        ot_err_set(err, "listen unix %s: out of memory", shown);
        return NULL;
    }
    u->o = *o;
    u->lfd = u->evfd = u->ep = -1;
    if (!u->o.max_packet_size)
        u->o.max_packet_size = DEFAULT_PACKET;
    if (!u->o.max_connections)
        u->o.max_connections = DEFAULT_CONNS;
    u->o.socket_path = u->path = o->socket_path ? strdup(o->socket_path) : NULL;
    if (o->socket_path && !u->path) {
        ot_err_set(err, "listen unix %s: out of memory", shown);
        ustream_free(u);
        return NULL;
    }
    u->lfd = ot_net_bind_unix(u->path, SOCK_STREAM, o->socket_permissions, &u->path_id, err);
    if (u->lfd < 0) {
        ustream_free(u);
        return NULL;
    }
    u->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    u->ep = epoll_create1(EPOLL_CLOEXEC);
    if (u->o.framing == OT_USTREAM_RAW)
        u->rawbuf = malloc(u->o.max_packet_size);
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = &listen_tag};
    struct epoll_event se = {.events = EPOLLIN, .data.ptr = &stop_tag};
    if (u->evfd < 0 || u->ep < 0 || (u->o.framing == OT_USTREAM_RAW && !u->rawbuf) ||
        epoll_ctl(u->ep, EPOLL_CTL_ADD, u->lfd, &le) != 0 ||
        epoll_ctl(u->ep, EPOLL_CTL_ADD, u->evfd, &se) != 0) {
        ot_err_set(err, "listen unix %s: %s", shown, strerror(errno ? errno : ENOMEM));
        ustream_free(u);
        return NULL;
    }
    int rc = pthread_create(&u->th, NULL, loop_main, u);
    if (rc != 0) {
        ot_err_set(err, "listen unix %s: starting its thread: %s", shown, strerror(rc));
        ustream_free(u);
        return NULL;
    }
    u->started = true;
    return u;
}

void ot_ustream_get_stats(ot_ustream *u, ot_ustream_stats *out)
{
    ot_ustream *m = u;
    out->messages = atomic_load_explicit(&m->messages, memory_order_relaxed);
    out->bytes = atomic_load_explicit(&m->bytes, memory_order_relaxed);
    out->accepted = atomic_load_explicit(&m->accepted, memory_order_relaxed);
    out->open = atomic_load_explicit(&m->open, memory_order_relaxed);
    out->oversized = atomic_load_explicit(&m->oversized, memory_order_relaxed);
    out->incomplete = atomic_load_explicit(&m->incomplete, memory_order_relaxed);
    out->refused = atomic_load_explicit(&m->refused, memory_order_relaxed);
}

void ot_ustream_stop(ot_ustream *u)
{
    if (!u)
        return;
    uint64_t one = 1;
    if (write(u->evfd, &one, sizeof one) < 0) {
        /* a fresh eventfd cannot be full */
    }
    if (u->started)
        pthread_join(u->th, NULL);
    ustream_free(u);
}
