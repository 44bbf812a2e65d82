/*
 * scale.c: the broker under size: acquire+release latency while it holds
 * many locks for another client, its memory per held lock, per open
 * connection and per waiter, and a queue of thousands of waiters on one
 * lock served to its end.  Memory is the daemon's resident set
 * (/proc/PID/status VmRSS), read before and after; the daemon's work, where
 * a figure asks what it is made of, its system calls (counted by the
 * kernel, syscalls.c, when this process may) and its CPU time (its
 * process CPU clock).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "lockbroker.h"
#include "protocol.h"

#define HELD_DIRS  100          /* held locks are spread over directories */
#define HELD_BATCH 256          /* ACQUIREs in flight while filling */
#define LOG_MAX    (1L << 20)   /* the release probe's ring of cycles */
#define WAIT_NS    (120ull * 1000000000u)       /* then a stage is broken */

/* The daemon's work: its system calls (when the kernel lets this process
 * count them) and its CPU time. */
struct meter {
	struct counter c;
	int            counting;
	clockid_t      cpu;
	int            timing;
};

/* One reading of a meter. */
struct reading {
	uint64_t calls, cpu_ns;
};

/* meter_open: a meter on process pid; what it cannot measure reads 0
 * (meter_report then reports nothing of it). */
static void
meter_open(struct meter *m, pid_t pid)
{
	char why[512];
	long id = tracepoint_id(why, sizeof(why));

	m->counting = id >= 0 &&
	    counter_open(&m->c, pid, id, why, sizeof(why)) == 0;
	m->timing = clock_getcpuclockid(pid, &m->cpu) == 0;
}

/* meter_read: m's figures now. */
static void
meter_read(const struct meter *m, struct reading *r)
{
	struct timespec ts;

	r->calls = m->counting ? counter_read(&m->c) : 0;
	r->cpu_ns = 0;
	if (m->timing && clock_gettime(m->cpu, &ts) == 0)
		r->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u +
		    (uint64_t)ts.tv_nsec;
}

/* meter_report: what the daemon spent between a and b, per op of n, as
 * NAME.calls (system calls) and NAME.cpu_us (CPU time). */
static void
meter_report(const struct meter *m, const char *name, int rep,
    const struct reading *a, const struct reading *b, long n)
{
	char metric[128];

	if (n < 1)
		return;
	if (m->counting) {
		snprintf(metric, sizeof(metric), "%s.calls", name);
		report_value(metric, rep, (double)(b->calls - a->calls) /
		    (double)n, "calls");
	}
	if (m->timing) {
		snprintf(metric, sizeof(metric), "%s.cpu_us", name);
		report_value(metric, rep, (double)(b->cpu_ns - a->cpu_ns) /
		    1e3 / (double)n, "us");
	}
}

/* meter_close: closes m's counters. */
static void
meter_close(struct meter *m)
{
	if (m->counting)
		counter_close(&m->c);
	m->counting = 0;
}

/* Measures o->reps x o->samples uncontended acquire+release of probe
 * through the broker, as metric (NULL: not reported, a warm-up). */
static void
probe_latency(lb_lock *probe, const char *metric, const struct bench_opts *o)
{
	struct samples s;
	uint64_t       t0;
	int            rep, i, r;

	for (rep = 0; rep < o->reps; rep++) {
		samples_init(&s, (size_t)o->samples);
		for (i = -100; i < o->samples; i++) {
			t0 = now_ns();
			if ((r = lb_acquire(probe, 10.0)) != 0 ||
			    (r = lb_release(probe)) != 0)
				die("probe %s: %s: %s", lb_lock_path(probe),
				    lb_error_name(r), lb_lock_error(probe));
			if (i >= 0)
				samples_add(&s, now_ns() - t0);
		}
		if (metric != NULL)
			report_latency(metric, rep, &s);
		samples_free(&s);
	}
}

/* Measures one round of o->samples acquire+release of probe (after 100
 * unreported), reported as metric with rep, and what the daemon spent on
 * each as daemon.NAME (m's figures). */
