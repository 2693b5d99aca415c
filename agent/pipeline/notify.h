/* notify.h: tells a service manager (systemd, Type=notify) where the agent
 * is in its life: ready, reloading, stopping. Every call is a no-op when
 * the agent was not started by one (NOTIFY_SOCKET unset), so the run
 * sequence in main.c calls them unconditionally. */
#ifndef OT_NOTIFY_H
#define OT_NOTIFY_H

/* Every component has started and the self-telemetry endpoint answers. */
void ot_notify_ready(void);
/* A SIGHUP reload begins; ot_notify_ready() ends it, whatever its outcome
 * (a refused config leaves the old pipelines running: still ready). */
void ot_notify_reloading(void);
/* Shutdown begins: receivers stop, queues drain. */
void ot_notify_stopping(void);

#endif
