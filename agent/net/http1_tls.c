/* http1_tls.c: the HTTP server's certificates (see http_server.h): the
 * OpenSSL context made from the checked PEM files, and the reload that
 * swaps it while connections are served, on a timer (reload_interval) or
 * when asked. Connections made with an old context keep their reference to
 * it, so a reload never cuts one. */
#include <openssl/ssl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "net/http1_int.h"
#include "net/http_server.h"

/* The handshake goes on whatever the client shows: a missing or untrusted
 * certificate is answered 401 over HTTP (as before), not with an alert. */
static int verify_any(int ok, X509_STORE_CTX *x)
{
    return 1;
}

SSL_CTX *ot_h1_tls_ctx(const ot_tls_server *t, const ot_tls_server_pems *p, ot_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ot_err_set(err, "tls: cannot make a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, t->min_version == 1 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, t->max_version == 0 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (ot_tls_use_cert_pem(ctx, p->cert, p->key, err) < 0 ||
        (p->client_ca && ot_tls_add_ca_pem(ctx, p->client_ca, err) < 0)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (p->client_ca)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_any);
    return ctx;
}

static bool same_pems(const ot_tls_server_pems *a, const ot_tls_server_pems *b)
{
    return a->cert && b->cert && strcmp(a->cert, b->cert) == 0 && strcmp(a->key, b->key) == 0 &&
           (a->client_ca ? b->client_ca && strcmp(a->client_ca, b->client_ca) == 0
                         : !b->client_ca);
}

static int reload_locked(ot_http_server *s, ot_err *err)
{
    uint64_t st = ot_tls_server_files_stamp(s->o.tls);
    if (st == s->stamp)
        return 0;
    /* once per change: a pair half written is tried again when the other
     * file lands */
    s->stamp = st;
    ot_tls_server_pems p;
    if (ot_tls_server_pems_load(s->o.tls, &p, err) < 0)
        return -1;
    if (same_pems(&p, &s->pems)) {
        ot_tls_server_pems_free(&p); /* touched, not changed */
        return 0;
    }
    SSL_CTX *ctx = ot_h1_tls_ctx(s->o.tls, &p, err);
    ot_tls_server_pems_free(&s->pems);
    s->pems = p;
    if (!ctx)
        return -1;
    /* connections made with the old one keep their reference */
    SSL_CTX_free(s->ctx);
    s->ctx = ctx;
    atomic_fetch_add(&s->reloads, 1);
    return 1;
}

int ot_http_server_reload(ot_http_server *s, ot_err *err)
{
    if (!s->tls)
        return 0;
    pthread_mutex_lock(&s->mu);
    int rc = reload_locked(s, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void *ot_h1_tls_watch(void *arg)
{
    ot_http_server *s = arg;
    int64_t every = ot_tls_server_check_interval(s->o.tls);
    pthread_mutex_lock(&s->mu);
    while (!s->watch_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + every;
        ts.tv_sec = (time_t)(at / 1000000000LL);
        ts.tv_nsec = (long)(at % 1000000000LL);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        if (s->watch_stop)
            break;
        ot_err err = {{0}};
        int rc = reload_locked(s, &err);
        if (rc > 0)
            ot_info(s->o.log_component, "tls certificate reloaded", "cert=%s",
                    s->o.tls->cert_file ? s->o.tls->cert_file : "(cert_pem)");
        else if (rc < 0)
            ot_warn(s->o.log_component, "tls reload failed; serving the previous certificate",
                    "err=\"%s\"", err.msg);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
