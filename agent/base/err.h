/* err.h: errors as values. A failing call fills an ot_err with one line
 * that a user can act on and returns -1 (or NULL); nothing deep inside the
 * agent prints and exits. */
#ifndef OT_ERR_H
#define OT_ERR_H

#include <stdarg.h>

typedef struct ot_err {
    char msg[512];
} ot_err;

#if defined(__GNUC__)
#define OT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define OT_PRINTF(a, b)
#endif

/* Sets the message; returns -1 so callers can `return ot_err_set(...)`.
 * err may be NULL. */
int ot_err_set(ot_err *err, const char *fmt, ...) OT_PRINTF(2, 3);
int ot_err_vset(ot_err *err, const char *fmt, va_list ap);
/* Puts "prefix: " in front of the message already there. */
int ot_err_prefix(ot_err *err, const char *fmt, ...) OT_PRINTF(2, 3);

#endif
