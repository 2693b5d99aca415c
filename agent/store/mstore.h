/* mstore.h: the metric stream store. Components that keep state per metric
 * stream across batches (the DogStatsD receiver's aggregation, the
 * Prometheus exporter's cumulative sums, the Datadog exporter's deltas)
 * share it, so identity, expiry, limits and locking are written once.
 *
 * Identity. A stream is: resource attributes, scope name and version,
 * metric name, unit, type, temporality, monotonicity (sums) and the point
 * attributes. An ot_mstore_key turns that into canonical bytes and a 64-bit
 * hash in two steps: the resource+scope+metric part once per metric
 * (ot_mstore_key_otlp or ot_mstore_key_base), then the point attributes per
 * point (ot_mstore_key_point or ot_mstore_key_point_strs), which rewrites
 * only the point part and hashes only it, seeded by the first part's hash.
 * Attribute lists (and nested kvlists) are sorted, so order does not
 * matter; every value carries its type, so "1" and 1 differ; arrays keep
 * their order. The hash only picks a slot: on a hash hit the store
 * compares the canonical bytes, so two different streams never merge.
 * A string attribute built from plain strings (DogStatsD tags) encodes the
 * same as an OTLP string attribute.
 *
 * Threads. One writer (ot_mstore_get / ot_mstore_put) and any number of
 * readers (ot_mstore_visit) and one expiring thread (ot_mstore_expire, or
 * the sweeper thread) at the same time. Streams live in 256 stripes, each
 * with its own short lock and hash table; a reader or an expiry pass holds
 * one stripe at a time, for a copy of that stripe's streams, so the writer
 * waits at most for one stripe's worth of memcpy, and a visitor sees each
 * stream's state as the writer left it at an ot_mstore_put, never
 * half-updated. ot_mstore_index and ot_mstore_visit_hashes hold a stripe
 * the same way (one stripe's hashes; a few hundred lookups). A reader or
 * expiry that drops a stripe the writer waited for yields the CPU, so on a
 * shared core the writer waits for the hold, not the reader's time slice.
 *
 * Time is the caller's: every call takes now_ns on one clock (ot_now_ns,
 * which the sweeper uses), read once per batch rather than per point. */
#ifndef OT_MSTORE_H
#define OT_MSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "model/otlp.h"

/* ---- identity ---------------------------------------------------------- */

typedef enum ot_mstore_type {
    OT_MSTORE_NONE = 0,
    OT_MSTORE_GAUGE = 1,
    OT_MSTORE_SUM = 2,
    OT_MSTORE_HISTOGRAM = 3,
    OT_MSTORE_EXP_HISTOGRAM = 4,
    OT_MSTORE_SUMMARY = 5,
} ot_mstore_type;

/* The metric part of an identity from the caller's own data. NULL strings
 * are "". temporality uses OTLP's AggregationTemporality numbers (0 for
 * gauges and summaries); monotonic counts for sums only. */
typedef struct ot_mstore_metric {
    const char *name;
    const char *unit;
    ot_mstore_type type;
    int temporality;
    bool monotonic;
    const char *scope_name;
    const char *scope_version;
} ot_mstore_metric;

/* A stream identity being built. Owned by the caller (one per writer),
 * reused across metrics and points; ot_mstore_key_free releases it. */
typedef struct ot_mstore_key {
    ot_buf buf;         /* base bytes [0, base_len), then the point part */
    ot_buf tmp;         /* scratch for sorting attribute lists */
    size_t base_len;
    uint64_t base_hash; /* of the base bytes */
    uint64_t hash;      /* of the whole identity, once a point part is set */
    /* The store's id of the shared identity these base bytes last matched
     * (ids are never reused), so a hit compares 8 bytes, not the base. */
    uint64_t base_id;
} ot_mstore_key;

#define OT_MSTORE_KEY_INIT {OT_BUF_INIT, OT_BUF_INIT, 0, 0, 0, 0}

/* Sets the resource+scope+metric part from OTLP structs (any may be NULL)
 * and clears the point part. -1 on out-of-memory. */
int ot_mstore_key_otlp(ot_mstore_key *k, const ot_resource *res, const ot_scope *scope,
                       const ot_metric *m);
