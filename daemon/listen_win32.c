/*
 * listen_win32.c: the daemon's listener (listen.h) on Windows: a named
 * pipe, \\.\pipe\NAME (uv_pipe_bind), with a security descriptor that
 * lets authenticated users connect and only the daemon make instances
 * (uv_pipe_chmod, or the descriptor set on each instance), and a lock
 * file beside the state database refusing a second daemon (wine lets a
 * second server bind the same name).  Not built yet (docs/WINDOWS.md,
 * "The daemon on Windows"): it refuses with ENOSYS's reason, binding
 * nothing, so that no pipe with Windows' default descriptor is served.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "listen.h"

/* lbd_listen_bind: see listen.h.  Not built yet: -1, ENOSYS's reason in
 * why, nothing bound. */
int
lbd_listen_bind(uv_pipe_t *listener, const char *name, char *why,
    size_t size)
{
	(void)listener;
	snprintf(why, size, "cannot listen on %s: %s (the named pipe's "
	    "listener is not built yet)", name, strerror(ENOSYS));
	return -1;
}