static void
probe_round(lb_lock *probe, const char *metric, int rep, struct meter *m,
    const char *name, const struct bench_opts *o)
{
	struct reading a, b;
	struct samples s;
	uint64_t       t0;
	char           dname[96];
	int            i, r;

	samples_init(&s, (size_t)o->samples);
	for (i = -100; i < o->samples; i++) {
		if (i == 0)
			meter_read(m, &a);
		t0 = now_ns();
		if ((r = lb_acquire(probe, 10.0)) != 0 ||
		    (r = lb_release(probe)) != 0)
			die("probe %s: %s: %s", lb_lock_path(probe),
			    lb_error_name(r), lb_lock_error(probe));
		if (i >= 0)
			samples_add(&s, now_ns() - t0);
	}
	meter_read(m, &b);
	report_latency(metric, rep, &s);
	snprintf(dname, sizeof(dname), "daemon.%s", name);
	meter_report(m, dname, rep, &a, &b, o->samples);
	samples_free(&s);
}

/* A probe handle through the broker on DIR/name/probe (a directory of its
 * own), warmed up. */
static lb_lock *
probe_new(const struct bench_opts *o, const char *name)
{
	char     path[4096];
	lb_lock *l;

	path_join(path, sizeof(path), o->dir, "%s", name);
	make_dir(path);
	path_join(path, sizeof(path), o->dir, "%s/probe", name);
	if ((l = lb_lock_new(path, LB_BROKER)) == NULL)
		die("lb_lock_new %s: %s", path, strerror(errno));
	if (lb_acquire(l, 10.0) != 0 || lb_release(l) != 0)
		die("probe %s: %s", path, lb_lock_error(l));
	return l;
}

/* Reads the replies to n pipelined requests on w; dies unless all are
 * OK. */
static void
expect_ok(struct wire *w, long n, const char *what)
{
	char line[1024];

	for (; n > 0; n--) {
		if (wire_reply(w, line, sizeof(line)) < 0)
			die("%s: the daemon closed the connection", what);
		if (strncmp(line, "OK ", 3) != 0)
			die("%s: %s", what, line);
	}
}

/*
 * The release probe: another client, a process of its own, doing
 * acquire+release of its own lock in a loop while the daemon ends the
 * holds of a client that disconnected.  Each cycle's start, the return of
 * its acquire and its end go to a ring in shared memory.
 */
struct probe_log {
	int      stop;          /* set by the parent (atomic) */
	long     n;             /* cycles logged (atomic; ring of LOG_MAX) */
	uint64_t start[LOG_MAX], acquired[LOG_MAX], end[LOG_MAX];
};

/* The release probe's process: on the word 'g' from go, takes a lock of
 * its own (DIR/release-probe/probe), says 'r' on ready, then cycles until
 * lg->stop.  Never returns. */
static void
release_probe_run(struct probe_log *lg, int go, int ready,
    const struct bench_opts *o)
{
	lb_lock *l;
	uint64_t t0, t1;
	long     n = 0;
	int      i, r;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		die("prctl: %s", strerror(errno));
	word_hear(go, 'g', "release probe");
	l = probe_new(o, "release-probe");
	for (i = 0; i < 100; i++)
		if ((r = lb_acquire(l, 10.0)) != 0 ||
		    (r = lb_release(l)) != 0)
			die("release probe: %s", lb_error_name(r));
	word_say(ready, 'r', "release probe");
	while (!__atomic_load_n(&lg->stop, __ATOMIC_ACQUIRE)) {
		t0 = now_ns();
		if ((r = lb_acquire(l, 600.0)) != 0)
			die("release probe: acquire: %s", lb_error_name(r));
		t1 = now_ns();
		if ((r = lb_release(l)) != 0)
			die("release probe: release: %s", lb_error_name(r));
		lg->start[n % LOG_MAX] = t0;
		lg->acquired[n % LOG_MAX] = t1;
		lg->end[n % LOG_MAX] = now_ns();
		__atomic_store_n(&lg->n, ++n, __ATOMIC_RELEASE);
	}
	lb_lock_free(l);
	_exit(0);
}

