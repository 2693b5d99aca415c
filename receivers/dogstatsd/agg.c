/* agg.c: the reader side of DogStatsD aggregation. Each reader thread
 * turns parsed metric lines into updates of its own shard's stream stores
 * (no lock shared with other readers: see dsdr.h for the epoch protocol
 * that lets the flush thread read without stopping them). What a value
 * does to a series per type is cstate.c's ot_dsdr_cstate_add, once. */
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "dsdr.h"

/* ---- per-type rules ---------------------------------------------------- */

int ot_dsdr_table_insert(uint64_t **tp, uint32_t *np, uint32_t *capp, uint64_t h)
{
    if (h == 0)
        h = 1; /* 0 marks an empty cell */
    uint64_t *t = *tp;
    uint32_t cap = *capp;
    if ((uint64_t)(*np + 1) * 4 > (uint64_t)cap * 3) {
        uint32_t ncap = cap ? cap * 2 : 16;
        uint64_t *nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return -1;
        for (uint32_t i = 0; i < cap; i++) {
            uint64_t v = t[i];
            if (!v)
                continue;
            uint32_t j = (uint32_t)v & (ncap - 1);
            while (nt[j])
                j = (j + 1) & (ncap - 1);
            nt[j] = v;
        }
        free(t);
        *tp = t = nt;
        *capp = cap = ncap;
    }
    uint32_t j = (uint32_t)h & (cap - 1);
    while (t[j]) {
        if (t[j] == h)
            return 0;
        j = (j + 1) & (cap - 1);
    }
    t[j] = h;
    (*np)++;
    return 0;
}

int ot_dsdr_set_insert(dsdr_slot *s, uint64_t h)
{
    return ot_dsdr_table_insert(&s->u.set, &s->n, &s->cap, h);
}

void ot_dsdr_slot_free(dsdr_slot *s)
{
    free(s->u.samples); /* the union's pointers are one allocation either way */
    s->u.samples = NULL;
    s->n = s->cap = 0;
}

/* ---- tags to identity -------------------------------------------------- */

static const struct {
    const char *tag, *key;
} resource_tags[] = {
    {"host", "host.name"},
    {"env", "deployment.environment.name"},
    {"service", "service.name"},
    {"version", "service.version"},
    {"c", "container.id"},
};
#define N_RES_TAGS (sizeof resource_tags / sizeof resource_tags[0])

static bool str_is(ot_dsd_str s, const char *z)
{
    size_t n = strlen(z);
    return s.n == n && memcmp(s.p, z, n) == 0;
}

static int pair_cmp(const void *pa, const void *pb)
{
    const dsdr_pair *a = pa, *b = pb;
    size_t n = a->k.n < b->k.n ? a->k.n : b->k.n;
    int c = memcmp(a->k.p, b->k.p, n);
    if (c)
        return c;
    if (a->k.n != b->k.n)
        return a->k.n < b->k.n ? -1 : 1;
    /* equal keys: by position (v.p), so that the later one can win */
    return a->v.p < b->v.p ? -1 : a->v.p > b->v.p;
}

