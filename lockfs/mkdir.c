/*
 * mkdir.c: the mkdir method (lockfile's MkdirLockFile): PATH.lock is a
 * directory, made with mkdir(2), holding one empty marker named after the
 * owner.  The lock is ours when our marker is in it.
 *
 * Unlike lockfile, a lock directory whose marker cannot be created is
 * removed again and reported (LB_EFAILED), never left behind.  The marker
 * is made in the directory just made, through a descriptor of it, so that
 * a symlink swapped in for it meanwhile is not followed.  The lock is ours
 * only when the directory and our marker are both of our uid.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lockfs.h"

/*
 * 1 when PATH.lock is a directory of the owner's uid holding our marker, a
 * regular file of the owner's uid; 0 when not; or LB_ERROR.  The marker's
 * name is predictable, so both owners are checked: whoever owns the
 * directory can empty and remove it at will, so a lock in another's
 * directory is not ours even with a marker of ours in it (a handoff to
 * another user does not put our marker there: see handoff.c).  The marker
 * is looked at through a descriptor of the directory judged.
 */
static int
mkdir_is_mine(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct stat st;
	int         dfd, r = 0, saved;

	dfd = open(l->lock_file, O_PATH | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (dfd == -1) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			r = lockfs_fail(err, LB_ERROR, errno,
			    "cannot look at %s", l->lock_file);
		goto out;
	}
	if (fstat(dfd, &st) == -1) {
		r = lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->lock_file);
		goto out;
	}
	if (st.st_uid != l->owner.uid)
		goto out;
	if (fstatat(dfd, strrchr(l->unique, '/') + 1, &st,
	    AT_SYMLINK_NOFOLLOW) == 0)
		r = S_ISREG(st.st_mode) && st.st_uid == l->owner.uid;
	else if (errno != ENOENT && errno != ENOTDIR)
		r = lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->unique);
out:
	if (dfd != -1) {
		saved = errno;
		close(dfd);
		errno = saved;
	}
	return r;
}

static int
mkdir_try_acquire(struct lockfs_lock *l, struct lockfs_err *err)
{
	int dfd, fd = -1, r = 0, saved;

	if (mkdir(l->lock_file, 0777) == -1) {
		if (errno != EEXIST)
			r = lockfs_fail(err, LB_EFAILED, errno,
			    "cannot create directory %s", l->lock_file);
		else if ((r = mkdir_is_mine(l, err)) == 1)
			r = 0;
		else if (r == 0)
			r = lockfs_fail(err, LB_EALREADY, 0,
			    "%s is locked by another owner", l->path);
		goto out;
	}
	dfd = open(l->lock_file, O_PATH | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (dfd != -1) {
		fd = openat(dfd, strrchr(l->unique, '/') + 1, O_WRONLY |
		    O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		saved = errno;
		close(dfd);
		errno = saved;
	}
	if (fd == -1) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot create %s",
		    l->unique);
		rmdir(l->lock_file);
		goto out;
	}
	close(fd);
out:
	return r;
}

static int
mkdir_release(struct lockfs_lock *l, struct lockfs_err *err)
{
	int r;

	if ((r = lockfs_release_check(l, mkdir_is_mine, err)) < 0)
		goto out;
	/* Another's marker beside ours (ENOTEMPTY) is a handoff that gave
	 * the lock on (the daemon adds the next holder's marker before it
	 * removes the old one): without our marker, it is theirs. */
	r = 0;
	if (unlink(l->unique) == -1 ||
	    (rmdir(l->lock_file) == -1 && errno != ENOTEMPTY &&
	    errno != EEXIST))
		r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s",
		    l->lock_file);
out:
	return r;
}

static int
mkdir_break(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_remove_artefact(l->lock_file, 1, err);
}

const struct lockfs_ops lockfs_mkdir_ops = {
	.name = "mkdir",
	.try_acquire = mkdir_try_acquire,
	.release = mkdir_release,
	.is_locked = lockfs_artefact_is_locked,
	.i_am_locking = mkdir_is_mine,
	.break_lock = mkdir_break,
	.holder = lockfs_holder_of,
	.abandon = lockfs_abandon_nothing,
};
