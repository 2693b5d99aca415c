/* ottl_parse.c: the recursive-descent parser of OTTL conditions, the tables
 * of the names a condition may call (converters) and write (enums), and
 * the public parse/free entry points. It builds the tree in the
 * condition's own arena; paths are resolved and calls and comparisons
 * type-checked by ottl_check.c as each node is made. */
#include "ottl/ottl_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- converters --------------------------------------------------------- */

static const fndef fns[] = {
    {"IsMatch", FN_ISMATCH, 2, T_BOOL},   {"IsString", FN_ISSTRING, 1, T_BOOL},
    {"IsInt", FN_ISINT, 1, T_BOOL},       {"IsDouble", FN_ISDOUBLE, 1, T_BOOL},
    {"IsBool", FN_ISBOOL, 1, T_BOOL},     {"IsMap", FN_ISMAP, 1, T_BOOL},
    {"IsList", FN_ISLIST, 1, T_BOOL},     {"Len", FN_LEN, 1, T_INT},
    {"TraceID", FN_TRACEID, 1, T_BYTES},  {"SpanID", FN_SPANID, 1, T_BYTES},
    {"IsRootSpan", FN_ISROOTSPAN, 0, T_BOOL},
};
#define N_FNS (sizeof fns / sizeof fns[0])

/* ---- enums -------------------------------------------------------------- */

typedef struct enumdef {
    const char *name;
    int64_t v;
} enumdef;

static const enumdef enums[] = {
    {"SPAN_KIND_UNSPECIFIED", 0},
    {"SPAN_KIND_INTERNAL", 1},
    {"SPAN_KIND_SERVER", 2},
    {"SPAN_KIND_CLIENT", 3},
    {"SPAN_KIND_PRODUCER", 4},
    {"SPAN_KIND_CONSUMER", 5},
    {"STATUS_CODE_UNSET", 0},
    {"STATUS_CODE_OK", 1},
    {"STATUS_CODE_ERROR", 2},
    {"SEVERITY_NUMBER_UNSPECIFIED", 0},
    {"SEVERITY_NUMBER_TRACE", 1},
    {"SEVERITY_NUMBER_TRACE2", 2},
    {"SEVERITY_NUMBER_TRACE3", 3},
    {"SEVERITY_NUMBER_TRACE4", 4},
    {"SEVERITY_NUMBER_DEBUG", 5},
    {"SEVERITY_NUMBER_DEBUG2", 6},
    {"SEVERITY_NUMBER_DEBUG3", 7},
    {"SEVERITY_NUMBER_DEBUG4", 8},
    {"SEVERITY_NUMBER_INFO", 9},
    {"SEVERITY_NUMBER_INFO2", 10},
    {"SEVERITY_NUMBER_INFO3", 11},
    {"SEVERITY_NUMBER_INFO4", 12},
    {"SEVERITY_NUMBER_WARN", 13},
    {"SEVERITY_NUMBER_WARN2", 14},
    {"SEVERITY_NUMBER_WARN3", 15},
    {"SEVERITY_NUMBER_WARN4", 16},
    {"SEVERITY_NUMBER_ERROR", 17},
    {"SEVERITY_NUMBER_ERROR2", 18},
    {"SEVERITY_NUMBER_ERROR3", 19},
    {"SEVERITY_NUMBER_ERROR4", 20},
    {"SEVERITY_NUMBER_FATAL", 21},
    {"SEVERITY_NUMBER_FATAL2", 22},
    {"SEVERITY_NUMBER_FATAL3", 23},
    {"SEVERITY_NUMBER_FATAL4", 24},
    {"METRIC_DATA_TYPE_NONE", 0},
    {"METRIC_DATA_TYPE_GAUGE", 1},
    {"METRIC_DATA_TYPE_SUM", 2},
    {"METRIC_DATA_TYPE_HISTOGRAM", 3},
    {"METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM", 4},
    {"METRIC_DATA_TYPE_SUMMARY", 5},
    {"AGGREGATION_TEMPORALITY_UNSPECIFIED", 0},
    {"AGGREGATION_TEMPORALITY_DELTA", 1},
    {"AGGREGATION_TEMPORALITY_CUMULATIVE", 2},
};
#define N_ENUMS (sizeof enums / sizeof enums[0])

#define MAX_DEPTH 32
#define MAX_TEXT 65536

static bool tok_is(const parser *p, const char *word)
{
    size_t l = strlen(word);
    return p->tok.k == TK_IDENT && p->tok.len == l && memcmp(p->s + p->tok.pos, word, l) == 0;
}

