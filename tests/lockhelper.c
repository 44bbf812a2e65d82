/*
 * lockhelper.c: drives one lock through the public API (lockbroker.h only),
 * for tests that need a C peer in a process of its own, such as the
 * interoperability test with Python's lockfile (tests/interop.py).
 *
 *   lockhelper [-blsu] METHOD PATH hold [TIMEOUT]
 *   lockhelper [-blsu] METHOD PATH serve
 *   lockhelper [-blsu] METHOD PATH try TIMEOUT | is_locked | holder | break
 *
 * Every answer is one line on stdout ("key value" lines ending with "end"
 * for holder), flushed at once, so that a driver can read it through a
 * pipe.  A failure is "error LB_ENAME: reason"; try answers "0" or the
 * error's name alone.  These commands, sent on stdin one a line, are
 * obeyed by a "serve" or "hold" process, which saves starting a process
 * per question (try, is_locked, holder and break also work as COMMAND):
 *
 *   acquire TIMEOUT   "locked" or the error
 *   release           "released" or the error
 *   try TIMEOUT       acquire, answer "0" or the error's name, release
 *   is_locked         1 or 0
 *   i_am_locking      1 or 0
 *   holder            the holder's fields
 *   break             "0" or the error
 *   pid               this process's pid
 *
 * "serve" obeys them until end of input.  "hold" first acquires (TIMEOUT
 * defaults to forever) and answers "locked", or the error and exits; then
 * it obeys them until "release" or end of input, releases, answers
 * "released" (or the error) and exits.
 *
 * Exit status: 0 when the command did what it names (for "try": acquired;
 * for "hold": acquired and released), 1 when it did not, 2 on misuse.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lockbroker.h"

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

static const char *liveness_names[] = { "unknown", "alive", "dead" };

/* Prints how to call us on stderr and returns the misuse status. */
static int
usage(void)
{
	fprintf(stderr,
	    "usage: lockhelper [-blsu] METHOD PATH COMMAND [TIMEOUT]\n"
	    "  METHOD   link | symlink | mkdir | pidfile | sqlite\n"
	    "  -b       broker only (LB_BROKER)\n"
	    "  -l       in-process only (LB_LOCAL)\n"
	    "  -s       break a provably dead holder's lock (LB_BREAK_STALE)\n"
	    "  -u       one owner for all threads (LB_UNTHREADED)\n"
	    "  COMMAND  hold [TIMEOUT]  acquire, obey stdin until release\n"
	    "           serve           obey stdin until its end\n"
	    "           try TIMEOUT     acquire, print the result, release\n"
	    "           is_locked       print 1 or 0\n"
	    "           holder          print the holder's fields\n"
	    "           break           break the lock\n"
	    "  on stdin: acquire TIMEOUT, release, try TIMEOUT, is_locked,\n"
	    "           i_am_locking, holder, break, pid\n"
	    "  TIMEOUT  seconds, <= 0 for one try, \"forever\" or \"inf\"\n");
	return 2;
}

/* Sets *flag to the LB_* method called name; 0, or -1 when none is. */
static int
parse_method(const char *name, unsigned *flag)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, name) == 0) {
			*flag = methods[i].flag;
			return 0;
		}
	return -1;
}

/* Sets *timeout from text: seconds, or "forever"; 0, or -1 when text is
 * missing or not a number. */
static int
parse_timeout(const char *text, double *timeout)
{
	char *end;

	if (text == NULL)
		return -1;
	if (strcmp(text, "forever") == 0) {
		*timeout = LB_FOREVER;
		return 0;
	}
	errno = 0;
	*timeout = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || isnan(*timeout))
		return -1;
	return 0;
}

/* Prints the outcome r of a call on lock: ok_word on success, else
 * "error NAME: reason".  Returns 0 on success, 1 on failure. */
static int
report(lb_lock *lock, int r, const char *ok_word)
{
	if (r >= 0) {
		printf("%s\n", ok_word);
		return 0;
	}
	printf("error %s: %s\n", lb_error_name(r), lb_lock_error(lock));
	return 1;
}

/* Prints a 1/0 answer r (lb_is_locked, lb_i_am_locking), or the error.
 * Returns 0 on an answer, 1 on an error. */
static int
report_bool(lb_lock *lock, int r)
{
	return report(lock, r, r == 1 ? "1" : "0");
}

/* try: one acquire within timeout; prints "0" or the error's name and
 * releases what it took.  Returns 0 when it acquired and released. */
static int
do_try(lb_lock *lock, double timeout)
{
	int r;

	r = lb_acquire(lock, timeout);
	printf("%s\n", lb_error_name(r));
	if (r != 0) {
		r = 1;
		goto out;
	}
	if ((r = lb_release(lock)) != 0) {
		fprintf(stderr, "lockhelper: release after try: %s: %s\n",
		    lb_error_name(r), lb_lock_error(lock));
		r = 1;
	}
out:
	return r;
}

/* holder: prints what the artefact says of its holder, "key value" a line,
 * ending with "end".  Returns 0, or 1 (and the error) when it cannot. */
