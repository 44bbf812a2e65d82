/*
 * check_broker_owners.c: ownership through the broker: threads of one
 * process as owners (counting under the lock, transports mixed), probes
 * that free their handles, timeouts beyond what the clocks count.
 */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_broker.h"

#define NCOUNTERS 4

/* A thread that counts under the lock with a handle of its own. */
struct counter_thread {
	const char   *path;
	unsigned      flags;
	int           rounds;
	int          *counter;
	int          *inside;
	char          bad[200];
};

static void *
counter_run(void *arg)
{
	struct counter_thread *ct = arg;
	struct timespec        pause = { 0, 200 * 1000 };
	lb_lock               *lock;
	int                    k, r = 0, v, n;

	if ((lock = lb_lock_new(ct->path, ct->flags)) == NULL) {
		snprintf(ct->bad, sizeof(ct->bad), "lb_lock_new: %s",
		    strerror(errno));
		return NULL;
	}
	for (k = 0; k < ct->rounds; k++) {
		if ((r = lb_acquire(lock, HANG_S)) != 0)
			break;
		if ((n = __atomic_add_fetch(ct->inside, 1, __ATOMIC_SEQ_CST)) !=
		    1 && ct->bad[0] == '\0')
			snprintf(ct->bad, sizeof(ct->bad), "round %d: %d "
			    "owners inside", k, n);
		v = __atomic_load_n(ct->counter, __ATOMIC_SEQ_CST);
		nanosleep(&pause, NULL);
		__atomic_store_n(ct->counter, v + 1, __ATOMIC_SEQ_CST);
		__atomic_sub_fetch(ct->inside, 1, __ATOMIC_SEQ_CST);
		if ((r = lb_release(lock)) != 0)
			break;
	}
	if (r < 0 && ct->bad[0] == '\0')
		snprintf(ct->bad, sizeof(ct->bad), "round %d: %s (%s)", k,
		    lb_error_name(r), lb_lock_error(lock));
	lb_lock_free(lock);
	return NULL;
}

/* Runs NCOUNTERS counting threads on one fresh lock, thread k with
 * flags[k % nflags]: the count is exact, no two are inside at once, no
 * call fails. */
static void
count_in_threads(unsigned method, const unsigned *flags, int nflags)
{
	struct counter_thread ct[NCOUNTERS];
	struct tl_place       p;
	pthread_t             t[NCOUNTERS];
	int                   counter = 0, inside = 0, k;
	int                   rounds = method == LB_SQLITE ? 10 : 30;

	tl_place_make(&p, "lk");
	for (k = 0; k < NCOUNTERS; k++) {
		memset(&ct[k], 0, sizeof(ct[k]));
		ct[k].path = p.path;
		ct[k].flags = method | flags[k % nflags];
		ct[k].rounds = rounds;
		ct[k].counter = &counter;
		ct[k].inside = &inside;
		ck_assert_int_eq(pthread_create(&t[k], NULL, counter_run,
		    &ct[k]), 0);
	}
	for (k = 0; k < NCOUNTERS; k++)
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
	for (k = 0; k < NCOUNTERS; k++)
		ck_assert_msg(ct[k].bad[0] == '\0', "thread %d (%#x): %s", k,
		    ct[k].flags, ct[k].bad);
	ck_assert_int_eq(counter, NCOUNTERS * rounds);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(method));
}

/* Threads of one process, each with its own handle, through the broker:
 * separate owners for every method (pidfile too). */
START_TEST(test_threads_exclude)
{
	static const unsigned broker[] = { LB_BROKER };

	count_in_threads(tl_all_methods[_i], broker, 1);
}
END_TEST

/* The same with the threads' transports mixed: through the broker and
 * in-process at once. */
START_TEST(test_threads_exclude_mixed)
{
	static const unsigned mixed[] = { LB_BROKER, LB_LOCAL, 0 };

	count_in_threads(tl_all_methods[_i], mixed, 3);
}
END_TEST

