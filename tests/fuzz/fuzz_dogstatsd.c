/* fuzz_dogstatsd.c: the DogStatsD datagram parser on arbitrary bytes. A
 * reader thread runs it on whatever a pod sends, so beyond not crashing,
 * not hanging and not reading past the datagram (ASan), every item must
 * keep the promises of parse.h: each slice lies inside its own line and
 * the line inside the datagram, lines come in order, counts match what
 * iterating yields, values are finite, rates in (0, 1], caps held, and a
 * line parses the same alone as inside its datagram. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../receivers/dogstatsd/parse.h"

static const char *lo, *hi;

static void in(ot_dsd_str s, ot_dsd_str within)
{
    if (s.n == 0)
        return;
    if (s.p < within.p || s.p + s.n > within.p + within.n || s.p + s.n < s.p)
        abort();
}

static void check_tags(const ot_dsd_item *it)
{
    in(it->tags.raw, it->line);
    ot_dsd_tag_iter ti;
    ot_dsd_tag t;
    ot_dsd_tags_begin(&it->tags, &ti);
    uint32_t n = 0;
    while (ot_dsd_tag_next(&ti, &t)) {
        in(t.key, it->tags.raw);
        in(t.value, it->tags.raw);
        if (t.key.n + t.value.n + !t.bare == 0 || t.key.n + t.value.n + !t.bare > OT_DSD_MAX_TAG)
            abort();
        if (t.bare && t.value.n)
            abort();
        if (++n > OT_DSD_MAX_TAGS)
            abort(); /* the parser refuses a line with more */
    }
    if (n != ot_dsd_tags_count(&it->tags))
        abort();
}

static void check_unescape(ot_dsd_str s)
{
    static char buf[65536];
    if (s.n > sizeof buf)
        abort();
    size_t w = ot_dsd_unescape(s, buf);
    if (w > s.n)
        abort();
    size_t newlines = 0;
    for (size_t i = 0; i + 1 < s.n; i++)
        if (s.p[i] == '\\' && s.p[i + 1] == 'n')
            newlines++, i++;
    if (w != s.n - newlines)
        abort();
}

static void check(const ot_dsd_item *it)
{
    if (it->line.n == 0 || it->line.p < lo || it->line.p + it->line.n > hi)
        abort();
    if (memchr(it->line.p, '\n', it->line.n))
        abort();
    /* What ends a line: "\n", "\r\n", the end, or "\r" at the end. */
    const char *e = it->line.p + it->line.n;
    if (e < hi && *e != '\n' && !(*e == '\r' && (e + 1 == hi || e[1] == '\n')))
        abort();
    if ((it->kind == OT_DSD_MALFORMED) != (it->reason != OT_DSD_OK))
        abort();
    if ((unsigned)it->reason >= OT_DSD_REASON_COUNT || !ot_dsd_reason_name(it->reason))
        abort();
    if (it->kind == OT_DSD_MALFORMED) {
        if (it->tags.raw.n || it->skipped_fields || it->has_timestamp)
            abort(); /* nothing half-parsed */
        return;
    }
    check_tags(it);
    in(it->container_id, it->line);
    in(it->external_data, it->line);
    in(it->host, it->line);
    if (it->has_timestamp && (it->timestamp < 1 || it->timestamp > OT_DSD_MAX_TS))
        abort();
    const ot_dsd_metric *m = &it->u.metric;
    switch (it->kind) {
    case OT_DSD_METRIC:
        if (m->name.n == 0 || m->name.n > OT_DSD_MAX_NAME)
            abort();
        in(m->name, it->line);
        if (!(m->rate > 0 && m->rate <= 1))
            abort();
        if (m->type == OT_DSD_SET) {
            if (m->nvalues != 1 || m->set_value.n == 0)
                abort();
            in(m->set_value, it->line);
            break;
        }
        if (m->nvalues == 0 || m->nvalues > OT_DSD_MAX_VALUES)
            abort();
        if (m->dropped && m->nvalues != OT_DSD_MAX_VALUES)
            abort();
        /* At least two bytes (":" and a digit) per value on the line. */
        if ((size_t)(m->nvalues + m->dropped) * 2 > it->line.n)
            abort();
        for (uint32_t i = 0; i < m->nvalues; i++) {
            if (!isfinite(m->values[i]) || m->explicit_sign[i] > 1)
                abort();
            if (m->explicit_sign[i] && m->type != OT_DSD_GAUGE)
                abort();
        }
        break;
    case OT_DSD_EVENT:
        if (it->u.event.title.n == 0)
            abort();
        in(it->u.event.title, it->line);
        in(it->u.event.text, it->line);
        in(it->u.event.aggregation_key, it->line);
        in(it->u.event.source_type, it->line);
        check_unescape(it->u.event.text);
        break;
    case OT_DSD_SERVICE_CHECK:
        if (it->u.sc.name.n == 0 || it->u.sc.status < 0 || it->u.sc.status > 3)
            abort();
        in(it->u.sc.name, it->line);
        in(it->u.sc.message, it->line);
        check_unescape(it->u.sc.message);
        break;
    default:
        abort();
    }
}

static ot_dsd_iter iter;
static double vals[OT_DSD_MAX_VALUES];
static uint8_t signs[OT_DSD_MAX_VALUES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lo = (const char *)data;
    hi = lo + size;
    size_t newlines = 0;
    for (size_t i = 0; i < size; i++)
        newlines += data[i] == '\n';
    ot_dsd_iter_init(&iter, data, size);
    ot_dsd_item it, again;
    const char *prev_end = lo;
    size_t items = 0;
    while (ot_dsd_next(&iter, &it)) {
        if (++items > newlines + 1)
            abort();
        if (it.line.p < prev_end)
            abort(); /* lines in order, never overlapping */
        prev_end = it.line.p + it.line.n;
        check(&it);
        /* The same line alone gives the same answer. */
        ot_dsd_parse_line(it.line.p, it.line.n, vals, signs, &again);
        if (again.kind != it.kind || again.reason != it.reason ||
            again.tags.raw.n != it.tags.raw.n || again.skipped_fields != it.skipped_fields)
            abort();
        if (it.kind == OT_DSD_METRIC && it.u.metric.type != OT_DSD_SET &&
            (again.u.metric.nvalues != it.u.metric.nvalues ||
             memcmp(vals, it.u.metric.values, it.u.metric.nvalues * sizeof(double)) != 0))
            abort();
    }
    return 0;
}
