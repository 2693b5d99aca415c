/* ottl.c: the OTTL condition subset (see ottl.h). A hand-written lexer and
 * recursive-descent parser build a small tree in the condition's own arena;
 * paths are resolved to (object, field, keys) and regexes compiled at parse
 * time, so evaluation only walks the tree, reads fields and scans attribute
 * arrays. Type errors that OTTL would only find at run time are reported at
 * parse time wherever the types are known then (literals, fixed fields). */
#include "ottl/ottl.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/codec.h"
#include "base/clock.h"
#include "base/log.h"

/* ---- values ------------------------------------------------------------- */

/* Value types; T_ANY only as a static type (known when the data is seen). */
enum { T_ANY, T_NIL, T_STR, T_INT, T_DBL, T_BOOL, T_BYTES, T_MAP, T_LIST };

static const char *const type_names[] = {"any value", "nil",   "a string", "an int", "a float",
                                         "a bool",    "bytes", "a map",    "a list"};

typedef struct val {
    int t;
    union {
        struct {
            const char *p;
            size_t n;
        } s; /* T_STR, T_BYTES */
        int64_t i;
        double d;
        bool b;
        struct {
            ot_keyvalue *const *kv;
            size_t n;
        } m;
        struct {
            ot_anyvalue *const *v;
            size_t n;
        } l;
    } u;
} val;

/* Scratch space a value may point into (hex of an id, a number as text). */
#define SCRATCH 128

/* ---- the tree ----------------------------------------------------------- */

enum { K_OR, K_AND, K_NOT, K_CMP, K_TEST, K_LIT, K_PATH, K_FN };
enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };
static const char *const op_names[] = {"==", "!=", "<", "<=", ">", ">="};

enum {
    FN_ISMATCH,
    FN_ISSTRING,
    FN_ISINT,
    FN_ISDOUBLE,
    FN_ISBOOL,
    FN_ISMAP,
    FN_ISLIST,
    FN_LEN,
    FN_TRACEID,
    FN_SPANID,
    FN_ISROOTSPAN,
};

typedef struct fndef {
    const char *name;
    int id;
    int nargs;
    int type; /* result */
} fndef;

static const fndef fns[] = {
    {"IsMatch", FN_ISMATCH, 2, T_BOOL},   {"IsString", FN_ISSTRING, 1, T_BOOL},
    {"IsInt", FN_ISINT, 1, T_BOOL},       {"IsDouble", FN_ISDOUBLE, 1, T_BOOL},
    {"IsBool", FN_ISBOOL, 1, T_BOOL},     {"IsMap", FN_ISMAP, 1, T_BOOL},
    {"IsList", FN_ISLIST, 1, T_BOOL},     {"Len", FN_LEN, 1, T_INT},
    {"TraceID", FN_TRACEID, 1, T_BYTES},  {"SpanID", FN_SPANID, 1, T_BYTES},
    {"IsRootSpan", FN_ISROOTSPAN, 0, T_BOOL},
};
#define N_FNS (sizeof fns / sizeof fns[0])

/* Objects a path reads from, and their fields. */
enum { O_RESOURCE, O_SCOPE, O_SPAN, O_EVENT, O_METRIC, O_POINT, O_LOG };
enum {
    F_ATTRS,
    F_DROPPED_ATTRS,
    F_NAME,
    F_VERSION,
    F_TRACE_ID,
    F_SPAN_ID,
    F_PARENT_SPAN_ID,
    F_TRACE_ID_STR,
    F_SPAN_ID_STR,
    F_PARENT_SPAN_ID_STR,
    F_TRACE_STATE,
    F_KIND,
    F_START,
    F_END,
    F_TIME,
    F_OBSERVED,
    F_STATUS_CODE,
    F_STATUS_MSG,
    F_FLAGS,
    F_DROPPED_EVENTS,
    F_DROPPED_LINKS,
    F_DESCRIPTION,
    F_UNIT,
    F_TYPE,
    F_TEMPORALITY,
    F_MONOTONIC,
    F_VALUE_DOUBLE,
    F_VALUE_INT,
    F_COUNT,
    F_SUM,
    F_SEV_NUM,
    F_SEV_TEXT,
    F_BODY,
    F_EVENT_NAME,
};

typedef struct pkey {
    bool is_int;
    int64_t i;
    const char *s; /* NUL-terminated, in the arena */
    size_t slen;
} pkey;

typedef struct node node;
struct node {
    int kind;
    int op;   /* K_CMP: OP_*; K_FN: FN_* */
    int type; /* static type of a value node */
    size_t pos;
    node **kids; /* K_OR/K_AND: n; K_NOT, K_TEST: 1; K_CMP: 2; K_FN: args */
    size_t n;
    val lit;                /* K_LIT */
    int obj, field;         /* K_PATH */
    const char *path_name;  /* K_PATH, for messages */
    pkey *keys;             /* K_PATH */
    size_t nkeys;
    pcre2_code *re;         /* FN_ISMATCH */
};

typedef struct re_link {
    pcre2_code *re;
    struct re_link *next;
} re_link;

struct ot_ottl_cond {
    ot_arena *arena;
    node *root;
    char *text;
    ot_ottl_ctx ctx;
    re_link *res;
    pcre2_match_context *mctx;
};

/* ---- paths -------------------------------------------------------------- */

typedef struct pdef {
    const char *name;
    int field;
    int type;
    bool indexable;
} pdef;

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

static const char *const ctx_names[OT_OTTL_CTX_COUNT] = {"span", "spanevent", "metric",
                                                         "datapoint", "log"};

const char *ot_ottl_ctx_name(ot_ottl_ctx c)
{
    return (unsigned)c < OT_OTTL_CTX_COUNT ? ctx_names[c] : "?";
}

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

/* ---- lexer -------------------------------------------------------------- */

enum {
    TK_EOF,
    TK_IDENT,
    TK_STR,
    TK_INT,
    TK_FLOAT,
    TK_BYTES,
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACK,
    TK_RBRACK,
    TK_COMMA,
    TK_DOT,
    TK_OP,
    TK_BAD,
};

typedef struct token {
    int k;
    size_t pos, len;
    int op;
} token;

#define MAX_DEPTH 32
#define MAX_TEXT 65536

