/* telemetry_server.c: the HTTP endpoint for the agent's own metrics and
 * health (/metrics, /healthz, /readyz), three routes on net/http_server.h,
 * which binds the socket itself so a bind error comes back from
 * ot_tel_server_start as one line.
 *
 * Auth is asked by the /metrics route itself rather than by the server for
 * every request, because the probes must stay open. The authenticator
 * belongs to the service and is replaced on reload while this server keeps
 * running, so it sits behind a read-write lock: a scrape holds the read
 * side for the length of one check, and a swap waits for those to end. */
#include "pipeline/telemetry_server.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_server.h"
#include "telemetry/telemetry.h"

struct ot_tel_server {
    ot_http_server *http;
    ot_tls_server tls; /* strings in `strings` */
    char *strings;
    char *endpoint_text, *authenticator;
    pthread_rwlock_t auth_lock;
    ot_auth *auth; /* under auth_lock; NULL with authenticator set: refuse */
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

static const char *header_of(void *ctx, const char *name)
{
    return ot_http_header(ctx, name);
}

/* True when the scrape may go on; otherwise it has been answered 401, the
 * same answer whatever was wrong (and while no authenticator is set). */
static bool admitted(ot_tel_server *s, ot_http_req *q)
{
    if (!s->authenticator)
        return true;
    char challenge[128] = "";
    pthread_rwlock_rdlock(&s->auth_lock);
    bool ok = s->auth && ot_auth_check(s->auth, header_of, q);
    /* copied under the lock: the string belongs to the authenticator */
    if (!ok && s->auth && s->auth->challenge)
        snprintf(challenge, sizeof challenge, "%s", s->auth->challenge);
    pthread_rwlock_unlock(&s->auth_lock);
    if (ok)
        return true;
    ot_http_resp *r = ot_http_resp_copy("unauthorized\n", 13);
    ot_http_resp_header(r, "Content-Type", CT_TEXT);
    if (*challenge)
        ot_http_resp_header(r, "WWW-Authenticate", challenge);
    ot_http_send(q, 401, r);
    return false;
}

static void metrics(ot_http_req *q, void *arg)
{
    if (!admitted(arg, q))
        return;
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

static bool same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool same_tls(const ot_tls_server *a, const ot_tls_server *b)
{
    bool pa = a && a->present, pb = b && b->present;
    if (!pa || !pb)
        return pa == pb;
    return same_str(a->cert_file, b->cert_file) && same_str(a->cert_pem, b->cert_pem) &&
           same_str(a->key_file, b->key_file) && same_str(a->key_pem, b->key_pem) &&
           same_str(a->client_ca_file, b->client_ca_file) && a->min_version == b->min_version &&
           a->max_version == b->max_version && a->reload_interval == b->reload_interval &&
           a->client_ca_file_reload == b->client_ca_file_reload;
}

/* The server keeps pointing at its tls block while the plan it came from
 * is freed by a reload: the block and its strings are copied into one
 * allocation. */
static int copy_tls(ot_tel_server *s, const ot_tls_server *t)
{
    if (!t || !t->present)
        return 0;
    const char *const src[] = {t->cert_file, t->cert_pem, t->key_file, t->key_pem,
                               t->client_ca_file};
    size_t need = 0;
    for (size_t i = 0; i < 5; i++)
        need += src[i] ? strlen(src[i]) + 1 : 0;
    if (!(s->strings = malloc(need ? need : 1)))
        return -1;
    const char *dst[5];
    char *p = s->strings;
    for (size_t i = 0; i < 5; i++) {
        dst[i] = NULL;
        if (src[i]) {
            size_t n = strlen(src[i]) + 1;
            memcpy(p, src[i], n);
            dst[i] = p;
            p += n;
        }
    }
    s->tls = *t;
    s->tls.cert_file = dst[0];
    s->tls.cert_pem = dst[1];
    s->tls.key_file = dst[2];
    s->tls.key_pem = dst[3];
    s->tls.client_ca_file = dst[4];
    return 0;
}

static void tel_free(ot_tel_server *s)
{
    if (s->strings && s->tls.key_pem)
        memset((char *)s->tls.key_pem, 0, strlen(s->tls.key_pem));
    free(s->strings);
    free(s->endpoint_text);
    free(s->authenticator);
    pthread_rwlock_destroy(&s->auth_lock);
    free(s);
}

ot_tel_server *ot_tel_server_start_cfg(const ot_tel_server_cfg *c, ot_err *err)
{
    const ot_endpoint *ep = c->endpoint;
    ot_tel_server *s = calloc(1, sizeof *s);
    if (!s || pthread_rwlock_init(&s->auth_lock, NULL) != 0) {
        free(s);
        ot_err_set(err, "listen %s: out of memory", ep->text ? ep->text : "");
        return NULL;
    }
    bool auth = c->authenticator && *c->authenticator;
    if (copy_tls(s, c->tls) < 0 || (ep->text && !(s->endpoint_text = strdup(ep->text))) ||
        (auth && !(s->authenticator = strdup(c->authenticator)))) {
        tel_free(s);
        ot_err_set(err, "listen %s: out of memory", ep->text ? ep->text : "");
        return NULL;
    }
    ot_http_server_opts o = {
        .log_component = "telemetry",
        .max_connections = 64,
        .timeout_s = 10,
        .backlog = 64,
        /* no route takes a body; one sent anyway is read before the route
         * (and its auth) runs, so it is kept small */
        .max_body = 4096,
        .tls = s->tls.present ? &s->tls : NULL,
        .routes = routes,
        .n_routes = sizeof routes / sizeof routes[0],
        .arg = s,
    };
    if (!(s->http = ot_http_server_start(ep, &o, err))) {
        tel_free(s);
        return NULL;
    }
    return s;
}

ot_tel_server *ot_tel_server_start(const ot_endpoint *ep, ot_err *err)
{
    return ot_tel_server_start_cfg(&(ot_tel_server_cfg){.endpoint = ep}, err);
}

bool ot_tel_server_matches(const ot_tel_server *s, const ot_tel_server_cfg *c)
{
    return s && same_str(s->endpoint_text, c->endpoint->text) &&
           same_str(s->authenticator, c->authenticator) &&
           same_tls(s->tls.present ? &s->tls : NULL, c->tls);
}

const char *ot_tel_server_authenticator(const ot_tel_server *s)
{
    return s ? s->authenticator : NULL;
}

void ot_tel_server_set_auth(ot_tel_server *s, ot_auth *a)
{
    if (!s)
        return;
    pthread_rwlock_wrlock(&s->auth_lock);
    s->auth = a;
    pthread_rwlock_unlock(&s->auth_lock);
}

int ot_tel_server_port(const ot_tel_server *s)
{
    return s ? ot_http_server_port(s->http) : -1;
}

unsigned ot_tel_server_reloads(const ot_tel_server *s)
{
    return s ? ot_http_server_reloads(s->http) : 0;
}

void ot_tel_server_stop(ot_tel_server *s)
{
    if (!s)
        return;
    ot_http_server_stop(s->http, 0);
    tel_free(s);
}
