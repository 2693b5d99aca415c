/* Unit tests for the HTTP client (net/http_client.h) against a loopback
 * HTTP/1.1 peer written here: a socket thread that parses each request as
 * the HTTP/1.1 message syntax says (request line, header fields,
 * Content-Length or chunked body), records it, counts the connections it
 * accepts and answers with what the test scripted, or never answers. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "base/clock.h"
#include "net/http_client.h"

#define SEC 1000000000LL
#define MAX_REQS 8

typedef struct peer_req {
    char method[16];
    char target[256];
    char fields[8192]; /* the header lines, "\r\n" after each */
    uint8_t *body;
    size_t body_len;
} peer_req;

typedef struct peer {
    int lfd;
    int port;
    pthread_t th;
    pthread_mutex_t mu;
    int accepts;
    int nreq;
    peer_req reqs[MAX_REQS];
    char reply[32768]; /* the whole response, sent to every request; "" = never answer */
    size_t reply_len;
    volatile int stop;
} peer;

/* ---- the peer --------------------------------------------------------------- */

/* Waits for readability up to 50 ms at a time while the test runs. */
static int wait_readable(peer *p, int fd)
{
    while (!p->stop) {
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, 50);
        if (r > 0)
            return 0;
    }
    return -1;
}

typedef struct conn_buf {
    char *p;
    size_t len, cap;
} conn_buf;

/* Reads more bytes into b; -1 on close or stop. */
static int fill(peer *p, int fd, conn_buf *b)
{
    if (wait_readable(p, fd) < 0)
        return -1;
    if (b->cap - b->len < 65536) {
        b->cap = b->cap * 2 + 65536;
        b->p = realloc(b->p, b->cap);
    }
    ssize_t n = recv(fd, b->p + b->len, b->cap - b->len - 1, 0);
    if (n <= 0)
        return -1;
    b->len += (size_t)n;
    b->p[b->len] = '\0';
    return 0;
}

static void consume(conn_buf *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    if (b->p)
        b->p[b->len] = '\0';
}

/* The value of a field in a block of header lines (names are
 * case-insensitive, optional whitespace around the value is not part of
 * it); NULL when absent. Writes into out. */
static const char *field(const char *fields, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = fields; *l;) {
        const char *end = strstr(l, "\r\n");
        if (!end)
            break;
        if ((size_t)(end - l) > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = end;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            return out;
        }
        l = end + 2;
    }
    return NULL;
}

/* One request off the connection; -1 when it closed first. */
static int read_request(peer *p, int fd, conn_buf *b, peer_req *r)
{
    char *head_end;
    while (!(head_end = b->p ? strstr(b->p, "\r\n\r\n") : NULL))
        if (fill(p, fd, b) < 0)
            return -1;
    size_t head_len = (size_t)(head_end - b->p) + 4;
    char *line_end = strstr(b->p, "\r\n");
    char version[16] = "";
    *line_end = '\0';
    if (sscanf(b->p, "%15s %255s %15s", r->method, r->target, version) != 3)
        return -1;
    size_t fields_len = head_len - 2 - (size_t)(line_end + 2 - b->p);
    snprintf(r->fields, sizeof r->fields, "%.*s", (int)fields_len, line_end + 2);
    consume(b, head_len);
    char v[64];
    r->body = NULL;
    r->body_len = 0;
    if (field(r->fields, "Transfer-Encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0) {
        for (;;) {
            char *crlf;
            while (!(crlf = b->p ? strstr(b->p, "\r\n") : NULL))
                if (fill(p, fd, b) < 0)
                    return -1;
            size_t n = strtoul(b->p, NULL, 16); /* extensions after ';' are ignored */
            size_t at = (size_t)(crlf - b->p) + 2;
            while (b->len < at + n + 2)
                if (fill(p, fd, b) < 0)
                    return -1;
            if (n == 0) { /* no trailers from libcurl */
                consume(b, at + 2);
                break;
            }
            r->body = realloc(r->body, r->body_len + n);
            memcpy(r->body + r->body_len, b->p + at, n);
            r->body_len += n;
            consume(b, at + n + 2);
        }
    } else if (field(r->fields, "Content-Length", v, sizeof v)) {
        size_t n = strtoul(v, NULL, 10);
        while (b->len < n)
            if (fill(p, fd, b) < 0)
                return -1;
        r->body = malloc(n ? n : 1);
        memcpy(r->body, b->p, n);
        r->body_len = n;
        consume(b, n);
    }
    return 0;
}

static void serve(peer *p, int fd)
{
    conn_buf b = {NULL, 0, 0};
    for (;;) {
        peer_req r;
        memset(&r, 0, sizeof r);
        if (read_request(p, fd, &b, &r) < 0) {
            free(r.body);
            break;
        }
        pthread_mutex_lock(&p->mu);
        if (p->nreq < MAX_REQS)
            p->reqs[p->nreq++] = r;
        else
            free(r.body);
        size_t n = p->reply_len;
        pthread_mutex_unlock(&p->mu);
        if (n && send(fd, p->reply, n, MSG_NOSIGNAL) != (ssize_t)n)
            break;
    }
    free(b.p);
    close(fd);
}

static void *peer_main(void *ud)
{
    peer *p = ud;
    while (wait_readable(p, p->lfd) == 0) {
        int fd = accept(p->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&p->mu);
        p->accepts++;
        pthread_mutex_unlock(&p->mu);
        serve(p, fd);
    }
    return NULL;
}

static int listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 8), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}

