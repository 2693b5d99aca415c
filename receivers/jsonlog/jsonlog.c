/* jsonlog.c: the `jsonlog` receiver: its keys, the tailer thread's loop
 * (poll the globs, read what grew, reap what is gone, checkpoint), and the
 * hand-off of each file's records as one OTLP logs batch in wire form.
 * When the pipeline says RETRYABLE the batch is kept and reading stops:
 * the files are the buffer, so nothing is dropped and memory stays at one
 * batch; the same batch is offered again with backoff until accepted. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "jlr.h"
#include "pbw.h"
#include "pipeline/factory.h"

/* ---- config ------------------------------------------------------------- */

static const char *const start_ats[] = {"end", "beginning", NULL};
static const char *const formats[] = {"auto", "json", "docker", "cri", "text", NULL};
static const char *const encodings[] = {"utf-8", NULL};

#define SUB(t, m) (offsetof(jlr_cfg, t.m) - offsetof(jlr_cfg, t))

static const ot_key ts_keys[] = {
    {.name = "field", .type = OT_KT_STRING, .offset = SUB(timestamp, field),
     .help = "the JSON field holding the time (unset: time, timestamp, ts, @timestamp, asctime)"},
    {.name = "layout", .type = OT_KT_STRING, .offset = SUB(timestamp, layout), .def = "auto",
     .help = "auto, rfc3339, epoch_s, epoch_ms, epoch_us, epoch_ns or a strptime pattern (%Y-%m-%d ...)"},
    {0},
};
static const ot_key sev_keys[] = {
    {.name = "field", .type = OT_KT_STRING, .offset = SUB(severity, field),
     .help = "the JSON field holding the level (unset: level, severity, levelname, lvl)"},
    {.name = "mapping", .type = OT_KT_NODE, .offset = SUB(severity, mapping),
     .help = "severity name → words, e.g. {error: [err, E], warn: w}; before the defaults"},
    {0},
};
static const ot_key body_keys[] = {
    {.name = "field", .type = OT_KT_STRING, .offset = SUB(body, field),
     .help = "the JSON field holding the message (unset: msg, message, event; none: the whole object)"},
    {0},
};

