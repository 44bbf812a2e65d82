/*
 * testserver_unix.c: the OS part of the daemon's stand-in (testserver.h)
 * on a Unix stream socket in the run's directory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol.h"
#include "testlib.h"
#include "testserver.h"

/* ts_os_default_where: see testserver.h. */
const char ts_os_default_where[] = LBP_SYSTEM_SOCKET;

/* ts_os_where: see testserver.h. */
int
ts_os_where(char *out, size_t size, const char *name)
{
	struct sockaddr_un sun;
	int                n;

	n = snprintf(out, size, "%s/%s.sock", tl_top, name);
	return n < 0 || (size_t)n >= size ||
	    (size_t)n >= sizeof(sun.sun_path) ? -1 : 0;
}

/* ts_os_setenv: see testserver.h. */
int
ts_os_setenv(const char *name, const char *value)
{
	return value != NULL ? setenv(name, value, 1) : unsetenv(name);
}

/* ts_os_listen: see testserver.h. */
int
ts_os_listen(struct ts_os *o, const char *where, char *why, size_t size)
{
	struct sockaddr_un sun;
	int                fd;

	o->conn = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", where);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 8) == -1) {
		snprintf(why, size, "socket, bind, listen: %s",
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	o->listener = fd;
	return 0;
}

/* ts_os_may_act: see testserver.h.  Never on a Unix socket. */
int
ts_os_may_act(struct ts_os *o)
{
	(void)o;
	return 0;
}

/* ts_os_accept: see testserver.h. */
int
ts_os_accept(struct ts_os *o, char *why, size_t size)
{
	int fd;

	while ((fd = accept4((int)o->listener, NULL, NULL,
	    SOCK_CLOEXEC)) == -1 && errno == EINTR)
		;
	if (fd == -1) {
		snprintf(why, size, "accept: %s", strerror(errno));
		return -1;
	}
	o->conn = fd;
	return 0;
}

/* ts_os_read: see testserver.h. */
long
ts_os_read(struct ts_os *o, char *buf, size_t size)
{
	ssize_t n;

	while ((n = read((int)o->conn, buf, size)) == -1 && errno == EINTR)
		;
	return (long)n;
}

/* ts_os_write: see testserver.h. */
int
ts_os_write(struct ts_os *o, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = send((int)o->conn, buf, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ts_os_hangup: see testserver.h. */
void
ts_os_hangup(struct ts_os *o)
{
	if (o->conn != -1)
		close((int)o->conn);
	o->conn = -1;
}

/* ts_os_close: see testserver.h. */
void
ts_os_close(struct ts_os *o)
{
	if (o->listener != -1)
		close((int)o->listener);
	o->listener = -1;
}
