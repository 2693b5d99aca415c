/* exphelper.c: queue, sender threads, timeout and retry for every exporter
 * (see exphelper.h). Its config keys are in exphelper_config.c.
 *
 * In memory the queue is a bounded ring of batch pointers, bounded in
 * batches and in bytes. With a segment log the log is the queue: consume()
 * appends, senders take records in id order and ack them when done; the
 * ring then only keeps the batches just appended, so a sender usually finds
 * the decoded batch there instead of reading it back from disk.
 *
 * Locks: append_mu (storage: keeps the ring in append order) before mu
 * before the log's own lock. Idle senders wait on `work`; retry waits and
 * shutdown wait on `wake`, which is only ever broadcast, so a signal meant
 * for an idle sender never lands on a thread sleeping through a backoff. */
#include "export/exphelper.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "export/exph_park.h"
#include "telemetry/telemetry.h"

/* ---- state ------------------------------------------------------------- */

typedef struct qitem {
    ot_batch *b; /* NULL: storage record not cached in memory */
    uint64_t id; /* storage record id */
    size_t bytes;
} qitem;

typedef struct exph_consumer {
    ot_consumer base;
    ot_exph *h;
} exph_consumer;

typedef struct sig_tel {
    ot_counter *sent, *failed, *enqueue_failed;
} sig_tel;

enum outcome { SENT, REFUSED, GAVE_UP, ABORTED };

struct ot_exph {
    char *id;
    ot_exph_config cfg;
    ot_send_fn send;
    void *exporter;
    ot_segment_log *log;
    char labels[300];

    pthread_mutex_t mu;
    pthread_cond_t work; /* idle senders */
    pthread_cond_t wake; /* retry waits, shutdown; broadcast only */
    pthread_mutex_t append_mu;

    qitem *ring;
    size_t ring_cap, head, count, bytes;
    size_t qmax; /* queue_size */

    bool started, stopping, shut;
    int64_t deadline; /* when stopping */
    size_t sync_active;
    size_t aborted, aborted_items;
    pthread_t *thr;
    size_t nthr;
    uint64_t seed;

    exph_consumer cons[OT_SIGNAL_COUNT];
    sig_tel tel[OT_SIGNAL_COUNT];
    atomic_bool tel_ready[OT_SIGNAL_COUNT]; /* tel[s] filled; read without mu */
    ot_gauge *tel_qsize, *tel_qcap;
    ot_counter *tel_retries;
    _Atomic int64_t retry_warned; /* when a retryable failure was last logged */
    int64_t published; /* this helper's share of the queue_size gauge */

    ot_log_once dropped_reasons;

    bool replaced; /* a reload replaces it: shutdown parks the queue */
};


/* ---- small helpers ----------------------------------------------------- */

