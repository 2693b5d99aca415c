/* net.h: listening sockets, made the same way by every server in the agent
 * (self-telemetry, OTLP HTTP and gRPC, …) so that bind errors read alike
 * and port 0 works everywhere. */
#ifndef OT_NET_H
#define OT_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "base/err.h"

/* A bound, listening, non-blocking, close-on-exec TCP socket for ep; IPv4
 * results are tried before IPv6 ones, as most clients of "localhost" do.
 * -1 with err "listen <endpoint>: <reason>" on failure. */
int ot_net_listen(const ot_endpoint *ep, int backlog, ot_err *err);
/* The same for a UDP socket: bound, non-blocking, close-on-exec, no
 * SO_REUSEADDR (a taken port is an error). reuseport sets SO_REUSEPORT so
 * more sockets can join the same address, one per reader (the kernel lets
 * only sockets of the same user join).
 * -1 with err "listen udp <endpoint>: <reason>". */
int ot_net_bind_udp(const ot_endpoint *ep, bool reuseport, ot_err *err);
/* A Unix socket file's identity, so that only our own file is removed. */
typedef struct ot_net_unix_id {
    uint64_t dev, ino;
} ot_net_unix_id;

/* A bound, non-blocking, close-on-exec Unix socket of type SOCK_DGRAM or
 * SOCK_STREAM (then listening) at path, chmod to mode unless mode is 0. A
 * stale socket file (nobody serving it) is removed first; a live one, or
 * a file that is not a socket, is an error:
 * "listen unixgram|unix <path>: <reason>". */
int ot_net_bind_unix(const char *path, int type, unsigned mode, ot_net_unix_id *id,
                     ot_err *err);
/* Removes path if it is still the file ot_net_bind_unix made. */
void ot_net_unlink_unix(const char *path, const ot_net_unix_id *id);

/* The local port of a bound socket (the real one when ep asked for 0). */
int ot_net_bound_port(int fd);

#endif
