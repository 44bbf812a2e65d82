/*
 * check_broker_cancel.c: ending a waiting acquire from outside:
 * lb_lock_cancel from another thread and the interrupt hook
 * (lb_lock_set_interrupt), through the daemon (the request leaves its
 * queue: the waiter behind is served next, STATUS and LIST count no
 * waiter) and in-process; a waiter whose hook says go on keeps its place;
 * a grant that crosses the cancel leaves the lock held and reported
 * held, never held and reported not.
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_broker.h"

/* A thread of this process waiting in lb_acquire. */
struct waiter {
	pthread_t t;
	lb_lock  *lock;
	double    timeout;
	int       r;            /* lb_acquire's answer */
	double    at;           /* when it came (tl_now) */
};

static void *
waiter_run(void *arg)
{
	struct waiter *w = arg;

	w->r = lb_acquire(w->lock, w->timeout);
	w->at = tl_now();
	return NULL;
}

/* Starts a thread that calls lb_acquire(lock, timeout). */
static void
waiter_start(struct waiter *w, lb_lock *lock, double timeout)
{
	memset(w, 0, sizeof(*w));
	w->lock = lock;
	w->timeout = timeout;
	ck_assert_int_eq(pthread_create(&w->t, NULL, waiter_run, w), 0);
}

/* Joins the waiter; its lb_acquire's answer. */
static int
waiter_join(struct waiter *w)
{
	ck_assert_int_eq(pthread_join(w->t, NULL), 0);
	return w->r;
}

/* What LIST says of one lock (list_find). */
struct listed {
	const char *path;
	int         found;
	unsigned    waiters;
	pid_t       pid;
};

static int
list_find(const lb_list_entry *e, void *arg)
{
	struct listed *l = arg;

	if (strcmp(e->path, l->path) == 0) {
		l->found = 1;
		l->waiters = e->waiters;
		l->pid = e->pid;
	}
	return 0;
}

/* The number of waiters LIST counts on the lock at path (its directory
 * resolved, as the daemon names it); 0 also when LIST does not show the
 * lock. */
static unsigned
list_waiters(const struct tl_place *p)
{
	struct listed l;
	char          dir[PATH_MAX], path[PATH_MAX + 8], why[256];

	ck_assert_ptr_nonnull(realpath(p->dir, dir));
	snprintf(path, sizeof(path), "%s/%s", dir, strrchr(p->path, '/') + 1);
	memset(&l, 0, sizeof(l));
	l.path = path;
	ck_assert_msg(lb_list(list_find, &l, NULL, why, sizeof(why)) == 0,
	    "LIST: %s", why);
	return l.found ? l.waiters : 0;
}

/* A lock on a place of its own held by agent h, waited for by w, a
 * thread of this process (through lock, whose interrupt hook is check,
 * when not NULL), and by agent behind, queued after w; probe another
 * handle on the lock. */
struct queue {
	struct tl_place p;
	struct agent    h, behind;
	struct waiter   w;
	lb_lock        *lock, *probe;
};

static void
queue_make(struct queue *q, int (*check)(void *), void *arg)
{
	tl_place_make(&q->p, "lk");
	q->lock = lock_new(q->p.path, LB_BROKER);
	q->probe = lock_new(q->p.path, LB_BROKER);
	if (check != NULL)
		ck_assert_int_eq(lb_lock_set_interrupt(q->lock, check, arg),
		    0);
	agent_start(&q->h, q->p.path, LB_BROKER, NULL);
	agent_start(&q->behind, q->p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&q->h, 'a', 0), 0);
	waiter_start(&q->w, q->lock, LB_FOREVER);
	wait_for_waiters(q->probe, 1);
	agent_queues(&q->behind, LB_FOREVER, q->probe, 2);
}

/* Ends q once behind holds the lock: behind releases, the agents stop,
 * the handles are freed; nothing is left queued or on disk. */
static void
queue_end(struct queue *q)
{
	ck_assert_int_eq(agent_answer(&q->behind, HANG_S).r, 0);
	ck_assert_int_eq(agent_do(&q->behind, 'r', 0), 0);
	agent_stop(&q->behind);
	agent_stop(&q->h);
	ck_assert_uint_eq(list_waiters(&q->p), 0);
	lb_lock_free(q->probe);
	lb_lock_free(q->lock);
	ck_assert_int_eq(tl_count(q->p.dir), 0);
}

/* Every lb_lock_cancel ends a waiting broker acquire: LB_ECANCELED at
 * once, nothing held, its request gone from the daemon's queue (STATUS
 * and LIST count only the waiter behind, who is served next). */
