/* service.h: the running agent: component instances wired into pipelines
 * from a plan, started, reloaded and shut down. A reload keeps every
 * receiver and exporter whose settings did not change: listeners stay open
 * and exporter queues keep their data; only what changed is rebuilt. */
#ifndef OT_SERVICE_H
#define OT_SERVICE_H

#include "base/err.h"
#include "net/auth.h"
#include "pipeline/plan.h"

typedef struct ot_service ot_service;

/* Creates and starts everything in plan (takes a reference to it). On
 * failure nothing is left running. */
ot_service *ot_service_start(ot_plan *plan, ot_err *err);
/* Moves to a new plan. -1: nothing changed, the old pipelines keep running.
 * 0: done. 1: the new plan is in place but a component failed to start
 * (logged; err holds the last failure). */
int ot_service_reload(ot_service *s, ot_plan *plan, ot_err *err);
/* Stops receivers, flushes processors and exporters until the deadline
 * (CLOCK_MONOTONIC ns), frees everything. */
void ot_service_shutdown(ot_service *s, int64_t deadline_ns);

/* The authenticator extension id names in the running service, for what
 * sits outside it (the telemetry endpoint); valid until the next reload or
 * shutdown. NULL with err set when there is none. */
ot_auth *ot_service_authenticator(ot_service *s, const char *id, ot_err *err);

/* Counts for tests and logs: instances created over the service's life. */
typedef struct ot_service_stats {
    unsigned receivers_created, exporters_created, processors_created;
    unsigned receivers_kept, exporters_kept;
} ot_service_stats;
ot_service_stats ot_service_get_stats(const ot_service *s);

#endif
