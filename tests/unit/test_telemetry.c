/* test_telemetry.c: the self-metrics registry, its Prometheus text, and the
 * /metrics /healthz /readyz server, spoken to over a plain socket. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "telemetry/telemetry.h"
#include "pipeline/telemetry_server.h"
#include "base/version.h"

static void setup(void)
{
    ot_tel_reset();
    ot_tel_set_ready(false);
}

static void teardown(void)
{
    ot_tel_reset();
}

TestSuite(telemetry, .init = setup, .fini = teardown);

static char *render(void)
{
    ot_buf b = OT_BUF_INIT;
    ot_tel_render(&b);
    cr_assert(!b.oom && b.data);
    return b.data;
}

/* The registered part of the text: what comes before the first built-in
 * family (tests name their metrics "a_..." so they sort first). */
static char *render_registered(void)
{
    char *t = render();
    char *cut = strstr(t, "# HELP otelite_build_info");
    cr_assert(cut);
    *cut = '\0';
    return t;
}

Test(telemetry, same_name_and_labels_same_cell)
{
    ot_counter *a = ot_tel_counter("a_spans_total", "Spans.", "receiver=\"otlp\"");
    ot_counter *b = ot_tel_counter("a_spans_total", "Spans.", "receiver=\"otlp\"");
    ot_counter *c = ot_tel_counter("a_spans_total", "Spans.", "receiver=\"jsonlog\"");
    /* label order and spacing do not make a different series */
    ot_counter *d = ot_tel_counter("a_x_total", "X.", "b=\"2\",a=\"1\"");
    ot_counter *e = ot_tel_counter("a_x_total", "X.", " a = \"1\" , b=\"2\",");
    cr_assert_eq(a, b);
    cr_assert_neq(a, c);
    cr_assert_eq(d, e);
    ot_counter_add(a, 3);
    ot_counter_add(b, 4);
    cr_assert_eq(atomic_load(&a->v), 7);
    cr_assert_eq(atomic_load(&c->v), 0);

    ot_gauge *g = ot_tel_gauge("a_queue_size", "Queue.", "");
    cr_assert_eq(g, ot_tel_gauge("a_queue_size", "Queue.", ""));
    ot_gauge_set(g, 10);
    ot_gauge_add(g, -12);
    cr_assert_eq(atomic_load(&g->v), -2);
}

Test(telemetry, render_exact_format)
{
    ot_counter *ok = ot_tel_counter("a_requests_total", "Requests handled.", "code=\"200\"");
    ot_counter *bad = ot_tel_counter("a_requests_total", "Requests handled.", "code=\"500\"");
    ot_counter *none = ot_tel_counter("a_requests_total", "Requests handled.", "");
    ot_gauge *q = ot_tel_gauge("a_queue_size", "Items queued.", "exporter=\"otlp\",a=\"x\"");
    ot_counter *esc = ot_tel_counter("a_paths_total", "Help with \\ and\nnewline.",
                                     "path=\"C:\\\\dir\\\"q\\\"\nx\\d\"");
    ot_counter_add(ok, 5);
    ot_counter_add(bad, 1);
    ot_counter_add(none, 2);
    ot_gauge_set(q, -3);
    ot_counter_add(esc, 1);
    char *t = render_registered();
    cr_assert_str_eq(t, "# HELP a_paths_total Help with \\\\ and\\nnewline.\n"
                        "# TYPE a_paths_total counter\n"
                        "a_paths_total{path=\"C:\\\\dir\\\"q\\\"\\nx\\\\d\"} 1\n"
                        "# HELP a_queue_size Items queued.\n"
                        "# TYPE a_queue_size gauge\n"
                        "a_queue_size{a=\"x\",exporter=\"otlp\"} -3\n"
                        "# HELP a_requests_total Requests handled.\n"
                        "# TYPE a_requests_total counter\n"
                        "a_requests_total 2\n"
                        "a_requests_total{code=\"200\"} 5\n"
                        "a_requests_total{code=\"500\"} 1\n");
    free(t);
}

static bool ordered(const char *t)
{
    char prev[256] = "";
    for (const char *p = strstr(t, "# TYPE "); p; p = strstr(p + 1, "\n# TYPE ")) {
        const char *name = strchr(p, 'T') + 5;
        size_t n = strcspn(name, " ");
        char cur[256];
        snprintf(cur, sizeof cur, "%.*s", (int)n, name);
        if (strcmp(prev, cur) >= 0)
            return false;
        strcpy(prev, cur);
    }
    return true;
}

