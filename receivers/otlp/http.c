/* http.c: OTLP/HTTP on net/http_server.h (otelite's own HTTP/1.1). Two
 * epoll threads accept and serve connections and call the pipeline on
 * their own stack. The receiver routes itself and takes the body in parts,
 * so what it reserves and how long a body may take stay its own.
 *
 * Everything that can be judged from the headers (method, path, content
 * type and encoding, declared length, in-flight budget) is answered before
 * a byte of the body is read, and the body goes into one buffer sized by
 * Content-Length: for uncompressed protobuf that buffer lives in the arena
 * the batch will own, so the body is copied once, from the socket. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "net/http_server.h"
#include "otlp.h"

struct otlpr_http {
    otlpr *r;
    const otlpr_http_cfg *cfg;
    ot_http_server *srv;
};

typedef struct hreq {
    ot_signal signal;
    otlpr_format format;
    otlpr_enc enc;
    ot_arena *arena; /* holds buf when the batch can adopt it */
    uint8_t *buf;
    size_t len, cap;
    bool growable;     /* no Content-Length: buf is malloc'd and grows */
    /* taken from the budget for buf; atomic because cut gives it back from
     * the server's deadline thread */
    _Atomic uint64_t reserved;
    bool too_large, busy;
    size_t discarded;
    int64_t deadline; /* read_timeout after the headers arrived */
} hreq;

static const char *const ct_names[] = {"application/x-protobuf", "application/json"};

/* ---- responses -------------------------------------------------------------- */

