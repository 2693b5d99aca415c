/* scrape.c: a scrape, streamed. The text and protobuf formats want each
 * family's series together, and the store keeps streams in hash order, so
 * a scrape walks it twice:
 *
 *   1. ot_mstore_index hands over each stream's hash and shared-identity
 *      id (16 bytes a stream, a stripe at a time); every identity is
 *      worked out once (family, resource labels: render.c), and a stable
 *      counting sort lays the hashes out family by family, families in
 *      name order, a family's series identity by identity (a resource's
 *      series together, so the labels they share are worked out once a
 *      run), each identity's in store order;
 *   2. the response is then written while it is sent: each part is the
 *      next PART bytes or so of the current family, its series looked up
 *      by hash (ot_mstore_visit_hashes: one stripe lock hold a few hundred
 *      lookups long, the copies formatted with no lock held).
 *
 * So a scrape holds 8 bytes a series and one part of text, not the body.
 * A series inserted between the walks waits for the next scrape; one
 * removed is skipped.
 *
 * Protobuf: a MetricFamily is length-prefixed and its name may appear
 * once in an exposition, so a family is held whole until its length is
 * known, as long as it stays under a part. A larger one is walked twice
 * (big_family): first for the bytes of each of its hash positions (4
 * bytes a position), then written with the sum as its length, a part at
 * a time. A position whose bytes differ by the second walk (a series
 * gone, an exemplar or a longer count come meanwhile) is written as a
 * field the parsers skip, of the first walk's length: that series waits
 * for the next scrape and the length stays true. */
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "render_int.h"

#define PART (256u << 10)
#define CHUNK 256 /* hashes looked up per ot_mstore_visit_hashes */
#define MAX_TRIES 4 /* lookups of a new identity's streams before it counts as gone */

struct pm_stream {
    rctx r;
    uint64_t *hashes; /* family by family */
    size_t *order;    /* family indexes in name order */
    size_t pos;       /* in order */
    size_t at;        /* next hash of the current family */
    bool begun, started, eof;
    ot_buf out;  /* the part handed out */
    ot_buf body; /* protobuf: the current family's metric fields */
    ot_mstore_scratch visit; /* the copies of each lookup by hash, reused */
    base_ent *last; /* the base_ent of the last stream looked at */
    /* protobuf, a family larger than a part: BIG_SIZE, then BIG_WRITE */
    int big;
    uint32_t *sizes; /* bytes of each position of the family, by the first walk */
    size_t cur;      /* the position a stream being rendered belongs to */
    size_t chunk_end; /* past the last position of the chunk being visited */
};

enum { BIG_NO = 0, BIG_SIZE = 1, BIG_WRITE = 2 };

typedef struct idx_list {
    ot_mstore_idx *v;
    size_t n, cap;
} idx_list;

static int take_index(void *ctx, const ot_mstore_idx *v, size_t n)
{
    idx_list *l = ctx;
    if (l->n + n > l->cap) {
        size_t cap = l->cap ? l->cap : 4096;
        while (cap < l->n + n)
            cap *= 2;
        ot_mstore_idx *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = cap;
    }
    memcpy(l->v + l->n, v, n * sizeof *v);
    l->n += n;
    return 0;
}

typedef struct resolving {
    rctx *r;
    base_ent *b;
} resolving;

static int resolve_one(void *ctx, const ot_mstore_stream *st)
{
    resolving *x = ctx;
    if (x->b->fam == BASE_UNKNOWN && ot_mstore_stream_base_id(st) == x->b->id)
        pm_resolve(x->r, x->b, st);
    return 0;
}

static const rctx *sort_ctx; /* qsort has no context argument */

static int by_name(const void *a, const void *b)
{
    return strcmp(sort_ctx->fams[*(const size_t *)a].name, sort_ctx->fams[*(const size_t *)b].name);
}

static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

/* Each entry's identity, by its base_ent's seq, kept in base_id's place;
 * UINT64_MAX for none shown. Returns the number of seqs (bases). */
