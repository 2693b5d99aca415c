/* log.h: the agent's own log. One line per event on stderr, logfmt:
 *   ts=2026-01-02T03:04:05.678Z level=info component=otlp msg="listening" endpoint=127.0.0.1:4317
 * Thread-safe; a line is written with one write(2) so lines never interleave. */
#ifndef OT_LOG_H
#define OT_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ot_log_level {
    OT_LOG_DEBUG = 0,
    OT_LOG_INFO = 1,
    OT_LOG_WARN = 2,
    OT_LOG_ERROR = 3,
} ot_log_level;

void ot_log_set_level(ot_log_level l);
ot_log_level ot_log_get_level(void);
/* "debug" "info" "warn"/"warning" "error" (any case); -1 when unknown. */
int ot_log_parse_level(const char *s);
/* Redirect output (tests); fd -1 restores stderr. */
void ot_log_set_fd(int fd);

/* msg is quoted; kv (may be NULL) is a printf format for the trailing
 * key=value pairs, written as given. */
void ot_log(ot_log_level l, const char *component, const char *msg, const char *kv, ...)
    __attribute__((format(printf, 4, 5)));

/* True at most once per interval_ns for the call site that owns *last_ns:
 * for warnings that a flood would otherwise repeat many times a second. */
bool ot_log_ratelimit(_Atomic int64_t *last_ns, int64_t interval_ns);

/* The distinct reasons a warning has named so far, for warnings that must
 * say each reason once: a backend that refuses every batch writes one line,
 * not one per batch. Zeroed is empty; safe from any thread without a lock. */
#define OT_LOG_ONCE_SLOTS 32
typedef struct ot_log_once {
    _Atomic uint64_t seen[OT_LOG_ONCE_SLOTS]; /* hashes of reasons; 0: free */
    atomic_bool full;
} ot_log_once;

enum { OT_LOG_SEEN = 0, OT_LOG_FIRST = 1, OT_LOG_NOW_FULL = 2 };
/* Whether the reason (a, b) is new: OT_LOG_FIRST (log it), OT_LOG_SEEN, or,
 * once, OT_LOG_NOW_FULL when a new reason finds no room (log that further
 * reasons go unsaid); after that every new reason is OT_LOG_SEEN. */
int ot_log_once_check(ot_log_once *o, const char *a, const char *b);

/* A copy of a peer's message that is safe inside a quoted logfmt value:
 * '"' becomes '\'' and control bytes spaces; cut to fit cap. */
void ot_log_clean(char *out, size_t cap, const char *in);

#define ot_debug(c, m, ...) ot_log(OT_LOG_DEBUG, c, m, __VA_ARGS__)
#define ot_info(c, m, ...) ot_log(OT_LOG_INFO, c, m, __VA_ARGS__)
#define ot_warn(c, m, ...) ot_log(OT_LOG_WARN, c, m, __VA_ARGS__)
#define ot_error(c, m, ...) ot_log(OT_LOG_ERROR, c, m, __VA_ARGS__)

#endif
