/*
 * lockbroker.c: the lockbroker command.  flock(1)-style locking for shell
 * scripts over liblockbroker (<lockbroker.h> only):
 *
 *   lockbroker lock [options] PATH [--] COMMAND [ARG...]
 *   lockbroker lock [options] PATH -c COMMAND-STRING
 *   lockbroker status [options] PATH
 *   lockbroker break [options] [--stale] PATH
 *   lockbroker acquire [options] [--pid PID] PATH      (kept.c)
 *   lockbroker release [options] [--pid PID] PATH      (kept.c)
 *   lockbroker list [--json]                            (list.c)
 *
 * The usage text below is the documentation of options and exit statuses.
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
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "lockbroker.h"
#include "cli.h"

/* Long options without a short form. */
enum {
	OPT_METHOD = 256,
	OPT_LOCAL,
	OPT_BROKER,
	OPT_BREAK_STALE,
	OPT_STALE,
	OPT_PID,
	OPT_JSON
};

/* What follows a command's options. */
enum operands {
	OPERANDS_NONE,          /* nothing (list) */
	OPERANDS_PATH,          /* PATH */
	OPERANDS_COMMAND        /* PATH, then COMMAND (lock) */
};

struct command {
	const char          *name;
	const char          *shortopts;
	const struct option *longopts;
	enum operands        operands;
	int                (*run)(const struct opts *);
};

static const char usage_text[] =
"usage: " PROGRAM " lock [options] PATH [--] COMMAND [ARG...]\n"
"       " PROGRAM " lock [options] PATH -c COMMAND-STRING\n"
"       " PROGRAM " status [--method M] PATH\n"
"       " PROGRAM " break [--method M] [--stale] PATH\n"
"       " PROGRAM " acquire [-w SECONDS | -n] [-E N] [--method M] [--pid PID] PATH\n"
"       " PROGRAM " release [--method M] [--pid PID] PATH\n"
"       " PROGRAM " list [--json]\n"
"       " PROGRAM " --help | --version\n"
"\n"
"lock: take the lock on PATH, run COMMAND (not through a shell; with -c,\n"
"COMMAND-STRING through /bin/sh -c), wait for it, release the lock.\n"
"SIGINT, SIGTERM and SIGHUP sent to " PROGRAM " are passed on to COMMAND.\n"
"  -w, --wait, --timeout SECONDS  give up after SECONDS (fractions allowed)\n"
"  -n, --nonblock                 give up at once if the lock is held\n"
"  -E, --conflict-exit-code N     exit status when the lock is held (1)\n"
"  -c, --command COMMAND-STRING   run COMMAND-STRING with /bin/sh -c\n"
"  -v, --verbose                  say on stderr when the lock is taken\n"
"  --break-stale                  break a provably dead holder's lock\n"
"status: say whether PATH is locked, and by whom.\n"
"break: remove the lock on PATH whoever holds it; with --stale only when\n"
"its holder is provably dead.\n"
"acquire: take the lock on PATH for process PID and return; it stays held\n"
"after " PROGRAM " exits, until release or until PID exits (the daemon\n"
"watches PID; in-process nobody does: until release or break --stale).\n"
"  -w, -n, -E                     as for lock\n"
"  --pid PID                      the holder (default: the parent process,\n"
"                                 the shell that runs " PROGRAM ")\n"
"  -v, --verbose                  say on stderr what was done\n"
"release: release the lock on PATH that process PID holds (--pid and -v\n"
"as for acquire).\n"
"list: every lock the broker knows: a table, or with --json one JSON\n"
"document (see lockbroker(1) for its keys).\n"
"Options of lock, status, break, acquire, release:\n"
"  --method link|symlink|mkdir|pidfile|sqlite  the lock's on-disk form\n"
"                                 (default link)\n"
"  --local                        lock in-process, never through the broker\n"
"  --broker                       lock only through the broker\n"
"  -h, --help                     show this help\n"
"\n"
"Exit status:\n"
"  lock    COMMAND's status; 128+N if COMMAND was killed by signal N;\n"
"          the -E code (1) if the lock is held (-n, -w); 126 if COMMAND\n"
"          cannot be run, 127 if it is not found (a lock broken while\n"
"          COMMAND ran is reported on stderr; COMMAND's status stands)\n"
"  status  0 locked, 1 not locked\n"
"  break   0 broken or not locked, 1 --stale and the holder is not dead\n"
"  acquire 0 held for PID (now, or already), the -E code (1) if the lock\n"
"          is held by another (-n, -w)\n"
"  release 0 released, 1 the lock is not held for PID (free, or another's)\n"
"  list    0 listed (also when there is no lock)\n"
"  all     64 bad usage, 69 the lock cannot be taken, read, released or\n"
"          broken, or no daemon answers where one is needed (--broker,\n"
"          list), or it refuses (another user's PID, no such process),\n"
"          71 a system failure (fork, wait, memory), 74 cannot write\n"
"          the output\n";

