/* test_wireproc.c: the processors on the wire form (issue 19) against
 * their decoded reference, item by item, on the sample corpus: every
 * filter condition, attribute and resource action the wire path takes, and
 * chains of them, must give the bytes the decoded path encodes (exactly,
 * as the samples are in protobuf-c's own field order), the same items and
 * the same status; and the edit list's length prefixes, checked on their
 * own, across the one-byte/two-byte boundary. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "model/otlp_wire.h"
#include "model/pbedit.h"
#include "otlp_samples.h"
#include "wireproc_check.h"

/* ---- pbedit --------------------------------------------------------------- */

Test(pbedit, prefixes_grow_and_shrink_across_the_varint_boundary)
{
    /* field 1 { field 2 { 120 bytes of field 3 } }: inserting 10 bytes in
     * the innermost makes both lengths two bytes long. */
    uint8_t in[200];
    size_t w = 0;
    in[w++] = 0x0a, in[w++] = 2 + 2 + 116; /* outer: inner field with 118 bytes */
    in[w++] = 0x12, in[w++] = 2 + 116;
    in[w++] = 0x1a, in[w++] = 116;
    memset(in + w, 'x', 116);
    w += 116;
    ot_arena *a = ot_arena_new(0);
    ot_pbedit e;
    ot_pbedit_init(&e, in, w, a);
    const uint8_t *p = in, *end = in + w;
    ot_pbfield f1, f2, f3;
    cr_assert_eq(ot_pb_next(&p, end, &f1), 1);
    ot_pbedit_enter(&e, &f1);
    const uint8_t *q = f1.val;
    cr_assert_eq(ot_pb_next(&q, f1.val + f1.len, &f2), 1);
    ot_pbedit_enter(&e, &f2);
    const uint8_t *r = f2.val;
    cr_assert_eq(ot_pb_next(&r, f2.val + f2.len, &f3), 1);
    ot_pbedit_enter(&e, &f3);
    static const uint8_t more[10] = "0123456789";
    ot_pbedit_replace(&e, f3.end, 0, more, sizeof more);
    ot_pbedit_leave(&e, false);
    ot_pbedit_leave(&e, false);
    ot_pbedit_leave(&e, false);
    const uint8_t *out;
    size_t n;
    cr_assert_eq(ot_pbedit_apply(&e, &out, &n), 0);
    /* Written into a buffer of the caller's (what the batch processor
     * does with a chain's edits), the same bytes. */
    cr_assert_eq(ot_pbedit_out_len(&e), n);
    uint8_t mine[160];
    cr_assert_leq(n, sizeof mine);
    cr_assert_eq(ot_pbedit_write(&e, mine), 0);
    cr_assert_eq(memcmp(mine, out, n), 0);
    ot_pbedit_free(&e);
    /* innermost 126 bytes (one-byte length), middle 128 (0x80 0x01), outer
     * 1 + 2 + 128 = 131 (0x83 0x01) */
    cr_assert_eq(n, w + 10 + 2);
    cr_assert_eq(out[0], 0x0a);
    cr_assert_eq(out[1], 0x83);
    cr_assert_eq(out[2], 0x01);
    cr_assert_eq(out[3], 0x12);
    cr_assert_eq(out[4], 0x80);
    cr_assert_eq(out[5], 0x01);
    cr_assert_eq(out[6], 0x1a);
    cr_assert_eq(out[7], 126);
    cr_assert_eq(memcmp(out + 8 + 116, more, 10), 0);

    /* Dropping a field that was edited inside cuts it whole. */
    ot_pbedit_init(&e, in, w, a);
    ot_pbedit_enter(&e, &f1);
    ot_pbedit_enter(&e, &f2);
    ot_pbedit_replace(&e, f3.val, 4, NULL, 0);
    ot_pbedit_leave(&e, true);
    ot_pbedit_leave(&e, false);
    cr_assert_eq(ot_pbedit_apply(&e, &out, &n), 0);
    ot_pbedit_free(&e);
    cr_assert_eq(n, 2);
    cr_assert_eq(out[0], 0x0a);
    cr_assert_eq(out[1], 0);

    /* Out-of-order edits are refused, not applied. */
    ot_pbedit_init(&e, in, w, a);
    ot_pbedit_replace(&e, in + 10, 1, NULL, 0);
    ot_pbedit_replace(&e, in + 5, 1, NULL, 0);
    cr_assert_eq(ot_pbedit_apply(&e, &out, &n), -1);
    cr_assert_eq(ot_pbedit_out_len(&e), (size_t)-1);
    ot_pbedit_free(&e);
    ot_arena_free(a);
}

