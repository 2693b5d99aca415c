/* segment_log.c: the persistent queue's on-disk log (see segment_log.h).
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
 * appended to, so its damaged tail cannot hide new records. */
#include "export/segment_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "base/clock.h" /* ot_now_ns */
#include "base/log.h"
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

/* ---- small helpers ----------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t rec_crc(const uint8_t *hdr, const void *payload, size_t len)
{
    uLong c = crc32(0L, hdr + 8, HDR - 8);
    if (len)
        c = crc32(c, payload, (uInt)len);
    return (uint32_t)c;
}

static void fill_hdr(uint8_t *h, int type, ot_signal s, uint32_t len, uint64_t id, uint32_t items,
                     const void *payload)
{
    put32(h, MAGIC);
    h[8] = (uint8_t)type;
    h[9] = (uint8_t)s;
    h[10] = h[11] = 0;
    put32(h + 12, len);
    put64(h + 16, id);
    put32(h + 24, items);
    put32(h + 4, rec_crc(h, payload, len));
}

static void seg_name(char *out, size_t cap, uint64_t seq)
{
    snprintf(out, cap, "%016" PRIx64 ".seg", seq);
}

/* Writes every byte of iov at off; on failure the caller truncates. */
static int pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
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

static void publish_bytes(ot_segment_log *l)
{
    ot_gauge_set(l->tel_bytes, (int64_t)l->bytes);
}

/* ---- segments ---------------------------------------------------------- */

static seg *push_seg(ot_segment_log *l)
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

static seg *head(ot_segment_log *l)
{
    return &l->segs[l->nsegs - 1];
}

static bool seg_reserve(seg *s, size_t i)
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
static rec *seg_slot(seg *s, size_t i)
{
    if (!seg_reserve(s, i))
        return NULL;
    if (i >= s->n) {
        memset(&s->r[s->n], 0, (i + 1 - s->n) * sizeof *s->r);
        s->n = i + 1;
    }
    return &s->r[i];
}

/* Only the head changes while open, so a dirty old segment means the head
 * moved on before the policy synced it. */
static int sync_seg(ot_segment_log *l, seg *s)
{
    if (!s->dirty || l->o.fsync == OT_FSYNC_NEVER)
        return 0;
    if (fdatasync(s->fd) < 0)
        return -1;
    s->dirty = false;
    return 0;
}

