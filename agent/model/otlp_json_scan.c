/* otlp_json_scan.c: the OTLP JSON decoder's scanner (see otlp_json_decode.c
 * for why the decoder is hand-written): tokens, strict JSON grammar and
 * UTF-8, conversion of a scalar to a field's type, and the error messages
 * that name the key path and what was found. */
#include "base/utf8.h"
#include "model/otlp_json_dec_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"

/* ---------------------------------------------------------------- errors */

static void render_path(const pframe *pf, char *out, size_t cap)
{
    const pframe *chain[MAX_DEPTH * 3 + 8];
    size_t n = 0;
    for (; pf && n < sizeof chain / sizeof chain[0]; pf = pf->up)
        chain[n++] = pf;
    size_t o = 0;
    out[0] = '\0';
    while (n--) {
        const pframe *f = chain[n];
        int w;
        if (f->key)
            w = snprintf(out + o, cap - o, "%s%.*s", o ? "." : "", (int)f->klen, f->key);
        else
            w = snprintf(out + o, cap - o, "[%zu]", f->idx);
        if (w < 0 || o + (size_t)w >= cap)
            break; /* a path too long just stops growing */
        o += (size_t)w;
    }
}

int ojd_fail(jd *d, const pframe *pf, const char *fmt, ...)
{
    char msg[384], path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    render_path(pf, path, sizeof path);
    const char *p = path[0] ? path : "(top level)";
    size_t pl = strlen(p);
    if (pl > 200) /* the innermost keys are the useful ones */
        return ot_err_set(d->err, "...%s: %s", p + pl - 200, msg);
    return ot_err_set(d->err, "%s: %s", p, msg);
}

/* Malformed JSON: where, as line and column, and what. */
int ojd_syntax(jd *d, const char *what)
{
    size_t line = 1, col = 0;
    const char *at = d->p < d->end ? d->p : d->end;
    for (const char *q = d->start; q < at; q++) {
        if (*q == '\n')
            line++, col = 0;
        else
            col++;
    }
    return ot_err_set(d->err, "invalid JSON at line %zu, column %zu (offset %zu): %s%s", line,
                      col + 1, (size_t)(at - d->start), what,
                      d->p >= d->end ? " near end of input" : "");
}

int ojd_oom(jd *d, const pframe *pf)
{
    return ojd_fail(d, pf, "out of memory");
}

static COLD void describe(const jv *v, char *out, size_t n)
{
    switch (v->kind) {
    case JV_OBJ: snprintf(out, n, "an object"); break;
    case JV_ARR: snprintf(out, n, "an array"); break;
    case JV_TRUE: snprintf(out, n, "true"); break;
    case JV_FALSE: snprintf(out, n, "false"); break;
    case JV_NULL: snprintf(out, n, "null"); break;
    case JV_INT: snprintf(out, n, "%lld", (long long)v->i); break;
    case JV_REAL: snprintf(out, n, "%.17g", v->r); break;
    case JV_STR: {
        size_t o = 0, i = 0, max = 40;
        out[o++] = '"';
        for (; i < v->len && o + 6 < n; i++) {
            unsigned char c = (unsigned char)v->s[i];
            if (i >= max && (c & 0xC0) != 0x80) /* stop on a character boundary */
                break;
            if (c < 0x20 || c == '"' || c == '\\')
                o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
            else
                out[o++] = (char)c;
        }
        if (i < v->len && o + 4 < n) {
            memcpy(out + o, "...", 3);
            o += 3;
        }
        out[o++] = '"';
        out[o] = '\0';
        break;
    }
    }
}

int ojd_fail_type(jd *d, const pframe *pf, const char *expected, const jv *v)
{
    char found[96];
    describe(v, found, sizeof found);
    return ojd_fail(d, pf, "expected %s, found %s", expected, found);
}

/* ------------------------------------------------------------- tokenizer */


/* 1 for bytes a string scan must stop at: '"', '\\', controls, non-ASCII. */
static const unsigned char str_stop[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x80 ... 0xff] = 1,
};

