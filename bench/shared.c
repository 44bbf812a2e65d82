/*
 * shared.c: shared locks and the deadlock search under load: a writer
 * queued behind readers that keep a lock held shared (its wait, from its
 * request to its grant), and the latency of a queued wait with thousands
 * of other waits in the daemon's wait-for graph, beside it and ahead of
 * it (docs/DEADLOCK.md).  Readers on one lock against distinct locks are
 * the throughput stage's reader-shared mode (locks.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "lockbroker.h"
#include "protocol.h"

#define RW_READERS_MAX  64
#define RW_HOLD_MIN_NS  100000ull       /* a reader holds 100 to 300 µs: */
#define RW_HOLD_SPAN_NS 200000ull       /* 200 on average, phases spread */
#define RW_PAUSE_NS     1000000ull      /* the writer's pause between
	                                   samples, plus up to as much again */
#define RW_TIMEOUT      30.0            /* then the writer is starved */

#define DL_PER_CONN     50      /* waits per connection: under the
	                           daemon's WAITED_FOR_MAX (deadlock.c), so
	                           that queueing them costs no search */
#define DL_TIMEOUT      "timeout=60"    /* the measured wait's */
#define DL_WARMUP       20      /* unreported waits before each series
	                           (one behind the queue can take tens of
	                           milliseconds) */
#define DL_WAIT_NS      (120ull * 1000000000u)

/* What the writer and the readers of stage_rw_fair share. */
struct rw_shared {
	volatile int stop;
	struct {
		uint64_t cycles;        /* acquire_shared+release done */
		uint64_t held_ns;       /* time held, all cycles together */
	} reader[RW_READERS_MAX];
};

/* One reader of stage_rw_fair: takes the lock on path shared, holds it
 * 100 to 300 µs and releases it, again and again until sh->stop, after
 * saying it is ready on ready and hearing go's end of file.  Exits. */
static void
rw_reader(int i, const char *path, int ready, int go, struct rw_shared *sh)
{
	lb_lock *l = lock_new(path, LB_BROKER);
	uint64_t t0, hold;
	char     c = 'r';
	int      r;

	srand((unsigned)(now_ns() ^ (uint64_t)i * 0x9e3779b9u));
	if ((r = lb_acquire_shared(l, RW_TIMEOUT)) != 0)   /* connects */
		die("reader: lb_acquire_shared %s: %s: %s", path,
		    lb_error_name(r), lb_lock_error(l));
	must_release(l);
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 0)
		die("rw-fair: start signal lost");
	sleep_ns((uint64_t)i * RW_HOLD_SPAN_NS / RW_READERS_MAX);
	while (!sh->stop) {
		hold = RW_HOLD_MIN_NS + (uint64_t)((double)rand() /
		    ((double)RAND_MAX + 1) * (double)RW_HOLD_SPAN_NS);
		if ((r = lb_acquire_shared(l, RW_TIMEOUT)) != 0)
			die("reader: lb_acquire_shared %s: %s: %s", path,
			    lb_error_name(r), lb_lock_error(l));
		t0 = now_ns();
		sleep_ns(hold);
		sh->reader[i].held_ns += now_ns() - t0;
		must_release(l);
		sh->reader[i].cycles++;
	}
	lb_lock_free(l);
	_exit(0);
}

/*
 * stage_rw_fair: -c READERS (8 unless given) processes take one lock
 * shared back to back, each holding it 100 to 300 µs, so that it is
 * seldom free of readers; meanwhile a writer asks for it exclusive,
 * o->samples times a repetition, releasing it at once and pausing 1 to
 * 2 ms in between.  Prints the writer's wait, from its request to its
 * grant (rwfair.writer_wait), the readers' mean hold
 * (rwfair.reader_hold_us), how often the writer found the lock held by
 * readers just before it asked (rwfair.held_before, a look of its own:
 * a ratio) and the readers' cycles per second (rwfair.reader_ops).  In a
 * FIFO queue the writer waits for the readers that hold the lock when it
 * asks, not for those that come after it.  A writer not granted within
 * 30 s dies: it is starved.
 */