static size_t resolve_all(rctx *r, idx_list *l)
{
    /* Streams of a few identities come interleaved in store order: what
     * an identity came to is kept by id in a small cache once it is final
     * (ids are never 0), so most entries skip the table. */
    struct {
        uint64_t id;
        int32_t fam;
        uint32_t seq;
    } cache[16] = {{0}};
    size_t conflicts = 0;
    for (size_t i = 0; i < l->n && !r->err; i++) {
        uint64_t id = l->v[i].base_id;
        size_t ci = (size_t)((id * 0x9e3779b97f4a7c15ull) >> 60);
        int32_t fam;
        uint32_t seq;
        if (cache[ci].id == id) {
            fam = cache[ci].fam;
            seq = cache[ci].seq;
        } else {
            base_ent *b = pm_base(r, id, true);
            if (!b) {
                r->err = -1;
                break;
            }
            if (b->fam == BASE_UNKNOWN && b->tries < MAX_TRIES) {
                b->tries++;
                resolving x = {r, b};
                ot_mstore_visit_hashes(r->c->store, &l->v[i].hash, 1, resolve_one, &x);
                if (b->fam == BASE_UNKNOWN && b->tries == MAX_TRIES)
                    b->fam = BASE_HIDDEN;
            }
            fam = b->fam;
            seq = b->seq;
            if (fam != BASE_UNKNOWN) {
                cache[ci].id = id;
                cache[ci].fam = fam;
                cache[ci].seq = seq;
            }
        }
        conflicts += fam == BASE_CONFLICT;
        l->v[i].base_id = fam >= 0 ? seq : UINT64_MAX;
        if (fam >= 0)
            r->fams[fam].n++;
    }
    atomic_store(&r->c->conflicts, conflicts);
    return r->bases.n;
}

/* The first walk: every stream's family, the hashes laid out family by
 * family, and within a family identity by identity (a resource's streams
 * together, so the labels they share are worked out once a run, not once
 * a stream), each identity's in store order. */
static int index_streams(pm_stream *s)
{
    rctx *r = &s->r;
    idx_list l = {0};
    size_t *at_seq = NULL;
    int32_t *fam_of = NULL;
    int rc = -1;
    if (ot_mstore_index(r->c->store, take_index, &l) < 0)
        goto out;
    size_t nb = resolve_all(r, &l);
    s->order = malloc((r->n_fams ? r->n_fams : 1) * sizeof *s->order);
    s->hashes = malloc((l.n ? l.n : 1) * sizeof *s->hashes);
    at_seq = calloc(nb ? nb : 1, sizeof *at_seq);
    fam_of = malloc((nb ? nb : 1) * sizeof *fam_of);
    if (!s->order || !s->hashes || !at_seq || !fam_of || r->err)
        goto out;
    for (size_t i = 0; i < r->n_fams; i++)
        s->order[i] = i;
    if (r->n_fams > 1) {
        pthread_mutex_lock(&sort_mu);
        sort_ctx = r;
        qsort(s->order, r->n_fams, sizeof *s->order, by_name);
        pthread_mutex_unlock(&sort_mu);
    }
    const base_ent *bv = r->bases.v;
    for (size_t i = 0; i < r->bases.cap; i++)
        if (bv[i].id)
            fam_of[bv[i].seq] = bv[i].fam;
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].base_id != UINT64_MAX)
            at_seq[l.v[i].base_id]++;
    /* Families in name order; a family's identities in seq order, each
     * one's start after those before it (at_seq turns from counts into
     * starts, then into the next free place). */
    size_t at = 0;
    size_t *fam_first = calloc(r->n_fams ? r->n_fams : 1, sizeof *fam_first);
    if (!fam_first)
        goto out;
    for (size_t i = 0; i < r->n_fams; i++) {
        pm_fam *f = &r->fams[s->order[i]];
        f->first = at;
        at += f->n;
    }
    for (size_t q = 0; q < nb; q++) {
        if (fam_of[q] < 0)
            continue;
        pm_fam *f = &r->fams[fam_of[q]];
        size_t fi = (size_t)fam_of[q], cnt = at_seq[q];
        at_seq[q] = f->first + fam_first[fi];
        fam_first[fi] += cnt;
    }
    free(fam_first);
    for (size_t i = 0; i < l.n; i++)
        if (l.v[i].base_id != UINT64_MAX)
            s->hashes[at_seq[l.v[i].base_id]++] = l.v[i].hash;
    rc = 0;