static const ot_key jlr_keys[] = {
    {.name = "include", .type = OT_KT_STRLIST, .offset = offsetof(jlr_cfg, include),
     .help = "absolute globs of files to tail (** for any depth)"},
    {.name = "exclude", .type = OT_KT_STRLIST, .offset = offsetof(jlr_cfg, exclude),
     .help = "globs of files not to tail"},
    {.name = "start_at", .type = OT_KT_ENUM, .offset = offsetof(jlr_cfg, start_at), .def = "end",
     .choices = start_ats,
     .help = "files present at start without a checkpoint: read from their end or beginning"},
    {.name = "poll_interval", .type = OT_KT_DURATION, .offset = offsetof(jlr_cfg, poll_interval),
     .def = "200ms", .min = 1e6, .max = 6e10, .help = "how often the globs are walked and files checked"},
    {.name = "force_flush_period", .type = OT_KT_DURATION,
     .offset = offsetof(jlr_cfg, force_flush_period), .def = "500ms", .min = 0, .max = 3.6e12,
     .help = "a last line without its newline is taken as it is after this long unchanged (0: never)"},
    {.name = "fingerprint_size", .type = OT_KT_SIZE,
     .offset = offsetof(jlr_cfg, fingerprint_size), .def = "1KiB", .min = 16, .max = 65536,
     .help = "first bytes that identify a file across renames, copies and restarts"},
    {.name = "max_log_size", .type = OT_KT_SIZE, .offset = offsetof(jlr_cfg, max_log_size),
     .def = "1MiB", .min = 64, .max = 67108864,
     .help = "a longer line (or joined partial message) is cut here, with log.truncated: true"},
    {.name = "max_concurrent_files", .type = OT_KT_INT,
     .offset = offsetof(jlr_cfg, max_concurrent_files), .def = "1024", .min = 1, .max = 1e6,
     .help = "files held open at once"},
    {.name = "include_file_name", .type = OT_KT_BOOL,
     .offset = offsetof(jlr_cfg, include_file_name), .def = "true",
     .help = "attribute log.file.name"},
    {.name = "include_file_path", .type = OT_KT_BOOL,
     .offset = offsetof(jlr_cfg, include_file_path), .def = "false",
     .help = "attribute log.file.path"},
    {.name = "encoding", .type = OT_KT_ENUM, .offset = offsetof(jlr_cfg, encoding),
     .def = "utf-8", .choices = encodings,
     .help = "utf-8: invalid sequences become U+FFFD, the line is kept"},
    {.name = "storage", .type = OT_KT_STRING, .offset = offsetof(jlr_cfg, storage),
     .help = "a file_storage extension id: checkpoints survive restarts and kill -9"},
    {.name = "delete_after_read", .type = OT_KT_BOOL,
     .offset = offsetof(jlr_cfg, delete_after_read), .def = "false",
     .help = "delete a file once read to its end and accepted by the pipeline"},
    {.name = "format", .type = OT_KT_ENUM, .offset = offsetof(jlr_cfg, format), .def = "auto",
     .choices = formats, .help = "auto (per file, from its first line), json, docker, cri or text"},
    {.name = "timestamp", .type = OT_KT_TABLE, .offset = offsetof(jlr_cfg, timestamp),
     .sub = ts_keys, .help = "where the record's time comes from"},
    {.name = "severity", .type = OT_KT_TABLE, .offset = offsetof(jlr_cfg, severity),
     .sub = sev_keys, .help = "where the record's severity comes from"},
    {.name = "body", .type = OT_KT_TABLE, .offset = offsetof(jlr_cfg, body), .sub = body_keys,
     .help = "where the record's body comes from"},
    {.name = "pod_logs_root", .type = OT_KT_STRING, .offset = offsetof(jlr_cfg, pod_logs_root),
     .def = "/var/log/pods",
     .help = "files under <root>/<ns>_<pod>_<uid>/<container>/ get k8s.* resource attributes"},
    {.name = "endpoint", .type = OT_KT_ENDPOINT, .offset = offsetof(jlr_cfg, endpoint),
     .help = "host:port to take newline-delimited JSON over TCP too (unset: files only)"},
    {.name = "tls", .type = OT_KT_TABLE, .offset = offsetof(jlr_cfg, tls),
     .sub = ot_tls_server_keys, .flags = OT_KF_PRESENCE,
     .help = "serve endpoint over TLS; plain TCP unless set"},
    {0},
};

static int parse_layout(const char *s, int *layout)
{
    static const char *const names[] = {"auto", "rfc3339", "epoch_s", "epoch_ms", "epoch_us",
                                        "epoch_ns"};
    if (!s || !*s) {
        *layout = JL_TS_AUTO;
        return 0;
    }
    for (int i = 0; i < 6; i++)
        if (strcmp(s, names[i]) == 0) {
            *layout = i;
            return 0;
        }
    if (strchr(s, '%')) {
        *layout = JL_TS_STRPTIME;
        return 0;
    }
    return -1;
}

static void jlr_validate(const void *cfgp, const ot_node *node, const char *path, ot_diags *d)
{
    const jlr_cfg *c = cfgp;
    const ot_node *inc = ot_node_get(node, "include");
    if (!c->include.n)
        ot_diag_add(d, OT_SEV_ERROR, inc ? inc : node, path, "include: at least one glob is needed");
    for (size_t i = 0; i < c->include.n; i++)
        if (c->include.v[i][0] != '/')
            ot_diag_add(d, OT_SEV_ERROR, inc ? inc : node, path,
                        "include: globs must be absolute paths, found \"%s\"", c->include.v[i]);
    int layout;
    if (parse_layout(c->timestamp.layout, &layout) < 0)
        ot_diag_add(d, OT_SEV_ERROR, ot_node_path(node, "timestamp.layout"), path,
                    "timestamp.layout: expected auto, rfc3339, epoch_s, epoch_ms, epoch_us, "
                    "epoch_ns or a strptime pattern, found \"%s\"", c->timestamp.layout);
    ot_arena *a = ot_arena_new(0);
    jl_sevmap_ent *sm;
    size_t n;
    ot_err err = {{0}};
    if (a && jl_sevmap_build(c->severity.mapping, a, &sm, &n, &err) < 0)
        ot_diag_add(d, OT_SEV_ERROR, c->severity.mapping, path, "severity.%s", err.msg);
    ot_arena_free(a);
    if (c->tls.present && !c->endpoint.text)
        ot_diag_add(d, OT_SEV_ERROR, ot_node_get(node, "tls"), path, "tls needs endpoint");
    ot_tls_server_validate(&c->tls, ot_node_get(node, "tls"), path, d);
}

