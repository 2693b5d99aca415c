/* parse.c: DogStatsD lines to items (see parse.h for the contract). This
 * runs once per line at millions of lines per second, so it works in
 * slices over the datagram: short inline scans for delimiters, one
 * word-at-a-time pass for UTF-8 and NUL, a strtod-free path for plain
 * decimals, and no allocation at all. Every index is checked against the
 * line's end before it is read; there is no terminator to rely on. */
#include "parse.h"
#include "scan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const dsd_reason_names[OT_DSD_REASON_COUNT] = {
    [OT_DSD_OK] = "ok",
    [OT_DSD_EMPTY_NAME] = "empty_name",
    [OT_DSD_NO_VALUE] = "no_value",
    [OT_DSD_BAD_VALUE] = "bad_value",
    [OT_DSD_NO_TYPE] = "no_type",
    [OT_DSD_BAD_TYPE] = "bad_type",
    [OT_DSD_BAD_RATE] = "bad_rate",
    [OT_DSD_BAD_TIMESTAMP] = "bad_timestamp",
    [OT_DSD_TOO_LONG] = "too_long",
    [OT_DSD_TOO_MANY_TAGS] = "too_many_tags",
    [OT_DSD_BAD_UTF8] = "bad_utf8",
    [OT_DSD_NUL_BYTE] = "nul_byte",
    [OT_DSD_BAD_EVENT] = "bad_event",
    [OT_DSD_BAD_SERVICE_CHECK] = "bad_service_check",
};

const char *ot_dsd_reason_name(ot_dsd_reason r)
{
    return (unsigned)r < OT_DSD_REASON_COUNT ? dsd_reason_names[r] : "unknown";
}

