/*
 * unported_win32.c: the methods lockfs does not take on Windows yet
 * (symlink, pidfile, sqlite: their files are not built there), each step
 * answering LB_EFAILED with the reason, so that the method table is
 * whole and a caller is told, never acted for in part.  The link and
 * mkdir methods are the real ones (link.c, mkdir.c).
 */
#include <errno.h>

#include "lockfs.h"

/* The one answer: LB_EFAILED, naming the method. */
static int
unported(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_fail(err, LB_EFAILED, ENOSYS, "the %s method is not "
	    "available on Windows yet", lockfs_method_name(l->method));
}

static int
unported_holder(struct lockfs_lock *l, struct lockfs_holder *h,
    struct lockfs_err *err)
{
	lockfs_holder_clear(h);
	return unported(l, err);
}

const struct lockfs_ops lockfs_symlink_ops = {
	.name = "symlink",
	.try_acquire = unported,
	.release = unported,
	.is_locked = unported,
	.i_am_locking = unported,
	.break_lock = unported,
	.holder = unported_holder,
	.abandon = lockfs_abandon_nothing,
};

const struct lockfs_ops lockfs_pidfile_ops = {
	.name = "pidfile",
	.try_acquire = unported,
	.release = unported,
	.is_locked = unported,
	.i_am_locking = unported,
	.break_lock = unported,
	.holder = unported_holder,
	.abandon = lockfs_abandon_nothing,
};

const struct lockfs_ops lockfs_sqlite_ops = {
	.name = "sqlite",
	.try_acquire = unported,
	.release = unported,
	.is_locked = unported,
	.i_am_locking = unported,
	.break_lock = unported,
	.holder = unported_holder,
	.abandon = lockfs_abandon_nothing,
};

/* lockfs_pidfile_create: see lockfs.h (pidfile.c is not built here). */
int
lockfs_pidfile_create(struct lockfs_lock *l, struct lockfs_err *err)
{
	return unported(l, err);
}

/* lockfs_init_for: see lockfs.h (handoff.c is not built here): locks
 * taken for another process are not available on Windows yet. */
int
lockfs_init_for(struct lockfs_lock *l, const char *path, unsigned method,
    const struct lockfs_owner *owner, struct lockfs_err *err)
{
	(void)l;
	(void)path;
	(void)method;
	(void)owner;
	return lockfs_fail(err, LB_EFAILED, ENOSYS, "locks taken for another "
	    "process are not available on Windows yet");
}
