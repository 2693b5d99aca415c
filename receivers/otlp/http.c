/* http.c: OTLP/HTTP on libmicrohttpd. Two epoll threads accept and serve
 * connections and call the pipeline on their own stack.
 *
 * Everything that can be judged from the headers (method, path, content
 * type and encoding, declared length, in-flight budget) is answered before
 * a byte of the body is read, and the body goes into one buffer sized by
 * Content-Length: for uncompressed protobuf that buffer lives in the arena
 * the batch will own, so the body is copied once, from the socket. */
#include <ctype.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "net/listen.h"
#include "otlp.h"

struct otlpr_http {
    otlpr *r;
    const otlpr_http_cfg *cfg;
    struct MHD_Daemon *mhd;
    int fd;
    int port;
    atomic_int active; /* requests past their headers, not yet completed */
    char *pem_key, *pem_cert, *pem_ca;
};

typedef struct hreq {
    ot_signal signal;
    otlpr_format format;
    otlpr_enc enc;
    ot_arena *arena; /* holds buf when the batch can adopt it */
    uint8_t *buf;
    size_t len, cap;
    bool growable;     /* no Content-Length: buf is malloc'd and grows */
    uint64_t reserved; /* taken from the budget for buf */
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
static const char *allowed_origin(otlpr_http *h, struct MHD_Connection *c)
{
    const ot_strlist *ao = &h->cfg->cors.allowed_origins;
    if (ao->n == 0)
        return NULL;
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (!origin || !*origin)
        return NULL;
    for (size_t i = 0; i < ao->n; i++)
        if (ao->v[i] && origin_matches(ao->v[i], origin))
            return origin;
    return NULL;
}

static enum MHD_Result send_reply(otlpr_http *h, struct MHD_Connection *c, unsigned status,
                                  const char *ctype, const void *body, size_t len,
                                  bool retry_after)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                h->cfg->cors.allowed_origins.n ? "POST, OPTIONS" : "POST");
    const char *origin = allowed_origin(h, c);
    if (origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    }
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    ot_otlpr_count_request(h->r, OTLPR_HTTP, (int)status);
    return rc;
}

/* An error answer: google.rpc.Status in the request's format, or text
 * when the format is not known (yet). */
static enum MHD_Result send_error(otlpr_http *h, struct MHD_Connection *c, unsigned status,
                                  int format, int grpc_code, const char *msg)
{
    bool retry = status == MHD_HTTP_SERVICE_UNAVAILABLE;
    if (format < 0) {
        char text[600];
        int n = snprintf(text, sizeof text, "%s\n", msg);
        return send_reply(h, c, status, "text/plain; charset=utf-8", text,
                          n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n,
                          retry);
    }
    ot_buf b = OT_BUF_INIT;
    ot_otlpr_status_body((otlpr_format)format, grpc_code, msg, retry ? 1 : 0, &b);
    enum MHD_Result rc = send_reply(h, c, status, ct_names[format], b.data, b.len, retry);
    ot_buf_free(&b);
    return rc;
}

static enum MHD_Result send_outcome(otlpr_http *h, struct MHD_Connection *c, ot_signal s,
                                    otlpr_format f, otlpr_outcome o, const char *msg)
{
    switch (o) {
    case OTLPR_OK: {
        ot_buf b = OT_BUF_INIT;
        ot_otlpr_success_body(s, f, 0, NULL, &b);
        enum MHD_Result rc = send_reply(h, c, MHD_HTTP_OK, ct_names[f], b.data, b.len, false);
        ot_buf_free(&b);
        return rc;
    }
    case OTLPR_INVALID:
    case OTLPR_PERMANENT:
        return send_error(h, c, MHD_HTTP_BAD_REQUEST, (int)f, 3, msg);
    case OTLPR_NOT_WIRED:
        return send_error(h, c, MHD_HTTP_NOT_FOUND, (int)f, 5, msg);
    case OTLPR_RETRY:
    case OTLPR_BUSY:
        return send_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, (int)f, 14, msg);
    case OTLPR_TOO_LARGE:
        return send_error(h, c, MHD_HTTP_CONTENT_TOO_LARGE, (int)f, 8, msg);
    case OTLPR_INTERNAL:
    default:
        return send_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, (int)f, 13, msg);
    }
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

