/* otlp.c: the `otlp` receiver: its factory and config, and the request path
 * both transports end in (check the body, make a batch, hand it to the
 * pipeline, count it, answer). The transports live in http.c and grpc.c;
 * this file knows nothing about sockets. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "net/listen.h"
#include "otlp.h"
#include "model/otlp_json.h"
#include "model/pbwalk.h"

/* ---- config --------------------------------------------------------------- */

static const ot_key ka_server_keys[] = {
    {.name = "max_connection_idle", .type = OT_KT_DURATION,
     .offset = offsetof(otlpr_keepalive_server, max_connection_idle), .def = "0",
     .help = "close a connection without streams after this long (0: never)"},
    {.name = "max_connection_age", .type = OT_KT_DURATION,
     .offset = offsetof(otlpr_keepalive_server, max_connection_age), .def = "0",
     .help = "send GOAWAY to a connection this old (0: never)"},
    {.name = "max_connection_age_grace", .type = OT_KT_DURATION,
     .offset = offsetof(otlpr_keepalive_server, max_connection_age_grace), .def = "0",
     .help = "then close it after this long (0: when its streams end)"},
    {.name = "time", .type = OT_KT_DURATION, .offset = offsetof(otlpr_keepalive_server, time),
     .def = "2h", .help = "ping a connection idle this long (0: never)"},
    {.name = "timeout", .type = OT_KT_DURATION,
     .offset = offsetof(otlpr_keepalive_server, timeout), .def = "20s",
     .help = "close it when a ping is not answered, or an answer not taken, within this"},
    {0},
};

static const ot_key ka_enforce_keys[] = {
    {.name = "min_time", .type = OT_KT_DURATION, .offset = offsetof(otlpr_enforcement, min_time),
     .def = "5m", .help = "clients pinging more often are sent GOAWAY (too_many_pings)"},
    {.name = "permit_without_stream", .type = OT_KT_BOOL,
     .offset = offsetof(otlpr_enforcement, permit_without_stream), .def = "false",
     .help = "allow pings on connections without streams"},
    {0},
};

static const ot_key keepalive_keys[] = {
    {.name = "server_parameters", .type = OT_KT_TABLE,
     .offset = offsetof(otlpr_keepalive, server_parameters), .sub = ka_server_keys,
     .help = "server-side keepalive"},
    {.name = "enforcement_policy", .type = OT_KT_TABLE,
     .offset = offsetof(otlpr_keepalive, enforcement_policy), .sub = ka_enforce_keys,
     .flags = OT_KF_PRESENCE, .help = "limits on client pings; not enforced unless set"},
    {0},
};

static const ot_key grpc_keys[] = {
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(otlpr_grpc_cfg, endpoint),
     .def = "127.0.0.1:4317", .help = "address to listen on (host:port)"},
    {.name = "max_recv_msg_size_mib", .type = OT_KT_INT,
     .offset = offsetof(otlpr_grpc_cfg, max_recv_msg_size_mib), .def = "4", .min = 1, .max = 2047,
     .help = "largest request message, before and after decompression (MiB)"},
    {.name = "max_concurrent_streams", .type = OT_KT_INT,
     .offset = offsetof(otlpr_grpc_cfg, max_concurrent_streams), .def = "100", .min = 1,
     .max = 1 << 20, .help = "HTTP/2 streams a client may open at once per connection"},
    {.name = "keepalive", .type = OT_KT_TABLE, .offset = offsetof(otlpr_grpc_cfg, keepalive),
     .sub = keepalive_keys, .help = "connection keepalive"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(otlpr_grpc_cfg, tls), .sub = ot_tls_server_keys,
     .flags = OT_KF_PRESENCE, .help = "serve TLS (h2 by ALPN); plaintext h2c unless set"},
    {.name = "include_metadata", .type = OT_KT_BOOL,
     .offset = offsetof(otlpr_grpc_cfg, include_metadata), .def = "false",
     .help = "copy request metadata into each batch"},
    {.name = "auth", .type = OT_KT_TABLE, .offset = offsetof(otlpr_grpc_cfg, auth),
     .sub = ot_auth_keys, .help = "an authenticator extension every call must pass"},
    {0},
};

