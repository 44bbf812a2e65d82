/*
 * locks.c: lockbroker itself: uncontended acquire+release through the
 * broker and in-process for each method, handoff between two clients,
 * throughput and fairness with many client processes.  Everything goes
 * through liblockbroker's public API, as an application would; the
 * wire-* stages do the same on a bare connection, to tell the library's
 * share from the daemon's.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/file.h>
#include <unistd.h>

#include "bench.h"
#include "lockbroker.h"

/*
 * stage_cycle: uncontended lb_acquire+lb_release, -a TRANSPORT:METHOD
 * (broker:link, local:mkdir, ...): metric TRANSPORT.cycle.METHOD.
 * TRANSPORT nobody: through the broker as uid 65534 (when run as root;
 * the directory must let that user in).
 */
int
stage_cycle(const struct bench_opts *o)
{
	char        path[4096], metric[64], transport[16];
	const char *colon;
	lb_lock    *l;
	unsigned    flags;
	int         rep;

	if (o->arg == NULL || (colon = strchr(o->arg, ':')) == NULL ||
	    colon - o->arg >= (long)sizeof(transport))
		die("cycle: give -a broker:METHOD or -a local:METHOD");
	snprintf(transport, sizeof(transport), "%.*s", (int)(colon - o->arg),
	    o->arg);
	if (strcmp(transport, "broker") == 0)
		flags = LB_BROKER;
	else if (strcmp(transport, "nobody") == 0) {
		/* Through the broker as another user than the daemon's: the
		 * daemon then acts with the client's credentials. */
		if (geteuid() != 0) {
			progress("not root: no run as another user");
			return 0;
		}
		if (setgroups(0, NULL) == -1 || setgid(65534) == -1 ||
		    setuid(65534) == -1)
			die("cannot become uid 65534: %s", strerror(errno));
		flags = LB_BROKER;
	}
	else if (strcmp(transport, "local") == 0)
		flags = LB_LOCAL;
	else
		die("cycle: no transport %s", transport);
	flags |= method_flag(colon + 1);
	snprintf(metric, sizeof(metric), "%s.cycle.%s", transport, colon + 1);
	path_join(path, sizeof(path), o->dir, "cycle-%s-%s", transport,
	    colon + 1);
	l = lock_new(path, flags);
	for (rep = 0; rep < o->reps; rep++)
		cycle_series(metric, l, rep, o->samples, 100);
	lb_lock_free(l);
	return 0;
}

/*
 * stage_wire_cycle: on a bare connection, PING (the daemon's cost of one
 * request: broker.ping) and ACQUIRE+RELEASE of an uncontended link lock
 * (broker.wire_cycle).
 */
int
stage_wire_cycle(const struct bench_opts *o)
{
	struct samples s;
	struct wire    w;
	char           path[4096], line[1024];
	uint64_t       t0;
	int            rep, i;

	path_join(path, sizeof(path), o->dir, "wire-cycle");
	if (wire_open(&w, o->socket, 1) != 0)
		die("cannot connect to %s: %s", o->socket, strerror(errno));
	for (rep = 0; rep < o->reps; rep++) {
		wire_ping_series(&w, rep, o->samples, 100);
		samples_init(&s, (size_t)o->samples);
		for (i = -100; i < o->samples; i++) {
			t0 = now_ns();
			if (wire_call(&w, "ACQUIRE", path, "timeout=0", line,
			    sizeof(line)) != 0 ||
			    wire_call(&w, "RELEASE", path, NULL, line,
			    sizeof(line)) != 0)
				die("ACQUIRE/RELEASE %s: %s", path, line);
			if (i >= 0)
				samples_add(&s, now_ns() - t0);
		}
		report_latency("broker.wire_cycle", rep, &s);
		samples_free(&s);
	}
	wire_close(&w);
	return 0;
}

/* A bare connection as a handoff_ops lock kind. */
struct wire_lock {
	struct wire w;
	char        path[4096];
};

/* Its own connection, with HELLO done. */
static void *
wire_lock_open(const char *path, const struct bench_opts *o)
{
	struct wire_lock *wl = malloc(sizeof(*wl));

	if (wl == NULL)
		die("out of memory");
	if (wire_open(&wl->w, o->socket, 1) != 0)
		die("cannot connect to %s: %s", o->socket, strerror(errno));
	snprintf(wl->path, sizeof(wl->path), "%s", path);
	return wl;
}

