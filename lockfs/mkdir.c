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
 *
 * Never a lock directory without a marker.  Made with mkdir(2) and then
 * filled, or emptied and then removed, PATH.lock would be a directory
 * naming nobody for an instant; a process killed in that instant (the
 * daemon SIGKILLed while it waits in mkdir(2) on a busy disk, say) would
 * leave a lock that nobody holds, nobody can judge stale, and everyone
 * waits for for ever.  So the directory is put together beside the lock,
 * at the temporary name DIR/.lockbroker-mkdir.UNIQUE (UNIQUE: our marker's
 * name), and renamed into place with RENAME_NOREPLACE, which fails while
 * PATH.lock exists.  A release renames PATH.lock, when it holds our marker
 * and nothing else, back to that name before it empties it, under the
 * directory's flock (handoff.c), so that no handoff adds the next holder's
 * marker to what is taken away (the flock taken by another: in place); a
 * break, by this method or another, renames it away too (lockdir.c, which
 * holds these steps).  A process killed half way leaves at most its
 * temporary, which is no lock: its owner's next acquire or release
 * removes it, and, once the process is gone, so does the next lock taken
 * or taken away by a process of its uid (lockfs_lockdir_tidy).  Where the
 * file system has no RENAME_NOREPLACE, the lock is made and removed in
 * place, as lockfile does.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fs.h"
#include "lockfs.h"

/* Our marker's name in PATH.lock (l's unique name's base). */
static const char *
marker_of(const struct lockfs_lock *l)
{
	return strrchr(l->unique, '/') + 1;
}

/*
 * 1 when the directory open as dfd, whose status is *st, is of the
 * owner's uid and holds our marker, a regular file of the owner's uid; 0
 * when not; or LB_ERROR.  The marker's name is predictable, so both
 * owners are checked: whoever owns the directory can empty and remove it
 * at will, so a lock in another's directory is not ours even with a
 * marker of ours in it (a handoff to another user does not put our
 * marker there: see handoff.c).  The marker is looked at through the
 * descriptor of the directory judged.
 */
static int
mine_at(struct lockfs_lock *l, int dfd, const struct lockfs_fs_info *st,
    struct lockfs_err *err)
{
	struct lockfs_fs_info mk;
	int                   r = 0;

	if (st->uid != l->owner.uid)
		goto out;
	if (lockfs_fs_info_at(dfd, marker_of(l), 0, &mk) == 0)
		r = mk.type == LOCKFS_FS_FILE && mk.uid == l->owner.uid;
	else if (errno != ENOENT && errno != ENOTDIR)
		r = lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->unique);
out:
	return r;
}

/* 1 when PATH.lock is a directory of the owner's uid holding our marker
 * (mine_at), looked at through a descriptor of it; 0 when not (also when
 * it is not there, or not a directory); or LB_ERROR. */
static int
mkdir_is_mine(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_fs_info st;
	int                   dfd, r = 0;

	dfd = lockfs_fs_open(LOCKFS_FS_CWD, l->lock_file, LOCKFS_FS_DIR);
	if (dfd == -1) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			r = lockfs_fail(err, LB_ERROR, errno,
			    "cannot look at %s", l->lock_file);
		goto out;
	}
	if (lockfs_fs_info(dfd, &st) == -1) {
		r = lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->lock_file);
		goto out;
	}
	r = mine_at(l, dfd, &st, err);
out:
	lockfs_fs_close(dfd);
	return r;
}

/*
 * Puts our marker into the directory open as dfd, exclusively: made
 * without opening it, which never follows or reuses what is at the name
 * (one call, where open and close were two); where the file system makes
 * no file so, opened with LOCKFS_FS_EXCL.  0, or -1 with errno (EEXIST:
 * the name is taken).
 */
static int
add_marker_at(const struct lockfs_lock *l, int dfd)
{
	int fd;

	if (lockfs_fs_make_at(dfd, marker_of(l), 0644) == 0)
		return 0;
	if (errno == EEXIST)
		return -1;
	fd = lockfs_fs_open(dfd, marker_of(l), LOCKFS_FS_WRITE |
	    LOCKFS_FS_CREATE | LOCKFS_FS_EXCL);
	if (fd == -1)
		return -1;
	lockfs_fs_close(fd);
	return 0;
}

/* Puts our marker into the directory dir, through a descriptor of it (a
 * symlink swapped in for dir is not followed): 0, or -1 with errno. */
static int
add_marker(const struct lockfs_lock *l, const char *dir)
{
	int dfd, r;

	if ((dfd = lockfs_fs_open(LOCKFS_FS_CWD, dir, LOCKFS_FS_DIR)) == -1)
		return -1;
	r = add_marker_at(l, dfd);
	lockfs_fs_close(dfd);
	return r;
}

