/* batcher.c: the batch processor's way in. consume() finds the batcher for
 * a request's metadata values (one per distinct combination of
 * metadata_keys, made on first sight, up to metadata_cardinality_limit),
 * refuses when it is full, appends and sends what is due; the timer thread
 * sends what timed out and retries what was refused. Apart from the buffer
 * and the sending because this is where threads and locks are. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch_int.h"

/* ---- metadata batchers ------------------------------------------------- */

static uint64_t hash_vals(const char *const *vals, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        if (!vals[i]) {
            h = (h ^ 0x01) * 1099511628211ULL;
            continue;
        }
        h = (h ^ 0x02) * 1099511628211ULL;
        for (const char *s = vals[i]; *s; s++)
            h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

static bool same_vals(char *const *a, const char *const *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!a[i] || !b[i]) {
            if (a[i] != b[i])
                return false;
        } else if (strcmp(a[i], b[i]) != 0) {
            return false;
        }
    }
    return true;
}

void batchp_batcher_free(batcher *bt, size_t n_keys)
{
    if (!bt)
        return;
    for (size_t i = 0; bt->vals && i < n_keys; i++)
        free(bt->vals[i]);
    free(bt->vals);
    free(bt->recs);
    free(bt->retry);
    ot_arena_free(bt->ob_arena);
    ot_arena_free(bt->dec);
    ot_arena_free(bt->views);
    pthread_mutex_destroy(&bt->mu);
    free(bt);
}

batcher *batchp_batcher_new(proc *p, const char *const *vals, uint64_t h)
{
    batcher *bt = calloc(1, sizeof *bt);
    if (!bt)
        return NULL;
    pthread_mutex_init(&bt->mu, NULL);
    bt->dec_rec = SIZE_MAX;
    bt->hash = h;
    if (p->n_keys) {
        bt->vals = calloc(p->n_keys, sizeof *bt->vals);
        if (!bt->vals) {
            batchp_batcher_free(bt, 0);
            return NULL;
        }
        for (size_t i = 0; i < p->n_keys; i++)
            if (vals[i] && !(bt->vals[i] = strdup(vals[i]))) {
                batchp_batcher_free(bt, p->n_keys);
                return NULL;
            }
    }
    return bt;
}

/* The batcher for b's metadata values, made on first sight. NULL with err
 * set when the combination is one too many. */
static batcher *find_batcher(proc *p, const ot_batch *b, ot_err *err)
{
    if (!p->n_keys)
        return p->all[0];
    const char *vals[p->n_keys];
    for (size_t i = 0; i < p->n_keys; i++)
        vals[i] = ot_batch_get_meta(b, p->keys[i]);
    uint64_t h = hash_vals(vals, p->n_keys);
    pthread_mutex_lock(&p->map_mu);
    size_t i = (size_t)h & p->table_mask;
    for (batcher *bt; (bt = p->table[i]); i = (i + 1) & p->table_mask)
        if (bt->hash == h && same_vals(bt->vals, vals, p->n_keys)) {
            pthread_mutex_unlock(&p->map_mu);
            return bt;
        }
    size_t n = atomic_load(&p->n_all);
    batcher *bt = NULL;
    if (n >= p->cap_all) {
        ot_err_set(err,
                   "batch processor %s: more than metadata_cardinality_limit (%zu) distinct "
                   "values of metadata_keys; refusing data for a new combination",
                   p->id, p->cap_all);
    } else if (!(bt = batchp_batcher_new(p, vals, h))) {
        ot_err_set(err, "out of memory");
    } else {
        p->table[i] = bt;
        p->all[n] = bt;
        /* Sequentially consistent, as shutdown's read: either shutdown sees
         * this batcher, or this consume sees `stopped` once it holds it. */
        atomic_store(&p->n_all, n + 1);
    }
    pthread_mutex_unlock(&p->map_mu);
    return bt;
}

/* ---- the timer --------------------------------------------------------- */

static void kick_timer(proc *p)
{
    pthread_mutex_lock(&p->tm);
    p->kick = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->tm);
}

/* Sends bt's due data and retries; returns when bt is next due. */
static int64_t tick(proc *p, batcher *bt, int64_t now)
{
    int64_t next = INT64_MAX;
    pthread_mutex_lock(&bt->mu);
    if (!bt->closed) {
        if (batchp_retry_pending(bt) && now >= bt->retry_at)
            batchp_drain(p, bt, now);
        if (bt->items && now - bt->first_at >= p->cfg->timeout)
            batchp_flush(p, bt, TRIG_TIMEOUT, true, now);
        if (bt->items)
            next = bt->first_at + p->cfg->timeout;
        if (batchp_retry_pending(bt) && bt->retry_at < next)
            next = bt->retry_at;
    }
    pthread_mutex_unlock(&bt->mu);
    return next;
}

void *batchp_timer_main(void *arg)
{
    proc *p = arg;
    for (;;) {
        int64_t now = ot_now_ns(), next = INT64_MAX;
        size_t n = atomic_load(&p->n_all);
        for (size_t i = 0; i < n; i++) {
            int64_t t = tick(p, p->all[i], now);
            if (t < next)
                next = t;
        }
        pthread_mutex_lock(&p->tm);
        while (!p->stop && !p->kick) {
            if (next == INT64_MAX) {
                pthread_cond_wait(&p->cv, &p->tm);
                continue;
            }
            struct timespec ts = {next / 1000000000, next % 1000000000};
            if (pthread_cond_timedwait(&p->cv, &p->tm, &ts) == ETIMEDOUT)
                break;
        }
        bool stop = p->stop;
        p->kick = false;
        pthread_mutex_unlock(&p->tm);
        if (stop)
            return NULL;
    }
}

