/* Unit tests for the hand-over of a replaced helper's memory queue on a
 * reload (ot_exph_replacing): the old helper stops at once instead of
 * retrying until the deadline, the next helper made with the same id
 * sends what it held (the batch that was being retried too), within its
 * own queue bounds, and what no helper takes is dropped by
 * ot_exph_parked_drop without leaking. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "base/clock.h"
#include "export/exphelper.h"
#include "otlp_samples.h"
#include "telemetry/telemetry.h"

#define MS 1000000LL

typedef struct sink {
    bool fail;             /* every attempt fails, retryably */
    atomic_int attempts;
    atomic_size_t items;   /* items of the batches sent */
} sink;

static void sink_send(void *x, ot_batch *b, int64_t deadline, ot_send_result *out)
{
    (void)deadline;
    sink *k = x;
    atomic_fetch_add(&k->attempts, 1);
    if (k->fail) {
        out->status = OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "backend down");
        return;
    }
    atomic_fetch_add(&k->items, b->items);
    out->status = OT_OK;
}

static ot_exph_config cfg(int64_t queue_size)
{
    ot_exph_config c;
    ot_exph_config_default(&c);
    c.timeout = 1000 * MS;
    c.queue.num_consumers = 1;
    c.queue.queue_size = queue_size;
    c.retry.backoff.initial_interval = 10000 * MS; /* a retry waits longer than any test */
    c.retry.backoff.max_interval = 10000 * MS;
    c.retry.backoff.max_elapsed_time = 0;
    return c;
}

static ot_exph *mk_helper(const char *id, int64_t queue_size, sink *k)
{
    ot_exph_config c = cfg(queue_size);
    ot_err e = {{0}};
    ot_exph *h = ot_exph_new(id, &c, sink_send, k, NULL, &e);
    cr_assert_not_null(h, "ot_exph_new: %s", e.msg);
    return h;
}

static void push(ot_exph *h, size_t spans)
{
    ot_arena *a = ot_arena_new(0);
    ot_batch *b = ot_batch_adopt(OT_TRACES, a, ot_sample_request(a, OT_TRACES, spans, 1));
    ot_err e = {{0}};
    cr_assert_eq(ot_consume(ot_exph_consumer(h, OT_TRACES), b, &e), OT_OK, "%s", e.msg);
}

static bool wait_items(sink *k, size_t n)
{
    for (int i = 0; i < 2500 && atomic_load(&k->items) < n; i++) {
        struct timespec ts = {0, 2 * MS};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&k->items) == n;
}

static uint64_t counter(const char *name, const char *id)
{
    char labels[128];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", id);
    return atomic_load(&ot_tel_counter(name, "test", labels)->v);
}

/* An old helper that holds three batches, one of them in a retry wait. */
static ot_exph *old_with_three(const char *id, sink *down)
{
    down->fail = true;
    ot_exph *h = mk_helper(id, 10, down);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    push(h, 1);
    push(h, 2);
    push(h, 3);
    for (int i = 0; i < 2500 && atomic_load(&down->attempts) < 1; i++) {
        struct timespec ts = {0, 2 * MS};
        nanosleep(&ts, NULL);
    }
    cr_assert_geq(atomic_load(&down->attempts), 1);
    return h;
}

Test(exph_handover, replacement_sends_what_the_old_one_held)
{
    sink down = {0}, up = {0};
    ot_exph *old = old_with_three("ho/a", &down);
    ot_exph_replacing("ho/a");
    int64_t t0 = ot_now_ns();
    ot_exph_shutdown(old, t0 + 5000 * MS);
    cr_assert_lt(ot_now_ns() - t0, 1000 * MS, "the old helper waited for its deadline");
    ot_exph_free(old);
    cr_assert_eq(counter("otelite_exporter_send_failed_spans_total", "ho/a"), 0);

    ot_exph *h = mk_helper("ho/a", 10, &up);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert(wait_items(&up, 6), "sent %zu of 6 items", atomic_load(&up.items));
    ot_exph_parked_drop();
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    ot_exph_free(h);
}

Test(exph_handover, replacement_takes_only_what_its_queue_holds)
{
    sink down = {0}, up = {0};
    ot_exph *old = old_with_three("ho/b", &down);
    ot_exph_replacing("ho/b");
    ot_exph_shutdown(old, ot_now_ns() + 5000 * MS);
    ot_exph_free(old);
    ot_exph *h = mk_helper("ho/b", 1, &up); /* room for one batch: the oldest */
    cr_assert_eq(counter("otelite_exporter_enqueue_failed_spans_total", "ho/b"), 5);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert(wait_items(&up, 1));
    ot_exph_parked_drop();
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    ot_exph_free(h);
}

Test(exph_handover, unclaimed_queue_is_dropped_and_forgotten)
{
    sink down = {0}, up = {0};
    ot_exph *old = old_with_three("ho/c", &down);
    ot_exph_replacing("ho/c");
    ot_exph_shutdown(old, ot_now_ns() + 5000 * MS);
    ot_exph_free(old);
    ot_exph_parked_drop(); /* no helper of that id came */
    /* A later helper of the id starts empty, and its own shutdown is an
     * ordinary one again. */
    ot_exph *h = mk_helper("ho/c", 10, &up);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    struct timespec ts = {0, 50 * MS};
    nanosleep(&ts, NULL);
    cr_assert_eq(atomic_load(&up.items), 0);
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    ot_exph_free(h);
}

Test(exph_handover, an_ordinary_shutdown_still_drops_at_the_deadline)
{
    sink down = {0};
    ot_exph *old = old_with_three("ho/d", &down);
    ot_exph_shutdown(old, ot_now_ns() + 50 * MS);
    ot_exph_free(old);
    cr_assert_eq(counter("otelite_exporter_send_failed_spans_total", "ho/d"), 6);
}
