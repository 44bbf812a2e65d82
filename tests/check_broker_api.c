/*
 * check_broker_api.c: the API's semantics over LB_BROKER, for every
 * method: the timeout table, re-entrance and release, breaking, what
 * lb_get_holder tells, threads as owners, broker and in-process holds
 * excluding each other, a waiter behind a holder outside the broker.
 */
#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_broker.h"

/* The timeout table: LB_FOREVER waits, <= 0 tries once, > 0 waits that
 * long; NaN is LB_EINVAL. */
START_TEST(test_timeouts)
{
	static const double tries[] = { 0, -1, -INFINITY };
	unsigned        m = tl_all_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct agent    h;
	lb_lock        *lock;
	double          t0, el;
	size_t          k;

	tl_place_make(&p, "lk");
	agent_start(&h, p.path, m, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	lock = lock_new(p.path, m);
	for (k = 0; k < sizeof(tries) / sizeof(tries[0]); k++) {
		t0 = tl_now();
		ck_assert_int_eq(lb_acquire(lock, tries[k]), LB_EALREADY);
		ck_assert(tl_now() - t0 < PROMPT_S);
		assert_reason_names(lock, p.path);
	}
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire(lock, WAIT_S), LB_ETIMEOUT);
	el = tl_now() - t0;
	ck_assert_msg(el >= WAIT_MIN && el < HANG_S, "waited %.3f s", el);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_acquire(lock, NAN), LB_EINVAL);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);

	/* LB_FOREVER and > 0: granted when the holder lets go. */
	agent_send(&h, 'r', 0);
	ck_assert_int_eq(lb_acquire(lock, LB_FOREVER), 0);
	ck_assert_int_eq(agent_answer(&h, HANG_S).r, 0);
	agent_queues(&h, HANG_S, lock, 1);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(agent_answer(&h, HANG_S).r, 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_send(&h, 'a', 0);
	ck_assert_int_eq(agent_answer(&h, HANG_S).r, 0);
	t0 = tl_now();
	agent_send(&h, 'r', 0);
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert(tl_now() - t0 < HANG_S);
	ck_assert_int_eq(agent_answer(&h, HANG_S).r, 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&h);
	lock_free_clean(lock, p.dir, tl_all_methods[_i]);
}
END_TEST

/* Re-entrant without a counter: one release frees it; then
 * LB_ENOTLOCKED; release of another's lock LB_ENOTMINE (checked before
 * "not locked" is possible only when nobody holds it). */
START_TEST(test_reentrant_and_release)
{
	unsigned        m = tl_all_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct agent    h;
	lb_lock        *lock;
	uint64_t        t1, t2;
	double          t0;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_fencing_token(lock, &t1), 0);
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_acquire(lock, LB_FOREVER), 0);
	ck_assert_int_eq(lb_acquire(lock, WAIT_S), 0);
	ck_assert(tl_now() - t0 < PROMPT_S);
	ck_assert_int_eq(lb_fencing_token(lock, &t2), 0);
	ck_assert_msg(t1 == t2, "re-entrant acquire changed the token");
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	assert_reason_names(lock, p.path);

	agent_start(&h, p.path, m, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTMINE);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	agent_stop(&h);
	lock_free_clean(lock, p.dir, tl_all_methods[_i]);
}
END_TEST

/* lb_break_lock takes the lock from its holder; the holder's late release
 * is LB_ENOTMINE and leaves the new holder's lock alone. */
START_TEST(test_break_then_late_release)
{
	unsigned        m = tl_all_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct agent    h;
	lb_lock        *lock;

	tl_place_make(&p, "lk");
	agent_start(&h, p.path, m, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_break_lock(lock), 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(agent_do(&h, 'r', 0), LB_ENOTMINE);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 0);
	ck_assert_int_eq(agent_do(&h, 't', 0), LB_ENOTLOCKED);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_break_lock(lock), 0);
	agent_stop(&h);
	lock_free_clean(lock, p.dir, tl_all_methods[_i]);
}
END_TEST

/* lb_get_holder over the broker: who, since when, the hold's token (the
 * holder's own lb_fencing_token) and the number of waiters. */
