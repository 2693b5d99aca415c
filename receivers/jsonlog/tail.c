/* tail.c: following files across their lives. Each poll the globs are
 * walked and every file is known by its inode while it is open and by its
 * first bytes (fingerprint) across restarts and copies. The three kinds of
 * rotation look like this from here:
 *   rename:       the open inode leaves the globs (or shows up under a new
 *                 name); it is read to its end, then closed; the new file
 *                 at the old name is a new inode and read from its start;
 *   copytruncate: the open inode shrinks below our offset or its first
 *                 bytes change: it is read again from 0, and the copy,
 *                 whose first bytes are the old ones, continues from the
 *                 old offset (so lines not yet read when the copy was made
 *                 are read from the copy);
 *   delete:       the open inode has no links left: read to its end, closed.
 * Lines are read with pread from the file's offset; a last line without
 * its newline is left for the next read, so no per-file line buffer is
 * needed and offsets always sit at line starts. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "discover.h"
#include "jlr.h"
#include "k8s.h"

#define READ_BUDGET (8u << 20) /* per file per pass, so one busy file cannot starve others */
#define FLUSH_BYTES (512u << 10)

typedef struct found {
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
} found;

typedef struct flist {
    found *v;
    size_t n, cap;
} flist;

static void on_found(void *ud, const char *path, const struct stat *st)
{
    flist *l = ud;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].dev == st->st_dev && l->v[i].ino == st->st_ino)
            return; /* the same file by a second path: read once */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        found *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return;
        l->v = v;
        l->cap = cap;
    }
    char *p = strdup(path);
    if (!p)
        return;
    l->v[l->n++] = (found){p, st->st_dev, st->st_ino, st->st_size};
}

