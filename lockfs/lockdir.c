/*
 * lockdir.c: a lock directory (lockfile's MkdirLockFile format: PATH.lock,
 * a directory holding markers, one empty file per holder) taken away
 * whole, and the temporaries that doing so, or putting one together,
 * leaves when a process is killed half way.
 *
 * Never a lock directory without a marker in place: emptied there and
 * then removed, PATH.lock would name nobody for an instant, and a process
 * killed in that instant would leave a lock that nobody holds, nobody can
 * judge stale, and everyone waits for for ever.  So a lock directory is
 * removed by renaming it, with RENAME_NOREPLACE, to a temporary beside it,
 * DIR/.lockbroker-mkdir.MARKER, and emptying it there; the mkdir method
 * (mkdir.c) puts a lock together at the same name before it renames it
 * into place.  MARKER is the name the caller's owner's marker has (or
 * would have) in PATH.lock: host, thread, pid, start time, boot, and a
 * hash of PATH.lock, so a temporary says whose it is and of which lock.
 * Every removal of a lock directory, by whatever method's break, is
 * lockfs_lockdir_remove.
 *
 * A temporary of a process killed half way is no lock, only litter:
 * lockfs_lockdir_tidy removes those of one lock whose process is gone and
 * which are the caller's own (by name and by owner uid).
 *
 * Every step is one a process of the caller's file-system credentials
 * could take: nothing is followed through a symlink, and the steps inside
 * a directory go through a descriptor of it.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "lockfs.h"

#define LOCKDIR_TMP_PREFIX ".lockbroker-mkdir."
#define LOCKDIR_READ_SIZE  32768        /* the tidy's reads of DIR */

/* The base name of l's owner's marker in l's lock directory, into out:
 * 0, or -1 with errno ENAMETOOLONG. */