static const ot_key cors_keys[] = {
    {.name = "allowed_origins", .type = OT_KT_STRLIST,
     .offset = offsetof(otlpr_cors_cfg, allowed_origins),
     .help = "origins allowed (\"*\" and wildcards like https://*.example.com)"},
    {.name = "allowed_headers", .type = OT_KT_STRLIST,
     .offset = offsetof(otlpr_cors_cfg, allowed_headers),
     .help = "request headers allowed besides the CORS-safelisted ones"},
    {.name = "max_age", .type = OT_KT_INT, .offset = offsetof(otlpr_cors_cfg, max_age), .def = "0",
     .min = 0, .max = 86400 * 7, .help = "seconds a browser may cache a preflight (0: not sent)"},
    {0},
};

static const ot_key http_keys[] = {
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(otlpr_http_cfg, endpoint),
     .def = "127.0.0.1:4318", .help = "address to listen on (host:port)"},
    {.name = "traces_url_path", .type = OT_KT_STRING,
     .offset = offsetof(otlpr_http_cfg, traces_url_path), .def = "/v1/traces",
     .help = "path that takes traces"},
    {.name = "metrics_url_path", .type = OT_KT_STRING,
     .offset = offsetof(otlpr_http_cfg, metrics_url_path), .def = "/v1/metrics",
     .help = "path that takes metrics"},
    {.name = "logs_url_path", .type = OT_KT_STRING,
     .offset = offsetof(otlpr_http_cfg, logs_url_path), .def = "/v1/logs",
     .help = "path that takes logs"},
    {.name = "max_request_body_size", .type = OT_KT_SIZE,
     .offset = offsetof(otlpr_http_cfg, max_request_body_size), .def = "20MiB", .min = 1024,
     .max = 2147483647.0, .help = "largest body, before and after decompression"},
    {.name = "cors", .type = OT_KT_TABLE, .offset = offsetof(otlpr_http_cfg, cors),
     .sub = cors_keys, .help = "cross-origin requests from browsers"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(otlpr_http_cfg, tls), .sub = ot_tls_server_keys,
     .flags = OT_KF_PRESENCE, .help = "serve HTTPS; plain HTTP unless set"},
    {.name = "include_metadata", .type = OT_KT_BOOL,
     .offset = offsetof(otlpr_http_cfg, include_metadata), .def = "false",
     .help = "copy request headers into each batch"},
    {.name = "auth", .type = OT_KT_TABLE, .offset = offsetof(otlpr_http_cfg, auth),
     .sub = ot_auth_keys, .help = "an authenticator extension every request must pass"},
    {.name = "read_timeout", .type = OT_KT_DURATION, .offset = offsetof(otlpr_http_cfg, read_timeout),
     .def = "30s", .min = 1e9, .max = 3.6e12,
     .help = "longest a request may take to arrive, and longest a connection may sit idle: "
             "a client trickling a body cannot hold the in-flight budget longer"},
    {0},
};

static const ot_key protocol_keys[] = {
    {.name = "grpc", .type = OT_KT_TABLE, .offset = offsetof(otlpr_protocols, grpc),
     .sub = grpc_keys, .flags = OT_KF_PRESENCE, .help = "OTLP/gRPC server; off unless set"},
    {.name = "http", .type = OT_KT_TABLE, .offset = offsetof(otlpr_protocols, http),
     .sub = http_keys, .flags = OT_KF_PRESENCE, .help = "OTLP/HTTP server; off unless set"},
    {0},
};

