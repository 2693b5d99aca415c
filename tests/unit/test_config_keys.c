/* Unit tests for the shared value parsers (durations, sizes, endpoints,
 * booleans, integers, edit distance) and for the key-table walker: every
 * kind of error with its exact position and message, defaults, presence,
 * required keys and unknown-key suggestions. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

Test(config_parse, durations)
{
    static const struct {
        const char *s;
        int64_t ns;
    } ok[] = {
        {"0", 0},
        {"0s", 0},
        {"200ms", 200000000},
        {"10s", 10000000000LL},
        {"1m", 60000000000LL},
        {"1h30m", 5400000000000LL},
        {"1.5s", 1500000000},
        {".5ms", 500000},
        {"250us", 250000},
        {"250\xc2\xb5s", 250000},
        {"7ns", 7},
        {"1m0.5s", 60500000000LL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ns = -1;
        ot_err e;
        cr_assert_eq(ot_parse_duration(ok[i].s, &ns, &e), 0, "%s: %s", ok[i].s, e.msg);
        cr_assert_eq(ns, ok[i].ns, "%s -> %lld", ok[i].s, (long long)ns);
    }
    static const char *const bad[] = {"", "5", "-5s", "fast", "5 s", "1.5", "s", "1x", "5sec",
                                      "99999999999h", "1h-1m", "+1s", "."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns = 42;
        ot_err e;
        cr_assert_eq(ot_parse_duration(bad[i], &ns, &e), -1, "%s", bad[i]);
        cr_assert_eq(ns, 42);
    }
    ot_err e;
    int64_t ns;
    ot_parse_duration("-1s", &ns, &e);
    cr_assert_str_eq(e.msg, "duration \"-1s\" is negative");
}

Test(config_parse, sizes)
{
    static const struct {
        const char *s;
        uint64_t b;
    } ok[] = {
        {"0", 0},           {"1024", 1024},        {"100B", 100},      {"512KiB", 512 * 1024},
        {"4MiB", 4 << 20},  {"1GiB", 1ULL << 30},  {"2TiB", 2ULL << 40}, {"4MB", 4000000},
        {"1KB", 1000},      {"3GB", 3000000000ULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t b = 1;
        cr_assert_eq(ot_parse_size(ok[i].s, &b, NULL), 0, "%s", ok[i].s);
        cr_assert_eq(b, ok[i].b, "%s", ok[i].s);
    }
    static const char *const bad[] = {"", "big", "4mb", "4 MiB", "-1", "1.5MiB", "MiB",
                                      "99999999999999999999", "20000000TiB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t b = 7;
        cr_assert_eq(ot_parse_size(bad[i], &b, NULL), -1, "%s", bad[i]);
        cr_assert_eq(b, 7);
    }
}

Test(config_parse, endpoints)
{
    ot_arena *a = ot_arena_new(0);
    static const struct {
        const char *s, *host;
        int port;
    } ok[] = {
        {"localhost:4317", "localhost", 4317}, {"127.0.0.1:4318", "127.0.0.1", 4318},
        {"[::1]:4317", "::1", 4317},           {":4317", "", 4317},
        {"0.0.0.0:0", "0.0.0.0", 0},           {"[fe80::1%eth0]:65535", "fe80::1%eth0", 65535},
        {"my-host.example_x:80", "my-host.example_x", 80},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ot_endpoint ep;
        ot_err e;
        cr_assert_eq(ot_parse_endpoint(ok[i].s, &ep, a, &e), 0, "%s: %s", ok[i].s, e.msg);
        cr_assert_str_eq(ep.host, ok[i].host);
        cr_assert_eq(ep.port, ok[i].port);
        cr_assert_str_eq(ep.text, ok[i].s);
    }
    static const char *const bad[] = {"localhost", "localhost:", "host:70000", "host:http", "::1:4317",
                                      "[::1]", "[::1:4317", "[]:1", "ho st:1", "h:-1", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ot_endpoint ep = {0};
        cr_assert_eq(ot_parse_endpoint(bad[i], &ep, a, NULL), -1, "%s", bad[i]);
        cr_assert_null(ep.host);
    }
    ot_arena_free(a);
}

Test(config_parse, bools_ints_and_edit_distance)
{
    bool b = false;
    cr_assert_eq(ot_parse_bool("true", &b, NULL), 0);
    cr_assert(b);
    cr_assert_eq(ot_parse_bool("FALSE", &b, NULL), 0);
    cr_assert(!b);
    cr_assert_eq(ot_parse_bool("yes", &b, NULL), -1);
    cr_assert_eq(ot_parse_bool("", &b, NULL), -1);
    int64_t v;
    cr_assert_eq(ot_parse_int("-42", &v, NULL), 0);
    cr_assert_eq(v, -42);
    cr_assert_eq(ot_parse_int("9223372036854775807", &v, NULL), 0);
    cr_assert_eq(v, INT64_MAX);
    cr_assert_eq(ot_parse_int("-9223372036854775808", &v, NULL), 0);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(ot_parse_int("9223372036854775808", &v, NULL), -1);
    cr_assert_eq(ot_parse_int("12x", &v, NULL), -1);
    cr_assert_eq(ot_parse_int("", &v, NULL), -1);
    cr_assert_eq(ot_parse_int("1.0", &v, NULL), -1);
    cr_assert_eq(ot_edit_distance("endpont", "endpoint"), 1);
    cr_assert_eq(ot_edit_distance("tiemout", "timeout"), 1);
    cr_assert_eq(ot_edit_distance("", "abc"), 3);
    cr_assert_eq(ot_edit_distance("kitten", "sitting"), 3);
    char longa[200], longb[200];
    memset(longa, 'a', 199);
    longa[199] = 0;
    memcpy(longb, longa, 200);
    longb[100] = 'b';
    cr_assert_eq(ot_edit_distance(longa, longb), 1);
}

/* ---- the walker ---------------------------------------------------------- */

