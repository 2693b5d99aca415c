/* plan.c: from a loaded YAML tree to a checked plan (see plan.h). This is
 * where the collector's config rules live: sections, component ids,
 * pipelines and the checks that span components. Keys inside a component
 * are the key walker's business, not this file's. */
#include "pipeline/plan.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

static const char *const top_keys[] = {"receivers", "processors", "exporters", "extensions",
                                       "connectors", "service", NULL};
static const char *const metrics_levels[] = {"none", "basic", "normal", "detailed", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

typedef struct svc_metrics {
    const char *address; /* the collector's older spelling of endpoint */
    ot_endpoint endpoint;
    int level;
    ot_auth_cfg auth;
    ot_tls_server tls;
} svc_metrics;
typedef struct svc_logs {
    int level;
    const char *encoding;
} svc_logs;
typedef struct svc_telemetry {
    svc_metrics metrics;
    svc_logs logs;
} svc_telemetry;
typedef struct svc_pipeline {
    ot_strlist receivers, processors, exporters;
} svc_pipeline;
typedef struct svc_config {
    ot_strlist extensions;
    const ot_node *pipelines;
    svc_telemetry telemetry;
    int64_t shutdown_timeout;
} svc_config;

static const ot_key metrics_keys[] = {
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(svc_metrics, endpoint),
     .def = "127.0.0.1:8888", .help = "where /metrics, /healthz and /readyz are served"},
    {.name = "address", .type = OT_KT_STRING, .offset = offsetof(svc_metrics, address),
     .help = "older name of endpoint"},
    {.name = "level", .type = OT_KT_ENUM, .offset = offsetof(svc_metrics, level), .def = "normal",
     .choices = metrics_levels, .help = "none turns the endpoint off"},
    {.name = "auth", .type = OT_KT_TABLE, .offset = offsetof(svc_metrics, auth), .sub = ot_auth_keys,
     .help = "an authenticator extension every /metrics request must pass "
             "(/healthz and /readyz stay open to probes)"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(svc_metrics, tls),
     .sub = ot_tls_server_keys, .flags = OT_KF_PRESENCE, .help = "serve HTTPS; plain HTTP unless set"},
    {0},
};
static const ot_key logs_keys[] = {
    {.name = "level", .type = OT_KT_ENUM, .offset = offsetof(svc_logs, level), .def = "info",
     .choices = log_levels, .help = "least severe level written to stderr"},
    {.name = "encoding", .type = OT_KT_STRING, .offset = offsetof(svc_logs, encoding),
     .def = "logfmt", .help = "accepted for compatibility; lines are always logfmt"},
    {0},
};
static const ot_key telemetry_keys[] = {
    {.name = "metrics", .type = OT_KT_TABLE, .offset = offsetof(svc_telemetry, metrics),
     .sub = metrics_keys, .help = "the agent's own metrics"},
    {.name = "logs", .type = OT_KT_TABLE, .offset = offsetof(svc_telemetry, logs),
     .sub = logs_keys, .help = "the agent's own log"},
    {0},
};
static const ot_key service_keys[] = {
    {.name = "extensions", .type = OT_KT_STRLIST, .offset = offsetof(svc_config, extensions),
     .help = "extensions to start"},
    {.name = "pipelines", .type = OT_KT_NODE, .offset = offsetof(svc_config, pipelines),
     .flags = OT_KF_REQUIRED, .help = "traces|metrics|logs[/name]: receivers, processors, exporters"},
    {.name = "telemetry", .type = OT_KT_TABLE, .offset = offsetof(svc_config, telemetry),
     .sub = telemetry_keys, .help = "the agent's own metrics and logs"},
    {.name = "shutdown_timeout", .type = OT_KT_DURATION,
     .offset = offsetof(svc_config, shutdown_timeout), .def = "10s", .min = 0, .max = 3.6e12,
     .help = "how long shutdown may flush queues before it gives up"},
    {0},
};
static const ot_key pipeline_keys[] = {
    {.name = "receivers", .type = OT_KT_STRLIST, .offset = offsetof(svc_pipeline, receivers),
     .flags = OT_KF_REQUIRED, .help = "where data comes from"},
    {.name = "processors", .type = OT_KT_STRLIST, .offset = offsetof(svc_pipeline, processors),
     .help = "in order"},
    {.name = "exporters", .type = OT_KT_STRLIST, .offset = offsetof(svc_pipeline, exporters),
     .flags = OT_KF_REQUIRED, .help = "where data goes"},
    {0},
};

