/*
 * listen_unix.c: the daemon's listener (listen.h) on Linux: a Unix stream
 * socket at a path, 0666 (any user may connect; the daemon knows each
 * peer's credentials, os.h), a socket file left by a dead daemon
 * replaced, a live daemon's never taken.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dirs.h"
#include <uv.h>

#include "listen.h"
#include "log.h"
#include "protocol.h"

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) ==
    LBD_LISTEN_NAME_MAX, "LBD_LISTEN_NAME_MAX is sun_path's size");

/* lbd_listen_bind: see listen.h.  A file at path that is no socket is
 * refused; a socket nobody accepts on is a dead daemon's, replaced; the
 * socket is bound with umask 0111 and made 0666. */
int
lbd_listen_bind(uv_pipe_t *listener, const char *path, char *why,
    size_t size)
{
	struct sockaddr_un sun;
	struct stat        st;
	mode_t             old;
	int                fd, r;

	if (lbd_dirs_make_parent(path, 0755, why, size) != 0)
		return -1;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(why, size, "%s exists and is not a socket",
			    path);
			return -1;
		}
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, path, strlen(path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		r = fd == -1 ? -1 :
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun));
		if (fd != -1)
			close(fd);
		if (r == 0) {
			snprintf(why, size, "another lockbrokerd listens on "
			    "%s", path);
			return -1;
		}
		log_notice("replacing the stale socket %s", path);
		unlink(path);
	}
	old = umask(0111);
	r = uv_pipe_bind(listener, path);
	umask(old);
	if (r != 0) {
		snprintf(why, size, "cannot bind %s: %s", path, uv_strerror(r));
		return -1;
	}
	chmod(path, 0666);
	return 0;
}

/* lbd_listen_default: see listen.h. */
const char *
lbd_listen_default(void)
{
	return LBP_SYSTEM_SOCKET;
}

/* lbd_listen_is_relative: see listen.h.  A path not starting with '/'. */
int
lbd_listen_is_relative(const char *name)
{
	return name[0] != '/';
}

/* lbd_listen_claim: see listen.h.  Nothing to claim. */
int
lbd_listen_claim(const char *name, const char *state, char *why, size_t size)
{
	(void)name;
	(void)state;
	(void)why;
	(void)size;
	return 0;
}
