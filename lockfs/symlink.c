/*
 * symlink.c: the symlink method (lockfile's SymlinkLockFile): PATH.lock is a
 * symbolic link whose target is the owner's unique name (a basename; the
 * target need not exist).  symlink(2) fails when PATH.lock exists.
 *
 * Unlike lockfile, a missing or unwritable directory is LB_EFAILED rather
 * than a wait until the timeout, and anything at PATH.lock (not only a
 * symlink) counts as locked, so a lock taken with another method is seen;
 * and a link naming us is ours only when it is a link of our uid.
 */
#include <errno.h>
#include <string.h>

#include "fs.h"
#include "lockfs.h"

/*
 * 1 when PATH.lock is a symlink of the owner's uid whose target is our
 * unique name, 0 when not, or LB_ERROR.  The name alone proves nothing
 * (it is predictable: anyone who may write the directory can make such a
 * link); the link's own owner does, since nobody but root makes a link
 * of another's uid.  The target need not exist (lockfile never makes it),
 * so it is not looked at.  The link is opened once, only to name it
 * (lockfs_fs_open: not followed), and its owner and target read from
 * that one descriptor, so both are of the same link.
 */
static int
symlink_is_mine(struct lockfs_lock *l, struct lockfs_err *err)
{
	char                  target[PATH_MAX];
	struct lockfs_fs_info fi;
	int                   fd, r = 0;

	fd = lockfs_fs_open(LOCKFS_FS_CWD, l->lock_file, 0);
	if (fd == -1) {
		if (errno != ENOENT && errno != ENOTDIR)
			r = lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
			    l->lock_file);
		goto out;
	}
	if (lockfs_fs_info(fd, &fi) == -1) {
		r = lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->lock_file);
		goto out;
	}
	if (fi.type != LOCKFS_FS_SYMLINK || fi.uid != l->owner.uid)
		goto out;
	if (lockfs_fs_readlink_at(fd, "", target, sizeof(target)) == -1) {
		r = lockfs_fail(err, LB_ERROR, errno, "cannot read %s",
		    l->lock_file);
		goto out;
	}
	r = strcmp(target, l->unique) == 0;
out:
	lockfs_fs_close(fd);    /* keeps errno */
	return r;
}

static int
symlink_try_acquire(struct lockfs_lock *l, struct lockfs_err *err)
{
	int r;

	if (lockfs_fs_symlink(l->unique, l->lock_file) == 0)
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
	return lockfs_release_file(l, symlink_is_mine, err);
}

static int
symlink_break(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_remove_artefact(l, 1, err);
}

const struct lockfs_ops lockfs_symlink_ops = {
	.name = "symlink",
	.try_acquire = symlink_try_acquire,
	.release = symlink_release,
	.is_locked = lockfs_artefact_is_locked,
	.i_am_locking = symlink_is_mine,
	.break_lock = symlink_break,
	.holder = lockfs_holder_of,
	.abandon = lockfs_abandon_nothing,
};