static enum MHD_Result preflight(otlpr_http *h, struct MHD_Connection *c)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    const char *origin = allowed_origin(h, c);
    const char *method =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method");
    const char *req_headers =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    bool ok = origin && method && strcmp(method, "POST") == 0;
    for (const char *p = req_headers; ok && p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n && !header_allowed(h, p, n))
            ok = false;
        p += n;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    if (ok) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Access-Control-Allow-Methods", "POST");
        if (req_headers && *req_headers)
            MHD_add_response_header(resp, "Access-Control-Allow-Headers", req_headers);
        if (h->cfg->cors.max_age > 0) {
            char age[32];
            snprintf(age, sizeof age, "%lld", (long long)h->cfg->cors.max_age);
            MHD_add_response_header(resp, "Access-Control-Max-Age", age);
        }
    }
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, resp);
    MHD_destroy_response(resp);
    ot_otlpr_count_request(h->r, OTLPR_HTTP, MHD_HTTP_NO_CONTENT);
    return rc;
}

/* ---- mTLS ------------------------------------------------------------------------- */

/* Debian's libmicrohttpd does TLS with GnuTLS and only asks for a client
 * certificate; checking it takes one GnuTLS call. The library is loaded
 * already (libmicrohttpd needs it), so the call is looked up at run time
 * rather than adding a link dependency for one function. */
typedef int (*verify_peers_fn)(void *session, unsigned *status);

static bool client_cert_ok(struct MHD_Connection *c)
{
    static verify_peers_fn verify;
    if (!verify)
        verify = (verify_peers_fn)dlsym(RTLD_DEFAULT, "gnutls_certificate_verify_peers2");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!verify || !ci || !ci->tls_session)
        return false;
    unsigned status = 1;
    return verify(ci->tls_session, &status) == 0 && status == 0;
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

static enum MHD_Result first_call(otlpr_http *h, struct MHD_Connection *c, const char *url,
                                  const char *method, void **con_cls)
{
    const otlpr_http_cfg *cfg = h->cfg;
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    int format = ot_otlpr_content_type(ctype);
    if (cfg->tls.present && cfg->tls.client_ca_file && *cfg->tls.client_ca_file &&
        !client_cert_ok(c))
        return send_error(h, c, MHD_HTTP_UNAUTHORIZED, format, 16,
                          "a valid client certificate is required");
    if (strcmp(method, "OPTIONS") == 0 && cfg->cors.allowed_origins.n)
        return preflight(h, c);
    if (strcmp(method, "POST") != 0)
        return send_error(h, c, MHD_HTTP_METHOD_NOT_ALLOWED, format, 12,
                          "method not allowed; OTLP/HTTP takes POST");
    int s = path_signal(h, url);
    if (s < 0)
        return send_error(h, c, MHD_HTTP_NOT_FOUND, format, 5, "404 page not found");
    if (!h->r->next[s])
        return send_error(h, c, MHD_HTTP_NOT_FOUND, format, 12,
                          "this receiver is in no pipeline for this signal");
    if (format < 0)
        return send_error(h, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, -1, 3,
                          "unsupported Content-Type; use application/x-protobuf or "
                          "application/json");
    int enc = ot_otlpr_encoding(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                            "Content-Encoding"));
    if (enc < 0)
        return send_error(h, c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, format, 3,
                          "unsupported Content-Encoding; use gzip, deflate, zstd or none");

    uint64_t max = cfg->max_request_body_size;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
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
        return send_error(h, c, MHD_HTTP_CONTENT_TOO_LARGE, format, 8, msg);
    }
    if (len > h->r->budget.max)
        return send_error(h, c, MHD_HTTP_CONTENT_TOO_LARGE, format, 8,
                          "body exceeds max_inflight_bytes; it could never be accepted");
    if (!ot_otlpr_budget_take(&h->r->budget, len))
        return send_error(h, c, MHD_HTTP_SERVICE_UNAVAILABLE, format, 14,
                          "too many request bytes in flight; retry later");

    hreq *q = calloc(1, sizeof *q);
    if (!q) {
        ot_otlpr_budget_give(&h->r->budget, len);
        return send_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, format, 13, "out of memory");
    }
    q->signal = (ot_signal)s;
    q->format = (otlpr_format)format;
    q->enc = (otlpr_enc)enc;
    q->reserved = len;
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
    if (!q->growable && !q->buf) {
        ot_arena_free(q->arena);
        free(q);
        ot_otlpr_budget_give(&h->r->budget, len);
        return send_error(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR, format, 13, "out of memory");
    }
    atomic_fetch_add(&h->active, 1);
    *con_cls = q;
    return MHD_YES;
}

