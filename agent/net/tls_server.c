/* tls_server.c: the `tls` block of every server (its keys and checks) and
 * the OpenSSL server context built from it: certificate, key, lowest
 * version, ALPN, and client certificates when a client CA is configured
 * (mTLS). Servers on libmicrohttpd do TLS with GnuTLS inside the library
 * and take the same block's files instead of this context. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <string.h>

#include "net/tls.h"

static const char *const tls_versions[] = {"1.2", "1.3", NULL};

const ot_key ot_tls_server_keys[] = {
    {.name = "cert_file", .type = OT_KT_STRING, .offset = offsetof(ot_tls_server, cert_file),
     .help = "server certificate chain (PEM)"},
    {.name = "key_file", .type = OT_KT_STRING, .offset = offsetof(ot_tls_server, key_file),
     .help = "private key of the certificate (PEM)"},
    {.name = "client_ca_file", .type = OT_KT_STRING,
     .offset = offsetof(ot_tls_server, client_ca_file),
     .help = "CA bundle (PEM); when set, clients must present a certificate it signed (mTLS)"},
    {.name = "min_version", .type = OT_KT_ENUM, .offset = offsetof(ot_tls_server, min_version),
     .def = "1.2", .choices = tls_versions, .help = "lowest TLS version accepted"},
    {0},
};

void ot_tls_server_validate(const ot_tls_server *t, const ot_node *node, const char *path,
                            ot_diags *d)
{
    if (!t->present)
        return;
    const ot_node *at = ot_node_get(node, "tls");
    if (!t->cert_file || !*t->cert_file || !t->key_file || !*t->key_file)
        ot_diag_add(d, OT_SEV_ERROR, at ? at : node, path,
                    "tls needs cert_file and key_file");
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
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
        ssl_err(err, "certificate", t->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_err(err, "key", t->key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, "key does not match the certificate", t->key_file);
        goto fail;
    }
    if (t->client_ca_file && *t->client_ca_file) {
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