/* The same from the caller's data: resource attributes as string pairs
 * (n may be 0). */
int ot_mstore_key_base(ot_mstore_key *k, const char *const *res_keys,
                       const char *const *res_vals, size_t n_res, const ot_mstore_metric *m);
/* Sets the point attributes (replacing the previous point's) and k->hash. */
int ot_mstore_key_point(ot_mstore_key *k, ot_keyvalue *const *attrs, size_t n);
/* The same with string-valued attributes from the caller's data. */
int ot_mstore_key_point_strs(ot_mstore_key *k, const char *const *keys,
                             const char *const *vals, size_t n);
void ot_mstore_key_free(ot_mstore_key *k);

/* 64-bit hash of bytes (seeded); what the key uses, exported for tests. */
uint64_t ot_mstore_hash(const void *p, size_t n, uint64_t seed);

/* ---- the store --------------------------------------------------------- */

typedef struct ot_mstore ot_mstore;

/* A stream as the store keeps it. Read-only for users; state is the user
 * state (8-byte aligned, zeroed at insert). */
typedef struct ot_mstore_stream {
    uint64_t hash;
    int64_t first_ns;          /* when it was inserted */
    int64_t last_ns;           /* the last ot_mstore_get */
    uint32_t state_size;
    uint32_t id_len;           /* point part of the identity, after state */
    const struct ot_mstore_base *base; /* resource+scope+metric, shared */
    _Alignas(8) unsigned char state[];
} ot_mstore_stream;

typedef enum ot_mstore_why {
    OT_MSTORE_EXPIRED = 0, /* idle for max_idle */
    OT_MSTORE_DROPPED = 1, /* ot_mstore_put(..., true) */
    OT_MSTORE_CLOSED = 2,  /* ot_mstore_free */
} ot_mstore_why;

/* Called once for every stream the store removes, with its stripe locked:
 * free what the state points to; do not call into the store. */
typedef void (*ot_mstore_remove_fn)(void *ctx, ot_mstore_stream *s, ot_mstore_why why);

typedef struct ot_mstore_opts {
    size_t state_size;   /* user state per stream unless ot_mstore_get asks otherwise */
    size_t max_streams;  /* live streams; 0 = no cap */
    size_t max_bytes;    /* ot_mstore_bytes; 0 = no cap (a new shared metric
                          * identity or table growth may pass it by one block) */
    int64_t max_idle_ns; /* ot_mstore_expire removes streams idle this long; 0 = never */
    ot_mstore_remove_fn on_remove; /* may be NULL */
    void *ctx;
    /* Memory per stream, for stores of very many (a scrape endpoint).
     * shared_keys: each point attribute key list is kept once per store
     * (refcounted) and a stream holds only its values and a pointer to
     * its list; lookups cost a split of the point part. slab: streams of
     * up to OT_MSTORE_SLAB_MAX bytes come from pages of one size class
     * (no malloc header, 8-byte rounding, not 16); a page goes back when
     * its last stream does. Neither changes what a reader sees. */
    bool shared_keys;
    bool slab;
} ot_mstore_opts;

#define OT_MSTORE_SLAB_MAX 512
#define OT_MSTORE_SLAB_PAGE (64 * 1024)

ot_mstore *ot_mstore_new(const ot_mstore_opts *o, ot_err *err);
/* Stops the sweeper, removes every stream (on_remove with CLOSED), frees. */
void ot_mstore_free(ot_mstore *st);

typedef enum ot_mstore_res {
    OT_MSTORE_ERR = -1,    /* out of memory; nothing held */
    OT_MSTORE_FOUND = 0,   /* held: update ref->stream->state, then ot_mstore_put */
    OT_MSTORE_NEW = 1,     /* held, state zeroed */
    OT_MSTORE_REFUSED = 2, /* a new stream over max_streams / max_bytes; counted, nothing held */
} ot_mstore_res;

typedef struct ot_mstore_ref {
    ot_mstore_stream *stream;
    void *state; /* stream->state */
    void *stripe_;
} ot_mstore_ref;

/* Finds the stream of k (after ot_mstore_key_point) or inserts it, sets
 * its last_ns to now_ns and holds its stripe until ot_mstore_put. Writer
 * thread only, one held at a time; k remembers which shared identity it
 * matched. state_size: of a new stream, 0 for the
 * store's default (a histogram can size its bucket array here). */