typedef struct grpc_cfg {
    bool present;
    ot_endpoint endpoint;
    int64_t max_recv;
} grpc_cfg;

typedef struct test_cfg {
    const char *name;
    bool enabled;
    int64_t port;
    double ratio;
    int64_t timeout;
    uint64_t limit;
    ot_endpoint endpoint;
    int protocol;
    ot_strlist include;
    ot_strmap headers;
    grpc_cfg grpc;
    grpc_cfg http;
    const ot_node *raw;
    const char *token;
} test_cfg;

static const char *const protocols[] = {"grpc", "http", NULL};

static const ot_key proto_keys[] = {
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(grpc_cfg, endpoint),
     .def = "localhost:4317", .help = "listen address"},
    {.name = "max_recv_msg_size_mib", .type = OT_KT_INT, .offset = offsetof(grpc_cfg, max_recv),
     .def = "4", .min = 1, .max = 1024},
    {0},
};

static const ot_key test_keys[] = {
    {.name = "name", .type = OT_KT_STRING, .offset = offsetof(test_cfg, name), .def = "default-name"},
    {.name = "enabled", .type = OT_KT_BOOL, .offset = offsetof(test_cfg, enabled), .def = "true"},
    {.name = "port", .type = OT_KT_INT, .offset = offsetof(test_cfg, port), .def = "8080", .min = 1,
     .max = 65535},
    {.name = "ratio", .type = OT_KT_DOUBLE, .offset = offsetof(test_cfg, ratio), .def = "0.5", .min = 0,
     .max = 1},
    {.name = "timeout", .type = OT_KT_DURATION, .offset = offsetof(test_cfg, timeout), .def = "200ms",
     .min = 1e6, .max = 3600e9},
    {.name = "limit", .type = OT_KT_SIZE, .offset = offsetof(test_cfg, limit), .def = "4MiB", .min = 1024,
     .max = 1 << 30},
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(test_cfg, endpoint)},
    {.name = "protocol", .type = OT_KT_ENUM, .offset = offsetof(test_cfg, protocol), .def = "http",
     .choices = protocols},
    {.name = "include", .type = OT_KT_STRLIST, .offset = offsetof(test_cfg, include), .def = "[a, b]"},
    {.name = "headers", .type = OT_KT_STRMAP, .offset = offsetof(test_cfg, headers)},
    {.name = "grpc", .type = OT_KT_TABLE, .offset = offsetof(test_cfg, grpc), .sub = proto_keys,
     .flags = OT_KF_PRESENCE},
    {.name = "http", .type = OT_KT_TABLE, .offset = offsetof(test_cfg, http), .sub = proto_keys,
     .flags = OT_KF_PRESENCE},
    {.name = "raw", .type = OT_KT_NODE, .offset = offsetof(test_cfg, raw)},
    {.name = "token", .type = OT_KT_STRING, .offset = offsetof(test_cfg, token),
     .flags = OT_KF_SECRET, .def = "xyz"},
    {0},
};

