/* lb.h: what the files of the `loadbalancing` exporter share, and nothing
 * else includes: the consistent-hash ring (ring.c), the split of a request
 * by routing key on its protobuf bytes (route.c), the DNS client (dns.c),
 * the EndpointSlice reader (k8s_parse.c), the resolvers (resolver.c,
 * k8s.c) and the backends with their queues (backend.c, lb.c). */
#ifndef OT_LB_H
#define OT_LB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/backoff.h"
#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "model/batch.h"
#include "model/consumer.h"
#include "model/otlp.h"

/* ---- hashing and the ring (ring.c) --------------------------------------- */

uint64_t lb_hash(const void *p, size_t n, uint64_t seed);

/* Points per backend: enough that removing one of three moves close to a
 * third of the keys (the collector uses a few hundred too). */
#define LB_RING_POINTS 256

#define LB_RING_BITS 12
#define LB_RING_BUCKETS (1u << LB_RING_BITS)

typedef struct lb_ring {
    size_t n_backends;
    size_t n_points;
    uint64_t *pos;    /* sorted */
    uint32_t *owner;  /* index into the endpoints the ring was made from */
    uint32_t *bucket; /* LB_RING_BUCKETS + 1 indexes into pos, by top bits */
} lb_ring;

/* The ring of n endpoints (their index is what lookups return). NULL on
 * out of memory. A ring depends only on the endpoint names, not on their
 * order. */
lb_ring *lb_ring_new(const char *const *endpoints, size_t n);
void lb_ring_free(lb_ring *r);
/* The backend that owns key hash h; n_backends must be > 0. */
uint32_t lb_ring_get(const lb_ring *r, uint64_t h);

/* ---- routing (route.c) --------------------------------------------------- */

typedef enum lb_key {
    LB_KEY_TRACEID = 0,
    LB_KEY_SERVICE,
    LB_KEY_RESOURCE,
    LB_KEY_METRIC,
    LB_KEY_STREAMID,
} lb_key;

/* Whether routing key k can route signal s. */
bool lb_key_valid(ot_signal s, lb_key k);

/* One backend's share: wire == NULL means the whole request, unchanged
 * (every item went to this backend). Returns 0 or -1 to stop. */
typedef int (*lb_emit_fn)(void *ctx, uint32_t backend, const uint8_t *wire, size_t len,
                          size_t items);

/* Where a share is written: len bytes that the emit call that follows
 * gets as its wire (so a share can be written straight into the memory of
 * the batch it becomes). NULL: out of memory. */
typedef uint8_t *(*lb_alloc_fn)(void *ctx, size_t len);

/* Splits an Export*ServiceRequest (already checked by the receiver) into
 * one request per backend of ring, each keeping the resource and scope of
 * its items. Nothing below the routing key's level is parsed. Shares are
 * written where alloc says, or (alloc NULL) into a buffer that lives until
 * emit returns. -1 with err when the bytes do not parse or on out of
 * memory, or what emit returned. */
int lb_route(ot_signal s, lb_key key, const lb_ring *ring, const uint8_t *wire, size_t len,
             lb_alloc_fn alloc, lb_emit_fn emit, void *ctx, ot_err *err);

/* ---- the exporter (lb.c) and its backends (backend.c) --------------------- */

#include "export/exphelper.h"
#include "pipeline/factory.h"
#include "pipeline/subcomp.h"
#include "telemetry/telemetry.h"

typedef struct lb_static_cfg {
    bool present;
    ot_strlist hostnames;
} lb_static_cfg;

typedef struct lb_dns_cfg {
    bool present;
    const char *hostname;
    int64_t port;
    int64_t interval, timeout; /* ns */
    const char *nameserver;    /* host:port; "" = the first of /etc/resolv.conf */
} lb_dns_cfg;

typedef struct lb_k8s_cfg {
    bool present;
    const char *service; /* name.namespace */
    ot_strlist ports;
    const char *api_server; /* "" = https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT */
    const char *token_file, *ca_file;
    int64_t timeout;
} lb_k8s_cfg;

typedef struct lb_cfg {
    const char *routing_key; /* "" = traceID for traces and logs, service for metrics */
    struct {
        const ot_node *otlp;
    } protocol;
    struct {
        lb_static_cfg stat;
        lb_dns_cfg dns;
        lb_k8s_cfg k8s;
    } resolver;
    ot_exph_queue_cfg queue;
    ot_exph_retry_cfg retry;
} lb_cfg;

typedef struct lb lb;
typedef struct lb_backend lb_backend;

struct lb_backend {
    lb *owner;
    char *endpoint;
    ot_subcomp *exp;
    ot_consumer *cons[OT_SIGNAL_COUNT];
    /* The queue: a ring of batches, guarded by the exporter's mu. */
    ot_batch **q;
    size_t qcap, head, count, bytes;
    pthread_cond_t cv;
    bool removed;  /* left the resolver: the senders hand back what they hold */
    bool stopping; /* shutdown: drain until the deadline */
    pthread_t *thr;
    size_t nthr;
    ot_counter *sent, *failed, *retries;
    ot_gauge *queued;
    _Atomic int64_t last_warn; /* drops are logged at most every 10 s */
};

struct lb {
    char *id;
    const lb_cfg *cfg;
    ot_host *host;
    lb_key key[OT_SIGNAL_COUNT];
    struct lb_cons {
        ot_consumer base;
        lb *e;
    } cons[OT_SIGNAL_COUNT];

    /* Readers (consume, re-route) hold ring_lock for reading while they use
     * ring and bk; a change of backends holds it for writing. */
    pthread_rwlock_t ring_lock;
    lb_ring *ring;
    lb_backend **bk; /* in ring order (sorted by endpoint) */
    size_t nbk;
    pthread_mutex_t set_mu; /* one change of backends at a time */

    pthread_mutex_t mu; /* every backend queue, orphans, the byte count */
    size_t queued_batches, queued_bytes;
    bool stopping;
    int64_t deadline;
    ot_batch **orphans; /* re-routed while no backend was there */
    size_t n_orphans, cap_orphans;

    /* resolvers (resolver.c, k8s.c) */
    pthread_t res_thr;
    bool res_running;
    pthread_mutex_t res_mu;
    pthread_cond_t res_cv;
    bool res_stop;
    void *k8s; /* k8s.c's state */

    ot_gauge *tel_backends;
    ot_counter *tel_ring_changes, *tel_rerouted, *tel_dropped;
};

/* Replaces the set of backends by endpoints[0..n) ("host:port"): new ones
 * are created and started, kept ones keep their queue, and what the removed
 * ones held is routed again over the new ring. Safe from any thread. */
void lb_set_backends(lb *e, const char *const *endpoints, size_t n);
/* Routes batch b (one reference taken) over the current ring without the
 * queue bounds: for data that was already accepted once. */
void lb_reroute(lb *e, ot_batch *b);
/* Routes a batch from the pipeline: admitted whole, or refused. */
ot_status lb_consume_batch(lb *e, ot_batch *b, ot_err *err);
/* Stops taking batches; the senders drain the queues until deadline. */
void lb_backends_shutdown(lb *e, int64_t deadline_ns);
void lb_backends_free(lb *e);

/* ---- resolvers (resolver.c, k8s.c) ----------------------------------------- */

int lb_resolver_start(lb *e, ot_err *err);
void lb_resolver_stop(lb *e);
/* k8s.c: checks the settings and makes the API client (at start), then
 * runs the list-and-watch loop until lb->res_stop. */
int lb_k8s_prepare(lb *e, ot_err *err);
void *lb_k8s_main(void *arg);
void lb_k8s_free(lb *e);

#endif