static int cmd_lock(const struct opts *);
static int cmd_status(const struct opts *);
static int cmd_break(const struct opts *);

static const struct option top_options[] = {
	{ "help",    no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static const struct option lock_options[] = {
	{ "timeout",            required_argument, NULL, 'w' },
	{ "wait",               required_argument, NULL, 'w' },
	{ "nonblock",           no_argument,       NULL, 'n' },
	{ "nb",                 no_argument,       NULL, 'n' },
	{ "conflict-exit-code", required_argument, NULL, 'E' },
	{ "command",            required_argument, NULL, 'c' },
	{ "verbose",            no_argument,       NULL, 'v' },
	{ "break-stale",        no_argument,       NULL, OPT_BREAK_STALE },
	{ "method",             required_argument, NULL, OPT_METHOD },
	{ "local",              no_argument,       NULL, OPT_LOCAL },
	{ "broker",             no_argument,       NULL, OPT_BROKER },
	{ "help",               no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static const struct option status_options[] = {
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "local",  no_argument,       NULL, OPT_LOCAL },
	{ "broker", no_argument,       NULL, OPT_BROKER },
	{ "help",   no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static const struct option break_options[] = {
	{ "stale",  no_argument,       NULL, OPT_STALE },
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "local",  no_argument,       NULL, OPT_LOCAL },
	{ "broker", no_argument,       NULL, OPT_BROKER },
	{ "help",   no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static const struct option acquire_options[] = {
	{ "timeout",            required_argument, NULL, 'w' },
	{ "wait",               required_argument, NULL, 'w' },
	{ "nonblock",           no_argument,       NULL, 'n' },
	{ "nb",                 no_argument,       NULL, 'n' },
	{ "conflict-exit-code", required_argument, NULL, 'E' },
	{ "verbose",            no_argument,       NULL, 'v' },
	{ "pid",                required_argument, NULL, OPT_PID },
	{ "method",             required_argument, NULL, OPT_METHOD },
	{ "local",              no_argument,       NULL, OPT_LOCAL },
	{ "broker",             no_argument,       NULL, OPT_BROKER },
	{ "help",               no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static const struct option release_options[] = {
	{ "verbose", no_argument,       NULL, 'v' },
	{ "pid",     required_argument, NULL, OPT_PID },
	{ "method",  required_argument, NULL, OPT_METHOD },
	{ "local",   no_argument,       NULL, OPT_LOCAL },
	{ "broker",  no_argument,       NULL, OPT_BROKER },
	{ "help",    no_argument,       NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static const struct option list_options[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

/* The commands.  Short options start with "+:": stop at PATH (COMMAND's
 * own options are COMMAND's), and report a missing argument as ':'. */
static const struct command commands[] = {
	{ "lock",    "+:c:E:hnvw:", lock_options,    OPERANDS_COMMAND,
	    cmd_lock },
	{ "status",  "+:h",         status_options,  OPERANDS_PATH, cmd_status },
	{ "break",   "+:h",         break_options,   OPERANDS_PATH, cmd_break },
	{ "acquire", "+:E:hnvw:",   acquire_options, OPERANDS_PATH,
	    cmd_acquire },
	{ "release", "+:hv",        release_options, OPERANDS_PATH,
	    cmd_release },
	{ "list",    "+:h",         list_options,    OPERANDS_NONE, cmd_list },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct {
	const char *name;
	unsigned    flag;
} methods[] = {
	{ "link",    LB_LINK },
	{ "symlink", LB_SYMLINK },
	{ "mkdir",   LB_MKDIR },
	{ "pidfile", LB_PIDFILE },
	{ "sqlite",  LB_SQLITE },
};

#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* complain: see cli.h. */
void
complain(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", PROGRAM);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Complains about a bad command line, shows the usage on stderr and
 * returns EX_USAGE. */
static int __attribute__((format(printf, 1, 2)))
bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", PROGRAM);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage_text);
	return EX_USAGE;
}

/* now_mono: see cli.h. */
double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Parses a timeout: a finite number of seconds >= 0.  0, or -1. */
static int
parse_timeout(const char *text, double *out)
{
	char  *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || v < 0)
		return -1;
	*out = v;
	return 0;
}

/* Parses an exit status 0..255.  0, or -1. */
static int
parse_exit_code(const char *text, int *out)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (end == text || *end != '\0' || errno != 0 || v < 0 || v > 255)
		return -1;
	*out = (int)v;
	return 0;
}

/* Parses a process id: decimal, 1 to INT_MAX, nothing else.  0, or -1. */
static int
parse_pid(const char *text, pid_t *out)
{
	char *end;
	long  v;

	if (*text < '1' || *text > '9')
		return -1;
	errno = 0;
	v = strtol(text, &end, 10);
	if (*end != '\0' || errno != 0 || v > INT_MAX)
		return -1;
	*out = (pid_t)v;
	return 0;
}

/* method_name: see cli.h. */
const char *
method_name(unsigned method)
{
	size_t i;

	for (i = 0; i < NMETHODS; i++)
		if (methods[i].flag == method)
			return methods[i].name;
	return "?";
}

/* Parses a method name into its LB_* flag.  0, or -1. */
static int
parse_method(const char *name, unsigned *out)
{
	size_t i;

	for (i = 0; i < NMETHODS; i++) {
		if (strcmp(name, methods[i].name) == 0) {
			*out = methods[i].flag;
			return 0;
		}
	}
	return -1;
}

/*
 * Reads the lock command's words after PATH (argv, NULL-terminated) into o:
 * "-c STRING" (flock's form after PATH), or "[--] COMMAND [ARG...]".
 * Returns 0, or EX_USAGE after saying why.
 */
static int
parse_command_words(char **argv, struct opts *o)
{
	int r = 0;

	if (argv[0] != NULL && (strcmp(argv[0], "-c") == 0 ||
	    strcmp(argv[0], "--command") == 0)) {
		if (o->shell_cmd != NULL || argv[1] == NULL ||
		    argv[2] != NULL) {
			r = bad_usage("%s takes exactly one command string",
			    argv[0]);
			goto out;
		}
		o->shell_cmd = argv[1];
		goto out;
	}
	if (argv[0] != NULL && strcmp(argv[0], "--") == 0)
		argv++;
	if (o->shell_cmd != NULL && argv[0] != NULL) {
		r = bad_usage("-c takes the whole command as one string");
		goto out;
	}
	if (o->shell_cmd == NULL && argv[0] == NULL) {
		r = bad_usage("no command to run");
		goto out;
	}
	o->argv = argv;
out:
	return r;
}

/*
 * Parses a command's options and operands (argv[0] is the command's name)
 * into *o.  Returns 0; -1 when --help was asked for and shown (exit 0); or
 * EX_USAGE after saying why.  getopt's state is reset first.
 */
static int
parse_args(const struct command *cmd, int argc, char **argv, struct opts *o)
{
	int c, r = 0, local = 0, broker = 0;

	memset(o, 0, sizeof(*o));
	o->timeout = LB_FOREVER;
	o->conflict = EXIT_CONFLICT_DEFAULT;
	optind = 0;             /* glibc: start afresh */
	opterr = 0;
	while ((c = getopt_long(argc, argv, cmd->shortopts, cmd->longopts,
	    NULL)) != -1) {
		switch (c) {
		case 'w':
			if (parse_timeout(optarg, &o->timeout) == -1) {
				r = bad_usage("bad timeout '%s': seconds >= 0 "
				    "expected", optarg);
				goto out;
			}
			break;
		case 'n':
			o->timeout = 0;
			break;
		case 'E':
			if (parse_exit_code(optarg, &o->conflict) == -1) {
				r = bad_usage("bad conflict exit code '%s': "
				    "0..255 expected", optarg);
				goto out;
			}
			break;
		case 'c':
			o->shell_cmd = optarg;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case OPT_BREAK_STALE:
			o->flags |= LB_BREAK_STALE;
			break;
		case OPT_STALE:
			o->stale = 1;
			break;
		case OPT_PID:
			if (parse_pid(optarg, &o->pid) == -1) {
				r = bad_usage("bad pid '%s': a process id (a "
				    "positive decimal number) expected", optarg);
				goto out;
			}
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_METHOD:
			o->flags &= ~LB_METHOD_MASK;
			if (parse_method(optarg, &o->flags) == -1) {
				r = bad_usage("unknown method '%s'", optarg);
				goto out;
			}
			break;
		case OPT_LOCAL:
			local = 1;
			break;
		case OPT_BROKER:
			broker = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			r = -1;
			goto out;
		case ':':
			r = bad_usage("option %s needs an argument",
			    argv[optind - 1]);
			goto out;
		default:
			if (optopt != 0)
				r = bad_usage("%s: unknown option -%c",
				    cmd->name, optopt);
			else
				r = bad_usage("%s: unknown option %s",
				    cmd->name, argv[optind - 1]);
			goto out;
		}
	}
	if (local && broker) {
		r = bad_usage("--local and --broker exclude each other");
		goto out;
	}
	o->flags |= (local ? LB_LOCAL : 0) | (broker ? LB_BROKER : 0);
	if (cmd->operands == OPERANDS_NONE) {
		if (optind < argc)
			r = bad_usage("%s: unexpected argument '%s'",
			    cmd->name, argv[optind]);
		goto out;
	}
	if (optind >= argc || *argv[optind] == '\0') {
		r = bad_usage("%s: no PATH given", cmd->name);
		goto out;
	}
	o->path = argv[optind++];
	if (cmd->operands == OPERANDS_COMMAND)
		r = parse_command_words(argv + optind, o);
	else if (optind < argc)
		r = bad_usage("%s: unexpected argument '%s'", cmd->name,
		    argv[optind]);
out:
	return r;
}

/*
 * Makes the handle for o->path with o->flags plus extra (this process is
 * the owner: LB_UNTHREADED).  Returns it (the caller frees it with
 * lb_lock_free), or NULL with *code set to the exit status, after saying
 * why.
 */
static lb_lock *
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

/* Prints the failure of the last call on lock: what was being done, and
 * lb_lock_error's reason (or the code's message when there is none). */
static void
complain_lock(lb_lock *lock, const char *doing, int code)
{
	const char *why = lb_lock_error(lock);

	complain("cannot %s %s: %s", doing, lb_lock_path(lock),
	    *why != '\0' ? why : lb_strerror(code));
}

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
static int
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

/* user_name: see cli.h. */
const char *
user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd pw, *found = NULL;
	char          pwbuf[4096];

	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &found) != 0 ||
	    found == NULL)
		snprintf(buf, size, "?");
	else
		snprintf(buf, size, "%s", found->pw_name);
	return buf;
}

/* iso_time: see cli.h. */
const char *
iso_time(double epoch, char *buf, size_t size)
{
	struct tm tm;
	time_t    t = (time_t)epoch;
	char      date[32], zone[8];

	if (epoch <= 0 || localtime_r(&t, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0 ||
	    strftime(zone, sizeof(zone), "%z", &tm) != 5) {
		snprintf(buf, size, "unknown");
		return buf;
	}
	snprintf(buf, size, "%s.%03d%.3s:%s", date,
	    (int)((epoch - (double)t) * 1000), zone, zone + 3);
	return buf;
}

/* The word for a holder's liveness. */
static const char *
liveness_word(lb_liveness l)
{
	switch (l) {
	case LB_HOLDER_ALIVE:
		return "alive";
	case LB_HOLDER_DEAD:
		return "dead";
	default:
		return "unknown";
	}
}

/* Says in a few words who h is: "pid 42 on host (alive)". */
static const char *
holder_brief(const lb_holder *h, char *buf, size_t size)
{
	char pid[32];

	if (h->pid > 0)
		snprintf(pid, sizeof(pid), "pid %ld", (long)h->pid);
	else
		snprintf(pid, sizeof(pid), "an unknown pid");
	snprintf(buf, size, "%s on %s (%s)", pid,
	    h->host[0] != '\0' ? h->host : "an unknown host",
	    liveness_word(h->liveness));
	return buf;
}

/* Prints the holder h of lock on stdout, one "key: value" a line. */
static void
print_holder(lb_lock *lock, const lb_holder *h)
{
	char user[256], since[64];

	printf("%s: locked\n", lb_lock_path(lock));
	printf("  lock file: %s\n", lb_lock_file(lock));
	printf("  holder:    %s\n", liveness_word(h->liveness));
	printf("  host:      %s\n", h->host[0] != '\0' ? h->host : "unknown");
	if (h->pid > 0)
		printf("  pid:       %ld\n", (long)h->pid);
	else
		printf("  pid:       unknown\n");
	if (h->tid > 0)
		printf("  thread:    %ld\n", (long)h->tid);
	else
		printf("  thread:    none\n");
	if (h->uid != (uid_t)-1)
		printf("  user:      %lu (%s)\n", (unsigned long)h->uid,
		    user_name(h->uid, user, sizeof(user)));
	else
		printf("  user:      unknown\n");
	printf("  since:     %s\n", iso_time(h->since, since, sizeof(since)));
	printf("  unique:    %s\n", h->unique_name[0] != '\0' ?
	    h->unique_name : "unknown");
	if (h->broker) {
		printf("  broker:    %s\n", h->token != 0 ? "granted by the "
		    "broker" : "held outside the broker");
		if (h->token != 0)
			printf("  token:     %llu\n",
			    (unsigned long long)h->token);
		printf("  waiters:   %u\n", h->waiters);
	} else
		printf("  broker:    not asked (in-process view)\n");
}

/*
 * status: prints whether the lock is held and by whom.  Returns 0 when
 * locked, EXIT_NOT_LOCKED when not, EX_UNAVAILABLE when it cannot tell.
 */
static int
cmd_status(const struct opts *o)
{
	lb_holder h;
	lb_lock  *lock;
	int       r;

	if ((lock = open_lock(o, 0, &r)) == NULL)
		goto out;
	if ((r = lb_get_holder(lock, &h)) < 0) {
		complain_lock(lock, "read the lock on", r);
		r = EX_UNAVAILABLE;
	} else if (r == 0) {
		printf("%s: not locked\n", o->path);
		r = EXIT_NOT_LOCKED;
	} else {
		print_holder(lock, &h);
		r = 0;
	}
out:
	lb_lock_free(lock);
	return r;
}

/*
 * Breaks the lock of a holder judged dead, safely: an acquire with
 * LB_BREAK_STALE, which judges again under the library's breakers' lock
 * and removes only that very artefact, then a release.  (Breaking after
 * our own judgement could remove the lock of someone who took it in
 * between.)  Returns 0 when the lock is free now, EXIT_REFUSED when
 * someone live holds it, or EX_UNAVAILABLE.
 */
static int
break_stale(lb_lock *lock)
{
	int r;

	if ((r = lb_acquire(lock, 0)) == 0) {
		if ((r = lb_release(lock)) != 0) {
			complain_lock(lock, "release", r);
			r = EX_UNAVAILABLE;
		}
	} else if (r == LB_EALREADY) {
		complain("not breaking %s: it is held by a live owner now",
		    lb_lock_path(lock));
		r = EXIT_REFUSED;
	} else {
		complain_lock(lock, "break the stale lock on", r);
		r = EX_UNAVAILABLE;
	}
	return r;
}

/*
 * break: removes the lock whoever holds it, or with --stale only when its
 * holder is provably dead.  Says what it did on stdout.  Returns 0 when the
 * lock is free afterwards, EXIT_REFUSED when --stale and the holder is not
 * dead, EX_UNAVAILABLE when it cannot read or remove the lock.
 */
static int
cmd_break(const struct opts *o)
{
	lb_holder h;
	lb_lock  *lock;
	char      who[512];
	int       r;

	if ((lock = open_lock(o, o->stale ? LB_BREAK_STALE : 0, &r)) == NULL)
		goto out;
	if ((r = lb_get_holder(lock, &h)) < 0) {
		complain_lock(lock, "read the lock on", r);
		r = EX_UNAVAILABLE;
		goto out;
	}
	if (r == 0) {
		printf("%s: not locked, nothing to break\n", o->path);
		goto out;
	}
	holder_brief(&h, who, sizeof(who));
	if (o->stale && h.liveness != LB_HOLDER_DEAD) {
		complain("not breaking %s: its holder, %s, is not provably "
		    "dead", o->path, who);
		r = EXIT_REFUSED;
		goto out;
	}
	if (o->stale)
		r = break_stale(lock);
	else if ((r = lb_break_lock(lock)) != 0) {
		complain_lock(lock, "break the lock on", r);
		r = EX_UNAVAILABLE;
	}
	if (r == 0)
		printf("%s: broke the lock held by %s\n", o->path, who);
out:
	lb_lock_free(lock);
	return r;
}

/* The command called name, or NULL. */
static const struct command *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/*
 * main: the options before the command (--help, --version), then the
 * command's.  Returns the exit status documented in usage_text.
 */
int
main(int argc, char **argv)
{
	const struct command *cmd;
	struct opts           o;
	int                   c, r = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hV", top_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			goto out;
		case 'V':
			printf("%s %s\n", PROGRAM, PACKAGE_VERSION);
			goto out;
		default:
			if (optopt != 0)
				r = bad_usage("unknown option -%c", optopt);
			else
				r = bad_usage("unknown option %s",
				    argv[optind - 1]);
			goto out;
		}
	}
	if (optind >= argc) {
		r = bad_usage("no command given");
		goto out;
	}
	if ((cmd = find_command(argv[optind])) == NULL) {
		r = bad_usage("unknown command '%s'", argv[optind]);
		goto out;
	}
	if ((r = parse_args(cmd, argc - optind, argv + optind, &o)) != 0) {
		if (r == -1)
			r = 0;  /* --help */
		goto out;
	}
	r = cmd->run(&o);
out:
	if (fflush(stdout) == EOF && r == 0)
		r = EX_IOERR;
	return r;
}
