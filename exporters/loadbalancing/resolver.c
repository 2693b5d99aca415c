/* resolver.c: where the backends come from. static: the hostnames, once
 * at start (a reload that changes them makes a new exporter). dns: a
 * thread that asks for the name's A and AAAA records every interval and
 * gives the addresses with the port to lb_set_backends; a failed
 * resolution keeps the backends it had, an answer with no address empties
 * them. k8s: k8s.c's list-and-watch thread. */
#include "lb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "dns.h"

/* "host" → "host:4317"; "host:port" and "[v6]:port" as they are; a bare
 * IPv6 address gets brackets. */
static char *with_port(const char *h, int64_t port)
{
    size_t colons = 0;
    for (const char *p = h; *p; p++)
        colons += *p == ':';
    bool has = h[0] == '[' ? strstr(h, "]:") != NULL : colons == 1;
    size_t cap = strlen(h) + 16;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    if (has)
        snprintf(out, cap, "%s", h);
    else if (colons > 1 && h[0] != '[')
        snprintf(out, cap, "[%s]:%lld", h, (long long)port);
    else
        snprintf(out, cap, "%s:%lld", h, (long long)port);
    return out;
}

static void set_list(lb *e, char **eps, size_t n)
{
    lb_set_backends(e, (const char *const *)eps, n);
    for (size_t i = 0; i < n; i++)
        free(eps[i]);
}

static void start_static(lb *e)
{
    const ot_strlist *h = &e->cfg->resolver.stat.hostnames;
    char **eps = calloc(h->n ? h->n : 1, sizeof *eps);
    size_t n = 0;
    for (size_t i = 0; eps && i < h->n; i++)
        if ((eps[n] = with_port(h->v[i], 4317)))
            n++;
    if (eps)
        set_list(e, eps, n);
    free(eps);
}

/* ---- dns ------------------------------------------------------------------- */

typedef struct dns_state {
    char server[256];
    int port;
} dns_state;

static int dns_server(const lb_dns_cfg *c, dns_state *st, ot_err *err)
{
    st->port = 53;
    if (c->nameserver && *c->nameserver) {
        ot_endpoint ep;
        ot_arena *a = ot_arena_new(0);
        int rc = a ? ot_parse_endpoint(c->nameserver, &ep, a, err) : ot_err_set(err, "out of memory");
        if (rc == 0) {
            snprintf(st->server, sizeof st->server, "%s", ep.host);
            st->port = ep.port;
        }
        ot_arena_free(a);
        return rc < 0 ? ot_err_prefix(err, "resolver.dns.nameserver") : 0;
    }
    if (lb_dns_system_server("/etc/resolv.conf", st->server, sizeof st->server) < 0)
        snprintf(st->server, sizeof st->server, "127.0.0.1");
    return 0;
}

static void dns_once(lb *e, const dns_state *st)
{
    const lb_dns_cfg *c = &e->cfg->resolver.dns;
    static _Thread_local lb_dns_addr addrs[LB_DNS_MAX_ADDRS];
    ot_err err = {{0}};
    int n = lb_dns_resolve(st->server, st->port, c->hostname, c->timeout, addrs,
                           LB_DNS_MAX_ADDRS, &err);
    if (n < 0) {
        ot_warn("loadbalancing", "DNS resolution failed; keeping the backends",
                "exporter=%s hostname=%s error=\"%s\"", e->id, c->hostname, err.msg);
        return;
    }
    char **eps = calloc((size_t)n + 1, sizeof *eps);
    size_t k = 0;
    for (int i = 0; eps && i < n; i++)
        if ((eps[k] = with_port(addrs[i], c->port)))
            k++;
    if (eps)
        set_list(e, eps, k);
    free(eps);
}

static void *dns_main(void *arg)
{
    lb *e = arg;
    dns_state st;
    ot_err err = {{0}};
    if (dns_server(&e->cfg->resolver.dns, &st, &err) < 0)
        return NULL; /* checked at start */
    pthread_mutex_lock(&e->res_mu);
    while (!e->res_stop) {
        struct timespec ts;
        int64_t until = ot_now_ns() + e->cfg->resolver.dns.interval;
        ts.tv_sec = (time_t)(until / 1000000000);
        ts.tv_nsec = (long)(until % 1000000000);
        while (!e->res_stop && ot_now_ns() < until)
            pthread_cond_timedwait(&e->res_cv, &e->res_mu, &ts);
        if (e->res_stop)
            break;
        pthread_mutex_unlock(&e->res_mu);
        dns_once(e, &st);
        pthread_mutex_lock(&e->res_mu);
    }
    pthread_mutex_unlock(&e->res_mu);
    return NULL;
}

int lb_resolver_start(lb *e, ot_err *err)
{
    const lb_cfg *c = e->cfg;
    void *(*fn)(void *) = NULL;
    if (c->resolver.stat.present) {
        start_static(e);
        return 0;
    }
    if (c->resolver.dns.present) {
        dns_state st;
        if (dns_server(&c->resolver.dns, &st, err) < 0)
            return -1;
        /* Once now, so data that comes right after start has a ring. */
        dns_once(e, &st);
        fn = dns_main;
    } else if (c->resolver.k8s.present) {
        if (lb_k8s_prepare(e, err) < 0)
            return -1;
        fn = lb_k8s_main;
    }
    if (!fn)
        return ot_err_set(err, "no resolver configured");
    e->res_stop = false;
    if (pthread_create(&e->res_thr, NULL, fn, e) != 0)
        return ot_err_set(err, "cannot start the resolver thread");
    e->res_running = true;
    return 0;
}

void lb_resolver_stop(lb *e)
{
    if (!e->res_running)
        return;
    pthread_mutex_lock(&e->res_mu);
    e->res_stop = true;
    pthread_cond_broadcast(&e->res_cv);
    pthread_mutex_unlock(&e->res_mu);
    pthread_join(e->res_thr, NULL);
    e->res_running = false;
}
