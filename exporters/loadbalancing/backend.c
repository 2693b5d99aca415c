/* backend.c: the backends of the loadbalancing exporter. Each is one `otlp`
 * exporter (made through the factory table from protocol.otlp plus its
 * endpoint, with its own queue and retries turned off) behind a queue and
 * sender threads of ours: the queue lives here, not in the otlp exporter,
 * so that what a backend still holds when the resolver drops it can be
 * routed again over the new ring instead of being dropped, and so that a
 * request split over several backends is admitted to all of their queues
 * or to none (a retry of a half-admitted request would duplicate spans).
 *
 * Locks: set_mu (one change of backends at a time) before ring_lock
 * before mu. Senders wait on their backend's cv under mu. */
#include "lb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"

static void abs_time(struct timespec *ts, int64_t ns)
{
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

/* ---- queues (with mu) ------------------------------------------------------ */

static bool q_push(lb_backend *bk, ot_batch *b)
{
    if (bk->count == bk->qcap) {
        size_t nc = bk->qcap ? bk->qcap * 2 : 16;
        ot_batch **nq = malloc(nc * sizeof *nq);
        if (!nq)
            return false;
        for (size_t i = 0; i < bk->count; i++)
            nq[i] = bk->q[(bk->head + i) % bk->qcap];
        free(bk->q);
        bk->q = nq;
        bk->qcap = nc;
        bk->head = 0;
    }
    bk->q[(bk->head + bk->count++) % bk->qcap] = b;
    bk->bytes += ot_batch_bytes(b);
    ot_gauge_add(bk->queued, (int64_t)b->items);
    return true;
}

static ot_batch *q_pop(lb *e, lb_backend *bk)
{
    ot_batch *b = bk->q[bk->head];
    bk->head = (bk->head + 1) % bk->qcap;
    bk->count--;
    size_t bytes = ot_batch_bytes(b);
    bk->bytes -= bytes;
    e->queued_batches--;
    e->queued_bytes -= bytes;
    ot_gauge_add(bk->queued, -(int64_t)b->items);
    return b;
}

/* ---- admission ------------------------------------------------------------- */

typedef struct part {
    uint32_t b;
    ot_batch *batch;
} part;

typedef struct route_ctx {
    ot_batch *whole;
    part *parts;
    size_t n, cap;
    ot_arena *arena; /* of the share being written */
    ot_err *err;
} route_ctx;

/* A share is written straight into the arena of the batch it becomes. */
static uint8_t *alloc_part(void *vctx, size_t len)
{
    route_ctx *c = vctx;
    ot_arena_free(c->arena);
    c->arena = ot_arena_new(len + 64);
    return c->arena ? ot_arena_alloc(c->arena, len ? len : 1) : NULL;
}

static int emit_part(void *vctx, uint32_t backend, const uint8_t *wire, size_t len, size_t items)
{
    route_ctx *c = vctx;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        part *np = realloc(c->parts, nc * sizeof *np);
        if (!np)
            return ot_err_set(c->err, "out of memory");
        c->parts = np;
        c->cap = nc;
    }
    ot_batch *b;
    if (wire) {
        b = ot_batch_adopt_wire(c->whole->signal, c->arena, wire, len, items);
        c->arena = NULL; /* the batch owns it, or freed it */
    } else {
        b = ot_batch_ref(c->whole);
    }
    if (!b)
        return ot_err_set(c->err, "out of memory");
    c->parts[c->n++] = (part){backend, b};
    return 0;
}

static void drop_parts(route_ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        ot_batch_unref(c->parts[i].batch);
    free(c->parts);
    c->parts = NULL;
    c->n = 0;
}

/* All parts into their queues, or (bounded, over the bounds) none. With
 * ring_lock held for reading. Takes the parts' references either way. */