static size_t jlr_listens(const void *cfgp, const ot_endpoint **out, size_t max)
{
    const jlr_cfg *c = cfgp;
    if (!c->endpoint.text || !max)
        return 0;
    out[0] = &c->endpoint;
    return 1;
}

/* ---- hand-off ------------------------------------------------------------ */

int64_t jlr_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int offer(jlr *r, ot_batch *b, jlr_file *f, int64_t off)
{
    size_t items = b->items;
    ot_err e = {{0}};
    ot_batch_ref(b);
    ot_status st = ot_consume(r->next, b, &e);
    if (st == OT_RETRYABLE) {
        ot_counter_add(r->tel.refused, items);
        r->pending = b;
        r->pending_file = f;
        r->pending_off = off;
        return -1;
    }
    ot_batch_unref(b);
    if (st == OT_PERMANENT) {
        static _Atomic int64_t last;
        if (ot_log_ratelimit(&last, 10000000000LL))
            ot_warn("jsonlog", "pipeline refused records for good; they are dropped",
                    "receiver=%s error=\"%s\"", r->id, e.msg);
        ot_counter_add(r->tel.refused, items);
    } else
        ot_counter_add(r->tel.records, items);
    if (f && off > f->acked_off)
        f->acked_off = off;
    r->pending = NULL;
    r->pending_file = NULL;
    r->fails = 0;
    r->ck_dirty = true;
    return 0;
}

ot_batch *jlr_batch(ot_buf *out, size_t items, const char *res, size_t res_len)
{
    size_t recs = out->len, rl_res = res_len ? 1 + ot_varint_size(res_len) + res_len : 0;
    size_t rl = rl_res + 1 + ot_varint_size(recs) + recs;
    size_t total = 1 + ot_varint_size(rl) + rl;
    ot_arena *a = ot_arena_new(total + 64);
    char *w = a ? ot_arena_alloc(a, total) : NULL;
    out->len = 0;
    if (!w) {
        ot_arena_free(a);
        return NULL;
    }
    char *p = w;
    *p++ = pbw_tag(1, PBW_LEN);
    p = pbw_putv(p, rl);
    if (rl_res) {
        *p++ = pbw_tag(1, PBW_LEN);
        p = pbw_putv(p, res_len);
        memcpy(p, res, res_len);
        p += res_len;
    }
    *p++ = pbw_tag(2, PBW_LEN);
    p = pbw_putv(p, recs);
    memcpy(p, out->data, recs);
    return ot_batch_adopt_wire(OT_LOGS, a, (const uint8_t *)w, total, items);
}

int jlr_flush(jlr *r, jlr_file *f)
{
    if (!r->out.len)
        return 0;
    ot_batch *b = jlr_batch(&r->out, r->out_items, f ? f->res : NULL, f ? f->res_len : 0);
    r->out_items = 0;
    if (!b)
        return -1;
    return offer(r, b, f, f ? f->safe_off : 0);
}

/* ---- the tailer thread ---------------------------------------------------- */

/* Sleeps up to ns; shutdown wakes it, and so (with files) does a write to
 * any open file, through inotify, so lines leave soon after they are
 * written without polling faster. */
static void wait_ns(jlr *r, int64_t ns, bool files)
{
    struct pollfd p[2] = {{.fd = r->wake_fd, .events = POLLIN},
                          {.fd = files ? r->ino_fd : -1, .events = POLLIN}};
    int ms = (int)((ns + 999999) / 1000000);
    if (atomic_load(&r->stop) || poll(p, 2, ms) <= 0)
        return;
    if (p[1].revents & POLLIN) {
        char ev[4096];
        while (read(r->ino_fd, ev, sizeof ev) > 0)
            ;
    }
}

