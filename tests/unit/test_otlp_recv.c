/* test_otlp_recv.c: the otlp receiver: config, content negotiation,
 * decompression caps, gRPC framing, status bodies, and both servers run
 * on ephemeral ports with a consumer that records what it gets. libcurl is
 * the HTTP client; a small nghttp2 client makes the gRPC calls (curl drops
 * a response that a server's RST_STREAM(NO_ERROR) follows). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <nghttp2/nghttp2.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "../../receivers/otlp/grpc_frame.h"
#include "../../receivers/otlp/otlp.h"
#include "base/codec.h"
#include "net/grpc_wire.h"
#include "otlp_samples.h"
#include "base/log.h"
#include "model/pbwalk.h"

extern const ot_factory ot_otlp_receiver;

/* ---- helpers --------------------------------------------------------------- */

typedef struct packed {
    uint8_t *p;
    size_t n;
} packed;

static packed sample(ot_signal s, size_t n)
{
    ot_arena *a = ot_arena_new(0);
    const ProtobufCMessage *m = ot_sample_request(a, s, n, 2);
    packed r;
    r.n = protobuf_c_message_get_packed_size(m);
    r.p = malloc(r.n + 1);
    protobuf_c_message_pack(m, r.p);
    ot_arena_free(a);
    return r;
}

static packed gzip_bytes(const uint8_t *p, size_t n, int wbits)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    packed r;
    r.p = malloc(deflateBound(&zs, n) + 16);
    zs.next_in = (Bytef *)p;
    zs.avail_in = (uInt)n;
    zs.next_out = r.p;
    zs.avail_out = (uInt)deflateBound(&zs, n) + 16;
    cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    r.n = zs.total_out;
    deflateEnd(&zs);
    return r;
}

static packed zstd_bytes(const uint8_t *p, size_t n)
{
    packed r;
    size_t cap = ZSTD_compressBound(n);
    r.p = malloc(cap);
    r.n = ZSTD_compress(r.p, cap, p, n, 3);
    cr_assert(!ZSTD_isError(r.n));
    return r;
}

/* A consumer that records and answers as told; it can hold a call until
 * released, to keep a request in flight. */
typedef struct rec {
    ot_consumer base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ot_status answer;
    int batches;
    size_t items;
    int last_signal;
    uint8_t *last_wire;
    size_t last_len;
    char tenant[128];
    bool hold, entered, released;
} rec;

static ot_status rec_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    rec *r = (rec *)self;
    const uint8_t *w;
    size_t n;
    cr_assert_eq(ot_batch_wire(b, &w, &n, NULL), 0);
    pthread_mutex_lock(&r->mu);
    r->batches++;
    r->items += b->items;
    r->last_signal = b->signal;
    free(r->last_wire);
    r->last_wire = malloc(n + 1);
    memcpy(r->last_wire, w, n);
    r->last_len = n;
    const char *t = ot_batch_get_meta(b, "x-tenant");
    snprintf(r->tenant, sizeof r->tenant, "%s", t ? t : "");
    if (r->hold) {
        r->entered = true;
        pthread_cond_broadcast(&r->cv);
        while (!r->released)
            pthread_cond_wait(&r->cv, &r->mu);
    }
    ot_status st = r->answer;
    pthread_mutex_unlock(&r->mu);
    ot_batch_unref(b);
    if (st != OT_OK)
        ot_err_set(err, "test consumer says %s", ot_status_name(st));
    return st;
}

typedef struct rig {
    ot_arena *arena;
    ot_diags d;
    otlpr_cfg cfg;
    void *rx;
    rec cons;
    int http, grpc;
} rig;

static void rig_config(rig *g, const char *yaml)
{
    g->arena = ot_arena_new(0);
    ot_diags_init(&g->d);
    const ot_node *n = ot_node_parse(g->arena, "test.yaml", yaml, strlen(yaml), &g->d);
    cr_assert(n, "yaml");
    ot_keys_fill(ot_otlpr_keys, n, &g->cfg, g->arena, "receivers.otlp", &g->d);
    ot_otlp_receiver.validate(&g->cfg, n, "receivers.otlp", &g->d);
}

static void rig_start(rig *g, const char *yaml, unsigned signals)
{
    memset(g, 0, sizeof *g);
    if (getenv("OT_TEST_DEBUG"))
        ot_log_set_level(OT_LOG_DEBUG);
    rig_config(g, yaml);
    cr_assert_eq(g->d.errors, 0, "config errors: %s", g->d.n ? g->d.v[0].msg : "");
    g->cons.base.consume = rec_consume;
    pthread_mutex_init(&g->cons.mu, NULL);
    pthread_cond_init(&g->cons.cv, NULL);
    g->cons.last_signal = -1;
    ot_create_params p = {.id = "otlp", .config = &g->cfg};
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        if (signals & OT_SIGBIT(s))
            p.next[s] = &g->cons.base;
    ot_err err = {{0}};
    g->rx = ot_otlp_receiver.create(&p, &err);
    cr_assert(g->rx, "create: %s", err.msg);
    cr_assert_eq(ot_otlp_receiver.start(g->rx, &err), 0, "start: %s", err.msg);
    g->http = ot_otlpr_http_bound_port(g->rx);
    g->grpc = ot_otlpr_grpc_bound_port(g->rx);
}

static void rig_stop(rig *g)
{
    ot_otlp_receiver.shutdown(g->rx, ot_now_ns() + 2000000000LL);
    ot_otlp_receiver.destroy(g->rx);
    free(g->cons.last_wire);
    ot_diags_free(&g->d);
    ot_arena_free(g->arena);
}

#define OTLPR_SIG_TRACES_AND_LOGS (OT_SIGBIT(OT_TRACES) | OT_SIGBIT(OT_LOGS))
#define BOTH "protocols: {grpc: {endpoint: 127.0.0.1:0}, http: {endpoint: 127.0.0.1:0}}\n"

/* ---- HTTP client ---------------------------------------------------------------- */

typedef struct resp {
    long status;
    ot_buf body;
    ot_buf headers; /* lower-cased */
} resp;

static size_t collect(char *p, size_t s, size_t n, void *u)
{
    ot_buf_append(u, p, s * n);
    return s * n;
}

static size_t collect_lower(char *p, size_t s, size_t n, void *u)
{
    ot_buf *b = u;
    for (size_t i = 0; i < s * n; i++)
        ot_buf_putc(b, (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]));
    return s * n;
}

static void resp_free(resp *r)
{
    ot_buf_free(&r->body);
    ot_buf_free(&r->headers);
}