START_TEST(test_holder_fields)
{
	unsigned        m = tl_all_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct agent    h, w;
	struct answer   tok;
	lb_holder       who;
	lb_lock        *lock;
	char            host[256];

	host_name(host, sizeof(host));
	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m);
	assert_no_holder(lock, &who);
	ck_assert_int_eq(who.broker, 1);
	ck_assert_int_eq(who.waiters, 0);

	agent_start(&h, p.path, m, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	agent_send(&h, 't', 0);
	tok = agent_answer(&h, HANG_S);
	ck_assert_int_eq(tok.r, 0);
	ck_assert_uint_ne(tok.token, 0);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.broker, 1);
	ck_assert_int_eq(who.pid, h.c.pid);
	ck_assert_int_eq(who.tid, h.c.pid);  /* the broker's, every method */
	ck_assert_str_eq(who.host, host);
	ck_assert_int_eq(who.uid, geteuid());
	ck_assert_msg(who.since > 0 && fabs(who.since - (double)time(NULL)) <
	    600, "since %f", who.since);
	ck_assert_msg(who.token == tok.token, "token %llu, holder's %llu",
	    (unsigned long long)who.token, (unsigned long long)tok.token);
	ck_assert_str_ne(who.unique_name, "");
	ck_assert_int_eq(who.liveness, LB_HOLDER_ALIVE);
	ck_assert_int_eq(who.waiters, 0);

	agent_start(&w, p.path, m, NULL);
	agent_queues(&w, HANG_S, lock, 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(agent_answer(&w, HANG_S).r, 0);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.pid, w.c.pid);
	ck_assert_int_eq(who.waiters, 0);
	ck_assert_msg(who.token > tok.token, "the next grant's token %llu "
	    "is not above %llu", (unsigned long long)who.token,
	    (unsigned long long)tok.token);
	agent_stop(&w);
	agent_stop(&h);
	ck_assert_int_eq(lb_get_holder(lock, &who), 0);
	lb_lock_free(lock);
}
END_TEST

/* Threads as owners: a handle made in another thread is another owner
 * (for every method, LB_PIDFILE too; LB_UNTHREADED: the process is); a
 * handle used from any thread acts as its maker's. */
