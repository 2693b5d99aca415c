/* plan.h: a checked configuration, ready to run. Building a plan is all of
 * `otelite validate`: every component's keys are walked, every pipeline is
 * checked against the components it names, and every problem lands in the
 * diagnostics. The running service (service.h) is built from a plan. */
#ifndef OT_PLAN_H
#define OT_PLAN_H

#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"
#include "net/auth.h"
#include "net/tls.h"
#include "pipeline/factory.h"

typedef struct ot_plan_comp {
    ot_kind kind;
    const char *id;   /* "type" or "type/name" */
    const ot_factory *factory;
    void *cfg;        /* filled config struct, in the plan's arena */
    const char *yaml; /* canonical text of its config, to spot changes on reload */
    const ot_node *node;
    unsigned signals; /* receivers: signals wired by pipelines */
    int used;
} ot_plan_comp;

typedef struct ot_plan_pipe {
    const char *name; /* "traces" or "traces/name" */
    ot_signal signal;
    ot_plan_comp **receivers, **processors, **exporters;
    size_t n_receivers, n_processors, n_exporters;
} ot_plan_pipe;

typedef struct ot_plan_telemetry {
    ot_endpoint metrics_endpoint;
    int metrics_level; /* none, basic, normal, detailed */
    ot_auth_cfg metrics_auth; /* /metrics only */
    ot_tls_server metrics_tls;
    int log_level;     /* ot_log_level */
    int64_t shutdown_timeout_ns;
} ot_plan_telemetry;

typedef struct ot_plan {
    atomic_int refs;
    ot_config *config;
    ot_plan_comp *comps;
    size_t n_comps;
    ot_plan_pipe *pipes;
    size_t n_pipes;
    ot_plan_telemetry telemetry;
    const char *const *extensions; /* service.extensions */
    size_t n_extensions;
} ot_plan;

/* Checks config and returns a plan that owns config; NULL when diags holds
 * errors, and then config stays the caller's (diagnostics may point into
 * it: print them before freeing it). */
ot_plan *ot_plan_build(ot_config *config, ot_diags *diags);
ot_plan *ot_plan_ref(ot_plan *p);
void ot_plan_unref(ot_plan *p);

ot_plan_comp *ot_plan_find(ot_plan *p, ot_kind kind, const char *id);

#endif
