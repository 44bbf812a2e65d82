/*
 * stress.c: the mutual-exclusion stress test.
 *
 *   stress [--method M] [--procs N] [--threads T] [--iters I] [--unthreaded]
 *          [--shared] [--readers R] [--kept-readers] [--sets]
 *          [--broker-procs K] [--auto-procs A] [--python-procs P]
 *          [--python-iters J] [--timeout S] DIR
 *
 * Forks N processes of T threads each.  Every thread makes its own handle
 * on DIR/counter and, I times, takes the lock (LB_FOREVER), creates
 * DIR/inside exclusively (it exists exactly while someone is inside, so
 * finding it there means two holders overlap), adds one to the number in
 * DIR/count (read, write DIR/count.tmp, rename), removes DIR/inside and
 * releases.  With --readers, R more processes of T threads take the
 * lock shared through the broker, I times each: inside, each counts
 * itself in the run's readers (shared memory) and checks twice that
 * DIR/inside is absent, and each writer checks, while inside, that no
 * reader is counted in: a writer beside a reader is an overlap, seen
 * from either side.  Readers do not count.  With --kept-readers, each
 * reader process is one thread whose shared holds are kept for its own
 * pid (lb_acquire_shared_for, lb_release_for: ACQUIRE pid= mode=shared),
 * which the daemon keeps over its restarts with no RECLAIM.  With --sets, each C writer
 * takes DIR/counter and DIR/counter2 at once (lb_acquire_all, named in
 * either order by turns) and marks DIR/inside2 too while inside.  With
 * --broker-procs or --auto-procs, the first K of the C
 * processes lock through the broker (LB_BROKER), the next A choose for
 * themselves (AUTO: neither flag, LOCKBROKER_TRANSPORT=auto) and the
 * others lock in-process (LB_LOCAL), so that the transports compete for
 * one lock.  With --python-procs, P Python processes do the same loop J
 * times with the lockfile class of the same method, on the same path, at
 * the same time.  The parent waits for all of them (killing them all when
 * they take longer than S seconds) and checks that no overlap was seen,
 * that DIR/count is N*T*I + P*J, and that the lock is free at the end.
 *
 * Every failing call is reported on stderr with the worker's pid, thread
 * and transport, the seconds since the start, the error's name and the
 * library's reason, so that a failure during a daemon restart (see
 * tests/chaos.sh) can be matched with the daemon's log.  The summary also
 * gives the longest time one C thread waited in lb_acquire (reported, not
 * judged: a run with daemon restarts waits longer).
 *
 * Prints one summary line; exits 0 when all holds, 1 when not, 2 on a usage
 * error.  Only DIR/count is left behind (and the sqlite method's database).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lockbroker.h"

#define STRESS_MAX_PROCS    256
#define STRESS_MAX_THREADS  64
#define STRESS_MAX_ITERS    1000000
#define STRESS_MAX_TIMEOUT  86400
#define STRESS_GRACE        10   /* seconds left to the others after a failure */
#define STRESS_POLL_NS      10000000L   /* parent's wait poll: 10 ms */

/* What one run is asked to do, from the command line. */
struct config {
	const char *method_name;
	unsigned    method;
	unsigned    flags;        /* for lb_lock_new */
	long        procs;
	long        threads;
	long        iters;
	long        python_procs;
	long        broker_procs; /* -1: the default transport for all */
	long        auto_procs;   /* after the broker ones; -1: none given */
	long        python_iters;
	long        timeout;      /* seconds before the parent kills all */
	long        readers;      /* processes reading through the broker */
	int         kept_readers; /* their holds kept for their pid, one
	                             thread each */
	int         sets;         /* writers take counter and counter2 */
	int         shared;       /* others use the lock too: it may be held
	                             after the run */
	const char *python;       /* interpreter */
	const char *python_class; /* lockfile's class for the method */
	const char *dir;
	char        lock_path[PATH_MAX];   /* DIR/counter */
	char        lock2_path[PATH_MAX];  /* DIR/counter2 (--sets) */
	char        inside2[PATH_MAX];     /* DIR/inside2 (--sets) */
	char        inside[PATH_MAX];      /* DIR/inside */
	char        count[PATH_MAX];       /* DIR/count */
	char        count_tmp[PATH_MAX];   /* DIR/count.tmp */
};

/* Shared by every C process of the run (an anonymous shared mapping). */
struct tally {
	unsigned long done;       /* increments made by C threads */
	unsigned long overlaps;   /* times two holders were seen inside */
	unsigned long failures;   /* any other error */
	unsigned long longest_ns; /* the longest lb_acquire of a C thread */
	unsigned long readers_in; /* readers inside now */
	unsigned long reads;      /* shared holds taken by readers */
};

/* A forked worker, as the parent tracks it. */
struct worker {
	pid_t pid;
	int   python;
	int   reaped;
	int   status;
};

static const struct {
	const char *name;
	unsigned    method;
	const char *python_class;  /* NULL: no Python peer can share it */
} methods[] = {
	{ "link",    LB_LINK,    "lockfile.linklockfile.LinkLockFile" },
	{ "symlink", LB_SYMLINK, "lockfile.symlinklockfile.SymlinkLockFile" },
	{ "mkdir",   LB_MKDIR,   "lockfile.mkdirlockfile.MkdirLockFile" },
	{ "pidfile", LB_PIDFILE, "lockfile.pidlockfile.PIDLockFile" },
	{ "sqlite",  LB_SQLITE,  NULL },
};