const char *ot_dsd_type_name(ot_dsd_type t)
{
    static const char *const names[] = {"c", "g", "ms", "h", "d", "s"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static inline ot_dsd_str dsd_str(const char *p, size_t n)
{
    ot_dsd_str s = {p, n};
    return s;
}

static inline bool dsd_is(const char *p, size_t n, const char *lit, size_t ln)
{
    return n == ln && memcmp(p, lit, ln) == 0;
}

/* ---- bytes: UTF-8 and NUL, one pass over the line ----------------------- */

static ot_dsd_reason dsd_check_bytes(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Eight plain ASCII bytes at a time: the whole line, nearly always.
         * A word stops here when it holds a high bit or a zero byte. */
        while (i + 8 <= n) {
            uint64_t x;
            memcpy(&x, p + i, 8);
            if ((x & DSD_HI) | ((x - DSD_LO) & ~x & DSD_HI))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = p[i];
        if (c == 0)
            return OT_DSD_NUL_BYTE;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf; /* the range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return OT_DSD_BAD_UTF8;
        }
        if (n - i - 1 < need)
            return OT_DSD_BAD_UTF8;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return OT_DSD_BAD_UTF8;
        for (size_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return OT_DSD_BAD_UTF8;
        i += need + 1;
    }
    return OT_DSD_OK;
}

/* ---- numbers ------------------------------------------------------------- */

/* Powers of ten that a double holds exactly. */
static const double dsd_pow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* The forms the fast path does not take ("1e-3", 20-digit mantissas).
 * Only the characters of a decimal are let through to strtod, so it cannot
 * accept "inf", "nan", hex or leading blanks. The agent never calls
 * setlocale, so strtod's decimal point is '.'. */
static bool dsd_parse_double_slow(const char *s, size_t n, double *out)
{
    char buf[128];
    if (n == 0 || n >= sizeof buf)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
            return false;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + n || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool ot_dsd_parse_double(const char *s, size_t n, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (n && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    uint64_t m = 0; /* wraps past 19 digits; only read when ndig <= 19 */
    size_t d0 = i;
    while (i < n && (unsigned)(s[i] - '0') < 10)
        m = m * 10 + (uint64_t)(s[i++] - '0');
    size_t ndig = i - d0, frac = 0;
    if (i < n && s[i] == '.') {
        size_t f0 = ++i;
        while (i < n && (unsigned)(s[i] - '0') < 10)
            m = m * 10 + (uint64_t)(s[i++] - '0');
        frac = i - f0;
        ndig += frac;
    }
    if (ndig == 0)
        return false;
    /* Both m and 10^frac exact, so one IEEE division rounds correctly:
     * the same double strtod gives. */
    if (i == n && ndig <= 19 && m <= (1ull << 53) &&
        frac < sizeof dsd_pow10 / sizeof dsd_pow10[0]) {
        double v = (double)m;
        if (frac)
            v /= dsd_pow10[frac];
        *out = neg ? -v : v;
        return true;
    }
    return dsd_parse_double_slow(s, n, out);
}

/* 1..OT_DSD_MAX_TS, digits only. */
static bool dsd_parse_ts(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (d > 9)
            return false;
        v = v * 10 + d;
    }
    if (v == 0 || v > (uint64_t)OT_DSD_MAX_TS)
        return false;
    *out = (int64_t)v;
    return true;
}

/* ---- tags ---------------------------------------------------------------- */

void ot_dsd_tags_begin(const ot_dsd_tags *tags, ot_dsd_tag_iter *ti)
{
    ti->p = tags->raw.p;
    /* no tags: raw.p may be NULL, and NULL + 0 is undefined */
    ti->end = tags->raw.n ? tags->raw.p + tags->raw.n : tags->raw.p;
}

bool ot_dsd_tag_next(ot_dsd_tag_iter *ti, ot_dsd_tag *out)
{
    while (ti->p < ti->end) {
        const char *s = ti->p;
        const char *comma = dsd_find(s, ti->end, ',');
        const char *e = comma ? comma : ti->end;
        ti->p = comma ? comma + 1 : ti->end;
        if (e == s)
            continue;
        const char *colon = dsd_find(s, e, ':');
        if (colon) {
            out->key = dsd_str(s, (size_t)(colon - s));
            out->value = dsd_str(colon + 1, (size_t)(e - colon - 1));
            out->bare = false;
        } else {
            out->key = dsd_str(s, (size_t)(e - s));
            out->value = dsd_str(e, 0);
            out->bare = true;
        }
        return true;
    }
    return false;
}

/* Counts the tags the iterator will yield and holds each to its cap. */
static ot_dsd_reason dsd_tags(const char *s, size_t n, ot_dsd_tags *t)
{
    const char *end = s + n;
    uint32_t count = 0;
    while (s < end) {
        const char *comma = dsd_find(s, end, ',');
        const char *e = comma ? comma : end;
        size_t len = (size_t)(e - s);
        if (len) {
            if (len > OT_DSD_MAX_TAG)
                return OT_DSD_TOO_LONG;
            if (++count > OT_DSD_MAX_TAGS)
                return OT_DSD_TOO_MANY_TAGS;
        }
        s = comma ? comma + 1 : end;
    }
    t->raw = dsd_str(end - n, n);
    return OT_DSD_OK;
}

uint32_t ot_dsd_tags_count(const ot_dsd_tags *tags)
{
    ot_dsd_tag_iter ti;
    ot_dsd_tag t;
    uint32_t n = 0;
    ot_dsd_tags_begin(tags, &ti);
    while (ot_dsd_tag_next(&ti, &t))
        n++;
    return n;
}

/* ---- fields -------------------------------------------------------------- */

static ot_dsd_card dsd_card(const char *s, size_t n)
{
    if (dsd_is(s, n, "none", 4))
        return OT_DSD_CARD_NONE;
    if (dsd_is(s, n, "low", 3))
        return OT_DSD_CARD_LOW;
    if (dsd_is(s, n, "orchestrator", 12))
        return OT_DSD_CARD_ORCHESTRATOR;
    if (dsd_is(s, n, "high", 4))
        return OT_DSD_CARD_HIGH;
    return OT_DSD_CARD_UNSET;
}

/* The fields every kind may carry: #tags, c:, e:, card:. Returns OT_DSD_OK
 * with *taken set when f was one of them, a reason when it was bad. */
static ot_dsd_reason dsd_field_common(const char *f, size_t n, ot_dsd_item *o, bool *taken)
{
    *taken = true;
    switch (f[0]) {
    case '#':
        return dsd_tags(f + 1, n - 1, &o->tags);
    case 'c':
        if (n >= 2 && f[1] == ':') {
            o->container_id = dsd_str(f + 2, n - 2);
            return OT_DSD_OK;
        }
        if (n >= 5 && memcmp(f, "card:", 5) == 0) {
            o->cardinality = dsd_card(f + 5, n - 5);
            if (o->cardinality == OT_DSD_CARD_UNSET)
                o->skipped_fields++;
            return OT_DSD_OK;
        }
        break;
    case 'e':
        if (n >= 2 && f[1] == ':') {
            o->external_data = dsd_str(f + 2, n - 2);
            return OT_DSD_OK;
        }
        break;
    }
    *taken = false;
    return OT_DSD_OK;
}

typedef ot_dsd_reason (*dsd_field_fn)(const char *f, size_t n, const char *line_end, ot_dsd_item *o,
                                      const char **next);

/* Walks "|f|f|f" from p (at a '|' or the end) to end, handing each field to
 * own (the kind's fields) and then to the common ones. own may move *next
 * to swallow the rest of the line (m: of service checks). */
static ot_dsd_reason dsd_fields(const char *p, const char *end, ot_dsd_item *o, dsd_field_fn own)
{
    while (p < end) {
        const char *f = p + 1; /* *p == '|' */
        if (f < end && *f == '#') {
            /* tags, no kind's own field. A field shorter than twice the
             * tag cap cannot hold more tags than the cap, nor one tag over
             * its length cap: only a longer one is walked tag by tag. */
            const char *bar = dsd_find(f + 1, end, '|');
            const char *te = bar ? bar : end;
            size_t tn = (size_t)(te - f - 1);
            if (tn >= 2 * OT_DSD_MAX_TAGS || tn > OT_DSD_MAX_TAG) {
                ot_dsd_reason r = dsd_tags(f + 1, tn, &o->tags);
                if (r != OT_DSD_OK)
                    return r;
            } else {
                o->tags = (ot_dsd_tags){dsd_str(f + 1, tn)};
            }
            p = te;
            continue;
        }
        const char *bar = dsd_find(f, end, '|');
        const char *fe = bar ? bar : end;
        size_t n = (size_t)(fe - f);
        p = fe;
        if (n == 0) {
            o->skipped_fields++;
            continue;
        }
        const char *next = fe;
        bool taken;
        ot_dsd_reason r = own(f, n, end, o, &next);
        if (r == OT_DSD_REASON_COUNT) { /* not the kind's own field */
            r = dsd_field_common(f, n, o, &taken);
            if (!taken)
                o->skipped_fields++;
        }
        if (r != OT_DSD_OK)
            return r;
        p = next;
    }
    return OT_DSD_OK;
}

/* ---- metrics ------------------------------------------------------------- */

static ot_dsd_reason dsd_metric_field(const char *f, size_t n, const char *end, ot_dsd_item *o,
                                      const char **next)
{
    (void)end;
    (void)next;
    double rate;
    switch (f[0]) {
    case '@':
        if (!ot_dsd_parse_double(f + 1, n - 1, &rate) || !(rate > 0 && rate <= 1))
            return OT_DSD_BAD_RATE;
        o->u.metric.rate = rate;
        return OT_DSD_OK;
    case 'T':
        if (!dsd_parse_ts(f + 1, n - 1, &o->timestamp))
            return OT_DSD_BAD_TIMESTAMP;
        o->has_timestamp = true;
        return OT_DSD_OK;
    }
    return OT_DSD_REASON_COUNT;
}

static bool dsd_type(const char *t, size_t n, ot_dsd_type *out)
{
    if (n == 1) {
        switch (t[0]) {
        case 'c': *out = OT_DSD_COUNTER; return true;
        case 'g': *out = OT_DSD_GAUGE; return true;
        case 'h': *out = OT_DSD_HISTOGRAM; return true;
        case 'd': *out = OT_DSD_DISTRIBUTION; return true;
        case 's': *out = OT_DSD_SET; return true;
        }
        return false;
    }
    if (n == 2 && t[0] == 'm' && t[1] == 's') {
        *out = OT_DSD_TIMER;
        return true;
    }
    return false;
}

static ot_dsd_reason dsd_metric(const char *s, size_t n, double *values, uint8_t *signs,
                                ot_dsd_item *o)
{
    const char *end = s + n;
    const char *bar = dsd_find(s, s + n, '|');
    const char *hend = bar ? bar : end; /* name:values */
    const char *colon = dsd_find(s, hend, ':');
    if (!colon)
        return hend == s ? OT_DSD_EMPTY_NAME : OT_DSD_NO_VALUE;
    if (colon == s)
        return OT_DSD_EMPTY_NAME;
    ot_dsd_metric *m = &o->u.metric;
    m->name = dsd_str(s, (size_t)(colon - s));
    if (m->name.n > OT_DSD_MAX_NAME)
        return OT_DSD_TOO_LONG;
    const char *v = colon + 1;
    if (v == hend)
        return OT_DSD_NO_VALUE;
    if (!bar)
        return OT_DSD_NO_TYPE;
    const char *t = bar + 1;
    const char *tbar = dsd_find(t, end, '|');
    const char *tend = tbar ? tbar : end;
    if (tend == t)
        return OT_DSD_NO_TYPE;
    if (!dsd_type(t, (size_t)(tend - t), &m->type))
        return OT_DSD_BAD_TYPE;
    m->rate = 1;

    if (m->type == OT_DSD_SET) {
        m->set_value = dsd_str(v, (size_t)(hend - v));
        m->nvalues = 1;
    } else {
        bool gauge = m->type == OT_DSD_GAUGE;
        uint32_t k = 0, dropped = 0;
        for (;;) {
            const char *c = dsd_find(v, hend, ':');
            const char *ve = c ? c : hend;
            double x;
            if (!ot_dsd_parse_double(v, (size_t)(ve - v), &x))
                return OT_DSD_BAD_VALUE;
            if (k < OT_DSD_MAX_VALUES) {
                values[k] = x;
                uint8_t sg = gauge && (*v == '+' || *v == '-');
                signs[k] = sg;
                m->any_sign |= sg;
                k++;
            } else {
                dropped++;
            }
            if (!c)
                break;
            v = c + 1;
        }
        m->values = values;
        m->explicit_sign = signs;
        m->nvalues = k;
        m->dropped = dropped;
    }
    return dsd_fields(tend, end, o, dsd_metric_field);
}

/* ---- events: _e{title_len,text_len}:title|text|fields -------------------- */

/* Decimal digits of s[*i..] up to stop; at most 9 of them. */
static bool dsd_len(const char *s, size_t n, size_t *i, char stop, size_t *out)
{
    size_t v = 0, d0 = *i;
    while (*i < n && (unsigned)(s[*i] - '0') < 10) {
        if (*i - d0 >= 9)
            return false;
        v = v * 10 + (size_t)(s[*i] - '0');
        (*i)++;
    }
    if (*i == d0 || *i >= n || s[*i] != stop)
        return false;
    (*i)++;
    *out = v;
    return true;
}

static ot_dsd_reason dsd_event_field(const char *f, size_t n, const char *end, ot_dsd_item *o,
                                     const char **next)
{
    (void)end;
    (void)next;
    ot_dsd_event *e = &o->u.event;
    if (n < 2 || f[1] != ':')
        return OT_DSD_REASON_COUNT;
    const char *v = f + 2;
    size_t vn = n - 2;
    switch (f[0]) {
    case 'd':
        if (!dsd_parse_ts(v, vn, &o->timestamp))
            return OT_DSD_BAD_TIMESTAMP;
        o->has_timestamp = true;
        return OT_DSD_OK;
    case 'h':
        o->host = dsd_str(v, vn);
        return OT_DSD_OK;
    case 'k':
        e->aggregation_key = dsd_str(v, vn);
        return OT_DSD_OK;
    case 's':
        e->source_type = dsd_str(v, vn);
        return OT_DSD_OK;
    case 'p':
        e->priority = dsd_is(v, vn, "normal", 6) ? OT_DSD_PRIO_NORMAL
                      : dsd_is(v, vn, "low", 3)  ? OT_DSD_PRIO_LOW
                                                 : OT_DSD_PRIO_UNSET;
        if (e->priority == OT_DSD_PRIO_UNSET)
            o->skipped_fields++;
        return OT_DSD_OK;
    case 't':
        e->alert_type = dsd_is(v, vn, "info", 4)      ? OT_DSD_ALERT_INFO
                        : dsd_is(v, vn, "warning", 7) ? OT_DSD_ALERT_WARNING
                        : dsd_is(v, vn, "error", 5)   ? OT_DSD_ALERT_ERROR
                        : dsd_is(v, vn, "success", 7) ? OT_DSD_ALERT_SUCCESS
                                                      : OT_DSD_ALERT_UNSET;
        if (e->alert_type == OT_DSD_ALERT_UNSET)
            o->skipped_fields++;
        return OT_DSD_OK;
    }
    return OT_DSD_REASON_COUNT;
}

static ot_dsd_reason dsd_event(const char *s, size_t n, ot_dsd_item *o)
{
    size_t i = 3, tl, xl; /* past "_e{" */
    if (!dsd_len(s, n, &i, ',', &tl) || !dsd_len(s, n, &i, '}', &xl))
        return OT_DSD_BAD_EVENT;
    if (i >= n || s[i] != ':')
        return OT_DSD_BAD_EVENT;
    i++;
    /* title, '|', text, then the end or '|': lengths count bytes. */
    if (tl == 0 || tl >= n - i || s[i + tl] != '|')
        return OT_DSD_BAD_EVENT;
    size_t j = i + tl + 1;
    if (xl > n - j || (j + xl < n && s[j + xl] != '|'))
        return OT_DSD_BAD_EVENT;
    ot_dsd_event *e = &o->u.event;
    e->title = dsd_str(s + i, tl);
    e->text = dsd_str(s + j, xl);
    return dsd_fields(s + j + xl, s + n, o, dsd_event_field);
}

/* ---- service checks: _sc|name|status|fields ------------------------------ */

static ot_dsd_reason dsd_sc_field(const char *f, size_t n, const char *end, ot_dsd_item *o,
                                  const char **next)
{
    if (n < 2 || f[1] != ':')
        return OT_DSD_REASON_COUNT;
    switch (f[0]) {
    case 'd':
        if (!dsd_parse_ts(f + 2, n - 2, &o->timestamp))
            return OT_DSD_BAD_TIMESTAMP;
        o->has_timestamp = true;
        return OT_DSD_OK;
    case 'h':
        o->host = dsd_str(f + 2, n - 2);
        return OT_DSD_OK;
    case 'm':
        /* The message comes last and may hold '|': it is the rest. */
        o->u.sc.message = dsd_str(f + 2, (size_t)(end - f - 2));
        *next = end;
        return OT_DSD_OK;
    }
    return OT_DSD_REASON_COUNT;
}

static ot_dsd_reason dsd_service_check(const char *s, size_t n, ot_dsd_item *o)
{
    const char *end = s + n, *name = s + 4; /* past "_sc|" */
    const char *bar = dsd_find(name, end, '|');
    if (!bar || bar == name)
        return OT_DSD_BAD_SERVICE_CHECK;
    if ((size_t)(bar - name) > OT_DSD_MAX_NAME)
        return OT_DSD_TOO_LONG;
    const char *st = bar + 1;
    const char *sbar = dsd_find(st, end, '|');
    const char *se = sbar ? sbar : end;
    if (se - st != 1 || st[0] < '0' || st[0] > '3')
        return OT_DSD_BAD_SERVICE_CHECK;
    o->u.sc.name = dsd_str(name, (size_t)(bar - name));
    o->u.sc.status = st[0] - '0';
    return dsd_fields(se, end, o, dsd_sc_field);
}

/* ---- lines and datagrams ------------------------------------------------- */

/* plain: the caller has seen that every byte is ASCII and not NUL. */
static ot_dsd_reason dsd_parse_line(const char *line, size_t n, double *values,
                                    uint8_t *explicit_sign, ot_dsd_item *o, bool plain)
{
    memset(o, 0, sizeof *o);
    o->line = dsd_str(line, n);
    ot_dsd_reason r = plain ? OT_DSD_OK : dsd_check_bytes((const uint8_t *)line, n);
    if (r == OT_DSD_OK) {
        if (n >= 3 && line[0] == '_' && line[1] == 'e' && line[2] == '{') {
            o->kind = OT_DSD_EVENT;
            r = dsd_event(line, n, o);
        } else if (n >= 4 && memcmp(line, "_sc|", 4) == 0) {
            o->kind = OT_DSD_SERVICE_CHECK;
            r = dsd_service_check(line, n, o);
        } else {
            o->kind = OT_DSD_METRIC;
            r = dsd_metric(line, n, values, explicit_sign, o);
        }
    }
    if (r != OT_DSD_OK) {
        /* Nothing half-parsed leaks out of a refused line. */
        memset(o, 0, sizeof *o);
        o->line = dsd_str(line, n);
        o->kind = OT_DSD_MALFORMED;
        o->reason = r;
    }
    return r;
}

ot_dsd_reason ot_dsd_parse_line(const char *line, size_t n, double *values, uint8_t *explicit_sign,
                                ot_dsd_item *o)
{
    return dsd_parse_line(line, n, values, explicit_sign, o, false);
}

void ot_dsd_iter_init(ot_dsd_iter *it, const void *data, size_t len)
{
    it->p = data;
    it->end = it->p + len;
}

bool ot_dsd_next(ot_dsd_iter *it, ot_dsd_item *out)
{
    while (it->p < it->end) {
        const char *s = it->p;
        bool plain;
        const char *le = dsd_line_end(s, it->end, &plain);
        size_t n = (size_t)(le - s);
        it->p = le < it->end ? le + 1 : it->end;
        if (n && s[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        dsd_parse_line(s, n, it->values, it->explicit_sign, out, plain);
        return true;
    }
    return false;
}

size_t ot_dsd_unescape(ot_dsd_str s, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '\\' && i + 1 < s.n && s.p[i + 1] == 'n') {
            out[w++] = '\n';
            i++;
        } else {
            out[w++] = s.p[i];
        }
    }
    return w;
}