typedef struct fixture {
    ot_config *c;
    ot_diags d;
    test_cfg cfg;
} fixture;

static size_t fill(fixture *f, const char *yaml, const ot_key *keys, const char *key)
{
    ot_diags_init(&f->d);
    f->c = ot_config_load_string("c.yaml", yaml, strlen(yaml), &f->d);
    cr_assert_not_null(f->c, "%s", yaml);
    memset(&f->cfg, 0xA5, sizeof f->cfg);
    const ot_node *n = key ? ot_node_path(ot_config_root(f->c), key) : ot_config_root(f->c);
    return ot_keys_fill(keys, n, &f->cfg, ot_config_arena(f->c), key ? key : "", &f->d);
}

static void done(fixture *f)
{
    ot_config_free(f->c);
    ot_diags_free(&f->d);
}

static void expect_diags(ot_diags *d, const char *want)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    ot_diags_sort(d);
    ot_diags_print(d, f);
    fclose(f);
    cr_assert_str_eq(s, want);
    free(s);
}

Test(config_keys, defaults_when_absent)
{
    fixture f;
    cr_assert_eq(fill(&f, "r: {}\n", test_keys, "r"), 0);
    test_cfg *c = &f.cfg;
    cr_assert_str_eq(c->name, "default-name");
    cr_assert(c->enabled);
    cr_assert_eq(c->port, 8080);
    cr_assert_float_eq(c->ratio, 0.5, 1e-12);
    cr_assert_eq(c->timeout, 200000000);
    cr_assert_eq(c->limit, 4u << 20);
    cr_assert_null(c->endpoint.host);
    cr_assert_eq(c->endpoint.port, 0);
    cr_assert_eq(c->protocol, 1);
    cr_assert_eq(c->include.n, 2);
    cr_assert_str_eq(c->include.v[1], "b");
    cr_assert_null(c->include.node);
    cr_assert_eq(c->headers.n, 0);
    cr_assert(!c->grpc.present);
    cr_assert_str_eq(c->grpc.endpoint.host, "localhost");
    cr_assert_eq(c->grpc.endpoint.port, 4317);
    cr_assert_eq(c->grpc.max_recv, 4);
    cr_assert_null(c->raw);
    cr_assert_str_eq(c->token, "xyz");
    cr_assert_eq(f.d.n, 0);
    done(&f);
    /* A missing component node (NULL) and a `name:` null node: defaults too. */
    cr_assert_eq(fill(&f, "r:\n", test_keys, "r"), 0);
    cr_assert_eq(f.cfg.port, 8080);
    done(&f);
    cr_assert_eq(fill(&f, "x: 1\n", test_keys, "r"), 0);
    cr_assert_eq(f.cfg.port, 8080);
    done(&f);
}

Test(config_keys, values_are_converted)
{
    fixture f;
    cr_assert_eq(fill(&f,
                      "r:\n  name: \"true\"\n  enabled: false\n  port: 4317\n  ratio: 1\n  timeout: 1m30.5s\n"
                      "  limit: 512KiB\n  endpoint: \"[::1]:4317\"\n  protocol: grpc\n  include: /var/log/*.log\n"
                      "  headers: { X-A: b, X-Empty: }\n  grpc:\n  http: { endpoint: 0.0.0.0:4318 }\n"
                      "  raw: { anything: [1] }\n  token: ${env:OTCFG_NOPE:-s3}\n",
                      test_keys, "r"),
                 0, "%zu: %s", f.d.n, f.d.n ? f.d.v[0].msg : "");
    test_cfg *c = &f.cfg;
    cr_assert_str_eq(c->name, "true");
    cr_assert(!c->enabled);
    cr_assert_eq(c->port, 4317);
    cr_assert_float_eq(c->ratio, 1.0, 1e-12);
    cr_assert_eq(c->timeout, 90500000000LL);
    cr_assert_eq(c->limit, 512u * 1024);
    cr_assert_str_eq(c->endpoint.host, "::1");
    cr_assert_eq(c->protocol, 0);
    cr_assert_eq(c->include.n, 1);
    cr_assert_str_eq(c->include.v[0], "/var/log/*.log");
    cr_assert_eq(c->include.node->kind, OT_NODE_SEQ);
    cr_assert_eq(c->include.node->vals[0]->line, 10);
    cr_assert_eq(c->headers.n, 2);
    cr_assert_str_eq(c->headers.keys[0], "X-A");
    cr_assert_str_eq(c->headers.vals[0], "b");
    cr_assert_str_eq(c->headers.vals[1], "");
    cr_assert(c->grpc.present);
    cr_assert_eq(c->grpc.endpoint.port, 4317);
    cr_assert(c->http.present);
    cr_assert_str_eq(c->http.endpoint.host, "0.0.0.0");
    cr_assert_eq(c->http.max_recv, 4);
    cr_assert_eq(c->raw->kind, OT_NODE_MAP);
    cr_assert_str_eq(c->token, "s3");
    done(&f);
}