START_TEST(test_cancel_broker_wait)
{
	struct queue q;
	double       t0;

	queue_make(&q, NULL, NULL);
	ck_assert_uint_eq(list_waiters(&q.p), 2);
	t0 = tl_now();
	ck_assert_int_eq(lb_lock_cancel(q.lock), 1);
	ck_assert_int_eq(waiter_join(&q.w), LB_ECANCELED);
	ck_assert_msg(q.w.at - t0 < PROMPT_S, "canceled after %.3f s",
	    q.w.at - t0);
	ck_assert_msg(strstr(lb_lock_error(q.lock), "lb_lock_cancel") !=
	    NULL, "reason: %s", lb_lock_error(q.lock));
	wait_for_waiters(q.probe, 1);
	ck_assert_uint_eq(list_waiters(&q.p), 1);
	ck_assert_int_eq(lb_i_am_locking(q.lock), 0);
	ck_assert_int_eq(agent_do(&q.h, 'r', 0), 0);
	queue_end(&q);
}
END_TEST

/* lb_lock_cancel ends an in-process wait, before its next try, and
 * leaves nothing on disk: the holder's release then frees the lock. */
START_TEST(test_cancel_local_wait)
{
	struct tl_place p;
	struct agent    h;
	struct waiter   w;
	lb_lock        *lock;
	double          t0;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_LOCAL);
	agent_start(&h, p.path, LB_LOCAL, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	waiter_start(&w, lock, LB_FOREVER);
	tl_sleep(WAIT_S);
	t0 = tl_now();
	ck_assert_int_eq(lb_lock_cancel(lock), 1);
	ck_assert_int_eq(waiter_join(&w), LB_ECANCELED);
	ck_assert_msg(w.at - t0 < PROMPT_S, "canceled after %.3f s",
	    w.at - t0);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(agent_do(&h, 'l', 0), 0);
	ck_assert_int_eq(tl_count(p.dir), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&h);
	lb_lock_free(lock);
}
END_TEST

/* A cancel with no acquire in progress does nothing, and is not
 * remembered for the next acquire. */