Test(pbedit, many_edits_spill_past_the_inline_list)
{
    ot_arena *a = ot_arena_new(0);
    uint8_t in[600];
    for (int i = 0; i < 300; i++)
        in[2 * i] = 0x08, in[2 * i + 1] = (uint8_t)(i & 0x7f); /* field 1 varints */
    ot_pbedit e;
    ot_pbedit_init(&e, in, sizeof in, a);
    const uint8_t *p = in;
    ot_pbfield f;
    int i = 0;
    while (ot_pb_next(&p, in + sizeof in, &f) > 0)
        if (i++ % 2)
            ot_pbedit_cut(&e, &f);
    const uint8_t *out;
    size_t n;
    cr_assert_eq(ot_pbedit_apply(&e, &out, &n), 0);
    ot_pbedit_free(&e);
    cr_assert_eq(n, 300);
    for (int k = 0; k < 150; k++)
        cr_assert_eq(out[2 * k + 1], (uint8_t)((2 * k) & 0x7f));
    ot_arena_free(a);
}

/* ---- wire path against the decoded reference ------------------------------ */

static uint8_t *pack(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*n ? *n : 1);
    protobuf_c_message_pack(m, b);
    return b;
}

/* Every sample request of s, packed by protobuf-c. */
static size_t samples(ot_signal s, uint8_t **bufs, size_t *lens, ot_arena *a)
{
    size_t k = 0;
    if (s == OT_TRACES) {
        bufs[k] = pack(&ot_sample_traces_rich(a)->base, &lens[k]), k++;
        bufs[k] = pack(&ot_sample_traces(a, 40, 8)->base, &lens[k]), k++;
        bufs[k] = pack(&ot_sample_traces(a, 3, 0)->base, &lens[k]), k++;
        bufs[k] = pack(&ot_sample_traces(a, 300, 12)->base, &lens[k]), k++; /* 2-byte lengths */
    } else {
        bufs[k] = pack(ot_sample_request(a, s, 40, 6), &lens[k]), k++;
        bufs[k] = pack(ot_sample_request(a, s, 5, 0), &lens[k]), k++;
        bufs[k] = pack(ot_sample_request(a, s, 200, 3), &lens[k]), k++;
    }
    return k;
}

typedef struct wcase {
    ot_signal s;
    const char *specs[WP_MAX];
    bool must_edit; /* the wire path must change the bytes on every sample */
} wcase;

#define F(x) "filter: " x
#define A(x) "attributes: " x
#define R(x) "resource: " x

