/* net.h: listening sockets, made the same way by every server in the agent
 * (self-telemetry, OTLP HTTP and gRPC, …) so that bind errors read alike
 * and port 0 works everywhere. */
#ifndef OT_NET_H
#define OT_NET_H

#include "config/config.h"
#include "base/err.h"

/* A bound, listening, non-blocking, close-on-exec TCP socket for ep; IPv4
 * results are tried before IPv6 ones, as most clients of "localhost" do.
 * -1 with err "listen <endpoint>: <reason>" on failure. */
int ot_net_listen(const ot_endpoint *ep, int backlog, ot_err *err);
/* The local port of a bound socket (the real one when ep asked for 0). */
int ot_net_bound_port(int fd);

#endif
