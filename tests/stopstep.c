/*
 * stopstep.c: a test-only preload for lockbrokerd (LD_PRELOAD), never
 * installed, that stops the daemon (SIGSTOP, so that its parent test can
 * see it with waitpid WUNTRACED and kill it) right after its Nth
 * file-system step in a chosen directory: a step is a mkdir, rmdir,
 * unlink, unlinkat, rename, renameat, renameat2, link, linkat, symlink,
 * mknod, mknodat, or an open or openat that creates, that succeeded on a name
 * in that directory or below (the name made, for link, linkat, symlink
 * and mknod; the new name, for a rename; a name pinned to a descriptor,
 * /proc/self/fd/N/NAME, is taken as NAME in N's directory).  So a test can
 * kill the daemon between any two steps of a grant, a release or a
 * handoff.  No daemon code knows of it.
 *
 *   LB_TEST_STOP_STEP   N (from 1): the step after which to stop, once
 *   LB_TEST_STOP_UNDER  the directory (absolute, as the daemon names it)
 *   LB_TEST_STOP_BEFORE set: stop right before the Nth step instead (each
 *                       attempt counted, whether it succeeds or not), so
 *                       that a test can act between what the daemon
 *                       looked at and what it does next
 *
 * It interposes those calls and calls the real ones (dlsym RTLD_NEXT).
 * Without both variables set it changes nothing.
 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "preload.h"

EXPORT int mkdir(const char *path, mode_t mode);
EXPORT int rmdir(const char *path);
EXPORT int unlink(const char *path);
EXPORT int unlinkat(int dirfd, const char *path, int flags);
EXPORT int rename(const char *from, const char *to);
EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to);
EXPORT int renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned flags);
EXPORT int link(const char *from, const char *to);
EXPORT int linkat(int fromfd, const char *from, int tofd, const char *to,
    int flags);
EXPORT int symlink(const char *target, const char *path);
EXPORT int mknod(const char *path, mode_t mode, dev_t dev);
EXPORT int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev);
EXPORT int open(const char *path, int flags, ...);
EXPORT int open64(const char *path, int flags, ...);
EXPORT int openat(int dirfd, const char *path, int flags, ...);
EXPORT int openat64(int dirfd, const char *path, int flags, ...);

/* Steps counted so far in the directory. */
static long steps;

/* 1 when path (relative to dirfd) is in the directory under: */
static int
in_dir(int dirfd, const char *path)
{
	const char *under = getenv("LB_TEST_STOP_UNDER");
	char        full[PATH_MAX], link[64];
	ssize_t     len;
	size_t      ulen;

	if (under == NULL || path == NULL)
		return 0;
	if (strncmp(path, "/proc/self/fd/", 14) == 0 &&
	    strchr(path + 14, '/') != NULL) {
		/* A name pinned to a descriptor of its directory. */
		dirfd = atoi(path + 14);
		path = strchr(path + 14, '/') + 1;
	}
	if (path[0] == '/' || dirfd == AT_FDCWD)
		snprintf(full, sizeof(full), "%s", path);
	else {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		if ((len = readlink(link, full, sizeof(full) - 1)) <= 0)
			return 0;
		full[len] = '\0';
		snprintf(full + len, sizeof(full) - (size_t)len, "/%s", path);
	}
	ulen = strlen(under);
	return strncmp(full, under, ulen) == 0 && full[ulen] == '/';
}

/* Counts a step about to be tried on path (relative to dirfd) when it is
 * in the directory and LB_TEST_STOP_BEFORE is set, and stops the process
 * at the Nth, before it is taken. */
static void
before(int dirfd, const char *path)
{
	const char *n = getenv("LB_TEST_STOP_STEP");

	if (n != NULL && getenv("LB_TEST_STOP_BEFORE") != NULL &&
	    in_dir(dirfd, path) && ++steps == atol(n))
		raise(SIGSTOP);
}

/* Counts a step that succeeded (rc not -1) on path (relative to dirfd)
 * when it is in the directory, and stops the process at the Nth (unless
 * LB_TEST_STOP_BEFORE is set: see before). */
static int
step(int rc, int dirfd, const char *path)
{
	const char *n = getenv("LB_TEST_STOP_STEP");

	if (rc == -1 || n == NULL || getenv("LB_TEST_STOP_BEFORE") != NULL)
		return rc;
	if (in_dir(dirfd, path) && ++steps == atol(n))
		raise(SIGSTOP);
	return rc;
}

