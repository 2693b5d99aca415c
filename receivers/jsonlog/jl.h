/* jl.h: the jsonlog receiver's parts as they see each other. Lines become
 * OTLP log records in wire form in four steps: the container runtime's
 * framing is taken off (line.c), the message is scanned as JSON (jscan.c)
 * and mapped to a record (record.c) with the field names real loggers use
 * (fields.c) and their timestamp layouts (timefmt.c). Files are found by
 * discover.c, followed across rotations by tail.c, checkpointed by ckpt.c.
 * Everything here is pure (no I/O) except discover.c, tail.c and ckpt.c,
 * so the unit tests and fuzz targets drive it on bytes. */
#ifndef JL_H
#define JL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "config/config.h"

/* ---- JSON scanning (jscan.c) -------------------------------------------- */

#define JL_MAX_DEPTH 64

/* Skips JSON white space. */
const char *jl_ws(const char *p, const char *e);
/* A string at *pp (its opening quote). Its text, unescaped and with every
 * invalid UTF-8 sequence replaced by U+FFFD, is either a slice of the input
 * (*s, *n, when there was nothing to change) or appended to tmp (then *s
 * points into tmp->data). *pp moves past the closing quote. -1 when it is
 * not a well-formed string. */
int jl_str(const char **pp, const char *e, ot_buf *tmp, const char **s, size_t *n);
/* A number's extent at *pp; *pp moves past it. -1 when malformed. */
int jl_num_span(const char **pp, const char *e, const char **s, size_t *n);
/* Interprets number text: 1 integer (*i), 2 double (*d), -1 malformed. */
int jl_num_value(const char *s, size_t n, int64_t *i, double *d);
/* One JSON value at *pp appended as the content of an OTLP AnyValue
 * (objects as kvlists, arrays as arrays, integers as ints, other numbers
 * as doubles, null as an empty AnyValue). -1 on malformed JSON, too deep
 * nesting or out-of-memory. */
int jl_value(const char **pp, const char *e, ot_buf *out, ot_buf *tmp, int depth);
/* Appends bytes with invalid UTF-8 sequences replaced by U+FFFD. */
int jl_utf8_fix(ot_buf *out, const char *s, size_t n);
/* Length of the valid UTF-8 prefix of s. */
size_t jl_utf8_valid(const char *s, size_t n);

/* ---- timestamps (timefmt.c) --------------------------------------------- */

enum { JL_TS_AUTO = 0, JL_TS_RFC3339, JL_TS_EPOCH_S, JL_TS_EPOCH_MS, JL_TS_EPOCH_US,
       JL_TS_EPOCH_NS, JL_TS_STRPTIME };

/* RFC 3339 and its common relatives: 'T' or ' ' between date and time,
 * fraction after '.' or ',', zone Z, +hh:mm, +hhmm, +hh or none (UTC). */
int jl_ts_rfc3339(const char *s, size_t n, int64_t *ns);
/* Number text (integer or decimal) in the unit of layout, exactly. */
int jl_ts_epoch(const char *s, size_t n, int layout, int64_t *ns);
/* The unit guessed from the size of the number (s, ms, us or ns since
 * 1970 for dates between 1973 and 5138). */
int jl_ts_epoch_guess(const char *s, size_t n, int64_t *ns);
/* strptime(3) with pattern; %z honoured, a trailing fraction after the
 * seconds (".123") too. */
int jl_ts_strptime(const char *s, size_t n, const char *pattern, int64_t *ns);
/* By layout; for JL_TS_AUTO, number → epoch guess, text → RFC 3339 then
 * epoch text. is_num: the value was a JSON number. */
int jl_ts_parse(const char *s, size_t n, bool is_num, int layout, const char *pattern,
                int64_t *ns);

/* ---- field names and severities (fields.c) ------------------------------ */

enum { JL_F_OTHER = 0, JL_F_TIME, JL_F_SEVERITY, JL_F_BODY, JL_F_TRACE, JL_F_SPAN };

typedef struct jl_sevmap_ent {
    const char *word;
    int number;
} jl_sevmap_ent;

