/*
 * check_broker_shared.c: shared locks through the library
 * (lb_acquire_shared, lb_upgrade, lb_downgrade; docs/SHARED.md), for
 * every method whose artefact is a file: readers hold at once and
 * exclude writers, and a writer excludes readers; the lock stays held
 * on disk while any reader holds it; an upgrade waits for the other
 * readers, a downgrade lets readers in; without the daemon a shared lock
 * is refused, never given exclusive; lb_get_holder and lb_list say the
 * mode and the number of holders.
 */
#include <check.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_broker.h"

/* Two readers and a writer, in agents and this process. */
START_TEST(test_readers_and_writers)
{
	unsigned        m = tl_file_methods[_i] | LB_BROKER;
	struct tl_place p;
	struct agent    a, b;
	lb_lock        *lock;

	tl_place_make(&p, "sh");
	agent_start(&a, p.path, m, NULL);
	agent_start(&b, p.path, m, NULL);
	lock = lock_new(p.path, m);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 'i', 0), 1);
	/* Held shared: no writer; another reader joins. */
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), 0);    /* re-entrant */
	ck_assert_int_eq(lb_upgrade(lock, 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTMINE);
	/* The first reader leaves: still held on disk, by the other. */
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_int_eq(agent_do(&b, 'i', 0), 1);
	/* The last reader upgrades alone, at once: no reader now. */
	ck_assert_int_eq(agent_do(&b, 'u', 0), 0);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), LB_EALREADY);
	/* Downgraded: readers again. */
	ck_assert_int_eq(agent_do(&b, 'd', 0), 0);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), 0);
	ck_assert_int_eq(agent_do(&b, 'r', 0), 0);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	/* A writer now keeps readers out. */
	ck_assert_int_eq(agent_do(&a, 'a', 0), 0);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), LB_EALREADY);
	ck_assert_int_eq(lb_downgrade(lock), LB_ENOTMINE);
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	agent_stop(&a);
	agent_stop(&b);
	lock_free_clean(lock, p.dir, tl_file_methods[_i]);
}
END_TEST

