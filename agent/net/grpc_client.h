/* grpc_client.h: a gRPC client for unary calls to any method, over HTTP/2
 * (plaintext with prior knowledge, or TLS with ALPN h2) on one or more
 * connections, driven by one event-loop thread of its own. An exporter
 * serializes its request, calls, and reads the status and the response
 * message; what a status means for retrying is the exporter's rule. */
#ifndef OT_GRPC_CLIENT_H
#define OT_GRPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "config/config.h"
#include "net/grpc_wire.h"
#include "net/tls.h"

enum { OT_GRPC_PICK_FIRST = 0, OT_GRPC_ROUND_ROBIN = 1 };

typedef struct ot_grpc_client_cfg {
    const char *id;         /* component id, for logs and the ready gauge */
    const char *log_module; /* log module name ("otlp"); NULL: "grpc" */
    ot_grpc_target target;  /* ot_grpc_target_parse */
    const ot_tls_client *tls;     /* used when target.tls */
    const ot_strmap *metadata;    /* sent on every call; NULL: none */
    const char *authority;        /* overrides :authority when set */
    int num_connections;          /* < 1: 1 */
    int balancer;                 /* OT_GRPC_PICK_FIRST / OT_GRPC_ROUND_ROBIN */
    bool wait_for_ready;          /* wait for a connection instead of failing fast */
    int64_t keepalive_time;       /* ns; 0 = no pings */
    int64_t keepalive_timeout;    /* ns */
    bool keepalive_permit_without_stream;
} ot_grpc_client_cfg;

typedef struct ot_grpc_client ot_grpc_client;

/* The answer to one call. */
typedef struct ot_grpc_reply {
    int code;      /* grpc-status, or what the transport made of a failure */
    char msg[256]; /* grpc-message (decoded), else the transport's reason */
    bool has_details;
    ot_grpc_status details; /* grpc-status-details-bin, when has_details */
    ot_buf *resp; /* caller's buffer: the response message, decompressed,
                     without its prefix; NULL: not wanted */
} ot_grpc_reply;

/* Whether a metadata name (any case) is one the client writes itself or
 * gRPC reserves: HTTP/2 pseudo-headers, content-type, te, user-agent,
 * every grpc-* name (the spec keeps the prefix for the protocol) and the
 * HTTP/1 connection headers HTTP/2 forbids. Metadata of such a name is
 * not sent, as grpc-go drops it; exporters warn when a config sets one. */
bool ot_grpc_client_reserved(const char *name);

/* Builds the TLS context and resolves nothing yet. cfg (and what it points
 * to) must outlive the client. */
ot_grpc_client *ot_grpc_client_new(const ot_grpc_client_cfg *cfg, ot_err *err);
/* Starts the event-loop thread and begins connecting. */
int ot_grpc_client_start(ot_grpc_client *g, ot_err *err);
/* One unary call of path ("/pkg.Service/Method") with an already serialized
 * (and, when compressed, gzipped) message. md adds metadata to this call
 * only (NULL: none). Blocks the calling thread until the answer, the
 * deadline (CLOCK_MONOTONIC ns; INT64_MAX: none) or stop. reply->resp is
 * reset first. msg, path and md are only read until the call returns.
 * Thread-safe. */
void ot_grpc_client_call(ot_grpc_client *g, const char *path, const uint8_t *msg, size_t len,
                         bool compressed, int64_t deadline_ns, const ot_strmap *md,
                         ot_grpc_reply *reply);
/* Fails whatever is pending with UNAVAILABLE, closes connections, joins the
 * loop thread. Idempotent. */
void ot_grpc_client_stop(ot_grpc_client *g);
void ot_grpc_client_free(ot_grpc_client *g);
/* Connections in the READY state (also the ready gauge). */
int ot_grpc_client_ready(ot_grpc_client *g);

#endif
