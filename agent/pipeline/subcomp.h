/* subcomp.h: a component that runs other components inside itself (the
 * loadbalancing exporter's one `otlp` exporter per backend) makes them
 * here, from a config node, through the factory table: it never includes
 * another component, and the sub-component's settings go through the same
 * key walker and checks as if they were written in the file.
 *
 * A sub-component owns its config struct (in its own arena) and is
 * created, started, shut down and freed as the service would. */
#ifndef OT_SUBCOMP_H
#define OT_SUBCOMP_H

#include <stdint.h>

#include "config/config.h"
#include "model/consumer.h"
#include "base/err.h"
#include "pipeline/factory.h"

typedef struct ot_subcomp ot_subcomp;

/* Fills a throwaway config of factory `type` (of kind) from node and runs
 * its checks, diagnostics under path: for a parent's validate(), so
 * `otelite validate` reports a template's errors where they were written.
 * Returns the number of errors added. */
size_t ot_subcomp_check(ot_kind kind, const char *type, const ot_node *node, const char *path,
                        ot_diags *d);

/* Creates (does not start) the component: config from node (walked and
 * checked; the first error becomes err), id for its logs and metrics.
 * NULL with err set. */
ot_subcomp *ot_subcomp_create(ot_kind kind, const char *type, const char *id, const ot_node *node,
                              ot_host *host, ot_err *err);
int ot_subcomp_start(ot_subcomp *c, ot_err *err);
ot_consumer *ot_subcomp_consumer(ot_subcomp *c, ot_signal s);
/* Once; deadline as ot_factory.shutdown. */
void ot_subcomp_shutdown(ot_subcomp *c, int64_t deadline_ns);
/* Shuts down (at once) if that was not done, destroys, frees. NULL is fine. */
void ot_subcomp_free(ot_subcomp *c);

#endif
