/* lb.c: the `loadbalancing` exporter as a component: its keys (the
 * collector's: routing_key, protocol.otlp, resolver.static / dns / k8s,
 * sending_queue, retry_on_failure), the checks across them, and the
 * lifecycle. The work is elsewhere: the ring (ring.c), the split of a
 * request by key (route.c), the backends and their queues (backend.c), the
 * resolvers (resolver.c, dns.c, k8s.c). */
#include "lb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* ---- configuration -------------------------------------------------------- */

static const ot_key static_keys[] = {
    {.name = "hostnames", .type = OT_KT_STRLIST, .offset = offsetof(lb_static_cfg, hostnames),
     .help = "backends as host:port (port 4317 when left out)"},
    {0},
};

static const ot_key dns_keys[] = {
    {.name = "hostname", .type = OT_KT_STRING, .offset = offsetof(lb_dns_cfg, hostname),
     .help = "name whose A and AAAA records are the backends"},
    {.name = "port", .type = OT_KT_INT, .offset = offsetof(lb_dns_cfg, port), .def = "4317",
     .min = 1, .max = 65535, .help = "port of every backend"},
    {.name = "interval", .type = OT_KT_DURATION, .offset = offsetof(lb_dns_cfg, interval),
     .def = "5s", .min = 1e7, .max = 86400e9, .help = "time between two resolutions"},
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(lb_dns_cfg, timeout),
     .def = "1s", .min = 1e6, .max = 60e9, .help = "time allowed for one resolution"},
    {.name = "nameserver", .type = OT_KT_STRING, .offset = offsetof(lb_dns_cfg, nameserver),
     .help = "DNS server as host:port (UDP); the first nameserver of /etc/resolv.conf when unset"},
    {0},
};

static const ot_key k8s_keys[] = {
    {.name = "service", .type = OT_KT_STRING, .offset = offsetof(lb_k8s_cfg, service),
     .help = "the gateway Service as name.namespace"},
    {.name = "ports", .type = OT_KT_STRLIST, .offset = offsetof(lb_k8s_cfg, ports), .def = "[4317]",
     .help = "ports of each endpoint address that are backends"},
    {.name = "api_server", .type = OT_KT_STRING, .offset = offsetof(lb_k8s_cfg, api_server),
     .help = "Kubernetes API URL; in-cluster (KUBERNETES_SERVICE_HOST/PORT, https) when unset"},
    {.name = "token_file", .type = OT_KT_STRING, .offset = offsetof(lb_k8s_cfg, token_file),
     .def = "/var/run/secrets/kubernetes.io/serviceaccount/token",
     .help = "bearer token of the service account"},
    {.name = "ca_file", .type = OT_KT_STRING, .offset = offsetof(lb_k8s_cfg, ca_file),
     .def = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
     .help = "CA of the API server (https only)"},
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(lb_k8s_cfg, timeout),
     .def = "10s", .min = 1e8, .max = 600e9, .help = "time allowed for the list request"},
    {0},
};

static const ot_key resolver_keys[] = {
    {.name = "static", .type = OT_KT_TABLE, .offset = offsetof(lb_cfg, resolver.stat) - offsetof(lb_cfg, resolver),
     .sub = static_keys, .flags = OT_KF_PRESENCE, .help = "a fixed list of backends"},
    {.name = "dns", .type = OT_KT_TABLE, .offset = offsetof(lb_cfg, resolver.dns) - offsetof(lb_cfg, resolver),
     .sub = dns_keys, .flags = OT_KF_PRESENCE, .help = "backends from a name's A/AAAA records, re-resolved"},
    {.name = "k8s", .type = OT_KT_TABLE, .offset = offsetof(lb_cfg, resolver.k8s) - offsetof(lb_cfg, resolver),
     .sub = k8s_keys, .flags = OT_KF_PRESENCE,
     .help = "backends from a Service's EndpointSlices, listed and watched"},
    {0},
};

static const ot_key protocol_keys[] = {
    {.name = "otlp", .type = OT_KT_NODE, .offset = 0,
     .help = "settings of the `otlp` exporter made for each backend (endpoint set per backend)"},
    {0},
};

