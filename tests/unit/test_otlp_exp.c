/* Unit tests for the OTLP exporters' protocol rules: which gRPC codes and
 * HTTP statuses are retried, Retry-After in both forms, RetryInfo inside
 * grpc-status-details-bin, endpoint and URL building, partial success, and
 * the gRPC client's failure paths against sockets that never answer. */
#include <criterion/criterion.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../exporters/otlp/otlpexp.h"
#include "base/codec.h"
#include "base/compress.h"
#include "net/http_client.h"
#include "pipeline/factory.h"
#include "base/log.h"

#define SEC 1000000000LL

/* ---- gRPC status → outcome ------------------------------------------------ */

Test(otlpexp, grpc_codes_follow_the_otlp_retry_rule)
{
    static const struct {
        int code;
        ot_status without, with;
    } t[] = {
        {OT_GRPC_OK, OT_OK, OT_OK},
        {OT_GRPC_CANCELLED, OT_RETRYABLE, OT_RETRYABLE},
        {OT_GRPC_UNKNOWN, OT_PERMANENT, OT_PERMANENT},
        {OT_GRPC_INVALID_ARGUMENT, OT_PERMANENT, OT_PERMANENT},
        {OT_GRPC_DEADLINE_EXCEEDED, OT_RETRYABLE, OT_RETRYABLE},
        {OT_GRPC_NOT_FOUND, OT_PERMANENT, OT_PERMANENT},
        {OT_GRPC_ALREADY_EXISTS, OT_PERMANENT, OT_PERMANENT},
        {OT_GRPC_PERMISSION_DENIED, OT_PERMANENT, OT_PERMANENT},
        {OT_GRPC_RESOURCE_EXHAUSTED, OT_PERMANENT, OT_RETRYABLE},
        {OT_GRPC_FAILED_PRECONDITION, OT_PERMANENT, OT_PERMANENT},
        {OT_GRPC_ABORTED, OT_RETRYABLE, OT_RETRYABLE},
        {OT_GRPC_OUT_OF_RANGE, OT_RETRYABLE, OT_RETRYABLE},
        {OT_GRPC_UNIMPLEMENTED, OT_PERMANENT, OT_PERMANENT},
        {OT_GRPC_INTERNAL, OT_PERMANENT, OT_PERMANENT},
        {OT_GRPC_UNAVAILABLE, OT_RETRYABLE, OT_RETRYABLE},
        {OT_GRPC_DATA_LOSS, OT_RETRYABLE, OT_RETRYABLE},
        {OT_GRPC_UNAUTHENTICATED, OT_PERMANENT, OT_PERMANENT},
        {17, OT_PERMANENT, OT_PERMANENT},
        {-1, OT_PERMANENT, OT_PERMANENT},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cr_expect_eq(ot_otlpexp_grpc_outcome(t[i].code, false), t[i].without, "code %d", t[i].code);
        cr_expect_eq(ot_otlpexp_grpc_outcome(t[i].code, true), t[i].with, "code %d + RetryInfo",
                     t[i].code);
    }
    cr_expect_str_eq(ot_grpc_code_name(OT_GRPC_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    cr_expect_str_eq(ot_grpc_code_name(99), "UNKNOWN");
}

Test(otlpexp, responses_without_grpc_status_map_as_grpc_does)
{
    cr_expect_eq(ot_grpc_code_from_http(400), OT_GRPC_INTERNAL);
    cr_expect_eq(ot_grpc_code_from_http(401), OT_GRPC_UNAUTHENTICATED);
    cr_expect_eq(ot_grpc_code_from_http(403), OT_GRPC_PERMISSION_DENIED);
    cr_expect_eq(ot_grpc_code_from_http(404), OT_GRPC_UNIMPLEMENTED);
    cr_expect_eq(ot_grpc_code_from_http(503), OT_GRPC_UNAVAILABLE);
    cr_expect_eq(ot_grpc_code_from_http(500), OT_GRPC_UNKNOWN);
    cr_expect_eq(ot_grpc_code_from_h2(0x7), OT_GRPC_UNAVAILABLE); /* REFUSED_STREAM */
    cr_expect_eq(ot_grpc_code_from_h2(0x8), OT_GRPC_CANCELLED);
    cr_expect_eq(ot_grpc_code_from_h2(0xb), OT_GRPC_RESOURCE_EXHAUSTED);
    cr_expect_eq(ot_grpc_code_from_h2(0x2), OT_GRPC_INTERNAL);
}

/* ---- google.rpc.Status ------------------------------------------------------ */

static size_t b64(const uint8_t *in, size_t n, char *out, bool pad)
{
    size_t len = ot_base64_encode(in, n, out, pad ? 0 : OT_B64_NOPAD);
    out[len] = '\0';
    return len;
}

/* A Status as a server would send it: code, message, and optionally a
 * RetryInfo (plus an unrelated detail before it). */
static size_t make_status(uint8_t *out, int code, const char *msg, int64_t sec, int32_t nanos,
                          bool retry_info)
{
    Google__Rpc__Duration d = GOOGLE__RPC__DURATION__INIT;
    d.seconds = sec;
    d.nanos = nanos;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    ri.retry_delay = &d;
    uint8_t ribuf[64];
    size_t rilen = google__rpc__retry_info__pack(&ri, ribuf);
    Google__Rpc__Any other = GOOGLE__RPC__ANY__INIT, any = GOOGLE__RPC__ANY__INIT;
    other.type_url = "type.googleapis.com/google.rpc.ErrorInfo";
    other.value.data = (uint8_t *)"xyz";
    other.value.len = 3;
    any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
    any.value.data = ribuf;
    any.value.len = rilen;
    Google__Rpc__Any *details[] = {&other, &any};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = code;
    st.message = (char *)msg;
    st.details = details;
    st.n_details = retry_info ? 2 : 1;
    return google__rpc__status__pack(&st, out);
}

Test(otlpexp, status_details_bin_yields_retry_info)
{
    uint8_t raw[256];
    char enc[400];
    size_t n = make_status(raw, OT_GRPC_RESOURCE_EXHAUSTED, "slow down", 1, 500000000, true);
    for (int pad = 0; pad <= 1; pad++) {
        size_t el = b64(raw, n, enc, pad);
        ot_grpc_status st;
        cr_assert_eq(ot_grpc_status_from_bin(enc, el, &st), 0);
        cr_expect_eq(st.code, OT_GRPC_RESOURCE_EXHAUSTED);
        cr_expect_str_eq(st.msg, "slow down");
        cr_expect(st.has_retry_info);
        cr_expect_eq(st.retry_delay_ns, 1500000000LL);
        cr_expect_eq(ot_otlpexp_grpc_outcome(st.code, st.has_retry_info), OT_RETRYABLE);
    }
}

Test(otlpexp, status_without_retry_info_is_permanent_exhaustion)
{
    uint8_t raw[256];
    char enc[400];
    size_t n = make_status(raw, OT_GRPC_RESOURCE_EXHAUSTED, "too big", 0, 0, false);
    ot_grpc_status st;
    cr_assert_eq(ot_grpc_status_from_bin(enc, b64(raw, n, enc, true), &st), 0);
    cr_expect_eq(st.code, OT_GRPC_RESOURCE_EXHAUSTED);
    cr_expect_not(st.has_retry_info);
    cr_expect_eq(st.retry_delay_ns, 0);
    cr_expect_eq(ot_otlpexp_grpc_outcome(st.code, st.has_retry_info), OT_PERMANENT);
}

Test(otlpexp, bad_status_details_are_refused)
{
    ot_grpc_status st;
    cr_expect_eq(ot_grpc_status_from_bin("!!!!", 4, &st), -1);
    cr_expect_eq(ot_grpc_status_from_bin("A", 1, &st), -1);
    /* Valid base64 of bytes that are not a Status (field 1 as a length). */
    cr_expect_eq(ot_grpc_status_from_bin("Cv8=", 4, &st), -1);
    uint8_t out[8];
    cr_expect_eq(ot_base64_decode("aGk", 3, out), 2);
    cr_expect_eq(memcmp(out, "hi", 2), 0);
    cr_expect_eq(ot_base64_decode("-_8", 3, out), 2); /* URL alphabet */
    cr_expect_eq(out[0], 0xfb);
    cr_expect_eq(out[1], 0xff);
}

Test(otlpexp, status_json_body_gives_the_message)
{
    const char *j = "{\"code\":3,\"message\":\"bad span\",\"details\":[]}";
    ot_grpc_status st;
    cr_assert_eq(ot_otlpexp_status_from_json(j, strlen(j), &st), 0);
    cr_expect_eq(st.code, 3);
    cr_expect_str_eq(st.msg, "bad span");
    cr_expect_eq(ot_otlpexp_status_from_json("{", 1, &st), -1);
}

Test(otlpexp, grpc_message_is_percent_decoded)
{
    char out[64];
    const char *in = "no%20space%3A left%";
    ot_grpc_percent_decode(in, strlen(in), out, sizeof out);
    cr_expect_str_eq(out, "no space: left%");
    ot_grpc_percent_decode("abcdef", 6, out, 4);
    cr_expect_str_eq(out, "abc");
}

Test(otlpexp, grpc_timeout_header_rounds_up_and_fits_eight_digits)
{
    char t[16];
    ot_grpc_timeout_format(5 * SEC, t);
    cr_expect_str_eq(t, "5000m");
    ot_grpc_timeout_format(5 * SEC + 1, t);
    cr_expect_str_eq(t, "5001m");
    ot_grpc_timeout_format(1500, t);
    cr_expect_str_eq(t, "1500n");
    ot_grpc_timeout_format(0, t);
    cr_expect_str_eq(t, "1n");
    ot_grpc_timeout_format(200000 * SEC, t); /* 2e8 ms: too many digits */
    cr_expect_str_eq(t, "200000S");
    ot_grpc_timeout_format(INT64_MAX, t);
    cr_expect(strlen(t) <= 9 && strchr("SMH", t[strlen(t) - 1]), "%s", t);
}

Test(otlpexp, grpc_paths_name_the_export_methods)
{
    cr_expect_str_eq(ot_grpc_path(OT_TRACES),
                     "/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    cr_expect_str_eq(ot_grpc_path(OT_METRICS),
                     "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export");
    cr_expect_str_eq(ot_grpc_path(OT_LOGS),
                     "/opentelemetry.proto.collector.logs.v1.LogsService/Export");
}

/* ---- HTTP ------------------------------------------------------------------ */

Test(otlpexp, http_statuses_follow_the_otlp_http_rule)
{
    static const struct {
        long st;
        ot_status want;
    } t[] = {
        {200, OT_OK},        {202, OT_OK},        {204, OT_OK},        {429, OT_RETRYABLE},
        {502, OT_RETRYABLE}, {503, OT_RETRYABLE}, {504, OT_RETRYABLE}, {400, OT_PERMANENT},
        {401, OT_PERMANENT}, {403, OT_PERMANENT}, {404, OT_PERMANENT}, {413, OT_PERMANENT},
        {500, OT_PERMANENT}, {501, OT_PERMANENT}, {301, OT_PERMANENT}, {0, OT_PERMANENT},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        cr_expect_eq(ot_http_status_outcome((int)t[i].st), t[i].want, "HTTP %ld", t[i].st);
}

Test(otlpexp, retry_after_seconds)
{
    int64_t ns = -1;
    cr_assert_eq(ot_http_parse_retry_after("120", 0, &ns), 0);
    cr_expect_eq(ns, 120 * SEC);
    cr_assert_eq(ot_http_parse_retry_after(" 1 \r\n", 0, &ns), 0);
    cr_expect_eq(ns, 1 * SEC);
    cr_assert_eq(ot_http_parse_retry_after("0", 0, &ns), 0);
    cr_expect_eq(ns, 0);
    /* Absurd values are capped, not wrapped. */
    cr_assert_eq(ot_http_parse_retry_after("99999999999999999999999", 0, &ns), 0);
    cr_expect(ns > 0);
    cr_expect_eq(ot_http_parse_retry_after("-5", 0, &ns), -1);
    cr_expect_eq(ot_http_parse_retry_after("1.5", 0, &ns), -1);
    cr_expect_eq(ot_http_parse_retry_after("soon", 0, &ns), -1);
    cr_expect_eq(ot_http_parse_retry_after("", 0, &ns), -1);
}

Test(otlpexp, retry_after_http_date_in_all_three_forms)
{
    const time_t t = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
    int64_t ns = -1;
    cr_assert_eq(ot_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", t - 30, &ns), 0);
    cr_expect_eq(ns, 30 * SEC);
    cr_assert_eq(ot_http_parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", t - 2, &ns), 0);
    cr_expect_eq(ns, 2 * SEC);
    cr_assert_eq(ot_http_parse_retry_after("Wed Oct 21 07:28:00 2015", t - 7, &ns), 0);
    cr_expect_eq(ns, 7 * SEC);
    /* A date already past means "now". */
    cr_assert_eq(ot_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", t + 100, &ns), 0);
    cr_expect_eq(ns, 0);
    cr_expect_eq(ot_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00", t, &ns), -1);
    cr_expect_eq(ot_http_parse_retry_after("Wed, 32 Oct 2015 07:28:00 GMT", t, &ns), -1);
}

/* ---- endpoints ------------------------------------------------------------- */

Test(otlpexp, grpc_endpoint_scheme_and_insecure_pick_tls)
{
    ot_grpc_target t;
    ot_err e = {{0}};
    cr_assert_eq(ot_grpc_target_parse("collector:4317", false, &t, &e), 0, "%s", e.msg);
    cr_expect(t.tls);
    cr_expect_str_eq(t.host, "collector");
    cr_expect_eq(t.port, 4317);
    cr_expect_str_eq(t.authority, "collector:4317");
    cr_assert_eq(ot_grpc_target_parse("collector:4317", true, &t, &e), 0);
    cr_expect_not(t.tls);
    cr_assert_eq(ot_grpc_target_parse("http://collector:4317", false, &t, &e), 0);
    cr_expect_not(t.tls);
    cr_expect_str_eq(t.host, "collector");
    cr_assert_eq(ot_grpc_target_parse("HTTPS://collector:4317/", true, &t, &e), 0);
    cr_expect(t.tls);
    cr_expect_eq(t.port, 4317);
    cr_assert_eq(ot_grpc_target_parse("https://ingest.example.com", false, &t, &e), 0);
    cr_expect_eq(t.port, 443);
    cr_assert_eq(ot_grpc_target_parse("http://ingest.example.com", false, &t, &e), 0);
    cr_expect_eq(t.port, 80);
    cr_assert_eq(ot_grpc_target_parse("dns:///collector:4317", false, &t, &e), 0);
    cr_expect(t.tls);
    cr_expect_str_eq(t.host, "collector");
    cr_assert_eq(ot_grpc_target_parse("[::1]:4317", true, &t, &e), 0);
    cr_expect_str_eq(t.host, "::1");
    cr_expect_str_eq(t.authority, "[::1]:4317");
}

Test(otlpexp, bad_grpc_endpoints_say_why)
{
    ot_grpc_target t;
    const char *bad[] = {"", "host:0", "host:65536", "host:http", "host:4317/v1/traces",
                         "grpc://host:4317", "::1:4317", "[::1", "[::1]4317", ":4317"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ot_err e = {{0}};
        cr_expect_eq(ot_grpc_target_parse(bad[i], false, &t, &e), -1, "%s accepted", bad[i]);
        cr_expect(e.msg[0], "no message for %s", bad[i]);
    }
}

Test(otlpexp, http_urls_append_the_signal_path_once)
{
    char u[256];
    ot_err e = {{0}};
    cr_assert_eq(ot_otlpexp_signal_url("http://c:4318", NULL, OT_TRACES, u, sizeof u, &e), 0);
    cr_expect_str_eq(u, "http://c:4318/v1/traces");
    cr_assert_eq(ot_otlpexp_signal_url("http://c:4318/", NULL, OT_METRICS, u, sizeof u, &e), 0);
    cr_expect_str_eq(u, "http://c:4318/v1/metrics");
    cr_assert_eq(ot_otlpexp_signal_url("https://h/otlp", "", OT_LOGS, u, sizeof u, &e), 0);
    cr_expect_str_eq(u, "https://h/otlp/v1/logs");
    cr_assert_eq(ot_otlpexp_signal_url("http://c:4318", "https://x/custom", OT_LOGS, u, sizeof u, &e), 0);
    cr_expect_str_eq(u, "https://x/custom");
    cr_assert_eq(ot_otlpexp_signal_url(NULL, "http://x/t", OT_TRACES, u, sizeof u, &e), 0);
    cr_expect_str_eq(u, "http://x/t");
    cr_expect_eq(ot_otlpexp_signal_url(NULL, NULL, OT_TRACES, u, sizeof u, &e), -1);
    cr_expect(strstr(e.msg, "traces_endpoint"), "%s", e.msg);
    cr_expect_eq(ot_otlpexp_signal_url("c:4318", NULL, OT_TRACES, u, sizeof u, &e), -1);
    cr_expect_eq(ot_otlpexp_signal_url("http://c", "ftp://x", OT_TRACES, u, sizeof u, &e), -1);
    cr_expect_eq(ot_otlpexp_signal_url("http://c:4318", NULL, OT_TRACES, u, 10, &e), -1);
}

/* ---- partial success and gzip ---------------------------------------------- */

Test(otlpexp, partial_success_from_protobuf)
{
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
    ps.rejected_data_points = 7;
    ps.error_message = "bad units";
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse r =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
    r.partial_success = &ps;
    uint8_t buf[128];
    size_t n = protobuf_c_message_pack(&r.base, buf);
    int64_t rej = -1;
    char msg[64];
    cr_assert_eq(ot_otlpexp_partial_from_pb(OT_METRICS, buf, n, &rej, msg, sizeof msg), 0);
    cr_expect_eq(rej, 7);
    cr_expect_str_eq(msg, "bad units");
    cr_assert_eq(ot_otlpexp_partial_from_pb(OT_METRICS, buf, 0, &rej, msg, sizeof msg), 0);
    cr_expect_eq(rej, 0);
    cr_expect_str_eq(msg, "");
    cr_expect_eq(ot_otlpexp_partial_from_pb(OT_METRICS, "\x0a\x05", 2, &rej, msg, sizeof msg), -1);
}

Test(otlpexp, partial_success_from_json)
{
    const char *j = "{\"partialSuccess\":{\"rejectedSpans\":\"3\",\"errorMessage\":\"dup\"}}";
    int64_t rej = -1;
    char msg[64];
    cr_assert_eq(ot_otlpexp_partial_from_json(OT_TRACES, j, strlen(j), &rej, msg, sizeof msg), 0);
    cr_expect_eq(rej, 3);
    cr_expect_str_eq(msg, "dup");
    j = "{\"partial_success\":{\"rejected_log_records\":5}}";
    cr_assert_eq(ot_otlpexp_partial_from_json(OT_LOGS, j, strlen(j), &rej, msg, sizeof msg), 0);
    cr_expect_eq(rej, 5);
    cr_assert_eq(ot_otlpexp_partial_from_json(OT_LOGS, "{}", 2, &rej, msg, sizeof msg), 0);
    cr_expect_eq(rej, 0);
}

Test(otlpexp, gzip_round_trips_and_reuses_its_state)
{
    ot_compressor g;
    memset(&g, 0, sizeof g);
    char in[10000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (char)('a' + i % 7);
    ot_err e = {{0}};
    uint64_t taken;
    for (int round = 0; round < 3; round++) {
        size_t n = sizeof in - (size_t)round * 1000;
        cr_assert_eq(ot_compress(&g, OT_COMPRESS_GZIP, in, n, &e), 0, "%s", e.msg);
        cr_expect(g.out.len > 10 && g.out.len < n);
        cr_expect_eq((uint8_t)g.out.data[0], 0x1f); /* gzip magic */
        cr_expect_eq((uint8_t)g.out.data[1], 0x8b);
        uint8_t *back = NULL;
        size_t back_len = 0;
        cr_assert_eq(ot_decompress(OT_COMPRESS_GZIP, (const uint8_t *)g.out.data, g.out.len,
                                   1 << 20, NULL, &taken, &back, &back_len, &e),
                     OT_DECOMP_OK, "%s", e.msg);
        cr_expect_eq(back_len, n);
        cr_expect_eq(memcmp(back, in, n), 0);
        free(back);
    }
    uint8_t *small = NULL;
    size_t small_len = 0;
    cr_expect_eq(ot_decompress(OT_COMPRESS_GZIP, (const uint8_t *)g.out.data, g.out.len, 100,
                               NULL, &taken, &small, &small_len, &e),
                 OT_DECOMP_TOO_LARGE);
    cr_expect_null(small);
    ot_compressor_free(&g);
}

/* ---- the gRPC client's failure paths ---------------------------------------- */

static int listen_port(int *fd_out, bool do_listen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    if (do_listen)
        listen(fd, 8);
    *fd_out = fd;
    return ntohs(a.sin_port);
}

static ot_grpc_client *client_to(int port, ot_grpc_client_cfg *cfg, ot_tls_client *tls)
{
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
    memset(cfg, 0, sizeof *cfg);
    memset(tls, 0, sizeof *tls);
    tls->insecure = true;
    cfg->id = "otlp/test";
    cfg->tls = tls;
    cfg->num_connections = 1;
    ot_log_set_level(OT_LOG_ERROR); /* the expected connect failures are not news */
    ot_err e = {{0}};
    cr_assert_eq(ot_grpc_target_parse(ep, true, &cfg->target, &e), 0);
    ot_grpc_client *g = ot_grpc_client_new(cfg, &e);
    cr_assert(g, "%s", e.msg);
    cr_assert_eq(ot_grpc_client_start(g, &e), 0, "%s", e.msg);
    return g;
}

Test(otlpexp, refused_connection_fails_fast_as_unavailable)
{
    int fd;
    int port = listen_port(&fd, false); /* bound, never listening: refused */
    ot_grpc_client_cfg cfg;
    ot_tls_client tls;
    ot_grpc_client *g = client_to(port, &cfg, &tls);
    ot_buf resp = OT_BUF_INIT;
    ot_grpc_reply r = {.resp = &resp};
    int64_t t0 = ot_now_ns();
    ot_grpc_client_call(g, ot_grpc_path(OT_TRACES), (const uint8_t *)"", 0, false, t0 + 5 * SEC, NULL, &r);
    cr_expect_eq(r.code, OT_GRPC_UNAVAILABLE, "%d %s", r.code, r.msg);
    cr_expect(strstr(r.msg, "refused"), "%s", r.msg);
    cr_expect(ot_now_ns() - t0 < 2 * SEC, "did not fail fast");
    cr_expect_eq(ot_grpc_client_ready(g), 0);
    ot_grpc_client_free(g);
    ot_buf_free(&resp);
    close(fd);
}

Test(otlpexp, silent_server_hits_the_deadline)
{
    int fd;
    int port = listen_port(&fd, true); /* accepts (kernel backlog), never answers */
    ot_grpc_client_cfg cfg;
    ot_tls_client tls;
    ot_grpc_client *g = client_to(port, &cfg, &tls);
    ot_buf resp = OT_BUF_INIT;
    ot_grpc_reply r = {.resp = &resp};
    static uint8_t body[100000];
    int64_t t0 = ot_now_ns();
    ot_grpc_client_call(g, ot_grpc_path(OT_LOGS), body, sizeof body, false, t0 + SEC / 5, NULL, &r);
    int64_t took = ot_now_ns() - t0;
    cr_expect_eq(r.code, OT_GRPC_DEADLINE_EXCEEDED, "%d %s", r.code, r.msg);
    cr_expect(took >= SEC / 5 && took < 2 * SEC, "took %lld ns", (long long)took);
    cr_expect_eq(ot_otlpexp_grpc_outcome(r.code, false), OT_RETRYABLE);
    ot_grpc_client_stop(g);
    /* After stop, calls fail at once instead of hanging. */
    ot_grpc_client_call(g, ot_grpc_path(OT_LOGS), body, 10, false, ot_now_ns() + SEC, NULL, &r);
    cr_expect_eq(r.code, OT_GRPC_UNAVAILABLE);
    ot_grpc_client_free(g);
    ot_buf_free(&resp);
    close(fd);
}

Test(otlpexp, tls_settings_are_checked_together)
{
    ot_diags d;
    ot_diags_init(&d);
    ot_tls_client t;
    memset(&t, 0, sizeof t);
    t.cert_file = "c.pem";
    ot_tls_client_validate(&t, NULL, "exporters.otlp.tls", &d);
    cr_expect_eq(d.errors, 1);
    t.key_pem = "k";
    ot_tls_client_validate(&t, NULL, "exporters.otlp.tls", &d);
    cr_expect_eq(d.errors, 2); /* file with pem */
    memset(&t, 0, sizeof t);
    t.min_version = "1.3";
    t.max_version = "1.2";
    ot_tls_client_validate(&t, NULL, "exporters.otlp.tls", &d);
    cr_expect_eq(d.errors, 3);
    t.min_version = "1.4";
    t.max_version = NULL;
    ot_tls_client_validate(&t, NULL, "exporters.otlp.tls", &d);
    cr_expect_eq(d.errors, 4);
    cr_expect_eq(ot_tls_version("1.2"), 3);
    cr_expect_eq(ot_tls_version(""), 0);
    ot_diags_free(&d);
    /* A CA file that does not exist fails the context, with its name. */
    memset(&t, 0, sizeof t);
    t.ca_file = "/nonexistent/ca.pem";
    ot_err e = {{0}};
    cr_expect_null(ot_tls_client_ctx(&t, "h2", &e));
    cr_expect(strstr(e.msg, "/nonexistent/ca.pem"), "%s", e.msg);
}