out:
    free(l.v);
    free(at_seq);
    free(fam_of);
    return rc;
}

pm_stream *pm_stream_new(pm_core *c, int fmt)
{
    pm_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->r.c = c;
    s->r.fmt = fmt;
    if (index_streams(s) < 0) {
        pm_stream_free(s);
        return NULL;
    }
    return s;
}

void pm_stream_free(pm_stream *s)
{
    if (!s)
        return;
    pm_tables_free(&s->r);
    free(s->hashes);
    free(s->order);
    ot_buf_free(&s->out);
    ot_buf_free(&s->body);
    ot_mstore_scratch_free(&s->visit);
    free(s->sizes);
    free(s);
}

static ot_buf *dest(pm_stream *s)
{
    return s->r.fmt == PM_FMT_PROTOBUF ? &s->body : &s->out;
}

/* ---- protobuf families larger than a part -------------------------------- */

/* Done with position i of the family: its bytes go out when the first
 * walk's length still holds, a filler of that length otherwise. */
static void big_close(pm_stream *s, size_t i)
{
    if (s->big != BIG_WRITE)
        return;
    if (s->body.len == s->sizes[i])
        ot_buf_append(&s->out, s->body.data, s->body.len);
    else if (s->sizes[i])
        pm_pb_filler(&s->out, s->sizes[i]);
    ot_buf_reset(&s->body);
}

/* The position of a stream of hash h: the current one or a later one of
 * the chunk (visits come in the order of the hashes asked for). */
static void big_seek(pm_stream *s, const pm_fam *f, uint64_t h, size_t end)
{
    while (s->cur + 1 < end && s->hashes[f->first + s->cur] != h)
        big_close(s, s->cur++);
}

/* After the stream's metric went into body. */
static void big_rendered(pm_stream *s)
{
    if (s->big != BIG_SIZE)
        return;
    uint64_t n = (uint64_t)s->sizes[s->cur] + s->body.len;
    s->sizes[s->cur] = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    ot_buf_reset(&s->body);
}

/* The family outgrew a part while held whole: walk it again for its sizes. */
static int big_begin(pm_stream *s, const pm_fam *f)
{
    s->sizes = calloc(f->n ? f->n : 1, sizeof *s->sizes);
    if (!s->sizes)
        return -1;
    s->big = BIG_SIZE;
    s->at = s->cur = 0;
    ot_buf_reset(&s->body);
    return 0;
}

/* Sized: the family's head with its whole length, then its positions. */
static void big_write(pm_stream *s, const pm_fam *f)
{
    uint64_t len = f->pre.len;
    for (size_t i = 0; i < f->n; i++)
        len += s->sizes[i];
    s->big = BIG_WRITE;
    s->at = s->cur = 0;
    if (!len) {
        s->started = false; /* every series gone meanwhile: no family */
        return;
    }
    pm_pb_family_head(&s->out, f->name, f->help, f->kind, (size_t)len);
    ot_buf_append(&s->out, f->pre.data, f->pre.len);
}

/* The current family's header, before its first series. */
static void start(pm_stream *s, const pm_fam *f)
{
    if (s->started)
        return;
    s->started = true;
    if (s->r.fmt != PM_FMT_PROTOBUF)
        pm_header(&s->r, f, &s->out);
}

static int render_one(void *ctx, const ot_mstore_stream *st)
{
    pm_stream *s = ctx;
    rctx *r = &s->r;
    size_t fi = s->order[s->pos];
    uint64_t id = ot_mstore_stream_base_id(st);
    base_ent *b = s->last && s->last->id == id ? s->last : pm_base(r, id, false);
    s->last = b;
    if (!b || b->fam != (int32_t)fi)
        return 0; /* another stream of the same hash, or one new since the index */
    ot_pacc_state *ps = (ot_pacc_state *)(void *)st->state;
    int kind = ps->kind == OT_PACC_EXPHIST ? OT_PACC_HISTOGRAM : ps->kind;
    const pm_fam *f = &r->fams[fi];
    if (!ps->kind || (ps->flags & OT_PACC_F_NO_VALUE) || kind != f->kind)
        return 0;
    start(s, f);
    if (s->big)
        big_seek(s, f, st->hash, s->chunk_end);
    pm_series(r, f, dest(s), st, &b->re, ps);
    if (s->big)
        big_rendered(s);
    return 0;
}

