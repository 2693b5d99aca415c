/* test_http_server.c: net/http_server.h spoken to by libcurl over
 * 127.0.0.1: routing and its refusals, body limits, streamed responses,
 * basic auth, TLS with a certificate made here and replaced on disk, and
 * a bind to a busy port. Also the OpenSSL context reloader of tls.h. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/clock.h"
#include "net/http_server.h"
#include "net/tls.h"

typedef struct resp {
    long status;
    char *body;
    size_t len;
    char head[4096];
    size_t hlen;
    CURLcode rc;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    resp *r = arg;
    char *nb = realloc(r->body, r->len + sz * n + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->len, p, sz * n);
    r->body = nb;
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_head(char *p, size_t sz, size_t n, void *arg)
{
    resp *r = arg;
    size_t k = sz * n;
    if (r->hlen + k < sizeof r->head) {
        memcpy(r->head + r->hlen, p, k);
        r->hlen += k;
        r->head[r->hlen] = '\0';
    }
    return k;
}

typedef struct call {
    const char *method;
    const char *url; /* path after the port */
    const void *body;
    long body_len;
    bool chunked;
    const char *userpwd;
    const char *ca; /* https with this CA file */
    const char *client_cert, *client_key;
} call;

static resp do_call(int port, call c)
{
    resp r = {0};
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    char url[512];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", c.ca ? "https" : "http", port, c.url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    struct curl_slist *hdrs = NULL;
    if (c.method && strcmp(c.method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (c.method)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c.method);
    if (c.body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c.body);
        if (c.chunked)
            hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        else
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, c.body_len);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (c.userpwd) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, c.userpwd);
    }
    if (c.ca) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c.ca);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (c.client_cert) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, c.client_cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, c.client_key);
    }
    r.rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return r;
}

static bool has_header(const resp *r, const char *line)
{
    return strcasestr(r->head, line) != NULL;
}

/* ---- a server with routes ------------------------------------------------------ */

static void hello(ot_http_req *q, void *arg)
{
    const char *who = ot_http_query(q, "who");
    char text[128];
    int n = snprintf(text, sizeof text, "hello %s", who ? who : "world");
    ot_http_resp *r = ot_http_resp_copy(text, (size_t)n);
    ot_http_resp_header(r, "Content-Type", "text/plain");
    ot_http_resp_header(r, "X-Test", "yes");
    ot_http_send(q, 200, r);
}

/* Answers the body's length and its first bytes. */
static void echo(ot_http_req *q, void *arg)
{
    size_t len;
    const uint8_t *b = ot_http_body(q, &len);
    char text[128];
    int n = snprintf(text, sizeof text, "%zu:%.8s", len, b ? (const char *)b : "");
    ot_http_reply(q, 201, "text/plain", text, (size_t)n);
}

#define BIG (5u << 20)

typedef struct gen {
    size_t sent;
    int *released;
} gen;

static ssize_t gen_read(void *ctx, char *buf, size_t cap)
{
    gen *g = ctx;
    size_t n = BIG - g->sent < cap ? BIG - g->sent : cap;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + (g->sent + i) % 26);
    g->sent += n;
    return (ssize_t)n;
}

static int released;

static void gen_free(void *ctx)
{
    gen *g = ctx;
    (*g->released)++;
    free(g);
}

static void big(ot_http_req *q, void *arg)
{
    gen *g = calloc(1, sizeof *g);
    g->released = &released;
    ot_http_send(q, 200, ot_http_resp_stream(-1, gen_read, gen_free, g));
}

static const ot_http_route routes[] = {
    {"GET", "/hello", hello},
    {"POST", "/echo", echo},
    {"PUT", "/echo", echo},
    {"GET", "/big", big},
};

static ot_http_server *start(const ot_http_server_opts *extra, ot_err *err)
{
    ot_endpoint ep = {.host = "127.0.0.1", .port = 0, .text = "127.0.0.1:0"};
    ot_http_server_opts o = {.routes = routes, .n_routes = sizeof routes / sizeof routes[0],
                             .max_body = 1024};
    if (extra) {
        o.basic_auth_user = extra->basic_auth_user;
        o.basic_auth_password = extra->basic_auth_password;
        o.tls = extra->tls;
    }
    return ot_http_server_start(&ep, &o, err);
}

static void free_resp(resp *r)
{
    free(r->body);
}

