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
 * consumer, so its sends stay in order. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "pipeline/factory.h"
#include "base/log.h"
#include "split.h"
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

/* ---- state ------------------------------------------------------------- */

enum { TRIG_SIZE, TRIG_TIMEOUT, TRIG_SHUTDOWN, TRIG_COUNT };
static const char *const trig_names[TRIG_COUNT] = {"size", "timeout", "shutdown"};

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
    ot_consumer base;
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

static void charge(proc *p, int64_t delta)
{
    if (delta >= 0)
        atomic_fetch_add(&p->held_bytes, (size_t)delta);
    else
        atomic_fetch_sub(&p->held_bytes, (size_t)-delta);
    ot_gauge_add(p->held_gauge, delta);
}

/* ---- sending and retrying ---------------------------------------------- */

static size_t retry_pending(const batcher *bt)
{
    return bt->r_len - bt->r_head;
}

static int retry_push(batcher *bt, ot_batch *b, size_t bytes, size_t items)
{
    if (bt->r_len == bt->r_cap) {
        if (bt->r_head > 0) {
            memmove(bt->retry, bt->retry + bt->r_head, retry_pending(bt) * sizeof *bt->retry);
            bt->r_len -= bt->r_head;
            bt->r_head = 0;
        } else {
            size_t nc = bt->r_cap ? bt->r_cap * 2 : 8;
            held *n = realloc(bt->retry, nc * sizeof *n);
            if (!n)
                return -1;
            bt->retry = n;
            bt->r_cap = nc;
        }
    }
    bt->retry[bt->r_len++] = (held){b, bytes, items};
    return 0;
}

static void retry_pop(proc *p, batcher *bt)
{
    held h = bt->retry[bt->r_head++];
    bt->retry_items -= h.items;
    charge(p, -(int64_t)h.bytes);
    if (bt->r_head == bt->r_len)
        bt->r_head = bt->r_len = 0;
}

/* One attempt. True when the batch is gone (accepted, or refused for good
 * and dropped); false when refused as retryable and still ours. */
static bool send_once(proc *p, ot_batch *b)
{
    ot_err e = {{0}};
    size_t items = b->items;
    /* Our own reference survives a refusal, so the batch can be retried.
     * (A mutating next consumer sees two references and clones.) */
    ot_batch_ref(b);
    ot_status st = ot_consume(p->next, b, &e);
    if (st == OT_RETRYABLE)
        return false;
    ot_batch_unref(b);
    if (st == OT_OK) {
        ot_counter_add(p->items_sent, items);
    } else {
        ot_counter_add(p->dropped, items);
        ot_error("batch", "the next consumer refused a batch for good; dropped",
                 "processor=%s signal=%s items=%zu error=\"%s\"", p->id,
                 ot_signal_name(p->signal), items, e.msg);
    }
    return true;
}

static void drop_batch(proc *p, ot_batch *b, const char *why)
{
    ot_counter_add(p->dropped, b->items);
    ot_error("batch", why, "processor=%s signal=%s items=%zu", p->id, ot_signal_name(p->signal),
             b->items);
    ot_batch_unref(b);
}

/* Sends the refused batches in order until one is refused again. */
static void drain(proc *p, batcher *bt, int64_t now)
{
    while (retry_pending(bt)) {
        if (!send_once(p, bt->retry[bt->r_head].b)) {
            bt->retry_at = now + p->retry_ns;
            return;
        }
        retry_pop(p, bt);
        if (!retry_pending(bt))
            ot_info("batch", "the next consumer takes data again", "processor=%s signal=%s",
                    p->id, ot_signal_name(p->signal));
    }
}

/* A flushed batch: sent now unless earlier ones wait for a retry, in which
 * case it waits behind them. */
