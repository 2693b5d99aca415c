/* k8s.c: the k8s resolver's thread. It lists the EndpointSlices of the
 * Service (label kubernetes.io/service-name) through the API server with
 * the pod's service-account token, gives their ready addresses times the
 * configured ports to lb_set_backends, then watches from the list's
 * resourceVersion: a streamed GET whose lines are events (k8s_parse.c).
 * When the watch ends it is opened again from the last version seen; when
 * the server says the version is gone (an ERROR event, or any failure) it
 * lists again, after a second's pause. The backends stay as they were
 * while the API server cannot be reached. */
#include "lb.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "k8s.h"
#include "net/http_client.h"
#include "net/tls.h"

#define MAX_LIST_BYTES (32u << 20)
#define MAX_EVENT_BYTES (4u << 20)
#define WATCH_SECONDS 290

typedef struct k8s {
    lb *e;
    char base[512];
    char ns[254], name[254];
    ot_tls_client tls;
    ot_http_client *http;
    lb_k8s_state st;
    ot_buf line;         /* the watch line being read */
    bool changed, relist, bad;
    char auth[8192];     /* "Authorization: Bearer ..." */
} k8s;

static bool stopping(lb *e)
{
    pthread_mutex_lock(&e->res_mu);
    bool s = e->res_stop;
    pthread_mutex_unlock(&e->res_mu);
    return s;
}

static bool cancel_cb(void *ctx)
{
    return stopping(((k8s *)ctx)->e);
}

/* Sleeps ns unless told to stop; false when stopping. */
static bool pause_ns(lb *e, int64_t ns)
{
    int64_t until = ot_now_ns() + ns;
    struct timespec ts = {.tv_sec = (time_t)(until / 1000000000), .tv_nsec = (long)(until % 1000000000)};
    pthread_mutex_lock(&e->res_mu);
    while (!e->res_stop && ot_now_ns() < until)
        pthread_cond_timedwait(&e->res_cv, &e->res_mu, &ts);
    bool go = !e->res_stop;
    pthread_mutex_unlock(&e->res_mu);
    return go;
}

static void read_token(k8s *k)
{
    k->auth[0] = 0;
    const char *path = k->e->cfg->resolver.k8s.token_file;
    FILE *f = path && *path ? fopen(path, "r") : NULL;
    if (!f)
        return;
    char tok[8000];
    size_t n = fread(tok, 1, sizeof tok - 1, f);
    fclose(f);
    while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        n--;
    tok[n] = 0;
    if (n && !strpbrk(tok, "\r\n"))
        snprintf(k->auth, sizeof k->auth, "Authorization: Bearer %s", tok);
}

static void publish(k8s *k)
{
    const lb_k8s_cfg *c = &k->e->cfg->resolver.k8s;
    size_t n = 0;
    char **eps = lb_k8s_endpoints(&k->st, c->ports.v, c->ports.n, &n);
    if (!eps)
        return;
    lb_set_backends(k->e, (const char *const *)eps, n);
    lb_k8s_endpoints_free(eps, n);
}

static int do_get(k8s *k, const char *url, int64_t deadline, ot_buf *body, bool stream,
                  ot_http_response *resp);

static int on_watch_data(void *ctx, const char *p, size_t n)
{
    k8s *k = ctx;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n') {
            if (k->line.len >= MAX_EVENT_BYTES || ot_buf_append(&k->line, p + i, 1) < 0) {
                k->bad = true;
                return 1;
            }
            continue;
        }
        if (k->line.len) {
            ot_err err = {{0}};
            int rc = lb_k8s_apply_event(&k->st, k->line.data, k->line.len, &err);
            ot_buf_reset(&k->line);
            if (rc < 0) {
                ot_warn("loadbalancing", "k8s watch: bad event", "exporter=%s error=\"%s\"",
                        k->e->id, err.msg);
                k->bad = true;
                return 1;
            }
            if (rc == LB_K8S_RELIST) {
                k->relist = true;
                return 1;
            }
            if (rc == LB_K8S_CHANGED)
                publish(k);
        }
    }
    return 0;
}

static int do_get(k8s *k, const char *url, int64_t deadline, ot_buf *body, bool stream,
                  ot_http_response *resp)
{
    const char *hdrs[2] = {"Accept: application/json", k->auth};
    ot_http_request req = {.method = OT_HTTP_GET, .url = url, .headers = hdrs,
                           .n_headers = k->auth[0] ? 2 : 1, .deadline_ns = deadline,
                           .max_body = MAX_LIST_BYTES};
    if (stream) {
        req.on_data = on_watch_data;
        req.cancel = cancel_cb;
        req.stream_ctx = k;
    }
    memset(resp, 0, sizeof *resp);
    resp->body = body;
    return ot_http_client_do(k->http, &req, resp);
}

