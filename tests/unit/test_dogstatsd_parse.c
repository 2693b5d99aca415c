/* Unit tests for receivers/dogstatsd/parse: every line form the receiver
 * accepts with its exact parsed values, every reason a line is refused
 * for, and the hostile datagrams a reader must survive (no '|', only ':',
 * 10,000 packed values, 64 KiB of garbage, invalid UTF-8, NUL bytes, event
 * lengths past the end) without losing the good lines around them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../receivers/dogstatsd/parse.h"

static double vals[OT_DSD_MAX_VALUES];
static uint8_t signs[OT_DSD_MAX_VALUES];

static ot_dsd_item one(const char *line)
{
    ot_dsd_item it;
    ot_dsd_parse_line(line, strlen(line), vals, signs, &it);
    return it;
}

static uint32_t ntags(ot_dsd_item it)
{
    return ot_dsd_tags_count(&it.tags);
}

static ot_dsd_item metric(const char *line)
{
    ot_dsd_item it = one(line);
    cr_assert_eq(it.kind, OT_DSD_METRIC, "%s: kind %d reason %s", line, it.kind,
                 ot_dsd_reason_name(it.reason));
    return it;
}

static void refused(const char *line, ot_dsd_reason want)
{
    ot_dsd_item it = one(line);
    cr_expect_eq(it.kind, OT_DSD_MALFORMED, "%s: kind %d", line, it.kind);
    cr_expect_eq(it.reason, want, "%s: reason %s, want %s", line, ot_dsd_reason_name(it.reason),
                 ot_dsd_reason_name(want));
    cr_expect_eq(it.line.n, strlen(line));
}

static int eq(ot_dsd_str s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

#define expect_str(s, want) \
    cr_expect(eq((s), (want)), "got \"%.*s\", want \"%s\"", (int)(s).n, (s).p, (want))

/* ---- metric types and values --------------------------------------------- */

Test(dogstatsd, each_type)
{
    static const struct {
        const char *line;
        ot_dsd_type type;
        double v;
    } cases[] = {
        {"page.views:1|c", OT_DSD_COUNTER, 1},
        {"fuel.level:0.5|g", OT_DSD_GAUGE, 0.5},
        {"req.time:320|ms", OT_DSD_TIMER, 320},
        {"song.length:240|h", OT_DSD_HISTOGRAM, 240},
        {"page.size:42.25|d", OT_DSD_DISTRIBUTION, 42.25},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ot_dsd_item it = metric(cases[i].line);
        cr_expect_eq(it.u.metric.type, cases[i].type, "%s", cases[i].line);
        cr_expect_eq(it.u.metric.nvalues, 1);
        cr_expect_eq(it.u.metric.values[0], cases[i].v, "%s", cases[i].line);
        cr_expect_eq(it.u.metric.rate, 1.0);
        cr_expect_eq(ot_dsd_tags_count(&it.tags), 0);
        cr_expect_eq(it.skipped_fields, 0);
        cr_expect(!it.has_timestamp);
    }
    ot_dsd_item it = metric("page.views:1|c");
    expect_str(it.u.metric.name, "page.views");
    cr_expect_str_eq(ot_dsd_type_name(OT_DSD_TIMER), "ms");
}

Test(dogstatsd, set_value_is_a_string)
{
    ot_dsd_item it = metric("users.uniques:user-1234|s|#env:prod");
    cr_expect_eq(it.u.metric.type, OT_DSD_SET);
    expect_str(it.u.metric.set_value, "user-1234");
    cr_expect_eq(it.u.metric.nvalues, 1);
    /* Sets are not packed: a ':' belongs to the member. */
    it = metric("users.uniques:a:b|s");
    expect_str(it.u.metric.set_value, "a:b");
    refused("users.uniques:|s", OT_DSD_NO_VALUE);
}

