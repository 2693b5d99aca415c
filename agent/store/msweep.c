/* msweep.c: the store's sweeper thread, which expires idle streams on a
 * timer so that memory goes down with no reader at all (a Prometheus
 * endpoint nobody scrapes, a DogStatsD receiver between flushes). Kept
 * apart from mstore.c: it only calls ot_mstore_expire. */
#include "store/mstore_int.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"

void ot_mstore_sweep_init_(ot_mstore_sweep *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
}

void ot_mstore_sweep_stop_(ot_mstore_sweep *w)
{
    pthread_mutex_lock(&w->mu);
    bool running = w->running;
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (running)
        pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void *sweeper_main(void *arg)
{
    ot_mstore_sweep *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        int64_t at = ot_now_ns() + w->interval_ns;
        struct timespec ts = {(time_t)(at / 1000000000), (long)(at % 1000000000)};
        while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT)
            ;
        if (w->stop)
            break;
        pthread_mutex_unlock(&w->mu);
        ot_mstore_expire(w->st, ot_now_ns());
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int ot_mstore_sweep_start_(ot_mstore_sweep *w, ot_mstore *st, int64_t interval_ns, ot_err *err)
{
    if (interval_ns <= 0)
        return ot_err_set(err, "metric store: sweep interval must be positive");
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    if (w->running) {
        rc = ot_err_set(err, "metric store: the sweeper is already running");
    } else {
        w->interval_ns = interval_ns;
        w->st = st;
        int e = pthread_create(&w->thread, NULL, sweeper_main, w);
        if (e)
            rc = ot_err_set(err, "metric store: cannot start the sweeper: %s", strerror(e));
        else
            w->running = true;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}
