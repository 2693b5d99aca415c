/* http1_parse.c: the request head and chunked framing of HTTP/1.1 (see
 * http1_parse.h). The rules are RFC 9112's, on the strict side wherever it
 * lets a recipient choose. */
#include "base/codec.h"
#include "net/http1_parse.h"

#include <string.h>
#include <strings.h>

/* tchar of RFC 9110: what a method or a header name may hold */
static bool tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool ot_h1_unescape(char *s, bool plus)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%') {
            int a = ot_hex_digit((unsigned char)r[1]), b = a < 0 ? -1 : ot_hex_digit((unsigned char)r[2]);
            if (b < 0)
                return false;
            *w++ = (char)(a * 16 + b);
            r += 2;
        } else {
            *w++ = plus && *r == '+' ? ' ' : *r;
        }
    }
    *w = '\0';
    return true;
}

const char *ot_h1_header(const ot_h1_head *h, const char *name)
{
    for (unsigned i = 0; i < h->n; i++)
        if (strcasecmp(h->h[i].name, name) == 0)
            return h->h[i].value;
    return NULL;
}

/* Does the comma-separated list v hold token t (any case)? */
static bool has_token(const char *v, const char *t)
{
    size_t tn = strlen(t);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        const char *e = v;
        while (*e && *e != ',')
            e++;
        const char *te = e;
        while (te > v && (te[-1] == ' ' || te[-1] == '\t'))
            te--;
        if ((size_t)(te - v) == tn && strncasecmp(v, t, tn) == 0)
            return true;
        v = e;
    }
    return false;
}

static long request_line(char *p, char *end, ot_h1_head *h)
{
    char *m = p;
    while (p < end && tchar((unsigned char)*p))
        p++;
    if (p == m || p >= end || *p != ' ')
        return -400;
    *p++ = '\0';
    h->method = m;
    char *t = p;
    while (p < end && *p != ' ') {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return -400;
        p++;
    }
    if (p == t || p >= end)
        return -400;
    *p++ = '\0';
    if (end - p != 8 || memcmp(p, "HTTP/", 5) != 0)
        return -400;
    if (p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9')
        return -400;
    if (p[5] != '1')
        return -505;
    h->minor = p[7] - '0';
    /* origin-form only: the asterisk of OPTIONS and absolute forms are for
     * proxies, which we are not */
    if (*t != '/')
        return -400;
    char *q = strchr(t, '?');
    if (q)
        *q++ = '\0';
    h->query = q;
    if (!ot_h1_unescape(t, false) || strlen(t) == 0)
        return -400;
    h->path = t;
    return 0;
}

static long content_length(const char *v, int64_t *out)
{
    if (!*v)
        return -400;
    int64_t n = 0;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return -400;
        if (n > (INT64_MAX - 9) / 10)
            return -400;
        n = n * 10 + (*p - '0');
    }
    if (*out >= 0 && *out != n)
        return -400;
    *out = n;
    return 0;
}

static long header_line(char *p, char *end, ot_h1_head *h, bool *te)
{
    if (*p == ' ' || *p == '\t')
        return -400; /* obsolete line folding */
    char *name = p;
    while (p < end && tchar((unsigned char)*p))
        p++;
    if (p == name || p >= end || *p != ':')
        return -400;
    *p++ = '\0';
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    char *v = p;
    for (; p < end; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return -400;
    while (p > v && (p[-1] == ' ' || p[-1] == '\t'))
        p--;
    *p = '\0';
    if (h->n == OT_H1_MAX_HEADERS)
        return -431;
    h->h[h->n++] = (ot_h1_hdr){name, v};
    if (strcasecmp(name, "Content-Length") == 0)
        return content_length(v, &h->content_length);
    if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (*te || strcasecmp(v, "chunked") != 0)
            return *te || has_token(v, "chunked") ? -400 : -501;
        *te = true;
        h->chunked = true;
    } else if (strcasecmp(name, "Connection") == 0) {
        if (has_token(v, "close"))
            h->keep_alive = false;
        else if (has_token(v, "keep-alive"))
            h->keep_alive = true;
    } else if (strcasecmp(name, "Expect") == 0) {
        if (strcasecmp(v, "100-continue") != 0)
            return -417;
        h->expect_continue = true;
    }
    return 0;
}

