/* parse.h: the DogStatsD datagram parser, kept apart from the receiver's
 * sockets and aggregation so it can be tested, fuzzed and benchmarked on
 * bytes alone.
 *
 * One datagram holds lines separated by "\n" ("\r\n" and a trailing
 * newline are fine; empty lines are skipped). An iterator yields one item
 * per non-empty line: a metric, an event, a service check, or a malformed
 * line with its reason, after which the next line is read as usual. Items
 * never own memory: every string is a slice (pointer + length) into the
 * datagram, and the parsed values live in the iterator, reused line after
 * line. Nothing is allocated; nothing reads outside [data, data + len).
 *
 * What a line must be to be accepted, beyond the wire format:
 *  - valid UTF-8 (no overlong forms, surrogates or code points above
 *    U+10FFFF) and no NUL byte, anywhere in the line. The OTLP model needs
 *    valid UTF-8 strings, and repairing bytes (U+FFFD) would silently merge
 *    distinct series, so the line is refused (OT_DSD_BAD_UTF8, _NUL_BYTE);
 *  - a name of at most OT_DSD_MAX_NAME bytes, tags of at most
 *    OT_DSD_MAX_TAG bytes each and at most OT_DSD_MAX_TAGS of them;
 *  - numbers that are finite decimals (digits, one '.', an exponent);
 *    "inf", "nan" and hex floats are bad values.
 * Values packed past OT_DSD_MAX_VALUES on one line are checked, counted in
 * `dropped` and not stored; the first OT_DSD_MAX_VALUES are kept.
 *
 * An unknown "|x..." field is skipped and counted in `skipped_fields`, and
 * so is a known enumerated field with a value outside its set (p:, t:,
 * card:). A bad sample rate or timestamp refuses the line instead: they
 * change what the values mean. When a field repeats, the last one wins. */
#ifndef OT_DSD_PARSE_H
#define OT_DSD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OT_DSD_MAX_VALUES 1024 /* values kept per line (value packing) */
#define OT_DSD_MAX_NAME 1024   /* bytes of a metric or service check name */
#define OT_DSD_MAX_TAG 1024    /* bytes of one tag, key:value */
#define OT_DSD_MAX_TAGS 256    /* tags per line */
#define OT_DSD_MAX_TS 9223372036LL /* seconds whose nanoseconds fit int64 */

typedef struct ot_dsd_str {
    const char *p;
    size_t n;
} ot_dsd_str;

typedef enum ot_dsd_kind {
    OT_DSD_METRIC,
    OT_DSD_EVENT,
    OT_DSD_SERVICE_CHECK,
    OT_DSD_MALFORMED,
} ot_dsd_kind;

/* Why a line was refused. ot_dsd_reason_name() gives the label used in
 * self-telemetry (`reason="no_value"`). */
typedef enum ot_dsd_reason {
    OT_DSD_OK = 0,
    OT_DSD_EMPTY_NAME,        /* nothing before ':' (":1|c", ":") */
    OT_DSD_NO_VALUE,          /* no ':' or nothing after it ("x|c", "x:|c") */
    OT_DSD_BAD_VALUE,         /* not a finite decimal, or an empty packed value */
    OT_DSD_NO_TYPE,           /* no '|' after the value, or an empty type ("x:1", "x:1|") */
    OT_DSD_BAD_TYPE,          /* a type other than c g ms h d s */
    OT_DSD_BAD_RATE,          /* "@" not followed by a number in (0, 1] */
    OT_DSD_BAD_TIMESTAMP,     /* "T" or "d:" not followed by 1..OT_DSD_MAX_TS */
    OT_DSD_TOO_LONG,          /* a name or a tag over its cap */
    OT_DSD_TOO_MANY_TAGS,     /* more than OT_DSD_MAX_TAGS tags */
    OT_DSD_BAD_UTF8,          /* invalid UTF-8 anywhere in the line */
    OT_DSD_NUL_BYTE,          /* a NUL byte anywhere in the line */
    OT_DSD_BAD_EVENT,         /* "_e{..}" lengths bad or not the line's; empty title */
    OT_DSD_BAD_SERVICE_CHECK, /* "_sc|" without a name, or a status other than 0..3 */
    OT_DSD_REASON_COUNT
} ot_dsd_reason;

typedef enum ot_dsd_type {
    OT_DSD_COUNTER,      /* c */
    OT_DSD_GAUGE,        /* g */
    OT_DSD_TIMER,        /* ms */
    OT_DSD_HISTOGRAM,    /* h */
    OT_DSD_DISTRIBUTION, /* d */
    OT_DSD_SET,          /* s */
} ot_dsd_type;

/* card: (tag cardinality asked of origin detection). */
typedef enum ot_dsd_card {
    OT_DSD_CARD_UNSET,
    OT_DSD_CARD_NONE,
    OT_DSD_CARD_LOW,
    OT_DSD_CARD_ORCHESTRATOR,
    OT_DSD_CARD_HIGH,
} ot_dsd_card;

typedef enum ot_dsd_priority {
    OT_DSD_PRIO_UNSET,
    OT_DSD_PRIO_NORMAL,
    OT_DSD_PRIO_LOW,
} ot_dsd_priority;

