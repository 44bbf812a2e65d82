/*
 * args.c: the lockbroker command's command line: the usage text (the
 * documentation of every option and exit status), the option tables of
 * each command, and their parsing into struct opts.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "lockbroker.h"
#include "cli.h"
#include "os.h"

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

/* A command: its name, options, operands and what runs it. */
struct command {
	const char          *name;
	const char          *shortopts;
	const struct option *longopts;
	enum operands        operands;
	cli_run             *run;
};

static const char usage_text[] =
"usage: " PROGRAM " lock [options] PATH [--] COMMAND [ARG...]\n"
"       " PROGRAM " lock [options] PATH -c COMMAND-STRING\n"
"       " PROGRAM " lock [options] PATH PATH... -- COMMAND [ARG...]\n"
"       " PROGRAM " lock [options] PATH PATH... -c COMMAND-STRING\n"
"       " PROGRAM " status [--method M] PATH\n"
"       " PROGRAM " break [--method M] [--stale] PATH\n"
"       " PROGRAM " acquire [-w SECONDS | -n] [-E N] [-s | -x] [--method M] [--pid PID] PATH\n"
"       " PROGRAM " release [--method M] [--pid PID] PATH\n"
"       " PROGRAM " list [--json]\n"
"       " PROGRAM " --help | --version\n"
"\n"
"lock: take the lock on PATH, run COMMAND (not through a shell; with -c,\n"
"COMMAND-STRING through /bin/sh -c), wait for it, release the lock.\n"
"SIGINT, SIGTERM and SIGHUP sent to " PROGRAM " are passed on to COMMAND.\n"
"With several PATHs (at most 256, up to -- or -c), all of their locks are\n"
"taken at once or none (exclusive, each with the options given); a word\n"
"after the first PATH that is a program is COMMAND, so a lock named like\n"
"a program is written ./NAME, and no PATH of a set starts with '-'.\n"
"  -w, --wait, --timeout SECONDS  give up after SECONDS (fractions allowed)\n"
"  -n, --nonblock                 give up at once if the lock is held\n"
"  -E, --conflict-exit-code N     exit status when the lock is held (1)\n"
"  -c, --command COMMAND-STRING   run COMMAND-STRING with /bin/sh -c\n"
"  -v, --verbose                  say on stderr when the lock is taken\n"
"  -s, --shared                   a shared lock (any number of holders;\n"
"                                 through the daemon only)\n"
"  -x, --exclusive                an exclusive lock (the default)\n"
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
"  -s, --shared, -x, --exclusive  as for lock (shared: through the daemon\n"
"                                 only, released as any kept lock)\n"
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
	{ "shared",             no_argument,       NULL, 's' },
	{ "exclusive",          no_argument,       NULL, 'x' },
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
	{ "shared",             no_argument,       NULL, 's' },
	{ "exclusive",          no_argument,       NULL, 'x' },
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
	{ "lock",    "+:c:E:hnsvw:x", lock_options,    OPERANDS_COMMAND,
	    cmd_lock },
	{ "status",  "+:h",         status_options,  OPERANDS_PATH, cmd_status },
	{ "break",   "+:h",         break_options,   OPERANDS_PATH, cmd_break },
	{ "acquire", "+:E:hnsvw:x", acquire_options, OPERANDS_PATH,
	    cmd_acquire },
	{ "release", "+:hv",        release_options, OPERANDS_PATH,
	    cmd_release },
	{ "list",    "+:h",         list_options,    OPERANDS_NONE, cmd_list },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

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

/* 1 when word ends the PATHs of a set: "--", or -c before its string. */
static int
ends_set(const char *word)
{
	return strcmp(word, "--") == 0 || strcmp(word, "-c") == 0 ||
	    strcmp(word, "--command") == 0;
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
 * Reads the lock command's operands (argv: the first PATH, then what
 * follows it, NULL-terminated) into o: one PATH and its command words
 * (parse_command_words), or a set, "PATH PATH... -- COMMAND [ARG...]" or
 * "PATH PATH... -c STRING".  The word after the first PATH stays the
 * command whenever it was one before sets: a program (os_is_command),
 * "--" or -c, or any word when no "--" or -c follows (COMMAND then cannot
 * be run, as before); so a set is words that are not programs up to "--"
 * or -c.  In a set no PATH starts with '-' or names a program (a lock
 * named like one is written ./NAME), -c is not also an option, -s is
 * refused (lb_acquire_all takes exclusive locks), and there are at most
 * LOCK_SET_MAX PATHs.  Returns 0, or EX_USAGE after saying why.
 */
static int
parse_paths_then_command(char **argv, struct opts *o)
{
	size_t i, n;
	int    r = 0;

	o->path = argv[0];
	o->paths = argv;
	o->npaths = 1;
	if (o->shell_cmd != NULL || argv[1] == NULL || ends_set(argv[1]) ||
	    os_is_command(argv[1])) {
		r = parse_command_words(argv + 1, o);
		goto out;
	}
	for (n = 1; argv[n] != NULL && !ends_set(argv[n]); n++)
		;
	if (argv[n] == NULL) {
		/* No "--": argv[1] is the command, as it always was. */
		r = parse_command_words(argv + 1, o);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (*argv[i] == '\0') {
			r = bad_usage("lock: an empty PATH in a set");
			goto out;
		}
		if (*argv[i] == '-') {
			r = bad_usage("lock: '%s': a PATH of a set never "
			    "starts with '-' (options go before the PATHs; "
			    "write ./%s for a file so named)", argv[i],
			    argv[i]);
			goto out;
		}
		if (i > 0 && os_is_command(argv[i])) {
			r = bad_usage("lock: '%s' is a program, not a PATH "
			    "(write ./%s for a lock so named, or put -- "
			    "before the command)", argv[i], argv[i]);
			goto out;
		}
	}
	if (n > LOCK_SET_MAX) {
		r = bad_usage("lock: %lu PATHs given, at most %d are taken at "
		    "once", (unsigned long)n, LOCK_SET_MAX);
		goto out;
	}
	if (o->shared) {
		r = bad_usage("lock: shared locks are not taken in sets (-s "
		    "with %lu PATHs)", (unsigned long)n);
		goto out;
	}
	o->npaths = n;
	r = parse_command_words(argv + n, o);
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
	unsigned method;
	int      c, r = 0, local = 0, broker = 0;

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
		case 's':
			o->shared = 1;
			break;
		case 'x':
			o->shared = 0;
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
			if (lb_method_parse(optarg, &method) != 0) {
				r = bad_usage("unknown method '%s'", optarg);
				goto out;
			}
			/* The other flags (--break-stale) stay. */
			o->flags = (o->flags & ~LB_METHOD_MASK) | method;
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
	if (cmd->operands == OPERANDS_COMMAND) {
		r = parse_paths_then_command(argv + optind, o);
		goto out;
	}
	o->path = argv[optind++];
	if (optind < argc)
		r = bad_usage("%s: unexpected argument '%s'", cmd->name,
		    argv[optind]);
out:
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

/* args_parse: see cli.h. */
int
args_parse(int argc, char **argv, struct opts *o, cli_run **run)
{
	const struct command *cmd;
	int                   c, r = 0;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hV", top_options, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			r = -1;
			goto out;
		case 'V':
			printf("%s %s\n", PROGRAM, PACKAGE_VERSION);
			r = -1;
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
	if ((r = parse_args(cmd, argc - optind, argv + optind, o)) == 0)
		*run = cmd->run;
out:
	return r;
}