/* The number of cycles the release probe has logged. */
static long
logged(struct probe_log *lg)
{
	return __atomic_load_n(&lg->n, __ATOMIC_ACQUIRE);
}

/* Reports the release probe's cycles that overlap [t0, t1) (during: 1)
 * or the last max of those that ended by t0 (during: 0), as
 * METRIC.acquire (lb_acquire alone) and METRIC.cycle (acquire+release);
 * the number reported. */
static long
report_probe(struct probe_log *lg, long n, uint64_t t0, uint64_t t1,
    int during, long max, const char *metric)
{
	struct samples acq, cyc;
	char           name[96];
	long           i, lo = n > LOG_MAX ? n - LOG_MAX : 0, got;

	samples_init(&acq, 1024);
	samples_init(&cyc, 1024);
	for (i = n - 1; i >= lo; i--) {
		long k = i % LOG_MAX;

		if (during ? lg->start[k] < t1 && lg->end[k] > t0 :
		    lg->end[k] <= t0 && (long)cyc.n < max) {
			samples_add(&acq, lg->acquired[k] - lg->start[k]);
			samples_add(&cyc, lg->end[k] - lg->start[k]);
		}
	}
	got = (long)cyc.n;
	if (got > 0) {
		snprintf(name, sizeof(name), "%s.acquire", metric);
		report_latency(name, 0, &acq);
		snprintf(name, sizeof(name), "%s.cycle", metric);
		report_latency(name, 0, &cyc);
	}
	samples_free(&acq);
	samples_free(&cyc);
	return got;
}

/* Whether a LIST item is one of stage_held's locks (DIR/heldNN/l...). */
static int
held_item(const char *line)
{
	const char *p = line;

	while ((p = strstr(p, "/held")) != NULL) {
		p += 5;
		if (p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' &&
		    p[2] == '/' && p[3] == 'l')
			return 1;
	}
	return 0;
}

/* LIST on w: how many of stage_held's locks the daemon still knows. */
static long
held_listed(struct wire *w)
{
	char line[8192], ok[32];
	long n = 0;

	wire_send(w, "LIST", NULL, NULL);
	snprintf(ok, sizeof(ok), "OK %llu ", (unsigned long long)w->next_id - 1);
	for (;;) {
		if (wire_reply(w, line, sizeof(line)) < 0)
			die("LIST: the daemon closed the connection");
		if (strncmp(line, "ITEM ", 5) == 0)
			n += held_item(line);
		else if (strncmp(line, ok, strlen(ok)) == 0)
			return n;
		else
			die("LIST: %s", line);
	}
}

/*
 * The end of stage_held: the bare connection w, which holds have locks,
 * disconnects, and the daemon ends every one of its holds, while the
 * release probe (its process forked before, on the pipes go and ready)
 * cycles on a lock of its own.  The end is seen by a watcher connection
 * queued before the disconnect on the first and the last lock w took (the
 * daemon ends a connection's holds newest first, so the first is the last
 * one ended: its grant), then checked with LIST (none of w's locks left
 * but the watcher's two; else LIST again every 10 ms until so, and the
 * run says so).  Reports scale.release_all_s, scale.release_all.holds,
 * the probe's cycles during it (scale.release_all.acquire and .cycle,
 * p50/p99) and before it (scale.release_all.before.*, the last -n), and
 * what the daemon spent: its CPU time in all (scale.release_all.cpu_s),
 * and per hold ended, less the probe's cycles at their cost before
 * (scale.release_all.per_hold.calls and .cpu_us).
 */
