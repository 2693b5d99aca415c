/* grpc_frame.h: gRPC's message framing and header values, as pure
 * functions over bytes (no sockets, no HTTP/2), so the server can be
 * tested and fuzzed piece by piece.
 *
 * A gRPC message on a stream is a 5-byte prefix (compressed flag, length as
 * big-endian uint32) and the message. OTLP's Export calls are unary: one
 * message per request stream. */
#ifndef OT_GRPC_FRAME_H
#define OT_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum {
    OT_GRPCF_OK = 0,
    OT_GRPCF_TOO_LARGE = -1, /* the prefix announces more than max_len */
    OT_GRPCF_REFUSED = -2,   /* the buffer callback said no (budget spent) */
    OT_GRPCF_EXTRA = -3,     /* bytes after the one message of a unary call */
    OT_GRPCF_BAD_FLAG = -4,  /* compressed flag other than 0 or 1 */
    OT_GRPCF_NO_MESSAGE = -5, /* stream ended before any message */
    OT_GRPCF_TRUNCATED = -6, /* stream ended inside a message */
    OT_GRPCF_NOMEM = -7,
};

/* Returns where the len bytes of the message go, or NULL to refuse (then
 * *why is OT_GRPCF_REFUSED or OT_GRPCF_NOMEM). */
typedef uint8_t *(*ot_grpcf_alloc_fn)(void *ctx, uint32_t len, bool compressed, int *why);

typedef struct ot_grpcf_reader {
    uint8_t hdr[5];
    uint8_t hdr_got;
    bool compressed;
    bool have_len; /* prefix complete, buf allocated */
    uint32_t len;
    uint8_t *buf;
    size_t got;
    size_t max_len;
    ot_grpcf_alloc_fn alloc;
    void *ctx;
} ot_grpcf_reader;

void ot_grpcf_reader_init(ot_grpcf_reader *r, size_t max_len, ot_grpcf_alloc_fn alloc, void *ctx);
/* Feeds the next bytes of the stream's DATA. OT_GRPCF_OK or an error; after
 * an error the reader must not be fed again. */
int ot_grpcf_feed(ot_grpcf_reader *r, const uint8_t *p, size_t n);
/* At end of stream: OT_GRPCF_OK when exactly one whole message was read. */
int ot_grpcf_finish(const ot_grpcf_reader *r);
/* True once the whole message is in. */
bool ot_grpcf_complete(const ot_grpcf_reader *r);

void ot_grpcf_prefix(uint8_t out[5], bool compressed, uint32_t len);

/* grpc-timeout ("1S", "250m", "30000000n": at most 8 digits, then one of
 * H M S m u n) → ns. -1 when malformed. */
int ot_grpcf_parse_timeout(const char *v, size_t n, int64_t *ns);

/* grpc-message: percent-encodes bytes outside printable ASCII and '%'. */
int ot_grpcf_percent_encode(const char *msg, ot_buf *out);
/* Base64 without padding (for -bin header values). */
int ot_grpcf_base64(const uint8_t *p, size_t n, ot_buf *out);

#endif
