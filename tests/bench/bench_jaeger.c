/* bench_jaeger.c: what the jaeger exporter's translation costs per span
 * (issue 14's benchmark, before the transport exists): OTLP structs to
 * api_v2 structs, then to Thrift bytes or to a packed PostSpansRequest, on
 * realistic spans from the shared sample builder. For scale it also times
 * packing the same OTLP request with protobuf-c, the most an OTLP exporter
 * does with a decoded batch. The exporter translates its queued batches
 * from their bytes straight to Jaeger's (direct.c, "direct"); "unpack +
 * translate" is the decoded reference path it falls back to.
 *
 * Built and run by `make bench` ($(BUILD)/bench-jaeger).
 * Run: build/bench-jaeger [spans per batch (1000)] [rounds (200)] [mode]
 * (mode: the row's index, to count one mode's instructions). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../../exporters/jaeger/jaeger.h"
#include "../unit/otlp_samples.h"
#include "base/arena.h"
#include "base/buf.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

enum { ONLY_TRANSLATE, THRIFT, PROTO, DIRECT_THRIFT, DIRECT_PROTO, UNPACK_THRIFT, OTLP_PACK,
       N_MODES };
static const char *const NAMES[] = {"translate to api_v2 structs", "translate + Thrift",
                                    "translate + api_v2 pack",     "direct Thrift (exporter)",
                                    "direct api_v2 (exporter)",
                                    "unpack + translate + Thrift", "OTLP pack (reference)"};

int main(int argc, char **argv)
{
    size_t n_spans = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    int rounds = argc > 2 ? atoi(argv[2]) : 200;
    int only = argc > 3 ? atoi(argv[3]) : -1; /* one mode, for callgrind */
    if (!n_spans || rounds <= 0) {
        fprintf(stderr, "usage: bench-jaeger [spans] [rounds]\n");
        return 2;
    }
    ot_arena *ra = ot_arena_new(0);
    const ot_trace_req *req = ot_sample_traces(ra, n_spans, 12);
    ot_arena *a = ot_arena_new(1 << 20);
    /* The exporter's queued batches are bytes: direct.c walks them, the
     * reference path unpacks them first. */
    size_t wlen = protobuf_c_message_get_packed_size(&req->base);
    uint8_t *wire = malloc(wlen);
    if (!wire)
        return 1;
    protobuf_c_message_pack(&req->base, wire);
    ot_buf out = OT_BUF_INIT;
    ot_err err;
    ot_jaeger_enc *enc = ot_jaeger_enc_new();
    if (!enc)
        return 1;
    size_t bytes[N_MODES] = {0};
    for (int m = 0; m < N_MODES; m++) {
        if (only >= 0 && m != only)
            continue;
        int64_t spent = 0;
        for (int r = 0; r < rounds; r++) {
            ot_arena_reset(a);
            ot_buf_reset(&out);
            int64_t t0 = now_ns();
            if (m == DIRECT_THRIFT || m == DIRECT_PROTO) {
                const ot_jaeger_body *bodies;
                size_t nb;
                if (ot_jaeger_encode_wire(enc, m == DIRECT_THRIFT, wire, wlen, &out, &bodies, &nb,
                                          &err) != 0) {
                    fprintf(stderr, "the direct encoder declined or failed\n");
                    return 1;
                }
            } else if (m == OTLP_PACK) {
                size_t n = protobuf_c_message_get_packed_size(&req->base);
                if (ot_buf_reserve(&out, n) < 0)
                    return 1;
                out.len = protobuf_c_message_pack(&req->base, (uint8_t *)out.data);
            } else {
                ot_jaeger_out j;
                ot_trace_req *u = NULL;
                int rc;
                if (m == UNPACK_THRIFT) {
                    u = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
                        NULL, wlen, wire);
                    rc = u ? ot_jaeger_translate(u, a, &j, &err) : -1;
                } else
                    rc = ot_jaeger_translate(req, a, &j, &err);
                if (rc != 0) {
                    fprintf(stderr, "%s\n", err.msg);
                    return 1;
                }
                int thrift = m == THRIFT || m == UNPACK_THRIFT;
                for (size_t i = 0; i < j.n_batches && m != ONLY_TRANSLATE; i++)
                    if ((thrift ? ot_jaeger_thrift_batch(j.batches[i], &out, &err)
                                     : ot_jaeger_proto_pack(j.batches[i], &out, &err)) < 0) {
                        fprintf(stderr, "%s\n", err.msg);
                        return 1;
                    }
                if (u)
                    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
                        u, NULL);
            }
            spent += now_ns() - t0;
        }
        bytes[m] = out.len;
        printf("jaeger %-28s %7.1f ns/span  %5.0f bytes/span  (%zu spans x %d rounds)\n",
               NAMES[m], (double)spent / ((double)n_spans * rounds), (double)bytes[m] / n_spans,
               n_spans, rounds);
    }
    free(wire);
    ot_jaeger_enc_free(enc);
    ot_buf_free(&out);
    ot_arena_free(a);
    ot_arena_free(ra);
    return 0;
}
