/*
 * unix.c: the transport of wire.h on a Unix stream socket: where the daemon
 * listens, connect, send, wait for bytes, close.  The only file of the
 * module that knows what a socket is.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lockfs.h"
#include "protocol.h"
#include "wire.h"

/* lbw_socket_path: see wire.h. */
const char *
lbw_socket_path(char *out, size_t size)
{
	const char *env = getenv("LOCKBROKER_SOCKET");
	const char *run = getenv("XDG_RUNTIME_DIR");

	if (env != NULL && *env != '\0') {
		snprintf(out, size, "%s", env);
		return out;
	}
	if (run != NULL && run[0] == '/' &&
	    snprintf(out, size, "%s/%s", run, LBP_USER_SOCKET) < (int)size &&
	    access(out, F_OK) == 0)
		return out;
	snprintf(out, size, "%s", LBP_SYSTEM_SOCKET);
	return out;
}

/* lbw_open: see wire.h. */
int
lbw_open(struct lbw_conn *c, const char *path,
    void (*on_socket)(int fd, void *arg), void *arg, char *why, size_t size)
{
	struct sockaddr_un sun;
	int                r = -1;

	c->fd = -1;
	c->shut = 0;
	c->len = 0;
	snprintf(c->where, sizeof(c->where), "%s", path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, size, "no lockbroker daemon on %s: the socket "
		    "path is too long", path);
		goto out;
	}
	memcpy(sun.sun_path, path, strlen(path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd != -1 && on_socket != NULL)
		on_socket(c->fd, arg);
	if (c->fd == -1 || connect(c->fd, (struct sockaddr *)&sun,
	    sizeof(sun)) == -1) {
		snprintf(why, size, "no lockbroker daemon answers on %s: %s",
		    path, strerror(errno));
		lbw_close(c);
		goto out;
	}
	r = 0;
out:
	return r;
}

/* lbw_send: see wire.h. */
int
lbw_send(struct lbw_conn *c, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* lbw_fill: see wire.h. */
long
lbw_fill(struct lbw_conn *c, double until, char *why, size_t size)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	double        left;
	ssize_t       n;
	int           ms;

	if (c->len == sizeof(c->buf)) {
		snprintf(why, size, "a line longer than %d bytes",
		    LBP_LINE_MAX);
		return -1;
	}
	for (;;) {
		ms = -1;
		if (!isinf(until)) {
			if ((left = until - lockfs_now()) <= 0)
				return 0;
			ms = left > 3600 ? 3600 * 1000 : (int)(left * 1000) + 1;
		}
		if (poll(&pfd, 1, ms) == -1 && errno != EINTR) {
			snprintf(why, size, "poll: %s", strerror(errno));
			return -1;
		}
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) == 0)
			continue;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n == 0) {
			snprintf(why, size, "the daemon closed the connection");
			return -1;
		}
		if (n == -1 && errno != EINTR && errno != EAGAIN) {
			snprintf(why, size, "read: %s", strerror(errno));
			return -1;
		}
		if (n > 0) {
			c->len += (size_t)n;
			return (long)n;
		}
	}
}

/* lbw_shutdown: see wire.h.  A poll of another thread wakes with POLLHUP
 * and its read finds the end; a blocked send fails with EPIPE. */
void
lbw_shutdown(struct lbw_conn *c)
{
	int fd = c->fd;

	if (fd == -1)
		return;
	__atomic_store_n(&c->shut, 1, __ATOMIC_SEQ_CST);
	shutdown(fd, SHUT_RDWR);
}

/* lbw_close: see wire.h. */
void
lbw_close(struct lbw_conn *c)
{
	int saved = errno, fd = c->fd;

	/* c->fd is -1 before the descriptor is closed, so that a fork
	 * handler that closes c's descriptor in the child never closes a
	 * number the parent has freed (and may have given to another). */
	c->fd = -1;
	c->len = 0;
	if (fd != -1)
		close(fd);
	errno = saved;
}
