/* test_jsonlog_parse.c: the jsonlog receiver's pure parts on bytes: the
 * JSON scanner and record mapping (decoded back with protobuf-c, an
 * independent decoder of the wire form the receiver writes), timestamp
 * layouts, severities, CRI and Docker framing, format detection, globs and
 * Kubernetes paths. */
#include <criterion/criterion.h>
#include <string.h>

#include "model/batch.h"
#include "../../receivers/jsonlog/discover.h"
#include "../../receivers/jsonlog/jl.h"
#include "../../receivers/jsonlog/k8s.h"

static const jl_map auto_map = {0};

/* Records (ScopeLogs.log_records frames) wrapped into a request. */
static ot_batch *wrap(const ot_buf *recs)
{
    ot_buf req = OT_BUF_INIT;
    size_t sl = recs->len;
    /* ResourceLogs{ scope_logs(2){ records } } */
    unsigned char hdr[32];
    size_t h = 0;
    size_t sl_hdr = 1 + (sl < 128 ? 1 : sl < 16384 ? 2 : 3);
    size_t rl = sl_hdr + sl;
    hdr[h++] = 0x0a;
    for (size_t v = rl; ; v >>= 7) { hdr[h++] = (unsigned char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0)); if (v < 0x80) break; }
    hdr[h++] = 0x12;
    for (size_t v = sl; ; v >>= 7) { hdr[h++] = (unsigned char)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0)); if (v < 0x80) break; }
    ot_buf_append(&req, hdr, h);
    ot_buf_append(&req, recs->data, recs->len);
    ot_err err = {{0}};
    ot_batch *b = ot_batch_decode(OT_LOGS, req.data, req.len, &err);
    cr_assert_not_null(b, "%s", err.msg);
    ot_buf_free(&req);
    return b;
}

static const ot_log_record *rec0(ot_batch *b)
{
    const ot_logs_req *r = (const ot_logs_req *)ot_batch_msg(b, NULL);
    cr_assert_eq(r->n_resource_logs, 1);
    cr_assert_eq(r->resource_logs[0]->n_scope_logs, 1);
    cr_assert_geq(r->resource_logs[0]->scope_logs[0]->n_log_records, 1);
    return r->resource_logs[0]->scope_logs[0]->log_records[0];
}

static const ot_anyvalue *attr(const ot_log_record *lr, const char *k)
{
    for (size_t i = 0; i < lr->n_attributes; i++)
        if (strcmp(lr->attributes[i]->key, k) == 0)
            return lr->attributes[i]->value;
    return NULL;
}

static ot_batch *one_json(const jl_map *m, const char *line, bool *perr)
{
    jl_enc e = {0};
    ot_buf out = OT_BUF_INIT;
    jl_rec r = {.observed_ns = 7, .runtime_ns = 0};
    bool pe = false;
    cr_assert_eq(jl_encode_json(&e, m, &r, line, strlen(line), &out, &pe), 0);
    if (perr)
        *perr = pe;
    ot_batch *b = wrap(&out);
    ot_buf_free(&out);
    jl_enc_free(&e);
    return b;
}

Test(jsonlog_parse, pino_line)
{
    bool pe;
    ot_batch *b = one_json(&auto_map,
                           "{\"level\":30,\"time\":1764064800123,\"pid\":42,\"hostname\":\"h\","
                           "\"msg\":\"hello\"}",
                           &pe);
    cr_assert(!pe);
    const ot_log_record *lr = rec0(b);
    cr_assert_eq(lr->severity_number, 9);
    cr_assert_str_eq(lr->severity_text, "30");
    cr_assert_eq(lr->time_unix_nano, 1764064800123000000ULL);
    cr_assert_eq(lr->observed_time_unix_nano, 7);
    cr_assert_str_eq(lr->body->string_value, "hello");
    cr_assert_eq(lr->n_attributes, 2);
    cr_assert_eq(attr(lr, "pid")->int_value, 42);
    cr_assert_str_eq(attr(lr, "hostname")->string_value, "h");
    ot_batch_unref(b);
}