int pm_stream_next(pm_stream *s, const char **p, size_t *n)
{
    rctx *r = &s->r;
    ot_buf_reset(&s->out);
    while (s->out.len < PART && !r->err) {
        if (s->pos == r->n_fams) {
            if (r->fmt == PM_FMT_OPENMETRICS && !s->eof) {
                ot_buf_puts(&s->out, "# EOF\n");
                s->eof = true;
            }
            break;
        }
        const pm_fam *f = &r->fams[s->order[s->pos]];
        if (!s->begun) {
            s->begun = true;
            if (f->pre.len) {
                start(s, f);
                ot_buf_append(dest(s), f->pre.data, f->pre.len);
            }
        }
        if (s->at < f->n) {
            size_t k = f->n - s->at < CHUNK ? f->n - s->at : CHUNK;
            s->chunk_end = s->at + k;
            if (s->big)
                s->cur = s->at;
            if (ot_mstore_visit_hashes_with(r->c->store, &s->visit, s->hashes + f->first + s->at,
                                            k, render_one, s) < 0)
                r->err = -1;
            s->at += k;
            while (s->big && s->cur < s->at)
                big_close(s, s->cur++);
            if (r->fmt == PM_FMT_PROTOBUF && !s->big && s->body.len > PART && s->at < f->n &&
                big_begin(s, f) < 0)
                r->err = -1;
            continue;
        }
        if (s->big == BIG_SIZE) {
            big_write(s, f);
            continue;
        }
        if (s->big == BIG_WRITE) {
            s->big = BIG_NO;
            free(s->sizes);
            s->sizes = NULL;
        } else if (r->fmt == PM_FMT_PROTOBUF && s->started) {
            pm_pb_family_head(&s->out, f->name, f->help, f->kind, s->body.len);
            ot_buf_append(&s->out, s->body.data, s->body.len);
            ot_buf_reset(&s->body);
        }
        s->pos++;
        s->at = 0;
        s->begun = s->started = false;
    }
    if (r->err || s->out.oom || s->body.oom)
        return -1;
    *p = s->out.data;
    *n = s->out.len;
    return s->out.len > 0;
}

int pm_render(pm_core *c, int fmt, pm_scrape *out)
{
    out->parts = NULL;
    out->n = 0;
    pm_stream *s = pm_stream_new(c, fmt);
    if (!s)
        return -1;
    size_t cap = 0;
    const char *p;
    size_t n;
    int rc;
    while ((rc = pm_stream_next(s, &p, &n)) > 0) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            ot_buf *np = realloc(out->parts, cap * sizeof *np);
            if (!np) {
                rc = -1;
                break;
            }
            out->parts = np;
        }
        out->parts[out->n] = (ot_buf)OT_BUF_INIT;
        ot_buf_append(&out->parts[out->n++], p, n);
        if (out->parts[out->n - 1].oom) {
            rc = -1;
            break;
        }
    }
    pm_stream_free(s);
    return rc < 0 ? -1 : 0;
}

void pm_scrape_free(pm_scrape *s)
{
    for (size_t i = 0; i < s->n; i++)
        ot_buf_free(&s->parts[i]);
    free(s->parts);
    s->parts = NULL;
    s->n = 0;
}

int pm_render_text(pm_core *c, int fmt, ot_buf *out)
{
    pm_stream *s = pm_stream_new(c, fmt);
    if (!s)
        return -1;
    const char *p;
    size_t n;
    int rc;
    while ((rc = pm_stream_next(s, &p, &n)) > 0)
        ot_buf_append(out, p, n);
    pm_stream_free(s);
    return rc < 0 ? -1 : 0;
}