typedef struct parser {
    const char *s;
    size_t n;
    size_t pos; /* lexer position: just after tok */
    token tok;
    ot_arena *a;
    ot_ottl_cond *cond;
    ot_ottl_ctx ctx;
    ot_ottl_diag *err;
    ot_ottl_diag *warn;
    int depth;
    bool failed;
} parser;

static void fail(parser *p, size_t pos, const char *fmt, ...) OT_PRINTF(3, 4);
static void fail(parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    p->err->offset = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
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

static bool ident_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static void lex(parser *p)
{
    const char *s = p->s;
    size_t i = p->pos, n = p->n;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    token t = {TK_EOF, i, 0, 0};
    if (i >= n) {
        p->tok = t;
        p->pos = i;
        return;
    }
    char c = s[i];
    size_t j = i + 1;
    switch (c) {
    case '(': t.k = TK_LPAREN; break;
    case ')': t.k = TK_RPAREN; break;
    case '[': t.k = TK_LBRACK; break;
    case ']': t.k = TK_RBRACK; break;
    case ',': t.k = TK_COMMA; break;
    case '=':
    case '!':
    case '<':
    case '>':
        if (j < n && s[j] == '=') {
            t.k = TK_OP;
            t.op = c == '=' ? OP_EQ : c == '!' ? OP_NE : c == '<' ? OP_LE : OP_GE;
            j++;
        } else if (c == '<' || c == '>') {
            t.k = TK_OP;
            t.op = c == '<' ? OP_LT : OP_GT;
        } else {
            t.k = TK_BAD;
        }
        break;
    case '"':
        t.k = TK_STR;
        while (j < n && s[j] != '"') {
            if (s[j] == '\\' && j + 1 < n)
                j++;
            j++;
        }
        if (j >= n) {
            t.k = TK_BAD; /* the parser says "unterminated string" */
            j = n;
        } else {
            j++;
        }
        break;
    default:
        if (ident_start(c)) {
            while (j < n && ident_char(s[j]))
                j++;
            t.k = TK_IDENT;
        } else if (isdigit((unsigned char)c) || c == '.' || c == '+' || c == '-') {
            size_t k = i;
            if (c == '+' || c == '-')
                k++;
            if (c == '.' && !(k + 1 < n && isdigit((unsigned char)s[k + 1]))) {
                t.k = TK_DOT;
                break;
            }
            if (k < n && s[k] == '0' && k + 1 < n && (s[k + 1] == 'x' || s[k + 1] == 'X') &&
                k == i) {
                k += 2;
                while (k < n && isxdigit((unsigned char)s[k]))
                    k++;
                t.k = TK_BYTES;
            } else {
                bool digits = false, flt = false;
                while (k < n && isdigit((unsigned char)s[k]))
                    k++, digits = true;
                if (k < n && s[k] == '.') {
                    flt = true;
                    k++;
                    while (k < n && isdigit((unsigned char)s[k]))
                        k++, digits = true;
                }
                if (digits && k < n && (s[k] == 'e' || s[k] == 'E')) {
                    size_t e = k + 1;
                    if (e < n && (s[e] == '+' || s[e] == '-'))
                        e++;
                    if (e < n && isdigit((unsigned char)s[e])) {
                        while (e < n && isdigit((unsigned char)s[e]))
                            e++;
                        k = e;
                        flt = true;
                    }
                }
                t.k = !digits ? TK_BAD : flt ? TK_FLOAT : TK_INT;
            }
            /* "12abc" or "1.5.3" is one bad token, not two good ones. */
            if (t.k != TK_BAD && k < n && (ident_char(s[k]) || s[k] == '.')) {
                t.k = TK_BAD;
                while (k < n && (ident_char(s[k]) || s[k] == '.'))
                    k++;
            }
            j = k > i ? k : i + 1;
        } else {
            t.k = TK_BAD;
            if ((c == '&' || c == '|') && j < n && s[j] == c)
                j++;
            else {
                /* one whole UTF-8 character, so the message shows it */
                while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80)
                    j++;
            }
        }
    }
    t.len = j - i;
    p->tok = t;
    p->pos = j;
}

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

/* ---- literals ----------------------------------------------------------- */

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the string token at p->tok (Go escapes, as OTTL takes them). */
static bool decode_str(parser *p, const char **out, size_t *outlen)
{
    const char *s = p->s + p->tok.pos + 1;
    size_t n = p->tok.len - 2;
    char *o = ot_arena_alloc(p->a, n + 1);
    if (!o) {
        fail(p, p->tok.pos, "out of memory");
        return false;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            o[w++] = s[i];
            continue;
        }
        size_t at = p->tok.pos + 1 + i;
        char e = s[++i];
        int digits = 0;
        switch (e) {
        case 'a': o[w++] = '\a'; break;
        case 'b': o[w++] = '\b'; break;
        case 'f': o[w++] = '\f'; break;
        case 'n': o[w++] = '\n'; break;
        case 'r': o[w++] = '\r'; break;
        case 't': o[w++] = '\t'; break;
        case 'v': o[w++] = '\v'; break;
        case '\\': o[w++] = '\\'; break;
        case '"': o[w++] = '"'; break;
        case '\'': o[w++] = '\''; break;
        case '/': o[w++] = '/'; break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                if (i + 2 < n && s[i + 1] >= '0' && s[i + 1] <= '7' && s[i + 2] >= '0' &&
                    s[i + 2] <= '7' && e <= '3') {
                    o[w++] = (char)((e - '0') * 64 + (s[i + 1] - '0') * 8 + (s[i + 2] - '0'));
                    i += 2;
                    break;
                }
            }
            fail(p, at, "invalid escape \"\\%c\" in string", e);
            return false;
        }
        if (digits) {
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = i + 1 + (size_t)k < n ? ot_hex_digit((unsigned char)s[i + 1 + k]) : -1;
                if (h < 0) {
                    fail(p, at, "invalid escape in string: \\%c needs %d hex digits", e, digits);
                    return false;
                }
                cp = cp * 16 + (uint32_t)h;
            }
            i += (size_t)digits;
            if (e == 'x') {
                o[w++] = (char)cp;
            } else {
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                    fail(p, at, "invalid escape in string: U+%04" PRIX32 " is not a character",
                         cp);
                    return false;
                }
                /* at most 4 bytes out for at least 6 in */
                w += put_utf8(o + w, cp);
            }
        }
    }
    o[w] = '\0';
    *out = o;
    *outlen = w;
    return true;
}

