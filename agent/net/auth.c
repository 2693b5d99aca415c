/* auth.c: the `auth:` key table and the two helpers every authenticator
 * needs (see auth.h). */
#include "net/auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/codec.h"

const ot_key ot_auth_keys[] = {
    {.name = "authenticator", .type = OT_KT_STRING, .offset = offsetof(ot_auth_cfg, authenticator),
     .help = "id of the extension that checks each request (bearertokenauth, basicauth)"},
    {0},
};

bool ot_auth_check(ot_auth *a, ot_auth_header_fn header, void *ctx)
{
    return !a || a->check(a, header, ctx);
}

static bool digest(const void *p, size_t n, unsigned char out[32])
{
    unsigned len = 32;
    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1;
}

bool ot_auth_equal(const void *a, size_t an, const void *b, size_t bn)
{
    unsigned char da[32], db[32];
    if (!digest(a, an, da) || !digest(b, bn, db))
        return false;
    bool eq = CRYPTO_memcmp(da, db, sizeof da) == 0;
    OPENSSL_cleanse(da, sizeof da);
    OPENSSL_cleanse(db, sizeof db);
    return eq;
}

long ot_auth_basic_decode(const char *h, uint8_t *out, size_t cap)
{
    if (!h || strncasecmp(h, "Basic ", 6) != 0)
        return -1;
    h += 6;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n && h[n - 1] == ' ')
        n--;
    long m;
    if (n == 0 || cap == 0 || ot_base64_decoded_max(n) > cap - 1 ||
        (m = ot_base64_decode(h, n, out)) < 0)
        return -1;
    out[m] = '\0';
    return m;
}

char *ot_auth_file_read(ot_auth_file *f, bool force, size_t *len, ot_err *err)
{
    long long now = (long long)ot_now_ns();
    if (!force && now - f->checked_ns < 1000000000LL)
        return NULL;
    f->checked_ns = now;
    struct stat st;
    if (stat(f->path, &st) != 0) {
        ot_err_set(err, "%s: %s", f->path, strerror(errno));
        return NULL;
    }
    unsigned long long stamp[4] = {(unsigned long long)st.st_ino, (unsigned long long)st.st_size,
                                   (unsigned long long)st.st_mtim.tv_sec,
                                   (unsigned long long)st.st_mtim.tv_nsec};
    if (!force && memcmp(stamp, f->stamp, sizeof stamp) == 0)
        return NULL;
    FILE *fp = fopen(f->path, "rb");
    if (!fp) {
        ot_err_set(err, "%s: %s", f->path, strerror(errno));
        return NULL;
    }
    ot_buf b = OT_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0 && b.len < (1u << 20))
        ot_buf_append(&b, chunk, n);
    bool bad = ferror(fp);
    fclose(fp);
    OPENSSL_cleanse(chunk, sizeof chunk);
    ot_buf_append(&b, "", 1);
    if (bad || b.oom || b.len > (1u << 20)) {
        if (b.data)
            OPENSSL_cleanse(b.data, b.len);
        ot_buf_free(&b);
        ot_err_set(err, "%s: cannot be read whole (at most 1 MiB)", f->path);
        return NULL;
    }
    memcpy(f->stamp, stamp, sizeof stamp);
    *len = b.len - 1;
    return (char *)b.data;
}
