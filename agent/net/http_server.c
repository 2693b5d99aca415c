/* http_server.c: the agent's HTTP servers on libmicrohttpd (see
 * http_server.h): one listening socket of ours, daemons that serve it,
 * routing or a self-routing stream handler, basic auth, client
 * certificates, and TLS files reloaded while serving.
 *
 * Reloading. libmicrohttpd does TLS with GnuTLS inside the library and
 * takes the certificate, key and client CA once, when a daemon starts. Of
 * the two ways to change them while serving we take the one that needs
 * nothing outside the library's public API: start a second daemon with the
 * new files on a dup of the same listening socket, then quiesce the old one
 * (it stops accepting; its connections finish) and stop it once it has no
 * connections left (or after a grace period). A bad new file fails the new
 * daemon's start, so the old one simply keeps serving: there is no moment
 * without a listener and no state to roll back. GnuTLS's certificate
 * callback would avoid the second daemon but cannot change the client CA
 * the library verifies against, and would tie us to GnuTLS's own types. */
#include "net/http_server.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "net/auth.h"
#include "net/http_guard.h"
#include "net/listen.h"

typedef struct retired {
    struct MHD_Daemon *mhd;
    ot_tls_server_pems pems;
    int64_t since;
    struct retired *next;
} retired;

struct ot_http_server {
    ot_http_server_opts o;
    int fd, port;
    bool ipv6, tls, need_client_cert, auth;
    unsigned char auth_digest[32];
    char auth_challenge[160];

    pthread_mutex_t mu; /* the daemons, the files' stamp */
    struct MHD_Daemon *mhd;
    ot_tls_server_pems pems; /* the accepting daemon's */
    uint64_t stamp;
    retired *old;
    atomic_uint reloads;
    atomic_int active; /* requests begun, not yet completed */

    pthread_t watcher;
    bool watching, stopping;
    pthread_cond_t cv;
    ot_http_guard *guard; /* counts, evicts, enforces the deadline */
};

struct ot_http_req {
    ot_http_server *s;
    struct MHD_Connection *c;
    ot_http_gconn *gc;
    const char *method, *path;
    const ot_http_route *route;
    uint8_t *body;
    size_t len, cap, discarded;
    uint64_t received; /* body bytes, as they came (a stream's too) */
    bool too_large, replied, queued, aborted;
    const char *extra_name, *extra_value; /* Allow or WWW-Authenticate of a refusal */
    alignas(max_align_t) unsigned char state[];
};

/* ---- responses -------------------------------------------------------------- */

/* An ot_http_resp is the library's response itself (http_resp.c). */
static struct MHD_Response *mhd_resp(ot_http_resp *r)
{
    return (struct MHD_Response *)r;
}

int ot_http_send(ot_http_req *q, unsigned status, ot_http_resp *r)
{
    if (q->replied) {
        if (r)
            MHD_destroy_response(mhd_resp(r));
        return -1;
    }
    q->replied = true;
    if (!r)
        return -1;
    if (!ot_http_guard_answer(q->s->guard, q->gc)) {
        /* the guard answered 408 and closed it already */
        MHD_destroy_response(mhd_resp(r));
        return -1;
    }
    if (q->extra_name)
        MHD_add_response_header(mhd_resp(r), q->extra_name, q->extra_value);
    q->queued = MHD_queue_response(q->c, status, mhd_resp(r)) == MHD_YES;
    MHD_destroy_response(mhd_resp(r));
    return q->queued ? 0 : -1;
}

int ot_http_reply(ot_http_req *q, unsigned status, const char *ctype, const void *body,
                  size_t len)
{
    ot_http_resp *r = ot_http_resp_copy(body, len);
    if (r && ctype)
        ot_http_resp_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    return ot_http_send(q, status, r);
}

bool ot_http_replied(const ot_http_req *q)
{
    return q->replied;
}

/* ---- the request ---------------------------------------------------------------- */

const char *ot_http_method(const ot_http_req *q)
{
    return q->method;
}

const char *ot_http_path(const ot_http_req *q)
{
    return q->path;
}

