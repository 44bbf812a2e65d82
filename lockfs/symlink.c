/*
 * symlink.c: the symlink method (lockfile's SymlinkLockFile): PATH.lock is a
 * symbolic link whose target is the owner's unique name (a basename; the
 * target need not exist).  symlink(2) fails when PATH.lock exists.
 *
 * Unlike lockfile, a missing or unwritable directory is LB_EFAILED rather
 * than a wait until the timeout, and anything at PATH.lock (not only a
 * symlink) counts as locked, so a lock taken with another method is seen.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lockfs.h"

/* 1 when PATH.lock is a symlink to our unique name, 0 when not, or
 * LB_ERROR. */
static int
symlink_is_mine(struct lockfs_lock *l, struct lockfs_err *err)
{
	char    target[PATH_MAX];
	ssize_t n;

	n = readlink(l->lock_file, target, sizeof(target) - 1);
	if (n == -1) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EINVAL)
			return 0;
		return lockfs_fail(err, LB_ERROR, errno, "cannot read %s",
		    l->lock_file);
	}
	target[n] = '\0';
	return strcmp(target, l->unique) == 0;
}

static int
symlink_try_acquire(struct lockfs_lock *l, struct lockfs_err *err)
{
	int r;

	if (symlink(l->unique, l->lock_file) == 0)
		return 0;
	if (errno != EEXIST)
		return lockfs_fail(err, LB_EFAILED, errno,
		    "cannot create symlink %s", l->lock_file);
	if ((r = symlink_is_mine(l, err)) == 1)
		r = 0;
	else if (r == 0)
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is locked by another "
		    "owner", l->path);
	return r;
}

static int
symlink_release(struct lockfs_lock *l, struct lockfs_err *err)
{
	int r;

	if ((r = lockfs_is_present(l->lock_file, err)) <= 0) {
		if (r == 0)
			r = lockfs_fail(err, LB_ENOTLOCKED, 0,
			    "%s is not locked", l->path);
		goto out;
	}
	if ((r = symlink_is_mine(l, err)) <= 0) {
		if (r == 0)
			r = lockfs_fail(err, LB_ENOTMINE, 0,
			    "%s is locked, but not by me", l->path);
		goto out;
	}
	r = 0;
	if (unlink(l->lock_file) == -1)
		r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s",
		    l->lock_file);
out:
	return r;
}

static int
symlink_is_locked(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_is_present(l->lock_file, err);
}

static int
symlink_break(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_remove_artefact(l->lock_file, 1, err);
}

/* Nothing to undo: a failed symlink(2) leaves nothing. */
static void
symlink_abandon(struct lockfs_lock *l)
{
	(void)l;
}

const struct lockfs_ops lockfs_symlink_ops = {
	.name = "symlink",
	.try_acquire = symlink_try_acquire,
	.release = symlink_release,
	.is_locked = symlink_is_locked,
	.i_am_locking = symlink_is_mine,
	.break_lock = symlink_break,
	.holder = lockfs_holder_of,
	.abandon = symlink_abandon,
};
