/* config.c: the datadog exporter's keys (the collector's names where the
 * meaning is the same), the checks across them, and the URLs they give:
 * a site names Datadog's hosts for metrics and logs; an endpoint key
 * replaces one, so a local Datadog Agent or a compatible backend is just
 * another endpoint. */
#include <stdio.h>
#include <string.h>

#include "dd.h"

const char *const dd_sites[] = {"datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com",
                                "datadoghq.eu",  "ap1.datadoghq.com", "ddog-gov.com",
                                NULL};

static const char *const hist_modes[] = {"distributions", "counters", "nobuckets", NULL};
static const char *const sums_modes[] = {"to_delta", "raw_value", NULL};
static const char *const summary_modes[] = {"gauges", "noquantiles", NULL};
static const char *const compressions[] = {"gzip", "zstd", "none", NULL};

#define DD_TRACES_DEFAULT "http://127.0.0.1:8126"

static const ot_key api_keys[] = {
    {.name = "key", .type = OT_KT_STRING, .offset = offsetof(dd_api_cfg, key),
     .flags = OT_KF_SECRET,
     .help = "Datadog API key, sent as DD-API-KEY (write it as ${env:DD_API_KEY})"},
    {.name = "site", .type = OT_KT_STRING, .offset = offsetof(dd_api_cfg, site),
     .def = "datadoghq.com",
     .help = "Datadog site: datadoghq.com, us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu, "
             "ap1.datadoghq.com or ddog-gov.com; gives the default metrics and logs hosts"},
    {.name = "fail_on_invalid_key", .type = OT_KT_BOOL,
     .offset = offsetof(dd_api_cfg, fail_on_invalid_key), .def = "false",
     .help = "check the key at start (GET /api/v1/validate) and fail to start when it is refused"},
    {0},
};

static const ot_key hist_keys[] = {
    {.name = "mode", .type = OT_KT_ENUM, .offset = 0, .def = "distributions",
     .choices = hist_modes,
     .help = "histograms as DDSketch distributions, as per-bucket counts, or as count and sum "
             "only"},
    {0},
};

static const ot_key sums_keys[] = {
    {.name = "cumulative_monotonic_mode", .type = OT_KT_ENUM, .offset = 0, .def = "to_delta",
     .choices = sums_modes,
     .help = "cumulative monotonic sums as count deltas, or their raw value as a gauge"},
    {0},
};

static const ot_key summary_keys[] = {
    {.name = "mode", .type = OT_KT_ENUM, .offset = 0, .def = "gauges", .choices = summary_modes,
     .help = "summaries as count, sum and one gauge per quantile, or count and sum only"},
    {0},
};

static const ot_key metrics_keys[] = {
    {.name = "endpoint", .type = OT_KT_STRING, .offset = offsetof(dd_metrics_cfg, endpoint),
     .help = "base URL for /api/v2/series and /api/beta/sketches (default https://api.<site>)"},
    {.name = "histograms", .type = OT_KT_TABLE, .offset = offsetof(dd_metrics_cfg, histograms),
     .sub = hist_keys, .help = "how histograms are sent"},
    {.name = "sums", .type = OT_KT_TABLE, .offset = offsetof(dd_metrics_cfg, sums),
     .sub = sums_keys, .help = "how sums are sent"},
    {.name = "summaries", .type = OT_KT_TABLE, .offset = offsetof(dd_metrics_cfg, summaries),
     .sub = summary_keys, .help = "how summaries are sent"},
    {0},
};

static const ot_key logs_keys[] = {
    {.name = "endpoint", .type = OT_KT_STRING, .offset = offsetof(dd_endpoint_cfg, endpoint),
     .help = "base URL for /api/v2/logs (default https://http-intake.logs.<site>)"},
    {0},
};

static const ot_key traces_keys[] = {
    {.name = "endpoint", .type = OT_KT_STRING, .offset = offsetof(dd_endpoint_cfg, endpoint),
     .help = "base URL of a trace agent for /v0.4/traces (default " DD_TRACES_DEFAULT
             ", a local Datadog Agent)"},
    {0},
};