static int
do_holder(lb_lock *lock)
{
	lb_holder h;
	int       r;

	if ((r = lb_get_holder(lock, &h)) < 0)
		return report(lock, r, "");
	printf("held %d\n", r);
	printf("host %s\n", h.host);
	printf("unique %s\n", h.unique_name);
	printf("pid %ld\n", (long)h.pid);
	printf("tid %ld\n", (long)h.tid);
	printf("uid %ld\n", h.uid == (uid_t)-1 ? -1L : (long)h.uid);
	printf("since %.6f\n", h.since);
	printf("liveness %s\n", (unsigned)h.liveness < 3 ?
	    liveness_names[h.liveness] : "?");
	printf("end\n");
	return 0;
}

/*
 * Runs one command, word with its argument arg (NULL when none), and
 * prints its answer.  Returns the command's status (0 or 1), or 2 when
 * there is no such command or it needs a timeout it was not given.
 */
static int
obey(lb_lock *lock, const char *word, const char *arg)
{
	double timeout = 0;
	int    takes_timeout, r = 2;

	takes_timeout = strcmp(word, "acquire") == 0 ||
	    strcmp(word, "try") == 0;
	if ((takes_timeout && parse_timeout(arg, &timeout) == -1) ||
	    (!takes_timeout && arg != NULL))
		goto out;
	if (strcmp(word, "acquire") == 0)
		r = report(lock, lb_acquire(lock, timeout), "locked");
	else if (strcmp(word, "try") == 0)
		r = do_try(lock, timeout);
	else if (strcmp(word, "release") == 0)
		r = report(lock, lb_release(lock), "released");
	else if (strcmp(word, "is_locked") == 0)
		r = report_bool(lock, lb_is_locked(lock));
	else if (strcmp(word, "i_am_locking") == 0)
		r = report_bool(lock, lb_i_am_locking(lock));
	else if (strcmp(word, "holder") == 0)
		r = do_holder(lock);
	else if (strcmp(word, "break") == 0)
		r = report(lock, lb_break_lock(lock), "0");
	else if (strcmp(word, "pid") == 0) {
		printf("%ld\n", (long)getpid());
		r = 0;
	}
out:
	return r;
}

/*
 * Obeys commands from stdin, one a line, until end of input or, when
 * until_release, a "release" line (which it does not run).  Returns 1 when
 * it stopped at "release", else 0.
 */
static int
obey_stdin(lb_lock *lock, int until_release)
{
	char  line[128];
	char *word, *arg, *extra;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		word = strtok(line, " \t\r\n");
		arg = strtok(NULL, " \t\r\n");
		extra = strtok(NULL, " \t\r\n");
		if (word == NULL)
			continue;
		if (until_release && strcmp(word, "release") == 0 &&
		    arg == NULL)
			return 1;
		if (extra != NULL || obey(lock, word, arg) == 2)
			printf("error usage: not a command: %s%s%s\n", word,
			    arg != NULL ? " " : "", arg != NULL ? arg : "");
	}
	return 0;
}

/* Parses the options and the command line, runs the command; the exit
 * status is described at the top of this file. */
int
main(int argc, char **argv)
{
	lb_lock    *lock = NULL;
	const char *cmd, *arg;
	unsigned    flags = 0, method;
	int         ch, r = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((ch = getopt(argc, argv, "blsu")) != -1) {
		switch (ch) {
		case 'b':
			flags |= LB_BROKER;
			break;
		case 'l':
			flags |= LB_LOCAL;
			break;
		case 's':
			flags |= LB_BREAK_STALE;
			break;
		case 'u':
			flags |= LB_UNTHREADED;
			break;
		default:
			goto out;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 3 || argc > 4 || parse_method(argv[0], &method) == -1) {
		r = usage();
		goto out;
	}
	cmd = argv[2];
	arg = argc == 4 ? argv[3] : NULL;
	if (strcmp(cmd, "acquire") == 0 || strcmp(cmd, "release") == 0 ||
	    strcmp(cmd, "i_am_locking") == 0 || strcmp(cmd, "pid") == 0 ||
	    (strcmp(cmd, "serve") == 0 && arg != NULL)) {
		r = usage();    /* meaningless in a process of its own */
		goto out;
	}
	if ((lock = lb_lock_new(argv[1], flags | method)) == NULL) {
		fprintf(stderr, "lockhelper: %s: %s\n", argv[1],
		    strerror(errno));
		r = 1;
		goto out;
	}

	if (strcmp(cmd, "hold") == 0) {
		if ((r = obey(lock, "acquire", arg != NULL ? arg : "forever")) ==
		    0) {
			obey_stdin(lock, 1);
			r = obey(lock, "release", NULL);
		}
	} else if (strcmp(cmd, "serve") == 0)
		r = obey_stdin(lock, 0);
	else
		r = obey(lock, cmd, arg);
	if (r == 2) {
		fprintf(stderr, "lockhelper: bad command or timeout: %s%s%s\n",
		    cmd, arg != NULL ? " " : "", arg != NULL ? arg : "");
		r = usage();
	}
out:
	lb_lock_free(lock);
	return r;
}
