/*
 * sets.c: several locks at once under contention: a set's wait for two
 * locks that single clients keep busy, as the daemon's set (one request,
 * in both queues at once, first come first served) and lock by lock (the
 * library's way without such a daemon: wait for one, try the other,
 * give back and wait again), in the same run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "lockbroker.h"

#define SF_SINGLES_MAX  32
#define SF_HOLD_MIN_NS  100000ull       /* a single holds 100 to 300 µs */
#define SF_HOLD_SPAN_NS 200000ull
#define SF_PAUSE_NS     1000000ull      /* the set's pause between samples,
	                                   plus up to as much again */
#define SF_TIMEOUT      10.0            /* then the set is starved: the
	                                   wait counted as that long */
#define SF_BYLOCK_TIMEOUT 1.0           /* the same, lock by lock, ... */
#define SF_BYLOCK_SAMPLES 10            /* ... for at most this many waits
	                                   (each can be starved) */

/* What the set's process and the singles share. */
struct sf_shared {
	volatile int stop;
	uint64_t     cycles[SF_SINGLES_MAX];
};

/* One single of stage_set_fair: takes the lock on path alone, holds it
 * 100 to 300 µs and releases it, again and again until sh->stop, after
 * saying it is ready on ready and hearing go's end of file.  Exits. */
static void
sf_single(int i, const char *path, int ready, int go, struct sf_shared *sh)
{
	lb_lock *l = lock_new(path, LB_BROKER);
	char     c = 's';
	int      r;

	srand((unsigned)(now_ns() ^ (uint64_t)i * 0x9e3779b9u));
	if ((r = lb_acquire(l, SF_TIMEOUT)) != 0)   /* connects */
		die("single: lb_acquire %s: %s: %s", path, lb_error_name(r),
		    lb_lock_error(l));
	must_release(l);
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 0)
		die("set-fair: start signal lost");
	while (!sh->stop) {
		if ((r = lb_acquire(l, SF_TIMEOUT)) != 0)
			die("single: lb_acquire %s: %s: %s", path,
			    lb_error_name(r), lb_lock_error(l));
		sleep_ns(SF_HOLD_MIN_NS + (uint64_t)((double)rand() /
		    ((double)RAND_MAX + 1) * (double)SF_HOLD_SPAN_NS));
		must_release(l);
		sh->cycles[i]++;
		/* As long again free of this single: a lock free about half
		 * the time, each of its singles taking turns. */
		sleep_ns(SF_HOLD_MIN_NS + (uint64_t)((double)rand() /
		    ((double)RAND_MAX + 1) * (double)SF_HOLD_SPAN_NS));
	}
	lb_lock_free(l);
	_exit(0);
}

/* samples waits of the set {set[0], set[1]}, pausing 1 to 2 ms in
 * between, reported as metric; one not granted within timeout counts as
 * that long, and the number of those as metric.starved. */
static void
sf_series(lb_lock **set, const char *metric, int rep, int samples,
    double timeout)
{
	struct samples s;
	uint64_t       t0, t1;
	size_t         failed = 0;
	char           name[64];
	int            i, r, starved = 0;

	samples_init(&s, (size_t)samples);
	for (i = 0; i < samples; i++) {
		sleep_ns(SF_PAUSE_NS + (uint64_t)((double)rand() /
		    ((double)RAND_MAX + 1) * (double)SF_PAUSE_NS));
		t0 = now_ns();
		r = lb_acquire_all(set, 2, timeout, &failed);
		t1 = now_ns();
		if (r == LB_ETIMEOUT) {
			starved++;
			samples_add(&s, t1 - t0);
			continue;
		}
		if (r != 0)
			die("set-fair: lb_acquire_all: %s: %s",
			    lb_error_name(r), lb_lock_error(set[failed]));
		samples_add(&s, t1 - t0);
		must_release(set[0]);
		must_release(set[1]);
	}
	report_latency(metric, rep, &s);
	snprintf(name, sizeof(name), "%s.starved", metric);
	report_value(name, rep, (double)starved, "waits");
	samples_free(&s);
}

