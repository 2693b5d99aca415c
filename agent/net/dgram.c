/* dgram.c: the datagram listener (see dgram.h).
 *
 * Sockets are non-blocking: a reader calls recvmmsg until the queue is
 * empty and only then polls its socket together with one eventfd, so under
 * load there is no poll per batch, and stop wakes every idle reader at
 * once by making the eventfd readable (it is never read back). */
#include "net/dgram.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "net/listen.h"

#define DEFAULT_PACKET 8192
#define DEFAULT_BATCH 64
#define MAX_BATCH 1024
#define MAX_READERS 256

/* One socket and the kernel's cumulative drop count last taken from it. */
typedef struct dsock {
    int fd;
    _Atomic uint32_t drops_seen;
} dsock;

typedef struct reader {
    ot_dgram *d;
    unsigned idx;
    dsock *s;
    pthread_t th;
    bool started;
    struct mmsghdr *mm;
    struct iovec *iov;
    uint8_t *buf;
    struct sockaddr_storage *addr;
    uint8_t *ctrl;
    ot_dgram_msg *msgs;
    /* Written by this reader only, read by ot_dgram_get_stats. */
    _Atomic uint64_t packets, bytes, truncated;
} reader;

struct ot_dgram {
    ot_dgram_opts o; /* socket_path points at path below */
    char *path;
    ot_net_unix_id path_id;
    int port, rcvbuf;
    int evfd;
    atomic_bool stopping;
    size_t ctrl_len;
    dsock *socks;
    unsigned nsocks;
    reader *readers;
    _Atomic uint64_t kernel_drops;
};

/* Only a count newer than the one already taken adds to the total: the
 * reader (from cmsg) and get_stats (from SO_MEMINFO) both report, and each
 * drop must be counted once. Serial-number compare, as the kernel's count
 * is 32 bits and wraps. */
static void note_drops(ot_dgram *d, dsock *s, uint32_t seen)
{
    uint32_t old = atomic_load_explicit(&s->drops_seen, memory_order_relaxed);
    while ((int32_t)(seen - old) > 0) {
        if (atomic_compare_exchange_weak_explicit(&s->drops_seen, &old, seen,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            uint32_t delta = seen - old;
            atomic_fetch_add_explicit(&d->kernel_drops, delta, memory_order_relaxed);
            if (d->o.kernel_drops_total)
                ot_counter_add(d->o.kernel_drops_total, delta);
            return;
        }
    }
}

static void bump(_Atomic uint64_t *v, uint64_t n)
{
    /* single writer: a plain add, made visible to other readers of v */
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static void deliver(reader *r, int n)
{
    ot_dgram *d = r->d;
    uint64_t bytes = 0, trunc = 0;
    uint32_t drops = 0;
    bool have_drops = false;
    for (int i = 0; i < n; i++) {
        struct msghdr *h = &r->mm[i].msg_hdr;
        ot_dgram_msg *m = &r->msgs[i];
        m->data = r->buf + (size_t)i * d->o.max_packet_size;
        m->len = r->mm[i].msg_len;
        m->truncated = (h->msg_flags & MSG_TRUNC) != 0;
        m->peer = h->msg_namelen ? (const struct sockaddr *)&r->addr[i] : NULL;
        m->peer_len = h->msg_namelen;
        m->pid = 0;
        m->uid = m->gid = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
            if (c->cmsg_level != SOL_SOCKET)
                continue;
            if (c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
                uint32_t v;
                memcpy(&v, CMSG_DATA(c), sizeof v);
                if (!have_drops || (int32_t)(v - drops) > 0)
                    drops = v;
                have_drops = true;
            } else if (c->cmsg_type == SCM_CREDENTIALS &&
                       c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
                struct ucred uc;
                memcpy(&uc, CMSG_DATA(c), sizeof uc);
                m->pid = uc.pid;
                m->uid = uc.uid;
                m->gid = uc.gid;
            }
        }
        bytes += m->len;
        trunc += m->truncated;
    }
    if (have_drops)
        note_drops(d, r->s, drops);
    d->o.fn(d->o.ud, r->idx, r->msgs, (size_t)n);
    bump(&r->packets, (uint64_t)n);
    bump(&r->bytes, bytes);
    if (trunc)
        bump(&r->truncated, trunc);
    if (d->o.packets_total)
        ot_counter_add(d->o.packets_total, (uint64_t)n);
    if (d->o.bytes_total)
        ot_counter_add(d->o.bytes_total, bytes);
    if (trunc && d->o.truncated_total)
        ot_counter_add(d->o.truncated_total, trunc);
}

static void *reader_main(void *arg)
{
    reader *r = arg;
    ot_dgram *d = r->d;
    static _Atomic int64_t warned;
    char name[16];
    snprintf(name, sizeof name, "ot-dgram-%u", r->idx);
    pthread_setname_np(pthread_self(), name);
    unsigned batch = d->o.batch;
    while (!atomic_load_explicit(&d->stopping, memory_order_relaxed)) {
        for (unsigned i = 0; i < batch; i++) {
            struct msghdr *h = &r->mm[i].msg_hdr;
            h->msg_namelen = sizeof r->addr[i];
            h->msg_controllen = d->ctrl_len;
            h->msg_flags = 0;
        }
        int n = recvmmsg(r->s->fd, r->mm, batch, MSG_DONTWAIT, NULL);
        if (n > 0) {
            deliver(r, n);
            continue;
        }
        int timeout = -1;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            /* Not expected on a bound socket (ENOMEM, say): keep serving,
             * but without spinning on the error. */
            if (ot_log_ratelimit(&warned, 10 * 1000000000LL))
                ot_warn("net", "datagram receive failed", "error=\"%s\"", strerror(errno));
            timeout = 100;
        } else if (n < 0 && errno == EINTR) {
            continue;
        }
        struct pollfd p[2] = {{.fd = r->s->fd, .events = POLLIN}, {.fd = d->evfd, .events = POLLIN}};
        poll(p, 2, timeout);
    }
    return NULL;
}