static const wcase cases[] = {
    /* filter: drops by name, kind, status, span and resource attributes */
    {OT_TRACES, {F("{traces: {span: ['name == \"SELECT orders\"']}}")}, true},
    {OT_TRACES, {F("{traces: {span: ['kind == SPAN_KIND_CLIENT']}}")}, false},
    {OT_TRACES, {F("{traces: {span: ['status.code == STATUS_CODE_ERROR']}}")}, false},
    {OT_TRACES, {F("{traces: {span: ['attributes[\"http.route\"] == \"/healthz\"', "
                   "'attributes[\"http.response.status_code\"] >= 500']}}")}, false},
    {OT_TRACES, {F("{traces: {span: ['resource.attributes[\"service.name\"] == \"frontend\"']}}")},
     false},
    {OT_TRACES, {F("{traces: {span: ['IsMatch(name, \"^(GET|POST) \")', 'IsRootSpan()']}}")}, false},
    {OT_TRACES, {F("{traces: {span: ['name != \"\"']}}")}, true},          /* drops everything */
    {OT_TRACES, {F("{traces: {span: ['name == \"nothing\"']}}")}, false},  /* passes untouched */
    {OT_TRACES, {F("{traces: {span: ['instrumentation_scope.name == \"x\" or end_time_unix_nano "
                   "> 0 and trace_id.string != \"\"']}}")}, false},
    {OT_TRACES, {F("{traces: {span: ['attributes[\"kvlist\"][\"a\"] != nil']}}")}, false},
    {OT_METRICS, {F("{metrics: {metric: ['name == \"http.server.duration\"', 'type == METRIC_DATA_TYPE_SUM']}}")},
     false},
    {OT_METRICS, {F("{metrics: {metric: ['IsMatch(name, \"^process\\\\.\")', 'unit == \"ms\"']}}")},
     false},
    {OT_LOGS, {F("{logs: {log_record: ['severity_number < SEVERITY_NUMBER_WARN']}}")}, false},
    {OT_LOGS, {F("{logs: {log_record: ['IsString(body) and IsMatch(body, \"timeout\")', "
                 "'attributes[\"http.route\"] == \"/healthz\"']}}")}, false},
    /* attributes: every action */
    {OT_TRACES, {A("{actions: [{key: env, value: prod, action: insert}]}")}, true},
    {OT_TRACES, {A("{actions: [{key: http.route, value: /x, action: update}, "
                   "{key: server.port, value: 1, action: upsert}, {key: n, value: 1.5, action: upsert},"
                   "{key: b, value: true, action: insert}]}")}, false},
    {OT_TRACES, {A("{actions: [{key: client.address, action: hash}, {key: http.request.method, "
                   "action: delete}, {key: copy, from_attribute: http.route, action: insert}]}")},
     false},
    {OT_TRACES, {A("{actions: [{key: str, action: hash}, {key: int.neg, action: hash}, "
                   "{key: double.pi, action: hash}, {key: bool.true, action: hash}, "
                   "{key: bytes, action: hash}, {key: kvlist, action: hash}, "
                   "{key: novalue, value: v, action: update}, {key: array, action: delete}]}")},
     false},
    {OT_TRACES, {A("{actions: [{key: env, value: prod, action: insert}, {key: env, action: hash}, "
                   "{key: env2, from_attribute: env, action: upsert}, {key: env, action: delete}, "
                   "{key: env, value: 7, action: insert}]}")}, true},
    {OT_TRACES, {A("{actions: [{key: tagged, value: yes, action: insert}], include: {conditions: "
                   "['kind == SPAN_KIND_SERVER']}, exclude: {conditions: ['name == \"POST /checkout\"']}}")},
     false},
    {OT_LOGS, {A("{actions: [{key: env, value: prod, action: upsert}, {key: http.route, action: hash}]}")},
     true},
    {OT_LOGS, {A("{actions: [{key: x, value: 1, action: insert}], include: {conditions: "
                 "['severity_number >= SEVERITY_NUMBER_WARN']}}")}, false},
    {OT_METRICS, {A("{actions: [{key: env, value: prod, action: insert}, {key: cache.hit, "
                    "action: delete}]}")}, true},
    /* extract: new entries, an existing one replaced, a group that took no part */
    {OT_TRACES, {A("{actions: [{key: env, value: prod, action: insert}, {key: http.route, pattern: "
                   "'^/(?P<env>[a-z]*)(?:/(?P<rest>.*))?(?P<never>#)?$', action: extract}, "
                   "{key: client.address, pattern: '^(?P<net>[0-9]+[.][0-9]+)[.]', action: extract}, "
                   "{key: server.port, pattern: '(?P<port>.*)', action: extract}]}")},
     false},
    {OT_LOGS, {A("{actions: [{key: http.route, pattern: '(?P<first>[a-z]+)', action: extract}]}")},
     false},
    {OT_METRICS, {A("{actions: [{key: client.address, pattern: '[.](?P<last>[0-9]+)$', "
                    "action: extract}]}")}, false},
    {OT_TRACES, {R("{attributes: [{key: service.name, pattern: '^(?P<svc>[a-z]+)', "
                   "action: extract}]}")}, false},
    /* resource */
    {OT_TRACES, {R("{attributes: [{key: deployment.region, value: eu, action: upsert}, "
                   "{key: host.name, action: delete}, {key: k8s.pod.name, action: hash}]}")}, true},
    {OT_METRICS, {R("{attributes: [{key: service.name, value: renamed, action: update}]}")}, true},
    {OT_LOGS, {R("{actions: [{key: r, value: 1, action: insert}]}")}, true},
    /* chains */
    {OT_TRACES,
     {F("{traces: {span: ['attributes[\"http.route\"] == \"/healthz\"']}}"),
      A("{actions: [{key: env, value: prod, action: insert}, {key: client.address, action: hash}]}"),
      R("{attributes: [{key: region, value: eu, action: upsert}]}")},
     true},
    {OT_METRICS,
     {F("{metrics: {metric: ['name == \"system.cpu.utilization\"']}}"),
      A("{actions: [{key: env, value: prod, action: insert}]}"),
      R("{attributes: [{key: region, value: eu, action: upsert}]}")},
     true},
    {OT_LOGS,
     {F("{logs: {log_record: ['severity_text == \"DEBUG\"']}}"),
      A("{actions: [{key: env, value: prod, action: insert}]}"),
      R("{attributes: [{key: region, value: eu, action: upsert}]}")},
     true},
    /* a chain whose middle needs decoding (a data point condition) */
    {OT_METRICS,
     {F("{metrics: {datapoint: ['attributes[\"cache.hit\"] == true']}}"),
      A("{actions: [{key: env, value: prod, action: insert}]}"),
      R("{attributes: [{key: region, value: eu, action: upsert}]}")},
     false},
};

