/* http_server.h: the one HTTP/1.1 server every listener of the agent stands
 * on (self-telemetry, OTLP/HTTP, the Prometheus scrape endpoint): our own,
 * on epoll, with TLS through OpenSSL (http_server.c). It binds through net/listen.h, so a busy port is one error
 * line from ot_http_server_start; it answers what every server answers the
 * same way (404, 405 with Allow, 413, basic auth, client certificates) and
 * leaves the rest to routes or to one handler that routes itself.
 *
 * Handlers run on the server's threads. A request is answered once, with
 * ot_http_send (or ot_http_reply); the server frees what it allocated when
 * the request is over. */
#ifndef OT_HTTP_SERVER_H
#define OT_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "config/config.h"
#include "net/tls.h"

struct sockaddr;
typedef struct ot_http_server ot_http_server;
typedef struct ot_http_req ot_http_req;
typedef struct ot_http_resp ot_http_resp;

/* ---- handlers ------------------------------------------------------------ */

typedef void (*ot_http_fn)(ot_http_req *q, void *arg);

/* One route: an exact path and a method ("GET" answers HEAD too). The
 * handler runs once the whole body is in (ot_http_body); a body over
 * max_body is answered 413 without calling it. */
typedef struct ot_http_route {
    const char *method;
    const char *path;
    ot_http_fn fn;
} ot_http_route;

/* A server that routes itself and reads bodies as they arrive. */
typedef struct ot_http_stream {
    /* Headers are in. Reply to refuse (the body is not read); return
     * without replying to read it. */
    ot_http_fn begin;
    /* The next part of the body, in order. False cuts the connection. */
    bool (*data)(ot_http_req *q, const uint8_t *p, size_t n, void *arg);
    /* The body is in: reply. */
    ot_http_fn end;
    /* The request is over, answered or not (cut off, timed out, server
     * stopped): release what ot_http_req_state holds. May be NULL. */
    ot_http_fn done;
    /* The server cut the connection of a request under way (its deadline
     * passed, or it was evicted with an answer nobody reads) and the
     * server calls done only when its loop reaps the socket: give back at
     * once what may be given back from another thread (a reservation of
     * bytes in flight), leaving the rest to done. Runs on the server's
     * deadline thread, maybe while data runs, at most once and never after
     * done has begun. May be NULL. */
    ot_http_fn cut;
    /* Bytes of zeroed per-request state held for the handler. */
    size_t state_size;
} ot_http_stream;

typedef struct ot_http_server_opts {
    const char *log_component; /* the server's own messages are logged under it */
    int threads;               /* 0: 1 */
    /* Open at once; the next evicts the one waiting longest without a
     * request under way (http_guard.h). 0: 64. */
    unsigned max_connections;
    /* A request must arrive whole within it (headers since the connection
     * opened or its last request ended, the body since its headers), and a
     * connection may not sit idle longer; 0: 10. */
    unsigned timeout_s;
    int backlog;               /* 0: 64 */
    size_t max_body;           /* routes: bodies above are refused 413; 0: 1 MiB */
    const ot_tls_server *tls;  /* NULL or !present: plaintext. Kept, not copied. */
    /* Basic auth on every request when user is set; compared in constant
     * time. 401 with WWW-Authenticate otherwise. */
    const char *basic_auth_user, *basic_auth_password;
    const char *realm; /* NULL: "otelite" */
    /* An authenticator extension (net/auth.h) every request must pass,
     * before its body is read: 401 otherwise. NULL: none. Kept. */
    struct ot_auth *auth;
    /* Either routes or stream. */
    const ot_http_route *routes;
    size_t n_routes;
    const ot_http_stream *stream;
    /* The server's own refusals (401, 404, 405, 413, 500) as the server
     * wants them to look: it must reply with status. NULL: text/plain. The
     * headers a refusal needs (Allow, WWW-Authenticate) are added after. */
    void (*refuse)(ot_http_req *q, unsigned status, const char *msg, void *arg);
    void *arg; /* passed to every callback */
} ot_http_server_opts;

/* Binds ep (port 0 picks one) and serves. NULL with err set, one line:
 * "listen 127.0.0.1:4318: Address already in use", a TLS file that cannot
 * be read or a key that does not match. opts is copied; the strings and
 * tables it points to must outlive the server. */
ot_http_server *ot_http_server_start(const ot_endpoint *ep, const ot_http_server_opts *opts,
                                     ot_err *err);
/* The bound port (the one picked when ep said 0). */
int ot_http_server_port(const ot_http_server *s);
/* Times the TLS files were loaded again since start (tests, logs). */
unsigned ot_http_server_reloads(const ot_http_server *s);
/* Checks the TLS files now instead of at the next reload_interval tick;
 * 1 when new ones were taken, 0 when unchanged, -1 (err set) when a reload
 * failed and the old ones are still served. */
int ot_http_server_reload(ot_http_server *s, ot_err *err);
/* Stops accepting, lets requests past their headers finish until
 * deadline_ns (ot_now_ns clock; 0: not at all), then closes everything and
 * frees s. NULL is a no-op. */
void ot_http_server_stop(ot_http_server *s, int64_t deadline_ns);

/* ---- the request ------------------------------------------------------------ */

const char *ot_http_method(const ot_http_req *q);
const char *ot_http_path(const ot_http_req *q); /* without the query */
/* Header by name, any case; NULL when absent. */
const char *ot_http_header(const ot_http_req *q, const char *name);
/* A query argument, decoded; NULL when absent or given without a value. */
const char *ot_http_query(const ot_http_req *q, const char *name);
/* Calls fn for every header until it returns false. */
void ot_http_each_header(const ot_http_req *q,
                         bool (*fn)(void *ctx, const char *name, const char *value), void *ctx);
const struct sockaddr *ot_http_peer(const ot_http_req *q);
/* The body of a route's request (NULL, 0 when empty; NUL-terminated). */
const uint8_t *ot_http_body(const ot_http_req *q, size_t *len);
/* A stream handler's per-request state (state_size bytes, zeroed). */
void *ot_http_req_state(ot_http_req *q);

/* ---- responses ---------------------------------------------------------------- */

/* The body is copied (copy) or handed over and free()d by the server (take;
 * freed on failure too). */
ot_http_resp *ot_http_resp_copy(const void *body, size_t len);
ot_http_resp *ot_http_resp_take(void *body, size_t len);
/* A body produced while it is sent, never held whole: read fills at most
 * cap bytes of buf and returns how many, 0 at the end, -1 to cut the
 * connection. len is the total when known, -1 for chunked. release (may be
 * NULL) runs once when the response is done with, sent or not. */
ot_http_resp *ot_http_resp_stream(int64_t len, ssize_t (*read)(void *ctx, char *buf, size_t cap),
                                  void (*release)(void *ctx), void *ctx);
/* -1 when the response could not take the header (out of memory). */
int ot_http_resp_header(ot_http_resp *r, const char *name, const char *value);
/* Answers q with status and r, which it takes (r NULL: out of memory, the
 * connection is cut). Once per request; -1 when it was not queued. */
int ot_http_send(ot_http_req *q, unsigned status, ot_http_resp *r);
/* A copied body with its Content-Type (NULL: none). */
int ot_http_reply(ot_http_req *q, unsigned status, const char *ctype, const void *body,
                  size_t len);
bool ot_http_replied(const ot_http_req *q);

#endif