static void
release_all(struct wire *w, long have, struct probe_log *lg, int go,
    int ready, const struct bench_opts *o)
{
	struct meter   m;
	struct reading rb, r0, r1;
	struct wire    watch;
	char           first[4096], last[4096], line[1024];
	uint64_t       t0, t1;
	long           nb, n0, n1, left, granted;
	double         calls_cycle, cpu_cycle;

	path_join(first, sizeof(first), o->dir, "held%02d/l%07d", 0, 0);
	path_join(last, sizeof(last), o->dir, "held%02ld/l%07ld",
	    (have - 1) % HELD_DIRS, have - 1);
	if (wire_open(&watch, o->socket, 1) != 0)
		die("cannot connect to %s: %s", o->socket, strerror(errno));
	wire_send(&watch, "ACQUIRE", first, "timeout=inf");
	wire_send(&watch, "ACQUIRE", last, "timeout=inf");
	if (wire_call(&watch, "PING", NULL, NULL, line, sizeof(line)) != 0 ||
	    strncmp(line, "OK 4", 4) != 0)
		die("the watcher's ACQUIREs were not queued: %s", line);
	meter_open(&m, (pid_t)w->daemon_pid);

	progress("releasing %ld holds of a client that disconnects", have);
	word_say(go, 'g', "release probe");
	word_hear(ready, 'r', "release probe");
	nb = logged(lg);
	meter_read(&m, &rb);
	t0 = now_ns();
	while (logged(lg) < nb + o->samples)
		if (now_ns() - t0 > WAIT_NS)
			die("the release probe stalls");
		else
			sleep_ns(1000000);
	n0 = logged(lg);
	meter_read(&m, &r0);
	t0 = now_ns();
	wire_close(w);
	for (granted = 0; granted < 2; granted++)
		if (wire_reply(&watch, line, sizeof(line)) < 0 ||
		    (strncmp(line, "OK 2 ", 5) != 0 &&
		    strncmp(line, "OK 3 ", 5) != 0))
			die("the watcher: %s", line);
	t1 = now_ns();
	meter_read(&m, &r1);
	n1 = logged(lg);
	if ((left = held_listed(&watch) - 2) > 0) {
		printf("M release_all=the last hold ended was not the first "
		    "taken (%ld left then): its end seen by LIST every 10 ms\n",
		    left);
		while (held_listed(&watch) > 2) {
			if (now_ns() - t0 > WAIT_NS)
				die("holds left 120 s after the disconnect");
			sleep_ns(10000000);
		}
		t1 = now_ns();
		meter_read(&m, &r1);
		n1 = logged(lg);
	}
	/* The cycle under way at t1 counts too: its end is awaited. */
	while (logged(lg) <= n1)
		if (now_ns() - t1 > WAIT_NS)
			die("the release probe stalls");
		else
			sleep_ns(100000);
	__atomic_store_n(&lg->stop, 1, __ATOMIC_RELEASE);

	report_value("scale.release_all_s", 0, (double)(t1 - t0) / 1e9, "s");
	report_value("scale.release_all.holds", 0, (double)have, "holds");
	if (report_probe(lg, logged(lg), t0, t1, 1, 0,
	    "scale.release_all") == 0)
		printf("M release_all.probe=no cycle of the other client "
		    "overlapped the release\n");
	report_probe(lg, n0, t0, t0, 0, o->samples,
	    "scale.release_all.before");
	if (m.timing)
		report_value("scale.release_all.cpu_s", 0,
		    (double)(r1.cpu_ns - r0.cpu_ns) / 1e9, "s");
	calls_cycle = (double)(r0.calls - rb.calls) / (double)(n0 - nb);
	cpu_cycle = (double)(r0.cpu_ns - rb.cpu_ns) / (double)(n0 - nb);
	if (m.counting)
		report_value("scale.release_all.per_hold.calls", 0,
		    ((double)(r1.calls - r0.calls) - calls_cycle *
		    (double)(n1 - n0)) / (double)have, "calls");
	if (m.timing)
		report_value("scale.release_all.per_hold.cpu_us", 0,
		    ((double)(r1.cpu_ns - r0.cpu_ns) - cpu_cycle *
		    (double)(n1 - n0)) / 1e3 / (double)have, "us");
	meter_close(&m);
	wire_close(&watch);
}

