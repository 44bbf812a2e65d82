/*
 * service_none.c: service.h where the daemon has no service manager of
 * its own to talk to (Linux: systemd runs it in the foreground, as any
 * other program, and hears its readiness through systemd.h): --service
 * is refused, and the rest does nothing.
 */
#include <stdio.h>

#include "service.h"

/* lbd_service_run: see service.h.  -1: no service manager here. */
int
lbd_service_run(lbd_service_main_fn *main, void *arg, int *status,
    char *why, size_t size)
{
	(void)main;
	(void)arg;
	*status = 1;
	snprintf(why, size, "there is no Windows service control manager "
	    "here (systemd runs lockbrokerd without it: see lockbrokerd(8))");
	return -1;
}

/* lbd_service_on_stop: see service.h.  Not a service: nothing. */
void
lbd_service_on_stop(uv_loop_t *loop, void (*stop)(void *arg), void *arg)
{
	(void)loop;
	(void)stop;
	(void)arg;
}

/* lbd_service_ready: see service.h.  Not a service: nothing. */
void
lbd_service_ready(void)
{
}

/* lbd_service_close: see service.h.  Nothing taken: nothing. */
void
lbd_service_close(void)
{
}