Test(dogstatsd, value_packing)
{
    ot_dsd_item it = metric("page.views:1:2:32|d");
    cr_expect_eq(it.u.metric.nvalues, 3);
    cr_expect_eq(it.u.metric.values[0], 1);
    cr_expect_eq(it.u.metric.values[1], 2);
    cr_expect_eq(it.u.metric.values[2], 32);
    cr_expect_eq(it.u.metric.dropped, 0);
    it = metric("song.length:240:234.5|h|@0.5");
    cr_expect_eq(it.u.metric.nvalues, 2);
    cr_expect_eq(it.u.metric.values[1], 234.5);
    cr_expect_eq(it.u.metric.rate, 0.5);
    refused("x:1::2|h", OT_DSD_BAD_VALUE);
    refused("x:1:|h", OT_DSD_BAD_VALUE);
    refused("x:1:2:zz|h", OT_DSD_BAD_VALUE);
}

Test(dogstatsd, numbers)
{
    ot_dsd_item it = metric("x:-3.25:+7:1e3:1.5E-2:.5:5.:007:-0|g");
    const double want[] = {-3.25, 7, 1000, 0.015, 0.5, 5, 7, -0.0};
    cr_assert_eq(it.u.metric.nvalues, 8);
    for (int i = 0; i < 8; i++)
        cr_expect_eq(it.u.metric.values[i], want[i], "value %d: %g", i, it.u.metric.values[i]);
    cr_expect(signbit(it.u.metric.values[7]));
    refused("x:inf|g", OT_DSD_BAD_VALUE);
    refused("x:nan|g", OT_DSD_BAD_VALUE);
    refused("x:0x10|g", OT_DSD_BAD_VALUE);
    refused("x: 1|g", OT_DSD_BAD_VALUE);
    refused("x:1 |g", OT_DSD_BAD_VALUE);
    refused("x:1e999|c", OT_DSD_BAD_VALUE);
    refused("x:-|c", OT_DSD_BAD_VALUE);
    refused("x:1e|c", OT_DSD_BAD_VALUE);
    refused("x:1.2.3|c", OT_DSD_BAD_VALUE);
    refused("x:1,5|c", OT_DSD_BAD_VALUE);
}

/* The fast path must give the very double strtod gives. */
Test(dogstatsd, fast_numbers_match_strtod)
{
    char buf[64];
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 200000; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        int intd = (int)(s % 12), fracd = (int)((s >> 8) % 12);
        int n = snprintf(buf, sizeof buf, "%s%.*llu%s%.*llu", (s >> 20) & 1 ? "-" : "", intd + 1,
                         (unsigned long long)((s >> 24) % 1000000000000ull), fracd ? "." : "",
                         fracd, (unsigned long long)((s >> 3) % 1000000000000ull));
        double got, want = strtod(buf, NULL);
        cr_assert(ot_dsd_parse_double(buf, (size_t)n, &got), "%s", buf);
        cr_assert_eq(memcmp(&got, &want, sizeof got), 0, "%s: %.17g vs %.17g", buf, got, want);
    }
    const char *hard[] = {"9007199254740993", "12345678901234567890", "0.30000000000000004441",
                          "1.7976931348623157e308", "4.9e-324", "123456789012345678901234.5"};
    for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++) {
        double got, want = strtod(hard[i], NULL);
        cr_assert(ot_dsd_parse_double(hard[i], strlen(hard[i]), &got), "%s", hard[i]);
        cr_expect_eq(got, want, "%s", hard[i]);
    }
    double d;
    cr_expect(!ot_dsd_parse_double("", 0, &d));
    cr_expect(!ot_dsd_parse_double(".", 1, &d));
    cr_expect(!ot_dsd_parse_double("+", 1, &d));
}

