/*
 * artefact.c: what the file methods share: telling whether an artefact is
 * there, removing one whatever its type, and reading who it names.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs.h"
#include "lockfs.h"

/* lockfs_holder_clear: an empty holder: nothing known. */
void
lockfs_holder_clear(struct lockfs_holder *h)
{
	memset(h, 0, sizeof(*h));
	h->uid = (uid_t)-1;
}

/*
 * lockfs_is_present: 1 when something (of any type) is at file, 0 when
 * nothing is, or LB_ERROR when that cannot be told (err says why).
 */
int
lockfs_is_present(const char *file, struct lockfs_err *err)
{
	struct lockfs_fs_info fi;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, file, 0, &fi) == 0)
		return 1;
	if (errno == ENOENT || errno == ENOTDIR)
		return 0;
	return lockfs_fail(err, LB_ERROR, errno, "cannot look at %s", file);
}

/*
 * lockfs_release_check: what every method's release makes sure of before
 * it removes anything: l's artefact is there (else LB_ENOTLOCKED) and
 * is_mine says it is this owner's (else LB_ENOTMINE).  1 when the caller
 * may remove it; else a negative LB_E* code (LB_ERROR too, when presence
 * or ownership cannot be told) with err filled.
 */
int
lockfs_release_check(struct lockfs_lock *l,
    int (*is_mine)(struct lockfs_lock *, struct lockfs_err *),
    struct lockfs_err *err)
{
	int r;

	if ((r = lockfs_is_present(l->lock_file, err)) == 0)
		r = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s is not locked",
		    l->path);
	else if (r > 0 && (r = is_mine(l, err)) == 0)
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked, but not by "
		    "me", l->path);
	return r;
}

/* lockfs_release_file: release for the methods whose artefact is the one
 * file l->lock_file (symlink, pidfile): lockfs_release_check, then the
 * file removed.  0, or an LB_E* code with err filled (LB_EUNLOCK naming
 * the file when it cannot be removed). */
int
lockfs_release_file(struct lockfs_lock *l,
    int (*is_mine)(struct lockfs_lock *, struct lockfs_err *),
    struct lockfs_err *err)
{
	int r;

	if ((r = lockfs_release_check(l, is_mine, err)) < 0)
		return r;
	if (lockfs_fs_unlink(l->lock_file) == -1)
		return lockfs_fail(err, LB_EUNLOCK, errno, "cannot remove %s",
		    l->lock_file);
	return 0;
}

/* lockfs_artefact_is_locked: is_locked for the methods whose artefact is
 * a file at l->lock_file: lockfs_is_present's answer. */
int
lockfs_artefact_is_locked(struct lockfs_lock *l, struct lockfs_err *err)
{
	return lockfs_is_present(l->lock_file, err);
}

/* lockfs_abandon_nothing: abandon for the methods whose failed try leaves
 * nothing behind. */
void
lockfs_abandon_nothing(struct lockfs_lock *l)
{
	(void)l;
}

/*
 * lockfs_remove_artefact: removes l's artefact at l->lock_file, whoever's
 * it is: a file or symlink is unlinked; a directory (the mkdir method's
 * format), when dir_ok, is taken away whole (lockfs_lockdir_remove), else
 * refused.  Never follows a symlink.  Returns 0 (also when nothing was
 * there) or LB_EUNLOCK.
 */
int
lockfs_remove_artefact(const struct lockfs_lock *l, int dir_ok,
    struct lockfs_err *err)
{
	struct lockfs_fs_info fi;
	int                   r = 0;

	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->lock_file, 0, &fi) == -1) {
		if (errno != ENOENT && errno != ENOTDIR)
			r = lockfs_fail(err, LB_EUNLOCK, errno,
			    "cannot look at %s", l->lock_file);
		goto out;
	}
	if (fi.type != LOCKFS_FS_DIRECTORY) {
		if (lockfs_fs_unlink(l->lock_file) == -1 && errno != ENOENT)
			r = lockfs_fail(err, LB_EUNLOCK, errno,
			    "cannot remove %s", l->lock_file);
		goto out;
	}
	if (!dir_ok) {
		r = lockfs_fail(err, LB_EUNLOCK, EISDIR, "will not remove %s",
		    l->lock_file);
		goto out;
	}
	r = lockfs_lockdir_remove(l, err);