const ot_key ot_otlpr_keys[] = {
    {.name = "protocols", .type = OT_KT_TABLE, .offset = offsetof(otlpr_cfg, protocols),
     .sub = protocol_keys, .help = "the transports to serve (at least one)"},
    {.name = "max_inflight_bytes", .type = OT_KT_SIZE,
     .offset = offsetof(otlpr_cfg, max_inflight_bytes), .def = "32MiB", .min = 65536,
     .max = 68719476736.0,
     .help = "request bytes held at once; beyond it requests are refused as retryable"},
    {0},
};

static void check_path(const char *p, const ot_node *node, const char *key, const char *path,
                       ot_diags *d)
{
    if (p && p[0] != '/') {
        const ot_node *at = ot_node_get(node, key);
        ot_diag_add(d, OT_SEV_ERROR, at ? at : node, path, "%s must start with /, found \"%s\"",
                    key, p);
    }
}

static void otlpr_validate(const void *cfgp, const ot_node *node, const char *path, ot_diags *d)
{
    const otlpr_cfg *c = cfgp;
    const ot_node *protos = ot_node_get(node, "protocols");
    if (!c->protocols.grpc.present && !c->protocols.http.present) {
        ot_diag_add(d, OT_SEV_ERROR, protos ? protos : node, path,
                    "at least one protocol must be set: protocols.grpc or protocols.http");
        return;
    }
    char sub[512];
    if (c->protocols.grpc.present) {
        snprintf(sub, sizeof sub, "%s.protocols.grpc", path);
        ot_tls_server_validate(&c->protocols.grpc.tls, ot_node_get(protos, "grpc"), sub, d);
    }
    if (c->protocols.http.present) {
        const ot_node *h = ot_node_get(protos, "http");
        snprintf(sub, sizeof sub, "%s.protocols.http", path);
        ot_tls_server_validate(&c->protocols.http.tls, h, sub, d);
        check_path(c->protocols.http.traces_url_path, h, "traces_url_path", sub, d);
        check_path(c->protocols.http.metrics_url_path, h, "metrics_url_path", sub, d);
        check_path(c->protocols.http.logs_url_path, h, "logs_url_path", sub, d);
    }
}

static size_t otlpr_listens(const void *cfgp, const ot_endpoint **out, size_t max)
{
    const otlpr_cfg *c = cfgp;
    size_t n = 0;
    if (c->protocols.grpc.present && n < max)
        out[n++] = &c->protocols.grpc.endpoint;
    if (c->protocols.http.present && n < max)
        out[n++] = &c->protocols.http.endpoint;
    return n;
}

/* ---- admission ------------------------------------------------------------ */

bool ot_otlpr_budget_take(otlpr_budget *b, uint64_t n)
{
    if (!b || n == 0)
        return true;
    uint64_t cur = atomic_load_explicit(&b->used, memory_order_relaxed);
    do {
        if (n > b->max || cur > b->max - n)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&b->used, &cur, cur + n, memory_order_acq_rel,
                                                    memory_order_relaxed));
    return true;
}

void ot_otlpr_budget_give(otlpr_budget *b, uint64_t n)
{
    if (b && n)
        atomic_fetch_sub_explicit(&b->used, n, memory_order_acq_rel);
}

/* ---- content negotiation ---------------------------------------------------- */

/* Compares the token at s (up to ';' or end, spaces trimmed) with want,
 * case-insensitively. */
static bool token_is(const char *s, const char *want)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strcspn(s, ";,");
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return strlen(want) == n && strncasecmp(s, want, n) == 0;
}

int ot_otlpr_content_type(const char *v)
{
    if (!v)
        return -1;
    if (token_is(v, "application/x-protobuf") || token_is(v, "application/protobuf"))
        return OTLPR_PROTOBUF;
    if (token_is(v, "application/json"))
        return OTLPR_JSON;
    return -1;
}

int ot_otlpr_encoding(const char *v)
{
    if (!v || !*v || token_is(v, "identity"))
        return OTLPR_ENC_IDENTITY;
    if (token_is(v, "gzip") || token_is(v, "x-gzip"))
        return OTLPR_ENC_GZIP;
    if (token_is(v, "deflate"))
        return OTLPR_ENC_DEFLATE;
    if (token_is(v, "zstd"))
        return OTLPR_ENC_ZSTD;
    return -1;
}