const char *ot_http_header(const ot_http_req *q, const char *name)
{
    return MHD_lookup_connection_value(q->c, MHD_HEADER_KIND, name);
}

const char *ot_http_query(const ot_http_req *q, const char *name)
{
    return MHD_lookup_connection_value(q->c, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct each_ctx {
    bool (*fn)(void *ctx, const char *name, const char *value);
    void *ctx;
} each_ctx;

static enum MHD_Result each_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    each_ctx *e = cls;
    return e->fn(e->ctx, key, value ? value : "") ? MHD_YES : MHD_NO;
}

void ot_http_each_header(const ot_http_req *q,
                         bool (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    each_ctx e = {fn, ctx};
    MHD_get_connection_values(q->c, MHD_HEADER_KIND, each_value, &e);
}

const struct sockaddr *ot_http_peer(const ot_http_req *q)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(q->c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci ? ci->client_addr : NULL;
}

const uint8_t *ot_http_body(const ot_http_req *q, size_t *len)
{
    *len = q->len;
    return q->len ? q->body : NULL;
}

void *ot_http_req_state(ot_http_req *q)
{
    return q->state;
}

/* ---- what every server refuses the same way ---------------------------------- */

static void refuse(ot_http_req *q, unsigned status, const char *msg, const char *hname,
                   const char *hvalue)
{
    ot_http_server *s = q->s;
    q->extra_name = hname;
    q->extra_value = hvalue;
    if (s->o.refuse) {
        s->o.refuse(q, status, msg, s->o.arg);
        if (q->replied)
            return;
    }
    char text[256];
    int n = snprintf(text, sizeof text, "%s\n", msg);
    ot_http_reply(q, status, "text/plain; charset=utf-8", text,
                  n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n);
}

/* Debian's libmicrohttpd does TLS with GnuTLS and only asks for a client
 * certificate; checking it takes one GnuTLS call. The library is loaded
 * already (libmicrohttpd needs it), so the call is looked up at run time
 * rather than adding a link dependency for one function. */
typedef int (*verify_peers_fn)(void *session, unsigned *status);

static bool client_cert_ok(struct MHD_Connection *c)
{
    static _Atomic(verify_peers_fn) verify;
    verify_peers_fn v = atomic_load(&verify);
    if (!v) {
        v = (verify_peers_fn)dlsym(RTLD_DEFAULT, "gnutls_certificate_verify_peers2");
        atomic_store(&verify, v);
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!v || !ci || !ci->tls_session)
        return false;
    unsigned status = 1;
    return v(ci->tls_session, &status) == 0 && status == 0;
}

static void sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned len = 32;
    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1)
        memset(out, 0, 32);
}

/* Both sides are hashed, so the compare runs over 32 bytes whatever was
 * sent and its time says nothing about the password. */
static bool basic_auth_ok(ot_http_req *q)
{
    uint8_t plain[768];
    long m = ot_auth_basic_decode(ot_http_header(q, MHD_HTTP_HEADER_AUTHORIZATION), plain,
                                  sizeof plain);
    if (m < 0)
        return false;
    unsigned char got[32];
    sha256(plain, (size_t)m, got);
    OPENSSL_cleanse(plain, sizeof plain);
    return CRYPTO_memcmp(got, q->s->auth_digest, sizeof got) == 0;
}

static const char *header_of(void *ctx, const char *name)
{
    return ot_http_header(ctx, name);
}

