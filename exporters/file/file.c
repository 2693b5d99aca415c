/* file.c: the `file` exporter. Writes every batch as one line of OTLP JSON
 * to a file or stdout; what tests and people debugging a pipeline read.
 * Writes happen on the caller's thread under one lock: a line is never
 * split, and a batch is on disk (flushed) when consume returns OK. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "pipeline/factory.h"
#include "base/log.h"
#include "model/otlp_json.h"
#include "telemetry/telemetry.h"

typedef struct file_rotation {
    bool present;
    int64_t max_megabytes;
    int64_t max_backups;
} file_rotation;

typedef struct file_cfg {
    const char *path;
    bool append;
    int format;
    file_rotation rotation;
} file_cfg;

static const char *const formats[] = {"json", NULL};

static const ot_key rotation_keys[] = {
    {.name = "max_megabytes", .type = OT_KT_INT, .offset = offsetof(file_rotation, max_megabytes),
     .def = "100", .min = 1, .max = 1 << 20, .help = "rotate when the file would grow past this"},
    {.name = "max_backups", .type = OT_KT_INT, .offset = offsetof(file_rotation, max_backups),
     .def = "10", .min = 0, .max = 10000, .help = "rotated files kept (path.1 is the newest)"},
    {0},
};

static const ot_key file_keys[] = {
    {.name = "path", .type = OT_KT_STRING, .offset = offsetof(file_cfg, path),
     .flags = OT_KF_REQUIRED, .help = "file to write, or - for stdout"},
    {.name = "append", .type = OT_KT_BOOL, .offset = offsetof(file_cfg, append), .def = "false",
     .help = "keep what the file holds instead of truncating it at start"},
    {.name = "format", .type = OT_KT_ENUM, .offset = offsetof(file_cfg, format), .def = "json",
     .choices = formats, .help = "one OTLP JSON export request per line"},
    {.name = "rotation", .type = OT_KT_TABLE, .offset = offsetof(file_cfg, rotation),
     .sub = rotation_keys, .flags = OT_KF_PRESENCE, .help = "size-based rotation; off unless set"},
    {0},
};

typedef struct file_exp file_exp;

typedef struct file_consumer {
    ot_consumer base;
    file_exp *fe;
    ot_signal signal;
} file_consumer;

struct file_exp {
    const file_cfg *cfg;
    char *id;
    pthread_mutex_t lock;
    int fd;
    uint64_t size;
    ot_buf line;
    file_consumer cons[OT_SIGNAL_COUNT];
    ot_counter *sent[OT_SIGNAL_COUNT];
    ot_counter *failed[OT_SIGNAL_COUNT];
};

static int open_out(file_exp *fe, bool append, ot_err *err)
{
    if (strcmp(fe->cfg->path, "-") == 0) {
        fe->fd = STDOUT_FILENO;
        return 0;
    }
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_APPEND | (append ? 0 : O_TRUNC);
    fe->fd = open(fe->cfg->path, flags, 0644);
    if (fe->fd < 0)
        return ot_err_set(err, "open %s: %s", fe->cfg->path, strerror(errno));
    struct stat st;
    fe->size = fstat(fe->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    return 0;
}

/* path.N-1 → path.N, …, path → path.1; the oldest beyond max_backups goes. */
static int rotate(file_exp *fe, ot_err *err)
{
    const char *p = fe->cfg->path;
    int64_t keep = fe->cfg->rotation.max_backups;
    char from[4096], to[4096];
    close(fe->fd);
    fe->fd = -1;
    if (keep == 0) {
        unlink(p);
    } else {
        snprintf(to, sizeof to, "%s.%lld", p, (long long)keep);
        unlink(to);
        for (int64_t i = keep - 1; i >= 1; i--) {
            snprintf(from, sizeof from, "%s.%lld", p, (long long)i);
            snprintf(to, sizeof to, "%s.%lld", p, (long long)(i + 1));
            rename(from, to);
        }
        snprintf(to, sizeof to, "%s.1", p);
        rename(p, to);
    }
    return open_out(fe, false, err);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ot_status file_consume(ot_consumer *self, ot_batch *b, ot_err *err)
{
    file_consumer *fc = (file_consumer *)self;
    file_exp *fe = fc->fe;
    ot_status st = OT_OK;
    /* Encode (and, on the fallback road, decode) under the lock too: writes
     * are one at a time anyway, and a decoded batch is several times its
     * wire size, so letting every caller decode at once multiplied peak
     * memory for no throughput. */
    pthread_mutex_lock(&fe->lock);
    ot_buf_reset(&fe->line);
    /* JSON from the protobuf bytes, which a batch mostly has as they came
     * (and packing a decoded one costs less than the struct encoder); the
     * struct encoder for bytes that are not laid out as protobuf-c packs. */
    const uint8_t *wire;
    size_t wire_len;
    int rc = ot_batch_wire(b, &wire, &wire_len, err) < 0
                 ? 1
                 : ot_json_encode_wire(b->signal, wire, wire_len, &fe->line, err);
    if (rc > 0) {
        const ProtobufCMessage *msg = ot_batch_msg(b, err);
        rc = msg ? ot_json_encode(msg, &fe->line, err) : -1;
    }
    if (rc < 0 || ot_buf_putc(&fe->line, '\n') < 0) {
        st = OT_PERMANENT;
        goto out;
    }
    if (fe->cfg->rotation.present && fe->fd >= 0 && fe->fd != STDOUT_FILENO && fe->size > 0 &&
        fe->size + fe->line.len > (uint64_t)fe->cfg->rotation.max_megabytes << 20) {
        if (rotate(fe, err) < 0) {
            st = OT_RETRYABLE;
            goto out;
        }
    }
    if (fe->fd < 0 || write_all(fe->fd, fe->line.data, fe->line.len) < 0) {
        ot_err_set(err, "write %s: %s", fe->cfg->path, fe->fd < 0 ? "not open" : strerror(errno));
        st = OT_RETRYABLE;
        goto out;
    }
    fe->size += fe->line.len;
out:
    /* A long line should not pin its buffer for the life of the exporter. */
    if (fe->line.cap > (1u << 20))
        ot_buf_free(&fe->line);
    pthread_mutex_unlock(&fe->lock);
    ot_counter_add(st == OT_OK ? fe->sent[fc->signal] : fe->failed[fc->signal], b->items);
    ot_batch_unref(b);
    return st;
}

static void *file_create(const ot_create_params *p, ot_err *err)
{
    file_exp *fe = calloc(1, sizeof *fe);
    if (!fe) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    fe->cfg = p->config;
    fe->id = strdup(p->id);
    fe->fd = -1;
    pthread_mutex_init(&fe->lock, NULL);
    for (int s = 0; s < OT_SIGNAL_COUNT; s++) {
        char labels[256], name[128];
        fe->cons[s] = (file_consumer){{file_consume, false}, fe, (ot_signal)s};
        snprintf(labels, sizeof labels, "exporter=\"%s\"", p->id);
        snprintf(name, sizeof name, "otelite_exporter_sent_%s_total", ot_signal_item_name(s));
        fe->sent[s] = ot_tel_counter(name, "Items an exporter delivered.", labels);
        snprintf(name, sizeof name, "otelite_exporter_send_failed_%s_total",
                 ot_signal_item_name(s));
        fe->failed[s] = ot_tel_counter(name, "Items an exporter failed to deliver.", labels);
    }
    return fe;
}

static int file_start(void *self, ot_err *err)
{
    file_exp *fe = self;
    return open_out(fe, fe->cfg->append, err);
}

static void file_shutdown(void *self, int64_t deadline)
{
    file_exp *fe = self;
    pthread_mutex_lock(&fe->lock);
    if (fe->fd > STDERR_FILENO)
        close(fe->fd);
    fe->fd = -1;
    pthread_mutex_unlock(&fe->lock);
}

static void file_destroy(void *self)
{
    file_exp *fe = self;
    ot_buf_free(&fe->line);
    pthread_mutex_destroy(&fe->lock);
    free(fe->id);
    free(fe);
}

static ot_consumer *file_consumer_for(void *self, ot_signal s)
{
    return &((file_exp *)self)->cons[s].base;
}

const ot_factory ot_file_exporter = {
    .type = "file",
    .kind = OT_EXPORTER,
    .signals = OT_SIG_ALL,
    .help = "writes each batch as a line of OTLP JSON to a file or stdout",
    .keys = file_keys,
    .config_size = sizeof(file_cfg),
    .create = file_create,
    .start = file_start,
    .shutdown = file_shutdown,
    .destroy = file_destroy,
    .consumer = file_consumer_for,
};
