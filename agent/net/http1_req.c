/* http1_req.c: a request of the HTTP server (net/http_server.h) between
 * its head and its answer: what handlers ask of it, the refusals every
 * server makes the same way (client certificate, basic auth, an
 * authenticator, 404, 405 with Allow, 413), routing, and a route's body.
 * The connection (http_server.c) feeds it; it never touches a socket. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/auth.h"
#include "net/http1_int.h"

/* ---- responses -------------------------------------------------------------- */

int ot_http_send(ot_http_req *q, unsigned status, ot_http_resp *r)
{
    if (q->replied) {
        ot_h1_resp_free(r);
        return -1;
    }
    q->replied = true;
    if (!r) {
        q->cut_off = true;
        return -1;
    }
    return ot_h1_conn_queue(q->c, status, r, q->extra_name, q->extra_value);
}

int ot_http_reply(ot_http_req *q, unsigned status, const char *ctype, const void *body,
                  size_t len)
{
    ot_http_resp *r = ot_http_resp_copy(body, len);
    if (r && ctype)
        ot_http_resp_header(r, "Content-Type", ctype);
    return ot_http_send(q, status, r);
}

bool ot_http_replied(const ot_http_req *q)
{
    return q->replied;
}

/* ---- the request ---------------------------------------------------------------- */

const char *ot_http_method(const ot_http_req *q)
{
    return q->h.method;
}

const char *ot_http_path(const ot_http_req *q)
{
    return q->h.path;
}

const char *ot_http_header(const ot_http_req *q, const char *name)
{
    return ot_h1_header(&q->h, name);
}

const char *ot_http_query(const ot_http_req *q, const char *name)
{
    /* decoded into a thread's scratch: the head stays as it came */
    static _Thread_local char out[1024];
    size_t nn = strlen(name);
    for (const char *p = q->h.query; p && *p;) {
        const char *e = strchr(p, '&');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        size_t kn = eq ? (size_t)(eq - p) : n;
        char key[256];
        if (kn < sizeof key) {
            memcpy(key, p, kn);
            key[kn] = '\0';
            if (ot_h1_unescape(key, true) && strlen(key) == nn && memcmp(key, name, nn) == 0) {
                size_t vn = eq ? n - kn - 1 : 0;
                if (!eq || vn >= sizeof out)
                    return NULL;
                memcpy(out, eq + 1, vn);
                out[vn] = '\0';
                return ot_h1_unescape(out, true) ? out : NULL;
            }
        }
        p = e ? e + 1 : NULL;
    }
    return NULL;
}

void ot_http_each_header(const ot_http_req *q,
                         bool (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    for (unsigned i = 0; i < q->h.n; i++)
        if (!fn(ctx, q->h.h[i].name, q->h.h[i].value))
            return;
}

const struct sockaddr *ot_http_peer(const ot_http_req *q)
{
    return ot_h1_conn_peer(q->c);
}

const uint8_t *ot_http_body(const ot_http_req *q, size_t *len)
{
    *len = q->len;
    return q->len ? q->body : NULL;
}

void *ot_http_req_state(ot_http_req *q)
{
    return q->state;
}

/* ---- what every server refuses the same way ---------------------------------- */

void ot_h1_refuse(ot_http_req *q, unsigned status, const char *msg, const char *hname,
                  const char *hvalue)
{
    ot_http_server *s = q->s;
    q->extra_name = hname;
    q->extra_value = hvalue;
    if (s->o.refuse) {
        s->o.refuse(q, status, msg, s->o.arg);
        if (q->replied)
            return;
    }
    char text[256];
    int n = snprintf(text, sizeof text, "%s\n", msg);
    ot_http_reply(q, status, "text/plain; charset=utf-8", text,
                  n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n);
}

void ot_h1_sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned len = 32;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
        memset(out, 0, 32);
}

/* Both sides are hashed, so the compare runs over 32 bytes whatever was
 * sent and its time says nothing about the password. */
static bool basic_auth_ok(ot_http_req *q)
{
    uint8_t plain[768];
    long m = ot_auth_basic_decode(ot_http_header(q, "Authorization"), plain, sizeof plain);
    if (m < 0)
        return false;
    unsigned char got[32];
    ot_h1_sha256(plain, (size_t)m, got);
    OPENSSL_cleanse(plain, sizeof plain);
    return CRYPTO_memcmp(got, q->s->auth_digest, sizeof got) == 0;
}