static bool has_header(resp *r, const char *line)
{
    ot_buf_putc(&r->headers, '\0');
    r->headers.len--;
    return strstr(r->headers.data ? r->headers.data : "", line) != NULL;
}

static void http_req(int port, const char *method, const char *path, const char *ctype,
                     const char *extra, const void *body, size_t len, resp *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = NULL;
    char ct[128];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    h = curl_slist_append(h, "Expect:");
    if (extra)
        h = curl_slist_append(h, extra);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_lower);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(c);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void post(int port, const char *path, const char *ctype, const char *extra,
                 const void *body, size_t len, resp *r)
{
    http_req(port, "POST", path, ctype, extra, body, len, r);
}

/* ---- gRPC client (nghttp2) ------------------------------------------------------------------ */

typedef struct gresp {
    long http_status;
    int status; /* -1 when no grpc-status came */
    char message[512];
    char details[1024];
    ot_buf body;
    ot_buf headers;
} gresp;

static void header_value(const char *all, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    const char *p = all;
    size_t nl = strlen(name);
    while ((p = strstr(p, name))) {
        if ((p == all || p[-1] == '\n') && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ')
                p++;
            size_t n = strcspn(p, "\r\n");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return;
        }
        p += nl;
    }
}

/* A blocking HTTP/2 client on nghttp2: one unary call per connection. It
 * reads the response and trailers even when the server resets the stream
 * after answering early, as HTTP/2 allows. */
typedef struct gcall {
    gresp *r;
    const uint8_t *body;
    size_t len, off;
    bool done;
} gcall;

static ssize_t gc_send(nghttp2_session *s, const uint8_t *d, size_t n, int flags, void *u)
{
    int fd = *(int *)u;
    ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
    return w < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : w;
}

static ssize_t gc_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *u)
{
    gcall *c = src->ptr;
    size_t n = c->len - c->off < len ? c->len - c->off : len;
    memcpy(buf, c->body + c->off, n);
    c->off += n;
    if (c->off == c->len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int gc_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *u)
{
    gcall *c = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!c)
        return 0;
    if (nl == 7 && memcmp(name, ":status", 7) == 0)
        c->r->http_status = strtol((const char *)value, NULL, 10);
    ot_buf_append(&c->r->headers, name, nl);
    ot_buf_puts(&c->r->headers, ": ");
    ot_buf_append(&c->r->headers, value, vl);
    ot_buf_puts(&c->r->headers, "\r\n");
    return 0;
}

static int gc_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                   void *u)
{
    gcall *c = nghttp2_session_get_stream_user_data(s, id);
    if (c)
        ot_buf_append(&c->r->body, d, n);
    return 0;
}

static int gc_close(nghttp2_session *s, int32_t id, uint32_t code, void *u)
{
    gcall *c = nghttp2_session_get_stream_user_data(s, id);
    if (c)
        c->done = true;
    return 0;
}

static void grpc_call(int port, const char *path, const uint8_t *msg, size_t len, bool compressed,
                      const char *const *extra, gresp *r)
{
    memset(r, 0, sizeof *r);
    uint8_t *framed = malloc(len + 5);
    ot_grpc_prefix(framed, compressed, (uint32_t)len);
    memcpy(framed + 5, msg, len);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, gc_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, gc_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, gc_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, gc_close);
    nghttp2_session *s;
    nghttp2_session_client_new(&s, cbs, &fd);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
    char auth[64];
    snprintf(auth, sizeof auth, "127.0.0.1:%d", port);
    nghttp2_nv nva[16];
    size_t n = 0;
#define GNV(k, v) (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), 0}
    nva[n++] = GNV(":method", "POST");
    nva[n++] = GNV(":scheme", "http");
    nva[n++] = GNV(":authority", auth);
    nva[n++] = GNV(":path", path);
    nva[n++] = GNV("content-type", "application/grpc");
    nva[n++] = GNV("te", "trailers");
    char kbuf[8][64], vbuf[8][128];
    for (size_t i = 0; extra && extra[i] && i < 8; i++) {
        const char *colon = strchr(extra[i], ':');
        snprintf(kbuf[i], sizeof kbuf[i], "%.*s", (int)(colon - extra[i]), extra[i]);
        snprintf(vbuf[i], sizeof vbuf[i], "%s", colon + 2);
        nva[n++] = GNV(kbuf[i], vbuf[i]);
    }
    gcall call = {r, framed, len + 5, 0, false};
    nghttp2_data_provider dp = {.source.ptr = &call, .read_callback = gc_read};
    int32_t id = nghttp2_submit_request(s, NULL, nva, n, &dp, &call);
    cr_assert_gt(id, 0);
    uint8_t buf[16384];
    while (!call.done) {
        cr_assert_eq(nghttp2_session_send(s), 0);
        if (call.done)
            break;
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got <= 0)
            break;
        if (nghttp2_session_mem_recv(s, buf, (size_t)got) < 0)
            break;
    }
    nghttp2_session_del(s);
    close(fd);
    free(framed);
    ot_buf_putc(&r->headers, '\0');
    char st[16];
    header_value(r->headers.data, "grpc-status", st, sizeof st);
    r->status = *st ? atoi(st) : -1;
    header_value(r->headers.data, "grpc-message", r->message, sizeof r->message);
    header_value(r->headers.data, "grpc-status-details-bin", r->details, sizeof r->details);
}

static void gresp_free(gresp *r)
{
    ot_buf_free(&r->body);
    ot_buf_free(&r->headers);
}

#define TRACE_PATH "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define METRICS_PATH "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
#define LOGS_PATH "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

/* ---- config ------------------------------------------------------------------------- */

Test(otlp_recv, config_defaults)
{
    rig g = {0};
    rig_config(&g, "protocols: {grpc: , http: }\n");
    cr_assert_eq(g.d.errors, 0);
    cr_assert(g.cfg.protocols.grpc.present && g.cfg.protocols.http.present);
    cr_assert_str_eq(g.cfg.protocols.grpc.endpoint.host, "127.0.0.1");
    cr_assert_eq(g.cfg.protocols.grpc.endpoint.port, 4317);
    cr_assert_eq(g.cfg.protocols.http.endpoint.port, 4318);
    cr_assert_eq(g.cfg.protocols.grpc.max_recv_msg_size_mib, 4);
    cr_assert_eq(g.cfg.protocols.grpc.max_concurrent_streams, 100);
    cr_assert_str_eq(g.cfg.protocols.http.traces_url_path, "/v1/traces");
    cr_assert_str_eq(g.cfg.protocols.http.metrics_url_path, "/v1/metrics");
    cr_assert_str_eq(g.cfg.protocols.http.logs_url_path, "/v1/logs");
    cr_assert_eq(g.cfg.protocols.http.max_request_body_size, 20u << 20);
    cr_assert_eq(g.cfg.max_inflight_bytes, 32u << 20);
    cr_assert(!g.cfg.protocols.http.tls.present);
    const ot_endpoint *eps[4];
    cr_assert_eq(ot_otlp_receiver.listens(&g.cfg, eps, 4), 2);
    ot_diags_free(&g.d);
    ot_arena_free(g.arena);
}