/* Makes the directory dir with our marker in it, which it keeps open as
 * *dfd (only to name what is in it; the caller closes it): 0, or
 * -1 with errno (dir removed again when it was made). */
static int
make_with_marker(const struct lockfs_lock *l, const char *dir, int *dfd)
{
	int saved;

	if (lockfs_fs_mkdir(dir) == -1)
		return -1;
	if ((*dfd = lockfs_fs_open(LOCKFS_FS_CWD, dir, LOCKFS_FS_DIR)) !=
	    -1 && add_marker_at(l, *dfd) == 0)
		return 0;
	lockfs_fs_close(*dfd);
	*dfd = -1;
	saved = errno;
	lockfs_fs_rmdir(dir);
	errno = saved;
	return -1;
}

/*
 * The lock made whole at the temporary name tmp and renamed into place
 * (see the top).  0: ours; 1: PATH.lock exists; 2: not done so (no
 * RENAME_NOREPLACE here, or the temporary cannot be made: the caller
 * tries in place, which reports why).  Nothing of the temporary is left
 * unless 0: when PATH.lock exists, the marker just made goes through the
 * temporary's descriptor and the temporary by name (what else came into
 * it meanwhile is litter, and goes too).  A temporary of ours already
 * there is the leftover of a try of this owner's that was killed half
 * way, and goes first.
 */
static int
acquire_by_rename(struct lockfs_lock *l, const char *tmp)
{
	struct lockfs_err ignored;
	int               dfd = -1, r = 2;

	if (make_with_marker(l, tmp, &dfd) == -1 && (errno != EEXIST ||
	    lockfs_lockdir_empty(tmp, &ignored) != 0 ||
	    make_with_marker(l, tmp, &dfd) == -1))
		goto out;
	if (lockfs_os_rename_noreplace(tmp, l->lock_file) == 0) {
		r = 0;
		/* Taken: the leftovers of others killed half way go (once
		 * per lock taken, not at every try).  PATH.lock is the
		 * directory just renamed there. */
		lockfs_lockdir_tidy_at(l, -1, 1);
		goto out;
	}
	if (errno == EEXIST || errno == ENOTEMPTY)
		r = 1;
	if ((lockfs_fs_unlink_at(dfd, marker_of(l)) == -1 &&
	    errno != ENOENT) || lockfs_fs_rmdir(tmp) == -1)
		lockfs_lockdir_empty(tmp, &ignored);
out:
	lockfs_fs_close(dfd);
	return r;
}

static int
mkdir_try_acquire(struct lockfs_lock *l, struct lockfs_err *err)
{
	char tmp[PATH_MAX];
	int  r = 2;

	if (lockfs_lockdir_tmp_name(l, tmp, sizeof(tmp)) == 0)
		r = acquire_by_rename(l, tmp);
	if (r == 2) {
		/* In place, as lockfile does (see the top). */
		if (lockfs_fs_mkdir(l->lock_file) == 0)
			r = 0;
		else if (errno != EEXIST) {
			r = lockfs_fail(err, LB_EFAILED, errno,
			    "cannot create directory %s", l->lock_file);
			goto out;
		} else
			r = 1;
		if (r == 0 && add_marker(l, l->lock_file) == -1) {
			r = lockfs_fail(err, LB_EFAILED, errno,
			    "cannot create %s", l->unique);
			lockfs_fs_rmdir(l->lock_file);
			goto out;
		}
	}
	if (r == 1) {
		/* PATH.lock exists: ours already, or another's. */
		if ((r = mkdir_is_mine(l, err)) == 1)
			r = 0;
		else if (r == 0)
			r = lockfs_fail(err, LB_EALREADY, 0,
			    "%s is locked by another owner", l->path);
	}
out:
	return r;
}

/*
 * Opens PATH.lock (not followed) for the release, into *fd, with its
 * status in *st: for reading (*readable 1), which the release by rename
 * needs, or, when it may not be read, only to name what is in it.  One
 * open answers whether it is there, and through it whether it is ours
 * (mine_at), where a look by name and an open were two.  0, or
 * LB_ENOTLOCKED (nothing there), LB_ENOTMINE (not a directory) or
 * LB_ERROR, with err filled.
 */
static int
open_for_release(struct lockfs_lock *l, int *fd, int *readable,
    struct lockfs_fs_info *st, struct lockfs_err *err)
{
	int present, r = 0;