static bool decode_hex(parser *p, const char *s, size_t n, size_t pos, const char **out,
                       size_t *outlen)
{
    if (n % 2) {
        fail(p, pos, "a byte string needs an even number of hex digits, found %zu", n);
        return false;
    }
    uint8_t *o = ot_arena_alloc(p->a, n / 2 + 1);
    if (!o) {
        fail(p, pos, "out of memory");
        return false;
    }
    size_t good = ot_hex_decode(s, n, o);
    if (good != n / 2) {
        fail(p, pos, "expected hex digits, found \"%.*s\"", 2, s + 2 * good);
        return false;
    }
    *out = (const char *)o;
    *outlen = n / 2;
    return true;
}

/* ---- parser ------------------------------------------------------------- */

static node *new_node(parser *p, int kind, size_t pos)
{
    node *n = ot_arena_calloc(p->a, sizeof *n);
    if (!n) {
        fail(p, pos, "out of memory");
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
            fail(p, kid->pos, "out of memory");
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

/* Finds a path by its dotted name in the parser's context. */
static const pdef *find_path(parser *p, const char *name, int *obj)
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
static void nearest_path(parser *p, const char *name, char *out, size_t cap)
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

static node *p_path(parser *p)
{
    char fbuf[96];
    size_t start = p->tok.pos;
    size_t end = p->tok.pos + p->tok.len;
    lex(p);
    while (p->tok.k == TK_DOT) {
        lex(p);
        if (p->tok.k != TK_IDENT) {
            fail(p, p->tok.pos, "expected a field name after \".\", found %s", FOUND(p));
            return NULL;
        }
        end = p->tok.pos + p->tok.len;
        lex(p);
    }
    /* The name without any blanks written around the dots. */
    char name[128];
    size_t w = 0;
    for (size_t i = start; i < end; i++)
        if (p->s[i] != ' ' && p->s[i] != '\t' && p->s[i] != '\n' && p->s[i] != '\r') {
            if (w + 1 >= sizeof name) {
                fail(p, start, "path too long");
                return NULL;
            }
            name[w++] = p->s[i];
        }
    name[w] = '\0';
    if (p->tok.k == TK_LPAREN) {
        fail(p, start, "unknown function \"%s\"; a condition can call IsMatch, IsString, IsInt, "
                       "IsDouble, IsBool, IsMap, IsList, Len, TraceID, SpanID, IsRootSpan",
             name);
        return NULL;
    }
    int obj = 0;
    const pdef *d = find_path(p, name, &obj);
    if (!d) {
        char near[128];
        nearest_path(p, name, near, sizeof near);
        if (near[0])
            fail(p, start, "unknown path \"%s\" in the %s context (did you mean \"%s\"?)", name,
                 ctx_names[p->ctx], near);
        else
            fail(p, start, "unknown path \"%s\" in the %s context", name, ctx_names[p->ctx]);
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
            fail(p, kpos, "%s is %s and cannot be indexed", name, type_names[d->type]);
            return NULL;
        }
        lex(p);
        pkey k = {0};
        if (p->tok.k == TK_STR) {
            if (!decode_str(p, &k.s, &k.slen))
                return NULL;
        } else if (p->tok.k == TK_INT) {
            char *e;
            errno = 0;
            char num[32];
            snprintf(num, sizeof num, "%.*s", (int)(p->tok.len < 31 ? p->tok.len : 31),
                     p->s + p->tok.pos);
            k.i = strtoll(num, &e, 10);
            if (errno || k.i < 0) {
                fail(p, p->tok.pos, "expected a list index from 0, found %s", FOUND(p));
                return NULL;
            }
            k.is_int = true;
            if (n->nkeys == 0 && d->type == T_MAP) {
                fail(p, p->tok.pos, "%s is a map: index it with a string key", name);
                return NULL;
            }
        } else {
            fail(p, p->tok.pos, "expected a string key or an int index, found %s", FOUND(p));
            return NULL;
        }
        lex(p);
        if (p->tok.k != TK_RBRACK) {
            fail(p, p->tok.pos, "expected \"]\", found %s", FOUND(p));
            return NULL;
        }
        lex(p);
        if (n->nkeys == cap) {
            size_t nc = cap ? cap * 2 : 2;
            pkey *v = ot_arena_alloc(p->a, nc * sizeof *v);
            if (!v) {
                fail(p, kpos, "out of memory");
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

static bool is_literal(const node *n, int t)
{
    return n->kind == K_LIT && n->lit.t == t;
}

static void compile_regex(parser *p, node *fn)
{
    node *pat = fn->kids[1];
    if (!is_literal(pat, T_STR)) {
        fail(p, pat->pos, "IsMatch: the pattern must be a string literal, found %s",
             pat->kind == K_LIT ? type_names[pat->lit.t] : "a path or a function");
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
        fail(p, at, "IsMatch: invalid regex: %s", (const char *)msg);
        return;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    re_link *l = ot_arena_calloc(p->a, sizeof *l);
    if (!l) {
        pcre2_code_free(re);
        fail(p, fn->pos, "out of memory");
        return;
    }
    l->re = re;
    l->next = p->cond->res;
    p->cond->res = l;
    fn->re = re;
}

/* Checks a converter's arguments now, so a bad call is a config error. */
static void check_call(parser *p, node *fn, const fndef *f)
{
    if ((int)fn->n != f->nargs) {
        fail(p, fn->pos, "%s takes %d argument%s, found %zu", f->name, f->nargs,
             f->nargs == 1 ? "" : "s", fn->n);
        return;
    }
    node *a0 = fn->n ? fn->kids[0] : NULL;
    switch (f->id) {
    case FN_ISMATCH:
        if (a0->kind == K_LIT && a0->lit.t != T_STR) {
            fail(p, a0->pos, "IsMatch: expected a path or a string to match, found %s",
                 type_names[a0->lit.t]);
            return;
        }
        if (a0->type == T_MAP || a0->type == T_LIST) {
            fail(p, a0->pos, "IsMatch: expected a string to match, found %s (%s)",
                 type_names[a0->type], a0->path_name ? a0->path_name : "a value");
            return;
        }
        compile_regex(p, fn);
        return;
    case FN_LEN:
        if (a0->type != T_ANY && a0->type != T_STR && a0->type != T_MAP && a0->type != T_LIST) {
            fail(p, a0->pos, "Len: expected a string, a list or a map, found %s",
                 type_names[a0->type]);
        }
        return;
    case FN_TRACEID:
    case FN_SPANID: {
        size_t want = f->id == FN_TRACEID ? 16 : 8;
        if (!is_literal(a0, T_BYTES) || a0->lit.u.s.n != want) {
            fail(p, a0->pos, "%s: expected a byte literal of %zu bytes (0x followed by %zu hex "
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
            fail(p, fn->pos, "IsRootSpan works in the span context only");
        }
        return;
    default:
        return;
    }
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
        fail(p, start,
             "unknown function \"%.*s\"; a condition can call IsMatch, IsString, IsInt, "
             "IsDouble, IsBool, IsMap, IsList, Len, TraceID, SpanID, IsRootSpan",
             (int)(nlen > 40 ? 40 : nlen), p->s + start);
        return NULL;
    }
    lex(p); /* ( */
    lex(p);
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
                lex(p);
                continue;
            }
            if (p->tok.k == TK_RPAREN)
                break;
            fail(p, p->tok.pos, "expected \",\" or \")\" in the arguments of %s, found %s",
                 f->name, FOUND(p));
            return NULL;
        }
    }
    lex(p);
    check_call(p, fn, f);
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
        fail(p, p->tok.pos, "condition nested too deeply (more than %d levels)", MAX_DEPTH);
        return NULL;
    }
    node *n = NULL;
    size_t pos = p->tok.pos;
    const char *ts = p->s + pos;
    switch (p->tok.k) {
    case TK_STR:
        if ((n = lit_node(p, T_STR, pos)) && !decode_str(p, &n->lit.u.s.p, &n->lit.u.s.n))
            n = NULL;
        if (n)
            lex(p);
        break;
    case TK_INT: {
        char num[32];
        if (p->tok.len >= sizeof num) {
            fail(p, pos, "integer out of range: %s", FOUND(p));
            break;
        }
        memcpy(num, ts, p->tok.len);
        num[p->tok.len] = '\0';
        errno = 0;
        char *e;
        long long v = strtoll(num, &e, 10);
        if (errno || *e) {
            fail(p, pos, "integer out of range: %s", FOUND(p));
            break;
        }
        if ((n = lit_node(p, T_INT, pos))) {
            n->lit.u.i = v;
            lex(p);
        }
        break;
    }
    case TK_FLOAT: {
        char num[64];
        if (p->tok.len >= sizeof num) {
            fail(p, pos, "number too long: %s", FOUND(p));
            break;
        }
        memcpy(num, ts, p->tok.len);
        num[p->tok.len] = '\0';
        if ((n = lit_node(p, T_DBL, pos))) {
            n->lit.u.d = strtod(num, NULL);
            lex(p);
        }
        break;
    }
    case TK_BYTES:
        if ((n = lit_node(p, T_BYTES, pos)) &&
            !decode_hex(p, ts + 2, p->tok.len - 2, pos, &n->lit.u.s.p, &n->lit.u.s.n))
            n = NULL;
        if (n && p->tok.len == 2) {
            fail(p, pos, "expected hex digits after 0x");
            n = NULL;
        }
        if (n)
            lex(p);
        break;
    case TK_IDENT:
        if (tok_is(p, "true") || tok_is(p, "false")) {
            if ((n = lit_node(p, T_BOOL, pos))) {
                n->lit.u.b = tok_is(p, "true");
                lex(p);
            }
        } else if (tok_is(p, "nil")) {
            if ((n = lit_node(p, T_NIL, pos)))
                lex(p);
        } else if (tok_is(p, "and") || tok_is(p, "or") || tok_is(p, "not")) {
            fail(p, pos, "expected a value, found %s", FOUND(p));
        } else if (isupper((unsigned char)ts[0])) {
            /* Converter when called, enum otherwise. */
            size_t save = p->pos;
            token t = p->tok;
            lex(p);
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
                        lex(p);
                    }
                    goto out;
                }
            fail(p, pos, "unknown enum %s", FOUND(p));
        } else {
            n = p_path(p);
        }
        break;
    case TK_BAD:
        if (*ts == '"') {
            fail(p, pos, "unterminated string");
            break;
        }
        /* fallthrough */
    default:
        fail(p, pos, "expected a value, found %s", FOUND(p));
    }
out:
    p->depth--;
    return p->failed ? NULL : n;
}

static bool numeric(int t)
{
    return t == T_INT || t == T_DBL;
}

/* OTTL compares mismatched types as "not equal": legal, but a literal of
 * the wrong type is almost always a mistake, so say so. */
static void check_cmp(parser *p, node *c)
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
                fail(p, b->pos, "%s is %zu bytes: expected %zu hex digits, found %zu characters",
                     a->path_name, want, want * 2, hl);
                return;
            }
            if (!decode_hex(p, hex, hl, b->pos, &b->lit.u.s.p, &b->lit.u.s.n))
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
            warn(p, c->pos, "%s is never nil: \"%s nil\" is always %s", type_names[lt == T_NIL ? rt : lt],
                 op, c->op == OP_EQ ? "false" : "true");
        return;
    }
    if (lt != rt && !(numeric(lt) && numeric(rt))) {
        warn(p, c->pos, "comparing %s with %s: \"%s\" is always %s", type_names[lt],
             type_names[rt], op, c->op == OP_NE ? "true" : "false");
        return;
    }
    if ((lt == T_MAP || lt == T_LIST) && c->op != OP_EQ && c->op != OP_NE)
        warn(p, c->pos, "%s has no order: \"%s\" is always false", type_names[lt], op);
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
                    fail(p, pos, "out of memory");
                    return NULL;
                }
                t->kids[0] = l;
                t->n = 1;
            }
            return t;
        }
        fail(p, p->tok.pos, "expected an operator, found %s", FOUND(p));
        return NULL;
    }
    node *c = new_node(p, K_CMP, pos);
    if (!c)
        return NULL;
    c->op = p->tok.op;
    lex(p);
    node *r = p_value(p);
    if (!r)
        return NULL;
    c->kids = ot_arena_alloc(p->a, 2 * sizeof *c->kids);
    if (!c->kids) {
        fail(p, pos, "out of memory");
        return NULL;
    }
    c->kids[0] = l;
    c->kids[1] = r;
    c->n = 2;
    check_cmp(p, c);
    if (p->failed)
        return NULL;
    if (p->tok.k == TK_OP) {
        fail(p, p->tok.pos, "comparisons do not chain: expected \"and\", \"or\" or \")\", found %s",
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
        lex(p);
        node *n = p_or(p);
        if (!n)
            return NULL;
        if (p->tok.k != TK_RPAREN) {
            fail(p, p->tok.pos, "expected \")\" to close the \"(\" at offset %zu, found %s", pos,
                 FOUND(p));
            return NULL;
        }
        lex(p);
        return n;
    }
    return p_cmp(p);
}

