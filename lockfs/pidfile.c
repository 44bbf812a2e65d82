/*
 * pidfile.c: the pidfile method (lockfile's PIDLockFile): PATH itself is
 * created exclusively and holds the owner's pid and a newline.  The
 * artefact names only the process: here the lock is ours when the file
 * names our pid.  Which thread of the process holds it is known only to
 * the process (the library's owner registry) and to the daemon (its
 * table); they take it with lockfs_pidfile_create, which never takes a
 * pid file that exists already for their own.  Its name is not enough
 * either: the file must also be a file of our uid.
 *
 * Unlike lockfile, taking a lock this process already holds returns at once
 * (lockfile waits on itself), and a pid file that cannot be written is
 * removed again and reported.  Nor is PATH ever there empty: it is written
 * as an unnamed file and linked into place whole (create_linked), where
 * the file system and /proc allow it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs.h"
#include "lockfs.h"

/* 1 when PATH is a regular file of the owner's uid naming our pid, 0 when
 * not (or no regular file, or another user's file: a pid is public, and
 * anyone who may write the directory can write it), or LB_ERROR
 * (unreadable).  Only a regular file is read (lockfs_read_regular): a
 * FIFO or device planted at PATH is never opened. */
static int
pidfile_is_mine(struct lockfs_lock *l, struct lockfs_err *err)
{
	char    buf[64];
	ssize_t n;
	pid_t   pid;
	uid_t   uid = (uid_t)-1;

	if ((n = lockfs_read_regular(l->lock_file, buf, sizeof(buf),
	    &uid)) == -1) {
		if (errno == ENOENT || errno == ENOTDIR || errno == EINVAL ||
		    errno == ELOOP)
			return 0;
		return lockfs_fail(err, LB_ERROR, errno, "cannot read %s",
		    l->lock_file);
	}
	return n > 0 && uid == l->owner.uid &&
	    lockfs_pid_parse(buf, (size_t)n, &pid) == 0 && pid == l->owner.pid;
}

/*
 * Makes PATH holding our pid in one step (lockfs_os_create_whole: written
 * unnamed, then named), so that nobody killed half way leaves an empty
 * pid file, which would name nobody and so be held by nobody for good.
 * 0: made; 1: PATH exists; 2: not done so (the OS or file system cannot,
 * or another failure: the caller creates PATH in place, which reports
 * why).  Nothing is left on disk unless 0.
 */
static int
create_linked(const struct lockfs_lock *l)
{
	char buf[32];
	int  len = snprintf(buf, sizeof(buf), "%ld\n", (long)l->owner.pid);

	if (lockfs_os_create_whole(l->dir, l->lock_file, buf, (size_t)len,
	    0644) == 0)
		return 0;
	return errno == EEXIST ? 1 : 2;
}

/* Creates PATH holding our pid (create_linked, else in place as lockfile
 * does): 0; LB_EALREADY when PATH exists (whatever it names, when strict;
 * else unless it names our pid); LB_EFAILED. */
static int
pidfile_create(struct lockfs_lock *l, int strict, struct lockfs_err *err)
{
	char buf[32];
	int  fd = -1, len, r;

	if ((r = create_linked(l)) == 0)
		goto out;
	if (r == 2)
		fd = lockfs_fs_open(LOCKFS_FS_CWD, l->lock_file,
		    LOCKFS_FS_WRITE | LOCKFS_FS_CREATE | LOCKFS_FS_EXCL);
	else
		errno = EEXIST;
	r = 0;
	if (fd == -1) {
		if (errno != EEXIST)
			r = lockfs_fail(err, LB_EFAILED, errno,
			    "cannot create %s", l->lock_file);
		else if (strict)
			r = lockfs_fail(err, LB_EALREADY, 0,
			    "%s is locked", l->path);
		else if ((r = pidfile_is_mine(l, err)) == 1)
			r = 0;
		else if (r == 0)
			r = lockfs_fail(err, LB_EALREADY, 0,
			    "%s is locked by another process", l->path);
		goto out;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)l->owner.pid);
	if (lockfs_fs_write(fd, buf, (size_t)len) != len) {
		r = lockfs_fail(err, LB_EFAILED, errno == 0 ? ENOSPC : errno,
		    "cannot write %s", l->lock_file);
		lockfs_fs_unlink(l->lock_file);
	}
	lockfs_fs_close(fd);
out:
	return r;
}

static int
pidfile_try_acquire(struct lockfs_lock *l, struct lockfs_err *err)
{
	return pidfile_create(l, 0, err);
}

/* lockfs_pidfile_create: see lockfs.h. */
int
lockfs_pidfile_create(struct lockfs_lock *l, struct lockfs_err *err)
{
	return pidfile_create(l, 1, err);
}

static int
pidfile_release(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_release_file(l, pidfile_is_mine, err);
}

static int
pidfile_break(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_remove_artefact(l, 0, err);
}

const struct lockfs_ops lockfs_pidfile_ops = {
	.name = "pidfile",
	.try_acquire = pidfile_try_acquire,
	.release = pidfile_release,
	.is_locked = lockfs_artefact_is_locked,
	.i_am_locking = pidfile_is_mine,
	.break_lock = pidfile_break,
	.holder = lockfs_holder_of,
	.abandon = lockfs_abandon_nothing,
};
