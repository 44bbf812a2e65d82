/*
 * syscalls.c: the system calls each request costs, counted by the kernel:
 * the raw_syscalls:sys_enter tracepoint (what `perf stat -e
 * raw_syscalls:sys_enter` counts), opened with perf_event_open(2) on every
 * thread of the daemon and of this process, read before and after N
 * operations.
 *
 *   lbbench syscalls -n N -r REPS -t IDLE_SECONDS [-a KIND,KIND,...]
 *
 * Kinds (all of them without -a):
 *
 *   ping          PING on a bare connection
 *   wire:METHOD   ACQUIRE (timeout=0) + RELEASE on a bare connection; the
 *                 daemon's share also split into the ACQUIRE and the
 *                 RELEASE (a second pass in which each request is counted
 *                 alone, from the daemon asleep in epoll_wait to the daemon
 *                 asleep again)
 *   cycle:METHOD  lb_acquire + lb_release through the broker (the library)
 *   local:METHOD  lb_acquire + lb_release in-process (this process only)
 *   nobody:METHOD cycle:METHOD by a child of uid 65534 (the daemon then
 *                 acts with other credentials than its own), the daemon's
 *                 calls only; as root only
 *   handoff       a lock passed between two bare connections of two
 *                 processes: the waiter's ACQUIRE, sent together with a
 *                 PING whose reply says the daemon has queued it, and the
 *                 holder's RELEASE, which hands the lock over; each part
 *                 counted alone as above
 *   flock         flock(2) LOCK_EX + LOCK_UN (this process only)
 *
 * Prints "V syscalls.SIDE.NAME REP CALLS calls", SIDE daemon or client,
 * per operation, NAME ping, wire_cycle.METHOD, acquire.METHOD and
 * release.METHOD (daemon), cycle.METHOD, local.METHOD (client),
 * nobody.METHOD (daemon), handoff_queue, handoff_release and handoff
 * (daemon), flock (client); and syscalls.daemon.idle (calls per second of
 * the idle daemon, over -t seconds first: its timers), which is
 * subtracted from every daemon window pro rata.  The slow methods (mkdir, sqlite) run
 * N / 10 operations.  A window of this process's own counters costs it a
 * few calls (reading them): measured with no operation in between and
 * subtracted.
 *
 * When the counters cannot be opened (no tracefs, perf_event_paranoid,
 * a container's seccomp), prints "M syscalls=not measured: REASON" and
 * exits 0: the report says so.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "lockbroker.h"
#include "protocol.h"

#define WARMUP 10
#define QUIET_WAIT_NS (10ull * 1000000000u)

/* Where the tracepoint's id is, with tracefs mounted either way. */
static const char *const tracepoint_ids[] = {
	"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
	"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
};

/* tracepoint_id: the raw_syscalls:sys_enter tracepoint's id, or -1 with
 * why filled. */
long
tracepoint_id(char *why, size_t size)
{
	FILE  *f;
	long   id = -1;
	size_t i;

	for (i = 0; i < sizeof(tracepoint_ids) / sizeof(tracepoint_ids[0]);
	    i++) {
		if ((f = fopen(tracepoint_ids[i], "r")) == NULL)
			continue;
		if (fscanf(f, "%ld", &id) != 1)
			id = -1;
		fclose(f);
		if (id >= 0)
			return id;
	}
	snprintf(why, size, "no raw_syscalls:sys_enter tracepoint (%s: %s; "
	    "tracefs not mounted or not readable)", tracepoint_ids[0],
	    strerror(errno));
	return -1;
}

/* kernel.perf_event_paranoid, or -9 when it cannot be read. */
static int
perf_paranoid(void)
{
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "r");
	int   v = -9;

	if (f != NULL) {
		if (fscanf(f, "%d", &v) != 1)
			v = -9;
		fclose(f);
	}
	return v;
}

/* 0 when this process may read /proc/PID/syscall of pid (quiet() looks
 * there; ptrace's rules, Yama's among them, decide), else -1 with why. */
static int
syscall_readable(pid_t pid, char *why, size_t size)
{
	char  file[64], buf[128];
	FILE *f;
	int   rc = -1;

	snprintf(file, sizeof(file), "/proc/%ld/syscall", (long)pid);
	if ((f = fopen(file, "r")) == NULL)
		goto out;
	if (fgets(buf, sizeof(buf), f) != NULL)
		rc = 0;
	fclose(f);
out:
	if (rc != 0)
		snprintf(why, size, "cannot read %s: %s (as root, or with "
		    "kernel.yama.ptrace_scope 0)", file, strerror(errno));
	return rc;
}