static node *p_not(parser *p)
{
    if (tok_is(p, "not")) {
        size_t pos = p->tok.pos;
        if (++p->depth > MAX_DEPTH) {
            fail(p, pos, "condition nested too deeply (more than %d levels)", MAX_DEPTH);
            return NULL;
        }
        lex(p);
        node *k = p_not(p);
        p->depth--;
        if (!k)
            return NULL;
        node *n = new_node(p, K_NOT, pos);
        if (!n)
            return NULL;
        n->kids = ot_arena_alloc(p->a, sizeof *n->kids);
        if (!n->kids) {
            fail(p, pos, "out of memory");
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
        lex(p);
        node *k = kind == K_OR ? p_list(p, K_AND) : p_not(p);
        if (!k || !add_kid(p, n, k, &cap))
            return NULL;
    }
    return n;
}

static node *p_or(parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        fail(p, p->tok.pos, "condition nested too deeply (more than %d levels)", MAX_DEPTH);
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
        fail(&p, 0, "out of memory");
    lex(&p);
    if (p.tok.k == TK_EOF)
        fail(&p, p.tok.pos, "expected a condition, found end of condition");
    if (!p.failed)
        c->root = p_or(&p);
    if (!p.failed && p.tok.k != TK_EOF) {
        if (p.tok.k == TK_RPAREN)
            fail(&p, p.tok.pos, "unbalanced \")\"");
        else
            fail(&p, p.tok.pos, "expected \"and\", \"or\" or end of condition, found %s",
                 FOUND(&p));
    }
    if (!p.failed && c->res) {
        c->mctx = pcre2_match_context_create(NULL);
        if (!c->mctx)
            fail(&p, 0, "out of memory");
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

/* ---- evaluation ---------------------------------------------------------- */

typedef struct ev {
    const ot_ottl_item *it;
    const ot_ottl_cond *c;
    ot_err *err;
} ev;

/* One match-data block per thread, kept across calls: pcre2_match needs
 * one, and making one per item would allocate per item. */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static bool md_key_ok;

static void md_free(void *p)
{
    pcre2_match_data_free(p);
}

static void md_init(void)
{
    md_key_ok = pthread_key_create(&md_key, md_free) == 0;
}

static pcre2_match_data *thread_md(void)
{
    pthread_once(&md_once, md_init);
    if (!md_key_ok)
        return NULL;
    pcre2_match_data *md = pthread_getspecific(md_key);
    if (!md) {
        md = pcre2_match_data_create(1, NULL);
        if (md && pthread_setspecific(md_key, md) != 0) {
            pcre2_match_data_free(md);
            md = NULL;
        }
    }
    return md;
}

static void any_to_val(const ot_anyvalue *a, val *v)
{
    v->t = T_NIL;
    if (!a)
        return;
    switch (a->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        v->t = T_STR;
        v->u.s.p = a->string_value ? a->string_value : "";
        v->u.s.n = strlen(v->u.s.p);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        v->t = T_BOOL;
        v->u.b = a->bool_value;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        v->t = T_INT;
        v->u.i = a->int_value;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        v->t = T_DBL;
        v->u.d = a->double_value;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        v->t = T_LIST;
        v->u.l.v = a->array_value ? a->array_value->values : NULL;
        v->u.l.n = a->array_value ? a->array_value->n_values : 0;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        v->t = T_MAP;
        v->u.m.kv = a->kvlist_value ? a->kvlist_value->values : NULL;
        v->u.m.n = a->kvlist_value ? a->kvlist_value->n_values : 0;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        v->t = T_BYTES;
        v->u.s.p = (const char *)a->bytes_value.data;
        v->u.s.n = a->bytes_value.len;
        break;
    default:
        break;
    }
}

static const ot_anyvalue *map_get(ot_keyvalue *const *kv, size_t n, const char *key, size_t kl)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i] ? kv[i]->key : NULL;
        if (k && k[0] == key[0] && strncmp(k, key, kl) == 0 && k[kl] == '\0')
            return kv[i]->value;
    }
    return NULL;
}

