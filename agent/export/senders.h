/* senders.h: an exporter's sender side, in one piece: the helper that runs
 * its sender threads (exphelper.h) and the contexts those threads reuse from
 * batch to batch (arenas, bodies, compressors, responses). Several threads
 * send at once, so each attempt borrows a context of its own and gives it
 * back; the pool grows to the number of threads that ever sent at once.
 * The pool, the helper's lifecycle and the "not running" answer are the
 * same for every exporter with buffers of its own, so they are written
 * here once and an exporter says only what its context holds. */
#ifndef OT_SENDERS_H
#define OT_SENDERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "export/exphelper.h"

/* What an exporter's context is. A context starts zeroed (calloc). */
typedef struct ot_senders_ops {
    size_t size; /* bytes of one context */
    /* What zeroes cannot give (arenas, encoders); -1: out of memory, and
     * fini is then called on what it left. NULL: nothing to make. */
    int (*init)(void *ctx);
    /* Frees what ctx holds, also a ctx init left part way; not ctx. */
    void (*fini)(void *ctx);
    /* On the way back to the pool: lets go of what a rare huge batch
     * grew, so it does not pin memory for good; false drops the whole
     * context instead. NULL: kept as it is. */
    bool (*trim)(void *ctx);
} ot_senders_ops;

typedef struct ot_senders {
    ot_exph *exph; /* NULL until ot_senders_start succeeds */
    const ot_senders_ops *ops;
    pthread_mutex_t mu;
    struct ot_senders_node *pool; /* contexts not lent out, under mu */
} ot_senders;

/* At the exporter's create; ops must outlive s. */
void ot_senders_init(ot_senders *s, const ot_senders_ops *ops);
/* Makes and starts the helper (ot_exph_new, ot_exph_start; log is the
 * helper's from this call on). At the exporter's start, not its create: a
 * persistent queue opens only once its extension has started. */
int ot_senders_start(ot_senders *s, const char *id, const ot_exph_config *cfg, ot_send_fn send,
                     void *exporter, ot_segment_log *log, ot_err *err);
/* Whether batches can be queued. When not, b is dropped and err says
 * exporter id is not running: the caller answers OT_RETRYABLE. */
bool ot_senders_running(const ot_senders *s, const char *id, ot_batch *b, ot_err *err);
/* ot_exph_shutdown, when the helper was made. */
void ot_senders_shutdown(ot_senders *s, int64_t deadline_ns);
/* Frees the helper (its threads stop first) and then every context. */
void ot_senders_fini(ot_senders *s);

/* A context for one attempt, from the pool or made now. NULL when out of
 * memory, with out set to OT_RETRYABLE "out of memory" (the attempt's
 * answer, so the helper retries). */
void *ot_senders_borrow(ot_senders *s, ot_send_result *out);
/* Gives ctx back (trimmed, or freed when trim says so). */
void ot_senders_return(ot_senders *s, void *ctx);

#endif