int
mkdir(const char *path, mode_t mode)
{
	int (*f)(const char *, mode_t) = preload_real("mkdir");

	before(AT_FDCWD, path);
	return step(f(path, mode), AT_FDCWD, path);
}

int
rmdir(const char *path)
{
	int (*f)(const char *) = preload_real("rmdir");

	before(AT_FDCWD, path);
	return step(f(path), AT_FDCWD, path);
}

int
unlink(const char *path)
{
	int (*f)(const char *) = preload_real("unlink");

	before(AT_FDCWD, path);
	return step(f(path), AT_FDCWD, path);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	int (*f)(int, const char *, int) = preload_real("unlinkat");

	before(dirfd, path);
	return step(f(dirfd, path, flags), dirfd, path);
}

int
rename(const char *from, const char *to)
{
	int (*f)(const char *, const char *) = preload_real("rename");

	before(AT_FDCWD, to);
	return step(f(from, to), AT_FDCWD, to);
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
	int (*f)(int, const char *, int, const char *) =
	    preload_real("renameat");

	before(tofd, to);
	return step(f(fromfd, from, tofd, to), tofd, to);
}

int
renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned flags)
{
	int (*f)(int, const char *, int, const char *, unsigned) =
	    preload_real("renameat2");

	before(tofd, to);
	return step(f(fromfd, from, tofd, to, flags), tofd, to);
}

int
link(const char *from, const char *to)
{
	int (*f)(const char *, const char *) = preload_real("link");

	before(AT_FDCWD, to);
	return step(f(from, to), AT_FDCWD, to);
}

int
linkat(int fromfd, const char *from, int tofd, const char *to, int flags)
{
	int (*f)(int, const char *, int, const char *, int) =
	    preload_real("linkat");

	before(tofd, to);
	return step(f(fromfd, from, tofd, to, flags), tofd, to);
}

int
symlink(const char *target, const char *path)
{
	int (*f)(const char *, const char *) = preload_real("symlink");

	before(AT_FDCWD, path);
	return step(f(target, path), AT_FDCWD, path);
}

int
mknod(const char *path, mode_t mode, dev_t dev)
{
	int (*f)(const char *, mode_t, dev_t) = preload_real("mknod");

	before(AT_FDCWD, path);
	return step(f(path, mode, dev), AT_FDCWD, path);
}

int
mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)
{
	int (*f)(int, const char *, mode_t, dev_t) = preload_real("mknodat");

	before(dirfd, path);
	return step(f(dirfd, path, mode, dev), dirfd, path);
}

/* The mode argument of an open that creates. */
#define MODE_OF(flags, mode) do {                                        \
	va_list ap;                                                      \
	if ((flags) & (O_CREAT | O_TMPFILE)) {                           \
		va_start(ap, flags);                                     \
		mode = va_arg(ap, mode_t);                               \
		va_end(ap);                                              \
	}                                                                \
} while (0)

int
open(const char *path, int flags, ...)
{
	int    (*f)(const char *, int, ...) = preload_real("open");
	mode_t mode = 0;

	MODE_OF(flags, mode);
	if (!(flags & O_CREAT))
		return f(path, flags, mode);
	before(AT_FDCWD, path);
	return step(f(path, flags, mode), AT_FDCWD, path);
}

int
open64(const char *path, int flags, ...)
{
	int    (*f)(const char *, int, ...) = preload_real("open64");
	mode_t mode = 0;

	MODE_OF(flags, mode);
	if (!(flags & O_CREAT))
		return f(path, flags, mode);
	before(AT_FDCWD, path);
	return step(f(path, flags, mode), AT_FDCWD, path);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	int    (*f)(int, const char *, int, ...) = preload_real("openat");
	mode_t mode = 0;

	MODE_OF(flags, mode);
	if (!(flags & O_CREAT))
		return f(dirfd, path, flags, mode);
	before(dirfd, path);
	return step(f(dirfd, path, flags, mode), dirfd, path);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	int    (*f)(int, const char *, int, ...) = preload_real("openat64");
	mode_t mode = 0;

	MODE_OF(flags, mode);
	if (!(flags & O_CREAT))
		return f(dirfd, path, flags, mode);
	before(dirfd, path);
	return step(f(dirfd, path, flags, mode), dirfd, path);
}
