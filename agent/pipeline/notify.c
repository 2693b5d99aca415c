/* notify.c: sd_notify messages for systemd's Type=notify (see notify.h).
 * libsystemd is used rather than a hand-written datagram so the socket
 * rules (abstract names, credentials, the variable's checks) stay the
 * service manager's own. A failed send is logged once at debug level and
 * otherwise ignored: the agent runs the same with or without a manager. */
#include "pipeline/notify.h"

#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"

static void send_state(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        ot_debug("agent", "sd_notify failed", "error=\"%s\"", strerror(-rc));
}

void ot_notify_ready(void)
{
    char msg[96];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=running\nMAINPID=%ld", (long)getpid());
    send_state(msg);
}

void ot_notify_reloading(void)
{
    /* MONOTONIC_USEC lets a manager that supports Type=notify-reload
     * (systemd 253 and later) match this message to its reload request;
     * older ones ignore the field. */
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%lld",
             (long long)(ot_now_ns() / 1000));
    send_state(msg);
}

void ot_notify_stopping(void)
{
    send_state("STOPPING=1\nSTATUS=stopping");
}
