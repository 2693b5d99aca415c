/* tls.c: the OpenSSL server context of the gRPC transport: certificate,
 * key, lowest version, ALPN "h2", and client certificates when a client
 * CA is configured (mTLS). The HTTP transport's TLS is libmicrohttpd's own
 * (GnuTLS) and is set up in http.c. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

#include "otlp.h"
#include "tls.h"

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    /* in: length-prefixed protocol names offered by the client */
    for (unsigned i = 0; i < inlen;) {
        unsigned n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    /* gRPC is HTTP/2 only; a client that cannot speak it gets an alert */
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

SSL_CTX *ot_otlpr_tls_server_ctx(const otlpr_tls_cfg *t, ot_err *err)
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
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