const ot_key dd_keys[] = {
    {.name = "api", .type = OT_KT_TABLE, .offset = offsetof(dd_cfg, api), .sub = api_keys,
     .help = "the Datadog API key and site"},
    {.name = "metrics", .type = OT_KT_TABLE, .offset = offsetof(dd_cfg, metrics),
     .sub = metrics_keys, .help = "metrics: endpoint and how each OTLP type is mapped"},
    {.name = "logs", .type = OT_KT_TABLE, .offset = offsetof(dd_cfg, logs), .sub = logs_keys,
     .help = "logs: endpoint"},
    {.name = "traces", .type = OT_KT_TABLE, .offset = offsetof(dd_cfg, traces),
     .sub = traces_keys, .help = "traces: trace-agent endpoint"},
    {.name = "hostname", .type = OT_KT_STRING, .offset = offsetof(dd_cfg, hostname),
     .help = "host of data whose resource names none (host, datadog.host.name, host.name, "
             "k8s.node.name); unset: this machine's name"},
    {.name = "compression", .type = OT_KT_ENUM, .offset = offsetof(dd_cfg, compression),
     .def = "gzip", .choices = compressions,
     .help = "body coding of metrics and logs requests (zstd only where the endpoint takes it); "
             "traces are sent as they are"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(dd_cfg, tls),
     .sub = ot_tls_client_keys, .help = "TLS settings for https endpoints"},
    /* Spelled out rather than OT_EXPH_KEYS: that macro's parameter named
     * `type` also rewrites the `.type` designators inside it. */
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(dd_cfg, helper.timeout),
     .def = "15s", .min = 0, .max = 3600e9, .help = "time allowed for sending one batch"},
    {.name = "sending_queue", .type = OT_KT_TABLE, .offset = offsetof(dd_cfg, helper.queue),
     .help = "queue between the pipeline and the sender threads", .sub = ot_exph_queue_keys},
    {.name = "retry_on_failure", .type = OT_KT_TABLE, .offset = offsetof(dd_cfg, helper.retry),
     .help = "retries with exponential backoff for retryable failures", .sub = ot_exph_retry_keys},
    {0},
};

static const ot_node *key_node(const ot_node *map, const char *key)
{
    const ot_node *n = ot_node_get(map, key);
    return n ? n : map;
}

static bool set(const char *s)
{
    return s && *s;
}

static void check_url(const char *url, const ot_node *node, const char *path, const char *key,
                      ot_diags *d)
{
    if (!set(url))
        return;
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        char p[512];
        snprintf(p, sizeof p, "%s.%s.endpoint", path, key);
        ot_diag_add(d, OT_SEV_ERROR, key_node(ot_node_get(node, key), "endpoint"), p,
                    "expected an http:// or https:// URL, found \"%s\"", url);
    }
}

void dd_validate(const void *vcfg, const ot_node *node, const char *path, ot_diags *d)
{
    const dd_cfg *c = vcfg;
    char p[512];
    bool known = false;
    for (size_t i = 0; dd_sites[i]; i++)
        known |= set(c->api.site) && strcmp(c->api.site, dd_sites[i]) == 0;
    /* A site outside the list is allowed when every endpoint it would give
     * is overridden: then it names nothing. */
    bool needs_site = !set(c->metrics.endpoint) || !set(c->logs.endpoint);
    if (!known && needs_site) {
        snprintf(p, sizeof p, "%s.api.site", path);
        ot_diag_add(d, OT_SEV_ERROR, key_node(ot_node_get(node, "api"), "site"), p,
                    "\"%s\" is not a Datadog site (datadoghq.com, us3.datadoghq.com, "
                    "us5.datadoghq.com, datadoghq.eu, ap1.datadoghq.com, ddog-gov.com)",
                    c->api.site ? c->api.site : "");
    }
    if (!set(c->api.key) && needs_site) {
        snprintf(p, sizeof p, "%s.api.key", path);
        ot_diag_add(d, OT_SEV_ERROR, key_node(node, "api"), p,
                    "an API key is required to send to Datadog (set api.key, e.g. "
                    "\"${env:DD_API_KEY}\", or point metrics.endpoint and logs.endpoint at a "
                    "compatible backend)");
    }
    check_url(c->metrics.endpoint, node, path, "metrics", d);
    check_url(c->logs.endpoint, node, path, "logs", d);
    check_url(c->traces.endpoint, node, path, "traces", d);
    snprintf(p, sizeof p, "%s.tls", path);
    ot_tls_client_validate(&c->tls, key_node(node, "tls"), p, d);
    ot_exph_validate(&c->helper, node, path, d);
}

static void join(char *out, size_t cap, const char *base, const char *dflt_fmt, const char *site,
                 const char *path)
{
    char b[400];
    if (set(base))
        snprintf(b, sizeof b, "%s", base);
    else
        snprintf(b, sizeof b, dflt_fmt, site);
    size_t n = strlen(b);
    while (n && b[n - 1] == '/')
        b[--n] = '\0';
    snprintf(out, cap, "%s%s", b, path);
}

void dd_urls_make(const dd_cfg *c, dd_urls *u)
{
    const char *site = set(c->api.site) ? c->api.site : "datadoghq.com";
    join(u->series, sizeof u->series, c->metrics.endpoint, "https://api.%s", site,
         "/api/v2/series");
    join(u->sketches, sizeof u->sketches, c->metrics.endpoint, "https://api.%s", site,
         "/api/beta/sketches");
    join(u->validate, sizeof u->validate, c->metrics.endpoint, "https://api.%s", site,
         "/api/v1/validate");
    join(u->logs, sizeof u->logs, c->logs.endpoint, "https://http-intake.logs.%s", site,
         "/api/v2/logs");
    join(u->traces, sizeof u->traces, c->traces.endpoint, DD_TRACES_DEFAULT "%.0s", site,
         "/v0.4/traces");
}
