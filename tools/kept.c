/*
 * kept.c: lockbroker acquire and release: a lock held for a process (the
 * holder: --pid PID, by default the command's parent, the shell that runs
 * it) across several commands, instead of for the life of one command.
 *
 * The library does the work (lb_acquire_for, lb_release_for: through the
 * broker a kept hold that the daemon releases when PID exits; in-process
 * an artefact naming PID that stays until release or break); this file
 * chooses the holder, and says what happened.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockbroker.h"
#include "cli.h"
#include "os.h"

/*
 * The holder of o's lock: o->pid, else the parent process.  0 (*pid set),
 * or EX_USAGE after saying why (the parent is pid 1, or unknown).
 */
static int
holder_of(const struct opts *o, const char *doing, pid_t *pid)
{
	*pid = o->pid != 0 ? o->pid : os_parent_pid();
	if (o->pid == 0 && *pid == 0) {
		complain("cannot %s %s: the parent process is unknown (it has "
		    "ended); name the holder with --pid", doing, o->path);
		return EX_USAGE;
	}
	if (o->pid == 0 && *pid == 1) {
		/* Orphaned (or started by init): a lock kept for pid 1 would
		 * never end by itself. */
		complain("cannot %s %s: the parent process is pid 1, for which "
		    "a lock would be kept for ever; name the holder with "
		    "--pid", doing, o->path);
		return EX_USAGE;
	}
	return 0;
}

/*
 * The handle for o's lock (the caller frees it), after saying what the
 * library noted of the environment (an unknown LOCKBROKER_TRANSPORT); or
 * NULL with *code the exit status, after saying why.
 */
static lb_lock *
kept_lock(const struct opts *o, int *code)
{
	lb_lock    *lock;
	const char *note;

	if ((lock = open_lock(o, 0, code)) != NULL &&
	    *(note = lb_lock_error(lock)) != '\0')
		complain("%s", note);
	return lock;
}

/*
 * acquire: takes the lock on o->path for process o->pid (default: the
 * parent), shared with -s (through the daemon only), and returns, leaving
 * it held.  Returns 0 when it is held for
 * PID (now or already), o->conflict when another holds it and -n or -w
 * gave up, EX_UNAVAILABLE when it cannot be taken, EX_USAGE for a path
 * or holder that cannot be used.
 */
int
cmd_acquire(const struct opts *o)
{
	lb_kept_info how;
	lb_lock     *lock = NULL;
	pid_t        pid;
	int          r, code;

	if ((r = holder_of(o, "lock", &pid)) != 0 ||
	    (lock = kept_lock(o, &r)) == NULL)
		goto out;
	code = o->shared ? lb_acquire_shared_for(lock, pid, o->timeout, &how) :
	    lb_acquire_for(lock, pid, o->timeout, &how);
	if (code == 0) {
		if (o->verbose && how.broker)
			complain("locked %s%s for pid %ld through lockbrokerd "
			    "on %s (token %llu)", lb_lock_path(lock),
			    o->shared ? " shared" : "", (long)pid, how.socket,
			    (unsigned long long)how.token);
		else if (o->verbose)
			complain("locked %s for pid %ld in-process (%s); no "
			    "daemon watches pid %ld: the lock stays until "
			    "release or break", lb_lock_path(lock), (long)pid,
			    lb_lock_file(lock), (long)pid);
		r = 0;
	} else if (code == LB_EALREADY || code == LB_ETIMEOUT) {
		if (o->verbose)
			complain("%s is locked by another owner; gave up",
			    lb_lock_path(lock));
		r = o->conflict;
	} else {
		complain("%s", lb_lock_error(lock));
		r = code == LB_ENOMEM ? EX_OSERR : EX_UNAVAILABLE;
	}
out:
	lb_lock_free(lock);
	return r;
}

/*
 * release: releases the lock on o->path that process o->pid (default:
 * the parent) holds.  Returns 0 when released, EXIT_NOT_HELD when the
 * lock is free or another owner's, EX_UNAVAILABLE when it cannot be
 * released, EX_USAGE for a path or holder that cannot be used.
 */
int
cmd_release(const struct opts *o)
{
	lb_kept_info how;
	lb_lock     *lock = NULL;
	pid_t        pid;
	int          r, code;

	if ((r = holder_of(o, "release", &pid)) != 0 ||
	    (lock = kept_lock(o, &r)) == NULL)
		goto out;
	code = lb_release_for(lock, pid, &how);
	if (code == 0) {
		if (o->verbose && how.broker)
			complain("released %s for pid %ld through lockbrokerd "
			    "on %s", lb_lock_path(lock), (long)pid,
			    how.socket);
		else if (o->verbose)
			complain("released %s for pid %ld in-process",
			    lb_lock_path(lock), (long)pid);
		r = 0;
	} else {
		complain("%s", lb_lock_error(lock));
		if (code == LB_ENOTLOCKED || code == LB_ENOTMINE)
			r = EXIT_NOT_HELD;
		else
			r = code == LB_ENOMEM ? EX_OSERR : EX_UNAVAILABLE;
	}
out:
	lb_lock_free(lock);
	return r;
}