const char *ot_otlpr_encoding_name(otlpr_enc e)
{
    return ot_compression_name((ot_compression)e);
}

const char *ot_otlpr_outcome_name(otlpr_outcome o)
{
    static const char *const names[] = {"ok",        "invalid",   "not_wired", "retry",
                                        "permanent", "too_large", "busy",      "internal"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "unknown";
}

/* ---- the request path ------------------------------------------------------- */

/* The most one request may cost decoded: the whole budget, or eight times
 * its size when that is more. Realistic OTLP unpacks to five or six times
 * its protobuf in protobuf-c's structs (attributes cost most), and what the
 * size limits let in must stay acceptable; a body built to amplify (empty
 * spans or attributes, two bytes that unpack to a 200-byte struct) costs
 * 25 to 110 times its size and is refused before it is allocated. */
#define OTLPR_DECODE_RATIO 8

static uint64_t decode_limit(const otlpr_budget *b, size_t len)
{
    uint64_t lim = b ? b->max : UINT64_MAX, wr = OTLPR_DECODE_RATIO * (uint64_t)len;
    return lim > wr ? lim : wr;
}

/* Takes what decoding costs beyond the wire bytes already reserved. */
static int charge(otlpr_req *req, uint64_t cost, size_t len, otlpr_outcome *outcome, ot_err *err)
{
    if (!req->budget || cost <= len)
        return 0;
    uint64_t extra = cost - len, room = req->budget->max > len ? req->budget->max - len : 0;
    if (extra > room)
        extra = room;
    if (extra && !ot_otlpr_budget_take(req->budget, extra)) {
        *outcome = OTLPR_BUSY;
        return ot_err_set(err, "too many request bytes in flight (%llu decoded); retry later",
                          (unsigned long long)cost);
    }
    req->charged += extra;
    return 0;
}

static ot_batch *set_meta(ot_batch *b, const ot_meta_kv *meta, size_t n_meta,
                          otlpr_outcome *outcome, ot_err *err)
{
    for (size_t i = 0; i < n_meta; i++)
        if (ot_batch_set_meta(b, meta[i].key, meta[i].value) < 0) {
            ot_batch_unref(b);
            *outcome = OTLPR_INTERNAL;
            ot_err_set(err, "out of memory");
            return NULL;
        }
    return b;
}

static int too_costly(uint64_t cost, size_t len, const otlpr_budget *b, ot_err *err)
{
    return ot_err_set(err,
                      "a request of %zu bytes that decodes to %llu bytes is more than "
                      "max_inflight_bytes (%llu) or eight times its size allows; send fewer "
                      "items per request",
                      len, (unsigned long long)cost,
                      (unsigned long long)(b ? b->max : 0));
}

ot_batch *ot_otlpr_batch(ot_signal s, otlpr_format f, ot_arena *arena, const uint8_t *body,
                         size_t len, const ot_meta_kv *meta, size_t n_meta, otlpr_req *req,
                         otlpr_outcome *outcome, ot_err *err)
{
    otlpr_req none = OTLPR_REQ_INIT(NULL);
    if (!req)
        req = &none;
    ot_batch *b = NULL;
    *outcome = OTLPR_INVALID;
    if (f == OTLPR_PROTOBUF) {
        ot_pbwalk_info wi;
        if (ot_pbwalk_check(s, body, len, &wi, err) < 0) {
            ot_err_prefix(err, "invalid protobuf %s request", ot_signal_name(s));
            ot_arena_free(arena);
            return NULL;
        }
        if (wi.decoded > decode_limit(req->budget, len)) {
            *outcome = OTLPR_TOO_LARGE;
            too_costly(wi.decoded, len, req->budget, err);
            ot_arena_free(arena);
            return NULL;
        }
        if (charge(req, wi.decoded, len, outcome, err) < 0) {
            ot_arena_free(arena);
            return NULL;
        }
        if (arena) {
            /* The body already sits in an arena sized for it: the batch
             * takes the arena and points at the bytes, no copy. */
            b = ot_batch_adopt_wire(s, arena, body, len, wi.items);
        } else {
            b = ot_batch_from_wire(s, body, len, wi.items, err);
        }
        if (!b) {
            *outcome = OTLPR_INTERNAL;
            ot_err_set(err, "out of memory");
            return NULL;
        }
        b->decode_cost = wi.decoded;
        if (wi.rej.n) {
            /* The rare case: rebuild the request without the bad items
             * (decoded once; the exporter encodes what is left). */
            ProtobufCMessage *m = ot_batch_msg_mut(b, err);
            if (!m) {
                ot_batch_unref(b);
                *outcome = OTLPR_INTERNAL;
                return NULL;
            }
            ot_drop_invalid(s, m, &req->rej);
            ot_batch_recount(b);
            b->decode_cost = 0;
        }
    } else {
        int over = 0;
        b = ot_batch_from_json_max(s, (const char *)body, len, decode_limit(req->budget, len),
                                   &over, err);
        ot_arena_free(arena);
        if (!b) {
            if (over) {
                *outcome = OTLPR_TOO_LARGE;
                return NULL;
            }
            ot_err_prefix(err, "invalid JSON %s request", ot_signal_name(s));
            return NULL;
        }
        if (charge(req, ot_arena_reserved(b->arena), len, outcome, err) < 0) {
            ot_batch_unref(b);
            return NULL;
        }
        if (ot_drop_invalid(s, b->msg, &req->rej))
            ot_batch_recount(b);
    }
    if (!set_meta(b, meta, n_meta, outcome, err))
        return NULL;
    *outcome = OTLPR_OK;
    return b;
}

void ot_otlpr_count_rejects(otlpr *r, otlpr_transport t, ot_signal s, const ot_rejects *rej)
{
    if (!rej->n)
        return;
    /* rare: the registry's lock is taken here, not on every request */
    for (int i = 0; i < OT_REJ_REASONS; i++) {
        if (!rej->by_reason[i])
            continue;
        char labels[300], name[128];
        snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\",reason=\"%s\"", r->id,
                 t == OTLPR_HTTP ? "http" : "grpc", ot_reject_name((ot_reject_reason)i));
        snprintf(name, sizeof name, "otelite_receiver_rejected_%s_total", ot_signal_item_name(s));
        ot_counter_add(ot_tel_counter(name,
                                      "Items a receiver dropped from a request for breaking an "
                                      "OTLP rule (answered as partial success), by reason.",
                                      labels),
                       rej->by_reason[i]);
    }
    ot_warn("otlp", "items rejected", "receiver=%s transport=%s signal=%s rejected=%llu first_reason=%s",
            r->id, t == OTLPR_HTTP ? "http" : "grpc", ot_signal_name(s),
            (unsigned long long)rej->n, ot_reject_name((ot_reject_reason)rej->first));
}

