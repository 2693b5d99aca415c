/* telemetry_server.h: the HTTP endpoint of the agent's own metrics and
 * health (/metrics, /healthz, /readyz). The registry it renders is
 * telemetry/telemetry.h; this layer owns the listener because it sits above
 * net/.
 *
 * It outlives reloads of the service (probes must keep answering while the
 * pipelines are rebuilt), so it owns a copy of its settings, and the
 * authenticator /metrics asks, which lives in the service, is handed to it
 * (ot_tel_server_set_auth) rather than looked up by it. */
#ifndef OT_TELEMETRY_SERVER_H
#define OT_TELEMETRY_SERVER_H

#include <stdbool.h>

#include "base/err.h"
#include "config/config.h"
#include "net/auth.h"
#include "net/tls.h"

typedef struct ot_tel_server ot_tel_server;

typedef struct ot_tel_server_cfg {
    const ot_endpoint *endpoint;
    const ot_tls_server *tls;  /* NULL or !present: plain HTTP; copied */
    /* An extension id /metrics requires; NULL or "": /metrics is open.
     * /healthz and /readyz never ask: a kubelet probe carries no
     * credentials. */
    const char *authenticator;
} ot_tel_server_cfg;

/* Serves /metrics, /healthz, /readyz on c->endpoint. The listening socket
 * is bound before this returns, so "address in use" comes back here as
 * NULL with err set. Port 0 picks a free port; a host that resolves to
 * several addresses binds the first that works, IPv4 first. With an
 * authenticator, /metrics answers 401 until ot_tel_server_set_auth gives
 * it one. */
ot_tel_server *ot_tel_server_start_cfg(const ot_tel_server_cfg *c, ot_err *err);
/* Plain HTTP, no auth. */
ot_tel_server *ot_tel_server_start(const ot_endpoint *ep, ot_err *err);
/* Whether s serves what c describes (else it must be restarted). */
bool ot_tel_server_matches(const ot_tel_server *s, const ot_tel_server_cfg *c);
/* The extension id it was started with, NULL when /metrics is open. */
const char *ot_tel_server_authenticator(const ot_tel_server *s);
/* The authenticator /metrics asks from now on; NULL refuses every scrape
 * (fail closed: set before the service that owns the old one frees it).
 * Returns once no request uses the previous one. */
void ot_tel_server_set_auth(ot_tel_server *s, ot_auth *a);
/* The bound port (the one picked when the endpoint said 0). */
int ot_tel_server_port(const ot_tel_server *s);
/* Times the TLS files were loaded again since start. */
unsigned ot_tel_server_reloads(const ot_tel_server *s);
/* Stops serving and frees s; NULL is a no-op. */
void ot_tel_server_stop(ot_tel_server *s);

#endif