Test(jsonlog_parse, nested_types)
{
    ot_batch *b = one_json(&auto_map,
                           "{ \"msg\" : \"x\", \"a\": {\"b\": [1, 2.5, \"s\", true, null, {}]},"
                           " \"neg\": -3, \"big\": 1e300, \"huge\": 123456789012345678901 }",
                           NULL);
    const ot_log_record *lr = rec0(b);
    const ot_anyvalue *a = attr(lr, "a");
    cr_assert_eq(a->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
    cr_assert_eq(a->kvlist_value->n_values, 1);
    const ot_anyvalue *arr = a->kvlist_value->values[0]->value;
    cr_assert_eq(arr->array_value->n_values, 6);
    cr_assert_eq(arr->array_value->values[0]->int_value, 1);
    cr_assert_float_eq(arr->array_value->values[1]->double_value, 2.5, 1e-12);
    cr_assert_str_eq(arr->array_value->values[2]->string_value, "s");
    cr_assert_eq(arr->array_value->values[3]->bool_value, 1);
    cr_assert_eq(arr->array_value->values[4]->value_case, 0);
    cr_assert_eq(attr(lr, "neg")->int_value, -3);
    cr_assert_float_eq(attr(lr, "big")->double_value, 1e300, 1e288);
    cr_assert_eq(attr(lr, "huge")->value_case,
                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
    ot_batch_unref(b);
}

Test(jsonlog_parse, body_is_the_object_without_message)
{
    ot_batch *b = one_json(&auto_map, "{\"level\":\"warn\",\"k\":\"v\",\"n\":1}", NULL);
    const ot_log_record *lr = rec0(b);
    cr_assert_eq(lr->severity_number, 13);
    cr_assert_eq(lr->n_attributes, 0);
    cr_assert_eq(lr->body->kvlist_value->n_values, 2);
    cr_assert_str_eq(lr->body->kvlist_value->values[0]->key, "k");
    cr_assert_eq(lr->body->kvlist_value->values[1]->value->int_value, 1);
    ot_batch_unref(b);
}

Test(jsonlog_parse, long_values_move_their_length)
{
    char line[4000], big[1500];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    snprintf(line, sizeof line, "{\"k\":{\"a\":\"%s\"},\"msg\":\"%s\"}", big, big + 1000);
    ot_batch *b = one_json(&auto_map, line, NULL);
    const ot_log_record *lr = rec0(b);
    cr_assert_eq(strlen(attr(lr, "k")->kvlist_value->values[0]->value->string_value), 1499);
    cr_assert_eq(strlen(lr->body->string_value), 499);
    ot_batch_unref(b);
}

Test(jsonlog_parse, invalid_json_is_kept_with_parse_error)
{
    const char *bad[] = {"{\"a\":", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":tru}", "{\"a\":1} x",
                         "{\"a\":\"\\q\"}", "{\"a\":01}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool pe;
        ot_batch *b = one_json(&auto_map, bad[i], &pe);
        cr_assert(pe, "%s", bad[i]);
        const ot_log_record *lr = rec0(b);
        cr_assert_str_eq(lr->body->string_value, bad[i]);
        cr_assert_not_null(attr(lr, "log.parse_error"));
        ot_batch_unref(b);
    }
}

Test(jsonlog_parse, utf8_and_escapes)
{
    ot_batch *b = one_json(&auto_map,
                           "{\"msg\":\"a\\u00e9\\ud83d\\ude00\\ud800z\\n\\\"\","
                           "\"raw\":\"\xff\xc3\xa9\xe2\x82\",\"k\xfe\":1}",
                           NULL);
    const ot_log_record *lr = rec0(b);
    cr_assert_str_eq(lr->body->string_value, "a\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdz\n\"");
    cr_assert_str_eq(attr(lr, "raw")->string_value, "\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd");
    cr_assert_not_null(attr(lr, "k\xef\xbf\xbd"));
    ot_batch_unref(b);

    /* a text body with bad bytes */
    jl_enc e = {0};
    ot_buf out = OT_BUF_INIT;
    jl_rec r = {.observed_ns = 1};
    cr_assert_eq(jl_encode_text(&e, &r, "x\x80y", 3, NULL, &out), 0);
    b = wrap(&out);
    cr_assert_str_eq(rec0(b)->body->string_value, "x\xef\xbf\xbdy");
    ot_batch_unref(b);
    ot_buf_free(&out);
    jl_enc_free(&e);
}

Test(jsonlog_parse, keys_with_nul_bytes)
{
    jl_map m = {.ts_field = "t", .sev_field = "l", .body_field = "b"};
    /* "t\u0000x" must not be taken for the field "t" */
    ot_batch *b = one_json(&m, "{\"t\\u0000x\":1,\"l\\u0000\":2,\"b\":\"m\"}", NULL);
    const ot_log_record *lr = rec0(b);
    cr_assert_eq(lr->n_attributes, 2);
    cr_assert_str_eq(lr->body->string_value, "m");
    ot_batch_unref(b);
}

Test(jsonlog_parse, trace_context)
{
    ot_batch *b = one_json(&auto_map,
                           "{\"msg\":\"m\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
                           "\"span_id\":\"00f067aa0ba902b7\",\"spanId\":\"nothex\"}",
                           NULL);
    const ot_log_record *lr = rec0(b);
    cr_assert_eq(lr->trace_id.len, 16);
    cr_assert_eq(lr->trace_id.data[0], 0x4b);
    cr_assert_eq(lr->span_id.len, 8);
    cr_assert_eq(lr->span_id.data[7], 0xb7);
    cr_assert_str_eq(attr(lr, "spanId")->string_value, "nothex");
    ot_batch_unref(b);
}

Test(jsonlog_parse, real_logger_shapes)
{
    struct {
        const char *line;
        uint64_t t;
        int sev;
        const char *body;
    } c[] = {
        /* bunyan */
        {"{\"name\":\"app\",\"hostname\":\"h\",\"pid\":1,\"level\":50,\"msg\":\"boom\","
         "\"time\":\"2025-11-25T10:00:00.123Z\",\"v\":0}",
         1764064800123000000ULL, 17, "boom"},
        /* winston json */
        {"{\"level\":\"info\",\"message\":\"hi\",\"timestamp\":\"2025-11-25T10:00:00.000Z\"}",
         1764064800000000000ULL, 9, "hi"},
        /* zap production */
        {"{\"level\":\"error\",\"ts\":1764064800.5,\"caller\":\"main.go:1\",\"msg\":\"z\"}",
         1764064800500000000ULL, 17, "z"},
        /* logrus */
        {"{\"level\":\"warning\",\"msg\":\"l\",\"time\":\"2025-11-25T11:00:00+01:00\"}",
         1764064800000000000ULL, 13, "l"},
        /* python-json-logger */
        {"{\"asctime\":\"2025-11-25 10:00:00,250\",\"levelname\":\"CRITICAL\",\"message\":\"p\"}",
         1764064800250000000ULL, 21, "p"},
        /* structlog */
        {"{\"event\":\"s\",\"level\":\"debug\",\"timestamp\":\"2025-11-25T10:00:00Z\"}",
         1764064800000000000ULL, 5, "s"},
        /* syslog numbers */
        {"{\"level\":3,\"msg\":\"e\",\"time\":1764064800}", 1764064800000000000ULL, 17, "e"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        ot_batch *b = one_json(&auto_map, c[i].line, NULL);
        const ot_log_record *lr = rec0(b);
        cr_assert_eq(lr->time_unix_nano, c[i].t, "%zu: %lu", i, (unsigned long)lr->time_unix_nano);
        cr_assert_eq(lr->severity_number, c[i].sev, "%zu", i);
        cr_assert_str_eq(lr->body->string_value, c[i].body);
        ot_batch_unref(b);
    }
}

Test(jsonlog_parse, configured_fields_and_mapping)
{
    jl_sevmap_ent sm[] = {{"boom", 21}, {"E", 17}};
    jl_map m = {.ts_field = "when", .ts_layout = JL_TS_EPOCH_US, .sev_field = "sev",
                .sevmap = sm, .n_sevmap = 2, .body_field = "text"};
    ot_batch *b = one_json(&m,
                           "{\"when\":1764064800000001,\"sev\":\"boom\",\"text\":{\"x\":1},"
                           "\"msg\":\"not the body\",\"time\":\"2020-01-01T00:00:00Z\"}",
                           NULL);
    const ot_log_record *lr = rec0(b);
    cr_assert_eq(lr->time_unix_nano, 1764064800000001000ULL);
    cr_assert_eq(lr->severity_number, 21);
    cr_assert_eq(lr->body->kvlist_value->n_values, 1);
    cr_assert_str_eq(attr(lr, "msg")->string_value, "not the body");
    cr_assert_str_eq(attr(lr, "time")->string_value, "2020-01-01T00:00:00Z");
    ot_batch_unref(b);
}

Test(jsonlog_parse, runtime_time_and_extras)
{
    jl_enc e = {0};
    ot_buf out = OT_BUF_INIT, extra = OT_BUF_INIT;
    jl_kv_str(&extra, 6, "log.file.name", "0.log", 5);
    jl_rec r = {.observed_ns = 9, .runtime_ns = 5, .stream = "stderr", .stream_len = 6,
                .truncated = true, .extra = extra.data, .extra_len = extra.len};
    bool pe;
    cr_assert_eq(jl_encode_msg(&e, &auto_map, &r, "plain text", 10, &out, &pe), 0);
    ot_batch *b = wrap(&out);
    const ot_log_record *lr = rec0(b);
    cr_assert_eq(lr->time_unix_nano, 5);
    cr_assert_eq(lr->observed_time_unix_nano, 9);
    cr_assert_str_eq(attr(lr, "log.iostream")->string_value, "stderr");
    cr_assert_eq(attr(lr, "log.truncated")->bool_value, 1);
    cr_assert_str_eq(attr(lr, "log.file.name")->string_value, "0.log");
    ot_batch_unref(b);
    ot_buf_free(&out);
    ot_buf_free(&extra);
    jl_enc_free(&e);
}

Test(jsonlog_parse, timestamps)
{
    int64_t ns;
    cr_assert_eq(jl_ts_rfc3339("2025-11-25T10:00:00.123456789Z", 30, &ns), 0);
    cr_assert_eq(ns, 1764064800123456789LL);
    cr_assert_eq(jl_ts_rfc3339("2025-11-25T05:30:00-04:30", 25, &ns), 0);
    cr_assert_eq(ns, 1764064800000000000LL);
    cr_assert_eq(jl_ts_rfc3339("1970-01-01T00:00:00Z", 20, &ns), 0);
    cr_assert_eq(ns, 0);
    cr_assert_eq(jl_ts_rfc3339("2026-13-25T10:00:00Z", 20, &ns), -1);
    /* outside what int64 nanoseconds hold: refused, not wrapped */
    cr_assert_eq(jl_ts_rfc3339("0000-01-01T00:00:00Z", 20, &ns), -1);
    cr_assert_eq(jl_ts_rfc3339("9999-12-31T23:59:59Z", 20, &ns), -1);
    cr_assert_eq(jl_ts_strptime("0200-01-01", 10, "%Y-%m-%d", &ns), -1);
    cr_assert_eq(jl_ts_rfc3339("2025-11-25T10:00:00Zx", 21, &ns), -1);
    cr_assert_eq(jl_ts_epoch("1764064800.25", 13, JL_TS_EPOCH_S, &ns), 0);
    cr_assert_eq(ns, 1764064800250000000LL);
    cr_assert_eq(jl_ts_epoch("1764064800123", 13, JL_TS_EPOCH_MS, &ns), 0);
    cr_assert_eq(ns, 1764064800123000000LL);
    cr_assert_eq(jl_ts_epoch("1764064800123456", 16, JL_TS_EPOCH_US, &ns), 0);
    cr_assert_eq(ns, 1764064800123456000LL);
    cr_assert_eq(jl_ts_epoch("1764064800123456789", 19, JL_TS_EPOCH_NS, &ns), 0);
    cr_assert_eq(ns, 1764064800123456789LL);
    cr_assert_eq(jl_ts_epoch_guess("1764064800123456789", 19, &ns), 0);
    cr_assert_eq(ns, 1764064800123456789LL);
    cr_assert_eq(jl_ts_epoch_guess("42", 2, &ns), -1);
    cr_assert_eq(jl_ts_strptime("25/Nov/2025:11:00:00 +0100", 26, "%d/%b/%Y:%H:%M:%S %z", &ns), 0);
    cr_assert_eq(ns, 1764064800000000000LL);
    cr_assert_eq(jl_ts_strptime("2025-11-25 10:00:00.5", 21, "%Y-%m-%d %H:%M:%S", &ns), 0);
    cr_assert_eq(ns, 1764064800500000000LL);
}

Test(jsonlog_parse, severities)
{
    cr_assert_eq(jl_sev_word(NULL, "WARNING", 7), 13);
    cr_assert_eq(jl_sev_word(NULL, "Err", 3), 17);
    cr_assert_eq(jl_sev_word(NULL, "nonsense", 8), 0);
    cr_assert_eq(jl_sev_number(10), 1);
    cr_assert_eq(jl_sev_number(20), 5);
    cr_assert_eq(jl_sev_number(60), 21);
    cr_assert_eq(jl_sev_number(4), 13);
    cr_assert_eq(jl_sev_number(7), 5);
    cr_assert_eq(jl_sev_number(99), 0);
    cr_assert_eq(jl_sev_name("warn3"), 15);
}

Test(jsonlog_parse, cri_lines)
{
    jl_framed f;
    const char *l = "2025-11-25T10:00:00.123456789Z stdout F {\"msg\":\"x\"}";
    cr_assert_eq(jl_cri_parse(l, strlen(l), &f), 0);
    cr_assert_eq(f.ts, 1764064800123456789LL);
    cr_assert(!f.partial);
    cr_assert_eq(f.msg_len, 11);
    cr_assert_eq(memcmp(f.stream, "stdout", 6), 0);
    l = "2025-11-25T10:00:00Z stderr P part";
    cr_assert_eq(jl_cri_parse(l, strlen(l), &f), 0);
    cr_assert(f.partial);
    cr_assert_eq(memcmp(f.msg, "part", 4), 0);
    l = "2025-11-25T10:00:00Z stdout F";
    cr_assert_eq(jl_cri_parse(l, strlen(l), &f), 0);
    cr_assert_eq(f.msg_len, 0);
    cr_assert_eq(jl_cri_parse("garbage here X y", 16, &f), -1);
    cr_assert_eq(jl_cri_parse("2025-11-25T10:00:00Z stdin F y", 30, &f), -1);
}

Test(jsonlog_parse, docker_lines)
{
    ot_buf tmp = OT_BUF_INIT, scratch = OT_BUF_INIT;
    jl_framed f;
    const char *l = "{\"log\":\"{\\\"msg\\\":\\\"hi\\\"}\\n\",\"stream\":\"stderr\","
                    "\"time\":\"2025-11-25T10:00:00.5Z\"}";
    cr_assert_eq(jl_docker_parse(l, strlen(l), &tmp, &scratch, &f), 0);
    cr_assert(!f.partial);
    cr_assert_eq(f.msg_len, 12);
    cr_assert_eq(memcmp(f.msg, "{\"msg\":\"hi\"}", 12), 0);
    cr_assert_eq(memcmp(f.stream, "stderr", 6), 0);
    cr_assert_eq(f.ts, 1764064800500000000LL);
    l = "{\"log\":\"no newline\",\"stream\":\"stdout\",\"time\":\"2025-11-25T10:00:00Z\"}";
    cr_assert_eq(jl_docker_parse(l, strlen(l), &tmp, &scratch, &f), 0);
    cr_assert(f.partial);
    cr_assert_eq(jl_docker_parse("{\"stream\":\"stdout\"}", 19, &tmp, &scratch, &f), -1);
    cr_assert_eq(jl_docker_parse("{\"log\":\"x\"", 10, &tmp, &scratch, &f), -1);
    ot_buf_free(&tmp);
    ot_buf_free(&scratch);
}

Test(jsonlog_parse, detect)
{
    cr_assert_eq(jl_detect("{\"log\":\"x\\n\"}", 13), JL_FMT_DOCKER);
    cr_assert_eq(jl_detect(" {\"a\":1}", 8), JL_FMT_JSON);
    cr_assert_eq(jl_detect("2025-11-25T10:00:00Z stdout F x", 31), JL_FMT_CRI);
    cr_assert_eq(jl_detect("hello", 5), JL_FMT_TEXT);
}

Test(jsonlog_parse, globs)
{
    cr_assert(jl_glob_match("/var/log/*.log", "/var/log/a.log"));
    cr_assert(!jl_glob_match("/var/log/*.log", "/var/log/x/a.log"));
    cr_assert(jl_glob_match("/var/log/**/*.log", "/var/log/a.log"));
    cr_assert(jl_glob_match("/var/log/**/*.log", "/var/log/x/y/a.log"));
    cr_assert(jl_glob_match("/var/log/**", "/var/log/x/y/a.log"));
    cr_assert(!jl_glob_match("/var/log/**/*.log", "/var/lag/a.log"));
    cr_assert(jl_glob_match("/a/**/b/*.txt", "/a/x/b/c.txt"));
    cr_assert(!jl_glob_match("/a/**/b/*.txt", "/a/x/c/c.txt"));
    cr_assert(jl_glob_match("/p/app.log*", "/p/app.log.1"));
}

Test(jsonlog_parse, k8s_paths)
{
    jl_k8s k;
    cr_assert_eq(jl_k8s_parse("/var/log/pods/",
                              "/var/log/pods/default_web-7d4_1234-abcd/nginx/3.log", &k), 0);
    cr_assert_eq(k.ns_len, 7);
    cr_assert_eq(memcmp(k.pod, "web-7d4", 7), 0);
    cr_assert_eq(memcmp(k.uid, "1234-abcd", 9), 0);
    cr_assert_eq(memcmp(k.container, "nginx", 5), 0);
    cr_assert_eq(k.restart, 3);
    cr_assert_eq(jl_k8s_parse("/var/log/pods", "/var/log/other/a_b_c/d/0.log", &k), -1);
    cr_assert_eq(jl_k8s_parse("/var/log/pods", "/var/log/pods/ab/d/0.log", &k), -1);
}