Test(http_server, routes_404_405)
{
    ot_err err = {{0}};
    ot_http_server *s = start(NULL, &err);
    cr_assert_not_null(s, "%s", err.msg);
    int port = ot_http_server_port(s);
    cr_assert_gt(port, 0);

    resp r = do_call(port, (call){.url = "/hello?who=otelite"});
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "hello otelite");
    cr_assert(has_header(&r, "X-Test: yes"), "%s", r.head);
    free_resp(&r);

    r = do_call(port, (call){.method = "HEAD", .url = "/hello"});
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0);
    free_resp(&r);

    r = do_call(port, (call){.url = "/nope"});
    cr_assert_eq(r.status, 404);
    free_resp(&r);

    r = do_call(port, (call){.method = "DELETE", .url = "/hello"});
    cr_assert_eq(r.status, 405);
    cr_assert(has_header(&r, "Allow: GET, HEAD\r\n"), "%s", r.head);
    free_resp(&r);

    r = do_call(port, (call){.url = "/echo"});
    cr_assert_eq(r.status, 405);
    cr_assert(has_header(&r, "Allow: POST, PUT\r\n"), "%s", r.head);
    free_resp(&r);
    ot_http_server_stop(s, 0);
}

Test(http_server, body_limit_413_then_serves_on)
{
    ot_err err = {{0}};
    ot_http_server *s = start(NULL, &err);
    cr_assert_not_null(s, "%s", err.msg);
    int port = ot_http_server_port(s);
    static char body[4097]; /* NUL-terminated: chunked sends it as a string */
    memset(body, 'x', sizeof body - 1);
    memcpy(body, "abcdefgh", 8);

    resp r = do_call(port, (call){.method = "POST", .url = "/echo", .body = body, .body_len = 1024});
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(r.body, "1024:abcdefgh");
    free_resp(&r);

    /* declared too large: refused before the body is read */
    r = do_call(port, (call){.method = "POST", .url = "/echo", .body = body, .body_len = 1025});
    cr_assert_eq(r.status, 413);
    free_resp(&r);

    /* chunked, so only counting finds it too large */
    r = do_call(port, (call){.method = "POST", .url = "/echo", .body = body, .chunked = true});
    cr_assert_eq(r.status, 413, "status %ld rc %d", r.status, r.rc);
    free_resp(&r);
    r = do_call(port, (call){.method = "PUT", .url = "/echo", .body = "small", .chunked = true});
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(r.body, "5:small");
    free_resp(&r);

    r = do_call(port, (call){.url = "/hello"});
    cr_assert_eq(r.status, 200);
    free_resp(&r);
    ot_http_server_stop(s, 0);
}

Test(http_server, streamed_response_arrives_whole)
{
    ot_err err = {{0}};
    ot_http_server *s = start(NULL, &err);
    cr_assert_not_null(s, "%s", err.msg);
    released = 0;
    resp r = do_call(ot_http_server_port(s), (call){.url = "/big"});
    cr_assert_eq(r.rc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, BIG);
    size_t bad = 0;
    for (size_t i = 0; i < r.len; i++)
        bad += r.body[i] != (char)('a' + i % 26);
    cr_assert_eq(bad, 0);
    free_resp(&r);
    ot_http_server_stop(s, 0);
    cr_assert_eq(released, 1, "the generator was released %d times", released);
}

Test(http_server, basic_auth)
{
    ot_err err = {{0}};
    ot_http_server_opts o = {.basic_auth_user = "scraper", .basic_auth_password = "s3cret:x"};
    ot_http_server *s = start(&o, &err);
    cr_assert_not_null(s, "%s", err.msg);
    int port = ot_http_server_port(s);

    resp r = do_call(port, (call){.url = "/hello", .userpwd = "scraper:s3cret:x"});
    cr_assert_eq(r.status, 200);
    free_resp(&r);

    const char *wrong[] = {"scraper:s3cret", "scraper:s3cret:y", "Scraper:s3cret:x", NULL};
    for (int i = 0; i < 4; i++) {
        r = do_call(port, (call){.url = "/hello", .userpwd = wrong[i]});
        cr_assert_eq(r.status, 401, "%s", wrong[i] ? wrong[i] : "(none)");
        cr_assert(has_header(&r, "WWW-Authenticate: Basic realm=\"otelite\""), "%s", r.head);
        free_resp(&r);
    }
    /* refused before routing: an unknown path says nothing either */
    r = do_call(port, (call){.url = "/nope"});
    cr_assert_eq(r.status, 401);
    free_resp(&r);
    ot_http_server_stop(s, 0);
}

