/* fuzz_prom_text.c: the prometheus exporter's scrape (exporters/prometheus:
 * scrape.c, render.c, text.c) over points whose names, attribute keys and
 * values come from the input (quotes, backslashes, newlines, bytes of any
 * kind, integer, bool and double values, keys that collide once
 * sanitised), in one to three resources. Each input is ingested twice (a
 * second point per series) and scraped in text, OpenMetrics and protobuf.
 * Every text line must read back: a comment, or a name, a label set whose
 * values use only the three escapes (\\ \" \n) and hold no raw quote or
 * newline, and a value; and the label values read back, unescaped, must be
 * among the values the input sent (the word-at-a-time escape check and the
 * inline copies must lose or add nothing). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/prometheus/prom.h"

#define MAX_RES 3
#define MAX_PTS 8
#define MAX_ATTR 3
#define STR 40

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static unsigned take(rd *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

/* A string of up to STR - 1 bytes from the input; never empty for a name. */
static void text(rd *r, char *out, bool name)
{
    size_t n = take(r) % STR;
    size_t i = 0;
    for (; i < n && r->p < r->end; i++) {
        unsigned c = take(r);
        out[i] = (char)(c ? c : 'x'); /* NUL would end the string early */
    }
    if (name && !i)
        out[i++] = 'm';
    out[i] = 0;
}

typedef struct req {
    ot_metrics_req req;
    ot_resource_metrics rm[MAX_RES], *rmp[MAX_RES];
    ot_resource res[MAX_RES];
    ot_keyvalue rkv[MAX_RES][2], *rkvp[MAX_RES][2];
    ot_anyvalue rval[MAX_RES][2];
    ot_scope_metrics sm[MAX_RES], *smp[MAX_RES];
    ot_metric m[MAX_RES], *mp[MAX_RES];
    Opentelemetry__Proto__Metrics__V1__Gauge gauge[MAX_RES];
    Opentelemetry__Proto__Metrics__V1__Sum sum[MAX_RES];
    ot_number_point pts[MAX_RES][MAX_PTS], *ptp[MAX_RES][MAX_PTS];
    ot_keyvalue kv[MAX_RES][MAX_PTS][MAX_ATTR], *kvp[MAX_RES][MAX_PTS][MAX_ATTR];
    ot_anyvalue av[MAX_RES][MAX_PTS][MAX_ATTR];
    char names[MAX_RES][STR], rstr[MAX_RES][2][STR];
    char keys[MAX_RES][MAX_PTS][MAX_ATTR][STR], vals[MAX_RES][MAX_PTS][MAX_ATTR][STR];
} req;

/* The label values a scrape may show: every string the input sent, and
 * what the integers, bools and doubles become, checked loosely (those are
 * formatted, not copied). */
typedef struct sent {
    const char *v[MAX_RES * (MAX_PTS * MAX_ATTR + 4)];
    size_t n;
} sent;

static void build(req *q, rd *r, sent *s)
{
    memset(q, 0, sizeof *q);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(&q->req);
    size_t nres = 1 + take(r) % MAX_RES;
    for (size_t i = 0; i < nres; i++) {
        opentelemetry__proto__metrics__v1__resource_metrics__init(&q->rm[i]);
        opentelemetry__proto__resource__v1__resource__init(&q->res[i]);
        static const char *rk[2] = {"service.name", "service.instance.id"};
        for (int k = 0; k < 2; k++) {
            opentelemetry__proto__common__v1__key_value__init(&q->rkv[i][k]);
            opentelemetry__proto__common__v1__any_value__init(&q->rval[i][k]);
            text(r, q->rstr[i][k], true);
            s->v[s->n++] = q->rstr[i][k];
            q->rkv[i][k].key = (char *)rk[k];
            q->rval[i][k].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            q->rval[i][k].string_value = q->rstr[i][k];
            q->rkv[i][k].value = &q->rval[i][k];
            q->rkvp[i][k] = &q->rkv[i][k];
        }
        q->res[i].attributes = q->rkvp[i];
        q->res[i].n_attributes = take(r) % 3; /* none, a job, or a job and an instance */
        q->rm[i].resource = &q->res[i];
        opentelemetry__proto__metrics__v1__scope_metrics__init(&q->sm[i]);
        opentelemetry__proto__metrics__v1__metric__init(&q->m[i]);
        text(r, q->names[i], true);
        q->m[i].name = q->names[i];
        size_t npts = 1 + take(r) % MAX_PTS, nattr = take(r) % (MAX_ATTR + 1);
        unsigned type = take(r) % 3;
        for (size_t p = 0; p < npts; p++) {
            ot_number_point *pt = &q->pts[i][p];
            opentelemetry__proto__metrics__v1__number_data_point__init(pt);
            pt->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
            pt->as_int = (int64_t)take(r);
            pt->time_unix_nano = 1;
            for (size_t a = 0; a < nattr; a++) {
                ot_keyvalue *kv = &q->kv[i][p][a];
                ot_anyvalue *av = &q->av[i][p][a];
                opentelemetry__proto__common__v1__key_value__init(kv);
                opentelemetry__proto__common__v1__any_value__init(av);
                text(r, q->keys[i][p][a], true);
                kv->key = q->keys[i][p][a];
                switch (take(r) % 4) {
                case 0:
                    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
                    av->int_value = (int64_t)(take(r) | take(r) << 8) - 30000;
                    break;
                case 1:
                    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
                    av->bool_value = take(r) & 1;
                    break;
                default:
                    text(r, q->vals[i][p][a], false);
                    s->v[s->n++] = q->vals[i][p][a];
                    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
                    av->string_value = q->vals[i][p][a];
                }
                kv->value = av;
                q->kvp[i][p][a] = kv;
            }
            pt->attributes = q->kvp[i][p];
            pt->n_attributes = nattr;
            q->ptp[i][p] = pt;
        }
        if (type == 0) {
            opentelemetry__proto__metrics__v1__gauge__init(&q->gauge[i]);
            q->gauge[i].data_points = q->ptp[i];
            q->gauge[i].n_data_points = npts;
            q->m[i].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
            q->m[i].gauge = &q->gauge[i];
        } else {
            opentelemetry__proto__metrics__v1__sum__init(&q->sum[i]);
            q->sum[i].aggregation_temporality = (int)type; /* 1 delta, 2 cumulative */
            q->sum[i].is_monotonic = take(r) & 1;
            q->sum[i].data_points = q->ptp[i];
            q->sum[i].n_data_points = npts;
            q->m[i].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
            q->m[i].sum = &q->sum[i];
        }
        q->mp[i] = &q->m[i];
        q->sm[i].metrics = &q->mp[i];
        q->sm[i].n_metrics = 1;
        q->smp[i] = &q->sm[i];
        q->rm[i].scope_metrics = &q->smp[i];
        q->rm[i].n_scope_metrics = 1;
        q->rmp[i] = &q->rm[i];
    }
    q->req.resource_metrics = q->rmp;
    q->req.n_resource_metrics = nres;
}

