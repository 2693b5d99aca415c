/* tls.h: the gRPC transport's OpenSSL server context (see tls.c). Kept
 * apart from otlp.h so only the files that speak OpenSSL include it. */
#ifndef OT_OTLPR_TLS_H
#define OT_OTLPR_TLS_H

#include <openssl/ssl.h>

#include "otlp.h"

/* A server context for t (certificate, key, min version, ALPN h2, client
 * verification when client_ca_file is set); NULL with err set. */
SSL_CTX *ot_otlpr_tls_server_ctx(const otlpr_tls_cfg *t, ot_err *err);

#endif