/*
 * The Python worker: argv is CLASS DIR ITERS READY_FD.  Once it has its
 * lock object it writes one byte to READY_FD, so that the C workers start
 * only when every Python worker is ready to compete.  It acquires with a short
 * timeout in a loop rather than with timeout=None, because lockfile then
 * polls every timeout/10 (5 ms) instead of every 0.1 s and so competes
 * with the C threads instead of waiting for them to finish.
 *
 * WORKAROUND (lockfile 0.12.2 bug, not ours): SymlinkLockFile.acquire
 * raises FileNotFoundError when the holder releases between its failed
 * symlink() and the readlink() in i_am_locking(); such a try did not take
 * the lock, so the worker simply tries again.
 */
static const char python_worker[] =
"import os, sys, importlib\n"
"from lockfile import LockTimeout\n"
"cls_path, d, iters = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
"mod, cls = cls_path.rsplit('.', 1)\n"
"lock = getattr(importlib.import_module(mod), cls)(os.path.join(d, 'counter'))\n"
"os.write(int(sys.argv[4]), b'r')\n"
"os.close(int(sys.argv[4]))\n"
"inside = os.path.join(d, 'inside')\n"
"count = os.path.join(d, 'count')\n"
"tmp = os.path.join(d, 'count.tmp')\n"
"me = 'stress: python pid %d' % os.getpid()\n"
"bad = 0\n"
"for i in range(iters):\n"
"    while True:\n"
"        try:\n"
"            lock.acquire(timeout=0.05)\n"
"            break\n"
"        except LockTimeout:\n"
"            pass\n"
"        except FileNotFoundError:\n"
"            pass\n"
"    try:\n"
"        os.close(os.open(inside, os.O_WRONLY | os.O_CREAT | os.O_EXCL))\n"
"        mine = True\n"
"    except FileExistsError:\n"
"        sys.stderr.write('%s: overlap: %s exists after acquire\\n' % (me, inside))\n"
"        mine = False\n"
"        bad += 1\n"
"    with open(count) as f:\n"
"        n = int(f.read())\n"
"    with open(tmp, 'w') as f:\n"
"        f.write('%d\\n' % (n + 1))\n"
"    os.rename(tmp, count)\n"
"    if mine:\n"
"        try:\n"
"            os.unlink(inside)\n"
"        except FileNotFoundError:\n"
"            sys.stderr.write('%s: overlap: %s removed by another\\n' % (me, inside))\n"
"            bad += 1\n"
"    lock.release()\n"
"sys.exit(1 if bad else 0)\n";

static struct config  cfg;
static struct tally  *tally;
static double         run_start;      /* monotonic; set before any fork */
static const char    *transport_name = "default";  /* of this process */

/* Prints the usage to f. */
static void
usage(FILE *f)
{
	fprintf(f,
"usage: stress [--method M] [--procs N] [--threads T] [--iters I]\n"
"              [--unthreaded] [--broker-procs K] [--auto-procs A]\n"
"              [--python-procs P] [--python-iters J] [--timeout S]\n"
"              [--shared] [--readers R] [--kept-readers] [--sets] DIR\n"
"\n"
"N processes of T threads each take the lock on DIR/counter I times and,\n"
"while holding it, add one to the number in DIR/count; P Python lockfile\n"
"processes do the same J times.  Fails when two holders ever overlap, when\n"
"an increment is lost, or when the run takes longer than S seconds.\n"
"\n"
"  --method M        link (default), symlink, mkdir, pidfile or sqlite\n"
"  --procs N         C processes, 1..%d (default 4)\n"
"  --threads T       threads per process, 1..%d (default 4; 1 with\n"
"                    --unthreaded, where a process is one owner)\n"
"  --iters I         acquisitions per thread, 1..%d (default 50)\n"
"  --unthreaded      LB_UNTHREADED handles (then only one thread each)\n"
"  --broker-procs K  the first K C processes lock through the broker\n"
"                    (LB_BROKER), the others in-process (LB_LOCAL)\n"
"  --auto-procs A    the A C processes after those choose for themselves\n"
"                    (AUTO: the broker when it answers, else in-process)\n"
"  --python-procs P  Python lockfile workers, 0..%d (default 0; not with\n"
"                    sqlite, whose Python database is private to a process)\n"
"  --python-iters J  acquisitions per Python worker (default 20)\n"
"  --timeout S       kill everything and fail after S seconds (default 120)\n"
"  --shared          other programs take the lock too: do not require it\n"
"                    to be free after the run\n"
"  --readers R       R more processes of T threads take the lock shared\n"
"                    through the broker, I times each\n"
"  --kept-readers    the readers' holds are kept for their process\n"
"                    (lb_acquire_shared_for), one thread each\n"
"  --sets            C writers take DIR/counter and DIR/counter2 at once\n"
"                    (lb_acquire_all)\n"
"\n"
"The Python interpreter is $PYTHON3, else /usr/bin/python3.\n",
	    STRESS_MAX_PROCS, STRESS_MAX_THREADS, STRESS_MAX_ITERS,
	    STRESS_MAX_PROCS);
}

