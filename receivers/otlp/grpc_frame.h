/* grpc_frame.h: reading the request message of a gRPC call as its DATA
 * arrives, as pure functions over bytes (no sockets, no HTTP/2), so the
 * server can be tested and fuzzed piece by piece.
 *
 * A gRPC message on a stream is a 5-byte prefix (see grpc_wire.h) and the
 * message. OTLP's Export calls are unary: one message per request stream.
 * The prefix is checked before the message is read, so an oversized or
 * unaffordable one is refused without reading it. */
#ifndef OT_GRPC_FRAME_H
#define OT_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