static void set_str(val *v, const char *s)
{
    v->t = T_STR;
    v->u.s.p = s ? s : "";
    v->u.s.n = strlen(v->u.s.p);
}

static void set_int(val *v, int64_t i)
{
    v->t = T_INT;
    v->u.i = i;
}

static void set_bytes(val *v, const ProtobufCBinaryData *b)
{
    v->t = T_BYTES;
    v->u.s.p = (const char *)b->data;
    v->u.s.n = b->len;
}

static void set_hex(val *v, const ProtobufCBinaryData *b, char *scratch)
{
    size_t n = b->len < SCRATCH / 2 ? b->len : SCRATCH / 2 - 1;
    v->t = T_STR;
    v->u.s.p = scratch;
    v->u.s.n = ot_hex_encode(b->data, n, scratch, false);
}

static int64_t metric_type(const ot_metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: return 1;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: return 2;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: return 3;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: return 4;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: return 5;
    default: return 0;
    }
}

static void metric_field(const ot_metric *m, int field, val *v)
{
    switch (field) {
    case F_NAME: set_str(v, m->name); break;
    case F_DESCRIPTION: set_str(v, m->description); break;
    case F_UNIT: set_str(v, m->unit); break;
    case F_TYPE: set_int(v, metric_type(m)); break;
    case F_TEMPORALITY:
        set_int(v, 0);
        if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM && m->sum)
            set_int(v, m->sum->aggregation_temporality);
        else if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM &&
                 m->histogram)
            set_int(v, m->histogram->aggregation_temporality);
        else if (m->data_case ==
                     OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM &&
                 m->exponential_histogram)
            set_int(v, m->exponential_histogram->aggregation_temporality);
        break;
    case F_MONOTONIC:
        v->t = T_BOOL;
        v->u.b = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM && m->sum &&
                 m->sum->is_monotonic;
        break;
    }
}

