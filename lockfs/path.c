/*
 * path.c: the names of a lock's artefacts, derived from its path exactly as
 * Python's lockfile derives them (os.path.abspath(path) + ".lock").
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"
#include "lockfs.h"
#include "os.h"

/* A copy of the first len bytes of s (len at most strlen(s)),
 * NUL-terminated, to free; NULL when out of memory (strndup(3), which
 * not every C library has). */
static char *
copy_prefix(const char *s, size_t len)
{
	char *p;

	if ((p = malloc(len + 1)) != NULL) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/*
 * abspath: lockfs_abspath, with *why saying why a path that cannot be a
 * lock's is refused (errno EINVAL), NULL otherwise.
 */
static int
abspath(const char *path, char *out, size_t size, const char **why)
{
	char        joined[PATH_MAX * 2 + 2];
	const char *p, *end;
	size_t      n, root, len;
	int         r = -1;

	*why = NULL;
	if (path == NULL || *path == '\0' || size < 2) {
		errno = EINVAL;
		goto out;
	}
	if (lockfs_os_path_join(path, joined, sizeof(joined), &root,
	    why) == -1)
		goto out;
	if (root + 2 > size) {
		errno = ENAMETOOLONG;
		goto out;
	}
	memcpy(out, joined, root);
	n = root;
	out[n] = '\0';
	for (p = joined + root; *p != '\0'; p = end) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		end = strchr(p, '/');
		if (end == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		if (len == 1 && p[0] == '.')
			continue;
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			while (n > root && out[n - 1] != '/')
				n--;
			if (n > root)
				n--;
			out[n] = '\0';
			continue;
		}
		if (n + 1 + len + 1 > size) {
			errno = ENAMETOOLONG;
			goto out;
		}
		out[n++] = '/';
		memcpy(out + n, p, len);
		n += len;
		out[n] = '\0';
	}
	if (n == root) {
		out[n++] = '/';
		out[n] = '\0';
	}
	r = 0;
out:
	return r;
}

/*
 * lockfs_abspath: writes the absolute, normalised form of path into out, as
 * Python's os.path.abspath does: made absolute as the system does
 * (lockfs_os_path_join: the working directory; on Windows a drive's, the
 * current drive, UNC paths), "." and empty components dropped, ".."
 * removing the previous component (lexically, symlinks are not resolved;
 * never the root), no trailing slash, '/' the one separator (on Windows
 * too, where Python's has '\'; the same files).  Returns 0, or -1 with
 * errno EINVAL (empty path; on Windows a path that cannot name a lock's
 * file: os.h), ENAMETOOLONG (result does not fit in size) or the error of
 * getcwd().
 */
int
lockfs_abspath(const char *path, char *out, size_t size)
{
	const char *why;

	return abspath(path, out, size, &why);
}

/*
 * lockfs_dir_len: the length of the directory part of file (a path with
 * '/' separators): up to its last '/', which is kept when it ends the
 * root ("/", "C:/", "//server/share/"); 0 when file has no '/'.
 */
size_t
lockfs_dir_len(const char *file)
{
	const char *slash = strrchr(file, '/');
	size_t      len;

	if (slash == NULL)
		return 0;
	len = (size_t)(slash - file) + 1;
	if (len > lockfs_os_path_root(file))
		len--;
	return len;
}

/*
 * lockfs_sqlite_db: the sqlite method's database for locks in dir:
 * $LOCKBROKER_SQLITE_DB when set and not empty, else DIR/.lockbroker.sqlite
 * (no second '/' after a root that ends in one: "/", "C:/").
 * Writes into buf and returns it, or NULL when it does not fit.
 */
const char *
lockfs_sqlite_db(const char *dir, char *buf, size_t size)
{
	const char *env = getenv("LOCKBROKER_SQLITE_DB");
	int         r;

	if (env != NULL && *env != '\0')
		r = snprintf(buf, size, "%s", env);
	else
		r = snprintf(buf, size, "%s%s.lockbroker.sqlite", dir,
		    *dir != '\0' && dir[strlen(dir) - 1] == '/' ? "" : "/");
	if (r < 0 || (size_t)r >= size)
		return NULL;
	return buf;
}

/*
 * lockfs_init: fills *l for the lock on path with the given method, owned
 * by this process and, when tid is not 0, that thread.  Allocates l's
 * strings (freed by lockfs_fini).  Returns 0, or LB_EINVAL (bad path or
 * method; errno EINVAL or ENAMETOOLONG), LB_ENOMEM, or LB_EFAILED (this
 * process's start time cannot be read: errno says why, EMFILE for one),
 * with err filled.
 */
int
lockfs_init(struct lockfs_lock *l, const char *path, unsigned method,
    pid_t tid, struct lockfs_err *err)
{
	return lockfs_init_as(l, path, method, tid, NULL, err);
}

/*
 * lockfs_init_as: lockfs_init, owned by *owner (taken as given; its
 * thread dropped for the pidfile method) when owner is not NULL, with
 * no look at this process (its pid, its start time, the uid it makes
 * files with): tid is then ignored.  Returns as lockfs_init.
 */
