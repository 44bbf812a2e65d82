/*
 * systemd.c: the sd_notify and sd_listen_fds protocols, spoken directly
 * (they are a datagram and two environment variables).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "systemd.h"

/* lbd_sd_notify: see systemd.h. */
int
lbd_sd_notify(const char *state)
{
	struct sockaddr_un sun;
	const char        *path = getenv("NOTIFY_SOCKET");
	socklen_t          len;
	size_t             n;
	int                fd, r = 0;

	if (path == NULL || *path == '\0')
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sun.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';         /* abstract namespace */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) == -1)
		r = -1;
	n = (size_t)errno;
	close(fd);
	errno = (int)n;
	return r;
}

/* lbd_sd_listen_fd: see systemd.h. */
int
lbd_sd_listen_fd(char *why, size_t size)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	struct stat st;
	int         type = 0, listening = 0, fd = -2;
	socklen_t   len;
	struct sockaddr_un sun;

	if (pid == NULL || fds == NULL || atol(pid) != (long)getpid())
		goto out;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	fd = -1;
	if (strcmp(fds, "1") != 0) {
		snprintf(why, size, "socket activation passed %s sockets, "
		    "expected 1", fds);
		goto out;
	}
	len = sizeof(type);
	if (fstat(3, &st) == -1 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM) {
		snprintf(why, size, "socket activation: fd 3 is not a stream "
		    "socket");
		goto out;
	}
	len = sizeof(listening);
	if (getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) ==
	    -1 || !listening) {
		snprintf(why, size, "socket activation: fd 3 does not listen");
		goto out;
	}
	len = sizeof(sun);
	if (getsockname(3, (struct sockaddr *)&sun, &len) == -1 ||
	    sun.sun_family != AF_UNIX) {
		snprintf(why, size, "socket activation: fd 3 is not a Unix "
		    "socket");
		goto out;
	}
	if (fcntl(3, F_SETFD, FD_CLOEXEC) == -1 ||
	    fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK) == -1) {
		snprintf(why, size, "socket activation: fd 3: %s",
		    strerror(errno));
		goto out;
	}
	fd = 3;
out:
	return fd;
}