/* The fields every point type has, at a different place in each struct;
 * false when field is not one of them. count is NULL for number points. */
static bool point_common(val *v, int field, ot_keyvalue **attrs, size_t n_attrs, uint64_t start,
                         uint64_t time, uint32_t flags, const uint64_t *count)
{
    switch (field) {
    case F_ATTRS: v->t = T_MAP, v->u.m.kv = attrs, v->u.m.n = n_attrs; return true;
    case F_START: set_int(v, (int64_t)start); return true;
    case F_TIME: set_int(v, (int64_t)time); return true;
    case F_FLAGS: set_int(v, flags); return true;
    case F_COUNT: /* number points have none: nil */
        if (count)
            set_int(v, (int64_t)*count);
        return true;
    default: return false;
    }
}

static void point_field(const ot_metric *m, const void *pt, int field, val *v)
{
    if (!m || !pt)
        return;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        const ot_number_point *p = pt;
        if (point_common(v, field, p->attributes, p->n_attributes, p->start_time_unix_nano,
                         p->time_unix_nano, p->flags, NULL))
            break;
        switch (field) {
        case F_VALUE_DOUBLE:
            if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
                v->t = T_DBL, v->u.d = p->as_double;
            break;
        case F_VALUE_INT:
            if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
                set_int(v, p->as_int);
            break;
        }
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
        const ot_histogram_point *p = pt;
        if (point_common(v, field, p->attributes, p->n_attributes, p->start_time_unix_nano,
                         p->time_unix_nano, p->flags, &p->count))
            break;
        switch (field) {
        case F_SUM:
            if (p->sum_present_case ==
                OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM)
                v->t = T_DBL, v->u.d = p->sum;
            break;
        }
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
        const ot_exphistogram_point *p = pt;
        if (point_common(v, field, p->attributes, p->n_attributes, p->start_time_unix_nano,
                         p->time_unix_nano, p->flags, &p->count))
            break;
        switch (field) {
        case F_SUM:
            if (p->sum_present_case ==
                OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM)
                v->t = T_DBL, v->u.d = p->sum;
            break;
        }
        break;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: {
        const ot_summary_point *p = pt;
        if (point_common(v, field, p->attributes, p->n_attributes, p->start_time_unix_nano,
                         p->time_unix_nano, p->flags, &p->count))
            break;
        switch (field) {
        case F_SUM: v->t = T_DBL, v->u.d = p->sum; break;
        }
        break;
    }
    default:
        break;
    }
}

static void span_field(const ot_span *s, int field, val *v, char *scratch)
{
    if (!s)
        return;
    switch (field) {
    case F_TRACE_ID: set_bytes(v, &s->trace_id); break;
    case F_SPAN_ID: set_bytes(v, &s->span_id); break;
    case F_PARENT_SPAN_ID: set_bytes(v, &s->parent_span_id); break;
    case F_TRACE_ID_STR: set_hex(v, &s->trace_id, scratch); break;
    case F_SPAN_ID_STR: set_hex(v, &s->span_id, scratch); break;
    case F_PARENT_SPAN_ID_STR: set_hex(v, &s->parent_span_id, scratch); break;
    case F_TRACE_STATE: set_str(v, s->trace_state); break;
    case F_NAME: set_str(v, s->name); break;
    case F_KIND: set_int(v, s->kind); break;
    case F_START: set_int(v, (int64_t)s->start_time_unix_nano); break;
    case F_END: set_int(v, (int64_t)s->end_time_unix_nano); break;
    case F_ATTRS: v->t = T_MAP, v->u.m.kv = s->attributes, v->u.m.n = s->n_attributes; break;
    case F_DROPPED_ATTRS: set_int(v, s->dropped_attributes_count); break;
    case F_DROPPED_EVENTS: set_int(v, s->dropped_events_count); break;
    case F_DROPPED_LINKS: set_int(v, s->dropped_links_count); break;
    case F_STATUS_CODE: set_int(v, s->status ? s->status->code : 0); break;
    case F_STATUS_MSG: set_str(v, s->status ? s->status->message : ""); break;
    case F_FLAGS: set_int(v, s->flags); break;
    }
}

static void log_field(const ot_log_record *l, int field, val *v, char *scratch)
{
    if (!l)
        return;
    switch (field) {
    case F_TIME: set_int(v, (int64_t)l->time_unix_nano); break;
    case F_OBSERVED: set_int(v, (int64_t)l->observed_time_unix_nano); break;
    case F_SEV_NUM: set_int(v, l->severity_number); break;
    case F_SEV_TEXT: set_str(v, l->severity_text); break;
    case F_BODY: any_to_val(l->body, v); break;
    case F_ATTRS: v->t = T_MAP, v->u.m.kv = l->attributes, v->u.m.n = l->n_attributes; break;
    case F_DROPPED_ATTRS: set_int(v, l->dropped_attributes_count); break;
    case F_FLAGS: set_int(v, l->flags); break;
    case F_TRACE_ID: set_bytes(v, &l->trace_id); break;
    case F_SPAN_ID: set_bytes(v, &l->span_id); break;
    case F_TRACE_ID_STR: set_hex(v, &l->trace_id, scratch); break;
    case F_SPAN_ID_STR: set_hex(v, &l->span_id, scratch); break;
    case F_EVENT_NAME: set_str(v, l->event_name); break;
    }
}