static ot_status admit(lb *e, route_ctx *c, bool bounded, ot_err *err)
{
    size_t bytes = 0;
    for (size_t i = 0; i < c->n; i++)
        bytes += ot_batch_bytes(c->parts[i].batch);
    const ot_exph_queue_cfg *q = &e->cfg->queue;
    pthread_mutex_lock(&e->mu);
    const char *why = NULL;
    if (bounded && e->stopping)
        why = "shutting down";
    else if (bounded && e->queued_batches &&
             (e->queued_batches + c->n > (size_t)q->queue_size ||
              (q->queue_size_bytes && e->queued_bytes + bytes > q->queue_size_bytes)))
        why = "sending queue is full";
    size_t done = 0;
    for (; !why && done < c->n; done++) {
        lb_backend *bk = e->bk[c->parts[done].b];
        if (!q_push(bk, c->parts[done].batch))
            why = "out of memory";
    }
    if (why) {
        /* Undo what went in: the caller will hear RETRYABLE and send all again. */
        for (size_t i = done; i-- > 0;) {
            lb_backend *bk = e->bk[c->parts[i].b];
            bk->count--;
            bk->bytes -= ot_batch_bytes(c->parts[i].batch);
            ot_gauge_add(bk->queued, -(int64_t)c->parts[i].batch->items);
        }
        pthread_mutex_unlock(&e->mu);
        drop_parts(c);
        ot_err_set(err, "exporter %s: %s", e->id, why);
        return OT_RETRYABLE;
    }
    e->queued_batches += c->n;
    e->queued_bytes += bytes;
    for (size_t i = 0; i < c->n; i++)
        pthread_cond_signal(&e->bk[c->parts[i].b]->cv);
    pthread_mutex_unlock(&e->mu);
    free(c->parts);
    c->parts = NULL;
    c->n = 0;
    return OT_OK;
}

static void add_orphan(lb *e, ot_batch *b)
{
    if (e->n_orphans == e->cap_orphans) {
        size_t nc = e->cap_orphans ? e->cap_orphans * 2 : 16;
        ot_batch **no = realloc(e->orphans, nc * sizeof *no);
        if (!no) {
            ot_counter_add(e->tel_dropped, b->items);
            ot_batch_unref(b);
            return;
        }
        e->orphans = no;
        e->cap_orphans = nc;
    }
    e->orphans[e->n_orphans++] = b;
}