/*
 * stage_held: -a N,N,... (ascending): one bare connection takes N locks
 * (spread over HELD_DIRS directories), then a library client measures
 * acquire+release of a lock of its own (scale.held.N) and the daemon's
 * resident set is read (scale.rss.N).  Then mem.per_hold (bytes per held
 * lock, between the smallest and the largest N), scale.fill_rate (grants
 * per second while filling, pipelined), and what release_all() measures:
 * the holder disconnects with the largest N held.
 */
int
stage_held(const struct bench_opts *o)
{
	struct bench_opts quiet;
	struct probe_log *lg;
	struct wire w;
	lb_lock    *probe;
	char        path[4096], metric[64];
	const char *p;
	long        target, have = 0, first = -1, inflight, rss = 0;
	long        rss_first = 0;
	uint64_t    t0, fill_ns = 0;
	pid_t       child;
	int         go[2], ready[2];
	int         i;

	if (o->arg == NULL)
		die("held: give -a N,N,...");
	for (i = 0; i < HELD_DIRS; i++) {
		path_join(path, sizeof(path), o->dir, "held%02d", i);
		make_dir(path);
	}
	/* The release probe's process, forked before this one is a client
	 * of the library (whose thread a fork would not take along). */
	lg = shared_map(sizeof(*lg));
	if (pipe(go) == -1 || pipe(ready) == -1)
		die("pipe: %s", strerror(errno));
	if ((child = fork()) == -1)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		close(go[1]);
		close(ready[0]);
		release_probe_run(lg, go[0], ready[1], o);
	}
	close(go[0]);
	close(ready[1]);
	probe = probe_new(o, "held-probe");
	if (wire_open(&w, o->socket, 1) != 0)
		die("cannot connect to %s: %s", o->socket, strerror(errno));
	/* A first, unreported round: the daemon's caches and state
	 * database warm up before the first count is measured. */
	quiet = *o;
	quiet.reps = 1;
	probe_latency(probe, NULL, &quiet);
	for (p = o->arg; *p != '\0'; p += *p == ',') {
		target = strtol(p, (char **)&p, 10);
		if (target < have || (*p != ',' && *p != '\0'))
			die("held: -a wants ascending counts: %s", o->arg);
		progress("holding %ld locks", target);
		t0 = now_ns();
		for (inflight = 0; have < target; have++) {
			path_join(path, sizeof(path), o->dir,
			    "held%02ld/l%07ld", have % HELD_DIRS, have);
			wire_send(&w, "ACQUIRE", path, "timeout=0");
			if (++inflight == HELD_BATCH) {
				expect_ok(&w, inflight, "filling");
				inflight = 0;
			}
		}
		expect_ok(&w, inflight, "filling");
		fill_ns += now_ns() - t0;
		snprintf(metric, sizeof(metric), "scale.held.%ld", target);
		probe_latency(probe, metric, o);
		rss = rss_bytes((pid_t)w.daemon_pid);
		snprintf(metric, sizeof(metric), "scale.rss.%ld", target);
		report_value(metric, 0, (double)rss, "bytes");
		if (first < 0) {
			first = target;
			rss_first = rss;
		}
	}
	if (have > first) {
		report_value("mem.per_hold", 0, (double)(rss - rss_first) /
		    (double)(have - first), "bytes");
		report_value("scale.fill_rate", 0, (double)have /
		    ((double)fill_ns / 1e9), "grants/s");
	}
	if (have < 1)
		die("held: no lock held");
	release_all(&w, have, lg, go[1], ready[0], o);
	wait_child(child, "the release probe");
	close(go[1]);
	close(ready[0]);
	lb_lock_free(probe);
	return 0;
}

/* One of many bare connections (the shared wire module's), and whether
 * its ACQUIRE was granted (1) and its RELEASE answered (2). */
struct conn {
	struct lbw_conn c;
	int             granted;
};

/* Connects c to the daemon's socket (blocking); dies on failure. */
static void
connect_to(struct conn *c, const char *socket_path)
{
	char why[512];

	if (lbw_open(&c->c, socket_path, NULL, NULL, why, sizeof(why)) == -1)
		die("%s", why);
}