Test(config_keys, every_error_says_expected_and_found)
{
    fixture f;
    size_t n = fill(&f,
                    "r:\n"
                    "  name: [x]\n"
                    "  enabled: maybe\n"
                    "  port: 70000\n"
                    "  ratio: lots\n"
                    "  timeout: fast\n"
                    "  limit: 2GiB\n"
                    "  endpoint: localhost\n"
                    "  protocol: udp\n"
                    "  include: [a, {b: c}]\n"
                    "  headers: [x]\n"
                    "  grpc: nope\n"
                    "  http: { endpont: x:1, max_recv_msg_size_mib: 0 }\n"
                    "  endpoint2: 1\n"
                    "  zzzzzz: 1\n",
                    test_keys, "r");
    expect_diags(&f.d,
                 "c.yaml:2:9: error: r.name: expected a string, found a list\n"
                 "c.yaml:3:12: error: r.enabled: expected true or false, found \"maybe\"\n"
                 "c.yaml:4:9: error: r.port: expected an integer between 1 and 65535, found 70000\n"
                 "c.yaml:5:10: error: r.ratio: expected a number between 0 and 1, found \"lots\"\n"
                 "c.yaml:6:12: error: r.timeout: expected a duration like 200ms or 5s, found \"fast\"\n"
                 "c.yaml:7:10: error: r.limit: expected a size between 1KiB and 1GiB, found 2GiB\n"
                 "c.yaml:8:13: error: r.endpoint: expected host:port, found \"localhost\"\n"
                 "c.yaml:9:13: error: r.protocol: expected one of grpc, http; found \"udp\"\n"
                 "c.yaml:10:16: error: r.include[1]: expected a string, found a map\n"
                 "c.yaml:11:12: error: r.headers: expected a map of strings, found a list\n"
                 "c.yaml:12:9: error: r.grpc: expected a map, found \"nope\"\n"
                 "c.yaml:13:11: error: r.http: unknown key \"endpont\"; did you mean \"endpoint\"? known "
                 "keys: endpoint, max_recv_msg_size_mib\n"
                 "c.yaml:13:48: error: r.http.max_recv_msg_size_mib: expected an integer between 1 and 1024, "
                 "found 0\n"
                 "c.yaml:14:3: error: r: unknown key \"endpoint2\"; did you mean \"endpoint\"? known keys: "
                 "name, enabled, port, ratio, timeout, limit, endpoint, protocol, include, headers, grpc, "
                 "http, raw, token\n"
                 "c.yaml:15:3: error: r: unknown key \"zzzzzz\"; known keys: name, enabled, port, ratio, "
                 "timeout, limit, endpoint, protocol, include, headers, grpc, http, raw, token\n");
    cr_assert_eq(n, 15);
    /* Bad values leave the defaults in place. */
    cr_assert_eq(f.cfg.port, 8080);
    cr_assert_eq(f.cfg.timeout, 200000000);
    cr_assert_eq(f.cfg.protocol, 1);
    cr_assert_eq(f.cfg.include.n, 1);
    cr_assert(f.cfg.grpc.present);
    cr_assert_eq(f.cfg.grpc.endpoint.port, 4317);
    done(&f);
}

