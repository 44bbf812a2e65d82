/*
 * symlink_win32.c: the symlink method (lockfile's SymlinkLockFile) on
 * Windows: refused, every step answering LB_EFAILED with the reason, so
 * that the method table is whole and a caller is told, never acted for
 * in part or in appearance.
 *
 * Why refused.  Making a symbolic link on Windows needs a privilege
 * (SeCreateSymbolicLinkPrivilege, which only administrators have by
 * default) or Developer Mode; a process without either would fail every
 * acquire, and one with them would make links that other programs
 * (Python's lockfile among them, which reads them with os.readlink) read
 * only on file systems that have them.  And where CreateSymbolicLinkW
 * says it succeeded without making anything (wine's does), a lock would
 * be reported taken that excludes nobody.  So the method is not offered;
 * the link and mkdir methods give the same exclusion (and Python's
 * lockfile's default on Windows is the link method).
 */
#include "lockfs.h"

/* The one answer: LB_EFAILED, saying why and what to use instead. */
static int
refused(struct lockfs_lock *l, struct lockfs_err *err)
{
	(void)l;
	return lockfs_fail(err, LB_EFAILED, 0, "the symlink method is "
	    "not available on Windows: symbolic links there need a privilege "
	    "(SeCreateSymbolicLinkPrivilege) or Developer Mode, and a link "
	    "that is not really made would exclude nobody; use the link or "
	    "mkdir method");
}

static int
refused_holder(struct lockfs_lock *l, struct lockfs_holder *h,
    struct lockfs_err *err)
{
	lockfs_holder_clear(h);
	return refused(l, err);
}

const struct lockfs_ops lockfs_symlink_ops = {
	.name = "symlink",
	.try_acquire = refused,
	.release = refused,
	.is_locked = refused,
	.i_am_locking = refused,
	.break_lock = refused,
	.holder = refused_holder,
	.abandon = lockfs_abandon_nothing,
};
