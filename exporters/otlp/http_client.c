/* http_client.c: the sender of the `otlphttp` exporter. One POST per batch
 * with libcurl, which brings keep-alive, HTTP/2 over TLS (ALPN), proxies
 * and the TLS options. Each concurrent sender borrows one context from a
 * small pool: a curl easy handle (its connection cache is what keeps the
 * connection alive between batches) plus the gzip state and buffers that
 * are reused from batch to batch, so the steady state allocates nothing.
 *
 * The body is the batch's protobuf bytes as they are, or its OTLP JSON;
 * gzip writes one output buffer. libcurl sends from our buffer without
 * copying it (CURLOPT_POSTFIELDS). The answer is read as the OTLP/HTTP
 * specification says (see ot_otlpexp_http_outcome). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "pipeline/factory.h"
#include "base/log.h"
#include "model/otlp_json.h"
#include "otlpexp.h"

#include "base/version.h"

#define RESP_KEEP (64u << 10) /* of a response body: enough for any Status */

typedef struct hctx {
    struct hctx *next;
    CURL *easy;
    ot_gzip gz;
    ot_buf json;
    ot_buf resp;
    char errbuf[CURL_ERROR_SIZE];
} hctx;

struct ot_otlpexp_http {
    const ot_otlpexp_http_cfg *cfg;
    struct curl_slist *hdrs;
    pthread_mutex_t mu;
    hctx *free; /* under mu */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    ot_buf *b = ud;
    size_t len = sz * n;
    if (b->len < RESP_KEEP)
        ot_buf_append(b, p, len < RESP_KEEP - b->len ? len : RESP_KEEP - b->len);
    return len;
}

static int tls_version(int idx)
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

static hctx *ctx_new(ot_otlpexp_http *h)
{
    hctx *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->easy = curl_easy_init();
    if (!x->easy) {
        free(x);
        return NULL;
    }
    CURL *e = x->easy;
    const ot_otlpexp_http_cfg *cfg = h->cfg;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "otelite/" OT_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x->resp);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    /* Redirects of a POST are not part of OTLP/HTTP; a 3xx is an answer. */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (set(cfg->proxy_url))
        curl_easy_setopt(e, CURLOPT_PROXY, cfg->proxy_url);
    const ot_tls_client *t = cfg->tls;
    if (t) {
        if (t->insecure_skip_verify) {
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        if (set(t->ca_file))
            curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
        else if (set(t->ca_pem))
            blob_opt(e, CURLOPT_CAINFO_BLOB, t->ca_pem);
        if (set(t->cert_file))
            curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
        else if (set(t->cert_pem))
            blob_opt(e, CURLOPT_SSLCERT_BLOB, t->cert_pem);
        if (set(t->key_file))
            curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
        else if (set(t->key_pem))
            blob_opt(e, CURLOPT_SSLKEY_BLOB, t->key_pem);
        curl_easy_setopt(e, CURLOPT_SSLVERSION,
                         (long)tls_version(ot_tls_version(t->min_version)) |
                             tls_max_version(ot_tls_version(t->max_version)));
    }
    return x;
}

static void ctx_free(hctx *x)
{
    if (!x)
        return;
    curl_easy_cleanup(x->easy);
    ot_gzip_free(&x->gz);
    ot_buf_free(&x->json);
    ot_buf_free(&x->resp);
    free(x);
}

ot_otlpexp_http *ot_otlpexp_http_new(const ot_otlpexp_http_cfg *cfg, ot_err *err)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        ot_err_set(err, "libcurl: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    ot_otlpexp_http *h = calloc(1, sizeof *h);
    if (!h) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    h->cfg = cfg;
    pthread_mutex_init(&h->mu, NULL);
    struct curl_slist *l = NULL, *n;
#define ADD(s)                                                                                    \
    do {                                                                                          \
        if (!(n = curl_slist_append(l, (s))))                                                     \
            goto oom;                                                                             \
        l = n;                                                                                    \
    } while (0)
    ADD(cfg->json ? "Content-Type: application/json" : "Content-Type: application/x-protobuf");
    if (cfg->gzip)
        ADD("Content-Encoding: gzip");
    ADD("Expect:"); /* no 100-continue round trip before large bodies */
    if (cfg->headers) {
        for (size_t i = 0; i < cfg->headers->n; i++) {
            const char *k = cfg->headers->keys[i], *v = cfg->headers->vals[i] ? cfg->headers->vals[i] : "";
            char *line = malloc(strlen(k) + strlen(v) + 3);
            if (!line)
                goto oom;
            /* "Name;" is how libcurl sends a header with an empty value. */
            if (*v)
                sprintf(line, "%s: %s", k, v);
            else
                sprintf(line, "%s;", k);
            n = curl_slist_append(l, line);
            free(line);
            if (!n)
                goto oom;
            l = n;
        }
    }
#undef ADD
    h->hdrs = l;
    /* One context up front: a bad TLS file or option shows at start, and
     * the first batch does not pay for the setup. */
    h->free = ctx_new(h);
    if (!h->free)
        goto oom;
    return h;
oom:
    curl_slist_free_all(l);
    ot_otlpexp_http_free(h);
    ot_err_set(err, "out of memory");
    return NULL;
}

static hctx *borrow(ot_otlpexp_http *h)
{
    pthread_mutex_lock(&h->mu);
    hctx *x = h->free;
    if (x)
        h->free = x->next;
    pthread_mutex_unlock(&h->mu);
    return x ? x : ctx_new(h);
}

