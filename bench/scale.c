/*
 * scale.c: the broker under size: acquire+release latency while it holds
 * many locks for another client, its memory per held lock, per open
 * connection and per waiter, and a queue of thousands of waiters on one
 * lock served to its end.  Memory is the daemon's resident set
 * (/proc/PID/status VmRSS), read before and after.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "lockbroker.h"
#include "protocol.h"

#define HELD_DIRS  100          /* held locks are spread over directories */
#define HELD_BATCH 256          /* ACQUIREs in flight while filling */

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
 * stage_held: -a N,N,... (ascending): one bare connection takes N locks
 * (spread over HELD_DIRS directories), then a library client measures
 * acquire+release of a lock of its own (scale.held.N) and the daemon's
 * resident set is read (scale.rss.N).  Then mem.per_hold (bytes per held
 * lock, between the smallest and the largest N), scale.fill_rate (grants
 * per second while filling, pipelined), and scale.release_all_s: how long
 * the daemon takes to release every hold when the holder disconnects.
 */
int
stage_held(const struct bench_opts *o)
{
	struct bench_opts quiet;
	struct wire w;
	lb_lock    *probe;
	char        path[4096], metric[64];
	const char *p;
	long        target, have = 0, first = -1, inflight, rss = 0;
	long        rss_first = 0;
	uint64_t    t0, fill_ns = 0;
	int         i, r;

	if (o->arg == NULL)
		die("held: give -a N,N,...");
	for (i = 0; i < HELD_DIRS; i++) {
		path_join(path, sizeof(path), o->dir, "held%02d", i);
		make_dir(path);
	}
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
	/* The daemon releases every hold at the disconnect, in one go: the
	 * probe's next cycle waits for that. */
	t0 = now_ns();
	wire_close(&w);
	sleep_ns(1000000);
	if ((r = lb_acquire(probe, 600.0)) != 0 || (r = lb_release(probe)) != 0)
		die("probe after the disconnect: %s", lb_error_name(r));
	report_value("scale.release_all_s", 0, (double)(now_ns() - t0) / 1e9,
	    "s");
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

/*
 * stage_conns: -c N connections opened at once (conns.open_s; mem.per_conn
 * per idle connection), acquire+release latency of another client
 * meanwhile (scale.conns.N); then each connection queues an ACQUIRE for
 * one lock a control connection holds (waiters.queue_s; mem.per_waiter),
 * and the queue is served to its end, each waiter releasing as soon as it
 * is granted (waiters.drain_s, waiters.handoff_us per handoff).
 */
int
stage_conns(const struct bench_opts *o)
{
	struct epoll_event  ev, evs[256];
	struct conn        *cs;
	struct wire         ctl;
	lb_lock            *probe;
	char                path[4096], enc[4096], line[8192], req[8192];
	char                metric[64];
	long                n = o->count, i, rss0, rss1, rss2, granted = 0;
	long                released = 0;
	uint64_t            t0;
	int                 ep, k, nev;

	if (n < 1)
		die("conns: give -c N");
	raise_nofile(n + 256);
	probe = probe_new(o, "conns-probe");
	if (wire_open(&ctl, o->socket, 1) != 0)
		die("cannot connect to %s: %s", o->socket, strerror(errno));
	if ((cs = calloc((size_t)n, sizeof(*cs))) == NULL)
		die("out of memory");
	rss0 = rss_bytes((pid_t)ctl.daemon_pid);

	progress("opening %ld connections", n);
	t0 = now_ns();
	for (i = 0; i < n; i++)
		connect_to(&cs[i], o->socket);
	for (i = 0; i < n; i++)
		conn_send(&cs[i], "HELLO 1 version=1 client=lbbench\n");
	for (i = 0; i < n; i++) {
		conn_line(&cs[i], line, sizeof(line));
		if (strncmp(line, "OK 1 ", 5) != 0)
			die("HELLO on connection %ld: %s", i, line);
	}
	report_value("conns.open_s", 0, (double)(now_ns() - t0) / 1e9, "s");
	sleep_ns(200000000);    /* let the daemon settle */
	rss1 = rss_bytes((pid_t)ctl.daemon_pid);
	report_value("mem.per_conn", 0, (double)(rss1 - rss0) / (double)n,
	    "bytes");
	snprintf(metric, sizeof(metric), "scale.conns.%ld", n);
	probe_latency(probe, metric, o);

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
