/*
 * service.h: lockbrokerd as a service of the OS's service manager, where
 * that is not systemd (systemd runs it in the foreground: systemd.h):
 * Windows' service control manager (service_win32.c); elsewhere
 * service_none.c, where --service is refused.  The daemon's life runs as
 * it does in a console (main.c), told ready once it listens, and the
 * manager's stop is a loop event, as SIGTERM is on Linux.
 */
#ifndef LBD_SERVICE_H
#define LBD_SERVICE_H

#include <stddef.h>
#include <uv.h>

/* The daemon's life, run as the service (lbd_service_run): its exit
 * status (0 after a stop). */
typedef int lbd_service_main_fn(void *arg);

/*
 * lbd_service_run: runs main(arg) as the service the manager started
 * this process for, in the service's own thread; blocks until it has
 * returned and the manager was told the service stopped (with *status,
 * main's status, as its exit code when not 0).  0 with *status set, or
 * -1 with why (size bytes) when this process was not started by the
 * service manager, or the OS has none.
 */
int  lbd_service_run(lbd_service_main_fn *main, void *arg, int *status,
    char *why, size_t size);

/*
 * lbd_service_on_stop: from now on, in a service, the manager's stop and
 * the system's shutdown call stop(arg) in loop (through a handle that
 * does not keep the loop running; lbd_service_close closes it).
 * Nothing when not a service.  Never fails.
 */
void lbd_service_on_stop(uv_loop_t *loop, void (*stop)(void *arg),
    void *arg);

/* lbd_service_ready: in a service, tells the manager it runs (and takes
 * stop and shutdown); nothing otherwise.  Call once it listens. */
void lbd_service_ready(void);

/* lbd_service_close: in the loop's thread, before the loop's last run:
 * the stop is no longer taken (lbd_service_on_stop's handle closed);
 * nothing when it was not. */
void lbd_service_close(void);

#endif
