/* grpc_client_int.h: what the three files of the gRPC client share (see
 * grpc_client.h for the API). grpc_client.c has the loop thread, the call
 * queue, dispatch, timers and the public functions; grpc_conn.c the
 * connections: connect, TLS, reading and writing sockets, teardown;
 * grpc_h2.c the nghttp2 side: callbacks and streams. Everything here runs
 * on the loop thread unless it says otherwise. */
#ifndef OT_GRPC_CLIENT_INT_H
#define OT_GRPC_CLIENT_INT_H

#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "base/backoff.h"
#include "base/clock.h"
#include "net/grpc_client.h"
#include "telemetry/telemetry.h"

#define OUT_HIGH (256u << 10)     /* stop taking frames from nghttp2 above this */
#define RESP_MAX (4u << 20)       /* gRPC's default receive limit */
#define CONNECT_TIMEOUT 20000000000LL
#define LOCAL_WINDOW (1 << 20)

typedef struct gconn gconn;
typedef struct gstream gstream;
typedef struct gcall gcall;

enum { CALL_WAITING, CALL_INFLIGHT };

/* One call as the caller hands it over; on the caller's stack. */
struct gcall {
    gcall *next, *prev; /* incoming (next only) or the loop's live list */
    int state;
    const char *path;
    const ot_strmap *md; /* this call's own metadata, or NULL */
    const uint8_t *msg;
    size_t len;
    bool compressed;
    int64_t deadline;
    ot_grpc_reply *reply;
    gstream *st;
    bool done; /* under g->mu */
    pthread_cond_t cond;
};

/* One HTTP/2 stream; outlives its call when the call's deadline passes
 * first (then call is NULL and the body is gone). */
struct gstream {
    gstream *next, *prev;
    gconn *c;
    gcall *call;
    int32_t id;
    uint8_t prefix[5];
    const uint8_t *body;
    size_t body_len;
    size_t sent; /* of 5 + body_len */
    char timeout[16];
    int http_status;
    bool grpc_content;
    bool have_status;
    int grpc_status;
    char grpc_message[256];
    bool have_details;
    ot_grpc_status details;
    bool resp_gzip;
    bool resp_overflow;
};

enum { CS_IDLE, CS_CONNECTING, CS_TLS, CS_READY, CS_BACKOFF };

struct gconn {
    ot_grpc_client *g;
    int idx;
    int state;
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    ot_buf out;
    size_t out_off;
    uint32_t events; /* registered with epoll */
    bool want_write;
    /* TLS can need the other direction: a read that must write first (wait
     * for EPOLLOUT, then read) or a write that must read first (wait for
     * EPOLLIN, not a writable socket that would spin the loop). */
    bool read_wants_write, write_wants_read;
    int64_t until; /* CONNECTING/TLS: give up; BACKOFF: try again */
    unsigned failures;
    size_t active;
    gstream *streams;
    bool goaway;
    bool dead; /* a callback saw a fatal socket error */
    int64_t last_rx;
    int64_t ping_at;
    struct addrinfo *addrs; /* of the attempt under way */
    size_t n_addrs, first, tried;
    char err[160];
};

struct ot_grpc_client {
    const ot_grpc_client_cfg *cfg;
    const char *log; /* log module */
    ot_tls_reloader *tls; /* NULL: plaintext */
    const char *verify_name; /* server_name_override or host */
    bool verify_ip;
    nghttp2_session_callbacks *cbs;
    nghttp2_nv fixed[8];
    size_t n_fixed;
    char **hdr_names; /* lower-cased copies of cfg->metadata keys */
    size_t n_hdr;
    ot_backoff_cfg reconnect;
    uint64_t rng;

    pthread_mutex_t mu;
    gcall *incoming; /* under mu; newest first */
    bool stopping;   /* under mu */
    bool started;
    pthread_t thread;
    int epfd, evfd;

    /* Loop thread only. */
    gcall *live;
    gconn *conns;
    int nconn;
    unsigned rr;
    bool need_dispatch;
    char last_err[200];

    atomic_int nready;
    ot_gauge *g_ready;
};

static inline size_t out_pending(const gconn *c)
{
    return c->out.len - c->out_off;
}

/* grpc_client.c: completes a call and takes it off the live list; the last
 * time the loop touches it. */
void ot_grpcc_finish(ot_grpc_client *g, gcall *call, int code, const char *msg);

/* grpc_conn.c */
void ot_grpcc_conn_connect(gconn *c);
/* Fails the calls on c with UNAVAILABLE and closes it; clean: the server
 * ended it in order (reconnect at once), else back off. */
void ot_grpcc_conn_close(gconn *c, bool clean, const char *reason);
void ot_grpcc_conn_event(gconn *c, uint32_t events);
/* Writes iov now as far as the socket takes it and queues the rest (NULL
 * bases are zeros); -1 with c->err set and c->dead when the socket failed. */
int ot_grpcc_conn_write(gconn *c, const struct iovec *iov, int n);
/* Drains the queue and lets nghttp2 produce more; -1 with c->err set. */
int ot_grpcc_conn_flush(gconn *c);
void ot_grpcc_stream_free(gconn *c, gstream *st);

/* grpc_h2.c */
/* The nghttp2 callbacks every session of the client uses. */
int ot_grpcc_callbacks(nghttp2_session_callbacks **out);
/* Starts call as a stream on c; false when nghttp2 would not. */
bool ot_grpcc_submit(ot_grpc_client *g, gconn *c, gcall *call);

#endif