/* Routes b over the ring and admits it (bounded or not). With ring_lock. */
static ot_status route_locked(lb *e, ot_batch *b, bool bounded, ot_err *err)
{
    const uint8_t *w = NULL;
    size_t len = 0;
    if (ot_batch_wire(b, &w, &len, err) < 0) {
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    route_ctx c = {.whole = b, .err = err};
    int rc = lb_route(b->signal, e->key[b->signal], e->ring, w, len, alloc_part, emit_part, &c,
                      err);
    ot_arena_free(c.arena);
    ot_batch_unref(b);
    if (rc < 0) {
        drop_parts(&c);
        return OT_PERMANENT;
    }
    return admit(e, &c, bounded, err);
}

ot_status lb_consume_batch(lb *e, ot_batch *b, ot_err *err)
{
    pthread_rwlock_rdlock(&e->ring_lock);
    ot_status st;
    if (!e->nbk) {
        ot_batch_unref(b);
        ot_err_set(err, "exporter %s: no backends (yet)", e->id);
        st = OT_RETRYABLE;
    } else {
        st = route_locked(e, b, true, err);
    }
    pthread_rwlock_unlock(&e->ring_lock);
    return st;
}

void lb_reroute(lb *e, ot_batch *b)
{
    ot_err err = {{0}};
    size_t items = b->items;
    pthread_rwlock_rdlock(&e->ring_lock);
    ot_counter_add(e->tel_rerouted, items);
    if (!e->nbk) {
        pthread_mutex_lock(&e->mu);
        add_orphan(e, b);
        pthread_mutex_unlock(&e->mu);
    } else if (route_locked(e, b, false, &err) != OT_OK) {
        ot_counter_add(e->tel_dropped, items);
        ot_warn("loadbalancing", "re-routed batch dropped", "exporter=%s items=%zu error=\"%s\"",
                e->id, items, err.msg);
    }
    pthread_rwlock_unlock(&e->ring_lock);
}

/* ---- senders --------------------------------------------------------------- */

typedef struct sender_arg {
    lb_backend *bk;
} sender_arg;

/* Waits until `until`, a removal or a shutdown that makes it pointless.
 * With mu. 1: go on, 0: removed, -1: past the shutdown deadline. */
static int wait_retry(lb *e, lb_backend *bk, int64_t until)
{
    for (;;) {
        if (bk->removed)
            return 0;
        if (bk->stopping && until > e->deadline)
            return -1;
        if (ot_now_ns() >= until)
            return 1;
        struct timespec ts;
        abs_time(&ts, until);
        pthread_cond_timedwait(&bk->cv, &e->mu, &ts);
    }
}

/* One batch until it is sent, refused for good, given up or handed back. */
static void send_one(lb *e, lb_backend *bk, ot_batch *b, uint64_t seed)
{
    ot_backoff bo;
    ot_backoff_start(&bo, &e->cfg->retry.backoff, seed);
    size_t items = b->items;
    for (;;) {
        ot_err err = {{0}};
        ot_consumer *c = bk->cons[b->signal];
        ot_status st = c ? ot_consume(c, ot_batch_ref(b), &err) : OT_PERMANENT;
        if (st == OT_OK) {
            ot_counter_add(bk->sent, items);
            break;
        }
        const char *why = NULL;
        int64_t delay = 0;
        if (st == OT_PERMANENT)
            why = "batch dropped: permanent error";
        else if (!e->cfg->retry.enabled)
            why = "batch dropped: send failed and retry is disabled";
        else if ((delay = ot_backoff_next(&bo, 0)) == OT_BACKOFF_STOP)
            why = "batch dropped: retries exhausted";
        if (!why) {
            ot_counter_add(bk->retries, 1);
            pthread_mutex_lock(&e->mu);
            int w = wait_retry(e, bk, ot_now_ns() + delay);
            pthread_mutex_unlock(&e->mu);
            if (w == 1)
                continue;
            if (w == 0) {
                lb_reroute(e, b); /* takes the reference */
                return;
            }
            why = "batch dropped: shutdown deadline";
        }
        ot_counter_add(bk->failed, items);
        if (ot_log_ratelimit(&bk->last_warn, 10000000000))
            ot_warn("loadbalancing", why, "exporter=%s backend=%s items=%zu error=\"%s\"", e->id,
                    bk->endpoint, items, err.msg);
        break;
    }
    ot_batch_unref(b);
}

static void *sender_main(void *arg)
{
    lb_backend *bk = arg;
    lb *e = bk->owner;
    uint64_t seed = (uint64_t)(uintptr_t)&seed ^ (uint64_t)ot_now_ns();
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!bk->removed && !bk->stopping && bk->count == 0)
            pthread_cond_wait(&bk->cv, &e->mu);
        if (bk->removed || bk->count == 0 || (bk->stopping && ot_now_ns() >= e->deadline))
            break;
        ot_batch *b = q_pop(e, bk);
        pthread_mutex_unlock(&e->mu);
        seed += 0x9e3779b97f4a7c15ull;
        send_one(e, bk, b, seed);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- making and removing backends ----------------------------------------- */

static lb_backend *backend_new(lb *e, const char *endpoint)
{
    lb_backend *bk = calloc(1, sizeof *bk);
    if (!bk)
        return NULL;
    bk->owner = e;
    bk->endpoint = strdup(endpoint);
    pthread_cond_init(&bk->cv, NULL);
    ot_err err = {{0}};
    ot_arena *a = ot_arena_new(0);
    char *sets[3];
    ot_diags d;
    ot_diags_init(&d);
    sets[0] = a ? ot_arena_sprintf(a, "endpoint=%s", endpoint) : NULL;
    sets[1] = "sending_queue.enabled=false";
    sets[2] = "retry_on_failure.enabled=false";
    const ot_node *node =
        sets[0] ? ot_node_overlay(a, e->cfg->protocol.otlp, (const char *const *)sets, 3, &d) : NULL;
    char id[512];
    snprintf(id, sizeof id, "%s/%s", e->id, endpoint);
    if (!bk->endpoint || !node) {
        ot_err_set(&err, "%s", d.n ? d.v[0].msg : "out of memory");
    } else if ((bk->exp = ot_subcomp_create(OT_EXPORTER, "otlp", id, node, e->host, &err)) &&
               ot_subcomp_start(bk->exp, &err) == 0) {
        for (int s = 0; s < OT_SIGNAL_COUNT; s++)
            bk->cons[s] = ot_subcomp_consumer(bk->exp, (ot_signal)s);
        char labels[600];
        snprintf(labels, sizeof labels, "exporter=\"%s\",backend=\"%s\"", e->id, endpoint);
        bk->sent = ot_tel_counter("otelite_loadbalancing_backend_sent_items_total",
                                  "Items (spans, points, records) a backend accepted", labels);
        bk->failed = ot_tel_counter("otelite_loadbalancing_backend_failed_items_total",
                                    "Items dropped at a backend: permanent error, retries "
                                    "exhausted or shutdown",
                                    labels);
        bk->retries = ot_tel_counter("otelite_loadbalancing_backend_retries_total",
                                     "Failed attempts that were tried again", labels);
        bk->queued = ot_tel_gauge("otelite_loadbalancing_backend_queued_items",
                                  "Items in a backend's queue", labels);
        size_t n = (size_t)e->cfg->queue.num_consumers;
        bk->thr = calloc(n, sizeof *bk->thr);
        for (size_t i = 0; bk->thr && i < n; i++) {
            if (pthread_create(&bk->thr[i], NULL, sender_main, bk) != 0)
                break;
            bk->nthr++;
        }
        if (bk->nthr) {
            ot_diags_free(&d);
            ot_arena_free(a);
            return bk;
        }
        ot_err_set(&err, "cannot start a sender thread");
    }
    ot_error("loadbalancing", "cannot make a backend", "exporter=%s backend=%s error=\"%s\"", e->id,
             endpoint, err.msg);
    ot_diags_free(&d);
    ot_arena_free(a);
    ot_subcomp_free(bk->exp);
    free(bk->thr);
    pthread_cond_destroy(&bk->cv);
    free(bk->endpoint);
    free(bk);
    return NULL;
}

/* Joins the senders (told to stop already), then the otlp exporter. */
static void backend_free(lb_backend *bk, int64_t deadline_ns)
{
    for (size_t i = 0; i < bk->nthr; i++)
        pthread_join(bk->thr[i], NULL);
    ot_subcomp_shutdown(bk->exp, deadline_ns);
    ot_subcomp_free(bk->exp);
    for (size_t i = 0; i < bk->count; i++)
        ot_batch_unref(bk->q[(bk->head + i) % bk->qcap]);
    free(bk->q);
    free(bk->thr);
    pthread_cond_destroy(&bk->cv);
    free(bk->endpoint);
    free(bk);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void lb_set_backends(lb *e, const char *const *endpoints, size_t n)
{
    pthread_mutex_lock(&e->set_mu);
    const char **eps = malloc((n ? n : 1) * sizeof *eps);
    lb_backend **nb = calloc(n ? n : 1, sizeof *nb);
    lb_backend **gone = calloc(e->nbk ? e->nbk : 1, sizeof *gone);
    if (!eps || !nb || !gone) {
        ot_error("loadbalancing", "out of memory; backends not changed", "exporter=%s", e->id);
        goto out;
    }
    memcpy(eps, endpoints, n * sizeof *eps);
    qsort(eps, n, sizeof *eps, cmp_str);
    size_t m = 0, added = 0, n_gone = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(eps[i], eps[i - 1]))
            continue;
        lb_backend *keep = NULL;
        for (size_t j = 0; j < e->nbk && !keep; j++)
            if (!strcmp(e->bk[j]->endpoint, eps[i]))
                keep = e->bk[j];
        if (!keep) {
            keep = backend_new(e, eps[i]);
            added += keep != NULL;
        }
        if (keep) {
            eps[m] = keep->endpoint;
            nb[m++] = keep;
        }
    }
    for (size_t j = 0; j < e->nbk; j++) {
        bool kept = false;
        for (size_t i = 0; i < m && !kept; i++)
            kept = nb[i] == e->bk[j];
        if (!kept)
            gone[n_gone++] = e->bk[j];
    }
    if (!added && !n_gone) {
        free(nb);
        nb = NULL;
        goto out;
    }
    lb_ring *ring = lb_ring_new(eps, m);
    if (!ring) {
        for (size_t i = 0; i < m; i++)
            if (nb[i]->nthr && !nb[i]->removed) {
                bool old = false;
                for (size_t j = 0; j < e->nbk && !old; j++)
                    old = e->bk[j] == nb[i];
                if (!old) {
                    pthread_mutex_lock(&e->mu);
                    nb[i]->removed = true;
                    pthread_cond_broadcast(&nb[i]->cv);
                    pthread_mutex_unlock(&e->mu);
                    backend_free(nb[i], ot_now_ns());
                }
            }
        ot_error("loadbalancing", "out of memory; backends not changed", "exporter=%s", e->id);
        goto out;
    }
    /* Swap, and take back what the removed backends hold. */
    ot_batch **back = NULL;
    size_t n_back = 0, cap_back = 0;
    pthread_rwlock_wrlock(&e->ring_lock);
    pthread_mutex_lock(&e->mu);
    lb_ring *old_ring = e->ring;
    lb_backend **old_bk = e->bk;
    e->ring = ring;
    e->bk = nb;
    e->nbk = m;
    nb = NULL;
    for (size_t g = 0; g < n_gone; g++) {
        lb_backend *bk = gone[g];
        bk->removed = true;
        cap_back += bk->count;
    }
    cap_back += m ? e->n_orphans : 0;
    back = cap_back ? malloc(cap_back * sizeof *back) : NULL;
    for (size_t g = 0; g < n_gone; g++) {
        lb_backend *bk = gone[g];
        while (bk->count) {
            ot_batch *b = q_pop(e, bk);
            if (back)
                back[n_back++] = b;
            else
                ot_counter_add(e->tel_dropped, b->items), ot_batch_unref(b);
        }
        pthread_cond_broadcast(&bk->cv);
    }
    if (m) {
        for (size_t i = 0; i < e->n_orphans; i++) {
            if (back)
                back[n_back++] = e->orphans[i];
            else
                ot_batch_unref(e->orphans[i]);
        }
        e->n_orphans = 0;
    }
    pthread_mutex_unlock(&e->mu);
    pthread_rwlock_unlock(&e->ring_lock);
    lb_ring_free(old_ring);
    free(old_bk);

    ot_counter_add(e->tel_ring_changes, 1);
    ot_gauge_set(e->tel_backends, (int64_t)m);
    ot_info("loadbalancing", "backends changed",
            "exporter=%s backends=%zu added=%zu removed=%zu rerouted_batches=%zu", e->id, m, added,
            n_gone, n_back);
    for (size_t i = 0; i < n_back; i++)
        lb_reroute(e, back[i]);
    free(back);
    for (size_t g = 0; g < n_gone; g++)
        backend_free(gone[g], ot_now_ns() + 1000000000);
out:
    free(eps);
    free(nb);
    free(gone);
    pthread_mutex_unlock(&e->set_mu);
}