static peer *peer_start(void)
{
    peer *p = calloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    p->lfd = listen_loopback(&p->port);
    pthread_create(&p->th, NULL, peer_main, p);
    return p;
}

/* What the peer answers from now on: a status, extra header lines, a body. */
static void peer_reply(peer *p, int status, const char *fields, const char *body, size_t len)
{
    pthread_mutex_lock(&p->mu);
    int n = snprintf(p->reply, sizeof p->reply - len,
                     "HTTP/1.1 %d Scripted\r\nContent-Length: %zu\r\n%s\r\n", status, len,
                     fields ? fields : "");
    memcpy(p->reply + n, body, len);
    p->reply_len = (size_t)n + len;
    pthread_mutex_unlock(&p->mu);
}

static void peer_stop(peer *p)
{
    p->stop = 1;
    pthread_join(p->th, NULL);
    close(p->lfd);
    for (int i = 0; i < p->nreq; i++)
        free(p->reqs[i].body);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ---- helpers ----------------------------------------------------------------- */

static ot_http_client *client(const ot_strmap *headers)
{
    ot_http_client_cfg cfg = {.id = "test", .headers = headers};
    ot_err err = {{0}};
    ot_http_client *c = ot_http_client_new(&cfg, &err);
    cr_assert_not_null(c, "%s", err.msg);
    return c;
}

static ot_http_request post(const char *url, const void *body, size_t len)
{
    return (ot_http_request){.method = OT_HTTP_POST,
                             .url = url,
                             .body = body,
                             .body_len = len,
                             .deadline_ns = ot_now_ns() + 5 * SEC,
                             .max_body = 1 << 20};
}

static uint8_t *pattern(size_t n)
{
    uint8_t *b = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245 + 12345;
        b[i] = (uint8_t)(i % 3 ? x >> 16 : i % 251); /* NULs and high bytes included */
    }
    return b;
}

/* ---- what arrives ---------------------------------------------------------------- */

Test(http_client, post_body_and_headers_arrive_exactly)
{
    peer *p = peer_start();
    peer_reply(p, 200, "Content-Type: text/plain; charset=utf-8\r\n", "fine", 4);
    const char *keys[] = {"X-Default", "X-Empty"}, *vals[] = {"d 1", ""};
    ot_strmap defaults = {keys, vals, 2};
    ot_http_client *c = client(&defaults);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces?x=1", p->port);
    size_t n = 100000;
    uint8_t *body = pattern(n);
    const char *extra[] = {"Content-Type: application/x-protobuf", "X-Extra: e"};
    ot_http_request req = post(url, body, n);
    req.headers = extra;
    req.n_headers = 2;
    ot_buf rb = OT_BUF_INIT;
    ot_http_response r = {.body = &rb};
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.content_type, "text/plain; charset=utf-8");
    cr_expect_eq(rb.len, 4);
    cr_expect_str_eq(rb.data, "fine");
    cr_expect_not(r.truncated);
    cr_expect_not(r.has_retry_after);

    cr_assert_eq(p->nreq, 1);
    peer_req *q = &p->reqs[0];
    char v[256];
    cr_expect_str_eq(q->method, "POST");
    cr_expect_str_eq(q->target, "/v1/traces?x=1");
    cr_assert_eq(q->body_len, n);
    cr_expect_eq(memcmp(q->body, body, n), 0);
    cr_expect_str_eq(field(q->fields, "Content-Type", v, sizeof v), "application/x-protobuf");
    cr_expect_str_eq(field(q->fields, "X-Extra", v, sizeof v), "e");
    cr_expect_str_eq(field(q->fields, "X-Default", v, sizeof v), "d 1");
    cr_expect_str_eq(field(q->fields, "X-Empty", v, sizeof v), "");
    cr_expect_null(field(q->fields, "Content-Encoding", v, sizeof v));
    cr_expect_null(field(q->fields, "Expect", v, sizeof v), "no 100-continue round trip");
    cr_expect_not_null(field(q->fields, "User-Agent", v, sizeof v));
    ot_buf_free(&rb);
    free(body);
    ot_http_client_free(c);
    peer_stop(p);
}