/* counter_close: closes every counter of c. */
void
counter_close(struct counter *c)
{
	while (c->n > 0)
		close(c->fd[--c->n]);
}

/*
 * counter_open: a counter of the system calls of every thread of process
 * pid (those there now, and, inherited, those they start).  0, or -1 with
 * why filled (the kernel's reason, and the setting that usually causes
 * it).
 */
int
counter_open(struct counter *c, pid_t pid, long id, char *why, size_t size)
{
	struct perf_event_attr a;
	struct dirent         *e;
	char                   dir[64];
	DIR                   *d;
	int                    fd, rc = -1;

	c->n = 0;
	snprintf(dir, sizeof(dir), "/proc/%ld/task", (long)pid);
	if ((d = opendir(dir)) == NULL) {
		snprintf(why, size, "%s: %s", dir, strerror(errno));
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = (unsigned long long)id;
	a.inherit = 1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (c->n == COUNTER_TASKS) {
			snprintf(why, size, "process %ld has more than %d "
			    "threads", (long)pid, COUNTER_TASKS);
			goto out;
		}
		fd = (int)syscall(SYS_perf_event_open, &a,
		    (pid_t)atol(e->d_name), -1, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd == -1) {
			snprintf(why, size, "perf_event_open on thread %s of "
			    "process %ld: %s (it needs CAP_PERFMON, as root "
			    "has, or kernel.perf_event_paranoid at -1, here "
			    "%d; a container may forbid it altogether)",
			    e->d_name, (long)pid, strerror(errno),
			    perf_paranoid());
			goto out;
		}
		c->fd[c->n++] = fd;
	}
	rc = c->n > 0 ? 0 : -1;
	if (rc != 0)
		snprintf(why, size, "process %ld has no threads", (long)pid);
out:
	closedir(d);
	if (rc != 0)
		counter_close(c);
	return rc;
}

/* counter_read: the system calls counted so far, all threads together. */
uint64_t
counter_read(const struct counter *c)
{
	uint64_t sum = 0, v;
	int      i;

	for (i = 0; i < c->n; i++) {
		if (read(c->fd[i], &v, sizeof(v)) != (ssize_t)sizeof(v))
			die("reading a system-call counter: %s",
			    strerror(errno));
		sum += v;
	}
	return sum;
}

/* What every kind's run shares. */
struct sc {
	const struct bench_opts *o;
	long                     id;         /* the tracepoint */
	pid_t                    daemon;
	struct counter           dc;         /* the daemon's */
	double                   idle_rate;  /* its calls per second */
	uint64_t                 self_cost;  /* a window of our own */
	int                      rep;
};

/* A window: both counters and the clock, read at its start. */
struct window {
	uint64_t d0, c0, t0;
	struct counter cc;                  /* this process's */
};

/* Opens this process's counters (its threads now) and starts a window. */
static void
window_start(struct sc *s, struct window *w)
{
	char why[512];

	if (counter_open(&w->cc, getpid(), s->id, why, sizeof(why)) != 0)
		die("%s", why);
	w->t0 = now_ns();
	w->d0 = counter_read(&s->dc);
	w->c0 = counter_read(&w->cc);
}

/* Ends the window: the daemon's calls in it (less its idle rate's share)
 * and ours (less the window's own), per op of n; prints them as
 * syscalls.daemon.NAME and syscalls.client.NAME (a NULL name: not
 * printed). */
static void
window_end(struct sc *s, struct window *w, long n, const char *dname,
    const char *cname)
{
	uint64_t c1 = counter_read(&w->cc), d1 = counter_read(&s->dc);
	double   secs = (double)(now_ns() - w->t0) / 1e9, dc, cc;
	char     metric[128];

	counter_close(&w->cc);
	dc = (double)(d1 - w->d0) - s->idle_rate * secs;
	cc = (double)(c1 - w->c0) - (double)s->self_cost;
	if (dname != NULL) {
		snprintf(metric, sizeof(metric), "syscalls.daemon.%s", dname);
		report_value(metric, s->rep, (dc < 0 ? 0 : dc) / (double)n,
		    "calls");
	}
	if (cname != NULL) {
		snprintf(metric, sizeof(metric), "syscalls.client.%s", cname);
		report_value(metric, s->rep, (cc < 0 ? 0 : cc) / (double)n,
		    "calls");
	}
}