Test(http_server, busy_port_is_one_error_line)
{
    ot_err err = {{0}};
    ot_http_server *s = start(NULL, &err);
    cr_assert_not_null(s, "%s", err.msg);
    char text[64];
    snprintf(text, sizeof text, "127.0.0.1:%d", ot_http_server_port(s));
    ot_endpoint busy = {.host = "127.0.0.1", .port = ot_http_server_port(s), .text = text};
    ot_http_server_opts o = {.routes = routes, .n_routes = 1};
    cr_assert_null(ot_http_server_start(&busy, &o, &err));
    char want[128];
    snprintf(want, sizeof want, "listen %s: Address already in use", text);
    cr_assert_str_eq(err.msg, want);
    cr_assert_null(strchr(err.msg, '\n'));
    ot_http_server_stop(s, 0);
}

/* ---- TLS ------------------------------------------------------------------------- */

static char dir[64];

/* A self-signed certificate for 127.0.0.1 as cert.pem / key.pem in dir
 * (written beside and renamed, as a certificate manager would), and a copy
 * of the certificate as ca<n>.pem for the client to trust. */
static void make_cert(int n)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes -keyout key.new -out cert.new -days 2 -subj /CN=otelite-test-%d "
             "-addext subjectAltName=IP:127.0.0.1 2>/dev/null && cp cert.new ca%d.pem && "
             "mv key.new key.pem && mv cert.new cert.pem",
             dir, n, n);
    cr_assert_eq(system(cmd), 0, "openssl failed");
}

static void tls_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/ot-https-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        cr_log_warn("could not remove %s", dir);
}

static char *path_in(const char *name)
{
    static char p[4][128];
    static int i;
    char *out = p[i++ % 4];
    snprintf(out, 128, "%s/%s", dir, name);
    return out;
}

Test(http_server, tls_and_reload_after_replace)
{
    tls_dir();
    make_cert(1);
    char cert[128], key[128], ca1[128], ca2[128];
    snprintf(cert, sizeof cert, "%s", path_in("cert.pem"));
    snprintf(key, sizeof key, "%s", path_in("key.pem"));
    snprintf(ca1, sizeof ca1, "%s", path_in("ca1.pem"));
    snprintf(ca2, sizeof ca2, "%s", path_in("ca2.pem"));
    ot_tls_server t = {.present = true, .cert_file = cert, .key_file = key,
                       .max_version = 1, .reload_interval = 50000000};
    ot_err err = {{0}};
    ot_http_server_opts o = {.tls = &t};
    ot_http_server *s = start(&o, &err);
    cr_assert_not_null(s, "%s", err.msg);
    int port = ot_http_server_port(s);

    resp r = do_call(port, (call){.url = "/hello", .ca = ca1});
    cr_assert_eq(r.rc, CURLE_OK, "%s", curl_easy_strerror(r.rc));
    cr_assert_eq(r.status, 200);
    free_resp(&r);
    /* plaintext on the TLS port gets nowhere */
    r = do_call(port, (call){.url = "/hello"});
    cr_assert_neq(r.status, 200);
    free_resp(&r);

    /* A new certificate replaces the files; the watcher notices within a
     * few intervals and new connections get it. */
    usleep(20000); /* a different mtime even on coarse clocks */
    make_cert(2);
    int64_t until = ot_now_ns() + 5000000000LL;
    while (ot_http_server_reloads(s) < 1 && ot_now_ns() < until)
        usleep(10000);
    cr_assert_eq(ot_http_server_reloads(s), 1);
    r = do_call(port, (call){.url = "/hello", .ca = ca2});
    cr_assert_eq(r.rc, CURLE_OK, "%s", curl_easy_strerror(r.rc));
    cr_assert_eq(r.status, 200);
    free_resp(&r);
    r = do_call(port, (call){.url = "/hello", .ca = ca1});
    cr_assert_neq(r.rc, CURLE_OK, "the old certificate is still served");
    free_resp(&r);

    /* A broken file is refused and the last good certificate stays. */
    FILE *f = fopen(cert, "w");
    cr_assert_not_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    cr_assert_eq(ot_http_server_reload(s, &err), -1);
    cr_assert(strlen(err.msg) > 0);
    r = do_call(port, (call){.url = "/hello", .ca = ca2});
    cr_assert_eq(r.rc, CURLE_OK, "%s", curl_easy_strerror(r.rc));
    cr_assert_eq(r.status, 200);
    free_resp(&r);
    cr_assert_eq(ot_http_server_reloads(s), 1);
    ot_http_server_stop(s, 0);
    rm_dir();
}

