/* jaeger.h: what the jaeger exporter sends, apart from how it sends it.
 * The exporter writes a batch's protobuf bytes straight as Jaeger's (one
 * Batch per OTLP resource): a gRPC PostSpansRequest or a Thrift
 * binary-protocol Batch for Jaeger's HTTP endpoint (direct.c). The
 * reference path, which the tests hold it to byte for byte and which takes
 * the rare bytes it declines, builds Jaeger api_v2 structs and encodes
 * those (translate.c, apiv2.c, thrift.c). The
 * translation follows what the collector's Jaeger translator did, so a
 * Jaeger UI shows otelite's spans as it showed the collector's.
 *
 * Memory: every struct the reference translation builds lives in the
 * caller's arena.
 * Strings and bytes point into the OTLP request where they can, so the
 * request must outlive the Jaeger structs (a batch and its arena do). */
#ifndef OT_JAEGER_H
#define OT_JAEGER_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "model/otlp.h"
#include "jaeger_collector.pb-c.h"

typedef Jaeger__ApiV2__Batch ot_jaeger_batch;
typedef Jaeger__ApiV2__Span ot_jaeger_span;
typedef Jaeger__ApiV2__KeyValue ot_jaeger_kv;

/* The service name Jaeger gets for a resource without a string
 * service.name attribute. */
#define OT_JAEGER_UNKNOWN_SERVICE "unknown_service"

typedef struct ot_jaeger_out {
    ot_jaeger_batch **batches; /* one per OTLP resource that has spans */
    size_t n_batches;
    size_t n_spans; /* over all batches */
} ot_jaeger_out;

/* Translates a whole request into arena. Resources without spans give no
 * batch. -1 with err set only when the arena runs out of memory. */
int ot_jaeger_translate(const ot_trace_req *req, ot_arena *arena, ot_jaeger_out *out,
                        ot_err *err);

/* Appends the protobuf bytes of a PostSpansRequest holding b (the body of
 * one gRPC call, without the 5-byte gRPC frame header). */
int ot_jaeger_proto_pack(const ot_jaeger_batch *b, ot_buf *out, ot_err *err);

/* Appends b as a Thrift binary-protocol jaeger.Batch struct (the body of
 * one POST to /api/traces). Times become microseconds; ids become signed
 * 64-bit halves (trace ids are 16 bytes and span ids 8, as the translation
 * makes them); parentSpanId is the first CHILD_OF reference in the same
 * trace, or 0. */
int ot_jaeger_thrift_batch(const ot_jaeger_batch *b, ot_buf *out, ot_err *err);

/* The exporter's path (direct.c): a request's protobuf bytes straight to
 * the bodies it is sent as, one per OTLP resource with spans, without the
 * api_v2 structs: the same bytes ot_jaeger_translate followed by
 * ot_jaeger_thrift_batch or ot_jaeger_proto_pack give. An encoder holds
 * the reusable views of one span; one per sender thread. */
typedef struct ot_jaeger_enc ot_jaeger_enc;
typedef struct ot_jaeger_body {
    size_t off, len; /* in the caller's out buffer */
    size_t spans;
} ot_jaeger_body;
ot_jaeger_enc *ot_jaeger_enc_new(void);
void ot_jaeger_enc_free(ot_jaeger_enc *e);
/* Appends the bodies (Thrift Batches when thrift, else PostSpansRequests)
 * to out; *bodies (valid until the next call) says where each is. 1
 * (nothing appended) when the bytes hold what only the decoded path
 * handles exactly (a singular message sent twice, which protobuf-c merges;
 * bytes that do not parse): the caller then decodes and uses
 * ot_jaeger_translate. -1 with err set on out of memory. */
int ot_jaeger_encode_wire(ot_jaeger_enc *e, int thrift, const uint8_t *wire, size_t len,
                          ot_buf *out, const ot_jaeger_body **bodies, size_t *n_bodies,
                          ot_err *err);

/* Splits an ExportTraceServiceRequest, in its wire form, into one request
 * per distinct resource (split.c): entries whose resource and schema_url
 * bytes are equal become one entry holding all their scope_spans, in
 * order. emit gets each request (valid only during the call) with its span
 * count, and returns 0 to go on or a positive value to stop, which is
 * returned. The bytes must be what the receivers' walker accepts (span
 * counts are taken from the outer fields only); -1 with err set when they
 * do not parse or memory runs out. scratch: the caller's reusable buffer. */
typedef int (*ot_jaeger_emit_fn)(void *ctx, const uint8_t *req, size_t len, size_t spans);
int ot_jaeger_split(const uint8_t *wire, size_t len, ot_buf *scratch, ot_jaeger_emit_fn emit,
                    void *ctx, ot_err *err);
/* The same, writing each request into n bytes dst gives (NULL: out of
 * memory), so a caller can have it written where it will live. A request
 * with one resource entry is not rewritten: emit gets wire itself. */
typedef uint8_t *(*ot_jaeger_dst_fn)(void *ctx, size_t n);
int ot_jaeger_split_to(const uint8_t *wire, size_t len, ot_jaeger_dst_fn dst, ot_jaeger_emit_fn emit,
                       void *ctx, ot_err *err);

#endif
