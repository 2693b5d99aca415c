/* mstore.c: the stream store itself: striped hash tables, the shared
 * metric identities, caps, memory accounting and expiry (see mstore.h for
 * the contract; the sweeper thread is msweep.c).
 *
 * Layout. A stream is one malloc block: the ot_mstore_stream header, the
 * user state, then the point part of its identity. Streams come and go one
 * at a time, so an arena (which frees only as a whole) would grow without
 * bound under churn; one block per stream keeps one owner (its stripe) and
 * one free. The resource+scope+metric part is interned once per store in
 * a refcounted table and shared by its streams. With the memory options,
 * the block comes from the store's slab (mslab.c) and the point part is a
 * pointer to an interned key list (mklist.c) followed by the values only;
 * such a store's bases are marked split, so a reader of a stream or of
 * its copy knows which layout it holds.
 *
 * Each stripe is an open-addressing table (linear probing, 8-byte slots
 * with a hash tag, backward-shift deletion so there are no tombstones)
 * grown at 3/4 load. The top 8 bits of the hash pick the stripe, the low
 * bits the slot. Collisions: a slot whose hash matches is a candidate
 * only; the stream is the same only when the point bytes and the shared
 * base bytes are equal too (the base by its never-reused id once the key
 * has matched it in full).
 *
 * Locks: each stripe has a lock, held by the writer from ot_mstore_get to
 * ot_mstore_put, by a visitor or an expiry pass for one stripe. The table
 * of shared identities has its own mutex, taken after a stripe's, and only
 * when a stream is inserted or removed, never on a lookup. */
#include "store/mstore.h"
#include "store/mstore_int.h"
#include "store/mstab.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The calling thread's waits (only the slow path is timed, so a lock
 * taken free costs nothing more). */
static _Thread_local ot_mstore_waits my_waits;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void ot_mstore_waits_get(ot_mstore_waits *out)
{
    *out = my_waits;
}

void ot_mstab_lock_yield_(void)
{
    sched_yield();
}

/* Spins before yielding: none when the thread may run on one CPU only,
 * where the holder cannot run while the waiter spins. */
static unsigned spin_limit(void)
{
    static atomic_int lim = -1; /* worked out once; threads that race agree */
    int v = atomic_load_explicit(&lim, memory_order_relaxed);
    if (v < 0) {
        cpu_set_t set;
        v = sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1 ? 0 : 4096;
        atomic_store_explicit(&lim, v, memory_order_relaxed);
    }
    return (unsigned)v;
}

void ot_mstab_lock_wait_(lock *l)
{
    int64_t t0 = mono_ns();
    unsigned lim = spin_limit();
    for (unsigned spins = 0;; spins++) {
        int v = atomic_load_explicit(&l->held, memory_order_relaxed);
        if (v == 1) /* the holder yields to a marked waiter when it drops */
            atomic_compare_exchange_weak_explicit(&l->held, &v, 2, memory_order_relaxed,
                                                  memory_order_relaxed);
        int free_ = 0;
        if (!v && atomic_compare_exchange_strong_explicit(&l->held, &free_, 1,
                                                          memory_order_acquire,
                                                          memory_order_relaxed)) {
            uint64_t d = (uint64_t)(mono_ns() - t0);
            my_waits.n++;
            my_waits.total_ns += d;
            if (d > my_waits.max_ns)
                my_waits.max_ns = d;
            return;
        }
        if (spins < lim) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#elif defined(__aarch64__)
            __asm__ __volatile__("yield");
#endif
        } else {
            sched_yield();
        }
    }
}

static size_t block_cost(void *p)
{
    return p ? malloc_usable_size(p) + CHUNK_OVERHEAD : 0;
}

/* What block_cost will say for a block of n bytes: glibc rounds a chunk
 * to 16 bytes including its header; other allocators give less. A new
 * shared identity or a table that grows is not foreseen, so the byte cap
 * may be passed by that one allocation. */
static inline size_t chunk_estimate(size_t n)
{
    return (n + CHUNK_OVERHEAD + 15) & ~(size_t)15;
}

/* A stream's block: from the slab when the store has one and it fits. */
static void *block_alloc(ot_mstore *st, size_t n)
{
    if (!st->slab || n > OT_MSTORE_SLAB_MAX)
        return malloc(n);
    size_t grew;
    void *p = ot_mstore_slab_alloc(st->slab, n, &grew);
    atomic_fetch_add(&st->bytes, grew);
    return p;
}

