/* dsdr.h: the DogStatsD receiver's parts as they see each other: its
 * config, and the aggregator (agg.c, flush.c) that the socket side
 * (dogstatsd.c) feeds and that unit tests drive without sockets.
 *
 * Aggregation is sharded per reader thread so that no line takes a lock
 * shared with another reader: each reader is the one writer of its own
 * metric stream stores. Each stream keeps two slots, one per interval
 * parity; the flush thread closes interval E by moving the global epoch to
 * E+1, waits until no reader is still inside a callback that started in E
 * (at most one recvmmsg batch), then reads slot E&1 of every stream of
 * every shard, stripe by stripe, merges equal series across shards and
 * hands the points on in chunks of a bounded size.
 * A reader only touches slot E&1 again in interval E+2, after that flush
 * has finished, so the flusher reads it without a lock. */
#ifndef OT_DSDR_H
#define OT_DSDR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include "base/buf.h"
#include "base/err.h"
#include "store/mstore.h"
#include "config/config.h"
#include "model/batch.h"
#include "parse.h"

enum { DSDR_UDP = 0, DSDR_UNIXGRAM = 1, DSDR_UNIX = 2 };
enum { DSDR_DELTA = 0, DSDR_CUMULATIVE = 1 };
enum { DSDR_SUMMARY = 0, DSDR_HISTOGRAM = 1, DSDR_EXPHIST = 2 };

typedef struct dsdr_cfg {
    ot_endpoint endpoint;
    int transport;
    const char *socket_path;
    const char *socket_permissions_text; /* octal, checked by validate */
    int64_t readers;
    uint64_t receive_buffer_bytes;
    int64_t max_packet_size;
    int64_t aggregation_interval;
    int counter_temporality;
    int timer_histogram_mapping;
    ot_strlist explicit_bounds;
    bool relative_gauges;
    bool enable_metric_type_attribute;
    int64_t max_series;
    uint64_t max_sample_bytes;
} dsdr_cfg;

/* Samples of ms/h/d kept per series, per reader, per interval; beyond it
 * the kept ones are a uniform sample (count, sum, min, max stay exact). */
#define DSDR_MAX_SAMPLES 16384
/* Bytes of timestamped lines (|T) a reader holds until the next flush. */
#define DSDR_MAX_TS_BYTES (4u << 20)
#define DSDR_EXP_MAX_BUCKETS 160

/* The shared sample budget: bytes held by accumulators, and samples
 * offered past an accumulator's room (replaced in or dropped from the
 * reservoir), for self-telemetry. */
typedef struct dsdr_budget {
    _Atomic int64_t held;
    _Atomic uint64_t sampled;
} dsdr_budget;

typedef struct dsdr_agg_opts {
    unsigned readers;
    int64_t interval_ns;
    int temporality;       /* DSDR_DELTA / DSDR_CUMULATIVE (counters) */
    int mapping;           /* ms and h */
    const double *bounds;  /* DSDR_HISTOGRAM, ascending */
    size_t n_bounds;
    /* A relative gauge adjusts the value its own reader's stream holds:
     * with several readers, the kernel gives each sending socket one
     * reader (SO_REUSEPORT hashes the address pair), so one sender's
     * adjustments are exact; a gauge set by one sender and adjusted by
     * another may start from another reader's value, and the flush takes
     * the value written last in wall time across the readers. */
    bool relative_gauges;
    bool metric_type_attr;
    size_t max_series;     /* 0: no cap; over every reader's shard together */
    /* Bytes of kept ms/h/d samples over every reader (0: no budget). An
     * accumulator that would grow past it stops growing and keeps a
     * uniform sample of what it was offered at its current size; count,
     * sum, min and max stay exact. The counters live in dsdr_agg; the
     * readers reach them through budget (set by ot_dsdr_agg_new). */
    uint64_t max_sample_bytes;
    struct dsdr_budget *budget;
    int64_t start_unix_ns; /* the start of the first delta interval */
} dsdr_agg_opts;

typedef struct dsdr_agg dsdr_agg;

/* ---- points of the sampled types (points.c) ------------------------------ */

struct dsdr_slot;
/* Built in ar from a slot's samples (the summary sorts them in place);
 * times and attributes are the caller's. NULL on out-of-memory. */