void ot_dsdr_split_tags(const ot_dsd_item *it, dsdr_pair *res, size_t *nres, dsdr_pair *attrs,
                        size_t *nattrs)
{
    ot_dsd_str slots[N_RES_TAGS];
    bool have[N_RES_TAGS] = {0};
    size_t na = 0;
    ot_dsd_tag_iter ti;
    ot_dsd_tag t;
    ot_dsd_tags_begin(&it->tags, &ti);
    while (ot_dsd_tag_next(&ti, &t) && na < OT_DSD_MAX_TAGS) {
        size_t r = N_RES_TAGS;
        if (!t.bare)
            for (r = 0; r < N_RES_TAGS; r++)
                if (str_is(t.key, resource_tags[r].tag))
                    break;
        if (r < N_RES_TAGS) {
            slots[r] = t.value;
            have[r] = true;
        } else {
            attrs[na++] = (dsdr_pair){t.key, t.value};
        }
    }
    if (it->container_id.n) {
        slots[N_RES_TAGS - 1] = it->container_id;
        have[N_RES_TAGS - 1] = true;
    }
    size_t nr = 0;
    for (size_t r = 0; r < N_RES_TAGS; r++)
        if (have[r])
            res[nr++] = (dsdr_pair){{resource_tags[r].key, strlen(resource_tags[r].key)}, slots[r]};
    qsort(res, nr, sizeof *res, pair_cmp);
    if (na > 1) {
        qsort(attrs, na, sizeof *attrs, pair_cmp);
        size_t w = 0;
        for (size_t i = 0; i < na; i++) {
            if (i + 1 < na && attrs[i + 1].k.n == attrs[i].k.n &&
                memcmp(attrs[i + 1].k.p, attrs[i].k.p, attrs[i].k.n) == 0)
                continue; /* a later tag with the same key wins */
            attrs[w++] = attrs[i];
        }
        na = w;
    }
    *nres = nr;
    *nattrs = na;
}

/* ---- shards ------------------------------------------------------------ */

static void on_remove(void *ctx, ot_mstore_stream *s, ot_mstore_why why)
{
    (void)why;
    dsdr_agg *a = ctx;
    atomic_fetch_sub_explicit(&a->live, 1, memory_order_relaxed);
    ot_dsdr_cstate_free(&a->o, (dsdr_cstate *)s->state);
}

dsdr_agg *ot_dsdr_agg_new(const dsdr_agg_opts *o, ot_err *err)
{
    dsdr_agg *a = calloc(1, sizeof *a);
    unsigned n = o->readers ? o->readers : 1;
    if (!a || !(a->sh = calloc(n, sizeof *a->sh))) {
        free(a);
        ot_err_set(err, "out of memory");
        return NULL;
    }
    a->o = *o;
    a->o.budget = &a->budget;
    atomic_init(&a->budget.held, 0);
    atomic_init(&a->budget.sampled, 0);
    a->n = n;
    a->last_flush_unix_ns = o->start_unix_ns;
    atomic_init(&a->epoch, 1);
    atomic_init(&a->live, 0);
    atomic_init(&a->refused, 0);
    for (unsigned i = 0; i < n; i++) {
        dsdr_shard *sh = &a->sh[i];
        pthread_mutex_init(&sh->ts_lock, NULL);
        sh->key = (ot_mstore_key)OT_MSTORE_KEY_INIT;
        sh->scratch = (ot_buf)OT_BUF_INIT;
        sh->ts_lines = (ot_buf)OT_BUF_INIT;
        sh->rng = 0x853c49e6748fea9bull + i;
        sh->res = malloc((OT_DSD_MAX_TAGS + 1) * sizeof *sh->res);
        sh->attrs = malloc((OT_DSD_MAX_TAGS + 1) * sizeof *sh->attrs);
        sh->ks = aligned_alloc(64, DSDR_KCACHE / DSDR_KCACHE_WAYS * sizeof *sh->ks);
        if (sh->ks)
            memset(sh->ks, 0, DSDR_KCACHE / DSDR_KCACHE_WAYS * sizeof *sh->ks);
        sh->ahead = malloc(DSDR_AHEAD * sizeof *sh->ahead);
        for (int k = 0; k < 2; k++) {
            ot_mstore_opts so = {
                .state_size = sizeof(dsdr_cstate), /* each get asks for its type's */
                /* max_series is the receiver's, over every shard and
                 * both stores: counted in a->live, not per store */
                .max_streams = 0,
                /* delta series go after two intervals idle; cumulative
                 * counters keep their running total for five minutes */
                .max_idle_ns = (k == 0 && o->temporality == DSDR_CUMULATIVE)
                                   ? 300 * 1000000000LL
                                   : 2 * o->interval_ns,
                .on_remove = on_remove,
                .ctx = a,
                /* streams from pages of one size: no malloc header, 8-byte
                 * rounding (1M series: 208 -> 196 bytes each) */
                .slab = true,
            };
            sh->st[k] = ot_mstore_new(&so, err);
            if (!sh->st[k])
                break;
        }
        if (!sh->st[0] || !sh->st[1] || !sh->res || !sh->attrs || !sh->ks || !sh->ahead) {
            ot_dsdr_agg_free(a);
            if (err && !err->msg[0])
                ot_err_set(err, "out of memory");
            return NULL;
        }
    }
    return a;
}

