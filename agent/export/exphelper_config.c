/* exphelper_config.c: the configuration every network exporter shares
 * through the exporter helper (see exphelper.h): the key tables of
 * `sending_queue` and `retry_on_failure`, the collector's defaults (with
 * `timeout`), and the checks across those keys. Apart from exphelper.c
 * because it only describes settings and touches none of the helper's
 * threads, queue or state. */
#include "export/exphelper.h"

#include <stdio.h>
#include <string.h>

/* ---- configuration ----------------------------------------------------- */

const ot_key ot_exph_queue_keys[] = {
    {.name = "enabled", .type = OT_KT_BOOL, .offset = offsetof(ot_exph_queue_cfg, enabled),
     .def = "true",
     .help = "queue batches for sender threads; false sends on the caller's thread"},
    {.name = "num_consumers", .type = OT_KT_INT,
     .offset = offsetof(ot_exph_queue_cfg, num_consumers), .def = "2",
     .help = "sender threads (2, not the collector's 10: the agent targets 2-core sidecars)",
     .min = 1, .max = 64},
    {.name = "queue_size", .type = OT_KT_INT, .offset = offsetof(ot_exph_queue_cfg, queue_size),
     .def = "1000",
     .help = "batches queued (in memory, or on disk with storage) before pushing back",
     .min = 1, .max = 1000000},
    {.name = "queue_size_bytes", .type = OT_KT_SIZE,
     .offset = offsetof(ot_exph_queue_cfg, queue_size_bytes), .def = "16MiB",
     .help = "bytes of batches held in memory (the agent aims at 64MiB peak RSS); 0 = no bound",
     .min = 0, .max = 68719476736.0},
    {.name = "storage", .type = OT_KT_STRING, .offset = offsetof(ot_exph_queue_cfg, storage),
     .help = "id of a file_storage extension: a queue on disk that survives restarts and crashes"},
    {0},
};

const ot_key ot_exph_retry_keys[] = {
    {.name = "enabled", .type = OT_KT_BOOL, .offset = offsetof(ot_exph_retry_cfg, enabled),
     .def = "true", .help = "retry batches that failed with a retryable error"},
    {.name = "initial_interval", .type = OT_KT_DURATION,
     .offset = offsetof(ot_exph_retry_cfg, backoff.initial_interval), .def = "5s",
     .help = "wait after the first failure", .min = 1e6, .max = 86400e9},
    {.name = "randomization_factor", .type = OT_KT_DOUBLE,
     .offset = offsetof(ot_exph_retry_cfg, backoff.randomization_factor), .def = "0.5",
     .help = "jitter: each wait is drawn from interval*(1 +- factor)", .min = 0, .max = 1},
    {.name = "multiplier", .type = OT_KT_DOUBLE,
     .offset = offsetof(ot_exph_retry_cfg, backoff.multiplier), .def = "1.5",
     .help = "growth of the interval after each failure", .min = 1, .max = 100},
    {.name = "max_interval", .type = OT_KT_DURATION,
     .offset = offsetof(ot_exph_retry_cfg, backoff.max_interval), .def = "30s",
     .help = "upper bound of the interval", .min = 1e6, .max = 86400e9},
    {.name = "max_elapsed_time", .type = OT_KT_DURATION,
     .offset = offsetof(ot_exph_retry_cfg, backoff.max_elapsed_time), .def = "300s",
     .help = "give a batch up after trying this long; 0 = never", .min = 0, .max = 31536000e9},
    {0},
};

void ot_exph_config_default(ot_exph_config *c)
{
    memset(c, 0, sizeof *c);
    c->timeout = 5000000000;
    c->queue.enabled = true;
    c->queue.num_consumers = 2;
    c->queue.queue_size = 1000;
    c->queue.queue_size_bytes = 16ull << 20;
    c->retry.enabled = true;
    c->retry.backoff.initial_interval = 5000000000;
    c->retry.backoff.randomization_factor = 0.5;
    c->retry.backoff.multiplier = 1.5;
    c->retry.backoff.max_interval = 30000000000;
    c->retry.backoff.max_elapsed_time = 300000000000;
}

static const ot_node *child(const ot_node *map, const char *key)
{
    if (!map || map->kind != OT_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->str && strcmp(map->keys[i]->str, key) == 0)
            return map->vals[i];
    return NULL;
}

void ot_exph_validate(const ot_exph_config *c, const ot_node *node, const char *path,
                      ot_diags *d)
{
    char p[512];
    const ot_node *retry = child(node, "retry_on_failure");
    if (c->retry.enabled && c->retry.backoff.max_interval < c->retry.backoff.initial_interval) {
        snprintf(p, sizeof p, "%s.retry_on_failure.max_interval", path);
        const ot_node *at = child(retry, "max_interval");
        ot_diag_add(d, OT_SEV_ERROR, at ? at : retry ? retry : node, p,
                    "must not be less than initial_interval");
    }
    if (c->queue.storage && !c->queue.enabled) {
        const ot_node *q = child(node, "sending_queue");
        const ot_node *at = child(q, "storage");
        snprintf(p, sizeof p, "%s.sending_queue.storage", path);
        ot_diag_add(d, OT_SEV_ERROR, at ? at : q ? q : node, p,
                    "a persistent queue needs sending_queue.enabled: true");
    }
}
