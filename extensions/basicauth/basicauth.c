/* basicauth.c: the `basicauth` extension, with the collector's keys: a
 * server that names it in `auth.authenticator` lets a request in when its
 * Authorization header is Basic with a user and password of the htpasswd
 * file (`htpasswd.file`, read again when it changes) or text
 * (`htpasswd.inline`).
 *
 * Hashes: whatever libcrypt's crypt_r takes as current (bcrypt $2y$ $2b$
 * $2a$, SHA-crypt $5$ $6$, yescrypt $y$, ...), and {SHA} (base64 of the
 * SHA-1). Refused when the file is loaded, with the line: Apache's $apr1$
 * MD5, plain text, and the legacy DES/MD5 crypt methods.
 *
 * Nothing in the answer or its time tells a wrong user from a wrong
 * password: every user name is compared, and an unknown user's password is
 * still checked, against the first entry's hash. bcrypt is slow on
 * purpose (tens of ms), too slow for every OTLP request, so credentials
 * once verified are remembered as a SHA-256 digest (32 of them, forgotten
 * when the file changes). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "net/auth.h"
#include "htpasswd.h"
#include "pipeline/factory.h"

typedef struct ba_htpasswd {
    const char *file, *inline_text;
} ba_htpasswd;

typedef struct ba_cfg {
    ba_htpasswd htpasswd;
} ba_cfg;

static const ot_key ba_htpasswd_keys[] = {
    {.name = "file", .type = OT_KT_STRING, .offset = offsetof(ba_htpasswd, file),
     .help = "htpasswd file (user:hash lines); read again when it changes"},
    {.name = "inline", .type = OT_KT_STRING, .offset = offsetof(ba_htpasswd, inline_text),
     .flags = OT_KF_SECRET, .help = "htpasswd lines in the config itself"},
    {0},
};

static const ot_key ba_keys[] = {
    {.name = "htpasswd", .type = OT_KT_TABLE, .offset = offsetof(ba_cfg, htpasswd),
     .sub = ba_htpasswd_keys,
     .help = "the users: bcrypt ($2y$), SHA-crypt ($5$, $6$), yescrypt or {SHA} hashes"},
    {0},
};

#define BA_CACHE 32

typedef struct ba {
    ot_auth auth; /* first: the host hands servers this */
    const ba_cfg *cfg;
    pthread_mutex_t mu;
    ot_auth_file file;
    ot_htpasswd_user *users;
    size_t n_users;
    unsigned char cache[BA_CACHE][32];
    bool cached[BA_CACHE];
    unsigned next;
} ba;

/* 1 when new users were taken, 0 unchanged, -1 with err (old ones kept). */
static int load(ba *b, bool force, ot_err *err)
{
    ot_htpasswd_user *u = NULL;
    size_t n = 0;
    char *text = NULL;
    size_t len = 0;
    if (b->cfg->htpasswd.file && *b->cfg->htpasswd.file) {
        ot_err e = {{0}};
        if (!(text = ot_auth_file_read(&b->file, force, &len, &e)))
            return e.msg[0] ? ot_err_set(err, "%s", e.msg) : 0;
        if (ot_htpasswd_parse(text, b->cfg->htpasswd.file, &u, &n, err) < 0)
            goto fail;
    }
    if (b->cfg->htpasswd.inline_text &&
        ot_htpasswd_parse(b->cfg->htpasswd.inline_text, "htpasswd.inline", &u, &n, err) < 0)
        goto fail;
    if (n == 0) {
        ot_err_set(err, "htpasswd: no users");
        goto fail;
    }
    if (text) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    ot_htpasswd_free(b->users, b->n_users);
    b->users = u;
    b->n_users = n;
    memset(b->cached, 0, sizeof b->cached);
    OPENSSL_cleanse(b->cache, sizeof b->cache);
    return 1;
fail:
    if (text) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    ot_htpasswd_free(u, n);
    return -1;
}