/* Slab blocks are paid for by their pages. */
static size_t stream_cost(const ot_mstore *st, ot_mstore_stream *s)
{
    return st->slab && stream_size(s) <= OT_MSTORE_SLAB_MAX ? 0 : block_cost(s);
}

static void block_release(ot_mstore *st, ot_mstore_stream *s)
{
    size_t n = stream_size(s);
    if (!st->slab || n > OT_MSTORE_SLAB_MAX) {
        free(s);
        return;
    }
    size_t shrank;
    ot_mstore_slab_release(st->slab, s, n, &shrank);
    atomic_fetch_sub(&st->bytes, shrank);
}

/* ---- shared identities (base_mu held) ---------------------------------- */

static atomic_uint_fast64_t next_base_id = 1;

static struct ot_mstore_base *base_acquire(ot_mstore *st, ot_mstore_key *k)
{
    size_t len = k->base_len;
    pthread_mutex_lock(&st->base_mu);
    struct ot_mstore_base **bp = &st->bases[k->base_hash & st->bases_mask], *b;
    for (b = *bp; b; b = b->next)
        if (b->hash == k->base_hash && b->len == len && !memcmp(b->bytes, k->buf.data, len))
            goto found;
    b = malloc(sizeof *b + len);
    if (!b)
        goto out;
    b->id = atomic_fetch_add(&next_base_id, 1);
    b->hash = k->base_hash;
    b->len = len;
    b->refs = 0;
    b->split = st->o.shared_keys;
    memcpy(b->bytes, k->buf.data, len);
    b->next = *bp;
    *bp = b;
    st->n_bases++;
    atomic_fetch_add(&st->bytes, block_cost(b));
    if (st->n_bases > st->bases_mask + 1) { /* grow; on OOM keep the longer chains */
        size_t cap = (st->bases_mask + 1) * 2;
        struct ot_mstore_base **nb = calloc(cap, sizeof *nb);
        if (nb) {
            for (size_t i = 0; i <= st->bases_mask; i++)
                for (struct ot_mstore_base *e = st->bases[i], *nx; e; e = nx) {
                    nx = e->next;
                    e->next = nb[e->hash & (cap - 1)];
                    nb[e->hash & (cap - 1)] = e;
                }
            atomic_fetch_add(&st->bytes, block_cost(nb));
            atomic_fetch_sub(&st->bytes, block_cost(st->bases));
            free(st->bases);
            st->bases = nb;
            st->bases_mask = cap - 1;
        }
    }
found:
    b->refs++;
    k->base_id = b->id;
out:
    pthread_mutex_unlock(&st->base_mu);
    return b;
}

static void base_release(ot_mstore *st, struct ot_mstore_base *b)
{
    pthread_mutex_lock(&st->base_mu);
    if (--b->refs == 0) {
        struct ot_mstore_base **bp = &st->bases[b->hash & st->bases_mask];
        while (*bp != b)
            bp = &(*bp)->next;
        *bp = b->next;
        st->n_bases--;
        atomic_fetch_sub(&st->bytes, block_cost(b));
        free(b);
    }
    pthread_mutex_unlock(&st->base_mu);
}

/* ---- stripes (stripe locked) ------------------------------------------- */

static int stripe_grow(ot_mstore *st, stripe *sp)
{
    size_t cap = (sp->mask + 1) * 2;
    slot *ns = calloc(cap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i <= sp->mask; i++) {
        if (!sp->slots[i].v)
            continue;
        size_t j = slot_s(sp->slots[i])->hash & (cap - 1);
        while (ns[j].v)
            j = (j + 1) & (cap - 1);
        ns[j] = sp->slots[i];
    }
    atomic_fetch_add(&st->bytes, block_cost(ns));
    atomic_fetch_sub(&st->bytes, block_cost(sp->slots));
    free(sp->slots);
    sp->slots = ns;
    sp->mask = cap - 1;
    return 0;
}

/* Empties slot i and moves later entries of its cluster back, so every
 * entry stays reachable from its home slot without tombstones. */
static void slot_clear(stripe *sp, size_t i)
{
    size_t mask = sp->mask, hole = i, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!sp->slots[j].v)
            break;
        size_t home = slot_s(sp->slots[j])->hash & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            sp->slots[hole] = sp->slots[j];
            hole = j;
        }
    }
    sp->slots[hole] = (slot){0};
    sp->n--;
}