static void give_back(ot_otlpexp_http *h, hctx *x)
{
    /* One huge batch should not pin its buffers for the exporter's life. */
    if (x->json.cap > (16u << 20))
        ot_buf_free(&x->json);
    if (x->gz.out.cap > (16u << 20))
        ot_buf_free(&x->gz.out);
    pthread_mutex_lock(&h->mu);
    x->next = h->free;
    h->free = x;
    pthread_mutex_unlock(&h->mu);
}

static bool is_json(const char *ct)
{
    return ct && strstr(ct, "json");
}

static bool is_proto(const char *ct)
{
    return ct && (strstr(ct, "protobuf") != NULL);
}

/* Printable start of a body that is neither proto nor JSON (an HTML error
 * page from a proxy, say). */
static void text_excerpt(const ot_buf *b, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < b->len && o + 1 < cap && o < 160; i++) {
        unsigned char c = (unsigned char)b->data[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
    }
    out[o] = '\0';
}

static void read_answer(ot_otlpexp_http *h, hctx *x, ot_signal s, const char *url,
                        ot_otlpexp_result *out)
{
    long code = 0;
    char *ct = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    bool json = ct ? is_json(ct) : h->cfg->json;
    bool proto = ct ? is_proto(ct) : !h->cfg->json;
    out->status = ot_otlpexp_http_outcome(code);
    if (out->status == OT_OK) {
        int rc = 0;
        if (json)
            rc = ot_otlpexp_partial_from_json(s, x->resp.data, x->resp.len, &out->rejected,
                                              out->partial_msg, sizeof out->partial_msg);
        else if (proto)
            rc = ot_otlpexp_partial_from_pb(s, x->resp.data, x->resp.len, &out->rejected,
                                            out->partial_msg, sizeof out->partial_msg);
        if (rc < 0)
            ot_debug("otlphttp", "response body does not decode", "exporter=%s url=%s",
                     h->cfg->id, url);
        return;
    }
    char detail[200] = "";
    ot_grpc_status st;
    if (x->resp.len) {
        if (json && ot_otlpexp_status_from_json(x->resp.data, x->resp.len, &st) == 0)
            snprintf(detail, sizeof detail, "%s", st.msg);
        else if (proto && ot_grpc_status_from_pb(x->resp.data, x->resp.len, &st) == 0)
            snprintf(detail, sizeof detail, "%s", st.msg);
        else if (!json && !proto)
            text_excerpt(&x->resp, detail, sizeof detail);
    }
    snprintf(out->msg, sizeof out->msg, "HTTP %ld from %s%s%s", code, url, detail[0] ? ": " : "",
             detail);
    if (out->status == OT_RETRYABLE) {
        struct curl_header *hd = NULL;
        if (curl_easy_header(x->easy, "Retry-After", 0, CURLH_HEADER, -1, &hd) == CURLHE_OK && hd &&
            hd->value) {
            int64_t ns = 0;
            if (ot_otlpexp_parse_retry_after(hd->value, time(NULL), &ns) == 0)
                out->retry_after_ns = ns;
        }
    }
}

void ot_otlpexp_http_send(ot_otlpexp_http *h, ot_batch *b, int64_t deadline_ns,
                          ot_otlpexp_result *out)
{
    memset(out, 0, sizeof *out);
    ot_signal s = b->signal;
    const char *url = h->cfg->url[s];
    if (!url) {
        out->status = OT_PERMANENT;
        snprintf(out->msg, sizeof out->msg, "no URL for %s: set endpoint or %s_endpoint",
                 ot_signal_name(s), ot_signal_name(s));
        return;
    }
    hctx *x = borrow(h);
    if (!x) {
        out->status = OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "out of memory");
        return;
    }
    ot_err err = {{0}};
    const uint8_t *body = NULL;
    size_t len = 0;
    if (h->cfg->json) {
        const ProtobufCMessage *m = ot_batch_msg(b, &err);
        ot_buf_reset(&x->json);
        if (!m || ot_json_encode(m, &x->json, &err) < 0) {
            out->status = OT_PERMANENT;
            snprintf(out->msg, sizeof out->msg, "cannot encode as JSON: %s", err.msg);
            goto done;
        }
        body = (const uint8_t *)x->json.data;
        len = x->json.len;
    } else if (ot_batch_wire(b, &body, &len, &err) < 0) {
        out->status = OT_PERMANENT;
        snprintf(out->msg, sizeof out->msg, "cannot encode as protobuf: %s", err.msg);
        goto done;
    }
    if (h->cfg->gzip) {
        if (ot_gzip_run(&x->gz, body ? body : (const uint8_t *)"", len, &err) < 0) {
            out->status = OT_RETRYABLE;
            snprintf(out->msg, sizeof out->msg, "%s", err.msg);
            goto done;
        }
        body = (const uint8_t *)x->gz.out.data;
        len = x->gz.out.len;
    }
    int64_t left = deadline_ns - ot_now_ns();
    if (left <= 0) {
        out->status = OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "deadline passed before sending");
        goto done;
    }
    long ms = (long)((left + 999999) / 1000000);
    CURL *e = x->easy;
    ot_buf_reset(&x->resp);
    x->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms);
    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK) {
        /* Refused, reset, timed out, TLS trouble: the server may be back
         * later; a malformed URL or unsupported scheme never will be. */
        out->status = (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
                          ? OT_PERMANENT
                          : OT_RETRYABLE;
        snprintf(out->msg, sizeof out->msg, "POST %s: %s", url,
                 x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        goto done;
    }
    read_answer(h, x, s, url, out);
done:
    give_back(h, x);
}

void ot_otlpexp_http_free(ot_otlpexp_http *h)
{
    if (!h)
        return;
    hctx *x = h->free;
    while (x) {
        hctx *n = x->next;
        ctx_free(x);
        x = n;
    }
    curl_slist_free_all(h->hdrs);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
