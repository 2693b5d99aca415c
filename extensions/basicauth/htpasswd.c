/* htpasswd.c: htpasswd lines for the basicauth extension (see
 * htpasswd.h): which hash formats are taken is decided here, once, when
 * the file is loaded: {SHA} (base64 of the SHA-1) and whatever libcrypt's
 * crypt_r calls current (bcrypt, SHA-crypt, yescrypt); legacy DES and MD5
 * crypt, Apache's $apr1$ and plain text are refused. */
#include "htpasswd.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "net/auth.h"

void ot_htpasswd_free(ot_htpasswd_user *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        OPENSSL_cleanse(u[i].hash, strlen(u[i].hash));
        free(u[i].name);
        free(u[i].hash);
    }
    free(u);
}

static bool hash_ok(const char *h)
{
    if (strncmp(h, "{SHA}", 5) == 0) {
        uint8_t d[32];
        size_t n = strlen(h + 5);
        return ot_base64_decoded_max(n) <= sizeof d && ot_base64_decode(h + 5, n, d) == 20;
    }
    return h[0] == '$' && crypt_checksalt(h) == CRYPT_SALT_OK;
}

/* Adds the lines of text to *u; -1 with err naming where and the line. */
int ot_htpasswd_parse(const char *text, const char *where, ot_htpasswd_user **u, size_t *n,
                      ot_err *err)
{
    unsigned line = 0;
    for (const char *p = text; *p;) {
        size_t l = strcspn(p, "\r\n");
        line++;
        while (l && (p[l - 1] == ' ' || p[l - 1] == '\t'))
            l--;
        if (l && p[0] != '#') {
            const char *colon = memchr(p, ':', l);
            if (!colon || colon == p)
                return ot_err_set(err, "%s line %u: expected user:hash", where, line);
            char *name = strndup(p, (size_t)(colon - p));
            char *hash = strndup(colon + 1, l - (size_t)(colon - p) - 1);
            ot_htpasswd_user *nu = name && hash ? realloc(*u, (*n + 1) * sizeof **u) : NULL;
            if (!nu) {
                free(name);
                free(hash);
                return ot_err_set(err, "out of memory");
            }
            *u = nu;
            (*u)[(*n)++] = (ot_htpasswd_user){name, hash};
            if (!hash_ok(hash))
                return ot_err_set(err,
                                  "%s line %u: hash format not supported (use bcrypt $2y$, "
                                  "SHA-crypt $5$ or $6$, yescrypt $y$ or {SHA})",
                                  where, line);
        }
        p += strcspn(p, "\r\n");
        p += *p == '\r' && p[1] == '\n' ? 2 : *p ? 1 : 0;
    }
    return 0;
}

bool ot_htpasswd_verify(const char *pass, size_t pl, const char *hash)
{
    if (strncmp(hash, "{SHA}", 5) == 0) {
        unsigned char d[20];
        unsigned dl = sizeof d;
        char want[64];
        if (EVP_Digest(pass, pl, d, &dl, EVP_sha1(), NULL) != 1)
            return false;
        size_t wl = ot_base64_encode(d, sizeof d, want, 0);
        return ot_auth_equal(want, wl, hash + 5, strlen(hash + 5));
    }
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return false;
    char *out = crypt_rn(pass, hash, cd, sizeof *cd);
    bool ok = out && out[0] != '*' && ot_auth_equal(out, strlen(out), hash, strlen(hash));
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return ok;
}

