/* tcp.c: the optional `endpoint`: newline-delimited JSON over TCP, for
 * applications that ship their logs straight to the agent. Not built yet:
 * starting with an endpoint set is an error, so a config never silently
 * loses what it asked for. */
#include "jlr.h"

int jlr_tcp_start(jlr *r, ot_err *err)
{
    return ot_err_set(err, "endpoint: newline-delimited JSON over TCP is not built yet");
}

void jlr_tcp_stop(jlr *r)
{
    (void)r;
}
