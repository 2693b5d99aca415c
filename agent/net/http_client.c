/* http_client.c: the libcurl client of http_client.h. A handle is a curl
 * easy handle (its connection cache is what keeps the connection alive
 * between requests) plus what is reused from request to request: the
 * compressor and its output buffer, and the nodes of the header list, which
 * point at strings the client or the caller already holds, so a request
 * builds its list without allocating. libcurl sends the body from the
 * caller's buffer (CURLOPT_POSTFIELDS), so nothing is copied either. */
#include "net/http_client.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/x509.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/version.h"

#define KEEP_AFTER_USE (16u << 20) /* a buffer above this is freed on return */

typedef struct handle {
    struct handle *next;
    CURL *easy;
    ot_compressor comp;
    struct curl_slist *nodes;
    size_t nodes_cap;
    ot_buf *body; /* the current request's */
    size_t max_body;
    bool truncated;
    const ot_http_request *req; /* the current one, for its stream callbacks */
    char errbuf[CURL_ERROR_SIZE];
} handle;

struct ot_http_client {
    ot_http_client_cfg cfg;
    char **lines; /* default headers, "Name: value" */
    size_t n_lines;
    pthread_mutex_t mu;
    handle *free; /* under mu */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    handle *h = ud;
    size_t len = sz * n;
    if (h->req && h->req->on_data)
        return h->req->on_data(h->req->stream_ctx, p, len) ? 0 : len;
    if (!h->body)
        return len;
    size_t room = h->body->len < h->max_body ? h->max_body - h->body->len : 0;
    if (len > room)
        h->truncated = true;
    if (room)
        ot_buf_append(h->body, p, len < room ? len : room);
    return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    handle *h = ud;
    return h->req && h->req->cancel && h->req->cancel(h->req->stream_ctx);
}

static long tls_version(int idx)
{
    switch (idx) {
    case 1:
        return CURL_SSLVERSION_TLSv1_0;
    case 2:
        return CURL_SSLVERSION_TLSv1_1;
    case 3:
        return CURL_SSLVERSION_TLSv1_2;
    case 4:
        return CURL_SSLVERSION_TLSv1_3;
    default:
        return CURL_SSLVERSION_DEFAULT;
    }
}

static long tls_max_version(int idx)
{
    switch (idx) {
    case 1:
        return CURL_SSLVERSION_MAX_TLSv1_0;
    case 2:
        return CURL_SSLVERSION_MAX_TLSv1_1;
    case 3:
        return CURL_SSLVERSION_MAX_TLSv1_2;
    case 4:
        return CURL_SSLVERSION_MAX_TLSv1_3;
    default:
        return CURL_SSLVERSION_MAX_DEFAULT;
    }
}

static bool set(const char *s)
{
    return s && *s;
}

static void blob_opt(CURL *e, CURLoption o, const char *pem)
{
    struct curl_blob blob = {(void *)(uintptr_t)pem, strlen(pem), CURL_BLOB_COPY};
    curl_easy_setopt(e, o, &blob);
}

static void tls_opts(CURL *e, const ot_tls_client *t)
{
    if (t->insecure_skip_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (set(t->ca_file))
        curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    else if (set(t->ca_pem))
        blob_opt(e, CURLOPT_CAINFO_BLOB, t->ca_pem);
    if ((set(t->ca_file) || set(t->ca_pem)) && t->include_system_ca_certs_pool) {
        /* Once CAINFO is set libcurl trusts it alone. The system's CAs
         * come back through OpenSSL's hashed certificate directory (the
         * one SSL_CERT_DIR names, as for the gRPC client's OpenSSL
         * context), which is read one issuer at a time, not loaded whole. */
        const char *dir = getenv(X509_get_default_cert_dir_env());
        curl_easy_setopt(e, CURLOPT_CAPATH, dir && *dir ? dir : X509_get_default_cert_dir());
    }
    if (set(t->cert_file))
        curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
    else if (set(t->cert_pem))
        blob_opt(e, CURLOPT_SSLCERT_BLOB, t->cert_pem);
    if (set(t->key_file))
        curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
    else if (set(t->key_pem))
        blob_opt(e, CURLOPT_SSLKEY_BLOB, t->key_pem);
    curl_easy_setopt(e, CURLOPT_SSLVERSION,
                     tls_version(ot_tls_version(t->min_version)) |
                         tls_max_version(ot_tls_version(t->max_version)));
    if (t->reload_interval > 0) {
        /* libcurl reads certificate and key files for each new connection
         * but caches the CA store and keeps connections alive: bound both
         * by reload_interval so a replaced file is in use that soon. */
        long secs = (long)(t->reload_interval / 1000000000);
        if (secs < 1)
            secs = 1;
        curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, secs);
        curl_easy_setopt(e, CURLOPT_MAXLIFETIME_CONN, secs);
    }
}

