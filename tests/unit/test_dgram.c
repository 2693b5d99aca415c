/* Unit tests for agent/net/dgram and agent/net/ustream: the datagram and
 * Unix stream listeners, against loopback peers written here. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "net/dgram.h"
#include "net/ustream.h"

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* What the datagram callback saw. */
typedef struct seen {
    _Atomic uint64_t per_reader[8];
    _Atomic uint64_t n, bytes, truncated, calls;
    _Atomic int32_t pid;
    _Atomic size_t last_len;
    _Atomic bool last_truncated;
    _Atomic bool peer_ok;
    uint8_t first[128]; /* head of the last datagram */
    /* the drop test holds the reader here */
    atomic_bool gate_closed, in_gate;
} seen;

static void on_dgrams(void *ud, unsigned reader, const ot_dgram_msg *m, size_t n)
{
    seen *s = ud;
    if (atomic_load(&s->gate_closed)) {
        atomic_store(&s->in_gate, true);
        while (atomic_load(&s->gate_closed))
            sleep_ms(1);
    }
    atomic_fetch_add(&s->per_reader[reader], n);
    atomic_fetch_add(&s->n, n);
    atomic_fetch_add(&s->calls, 1);
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_add(&s->bytes, m[i].len);
        atomic_fetch_add(&s->truncated, m[i].truncated);
        atomic_store(&s->pid, m[i].pid);
        atomic_store(&s->last_len, m[i].len);
        atomic_store(&s->last_truncated, m[i].truncated);
        memcpy(s->first, m[i].data, m[i].len < sizeof s->first ? m[i].len : sizeof s->first);
        if (m[i].peer && m[i].peer->sa_family != AF_UNIX)
            atomic_store(&s->peer_ok, m[i].peer_len >= sizeof(struct sockaddr_in));
    }
}

static bool wait_count(_Atomic uint64_t *v, uint64_t want, int ms)
{
    int64_t end = now_ms() + ms;
    while (atomic_load(v) < want && now_ms() < end)
        sleep_ms(2);
    return atomic_load(v) >= want;
}

static ot_endpoint ep_of(const char *host, int port, char *text, size_t tl)
{
    snprintf(text, tl, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return (ot_endpoint){.host = host, .port = port, .text = text};
}

/* A UDP client socket connected to host:port (IPv4 or IPv6). */
static int udp_client(int family, const char *host, int port)
{
    int fd = socket(family, SOCK_DGRAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_storage sa = {0};
    socklen_t sl;
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, host, &s6->sin6_addr);
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, host, &s4->sin_addr);
        sl = sizeof *s4;
    }
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sl), 0, "%s", strerror(errno));
    return fd;
}

/* Sends total datagrams of `size` bytes over the clients in turn, in
 * bursts that the receiver is let to catch up with, so that what is
 * tested is delivery, not whether loopback outruns a reader. */
static void send_paced(int *fds, int nfds, seen *s, int total, size_t size)
{
    char buf[2048];
    memset(buf, 'x', sizeof buf);
    uint64_t base = atomic_load(&s->n);
    for (int i = 0; i < total; i++) {
        cr_assert_eq(send(fds[i % nfds], buf, size, 0), (ssize_t)size, "%s", strerror(errno));
        if ((i + 1) % 200 == 0)
            wait_count(&s->n, base + (uint64_t)i + 1, 2000);
    }
}

static char tmpdir[64];

static void mk_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/ot-dgram-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmpdir(void)
{
    rmdir(tmpdir);
}

/* ---- UDP ---------------------------------------------------------------- */

