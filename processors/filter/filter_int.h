/* filter_int.h: what filter.c (the processor, and the decoded walk that
 * is the reference) and filter_wire.c (the same decisions on the
 * protobuf bytes) share. */
#ifndef OT_FILTER_INT_H
#define OT_FILTER_INT_H

#include "model/consumer.h"
#include "model/otlp_wire.h"
#include "ottl/ottl.h"
#include "telemetry/telemetry.h"

typedef struct filter_proc {
    ot_wire_stage stage; /* first: its base is the processor's consumer */
    ot_consumer *next;
    ot_signal signal;
    char *id;
    ot_ottl_set sets[2]; /* traces: span, spanevent; metrics: metric, datapoint; logs: record */
    ot_counter *dropped;        /* spans / metric points / log records */
    ot_counter *dropped_extra;  /* span events / whole metrics */
    bool wire_ok;               /* every condition reads from the bytes (filter_wire.c) */
} filter_proc;

/* The filter on b's protobuf bytes: 0 done (*out is b, edited or not, or
 * NULL when everything was dropped and b is released), 1 declined (b
 * untouched: take the decoded path), -1 a condition failed (err set, b
 * released). *items and *extra count what was dropped. */
int filter_wire(filter_proc *fp, ot_batch *b, ot_batch **out, size_t *items, size_t *extra,
                ot_err *err);
/* Fills fp->stage so the filter can run in one walk with the processors
 * after it (ot_wire_chain). */
void filter_wire_stage(filter_proc *fp);

#endif