static bool list(k8s *k)
{
    char url[1400];
    snprintf(url, sizeof url,
             "%s/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices"
             "?labelSelector=kubernetes.io%%2Fservice-name%%3D%s",
             k->base, k->ns, k->name);
    ot_buf body = OT_BUF_INIT;
    ot_http_response resp;
    read_token(k);
    int rc = do_get(k, url, ot_now_ns() + k->e->cfg->resolver.k8s.timeout, &body, false, &resp);
    ot_err err = {{0}};
    bool ok = false;
    if (rc < 0)
        ot_err_set(&err, "%s", resp.error);
    else if (resp.status != 200)
        ot_err_set(&err, "GET %s: HTTP %d %.*s", url, resp.status, (int)(body.len < 200 ? body.len : 200),
                   body.data ? body.data : "");
    else if (resp.truncated)
        ot_err_set(&err, "EndpointSliceList larger than %u bytes", MAX_LIST_BYTES);
    else if (lb_k8s_apply_list(&k->st, body.data ? body.data : "", body.len, &err) == 0)
        ok = true;
    ot_buf_free(&body);
    if (!ok) {
        ot_warn("loadbalancing", "k8s list failed; keeping the backends", "exporter=%s error=\"%s\"",
                k->e->id, err.msg);
        return false;
    }
    publish(k);
    return true;
}

/* One watch until it ends; true when it may simply be opened again. */
static bool watch(k8s *k)
{
    char url[1600];
    snprintf(url, sizeof url,
             "%s/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices"
             "?labelSelector=kubernetes.io%%2Fservice-name%%3D%s&watch=true"
             "&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
             k->base, k->ns, k->name, WATCH_SECONDS, k->st.rv);
    ot_http_response resp;
    k->relist = k->bad = false;
    ot_buf_reset(&k->line);
    read_token(k);
    int rc = do_get(k, url, ot_now_ns() + (int64_t)(WATCH_SECONDS + 30) * 1000000000, NULL, true,
                    &resp);
    if (stopping(k->e) || k->relist)
        return false;
    if (rc < 0 && !k->bad) {
        ot_warn("loadbalancing", "k8s watch ended", "exporter=%s error=\"%s\"", k->e->id, resp.error);
        return false;
    }
    if (rc == 0 && resp.status != 200) {
        ot_warn("loadbalancing", "k8s watch refused", "exporter=%s status=%d", k->e->id,
                resp.status);
        return false;
    }
    return !k->bad;
}

static int k8s_setup(k8s *k, ot_err *err)
{
    const lb_k8s_cfg *c = &k->e->cfg->resolver.k8s;
    const char *dot = strchr(c->service, '.');
    size_t nl = dot ? (size_t)(dot - c->service) : strlen(c->service);
    const char *ns = dot ? dot + 1 : "default";
    if (!nl || nl >= sizeof k->name || strlen(ns) >= sizeof k->ns || strchr(ns, '.') ||
        strpbrk(c->service, "/?&%# "))
        return ot_err_set(err, "resolver.k8s.service: \"%s\" is not name.namespace", c->service);
    memcpy(k->name, c->service, nl);
    k->name[nl] = 0;
    snprintf(k->ns, sizeof k->ns, "%s", ns);
    if (c->api_server && *c->api_server) {
        snprintf(k->base, sizeof k->base, "%s", c->api_server);
    } else {
        const char *h = getenv("KUBERNETES_SERVICE_HOST"), *p = getenv("KUBERNETES_SERVICE_PORT");
        if (!h || !*h)
            return ot_err_set(err, "resolver.k8s: not in a cluster (KUBERNETES_SERVICE_HOST is "
                                   "unset) and api_server is not set");
        snprintf(k->base, sizeof k->base, strchr(h, ':') ? "https://[%s]:%s" : "https://%s:%s", h,
                 p && *p ? p : "443");
    }
    size_t bl = strlen(k->base);
    while (bl && k->base[bl - 1] == '/')
        k->base[--bl] = 0;
    k->tls.ca_file = c->ca_file;
    ot_http_client_cfg hc = {.id = k->e->id, .tls = strncmp(k->base, "https://", 8) ? NULL : &k->tls};
    k->http = ot_http_client_new(&hc, err);
    return k->http ? 0 : -1;
}

void *lb_k8s_main(void *arg)
{
    lb *e = arg;
    k8s *k = e->k8s;
    while (!stopping(e)) {
        if (!list(k)) {
            if (!pause_ns(e, 1000000000))
                break;
            continue;
        }
        while (watch(k) && !stopping(e))
            ;
        if (!pause_ns(e, k->relist ? 0 : 1000000000))
            break;
    }
    return NULL;
}

int lb_k8s_prepare(lb *e, ot_err *err)
{
    k8s *k = calloc(1, sizeof *k);
    if (!k)
        return ot_err_set(err, "out of memory");
    k->e = e;
    e->k8s = k;
    return k8s_setup(k, err);
}

void lb_k8s_free(lb *e)
{
    k8s *k = e->k8s;
    if (!k)
        return;
    ot_http_client_free(k->http);
    lb_k8s_state_free(&k->st);
    ot_buf_free(&k->line);
    free(k);
    e->k8s = NULL;
}