ot_batch *ot_otlpr_http_body(ot_signal s, const char *content_type, const char *content_encoding,
                             const uint8_t *body, size_t len, size_t max_body,
                             otlpr_budget *budget, otlpr_outcome *outcome, ot_err *err)
{
    int f = ot_otlpr_content_type(content_type);
    int enc = ot_otlpr_encoding(content_encoding);
    if (f < 0 || enc < 0) {
        *outcome = OTLPR_INVALID;
        ot_err_set(err, f < 0 ? "unsupported content type" : "unsupported content encoding");
        return NULL;
    }
    if (len > max_body) {
        *outcome = OTLPR_TOO_LARGE;
        ot_err_set(err, "body of %zu bytes exceeds max_request_body_size %zu", len, max_body);
        return NULL;
    }
    if (enc == OTLPR_ENC_IDENTITY)
        return ot_otlpr_batch(s, (otlpr_format)f, NULL, body, len, NULL, 0, NULL, outcome, err);
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    uint64_t taken = 0;
    int rc = ot_otlpr_decompress((otlpr_enc)enc, body, len, max_body, budget, &taken, &plain,
                                 &plain_len, err);
    ot_batch *b = NULL;
    switch (rc) {
    case OTLPR_DECOMP_OK:
        b = ot_otlpr_batch(s, (otlpr_format)f, NULL, plain, plain_len, NULL, 0, NULL, outcome,
                           err);
        break;
    case OTLPR_DECOMP_TOO_LARGE:
        *outcome = OTLPR_TOO_LARGE;
        break;
    case OTLPR_DECOMP_BUSY:
        *outcome = OTLPR_BUSY;
        break;
    case OTLPR_DECOMP_NOMEM:
        *outcome = OTLPR_INTERNAL;
        break;
    default:
        *outcome = OTLPR_INVALID;
        break;
    }
    free(plain);
    ot_otlpr_budget_give(budget, taken);
    return b;
}