Test(otlp_recv, config_errors)
{
    rig g = {0};
    rig_config(&g, "protocols: {}\n");
    cr_assert_eq(g.d.errors, 1);
    cr_assert(strstr(g.d.v[0].msg, "at least one protocol"), "%s", g.d.v[0].msg);
    ot_diags_free(&g.d);
    ot_arena_free(g.arena);

    rig_config(&g, "protocols:\n  http:\n    tls: {cert_file: a.pem}\n    logs_url_path: v1/l\n"
                   "    cors: {allowed_origins: ['https://*.example.com'], max_age: 60}\n"
                   "  grpc: {keepalive: {server_parameters: {time: 10s}}, tls: {min_version: '1.3',"
                   " cert_file: c, key_file: k}}\n");
    cr_assert_eq(g.d.errors, 2, "errors: %zu", g.d.errors);
    cr_assert_eq(g.cfg.protocols.grpc.keepalive.server_parameters.time, 10000000000LL);
    cr_assert_eq(g.cfg.protocols.grpc.tls.min_version, 1);
    cr_assert_eq(g.cfg.protocols.http.cors.allowed_origins.n, 1);
    cr_assert_eq(g.cfg.protocols.http.cors.max_age, 60);
    ot_diags_free(&g.d);
    ot_arena_free(g.arena);

    rig_config(&g, "protocols: {grpc: {endpoint: 127.0.0.1:0, max_recv_msg_size_mib: 0}}\n"
                   "max_inflight: 1\n");
    cr_assert_eq(g.d.errors, 2);
    ot_diags_free(&g.d);
    ot_arena_free(g.arena);
}

/* ---- pure pieces --------------------------------------------------------------------------- */

Test(otlp_recv, content_negotiation)
{
    cr_assert_eq(ot_otlpr_content_type("application/x-protobuf"), OTLPR_PROTOBUF);
    cr_assert_eq(ot_otlpr_content_type("application/protobuf; charset=x"), OTLPR_PROTOBUF);
    cr_assert_eq(ot_otlpr_content_type("Application/JSON; charset=utf-8"), OTLPR_JSON);
    cr_assert_eq(ot_otlpr_content_type("application/jsonx"), -1);
    cr_assert_eq(ot_otlpr_content_type("text/plain"), -1);
    cr_assert_eq(ot_otlpr_content_type(NULL), -1);
    cr_assert_eq(ot_otlpr_encoding(NULL), OTLPR_ENC_IDENTITY);
    cr_assert_eq(ot_otlpr_encoding("identity"), OTLPR_ENC_IDENTITY);
    cr_assert_eq(ot_otlpr_encoding("GZIP"), OTLPR_ENC_GZIP);
    cr_assert_eq(ot_otlpr_encoding("deflate"), OTLPR_ENC_DEFLATE);
    cr_assert_eq(ot_otlpr_encoding("zstd"), OTLPR_ENC_ZSTD);
    cr_assert_eq(ot_otlpr_encoding("br"), -1);
    cr_assert_eq(ot_otlpr_encoding("snappy"), -1);
}

static void roundtrip(otlpr_enc enc, packed z, packed plain)
{
    uint8_t *out;
    size_t n;
    uint64_t taken;
    ot_err err = {{0}};
    cr_assert_eq(ot_otlpr_decompress(enc, z.p, z.n, plain.n, NULL, &taken, &out, &n, &err),
                 OTLPR_DECOMP_OK, "%s: %s", ot_otlpr_encoding_name(enc), err.msg);
    cr_assert_eq(n, plain.n);
    cr_assert_eq(memcmp(out, plain.p, n), 0);
    free(out);
    /* one byte less room: too large */
    cr_assert_eq(ot_otlpr_decompress(enc, z.p, z.n, plain.n - 1, NULL, &taken, &out, &n, &err),
                 OTLPR_DECOMP_TOO_LARGE);
    /* truncated input: invalid */
    cr_assert_eq(ot_otlpr_decompress(enc, z.p, z.n / 2, plain.n, NULL, &taken, &out, &n, &err),
                 OTLPR_DECOMP_INVALID, "%s truncated", ot_otlpr_encoding_name(enc));
}

Test(otlp_recv, decompress_roundtrips_and_caps)
{
    packed plain = sample(OT_TRACES, 300);
    packed gz = gzip_bytes(plain.p, plain.n, 16 + MAX_WBITS);
    packed zl = gzip_bytes(plain.p, plain.n, MAX_WBITS);
    packed raw = gzip_bytes(plain.p, plain.n, -MAX_WBITS);
    packed zs = zstd_bytes(plain.p, plain.n);
    roundtrip(OTLPR_ENC_GZIP, gz, plain);
    roundtrip(OTLPR_ENC_DEFLATE, zl, plain);
    roundtrip(OTLPR_ENC_DEFLATE, raw, plain);
    roundtrip(OTLPR_ENC_ZSTD, zs, plain);
    free(gz.p);
    free(zl.p);
    free(raw.p);
    free(zs.p);
    free(plain.p);
}