static void deliver(proc *p, batcher *bt, ot_batch *b, int trig, int64_t now)
{
    ot_counter_add(p->flushes[trig], 1);
    if (!retry_pending(bt) && send_once(p, b))
        return;
    size_t bytes = ot_batch_bytes(b), items = b->items;
    if (retry_push(bt, b, bytes, items) < 0) {
        drop_batch(p, b, "out of memory keeping a refused batch; dropped");
        return;
    }
    if (retry_pending(bt) == 1) {
        static _Atomic int64_t warned;
        bt->retry_at = now + p->retry_ns;
        if (ot_log_ratelimit(&warned, 10000000000LL))
            ot_warn("batch", "the next consumer refuses data; holding batches to retry",
                    "processor=%s signal=%s", p->id, ot_signal_name(p->signal));
    }
    bt->retry_items += items;
    charge(p, (int64_t)bytes);
}

/* ---- the open buffer --------------------------------------------------- */

static void ob_release(proc *p, batcher *bt)
{
    ot_arena_free(bt->ob_arena);
    charge(p, -(int64_t)bt->ob_charged);
    bt->ob_arena = NULL;
    bt->ob = NULL;
    bt->ob_len = bt->ob_cap = bt->ob_charged = 0;
    bt->n_recs = 0;
    bt->items = 0;
    bt->dec_rec = SIZE_MAX;
}

/* A fresh arena whose first chunk holds cap bytes of buffer plus room for
 * the metadata strings the output batch gets. */
static ot_arena *buf_arena(size_t cap, uint8_t **data)
{
    ot_arena *a = ot_arena_new(cap + 1024);
    if (!a)
        return NULL;
    *data = ot_arena_alloc(a, cap ? cap : 1);
    if (!*data) {
        ot_arena_free(a);
        return NULL;
    }
    return a;
}

/* The size a new open buffer starts at: about what the last flush held,
 * so one arena usually does; one huge flush does not make every later
 * buffer huge. */
static size_t ob_estimate(const proc *p, const batcher *bt)
{
    size_t cap = bt->last_flush_len + bt->last_flush_len / 4;
    if (cap > p->cfg->max_pending_bytes / 2)
        cap = p->cfg->max_pending_bytes / 2;
    return cap < 16384 ? 16384 : cap;
}

static int ob_reserve(proc *p, batcher *bt, size_t n)
{
    if (bt->ob_arena && bt->ob_len + n <= bt->ob_cap)
        return 0;
    size_t want = bt->ob_len + n;
    size_t cap = bt->ob_arena ? bt->ob_cap * 2 : ob_estimate(p, bt);
    if (cap < want)
        cap = want;
    uint8_t *data;
    ot_arena *a = buf_arena(cap, &data);
    if (!a)
        return -1;
    if (bt->ob_len)
        memcpy(data, bt->ob, bt->ob_len);
    ot_arena_free(bt->ob_arena);
    bt->ob_arena = a;
    bt->ob = data;
    bt->ob_cap = cap;
    size_t charged = ot_arena_reserved(a);
    charge(p, (int64_t)charged - (int64_t)bt->ob_charged);
    bt->ob_charged = charged;
    return 0;
}

static int ob_append(proc *p, batcher *bt, const uint8_t *w, size_t n, size_t items)
{
    if (bt->n_recs == bt->cap_recs) {
        size_t nc = bt->cap_recs ? bt->cap_recs * 2 : 64;
        rec *r = realloc(bt->recs, nc * sizeof *r);
        if (!r)
            return -1;
        bt->recs = r;
        bt->cap_recs = nc;
    }
    if (ob_reserve(p, bt, n) < 0)
        return -1;
    if (n)
        memcpy(bt->ob + bt->ob_len, w, n);
    bt->recs[bt->n_recs++] = (rec){bt->ob_len, n, items};
    bt->ob_len += n;
    bt->items += items;
    return 0;
}

static int set_meta(proc *p, batcher *bt, ot_batch *b)
{
    for (size_t i = 0; i < p->n_keys; i++)
        if (bt->vals[i] && ot_batch_set_meta(b, p->keys[i], bt->vals[i]) < 0)
            return -1;
    return 0;
}

