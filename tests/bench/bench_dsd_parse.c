/* bench_dsd_parse.c: what the DogStatsD parser alone costs per line, to
 * hold it to the receiver's budget (issue 11: millions of metrics per
 * second on one core, of which parsing may take only a part). No sockets,
 * no aggregation: the same datagram is parsed again and again, and every
 * tag is walked as the receiver will walk it. Prints lines/s and ns/line
 * for a one-line datagram (a timer with a rate and 3 tags) and for a
 * 50-line datagram of mixed types.
 *
 * Build: make build/bench-dsd-parse. Run: build/bench-dsd-parse [seconds per case (1)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../receivers/dogstatsd/parse.h"

static const char LINE[] =
    "http.request.duration:12.5|ms|@0.5|#env:prod,service:checkout,host:web-7";

static const char *const MIX[] = {
    "http.request.duration:12.5|ms|@0.5|#env:prod,service:checkout,host:web-7",
    "http.requests:1|c|#env:prod,service:checkout,status:200",
    "queue.depth:1834|g|#env:prod,service:worker,queue:orders",
    "payload.bytes:5120:480:77|d|#env:prod,service:api,route:/v1/items",
    "users.active:u-7731|s|#env:prod,service:web,region:eu-west-1",
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static ot_dsd_iter iter;
static volatile double sink;

/* Parses buf until `seconds` pass; returns lines per second. */
static double run(const char *buf, size_t len, double seconds, size_t *lines_per_dgram)
{
    double sum = 0, t0 = now(), t;
    size_t lines = 0, rounds = 0;
    do {
        for (int k = 0; k < 1000; k++) {
            ot_dsd_iter_init(&iter, buf, len);
            ot_dsd_item it;
            while (ot_dsd_next(&iter, &it)) {
                lines++;
                if (it.kind != OT_DSD_METRIC) {
                    fprintf(stderr, "bench: line refused: %s\n", ot_dsd_reason_name(it.reason));
                    exit(1);
                }
                if (it.u.metric.type != OT_DSD_SET)
                    sum += it.u.metric.values[0] * it.u.metric.rate;
                ot_dsd_tag_iter ti;
                ot_dsd_tag tag;
                ot_dsd_tags_begin(&it.tags, &ti);
                while (ot_dsd_tag_next(&ti, &tag))
                    sum += (double)(tag.key.n + tag.value.n);
            }
            rounds++;
        }
        t = now() - t0;
    } while (t < seconds);
    sink = sum;
    *lines_per_dgram = lines / rounds;
    return (double)lines / t;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (!(seconds > 0))
        seconds = 1.0;
    static char dgram[8192];
    size_t len = 0;
    for (int i = 0; i < 50; i++) {
        const char *l = MIX[i % 5];
        size_t n = strlen(l);
        memcpy(dgram + len, l, n);
        len += n;
        dgram[len++] = '\n';
    }
    size_t per;
    double one = run(LINE, sizeof LINE - 1, seconds, &per);
    printf("dogstatsd parse, 1 line/datagram (timer, @rate, 3 tags): %.2fM lines/s, %.0f ns/line\n",
           one / 1e6, 1e9 / one);
    double mix = run(dgram, len, seconds, &per);
    printf("dogstatsd parse, %zu lines/datagram (c g ms d s, 3 tags each, %zu bytes): "
           "%.2fM lines/s, %.0f ns/line\n",
           per, len, mix / 1e6, 1e9 / mix);
    return 0;
}