static void stream_destroy(ot_mstore *st, ot_mstore_stream *s, ot_mstore_why why)
{
    if (st->o.on_remove)
        st->o.on_remove(st->o.ctx, s, why);
    if (s->base->split) {
        size_t shrank;
        ot_mstore_klist_put_(&st->keys, stream_klist(s), &shrank);
        atomic_fetch_sub(&st->bytes, shrank);
    }
    base_release(st, (struct ot_mstore_base *)s->base);
    atomic_fetch_sub(&st->bytes, stream_cost(st, s));
    atomic_fetch_sub(&st->live, 1);
    block_release(st, s);
}

static void remove_at(ot_mstore *st, stripe *sp, size_t i, ot_mstore_why why)
{
    ot_mstore_stream *s = slot_s(sp->slots[i]);
    slot_clear(sp, i);
    if (why != OT_MSTORE_CLOSED)
        atomic_fetch_add(&st->removed, 1);
    stream_destroy(st, s, why);
}

/* ---- the store ---------------------------------------------------------- */

ot_mstore *ot_mstore_new(const ot_mstore_opts *o, ot_err *err)
{
    if (o->state_size > UINT32_MAX / 2)
        return ot_err_set(err, "metric store: state size %zu is too large", o->state_size), NULL;
    size_t size = (sizeof(ot_mstore) + 63) & ~(size_t)63;
    ot_mstore *st = aligned_alloc(64, size);
    if (!st)
        return ot_err_set(err, "metric store: out of memory"), NULL;
    memset(st, 0, size);
    st->o = *o;
    atomic_init(&st->live, 0);
    atomic_init(&st->bytes, block_cost(st));
    atomic_init(&st->inserted, 0);
    atomic_init(&st->refused, 0);
    atomic_init(&st->removed, 0);
    size_t made = 0;
    for (; made < NSTRIPES; made++) {
        stripe *sp = &st->stripes[made];
        sp->slots = calloc(FIRST_SLOTS, sizeof *sp->slots);
        if (!sp->slots)
            break;
        sp->mask = FIRST_SLOTS - 1;
        atomic_init(&sp->mu.held, 0);
        atomic_fetch_add(&st->bytes, block_cost(sp->slots));
    }
    st->bases = calloc(FIRST_SLOTS, sizeof *st->bases);
    bool opts_ok = (!o->shared_keys || ot_mstore_ktab_init(&st->keys) == 0) &&
                   (!o->slab || (st->slab = ot_mstore_slab_new()));
    if (made < NSTRIPES || !st->bases || !opts_ok) {
        for (size_t i = 0; i < made; i++)
            free(st->stripes[i].slots);
        free(st->bases);
        ot_mstore_ktab_free(&st->keys);
        ot_mstore_slab_free(st->slab);
        free(st);
        return ot_err_set(err, "metric store: out of memory"), NULL;
    }
    st->bases_mask = FIRST_SLOTS - 1;
    atomic_fetch_add(&st->bytes, block_cost(st->bases));
    if (o->shared_keys)
        atomic_fetch_add(&st->bytes, block_cost(st->keys.v));
    pthread_mutex_init(&st->base_mu, NULL);
    ot_mstore_sweep_init_(&st->sw);
    return st;
}

void ot_mstore_free(ot_mstore *st)
{
    if (!st)
        return;
    ot_mstore_sweep_stop_(&st->sw);
    for (size_t k = 0; k < NSTRIPES; k++) {
        stripe *sp = &st->stripes[k];
        lock_take(&sp->mu);
        for (size_t i = 0; i <= sp->mask; i++)
            if (slot_s(sp->slots[i]))
                stream_destroy(st, slot_s(sp->slots[i]), OT_MSTORE_CLOSED);
        lock_drop(&sp->mu);
        free(sp->slots);
    }
    free(st->bases);
    ot_mstore_ktab_free(&st->keys);
    ot_mstore_slab_free(st->slab);
    ot_buf_free(&st->sk);
    ot_buf_free(&st->sv);
    pthread_mutex_destroy(&st->base_mu);
    free(st);
}

/* The base compares by id once k has matched it; the first time, in full. */
static inline bool same_base(const ot_mstore_stream *s, ot_mstore_key *k)
{
    const struct ot_mstore_base *b = s->base;
    if (b->id == k->base_id)
        return true;
    if (b->hash != k->base_hash || b->len != k->base_len || memcmp(b->bytes, k->buf.data, b->len))
        return false;
    k->base_id = b->id;
    return true;
}