/* Wraps protobuf bytes that live in arena a as a batch that owns a. */
static ot_batch *wrap(proc *p, batcher *bt, ot_arena *a, const uint8_t *data, size_t len,
                      size_t items)
{
    ot_batch *b = ot_batch_adopt_wire(p->signal, a, data, len, items);
    if (!b)
        return NULL;
    if (set_meta(p, bt, b) < 0) {
        ot_batch_unref(b);
        return NULL;
    }
    return b;
}

/* The whole open buffer as one batch; the buffer starts over empty. */
static ot_batch *ob_take(proc *p, batcher *bt)
{
    ot_arena *a = bt->ob_arena;
    uint8_t *data = bt->ob;
    size_t len = bt->ob_len, items = bt->items;
    /* A buffer mostly empty would pin its slack in the queues downstream. */
    if (bt->ob_cap > 2 * len + 65536) {
        uint8_t *d2;
        ot_arena *a2 = buf_arena(len, &d2);
        if (a2) {
            memcpy(d2, data, len);
            a = a2;
            data = d2;
        } else {
            a = NULL;
        }
        ot_arena_free(bt->ob_arena);
    }
    bt->ob_arena = NULL; /* a (if any) goes to the batch */
    bt->last_flush_len = len;
    ob_release(p, bt);
    return a ? wrap(p, bt, a, data, len, items) : NULL;
}

/* ---- cuts through the open buffer -------------------------------------- */

/* The decoded form of record r, kept while consecutive cuts go through it. */
static const ProtobufCMessage *rec_msg(proc *p, batcher *bt, size_t r)
{
    if (bt->dec_rec == r)
        return bt->dec_msg;
    if (!bt->dec && !(bt->dec = ot_arena_new(bt->recs[r].len * 3 + 4096)))
        return NULL;
    ot_arena_reset(bt->dec);
    bt->dec_rec = SIZE_MAX;
    const ProtobufCMessageDescriptor *d = ot_signal_request_desc(p->signal);
    bt->dec_msg = protobuf_c_message_unpack(d, ot_arena_pb_allocator(bt->dec), bt->recs[r].len,
                                            bt->ob + bt->recs[r].off);
    if (bt->dec_msg)
        bt->dec_rec = r;
    return bt->dec_msg;
}

typedef struct piece {
    enum { P_BYTES, P_WIRE, P_VIEW } kind;
    const uint8_t *bytes; /* P_BYTES: a run of whole records; P_WIRE: one */
    size_t rec_len, rec_items, a0, b0; /* P_WIRE: the record and its window */
    const ProtobufCMessage *view; /* P_VIEW: a window of one decoded record */
    size_t len, items;
} piece;

/* Items [a0, b0) of record r as a piece: cut from its bytes, or else from
 * its decoded form. False when neither works (the items are then lost, and
 * counted). */
static bool view_piece(proc *p, batcher *bt, size_t r, size_t a0, size_t b0, piece *out)
{
    const rec *rc = &bt->recs[r];
    const uint8_t *rb = bt->ob + rc->off;
    long n = ot_split_wire(p->signal, rb, rc->len, rc->items, a0, b0, NULL);
    if (n >= 0) {
        *out = (piece){.kind = P_WIRE, .bytes = rb, .rec_len = rc->len, .rec_items = rc->items,
                       .a0 = a0, .b0 = b0, .len = (size_t)n, .items = b0 - a0};
        return true;
    }
    const ProtobufCMessage *m = rec_msg(p, bt, r);
    if (m && !bt->views && !(bt->views = ot_arena_new(0)))
        m = NULL;
    const ProtobufCMessage *v = m ? ot_split_view(p->signal, m, a0, b0, bt->views) : NULL;
    if (!v) {
        ot_counter_add(p->dropped, b0 - a0);
        ot_error("batch", "cannot cut a request (undecodable or out of memory); items dropped",
                 "processor=%s signal=%s items=%zu", p->id, ot_signal_name(p->signal), b0 - a0);
        return false;
    }
    *out = (piece){.kind = P_VIEW, .view = v, .len = protobuf_c_message_get_packed_size(v),
                   .items = b0 - a0};
    return true;
}