START_TEST(test_threads_as_owners)
{
	unsigned        m = tl_all_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct peek     pk;
	pthread_t       t;
	lb_lock        *mine, *theirs, *theirs_too, *un1, *un2[2];

	tl_place_make(&p, "lk");
	mine = lock_new(p.path, m);
	new_in_thread(p.path, m, &theirs, &theirs_too);

	ck_assert_int_eq(lb_acquire(mine, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(theirs), 0);
	ck_assert_int_eq(lb_acquire(theirs, 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(theirs), LB_ENOTMINE);
	ck_assert_int_eq(lb_release(mine), 0);
	ck_assert_int_eq(lb_acquire(theirs, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(theirs_too), 1);
	ck_assert_int_eq(lb_i_am_locking(mine), 0);
	pk.lock = theirs;
	ck_assert_int_eq(pthread_create(&t, NULL, peek_and_release, &pk), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(pk.mine, 1);
	ck_assert_int_eq(pk.released, 0);
	ck_assert_int_eq(lb_is_locked(mine), 0);

	/* LB_UNTHREADED: one owner across threads. */
	un1 = lock_new(p.path, m | LB_UNTHREADED);
	new_in_thread(p.path, m | LB_UNTHREADED, &un2[0], &un2[1]);
	ck_assert_int_eq(lb_acquire(un1, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(un2[0]), 1);
	ck_assert_int_eq(lb_release(un2[0]), 0);
	ck_assert_int_eq(lb_release(un1), LB_ENOTLOCKED);
	lb_lock_free(un2[1]);
	lb_lock_free(un2[0]);
	lb_lock_free(un1);
	lb_lock_free(theirs_too);
	lb_lock_free(theirs);
	lock_free_clean(mine, p.dir, tl_all_methods[_i]);
}
END_TEST

/* Broker holds and in-process holds (another process, LB_LOCAL) exclude
 * each other both ways; a broker waiter gets a lock an in-process holder
 * lets go. */
START_TEST(test_broker_and_local_exclude)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct agent    loc;
	lb_lock        *lock;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m | LB_BROKER);
	agent_start(&loc, p.path, m | LB_LOCAL, NULL);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(agent_do(&loc, 'a', 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&loc, 'l', 0), 1);
	ck_assert_int_eq(agent_do(&loc, 'r', 0), LB_ENOTMINE);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(agent_do(&loc, 'a', 0), 0);
	ck_assert_int_eq(agent_do(&loc, 't', 0), LB_EFAILED);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	agent_send(&loc, 'r', 0);
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert_int_eq(agent_answer(&loc, HANG_S).r, 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&loc);
	lock_free_clean(lock, p.dir, m);
}
END_TEST

/*
 * A broker waiter behind a holder outside the broker (an in-process
 * LB_LOCAL holder that keeps the lock), while something else happens in
 * the lock's directory: LB_ETIMEOUT on time, and the daemon serves other
 * clients meanwhile; once the holder lets go, the waiter gets the lock.
 * (A private daemon: this test has wedged one.)
 */
struct timed_acquire {
	lb_lock *lock;
	double   timeout;
	int      r;
	double   took;
};

static void *
timed_acquire_run(void *arg)
{
	struct timed_acquire *ta = arg;
	double                t0 = tl_now();

	ta->r = lb_acquire(ta->lock, ta->timeout);
	ta->took = tl_now() - t0;
	return NULL;
}

START_TEST(test_waiter_behind_local_holder)
{
	unsigned             m = tl_all_methods[_i];
	struct timed_acquire ta;
	struct tl_daemon     d;
	struct tl_place      p;
	struct agent         loc;
	pthread_t            t;
	lb_lock             *lock;
	char                 reply[512], dir[PATH_MAX], other[PATH_MAX];
	double               t0;
	int                  fd;

	private_daemon(&d, dir);
	tl_place_make(&p, "lk");
	tl_path_join(other, sizeof(other), p.dir, "unrelated");
	agent_start(&loc, p.path, m | LB_LOCAL, d.socket);
	ck_assert_int_eq(agent_do(&loc, 'a', 0), 0);
	lock = lock_new(p.path, m | LB_BROKER);
	ta.lock = lock;
	ta.timeout = 1.0;
	ck_assert_int_eq(pthread_create(&t, NULL, timed_acquire_run, &ta), 0);
	tl_sleep(0.3);
	/* Some other process's business in the same directory. */
	ck_assert_int_ne(fd = open(other, O_WRONLY | O_CREAT, 0644), -1);
	close(fd);
	ck_assert_int_eq(unlink(other), 0);
	t0 = tl_now();
	ck_assert_msg(tl_exchange(d.socket, "HELLO 1 version=1\nPING 2\n",
	    "OK 2", reply, sizeof(reply), HANDOFF_S) == 0, "the daemon did "
	    "not answer another client within %g s while a waiter waited "
	    "(%.3f s)", HANDOFF_S, tl_now() - t0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(ta.r == LB_ETIMEOUT, "acquire(1.0): %s (%s)",
	    lb_error_name(ta.r), lb_lock_error(lock));
	ck_assert_msg(ta.took >= 1.0 - 0.05 && ta.took < 1.0 + HANDOFF_S,
	    "acquire(1.0) returned after %.3f s (%s)", ta.took,
	    lb_lock_error(lock));
	agent_send(&loc, 'r', 0);
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert_int_eq(agent_answer(&loc, HANG_S).r, 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&loc);
	lock_free_clean(lock, p.dir, m);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The case's tests, in the order they run. */
TCase *
broker_api_case(void)
{
	TCase *tc = broker_case("api", 60);

	tcase_add_loop_test(tc, test_timeouts, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_reentrant_and_release, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_break_then_late_release, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_holder_fields, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_threads_as_owners, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_broker_and_local_exclude, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_waiter_behind_local_holder, 0,
	    TL_NMETHODS);
	return tc;
}