void ot_dsdr_agg_free(dsdr_agg *a)
{
    if (!a)
        return;
    for (unsigned i = 0; i < a->n; i++) {
        dsdr_shard *sh = &a->sh[i];
        for (int k = 0; k < 2; k++)
            if (sh->st[k])
                ot_mstore_free(sh->st[k]);
        ot_mstore_key_free(&sh->key);
        ot_buf_free(&sh->scratch);
        ot_buf_free(&sh->ts_lines);
        free(sh->res);
        free(sh->attrs);
        for (size_t k = 0; sh->ks && k < DSDR_KCACHE / DSDR_KCACHE_WAYS; k++)
            for (int w = 0; w < DSDR_KCACHE_WAYS; w++)
                free(sh->ks[k].e[w]);
        free(sh->ks);
        free(sh->ahead);
        pthread_mutex_destroy(&sh->ts_lock);
    }
    free(a->sh);
    free(a);
}

void ot_dsdr_agg_begin(dsdr_agg *a, unsigned r, int64_t unix_ns, int64_t mono_ns)
{
    dsdr_shard *sh = &a->sh[r];
    uint64_t e;
    /* Publish the epoch we write before writing, then check the flusher
     * did not move on meanwhile (both seq_cst: see dsdr.h). */
    do {
        e = atomic_load(&a->epoch);
        atomic_store(&sh->busy, e);
    } while (atomic_load(&a->epoch) != e);
    sh->epoch = e;
    sh->unix_ns = unix_ns;
    sh->mono_ns = mono_ns;
}



static void copy_z(ot_buf *b, ot_dsd_str s, size_t *off)
{
    *off = b->len;
    ot_buf_append(b, s.p, s.n);
    ot_buf_putc(b, '\0');
}

static int add_timestamped(dsdr_agg *a, dsdr_shard *sh, const ot_dsd_item *it)
{
    int rc = 0;
    pthread_mutex_lock(&sh->ts_lock);
    if (sh->ts_lines.len + it->line.n + 4 > DSDR_MAX_TS_BYTES) {
        atomic_fetch_add(&a->ts_dropped, 1);
        rc = -1;
    } else {
        uint32_t n = (uint32_t)it->line.n;
        ot_buf_append(&sh->ts_lines, &n, sizeof n);
        ot_buf_append(&sh->ts_lines, it->line.p, it->line.n);
        rc = sh->ts_lines.oom ? -1 : 0;
    }
    pthread_mutex_unlock(&sh->ts_lock);
    return rc;
}

/* The update of one metric item once its stream key is known. */
static int add_keyed(dsdr_agg *a, dsdr_shard *sh, bool counter, ot_mstore_key *key,
                     const ot_dsd_item *it)
{
    ot_mstore *st = sh->st[counter ? 0 : 1];
    ot_mstore_ref ref;
    ot_mstore_res res =
        ot_mstore_get(st, key, sh->mono_ns, ot_dsdr_cstate_size(it->u.metric.type), &ref);
    if (res == OT_MSTORE_REFUSED || res == OT_MSTORE_ERR)
        return -1;
    if (res == OT_MSTORE_NEW) {
        /* The cap is the receiver's, whichever reader sees a series first:
         * one shared count, touched only when a series comes or goes. A
         * series over it is taken back at once (on_remove counts it out). */
        size_t live = atomic_fetch_add_explicit(&a->live, 1, memory_order_relaxed) + 1;
        if (a->o.max_series && live > a->o.max_series) {
            ot_mstore_put(st, &ref, true);
            atomic_fetch_add_explicit(&a->refused, 1, memory_order_relaxed);
            return -1;
        }
    }
    int rc = ot_dsdr_cstate_add(&a->o, ref.state, (unsigned)(sh->epoch & 1), sh->epoch, it,
                                sh->unix_ns, &sh->rng);
    ot_mstore_put(st, &ref, false);
    return rc;
}