Test(telemetry, families_sorted_with_process_metrics)
{
    ot_tel_gauge("zz_last_bytes", "Last.", "");
    ot_tel_counter("otelite_v_total", "Between uptime and process.", "");
    ot_tel_counter("a_first_total", "First.", "");
    char *t = render();
    cr_assert(ordered(t), "%s", t);
    cr_assert(strstr(t, "\n# TYPE otelite_v_total counter\n"));
    cr_assert(strstr(t, "\nzz_last_bytes 0\n"));
    /* deterministic: the registered part renders the same twice */
    char *a = render_registered(), *b = render_registered();
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    free(t);
}

static double sample(const char *t, const char *series)
{
    char key[256];
    snprintf(key, sizeof key, "\n%s ", series);
    const char *p = strstr(t, key);
    cr_assert(p, "no %s in:\n%s", series, t);
    return strtod(p + strlen(key), NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(telemetry, process_metrics)
{
    /* the process has lived at least this long when we render */
    double t0 = now_s();
    nanosleep(&(struct timespec){0, 60 * 1000 * 1000}, NULL);
    char *t = render();
    cr_assert_gt(sample(t, "process_resident_memory_bytes"), 1024 * 1024);
    cr_assert_gt(sample(t, "process_virtual_memory_bytes"),
                 sample(t, "process_resident_memory_bytes"));
    cr_assert_geq(sample(t, "process_cpu_seconds_total"), 0);
    cr_assert_geq(sample(t, "process_open_fds"), 3);
    cr_assert_gt(sample(t, "process_max_fds"), sample(t, "process_open_fds"));
    double start = sample(t, "process_start_time_seconds");
    double up = sample(t, "otelite_uptime_seconds");
    double now = now_s();
    /* ticks are 10ms: allow that much on each side */
    cr_assert(start > now - 3600 && start <= t0 + 0.02, "start %f t0 %f", start, t0);
    cr_assert(up >= 0.04 && up < 3600, "uptime %f", up);
    cr_assert(start + up > now - 0.05 && start + up < now + 0.05, "start %f up %f now %f",
              start, up, now);
    cr_assert(strstr(t, "\n# TYPE process_cpu_seconds_total counter\n"));
    char build[256];
    snprintf(build, sizeof build, "\notelite_build_info{revision=\"%s\",version=\"%s\"} 1\n",
             ot_revision(), OT_VERSION);
    cr_assert(strstr(t, build), "%s", t);
    free(t);
}

Test(telemetry, refused_registrations_get_a_sink)
{
    ot_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    ot_counter *good = ot_tel_counter("a_good_total", "Good.", "");
    ot_counter *refused[] = {
        ot_tel_counter("a_no_suffix", "Counter without _total.", ""),
        ot_tel_counter("1a_total", "Starts with a digit.", ""),
        ot_tel_counter("a b_total", "Space.", ""),
        ot_tel_counter("a_nohelp_total", "", ""),
        ot_tel_counter("a_badlab_total", "Bad labels.", "x=unquoted"),
        ot_tel_counter("a_badlab_total", "Bad labels.", "x=\"1\",x=\"2\""),
        ot_tel_counter("a_badlab_total", "Bad labels.", "__x=\"1\""),
        ot_tel_counter("a_badlab_total", "Bad labels.", "x=\"open"),
        ot_tel_counter("process_cpu_seconds_total", "Reserved.", ""),
    };
    ot_gauge *g_refused[] = {
        ot_tel_gauge("a_good_total", "Gauge named like a counter.", ""),
        ot_tel_gauge("process_open_fds", "Reserved.", ""),
    };
    ot_gauge *g_ok = ot_tel_gauge("a_kind", "Gauge.", "");
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        cr_assert_not_null(refused[i]);
        cr_assert_neq(refused[i], good);
        ot_counter_add(refused[i], 1); /* must be harmless */
    }
    cr_assert_eq(g_refused[0], g_refused[1]); /* the one sink */
    cr_assert_neq(g_refused[0], g_ok);
    char *t = render();
    cr_assert_null(strstr(t, "a_no_suffix"));
    cr_assert_null(strstr(t, "a_nohelp"));
    cr_assert_null(strstr(t, "a_badlab"));
    cr_assert_null(strstr(t, "Reserved."));
    cr_assert_null(strstr(t, "Gauge named like"));
    cr_assert(strstr(t, "\n# TYPE a_kind gauge\n"));
    cr_assert(strstr(t, "\n# TYPE a_good_total counter\n"));
    free(t);
    ot_log_set_fd(-1);
}

enum { THREADS = 8, ADDS = 100000 };

static void *adder(void *arg)
{
    ot_counter *c = ot_tel_counter("a_concurrent_total", "Concurrent adds.", "k=\"v\"");
    for (int i = 0; i < ADDS; i++)
        ot_counter_add(c, 1);
    /* registrations of other series while others add: cells must not move */
    char lab[32];
    snprintf(lab, sizeof lab, "t=\"%d\"", (int)(intptr_t)arg);
    ot_gauge_add(ot_tel_gauge("a_threads", "Per thread.", lab), 1);
    return c;
}

Test(telemetry, concurrent_adds_exact_sum)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, adder, (void *)(intptr_t)i), 0);
    void *cells[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], &cells[i]);
    for (int i = 1; i < THREADS; i++)
        cr_assert_eq(cells[i], cells[0]);
    ot_counter *c = cells[0];
    cr_assert_eq(atomic_load(&c->v), (uint64_t)THREADS * ADDS);
    char *t = render();
    cr_assert(strstr(t, "\na_concurrent_total{k=\"v\"} 800000\n"));
    cr_assert(strstr(t, "\na_threads{t=\"7\"} 1\n"));
    free(t);
}