Test(http_server, tls_inline_pem_and_bad_key)
{
    tls_dir();
    make_cert(1);
    FILE *f = fopen(path_in("cert.pem"), "r");
    static char certpem[8192], keypem[8192];
    size_t n = fread(certpem, 1, sizeof certpem - 1, f);
    certpem[n] = '\0';
    fclose(f);
    f = fopen(path_in("key.pem"), "r");
    n = fread(keypem, 1, sizeof keypem - 1, f);
    keypem[n] = '\0';
    fclose(f);
    char ca1[128];
    snprintf(ca1, sizeof ca1, "%s", path_in("ca1.pem"));

    ot_tls_server t = {.present = true, .cert_pem = certpem, .key_pem = keypem, .max_version = 1};
    ot_err err = {{0}};
    ot_http_server_opts o = {.tls = &t};
    ot_http_server *s = start(&o, &err);
    cr_assert_not_null(s, "%s", err.msg);
    resp r = do_call(ot_http_server_port(s), (call){.url = "/hello", .ca = ca1});
    cr_assert_eq(r.status, 200, "%s", curl_easy_strerror(r.rc));
    free_resp(&r);
    ot_http_server_stop(s, 0);

    /* a key of another certificate is one error line at start */
    make_cert(2);
    f = fopen(path_in("key.pem"), "r");
    n = fread(keypem, 1, sizeof keypem - 1, f);
    keypem[n] = '\0';
    fclose(f);
    cr_assert_null(start(&o, &err));
    cr_assert(strstr(err.msg, "does not match"), "%s", err.msg);
    rm_dir();
}

/* A self-signed client certificate client<n>.pem / client<n>.key. */
static void make_client(int n)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-nodes -keyout client%d.key -out client%d.pem -days 2 -subj /CN=client-%d "
             "2>/dev/null",
             dir, n, n, n);
    cr_assert_eq(system(cmd), 0, "openssl failed");
}

Test(http_server, client_certificates_and_client_ca_reload)
{
    tls_dir();
    make_cert(1);
    make_client(1);
    make_client(2);
    char cert[128], key[128], ca1[128], cca[128], c1[128], k1[128], c2[128], k2[128];
    snprintf(cert, sizeof cert, "%s", path_in("cert.pem"));
    snprintf(key, sizeof key, "%s", path_in("key.pem"));
    snprintf(ca1, sizeof ca1, "%s", path_in("ca1.pem"));
    snprintf(cca, sizeof cca, "%s", path_in("clients.pem"));
    snprintf(c1, sizeof c1, "%s", path_in("client1.pem"));
    snprintf(k1, sizeof k1, "%s", path_in("client1.key"));
    snprintf(c2, sizeof c2, "%s", path_in("client2.pem"));
    snprintf(k2, sizeof k2, "%s", path_in("client2.key"));
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp %s %s", c1, cca);
    cr_assert_eq(system(cmd), 0);

    ot_tls_server t = {.present = true, .cert_file = cert, .key_file = key, .max_version = 1,
                       .client_ca_file = cca, .client_ca_file_reload = true};
    ot_err err = {{0}};
    ot_http_server_opts o = {.tls = &t};
    ot_http_server *s = start(&o, &err);
    cr_assert_not_null(s, "%s", err.msg);
    int port = ot_http_server_port(s);

    resp r = do_call(port, (call){.url = "/hello", .ca = ca1, .client_cert = c1, .client_key = k1});
    cr_assert_eq(r.status, 200, "%s", curl_easy_strerror(r.rc));
    free_resp(&r);
    r = do_call(port, (call){.url = "/hello", .ca = ca1});
    cr_assert_eq(r.status, 401, "no client certificate: %ld %s", r.status, curl_easy_strerror(r.rc));
    free_resp(&r);
    r = do_call(port, (call){.url = "/hello", .ca = ca1, .client_cert = c2, .client_key = k2});
    cr_assert_eq(r.status, 401);
    free_resp(&r);

    /* the client CA now trusts the second client only */
    usleep(20000);
    snprintf(cmd, sizeof cmd, "cp %s %s.new && mv %s.new %s", c2, cca, cca, cca);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(ot_http_server_reload(s, &err), 1, "%s", err.msg);
    r = do_call(port, (call){.url = "/hello", .ca = ca1, .client_cert = c2, .client_key = k2});
    cr_assert_eq(r.status, 200, "%s", curl_easy_strerror(r.rc));
    free_resp(&r);
    r = do_call(port, (call){.url = "/hello", .ca = ca1, .client_cert = c1, .client_key = k1});
    cr_assert_eq(r.status, 401);
    free_resp(&r);
    /* nothing changed since: nothing to do */
    cr_assert_eq(ot_http_server_reload(s, &err), 0);
    ot_http_server_stop(s, 0);
    rm_dir();
}