/* A cache hit: a key whose bytes are the entry's own, not a copy. The
 * store only reads a key's bytes (and notes the base it matched), so the
 * buffer is lent for the call; nothing frees or grows it. */
static int add_cached(dsdr_agg *a, dsdr_shard *sh, bool counter, dsdr_kent *e,
                      const ot_dsd_item *it)
{
    ot_mstore_key k = {
        .buf = {e->text + e->rn, e->kn, e->kn, 0},
        .base_len = e->base_len,
        .base_hash = e->base_hash,
        .hash = e->hash,
        .base_id = e->base_id,
    };
    int rc = add_keyed(a, sh, counter, &k, it);
    e->base_id = k.base_id;
    return rc;
}

/* The identity as written: name ':' type tags '\n' container id (a name
 * holds no ':', tags no '\n', so the text is unambiguous). Its length, 0
 * when it is too long for the cache. Only a new entry is given the text
 * itself (ident_text); lookups hash and compare the pieces where they lie
 * in the datagram, as copying them first cost more than the hashing. */
static size_t ident_len(const ot_dsd_item *it)
{
    size_t rn = it->u.metric.name.n + 2 + it->tags.raw.n + 1 + it->container_id.n;
    return rn > DSDR_KCACHE_RAW ? 0 : rn;
}

static void ident_text(const ot_dsd_item *it, char *raw)
{
    const ot_dsd_metric *m = &it->u.metric;
    char *w = raw;
    memcpy(w, m->name.p, m->name.n);
    w += m->name.n;
    *w++ = ':';
    *w++ = (char)('0' + m->type);
    if (it->tags.raw.n)
        memcpy(w, it->tags.raw.p, it->tags.raw.n);
    w += it->tags.raw.n;
    *w++ = '\n';
    if (it->container_id.n)
        memcpy(w, it->container_id.p, it->container_id.n);
}

static uint64_t ident_hash(const ot_dsd_item *it)
{
    const ot_dsd_metric *m = &it->u.metric;
    uint64_t h = ot_mstore_hash(m->name.p, m->name.n, 0x6b63 + (uint64_t)m->type);
    h = ot_mstore_hash(it->tags.raw.p, it->tags.raw.n, h);
    return it->container_id.n ? ot_mstore_hash(it->container_id.p, it->container_id.n, h) : h;
}

static bool ident_eq(const dsdr_kent *e, const ot_dsd_item *it, size_t rn)
{
    const ot_dsd_metric *m = &it->u.metric;
    const char *t = e->text;
    size_t nn = m->name.n, tn = it->tags.raw.n;
    return e->rn == rn && memcmp(t, m->name.p, nn) == 0 && t[nn] == ':' &&
           t[nn + 1] == (char)('0' + m->type) && (!tn || memcmp(t + nn + 2, it->tags.raw.p, tn) == 0) &&
           t[nn + 2 + tn] == '\n' &&
           (!it->container_id.n ||
            memcmp(t + nn + 3 + tn, it->container_id.p, it->container_id.n) == 0);
}

static dsdr_kset *ident_set(dsdr_shard *sh, uint64_t rh)
{
    return &sh->ks[rh & (DSDR_KCACHE / DSDR_KCACHE_WAYS - 1)];
}

