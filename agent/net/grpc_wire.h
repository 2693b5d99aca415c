/* grpc_wire.h: the parts of gRPC's wire protocol that both ends here
 * speak, the OTLP receiver's server and the gRPC client (net/grpc_client.h),
 * as pure functions over bytes and strings: status codes and their names,
 * what a failure without grpc-status means, google.rpc.Status with
 * RetryInfo, the OTLP Export method paths, the 5-byte message prefix, the
 * grpc-timeout and grpc-message header values, and the target an endpoint
 * names. Sockets, HTTP/2 and TLS are elsewhere. */
#ifndef OT_GRPC_WIRE_H
#define OT_GRPC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
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

/* "UNAVAILABLE" …; "UNKNOWN" for a code outside the table. */
const char *ot_grpc_code_name(int code);
/* gRPC's mapping for a response that carries no grpc-status: from its HTTP
 * status, or from the HTTP/2 error code of a RST_STREAM. */
int ot_grpc_code_from_http(int http_status);
int ot_grpc_code_from_h2(uint32_t h2_error);

/* A decoded google.rpc.Status, with the delay of a RetryInfo detail. */
typedef struct ot_grpc_status {
    int code;
    char msg[256];
    bool has_retry_info;
    int64_t retry_delay_ns;
} ot_grpc_status;

/* Protobuf bytes of google.rpc.Status; -1 when they do not decode. */
int ot_grpc_status_from_pb(const void *buf, size_t len, ot_grpc_status *out);
/* The grpc-status-details-bin header: base64 (padding optional) of the
 * Status bytes; -1 when it does not decode. */
int ot_grpc_status_from_bin(const char *b64, size_t len, ot_grpc_status *out);

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

/* Where a client connects. */
typedef struct ot_grpc_target {
    char host[256]; /* without brackets */
    int port;
    bool tls;
    char authority[300]; /* host:port as :authority, IPv6 bracketed */
} ot_grpc_target;

/* A gRPC endpoint: "host:port", "[v6]:port", with an optional http:// or
 * https:// scheme (https means TLS, http plaintext) and an optional
 * trailing "/"; gRPC's "dns:///" and "passthrough:///" prefixes mean no
 * scheme. Without a scheme, TLS unless insecure. A missing port is 443
 * with TLS and 80 without, as gRPC clients do. */
int ot_grpc_target_parse(const char *endpoint, bool insecure, ot_grpc_target *out, ot_err *err);

#endif
