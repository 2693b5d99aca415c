/* dogstatsd.c: the DogStatsD target. Each request's items become lines
 * packed into UDP datagrams of at most 8 KiB (the agent's default read
 * size; --lines-per-datagram caps the lines too), sent with one sendmmsg.
 * UDP has no answer, so "accepted" means "the kernel took it"; loss shows
 * only in the receiver's counters. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define DGRAM_MAX 8192
#define MAX_DGRAMS 256

int lg_statsd_worker(lg_worker *w)
{
    const lg_opts *o = w->o;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_DGRAM;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", o->port);
    if (getaddrinfo(o->host, ps, &hints, &res) != 0 || !res) {
        snprintf(w->fatal_msg, sizeof w->fatal_msg, "cannot resolve %s", o->host);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        snprintf(w->fatal_msg, sizeof w->fatal_msg, "udp %s:%d: %s", o->host, o->port, strerror(errno));
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(res);
    w->st.connects++;
    uint64_t rng = o->seed * 31 + (uint64_t)w->id;
    ot_buf buf = OT_BUF_INIT, line = OT_BUF_INIT;
    size_t starts[MAX_DGRAMS + 1];
    struct mmsghdr msgs[MAX_DGRAMS];
    struct iovec iov[MAX_DGRAMS];
    for (;;) {
        int64_t now = lg_now();
        int64_t d = lg_due_in(w, now);
        if (d > 0) {
            struct timespec ts = {(time_t)(d / 1000000000LL), (long)(d % 1000000000LL)};
            nanosleep(&ts, NULL);
            continue;
        }
        uint64_t seq0;
        size_t n = lg_claim(w, &seq0);
        if (!n)
            break;
        int64_t due = lg_take_due(w, now);
        ot_buf_reset(&buf);
        size_t nd = 0;
        starts[0] = 0;
        size_t in_dgram = 0;
        for (size_t i = 0; i < n; i++) {
            ot_buf_reset(&line);
            lg_statsd_line(&line, o, seq0 + i, lg_rand(&rng));
            bool full = buf.len - starts[nd] + line.len > DGRAM_MAX ||
                        (o->dgram_lines && in_dgram == o->dgram_lines);
            if (full && buf.len > starts[nd]) {
                if (nd + 1 == MAX_DGRAMS)
                    break;
                starts[++nd] = buf.len;
                in_dgram = 0;
            }
            ot_buf_append(&buf, line.data, line.len);
            in_dgram++;
        }
        starts[++nd] = buf.len;
        for (size_t k = 0; k < nd; k++) {
            /* the last line's newline is optional; keep it, receivers accept both */
            iov[k] = (struct iovec){buf.data + starts[k], starts[k + 1] - starts[k]};
            memset(&msgs[k], 0, sizeof msgs[k]);
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        size_t sent = 0;
        bool failed = false;
        while (sent < nd) {
            int r = sendmmsg(fd, msgs + sent, (unsigned)(nd - sent), 0);
            if (r < 0) {
                if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS)
                    continue;
                failed = true; /* ECONNREFUSED: nobody listens */
                break;
            }
            sent += (size_t)r;
        }
        w->st.bytes += buf.len;
        lg_stats_done(&w->st, failed ? 0 : 200, !failed, n, lg_now() - due);
    }
    ot_buf_free(&buf);
    ot_buf_free(&line);
    close(fd);
    return 0;
}