Test(otlp_recv, compression_bomb_costs_only_the_cap)
{
    /* 256 MiB of zeros compress to about 250 KiB (gzip) / 8 KiB (zstd) */
    size_t big = 256u << 20;
    uint8_t *zeros = calloc(1, big);
    packed gz = gzip_bytes(zeros, big, 16 + MAX_WBITS);
    packed zs = zstd_bytes(zeros, big);
    free(zeros);
    otlpr_budget b = {.max = 64u << 20};
    atomic_init(&b.used, 0);
    uint8_t *out;
    size_t n;
    uint64_t taken = 99;
    ot_err err = {{0}};
    cr_assert_eq(ot_otlpr_decompress(OTLPR_ENC_GZIP, gz.p, gz.n, 1 << 20, &b, &taken, &out, &n,
                                     &err),
                 OTLPR_DECOMP_TOO_LARGE);
    cr_assert_eq(taken, 0);
    cr_assert_eq(atomic_load(&b.used), 0, "budget given back");
    cr_assert_eq(ot_otlpr_decompress(OTLPR_ENC_ZSTD, zs.p, zs.n, 1 << 20, &b, &taken, &out, &n,
                                     &err),
                 OTLPR_DECOMP_TOO_LARGE);
    /* a budget smaller than the output: busy, not allocated */
    otlpr_budget small = {.max = 100000};
    atomic_init(&small.used, 0);
    cr_assert_eq(ot_otlpr_decompress(OTLPR_ENC_GZIP, gz.p, gz.n, 1 << 20, &small, &taken, &out,
                                     &n, &err),
                 OTLPR_DECOMP_BUSY);
    cr_assert_eq(atomic_load(&small.used), 0);
    free(gz.p);
    free(zs.p);
}

Test(otlp_recv, budget_take_and_give)
{
    otlpr_budget b = {.max = 100};
    atomic_init(&b.used, 0);
    cr_assert(ot_otlpr_budget_take(&b, 60));
    cr_assert(!ot_otlpr_budget_take(&b, 41));
    cr_assert(ot_otlpr_budget_take(&b, 40));
    cr_assert(!ot_otlpr_budget_take(&b, 1));
    cr_assert(!ot_otlpr_budget_take(&b, UINT64_MAX));
    ot_otlpr_budget_give(&b, 100);
    cr_assert_eq(atomic_load(&b.used), 0);
    cr_assert(ot_otlpr_budget_take(NULL, 5));
}

static uint8_t frame_buf[4096];

static uint8_t *test_alloc(void *ctx, uint32_t len, bool compressed, int *why)
{
    int *mode = ctx;
    if (*mode == 1) {
        *why = OT_GRPCF_REFUSED;
        return NULL;
    }
    return frame_buf;
}

Test(otlp_recv, grpc_frame_reader)
{
    int mode = 0;
    ot_grpcf_reader r;
    uint8_t msg[5 + 300];
    ot_grpc_prefix(msg, false, 300);
    for (int i = 0; i < 300; i++)
        msg[5 + i] = (uint8_t)i;
    /* byte by byte */
    ot_grpcf_reader_init(&r, 1000, test_alloc, &mode);
    cr_assert_eq(ot_grpcf_finish(&r), OT_GRPCF_NO_MESSAGE);
    for (size_t i = 0; i < sizeof msg; i++) {
        cr_assert_eq(ot_grpcf_feed(&r, msg + i, 1), OT_GRPCF_OK);
        if (i + 1 < sizeof msg)
            cr_assert_neq(ot_grpcf_finish(&r), OT_GRPCF_OK);
    }
    cr_assert_eq(ot_grpcf_finish(&r), OT_GRPCF_OK);
    cr_assert(ot_grpcf_complete(&r));
    cr_assert_eq(memcmp(frame_buf, msg + 5, 300), 0);
    cr_assert_eq(ot_grpcf_feed(&r, msg, 1), OT_GRPCF_EXTRA);
    /* all at once; compressed flag */
    msg[0] = 1;
    ot_grpcf_reader_init(&r, 1000, test_alloc, &mode);
    cr_assert_eq(ot_grpcf_feed(&r, msg, sizeof msg), OT_GRPCF_OK);
    cr_assert(r.compressed);
    /* too large, bad flag, refused, truncated */
    ot_grpcf_reader_init(&r, 299, test_alloc, &mode);
    cr_assert_eq(ot_grpcf_feed(&r, msg, sizeof msg), OT_GRPCF_TOO_LARGE);
    msg[0] = 2;
    ot_grpcf_reader_init(&r, 1000, test_alloc, &mode);
    cr_assert_eq(ot_grpcf_feed(&r, msg, sizeof msg), OT_GRPCF_BAD_FLAG);
    msg[0] = 0;
    mode = 1;
    ot_grpcf_reader_init(&r, 1000, test_alloc, &mode);
    cr_assert_eq(ot_grpcf_feed(&r, msg, sizeof msg), OT_GRPCF_REFUSED);
    mode = 0;
    ot_grpcf_reader_init(&r, 1000, test_alloc, &mode);
    cr_assert_eq(ot_grpcf_feed(&r, msg, 3), OT_GRPCF_OK);
    cr_assert_eq(ot_grpcf_finish(&r), OT_GRPCF_TRUNCATED);
    cr_assert_eq(ot_grpcf_feed(&r, msg + 3, 100), OT_GRPCF_OK);
    cr_assert_eq(ot_grpcf_finish(&r), OT_GRPCF_TRUNCATED);
    /* an empty message is a message */
    uint8_t empty[5];
    ot_grpc_prefix(empty, false, 0);
    ot_grpcf_reader_init(&r, 1000, test_alloc, &mode);
    cr_assert_eq(ot_grpcf_feed(&r, empty, 5), OT_GRPCF_OK);
    cr_assert_eq(ot_grpcf_finish(&r), OT_GRPCF_OK);
}