static bool ba_check(ot_auth *a, ot_auth_header_fn header, void *ctx)
{
    ba *b = (ba *)a;
    uint8_t plain[768];
    long m = ot_auth_basic_decode(header(ctx, "authorization"), plain, sizeof plain);
    if (m < 0)
        return false;
    const char *colon = memchr(plain, ':', (size_t)m);
    if (!colon) {
        OPENSSL_cleanse(plain, sizeof plain);
        return false;
    }
    size_t ul = (size_t)(colon - (const char *)plain);
    const char *pass = colon + 1;
    size_t pl = (size_t)m - ul - 1;
    unsigned char dg[32];
    unsigned dl = sizeof dg;
    bool have_dg = EVP_Digest(plain, (size_t)m, dg, &dl, EVP_sha256(), NULL) == 1;

    pthread_mutex_lock(&b->mu);
    if (b->cfg->htpasswd.file && *b->cfg->htpasswd.file) {
        ot_err err = {{0}};
        int rc = load(b, false, &err);
        if (rc > 0)
            ot_info("basicauth", "htpasswd reloaded", "file=%s users=%zu",
                    b->cfg->htpasswd.file, b->n_users);
        else if (rc < 0)
            ot_warn("basicauth", "htpasswd not reloaded; the previous users are kept",
                    "err=\"%s\"", err.msg);
    }
    bool hit = false;
    for (int i = 0; i < BA_CACHE; i++)
        hit |= have_dg && b->cached[i] && CRYPTO_memcmp(b->cache[i], dg, 32) == 0;
    size_t found = b->n_users;
    for (size_t i = 0; i < b->n_users; i++)
        if (ot_auth_equal(plain, ul, b->users[i].name, strlen(b->users[i].name)) &&
            found == b->n_users)
            found = i;
    /* an unknown user still costs a hash check */
    char *hash = hit ? NULL : strdup(b->users[found < b->n_users ? found : 0].hash);
    pthread_mutex_unlock(&b->mu);
    if (hit) {
        OPENSSL_cleanse(plain, sizeof plain);
        return true;
    }
    bool ok = hash && ot_htpasswd_verify(pass, pl, hash) && found < b->n_users;
    if (hash) {
        OPENSSL_cleanse(hash, strlen(hash));
        free(hash);
    }
    OPENSSL_cleanse(plain, sizeof plain);
    if (ok && have_dg) {
        pthread_mutex_lock(&b->mu);
        memcpy(b->cache[b->next], dg, 32);
        b->cached[b->next] = true;
        b->next = (b->next + 1) % BA_CACHE;
        pthread_mutex_unlock(&b->mu);
    }
    OPENSSL_cleanse(dg, sizeof dg);
    return ok;
}

static void ba_validate(const void *c, const ot_node *node, const char *path, ot_diags *d)
{
    const ba_cfg *cfg = c;
    if (!(cfg->htpasswd.file && *cfg->htpasswd.file) &&
        !(cfg->htpasswd.inline_text && *cfg->htpasswd.inline_text))
        ot_diag_add(d, OT_SEV_ERROR, node, path, "set htpasswd.file or htpasswd.inline");
}

static void *ba_create(const ot_create_params *p, ot_err *err)
{
    ba *b = calloc(1, sizeof *b);
    if (!b) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    b->cfg = p->config;
    b->auth.check = ba_check;
    b->auth.header = "authorization";
    b->auth.challenge = "Basic realm=\"otelite\", charset=\"UTF-8\"";
    b->file.path = b->cfg->htpasswd.file;
    pthread_mutex_init(&b->mu, NULL);
    if (load(b, true, err) < 0) {
        pthread_mutex_destroy(&b->mu);
        free(b);
        return NULL;
    }
    return b;
}

static void ba_destroy(void *self)
{
    ba *b = self;
    ot_htpasswd_free(b->users, b->n_users);
    pthread_mutex_destroy(&b->mu);
    OPENSSL_cleanse(b->cache, sizeof b->cache);
    free(b);
}

const ot_factory ot_basicauth_extension = {
    .type = "basicauth",
    .kind = OT_EXTENSION,
    .help = "lets requests in with a user and password of an htpasswd file (auth.authenticator)",
    .keys = ba_keys,
    .config_size = sizeof(ba_cfg),
    .validate = ba_validate,
    .create = ba_create,
    .destroy = ba_destroy,
    .authenticator = true,
};