ot_mstore_res ot_mstore_get(ot_mstore *st, ot_mstore_key *k, int64_t now_ns,
                            size_t state_size, ot_mstore_ref *ref);
/* Starts loading the table slot ot_mstore_get will probe first for a
 * key of this hash, so that a writer with several lookups ahead can have
 * their cache misses overlap instead of waiting on each in turn. Writer
 * thread only (the table's address and size change only on its inserts);
 * a hint, never a fault. */
void ot_mstore_prefetch(const ot_mstore *st, uint64_t hash);
/* Releases a held stream; drop removes it (on_remove with DROPPED). */
void ot_mstore_put(ot_mstore *st, ot_mstore_ref *ref, bool drop);
/* Makes a held stream's state state_size bytes, keeping its state bytes,
 * identity and times (the bytes added are zeroed): for a stream that
 * turns out to need more room than its first point did (an exemplar that
 * comes later). The stream moves: ref points at it after. A size not
 * larger does nothing. -1 on out-of-memory or when max_bytes would be
 * passed; the stream is then as it was, still held. Writer thread, while
 * the stream is held. */
int ot_mstore_grow(ot_mstore *st, ot_mstore_ref *ref, size_t state_size);

/* Removes streams whose last_ns is max_idle_ns or more before now_ns,
 * calling on_remove (EXPIRED) for each. Any thread. Returns how many. */
size_t ot_mstore_expire(ot_mstore *st, int64_t now_ns);
/* A thread that runs ot_mstore_expire(ot_now_ns()) every interval_ns until
 * ot_mstore_free. */
int ot_mstore_sweeper_start(ot_mstore *st, int64_t interval_ns, ot_err *err);

/* Calls fn for every stream with a copy of it taken under its stripe's
 * lock (state as of an ot_mstore_put, identity readable with
 * ot_mstore_stream_info); fn itself runs with no lock held, so it may be
 * slow without stalling the writer, and the copy is valid only during the
 * call. fn returning nonzero stops the walk, and that value is returned.
 * Any thread. */
typedef int (*ot_mstore_visit_fn)(void *ctx, const ot_mstore_stream *s);
int ot_mstore_visit(ot_mstore *st, ot_mstore_visit_fn fn, void *ctx);

/* A stream's stripe is its hash >> 56, one of OT_MSTORE_STRIPES; the key
 * hash does not depend on the store, so one identity has the same stripe
 * in every store. A reader that merges stores keyed alike (one per writer
 * thread) can walk them side by side a stripe at a time and hold only
 * that stripe's share of the streams. */
#define OT_MSTORE_STRIPES 256
/* ot_mstore_visit for the streams of stripe k (0 .. OT_MSTORE_STRIPES - 1)
 * alone; the same copies, the same locking. */
int ot_mstore_visit_stripe(ot_mstore *st, size_t k, ot_mstore_visit_fn fn, void *ctx);

/* What a scrape-sized reader needs to group streams before it reads them
 * (a Prometheus scrape must send a family's series together, and the store
 * keeps them in hash order): a cheap first walk that copies only each
 * stream's hash and shared-identity id, then lookups by hash. */
typedef struct ot_mstore_idx {
    uint64_t hash;
    uint64_t base_id; /* as ot_mstore_stream_base_id */
} ot_mstore_idx;

/* Calls fn once per stripe with the (hash, base id) of its streams, taken
 * under its lock (16 bytes a stream, no stream copied); fn runs with no
 * lock held. Stripes come in order, so hashes come grouped by stripe.
 * fn returning nonzero stops the walk and is returned; -1 on out of
 * memory. Any thread. */
int ot_mstore_index(ot_mstore *st, int (*fn)(void *ctx, const ot_mstore_idx *v, size_t n),
                    void *ctx);
/* Calls fn, as ot_mstore_visit does (copies, no lock held), for every
 * stream whose hash is one of hashes[0, n). Consecutive hashes of one
 * stripe (hash >> 56, as ot_mstore_index gives them) are looked up under
 * one hold of its lock. A stream gone since is skipped; a hash shared by
 * two streams visits both, and a hash given twice visits twice. */
