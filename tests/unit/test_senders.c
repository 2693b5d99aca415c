/* Unit tests for an exporter's senders (export/senders.h): a context given
 * back is lent again instead of made anew, two attempts at once get two,
 * trim can drop a context, a context that cannot be made is the attempt's
 * "out of memory" (retryable), every context is freed at the end, and a
 * batch that comes before start is dropped with "not running". */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "export/senders.h"
#include "otlp_samples.h"

#define MS 1000000LL

typedef struct ctx {
    int serial; /* which init made it */
    int uses;
    char *grown; /* what a batch left behind; trim decides about it */
    size_t grown_len;
} ctx;

static atomic_int inits, finis, init_fails_left;

static int ctx_init(void *v)
{
    ctx *x = v;
    if (atomic_load(&init_fails_left) > 0) {
        atomic_fetch_sub(&init_fails_left, 1);
        x->grown = malloc(8); /* made part way: fini must free it */
        return -1;
    }
    x->serial = atomic_fetch_add(&inits, 1) + 1;
    return 0;
}

static void ctx_fini(void *v)
{
    ctx *x = v;
    free(x->grown);
    atomic_fetch_add(&finis, 1);
}

/* Drops a context that grew past 1 KiB. */
static bool ctx_trim(void *v)
{
    return ((ctx *)v)->grown_len <= 1024;
}

static const ot_senders_ops ops = {sizeof(ctx), ctx_init, ctx_fini, ctx_trim};

/* Each test's pool and the answer of its attempt, with the counters at
 * zero; a test ends the pool itself, to see what is freed. */
static ot_senders s;
static ot_send_result out;

static void fresh(void)
{
    atomic_store(&inits, 0);
    atomic_store(&finis, 0);
    atomic_store(&init_fails_left, 0);
    memset(&out, 0, sizeof out);
    ot_senders_init(&s, &ops);
}

TestSuite(senders, .init = fresh);

Test(senders, returned_context_is_lent_again)
{
    ctx *a = ot_senders_borrow(&s, &out);
    cr_assert_not_null(a);
    ctx *b = ot_senders_borrow(&s, &out);
    cr_assert_not_null(b);
    cr_assert_neq(a, b, "two attempts at once share a context");
    cr_assert_eq(atomic_load(&inits), 2);
    a->uses = 1;
    ot_senders_return(&s, a);
    ctx *c = ot_senders_borrow(&s, &out);
    cr_assert_eq(c, a);
    cr_assert_eq(c->uses, 1, "a context keeps what it holds between attempts");
    cr_assert_eq(atomic_load(&inits), 2);
    cr_assert_eq(out.status, OT_OK);
    ot_senders_return(&s, b);
    ot_senders_return(&s, c);
    cr_assert_eq(atomic_load(&finis), 0);
    ot_senders_fini(&s);
    cr_assert_eq(atomic_load(&finis), 2);
}

Test(senders, trim_false_drops_the_context)
{
    ctx *a = ot_senders_borrow(&s, &out);
    a->grown = malloc(4096);
    a->grown_len = 4096;
    ot_senders_return(&s, a);
    cr_assert_eq(atomic_load(&finis), 1);
    ctx *b = ot_senders_borrow(&s, &out);
    cr_assert_eq(b->serial, 2, "the dropped context was lent again");
    ot_senders_return(&s, b);
    ot_senders_fini(&s);
    cr_assert_eq(atomic_load(&finis), 2);
}

Test(senders, context_not_made_is_out_of_memory)
{
    atomic_store(&init_fails_left, 1);
    cr_assert_null(ot_senders_borrow(&s, &out));
    cr_assert_eq(out.status, OT_RETRYABLE);
    cr_assert_str_eq(out.msg, "out of memory");
    cr_assert_eq(atomic_load(&finis), 1, "what init made part way is freed");
    memset(&out, 0, sizeof out);
    ctx *a = ot_senders_borrow(&s, &out);
    cr_assert_not_null(a, "the next attempt tries again");
    ot_senders_return(&s, a);
    ot_senders_fini(&s);
}

/* ---- through the helper --------------------------------------------------- */

static void send_one(void *self, ot_batch *b, int64_t deadline_ns, ot_send_result *res)
{
    atomic_int *sent = self;
    ctx *x = ot_senders_borrow(&s, res);
    if (!x)
        return;
    x->uses++;
    struct timespec ts = {0, 2 * MS};
    nanosleep(&ts, NULL);
    atomic_fetch_add(sent, 1);
    ot_senders_return(&s, x);
    res->status = OT_OK;
}

static ot_batch *mk(size_t spans)
{
    ot_arena *a = ot_arena_new(0);
    return ot_batch_adopt(OT_TRACES, a, ot_sample_request(a, OT_TRACES, spans, 2));
}

Test(senders, not_running_before_start_then_sends)
{
    atomic_int sent = 0;
    ot_err err = {{0}};
    ot_batch *early = mk(3);
    cr_assert_not(ot_senders_running(&s, "x/early", early, &err));
    cr_assert_str_eq(err.msg, "exporter x/early is not running");

    ot_exph_config c;
    ot_exph_config_default(&c);
    c.queue.num_consumers = 3;
    cr_assert_eq(ot_senders_start(&s, "x/senders", &c, send_one, &sent, NULL, &err), 0, "%s",
                 err.msg);
    for (int i = 0; i < 40; i++) {
        ot_batch *b = mk(2);
        cr_assert(ot_senders_running(&s, "x/senders", b, &err));
        cr_assert_eq(ot_consume(ot_exph_consumer(s.exph, OT_TRACES), b, &err), OT_OK, "%s",
                     err.msg);
    }
    ot_senders_shutdown(&s, ot_now_ns() + 5000 * MS);
    cr_assert_eq(atomic_load(&sent), 40);
    /* No more contexts than sender threads: each is lent again. */
    cr_assert_geq(atomic_load(&inits), 1);
    cr_assert_leq(atomic_load(&inits), 3);
    ot_senders_fini(&s);
    cr_assert_eq(atomic_load(&finis), atomic_load(&inits));
}
