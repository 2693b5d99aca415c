/* filter_wire.c: the filter's decisions made on a batch's protobuf bytes
 * (issue 19). Every span, metric or log record is looked at where it lies
 * in the request; one that matches is cut out, and a scope or resource
 * left empty goes with it, as the decoded walk in filter.c does (that walk
 * stays the reference, and the tests and fuzz_wireproc compare the two).
 * Nothing is decoded: a condition reads its fields from the item's bytes
 * (agent/ottl/ottl_wire.c). What the bytes cannot answer as protobuf-c
 * would (a value that is a map, a resource sent twice) declines before
 * anything is changed, and the caller decodes instead. */
#include "filter_int.h"

#include "model/otlp_wire.h"
#include "model/pbedit.h"

#include <string.h>

enum { FW_OK = 0, FW_DECLINE = OT_WIRE_DECLINED, FW_ERR = 2 };

typedef struct fwalk {
    filter_proc *fp;
    ot_ottl_wire wire;
    ot_ottl_item it;
    size_t items, extra;
    ot_err *err;
} fwalk;

static int item(void *ctx, ot_pbedit *e, const ot_wire_pos *pos, const ot_pbfield *f, bool *drop)
{
    (void)e;
    fwalk *w = ctx;
    ot_ottl_wire_at(&w->wire, pos, f);
    int m = ot_ottl_set_eval(&w->fp->sets[0], &w->it, w->err);
    if (m == OT_OTTL_DECLINED)
        return FW_DECLINE;
    if (m < 0)
        return FW_ERR;
    *drop = m > 0;
    if (!*drop)
        return FW_OK;
    if (w->fp->signal == OT_METRICS) {
        size_t pts;
        if (ot_wire_metric_points(f->val, f->val + f->len, &pts) < 0)
            return FW_DECLINE;
        w->items += pts;
        w->extra++;
    } else {
        w->items++;
    }
    return FW_OK;
}

int filter_wire(filter_proc *fp, ot_batch *b, ot_batch **out, size_t *items, size_t *extra,
                ot_err *err)
{
    *out = b;
    if (b->items == (size_t)-1)
        return FW_DECLINE;
    /* The edits allocate in the batch's arena, which must be ours alone;
     * a shared batch is copied first, as the decoded path would. */
    if (atomic_load_explicit(&b->refs, memory_order_acquire) != 1) {
        b = *out = ot_batch_writable(b, err);
        if (!b)
            return -1;
    }
    fwalk w = {.fp = fp, .err = err};
    w.it.wire = &w.wire;
    ot_pbedit e;
    ot_pbedit_init(&e, b->wire, b->wire_len, b->arena);
    size_t n_res = 0, kept_res = 0;
    int s = ot_wire_walk_items(&e, item, &w, true, &n_res, &kept_res);
    if (s == FW_DECLINE) {
        ot_pbedit_free(&e);
        return FW_DECLINE;
    }
    if (s == FW_ERR) {
        ot_pbedit_free(&e);
        ot_batch_unref(b);
        *out = NULL;
        return -1;
    }
    *items = w.items;
    *extra = w.extra;
    if (!ot_pbedit_changed(&e)) {
        ot_pbedit_free(&e);
        return FW_OK;
    }
    if (n_res && !kept_res) {
        ot_pbedit_free(&e);
        ot_batch_unref(b);
        *out = NULL; /* all of it filtered out: consumed */
        return FW_OK;
    }
    size_t left = b->items >= w.items ? b->items - w.items : 0;
    if (ot_wire_commit(b, &e, left, err) < 0) {
        ot_batch_unref(b);
        *out = NULL;
        return -1;
    }
    return FW_OK;
}

/* ---- as a stage of a longer walk (ot_wire_chain) -------------------------- */

_Static_assert(sizeof(fwalk) <= OT_WIRE_SCRATCH, "fwalk must fit a stage's scratch");

static int stage_begin(void *self, ot_batch *b, void *scratch, ot_err *err)
{
    (void)b;
    fwalk *w = scratch;
    memset(w, 0, sizeof *w);
    w->fp = self;
    w->it.wire = &w->wire;
    w->err = err;
    return 0;
}

static size_t stage_dropped(void *scratch)
{
    return ((fwalk *)scratch)->items;
}

static void stage_done(void *scratch)
{
    fwalk *w = scratch;
    ot_counter_add(w->fp->dropped, w->items);
    if (w->fp->dropped_extra)
        ot_counter_add(w->fp->dropped_extra, w->extra);
}

void filter_wire_stage(filter_proc *fp)
{
    ot_wire_stage *s = &fp->stage;
    s->on = fp->wire_ok;
    s->reads = OT_WIRE_RES_ATTRS | OT_WIRE_ITEM_ATTRS | OT_WIRE_FIELDS;
    s->writes = 0;
    s->drops = true;
    s->next = fp->next;
    s->self = fp;
    s->begin = stage_begin;
    s->item = item;
    s->dropped = stage_dropped;
    s->done = stage_done;
}