Test(dogstatsd, sample_rate)
{
    cr_expect_eq(metric("x:1|c").u.metric.rate, 1.0);
    cr_expect_eq(metric("x:1|c|@0.1").u.metric.rate, 0.1);
    cr_expect_eq(metric("x:1|c|@1").u.metric.rate, 1.0);
    cr_expect_eq(metric("x:1|ms|@1e-3").u.metric.rate, 0.001);
    refused("x:1|c|@0", OT_DSD_BAD_RATE);
    refused("x:1|c|@1.5", OT_DSD_BAD_RATE);
    refused("x:1|c|@-0.5", OT_DSD_BAD_RATE);
    refused("x:1|c|@", OT_DSD_BAD_RATE);
    refused("x:1|c|@abc", OT_DSD_BAD_RATE);
}

/* ---- tags and the other fields ------------------------------------------- */

static int tags(const ot_dsd_item *it, ot_dsd_tag *out, int max)
{
    ot_dsd_tag_iter ti;
    ot_dsd_tags_begin(&it->tags, &ti);
    int n = 0;
    while (n < max && ot_dsd_tag_next(&ti, &out[n]))
        n++;
    return n;
}

Test(dogstatsd, tags_split_into_key_and_value)
{
    ot_dsd_item it = metric("x:1|c|#host:web-1,env:prod,service:checkout,version:1.2.3,"
                            "canary,url:http://a:8/b,,k:");
    ot_dsd_tag t[16];
    int n = tags(&it, t, 16);
    cr_assert_eq(n, 7);
    cr_expect_eq(ot_dsd_tags_count(&it.tags), 7);
    const char *keys[] = {"host", "env", "service", "version", "canary", "url", "k"};
    const char *values[] = {"web-1", "prod", "checkout", "1.2.3", "", "http://a:8/b", ""};
    for (int i = 0; i < n; i++) {
        expect_str(t[i].key, keys[i]);
        expect_str(t[i].value, values[i]);
    }
    cr_expect(t[4].bare);
    cr_expect(!t[6].bare); /* "k:" has a key and an empty value, not bare */
    cr_expect(!t[0].bare);

    /* Multibyte UTF-8 is kept as it is. */
    it = metric("x:1|c|#citt\xc3\xa0:Z\xc3\xbcrich");
    cr_assert_eq(tags(&it, t, 16), 1);
    expect_str(t[0].key, "citt\xc3\xa0");
    expect_str(t[0].value, "Z\xc3\xbcrich");

    it = metric("x:1|c|#");
    cr_expect_eq(ot_dsd_tags_count(&it.tags), 0);
    cr_expect_eq(tags(&it, t, 16), 0);
    it = metric("x:1|c|#,,,");
    cr_expect_eq(ot_dsd_tags_count(&it.tags), 0);
    cr_expect_eq(tags(&it, t, 16), 0);
}

Test(dogstatsd, container_timestamp_external_cardinality)
{
    ot_dsd_item it = metric("x:1|g|#a:b"
                            "|c:83c0a99c0a54c0c187f461c7980e9b57f3f6a8b0c918c8d93df19a9de6f3fe1d"
                            "|T1656581400|e:it-false,cn-nginx,pu-75a2b6d5|card:orchestrator");
    expect_str(it.container_id, "83c0a99c0a54c0c187f461c7980e9b57f3f6a8b0c918c8d93df19a9de6f3fe1d");
    cr_expect(it.has_timestamp);
    cr_expect_eq(it.timestamp, 1656581400);
    expect_str(it.external_data, "it-false,cn-nginx,pu-75a2b6d5");
    cr_expect_eq(it.cardinality, OT_DSD_CARD_ORCHESTRATOR);
    cr_expect_eq(ot_dsd_tags_count(&it.tags), 1);
    cr_expect_eq(it.skipped_fields, 0);
    cr_expect_eq(metric("x:1|c|card:none").cardinality, OT_DSD_CARD_NONE);
    cr_expect_eq(metric("x:1|c|card:low").cardinality, OT_DSD_CARD_LOW);
    cr_expect_eq(metric("x:1|c|card:high").cardinality, OT_DSD_CARD_HIGH);
    /* A cardinality outside the set is skipped like an unknown field. */
    it = metric("x:1|c|card:extreme");
    cr_expect_eq(it.cardinality, OT_DSD_CARD_UNSET);
    cr_expect_eq(it.skipped_fields, 1);
    /* Order does not matter; the last repeat wins. */
    it = metric("x:1|c|c:aaa|@0.5|#t|c:bbb");
    expect_str(it.container_id, "bbb");
    cr_expect_eq(it.u.metric.rate, 0.5);
}