ot_summary_point *ot_dsdr_summary_point(ot_arena *ar, struct dsdr_slot *s);
ot_histogram_point *ot_dsdr_histogram_point(ot_arena *ar, const double *bounds, size_t nb,
                                            const struct dsdr_slot *s);
ot_exphistogram_point *ot_dsdr_exp_point(ot_arena *ar, const struct dsdr_slot *s);

/* One pair of an identity: tag key/value slices. */
typedef struct dsdr_pair {
    ot_dsd_str k, v;
} dsdr_pair;

typedef struct dsdr_agg_stats {
    uint64_t series;      /* live, summed over shards */
    uint64_t refused;     /* new series refused by max_series */
    uint64_t ts_dropped;  /* timestamped lines over DSDR_MAX_TS_BYTES */
    uint64_t sampled;     /* ms/h/d samples past an accumulator's room */
    int64_t sample_bytes; /* held by accumulators now */
} dsdr_agg_stats;

dsdr_agg *ot_dsdr_agg_new(const dsdr_agg_opts *o, ot_err *err);
void ot_dsdr_agg_free(dsdr_agg *a);

/* Reader `r` brackets each callback with begin/end; between them it adds
 * metric items. unix_ns is the wall clock (for timestamps), mono_ns the
 * store clock. Returns -1 when the series was refused (cap) or memory ran
 * out, 0 otherwise. */
void ot_dsdr_agg_begin(dsdr_agg *a, unsigned r, int64_t unix_ns, int64_t mono_ns);
int ot_dsdr_agg_add(dsdr_agg *a, unsigned r, const ot_dsd_item *it);
/* The same through the look-ahead (see dsdr_ahead): the item may be added
 * later, within the callback, and what is returned is how many of the
 * items added during this call (this one or earlier ones) failed as
 * ot_dsdr_agg_add's -1. The item's strings must stay valid until
 * ot_dsdr_agg_end. */
unsigned ot_dsdr_agg_push(dsdr_agg *a, unsigned r, const ot_dsd_item *it);
/* Adds what the look-ahead holds and ends the callback; returns how many
 * of those failed. */
unsigned ot_dsdr_agg_end(dsdr_agg *a, unsigned r);

/* Closes the interval and hands every point aggregated since the last
 * flush to fn as batches of at most about max_points points (a stripe's
 * share of the series more at worst), each with the caller's reference,
 * on the calling thread, one after the other; then drops series idle too
 * long. The flush holds one chunk and one stripe of series, not the whole
 * interval. *npoints: the points handed over. -1 with err on
 * out-of-memory (what was handed over stays handed). Flush thread only. */
typedef void (*dsdr_chunk_fn)(void *ctx, ot_batch *b);
int ot_dsdr_agg_flush_chunks(dsdr_agg *a, int64_t unix_ns, int64_t mono_ns, size_t max_points,
                             dsdr_chunk_fn fn, void *ctx, size_t *npoints, ot_err *err);
/* The same as one batch (NULL with *npoints 0 when there is none, or on
 * out-of-memory with err set): for tests and small intervals. */
ot_batch *ot_dsdr_agg_flush(dsdr_agg *a, int64_t unix_ns, int64_t mono_ns, size_t *npoints,
                            ot_err *err);
void ot_dsdr_agg_stats(dsdr_agg *a, dsdr_agg_stats *out);

/* ---- events and service checks as log records (events.c) --------------- */

/* The log records of one reader callback, built in one arena. */
typedef struct dsdr_logs {
    ot_arena *ar;
    void **v; /* ot_resource_logs * */
    size_t n, cap;
    char *unesc;    /* room for unescaping one line */
    size_t unesc_cap;
    dsdr_pair *res, *attrs;
} dsdr_logs;

/* Adds an event or service check as a record; -1 on out-of-memory. */
int ot_dsdr_logs_add(dsdr_logs *l, const ot_dsd_item *it, int64_t now_unix_ns);
/* The records so far as one logs batch (NULL when none or on
 * out-of-memory); the builder is empty again afterwards. */
ot_batch *ot_dsdr_logs_take(dsdr_logs *l, size_t *n);
void ot_dsdr_logs_free(dsdr_logs *l);

/* ---- shared by agg.c, cstate.c and flush.c ----------------------------- */

typedef struct dsdr_sample {
    double v, w; /* value and weight (1 / sample rate) */
} dsdr_sample;