/* `"=" ` / `end of condition`, for "expected X, found Y". */
static const char *found(parser *p, char *buf, size_t cap)
{
    const token *t = &p->tok;
    if (t->k == TK_EOF)
        return "end of condition";
    size_t l = t->len > 40 ? 40 : t->len;
    const char *hint = "";
    if (t->k == TK_BAD) {
        const char *s = p->s + t->pos;
        if (t->len == 2 && s[0] == '&')
            hint = " (use \"and\")";
        else if (t->len == 2 && s[0] == '|')
            hint = " (use \"or\")";
        else if (t->len == 1 && s[0] == '!')
            hint = " (use \"not\" or \"!=\")";
        else if (t->len == 1 && s[0] == '=')
            hint = " (use \"==\")";
        else if (t->len == 1 && s[0] == '\'')
            hint = " (strings take double quotes)";
    }
    snprintf(buf, cap, "\"%.*s%s\"%s", (int)l, p->s + t->pos, t->len > l ? "..." : "", hint);
    return buf;
}

#define FOUND(p) found(p, fbuf, sizeof fbuf)

/* ---- parser ------------------------------------------------------------- */

static node *new_node(parser *p, int kind, size_t pos)
{
    node *n = ot_arena_calloc(p->a, sizeof *n);
    if (!n) {
        ottl_fail(p, pos, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    n->type = T_BOOL;
    return n;
}

static bool add_kid(parser *p, node *n, node *kid, size_t *cap)
{
    if (n->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        node **v = ot_arena_alloc(p->a, nc * sizeof *v);
        if (!v) {
            ottl_fail(p, kid->pos, "out of memory");
            return false;
        }
        if (n->n)
            memcpy(v, n->kids, n->n * sizeof *v);
        n->kids = v;
        *cap = nc;
    }
    n->kids[n->n++] = kid;
    return true;
}

static node *p_or(parser *p);
static node *p_value(parser *p);

static node *p_path(parser *p)
{
    char fbuf[96];
    size_t start = p->tok.pos;
    size_t end = p->tok.pos + p->tok.len;
    ottl_lex(p);
    while (p->tok.k == TK_DOT) {
        ottl_lex(p);
        if (p->tok.k != TK_IDENT) {
            ottl_fail(p, p->tok.pos, "expected a field name after \".\", found %s", FOUND(p));
            return NULL;
        }
        end = p->tok.pos + p->tok.len;
        ottl_lex(p);
    }
    /* The name without any blanks written around the dots. */
    char name[128];
    size_t w = 0;
    for (size_t i = start; i < end; i++)
        if (p->s[i] != ' ' && p->s[i] != '\t' && p->s[i] != '\n' && p->s[i] != '\r') {
            if (w + 1 >= sizeof name) {
                ottl_fail(p, start, "path too long");
                return NULL;
            }
            name[w++] = p->s[i];
        }
    name[w] = '\0';
    if (p->tok.k == TK_LPAREN) {
        ottl_fail(p, start, "unknown function \"%s\"; a condition can call IsMatch, IsString, IsInt, "
                       "IsDouble, IsBool, IsMap, IsList, Len, TraceID, SpanID, IsRootSpan",
             name);
        return NULL;
    }
    int obj = 0;
    const pdef *d = ottl_find_path(p, name, &obj);
    if (!d) {
        char near[128];
        ottl_nearest_path(p, name, near, sizeof near);
        if (near[0])
            ottl_fail(p, start, "unknown path \"%s\" in the %s context (did you mean \"%s\"?)", name,
                 ottl_ctx_names[p->ctx], near);
        else
            ottl_fail(p, start, "unknown path \"%s\" in the %s context", name, ottl_ctx_names[p->ctx]);
        return NULL;
    }
    node *n = new_node(p, K_PATH, start);
    if (!n)
        return NULL;
    n->obj = obj;
    n->field = d->field;
    n->type = d->type;
    n->path_name = ot_arena_strdup(p->a, name);
    size_t cap = 0;
    while (p->tok.k == TK_LBRACK) {
        size_t kpos = p->tok.pos;
        if (!d->indexable) {
            ottl_fail(p, kpos, "%s is %s and cannot be indexed", name, ottl_type_names[d->type]);
            return NULL;
        }
        ottl_lex(p);
        pkey k = {0};
        if (p->tok.k == TK_STR) {
            if (!ottl_decode_str(p, &k.s, &k.slen))
                return NULL;
        } else if (p->tok.k == TK_INT) {
            char *e;
            errno = 0;
            char num[32];
            snprintf(num, sizeof num, "%.*s", (int)(p->tok.len < 31 ? p->tok.len : 31),
                     p->s + p->tok.pos);
            k.i = strtoll(num, &e, 10);
            if (errno || k.i < 0) {
                ottl_fail(p, p->tok.pos, "expected a list index from 0, found %s", FOUND(p));
                return NULL;
            }
            k.is_int = true;
            if (n->nkeys == 0 && d->type == T_MAP) {
                ottl_fail(p, p->tok.pos, "%s is a map: index it with a string key", name);
                return NULL;
            }
        } else {
            ottl_fail(p, p->tok.pos, "expected a string key or an int index, found %s", FOUND(p));
            return NULL;
        }
        ottl_lex(p);
        if (p->tok.k != TK_RBRACK) {
            ottl_fail(p, p->tok.pos, "expected \"]\", found %s", FOUND(p));
            return NULL;
        }
        ottl_lex(p);
        if (n->nkeys == cap) {
            size_t nc = cap ? cap * 2 : 2;
            pkey *v = ot_arena_alloc(p->a, nc * sizeof *v);
            if (!v) {
                ottl_fail(p, kpos, "out of memory");
                return NULL;
            }
            if (n->nkeys)
                memcpy(v, n->keys, n->nkeys * sizeof *v);
            n->keys = v;
            cap = nc;
        }
        n->keys[n->nkeys++] = k;
        n->type = T_ANY;
    }
    return n;
}

static node *p_call(parser *p)
{
    char fbuf[96];
    size_t start = p->tok.pos, nlen = p->tok.len;
    const fndef *f = NULL;
    for (size_t i = 0; i < N_FNS; i++)
        if (strlen(fns[i].name) == nlen && memcmp(fns[i].name, p->s + start, nlen) == 0)
            f = &fns[i];
    if (!f) {
        ottl_fail(p, start,
             "unknown function \"%.*s\"; a condition can call IsMatch, IsString, IsInt, "
             "IsDouble, IsBool, IsMap, IsList, Len, TraceID, SpanID, IsRootSpan",
             (int)(nlen > 40 ? 40 : nlen), p->s + start);
        return NULL;
    }
    ottl_lex(p); /* ( */
    ottl_lex(p);
    node *fn = new_node(p, K_FN, start);
    if (!fn)
        return NULL;
    fn->op = f->id;
    fn->type = f->type;
    size_t cap = 0;
    if (p->tok.k != TK_RPAREN) {
        for (;;) {
            node *a = p_value(p);
            if (!a || !add_kid(p, fn, a, &cap))
                return NULL;
            if (p->tok.k == TK_COMMA) {
                ottl_lex(p);
                continue;
            }
            if (p->tok.k == TK_RPAREN)
                break;
            ottl_fail(p, p->tok.pos, "expected \",\" or \")\" in the arguments of %s, found %s",
                 f->name, FOUND(p));
            return NULL;
        }
    }
    ottl_lex(p);
    ottl_check_call(p, fn, f);
    return p->failed ? NULL : fn;
}

static node *lit_node(parser *p, int t, size_t pos)
{
    node *n = new_node(p, K_LIT, pos);
    if (n)
        n->type = n->lit.t = t;
    return n;
}

static node *p_value(parser *p)
{
    char fbuf[96];
    if (++p->depth > MAX_DEPTH) {
        ottl_fail(p, p->tok.pos, "condition nested too deeply (more than %d levels)", MAX_DEPTH);
        return NULL;
    }
    node *n = NULL;
    size_t pos = p->tok.pos;
    const char *ts = p->s + pos;
    switch (p->tok.k) {
    case TK_STR:
        if ((n = lit_node(p, T_STR, pos)) && !ottl_decode_str(p, &n->lit.u.s.p, &n->lit.u.s.n))
            n = NULL;
        if (n)
            ottl_lex(p);
        break;
    case TK_INT: {
        char num[32];
        if (p->tok.len >= sizeof num) {
            ottl_fail(p, pos, "integer out of range: %s", FOUND(p));
            break;
        }
        memcpy(num, ts, p->tok.len);
        num[p->tok.len] = '\0';
        errno = 0;
        char *e;
        long long v = strtoll(num, &e, 10);
        if (errno || *e) {
            ottl_fail(p, pos, "integer out of range: %s", FOUND(p));
            break;
        }
        if ((n = lit_node(p, T_INT, pos))) {
            n->lit.u.i = v;
            ottl_lex(p);
        }
        break;
    }
    case TK_FLOAT: {
        char num[64];
        if (p->tok.len >= sizeof num) {
            ottl_fail(p, pos, "number too long: %s", FOUND(p));
            break;
        }
        memcpy(num, ts, p->tok.len);
        num[p->tok.len] = '\0';
        if ((n = lit_node(p, T_DBL, pos))) {
            n->lit.u.d = strtod(num, NULL);
            ottl_lex(p);
        }
        break;
    }
    case TK_BYTES:
        if ((n = lit_node(p, T_BYTES, pos)) &&
            !ottl_decode_hex(p, ts + 2, p->tok.len - 2, pos, &n->lit.u.s.p, &n->lit.u.s.n))
            n = NULL;
        if (n && p->tok.len == 2) {
            ottl_fail(p, pos, "expected hex digits after 0x");
            n = NULL;
        }
        if (n)
            ottl_lex(p);
        break;
    case TK_IDENT:
        if (tok_is(p, "true") || tok_is(p, "false")) {
            if ((n = lit_node(p, T_BOOL, pos))) {
                n->lit.u.b = tok_is(p, "true");
                ottl_lex(p);
            }
        } else if (tok_is(p, "nil")) {
            if ((n = lit_node(p, T_NIL, pos)))
                ottl_lex(p);
        } else if (tok_is(p, "and") || tok_is(p, "or") || tok_is(p, "not")) {
            ottl_fail(p, pos, "expected a value, found %s", FOUND(p));
        } else if (isupper((unsigned char)ts[0])) {
            /* Converter when called, enum otherwise. */
            size_t save = p->pos;
            token t = p->tok;
            ottl_lex(p);
            bool call = p->tok.k == TK_LPAREN;
            p->pos = save;
            p->tok = t;
            if (call) {
                n = p_call(p);
                break;
            }
            for (size_t i = 0; i < N_ENUMS; i++)
                if (strlen(enums[i].name) == t.len && memcmp(enums[i].name, ts, t.len) == 0) {
                    if ((n = lit_node(p, T_INT, pos))) {
                        n->lit.u.i = enums[i].v;
                        ottl_lex(p);
                    }
                    goto out;
                }
            ottl_fail(p, pos, "unknown enum %s", FOUND(p));
        } else {
            n = p_path(p);
        }
        break;
    case TK_BAD:
        if (*ts == '"') {
            ottl_fail(p, pos, "unterminated string");
            break;
        }
        /* fallthrough */
    default:
        ottl_fail(p, pos, "expected a value, found %s", FOUND(p));
    }
out:
    p->depth--;
    return p->failed ? NULL : n;
}

/* A comparison, or a value that is a bool on its own (true, IsMatch(...)). */
static node *p_cmp(parser *p)
{
    char fbuf[96];
    size_t pos = p->tok.pos;
    node *l = p_value(p);
    if (!l)
        return NULL;
    if (p->tok.k != TK_OP) {
        if (l->type == T_BOOL && (l->kind == K_LIT || l->kind == K_FN)) {
            node *t = new_node(p, K_TEST, pos);
            if (t) {
                t->kids = ot_arena_alloc(p->a, sizeof *t->kids);
                if (!t->kids) {
                    ottl_fail(p, pos, "out of memory");
                    return NULL;
                }
                t->kids[0] = l;
                t->n = 1;
            }
            return t;
        }
        ottl_fail(p, p->tok.pos, "expected an operator, found %s", FOUND(p));
        return NULL;
    }
    node *c = new_node(p, K_CMP, pos);
    if (!c)
        return NULL;
    c->op = p->tok.op;
    ottl_lex(p);
    node *r = p_value(p);
    if (!r)
        return NULL;
    c->kids = ot_arena_alloc(p->a, 2 * sizeof *c->kids);
    if (!c->kids) {
        ottl_fail(p, pos, "out of memory");
        return NULL;
    }
    c->kids[0] = l;
    c->kids[1] = r;
    c->n = 2;
    ottl_check_cmp(p, c);
    if (p->failed)
        return NULL;
    if (p->tok.k == TK_OP) {
        ottl_fail(p, p->tok.pos, "comparisons do not chain: expected \"and\", \"or\" or \")\", found %s",
             FOUND(p));
        return NULL;
    }
    return c;
}

static node *p_term(parser *p)
{
    char fbuf[96];
    if (p->tok.k == TK_LPAREN) {
        size_t pos = p->tok.pos;
        ottl_lex(p);
        node *n = p_or(p);
        if (!n)
            return NULL;
        if (p->tok.k != TK_RPAREN) {
            ottl_fail(p, p->tok.pos, "expected \")\" to close the \"(\" at offset %zu, found %s", pos,
                 FOUND(p));
            return NULL;
        }
        ottl_lex(p);
        return n;
    }
    return p_cmp(p);
}

static node *p_not(parser *p)
{
    if (tok_is(p, "not")) {
        size_t pos = p->tok.pos;
        if (++p->depth > MAX_DEPTH) {
            ottl_fail(p, pos, "condition nested too deeply (more than %d levels)", MAX_DEPTH);
            return NULL;
        }
        ottl_lex(p);
        node *k = p_not(p);
        p->depth--;
        if (!k)
            return NULL;
        node *n = new_node(p, K_NOT, pos);
        if (!n)
            return NULL;
        n->kids = ot_arena_alloc(p->a, sizeof *n->kids);
        if (!n->kids) {
            ottl_fail(p, pos, "out of memory");
            return NULL;
        }
        n->kids[0] = k;
        n->n = 1;
        return n;
    }
    return p_term(p);
}

/* and / or: one n-ary node per run, so a long list does not make a deep tree. */
static node *p_list(parser *p, int kind)
{
    const char *word = kind == K_OR ? "or" : "and";
    size_t pos = p->tok.pos;
    node *first = kind == K_OR ? p_list(p, K_AND) : p_not(p);
    if (!first || !tok_is(p, word))
        return first;
    node *n = new_node(p, kind, pos);
    size_t cap = 0;
    if (!n || !add_kid(p, n, first, &cap))
        return NULL;
    while (tok_is(p, word)) {
        ottl_lex(p);
        node *k = kind == K_OR ? p_list(p, K_AND) : p_not(p);
        if (!k || !add_kid(p, n, k, &cap))
            return NULL;
    }
    return n;
}

static node *p_or(parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        ottl_fail(p, p->tok.pos, "condition nested too deeply (more than %d levels)", MAX_DEPTH);
        return NULL;
    }
    node *n = p_list(p, K_OR);
    p->depth--;
    return n;
}

ot_ottl_cond *ot_ottl_parse(ot_ottl_ctx ctx, const char *text, size_t len, ot_ottl_diag *err,
                            ot_ottl_diag *warnp)
{
    char fbuf[96];
    ot_ottl_diag dummy;
    if (!err)
        err = &dummy;
    err->offset = 0;
    err->msg[0] = '\0';
    if (warnp) {
        warnp->offset = 0;
        warnp->msg[0] = '\0';
    }
    if ((unsigned)ctx >= OT_OTTL_CTX_COUNT) {
        snprintf(err->msg, sizeof err->msg, "unknown context");
        return NULL;
    }
    if (len > MAX_TEXT) {
        snprintf(err->msg, sizeof err->msg, "condition longer than %d bytes", MAX_TEXT);
        return NULL;
    }
    ot_ottl_cond *c = calloc(1, sizeof *c);
    if (!c || !(c->arena = ot_arena_new(len * 8 + 1024))) {
        free(c);
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return NULL;
    }
    c->ctx = ctx;
    c->text = ot_arena_strndup(c->arena, text, len);
    parser p = {.s = c->text ? c->text : "", .n = c->text ? len : 0, .a = c->arena, .cond = c,
                .ctx = ctx, .err = err, .warn = warnp};
    if (!c->text)
        ottl_fail(&p, 0, "out of memory");
    ottl_lex(&p);
    if (p.tok.k == TK_EOF)
        ottl_fail(&p, p.tok.pos, "expected a condition, found end of condition");
    if (!p.failed)
        c->root = p_or(&p);
    if (!p.failed && p.tok.k != TK_EOF) {
        if (p.tok.k == TK_RPAREN)
            ottl_fail(&p, p.tok.pos, "unbalanced \")\"");
        else
            ottl_fail(&p, p.tok.pos, "expected \"and\", \"or\" or end of condition, found %s",
                 FOUND(&p));
    }
    if (!p.failed && c->res) {
        c->mctx = pcre2_match_context_create(NULL);
        if (!c->mctx)
            ottl_fail(&p, 0, "out of memory");
        else {
            /* Bounds a pathological pattern to milliseconds per item; the
             * error then goes through error_mode. */
            pcre2_set_match_limit(c->mctx, 1000000);
            pcre2_set_depth_limit(c->mctx, 100000);
            pcre2_set_heap_limit(c->mctx, 8192); /* KiB */
        }
    }
    if (p.failed) {
        ot_ottl_free(c);
        return NULL;
    }
    return c;
}

void ot_ottl_free(ot_ottl_cond *c)
{
    if (!c)
        return;
    for (re_link *l = c->res; l; l = l->next)
        pcre2_code_free(l->re);
    pcre2_match_context_free(c->mctx);
    ot_arena_free(c->arena);
    free(c);
}

const char *ot_ottl_text(const ot_ottl_cond *c)
{
    return c->text;
}

