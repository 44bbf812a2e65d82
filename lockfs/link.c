/*
 * link.c: the link method (lockfile's LinkLockFile, the default).  The
 * owner creates its unique file beside the lock and hard-links it to
 * PATH.lock; link(2) fails when PATH.lock exists, which is the exclusion.
 * The lock is ours exactly when PATH.lock and our unique file are one inode.
 *
 * Unlike lockfile, a link(2) failure other than EEXIST (a file system
 * without hard links, a full disk) is LB_EFAILED, not an endless wait, and
 * ownership is decided by inode, not by a link count of 2, so a release
 * after break_lock never removes the next holder's lock.  Whatever someone
 * else put at the unique file's name (a symlink, a FIFO, a directory, a
 * file of theirs) is refused, never followed, waited on or made the lock.
 * Unique names are predictable, so a lock file is ours only when it is our
 * unique file's inode and that inode is a file of our uid: another user
 * can plant a file under our unique name and link it to PATH.lock, but
 * not make it ours.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "fs.h"
#include "lockfs.h"

/* Whether lock_file's look lk and our unique file's un are one inode, a
 * regular file of the owner's uid. */
static int
link_same(const struct lockfs_lock *l, const struct lockfs_fs_info *lk,
    const struct lockfs_fs_info *un)
{
	return lk->type == LOCKFS_FS_FILE && lk->dev == un->dev &&
	    lk->ino == un->ino && lk->uid == l->owner.uid;
}

/* link_is_mine for lock_file's look lk: 1 when it and our unique file
 * are the same inode, a regular file of the owner's uid; 0 when not;
 * else LB_ERROR. */
static int
link_is_mine_at(struct lockfs_lock *l, const struct lockfs_fs_info *lk,
    struct lockfs_err *err)
{
	struct lockfs_fs_info un;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->unique, 0, &un) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->unique);
	}
	return link_same(l, lk, &un);
}

/* For our unique file's look un (a regular file of the owner's uid): 1
 * when lock_file is that inode, 0 when it is not (or not there), else
 * LB_ERROR. */
static int
link_is_lock(struct lockfs_lock *l, const struct lockfs_fs_info *un,
    struct lockfs_err *err)
{
	struct lockfs_fs_info lk;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->lock_file, 0, &lk) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->lock_file);
	}
	return link_same(l, &lk, un);
}

/* 1 when lock_file and our unique file are the same inode, a regular file
 * of the owner's uid; 0 when not; else LB_ERROR. */
static int
link_is_mine(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_fs_info lk;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->lock_file, 0, &lk) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->lock_file);
	}
	return link_is_mine_at(l, &lk, err);
}

/* lockfs_release_check for the link method, with one look at lock_file
 * for both questions (there? ours?): 1 when the caller may remove it;
 * else LB_ENOTLOCKED, LB_ENOTMINE or LB_ERROR with err filled. */
static int
link_release_check(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_fs_info lk;
	int                   r;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->lock_file, 0, &lk) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return lockfs_fail(err, LB_ENOTLOCKED, 0, "%s is not "
			    "locked", l->path);
		return lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->lock_file);
	}
	if ((r = link_is_mine_at(l, &lk, err)) == 0)
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked, but not by "
		    "me", l->path);
	return r;
}

/* Whether a unique file st is one we may make our lock: a fresh one, a
 * regular file of the owner's uid, empty, with no other name (a file of
 * its found at the name may be anything of its: a pid file's lock spelt
 * so, which our release would remove).  0, or LB_EFAILED naming what it
 * is. */
static int
link_unique_check(struct lockfs_lock *l, const struct lockfs_fs_info *st,
    struct lockfs_err *err)
{
	if (st->type == LOCKFS_FS_FILE && st->uid == l->owner.uid &&
	    st->size == 0 && st->nlink == 1)
		return 0;
	if (st->type == LOCKFS_FS_FILE && st->uid == l->owner.uid)
		return lockfs_fail(err, LB_EFAILED, EEXIST, "cannot lock %s: "
		    "%s is a file of ours, but not a fresh one (%llu bytes, "
		    "%lu names)", l->path, l->unique, st->size, st->nlink);
	return lockfs_fail(err, LB_EFAILED, EEXIST, "cannot lock %s: %s is "
	    "not a file of ours (%s of uid %ld)", l->path, l->unique,
	    st->type == LOCKFS_FS_FILE ? "a file" : "no file",
	    (long)st->uid);
}

/*
 * Makes (or finds, left by an earlier try) our unique file: 0, or
 * LB_EFAILED when the name holds anything but a regular file of the
 * owner's uid (the uid files are made with: setfsuid, for the daemon's
 * client).  Another user's file made our lock would be one we could not
 * remove from a sticky directory, and one its user could.
 *
 * Made without opening it (mknod(2)), which never follows or reuses
 * what is at the name (two calls with the look at its owner, which
 * catches file systems that do not make files of the file-system uid,
 * where open, fstat and close were three).  When the name is taken (our
 * litter, or something planted) or it cannot be made so, the file is
 * opened instead: LOCKFS_FS_NONBLOCK, so that a FIFO planted there must
 * not hang us.
 */