Test(telemetry, reset_then_register_again)
{
    ot_counter *c = ot_tel_counter("a_reset_total", "Reset.", "");
    ot_counter_add(c, 9);
    ot_tel_reset();
    char *t = render();
    cr_assert_null(strstr(t, "a_reset_total"));
    free(t);
    c = ot_tel_counter("a_reset_total", "Reset.", "");
    cr_assert_eq(atomic_load(&c->v), 0);
    t = render();
    cr_assert(strstr(t, "\na_reset_total 0\n"));
    free(t);
}

static int run_promtool(const char *text)
{
    FILE *p = popen("/usr/bin/promtool check metrics >&2", "w");
    cr_assert(p);
    fputs(text, p);
    int st = pclose(p);
    cr_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

Test(telemetry, promtool_accepts_render)
{
    if (access("/usr/bin/promtool", X_OK) != 0)
        cr_skip_test("/usr/bin/promtool not installed");
    /* the pipe really judges: a counter without _total is a lint error */
    cr_assert_neq(run_promtool("# HELP x_bytes X.\n# TYPE x_bytes counter\nx_bytes 1\n"), 0);

    ot_counter_add(ot_tel_counter("otelite_receiver_accepted_spans_total",
                                  "Spans accepted by a receiver.",
                                  "receiver=\"otlp\",transport=\"grpc\""),
                   10);
    ot_counter_add(ot_tel_counter("otelite_receiver_accepted_spans_total",
                                  "Spans accepted by a receiver.",
                                  "receiver=\"otlp/2\",transport=\"http\""),
                   1);
    ot_gauge_set(ot_tel_gauge("otelite_exporter_queue_size", "Batches in the queue.",
                              "exporter=\"weird \\\"name\\\" \\\\ here\""),
                 3);
    ot_tel_gauge("otelite_exporter_queue_capacity", "Queue capacity.", "exporter=\"otlp\"");
    char *t = render();
    int rc = run_promtool(t);
    cr_assert_eq(rc, 0, "promtool refused:\n%s", t);
    free(t);
}

/* ---- HTTP ------------------------------------------------------------- */

typedef struct resp {
    int status;
    char head[2048];
    char *body;
} resp;

static resp http(int family, int port, const char *request)
{
    resp r = {0};
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof *a;
    }
    cr_assert_eq(connect(fd, (struct sockaddr *)&ss, sl), 0, "connect: %s", strerror(errno));
    cr_assert_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    ot_buf b = OT_BUF_INIT;
    char tmp[4096];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
        ot_buf_append(&b, tmp, (size_t)n);
    close(fd);
    cr_assert(b.data, "empty response");
    cr_assert_eq(sscanf(b.data, "HTTP/1.%*d %d", &r.status), 1, "%s", b.data);
    char *end = strstr(b.data, "\r\n\r\n");
    cr_assert(end);
    snprintf(r.head, sizeof r.head, "%.*s", (int)(end - b.data), b.data);
    r.body = strdup(end + 4);
    ot_buf_free(&b);
    return r;
}

static resp get(int port, const char *method, const char *path)
{
    char req[256];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", method,
             path);
    return http(AF_INET, port, req);
}

