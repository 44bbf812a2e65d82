/*
 * check_broker_sets.c: several locks at once (lb_acquire_all) through
 * the daemon, which takes them as one set (daemon/set.c): owners taking
 * overlapping sets in a ring ({A,B}, {B,C}, {C,A}) never hold one lock
 * together and never deadlock (no LB_EDEADLK, no hang); a set that waits
 * for one lock holds none of its others (another process takes them
 * in-process meanwhile) but keeps its place in their queues (first come,
 * first served with single acquires); a timeout or a single try leaves
 * none held and names the busy lock; lb_lock_cancel of any handle of the
 * set withdraws the wait from the daemon's queues; a set waits on over a
 * daemon restart.
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_broker.h"

/* How many locks in the ring, and how many sets each owner takes. */
#define RING_N     3
#define RING_TURNS 150

/* The ring's shared state: how many owners are inside each lock now
 * (never more than 1), and the first failure seen. */
struct ring {
	char          paths[RING_N][PATH_MAX];
	unsigned      flags;
	int           inside[RING_N];
	int           overlaps;
	int           failure;
	char          why[512];
};

/* One owner of the ring: takes {k, k+1} RING_TURNS times. */
struct ring_owner {
	struct ring *ring;
	int          k;
	pthread_t    t;
};

/* A ring owner's thread: its own handles (so its own owner), then the
 * turns; in each, both counters go from 0 to 1 and back while it holds
 * the set. */
static void *
ring_run(void *arg)
{
	struct ring_owner *o = arg;
	struct ring       *g = o->ring;
	lb_lock           *set[2];
	int                idx[2] = { o->k, (o->k + 1) % RING_N };
	size_t             failed = 0;
	int                i, turn, r;

	for (i = 0; i < 2; i++)
		set[i] = lb_lock_new(g->paths[idx[i]], g->flags);
	if (set[0] == NULL || set[1] == NULL) {
		__atomic_store_n(&g->failure, LB_ENOMEM, __ATOMIC_SEQ_CST);
		goto out;
	}
	for (turn = 0; turn < RING_TURNS; turn++) {
		if ((r = lb_acquire_all(set, 2, HANG_S, &failed)) != 0) {
			snprintf(g->why, sizeof(g->why), "owner %d turn %d: "
			    "%s: %s", o->k, turn, lb_error_name(r),
			    lb_lock_error(set[failed < 2 ? failed : 0]));
			__atomic_store_n(&g->failure, r, __ATOMIC_SEQ_CST);
			break;
		}
		for (i = 0; i < 2; i++) {
			if (__atomic_fetch_add(&g->inside[idx[i]], 1,
			    __ATOMIC_SEQ_CST) != 0)
				__atomic_fetch_add(&g->overlaps, 1,
				    __ATOMIC_SEQ_CST);
		}
		sched_yield();
		for (i = 0; i < 2; i++)
			__atomic_fetch_sub(&g->inside[idx[i]], 1,
			    __ATOMIC_SEQ_CST);
		for (i = 0; i < 2; i++) {
			if ((r = lb_release(set[i])) != 0) {
				__atomic_store_n(&g->failure, r,
				    __ATOMIC_SEQ_CST);
				goto out;
			}
		}
	}
out:
	lb_lock_free(set[0]);
	lb_lock_free(set[1]);
	return NULL;
}

/* Three owners take {A,B}, {B,C}, {C,A} over and over: each gets its
 * set every time (never LB_EDEADLK, never a timeout), and no two are
 * ever inside one lock at once. */