static void save(jlr *r)
{
    ot_err err = {{0}};
    if (jlr_ckpt_save(r, &err) < 0) {
        static _Atomic int64_t last;
        if (ot_log_ratelimit(&last, 60000000000LL))
            ot_warn("jsonlog", "checkpoint not saved", "receiver=%s error=\"%s\"", r->id, err.msg);
    } else
        r->ck_dirty = false;
}

static void *run(void *arg)
{
    jlr *r = arg;
    int64_t next_poll = 0;
    while (!atomic_load(&r->stop)) {
        int64_t now = ot_now_ns();
        bool blocked = false;
        if (r->pending) {
            ot_batch *b = r->pending;
            r->pending = NULL;
            /* our reference goes to the pipeline, or back into pending */
            blocked = offer(r, b, r->pending_file, r->pending_off) < 0;
        }
        int progress = 0;
        if (!blocked) {
            if (now >= next_poll) {
                jlr_poll(r);
                next_poll = now + r->c->poll_interval;
            }
            for (size_t i = 0; i < r->n_files && !blocked; i++) {
                int rc = jlr_read_file(r, r->files[i]);
                if (rc < 0)
                    blocked = true;
                else
                    progress |= rc;
            }
            if (!blocked)
                jlr_reap(r);
        }
        int64_t lag = 0;
        for (size_t i = 0; i < r->n_files; i++)
            lag += r->files[i]->off - r->files[i]->acked_off;
        ot_gauge_set(r->tel.ckpt_lag, lag);
        /* after every pass that moved an accepted offset: a kill -9 then
         * repeats at most the batches of one pass */
        if (r->ck_dirty)
            save(r);
        if (blocked) {
            r->fails++;
            int64_t d = 10000000LL << (r->fails < 7 ? r->fails : 7);
            wait_ns(r, d > 1000000000LL ? 1000000000LL : d, false);
        } else if (!progress) {
            int64_t d = next_poll - ot_now_ns();
            if (d > 0)
                wait_ns(r, d, true);
        }
    }
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

static ot_counter *cnt(const char *id, const char *name, const char *help, const char *extra)
{
    char labels[400], full[128];
    snprintf(labels, sizeof labels, "receiver=\"%s\"%s", id, extra ? extra : "");
    snprintf(full, sizeof full, "otelite_jsonlog_%s_total", name);
    return ot_tel_counter(full, help, labels);
}

static void jlr_destroy(void *self);

static void *jlr_create(const ot_create_params *p, ot_err *err)
{
    jlr *r = calloc(1, sizeof *r);
    if (!r) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    r->ino_fd = r->wake_fd = -1;
    r->c = p->config;
    r->next = p->next[OT_LOGS];
    r->host = p->host;
    r->arena = ot_arena_new(0);
    r->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC); /* -1: polling only */
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->wake_fd < 0) {
        ot_err_set(err, "eventfd: %s", strerror(errno));
        goto fail;
    }
    r->first_poll = true;
    if (!r->arena || !(r->id = ot_arena_strdup(r->arena, p->id))) {
        ot_err_set(err, "out of memory");
        goto fail;
    }
    const jlr_cfg *c = r->c;
    r->map.ts_field = c->timestamp.field && *c->timestamp.field ? c->timestamp.field : NULL;
    parse_layout(c->timestamp.layout, &r->map.ts_layout);
    r->map.ts_pattern = c->timestamp.layout;
    r->map.sev_field = c->severity.field && *c->severity.field ? c->severity.field : NULL;
    r->map.body_field = c->body.field && *c->body.field ? c->body.field : NULL;
    jl_sevmap_ent *sm;
    if (jl_sevmap_build(c->severity.mapping, r->arena, &sm, &r->map.n_sevmap, err) < 0)
        goto fail;
    r->map.sevmap = sm;
    r->rcap = c->max_log_size + 1 > (256u << 10) ? c->max_log_size + 1 : (256u << 10);
    r->rbuf = malloc(r->rcap);
    if (!r->rbuf) {
        ot_err_set(err, "out of memory");
        goto fail;
    }
    snprintf(r->ck_name, sizeof r->ck_name, "jsonlog_%s.ckpt", p->id);
    for (char *q = r->ck_name; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
              *q == '.' || *q == '_' || *q == '-'))
            *q = '_';
    char labels[300];
    snprintf(labels, sizeof labels, "receiver=\"%s\"", p->id);
    r->tel.files_open = ot_tel_gauge("otelite_jsonlog_files_open", "Files a jsonlog receiver holds open.", labels);
    r->tel.ckpt_lag = ot_tel_gauge("otelite_jsonlog_checkpoint_lag_bytes",
                                   "Bytes read but not yet accepted by the pipeline (not checkpointed).", labels);
    r->tel.lines = cnt(p->id, "lines_read", "Lines read from files and connections.", NULL);
    r->tel.bytes = cnt(p->id, "bytes_read", "Bytes read from files and connections.", NULL);
    r->tel.records = cnt(p->id, "records_accepted", "Log records the pipeline accepted.", NULL);
    r->tel.refused = cnt(p->id, "records_refused", "Log records the pipeline refused (retried when retryable).", NULL);
    r->tel.parse_errors = cnt(p->id, "parse_errors", "Lines kept as text because they did not parse.", NULL);
    r->tel.truncated = cnt(p->id, "truncated_lines", "Lines cut at max_log_size.", NULL);
    r->tel.rot_rename = cnt(p->id, "rotations", "Rotations seen, by kind.", ",kind=\"rename\"");
    r->tel.rot_truncate = cnt(p->id, "rotations", "Rotations seen, by kind.", ",kind=\"copytruncate\"");
    r->tel.rot_delete = cnt(p->id, "rotations", "Rotations seen, by kind.", ",kind=\"delete\"");
    return r;
