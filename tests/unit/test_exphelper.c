/* Unit tests for the exporter helper with a fake exporter: both queue
 * bounds push back, retries deliver exactly once, permanent errors are not
 * retried and are logged once per reason, Retry-After is honoured, shutdown
 * drains or drops by its deadline, and with a segment log what was accepted
 * survives the helper (and the process) going away. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "export/exphelper.h"
#include "pipeline/factory.h"
#include "base/log.h"
#include "otlp_samples.h"
#include "telemetry/telemetry.h"

#define MS 1000000LL

/* ---- the fake exporter ------------------------------------------------- */

typedef struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fail_first;       /* attempts (over all batches) that fail */
    bool fail_always;
    ot_status fail_status;
    int64_t retry_after;
    int64_t sleep_ns;     /* each attempt takes this long */
    bool block;           /* each attempt lasts until its deadline, then fails */
    int attempts;
    int64_t t[64];        /* attempt start times */
    int delivered[256];   /* by item count */
    int ndelivered;
    int bad;              /* batches whose content did not check out */
    pthread_t caller;
} fake;

static void fake_init(fake *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->fail_status = OT_RETRYABLE;
}

static void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

static void fake_send(void *x, ot_batch *b, int64_t deadline, ot_send_result *out)
{
    fake *f = x;
    int64_t start = ot_now_ns();
    if (f->block)
        sleep_ns(deadline - start);
    else if (f->sleep_ns)
        sleep_ns(f->sleep_ns < deadline - start ? f->sleep_ns : deadline - start);
    /* The batch must decode to what it says it holds. */
    const ProtobufCMessage *m = ot_batch_msg(b, NULL);
    bool ok = m && ot_count_items(b->signal, m) == b->items;
    pthread_mutex_lock(&f->mu);
    int n = f->attempts++;
    if (n < 64)
        f->t[n] = start;
    f->caller = pthread_self();
    f->bad += !ok;
    if (f->block || f->fail_always || n < f->fail_first) {
        out->status = f->fail_status;
        out->retry_after_ns = f->retry_after;
        snprintf(out->msg, sizeof out->msg, "backend says no (%s)",
                 f->fail_status == OT_PERMANENT ? "400" : "503");
    } else {
        out->status = OT_OK;
        f->delivered[b->items < 256 ? b->items : 255]++;
        f->ndelivered++;
    }
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Waits (up to 5s) until pred holds on the fake. */
static bool wait_for(fake *f, int delivered, int attempts)
{
    int64_t until = ot_now_ns() + 5000 * MS;
    pthread_mutex_lock(&f->mu);
    while ((f->ndelivered < delivered || f->attempts < attempts) && ot_now_ns() < until) {
        pthread_mutex_unlock(&f->mu);
        sleep_ns(2 * MS);
        pthread_mutex_lock(&f->mu);
    }
    bool ok = f->ndelivered >= delivered && f->attempts >= attempts;
    pthread_mutex_unlock(&f->mu);
    return ok;
}

/* ---- helpers ----------------------------------------------------------- */

static ot_batch *mk(size_t spans)
{
    ot_arena *a = ot_arena_new(0);
    ProtobufCMessage *m = ot_sample_request(a, OT_TRACES, spans, 2);
    ot_batch *b = ot_batch_adopt(OT_TRACES, a, m);
    cr_assert_eq(b->items, spans);
    return b;
}

static ot_exph_config fast_cfg(void)
{
    ot_exph_config c;
    ot_exph_config_default(&c);
    c.timeout = 2000 * MS;
    c.retry.backoff.initial_interval = 1 * MS;
    c.retry.backoff.max_interval = 5 * MS;
    c.retry.backoff.randomization_factor = 0;
    c.retry.backoff.max_elapsed_time = 3000 * MS;
    return c;
}

static ot_exph *helper(const char *id, const ot_exph_config *c, fake *f, ot_segment_log *log)
{
    ot_err e = {{0}};
    ot_exph *h = ot_exph_new(id, c, fake_send, f, log, &e);
    cr_assert_not_null(h, "ot_exph_new: %s", e.msg);
    return h;
}

static uint64_t counter(const char *name, const char *id)
{
    char labels[128];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", id);
    return atomic_load(&ot_tel_counter(name, "test", labels)->v);
}

static int64_t gauge(const char *name, const char *id)
{
    char labels[128];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", id);
    return atomic_load(&ot_tel_gauge(name, "test", labels)->v);
}

static ot_status push(ot_exph *h, size_t spans, ot_err *e)
{
    return ot_consume(ot_exph_consumer(h, OT_TRACES), mk(spans), e);
}

/* ---- queue bounds ------------------------------------------------------ */

Test(exphelper, queue_full_by_count_is_retryable)
{
    fake f;
    fake_init(&f);
    ot_exph_config c = fast_cfg();
    c.queue.queue_size = 3;
    c.queue.queue_size_bytes = 0;
    ot_exph *h = helper("q/count", &c, &f, NULL);
    ot_err e = {{0}};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(push(h, 4, &e), OT_OK);
    cr_assert_eq(gauge("otelite_exporter_queue_size", "q/count"), 3);
    cr_assert_eq(gauge("otelite_exporter_queue_capacity", "q/count"), 3);
    cr_assert_eq(push(h, 4, &e), OT_RETRYABLE);
    cr_assert(strstr(e.msg, "full"), "%s", e.msg);
    cr_assert_eq(counter("otelite_exporter_enqueue_failed_spans_total", "q/count"), 4);
    /* Once senders run, the queue empties and takes batches again. */
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert(wait_for(&f, 3, 0));
    cr_assert_eq(push(h, 4, &e), OT_OK);
    cr_assert(wait_for(&f, 4, 0));
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    cr_assert_eq(gauge("otelite_exporter_queue_size", "q/count"), 0);
    ot_exph_free(h);
    cr_assert_eq(gauge("otelite_exporter_queue_capacity", "q/count"), 0);
}

Test(exphelper, queue_full_by_bytes_is_retryable)
{
    fake f;
    fake_init(&f);
    ot_batch *probe = mk(20);
    size_t one = ot_batch_bytes(probe);
    ot_batch_unref(probe);

    ot_exph_config c = fast_cfg();
    c.queue.queue_size = 100;
    c.queue.queue_size_bytes = one * 2 + one / 2;
    ot_exph *h = helper("q/bytes", &c, &f, NULL);
    ot_err e = {{0}};
    cr_assert_eq(push(h, 20, &e), OT_OK);
    cr_assert_eq(push(h, 20, &e), OT_OK);
    cr_assert_eq(push(h, 20, &e), OT_RETRYABLE);
    cr_assert_eq(counter("otelite_exporter_enqueue_failed_spans_total", "q/bytes"), 20);
    ot_exph_free(h);

    /* A batch larger than the whole bound still passes an empty queue. */
    c.queue.queue_size_bytes = 1;
    h = helper("q/bytes1", &c, &f, NULL);
    cr_assert_eq(push(h, 20, &e), OT_OK);
    cr_assert_eq(push(h, 20, &e), OT_RETRYABLE);
    ot_exph_free(h);
}

/* ---- retries ----------------------------------------------------------- */

Test(exphelper, retryable_failures_then_success_delivers_once)
{
    fake f;
    fake_init(&f);
    f.fail_first = 3;
    ot_exph_config c = fast_cfg();
    ot_exph *h = helper("r/ok", &c, &f, NULL);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert_eq(push(h, 7, &e), OT_OK);
    cr_assert(wait_for(&f, 1, 4));
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    cr_assert_eq(f.attempts, 4);
    cr_assert_eq(f.delivered[7], 1);
    cr_assert_eq(f.ndelivered, 1);
    cr_assert_eq(f.bad, 0);
    cr_assert_eq(counter("otelite_exporter_retries_total", "r/ok"), 3);
    cr_assert_eq(counter("otelite_exporter_sent_spans_total", "r/ok"), 7);
    cr_assert_eq(counter("otelite_exporter_send_failed_spans_total", "r/ok"), 0);
    ot_exph_free(h);
}

static char *read_all(int fd)
{
    static char buf[65536];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

Test(exphelper, permanent_error_not_retried_counted_logged_once)
{
    char path[] = "/tmp/otelite-exph-log-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    ot_log_set_fd(fd);

    fake f;
    fake_init(&f);
    f.fail_always = true;
    f.fail_status = OT_PERMANENT;
    ot_exph_config c = fast_cfg();
    ot_exph *h = helper("r/perm", &c, &f, NULL);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(push(h, 3, &e), OT_OK);
    cr_assert(wait_for(&f, 0, 5));
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    ot_log_set_fd(-1);
    cr_assert_eq(f.attempts, 5); /* one each: never retried */
    cr_assert_eq(counter("otelite_exporter_retries_total", "r/perm"), 0);
    cr_assert_eq(counter("otelite_exporter_send_failed_spans_total", "r/perm"), 15);
    cr_assert_eq(counter("otelite_exporter_sent_spans_total", "r/perm"), 0);
    char *log = read_all(fd);
    cr_assert_eq(count_lines(log, "permanent error"), 1, "log:\n%s", log);
    cr_assert(strstr(log, "backend says no (400)"), "log:\n%s", log);
    close(fd);
    ot_exph_free(h);
}

Test(exphelper, retries_run_out)
{
    fake f;
    fake_init(&f);
    f.fail_always = true;
    ot_exph_config c = fast_cfg();
    c.retry.backoff.initial_interval = 10 * MS;
    c.retry.backoff.max_interval = 10 * MS;
    c.retry.backoff.max_elapsed_time = 45 * MS;
    ot_exph *h = helper("r/out", &c, &f, NULL);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert_eq(push(h, 2, &e), OT_OK);
    int64_t until = ot_now_ns() + 3000 * MS;
    while (counter("otelite_exporter_send_failed_spans_total", "r/out") == 0 &&
           ot_now_ns() < until)
        sleep_ns(2 * MS);
    cr_assert_eq(counter("otelite_exporter_send_failed_spans_total", "r/out"), 2);
    /* Attempts at ~0, 10, 20, 30, 40ms; the one at 50ms is past 45ms. */
    cr_assert(f.attempts >= 3 && f.attempts <= 5, "attempts %d", f.attempts);
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    ot_exph_free(h);
}

Test(exphelper, retry_after_is_honoured)
{
    fake f;
    fake_init(&f);
    f.fail_first = 1;
    f.retry_after = 150 * MS;
    ot_exph_config c = fast_cfg();
    ot_exph *h = helper("r/after", &c, &f, NULL);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert_eq(push(h, 1, &e), OT_OK);
    cr_assert(wait_for(&f, 1, 2));
    int64_t gap = f.t[1] - f.t[0];
    cr_assert_geq(gap, 150 * MS, "gap %lld ms", (long long)(gap / MS));
    cr_assert_lt(gap, 1000 * MS);
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    ot_exph_free(h);

    /* Without the server's word the computed 1ms applies. */
    fake g;
    fake_init(&g);
    g.fail_first = 1;
    h = helper("r/after2", &c, &g, NULL);
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert_eq(push(h, 1, &e), OT_OK);
    cr_assert(wait_for(&g, 1, 2));
    cr_assert_lt(g.t[1] - g.t[0], 100 * MS);
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    ot_exph_free(h);
}

Test(exphelper, retry_after_past_max_elapsed_gives_up)
{
    fake f;
    fake_init(&f);
    f.fail_first = 1;
    f.retry_after = 10000 * MS;
    ot_exph_config c = fast_cfg();
    c.retry.backoff.max_elapsed_time = 500 * MS;
    ot_exph *h = helper("r/after3", &c, &f, NULL);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert_eq(push(h, 5, &e), OT_OK);
    int64_t until = ot_now_ns() + 3000 * MS;
    while (counter("otelite_exporter_send_failed_spans_total", "r/after3") == 0 &&
           ot_now_ns() < until)
        sleep_ns(2 * MS);
    cr_assert_eq(counter("otelite_exporter_send_failed_spans_total", "r/after3"), 5);
    cr_assert_eq(f.attempts, 1);
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    ot_exph_free(h);
}

Test(exphelper, attempt_gets_the_timeout_as_deadline)
{
    fake f;
    fake_init(&f);
    f.block = true; /* sleeps until the deadline it was given */
    ot_exph_config c = fast_cfg();
    c.timeout = 80 * MS;
    c.retry.enabled = false;
    c.queue.enabled = false;
    ot_exph *h = helper("t/deadline", &c, &f, NULL);
    ot_err e = {{0}};
    int64_t t0 = ot_now_ns();
    cr_assert_eq(push(h, 1, &e), OT_RETRYABLE);
    int64_t took = ot_now_ns() - t0;
    cr_assert(took >= 80 * MS && took < 1000 * MS, "took %lld ms", (long long)(took / MS));
    ot_exph_free(h);
}

/* ---- synchronous mode -------------------------------------------------- */

Test(exphelper, queue_disabled_sends_on_callers_thread)
{
    fake f;
    fake_init(&f);
    ot_exph_config c = fast_cfg();
    c.queue.enabled = false;
    ot_exph *h = helper("s/sync", &c, &f, NULL);
    ot_err e = {{0}};
    cr_assert_eq(push(h, 6, &e), OT_OK);
    cr_assert_eq(f.ndelivered, 1);
    cr_assert(pthread_equal(f.caller, pthread_self()));

    f.fail_always = true;
    f.fail_status = OT_PERMANENT;
    cr_assert_eq(push(h, 6, &e), OT_PERMANENT);
    cr_assert(strstr(e.msg, "backend says no"), "%s", e.msg);
    cr_assert_eq(f.attempts, 2);

    ot_exph_free(h);
    c.retry.enabled = false;
    h = helper("s/sync2", &c, &f, NULL);
    f.fail_status = OT_RETRYABLE;
    char path[] = "/tmp/otelite-exph-log-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    ot_log_set_fd(fd);
    cr_assert_eq(push(h, 6, &e), OT_RETRYABLE);
    ot_log_set_fd(-1);
    cr_assert_eq(f.attempts, 3);
    cr_assert_eq(counter("otelite_exporter_send_failed_spans_total", "s/sync2"), 6);
    /* The caller has the batch back with the error: nothing was dropped. */
    char *log = read_all(fd);
    cr_assert(strstr(log, "the error is returned to the caller"), "log:\n%s", log);
    cr_assert_null(strstr(log, "dropped"), "log:\n%s", log);
    close(fd);
    ot_exph_free(h);
}

/* ---- shutdown ---------------------------------------------------------- */

Test(exphelper, shutdown_drains_within_deadline)
{
    fake f;
    fake_init(&f);
    f.sleep_ns = 20 * MS;
    ot_exph_config c = fast_cfg();
    ot_exph *h = helper("d/drain", &c, &f, NULL);
    ot_err e = {{0}};
    for (int i = 1; i <= 10; i++)
        cr_assert_eq(push(h, (size_t)i, &e), OT_OK);
    cr_assert_eq(ot_exph_start(h, &e), 0);
    int64_t t0 = ot_now_ns();
    ot_exph_shutdown(h, t0 + 5000 * MS);
    int64_t took = ot_now_ns() - t0;
    cr_assert_eq(f.ndelivered, 10);
    for (int i = 1; i <= 10; i++)
        cr_assert_eq(f.delivered[i], 1);
    cr_assert_lt(took, 2000 * MS, "took %lld ms", (long long)(took / MS));
    /* Refused after shutdown. */
    cr_assert_eq(push(h, 1, &e), OT_RETRYABLE);
    cr_assert(strstr(e.msg, "shutting down"), "%s", e.msg);
    ot_exph_free(h);
}

Test(exphelper, shutdown_deadline_drops_and_counts_the_rest)
{
    fake f;
    fake_init(&f);
    f.block = true;
    ot_exph_config c = fast_cfg();
    c.timeout = 150 * MS;
    c.queue.num_consumers = 1;
    ot_exph *h = helper("d/drop", &c, &f, NULL);
    ot_err e = {{0}};
    for (int i = 1; i <= 5; i++)
        cr_assert_eq(push(h, (size_t)i, &e), OT_OK);
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert(wait_for(&f, 0, 0));
    sleep_ns(20 * MS);
    int64_t t0 = ot_now_ns();
    ot_exph_shutdown(h, t0 + 100 * MS);
    int64_t took = ot_now_ns() - t0;
    cr_assert_lt(took, 1000 * MS, "took %lld ms", (long long)(took / MS));
    cr_assert_eq(f.ndelivered, 0);
    cr_assert_eq(counter("otelite_exporter_send_failed_spans_total", "d/drop"), 15);
    cr_assert_eq(gauge("otelite_exporter_queue_size", "d/drop"), 0);
    ot_exph_free(h);
}

Test(exphelper, shutdown_interrupts_a_retry_wait)
{
    fake f;
    fake_init(&f);
    f.fail_always = true;
    ot_exph_config c = fast_cfg();
    c.retry.backoff.initial_interval = 10000 * MS;
    c.retry.backoff.max_interval = 10000 * MS;
    c.retry.backoff.max_elapsed_time = 0;
    ot_exph *h = helper("d/retry", &c, &f, NULL);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert_eq(push(h, 1, &e), OT_OK);
    cr_assert(wait_for(&f, 0, 1));
    int64_t t0 = ot_now_ns();
    ot_exph_shutdown(h, t0 + 3000 * MS);
    cr_assert_lt(ot_now_ns() - t0, 500 * MS);
    cr_assert_eq(f.attempts, 1);
    ot_exph_free(h);
}

/* ---- with a segment log ------------------------------------------------ */

static char tmp[64];

static void mk_tmp(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/otelite-exph-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *fw)
{
    (void)st, (void)flag, (void)fw;
    return remove(p);
}

static void rm_tmp(void)
{
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static ot_segment_log *open_log(const char *name, uint64_t limit)
{
    ot_segment_log_opts o;
    ot_segment_log_opts_default(&o);
    o.directory = tmp;
    o.fsync = OT_FSYNC_NEVER;
    o.storage_limit = limit;
    ot_err e = {{0}};
    ot_segment_log *l = ot_segment_log_open(&o, name, &e);
    cr_assert_not_null(l, "%s", e.msg);
    return l;
}

static size_t log_live(ot_segment_log *l)
{
    ot_segment_log_stats st;
    ot_segment_log_stats_get(l, &st);
    return st.live;
}

Test(exphelper, stored_batches_survive_the_helper, .init = mk_tmp, .fini = rm_tmp)
{
    fake f;
    fake_init(&f);
    ot_exph_config c = fast_cfg();
    ot_segment_log *log = open_log("otlp", 0);
    ot_exph *h = helper("p/keep", &c, &f, log);
    ot_err e = {{0}};
    for (int i = 1; i <= 20; i++)
        cr_assert_eq(push(h, (size_t)i, &e), OT_OK, "%s", e.msg);
    cr_assert_eq(gauge("otelite_exporter_queue_size", "p/keep"), 20);
    ot_exph_free(h); /* never started: nothing was sent; the helper closed its log */
    cr_assert_eq(f.attempts, 0);

    log = open_log("otlp", 0);
    cr_assert_eq(log_live(log), 20);
    h = helper("p/keep", &c, &f, log);
    cr_assert_eq(gauge("otelite_exporter_queue_size", "p/keep"), 20);
    cr_assert_eq(push(h, 21, &e), OT_OK);
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert(wait_for(&f, 21, 0));
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    for (int i = 1; i <= 21; i++)
        cr_assert_eq(f.delivered[i], 1, "batch %d delivered %d times", i, f.delivered[i]);
    cr_assert_eq(f.bad, 0);
    cr_assert_eq(gauge("otelite_exporter_queue_size", "p/keep"), 0);
    cr_assert_eq(counter("otelite_exporter_sent_spans_total", "p/keep"), 21 * 22 / 2);
    ot_exph_free(h);
    log = open_log("otlp", 0); /* shutdown closed it: nothing is left on disk */
    cr_assert_eq(log_live(log), 0);
    ot_segment_log_close(log);
}

/* Backend down, batches accepted, kill -9: the next process sends them. */
Test(exphelper, stored_batches_survive_kill_9, .init = mk_tmp, .fini = rm_tmp)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        fake down;
        fake_init(&down);
        down.fail_always = true;
        ot_exph_config c = fast_cfg();
        c.retry.backoff.max_elapsed_time = 0;
        ot_err e;
        ot_segment_log_opts o;
        ot_segment_log_opts_default(&o);
        o.directory = tmp;
        ot_segment_log *log = ot_segment_log_open(&o, "otlp", &e);
        ot_exph *h = log ? ot_exph_new("p/kill", &c, fake_send, &down, log, &e) : NULL;
        if (!h || ot_exph_start(h, &e) < 0)
            _exit(3);
        for (int i = 1; i <= 30; i++)
            if (push(h, (size_t)i, &e) != OT_OK)
                _exit(4);
        sleep_ns(30 * MS); /* let senders fail and retry a few times */
        raise(SIGKILL);
        _exit(5);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);

    fake f;
    fake_init(&f);
    ot_exph_config c = fast_cfg();
    ot_segment_log *log = open_log("otlp", 0);
    cr_assert_eq(log_live(log), 30);
    ot_exph *h = helper("p/kill", &c, &f, log);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    cr_assert(wait_for(&f, 30, 0));
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    for (int i = 1; i <= 30; i++)
        cr_assert_eq(f.delivered[i], 1, "batch %d delivered %d times", i, f.delivered[i]);
    cr_assert_eq(f.bad, 0);
    ot_exph_free(h);
    log = open_log("otlp", 0); /* shutdown closed it: what it left is on disk */
    cr_assert_eq(log_live(log), 0);
    ot_segment_log_close(log);
}

Test(exphelper, stored_permanent_failures_leave_the_log, .init = mk_tmp, .fini = rm_tmp)
{
    fake f;
    fake_init(&f);
    f.fail_always = true;
    f.fail_status = OT_PERMANENT;
    ot_exph_config c = fast_cfg();
    ot_segment_log *log = open_log("otlp", 0);
    ot_exph *h = helper("p/perm", &c, &f, log);
    ot_err e = {{0}};
    cr_assert_eq(ot_exph_start(h, &e), 0);
    for (int i = 1; i <= 4; i++)
        cr_assert_eq(push(h, 2, &e), OT_OK);
    cr_assert(wait_for(&f, 0, 4));
    ot_exph_shutdown(h, ot_now_ns() + 1000 * MS);
    cr_assert_eq(f.attempts, 4);
    cr_assert_eq(counter("otelite_exporter_send_failed_spans_total", "p/perm"), 8);
    ot_exph_free(h);
    log = open_log("otlp", 0);
    cr_assert_eq(log_live(log), 0);
    ot_segment_log_close(log);
}

Test(exphelper, stored_queue_pushes_back, .init = mk_tmp, .fini = rm_tmp)
{
    fake f;
    fake_init(&f);
    ot_exph_config c = fast_cfg();
    c.queue.queue_size = 3;
    ot_segment_log *log = open_log("otlp", 0);
    ot_exph *h = helper("p/full", &c, &f, log);
    ot_err e = {{0}};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(push(h, 2, &e), OT_OK);
    cr_assert_eq(push(h, 2, &e), OT_RETRYABLE);
    cr_assert_eq(counter("otelite_exporter_enqueue_failed_spans_total", "p/full"), 2);
    ot_exph_free(h);

    /* The disk quota pushes back too. */
    ot_batch *probe = mk(50);
    const uint8_t *w;
    size_t len;
    cr_assert_eq(ot_batch_wire(probe, &w, &len, NULL), 0);
    ot_batch_unref(probe);
    log = open_log("quota", 3 * (len + 28) + 10);
    c.queue.queue_size = 100;
    h = helper("p/quota", &c, &f, log);
    int ok = 0;
    ot_status st;
    while ((st = push(h, 50, &e)) == OT_OK)
        ok++;
    cr_assert_eq(st, OT_RETRYABLE);
    cr_assert(strstr(e.msg, "full"), "%s", e.msg);
    cr_assert_eq(ok, 3);
    ot_exph_free(h);
}

Test(exphelper, storage_needs_the_queue, .init = mk_tmp, .fini = rm_tmp)
{
    fake f;
    fake_init(&f);
    ot_exph_config c = fast_cfg();
    c.queue.enabled = false;
    ot_segment_log *log = open_log("otlp", 0);
    ot_err e = {{0}};
    cr_assert_null(ot_exph_new("p/bad", &c, fake_send, &f, log, &e));
    cr_assert(strstr(e.msg, "sending_queue.enabled"), "%s", e.msg);
    /* The helper took the log even though it refused: it is closed, so the
     * directory can be opened again. */
    log = open_log("otlp", 0);
    ot_segment_log_close(log);
}

/* ---- key tables -------------------------------------------------------- */

typedef struct my_exporter_cfg {
    const char *endpoint;
    ot_exph_config exph;
} my_exporter_cfg;

static const ot_key my_keys[] = {
    {.name = "endpoint", .type = OT_KT_STRING, .offset = offsetof(my_exporter_cfg, endpoint),
     .help = "where"},
    OT_EXPH_KEYS(my_exporter_cfg, exph),
    {0},
};

static size_t fill(const char *yaml, my_exporter_cfg *out, ot_arena *a, ot_diags *d)
{
    const ot_node *n = yaml ? ot_node_parse(a, "test.yaml", yaml, strlen(yaml), d) : NULL;
    if (yaml)
        cr_assert_not_null(n);
    memset(out, 0x5a, sizeof *out);
    return ot_keys_fill(my_keys, n, out, a, "exporters.my", d);
}

Test(exphelper, key_table_defaults_match_config_default)
{
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    my_exporter_cfg c;
    cr_assert_eq(fill(NULL, &c, a, &d), 0);
    ot_exph_config want;
    ot_exph_config_default(&want);
    cr_assert_eq(c.exph.timeout, want.timeout);
    cr_assert_eq(c.exph.queue.enabled, want.queue.enabled);
    cr_assert_eq(c.exph.queue.num_consumers, 2);
    cr_assert_eq(c.exph.queue.queue_size, want.queue.queue_size);
    cr_assert_eq(c.exph.queue.queue_size_bytes, 16u << 20);
    cr_assert_null(c.exph.queue.storage);
    cr_assert_eq(c.exph.retry.enabled, want.retry.enabled);
    cr_assert_eq(c.exph.retry.backoff.initial_interval, want.retry.backoff.initial_interval);
    cr_assert_eq(c.exph.retry.backoff.randomization_factor,
                 want.retry.backoff.randomization_factor);
    cr_assert_eq(c.exph.retry.backoff.multiplier, want.retry.backoff.multiplier);
    cr_assert_eq(c.exph.retry.backoff.max_interval, want.retry.backoff.max_interval);
    cr_assert_eq(c.exph.retry.backoff.max_elapsed_time, 300 * 1000 * MS);
    ot_diags_free(&d);
    ot_arena_free(a);
}

Test(exphelper, key_tables_read_the_collector_layout)
{
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    my_exporter_cfg c;
    const char *y = "endpoint: x\n"
                    "timeout: 2s\n"
                    "sending_queue: {num_consumers: 4, queue_size: 50, queue_size_bytes: 1MiB,\n"
                    "                storage: file_storage/q}\n"
                    "retry_on_failure: {initial_interval: 1s, max_interval: 500ms,\n"
                    "                   max_elapsed_time: 0, multiplier: 2}\n";
    cr_assert_eq(fill(y, &c, a, &d), 0);
    cr_assert_eq(c.exph.timeout, 2000 * MS);
    cr_assert_eq(c.exph.queue.num_consumers, 4);
    cr_assert_eq(c.exph.queue.queue_size, 50);
    cr_assert_eq(c.exph.queue.queue_size_bytes, 1u << 20);
    cr_assert_str_eq(c.exph.queue.storage, "file_storage/q");
    cr_assert_eq(c.exph.retry.backoff.max_elapsed_time, 0);
    cr_assert_eq(c.exph.retry.backoff.multiplier, 2.0);
    cr_assert_eq(c.exph.retry.backoff.randomization_factor, 0.5);
    /* The walker cannot see that max_interval < initial_interval. */
    ot_exph_validate(&c.exph, ot_node_parse(a, "test.yaml", y, strlen(y), NULL), "exporters.my",
                     &d);
    cr_assert_eq(d.errors, 1);
    cr_assert_str_eq(d.v[0].path, "exporters.my.retry_on_failure.max_interval");
    cr_assert_eq(d.v[0].line, 5);

    ot_diags_free(&d);
    ot_diags_init(&d);
    cr_assert_gt(fill("sending_queue: {num_consumers: 0, queue_sise: 3}\n", &c, a, &d), 0);
    cr_assert_geq(d.errors, 2);
    ot_diags_free(&d);
    ot_arena_free(a);
}

Test(exphelper, storage_key_table_defaults)
{
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    const char *y = "directory: /var/lib/otelite\n";
    ot_segment_log_opts o, want;
    cr_assert_eq(ot_keys_fill(ot_segment_log_keys, ot_node_parse(a, "t", y, strlen(y), NULL), &o,
                              a, "extensions.file_storage", &d),
                 0);
    ot_segment_log_opts_default(&want);
    cr_assert_str_eq(o.directory, "/var/lib/otelite");
    cr_assert_eq(o.fsync, want.fsync);
    cr_assert_eq(o.fsync_interval, want.fsync_interval);
    cr_assert_eq(o.storage_limit, want.storage_limit);
    cr_assert_eq(o.on_full, want.on_full);
    y = "{directory: /x, on_full: drop_oldest, fsync: batch, storage_limit: 1GiB}\n";
    cr_assert_eq(ot_keys_fill(ot_segment_log_keys, ot_node_parse(a, "t", y, strlen(y), NULL), &o,
                              a, "extensions.file_storage", &d),
                 0);
    cr_assert_eq(o.on_full, OT_ON_FULL_DROP_OLDEST);
    cr_assert_eq(o.fsync, OT_FSYNC_BATCH);
    cr_assert_eq(o.storage_limit, 1ull << 30);
    /* directory is required. */
    cr_assert_gt(ot_keys_fill(ot_segment_log_keys, NULL, &o, a, "extensions.file_storage", &d), 0);
    ot_diags_free(&d);
    ot_arena_free(a);
}
