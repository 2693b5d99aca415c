/* net.c: listening sockets (see net.h). */
#include "net/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Resolves ep and binds the first address that takes a socket of type
 * (IPv4 before IPv6). backlog >= 0 also listens. verb starts the error. */
static int bind_first(const ot_endpoint *ep, int type, int backlog, bool reuseport,
                      const char *verb, ot_err *err)
{
    char port[16];
    const char *shown = ep->text ? ep->text : "";
    if (ep->port < 0 || ep->port > 65535)
        return ot_err_set(err, "%s %s: port out of range", verb, shown);
    snprintf(port, sizeof port, "%d", ep->port);
    const char *host = ep->host && *ep->host ? ep->host : NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = type,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return ot_err_set(err, "%s %s: %s", verb, shown, gai_strerror(gai));
    int fd = -1, last = EADDRNOTAVAIL;
    for (int pass = 0; pass < 2 && fd < 0; pass++) {
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
            if ((ai->ai_family == AF_INET) != (pass == 0))
                continue;
            fd = socket(ai->ai_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (fd < 0) {
                last = errno;
                continue;
            }
            int on = 1;
            /* For UDP, SO_REUSEADDR would let a second binder share the
             * port silently; a taken port must be an error instead. */
            if (type == SOCK_STREAM)
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
            if (reuseport)
                setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
                (backlog < 0 || listen(fd, backlog) == 0))
                break;
            last = errno;
            close(fd);
            fd = -1;
            /* A busy port is the answer; another address would hide it. */
            if (last == EADDRINUSE || last == EACCES)
                pass = 2;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return ot_err_set(err, "%s %s: %s", verb, shown, strerror(last));
    return fd;
}

/* A listener is meant to hold thousands of connections, and the usual
 * soft limit of 1024 descriptors would make accept() fail long before its
 * max_connections; the hard limit is what the administrator allows, so
 * the soft one is raised to it (as the Go runtime does for the collector). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int ot_net_listen(const ot_endpoint *ep, int backlog, ot_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, raise_nofile);
    return bind_first(ep, SOCK_STREAM, backlog, false, "listen", err);
}

int ot_net_bind_udp(const ot_endpoint *ep, bool reuseport, ot_err *err)
{
    return bind_first(ep, SOCK_DGRAM, -1, reuseport, "listen udp", err);
}

int ot_net_bound_port(int fd)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        return 0;
    if (sa.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    return ntohs(((struct sockaddr_in *)&sa)->sin_port);
}

/* The file a dead process left behind is removed, but a socket someone
 * still serves is not taken over: a probe connect tells them apart. */
static int clear_stale(const char *path, const struct sockaddr_un *sa, int type,
                       const char *verb, ot_err *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : ot_err_set(err, "%s %s: %s", verb, path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return ot_err_set(err, "%s %s: exists and is not a socket", verb, path);
    int probe = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe < 0)
        return ot_err_set(err, "%s %s: %s", verb, path, strerror(errno));
    int rc = connect(probe, (const struct sockaddr *)sa, sizeof *sa), e = errno;
    close(probe);
    if (rc == 0 || e == EAGAIN || e == EPROTOTYPE || e == EINPROGRESS)
        return ot_err_set(err, "%s %s: socket in use by another process", verb, path);
    if (e != ECONNREFUSED)
        return ot_err_set(err, "%s %s: %s", verb, path, strerror(e));
    if (unlink(path) != 0 && errno != ENOENT)
        return ot_err_set(err, "%s %s: removing stale socket: %s", verb, path, strerror(errno));
    return 0;
}

int ot_net_bind_unix(const char *path, int type, unsigned mode, ot_net_unix_id *id,
                     ot_err *err)
{
    const char *verb = type == SOCK_DGRAM ? "listen unixgram" : "listen unix";
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || !*path)
        return ot_err_set(err, "%s: no socket path", verb);
    if (strlen(path) >= sizeof sa.sun_path)
        return ot_err_set(err, "%s %s: path longer than %zu bytes", verb, path,
                          sizeof sa.sun_path - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (clear_stale(path, &sa, type, verb, err) != 0)
        return -1;
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return ot_err_set(err, "%s %s: %s", verb, path, strerror(errno));
    struct stat st;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto fail;
    /* chmod after bind leaves a moment at the umask's mode; setting the
     * umask instead would change it for every thread of the process. */
    if ((mode && chmod(path, mode) != 0) || stat(path, &st) != 0)
        goto fail_unlink;
    if (type == SOCK_STREAM && listen(fd, SOMAXCONN) != 0)
        goto fail_unlink;
    if (id) {
        id->dev = (uint64_t)st.st_dev;
        id->ino = (uint64_t)st.st_ino;
    }
    return fd;
fail_unlink:;
    int e = errno;
    unlink(path);
    errno = e;
fail:
    e = errno;
    close(fd);
    return ot_err_set(err, "%s %s: %s", verb, path, strerror(e));
}

void ot_net_unlink_unix(const char *path, const ot_net_unix_id *id)
{
    struct stat st;
    /* A newer process may have put its own socket there since. */
    if (path && lstat(path, &st) == 0 && (uint64_t)st.st_dev == id->dev &&
        (uint64_t)st.st_ino == id->ino)
        unlink(path);
}