static int
marker_name(const struct lockfs_lock *l, char *out, size_t size)
{
	char        marker[PATH_MAX];
	const char *base;

	if (l->method == LB_MKDIR && l->unique != NULL)
		base = strrchr(l->unique, '/') + 1;
	else if (lockfs_unique_format(&l->owner, LB_MKDIR, l->lock_file,
	    marker, sizeof(marker)) == 0)
		base = strrchr(marker, '/') + 1;
	else
		return -1;
	if (snprintf(out, size, "%s", base) >= (int)size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* lockfs_lockdir_tmp_name: see lockfs.h. */
int
lockfs_lockdir_tmp_name(const struct lockfs_lock *l, char *out, size_t size)
{
	char marker[LOCKFS_FS_NAME_MAX + 1];
	int  n;

	if (marker_name(l, marker, sizeof(marker)) == -1)
		return -1;
	if (strlen(LOCKDIR_TMP_PREFIX) + strlen(marker) > LOCKFS_FS_NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	n = snprintf(out, size, "%s%s" LOCKDIR_TMP_PREFIX "%s", l->dir,
	    strcmp(l->dir, "/") == 0 ? "" : "/", marker);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * Empties the directory name (relative to the directory descriptor dfd,
 * not followed) of its files and removes it, when it is still the
 * directory want (dev, ino, owner; NULL: any).  Never descends: a
 * directory in it stops the emptying there.  0, or -1 with errno (ESTALE:
 * not the directory want).
 */
static int
empty_at(int dfd, const char *name, const struct lockfs_fs_info *want)
{
	struct lockfs_os_dir  d;
	struct lockfs_fs_info st;
	const char           *entry;
	int                   fd, r = -1;

	fd = lockfs_fs_open(dfd, name, LOCKFS_FS_READ | LOCKFS_FS_DIR);
	if (fd == -1)
		goto out;
	if (want != NULL && lockfs_fs_info(fd, &st) == -1)
		goto out;
	if (want != NULL && (st.dev != want->dev || st.ino != want->ino ||
	    st.uid != want->uid)) {
		errno = ESTALE;
		goto out;
	}
	lockfs_os_dir_start(&d, fd, NULL, 0);
	while ((entry = lockfs_os_dir_next(&d, NULL)) != NULL)
		if (lockfs_fs_unlink_at(fd, entry) == -1 && errno != ENOENT)
			goto out;
	if (errno != 0)
		goto out;               /* cannot be read */
	if (lockfs_fs_rmdir_at(dfd, name) == -1 && errno != ENOENT)
		goto out;
	r = 0;
out:
	lockfs_fs_close(fd);
	return r;
}

/* lockfs_lockdir_empty: see lockfs.h. */
int
lockfs_lockdir_empty(const char *file, struct lockfs_err *err)
{
	const char           *slash = strrchr(file, '/');
	char                  dir[PATH_MAX];
	struct lockfs_fs_info st;
	int                   dfd = -1, r = 0;

	if (slash == NULL || slash[1] == '\0') {
		r = lockfs_fail(err, LB_EUNLOCK, EINVAL, "will not remove %s",
		    file);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%.*s",
	    (int)lockfs_dir_len(file), file);
	if ((dfd = lockfs_fs_open(LOCKFS_FS_CWD, dir, LOCKFS_FS_DIR |
	    LOCKFS_FS_FOLLOW)) == -1 ||
	    lockfs_fs_info_at(dfd, slash + 1, 0, &st) == -1) {
		if (errno != ENOENT && errno != ENOTDIR)
			r = lockfs_fail(err, LB_EUNLOCK, errno,
			    "cannot look at %s", file);
		goto out;
	}
	if (st.type != LOCKFS_FS_DIRECTORY) {
		if (lockfs_fs_unlink_at(dfd, slash + 1) == -1 &&
		    errno != ENOENT)
			r = lockfs_fail(err, LB_EUNLOCK, errno,
			    "cannot remove %s", file);
		goto out;
	}
	if (empty_at(dfd, slash + 1, NULL) == -1)
		r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s",
		    file);
out:
	lockfs_fs_close(dfd);
	return r;
}

/* lockfs_lockdir_only_files: see lockfs.h. */
int
lockfs_lockdir_only_files(const char *dir)
{
	struct lockfs_os_dir  d;
	struct lockfs_fs_info st;
	const char           *entry;
	unsigned char         type;
	int                   fd, r = 1;

	fd = lockfs_fs_open(LOCKFS_FS_CWD, dir, LOCKFS_FS_READ |
	    LOCKFS_FS_DIR);
	if (fd == -1)
		return 0;
	lockfs_os_dir_start(&d, fd, NULL, 0);
	while (r == 1 && (entry = lockfs_os_dir_next(&d, &type)) != NULL)
		if (type == DT_DIR || (type == DT_UNKNOWN &&
		    (lockfs_fs_info_at(fd, entry, 0, &st) == -1 ||
		    st.type == LOCKFS_FS_DIRECTORY)))
			r = 0;
	if (r == 1 && errno != 0)
		r = 0;                  /* cannot be read */
	lockfs_fs_close(fd);
	return r;
}

/* lockfs_lockdir_rename_away: see lockfs.h.  Once renamed, the lock
 * directory is litter: what cannot be removed stays at tmp. */
int
lockfs_lockdir_rename_away(const struct lockfs_lock *l, const char *tmp,
    int dfd, int lfd)
{
	struct lockfs_err ignored;
	char              marker[LOCKFS_FS_NAME_MAX + 1];
	int               r = -1;

	if (lockfs_os_rename_noreplace(l->lock_file, tmp) == -1 &&
	    (errno != EEXIST || lockfs_lockdir_empty(tmp, &ignored) != 0 ||
	    lockfs_os_rename_noreplace(l->lock_file, tmp) == -1))
		goto out;
	r = 0;
	/* The marker judged to be all it holds, through the descriptor of
	 * the directory judged, then the directory by name; anything else
	 * (come in since, or left by a failure) is emptied out by name. */
	if (marker_name(l, marker, sizeof(marker)) == 0 &&
	    (lockfs_fs_unlink_at(lfd, marker) == 0 || errno == ENOENT) &&
	    lockfs_fs_rmdir_at(dfd, strrchr(tmp, '/') + 1) == 0)
		goto out;
	lockfs_lockdir_empty(tmp, &ignored);
out:
	return r;
}

/* Whether directory dir (not followed) has an entry besides . and ..:
 * 1, or 0 (also when it cannot be read). */
static int
has_entries(const char *dir)
{
	struct lockfs_os_dir d;
	int                  fd, r;

	fd = lockfs_fs_open(LOCKFS_FS_CWD, dir, LOCKFS_FS_READ |
	    LOCKFS_FS_DIR);
	if (fd == -1)
		return 0;
	lockfs_os_dir_start(&d, fd, NULL, 0);
	r = lockfs_os_dir_next(&d, NULL) != NULL;
	lockfs_fs_close(fd);
	return r;
}

/* lockfs_lockdir_remove: see lockfs.h. */
int
lockfs_lockdir_remove(const struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_err     ignored;
	char                  tmp[PATH_MAX];
	struct lockfs_fs_info st;
	int                   r = 0, saved;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->lock_file, 0, &st) == -1) {
		if (errno != ENOENT && errno != ENOTDIR)
			r = lockfs_fail(err, LB_EUNLOCK, errno,
			    "cannot look at %s", l->lock_file);
		goto out;
	}
	if (st.type != LOCKFS_FS_DIRECTORY) {
		r = lockfs_fail(err, LB_EUNLOCK, ENOTDIR, "will not remove %s "
		    "as a lock directory", l->lock_file);
		goto out;
	}
	/* A directory in it would stop the emptying half way. */
	if (!lockfs_lockdir_only_files(l->lock_file)) {
		r = lockfs_fail(err, LB_EUNLOCK, EISDIR, "will not remove %s: "
		    "it holds more than markers, or cannot be read",
		    l->lock_file);
		goto out;
	}
	/* Markers that may not be removed (another's directory): refused
	 * before it is moved at all, so that the lock is never free for an
	 * instant (as the file-system credentials in force). */
	if (lockfs_fs_may_remove_in(l->lock_file) == -1 &&
	    (errno == EACCES || errno == EPERM || errno == EROFS)) {
		r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s",
		    l->lock_file);
		goto out;
	}
	if (lockfs_lockdir_tmp_name(l, tmp, sizeof(tmp)) == -1) {
		r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s: "
		    "temporary name", l->lock_file);
		goto out;
	}
	if (lockfs_os_rename_noreplace(l->lock_file, tmp) == -1 &&
	    (errno != EEXIST || lockfs_lockdir_empty(tmp, &ignored) != 0 ||
	    lockfs_os_rename_noreplace(l->lock_file, tmp) == -1)) {
		if (errno == ENOENT)
			;               /* gone meanwhile */
		else if (errno == EINVAL || errno == ENOSYS)
			/* No RENAME_NOREPLACE here: in place, as lockfile
			 * does. */
			r = lockfs_lockdir_empty(l->lock_file, err);
		else
			r = lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove "
			    "%s: cannot rename it to %s", l->lock_file, tmp);
		goto out;
	}
	if (lockfs_lockdir_empty(tmp, err) == 0) {
		lockfs_lockdir_tidy(l);
		goto out;
	}
	/* A marker that may not be removed after all (a sticky lock
	 * directory): the lock goes back whole, with what it still holds,
	 * unless someone has taken the lock meanwhile. */
	saved = errno;
	if (has_entries(tmp) &&
	    lockfs_os_rename_noreplace(tmp, l->lock_file) == 0)
		r = lockfs_fail(err, LB_EUNLOCK, saved, "cannot remove %s: "
		    "cannot empty it (left as it was)", l->lock_file);
	else
		r = lockfs_fail(err, LB_EUNLOCK, saved, "cannot remove %s: "
		    "cannot empty it at %s", l->lock_file, tmp);