/* A series' interval as the flush holds it once the readers' slots are
 * merged (and what the point builders of points.c read). */
typedef struct dsdr_slot {
    uint64_t epoch;     /* nonzero: the entry has data for the interval */
    double sum;         /* counter: sum of value/rate; samples: sum of v*w */
    double count;       /* samples: sum of weights */
    double gauge;       /* gauge: the last value */
    int64_t last_unix_ns; /* the last update (gauges merge by it) */
    double min, max;
    uint64_t seen;      /* unused by the flush */
    union {
        dsdr_sample *samples; /* ms h d */
        uint64_t *set;        /* s: open-addressing table of member hashes */
    } u;
    uint32_t n, cap;    /* samples kept / set members; allocated entries */
} dsdr_slot;

/* A flush entry: one series merged over the readers. */
typedef struct dsdr_state {
    uint8_t type;       /* ot_dsd_type */
    bool cum_live;      /* cumulative counter with a first sample */
    double cum;         /* cumulative counter total */
    int64_t cum_start_unix_ns;
    dsdr_slot slot[1];
} dsdr_state;

static inline bool dsdr_small_type(int type)
{
    return type == OT_DSD_COUNTER || type == OT_DSD_GAUGE;
}

/* ---- what a reader keeps per series (cstate.c) -------------------------- */

/* A sampled slot's samples once it has more than one in an interval. */
typedef struct dsdr_acc {
    double sum, count, min, max; /* exact, past the kept samples too */
    uint64_t seen;               /* samples offered (reservoir) */
    uint32_t n, cap;
    dsdr_sample s[];
} dsdr_acc;

#define DSDR_F_CUM_LIVE 1  /* counter: has a first sample (cum_start set) */
#define DSDR_F_GAUGE_HAS 2 /* gauge: cur is set (relative gauges) */

/* A stream's state in the readers' stores: the slot of epoch E is E & 1;
 * epoch[w] is the interval slot w holds (0: none yet; epochs compare in
 * 32 bits, and a series idle for 2^32 intervals has long expired). Only
 * the member of u for the type is allocated (ot_dsdr_cstate_size). */
typedef struct dsdr_cstate {
    uint32_t epoch[2];
    uint8_t type; /* ot_dsd_type; part of the identity, never changes */
    uint8_t flags;
    union {
        struct {
            double sum[2], cum;
            int64_t cum_start; /* unix ns of the first sample */
        } c;
        struct {
            double v[2];
            int64_t last[2]; /* unix ns of the last update (merging readers) */
            double cur;
        } g;
        struct {
            uint64_t *t[2]; /* open-addressing tables of member hashes */
            uint32_t n[2], cap[2];
        } s;
        struct {
            dsdr_acc *acc[2];
            dsdr_sample one[2]; /* the first sample while acc is NULL; w 0: none */
        } h;
    } u;
} dsdr_cstate;

size_t ot_dsdr_cstate_size(int type);
/* Adds one metric item to slot w of cs for epoch (resetting the slot when
 * it holds another); -1 on out-of-memory. */
int ot_dsdr_cstate_add(const dsdr_agg_opts *o, dsdr_cstate *cs, unsigned w, uint64_t epoch,
                       const ot_dsd_item *it, int64_t unix_ns, uint64_t *rng);
/* Merges slot w of cs (when has: it holds the closed interval) and the
 * running counter total into a flush entry's full state (slot 0). */
int ot_dsdr_cstate_merge(dsdr_state *m, const dsdr_cstate *cs, unsigned w, bool has);
void ot_dsdr_cstate_free(const dsdr_agg_opts *o, dsdr_cstate *cs);
/* Inserts h into an open-addressing table of nonzero hashes (grows it);
 * -1 on out-of-memory. */
int ot_dsdr_table_insert(uint64_t **t, uint32_t *n, uint32_t *cap, uint64_t h);

/* Inserts h into a slot's set table (grows it); -1 on out-of-memory. */
int ot_dsdr_set_insert(dsdr_slot *s, uint64_t h);
void ot_dsdr_slot_free(dsdr_slot *s);
/* The flush's half of the epoch protocol: moves to the next epoch, waits
 * until no reader still writes the old one, and returns the old one. */
uint64_t ot_dsdr_agg_close_epoch(dsdr_agg *a);