Test(http_server, openssl_reloader_follows_files)
{
    tls_dir();
    make_cert(1);
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s", path_in("cert.pem"));
    snprintf(key, sizeof key, "%s", path_in("key.pem"));
    ot_tls_server t = {.present = true, .cert_file = cert, .key_file = key, .max_version = 1,
                       .reload_interval = 1000000};
    ot_err err = {{0}};
    ot_tls_reloader *rl = ot_tls_reloader_new(&t, "h2", &err);
    cr_assert_not_null(rl, "%s", err.msg);
    SSL_CTX *a = ot_tls_reloader_get(rl);
    SSL_CTX *b = ot_tls_reloader_get(rl);
    cr_assert_eq(a, b, "unchanged files, same context");
    SSL_CTX_free(b);
    usleep(20000);
    make_cert(2);
    usleep(2000);
    SSL_CTX *c = ot_tls_reloader_get(rl);
    cr_assert_neq(c, a);
    cr_assert_eq(ot_tls_reloader_reloads(rl), 1);
    /* the old context lives on for connections that hold it */
    SSL *ssl = SSL_new(a);
    cr_assert_not_null(ssl);
    SSL_free(ssl);
    SSL_CTX_free(a);
    SSL_CTX_free(c);
    ot_tls_reloader_free(rl);
    rm_dir();
}

/* ---- the server tls block's keys ------------------------------------------------- */

static size_t tls_errors(const char *yaml, ot_tls_server *t, char *first, size_t cap)
{
    ot_arena *a = ot_arena_new(0);
    ot_diags d;
    ot_diags_init(&d);
    const ot_node *n = ot_node_parse(a, "t.yaml", yaml, strlen(yaml), &d);
    cr_assert_not_null(n);
    ot_keys_fill(ot_tls_server_keys, ot_node_get(n, "tls"), t, a, "tls", &d);
    t->present = true;
    ot_tls_server_validate(t, n, "tls", &d);
    size_t e = d.errors;
    snprintf(first, cap, "%s", d.n ? d.v[0].msg : "");
    ot_diags_free(&d);
    ot_arena_free(a);
    return e;
}

Test(http_server, tls_keys)
{
    ot_tls_server t = {0};
    char msg[512];
    cr_assert_eq(tls_errors("tls: {cert_file: c, key_file: k, reload_interval: 30s,"
                            " min_version: '1.3'}\n", &t, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(t.reload_interval, 30000000000LL);
    cr_assert_eq(t.min_version, 1);
    cr_assert_eq(t.max_version, 1, "max_version defaults to 1.3");
    cr_assert_eq(ot_tls_server_check_interval(&t), 30000000000LL);

    cr_assert_eq(tls_errors("tls: {cert_file: c, key_file: k, min_version: '1.3',"
                            " max_version: '1.2'}\n", &t, msg, sizeof msg), 1);
    cr_assert(strstr(msg, "max_version"), "%s", msg);
    cr_assert_eq(tls_errors("tls: {cert_pem: c, cert_file: c, key_pem: k}\n", &t, msg, sizeof msg), 1);
    cr_assert(strstr(msg, "not both"), "%s", msg);
    cr_assert_eq(tls_errors("tls: {cert_file: c}\n", &t, msg, sizeof msg), 1);
    cr_assert_eq(tls_errors("tls: {cert_file: c, key_file: k, client_ca_file_reload: true}\n", &t,
                            msg, sizeof msg), 1);
    cr_assert(strstr(msg, "client_ca_file"), "%s", msg);
    cr_assert_eq(tls_errors("tls: {cert_file: c, key_file: k, client_ca_file: ca,"
                            " client_ca_file_reload: true}\n", &t, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(ot_tls_server_check_interval(&t), 1000000000LL);
    cr_assert_eq(tls_errors("tls: {cert_file: c, key_file: k, min_version: '1.1'}\n", &t, msg,
                            sizeof msg), 1);
}