static size_t read_fp(int fd, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t n = pread(fd, buf + got, cap - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static bool fp_match(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    return n > 0 && memcmp(a, b, n) == 0;
}

void jlr_known_add(jlr *r, const uint8_t *fp, size_t fp_len, int64_t off)
{
    if (!fp_len)
        return;
    size_t max = (size_t)r->c->max_concurrent_files * 2;
    if (r->n_known >= max && r->n_known) {
        free(r->known[0].fp);
        memmove(r->known, r->known + 1, (r->n_known - 1) * sizeof *r->known);
        r->n_known--;
    }
    if (r->n_known == r->cap_known) {
        size_t cap = r->cap_known ? r->cap_known * 2 : 16;
        jlr_known *v = realloc(r->known, cap * sizeof *v);
        if (!v)
            return;
        r->known = v;
        r->cap_known = cap;
    }
    uint8_t *c = malloc(fp_len);
    if (!c)
        return;
    memcpy(c, fp, fp_len);
    r->known[r->n_known++] = (jlr_known){c, fp_len, off};
}

static void set_attrs(jlr *r, jlr_file *f)
{
    ot_buf b = OT_BUF_INIT;
    jl_k8s k;
    if (r->c->pod_logs_root && *r->c->pod_logs_root &&
        jl_k8s_parse(r->c->pod_logs_root, f->path, &k) == 0 && jl_k8s_resource(&k, &b) == 0 &&
        b.len) {
        f->res = b.data;
        f->res_len = b.len;
        b = (ot_buf)OT_BUF_INIT;
    }
    ot_buf_free(&b);
    const char *base = strrchr(f->path, '/');
    base = base ? base + 1 : f->path;
    if (r->c->include_file_name)
        jl_kv_str(&b, 6, "log.file.name", base, strlen(base));
    if (r->c->include_file_path)
        jl_kv_str(&b, 6, "log.file.path", f->path, strlen(f->path));
    f->extra = b.data;
    f->extra_len = b.oom ? 0 : b.len;
}

static void open_new(jlr *r, const found *fd_)
{
    if (r->n_files >= (size_t)r->c->max_concurrent_files) {
        static _Atomic int64_t last;
        if (ot_log_ratelimit(&last, 60000000000LL))
            ot_warn("jsonlog", "max_concurrent_files reached; a file waits",
                    "receiver=%s path=%s", r->id, fd_->path);
        return;
    }
    int fd = open(fd_->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_ino != fd_->ino || st.st_dev != fd_->dev) {
        close(fd);
        return; /* replaced between the walk and the open: next poll */
    }
    if (r->n_files == r->cap_files) {
        size_t cap = r->cap_files ? r->cap_files * 2 : 16;
        jlr_file **v = realloc(r->files, cap * sizeof *v);
        if (!v) {
            close(fd);
            return;
        }
        r->files = v;
        r->cap_files = cap;
    }
    jlr_file *f = calloc(1, sizeof *f);
    uint8_t *fp = malloc(r->c->fingerprint_size);
    if (!f || !fp || !(f->path = strdup(fd_->path))) {
        free(f);
        free(fp);
        close(fd);
        return;
    }
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->fp = fp;
    f->fp_len = read_fp(fd, fp, r->c->fingerprint_size);
    f->fmt = r->c->format;
    /* every known entry with these first bytes is this file (or a copy
     * of it): the furthest offset wins, and all of them are used up */
    int64_t off = -1;
    for (size_t i = 0; i < r->n_known;) {
        if (fp_match(r->known[i].fp, r->known[i].fp_len, f->fp, f->fp_len)) {
            if (r->known[i].off > off)
                off = r->known[i].off;
            free(r->known[i].fp);
            r->known[i] = r->known[--r->n_known];
            continue;
        }
        i++;
    }
    for (size_t i = 0; i < r->n_files && off < 0; i++) {
        jlr_file *o = r->files[i];
        /* only on a whole fingerprint: two small files that merely begin
         * alike must not skip each other's lines (a small copy is read
         * again instead: a repeat, not a loss) */
        if (o->fp_len < r->c->fingerprint_size || f->fp_len < r->c->fingerprint_size ||
            !fp_match(o->fp, o->fp_len, f->fp, f->fp_len))
            continue;
        /* a copy (copytruncate): the copy holds the original's bytes up to
         * its size; what the original has not given yet up to there is
         * read from the copy, the original goes on after it */
        off = o->off;
        if ((int64_t)st.st_size > o->off && !o->join.len && !o->skipping) {
            o->off = o->safe_off = o->acked_off = (int64_t)st.st_size;
        }
    }
    if (off < 0)
        off = (r->first_poll && r->c->start_at == 0) ? (int64_t)st.st_size : 0;
    /* Shorter than where we were with the same first bytes: a copy of a
     * file that had grown further (copytruncate), all of it read. A file
     * truncated and written again has other first bytes and no match. */
    if (off > (int64_t)st.st_size)
        off = (int64_t)st.st_size;
    f->off = f->safe_off = f->acked_off = off;
    set_attrs(r, f);
    f->wd = r->ino_fd >= 0 ? inotify_add_watch(r->ino_fd, f->path, IN_MODIFY) : -1;
    r->files[r->n_files++] = f;
    ot_gauge_add(r->tel.files_open, 1);
    r->ck_dirty = true;
    ot_debug("jsonlog", "file opened", "receiver=%s path=%s offset=%lld", r->id, f->path,
             (long long)off);
}

static void check_file(jlr *r, jlr_file *f)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return;
    if (st.st_nlink == 0 && !f->gone) {
        f->gone = true;
        ot_counter_add(r->tel.rot_delete, 1);
    }
    bool trunc = st.st_size < f->off;
    if (!trunc && f->fp_len) {
        uint8_t tmp[4096];
        uint8_t *cur = f->fp_len <= sizeof tmp ? tmp : malloc(f->fp_len);
        if (cur) {
            size_t n = read_fp(f->fd, cur, f->fp_len);
            trunc = n < f->fp_len || memcmp(cur, f->fp, f->fp_len) != 0;
            if (cur != tmp)
                free(cur);
        }
    }
    if (trunc) {
        ot_counter_add(r->tel.rot_truncate, 1);
        jlr_known_add(r, f->fp, f->fp_len, f->off);
        ot_debug("jsonlog", "file truncated", "receiver=%s path=%s offset=%lld", r->id, f->path,
                 (long long)f->off);
        f->off = f->safe_off = f->acked_off = 0;
        f->skipping = false;
        f->join.len = 0;
        f->join_trunc = false;
        f->fp_len = 0;
        r->ck_dirty = true;
    }
    if (f->fp_len < r->c->fingerprint_size && (uint64_t)st.st_size > f->fp_len)
        f->fp_len = read_fp(f->fd, f->fp, r->c->fingerprint_size);
}

void jlr_poll(jlr *r)
{
    flist l = {0};
    jl_discover(&r->c->include, &r->c->exclude, on_found, &l);
    for (size_t i = 0; i < r->n_files; i++)
        r->files[i]->seen = false;
    for (size_t i = 0; i < l.n; i++) {
        jlr_file *f = NULL;
        for (size_t j = 0; j < r->n_files && !f; j++)
            if (r->files[j]->dev == l.v[i].dev && r->files[j]->ino == l.v[i].ino)
                f = r->files[j];
        if (f) {
            f->seen = true;
            if (strcmp(f->path, l.v[i].path) != 0 && !f->gone) {
                ot_counter_add(r->tel.rot_rename, 1); /* renamed to a name the globs name too */
                free(f->path);
                f->path = l.v[i].path;
                l.v[i].path = NULL;
            }
        }
    }
    for (size_t i = 0; i < r->n_files; i++) {
        jlr_file *f = r->files[i];
        if (f->seen) {
            f->missing = 0;
            check_file(r, f);
        } else {
            if (!f->gone) {
                struct stat st;
                bool deleted = fstat(f->fd, &st) == 0 && st.st_nlink == 0;
                ot_counter_add(deleted ? r->tel.rot_delete : r->tel.rot_rename, 1);
                f->gone = true;
            }
            f->missing++;
        }
    }
    for (size_t i = 0; i < l.n; i++) {
        bool known = false;
        for (size_t j = 0; j < r->n_files && !known; j++)
            known = r->files[j]->dev == l.v[i].dev && r->files[j]->ino == l.v[i].ino;
        if (!known)
            open_new(r, &l.v[i]);
        free(l.v[i].path);
    }
    free(l.v);
    r->first_poll = false;
}

void jlr_file_close(jlr *r, jlr_file *f)
{
    if (f->wd >= 0)
        inotify_rm_watch(r->ino_fd, f->wd); /* fails harmlessly once the inode is gone */
    close(f->fd);
    free(f->path);
    free(f->fp);
    free(f->res);
    free(f->extra);
    ot_buf_free(&f->join);
    free(f);
    ot_gauge_add(r->tel.files_open, -1);
}

int jlr_line(jlr *r, jlr_file *f, const char *s, size_t n, bool truncated)
{
    if (!jlr_line_prep(r, &n, s, &truncated))
        return 0;
    if (f->fmt == JL_FMT_AUTO)
        f->fmt = jl_detect(s, n);
    jl_rec rec = {.observed_ns = r->now_real, .extra = f->extra, .extra_len = f->extra_len,
                  .truncated = truncated};
    bool pe = false;
    int rc;
    jl_framed fr;
    switch (f->fmt) {
    case JL_FMT_JSON:
        rc = jl_encode_json(&r->enc, &r->map, &rec, s, n, &r->out, &pe);
        break;
    case JL_FMT_TEXT:
        rc = jl_encode_text(&r->enc, &rec, s, n, NULL, &r->out);
        break;
    default: {
        int prc = f->fmt == JL_FMT_CRI ? jl_cri_parse(s, n, &fr)
                                       : jl_docker_parse(s, n, &r->dtmp, &r->dscratch, &fr);
        if (prc < 0) {
            pe = true;
            rc = jl_encode_text(&r->enc, &rec, s, n,
                                f->fmt == JL_FMT_CRI ? "not a CRI log line"
                                                     : "not a Docker JSON log line",
                                &r->out);
            break;
        }
        const char *msg = fr.msg;
        size_t mn = fr.msg_len;
        if (fr.partial || f->join.len || f->join_trunc) {
            if (!f->join.len && !f->join_trunc)
                f->join_ts = fr.ts;
            size_t room = r->c->max_log_size - f->join.len;
            if (mn > room) {
                mn = room;
                f->join_trunc = true;
            }
            if (ot_buf_append(&f->join, msg, mn) < 0)
                return -1;
            if (fr.partial)
                return 0;
            msg = f->join.data;
            mn = f->join.len;
            rec.truncated |= f->join_trunc;
            fr.ts = f->join_ts;
        }
        rec.runtime_ns = fr.ts;
        rec.stream = fr.stream;
        rec.stream_len = fr.stream_len;
        rc = jl_encode_msg(&r->enc, &r->map, &rec, msg, mn, &r->out, &pe);
        f->join.len = 0;
        f->join_trunc = false;
    }
    }
    if (rc < 0)
        return -1;
    if (pe)
        ot_counter_add(r->tel.parse_errors, 1);
    if (rec.truncated)
        ot_counter_add(r->tel.truncated, 1);
    r->out_items++;
    return 0;
}

int jlr_read_file(jlr *r, jlr_file *f)
{
    size_t budget = READ_BUDGET;
    int progress = 0;
    r->now_real = jlr_realtime_ns();
    while (budget) {
        ssize_t n = pread(f->fd, r->rbuf, r->rcap, (off_t)f->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        const char *p = r->rbuf, *e = r->rbuf + n;
        while (p < e) {
            const char *nl = memchr(p, '\n', (size_t)(e - p));
            if (!nl)
                break;
            size_t len = (size_t)(nl - p);
            if (f->skipping)
                f->skipping = false;
            else if (jlr_line(r, f, p, len, false) < 0)
                return -1;
            f->off += (int64_t)len + 1;
            if (!f->join.len && !f->join_trunc)
                f->safe_off = f->off;
            p = nl + 1;
        }
        size_t used = (size_t)(p - r->rbuf);
        if (used)
            f->partial_len = 0;
        if (!used && (size_t)n < r->rcap) {
            /* a line still being written; one that stays without its
             * newline for force_flush_period is taken as it is */
            int64_t now = ot_now_ns();
            if ((size_t)n != f->partial_len) {
                f->partial_len = (size_t)n;
                f->partial_since = now;
                break;
            }
            if (!r->c->force_flush_period || now - f->partial_since < r->c->force_flush_period)
                break;
            if (!f->skipping && jlr_line(r, f, r->rbuf, (size_t)n, false) < 0)
                return -1;
            f->skipping = false;
            f->off += n;
            if (!f->join.len && !f->join_trunc)
                f->safe_off = f->off;
            used = (size_t)n;
        } else if (!used) {
            /* no newline in a full buffer: longer than max_log_size */
            if (!f->skipping && jlr_line(r, f, r->rbuf, (size_t)n, true) < 0)
                return -1;
            f->skipping = true;
            used = (size_t)n;
            f->off += n;
        }
        ot_counter_add(r->tel.bytes, used);
        progress = 1;
        budget = used >= budget ? 0 : budget - used;
        if (r->out.len >= FLUSH_BYTES && jlr_flush(r, f) < 0)
            return -1;
    }
    if (r->out.len && jlr_flush(r, f) < 0)
        return -1;
    return progress;
}

void jlr_reap(jlr *r)
{
    for (size_t i = 0; i < r->n_files;) {
        jlr_file *f = r->files[i];
        struct stat st;
        bool drained = fstat(f->fd, &st) == 0 && f->off >= st.st_size;
        if (r->c->delete_after_read && !f->gone && drained && f->acked_off == f->off &&
            st.st_size > 0 && unlink(f->path) == 0)
            f->gone = true;
        bool done = f->gone && (f->missing >= 2 || st.st_nlink == 0) && f != r->pending_file;
        if (done && !drained && st.st_size > f->off) {
            /* a last line without its newline: nothing more will come */
            size_t want = (size_t)(st.st_size - f->off);
            if (want > r->rcap)
                want = r->rcap;
            ssize_t n = pread(f->fd, r->rbuf, want, (off_t)f->off);
            if (n > 0 && memchr(r->rbuf, '\n', (size_t)n) == NULL) {
                r->now_real = jlr_realtime_ns();
                if (!f->skipping)
                    jlr_line(r, f, r->rbuf, (size_t)n, false);
                f->off += n;
                f->safe_off = f->off;
                if (r->out.len && jlr_flush(r, f) < 0)
                    return;
                drained = true;
            }
        }
        if (done && drained && f->acked_off >= f->safe_off) {
            ot_debug("jsonlog", "file closed", "receiver=%s path=%s", r->id, f->path);
            r->files[i] = r->files[--r->n_files];
            jlr_file_close(r, f);
            r->ck_dirty = true;
            continue;
        }
        i++;
    }
}
