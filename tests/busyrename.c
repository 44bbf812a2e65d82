/*
 * busyrename.c: a test-only preload for lockbrokerd (LD_PRELOAD), never
 * installed, that refuses the first N renames onto a chosen name with
 * EBUSY, as Windows refuses to replace a file another handle has open
 * (where renames have no POSIX semantics): so the daemon's handoff that
 * waits for the lock file's readers (daemon/swap.c) runs on Linux too.
 * No daemon code knows of it.
 *
 *   LB_TEST_BUSY_NAME     the new name's last component (x.lock)
 *   LB_TEST_BUSY_RENAMES  N: how many such renames to refuse
 *
 * It interposes rename, renameat and renameat2, and calls the real ones
 * (dlsym RTLD_NEXT) for every other rename.  Without both variables set
 * it changes nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "preload.h"

EXPORT int rename(const char *from, const char *to);
EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to);
EXPORT int renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned flags);

/* Renames refused so far. */
static long refused;

/* Whether a rename onto to is to be refused (and counts it). */
static int
refuse(const char *to)
{
	const char *name = getenv("LB_TEST_BUSY_NAME");
	const char *n = getenv("LB_TEST_BUSY_RENAMES");
	const char *last = to != NULL ? strrchr(to, '/') : NULL;

	if (name == NULL || n == NULL || to == NULL)
		return 0;
	last = last != NULL ? last + 1 : to;
	if (strcmp(last, name) != 0 || refused >= atol(n))
		return 0;
	refused++;
	errno = EBUSY;
	return 1;
}

int
rename(const char *from, const char *to)
{
	int (*f)(const char *, const char *) = preload_real("rename");

	return refuse(to) ? -1 : f(from, to);
}

int
renameat(int fromfd, const char *from, int tofd, const char *to)
{
	int (*f)(int, const char *, int, const char *) =
	    preload_real("renameat");

	return refuse(to) ? -1 : f(fromfd, from, tofd, to);
}

int
renameat2(int fromfd, const char *from, int tofd, const char *to,
    unsigned flags)
{
	int (*f)(int, const char *, int, const char *, unsigned) =
	    preload_real("renameat2");

	return refuse(to) ? -1 : f(fromfd, from, tofd, to, flags);
}
