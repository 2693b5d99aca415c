/* ottl_check.c: what an OTTL condition may name and how its parts must
 * type. The path tables of each context resolve a dotted name to (object,
 * field, type); the checks the parser runs on each call and comparison
 * turn what OTTL would only find at run time into config errors or
 * warnings, and compile IsMatch's regex. Apart from the parser: this is
 * the data model's side of the language, the parser the grammar's. */
#include "ottl/ottl_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/codec.h"

const char *const ottl_type_names[] = {"any value", "nil",   "a string", "an int", "a float",
                                       "a bool",    "bytes", "a map",    "a list"};

static const char *const op_names[] = {"==", "!=", "<", "<=", ">", ">="};

/* ---- paths -------------------------------------------------------------- */

static const pdef common_defs[] = {
    {"resource.attributes", F_ATTRS, T_MAP, true},
    {"resource.dropped_attributes_count", F_DROPPED_ATTRS, T_INT, false},
    {"instrumentation_scope.name", F_NAME, T_STR, false},
    {"instrumentation_scope.version", F_VERSION, T_STR, false},
    {"instrumentation_scope.attributes", F_ATTRS, T_MAP, true},
    {"instrumentation_scope.dropped_attributes_count", F_DROPPED_ATTRS, T_INT, false},
    {0},
};

static const pdef span_defs[] = {
    {"trace_id", F_TRACE_ID, T_BYTES, false},
    {"trace_id.string", F_TRACE_ID_STR, T_STR, false},
    {"span_id", F_SPAN_ID, T_BYTES, false},
    {"span_id.string", F_SPAN_ID_STR, T_STR, false},
    {"parent_span_id", F_PARENT_SPAN_ID, T_BYTES, false},
    {"parent_span_id.string", F_PARENT_SPAN_ID_STR, T_STR, false},
    {"trace_state", F_TRACE_STATE, T_STR, false},
    {"name", F_NAME, T_STR, false},
    {"kind", F_KIND, T_INT, false},
    {"start_time_unix_nano", F_START, T_INT, false},
    {"end_time_unix_nano", F_END, T_INT, false},
    {"attributes", F_ATTRS, T_MAP, true},
    {"dropped_attributes_count", F_DROPPED_ATTRS, T_INT, false},
    {"dropped_events_count", F_DROPPED_EVENTS, T_INT, false},
    {"dropped_links_count", F_DROPPED_LINKS, T_INT, false},
    {"status.code", F_STATUS_CODE, T_INT, false},
    {"status.message", F_STATUS_MSG, T_STR, false},
    {"flags", F_FLAGS, T_INT, false},
    {0},
};

static const pdef event_defs[] = {
    {"name", F_NAME, T_STR, false},
    {"time_unix_nano", F_TIME, T_INT, false},
    {"attributes", F_ATTRS, T_MAP, true},
    {"dropped_attributes_count", F_DROPPED_ATTRS, T_INT, false},
    {0},
};

static const pdef metric_defs[] = {
    {"name", F_NAME, T_STR, false},
    {"description", F_DESCRIPTION, T_STR, false},
    {"unit", F_UNIT, T_STR, false},
    {"type", F_TYPE, T_INT, false},
    {"aggregation_temporality", F_TEMPORALITY, T_INT, false},
    {"is_monotonic", F_MONOTONIC, T_BOOL, false},
    {0},
};

static const pdef point_defs[] = {
    {"attributes", F_ATTRS, T_MAP, true},
    {"start_time_unix_nano", F_START, T_INT, false},
    {"time_unix_nano", F_TIME, T_INT, false},
    {"value_double", F_VALUE_DOUBLE, T_ANY, false}, /* nil on points without one */
    {"value_int", F_VALUE_INT, T_ANY, false},
    {"count", F_COUNT, T_ANY, false},
    {"sum", F_SUM, T_ANY, false},
    {"flags", F_FLAGS, T_INT, false},
    {0},
};

static const pdef log_defs[] = {
    {"time_unix_nano", F_TIME, T_INT, false},
    {"observed_time_unix_nano", F_OBSERVED, T_INT, false},
    {"severity_number", F_SEV_NUM, T_INT, false},
    {"severity_text", F_SEV_TEXT, T_STR, false},
    {"body", F_BODY, T_ANY, true},
    {"attributes", F_ATTRS, T_MAP, true},
    {"dropped_attributes_count", F_DROPPED_ATTRS, T_INT, false},
    {"flags", F_FLAGS, T_INT, false},
    {"trace_id", F_TRACE_ID, T_BYTES, false},
    {"trace_id.string", F_TRACE_ID_STR, T_STR, false},
    {"span_id", F_SPAN_ID, T_BYTES, false},
    {"span_id.string", F_SPAN_ID_STR, T_STR, false},
    {"event_name", F_EVENT_NAME, T_STR, false},
    {0},
};