static bool origin_matches(const char *pattern, const char *origin)
{
    /* '*' matches any run of characters, as the collector's CORS does */
    const char *star = NULL, *resume = NULL;
    while (*origin) {
        if (*pattern == '*') {
            star = pattern++;
            resume = origin;
        } else if (*pattern && tolower((unsigned char)*pattern) == tolower((unsigned char)*origin)) {
            pattern++;
            origin++;
        } else if (star) {
            pattern = star + 1;
            origin = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
}

/* The request's Origin when CORS allows it, else NULL. */
static const char *allowed_origin(otlpr_http *h, ot_http_req *c)
{
    const ot_strlist *ao = &h->cfg->cors.allowed_origins;
    if (ao->n == 0)
        return NULL;
    const char *origin = ot_http_header(c, "Origin");
    if (!origin || !*origin)
        return NULL;
    for (size_t i = 0; i < ao->n; i++)
        if (ao->v[i] && origin_matches(ao->v[i], origin))
            return origin;
    return NULL;
}

static void send_reply(otlpr_http *h, ot_http_req *c, unsigned status, const char *ctype,
                       const void *body, size_t len, bool retry_after)
{
    ot_http_resp *resp = ot_http_resp_copy(body, len);
    if (ctype)
        ot_http_resp_header(resp, "Content-Type", ctype);
    if (retry_after)
        ot_http_resp_header(resp, "Retry-After", "1");
    if (status == 405)
        ot_http_resp_header(resp, "Allow",
                            h->cfg->cors.allowed_origins.n ? "POST, OPTIONS" : "POST");
    const char *origin = allowed_origin(h, c);
    if (origin) {
        ot_http_resp_header(resp, "Access-Control-Allow-Origin", origin);
        ot_http_resp_header(resp, "Vary", "Origin");
    }
    ot_http_send(c, status, resp);
    ot_otlpr_count_request(h->r, OTLPR_HTTP, (int)status);
}

/* An error answer: google.rpc.Status in the request's format, or text
 * when the format is not known (yet). */
static void send_error(otlpr_http *h, ot_http_req *c, unsigned status, int format,
                       int grpc_code, const char *msg)
{
    bool retry = status == 503;
    if (format < 0) {
        char text[600];
        int n = snprintf(text, sizeof text, "%s\n", msg);
        send_reply(h, c, status, "text/plain; charset=utf-8", text,
                   n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n, retry);
        return;
    }
    ot_buf b = OT_BUF_INIT;
    ot_otlpr_status_body((otlpr_format)format, grpc_code, msg, retry ? 1 : 0, &b);
    send_reply(h, c, status, ct_names[format], b.data, b.len, retry);
    ot_buf_free(&b);
}

static void send_outcome(otlpr_http *h, ot_http_req *c, ot_signal s, otlpr_format f,
                         otlpr_outcome o, const char *msg, const ot_rejects *rej)
{
    switch (o) {
    case OTLPR_OK: {
        ot_buf b = OT_BUF_INIT;
        if (rej && rej->n)
            ot_otlpr_partial_body(s, f, rej, &b);
        else
            ot_otlpr_success_body(s, f, 0, NULL, &b);
        send_reply(h, c, 200, ct_names[f], b.data, b.len, false);
        ot_buf_free(&b);
        return;
    }
    case OTLPR_INVALID:
    case OTLPR_PERMANENT:
        send_error(h, c, 400, (int)f, 3, msg);
        return;
    case OTLPR_NOT_WIRED:
        send_error(h, c, 404, (int)f, 5, msg);
        return;
    case OTLPR_RETRY:
    case OTLPR_BUSY:
        send_error(h, c, 503, (int)f, 14, msg);
        return;
    case OTLPR_TOO_LARGE:
        send_error(h, c, 413, (int)f, 8, msg);
        return;
    case OTLPR_INTERNAL:
    default:
        send_error(h, c, 500, (int)f, 13, msg);
        return;
    }
}

/* The server's own refusals (a missing client certificate) in the
 * request's format, as every other answer here. */
static void refuse(ot_http_req *c, unsigned status, const char *msg, void *arg)
{
    int code = status == 401 ? 16 : status == 404 ? 5 : status == 405 ? 12 : status == 413 ? 8 : 13;
    send_error(arg, c, status, ot_otlpr_content_type(ot_http_header(c, "Content-Type")), code,
               msg);
}

/* ---- CORS preflight ------------------------------------------------------------ */

static bool header_allowed(otlpr_http *h, const char *name, size_t n)
{
    static const char *const safe[] = {"accept", "accept-language", "content-type",
                                       "content-language", "content-encoding", NULL};
    for (size_t i = 0; safe[i]; i++)
        if (strlen(safe[i]) == n && strncasecmp(safe[i], name, n) == 0)
            return true;
    const ot_strlist *ah = &h->cfg->cors.allowed_headers;
    for (size_t i = 0; i < ah->n; i++)
        if (ah->v[i] && (strcmp(ah->v[i], "*") == 0 ||
                         (strlen(ah->v[i]) == n && strncasecmp(ah->v[i], name, n) == 0)))
            return true;
    return false;
}

static void preflight(otlpr_http *h, ot_http_req *c)
{
    ot_http_resp *resp = ot_http_resp_copy(NULL, 0);
    const char *origin = allowed_origin(h, c);
    const char *method = ot_http_header(c, "Access-Control-Request-Method");
    const char *req_headers = ot_http_header(c, "Access-Control-Request-Headers");
    bool ok = origin && method && strcmp(method, "POST") == 0;
    for (const char *p = req_headers; ok && p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n && !header_allowed(h, p, n))
            ok = false;
        p += n;
    }
    ot_http_resp_header(resp, "Vary", "Origin");
    if (ok) {
        ot_http_resp_header(resp, "Access-Control-Allow-Origin", origin);
        ot_http_resp_header(resp, "Access-Control-Allow-Methods", "POST");
        if (req_headers && *req_headers)
            ot_http_resp_header(resp, "Access-Control-Allow-Headers", req_headers);
        if (h->cfg->cors.max_age > 0) {
            char age[32];
            snprintf(age, sizeof age, "%lld", (long long)h->cfg->cors.max_age);
            ot_http_resp_header(resp, "Access-Control-Max-Age", age);
        }
    }
    ot_http_send(c, 204, resp);
    ot_otlpr_count_request(h->r, OTLPR_HTTP, 204);
}

/* ---- the request ------------------------------------------------------------------- */

static int path_signal(otlpr_http *h, const char *url)
{
    const char *paths[OT_SIGNAL_COUNT] = {h->cfg->traces_url_path, h->cfg->metrics_url_path,
                                          h->cfg->logs_url_path};
    for (int s = 0; s < OT_SIGNAL_COUNT; s++)
        if (paths[s] && strcmp(paths[s], url) == 0)
            return s;
    return -1;
}

/* The headers are in: everything that can be judged from them is answered
 * here, before a byte of the body is read. */
static void begin(ot_http_req *c, void *arg)
{
    otlpr_http *h = arg;
    hreq *q = ot_http_req_state(c);
    const otlpr_http_cfg *cfg = h->cfg;
    const char *method = ot_http_method(c), *url = ot_http_path(c);
    int format = ot_otlpr_content_type(ot_http_header(c, "Content-Type"));
    if (strcmp(method, "OPTIONS") == 0 && cfg->cors.allowed_origins.n) {
        preflight(h, c);
        return;
    }
    if (strcmp(method, "POST") != 0) {
        send_error(h, c, 405, format, 12,
                   "method not allowed; OTLP/HTTP takes POST");
        return;
    }
    int s = path_signal(h, url);
    if (s < 0) {
        send_error(h, c, 404, format, 5, "404 page not found");
        return;
    }
    if (!atomic_load_explicit(&h->r->next[s], memory_order_relaxed)) {
        send_error(h, c, 404, format, 12,
                          "this receiver is in no pipeline for this signal");
        return;
    }
    if (format < 0) {
        send_error(h, c, 415, -1, 3,
                   "unsupported Content-Type; use application/x-protobuf or "
                   "application/json");
        return;
    }
    int enc = ot_otlpr_encoding(ot_http_header(c, "Content-Encoding"));
    if (enc < 0) {
        send_error(h, c, 415, format, 3,
                   "unsupported Content-Encoding; use gzip, deflate, zstd or none");
        return;
    }

    uint64_t max = cfg->max_request_body_size;
    const char *cl = ot_http_header(c, "Content-Length");
    bool have_len = false;
    uint64_t len = 0;
    if (cl && *cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end == '\0') {
            have_len = true;
            len = v;
        }
    }
    if (have_len && len > max) {
        char msg[160];
        snprintf(msg, sizeof msg, "body of %llu bytes exceeds max_request_body_size (%llu)",
                 (unsigned long long)len, (unsigned long long)max);
        send_error(h, c, 413, format, 8, msg);
        return;
    }
    if (len > h->r->budget.max) {
        send_error(h, c, 413, format, 8,
                   "body exceeds max_inflight_bytes; it could never be accepted");
        return;
    }
    if (!ot_otlpr_budget_take(&h->r->budget, len)) {
        send_error(h, c, 503, format, 14,
                   "too many request bytes in flight; retry later");
        return;
    }

    q->signal = (ot_signal)s;
    q->format = (otlpr_format)format;
    q->enc = (otlpr_enc)enc;
    atomic_store(&q->reserved, len);
    q->deadline = ot_now_ns() + h->cfg->read_timeout;
    if (!have_len) {
        q->growable = true;
    } else if (format == OTLPR_PROTOBUF && enc == OTLPR_ENC_IDENTITY) {
        q->arena = ot_arena_new(len + 64);
        q->buf = q->arena ? ot_arena_alloc(q->arena, len ? len : 1) : NULL;
        q->cap = len;
    } else {
        q->buf = malloc(len ? len : 1);
        q->cap = len;
    }
    if (!q->growable && !q->buf)
        send_error(h, c, 500, format, 13, "out of memory"); /* done() gives back */
}