static const char *header_of(void *ctx, const char *name)
{
    return ot_http_header(ctx, name);
}

static bool method_is(const char *route, const char *method)
{
    return strcmp(route, method) == 0 || (strcmp(route, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* The route for the request, or a refusal already sent. */
static const ot_http_route *route_of(ot_http_req *q)
{
    ot_http_server *s = q->s;
    char allow[128] = "";
    size_t an = 0;
    bool path_known = false;
    for (size_t i = 0; i < s->o.n_routes; i++) {
        const ot_http_route *r = &s->o.routes[i];
        if (strcmp(r->path, q->h.path) != 0)
            continue;
        if (method_is(r->method, q->h.method))
            return r;
        path_known = true;
        bool get = strcmp(r->method, "GET") == 0;
        an += (size_t)snprintf(allow + an, an < sizeof allow ? sizeof allow - an : 0, "%s%s%s",
                               an ? ", " : "", r->method, get ? ", HEAD" : "");
        if (an >= sizeof allow)
            an = sizeof allow - 1;
    }
    if (!path_known) {
        ot_h1_refuse(q, 404, "not found", NULL, NULL);
        return NULL;
    }
    /* the header is copied into the answer before refuse returns */
    ot_h1_refuse(q, 405, "method not allowed", "Allow", allow);
    return NULL;
}

static void outcome(ot_http_req *q)
{
    if (!q->replied)
        ot_h1_refuse(q, 500, "the handler gave no answer", NULL, NULL);
}

void ot_h1_req_begin(ot_http_req *q)
{
    ot_http_server *s = q->s;
    if (s->need_client_cert && !ot_h1_conn_client_cert_ok(q->c)) {
        ot_h1_refuse(q, 401, "a valid client certificate is required", NULL, NULL);
        return;
    }
    if (s->auth && !basic_auth_ok(q)) {
        ot_h1_refuse(q, 401, "unauthorized", "WWW-Authenticate", s->auth_challenge);
        return;
    }
    if (s->o.auth && !ot_auth_check(s->o.auth, header_of, q)) {
        ot_h1_refuse(q, 401, "unauthorized", s->o.auth->challenge ? "WWW-Authenticate" : NULL,
                     s->o.auth->challenge);
        return;
    }
    if (s->o.stream) {
        s->o.stream->begin(q, s->o.arg);
        return;
    }
    if (!(q->route = route_of(q)))
        return;
    int64_t len = q->h.content_length;
    if (len > (int64_t)s->o.max_body) {
        ot_h1_refuse(q, 413, "request body too large", NULL, NULL);
        return;
    }
    if (len > 0) {
        if (!(q->body = malloc((size_t)len + 1))) {
            ot_h1_refuse(q, 500, "out of memory", NULL, NULL);
            return;
        }
        q->cap = (size_t)len;
    }
}

bool ot_h1_req_data(ot_http_req *q, const uint8_t *p, size_t n)
{
    ot_http_server *s = q->s;
    if (s->o.stream)
        return s->o.stream->data(q, p, n, s->o.arg);
    if (q->len + n > q->cap) {
        /* chunked: grown as it comes (the chunk parser bounds the total) */
        size_t ncap = q->cap ? q->cap * 2 : 16384;
        if (ncap < q->len + n)
            ncap = q->len + n;
        if (ncap > s->o.max_body)
            ncap = s->o.max_body;
        if (ncap < q->len + n)
            return false;
        uint8_t *nb = realloc(q->body, ncap + 1);
        if (!nb)
            return false;
        q->body = nb;
        q->cap = ncap;
    }
    memcpy(q->body + q->len, p, n);
    q->len += n;
    return true;
}

void ot_h1_req_end(ot_http_req *q)
{
    ot_http_server *s = q->s;
    if (s->o.stream) {
        s->o.stream->end(q, s->o.arg);
    } else {
        if (q->body)
            q->body[q->len] = '\0';
        q->route->fn(q, s->o.arg);
    }
    outcome(q);
}