/* A group of paths a context can name. With optional, the prefix may be
 * left out (`name` and `span.name` are the same in the span context); the
 * common group has the object in its names. */
typedef struct pgroup {
    const char *prefix;
    bool optional;
    int obj;
    const pdef *defs;
} pgroup;

static const pgroup groups_span[] = {{"span", true, O_SPAN, span_defs}, {0}};
static const pgroup groups_event[] = {
    {"spanevent", true, O_EVENT, event_defs}, {"span", false, O_SPAN, span_defs}, {0}};
static const pgroup groups_metric[] = {{"metric", true, O_METRIC, metric_defs}, {0}};
static const pgroup groups_point[] = {
    {"datapoint", true, O_POINT, point_defs}, {"metric", false, O_METRIC, metric_defs}, {0}};
static const pgroup groups_log[] = {{"log", true, O_LOG, log_defs}, {0}};

static const pgroup *const ctx_groups[OT_OTTL_CTX_COUNT] = {
    groups_span, groups_event, groups_metric, groups_point, groups_log,
};

const char *const ottl_ctx_names[OT_OTTL_CTX_COUNT] = {"span", "spanevent", "metric",
                                                       "datapoint", "log"};

const char *ot_ottl_ctx_name(ot_ottl_ctx c)
{
    return (unsigned)c < OT_OTTL_CTX_COUNT ? ottl_ctx_names[c] : "?";
}

static void warn(parser *p, size_t pos, const char *fmt, ...) OT_PRINTF(3, 4);
static void warn(parser *p, size_t pos, const char *fmt, ...)
{
    if (!p->warn || p->warn->msg[0])
        return;
    p->warn->offset = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->warn->msg, sizeof p->warn->msg, fmt, ap);
    va_end(ap);
}

/* Finds a path by its dotted name in the parser's context. */
const pdef *ottl_find_path(parser *p, const char *name, int *obj)
{
    for (const pdef *d = common_defs; d->name; d++)
        if (strcmp(d->name, name) == 0) {
            *obj = strncmp(name, "resource.", 9) == 0 ? O_RESOURCE : O_SCOPE;
            return d;
        }
    for (const pgroup *g = ctx_groups[p->ctx]; g->prefix; g++) {
        size_t pl = strlen(g->prefix);
        const char *rest = NULL;
        if (strncmp(name, g->prefix, pl) == 0 && name[pl] == '.')
            rest = name + pl + 1;
        for (const pdef *d = g->defs; d->name; d++) {
            if ((g->optional && strcmp(d->name, name) == 0) || (rest && strcmp(d->name, rest) == 0)) {
                *obj = g->obj;
                return d;
            }
        }
    }
    return NULL;
}

/* "did you mean": the nearest path name of the context, if close. */
void ottl_nearest_path(parser *p, const char *name, char *out, size_t cap)
{
    size_t best = (size_t)-1;
    out[0] = '\0';
    char full[128];
    for (const pdef *d = common_defs; d->name; d++) {
        size_t dist = ot_edit_distance(name, d->name);
        if (dist < best)
            best = dist, snprintf(out, cap, "%s", d->name);
    }
    for (const pgroup *g = ctx_groups[p->ctx]; g->prefix; g++)
        for (const pdef *d = g->defs; d->name; d++) {
            if (g->optional)
                snprintf(full, sizeof full, "%s", d->name);
            else
                snprintf(full, sizeof full, "%s.%s", g->prefix, d->name);
            size_t dist = ot_edit_distance(name, full);
            if (dist < best)
                best = dist, snprintf(out, cap, "%s", full);
        }
    size_t l = strlen(name);
    if (best > 3 && best * 3 > l)
        out[0] = '\0';
}

static bool is_literal(const node *n, int t)
{
    return n->kind == K_LIT && n->lit.t == t;
}