/* An upgrade waits until the other reader has gone. */
START_TEST(test_upgrade_waits)
{
	unsigned        m = LB_LINK | LB_BROKER;
	struct tl_place p;
	struct agent    a;
	lb_lock        *lock;

	tl_place_make(&p, "up");
	agent_start(&a, p.path, m, NULL);
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), 0);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	agent_send(&a, 'u', HANG_S);
	ck_assert(!agent_ready(&a, WAIT_S));
	ck_assert_int_eq(lb_release(lock), 0);
	agent_expect(&a, HANG_S, 0, "upgrade once alone");
	ck_assert_int_eq(lb_acquire_shared(lock, 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	agent_stop(&a);
	lock_free_clean(lock, p.dir, LB_LINK);
}
END_TEST

/* An upgrade run by a thread of this process (upgrade_run). */
struct upgrader {
	pthread_t t;
	lb_lock  *lock;
	int       r;            /* lb_upgrade's answer */
};

static void *
upgrade_run(void *arg)
{
	struct upgrader *u = arg;

	u->r = lb_upgrade(u->lock, HANG_S);
	return NULL;
}

/* An interrupt hook that says stop once *arg (an int) is set. */
static int
stop_when_set(void *arg)
{
	return __atomic_load_n((int *)arg, __ATOMIC_SEQ_CST);
}

/*
 * A waiting upgrade is ended by lb_lock_cancel, and then by the interrupt
 * hook: LB_ECANCELED, the shared hold staying, and the upgrade gone from
 * the daemon's queue (the other reader's release does not make this
 * owner the writer: a third reader joins at once).
 */
START_TEST(test_upgrade_canceled)
{
	unsigned         m = LB_LINK | LB_BROKER;
	struct tl_place  p;
	struct agent     a, b;
	struct upgrader  u;
	lb_lock         *lock;
	int              stop = 0, way;

	for (way = 0; way < 2; way++) {
		tl_place_make(&p, "upc");
		agent_start(&a, p.path, m, NULL);
		agent_start(&b, p.path, m, NULL);
		lock = lock_new(p.path, m);
		__atomic_store_n(&stop, 0, __ATOMIC_SEQ_CST);
		if (way == 1)
			ck_assert_int_eq(lb_lock_set_interrupt(lock,
			    stop_when_set, &stop), 0);
		ck_assert_int_eq(lb_acquire_shared(lock, 0), 0);
		ck_assert_int_eq(agent_do(&a, 's', 0), 0);
		u.lock = lock;
		ck_assert_int_eq(pthread_create(&u.t, NULL, upgrade_run, &u),
		    0);
		tl_sleep(WAIT_S);       /* queued: a wait, not a bound */
		if (way == 0)
			ck_assert_int_eq(lb_lock_cancel(lock), 1);
		else
			__atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
		ck_assert_int_eq(pthread_join(u.t, NULL), 0);
		ck_assert_msg(u.r == LB_ECANCELED, "%s: %d (%s)", way == 0 ?
		    "lb_lock_cancel" : "the hook", u.r,
		    lb_lock_error(lock));
		ck_assert_int_eq(lb_i_am_locking(lock), 1);
		ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
		ck_assert_msg(agent_do(&b, 's', 0) == 0, "%s: a reader was "
		    "kept out after the other reader left: the canceled "
		    "upgrade was granted", way == 0 ? "lb_lock_cancel" :
		    "the hook");
		ck_assert_int_eq(agent_do(&b, 'r', 0), 0);
		agent_stop(&a);
		agent_stop(&b);
		ck_assert_int_eq(lb_release(lock), 0);
		lock_free_clean(lock, p.dir, LB_LINK);
	}
}
END_TEST

/* A reader whose hold the daemon ends (here: the lock broken while
 * another holds its artefact) is told at once (LOST): the library
 * reports the hold lost at its next call, with the daemon's reason. */
START_TEST(test_rider_told_lost)
{
	unsigned        m = LB_LINK | LB_BROKER;
	struct tl_place p, q;
	struct agent    a, b;
	lb_lock        *lock, *other;

	tl_place_make(&p, "lo");
	tl_place_make(&q, "lq");
	agent_start(&a, p.path, m, NULL);
	agent_start(&b, p.path, m, NULL);
	lock = lock_new(p.path, m);
	other = lock_new(q.path, m);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), 0);
	ck_assert_int_eq(agent_do(&b, 'b', 0), 0);
	/* A request on the same connection: its reply comes after the
	 * LOST the daemon sent first. */
	ck_assert_int_eq(lb_is_locked(other), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	ck_assert_ptr_nonnull(strstr(lb_lock_error(lock), "lost the lock on"));
	ck_assert_ptr_nonnull(strstr(lb_lock_error(lock), "went with its "
	    "reader's hold"));
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	agent_stop(&a);
	agent_stop(&b);
	lb_lock_free(other);
	lock_free_clean(lock, p.dir, LB_LINK);
}
END_TEST

/* While no daemon runs, the artefact's reader's in-process release keeps
 * the artefact for a live reader beside it (its marker): never freed
 * under it; released once it has gone. */
START_TEST(test_artefact_kept_for_readers)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     a, b;
	char             dir[PATH_MAX], file[PATH_MAX + 8];

	private_daemon(&d, dir);
	tl_place_make(&p, "kp");
	snprintf(file, sizeof(file), "%s.lock", p.path);
	agent_start(&a, p.path, LB_LINK, d.socket);
	agent_start(&b, p.path, LB_LINK | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	/* Lock file, unique, marker, the readers' sign. */
	ck_assert_int_eq(tl_count(p.dir), 4);
	tl_daemon_stop(&d, SIGKILL);
	ck_assert_int_eq(agent_do(&a, 'r', 0), LB_EUNLOCK);
	ck_assert_int_eq(tl_exists(file), 1);
	ck_assert_int_eq(agent_do(&a, 'i', 0), 1);
	agent_stop(&b);                 /* its marker stays, naming the dead */
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	ck_assert_int_eq(tl_exists(file), 0);
	agent_stop(&a);
	/* The dead reader's marker and the sign, left for the daemon: the
	 * library cannot tell that no daemon made them again since. */
	ck_assert_int_eq(tl_count(p.dir), 2);
	ck_assert_int_eq(tl_dir_remove(p.dir), 0);
}
END_TEST

