/* merge.c: the batch processor's open buffer, where requests are merged as
 * bytes: each one is appended to one growing protobuf buffer (two export
 * requests concatenated are one request), and a flush hands the buffer's
 * arena to the output batch. A cut for send_batch_max_size rewrites only
 * the request it goes through (split.h). Apart from the batcher because
 * this is byte work with no locks or threads: the caller holds the
 * batcher's lock. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "batch_int.h"
#include "split.h"

/* ---- the open buffer --------------------------------------------------- */

static void ob_release(proc *p, batcher *bt)
{
    ot_arena_free(bt->ob_arena);
    batchp_charge(p, -(int64_t)bt->ob_charged);
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
    batchp_charge(p, (int64_t)charged - (int64_t)bt->ob_charged);
    bt->ob_charged = charged;
    return 0;
}

/* Room for one more record and n more bytes. */
static int ob_room(proc *p, batcher *bt, size_t n)
{
    if (bt->n_recs == bt->cap_recs) {
        size_t nc = bt->cap_recs ? bt->cap_recs * 2 : 64;
        rec *r = realloc(bt->recs, nc * sizeof *r);
        if (!r)
            return -1;
        bt->recs = r;
        bt->cap_recs = nc;
    }
    return ob_reserve(p, bt, n);
}

static void ob_took(batcher *bt, size_t n, size_t items)
{
    bt->recs[bt->n_recs++] = (rec){bt->ob_len, n, items};
    bt->ob_len += n;
    bt->items += items;
}

int batchp_ob_append(proc *p, batcher *bt, const uint8_t *w, size_t n, size_t items)
{
    if (ob_room(p, bt, n) < 0)
        return -1;
    if (n)
        memcpy(bt->ob + bt->ob_len, w, n);
    ob_took(bt, n, items);
    return 0;
}

int batchp_ob_append_edited(proc *p, batcher *bt, const ot_pbedit *ed, size_t items)
{
    size_t n = ot_pbedit_out_len(ed);
    if (n == (size_t)-1 || ob_room(p, bt, n) < 0 || ot_pbedit_write(ed, bt->ob + bt->ob_len) < 0)
        return -1;
    ob_took(bt, n, items);
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
            batchp_deliver(p, bt, b, trig, now);
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
    batchp_charge(p, (int64_t)bt->ob_charged);
    bt->n_recs = nr;
    bt->items = items;
    bt->first_at = now;
}

void batchp_flush(proc *p, batcher *bt, int trig, bool all, int64_t now)
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
        batchp_deliver(p, bt, b, trig, now);
    } else {
        ot_counter_add(p->dropped, n);
        ot_error("batch", "out of memory sending a batch; items dropped",
                 "processor=%s signal=%s items=%zu", p->id, ot_signal_name(p->signal), n);
    }
}
