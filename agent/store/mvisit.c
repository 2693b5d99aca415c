/* mvisit.c: the readers' side of the stream store: visits, the index a
 * scrape groups streams by, and lookups by hash, each taking copies of a
 * stripe's streams under its lock and calling the reader on the copies
 * with no lock held (mstore.h has the contract). Apart from mstore.c,
 * which writes and expires, as the two share only the tables (mstab.h). */
#include "store/mstore.h"
#include "store/mstore_int.h"
#include "store/mstab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Visiting copies a stripe's streams out under its lock and calls fn on
 * the copies after dropping it: the lock is held for a memcpy per stream,
 * not for whatever fn does (a scrape formats text), so a reader that is
 * preempted mid-visit rarely holds a lock the writer needs. Each copy is
 * the stream as one ot_mstore_put left it. A copy's base points to a copy
 * of the shared identity too (the original may go once the lock is
 * dropped); a small cache copies each identity once per stripe. */
typedef struct visit_buf {
    ot_buf data;  /* copies, each at a 16-byte boundary */
    ot_buf offs;  /* size_t offset of each stream copy in data */
} visit_buf;

static inline size_t copy_in(ot_buf *b, const void *p, size_t n)
{
    size_t at = (b->len + 15) & ~(size_t)15; /* the bytes skipped are never read */
    if ((b->cap - b->len <= at - b->len + n || b->oom) &&
        ot_buf_reserve(b, at - b->len + n) < 0)
        return SIZE_MAX;
    memcpy(b->data + at, p, n);
    b->len = at + n;
    return at;
}

typedef struct base_cache {
    const struct ot_mstore_base *b;
    size_t off;
} base_cache;

/* Shared parts already copied in this stripe's batch: bases, and the last
 * key list (streams of a metric mostly share one). */
typedef struct copy_cache {
    base_cache b[16];
    const ot_mstore_klist *kl;
    size_t kl_off;
} copy_cache;

/* Copies one stream (its stripe locked) into vb; false on out-of-memory. */
static bool copy_stream(const ot_mstore_stream *s, visit_buf *vb, copy_cache *cc)
{
    const struct ot_mstore_base *b = s->base;
    base_cache *cache = cc->b;
    size_t c = ((uintptr_t)b >> 4) & 15;
    if (cache[c].b != b) {
        cache[c].b = b;
        cache[c].off = copy_in(&vb->data, b, sizeof *b + b->len);
    }
    if (b->split && cc->kl != stream_klist(s)) {
        cc->kl = stream_klist(s);
        cc->kl_off = copy_in(&vb->data, cc->kl, sizeof *cc->kl + cc->kl->len);
    }
    size_t off = copy_in(&vb->data, s, stream_size(s));
    if (off == SIZE_MAX || cache[c].off == SIZE_MAX || (b->split && cc->kl_off == SIZE_MAX))
        return false;
    ot_buf *o = &vb->offs;
    if (o->cap - o->len <= sizeof off && ot_buf_reserve(o, sizeof off) < 0)
        return false;
    memcpy(o->data + o->len, &off, sizeof off);
    o->len += sizeof off;
    /* The base's and key list's offsets ride in the pointers until the
     * buffer stops moving. */
    ot_mstore_stream *cp = (ot_mstore_stream *)(void *)(vb->data.data + off);
    cp->base = (const struct ot_mstore_base *)(uintptr_t)cache[c].off;
    if (b->split)
        memcpy(cp->state + cp->state_size, &cc->kl_off, sizeof cc->kl_off);
    return true;
}

/* Copies stripe sp (locked) into vb; false on out-of-memory. */
static bool visit_copy(const stripe *sp, visit_buf *vb)
{
    copy_cache cache = {0};
    vb->data.len = vb->offs.len = 0;
    for (size_t i = 0; i <= sp->mask; i++) {
        const ot_mstore_stream *s = slot_s(sp->slots[i]);
        if (s && !copy_stream(s, vb, &cache))
            return false;
    }
    return true;
}

/* Calls fn on the copies in vb (no lock held). */
static int visit_copies(visit_buf *vb, ot_mstore_visit_fn fn, void *ctx)
{
    int rc = 0;
    size_t n = vb->offs.len / sizeof(size_t);
    for (size_t i = 0; i < n && !rc; i++) {
        size_t off;
        memcpy(&off, vb->offs.data + i * sizeof off, sizeof off);
        ot_mstore_stream *c = (ot_mstore_stream *)(void *)(vb->data.data + off);
        c->base = (const struct ot_mstore_base *)(void *)(vb->data.data + (uintptr_t)c->base);
        if (c->base->split) {
            size_t ko;
            memcpy(&ko, c->state + c->state_size, sizeof ko);
            const void *kl = vb->data.data + ko;
            memcpy(c->state + c->state_size, &kl, sizeof kl);
        }
        rc = fn(ctx, c);
    }
    return rc;
}

/* One stripe's visit: copied under its lock, fn called on the copies
 * after (in place, lock held, when the copy cannot be made). */
static int visit_stripe(stripe *sp, visit_buf *vb, ot_mstore_visit_fn fn, void *ctx)
{
    int rc = 0;
    lock_take(&sp->mu);
    if (!visit_copy(sp, vb)) { /* out of memory: visit in place instead */
        for (size_t i = 0; i <= sp->mask && !rc; i++)
            if (slot_s(sp->slots[i]))
                rc = fn(ctx, slot_s(sp->slots[i]));
        lock_drop_yield(&sp->mu);
        ot_buf_free(&vb->data);
        ot_buf_free(&vb->offs);
        *vb = (visit_buf){OT_BUF_INIT, OT_BUF_INIT};
        return rc;
    }
    lock_drop_yield(&sp->mu);
    return visit_copies(vb, fn, ctx);
}

