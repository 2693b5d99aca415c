/* batch.c: the `batch` processor. Collects what a pipeline receives into
 * fewer, larger requests: sent when send_batch_size items are held, when
 * the oldest held item is `timeout` old, and at shutdown; cut to at most
 * send_batch_max_size items. One instance per pipeline; with metadata_keys,
 * one batcher per distinct combination of those request metadata values.
 *
 * Why bytes: two serialized export requests concatenated are one request
 * whose resource lists are joined. A batcher keeps one growing buffer of
 * protobuf bytes inside an arena; each incoming request is appended (its
 * bytes as received, or encoded once when a processor before us decoded
 * it) and released at once, so held memory is the wire size. A flush hands
 * the buffer's arena to the output batch: no copy, no re-encode. A cut
 * through a request (send_batch_max_size) rewrites only that request's
 * bytes around the cut (split.h); it decodes it only when the bytes hold
 * something the wire cut does not follow (a oneof given twice).
 *
 * Backpressure: a flush that the next consumer refuses as RETRYABLE is kept
 * (in order) and retried by the timer thread; later flushes queue behind
 * it. A batcher refuses new data as RETRYABLE once its held items (pending
 * plus refused) reach 2 × max(send_batch_size, send_batch_max_size), or the
 * processor's held bytes reach max_pending_bytes and flushing cannot free
 * them (because the next consumer is refusing). A request is checked
 * before it is added, so held data never exceeds a bound by more than one
 * request. Nothing else is held.
 *
 * Threads: consume() runs on the receivers' threads and sends size-cut
 * batches itself; one timer thread per instance sends the timed-out ones
 * and retries. A batcher's lock is held while its data goes to the next
 * consumer, so its sends stay in order.
 *
 * Files: this one is the config and the lifecycle; batcher.c picks the
 * batcher for a request and runs the timer, merge.c appends to and cuts
 * the open buffer, send.c sends and retries (batch_int.h between them). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "batch_int.h"

/* ---- configuration ----------------------------------------------------- */

static const ot_key batch_keys[] = {
    {.name = "send_batch_size", .type = OT_KT_INT, .offset = offsetof(batch_cfg, send_batch_size),
     .def = "8192", .min = 0, .max = 1e9,
     .help = "items (spans, points, records) that trigger a send; 0 sends at once"},
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(batch_cfg, timeout),
     .def = "200ms", .min = 0, .max = 3600e9,
     .help = "send what is held once its oldest item waited this long; 0 sends at once"},
    {.name = "send_batch_max_size", .type = OT_KT_INT,
     .offset = offsetof(batch_cfg, send_batch_max_size), .def = "0", .min = 0, .max = 1e9,
     .help = "most items in one sent batch, larger ones are cut (0: no limit)"},
    {.name = "metadata_keys", .type = OT_KT_STRLIST, .offset = offsetof(batch_cfg, metadata_keys),
     .help = "request metadata (e.g. headers) whose values each get their own batches"},
    {.name = "metadata_cardinality_limit", .type = OT_KT_INT,
     .offset = offsetof(batch_cfg, metadata_cardinality_limit), .def = "1000", .min = 1,
     .max = 100000, .help = "most distinct metadata value combinations; more are refused"},
    {.name = "max_pending_bytes", .type = OT_KT_SIZE,
     .offset = offsetof(batch_cfg, max_pending_bytes), .def = "16MiB", .min = 65536,
     .max = 1099511627776.0,
     .help = "bytes held (pending and refused downstream) before data is refused (an otelite key)"},
    {0},
};

static void batch_validate(const void *cfgp, const ot_node *node, const char *path, ot_diags *d)
{
    const batch_cfg *c = cfgp;
    char kp[512];
    if (c->send_batch_max_size > 0 && c->send_batch_max_size < c->send_batch_size) {
        snprintf(kp, sizeof kp, "%s.send_batch_max_size", path);
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(node, "send_batch_max_size"), kp,
                    "must be 0 (no limit) or at least send_batch_size (%lld); found %lld",
                    (long long)c->send_batch_size, (long long)c->send_batch_max_size);
    }
    const ot_strlist *k = &c->metadata_keys;
    for (size_t i = 0; i < k->n; i++) {
        const ot_node *at = k->node && k->node->kind == OT_NODE_SEQ && i < k->node->n
                                ? k->node->vals[i]
                                : k->node;
        snprintf(kp, sizeof kp, "%s.metadata_keys[%zu]", path, i);
        if (!k->v[i] || !k->v[i][0]) {
            ot_diag_add(d, OT_SEV_ERROR, at, kp, "expected a metadata key name; found \"\"");
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (k->v[j] && strcasecmp(k->v[i], k->v[j]) == 0) {
                ot_diag_add(d, OT_SEV_ERROR, at, kp,
                            "duplicate metadata key \"%s\" (keys are case-insensitive; "
                            "first given as item %zu)",
                            k->v[i], j);
                break;
            }
    }
}

