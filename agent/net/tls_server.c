/* tls_server.c: the `tls` block of every server (its keys and checks), the
 * OpenSSL server context built from it (certificate, key, version range,
 * ALPN, client certificates when a client CA is configured), the same
 * block as PEM text (read and checked once, so that the HTTP server can
 * tell a changed file from a touched one), and reloading when the files
 * change on disk: a fingerprint of the files, checked at most every
 * reload_interval, and a context source for OpenSSL servers. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "net/tls.h"

static const char *const tls_versions[] = {"1.2", "1.3", NULL};

static bool set(const char *s)
{
    return s && *s;
}

const ot_key ot_tls_server_keys[] = {
    {.name = "cert_file", .type = OT_KT_STRING, .offset = offsetof(ot_tls_server, cert_file),
     .help = "server certificate chain (PEM)"},
    {.name = "cert_pem", .type = OT_KT_STRING, .offset = offsetof(ot_tls_server, cert_pem),
     .help = "the same as cert_file, inline"},
    {.name = "key_file", .type = OT_KT_STRING, .offset = offsetof(ot_tls_server, key_file),
     .help = "private key of the certificate (PEM)"},
    {.name = "key_pem", .type = OT_KT_STRING, .offset = offsetof(ot_tls_server, key_pem),
     .flags = OT_KF_SECRET, .help = "the same as key_file, inline"},
    {.name = "client_ca_file", .type = OT_KT_STRING,
     .offset = offsetof(ot_tls_server, client_ca_file),
     .help = "CA bundle (PEM); when set, clients must present a certificate it signed (mTLS)"},
    {.name = "min_version", .type = OT_KT_ENUM, .offset = offsetof(ot_tls_server, min_version),
     .def = "1.2", .choices = tls_versions, .help = "lowest TLS version accepted"},
    {.name = "max_version", .type = OT_KT_ENUM, .offset = offsetof(ot_tls_server, max_version),
     .def = "1.3", .choices = tls_versions, .help = "highest TLS version accepted"},
    {.name = "reload_interval", .type = OT_KT_DURATION,
     .offset = offsetof(ot_tls_server, reload_interval), .def = "0s", .min = 0, .max = 86400e9,
     .help = "check the certificate, key and client CA files this often and serve new "
             "connections with them when they changed; 0: never"},
    {.name = "client_ca_file_reload", .type = OT_KT_BOOL,
     .offset = offsetof(ot_tls_server, client_ca_file_reload), .def = "false",
     .help = "reload client_ca_file when it changes (checked every second, or every "
             "reload_interval)"},
    {0},
};

void ot_tls_server_validate(const ot_tls_server *t, const ot_node *node, const char *path,
                            ot_diags *d)
{
    if (!t->present)
        return;
    const ot_node *at = ot_node_get(node, "tls");
    if (!at)
        at = node;
    if (set(t->cert_file) && set(t->cert_pem))
        ot_diag_add(d, OT_SEV_ERROR, at, path, "set cert_file or cert_pem, not both");
    if (set(t->key_file) && set(t->key_pem))
        ot_diag_add(d, OT_SEV_ERROR, at, path, "set key_file or key_pem, not both");
    if (!(set(t->cert_file) && set(t->key_file)) && !(set(t->cert_pem) && set(t->key_pem)))
        ot_diag_add(d, OT_SEV_ERROR, at, path,
                    "tls needs cert_file and key_file (or cert_pem and key_pem)");
    if (t->max_version < t->min_version)
        ot_diag_add(d, OT_SEV_ERROR, at, path, "max_version is below min_version");
    if (t->client_ca_file_reload && !set(t->client_ca_file))
        ot_diag_add(d, OT_SEV_ERROR, at, path, "client_ca_file_reload needs client_ca_file");
}


static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    const char *want = arg;
    size_t wn = strlen(want);
    /* in: length-prefixed protocol names offered by the client */
    for (unsigned i = 0; i < inlen;) {
        unsigned n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == wn && memcmp(in + i + 1, want, wn) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)wn;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    /* gRPC is HTTP/2 only: a client that cannot speak the protocol gets an
     * alert rather than a connection it cannot use */
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void ssl_err(ot_err *err, const char *what, const char *file)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    ot_err_set(err, "tls: %s %s: %s", what, file ? file : "", *buf ? buf : "failed");
}