Test(dogstatsd, timestamps)
{
    cr_expect_eq(metric("x:1|c|T1").timestamp, 1);
    cr_expect_eq(metric("x:1|c|T9223372036").timestamp, 9223372036LL);
    refused("x:1|c|T0", OT_DSD_BAD_TIMESTAMP);
    refused("x:1|c|T", OT_DSD_BAD_TIMESTAMP);
    refused("x:1|c|Tabc", OT_DSD_BAD_TIMESTAMP);
    refused("x:1|c|T-5", OT_DSD_BAD_TIMESTAMP);
    refused("x:1|c|T9223372037", OT_DSD_BAD_TIMESTAMP);
    refused("x:1|c|T99999999999999999999999", OT_DSD_BAD_TIMESTAMP);
}

Test(dogstatsd, relative_gauge_sign)
{
    ot_dsd_item it = metric("x:+3|g");
    cr_expect(it.u.metric.any_sign);
    cr_expect_eq(it.u.metric.explicit_sign[0], 1);
    cr_expect_eq(it.u.metric.values[0], 3);
    it = metric("x:-5|g");
    cr_expect(it.u.metric.any_sign);
    cr_expect_eq(it.u.metric.values[0], -5);
    it = metric("x:5|g");
    cr_expect(!it.u.metric.any_sign);
    cr_expect_eq(it.u.metric.explicit_sign[0], 0);
    it = metric("x:5:+3:-1|g");
    cr_expect(it.u.metric.any_sign);
    cr_expect_eq(it.u.metric.explicit_sign[0], 0);
    cr_expect_eq(it.u.metric.explicit_sign[1], 1);
    cr_expect_eq(it.u.metric.explicit_sign[2], 1);
    /* Only gauges carry the flag. */
    it = metric("x:+3|c");
    cr_expect(!it.u.metric.any_sign);
    cr_expect_eq(it.u.metric.values[0], 3);
}

Test(dogstatsd, unknown_field_skipped_rest_kept)
{
    ot_dsd_item it = metric("x:2|c|z:whatever|@0.5|future|#a:b||T1700000000");
    cr_expect_eq(it.skipped_fields, 3); /* z:, future, the empty one */
    cr_expect_eq(it.u.metric.rate, 0.5);
    cr_expect_eq(ot_dsd_tags_count(&it.tags), 1);
    cr_expect_eq(it.timestamp, 1700000000);
    cr_expect_eq(it.u.metric.values[0], 2);
}

/* ---- events -------------------------------------------------------------- */