int
stage_rw_fair(const struct bench_opts *o)
{
	struct rw_shared *sh = shared_map(sizeof(*sh));
	struct samples    s;
	lb_holder         h;
	lb_lock          *w;
	char              path[4096];
	pid_t             pids[RW_READERS_MAX];
	uint64_t          t0, t1, start, cycles0, cycles, held;
	long              held_before;
	int               k = o->count > 0 ? (int)o->count : 8;
	int               ready[2], go[2], rep, i, r;
	char              c;

	if (k > RW_READERS_MAX)
		die("rw-fair: -c from 1 to %d", RW_READERS_MAX);
	path_join(path, sizeof(path), o->dir, "rw-fair");
	/* The readers are forked before this process is a client of the
	 * library (whose thread a fork would not take along). */
	if (pipe(ready) == -1 || pipe(go) == -1)
		die("pipe: %s", strerror(errno));
	for (i = 0; i < k; i++) {
		if ((pids[i] = fork()) == -1)
			die("fork: %s", strerror(errno));
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			rw_reader(i, path, ready[1], go[0], sh);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (i = 0; i < k; i++)
		if (read(ready[0], &c, 1) != 1)
			die("rw-fair: a reader failed to start");
	close(go[1]);
	w = lock_new(path, LB_BROKER);
	srand((unsigned)now_ns());
	sleep_ns(10000000);     /* the readers under way */
	for (rep = 0; rep < o->reps; rep++) {
		samples_init(&s, (size_t)o->samples);
		held_before = 0;
		cycles0 = 0;
		for (i = 0; i < k; i++)
			cycles0 += sh->reader[i].cycles;
		start = now_ns();
		for (i = 0; i < o->samples; i++) {
			sleep_ns(RW_PAUSE_NS + (uint64_t)((double)rand() /
			    ((double)RAND_MAX + 1) * (double)RW_PAUSE_NS));
			if ((r = lb_get_holder(w, &h)) < 0)
				die("lb_get_holder %s: %s", path,
				    lb_error_name(r));
			held_before += r == 1 && h.shared;
			t0 = now_ns();
			r = lb_acquire(w, RW_TIMEOUT);
			t1 = now_ns();
			if (r == LB_ETIMEOUT)
				die("rw-fair: the writer was not granted the "
				    "lock in %.0f s among %d readers: starved",
				    RW_TIMEOUT, k);
			if (r != 0)
				die("writer: lb_acquire %s: %s: %s", path,
				    lb_error_name(r), lb_lock_error(w));
			samples_add(&s, t1 - t0);
			must_release(w);
		}
		t1 = now_ns();
		cycles = 0;
		for (i = 0; i < k; i++)
			cycles += sh->reader[i].cycles;
		report_latency("rwfair.writer_wait", rep, &s);
		report_value("rwfair.held_before", rep, (double)held_before /
		    (double)o->samples, "ratio");
		report_value("rwfair.reader_ops", rep, (double)(cycles -
		    cycles0) / ((double)(t1 - start) / 1e9), "ops/s");
		samples_free(&s);
	}
	sh->stop = 1;
	for (i = 0; i < k; i++)
		wait_child(pids[i], "rw-fair reader");
	cycles = held = 0;
	for (i = 0; i < k; i++) {
		cycles += sh->reader[i].cycles;
		held += sh->reader[i].held_ns;
	}
	if (cycles > 0)
		report_value("rwfair.reader_hold_us", 0, (double)held / 1e3 /
		    (double)cycles, "us");
	report_value("rwfair.readers", 0, (double)k, "readers");
	lb_lock_free(w);
	return 0;
}

/* One measured wait: on w, an ACQUIRE of the lock whose encoded path is
 * enc, with a timeout (so that it is queued behind the holder), and a
 * CANCEL of it, in one write; the time until the CANCEL's OK is read.
 * Dies unless the ACQUIRE was queued and then canceled. */
static uint64_t
dl_wait(struct wire *w, const char *enc)
{
	char               req[8192], line[1024], want[64];
	unsigned long long a = w->next_id, b = a + 1;
	uint64_t           t0;
	int                n;

	w->next_id += 2;
	n = snprintf(req, sizeof(req), "ACQUIRE %llu path=%s %s\n"
	    "CANCEL %llu target=%llu\n", a, enc, DL_TIMEOUT, b, a);
	if (n < 0 || (size_t)n >= sizeof(req))
		die("request too long");
	t0 = now_ns();
	if (lbw_send(&w->c, req, (size_t)n) == -1)
		die("write to the daemon: %s", strerror(errno));
	snprintf(want, sizeof(want), "ERR %llu code=ECANCELED", a);
	if (wire_reply(w, line, sizeof(line)) < 0 ||
	    strncmp(line, want, strlen(want)) != 0)
		die("deadlock-cost: the wait was not queued: %s", line);
	snprintf(want, sizeof(want), "OK %llu", b);
	if (wire_reply(w, line, sizeof(line)) < 0 || strcmp(line, want) != 0)
		die("deadlock-cost: CANCEL: %s", line);
	return now_ns() - t0;
}

/* The two measuring owners of stage_deadlock_cost: a connection that
 * holds nothing (its wait, at its queue's tail, is not searched from)
 * and one that holds a lock of its own (its wait is searched from). */
struct dl_measure {
	struct wire    w[2];
	struct samples s[2];
};

/* Measures o->samples waits (after DL_WARMUP more) of each measuring
 * owner of m, one owner after the other (the search of the one that
 * holds a lock does not run between the other's waits), on the lock
 * whose encoded path is enc, reported as deadlock.wait.NAME and
 * deadlock.held.NAME, repetition rep. */
static void
dl_series(struct dl_measure *m, const char *enc, const char *name, int rep,
    const struct bench_opts *o)
{
	char     metric[64];
	uint64_t ns;
	int      i, j;

	for (j = 0; j < 2; j++) {
		samples_init(&m->s[j], (size_t)o->samples);
		for (i = -DL_WARMUP; i < o->samples; i++) {
			ns = dl_wait(&m->w[j], enc);
			if (i >= 0)
				samples_add(&m->s[j], ns);
		}
		snprintf(metric, sizeof(metric), "deadlock.%s.%s",
		    j == 0 ? "wait" : "held", name);
		report_latency(metric, rep, &m->s[j]);
		samples_free(&m->s[j]);
	}
}

/* Waits until the lock at path has want waiters (STATUS on ctl); dies
 * after DL_WAIT_NS. */
static void
dl_waiters(struct wire *ctl, const char *path, long want)
{
	char     line[1024];
	uint64_t t0 = now_ns();

	for (;;) {
		if (wire_call(ctl, "STATUS", path, NULL, line,
		    sizeof(line)) != 0)
			die("STATUS %s: %s", path, line);
		if (wire_field(line, "waiters") == want)
			return;
		if (now_ns() - t0 > DL_WAIT_NS)
			die("deadlock-cost: %ld waiters on %s after 120 s, "
			    "not %ld", wire_field(line, "waiters"), path, want);
		sleep_ns(1000000);
	}
}

/*
 * stage_deadlock_cost: the latency of a queued wait (an ACQUIRE with a
 * timeout on a lock another connection holds, and a CANCEL of it, in one
 * write: dl_wait) by two owners, one after the other: one that holds
 * nothing, and one that holds a lock of its own, so that something could
 * wait for it and the daemon searches the wait-for graph from its wait.
 * In -r rounds: with no other wait in the daemon
 * (deadlock.{wait,held}.none); then -c N (10,000 unless given) waits are
 * queued on a second lock, by owners that hold nothing (DL_PER_CONN
 * threads of each of N / DL_PER_CONN connections), and the two owners'
 * waits are measured on the first lock, beside them (.beside), and on
 * the second, behind them (.behind: the search of the owner that holds a
 * lock walks the whole queue ahead of it); then their connections close,
 * and the two owners' waits are measured again with no other wait
 * (.after: with .none, the round's base for a ratio).
 * Also deadlock.waits (N) and deadlock.queue_s (the time to queue them).
 */
int
stage_deadlock_cost(const struct bench_opts *o)
{
	struct dl_measure m;
	struct wire       ctl, *ws;
	char              lone[4096], busy[4096], own[4096], line[1024];
	char              enc_lone[4096], enc_busy[4096], extra[64];
	long              n = o->count > 0 ? o->count : 10000, nc, i, t;
	uint64_t          t0;
	int               rep, j;

	nc = (n + DL_PER_CONN - 1) / DL_PER_CONN;
	raise_nofile(nc + 256);
	if ((ws = calloc((size_t)nc, sizeof(*ws))) == NULL)
		die("out of memory");
	path_join(lone, sizeof(lone), o->dir, "deadlock-lone");
	path_join(busy, sizeof(busy), o->dir, "deadlock-busy");
	path_join(own, sizeof(own), o->dir, "deadlock-own");
	if (lbp_encode(lone, strlen(lone), enc_lone, sizeof(enc_lone)) < 0 ||
	    lbp_encode(busy, strlen(busy), enc_busy, sizeof(enc_busy)) < 0)
		die("path too long under %s", o->dir);
	if (wire_open(&ctl, o->socket, 1) != 0)
		die("cannot connect to %s: %s", o->socket, strerror(errno));
	if (wire_call(&ctl, "ACQUIRE", lone, "timeout=0", line,
	    sizeof(line)) != 0 || wire_call(&ctl, "ACQUIRE", busy,
	    "timeout=0", line, sizeof(line)) != 0)
		die("deadlock-cost: ACQUIRE: %s", line);
	for (j = 0; j < 2; j++)
		if (wire_open(&m.w[j], o->socket, 1) != 0)
			die("cannot connect to %s: %s", o->socket,
			    strerror(errno));
	if (wire_call(&m.w[1], "ACQUIRE", own, "timeout=0", line,
	    sizeof(line)) != 0)
		die("deadlock-cost: ACQUIRE %s: %s", own, line);
	report_value("deadlock.waits", 0, (double)n, "waits");

	for (rep = 0; rep < o->reps; rep++) {
		dl_series(&m, enc_lone, "none", rep, o);

		progress("queueing %ld waits behind a holder", n);
		t0 = now_ns();
		for (i = 0; i < nc; i++)
			if (wire_open(&ws[i], o->socket, 1) != 0)
				die("cannot connect to %s: %s", o->socket,
				    strerror(errno));
		for (i = 0; i < n; i++) {
			t = i % DL_PER_CONN + 1;
			snprintf(extra, sizeof(extra), "thread=%ld timeout=inf",
			    t);
			wire_send(&ws[i / DL_PER_CONN], "ACQUIRE", busy, extra);
		}
		dl_waiters(&ctl, busy, n);
		report_value("deadlock.queue_s", rep,
		    (double)(now_ns() - t0) / 1e9, "s");

		dl_series(&m, enc_lone, "beside", rep, o);
		dl_series(&m, enc_busy, "behind", rep, o);

		for (i = 0; i < nc; i++)
			wire_close(&ws[i]);
		dl_waiters(&ctl, busy, 0);
		dl_series(&m, enc_lone, "after", rep, o);
	}
	for (j = 0; j < 2; j++)
		wire_close(&m.w[j]);
	wire_close(&ctl);
	free(ws);
	return 0;
}
