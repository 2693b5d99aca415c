/* Unit tests for the dogstatsd receiver's hand-off (receivers/dogstatsd/
 * dogstatsd.c) through its factory, over a Unix datagram socket: a batch
 * the pipeline refuses as RETRYABLE is retried until an interval has
 * passed and then dropped (memory does not grow), and shutdown flushes
 * what the readers hold, retrying until its deadline and no longer. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../../receivers/dogstatsd/dsdr.h"
#include "pipeline/factory.h"

typedef struct fake {
    ot_consumer c;
    atomic_int calls;
    atomic_int refuse; /* refuse this many calls first */
    double accepted;   /* sum of counter values accepted */
    pthread_mutex_t lock;
} fake;

static ot_status fake_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    (void)err;
    fake *f = (fake *)self;
    atomic_fetch_add(&f->calls, 1);
    if (atomic_load(&f->refuse) > 0) {
        atomic_fetch_sub(&f->refuse, 1);
        ot_batch_unref(b);
        return OT_RETRYABLE;
    }
    const ot_metrics_req *r = (const ot_metrics_req *)ot_batch_msg(b, NULL);
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; r && i < r->n_resource_metrics; i++) {
        const ot_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[0];
        for (size_t k = 0; k < sm->n_metrics; k++)
            if (sm->metrics[k]->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM)
                for (size_t q = 0; q < sm->metrics[k]->sum->n_data_points; q++)
                    f->accepted += sm->metrics[k]->sum->data_points[q]->as_double;
    }
    pthread_mutex_unlock(&f->lock);
    ot_batch_unref(b);
    return OT_OK;
}

static double accepted(fake *f)
{
    pthread_mutex_lock(&f->lock);
    double v = f->accepted;
    pthread_mutex_unlock(&f->lock);
    return v;
}

static void send_to(const char *path, const char *msg)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    cr_assert(sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&a, sizeof a) >= 0);
    close(fd);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static dsdr_cfg cfg_for(const char *path, int64_t interval_ns)
{
    dsdr_cfg c;
    memset(&c, 0, sizeof c);
    c.transport = DSDR_UNIXGRAM;
    c.socket_path = path;
    c.socket_permissions_text = "0600";
    c.readers = 1;
    c.max_packet_size = 8192;
    c.aggregation_interval = interval_ns;
    c.max_series = 1000;
    return c;
}

static void *start(const ot_factory *f, dsdr_cfg *c, fake *sink)
{
    ot_create_params p;
    memset(&p, 0, sizeof p);
    p.id = "dogstatsd";
    p.config = c;
    p.next[OT_METRICS] = &sink->c;
    ot_err err = {{0}};
    void *r = f->create(&p, &err);
    cr_assert(r, "%s", err.msg);
    cr_assert_eq(f->start(r, &err), 0, "%s", err.msg);
    return r;
}

Test(dogstatsd_recv, retryable_retried_then_dropped_bounded)
{
    const ot_factory *f = ot_factory_find(OT_RECEIVER, "dogstatsd", 9);
    cr_assert(f);
    char path[64];
    snprintf(path, sizeof path, "/tmp/otelite-dsd-%d.sock", (int)getpid());
    dsdr_cfg c = cfg_for(path, 50 * 1000000LL);
    fake sink = {.c = {.consume = fake_consume}};
    pthread_mutex_init(&sink.lock, NULL);
    atomic_store(&sink.refuse, 1);
    void *r = start(f, &c, &sink);
    send_to(path, "k:3|c");
    /* refused once, sent again after a pause */
    for (int i = 0; i < 200 && accepted(&sink) < 3; i++)
        sleep_ms(10);
    cr_expect_float_eq(accepted(&sink), 3, 1e-9);
    cr_expect_geq(atomic_load(&sink.calls), 2);
    /* refusing for many intervals: a flush gives up after an interval and
     * drops its chunk; once the pipeline takes data again, new data flows */
    atomic_store(&sink.refuse, 1000000);
    for (int i = 0; i < 10; i++) {
        send_to(path, "k:1|c");
        sleep_ms(60);
    }
    atomic_store(&sink.refuse, 0);
    send_to(path, "k:100|c");
    for (int i = 0; i < 200 && accepted(&sink) < 103; i++)
        sleep_ms(10);
    double got = accepted(&sink);
    cr_expect_geq(got, 103, "got %g", got);
    cr_expect_lt(got, 3 + 10 + 100, "older refused batches are dropped, got %g", got);
    f->shutdown(r, ot_now_ns() + 1000000000LL);
    f->destroy(r);
    pthread_mutex_destroy(&sink.lock);
}