/*
 * quiet: waits until the daemon sleeps in epoll_wait with nothing more
 * to do (its counter still between two looks), and returns its count
 * then.  Dies after QUIET_WAIT_NS.
 */
static uint64_t
quiet(struct sc *s)
{
	uint64_t start = now_ns(), a, b;

	for (;;) {
		a = counter_read(&s->dc);
		if (blocked_in_syscall(s->daemon, SYS_epoll_wait) ||
		    blocked_in_syscall(s->daemon, SYS_epoll_pwait)) {
			b = counter_read(&s->dc);
			if (a == b)
				return b;
		}
		if (now_ns() - start > QUIET_WAIT_NS)
			die("syscalls: the daemon (pid %ld) never went back "
			    "to sleep in epoll_wait", (long)s->daemon);
		sleep_ns(20000);
	}
}

/* The operations of a kind, -n of them (a tenth for the slow methods). */
static long
ops_for(const struct sc *s, const char *method)
{
	long n = s->o->samples;

	if (method != NULL && (strcmp(method, "mkdir") == 0 ||
	    strcmp(method, "sqlite") == 0))
		n = n / 10 > 0 ? n / 10 : 1;
	return n;
}

/* wire_call that must answer OK. */
static void
must_call(struct wire *w, const char *verb, const char *path,
    const char *extra)
{
	char line[1024];

	if (wire_call(w, verb, path, extra, line, sizeof(line)) != 0)
		die("%s %s: %s", verb, path != NULL ? path : "", line);
}

/* PING on a bare connection. */
static void
kind_ping(struct sc *s)
{
	struct window win;
	struct wire   w;
	long          i, n = ops_for(s, NULL);

	if (wire_open(&w, s->o->socket, 1) != 0)
		die("cannot connect to %s: %s", s->o->socket, strerror(errno));
	for (i = 0; i < WARMUP; i++)
		must_call(&w, "PING", NULL, NULL);
	window_start(s, &win);
	for (i = 0; i < n; i++)
		must_call(&w, "PING", NULL, NULL);
	window_end(s, &win, n, "ping", "ping");
	wire_close(&w);
}

/* ACQUIRE + RELEASE of method on a bare connection: the pair, then each
 * request alone. */
static void
kind_wire(struct sc *s, const char *method)
{
	struct window win;
	struct wire   w;
	char          path[4096], acq[64], rel[32], metric[64];
	uint64_t      a = 0, r = 0, q0, q1, q2;
	long          i, n = ops_for(s, method);

	path_join(path, sizeof(path), s->o->dir, "syscalls-wire-%s", method);
	snprintf(acq, sizeof(acq), "method=%s timeout=0", method);
	snprintf(rel, sizeof(rel), "method=%s", method);
	if (wire_open(&w, s->o->socket, 1) != 0)
		die("cannot connect to %s: %s", s->o->socket, strerror(errno));
	for (i = 0; i < WARMUP; i++) {
		must_call(&w, "ACQUIRE", path, acq);
		must_call(&w, "RELEASE", path, rel);
	}
	snprintf(metric, sizeof(metric), "wire_cycle.%s", method);
	window_start(s, &win);
	for (i = 0; i < n; i++) {
		must_call(&w, "ACQUIRE", path, acq);
		must_call(&w, "RELEASE", path, rel);
	}
	window_end(s, &win, n, metric, metric);
	for (i = 0; i < n; i++) {
		q0 = quiet(s);
		must_call(&w, "ACQUIRE", path, acq);
		q1 = quiet(s);
		must_call(&w, "RELEASE", path, rel);
		q2 = quiet(s);
		a += q1 - q0;
		r += q2 - q1;
	}
	snprintf(metric, sizeof(metric), "syscalls.daemon.acquire.%s", method);
	report_value(metric, s->rep, (double)a / (double)n, "calls");
	snprintf(metric, sizeof(metric), "syscalls.daemon.release.%s", method);
	report_value(metric, s->rep, (double)r / (double)n, "calls");
	wire_close(&w);
}