START_TEST(test_ring)
{
	struct tl_place    p;
	struct ring        g;
	struct ring_owner  o[RING_N];
	double             t0;
	int                k;

	memset(&g, 0, sizeof(g));
	g.flags = tl_all_methods[_i] | LB_BROKER;
	tl_place_make(&p, "ring");
	for (k = 0; k < RING_N; k++) {
		char name[2] = { (char)('A' + k), '\0' };

		tl_path_join(g.paths[k], PATH_MAX, p.dir, name);
	}
	t0 = tl_now();
	for (k = 0; k < RING_N; k++) {
		o[k].ring = &g;
		o[k].k = k;
		ck_assert_int_eq(pthread_create(&o[k].t, NULL, ring_run, &o[k]),
		    0);
	}
	for (k = 0; k < RING_N; k++)
		ck_assert_int_eq(pthread_join(o[k].t, NULL), 0);
	ck_assert_msg(g.failure == 0, "%s: %s", tl_method_name(g.flags),
	    g.why);
	ck_assert_int_eq(g.overlaps, 0);
	fprintf(stderr, "ring %s: %d sets in %.2f s\n",
	    tl_method_name(g.flags), RING_N * RING_TURNS, tl_now() - t0);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(g.flags));
}
END_TEST

/* What set_call's thread does: lb_acquire_all of n locks. */
struct set_call {
	lb_lock  **set;
	size_t     n;
	double     timeout;
	size_t     failed;
	int        r;
	pthread_t  t;
};

static void *
set_call_run(void *arg)
{
	struct set_call *c = arg;

	c->r = lb_acquire_all(c->set, c->n, c->timeout, &c->failed);
	return NULL;
}

/* A set waiting for B (held by another process) holds none of its other
 * locks: the daemon says A is free, another process takes and gives it
 * back in-process; but A keeps the set's place in the daemon's queue,
 * first come first served: a broker client's try of A is refused.  Then
 * B is released and the set has both. */
