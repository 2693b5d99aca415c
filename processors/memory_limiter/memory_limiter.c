/* memory_limiter.c: the `memory_limiter` processor. Refuses data as
 * RETRYABLE while the agent uses too much memory, so receivers push back
 * (429 / 503 / UNAVAILABLE) instead of the process growing until the
 * kernel kills it.
 *
 * Memory in use is the process's resident set, measured by one thread per
 * instance every check_interval. At or above the soft limit (limit minus
 * spike) every consume is refused; back below it, data flows again. Above
 * the soft limit the check also hands free heap pages back to the system
 * (malloc_trim), the nearest thing C has to the collector's forced GC, so
 * the resident set can fall once queues drain. The spike is the growth
 * allowed between two checks: check often enough that a burst fits in it. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/factory.h"
#include "base/log.h"
#include "memory_limiter.h"
#include "telemetry/telemetry.h"

typedef struct ml_cfg {
    int64_t check_interval; /* ns */
    int64_t limit_mib;
    int64_t spike_limit_mib;
    int64_t limit_percentage;
    int64_t spike_limit_percentage;
} ml_cfg;

static const ot_key ml_keys[] = {
    {.name = "check_interval", .type = OT_KT_DURATION, .offset = offsetof(ml_cfg, check_interval),
     .def = "1s", .min = 0, .max = 3600e9, .help = "time between two measurements of memory use"},
    {.name = "limit_mib", .type = OT_KT_INT, .offset = offsetof(ml_cfg, limit_mib), .min = 0,
     .max = 1 << 30, .help = "hard limit on the resident set, in MiB (or limit_percentage)"},
    {.name = "spike_limit_mib", .type = OT_KT_INT, .offset = offsetof(ml_cfg, spike_limit_mib),
     .min = 0, .max = 1 << 30,
     .help = "growth expected between checks; data is refused above limit - spike (default "
             "20% of the limit)"},
    {.name = "limit_percentage", .type = OT_KT_INT, .offset = offsetof(ml_cfg, limit_percentage),
     .min = 0, .max = 100,
     .help = "hard limit as a percentage of the cgroup limit, or of total memory without one"},
    {.name = "spike_limit_percentage", .type = OT_KT_INT,
     .offset = offsetof(ml_cfg, spike_limit_percentage), .min = 0, .max = 100,
     .help = "spike as a percentage of the same total (default 20% of the limit)"},
    {0},
};

static void key_error(ot_diags *d, const ot_node *node, const char *path, const char *key,
                      const char *msg)
{
    char kp[512];
    const ot_node *at = ot_node_get(node, key);
    snprintf(kp, sizeof kp, "%s%s%s", path, at ? "." : "", at ? key : "");
    ot_diag_add(d, OT_SEV_ERROR, at ? at : node, kp, "%s", msg);
}

/* More than 0, or written with a bad value (its own error says why); 0 is
 * how the collector spells "not set". */
static bool is_set(const ot_node *node, const char *key, int64_t v)
{
    const ot_node *n = ot_node_get(node, key);
    return v > 0 || (n && !(n->kind == OT_NODE_SCALAR && strcmp(n->str, "0") == 0) &&
                     !ot_node_is_null(n));
}

