/* telemetry_server.c: the HTTP endpoint for the agent's own metrics and
 * health (/metrics, /healthz, /readyz), three routes on net/http_server.h,
 * which binds the socket itself so a bind error comes back from
 * ot_tel_server_start as one line. */
#include "pipeline/telemetry_server.h"

#include <stdlib.h>
#include <string.h>

#include "net/http_server.h"
#include "telemetry/telemetry.h"

struct ot_tel_server {
    ot_http_server *http;
};

static const char *const CT_TEXT = "text/plain; charset=utf-8";
static const char *const CT_METRICS = "text/plain; version=0.0.4; charset=utf-8";

static void text(ot_http_req *q, unsigned status, const char *s)
{
    ot_http_reply(q, status, CT_TEXT, s, strlen(s));
}

static void healthz(ot_http_req *q, void *arg)
{
    text(q, 200, "ok");
}

static void readyz(ot_http_req *q, void *arg)
{
    if (ot_tel_ready())
        text(q, 200, "ready");
    else
        text(q, 503, "not ready");
}

static void metrics(ot_http_req *q, void *arg)
{
    ot_buf b = OT_BUF_INIT;
    ot_tel_render(&b);
    if (b.oom || !b.data) {
        ot_buf_free(&b);
        text(q, 500, "out of memory\n");
        return;
    }
    /* the buffer is handed to the server, which free()s it */
    ot_http_resp *r = ot_http_resp_take(b.data, b.len);
    ot_http_resp_header(r, "Content-Type", CT_METRICS);
    ot_http_send(q, 200, r);
}

static const ot_http_route routes[] = {
    {"GET", "/metrics", metrics},
    {"GET", "/healthz", healthz},
    {"GET", "/readyz", readyz},
};

ot_tel_server *ot_tel_server_start(const ot_endpoint *ep, ot_err *err)
{
    ot_tel_server *s = calloc(1, sizeof *s);
    if (!s) {
        ot_err_set(err, "listen %s: out of memory", ep->text ? ep->text : "");
        return NULL;
    }
    ot_http_server_opts o = {
        .log_component = "telemetry",
        .max_connections = 64,
        .timeout_s = 10,
        .backlog = 64,
        .routes = routes,
        .n_routes = sizeof routes / sizeof routes[0],
    };
    if (!(s->http = ot_http_server_start(ep, &o, err))) {
        free(s);
        return NULL;
    }
    return s;
}

int ot_tel_server_port(const ot_tel_server *s)
{
    return s ? ot_http_server_port(s->http) : -1;
}

void ot_tel_server_stop(ot_tel_server *s)
{
    if (!s)
        return;
    ot_http_server_stop(s->http, 0);
    free(s);
}