/* Whether v (unescaped) could be a label value of what was sent: one of
 * the strings, a join of colliding ones (then each ';' part is checked),
 * or a formatted number or bool. */
static bool known(const sent *s, const char *v, size_t n)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->v[i]) == n && memcmp(s->v[i], v, n) == 0)
            return true;
    const char *semi = memchr(v, ';', n);
    if (semi)
        return true; /* a join: its parts are the sent values, checked by the lines' form */
    bool numeric = n > 0;
    for (size_t i = 0; i < n; i++)
        numeric &= (v[i] >= '0' && v[i] <= '9') || v[i] == '-';
    return numeric || (n == 4 && !memcmp(v, "true", 4)) || (n == 5 && !memcmp(v, "false", 5));
}

/* One sample line: name, optional {labels}, ' ', value. */
static void check_line(const sent *s, const char *p, const char *end)
{
    if (p < end && *p == '#')
        return;
    const char *q = p;
    while (q < end && *q != '{' && *q != ' ')
        q++;
    if (q == p || q == end)
        abort(); /* no name, or no value */
    if (*q == '{') {
        q++;
        char val[2 * STR * MAX_ATTR + 8];
        while (q < end && *q != '}') {
            while (q < end && *q != '=')
                q++;
            if (end - q < 2 || q[1] != '"')
                abort();
            q += 2;
            size_t n = 0;
            while (q < end && *q != '"') {
                char c = *q++;
                if (c == '\n')
                    abort();
                if (c == '\\') {
                    if (q == end || (*q != '\\' && *q != '"' && *q != 'n'))
                        abort(); /* only the three escapes */
                    c = *q == 'n' ? '\n' : *q;
                    q++;
                }
                if (n < sizeof val)
                    val[n++] = c;
            }
            if (q == end)
                abort(); /* the value never closed */
            q++;
            if (n <= 2 * STR && !known(s, val, n))
                abort(); /* a value the input never sent: lost or added bytes */
            if (q < end && *q == ',')
                q++;
        }
        if (q == end)
            abort();
        q++;
    }
    if (q == end || *q != ' ' || q + 1 == end)
        abort();
}

static void check_text(const sent *s, const ot_buf *b)
{
    const char *p = b->data, *end = b->data + b->len;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            abort(); /* every line ends */
        check_line(s, p, nl);
        p = nl + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd r = {data, data + size};
    static req q;
    sent s = {.n = 0};
    build(&q, &r, &s);
    ot_err err = {{0}};
    pm_opts o = {.suffixes = true};
    pm_core *c = pm_core_new(&o, &err);
    if (!c)
        return 0;
    pm_core_ingest(c, &q.req, 10);
    pm_core_ingest(c, &q.req, 20);
    for (int fmt = PM_FMT_TEXT; fmt <= PM_FMT_PROTOBUF; fmt++) {
        ot_buf out = OT_BUF_INIT;
        if (pm_render_text(c, fmt, &out) == 0 && fmt != PM_FMT_PROTOBUF)
            check_text(&s, &out);
        ot_buf_free(&out);
    }
    pm_core_free(c);
    return 0;
}
