/*
 * busyrename.c: a test-only preload for lockbrokerd (LD_PRELOAD), never
 * installed, that refuses the first N renames onto a chosen name, or of
 * another name of the file at the chosen name in the same directory, with
 * EBUSY, as Windows refuses to replace a file another handle has open
 * (where renames have no POSIX semantics), and to rename any name of a
 * file that another handle has open without sharing its deletion: so
 * the daemon's handoff that waits for the lock file's readers
 * (daemon/swap.c) runs on Linux too, whether its last step renames a
 * temporary over the lock file or the old holder's unique file, a name
 * of the lock file (lockfs/handoff.c).  No daemon code knows of it.
 *
 *   LB_TEST_BUSY_NAME     the chosen name's last component (x.lock)
 *   LB_TEST_BUSY_RENAMES  N: how many such renames to refuse
 *
 * It interposes rename, renameat and renameat2, and calls the real ones
 * (dlsym RTLD_NEXT) for every other rename.  Without both variables set
 * it changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "preload.h"

EXPORT int rename(const char *from, const char *to);
EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to);
EXPORT int renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned flags);

/* Renames refused so far. */
static long refused;

/* Whether from (relative to at) is a name of the file at name in from's
 * directory. */
static int
names_file_at(int at, const char *from, const char *name)
{
	const char *slash = strrchr(from, '/');
	struct stat a, b;
	char        other[PATH_MAX];

	if (slash == NULL)
		snprintf(other, sizeof(other), "%s", name);
	else
		snprintf(other, sizeof(other), "%.*s/%s", (int)(slash - from),
		    from, name);
	return fstatat(at, from, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
	    fstatat(at, other, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Whether a rename of from (relative to at) onto to is to be refused (and
 * counts it). */
static int
refuse(int at, const char *from, const char *to)
{
	const char *name = getenv("LB_TEST_BUSY_NAME");
	const char *n = getenv("LB_TEST_BUSY_RENAMES");
	const char *last = to != NULL ? strrchr(to, '/') : NULL;

	if (name == NULL || n == NULL || to == NULL || from == NULL)
		return 0;
	last = last != NULL ? last + 1 : to;
	if ((strcmp(last, name) != 0 && !names_file_at(at, from, name)) ||
	    refused >= atol(n))
		return 0;
	refused++;
	errno = EBUSY;
	return 1;
}

int
rename(const char *from, const char *to)
{
	int (*f)(const char *, const char *) = preload_real("rename");

	return refuse(AT_FDCWD, from, to) ? -1 : f(from, to);
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
	int (*f)(int, const char *, int, const char *) =
	    preload_real("renameat");

	return refuse(fromfd, from, to) ? -1 : f(fromfd, from, tofd, to);
}

int
renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned flags)
{
	int (*f)(int, const char *, int, const char *, unsigned) =
	    preload_real("renameat2");

	return refuse(fromfd, from, to) ? -1 : f(fromfd, from, tofd, to,
	    flags);
}
