/* segment_log.c: the persistent queue's API (see segment_log.h): its config
 * keys, append (with the storage_limit policy and the fsync policy), take
 * the next pending record, read a payload, acknowledge, sync, stats. The
 * on-disk layout is segment_file.c; opening and recovery segment_open.c. */
#include "export/segment_log_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h" /* ot_now_ns */
#include "base/log.h"

/* ---- config ------------------------------------------------------------ */

static const char *const fsync_choices[] = {"batch", "interval", "never", NULL};
static const char *const on_full_choices[] = {"refuse", "drop_oldest", NULL};

const ot_key ot_segment_log_keys[] = {
    {.name = "directory", .type = OT_KT_STRING,
     .offset = offsetof(ot_segment_log_opts, directory),
     .help = "existing directory for the persistent queues (one subdirectory per exporter)",
     .flags = OT_KF_REQUIRED},
    {.name = "fsync", .type = OT_KT_ENUM, .offset = offsetof(ot_segment_log_opts, fsync),
     .def = "interval", .help = "when appended batches are fsynced: batch (each), interval, never",
     .choices = fsync_choices},
    {.name = "fsync_interval", .type = OT_KT_DURATION,
     .offset = offsetof(ot_segment_log_opts, fsync_interval), .def = "1s",
     .help = "fsync: interval, the longest an append stays unsynced while appends continue",
     .min = 1e6, .max = 3600e9},
    {.name = "storage_limit", .type = OT_KT_SIZE,
     .offset = offsetof(ot_segment_log_opts, storage_limit), .def = "256MiB",
     .help = "disk quota of each exporter's queue; 0 = none", .min = 0, .max = 1099511627776.0},
    {.name = "on_full", .type = OT_KT_ENUM, .offset = offsetof(ot_segment_log_opts, on_full),
     .def = "refuse",
     .help = "at storage_limit: refuse (push back to senders) or drop_oldest (counted)",
     .choices = on_full_choices},
    {0},
};

void ot_segment_log_opts_default(ot_segment_log_opts *o)
{
    memset(o, 0, sizeof *o);
    o->fsync = OT_FSYNC_INTERVAL;
    o->fsync_interval = 1000000000;
    o->storage_limit = 256ull << 20;
    o->on_full = OT_ON_FULL_REFUSE;
}

/* ---- append ------------------------------------------------------------ */

/* Frees space by deleting the oldest segment; false when nothing can go. */
static bool drop_oldest(ot_segment_log *l, ot_err *err)
{
    if (l->nsegs == 1) {
        if (seglog_head(l)->size == 0 || seglog_new_head(l, err) < 0)
            return false;
    }
    seg *s = &l->segs[0];
    size_t n = 0, items = 0;
    for (size_t i = 0; i < s->n; i++) {
        rec *r = &s->r[i];
        /* A batch in flight may still be delivered: it leaves the log but
         * is not counted as dropped. */
        if (r->state == R_PENDING) {
            n++;
            items += r->items;
        }
        if (r->state == R_PENDING || r->state == R_INFLIGHT)
            seglog_finish(l, s, r);
    }
    l->dropped += n;
    l->dropped_items += items;
    ot_counter_add(l->tel_dropped, n);
    ot_warn("segment_log", "storage_limit reached; dropped the oldest queued batches",
            "path=%s batches=%zu items=%zu", l->path, n, items);
    seglog_remove_seg(l, 0);
    seglog_trim_prefix(l);
    return true;
}

