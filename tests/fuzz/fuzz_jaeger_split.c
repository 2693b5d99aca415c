/* fuzz_jaeger_split.c: the jaeger exporter's byte-level split of a traces
 * request must never read outside the bytes, must take every request the
 * receiver's walker accepts, and must neither lose nor invent a span: each
 * request it emits is walked again and the spans add up. The input is the
 * request itself. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../exporters/jaeger/jaeger.h"
#include "base/buf.h"
#include "model/pbwalk.h"

typedef struct sum {
    size_t items;
    int bad;
} sum;

static int add(void *vctx, const uint8_t *req, size_t len, size_t spans)
{
    sum *s = vctx;
    size_t n = 0;
    ot_err err;
    if (ot_pbwalk(OT_TRACES, req, len, &n, &err) < 0 || n != spans)
        s->bad = 1;
    s->items += n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t items = 0;
    ot_err err;
    bool valid = ot_pbwalk(OT_TRACES, data, size, &items, &err) == 0;
    ot_buf scratch = {0};
    sum s = {0};
    int rc = ot_jaeger_split(data, size, &scratch, add, &s, &err);
    ot_buf_free(&scratch);
    if (!valid)
        return 0;
    if (rc != 0)
        abort(); /* a request the receiver takes, refused by the split */
    if (s.bad)
        abort(); /* emitted a request that is not valid, or miscounted it */
    if (s.items != items)
        abort(); /* spans lost or invented */
    return 0;
}