static int set_options(ot_dgram *d, int fd, ot_err *err, const char *shown)
{
    int on = 1;
    /* Not fatal: without it the drop count is read from SO_MEMINFO only. */
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    if (d->o.socket_path && d->o.want_creds &&
        setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0)
        return ot_err_set(err, "listen unixgram %s: SO_PASSCRED: %s", shown, strerror(errno));
    int want = d->o.receive_buffer_bytes;
    if (want > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want) != 0)
        return ot_err_set(err, "listen %s %s: receive buffer %d bytes: %s",
                          d->o.socket_path ? "unixgram" : "udp", shown, want, strerror(errno));
    int got = 0;
    socklen_t gl = sizeof got;
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0)
        d->rcvbuf = got;
    return 0;
}

/* Readers after the first join the first one's exact address, which is
 * also how port 0 ends up as one port for all of them. */
static int join_reuseport(int first, const char *shown, unsigned idx, ot_err *err)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getsockname(first, (struct sockaddr *)&sa, &sl) != 0)
        return ot_err_set(err, "listen udp %s: %s", shown, strerror(errno));
    int fd = socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return ot_err_set(err, "listen udp %s: reader %u: %s", shown, idx, strerror(errno));
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sl) != 0) {
        int e = errno;
        close(fd);
        return ot_err_set(err, "listen udp %s: reader %u: %s", shown, idx, strerror(e));
    }
    return fd;
}

static int reader_alloc(ot_dgram *d, reader *r)
{
    size_t b = d->o.batch, ps = d->o.max_packet_size;
    r->mm = calloc(b, sizeof *r->mm);
    r->iov = calloc(b, sizeof *r->iov);
    r->buf = malloc(b * ps);
    r->addr = calloc(b, sizeof *r->addr);
    r->ctrl = calloc(b, d->ctrl_len);
    r->msgs = calloc(b, sizeof *r->msgs);
    if (!r->mm || !r->iov || !r->buf || !r->addr || !r->ctrl || !r->msgs)
        return -1;
    for (size_t i = 0; i < b; i++) {
        r->iov[i].iov_base = r->buf + i * ps;
        r->iov[i].iov_len = ps;
        struct msghdr *h = &r->mm[i].msg_hdr;
        h->msg_name = &r->addr[i];
        h->msg_iov = &r->iov[i];
        h->msg_iovlen = 1;
        h->msg_control = r->ctrl + i * d->ctrl_len;
    }
    return 0;
}

static void dgram_free(ot_dgram *d)
{
    for (unsigned i = 0; d->socks && i < d->nsocks; i++)
        if (d->socks[i].fd >= 0)
            close(d->socks[i].fd);
    if (d->path && d->socks && d->socks[0].fd >= 0)
        ot_net_unlink_unix(d->path, &d->path_id);
    for (unsigned i = 0; d->readers && i < d->o.readers; i++) {
        reader *r = &d->readers[i];
        free(r->mm);
        free(r->iov);
        free(r->buf);
        free(r->addr);
        free(r->ctrl);
        free(r->msgs);
    }
    if (d->evfd >= 0)
        close(d->evfd);
    free(d->readers);
    free(d->socks);
    free(d->path);
    free(d);
}

static void stop_readers(ot_dgram *d)
{
    atomic_store(&d->stopping, true);
    uint64_t one = 1;
    if (write(d->evfd, &one, sizeof one) < 0) {
        /* cannot fail on a fresh eventfd; the flag and poll below suffice */
    }
    for (unsigned i = 0; i < d->o.readers; i++)
        if (d->readers[i].started)
            pthread_join(d->readers[i].th, NULL);
}

