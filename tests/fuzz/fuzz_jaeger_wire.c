/* fuzz_jaeger_wire.c: the jaeger exporter's encoding straight from
 * protobuf bytes (exporters/jaeger/direct.c) against its reference,
 * protobuf-c's unpack, translate.c and the struct encoders. The encoder
 * must never read outside the bytes; it may decline (then the exporter
 * uses the reference), but whatever it accepts protobuf-c must accept too,
 * and both its encodings must equal the reference's byte for byte. Like
 * the exporter, it compares only on bytes the receivers' walker accepts
 * (pbwalk checks UTF-8, which the encoder leaves to it); other bytes must
 * merely be read safely.
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

/* The direct encoder's bodies in encode_all's order; its rc must be the
 * same for both protocols. */
static int direct_all(const uint8_t *data, size_t size, ot_buf *b)
{
    static ot_jaeger_enc *e;
    if (!e && !(e = ot_jaeger_enc_new()))
        abort();
    ot_err err;
    ot_buf pb = OT_BUF_INIT, tb = OT_BUF_INIT;
    const ot_jaeger_body *pv, *tv;
    size_t pn = 0, tn = 0;
    int rp = ot_jaeger_encode_wire(e, 0, data, size, &pb, &pv, &pn, &err);
    ot_jaeger_body *pc = rp == 0 && pn ? malloc(pn * sizeof *pc) : NULL;
    if (pc)
        memcpy(pc, pv, pn * sizeof *pc);
    int rt = ot_jaeger_encode_wire(e, 1, data, size, &tb, &tv, &tn, &err);
    if (rp < 0 || rp != rt || pn != tn || (rp != 0 && (pb.len || tb.len)))
        abort();
    for (size_t i = 0; rp == 0 && i < pn; i++) {
        ot_buf_append(b, pb.data + pc[i].off, pc[i].len);
        ot_buf_append(b, tb.data + tv[i].off, tv[i].len);
    }
    free(pc);
    ot_buf_free(&pb);
    ot_buf_free(&tb);
    return rp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ot_arena *a = ot_arena_new(0);
    ot_err err;
    size_t items;
    ot_buf bd = OT_BUF_INIT;
    int rd = direct_all(data, size, &bd);
    if (rd == 0 && ot_pbwalk(OT_TRACES, data, size, &items, &err) == 0) {
        ot_trace_req *req =
            opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
                NULL, size, data);
        if (!req)
            abort(); /* the encoder took bytes protobuf-c refuses */
        ot_jaeger_out ref;
        if (ot_jaeger_translate(req, a, &ref, &err) < 0)
            abort();
        ot_buf br = OT_BUF_INIT;
        encode_all(&ref, &br);
        if (bd.len != br.len || (bd.len && memcmp(bd.data, br.data, bd.len) != 0))
            abort(); /* the direct encoder differs from the reference */
        ot_buf_free(&br);
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
            req, NULL);
    }
    ot_buf_free(&bd);
    ot_arena_free(a);
    return 0;
}