/* Reports a usage error and exits 2. */
static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "stress: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n\n");
	usage(stderr);
	exit(2);
}

/* Parses option what's value text as an integer in [min, max], or exits
 * with a usage error. */
static long
parse_count(const char *what, const char *text, long min, long max)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (*text == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		usage_error("%s wants a whole number from %ld to %ld, not '%s'",
		    what, min, max, text);
	return v;
}

/* Builds DIR/name into out, or exits with a usage error when too long. */
static void
dir_path(char *out, const char *name)
{
	int n;

	n = snprintf(out, PATH_MAX, "%s/%s", cfg.dir, name);
	if (n < 0 || n >= PATH_MAX)
		usage_error("directory name too long: %s", cfg.dir);
}

/* Fills cfg from the command line, or exits (0 for --help, 2 on a usage
 * error). */
static void
parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "method",       required_argument, NULL, 'm' },
		{ "procs",        required_argument, NULL, 'n' },
		{ "threads",      required_argument, NULL, 't' },
		{ "iters",        required_argument, NULL, 'i' },
		{ "unthreaded",   no_argument,       NULL, 'u' },
		{ "shared",       no_argument,       NULL, 'S' },
		{ "python-procs", required_argument, NULL, 'p' },
		{ "broker-procs", required_argument, NULL, 'b' },
		{ "auto-procs",   required_argument, NULL, 'a' },
		{ "python-iters", required_argument, NULL, 'j' },
		{ "timeout",      required_argument, NULL, 'T' },
		{ "readers",      required_argument, NULL, 'r' },
		{ "kept-readers", no_argument,       NULL, 'K' },
		{ "sets",         no_argument,       NULL, 's' },
		{ "help",         no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct stat st;
	size_t      k;
	int         c, unthreaded = 0, one_owner;

	cfg.method_name = methods[0].name;
	cfg.method = methods[0].method;
	cfg.python_class = methods[0].python_class;
	cfg.procs = 4;
	cfg.threads = -1;
	cfg.iters = 50;
	cfg.python_iters = 20;
	cfg.broker_procs = -1;
	cfg.auto_procs = -1;
	cfg.timeout = 120;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			for (k = 0; k < sizeof(methods) / sizeof(methods[0]);
			    k++)
				if (strcmp(optarg, methods[k].name) == 0)
					break;
			if (k == sizeof(methods) / sizeof(methods[0]))
				usage_error("unknown method '%s'", optarg);
			cfg.method_name = methods[k].name;
			cfg.method = methods[k].method;
			cfg.python_class = methods[k].python_class;
			break;
		case 'n':
			cfg.procs = parse_count("--procs", optarg, 1,
			    STRESS_MAX_PROCS);
			break;
		case 't':
			cfg.threads = parse_count("--threads", optarg, 1,
			    STRESS_MAX_THREADS);
			break;
		case 'i':
			cfg.iters = parse_count("--iters", optarg, 1,
			    STRESS_MAX_ITERS);
			break;
		case 'S':
			cfg.shared = 1;
			break;
		case 'u':
			unthreaded = 1;
			break;
		case 'p':
			cfg.python_procs = parse_count("--python-procs",
			    optarg, 0, STRESS_MAX_PROCS);
			break;
		case 'b':
			cfg.broker_procs = parse_count("--broker-procs",
			    optarg, 0, STRESS_MAX_PROCS);
			break;
		case 'a':
			cfg.auto_procs = parse_count("--auto-procs", optarg,
			    0, STRESS_MAX_PROCS);
			break;
		case 'j':
			cfg.python_iters = parse_count("--python-iters",
			    optarg, 1, STRESS_MAX_ITERS);
			break;
		case 'T':
			cfg.timeout = parse_count("--timeout", optarg, 1,
			    STRESS_MAX_TIMEOUT);
			break;
		case 'r':
			cfg.readers = parse_count("--readers", optarg, 0,
			    STRESS_MAX_PROCS);
			break;
		case 's':
			cfg.sets = 1;
			break;
		case 'K':
			cfg.kept_readers = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "\n");
			usage(stderr);
			exit(2);
		}
	}
	if (optind == argc)
		usage_error("DIR is missing");
	if (optind != argc - 1)
		usage_error("one DIR only, not '%s' too", argv[optind + 1]);
	cfg.dir = argv[optind];

	one_owner = unthreaded;
	if (cfg.threads == -1)
		cfg.threads = one_owner ? 1 : 4;
	else if (cfg.threads > 1 && one_owner)
		usage_error("--threads %ld: with --unthreaded all threads of a "
		    "process are one owner, so each process runs one thread",
		    cfg.threads);
	if (cfg.broker_procs > cfg.procs)
		usage_error("--broker-procs %ld: more than the %ld processes",
		    cfg.broker_procs, cfg.procs);
	if (cfg.auto_procs >= 0 && cfg.broker_procs < 0)
		cfg.broker_procs = 0;
	if (cfg.auto_procs > cfg.procs - cfg.broker_procs)
		usage_error("--auto-procs %ld: with --broker-procs %ld, more "
		    "than the %ld processes", cfg.auto_procs, cfg.broker_procs,
		    cfg.procs);
	if (cfg.python_procs > 0 && cfg.python_class == NULL)
		usage_error("--python-procs is not for %s: Python's lockfile "
		    "keeps that lock private to one process", cfg.method_name);
	cfg.flags = cfg.method | (unthreaded ? LB_UNTHREADED : 0);
	if ((cfg.python = getenv("PYTHON3")) == NULL || *cfg.python == '\0')
		cfg.python = "/usr/bin/python3";

	if (stat(cfg.dir, &st) == -1)
		usage_error("%s: %s", cfg.dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		usage_error("%s is not a directory", cfg.dir);
	dir_path(cfg.lock_path, "counter");
	dir_path(cfg.lock2_path, "counter2");
	dir_path(cfg.inside2, "inside2");
	dir_path(cfg.inside, "inside");
	dir_path(cfg.count, "count");
	dir_path(cfg.count_tmp, "count.tmp");
}

