/* test_grpc_client.c: the gRPC client (net/grpc_client.h) against a peer
 * written here with nghttp2's server API on a raw loopback socket (h2c with
 * prior knowledge, or TLS with certificates the openssl CLI makes in a
 * temporary directory), so what the client sends and how it reads answers
 * is checked against code that shares nothing with the agent's server. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/grpc_client.h"

#define SEC 1000000000LL

enum { ECHO, FAIL_RETRY_INFO, SILENT };

/* ---- the peer ------------------------------------------------------------- */

typedef struct peer {
    int lfd, port;
    SSL_CTX *ssl; /* NULL: h2c */
    int mode;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu; /* what the last request carried */
    char path[256], md_default[64], md_call[64];
    uint8_t body[4096];
    size_t body_len;
    int requests;
} peer;

typedef struct pconn {
    peer *p;
    int fd;
    SSL *ssl;
    nghttp2_session *s;
} pconn;

typedef struct preq {
    char path[256], md_default[64], md_call[64];
    uint8_t in[4096];
    size_t in_len;
    uint8_t out[4200];
    size_t out_len, out_off;
} preq;

static ssize_t p_send(nghttp2_session *s, const uint8_t *d, size_t n, int fl, void *ud)
{
    pconn *c = ud;
    ssize_t w = c->ssl ? SSL_write(c->ssl, d, (int)n) : send(c->fd, d, n, MSG_NOSIGNAL);
    return w > 0 ? w : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int p_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        nghttp2_session_set_stream_user_data(s, f->hd.stream_id, calloc(1, sizeof(preq)));
    return 0;
}

static void copy_val(char *dst, size_t cap, const uint8_t *v, size_t n)
{
    n = n < cap - 1 ? n : cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int p_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                    const uint8_t *v, size_t vl, uint8_t flags, void *ud)
{
    preq *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!r)
        return 0;
    if (nl == 5 && !memcmp(name, ":path", 5))
        copy_val(r->path, sizeof r->path, v, vl);
    else if (nl == 9 && !memcmp(name, "x-default", 9))
        copy_val(r->md_default, sizeof r->md_default, v, vl);
    else if (nl == 6 && !memcmp(name, "x-call", 6))
        copy_val(r->md_call, sizeof r->md_call, v, vl);
    return 0;
}

static int p_chunk(nghttp2_session *s, uint8_t fl, int32_t id, const uint8_t *d, size_t n, void *ud)
{
    preq *r = nghttp2_session_get_stream_user_data(s, id);
    if (r && r->in_len + n <= sizeof r->in) {
        memcpy(r->in + r->in_len, d, n);
        r->in_len += n;
    }
    return 0;
}

