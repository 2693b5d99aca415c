/* http1_int.h: what the files of the HTTP server share and nothing else
 * sees: the server (http_server.c: loops, start and stop; http1_conn.c:
 * a connection's sockets and buffers), its requests
 * (http1_req.c: the request API, refusals, routing) and its responses
 * (http_resp.c). */
#ifndef OT_HTTP1_INT_H
#define OT_HTTP1_INT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "net/http1_parse.h"
#include "net/http_guard.h"
#include "net/http_server.h"

struct ot_http_resp {
    ot_buf head; /* header lines, each "Name: value\r\n" */
    const uint8_t *body;
    size_t len;
    void *owned; /* freed with the response */
    /* a streamed body */
    ssize_t (*read)(void *ctx, char *buf, size_t cap);
    void (*release)(void *ctx);
    void *ctx;
    int64_t slen; /* -1: chunked */
};

void ot_h1_resp_free(ot_http_resp *r);

typedef struct h1conn h1conn;
typedef struct h1loop h1loop;

struct ot_http_req {
    ot_http_server *s;
    h1conn *c;
    ot_h1_head h;
    const ot_http_route *route;
    uint8_t *body; /* a route's body */
    size_t len, cap;
    uint64_t received;
    bool replied, too_large, cut_off;
    const char *extra_name, *extra_value; /* Allow or WWW-Authenticate of a refusal */
    alignas(max_align_t) unsigned char state[];
};

struct ot_http_server {
    ot_http_server_opts o;
    int fd, port;
    bool tls, need_client_cert, auth;
    unsigned char auth_digest[32];
    char auth_challenge[160];
    unsigned hard_limit;
    atomic_uint nconns;
    atomic_int active; /* requests past their headers, not yet over */
    atomic_bool stopping, quit;
    atomic_int stop_acked; /* loops that stopped accepting */

    pthread_mutex_t mu; /* ctx, pems, stamp */
    struct ssl_ctx_st *ctx;
    ot_tls_server_pems pems;
    uint64_t stamp;
    atomic_uint reloads;
    pthread_t watcher;
    bool watching, watch_stop;
    pthread_cond_t cv;

    ot_http_guard *guard;
    int nloops;
    h1loop *loops;
};

/* A connection and its loop (http1_conn.c, http_server.c). */
enum { C_HEAD, C_BODY, C_SEND, C_LINGER };
#define SPARE_BUFS 8

struct h1conn {
    int fd, st;
    struct ssl_st *ssl;
    h1loop *lp;
    ot_http_gconn *gc;
    struct sockaddr_storage peer;
    char *buf; /* BUF_CAP: [0, head_len) the head, [pos, len) unread input */
    size_t len, pos, head_len, scanned;
    ot_http_req *q;
    bool in_req, body_done, body_chunked, keep_alive, head_only;
    uint64_t body_left, lingered;
    ot_h1_chunk ch;
    ot_buf out; /* the answer's head, a small body, a piece of a streamed one */
    size_t out_off;
    ot_http_resp *resp;
    size_t body_off;
    uint64_t streamed;
    bool resp_chunked, resp_eof;
    /* a plaintext read came back short: the socket was empty then, and
     * the next byte brings an event (edge-triggered), so no read is tried
     * before it */
    bool drained;
    int64_t active_at;
    h1conn *prev, *next; /* the loop's, least recently active first */
};

struct h1loop {
    ot_http_server *s;
    int ep, wake;
    pthread_t thr;
    bool started, listening, stop_seen;
    int64_t relisten_at, next_sweep;
    h1conn *head, *tail;
    /* buffers of connections that went idle, for the next that reads: a
     * request does not pay a malloc and fresh pages for its buffer */
    char *spare[SPARE_BUFS];
    int nspare;
};

/* http1_conn.c: a loop's connections. */
void ot_h1_conn_new(h1loop *lp, int fd, const struct sockaddr_storage *sa);
/* Reads, hands on, answers as far as the socket lets it (edge-triggered). */
void ot_h1_conn_run(h1conn *c);
void ot_h1_conn_close(h1conn *c);

/* http1_req.c: the request's life as the connection sees it. */
/* The head is in (q->h): auth, routing, begin. */
void ot_h1_req_begin(ot_http_req *q);
/* Body bytes, de-chunked; false cuts the connection. */
bool ot_h1_req_data(ot_http_req *q, const uint8_t *p, size_t n);
/* The whole body is in: the answer. */
void ot_h1_req_end(ot_http_req *q);
/* The server's own refusal of q (status, a short text). */
void ot_h1_refuse(ot_http_req *q, unsigned status, const char *msg, const char *hname,
                  const char *hvalue);
void ot_h1_sha256(const void *p, size_t n, unsigned char out[32]);

/* http1_tls.c: a server context for the PEMs (NULL, err set, when they do
 * not make one); the thread that reloads them every reload_interval. */
struct ssl_ctx_st *ot_h1_tls_ctx(const ot_tls_server *t, const ot_tls_server_pems *p,
                                 ot_err *err);
void *ot_h1_tls_watch(void *arg);

/* http1_conn.c: what a request asks of its connection. */
/* Queues status and r (taken) as q's answer. -1 when it cannot be. */
int ot_h1_conn_queue(h1conn *c, unsigned status, ot_http_resp *r, const char *xname,
                     const char *xvalue);
const struct sockaddr *ot_h1_conn_peer(const h1conn *c);
/* A client certificate was shown and verified (TLS with client_ca_file). */
bool ot_h1_conn_client_cert_ok(const h1conn *c);

#endif