static inline bool same_stream(const ot_mstore_stream *s, ot_mstore_key *k, const uint8_t *pt,
                               size_t plen)
{
    return s->id_len == plen && !memcmp(stream_id(s), pt, plen) && same_base(s, k);
}

/* The same for a store with shared key lists: pt is then the values and
 * st->sk the keys. */
static inline bool same_split(const ot_mstore *st, const ot_mstore_stream *s, ot_mstore_key *k,
                              const uint8_t *pt, size_t plen)
{
    if (s->id_len != sizeof(void *) + plen ||
        memcmp(stream_id(s) + sizeof(void *), pt, plen))
        return false;
    const ot_mstore_klist *l = stream_klist(s);
    if (l->len != st->sk.len || memcmp(l->bytes, st->sk.data, l->len))
        return false;
    return same_base(s, k);
}

void ot_mstore_prefetch(const ot_mstore *st, uint64_t hash)
{
    const stripe *sp = &st->stripes[hash >> STRIPE_SHIFT];
    if (sp->slots)
        __builtin_prefetch(&sp->slots[hash & sp->mask]);
}

ot_mstore_res ot_mstore_get(ot_mstore *st, ot_mstore_key *k, int64_t now_ns,
                            size_t state_size, ot_mstore_ref *ref)
{
    uint64_t h = k->hash;
    stripe *sp = &st->stripes[h >> STRIPE_SHIFT];
    const uint8_t *pt = (const uint8_t *)k->buf.data + k->base_len;
    size_t plen = k->buf.len - k->base_len, idlen = plen;
    bool split = st->o.shared_keys;
    if (split) {
        if (ot_mstore_split_(pt, plen, &st->sk, &st->sv) < 0)
            return OT_MSTORE_ERR;
        pt = (const uint8_t *)st->sv.data;
        plen = st->sv.len;
        idlen = sizeof(void *) + plen;
    }

    lock_take(&sp->mu);
    size_t i = h & sp->mask;
    for (; sp->slots[i].v; i = (i + 1) & sp->mask) {
        ot_mstore_stream *s = slot_s(sp->slots[i]);
        if (tag_is(sp->slots[i], h) && s->hash == h &&
            (split ? same_split(st, s, k, pt, plen) : same_stream(s, k, pt, plen))) {
            s->last_ns = now_ns;
            *ref = (ot_mstore_ref){s, s->state, sp};
            return OT_MSTORE_FOUND;
        }
    }

    size_t ss = state_size ? state_size : st->o.state_size;
    size_t need = sizeof(ot_mstore_stream) + ss + idlen;
    if (ss > UINT32_MAX / 2 || idlen > UINT32_MAX / 2 ||
        (st->o.max_streams && atomic_load(&st->live) >= st->o.max_streams) ||
        (st->o.max_bytes && atomic_load(&st->bytes) + chunk_estimate(need) > st->o.max_bytes)) {
        lock_drop(&sp->mu);
        atomic_fetch_add(&st->refused, 1);
        return OT_MSTORE_REFUSED;
    }
    if ((sp->n + 1) * 4 > (sp->mask + 1) * 3) {
        if (stripe_grow(st, sp) < 0)
            goto oom;
        for (i = h & sp->mask; sp->slots[i].v; i = (i + 1) & sp->mask)
            ;
    }
    ot_mstore_stream *s = block_alloc(st, need);
    ot_mstore_klist *kl = NULL;
    if (!s)
        goto oom;
    memset(s, 0, sizeof *s + ss);
    s->state_size = (uint32_t)ss;
    s->id_len = (uint32_t)idlen;
    if ((uintptr_t)s & ~ADDR_MASK) /* no room for the tag: a 57-bit address space */
        goto oom_s;
    if (split) {
        ptrdiff_t grew;
        if (!(kl = ot_mstore_klist_get_(&st->keys, (const uint8_t *)st->sk.data, st->sk.len,
                                        &grew)))
            goto oom_s;
        atomic_fetch_add(&st->bytes, (size_t)grew); /* a negative delta wraps back */
    }
    struct ot_mstore_base *b = base_acquire(st, k);
    if (!b) {
        if (kl) {
            size_t shrank;
            ot_mstore_klist_put_(&st->keys, kl, &shrank);
            atomic_fetch_sub(&st->bytes, shrank);
        }
        goto oom_s;
    }
    s->hash = h;
    s->first_ns = s->last_ns = now_ns;
    s->base = b;
    if (split) {
        memcpy(s->state + ss, &kl, sizeof kl);
        memcpy(s->state + ss + sizeof kl, pt, plen);
    } else {
        memcpy(s->state + ss, pt, plen);
    }
    sp->slots[i] = make_slot(s, h);
    sp->n++;
    atomic_fetch_add(&st->live, 1);
    atomic_fetch_add(&st->bytes, stream_cost(st, s));
    atomic_fetch_add(&st->inserted, 1);
    *ref = (ot_mstore_ref){s, s->state, sp};
    return OT_MSTORE_NEW;
oom_s:
    block_release(st, s);
oom:
    lock_drop(&sp->mu);
    return OT_MSTORE_ERR;
}