static const char *const trig_names[TRIG_COUNT] = {"size", "timeout", "shutdown"};

/* ---- lifecycle --------------------------------------------------------- */

static void batch_destroy(void *self);

static void *batch_create(const ot_create_params *cp, ot_err *err)
{
    const batch_cfg *c = cp->config;
    proc *p = calloc(1, sizeof *p);
    if (!p) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    p->base.base.consume = ot_edit_consumer_consume;
    p->base.base.mutates = false;
    p->base.consume = batchp_consume;
    p->base.consume_edited = batchp_consume_edited;
    p->cfg = c;
    p->signal = cp->signal;
    p->next = cp->next[cp->signal];
    pthread_mutex_init(&p->map_mu, NULL);
    pthread_mutex_init(&p->tm, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->id = strdup(cp->id);
    if (!p->id)
        goto oom;
    if (!p->next) {
        ot_err_set(err, "no next consumer for %s", ot_signal_name(cp->signal));
        batch_destroy(p);
        return NULL;
    }
    size_t big = (size_t)(c->send_batch_size > c->send_batch_max_size ? c->send_batch_size
                                                                      : c->send_batch_max_size);
    p->item_cap = 2 * big;
    /* Retries come as often as timed sends would, within [10ms, 1s]. */
    p->retry_ns = c->timeout < 10000000 ? 10000000 : c->timeout > 1000000000 ? 1000000000
                                                                             : c->timeout;

    p->n_keys = c->metadata_keys.n;
    if (p->n_keys) {
        p->keys = calloc(p->n_keys, sizeof *p->keys);
        if (!p->keys)
            goto oom;
        for (size_t i = 0; i < p->n_keys; i++) {
            if (!(p->keys[i] = strdup(c->metadata_keys.v[i] ? c->metadata_keys.v[i] : "")))
                goto oom;
            for (char *s = p->keys[i]; *s; s++)
                if (*s >= 'A' && *s <= 'Z')
                    *s = (char)(*s - 'A' + 'a');
        }
        p->cap_all = (size_t)c->metadata_cardinality_limit;
        size_t t = 16;
        while (t < p->cap_all * 2)
            t *= 2;
        p->table = calloc(t, sizeof *p->table);
        p->table_mask = t - 1;
        if (!p->table)
            goto oom;
    } else {
        p->cap_all = 1;
    }
    p->all = calloc(p->cap_all, sizeof *p->all);
    if (!p->all)
        goto oom;
    if (!p->n_keys) {
        if (!(p->all[0] = batchp_batcher_new(p, NULL, 0)))
            goto oom;
        atomic_store(&p->n_all, 1);
    }

    char labels[300], name[128];
    snprintf(labels, sizeof labels, "processor=\"%s\"", p->id);
    for (int t = 0; t < TRIG_COUNT; t++) {
        char l2[340];
        snprintf(l2, sizeof l2, "%s,trigger=\"%s\"", labels, trig_names[t]);
        p->flushes[t] = ot_tel_counter("otelite_processor_batch_flushes_total",
                                       "Batches the batch processor sent on, by what sent them.",
                                       l2);
    }
    p->items_sent = ot_tel_counter("otelite_processor_batch_items_total",
                                   "Items (spans, points, records) the batch processor sent on.",
                                   labels);
    p->refused = ot_tel_counter("otelite_processor_batch_refused_items_total",
                                "Items the batch processor refused (full, or too many "
                                "metadata combinations).",
                                labels);
    p->dropped = ot_tel_counter("otelite_processor_batch_dropped_items_total",
                                "Items the batch processor dropped (refused for good "
                                "downstream, shutdown deadline, out of memory).",
                                labels);
    snprintf(name, sizeof name, "otelite_processor_batch_held_bytes");
    p->held_gauge = ot_tel_gauge(name,
                                 "Bytes the batch processor holds (pending, and refused "
                                 "downstream awaiting a retry).",
                                 labels);
    return p;
oom:
    ot_err_set(err, "out of memory");
    batch_destroy(p);
    return NULL;
}

static int batch_start(void *self, ot_err *err)
{
    proc *p = self;
    int rc = pthread_create(&p->timer, NULL, batchp_timer_main, p);
    if (rc != 0)
        return ot_err_set(err, "cannot start the batch timer thread: %s", strerror(rc));
    p->timer_started = true;
    return 0;
}

static void stop_timer(proc *p)
{
    if (!p->timer_started)
        return;
    pthread_mutex_lock(&p->tm);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->tm);
    pthread_join(p->timer, NULL);
    p->timer_started = false;
}