out:
	return r;
}

/*
 * lockfs_link_find_unique: finds the link method's unique file: the other
 * name, in dir, of the inode (dev, ino) that lock_file is.  Writes its path
 * into out and returns 0, or returns -1 when there is none.
 */
int
lockfs_link_find_unique(const char *dir, const char *lock_file,
    unsigned long long dev, unsigned long long ino, char *out, size_t size)
{
	const char            *base = strrchr(lock_file, '/') + 1;
	struct lockfs_fs_entry de;
	struct lockfs_fs_info  fi;
	struct lockfs_fs_dir  *d;
	int                    pass, r = -1;

	if ((d = lockfs_fs_dir_open(dir)) == NULL)
		return -1;
	/* First by the file number the directory reports, then (file systems
	 * where it differs from the file's own) by a look at every regular
	 * file. */
	for (pass = 0; pass < 2 && r == -1; pass++) {
		lockfs_fs_dir_rewind(d);
		while (lockfs_fs_dir_next(d, &de) == 1) {
			if (strcmp(de.name, base) == 0 ||
			    (pass == 0 && de.ino != ino) ||
			    (de.type != DT_REG && de.type != DT_UNKNOWN))
				continue;
			if (lockfs_fs_info_at(lockfs_fs_dir_fd(d), de.name, 0,
			    &fi) == 0 && fi.dev == dev && fi.ino == ino) {
				snprintf(out, size, "%s%s%s", dir,
				    strcmp(dir, "/") == 0 ? "" : "/", de.name);
				r = 0;
				break;
			}
		}
	}
	lockfs_fs_dir_close(d);
	return r;
}

/*
 * lockfs_read_regular: reads at most size - 1 bytes of file, only if it is
 * a regular file, NUL-terminated into buf.  Nothing else is ever opened for
 * reading (a FIFO would hang the reader, a device may act on an open): the
 * name is opened relative to its directory only to name it, not followed
 * (lockfs_fs_open), its type checked on that descriptor, and only a
 * regular file is opened to read, through that descriptor
 * (lockfs_fs_reopen) or, where the OS cannot, by name again never
 * blocking nor taking a terminal, and checked to be the same file.
 * Returns the
 * bytes read, with the file's owner in *owner when owner is not NULL, or
 * -1 with errno (EINVAL: not a regular file).
 */
ssize_t
lockfs_read_regular(const char *file, char *buf, size_t size, uid_t *owner)
{
	const char           *slash = strrchr(file, '/');
	char                  dir[PATH_MAX];
	struct lockfs_fs_info fi, rfi;
	ssize_t               n = -1;
	int                   dfd = -1, fd = -1, rfd = -1;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s",
		    (int)lockfs_dir_len(file), file);
	if ((dfd = lockfs_fs_open(LOCKFS_FS_CWD, dir, LOCKFS_FS_DIR |
	    LOCKFS_FS_FOLLOW)) == -1 ||
	    (fd = lockfs_fs_open(dfd, slash != NULL ? slash + 1 : file,
	    0)) == -1 || lockfs_fs_info(fd, &fi) == -1)
		goto out;
	if (fi.type != LOCKFS_FS_FILE) {
		errno = EINVAL;
		goto out;
	}
	rfd = lockfs_fs_reopen(fd, LOCKFS_FS_READ | LOCKFS_FS_NONBLOCK |
	    LOCKFS_FS_NOCTTY);
	if (rfd == -1 && errno == ENOENT)
		rfd = lockfs_fs_open(dfd, slash != NULL ? slash + 1 : file,
		    LOCKFS_FS_READ | LOCKFS_FS_NONBLOCK | LOCKFS_FS_NOCTTY);
	if (rfd == -1 || lockfs_fs_info(rfd, &rfi) == -1)
		goto out;
	if (rfi.type != LOCKFS_FS_FILE || rfi.dev != fi.dev ||
	    rfi.ino != fi.ino) {
		errno = EINVAL;
		goto out;
	}
	do
		n = lockfs_fs_read(rfd, buf, size - 1);
	while (n == -1 && errno == EINTR);
	if (n >= 0) {
		buf[n] = '\0';
		if (owner != NULL)
			*owner = rfi.uid;
	}