otlpr_outcome ot_otlpr_consume(otlpr *r, otlpr_transport t, ot_batch *b, ot_err *err)
{
    ot_signal s = b->signal;
    ot_consumer *c = atomic_load_explicit(&r->next[s], memory_order_acquire);
    if (!c) {
        ot_batch_unref(b);
        ot_err_set(err, "no pipeline takes %s", ot_signal_name(s));
        return OTLPR_NOT_WIRED;
    }
    size_t items = b->items;
    ot_status st = ot_consume(c, b, err);
    if (st == OT_OK) {
        ot_counter_add(r->accepted[t][s], items);
        return OTLPR_OK;
    }
    ot_counter_add(r->refused[t][s], items);
    return st == OT_RETRYABLE ? OTLPR_RETRY : OTLPR_PERMANENT;
}

static const int known_codes[OTLPR_TRANSPORTS][OTLPR_CODES] = {
    {200, 400, 404, 405, 413, 415, 500, 503, 204, 401},
    {0, 3, 4, 8, 12, 13, 14, 16, -1, -1},
};

static ot_counter *request_counter(const char *id, otlpr_transport t, int code)
{
    char labels[300];
    snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\",code=\"%d\"", id,
             t == OTLPR_HTTP ? "http" : "grpc", code);
    return ot_tel_counter("otelite_receiver_requests_total",
                          "Requests a receiver answered, by transport and status code.", labels);
}

void ot_otlpr_count_request(otlpr *r, otlpr_transport t, int code)
{
    /* The codes we answer with are fetched once; anything else (none
     * today) takes the registry's lock. */
    for (int i = 0; i < OTLPR_CODES; i++)
        if (known_codes[t][i] == code) {
            ot_counter_add(r->requests[t][i], 1);
            return;
        }
    ot_counter_add(request_counter(r->id, t, code), 1);
}

/* ---- response bodies --------------------------------------------------------- */

static int pack_into(const ProtobufCMessage *m, ot_buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (ot_buf_reserve(out, n + 1) < 0)
        return -1;
    protobuf_c_message_pack(m, (uint8_t *)out->data + out->len);
    out->len += n;
    return 0;
}

int ot_otlpr_partial_body(ot_signal s, otlpr_format f, const ot_rejects *rej, ot_buf *out)
{
    char msg[300];
    ot_rejects_message(rej, s, msg, sizeof msg);
    return ot_otlpr_success_body(s, f, (int64_t)rej->n, rej->n ? msg : NULL, out);
}

