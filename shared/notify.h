/* notify: tell a service manager (systemd, Type=notify) how the daemon is
 * doing, with the documented datagram protocol of sd_notify(3): one
 * "KEY=VALUE\n..." datagram per message to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@').
 * Without $NOTIFY_SOCKET every call does nothing.  The daemons only: the
 * preload shim lives in another program's process and never notifies. */
#ifndef TLSFWD_NOTIFY_H
#define TLSFWD_NOTIFY_H

/** notify_init(): read $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID,
 *  remove them from the environment (nothing we start should inherit them)
 *  and connect a datagram socket to the manager.  Before any thread starts
 *  (it changes the environment).  0, or -1 (logged) if $NOTIFY_SOCKET is
 *  set but unusable: the daemon then runs without notifying. */
int notify_init(void);

/** notify_send(msg): msg ("READY=1", "STATUS=...\nKEY=..." ...) as one
 *  datagram, never blocking.  0 if sent, -1 if not (no socket, or the
 *  manager's queue is full: the first failure is logged). */
int notify_send(const char *msg);

/** notify_reloading(): "RELOADING=1" with the MONOTONIC_USEC= systemd 253
 *  and later expect beside it.  Returns as notify_send(). */
int notify_reloading(void);

/** notify_watchdog(): the watchdog interval in seconds systemd asked for
 *  ($WATCHDOG_USEC, for this process), or 0 for none. */
double notify_watchdog(void);

/** notify_close(): close the socket (at exit). */
void notify_close(void);

#endif