static const ot_key lb_keys[] = {
    {.name = "routing_key", .type = OT_KT_STRING, .offset = offsetof(lb_cfg, routing_key),
     .help = "what keeps data together on one backend: traceID, service, resource, metric or "
             "streamID; unset: traceID for traces and logs, service for metrics"},
    {.name = "protocol", .type = OT_KT_TABLE, .offset = offsetof(lb_cfg, protocol),
     .sub = protocol_keys, .help = "how backends are reached"},
    {.name = "resolver", .type = OT_KT_TABLE, .offset = offsetof(lb_cfg, resolver),
     .sub = resolver_keys, .help = "where the list of backends comes from (one of static, dns, k8s)"},
    {.name = "sending_queue", .type = OT_KT_TABLE, .offset = offsetof(lb_cfg, queue),
     .help = "each backend's queue and sender threads; the bounds are for all backends together",
     .sub = ot_exph_queue_keys},
    {.name = "retry_on_failure", .type = OT_KT_TABLE, .offset = offsetof(lb_cfg, retry),
     .help = "retries of a failing backend", .sub = ot_exph_retry_keys},
    {0},
};

static const char *const key_names[] = {"traceID", "service", "resource", "metric", "streamID",
                                        NULL};

static int parse_key(const char *s)
{
    for (int i = 0; key_names[i]; i++)
        if (!strcmp(s, key_names[i]))
            return i;
    return -1;
}

static void lb_validate(const void *vcfg, const ot_node *node, const char *path, ot_diags *d)
{
    const lb_cfg *c = vcfg;
    char p[512];
    const ot_node *res = ot_node_get(node, "resolver");
    if (c->routing_key && *c->routing_key && parse_key(c->routing_key) < 0) {
        const ot_node *at = ot_node_get(node, "routing_key");
        snprintf(p, sizeof p, "%s.routing_key", path);
        ot_diag_add(d, OT_SEV_ERROR, at ? at : node, p,
                    "expected one of traceID, service, resource, metric, streamID, found \"%s\"",
                    c->routing_key);
    }
    int n = c->resolver.stat.present + c->resolver.dns.present + c->resolver.k8s.present;
    snprintf(p, sizeof p, "%s.resolver", path);
    if (n != 1)
        ot_diag_add(d, OT_SEV_ERROR, res ? res : node, p,
                    n ? "set only one of static, dns, k8s" : "set one of static, dns, k8s");
    if (c->resolver.stat.present && !c->resolver.stat.hostnames.n) {
        snprintf(p, sizeof p, "%s.resolver.static.hostnames", path);
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(res, "static"), p, "list at least one backend");
    }
    if (c->resolver.dns.present && (!c->resolver.dns.hostname || !*c->resolver.dns.hostname)) {
        snprintf(p, sizeof p, "%s.resolver.dns.hostname", path);
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(res, "dns"), p, "required");
    }
    if (c->resolver.k8s.present) {
        const char *s = c->resolver.k8s.service;
        snprintf(p, sizeof p, "%s.resolver.k8s.service", path);
        if (!s || !*s)
            ot_diag_add(d, OT_SEV_ERROR, ot_node_get(res, "k8s"), p, "required (name.namespace)");
        for (size_t i = 0; i < c->resolver.k8s.ports.n; i++) {
            char *end;
            long v = strtol(c->resolver.k8s.ports.v[i], &end, 10);
            if (*end || v < 1 || v > 65535) {
                snprintf(p, sizeof p, "%s.resolver.k8s.ports", path);
                ot_diag_add(d, OT_SEV_ERROR, ot_node_get(res, "k8s"), p,
                            "\"%s\" is not a port", c->resolver.k8s.ports.v[i]);
            }
        }
    }
    /* The backends' settings, checked as the otlp exporter checks its own. */
    const ot_node *proto = ot_node_path(node, "protocol.otlp");
    snprintf(p, sizeof p, "%s.protocol.otlp", path);
    ot_arena *a = ot_arena_new(0);
    static const char *const sets[] = {"endpoint=backend.invalid:4317"};
    const ot_node *probe = a ? ot_node_overlay(a, proto, sets, 1, d) : NULL;
    if (probe)
        ot_subcomp_check(OT_EXPORTER, "otlp", probe, p, d);
    ot_arena_free(a);
    static const char *const ours[] = {"endpoint", "sending_queue", "retry_on_failure"};
    for (size_t i = 0; i < 3; i++) {
        const ot_node *at = ot_node_get(proto, ours[i]);
        if (at)
            ot_diag_add(d, OT_SEV_WARNING, at, p,
                        "%s is not used here: %s", ours[i],
                        i == 0 ? "each backend's endpoint comes from the resolver"
                               : "each backend's queue and retries are this exporter's "
                                 "sending_queue and retry_on_failure");
    }
    if (c->queue.storage && *c->queue.storage) {
        snprintf(p, sizeof p, "%s.sending_queue.storage", path);
        ot_diag_add(d, OT_SEV_ERROR, ot_node_path(node, "sending_queue.storage"), p,
                    "a persistent queue is not supported by loadbalancing");
    }
    if (!c->queue.enabled) {
        snprintf(p, sizeof p, "%s.sending_queue.enabled", path);
        ot_diag_add(d, OT_SEV_ERROR, ot_node_path(node, "sending_queue.enabled"), p,
                    "loadbalancing always queues per backend (so that a removed backend's data "
                    "can be routed again)");
    }
    ot_exph_config hc = {.queue = c->queue, .retry = c->retry};
    ot_exph_validate(&hc, node, path, d);
}