/* Seconds on the monotonic clock. */
static double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads the number in DIR/count into *value: 0, or -1 with a message on
 * stderr. */
static int
count_read(long *value)
{
	char    buf[64], *end;
	ssize_t n;
	int     fd, r = -1;

	if ((fd = open(cfg.count, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "stress: cannot open %s: %s\n", cfg.count,
		    strerror(errno));
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n == -1) {
		fprintf(stderr, "stress: cannot read %s: %s\n", cfg.count,
		    strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	errno = 0;
	*value = strtol(buf, &end, 10);
	if (n == 0 || errno != 0 || *value < 0 ||
	    (*end != '\0' && strcmp(end, "\n") != 0)) {
		fprintf(stderr, "stress: %s does not hold a count: '%s'\n",
		    cfg.count, buf);
		goto out;
	}
	r = 0;
out:
	if (fd != -1)
		close(fd);
	return r;
}

/* Replaces DIR/count with value (DIR/count.tmp renamed over it): 0, or -1
 * with a message on stderr. */
static int
count_write(long value)
{
	char buf[64];
	int  fd = -1, len, r = -1;

	len = snprintf(buf, sizeof(buf), "%ld\n", value);
	fd = open(cfg.count_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd == -1 || write(fd, buf, (size_t)len) != len) {
		fprintf(stderr, "stress: cannot write %s: %s\n", cfg.count_tmp,
		    strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		fprintf(stderr, "stress: cannot write %s: %s\n", cfg.count_tmp,
		    strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(cfg.count_tmp, cfg.count) == -1) {
		fprintf(stderr, "stress: cannot rename %s to %s: %s\n",
		    cfg.count_tmp, cfg.count, strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (fd != -1)
		close(fd);
	return r;
}

/* Reports, on stderr, what worker who met, with the seconds since the
 * run started. */
static void __attribute__((format(printf, 2, 3)))
report(const char *who, const char *fmt, ...)
{
	char    msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s at %.3f s: %s\n", who, now_mono() - run_start,
	    msg);
}

/* Raises the tally's longest acquire to seconds, if longer. */
static void
note_wait(double seconds)
{
	unsigned long ns = (unsigned long)(seconds * 1e9), seen;

	seen = __atomic_load_n(&tally->longest_ns, __ATOMIC_RELAXED);
	while (ns > seen && !__atomic_compare_exchange_n(&tally->longest_ns,
	    &seen, ns, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* A writer, inside, checks that no reader is: 0, or -1 (an overlap
 * counted and reported). */
static int
readers_inside(const char *who)
{
	unsigned long n;

	if ((n = __atomic_load_n(&tally->readers_in, __ATOMIC_SEQ_CST)) == 0)
		return 0;
	report(who, "overlap: %lu readers inside beside a writer", n);
	__atomic_add_fetch(&tally->overlaps, 1, __ATOMIC_SEQ_CST);
	return -1;
}

/* A reader, inside, checks that no writer is (DIR/inside absent): 0, or
 * -1 (an overlap counted and reported, or a failure). */
static int
writer_inside(const char *who)
{
	if (access(cfg.inside, F_OK) == 0) {
		report(who, "overlap: %s exists beside a reader", cfg.inside);
		__atomic_add_fetch(&tally->overlaps, 1, __ATOMIC_SEQ_CST);
		return -1;
	}
	if (errno == ENOENT)
		return 0;
	report(who, "cannot look at %s: %s", cfg.inside, strerror(errno));
	__atomic_add_fetch(&tally->failures, 1, __ATOMIC_SEQ_CST);
	return -1;
}

/* Makes the mark at path (O_EXCL): 1; 0 when it was there (an overlap,
 * counted and reported); -1 on another failure (counted, reported). */
static int
mark(const char *who, const char *path)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644)) != -1) {
		close(fd);
		return 1;
	}
	if (errno == EEXIST) {
		report(who, "overlap: %s exists after acquire", path);
		__atomic_add_fetch(&tally->overlaps, 1, __ATOMIC_SEQ_CST);
		return 0;
	}
	report(who, "cannot create %s: %s", path, strerror(errno));
	__atomic_add_fetch(&tally->failures, 1, __ATOMIC_SEQ_CST);
	return -1;
}

/* Removes the mark at path: 0, or -1 when it was gone (an overlap) or
 * could not be removed (counted, reported). */
static int
unmark(const char *who, const char *path)
{
	if (unlink(path) == 0)
		return 0;
	report(who, "%s %s: %s", errno == ENOENT ? "overlap: another removed" :
	    "cannot remove", path, strerror(errno));
	__atomic_add_fetch(errno == ENOENT ? &tally->overlaps :
	    &tally->failures, 1, __ATOMIC_SEQ_CST);
	return -1;
}

/*
 * One critical section, entered with the lock held: marks DIR/inside
 * (and DIR/inside2 with --sets), bumps the count, removes the marks.  Adds to the tally what it saw;
 * returns 0 when all was well, else -1.
 */
static int
critical_section(const char *who)
{
	long value;
	int  mine, mine2 = 0, r = 0;

	if ((mine = mark(who, cfg.inside)) != 1)
		r = -1;
	if (cfg.sets && (mine2 = mark(who, cfg.inside2)) != 1)
		r = -1;
	if (mine == 1 && readers_inside(who) != 0)
		r = -1;
	if (count_read(&value) == 0 && count_write(value + 1) == 0)
		__atomic_add_fetch(&tally->done, 1, __ATOMIC_SEQ_CST);
	else {
		__atomic_add_fetch(&tally->failures, 1, __ATOMIC_SEQ_CST);
		r = -1;
	}
	if (mine == 1 && readers_inside(who) != 0)
		r = -1;
	if (mine2 == 1 && unmark(who, cfg.inside2) != 0)
		r = -1;
	if (mine == 1 && unmark(who, cfg.inside) != 0)
		r = -1;
	return r;
}

/* Whether any worker has failed, so that the others stop early. */
static int
run_failed(void)
{
	return __atomic_load_n(&tally->overlaps, __ATOMIC_SEQ_CST) != 0 ||
	    __atomic_load_n(&tally->failures, __ATOMIC_SEQ_CST) != 0;
}

/* A C worker thread: its own handle, cfg.iters critical sections.  Returns
 * NULL when all went well, else (void *)1. */
static void *
thread_main(void *arg)
{
	lb_lock *lock, *lock2 = NULL, *set[2];
	char     who[96];
	double   asked;
	size_t   failed = 0;
	long     i;
	int      r, bad = 0;

	(void)arg;
	snprintf(who, sizeof(who), "stress: pid %ld tid %ld (%s)",
	    (long)getpid(), (long)gettid(), transport_name);
	if ((lock = lb_lock_new(cfg.lock_path, cfg.flags)) == NULL ||
	    (cfg.sets && (lock2 = lb_lock_new(cfg.lock2_path,
	    cfg.flags)) == NULL)) {
		report(who, "lb_lock_new %s: %s", lock == NULL ?
		    cfg.lock_path : cfg.lock2_path, strerror(errno));
		__atomic_add_fetch(&tally->failures, 1, __ATOMIC_SEQ_CST);
		lb_lock_free(lock);
		return (void *)1;
	}
	for (i = 0; i < cfg.iters && !run_failed(); i++) {
		asked = now_mono();
		if (lock2 != NULL) {    /* named in either order by turns */
			set[i % 2] = lock;
			set[1 - i % 2] = lock2;
			r = lb_acquire_all(set, 2, LB_FOREVER, &failed);
		} else
			r = lb_acquire(lock, LB_FOREVER);
		note_wait(now_mono() - asked);
		if (r != 0) {
			report(who, "%s (round %ld): %s: %s", lock2 != NULL ?
			    "lb_acquire_all" : "lb_acquire", i + 1,
			    lb_error_name(r), lb_lock_error(lock2 != NULL ?
			    set[failed < 2 ? failed : 0] : lock));
			__atomic_add_fetch(&tally->failures, 1,
			    __ATOMIC_SEQ_CST);
			bad = 1;
			break;
		}
		if (critical_section(who) != 0)
			bad = 1;
		if ((r = lb_release(lock)) != 0 ||
		    (lock2 != NULL && (r = lb_release(lock2)) != 0)) {
			report(who, "lb_release (round %ld): %s: %s", i + 1,
			    lb_error_name(r), lb_lock_error(lock));
			__atomic_add_fetch(&tally->failures, 1,
			    __ATOMIC_SEQ_CST);
			bad = 1;
			break;
		}
	}
	lb_lock_free(lock);
	lb_lock_free(lock2);
	return bad ? (void *)1 : NULL;
}

/* A reader thread: its own handle through the broker, cfg.iters shared
 * holds, each counted in and checked from both ends.  Returns NULL when
 * all went well, else (void *)1. */
static void *
reader_main(void *arg)
{
	struct timespec pause = { 0, 100000 }, retry = { 0, 10000000 };
	lb_lock        *lock;
	char            who[96];
	double          asked;
	long            i, tries;
	int             r, bad = 0;

	(void)arg;
	snprintf(who, sizeof(who), "stress: pid %ld tid %ld (reader)",
	    (long)getpid(), (long)gettid());
	if ((lock = lb_lock_new(cfg.lock_path, cfg.method | LB_BROKER)) ==
	    NULL) {
		report(who, "lb_lock_new %s: %s", cfg.lock_path,
		    strerror(errno));
		__atomic_add_fetch(&tally->failures, 1, __ATOMIC_SEQ_CST);
		return (void *)1;
	}
	for (i = 0; i < cfg.iters && !run_failed(); i++) {
		asked = now_mono();
		r = cfg.kept_readers ? lb_acquire_shared_for(lock, getpid(),
		    LB_FOREVER, NULL) : lb_acquire_shared(lock, LB_FOREVER);
		/* A kept hold's call dials a connection of its own: a daemon
		 * killed as it dials (no daemon answers: LB_EFAILED) is
		 * tried again, as a script would, within the run's time. */
		while (cfg.kept_readers && r == LB_EFAILED && !run_failed() &&
		    now_mono() - run_start < (double)cfg.timeout) {
			nanosleep(&retry, NULL);
			r = lb_acquire_shared_for(lock, getpid(), LB_FOREVER,
			    NULL);
		}
		note_wait(now_mono() - asked);
		if (r != 0) {
			report(who, "lb_acquire_shared (round %ld): %s: %s",
			    i + 1, lb_error_name(r), lb_lock_error(lock));
			__atomic_add_fetch(&tally->failures, 1,
			    __ATOMIC_SEQ_CST);
			bad = 1;
			break;
		}
		__atomic_add_fetch(&tally->readers_in, 1, __ATOMIC_SEQ_CST);
		if (writer_inside(who) != 0)
			bad = 1;
		nanosleep(&pause, NULL);
		if (writer_inside(who) != 0)
			bad = 1;
		__atomic_sub_fetch(&tally->readers_in, 1, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&tally->reads, 1, __ATOMIC_SEQ_CST);
		/* The artefact's reader, other readers riding on it, cannot
		 * let go while the daemon is away (LB_EUNLOCK, the lock still
		 * its own: liblockbroker(3)): it tries again, as told. */
		tries = 0;
		while ((r = cfg.kept_readers ? lb_release_for(lock, getpid(),
		    NULL) : lb_release(lock)) == LB_EUNLOCK && !run_failed() &&
		    now_mono() - run_start < (double)cfg.timeout) {
			tries++;
			nanosleep(&retry, NULL);
		}
		/* A kept hold's RELEASE done before the daemon was killed,
		 * its answer lost (LB_EUNLOCK), finds it gone the next time:
		 * released. */
		if (cfg.kept_readers && tries > 0 && (r == LB_ENOTLOCKED ||
		    r == LB_ENOTMINE))
			r = 0;
		if (r != 0) {
			report(who, "lb_release (round %ld): %s: %s", i + 1,
			    lb_error_name(r), lb_lock_error(lock));
			__atomic_add_fetch(&tally->failures, 1,
			    __ATOMIC_SEQ_CST);
			bad = 1;
			break;
		}
	}
	lb_lock_free(lock);
	return bad ? (void *)1 : NULL;
}

/* A C worker process: cfg.threads threads.  Never returns; exits 0 when
 * every thread went well, else 1. */
static void __attribute__((noreturn))
process_main(void *(*run)(void *))
{
	pthread_t tids[STRESS_MAX_THREADS];
	void     *res;
	long      k, started;
	int       bad = 0, e;

	for (started = 0; started < cfg.threads; started++)
		if ((e = pthread_create(&tids[started], NULL, run, NULL)) !=
		    0) {
			fprintf(stderr, "stress: pid %ld: pthread_create: %s\n",
			    (long)getpid(), strerror(e));
			__atomic_add_fetch(&tally->failures, 1,
			    __ATOMIC_SEQ_CST);
			bad = 1;
			break;
		}
	for (k = 0; k < started; k++)
		if (pthread_join(tids[k], &res) != 0 || res != NULL)
			bad = 1;
	fflush(stderr);
	_exit(bad);
}

/* Forks one worker into *w: a C process, or (ready_fd >= 0) the Python
 * lockfile loop, which reports on ready_fd.  The child dies with the
 * parent.  0, or -1 with a message. */
static int
worker_start(struct worker *w, int ready_fd)
{
	static long c_started;  /* C workers so far: the first K use the
	                           broker (--broker-procs) */
	char  iters[32], fd[32];
	pid_t parent = getpid();
	long  autos = cfg.auto_procs > 0 ? cfg.auto_procs : 0;
	int   python = ready_fd >= 0;
	long  index = python ? -1 : c_started++;
	pid_t pid;

	w->python = python;
	w->reaped = 0;
	fflush(NULL);
	if ((pid = fork()) == -1) {
		fprintf(stderr, "stress: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		w->pid = pid;
		return 0;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);       /* the parent is gone already */
	if (!python && index >= cfg.procs) {
		transport_name = "reader";
		if (cfg.kept_readers) {         /* one owner: the process */
			transport_name = "kept reader";
			fflush(stderr);
			_exit(reader_main(NULL) != NULL);
		}
		process_main(reader_main);
	}
	if (!python) {
		if (cfg.broker_procs < 0)
			;       /* the default transport, as the environment says */
		else if (index < cfg.broker_procs) {
			cfg.flags |= LB_BROKER;
			transport_name = "broker";
		} else if (index < cfg.broker_procs + autos) {
			setenv("LOCKBROKER_TRANSPORT", "auto", 1);
			transport_name = "auto";
		} else {
			cfg.flags |= LB_LOCAL;
			transport_name = "local";
		}
		process_main(thread_main);
	}
	snprintf(iters, sizeof(iters), "%ld", cfg.python_iters);
	snprintf(fd, sizeof(fd), "%d", ready_fd);
	if (fcntl(ready_fd, F_SETFD, 0) == -1)
		fprintf(stderr, "stress: fcntl: %s\n", strerror(errno));
	else
		execl(cfg.python, cfg.python, "-c", python_worker,
		    cfg.python_class, cfg.dir, iters, fd,
		    (char *)NULL);
	fprintf(stderr, "stress: cannot run %s: %s\n", cfg.python,
	    strerror(errno));
	fflush(stderr);
	_exit(127);
}

/*
 * Starts the Python workers into w and waits until each has reported
 * ready (or cfg.timeout seconds from start have passed).  Sets *n to the
 * number started.  0, or -1 with a message.
 */
static int
python_start(struct worker *w, int *n, double start)
{
	struct pollfd pfd;
	char          buf[64];
	ssize_t       got;
	long          ready = 0;
	int           fds[2] = { -1, -1 }, r = -1, left;

	*n = 0;
	if (cfg.python_procs == 0)
		return 0;
	if (pipe2(fds, O_CLOEXEC) == -1) {
		fprintf(stderr, "stress: pipe: %s\n", strerror(errno));
		goto out;
	}
	for (; *n < cfg.python_procs; (*n)++)
		if (worker_start(&w[*n], fds[1]) != 0)
			goto out;
	close(fds[1]);
	fds[1] = -1;
	while (ready < cfg.python_procs) {
		left = (int)((start + (double)cfg.timeout - now_mono()) * 1000);
		pfd.fd = fds[0];
		pfd.events = POLLIN;
		if (left <= 0 || poll(&pfd, 1, left) == 0) {
			fprintf(stderr, "stress: %ld of %ld python workers "
			    "ready after %ld s\n", ready, cfg.python_procs,
			    cfg.timeout);
			goto out;
		}
		if ((got = read(fds[0], buf, sizeof(buf))) == -1 &&
		    (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0) {
			fprintf(stderr, "stress: a python worker ended before "
			    "it was ready\n");
			goto out;
		}
		ready += got;
	}
	r = 0;
out:
	if (fds[0] != -1)
		close(fds[0]);
	if (fds[1] != -1)
		close(fds[1]);
	return r;
}

/* Sleeps for STRESS_POLL_NS. */
static void
poll_pause(void)
{
	struct timespec ts = { 0, STRESS_POLL_NS };

	nanosleep(&ts, NULL);
}

/*
 * Waits for the n workers, polling so that it can give up: STRESS_GRACE
 * seconds after the first failure, or cfg.timeout seconds after start,
 * it kills those still running.  Returns the number of workers that did
 * not exit 0 (killed ones included); sets *hung when it had to kill.
 */
static int
workers_wait(struct worker *w, int n, double start, int *hung)
{
	double deadline = start + (double)cfg.timeout;
	pid_t  pid;
	int    alive = n, bad = 0, status, k;

	*hung = 0;
	while (alive > 0) {
		pid = waitpid(-1, &status, *hung ? 0 : WNOHANG);
		if (pid > 0) {
			for (k = 0; k < n; k++) {
				if (w[k].pid != pid || w[k].reaped)
					continue;
				w[k].reaped = 1;
				w[k].status = status;
				alive--;
				if (!WIFEXITED(status) ||
				    WEXITSTATUS(status) != 0) {
					bad++;
					fprintf(stderr, "stress: %s worker %ld "
					    "%s %d\n", w[k].python ? "python" :
					    "C", (long)pid, WIFEXITED(status) ?
					    "exited" : "killed by signal",
					    WIFEXITED(status) ?
					    WEXITSTATUS(status) :
					    WTERMSIG(status));
				}
			}
			continue;
		}
		if (pid == -1 && errno != EINTR) {
			fprintf(stderr, "stress: waitpid: %s\n",
			    strerror(errno));
			bad += alive;
			break;
		}
		if (run_failed() && deadline > now_mono() + STRESS_GRACE)
			deadline = now_mono() + STRESS_GRACE;
		if (!*hung && now_mono() > deadline) {
			fprintf(stderr, "stress: %d workers still running after "
			    "%.0f s: killing them\n", alive,
			    now_mono() - start);
			for (k = 0; k < n; k++)
				if (!w[k].reaped)
					kill(w[k].pid, SIGKILL);
			*hung = 1;
			continue;
		}
		poll_pause();
	}
	return bad;
}

/* Checks that the lock (and lock2, not NULL) and the marks are free
 * before (or after) a run:
 * 0, or -1 with a message naming when. */
static int
check_free(lb_lock *lock, lb_lock *lock2, const char *when)
{
	int r;

	if ((r = lb_is_locked(lock)) != 0) {
		fprintf(stderr, "stress: %s: %s %s\n", when, cfg.lock_path,
		    r == 1 ? "is locked" : lb_lock_error(lock));
		return -1;
	}
	if (lock2 != NULL && (r = lb_is_locked(lock2)) != 0) {
		fprintf(stderr, "stress: %s: %s %s\n", when, cfg.lock2_path,
		    r == 1 ? "is locked" : lb_lock_error(lock2));
		return -1;
	}
	if (access(cfg.inside, F_OK) == 0 || errno != ENOENT) {
		fprintf(stderr, "stress: %s: %s exists\n", when, cfg.inside);
		return -1;
	}
	if (access(cfg.inside2, F_OK) == 0 || errno != ENOENT) {
		fprintf(stderr, "stress: %s: %s exists\n", when, cfg.inside2);
		return -1;
	}
	if (access(cfg.count_tmp, F_OK) == 0 || errno != ENOENT) {
		fprintf(stderr, "stress: %s: %s exists\n", when, cfg.count_tmp);
		return -1;
	}
	return 0;
}

/* Sets up DIR, runs the workers, checks what they left: see the top. */
int
main(int argc, char **argv)
{
	struct worker *w = NULL;
	lb_lock       *lock = NULL, *lock2 = NULL;
	double         start, elapsed;
	char           transports[96];
	long           expected, total = -1, reader_threads;
	int            n = 0, k, bad = 0, hung = 0, r = 1;

	parse_args(argc, argv);
	reader_threads = cfg.kept_readers ? 1 : cfg.threads;
	expected = cfg.procs * cfg.threads * cfg.iters +
	    cfg.python_procs * cfg.python_iters;
	tally = mmap(NULL, sizeof(*tally), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tally == MAP_FAILED) {
		tally = NULL;
		fprintf(stderr, "stress: mmap: %s\n", strerror(errno));
		goto out;
	}
	if ((lock = lb_lock_new(cfg.lock_path, cfg.flags)) == NULL ||
	    (cfg.sets && (lock2 = lb_lock_new(cfg.lock2_path,
	    cfg.flags)) == NULL)) {
		fprintf(stderr, "stress: lb_lock_new %s: %s\n", lock == NULL ?
		    cfg.lock_path : cfg.lock2_path, strerror(errno));
		goto out;
	}
	if (check_free(lock, lock2, "before the run") != 0 ||
	    count_write(0) != 0)
		goto out;
	if ((w = calloc((size_t)(cfg.procs + cfg.readers +
	    cfg.python_procs), sizeof(*w))) == NULL) {
		fprintf(stderr, "stress: out of memory\n");
		goto out;
	}

	/* Python first, ready to compete before the C workers start. */
	start = run_start = now_mono();
	if (python_start(w, &n, start) != 0)
		__atomic_add_fetch(&tally->failures, 1, __ATOMIC_SEQ_CST);
	for (k = 0; k < cfg.procs + cfg.readers && !run_failed(); k++, n++)
		if (worker_start(&w[n], -1) != 0) {
			__atomic_add_fetch(&tally->failures, 1,
			    __ATOMIC_SEQ_CST);
			break;
		}
	bad = workers_wait(w, n, start, &hung);
	elapsed = now_mono() - start;

	if (count_read(&total) != 0)
		bad++;
	else if (total != expected && run_failed()) {
		fprintf(stderr, "stress: %s holds %ld, expected %ld (the "
		    "workers stopped at the first failure)\n", cfg.count, total,
		    expected);
		bad++;
	} else if (total != expected) {
		fprintf(stderr, "stress: %s holds %ld, expected %ld: %ld "
		    "increments lost (C threads made %lu)\n", cfg.count, total,
		    expected, expected - total, tally->done);
		bad++;
	}
	if (!hung && !cfg.shared && check_free(lock, lock2, "after the run") !=
	    0)
		bad++;
	if (bad == 0 && !run_failed())
		r = 0;
	transports[0] = '\0';
	if (cfg.broker_procs >= 0)
		snprintf(transports, sizeof(transports), "; %ld broker, %ld "
		    "auto, %ld local", cfg.broker_procs, cfg.auto_procs > 0 ?
		    cfg.auto_procs : 0, cfg.procs - cfg.broker_procs -
		    (cfg.auto_procs > 0 ? cfg.auto_procs : 0));
	if (r == 0 && cfg.readers > 0 &&
	    tally->reads != (unsigned long)(cfg.readers * reader_threads *
	    cfg.iters)) {
		fprintf(stderr, "stress: readers took %lu shared holds, "
		    "expected %ld\n", tally->reads, cfg.readers *
		    reader_threads * cfg.iters);
		r = 1;
	}
	printf("stress: method %s%s, holders %ld (%ld procs x %ld threads%s%s) "
	    "+ %ld python + %ld readers (%lu reads), total %ld of %ld, "
	    "overlaps %lu, errors %lu, "
	    "longest acquire %.2f s, elapsed %.2f s: %s\n", cfg.method_name,
	    cfg.sets ? ", sets of two" : "", cfg.procs * cfg.threads +
	    cfg.python_procs, cfg.procs, cfg.threads,
	    cfg.flags & LB_UNTHREADED ? ", unthreaded" : "", transports,
	    cfg.python_procs, cfg.readers * reader_threads, tally->reads, total,
	    expected, tally->overlaps,
	    tally->failures, (double)tally->longest_ns / 1e9, elapsed,
	    r == 0 ? "ok" : hung ? "FAILED (hung)" : "FAILED");
out:
	free(w);
	lb_lock_free(lock);
	lb_lock_free(lock2);
	if (tally != NULL)
		munmap(tally, sizeof(*tally));
	return r;
}