static handle *handle_new(ot_http_client *c)
{
    handle *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->easy = curl_easy_init();
    if (!h->easy) {
        free(h);
        return NULL;
    }
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "otelite/" OT_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* An exporter's write is not to be replayed elsewhere; a 3xx is an
     * answer for the caller. */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (set(c->cfg.proxy_url))
        curl_easy_setopt(e, CURLOPT_PROXY, c->cfg.proxy_url);
    if (c->cfg.tls)
        tls_opts(e, c->cfg.tls);
    return h;
}

static void handle_free(handle *h)
{
    if (!h)
        return;
    curl_easy_cleanup(h->easy);
    ot_compressor_free(&h->comp);
    free(h->nodes);
    free(h);
}

ot_http_client *ot_http_client_new(const ot_http_client_cfg *cfg, ot_err *err)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        ot_err_set(err, "libcurl: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    ot_http_client *c = calloc(1, sizeof *c);
    if (!c) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->cfg.headers = NULL;
    pthread_mutex_init(&c->mu, NULL);
    size_t n = cfg->headers ? cfg->headers->n : 0;
    if (n && !(c->lines = calloc(n, sizeof *c->lines)))
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *k = cfg->headers->keys[i];
        const char *v = cfg->headers->vals[i] ? cfg->headers->vals[i] : "";
        size_t sz = strlen(k) + strlen(v) + 3;
        if (!(c->lines[i] = malloc(sz)))
            goto oom;
        c->n_lines = i + 1;
        /* "Name;" is how libcurl sends a header with an empty value. */
        if (*v)
            snprintf(c->lines[i], sz, "%s: %s", k, v);
        else
            snprintf(c->lines[i], sz, "%s;", k);
    }
    c->free = handle_new(c);
    if (!c->free)
        goto oom;
    return c;
oom:
    ot_http_client_free(c);
    ot_err_set(err, "out of memory");
    return NULL;
}

