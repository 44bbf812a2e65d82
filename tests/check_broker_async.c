/*
 * check_broker_async.c: the asynchronous acquire (lb_acquire_start,
 * lb_lock_fd, lb_acquire_finish) and lb_acquire_fresh, through the daemon
 * and in-process: no thread waits, the descriptor becomes readable when
 * the daemon's answer comes (or a cancel), timeouts and one tries as
 * lb_acquire's, lb_lock_cancel withdraws the request (the waiter behind
 * is served next; STATUS and LIST count no waiter), a handle freed with
 * one in progress leaves nothing queued; and whether each grant was fresh
 * or re-entrant, also of a shared lock (the asynchronous acquire itself
 * is exclusive).
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_broker.h"

/* Whether fd becomes readable within seconds. */
static int
readable(int fd, double seconds)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int           r;

	r = poll(&p, 1, (int)(seconds * 1000));
	ck_assert_int_ge(r, 0);
	return r == 1 && (p.revents & POLLIN) != 0;
}

/* Runs lock's asynchronous acquire, begun with start's answer r, as an
 * event loop would: waits for its descriptor (or the time finish said)
 * and finishes, until the outcome, which it returns; *looks counts the
 * calls of lb_acquire_finish (NULL: not counted).  Asserts that it ends
 * within HANG_S. */
static int
run_async(lb_lock *lock, int r, unsigned *looks)
{
	double again = 0, end = tl_now() + HANG_S;
	int    fd = lb_lock_fd(lock);

	ck_assert_msg(fd >= 0, "lb_lock_fd: %d %s", fd, lb_lock_error(lock));
	while (r == LB_INPROGRESS) {
		ck_assert_msg(tl_now() < end, "the acquire did not end");
		(void)readable(fd, again < 0.2 ? again : 0.2);
		r = lb_acquire_finish(lock, &again);
		ck_assert(r != LB_INPROGRESS || again >= 0);
		if (looks != NULL)
			(*looks)++;
	}
	return r;
}

/* Through the daemon: the acquire goes on while another holds the lock,
 * its descriptor quiet and finish saying so (no time to call again: the
 * descriptor tells); the holder's release makes the descriptor readable
 * and finish takes the lock, fresh.  Started again, the re-entrant
 * acquire is granted at once, not fresh; the release frees the lock. */
START_TEST(test_async_broker_grant)
{
	struct tl_place p;
	struct agent    h;
	lb_lock        *lock, *probe;
	double          again = 0;
	int             fd, r;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	probe = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(lb_lock_fd(lock), LB_EINVAL);
	ck_assert_int_eq(lb_acquire_finish(lock, &again), LB_EINVAL);
	ck_assert_int_eq(lb_acquire_start(lock, LB_FOREVER), LB_INPROGRESS);
	ck_assert_int_eq(lb_acquire_start(lock, LB_FOREVER), LB_EINVAL);
	ck_assert_msg(strstr(lb_lock_error(lock), "in progress") != NULL,
	    "reason: %s", lb_lock_error(lock));
	wait_for_waiters(probe, 1);
	fd = lb_lock_fd(lock);
	ck_assert_int_ge(fd, 0);
	/* Whatever the descriptor said so far (the ACQUIRE's way out), the
	 * answer is not there: the lock is held. */
	ck_assert_int_eq(lb_acquire_finish(lock, &again), LB_INPROGRESS);
	ck_assert(isinf(again));
	ck_assert(!readable(fd, 0));
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_msg(readable(fd, HANG_S), "the grant did not make the "
	    "descriptor readable");
	ck_assert_int_eq(lb_acquire_finish(lock, &again), 0);
	ck_assert_int_eq(lb_acquire_fresh(lock), 1);
	ck_assert_int_eq(lb_acquire_fresh(probe), LB_EINVAL);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_acquire_finish(lock, &again), LB_EINVAL);
	/* Re-entrant: the owner holds it already. */
	r = lb_acquire_start(lock, LB_FOREVER);
	ck_assert_int_eq(run_async(lock, r, NULL), 0);
	ck_assert_int_eq(lb_acquire_fresh(lock), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_acquire_fresh(lock), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_is_locked(probe), 0);
	/* The same descriptor for the next one. */
	r = lb_acquire_start(lock, 0);
	ck_assert_int_eq(run_async(lock, r, NULL), 0);
	ck_assert_int_eq(lb_lock_fd(lock), fd);
	ck_assert_int_eq(lb_acquire_fresh(lock), 1);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&h);
	lb_lock_free(probe);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* Through the daemon, its timeout is the daemon's: LB_ETIMEOUT after
 * the time asked (not before), LB_EALREADY for one try; nothing held or
 * queued after either. */