	*readable = 1;
	if ((*fd = lockfs_fs_open(LOCKFS_FS_CWD, l->lock_file,
	    LOCKFS_FS_READ | LOCKFS_FS_DIR)) == -1 && errno == EACCES) {
		*readable = 0;
		*fd = lockfs_fs_open(LOCKFS_FS_CWD, l->lock_file,
		    LOCKFS_FS_DIR);
	}
	if (*fd == -1) {
		/* ELOOP: a symlink there; ENOTDIR: PATH.lock is no
		 * directory, or DIR is none (a look tells which). */
		if (errno == ENOENT)
			present = 0;
		else if (errno == ELOOP)
			present = 1;
		else if (errno == ENOTDIR)
			present = lockfs_is_present(l->lock_file, err);
		else
			present = lockfs_fail(err, LB_ERROR, errno,
			    "cannot look at %s", l->lock_file);
		if (present == 0)
			r = lockfs_fail(err, LB_ENOTLOCKED, 0,
			    "%s is not locked", l->path);
		else if (present == 1)
			r = lockfs_fail(err, LB_ENOTMINE, 0,
			    "%s is locked, but not by me", l->path);
		else
			r = present;
		goto out;
	}
	if (lockfs_fs_info(*fd, st) == -1) {
		r = lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->lock_file);
		lockfs_fs_close(*fd);
		*fd = -1;
	}
out:
	return r;
}

/*
 * Releases our lock, open and judged ours as lfd, by taking its directory
 * away whole (see the top), under the directory's flock, when it holds
 * our marker and nothing else.  0: released; 1: not done so (another's
 * marker beside ours, which a handoff put there: the lock is theirs; no
 * RENAME_NOREPLACE here; the directory's flock taken, or a directory
 * unreadable): nothing changed.  The directory opened for its flock also
 * serves the tidy (lockfs_lockdir_tidy_at), which usually needs no more
 * than one look at it.
 */
static int
release_by_rename(struct lockfs_lock *l, int lfd)
{
	struct lockfs_dirlock dl = { -1 };
	struct lockfs_os_dir  d;
	const char           *name;
	char                  tmp[PATH_MAX];
	int                   r = 1;

	/* Never waits for the flock (anyone who can read the directory can
	 * hold it): busy, the release is done in place. */
	if (lockfs_lockdir_tmp_name(l, tmp, sizeof(tmp)) != 0 ||
	    lockfs_dirlock_open(&dl, l->dir) == -1 ||
	    lockfs_dirlock_try(&dl) == -1)
		goto out;
	lockfs_os_dir_start(&d, lfd, NULL, 0);
	while ((name = lockfs_os_dir_next(&d, NULL)) != NULL &&
	    strcmp(name, marker_of(l)) == 0)
		;
	if (name != NULL || errno != 0)
		goto out;               /* another's marker, or unreadable */
	if (lockfs_lockdir_rename_away(l, tmp, dl.fd, lfd) == 0) {
		lockfs_lockdir_tidy_at(l, dl.fd, 0);
		r = 0;
	}
out:
	lockfs_dirlock_close(&dl);      /* also drops the flock */
	return r;
}

static int
mkdir_release(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_err     ignored;
	struct lockfs_fs_info st;
	char                  tmp[PATH_MAX];
	int                   fd = -1, readable, r;

	if ((r = open_for_release(l, &fd, &readable, &st, err)) < 0) {
		/* Not locked: maybe taken away by a release of ours that
		 * was killed before it removed its temporary. */
		if (r == LB_ENOTLOCKED && lockfs_lockdir_tmp_name(l, tmp,
		    sizeof(tmp)) == 0)
			lockfs_lockdir_empty(tmp, &ignored);
		goto out;
	}
	if ((r = mine_at(l, fd, &st, err)) <= 0) {
		if (r == 0)
			r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked, "
			    "but not by me", l->path);
		goto out;
	}
	r = 0;
	if (readable && release_by_rename(l, fd) == 0)
		goto out;
	/* In place, our marker through the descriptor of the directory
	 * judged.  Another's marker beside ours (ENOTEMPTY) is a handoff
	 * that gave the lock on (the daemon adds the next holder's marker
	 * before it removes the old one): without our marker, it is
	 * theirs. */
	if (lockfs_fs_unlink_at(fd, marker_of(l)) == -1 ||
	    (lockfs_fs_rmdir(l->lock_file) == -1 && errno != ENOTEMPTY &&
	    errno != EEXIST))
		r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s",
		    l->lock_file);
out:
	lockfs_fs_close(fd);
	return r;
}

/* Removes the lock whoever holds it, whole (lockdir.c): never a lock
 * directory without a marker, even for an instant. */
static int
mkdir_break(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_remove_artefact(l, 1, err);
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
