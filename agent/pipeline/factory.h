/* factory.h: what a component is to the agent. Each component type is one
 * constant ot_factory: its name, the signals it handles, its key table and
 * its lifecycle callbacks. agent/components.c lists them all; that list is
 * the only place the agent names a component.
 *
 * Lifecycle: create → start → (consume …) → shutdown(deadline) → destroy.
 * Receivers get their next consumers at create time (one per signal, NULL
 * when the signal is not wired) and must not start I/O before start().
 * Processors are created once per pipeline; exporters once per id and
 * shared by every pipeline that lists them. */
#ifndef OT_FACTORY_H
#define OT_FACTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/clock.h"
#include "config/config.h"
#include "model/consumer.h"
#include "base/err.h"
#include "model/otlp.h"

typedef enum ot_kind {
    OT_RECEIVER = 0,
    OT_PROCESSOR,
    OT_EXPORTER,
    OT_EXTENSION,
    OT_KIND_COUNT
} ot_kind;

const char *ot_kind_name(ot_kind k);        /* "receiver" … */
const char *ot_kind_section(ot_kind k);     /* "receivers" … */

typedef struct ot_host ot_host;

typedef struct ot_create_params {
    const char *id;     /* "otlp" or "otlp/internal" */
    const void *config; /* filled by the key walker; lives until destroy */
    ot_signal signal;   /* processors: the pipeline's signal */
    ot_consumer *next[OT_SIGNAL_COUNT];
    ot_host *host;
} ot_create_params;

typedef struct ot_factory {
    const char *type;
    ot_kind kind;
    unsigned signals; /* OT_SIGBIT mask */
    const char *help; /* one line */
    const ot_key *keys;
    size_t config_size;

    /* Checks across keys after the walker filled cfg; adds diagnostics. */
    void (*validate)(const void *cfg, const ot_node *node, const char *path, ot_diags *d);
    /* Endpoints a receiver will listen on, for the duplicate check. */
    size_t (*listens)(const void *cfg, const ot_endpoint **out, size_t max);

    void *(*create)(const ot_create_params *p, ot_err *err);
    int (*start)(void *self, ot_err *err);
    /* Stop taking data, flush what is held until deadline (CLOCK_MONOTONIC
     * ns), then return. Called once. */
    void (*shutdown)(void *self, int64_t deadline_ns);
    void (*destroy)(void *self);
    /* Receivers, optional: takes the consumers of a new wiring while
     * running (NULL for a signal no longer wired), so a reload that only
     * changes which pipelines list the receiver keeps its listeners open.
     * Without it such a reload recreates the receiver. */
    void (*rewire)(void *self, ot_consumer *const next[OT_SIGNAL_COUNT]);
    /* Processors and exporters: the consumer for a signal they handle. */
    ot_consumer *(*consumer)(void *self, ot_signal s);
    /* Extensions: self starts with an ot_auth (net/auth.h), so servers
     * may name it in `auth: { authenticator: ID }`. */
    bool authenticator;
} ot_factory;

/* The table of every built-in component (agent/components.c). */
extern const ot_factory *const ot_factories[];
const ot_factory *ot_factory_find(ot_kind kind, const char *type, size_t type_len);

/* Extensions a component may look up through the host (e.g. file_storage
 * for persistent queues). NULL when not configured. */
void *ot_host_extension(ot_host *h, const char *id);

typedef struct ot_auth ot_auth;
/* The authenticator extension an `auth.authenticator` key names: NULL
 * (nothing to check) when id is unset or empty; NULL with err (prefixed
 * "auth.authenticator") when no such extension is configured or it does
 * not authenticate. A component that keeps the pointer is rebuilt with
 * the extensions on reload. */
ot_auth *ot_host_authenticator(ot_host *h, const char *id, ot_err *err);

typedef struct ot_segment_log ot_segment_log;
/* The persistent queue of exporter id in the storage extension a
 * `sending_queue.storage` key names. *out stays NULL when storage is unset
 * or empty; -1 with err (prefixed "sending_queue.storage") when the
 * extension is not configured or the queue cannot be opened. */
int ot_host_open_queue(ot_host *h, const char *storage, const char *id, ot_segment_log **out,
                       ot_err *err);
/* The directory of the storage extension `storage` names, for a component
 * that keeps small state of its own there (base/blobfile.h: checkpoints);
 * *sync says whether the extension's fsync policy asks for each write to
 * reach the disk. -1 with err (prefixed "storage") when it is not
 * configured. */
int ot_host_storage_dir(ot_host *h, const char *storage, const char **dir, bool *sync,
                        ot_err *err);

#endif
