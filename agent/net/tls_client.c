/* tls_client.c: the `tls` block of every client (the collector's client
 * TLS keys), its cross-key checks, and the OpenSSL client context a
 * transport that speaks OpenSSL itself (the gRPC client) builds from it,
 * re-built when its files change (reload_interval). The HTTP client hands
 * the same settings to libcurl instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/tls.h"

int ot_tls_version(const char *v)
{
    static const char *const names[] = {"1.0", "1.1", "1.2", "1.3"};
    if (!v || !*v)
        return 0;
    for (int i = 0; i < 4; i++)
        if (strcmp(v, names[i]) == 0)
            return i + 1;
    return -1;
}

const ot_key ot_tls_client_keys[] = {
    {.name = "insecure", .type = OT_KT_BOOL, .offset = offsetof(ot_tls_client, insecure),
     .def = "false", .help = "gRPC: plaintext HTTP/2 (no TLS); otlphttp follows the URL scheme"},
    {.name = "insecure_skip_verify", .type = OT_KT_BOOL,
     .offset = offsetof(ot_tls_client, insecure_skip_verify), .def = "false",
     .help = "use TLS but accept any server certificate"},
    {.name = "ca_file", .type = OT_KT_STRING, .offset = offsetof(ot_tls_client, ca_file),
     .help = "PEM file of CAs to trust instead of the system's"},
    {.name = "ca_pem", .type = OT_KT_STRING, .offset = offsetof(ot_tls_client, ca_pem),
     .help = "the same as ca_file, inline"},
    {.name = "cert_file", .type = OT_KT_STRING, .offset = offsetof(ot_tls_client, cert_file),
     .help = "client certificate (PEM) for mutual TLS"},
    {.name = "cert_pem", .type = OT_KT_STRING, .offset = offsetof(ot_tls_client, cert_pem),
     .help = "the same as cert_file, inline"},
    {.name = "key_file", .type = OT_KT_STRING, .offset = offsetof(ot_tls_client, key_file),
     .help = "private key (PEM) of the client certificate"},
    {.name = "key_pem", .type = OT_KT_STRING, .offset = offsetof(ot_tls_client, key_pem),
     .flags = OT_KF_SECRET, .help = "the same as key_file, inline"},
    {.name = "server_name_override", .type = OT_KT_STRING,
     .offset = offsetof(ot_tls_client, server_name_override),
     .help = "name to send as SNI and to verify the certificate against"},
    {.name = "min_version", .type = OT_KT_STRING, .offset = offsetof(ot_tls_client, min_version),
     .def = "1.2", .help = "lowest TLS version offered: 1.0, 1.1, 1.2 or 1.3"},
    {.name = "max_version", .type = OT_KT_STRING, .offset = offsetof(ot_tls_client, max_version),
     .help = "highest TLS version offered (unset: the newest)"},
    {.name = "reload_interval", .type = OT_KT_DURATION,
     .offset = offsetof(ot_tls_client, reload_interval), .def = "0", .min = 0, .max = 86400e9,
     .help = "re-read ca_file, cert_file and key_file when they change, checked this often; 0 = never"},
    {.name = "include_system_ca_certs_pool", .type = OT_KT_BOOL,
     .offset = offsetof(ot_tls_client, include_system_ca_certs_pool), .def = "false",
     .help = "trust the system's CAs as well as ca_file / ca_pem"},
    {0},
};

static bool set(const char *s)
{
    return s && *s;
}

void ot_tls_client_validate(const ot_tls_client *t, const ot_node *node, const char *path,
                             ot_diags *d)
{
    const ot_node *at = node;
    if (set(t->ca_file) && set(t->ca_pem))
        ot_diag_add(d, OT_SEV_ERROR, at, path, "set ca_file or ca_pem, not both");
    if (set(t->cert_file) && set(t->cert_pem))
        ot_diag_add(d, OT_SEV_ERROR, at, path, "set cert_file or cert_pem, not both");
    if (set(t->key_file) && set(t->key_pem))
        ot_diag_add(d, OT_SEV_ERROR, at, path, "set key_file or key_pem, not both");
    bool cert = set(t->cert_file) || set(t->cert_pem), key = set(t->key_file) || set(t->key_pem);
    if (cert != key)
        ot_diag_add(d, OT_SEV_ERROR, at, path,
                    "a client certificate needs both a certificate (cert_file) and its key (key_file)");
    else if (cert && set(t->cert_file) != set(t->key_file))
        ot_diag_add(d, OT_SEV_ERROR, at, path, "use cert_file with key_file, or cert_pem with key_pem");
    int minv = ot_tls_version(t->min_version), maxv = ot_tls_version(t->max_version);
    char p[512];
    if (minv < 0) {
        snprintf(p, sizeof p, "%s.min_version", path);
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(node, "min_version") ? ot_node_get(node, "min_version") : at,
                    p, "expected 1.0, 1.1, 1.2 or 1.3, found \"%s\"", t->min_version);
    }
    if (maxv < 0) {
        snprintf(p, sizeof p, "%s.max_version", path);
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(node, "max_version") ? ot_node_get(node, "max_version") : at,
                    p, "expected 1.0, 1.1, 1.2 or 1.3, found \"%s\"", t->max_version);
    }
    if (maxv > 0 && minv > 0 && maxv < minv)
        ot_diag_add(d, OT_SEV_ERROR, at, path, "max_version %s is below min_version %s",
                    t->max_version, t->min_version);
}

static int proto_version(int idx)
{
    switch (idx) {
    case 1:
        return TLS1_VERSION;
    case 2:
        return TLS1_1_VERSION;
    case 3:
        return TLS1_2_VERSION;
    case 4:
        return TLS1_3_VERSION;
    default:
        return 0;
    }
}

static void ssl_errors(char *out, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(out, cap, "unknown error");
        return;
    }
    ERR_error_string_n(e, out, cap);
    ERR_clear_error();
}

int ot_tls_add_ca_pem(SSL_CTX *ctx, const char *pem, ot_err *err)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return ot_err_set(err, "tls: out of memory");
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        X509_STORE_add_cert(store, x);
        X509_free(x);
        n++;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (!n)
        return ot_err_set(err, "tls: ca_pem holds no certificate");
    return 0;
}

int ot_tls_use_cert_pem(SSL_CTX *ctx, const char *cert, const char *key, ot_err *err)
{
    char e[200];
    BIO *cb = BIO_new_mem_buf(cert, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    int ok = x && SSL_CTX_use_certificate(ctx, x) == 1;
    /* Intermediates after the leaf. */
    X509 *extra;
    while (ok && (extra = PEM_read_bio_X509(cb, NULL, NULL, NULL)))
        if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1)
            X509_free(extra);
    X509_free(x);
    BIO_free(cb);
    if (!ok) {
        ssl_errors(e, sizeof e);
        return ot_err_set(err, "tls: cert_pem: %s", e);
    }
    ERR_clear_error();
    BIO *kb = BIO_new_mem_buf(key, -1);
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    ok = k && SSL_CTX_use_PrivateKey(ctx, k) == 1;
    EVP_PKEY_free(k);
    BIO_free(kb);
    if (!ok) {
        ssl_errors(e, sizeof e);
        return ot_err_set(err, "tls: key_pem: %s", e);
    }
    return 0;
}

