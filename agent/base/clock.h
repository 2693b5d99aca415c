/* clock.h: the one clock every deadline in the agent is measured on. */
#ifndef OT_CLOCK_H
#define OT_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ns. */
int64_t ot_now_ns(void);

#endif
