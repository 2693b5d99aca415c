/* grpc_wire.h: the parts of gRPC's wire protocol that both ends here
 * speak, the OTLP receiver's server and the OTLP exporter's client, as
 * pure functions over bytes and strings: status codes, the Export method
 * paths, the 5-byte message prefix, and the grpc-timeout and grpc-message
 * header values. Sockets, HTTP/2 and TLS stay with each component. */
#ifndef OT_GRPC_WIRE_H
#define OT_GRPC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "model/otlp.h"

/* grpc-status values. */
enum {
    OT_GRPC_OK = 0,
    OT_GRPC_CANCELLED = 1,
    OT_GRPC_UNKNOWN = 2,
    OT_GRPC_INVALID_ARGUMENT = 3,
    OT_GRPC_DEADLINE_EXCEEDED = 4,
    OT_GRPC_NOT_FOUND = 5,
    OT_GRPC_ALREADY_EXISTS = 6,
    OT_GRPC_PERMISSION_DENIED = 7,
    OT_GRPC_RESOURCE_EXHAUSTED = 8,
    OT_GRPC_FAILED_PRECONDITION = 9,
    OT_GRPC_ABORTED = 10,
    OT_GRPC_OUT_OF_RANGE = 11,
    OT_GRPC_UNIMPLEMENTED = 12,
    OT_GRPC_INTERNAL = 13,
    OT_GRPC_UNAVAILABLE = 14,
    OT_GRPC_DATA_LOSS = 15,
    OT_GRPC_UNAUTHENTICATED = 16,
};

/* "/opentelemetry.proto.collector.trace.v1.TraceService/Export" … ("/"
 * for no signal). */
const char *ot_grpc_path(ot_signal s);
/* The signal whose Export method p[0..n) names; -1 for any other path. */
int ot_grpc_path_signal(const char *p, size_t n);

/* A message on a stream is this prefix (compressed flag, length as
 * big-endian uint32) and the message. */
void ot_grpc_prefix(uint8_t out[5], bool compressed, uint32_t len);
/* The length a prefix announces. */
uint32_t ot_grpc_prefix_len(const uint8_t p[5]);

/* grpc-timeout ("1S", "250m", "30000000n": at most 8 digits, then one of
 * H M S m u n) → ns, saturating. -1 when malformed. */
int ot_grpc_timeout_parse(const char *v, size_t n, int64_t *ns);
/* The grpc-timeout value for a remaining time ("4999m", "10S"): rounded up,
 * so the other end never sees a shorter deadline than ours. */
void ot_grpc_timeout_format(int64_t ns, char out[16]);

/* grpc-message: percent-encodes bytes outside printable ASCII and '%'. */
int ot_grpc_percent_encode(const char *msg, ot_buf *out);
/* The reverse, into out (NUL-terminated, truncated to cap); a '%' not
 * followed by two hex digits stays as it is. */
void ot_grpc_percent_decode(const char *in, size_t len, char *out, size_t cap);

#endif