long ot_h1_parse_head(char *buf, size_t len, size_t *scanned, ot_h1_head *h)
{
    size_t from = *scanned > 3 ? *scanned - 3 : 0;
    size_t lim = len < OT_H1_MAX_HEAD ? len : OT_H1_MAX_HEAD;
    char *e = from < lim ? memmem(buf + from, lim - from, "\r\n\r\n", 4) : NULL;
    if (!e) {
        *scanned = lim;
        return len >= OT_H1_MAX_HEAD ? -431 : 0;
    }
    size_t hlen = (size_t)(e - buf) + 4;
    /* no NUL and no bare CR or LF anywhere in the head */
    for (size_t i = 0; i < hlen - 4; i++) {
        char c = buf[i];
        if (c == '\0' || (c == '\r' && buf[i + 1] != '\n') ||
            (c == '\n' && (i == 0 || buf[i - 1] != '\r')))
            return -400;
    }
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    char *p = buf, *end = buf + hlen - 2;
    if (p[0] == '\r')
        return -400;
    char *le = memchr(p, '\r', (size_t)(end - p));
    long rc = request_line(p, le, h);
    if (rc < 0)
        return rc;
    h->keep_alive = h->minor >= 1;
    bool te = false;
    for (p = le + 2; p < end; p = le + 2) {
        le = memchr(p, '\r', (size_t)(end - p));
        *le = '\0';
        if ((rc = header_line(p, le, h, &te)) < 0)
            return rc;
    }
    if (h->chunked && (h->content_length >= 0 || h->minor == 0))
        return -400;
    return (long)hlen;
}

/* ---- chunked --------------------------------------------------------------- */

enum { CH_SIZE0, CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TR0, CH_TR,
       CH_TR_LF, CH_END_LF, CH_DONE };

#define CH_MAX_LINE 1024     /* a size line with its extensions */
#define CH_MAX_TRAILER 8192  /* all trailer lines together */

void ot_h1_chunk_init(ot_h1_chunk *c, uint64_t max)
{
    memset(c, 0, sizeof *c);
    c->max = max;
}

bool ot_h1_chunk_done(const ot_h1_chunk *c)
{
    return c->st == CH_DONE;
}

long ot_h1_chunk_step(ot_h1_chunk *c, const uint8_t *p, size_t n, size_t *off, size_t *dlen)
{
    *off = *dlen = 0;
    size_t i = 0;
    while (i < n && c->st != CH_DONE) {
        if (c->st == CH_DATA) {
            size_t k = n - i < c->left ? n - i : (size_t)c->left;
            *off = i;
            *dlen = k;
            c->left -= k;
            if (!c->left)
                c->st = CH_DATA_CR;
            return (long)(i + k);
        }
        unsigned char b = p[i++];
        switch (c->st) {
        case CH_SIZE0:
        case CH_SIZE: {
            int v = ot_hex_digit(b);
            if (v >= 0) {
                if (c->left || v)
                    c->digits++;
                if (c->digits > 16)
                    c->big = true;
                else
                    c->left = c->left * 16 + (uint64_t)v;
                c->st = CH_SIZE;
            } else if (c->st == CH_SIZE0) {
                return -400;
            } else if (b == ';' || b == ' ' || b == '\t') {
                c->st = CH_EXT;
            } else if (b == '\r') {
                c->st = CH_SIZE_LF;
            } else {
                return -400;
            }
            if (++c->line > CH_MAX_LINE)
                return -400;
            break;
        }
        case CH_EXT:
            if (b == '\r')
                c->st = CH_SIZE_LF;
            else if ((b < 0x20 && b != '\t') || b == 0x7f)
                return -400;
            if (++c->line > CH_MAX_LINE)
                return -400;
            break;
        case CH_SIZE_LF:
            if (b != '\n')
                return -400;
            c->line = 0;
            c->digits = 0;
            /* refused as soon as it is declared, not when the bytes come */
            if (c->big || c->left > c->max || c->total + c->left > c->max)
                return -413;
            c->total += c->left;
            c->st = c->left ? CH_DATA : CH_TR0;
            break;
        case CH_DATA_CR:
            if (b != '\r')
                return -400;
            c->st = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (b != '\n')
                return -400;
            c->st = CH_SIZE0;
            break;
        case CH_TR0:
            if (b == '\r') {
                c->st = CH_END_LF;
                break;
            }
            c->st = CH_TR;
            /* fall through */
        case CH_TR:
            if (b == '\r')
                c->st = CH_TR_LF;
            else if (b == '\n' || b == 0 || b == 0x7f)
                return -400;
            if (++c->trailer > CH_MAX_TRAILER)
                return -431;
            break;
        case CH_TR_LF:
            if (b != '\n')
                return -400;
            c->st = CH_TR0;
            break;
        case CH_END_LF:
            if (b != '\n')
                return -400;
            c->st = CH_DONE;
            break;
        }
    }
    return (long)i;
}