static ssize_t p_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                      nghttp2_data_source *src, void *ud)
{
    preq *r = src->ptr;
    size_t n = r->out_len - r->out_off < len ? r->out_len - r->out_off : len;
    memcpy(buf, r->out + r->out_off, n);
    r->out_off += n;
    if (r->out_off == r->out_len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv tr[] = {{(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0}};
        nghttp2_submit_trailer(s, id, tr, 1);
    }
    return (ssize_t)n;
}

static size_t varint(uint8_t *o, uint64_t v)
{
    size_t n = 0;
    do {
        o[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* google.rpc.Status{code 8, message "m", details [Any{RetryInfo{2.5 s}}]},
 * written out field by field. */
static size_t status_with_retry_info(uint8_t *o)
{
    static const char url[] = "type.googleapis.com/google.rpc.RetryInfo";
    uint8_t dur[16], ri[24], any[96];
    size_t dn = 0, rn = 0, an = 0, n = 0;
    dur[dn++] = 0x08, dn += varint(dur + dn, 2);         /* seconds */
    dur[dn++] = 0x10, dn += varint(dur + dn, 500000000); /* nanos */
    ri[rn++] = 0x0a, ri[rn++] = (uint8_t)dn;
    memcpy(ri + rn, dur, dn), rn += dn;
    any[an++] = 0x0a, any[an++] = sizeof url - 1;
    memcpy(any + an, url, sizeof url - 1), an += sizeof url - 1;
    any[an++] = 0x12, any[an++] = (uint8_t)rn;
    memcpy(any + an, ri, rn), an += rn;
    o[n++] = 0x08, o[n++] = 8;
    o[n++] = 0x12, o[n++] = 1, o[n++] = 'm';
    o[n++] = 0x1a, o[n++] = (uint8_t)an;
    memcpy(o + n, any, an), n += an;
    return n;
}

static void p_answer(pconn *c, int32_t id, preq *r)
{
    peer *p = c->p;
    pthread_mutex_lock(&p->mu);
    snprintf(p->path, sizeof p->path, "%s", r->path);
    snprintf(p->md_default, sizeof p->md_default, "%s", r->md_default);
    snprintf(p->md_call, sizeof p->md_call, "%s", r->md_call);
    memcpy(p->body, r->in, r->in_len);
    p->body_len = r->in_len;
    p->requests++;
    pthread_mutex_unlock(&p->mu);
    if (p->mode == SILENT)
        return;
    if (p->mode == FAIL_RETRY_INFO) {
        uint8_t st[128];
        char b64[200];
        size_t n = status_with_retry_info(st);
        int bl = EVP_EncodeBlock((unsigned char *)b64, st, (int)n);
        while (bl > 0 && b64[bl - 1] == '=') /* gRPC sends it unpadded */
            bl--;
        nghttp2_nv h[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
            {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
            {(uint8_t *)"grpc-status", (uint8_t *)"8", 11, 1, 0},
            {(uint8_t *)"grpc-message", (uint8_t *)"slow%20down", 12, 11, 0},
            {(uint8_t *)"grpc-status-details-bin", (uint8_t *)b64, 23, (size_t)bl, 0},
        };
        nghttp2_submit_response(c->s, id, h, 5, NULL);
        return;
    }
    /* The reply: "reply:" and the request message, in a fresh prefix. */
    size_t m = r->in_len >= 5 ? r->in_len - 5 : 0;
    size_t out = 6 + m;
    r->out[0] = 0;
    r->out[1] = (uint8_t)(out >> 24), r->out[2] = (uint8_t)(out >> 16);
    r->out[3] = (uint8_t)(out >> 8), r->out[4] = (uint8_t)out;
    memcpy(r->out + 5, "reply:", 6);
    memcpy(r->out + 11, r->in + 5, m);
    r->out_len = 5 + out;
    nghttp2_nv h[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
    };
    nghttp2_data_provider prd = {.source.ptr = r, .read_callback = p_body};
    nghttp2_submit_response(c->s, id, h, 2, &prd);
}

static int p_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        preq *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (r)
            p_answer(ud, f->hd.stream_id, r);
    }
    return 0;
}

static int p_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    free(nghttp2_session_get_stream_user_data(s, id));
    return 0;
}

static void p_serve(peer *p, int fd)
{
    pconn c = {.p = p, .fd = fd};
    if (p->ssl) {
        c.ssl = SSL_new(p->ssl);
        SSL_set_fd(c.ssl, fd);
        if (SSL_accept(c.ssl) != 1) { /* e.g. the client refused our certificate */
            SSL_free(c.ssl);
            ERR_clear_error();
            return;
        }
    }
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, p_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, p_begin);
    nghttp2_session_callbacks_set_on_header_callback(cb, p_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, p_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, p_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, p_close);
    nghttp2_session_server_new(&c.s, cb, &c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c.s, NGHTTP2_FLAG_NONE, NULL, 0);
    uint8_t buf[16384];
    while (!atomic_load(&p->stop)) {
        if (nghttp2_session_send(c.s) != 0)
            break;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (!(c.ssl && SSL_pending(c.ssl)) && poll(&pf, 1, 20) <= 0)
            continue;
        ssize_t n = c.ssl ? SSL_read(c.ssl, buf, sizeof buf) : recv(fd, buf, sizeof buf, 0);
        if (n <= 0 || nghttp2_session_mem_recv(c.s, buf, (size_t)n) < 0)
            break;
    }
    nghttp2_session_del(c.s);
    if (c.ssl)
        SSL_free(c.ssl);
}

static void *p_main(void *arg)
{
    peer *p = arg;
    while (!atomic_load(&p->stop)) {
        struct pollfd pf = {.fd = p->lfd, .events = POLLIN};
        if (poll(&pf, 1, 20) <= 0)
            continue;
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        p_serve(p, fd);
        close(fd);
    }
    return NULL;
}

static int p_alpn(SSL *s, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                  unsigned inlen, void *arg)
{
    for (unsigned i = 0; i + 1 <= inlen; i += 1u + in[i])
        if (in[i] == 2 && i + 3 <= inlen && !memcmp(in + i + 1, "h2", 2)) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_NOACK;
}

static void peer_start(peer *p, int mode, const char *cert, const char *key)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    pthread_mutex_init(&p->mu, NULL);
    if (cert) {
        p->ssl = SSL_CTX_new(TLS_server_method());
        cr_assert_eq(SSL_CTX_use_certificate_chain_file(p->ssl, cert), 1);
        cr_assert_eq(SSL_CTX_use_PrivateKey_file(p->ssl, key, SSL_FILETYPE_PEM), 1);
        SSL_CTX_set_alpn_select_cb(p->ssl, p_alpn, NULL);
    }
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(p->lfd, (struct sockaddr *)&a, &l);
    p->port = ntohs(a.sin_port);
    cr_assert_eq(listen(p->lfd, 8), 0);
    pthread_create(&p->th, NULL, p_main, p);
}