/* Sends one whole line on c. */
static void
conn_send(struct conn *c, const char *line)
{
	if (lbw_send(&c->c, line, strlen(line)) == -1)
		die("write to the daemon: %s", strerror(errno));
}

/* Reads c's next line (blocking) into line; dies at end of file. */
static void
conn_line(struct conn *c, char *line, size_t size)
{
	char why[256];
	int  got;

	while ((got = lbw_take(&c->c, NULL, NULL, line, size)) == 0)
		if (lbw_fill(&c->c, INFINITY, why, sizeof(why)) == -1)
			die("a connection: %s", why);
	if (got == -1)
		die("reply line too long");
}

/* Opens n connections at once (connect all, then HELLO on each, then
 * read the replies). */
static void
open_all(struct conn *cs, long n, const char *socket_path)
{
	char line[512];
	long i;

	for (i = 0; i < n; i++)
		connect_to(&cs[i], socket_path);
	for (i = 0; i < n; i++)
		conn_send(&cs[i], "HELLO 1 version=1 client=lbbench\n");
	for (i = 0; i < n; i++) {
		conn_line(&cs[i], line, sizeof(line));
		if (strncmp(line, "OK 1 ", 5) != 0)
			die("HELLO on connection %ld: %s", i, line);
	}
}

/* The number of files process pid has open, or -1 when this process may
 * not look (/proc/PID/fd). */
static long
open_files(pid_t pid)
{
	struct dirent *e;
	char           dir[64];
	DIR           *d;
	long           n = 0;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)pid);
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Closes the n connections and waits until the daemon has closed its
 * ends, down to about base open files (or 1 s, when its files cannot be
 * counted). */
static void
close_all(struct conn *cs, long n, pid_t daemon, long base)
{
	uint64_t t0 = now_ns();
	long     i, k;

	for (i = 0; i < n; i++) {
		lbw_close(&cs[i].c);
		cs[i].granted = 0;
	}
	if (base < 0) {
		sleep_ns(1000000000);
		return;
	}
	while ((k = open_files(daemon)) > base + 8) {
		if (now_ns() - t0 > WAIT_NS)
			die("conns: the daemon still has %ld files open 120 s "
			    "after the clients closed (%ld before)", k, base);
		sleep_ns(10000000);
	}
}

/*
 * stage_conns: in -r rounds, acquire+release latency of a client with no
 * other connection open (scale.idle.N), then with -c N connections open
 * (opened at once; scale.conns.N), and what the daemon spent per cycle
 * in each (daemon.idle.* and daemon.conns.*: system calls, CPU time);
 * the connections are closed between rounds, and kept after the last.
 * From the first round conns.open_s and mem.per_conn (per idle
 * connection).  Then each connection queues an ACQUIRE for one lock a
 * control connection holds (waiters.queue_s; mem.per_waiter), and the
 * queue is served to its end, each waiter releasing as soon as it is
 * granted (waiters.drain_s, waiters.handoff_us per handoff).
 */