static int eval_path(ev *e, const node *n, val *v, char *scratch)
{
    const ot_ottl_item *it = e->it;
    v->t = T_NIL;
    switch (n->obj) {
    case O_RESOURCE:
        if (n->field == F_ATTRS) {
            v->t = T_MAP;
            v->u.m.kv = it->resource ? it->resource->attributes : NULL;
            v->u.m.n = it->resource ? it->resource->n_attributes : 0;
        } else {
            set_int(v, it->resource ? it->resource->dropped_attributes_count : 0);
        }
        break;
    case O_SCOPE: {
        const ot_scope *s = it->scope;
        switch (n->field) {
        case F_ATTRS:
            v->t = T_MAP;
            v->u.m.kv = s ? s->attributes : NULL;
            v->u.m.n = s ? s->n_attributes : 0;
            break;
        case F_NAME: set_str(v, s ? s->name : ""); break;
        case F_VERSION: set_str(v, s ? s->version : ""); break;
        case F_DROPPED_ATTRS: set_int(v, s ? s->dropped_attributes_count : 0); break;
        }
        break;
    }
    case O_SPAN:
        span_field(it->span, n->field, v, scratch);
        break;
    case O_EVENT: {
        const ot_span_event *ee = it->event;
        if (!ee)
            break;
        switch (n->field) {
        case F_NAME: set_str(v, ee->name); break;
        case F_TIME: set_int(v, (int64_t)ee->time_unix_nano); break;
        case F_ATTRS: v->t = T_MAP, v->u.m.kv = ee->attributes, v->u.m.n = ee->n_attributes; break;
        case F_DROPPED_ATTRS: set_int(v, ee->dropped_attributes_count); break;
        }
        break;
    }
    case O_METRIC:
        if (it->metric)
            metric_field(it->metric, n->field, v);
        break;
    case O_POINT:
        point_field(it->metric, it->point, n->field, v);
        if (n->field == F_ATTRS && v->t == T_NIL)
            v->t = T_MAP, v->u.m.kv = NULL, v->u.m.n = 0;
        break;
    case O_LOG:
        log_field(it->log, n->field, v, scratch);
        break;
    }
    for (size_t i = 0; i < n->nkeys; i++) {
        const pkey *k = &n->keys[i];
        if (v->t == T_NIL)
            return 0;
        if (v->t == T_MAP && !k->is_int) {
            any_to_val(map_get(v->u.m.kv, v->u.m.n, k->s, k->slen), v);
        } else if (v->t == T_LIST && k->is_int) {
            if ((uint64_t)k->i >= v->u.l.n)
                return ot_err_set(e->err, "%s: index %" PRId64 " out of range (%zu items)",
                                  n->path_name, k->i, v->u.l.n);
            any_to_val(v->u.l.v[k->i], v);
        } else if (k->is_int) {
            return ot_err_set(e->err, "%s: %s cannot be indexed by [%" PRId64 "]", n->path_name,
                              type_names[v->t], k->i);
        } else {
            return ot_err_set(e->err, "%s: %s cannot be indexed by [\"%s\"]", n->path_name,
                              type_names[v->t], k->s);
        }
    }
    return 0;
}

/* A float as OTTL prints one (Go's shortest 'f' format), for IsMatch. */
static size_t fmt_double(double d, char *out, size_t cap)
{
    if (isnan(d))
        return (size_t)snprintf(out, cap, "NaN");
    if (isinf(d))
        return (size_t)snprintf(out, cap, "%sInf", d > 0 ? "+" : "-");
    char tmp[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    const char *ep = strchr(tmp, 'e');
    int ex = ep ? atoi(ep + 1) : 0;
    int dec = prec - 1 - ex;
    if (dec < 0 && ep) {
        /* An integer beyond the shortest digits: those digits, then zeros
         * (what %f would print is the binary value's exact expansion). */
        size_t n = 0;
        for (const char *p = tmp; p < ep && n + 1 < cap; p++)
            if (*p != '.')
                out[n++] = *p;
        for (int z = 0; z < -dec && n + 1 < cap; z++)
            out[n++] = '0';
        out[n] = '\0';
        return n;
    }
    int w = snprintf(out, cap, "%.*f", dec, d);
    return w < 0 ? 0 : (size_t)w >= cap ? cap - 1 : (size_t)w;
}

static int eval_val(ev *e, const node *n, val *v, char *scratch);

static bool vals_equal(const val *a, const val *b, int depth);

static bool any_equal(const ot_anyvalue *x, const ot_anyvalue *y, int depth)
{
    val a, b;
    any_to_val(x, &a);
    any_to_val(y, &b);
    return vals_equal(&a, &b, depth + 1);
}

static bool vals_equal(const val *a, const val *b, int depth)
{
    if (depth > 16)
        return false;
    if (numeric(a->t) && numeric(b->t)) {
        if (a->t == T_INT && b->t == T_INT)
            return a->u.i == b->u.i;
        double x = a->t == T_INT ? (double)a->u.i : a->u.d;
        double y = b->t == T_INT ? (double)b->u.i : b->u.d;
        return x == y;
    }
    if (a->t != b->t)
        return (a->t == T_NIL && b->t == T_BYTES && b->u.s.n == 0) ||
               (b->t == T_NIL && a->t == T_BYTES && a->u.s.n == 0);
    switch (a->t) {
    case T_NIL: return true;
    case T_BOOL: return a->u.b == b->u.b;
    case T_STR:
    case T_BYTES:
        return a->u.s.n == b->u.s.n && (!a->u.s.n || memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0);
    case T_LIST:
        if (a->u.l.n != b->u.l.n)
            return false;
        for (size_t i = 0; i < a->u.l.n; i++)
            if (!any_equal(a->u.l.v[i], b->u.l.v[i], depth))
                return false;
        return true;
    case T_MAP:
        if (a->u.m.n != b->u.m.n)
            return false;
        for (size_t i = 0; i < a->u.m.n; i++) {
            const ot_keyvalue *kv = a->u.m.kv[i];
            if (!kv || !kv->key)
                return false;
            const ot_anyvalue *o = map_get(b->u.m.kv, b->u.m.n, kv->key, strlen(kv->key));
            if (!o || !any_equal(kv->value, o, depth))
                return false;
        }
        return true;
    }
    return false;
}

static int compare(int op, const val *a, const val *b)
{
    if (op == OP_EQ || op == OP_NE) {
        bool eq = vals_equal(a, b, 0);
        /* NaN is not equal to itself, as in Go */
        return op == OP_EQ ? eq : !eq;
    }
    int c;
    if (numeric(a->t) && numeric(b->t)) {
        if (a->t == T_INT && b->t == T_INT) {
            c = a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
        } else {
            double x = a->t == T_INT ? (double)a->u.i : a->u.d;
            double y = b->t == T_INT ? (double)b->u.i : b->u.d;
            if (isnan(x) || isnan(y))
                return 0;
            c = x < y ? -1 : x > y;
        }
    } else if (a->t != b->t) {
        return 0;
    } else if (a->t == T_STR || a->t == T_BYTES) {
        size_t m = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        c = m ? memcmp(a->u.s.p, b->u.s.p, m) : 0;
        if (c == 0)
            c = a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
        c = c < 0 ? -1 : c > 0;
    } else if (a->t == T_BOOL) {
        c = (int)a->u.b - (int)b->u.b;
    } else {
        return 0; /* nil, maps and lists have no order */
    }
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    case OP_GE: return c >= 0;
    }
    return 0;
}