Test(otlp_recv, grpc_header_values)
{
    int64_t ns;
    cr_assert_eq(ot_grpc_timeout_parse("1S", 2, &ns), 0);
    cr_assert_eq(ns, 1000000000LL);
    cr_assert_eq(ot_grpc_timeout_parse("250m", 4, &ns), 0);
    cr_assert_eq(ns, 250000000LL);
    cr_assert_eq(ot_grpc_timeout_parse("99999999H", 9, &ns), 0);
    cr_assert_eq(ns, INT64_MAX);
    cr_assert_eq(ot_grpc_timeout_parse("0n", 2, &ns), 0);
    cr_assert_eq(ns, 0);
    cr_assert_eq(ot_grpc_timeout_parse("123456789S", 10, &ns), -1);
    cr_assert_eq(ot_grpc_timeout_parse("5x", 2, &ns), -1);
    cr_assert_eq(ot_grpc_timeout_parse("S", 1, &ns), -1);
    cr_assert_eq(ot_grpc_timeout_parse("-1S", 3, &ns), -1);

    ot_buf b = OT_BUF_INIT;
    ot_grpc_percent_encode("50% off\n\xc3\xa9", &b);
    ot_buf_putc(&b, '\0');
    cr_assert_str_eq(b.data, "50%25 off%0A%C3%A9");
    ot_buf_free(&b);
    const char *cases[][2] = {{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"},
                              {"foob", "Zm9vYg"}};
    for (size_t i = 0; i < 5; i++) {
        char out[16];
        out[ot_base64_encode((const uint8_t *)cases[i][0], strlen(cases[i][0]), out,
                             OT_B64_NOPAD)] = '\0';
        cr_assert_str_eq(out, cases[i][1]);
    }
}

Test(otlp_recv, status_bodies)
{
    ot_buf b = OT_BUF_INIT;
    cr_assert_eq(ot_otlpr_status_body(OTLPR_PROTOBUF, 14, "busy", 1, &b), 0);
    Google__Rpc__Status *st =
        google__rpc__status__unpack(NULL, b.len, (const uint8_t *)b.data);
    cr_assert(st);
    cr_assert_eq(st->code, 14);
    cr_assert_str_eq(st->message, "busy");
    cr_assert_eq(st->n_details, 1);
    cr_assert_str_eq(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
    Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(
        NULL, st->details[0]->value.len, st->details[0]->value.data);
    cr_assert(ri && ri->retry_delay);
    cr_assert_eq(ri->retry_delay->seconds, 1);
    google__rpc__retry_info__free_unpacked(ri, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    ot_buf_free(&b);

    ot_otlpr_status_body(OTLPR_JSON, 3, "bad \"x\"", 0, &b);
    ot_buf_putc(&b, '\0');
    cr_assert_str_eq(b.data, "{\"code\":3,\"message\":\"bad \\\"x\\\"\"}");
    ot_buf_free(&b);

    ot_otlpr_success_body(OT_TRACES, OTLPR_JSON, 0, NULL, &b);
    ot_buf_putc(&b, '\0');
    cr_assert_str_eq(b.data, "{}");
    ot_buf_free(&b);
    ot_otlpr_success_body(OT_LOGS, OTLPR_JSON, 3, "dropped", &b);
    ot_buf_putc(&b, '\0');
    cr_assert_str_eq(b.data,
                     "{\"partialSuccess\":{\"rejectedLogRecords\":\"3\",\"errorMessage\":\"dropped\"}}");
    ot_buf_free(&b);
    ot_otlpr_success_body(OT_METRICS, OTLPR_PROTOBUF, 0, NULL, &b);
    cr_assert_eq(b.len, 0);
    ot_otlpr_success_body(OT_METRICS, OTLPR_PROTOBUF, 2, "x", &b);
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *mr =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
            NULL, b.len, (const uint8_t *)b.data);
    cr_assert(mr && mr->partial_success);
    cr_assert_eq(mr->partial_success->rejected_data_points, 2);
    protobuf_c_message_free_unpacked(&mr->base, NULL);
    ot_buf_free(&b);
}

Test(otlp_recv, http_body_path)
{
    packed plain = sample(OT_LOGS, 20);
    packed zs = zstd_bytes(plain.p, plain.n);
    otlpr_outcome o;
    ot_err err = {{0}};
    ot_batch *b = ot_otlpr_http_body(OT_LOGS, "application/x-protobuf", "zstd", zs.p, zs.n,
                                     1 << 20, NULL, &o, &err);
    cr_assert(b, "%s", err.msg);
    cr_assert_eq(o, OTLPR_OK);
    cr_assert_eq(b->items, 20);
    cr_assert_eq(b->wire_len, plain.n);
    ot_batch_unref(b);
    cr_assert_null(ot_otlpr_http_body(OT_LOGS, "application/x-protobuf", "zstd", zs.p, zs.n,
                                      plain.n - 1, NULL, &o, &err));
    cr_assert_eq(o, OTLPR_TOO_LARGE);
    cr_assert_null(ot_otlpr_http_body(OT_LOGS, "application/json", NULL, plain.p, plain.n,
                                      1 << 20, NULL, &o, &err));
    cr_assert_eq(o, OTLPR_INVALID);
    const char *json = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":"
                       "{\"stringValue\":\"hi\"}}]}]}]}";
    b = ot_otlpr_http_body(OT_LOGS, "application/json", "", (const uint8_t *)json, strlen(json),
                           1 << 20, NULL, &o, &err);
    cr_assert(b, "%s", err.msg);
    cr_assert_eq(b->items, 1);
    ot_batch_unref(b);
    free(zs.p);
    free(plain.p);
}

/* ---- HTTP server ---------------------------------------------------------------------------- */

Test(otlp_recv, http_protobuf_each_signal)
{
    rig g;
    rig_start(&g, BOTH, OT_SIG_ALL);
    const char *paths[] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        packed body = sample((ot_signal)s, 50);
        resp r;
        post(g.http, paths[s], "application/x-protobuf", NULL, body.p, body.n, &r);
        cr_assert_eq(r.status, 200, "%s: %ld", paths[s], r.status);
        cr_assert_eq(r.body.len, 0);
        cr_assert(has_header(&r, "content-type: application/x-protobuf"));
        cr_assert_eq(g.cons.last_signal, s);
        cr_assert_eq(g.cons.last_len, body.n);
        cr_assert_eq(memcmp(g.cons.last_wire, body.p, body.n), 0);
        resp_free(&r);
        free(body.p);
    }
    cr_assert_eq(g.cons.batches, 3);
    cr_assert_eq(g.cons.items, 150);
    rig_stop(&g);
}

Test(otlp_recv, http_json_and_compressed)
{
    rig g;
    rig_start(&g, BOTH, OT_SIG_ALL);
    const char *json = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
                       "\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
                       "\"name\":\"x\"},{\"name\":\"y\"}]}]}]}";
    resp r;
    post(g.http, "/v1/traces", "application/json; charset=utf-8", NULL, json, strlen(json), &r);
    cr_assert_eq(r.status, 200);
    ot_buf_putc(&r.body, '\0');
    /* the span without ids is rejected, the other one goes on */
    cr_assert(strstr(r.body.data, "{\"partialSuccess\":{\"rejectedSpans\":\"1\",\"errorMessage\":\"1 spans "
                                  "rejected; first reason: invalid trace_id") == r.body.data,
              "%s", r.body.data);
    cr_assert(has_header(&r, "content-type: application/json"));
    cr_assert_eq(g.cons.items, 1);
    resp_free(&r);

    packed plain = sample(OT_METRICS, 64);
    packed gz = gzip_bytes(plain.p, plain.n, 16 + MAX_WBITS);
    packed zl = gzip_bytes(plain.p, plain.n, MAX_WBITS);
    packed zs = zstd_bytes(plain.p, plain.n);
    struct {
        packed *b;
        const char *hdr;
    } cases[] = {{&gz, "Content-Encoding: gzip"},
                 {&zl, "Content-Encoding: deflate"},
                 {&zs, "Content-Encoding: zstd"}};
    for (size_t i = 0; i < 3; i++) {
        post(g.http, "/v1/metrics", "application/x-protobuf", cases[i].hdr, cases[i].b->p,
             cases[i].b->n, &r);
        cr_assert_eq(r.status, 200, "%s: %ld", cases[i].hdr, r.status);
        cr_assert_eq(g.cons.last_len, plain.n);
        cr_assert_eq(memcmp(g.cons.last_wire, plain.p, plain.n), 0);
        resp_free(&r);
    }
    post(g.http, "/v1/metrics", "application/x-protobuf", "Content-Encoding: br", gz.p, gz.n, &r);
    cr_assert_eq(r.status, 415);
    resp_free(&r);
    /* a corrupt gzip body is bad data */
    gz.p[gz.n / 2] ^= 0xff;
    post(g.http, "/v1/metrics", "application/x-protobuf", "Content-Encoding: gzip", gz.p, gz.n,
         &r);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
    free(gz.p);
    free(zl.p);
    free(zs.p);
    free(plain.p);
    rig_stop(&g);
}

Test(otlp_recv, http_errors)
{
    rig g;
    rig_start(&g,
              "protocols: {http: {endpoint: 127.0.0.1:0, max_request_body_size: 64KiB}}\n",
              OTLPR_SIG_TRACES_AND_LOGS);
    packed body = sample(OT_TRACES, 5);
    resp r;
    http_req(g.http, "GET", "/v1/traces", NULL, NULL, NULL, 0, &r);
    cr_assert_eq(r.status, 405);
    cr_assert(has_header(&r, "allow: post"));
    resp_free(&r);
    post(g.http, "/v1/nope", "application/x-protobuf", NULL, body.p, body.n, &r);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
    /* metrics are in no pipeline */
    post(g.http, "/v1/metrics", "application/x-protobuf", NULL, body.p, body.n, &r);
    cr_assert_eq(r.status, 404);
    resp_free(&r);
    post(g.http, "/v1/traces", "text/plain", NULL, body.p, body.n, &r);
    cr_assert_eq(r.status, 415);
    resp_free(&r);
    /* undecodable: 400 with a google.rpc.Status in the request's type */
    post(g.http, "/v1/traces", "application/x-protobuf", NULL, "\x0a\x05\x00", 3, &r);
    cr_assert_eq(r.status, 400);
    Google__Rpc__Status *st =
        google__rpc__status__unpack(NULL, r.body.len, (const uint8_t *)r.body.data);
    cr_assert(st);
    cr_assert_eq(st->code, 3);
    cr_assert(strstr(st->message, "offset"), "%s", st->message);
    google__rpc__status__free_unpacked(st, NULL);
    resp_free(&r);
    post(g.http, "/v1/logs", "application/json", NULL, "{\"resourceLogs\":[", 17, &r);
    cr_assert_eq(r.status, 400);
    ot_buf_putc(&r.body, '\0');
    cr_assert(strstr(r.body.data, "\"code\":3"), "%s", r.body.data);
    resp_free(&r);
    /* too large by Content-Length, and by decompression */
    uint8_t *big = calloc(1, 70000);
    post(g.http, "/v1/traces", "application/x-protobuf", NULL, big, 70000, &r);
    cr_assert_eq(r.status, 413);
    resp_free(&r);
    packed bomb = gzip_bytes(big, 70000, 16 + MAX_WBITS);
    post(g.http, "/v1/traces", "application/x-protobuf", "Content-Encoding: gzip", bomb.p,
         bomb.n, &r);
    cr_assert_eq(r.status, 413);
    resp_free(&r);
    /* chunked (no Content-Length) over the limit */
    post(g.http, "/v1/traces", "application/x-protobuf", "Transfer-Encoding: chunked", big, 70000,
         &r);
    cr_assert_eq(r.status, 413);
    resp_free(&r);
    /* and the server still serves */
    post(g.http, "/v1/traces", "application/x-protobuf", "Transfer-Encoding: chunked", body.p,
         body.n, &r);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    free(bomb.p);
    free(big);
    free(body.p);
    rig_stop(&g);
}

Test(otlp_recv, http_pipeline_refusals)
{
    rig g;
    rig_start(&g, BOTH, OT_SIG_ALL);
    packed body = sample(OT_LOGS, 4);
    resp r;
    g.cons.answer = OT_RETRYABLE;
    post(g.http, "/v1/logs", "application/x-protobuf", NULL, body.p, body.n, &r);
    cr_assert_eq(r.status, 503);
    cr_assert(has_header(&r, "retry-after: 1"));
    resp_free(&r);
    g.cons.answer = OT_PERMANENT;
    post(g.http, "/v1/logs", "application/json", NULL, "{}", 2, &r);
    cr_assert_eq(r.status, 400);
    resp_free(&r);
    g.cons.answer = OT_OK;
    post(g.http, "/v1/logs", "application/x-protobuf", NULL, body.p, body.n, &r);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    /* the counters saw it */
    ot_buf m = OT_BUF_INIT;
    ot_tel_render(&m);
    ot_buf_putc(&m, '\0');
    cr_assert(strstr(m.data, "otelite_receiver_accepted_log_records_total{receiver=\"otlp\","
                             "transport=\"http\"} 4"),
              "%s", m.data);
    cr_assert(strstr(m.data, "otelite_receiver_refused_log_records_total{receiver=\"otlp\","
                             "transport=\"http\"} 4"));
    cr_assert(strstr(m.data, "code=\"503\""));
    ot_buf_free(&m);
    free(body.p);
    rig_stop(&g);
}

Test(otlp_recv, http_cors_and_metadata)
{
    rig g;
    rig_start(&g,
              "protocols:\n  http:\n    endpoint: 127.0.0.1:0\n    include_metadata: true\n"
              "    cors: {allowed_origins: ['https://*.example.com'], allowed_headers: [X-Tenant],"
              " max_age: 600}\n",
              OT_SIG_ALL);
    resp r;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Origin: https://app.example.com");
    h = curl_slist_append(h, "Access-Control-Request-Method: POST");
    h = curl_slist_append(h, "Access-Control-Request-Headers: content-type, x-tenant");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", g.http);
    memset(&r, 0, sizeof r);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "OPTIONS");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_lower);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    cr_assert_eq(r.status, 204);
    cr_assert(has_header(&r, "access-control-allow-origin: https://app.example.com"));
    cr_assert(has_header(&r, "access-control-max-age: 600"));
    cr_assert(has_header(&r, "access-control-allow-headers: content-type, x-tenant"));
    resp_free(&r);
    curl_slist_free_all(h);
    /* an origin that does not match gets no CORS headers */
    h = NULL;
    h = curl_slist_append(h, "Origin: https://evil.test");
    h = curl_slist_append(h, "Access-Control-Request-Method: POST");
    memset(&r, 0, sizeof r);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    cr_assert(!has_header(&r, "access-control-allow-origin"));
    resp_free(&r);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    /* a POST from an allowed origin; headers land in the batch */
    packed body = sample(OT_TRACES, 2);
    post(g.http, "/v1/traces", "application/x-protobuf", "X-Tenant: acme", body.p, body.n, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(g.cons.tenant, "acme");
    resp_free(&r);
    free(body.p);
    rig_stop(&g);
}