Test(http_client, put_post_and_get_on_one_handle_each_use_their_method)
{
    peer *p = peer_start();
    peer_reply(p, 204, NULL, "", 0);
    ot_http_client *c = client(NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/put", p->port);
    ot_http_request req = post(url, "put body", 8);
    req.method = OT_HTTP_PUT;
    ot_http_response r = {0};
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    cr_expect_eq(r.status, 204);
    req.method = OT_HTTP_POST;
    req.body = "post";
    req.body_len = 4;
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    req.method = OT_HTTP_GET;
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    cr_assert_eq(p->nreq, 3);
    cr_expect_str_eq(p->reqs[0].method, "PUT");
    cr_assert_eq(p->reqs[0].body_len, 8);
    cr_expect_eq(memcmp(p->reqs[0].body, "put body", 8), 0);
    cr_expect_str_eq(p->reqs[1].method, "POST");
    cr_assert_eq(p->reqs[1].body_len, 4);
    cr_expect_eq(memcmp(p->reqs[1].body, "post", 4), 0);
    cr_expect_str_eq(p->reqs[2].method, "GET");
    cr_expect_eq(p->reqs[2].body_len, 0);
    ot_http_client_free(c);
    peer_stop(p);
}

static void send_compressed(ot_compression how, const char *token, peer *p)
{
    ot_http_client *c = client(NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/z", p->port);
    ot_http_request req = post(url, NULL, 0);
    req.compression = how;
    size_t n = 200000;
    uint8_t *body = pattern(n);
    for (size_t i = 0; i < n / 2; i++)
        body[i] = 'a'; /* something to compress */
    req.body = body;
    req.body_len = n;
    ot_http_response r = {0};
    /* twice: the second reuses the handle's compressor */
    for (int round = 0; round < 2; round++) {
        int before = p->nreq;
        cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
        cr_expect_eq(r.status, 200);
        cr_assert_eq(p->nreq, before + 1);
        peer_req *q = &p->reqs[before];
        char v[64];
        cr_expect_str_eq(field(q->fields, "Content-Encoding", v, sizeof v), token);
        cr_expect(q->body_len < n, "%s compressed %zu to %zu", token, n, q->body_len);
        uint8_t *plain = malloc(n + 1);
        size_t got = 0;
        if (how == OT_COMPRESS_ZSTD) {
            got = ZSTD_decompress(plain, n + 1, q->body, q->body_len);
            cr_assert_not(ZSTD_isError(got), "%s", ZSTD_getErrorName(got));
        } else {
            z_stream zs;
            memset(&zs, 0, sizeof zs);
            /* gzip wrapper only for gzip, zlib wrapper only for deflate */
            cr_assert_eq(inflateInit2(&zs, how == OT_COMPRESS_GZIP ? 16 + 15 : 15), Z_OK);
            zs.next_in = q->body;
            zs.avail_in = (uInt)q->body_len;
            zs.next_out = plain;
            zs.avail_out = (uInt)n + 1;
            cr_assert_eq(inflate(&zs, Z_FINISH), Z_STREAM_END);
            got = zs.total_out;
            inflateEnd(&zs);
        }
        cr_assert_eq(got, n);
        cr_expect_eq(memcmp(plain, body, n), 0);
        free(plain);
    }
    free(body);
    ot_http_client_free(c);
}

Test(http_client, gzip_zstd_and_deflate_bodies_decode_with_their_content_encoding)
{
    peer *p = peer_start();
    peer_reply(p, 200, NULL, "", 0);
    send_compressed(OT_COMPRESS_GZIP, "gzip", p);
    send_compressed(OT_COMPRESS_ZSTD, "zstd", p);
    send_compressed(OT_COMPRESS_DEFLATE, "deflate", p);
    peer_stop(p);
}

/* ---- what comes back -------------------------------------------------------------- */

Test(http_client, retry_after_in_seconds_and_as_an_http_date)
{
    peer *p = peer_start();
    ot_http_client *c = client(NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", p->port);
    ot_http_request req = post(url, "x", 1);
    ot_http_response r = {0};

    peer_reply(p, 429, "Retry-After: 7\r\n", "slow down", 9);
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    cr_expect_eq(r.status, 429);
    cr_expect_eq(ot_http_status_outcome(r.status), OT_RETRYABLE);
    cr_assert(r.has_retry_after);
    cr_expect_eq(r.retry_after_ns, 7 * SEC);

    char fields[128], date[64];
    time_t later = time(NULL) + 30;
    struct tm tm;
    gmtime_r(&later, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(fields, sizeof fields, "Retry-After: %s\r\n", date);
    peer_reply(p, 503, fields, "", 0);
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    cr_expect_eq(r.status, 503);
    cr_expect_eq(ot_http_status_outcome(r.status), OT_RETRYABLE);
    cr_assert(r.has_retry_after, "%s", date);
    cr_expect(r.retry_after_ns >= 28 * SEC && r.retry_after_ns <= 30 * SEC, "%lld",
              (long long)r.retry_after_ns);

    peer_reply(p, 503, "Retry-After: whenever\r\n", "", 0);
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    cr_expect_not(r.has_retry_after, "a value that is neither form is ignored");
    ot_http_client_free(c);
    peer_stop(p);
}

Test(http_client, the_response_body_is_kept_up_to_the_limit)
{
    peer *p = peer_start();
    char big[20000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('A' + i % 26);
    peer_reply(p, 400, "Content-Type: text/html\r\n", big, sizeof big);
    ot_http_client *c = client(NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", p->port);
    ot_http_request req = post(url, "x", 1);
    req.max_body = 100;
    ot_buf rb = OT_BUF_INIT;
    ot_http_response r = {.body = &rb};
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    cr_expect_eq(r.status, 400);
    cr_expect_eq(ot_http_status_outcome(r.status), OT_PERMANENT);
    cr_expect_str_eq(r.content_type, "text/html");
    cr_assert_eq(rb.len, 100);
    cr_expect_eq(memcmp(rb.data, big, 100), 0);
    cr_expect(r.truncated);
    /* the whole body was read off the wire: the connection serves the next */
    req.max_body = sizeof big;
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    cr_expect_eq(rb.len, sizeof big);
    cr_expect_not(r.truncated);
    cr_expect_eq(p->accepts, 1);
    ot_buf_free(&rb);
    ot_http_client_free(c);
    peer_stop(p);
}

/* ---- when there is no answer --------------------------------------------------------- */

Test(http_client, a_server_that_never_answers_fails_at_the_deadline)
{
    peer *p = peer_start(); /* no reply scripted: reads and stays silent */
    ot_http_client *c = client(NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", p->port);
    ot_http_request req = post(url, "x", 1);
    int64_t t0 = ot_now_ns();
    req.deadline_ns = t0 + 300000000LL;
    ot_http_response r = {0};
    cr_assert_eq(ot_http_client_do(c, &req, &r), -1);
    int64_t took = ot_now_ns() - t0;
    cr_expect(took >= 250000000LL && took < 3 * SEC, "took %lld ns", (long long)took);
    cr_expect_eq(r.status, 0);
    cr_expect_not(r.permanent, "a timeout may pass");
    cr_expect(strstr(r.error, url) != NULL, "%s", r.error);
    cr_expect(strcasestr(r.error, "timed out") || strcasestr(r.error, "timeout"), "%s", r.error);
    cr_expect_eq(p->nreq, 1, "the request did arrive");

    /* a deadline already past sends nothing */
    req.deadline_ns = ot_now_ns() - 1;
    cr_assert_eq(ot_http_client_do(c, &req, &r), -1);
    cr_expect(strstr(r.error, "deadline") != NULL, "%s", r.error);
    ot_http_client_free(c);
    peer_stop(p);
}

Test(http_client, connection_refused_says_so)
{
    int port;
    int fd = listen_loopback(&port);
    close(fd); /* nothing listens there now */
    ot_http_client *c = client(NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/logs", port);
    ot_http_request req = post(url, "x", 1);
    ot_http_response r = {0};
    cr_assert_eq(ot_http_client_do(c, &req, &r), -1);
    cr_expect_eq(r.status, 0);
    cr_expect_not(r.permanent, "the server may come back");
    char want[160];
    snprintf(want, sizeof want, "POST %s: ", url);
    cr_expect(strncmp(r.error, want, strlen(want)) == 0, "%s", r.error);
    cr_expect(strcasestr(r.error, "connect") != NULL, "%s", r.error);

    /* a URL no retry can fix is permanent */
    req.url = "nosuch://127.0.0.1/";
    cr_assert_eq(ot_http_client_do(c, &req, &r), -1);
    cr_expect(r.permanent, "%s", r.error);
    ot_http_client_free(c);
}

Test(http_client, two_requests_in_a_row_reuse_one_connection)
{
    peer *p = peer_start();
    peer_reply(p, 200, NULL, "{}", 2);
    ot_http_client *c = client(NULL);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/a", p->port);
    ot_http_request req = post(url, "one", 3);
    ot_http_response r = {0};
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    req.body = "two";
    cr_assert_eq(ot_http_client_do(c, &req, &r), 0, "%s", r.error);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(p->nreq, 2);
    cr_expect_eq(p->accepts, 1, "keep-alive: one connection for both");
    ot_http_client_free(c);
    peer_stop(p);
}
