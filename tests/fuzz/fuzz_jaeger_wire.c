/* fuzz_jaeger_wire.c: the jaeger exporter's translation from protobuf
 * bytes (exporters/jaeger/wire.c) against its reference, protobuf-c's
 * unpack then translate.c. The walk must never read outside the bytes; it
 * may decline (then the exporter uses the reference), but whatever it
 * accepts protobuf-c must accept too, and both encodings of its output
 * must equal the reference's byte for byte. Like the exporter, it compares
 * only on bytes the receivers' walker accepts (pbwalk checks UTF-8, which
 * the translation leaves to it); other bytes must merely be read safely.
 * The input is the request. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/jaeger/jaeger.h"
#include "base/arena.h"
#include "base/buf.h"
#include "model/pbwalk.h"

static void encode_all(const ot_jaeger_out *o, ot_buf *b)
{
    ot_err err;
    for (size_t i = 0; i < o->n_batches; i++)
        if (ot_jaeger_proto_pack(o->batches[i], b, &err) < 0 ||
            ot_jaeger_thrift_batch(o->batches[i], b, &err) < 0)
            abort(); /* only out of memory, which a fuzz run should not see */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ot_arena *a = ot_arena_new(0);
    ot_err err;
    ot_jaeger_out mine;
    int rc = ot_jaeger_translate_wire(data, size, a, &mine, &err);
    size_t items;
    if (rc < 0)
        abort();
    if (rc == 0 && ot_pbwalk(OT_TRACES, data, size, &items, &err) == 0) {
        ot_trace_req *req =
            opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
                NULL, size, data);
        if (!req)
            abort(); /* the walk took bytes protobuf-c refuses */
        ot_jaeger_out ref;
        if (ot_jaeger_translate(req, a, &ref, &err) < 0)
            abort();
        ot_buf bm = OT_BUF_INIT, br = OT_BUF_INIT;
        encode_all(&mine, &bm);
        encode_all(&ref, &br);
        if (bm.len != br.len || memcmp(bm.data, br.data, bm.len) != 0)
            abort(); /* the two translations differ */
        ot_buf_free(&bm);
        ot_buf_free(&br);
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
            req, NULL);
    }
    ot_arena_free(a);
    return 0;
}
