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
typedef struct ot_tls_reloader ot_tls_reloader;

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

/* PEM text into a context, for both halves: the certificate (leaf, then
 * intermediates) and its key; or CAs to trust. -1 with err set. */
int ot_tls_use_cert_pem(SSL_CTX *ctx, const char *cert, const char *key, ot_err *err);
int ot_tls_add_ca_pem(SSL_CTX *ctx, const char *pem, ot_err *err);

/* A client context that follows ca_file, cert_file and key_file the way a
 * server's follows its files (ot_tls_reloader below), checked every
 * reload_interval (0: never). t must outlive it. */
ot_tls_reloader *ot_tls_client_reloader_new(const ot_tls_client *t, const char *alpn, ot_err *err);

/* ---- servers ------------------------------------------------------------ */

typedef struct ot_tls_server {
    bool present; /* the block is in the config: serve TLS */
    const char *cert_file, *cert_pem;
    const char *key_file, *key_pem;
    const char *client_ca_file; /* set: clients must present a cert it signed */
    int min_version;            /* index into "1.2", "1.3" */
    int max_version;            /* the same; never below min_version */
    int64_t reload_interval;    /* ns; >0: the files are checked for change this often */
    bool client_ca_file_reload; /* watch client_ca_file even without reload_interval */
} ot_tls_server;

extern const ot_key ot_tls_server_keys[];
/* A present block needs a certificate and its key, each from a file or
 * inline, and max_version not below min_version. */
void ot_tls_server_validate(const ot_tls_server *t, const ot_node *node, const char *path,
                            ot_diags *d);
/* An OpenSSL server context: certificate, key, version range, client
 * verification when client_ca_file is set, and when alpn is set ("h2")
 * a client that cannot speak it is refused. NULL with err set. */
SSL_CTX *ot_tls_server_ctx(const ot_tls_server *t, const char *alpn, ot_err *err);

/* The PEM text of a block, read from its files or taken inline, checked
 * (the key matches the certificate) before anything is served with it:
 * for servers whose library takes memory, not an OpenSSL context. */
typedef struct ot_tls_server_pems {
    char *cert, *key, *client_ca; /* malloc'd; client_ca NULL without mTLS */
} ot_tls_server_pems;
int ot_tls_server_pems_load(const ot_tls_server *t, ot_tls_server_pems *out, ot_err *err);
void ot_tls_server_pems_free(ot_tls_server_pems *p);

/* How often the files are checked for change; 0 when never: reload_interval,
 * or 1 s when only client_ca_file_reload asks. */
int64_t ot_tls_server_check_interval(const ot_tls_server *t);
/* A fingerprint of the files on disk (identity, size, times); it changes
 * when one is replaced, rewritten or goes missing. */
uint64_t ot_tls_server_files_stamp(const ot_tls_server *t);

/* An OpenSSL server context that follows its files: each new connection
 * asks for the current one, and when a check finds the files changed a new
 * context is built; a failed build is logged and the old context kept.
 * Connections keep the context they started with. Thread-safe. */
ot_tls_reloader *ot_tls_reloader_new(const ot_tls_server *t, const char *alpn, ot_err *err);
/* The reloader of any block: build makes a context of cfg, stamp
 * fingerprints its files (ot_tls_stamp_file over each), checked every
 * interval (0: never). */
typedef SSL_CTX *(*ot_tls_build_fn)(const void *cfg, const char *alpn, ot_err *err);
typedef uint64_t (*ot_tls_stamp_fn)(const void *cfg);
ot_tls_reloader *ot_tls_reloader_make(const void *cfg, const char *alpn, ot_tls_build_fn build,
                                      ot_tls_stamp_fn stamp, int64_t interval, ot_err *err);
/* h with one file's identity, size and times mixed in (its stat error when
 * missing); an unset path leaves h as it is. */
uint64_t ot_tls_stamp_file(uint64_t h, const char *path);
/* The current context, one reference for the caller (SSL_CTX_free it after
 * SSL_new); never NULL. */
SSL_CTX *ot_tls_reloader_get(ot_tls_reloader *r);
/* Contexts built after the first (tests). */
unsigned ot_tls_reloader_reloads(const ot_tls_reloader *r);
void ot_tls_reloader_free(ot_tls_reloader *r);

#endif