/*
 * stage_set_fair: -c SINGLES (4 unless given) processes take lock A
 * alone, as many take lock B, each holding it 100 to 300 µs and then
 * letting it be as long, so that the two are seldom free together; meanwhile one process takes
 * both with lb_acquire_all, o->samples times a repetition, releasing them
 * at once and pausing 1 to 2 ms in between: as the daemon's set
 * (setfair.set_wait) and lock by lock (setfair.bylock_wait: its handles
 * differ in LB_BREAK_STALE, which the daemon's sets do not take, so the
 * library goes lock by lock through the same daemon; at most 10 waits,
 * each given up after 1 s: it can be starved).  Also the singles'
 * cycles per second (setfair.single_ops).  A set keeps its place in both
 * queues and waits for those ahead of it; lock by lock, it holds no place
 * while it waits for the second lock, and can be overtaken again and
 * again.
 */
int
stage_set_fair(const struct bench_opts *o)
{
	struct sf_shared *sh = shared_map(sizeof(*sh));
	lb_lock          *set[2], *bylock[2];
	char              a[4096], b[4096];
	pid_t             pids[SF_SINGLES_MAX];
	uint64_t          start, cycles0, cycles;
	int               k = o->count > 0 ? (int)o->count : 4;
	int               ready[2], go[2], rep, i;
	char              c;

	if (k < 1 || 2 * k > SF_SINGLES_MAX)
		die("set-fair: -c from 1 to %d", SF_SINGLES_MAX / 2);
	path_join(a, sizeof(a), o->dir, "set-fair-a");
	path_join(b, sizeof(b), o->dir, "set-fair-b");
	/* Forked before this process is a client of the library (whose
	 * thread a fork would not take along). */
	if (pipe(ready) == -1 || pipe(go) == -1)
		die("pipe: %s", strerror(errno));
	for (i = 0; i < 2 * k; i++) {
		if ((pids[i] = fork()) == -1)
			die("fork: %s", strerror(errno));
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			sf_single(i, i < k ? a : b, ready[1], go[0], sh);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (i = 0; i < 2 * k; i++)
		if (read(ready[0], &c, 1) != 1)
			die("set-fair: a single failed to start");
	close(go[1]);
	set[0] = lock_new(a, LB_BROKER);
	set[1] = lock_new(b, LB_BROKER);
	bylock[0] = lock_new(a, LB_BROKER);
	bylock[1] = lock_new(b, LB_BROKER | LB_BREAK_STALE);
	srand((unsigned)now_ns());
	sleep_ns(10000000);     /* the singles under way */
	for (rep = 0; rep < o->reps; rep++) {
		cycles0 = 0;
		for (i = 0; i < 2 * k; i++)
			cycles0 += sh->cycles[i];
		start = now_ns();
		sf_series(set, "setfair.set_wait", rep, o->samples,
		    SF_TIMEOUT);
		sf_series(bylock, "setfair.bylock_wait", rep,
		    o->samples < SF_BYLOCK_SAMPLES ? o->samples :
		    SF_BYLOCK_SAMPLES, SF_BYLOCK_TIMEOUT);
		cycles = 0;
		for (i = 0; i < 2 * k; i++)
			cycles += sh->cycles[i];
		report_value("setfair.single_ops", rep, (double)(cycles -
		    cycles0) / ((double)(now_ns() - start) / 1e9), "ops/s");
	}
	sh->stop = 1;
	for (i = 0; i < 2 * k; i++)
		wait_child(pids[i], "set-fair single");
	report_value("setfair.singles", 0, (double)(2 * k), "clients");
	for (i = 0; i < 2; i++) {
		lb_lock_free(set[i]);
		lb_lock_free(bylock[i]);
	}
	return 0;
}