static bool append(ot_http_req *c, const uint8_t *data, size_t n, void *arg)
{
    otlpr_http *h = arg;
    hreq *q = ot_http_req_state(c);
    if (ot_now_ns() > q->deadline) {
        /* Closing the connection gives its reservation back (done). */
        ot_debug("otlp", "request body too slow; connection closed",
                 "receiver=%s transport=http", h->r->id);
        return false;
    }
    uint64_t max = h->cfg->max_request_body_size;
    if (q->too_large || q->busy) {
        /* Drain so the error can be answered; a client that keeps going
         * far past the limit is cut off instead. */
        q->discarded += n;
        return q->discarded <= 4 * max;
    }
    if (q->len + n > q->cap) {
        if (!q->growable || q->len + n > max) {
            q->too_large = true;
            q->discarded = n;
            return true;
        }
        size_t ncap = q->cap ? q->cap * 2 : 65536;
        if (ncap < q->len + n)
            ncap = q->len + n;
        if (ncap > max)
            ncap = max;
        if (!ot_otlpr_budget_take(&h->r->budget, ncap - q->cap)) {
            q->busy = true;
            return true;
        }
        uint8_t *nb = realloc(q->buf, ncap);
        if (!nb) {
            ot_otlpr_budget_give(&h->r->budget, ncap - q->cap);
            q->busy = true;
            return true;
        }
        atomic_fetch_add(&q->reserved, ncap - q->cap);
        q->buf = nb;
        q->cap = ncap;
    }
    memcpy(q->buf + q->len, data, n);
    q->len += n;
    return true;
}

typedef struct meta_acc {
    ot_arena *a;
    ot_meta_kv *v;
    size_t n, cap;
} meta_acc;

static bool add_meta(void *cls, const char *key, const char *value)
{
    meta_acc *m = cls;
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        ot_meta_kv *nv = ot_arena_alloc(m->a, ncap * sizeof *nv);
        if (!nv)
            return false;
        if (m->n)
            memcpy(nv, m->v, m->n * sizeof *nv);
        m->v = nv;
        m->cap = ncap;
    }
    char *k = ot_arena_strdup(m->a, key);
    if (!k)
        return false;
    for (char *p = k; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    m->v[m->n].key = k;
    m->v[m->n].value = value ? value : "";
    m->n++;
    return true;
}

