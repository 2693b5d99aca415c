/* Unit tests for the memory_limiter processor (processors/memory_limiter):
 * limits from MiB and from percentages of a given total, the config
 * checks, refusal above the soft limit and recovery below it with a memory
 * reading the test controls, on demand and from the check thread. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "../../processors/memory_limiter/memory_limiter.h"
#include "model/batch.h"
#include "config/config.h"
#include "model/consumer.h"
#include "pipeline/factory.h"
#include "telemetry/telemetry.h"

extern const ot_factory ot_memory_limiter_processor;
#define F ot_memory_limiter_processor
#define MIB (1ull << 20)

static size_t fill(const char *yaml, void *cfg, ot_arena *a, ot_diags *d)
{
    const ot_node *n = ot_node_parse(a, "test.yaml", yaml, strlen(yaml), d);
    ot_keys_fill(F.keys, n, cfg, a, "processors.memory_limiter", d);
    F.validate(cfg, n, "processors.memory_limiter", d);
    return d->errors;
}

/* Limits for yaml with total memory `total`; false when refused. */
static bool limits(const char *yaml, uint64_t total, uint64_t *hard, uint64_t *soft)
{
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    void *cfg = ot_arena_calloc(a, F.config_size);
    size_t errs = fill(yaml, cfg, a, &d);
    if (errs)
        ot_diags_print(&d, stderr);
    cr_assert_eq(errs, 0, "%s", yaml);
    ot_err err = {{0}};
    bool ok = ot_memory_limiter_limits(cfg, total, hard, soft, &err) == 0;
    ot_diags_free(&d);
    ot_arena_free(a);
    return ok;
}

Test(memory_limiter, limits_from_mib_and_percentages)
{
    uint64_t hard, soft;
    cr_assert(limits("limit_mib: 100\n", 0, &hard, &soft));
    cr_assert_eq(hard, 100 * MIB);
    cr_assert_eq(soft, 80 * MIB, "spike defaults to 20%% of the limit");
    cr_assert(limits("limit_mib: 100\nspike_limit_mib: 30\n", 0, &hard, &soft));
    cr_assert_eq(soft, 70 * MIB);

    const uint64_t total = 1000 * MIB;
    cr_assert(limits("limit_percentage: 50\n", total, &hard, &soft));
    cr_assert_eq(hard, 500 * MIB);
    cr_assert_eq(soft, 400 * MIB);
    cr_assert(limits("limit_percentage: 80\nspike_limit_percentage: 25\n", total, &hard, &soft));
    cr_assert_eq(hard, 800 * MIB);
    cr_assert_eq(soft, 550 * MIB);
    /* A percentage of nothing is refused rather than guessed. */
    cr_assert_not(limits("limit_percentage: 50\n", 0, &hard, &soft));
}

static size_t errors(const char *yaml, char *first, size_t cap)
{
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    void *cfg = ot_arena_calloc(a, F.config_size);
    size_t n = fill(yaml, cfg, a, &d);
    first[0] = 0;
    if (d.n)
        snprintf(first, cap, "%s: %s", d.v[0].path, d.v[0].msg);
    ot_diags_free(&d);
    ot_arena_free(a);
    return n;
}

Test(memory_limiter, config_needs_exactly_one_limit)
{
    char m[512];
    cr_assert_eq(errors("", m, sizeof m), 1);
    cr_assert(strstr(m, "expected limit_mib or limit_percentage"), "%s", m);
    cr_assert_eq(errors("limit_mib: 100\nlimit_percentage: 50\n", m, sizeof m), 1);
    cr_assert(strstr(m, "processors.memory_limiter.limit_percentage: set limit_mib or "
                        "limit_percentage, not both"),
              "%s", m);
    cr_assert_eq(errors("limit_mib: 100\nspike_limit_mib: 100\n", m, sizeof m), 1);
    cr_assert(strstr(m, "spike_limit_mib: must be less than limit_mib (100); found 100"), "%s",
              m);
    cr_assert_eq(errors("limit_percentage: 50\nspike_limit_percentage: 60\n", m, sizeof m), 1);
    cr_assert_eq(errors("limit_percentage: 101\n", m, sizeof m), 1, "only the range error");
    cr_assert_eq(errors("limit_mib: 0\nlimit_percentage: 50\n", m, sizeof m), 0, "0 is unset");
    cr_assert_eq(errors("limit_mib: 100\ncheck_interval: 0s\n", m, sizeof m), 1);
    cr_assert(strstr(m, "check_interval: must be more than 0"), "%s", m);
    cr_assert_eq(errors("limit_mib: 100\nspike_limit_percentage: 10\n", m, sizeof m), 1);
    cr_assert_eq(errors("limit_mib: 100\nspike_limit_mib: 10\ncheck_interval: 100ms\n", m,
                        sizeof m),
                 0, "%s", m);
}

Test(memory_limiter, system_readings_are_plausible)
{
    uint64_t rss = ot_memory_limiter_rss();
    uint64_t total = ot_memory_limiter_total();
    cr_assert_gt(rss, 100 * 1024, "rss %llu", (unsigned long long)rss);
    cr_assert_gt(total, rss);
}

