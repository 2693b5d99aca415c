/* ckpt.c: checkpoints, the offset each file has been read to *and*
 * accepted by the pipeline, kept in the storage extension's directory so
 * a restart or a kill -9 resumes there: a line is never lost, and read
 * twice only when it was read but not yet accepted at the kill. Files are
 * found again by their first bytes, not by name or inode (both change
 * across rotations and are reused). The file is rewritten whole by rename
 * (base/blobfile.h); layout: "JLC1", u32 count, then per file an i64
 * offset, a u32 fingerprint length and the fingerprint, little endian. */
#include <stdlib.h>
#include <string.h>

#include "base/blobfile.h"
#include "base/log.h"
#include "jlr.h"

static int put(ot_buf *b, uint64_t v, int n)
{
    unsigned char c[8];
    for (int i = 0; i < n; i++)
        c[i] = (unsigned char)(v >> (8 * i));
    return ot_buf_append(b, c, (size_t)n);
}

static uint64_t get(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int jlr_ckpt_save(jlr *r, ot_err *err)
{
    if (!r->ck_dir)
        return 0;
    ot_buf b = OT_BUF_INIT;
    ot_buf_append(&b, "JLC1", 4);
    size_t n = 0;
    for (size_t i = 0; i < r->n_files; i++)
        n += r->files[i]->fp_len > 0;
    put(&b, n + r->n_known, 4);
    for (size_t i = 0; i < r->n_files; i++) {
        const jlr_file *f = r->files[i];
        if (!f->fp_len)
            continue;
        put(&b, (uint64_t)f->acked_off, 8);
        put(&b, f->fp_len, 4);
        ot_buf_append(&b, f->fp, f->fp_len);
    }
    for (size_t i = 0; i < r->n_known; i++) {
        put(&b, (uint64_t)r->known[i].off, 8);
        put(&b, r->known[i].fp_len, 4);
        ot_buf_append(&b, r->known[i].fp, r->known[i].fp_len);
    }
    int rc = b.oom ? ot_err_set(err, "out of memory")
                   : ot_blob_save(r->ck_dir, r->ck_name, b.data, b.len, r->ck_sync, err);
    ot_buf_free(&b);
    return rc;
}

int jlr_ckpt_load(jlr *r, ot_err *err)
{
    if (!r->ck_dir)
        return 0;
    ot_buf b = OT_BUF_INIT;
    int rc = ot_blob_load(r->ck_dir, r->ck_name, &b, err);
    if (rc <= 0) {
        ot_buf_free(&b);
        return rc;
    }
    const unsigned char *p = (const unsigned char *)b.data, *e = p + b.len;
    if (b.len < 8 || memcmp(p, "JLC1", 4) != 0) {
        ot_buf_free(&b);
        return ot_err_set(err, "%s/%s: not a jsonlog checkpoint", r->ck_dir, r->ck_name);
    }
    size_t n = (size_t)get(p + 4, 4);
    p += 8;
    for (size_t i = 0; i < n; i++) {
        if (e - p < 12)
            break;
        int64_t off = (int64_t)get(p, 8);
        size_t fl = (size_t)get(p + 8, 4);
        p += 12;
        if ((size_t)(e - p) < fl || fl > r->c->fingerprint_size)
            break;
        jlr_known_add(r, p, fl, off);
        p += fl;
    }
    ot_buf_free(&b);
    ot_info("jsonlog", "checkpoints loaded", "receiver=%s files=%zu", r->id, r->n_known);
    return 0;
}