static enum MHD_Result append(otlpr_http *h, hreq *q, const char *data, size_t n)
{
    uint64_t max = h->cfg->max_request_body_size;
    if (q->too_large || q->busy) {
        /* Drain so the error can be answered; a client that keeps going
         * far past the limit is cut off instead. */
        q->discarded += n;
        return q->discarded > 4 * max ? MHD_NO : MHD_YES;
    }
    if (q->len + n > q->cap) {
        if (!q->growable || q->len + n > max) {
            q->too_large = true;
            q->discarded = n;
            return MHD_YES;
        }
        size_t ncap = q->cap ? q->cap * 2 : 65536;
        if (ncap < q->len + n)
            ncap = q->len + n;
        if (ncap > max)
            ncap = max;
        if (!ot_otlpr_budget_take(&h->r->budget, ncap - q->cap)) {
            q->busy = true;
            return MHD_YES;
        }
        uint8_t *nb = realloc(q->buf, ncap);
        if (!nb) {
            ot_otlpr_budget_give(&h->r->budget, ncap - q->cap);
            q->busy = true;
            return MHD_YES;
        }
        q->reserved += ncap - q->cap;
        q->buf = nb;
        q->cap = ncap;
    }
    memcpy(q->buf + q->len, data, n);
    q->len += n;
    return MHD_YES;
}

typedef struct meta_acc {
    ot_arena *a;
    ot_meta_kv *v;
    size_t n, cap;
} meta_acc;

static enum MHD_Result add_meta(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    meta_acc *m = cls;
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        ot_meta_kv *nv = ot_arena_alloc(m->a, ncap * sizeof *nv);
        if (!nv)
            return MHD_NO;
        if (m->n)
            memcpy(nv, m->v, m->n * sizeof *nv);
        m->v = nv;
        m->cap = ncap;
    }
    char *k = ot_arena_strdup(m->a, key);
    if (!k)
        return MHD_NO;
    for (char *p = k; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    m->v[m->n].key = k;
    m->v[m->n].value = value ? value : "";
    m->n++;
    return MHD_YES;
}

static enum MHD_Result finish(otlpr_http *h, struct MHD_Connection *c, hreq *q)
{
    if (q->too_large) {
        char msg[160];
        snprintf(msg, sizeof msg, "body exceeds max_request_body_size (%llu)",
                 (unsigned long long)h->cfg->max_request_body_size);
        return send_outcome(h, c, q->signal, q->format, OTLPR_TOO_LARGE, msg);
    }
    if (q->busy)
        return send_outcome(h, c, q->signal, q->format, OTLPR_BUSY,
                            "too many request bytes in flight; retry later");

