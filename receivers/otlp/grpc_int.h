/* grpc_int.h: what the two halves of the OTLP/gRPC server share, and
 * nothing else includes: the connection and stream state, and the two
 * calls between grpc.c (connections, the event loop, HTTP/2 and TLS I/O)
 * and grpc_call.c (a call on one stream: headers, message, answer). */
#ifndef OT_OTLPR_GRPC_INT_H
#define OT_OTLPR_GRPC_INT_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "grpc_frame.h"
#include "otlp.h"

typedef struct gconn gconn;

/* The header list size the server announces and enforces. */
#define OTLPR_GRPC_MAX_HEADER_LIST 65536

typedef struct gstream {
    gconn *c;
    int32_t id;
    int signal; /* -1 until :path names an Export method */
    bool path_seen, post, ct_ok;
    int enc; /* -1: unsupported grpc-encoding */
    int64_t deadline; /* 0: none */
    bool deadline_bad;
    ot_grpcf_reader rd;
    ot_arena *arena;  /* uncompressed message: the batch adopts it */
    uint8_t *heapbuf; /* compressed message */
    uint64_t reserved;
    ot_rejects rej; /* items dropped from the request: partial success */
    bool responded, request_done;
    int64_t responded_at; /* an answer the client does not take is a stall */
    size_t header_bytes;  /* against the MAX_HEADER_LIST_SIZE we announce */
    ot_arena *meta_arena;
    ot_meta_kv *meta;
    size_t n_meta, cap_meta;
    uint64_t meta_charged; /* meta_arena's bytes, taken from the in-flight budget */
    bool meta_busy;        /* the budget refused them: answered UNAVAILABLE */
    char *authz; /* the header the authenticator reads, when there is one */
    ot_buf resp; /* framed response message */
    size_t resp_off;
    struct gstream *prev, *next; /* the connection's open streams */
} gstream;

struct gconn {
    otlpr_grpc *g;
    int fd;
    SSL *ssl;
    bool tls_done;
    bool ssl_want_write;
    nghttp2_session *h2;
    uint8_t *out; /* bytes nghttp2 produced that the socket did not take yet */
    size_t out_len, out_off, out_cap;
    uint32_t ev;
    int64_t created, last_recv, idle_since, ping_sent, goaway_at, last_client_ping;
    int n_streams;
    gstream *streams; /* nghttp2_session_del does not close them for us */
    int ping_strikes;
    bool closing;
    gconn *prev, *next;
};

struct otlpr_grpc {
    otlpr *r;
    const otlpr_grpc_cfg *cfg;
    int lfd, epfd, evfd;
    int port;
    pthread_t thread;
    ot_tls_reloader *tls; /* the current context for each new connection */
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    gconn *conns;
    size_t n_conns;
    int spare_fd; /* given up to accept-and-close when out of descriptors */
    size_t max_msg;
    atomic_bool stopping;
    _Atomic int64_t deadline;
    bool draining;
};

/* ---- grpc_call.c ------------------------------------------------------- */

/* Unlinks a stream from its connection and frees it with what it holds. */
void grpcs_stream_free(gstream *st);

/* Sets the nghttp2 callbacks by which a connection's session hands each
 * stream's headers and data to the call handling. */
void grpcs_set_callbacks(nghttp2_session_callbacks *cbs);

#endif
