/* batch_int.h: what the files of the batch processor share, and nothing
 * else includes: its config, the processor and per-metadata batcher state,
 * and the calls between the batcher (batcher.c), the open buffer it merges
 * requests into (merge.c) and the sending and retrying of what it flushes
 * (send.c). See batch.c for how they fit together. */
#ifndef OT_BATCH_INT_H
#define OT_BATCH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "model/pbedit.h"
#include "pipeline/factory.h"
#include "telemetry/telemetry.h"

/* ---- configuration ----------------------------------------------------- */

typedef struct batch_cfg {
    int64_t send_batch_size;
    int64_t timeout; /* ns */
    int64_t send_batch_max_size;
    ot_strlist metadata_keys;
    int64_t metadata_cardinality_limit;
    uint64_t max_pending_bytes;
} batch_cfg;

/* ---- state ------------------------------------------------------------- */

enum { TRIG_SIZE, TRIG_TIMEOUT, TRIG_SHUTDOWN, TRIG_COUNT };

/* One appended request inside the open buffer. */
typedef struct rec {
    size_t off, len, items;
} rec;

/* A flushed batch the next consumer refused, kept for a retry. */
typedef struct held {
    ot_batch *b;
    size_t bytes, items;
} held;

typedef struct proc proc;

typedef struct batcher {
    pthread_mutex_t mu;
    char **vals; /* metadata values, NULL where absent */
    uint64_t hash;

    /* The open buffer: its arena becomes the output batch's. */
    ot_arena *ob_arena;
    uint8_t *ob;
    size_t ob_len, ob_cap, ob_charged;
    rec *recs;
    size_t n_recs, cap_recs;
    size_t items;
    int64_t first_at; /* arrival of the oldest pending item */
    size_t last_flush_len;

    held *retry;
    size_t r_head, r_len, r_cap;
    size_t retry_items;
    int64_t retry_at;

    /* Scratch for cuts through one request. */
    ot_arena *dec;
    size_t dec_rec; /* record decoded in dec, or SIZE_MAX */
    const ProtobufCMessage *dec_msg;
    ot_arena *views;

    bool closed;
} batcher;

struct proc {
    ot_edit_consumer base; /* takes the wire processors' edits unapplied */
    const batch_cfg *cfg;
    char *id;
    ot_signal signal;
    ot_consumer *next;
    size_t item_cap; /* held items per batcher before refusing; 0 = none */
    int64_t retry_ns;

    size_t n_keys;
    char **keys; /* lower case, as request metadata is stored */

    pthread_mutex_t map_mu;
    batcher **all; /* creation order; never shrinks before destroy */
    size_t cap_all;
    atomic_size_t n_all;
    batcher **table; /* open addressing by hash of the values */
    size_t table_mask;

    atomic_size_t held_bytes;

    pthread_t timer;
    bool timer_started;
    pthread_mutex_t tm;
    pthread_cond_t cv;
    bool kick, stop;
    atomic_bool stopped;

    ot_counter *flushes[TRIG_COUNT];
    ot_counter *items_sent;
    ot_counter *refused;
    ot_counter *dropped;
    ot_gauge *held_gauge;
};

/* Held bytes go up (delta > 0) or down; on every append, so inline. */
static inline void batchp_charge(proc *p, int64_t delta)
{
    if (delta >= 0)
        atomic_fetch_add(&p->held_bytes, (size_t)delta);
    else
        atomic_fetch_sub(&p->held_bytes, (size_t)-delta);
    ot_gauge_add(p->held_gauge, delta);
}

static inline size_t batchp_retry_pending(const batcher *bt)
{
    return bt->r_len - bt->r_head;
}

/* ---- send.c: sending on, and retrying what the next consumer refused ---- */

void batchp_retry_pop(proc *p, batcher *bt);
/* Sends the refused batches in order until one is refused again. */
void batchp_drain(proc *p, batcher *bt, int64_t now);
/* A flushed batch: sent now unless earlier ones wait for a retry, in which
 * case it waits behind them. */
void batchp_deliver(proc *p, batcher *bt, ot_batch *b, int trig, int64_t now);

/* ---- merge.c: the open buffer, and cuts through it ---------------------- */

int batchp_ob_append(proc *p, batcher *bt, const uint8_t *w, size_t n, size_t items);
/* The same for bytes given as edits not yet applied: written once, there. */
int batchp_ob_append_edited(proc *p, batcher *bt, const ot_pbedit *ed, size_t items);
/* Sends what is due: everything (all, or timeout 0), or else while
 * send_batch_size items are held. */
void batchp_flush(proc *p, batcher *bt, int trig, bool all, int64_t now);

/* ---- batcher.c: batchers by metadata, the timer, consume ---------------- */

batcher *batchp_batcher_new(proc *p, const char *const *vals, uint64_t h);
void batchp_batcher_free(batcher *bt, size_t n_keys);
void *batchp_timer_main(void *arg);
ot_status batchp_consume(ot_consumer *self, ot_batch *b, ot_err *err);
ot_status batchp_consume_edited(ot_consumer *self, ot_batch *b, const ot_pbedit *ed,
                                size_t items, ot_err *err);

#endif