Test(wireproc, agrees_with_the_decoded_path_on_every_sample)
{
    ot_arena *a = ot_arena_new(0);
    uint8_t *bufs[OT_SIGNAL_COUNT][8];
    size_t lens[OT_SIGNAL_COUNT][8], n[OT_SIGNAL_COUNT];
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        n[s] = samples((ot_signal)s, bufs[s], lens[s], a);
    size_t edited = 0, compared = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const wcase *wc = &cases[c];
        size_t ns = 0;
        while (ns < WP_MAX && wc->specs[ns])
            ns++;
        for (size_t k = 0; k < n[wc->s]; k++) {
            wp_result res;
            char why[300];
            int rc = wp_compare(wc->s, bufs[wc->s][k], lens[wc->s][k], wc->specs, ns, &res, why,
                                sizeof why);
            cr_assert_eq(rc, 0, "case %zu (%s) sample %zu: %s", c, wc->specs[0], k, why);
            /* the samples are canonical, so no normalising is needed */
            cr_assert(!res.passed || res.exact, "case %zu sample %zu: equal only after normalising",
                      c, k);
            if (wc->must_edit)
                cr_assert(res.wire_edit || !res.passed, "case %zu sample %zu: nothing changed", c, k);
            edited += res.wire_edit && !res.decoded;
            compared++;
        }
    }
    cr_assert_gt(edited, compared / 3, "the wire path edited only %zu of %zu", edited, compared);
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        for (size_t k = 0; k < n[s]; k++)
            free(bufs[s][k]);
    ot_arena_free(a);
}

/* Things the wire path must do itself, not by declining to the decoder. */
Test(wireproc, typical_chains_never_decode)
{
    ot_arena *a = ot_arena_new(0);
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        uint8_t *bufs[8];
        size_t lens[8];
        size_t n = samples((ot_signal)s, bufs, lens, a);
        const char *specs[] = {
            s == OT_TRACES    ? F("{traces: {span: ['name == \"x\"', 'attributes[\"http.route\"] == \"/healthz\"']}}")
            : s == OT_METRICS ? F("{metrics: {metric: ['name == \"x\"']}}")
                              : F("{logs: {log_record: ['severity_text == \"x\"']}}"),
            A("{actions: [{key: env, value: prod, action: insert}]}"),
            R("{attributes: [{key: region, value: eu, action: upsert}]}")};
        for (size_t k = 1; k < n; k++) { /* the rich sample's kvlists may decline */
            wp_result res;
            char why[300];
            cr_assert_eq(wp_compare((ot_signal)s, bufs[k], lens[k], specs, 3, &res, why, sizeof why), 0,
                         "%s", why);
            cr_assert(res.passed && res.exact && res.wire_edit);
            cr_assert(!res.decoded, "signal %d sample %zu was decoded", s, k);
            free(bufs[k]);
        }
        free(bufs[0]);
    }
    ot_arena_free(a);
}

/* Input in another field order than protobuf-c's: equal after normalising. */
Test(wireproc, reordered_input_agrees_after_normalising)
{
    /* ExportTraceServiceRequest { ResourceSpans { ScopeSpans { Span { name=5 "b",
     * attributes=9 {key "k" value {int 1}}, span_id=2 8 bytes, trace_id=1 16 bytes } }
     * resource=1 {} } } : resource after the scopes, ids after the name. */
    uint8_t span[64];
    size_t w = 0;
    span[w++] = 0x2a, span[w++] = 1, span[w++] = 'b';
    span[w++] = 0x4a, span[w++] = 7, span[w++] = 0x0a, span[w++] = 1, span[w++] = 'k',
    span[w++] = 0x12, span[w++] = 2, span[w++] = 0x18, span[w++] = 1;
    span[w++] = 0x12, span[w++] = 8;
    memset(span + w, 2, 8), w += 8;
    span[w++] = 0x0a, span[w++] = 16;
    memset(span + w, 1, 16), w += 16;
    uint8_t req[128];
    size_t r = 0;
    size_t ss_len = 2 + w, rs_len = 2 + ss_len + 2;
    req[r++] = 0x0a, req[r++] = (uint8_t)rs_len;
    req[r++] = 0x12, req[r++] = (uint8_t)ss_len;
    req[r++] = 0x12, req[r++] = (uint8_t)w;
    memcpy(req + r, span, w), r += w;
    req[r++] = 0x0a, req[r++] = 0;
    const char *specs[] = {A("{actions: [{key: k, action: hash}, {key: z, value: q, action: insert}]}"),
                           R("{attributes: [{key: region, value: eu, action: upsert}]}")};
    wp_result res;
    char why[300];
    cr_assert_eq(wp_compare(OT_TRACES, req, r, specs, 2, &res, why, sizeof why), 0, "%s", why);
    cr_assert(res.passed && res.wire_edit && !res.decoded);
}
