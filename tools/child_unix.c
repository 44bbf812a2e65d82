/*
 * child_unix.c: running COMMAND on Unix (child.h): fork, exec, wait, with
 * the stop signals (S = SIGINT, SIGTERM or SIGHUP) blocked once the lock
 * is held and picked up with sigwaitinfo, so no handler and no global
 * state is needed:
 *
 *   guard: S blocked --- fork+exec ---> running --- child ends ---> status
 *                           |            |    ^
 *                           | exec fails | S: forward to the child
 *                           v            +----+
 *                           exit 126/127
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "say.h"

struct child_guard {
	sigset_t         stop;      /* the stop signals, blocked */
	sigset_t         old_mask;  /* the mask lockbroker started with */
	struct sigaction old_chld;  /* and SIGCHLD's action */
};

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
 * child_guard_begin: see child.h.  Blocks the stop signals and SIGCHLD,
 * and sets SIGCHLD's action to the default (ignored, waitpid would lose
 * the child's status).
 */
struct child_guard *
child_guard_begin(void)
{
	struct child_guard *g;
	struct sigaction    dfl;
	sigset_t            block;

	if ((g = malloc(sizeof(*g))) == NULL) {
		complain("cannot set up signals: %s", strerror(errno));
		goto out;
	}
	stop_signals(&g->stop);
	block = g->stop;
	sigaddset(&block, SIGCHLD);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	if (sigaction(SIGCHLD, &dfl, &g->old_chld) == -1) {
		complain("cannot set up SIGCHLD: %s", strerror(errno));
		free(g);
		g = NULL;
		goto out;
	}
	if (sigprocmask(SIG_BLOCK, &block, &g->old_mask) == -1) {
		complain("cannot block signals: %s", strerror(errno));
		sigaction(SIGCHLD, &g->old_chld, NULL);
		free(g);
		g = NULL;
	}
out:
	return g;
}

/* child_guard_end: see child.h. */
void
child_guard_end(struct child_guard *g)
{
	if (g == NULL)
		return;
	sigaction(SIGCHLD, &g->old_chld, NULL);
	sigprocmask(SIG_SETMASK, &g->old_mask, NULL);
	free(g);
}

/*
 * In the child, after fork: restores the signal mask and SIGCHLD's action
 * that lockbroker started with, then runs the command.  Never returns:
 * exits 126 or 127 (as shells do) when the command cannot be run.
 */
static void __attribute__((noreturn))
exec_command(const struct child_guard *g, const char *shell_cmd,
    char *const argv[])
{
	int e;

	sigaction(SIGCHLD, &g->old_chld, NULL);
	sigprocmask(SIG_SETMASK, &g->old_mask, NULL);
	if (shell_cmd != NULL)
		execl("/bin/sh", "sh", "-c", shell_cmd, (char *)NULL);
	else
		execvp(argv[0], argv);
	e = errno;
	complain("cannot run %s: %s", shell_cmd != NULL ? "/bin/sh" :
	    argv[0], strerror(e));
	_exit(e == ENOENT || e == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

/*
 * Waits for child pid to end, passing stop signals on to it.  Signals the
 * kernel sent (si_code SI_KERNEL: a terminal's ^C, a hangup) went to the
 * whole foreground process group, the child included, and are not sent
 * twice.  Returns the child's exit status, 128+N when signal N killed it,
 * or EX_OSERR when waiting fails.
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

/* child_run: see child.h.  EX_OSERR also when it cannot fork. */
int
child_run(const struct child_guard *g, const char *shell_cmd,
    char *const argv[])
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
		exec_command(g, shell_cmd, argv);
	r = wait_child(pid, &g->stop);
out:
	return r;
}
