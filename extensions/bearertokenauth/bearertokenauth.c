/* bearertokenauth.c: the `bearertokenauth` extension, with the
 * collector's keys: a server that names it in `auth.authenticator` lets a
 * request in when its header (Authorization) is the scheme (Bearer), a
 * space and one of the tokens, from `token`, `tokens` or the file
 * `filename` (read again when it changes, so a rotated secret is taken
 * without a reload). The whole header value is compared at once, hashed
 * and in constant time (net/auth.h), so neither the answer nor its time
 * says whether the scheme or the token was wrong. */
#include <ctype.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "net/auth.h"
#include "pipeline/factory.h"

typedef struct bt_cfg {
    const char *header, *scheme, *token, *filename;
    ot_strlist tokens;
} bt_cfg;

static const ot_key bt_keys[] = {
    {.name = "header", .type = OT_KT_STRING, .offset = offsetof(bt_cfg, header),
     .def = "Authorization", .help = "request header that carries the token"},
    {.name = "scheme", .type = OT_KT_STRING, .offset = offsetof(bt_cfg, scheme), .def = "Bearer",
     .help = "word before the token (\"\": the header is the token alone)"},
    {.name = "token", .type = OT_KT_STRING, .offset = offsetof(bt_cfg, token),
     .flags = OT_KF_SECRET, .help = "the token a request must carry"},
    {.name = "tokens", .type = OT_KT_STRLIST, .offset = offsetof(bt_cfg, tokens),
     .flags = OT_KF_SECRET, .help = "several tokens, any of which lets a request in"},
    {.name = "filename", .type = OT_KT_STRING, .offset = offsetof(bt_cfg, filename),
     .help = "file holding the token (one per line); read again when it changes"},
    {0},
};

typedef struct bt {
    ot_auth auth; /* first: the host hands servers this */
    const bt_cfg *cfg;
    char header[128];
    pthread_mutex_t mu;
    ot_auth_file file;
    ot_buf expect; /* "scheme token\0" for each token, one after another */
    size_t n_expect;
} bt;

static void bt_validate(const void *c, const ot_node *node, const char *path, ot_diags *d)
{
    const bt_cfg *cfg = c;
    bool inl = (cfg->token && *cfg->token) || cfg->tokens.n;
    bool file = cfg->filename && *cfg->filename;
    if (!inl && !file)
        ot_diag_add(d, OT_SEV_ERROR, node, path, "set token, tokens or filename");
    else if (inl && file)
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(node, "filename"), path,
                    "filename and token/tokens exclude each other");
    if (!cfg->header || !*cfg->header || strlen(cfg->header) >= 128)
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(node, "header"), path,
                    "header must be a header name of 1 to 127 characters");
}

static void add_expect(ot_buf *b, size_t *n, const char *scheme, const char *tok, size_t len)
{
    if (scheme && *scheme) {
        ot_buf_append(b, scheme, strlen(scheme));
        ot_buf_append(b, " ", 1);
    }
    ot_buf_append(b, tok, len);
    ot_buf_append(b, "", 1);
    (*n)++;
}

static void clear_expect(bt *t)
{
    if (t->expect.data)
        OPENSSL_cleanse(t->expect.data, t->expect.len);
    ot_buf_free(&t->expect);
    t->n_expect = 0;
}

/* Lines of the file, blank ones and surrounding spaces left out. */
static int load_file(bt *t, bool force, ot_err *err)
{
    size_t len = 0;
    ot_err e = {{0}};
    char *text = ot_auth_file_read(&t->file, force, &len, &e);
    if (!text) {
        if (e.msg[0])
            return ot_err_set(err, "%s", e.msg);
        return 0; /* unchanged */
    }
    ot_buf nb = OT_BUF_INIT;
    size_t n = 0;
    for (char *p = text; *p;) {
        size_t l = strcspn(p, "\r\n");
        char *s = p, *e2 = p + l;
        while (s < e2 && isspace((unsigned char)*s))
            s++;
        while (e2 > s && isspace((unsigned char)e2[-1]))
            e2--;
        if (e2 > s)
            add_expect(&nb, &n, t->cfg->scheme, s, (size_t)(e2 - s));
        p += l;
        p += strspn(p, "\r\n");
    }
    OPENSSL_cleanse(text, len);
    free(text);
    if (nb.oom || n == 0) {
        ot_buf_free(&nb);
        return ot_err_set(err, "%s: %s", t->cfg->filename, n ? "out of memory" : "holds no token");
    }
    clear_expect(t);
    t->expect = nb;
    t->n_expect = n;
    return 1;
}

static bool bt_check(ot_auth *a, ot_auth_header_fn header, void *ctx)
{
    bt *t = (bt *)a;
    const char *got = header(ctx, t->header);
    if (!got)
        return false;
    size_t gl = strlen(got);
    pthread_mutex_lock(&t->mu);
    if (t->cfg->filename && *t->cfg->filename) {
        ot_err err = {{0}};
        int rc = load_file(t, false, &err);
        if (rc > 0)
            ot_info("bearertokenauth", "token file reloaded", "file=%s", t->cfg->filename);
        else if (rc < 0)
            ot_warn("bearertokenauth", "token file not reloaded; the previous token is kept",
                    "err=\"%s\"", err.msg);
    }
    /* every token is compared, so the time says nothing of which matched */
    bool ok = false;
    const char *p = (const char *)t->expect.data;
    for (size_t i = 0; i < t->n_expect; i++) {
        size_t l = strlen(p);
        ok |= ot_auth_equal(got, gl, p, l);
        p += l + 1;
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

static void *bt_create(const ot_create_params *p, ot_err *err)
{
    bt *t = calloc(1, sizeof *t);
    if (!t) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    t->cfg = p->config;
    t->auth.check = bt_check;
    t->auth.header = t->header;
    /* header names are looked up in lower case (HTTP/2 sends them so) */
    size_t i = 0;
    for (const char *h = t->cfg->header ? t->cfg->header : "authorization"; *h && i < 127; h++)
        t->header[i++] = (char)tolower((unsigned char)*h);
    pthread_mutex_init(&t->mu, NULL);
    t->file.path = t->cfg->filename;
    if (t->cfg->token && *t->cfg->token)
        add_expect(&t->expect, &t->n_expect, t->cfg->scheme, t->cfg->token, strlen(t->cfg->token));
    for (size_t k = 0; k < t->cfg->tokens.n; k++)
        if (t->cfg->tokens.v[k] && *t->cfg->tokens.v[k])
            add_expect(&t->expect, &t->n_expect, t->cfg->scheme, t->cfg->tokens.v[k],
                       strlen(t->cfg->tokens.v[k]));
    if (t->expect.oom) {
        ot_err_set(err, "out of memory");
        goto fail;
    }
    if (t->cfg->filename && *t->cfg->filename && load_file(t, true, err) < 0)
        goto fail;
    return t;
fail:
    clear_expect(t);
    pthread_mutex_destroy(&t->mu);
    free(t);
    return NULL;
}

static void bt_destroy(void *self)
{
    bt *t = self;
    clear_expect(t);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

const ot_factory ot_bearertokenauth_extension = {
    .type = "bearertokenauth",
    .kind = OT_EXTENSION,
    .help = "lets requests in that carry a bearer token (auth.authenticator of a server)",
    .keys = bt_keys,
    .config_size = sizeof(bt_cfg),
    .validate = bt_validate,
    .create = bt_create,
    .destroy = bt_destroy,
    .authenticator = true,
};
