/* memory_limiter.h: what the memory_limiter processor exposes besides its
 * factory (ot_memory_limiter_processor): how it turns a config into limits
 * and where it reads memory use, so tests can drive it with numbers of
 * their own. */
#ifndef OT_MEMORY_LIMITER_H
#define OT_MEMORY_LIMITER_H

#include <stdint.h>

#include "base/err.h"

/* The hard limit and the soft limit (hard minus spike) in bytes for a
 * config filled from the factory's key table. total: the memory the
 * percentages are of. -1 with err set when they cannot be computed. */
int ot_memory_limiter_limits(const void *cfg, uint64_t total, uint64_t *hard, uint64_t *soft,
                             ot_err *err);

/* The memory percentages are of: the cgroup limit when there is one (v2
 * memory.max, v1 memory.limit_in_bytes) and it is below the machine's,
 * else MemTotal from /proc/meminfo. 0 when none can be read. */
uint64_t ot_memory_limiter_total(void);

/* The process's resident set in bytes (/proc/self/statm); 0 if unreadable. */
uint64_t ot_memory_limiter_rss(void);

/* Memory in use as an instance measures it; the default reads the RSS. */
typedef uint64_t (*ot_memory_limiter_reader)(void *ctx);
void ot_memory_limiter_set_reader(void *self, ot_memory_limiter_reader fn, void *ctx);

/* Measures now and updates the state (what the check thread does every
 * check_interval). Returns 0 below the soft limit, 1 at or above it, 2 at
 * or above the hard limit. */
int ot_memory_limiter_check(void *self);

#endif