static void udp_all_received(unsigned readers, int nclients)
{
    seen s = {0};
    ot_counter packets = {0}, bytes = {0};
    char text[64];
    ot_endpoint ep = ep_of("127.0.0.1", 0, text, sizeof text);
    ot_dgram_opts o = {.endpoint = &ep, .readers = readers, .receive_buffer_bytes = 4 << 20,
                       .fn = on_dgrams, .ud = &s, .packets_total = &packets,
                       .bytes_total = &bytes};
    ot_err err = {{0}};
    ot_dgram *d = ot_dgram_start(&o, &err);
    cr_assert_not_null(d, "%s", err.msg);
    int port = ot_dgram_port(d);
    cr_assert(port > 0 && port < 65536);
    cr_expect_geq(ot_dgram_rcvbuf(d), 4 << 20);
    int fds[32];
    for (int i = 0; i < nclients; i++)
        fds[i] = udp_client(AF_INET, "127.0.0.1", port);
    const int total = 6000;
    send_paced(fds, nclients, &s, total, 100);
    cr_assert(wait_count(&s.n, total, 5000), "got %lu of %d", (unsigned long)s.n, total);
    sleep_ms(20);
    cr_expect_eq(atomic_load(&s.n), total);
    cr_expect_eq(atomic_load(&s.bytes), (uint64_t)total * 100);
    cr_expect(atomic_load(&s.peer_ok));
    /* batches, not one call per datagram: at least some calls carried more */
    cr_expect_lt(atomic_load(&s.calls), (uint64_t)total);
    ot_dgram_stats st;
    ot_dgram_get_stats(d, &st);
    cr_expect_eq(st.packets, total);
    cr_expect_eq(st.bytes, (uint64_t)total * 100);
    cr_expect_eq(st.truncated, 0);
    cr_expect_eq(atomic_load(&packets.v), total);
    cr_expect_eq(atomic_load(&bytes.v), (uint64_t)total * 100);
    if (readers > 1)
        for (unsigned r = 0; r < readers; r++)
            cr_expect_gt(atomic_load(&s.per_reader[r]), 0, "reader %u got nothing", r);
    for (int i = 0; i < nclients; i++)
        close(fds[i]);
    ot_dgram_stop(d);
}

Test(dgram, udp_one_reader_receives_every_datagram)
{
    udp_all_received(1, 1);
}

/* SO_REUSEPORT spreads by sender address: 32 senders reach both readers
 * except with probability 2^-31. */
Test(dgram, udp_two_readers_share_the_port_and_receive_every_datagram)
{
    udp_all_received(2, 32);
}

Test(dgram, udp_ipv6_loopback)
{
    int probe = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = probe >= 0 && bind(probe, (struct sockaddr *)&s6, sizeof s6) == 0;
    if (probe >= 0)
        close(probe);
    if (!ok)
        cr_skip_test("no IPv6 loopback here");
    seen s = {0};
    char text[64];
    ot_endpoint ep = ep_of("::1", 0, text, sizeof text);
    ot_dgram_opts o = {.endpoint = &ep, .readers = 2, .fn = on_dgrams, .ud = &s};
    ot_err err = {{0}};
    ot_dgram *d = ot_dgram_start(&o, &err);
    cr_assert_not_null(d, "%s", err.msg);
    cr_assert_gt(ot_dgram_port(d), 0);
    int fd = udp_client(AF_INET6, "::1", ot_dgram_port(d));
    send_paced(&fd, 1, &s, 500, 64);
    cr_expect(wait_count(&s.n, 500, 5000), "got %lu", (unsigned long)s.n);
    cr_expect(atomic_load(&s.peer_ok));
    close(fd);
    ot_dgram_stop(d);
}

