/* http_guard.h: an HTTP server's account of its connections, so that no
 * neighbour can take a listener away from the others (http_server.c is its
 * one user).
 *
 * A server that stops accepting at its connection limit lets the kernel's
 * backlog fill: a few hundred idle sockets made the telemetry port (and
 * with it /healthz and /readyz) stop answering. An idle timeout alone lets
 * a client sending one header byte a second hold a connection for ever.
 * The guard counts the connections the server
 * accepted, and when there are max_connections already it closes
 * the one that has waited longest without a request under way (idle
 * keep-alive, slow headers, an answer nobody reads) to make room: a new
 * connection (a probe) is therefore served. The server's own limit is
 * set above (ot_http_guard_hard_limit), for the evicted ones it has not
 * closed yet. It also closes what outlives the
 * whole-request deadline: headers that have not arrived within it since
 * the connection opened or its last request ended, and a request whose
 * body has not arrived within it since its headers did (answered 408 on a
 * plaintext connection). */
#ifndef OT_HTTP_GUARD_H
#define OT_HTTP_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/err.h"

typedef struct ot_http_guard ot_http_guard;
typedef struct ot_http_gconn ot_http_gconn;

typedef struct ot_http_guard_opts {
    unsigned max_connections;   /* open at once; the next one evicts */
    int64_t request_timeout_ns; /* the whole-request deadline */
    bool tls;                   /* no plaintext 408 can be written then */
    /* The guard is closing the connection of a request under way (its
     * deadline passed, or it was evicted with its answer unread): called
     * with that request (ot_http_guard_begin's req) before the shutdown(),
     * from the guard's lock on whichever thread closes, at most once per
     * request and never after ot_http_guard_done. The server can give back
     * there what the request reserved, instead of when its loop reaps
     * the socket. May be NULL. */
    void (*cut)(void *req, void *arg);
    void *arg;
} ot_http_guard_opts;

typedef struct ot_http_guard_stats {
    uint64_t accepted, evicted, timed_out, refused;
    unsigned open;
} ot_http_guard_stats;

/* Starts the thread that checks deadlines. NULL with err set. */
ot_http_guard *ot_http_guard_start(const ot_http_guard_opts *o, ot_err *err);
/* Stops checking (joins the thread); connections still open stay known
 * until the server closes them. */
void ot_http_guard_stop(ot_http_guard *g);
/* After the server closed every connection. NULL is a no-op. */
void ot_http_guard_free(ot_http_guard *g);
/* The server's account of a connection's life, from its own threads. */
ot_http_gconn *ot_http_guard_opened(ot_http_guard *g, int fd);
void ot_http_guard_closed(ot_http_guard *g, ot_http_gconn *c);
/* Headers are in: the body's deadline starts; req is what cut is given. */
void ot_http_guard_begin(ot_http_guard *g, ot_http_gconn *c, void *req);
/* The server is about to queue the answer: false when the guard has
 * already answered or closed the connection (the server must not). */
bool ot_http_guard_answer(ot_http_guard *g, ot_http_gconn *c);
/* The request is over: the connection waits for the next one. Once it
 * returns, cut is not called with the request any more (so it may be
 * freed). */
void ot_http_guard_done(ot_http_guard *g, ot_http_gconn *c);
ot_http_guard_stats ot_http_guard_get_stats(ot_http_guard *g);
/* Connections open at once, evicted ones not yet closed included, beyond
 * which a new one is refused. */
unsigned ot_http_guard_hard_limit(unsigned max_connections);

#endif