START_TEST(test_async_broker_timeouts)
{
	struct tl_place p;
	struct agent    h;
	lb_lock        *lock, *probe;
	double          t0;
	int             r;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	probe = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	t0 = tl_now();
	r = lb_acquire_start(lock, WAIT_S);
	ck_assert_int_eq(run_async(lock, r, NULL), LB_ETIMEOUT);
	ck_assert_msg(tl_now() - t0 >= WAIT_MIN, "timed out after %.3f s",
	    tl_now() - t0);
	r = lb_acquire_start(lock, 0);
	ck_assert_int_eq(run_async(lock, r, NULL), LB_EALREADY);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	wait_for_waiters(probe, 0);
	ck_assert_int_eq(lb_acquire_start(lock, NAN), LB_EINVAL);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_stop(&h);
	lb_lock_free(probe);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* lb_lock_cancel withdraws an asynchronous acquire waiting at the daemon:
 * the descriptor becomes readable, finish ends it LB_ECANCELED, nothing
 * is held, and the agent queued behind it is the one the holder's
 * release serves. */
START_TEST(test_async_broker_cancel)
{
	struct tl_place p;
	struct agent    h, behind;
	lb_lock        *lock, *probe;
	int             r;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	probe = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	agent_start(&behind, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(lb_acquire_start(lock, LB_FOREVER), LB_INPROGRESS);
	wait_for_waiters(probe, 1);
	agent_queues(&behind, LB_FOREVER, probe, 2);
	ck_assert_int_eq(lb_acquire_finish(lock, NULL), LB_INPROGRESS);
	ck_assert_int_eq(lb_lock_cancel(lock), 1);
	ck_assert(readable(lb_lock_fd(lock), HANG_S));
	r = run_async(lock, LB_INPROGRESS, NULL);
	ck_assert_int_eq(r, LB_ECANCELED);
	ck_assert_msg(strstr(lb_lock_error(lock), "lb_lock_cancel") !=
	    NULL, "reason: %s", lb_lock_error(lock));
	wait_for_waiters(probe, 1);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(agent_answer(&behind, HANG_S).r, 0);
	ck_assert_int_eq(agent_do(&behind, 'r', 0), 0);
	/* Nothing remembered: the next one takes the free lock. */
	r = lb_acquire_start(lock, LB_FOREVER);
	ck_assert_int_eq(run_async(lock, r, NULL), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&behind);
	agent_stop(&h);
	lb_lock_free(probe);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* A handle freed (or forgotten) with an asynchronous acquire in progress
 * withdraws it: no waiter stays queued, and the holder's release leaves
 * the lock free. */
START_TEST(test_async_broker_freed)
{
	struct tl_place p;
	struct agent    h;
	lb_lock        *lock, *probe;

	tl_place_make(&p, "lk");
	probe = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	lock = lock_new(p.path, LB_BROKER);
	ck_assert_int_eq(lb_acquire_start(lock, LB_FOREVER), LB_INPROGRESS);
	wait_for_waiters(probe, 1);
	lb_lock_free(lock);
	wait_for_waiters(probe, 0);
	lock = lock_new(p.path, LB_BROKER);
	ck_assert_int_eq(lb_acquire_start(lock, LB_FOREVER), LB_INPROGRESS);
	wait_for_waiters(probe, 1);
	lb_lock_forget(lock);
	wait_for_waiters(probe, 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(lb_is_locked(probe), 0);
	agent_stop(&h);
	lb_lock_free(probe);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* In-process: the acquire is polled, finish giving the time of its next
 * try (never more than 50 ms ahead); the holder's release lets a later
 * try take it, fresh; a timeout and a cancel end it as lb_acquire's do,
 * nothing left on disk. */
START_TEST(test_async_local)
{
	struct tl_place p;
	struct agent    h;
	lb_lock        *lock;
	double          again = 0, t0;
	int             fd, k, r;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_LOCAL);
	agent_start(&h, p.path, LB_LOCAL, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(lb_acquire_start(lock, LB_FOREVER), LB_INPROGRESS);
	fd = lb_lock_fd(lock);
	ck_assert_int_ge(fd, 0);
	for (k = 0; k < 10; k++) {
		ck_assert_int_eq(lb_acquire_finish(lock, &again),
		    LB_INPROGRESS);
		ck_assert_msg(again >= 0 && again <= 0.05, "again %g", again);
		(void)readable(fd, again);
	}
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(run_async(lock, LB_INPROGRESS, NULL), 0);
	ck_assert_int_eq(lb_acquire_fresh(lock), 1);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	r = lb_acquire_start(lock, LB_FOREVER);
	ck_assert_int_eq(r, 0);         /* its own: at once */
	ck_assert_int_eq(lb_acquire_fresh(lock), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	/* Timeout, one try, cancel. */
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	t0 = tl_now();
	r = lb_acquire_start(lock, WAIT_S);
	ck_assert_int_eq(run_async(lock, r, NULL), LB_ETIMEOUT);
	ck_assert_msg(tl_now() - t0 >= WAIT_MIN, "timed out after %.3f s",
	    tl_now() - t0);
	ck_assert_int_eq(lb_acquire_start(lock, 0), LB_EALREADY);
	ck_assert_int_eq(lb_acquire_start(lock, LB_FOREVER), LB_INPROGRESS);
	ck_assert_int_eq(lb_lock_cancel(lock), 1);
	ck_assert(readable(fd, 0));
	ck_assert_int_eq(lb_acquire_finish(lock, &again), LB_ECANCELED);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	/* A handle freed while polling leaves nothing. */
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(lb_acquire_start(lock, LB_FOREVER), LB_INPROGRESS);
	lb_lock_free(lock);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(agent_do(&h, 'l', 0), 0);
	agent_stop(&h);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* Two threads of one owner (one handle, shared) acquire through the
 * daemon at once, round after round: exactly one of the two grants of a
 * round is fresh, whatever order their answers came in; releasing only
 * a fresh one frees the lock. */
struct pair {
	lb_lock *lock;
	int      r, fresh;
};

static void *
pair_run(void *arg)
{
	struct pair *w = arg;

	w->r = lb_acquire(w->lock, HANG_S);
	w->fresh = w->r == 0 ? lb_acquire_fresh(w->lock) : -1;
	return NULL;
}

START_TEST(test_fresh_between_threads)
{
	struct tl_place p;
	struct pair     w[2];
	pthread_t       t[2];
	lb_lock        *lock;
	int             k, j;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER | LB_UNTHREADED);
	for (k = 0; k < 50; k++) {
		for (j = 0; j < 2; j++) {
			w[j].lock = lock;
			ck_assert_int_eq(pthread_create(&t[j], NULL, pair_run,
			    &w[j]), 0);
		}
		for (j = 0; j < 2; j++) {
			ck_assert_int_eq(pthread_join(t[j], NULL), 0);
			ck_assert_int_eq(w[j].r, 0);
		}
		ck_assert_msg(w[0].fresh + w[1].fresh == 1, "round %d: fresh "
		    "%d and %d", k, w[0].fresh, w[1].fresh);
		ck_assert_int_eq(lb_release(lock), 0);
		ck_assert_int_eq(lb_is_locked(lock), 0);
	}
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* Shared locks meet the asynchronous acquire: lb_acquire_fresh tells of
 * lb_acquire_shared as of lb_acquire (fresh, then re-entrant), and not of
 * an upgrade or a downgrade; the asynchronous acquire is exclusive: of an
 * owner that holds shared it is refused, pointing to lb_upgrade (the hold
 * still shared: a reader joins), and while a reader holds it waits until
 * the reader is gone, then excludes readers. */
START_TEST(test_async_and_shared)
{
	struct tl_place p;
	struct agent    a;
	lb_lock        *lock, *probe;
	int             r;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	probe = lock_new(p.path, LB_BROKER);
	agent_start(&a, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), 0);
	ck_assert_int_eq(lb_acquire_fresh(lock), 1);
	ck_assert_int_eq(lb_upgrade(lock, 0), 0);
	ck_assert_int_eq(lb_acquire_fresh(lock), 1);
	ck_assert_int_eq(lb_downgrade(lock), 0);
	ck_assert_int_eq(lb_acquire_fresh(lock), 1);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), 0);
	ck_assert_int_eq(lb_acquire_fresh(lock), 0);
	r = lb_acquire_start(lock, 0);
	ck_assert_int_eq(run_async(lock, r, NULL), LB_EFAILED);
	ck_assert_ptr_nonnull(strstr(lb_lock_error(lock), "UPGRADE"));
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);   /* shared still */
	ck_assert_int_eq(lb_release(lock), 0);
	/* The reader holds: the asynchronous acquire waits for it. */
	r = lb_acquire_start(lock, LB_FOREVER);
	ck_assert_int_eq(r, LB_INPROGRESS);
	wait_for_waiters(probe, 1);
	ck_assert_int_eq(lb_acquire_finish(lock, NULL), LB_INPROGRESS);
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	ck_assert_int_eq(run_async(lock, r, NULL), 0);
	ck_assert_int_eq(lb_acquire_fresh(lock), 1);
	ck_assert_int_eq(agent_do(&a, 's', 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_is_locked(probe), 0);
	agent_stop(&a);
	lb_lock_free(probe);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

TCase *
broker_async_case(void)
{
	TCase *tc = broker_case("async", 120);

	tcase_add_test(tc, test_async_broker_grant);
	tcase_add_test(tc, test_async_broker_timeouts);
	tcase_add_test(tc, test_async_broker_cancel);
	tcase_add_test(tc, test_async_broker_freed);
	tcase_add_test(tc, test_async_local);
	tcase_add_test(tc, test_fresh_between_threads);
	tcase_add_test(tc, test_async_and_shared);
	return tc;
}