/* holder_excludes: holder takes the lock; other, another owner's handle,
 * neither gets it nor releases it, and holder's release frees it. */
static void
holder_excludes(lb_lock *holder, lb_lock *other)
{
	ck_assert_int_eq(lb_acquire(holder, 0), 0);
	ck_assert_int_eq(lb_acquire(other, 0), LB_EALREADY);
	ck_assert_int_eq(lb_i_am_locking(other), 0);
	ck_assert_int_eq(lb_release(other), LB_ENOTMINE);
	ck_assert_int_eq(lb_i_am_locking(holder), 1);
	ck_assert_int_eq(lb_release(holder), 0);
}

/* A thread holds in-process, another asks the broker, and the other way
 * round: the second never gets the lock while the first holds it. */
START_TEST(test_threads_local_and_broker)
{
	struct tl_place p;
	lb_lock        *loc, *brk, *loc2, *brk2, *spare;

	tl_place_make(&p, "lk");
	loc = lock_new(p.path, tl_all_methods[_i] | LB_LOCAL);
	brk = lock_new(p.path, tl_all_methods[_i] | LB_BROKER);
	new_in_thread(p.path, tl_all_methods[_i] | LB_LOCAL, &loc2, &spare);
	lb_lock_free(spare);
	new_in_thread(p.path, tl_all_methods[_i] | LB_BROKER, &brk2, &spare);
	lb_lock_free(spare);

	holder_excludes(loc, brk2);
	holder_excludes(brk, loc2);
	lb_lock_free(brk2);
	lb_lock_free(loc2);
	lb_lock_free(brk);
	lock_free_clean(loc, p.dir, tl_all_methods[_i]);
}
END_TEST

/* A probe through the broker: another handle of the holder's owner,
 * made, used and freed, releases nothing (re-entrant acquire included);
 * the acquiring handle's free releases. */
START_TEST(test_probe_free_keeps_lock)
{
	unsigned        m = tl_all_methods[_i] | LB_BROKER;
	struct tl_place p;
	lb_lock        *h, *q, *other;

	tl_place_make(&p, "lk");
	h = lock_new(p.path, m);
	other = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire(h, 0), 0);
	assert_probes_keep(h, p.path, m);
	ck_assert_int_eq(lb_is_locked(other), 1);
	ck_assert_int_eq(lb_release(h), 0);
	q = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire(q, 0), 0);
	lb_lock_free(q);
	ck_assert_int_eq(lb_is_locked(other), 0);
	lb_lock_free(other);
	lock_free_clean(h, p.dir, tl_all_methods[_i]);
}
END_TEST

/* A forgotten handle's hold through the broker stays with its owner
 * (assert_forget_keeps), and, in another process, until that process's
 * connection ends: the agent forgets its handle and stops without
 * releasing, and the lock is free. */
START_TEST(test_forget_keeps_hold)
{
	unsigned        m = tl_all_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct agent    a;
	lb_lock        *other;
	double          end;

	tl_place_make(&p, "lk");
	assert_forget_keeps(p.path, m);
	other = lock_new(p.path, m);
	agent_start(&a, p.path, m, NULL);
	ck_assert_int_eq(agent_do(&a, 'a', 0), 0);
	ck_assert_int_eq(agent_do(&a, 'f', 0), 0);
	ck_assert_int_eq(lb_acquire(other, 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&a, 'i', 0), 1);
	agent_stop(&a);
	end = tl_now() + HANG_S;
	while (lb_is_locked(other) != 0 && tl_now() < end)
		tl_sleep(0.01);
	ck_assert_int_eq(lb_acquire(other, 0), 0);
	ck_assert_int_eq(lb_release(other), 0);
	lock_free_clean(other, p.dir, tl_all_methods[_i]);
}
END_TEST

