/* jlr.h: the jsonlog receiver as its running parts see it: the config,
 * the state of each file followed (tail.c), what checkpoints keep
 * (ckpt.c), and the reader that turns lines into batches and hands them
 * on (jsonlog.c). One tailer thread owns all of it; only the stop flag and
 * the telemetry cells are touched from elsewhere. */
#ifndef JL_JLR_H
#define JL_JLR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/arena.h"
#include "base/buf.h"
#include "config/config.h"
#include "model/batch.h"
#include "model/consumer.h"
#include "net/tls.h"
#include "telemetry/telemetry.h"
#include "jl.h"

typedef struct jlr_cfg {
    ot_strlist include, exclude;
    int start_at; /* 0 end, 1 beginning */
    int64_t poll_interval;
    int64_t force_flush_period; /* 0: a line without newline waits for it */
    uint64_t fingerprint_size;
    uint64_t max_log_size;
    int64_t max_concurrent_files;
    bool include_file_name, include_file_path;
    int encoding;
    const char *storage;
    bool delete_after_read;
    int format; /* JL_FMT_* */
    struct {
        const char *field, *layout;
    } timestamp;
    struct {
        const char *field;
        const ot_node *mapping;
    } severity;
    struct {
        const char *field;
    } body;
    const char *pod_logs_root;
    ot_endpoint endpoint; /* NDJSON over TCP; text NULL when unset */
    ot_tls_server tls;    /* on endpoint */
} jlr_cfg;

/* A file known by its first bytes: what a checkpoint holds, and what is
 * kept of a file that was truncated (its copy may show up under a new
 * name and continue where the original stopped). */
typedef struct jlr_known {
    uint8_t *fp;
    size_t fp_len;
    int64_t off;
} jlr_known;

typedef struct jlr_file {
    char *path;
    dev_t dev;
    ino_t ino;
    int fd;
    int64_t off;       /* next byte to read */
    int64_t safe_off;  /* every line before it is in a record */
    int64_t acked_off; /* ... and the pipeline accepted it */
    uint8_t *fp;       /* fingerprint_size bytes */
    size_t fp_len;
    int fmt;
    bool skipping;     /* inside a line longer than max_log_size */
    size_t partial_len;    /* bytes of a last line without newline, */
    int64_t partial_since; /* ... unchanged since (monotonic ns) */
    bool gone;         /* deleted, or renamed out of the globs */
    unsigned missing;  /* polls in a row the globs did not name it */
    bool seen;
    ot_buf join;       /* a partial (P / no-newline) message so far */
    bool join_trunc;
    int64_t join_ts;
    const char *join_stream;
    char *res;         /* Resource attribute KeyValues */
    size_t res_len;
    int wd;            /* inotify watch, -1 without */
    char *extra;       /* log.file.name / log.file.path KeyValues */
    size_t extra_len;
} jlr_file;

typedef struct jlr jlr;

typedef struct jlr_tel {
    ot_gauge *files_open, *ckpt_lag;
    ot_counter *lines, *bytes, *refused, *parse_errors, *truncated, *records;
    ot_counter *rot_rename, *rot_truncate, *rot_delete;
} jlr_tel;

struct jlr {
    char *id;
    const jlr_cfg *c;
    jl_map map;
    ot_arena *arena; /* map, id */
    ot_consumer *next;
    void *host;
    /* checkpoints */
    const char *ck_dir;
    bool ck_sync;
    char ck_name[256];
    bool ck_dirty;
    /* files */
    jlr_file **files;
    size_t n_files, cap_files;
    jlr_known *known; /* from the checkpoint and from truncations */
    size_t n_known, cap_known;
    bool first_poll;
    /* reading */
    char *rbuf;
    size_t rcap;
    jl_enc enc;
    ot_buf out, dtmp, dscratch;
    size_t out_items;
    int64_t now_real;
    /* a batch the pipeline refused as RETRYABLE, and what it covered */
    ot_batch *pending;
    jlr_file *pending_file;
    int64_t pending_off;
    unsigned fails;
    /* thread */
    pthread_t th;
    bool started;
    int wake_fd; /* eventfd: shutdown */
    int ino_fd;  /* inotify: a watched file was written; -1 without */
    atomic_bool stop;
    jlr_tel tel;
    void *tcp; /* tcp.c, when endpoint is set */
};

/* Cuts a line to max_log_size (setting *truncated), drops a trailing CR,
 * counts it; false when nothing is left to map. */
static inline bool jlr_line_prep(jlr *r, size_t *n, const char *s, bool *truncated)
{
    if (*n > r->c->max_log_size) {
        *n = r->c->max_log_size;
        *truncated = true;
    }
    if (*n && s[*n - 1] == '\r')
        (*n)--;
    ot_counter_add(r->tel.lines, 1);
    return *n > 0;
}

/* tail.c */
void jlr_poll(jlr *r);
/* Reads what f has; 1 when lines were read, 0 when none, -1 when the
 * pipeline refused (a batch is pending). */
int jlr_read_file(jlr *r, jlr_file *f);
void jlr_file_close(jlr *r, jlr_file *f);
/* Closes and forgets files that are gone and read to their end. */
void jlr_reap(jlr *r);
/* One line of f (without its newline) at file offset end_off after it. */
int jlr_line(jlr *r, jlr_file *f, const char *s, size_t n, bool truncated);
void jlr_known_add(jlr *r, const uint8_t *fp, size_t fp_len, int64_t off);

/* jsonlog.c: the records in r->out become one batch for f's resource and
 * go to the pipeline; f's acked offset moves to safe_off once accepted.
 * -1 when refused (then pending). */
int jlr_flush(jlr *r, jlr_file *f);
/* Records in out (emptied) as one logs request in wire form with the given
 * Resource attributes; NULL on out-of-memory. */
ot_batch *jlr_batch(ot_buf *out, size_t items, const char *res, size_t res_len);
int64_t jlr_realtime_ns(void);

/* ckpt.c */
int jlr_ckpt_load(jlr *r, ot_err *err);
int jlr_ckpt_save(jlr *r, ot_err *err);

/* tcp.c */
int jlr_tcp_start(jlr *r, ot_err *err);
void jlr_tcp_stop(jlr *r);

#endif