static void finish(ot_http_req *c, void *arg)
{
    otlpr_http *h = arg;
    hreq *q = ot_http_req_state(c);
    if (q->too_large) {
        char msg[160];
        snprintf(msg, sizeof msg, "body exceeds max_request_body_size (%llu)",
                 (unsigned long long)h->cfg->max_request_body_size);
        send_outcome(h, c, q->signal, q->format, OTLPR_TOO_LARGE, msg, NULL);
        return;
    }
    if (q->busy) {
        send_outcome(h, c, q->signal, q->format, OTLPR_BUSY,
                     "too many request bytes in flight; retry later", NULL);
        return;
    }

    meta_acc meta = {0};
    if (h->cfg->include_metadata) {
        meta.a = ot_arena_new(4096);
        if (meta.a)
            ot_http_each_header(c, add_meta, &meta);
    }
    ot_err err = {{0}};
    otlpr_outcome o;
    ot_batch *b;
    otlpr_req req = OTLPR_REQ_INIT(&h->r->budget);
    if (q->enc != OTLPR_ENC_IDENTITY) {
        uint8_t *plain = NULL;
        size_t plain_len = 0;
        uint64_t taken = 0;
        int rc = ot_otlpr_decompress(q->enc, q->buf, q->len, h->cfg->max_request_body_size,
                                     &h->r->budget, &taken, &plain, &plain_len, &err);
        b = NULL;
        o = rc == OTLPR_DECOMP_TOO_LARGE ? OTLPR_TOO_LARGE
            : rc == OTLPR_DECOMP_BUSY    ? OTLPR_BUSY
            : rc == OTLPR_DECOMP_NOMEM   ? OTLPR_INTERNAL
                                         : OTLPR_INVALID;
        if (rc == OTLPR_DECOMP_OK)
            b = ot_otlpr_batch(q->signal, q->format, NULL, plain, plain_len, meta.v, meta.n, &req,
                               &o, &err);
        free(plain);
        ot_otlpr_budget_give(&h->r->budget, taken);
    } else {
        ot_arena *a = q->arena;
        q->arena = NULL; /* the batch (or the failure path) owns it now */
        b = ot_otlpr_batch(q->signal, q->format, a, q->buf, q->len, meta.v, meta.n, &req, &o,
                           &err);
        if (a)
            q->buf = NULL;
    }
    ot_arena_free(meta.a);
    atomic_fetch_add(&q->reserved, req.charged); /* given back when the request is done */
    ot_otlpr_count_rejects(h->r, OTLPR_HTTP, q->signal, &req.rej);
    if (b && !b->items && req.rej.n)
        ot_batch_unref(b); /* every item was rejected: nothing to hand on */
    else if (b)
        o = ot_otlpr_consume(h->r, OTLPR_HTTP, b, &err);
    if (o != OTLPR_OK)
        ot_debug("otlp", "request refused", "receiver=%s transport=http signal=%s outcome=%s err=\"%s\"",
                 h->r->id, ot_signal_name(q->signal), ot_otlpr_outcome_name(o), err.msg);
    send_outcome(h, c, q->signal, q->format, o, err.msg, &req.rej);
}

static void done(ot_http_req *c, void *arg)
{
    otlpr_http *h = arg;
    hreq *q = ot_http_req_state(c);
    if (q->arena)
        ot_arena_free(q->arena);
    else if (q->buf)
        free(q->buf);
    ot_otlpr_budget_give(&h->r->budget, atomic_exchange(&q->reserved, 0));
}

/* The connection was cut while the body was under way: the bytes it held
 * count as free at once, not when the server reaps the socket (what is
 * reserved after this, done gives back). */
static void cut(ot_http_req *c, void *arg)
{
    otlpr_http *h = arg;
    hreq *q = ot_http_req_state(c);
    ot_otlpr_budget_give(&h->r->budget, atomic_exchange(&q->reserved, 0));
}

/* ---- start and stop ----------------------------------------------------------------- */

static const ot_http_stream stream = {
    .begin = begin,
    .data = append,
    .end = finish,
    .done = done,
    .cut = cut,
    .state_size = sizeof(hreq),
};

otlpr_http *ot_otlpr_http_start(otlpr *r, const otlpr_http_cfg *cfg, ot_err *err)
{
    otlpr_http *h = calloc(1, sizeof *h);
    if (!h) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    h->r = r;
    h->cfg = cfg;
    ot_http_server_opts o = {
        .log_component = "otlp",
        .threads = 2,
        .max_connections = 4096,
        .timeout_s = (unsigned)((cfg->read_timeout + 999999999) / 1000000000),
        .backlog = 1024,
        .max_body = cfg->max_request_body_size,
        .tls = &cfg->tls,
        .stream = &stream,
        .refuse = refuse,
        .auth = r->auth[OTLPR_HTTP],
        .arg = h,
    };
    if (!(h->srv = ot_http_server_start(&cfg->endpoint, &o, err))) {
        free(h);
        return NULL;
    }
    return h;
}

int ot_otlpr_http_port(const otlpr_http *h)
{
    return h ? ot_http_server_port(h->srv) : 0;
}

void ot_otlpr_http_stop(otlpr_http *h, int64_t deadline_ns)
{
    if (!h)
        return;
    ot_http_server_stop(h->srv, deadline_ns);
    free(h);
}