const char *ot_kind_name(ot_kind k)
{
    static const char *const n[] = {"receiver", "processor", "exporter", "extension"};
    return k < OT_KIND_COUNT ? n[k] : "component";
}

const char *ot_kind_section(ot_kind k)
{
    static const char *const n[] = {"receivers", "processors", "exporters", "extensions"};
    return k < OT_KIND_COUNT ? n[k] : "components";
}

/* "type/name": type must be non-empty and name, when there is a slash, too. */
static int id_type_len(const char *id, size_t *type_len)
{
    const char *slash = strchr(id, '/');
    size_t tl = slash ? (size_t)(slash - id) : strlen(id);
    if (tl == 0 || (slash && slash[1] == '\0'))
        return -1;
    for (size_t i = 0; i < tl; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return -1;
    }
    *type_len = tl;
    return 0;
}

static void known_types(ot_kind kind, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; ot_factories[i]; i++) {
        if (ot_factories[i]->kind != kind)
            continue;
        int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", ot_factories[i]->type);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
    if (!n)
        snprintf(out, cap, "(none)");
}

static const char *nearest_type(ot_kind kind, const char *type)
{
    const char *best = NULL;
    size_t bd = (size_t)-1;
    for (size_t i = 0; ot_factories[i]; i++) {
        if (ot_factories[i]->kind != kind)
            continue;
        size_t d = ot_edit_distance(type, ot_factories[i]->type);
        if (d < bd) {
            bd = d;
            best = ot_factories[i]->type;
        }
    }
    return bd <= 2 ? best : NULL;
}

static void load_section(ot_plan *p, ot_kind kind, const ot_node *sec, ot_diags *d, size_t *count)
{
    ot_arena *a = ot_config_arena(p->config);
    const char *sname = ot_kind_section(kind);
    if (!sec || ot_node_is_null(sec))
        return;
    if (sec->kind != OT_NODE_MAP) {
        ot_diag_add(d, OT_SEV_ERROR, sec, sname, "expected a map of %s ids to settings",
                    ot_kind_name(kind));
        return;
    }
    for (size_t i = 0; i < sec->n; i++) {
        const char *id = sec->keys[i]->str;
        char *path = ot_arena_sprintf(a, "%s.%s", sname, id);
        size_t tl;
        if (id_type_len(id, &tl) < 0) {
            ot_diag_add(d, OT_SEV_ERROR, sec->keys[i], path,
                        "expected an id of the form type or type/name, found \"%s\"", id);
            continue;
        }
        const ot_factory *f = ot_factory_find(kind, id, tl);
        if (!f) {
            char types[512];
            known_types(kind, types, sizeof types);
            char *type = ot_arena_strndup(a, id, tl);
            const char *near = nearest_type(kind, type);
            if (near)
                ot_diag_add(d, OT_SEV_ERROR, sec->keys[i], path,
                            "unknown %s type \"%s\"; did you mean \"%s\"? known types: %s",
                            ot_kind_name(kind), type, near, types);
            else
                ot_diag_add(d, OT_SEV_ERROR, sec->keys[i], path,
                            "unknown %s type \"%s\"; known types: %s", ot_kind_name(kind), type,
                            types);
            continue;
        }
        ot_plan_comp *c = &p->comps[(*count)++];
        c->kind = kind;
        c->id = id;
        c->factory = f;
        c->node = sec->vals[i];
        c->cfg = ot_arena_calloc(a, f->config_size ? f->config_size : 1);
        if (f->keys)
            ot_keys_fill(f->keys, sec->vals[i], c->cfg, a, path, d);
        else if (!ot_node_is_null(sec->vals[i]) &&
                 !(sec->vals[i]->kind == OT_NODE_MAP && sec->vals[i]->n == 0))
            ot_diag_add(d, OT_SEV_ERROR, sec->vals[i], path, "%s \"%s\" takes no settings",
                        ot_kind_name(kind), f->type);
        if (f->validate)
            f->validate(c->cfg, sec->vals[i], path, d);
        char *yaml = ot_node_to_yaml(sec->vals[i], false);
        c->yaml = ot_arena_strdup(a, yaml ? yaml : "");
        free(yaml);
    }
}

