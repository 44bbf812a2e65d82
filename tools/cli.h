/*
 * cli.h: what the lockbroker command's files share: the parsed command
 * line, the exit statuses, and the helpers that speak to the user.
 *
 *   lockbroker.c  main, and what every command uses
 *   say.c         complain, and the exit statuses (say.h)
 *   args.c        the command line: usage, options, parsing
 *   run.c         lock: take the lock, run COMMAND, release
 *   child_*.c     running COMMAND, per OS (child.h)
 *   status.c      status, break
 *   kept.c        acquire, release: locks kept for a process
 *   list.c        list: every lock the broker knows, as a table or JSON
 */
#ifndef LB_CLI_H
#define LB_CLI_H

#include <stddef.h>
#include <sys/types.h>

#include "lockbroker.h"
#include "say.h"

/* What the command line asked for. */
struct opts {
	unsigned    flags;      /* for lb_lock_new: method, LB_LOCAL, ... */
	double      timeout;    /* LB_FOREVER, or seconds (0: one try) */
	int         conflict;   /* exit status when the lock is held */
	int         verbose;
	int         stale;      /* break: only a dead holder's lock */
	int         json;       /* list: JSON instead of a table */
	int         shared;     /* lock, acquire: -s, a shared lock */
	pid_t       pid;        /* acquire, release: --pid, or 0 */
	const char *shell_cmd;  /* -c: run through sh -c */
	const char *path;       /* the PATH, or a set's first */
	char      **paths;      /* lock: the PATHs, path first */
	size_t      npaths;     /* 1, or a set's 2 to LOCK_SET_MAX */
	char      **argv;       /* COMMAND [ARG...], NULL-terminated */
};

/* The most PATHs `lock` takes at once (lb_acquire_all's bound). */
#define LOCK_SET_MAX 256

/* A command: runs what *o asks for and returns the exit status. */
typedef int cli_run(const struct opts *o);

/* The commands (run.c, status.c, kept.c, list.c). */
cli_run cmd_lock, cmd_status, cmd_break, cmd_acquire, cmd_release, cmd_list;

/*
 * args.c: reads the command line: the options before the command (--help,
 * --version), the command, its options and operands, into *o and *run.
 * Returns 0 (run *run with *o); -1 when --help or --version was shown
 * (exit 0); or EX_USAGE after saying why, with the usage on stderr.
 */
int args_parse(int argc, char **argv, struct opts *o, cli_run **run);

/* lockbroker.c: the handle for o->path with o->flags plus extra (this
 * process is the owner: LB_UNTHREADED).  Returns it (the caller frees it
 * with lb_lock_free), or NULL with *code set to the exit status, after
 * saying why. */
lb_lock *open_lock(const struct opts *o, unsigned extra, int *code);

/* lockbroker.c: prints the failure of the last call on lock: what was
 * being done, and lb_lock_error's reason (or the code's message when there
 * is none). */
void complain_lock(lb_lock *lock, const char *doing, int code);

/* lockbroker.c: seconds on the monotonic clock. */
double now_mono(void);

/* status.c: the user name of uid into buf, or "?" when it has none. */
const char *user_name(lb_uid_t uid, char *buf, size_t size);

/* status.c: epoch seconds as ISO-8601 local time with milliseconds
 * and offset (2024-05-01T12:34:56.789+02:00) into buf, or "unknown" for
 * 0. */
const char *iso_time(double epoch, char *buf, size_t size);


#endif /* LB_CLI_H */
