/* notify.c: sd_notify messages for systemd's Type=notify (see notify.h).
 *
 * The messages go through Debian's libsystemd, so the socket rules
 * (abstract names, the variable's checks) stay the service manager's own.
 * The library is opened with dlopen the first time NOTIFY_SOCKET is set,
 * not linked: linked, it and the five libraries it needs (libgcrypt,
 * liblzma, liblz4, libcap, libgpg-error) added about 1 MiB of resident
 * pages to every agent, also the many that no systemd starts (containers,
 * sidecars). A send that fails is logged at debug level and otherwise
 * ignored: the agent runs the same with or without a manager. */
#include "pipeline/notify.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"

typedef int (*notify_fn)(int unset_environment, const char *state);

/* The pointer below must have sd_notify's own type. */
_Static_assert(__builtin_types_compatible_p(__typeof__(&sd_notify), notify_fn),
               "sd_notify's prototype changed");

/* Only the thread that runs main's signal loop calls these. */
static notify_fn loaded;
static int tried;

static notify_fn lib(void)
{
    if (tried)
        return loaded;
    tried = 1;
    void *h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (h)
        loaded = (notify_fn)dlsym(h, "sd_notify");
    if (!loaded)
        ot_warn("agent", "NOTIFY_SOCKET is set but libsystemd.so.0 cannot be loaded; "
                "systemd will not hear that the agent is ready",
                "error=\"%s\"", dlerror());
    /* The handle stays open for the life of the process, as a linked
     * library would. */
    return loaded;
}

static void send_state(const char *state)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    if (!sock || !*sock)
        return;
    notify_fn fn = lib();
    if (!fn)
        return;
    int rc = fn(0, state);
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