void ot_mstore_put(ot_mstore *st, ot_mstore_ref *ref, bool drop)
{
    stripe *sp = ref->stripe_;
    if (drop) {
        size_t i = ref->stream->hash & sp->mask;
        while (slot_s(sp->slots[i]) != ref->stream)
            i = (i + 1) & sp->mask;
        remove_at(st, sp, i, OT_MSTORE_DROPPED);
    }
    ref->stream = NULL;
    ref->state = NULL;
    ref->stripe_ = NULL;
    lock_drop(&sp->mu);
}

int ot_mstore_grow(ot_mstore *st, ot_mstore_ref *ref, size_t state_size)
{
    ot_mstore_stream *s = ref->stream;
    stripe *sp = ref->stripe_;
    if (state_size <= s->state_size)
        return 0;
    size_t need = sizeof *s + state_size + s->id_len;
    if (state_size > UINT32_MAX / 2 ||
        (st->o.max_bytes && atomic_load(&st->bytes) + chunk_estimate(need) > st->o.max_bytes))
        return -1;
    ot_mstore_stream *ns = block_alloc(st, need);
    if (!ns)
        return -1;
    memcpy(ns, s, sizeof *s + s->state_size);
    memset(ns->state + s->state_size, 0, state_size - s->state_size);
    memcpy(ns->state + state_size, stream_id(s), s->id_len);
    ns->state_size = (uint32_t)state_size;
    if ((uintptr_t)ns & ~ADDR_MASK) {
        block_release(st, ns);
        return -1;
    }
    size_t i = s->hash & sp->mask;
    while (slot_s(sp->slots[i]) != s)
        i = (i + 1) & sp->mask;
    sp->slots[i] = make_slot(ns, ns->hash);
    atomic_fetch_add(&st->bytes, stream_cost(st, ns));
    atomic_fetch_sub(&st->bytes, stream_cost(st, s));
    block_release(st, s);
    ref->stream = ns;
    ref->state = ns->state;
    return 0;
}

size_t ot_mstore_expire(ot_mstore *st, int64_t now_ns)
{
    if (st->o.max_idle_ns <= 0)
        return 0;
    size_t gone = 0;
    for (size_t k = 0; k < NSTRIPES; k++) {
        stripe *sp = &st->stripes[k];
        lock_take(&sp->mu);
        /* A removal may pull a later entry into slot i, so i is looked at
         * again; one pulled across the wrap to the end is looked at twice,
         * which is harmless. */
        for (size_t i = 0; i <= sp->mask;) {
            ot_mstore_stream *s = slot_s(sp->slots[i]);
            if (s && now_ns - s->last_ns >= st->o.max_idle_ns) {
                remove_at(st, sp, i, OT_MSTORE_EXPIRED);
                gone++;
            } else {
                i++;
            }
        }
        lock_drop_yield(&sp->mu);
    }
    return gone;
}

int ot_mstore_sweeper_start(ot_mstore *st, int64_t interval_ns, ot_err *err)
{
    return ot_mstore_sweep_start_(&st->sw, st, interval_ns, err);
}

size_t ot_mstore_bytes(const ot_mstore *st)
{
    return atomic_load(&st->bytes);
}

void ot_mstore_stats_get(const ot_mstore *st, ot_mstore_stats *out)
{
    out->streams = atomic_load(&st->live);
    out->bytes = atomic_load(&st->bytes);
    out->inserted = atomic_load(&st->inserted);
    out->refused = atomic_load(&st->refused);
    out->removed = atomic_load(&st->removed);
}