/* lb_locked through the broker (LOCKBROKER_TRANSPORT=broker), whose
 * function probes the lock with its own handle: 0. */
START_TEST(test_locked_probe_freed)
{
	struct locked_call c = { NULL, 0, -1, -1, NULL };
	struct tl_place    p;
	struct agent       a;

	tl_place_make(&p, "lk");
	c.path = p.path;
	ck_assert_int_eq(setenv("LOCKBROKER_TRANSPORT", "broker", 1), 0);
	ck_assert_int_eq(lb_locked(p.path, 0, locked_probe_fn, &c), 0);
	unsetenv("LOCKBROKER_TRANSPORT");
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.locked, 1);
	ck_assert_int_eq(c.mine, 1);
	agent_start(&a, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&a, 'l', 0), 0);
	agent_stop(&a);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

struct timed {
	lb_lock *lock;
	double   timeout;
	int      r;
	int      done;
};

static void *
timed_run(void *arg)
{
	struct timed *tm = arg;

	tm->r = lb_acquire(tm->lock, tm->timeout);
	__atomic_store_n(&tm->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* Waits up to seconds for tm's acquire to return: 1 when it did. */
static int
timed_wait(struct timed *tm, double seconds)
{
	double end = tl_now() + seconds;

	while (!__atomic_load_n(&tm->done, __ATOMIC_SEQ_CST) &&
	    tl_now() < end)
		tl_sleep(0.01);
	return __atomic_load_n(&tm->done, __ATOMIC_SEQ_CST);
}

/* A finite timeout beyond what the clocks count (1e19 s, 1e300, DBL_MAX)
 * is forever through the broker: granted at once on a free lock, and on
 * a held one when its holder lets go; other broker calls of the process
 * go on meanwhile. */
START_TEST(test_timeout_huge)
{
	static const double huge[] = { 1e10, 1e19, 1e300, DBL_MAX };
	struct tl_place p;
	struct agent    h;
	struct timed    tm;
	pthread_t       t;
	lb_lock        *lock, *probe;
	size_t          k;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, tl_all_methods[_i] | LB_BROKER);
	probe = lock_new(p.path, tl_all_methods[_i] | LB_BROKER);
	for (k = 0; k < sizeof(huge) / sizeof(huge[0]); k++) {
		memset(&tm, 0, sizeof(tm));
		tm.lock = lock;
		tm.timeout = huge[k];
		ck_assert_int_eq(pthread_create(&t, NULL, timed_run, &tm), 0);
		ck_assert_msg(timed_wait(&tm, PROMPT_S), "lb_acquire(%g) of a "
		    "free lock did not return", huge[k]);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
		ck_assert_int_eq(tm.r, 0);
		ck_assert_int_eq(lb_release(lock), 0);
	}
	agent_start(&h, p.path, tl_all_methods[_i] | LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	memset(&tm, 0, sizeof(tm));
	tm.lock = lock;
	tm.timeout = 1e19;
	ck_assert_int_eq(pthread_create(&t, NULL, timed_run, &tm), 0);
	wait_for_waiters(probe, 1);
	ck_assert(!timed_wait(&tm, WAIT_S));
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_msg(timed_wait(&tm, HANG_S), "not granted on release");
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(tm.r, 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&h);
	lb_lock_free(probe);
	lb_lock_free(lock);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The case's tests, in the order they run. */
TCase *
broker_ownership_case(void)
{
	TCase *tc = broker_case("ownership", 60);

	tcase_add_loop_test(tc, test_threads_exclude, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_threads_exclude_mixed, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_threads_local_and_broker, 0,
	    TL_NMETHODS);
	tcase_add_loop_test(tc, test_probe_free_keeps_lock, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_forget_keeps_hold, 0, TL_NMETHODS);
	tcase_add_test(tc, test_locked_probe_freed);
	tcase_add_loop_test(tc, test_timeout_huge, 0, TL_NMETHODS);
	return tc;
}
