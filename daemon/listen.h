/*
 * listen.h: where the daemon listens for its clients, one implementation
 * per OS: listen_unix.c (Linux: a Unix stream socket at a path, a stale
 * one of a dead daemon replaced, made connectable by every user),
 * listen_win32.c (Windows: a named pipe, \\.\pipe\NAME; not built yet:
 * it refuses, saying so).  The loop's listener is a libuv pipe on both;
 * accepting, and what a connection may do, are conn.c's.
 */
#ifndef LBD_LISTEN_H
#define LBD_LISTEN_H

#include <stddef.h>

struct uv_pipe_s;               /* libuv's uv_pipe_t */

/* The longest name the daemon listens on, its NUL included: a Unix
 * socket's path (Linux's sun_path, checked by listen_unix.c); a pipe's
 * name (up to 256 characters on Windows) is held to it as well. */
#define LBD_LISTEN_NAME_MAX 108

/*
 * lbd_listen_bind: binds listener (initialised on the loop, not yet
 * listening) to name, which any local user may then connect to; the
 * directories above a socket's path are made (0755) when missing.  A
 * name left by a daemon that is gone is taken over; one a live daemon
 * serves (it accepts a connection) never is.  0, or -1 with why (size
 * bytes) naming name and the reason.
 */
int lbd_listen_bind(struct uv_pipe_s *listener, const char *name, char *why,
    size_t size);

#endif
