/*
 * run.c: lockbroker lock: takes the lock, runs COMMAND, releases.
 *
 * `lock` as drawn for one run (S = what stops a process: SIGINT, SIGTERM or
 * SIGHUP on Unix, a console's control event on Windows; child.h says how
 * each OS passes it on to COMMAND once the lock is held):
 *
 *   waiting --- granted ---> run COMMAND ---> running --- it ends ---> release
 *      |  \                     |              |    ^                    |
 *      |   held, timed out      | cannot run   | S: COMMAND's            v
 *      |   -> exit -E code      v              +----+           exit with
 *      | S: dies by S (its      exit 126/127                    COMMAND's
 *      |    usual action)                                       status
 *
 * The wait is one lb_acquire (lb_acquire_shared with -s): through the
 * broker it keeps its place in the queue, and a signal that ends
 * lockbroker ends the wait too (the broker forgets the waits of a
 * connection that closes; an in-process wait leaves nothing on disk
 * between its tries).  A set of PATHs is the same drawing with one
 * lb_acquire_all for the wait (all locks or none; it waits holding none)
 * and a release of each at the end.
 */
#include <stddef.h>
#include <stdlib.h>

#include "lockbroker.h"
#include "child.h"
#include "cli.h"

/*
 * Takes the locks of a set, o->paths (o->npaths of them, exclusive), runs
 * the command, releases each whatever the command did.  Returns as
 * cmd_lock; a timeout or a held lock names (with -v) the PATH it waited
 * for, another failure the lock that failed, or the set as a whole.
 */
static int
lock_set(const struct opts *o)
{
	struct child_guard *g = NULL;
	lb_lock           **locks = NULL;
	struct opts         one = *o;
	double              start;
	size_t              i, n = 0, failed;
	int                 r, code;

	if ((locks = calloc(o->npaths, sizeof(*locks))) == NULL) {
		complain("cannot take %lu locks: out of memory",
		    (unsigned long)o->npaths);
		r = EX_OSERR;
		goto out;
	}
	for (n = 0; n < o->npaths; n++) {
		one.path = o->paths[n];
		if ((locks[n] = open_lock(&one, 0, &r)) == NULL)
			goto out;
	}
	start = now_mono();
	failed = n;             /* no lock named */
	code = lb_acquire_all(locks, n, o->timeout, &failed);
	if (code == LB_EALREADY || code == LB_ETIMEOUT) {
		if (o->verbose)
			complain("%s is locked by another owner; gave up "
			    "after %.3f s holding none of the %lu locks",
			    failed < n ? o->paths[failed] : o->path,
			    now_mono() - start, (unsigned long)n);
		r = o->conflict;
		goto out;
	}
	if (code != 0) {
		if (failed < n)
			complain_lock(locks[failed], "lock", code);
		else
			complain("cannot lock %s and the %lu other PATHs: %s",
			    o->path, (unsigned long)n - 1, lb_strerror(code));
		r = EX_UNAVAILABLE;
		goto out;
	}
	if (o->verbose)
		complain("locked %s and %lu other PATHs after %.3f s",
		    o->path, (unsigned long)n - 1, now_mono() - start);
	if ((g = child_guard_begin()) == NULL) {
		r = EX_OSERR;   /* lb_lock_free releases */
		goto out;
	}
	r = child_run(g, o->shell_cmd, o->argv);
	/* The command's status stands; a lost lock is only reported. */
	for (i = 0; i < n; i++) {
		if ((code = lb_release(locks[i])) != 0)
			complain_lock(locks[i], "release", code);
		else if (o->verbose)
			complain("released %s", o->paths[i]);
	}
out:
	for (i = 0; i < n; i++)
		lb_lock_free(locks[i]);
	free(locks);
	child_guard_end(g);
	return r;
}

/*
 * lock: takes the lock (or a set's locks), runs the command, releases the
 * lock whatever the command did.  Returns the exit status (see
 * usage_text); when a stop signal ends the wait for the lock, dies by it
 * instead.
 */
int
cmd_lock(const struct opts *o)
{
	struct child_guard *g = NULL;
	lb_lock            *lock = NULL;
	double              start;
	int                 r, code;

	if (o->npaths > 1) {
		r = lock_set(o);
		goto out;
	}
	if ((lock = open_lock(o, 0, &r)) == NULL)
		goto out;
	start = now_mono();
	/* One wait, with the stop signals at their usual action: a signal
	 * ends lockbroker, and with it its wait (the broker forgets the waits
	 * of a connection that closes, and keeps its queue's order only for
	 * one wait; an in-process wait leaves nothing on disk between
	 * tries). */
	code = o->shared ? lb_acquire_shared(lock, o->timeout) :
	    lb_acquire(lock, o->timeout);
	if (code == LB_EALREADY || code == LB_ETIMEOUT) {
		if (o->verbose)
			complain("%s is locked by another owner; gave up "
			    "after %.3f s", o->path, now_mono() - start);
		r = o->conflict;
		goto out;
	}
	if (code != 0) {
		complain_lock(lock, "lock", code);
		r = EX_UNAVAILABLE;
		goto out;
	}
	if (o->verbose)
		complain("locked %s (%s) after %.3f s", o->path,
		    lb_lock_file(lock), now_mono() - start);
	if ((g = child_guard_begin()) == NULL) {
		r = EX_OSERR;
		goto out;
	}
	r = child_run(g, o->shell_cmd, o->argv);
	/* The command's status stands; a lost lock is only reported. */
	if ((code = lb_release(lock)) != 0)
		complain_lock(lock, "release", code);
	else if (o->verbose)
		complain("released %s", o->path);
out:
	lb_lock_free(lock);
	child_guard_end(g);
	return r;
}