/* The miss: split, sort and encode the tags into the shard's key, and
 * remember it in set's least recently used way (none when set is NULL). */
static int add_built(dsdr_agg *a, dsdr_shard *sh, bool counter, const ot_dsd_item *it,
                     dsdr_kset *set, size_t rn, uint64_t rh)
{
    const ot_dsd_metric *m = &it->u.metric;
    size_t nres, nat;
    ot_dsdr_split_tags(it, sh->res, &nres, sh->attrs, &nat);

    /* The store wants NUL-terminated strings: copy them once into scratch,
     * then point at them (scratch does not move after the copies). */
    ot_buf *b = &sh->scratch;
    b->len = 0;
    size_t name_off, offs[2 * (OT_DSD_MAX_TAGS + 1)];
    copy_z(b, m->name, &name_off);
    for (size_t i = 0; i < nres; i++) {
        copy_z(b, sh->res[i].k, &offs[2 * i]);
        copy_z(b, sh->res[i].v, &offs[2 * i + 1]);
    }
    size_t base = 2 * nres;
    for (size_t i = 0; i < nat; i++) {
        copy_z(b, sh->attrs[i].k, &offs[base + 2 * i]);
        copy_z(b, sh->attrs[i].v, &offs[base + 2 * i + 1]);
    }
    if (b->oom)
        return -1;
    const char *rk[OT_DSD_MAX_TAGS + 1], *rv[OT_DSD_MAX_TAGS + 1];
    const char *ak[OT_DSD_MAX_TAGS + 1], *av[OT_DSD_MAX_TAGS + 1];
    for (size_t i = 0; i < nres; i++) {
        rk[i] = b->data + offs[2 * i];
        rv[i] = b->data + offs[2 * i + 1];
    }
    for (size_t i = 0; i < nat; i++) {
        ak[i] = b->data + offs[base + 2 * i];
        av[i] = b->data + offs[base + 2 * i + 1];
    }
    ot_mstore_metric mm = {
        .name = b->data + name_off,
        .type = counter ? OT_MSTORE_SUM : OT_MSTORE_GAUGE,
        .temporality = counter ? (a->o.temporality == DSDR_CUMULATIVE ? 2 : 1) : 0,
        .monotonic = counter,
        /* the DogStatsD type keeps a set and a gauge of one name apart */
        .scope_name = ot_dsd_type_name(m->type),
    };
    if (ot_mstore_key_base(&sh->key, rk, rv, nres, &mm) < 0 ||
        ot_mstore_key_point_strs(&sh->key, ak, av, nat) < 0)
        return -1;
    if (!set)
        return add_keyed(a, sh, counter, &sh->key, it);
    /* An empty way, else the least recently used; but a full set takes a
     * newcomer only one miss in 32, unless that way has gone unused for
     * four times the cache's size in lookups (a series that stopped).
     * Series that cycle (each reported once an interval) through more
     * than the cache holds would otherwise each evict the one the next
     * line needs: no line ever hit, and every miss paid for a copy too.
     * Admitting few keeps most entries in place long enough to be hit
     * (about the cache's share of the series; at 100k series, 10 lines
     * each, 900 -> 570 ns a line in bench-dsd-agg). */
    int lru = -1;
    uint32_t now = ++sh->kc_uses;
    for (int way = 0; way < DSDR_KCACHE_WAYS; way++) {
        if (!set->e[way]) {
            lru = way;
            break;
        }
        if (lru < 0 || (uint32_t)(now - set->used[way]) > (uint32_t)(now - set->used[lru]))
            lru = way;
    }
    if (set->e[lru] && (uint32_t)(now - set->used[lru]) < 4u * DSDR_KCACHE &&
        (now * 0x9e3779b9u) >> 27 != 0)
        return add_keyed(a, sh, counter, &sh->key, it);
    /* replace whatever shared the way; an entry too small is remade */
    dsdr_kent *e = set->e[lru];
    size_t kn = sh->key.buf.len, need = sizeof *e + rn + kn;
    if (!e || need > e->cap) {
        free(e);
        set->e[lru] = e = malloc(need);
        if (!e) {
            set->tag[lru] = 0;
            return add_keyed(a, sh, counter, &sh->key, it);
        }
        e->cap = (uint32_t)need;
    }
    ident_text(it, e->text);
    memcpy(e->text + rn, sh->key.buf.data, kn);
    e->rn = (uint32_t)rn;
    e->kn = (uint32_t)kn;
    e->h = rh;
    set->tag[lru] = (uint32_t)(rh >> 32);
    set->used[lru] = now;
    e->base_len = (uint32_t)sh->key.base_len;
    e->base_hash = sh->key.base_hash;
    e->hash = sh->key.hash;
    int rc = add_keyed(a, sh, counter, &sh->key, it);
    e->base_id = sh->key.base_id; /* what the store matched */
    return rc;
}