/* In-process there is no shared lock: refused, nothing taken. */
START_TEST(test_shared_needs_the_daemon)
{
	struct tl_place p;
	lb_lock        *lock;

	tl_place_make(&p, "lo");
	lock = lock_new(p.path, LB_LINK | LB_LOCAL);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), LB_EFAILED);
	ck_assert_ptr_nonnull(strstr(lb_lock_error(lock), "need the daemon"));
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_upgrade(lock, 0), LB_EFAILED);
	ck_assert_int_eq(lb_downgrade(lock), LB_EFAILED);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_downgrade(lock), LB_EFAILED);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_release(lock), 0);
	lock_free_clean(lock, p.dir, LB_LINK);
}
END_TEST

/*
 * Reproduction (fails): a DOWNGRADE the daemon answers only after the
 * library gave up on it.  The daemon is stopped (SIGSTOP) while the
 * exclusive holder's lb_downgrade is on its way; the library gives up
 * (REQUEST_WAIT_S) and reports the downgrade not done, so the holder
 * goes on as the lock's only, exclusive, holder.  Once the daemon runs
 * again it reads the DOWNGRADE, makes the hold shared and grants the
 * reader that waited: a reader holds beside an owner that was told it
 * writes alone.
 */
START_TEST(test_downgrade_unanswered)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, r;
	struct answer    got;
	char             dir[PATH_MAX];

	private_daemon(&d, dir);
	tl_place_make(&p, "dg");
	agent_start(&h, p.path, LB_LINK | LB_BROKER, d.socket);
	agent_start(&r, p.path, LB_LINK | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	agent_send(&r, 's', 120.0);
	ck_assert(!agent_ready(&r, WAIT_S));
	order_to_stopped(&d, &h, 'd', 0);
	got = agent_answer(&h, 90.0);
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	/* Told that its downgrade failed, it holds the lock exclusive
	 * still: no reader may be granted beside it. */
	ck_assert_int_ne(got.r, 0);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_msg(!agent_ready(&r, HANDOFF_S), "a reader was granted the "
	    "lock beside an exclusive holder whose lb_downgrade failed (%s)",
	    got.why);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_expect(&r, HANG_S, 0, "the reader once the writer released");
	ck_assert_int_eq(agent_do(&r, 'r', 0), 0);
	agent_stop(&h);
	agent_stop(&r);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * Reproduction (fails): riders are unprotected while no daemon runs.
 * Two readers hold a lock through the daemon (AUTO), which then dies
 * (kill -9) and is not started again.  The artefact's reader releases:
 * its library, finding no daemon, removes the lock file in-process (it
 * is its own), knowing nothing of the other reader.  A writer in-process
 * is then granted the lock while the other reader, told nothing, reads
 * on (docs/SHARED.md, Status: riders need a trace of their own on disk,
 * or the first reader's library must keep the file while the daemon is
 * away).
 */
START_TEST(test_rider_kept_without_the_daemon)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     a, b;
	lb_lock         *lock;
	char             dir[PATH_MAX];
	int              r;

	private_daemon(&d, dir);
	tl_place_make(&p, "nd");
	agent_start(&a, p.path, LB_LINK, d.socket);
	agent_start(&b, p.path, LB_LINK, d.socket);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
	/* Released, or kept for the live reader beside it (LB_EUNLOCK: the
	 * lock still its owner's, test_artefact_kept_for_readers). */
	r = (int)agent_do(&a, 'r', 0);
	ck_assert_msg(r == 0 || (r == LB_EUNLOCK && agent_do(&a, 'i', 0) == 1),
	    "the artefact's reader's release: %d", r);
	lock = lock_new(p.path, LB_LINK | LB_LOCAL);
	ck_assert_msg(lb_acquire(lock, 0) == LB_EALREADY, "a writer was "
	    "granted %s in-process while a reader that was told nothing "
	    "holds it shared", p.path);
	agent_stop(&a);
	agent_stop(&b);
	lb_release(lock);
	lb_lock_free(lock);
}
END_TEST

/*
 * Reproduction (fails): a daemon restart does not keep a live reader's
 * hold (DESIGN.md: a restart keeps live holders' locks).  Two readers
 * hold a lock; the daemon is killed and started again; the artefact's
 * reader takes its hold back and releases it, and a writer is granted
 * the lock while the other reader, alive and never releasing, still
 * reads: its hold was in the dead daemon's memory only (daemon/readers.c;
 * docs/SHARED.md, Restart).
 */