typedef struct jl_map {
    const char *ts_field;  /* NULL: recognised by name */
    int ts_layout;
    const char *ts_pattern;
    const char *sev_field; /* NULL: recognised by name */
    const jl_sevmap_ent *sevmap; /* user mapping, looked up before the defaults */
    size_t n_sevmap;
    const char *body_field; /* NULL: recognised by name */
} jl_map;

/* What a top-level key means under map. */
int jl_field_kind(const jl_map *m, const char *k, size_t n);
/* OTLP severity number of a word ("warn", "ERROR", "notice"), 0 if unknown. */
int jl_sev_word(const jl_map *m, const char *s, size_t n);
/* Of a number: bunyan/pino 10..60, syslog 0..7; 0 if neither. */
int jl_sev_number(int64_t v);
/* Config `severity.mapping` ({error: [err, E], warn: w}) → entries in a.
 * -1 with err on a bad name or shape. */
int jl_sevmap_build(const ot_node *n, ot_arena *a, jl_sevmap_ent **out, size_t *nout,
                    ot_err *err);
/* The OTLP number of a severity name ("error", "warn2"); 0 if unknown. */
int jl_sev_name(const char *s);

/* ---- records (record.c) -------------------------------------------------- */

/* What one record carries besides the message. */
typedef struct jl_rec {
    int64_t runtime_ns;  /* the container runtime's time, 0 when none */
    int64_t observed_ns; /* when it was read */
    const char *stream;  /* log.iostream, or NULL */
    size_t stream_len;
    const char *extra;   /* ready KeyValue bytes (field 6) appended to each record */
    size_t extra_len;
    bool truncated;      /* log.truncated: true */
} jl_rec;

/* Scratch buffers one reader reuses for every record. */
typedef struct jl_enc {
    ot_buf attrs, side, tmp, key, ext;
} jl_enc;

void jl_enc_free(jl_enc *e);

/* Appends one LogRecord, framed as ScopeLogs.log_records, to out. The
 * message is a JSON object mapped by m; when it is not valid JSON it is
 * kept as a string body with log.parse_error. -1 only on out-of-memory.
 * *parse_error says whether the fallback was taken. */
int jl_encode_json(jl_enc *e, const jl_map *m, const jl_rec *r, const char *msg, size_t n,
                   ot_buf *out, bool *parse_error);
/* The same with msg as a string body (invalid UTF-8 replaced). perr: the
 * value of log.parse_error, or NULL for none. */
int jl_encode_text(jl_enc *e, const jl_rec *r, const char *msg, size_t n, const char *perr,
                   ot_buf *out);
/* JSON when msg starts with '{', else text. */
int jl_encode_msg(jl_enc *e, const jl_map *m, const jl_rec *r, const char *msg, size_t n,
                  ot_buf *out, bool *parse_error);
/* A KeyValue with a string value, framed as field, appended to out. */
int jl_kv_str(ot_buf *out, unsigned field, const char *k, const char *v, size_t vn);

/* ---- container runtime framing (line.c) --------------------------------- */

enum { JL_FMT_AUTO = 0, JL_FMT_JSON, JL_FMT_DOCKER, JL_FMT_CRI, JL_FMT_TEXT };

/* The format of a file, told from its first line. */
int jl_detect(const char *line, size_t n);

typedef struct jl_framed {
    int64_t ts;         /* runtime time, 0 when absent or unparsable */
    const char *stream; /* "stdout" / "stderr", slice of the line or of msg buffer */
    size_t stream_len;
    bool partial;       /* more of the same message follows */
    const char *msg;    /* the message (CRI: slice of the line; docker: in tmp) */
    size_t msg_len;
} jl_framed;

/* `<rfc3339> <stream> <P|F> <message>`. -1 when the line is not CRI. */
int jl_cri_parse(const char *line, size_t n, jl_framed *out);
/* `{"log":"…","stream":"…","time":"…"}`; the log text is unescaped into
 * tmp (reset first; scratch is for the other strings) and its trailing newline taken off (a message without
 * one is partial). -1 when the line is not a Docker JSON line. */
int jl_docker_parse(const char *line, size_t n, ot_buf *tmp, ot_buf *scratch, jl_framed *out);

#endif
