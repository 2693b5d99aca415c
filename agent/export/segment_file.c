/* segment_file.c: the persistent queue's on-disk layout (see segment_log.h):
 * records, segment files, and the index of them kept in memory.
 *
 * Layout: <dir>/lock (flock), <dir>/<seq as 16 hex digits>.seg. A segment is
 * a sequence of records, each
 *
 *   magic u32 | crc u32 | type u8 | signal u8 | 0 u16 | len u32 | id u64 |
 *   items u32 | payload[len]
 *
 * little-endian, crc = CRC32 (zlib) of everything after the crc field. Type
 * DATA carries a batch; type ACK (len 0) says record `id` is done. An ack is
 * always written after the record it names, so it lives in the same or a
 * newer segment; segments are deleted oldest first only, so deleting one
 * never loses an ack that a surviving segment needs.
 *
 * Each open starts a new head segment: a file left by a crash is never
 * appended to, so its damaged tail cannot hide new records.
 *
 * Apart from the queue API (segment_log.c) and from opening (segment_open.c):
 * both are built on these operations. */
#include "export/segment_log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/log.h"

/* ---- small helpers ----------------------------------------------------- */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t seglog_rec_crc(const uint8_t *hdr, const void *payload, size_t len)
{
    uLong c = crc32(0L, hdr + 8, HDR - 8);
    if (len)
        c = crc32(c, payload, (uInt)len);
    return (uint32_t)c;
}

void seglog_fill_hdr(uint8_t *h, int type, ot_signal s, uint32_t len, uint64_t id, uint32_t items,
                     const void *payload)
{
    seglog_put32(h, MAGIC);
    h[8] = (uint8_t)type;
    h[9] = (uint8_t)s;
    h[10] = h[11] = 0;
    seglog_put32(h + 12, len);
    put64(h + 16, id);
    seglog_put32(h + 24, items);
    seglog_put32(h + 4, seglog_rec_crc(h, payload, len));
}

void seglog_seg_name(char *out, size_t cap, uint64_t seq)
{
    snprintf(out, cap, "%016" PRIx64 ".seg", seq);
}

int seglog_pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (uint64_t)w;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void sync_dir(ot_segment_log *l)
{
    if (l->o.fsync != OT_FSYNC_NEVER)
        fsync(l->dirfd);
}

/* ---- segments ---------------------------------------------------------- */

seg *seglog_push_seg(ot_segment_log *l)
{
    if (l->nsegs == l->capsegs) {
        size_t nc = l->capsegs ? l->capsegs * 2 : 8;
        seg *ns = realloc(l->segs, nc * sizeof *ns);
        if (!ns)
            return NULL;
        l->segs = ns;
        l->capsegs = nc;
    }
    seg *s = &l->segs[l->nsegs++];
    memset(s, 0, sizeof *s);
    s->fd = -1;
    return s;
}

bool seglog_seg_reserve(seg *s, size_t i)
{
    if (i < s->cap)
        return true;
    size_t nc = s->cap ? s->cap * 2 : 64;
    while (nc <= i)
        nc *= 2;
    rec *nr = realloc(s->r, nc * sizeof *nr);
    if (!nr)
        return false;
    s->r = nr;
    s->cap = nc;
    return true;
}

/* The slot of index i, gaps before it filled with ABSENT. */
rec *seglog_seg_slot(seg *s, size_t i)
{
    if (!seglog_seg_reserve(s, i))
        return NULL;
    if (i >= s->n) {
        memset(&s->r[s->n], 0, (i + 1 - s->n) * sizeof *s->r);
        s->n = i + 1;
    }
    return &s->r[i];
}

/* Only the head changes while open, so a dirty old segment means the head
 * moved on before the policy synced it. */
int seglog_sync_seg(ot_segment_log *l, seg *s)
{
    if (!s->dirty || l->o.fsync == OT_FSYNC_NEVER)
        return 0;
    if (fdatasync(s->fd) < 0)
        return -1;
    s->dirty = false;
    return 0;
}

int seglog_new_head(ot_segment_log *l, ot_err *err)
{
    if (l->nsegs && seglog_sync_seg(l, seglog_head(l)) < 0)
        return ot_err_set(err, "%s: fsync: %s", l->path, strerror(errno));
    char name[32];
    uint64_t seq = l->next_seq;
    seglog_seg_name(name, sizeof name, seq);
    int fd = openat(l->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return ot_err_set(err, "%s/%s: %s", l->path, name, strerror(errno));
    seg *s = seglog_push_seg(l);
    if (!s) {
        close(fd);
        unlinkat(l->dirfd, name, 0);
        return ot_err_set(err, "out of memory");
    }
    l->next_seq++;
    s->seq = seq;
    s->fd = fd;
    s->first_id = l->next_id;
    sync_dir(l);
    return 0;
}

void seglog_remove_seg(ot_segment_log *l, size_t i)
{
    seg *s = &l->segs[i];
    char name[32];
    seglog_seg_name(name, sizeof name, s->seq);
    if (unlinkat(l->dirfd, name, 0) < 0 && errno != ENOENT)
        ot_warn("segment_log", "cannot delete segment", "path=%s/%s error=\"%s\"", l->path, name,
                strerror(errno));
    if (s->fd >= 0)
        close(s->fd);
    l->bytes -= s->size;
    free(s->r);
    memmove(&l->segs[i], &l->segs[i + 1], (l->nsegs - i - 1) * sizeof *s);
    l->nsegs--;
    if (l->rd > i)
        l->rd--;
}

void seglog_trim_prefix(ot_segment_log *l)
{
    bool any = false;
    while (l->nsegs > 1 && l->segs[0].live == 0) {
        seglog_remove_seg(l, 0);
        any = true;
    }
    if (any)
        seglog_publish_bytes(l);
}

bool seglog_find(ot_segment_log *l, uint64_t id, size_t *si, rec **r)
{
    for (size_t i = l->nsegs; i-- > 0;) {
        seg *s = &l->segs[i];
        if (s->n == 0 || id < s->first_id)
            continue;
        if (id - s->first_id >= s->n)
            return false;
        *si = i;
        *r = &s->r[id - s->first_id];
        return (*r)->state != R_ABSENT;
    }
    return false;
}

void seglog_finish(ot_segment_log *l, seg *s, rec *r)
{
    if (r->state == R_PENDING)
        l->pending--;
    r->state = R_DONE;
    s->live--;
    l->live--;
}