ot_dgram *ot_dgram_start(const ot_dgram_opts *o, ot_err *err)
{
    bool udp = o->endpoint != NULL;
    const char *shown = udp ? (o->endpoint->text ? o->endpoint->text : "") : o->socket_path;
    if (udp == (o->socket_path != NULL)) {
        ot_err_set(err, "listen: give either a UDP endpoint or a socket path");
        return NULL;
    }
    const char *kind = udp ? "udp" : "unixgram";
    if (!o->fn) {
        ot_err_set(err, "listen %s %s: no callback", kind, shown);
        return NULL;
    }
    if (o->max_packet_size > OT_DGRAM_MAX_PACKET || o->batch > MAX_BATCH ||
        o->readers > MAX_READERS) {
        ot_err_set(err,
                   "listen %s %s: max_packet_size is at most %d, batch at most %d, "
                   "readers at most %d",
                   kind, shown, OT_DGRAM_MAX_PACKET, MAX_BATCH, MAX_READERS);
        return NULL;
    }
    ot_dgram *d = calloc(1, sizeof *d);
    if (!d) {
        ot_err_set(err, "listen %s %s: out of memory", kind, shown);
        return NULL;
    }
    d->o = *o;
    d->evfd = -1;
    if (!d->o.readers)
        d->o.readers = 1;
    if (!d->o.max_packet_size)
        d->o.max_packet_size = DEFAULT_PACKET;
    if (!d->o.batch)
        d->o.batch = DEFAULT_BATCH;
    d->o.endpoint = NULL; /* the caller's; not kept */
    d->ctrl_len = CMSG_SPACE(sizeof(uint32_t)) + CMSG_SPACE(sizeof(struct ucred));
    d->nsocks = udp ? d->o.readers : 1;
    d->socks = calloc(d->nsocks, sizeof *d->socks);
    d->readers = calloc(d->o.readers, sizeof *d->readers);
    if (!udp)
        d->o.socket_path = d->path = strdup(o->socket_path);
    d->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!d->socks || !d->readers || (!udp && !d->path) || d->evfd < 0) {
        ot_err_set(err, "listen %s %s: %s", kind, shown,
                   d->evfd < 0 && errno != ENOMEM ? strerror(errno) : "out of memory");
        dgram_free(d);
        return NULL;
    }
    for (unsigned i = 0; i < d->nsocks; i++)
        d->socks[i].fd = -1;
    for (unsigned i = 0; i < d->nsocks; i++) {
        int fd;
        if (!udp)
            fd = ot_net_bind_unix(d->path, SOCK_DGRAM, o->socket_permissions, &d->path_id, err);
        else if (i == 0)
            fd = ot_net_bind_udp(o->endpoint, d->nsocks > 1, err);
        else
            fd = join_reuseport(d->socks[0].fd, shown, i, err);
        if (fd < 0) {
            dgram_free(d);
            return NULL;
        }
        d->socks[i].fd = fd;
        if (set_options(d, fd, err, shown) != 0) {
            dgram_free(d);
            return NULL;
        }
    }
    if (udp)
        d->port = ot_net_bound_port(d->socks[0].fd);
    for (unsigned i = 0; i < d->o.readers; i++) {
        reader *r = &d->readers[i];
        r->d = d;
        r->idx = i;
        r->s = &d->socks[udp ? i : 0];
        if (reader_alloc(d, r) != 0) {
            ot_err_set(err, "listen %s %s: out of memory for reader buffers", kind, shown);
            stop_readers(d);
            dgram_free(d);
            return NULL;
        }
        int rc = pthread_create(&r->th, NULL, reader_main, r);
        if (rc != 0) {
            ot_err_set(err, "listen %s %s: starting reader thread: %s", kind, shown,
                       strerror(rc));
            stop_readers(d);
            dgram_free(d);
            return NULL;
        }
        r->started = true;
    }
    return d;
}

int ot_dgram_port(const ot_dgram *d)
{
    return d->port;
}

int ot_dgram_rcvbuf(const ot_dgram *d)
{
    return d->rcvbuf;
}

void ot_dgram_get_stats(ot_dgram *d, ot_dgram_stats *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < d->nsocks; i++) {
        uint32_t mi[SK_MEMINFO_VARS];
        socklen_t ml = sizeof mi;
        if (getsockopt(d->socks[i].fd, SOL_SOCKET, SO_MEMINFO, mi, &ml) == 0 &&
            ml > SK_MEMINFO_DROPS * sizeof mi[0])
            note_drops(d, &d->socks[i], mi[SK_MEMINFO_DROPS]);
    }
    for (unsigned i = 0; i < d->o.readers; i++) {
        reader *r = &d->readers[i];
        out->packets += atomic_load_explicit(&r->packets, memory_order_relaxed);
        out->bytes += atomic_load_explicit(&r->bytes, memory_order_relaxed);
        out->truncated += atomic_load_explicit(&r->truncated, memory_order_relaxed);
    }
    out->kernel_drops = atomic_load_explicit(&d->kernel_drops, memory_order_relaxed);
}

void ot_dgram_stop(ot_dgram *d)
{
    if (!d)
        return;
    stop_readers(d);
    dgram_free(d);
}