typedef struct bg_post {
    int port;
    packed body;
    long status;
} bg_post;

static void *post_in_background(void *arg)
{
    bg_post *p = arg;
    resp r;
    post(p->port, "/v1/traces", "application/x-protobuf", NULL, p->body.p, p->body.n, &r);
    p->status = r.status;
    resp_free(&r);
    return NULL;
}

Test(otlp_recv, http_inflight_budget_refuses_before_reading)
{
    rig g;
    rig_start(&g, "protocols: {http: {endpoint: 127.0.0.1:0}}\nmax_inflight_bytes: 64KiB\n",
              OT_SIG_ALL);
    size_t spans = 100;
    packed body = sample(OT_TRACES, spans);
    while (body.n < 36000) { /* more than half the budget, less than all */
        free(body.p);
        body = sample(OT_TRACES, spans += 20);
    }
    cr_assert_lt(body.n, 65536);
    g.cons.hold = true;
    bg_post bp = {g.http, body, 0};
    pthread_t t;
    pthread_create(&t, NULL, post_in_background, &bp);
    pthread_mutex_lock(&g.cons.mu);
    while (!g.cons.entered)
        pthread_cond_wait(&g.cons.cv, &g.cons.mu);
    pthread_mutex_unlock(&g.cons.mu);
    /* the first request holds its bytes: the second does not fit */
    resp r;
    post(g.http, "/v1/traces", "application/x-protobuf", NULL, body.p, body.n, &r);
    cr_assert_eq(r.status, 503);
    cr_assert(has_header(&r, "retry-after: 1"));
    resp_free(&r);
    /* a body bigger than the whole budget can never fit: 413 */
    uint8_t *big = calloc(1, 70000);
    post(g.http, "/v1/traces", "application/x-protobuf", NULL, big, 70000, &r);
    cr_assert_eq(r.status, 413);
    resp_free(&r);
    free(big);
    pthread_mutex_lock(&g.cons.mu);
    g.cons.released = true;
    pthread_cond_broadcast(&g.cons.cv);
    pthread_mutex_unlock(&g.cons.mu);
    pthread_join(t, NULL);
    cr_assert_eq(bp.status, 200);
    g.cons.hold = false;
    post(g.http, "/v1/traces", "application/x-protobuf", NULL, body.p, body.n, &r);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    free(body.p);
    rig_stop(&g);
}

