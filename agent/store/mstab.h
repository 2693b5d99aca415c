/* mstab.h: the store's striped tables, which the writer's side (mstore.c:
 * lookups, inserts, growth, expiry) and the readers' side (mvisit.c:
 * copies taken under a stripe's lock) both work on. Private to those two
 * files; the rest of the store needs only mstore_int.h. */
#ifndef OT_MSTAB_H
#define OT_MSTAB_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store/mstore.h"
#include "store/mstore_int.h"

#define NSTRIPES OT_MSTORE_STRIPES
#define STRIPE_SHIFT 56
#define FIRST_SLOTS 8
/* malloc's own header per block (glibc keeps one size word). */
#define CHUNK_OVERHEAD 8

/* A slot is 8 bytes, not 16 (a pointer and a hash): the stream's address
 * with 16 bits of its hash above it (bits 40-55, which pick neither the
 * stripe nor the slot), as user addresses of a 64-bit process fit in 48
 * bits. A probe rejects other streams by the tag without loading them; a
 * match is checked against the stream's full hash. 0: empty. */
typedef struct slot {
    uintptr_t v;
} slot;

#define ADDR_BITS 48
#define ADDR_MASK (((uintptr_t)1 << ADDR_BITS) - 1)

_Static_assert(sizeof(uintptr_t) == 8, "tagged slots need 64-bit addresses");

static inline ot_mstore_stream *slot_s(slot x) { return (ot_mstore_stream *)(x.v & ADDR_MASK); }
static inline uintptr_t hash_tag(uint64_t h) { return (uintptr_t)((h >> 40) & 0xffff) << ADDR_BITS; }
static inline bool tag_is(slot x, uint64_t h) { return (x.v & ~ADDR_MASK) == hash_tag(h); }
static inline slot make_slot(ot_mstore_stream *s, uint64_t h)
{
    return (slot){(uintptr_t)s | hash_tag(h)};
}

/* A stripe lock: taken and released with one atomic each when free, the
 * common case (a pthread mutex costs several times that on the writer's
 * path). A holder keeps it for one lookup or one stripe's worth of a
 * visit (microseconds), so a waiter spins that long; only then does it
 * yield, for a holder that was preempted. Yielding sooner (or sleeping in
 * the kernel, as a mutex does) hands the CPU to other processes on a busy
 * machine and turns microsecond waits into milliseconds. A waiter marks the
 * lock, and a reader that drops a marked lock yields in turn, so a writer
 * that shares a core with a preempted reader waits for the hold, not for
 * the reader's time slice; on one CPU a waiter does not spin at all. */
typedef struct lock {
    atomic_int held; /* 0 free, 1 held, 2 held and waited for */
} lock;

/* Spins, then yields, until l is free (mstore.c); marks it waited for. */
void ot_mstab_lock_wait_(lock *l);
/* Gives the CPU to a thread waiting for a lock just dropped (mstore.c). */
void ot_mstab_lock_yield_(void);

static inline void lock_take(lock *l)
{
    int free_ = 0;
    if (!atomic_compare_exchange_strong_explicit(&l->held, &free_, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        ot_mstab_lock_wait_(l);
}

static inline void lock_drop(lock *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

/* A reader's or expiry's drop: when someone waited meanwhile (the writer,
 * mostly), the CPU goes to it. On a core the two share, a reader that was
 * preempted holding the lock would otherwise run on for the rest of its
 * time slice while the writer waits, milliseconds rather than the
 * microseconds the hold took. */
static inline void lock_drop_yield(lock *l)
{
    if (atomic_exchange_explicit(&l->held, 0, memory_order_release) == 2)
        ot_mstab_lock_yield_();
}

typedef struct stripe {
    _Alignas(64) lock mu;
    slot *slots;
    size_t mask; /* slots - 1 */
    size_t n;
} stripe;

struct ot_mstore {
    stripe stripes[NSTRIPES];
    ot_mstore_opts o;
    atomic_size_t live;
    atomic_size_t bytes;
    atomic_uint_fast64_t inserted, refused, removed;

    pthread_mutex_t base_mu;
    struct ot_mstore_base **bases;
    size_t bases_mask, n_bases;

    ot_mstore_ktab keys;  /* shared_keys */
    ot_mstore_slab *slab; /* slab */
    ot_buf sk, sv;        /* the writer's split of a point part */

    ot_mstore_sweep sw;
};

static inline const uint8_t *stream_id(const ot_mstore_stream *s)
{
    return s->state + s->state_size;
}

static inline size_t stream_size(const ot_mstore_stream *s)
{
    return sizeof *s + s->state_size + s->id_len;
}

/* A split stream's key list, at the start of its point part. */
static inline ot_mstore_klist *stream_klist(const ot_mstore_stream *s)
{
    ot_mstore_klist *l;
    memcpy(&l, stream_id(s), sizeof l);
    return l;
}

#endif
