/* auth.h: how a server asks whether a request may come in. An
 * authenticator (the bearertokenauth and basicauth extensions) is an
 * ot_auth; a server that a component configured with
 * `auth: { authenticator: ID }` (OTLP gRPC and HTTP, the Prometheus
 * endpoint) holds one and calls ot_auth_check with a way to read the
 * request's headers, before it reads the body. The answer is yes or no and
 * nothing else: a client is told 401 / UNAUTHENTICATED, never which part
 * (user, password, token, scheme) was wrong. */
#ifndef OT_AUTH_H
#define OT_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"
#include "config/config.h"

/* The value of a request header by lower-case name; NULL when absent. */
typedef const char *(*ot_auth_header_fn)(void *ctx, const char *name);

typedef struct ot_auth ot_auth;
struct ot_auth {
    /* Called from any server thread at once. */
    bool (*check)(ot_auth *a, ot_auth_header_fn header, void *ctx);
    /* The WWW-Authenticate value an HTTP 401 carries (NULL: none). */
    const char *challenge;
    /* The one header (lower case) check reads, for a server that keeps
     * headers only on demand (gRPC). */
    const char *header;
};

/* The `auth:` block of a server's config, the collector's key name. */
typedef struct ot_auth_cfg {
    const char *authenticator; /* an extension id; NULL or "": no auth */
} ot_auth_cfg;
extern const ot_key ot_auth_keys[];

/* a NULL authenticator lets everything in */
bool ot_auth_check(ot_auth *a, ot_auth_header_fn header, void *ctx);

/* Equal bytes, in a time that depends on neither content: both sides are
 * hashed (SHA-256) and the digests compared in constant time. */
bool ot_auth_equal(const void *a, size_t an, const void *b, size_t bn);


/* The user:password bytes of an Authorization header's Basic
 * credentials, decoded into out (cap bytes, NUL added); -1 when the header
 * is absent, another scheme, empty, too long or not base64. */
long ot_auth_basic_decode(const char *header, uint8_t *out, size_t cap);

/* A secrets file watched for change (bearertokenauth's token file,
 * basicauth's htpasswd): its contents are read again when its inode, size
 * or mtime changed, checked at most once a second. */
typedef struct ot_auth_file {
    const char *path;
    unsigned long long stamp[4];
    long long checked_ns;
} ot_auth_file;
/* The file's contents (malloc'd, NUL-terminated; *len without the NUL)
 * when it changed since the last call, or force; NULL otherwise and NULL
 * with err set when it cannot be read (the caller keeps what it had). */
char *ot_auth_file_read(ot_auth_file *f, bool force, size_t *len, ot_err *err);

#endif