START_TEST(test_waiting_holds_none)
{
	unsigned        m = tl_file_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct agent    holder, other, queued;
	struct set_call c;
	char            a[PATH_MAX], b[PATH_MAX];
	lb_lock        *set[2], *probe;
	int             k;

	tl_place_make(&p, "wait");
	tl_path_join(a, sizeof(a), p.dir, "A");
	tl_path_join(b, sizeof(b), p.dir, "B");
	agent_start(&holder, b, m, NULL);
	agent_start(&other, a, tl_file_methods[_i] | LB_LOCAL, NULL);
	agent_start(&queued, a, m, NULL);
	ck_assert_int_eq(agent_do(&holder, 'a', 0), 0);
	set[0] = lock_new(a, m);
	set[1] = lock_new(b, m);
	probe = lock_new(b, m);
	memset(&c, 0, sizeof(c));
	c.set = set;
	c.n = 2;
	c.timeout = HANG_S;
	c.failed = 77;
	ck_assert_int_eq(pthread_create(&c.t, NULL, set_call_run, &c), 0);
	wait_for_waiters(probe, 1);
	for (k = 0; k < 3; k++) {
		ck_assert_int_eq(lb_is_locked(set[0]), 0);
		ck_assert_int_eq(agent_do(&other, 'a', 0), 0);
		ck_assert_int_eq(agent_do(&other, 'r', 0), 0);
		ck_assert_int_eq(agent_do(&queued, 'a', 0), LB_EALREADY);
		tl_sleep(0.05);
	}
	ck_assert_int_eq(agent_do(&holder, 'r', 0), 0);
	ck_assert_int_eq(pthread_join(c.t, NULL), 0);
	ck_assert_msg(c.r == 0, "%s: %s", lb_error_name(c.r),
	    lb_lock_error(set[c.failed < 2 ? c.failed : 0]));
	ck_assert_int_eq(lb_i_am_locking(set[0]), 1);
	ck_assert_int_eq(lb_i_am_locking(set[1]), 1);
	ck_assert_int_eq(agent_do(&other, 'a', 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&queued, 'a', 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&holder, 'a', 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(set[0]), 0);
	ck_assert_int_eq(lb_release(set[1]), 0);
	agent_stop(&holder);
	agent_stop(&other);
	agent_stop(&queued);
	lb_lock_free(probe);
	lb_lock_free(set[0]);
	lb_lock_free(set[1]);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* A timeout, and a single try, leave none held and name the busy lock;
 * the single try's busy is the broker's LB_EALREADY. */
START_TEST(test_timeout_none_held)
{
	unsigned        m = tl_all_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct agent    holder;
	char            a[PATH_MAX], b[PATH_MAX], c[PATH_MAX];
	lb_lock        *set[3];
	size_t          failed = 77;
	double          t0, elapsed;

	tl_place_make(&p, "tmo");
	tl_path_join(a, sizeof(a), p.dir, "A");
	tl_path_join(b, sizeof(b), p.dir, "B");
	tl_path_join(c, sizeof(c), p.dir, "C");
	agent_start(&holder, c, m, NULL);
	ck_assert_int_eq(agent_do(&holder, 'a', 0), 0);
	/* Given in another order than the global one. */
	set[0] = lock_new(c, m);
	set[1] = lock_new(b, m);
	set[2] = lock_new(a, m);
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire_all(set, 3, WAIT_S, &failed), LB_ETIMEOUT);
	elapsed = tl_now() - t0;
	ck_assert_msg(elapsed >= WAIT_MIN && elapsed < HANG_S,
	    "timeout %g s returned after %.3f s", WAIT_S, elapsed);
	ck_assert_uint_eq(failed, 0);
	ck_assert_int_eq(lb_is_locked(set[1]), 0);
	ck_assert_int_eq(lb_is_locked(set[2]), 0);
	failed = 77;
	ck_assert_int_eq(lb_acquire_all(set, 3, 0, &failed), LB_EALREADY);
	ck_assert_uint_eq(failed, 0);
	ck_assert_int_eq(lb_is_locked(set[1]), 0);
	ck_assert_int_eq(lb_is_locked(set[2]), 0);
	ck_assert_int_eq(agent_do(&holder, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&holder, 'r', 0), 0);
	ck_assert_int_eq(lb_acquire_all(set, 3, 0, &failed), 0);
	ck_assert_int_eq(agent_do(&holder, 'a', 0), LB_EALREADY);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(lb_release(set[i]), 0);
		lb_lock_free(set[i]);
	}
	agent_stop(&holder);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* lb_lock_cancel of the handle the set does not wait for ends the wait:
 * LB_ECANCELED, its request gone from the daemon's queue, none held. */
START_TEST(test_cancel_other_handle)
{
	unsigned        m = LB_LINK | LB_BROKER;
	struct tl_place p;
	struct agent    holder;
	struct set_call c;
	char            a[PATH_MAX], b[PATH_MAX];
	lb_lock        *set[2], *probe;

	tl_place_make(&p, "cnc");
	tl_path_join(a, sizeof(a), p.dir, "A");
	tl_path_join(b, sizeof(b), p.dir, "B");
	agent_start(&holder, b, m, NULL);
	ck_assert_int_eq(agent_do(&holder, 'a', 0), 0);
	set[0] = lock_new(a, m);
	set[1] = lock_new(b, m);
	probe = lock_new(b, m);
	memset(&c, 0, sizeof(c));
	c.set = set;
	c.n = 2;
	c.timeout = HANG_S;
	c.failed = 77;
	ck_assert_int_eq(pthread_create(&c.t, NULL, set_call_run, &c), 0);
	wait_for_waiters(probe, 1);
	ck_assert_int_eq(lb_lock_cancel(set[0]), 1);
	ck_assert_int_eq(pthread_join(c.t, NULL), 0);
	ck_assert_int_eq(c.r, LB_ECANCELED);
	ck_assert_uint_eq(c.failed, 1);
	wait_for_waiters(probe, 0);
	ck_assert_int_eq(lb_is_locked(set[0]), 0);
	ck_assert_int_eq(agent_do(&holder, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&holder, 'r', 0), 0);
	agent_stop(&holder);
	lb_lock_free(probe);
	lb_lock_free(set[0]);
	lb_lock_free(set[1]);
}
END_TEST

/*
 * First come, first served with single acquires: a set waiting for A
 * (held by another process) keeps its place in B's queue too, so a
 * single acquire of B asked after it waits behind it (it was granted B
 * at once when the daemon knew nothing of sets); A released, the set has
 * both at once, and B goes to the single one when the set lets it go.
 */
START_TEST(test_fifo_with_single_acquires)
{
	unsigned        m = tl_file_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct agent    holder, single;
	struct set_call c;
	char            a[PATH_MAX], b[PATH_MAX];
	lb_lock        *set[2], *probe;

	tl_place_make(&p, "fifo");
	tl_path_join(a, sizeof(a), p.dir, "A");
	tl_path_join(b, sizeof(b), p.dir, "B");
	agent_start(&holder, a, m, NULL);
	agent_start(&single, b, m, NULL);
	ck_assert_int_eq(agent_do(&holder, 'a', 0), 0);
	set[0] = lock_new(b, m);
	set[1] = lock_new(a, m);
	probe = lock_new(b, m);
	memset(&c, 0, sizeof(c));
	c.set = set;
	c.n = 2;
	c.timeout = HANG_S;
	c.failed = 77;
	ck_assert_int_eq(pthread_create(&c.t, NULL, set_call_run, &c), 0);
	wait_for_waiters(probe, 1);
	agent_send(&single, 'a', HANG_S);
	wait_for_waiters(probe, 2);
	ck_assert_msg(!agent_ready(&single, WAIT_S), "%s: a single acquire "
	    "of B asked after a set's was granted ahead of it",
	    tl_method_name(m));
	ck_assert_int_eq(agent_do(&holder, 'r', 0), 0);
	ck_assert_int_eq(pthread_join(c.t, NULL), 0);
	ck_assert_msg(c.r == 0, "%s: %s", lb_error_name(c.r),
	    lb_lock_error(set[c.failed < 2 ? c.failed : 0]));
	ck_assert_int_eq(lb_i_am_locking(set[0]), 1);
	ck_assert_int_eq(lb_i_am_locking(set[1]), 1);
	ck_assert(!agent_ready(&single, 0.2));
	ck_assert_int_eq(lb_release(set[1]), 0);
	ck_assert(!agent_ready(&single, 0.2));
	ck_assert_int_eq(lb_release(set[0]), 0);
	agent_expect(&single, HANG_S, 0, "B once the set let it go");
	ck_assert_int_eq(agent_do(&single, 'r', 0), 0);
	agent_stop(&holder);
	agent_stop(&single);
	lb_lock_free(probe);
	lb_lock_free(set[0]);
	lb_lock_free(set[1]);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/*
 * A set waiting when the daemon is killed: its members go to the next
 * daemon again (the library sends the waiting requests once it has
 * given the holds back), and the set is granted there, whole, when the
 * lock it waited for is released; nothing is left behind.
 */
START_TEST(test_set_waits_over_a_restart)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     holder;
	struct set_call  c;
	char             dir[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	lb_lock         *set[2], *probe;

	private_daemon(&d, dir);
	tl_place_make(&p, "rst");
	tl_path_join(a, sizeof(a), p.dir, "A");
	tl_path_join(b, sizeof(b), p.dir, "B");
	agent_start(&holder, a, LB_LINK | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&holder, 'a', 0), 0);
	set[0] = lock_new(a, LB_LINK | LB_BROKER);
	set[1] = lock_new(b, LB_LINK | LB_BROKER);
	probe = lock_new(b, LB_LINK | LB_BROKER);
	memset(&c, 0, sizeof(c));
	c.set = set;
	c.n = 2;
	c.timeout = HANG_S;
	c.failed = 77;
	ck_assert_int_eq(pthread_create(&c.t, NULL, set_call_run, &c), 0);
	wait_for_waiters(probe, 1);
	daemon_restart(&d, dir, "state.db");
	ck_assert_int_eq(agent_do(&holder, 'i', 0), 1);
	wait_for_waiters(probe, 1);
	ck_assert_int_eq(lb_is_locked(set[1]), 0);
	ck_assert_int_eq(agent_do(&holder, 'r', 0), 0);
	ck_assert_int_eq(pthread_join(c.t, NULL), 0);
	ck_assert_msg(c.r == 0, "%s: %s", lb_error_name(c.r),
	    lb_lock_error(set[c.failed < 2 ? c.failed : 0]));
	ck_assert_int_eq(agent_do(&holder, 'a', 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(set[0]), 0);
	ck_assert_int_eq(lb_release(set[1]), 0);
	agent_stop(&holder);
	lb_lock_free(probe);
	lb_lock_free(set[0]);
	lb_lock_free(set[1]);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * Several sets waiting at once, from threads of this process (their
 * members may go out interleaved), when the daemon is killed: each set's
 * members sent again count that set's alone (of=), so each is granted
 * whole on the next daemon once the lock it waited for is released.
 */
#define NSETS 3
START_TEST(test_sets_wait_over_a_restart)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     holder[NSETS];
	struct set_call  c[NSETS];
	char             dir[PATH_MAX], name[PATH_MAX], mine[8];
	lb_lock         *set[NSETS][3], *probe[NSETS];
	int              i, j;

	private_daemon(&d, dir);
	tl_place_make(&p, "rsts");
	for (i = 0; i < NSETS; i++) {
		for (j = 0; j < 3; j++) {
			snprintf(mine, sizeof(mine), "%c%d", 'A' + i, j);
			tl_path_join(name, sizeof(name), p.dir, mine);
			set[i][j] = lock_new(name, LB_LINK | LB_BROKER);
			if (j == 1) {
				agent_start(&holder[i], name, LB_LINK |
				    LB_BROKER, d.socket);
				ck_assert_int_eq(agent_do(&holder[i], 'a', 0),
				    0);
				probe[i] = lock_new(name, LB_LINK | LB_BROKER);
			}
		}
		memset(&c[i], 0, sizeof(c[i]));
		c[i].set = set[i];
		c[i].n = 3;
		c[i].timeout = HANG_S;
		c[i].failed = 77;
	}
	for (i = 0; i < NSETS; i++)
		ck_assert_int_eq(pthread_create(&c[i].t, NULL, set_call_run,
		    &c[i]), 0);
	for (i = 0; i < NSETS; i++)
		wait_for_waiters(probe[i], 1);
	daemon_restart(&d, dir, "state.db");
	for (i = 0; i < NSETS; i++) {
		ck_assert_int_eq(agent_do(&holder[i], 'i', 0), 1);
		wait_for_waiters(probe[i], 1);
	}
	for (i = 0; i < NSETS; i++) {
		ck_assert_int_eq(agent_do(&holder[i], 'r', 0), 0);
		ck_assert_int_eq(pthread_join(c[i].t, NULL), 0);
		ck_assert_msg(c[i].r == 0, "set %d: %s: %s", i,
		    lb_error_name(c[i].r), lb_lock_error(set[i][c[i].failed <
		    3 ? c[i].failed : 0]));
		for (j = 0; j < 3; j++) {
			ck_assert_int_eq(lb_i_am_locking(set[i][j]), 1);
			ck_assert_int_eq(lb_release(set[i][j]), 0);
			lb_lock_free(set[i][j]);
		}
		agent_stop(&holder[i]);
		lb_lock_free(probe[i]);
	}
	private_daemon_end(&d, p.dir);
}
END_TEST

TCase *
broker_sets_case(void)
{
	TCase *tc = broker_case("sets", 120);

	tcase_add_loop_test(tc, test_ring, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_waiting_holds_none, 0, TL_NFILE);
	tcase_add_loop_test(tc, test_timeout_none_held, 0, TL_NMETHODS);
	tcase_add_test(tc, test_cancel_other_handle);
	tcase_add_loop_test(tc, test_fifo_with_single_acquires, 0, TL_NFILE);
	tcase_add_test(tc, test_set_waits_over_a_restart);
	tcase_add_test(tc, test_sets_wait_over_a_restart);
	return tc;
}