Test(dogstatsd, event_all_fields)
{
    ot_dsd_item it = one("_e{21,36}:An exception occurred|Cannot parse CSV file from 10.0.0.17"
                         "|d:1656581400|h:web-1|p:low|t:warning|k:csv-errors|s:my_apps"
                         "|#env:prod,team:data|c:abc|zz:skip");
    cr_assert_eq(it.kind, OT_DSD_EVENT, "%s", ot_dsd_reason_name(it.reason));
    expect_str(it.u.event.title, "An exception occurred");
    expect_str(it.u.event.text, "Cannot parse CSV file from 10.0.0.17");
    cr_expect_eq(it.timestamp, 1656581400);
    expect_str(it.host, "web-1");
    cr_expect_eq(it.u.event.priority, OT_DSD_PRIO_LOW);
    cr_expect_eq(it.u.event.alert_type, OT_DSD_ALERT_WARNING);
    expect_str(it.u.event.aggregation_key, "csv-errors");
    expect_str(it.u.event.source_type, "my_apps");
    cr_expect_eq(ot_dsd_tags_count(&it.tags), 2);
    expect_str(it.container_id, "abc");
    cr_expect_eq(it.skipped_fields, 1);

    it = one("_e{1,0}:T|");
    cr_assert_eq(it.kind, OT_DSD_EVENT);
    cr_expect_eq(it.u.event.text.n, 0);
    cr_expect_eq(it.u.event.priority, OT_DSD_PRIO_UNSET);
    cr_expect_eq(one("_e{1,1}:T|x|t:error").u.event.alert_type, OT_DSD_ALERT_ERROR);
    cr_expect_eq(one("_e{1,1}:T|x|t:success").u.event.alert_type, OT_DSD_ALERT_SUCCESS);
    cr_expect_eq(one("_e{1,1}:T|x|t:info|p:normal").u.event.alert_type, OT_DSD_ALERT_INFO);
    cr_expect_eq(one("_e{1,1}:T|x|t:info|p:normal").u.event.priority, OT_DSD_PRIO_NORMAL);
    it = one("_e{1,1}:T|x|t:panic");
    cr_expect_eq(it.u.event.alert_type, OT_DSD_ALERT_UNSET);
    cr_expect_eq(it.skipped_fields, 1);
}