ot_plan_comp *ot_plan_find(ot_plan *p, ot_kind kind, const char *id)
{
    for (size_t i = 0; i < p->n_comps; i++)
        if (p->comps[i].kind == kind && strcmp(p->comps[i].id, id) == 0)
            return &p->comps[i];
    return NULL;
}

static void defined_ids(ot_plan *p, ot_kind kind, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->n_comps; i++) {
        if (p->comps[i].kind != kind)
            continue;
        int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", p->comps[i].id);
        if (w < 0 || (size_t)w >= cap - n)
            break;
        n += (size_t)w;
    }
    if (!n)
        snprintf(out, cap, "(none)");
}

/* Resolves a pipeline's list of ids; reports undefined ids and components
 * that cannot handle the pipeline's signal. */
static ot_plan_comp **resolve(ot_plan *p, ot_kind kind, const ot_strlist *l, ot_signal sig,
                              const char *path, size_t *n_out, ot_diags *d)
{
    ot_arena *a = ot_config_arena(p->config);
    ot_plan_comp **v = ot_arena_calloc(a, (l->n + 1) * sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const ot_node *at = l->node && l->node->kind == OT_NODE_SEQ && i < l->node->n
                                ? l->node->vals[i]
                                : l->node;
        char *ipath = ot_arena_sprintf(a, "%s[%zu]", path, i);
        ot_plan_comp *c = ot_plan_find(p, kind, l->v[i]);
        const ot_node *sec = ot_node_get(ot_config_root(p->config), ot_kind_section(kind));
        if (!c && ot_node_get(sec, l->v[i]))
            continue; /* written but refused: that error is already reported */
        if (!c) {
            char ids[512];
            defined_ids(p, kind, ids, sizeof ids);
            ot_diag_add(d, OT_SEV_ERROR, at, ipath, "%s \"%s\" is not defined; defined %s: %s",
                        ot_kind_name(kind), l->v[i], ot_kind_section(kind), ids);
            continue;
        }
        c->used = 1;
        if (!(c->factory->signals & OT_SIGBIT(sig))) {
            ot_diag_add(d, OT_SEV_ERROR, at, ipath, "%s \"%s\" does not support %s",
                        ot_kind_name(kind), c->id, ot_signal_name(sig));
            continue;
        }
        for (size_t j = 0; j < n; j++)
            if (v[j] == c) {
                ot_diag_add(d, OT_SEV_ERROR, at, ipath, "%s \"%s\" is listed twice",
                            ot_kind_name(kind), c->id);
                c = NULL;
                break;
            }
        if (c)
            v[n++] = c;
    }
    *n_out = n;
    return v;
}

static void load_pipelines(ot_plan *p, const ot_node *pl, ot_diags *d)
{
    ot_arena *a = ot_config_arena(p->config);
    if (!pl || pl->kind != OT_NODE_MAP || pl->n == 0) {
        ot_diag_add(d, OT_SEV_ERROR, pl, "service.pipelines",
                    "expected at least one pipeline (traces, metrics or logs)");
        return;
    }
    p->pipes = ot_arena_calloc(a, pl->n * sizeof *p->pipes);
    for (size_t i = 0; i < pl->n; i++) {
        const char *name = pl->keys[i]->str;
        char *path = ot_arena_sprintf(a, "service.pipelines.%s", name);
        const char *slash = strchr(name, '/');
        size_t tl = slash ? (size_t)(slash - name) : strlen(name);
        int sig = ot_signal_parse(name, tl);
        if (sig < 0 || (slash && !slash[1])) {
            ot_diag_add(d, OT_SEV_ERROR, pl->keys[i], path,
                        "expected a pipeline id traces, metrics or logs (optionally /name), "
                        "found \"%s\"",
                        name);
            continue;
        }
        svc_pipeline spec;
        memset(&spec, 0, sizeof spec);
        if (ot_keys_fill(pipeline_keys, pl->vals[i], &spec, a, path, d))
            continue;
        ot_plan_pipe *pp = &p->pipes[p->n_pipes++];
        pp->name = name;
        pp->signal = (ot_signal)sig;
        char *sub = ot_arena_sprintf(a, "%s.receivers", path);
        pp->receivers = resolve(p, OT_RECEIVER, &spec.receivers, pp->signal, sub,
                                &pp->n_receivers, d);
        sub = ot_arena_sprintf(a, "%s.processors", path);
        pp->processors = resolve(p, OT_PROCESSOR, &spec.processors, pp->signal, sub,
                                 &pp->n_processors, d);
        sub = ot_arena_sprintf(a, "%s.exporters", path);
        pp->exporters = resolve(p, OT_EXPORTER, &spec.exporters, pp->signal, sub,
                                &pp->n_exporters, d);
        if (spec.receivers.n == 0)
            ot_diag_add(d, OT_SEV_ERROR, pl->vals[i], path, "a pipeline needs at least one receiver");
        if (spec.exporters.n == 0)
            ot_diag_add(d, OT_SEV_ERROR, pl->vals[i], path, "a pipeline needs at least one exporter");
        for (size_t r = 0; r < pp->n_receivers; r++)
            pp->receivers[r]->signals |= OT_SIGBIT(pp->signal);
    }
}