ot_segment_log_rc ot_segment_log_append(ot_segment_log *l, ot_signal s, size_t items,
                                        const void *buf, size_t len, uint64_t *id, ot_err *err)
{
    uint64_t need = HDR + (uint64_t)len;
    if (len > MAX_PAYLOAD || (l->o.storage_limit && need > l->o.storage_limit)) {
        ot_err_set(err, "batch of %zu bytes is larger than the storage limit", len);
        return OT_SEGLOG_TOO_BIG;
    }
    pthread_mutex_lock(&l->mu);
    ot_segment_log_rc rc = OT_SEGLOG_OK;
    while (l->o.storage_limit && l->bytes + need > l->o.storage_limit) {
        /* A head holding only acks and acked records can go once it is not
         * the head any more. */
        if (seglog_head(l)->live == 0 && seglog_head(l)->size > 0 && l->segs[0].live == 0) {
            if (seglog_new_head(l, err) < 0) {
                rc = OT_SEGLOG_ERROR;
                goto out;
            }
            seglog_trim_prefix(l);
            continue;
        }
        if (l->o.on_full != OT_ON_FULL_DROP_OLDEST || !drop_oldest(l, err)) {
            ot_err_set(err, "persistent queue is full (storage_limit %" PRIu64 " bytes)",
                       l->o.storage_limit);
            rc = OT_SEGLOG_FULL;
            goto out;
        }
    }
    seg *h = seglog_head(l);
    if (h->size > 0 && h->size + need > l->o.segment_size) {
        if (seglog_new_head(l, err) < 0) {
            rc = OT_SEGLOG_ERROR;
            goto out;
        }
        seglog_trim_prefix(l);
        h = seglog_head(l);
    }
    if (h->size > UINT32_MAX) { /* offsets are 32-bit; a new file is cheap */
        if (seglog_new_head(l, err) < 0) {
            rc = OT_SEGLOG_ERROR;
            goto out;
        }
        h = seglog_head(l);
    }
    uint64_t rid = l->next_id;
    if (!seglog_seg_reserve(h, (size_t)(rid - h->first_id))) {
        ot_err_set(err, "out of memory");
        rc = OT_SEGLOG_ERROR;
        goto out;
    }
    uint8_t hdr[HDR];
    uint32_t it = items > UINT32_MAX ? UINT32_MAX : (uint32_t)items;
    seglog_fill_hdr(hdr, T_DATA, s, (uint32_t)len, rid, it, buf);
    struct iovec iov[2] = {{hdr, HDR}, {(void *)buf, len}};
    if (seglog_pwritev_all(h->fd, iov, len ? 2 : 1, h->size) < 0) {
        ot_err_set(err, "%s: write: %s", l->path, strerror(errno));
        if (ftruncate(h->fd, (off_t)h->size) < 0) {
            /* The partial record stays; the next open skips it as torn. */
        }
        rc = OT_SEGLOG_ERROR;
        goto out;
    }
    rec *r = seglog_seg_slot(h, (size_t)(rid - h->first_id)); /* reserved: cannot fail */
    r->off = (uint32_t)h->size;
    r->len = (uint32_t)len;
    r->items = it;
    r->signal = (uint8_t)s;
    r->state = R_PENDING;
    h->live++;
    h->size += need;
    h->dirty = true;
    l->bytes += need;
    l->live++;
    l->pending++;
    l->next_id++;
    *id = rid;
    if (l->o.fsync == OT_FSYNC_BATCH ||
        (l->o.fsync == OT_FSYNC_INTERVAL && ot_now_ns() - l->last_sync >= l->o.fsync_interval)) {
        if (seglog_sync_seg(l, h) < 0)
            ot_warn("segment_log", "fsync failed", "path=%s error=\"%s\"", l->path,
                    strerror(errno));
        l->last_sync = ot_now_ns();
    }
    seglog_publish_bytes(l);
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---- read and ack ------------------------------------------------------ */

int ot_segment_log_next(ot_segment_log *l, ot_segment_log_rec *out)
{
    pthread_mutex_lock(&l->mu);
    int got = 0;
    for (; l->pending && l->rd < l->nsegs; l->rd++) {
        seg *s = &l->segs[l->rd];
        for (; s->scan < s->n; s->scan++) {
            rec *r = &s->r[s->scan];
            if (r->state != R_PENDING)
                continue;
            r->state = R_INFLIGHT;
            l->pending--;
            out->id = s->first_id + s->scan;
            out->signal = (ot_signal)r->signal;
            out->items = r->items;
            out->len = r->len;
            s->scan++;
            got = 1;
            goto out;
        }
    }
    /* Appends land in the head: keep the cursor there. */
    if (l->rd >= l->nsegs)
        l->rd = l->nsegs - 1;
out:
    pthread_mutex_unlock(&l->mu);
    return got;
}

int ot_segment_log_read(ot_segment_log *l, uint64_t id, void *buf, size_t cap, ot_err *err)
{
    pthread_mutex_lock(&l->mu);
    size_t si;
    rec *r;
    int rc = -1;
    if (!seglog_find(l, id, &si, &r) || r->state == R_DONE) {
        ot_err_set(err, "record %" PRIu64 " is no longer queued", id);
        rc = 1;
        goto out;
    }
    if (cap < r->len) {
        ot_err_set(err, "record %" PRIu64 " needs %u bytes", id, r->len);
        goto out;
    }
    uint8_t hdr[HDR];
    int fd = l->segs[si].fd;
    errno = 0;
    if (pread(fd, hdr, HDR, r->off) != HDR ||
        (r->len && pread(fd, buf, r->len, (off_t)r->off + HDR) != (ssize_t)r->len)) {
        ot_err_set(err, "%s: read of record %" PRIu64 " failed: %s", l->path, id,
                   errno ? strerror(errno) : "short read");
        goto out;
    }
    if (seglog_get32(hdr) != MAGIC || seglog_get64(hdr + 16) != id || seglog_get32(hdr + 12) != r->len ||
        seglog_rec_crc(hdr, buf, r->len) != seglog_get32(hdr + 4)) {
        l->corrupt++;
        ot_counter_add(l->tel_corrupt, 1);
        ot_err_set(err, "%s: record %" PRIu64 " is corrupt on disk (checksum mismatch)", l->path,
                   id);
        goto out;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int ot_segment_log_ack(ot_segment_log *l, uint64_t id, ot_err *err)
{
    pthread_mutex_lock(&l->mu);
    size_t si;
    rec *r;
    int rc = 0;
    if (!seglog_find(l, id, &si, &r) || r->state == R_DONE)
        goto out;
    seg *s = &l->segs[si];
    seglog_finish(l, s, r);
    if (si == 0 && s->live == 0 && l->nsegs > 1) {
        /* The whole segment goes: no ack record needed. */
        seglog_trim_prefix(l);
        goto out;
    }
    seg *h = seglog_head(l);
    if (h->size >= l->o.segment_size) {
        if (seglog_new_head(l, err) < 0) {
            rc = -1;
            goto out;
        }
        seglog_trim_prefix(l);
        h = seglog_head(l);
    }
    /* Acks ignore storage_limit: refusing them would keep the queue full. */
    uint8_t hdr[HDR];
    seglog_fill_hdr(hdr, T_ACK, 0, 0, id, 0, NULL);
    struct iovec iov = {hdr, HDR};
    if (seglog_pwritev_all(h->fd, &iov, 1, h->size) < 0) {
        rc = ot_err_set(err, "%s: write: %s", l->path, strerror(errno));
        if (ftruncate(h->fd, (off_t)h->size) < 0) {
            /* Left as a torn tail; the next open skips it. */
        }
        goto out;
    }
    h->size += HDR;
    h->dirty = true;
    l->bytes += HDR;
    seglog_publish_bytes(l);
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int ot_segment_log_sync(ot_segment_log *l, ot_err *err)
{
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    for (size_t i = 0; i < l->nsegs; i++) {
        seg *s = &l->segs[i];
        if (s->dirty && fdatasync(s->fd) < 0) {
            rc = ot_err_set(err, "%s: fsync: %s", l->path, strerror(errno));
            break;
        }
        s->dirty = false;
    }
    l->last_sync = ot_now_ns();
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void ot_segment_log_stats_get(ot_segment_log *l, ot_segment_log_stats *st)
{
    pthread_mutex_lock(&l->mu);
    st->live = l->live;
    st->pending = l->pending;
    st->bytes = l->bytes;
    st->segments = l->nsegs;
    st->corrupt_records = l->corrupt;
    st->dropped_records = l->dropped;
    st->dropped_items = l->dropped_items;
    pthread_mutex_unlock(&l->mu);
}
