/*
 * systemd_none.c: systemd.h where there is no systemd (Windows): nothing
 * to notify, no socket passed.  The daemon then listens on its own
 * (listen.h); readiness is told by its log line alone.
 */
#include <stddef.h>

#include "systemd.h"

/* lbd_sd_notify: see systemd.h.  Not run by systemd: 0, nothing sent. */
int
lbd_sd_notify(const char *state)
{
	(void)state;
	return 0;
}

/* lbd_sd_listen_fd: see systemd.h.  None passed: -2. */
int
lbd_sd_listen_fd(char *why, size_t size)
{
	(void)why;
	(void)size;
	return -2;
}
