/* tls.h: the one `tls:` block of every client and the one of every server,
 * as key tables the config walker fills (the collector's configtls names),
 * their cross-key checks, and the OpenSSL contexts built from them. A
 * component embeds ot_tls_client or ot_tls_server in its config struct and
 * points an OT_KT_TABLE key at ot_tls_client_keys / ot_tls_server_keys. */
#ifndef OT_TLS_H
#define OT_TLS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "config/config.h"

typedef struct ssl_ctx_st SSL_CTX;

/* ---- clients ------------------------------------------------------------ */

typedef struct ot_tls_client {
    bool insecure;             /* gRPC: plaintext h2c (prior knowledge) */
    bool insecure_skip_verify; /* TLS without checking the server's certificate */
    const char *ca_file, *ca_pem;
    const char *cert_file, *cert_pem;
    const char *key_file, *key_pem;
    const char *server_name_override;
    const char *min_version; /* "1.0" … "1.3" */
    const char *max_version; /* empty: the newest the library has */
    int64_t reload_interval; /* ns; 0: the files are read once */
    bool include_system_ca_certs_pool; /* trust the system's CAs besides ca_file/ca_pem */
} ot_tls_client;

extern const ot_key ot_tls_client_keys[];
/* "1.0" → 1 … "1.3" → 4; NULL or "" → 0; -1 when not a TLS version. */
int ot_tls_version(const char *v);
/* Cross-key checks of a tls table (cert without key, ca_file and ca_pem). */
void ot_tls_client_validate(const ot_tls_client *t, const ot_node *node, const char *path,
                            ot_diags *d);
/* An OpenSSL client context from the keys; alpn is one protocol name
 * offered by ALPN ("h2") or NULL. NULL with err set. */
SSL_CTX *ot_tls_client_ctx(const ot_tls_client *t, const char *alpn, ot_err *err);

/* A client context that follows its files on disk: when reload_interval
 * is set, ot_tls_reloader_ctx checks at most that often whether ca_file,
 * cert_file or key_file changed (inode, size, mtime) and, when one did,
 * builds a new context for the connections made from then on. A reload
 * that fails is logged under log_module and the old context kept. t must
 * outlive the reloader. Thread-safe. */
typedef struct ot_tls_reloader ot_tls_reloader;

ot_tls_reloader *ot_tls_reloader_new(const ot_tls_client *t, const char *alpn,
                                     const char *log_module, const char *id, ot_err *err);
/* The context for a new connection, as a reference of the caller's own
 * (SSL_CTX_free it after SSL_new). */
SSL_CTX *ot_tls_reloader_ctx(ot_tls_reloader *r);
void ot_tls_reloader_free(ot_tls_reloader *r);

/* ---- servers ------------------------------------------------------------ */

typedef struct ot_tls_server {
    bool present; /* the block is in the config: serve TLS */
    const char *cert_file;
    const char *key_file;
    const char *client_ca_file; /* set: clients must present a cert it signed */
    int min_version;            /* index into "1.2", "1.3" */
} ot_tls_server;

extern const ot_key ot_tls_server_keys[];
/* A present block needs a certificate and its key. */
void ot_tls_server_validate(const ot_tls_server *t, const ot_node *node, const char *path,
                            ot_diags *d);
/* An OpenSSL server context: certificate, key, lowest version, client
 * verification when client_ca_file is set, and when alpn is set ("h2")
 * a client that cannot speak it is refused. NULL with err set. */
SSL_CTX *ot_tls_server_ctx(const ot_tls_server *t, const char *alpn, ot_err *err);

#endif