Test(dogstatsd, event_lengths_are_bytes_and_text_may_hold_pipes)
{
    /* "héllo wörld ✓" is 13 characters, 17 bytes. */
    ot_dsd_item it = one("_e{17,8}:h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93|a|b\\nc|d|#x");
    cr_assert_eq(it.kind, OT_DSD_EVENT, "%s", ot_dsd_reason_name(it.reason));
    expect_str(it.u.event.title, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93");
    expect_str(it.u.event.text, "a|b\\nc|d");
    cr_expect_eq(ot_dsd_tags_count(&it.tags), 1);
    char buf[16];
    size_t n = ot_dsd_unescape(it.u.event.text, buf);
    cr_expect_eq(n, 7);
    cr_expect_eq(memcmp(buf, "a|b\nc|d", 7), 0);
    /* Character counts in place of byte counts do not match the line. */
    refused("_e{13,8}:h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93|a|b\\nc|d", OT_DSD_BAD_EVENT);
}

Test(dogstatsd, event_malformed)
{
    ot_dsd_item it = one("_e{5,4}:title|text|extra"); /* right lengths, unknown field */
    cr_expect_eq(it.kind, OT_DSD_EVENT);
    cr_expect_eq(it.skipped_fields, 1);
    refused("_e{5,40}:title|text", OT_DSD_BAD_EVENT);          /* text past the end */
    refused("_e{500,4}:title|text", OT_DSD_BAD_EVENT);         /* title past the end */
    refused("_e{99999999999,4}:title|text", OT_DSD_BAD_EVENT); /* absurd length */
    refused("_e{4,4}:title|text", OT_DSD_BAD_EVENT);           /* title not followed by | */
    refused("_e{5,3}:title|text", OT_DSD_BAD_EVENT);           /* text not followed by | */
    refused("_e{0,4}:|text", OT_DSD_BAD_EVENT);                /* empty title */
    refused("_e{5,4}title|text", OT_DSD_BAD_EVENT);
    refused("_e{5}:title|text", OT_DSD_BAD_EVENT);
    refused("_e{,4}:title|text", OT_DSD_BAD_EVENT);
    refused("_e{5,4:title|text", OT_DSD_BAD_EVENT);
    refused("_e{", OT_DSD_BAD_EVENT);
    refused("_e{5,4}:title|text|d:soon", OT_DSD_BAD_TIMESTAMP);
}

/* ---- service checks ------------------------------------------------------ */

Test(dogstatsd, service_check_all_fields)
{
    ot_dsd_item it = one("_sc|redis.can_connect|2|d:1656581400|h:db-1|#env:prod,role:cache"
                         "|c:ctr|m:timeout|retrying\\nsoon");
    cr_assert_eq(it.kind, OT_DSD_SERVICE_CHECK, "%s", ot_dsd_reason_name(it.reason));
    expect_str(it.u.sc.name, "redis.can_connect");
    cr_expect_eq(it.u.sc.status, 2);
    cr_expect_eq(it.timestamp, 1656581400);
    expect_str(it.host, "db-1");
    cr_expect_eq(ot_dsd_tags_count(&it.tags), 2);
    expect_str(it.container_id, "ctr");
    expect_str(it.u.sc.message, "timeout|retrying\\nsoon");
    char buf[32];
    size_t n = ot_dsd_unescape(it.u.sc.message, buf);
    cr_expect_eq(n, 21);
    cr_expect_eq(memcmp(buf, "timeout|retrying\nsoon", n), 0);
    for (int s = 0; s <= 3; s++) {
        char line[32];
        snprintf(line, sizeof line, "_sc|x|%d", s);
        it = one(line);
        cr_expect_eq(it.kind, OT_DSD_SERVICE_CHECK);
        cr_expect_eq(it.u.sc.status, s);
        cr_expect_eq(it.u.sc.message.n, 0);
    }
    it = one("_sc|x|0|zz:1");
    cr_expect_eq(it.skipped_fields, 1);
}

Test(dogstatsd, service_check_malformed)
{
    refused("_sc|x|4", OT_DSD_BAD_SERVICE_CHECK);
    refused("_sc|x|01", OT_DSD_BAD_SERVICE_CHECK);
    refused("_sc|x|", OT_DSD_BAD_SERVICE_CHECK);
    refused("_sc|x", OT_DSD_BAD_SERVICE_CHECK);
    refused("_sc||0", OT_DSD_BAD_SERVICE_CHECK);
    refused("_sc|", OT_DSD_BAD_SERVICE_CHECK);
    refused("_sc|x|ok", OT_DSD_BAD_SERVICE_CHECK);
    refused("_sc|x|0|d:0", OT_DSD_BAD_TIMESTAMP);
}

/* ---- every reason -------------------------------------------------------- */

Test(dogstatsd, malformed_metrics_by_reason)
{
    refused(":1|c", OT_DSD_EMPTY_NAME);
    refused(":", OT_DSD_EMPTY_NAME);
    refused("|c", OT_DSD_EMPTY_NAME);
    refused("x|c", OT_DSD_NO_VALUE);
    refused("x", OT_DSD_NO_VALUE);
    refused("x:|c", OT_DSD_NO_VALUE);
    refused("x:1", OT_DSD_NO_TYPE); /* a line without '|' */
    refused("x:1|", OT_DSD_NO_TYPE);
    refused("x:1||#a", OT_DSD_NO_TYPE);
    refused("x:1|q", OT_DSD_BAD_TYPE);
    refused("x:1|cc", OT_DSD_BAD_TYPE);
    refused("x:1|m", OT_DSD_BAD_TYPE);
    refused("x:1|C", OT_DSD_BAD_TYPE);
    refused("x:abc|c", OT_DSD_BAD_VALUE);
    refused("x:1|c|@2", OT_DSD_BAD_RATE);
    refused("x:1|c|Tx", OT_DSD_BAD_TIMESTAMP);
    refused("x\xff:1|c", OT_DSD_BAD_UTF8);
    refused("_e{1,1}:a|b|#\xc0\x80", OT_DSD_BAD_UTF8);
    refused("_sc|\xed\xa0\x80|0", OT_DSD_BAD_UTF8); /* a surrogate */
    cr_expect_str_eq(ot_dsd_reason_name(OT_DSD_NO_VALUE), "no_value");
    cr_expect_str_eq(ot_dsd_reason_name(OT_DSD_BAD_SERVICE_CHECK), "bad_service_check");
    for (int r = 0; r < OT_DSD_REASON_COUNT; r++)
        cr_expect_neq(ot_dsd_reason_name((ot_dsd_reason)r), NULL);
}

Test(dogstatsd, caps_on_names_and_tags)
{
    static char line[OT_DSD_MAX_TAGS * 4 + OT_DSD_MAX_NAME + 64];
    memset(line, 'n', OT_DSD_MAX_NAME);
    strcpy(line + OT_DSD_MAX_NAME, ":1|c");
    cr_expect_eq(one(line).kind, OT_DSD_METRIC);
    memset(line, 'n', OT_DSD_MAX_NAME + 1);
    strcpy(line + OT_DSD_MAX_NAME + 1, ":1|c");
    refused(line, OT_DSD_TOO_LONG);

    int w = sprintf(line, "x:1|c|#");
    memset(line + w, 't', OT_DSD_MAX_TAG + 1);
    line[w + OT_DSD_MAX_TAG + 1] = '\0';
    refused(line, OT_DSD_TOO_LONG);
    line[w + OT_DSD_MAX_TAG] = '\0';
    cr_expect_eq(ntags(one(line)), 1);

    w = sprintf(line, "x:1|c|#");
    for (int i = 0; i < OT_DSD_MAX_TAGS; i++)
        w += sprintf(line + w, "%s%c", i ? "," : "", 'a' + i % 26);
    cr_expect_eq(ntags(one(line)), OT_DSD_MAX_TAGS);
    strcpy(line + w, ",z");
    refused(line, OT_DSD_TOO_MANY_TAGS);
}

/* ---- datagrams ----------------------------------------------------------- */

typedef struct got {
    int n;
    ot_dsd_item item[64];
} got;

static void parse_all(const void *data, size_t len, got *g)
{
    static ot_dsd_iter it;
    ot_dsd_iter_init(&it, data, len);
    g->n = 0;
    ot_dsd_item item;
    while (ot_dsd_next(&it, &item)) {
        const char *lo = data, *hi = lo + len;
        cr_assert(item.line.p >= lo && item.line.p + item.line.n <= hi);
        if (g->n < 64)
            g->item[g->n] = item;
        g->n++;
    }
}

Test(dogstatsd, good_bad_good_lines)
{
    const char d[] = "a:1|c\nb:oops|c\n_e{5,40}:title|text\nc:2.5|g|#k:v\n";
    got g;
    parse_all(d, sizeof d - 1, &g);
    cr_assert_eq(g.n, 4);
    cr_expect_eq(g.item[0].kind, OT_DSD_METRIC);
    expect_str(g.item[0].u.metric.name, "a");
    cr_expect_eq(g.item[1].reason, OT_DSD_BAD_VALUE);
    expect_str(g.item[1].line, "b:oops|c");
    cr_expect_eq(g.item[2].reason, OT_DSD_BAD_EVENT);
    cr_expect_eq(g.item[3].kind, OT_DSD_METRIC);
    expect_str(g.item[3].u.metric.name, "c");
    cr_expect_eq(ot_dsd_tags_count(&g.item[3].tags), 1);
}

Test(dogstatsd, crlf_trailing_and_empty_lines)
{
    const char d[] = "a:1|c\r\n\r\n\nb:2|g|#x:y\r\n";
    got g;
    parse_all(d, sizeof d - 1, &g);
    cr_assert_eq(g.n, 2);
    expect_str(g.item[0].line, "a:1|c");
    expect_str(g.item[1].line, "b:2|g|#x:y");
    ot_dsd_tag t;
    ot_dsd_tag_iter ti;
    ot_dsd_tags_begin(&g.item[1].tags, &ti);
    cr_assert(ot_dsd_tag_next(&ti, &t));
    expect_str(t.value, "y"); /* no '\r' left on the last tag */
    parse_all("", 0, &g);
    cr_expect_eq(g.n, 0);
    parse_all("\n\n\r\n", 4, &g);
    cr_expect_eq(g.n, 0);
    parse_all(NULL, 0, &g);
    cr_expect_eq(g.n, 0);
}

Test(dogstatsd, hostile_lines_do_not_stop_the_datagram)
{
    /* A line without '|', only ':', NUL bytes, invalid UTF-8, an event
     * whose lengths point past the end, and good lines around them. */
    const char d[] = "ok.a:1|c\n"
                     "no.pipe:1\n"
                     ":::::\n"
                     "nul\0name:1|c\n"
                     "tag:1|c|#k:\xfe\xff\n"
                     "_e{100,100}:short|x\n"
                     "ok.b:2|c\n";
    got g;
    parse_all(d, sizeof d - 1, &g);
    cr_assert_eq(g.n, 7);
    cr_expect_eq(g.item[0].kind, OT_DSD_METRIC);
    cr_expect_eq(g.item[1].reason, OT_DSD_NO_TYPE);
    cr_expect_eq(g.item[2].reason, OT_DSD_EMPTY_NAME);
    cr_expect_eq(g.item[3].reason, OT_DSD_NUL_BYTE);
    cr_expect_eq(g.item[4].reason, OT_DSD_BAD_UTF8);
    cr_expect_eq(g.item[5].reason, OT_DSD_BAD_EVENT);
    cr_expect_eq(g.item[6].kind, OT_DSD_METRIC);
    expect_str(g.item[6].u.metric.name, "ok.b");
}

Test(dogstatsd, ten_thousand_packed_values)
{
    static char line[10000 * 4 + 64];
    int w = sprintf(line, "many");
    for (int i = 0; i < 10000; i++)
        w += sprintf(line + w, ":%d", i % 100);
    strcpy(line + w, "|h|#a");
    ot_dsd_item it = metric(line);
    cr_expect_eq(it.u.metric.nvalues, OT_DSD_MAX_VALUES);
    cr_expect_eq(it.u.metric.dropped, 10000 - OT_DSD_MAX_VALUES);
    cr_expect_eq(it.u.metric.values[OT_DSD_MAX_VALUES - 1], (OT_DSD_MAX_VALUES - 1) % 100);
    cr_expect_eq(ot_dsd_tags_count(&it.tags), 1);
    /* A bad value past the cap still refuses the line. */
    strcpy(line + w, ":x|h");
    refused(line, OT_DSD_BAD_VALUE);
}

Test(dogstatsd, garbage_64k_terminates_inside_the_input)
{
    static uint8_t buf[65536];
    uint64_t s = 42;
    const char alphabet[] = "ab:|#@,_e{}sc01T.\n\r-+\\";
    for (int round = 0; round < 8; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            uint8_t r = (uint8_t)(s >> 56);
            buf[i] = round & 1 ? r : (uint8_t)alphabet[r % (sizeof alphabet - 1)];
        }
        ot_dsd_iter it;
        ot_dsd_iter_init(&it, buf, sizeof buf);
        ot_dsd_item item;
        size_t lines = 0, bytes = 0;
        while (ot_dsd_next(&it, &item)) {
            cr_assert((const uint8_t *)item.line.p >= buf);
            cr_assert((const uint8_t *)item.line.p + item.line.n <= buf + sizeof buf);
            lines++;
            bytes += item.line.n;
        }
        cr_expect_leq(bytes, sizeof buf);
        cr_expect_leq(lines, sizeof buf);
    }
    /* One 64 KiB line with no newline at all. */
    memset(buf, 'x', sizeof buf);
    got g;
    parse_all(buf, sizeof buf, &g);
    cr_expect_eq(g.n, 1);
    cr_expect_eq(g.item[0].reason, OT_DSD_NO_VALUE);
}

Test(dogstatsd, unescape_only_newlines)
{
    char buf[16];
    ot_dsd_str s = {"a\\nb\\tc\\", 8};
    size_t n = ot_dsd_unescape(s, buf);
    cr_expect_eq(n, 7);
    cr_expect_eq(memcmp(buf, "a\nb\\tc\\", 7), 0);
}