static void peer_stop(peer *p)
{
    atomic_store(&p->stop, true);
    pthread_join(p->th, NULL);
    close(p->lfd);
    if (p->ssl)
        SSL_CTX_free(p->ssl);
}

/* ---- the client ----------------------------------------------------------- */

static ot_grpc_client *client(int port, ot_grpc_client_cfg *cfg, ot_tls_client *tls, bool use_tls,
                              const ot_strmap *md)
{
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    memset(cfg, 0, sizeof *cfg);
    tls->insecure = !use_tls;
    cfg->id = "test";
    cfg->tls = tls;
    cfg->metadata = md;
    ot_log_set_level(OT_LOG_ERROR); /* expected failures are not news */
    ot_err e = {{0}};
    cr_assert_eq(ot_grpc_target_parse(ep, !use_tls, &cfg->target, &e), 0, "%s", e.msg);
    ot_grpc_client *g = ot_grpc_client_new(cfg, &e);
    cr_assert(g, "%s", e.msg);
    cr_assert_eq(ot_grpc_client_start(g, &e), 0, "%s", e.msg);
    return g;
}

Test(grpc_client, unary_call_to_any_method_carries_bytes_and_metadata)
{
    peer p;
    peer_start(&p, ECHO, NULL, NULL);
    static const char *dk[] = {"X-Default"}, *dv[] = {"d1"}, *ck[] = {"x-call"}, *cv[] = {"c1"};
    ot_strmap def = {dk, dv, 1}, per = {ck, cv, 1};
    ot_grpc_client_cfg cfg;
    ot_tls_client tls = {0};
    ot_grpc_client *g = client(p.port, &cfg, &tls, false, &def);
    const uint8_t msg[] = {0x0a, 0x03, 'a', 0x00, 'b', 0xff};
    ot_buf resp = OT_BUF_INIT;
    ot_grpc_reply r = {.resp = &resp};
    ot_grpc_client_call(g, "/test.Echo/Say", msg, sizeof msg, false, ot_now_ns() + 5 * SEC, &per,
                        &r);
    cr_expect_eq(r.code, OT_GRPC_OK, "%d %s", r.code, r.msg);
    cr_expect_not(r.has_details);
    cr_assert_eq(resp.len, 6 + sizeof msg);
    cr_expect_eq(memcmp(resp.data, "reply:", 6), 0);
    cr_expect_eq(memcmp(resp.data + 6, msg, sizeof msg), 0);
    pthread_mutex_lock(&p.mu);
    cr_expect_str_eq(p.path, "/test.Echo/Say");
    cr_expect_str_eq(p.md_default, "d1");
    cr_expect_str_eq(p.md_call, "c1");
    /* The exact bytes: uncompressed flag, big-endian length, the message. */
    cr_assert_eq(p.body_len, 5 + sizeof msg);
    const uint8_t prefix[5] = {0, 0, 0, 0, sizeof msg};
    cr_expect_eq(memcmp(p.body, prefix, 5), 0);
    cr_expect_eq(memcmp(p.body + 5, msg, sizeof msg), 0);
    pthread_mutex_unlock(&p.mu);
    cr_expect_eq(ot_grpc_client_ready(g), 1);
    /* Without per-call metadata the next call carries the default only. */
    ot_grpc_client_call(g, "/other.Svc/M", msg, 2, false, ot_now_ns() + 5 * SEC, NULL, &r);
    cr_expect_eq(r.code, OT_GRPC_OK, "%d %s", r.code, r.msg);
    pthread_mutex_lock(&p.mu);
    cr_expect_str_eq(p.path, "/other.Svc/M");
    cr_expect_str_eq(p.md_call, "");
    cr_expect_eq(p.requests, 2);
    pthread_mutex_unlock(&p.mu);
    ot_grpc_client_free(g);
    peer_stop(&p);
    ot_buf_free(&resp);
}