static bool has_header(const resp *r, const char *line)
{
    /* header names are case-insensitive; the library writes them as given */
    char want[256];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    char head[sizeof r->head + 2];
    snprintf(head, sizeof head, "%s\r\n", r->head);
    return strcasestr(head, want) != NULL;
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(telemetry, http_routes)
{
    int fds_before = count_fds();
    ot_endpoint ep = {.host = "127.0.0.1", .port = 0, .text = "127.0.0.1:0"};
    ot_err err = {{0}};
    ot_tel_server *s = ot_tel_server_start(&ep, &err);
    cr_assert_not_null(s, "%s", err.msg);
    int port = ot_tel_server_port(s);
    cr_assert(port > 0 && port < 65536);
    ot_counter_add(ot_tel_counter("a_http_total", "Via HTTP.", "x=\"y\""), 42);

    resp r = get(port, "GET", "/metrics");
    cr_assert_eq(r.status, 200);
    cr_assert(has_header(&r, "Content-Type: text/plain; version=0.0.4; charset=utf-8"), "%s",
              r.head);
    cr_assert(strstr(r.body, "# TYPE a_http_total counter\na_http_total{x=\"y\"} 42\n"));
    cr_assert(strstr(r.body, "\n# TYPE process_open_fds gauge\n"));
    free(r.body);

    r = get(port, "GET", "/healthz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok");
    free(r.body);

    r = get(port, "GET", "/readyz");
    cr_assert_eq(r.status, 503);
    cr_assert_str_eq(r.body, "not ready");
    free(r.body);
    ot_tel_set_ready(true);
    r = get(port, "GET", "/readyz?verbose=1");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ready");
    free(r.body);

    r = get(port, "HEAD", "/healthz");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "");
    free(r.body);

    r = get(port, "GET", "/nope");
    cr_assert_eq(r.status, 404);
    free(r.body);
    r = get(port, "GET", "/metrics/");
    cr_assert_eq(r.status, 404);
    free(r.body);

    r = get(port, "DELETE", "/metrics");
    cr_assert_eq(r.status, 405);
    cr_assert(has_header(&r, "Allow: GET, HEAD"), "%s", r.head);
    free(r.body);
    r = http(AF_INET, port,
             "POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Length: 5\r\n\r\nhello");
    cr_assert_eq(r.status, 405);
    free(r.body);

    ot_tel_server_stop(s);
    cr_assert_eq(count_fds(), fds_before, "fds leaked by start/stop");
}

Test(telemetry, bind_failure_is_reported)
{
    ot_endpoint ep = {.host = "127.0.0.1", .port = 0};
    ot_err err = {{0}};
    ot_tel_server *s = ot_tel_server_start(&ep, &err);
    cr_assert_not_null(s, "%s", err.msg);
    char text[64];
    snprintf(text, sizeof text, "127.0.0.1:%d", ot_tel_server_port(s));
    ot_endpoint busy = {.host = "127.0.0.1", .port = ot_tel_server_port(s), .text = text};
    int fds_before = count_fds();
    cr_assert_null(ot_tel_server_start(&busy, &err));
    char want[128];
    snprintf(want, sizeof want, "listen %s: Address already in use", text);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(count_fds(), fds_before);

    /* a host that does not resolve is an error too, not a crash */
    ot_endpoint bogus = {.host = "no-such-host.invalid", .port = 0,
                         .text = "no-such-host.invalid:0"};
    cr_assert_null(ot_tel_server_start(&bogus, &err));
    const char *pre = "listen no-such-host.invalid:0: ";
    cr_assert(strncmp(err.msg, pre, strlen(pre)) == 0 && strlen(err.msg) > strlen(pre), "%s",
              err.msg);
    ot_tel_server_stop(s);
}

Test(telemetry, localhost_binds_ipv4_first)
{
    ot_endpoint ep = {.host = "localhost", .port = 0, .text = "localhost:0"};
    ot_err err = {{0}};
    ot_tel_server *s = ot_tel_server_start(&ep, &err);
    cr_assert_not_null(s, "%s", err.msg);
    resp r = get(ot_tel_server_port(s), "GET", "/healthz");
    cr_assert_eq(r.status, 200);
    free(r.body);
    ot_tel_server_stop(s);
}

Test(telemetry, ipv6_loopback)
{
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have6 = probe >= 0 && bind(probe, (struct sockaddr *)&a, sizeof a) == 0;
    if (probe >= 0)
        close(probe);
    if (!have6)
        cr_skip_test("no IPv6 loopback here");
    ot_endpoint ep = {.host = "::1", .port = 0, .text = "[::1]:0"};
    ot_err err = {{0}};
    ot_tel_server *s = ot_tel_server_start(&ep, &err);
    cr_assert_not_null(s, "%s", err.msg);
    resp r = http(AF_INET6, ot_tel_server_port(s),
                  "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "ok");
    free(r.body);
    ot_tel_server_stop(s);
}