static int new_head(ot_segment_log *l, ot_err *err)
{
    if (l->nsegs && sync_seg(l, head(l)) < 0)
        return ot_err_set(err, "%s: fsync: %s", l->path, strerror(errno));
    char name[32];
    uint64_t seq = l->next_seq;
    seg_name(name, sizeof name, seq);
    int fd = openat(l->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return ot_err_set(err, "%s/%s: %s", l->path, name, strerror(errno));
    seg *s = push_seg(l);
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

static void remove_seg(ot_segment_log *l, size_t i)
{
    seg *s = &l->segs[i];
    char name[32];
    seg_name(name, sizeof name, s->seq);
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

/* Deletes the fully acknowledged segments at the old end (never the head). */
static void trim_prefix(ot_segment_log *l)
{
    bool any = false;
    while (l->nsegs > 1 && l->segs[0].live == 0) {
        remove_seg(l, 0);
        any = true;
    }
    if (any)
        publish_bytes(l);
}

static bool find(ot_segment_log *l, uint64_t id, size_t *si, rec **r)
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

static void finish(ot_segment_log *l, seg *s, rec *r)
{
    if (r->state == R_PENDING)
        l->pending--;
    r->state = R_DONE;
    s->live--;
    l->live--;
}

/* ---- open: scan what the last run left --------------------------------- */

static void report_corrupt(ot_segment_log *l, const seg *s, uint64_t off, uint64_t len, bool tail)
{
    l->corrupt++;
    ot_counter_add(l->tel_corrupt, 1);
    ot_warn("segment_log", tail ? "torn record at end of segment skipped" : "corrupt record skipped",
            "path=%s/%016" PRIx64 ".seg offset=%" PRIu64 " bytes=%" PRIu64, l->path, s->seq, off,
            len);
}

/* A record starting at p is whole and its CRC matches. */
static bool rec_ok(const uint8_t *p, uint64_t avail)
{
    if (avail < HDR || get32(p) != MAGIC)
        return false;
    uint32_t len = get32(p + 12);
    if (len > MAX_PAYLOAD || (uint64_t)len > avail - HDR)
        return false;
    if (p[8] != T_DATA && p[8] != T_ACK)
        return false;
    return rec_crc(p, p + HDR, len) == get32(p + 4);
}

static const uint8_t *next_magic(const uint8_t *p, const uint8_t *end)
{
    uint8_t m[4];
    put32(m, MAGIC);
    while (end - p >= 4) {
        const uint8_t *q = memchr(p, m[0], (size_t)(end - p - 3));
        if (!q)
            return NULL;
        if (memcmp(q, m, 4) == 0)
            return q;
        p = q + 1;
    }
    return NULL;
}

static void take_record(ot_segment_log *l, seg *s, const uint8_t *p, uint64_t off)
{
    uint64_t id = get64(p + 16);
    if (p[8] == T_ACK) {
        size_t si;
        rec *r;
        if (find(l, id, &si, &r) && r->state == R_PENDING)
            finish(l, &l->segs[si], r);
        return;
    }
    uint32_t len = get32(p + 12);
    bool bad = id < l->next_id || p[9] >= OT_SIGNAL_COUNT || off > UINT32_MAX;
    if (!bad && s->n == 0)
        s->first_id = id;
    if (!bad && id - s->first_id > s->n + MAX_ID_GAP)
        bad = true;
    rec *r = bad ? NULL : seg_slot(s, (size_t)(id - s->first_id));
    if (!r) {
        report_corrupt(l, s, off, HDR + (uint64_t)len, false);
        return;
    }
    r->off = (uint32_t)off;
    r->len = len;
    r->items = get32(p + 24);
    r->signal = p[9];
    r->state = R_PENDING;
    s->live++;
    l->live++;
    l->pending++;
    l->next_id = id + 1;
}

static int load_seg(ot_segment_log *l, uint64_t seq, ot_err *err)
{
    char name[32];
    seg_name(name, sizeof name, seq);
    int fd = openat(l->dirfd, name, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return ot_err_set(err, "%s/%s: %s", l->path, name, strerror(e));
    }
    seg *s = push_seg(l);
    if (!s) {
        close(fd);
        return ot_err_set(err, "out of memory");
    }
    s->seq = seq;
    s->fd = fd;
    s->first_id = l->next_id;
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0)
        return 0;
    const uint8_t *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return ot_err_set(err, "%s/%s: mmap: %s", l->path, name, strerror(errno));
    uint64_t off = 0;
    int64_t bad = -1;
    while (off < size) {
        const uint8_t *p = map + off;
        if (rec_ok(p, size - off)) {
            if (bad >= 0)
                report_corrupt(l, s, (uint64_t)bad, off - (uint64_t)bad, false);
            bad = -1;
            take_record(l, s, p, off);
            off += HDR + (uint64_t)get32(p + 12);
            continue;
        }
        if (bad < 0)
            bad = (int64_t)off;
        const uint8_t *q = next_magic(p + 1, map + size);
        off = q ? (uint64_t)(q - map) : size;
    }
    munmap((void *)map, size);
    if (bad >= 0) {
        /* Nothing valid follows: it is a torn write. Cut it so the next open
         * does not report it again. */
        report_corrupt(l, s, (uint64_t)bad, size - (uint64_t)bad, true);
        if (ftruncate(fd, (off_t)bad) == 0)
            size = (uint64_t)bad;
    }
    s->size = size;
    l->bytes += size;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Segment sequence numbers found in the directory, sorted. */
static int list_segs(ot_segment_log *l, uint64_t **out, size_t *n, ot_err *err)
{
    int fd = dup(l->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return ot_err_set(err, "%s: %s", l->path, strerror(errno));
    }
    rewinddir(d);
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (strlen(nm) != 20 || strcmp(nm + 16, ".seg") != 0 ||
            strspn(nm, "0123456789abcdef") != 16)
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = ot_err_set(err, "out of memory");
                break;
            }
            v = nv;
        }
        v[cnt++] = strtoull(nm, NULL, 16);
    }
    closedir(d);
    if (rc < 0) {
        free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_u64);
    *out = v;
    *n = cnt;
    return 0;
}

static void free_log(ot_segment_log *l)
{
    for (size_t i = 0; i < l->nsegs; i++) {
        if (l->segs[i].fd >= 0)
            close(l->segs[i].fd);
        free(l->segs[i].r);
    }
    free(l->segs);
    if (l->lockfd >= 0)
        close(l->lockfd); /* releases the flock */
    if (l->dirfd >= 0)
        close(l->dirfd);
    pthread_mutex_destroy(&l->mu);
    free(l->path);
    free(l->name);
    free(l);
}

