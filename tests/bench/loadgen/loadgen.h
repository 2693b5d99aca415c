/* loadgen.h: what the parts of otelite-loadgen share. The generator exists
 * to load the agent, so it must never be the bottleneck: request bodies are
 * built once per worker (lg_tmpl) and only cheap fixed-width fields (times,
 * trace ids, the loadgen.seq numbers) are rewritten per request. Every item
 * carries loadgen.seq and loadgen.run so a sink can count loss and
 * duplicates (`otelite-loadgen count`). */
#ifndef LG_LOADGEN_H
#define LG_LOADGEN_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "model/otlp.h"

/* ---- options ------------------------------------------------------------ */

typedef enum lg_target {
    LG_T_NONE = 0,
    LG_T_GRPC,
    LG_T_HTTP,
    LG_T_STATSD,
    LG_T_FILE,
} lg_target;

typedef struct lg_opts {
    ot_signal sig;
    lg_target target;
    char host[256];
    int port;
    char path[512]; /* OTLP/HTTP request path */
    bool json;      /* OTLP/HTTP with application/json */
    const char *file;
    double rate;    /* items per second over all workers; 0 = as fast as possible */
    double duration_s;
    int workers;
    int conns;      /* connections per worker */
    int streams;    /* gRPC: concurrent streams per connection */
    size_t batch;   /* items per request */
    size_t dgram_lines; /* dogstatsd: lines a datagram at most (0: as many as fit) */
    int attributes; /* attributes per item, loadgen.seq and loadgen.run included */
    size_t payload_bytes;
    uint64_t series; /* dogstatsd, metrics: cycle through this many series (0: every item its own) */
    int point_type;  /* metrics: 0 every type in turn, else 1 + gauge, sum, histogram,
                      * exponential_histogram, summary */
    uint64_t seed;
    uint64_t count; /* stop after this many items; 0 = no limit */
    const char *json_out;
    char run_id[24];
    bool quiet;
} lg_opts;

/* ---- latency histogram: log buckets, 16 per power of two (~6%) ---------- */

#define LG_HIST_SUB 16
#define LG_HIST_N (64 * LG_HIST_SUB)

typedef struct lg_hist {
    uint64_t b[LG_HIST_N];
    uint64_t n;
    uint64_t max;
} lg_hist;

void lg_hist_add(lg_hist *h, uint64_t v);
void lg_hist_merge(lg_hist *into, const lg_hist *from);
/* The value below which a fraction q of the samples lie (upper edge of the
 * bucket; exact max for q = 1). 0 when empty. */
uint64_t lg_hist_quantile(const lg_hist *h, double q);

/* ---- results ------------------------------------------------------------ */

/* Outcome keys: HTTP status as is, gRPC status as 1000 + code, 0 for a
 * transport failure (connection reset, closed, timed out). */
#define LG_CODE_GRPC 1000
#define LG_NCODES 1020

typedef struct lg_stats {
    uint64_t req_ok, items_ok;
    uint64_t req_failed, items_failed;
    uint64_t items_by_code[LG_NCODES];
    uint64_t req_by_code[LG_NCODES];
    uint64_t bytes;
    uint64_t connects, connect_failures;
    lg_hist lat; /* ns, from when the request was due to its answer */
} lg_stats;

/* Counts one answered request. ok: the target accepted it. */
void lg_stats_done(lg_stats *s, int code, bool ok, size_t items, int64_t latency_ns);

/* ---- run state shared by the workers ------------------------------------ */

typedef struct lg_run {
    const lg_opts *o;
    atomic_uint_fast64_t next_req;
    atomic_bool stop;
    int64_t t_start, t_end; /* CLOCK_MONOTONIC ns */
    uint64_t total_reqs;    /* from --count; UINT64_MAX without */
} lg_run;

typedef struct lg_content lg_content;

typedef struct lg_worker {
    int id;
    lg_run *run;
    const lg_opts *o;
    lg_content *content;
    lg_stats st;
    int64_t next_due;
    int64_t interval_ns; /* between this worker's requests; 0 = unpaced */
    bool fatal;          /* could not reach the target at all */
    char fatal_msg[256];
} lg_worker;

int64_t lg_now(void);
/* Claims the next request: its first seq and its item count. 0 when the
 * run is over (time, --count, or stop). */