static int hex4(const char *p, const char *e, unsigned *out)
{
    if (e - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = ot_hex_digit((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Scans the string at d->p (a '"'), checking escapes and UTF-8; raw is
 * its content as written, *esc whether it has escapes. */
int ojd_str_scan(jd *d, const char **raw, size_t *rlen, int *esc)
{
    const unsigned char *p = (const unsigned char *)d->p + 1, *e = (const unsigned char *)d->end;
    const unsigned char *s = p;
    int has_esc = 0;
    for (;;) {
        while (p < e && !str_stop[*p])
            p++;
        if (p >= e) {
            d->p = (const char *)p;
            return ojd_syntax(d, "unterminated string");
        }
        unsigned c = *p;
        if (c == '"')
            break;
        if (c >= 0x80) {
            size_t n = ot_utf8_seq(p, e);
            if (!n) {
                d->p = (const char *)p;
                return ojd_syntax(d, "invalid UTF-8 in a string");
            }
            p += n;
            continue;
        }
        if (c < 0x20) {
            d->p = (const char *)p;
            return ojd_syntax(d, "control character in a string");
        }
        /* a backslash */
        has_esc = 1;
        if (p + 1 >= e) {
            d->p = (const char *)p;
            return ojd_syntax(d, "unterminated string");
        }
        c = p[1];
        if (c == 'u') {
            unsigned u;
            if (hex4((const char *)p + 2, (const char *)e, &u) < 0) {
                d->p = (const char *)p;
                return ojd_syntax(d, "invalid \\u escape");
            }
            p += 6;
            if (u == 0) {
                d->p = (const char *)p - 6;
                return ojd_syntax(d, "\\u0000 is not allowed in a string");
            }
            if (u >= 0xDC00 && u <= 0xDFFF) {
                d->p = (const char *)p - 6;
                return ojd_syntax(d, "lone low surrogate in a \\u escape");
            }
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned lo;
                if (e - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                    hex4((const char *)p + 2, (const char *)e, &lo) < 0 || lo < 0xDC00 ||
                    lo > 0xDFFF) {
                    d->p = (const char *)p - 6;
                    return ojd_syntax(d, "high surrogate not followed by a low one");
                }
                p += 6;
            }
            continue;
        }
        if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' &&
            c != 'r' && c != 't') {
            d->p = (const char *)p;
            return ojd_syntax(d, "invalid escape in a string");
        }
        p += 2;
    }
    *raw = (const char *)s;
    *rlen = (size_t)(p - s);
    *esc = has_esc;
    d->p = (const char *)p + 1;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unescapes content str_scan accepted; never longer than the raw text. */
size_t ojd_unescape(const char *s, size_t n, char *o)
{
    size_t k = 0;
    const char *e = s + n;
    while (s < e) {
        if (*s != '\\') {
            o[k++] = *s++;
            continue;
        }
        char c = s[1];
        s += 2;
        switch (c) {
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u': {
            unsigned u, lo;
            hex4(s, e, &u);
            s += 4;
            if (u >= 0xD800 && u <= 0xDBFF) {
                hex4(s + 2, e, &lo);
                s += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            k += put_utf8(o + k, u);
            break;
        }
        default: o[k++] = c; break; /* " \ / */
        }
    }
    return k;
}

/* The string at d->p as content: in place when it has no escapes, else
 * unescaped into a NUL-terminated arena copy (v->owned). */
static int str_value(jd *d, const pframe *pf, jv *v)
{
    const char *raw;
    size_t rlen;
    int esc;
    if (ojd_str_scan(d, &raw, &rlen, &esc) < 0)
        return -1;
    v->kind = JV_STR;
    if (!esc) {
        v->s = raw;
        v->len = rlen;
        v->owned = 0;
        return 0;
    }
    char *o = ot_arena_alloc(d->arena, rlen + 1);
    if (!o)
        return ojd_oom(d, pf);
    v->len = ojd_unescape(raw, rlen, o);
    o[v->len] = '\0';
    v->s = o;
    v->owned = 1;
    return 0;
}

/* A JSON number (strict grammar). Integers that do not fit 64 bits and
 * reals that overflow a double are errors, as they were with jansson. */
static int num_scan(jd *d, jv *v)
{
    const char *p = d->p, *e = d->end, *s = p;
    int neg = 0, real = 0;
    if (p < e && *p == '-')
        neg = 1, p++;
    if (p >= e || *p < '0' || *p > '9')
        return ojd_syntax(d, "invalid number");
    if (*p == '0') {
        p++;
        if (p < e && *p >= '0' && *p <= '9') {
            d->p = p;
            return ojd_syntax(d, "leading zero in a number");
        }
    } else {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && *p == '.') {
        real = 1;
        p++;
        if (p >= e || *p < '0' || *p > '9') {
            d->p = p;
            return ojd_syntax(d, "invalid number");
        }
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        real = 1;
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9') {
            d->p = p;
            return ojd_syntax(d, "invalid number");
        }
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (!real) {
        uint64_t u = 0;
        for (const char *q = s + neg; q < p; q++) {
            unsigned dg = (unsigned)(*q - '0');
            if (u > (UINT64_MAX - dg) / 10)
                return ojd_syntax(d, "integer too big");
            u = u * 10 + dg;
        }
        if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
            return ojd_syntax(d, "integer too big");
        v->kind = JV_INT;
        v->i = neg ? (int64_t)(0 - u) : (int64_t)u;
        d->p = p;
        return 0;
    }
    char tmp[128], *buf = tmp;
    size_t n = (size_t)(p - s);
    if (n >= sizeof tmp && !(buf = malloc(n + 1)))
        return ot_err_set(d->err, "json decode: out of memory");
    memcpy(buf, s, n);
    buf[n] = '\0';
    double r = strtod(buf, NULL);
    if (buf != tmp)
        free(buf);
    if (isinf(r))
        return ojd_syntax(d, "real number overflow");
    v->kind = JV_REAL;
    v->r = r;
    d->p = p;
    return 0;
}

static int literal(jd *d, const char *word, size_t n)
{
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
        return ojd_syntax(d, "invalid token");
    d->p += n;
    return 0;
}

/* Reads one scalar at d->p. An object or array is reported, not consumed
 * (it is a type error wherever a scalar is wanted). */
int ojd_read_scalar(jd *d, const pframe *pf, jv *v)
{
    if (d->p >= d->end)
        return ojd_syntax(d, "expected a value");
    switch (*d->p) {
    case '"': return str_value(d, pf, v);
    case '{': v->kind = JV_OBJ; return 0;
    case '[': v->kind = JV_ARR; return 0;
    case 't': v->kind = JV_TRUE; return literal(d, "true", 4);
    case 'f': v->kind = JV_FALSE; return literal(d, "false", 5);
    case 'n': v->kind = JV_NULL; return literal(d, "null", 4);
    default:
        if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9'))
            return num_scan(d, v);
        return ojd_syntax(d, "invalid token");
    }
}

/* Validates and steps over one value of any shape (unknown keys). jdepth
 * is the nesting of the value being skipped. */
int ojd_skip_value(jd *d, int jdepth)
{
    jv v;
    if (d->p >= d->end)
        return ojd_syntax(d, "expected a value");
    char c = *d->p;
    if (c != '{' && c != '[') {
        if (c == '"') {
            const char *raw;
            size_t n;
            int esc;
            return ojd_str_scan(d, &raw, &n, &esc);
        }
        return ojd_read_scalar(d, NULL, &v);
    }
    char close = c == '{' ? '}' : ']';
    d->p++;
    ws(d);
    if (d->p < d->end && *d->p == close) {
        d->p++;
        return 0;
    }
    if (jdepth >= JSON_MAX_DEPTH)
        return ojd_syntax(d, "maximum parsing depth reached");
    for (;;) {
        if (close == '}') {
            const char *raw;
            size_t n;
            int esc;
            if (d->p >= d->end || *d->p != '"')
                return ojd_syntax(d, "expected a string key");
            if (ojd_str_scan(d, &raw, &n, &esc) < 0)
                return -1;
            ws(d);
            if (d->p >= d->end || *d->p != ':')
                return ojd_syntax(d, "expected ':'");
            d->p++;
            ws(d);
        }
        if (ojd_skip_value(d, jdepth + 1) < 0)
            return -1;
        ws(d);
        if (d->p < d->end && *d->p == ',') {
            d->p++;
            ws(d);
            continue;
        }
        if (d->p < d->end && *d->p == close) {
            d->p++;
            return 0;
        }
        return ojd_syntax(d, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

/* ------------------------------------------------------------ conversion */

static int str_digits_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0)
        return -1;
    uint64_t u = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned dg = (unsigned)(s[i] - '0');
        if (u > (UINT64_MAX - dg) / 10)
            return -1;
        u = u * 10 + dg;
    }
    *out = u;
    return 0;
}

/* Integer with bounds, from a JSON integer, an integral real or a decimal
 * string (proto3 JSON allows all three for every integer type). */
int ojd_get_i64(jd *d, const pframe *pf, const jv *v, int64_t lo, int64_t hi,
                const char *what, int64_t *out)
{
    int64_t x;
    if (v->kind == JV_INT) {
        x = v->i;
    } else if (v->kind == JV_REAL) {
        double r = v->r;
        if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0) || r != trunc(r))
            return ojd_fail_type(d, pf, what, v);
        x = (int64_t)r;
    } else if (v->kind == JV_STR) {
        int neg = v->len && v->s[0] == '-';
        uint64_t u;
        if (str_digits_u64(v->s + neg, v->len - (size_t)neg, &u) < 0 ||
            (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX))
            return ojd_fail_type(d, pf, what, v);
        x = neg ? (int64_t)(0 - u) : (int64_t)u;
    } else {
        return ojd_fail_type(d, pf, what, v);
    }
    if (x < lo || x > hi)
        return ojd_fail_type(d, pf, what, v);
    *out = x;
    return 0;
}

int ojd_get_u64(jd *d, const pframe *pf, const jv *v, uint64_t *out)
{
    static const char what[] = "an unsigned 64-bit integer (string or number)";
    if (v->kind == JV_STR) {
        if (str_digits_u64(v->s, v->len, out) < 0)
            return ojd_fail_type(d, pf, what, v);
        return 0;
    }
    if (v->kind == JV_REAL) {
        double r = v->r;
        if (!(r >= 0 && r < 18446744073709551616.0) || r != trunc(r))
            return ojd_fail_type(d, pf, what, v);
        *out = (uint64_t)r;
        return 0;
    }
    int64_t x;
    if (ojd_get_i64(d, pf, v, 0, INT64_MAX, what, &x) < 0)
        return -1;
    *out = (uint64_t)x;
    return 0;
}

static int str_is(const jv *v, const char *lit, size_t n)
{
    return v->len == n && memcmp(v->s, lit, n) == 0;
}

int ojd_get_double(jd *d, const pframe *pf, const jv *v, double *out)
{
    static const char what[] = "a number (or \"NaN\", \"Infinity\", \"-Infinity\")";
    if (v->kind == JV_REAL) {
        *out = v->r;
        return 0;
    }
    if (v->kind == JV_INT) {
        *out = (double)v->i;
        return 0;
    }
    if (v->kind != JV_STR)
        return ojd_fail_type(d, pf, what, v);
    if (str_is(v, "NaN", 3)) {
        *out = NAN;
        return 0;
    }
    if (str_is(v, "Infinity", 8)) {
        *out = INFINITY;
        return 0;
    }
    if (str_is(v, "-Infinity", 9)) {
        *out = -INFINITY;
        return 0;
    }
    /* A number in a string: only JSON number characters, so strtod's
     * extras (hex, "inf", spaces) are not let in. */
    char buf[72];
    if (v->len == 0 || v->len > 64)
        return ojd_fail_type(d, pf, what, v);
    memcpy(buf, v->s, v->len);
    buf[v->len] = '\0';
    if (strspn(buf, "0123456789+-.eE") != v->len)
        return ojd_fail_type(d, pf, what, v);
    char *end;
    double r = strtod(buf, &end);
    if (end != buf + v->len || isinf(r))
        return ojd_fail_type(d, pf, what, v);
    *out = r;
    return 0;
}

static COLD int fail_hex(jd *d, const pframe *pf, size_t want, const jv *v)
{
    char what[40];
    snprintf(what, sizeof what, "%zu hex digits", want * 2);
    return ojd_fail_type(d, pf, what, v);
}

int ojd_get_hex(jd *d, const pframe *pf, const jv *v, size_t want, ProtobufCBinaryData *out)
{
    if (v->kind != JV_STR)
        return fail_hex(d, pf, want, v);
    if (v->len == 0) { /* an empty id is the same as no id */
        out->len = 0;
        out->data = NULL;
        return 0;
    }
    /* An id of the wrong length is still bytes: the receiver rejects its
     * item (otlp_check.h), as for protobuf, instead of the whole request. */
    size_t n = v->len / 2;
    if (v->len % 2)
        return fail_hex(d, pf, want, v);
    uint8_t *p = ot_arena_alloc(d->arena, n);
    if (!p)
        return ojd_oom(d, pf);
    if (ot_hex_decode(v->s, v->len, p) != n)
        return fail_hex(d, pf, want, v);
    out->data = p;
    out->len = n;
    return 0;
}

/* Standard or URL-safe base64, padding optional. */
int ojd_get_base64(jd *d, const pframe *pf, const jv *v, ProtobufCBinaryData *out)
{
    static const char what[] = "a base64 string";
    if (v->kind != JV_STR)
        return ojd_fail_type(d, pf, what, v);
    size_t max = ot_base64_decoded_max(v->len);
    uint8_t *p = max ? ot_arena_alloc(d->arena, max) : NULL;
    if (max && !p)
        return ojd_oom(d, pf);
    long n = ot_base64_decode(v->s, v->len, p);
    if (n < 0)
        return ojd_fail_type(d, pf, what, v);
    out->data = p;
    out->len = (size_t)n;
    return 0;
}

int ojd_get_enum(jd *d, const pframe *pf, const ProtobufCEnumDescriptor *ed, const jv *v,
                 int32_t *out)
{
    int64_t x;
    if (v->kind == JV_STR) {
        char name[128];
        if (v->len < sizeof name) {
            memcpy(name, v->s, v->len);
            name[v->len] = '\0';
            const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
            if (ev) {
                *out = ev->value;
                return 0;
            }
        }
        /* a number in a string is still a number */
        if (!(v->len && (v->s[0] == '-' || (v->s[0] >= '0' && v->s[0] <= '9')))) {
            char what[160];
            snprintf(what, sizeof what, "a number or a value name of %s", ed->short_name);
            return ojd_fail_type(d, pf, what, v);
        }
    }
    if (ojd_get_i64(d, pf, v, INT32_MIN, INT32_MAX, "an enum number or value name", &x) < 0)
        return -1;
    *out = (int32_t)x;
    return 0;
}

