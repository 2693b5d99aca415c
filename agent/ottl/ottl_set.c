/* ottl_set.c: what the components call beyond one condition: a list of
 * conditions with its error_mode (propagate, ignore with a rate-limited
 * warning, silent), and the checks `otelite validate` runs on the
 * conditions of a config, with each error placed at its line and column.
 * Apart because it is glue between the OTTL core and config/log. */
#include "ottl/ottl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"

/* ---- condition lists ----------------------------------------------------- */

const char *const ot_ottl_errmode_names[] = {"propagate", "ignore", "silent", NULL};

int ot_ottl_set_init(ot_ottl_set *s, ot_ottl_ctx ctx, const ot_strlist *l, ot_ottl_errmode mode,
                     const char *who, ot_err *err)
{
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->who = who ? who : "ottl";
    if (!l || !l->n)
        return 0;
    s->conds = calloc(l->n, sizeof *s->conds);
    if (!s->conds)
        return ot_err_set(err, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        ot_ottl_diag d;
        const char *t = l->v[i] ? l->v[i] : "";
        s->conds[i] = ot_ottl_parse(ctx, t, strlen(t), &d, NULL);
        if (!s->conds[i]) {
            ot_ottl_set_free(s);
            return ot_err_set(err, "%s condition \"%s\": %s at offset %zu", ottl_ctx_names[ctx], t,
                              d.msg, d.offset);
        }
        s->n++;
    }
    return 0;
}

/* A log value in double quotes with \" and \\ escaped, cut to fit. */
static const char *logfmt_quote(char *out, size_t cap, const char *s)
{
    size_t w = 0;
    out[w++] = '"';
    for (; *s && w + 5 < cap; s++) {
        char c = *s == '\n' || *s == '\r' || *s == '\t' ? ' ' : *s;
        if (c == '"' || c == '\\')
            out[w++] = '\\';
        out[w++] = c;
    }
    if (*s) {
        out[w++] = '.';
        out[w++] = '.';
    }
    out[w++] = '"';
    out[w] = '\0';
    return out;
}

int ot_ottl_set_eval(ot_ottl_set *s, const ot_ottl_item *it, ot_err *err)
{
    for (size_t i = 0; i < s->n; i++) {
        const ot_ottl_cond *c = s->conds[i];
        if (it->wire && c->root->wire_cmp) { /* `path == "text"` on the bytes, no evaluator */
            int q = ottl_wire_cmp(it->wire, c->ctx, c->root);
            if (q > 0)
                return 1;
            if (q == 0)
                continue;
        }
        ot_err e;
        int r = ot_ottl_eval(c, it, &e);
        if (r > 0)
            return 1;
        if (r == 0)
            continue;
        if (it->wire && it->wire->declined)
            return OT_OTTL_DECLINED;
        if (s->mode == OT_OTTL_PROPAGATE)
            return ot_err_set(err, "condition \"%s\": %s", s->conds[i]->text, e.msg);
        if (s->mode == OT_OTTL_IGNORE) {
            /* One line a second at most: a bad condition meets every item. */
            int64_t now = ot_now_ns();
            int_fast64_t last = atomic_load_explicit(&s->logged, memory_order_relaxed);
            if ((last == 0 || now - last >= 1000000000) &&
                atomic_compare_exchange_strong(&s->logged, &last, now)) {
                char ct[300], em[300];
                ot_warn(s->who, "condition failed; taken as false", "condition=%s error=%s",
                        logfmt_quote(ct, sizeof ct, s->conds[i]->text),
                        logfmt_quote(em, sizeof em, e.msg));
            }
        }
    }
    return 0;
}

bool ot_ottl_set_wire_ok(const ot_ottl_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!ot_ottl_wire_ok(s->conds[i]))
            return false;
    return true;
}

void ot_ottl_set_free(ot_ottl_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        ot_ottl_free(s->conds[i]);
    free(s->conds);
    s->conds = NULL;
    s->n = 0;
}

/* Column of byte offset off inside a scalar that starts at node's column:
 * YAML columns count characters, and a quoted scalar starts after its quote. */
static int diag_col(const ot_node *n, const char *text, size_t off)
{
    int col = n->col + (n->quoted ? 1 : 0);
    for (size_t i = 0; i < off && text[i]; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80)
            col++;
    return col;
}

size_t ot_ottl_check(ot_ottl_ctx ctx, const char *t, size_t len, const ot_node *n,
                     const char *ipath, ot_diags *d)
{
    ot_ottl_diag e, w;
    ot_ottl_cond *c = ot_ottl_parse(ctx, t, len, &e, &w);
    const ot_ottl_diag *g = c ? &w : &e;
    if (c && !w.msg[0]) {
        ot_ottl_free(c);
        return 0;
    }
    bool ok = c != NULL;
    ot_severity sev = ok ? OT_SEV_WARNING : OT_SEV_ERROR;
    if (n)
        ot_diag_add_at(d, sev, n->file, n->line, diag_col(n, t, g->offset), ipath,
                       "%s at offset %zu", g->msg, g->offset);
    else
        ot_diag_add(d, sev, NULL, ipath, "%s at offset %zu", g->msg, g->offset);
    ot_ottl_free(c);
    return ok ? 0 : 1;
}

size_t ot_ottl_check_list(ot_ottl_ctx ctx, const ot_strlist *l, const char *path, ot_diags *d)
{
    size_t errors = 0;
    char ipath[512];
    if (!l)
        return 0;
    const ot_node *seq = l->node;
    if (seq && seq->kind == OT_NODE_SEQ) {
        /* From the nodes, so each error points at its own item (the walker
         * already reported items that are not strings). */
        for (size_t i = 0; i < seq->n; i++) {
            const ot_node *n = seq->vals[i];
            if (n->kind != OT_NODE_SCALAR)
                continue;
            snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
            errors += ot_ottl_check(ctx, n->str, n->len, n, ipath, d);
        }
        return errors;
    }
    for (size_t i = 0; i < l->n; i++) {
        const char *t = l->v[i] ? l->v[i] : "";
        snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
        errors += ot_ottl_check(ctx, t, strlen(t), seq, ipath, d);
    }
    return errors;
}