SSL_CTX *ot_tls_client_ctx(const ot_tls_client *t, const char *alpn, ot_err *err)
{
    char e[200];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ot_err_set(err, "tls: cannot create a context");
        return NULL;
    }
    int minv = proto_version(ot_tls_version(t->min_version));
    int maxv = proto_version(ot_tls_version(t->max_version));
    if ((minv && SSL_CTX_set_min_proto_version(ctx, minv) != 1) ||
        (maxv && SSL_CTX_set_max_proto_version(ctx, maxv) != 1)) {
        ot_err_set(err, "tls: unsupported min_version/max_version");
        goto fail;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* No renegotiation and no compression: gRPC's TLS profile forbids them
     * and no other client needs them. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    unsigned char proto[256];
    size_t an = alpn ? strlen(alpn) : 0;
    if (an > 0 && an < sizeof proto) {
        proto[0] = (unsigned char)an;
        memcpy(proto + 1, alpn, an);
        if (SSL_CTX_set_alpn_protos(ctx, proto, (unsigned)an + 1) != 0) {
            ot_err_set(err, "tls: cannot set ALPN");
            goto fail;
        }
    }
    if (t->insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (set(t->ca_file)) {
            if (SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL) != 1) {
                ssl_errors(e, sizeof e);
                ot_err_set(err, "tls: ca_file %s: %s", t->ca_file, e);
                goto fail;
            }
        } else if (set(t->ca_pem)) {
            if (ot_tls_add_ca_pem(ctx, t->ca_pem, err) < 0)
                goto fail;
        }
        bool own_ca = set(t->ca_file) || set(t->ca_pem);
        if ((!own_ca || t->include_system_ca_certs_pool) &&
            SSL_CTX_set_default_verify_paths(ctx) != 1) {
            ssl_errors(e, sizeof e);
            ot_err_set(err, "tls: cannot load the system CAs: %s", e);
            goto fail;
        }
    }
    if (set(t->cert_file)) {
        if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
            ssl_errors(e, sizeof e);
            ot_err_set(err, "tls: cert_file %s: %s", t->cert_file, e);
            goto fail;
        }
        if (set(t->key_file) && SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1) {
            ssl_errors(e, sizeof e);
            ot_err_set(err, "tls: key_file %s: %s", t->key_file, e);
            goto fail;
        }
    } else if (set(t->cert_pem) && set(t->key_pem)) {
        if (ot_tls_use_cert_pem(ctx, t->cert_pem, t->key_pem, err) < 0)
            goto fail;
    }
    if ((set(t->cert_file) || set(t->cert_pem)) && SSL_CTX_check_private_key(ctx) != 1) {
        ot_err_set(err, "tls: the client key does not match the certificate");
        goto fail;
    }
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- reloading ---------------------------------------------------------- */

static SSL_CTX *client_build(const void *t, const char *alpn, ot_err *err)
{
    return ot_tls_client_ctx(t, alpn, err);
}

static uint64_t client_stamp(const void *vt)
{
    const ot_tls_client *t = vt;
    uint64_t h = 0xcbf29ce484222325ULL;
    h = ot_tls_stamp_file(h, t->ca_file);
    h = ot_tls_stamp_file(h, t->cert_file);
    return ot_tls_stamp_file(h, t->key_file);
}

ot_tls_reloader *ot_tls_client_reloader_new(const ot_tls_client *t, const char *alpn, ot_err *err)
{
    return ot_tls_reloader_make(t, alpn, client_build, client_stamp, t->reload_interval, err);
}