/* ---- consume ----------------------------------------------------------- */

static bool over_bound(const proc *p, const batcher *bt)
{
    if (atomic_load_explicit(&p->held_bytes, memory_order_relaxed) >= p->cfg->max_pending_bytes)
        return true;
    return p->item_cap && bt->items + bt->retry_items >= p->item_cap;
}

/* Edits of b's bytes not yet applied (consume_edited) become b's bytes: for
 * every way b goes on other than into the open buffer. */
static int take_edits(ot_batch *b, const ot_pbedit **ed, size_t items, ot_err *err)
{
    const uint8_t *w;
    size_t n;
    if (!*ed)
        return 0;
    if (ot_pbedit_apply(*ed, &w, &n) < 0)
        return ot_err_set(err, "out of memory editing a %zu-byte request", b->wire_len);
    ot_batch_set_wire(b, w, n, items);
    *ed = NULL;
    return 0;
}

/* consume, and consume_edited with ed: the edits are written once, straight
 * into the open buffer, when that is where b goes. */
static ot_status consume(proc *p, ot_batch *b, const ot_pbedit *ed, size_t items, ot_err *err)
{
    if (atomic_load(&p->stopped)) {
        if (take_edits(b, &ed, items, err) < 0) {
            ot_batch_unref(b);
            return OT_PERMANENT;
        }
        return ot_consume(p->next, b, err);
    }
    if (items == 0) {
        /* Nothing to batch: resources without items are not sent on. */
        ot_batch_unref(b);
        return OT_OK;
    }
    batcher *bt = find_batcher(p, b, err);
    if (!bt) {
        ot_counter_add(p->refused, items);
        ot_batch_unref(b);
        return OT_PERMANENT;
    }
    const batch_cfg *c = p->cfg;
    bool direct = c->timeout == 0 || items >= (size_t)c->send_batch_size;
    const uint8_t *w = NULL;
    size_t wl = 0;
    /* Encoding, when a processor before us decoded, happens outside the lock. */
    if (!direct && !ed && ot_batch_wire(b, &w, &wl, err) < 0) {
        ot_counter_add(p->refused, items);
        ot_batch_unref(b);
        return OT_PERMANENT;
    }

    int64_t now = ot_now_ns();
    pthread_mutex_lock(&bt->mu);
    if (bt->closed || atomic_load(&p->stopped)) {
        pthread_mutex_unlock(&bt->mu);
        if (take_edits(b, &ed, items, err) < 0) {
            ot_batch_unref(b);
            return OT_PERMANENT;
        }
        return ot_consume(p->next, b, err);
    }
    if (over_bound(p, bt)) {
        /* Full only because nothing was sent yet? Send, then look again. */
        if (!batchp_retry_pending(bt) && bt->items)
            batchp_flush(p, bt, TRIG_SIZE, true, now);
        if (over_bound(p, bt)) {
            size_t hi = bt->items + bt->retry_items;
            pthread_mutex_unlock(&bt->mu);
            ot_counter_add(p->refused, items);
            ot_batch_unref(b);
            ot_err_set(err,
                       "batch processor %s is full (%zu items, %zu bytes held; the next "
                       "consumer refuses data)",
                       p->id, hi, atomic_load(&p->held_bytes));
            return OT_RETRYABLE;
        }
    }
    bool was_empty = !bt->items;
    bool had_retry = batchp_retry_pending(bt) != 0;
    size_t max = (size_t)c->send_batch_max_size;
    ot_status st = OT_OK;
    if (direct && !bt->items && (!max || items <= max)) {
        /* Big enough alone and nothing pending: sent as it came, uncopied. */
        if (take_edits(b, &ed, items, err) < 0) {
            st = OT_PERMANENT;
        } else {
            batchp_deliver(p, bt, b, TRIG_SIZE, now);
            b = NULL;
        }
    } else {
        if (!ed && !w && ot_batch_wire(b, &w, &wl, err) < 0) {
            st = OT_PERMANENT;
        } else if (ed ? batchp_ob_append_edited(p, bt, ed, items) < 0
                      : batchp_ob_append(p, bt, w, wl, items) < 0) {
            ot_err_set(err, "batch processor %s: out of memory", p->id);
            st = OT_RETRYABLE;
        } else {
            if (bt->items == items)
                bt->first_at = now;
            if (c->timeout == 0 || bt->items >= (size_t)c->send_batch_size) {
                batchp_flush(p, bt, TRIG_SIZE, false, now);
                if (bt->items)
                    bt->first_at = now;
            }
        }
    }
    bool kick = (was_empty && bt->items) || (!had_retry && batchp_retry_pending(bt));
    pthread_mutex_unlock(&bt->mu);
    if (st != OT_OK)
        ot_counter_add(p->refused, items);
    ot_batch_unref(b);
    if (kick)
        kick_timer(p);
    return st;
}

ot_status batchp_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    return consume((proc *)self, b, NULL, b->items, err);
}

ot_status batchp_consume_edited(ot_consumer *self, ot_batch *b, const ot_pbedit *ed,
                                size_t items, ot_err *err)
{
    return consume((proc *)self, b, ed, items, err);
}
