/* segment_open.c: opening a persistent queue, which is recovery: take the
 * directory's lock, scan every segment the last run left, rebuild the
 * index of pending records from their DATA and ACK records, report and
 * skip a torn or corrupt tail (a record whose CRC fails), then start a
 * fresh head segment. And closing. Apart from the queue API because it
 * reads files record by record to repair them, which nothing else does. */
#include "export/segment_log_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h" /* ot_now_ns */
#include "base/log.h"

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
    if (avail < HDR || seglog_get32(p) != MAGIC)
        return false;
    uint32_t len = seglog_get32(p + 12);
    if (len > MAX_PAYLOAD || (uint64_t)len > avail - HDR)
        return false;
    if (p[8] != T_DATA && p[8] != T_ACK)
        return false;
    return seglog_rec_crc(p, p + HDR, len) == seglog_get32(p + 4);
}

static const uint8_t *next_magic(const uint8_t *p, const uint8_t *end)
{
    uint8_t m[4];
    seglog_put32(m, MAGIC);
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
    uint64_t id = seglog_get64(p + 16);
    if (p[8] == T_ACK) {
        size_t si;
        rec *r;
        if (seglog_find(l, id, &si, &r) && r->state == R_PENDING)
            seglog_finish(l, &l->segs[si], r);
        return;
    }
    uint32_t len = seglog_get32(p + 12);
    bool bad = id < l->next_id || p[9] >= OT_SIGNAL_COUNT || off > UINT32_MAX;
    if (!bad && s->n == 0)
        s->first_id = id;
    if (!bad && id - s->first_id > s->n + MAX_ID_GAP)
        bad = true;
    rec *r = bad ? NULL : seglog_seg_slot(s, (size_t)(id - s->first_id));
    if (!r) {
        report_corrupt(l, s, off, HDR + (uint64_t)len, false);
        return;
    }
    r->off = (uint32_t)off;
    r->len = len;
    r->items = seglog_get32(p + 24);
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
    seglog_seg_name(name, sizeof name, seq);
    int fd = openat(l->dirfd, name, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return ot_err_set(err, "%s/%s: %s", l->path, name, strerror(e));
    }
    seg *s = seglog_push_seg(l);
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
            off += HDR + (uint64_t)seglog_get32(p + 12);
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
    if (seglog_new_head(l, err) < 0) {
        ot_err_prefix(err, "storage");
        free_log(l);
        return NULL;
    }
    seglog_trim_prefix(l);
    seglog_publish_bytes(l);
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
        seglog_sync_seg(l, &l->segs[i]);
    /* An empty head is noise for the next open. */
    if (l->nsegs && seglog_head(l)->size == 0)
        seglog_remove_seg(l, l->nsegs - 1);
    pthread_mutex_unlock(&l->mu);
    free_log(l);
}