/* Writes bytes to a port and closes, reading whatever comes back. */
static void hostile(int port, const void *p, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (write(fd, p, n) < 0) {
        /* the server may hang up first */
    }
    char buf[512];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
}

Test(otlp_recv, hostile_bytes_do_not_stop_serving)
{
    rig g;
    rig_start(&g, BOTH, OT_SIG_ALL);
    static const char j0[] = "GARBAGE\r\n\r\n";
    static const char j1[] = "POST /v1/traces HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n";
    static const char j2[] = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: "
                             "application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    /* h2 preface, then a SETTINGS frame of bad length */
    static const char j3[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x05\x04\x00\x00\x00\x00\x00"
                             "\xff\xff\xff\xff\xff";
    /* h2 preface, empty SETTINGS, then HEADERS with garbage HPACK */
    static const char j4[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                             "\x00\x00\x08\x01\x05\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff";
    const struct {
        const char *p;
        size_t n;
    } junk[] = {{j0, sizeof j0 - 1}, {j1, sizeof j1 - 1}, {j2, sizeof j2 - 1},
                {j3, sizeof j3 - 1}, {j4, sizeof j4 - 1}};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        hostile(g.http, junk[i].p, junk[i].n);
        hostile(g.grpc, junk[i].p, junk[i].n);
    }
    uint8_t noise[4096];
    unsigned seed = 7;
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)rand_r(&seed);
    hostile(g.grpc, noise, sizeof noise);
    hostile(g.http, noise, sizeof noise);

    packed body = sample(OT_TRACES, 3);
    resp r;
    post(g.http, "/v1/traces", "application/x-protobuf", NULL, body.p, body.n, &r);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    gresp gr;
    grpc_call(g.grpc, TRACE_PATH, body.p, body.n, false, NULL, &gr);
    cr_assert_eq(gr.status, 0);
    gresp_free(&gr);
    free(body.p);
    rig_stop(&g);
}

/* ---- gRPC server ------------------------------------------------------------------------------ */

Test(otlp_recv, grpc_export_each_signal)
{
    rig g;
    rig_start(&g, BOTH, OT_SIG_ALL);
    const char *paths[] = {TRACE_PATH, METRICS_PATH, LOGS_PATH};
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        packed body = sample((ot_signal)s, 40);
        gresp r;
        grpc_call(g.grpc, paths[s], body.p, body.n, false, NULL, &r);
        cr_assert_eq(r.http_status, 200);
        cr_assert_eq(r.status, 0, "%s: status %d %s", paths[s], r.status, r.message);
        cr_assert(strstr(r.headers.data, "content-type: application/grpc"));
        cr_assert_eq(r.body.len, 5, "framed empty response");
        cr_assert_eq(memcmp(r.body.data, "\0\0\0\0\0", 5), 0);
        cr_assert_eq(g.cons.last_signal, s);
        cr_assert_eq(g.cons.last_len, body.n);
        cr_assert_eq(memcmp(g.cons.last_wire, body.p, body.n), 0);
        gresp_free(&r);
        free(body.p);
    }
    cr_assert_eq(g.cons.items, 120);
    rig_stop(&g);
}

