/*
 * lbbench.c: the Linux benchmark program's entry point and its helpers.
 *
 *   lbbench STAGE [-d DIR] [-s SOCKET] [-r REPS] [-n SAMPLES] [-t SECONDS]
 *           [-c COUNT] [-a ARG]
 *
 * bench/run calls it once per stage, against a private daemon it started;
 * see bench.h for what a stage prints.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

struct stage {
	const char *name;
	int       (*run)(const struct bench_opts *);
	const char *what;
};

static const struct stage stages[] = {
	{ "sockrtt", stage_sockrtt, "Unix-socket round trip, two processes" },
	{ "flock", stage_flock, "flock(2) lock+unlock" },
	{ "flock-handoff", stage_flock_handoff, "flock(2) release to a "
	  "blocked waiter's return" },
	{ "wake-floor", stage_wake_floor, "flock(2) and a relay's handoff, "
	  "released at a random moment (the Python peers' game)" },
	{ "link-floor", stage_link_floor, "the link method's system calls, "
	  "in-process" },
	{ "cycle", stage_cycle, "liblockbroker acquire+release; -a "
	  "broker|local|nobody:METHOD" },
	{ "wire-cycle", stage_wire_cycle, "ACQUIRE+RELEASE on a bare "
	  "connection" },
	{ "broker-handoff", stage_broker_handoff, "handoff between two "
	  "clients through the broker" },
	{ "broker-handoff-random", stage_broker_handoff_random, "the same, "
	  "released at a random moment (the Python peers' game)" },
	{ "throughput", stage_throughput, "-c CLIENTS processes for -t "
	  "seconds; -a broker-distinct|broker-shared|flock-distinct|"
	  "flock-shared|reader-shared" },
	{ "held", stage_held, "latency while the broker holds -a "
	  "N,N,... locks; their holder disconnects" },
	{ "conns", stage_conns, "latency with -c connections open and "
	  "closed, then as many waiters on one lock" },
	{ "rw-fair", stage_rw_fair, "a writer's wait behind -c readers "
	  "(8) that keep one lock held shared" },
	{ "deadlock-cost", stage_deadlock_cost, "a queued wait's latency "
	  "beside and behind -c waits (10000)" },
	{ "set-fair", stage_set_fair, "a set's wait for two locks -c (4) "
	  "single clients each keep busy, as one set and lock by lock" },
	{ "syscalls", stage_syscalls, "system calls per request, the "
	  "daemon's and the client's; -a KIND,... (see syscalls.c)" },
	{ "daemon-pid", stage_daemon_pid, "prints the daemon's pid" },
};

/* rss_bytes: the resident set of process pid, from /proc/PID/status
 * (VmRSS), in bytes; dies when it cannot be read. */
long
rss_bytes(pid_t pid)
{
	char  file[64], line[256];
	FILE *f;
	long  kb = -1;

	snprintf(file, sizeof(file), "/proc/%ld/status", (long)pid);
	if ((f = fopen(file, "r")) == NULL)
		die("cannot read %s: %s", file, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	if (kb < 0)
		die("no VmRSS in %s", file);
	return kb * 1024;
}

/* raise_nofile: lets this process open at least want files (raising the
 * hard limit too, which root may); dies when it cannot. */
void
raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur >= (rlim_t)want)
		return;
	rl.rlim_cur = (rlim_t)want;
	if (rl.rlim_max < (rlim_t)want)
		rl.rlim_max = (rlim_t)want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("cannot raise RLIMIT_NOFILE to %ld: %s (run as root, or "
		    "raise the hard limit)", want, strerror(errno));
}

/* shared_map: size bytes of zeroed memory shared with children forked
 * later; never freed (the process is short-lived). */
void *
shared_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu bytes: %s", size, strerror(errno));
	return p;
}

/* wait_child: reaps pid; dies unless it exited 0. */
void
wait_child(pid_t pid, const char *what)
{
	int status;

	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			die("waitpid %s: %s", what, strerror(errno));
	if (WIFSIGNALED(status))
		die("%s (pid %ld) killed by signal %d", what, (long)pid,
		    WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		die("%s (pid %ld) failed", what, (long)pid);
}

/* path_join: out = dir/printf(fmt, ...); dies when it does not fit. */
void
path_join(char *out, size_t size, const char *dir, const char *fmt, ...)
{
	va_list ap;
	int     n, m;

	n = snprintf(out, size, "%s/", dir);
	if (n < 0 || (size_t)n >= size)
		die("path too long: %s", dir);
	va_start(ap, fmt);
	m = vsnprintf(out + n, size - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m >= size - (size_t)n)
		die("path too long under %s", dir);
}

/* make_dir: mkdir unless it exists; dies on another error. */
void
make_dir(const char *dir)
{
	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		die("mkdir %s: %s", dir, strerror(errno));
}

/* The stage that prints the daemon's pid (from HELLO), so that bench/run
 * can tell whose memory to read. */
int
stage_daemon_pid(const struct bench_opts *o)
{
	struct wire w;

	if (wire_open(&w, o->socket, 1) != 0)
		die("no daemon answers on %s", o->socket);
	printf("%ld\n", w.daemon_pid);
	wire_close(&w);
	return 0;
}

/* Prints the usage and the stages to f. */
static void
usage(FILE *f)
{
	size_t i;

	fputs("usage: lbbench STAGE [-d DIR] [-s SOCKET] [-r REPS] "
	    "[-n SAMPLES] [-t SECONDS]\n               [-c COUNT] [-a ARG]\n"
	    "stages:\n", f);
	for (i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
		fprintf(f, "  %-15s %s\n", stages[i].name, stages[i].what);
}

int
main(int argc, char **argv)
{
	struct bench_opts o = { NULL, NULL, 5, 2000, 2.0, 0, NULL, 0 };
	const struct stage *st = NULL;
	size_t i;
	int    ch;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 64 : 0;
	}
	for (i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
		if (strcmp(argv[1], stages[i].name) == 0)
			st = &stages[i];
	if (st == NULL) {
		fprintf(stderr, "lbbench: no stage %s\n", argv[1]);
		usage(stderr);
		return 64;
	}
	optind = 2;
	while ((ch = getopt(argc, argv, "d:s:r:n:t:c:a:")) != -1)
		switch (ch) {
		case 'd':
			o.dir = optarg;
			break;
		case 's':
			o.socket = optarg;
			break;
		case 'r':
			o.reps = atoi(optarg);
			break;
		case 'n':
			o.samples = atoi(optarg);
			break;
		case 't':
			o.seconds = atof(optarg);
			break;
		case 'c':
			o.count = atol(optarg);
			break;
		case 'a':
			o.arg = optarg;
			break;
		default:
			usage(stderr);
			return 64;
		}
	/* The library finds the daemon through the environment. */
	if (o.socket == NULL)
		o.socket = getenv("LOCKBROKER_SOCKET");
	else if (setenv("LOCKBROKER_SOCKET", o.socket, 1) == -1)
		die("setenv: %s", strerror(errno));
	if (o.dir == NULL || o.socket == NULL || o.reps < 1 ||
	    o.samples < 1 || !(o.seconds > 0))
		die("%s: give -d DIR and -s SOCKET (or LOCKBROKER_SOCKET); "
		    "-r, -n and -t must be positive", st->name);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return st->run(&o);
}
