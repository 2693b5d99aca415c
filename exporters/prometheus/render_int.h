/* render_int.h: what render.c asks of render_pb.c, the protobuf encoder of
 * a scrape. */
#ifndef PM_RENDER_INT_H
#define PM_RENDER_INT_H

#include "prom.h"

/* Buffers an encode reuses from one metric to the next. */
typedef struct pm_pb_scratch {
    ot_buf m, sub, t;
} pm_pb_scratch;

void pm_pb_varint(ot_buf *b, uint64_t v);
/* One Metric.label (a LabelPair). */
void pm_pb_label(ot_buf *b, const char *name, size_t nl, const char *val, size_t vl);
/* One MetricFamily.metric field: labels (encoded LabelPairs) and s's
 * value; ts_ms 0: no timestamp. */
void pm_pb_metric(ot_buf *out, pm_pb_scratch *x, const ot_buf *labels, pm_state *s,
                  int64_t ts_ms);
/* The length prefix, name, help and type of a MetricFamily whose metric
 * fields (body_len bytes) follow. */
void pm_pb_family_head(ot_buf *out, const char *name, const char *help, int kind,
                       size_t body_len);

#endif
