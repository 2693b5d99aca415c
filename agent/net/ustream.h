/* ustream.h: a Unix stream socket listener for receivers whose clients
 * connect over a socket path (DogStatsD over "unix://", …): one epoll
 * thread serves every connection and hands the user whole messages.
 *
 * Framed (the default) is the DogStatsD stream framing: each message is
 * prefixed by its length, 4 bytes little-endian. A frame longer than
 * max_packet_size closes that connection only (counted as oversized).
 * Raw hands over the bytes as each read returns them, for protocols that
 * find their own boundaries; the connection id says which stream they
 * belong to. */
#ifndef OT_USTREAM_H
#define OT_USTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "telemetry/telemetry.h"

#define OT_USTREAM_MAX_PACKET (16u << 20)

typedef enum ot_ustream_framing {
    OT_USTREAM_FRAMED = 0, /* u32 little-endian length, then the message */
    OT_USTREAM_RAW,        /* bytes as read */
} ot_ustream_framing;

typedef struct ot_ustream_msg {
    const uint8_t *data; /* valid only during the callback */
    size_t len;          /* framed: never 0, empty frames are skipped */
    uint64_t conn;       /* the connection, unique while the listener runs */
    /* The peer at connect time (SO_PEERCRED), for origin detection. */
    int32_t pid;
    uint32_t uid, gid;
} ot_ustream_msg;

/* Both called on the listener's one thread, never at the same time. */
typedef void (*ot_ustream_fn)(void *ud, const ot_ustream_msg *msgs, size_t n);
/* A connection ended (peer closed, error, oversized frame, or stop): the
 * user can drop what it kept for conn. May be NULL. */
typedef void (*ot_ustream_close_fn)(void *ud, uint64_t conn);

typedef struct ot_ustream_opts {
    /* A stale socket file there is removed at start, ours at stop. */
    const char *socket_path;
    unsigned socket_permissions; /* e.g. 0666; 0 leaves the umask's mode */
    ot_ustream_framing framing;
    /* Framed: longest message (default 8192, at most OT_USTREAM_MAX_PACKET).
     * Raw: the most bytes handed over in one message. */
    size_t max_packet_size;
    /* More are accepted and closed at once (counted as refused). 0: 1024. */
    unsigned max_connections;
    ot_ustream_fn fn;
    ot_ustream_close_fn on_close;
    void *ud;
    /* Optional (may be NULL): self-telemetry cells the listener adds to. */
    ot_counter *messages_total, *bytes_total, *oversized_total, *refused_total;
} ot_ustream_opts;

typedef struct ot_ustream_stats {
    uint64_t messages, bytes;    /* delivered (bytes without length prefixes) */
    uint64_t accepted, open;     /* connections: ever accepted, open now */
    uint64_t oversized;          /* connections closed for a frame too long */
    uint64_t incomplete;         /* connections that ended inside a frame */
    uint64_t refused;            /* over max_connections */
} ot_ustream_stats;

typedef struct ot_ustream ot_ustream;

/* Binds, listens and starts the thread. NULL with err, one line, e.g.
 * "listen unix /var/run/dsd.socket: socket in use by another process". */
ot_ustream *ot_ustream_start(const ot_ustream_opts *o, ot_err *err);
/* Counts so far; safe from any thread. */
void ot_ustream_get_stats(ot_ustream *u, ot_ustream_stats *out);
/* Stops accepting, closes every connection (on_close for each, on the
 * listener's thread), joins it, removes the socket file, frees everything.
 * NULL is a no-op. Not from inside a callback. */
void ot_ustream_stop(ot_ustream *u);

#endif