static void batch_shutdown(void *self, int64_t deadline)
{
    proc *p = self;
    stop_timer(p);
    atomic_store(&p->stopped, true);
    size_t n = atomic_load(&p->n_all);
    for (size_t i = 0; i < n; i++) {
        batcher *bt = p->all[i];
        pthread_mutex_lock(&bt->mu);
        bt->closed = true;
        int64_t now = ot_now_ns();
        batchp_flush(p, bt, TRIG_SHUTDOWN, true, now);
        while (batchp_retry_pending(bt)) {
            batchp_drain(p, bt, now);
            now = ot_now_ns();
            if (!batchp_retry_pending(bt) || now >= deadline)
                break;
            pthread_mutex_unlock(&bt->mu);
            int64_t nap = deadline - now < 50000000 ? deadline - now : 50000000;
            struct timespec ts = {0, nap};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&bt->mu);
            now = ot_now_ns();
        }
        if (batchp_retry_pending(bt)) {
            size_t lost = bt->retry_items;
            while (batchp_retry_pending(bt)) {
                ot_batch *b = bt->retry[bt->r_head].b;
                ot_counter_add(p->dropped, bt->retry[bt->r_head].items);
                batchp_retry_pop(p, bt);
                ot_batch_unref(b);
            }
            ot_warn("batch", "the next consumer still refused at the shutdown deadline; dropped",
                    "processor=%s signal=%s items=%zu", p->id, ot_signal_name(p->signal), lost);
        }
        pthread_mutex_unlock(&bt->mu);
    }
}

static void batch_destroy(void *self)
{
    proc *p = self;
    if (!p)
        return;
    stop_timer(p);
    size_t n = atomic_load(&p->n_all);
    for (size_t i = 0; i < n; i++) {
        batcher *bt = p->all[i];
        /* Only what shutdown did not get to (it was not called). */
        if (bt->items)
            ot_counter_add(p->dropped, bt->items);
        while (batchp_retry_pending(bt)) {
            ot_batch *b = bt->retry[bt->r_head].b;
            ot_counter_add(p->dropped, bt->retry[bt->r_head].items);
            batchp_retry_pop(p, bt);
            ot_batch_unref(b);
        }
        if (bt->ob_arena)
            batchp_charge(p, -(int64_t)bt->ob_charged);
        batchp_batcher_free(bt, p->n_keys);
    }
    for (size_t i = 0; p->keys && i < p->n_keys; i++)
        free(p->keys[i]);
    free(p->keys);
    free(p->all);
    free(p->table);
    free(p->id);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->tm);
    pthread_mutex_destroy(&p->map_mu);
    free(p);
}

static ot_consumer *batch_consumer(void *self, ot_signal s)
{
    (void)s;
    return &((proc *)self)->base.base;
}

const ot_factory ot_batch_processor = {
    .type = "batch",
    .kind = OT_PROCESSOR,
    .signals = OT_SIG_ALL,
    .help = "sends data on in fewer, larger batches, by size and by time",
    .keys = batch_keys,
    .config_size = sizeof(batch_cfg),
    .validate = batch_validate,
    .create = batch_create,
    .start = batch_start,
    .shutdown = batch_shutdown,
    .destroy = batch_destroy,
    .consumer = batch_consumer,
};
