/* segment_log.h: the persistent queue of an exporter, on disk. Batches that
 * the agent acknowledged to a client are written here before the client
 * hears OK, and leave only after the backend acknowledged them, so a restart
 * or a kill -9 loses nothing that was accepted.
 *
 * An append-only log in one directory, split into segment files. Every
 * record carries a CRC32: a torn or scribbled record is found when the log
 * is opened, counted, logged and skipped; the records around it are kept.
 * Acknowledgements are small records appended to the same log; a segment
 * file is deleted once every record in it (and in every older segment) is
 * acknowledged. Records come back in append order, oldest first, so what was
 * left by the last run is sent before anything new.
 *
 * Memory: 16 bytes of index per record that is on disk.
 * Thread-safe: one mutex; appends, reads and acks may come from any thread.
 * One process at a time: the directory is locked (flock) while open. */
#ifndef OT_SEGMENT_LOG_H
#define OT_SEGMENT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "base/err.h"
#include "model/otlp.h"

typedef enum ot_segment_log_fsync {
    OT_FSYNC_BATCH = 0, /* fdatasync after every append: survives power loss */
    OT_FSYNC_INTERVAL,  /* at most every fsync_interval, checked on append */
    OT_FSYNC_NEVER,     /* the kernel decides; survives kill -9, not power loss */
} ot_segment_log_fsync;

typedef enum ot_segment_log_on_full {
    OT_ON_FULL_REFUSE = 0,  /* append says FULL: the exporter pushes back */
    OT_ON_FULL_DROP_OLDEST, /* delete the oldest segment (its records counted) */
} ot_segment_log_on_full;

/* Laid out for ot_segment_log_keys, so the file_storage extension can use
 * it as its whole config struct. */
typedef struct ot_segment_log_opts {
    const char *directory;  /* where logs live; must exist */
    int fsync;              /* ot_segment_log_fsync */
    int64_t fsync_interval; /* ns */
    uint64_t storage_limit; /* bytes per log; 0 = no limit */
    int on_full;            /* ot_segment_log_on_full */
    uint64_t segment_size;  /* 0: storage_limit/16 within [1MiB, 16MiB] */
} ot_segment_log_opts;

/* directory (required), fsync, fsync_interval, storage_limit, on_full. */
extern const ot_key ot_segment_log_keys[];
/* The defaults the key table writes, for code that builds options itself. */
void ot_segment_log_opts_default(ot_segment_log_opts *o);

typedef struct ot_segment_log ot_segment_log;

/* Opens (creating it when missing) the log `<o->directory>/<name>`; bytes of
 * name other than [A-Za-z0-9._-] become '_' ("otlp/backup" → "otlp_backup").
 * Scans what a previous run left: records not acknowledged become pending
 * again. NULL with err set when the directory cannot be used or is locked by
 * another process. Corrupt records do not fail the open. */
ot_segment_log *ot_segment_log_open(const ot_segment_log_opts *o, const char *name, ot_err *err);
/* Syncs and closes; unacknowledged records stay for the next open. */
void ot_segment_log_close(ot_segment_log *l);

typedef enum ot_segment_log_rc {
    OT_SEGLOG_ERROR = -1,  /* I/O error, err says which */
    OT_SEGLOG_OK = 0,
    OT_SEGLOG_FULL = 1,    /* storage_limit reached (refuse): try again later */
    OT_SEGLOG_TOO_BIG = 2, /* the record alone exceeds storage_limit: never fits */
} ot_segment_log_rc;

/* Writes one batch's protobuf bytes; *id is its record id (ids only grow).
 * Durable against kill -9 when it returns OK; against power loss as the
 * fsync policy says. */
ot_segment_log_rc ot_segment_log_append(ot_segment_log *l, ot_signal s, size_t items,
                                        const void *buf, size_t len, uint64_t *id, ot_err *err);

typedef struct ot_segment_log_rec {
    uint64_t id;
    ot_signal signal;
    size_t items;
    size_t len; /* payload bytes */
} ot_segment_log_rec;

/* Takes the oldest pending record (it is in flight until acked): 1 with *out
 * filled, 0 when nothing is pending. Never blocks on I/O. */
int ot_segment_log_next(ot_segment_log *l, ot_segment_log_rec *out);
/* Reads the payload of a record (pending or in flight) into buf (at least
 * rec.len bytes) and checks its CRC again. 0 when read; 1 when the record
 * is gone (dropped by on_full, already counted there); -1 with err set when
 * it is unreadable or corrupt. */
int ot_segment_log_read(ot_segment_log *l, uint64_t id, void *buf, size_t cap, ot_err *err);
/* The backend has it, or it will never be sent: forget the record. Unknown
 * or already dropped ids are ignored. -1 only when the ack could not be
 * written (the record will then come back on the next open). */
int ot_segment_log_ack(ot_segment_log *l, uint64_t id, ot_err *err);
/* Syncs now, whatever the policy. */
int ot_segment_log_sync(ot_segment_log *l, ot_err *err);

typedef struct ot_segment_log_stats {
    size_t live;              /* records not acked: pending + in flight */
    size_t pending;           /* of which not yet taken by next() */
    uint64_t bytes;           /* on disk, all segments */
    size_t segments;          /* files */
    uint64_t corrupt_records; /* corrupt regions skipped since open */
    uint64_t dropped_records; /* dropped by on_full: drop_oldest */
    uint64_t dropped_items;
} ot_segment_log_stats;

void ot_segment_log_stats_get(ot_segment_log *l, ot_segment_log_stats *st);

#endif