/* Where item `item` lies: record *r, whose first item is *start. Moves a
 * cursor forward only (cuts come in order). */
static void seek(const batcher *bt, size_t item, size_t *r, size_t *start)
{
    while (*r < bt->n_recs && *start + bt->recs[*r].items <= item) {
        *start += bt->recs[*r].items;
        (*r)++;
    }
}

/* Items [lo, hi) of the open buffer as pieces (at most three: the tail of
 * a record, a run of whole records, the head of a record). */
static size_t cut_pieces(proc *p, batcher *bt, size_t lo, size_t hi, size_t *r, size_t *start,
                         piece out[3])
{
    size_t n = 0;
    seek(bt, lo, r, start);
    size_t r0 = *r, s0 = *start;
    size_t r1 = r0, s1 = s0;
    seek(bt, hi - 1, &r1, &s1);
    size_t e0 = s0 + bt->recs[r0].items, e1 = s1 + bt->recs[r1].items;
    if (r0 == r1 && !(lo == s0 && hi == e1)) {
        if (view_piece(p, bt, r0, lo - s0, hi - s0, &out[n]))
            n++;
        return n;
    }
    size_t first = r0, last = r1; /* whole records [first, last] */
    if (lo != s0) {
        if (view_piece(p, bt, r0, lo - s0, e0 - s0, &out[n]))
            n++;
        first = r0 + 1;
    }
    bool tail = hi != e1;
    if (tail)
        last = r1 - 1;
    if (first <= last && last != SIZE_MAX) {
        size_t items = 0;
        for (size_t i = first; i <= last; i++)
            items += bt->recs[i].items;
        size_t off = bt->recs[first].off;
        out[n++] = (piece){.kind = P_BYTES, .bytes = bt->ob + off,
                           .len = bt->recs[last].off + bt->recs[last].len - off, .items = items};
    }
    if (tail && view_piece(p, bt, r1, 0, hi - s1, &out[n]))
        n++;
    return n;
}

/* Packs pieces one after another into a new arena (with room for at
 * least cap bytes): one request. */
static ot_arena *pack_pieces(ot_signal p_signal, const piece *pc, size_t n, size_t cap,
                             uint8_t **data, size_t *len, size_t *items)
{
    size_t total = 0;
    *items = 0;
    for (size_t i = 0; i < n; i++) {
        total += pc[i].len;
        *items += pc[i].items;
    }
    ot_arena *a = buf_arena(total > cap ? total : cap, data);
    if (!a)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (pc[i].kind == P_BYTES)
            memcpy(*data + off, pc[i].bytes, pc[i].len);
        else if (pc[i].kind == P_WIRE)
            ot_split_wire(p_signal, pc[i].bytes, pc[i].rec_len, pc[i].rec_items, pc[i].a0,
                          pc[i].b0, *data + off);
        else
            protobuf_c_message_pack(pc[i].view, *data + off);
        off += pc[i].len;
    }
    *len = total;
    return a;
}

/* Sends items [0, upto) of the open buffer as batches of at most `chunk`
 * items, then keeps [upto, items) as the new open buffer. */
