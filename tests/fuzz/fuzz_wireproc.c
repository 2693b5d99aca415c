/* fuzz_wireproc.c: the filter, attributes and resource processors on the
 * wire form (issue 19) against their decoded reference, on any request
 * the receivers would accept (ot_pbwalk): both must answer the same
 * status, pass or drop the same, and emit the same items and the same
 * request after protobuf-c's normalising (tests/unit/wireproc_check.h).
 * The wire path may decline to the decoder; it must never read outside
 * the bytes or disagree. Input: one byte choosing the signal and the
 * chain, then the request. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../unit/wireproc_check.h"
#include "model/pbwalk.h"

#define F(x) "filter: " x
#define A(x) "attributes: " x
#define R(x) "resource: " x

typedef struct chain {
    ot_signal s;
    const char *specs[WP_MAX];
} chain;

static const chain chains[] = {
    {OT_TRACES,
     {F("{traces: {span: ['name == \"a\"', 'kind == SPAN_KIND_CLIENT', 'status.code == STATUS_CODE_ERROR', "
        "'attributes[\"k\"] == \"v\"', 'resource.attributes[\"r\"] != nil', 'IsRootSpan()', "
        "'instrumentation_scope.name == \"s\"', 'attributes[\"n\"] > 3']}}"),
      A("{actions: [{key: k, value: x, action: upsert}, {key: h, action: hash}, {key: d, action: delete}, "
        "{key: c, from_attribute: k, action: insert}, {key: u, value: 1, action: update}]}"),
      R("{attributes: [{key: r, value: 2.5, action: upsert}, {key: d, action: delete}, {key: h, action: hash}]}")}},
    {OT_TRACES,
     {A("{actions: [{key: k, value: true, action: insert}], include: {conditions: ['name == \"a\"']}, "
        "exclude: {conditions: ['attributes[\"k\"] == nil']}}")}},
    {OT_METRICS,
     {F("{metrics: {metric: ['name == \"a\"', 'type == METRIC_DATA_TYPE_GAUGE', 'unit == \"\"']}}"),
      A("{actions: [{key: k, value: x, action: upsert}, {key: h, action: hash}, {key: d, action: delete}]}"),
      R("{attributes: [{key: r, value: x, action: insert}]}")}},
    {OT_LOGS,
     {F("{logs: {log_record: ['severity_number >= 9', 'body == \"b\"', 'attributes[\"k\"] == 1', "
        "'severity_text == \"\"']}}"),
      A("{actions: [{key: k, value: x, action: upsert}, {key: h, action: hash}, {key: c, from_attribute: h, action: upsert}]}"),
      R("{attributes: [{key: r, value: x, action: upsert}, {key: h, action: hash}]}")}},
    {OT_TRACES,
     {F("{traces: {span: ['name == \"a\"', 'attributes[\"k\"] == \"v\"']}}"),
      A("{actions: [{key: k, pattern: '^(?P<k>.)(?P<e>.*)$', action: extract}, "
        "{key: i, value: 1, action: insert}, {key: j, value: y, action: upsert}]}"),
      R("{attributes: [{key: r, pattern: '(?P<q>[a-z]+)', action: extract}]}")}},
    /* What the bench rows run: conditions and inserts that look keys up in
     * the entries (the index's run of short KeyValues), per signal. */
    {OT_TRACES,
     {F("{traces: {span: ['name == \"a\"', 'attributes[\"k\"] == \"v\"', 'attributes[\"kk\"] != \"w\"']}}"),
      A("{actions: [{key: k, value: x, action: insert}, {key: n, value: 2, action: insert}]}"),
      R("{attributes: [{key: r, value: x, action: upsert}]}")}},
    {OT_LOGS,
     {F("{logs: {log_record: ['severity_text == \"T\"', 'attributes[\"k\"] == \"v\"']}}"),
      A("{actions: [{key: k, value: x, action: insert}, {key: j, value: y, action: upsert}]}"),
      R("{attributes: [{key: r, value: x, action: upsert}]}")}},
    {OT_METRICS,
     {F("{metrics: {metric: ['name == \"a\"']}}"),
      A("{actions: [{key: k, value: x, action: insert}]}"),
      R("{attributes: [{key: r, value: x, action: upsert}]}")}},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const chain *c = &chains[data[0] % (sizeof chains / sizeof chains[0])];
    data++, size--;
    size_t items;
    ot_err err;
    if (ot_pbwalk(c->s, data, size, &items, &err) < 0)
        return 0;
    size_t n = 0;
    while (n < WP_MAX && c->specs[n])
        n++;
    wp_result res;
    char why[300];
    if (wp_compare(c->s, data, size, c->specs, n, &res, why, sizeof why) < 0) {
        fprintf(stderr, "fuzz_wireproc: %s\n", why);
        abort();
    }
    return 0;
}