/* ACQUIRE without a timeout: the reply comes with the grant. */
static void
wire_lock_acquire(void *lock)
{
	struct wire_lock *wl = lock;
	char              line[1024];

	if (wire_call(&wl->w, "ACQUIRE", wl->path, "timeout=inf", line,
	    sizeof(line)) != 0)
		die("ACQUIRE %s: %s", wl->path, line);
}

/* RELEASE; must succeed. */
static void
wire_lock_release(void *lock)
{
	struct wire_lock *wl = lock;
	char              line[1024];

	if (wire_call(&wl->w, "RELEASE", wl->path, NULL, line,
	    sizeof(line)) != 0)
		die("RELEASE %s: %s", wl->path, line);
}

/* STATUS: the daemon counts a waiter. */
static int
wire_lock_queued(void *lock, pid_t waiter)
{
	struct wire_lock *wl = lock;
	char              line[1024];

	(void)waiter;
	if (wire_call(&wl->w, "STATUS", wl->path, NULL, line,
	    sizeof(line)) != 0)
		die("STATUS %s: %s", wl->path, line);
	return wire_field(line, "waiters") >= 1;
}

/* Closes the connection. */
static void
wire_lock_close(void *lock)
{
	wire_close(&((struct wire_lock *)lock)->w);
	free(lock);
}

static const struct handoff_ops wire_ops = {
	wire_lock_open, wire_lock_acquire, wire_lock_release,
	wire_lock_queued, wire_lock_close
};

/* stage_broker_handoff: handoff between two clients through the broker,
 * with the library (broker.handoff) and on bare connections
 * (broker.wire_handoff). */
int
stage_broker_handoff(const struct bench_opts *o)
{
	char path[4096];

	path_join(path, sizeof(path), o->dir, "handoff");
	handoff_run("broker.handoff", &lb_handoff_ops, path, o);
	path_join(path, sizeof(path), o->dir, "wire-handoff");
	handoff_run("broker.wire_handoff", &wire_ops, path, o);
	return 0;
}

/* stage_broker_handoff_random: the library's handoff through the broker
 * in the Python peers' game (bench/peers.py): the holder releases 150 ms
 * plus a random fraction of 100 ms after the waiter's word, not once the
 * broker counts the waiter (broker.handoff_random); and the same on bare
 * connections (broker.wire_handoff_random: no reader thread to wake). */
int
stage_broker_handoff_random(const struct bench_opts *o)
{
	struct bench_opts r = *o;
	char              path[4096];

	r.release_random = 1;
	path_join(path, sizeof(path), o->dir, "handoff-random");
	handoff_run("broker.handoff_random", &lb_handoff_ops, path, &r);
	path_join(path, sizeof(path), o->dir, "wire-handoff-random");
	handoff_run("broker.wire_handoff_random", &wire_ops, path, &r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Throughput and fairness.                                           */

#define MAX_CLIENTS 1024

struct tput_shared {
	volatile uint64_t end;          /* monotonic ns */
	uint64_t          count[MAX_CLIENTS];
};

/* One client of a throughput run: takes and gives back its lock (kind:
 * "broker", "reader": through the broker, shared, or "flock") until
 * sh->end, counting.  Starts when go reaches end of file, after it said
 * it is ready on ready. */
static void
tput_client(int i, const char *kind, const char *path, int ready, int go,
    struct tput_shared *sh)
{
	lb_lock *l = NULL;
	uint64_t n = 0;
	char     c = 'r';
	int      fd = -1, shared = 0, r;

	if (strcmp(kind, "flock") != 0) {
		l = lock_new(path, LB_BROKER);
		shared = strcmp(kind, "reader") == 0;
		must_acquire(l, LB_FOREVER);    /* connects */
		must_release(l);
	} else if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) ==
	    -1)
		die("open %s: %s", path, strerror(errno));
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 0)
		die("throughput: start signal lost");
	while (now_ns() < sh->end) {
		if (shared) {
			if ((r = lb_acquire_shared(l, LB_FOREVER)) != 0)
				die("lb_acquire_shared %s: %s: %s", path,
				    lb_error_name(r), lb_lock_error(l));
			must_release(l);
		} else if (l != NULL) {
			must_acquire(l, LB_FOREVER);
			must_release(l);
		} else if (flock(fd, LOCK_EX) == -1 ||
		    flock(fd, LOCK_UN) == -1)
			die("flock %s: %s", path, strerror(errno));
		n++;
	}
	sh->count[i] = n;
	lb_lock_free(l);
	if (fd != -1)
		close(fd);
	_exit(0);
}