static int same_endpoint(const ot_endpoint *a, const ot_endpoint *b)
{
    if (a->port != b->port || a->port == 0)
        return 0;
    /* An empty host or 0.0.0.0 listens everywhere and so collides with any. */
    const char *ha = a->host ? a->host : "", *hb = b->host ? b->host : "";
    int wild_a = !*ha || !strcmp(ha, "0.0.0.0") || !strcmp(ha, "::");
    int wild_b = !*hb || !strcmp(hb, "0.0.0.0") || !strcmp(hb, "::");
    return wild_a || wild_b || strcmp(ha, hb) == 0;
}

typedef struct listen_rec {
    const ot_endpoint *ep;
    const char *who;
} listen_rec;

static void check_endpoints(ot_plan *p, const svc_config *sc, ot_diags *d)
{
    listen_rec recs[64];
    size_t n = 0;
    if (sc->telemetry.metrics.level != 0)
        recs[n++] = (listen_rec){&p->telemetry.metrics_endpoint, "service.telemetry.metrics"};
    for (size_t i = 0; i < p->n_comps; i++) {
        ot_plan_comp *c = &p->comps[i];
        if ((c->kind != OT_RECEIVER && c->kind != OT_EXPORTER) || !c->factory->listens || !c->used)
            continue;
        const ot_endpoint *eps[8];
        size_t k = c->factory->listens(c->cfg, eps, 8);
        for (size_t j = 0; j < k && n < 64; j++) {
            for (size_t m = 0; m < n; m++)
                if (same_endpoint(eps[j], recs[m].ep)) {
                    char *path = ot_arena_sprintf(ot_config_arena(p->config), "%s.%s",
                                                  ot_kind_section(c->kind), c->id);
                    ot_diag_add(d, OT_SEV_ERROR, c->node, path,
                                "endpoint %s is also used by %s", eps[j]->text, recs[m].who);
                }
            recs[n++] = (listen_rec){eps[j], c->id};
        }
    }
}

/* The telemetry endpoint is no component, so the checks a component's
 * validate would make of its tls and auth blocks are made here. */
static void check_telemetry_listener(ot_plan *p, const svc_config *sc, const ot_node *root,
                                     ot_diags *d)
{
    const svc_metrics *m = &sc->telemetry.metrics;
    const ot_node *at = ot_node_path(root, "service.telemetry.metrics");
    if (m->level == 0)
        return;
    ot_tls_server_validate(&m->tls, ot_node_get(at, "tls"), "service.telemetry.metrics.tls", d);
    const char *id = m->auth.authenticator;
    if (!id || !*id)
        return;
    bool listed = false;
    for (size_t i = 0; i < sc->extensions.n; i++)
        listed |= strcmp(sc->extensions.v[i], id) == 0;
    ot_plan_comp *c = ot_plan_find(p, OT_EXTENSION, id);
    const char *path = "service.telemetry.metrics.auth.authenticator";
    if (!c || !listed)
        ot_diag_add(d, OT_SEV_ERROR, at, path,
                    "extension \"%s\" is not defined or not in service.extensions", id);
    else if (!c->factory->authenticator)
        ot_diag_add(d, OT_SEV_ERROR, at, path, "extension \"%s\" does not authenticate requests",
                    id);
}

