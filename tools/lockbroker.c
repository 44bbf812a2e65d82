/*
 * lockbroker.c: the lockbroker command.  flock(1)-style locking for shell
 * scripts over liblockbroker (<lockbroker.h> only):
 *
 *   lockbroker lock [options] PATH [--] COMMAND [ARG...]   (run.c)
 *   lockbroker lock [options] PATH -c COMMAND-STRING       (run.c)
 *   lockbroker lock [options] PATH PATH... -- COMMAND [ARG...]   (run.c)
 *   lockbroker status [options] PATH                       (status.c)
 *   lockbroker break [options] [--stale] PATH              (status.c)
 *   lockbroker acquire [options] [--pid PID] PATH          (kept.c)
 *   lockbroker release [options] [--pid PID] PATH          (kept.c)
 *   lockbroker list [--json]                               (list.c)
 *
 * This file holds main and what every command uses; args.c reads the
 * command line (its usage text documents options and exit statuses).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lockbroker.h"
#include "cli.h"
#include "os.h"

/* now_mono: see cli.h. */
double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* open_lock: see cli.h. */
lb_lock *
open_lock(const struct opts *o, unsigned extra, int *code)
{
	lb_lock *lock;

	if ((lock = lb_lock_new(o->path, o->flags | extra | LB_UNTHREADED)) ==
	    NULL) {
		complain("cannot use %s as a lock: %s", o->path,
		    strerror(errno));
		*code = errno == ENOMEM ? EX_OSERR : EX_USAGE;
	}
	return lock;
}

/* complain_lock: see cli.h. */
void
complain_lock(lb_lock *lock, const char *doing, int code)
{
	const char *why = lb_lock_error(lock);

	complain("cannot %s %s: %s", doing, lb_lock_path(lock),
	    *why != '\0' ? why : lb_strerror(code));
}

/*
 * main: reads the command line (args.c) and runs the command.  Returns the
 * exit status documented in args.c's usage text.
 */
int
main(int argc, char **argv)
{
	struct opts o;
	cli_run    *run = NULL;
	int         r;

	if (os_args(&argc, &argv) == -1)
		return EX_OSERR;
	if ((r = args_parse(argc, argv, &o, &run)) == 0)
		r = run(&o);
	else if (r == -1)
		r = 0;          /* --help or --version, shown */
	if (fflush(stdout) == EOF && r == 0)
		r = EX_IOERR;
	return r;
}