static int eval_ismatch(ev *e, const node *n, char *scratch)
{
    /* Doubles print in full decimal as OTTL does: 1e-300 needs ~330 chars,
     * more than the scratch space. */
    char dbl[400];
    val v;
    if (eval_val(e, n->kids[0], &v, scratch) < 0)
        return -1;
    const char *s;
    size_t len;
    switch (v.t) {
    case T_STR: s = v.u.s.p, len = v.u.s.n; break;
    case T_INT: len = (size_t)snprintf(scratch, SCRATCH, "%" PRId64, v.u.i), s = scratch; break;
    case T_DBL: len = fmt_double(v.u.d, dbl, sizeof dbl), s = dbl; break;
    case T_BOOL: s = v.u.b ? "true" : "false", len = strlen(s); break;
    case T_BYTES: {
        if (v.u.s.n > SCRATCH / 2 - 1)
            return ot_err_set(e->err, "IsMatch: a %zu-byte value is too long to match as hex",
                              v.u.s.n);
        len = ot_hex_encode((const uint8_t *)v.u.s.p, v.u.s.n, scratch, false);
        s = scratch;
        break;
    }
    default: return 0; /* nil, and maps and lists (which OTTL would match as JSON) */
    }
    pcre2_match_data *md = thread_md();
    if (!md)
        return ot_err_set(e->err, "IsMatch: out of memory");
    int rc = pcre2_match(n->re, (PCRE2_SPTR)s, len, 0, 0, md, e->c->mctx);
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    PCRE2_UCHAR msg[120];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return ot_err_set(e->err, "IsMatch: %s", (const char *)msg);
}

static int eval_fn_bool(ev *e, const node *n, char *scratch)
{
    if (n->op == FN_ISMATCH)
        return eval_ismatch(e, n, scratch);
    if (n->op == FN_ISROOTSPAN) {
        const ot_span *s = e->it->span;
        if (!s)
            return 0;
        for (size_t i = 0; i < s->parent_span_id.len; i++)
            if (s->parent_span_id.data[i])
                return 0;
        return 1;
    }
    val v;
    if (eval_val(e, n->kids[0], &v, scratch) < 0)
        return -1;
    switch (n->op) {
    case FN_ISSTRING: return v.t == T_STR;
    case FN_ISINT: return v.t == T_INT;
    case FN_ISDOUBLE: return v.t == T_DBL;
    case FN_ISBOOL: return v.t == T_BOOL;
    case FN_ISMAP: return v.t == T_MAP;
    case FN_ISLIST: return v.t == T_LIST;
    }
    return 0;
}

static int eval_val(ev *e, const node *n, val *v, char *scratch)
{
    switch (n->kind) {
    case K_LIT:
        *v = n->lit;
        return 0;
    case K_PATH:
        return eval_path(e, n, v, scratch);
    case K_FN:
        if (n->op == FN_LEN) {
            val a;
            if (eval_val(e, n->kids[0], &a, scratch) < 0)
                return -1;
            switch (a.t) {
            case T_STR: set_int(v, (int64_t)a.u.s.n); return 0;
            case T_MAP: set_int(v, (int64_t)a.u.m.n); return 0;
            case T_LIST: set_int(v, (int64_t)a.u.l.n); return 0;
            default:
                return ot_err_set(e->err, "Len: expected a string, a list or a map, found %s",
                                  type_names[a.t]);
            }
        }
        {
            int r = eval_fn_bool(e, n, scratch);
            if (r < 0)
                return -1;
            v->t = T_BOOL;
            v->u.b = r;
            return 0;
        }
    }
    v->t = T_NIL;
    return 0;
}

static int eval_bool(ev *e, const node *n)
{
    char sa[SCRATCH], sb[SCRATCH];
    switch (n->kind) {
    case K_OR:
        for (size_t i = 0; i < n->n; i++) {
            int r = eval_bool(e, n->kids[i]);
            if (r != 0)
                return r;
        }
        return 0;
    case K_AND:
        for (size_t i = 0; i < n->n; i++) {
            int r = eval_bool(e, n->kids[i]);
            if (r <= 0)
                return r;
        }
        return 1;
    case K_NOT: {
        int r = eval_bool(e, n->kids[0]);
        return r < 0 ? r : !r;
    }
    case K_CMP: {
        val a, b;
        if (eval_val(e, n->kids[0], &a, sa) < 0 || eval_val(e, n->kids[1], &b, sb) < 0)
            return -1;
        return compare(n->op, &a, &b);
    }
    case K_TEST: {
        const node *k = n->kids[0];
        if (k->kind == K_LIT)
            return k->lit.u.b;
        return eval_fn_bool(e, k, sa);
    }
    }
    return 0;
}

int ot_ottl_eval(const ot_ottl_cond *c, const ot_ottl_item *it, ot_err *err)
{
    ev e = {it, c, err};
    return eval_bool(&e, c->root);
}

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
            return ot_err_set(err, "%s condition \"%s\": %s at offset %zu", ctx_names[ctx], t,
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
        ot_err e;
        int r = ot_ottl_eval(s->conds[i], it, &e);
        if (r > 0)
            return 1;
        if (r == 0)
            continue;
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