/* Splits an item's tags into resource pairs (OTLP keys) and point
 * attribute pairs; both arrays hold OT_DSD_MAX_TAGS + 1 entries. Later
 * duplicates win. */
void ot_dsdr_split_tags(const ot_dsd_item *it, dsdr_pair *res, size_t *nres, dsdr_pair *attrs,
                        size_t *nattrs);

/* A reader's cache of built stream keys, by the line's identity text
 * (name, type, tags as written, container id): a series seen again skips
 * splitting, sorting, copying and encoding its tags. Four-way set
 * associative, the least recently used way replaced: with two ways, series
 * that cycle (every sender reports each series once per interval) thrashed
 * the sets that three or more hashed to, a third of 10k series missing on
 * every line. An entry is one allocation: its header, the identity text,
 * then the canonical key bytes, lent to the store on a hit. */
#define DSDR_KCACHE 32768
#define DSDR_KCACHE_WAYS 4
#define DSDR_KCACHE_RAW 512
typedef struct dsdr_kent {
    uint64_t h; /* of the identity text */
    uint32_t rn, kn, cap;
    uint32_t base_len;
    uint64_t base_hash, hash, base_id;
    char text[]; /* identity [0, rn), then the key bytes [rn, rn + kn) */
} dsdr_kent;
/* A set is one cache line: the ways' tags (high half of h), their ages
 * (the shard's use count at the last hit or fill, compared as an age, so
 * its wrapping is harmless) and the entries. A lookup reads this line,
 * then the one entry whose tag matches: two memory loads a line, both of
 * which the look-ahead below fetches early. */
typedef struct dsdr_kset {
    _Alignas(64) uint32_t tag[DSDR_KCACHE_WAYS];
    uint32_t used[DSDR_KCACHE_WAYS];
    dsdr_kent *e[DSDR_KCACHE_WAYS]; /* NULL: empty */
} dsdr_kset;

/* The look-ahead. With 10k series or more, nearly every line's cache set,
 * cache entry, store slot and stream are cache misses, one after the
 * other, and a reader spent most of its time waiting on them. Lines are
 * instead queued a few at a time: a line's loads are started (prefetched)
 * when it joins the queue and as it moves along, and it is added when it
 * leaves, by which time they have arrived. Items keep pointing into the
 * datagrams, which live until the end of the reader's callback; the queue
 * is drained by then (ot_dsdr_agg_end). Only single-valued metric lines
 * are queued (their one value is copied in); others are added at once,
 * after the queue, so that lines of a series are added in their order. */
#define DSDR_AHEAD 8
typedef struct dsdr_ahead {
    ot_dsd_item it;
    double value;
    uint8_t sign;
    int8_t way;       /* the set's way whose tag matched, -1 none (yet) */
    uint32_t rn;      /* identity length, 0: too long to cache */
    uint64_t rh;      /* identity hash */
    dsdr_kset *set;
} dsdr_ahead;

typedef struct dsdr_shard {
    ot_mstore *st[2]; /* [0] counters, [1] the other types: their idle limits differ */
    ot_mstore_key key;
    _Atomic uint64_t busy; /* the epoch of the callback running, 0 between callbacks */
    uint64_t epoch;
    int64_t unix_ns, mono_ns;
    uint64_t rng;
    ot_buf scratch;         /* NUL-terminated copies of an item's strings */
    dsdr_pair *res, *attrs; /* OT_DSD_MAX_TAGS + 1 each */
    dsdr_kset *ks;          /* DSDR_KCACHE / DSDR_KCACHE_WAYS sets */
    uint32_t kc_uses;
    dsdr_ahead *ahead;      /* DSDR_AHEAD, a ring */
    unsigned ahead_head, ahead_n;
    pthread_mutex_t ts_lock; /* timestamped lines, handed to the flush */
    ot_buf ts_lines;         /* u32 length, then the line, repeated */
    uint64_t ts_dropped;
    char pad_[64];
} dsdr_shard;

struct dsdr_agg {
    dsdr_agg_opts o;
    unsigned n;
    dsdr_shard *sh;
    _Atomic uint64_t epoch;
    int64_t last_flush_unix_ns;
    _Atomic uint64_t ts_dropped;
    /* live series over every shard (inserted, not yet removed) for
     * max_series, and the new ones it refused */
    _Atomic size_t live;
    _Atomic uint64_t refused;
    dsdr_budget budget;
};

#endif