SSL_CTX *ot_tls_server_ctx(const ot_tls_server *t, const char *alpn, ot_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        ssl_err(err, "context", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, t->min_version == 1 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, t->max_version == 0 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (set(t->cert_pem)) {
        if (ot_tls_use_cert_pem(ctx, t->cert_pem, t->key_pem ? t->key_pem : "", err) < 0)
            goto fail;
    } else {
        if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
            ssl_err(err, "certificate", t->cert_file);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1) {
            ssl_err(err, "key", t->key_file);
            goto fail;
        }
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, "key does not match the certificate", t->key_file);
        goto fail;
    }
    if (set(t->client_ca_file)) {
        if (SSL_CTX_load_verify_locations(ctx, t->client_ca_file, NULL) != 1) {
            ssl_err(err, "client CA", t->client_ca_file);
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    if (alpn && *alpn)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, (void *)alpn);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- PEM text ------------------------------------------------------------- */

static char *read_pem(const char *path, ot_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ot_err_set(err, "tls: open %s: %s", path, strerror(errno));
        return NULL;
    }
    ot_buf b = OT_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ot_buf_append(&b, chunk, n);
    bool bad = ferror(f) || b.oom || b.len > (16u << 20);
    fclose(f);
    if (bad || ot_buf_putc(&b, '\0') < 0) {
        ot_buf_free(&b);
        ot_err_set(err, "tls: read %s: failed or too large", path);
        return NULL;
    }
    return b.data;
}

static char *pem_of(const char *file, const char *inline_pem, ot_err *err)
{
    if (set(inline_pem)) {
        char *p = strdup(inline_pem);
        if (!p)
            ot_err_set(err, "tls: out of memory");
        return p;
    }
    return read_pem(file, err);
}

