/* err.c: filling ot_err values (see err.h). */
#include "base/err.h"

#include <stdio.h>
#include <string.h>

int ot_err_vset(ot_err *err, const char *fmt, va_list ap)
{
    if (err)
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return -1;
}

int ot_err_set(ot_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ot_err_vset(err, fmt, ap);
    va_end(ap);
    return -1;
}

int ot_err_prefix(ot_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char pre[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", pre, old);
    return -1;
}
