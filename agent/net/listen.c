/* net.c: listening sockets (see net.h). */
#include "net/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int ot_net_listen(const ot_endpoint *ep, int backlog, ot_err *err)
{
    char port[16];
    const char *shown = ep->text ? ep->text : "";
    if (ep->port < 0 || ep->port > 65535)
        return ot_err_set(err, "listen %s: port out of range", shown);
    snprintf(port, sizeof port, "%d", ep->port);
    const char *host = ep->host && *ep->host ? ep->host : NULL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return ot_err_set(err, "listen %s: %s", shown, gai_strerror(gai));
    int fd = -1, last = EADDRNOTAVAIL;
    for (int pass = 0; pass < 2 && fd < 0; pass++) {
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
            if ((ai->ai_family == AF_INET) != (pass == 0))
                continue;
            fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (fd < 0) {
                last = errno;
                continue;
            }
            int on = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
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
        return ot_err_set(err, "listen %s: %s", shown, strerror(last));
    return fd;
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