/* ---- refusing and recovering ------------------------------------------- */

typedef struct counting {
    ot_consumer base;
    atomic_int calls;
} counting;

static ot_status count_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    atomic_fetch_add(&((counting *)self)->calls, 1);
    ot_batch_unref(b);
    return OT_OK;
}

static _Atomic uint64_t fake_used;

static uint64_t fake_reader(void *ctx)
{
    (void)ctx;
    return atomic_load(&fake_used);
}

typedef struct ml_h {
    ot_arena *a;
    void *self;
    ot_consumer *c;
    counting next;
} ml_h;

static void open_ml(ml_h *h, const char *yaml)
{
    h->a = ot_arena_new(0);
    h->next = (counting){{count_consume, false}, 0};
    ot_diags d;
    ot_diags_init(&d);
    void *cfg = ot_arena_calloc(h->a, F.config_size);
    cr_assert_eq(fill(yaml, cfg, h->a, &d), 0);
    ot_diags_free(&d);
    ot_create_params p;
    memset(&p, 0, sizeof p);
    p.id = "memory_limiter";
    p.config = cfg;
    p.signal = OT_LOGS;
    p.next[OT_LOGS] = &h->next.base;
    ot_err err = {{0}};
    h->self = F.create(&p, &err);
    cr_assert_not_null(h->self, "%s", err.msg);
    ot_memory_limiter_set_reader(h->self, fake_reader, NULL);
    h->c = F.consumer(h->self, OT_LOGS);
}

static void close_ml(ml_h *h)
{
    F.shutdown(h->self, ot_now_ns());
    F.destroy(h->self);
    ot_arena_free(h->a);
}

static ot_batch *three_records(void)
{
    ot_batch *b = ot_batch_new(OT_LOGS);
    b->items = 3;
    return b;
}

Test(memory_limiter, refuses_above_the_soft_limit_and_recovers_below)
{
    ml_h h;
    open_ml(&h, "limit_mib: 100\nspike_limit_mib: 20\n");
    ot_counter *refused = ot_tel_counter("otelite_processor_refused_log_records_total", "x",
                                         "processor=\"memory_limiter\"");
    ot_gauge *state = ot_tel_gauge("otelite_processor_memory_limiter_state", "x",
                                   "processor=\"memory_limiter\"");
    uint64_t refused0 = atomic_load(&refused->v);

    atomic_store(&fake_used, 50 * MIB);
    cr_assert_eq(ot_memory_limiter_check(h.self), 0);
    cr_assert_eq(ot_consume(h.c, three_records(), NULL), OT_OK);
    cr_assert_eq(atomic_load(&h.next.calls), 1);

    atomic_store(&fake_used, 80 * MIB); /* the soft limit itself */
    cr_assert_eq(ot_memory_limiter_check(h.self), 1);
    cr_assert_eq(atomic_load(&state->v), 1);
    ot_err err = {{0}};
    cr_assert_eq(ot_consume(h.c, three_records(), &err), OT_RETRYABLE);
    cr_assert(strstr(err.msg, "80 MiB is above the soft limit of 80 MiB"), "%s", err.msg);
    cr_assert_eq(atomic_load(&h.next.calls), 1, "refused data must not go on");
    cr_assert_eq(atomic_load(&refused->v) - refused0, 3);

    atomic_store(&fake_used, 120 * MIB);
    cr_assert_eq(ot_memory_limiter_check(h.self), 2);
    cr_assert_eq(ot_consume(h.c, three_records(), NULL), OT_RETRYABLE);

    atomic_store(&fake_used, 79 * MIB);
    cr_assert_eq(ot_memory_limiter_check(h.self), 0);
    cr_assert_eq(atomic_load(&state->v), 0);
    cr_assert_eq(ot_consume(h.c, three_records(), NULL), OT_OK);
    cr_assert_eq(atomic_load(&h.next.calls), 2);
    close_ml(&h);
}

Test(memory_limiter, the_check_thread_follows_the_reading)
{
    ml_h h;
    open_ml(&h, "limit_mib: 100\ncheck_interval: 5ms\n");
    atomic_store(&fake_used, 10 * MIB);
    ot_err err = {{0}};
    cr_assert_eq(F.start(h.self, &err), 0, "%s", err.msg);
    cr_assert_eq(ot_consume(h.c, three_records(), NULL), OT_OK);
    atomic_store(&fake_used, 95 * MIB);
    ot_status st = OT_OK;
    for (int i = 0; i < 1000 && st == OT_OK; i++) {
        usleep(1000);
        st = ot_consume(h.c, three_records(), NULL);
    }
    cr_assert_eq(st, OT_RETRYABLE, "never refused");
    atomic_store(&fake_used, 10 * MIB);
    for (int i = 0; i < 1000 && st != OT_OK; i++) {
        usleep(1000);
        st = ot_consume(h.c, three_records(), NULL);
    }
    cr_assert_eq(st, OT_OK, "never accepted again");
    close_ml(&h);
}