int
lockfs_init_as(struct lockfs_lock *l, const char *path, unsigned method,
    pid_t tid, const struct lockfs_owner *owner, struct lockfs_err *err)
{
	char        abs[PATH_MAX], db[PATH_MAX];
	const char *base, *why;
	size_t      dirlen;
	int         r;

	memset(l, 0, sizeof(*l));
	l->method = method;
	if (lockfs_ops_for(method) == NULL) {
		r = lockfs_fail(err, LB_EINVAL, 0, "unknown lock method %u",
		    method);
		errno = EINVAL;
		goto out;
	}
	if (path == NULL || *path == '\0') {
		r = lockfs_fail(err, LB_EINVAL, 0, "lock path is %s",
		    path == NULL ? "NULL" : "empty");
		errno = EINVAL;
		goto out;
	}
	/* Room for ".lock" and for a unique name beside it. */
	if (abspath(path, abs, sizeof(abs) - 5, &why) == -1) {
		if (why != NULL)
			r = lockfs_fail(err, LB_EINVAL, 0, "lock path %s: %s",
			    path, why);
		else
			r = lockfs_fail(err, LB_EINVAL, errno, "lock path %s",
			    path);
		goto out;
	}
	base = strrchr(abs, '/') + 1;
	if (strlen(base) + 5 > LOCKFS_FS_NAME_MAX) {
		errno = ENAMETOOLONG;
		r = lockfs_fail(err, LB_EINVAL, errno, "lock path %s", path);
		goto out;
	}
	dirlen = lockfs_dir_len(abs);

	r = LB_ENOMEM;
	if ((l->path = strdup(abs)) == NULL ||
	    (l->dir = copy_prefix(abs, dirlen)) == NULL)
		goto nomem;
	if (method == LB_PIDFILE)
		l->lock_file = strdup(abs);
	else if ((l->lock_file = malloc(strlen(abs) + 6)) != NULL)
		sprintf(l->lock_file, "%s.lock", abs);
	if (l->lock_file == NULL)
		goto nomem;
	if (method == LB_SQLITE) {
		if (lockfs_sqlite_db(l->dir, db, sizeof(db)) == NULL) {
			errno = ENAMETOOLONG;
			r = lockfs_fail(err, LB_EINVAL, errno,
			    "sqlite lock database for %s", path);
			goto out;
		}
		if ((l->db = strdup(db)) == NULL)
			goto nomem;
	}
	if (owner != NULL)
		l->owner = *owner;
	else if (lockfs_owner_self(&l->owner, tid != 0) == -1) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot tell who we "
		    "are");
		goto out;
	}
	if (method == LB_PIDFILE)
		l->owner.tid = 0;
	else if (tid != 0 && owner == NULL)
		l->owner.tid = tid;
	if (lockfs_unique_make(l, &l->owner) == -1) {
		r = lockfs_fail(err, LB_EINVAL, errno, "unique name for %s",
		    path);
		goto out;
	}
	return 0;

nomem:
	errno = ENOMEM;
	r = lockfs_fail(err, LB_ENOMEM, ENOMEM, "lock on %s", path);
out:
	lockfs_fini(l);
	return r;
}

/*
 * lockfs_names_make: gives l again the names lockfs_names_drop took away
 * (lock file, directory, sqlite database, unique name), made from
 * l->path (absolute, normalised, as lockfs_init leaves it), l->method and
 * l->owner, as lockfs_init made them; l->sqlite_row_ours is kept.  A lock
 * that has its names is left as it is.  Returns 0, or -1 with errno
 * ENOMEM or ENAMETOOLONG and l without them.
 */
int
lockfs_names_make(struct lockfs_lock *l)
{
	char        name[PATH_MAX];
	size_t      len, dirlen;
	int         r = -1;

	if (l->lock_file != NULL)
		return 0;
	len = strlen(l->path);
	dirlen = lockfs_dir_len(l->path);
	if ((l->lock_file = malloc(len + 6)) == NULL)
		goto out;
	memcpy(l->lock_file, l->path, len + 1);
	if (l->method != LB_PIDFILE)
		memcpy(l->lock_file + len, ".lock", 6);
	if ((l->dir = copy_prefix(l->path, dirlen)) == NULL)
		goto out;
	if (l->method == LB_SQLITE) {
		if (lockfs_sqlite_db(l->dir, name, sizeof(name)) == NULL) {
			errno = ENAMETOOLONG;
			goto out;
		}
		if ((l->db = strdup(name)) == NULL)
			goto out;
	}
	if (lockfs_unique_format(&l->owner, l->method, l->lock_file, name,
	    sizeof(name)) == -1 || (l->unique = strdup(name)) == NULL)
		goto out;
	r = 0;
out:
	if (r != 0)
		lockfs_names_drop(l);
	return r;
}

/* lockfs_names_drop: frees l's names but its path (lockfs_names_make
 * makes them again), for a lock kept long between steps: they would cost
 * it about three times its path's length more. */
void
lockfs_names_drop(struct lockfs_lock *l)
{
	int saved = errno;

	free(l->lock_file);
	free(l->dir);
	free(l->db);
	free(l->unique);
	l->lock_file = l->dir = l->db = l->unique = NULL;
	errno = saved;
}

/* lockfs_fini: frees what lockfs_init allocated; l may be half filled. */
void
lockfs_fini(struct lockfs_lock *l)
{
	int saved = errno;

	free(l->path);
	free(l->lock_file);
	free(l->dir);
	free(l->db);
	free(l->unique);
	l->path = l->lock_file = l->dir = l->db = l->unique = NULL;
	errno = saved;
}
