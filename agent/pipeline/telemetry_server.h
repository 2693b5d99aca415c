/* telemetry_server.h: the HTTP endpoint of the agent's own metrics and
 * health (/metrics, /healthz, /readyz). The registry it renders is
 * telemetry/telemetry.h; this layer owns the listener because it sits above
 * net/. */
#ifndef OT_TELEMETRY_SERVER_H
#define OT_TELEMETRY_SERVER_H

#include "config/config.h"
#include "base/err.h"

typedef struct ot_tel_server ot_tel_server;
/* Serves /metrics, /healthz, /readyz on endpoint. The listening socket is
 * bound before this returns, so "address in use" comes back here as NULL
 * with err set. Port 0 picks a free port; a host that resolves to several
 * addresses binds the first that works, IPv4 first. */
ot_tel_server *ot_tel_server_start(const ot_endpoint *ep, ot_err *err);
/* The bound port (the one picked when the endpoint said 0). */
int ot_tel_server_port(const ot_tel_server *s);
/* Stops serving and frees s; NULL is a no-op. */
void ot_tel_server_stop(ot_tel_server *s);

#endif