static void ml_validate(const void *cfgp, const ot_node *node, const char *path, ot_diags *d)
{
    const ml_cfg *c = cfgp;
    if (c->check_interval <= 0)
        key_error(d, node, path, "check_interval", "must be more than 0; found 0");
    bool mib = is_set(node, "limit_mib", c->limit_mib);
    bool pct = is_set(node, "limit_percentage", c->limit_percentage);
    if (mib == pct) {
        key_error(d, node, path, mib ? "limit_percentage" : "limit_mib",
                  mib ? "set limit_mib or limit_percentage, not both"
                      : "expected limit_mib or limit_percentage (one of them, more than 0)");
        return;
    }
    char msg[160];
    if (mib) {
        if (c->spike_limit_percentage)
            key_error(d, node, path, "spike_limit_percentage",
                      "goes with limit_percentage; with limit_mib use spike_limit_mib");
        if (c->limit_mib > 0 && c->spike_limit_mib >= c->limit_mib) {
            snprintf(msg, sizeof msg, "must be less than limit_mib (%lld); found %lld",
                     (long long)c->limit_mib, (long long)c->spike_limit_mib);
            key_error(d, node, path, "spike_limit_mib", msg);
        }
    } else {
        if (c->spike_limit_mib)
            key_error(d, node, path, "spike_limit_mib",
                      "goes with limit_mib; with limit_percentage use spike_limit_percentage");
        if (c->limit_percentage > 0 && c->spike_limit_percentage >= c->limit_percentage) {
            snprintf(msg, sizeof msg, "must be less than limit_percentage (%lld); found %lld",
                     (long long)c->limit_percentage, (long long)c->spike_limit_percentage);
            key_error(d, node, path, "spike_limit_percentage", msg);
        }
    }
}

int ot_memory_limiter_limits(const void *cfgp, uint64_t total, uint64_t *hard, uint64_t *soft,
                             ot_err *err)
{
    const ml_cfg *c = cfgp;
    uint64_t h, spike;
    if (c->limit_mib > 0) {
        h = (uint64_t)c->limit_mib << 20;
        spike = (uint64_t)c->spike_limit_mib << 20;
    } else if (c->limit_percentage > 0) {
        if (total == 0)
            return ot_err_set(err, "limit_percentage: cannot read the total memory (no cgroup "
                                   "limit, no /proc/meminfo); use limit_mib");
        h = total / 100 * (uint64_t)c->limit_percentage;
        spike = total / 100 * (uint64_t)c->spike_limit_percentage;
    } else {
        return ot_err_set(err, "neither limit_mib nor limit_percentage is set");
    }
    if (spike == 0)
        spike = h / 5;
    if (spike >= h)
        return ot_err_set(err, "the spike limit (%llu MiB) is not below the limit (%llu MiB)",
                          (unsigned long long)(spike >> 20), (unsigned long long)(h >> 20));
    *hard = h;
    *soft = h - spike;
    return 0;
}

/* ---- reading the system ------------------------------------------------ */