static void abs_time(struct timespec *ts, int64_t ns)
{
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

/* Registers a signal's cells the first time it is used. Called with mu. */
static sig_tel *tel_locked(ot_exph *h, ot_signal s)
{
    sig_tel *t = &h->tel[s];
    if (!t->sent) {
        const char *it = ot_signal_item_name(s);
        char name[128], help[160];
        snprintf(name, sizeof name, "otelite_exporter_sent_%s_total", it);
        snprintf(help, sizeof help, "Items (%s) the exporter's backend accepted", it);
        t->sent = ot_tel_counter(name, help, h->labels);
        snprintf(name, sizeof name, "otelite_exporter_send_failed_%s_total", it);
        snprintf(help, sizeof help,
                 "Items (%s) dropped: permanent error, retries exhausted or shutdown", it);
        t->failed = ot_tel_counter(name, help, h->labels);
        snprintf(name, sizeof name, "otelite_exporter_enqueue_failed_%s_total", it);
        snprintf(help, sizeof help,
                 "Items (%s) refused because the sending queue was full or stopping", it);
        t->enqueue_failed = ot_tel_counter(name, help, h->labels);
        atomic_store_explicit(&h->tel_ready[s], true, memory_order_release);
    }
    return t;
}

/* Per batch, so the common case takes no lock. */
static sig_tel *tel(ot_exph *h, ot_signal s)
{
    if (!atomic_load_explicit(&h->tel_ready[s], memory_order_acquire)) {
        pthread_mutex_lock(&h->mu);
        tel_locked(h, s);
        pthread_mutex_unlock(&h->mu);
    }
    return &h->tel[s];
}

/* Moves the queue_size gauge by the change since the last call, so helpers
 * of the same id that overlap during a reload add up. Called with mu. */
static void publish(ot_exph *h, int64_t now_queued)
{
    ot_gauge_add(h->tel_qsize, now_queued - h->published);
    h->published = now_queued;
}

static int64_t queued_locked(ot_exph *h)
{
    if (!h->log)
        return (int64_t)h->count;
    ot_segment_log_stats st;
    ot_segment_log_stats_get(h->log, &st);
    return (int64_t)st.live;
}

/* Drops are logged once per distinct reason, with one sample, so a backend
 * that rejects every batch writes one line, not one per batch. */
static void note_drop(ot_exph *h, const char *why, ot_signal s, size_t items, const char *msg)
{
    int first = ot_log_once_check(&h->dropped_reasons, why, msg);
    if (first == OT_LOG_NOW_FULL)
        ot_warn("exphelper", "more distinct reasons for dropped batches; no longer logging them",
                "exporter=%s", h->id);
    if (first != OT_LOG_FIRST)
        return;
    char m[256];
    ot_log_clean(m, sizeof m, msg);
    ot_warn("exphelper", why, "exporter=%s signal=%s items=%zu reason=\"%s\" note=\"logged once per reason\"",
            h->id, ot_signal_name(s), items, m);
}

/* ---- one batch, with retries ------------------------------------------- */

/* Sleeps until `until` unless shutdown makes that pointless: false when the
 * retry would come after the shutdown deadline. */
static bool wait_retry(ot_exph *h, int64_t until)
{
    pthread_mutex_lock(&h->mu);
    bool go;
    for (;;) {
        if (h->stopping && until > h->deadline) {
            go = false;
            break;
        }
        if (ot_now_ns() >= until) {
            go = true;
            break;
        }
        struct timespec ts;
        abs_time(&ts, until);
        pthread_cond_timedwait(&h->wake, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return go;
}

static enum outcome deliver(ot_exph *h, ot_batch *b, ot_send_result *res)
{
    ot_backoff bo = {0};
    pthread_mutex_lock(&h->mu);
    uint64_t seed = h->seed += 0x9e3779b97f4a7c15ull;
    pthread_mutex_unlock(&h->mu);
    ot_backoff_start(&bo, &h->cfg.retry.backoff, seed);
    for (;;) {
        int64_t now = ot_now_ns();
        int64_t dl = h->cfg.timeout > 0 ? now + h->cfg.timeout : INT64_MAX;
        pthread_mutex_lock(&h->mu);
        bool late = h->stopping && now >= h->deadline;
        if (h->stopping && dl > h->deadline)
            dl = h->deadline;
        pthread_mutex_unlock(&h->mu);
        if (late)
            return ABORTED;
        memset(res, 0, sizeof *res);
        h->send(h->exporter, b, dl, res);
        if (res->status == OT_OK)
            return SENT;
        if (res->status == OT_PERMANENT)
            return REFUSED;
        if (!h->cfg.retry.enabled)
            return GAVE_UP;
        int64_t delay = ot_backoff_next(&bo, res->retry_after_ns);
        if (delay == OT_BACKOFF_STOP)
            return GAVE_UP;
        ot_counter_add(h->tel_retries, 1);
        /* A peer that is down or refuses our certificate fails every
         * attempt for as long as it lasts: say why, but not each time. */
        if (ot_log_ratelimit(&h->retry_warned, 10 * 1000000000ll))
            ot_warn("exphelper", "send failed; will retry",
                    "exporter=%s delay_ms=%" PRId64 " attempt=%u error=\"%s\" note=\"logged at most every 10s\"",
                    h->id, delay / 1000000, bo.failures, res->msg);
        else
            ot_debug("exphelper", "send failed; will retry",
                     "exporter=%s delay_ms=%" PRId64 " attempt=%u error=\"%s\"", h->id,
                     delay / 1000000, bo.failures, res->msg);
        if (!wait_retry(h, ot_now_ns() + delay))
            return ABORTED;
    }
}

/* Counts what became of a batch (ABORTED is counted by the caller, which
 * knows whether the batch survives on disk). Without a queue the batch is
 * the caller's: a failure goes back to it (a receiver answers its client
 * with the error, the loadbalancing exporter retries on its own), so it
 * is logged as handed back, not as dropped. */
static void account(ot_exph *h, enum outcome o, ot_signal s, size_t items,
                    const ot_send_result *res, bool to_caller)
{
    sig_tel *t = tel(h, s);
    switch (o) {
    case SENT:
        ot_counter_add(t->sent, items);
        break;
    case REFUSED:
        ot_counter_add(t->failed, items);
        note_drop(h, to_caller ? "permanent error returned to the caller (sending_queue disabled)"
                               : "batch dropped: permanent error",
                  s, items, res->msg);
        break;
    case GAVE_UP:
        ot_counter_add(t->failed, items);
        note_drop(h, to_caller ? "send failed; the error is returned to the caller (sending_queue disabled)"
                  : h->cfg.retry.enabled ? "batch dropped: retries exhausted"
                                         : "batch dropped: send failed and retry is disabled",
                  s, items, res->msg);
        break;
    case ABORTED:
        break;
    }
}

/* ---- the sender threads ------------------------------------------------ */

static qitem ring_pop(ot_exph *h)
{
    qitem it = h->ring[h->head];
    h->head = (h->head + 1) % h->ring_cap;
    h->count--;
    h->bytes -= it.bytes;
    return it;
}

static bool ring_push(ot_exph *h, qitem it)
{
    if (h->count == h->ring_cap) {
        size_t nc = h->ring_cap * 2 > h->qmax ? h->qmax : h->ring_cap * 2;
        if (nc <= h->ring_cap)
            return false;
        qitem *nr = malloc(nc * sizeof *nr);
        if (!nr)
            return false;
        for (size_t i = 0; i < h->count; i++)
            nr[i] = h->ring[(h->head + i) % h->ring_cap];
        free(h->ring);
        h->ring = nr;
        h->ring_cap = nc;
        h->head = 0;
    }
    h->ring[(h->head + h->count) % h->ring_cap] = it;
    h->count++;
    h->bytes += it.bytes;
    return true;
}

/* Puts a batch taken from the queue back at its head, so it keeps its
 * place. May pass queue_size by the one slot it had freed. */
static bool ring_unpop(ot_exph *h, qitem it)
{
    if (h->count == h->ring_cap) {
        size_t nc = h->ring_cap + 1;
        qitem *nr = malloc(nc * sizeof *nr);
        if (!nr)
            return false;
        for (size_t i = 0; i < h->count; i++)
            nr[i + 1] = h->ring[(h->head + i) % h->ring_cap];
        free(h->ring);
        h->ring = nr;
        h->ring_cap = nc;
        h->head = 1;
    }
    h->head = (h->head + h->ring_cap - 1) % h->ring_cap;
    h->ring[h->head] = it;
    h->count++;
    h->bytes += it.bytes;
    return true;
}

/* Blocks until there is a batch to send; false when the thread should end. */
static bool take(ot_exph *h, qitem *it, ot_segment_log_rec *rec)
{
    pthread_mutex_lock(&h->mu);
    bool got = false;
    for (;;) {
        if (h->stopping && ot_now_ns() >= h->deadline)
            break;
        if (h->log) {
            if (ot_segment_log_next(h->log, rec)) {
                /* The ring holds recent appends in id order; anything older
                 * than the record was dropped from the log meanwhile. */
                while (h->count && h->ring[h->head].id < rec->id)
                    ot_batch_unref(ring_pop(h).b);
                if (h->count && h->ring[h->head].id == rec->id)
                    *it = ring_pop(h);
                else
                    *it = (qitem){NULL, rec->id, 0};
                got = true;
                break;
            }
        } else if (h->count) {
            *it = ring_pop(h);
            publish(h, (int64_t)h->count);
            got = true;
            break;
        }
        if (h->stopping)
            break;
        pthread_cond_wait(&h->work, &h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return got;
}

/* A record that was not in memory: read it back and rebuild the batch.
 * NULL with *gone set when on_full: drop_oldest took it meanwhile. */
/* *transient: the batch could not be built for want of memory; it is
 * still good on disk and worth another try. */
static ot_batch *load(ot_exph *h, const ot_segment_log_rec *rec, ot_buf *buf, bool *gone,
                      bool *transient, ot_err *err)
{
    buf->len = 0;
    *gone = *transient = false;
    if (ot_buf_reserve(buf, rec->len ? rec->len : 1) < 0) {
        buf->oom = 0;
        *transient = true;
        ot_err_set(err, "out of memory reading %zu bytes", rec->len);
        return NULL;
    }
    int rc = ot_segment_log_read(h->log, rec->id, buf->data, buf->cap, err);
    *gone = rc == 1;
    if (rc != 0)
        return NULL;
    ot_batch *b = ot_batch_from_wire(rec->signal, buf->data, rec->len, rec->items, err);
    *transient = b == NULL;
    return b;
}

static void send_stored(ot_exph *h, qitem it, const ot_segment_log_rec *rec, ot_buf *buf)
{
    ot_err e = {{0}};
    bool gone = false, transient = false;
    ot_batch *b = it.b;
    /* Out of memory is not the batch's fault: wait and try again rather
     * than acknowledge a good record away. Shutdown leaves it on disk. */
    for (int64_t wait = 100000000; !b; wait = wait < 2000000000 ? wait * 2 : wait) {
        b = load(h, rec, buf, &gone, &transient, &e);
        if (b || gone || !transient)
            break;
        if (!wait_retry(h, ot_now_ns() + wait))
            return;
    }
    if (gone)
        return;
    ot_send_result res = {0};
    enum outcome o;
    if (b) {
        o = deliver(h, b, &res);
    } else {
        o = REFUSED;
        snprintf(res.msg, sizeof res.msg, "unreadable queued batch: %s", e.msg);
    }
    account(h, o, rec->signal, rec->items, &res, false);
    if (o != ABORTED && ot_segment_log_ack(h->log, rec->id, &e) < 0)
        ot_warn("exphelper", "cannot record a sent batch; it will be sent again after a restart",
                "exporter=%s error=\"%s\"", h->id, e.msg);
    ot_batch_unref(b);
    pthread_mutex_lock(&h->mu);
    publish(h, queued_locked(h));
    pthread_mutex_unlock(&h->mu);
}

static void send_memory(ot_exph *h, qitem it)
{
    ot_send_result res = {0};
    ot_signal s = it.b->signal;
    size_t items = it.b->items;
    enum outcome o = deliver(h, it.b, &res);
    account(h, o, s, items, &res, false);
    if (o == ABORTED) {
        pthread_mutex_lock(&h->mu);
        /* a replacement will send it: back in the queue, which shutdown parks */
        bool requeued = h->replaced && ring_unpop(h, it);
        if (!requeued) {
            h->aborted++;
            h->aborted_items += items;
        }
        pthread_mutex_unlock(&h->mu);
        if (requeued)
            return;
        ot_counter_add(tel(h, s)->failed, items);
    }
    ot_batch_unref(it.b);
}

static void *sender_main(void *arg)
{
    ot_exph *h = arg;
    ot_buf buf = OT_BUF_INIT;
    qitem it;
    ot_segment_log_rec rec;
    while (take(h, &it, &rec)) {
        if (h->log) {
            send_stored(h, it, &rec, &buf);
            /* Do not keep one huge batch's worth of memory per thread. */
            if (buf.cap > (4u << 20) || buf.oom)
                ot_buf_free(&buf);
        } else
            send_memory(h, it);
    }
    ot_buf_free(&buf);
    return NULL;
}

/* ---- consume ----------------------------------------------------------- */

static ot_status refuse(ot_exph *h, ot_batch *b, ot_status st, ot_err *err, const char *why)
{
    ot_counter_add(tel(h, b->signal)->enqueue_failed, b->items);
    ot_err_set(err, "exporter %s: %s", h->id, why);
    ot_batch_unref(b);
    return st;
}

static ot_status consume_sync(ot_exph *h, ot_batch *b, ot_err *err)
{
    pthread_mutex_lock(&h->mu);
    bool stopping = h->stopping;
    if (!stopping)
        h->sync_active++;
    pthread_mutex_unlock(&h->mu);
    if (stopping)
        return refuse(h, b, OT_RETRYABLE, err, "shutting down");
    ot_send_result res = {0};
    ot_signal s = b->signal;
    size_t items = b->items;
    enum outcome o = deliver(h, b, &res);
    account(h, o, s, items, &res, true);
    if (o == ABORTED)
        ot_counter_add(tel(h, s)->failed, items);
    ot_batch_unref(b);
    pthread_mutex_lock(&h->mu);
    if (--h->sync_active == 0)
        pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->mu);
    switch (o) {
    case SENT:
        return OT_OK;
    case REFUSED:
        ot_err_set(err, "exporter %s: %s", h->id, res.msg);
        return OT_PERMANENT;
    default:
        ot_err_set(err, "exporter %s: %s", h->id, o == ABORTED ? "shutting down" : res.msg);
        return OT_RETRYABLE;
    }
}

static ot_status consume_memory(ot_exph *h, ot_batch *b, ot_err *err)
{
    size_t bytes = ot_batch_bytes(b);
    uint64_t maxb = h->cfg.queue.queue_size_bytes;
    pthread_mutex_lock(&h->mu);
    const char *why = NULL;
    if (h->stopping)
        why = "shutting down";
    /* One batch larger than the byte bound still goes through an empty
     * queue; otherwise it could never be sent. */
    else if (h->count >= h->qmax || (maxb && h->count && h->bytes + bytes > maxb) ||
             !ring_push(h, (qitem){b, 0, bytes}))
        why = "sending queue is full";
    if (!why) {
        publish(h, (int64_t)h->count);
        pthread_cond_signal(&h->work);
    }
    pthread_mutex_unlock(&h->mu);
    return why ? refuse(h, b, OT_RETRYABLE, err, why) : OT_OK;
}

static ot_status consume_stored(ot_exph *h, ot_batch *b, ot_err *err)
{
    const uint8_t *wire;
    size_t len;
    ot_err e = {{0}};
    if (ot_batch_wire(b, &wire, &len, &e) < 0)
        return refuse(h, b, OT_RETRYABLE, err, e.msg);
    pthread_mutex_lock(&h->append_mu);
    pthread_mutex_lock(&h->mu);
    bool stopping = h->stopping;
    int64_t queued = queued_locked(h);
    pthread_mutex_unlock(&h->mu);
    ot_status st = OT_OK;
    const char *why = NULL;
    uint64_t id = 0;
    if (stopping) {
        st = OT_RETRYABLE;
        why = "shutting down";
    } else if (queued >= (int64_t)h->qmax) {
        st = OT_RETRYABLE;
        why = "sending queue is full";
    } else {
        switch (ot_segment_log_append(h->log, b->signal, b->items, wire, len, &id, &e)) {
        case OT_SEGLOG_OK:
            break;
        case OT_SEGLOG_TOO_BIG:
            st = OT_PERMANENT;
            why = e.msg;
            break;
        case OT_SEGLOG_FULL:
            st = OT_RETRYABLE;
            why = e.msg;
            break;
        case OT_SEGLOG_ERROR:
            st = OT_RETRYABLE;
            why = e.msg;
            ot_warn("exphelper", "cannot write to the persistent queue", "exporter=%s error=\"%s\"",
                    h->id, e.msg);
            break;
        }
    }
    if (why) {
        pthread_mutex_unlock(&h->append_mu);
        return refuse(h, b, st, err, why);
    }
    size_t bytes = ot_batch_bytes(b);
    uint64_t maxb = h->cfg.queue.queue_size_bytes;
    pthread_mutex_lock(&h->mu);
    /* Keep the batch in memory when there is room; else senders read it. */
    if (h->bytes + bytes > maxb && maxb) {
        ot_batch_unref(b);
    } else if (!ring_push(h, (qitem){b, id, bytes})) {
        ot_batch_unref(b);
    }
    publish(h, queued_locked(h));
    pthread_cond_signal(&h->work);
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_unlock(&h->append_mu);
    return OT_OK;
}

static ot_status exph_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    ot_exph *h = ((exph_consumer *)self)->h;
    if ((unsigned)b->signal >= OT_SIGNAL_COUNT) {
        ot_batch_unref(b);
        ot_err_set(err, "exporter %s: batch of unknown signal", h->id);
        return OT_PERMANENT;
    }
    if (!h->cfg.queue.enabled)
        return consume_sync(h, b, err);
    if (h->log)
        return consume_stored(h, b, err);
    return consume_memory(h, b, err);
}

/* ---- hand-over on reload ------------------------------------------------ */

/* A new helper takes what a helper of its id parked, into its own queue
 * and within its own bounds. */
static void adopt(ot_exph *h)
{
    size_t n = 0;
    ot_batch **got = ot_exph_park_take(h->id, &n);
    if (!got)
        return;
    size_t taken = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        ot_status st;
        if (!h->cfg.queue.enabled)
            st = refuse(h, got[i], OT_RETRYABLE, NULL, "no sending queue");
        else
            st = h->log ? consume_stored(h, got[i], NULL) : consume_memory(h, got[i], NULL);
        if (st == OT_OK)
            taken++;
        else
            refused++;
    }
    free(got);
    ot_info("exphelper", "took over the queue of the exporter it replaces",
            "exporter=%s batches=%zu", h->id, taken);
    if (refused)
        ot_warn("exphelper", "batches dropped at reload: the new sending queue cannot hold them",
                "exporter=%s batches=%zu", h->id, refused);
}

/* ---- lifecycle --------------------------------------------------------- */

ot_exph *ot_exph_new(const char *id, const ot_exph_config *cfg, ot_send_fn send, void *exporter,
                     ot_segment_log *log, ot_err *err)
{
    ot_exph *h = NULL;
    if (cfg->queue.enabled && (cfg->queue.num_consumers < 1 || cfg->queue.queue_size < 1)) {
        ot_err_set(err, "exporter %s: sending_queue needs num_consumers and queue_size >= 1", id);
        goto fail;
    }
    if (log && !cfg->queue.enabled) {
        ot_err_set(err, "exporter %s: a persistent queue needs sending_queue.enabled: true", id);
        goto fail;
    }
    h = calloc(1, sizeof *h);
    if (!h || !(h->id = strdup(id))) {
        ot_err_set(err, "out of memory");
        goto fail;
    }
    h->cfg = *cfg;
    h->cfg.queue.storage = NULL; /* not ours to keep */
    h->send = send;
    h->exporter = exporter;
    h->log = log;
    h->qmax = cfg->queue.enabled ? (size_t)cfg->queue.queue_size : 0;
    h->ring_cap = h->qmax < 64 ? h->qmax : 64;
    h->seed = (uint64_t)ot_now_ns() ^ (uint64_t)(uintptr_t)h;
    if (h->ring_cap && !(h->ring = malloc(h->ring_cap * sizeof *h->ring))) {
        ot_err_set(err, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->append_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->work, &ca);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        h->cons[s].base.consume = exph_consume;
        h->cons[s].h = h;
        atomic_init(&h->tel_ready[s], false);
    }

    /* Label value escaped as the exposition format wants. */
    size_t n = (size_t)snprintf(h->labels, sizeof h->labels, "exporter=\"");
    for (const char *p = id; *p && n + 4 < sizeof h->labels; p++) {
        if (*p == '"' || *p == '\\')
            h->labels[n++] = '\\';
        h->labels[n++] = *p == '\n' ? ' ' : *p;
    }
    snprintf(h->labels + n, sizeof h->labels - n, "\"");
    h->tel_qsize = ot_tel_gauge("otelite_exporter_queue_size",
                                "Batches waiting in the exporter's sending queue", h->labels);
    h->tel_qcap = ot_tel_gauge("otelite_exporter_queue_capacity",
                               "Capacity of the exporter's sending queue, in batches", h->labels);
    h->tel_retries = ot_tel_counter("otelite_exporter_retries_total",
                                    "Send attempts retried after a retryable failure", h->labels);
    ot_gauge_add(h->tel_qcap, (int64_t)h->qmax);
    pthread_mutex_lock(&h->mu);
    publish(h, queued_locked(h));
    pthread_mutex_unlock(&h->mu);
    adopt(h);
    return h;

fail:
    if (h)
        free(h->id);
    free(h);
    if (log)
        ot_segment_log_close(log);
    return NULL;
}

ot_consumer *ot_exph_consumer(ot_exph *h, ot_signal s)
{
    if ((unsigned)s >= OT_SIGNAL_COUNT)
        return NULL;
    tel(h, s); /* series exist (at 0) from the start for the signals wired */
    return &h->cons[s].base;
}

int ot_exph_start(ot_exph *h, ot_err *err)
{
    pthread_mutex_lock(&h->mu);
    bool bad = h->started || h->stopping;
    h->started = true;
    pthread_mutex_unlock(&h->mu);
    if (bad)
        return ot_err_set(err, "exporter %s: started twice or after shutdown", h->id);
    if (!h->cfg.queue.enabled)
        return 0;
    size_t n = (size_t)h->cfg.queue.num_consumers;
    h->thr = calloc(n, sizeof *h->thr);
    if (!h->thr)
        return ot_err_set(err, "out of memory");
    for (; h->nthr < n; h->nthr++) {
        int rc = pthread_create(&h->thr[h->nthr], NULL, sender_main, h);
        if (rc != 0) {
            ot_err_set(err, "exporter %s: cannot start sender thread: %s", h->id, strerror(rc));
            ot_exph_shutdown(h, ot_now_ns());
            return -1;
        }
    }
    return 0;
}

void ot_exph_shutdown(ot_exph *h, int64_t deadline_ns)
{
    pthread_mutex_lock(&h->mu);
    if (h->shut || h->stopping) {
        pthread_mutex_unlock(&h->mu);
        return;
    }
    h->stopping = true;
    h->replaced = ot_exph_park_wanted(h->id);
    /* Replaced on a reload: the replacement sends what is left, so waiting
     * for the deadline would only hold the reload up. */
    bool park = h->replaced && !h->log;
    h->deadline = park ? ot_now_ns() : deadline_ns;
    pthread_cond_broadcast(&h->work);
    pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->mu);

    for (size_t i = 0; i < h->nthr; i++)
        pthread_join(h->thr[i], NULL);
    h->nthr = 0;

    pthread_mutex_lock(&h->mu);
    while (h->sync_active)
        pthread_cond_wait(&h->wake, &h->mu);
    size_t left = h->count, left_items = 0, n_keep = 0;
    ot_batch **keep = park && h->count ? malloc(h->count * sizeof *keep) : NULL;
    while (h->count) {
        qitem it = ring_pop(h);
        if (keep && it.b) {
            keep[n_keep++] = it.b;
            continue;
        }
        if (it.b && !h->log) {
            left_items += it.b->items;
            ot_counter_add(tel_locked(h, it.b->signal)->failed, it.b->items);
        }
        ot_batch_unref(it.b);
    }
    int64_t on_disk = queued_locked(h);
    publish(h, h->log ? on_disk : 0);
    size_t dropped = left - n_keep + h->aborted, dropped_items = left_items + h->aborted_items;
    h->shut = true;
    pthread_mutex_unlock(&h->mu);
    if (n_keep)
        ot_exph_park_put(h->id, keep, n_keep);
    else
        free(keep);

    if (h->log) {
        if (on_disk)
            ot_info("exphelper", "batches left in the persistent queue for the next start",
                    "exporter=%s batches=%" PRId64, h->id, on_disk);
    } else if (dropped) {
        ot_warn("exphelper", "batches dropped at shutdown (deadline reached)",
                "exporter=%s batches=%zu items=%zu", h->id, dropped, dropped_items);
    }
    /* The queue's directory lock goes now, not at free: a replacement
     * exporter with the same id opens the same log during a reload. */
    pthread_mutex_lock(&h->mu);
    ot_segment_log *log = h->log;
    h->log = NULL;
    pthread_mutex_unlock(&h->mu);
    if (log)
        ot_segment_log_close(log);
}

void ot_exph_free(ot_exph *h)
{
    if (!h)
        return;
    ot_exph_shutdown(h, ot_now_ns());
    /* What stays on disk is not this helper's any more. */
    ot_gauge_add(h->tel_qsize, -h->published);
    ot_gauge_add(h->tel_qcap, -(int64_t)h->qmax);
    free(h->thr);
    free(h->ring);
    pthread_cond_destroy(&h->work);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->append_mu);
    free(h->id);
    free(h);
}
