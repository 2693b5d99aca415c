/* exphelper.h: what every exporter sends through. An exporter supplies one
 * call that sends one batch once; the helper gives it a bounded queue, N
 * sender threads, a timeout per attempt, retries with backoff that honour a
 * server's Retry-After, an optional persistent queue on disk
 * (segment_log.h), and its self-metrics.
 *
 * Backpressure: a full queue makes consume() return OT_RETRYABLE at once, so
 * receivers answer 429 / UNAVAILABLE instead of memory growing. */
#ifndef OT_EXPHELPER_H
#define OT_EXPHELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/backoff.h"
#include "model/batch.h"
#include "config/config.h"
#include "model/consumer.h"
#include "base/err.h"
#include "export/segment_log.h"

/* `sending_queue:` */
typedef struct ot_exph_queue_cfg {
    bool enabled;              /* false: consume() sends on the caller's thread */
    int64_t num_consumers;     /* sender threads */
    int64_t queue_size;        /* batches */
    uint64_t queue_size_bytes; /* bytes of batches held in memory; 0 = no bound */
    const char *storage;       /* id of a file_storage extension, or NULL */
} ot_exph_queue_cfg;

/* `retry_on_failure:` */
typedef struct ot_exph_retry_cfg {
    bool enabled;
    ot_backoff_cfg backoff;
} ot_exph_retry_cfg;

typedef struct ot_exph_config {
    int64_t timeout; /* ns per attempt; 0 = none */
    ot_exph_queue_cfg queue;
    ot_exph_retry_cfg retry;
} ot_exph_config;

/* Key tables for an exporter's own table. OT_EXPH_KEYS(my_cfg, member) gives
 * the three entries `timeout`, `sending_queue`, `retry_on_failure` for an
 * ot_exph_config member `member` of struct type my_cfg. */
extern const ot_key ot_exph_queue_keys[];
extern const ot_key ot_exph_retry_keys[];
#define OT_EXPH_KEYS(cfg_type, member)                                                        \
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(cfg_type, member.timeout), \
     .def = "5s", .help = "time allowed for one attempt to send a batch", .min = 0,          \
     .max = 3600e9},                                                                         \
    {.name = "sending_queue", .type = OT_KT_TABLE, .offset = offsetof(cfg_type, member.queue), \
     .help = "queue between the pipeline and the sender threads",                            \
     .sub = ot_exph_queue_keys},                                                             \
    {.name = "retry_on_failure", .type = OT_KT_TABLE,                                        \
     .offset = offsetof(cfg_type, member.retry),                                             \
     .help = "retries with exponential backoff for retryable failures",                      \
     .sub = ot_exph_retry_keys}

/* The defaults the key tables write. */
void ot_exph_config_default(ot_exph_config *c);
/* Checks across keys the walker cannot (max_interval >= initial_interval,
 * storage needs the queue). node: the exporter's map; path: its key path. */
void ot_exph_validate(const ot_exph_config *c, const ot_node *node, const char *path,
                      ot_diags *d);

/* The outcome of one attempt, filled by the exporter. status: OT_OK,
 * OT_RETRYABLE (network, 5xx, 429, UNAVAILABLE…) or OT_PERMANENT (the
 * backend will never take this batch). retry_after_ns: the delay the server
 * asked for (Retry-After, RetryInfo), 0 = none. msg: why, for the log. */
typedef struct ot_send_result {
    ot_status status;
    int64_t retry_after_ns;
    char msg[256];
} ot_send_result;

/* Sends b once, giving up at deadline_ns (CLOCK_MONOTONIC; INT64_MAX when
 * timeout is 0). Does not take the reference. Called from several sender
 * threads at once. out arrives zeroed. */
typedef void (*ot_send_fn)(void *exporter, ot_batch *b, int64_t deadline_ns, ot_send_result *out);

typedef struct ot_exph ot_exph;

/* id: the exporter id ("otlphttp/backup"), for logs and metric labels.
 * log: the persistent queue, or NULL; the helper's from this call on,
 * even when it fails (closed at the end of ot_exph_shutdown, which lets a
 * replacement with the same id open it); needs the queue enabled. With a log every accepted batch
 * is on disk before consume() returns OT_OK and leaves it only once the
 * backend took it (or refused it for good); what a previous run left is
 * sent first. NULL with err set on a bad config or out of memory. */
ot_exph *ot_exph_new(const char *id, const ot_exph_config *cfg, ot_send_fn send, void *exporter,
                     ot_segment_log *log, ot_err *err);
/* The consumer pipelines hand batches of signal s to; lives as long as h. */
ot_consumer *ot_exph_consumer(ot_exph *h, ot_signal s);
/* Starts the sender threads. Batches consumed before start wait in the
 * queue. */
int ot_exph_start(ot_exph *h, ot_err *err);
/* Refuses new batches (OT_RETRYABLE), keeps sending until the queue is
 * empty or deadline_ns (CLOCK_MONOTONIC) passes, and stops the threads.
 * Then, with a log, what is left stays on disk for the next start; without
 * one it is dropped, counted and logged. Waits for attempts in progress to
 * return (their deadlines are capped at deadline_ns). */
void ot_exph_shutdown(ot_exph *h, int64_t deadline_ns);
/* Reload: the running helpers of exporter id are being replaced. Their
 * shutdown then stops at once and, without a persistent queue, parks what
 * their memory queue holds (and what was being sent) for the next helper
 * made with that id, which takes it into its own queue within its own
 * bounds, instead of dropping it at the deadline. */
void ot_exph_replacing(const char *id);
/* Ends the reload's hand-over: drops (and logs) what was parked and no new
 * helper took, and forgets the ids marked. Once a reload is done, and at
 * the end of the service. */
void ot_exph_parked_drop(void);
/* Shuts down at once if that was not done. */
void ot_exph_free(ot_exph *h);

#endif