Test(grpc_client, status_message_and_retry_info_are_decoded)
{
    peer p;
    peer_start(&p, FAIL_RETRY_INFO, NULL, NULL);
    ot_grpc_client_cfg cfg;
    ot_tls_client tls = {0};
    ot_grpc_client *g = client(p.port, &cfg, &tls, false, NULL);
    ot_buf resp = OT_BUF_INIT;
    ot_grpc_reply r = {.resp = &resp};
    ot_grpc_client_call(g, "/test.Echo/Say", (const uint8_t *)"x", 1, false, ot_now_ns() + 5 * SEC,
                        NULL, &r);
    cr_expect_eq(r.code, OT_GRPC_RESOURCE_EXHAUSTED, "%d %s", r.code, r.msg);
    cr_expect_str_eq(r.msg, "slow down");
    cr_assert(r.has_details);
    cr_expect_eq(r.details.code, 8);
    cr_expect_str_eq(r.details.msg, "m");
    cr_expect(r.details.has_retry_info);
    cr_expect_eq(r.details.retry_delay_ns, 2500000000LL);
    cr_expect_eq(resp.len, 0);
    ot_grpc_client_free(g);
    peer_stop(&p);
    ot_buf_free(&resp);
}

Test(grpc_client, a_passed_deadline_is_deadline_exceeded)
{
    peer p;
    peer_start(&p, SILENT, NULL, NULL);
    ot_grpc_client_cfg cfg;
    ot_tls_client tls = {0};
    ot_grpc_client *g = client(p.port, &cfg, &tls, false, NULL);
    ot_grpc_reply r = {0};
    int64_t t0 = ot_now_ns();
    ot_grpc_client_call(g, "/test.Echo/Say", (const uint8_t *)"x", 1, false, t0 + SEC / 5, NULL, &r);
    int64_t took = ot_now_ns() - t0;
    cr_expect_eq(r.code, OT_GRPC_DEADLINE_EXCEEDED, "%d %s", r.code, r.msg);
    cr_expect(took >= SEC / 5 && took < 2 * SEC, "took %lld ns", (long long)took);
    pthread_mutex_lock(&p.mu);
    cr_expect_eq(p.requests, 1, "the request reached the peer");
    pthread_mutex_unlock(&p.mu);
    ot_grpc_client_free(g);
    peer_stop(&p);
}

Test(grpc_client, nobody_listening_is_unavailable_at_once)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0); /* bound, not listening */
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    ot_grpc_client_cfg cfg;
    ot_tls_client tls = {0};
    ot_grpc_client *g = client(ntohs(a.sin_port), &cfg, &tls, false, NULL);
    ot_grpc_reply r = {0};
    int64_t t0 = ot_now_ns();
    ot_grpc_client_call(g, "/test.Echo/Say", (const uint8_t *)"x", 1, false, t0 + 10 * SEC, NULL,
                        &r);
    cr_expect_eq(r.code, OT_GRPC_UNAVAILABLE, "%d %s", r.code, r.msg);
    cr_expect(ot_now_ns() - t0 < SEC, "did not fail fast");
    cr_expect_eq(ot_grpc_client_ready(g), 0);
    ot_grpc_client_free(g);
    close(fd);
}

/* ---- TLS ------------------------------------------------------------------ */

static void sh(const char *dir, const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd %s && %s >/dev/null 2>&1", dir, cmd);
    cr_assert_eq(system(full), 0, "%s", cmd);
}

