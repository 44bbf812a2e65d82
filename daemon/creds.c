/*
 * creds.c: acting on the filesystem with a client's credentials.  The
 * broker never does for a client what the client could not do itself: it
 * creates and removes artefacts with the client's filesystem uid and gid
 * (setfsuid/setfsgid: per thread, and the daemon has one).  Supplementary
 * groups are not taken on (setgroups would change the whole process), so
 * a directory writable only through a supplementary group is refused: the
 * safe side.  A daemon that does not run as root (a per-user instance)
 * serves only its own user and needs no switch.
 */
#include <errno.h>
#include <sys/fsuid.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

/* Whether lbd_creds_enter switched (the daemon has one thread): a client
 * of the daemon's own uid needs no switch, and then no switch back. */
static int creds_switched;

/*
 * lbd_creds_enter: takes on (uid, gid) for filesystem access.  Returns 0,
 * or LB_EFAILED with err filled when the switch cannot be made (a daemon
 * not running as root serving another user).  Pair with lbd_creds_leave.
 */
int
lbd_creds_enter(uid_t uid, gid_t gid, struct lockfs_err *err)
{
	uid_t self = geteuid();

	if (uid == self)
		return 0;
	if (self != 0)
		return lockfs_fail(err, LB_EFAILED, EPERM, "this broker runs as "
		    "uid %ld and cannot act for uid %ld", (long)self,
		    (long)uid);
	creds_switched = 1;
	setfsgid(gid);
	setfsuid(uid);
	/* setfsuid reports the previous value; asking again tells whether
	 * the switch took. */
	if ((uid_t)setfsuid((uid_t)-1) != uid ||
	    (gid_t)setfsgid((gid_t)-1) != gid) {
		lbd_creds_leave();
		return lockfs_fail(err, LB_EFAILED, EPERM, "cannot take on uid "
		    "%ld gid %ld", (long)uid, (long)gid);
	}
	return 0;
}

/* lbd_creds_leave: back to the daemon's own filesystem credentials (a
 * no-op when lbd_creds_enter did not switch). */
void
lbd_creds_leave(void)
{
	int saved = errno;

	if (!creds_switched)
		return;
	setfsuid(geteuid());
	setfsgid(getegid());
	creds_switched = 0;
	errno = saved;
}
