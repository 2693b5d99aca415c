/* bench_jsonlog_parse.c: what the jsonlog receiver's line mapping alone
 * costs (JSON scan, field recognition, timestamp, OTLP wire encoding), so
 * a change to the hot path can be compared before and after without files,
 * threads or exporters. One 300-byte line shaped like a service's access
 * log, plain and inside CRI framing, encoded again and again into a
 * buffer that is emptied every 1000 records (as a batch would be).
 *
 * Build: make build/bench-jsonlog-parse.
 * Run: build/bench-jsonlog-parse [seconds per case (1)] [fixed count of lines instead] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../receivers/jsonlog/jl.h"

static const char JSON[] =
    "{\"level\":\"info\",\"time\":\"2025-11-25T10:00:00.123Z\",\"msg\":\"GET /api/v1/orders/1234 "
    "200\",\"service\":\"checkout\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
    "\"span_id\":\"00f067aa0ba902b7\",\"user\":{\"id\":1234,\"region\":\"eu-west-1\"},"
    "\"duration_ms\":12.5,\"n\":1234,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxx\"}";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run(const char *name, const char *line, size_t n, bool cri, double secs, size_t count)
{
    jl_enc e = {0};
    ot_buf out = OT_BUF_INIT;
    static const jl_map m = {0};
    jl_rec r = {.observed_ns = 1};
    size_t done = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 1000; i++) {
            bool pe;
            if (cri) {
                jl_framed f;
                if (jl_cri_parse(line, n, &f) < 0)
                    abort();
                r.runtime_ns = f.ts;
                r.stream = f.stream;
                r.stream_len = f.stream_len;
                if (jl_encode_msg(&e, &m, &r, f.msg, f.msg_len, &out, &pe) < 0 || pe)
                    abort();
            } else if (jl_encode_json(&e, &m, &r, line, n, &out, &pe) < 0 || pe)
                abort();
        }
        out.len = 0;
        done += 1000;
        t = now();
    } while (count ? done < count : t - t0 < secs);
    double el = t - t0;
    printf("%-34s %10.0f lines/s %7.1f ns/line %7.1f MiB/s (%zu-byte line)\n", name, done / el,
           el / done * 1e9, done * (double)(n + 1) / el / 1048576.0, n + 1);
    ot_buf_free(&out);
    jl_enc_free(&e);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    /* a fixed count instead, for instruction counts (valgrind --tool=callgrind) */
    size_t count = argc > 2 ? (size_t)atol(argv[2]) : 0;
    run("json line -> OTLP record", JSON, strlen(JSON), false, secs, count);
    char cri[512];
    snprintf(cri, sizeof cri, "2025-11-25T10:00:00.123456789Z stdout F %s", JSON);
    run("CRI-wrapped json -> OTLP record", cri, strlen(cri), true, secs, count);
    return 0;
}