ot_plan *ot_plan_build(ot_config *config, ot_diags *d)
{
    const ot_node *root = ot_config_root(config);
    size_t errors_before = d->errors;
    ot_plan *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    atomic_init(&p->refs, 1);
    p->config = config;
    ot_arena *a = ot_config_arena(config);

    if (!root || root->kind != OT_NODE_MAP) {
        ot_diag_add(d, OT_SEV_ERROR, root, "", "expected a map with receivers, exporters and service");
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < root->n; i++) {
        const char *k = root->keys[i]->str;
        int known = 0;
        for (size_t j = 0; top_keys[j]; j++)
            known |= strcmp(k, top_keys[j]) == 0;
        if (!known)
            ot_diag_add(d, OT_SEV_ERROR, root->keys[i], k,
                        "unknown top-level key \"%s\"; known keys: receivers, processors, "
                        "exporters, extensions, connectors, service",
                        k);
    }
    const ot_node *conn = ot_node_get(root, "connectors");
    if (conn && conn->kind == OT_NODE_MAP && conn->n)
        ot_diag_add(d, OT_SEV_ERROR, conn, "connectors", "connectors are not supported by otelite");

    size_t total = 0;
    for (ot_kind k = 0; k < OT_KIND_COUNT; k++) {
        const ot_node *sec = ot_node_get(root, ot_kind_section(k));
        if (sec && sec->kind == OT_NODE_MAP)
            total += sec->n;
    }
    p->comps = ot_arena_calloc(a, (total + 1) * sizeof *p->comps);
    for (ot_kind k = 0; k < OT_KIND_COUNT; k++)
        load_section(p, k, ot_node_get(root, ot_kind_section(k)), d, &p->n_comps);

    svc_config sc;
    memset(&sc, 0, sizeof sc);
    const ot_node *svc = ot_node_get(root, "service");
    if (!svc)
        ot_diag_add(d, OT_SEV_ERROR, root, "service", "missing required key \"service\"");
    ot_keys_fill(service_keys, svc, &sc, a, "service", d);
    p->telemetry.metrics_endpoint = sc.telemetry.metrics.endpoint;
    if (sc.telemetry.metrics.address) {
        ot_err e;
        if (ot_parse_endpoint(sc.telemetry.metrics.address, &p->telemetry.metrics_endpoint, a, &e) < 0)
            ot_diag_add(d, OT_SEV_ERROR, ot_node_path(root, "service.telemetry.metrics.address"),
                        "service.telemetry.metrics.address", "%s", e.msg);
    }
    p->telemetry.metrics_level = sc.telemetry.metrics.level;
    p->telemetry.metrics_auth = sc.telemetry.metrics.auth;
    p->telemetry.metrics_tls = sc.telemetry.metrics.tls;
    p->telemetry.log_level = sc.telemetry.logs.level;
    p->telemetry.shutdown_timeout_ns = sc.shutdown_timeout;
    p->extensions = sc.extensions.v;
    p->n_extensions = sc.extensions.n;
    for (size_t i = 0; i < sc.extensions.n; i++) {
        ot_plan_comp *c = ot_plan_find(p, OT_EXTENSION, sc.extensions.v[i]);
        const ot_node *at = sc.extensions.node && sc.extensions.node->kind == OT_NODE_SEQ
                                ? sc.extensions.node->vals[i]
                                : sc.extensions.node;
        if (!c) {
            char ids[512];
            defined_ids(p, OT_EXTENSION, ids, sizeof ids);
            ot_diag_add(d, OT_SEV_ERROR, at, ot_arena_sprintf(a, "service.extensions[%zu]", i),
                        "extension \"%s\" is not defined; defined extensions: %s",
                        sc.extensions.v[i], ids);
        } else {
            c->used = 1;
        }
    }
    check_telemetry_listener(p, &sc, root, d);
    if (svc && svc->kind == OT_NODE_MAP)
        load_pipelines(p, sc.pipelines, d);

    for (size_t i = 0; i < p->n_comps; i++) {
        ot_plan_comp *c = &p->comps[i];
        if (!c->used)
            ot_diag_add(d, OT_SEV_WARNING, c->node,
                        ot_arena_sprintf(a, "%s.%s", ot_kind_section(c->kind), c->id),
                        "%s \"%s\" is defined but not used by any pipeline", ot_kind_name(c->kind),
                        c->id);
    }
    check_endpoints(p, &sc, d);

    if (d->errors > errors_before) {
        free(p);
        return NULL;
    }
    return p;
}

ot_plan *ot_plan_ref(ot_plan *p)
{
    atomic_fetch_add(&p->refs, 1);
    return p;
}

void ot_plan_unref(ot_plan *p)
{
    if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    ot_config_free(p->config);
    free(p);
}