out:
	return r;
}

/*
 * Whether the directory entry name (in the directory of descriptor dfd)
 * is a leftover temporary of the lock whose temporaries end in hash (".H",
 * the hash of its PATH.lock) that lockfs_lockdir_tidy removes: its
 * marker parses, names a process of this host (this boot) that is gone,
 * and it is a directory (not followed) of the calling thread's file-system
 * uid.  1 with *st filled, or 0.
 */
static int
is_dead_leftover(int dfd, const char *name, const char *hash,
    struct lockfs_fs_info *st)
{
	struct lockfs_holder h;
	const char          *marker = name + strlen(LOCKDIR_TMP_PREFIX);
	size_t               len = strlen(name), hlen = strlen(hash);

	if (strncmp(name, LOCKDIR_TMP_PREFIX, strlen(LOCKDIR_TMP_PREFIX)) !=
	    0 || len < strlen(LOCKDIR_TMP_PREFIX) + hlen ||
	    strcmp(name + len - hlen, hash) != 0)
		return 0;
	lockfs_holder_clear(&h);
	if (lockfs_unique_parse(marker, LB_MKDIR, &h) != 0 ||
	    h.host[0] == '\0' || h.pid <= 0 || h.start == 0 ||
	    lockfs_holder_liveness(&h) != LB_HOLDER_DEAD)
		return 0;
	return lockfs_fs_info_at(dfd, name, 0, st) == 0 &&
	    st->type == LOCKFS_FS_DIRECTORY &&
	    st->uid == lockfs_os_files_uid();
}

/*
 * Removes the leftover temporary name (in l's directory, open as dfd),
 * judged to be the directory *st: first renamed to l's own temporary tmp
 * (whose base name is tmp_base), so that a lock directory being put
 * together there meanwhile by someone acting for the dead process (the
 * daemon, for a client that died) cannot be renamed into place after it
 * was emptied here; then emptied and removed there, when it is still the
 * directory judged.  0, or -1.
 */
