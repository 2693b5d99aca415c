/* test_otlp_check.c: the per-item rules (otlp_check.h) on the wire and on
 * the structs agree, reason by reason, and dropping keeps the good items. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "model/otlp_check.h"
#include "model/pbwalk.h"
#include "otlp_samples.h"

static ot_arena *arena;
static void setup(void) { arena = ot_arena_new(0); }
static void teardown(void) { ot_arena_free(arena); }
TestSuite(otlp_check, .init = setup, .fini = teardown);

static uint8_t zeros[128];

/* Walks and drops: the two tallies must be the same. */
static ot_rejects both(ot_signal s, ProtobufCMessage *m, size_t *kept)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = ot_arena_alloc(arena, n + 1);
    protobuf_c_message_pack(m, buf);
    ot_pbwalk_info wi;
    ot_err err = {{0}};
    cr_assert_eq(ot_pbwalk_check(s, buf, n, &wi, &err), 0, "%s", err.msg);
    ot_rejects r = OT_REJECTS_INIT;
    size_t removed = ot_drop_invalid(s, m, &r);
    cr_assert_eq(removed, r.n);
    cr_assert_eq(wi.rej.n, r.n, "wire %llu, structs %llu", (unsigned long long)wi.rej.n,
                 (unsigned long long)r.n);
    cr_assert_eq(wi.rej.first, r.first);
    for (int i = 0; i < OT_REJ_REASONS; i++)
        cr_assert_eq(wi.rej.by_reason[i], r.by_reason[i], "reason %d", i);
    *kept = ot_count_items(s, m);
    cr_assert_eq(*kept + r.n, wi.items);
    return r;
}

Test(otlp_check, span_ids)
{
    ot_trace_req *t = ot_sample_traces(arena, 8, 2);
    ot_span **sp = t->resource_spans[0]->scope_spans[0]->spans;
    sp[1]->trace_id.len = 24;
    sp[1]->trace_id.data = zeros;
    sp[2]->trace_id.len = 0;
    sp[3]->span_id.len = 9;
    sp[3]->span_id.data = zeros;
    sp[4]->parent_span_id.len = 100;
    sp[4]->parent_span_id.data = zeros;
    sp[5]->parent_span_id.len = 0; /* a root span: allowed */
    size_t kept;
    ot_rejects r = both(OT_TRACES, &t->base, &kept);
    cr_assert_eq(r.n, 4);
    cr_assert_eq(r.first, OT_REJ_TRACE_ID);
    cr_assert_eq(r.by_reason[OT_REJ_TRACE_ID], 2);
    cr_assert_eq(r.by_reason[OT_REJ_SPAN_ID], 1);
    cr_assert_eq(r.by_reason[OT_REJ_PARENT_SPAN_ID], 1);
    cr_assert_eq(kept, 4);
    char msg[300];
    ot_rejects_message(&r, OT_TRACES, msg, sizeof msg);
    cr_assert(strstr(msg, "4 spans rejected; first reason: invalid trace_id") == msg, "%s", msg);
}

Test(otlp_check, valid_samples_pass)
{
    for (ot_signal s = OT_TRACES; s < OT_SIGNAL_COUNT; s++) {
        size_t kept;
        ot_rejects r = both(s, ot_sample_request(arena, s, 64, 3), &kept);
        cr_assert_eq(r.n, 0, "signal %d", s);
        cr_assert_eq(kept, 64);
    }
}

Test(otlp_check, log_ids)
{
    ot_logs_req *l = ot_sample_logs(arena, 8, 1);
    ot_log_record **lr = l->resource_logs[0]->scope_logs[0]->log_records;
    lr[0]->trace_id.len = 0; /* allowed for logs */
    lr[0]->span_id.len = 0;
    lr[1]->trace_id.len = 15;
    lr[1]->trace_id.data = zeros;
    lr[2]->span_id.len = 4;
    lr[2]->span_id.data = zeros;
    size_t kept;
    ot_rejects r = both(OT_LOGS, &l->base, &kept);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.by_reason[OT_REJ_TRACE_ID], 1);
    cr_assert_eq(r.by_reason[OT_REJ_SPAN_ID], 1);
    cr_assert_eq(kept, 6);
}

Test(otlp_check, metric_points)
{
    ot_metrics_req *m = ot_sample_metrics(arena, 64, 1);
    size_t bad_num = 0, bad_exp = 0;
    ot_scope_metrics *sm = m->resource_metrics[0]->scope_metrics[0];
    for (size_t i = 0; i < sm->n_metrics; i++) {
        ot_metric *mt = sm->metrics[i];
        if (mt->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE && !bad_num) {
            mt->gauge->data_points[0]->value_case =
                OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE__NOT_SET;
            bad_num++;
        }
        if (mt->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM &&
            !bad_exp) {
            mt->exponential_histogram->data_points[0]->count += 1;
            bad_exp++;
        }
    }
    cr_assert_eq(bad_num + bad_exp, 2, "the sample has gauges and exponential histograms");
    size_t kept;
    ot_rejects r = both(OT_METRICS, &m->base, &kept);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.by_reason[OT_REJ_NO_VALUE], 1);
    cr_assert_eq(r.by_reason[OT_REJ_BUCKET_COUNTS], 1);
    cr_assert_eq(kept, 62);
}

Test(otlp_check, decoded_cost_of_amplifying_bodies)
{
    /* ScopeSpans of 100k empty spans: 2 bytes each on the wire */
    size_t n = 100000;
    uint8_t *ss = malloc(2 * n), *req = malloc(2 * n + 32);
    for (size_t i = 0; i < n; i++)
        ss[2 * i] = 0x12, ss[2 * i + 1] = 0x00;
    /* ExportTraceServiceRequest{resource_spans{scope_spans{...}}} */
    size_t o = 0, inner = 2 * n;
    uint8_t hdr[16];
    size_t h = 0;
    hdr[h++] = 0x12; /* ResourceSpans.scope_spans = 2 */
    for (size_t v = inner; ; v >>= 7) { hdr[h++] = (uint8_t)(v & 0x7f) | (v >= 0x80 ? 0x80 : 0); if (v < 0x80) break; }
    size_t rs_len = h + inner;
    req[o++] = 0x0a; /* resource_spans = 1 */
    for (size_t v = rs_len; ; v >>= 7) { req[o++] = (uint8_t)(v & 0x7f) | (v >= 0x80 ? 0x80 : 0); if (v < 0x80) break; }
    memcpy(req + o, hdr, h);
    o += h;
    memcpy(req + o, ss, inner);
    o += inner;
    ot_pbwalk_info wi;
    ot_err err = {{0}};
    cr_assert_eq(ot_pbwalk_check(OT_TRACES, req, o, &wi, &err), 0, "%s", err.msg);
    cr_assert_eq(wi.items, n);
    cr_assert_eq(wi.rej.n, n, "empty spans have no ids");
    cr_assert_gt(wi.decoded, 50 * o, "2 bytes become a struct: %zu for %zu", wi.decoded, o);
    free(ss);
    free(req);
}