int ot_mstore_visit_hashes(ot_mstore *st, const uint64_t *hashes, size_t n,
                           ot_mstore_visit_fn fn, void *ctx);
/* The copies a visit by hashes makes, kept by a reader that visits again
 * and again (a scrape: a few hundred hashes a call), so each call reuses
 * the memory of the last. Zero-initialise; ot_mstore_scratch_free. */
typedef struct ot_mstore_scratch {
    ot_buf data, offs;
} ot_mstore_scratch;
int ot_mstore_visit_hashes_with(ot_mstore *st, ot_mstore_scratch *sc, const uint64_t *hashes,
                                size_t n, ot_mstore_visit_fn fn, void *ctx);
void ot_mstore_scratch_free(ot_mstore_scratch *sc);

typedef struct ot_mstore_stats {
    size_t streams;
    size_t bytes;      /* as ot_mstore_bytes */
    uint64_t inserted; /* ever */
    uint64_t refused;  /* new streams refused by the caps */
    uint64_t removed;  /* expired, dropped */
} ot_mstore_stats;

/* The times the calling thread found a stripe locked (by any store) and
 * waited: how many, in all and the longest. A writer's figures say how
 * long readers (a scrape) and expiry held it up. */
typedef struct ot_mstore_waits {
    uint64_t n, total_ns, max_ns;
} ot_mstore_waits;
void ot_mstore_waits_get(ot_mstore_waits *out);

/* Bytes the store holds from malloc: streams (with identity and state),
 * shared metric identities, tables; with slab, the pages rather than the
 * streams in them. */
size_t ot_mstore_bytes(const ot_mstore *st);
void ot_mstore_stats_get(const ot_mstore *st, ot_mstore_stats *out);

/* ---- reading an identity back ------------------------------------------ */

typedef struct ot_mstore_str {
    const char *p; /* not NUL-terminated */
    size_t n;
} ot_mstore_str;

/* Walks an encoded attribute list or array. */
typedef struct ot_mstore_iter {
    const uint8_t *p;
    const uint8_t *end;
    size_t left;
    /* A list kept apart from its values (shared_keys): keys come from
     * here, values from p. NULL otherwise. */
    const uint8_t *kp, *kend;
} ot_mstore_iter;

/* One value: type is an OTLP AnyValue value_case number (0 for none). */
typedef struct ot_mstore_val {
    int type;
    ot_mstore_str s;   /* string, bytes */
    int64_t i;
    double d;
    bool b;
    ot_mstore_iter sub; /* array values, or kvlist entries */
} ot_mstore_val;

typedef struct ot_mstore_info {
    ot_mstore_str name, unit, scope_name, scope_version;
    ot_mstore_type type;
    int temporality;
    bool monotonic;
    ot_mstore_iter resource; /* key/value pairs, in canonical order */
    ot_mstore_iter attrs;    /* point attributes, in canonical order */
} ot_mstore_info;

void ot_mstore_stream_info(const ot_mstore_stream *s, ot_mstore_info *out);
/* The id of the stream's shared resource+scope+metric identity (on visit
 * copies too): equal ids, equal identity bytes; ids are never reused, so a
 * reader can cache what it derives from a base by id. */
uint64_t ot_mstore_stream_base_id(const ot_mstore_stream *s);
/* Only the point attributes (ot_mstore_stream_info decodes the resource
 * too, which a reader that caches per base id does not need). */
void ot_mstore_stream_attrs(const ot_mstore_stream *s, ot_mstore_iter *out);
/* Next attribute of a list (resource, attrs, a kvlist's sub); false at the end. */
bool ot_mstore_next_kv(ot_mstore_iter *it, ot_mstore_str *key, ot_mstore_val *v);
/* Next value of an array's sub. */
bool ot_mstore_next_val(ot_mstore_iter *it, ot_mstore_val *v);
/* The next n values of a list kept apart from its keys (it->kp set: a
 * reader that has matched the keys already). A string or integer value
 * sets only type and s or i; other types are read as ot_mstore_next_kv
 * reads them. false, and nothing read, without a key list or n values. */
bool ot_mstore_next_vals(ot_mstore_iter *it, ot_mstore_val *v, size_t n);

#endif