    meta_acc meta = {0};
    if (h->cfg->include_metadata) {
        meta.a = ot_arena_new(4096);
        if (meta.a)
            MHD_get_connection_values(c, MHD_HEADER_KIND, add_meta, &meta);
    }
    ot_err err = {{0}};
    otlpr_outcome o;
    ot_batch *b;
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
            b = ot_otlpr_batch(q->signal, q->format, NULL, plain, plain_len, meta.v, meta.n, &o,
                               &err);
        free(plain);
        ot_otlpr_budget_give(&h->r->budget, taken);
    } else {
        ot_arena *a = q->arena;
        q->arena = NULL; /* the batch (or the failure path) owns it now */
        b = ot_otlpr_batch(q->signal, q->format, a, q->buf, q->len, meta.v, meta.n, &o, &err);
        if (a)
            q->buf = NULL;
    }
    ot_arena_free(meta.a);
    if (b)
        o = ot_otlpr_consume(h->r, OTLPR_HTTP, b, &err);
    if (o != OTLPR_OK)
        ot_debug("otlp", "request refused", "receiver=%s transport=http signal=%s outcome=%s err=\"%s\"",
                 h->r->id, ot_signal_name(q->signal), ot_otlpr_outcome_name(o), err.msg);
    return send_outcome(h, c, q->signal, q->format, o, err.msg);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    otlpr_http *h = cls;
    hreq *q = *con_cls;
    if (!q)
        return first_call(h, c, url, method, con_cls);
    if (*upload_data_size) {
        if (ot_now_ns() > q->deadline) {
            /* Closing the connection gives its reservation back (completed). */
            ot_debug("otlp", "request body too slow; connection closed",
                     "receiver=%s transport=http", h->r->id);
            return MHD_NO;
        }
        enum MHD_Result rc = append(h, q, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return rc;
    }
    return finish(h, c, q);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    otlpr_http *h = cls;
    hreq *q = *con_cls;
    if (!q)
        return;
    *con_cls = NULL;
    if (q->arena)
        ot_arena_free(q->arena);
    else if (q->buf)
        free(q->buf);
    ot_otlpr_budget_give(&h->r->budget, q->reserved);
    free(q);
    atomic_fetch_sub(&h->active, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    for (char *p = line; *p; p++)
        if (*p == '"')
            *p = '\'';
    ot_debug("otlp", "http server", "detail=\"%s\"", line);
}

/* ---- start and stop ----------------------------------------------------------------- */

static void free_http(otlpr_http *h)
{
    free(h->pem_key);
    free(h->pem_cert);
    free(h->pem_ca);
    free(h);
}

otlpr_http *ot_otlpr_http_start(otlpr *r, const otlpr_http_cfg *cfg, ot_err *err)
{
    otlpr_http *h = calloc(1, sizeof *h);
    if (!h) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    h->r = r;
    h->cfg = cfg;
    h->fd = -1;
    atomic_init(&h->active, 0);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    if (cfg->tls.present) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            ot_err_set(err, "this libmicrohttpd has no TLS support");
            free_http(h);
            return NULL;
        }
        h->pem_cert = ot_otlpr_read_file(cfg->tls.cert_file, NULL, err);
        h->pem_key = h->pem_cert ? ot_otlpr_read_file(cfg->tls.key_file, NULL, err) : NULL;
        if (h->pem_key && cfg->tls.client_ca_file && *cfg->tls.client_ca_file)
            h->pem_ca = ot_otlpr_read_file(cfg->tls.client_ca_file, NULL, err);
        if (!h->pem_key || (cfg->tls.client_ca_file && *cfg->tls.client_ca_file && !h->pem_ca)) {
            free_http(h);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    if ((h->fd = ot_net_listen(&cfg->endpoint, 1024, err)) < 0) {
        free_http(h);
        return NULL;
    }
    h->port = ot_net_bound_port(h->fd);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    if (getsockname(h->fd, (struct sockaddr *)&sa, &sl) == 0 && sa.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;

    const char *prio = cfg->tls.min_version == 1 ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
                                                 : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
    struct MHD_OptionItem opts[12];
    int n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, h->fd, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, 2, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                        (intptr_t)((cfg->read_timeout + 999999999) / 1000000000),
                                        NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, 4096, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, h};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, h};
    if (cfg->tls.present) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->pem_cert};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->pem_key};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)prio};
        if (h->pem_ca)
            opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, h->pem_ca};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    h->mhd = MHD_start_daemon(flags | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, h,
                              MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!h->mhd) {
        ot_err_set(err, "listen %s: cannot start the HTTP server%s",
                   cfg->endpoint.text ? cfg->endpoint.text : "",
                   cfg->tls.present ? " (check the certificate and key)" : "");
        close(h->fd);
        free_http(h);
        return NULL;
    }
    return h;
}

int ot_otlpr_http_port(const otlpr_http *h)
{
    return h ? h->port : 0;
}

void ot_otlpr_http_stop(otlpr_http *h, int64_t deadline_ns)
{
    if (!h)
        return;
    /* No new connections; requests already reading their body finish
     * until the deadline, then everything closes. */
    int lfd = MHD_quiesce_daemon(h->mhd);
    if (lfd >= 0)
        close(lfd);
    struct timespec ts = {0, 2 * 1000 * 1000};
    while (atomic_load(&h->active) > 0 && ot_now_ns() < deadline_ns)
        nanosleep(&ts, NULL);
    MHD_stop_daemon(h->mhd);
    free_http(h);
}