/* Two CAs; the server's certificate (IP 127.0.0.1) is signed by the second. */
static void make_certs(char *dir)
{
    strcpy(dir, "/tmp/otelite-grpcc-XXXXXX");
    cr_assert(mkdtemp(dir));
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    char cmd[512];
    for (int i = 1; i <= 2; i++) {
        snprintf(cmd, sizeof cmd, "openssl req -x509 %s -keyout ca%d.key -out ca%d.pem -subj /CN=ca%d -days 2",
                 ec, i, i, i);
        sh(dir, cmd);
    }
    snprintf(cmd, sizeof cmd, "openssl req %s -keyout srv.key -out srv.csr -subj /CN=127.0.0.1", ec);
    sh(dir, cmd);
    sh(dir, "printf 'subjectAltName=IP:127.0.0.1\\n' > ext && openssl x509 -req -in srv.csr -CA ca2.pem "
            "-CAkey ca2.key -CAcreateserial -out srv.pem -days 2 -extfile ext");
}

/* A TLS peer with the second CA's certificate; ca names trust.pem in dir,
 * which holds the first CA. */
static void tls_peer(peer *p, char *dir, char *ca)
{
    char cert[128], key[128];
    make_certs(dir);
    snprintf(cert, sizeof cert, "%s/srv.pem", dir);
    snprintf(key, sizeof key, "%s/srv.key", dir);
    snprintf(ca, 128, "%s/trust.pem", dir);
    sh(dir, "cp ca1.pem trust.pem");
    peer_start(p, ECHO, cert, key);
}

Test(grpc_client, tls_reload_interval_picks_up_a_replaced_ca_file)
{
    char dir[64], ca[128];
    peer p;
    tls_peer(&p, dir, ca); /* trusting the wrong CA first */
    ot_grpc_client_cfg cfg;
    ot_tls_client tls = {.ca_file = ca, .reload_interval = SEC / 10};
    ot_grpc_client *g = client(p.port, &cfg, &tls, true, NULL);
    ot_buf resp = OT_BUF_INIT;
    ot_grpc_reply r = {.resp = &resp};
    ot_grpc_client_call(g, "/test.Echo/Say", (const uint8_t *)"hi", 2, false,
                        ot_now_ns() + 5 * SEC, NULL, &r);
    cr_expect_eq(r.code, OT_GRPC_UNAVAILABLE, "%d %s", r.code, r.msg);
    cr_expect(strstr(r.msg, "verify"), "%s", r.msg);
    /* A new file in place, as configuration management writes one. */
    sh(dir, "cp ca2.pem trust.new && mv trust.new trust.pem");
    int64_t end = ot_now_ns() + 8 * SEC;
    do {
        usleep(100000);
        ot_grpc_client_call(g, "/test.Echo/Say", (const uint8_t *)"hi", 2, false,
                            ot_now_ns() + SEC, NULL, &r);
    } while (r.code != OT_GRPC_OK && ot_now_ns() < end);
    cr_expect_eq(r.code, OT_GRPC_OK, "%d %s", r.code, r.msg);
    cr_assert_eq(resp.len, 8);
    cr_expect_eq(memcmp(resp.data, "reply:hi", 8), 0);
    ot_grpc_client_free(g);
    peer_stop(&p);
    ot_buf_free(&resp);
    sh(dir, "rm -rf \"$PWD\"");
}

Test(grpc_client, without_reload_interval_the_files_are_read_once)
{
    char dir[64], ca[128];
    peer p;
    tls_peer(&p, dir, ca); /* trusting the wrong CA first */
    ot_grpc_client_cfg cfg;
    ot_tls_client tls = {.ca_file = ca};
    ot_grpc_client *g = client(p.port, &cfg, &tls, true, NULL);
    ot_grpc_reply r = {0};
    sh(dir, "cp ca2.pem trust.new && mv trust.new trust.pem");
    /* Past the first reconnect backoff (1 s, jitter 0.2): a new connection
     * is made, with the context of the old file. */
    int64_t end = ot_now_ns() + 2 * SEC;
    int ok = 0;
    while (ot_now_ns() < end) {
        ot_grpc_client_call(g, "/test.Echo/Say", (const uint8_t *)"hi", 2, false,
                            ot_now_ns() + SEC / 2, NULL, &r);
        ok += r.code == OT_GRPC_OK;
        usleep(100000);
    }
    cr_expect_eq(ok, 0);
    cr_expect_eq(r.code, OT_GRPC_UNAVAILABLE, "%d %s", r.code, r.msg);
    ot_grpc_client_free(g);
    peer_stop(&p);
    sh(dir, "rm -rf \"$PWD\"");
}