void lb_backends_shutdown(lb *e, int64_t deadline_ns)
{
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    e->deadline = deadline_ns;
    for (size_t i = 0; i < e->nbk; i++) {
        e->bk[i]->stopping = true;
        pthread_cond_broadcast(&e->bk[i]->cv);
    }
    pthread_mutex_unlock(&e->mu);
    size_t left = 0;
    for (size_t i = 0; i < e->nbk; i++) {
        lb_backend *bk = e->bk[i];
        for (size_t t = 0; t < bk->nthr; t++)
            pthread_join(bk->thr[t], NULL);
        bk->nthr = 0;
        for (size_t k = 0; k < bk->count; k++)
            left += bk->q[(bk->head + k) % bk->qcap]->items;
        ot_subcomp_shutdown(bk->exp, deadline_ns);
    }
    for (size_t i = 0; i < e->n_orphans; i++)
        left += e->orphans[i]->items;
    if (left) {
        ot_counter_add(e->tel_dropped, left);
        ot_warn("loadbalancing", "shutdown deadline passed; queued items dropped",
                "exporter=%s items=%zu", e->id, left);
    }
}

void lb_backends_free(lb *e)
{
    for (size_t i = 0; i < e->nbk; i++) {
        pthread_mutex_lock(&e->mu);
        e->bk[i]->stopping = true;
        e->deadline = 0;
        pthread_cond_broadcast(&e->bk[i]->cv);
        pthread_mutex_unlock(&e->mu);
        backend_free(e->bk[i], ot_now_ns());
    }
    free(e->bk);
    e->bk = NULL;
    e->nbk = 0;
    for (size_t i = 0; i < e->n_orphans; i++)
        ot_batch_unref(e->orphans[i]);
    free(e->orphans);
    e->orphans = NULL;
    e->n_orphans = 0;
    lb_ring_free(e->ring);
    e->ring = NULL;
}
