/*
 * lbbench_win.c: the benchmark program for Windows, run under wine by
 * bench/win-run from a Windows build directory.  In one run it starts
 * lockbrokerd.exe on a private pipe with a state of its own, and a
 * process that echoes on a plain named pipe, then measures in rounds
 * (each round measures everything once, so that the machine's drift
 * touches all alike):
 *
 *   floor.pipe_rtt         a plain Win32 named-pipe round trip
 *                          (pipefloor_win32.c), of a message as long as
 *                          the library's ACQUIRE line for the cycle's lock
 *   broker.ping            PING on a bare connection (wire.c): the
 *                          daemon's round trip for a request that does no
 *                          lock work
 *   broker.cycle.METHOD    lb_acquire+lb_release through the daemon
 *                          (LB_BROKER), METHOD link and mkdir (the mkdir
 *                          method, ten times slower, a tenth of the
 *                          samples, at least 5)
 *   local.cycle.METHOD     the same in-process (LB_LOCAL)
 *   broker.handoff.METHOD  from the holder's lb_release to the return of
 *                          lb_acquire in another process that waited for
 *                          the lock (handoff.c)
 *
 *   lbbench-win -d DIR -e DAEMON [-r ROUNDS] [-n SAMPLES] [-w WARMUP]
 *               [-k HANDOFFS]
 *
 *   -d DIR       a directory of the run's own: its locks/ and daemon/
 *                (state and log) are made in it, and left there
 *   -e DAEMON    lockbrokerd.exe
 *   -r ROUNDS    rounds (default 5)
 *   -n SAMPLES   samples of each latency a round (default 1000)
 *   -w WARMUP    calls before each series of samples, not timed
 *                (default 100; the mkdir method's a tenth)
 *   -k HANDOFFS  handoffs of each method a round (default 200; the
 *                first 10 of each game not timed)
 *
 * It prints bench.h's lines (R, M) on standard output, progress on
 * standard error; bench/win-run makes them ratios to floor.pipe_rtt.
 * Exits 1 when something cannot be measured (the daemon's log then
 * tells why), never because a figure is poor.  The daemon is ended at
 * the end (TerminateProcess: it has no stop request on Windows), and
 * every process of the run with this one should it end first.
 */
#include <windows.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_win32.h"
#include "protocol.h"

/* The methods measured, each with the share of the samples it takes
 * (1/slow). */
static const struct {
	const char *name;
	int         slow;
} methods[] = { { "link", 1 }, { "mkdir", 10 } };
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* What the run works with. */
struct run {
	char        dir[MAX_PATH];       /* -d, absolute, with '/' */
	const char *daemon_exe;          /* -e */
	int         rounds, samples, warmup, handoffs;
	char        pipe[128];           /* the daemon's */
	char        log[MAX_PATH + 32];  /* its standard error */
	HANDLE      daemon;
};

/* out = r->dir/name; dies when it does not fit. */
static void
run_path(const struct run *r, char *out, size_t size, const char *name)
{
	if ((size_t)snprintf(out, size, "%s/%s", r->dir, name) >= size)
		die("path too long: %s/%s", r->dir, name);
}

/* Makes directory path unless it exists; dies on another error. */
static void
run_mkdir(const char *path)
{
	if (!CreateDirectoryA(path, NULL) &&
	    GetLastError() != ERROR_ALREADY_EXISTS)
		die("cannot make %s: error %lu", path,
		    (unsigned long)GetLastError());
}

/* Starts the daemon on a pipe of its own with its state in DIR/daemon,
 * its output into DIR/daemon/log, and points the library at it
 * (LOCKBROKER_SOCKET, which the run's other processes inherit); returns
 * once the pipe takes a connection.  Dies when the daemon ends first or
 * does not answer within a minute. */
static void
daemon_start(struct run *r)
{
	SECURITY_ATTRIBUTES sa = { sizeof(sa), NULL, FALSE };
	char                d[MAX_PATH + 16], line[3 * MAX_PATH];
	HANDLE              log;
	uint64_t            until = now_ns() + 60000000000ull;

	run_path(r, d, sizeof(d), "daemon");
	run_mkdir(d);
	snprintf(r->log, sizeof(r->log), "%s/log", d);
	snprintf(r->pipe, sizeof(r->pipe), "\\\\.\\pipe\\lbbench-%lu",
	    (unsigned long)GetCurrentProcessId());
	log = CreateFileA(r->log, FILE_APPEND_DATA, FILE_SHARE_READ |
	    FILE_SHARE_WRITE | FILE_SHARE_DELETE, &sa, OPEN_ALWAYS,
	    FILE_ATTRIBUTE_NORMAL, NULL);
	if (log == INVALID_HANDLE_VALUE)
		die("cannot open %s: error %lu", r->log,
		    (unsigned long)GetLastError());
	if ((size_t)snprintf(line, sizeof(line), "\"%s\" --socket %s "
	    "--state \"%s/state.sqlite\"", r->daemon_exe, r->pipe, d) >=
	    sizeof(line))
		die("daemon's command line too long");
	r->daemon = proc_start(line, log);
	CloseHandle(log);
	while (!WaitNamedPipeA(r->pipe, 100)) {
		if (WaitForSingleObject(r->daemon, 0) != WAIT_TIMEOUT)
			die("lockbrokerd ended before it listened on %s (see "
			    "%s)", r->pipe, r->log);
		if (now_ns() > until)
			die("lockbrokerd does not answer on %s (see %s)",
			    r->pipe, r->log);
		Sleep(20);
	}
	if (_putenv_s("LOCKBROKER_SOCKET", r->pipe) != 0)
		die("cannot set LOCKBROKER_SOCKET");
	printf("M win.daemon=%s on %s\n", r->daemon_exe, r->pipe);
}