size_t lg_claim(lg_worker *w, uint64_t *seq0);
/* ns until the next request is due (<= 0: now). */
int64_t lg_due_in(lg_worker *w, int64_t now);
/* Moves the schedule on by one request; returns when it was due. */
int64_t lg_take_due(lg_worker *w, int64_t now);
bool lg_time_over(lg_worker *w, int64_t now);

/* ---- content: OTLP messages with markers, and their pre-encoded form ---- */

/* A request body being prepared. data[0..prefix) is left for the transport
 * (the gRPC frame header). version ties a pre-encoded copy to its master. */
typedef struct lg_body {
    uint8_t *data;
    size_t len, cap;
    size_t prefix;
    uint64_t version;
    size_t n;
} lg_body;

lg_content *lg_content_new(const lg_opts *o, int worker, ot_err *err);
void lg_content_free(lg_content *c);
/* Writes the body of a request of n items starting at seq0. */
int lg_content_body(lg_content *c, uint64_t seq0, size_t n, int64_t wall_ns, lg_body *b,
                    ot_err *err);
void lg_body_free(lg_body *b);

/* The decoded request of n items starting at seq0 (content.c), built in
 * arena: what the templates pack, and what the icount driver can reuse. */
typedef struct lg_msg {
    ProtobufCMessage *req;
    size_t n;
    ot_anyvalue **seq;     /* the loadgen.seq value of each item */
    size_t n_times;        /* time sentinels 0..n_times-1 */
    int64_t *time_delta;   /* each one's offset from the request's wall time */
    size_t n_ids;          /* trace id sentinels 0..n_ids-1 */
    uint32_t *id_group;    /* the trace each one belongs to */
    size_t n_groups;
} lg_msg;

/* Sentinels that the encoders turn into findable bytes. */
#define LG_TIME_SENTINEL(k) (1111111111000000000ULL + (uint64_t)(k))
void lg_id_sentinel(uint8_t out[16], uint64_t k);

lg_msg *lg_msg_build(const lg_opts *o, uint64_t seed, size_t n, ot_arena *a);
/* Sets every sentinel to a real value (for a message used as is). */
void lg_msg_materialize(lg_msg *m, uint64_t seq0, int64_t wall_ns, uint64_t rng_seed);

/* ---- line formats ------------------------------------------------------- */

/* An application's JSON log line (with '\n'). */
void lg_applog_line(ot_buf *out, const lg_opts *o, uint64_t seq, int64_t wall_ns, uint64_t rnd);
/* One DogStatsD line (with '\n'). */
void lg_statsd_line(ot_buf *out, const lg_opts *o, uint64_t seq, uint64_t rnd);

/* ---- small helpers ------------------------------------------------------ */

static inline uint64_t lg_rand(uint64_t *s)
{
    /* splitmix64: cheap, good enough for ids and jitter */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

int64_t lg_wall_ns(void);

/* ---- targets: each runs one worker until the run is over ---------------- */

int lg_http_worker(lg_worker *w);
int lg_grpc_worker(lg_worker *w);
int lg_statsd_worker(lg_worker *w);
int lg_file_worker(lg_worker *w);

/* A non-blocking TCP socket with TCP_NODELAY whose connect to host:port
 * has started (it may still be in progress). -1 with errno on failure. */
int lg_tcp_connect(const char *host, int port);
/* Blocking check that host:port accepts TCP connections within timeout_ms;
 * -1 with msg filled otherwise. */
int lg_tcp_probe(const char *host, int port, int timeout_ms, char *msg, size_t cap);
/* epoll_wait with a ns timeout (< 0: forever). */
int lg_epoll_wait(int ep, void *events, int max, int64_t timeout_ns);

/* ---- subcommands -------------------------------------------------------- */

int lg_count_main(int argc, char **argv);
int lg_sink_main(int argc, char **argv);

/* What a sink has seen; walk is the signal bodies are checked as, or -1. */
typedef struct lg_sink_counts {
    uint64_t reqs, bytes, items, bad;
    int64_t first, last; /* lg_now() of the first and the latest request */
    int walk;
} lg_sink_counts;
/* Rewrites the progress file a benchmark watches. */
void lg_sink_dump(const char *path, const lg_sink_counts *k);
/* The gRPC sink's loop on a listening socket, until *stop or dur seconds. */
int lg_sink_grpc_run(int ls, lg_sink_counts *k, volatile sig_atomic_t *stop, double dur,
                     const char *json_out);
int lg_selftest_main(int argc, char **argv);

#endif