static bool method_is(const char *route, const char *method)
{
    return strcmp(route, method) == 0 || (strcmp(route, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* The route for the request, or a refusal already sent. */
static const ot_http_route *route_of(ot_http_req *q)
{
    ot_http_server *s = q->s;
    char allow[128] = "";
    size_t an = 0;
    bool path_known = false;
    for (size_t i = 0; i < s->o.n_routes; i++) {
        const ot_http_route *r = &s->o.routes[i];
        if (strcmp(r->path, q->path) != 0)
            continue;
        if (method_is(r->method, q->method))
            return r;
        path_known = true;
        bool get = strcmp(r->method, "GET") == 0;
        an += (size_t)snprintf(allow + an, an < sizeof allow ? sizeof allow - an : 0, "%s%s%s",
                               an ? ", " : "", r->method, get ? ", HEAD" : "");
        if (an >= sizeof allow)
            an = sizeof allow - 1;
    }
    if (!path_known) {
        refuse(q, MHD_HTTP_NOT_FOUND, "not found", NULL, NULL);
        return NULL;
    }
    /* the refusal's header outlives this frame: it goes in the response
     * before ot_http_send returns, and MHD copies it */
    refuse(q, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed", MHD_HTTP_HEADER_ALLOW, allow);
    return NULL;
}

static int64_t content_length(ot_http_req *q)
{
    const char *cl = ot_http_header(q, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl || !*cl)
        return -1;
    char *end;
    unsigned long long v = strtoull(cl, &end, 10);
    return *end ? -1 : (int64_t)(v > INT64_MAX ? INT64_MAX : v);
}

static enum MHD_Result outcome(ot_http_req *q)
{
    if (!q->replied)
        refuse(q, MHD_HTTP_INTERNAL_SERVER_ERROR, "the handler gave no answer", NULL, NULL);
    return q->queued ? MHD_YES : MHD_NO;
}

static enum MHD_Result begin(ot_http_server *s, ot_http_req *q)
{
    if (s->need_client_cert && !client_cert_ok(q->c)) {
        refuse(q, MHD_HTTP_UNAUTHORIZED, "a valid client certificate is required", NULL, NULL);
        return outcome(q);
    }
    if (s->auth && !basic_auth_ok(q)) {
        refuse(q, MHD_HTTP_UNAUTHORIZED, "unauthorized", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
               s->auth_challenge);
        return outcome(q);
    }
    if (s->o.auth && !ot_auth_check(s->o.auth, header_of, q)) {
        refuse(q, MHD_HTTP_UNAUTHORIZED, "unauthorized",
               s->o.auth->challenge ? MHD_HTTP_HEADER_WWW_AUTHENTICATE : NULL,
               s->o.auth->challenge);
        return outcome(q);
    }
    if (s->o.stream) {
        s->o.stream->begin(q, s->o.arg);
        return q->replied ? outcome(q) : MHD_YES;
    }
    if (!(q->route = route_of(q)))
        return outcome(q);
    int64_t len = content_length(q);
    if (len > (int64_t)s->o.max_body) {
        refuse(q, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", NULL, NULL);
        return outcome(q);
    }
    bool body = len > 0 || ot_http_header(q, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (!body) {
        q->route->fn(q, s->o.arg);
        return outcome(q);
    }
    if (len > 0) {
        if (!(q->body = malloc((size_t)len + 1))) {
            refuse(q, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, NULL);
            return outcome(q);
        }
        q->cap = (size_t)len;
    }
    return MHD_YES;
}

/* A body past max_body whose answer the library can no longer queue (it
 * takes one only before the body or after all of it, and a chunked one
 * may never end): 413 goes out on the socket itself, and what else comes
 * is dropped until the client stops or goes far past the limit. */
static enum MHD_Result abort_too_large(ot_http_req *q, size_t n)
{
    static const char raw[] = "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n"
                              "Content-Type: text/plain\r\nContent-Length: 23\r\n\r\n"
                              "request body too large\n";
    if (!q->aborted) {
        if (!ot_http_guard_abort(q->s->guard, q->gc, raw, sizeof raw - 1))
            return MHD_NO;
        q->aborted = true;
        q->replied = true;
        q->discarded = 0;
    }
    q->discarded += n;
    /* n == 0: the body is over and no answer can follow the raw one */
    return n == 0 || q->discarded > 4 * q->s->o.max_body ? MHD_NO : MHD_YES;
}

static enum MHD_Result collect(ot_http_req *q, const char *p, size_t n)
{
    size_t max = q->s->o.max_body;
    if (q->too_large) {
        /* Drained so the 413 can be answered; a client that keeps going far
         * past the limit is cut off instead. */
        q->discarded += n;
        return q->discarded > 4 * max ? MHD_NO : MHD_YES;
    }
    if (q->len + n > q->cap) {
        if (q->len + n > max) {
            q->too_large = true;
            q->discarded = n;
            return MHD_YES;
        }
        size_t ncap = q->cap ? q->cap * 2 : 16384;
        if (ncap < q->len + n)
            ncap = q->len + n;
        if (ncap > max)
            ncap = max;
        uint8_t *nb = realloc(q->body, ncap + 1);
        if (!nb)
            return MHD_NO;
        q->body = nb;
        q->cap = ncap;
    }
    memcpy(q->body + q->len, p, n);
    q->len += n;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_len, void **con_cls)
{
    ot_http_server *s = cls;
    ot_http_req *q = *con_cls;
    if (!q) {
        size_t extra = s->o.stream ? s->o.stream->state_size : 0;
        if (!(q = calloc(1, sizeof *q + extra)))
            return MHD_NO;
        q->s = s;
        q->c = c;
        q->method = method;
        q->path = url;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        q->gc = ci ? ci->socket_context : NULL;
        ot_http_guard_begin(s->guard, q->gc, q);
        *con_cls = q;
        atomic_fetch_add(&s->active, 1);
        return begin(s, q);
    }
    size_t n = *upload_len;
    *upload_len = 0;
    if (q->aborted || (n && (q->received += n) > s->o.max_body))
        return abort_too_large(q, n);
    if (q->replied)
        return q->queued ? MHD_YES : MHD_NO;
    if (n) {
        if (s->o.stream)
            return s->o.stream->data(q, (const uint8_t *)upload, n, s->o.arg) ? MHD_YES : MHD_NO;
        return collect(q, upload, n);
    }
    if (s->o.stream) {
        s->o.stream->end(q, s->o.arg);
    } else if (q->too_large) {
        refuse(q, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", NULL, NULL);
    } else {
        if (q->body)
            q->body[q->len] = '\0';
        q->route->fn(q, s->o.arg);
    }
    return outcome(q);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ot_http_server *s = cls;
    ot_http_req *q = *con_cls;
    if (!q)
        return;
    *con_cls = NULL;
    /* first: from here the guard's thread no longer hands q to cut */
    ot_http_guard_done(s->guard, q->gc);
    if (s->o.stream && s->o.stream->done)
        s->o.stream->done(q, s->o.arg);
    free(q->body);
    free(q);
    atomic_fetch_sub(&s->active, 1);
}

/* The guard closed q's connection; the library reaps it (and calls
 * on_completed) when its thread next looks, which may be a while. */
static void cut_request(void *req, void *arg)
{
    ot_http_server *s = arg;
    s->o.stream->cut(req, s->o.arg);
}

/* The guard's records live in the library's per-connection slot. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    ot_http_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? ot_http_guard_opened(s->guard, ci->connect_fd) : NULL;
    } else if (*socket_context) {
        ot_http_guard_closed(s->guard, *socket_context);
        *socket_context = NULL;
    }
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    ot_http_server *s = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    for (char *p = line; *p; p++)
        if (*p == '"')
            *p = '\'';
    ot_debug(s->o.log_component, "http server", "detail=\"%s\"", line);
}

/* ---- daemons ------------------------------------------------------------------- */

static struct MHD_Daemon *start_daemon(ot_http_server *s, const ot_tls_server_pems *p)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    if (s->ipv6)
        flags |= MHD_USE_IPv6;
    if (s->tls)
        flags |= MHD_USE_TLS;
    /* Each daemon gets its own descriptor of our socket: stopping one
     * closes its own, and ours stays for the next. */
    int dfd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        return NULL;
    struct MHD_OptionItem opts[16];
    int n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, dfd, NULL};
    if (s->o.threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, s->o.threads, NULL};
    /* a second later than the guard's deadline, which answers 408 first */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, s->o.timeout_s + 1, NULL};
    /* the guard keeps the count at max_connections by eviction; the
     * library's limit is only reached by evicted ones it has not closed yet */
    opts[n++] = (struct MHD_OptionItem){
        MHD_OPTION_CONNECTION_LIMIT, ot_http_guard_hard_limit(s->o.max_connections), NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_log, s};
    if (s->tls) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, p->cert};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, p->key};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            (void *)ot_tls_server_gnutls_priorities(s->o.tls)};
        if (p->client_ca)
            opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, p->client_ca};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    /* A failed start closes the socket it was given (0.9.75 does, once the
     * options are read); closing it again here could close a descriptor
     * another thread has just been given the same number. */
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
}