static char *clean_name(const char *name)
{
    char *n = strdup(name);
    if (!n)
        return NULL;
    for (char *p = n; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            *p = '_';
    }
    return n;
}

ot_segment_log *ot_segment_log_open(const ot_segment_log_opts *o, const char *name, ot_err *err)
{
    if (!o->directory || !*o->directory) {
        ot_err_set(err, "storage: no directory");
        return NULL;
    }
    if (!name || !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        ot_err_set(err, "storage: bad log name \"%s\"", name ? name : "");
        return NULL;
    }
    ot_segment_log *l = calloc(1, sizeof *l);
    if (!l) {
        ot_err_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    l->dirfd = l->lockfd = -1;
    l->o = *o;
    l->o.directory = NULL; /* not kept: the caller owns the string */
    if (l->o.segment_size == 0) {
        uint64_t lim = l->o.storage_limit, ss = lim / 16;
        ss = ss < (1u << 20) ? (1u << 20) : ss > (16u << 20) ? (16u << 20) : ss;
        /* A small quota still needs several segments, or one that never
         * fills could never be deleted. */
        if (lim && ss > lim / 4)
            ss = lim / 4 > 4096 ? lim / 4 : 4096;
        l->o.segment_size = ss;
    }
    l->name = clean_name(name);
    size_t plen = strlen(o->directory) + 1 + strlen(name) + 1;
    l->path = malloc(plen);
    if (!l->name || !l->path) {
        ot_err_set(err, "out of memory");
        free_log(l);
        return NULL;
    }
    snprintf(l->path, plen, "%s/%s", o->directory, l->name);
    if (mkdir(l->path, 0700) < 0 && errno != EEXIST) {
        ot_err_set(err, "storage: cannot create %s: %s", l->path, strerror(errno));
        free_log(l);
        return NULL;
    }
    l->dirfd = open(l->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->dirfd < 0) {
        ot_err_set(err, "storage: %s: %s", l->path, strerror(errno));
        free_log(l);
        return NULL;
    }
    l->lockfd = openat(l->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (l->lockfd < 0 || flock(l->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            ot_err_set(err, "storage: %s is in use by another queue or process", l->path);
        else
            ot_err_set(err, "storage: %s/lock: %s", l->path, strerror(errno));
        free_log(l);
        return NULL;
    }

    char labels[300];
    snprintf(labels, sizeof labels, "storage=\"%s\"", l->name); /* clean_name: no quotes */
    l->tel_corrupt = ot_tel_counter("otelite_storage_corrupt_records_total",
                                    "Damaged records skipped in persistent queues", labels);
    l->tel_dropped = ot_tel_counter("otelite_storage_dropped_records_total",
                                    "Queued batches deleted at storage_limit (on_full: drop_oldest)",
                                    labels);
    l->tel_bytes = ot_tel_gauge("otelite_storage_bytes", "Bytes on disk in persistent queues", labels);

    uint64_t *seqs = NULL;
    size_t nseq = 0;
    if (list_segs(l, &seqs, &nseq, err) < 0) {
        free_log(l);
        return NULL;
    }
    l->next_id = 1;
    for (size_t i = 0; i < nseq; i++) {
        if (load_seg(l, seqs[i], err) < 0) {
            free(seqs);
            ot_err_prefix(err, "storage");
            free_log(l);
            return NULL;
        }
        l->next_seq = seqs[i] + 1;
    }
    free(seqs);
    if (new_head(l, err) < 0) {
        ot_err_prefix(err, "storage");
        free_log(l);
        return NULL;
    }
    trim_prefix(l);
    publish_bytes(l);
    l->last_sync = ot_now_ns();
    if (l->live || l->corrupt)
        ot_info("segment_log", "persistent queue opened", "path=%s pending=%zu corrupt=%" PRIu64,
                l->path, l->live, l->corrupt);
    return l;
}

void ot_segment_log_close(ot_segment_log *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->nsegs; i++)
        sync_seg(l, &l->segs[i]);
    /* An empty head is noise for the next open. */
    if (l->nsegs && head(l)->size == 0)
        remove_seg(l, l->nsegs - 1);
    pthread_mutex_unlock(&l->mu);
    free_log(l);
}

/* ---- append ------------------------------------------------------------ */

/* Frees space by deleting the oldest segment; false when nothing can go. */
static bool drop_oldest(ot_segment_log *l, ot_err *err)
{
    if (l->nsegs == 1) {
        if (head(l)->size == 0 || new_head(l, err) < 0)
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
            finish(l, s, r);
    }
    l->dropped += n;
    l->dropped_items += items;
    ot_counter_add(l->tel_dropped, n);
    ot_warn("segment_log", "storage_limit reached; dropped the oldest queued batches",
            "path=%s batches=%zu items=%zu", l->path, n, items);
    remove_seg(l, 0);
    trim_prefix(l);
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
        if (head(l)->live == 0 && head(l)->size > 0 && l->segs[0].live == 0) {
            if (new_head(l, err) < 0) {
                rc = OT_SEGLOG_ERROR;
                goto out;
            }
            trim_prefix(l);
            continue;
        }
        if (l->o.on_full != OT_ON_FULL_DROP_OLDEST || !drop_oldest(l, err)) {
            ot_err_set(err, "persistent queue is full (storage_limit %" PRIu64 " bytes)",
                       l->o.storage_limit);
            rc = OT_SEGLOG_FULL;
            goto out;
        }
    }
    seg *h = head(l);
    if (h->size > 0 && h->size + need > l->o.segment_size) {
        if (new_head(l, err) < 0) {
            rc = OT_SEGLOG_ERROR;
            goto out;
        }
        trim_prefix(l);
        h = head(l);
    }
    if (h->size > UINT32_MAX) { /* offsets are 32-bit; a new file is cheap */
        if (new_head(l, err) < 0) {
            rc = OT_SEGLOG_ERROR;
            goto out;
        }
        h = head(l);
    }
    uint64_t rid = l->next_id;
    if (!seg_reserve(h, (size_t)(rid - h->first_id))) {
        ot_err_set(err, "out of memory");
        rc = OT_SEGLOG_ERROR;
        goto out;
    }
    uint8_t hdr[HDR];
    uint32_t it = items > UINT32_MAX ? UINT32_MAX : (uint32_t)items;
    fill_hdr(hdr, T_DATA, s, (uint32_t)len, rid, it, buf);
    struct iovec iov[2] = {{hdr, HDR}, {(void *)buf, len}};
    if (pwritev_all(h->fd, iov, len ? 2 : 1, h->size) < 0) {
        ot_err_set(err, "%s: write: %s", l->path, strerror(errno));
        if (ftruncate(h->fd, (off_t)h->size) < 0) {
            /* The partial record stays; the next open skips it as torn. */
        }
        rc = OT_SEGLOG_ERROR;
        goto out;
    }
    rec *r = seg_slot(h, (size_t)(rid - h->first_id)); /* reserved: cannot fail */
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
        if (sync_seg(l, h) < 0)
            ot_warn("segment_log", "fsync failed", "path=%s error=\"%s\"", l->path,
                    strerror(errno));
        l->last_sync = ot_now_ns();
    }
    publish_bytes(l);
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
    if (!find(l, id, &si, &r) || r->state == R_DONE) {
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
    if (get32(hdr) != MAGIC || get64(hdr + 16) != id || get32(hdr + 12) != r->len ||
        rec_crc(hdr, buf, r->len) != get32(hdr + 4)) {
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
    if (!find(l, id, &si, &r) || r->state == R_DONE)
        goto out;
    seg *s = &l->segs[si];
    finish(l, s, r);
    if (si == 0 && s->live == 0 && l->nsegs > 1) {
        /* The whole segment goes: no ack record needed. */
        trim_prefix(l);
        goto out;
    }
    seg *h = head(l);
    if (h->size >= l->o.segment_size) {
        if (new_head(l, err) < 0) {
            rc = -1;
            goto out;
        }
        trim_prefix(l);
        h = head(l);
    }
    /* Acks ignore storage_limit: refusing them would keep the queue full. */
    uint8_t hdr[HDR];
    fill_hdr(hdr, T_ACK, 0, 0, id, 0, NULL);
    struct iovec iov = {hdr, HDR};
    if (pwritev_all(h->fd, &iov, 1, h->size) < 0) {
        rc = ot_err_set(err, "%s: write: %s", l->path, strerror(errno));
        if (ftruncate(h->fd, (off_t)h->size) < 0) {
            /* Left as a torn tail; the next open skips it. */
        }
        goto out;
    }
    h->size += HDR;
    h->dirty = true;
    l->bytes += HDR;
    publish_bytes(l);
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