START_TEST(test_cancel_nothing_in_progress)
{
	struct tl_place p;
	lb_lock        *lock;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	ck_assert_int_eq(lb_lock_cancel(NULL), LB_EINVAL);
	ck_assert_int_eq(lb_lock_set_interrupt(NULL, NULL, NULL), LB_EINVAL);
	ck_assert_int_eq(lb_lock_cancel(lock), 0);
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* An interrupt hook's record: it says stop at its stop_after-th call. */
struct hook {
	pthread_t seen;         /* the thread of its first call */
	int       calls;
	int       stop_after;   /* 0: never */
	int       elsewhere;    /* calls from another thread than the first */
	double    first;        /* when it was first called */
};

static int
hook_check(void *arg)
{
	struct hook *k = arg;

	if (k->calls++ == 0) {
		k->first = tl_now();
		k->seen = pthread_self();
	} else if (!pthread_equal(pthread_self(), k->seen))
		k->elsewhere++;
	return k->stop_after != 0 && k->calls >= k->stop_after;
}

/* The hook ends a waiting acquire, called by the waiting thread about
 * every 50 ms (not at once: an acquire that does not wait never calls
 * it), through the daemon (its request withdrawn) and in-process. */
static void
hook_ends_wait(unsigned transport)
{
	struct tl_place p;
	struct agent    h;
	struct hook     k;
	lb_lock        *lock, *probe;
	double          t0;

	tl_place_make(&p, "lk");
	memset(&k, 0, sizeof(k));
	k.stop_after = 3;
	lock = lock_new(p.path, transport);
	probe = lock_new(p.path, transport);
	ck_assert_int_eq(lb_lock_set_interrupt(lock, hook_check, &k), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(k.calls, 0);
	agent_start(&h, p.path, transport, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire(lock, LB_FOREVER), LB_ECANCELED);
	ck_assert_int_eq(k.calls, 3);
	ck_assert(pthread_equal(k.seen, pthread_self()));
	ck_assert_int_eq(k.elsewhere, 0);
	ck_assert_msg(k.first - t0 >= 0.03, "first called after %.3f s",
	    k.first - t0);
	ck_assert_msg(tl_now() - t0 < PROMPT_S, "interrupted after %.3f s",
	    tl_now() - t0);
	ck_assert_msg(strstr(lb_lock_error(lock), "interrupt hook") != NULL,
	    "reason: %s", lb_lock_error(lock));
	if (transport == LB_BROKER) {
		wait_for_waiters(probe, 0);
		ck_assert_uint_eq(list_waiters(&p), 0);
	}
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(lb_is_locked(probe), 0);
	agent_stop(&h);
	lb_lock_free(probe);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}

START_TEST(test_hook_ends_broker_wait)
{
	hook_ends_wait(LB_BROKER);
}
END_TEST

START_TEST(test_hook_ends_local_wait)
{
	hook_ends_wait(LB_LOCAL);
}
END_TEST

/* A hook that says go on, called many times by the waiting thread, costs
 * the waiter nothing: it keeps its place in the daemon's queue (served
 * before the waiter that came after it) and gets the lock. */
START_TEST(test_hook_keeps_place)
{
	struct queue q;
	struct hook  k;

	memset(&k, 0, sizeof(k));
	queue_make(&q, hook_check, &k);
	tl_sleep(WAIT_S);
	ck_assert_int_eq(agent_do(&q.h, 'r', 0), 0);
	ck_assert_int_eq(waiter_join(&q.w), 0);
	ck_assert_msg(!agent_ready(&q.behind, 0.05), "the waiter behind was "
	    "served before the one ahead released");
	ck_assert_msg(k.calls >= 3, "the hook was called %d times", k.calls);
	ck_assert(pthread_equal(k.seen, q.w.t));
	ck_assert_int_eq(k.elsewhere, 0);
	ck_assert_int_eq(lb_i_am_locking(q.lock), 1);
	ck_assert_int_eq(lb_release(q.lock), 0);
	queue_end(&q);
}
END_TEST

#define CROSS_ROUNDS 300

/* The grant and the cancel cross, round after round, the cancel made
 * from 0.5 ms before to 0.5 ms after the holder is told to release (the
 * two travel about as fast): each round ends either with lb_acquire 0 and the lock held
 * (lb_i_am_locking 1), or with LB_ECANCELED and the lock free; never held
 * but reported not, and no waiter is left at the daemon. */
START_TEST(test_cancel_crosses_grant)
{
	struct tl_place p;
	struct agent    h;
	struct waiter   w;
	lb_holder       who;
	lb_lock        *lock, *probe;
	double          lag;
	int             i, r, granted = 0, canceled = 0;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	probe = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	for (i = 0; i < CROSS_ROUNDS; i++) {
		ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
		waiter_start(&w, lock, LB_FOREVER);
		wait_for_waiters(probe, 1);
		lag = (i % 11 - 5) * 0.0001;
		if (lag < 0) {
			lb_lock_cancel(lock);
			tl_sleep(-lag);
			agent_send(&h, 'r', 0);
		} else {
			agent_send(&h, 'r', 0);
			tl_sleep(lag);
			lb_lock_cancel(lock);
		}
		r = waiter_join(&w);
		ck_assert_int_eq(agent_answer(&h, HANG_S).r, 0);
		if (r == 0) {
			granted++;
			ck_assert_msg(lb_i_am_locking(lock) == 1, "round %d: "
			    "granted but not held", i);
			ck_assert_int_eq(lb_release(lock), 0);
		} else {
			canceled++;
			ck_assert_msg(r == LB_ECANCELED, "round %d: %s (%s)", i,
			    lb_error_name(r), lb_lock_error(lock));
			ck_assert_msg(lb_i_am_locking(lock) == 0, "round %d: "
			    "canceled but held", i);
		}
		ck_assert_int_eq(lb_get_holder(probe, &who), 0);
		ck_assert_msg(who.waiters == 0, "round %d: %u waiters left",
		    i, who.waiters);
	}
	fprintf(stderr, "check_broker: grant and cancel crossed %d times: "
	    "%d granted, %d canceled\n", CROSS_ROUNDS, granted, canceled);
	agent_stop(&h);
	lb_lock_free(probe);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

TCase *
broker_cancel_case(void)
{
	TCase *tc = broker_case("cancel", 120);

	tcase_add_test(tc, test_cancel_broker_wait);
	tcase_add_test(tc, test_cancel_local_wait);
	tcase_add_test(tc, test_cancel_nothing_in_progress);
	tcase_add_test(tc, test_hook_ends_broker_wait);
	tcase_add_test(tc, test_hook_ends_local_wait);
	tcase_add_test(tc, test_hook_keeps_place);
	tcase_add_test(tc, test_cancel_crosses_grant);
	return tc;
}
