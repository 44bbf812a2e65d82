/*
 * artefact.c: what the file methods share: telling whether an artefact is
 * there, removing one whatever its type, and reading who it names.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	struct stat st;

	if (lstat(file, &st) == 0)
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
	if (unlink(l->lock_file) == -1)
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
	struct stat st;
	int         r = 0;

	if (lstat(l->lock_file, &st) == -1) {
		if (errno != ENOENT && errno != ENOTDIR)
			r = lockfs_fail(err, LB_EUNLOCK, errno,
			    "cannot look at %s", l->lock_file);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(l->lock_file) == -1 && errno != ENOENT)
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
lockfs_link_find_unique(const char *dir, const char *lock_file, dev_t dev,
    ino_t ino, char *out, size_t size)
{
	const char    *base = strrchr(lock_file, '/') + 1;
	struct dirent *de;
	struct stat    st;
	DIR           *d;
	int            pass, r = -1;

	if ((d = opendir(dir)) == NULL)
		return -1;
	/* First by the inode readdir reports, then (file systems whose
	 * d_ino differs from st_ino) by stat of every regular file. */
	for (pass = 0; pass < 2 && r == -1; pass++) {
		rewinddir(d);
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, base) == 0 ||
			    (pass == 0 && de->d_ino != ino) ||
			    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
				continue;
			if (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == dev &&
			    st.st_ino == ino) {
				snprintf(out, size, "%s%s%s", dir,
				    strcmp(dir, "/") == 0 ? "" : "/",
				    de->d_name);
				r = 0;
				break;
			}
		}
	}
	closedir(d);
	return r;
}

/*
 * lockfs_read_regular: reads at most size - 1 bytes of file, only if it is
 * a regular file, NUL-terminated into buf.  Nothing else is ever opened for
 * reading (a FIFO would hang the reader, a device may act on an open): the
 * name is opened relative to its directory with O_PATH and O_NOFOLLOW, its
 * type checked on that descriptor, and only a regular file is opened to
 * read, through that descriptor (lockfs_os_reopen) or, where the OS
 * cannot, by name again with O_NONBLOCK and O_NOCTTY, and checked to be
 * the same file.  Returns the
 * bytes read, with the file's owner in *owner when owner is not NULL, or
 * -1 with errno (EINVAL: not a regular file).
 */
ssize_t
lockfs_read_regular(const char *file, char *buf, size_t size, uid_t *owner)
{
	const char *slash = strrchr(file, '/');
	char        dir[PATH_MAX];
	struct stat st, rst;
	ssize_t     n = -1;
	int         dfd = -1, fd = -1, rfd = -1, saved;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == file ? 1 :
		    (int)(slash - file), file);
	if ((dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    (fd = openat(dfd, slash != NULL ? slash + 1 : file, O_PATH |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 || fstat(fd, &st) == -1)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto out;
	}
	rfd = lockfs_os_reopen(fd, O_RDONLY | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC);
	if (rfd == -1 && errno == ENOENT)
		rfd = openat(dfd, slash != NULL ? slash + 1 : file, O_RDONLY |
		    O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (rfd == -1 || fstat(rfd, &rst) == -1)
		goto out;
	if (!S_ISREG(rst.st_mode) || rst.st_dev != st.st_dev ||
	    rst.st_ino != st.st_ino) {
		errno = EINVAL;
		goto out;
	}
	do
		n = read(rfd, buf, size - 1);
	while (n == -1 && errno == EINTR);
	if (n >= 0) {
		buf[n] = '\0';
		if (owner != NULL)
			*owner = rst.st_uid;
	}
out:
	saved = errno;
	if (rfd != -1)
		close(rfd);
	if (fd != -1)
		close(fd);
	if (dfd != -1)
		close(dfd);
	errno = saved;
	return n;
}

/* Reads who the artefact at l->lock_file names, by its type. */
static int
holder_from_artefact(struct lockfs_lock *l, const struct stat *st,
    struct lockfs_holder *h)
{
	char           buf[LOCKFS_UNIQUE_MAX];
	struct dirent *de;
	DIR           *d;
	ssize_t        n;

	if (l->method == LB_PIDFILE) {
		if (!S_ISREG(st->st_mode))
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
	if (S_ISLNK(st->st_mode)) {
		n = readlink(l->lock_file, buf, sizeof(buf) - 1);
		if (n <= 0)
			return 0;
		buf[n] = '\0';
		return lockfs_unique_parse(buf, LB_SYMLINK, h);
	}
	if (S_ISDIR(st->st_mode)) {
		if ((d = opendir(l->lock_file)) == NULL)
			return 0;
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0)
				break;
		if (de != NULL && snprintf(buf, sizeof(buf), "%s/%s",
		    l->lock_file, de->d_name) < (int)sizeof(buf))
			lockfs_unique_parse(buf, LB_MKDIR, h);
		closedir(d);
		return 0;
	}
	if (S_ISREG(st->st_mode) && st->st_nlink > 1 &&
	    lockfs_link_find_unique(l->dir, l->lock_file, st->st_dev,
	    st->st_ino, buf, sizeof(buf)) == 0)
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
	struct stat st;

	lockfs_holder_clear(h);
	if (lstat(l->lock_file, &st) == -1) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return lockfs_fail(err, LB_ERROR, errno, "cannot look at %s",
		    l->lock_file);
	}
	holder_from_artefact(l, &st, h);
	h->uid = st.st_uid;
	h->since = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
	h->dev = st.st_dev;
	h->ino = st.st_ino;
	return 1;
}