/* Ends the daemon; dies when it had ended during the run. */
static void
daemon_end(struct run *r)
{
	if (WaitForSingleObject(r->daemon, 0) != WAIT_TIMEOUT)
		die("lockbrokerd ended during the run (see %s)", r->log);
	TerminateProcess(r->daemon, 0);
	WaitForSingleObject(r->daemon, INFINITE);
	CloseHandle(r->daemon);
}

/* The bytes of the library's ACQUIRE line for the lock on path (method
 * link, a timeout of 10 s, an id of 4 digits): the floor's message. */
static size_t
acquire_line_size(const char *path)
{
	struct lbp_out o;

	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, 1000);
	lbp_add_str(&o, "path", path);
	lbp_add_str(&o, "method", "link");
	lbp_add_double(&o, "timeout", 10);
	if (lbp_end(&o) != 0)
		die("no ACQUIRE line for %s", path);
	return o.len;
}

/* Measures everything once a round (see the top of this file). */
static void
measure(const struct run *r)
{
	struct pipefloor  floor;
	struct bench_opts ho;
	struct wire       w;
	lb_lock          *broker[NMETHODS], *local[NMETHODS];
	char              locks[MAX_PATH + 16], path[MAX_PATH + 64];
	char              metric[64];
	size_t            m;
	unsigned          flag;
	int               k, n;

	run_path(r, locks, sizeof(locks), "locks");
	run_mkdir(locks);
	for (m = 0; m < NMETHODS; m++) {
		flag = method_flag(methods[m].name);
		snprintf(path, sizeof(path), "%s/cycle-broker-%s", locks,
		    methods[m].name);
		broker[m] = lock_new(path, LB_BROKER | flag);
		snprintf(path, sizeof(path), "%s/cycle-local-%s", locks,
		    methods[m].name);
		local[m] = lock_new(path, LB_LOCAL | flag);
	}
	pipefloor_open(&floor, acquire_line_size(lb_lock_path(broker[0])));
	printf("M win.floor_bytes=%zu\n", floor.size);
	if (wire_open(&w, r->pipe, 1) != 0)
		die("cannot open %s: %s", r->pipe, strerror(errno));
	memset(&ho, 0, sizeof(ho));
	ho.socket = r->pipe;
	ho.reps = 1;
	ho.samples = r->handoffs;
	for (k = 0; k < r->rounds; k++) {
		progress("round %d of %d", k + 1, r->rounds);
		pipefloor_series(&floor, 0, r->samples, r->warmup);
		wire_ping_series(&w, 0, r->samples, r->warmup);
		for (m = 0; m < NMETHODS; m++) {
			n = r->samples / methods[m].slow;
			snprintf(metric, sizeof(metric), "broker.cycle.%s",
			    methods[m].name);
			cycle_series(metric, broker[m], 0, n < 5 ? 5 : n,
			    r->warmup / methods[m].slow);
			snprintf(metric, sizeof(metric), "local.cycle.%s",
			    methods[m].name);
			cycle_series(metric, local[m], 0, n < 5 ? 5 : n,
			    r->warmup / methods[m].slow);
		}
		for (m = 0; m < NMETHODS; m++) {
			snprintf(metric, sizeof(metric), "broker.handoff.%s",
			    methods[m].name);
			snprintf(path, sizeof(path), "%s/handoff-%s", locks,
			    methods[m].name);
			ho.arg = methods[m].name;
			handoff_run(metric, &lb_handoff_ops, path, &ho);
		}
	}
	wire_close(&w);
	pipefloor_close(&floor);
	for (m = 0; m < NMETHODS; m++) {
		lb_lock_free(broker[m]);
		lb_lock_free(local[m]);
	}
}

/* Prints the usage to f. */
static void
usage(FILE *f)
{
	fputs("usage: lbbench-win -d DIR -e DAEMON [-r ROUNDS] [-n SAMPLES] "
	    "[-w WARMUP]\n                   [-k HANDOFFS]\n", f);
}

int
main(int argc, char **argv)
{
	struct run r;
	char      *c;
	int        ch;

	if (argc >= 2 && strcmp(argv[1], "--echo") == 0)
		return pipefloor_echo_main(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "--handoff-side") == 0)
		return handoff_side_main(argc, argv);
	memset(&r, 0, sizeof(r));
	r.rounds = 5;
	r.samples = 1000;
	r.warmup = 100;
	r.handoffs = 200;
	while ((ch = getopt(argc, argv, "d:e:r:n:w:k:h")) != -1)
		switch (ch) {
		case 'd':
			if (GetFullPathNameA(optarg, sizeof(r.dir), r.dir,
			    NULL) - 1 >= sizeof(r.dir) - 1)
				die("-d %s: not a usable directory", optarg);
			break;
		case 'e':
			r.daemon_exe = optarg;
			break;
		case 'r':
			r.rounds = atoi(optarg);
			break;
		case 'n':
			r.samples = atoi(optarg);
			break;
		case 'w':
			r.warmup = atoi(optarg);
			break;
		case 'k':
			r.handoffs = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	if (optind != argc || r.dir[0] == '\0' || r.daemon_exe == NULL ||
	    r.rounds < 1 || r.samples < 1 || r.warmup < 0 ||
	    r.handoffs < 1) {
		usage(stderr);
		return 64;
	}
	for (c = r.dir; *c != '\0'; c++)
		if (*c == '\\')
			*c = '/';
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("M win.sizes=%d rounds, %d samples (mkdir: a tenth), %d "
	    "handoffs, %d calls to warm up\n", r.rounds, r.samples,
	    r.handoffs, r.warmup);
	daemon_start(&r);
	measure(&r);
	daemon_end(&r);
	return 0;
}
