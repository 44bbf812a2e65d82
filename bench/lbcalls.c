/*
 * lbcalls.c: liblockbroker as the benchmarks call it: handles and calls
 * that must succeed, the timed acquire+release loop, and the library
 * through the broker as a lock kind of the handoff game (handoff.c).
 * Through the public API only, as an application would; built for every
 * system.
 */
#include <errno.h>
#include <string.h>

#include "bench.h"
#include "lockbroker.h"

/* method_flag: the LB_* flag of the method called name ("link" ...);
 * dies on another. */
unsigned
method_flag(const char *name)
{
	unsigned method;

	if (lb_method_parse(name, &method) != 0)
		die("no method %s", name);
	return method;
}

/* lock_new: a new handle on path with flags; dies on failure. */
lb_lock *
lock_new(const char *path, unsigned flags)
{
	lb_lock *l = lb_lock_new(path, flags);

	if (l == NULL)
		die("lb_lock_new %s: %s", path, strerror(errno));
	return l;
}

/* must_acquire: lb_acquire that must succeed. */
void
must_acquire(lb_lock *l, double timeout)
{
	int r = lb_acquire(l, timeout);

	if (r != 0)
		die("lb_acquire %s: %s: %s", lb_lock_path(l), lb_error_name(r),
		    lb_lock_error(l));
}

/* must_release: lb_release that must succeed. */
void
must_release(lb_lock *l)
{
	int r = lb_release(l);

	if (r != 0)
		die("lb_release %s: %s: %s", lb_lock_path(l), lb_error_name(r),
		    lb_lock_error(l));
}

/*
 * cycle_series: times samples uncontended must_acquire+must_release of l
 * (after warmup more, not timed) and prints them as metric's repetition
 * rep.
 * Dies when a call fails.
 */
void
cycle_series(const char *metric, lb_lock *l, int rep, int samples,
    int warmup)
{
	struct samples s;
	uint64_t       t0;
	int            i;

	samples_init(&s, (size_t)samples);
	for (i = -warmup; i < samples; i++) {
		t0 = now_ns();
		must_acquire(l, 10.0);
		must_release(l);
		if (i >= 0)
			samples_add(&s, now_ns() - t0);
	}
	report_latency(metric, rep, &s);
	samples_free(&s);
}

/* liblockbroker through the broker as a handoff_ops lock kind. */
/* A handle through the broker only, with the method o->arg names (the
 * default when NULL). */
static void *
lb_open(const char *path, const struct bench_opts *o)
{
	return lock_new(path, LB_BROKER |
	    (o->arg != NULL ? method_flag(o->arg) : 0));
}

/* Waits as long as it takes. */
static void
lb_acquire_forever(void *lock)
{
	must_acquire(lock, LB_FOREVER);
}

/* Releases; must succeed. */
static void
lb_release_it(void *lock)
{
	must_release(lock);
}

/* The waiter is queued once the broker counts a waiter. */
static int
lb_queued(void *lock, pid_t waiter)
{
	lb_holder h;
	int       r;

	(void)waiter;
	if ((r = lb_get_holder(lock, &h)) < 0)
		die("lb_get_holder: %s", lb_error_name(r));
	return r == 1 && h.waiters >= 1;
}

/* Frees the handle. */
static void
lb_close(void *lock)
{
	lb_lock_free(lock);
}

const struct handoff_ops lb_handoff_ops = {
	lb_open, lb_acquire_forever, lb_release_it, lb_queued, lb_close
};