out:
	lockfs_fs_close(rfd);   /* each keeps errno */
	lockfs_fs_close(fd);
	lockfs_fs_close(dfd);
	return n;
}

/* Reads who the artefact at l->lock_file names, by its type. */
static int
holder_from_artefact(struct lockfs_lock *l, const struct lockfs_fs_info *fi,
    struct lockfs_holder *h)
{
	char                   buf[LOCKFS_UNIQUE_MAX];
	struct lockfs_fs_entry de;
	struct lockfs_fs_dir  *d;
	ssize_t                n;
	int                    more;

	if (l->method == LB_PIDFILE) {
		if (fi->type != LOCKFS_FS_FILE)
			return 0;
		/* It may have become something else since the lstat. */
		n = lockfs_read_regular(l->lock_file, buf, sizeof(buf), NULL);
		/* A pid file names no host: it is taken to be this one. */
		if (n > 0 && lockfs_pid_parse(buf, (size_t)n, &h->pid) == 0)
			snprintf(h->host, sizeof(h->host), "%s",
			    lockfs_hostname());
		snprintf(h->unique, sizeof(h->unique), "%s", l->lock_file);
		return 0;
	}
	if (fi->type == LOCKFS_FS_SYMLINK) {
		n = lockfs_fs_readlink_at(LOCKFS_FS_CWD, l->lock_file, buf,
		    sizeof(buf));
		if (n <= 0)
			return 0;
		return lockfs_unique_parse(buf, LB_SYMLINK, h);
	}
	if (fi->type == LOCKFS_FS_DIRECTORY) {
		if ((d = lockfs_fs_dir_open(l->lock_file)) == NULL)
			return 0;
		while ((more = lockfs_fs_dir_next(d, &de)) == 1)
			if (strcmp(de.name, ".") != 0 &&
			    strcmp(de.name, "..") != 0)
				break;
		if (more == 1 && snprintf(buf, sizeof(buf), "%s/%s",
		    l->lock_file, de.name) < (int)sizeof(buf))
			lockfs_unique_parse(buf, LB_MKDIR, h);
		lockfs_fs_dir_close(d);
		return 0;
	}
	if (fi->type == LOCKFS_FS_FILE && fi->nlink > 1 &&
	    lockfs_link_find_unique(l->dir, l->lock_file, fi->dev, fi->ino,
	    buf, sizeof(buf)) == 0)
		return lockfs_unique_parse(buf, LB_LINK, h);
	return 0;
}

/*
 * lockfs_holder_of: the holder named by the file artefact of l (the link,
 * symlink, mkdir and pidfile methods), judged by what is on disk rather than
 * by l's method, so that a lock taken with another method is described too.
 * Returns 1 with *h filled (fields it cannot tell left unknown), 0 when
 * nothing is there (*h cleared), or LB_ERROR.
 */
int
lockfs_holder_of(struct lockfs_lock *l, struct lockfs_holder *h,
    struct lockfs_err *err)
{
	struct lockfs_fs_info fi;

	lockfs_holder_clear(h);
	if (lockfs_fs_info_at(LOCKFS_FS_CWD, l->lock_file, 0, &fi) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->lock_file);
	}
	holder_from_artefact(l, &fi, h);
	h->uid = fi.uid;
	h->since = (double)fi.mtime.sec + fi.mtime.nsec / 1e9;
	h->dev = fi.dev;
	h->ino = fi.ino;
	return 1;
}