static int
remove_leftover(const struct lockfs_lock *l, int dfd, const char *name,
    const struct lockfs_fs_info *st, const char *tmp, const char *tmp_base)
{
	char from[PATH_MAX];
	int  n;

	n = snprintf(from, sizeof(from), "%s%s%s", l->dir,
	    strcmp(l->dir, "/") == 0 ? "" : "/", name);
	if (n < 0 || (size_t)n >= sizeof(from))
		return -1;
	if (lockfs_os_rename_noreplace(from, tmp) == 0)
		return empty_at(dfd, tmp_base, st);
	/* Without RENAME_NOREPLACE no lock directory is ever renamed into
	 * place: in place. */
	if (errno == EINVAL || errno == ENOSYS)
		return empty_at(dfd, name, st);
	return -1;
}

/*
 * Whether l's directory, whose status is *st, may hold a temporary: a
 * subdirectory other than l's lock directory.  Where the file system
 * counts subdirectories in a directory's link count (2 + subdirectories:
 * ext4, xfs, tmpfs), a directory whose only subdirectory, if any, is
 * PATH.lock holds none, and the tidy need not read it (a lock's own
 * directory usually holds no other; /tmp holds many).  lock_there: as
 * lockfs_lockdir_tidy_at's (-1: PATH.lock looked at, through dfd when it
 * is not -1).  1 when it may (or cannot tell), else 0.
 */
static int
may_hold_temporaries(const struct lockfs_lock *l,
    const struct lockfs_fs_info *st, int dfd, int lock_there)
{
	struct lockfs_fs_info lk;
	const char           *base = strrchr(l->lock_file, '/');
	unsigned long         others;

	if (st->nlink < 2)
		return 1;               /* not counted (btrfs: 1) */
	others = st->nlink - 2;
	if (others > 0 && lock_there == -1)
		lock_there = (dfd == -1 ? lockfs_fs_info_at(LOCKFS_FS_CWD,
		    l->lock_file, 0, &lk) : lockfs_fs_info_at(dfd,
		    base == NULL ? l->lock_file : base + 1, 0, &lk)) == 0 &&
		    lk.type == LOCKFS_FS_DIRECTORY;
	if (others > 0 && lock_there == 1)
		others--;
	return others > 0;
}

/* lockfs_lockdir_tidy: see lockfs.h. */
int
lockfs_lockdir_tidy(const struct lockfs_lock *l)
{
	return lockfs_lockdir_tidy_at(l, -1, -1);
}

/* lockfs_lockdir_tidy_at: see lockfs.h. */
int
lockfs_lockdir_tidy_at(const struct lockfs_lock *l, int dfd, int lock_there)
{
	struct lockfs_os_dir  d;
	struct lockfs_fs_info st;
	char                  tmp[PATH_MAX], hash[16];
	const char           *dot, *tmp_base, *entry;
	void                 *big = NULL;
	int                   fd = -1, n = -1;

	if (lockfs_lockdir_tmp_name(l, tmp, sizeof(tmp)) == -1 ||
	    (dot = strrchr(tmp, '.')) == NULL || strlen(dot) >= sizeof(hash))
		goto out;
	tmp_base = strrchr(tmp, '/') + 1;
	snprintf(hash, sizeof(hash), "%s", dot);
	/* One look (by the descriptor given, else by name) before the
	 * directory is opened and read. */
	if ((dfd != -1 ? lockfs_fs_info(dfd, &st) :
	    lockfs_fs_info_at(LOCKFS_FS_CWD, l->dir, LOCKFS_FS_FOLLOW, &st))
	    == -1)
		goto out;
	n = 0;
	if (!may_hold_temporaries(l, &st, dfd, lock_there))
		goto out;
	if (dfd == -1 && (dfd = fd = lockfs_fs_open(LOCKFS_FS_CWD, l->dir,
	    LOCKFS_FS_READ | LOCKFS_FS_DIR | LOCKFS_FS_FOLLOW)) == -1) {
		n = -1;
		goto out;
	}
	/* DIR may be large (/tmp): read in as few calls as opendir's. */
	big = malloc(LOCKDIR_READ_SIZE);
	lockfs_os_dir_start(&d, dfd, big, LOCKDIR_READ_SIZE);
	while ((entry = lockfs_os_dir_next(&d, NULL)) != NULL)
		if (is_dead_leftover(dfd, entry, hash, &st) &&
		    remove_leftover(l, dfd, entry, &st, tmp, tmp_base) == 0)
			n++;
out:
	free(big);
	lockfs_fs_close(fd);
	return n;
}