/* lb_acquire + lb_release of method, through the broker or in-process. */
static void
kind_lib(struct sc *s, const char *method, int broker)
{
	struct window win;
	unsigned      flags;
	lb_lock      *l;
	char          path[4096], metric[64];
	long          i, n = ops_for(s, method);
	int           r;

	if (lb_method_parse(method, &flags) != 0)
		die("no method %s", method);
	flags |= broker ? LB_BROKER : LB_LOCAL;
	path_join(path, sizeof(path), s->o->dir, "syscalls-%s-%s",
	    broker ? "cycle" : "local", method);
	if ((l = lb_lock_new(path, flags)) == NULL)
		die("lb_lock_new %s: %s", path, strerror(errno));
	snprintf(metric, sizeof(metric), "%s.%s", broker ? "cycle" : "local",
	    method);
	for (i = -WARMUP; i < n; i++) {
		if (i == 0)
			window_start(s, &win);
		if ((r = lb_acquire(l, 10.0)) != 0 || (r = lb_release(l)) != 0)
			die("%s: %s: %s", path, lb_error_name(r),
			    lb_lock_error(l));
	}
	window_end(s, &win, n, broker ? metric : NULL, metric);
	lb_lock_free(l);
}

/* flock(2) LOCK_EX + LOCK_UN. */
static void
kind_flock(struct sc *s)
{
	struct window win;
	char          path[4096];
	long          i, n = ops_for(s, NULL);
	int           fd;

	path_join(path, sizeof(path), s->o->dir, "syscalls-flock");
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) == -1)
		die("open %s: %s", path, strerror(errno));
	for (i = -WARMUP; i < n; i++) {
		if (i == 0)
			window_start(s, &win);
		if (flock(fd, LOCK_EX) == -1 || flock(fd, LOCK_UN) == -1)
			die("flock %s: %s", path, strerror(errno));
	}
	window_end(s, &win, n, NULL, "flock");
	close(fd);
}

/* The handoff's words (bench.h). */
#define tell(fd, c)  word_say(fd, c, "syscalls handoff")
#define await(fd, c) word_hear(fd, c, "syscalls handoff")

/*
 * lb_acquire + lb_release of method through the broker by a child that is
 * uid and gid 65534 (so that the daemon acts with other credentials than
 * its own), in a directory of o->dir that the child may write; the
 * daemon's calls only.  As another user than root, nothing (a note).
 */