typedef enum ot_dsd_alert {
    OT_DSD_ALERT_UNSET,
    OT_DSD_ALERT_INFO,
    OT_DSD_ALERT_WARNING,
    OT_DSD_ALERT_ERROR,
    OT_DSD_ALERT_SUCCESS,
} ot_dsd_alert;

/* The text after "#": comma-separated tags, read with ot_dsd_tag_next
 * (empty entries are skipped). */
typedef struct ot_dsd_tags {
    ot_dsd_str raw;
} ot_dsd_tags;

/* "key:value" split at its first ':'; a bare tag has an empty value. */
typedef struct ot_dsd_tag {
    ot_dsd_str key, value;
    bool bare;
} ot_dsd_tag;

typedef struct ot_dsd_tag_iter {
    const char *p, *end;
} ot_dsd_tag_iter;

typedef struct ot_dsd_metric {
    ot_dsd_str name;
    ot_dsd_type type;
    /* All types but sets: nvalues doubles in values[]. For gauges,
     * explicit_sign[i] is 1 when values[i] was written with a leading '+'
     * or '-' (an etsy relative gauge when the receiver is set so);
     * any_sign says whether any was. */
    const double *values;
    const uint8_t *explicit_sign;
    uint32_t nvalues;
    uint32_t dropped; /* valid values past OT_DSD_MAX_VALUES, not stored */
    bool any_sign;
    /* Sets: the one member, every byte between ':' and '|' (sets are not
     * packed, so a ':' is part of the member); nvalues is 1. */
    ot_dsd_str set_value;
    double rate; /* @rate, 1 when absent; always in (0, 1] */
} ot_dsd_metric;

typedef struct ot_dsd_event {
    ot_dsd_str title, text; /* text still escaped: see ot_dsd_unescape */
    ot_dsd_str aggregation_key, source_type;
    ot_dsd_priority priority;
    ot_dsd_alert alert_type;
} ot_dsd_event;

typedef struct ot_dsd_service_check {
    ot_dsd_str name;
    int status;          /* 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN */
    ot_dsd_str message;  /* m:, the rest of the line ('|' included); escaped */
} ot_dsd_service_check;

typedef struct ot_dsd_item {
    ot_dsd_kind kind;
    ot_dsd_str line;      /* the whole line, without its "\r\n" */
    ot_dsd_reason reason; /* OT_DSD_MALFORMED only; OT_DSD_OK otherwise */
    /* Fields every kind may carry. */
    ot_dsd_tags tags;
    ot_dsd_str container_id;  /* c: */
    ot_dsd_str external_data; /* e: */
    ot_dsd_card cardinality;  /* card: */
    ot_dsd_str host;          /* h: (events, service checks) */
    bool has_timestamp;
    int64_t timestamp;        /* unix seconds: T (metrics), d: (others) */
    uint32_t skipped_fields;  /* unknown fields, unknown enum values */
    union {
        ot_dsd_metric metric;
        ot_dsd_event event;
        ot_dsd_service_check sc;
    } u;
} ot_dsd_item;

/* Caller-provided and reused; the values of the last metric live here
 * until the next call of ot_dsd_next. About 9 KiB: keep one per reader. */
typedef struct ot_dsd_iter {
    const char *p, *end;
    double values[OT_DSD_MAX_VALUES];
    uint8_t explicit_sign[OT_DSD_MAX_VALUES];
} ot_dsd_iter;

void ot_dsd_iter_init(ot_dsd_iter *it, const void *data, size_t len);

/* Fills *out with the next line's item and returns true; false when the
 * datagram is used up. Never fails otherwise: a bad line is an item of
 * kind OT_DSD_MALFORMED. */
bool ot_dsd_next(ot_dsd_iter *it, ot_dsd_item *out);

/* One line, no "\n" inside (ot_dsd_next calls this). values and
 * explicit_sign hold OT_DSD_MAX_VALUES entries. Returns out->reason. */
ot_dsd_reason ot_dsd_parse_line(const char *line, size_t n, double *values, uint8_t *explicit_sign,
                                ot_dsd_item *out);

void ot_dsd_tags_begin(const ot_dsd_tags *tags, ot_dsd_tag_iter *ti);
bool ot_dsd_tag_next(ot_dsd_tag_iter *ti, ot_dsd_tag *out);
/* How many tags the iteration yields. The parser does not count them on
 * its way (only a field long enough to hold more than OT_DSD_MAX_TAGS is
 * walked tag by tag), so this walks the field. */
uint32_t ot_dsd_tags_count(const ot_dsd_tags *tags);

/* Copies s into out (room for s.n bytes) with each two-byte "\n" escape
 * turned into a newline; returns the length written (<= s.n). For event
 * text and service check messages. */
size_t ot_dsd_unescape(ot_dsd_str s, char *out);

/* "no_value", "bad_rate", ...; "ok" for OT_DSD_OK. */
const char *ot_dsd_reason_name(ot_dsd_reason r);
const char *ot_dsd_type_name(ot_dsd_type t);

/* Decimal text to a finite double without strtod's locale cost on the
 * common forms ("12", "-3.25"); exponents and long mantissas go through
 * strtod on a bounded copy. false for anything else. Exposed for tests. */
bool ot_dsd_parse_double(const char *s, size_t n, double *out);

#endif