static void compile_regex(parser *p, node *fn)
{
    node *pat = fn->kids[1];
    if (!is_literal(pat, T_STR)) {
        ottl_fail(p, pat->pos, "IsMatch: the pattern must be a string literal, found %s",
             pat->kind == K_LIT ? ottl_type_names[pat->lit.t] : "a path or a function");
        return;
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat->lit.u.s.p, pat->lit.u.s.n,
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        /* eo counts decoded bytes; close enough to point into the literal */
        size_t at = pat->pos + 1 + eo;
        if (at >= p->n)
            at = p->n ? p->n - 1 : 0;
        ottl_fail(p, at, "IsMatch: invalid regex: %s", (const char *)msg);
        return;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    re_link *l = ot_arena_calloc(p->a, sizeof *l);
    if (!l) {
        pcre2_code_free(re);
        ottl_fail(p, fn->pos, "out of memory");
        return;
    }
    l->re = re;
    l->next = p->cond->res;
    p->cond->res = l;
    fn->re = re;
}

/* Checks a converter's arguments now, so a bad call is a config error. */
void ottl_check_call(parser *p, node *fn, const fndef *f)
{
    if ((int)fn->n != f->nargs) {
        ottl_fail(p, fn->pos, "%s takes %d argument%s, found %zu", f->name, f->nargs,
             f->nargs == 1 ? "" : "s", fn->n);
        return;
    }
    node *a0 = fn->n ? fn->kids[0] : NULL;
    switch (f->id) {
    case FN_ISMATCH:
        if (a0->kind == K_LIT && a0->lit.t != T_STR) {
            ottl_fail(p, a0->pos, "IsMatch: expected a path or a string to match, found %s",
                 ottl_type_names[a0->lit.t]);
            return;
        }
        if (a0->type == T_MAP || a0->type == T_LIST) {
            ottl_fail(p, a0->pos, "IsMatch: expected a string to match, found %s (%s)",
                 ottl_type_names[a0->type], a0->path_name ? a0->path_name : "a value");
            return;
        }
        compile_regex(p, fn);
        return;
    case FN_LEN:
        if (a0->type != T_ANY && a0->type != T_STR && a0->type != T_MAP && a0->type != T_LIST) {
            ottl_fail(p, a0->pos, "Len: expected a string, a list or a map, found %s",
                 ottl_type_names[a0->type]);
        }
        return;
    case FN_TRACEID:
    case FN_SPANID: {
        size_t want = f->id == FN_TRACEID ? 16 : 8;
        if (!is_literal(a0, T_BYTES) || a0->lit.u.s.n != want) {
            ottl_fail(p, a0->pos, "%s: expected a byte literal of %zu bytes (0x followed by %zu hex "
                             "digits)",
                 f->name, want, want * 2);
            return;
        }
        /* A constant: fold it into the literal. */
        fn->kind = K_LIT;
        fn->lit = a0->lit;
        fn->type = T_BYTES;
        fn->n = 0;
        return;
    }
    case FN_ISROOTSPAN:
        if (p->ctx != OT_OTTL_SPAN) {
            ottl_fail(p, fn->pos, "IsRootSpan works in the span context only");
        }
        return;
    default:
        return;
    }
}

/* OTTL compares mismatched types as "not equal": legal, but a literal of
 * the wrong type is almost always a mistake, so say so. */
void ottl_check_cmp(parser *p, node *c)
{
    node *l = c->kids[0], *r = c->kids[1];
    /* `trace_id == "5b8e..."`: take the string as hex, as people write ids. */
    for (int side = 0; side < 2; side++) {
        node *a = c->kids[side], *b = c->kids[!side];
        if (a->type == T_BYTES && a->kind == K_PATH && is_literal(b, T_STR)) {
            size_t want = a->field == F_TRACE_ID ? 16 : 8;
            const char *hex = b->lit.u.s.p;
            size_t hl = b->lit.u.s.n;
            if (hl != 0 && hl != want * 2) {
                ottl_fail(p, b->pos, "%s is %zu bytes: expected %zu hex digits, found %zu characters",
                     a->path_name, want, want * 2, hl);
                return;
            }
            if (!ottl_decode_hex(p, hex, hl, b->pos, &b->lit.u.s.p, &b->lit.u.s.n))
                return;
            b->lit.t = b->type = T_BYTES;
        }
    }
    int lt = l->type, rt = r->type;
    if (lt == T_ANY || rt == T_ANY)
        return;
    const char *op = op_names[c->op];
    if (lt == T_NIL || rt == T_NIL) {
        if (c->op != OP_EQ && c->op != OP_NE)
            warn(p, c->pos, "\"%s\" with nil is never true", op);
        else if (lt != rt && lt != T_BYTES && rt != T_BYTES)
            warn(p, c->pos, "%s is never nil: \"%s nil\" is always %s", ottl_type_names[lt == T_NIL ? rt : lt],
                 op, c->op == OP_EQ ? "false" : "true");
        return;
    }
    if (lt != rt && !(ottl_numeric(lt) && ottl_numeric(rt))) {
        warn(p, c->pos, "comparing %s with %s: \"%s\" is always %s", ottl_type_names[lt],
             ottl_type_names[rt], op, c->op == OP_NE ? "true" : "false");
        return;
    }
    if ((lt == T_MAP || lt == T_LIST) && c->op != OP_EQ && c->op != OP_NE)
        warn(p, c->pos, "%s has no order: \"%s\" is always false", ottl_type_names[lt], op);
}
