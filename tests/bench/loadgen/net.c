/* net.c: the socket plumbing the TCP targets share: non-blocking connects
 * with Nagle off (requests are written whole, latency matters), a blocking
 * reachability probe so an unreachable target fails fast with a clear
 * message, and an epoll wait with sub-millisecond timeouts for pacing. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

static int resolve(const char *host, int port, struct sockaddr_storage *sa, socklen_t *len)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0 || !res) {
        errno = EHOSTUNREACH;
        return -1;
    }
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int lg_tcp_connect(const char *host, int port)
{
    struct sockaddr_storage sa;
    socklen_t len;
    if (resolve(host, port, &sa, &len) < 0)
        return -1;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, len) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int lg_tcp_probe(const char *host, int port, int timeout_ms, char *msg, size_t cap)
{
    int fd = lg_tcp_connect(host, port);
    if (fd < 0) {
        snprintf(msg, cap, "%s", strerror(errno));
        return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int rc = poll(&p, 1, timeout_ms);
    int err = 0;
    socklen_t el = sizeof err;
    if (rc == 0) {
        snprintf(msg, cap, "connect timed out after %d ms", timeout_ms);
        close(fd);
        return -1;
    }
    if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
        snprintf(msg, cap, "%s", strerror(err ? err : errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int lg_epoll_wait(int ep, void *events, int max, int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return epoll_wait(ep, events, max, -1);
    static int no_pwait2;
    if (!no_pwait2) {
        struct timespec ts = {(time_t)(timeout_ns / 1000000000LL),
                              (long)(timeout_ns % 1000000000LL)};
        int rc = epoll_pwait2(ep, events, max, &ts, NULL);
        if (rc >= 0 || errno != ENOSYS)
            return rc;
        no_pwait2 = 1; /* old kernel: millisecond timeouts, rounded up */
    }
    return epoll_wait(ep, events, max, (int)((timeout_ns + 999999) / 1000000));
}