static void stop_daemon(struct MHD_Daemon *d)
{
    MHD_stop_daemon(d);
}

/* Retired daemons go once their connections are gone, or after grace. */
static void reap(ot_http_server *s, bool all)
{
    int64_t grace = 2 * (int64_t)s->o.timeout_s * 1000000000LL + 30000000000LL;
    int64_t now = ot_now_ns();
    for (retired **pp = &s->old; *pp;) {
        retired *r = *pp;
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (all || !di || di->num_connections == 0 || now - r->since > grace) {
            *pp = r->next;
            stop_daemon(r->mhd);
            ot_tls_server_pems_free(&r->pems);
            free(r);
        } else {
            pp = &r->next;
        }
    }
}

static int reload_locked(ot_http_server *s, bool force, ot_err *err)
{
    uint64_t st = ot_tls_server_files_stamp(s->o.tls);
    if (st == s->stamp && !force)
        return 0;
    /* once per change: a pair half written is tried again when the other
     * file lands */
    s->stamp = st;
    ot_tls_server_pems p;
    if (ot_tls_server_pems_load(s->o.tls, &p, err) < 0)
        return -1;
    if (s->pems.cert && strcmp(p.cert, s->pems.cert) == 0 && strcmp(p.key, s->pems.key) == 0 &&
        (p.client_ca ? s->pems.client_ca && strcmp(p.client_ca, s->pems.client_ca) == 0
                     : !s->pems.client_ca)) {
        ot_tls_server_pems_free(&p); /* touched, not changed */
        return 0;
    }
    retired *r = calloc(1, sizeof *r);
    struct MHD_Daemon *d = r ? start_daemon(s, &p) : NULL;
    if (!d) {
        free(r);
        ot_tls_server_pems_free(&p);
        return ot_err_set(err, "the new certificate was refused by the TLS library");
    }
    int lfd = MHD_quiesce_daemon(s->mhd);
    if (lfd >= 0)
        close(lfd);
    r->mhd = s->mhd;
    r->pems = s->pems;
    r->since = ot_now_ns();
    r->next = s->old;
    s->old = r;
    s->mhd = d;
    s->pems = p;
    atomic_fetch_add(&s->reloads, 1);
    return 1;
}