static void flush_cut(proc *p, batcher *bt, size_t upto, size_t chunk, int trig, int64_t now)
{
    size_t r = 0, start = 0;
    size_t total = bt->items;
    for (size_t lo = 0; lo < upto; lo += chunk) {
        size_t hi = lo + chunk < upto ? lo + chunk : upto;
        piece pc[3];
        size_t n = cut_pieces(p, bt, lo, hi, &r, &start, pc);
        uint8_t *data;
        size_t len, items;
        ot_arena *a = n ? pack_pieces(p->signal, pc, n, 0, &data, &len, &items) : NULL;
        ot_batch *b = a ? wrap(p, bt, a, data, len, items) : NULL;
        if (bt->views)
            ot_arena_reset(bt->views);
        if (b) {
            bt->last_flush_len = len;
            deliver(p, bt, b, trig, now);
        } else if (n) {
            ot_counter_add(p->dropped, hi - lo);
            ot_error("batch", "out of memory cutting a batch; items dropped",
                     "processor=%s signal=%s items=%zu", p->id, ot_signal_name(p->signal),
                     hi - lo);
        }
    }
    if (upto >= total) {
        ob_release(p, bt);
        return;
    }
    /* The rest becomes a new open buffer: the cut record's remainder, then
     * the whole records after it. */
    piece pc[3];
    size_t n = cut_pieces(p, bt, upto, total, &r, &start, pc);
    uint8_t *data;
    size_t len = 0, items = 0;
    /* Room for what comes next, as a fresh open buffer would have. */
    size_t cap = ob_estimate(p, bt);
    ot_arena *a = n ? pack_pieces(p->signal, pc, n, cap, &data, &len, &items) : NULL;
    if (bt->views)
        ot_arena_reset(bt->views);
    /* Records of the remainder, renumbered from the new buffer's start (in
     * place: a record never moves to a higher index). */
    size_t nr = 0;
    if (a) {
        size_t i0 = r, off = 0;
        if (upto != start) {
            if (pc[0].kind != P_BYTES) {
                bt->recs[nr++] = (rec){0, pc[0].len, pc[0].items};
                off = pc[0].len;
            }
            i0 = r + 1;
        }
        for (size_t i = i0; i < bt->n_recs; i++) {
            bt->recs[nr++] = (rec){off, bt->recs[i].len, bt->recs[i].items};
            off += bt->recs[i].len;
        }
    } else if (n) {
        ot_counter_add(p->dropped, total - upto);
        ot_error("batch", "out of memory keeping the rest of a cut batch; items dropped",
                 "processor=%s signal=%s items=%zu", p->id, ot_signal_name(p->signal),
                 total - upto);
    }
    ob_release(p, bt);
    if (!a)
        return;
    bt->ob_arena = a;
    bt->ob = data;
    bt->ob_len = len;
    bt->ob_cap = len > cap ? len : cap;
    bt->ob_charged = ot_arena_reserved(a);
    charge(p, (int64_t)bt->ob_charged);
    bt->n_recs = nr;
    bt->items = items;
    bt->first_at = now;
}

/* Sends what is due: everything (all, or timeout 0), or else while
 * send_batch_size items are held. */
static void flush(proc *p, batcher *bt, int trig, bool all, int64_t now)
{
    const batch_cfg *c = p->cfg;
    size_t n = bt->items, max = (size_t)c->send_batch_max_size;
    size_t trigger = (size_t)c->send_batch_size;
    if (n == 0) {
        if (bt->ob_arena)
            ob_release(p, bt);
        return;
    }
    size_t upto = n;
    if (!all && c->timeout != 0) {
        if (n < trigger)
            return;
        if (max) {
            /* Batches of max while at least send_batch_size remain. */
            size_t rest = n;
            while (rest > 0 && rest >= trigger)
                rest -= rest < max ? rest : max;
            upto = n - rest;
        }
    }
    if (upto < n || (max && n > max)) {
        flush_cut(p, bt, upto, max ? max : upto, trig, now);
        return;
    }
    /* The common case: the whole buffer goes, as it is. */
    ot_batch *b = ob_take(p, bt);
    if (b) {
        deliver(p, bt, b, trig, now);
    } else {
        ot_counter_add(p->dropped, n);
        ot_error("batch", "out of memory sending a batch; items dropped",
                 "processor=%s signal=%s items=%zu", p->id, ot_signal_name(p->signal), n);
    }
}

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

static void batcher_free(batcher *bt, size_t n_keys)
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

static batcher *batcher_new(proc *p, const char *const *vals, uint64_t h)
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
            batcher_free(bt, 0);
            return NULL;
        }
        for (size_t i = 0; i < p->n_keys; i++)
            if (vals[i] && !(bt->vals[i] = strdup(vals[i]))) {
                batcher_free(bt, p->n_keys);
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
    } else if (!(bt = batcher_new(p, vals, h))) {
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
        if (retry_pending(bt) && now >= bt->retry_at)
            drain(p, bt, now);
        if (bt->items && now - bt->first_at >= p->cfg->timeout)
            flush(p, bt, TRIG_TIMEOUT, true, now);
        if (bt->items)
            next = bt->first_at + p->cfg->timeout;
        if (retry_pending(bt) && bt->retry_at < next)
            next = bt->retry_at;
    }
    pthread_mutex_unlock(&bt->mu);
    return next;
}

