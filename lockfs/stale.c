/*
 * stale.c: breaking the lock of a holder that is provably dead.
 *
 * Two breakers must not both act on one stale lock: the second would remove
 * the lock the first has just taken.  So breakers serialise on the lock of
 * the lock's directory (os.h: lockfs_dirlock_try, flock(2) on Unix), and, holding it, judge the artefact again and check
 * that it is still the very one (same unique name, same inode) before they
 * remove it.  Owners that never break (Python's lockfile) need no part in
 * this: while the stale artefact exists, nobody can take the lock.
 */
#include <errno.h>
#include <string.h>

#include "lockfs.h"

/* The two judgements of one artefact are of the same artefact. */
static int
same_artefact(const struct lockfs_holder *a, const struct lockfs_holder *b)
{
	return a->dev == b->dev && a->ino == b->ino &&
	    strcmp(a->unique, b->unique) == 0;
}

/*
 * lockfs_break_stale: see lockfs.h.  Never blocks: when another breaker or
 * a handoff holds the directory's lock, it returns 0 (not broken now).
 */
int
lockfs_break_stale(struct lockfs_lock *l, struct lockfs_err *err)
{
	struct lockfs_holder  first, again;
	struct lockfs_dirlock dl = { -1 };
	int                   first_dead = 0, r;

	if ((r = lockfs_holder(l, &first, err)) != 1)
		goto out;       /* r: 0 (not held), or an error */
	r = 0;
	if (lockfs_holder_liveness(&first) != LB_HOLDER_DEAD)
		goto out;
	first_dead = 1;
	if (lockfs_dirlock_open(&dl, l->dir) == -1) {
		r = lockfs_fail(err, LB_EFAILED, errno, "cannot open directory "
		    "%s to break a stale lock", l->dir);
		goto out;
	}
	/* Never wait: anyone who can read the directory can hold its lock.
	 * Busy means "not this time"; the caller's loop tries again. */
	if (lockfs_dirlock_try(&dl) == -1) {
		if (errno != EWOULDBLOCK)
			r = lockfs_fail(err, LB_EFAILED, errno, "cannot lock "
			    "directory %s to break a stale lock", l->dir);
		goto out;
	}
	/* A live reader's marker beside it (readers.c): a shared lock
	 * whose artefact's reader died while others read (-1: cannot
	 * tell, not stale either).  Looked for once, under the lock, after
	 * the holder is judged dead: a directory is read once per break. */
	if (lockfs_holder(l, &again, err) != 1 ||
	    !same_artefact(&first, &again) ||
	    lockfs_holder_liveness(&again) != LB_HOLDER_DEAD ||
	    lockfs_readers_live(l) != 0)
		goto out;
	/* The method's break removes the artefact and, for the link method,
	 * the holder's unique file beside it. */
	if ((r = lockfs_break_lock(l, err)) == 0)
		r = 1;
out:
	lockfs_dirlock_close(&dl);      /* also drops the lock */
	/* A dead holder may have died half way through putting a lock
	 * directory together or taking one away: its temporary is litter. */
	if (r >= 0 && first_dead && l->method != LB_PIDFILE &&
	    l->method != LB_SQLITE)
		lockfs_lockdir_tidy(l);
	return r;
}