/* A metric item whose identity length (0: too long to cache) and hash
 * are known. */
static int add_ident(dsdr_agg *a, dsdr_shard *sh, const ot_dsd_item *it, size_t rn, uint64_t rh)
{
    bool counter = it->u.metric.type == OT_DSD_COUNTER;
    if (!rn)
        return add_built(a, sh, counter, it, NULL, 0, 0);
    dsdr_kset *set = ident_set(sh, rh);
    uint32_t tag = (uint32_t)(rh >> 32);
    for (int way = 0; way < DSDR_KCACHE_WAYS; way++) {
        dsdr_kent *e = set->e[way];
        if (set->tag[way] == tag && e && e->h == rh && ident_eq(e, it, rn)) {
            set->used[way] = ++sh->kc_uses;
            return add_cached(a, sh, counter, e, it);
        }
    }
    return add_built(a, sh, counter, it, set, rn, rh);
}

int ot_dsdr_agg_add(dsdr_agg *a, unsigned r, const ot_dsd_item *it)
{
    dsdr_shard *sh = &a->sh[r];
    if (it->kind != OT_DSD_METRIC)
        return 0;
    if (it->has_timestamp)
        return add_timestamped(a, sh, it);
    size_t rn = ident_len(it);
    return add_ident(a, sh, it, rn, rn ? ident_hash(it) : 0);
}

/* ---- the look-ahead (dsdr_ahead) ------------------------------------------ */

static void prefetch_bytes(const void *p, size_t n)
{
    const char *c = p;
    for (size_t o = 0; o < n; o += 64)
        __builtin_prefetch(c + o);
}

/* Joining: the identity and its set, whose line starts loading. */
static void ahead_join(dsdr_shard *sh, dsdr_ahead *q)
{
    q->way = -1;
    q->rn = (uint32_t)ident_len(&q->it);
    q->rh = q->rn ? ident_hash(&q->it) : 0;
    q->set = q->rn ? ident_set(sh, q->rh) : NULL;
    if (q->set)
        __builtin_prefetch(q->set);
}

/* A few lines later: the set has arrived; the entry whose tag matches
 * starts loading (header and identity text). */
static void ahead_set(dsdr_ahead *q)
{
    if (!q->set)
        return;
    uint32_t tag = (uint32_t)(q->rh >> 32);
    for (int way = 0; way < DSDR_KCACHE_WAYS; way++)
        if (q->set->tag[way] == tag && q->set->e[way]) {
            q->way = (int8_t)way;
            prefetch_bytes(q->set->e[way], sizeof(dsdr_kent) + q->rn);
            return;
        }
}

/* Later still: the entry has arrived; its key bytes and the store's slot
 * for its hash start loading. */
static void ahead_entry(dsdr_shard *sh, dsdr_ahead *q)
{
    if (q->way < 0)
        return;
    const dsdr_kent *e = q->set->e[q->way];
    if (!e || e->h != q->rh)
        return;
    prefetch_bytes(e->text + e->rn, e->kn);
    ot_mstore_prefetch(sh->st[q->it.u.metric.type == OT_DSD_COUNTER ? 0 : 1], e->hash);
}

