/* otlp_json_dec_int.h: what the OTLP JSON decoder's two halves share, and
 * nothing else includes: the scanner (otlp_json_scan.c: tokens, value
 * conversion, error messages) and the descriptor walker that builds the
 * messages (otlp_json_decode.c). The whitespace skip is inline here because
 * the walker calls it between every two tokens. */
#ifndef OT_OTLP_JSON_DEC_INT_H
#define OT_OTLP_JSON_DEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "model/otlp_json_int.h"

/* jansson's limit on nested values: kept so what decoded before decodes now */
#define JSON_MAX_DEPTH 2048

/* Error paths stay out of line so the recursive frames stay small. */
#define COLD __attribute__((noinline, cold))

/* The key path of the value being decoded, as a chain of frames on the C
 * stack: rendered only when an error needs it. */
typedef struct pframe {
    const struct pframe *up;
    const char *key; /* NULL: an array index */
    size_t klen;
    size_t idx;
} pframe;

typedef struct jd {
    const char *start, *p, *end;
    ot_arena *arena;
    ot_err *err;
    int depth;  /* messages */
    int jdepth; /* JSON values (objects and arrays) around d->p */
    char *stk; /* scratch stack of array elements */
    size_t stk_len, stk_cap;
    size_t max_bytes; /* arena bytes the decoded request may take */
    int over;         /* max_bytes was reached */
} jd;

/* A scalar token: what a field's value was, for conversion and errors. */
enum { JV_INT, JV_REAL, JV_STR, JV_TRUE, JV_FALSE, JV_NULL, JV_OBJ, JV_ARR };
typedef struct jv {
    int kind;
    int64_t i;
    double r;
    const char *s; /* JV_STR: unescaped content (not NUL-terminated unless owned) */
    size_t len;
    int owned; /* s is a NUL-terminated copy in the arena */
} jv;

static inline void ws(jd *d)
{
    const char *p = d->p, *e = d->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    d->p = p;
}

/* ---- errors: each sets d->err and returns -1 ---- */
int ojd_fail(jd *d, const pframe *pf, const char *fmt, ...) OT_PRINTF(3, 4) COLD;
/* Malformed JSON: where, as line and column, and what. */
int ojd_syntax(jd *d, const char *what) COLD;
int ojd_oom(jd *d, const pframe *pf) COLD;
int ojd_fail_type(jd *d, const pframe *pf, const char *expected, const jv *v) COLD;

/* ---- tokens ---- */
/* The string at d->p ('"'): its raw content and whether it has escapes. */
int ojd_str_scan(jd *d, const char **raw, size_t *rlen, int *esc);
/* Unescapes n raw bytes into o (at most n bytes); returns the length. */
size_t ojd_unescape(const char *s, size_t n, char *o);
/* A scalar at d->p into v (objects and arrays are reported, not read). */
int ojd_read_scalar(jd *d, const pframe *pf, jv *v);
/* Skips (and validates) the value at d->p, jdepth levels deep. */
int ojd_skip_value(jd *d, int jdepth);

/* ---- conversion of a scalar to a field's type ---- */
int ojd_get_i64(jd *d, const pframe *pf, const jv *v, int64_t lo, int64_t hi,
                const char *what, int64_t *out);
int ojd_get_u64(jd *d, const pframe *pf, const jv *v, uint64_t *out);
int ojd_get_double(jd *d, const pframe *pf, const jv *v, double *out);
int ojd_get_hex(jd *d, const pframe *pf, const jv *v, size_t want, ProtobufCBinaryData *out);
int ojd_get_base64(jd *d, const pframe *pf, const jv *v, ProtobufCBinaryData *out);
int ojd_get_enum(jd *d, const pframe *pf, const ProtobufCEnumDescriptor *ed, const jv *v,
                 int32_t *out);

#endif
