/* jaeger_encode.c: a test helper, not part of the agent. It reads one OTLP
 * ExportTraceServiceRequest (protobuf) on stdin and writes what the jaeger
 * exporter would send (its direct encoder, the structs for what that
 * declines), so test_jaeger_decode.py can check those bytes with decoders
 * otelite had no hand in (python3-thrift, python3-protobuf).
 *
 *   jaeger-encode thrift|proto < request.pb > batches
 *
 * Output: for each Jaeger batch, its length as 4 big-endian bytes, then a
 * Thrift jaeger.Batch or a protobuf PostSpansRequest. Exit 1 when the
 * input does not decode. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../exporters/jaeger/jaeger.h"
#include "base/buf.h"
#include "model/batch.h"

int main(int argc, char **argv)
{
    int thrift = argc == 2 && strcmp(argv[1], "thrift") == 0;
    if (argc != 2 || (!thrift && strcmp(argv[1], "proto") != 0)) {
        fprintf(stderr, "usage: jaeger-encode thrift|proto < request.pb\n");
        return 2;
    }
    ot_buf in = OT_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        ot_buf_append(&in, chunk, n);
    ot_err err = {{0}};
    ot_batch *b = ot_batch_decode(OT_TRACES, in.data ? in.data : "", in.len, &err);
    if (!b) {
        fprintf(stderr, "jaeger-encode: %s\n", err.msg);
        return 1;
    }
    /* The exporter's own path first: the request's bytes straight to
     * Jaeger's (direct.c); the structs only for what it declines. */
    ot_jaeger_enc *enc = ot_jaeger_enc_new();
    ot_buf direct = OT_BUF_INIT;
    const ot_jaeger_body *bodies;
    size_t nb = 0;
    int rd = enc ? ot_jaeger_encode_wire(enc, thrift, (const uint8_t *)(in.data ? in.data : ""),
                                         in.len, &direct, &bodies, &nb, &err)
                 : -1;
    if (rd == 0) {
        for (size_t i = 0; i < nb; i++) {
            uint8_t len[4] = {(uint8_t)(bodies[i].len >> 24), (uint8_t)(bodies[i].len >> 16),
                              (uint8_t)(bodies[i].len >> 8), (uint8_t)bodies[i].len};
            fwrite(len, 1, 4, stdout);
            fwrite(direct.data + bodies[i].off, 1, bodies[i].len, stdout);
        }
        ot_buf_free(&direct);
        ot_jaeger_enc_free(enc);
        ot_buf_free(&in);
        ot_batch_unref(b);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    ot_buf_free(&direct);
    ot_jaeger_enc_free(enc);
    const ot_trace_req *req = (const ot_trace_req *)ot_batch_msg(b, &err);
    ot_jaeger_out out;
    if (!req || ot_jaeger_translate(req, b->arena, &out, &err) < 0) {
        fprintf(stderr, "jaeger-encode: %s\n", err.msg);
        return 1;
    }
    ot_buf body = OT_BUF_INIT;
    for (size_t i = 0; i < out.n_batches; i++) {
        ot_buf_reset(&body);
        int rc = thrift ? ot_jaeger_thrift_batch(out.batches[i], &body, &err)
                        : ot_jaeger_proto_pack(out.batches[i], &body, &err);
        if (rc < 0) {
            fprintf(stderr, "jaeger-encode: %s\n", err.msg);
            return 1;
        }
        uint8_t len[4] = {(uint8_t)(body.len >> 24), (uint8_t)(body.len >> 16),
                          (uint8_t)(body.len >> 8), (uint8_t)body.len};
        fwrite(len, 1, 4, stdout);
        fwrite(body.data, 1, body.len, stdout);
    }
    ot_buf_free(&body);
    ot_buf_free(&in);
    ot_batch_unref(b);
    return fflush(stdout) == 0 ? 0 : 1;
}