int ot_tls_server_pems_load(const ot_tls_server *t, ot_tls_server_pems *out, ot_err *err)
{
    *out = (ot_tls_server_pems){0};
    out->cert = pem_of(t->cert_file, t->cert_pem, err);
    out->key = out->cert ? pem_of(t->key_file, t->key_pem, err) : NULL;
    if (out->key && set(t->client_ca_file))
        out->client_ca = read_pem(t->client_ca_file, err);
    if (!out->key || (set(t->client_ca_file) && !out->client_ca)) {
        ot_tls_server_pems_free(out);
        return -1;
    }
    /* checked here so that the error says which file and why */
    const char *cname = set(t->cert_pem) ? "cert_pem" : t->cert_file;
    const char *kname = set(t->key_pem) ? "key_pem" : t->key_file;
    int rc = 0;
    BIO *cb = BIO_new_mem_buf(out->cert, -1), *kb = BIO_new_mem_buf(out->key, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    if (!x)
        rc = ot_err_set(err, "tls: %s holds no PEM certificate", cname);
    else if (!k)
        rc = ot_err_set(err, "tls: %s holds no PEM private key", kname);
    else if (X509_check_private_key(x, k) != 1)
        rc = ot_err_set(err, "tls: the key %s does not match the certificate %s", kname, cname);
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    ERR_clear_error();
    if (rc < 0)
        ot_tls_server_pems_free(out);
    return rc;
}

void ot_tls_server_pems_free(ot_tls_server_pems *p)
{
    free(p->cert);
    free(p->key);
    free(p->client_ca);
    *p = (ot_tls_server_pems){0};
}

/* ---- reloading ------------------------------------------------------------ */

int64_t ot_tls_server_check_interval(const ot_tls_server *t)
{
    if (!t || !t->present)
        return 0;
    if (t->reload_interval > 0)
        return t->reload_interval;
    return t->client_ca_file_reload ? 1000000000LL : 0;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0x100000001b3ULL;
}

uint64_t ot_tls_stamp_file(uint64_t h, const char *path)
{
    struct stat st;
    if (!set(path))
        return h;
    if (stat(path, &st) != 0)
        return mix(h, (uint64_t)errno);
    h = mix(h, (uint64_t)st.st_dev);
    h = mix(h, (uint64_t)st.st_ino);
    h = mix(h, (uint64_t)st.st_size);
    h = mix(h, (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec);
    return mix(h, (uint64_t)st.st_ctim.tv_sec * 1000000000ULL + (uint64_t)st.st_ctim.tv_nsec);
}

uint64_t ot_tls_server_files_stamp(const ot_tls_server *t)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    if (t->reload_interval > 0) {
        h = ot_tls_stamp_file(h, t->cert_file);
        h = ot_tls_stamp_file(h, t->key_file);
    }
    if (t->reload_interval > 0 || t->client_ca_file_reload)
        h = ot_tls_stamp_file(h, t->client_ca_file);
    return h;
}

struct ot_tls_reloader {
    pthread_mutex_t mu;
    const void *t;
    const char *alpn;
    ot_tls_build_fn build;
    ot_tls_stamp_fn stamp_of;
    SSL_CTX *cur;
    int64_t interval, next_check;
    uint64_t stamp;
    unsigned reloads;
};

ot_tls_reloader *ot_tls_reloader_make(const void *t, const char *alpn, ot_tls_build_fn build,
                                      ot_tls_stamp_fn stamp, int64_t interval, ot_err *err)
{
    ot_tls_reloader *r = calloc(1, sizeof *r);
    if (!r) {
        ot_err_set(err, "tls: out of memory");
        return NULL;
    }
    /* the stamp before the build: a file replaced meanwhile is seen */
    r->stamp = stamp(t);
    if (!(r->cur = build(t, alpn, err))) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->t = t;
    r->alpn = alpn;
    r->build = build;
    r->stamp_of = stamp;
    r->interval = interval;
    r->next_check = ot_now_ns() + r->interval;
    return r;
}

static SSL_CTX *server_build(const void *t, const char *alpn, ot_err *err)
{
    return ot_tls_server_ctx(t, alpn, err);
}

static uint64_t server_stamp(const void *t)
{
    return ot_tls_server_files_stamp(t);
}

ot_tls_reloader *ot_tls_reloader_new(const ot_tls_server *t, const char *alpn, ot_err *err)
{
    return ot_tls_reloader_make(t, alpn, server_build, server_stamp,
                                ot_tls_server_check_interval(t), err);
}

SSL_CTX *ot_tls_reloader_get(ot_tls_reloader *r)
{
    pthread_mutex_lock(&r->mu);
    int64_t now = r->interval ? ot_now_ns() : 0;
    if (r->interval && now >= r->next_check) {
        r->next_check = now + r->interval;
        uint64_t st = r->stamp_of(r->t);
        if (st != r->stamp) {
            /* Tried once per change: a half-written pair fails now and is
             * tried again when the second file lands. */
            r->stamp = st;
            ot_err err = {{0}};
            SSL_CTX *ctx = r->build(r->t, r->alpn, &err);
            if (ctx) {
                SSL_CTX_free(r->cur);
                r->cur = ctx;
                r->reloads++;
                ot_info("tls", "certificates reloaded", "reloads=%u", r->reloads);
            } else {
                ot_warn("tls", "reload failed; keeping the previous certificates", "err=\"%s\"",
                        err.msg);
            }
        }
    }
    SSL_CTX *ctx = r->cur;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&r->mu);
    return ctx;
}

unsigned ot_tls_reloader_reloads(const ot_tls_reloader *r)
{
    return r ? r->reloads : 0;
}

void ot_tls_reloader_free(ot_tls_reloader *r)
{
    if (!r)
        return;
    SSL_CTX_free(r->cur);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