Test(config_keys, duration_and_size_bounds)
{
    fixture f;
    fill(&f, "timeout: 2h\nlimit: 100\n", test_keys, NULL);
    expect_diags(&f.d, "c.yaml:1:10: error: timeout: expected a duration between 1ms and 1h, found 2h\n"
                       "c.yaml:2:8: error: limit: expected a size between 1KiB and 1GiB, found 100\n");
    done(&f);
    cr_assert_eq(fill(&f, "timeout: 1ms\nlimit: 1GiB\nport: 1\nratio: 0\n", test_keys, NULL), 0);
    cr_assert_eq(f.cfg.timeout, 1000000);
    cr_assert_eq(f.cfg.limit, 1u << 30);
    done(&f);
}

static const ot_key required_keys[] = {
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = 0, .flags = OT_KF_REQUIRED},
    {.name = "tls", .type = OT_KT_TABLE, .offset = sizeof(ot_endpoint), .sub = proto_keys,
     .flags = OT_KF_REQUIRED},
    {0},
};

Test(config_keys, required_keys)
{
    char out[sizeof(ot_endpoint) + sizeof(grpc_cfg)];
    ot_diags d;
    ot_diags_init(&d);
    const char *y = "exporters:\n  otlp:\n    tls:\n  other:\n    endpoint:\n";
    ot_config *c = ot_config_load_string("c.yaml", y, strlen(y), &d);
    cr_assert_not_null(c);
    const ot_node *otlp = ot_node_path(ot_config_root(c), "exporters.otlp");
    cr_assert_eq(ot_keys_fill(required_keys, otlp, out, ot_config_arena(c), "exporters.otlp", &d), 1);
    const ot_node *other = ot_node_path(ot_config_root(c), "exporters.other");
    cr_assert_eq(ot_keys_fill(required_keys, other, out, ot_config_arena(c), "exporters.other", &d), 2);
    expect_diags(&d, "c.yaml:3:5: error: exporters.otlp: missing required key \"endpoint\"\n"
                     "c.yaml:5:5: error: exporters.other: missing required key \"tls\"\n"
                     "c.yaml:5:14: error: exporters.other.endpoint: a value is required\n");
    ot_config_free(c);
    ot_diags_free(&d);
}

Test(config_keys, non_map_component_and_empty_table)
{
    fixture f;
    cr_assert_eq(fill(&f, "r: [1]\n", test_keys, "r"), 1);
    expect_diags(&f.d, "c.yaml:1:4: error: r: expected a map, found a list\n");
    cr_assert_eq(f.cfg.port, 8080);
    done(&f);
    static const ot_key none[] = {{0}};
    cr_assert_eq(fill(&f, "r: { a: 1 }\n", none, "r"), 1);
    expect_diags(&f.d, "c.yaml:1:6: error: r: unknown key \"a\"; this takes no settings\n");
    done(&f);
}

static const ot_key bad_default_keys[] = {
    {.name = "timeout", .type = OT_KT_DURATION, .offset = 0, .def = "5"},
    {.name = "mode", .type = OT_KT_ENUM, .offset = 8, .def = "c", .choices = protocols},
    {0},
};

Test(config_keys, bad_defaults_are_reported)
{
    fixture f;
    cr_assert_eq(fill(&f, "r: {}\n", bad_default_keys, "r"), 2);
    expect_diags(&f.d,
                 "error: r.timeout: bad default in the key table: expected a duration like 200ms or 5s, "
                 "found \"5\"\n"
                 "error: r.mode: bad default in the key table: expected one of grpc, http; found \"c\"\n");
    done(&f);
}

Test(config_keys, describe_lists_every_key)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    ot_keys_describe(test_keys, f, 0);
    fclose(f);
    cr_assert(strstr(s, "  port                       int       8080           "));
    cr_assert(strstr(s, "(1..65535)"));
    cr_assert(strstr(s, "(1ms..1h)"));
    cr_assert(strstr(s, "(one of: grpc, http)"));
    cr_assert(strstr(s, "\n    endpoint "));
    cr_assert(strstr(s, "(secret)"));
    cr_assert_null(strstr(s, "xyz"));
    free(s);
    cr_assert_str_eq(ot_key_type_name(OT_KT_DURATION), "duration");
}