START_TEST(test_rider_kept_over_a_restart)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     a, b;
	lb_lock         *lock;
	char             dir[PATH_MAX];

	private_daemon(&d, dir);
	tl_place_make(&p, "rs");
	agent_start(&a, p.path, LB_LINK | LB_BROKER, d.socket);
	agent_start(&b, p.path, LB_LINK | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	daemon_restart(&d, dir, "state.db");
	ck_assert_int_eq(agent_do(&a, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	lock = lock_new(p.path, LB_LINK | LB_BROKER);
	ck_assert_msg(lb_acquire(lock, 0) == LB_EALREADY, "a writer was "
	    "granted %s after a daemon restart while a reader that held it "
	    "before the restart, alive and never releasing, reads (its "
	    "lb_i_am_locking now: %d)", p.path, (int)agent_do(&b, 'i', 0));
	lb_release(lock);
	agent_stop(&a);
	agent_stop(&b);
	lb_lock_free(lock);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * A rider that reclaims only after the artefact's reader has released:
 * its marker is its record over a restart.  The rider's process is
 * stopped while the daemon is killed and started again, so that it
 * cannot reclaim; the artefact's reader takes its hold back and releases
 * it: the lock stays held (for the reader to come), a writer is refused;
 * the rider, let run, reclaims and is handed the artefact; a writer is
 * granted once it releases.
 */
START_TEST(test_rider_reclaims_after_the_reader_released)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     a, b;
	lb_lock         *lock;
	char             dir[PATH_MAX];

	private_daemon(&d, dir);
	tl_place_make(&p, "rl");
	agent_start(&a, p.path, LB_LINK | LB_BROKER, d.socket);
	agent_start(&b, p.path, LB_LINK | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	ck_assert_int_eq(kill(b.c.pid, SIGSTOP), 0);
	daemon_restart(&d, dir, "state.db");
	ck_assert_int_eq(agent_do(&a, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	lock = lock_new(p.path, LB_LINK | LB_BROKER);
	ck_assert_msg(lb_acquire(lock, 0) == LB_EALREADY, "a writer was "
	    "granted %s while a reader of the previous run, alive, has not "
	    "reclaimed yet", p.path);
	ck_assert_int_eq(kill(b.c.pid, SIGCONT), 0);
	ck_assert_int_eq(agent_do(&b, 'i', 0), 1);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&b, 'r', 0), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&a);
	agent_stop(&b);
	lb_lock_free(lock);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * A RELEASE of the artefact's reader lost with the daemon (killed while
 * it was on its way), a rider beside it: the in-process release keeps
 * the lock file for the rider (LB_EUNLOCK, the lock still the owner's).
 * The restarted daemon is given the hold back and released by the
 * library (RECLAIM, then RELEASE) and hands the artefact to the rider:
 * the owner's next release finds the lock the rider's, which is the
 * lost release done (0), not an error; the owner holds nothing, the
 * rider still holds it, a writer is refused.  (The next release was
 * answered LB_ENOTMINE: chaos.sh link-readers-kill.)
 */
START_TEST(test_lost_release_kept_for_a_rider_then_settled)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     a, b;
	lb_lock         *lock;
	char             dir[PATH_MAX], file[PATH_MAX + 8];

	private_daemon(&d, dir);
	tl_place_make(&p, "lr");
	snprintf(file, sizeof(file), "%s.lock", p.path);
	agent_start(&a, p.path, LB_LINK | LB_BROKER, d.socket);
	agent_start(&b, p.path, LB_LINK | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	order_to_stopped(&d, &a, 'r', 0);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
	agent_expect(&a, HANG_S, LB_EUNLOCK, "the release lost with the "
	    "daemon, a rider beside it");
	ck_assert_int_eq(tl_exists(file), 1);
	daemon_again(&d, dir, "state.db");
	/* Both reconnected and settled: the rider holds the lock. */
	ck_assert_int_eq(agent_do(&b, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&a, 'i', 0), 0);
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	ck_assert_int_eq(agent_do(&a, 'i', 0), 0);
	ck_assert_int_eq(agent_do(&b, 'i', 0), 1);
	lock = lock_new(p.path, LB_LINK | LB_BROKER);
	ck_assert_msg(lb_acquire(lock, 0) == LB_EALREADY, "a writer was "
	    "granted %s while the rider holds it", p.path);
	ck_assert_int_eq(agent_do(&a, 'r', 0), LB_ENOTMINE);
	ck_assert_int_eq(agent_do(&b, 'r', 0), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&a);
	agent_stop(&b);
	lb_lock_free(lock);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * A daemon that stops (SIGTERM) keeps its riders' markers, and the next
 * one gives every reader its hold back: the artefact's reader releases,
 * the rider reads on and a writer waits for it.
 */
START_TEST(test_riders_kept_over_a_clean_restart)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     a, b;
	lb_lock         *lock;
	char             dir[PATH_MAX];

	private_daemon(&d, dir);
	tl_place_make(&p, "rt");
	agent_start(&a, p.path, LB_LINK | LB_BROKER, d.socket);
	agent_start(&b, p.path, LB_LINK | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	ck_assert_msg(tl_daemon_stop(&d, SIGTERM) == 0, "lockbrokerd did not "
	    "stop cleanly; see %s", d.log);
	daemon_again(&d, dir, "state.db");
	ck_assert_int_eq(agent_do(&b, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&a, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	lock = lock_new(p.path, LB_LINK | LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&b, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&b, 'r', 0), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	agent_stop(&a);
	agent_stop(&b);
	lb_lock_free(lock);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * Reproduction (fails): a DOWNGRADE the daemon recorded (its commit
 * done) but did not answer before it was killed.  The library reports
 * the downgrade failed (the connection lost), gives the hold back to
 * the restarted daemon (RECLAIM), and the owner goes on as the lock's
 * exclusive holder; the daemon has it recorded shared, and grants a
 * reader beside it.  The daemon is stopped at that commit by the test
 * preload tests/stopcommit.c.
 */
START_TEST(test_downgrade_recorded_unanswered)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, r;
	struct answer    got;
	char             dir[PATH_MAX], trigger[PATH_MAX + 8];
	char             stop[64], stop_if[PATH_MAX + 32];
	const char      *vars[] = { stop, stop_if, NULL };
	FILE            *f;

	tl_place_make(&p, "dr");
	snprintf(trigger, sizeof(trigger), "%s.go", p.dir);
	snprintf(stop, sizeof(stop), "LB_TEST_STOP_COMMIT=after");
	snprintf(stop_if, sizeof(stop_if), "LB_TEST_STOP_IF=%s", trigger);
	private_daemon_preloaded(&d, dir, "tests/.libs/stopcommit.so", vars);
	agent_start(&h, p.path, LB_LINK | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_ptr_nonnull(f = fopen(trigger, "w"));
	fclose(f);
	agent_send(&h, 'd', 0);
	ck_assert_msg(tl_daemon_stopped(&d, HANG_S), "the daemon did not stop "
	    "at the downgrade's commit; see %s", d.log);
	unlink(trigger);
	daemon_restart(&d, dir, "state.db");
	got = agent_answer(&h, HANG_S + PROMPT_S);
	ck_assert_int_ne(got.r, 0);     /* told: not downgraded */
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	agent_start(&r, p.path, LB_LINK | LB_BROKER, d.socket);
	ck_assert_msg(agent_do(&r, 's', 0) == LB_EALREADY, "a reader was "
	    "granted the lock beside a holder told that its downgrade "
	    "failed (%s)", got.why);
	agent_stop(&r);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_stop(&h);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * Reproduction (fails): LB_BREAK_STALE judges a shared lock by its
 * artefact's reader alone.  Two readers hold a lock; the daemon is not
 * answering (stopped) when the artefact's reader dies (kill -9), before
 * the daemon could hand the artefact to the other reader.  An in-process
 * taker with LB_BREAK_STALE finds the file's process dead, breaks the
 * lock and is granted it, while the other reader, alive, still reads.
 */
START_TEST(test_break_stale_spares_live_riders)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     a, b;
	lb_lock         *lock;
	char             dir[PATH_MAX];
	int              r;

	private_daemon(&d, dir);
	tl_place_make(&p, "bs");
	agent_start(&a, p.path, LB_LINK | LB_BROKER, d.socket);
	agent_start(&b, p.path, LB_LINK | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
	agent_kill(&a);
	lock = lock_new(p.path, LB_LINK | LB_LOCAL | LB_BREAK_STALE);
	r = lb_acquire(lock, 0);
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	if (r == 0)
		lb_release(lock);
	ck_assert_msg(r == LB_EALREADY, "a writer broke %s as stale and was "
	    "granted it (%d) while a live reader holds it shared", p.path, r);
	ck_assert_int_eq(agent_do(&b, 'r', 0), 0);
	agent_stop(&b);
	lb_lock_free(lock);
	/* The killed reader's close may be read after b's RELEASE: the lock
	 * is granted once its hold has ended, its files gone. */
	lock = lock_new(p.path, LB_LINK | LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 30), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * Reproduction (third review; fails): while no daemon answers, an
 * artefact's reader's exclusive lb_acquire (LB_AUTO) is granted in-process
 * (the lock file names its owner: re-entrant), so the owner is told it
 * writes alone while another reader, told nothing, reads beside it.  The
 * daemon refuses the same request (EFAILED, "asked for with UPGRADE");
 * without it, it must be refused too (the library knows the hold is
 * shared: lb__holds_shared).
 */
START_TEST(test_exclusive_acquire_beside_riders_without_the_daemon)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     a, b;
	char             dir[PATH_MAX];
	int              r;

	private_daemon(&d, dir);
	tl_place_make(&p, "xr");
	agent_start(&a, p.path, LB_LINK, d.socket);
	agent_start(&b, p.path, LB_LINK, d.socket);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	/* With the daemon: refused, pointing to UPGRADE. */
	ck_assert_int_eq(agent_do(&a, 'a', 0), LB_EFAILED);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
	r = (int)agent_do(&a, 'a', 0);
	ck_assert_msg(r != 0, "the artefact's reader was granted %s "
	    "exclusive in-process while another reader holds it shared",
	    p.path);
	agent_stop(&a);
	agent_stop(&b);
}
END_TEST

/*
 * Reproduction (third review; fails): a shared ACQUIRE of an owner whose
 * lock file the daemon does not know of (held in-process, exclusive: an
 * LB_LOCAL handle, or an LB_AUTO one that took it while no daemon
 * answered) is adopted (lbd_own_artefact_adopt) and made shared
 * (lbd_hold_mode), and other readers then join it while the owner's
 * exclusive hold goes on in-process.  The daemon's own rule for an owner
 * that holds the lock exclusive is "OK, it stays exclusive": an adopted
 * artefact was never told shared to its owner.
 */
START_TEST(test_shared_acquire_adopts_an_in_process_writer)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     b;
	lb_lock         *w, *s;
	char             dir[PATH_MAX];
	int              r, rb;

	private_daemon(&d, dir);
	tl_place_make(&p, "ad");
	w = lock_new(p.path, LB_LINK | LB_LOCAL);
	ck_assert_int_eq(lb_acquire(w, 0), 0);
	s = lock_new(p.path, LB_LINK | LB_BROKER);
	r = lb_acquire_shared(s, 0);
	agent_start(&b, p.path, LB_LINK | LB_BROKER, d.socket);
	rb = (int)agent_do(&b, 's', 0);
	if (rb == 0)
		ck_assert_int_eq(agent_do(&b, 'r', 0), 0);
	agent_stop(&b);
	ck_assert_msg(rb != 0, "a reader was granted %s beside its owner's "
	    "in-process exclusive hold (the owner's shared ACQUIRE: %d)",
	    p.path, r);
	if (r == 0)
		lb_release(s);
	lb_release(w);
	lb_lock_free(s);
	lb_lock_free(w);
	private_daemon_end(&d, p.dir);
}
END_TEST

/* A thread of this process (an owner of its own) that takes x, then
 * waits for y. */
struct waiter {
	const char *x, *y;
	int         rx, ry;
	char        why[512];
};

static void *
waiter_run(void *arg)
{
	struct waiter *w = arg;
	lb_lock       *x = lock_new(w->x, LB_LINK | LB_BROKER);
	lb_lock       *y = lock_new(w->y, LB_LINK | LB_BROKER);

	if ((w->rx = lb_acquire(x, 0)) == 0) {
		w->ry = lb_acquire(y, 60);
		snprintf(w->why, sizeof(w->why), "%s", lb_lock_error(y));
		if (w->ry == 0)
			lb_release(y);
		lb_release(x);
	}
	lb_lock_free(x);
	lb_lock_free(y);
	return NULL;
}

/*
 * A deadlock through the library, between two threads (two owners) of
 * this process: the thread holds x and waits for y, which this thread
 * holds; this thread's acquire of x fails at once, LB_EDEADLK (a lock
 * error), lb_lock_error naming both locks; the other thread's wait goes
 * on, and is granted once y is let go.
 */
START_TEST(test_deadlock_named)
{
	struct tl_place p, q;
	struct waiter   w;
	pthread_t       t;
	lb_lock        *x, *y;
	const char     *why;
	int             r;

	tl_place_make(&p, "dx");
	tl_place_make(&q, "dy");
	x = lock_new(p.path, LB_LINK | LB_BROKER);
	y = lock_new(q.path, LB_LINK | LB_BROKER);
	ck_assert_int_eq(lb_acquire(y, 0), 0);
	memset(&w, 0, sizeof(w));
	w.x = p.path;
	w.y = q.path;
	ck_assert_int_eq(pthread_create(&t, NULL, waiter_run, &w), 0);
	wait_for_waiters(y, 1);         /* it holds x, and waits for y */
	r = lb_acquire(x, 60);
	why = lb_lock_error(x);
	ck_assert_int_eq(r, LB_EDEADLK);
	ck_assert(lb_error_is(r, LB_ELOCK));
	ck_assert_msg(strstr(why, "deadlock") != NULL &&
	    strstr(why, p.path) != NULL && strstr(why, q.path) != NULL,
	    "the cycle not named: %s", why);
	ck_assert_int_eq(lb_i_am_locking(x), 0);
	ck_assert_int_eq(lb_release(y), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(w.rx, 0);
	ck_assert_msg(w.ry == 0, "the other wait: %d (%s)", w.ry, w.why);
	lock_free_clean(x, p.dir, LB_LINK);
	lock_free_clean(y, q.dir, LB_LINK);
}
END_TEST

/* What lb_list passed of one lock: its entries, in order. */
struct listed {
	const char   *path;     /* the lock looked for */
	int           n;        /* its entries */
	lb_list_entry e[4];     /* the first four (strings not kept) */
};

/* lb_list's callback: keeps the entries of l->path. */
static int
listed_add(const lb_list_entry *e, void *arg)
{
	struct listed *l = arg;

	if (strcmp(e->path, l->path) == 0 && l->n++ < 4)
		l->e[l->n - 1] = *e;
	return 0;
}

/* lb_list's entries of path into *l; asserts that the list was had. */
static void
listed_get(struct listed *l, const char *path)
{
	char error[512];

	memset(l, 0, sizeof(*l));
	l->path = path;
	ck_assert_msg(lb_list(listed_add, l, NULL, error, sizeof(error)) == 0,
	    "%s", error);
}

/*
 * lb_get_holder and lb_list say the mode: a lock held shared shows
 * shared, its holders' count and the artefact's reader (the first
 * granted) as its holder; lb_list passes each reader, that one first,
 * each with its mode; held exclusive, one holder, exclusive; free,
 * nothing.  The in-process view knows no mode (holders 0).
 */
START_TEST(test_holder_and_list_say_the_mode)
{
	unsigned        m = LB_LINK | LB_BROKER;
	struct tl_place p;
	struct agent    a, b;
	struct listed   l;
	lb_holder       h;
	lb_lock        *lock, *local;
	char            dir[PATH_MAX], path[PATH_MAX * 2];
	int             i, seen_a = 0, seen_b = 0, seen_me = 0;

	tl_place_make(&p, "md");
	ck_assert_ptr_nonnull(realpath(p.dir, dir));
	snprintf(path, sizeof(path), "%s/%s", dir, strrchr(p.path, '/') + 1);
	agent_start(&a, p.path, m, NULL);
	agent_start(&b, p.path, m, NULL);
	lock = lock_new(p.path, m);
	local = lock_new(p.path, LB_LINK | LB_LOCAL);
	ck_assert_int_eq(agent_do(&a, 's', 0), 0);
	ck_assert_int_eq(agent_do(&b, 's', 0), 0);
	ck_assert_int_eq(lb_acquire_shared(lock, 0), 0);
	ck_assert_int_eq(lb_get_holder(lock, &h), 1);
	ck_assert_int_eq(h.broker, 1);
	ck_assert_int_eq(h.shared, 1);
	ck_assert_uint_eq(h.holders, 3);
	ck_assert_int_eq(h.pid, a.c.pid);       /* the artefact's reader */
	listed_get(&l, path);
	ck_assert_int_eq(l.n, 3);
	for (i = 0; i < 3; i++) {
		ck_assert_uint_ne(l.e[i].known & LB_LIST_MODE, 0);
		ck_assert_int_eq(l.e[i].shared, 1);
		ck_assert_uint_ne(l.e[i].known & LB_LIST_PID, 0);
		seen_a += l.e[i].pid == a.c.pid;
		seen_b += l.e[i].pid == b.c.pid;
		seen_me += l.e[i].pid == getpid();
	}
	ck_assert_int_eq(l.e[0].pid, a.c.pid);
	ck_assert_int_eq(seen_a + seen_b + seen_me, 3);
	ck_assert_int_eq(seen_a * seen_b * seen_me, 1);
	/* The in-process view: the artefact, no mode, no count. */
	ck_assert_int_eq(lb_get_holder(local, &h), 1);
	ck_assert_int_eq(h.broker, 0);
	ck_assert_int_eq(h.shared, 0);
	ck_assert_uint_eq(h.holders, 0);
	ck_assert_int_eq(h.pid, a.c.pid);
	/* The artefact's reader leaves: its file now names another. */
	ck_assert_int_eq(agent_do(&a, 'r', 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_get_holder(lock, &h), 1);
	ck_assert_int_eq(h.shared, 1);
	ck_assert_uint_eq(h.holders, 1);
	ck_assert_int_eq(h.pid, b.c.pid);
	/* Upgraded: one holder, exclusive. */
	ck_assert_int_eq(agent_do(&b, 'u', 0), 0);
	ck_assert_int_eq(lb_get_holder(lock, &h), 1);
	ck_assert_int_eq(h.shared, 0);
	ck_assert_uint_eq(h.holders, 1);
	ck_assert_int_eq(h.pid, b.c.pid);
	listed_get(&l, path);
	ck_assert_int_eq(l.n, 1);
	ck_assert_uint_ne(l.e[0].known & LB_LIST_MODE, 0);
	ck_assert_int_eq(l.e[0].shared, 0);
	ck_assert_int_eq(l.e[0].pid, b.c.pid);
	/* Free: nothing held, nothing listed. */
	ck_assert_int_eq(agent_do(&b, 'r', 0), 0);
	ck_assert_int_eq(lb_get_holder(lock, &h), 0);
	ck_assert_int_eq(h.shared, 0);
	ck_assert_uint_eq(h.holders, 0);
	listed_get(&l, path);
	ck_assert_int_eq(l.n, 0);
	agent_stop(&a);
	agent_stop(&b);
	lb_lock_free(local);
	lock_free_clean(lock, p.dir, LB_LINK);
}
END_TEST

TCase *
broker_shared_case(void)
{
	TCase *tc = broker_case("shared", 120);

	tcase_add_loop_test(tc, test_readers_and_writers, 0, TL_NFILE);
	tcase_add_test(tc, test_upgrade_waits);
	tcase_add_test(tc, test_upgrade_canceled);
	tcase_add_test(tc, test_rider_told_lost);
	tcase_add_test(tc, test_artefact_kept_for_readers);
	tcase_add_test(tc, test_shared_needs_the_daemon);
	tcase_add_test(tc, test_downgrade_unanswered);
	tcase_add_test(tc, test_rider_kept_without_the_daemon);
	tcase_add_test(tc, test_rider_kept_over_a_restart);
	tcase_add_test(tc, test_rider_reclaims_after_the_reader_released);
	tcase_add_test(tc, test_riders_kept_over_a_clean_restart);
	tcase_add_test(tc, test_lost_release_kept_for_a_rider_then_settled);
	tcase_add_test(tc, test_downgrade_recorded_unanswered);
	tcase_add_test(tc, test_break_stale_spares_live_riders);
	tcase_add_test(tc, test_exclusive_acquire_beside_riders_without_the_daemon);
	tcase_add_test(tc, test_shared_acquire_adopts_an_in_process_writer);
	tcase_add_test(tc, test_holder_and_list_say_the_mode);
	tcase_add_test(tc, test_deadlock_named);
	return tc;
}