fail:
    jlr_destroy(r);
    return NULL;
}

static int jlr_start(void *self, ot_err *err)
{
    jlr *r = self;
    if (r->c->storage && *r->c->storage) {
        if (ot_host_storage_dir(r->host, r->c->storage, &r->ck_dir, &r->ck_sync, err) < 0)
            return -1;
        if (jlr_ckpt_load(r, err) < 0) {
            ot_warn("jsonlog", "checkpoint unreadable; starting per start_at",
                    "receiver=%s error=\"%s\"", r->id, err->msg);
            err->msg[0] = 0;
        }
    }
    if (!r->next)
        return 0;
    if (r->c->endpoint.text && jlr_tcp_start(r, err) < 0)
        return -1;
    if (pthread_create(&r->th, NULL, run, r) != 0) {
        jlr_tcp_stop(r);
        return ot_err_set(err, "cannot start the tailer thread");
    }
    r->started = true;
    return 0;
}

static void jlr_shutdown(void *self, int64_t deadline_ns)
{
    jlr *r = self;
    if (!r->started)
        return;
    atomic_store(&r->stop, true);
    uint64_t one = 1;
    if (write(r->wake_fd, &one, sizeof one) < 0)
        ot_debug("jsonlog", "wake write failed", "receiver=%s", r->id);
    pthread_join(r->th, NULL);
    r->started = false;
    jlr_tcp_stop(r);
    if (r->pending) {
        /* not accepted: its lines are after the checkpoint and are read again */
        ot_batch_unref(r->pending);
        r->pending = NULL;
    }
    save(r);
}

static void jlr_destroy(void *self)
{
    jlr *r = self;
    if (!r)
        return;
    jlr_shutdown(r, 0);
    for (size_t i = 0; i < r->n_files; i++)
        jlr_file_close(r, r->files[i]);
    free(r->files);
    for (size_t i = 0; i < r->n_known; i++)
        free(r->known[i].fp);
    free(r->known);
    free(r->rbuf);
    jl_enc_free(&r->enc);
    ot_buf_free(&r->out);
    ot_buf_free(&r->dtmp);
    ot_buf_free(&r->dscratch);
    if (r->ino_fd >= 0)
        close(r->ino_fd);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    ot_arena_free(r->arena);
    free(r);
}

const ot_factory ot_jsonlog_receiver = {
    .type = "jsonlog",
    .kind = OT_RECEIVER,
    .signals = OT_SIGBIT(OT_LOGS),
    .help = "tails JSON, Docker and CRI log files (rotation, checkpoints, Kubernetes attributes)",
    .keys = jlr_keys,
    .config_size = sizeof(jlr_cfg),
    .validate = jlr_validate,
    .listens = jlr_listens,
    .create = jlr_create,
    .start = jlr_start,
    .shutdown = jlr_shutdown,
    .destroy = jlr_destroy,
};
