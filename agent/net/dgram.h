/* dgram.h: a datagram listener for receivers that take UDP or Unix
 * datagram packets (DogStatsD, syslog, …), so each one does not rewrite
 * the reader threads, batching, kernel-drop counting and clean stop.
 *
 * N reader threads each read batches of datagrams with recvmmsg into
 * buffers the reader owns (no allocation per packet) and hand every batch
 * to the user's callback on that thread. For UDP every reader has its own
 * SO_REUSEPORT socket, so the kernel spreads senders over the readers; for
 * a Unix datagram socket the readers share the one socket. */
#ifndef OT_DGRAM_H
#define OT_DGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/err.h"
#include "config/config.h"
#include "telemetry/telemetry.h"

#define OT_DGRAM_MAX_PACKET 65535

typedef struct ot_dgram_msg {
    const uint8_t *data; /* valid only during the callback */
    size_t len;
    /* The datagram was longer than max_packet_size: data holds its first
     * len (= max_packet_size) bytes, the rest is lost. It is delivered
     * anyway, so that a line-based protocol can keep the whole lines
     * before the cut, and counted in ot_dgram_stats.truncated. */
    bool truncated;
    /* The sender's address; peer_len is 0 when it has none (an unnamed
     * Unix datagram socket). */
    const struct sockaddr *peer;
    socklen_t peer_len;
    /* Unix datagram with want_creds: the sender's pid, uid, gid as the
     * kernel saw them (for origin detection). pid is 0 when unknown. */
    int32_t pid;
    uint32_t uid, gid;
} ot_dgram_msg;

/* Called on reader thread `reader` (0 .. readers-1) with n >= 1
 * datagrams; calls for one reader never overlap, so per-reader state
 * indexed by reader needs no lock. */
typedef void (*ot_dgram_fn)(void *ud, unsigned reader, const ot_dgram_msg *msgs, size_t n);

typedef struct ot_dgram_opts {
    /* Exactly one of: a UDP host:port (IPv4 or IPv6, port 0 picks one) */
    const ot_endpoint *endpoint;
    /* or a Unix datagram socket path; a stale socket file there is
     * removed at start, ours is removed at stop. */
    const char *socket_path;
    unsigned socket_permissions; /* e.g. 0666; 0 leaves the umask's mode */
    unsigned readers;            /* threads; 0 means 1 */
    /* SO_RCVBUF per socket (SO_RCVBUFFORCE first, which works for root
     * beyond net.core.rmem_max); 0 keeps the kernel default. */
    int receive_buffer_bytes;
    size_t max_packet_size; /* 0 means 8192; at most OT_DGRAM_MAX_PACKET */
    unsigned batch;         /* datagrams per recvmmsg; 0 means 64 */
    bool want_creds;        /* Unix datagram only: SO_PASSCRED */
    ot_dgram_fn fn;
    void *ud;
    /* Optional (may be NULL): self-telemetry cells the listener adds to. */
    ot_counter *packets_total, *bytes_total, *truncated_total, *kernel_drops_total;
} ot_dgram_opts;

typedef struct ot_dgram_stats {
    uint64_t packets, bytes; /* received, as delivered (cut ones count len) */
    uint64_t truncated;      /* longer than max_packet_size */
    /* Dropped by the kernel because a receive queue was full, summed over
     * the sockets (SO_RXQ_OVFL and SO_MEMINFO). Unix datagram senders
     * wait or fail instead of being dropped, so it stays 0 there. */
    uint64_t kernel_drops;
} ot_dgram_stats;

typedef struct ot_dgram ot_dgram;

/* Binds, then starts the readers. NULL with err, one line, e.g.
 * "listen udp 127.0.0.1:8125: Address already in use". */
ot_dgram *ot_dgram_start(const ot_dgram_opts *o, ot_err *err);
/* The bound UDP port (the real one when port 0 was asked); 0 for Unix. */
int ot_dgram_port(const ot_dgram *d);
/* The receive buffer the kernel granted per socket (SO_RCVBUF as read
 * back: Linux reports twice the bytes asked, the bookkeeping included). */
int ot_dgram_rcvbuf(const ot_dgram *d);
/* Counts so far; safe from any thread. Also brings kernel_drops_total up
 * to date, since the kernel only reports drops with the next datagram. */
void ot_dgram_get_stats(ot_dgram *d, ot_dgram_stats *out);
/* Wakes the readers, joins them, closes and frees everything; removes the
 * socket file. Returns after the last callback has returned. NULL is a
 * no-op. Not from inside the callback. */
void ot_dgram_stop(ot_dgram *d);

#endif