static void
kind_nobody(struct sc *s, const char *method)
{
	char     dir[4096], path[4096], metric[64];
	unsigned flags;
	lb_lock *l;
	uint64_t d0, d1;
	long     i, n = ops_for(s, method);
	int      up[2], down[2], r;
	pid_t    child;

	if (geteuid() != 0) {
		progress("syscalls: not root: no run as another user");
		return;
	}
	if (lb_method_parse(method, &flags) != 0)
		die("no method %s", method);
	path_join(dir, sizeof(dir), s->o->dir, "syscalls-nobody");
	make_dir(dir);
	if (chmod(dir, 01777) == -1)
		die("chmod %s: %s", dir, strerror(errno));
	path_join(path, sizeof(path), dir, "cycle-%s", method);
	if (pipe(up) == -1 || pipe(down) == -1)
		die("pipe: %s", strerror(errno));
	if ((child = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		close(up[0]);
		close(down[1]);
		if (setgroups(0, NULL) == -1 || setgid(65534) == -1 ||
		    setuid(65534) == -1)
			die("cannot become uid 65534: %s", strerror(errno));
		if ((l = lb_lock_new(path, flags | LB_BROKER)) == NULL)
			die("lb_lock_new %s: %s", path, strerror(errno));
		for (i = -WARMUP; i < n; i++) {
			if (i == 0) {
				tell(up[1], 'W');
				await(down[0], 'G');
			}
			if ((r = lb_acquire(l, 10.0)) != 0 ||
			    (r = lb_release(l)) != 0)
				die("%s as uid 65534: %s: %s", path,
				    lb_error_name(r), lb_lock_error(l));
		}
		tell(up[1], 'D');
		lb_lock_free(l);
		_exit(0);
	}
	close(up[1]);
	close(down[0]);
	await(up[0], 'W');
	d0 = quiet(s);
	tell(down[1], 'G');
	await(up[0], 'D');
	d1 = quiet(s);
	close(up[0]);
	close(down[1]);
	wait_child(child, "syscalls as uid 65534");
	snprintf(metric, sizeof(metric), "syscalls.daemon.nobody.%s", method);
	report_value(metric, s->rep, (double)(d1 - d0) / (double)n, "calls");
}

/* The waiter's ACQUIRE and a PING in one write; returns once the PING is
 * answered (the ACQUIRE is queued: the lock is held).  *acq_id is the
 * ACQUIRE's id. */
static void
acquire_queued(struct wire *w, const char *path, uint64_t *acq_id)
{
	char     enc[4096], buf[8192], line[1024];
	uint64_t ping_id;
	int      n;

	if (lbp_encode(path, strlen(path), enc, sizeof(enc)) < 0)
		die("path too long: %s", path);
	*acq_id = w->next_id++;
	ping_id = w->next_id++;
	n = snprintf(buf, sizeof(buf), "ACQUIRE %llu path=%s timeout=inf\n"
	    "PING %llu\n", (unsigned long long)*acq_id, enc,
	    (unsigned long long)ping_id);
	if (n < 0 || (size_t)n >= sizeof(buf))
		die("request too long");
	if (lbw_send(&w->c, buf, (size_t)n) == -1)
		die("write to the daemon: %s", strerror(errno));
	if (wire_reply(w, line, sizeof(line)) < 0)
		die("the daemon closed the connection during ACQUIRE");
	if (strncmp(line, "OK ", 3) != 0 ||
	    strtoull(line + 3, NULL, 10) != ping_id)
		die("ACQUIRE %s of a held lock: expected the PING's reply "
		    "first, got: %s", path, line);
}

/* Waits for the grant of the queued ACQUIRE acq_id. */
static void
granted(struct wire *w, const char *path, uint64_t acq_id)
{
	char line[1024];

	if (wire_reply(w, line, sizeof(line)) < 0)
		die("the daemon closed the connection during ACQUIRE");
	if (strncmp(line, "OK ", 3) != 0 ||
	    strtoull(line + 3, NULL, 10) != acq_id)
		die("ACQUIRE %s: %s", path, line);
}

/*
 * One side of the handoff game (side 0 holds first), rounds rounds.  In
 * round k, side k % 2 holds: the waiter queues its ACQUIRE and says 'Q';
 * the holder (whose process, when counting, first waits for the daemon
 * to be quiet and notes its count) releases; the waiter, granted, says
 * 'G'.  With s, this side counts: queue[k] and hand[k], the daemon's
 * calls for the queued ACQUIRE and for the RELEASE with its handoff
 * (which this side measures when it is the holder; the waiter's part
 * when it is the waiter).
 */
static void
handoff_side(struct sc *s, int side, int in, int out, const char *path,
    uint64_t *queue, uint64_t *hand, int rounds)
{
	struct wire w;
	uint64_t    id, q0, q1;
	int         k;

	if (wire_open(&w, s->o->socket, 1) != 0)
		die("cannot connect to %s: %s", s->o->socket, strerror(errno));
	if (side == 0) {
		must_call(&w, "ACQUIRE", path, "timeout=0");
		tell(out, 'R');
	} else
		await(in, 'R');
	for (k = 0; k < rounds; k++) {
		if (k % 2 == side) {
			/* holder: the waiter's queueing is counted from
			 * here, where the daemon is quiet. */
			q0 = side == 0 ? quiet(s) : 0;
			tell(out, 'S');
			await(in, 'Q');
			q1 = side == 0 ? quiet(s) : 0;
			must_call(&w, "RELEASE", path, NULL);
			await(in, 'G');
			if (side == 0) {
				queue[k] = q1 - q0;
				hand[k] = quiet(s) - q1;
			}
		} else {
			await(in, 'S');
			acquire_queued(&w, path, &id);
			tell(out, 'Q');
			granted(&w, path, id);
			tell(out, 'G');
		}
	}
	wire_close(&w);
}

/*
 * The handoff: this process and a child pass a lock back and forth on
 * bare connections; this process counts the daemon's calls in the rounds
 * where it holds (the child's ACQUIRE queued, then this process's
 * RELEASE handing the lock over): handoff_queue, handoff_release and
 * their sum, handoff, per handoff.
 */
static void
kind_handoff(struct sc *s)
{
	char      path[4096];
	long      n = ops_for(s, NULL);
	int       rounds = (int)(2 * (n + WARMUP)), a2b[2], b2a[2], k;
	uint64_t *queue, *hand, q = 0, h = 0;
	pid_t     child;

	path_join(path, sizeof(path), s->o->dir, "syscalls-handoff");
	queue = calloc((size_t)rounds, sizeof(*queue));
	hand = calloc((size_t)rounds, sizeof(*hand));
	if (queue == NULL || hand == NULL)
		die("out of memory");
	if (pipe(a2b) == -1 || pipe(b2a) == -1)
		die("pipe: %s", strerror(errno));
	if ((child = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		close(a2b[1]);
		close(b2a[0]);
		handoff_side(s, 1, a2b[0], b2a[1], path, NULL, NULL, rounds);
		_exit(0);
	}
	close(a2b[0]);
	close(b2a[1]);
	handoff_side(s, 0, b2a[0], a2b[1], path, queue, hand, rounds);
	close(a2b[1]);
	close(b2a[0]);
	wait_child(child, "syscalls handoff");
	for (k = 2 * WARMUP; k < rounds; k += 2) {
		q += queue[k];
		h += hand[k];
	}
	report_value("syscalls.daemon.handoff_queue", s->rep,
	    (double)q / (double)n, "calls");
	report_value("syscalls.daemon.handoff_release", s->rep,
	    (double)h / (double)n, "calls");
	report_value("syscalls.daemon.handoff", s->rep,
	    (double)(q + h) / (double)n, "calls");
	free(queue);
	free(hand);
}

/* Runs one kind ("ping", "wire:link", ...). */
static void
run_kind(struct sc *s, const char *kind)
{
	const char *colon = strchr(kind, ':');
	const char *method = colon != NULL ? colon + 1 : NULL;
	size_t      len = colon != NULL ? (size_t)(colon - kind) :
	    strlen(kind);

	if (len == 4 && strncmp(kind, "ping", 4) == 0 && method == NULL)
		kind_ping(s);
	else if (len == 7 && strncmp(kind, "handoff", 7) == 0 &&
	    method == NULL)
		kind_handoff(s);
	else if (len == 5 && strncmp(kind, "flock", 5) == 0 && method == NULL)
		kind_flock(s);
	else if (len == 4 && strncmp(kind, "wire", 4) == 0 && method != NULL)
		kind_wire(s, method);
	else if (len == 5 && strncmp(kind, "cycle", 5) == 0 && method != NULL)
		kind_lib(s, method, 1);
	else if (len == 5 && strncmp(kind, "local", 5) == 0 && method != NULL)
		kind_lib(s, method, 0);
	else if (len == 6 && strncmp(kind, "nobody", 6) == 0 &&
	    method != NULL)
		kind_nobody(s, method);
	else
		die("syscalls: no kind %s (ping, wire:METHOD, cycle:METHOD, "
		    "local:METHOD, nobody:METHOD, handoff, flock)", kind);
}

#define ALL_KINDS "ping,wire:link,wire:symlink,wire:mkdir,wire:pidfile," \
	"wire:sqlite,cycle:link,nobody:link,local:link,handoff,flock"

/* stage_syscalls: see the top of this file. */
int
stage_syscalls(const struct bench_opts *o)
{
	struct window win;
	struct sc     s;
	struct wire   w;
	char          why[512], kinds[1024], *kind, *save;
	uint64_t      d0;

	memset(&s, 0, sizeof(s));
	s.o = o;
	if (wire_open(&w, o->socket, 1) != 0)
		die("no daemon answers on %s", o->socket);
	s.daemon = (pid_t)w.daemon_pid;
	wire_close(&w);
	if ((s.id = tracepoint_id(why, sizeof(why))) < 0 ||
	    syscall_readable(s.daemon, why, sizeof(why)) != 0 ||
	    counter_open(&s.dc, s.daemon, s.id, why, sizeof(why)) != 0) {
		printf("M syscalls=not measured: %s\n", why);
		progress("syscalls: not measured: %s", why);
		return 0;
	}
	/* What a window costs this process itself. */
	window_start(&s, &win);
	s.self_cost = counter_read(&win.cc) - win.c0;
	counter_close(&win.cc);
	for (s.rep = 0; s.rep < o->reps; s.rep++) {
		/* The idle daemon's calls (its timers). */
		d0 = quiet(&s);
		sleep_ns((uint64_t)(o->seconds * 1e9));
		s.idle_rate = (double)(counter_read(&s.dc) - d0) / o->seconds;
		report_value("syscalls.daemon.idle", s.rep, s.idle_rate,
		    "calls/s");
		snprintf(kinds, sizeof(kinds), "%s",
		    o->arg != NULL ? o->arg : ALL_KINDS);
		for (kind = strtok_r(kinds, ",", &save); kind != NULL;
		    kind = strtok_r(NULL, ",", &save))
			run_kind(&s, kind);
	}
	counter_close(&s.dc);
	return 0;
}