int ot_otlpr_success_body(ot_signal s, otlpr_format f, int64_t rejected, const char *msg,
                          ot_buf *out)
{
    if (f == OTLPR_JSON) {
        if (rejected <= 0 && (!msg || !*msg))
            return ot_buf_puts(out, "{}");
        static const char *const jnames[] = {"rejectedSpans", "rejectedDataPoints",
                                             "rejectedLogRecords"};
        ot_buf_printf(out, "{\"partialSuccess\":{\"%s\":\"%lld\",\"errorMessage\":", jnames[s],
                      (long long)rejected);
        ot_buf_json_str(out, msg ? msg : "", msg ? strlen(msg) : 0);
        return ot_buf_puts(out, "}}");
    }
    if (rejected <= 0 && (!msg || !*msg))
        return ot_buf_reserve(out, 1); /* the empty message */
    char *m = (char *)(msg ? msg : "");
    switch (s) {
    case OT_TRACES: {
        Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
        ps.rejected_spans = rejected;
        ps.error_message = m;
        r.partial_success = &ps;
        return pack_into(&r.base, out);
    }
    case OT_METRICS: {
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
        Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
        ps.rejected_data_points = rejected;
        ps.error_message = m;
        r.partial_success = &ps;
        return pack_into(&r.base, out);
    }
    default: {
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess ps =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
        Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse r =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
        ps.rejected_log_records = rejected;
        ps.error_message = m;
        r.partial_success = &ps;
        return pack_into(&r.base, out);
    }
    }
}

#define RETRY_INFO_TYPE "type.googleapis.com/google.rpc.RetryInfo"

int ot_otlpr_status_body(otlpr_format f, int grpc_code, const char *msg, int retry_delay_s,
                         ot_buf *out)
{
    if (!msg)
        msg = "";
    if (f == OTLPR_JSON) {
        ot_buf_printf(out, "{\"code\":%d,\"message\":", grpc_code);
        ot_buf_json_str(out, msg, strlen(msg));
        if (retry_delay_s > 0)
            ot_buf_printf(out, ",\"details\":[{\"@type\":\"%s\",\"retryDelay\":\"%ds\"}]",
                          RETRY_INFO_TYPE, retry_delay_s);
        return ot_buf_putc(out, '}');
    }
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = grpc_code;
    st.message = (char *)msg;
    Google__Rpc__Duration delay = GOOGLE__RPC__DURATION__INIT;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    Google__Rpc__Any any = GOOGLE__RPC__ANY__INIT;
    Google__Rpc__Any *details[1] = {&any};
    uint8_t ri_bytes[32];
    if (retry_delay_s > 0) {
        delay.seconds = retry_delay_s;
        ri.retry_delay = &delay;
        size_t n = protobuf_c_message_pack(&ri.base, ri_bytes);
        any.type_url = RETRY_INFO_TYPE;
        any.value.data = ri_bytes;
        any.value.len = n;
        st.n_details = 1;
        st.details = details;
    }
    return pack_into(&st.base, out);
}

/* ---- lifecycle --------------------------------------------------------------------- */

static void *otlpr_create(const ot_create_params *p, ot_err *err)
{
    otlpr *r = calloc(1, sizeof *r);
    if (!r || !(r->id = strdup(p->id))) {
        free(r);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    r->cfg = p->config;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        atomic_init(&r->next[s], p->next[s]);
    atomic_init(&r->budget.used, 0);
    r->budget.max = r->cfg->max_inflight_bytes;
    const ot_auth_cfg *ac[OTLPR_TRANSPORTS] = {&r->cfg->protocols.http.auth,
                                               &r->cfg->protocols.grpc.auth};
    for (int t = 0; t < OTLPR_TRANSPORTS; t++) {
        r->auth[t] = ot_host_authenticator(p->host, ac[t]->authenticator, err);
        if (!r->auth[t] && ac[t]->authenticator && *ac[t]->authenticator) {
            ot_err_prefix(err, "%s", t == OTLPR_HTTP ? "protocols.http" : "protocols.grpc");
            free(r->id);
            free(r);
            return NULL;
        }
    }
    for (int t = 0; t < OTLPR_TRANSPORTS; t++)
        for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
            char labels[300], name[128];
            snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\"", p->id,
                     t == OTLPR_HTTP ? "http" : "grpc");
            snprintf(name, sizeof name, "otelite_receiver_accepted_%s_total",
                     ot_signal_item_name((ot_signal)s));
            r->accepted[t][s] =
                ot_tel_counter(name, "Items a receiver handed to its pipelines.", labels);
            snprintf(name, sizeof name, "otelite_receiver_refused_%s_total",
                     ot_signal_item_name((ot_signal)s));
            r->refused[t][s] =
                ot_tel_counter(name, "Items a receiver's pipelines refused.", labels);
        }
    for (int t = 0; t < OTLPR_TRANSPORTS; t++)
        for (int i = 0; i < OTLPR_CODES; i++)
            if (known_codes[t][i] >= 0)
                r->requests[t][i] = request_counter(p->id, (otlpr_transport)t, known_codes[t][i]);
    return r;
}

