/* mstore_int.h: what the files of the store share and users do not need:
 * decoding an identity from its byte parts, the shared key lists, the
 * slab allocator and the sweeper thread. */
#ifndef OT_MSTORE_INT_H
#define OT_MSTORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#include "store/mstore.h"

/* A resource+scope+metric identity, shared by its streams (mstore.c). */
struct ot_mstore_base {
    struct ot_mstore_base *next;
    uint64_t id; /* unique in the process, never reused */
    uint64_t hash;
    size_t refs; /* streams that share it */
    size_t len;
    bool split; /* its streams' point part: a key list pointer, then values */
    uint8_t bytes[];
};

void ot_mstore_decode_(const uint8_t *base, size_t blen, const uint8_t *pt, size_t plen,
                       ot_mstore_info *out);

/* The point part alone. */
void ot_mstore_decode_attrs_(const uint8_t *pt, size_t plen, ot_mstore_iter *out);

/* A point part (count, entries) apart: keys (count, key strings) and
 * values (each value's bytes, in order). -1 on bytes this file did not
 * write or out of memory. */
int ot_mstore_split_(const uint8_t *pt, size_t plen, ot_buf *keys, ot_buf *vals);
/* An iterator over a point part kept apart. */
void ot_mstore_decode_split_(const uint8_t *keys, size_t klen, const uint8_t *vals, size_t vlen,
                             ot_mstore_iter *out);

/* ---- shared key lists (mklist.c) ---------------------------------------- */

/* A point attribute key list, interned once per store. */
typedef struct ot_mstore_klist {
    struct ot_mstore_klist *next;
    uint64_t hash;
    size_t refs;
    size_t len;
    uint8_t bytes[];
} ot_mstore_klist;

typedef struct ot_mstore_ktab {
    pthread_mutex_t mu;
    ot_mstore_klist **v;
    size_t mask, n;
} ot_mstore_ktab;

int ot_mstore_ktab_init(ot_mstore_ktab *t);
void ot_mstore_ktab_free(ot_mstore_ktab *t);
/* The list of these bytes, with one more reference; *grew is the bytes
 * of the blocks it allocated minus those it freed (the caller's account).
 * NULL on out of memory. */
ot_mstore_klist *ot_mstore_klist_get_(ot_mstore_ktab *t, const uint8_t *k, size_t n,
                                      ptrdiff_t *grew);
/* Drops a reference; *shrank as *grew above, negated. */
void ot_mstore_klist_put_(ot_mstore_ktab *t, ot_mstore_klist *l, size_t *shrank);

/* ---- slabs (mslab.c) ---------------------------------------------------- */

typedef struct ot_mstore_slab ot_mstore_slab;
ot_mstore_slab *ot_mstore_slab_new(void);
void ot_mstore_slab_free(ot_mstore_slab *sl);
/* A block of n bytes (8-aligned) for n <= OT_MSTORE_SLAB_MAX; *grew is the
 * bytes of pages it took from malloc. Thread-safe. */
void *ot_mstore_slab_alloc(ot_mstore_slab *sl, size_t n, size_t *grew);
/* n as given to ot_mstore_slab_alloc; *shrank the bytes of pages freed. */
void ot_mstore_slab_release(ot_mstore_slab *sl, void *p, size_t n, size_t *shrank);
/* What a block of n bytes costs. */
static inline size_t ot_mstore_slab_cost(size_t n) { return (n + 7) & ~(size_t)7; }

/* ---- the sweeper thread (msweep.c) -------------------------------------- */

typedef struct ot_mstore_sweep {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop;
    int64_t interval_ns;
    ot_mstore *st;
} ot_mstore_sweep;

void ot_mstore_sweep_init_(ot_mstore_sweep *w);
/* Stops and joins the thread if it runs; w is done with after. */
void ot_mstore_sweep_stop_(ot_mstore_sweep *w);
int ot_mstore_sweep_start_(ot_mstore_sweep *w, ot_mstore *st, int64_t interval_ns, ot_err *err);

#endif
