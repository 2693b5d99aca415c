/* send.c: the batch processor's way out. A flushed batch goes to the next
 * consumer at once unless earlier ones wait for a retry; one refused as
 * RETRYABLE is kept, in order, and retried by the timer thread, so a
 * batcher's data leaves in the order it came. Apart from the buffer
 * because it deals in whole batches and backpressure, not bytes. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "batch_int.h"

/* ---- sending and retrying ---------------------------------------------- */

static int retry_push(batcher *bt, ot_batch *b, size_t bytes, size_t items)
{
    if (bt->r_len == bt->r_cap) {
        if (bt->r_head > 0) {
            memmove(bt->retry, bt->retry + bt->r_head, batchp_retry_pending(bt) * sizeof *bt->retry);
            bt->r_len -= bt->r_head;
            bt->r_head = 0;
        } else {
            size_t nc = bt->r_cap ? bt->r_cap * 2 : 8;
            held *n = realloc(bt->retry, nc * sizeof *n);
            if (!n)
                return -1;
            bt->retry = n;
            bt->r_cap = nc;
        }
    }
    bt->retry[bt->r_len++] = (held){b, bytes, items};
    return 0;
}

void batchp_retry_pop(proc *p, batcher *bt)
{
    held h = bt->retry[bt->r_head++];
    bt->retry_items -= h.items;
    batchp_charge(p, -(int64_t)h.bytes);
    if (bt->r_head == bt->r_len)
        bt->r_head = bt->r_len = 0;
}

/* One attempt. True when the batch is gone (accepted, or refused for good
 * and dropped); false when refused as retryable and still ours. */
static bool send_once(proc *p, ot_batch *b)
{
    ot_err e = {{0}};
    size_t items = b->items;
    /* Our own reference survives a refusal, so the batch can be retried.
     * (A mutating next consumer sees two references and clones.) */
    ot_batch_ref(b);
    ot_status st = ot_consume(p->next, b, &e);
    if (st == OT_RETRYABLE)
        return false;
    ot_batch_unref(b);
    if (st == OT_OK) {
        ot_counter_add(p->items_sent, items);
    } else {
        ot_counter_add(p->dropped, items);
        ot_error("batch", "the next consumer refused a batch for good; dropped",
                 "processor=%s signal=%s items=%zu error=\"%s\"", p->id,
                 ot_signal_name(p->signal), items, e.msg);
    }
    return true;
}

static void drop_batch(proc *p, ot_batch *b, const char *why)
{
    ot_counter_add(p->dropped, b->items);
    ot_error("batch", why, "processor=%s signal=%s items=%zu", p->id, ot_signal_name(p->signal),
             b->items);
    ot_batch_unref(b);
}

void batchp_drain(proc *p, batcher *bt, int64_t now)
{
    while (batchp_retry_pending(bt)) {
        if (!send_once(p, bt->retry[bt->r_head].b)) {
            bt->retry_at = now + p->retry_ns;
            return;
        }
        batchp_retry_pop(p, bt);
        if (!batchp_retry_pending(bt))
            ot_info("batch", "the next consumer takes data again", "processor=%s signal=%s",
                    p->id, ot_signal_name(p->signal));
    }
}

void batchp_deliver(proc *p, batcher *bt, ot_batch *b, int trig, int64_t now)
{
    ot_counter_add(p->flushes[trig], 1);
    if (!batchp_retry_pending(bt) && send_once(p, b))
        return;
    size_t bytes = ot_batch_bytes(b), items = b->items;
    if (retry_push(bt, b, bytes, items) < 0) {
        drop_batch(p, b, "out of memory keeping a refused batch; dropped");
        return;
    }
    if (batchp_retry_pending(bt) == 1) {
        static _Atomic int64_t warned;
        bt->retry_at = now + p->retry_ns;
        if (ot_log_ratelimit(&warned, 10000000000LL))
            ot_warn("batch", "the next consumer refuses data; holding batches to retry",
                    "processor=%s signal=%s", p->id, ot_signal_name(p->signal));
    }
    bt->retry_items += items;
    batchp_charge(p, (int64_t)bytes);
}
