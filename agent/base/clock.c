/* clock.c: the one clock every deadline in the agent is measured on. */
#include <time.h>

#include "base/clock.h"

int64_t ot_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