int ot_mstore_visit(ot_mstore *st, ot_mstore_visit_fn fn, void *ctx)
{
    visit_buf vb = {OT_BUF_INIT, OT_BUF_INIT};
    int rc = 0;
    for (size_t k = 0; k < NSTRIPES && !rc; k++)
        rc = visit_stripe(&st->stripes[k], &vb, fn, ctx);
    ot_buf_free(&vb.data);
    ot_buf_free(&vb.offs);
    return rc;
}

int ot_mstore_visit_stripe(ot_mstore *st, size_t k, ot_mstore_visit_fn fn, void *ctx)
{
    if (k >= NSTRIPES)
        return 0;
    visit_buf vb = {OT_BUF_INIT, OT_BUF_INIT};
    int rc = visit_stripe(&st->stripes[k], &vb, fn, ctx);
    ot_buf_free(&vb.data);
    ot_buf_free(&vb.offs);
    return rc;
}

int ot_mstore_index(ot_mstore *st, int (*fn)(void *ctx, const ot_mstore_idx *v, size_t n),
                    void *ctx)
{
    ot_mstore_idx *v = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t k = 0; k < NSTRIPES && !rc; k++) {
        stripe *sp = &st->stripes[k];
        lock_take(&sp->mu);
        if (sp->n > cap) { /* sized under the lock: n cannot change meanwhile */
            size_t nc = sp->n * 2;
            ot_mstore_idx *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                lock_drop_yield(&sp->mu);
                rc = -1;
                break;
            }
            v = nv;
            cap = nc;
        }
        size_t n = 0;
        for (size_t i = 0; i <= sp->mask; i++) {
            /* streams are apart in memory: fetch them a memory latency
             * ahead (a slot costs a few cycles; about half are empty) */
            if (i + 32 <= sp->mask && sp->slots[i + 32].v)
                __builtin_prefetch(slot_s(sp->slots[i + 32]));
            if (sp->slots[i].v) {
                const ot_mstore_stream *s = slot_s(sp->slots[i]);
                v[n++] = (ot_mstore_idx){s->hash, s->base->id};
            }
        }
        lock_drop_yield(&sp->mu);
        if (n)
            rc = fn(ctx, v, n);
    }
    free(v);
    return rc;
}

/* Streams found by hash are copied this many finds later, each fetched
 * from memory meanwhile: the copies are cache misses one after the other,
 * with the lock held, otherwise. A ring keeps the distance the same for
 * every stream (a batch found then copied whole left its last ones none). */
#define AHEAD 32

typedef struct ahead {
    const ot_mstore_stream *s[AHEAD];
    uint64_t want[AHEAD];
    size_t head, n;
} ahead;

/* Copies the oldest found stream if its full hash is the one its tag
 * matched; false on out-of-memory. */
static bool copy_oldest(ahead *a, visit_buf *vb, copy_cache *cache)
{
    size_t j = a->head;
    a->head = (a->head + 1) & (AHEAD - 1);
    a->n--;
    return a->s[j]->hash != a->want[j] || copy_stream(a->s[j], vb, cache);
}

int ot_mstore_visit_hashes(ot_mstore *st, const uint64_t *hashes, size_t n,
                           ot_mstore_visit_fn fn, void *ctx)
{
    ot_mstore_scratch sc = {OT_BUF_INIT, OT_BUF_INIT};
    int rc = ot_mstore_visit_hashes_with(st, &sc, hashes, n, fn, ctx);
    ot_mstore_scratch_free(&sc);
    return rc;
}

void ot_mstore_scratch_free(ot_mstore_scratch *sc)
{
    ot_buf_free(&sc->data);
    ot_buf_free(&sc->offs);
}

int ot_mstore_visit_hashes_with(ot_mstore *st, ot_mstore_scratch *sc, const uint64_t *hashes,
                                size_t n, ot_mstore_visit_fn fn, void *ctx)
{
    visit_buf vb = {sc->data, sc->offs};
    int rc = 0;
    for (size_t at = 0; at < n && !rc;) {
        stripe *sp = &st->stripes[hashes[at] >> STRIPE_SHIFT];
        copy_cache cache = {0};
        bool ok = true;
        vb.data.len = vb.offs.len = 0;
        ahead a = {.head = 0, .n = 0};
        lock_take(&sp->mu);
        for (; at < n && &st->stripes[hashes[at] >> STRIPE_SHIFT] == sp; at++) {
            uint64_t h = hashes[at];
            for (size_t i = h & sp->mask; sp->slots[i].v; i = (i + 1) & sp->mask) {
                if (!tag_is(sp->slots[i], h))
                    continue;
                if (a.n == AHEAD)
                    ok = copy_oldest(&a, &vb, &cache) && ok;
                const ot_mstore_stream *s = slot_s(sp->slots[i]);
                __builtin_prefetch(s);
                __builtin_prefetch((const char *)s + 64);
                __builtin_prefetch((const char *)s + 128);
                size_t j = (a.head + a.n++) & (AHEAD - 1);
                a.s[j] = s;
                a.want[j] = h;
            }
        }
        while (a.n)
            ok = copy_oldest(&a, &vb, &cache) && ok;
        lock_drop_yield(&sp->mu);
        rc = ok ? visit_copies(&vb, fn, ctx) : -1;
    }
    sc->data = vb.data;
    sc->offs = vb.offs;
    return rc;
}
