/*
 * listen.h: where the daemon listens for its clients, one implementation
 * per OS: listen_unix.c (Linux: a Unix stream socket at a path, a stale
 * one of a dead daemon replaced, made connectable by every user),
 * listen_win32.c (Windows: a named pipe, \\.\pipe\NAME, and a lock
 * file beside the state database refusing a second daemon).  The loop's listener is a libuv pipe on both;
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

/*
 * lbd_listen_default: the name the system's daemon listens on
 * (LBP_SYSTEM_SOCKET on Linux, LBP_SYSTEM_PIPE on Windows).
 */
const char *lbd_listen_default(void);

/*
 * lbd_listen_is_relative: 1 when name is a file-system path relative to the
 * working directory (to be made absolute before the daemon leaves it),
 * 0 when it is absolute or no path at all (a pipe's name).
 */
int lbd_listen_is_relative(const char *name);

/*
 * lbd_listen_claim: before the state database is opened: makes this
 * daemon the only one on state, which listens on name, or refuses with
 * why (size bytes) naming both.  Linux: nothing (a live daemon's socket
 * is never taken over: lbd_listen_bind); Windows, where wine lets a
 * second server bind a pipe's name: a named mutex of the pipe's name and
 * an exclusive lock (LockFileEx) on STATE.lock, both held until the
 * process ends.  0, or -1 with why.
 */
int lbd_listen_claim(const char *name, const char *state, char *why,
    size_t size);

#endif