Test(dogstatsd_recv, shutdown_flushes_held)
{
    const ot_factory *f = ot_factory_find(OT_RECEIVER, "statsd", 6);
    cr_assert(f, "the statsd alias");
    char path[64];
    snprintf(path, sizeof path, "/tmp/otelite-dsd2-%d.sock", (int)getpid());
    dsdr_cfg c = cfg_for(path, 3600 * 1000000000LL);
    fake sink = {.c = {.consume = fake_consume}};
    pthread_mutex_init(&sink.lock, NULL);
    void *r = start(f, &c, &sink);
    send_to(path, "held:7|c");
    sleep_ms(100);
    cr_expect_float_eq(accepted(&sink), 0, 1e-9);
    f->shutdown(r, ot_now_ns() + 1000000000LL);
    cr_expect_float_eq(accepted(&sink), 7, 1e-9);
    f->destroy(r);
    cr_expect_neq(access(path, F_OK), 0, "socket file removed");
    pthread_mutex_destroy(&sink.lock);
}

/* Shutdown's flush waits out backpressure until the deadline: refused
 * three times, the fourth try is taken. */
Test(dogstatsd_recv, shutdown_retries_until_deadline)
{
    const ot_factory *f = ot_factory_find(OT_RECEIVER, "dogstatsd", 9);
    char path[64];
    snprintf(path, sizeof path, "/tmp/otelite-dsd3-%d.sock", (int)getpid());
    dsdr_cfg c = cfg_for(path, 3600 * 1000000000LL);
    fake sink = {.c = {.consume = fake_consume}};
    pthread_mutex_init(&sink.lock, NULL);
    void *r = start(f, &c, &sink);
    send_to(path, "held:7|c");
    sleep_ms(100);
    atomic_store(&sink.refuse, 3);
    f->shutdown(r, ot_now_ns() + 5000000000LL);
    cr_expect_float_eq(accepted(&sink), 7, 1e-9);
    cr_expect_eq(atomic_load(&sink.calls), 4);
    f->destroy(r);
    pthread_mutex_destroy(&sink.lock);
}

/* A pipeline that never takes: shutdown gives up at its deadline rather
 * than at the end of an interval (an hour here). */
Test(dogstatsd_recv, shutdown_keeps_its_deadline)
{
    const ot_factory *f = ot_factory_find(OT_RECEIVER, "dogstatsd", 9);
    char path[64];
    snprintf(path, sizeof path, "/tmp/otelite-dsd4-%d.sock", (int)getpid());
    dsdr_cfg c = cfg_for(path, 3600 * 1000000000LL);
    fake sink = {.c = {.consume = fake_consume}};
    pthread_mutex_init(&sink.lock, NULL);
    void *r = start(f, &c, &sink);
    send_to(path, "held:7|c");
    sleep_ms(100);
    atomic_store(&sink.refuse, 1000000000);
    int64_t t0 = ot_now_ns();
    f->shutdown(r, t0 + 300000000LL);
    int64_t took = ot_now_ns() - t0;
    cr_expect_geq(atomic_load(&sink.calls), 2, "retried before the deadline");
    cr_expect_lt(took, 3000000000LL, "shutdown took %lld ns", (long long)took);
    cr_expect_float_eq(accepted(&sink), 0, 1e-9);
    f->destroy(r);
    pthread_mutex_destroy(&sink.lock);
}