static int otlpr_start(void *self, ot_err *err)
{
    otlpr *r = self;
    if (r->cfg->protocols.grpc.present) {
        r->grpc = ot_otlpr_grpc_start(r, &r->cfg->protocols.grpc, err);
        if (!r->grpc)
            return ot_err_prefix(err, "%s: grpc", r->id);
        ot_info("otlp", "listening", "receiver=%s transport=grpc endpoint=%s port=%d", r->id,
                r->cfg->protocols.grpc.endpoint.text ? r->cfg->protocols.grpc.endpoint.text : "",
                ot_otlpr_grpc_port(r->grpc));
    }
    if (r->cfg->protocols.http.present) {
        r->http = ot_otlpr_http_start(r, &r->cfg->protocols.http, err);
        if (!r->http) {
            ot_otlpr_grpc_stop(r->grpc, 0);
            r->grpc = NULL;
            return ot_err_prefix(err, "%s: http", r->id);
        }
        ot_info("otlp", "listening", "receiver=%s transport=http endpoint=%s port=%d", r->id,
                r->cfg->protocols.http.endpoint.text ? r->cfg->protocols.http.endpoint.text : "",
                ot_otlpr_http_port(r->http));
    }
    return 0;
}

/* The listeners stay; requests from now on go to the new consumers. */
static void otlpr_rewire(void *self, ot_consumer *const next[OT_SIGNAL_COUNT])
{
    otlpr *r = self;
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        atomic_store_explicit(&r->next[s], next[s], memory_order_release);
}

static void otlpr_shutdown(void *self, int64_t deadline_ns)
{
    otlpr *r = self;
    ot_otlpr_http_stop(r->http, deadline_ns);
    r->http = NULL;
    ot_otlpr_grpc_stop(r->grpc, deadline_ns);
    r->grpc = NULL;
}

static void otlpr_destroy(void *self)
{
    otlpr *r = self;
    if (!r)
        return;
    /* destroy without shutdown (a failed start elsewhere) still stops I/O */
    otlpr_shutdown(r, 0);
    free(r->id);
    free(r);
}

int ot_otlpr_http_bound_port(void *receiver)
{
    otlpr *r = receiver;
    return r && r->http ? ot_otlpr_http_port(r->http) : 0;
}

int ot_otlpr_grpc_bound_port(void *receiver)
{
    otlpr *r = receiver;
    return r && r->grpc ? ot_otlpr_grpc_port(r->grpc) : 0;
}

const ot_factory ot_otlp_receiver = {
    .type = "otlp",
    .kind = OT_RECEIVER,
    .signals = OT_SIG_ALL,
    .help = "receives OTLP over gRPC and HTTP (protobuf and JSON)",
    .keys = ot_otlpr_keys,
    .config_size = sizeof(otlpr_cfg),
    .validate = otlpr_validate,
    .listens = otlpr_listens,
    .create = otlpr_create,
    .start = otlpr_start,
    .shutdown = otlpr_shutdown,
    .destroy = otlpr_destroy,
    .rewire = otlpr_rewire,
};
