/*
 * systemd.h: what the daemon needs of systemd, without libsystemd:
 * readiness notification and socket activation.
 */
#ifndef LBD_SYSTEMD_H
#define LBD_SYSTEMD_H

#include <stddef.h>

/* lbd_sd_notify: sends state ("READY=1", "STOPPING=1", ...) to
 * $NOTIFY_SOCKET.  0 when sent or when not run by systemd, -1 (errno) when
 * sending failed. */
int lbd_sd_notify(const char *state);

/*
 * lbd_sd_listen_fd: the listening socket passed by socket activation
 * ($LISTEN_PID is us and $LISTEN_FDS is 1): fd 3, checked to be a Unix
 * stream socket that listens, made non-blocking and close-on-exec.
 * Returns the fd, -2 when none was passed, or -1 with why (size bytes)
 * filled when what was passed is unusable.  Unsets the variables.
 */
int lbd_sd_listen_fd(char *why, size_t size);

#endif