static int read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do
        n = read(fd, buf, cap - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* A number of bytes from a cgroup file; 0 for "max", absent or unreadable. */
static uint64_t cgroup_bytes(const char *path)
{
    char buf[64];
    if (read_small(path, buf, sizeof buf) < 0 || strncmp(buf, "max", 3) == 0)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    return errno || end == buf ? 0 : (uint64_t)v;
}

static uint64_t meminfo_total(void)
{
    char buf[4096];
    if (read_small("/proc/meminfo", buf, sizeof buf) < 0)
        return 0;
    const char *p = strstr(buf, "MemTotal:");
    if (!p)
        return 0;
    unsigned long long kb = strtoull(p + 9, NULL, 10);
    return (uint64_t)kb * 1024;
}

uint64_t ot_memory_limiter_total(void)
{
    uint64_t mem = meminfo_total();
    uint64_t cg = cgroup_bytes("/sys/fs/cgroup/memory.max");
    if (!cg)
        cg = cgroup_bytes("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    /* cgroup v1 writes "no limit" as a huge number. */
    if (cg && (!mem || cg < mem))
        return cg;
    return mem;
}

uint64_t ot_memory_limiter_rss(void)
{
    char buf[256];
    if (read_small("/proc/self/statm", buf, sizeof buf) < 0)
        return 0;
    unsigned long long size, resident;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

static uint64_t rss_reader(void *ctx)
{
    (void)ctx;
    return ot_memory_limiter_rss();
}

/* ---- the processor ----------------------------------------------------- */

enum { ML_OK = 0, ML_SOFT = 1, ML_HARD = 2 };

typedef struct ml {
    ot_consumer base;
    const ml_cfg *cfg;
    char *id;
    ot_signal signal;
    ot_consumer *next;
    uint64_t hard, soft;

    pthread_mutex_t read_mu; /* one measurement at a time; guards the reader */
    ot_memory_limiter_reader read;
    void *read_ctx;
    atomic_int state;
    atomic_uint_fast64_t used;

    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;

    ot_counter *refused;
    ot_gauge *state_gauge;
    ot_gauge *used_gauge;
} ml;

void ot_memory_limiter_set_reader(void *self, ot_memory_limiter_reader fn, void *ctx)
{
    ml *m = self;
    pthread_mutex_lock(&m->read_mu);
    m->read = fn ? fn : rss_reader;
    m->read_ctx = fn ? ctx : NULL;
    pthread_mutex_unlock(&m->read_mu);
}

static int classify(const ml *m, uint64_t used)
{
    return used >= m->hard ? ML_HARD : used >= m->soft ? ML_SOFT : ML_OK;
}

int ot_memory_limiter_check(void *self)
{
    ml *m = self;
    pthread_mutex_lock(&m->read_mu);
    uint64_t used = m->read(m->read_ctx);
    int st = classify(m, used);
    if (st != ML_OK && m->read == rss_reader) {
        /* Free heap pages go back to the system; measure what is left. */
        malloc_trim(0);
        used = m->read(m->read_ctx);
        st = classify(m, used);
    }
    pthread_mutex_unlock(&m->read_mu);
    atomic_store(&m->used, used);
    ot_gauge_set(m->used_gauge, (int64_t)used);
    int was = atomic_exchange(&m->state, st);
    ot_gauge_set(m->state_gauge, st);
    if (was == ML_OK && st != ML_OK)
        ot_warn("memory_limiter", "memory use above the soft limit; refusing data",
                "processor=%s signal=%s used_mib=%llu soft_limit_mib=%llu hard_limit_mib=%llu",
                m->id, ot_signal_name(m->signal), (unsigned long long)(used >> 20),
                (unsigned long long)(m->soft >> 20), (unsigned long long)(m->hard >> 20));
    else if (was != ML_OK && st == ML_OK)
        ot_info("memory_limiter", "memory use below the soft limit again; accepting data",
                "processor=%s signal=%s used_mib=%llu soft_limit_mib=%llu", m->id,
                ot_signal_name(m->signal), (unsigned long long)(used >> 20),
                (unsigned long long)(m->soft >> 20));
    return st;
}

static ot_status ml_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    ml *m = (ml *)self;
    uint64_t used = atomic_load_explicit(&m->used, memory_order_relaxed);
    /* A batch that still holds only bytes is charged what decoding them
     * would allocate (the receiver's estimate): a small body that unpacks
     * to hundreds of MiB is refused while there is still room for it. */
    if (atomic_load_explicit(&m->state, memory_order_relaxed) == ML_OK &&
        (!b->decode_cost || used + b->decode_cost < m->soft))
        return ot_consume(m->next, b, err);
    if (b->decode_cost && used + b->decode_cost >= m->soft &&
        atomic_load_explicit(&m->state, memory_order_relaxed) == ML_OK) {
        ot_counter_add(m->refused, b->items);
        ot_err_set(err, "memory limiter %s: memory use %llu MiB and %llu MiB to decode this "
                        "batch would pass the soft limit of %llu MiB; retry later",
                   m->id, (unsigned long long)(used >> 20),
                   (unsigned long long)(b->decode_cost >> 20), (unsigned long long)(m->soft >> 20));
        ot_batch_unref(b);
        return OT_RETRYABLE;
    }
    ot_counter_add(m->refused, b->items);
    ot_batch_unref(b);
    ot_err_set(err, "memory limiter %s: memory use %llu MiB is above the soft limit of %llu MiB; "
                    "retry later",
               m->id, (unsigned long long)(used >> 20), (unsigned long long)(m->soft >> 20));
    return OT_RETRYABLE;
}

static void *ml_main(void *arg)
{
    ml *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + m->cfg->check_interval;
        ts.tv_sec = at / 1000000000;
        ts.tv_nsec = at % 1000000000;
        while (!m->stop && pthread_cond_timedwait(&m->cv, &m->mu, &ts) != ETIMEDOUT) {
        }
        if (m->stop)
            break;
        pthread_mutex_unlock(&m->mu);
        ot_memory_limiter_check(m);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void ml_destroy(void *self);

static void *ml_create(const ot_create_params *cp, ot_err *err)
{
    const ml_cfg *c = cp->config;
    ml *m = calloc(1, sizeof *m);
    if (!m) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    m->base.consume = ml_consume;
    m->cfg = c;
    m->signal = cp->signal;
    m->next = cp->next[cp->signal];
    m->read = rss_reader;
    pthread_mutex_init(&m->read_mu, NULL);
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!(m->id = strdup(cp->id))) {
        ot_err_set(err, "out of memory");
        ml_destroy(m);
        return NULL;
    }
    if (!m->next) {
        ot_err_set(err, "no next consumer for %s", ot_signal_name(cp->signal));
        ml_destroy(m);
        return NULL;
    }
    uint64_t total = c->limit_percentage > 0 ? ot_memory_limiter_total() : 0;
    if (ot_memory_limiter_limits(c, total, &m->hard, &m->soft, err) < 0) {
        ml_destroy(m);
        return NULL;
    }
    char labels[300], name[128];
    snprintf(labels, sizeof labels, "processor=\"%s\"", m->id);
    snprintf(name, sizeof name, "otelite_processor_refused_%s_total",
             ot_signal_item_name(m->signal));
    m->refused = ot_tel_counter(name, "Items a processor refused (memory_limiter: memory use "
                                      "above its soft limit).",
                                labels);
    m->state_gauge = ot_tel_gauge("otelite_processor_memory_limiter_state",
                                  "0: accepting; 1: above the soft limit, refusing; 2: above "
                                  "the hard limit, refusing.",
                                  labels);
    m->used_gauge = ot_tel_gauge("otelite_processor_memory_limiter_used_bytes",
                                 "Memory in use (resident set) at the last check.", labels);
    return m;
}

static int ml_start(void *self, ot_err *err)
{
    ml *m = self;
    ot_info("memory_limiter", "limits", "processor=%s signal=%s soft_limit_mib=%llu "
                                        "hard_limit_mib=%llu",
            m->id, ot_signal_name(m->signal), (unsigned long long)(m->soft >> 20),
            (unsigned long long)(m->hard >> 20));
    ot_memory_limiter_check(m);
    int rc = pthread_create(&m->thread, NULL, ml_main, m);
    if (rc != 0)
        return ot_err_set(err, "cannot start the memory check thread: %s", strerror(rc));
    m->started = true;
    return 0;
}

static void ml_shutdown(void *self, int64_t deadline)
{
    (void)deadline;
    ml *m = self;
    if (!m->started)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_signal(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    m->started = false;
}

static void ml_destroy(void *self)
{
    ml *m = self;
    if (!m)
        return;
    ml_shutdown(m, 0);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->read_mu);
    free(m->id);
    free(m);
}

static ot_consumer *ml_consumer(void *self, ot_signal s)
{
    (void)s;
    return &((ml *)self)->base;
}

const ot_factory ot_memory_limiter_processor = {
    .type = "memory_limiter",
    .kind = OT_PROCESSOR,
    .signals = OT_SIG_ALL,
    .help = "refuses data (retryable) while the agent's memory use is above its limit",
    .keys = ml_keys,
    .config_size = sizeof(ml_cfg),
    .validate = ml_validate,
    .create = ml_create,
    .start = ml_start,
    .shutdown = ml_shutdown,
    .destroy = ml_destroy,
    .consumer = ml_consumer,
};