int ot_http_server_reload(ot_http_server *s, ot_err *err)
{
    if (!s->tls)
        return 0;
    pthread_mutex_lock(&s->mu);
    int rc = reload_locked(s, false, err);
    reap(s, false);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void *watch(void *arg)
{
    ot_http_server *s = arg;
    int64_t every = ot_tls_server_check_interval(s->o.tls);
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + every;
        ts.tv_sec = (time_t)(at / 1000000000LL);
        ts.tv_nsec = (long)(at % 1000000000LL);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        if (s->stopping)
            break;
        ot_err err = {{0}};
        int rc = reload_locked(s, false, &err);
        if (rc > 0)
            ot_info(s->o.log_component, "tls certificate reloaded", "cert=%s",
                    s->o.tls->cert_file ? s->o.tls->cert_file : "(cert_pem)");
        else if (rc < 0)
            ot_warn(s->o.log_component, "tls reload failed; serving the previous certificate",
                    "err=\"%s\"", err.msg);
        reap(s, false);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------- */

static void free_server(ot_http_server *s)
{
    ot_tls_server_pems_free(&s->pems);
    if (s->fd >= 0)
        close(s->fd);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    OPENSSL_cleanse(s->auth_digest, sizeof s->auth_digest);
    free(s);
}

ot_http_server *ot_http_server_start(const ot_endpoint *ep, const ot_http_server_opts *opts,
                                     ot_err *err)
{
    ot_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    s->o = *opts;
    s->fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&s->active, 0);
    atomic_init(&s->reloads, 0);
    if (!s->o.log_component)
        s->o.log_component = "http";
    if (!s->o.max_connections)
        s->o.max_connections = 64;
    if (!s->o.timeout_s)
        s->o.timeout_s = 10;
    if (!s->o.backlog)
        s->o.backlog = 64;
    if (!s->o.max_body)
        s->o.max_body = 1u << 20;
    s->tls = opts->tls && opts->tls->present;
    s->need_client_cert = s->tls && opts->tls->client_ca_file && *opts->tls->client_ca_file;
    if (opts->basic_auth_user && *opts->basic_auth_user) {
        ot_buf b = OT_BUF_INIT;
        ot_buf_printf(&b, "%s:%s", opts->basic_auth_user,
                      opts->basic_auth_password ? opts->basic_auth_password : "");
        if (b.oom) {
            ot_buf_free(&b);
            ot_err_set(err, "out of memory");
            free_server(s);
            return NULL;
        }
        sha256(b.data, b.len, s->auth_digest);
        OPENSSL_cleanse(b.data, b.len);
        ot_buf_free(&b);
        s->auth = true;
        snprintf(s->auth_challenge, sizeof s->auth_challenge, "Basic realm=\"%s\", charset=\"UTF-8\"",
                 opts->realm ? opts->realm : "otelite");
    }
    if (s->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            ot_err_set(err, "this libmicrohttpd has no TLS support");
            free_server(s);
            return NULL;
        }
        s->stamp = ot_tls_server_files_stamp(opts->tls);
        if (ot_tls_server_pems_load(opts->tls, &s->pems, err) < 0) {
            free_server(s);
            return NULL;
        }
    }
    if ((s->fd = ot_net_listen(ep, s->o.backlog, err)) < 0) {
        free_server(s);
        return NULL;
    }
    s->port = ot_net_bound_port(s->fd);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    s->ipv6 = getsockname(s->fd, (struct sockaddr *)&sa, &sl) == 0 && sa.ss_family == AF_INET6;
    ot_http_guard_opts go = {
        .max_connections = s->o.max_connections,
        .request_timeout_ns = (int64_t)s->o.timeout_s * 1000000000LL,
        .tls = s->tls,
        .cut = s->o.stream && s->o.stream->cut ? cut_request : NULL,
        .arg = s,
    };
    if (!(s->guard = ot_http_guard_start(&go, err))) {
        free_server(s);
        return NULL;
    }
    if (!(s->mhd = start_daemon(s, &s->pems))) {
        ot_err_set(err, "listen %s: cannot start the HTTP server%s", ep->text ? ep->text : "",
                   s->tls ? " (check the certificate and key)" : "");
        ot_http_guard_free(s->guard);
        free_server(s);
        return NULL;
    }

    if (ot_tls_server_check_interval(opts->tls) > 0) {
        if (pthread_create(&s->watcher, NULL, watch, s) == 0)
            s->watching = true;
        else
            ot_warn(s->o.log_component, "cannot watch the tls files; they will not be reloaded",
                    "port=%d", s->port);
    }
    return s;
}

int ot_http_server_port(const ot_http_server *s)
{
    return s ? s->port : -1;
}

unsigned ot_http_server_reloads(const ot_http_server *s)
{
    return s ? atomic_load(&s->reloads) : 0;
}

void ot_http_server_stop(ot_http_server *s, int64_t deadline_ns)
{
    if (!s)
        return;
    if (s->watching) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->watcher, NULL);
    }
    /* No new connections; requests already begun finish until the
     * deadline, then everything closes. */
    ot_http_guard_stop(s->guard);
    int lfd = MHD_quiesce_daemon(s->mhd);
    if (lfd >= 0)
        close(lfd);
    struct timespec ts = {0, 2 * 1000 * 1000};
    while (atomic_load(&s->active) > 0 && ot_now_ns() < deadline_ns)
        nanosleep(&ts, NULL);
    stop_daemon(s->mhd);
    reap(s, true);
    ot_http_guard_free(s->guard);
    free_server(s);
}
