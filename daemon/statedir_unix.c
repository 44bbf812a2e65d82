/*
 * statedir_unix.c: statedir.h on Linux: the XDG base directories for a
 * user's daemon, /var/lib for root's.
 */
#include <stdio.h>
#include <stdlib.h>

#include "os.h"
#include "statedir.h"

/* lbd_statedir_default: see statedir.h. */
int
lbd_statedir_default(char *state, size_t size, char *why, size_t why_size)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int         n, r = -1;

	if (lbd_os_euid() == 0)
		n = snprintf(state, size, "/var/lib/lockbroker/state.sqlite");
	else if (xdg != NULL && xdg[0] == '/')
		n = snprintf(state, size, "%s/lockbroker/state.sqlite", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(state, size,
		    "%s/.local/state/lockbroker/state.sqlite", home);
	else {
		snprintf(why, why_size, "no state path: give --state or set "
		    "HOME");
		goto out;
	}
	if (n < 0 || (size_t)n >= size) {
		snprintf(why, why_size, "state path too long");
		goto out;
	}
	r = 0;
out:
	return r;
}

/* lbd_statedir_judge: see statedir.h.  Nothing judged: the Linux daemon
 * has never judged a state directory it is given (root's default is
 * made 0700 under /var/lib, which only root may change). */
int
lbd_statedir_judge(const char *state, char *why, size_t size)
{
	(void)state;
	(void)why;
	(void)size;
	return 0;
}

/* lbd_statedir_reclaim: see statedir.h.  Nothing moved: root's default
 * parent is root's alone, a user's is under his own home. */
int
lbd_statedir_reclaim(const char *state, char *moved, char *why, size_t size)
{
	(void)state;
	(void)why;
	moved[0] = '\0';
	(void)size;
	return 0;
}