/* ---- the exporter ---------------------------------------------------------- */

static ot_status lb_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    return lb_consume_batch(((struct lb_cons *)self)->e, b, err);
}

static void lb_destroy(void *self);

static void *lb_create(const ot_create_params *p, ot_err *err)
{
    const lb_cfg *c = p->config;
    lb *e = calloc(1, sizeof *e);
    if (!e || !(e->id = strdup(p->id))) {
        free(e);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    e->cfg = c;
    e->host = p->host;
    int k = c->routing_key && *c->routing_key ? parse_key(c->routing_key) : -1;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        /* A key the signal has not (traceID for metrics, metric for spans)
         * falls back to the signal's default, as one exporter may serve all
         * three signals. */
        lb_key dflt = s == OT_METRICS ? LB_KEY_SERVICE : LB_KEY_TRACEID;
        e->key[s] = k >= 0 && lb_key_valid((ot_signal)s, (lb_key)k) ? (lb_key)k : dflt;
        e->cons[s].base.consume = lb_consume;
        e->cons[s].e = e;
    }
    pthread_rwlock_init(&e->ring_lock, NULL);
    pthread_mutex_init(&e->set_mu, NULL);
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->res_mu, NULL);
    pthread_cond_init(&e->res_cv, NULL);
    char labels[300];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", e->id);
    e->tel_backends = ot_tel_gauge("otelite_loadbalancing_backends",
                                   "Backends the resolver gave the loadbalancing exporter", labels);
    e->tel_ring_changes = ot_tel_counter("otelite_loadbalancing_ring_changes_total",
                                         "Changes of the set of backends (the hash ring)", labels);
    e->tel_rerouted = ot_tel_counter("otelite_loadbalancing_rerouted_items_total",
                                     "Items routed again: their backend was removed", labels);
    e->tel_dropped = ot_tel_counter("otelite_loadbalancing_dropped_items_total",
                                    "Items given up outside a backend (shutdown with no backend)",
                                    labels);
    return e;
}

static int lb_start(void *self, ot_err *err)
{
    lb *e = self;
    return lb_resolver_start(e, err);
}

static void lb_shutdown(void *self, int64_t deadline_ns)
{
    lb *e = self;
    lb_resolver_stop(e);
    lb_backends_shutdown(e, deadline_ns);
}

static void lb_destroy(void *self)
{
    lb *e = self;
    if (!e)
        return;
    lb_resolver_stop(e);
    lb_backends_free(e);
    lb_k8s_free(e);
    pthread_rwlock_destroy(&e->ring_lock);
    pthread_mutex_destroy(&e->set_mu);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->res_mu);
    pthread_cond_destroy(&e->res_cv);
    free(e->id);
    free(e);
}

static ot_consumer *lb_consumer_for(void *self, ot_signal s)
{
    return &((lb *)self)->cons[s].base;
}

const ot_factory ot_loadbalancing_exporter = {
    .type = "loadbalancing",
    .kind = OT_EXPORTER,
    .signals = OT_SIG_ALL,
    .help = "spreads data over otlp backends by trace id (or service, resource, metric, stream) "
            "on a consistent-hash ring; backends from a static list, DNS or Kubernetes",
    .keys = lb_keys,
    .config_size = sizeof(lb_cfg),
    .validate = lb_validate,
    .create = lb_create,
    .start = lb_start,
    .shutdown = lb_shutdown,
    .destroy = lb_destroy,
    .consumer = lb_consumer_for,
};