void ot_http_client_free(ot_http_client *c)
{
    if (!c)
        return;
    while (c->free) {
        handle *h = c->free;
        c->free = h->next;
        handle_free(h);
    }
    for (size_t i = 0; i < c->n_lines; i++)
        free(c->lines[i]);
    free(c->lines);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static handle *borrow(ot_http_client *c)
{
    pthread_mutex_lock(&c->mu);
    handle *h = c->free;
    if (h)
        c->free = h->next;
    pthread_mutex_unlock(&c->mu);
    return h ? h : handle_new(c);
}

static void give_back(ot_http_client *c, handle *h)
{
    /* One huge body should not pin its buffer for the client's life. */
    if (h->comp.out.cap > KEEP_AFTER_USE)
        ot_buf_free(&h->comp.out);
    h->body = NULL;
    pthread_mutex_lock(&c->mu);
    h->next = c->free;
    c->free = h;
    pthread_mutex_unlock(&c->mu);
}

/* The request's lines, Content-Encoding, "Expect:" (no 100-continue round
 * trip before a large body), then the defaults: a list of nodes the handle
 * keeps, pointing at strings that outlive the transfer. */
static struct curl_slist *header_list(ot_http_client *c, handle *h, const ot_http_request *req,
                                      const char *encoding)
{
    size_t n = req->n_headers + c->n_lines + 2;
    if (n > h->nodes_cap) {
        struct curl_slist *p = realloc(h->nodes, n * sizeof *p);
        if (!p)
            return NULL;
        h->nodes = p;
        h->nodes_cap = n;
    }
    size_t k = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        h->nodes[k++].data = (char *)(uintptr_t)req->headers[i];
    if (encoding)
        h->nodes[k++].data = (char *)(uintptr_t)encoding;
    h->nodes[k++].data = (char *)"Expect:";
    for (size_t i = 0; i < c->n_lines; i++)
        h->nodes[k++].data = c->lines[i];
    for (size_t i = 0; i < k; i++)
        h->nodes[i].next = i + 1 < k ? &h->nodes[i + 1] : NULL;
    return h->nodes;
}

static const char *method_name(ot_http_method m)
{
    return m == OT_HTTP_PUT ? "PUT" : m == OT_HTTP_GET ? "GET" : "POST";
}

static const char *encoding_header(ot_compression how)
{
    switch (how) {
    case OT_COMPRESS_GZIP:
        return "Content-Encoding: gzip";
    case OT_COMPRESS_DEFLATE:
        return "Content-Encoding: deflate";
    case OT_COMPRESS_ZSTD:
        return "Content-Encoding: zstd";
    default:
        return NULL;
    }
}

static void read_answer(handle *h, ot_http_response *resp)
{
    long code = 0;
    char *ct = NULL;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(h->easy, CURLINFO_CONTENT_TYPE, &ct);
    resp->status = (int)code;
    resp->truncated = h->truncated;
    if (ct)
        snprintf(resp->content_type, sizeof resp->content_type, "%s", ct);
    struct curl_header *hd = NULL;
    if (curl_easy_header(h->easy, "Retry-After", 0, CURLH_HEADER, -1, &hd) == CURLHE_OK && hd &&
        hd->value && ot_http_parse_retry_after(hd->value, time(NULL), &resp->retry_after_ns) == 0)
        resp->has_retry_after = true;
}

int ot_http_client_do(ot_http_client *c, const ot_http_request *req, ot_http_response *resp)
{
    ot_buf *body_out = resp->body;
    memset(resp, 0, sizeof *resp);
    resp->body = body_out;
    if (body_out)
        ot_buf_reset(body_out);
    const char *mname = method_name(req->method);
    handle *h = borrow(c);
    if (!h) {
        snprintf(resp->error, sizeof resp->error, "%s %s: out of memory", mname, req->url);
        return -1;
    }
    int rc = -1;
    const char *body = req->body ? req->body : "";
    size_t len = req->body_len;
    bool has_body = req->method != OT_HTTP_GET;
    const char *encoding = has_body ? encoding_header(req->compression) : NULL;
    if (encoding) {
        ot_err err = {{0}};
        if (ot_compress(&h->comp, req->compression, body, len, &err) < 0) {
            snprintf(resp->error, sizeof resp->error, "%s %s: %s", mname, req->url, err.msg);
            goto done;
        }
        body = h->comp.out.data;
        len = h->comp.out.len;
    }
    int64_t left = req->deadline_ns - ot_now_ns();
    if (left <= 0) {
        snprintf(resp->error, sizeof resp->error, "%s %s: deadline passed before sending", mname,
                 req->url);
        goto done;
    }
    struct curl_slist *hdrs = header_list(c, h, req, encoding);
    if (!hdrs) {
        snprintf(resp->error, sizeof resp->error, "%s %s: out of memory", mname, req->url);
        goto done;
    }
    long ms = (long)((left + 999999) / 1000000);
    CURL *e = h->easy;
    h->body = body_out;
    h->max_body = req->max_body;
    h->truncated = false;
    h->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    if (has_body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method == OT_HTTP_PUT ? "PUT" : NULL);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms);
    h->req = req;
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, req->cancel ? 0L : 1L);
    if (req->cancel) {
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, h);
    }
    CURLcode cc = curl_easy_perform(e);
    h->req = NULL;
    if (cc != CURLE_OK) {
        /* Refused, reset, timed out, TLS trouble: the server may be back
         * later; a malformed URL or unsupported scheme never will be. */
        const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
        resp->permanent = cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL;
        snprintf(resp->error, sizeof resp->error, "%s %s: %s", mname, req->url, why);
        ot_debug("http", "no response", "client=%s method=%s url=%s error=\"%s\"",
                 c->cfg.id ? c->cfg.id : "-", mname, req->url, why);
        goto done;
    }
    read_answer(h, resp);
    rc = 0;
done:
    give_back(c, h);
    return rc;
}

/* ---- the shared rules ------------------------------------------------------- */

ot_status ot_http_status_outcome(int st)
{
    if (st >= 200 && st < 300)
        return OT_OK;
    if (st == 429 || st == 502 || st == 503 || st == 504)
        return OT_RETRYABLE;
    return OT_PERMANENT;
}

int ot_http_parse_retry_after(const char *v, time_t now, int64_t *ns)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
        n--;
    if (!n)
        return -1;
    size_t digits = 0;
    while (digits < n && isdigit((unsigned char)v[digits]))
        digits++;
    if (digits == n) {
        int64_t s = 0;
        for (size_t i = 0; i < n; i++) {
            s = s * 10 + (v[i] - '0');
            if (s > 100LL * 365 * 86400) {
                s = 100LL * 365 * 86400;
                break;
            }
        }
        *ns = s * 1000000000LL;
        return 0;
    }
    char tmp[64];
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    /* The three date forms HTTP/1.1 says a recipient must accept. */
    static const char *const forms[] = {
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(tmp, forms[i], &tm);
        if (!end || *end)
            continue;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
            continue;
        *ns = t > now ? (int64_t)(t - now) * 1000000000LL : 0;
        return 0;
    }
    return -1;
}
