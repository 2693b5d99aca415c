/* lines.c: the two line formats the generator writes directly instead of
 * encoding OTLP: an application's JSON log line (what a service prints to
 * stdout and the jsonlog receiver tails) and a DogStatsD datagram line.
 * Both carry loadgen.seq and loadgen.run like the OTLP items do. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "loadgen.h"

static const char *const services[] = {"frontend", "checkout", "orders", "payments", "inventory",
                                       "shipping"};
static const char *const msgs[] = {
    "GET /api/v1/orders/12345 200",
    "payment authorized for order 88231",
    "cache miss for key product:sku-1182, loading from database",
    "POST /api/v1/checkout 503: upstream inventory timed out after 2000ms",
    "user 5521 signed in",
    "retrying publish of order.viewed (attempt 2 of 5)"};
static const char *const levels[] = {"info", "info", "debug", "error", "info", "warn"};

void lg_applog_line(ot_buf *out, const lg_opts *o, uint64_t seq, int64_t wall_ns, uint64_t rnd)
{
    size_t k = rnd % 6;
    time_t t = (time_t)(wall_ns / 1000000000LL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[40];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    ot_buf_printf(out,
                  "{\"time\":\"%s.%06lldZ\",\"level\":\"%s\",\"logger\":\"%s.http\",\"msg\":",
                  ts, (long long)(wall_ns / 1000 % 1000000), levels[k], services[(rnd >> 8) % 6]);
    ot_buf_json_str(out, msgs[k], strlen(msgs[k]));
    ot_buf_printf(out,
                  ",\"service\":\"%s\",\"trace_id\":\"%016llx%016llx\",\"span_id\":\"%016llx\","
                  "\"loadgen.seq\":%llu,\"loadgen.run\":\"%s\"",
                  services[(rnd >> 8) % 6], (unsigned long long)(rnd * 0x9E3779B97F4A7C15ULL),
                  (unsigned long long)(rnd ^ seq), (unsigned long long)(rnd >> 3),
                  (unsigned long long)seq, o->run_id);
    int extra = o->attributes - 2;
    for (int i = 0; i < extra; i++) {
        switch (i) {
        case 0: ot_buf_printf(out, ",\"http.method\":\"%s\"", k == 3 ? "POST" : "GET"); break;
        case 1: ot_buf_printf(out, ",\"http.status\":%d", k == 3 ? 503 : 200); break;
        case 2: ot_buf_printf(out, ",\"duration_ms\":%.2f", (double)(rnd % 50000) / 100.0); break;
        case 3: ot_buf_printf(out, ",\"client_ip\":\"10.%u.%u.%u\"", (unsigned)(rnd >> 16) & 255,
                              (unsigned)(rnd >> 24) & 255, (unsigned)(rnd >> 32) & 255); break;
        case 4: ot_buf_printf(out, ",\"user_id\":%llu", (unsigned long long)(rnd >> 40) % 100000); break;
        case 5: ot_buf_printf(out, ",\"region\":\"eu-west-1\""); break;
        case 6: ot_buf_printf(out, ",\"pod\":\"%s-7d9f8c-x2k4q\"", services[(rnd >> 8) % 6]); break;
        case 7: ot_buf_printf(out, ",\"thread\":%u", (unsigned)(rnd >> 48) % 64); break;
        default: ot_buf_printf(out, ",\"extra_%d\":\"value-%d\"", i, i); break;
        }
    }
    if (o->payload_bytes) {
        ot_buf_puts(out, ",\"payload\":\"");
        for (size_t i = 0; i < o->payload_bytes; i++)
            ot_buf_putc(out, (char)('a' + (seq + i) % 26));
        ot_buf_putc(out, '"');
    }
    ot_buf_puts(out, "}\n");
}

void lg_statsd_line(ot_buf *out, const lg_opts *o, uint64_t seq, uint64_t rnd)
{
    static const char *const names[] = {"http.server.requests", "http.server.active",
                                        "http.server.duration", "db.query.duration",
                                        "queue.latency"};
    static const char *const types[] = {"c", "g", "h", "d", "ms"};
    /* With --series the line is a function of seq % series alone, so
     * exactly that many series exist; without, loadgen.seq makes each
     * line its own series (and lets `count` tally them). */
    uint64_t idx = o->series ? seq % o->series : seq;
    size_t k = idx % 5;
    const char *svc = services[o->series ? (idx / 5) % 6 : (rnd >> 8) % 6];
    if (k == 0)
        ot_buf_printf(out, "%s:1|c", names[k]);
    else if (k == 1)
        ot_buf_printf(out, "%s:%u|g", names[k], (unsigned)(rnd % 200));
    else
        ot_buf_printf(out, "%s:%.3f|%s", names[k], (double)(rnd % 100000) / 1000.0, types[k]);
    if (o->series)
        ot_buf_printf(out, "|#service:%s,env:production,route:/api/v1/orders,series:%llu,loadgen.run:%s",
                      svc, (unsigned long long)idx, o->run_id);
    else
        ot_buf_printf(out, "|#service:%s,env:production,route:/api/v1/orders,loadgen.seq:%llu,loadgen.run:%s",
                      svc, (unsigned long long)seq, o->run_id);
    int extra = o->attributes - 5;
    /* with --series the extra tags follow the series too, or each random
     * value would make a new series (8^extra of them per series) */
    uint64_t xv = o->series ? idx * 0x9e3779b97f4a7c15ull >> 20 : rnd;
    for (int i = 0; i < extra; i++)
        ot_buf_printf(out, ",tag%d:value%d", i, (int)((xv >> i) & 7));
    ot_buf_putc(out, '\n');
}