int
stage_conns(const struct bench_opts *o)
{
	struct epoll_event  ev, evs[256];
	struct conn        *cs;
	struct wire         ctl;
	struct meter        m;
	lb_lock            *probe;
	char                path[4096], enc[4096], line[8192], req[8192];
	char                busy[64], idle[64];
	long                n = o->count, i, rss0, rss1 = 0, rss2;
	long                granted = 0, released = 0, base;
	uint64_t            t0;
	int                 ep, k, nev, rep;
	pid_t               daemon;

	if (n < 1)
		die("conns: give -c N");
	raise_nofile(n + 256);
	probe = probe_new(o, "conns-probe");
	if (wire_open(&ctl, o->socket, 1) != 0)
		die("cannot connect to %s: %s", o->socket, strerror(errno));
	daemon = (pid_t)ctl.daemon_pid;
	if ((cs = calloc((size_t)n, sizeof(*cs))) == NULL)
		die("out of memory");
	meter_open(&m, daemon);
	snprintf(busy, sizeof(busy), "scale.conns.%ld", n);
	snprintf(idle, sizeof(idle), "scale.idle.%ld", n);
	base = open_files(daemon);
	rss0 = rss_bytes(daemon);

	for (rep = 0; rep < o->reps; rep++) {
		probe_round(probe, idle, rep, &m, "idle", o);
		progress("opening %ld connections", n);
		t0 = now_ns();
		open_all(cs, n, o->socket);
		if (rep == 0) {
			report_value("conns.open_s", 0,
			    (double)(now_ns() - t0) / 1e9, "s");
			sleep_ns(200000000);    /* let the daemon settle */
			rss1 = rss_bytes(daemon);
			report_value("mem.per_conn", 0, (double)(rss1 - rss0) /
			    (double)n, "bytes");
		}
		probe_round(probe, busy, rep, &m, "conns", o);
		if (rep < o->reps - 1)
			close_all(cs, n, daemon, base);
	}
	meter_close(&m);
	rss1 = rss_bytes(daemon);

	progress("queueing %ld waiters on one lock", n);
	path_join(path, sizeof(path), o->dir, "conns-probe/queue");
	if (wire_call(&ctl, "ACQUIRE", path, "timeout=0", line,
	    sizeof(line)) != 0)
		die("ACQUIRE %s: %s", path, line);
	if (lbp_encode(path, strlen(path), enc, sizeof(enc)) < 0)
		die("path too long: %s", path);
	t0 = now_ns();
	snprintf(req, sizeof(req), "ACQUIRE 2 path=%s timeout=inf\n", enc);
	for (i = 0; i < n; i++)
		conn_send(&cs[i], req);
	for (;;) {
		if (wire_call(&ctl, "STATUS", path, NULL, line,
		    sizeof(line)) != 0)
			die("STATUS %s: %s", path, line);
		if (wire_field(line, "waiters") == n)
			break;
		if (now_ns() - t0 > 120 * 1000000000ull)
			die("waiters: %ld of %ld queued after 120 s",
			    wire_field(line, "waiters"), n);
		sleep_ns(1000000);
	}
	report_value("waiters.queue_s", 0, (double)(now_ns() - t0) / 1e9,
	    "s");
	rss2 = rss_bytes((pid_t)ctl.daemon_pid);
	report_value("mem.per_waiter", 0, (double)(rss2 - rss1) / (double)n,
	    "bytes");

	progress("serving the %ld waiters", n);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		die("epoll_create1: %s", strerror(errno));
	for (i = 0; i < n; i++) {
		ev.events = EPOLLIN;
		ev.data.u64 = (uint64_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].c.fd, &ev) == -1)
			die("epoll_ctl: %s", strerror(errno));
	}
	snprintf(req, sizeof(req), "RELEASE 3 path=%s\n", enc);
	t0 = now_ns();
	if (wire_call(&ctl, "RELEASE", path, NULL, line, sizeof(line)) != 0)
		die("RELEASE %s: %s", path, line);
	while (released < n) {
		if ((nev = epoll_wait(ep, evs, 256, 60000)) <= 0)
			die("waiters: stalled after %ld grants of %ld",
			    granted, n);
		for (k = 0; k < nev; k++) {
			struct conn *c = &cs[evs[k].data.u64];

			conn_line(c, line, sizeof(line));
			if (strncmp(line, "OK 2 ", 5) == 0 && !c->granted) {
				c->granted = 1;
				granted++;
				conn_send(c, req);
			} else if (strncmp(line, "OK 3", 4) == 0 &&
			    c->granted == 1) {
				c->granted = 2;
				released++;
			} else
				die("waiter %lu: unexpected %s",
				    (unsigned long)evs[k].data.u64, line);
		}
	}
	report_value("waiters.drain_s", 0, (double)(now_ns() - t0) / 1e9, "s");
	report_value("waiters.handoff_us", 0, (double)(now_ns() - t0) / 1e3 /
	    (double)n, "us");
	close(ep);
	for (i = 0; i < n; i++)
		lbw_close(&cs[i].c);
	free(cs);
	wire_close(&ctl);
	lb_lock_free(probe);
	return 0;
}
