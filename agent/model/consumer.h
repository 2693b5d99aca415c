/* consumer.h: the one call that moves data between pipeline stages.
 *
 * consume() takes one reference to the batch (see batch.h) and answers:
 *   OT_OK         accepted; the stage owns it now.
 *   OT_RETRYABLE  not now (queue full, memory limit): the sender may retry;
 *                 receivers turn it into 429/503 or UNAVAILABLE.
 *   OT_PERMANENT  never (bad data): the sender must not retry.
 * A consumer that changes data in place sets `mutates`; it must call
 * ot_batch_writable() first, which clones when others share the batch. */
#ifndef OT_CONSUMER_H
#define OT_CONSUMER_H

#include <stdbool.h>

#include "model/batch.h"
#include "base/err.h"

typedef enum ot_status {
    OT_OK = 0,
    OT_RETRYABLE = 1,
    OT_PERMANENT = 2,
} ot_status;

typedef struct ot_consumer ot_consumer;

struct ot_consumer {
    /* err may be NULL; when given and status is not OK it says why. */
    ot_status (*consume)(ot_consumer *self, ot_batch *b, ot_err *err);
    bool mutates;
};

/* A consumer that also takes a batch whose bytes are b->wire with the edits
 * ed not yet applied (items: the count after them; b's other fields as
 * consume has them): one that copies the bytes anyway (the batch
 * processor) writes the edited bytes once, where they go, instead of a
 * copy in b's arena and then its own (issue 19, processors on the wire
 * form). ed is the caller's and lives until consume_edited returns; b's
 * reference passes as with consume. base.consume is
 * ot_edit_consumer_consume (it calls consume), which is how a sender
 * recognises one. */
struct ot_pbedit;
typedef struct ot_edit_consumer {
    ot_consumer base;
    ot_status (*consume)(ot_consumer *self, ot_batch *b, ot_err *err);
    ot_status (*consume_edited)(ot_consumer *self, ot_batch *b, const struct ot_pbedit *ed,
                                size_t items, ot_err *err);
} ot_edit_consumer;

ot_status ot_edit_consumer_consume(ot_consumer *self, ot_batch *b, ot_err *err);

static inline ot_edit_consumer *ot_as_edit_consumer(ot_consumer *c)
{
    return c && c->consume == ot_edit_consumer_consume ? (ot_edit_consumer *)c : NULL;
}

static inline ot_status ot_consume(ot_consumer *c, ot_batch *b, ot_err *err)
{
    return c->consume(c, b, err);
}

const char *ot_status_name(ot_status s);

/* Fan-out: hands the batch to every consumer. The worst status wins
 * (PERMANENT over RETRYABLE over OK), as the collector's fan-out does. */
typedef struct ot_fanout ot_fanout;
ot_fanout *ot_fanout_new(ot_consumer *const *targets, size_t n);
ot_consumer *ot_fanout_consumer(ot_fanout *f);
void ot_fanout_free(ot_fanout *f);

/* A consumer whose target can be swapped while other threads call it: what
 * receivers hold, so a reload can rebuild pipelines behind a listener that
 * stays open. Swapping waits until no call is still inside the old target. */
typedef struct ot_entry ot_entry;
ot_entry *ot_entry_new(ot_consumer *target);
ot_consumer *ot_entry_consumer(ot_entry *e);
/* Returns once no thread is still using the previous target. */
void ot_entry_swap(ot_entry *e, ot_consumer *target);
void ot_entry_free(ot_entry *e);

#endif
