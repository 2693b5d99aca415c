/* ottl_int.h: what the files of the OTTL implementation share, and nothing
 * else includes: the value and tree types a parsed condition is made of,
 * the parser's state, and the few functions that cross from one stage to
 * the next (lexer -> parser -> checker; the evaluator reads the tree).
 * The public API is ottl.h. */
#ifndef OT_OTTL_INT_H
#define OT_OTTL_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "ottl/ottl.h"

/* ---- values ------------------------------------------------------------- */

/* Value types; T_ANY only as a static type (known when the data is seen). */
enum { T_ANY, T_NIL, T_STR, T_INT, T_DBL, T_BOOL, T_BYTES, T_MAP, T_LIST };

/* "any value", "nil", "a string", ... by T_* */
extern const char *const ottl_type_names[];

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

/* ---- the tree ----------------------------------------------------------- */

enum { K_OR, K_AND, K_NOT, K_CMP, K_TEST, K_LIT, K_PATH, K_FN };
enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

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
    const void *wire_def;   /* K_PATH: how ottl_wire.c reads it, set by ot_ottl_wire_ok */
    int wire_cmp;           /* K_CMP: 1 + the path kid of `path ==/!= "text"` (ottl_wire_cmp) */
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

/* A path a context can name: its field, static type, and whether [..] applies. */
typedef struct pdef {
    const char *name;
    int field;
    int type;
    bool indexable;
} pdef;

/* "span", "spanevent", ... by ot_ottl_ctx */
extern const char *const ottl_ctx_names[OT_OTTL_CTX_COUNT];

/* ---- tokens and the parser's state -------------------------------------- */

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

/* ---- lexer and literals (ottl_lex.c) ------------------------------------- */

/* Records the first error at byte offset pos; later ones are dropped. */
void ottl_fail(parser *p, size_t pos, const char *fmt, ...) OT_PRINTF(3, 4);

/* Reads the next token into p->tok. */
void ottl_lex(parser *p);

bool ottl_decode_str(parser *p, const char **out, size_t *outlen);
bool ottl_decode_hex(parser *p, const char *s, size_t n, size_t pos, const char **out,
                     size_t *outlen);

/* ---- paths and checks (ottl_check.c) ------------------------------------- */

const pdef *ottl_find_path(parser *p, const char *name, int *obj);
void ottl_nearest_path(parser *p, const char *name, char *out, size_t cap);
void ottl_check_call(parser *p, node *fn, const fndef *f);
void ottl_check_cmp(parser *p, node *c);

/* ---- the wire form (ottl_wire.c) ----------------------------------------- */

/* eval_path for an item given as bytes: 0 with v set, -1 with err set
 * (w->declined when the bytes cannot answer). */
int ottl_wire_path(ot_ottl_wire *w, ot_ottl_ctx ctx, const node *n, val *v, char *scratch,
                   ot_err *err);
/* A comparison marked wire_cmp, decided on the bytes without building
 * values: 1 holds, 0 not, -1 not answered here (evaluate it the usual
 * way, which gives the same answer or declines). */
int ottl_wire_cmp(ot_ottl_wire *w, ot_ottl_ctx ctx, const node *n);
/* IsRootSpan on a span's bytes: 1, 0, or -1 declined. */
int ottl_wire_is_root(ot_ottl_wire *w, ot_err *err);

static inline bool ottl_numeric(int t)
{
    return t == T_INT || t == T_DBL;
}

#endif