Test(otlp_recv, grpc_compressed_and_metadata)
{
    rig g;
    rig_start(&g, "protocols: {grpc: {endpoint: 127.0.0.1:0, include_metadata: true}}\n",
              OT_SIG_ALL);
    packed body = sample(OT_LOGS, 30);
    packed gz = gzip_bytes(body.p, body.n, 16 + MAX_WBITS);
    const char *hdrs[] = {"grpc-encoding: gzip", "x-tenant: blue", NULL};
    gresp r;
    grpc_call(g.grpc, LOGS_PATH, gz.p, gz.n, true, hdrs, &r);
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.message);
    cr_assert_eq(g.cons.last_len, body.n);
    cr_assert_str_eq(g.cons.tenant, "blue");
    gresp_free(&r);
    /* compressed flag without grpc-encoding */
    grpc_call(g.grpc, LOGS_PATH, gz.p, gz.n, true, NULL, &r);
    cr_assert_eq(r.status, 13);
    gresp_free(&r);
    const char *snappy[] = {"grpc-encoding: snappy", NULL};
    grpc_call(g.grpc, LOGS_PATH, gz.p, gz.n, true, snappy, &r);
    cr_assert_eq(r.status, 12);
    gresp_free(&r);
    free(gz.p);
    free(body.p);
    rig_stop(&g);
}

Test(otlp_recv, grpc_status_mapping)
{
    rig g;
    rig_start(&g,
              "protocols: {grpc: {endpoint: 127.0.0.1:0, max_recv_msg_size_mib: 1}}\n",
              OTLPR_SIG_TRACES_AND_LOGS);
    packed body = sample(OT_TRACES, 10);
    gresp r;
    grpc_call(g.grpc, "/opentelemetry.proto.collector.trace.v1.TraceService/Nope", body.p, body.n,
              false, NULL, &r);
    cr_assert_eq(r.status, 12);
    gresp_free(&r);
    grpc_call(g.grpc, METRICS_PATH, body.p, body.n, false, NULL, &r);
    cr_assert_eq(r.status, 12, "metrics are in no pipeline: %d http %ld [%s]", r.status, r.http_status, r.headers.data);
    gresp_free(&r);
    grpc_call(g.grpc, TRACE_PATH, (const uint8_t *)"\x0a\x05\x00", 3, false, NULL, &r);
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.message, "offset 0"), "%s", r.message);
    gresp_free(&r);
    uint8_t *big = calloc(1, (1 << 20) + 10);
    grpc_call(g.grpc, TRACE_PATH, big, (1 << 20) + 10, false, NULL, &r);
    cr_assert_eq(r.status, 8);
    cr_assert_eq(r.details[0], '\0', "no RetryInfo on RESOURCE_EXHAUSTED");
    gresp_free(&r);
    free(big);
    const char *expired[] = {"grpc-timeout: 0n", NULL};
    grpc_call(g.grpc, TRACE_PATH, body.p, body.n, false, expired, &r);
    cr_assert_eq(r.status, 4);
    gresp_free(&r);
    const char *later[] = {"grpc-timeout: 10S", NULL};
    grpc_call(g.grpc, TRACE_PATH, body.p, body.n, false, later, &r);
    cr_assert_eq(r.status, 0);
    gresp_free(&r);

    g.cons.answer = OT_RETRYABLE;
    grpc_call(g.grpc, TRACE_PATH, body.p, body.n, false, NULL, &r);
    cr_assert_eq(r.status, 14);
    cr_assert(r.details[0], "grpc-status-details-bin is sent");
    /* unpadded base64 of a google.rpc.Status with RetryInfo */
    size_t dl = strlen(r.details);
    uint8_t raw[1024];
    size_t rn = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < dl; i++) {
        const char *tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *q = strchr(tbl, r.details[i]);
        cr_assert(q && r.details[i] != '=', "unpadded base64");
        acc = acc << 6 | (uint32_t)(q - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[rn++] = (uint8_t)(acc >> bits);
        }
    }
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, rn, raw);
    cr_assert(st);
    cr_assert_eq(st->code, 14);
    cr_assert_eq(st->n_details, 1);
    cr_assert_str_eq(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
    google__rpc__status__free_unpacked(st, NULL);
    gresp_free(&r);

    g.cons.answer = OT_PERMANENT;
    grpc_call(g.grpc, TRACE_PATH, body.p, body.n, false, NULL, &r);
    cr_assert_eq(r.status, 3);
    gresp_free(&r);
    free(body.p);
    rig_stop(&g);
}

Test(otlp_recv, shutdown_with_idle_connections)
{
    rig g;
    rig_start(&g, BOTH, OT_SIG_ALL);
    /* connections left open by a client must not hold shutdown past the
     * deadline */
    int fds[2];
    int ports[2] = {g.http, g.grpc};
    for (int i = 0; i < 2; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[i])};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        cr_assert_eq(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
    }
    /* half a gRPC request on the gRPC one */
    const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    cr_assert_eq(write(fds[1], pre, sizeof pre - 1), (ssize_t)(sizeof pre - 1));
    usleep(50000);
    int64_t t0 = ot_now_ns();
    ot_otlp_receiver.shutdown(g.rx, t0 + 300000000LL);
    cr_assert_lt(ot_now_ns() - t0, 1500000000LL);
    ot_otlp_receiver.destroy(g.rx);
    close(fds[0]);
    close(fds[1]);
    free(g.cons.last_wire);
    ot_diags_free(&g.d);
    ot_arena_free(g.arena);
}

Test(otlp_recv, grpc_idle_connection_is_closed)
{
    rig g;
    rig_start(&g,
              "protocols: {grpc: {endpoint: 127.0.0.1:0, keepalive: {server_parameters: "
              "{max_connection_idle: 300ms}}}}\n",
              OT_SIG_ALL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.grpc)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    cr_assert_eq(write(fd, pre, sizeof pre - 1), (ssize_t)(sizeof pre - 1));
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int64_t t0 = ot_now_ns();
    uint8_t buf[4096];
    bool goaway = false;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i + 9 <= n; i++)
            if (buf[i + 3] == 0x07 && buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 8)
                goaway = true; /* a GOAWAY frame header (length 8, type 7) */
    cr_assert_eq(n, 0, "the server closed the connection");
    cr_assert(goaway, "with a GOAWAY first");
    int64_t took = ot_now_ns() - t0;
    cr_assert(took >= 250000000LL && took < 2000000000LL, "after about 300ms, took %lld ns",
              (long long)took);
    close(fd);
    rig_stop(&g);
}
