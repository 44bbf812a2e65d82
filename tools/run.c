/*
 * run.c: lockbroker lock: takes the lock, runs COMMAND, releases.
 *
 * `lock` as drawn for one run (S = SIGINT, SIGTERM or SIGHUP; blocked once
 * the lock is held and picked up with sigwaitinfo, so no handler and no
 * global state is needed):
 *
 *   waiting --- granted ---> fork+exec ---> running --- child ends ---> release
 *      |  \                     |            |    ^                       |
 *      |   held, timed out      | exec fails | S: forward to the child    v
 *      |   -> exit -E code      v            +----+              exit with the
 *      | S: dies by S (its      exit 126/127                     child's status
 *      |    usual action)
 *
 * The wait is one lb_acquire: through the broker it keeps its place in the
 * queue, and a signal that ends lockbroker ends the wait too (the broker
 * forgets the waits of a connection that closes; an in-process wait leaves
 * nothing on disk between its tries).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "lockbroker.h"
#include "cli.h"

/*
 * The signals that end a wait and are passed on to COMMAND: SIGINT, SIGTERM
 * and SIGHUP, less those ignored when we started (nohup, a background job's
 * SIGINT), which COMMAND inherits as ignored.
 */
static void
stop_signals(sigset_t *set)
{
	static const int  sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction  sa;
	size_t            i;

	sigemptyset(set);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], NULL, &sa) == 0 &&
		    sa.sa_handler == SIG_IGN)
			continue;
		sigaddset(set, sigs[i]);
	}
}

/*
 * Blocks the stop signals (into *stop) and SIGCHLD, and sets SIGCHLD's
 * action to the default (ignored, waitpid would lose the child's status).
 * Saves what was there into *old_mask and *old_chld.  0, or -1 after
 * saying why (nothing changed).
 */
static int
block_signals(sigset_t *stop, sigset_t *old_mask, struct sigaction *old_chld)
{
	struct sigaction dfl;
	sigset_t         block;
	int              r = 0;

	stop_signals(stop);
	block = *stop;
	sigaddset(&block, SIGCHLD);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	if (sigaction(SIGCHLD, &dfl, old_chld) == -1) {
		complain("cannot set up SIGCHLD: %s", strerror(errno));
		r = -1;
		goto out;
	}
	if (sigprocmask(SIG_BLOCK, &block, old_mask) == -1) {
		complain("cannot block signals: %s", strerror(errno));
		sigaction(SIGCHLD, old_chld, NULL);
		r = -1;
	}
out:
	return r;
}

/*
 * In the child, after fork: restores the signal mask and SIGCHLD's action
 * that lockbroker started with, then runs the command.  Never returns:
 * exits 126 or 127 (as shells do) when the command cannot be run.
 */
static void __attribute__((noreturn))
exec_command(const struct opts *o, const sigset_t *old_mask,
    const struct sigaction *old_chld)
{
	int e;

	sigaction(SIGCHLD, old_chld, NULL);
	sigprocmask(SIG_SETMASK, old_mask, NULL);
	if (o->shell_cmd != NULL)
		execl("/bin/sh", "sh", "-c", o->shell_cmd, (char *)NULL);
	else
		execvp(o->argv[0], o->argv);
	e = errno;
	complain("cannot run %s: %s", o->shell_cmd != NULL ? "/bin/sh" :
	    o->argv[0], strerror(e));
	_exit(e == ENOENT || e == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

/*
 * Waits for child pid to end, passing stop signals on to it.  Signals the
 * kernel sent (si_code SI_KERNEL: a terminal's ^C, a hangup) went to the
 * whole foreground process group, the child included, and are not sent
 * twice.  SIGCHLD and stop must be blocked.  Returns the child's exit
 * status, 128+N when signal N killed it, or EX_OSERR when waiting fails.
 */
static int
wait_child(pid_t pid, const sigset_t *stop)
{
	sigset_t  set = *stop;
	siginfo_t info;
	pid_t     w;
	int       sig, status, r;

	sigaddset(&set, SIGCHLD);
	for (;;) {
		if ((sig = sigwaitinfo(&set, &info)) == -1) {
			if (errno == EINTR)
				continue;
			complain("cannot wait for signals: %s",
			    strerror(errno));
			r = EX_OSERR;
			goto out;
		}
		if (sig != SIGCHLD) {
			if (info.si_code != SI_KERNEL)
				kill(pid, sig);
			continue;
		}
		while ((w = waitpid(pid, &status, WNOHANG)) == -1 &&
		    errno == EINTR)
			;
		if (w == pid)
			break;
		if (w == -1) {
			complain("cannot wait for the command: %s",
			    strerror(errno));
			r = EX_OSERR;
			goto out;
		}
	}
	if (WIFEXITED(status))
		r = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		r = EXIT_SIGNAL_BASE + WTERMSIG(status);
	else
		r = EX_OSERR;
out:
	return r;
}

/*
 * Runs the command with the lock held: fork, exec, wait.  The stop
 * signals and SIGCHLD are blocked (old_mask and old_chld are what the
 * command gets).  Returns the exit status for the command (see wait_child),
 * or EX_OSERR when it cannot fork.
 */
static int
run_command(const struct opts *o, const sigset_t *stop,
    const sigset_t *old_mask, const struct sigaction *old_chld)
{
	pid_t pid;
	int   r;

	fflush(NULL);
	if ((pid = fork()) == -1) {
		complain("cannot fork: %s", strerror(errno));
		r = EX_OSERR;
		goto out;
	}
	if (pid == 0)
		exec_command(o, old_mask, old_chld);
	r = wait_child(pid, stop);
out:
	return r;
}

/*
 * lock: takes the lock, runs the command, releases the lock whatever the
 * command did.  Returns the exit status (see usage_text); when a stop
 * signal ends the wait for the lock, dies by it instead.
 */
int
cmd_lock(const struct opts *o)
{
	struct sigaction old_chld;
	sigset_t         stop, old_mask;
	lb_lock         *lock = NULL;
	double           start;
	int              r, code, blocked = 0;

	if ((lock = open_lock(o, 0, &r)) == NULL)
		goto out;
	start = now_mono();
	/* One wait, with the stop signals at their usual action: a signal
	 * ends lockbroker, and with it its wait (the broker forgets the waits
	 * of a connection that closes, and keeps its queue's order only for
	 * one wait; an in-process wait leaves nothing on disk between
	 * tries). */
	code = lb_acquire(lock, o->timeout);
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
	if (block_signals(&stop, &old_mask, &old_chld) == -1) {
		r = EX_OSERR;
		goto out;
	}
	blocked = 1;
	r = run_command(o, &stop, &old_mask, &old_chld);
	/* The command's status stands; a lost lock is only reported. */
	if ((code = lb_release(lock)) != 0)
		complain_lock(lock, "release", code);
	else if (o->verbose)
		complain("released %s", o->path);
out:
	lb_lock_free(lock);
	if (blocked) {
		sigaction(SIGCHLD, &old_chld, NULL);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
	}
	return r;
}