Test(dgram, udp_taken_port_is_one_clear_error)
{
    int taker = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(taker, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(taker, (struct sockaddr *)&sa, &sl);
    int port = ntohs(sa.sin_port);
    char text[64], want[128];
    ot_endpoint ep = ep_of("127.0.0.1", port, text, sizeof text);
    snprintf(want, sizeof want, "listen udp 127.0.0.1:%d: Address already in use", port);
    /* also with SO_REUSEPORT on our side: the taker did not set it */
    for (unsigned readers = 1; readers <= 2; readers++) {
        seen s = {0};
        ot_dgram_opts o = {.endpoint = &ep, .readers = readers, .fn = on_dgrams, .ud = &s};
        ot_err err = {{0}};
        cr_expect_null(ot_dgram_start(&o, &err));
        cr_expect_str_eq(err.msg, want);
    }
    close(taker);
}

Test(dgram, bad_options_are_errors)
{
    seen s = {0};
    char text[64];
    ot_endpoint ep = ep_of("127.0.0.1", 0, text, sizeof text);
    ot_err err = {{0}};
    ot_dgram_opts o = {.endpoint = &ep, .fn = on_dgrams, .ud = &s, .max_packet_size = 65536};
    cr_expect_null(ot_dgram_start(&o, &err));
    cr_expect(strstr(err.msg, "max_packet_size is at most 65535"), "%s", err.msg);
    o = (ot_dgram_opts){.fn = on_dgrams};
    cr_expect_null(ot_dgram_start(&o, &err));
    cr_expect(strstr(err.msg, "either a UDP endpoint or a socket path"), "%s", err.msg);
    ep = ep_of("127.0.0.1", 70000, text, sizeof text);
    o = (ot_dgram_opts){.endpoint = &ep, .fn = on_dgrams};
    cr_expect_null(ot_dgram_start(&o, &err));
    cr_expect_str_eq(err.msg, "listen udp 127.0.0.1:70000: port out of range");
}

/* Documented: cut to max_packet_size, flagged, counted, still delivered. */
Test(dgram, oversized_datagram_is_delivered_cut_and_counted)
{
    seen s = {0};
    ot_counter trunc = {0};
    char text[64];
    ot_endpoint ep = ep_of("127.0.0.1", 0, text, sizeof text);
    ot_dgram_opts o = {.endpoint = &ep, .max_packet_size = 100, .fn = on_dgrams, .ud = &s,
                       .truncated_total = &trunc};
    ot_err err = {{0}};
    ot_dgram *d = ot_dgram_start(&o, &err);
    cr_assert_not_null(d, "%s", err.msg);
    int fd = udp_client(AF_INET, "127.0.0.1", ot_dgram_port(d));
    char big[300];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    cr_assert_eq(send(fd, big, 100, 0), 100); /* exactly the limit: whole */
    cr_assert(wait_count(&s.n, 1, 5000));
    cr_expect_eq(atomic_load(&s.last_len), 100);
    cr_expect_not(atomic_load(&s.last_truncated));
    cr_assert_eq(send(fd, big, sizeof big, 0), (ssize_t)sizeof big);
    cr_assert(wait_count(&s.n, 2, 5000));
    cr_expect_eq(atomic_load(&s.last_len), 100);
    cr_expect(atomic_load(&s.last_truncated));
    cr_expect_eq(memcmp(s.first, big, 100), 0);
    ot_dgram_stats st;
    ot_dgram_get_stats(d, &st);
    cr_expect_eq(st.truncated, 1);
    cr_expect_eq(st.packets, 2);
    cr_expect_eq(st.bytes, 200);
    cr_expect_eq(atomic_load(&trunc.v), 1);
    close(fd);
    ot_dgram_stop(d);
}

/* The reader is held in its callback while a flood hits a queue of a few
 * packets, so the kernel must drop; this is asserted, not assumed. */
Test(dgram, kernel_drops_are_counted_once)
{
    seen s = {0};
    ot_counter drops = {0};
    char text[64];
    ot_endpoint ep = ep_of("127.0.0.1", 0, text, sizeof text);
    ot_dgram_opts o = {.endpoint = &ep, .receive_buffer_bytes = 1, .fn = on_dgrams, .ud = &s,
                       .kernel_drops_total = &drops};
    ot_err err = {{0}};
    ot_dgram *d = ot_dgram_start(&o, &err);
    cr_assert_not_null(d, "%s", err.msg);
    cr_expect_lt(ot_dgram_rcvbuf(d), 64 << 10);
    int fd = udp_client(AF_INET, "127.0.0.1", ot_dgram_port(d));
    atomic_store(&s.gate_closed, true);
    char buf[200] = {0};
    cr_assert_eq(send(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    int64_t end = now_ms() + 5000;
    while (!atomic_load(&s.in_gate) && now_ms() < end)
        sleep_ms(1);
    cr_assert(atomic_load(&s.in_gate));
    const int flood = 2000;
    for (int i = 0; i < flood; i++)
        send(fd, buf, sizeof buf, 0);
    ot_dgram_stats a, b;
    ot_dgram_get_stats(d, &a); /* SO_MEMINFO: seen before any datagram tells */
    cr_expect_gt(a.kernel_drops, 0);
    atomic_store(&s.gate_closed, false);
    /* the queue drains; a last datagram then carries the full count in
     * its SO_RXQ_OVFL cmsg, which must not count the drops again */
    sleep_ms(100);
    uint64_t got = atomic_load(&s.n);
    cr_assert_eq(send(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    cr_assert(wait_count(&s.n, got + 1, 5000));
    ot_dgram_get_stats(d, &b);
    cr_expect_geq(b.kernel_drops, a.kernel_drops);
    cr_expect_eq(b.kernel_drops, atomic_load(&drops.v));
    cr_expect_leq(b.packets + b.kernel_drops, (uint64_t)flood + 2);
    cr_expect_eq(b.packets, atomic_load(&s.n));
    close(fd);
    ot_dgram_stop(d);
}

/* SO_RXQ_OVFL alone (no get_stats before the cmsg arrives) moves the
 * telemetry counter. */
Test(dgram, kernel_drops_reach_the_counter_from_the_datagrams)
{
    seen s = {0};
    ot_counter drops = {0};
    char text[64];
    ot_endpoint ep = ep_of("127.0.0.1", 0, text, sizeof text);
    ot_dgram_opts o = {.endpoint = &ep, .receive_buffer_bytes = 1, .fn = on_dgrams, .ud = &s,
                       .kernel_drops_total = &drops};
    ot_err err = {{0}};
    ot_dgram *d = ot_dgram_start(&o, &err);
    cr_assert_not_null(d, "%s", err.msg);
    int fd = udp_client(AF_INET, "127.0.0.1", ot_dgram_port(d));
    atomic_store(&s.gate_closed, true);
    char buf[200] = {0};
    send(fd, buf, sizeof buf, 0);
    int64_t end = now_ms() + 5000;
    while (!atomic_load(&s.in_gate) && now_ms() < end)
        sleep_ms(1);
    for (int i = 0; i < 1000; i++)
        send(fd, buf, sizeof buf, 0);
    atomic_store(&s.gate_closed, false);
    sleep_ms(100);
    uint64_t got = atomic_load(&s.n);
    send(fd, buf, sizeof buf, 0);
    cr_assert(wait_count(&s.n, got + 1, 5000));
    cr_expect_gt(atomic_load(&drops.v), 0);
    close(fd);
    ot_dgram_stop(d);
}

Test(dgram, udp_stop_with_idle_readers_is_prompt)
{
    seen s = {0};
    char text[64];
    ot_endpoint ep = ep_of("127.0.0.1", 0, text, sizeof text);
    ot_dgram_opts o = {.endpoint = &ep, .readers = 4, .fn = on_dgrams, .ud = &s};
    ot_err err = {{0}};
    ot_dgram *d = ot_dgram_start(&o, &err);
    cr_assert_not_null(d, "%s", err.msg);
    sleep_ms(50); /* readers are in poll by now */
    int64_t t0 = now_ms();
    ot_dgram_stop(d);
    cr_expect_lt(now_ms() - t0, 500);
    ot_dgram_stop(NULL);
}

/* ---- Unix datagram -------------------------------------------------------- */

static int unix_client(int type, const char *path)
{
    int fd = socket(AF_UNIX, type, 0);
    cr_assert(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s: %s", path,
                 strerror(errno));
    return fd;
}

Test(dgram, unixgram_receives_with_permissions_and_creds_and_cleans_up)
{
    mk_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/dsd.socket", tmpdir);
    seen s = {0};
    ot_dgram_opts o = {.socket_path = path, .socket_permissions = 0620, .readers = 2,
                       .want_creds = true, .fn = on_dgrams, .ud = &s};
    ot_err err = {{0}};
    ot_dgram *d = ot_dgram_start(&o, &err);
    cr_assert_not_null(d, "%s", err.msg);
    cr_expect_eq(ot_dgram_port(d), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect(S_ISSOCK(st.st_mode));
    cr_expect_eq(st.st_mode & 0777, 0620, "mode %o", st.st_mode & 0777);
    int fd = unix_client(SOCK_DGRAM, path);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(send(fd, "metric:1|c", 10, 0), 10);
    cr_expect(wait_count(&s.n, 300, 5000), "got %lu", (unsigned long)s.n);
    cr_expect_eq(atomic_load(&s.bytes), 3000);
    cr_expect_eq(atomic_load(&s.pid), getpid());
    cr_expect_eq(memcmp(s.first, "metric:1|c", 10), 0);
    close(fd);
    int64_t t0 = now_ms();
    ot_dgram_stop(d);
    cr_expect_lt(now_ms() - t0, 500);
    cr_expect_neq(stat(path, &st), 0, "socket file left behind");
    rm_tmpdir();
}

Test(dgram, unixgram_stale_file_replaced_live_socket_and_plain_file_refused)
{
    mk_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/dsd.socket", tmpdir);
    /* a dead process's socket file */
    int dead = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    cr_assert_eq(bind(dead, (struct sockaddr *)&sa, sizeof sa), 0);
    close(dead);
    seen s = {0};
    ot_dgram_opts o = {.socket_path = path, .fn = on_dgrams, .ud = &s};
    ot_err err = {{0}};
    ot_dgram *d = ot_dgram_start(&o, &err);
    cr_assert_not_null(d, "%s", err.msg);
    /* a second listener must not take the live one's path */
    ot_dgram *d2 = ot_dgram_start(&o, &err);
    cr_expect_null(d2);
    char want[256];
    snprintf(want, sizeof want, "listen unixgram %s: socket in use by another process", path);
    cr_expect_str_eq(err.msg, want);
    int fd = unix_client(SOCK_DGRAM, path);
    cr_expect_eq(send(fd, "x", 1, 0), 1);
    cr_expect(wait_count(&s.n, 1, 5000));
    close(fd);
    ot_dgram_stop(d);
    /* a file that is not a socket is left alone */
    FILE *f = fopen(path, "w");
    fputs("keep me", f);
    fclose(f);
    cr_expect_null(ot_dgram_start(&o, &err));
    snprintf(want, sizeof want, "listen unixgram %s: exists and is not a socket", path);
    cr_expect_str_eq(err.msg, want);
    struct stat st;
    cr_expect_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_size, 7);
    unlink(path);
    rm_tmpdir();
}

/* ---- Unix stream ------------------------------------------------------------ */

typedef struct got {
    pthread_mutex_t mu;
    size_t n;
    char msgs[16][256];
    size_t lens[16];
    uint64_t conns[16];
    int32_t pid;
    size_t total_bytes;
    uint8_t *big; /* the one message too long for msgs[] */
    size_t big_len;
    uint64_t closed[16];
    _Atomic uint64_t nclosed, count;
} got;

static void on_frames(void *ud, const ot_ustream_msg *m, size_t n)
{
    got *g = ud;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < n; i++) {
        g->total_bytes += m[i].len;
        g->pid = m[i].pid;
        if (m[i].len > sizeof g->msgs[0]) {
            free(g->big);
            g->big = malloc(m[i].len);
            memcpy(g->big, m[i].data, m[i].len);
            g->big_len = m[i].len;
        } else if (g->n < 16) {
            memcpy(g->msgs[g->n], m[i].data, m[i].len);
            g->lens[g->n] = m[i].len;
            g->conns[g->n] = m[i].conn;
            g->n++;
        }
    }
    pthread_mutex_unlock(&g->mu);
    atomic_fetch_add(&g->count, n);
}

static void on_conn_close(void *ud, uint64_t conn)
{
    got *g = ud;
    uint64_t i = atomic_load(&g->nclosed);
    if (i < 16)
        g->closed[i] = conn;
    atomic_fetch_add(&g->nclosed, 1);
}

static size_t frame(uint8_t *out, const char *s, size_t len)
{
    out[0] = (uint8_t)len;
    out[1] = (uint8_t)(len >> 8);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 24);
    memcpy(out + 4, s, len);
    return 4 + len;
}

static ot_ustream *ustream_at(const char *path, got *g, ot_ustream_framing fr, size_t max)
{
    pthread_mutex_init(&g->mu, NULL);
    ot_ustream_opts o = {.socket_path = path, .socket_permissions = 0660, .framing = fr,
                         .max_packet_size = max, .fn = on_frames, .on_close = on_conn_close,
                         .ud = g};
    ot_err err = {{0}};
    ot_ustream *u = ot_ustream_start(&o, &err);
    cr_assert_not_null(u, "%s", err.msg);
    return u;
}

static void got_free(got *g)
{
    free(g->big);
    pthread_mutex_destroy(&g->mu);
}

Test(dgram, ustream_several_frames_in_one_write)
{
    mk_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/s.socket", tmpdir);
    got g = {0};
    ot_ustream *u = ustream_at(path, &g, OT_USTREAM_FRAMED, 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0660);
    int fd = unix_client(SOCK_STREAM, path);
    uint8_t buf[256];
    size_t n = 0;
    n += frame(buf + n, "a:1|c", 5);
    n += frame(buf + n, "", 0); /* empty: skipped */
    n += frame(buf + n, "bb:2|g", 6);
    n += frame(buf + n, "ccc:3|ms", 8);
    cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    cr_assert(wait_count(&g.count, 3, 5000));
    sleep_ms(20);
    pthread_mutex_lock(&g.mu);
    cr_expect_eq(g.n, 3);
    cr_expect_eq(g.lens[0], 5);
    cr_expect_eq(memcmp(g.msgs[0], "a:1|c", 5), 0);
    cr_expect_eq(memcmp(g.msgs[1], "bb:2|g", 6), 0);
    cr_expect_eq(memcmp(g.msgs[2], "ccc:3|ms", 8), 0);
    cr_expect_eq(g.conns[0], g.conns[2]);
    cr_expect_eq(g.pid, getpid());
    pthread_mutex_unlock(&g.mu);
    ot_ustream_stats s;
    ot_ustream_get_stats(u, &s);
    cr_expect_eq(s.messages, 3);
    cr_expect_eq(s.bytes, 19);
    cr_expect_eq(s.accepted, 1);
    cr_expect_eq(s.open, 1);
    close(fd);
    int64_t end = now_ms() + 5000;
    while (atomic_load(&g.nclosed) < 1 && now_ms() < end)
        sleep_ms(2);
    cr_expect_eq(atomic_load(&g.nclosed), 1);
    ot_ustream_get_stats(u, &s);
    cr_expect_eq(s.open, 0);
    cr_expect_eq(s.incomplete, 0);
    ot_ustream_stop(u);
    cr_expect_neq(stat(path, &st), 0, "socket file left behind");
    got_free(&g);
    rm_tmpdir();
}

Test(dgram, ustream_frame_split_across_writes)
{
    mk_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/s.socket", tmpdir);
    got g = {0};
    ot_ustream *u = ustream_at(path, &g, OT_USTREAM_FRAMED, 0);
    int fd = unix_client(SOCK_STREAM, path);
    char msg[200];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('A' + i % 26);
    uint8_t buf[256];
    size_t n = frame(buf, msg, sizeof msg);
    /* header split too, then a second frame's header in the last piece */
    n += frame(buf + n, "z", 1);
    size_t cuts[] = {0, 2, 3, 100, 204, 206, n};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(write(fd, buf + cuts[i], cuts[i + 1] - cuts[i]),
                     (ssize_t)(cuts[i + 1] - cuts[i]));
        sleep_ms(15);
    }
    cr_assert(wait_count(&g.count, 2, 5000));
    pthread_mutex_lock(&g.mu);
    cr_expect_eq(g.lens[0], sizeof msg);
    cr_expect_eq(memcmp(g.msgs[0], msg, sizeof msg), 0);
    cr_expect_eq(g.lens[1], 1);
    cr_expect_eq(g.msgs[1][0], 'z');
    pthread_mutex_unlock(&g.mu);
    /* ending inside a frame is counted */
    cr_assert_eq(write(fd, "\x10\0\0\0ab", 6), 6);
    sleep_ms(20);
    close(fd);
    int64_t end = now_ms() + 5000;
    while (atomic_load(&g.nclosed) < 1 && now_ms() < end)
        sleep_ms(2);
    ot_ustream_stats s;
    ot_ustream_get_stats(u, &s);
    cr_expect_eq(s.incomplete, 1);
    ot_ustream_stop(u);
    got_free(&g);
    rm_tmpdir();
}

/* A frame beyond the first 64 KiB buffer makes it grow, once. */
Test(dgram, ustream_large_frame_within_limit)
{
    mk_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/s.socket", tmpdir);
    got g = {0};
    ot_ustream *u = ustream_at(path, &g, OT_USTREAM_FRAMED, 300000);
    int fd = unix_client(SOCK_STREAM, path);
    size_t len = 200000;
    uint8_t *buf = malloc(4 + len + 20);
    char *msg = malloc(len);
    for (size_t i = 0; i < len; i++)
        msg[i] = (char)(i * 7);
    /* small frames first, in the same write: they are handed over before
     * the buffer grows under them */
    size_t total = frame(buf, "s1", 2);
    total += frame(buf + total, "s2", 2);
    total += frame(buf + total, msg, len);
    size_t off = 0;
    while (off < total) {
        ssize_t w = write(fd, buf + off, total - off);
        cr_assert(w > 0);
        off += (size_t)w;
    }
    cr_assert(wait_count(&g.count, 3, 5000));
    pthread_mutex_lock(&g.mu);
    cr_expect_eq(g.n, 2);
    cr_expect_eq(memcmp(g.msgs[0], "s1", 2), 0);
    cr_expect_eq(memcmp(g.msgs[1], "s2", 2), 0);
    cr_expect_eq(g.big_len, len);
    cr_expect(g.big && memcmp(g.big, msg, len) == 0);
    pthread_mutex_unlock(&g.mu);
    close(fd);
    free(buf);
    free(msg);
    ot_ustream_stop(u);
    got_free(&g);
    rm_tmpdir();
}

static bool peer_closed(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    ssize_t r = read(fd, &c, 1);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

Test(dgram, ustream_oversized_frame_closes_only_its_connection)
{
    mk_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/s.socket", tmpdir);
    got g = {0};
    ot_counter over = {0};
    pthread_mutex_init(&g.mu, NULL);
    ot_ustream_opts o = {.socket_path = path, .max_packet_size = 100, .fn = on_frames,
                         .on_close = on_conn_close, .ud = &g, .oversized_total = &over};
    ot_err err = {{0}};
    ot_ustream *u = ot_ustream_start(&o, &err);
    cr_assert_not_null(u, "%s", err.msg);
    int good = unix_client(SOCK_STREAM, path);
    int bad = unix_client(SOCK_STREAM, path);
    uint8_t buf[256];
    size_t n = frame(buf, "ok1", 3);
    cr_assert_eq(write(good, buf, n), (ssize_t)n);
    cr_assert(wait_count(&g.count, 1, 5000));
    /* the good frames before it in the same write still count */
    char filler[101] = {0};
    n = frame(buf, "pre", 3);
    n += frame(buf + n, filler, 101);
    cr_assert_eq(write(bad, buf, n), (ssize_t)n);
    cr_expect(peer_closed(bad, 5000), "the oversized sender stays connected");
    cr_assert(wait_count(&g.count, 2, 5000));
    n = frame(buf, "ok2", 3);
    cr_assert_eq(write(good, buf, n), (ssize_t)n);
    cr_assert(wait_count(&g.count, 3, 5000));
    /* exactly the limit is fine */
    n = frame(buf, filler, 100);
    cr_assert_eq(write(good, buf, n), (ssize_t)n);
    cr_assert(wait_count(&g.count, 4, 5000));
    pthread_mutex_lock(&g.mu);
    cr_expect_eq(memcmp(g.msgs[1], "pre", 3), 0);
    cr_expect_neq(g.conns[1], g.conns[0]);
    cr_expect_eq(memcmp(g.msgs[2], "ok2", 3), 0);
    cr_expect_eq(g.conns[0], g.conns[2]);
    cr_expect_eq(g.lens[3], 100);
    pthread_mutex_unlock(&g.mu);
    ot_ustream_stats s;
    ot_ustream_get_stats(u, &s);
    cr_expect_eq(s.oversized, 1);
    cr_expect_eq(s.incomplete, 0);
    cr_expect_eq(s.open, 1);
    cr_expect_eq(atomic_load(&over.v), 1);
    cr_expect_eq(atomic_load(&g.nclosed), 1);
    cr_expect_neq(g.closed[0], g.conns[0]);
    close(bad);
    /* stop closes the good one, reports it, and is prompt */
    int64_t t0 = now_ms();
    ot_ustream_stop(u);
    cr_expect_lt(now_ms() - t0, 500);
    cr_expect_eq(atomic_load(&g.nclosed), 2);
    cr_expect_eq(g.closed[1], g.conns[0]);
    cr_expect(peer_closed(good, 1000));
    close(good);
    got_free(&g);
    rm_tmpdir();
}

Test(dgram, ustream_raw_delivers_the_bytes_in_order)
{
    mk_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/s.socket", tmpdir);
    got g = {0};
    ot_ustream *u = ustream_at(path, &g, OT_USTREAM_RAW, 0);
    int fd = unix_client(SOCK_STREAM, path);
    cr_assert_eq(write(fd, "a:1|c\nb:", 8), 8);
    sleep_ms(20);
    cr_assert_eq(write(fd, "2|c\n", 4), 4);
    int64_t end = now_ms() + 5000;
    for (;;) {
        pthread_mutex_lock(&g.mu);
        size_t tb = g.total_bytes;
        pthread_mutex_unlock(&g.mu);
        if (tb >= 12 || now_ms() > end)
            break;
        sleep_ms(2);
    }
    pthread_mutex_lock(&g.mu);
    char all[64] = {0};
    size_t off = 0;
    for (size_t i = 0; i < g.n; i++) {
        memcpy(all + off, g.msgs[i], g.lens[i]);
        off += g.lens[i];
    }
    cr_expect_str_eq(all, "a:1|c\nb:2|c\n");
    pthread_mutex_unlock(&g.mu);
    close(fd);
    ot_ustream_stop(u);
    got_free(&g);
    rm_tmpdir();
}

Test(dgram, ustream_stop_idle_is_prompt_and_path_errors_are_clear)
{
    mk_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/s.socket", tmpdir);
    got g = {0};
    ot_ustream *u = ustream_at(path, &g, OT_USTREAM_FRAMED, 0);
    ot_ustream_opts o = {.socket_path = path, .fn = on_frames, .ud = &g};
    ot_err err = {{0}};
    cr_expect_null(ot_ustream_start(&o, &err));
    char want[256];
    snprintf(want, sizeof want, "listen unix %s: socket in use by another process", path);
    cr_expect_str_eq(err.msg, want);
    sleep_ms(30);
    int64_t t0 = now_ms();
    ot_ustream_stop(u);
    cr_expect_lt(now_ms() - t0, 500);
    ot_ustream_stop(NULL);
    char longp[200];
    memset(longp, 'p', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = 0;
    o.socket_path = longp;
    cr_expect_null(ot_ustream_start(&o, &err));
    cr_expect(strstr(err.msg, "path longer than 107 bytes"), "%s", err.msg);
    got_free(&g);
    rm_tmpdir();
}