/* How far behind the newest a queued line is when each step runs. */
#define AHEAD_SET 3
#define AHEAD_ENTRY 6

static dsdr_ahead *ahead_at(dsdr_shard *sh, unsigned i)
{
    return &sh->ahead[(sh->ahead_head + i) % DSDR_AHEAD];
}

static void ahead_steps(dsdr_shard *sh)
{
    unsigned n = sh->ahead_n;
    if (n > AHEAD_SET)
        ahead_set(ahead_at(sh, n - 1 - AHEAD_SET));
    if (n > AHEAD_ENTRY)
        ahead_entry(sh, ahead_at(sh, n - 1 - AHEAD_ENTRY));
}

/* Adds the oldest queued line; 1 when that failed. */
static unsigned ahead_leave(dsdr_agg *a, dsdr_shard *sh)
{
    dsdr_ahead *q = ahead_at(sh, 0);
    sh->ahead_head = (sh->ahead_head + 1) % DSDR_AHEAD;
    sh->ahead_n--;
    return add_ident(a, sh, &q->it, q->rn, q->rh) < 0;
}

static unsigned ahead_drain(dsdr_agg *a, dsdr_shard *sh)
{
    unsigned failed = 0;
    while (sh->ahead_n) {
        failed += ahead_leave(a, sh);
        ahead_steps(sh);
    }
    return failed;
}

unsigned ot_dsdr_agg_push(dsdr_agg *a, unsigned r, const ot_dsd_item *it)
{
    dsdr_shard *sh = &a->sh[r];
    if (it->kind != OT_DSD_METRIC)
        return 0;
    const ot_dsd_metric *m = &it->u.metric;
    if (it->has_timestamp || m->nvalues != 1) {
        unsigned failed = ahead_drain(a, sh);
        return failed + (ot_dsdr_agg_add(a, r, it) < 0);
    }
    unsigned failed = sh->ahead_n == DSDR_AHEAD ? ahead_leave(a, sh) : 0;
    dsdr_ahead *q = ahead_at(sh, sh->ahead_n++);
    q->it = *it;
    if (m->type != OT_DSD_SET) {
        /* the one value, out of the parser's buffer the next line reuses */
        q->value = m->values[0];
        q->sign = m->explicit_sign[0];
        q->it.u.metric.values = &q->value;
        q->it.u.metric.explicit_sign = &q->sign;
    }
    ahead_join(sh, q);
    ahead_steps(sh);
    return failed;
}

unsigned ot_dsdr_agg_end(dsdr_agg *a, unsigned r)
{
    unsigned failed = ahead_drain(a, &a->sh[r]);
    atomic_store(&a->sh[r].busy, 0);
    return failed;
}

void ot_dsdr_agg_stats(dsdr_agg *a, dsdr_agg_stats *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < a->n; i++)
        for (int k = 0; k < 2; k++) {
            ot_mstore_stats s;
            ot_mstore_stats_get(a->sh[i].st[k], &s);
            out->series += s.streams;
            out->refused += s.refused;
        }
    out->refused += atomic_load(&a->refused);
    out->ts_dropped = atomic_load(&a->ts_dropped);
    out->sampled = atomic_load(&a->budget.sampled);
    out->sample_bytes = atomic_load(&a->budget.held);
}

/* The flush's half of the epoch protocol: after this, no reader writes
 * the closed epoch's slots. */
uint64_t ot_dsdr_agg_close_epoch(dsdr_agg *a)
{
    uint64_t e = atomic_fetch_add(&a->epoch, 1);
    for (unsigned i = 0; i < a->n; i++)
        while (atomic_load(&a->sh[i].busy) == e)
            sched_yield();
    return e;
}