static void *timer_main(void *arg)
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

static ot_status batch_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    proc *p = (proc *)self;
    if (atomic_load(&p->stopped))
        return ot_consume(p->next, b, err);
    size_t items = b->items;
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
    if (!direct && ot_batch_wire(b, &w, &wl, err) < 0) {
        ot_counter_add(p->refused, items);
        ot_batch_unref(b);
        return OT_PERMANENT;
    }

    int64_t now = ot_now_ns();
    pthread_mutex_lock(&bt->mu);
    if (bt->closed || atomic_load(&p->stopped)) {
        pthread_mutex_unlock(&bt->mu);
        return ot_consume(p->next, b, err);
    }
    if (over_bound(p, bt)) {
        /* Full only because nothing was sent yet? Send, then look again. */
        if (!retry_pending(bt) && bt->items)
            flush(p, bt, TRIG_SIZE, true, now);
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
    bool had_retry = retry_pending(bt) != 0;
    size_t max = (size_t)c->send_batch_max_size;
    ot_status st = OT_OK;
    if (direct && !bt->items && (!max || items <= max)) {
        /* Big enough alone and nothing pending: sent as it came, uncopied. */
        deliver(p, bt, b, TRIG_SIZE, now);
        b = NULL;
    } else {
        if (!w && ot_batch_wire(b, &w, &wl, err) < 0) {
            st = OT_PERMANENT;
        } else if (ob_append(p, bt, w, wl, items) < 0) {
            ot_err_set(err, "batch processor %s: out of memory", p->id);
            st = OT_RETRYABLE;
        } else {
            if (bt->items == items)
                bt->first_at = now;
            if (c->timeout == 0 || bt->items >= (size_t)c->send_batch_size) {
                flush(p, bt, TRIG_SIZE, false, now);
                if (bt->items)
                    bt->first_at = now;
            }
        }
    }
    bool kick = (was_empty && bt->items) || (!had_retry && retry_pending(bt));
    pthread_mutex_unlock(&bt->mu);
    if (st != OT_OK)
        ot_counter_add(p->refused, items);
    ot_batch_unref(b);
    if (kick)
        kick_timer(p);
    return st;
}

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
    p->base.consume = batch_consume;
    p->base.mutates = false;
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
        if (!(p->all[0] = batcher_new(p, NULL, 0)))
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
    int rc = pthread_create(&p->timer, NULL, timer_main, p);
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
        flush(p, bt, TRIG_SHUTDOWN, true, now);
        while (retry_pending(bt)) {
            drain(p, bt, now);
            now = ot_now_ns();
            if (!retry_pending(bt) || now >= deadline)
                break;
            pthread_mutex_unlock(&bt->mu);
            int64_t nap = deadline - now < 50000000 ? deadline - now : 50000000;
            struct timespec ts = {0, nap};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&bt->mu);
            now = ot_now_ns();
        }
        if (retry_pending(bt)) {
            size_t lost = bt->retry_items;
            while (retry_pending(bt)) {
                ot_batch *b = bt->retry[bt->r_head].b;
                ot_counter_add(p->dropped, bt->retry[bt->r_head].items);
                retry_pop(p, bt);
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
        while (retry_pending(bt)) {
            ot_batch *b = bt->retry[bt->r_head].b;
            ot_counter_add(p->dropped, bt->retry[bt->r_head].items);
            retry_pop(p, bt);
            ot_batch_unref(b);
        }
        if (bt->ob_arena)
            charge(p, -(int64_t)bt->ob_charged);
        batcher_free(bt, p->n_keys);
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
    return &((proc *)self)->base;
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
