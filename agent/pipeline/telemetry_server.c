/* telemetry_http.c: the HTTP endpoint for the agent's own metrics and health
 * (/metrics, /healthz, /readyz) on libmicrohttpd. We create and bind the
 * listening socket ourselves so a bind error is reported by
 * ot_tel_server_start itself, as a one-line error, instead of somewhere in
 * the library's log. */
#include "net/listen.h"
#include "telemetry/telemetry.h"
#include "pipeline/telemetry_server.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ot_tel_server {
    struct MHD_Daemon *mhd;
    int fd; /* ours; the daemon got a dup of it */
    int port;
};

static const char *const CT_TEXT = "text/plain; charset=utf-8";
static const char *const CT_METRICS = "text/plain; version=0.0.4; charset=utf-8";

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             void *body, size_t len, enum MHD_ResponseMemoryMode mode,
                             const char *allow)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_str(struct MHD_Connection *c, unsigned status, const char *s,
                                 const char *allow)
{
    return reply(c, status, CT_TEXT, (void *)s, strlen(s), MHD_RESPMEM_PERSISTENT, allow);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **req)
{
    enum { METRICS, HEALTHZ, READYZ } route;
    if (strcmp(url, "/metrics") == 0)
        route = METRICS;
    else if (strcmp(url, "/healthz") == 0)
        route = HEALTHZ;
    else if (strcmp(url, "/readyz") == 0)
        route = READYZ;
    else
        return reply_str(c, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_str(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");

    switch (route) {
    case HEALTHZ:
        return reply_str(c, MHD_HTTP_OK, "ok", NULL);
    case READYZ:
        return ot_tel_ready() ? reply_str(c, MHD_HTTP_OK, "ready", NULL)
                              : reply_str(c, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready", NULL);
    case METRICS:
        break;
    }
    ot_buf b = OT_BUF_INIT;
    ot_tel_render(&b);
    if (b.oom || !b.data) {
        ot_buf_free(&b);
        return reply_str(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    }
    /* MUST_FREE hands b.data to the library, which free()s it */
    return reply(c, MHD_HTTP_OK, CT_METRICS, b.data, b.len, MHD_RESPMEM_MUST_FREE, NULL);
}

ot_tel_server *ot_tel_server_start(const ot_endpoint *ep, ot_err *err)
{
    char shown[300];
    if (ep->text && *ep->text)
        snprintf(shown, sizeof shown, "%s", ep->text);
    else if (ep->host && strchr(ep->host, ':'))
        snprintf(shown, sizeof shown, "[%s]:%d", ep->host, ep->port);
    else
        snprintf(shown, sizeof shown, "%s:%d", ep->host ? ep->host : "", ep->port);
    if (ep->port < 0 || ep->port > 65535) {
        ot_err_set(err, "listen %s: port out of range", shown);
        return NULL;
    }

    ot_tel_server *s = calloc(1, sizeof *s);
    if (!s) {
        ot_err_set(err, "listen %s: out of memory", shown);
        return NULL;
    }
    s->fd = ot_net_listen(ep, 64, err);
    if (s->fd < 0) {
        free(s);
        return NULL;
    }
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    int family = AF_INET;
    if (getsockname(s->fd, (struct sockaddr *)&sa, &sl) == 0) {
        family = sa.ss_family;
        s->port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                           : ((struct sockaddr_in *)&sa)->sin_port);
    }
    /* The library closes the socket it is given on stop, but not on every
     * failed start; a dup keeps closing ours unambiguous. */
    int dfd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
    if (dfd >= 0)
        s->mhd = MHD_start_daemon(
            MHD_USE_AUTO_INTERNAL_THREAD | (family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL,
            NULL, handle, s, MHD_OPTION_LISTEN_SOCKET, dfd, MHD_OPTION_CONNECTION_TIMEOUT,
            10u, MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
    if (!s->mhd) {
        ot_err_set(err, "listen %s: cannot start the HTTP server", shown);
        close(s->fd);
        free(s);
        return NULL;
    }
    return s;
}

int ot_tel_server_port(const ot_tel_server *s)
{
    return s ? s->port : -1;
}

void ot_tel_server_stop(ot_tel_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    close(s->fd);
    free(s);
}