/*
 * stage_throughput: -c CLIENTS processes take and release a lock for -t
 * seconds, -a KIND-distinct (each its own lock) or KIND-shared (one lock),
 * KIND broker, flock or reader (through the broker, each client taking
 * its lock shared: reader-shared is readers on one lock).  Prints
 * tput.KIND.MODE.CLIENTS (acquire+release per second, all clients
 * together) and, for two clients or more, the spread of acquisitions per
 * client: fair.KIND.MODE.CLIENTS.cv (standard deviation / mean) and
 * .minmax (fewest / most).
 */
int
stage_throughput(const struct bench_opts *o)
{
	struct tput_shared *sh = shared_map(sizeof(*sh));
	char                path[4096], metric[96], kind[16];
	const char         *mode, *dash;
	pid_t               pids[MAX_CLIENTS];
	double              sum, mean, var, lo, hi;
	int                 ready[2], go[2], rep, i, k = (int)o->count;
	char                c;

	if (k < 1 || k > MAX_CLIENTS)
		die("throughput: -c from 1 to %d", MAX_CLIENTS);
	if (o->arg == NULL || (dash = strchr(o->arg, '-')) == NULL ||
	    dash - o->arg >= (long)sizeof(kind))
		die("throughput: -a broker-distinct, broker-shared, "
		    "flock-distinct, flock-shared or reader-shared");
	snprintf(kind, sizeof(kind), "%.*s", (int)(dash - o->arg), o->arg);
	mode = dash + 1;
	if ((strcmp(kind, "broker") != 0 && strcmp(kind, "flock") != 0 &&
	    strcmp(kind, "reader") != 0) ||
	    (strcmp(mode, "distinct") != 0 && strcmp(mode, "shared") != 0))
		die("throughput: no such kind or mode: %s", o->arg);
	for (rep = 0; rep < o->reps; rep++) {
		if (pipe(ready) == -1 || pipe(go) == -1)
			die("pipe: %s", strerror(errno));
		sh->end = UINT64_MAX;
		for (i = 0; i < k; i++) {
			if (strcmp(mode, "shared") == 0)
				path_join(path, sizeof(path), o->dir,
				    "tput-%s-shared", kind);
			else
				path_join(path, sizeof(path), o->dir,
				    "tput-%s-%d", kind, i);
			if ((pids[i] = fork()) == -1)
				die("fork: %s", strerror(errno));
			if (pids[i] == 0) {
				close(ready[0]);
				close(go[1]);
				tput_client(i, kind, path, ready[1], go[0],
				    sh);
			}
		}
		close(ready[1]);
		close(go[0]);
		for (i = 0; i < k; i++)
			if (read(ready[0], &c, 1) != 1)
				die("throughput: a client failed to start");
		sh->end = now_ns() + (uint64_t)(o->seconds * 1e9);
		close(go[1]);
		for (i = 0; i < k; i++)
			wait_child(pids[i], "throughput client");
		close(ready[0]);
		sum = 0;
		lo = hi = (double)sh->count[0];
		for (i = 0; i < k; i++) {
			sum += (double)sh->count[i];
			lo = fmin(lo, (double)sh->count[i]);
			hi = fmax(hi, (double)sh->count[i]);
		}
		snprintf(metric, sizeof(metric), "tput.%s.%s.%d", kind, mode,
		    k);
		report_value(metric, rep, sum / o->seconds, "ops/s");
		if (k < 2)
			continue;
		mean = sum / k;
		var = 0;
		for (i = 0; i < k; i++)
			var += ((double)sh->count[i] - mean) *
			    ((double)sh->count[i] - mean);
		snprintf(metric, sizeof(metric), "fair.%s.%s.%d.cv", kind,
		    mode, k);
		report_value(metric, rep, mean > 0 ? sqrt(var / k) / mean : 0,
		    "ratio");
		snprintf(metric, sizeof(metric), "fair.%s.%s.%d.minmax", kind,
		    mode, k);
		report_value(metric, rep, hi > 0 ? lo / hi : 0, "ratio");
	}
	return 0;
}