static int
link_make_unique(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_fs_info st;
	int                   fd, r;

	if (lockfs_fs_make_at(LOCKFS_FS_CWD, l->unique, 0644) == 0) {
		if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->unique, 0, &st) == -1)
			return lockfs_fail(err, LB_EFAILED, errno, "cannot "
			    "lock %s: cannot look at %s", l->path, l->unique);
		return link_unique_check(l, &st, err);
	}
	fd = lockfs_fs_open(LOCKFS_FS_CWD, l->unique, LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_NONBLOCK);
	if (fd == -1)
		return lockfs_fail(err, LB_EFAILED, errno, "cannot lock %s: "
		    "cannot create %s", l->path, l->unique);
	if (lockfs_fs_info(fd, &st) == -1)
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot lock %s: "
		    "cannot look at %s", l->path, l->unique);
	else
		r = link_unique_check(l, &st, err);
	lockfs_fs_close(fd);
	return r;
}

/*
 * Looks before it makes anything: while PATH.lock is there, the answer
 * (ours, or another's) needs no unique file, and a waiter that tries
 * again and again leaves the directory untouched (a watcher of the
 * directory is not woken by the tries).  link(2) stays the arbiter when
 * PATH.lock is not there.
 */
static int
link_try_acquire(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_fs_info lk;
	int                   r;

	/* One look at PATH.lock for both questions (there? ours?). */
	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->lock_file, 0, &lk) == 0) {
		if ((r = link_is_mine_at(l, &lk, err)) == 1)
			r = 0;
		else if (r == 0)
			r = lockfs_fail(err, LB_EALREADY, 0, "%s is locked by "
			    "another owner", l->path);
		goto out;
	}
	if ((r = link_make_unique(l, err)) != 0)   /* also when it could
						     not look */
		goto out;
	if (lockfs_fs_link(l->unique, l->lock_file) == 0)
		goto out;
	if (errno != EEXIST) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot lock %s: "
		    "cannot link %s to %s", l->path, l->lock_file, l->unique);
		lockfs_fs_unlink(l->unique);
		goto out;
	}
	if ((r = link_is_mine(l, err)) == 1)
		r = 0;
	else if (r == 0)
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is locked by another "
		    "owner", l->path);
out:
	return r;
}

static void
link_abandon(struct lockfs_lock *l)
{
	struct lockfs_err     err;
	struct lockfs_fs_info un;
	int                   saved = errno;

	/* Only a file of ours: another's, planted at our name, is theirs.
	 * Our name first: mostly nothing is there (a release or a handoff
	 * removed it), and one look tells; when it is ours, that look is
	 * the one PATH.lock is compared with (is it the lock?). */
	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->unique, 0, &un) == 0 &&
	    un.type == LOCKFS_FS_FILE && un.uid == l->owner.uid &&
	    link_is_lock(l, &un, &err) == 0)
		lockfs_fs_unlink(l->unique);
	errno = saved;
}

static int
link_release(struct lockfs_lock *l, struct lockfs_err *err)
{
	int r;

	if ((r = link_release_check(l, err)) < 0)
		goto out;
	if (lockfs_fs_unlink(l->lock_file) == -1) {
		r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s",
		    l->lock_file);
		goto out;
	}
	r = 0;
out:
	/* Our unique file is litter unless it is the lock. */
	if (r == 0)
		lockfs_fs_unlink(l->unique);
	else if (r == LB_ENOTLOCKED || r == LB_ENOTMINE)
		link_abandon(l);
	return r;
}

/*
 * link_break: removes PATH.lock and the holder's unique file beside it (so
 * that nothing is left behind and the old holder's late release finds
 * nothing of its own).
 */
static int
link_break(struct lockfs_lock *l, struct lockfs_err *err)
{
	char                  unique[PATH_MAX];
	struct lockfs_fs_info st;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->lock_file, 0, &st) == 0 &&
	    st.type == LOCKFS_FS_FILE && st.nlink > 1 &&
	    lockfs_link_find_unique(l->dir, l->lock_file, st.dev, st.ino,
	    unique, sizeof(unique)) == 0)
		lockfs_fs_unlink(unique);
	return lockfs_remove_artefact(l, 1, err);
}

const struct lockfs_ops lockfs_link_ops = {
	.name = "link",
	.try_acquire = link_try_acquire,
	.release = link_release,
	.is_locked = lockfs_artefact_is_locked,
	.i_am_locking = link_is_mine,
	.break_lock = link_break,
	.holder = lockfs_holder_of,
	.abandon = link_abandon,
};
