/* segment_log_int.h: what the files of the segment log share, and nothing
 * else includes: the record layout's constants, the in-memory index of
 * segments and records, and the segment operations that the queue API
 * (segment_log.c) and opening with recovery (segment_open.c) are both
 * built on (segment_file.c). */
#ifndef OT_SEGMENT_LOG_INT_H
#define OT_SEGMENT_LOG_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "export/segment_log.h"
#include "telemetry/telemetry.h"

#define MAGIC 0x4c53544fu /* "OTSL" little-endian */
#define HDR 28
#define T_DATA 1
#define T_ACK 2
#define MAX_PAYLOAD (512u << 20)
/* A gap of ids inside one segment larger than this is not from skipped
 * corrupt records but from a bad header that happened to pass its CRC. */
#define MAX_ID_GAP 65536

enum { R_ABSENT = 0, R_PENDING, R_INFLIGHT, R_DONE };

typedef struct rec {
    uint32_t off, len, items;
    uint8_t signal, state;
} rec;

typedef struct seg {
    uint64_t seq;
    uint64_t first_id; /* id of r[0] */
    rec *r;
    size_t n, cap;
    size_t live; /* PENDING + INFLIGHT */
    size_t scan; /* no PENDING record before this index */
    uint64_t size;
    int fd;
    bool dirty; /* written since the last sync */
} seg;

struct ot_segment_log {
    pthread_mutex_t mu;
    ot_segment_log_opts o;
    char *path;
    char *name;
    int dirfd, lockfd;
    seg *segs; /* oldest first; the last is the head, appended to */
    size_t nsegs, capsegs;
    size_t rd; /* no PENDING record in segments before this index */
    uint64_t next_id, next_seq;
    uint64_t bytes;
    size_t live, pending;
    uint64_t corrupt, dropped, dropped_items;
    int64_t last_sync;
    ot_counter *tel_corrupt, *tel_dropped;
    ot_gauge *tel_bytes;
};

/* ---- small helpers (inline: every record header goes through them) ----- */

static inline void seglog_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t seglog_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t seglog_get64(const uint8_t *p)
{
    return (uint64_t)seglog_get32(p) | (uint64_t)seglog_get32(p + 4) << 32;
}

static inline seg *seglog_head(ot_segment_log *l)
{
    return &l->segs[l->nsegs - 1];
}

static inline void seglog_publish_bytes(ot_segment_log *l)
{
    ot_gauge_set(l->tel_bytes, (int64_t)l->bytes);
}

/* ---- segment_file.c ----------------------------------------------------- */

uint32_t seglog_rec_crc(const uint8_t *hdr, const void *payload, size_t len);
void seglog_fill_hdr(uint8_t *h, int type, ot_signal s, uint32_t len, uint64_t id, uint32_t items,
                     const void *payload);
void seglog_seg_name(char *out, size_t cap, uint64_t seq);
/* Writes every byte of iov at off; on failure the caller truncates. */
int seglog_pwritev_all(int fd, struct iovec *iov, int n, uint64_t off);
seg *seglog_push_seg(ot_segment_log *l);
bool seglog_seg_reserve(seg *s, size_t i);
rec *seglog_seg_slot(seg *s, size_t i);
int seglog_sync_seg(ot_segment_log *l, seg *s);
/* Starts a new, empty head segment file. */
int seglog_new_head(ot_segment_log *l, ot_err *err);
void seglog_remove_seg(ot_segment_log *l, size_t i);
/* Deletes the fully acknowledged segments at the old end (never the head). */
void seglog_trim_prefix(ot_segment_log *l);
/* The record of id, and the index of its segment; false when not there. */
bool seglog_find(ot_segment_log *l, uint64_t id, size_t *si, rec **r);
/* Record r of segment s is acknowledged (or dropped). */
void seglog_finish(ot_segment_log *l, seg *s, rec *r);

#endif
