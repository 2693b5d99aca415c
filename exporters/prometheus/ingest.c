/* ingest.c: OTLP points into the prometheus exporter's stream store, where
 * each stream keeps what a scrape shows: the last value of gauges and
 * cumulative data, and running totals of delta data (sums monotonic or not,
 * histograms while their bounds stay the same), so every OTLP metric has a
 * cumulative Prometheus form. Exponential histograms are kept native
 * (text.c turns them into classic buckets for the text formats). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

static void on_remove(void *ctx, ot_mstore_stream *s, ot_mstore_why why)
{
    (void)s;
    pm_core *c = ctx;
    if (why == OT_MSTORE_EXPIRED)
        atomic_fetch_add(&c->expired, 1);
}

pm_core *pm_core_new(const pm_opts *o, ot_err *err)
{
    pm_core *c = calloc(1, sizeof *c);
    if (!c) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    c->o = *o;
    ot_mstore_opts so = {
        .state_size = OT_PACC_NUMBER_STATE, /* what most streams are */
        .max_streams = o->max_series,
        .max_idle_ns = o->expiration_ns,
        .on_remove = on_remove,
        .ctx = c,
        /* A scrape endpoint holds very many streams of few key lists. */
        .shared_keys = true,
        .slab = true,
    };
    if (!(c->store = ot_mstore_new(&so, err))) {
        free(c);
        return NULL;
    }
    c->key = (ot_mstore_key)OT_MSTORE_KEY_INIT;
    pthread_mutex_init(&c->ingest, NULL);
    pthread_mutex_init(&c->help_mu, NULL);
    return c;
}

void pm_core_free(pm_core *c)
{
    if (!c)
        return;
    ot_mstore_free(c->store);
    ot_mstore_key_free(&c->key);
    for (size_t i = 0; i < c->cap_help; i++) {
        free(c->help[i].name);
        free(c->help[i].desc);
    }
    free(c->help);
    pthread_mutex_destroy(&c->ingest);
    pthread_mutex_destroy(&c->help_mu);
    free(c);
}

/* ---- descriptions ------------------------------------------------------ */

static size_t help_slot(pm_help *t, size_t cap, const char *name, size_t n)
{
    size_t i = (size_t)ot_mstore_hash(name, n, 7) & (cap - 1);
    while (t[i].name && !(strlen(t[i].name) == n && memcmp(t[i].name, name, n) == 0))
        i = (i + 1) & (cap - 1);
    return i;
}

static int help_grow(pm_core *c, size_t cap)
{
    pm_help *t = calloc(cap, sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < c->cap_help; i++)
        if (c->help[i].name)
            t[help_slot(t, cap, c->help[i].name, strlen(c->help[i].name))] = c->help[i];
    free(c->help);
    c->help = t;
    c->cap_help = cap;
    return 0;
}

/* Under help_mu. */
static void help_note(pm_core *c, const char *name, const char *desc, int64_t now)
{
    if (!desc)
        desc = "";
    if ((c->n_help + 1) * 2 > c->cap_help && help_grow(c, c->cap_help ? c->cap_help * 2 : 64) < 0)
        return;
    size_t n = strlen(name);
    pm_help *h = &c->help[help_slot(c->help, c->cap_help, name, n)];
    if (!h->name) {
        if (!(h->name = strdup(name)))
            return;
        c->n_help++;
    }
    if (!h->desc || strcmp(h->desc, desc) != 0) {
        char *d = strdup(desc);
        if (d) {
            free(h->desc);
            h->desc = d;
        }
    }
    h->last_ns = now;
}

void pm_core_help(pm_core *c, const char *name, size_t n, ot_buf *out)
{
    pthread_mutex_lock(&c->help_mu);
    if (c->cap_help) {
        pm_help *h = &c->help[help_slot(c->help, c->cap_help, name, n)];
        if (h->name && h->desc)
            ot_buf_puts(out, h->desc);
    }
    pthread_mutex_unlock(&c->help_mu);
}

size_t pm_core_expire(pm_core *c, int64_t now_ns)
{
    size_t n = ot_mstore_expire(c->store, now_ns);
    if (c->o.expiration_ns <= 0)
        return n;
    pthread_mutex_lock(&c->help_mu);
    size_t old = 0;
    for (size_t i = 0; i < c->cap_help; i++)
        old += c->help[i].name && now_ns - c->help[i].last_ns >= c->o.expiration_ns;
    if (old) { /* rebuild without them: open addressing has no cheap delete */
        pm_help *t = c->help;
        size_t cap = c->cap_help;
        c->help = NULL;
        c->cap_help = c->n_help = 0;
        for (size_t i = 0; i < cap; i++) {
            if (t[i].name && now_ns - t[i].last_ns < c->o.expiration_ns) {
                help_note(c, t[i].name, t[i].desc, t[i].last_ns);
            }
            free(t[i].name);
            free(t[i].desc);
        }
        free(t);
    }
    pthread_mutex_unlock(&c->help_mu);
    return n;
}

size_t pm_core_ingest(pm_core *c, const ot_metrics_req *req, int64_t now_ns)
{
    size_t refused = 0;
    pthread_mutex_lock(&c->ingest);
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const ot_resource_metrics *rm = req->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const ot_scope_metrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const ot_metric *m = sm->metrics[k];
                if (!m->name || !*m->name ||
                    ot_mstore_key_otlp(&c->key, rm->resource, sm->scope, m) < 0)
                    continue;
                pthread_mutex_lock(&c->help_mu);
                help_note(c, m->name, m->description, now_ns);
                pthread_mutex_unlock(&c->help_mu);
                refused += ot_pacc_metric(c->store, &c->key, m, now_ns, NULL, NULL);
            }
        }
    }
    pthread_mutex_unlock(&c->ingest);
    return refused;
}
