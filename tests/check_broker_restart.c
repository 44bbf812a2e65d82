/*
 * check_broker_restart.c: the daemon restarted under its clients: killed
 * or stopped with a holder and a waiter, restarted without the holds'
 * record, killed while a question is on its way, and gone for good under
 * AUTO handles.  The pidfile grants' restarts are in
 * check_broker_pidfile.c.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_broker.h"

/* holder_at_private: a private daemon in dir, a fresh lock p, and agent h
 * with a handle on it (flags) through that daemon, holding it. */
static void
holder_at_private(struct tl_daemon *d, char *dir, struct tl_place *p,
    struct agent *h, unsigned flags)
{
	private_daemon(d, dir);
	tl_place_make(p, "lk");
	agent_start(h, p->path, flags, d->socket);
	ck_assert_int_eq(agent_do(h, 'a', 0), 0);
}

/* waiter_waits: agent w asks for the lock (timeout seconds) and is still
 * waiting a moment later. */
static void
waiter_waits(struct agent *w, double timeout)
{
	agent_send(w, 'a', timeout);
	ck_assert(!agent_ready(w, 0.2));
}

/* release_hands_over: agent h releases; asserts that the acquire agent w
 * waits in is granted, within HANDOFF_S of the release. */
static void
release_hands_over(struct agent *h, struct agent *w)
{
	struct answer got;
	double        released;

	ck_assert_int_eq(agent_do(h, 'r', 0), 0);
	released = tl_now();
	got = agent_expect(w, HANG_S, 0, "the waiter");
	ck_assert_msg(got.at - released < HANDOFF_S, "granted %.3f s after "
	    "the release", got.at - released);
}

/* The daemon killed with SIGKILL and restarted on the same socket and
 * state: the holder still holds (same token), nobody else gets it, a
 * waiter that waited through the crash waits on, and the holder's release
 * hands the lock to it. */
START_TEST(test_restart_after_kill)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, w;
	struct answer    before, after;
	char             dir[PATH_MAX];
	lb_lock         *lock;

	holder_at_private(&d, dir, &p, &h, LB_BROKER);
	agent_start(&w, p.path, LB_BROKER, d.socket);
	agent_send(&h, 't', 0);
	before = agent_answer(&h, HANG_S);
	ck_assert_int_eq(before.r, 0);
	waiter_waits(&w, 30.0);

	daemon_restart(&d, dir, "state.db");
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	agent_send(&h, 't', 0);
	after = agent_answer(&h, HANG_S);
	ck_assert_int_eq(after.r, 0);
	ck_assert_msg(after.token == before.token, "token %llu became %llu",
	    (unsigned long long)before.token,
	    (unsigned long long)after.token);
	lock = lock_new(p.path, LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert(!agent_ready(&w, 0.2));
	release_hands_over(&h, &w);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&w, 'r', 0), 0);
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	agent_stop(&w);
	agent_stop(&h);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* A graceful stop (SIGTERM) while a waiter waits, then a restart: the
 * waiter waits on at the next daemon and has the lock when the holder
 * releases it. */
START_TEST(test_restart_after_stop_with_waiter)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, w;
	char             dir[PATH_MAX];

	holder_at_private(&d, dir, &p, &h, LB_BROKER);
	agent_start(&w, p.path, LB_BROKER, d.socket);
	waiter_waits(&w, 30.0);

	ck_assert_int_eq(tl_daemon_stop(&d, SIGTERM), 0);
	ck_assert(!agent_ready(&w, 0.2));       /* still waiting */
	daemon_again(&d, dir, "state.db");
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert(!agent_ready(&w, 0.2));
	release_hands_over(&h, &w);
	ck_assert_int_eq(agent_do(&w, 'i', 0), 1);
	agent_stop(&w);
	agent_stop(&h);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* A restarted daemon that knows nothing of the hold (another state
 * database) does not give it back: the holder's next call says
 * LB_ENOTLOCKED with the reason, once; the lock is free for others. */
START_TEST(test_restart_hold_lost)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h;
	struct answer    a;
	char             dir[PATH_MAX];
	lb_lock         *lock;

	holder_at_private(&d, dir, &p, &h, LB_BROKER);
	daemon_restart(&d, dir, "other-state.db");
	agent_send(&h, 'i', 0);
	a = agent_expect(&h, HANG_S, LB_ENOTLOCKED, "i_am_locking");
	ck_assert_msg(strstr(a.why, "lost") != NULL && strstr(a.why, p.path) !=
	    NULL, "reason: %s", a.why);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 0);
	lock = lock_new(p.path, LB_BROKER);
	take_and_release(lock);
	lb_lock_free(lock);
	agent_stop(&h);
	private_daemon_end(&d, p.dir);
}
END_TEST

/* lb_i_am_locking of an LB_BROKER handle asked while the daemon dies
 * (stopped first, so that the question is on its way, then killed and
 * restarted): waits for the reconnect and answers 1, not LB_ERROR. */
START_TEST(test_restart_i_am_locking_waits)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h;
	char             dir[PATH_MAX];

	holder_at_private(&d, dir, &p, &h, LB_BROKER);
	order_to_stopped(&d, &h, 'i', 0);
	daemon_restart(&d, dir, "state.db");
	agent_expect(&h, HANG_S, 1, "i_am_locking");
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_stop(&h);
	private_daemon_end(&d, p.dir);
}
END_TEST

/* AUTO, and the daemon stops for good while a holder holds and a waiter
 * waits through it: both go on in-process (the holder's release, the
 * waiter's wait) and the waiter gets the lock. */
START_TEST(test_auto_daemon_gone)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, w;
	char             dir[PATH_MAX];

	holder_at_private(&d, dir, &p, &h, 0);
	agent_start(&w, p.path, 0, d.socket);
	ck_assert_int_eq(agent_do(&h, 't', 0), 0);      /* through the broker */
	waiter_waits(&w, 20.0);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGTERM), 0);
	ck_assert(!agent_ready(&w, 0.2));
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_expect(&w, HANG_S, 0, "the waiter");
	ck_assert_int_eq(agent_do(&w, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&w, 't', 0), LB_EFAILED);   /* in-process */
	ck_assert_int_eq(agent_do(&w, 'r', 0), 0);
	agent_stop(&w);
	agent_stop(&h);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* The preload that stops the daemon after a file-system step:
 * tests/stopstep.c, built in $LB_BUILDDIR/tests/.libs. */
#define STOPSTEP_SO "tests/.libs/stopstep.so"

/* More steps than a lock's grant and release take. */
#define STEPS_MAX 12

/* private_daemon_stepping: a private daemon (as private_daemon, in dir)
 * that stops itself (SIGSTOP) right after its step-th file-system step
 * in the directory under (tests/stopstep.c).  A restart in dir
 * (daemon_restart) starts a daemon without the preload. */
static void
private_daemon_stepping(struct tl_daemon *d, char *dir, long step,
    const char *under)
{
	char        stop[64], stop_under[PATH_MAX + 32];
	const char *vars[] = { stop, stop_under, NULL };

	snprintf(stop, sizeof(stop), "LB_TEST_STOP_STEP=%ld", step);
	snprintf(stop_under, sizeof(stop_under), "LB_TEST_STOP_UNDER=%s",
	    under);
	private_daemon_preloaded(d, dir, STOPSTEP_SO, vars);
}

/*
 * The daemon killed right after each file-system step of a grant and then
 * of a release, in turn (stopped there by the preload tests/stopstep.c,
 * then SIGKILLed and started again), for each file method: the lock is
 * never left held by nobody (an mkdir lock directory without a marker, or
 * an empty pid file, blocks everyone for good: nobody can tell whose it
 * is).  After the restart the holder's acquire, sent again, is granted,
 * its release (in-process when its RELEASE was lost) frees the lock,
 * another takes it at once, and nothing is left in the lock's directory.
 */
/* The file methods test_restart_every_step runs with, by _i. */
static const struct {
	unsigned    method;
	const char *name;
} step_methods[] = {
	{ LB_MKDIR, "mkdir" }, { LB_PIDFILE, "pidfile" }, { LB_LINK, "link" },
	{ LB_SYMLINK, "symlink" },
};

/* lock_is_free: the lock at path (method, named name) is free after the
 * daemon was killed after step: an in-process handle takes it at once
 * and lets it go; asserts. */
static void
lock_is_free(const char *path, unsigned method, const char *name,
    long step)
{
	lb_lock *lock = lock_new(path, method | LB_LOCAL);

	ck_assert_msg(lb_acquire(lock, PROMPT_S) == 0, "%s, killed after "
	    "step %ld: the lock is not free: %s", name, step,
	    lb_lock_error(lock));
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
}

START_TEST(test_restart_every_step)
{
	const unsigned   method = step_methods[_i].method;
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h;
	char             dir[PATH_MAX];
	long             step;
	int              releasing;
	const char      *san = getenv("LB_SANITIZERS");

	/* A sanitizer's runtime intercepts the libc calls the preload
	 * interposes, and the daemon dies before either is set up: the
	 * normal build runs this. */
	if (san != NULL && *san != '\0')
		return;
	for (step = 1; step <= STEPS_MAX; step++) {
		tl_place_make(&p, "lk");
		private_daemon_stepping(&d, dir, step, p.dir);
		agent_start(&h, p.path, method | LB_BROKER, d.socket);
		ck_assert_int_eq(agent_do(&h, 'l', 0), 0);      /* connected */
		agent_send(&h, 'a', HANG_S);
		releasing = 0;
		if (!tl_daemon_stopped(&d, 1.0)) {
			agent_expect(&h, HANG_S, 0, "acquire");
			agent_send(&h, 'r', 0);
			releasing = 1;
			if (!tl_daemon_stopped(&d, 1.0)) {
				/* Beyond the last step: all were tried. */
				agent_expect(&h, HANG_S, 0, "release");
				agent_stop(&h);
				private_daemon_end(&d, p.dir);
				break;
			}
		}
		daemon_restart(&d, dir, "state.db");
		if (releasing)
			agent_expect(&h, HANG_S, 0, "release after the restart");
		else {
			agent_expect(&h, HANG_S + PROMPT_S, 0, "acquire after "
			    "the restart");
			ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
		}
		lock_is_free(p.path, method, step_methods[_i].name, step);
		agent_stop(&h);
		private_daemon_end(&d, p.dir);
	}
	ck_assert_msg(step > 2 && step <= STEPS_MAX, "%s: the daemon "
	    "stopped after %ld steps", step_methods[_i].name, step);
}
END_TEST

/*
 * The daemon killed right after each file-system step of a handoff, in
 * turn, and its next holder killed too while the daemon is down (its
 * grant never told, or told and lost with it): for each file method, the
 * old holder's release comes back after the restart, the lock is free,
 * and nothing is left in the lock's directory for good (within the
 * litter watch's look a second).  Before, a link handoff killed between
 * the next holder's unique file and the temporary that names it left
 * that file for ever (chaos, link-readers-kill).
 */
START_TEST(test_handoff_every_step_leaves_nothing)
{
	const unsigned   method = step_methods[_i].method;
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, w;
	char             dir[PATH_MAX];
	double           deadline;
	long             step;
	int              handoffs = 0, left;
	const char      *san = getenv("LB_SANITIZERS");

	/* See test_restart_every_step. */
	if (san != NULL && *san != '\0')
		return;
	for (step = 1; step <= STEPS_MAX; step++) {
		tl_place_make(&p, "lk");
		private_daemon_stepping(&d, dir, step, p.dir);
		agent_start(&h, p.path, method | LB_BROKER, d.socket);
		agent_start(&w, p.path, method | LB_BROKER, d.socket);
		agent_send(&h, 'a', HANG_S);
		if (tl_daemon_stopped(&d, 1.0)) {
			/* A step of the grant: test_restart_every_step's. */
			agent_kill(&h);
			agent_kill(&w);
			ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
			tl_place_remove(p.dir);
			continue;
		}
		agent_expect(&h, HANG_S, 0, "acquire");
		agent_send(&w, 'a', HANG_S);
		tl_sleep(0.3);          /* w queued: a wait, not a bound */
		agent_send(&h, 'r', 0);
		if (!tl_daemon_stopped(&d, 1.0)) {
			/* Beyond the handoff's last step: all were tried
			 * (w's release would stop the daemon: not asked). */
			agent_expect(&h, HANG_S, 0, "release");
			agent_expect(&w, HANG_S, 0, "the handoff");
			agent_kill(&w);
			agent_stop(&h);
			ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
			tl_place_remove(p.dir);
			break;
		}
		handoffs++;
		agent_kill(&w);
		daemon_restart(&d, dir, "state.db");
		agent_expect(&h, HANG_S + PROMPT_S, 0, "release after the "
		    "restart");
		lock_is_free(p.path, method, step_methods[_i].name, step);
		agent_stop(&h);
		deadline = tl_now() + PROMPT_S;
		while ((left = tl_count(p.dir)) > 0 && tl_now() < deadline)
			tl_sleep(0.1);
		ck_assert_msg(left == 0, "%s, killed after step %ld of a "
		    "handoff whose next holder then died: %d names left in %s",
		    step_methods[_i].name, step, left, p.dir);
		private_daemon_end(&d, p.dir);
	}
	ck_assert_msg(step <= STEPS_MAX && handoffs >= 2, "%s: %d steps of "
	    "a handoff (the daemon stopped after %ld steps)",
	    step_methods[_i].name, handoffs, step);
}
END_TEST

/* private_daemon_stepping_before: as private_daemon_stepping, but the
 * daemon stops right before its step-th step in under is tried
 * (LB_TEST_STOP_BEFORE), every try counted. */
static void
private_daemon_stepping_before(struct tl_daemon *d, char *dir, long step,
    const char *under)
{
	char        stop[64], stop_under[PATH_MAX + 32];
	const char *vars[] = { stop, stop_under, "LB_TEST_STOP_BEFORE=1",
	    NULL };

	snprintf(stop, sizeof(stop), "LB_TEST_STOP_STEP=%ld", step);
	snprintf(stop_under, sizeof(stop_under), "LB_TEST_STOP_UNDER=%s",
	    under);
	private_daemon_preloaded(d, dir, STOPSTEP_SO, vars);
}

/*
 * A private daemon in dir (private_daemon_stepping_before) that stops
 * right before its first file-system step in a fresh place *p after it
 * granted agent h, started there with flags (as nobody when nobody is
 * set, the place's directory then of mode 0733: nobody may make names
 * in it but not list it), its ACQUIRE: each step is tried from the
 * first, a daemon stopped before the grant killed with its agent, until
 * one grants.  The grant's reply is read; the daemon is running on, to
 * stop at that step.  Returns the step.
 */
static long
granted_then_stopping(struct tl_daemon *d, char *dir, struct tl_place *p,
    struct agent *h, unsigned flags, int nobody)
{
	long step;

	for (step = 1; step <= STEPS_MAX; step++) {
		tl_place_make(p, "lk");
		if (nobody)
			ck_assert_int_eq(chmod(p->dir, 0733), 0);
		private_daemon_stepping_before(d, dir, step, p->dir);
		if (nobody) {
			ck_assert_int_eq(chmod(dir, 0755), 0);
			agent_start_nobody(h, p->path, flags, d->socket);
		} else
			agent_start(h, p->path, flags, d->socket);
		ck_assert_int_eq(agent_do(h, 'l', 0), 0);       /* connected */
		agent_send(h, 'a', HANG_S);
		if (!tl_daemon_stopped(d, 1.0))
			break;          /* step is the first after the grant */
		agent_kill(h);
		ck_assert_int_eq(tl_daemon_stop(d, SIGKILL), 0);
	}
	ck_assert_int_le(step, STEPS_MAX);
	agent_expect(h, HANG_S, 0, "acquire");
	return step;
}

/*
 * The daemon's release of a dead holder's lock (its client killed, its
 * connection closed) judges the lock file the holder's and then removes
 * it.  A breaker in-process (LB_BREAK_STALE), which judges the same file
 * stale since its holder is dead, must not come between the two: it would
 * remove the file and make its own, which the daemon's unlink would then
 * take from under it, and the next taker would hold the lock beside it.
 * The daemon stopped right before that unlink (tests/stopstep.c,
 * LB_TEST_STOP_BEFORE, at the first step the grant did not take), the
 * breaker either waits or takes the lock; once the daemon has gone on
 * (a STATUS it answers after the release), a breaker that holds the lock
 * still has its lock file, and nobody else can take the lock.
 */
START_TEST(test_release_of_dead_holder_excludes_breakers)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, w;
	char             dir[PATH_MAX];
	lb_lock         *breaker, *look;
	long             step;
	int              r;
	const char      *san = getenv("LB_SANITIZERS");

	/* See test_restart_every_step. */
	if (san != NULL && *san != '\0')
		return;
	step = granted_then_stopping(&d, dir, &p, &h, LB_PIDFILE | LB_BROKER,
	    0);
	agent_kill(&h);         /* its connection closes: the daemon releases */
	ck_assert_msg(tl_daemon_stopped(&d, HANG_S), "the daemon did not "
	    "come to the release's unlink (step %ld); see %s", step, d.log);
	breaker = lock_new(p.path, LB_PIDFILE | LB_LOCAL | LB_BREAK_STALE);
	r = lb_acquire(breaker, 0.3);
	ck_assert_msg(r == 0 || r == LB_ETIMEOUT, "%s",
	    lb_lock_error(breaker));
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	look = lock_new(p.path, LB_PIDFILE | LB_BROKER);
	ck_assert_int_ge(lb_is_locked(look), 0);       /* after the release */
	if (r != 0)
		ck_assert_msg(lb_acquire(breaker, PROMPT_S) == 0, "the lock "
		    "is not free after the daemon's release: %s",
		    lb_lock_error(breaker));
	ck_assert_msg(lb_i_am_locking(breaker) == 1, "the breaker %s the "
	    "lock, and its lock file went with the daemon's release of the "
	    "dead holder's", r == 0 ? "took" : "waited for");
	agent_start(&w, p.path, LB_PIDFILE | LB_LOCAL, NULL);
	agent_send(&w, 'a', 0);
	agent_expect(&w, HANG_S, LB_EALREADY, "another process's try");
	agent_stop(&w);
	ck_assert_int_eq(lb_release(breaker), 0);
	lb_lock_free(look);
	lb_lock_free(breaker);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * As test_release_of_dead_holder_excludes_breakers, with another process
 * holding the lock of the lock's directory (flock(2), which anyone who
 * may read the directory can take) from before the holder dies, for
 * longer than the 2 s a live holder's release waits for it.  The dead
 * holder's release never goes on without it (a daemon that did, and
 * then saw the lock let go between its judgement of the lock file and
 * its unlink, would have a breaker break the stale file and make its own
 * in between, and take that from under it): the daemon does not come to
 * the unlink while the lock is held; once it is let go, the daemon takes
 * it and stops right before its unlink, and a breaker in-process
 * (LB_BREAK_STALE) cannot act meanwhile.  At the end, while the breaker
 * holds the lock, another process's try is refused, and the breaker's
 * lock file is still there.
 */
START_TEST(test_release_without_dirlock_excludes_breakers)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, w;
	char             dir[PATH_MAX];
	lb_lock         *breaker, *look;
	long             step;
	int              r, fd, other;
	const char      *san = getenv("LB_SANITIZERS");

	/* See test_restart_every_step. */
	if (san != NULL && *san != '\0')
		return;
	step = granted_then_stopping(&d, dir, &p, &h, LB_PIDFILE | LB_BROKER,
	    0);
	fd = open(p.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	agent_kill(&h);         /* its connection closes: the daemon releases */
	ck_assert_msg(!tl_daemon_stopped(&d, 4.0), "the daemon came to the "
	    "release's unlink (step %ld) while another process held the "
	    "directory's lock; see %s", step, d.log);
	close(fd);              /* the directory's lock let go */
	ck_assert_msg(tl_daemon_stopped(&d, HANG_S), "the daemon did not "
	    "come to the release's unlink (step %ld) once the directory's "
	    "lock was free; see %s", step, d.log);
	breaker = lock_new(p.path, LB_PIDFILE | LB_LOCAL | LB_BREAK_STALE);
	r = lb_acquire(breaker, 0.3);
	ck_assert_msg(r == 0 || r == LB_ETIMEOUT, "%s",
	    lb_lock_error(breaker));
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	look = lock_new(p.path, LB_PIDFILE | LB_BROKER);
	ck_assert_int_ge(lb_is_locked(look), 0);       /* after the release */
	if (r != 0)
		ck_assert_msg(lb_acquire(breaker, PROMPT_S) == 0, "the lock "
		    "is not free after the daemon's release: %s",
		    lb_lock_error(breaker));
	agent_start(&w, p.path, LB_PIDFILE | LB_LOCAL, NULL);
	agent_send(&w, 'a', 0);
	other = (int)agent_answer(&w, HANG_S).r;
	if (other == 0)
		agent_do(&w, 'r', 0);
	agent_stop(&w);
	ck_assert_msg(other == LB_EALREADY, "another process's try got %d "
	    "while the breaker, which %s the lock, holds it: two holders",
	    other, r == 0 ? "took" : "waited for");
	ck_assert_msg(lb_i_am_locking(breaker) == 1, "the breaker %s the "
	    "lock, and its lock file went with the daemon's release of the "
	    "dead holder's", r == 0 ? "took" : "waited for");
	ck_assert_int_eq(lb_release(breaker), 0);
	lb_lock_free(look);
	lb_lock_free(breaker);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * As test_release_of_dead_holder_excludes_breakers, the holder user
 * nobody in a directory it may write and search but not read (mode 0733,
 * root's): the daemon cannot open the directory as the holder to take
 * its lock, and releases without it, while a breaker who may read the
 * directory (root, in-process, LB_BREAK_STALE) takes that lock, judges
 * the dead holder's pid file stale and makes its own between the
 * daemon's judgement and its unlink (the daemon stopped right before
 * it).  The daemon's unlink must not take the breaker's lock file: while
 * the breaker holds the lock, another process's try is refused.
 */
START_TEST(test_release_in_unreadable_dir_excludes_breakers)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, w;
	char             dir[PATH_MAX];
	lb_lock         *breaker, *look;
	long             step;
	int              r, other;
	const char      *san = getenv("LB_SANITIZERS");

	/* See test_restart_every_step. */
	if ((san != NULL && *san != '\0') || geteuid() != 0)
		return;
	step = granted_then_stopping(&d, dir, &p, &h, LB_PIDFILE | LB_BROKER,
	    1);
	agent_kill(&h);         /* its connection closes: the daemon releases */
	ck_assert_msg(tl_daemon_stopped(&d, HANG_S), "the daemon did not "
	    "come to the release's unlink (step %ld); see %s", step, d.log);
	breaker = lock_new(p.path, LB_PIDFILE | LB_LOCAL | LB_BREAK_STALE);
	r = lb_acquire(breaker, 0.3);
	ck_assert_msg(r == 0 || r == LB_ETIMEOUT, "%s",
	    lb_lock_error(breaker));
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	look = lock_new(p.path, LB_PIDFILE | LB_BROKER);
	ck_assert_int_ge(lb_is_locked(look), 0);       /* after the release */
	if (r != 0)
		ck_assert_msg(lb_acquire(breaker, PROMPT_S) == 0, "the lock "
		    "is not free after the daemon's release: %s",
		    lb_lock_error(breaker));
	agent_start(&w, p.path, LB_PIDFILE | LB_LOCAL, NULL);
	agent_send(&w, 'a', 0);
	other = (int)agent_answer(&w, HANG_S).r;
	if (other == 0)
		agent_do(&w, 'r', 0);
	agent_stop(&w);
	ck_assert_msg(other == LB_EALREADY, "another process's try got %d "
	    "while the breaker, which %s the lock, holds it: two holders",
	    other, r == 0 ? "took" : "waited for");
	ck_assert_int_eq(lb_release(breaker), 0);
	lb_lock_free(look);
	lb_lock_free(breaker);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * A handoff that fails leaves the lock file its old holder's, released
 * when the next holder's hold ends (daemon/swap.c, FAILED): that release
 * too judges the old holder's pid file and then removes it, and its
 * holder is dead (killed: its connection closed, which started the
 * handoff).  Here the handoff's rename over the lock file is refused as
 * busy for good (tests/busyrename.c), the waiter, next holder, killed
 * (its hold ends: the handoff fails), and the daemon stopped right
 * before its unlink of the old holder's pid file (tests/stopstep.c,
 * LB_TEST_STOP_BEFORE, the step found by trying each).  A breaker
 * in-process (LB_BREAK_STALE) then breaks that file and makes its own:
 * the daemon's unlink must not take it, and another process's try must
 * be refused while the breaker holds the lock.
 */
START_TEST(test_failed_handoff_release_excludes_breakers)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, w;
	char             dir[PATH_MAX], tmp[PATH_MAX + 64], stop[64];
	char             stop_under[PATH_MAX + 32], preload[2 * PATH_MAX + 32];
	const char      *b = getenv("LB_BUILDDIR");
	const char      *env[] = { preload, "LB_TEST_BUSY_NAME=lk",
	    "LB_TEST_BUSY_RENAMES=1000000000", stop, stop_under,
	    "LB_TEST_STOP_BEFORE=1", NULL };
	lb_lock         *breaker, *look;
	long             step;
	int              r, other, found = 0;
	const char      *san = getenv("LB_SANITIZERS");

	/* See test_restart_every_step. */
	if (san != NULL && *san != '\0')
		return;
	b = b != NULL && *b != '\0' ? b : ".";
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s/%s %s/%s", b,
	    "tests/.libs/busyrename.so", b, STOPSTEP_SO);
	for (step = 1; step <= STEPS_MAX && !found; step++) {
		int h_alive = 1, w_alive = 1, stopped;

		tl_place_make(&p, "lk");
		snprintf(stop, sizeof(stop), "LB_TEST_STOP_STEP=%ld", step);
		snprintf(stop_under, sizeof(stop_under),
		    "LB_TEST_STOP_UNDER=%s", p.dir);
		private_daemon_env(&d, dir, env);
		agent_start(&h, p.path, LB_PIDFILE | LB_BROKER, d.socket);
		agent_start(&w, p.path, LB_PIDFILE | LB_BROKER, d.socket);
		agent_send(&h, 'a', 0);
		stopped = tl_daemon_stopped(&d, 0.5);
		if (!stopped) {
			agent_expect(&h, HANG_S, 0, "acquire");
			agent_send(&w, 'a', LB_FOREVER);
			stopped = tl_daemon_stopped(&d, 0.5);
		}
		if (!stopped) {
			/* w queued meanwhile, else there is no handoff and
			 * this step is not the one: a wait, not a bound */
			tl_sleep(0.3);
			agent_kill(&h);         /* the handoff: refused */
			h_alive = 0;
			stopped = tl_daemon_stopped(&d, 0.5);
		}
		if (!stopped) {
			snprintf(tmp, sizeof(tmp), "%s/.lockbroker-handoff.%ld",
			    p.dir, (long)w.c.pid);
			agent_kill(&w);         /* the handoff fails */
			w_alive = 0;
			found = tl_daemon_stopped(&d, 1.0) &&
			    access(p.path, F_OK) == 0 && access(tmp, F_OK) == -1;
		}
		if (found)
			break;
		if (h_alive)
			agent_kill(&h);
		if (w_alive)
			agent_kill(&w);
		ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
		tl_place_remove(p.dir);
	}
	ck_assert_msg(found, "the daemon never stopped before the unlink of "
	    "the old holder's pid file after a failed handoff");
	breaker = lock_new(p.path, LB_PIDFILE | LB_LOCAL | LB_BREAK_STALE);
	r = lb_acquire(breaker, 0.3);
	ck_assert_msg(r == 0 || r == LB_ETIMEOUT, "%s",
	    lb_lock_error(breaker));
	ck_assert_int_eq(kill(d.pid, SIGCONT), 0);
	look = lock_new(p.path, LB_PIDFILE | LB_BROKER);
	ck_assert_int_ge(lb_is_locked(look), 0);       /* after the release */
	if (r != 0)
		ck_assert_msg(lb_acquire(breaker, PROMPT_S) == 0, "the lock "
		    "is not free after the daemon's release: %s",
		    lb_lock_error(breaker));
	agent_start(&w, p.path, LB_PIDFILE | LB_LOCAL, NULL);
	agent_send(&w, 'a', 0);
	other = (int)agent_answer(&w, HANG_S).r;
	if (other == 0)
		agent_do(&w, 'r', 0);
	agent_stop(&w);
	ck_assert_msg(other == LB_EALREADY, "another process's try got %d "
	    "while the breaker, which %s the lock, holds it: two holders "
	    "(step %ld)", other, r == 0 ? "took" : "waited for", step);
	ck_assert_int_eq(lb_release(breaker), 0);
	lb_lock_free(look);
	lb_lock_free(breaker);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * The daemon killed right after each file-system step of a break, with
 * the link or symlink method, of a lock directory (lockfile's
 * MkdirLockFile format: another program's lock on the same path): when
 * it stops, the directory is still whole with its marker, or gone; never
 * in place without its marker, which would be held by nobody for good.
 * What the killed daemon left beside it (its temporary, no lock) goes
 * with the next lock directory taken there.
 */
static const unsigned break_methods[] = { LB_LINK, LB_SYMLINK };

START_TEST(test_break_lock_dir_every_step)
{
	const unsigned   method = break_methods[_i];
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h;
	char             dir[PATH_MAX], lock_file[PATH_MAX + 8];
	char             marker[PATH_MAX + 32];
	lb_lock         *lock;
	long             step;
	const char      *san = getenv("LB_SANITIZERS");

	/* See test_restart_every_step. */
	if (san != NULL && *san != '\0')
		return;
	for (step = 1; step <= STEPS_MAX; step++) {
		tl_place_make(&p, "lk");
		snprintf(lock_file, sizeof(lock_file), "%s.lock", p.path);
		ck_assert_int_eq(mkdir(lock_file, 0755), 0);
		tl_path_join(marker, sizeof(marker), lock_file,
		    "elsewhere.4242");
		tl_write_text(marker, "");
		private_daemon_stepping(&d, dir, step, p.dir);
		agent_start(&h, p.path, method | LB_BROKER, d.socket);
		ck_assert_int_eq(agent_do(&h, 'l', 0), 1);      /* connected */
		agent_send(&h, 'b', 0);
		if (!tl_daemon_stopped(&d, 1.0)) {
			/* Beyond the last step: all were tried. */
			agent_expect(&h, HANG_S, 0, "break");
			ck_assert(!tl_exists(lock_file));
			agent_stop(&h);
			private_daemon_end(&d, p.dir);
			break;
		}
		ck_assert_msg(!tl_exists(lock_file) || tl_exists(marker),
		    "%s break, killed after step %ld: the lock directory is "
		    "there without its marker", lb_method_name(method),
		    step);
		daemon_restart(&d, dir, "state.db");
		(void)agent_answer(&h, HANG_S + PROMPT_S);
		agent_stop(&h);
		if (tl_exists(lock_file)) {
			ck_assert_int_eq(tl_count(lock_file), 1);
			ck_assert_int_eq(unlink(marker), 0);
			ck_assert_int_eq(rmdir(lock_file), 0);
		}
		lock = lock_new(p.path, LB_MKDIR | LB_LOCAL);
		ck_assert_int_eq(lb_acquire(lock, 0), 0);
		ck_assert_int_eq(lb_release(lock), 0);
		lb_lock_free(lock);
		private_daemon_end(&d, p.dir);
	}
	ck_assert_msg(step > 2 && step <= STEPS_MAX, "%s break: the daemon "
	    "stopped after %ld steps", lb_method_name(method), step);
}
END_TEST

/*
 * A RELEASE lost with the daemon (killed while it was on its way): the
 * library releases in-process under the lock directory's lock (flock(2)
 * here), which a restarted daemon takes to finish a handoff it recorded,
 * so that its look at the lock file and the removal never straddle that
 * handoff's rename.  Never without it: while another holds the
 * directory's lock past the wait (5 s), the release fails, LB_EUNLOCK,
 * naming the lock and the directory, the lock file stays and the owner
 * still holds the lock; a release again, the directory's lock still
 * held, fails the same way (it is not done without it either); once the
 * directory's lock is free, a release again removes the lock file.
 */
START_TEST(test_restart_lost_release_excludes_handoffs)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h;
	struct answer    a;
	char             dir[PATH_MAX], lock_file[PATH_MAX + 8];
	int              dfd, i;

	tl_place_make(&p, "lk");
	snprintf(lock_file, sizeof(lock_file), "%s.lock", p.path);
	private_daemon(&d, dir);
	agent_start(&h, p.path, 0, d.socket);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert((dfd = open(p.dir, O_RDONLY | O_DIRECTORY)) != -1);
	ck_assert_int_eq(flock(dfd, LOCK_EX | LOCK_NB), 0);
	order_to_stopped(&d, &h, 'r', 0);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
	for (i = 0; i < 2; i++) {
		if (i == 1)
			agent_send(&h, 'r', 0);
		a = agent_expect(&h, HANG_S, LB_EUNLOCK, "the release while "
		    "the directory's lock is held");
		ck_assert_msg(strstr(a.why, p.path) != NULL &&
		    strstr(a.why, "lock of its directory") != NULL,
		    "the failure does not name the lock and its directory's "
		    "lock: %s", a.why);
		ck_assert_msg(tl_exists(lock_file), "the release after the "
		    "lost RELEASE removed the lock file without the "
		    "directory's lock (try %d)", i + 1);
		ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	}
	close(dfd);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert(!tl_exists(lock_file));
	ck_assert_int_eq(agent_do(&h, 'i', 0), 0);
	agent_stop(&h);
	daemon_again(&d, dir, "state.db");
	private_daemon_end(&d, p.dir);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A pause inside the library's own removal of a lock file.             */

/*
 * unlink(2), interposed for this program (and the library it links):
 * while pause_name is set (in the process that set it, and the agents
 * forked after), the first unlink of a file of that base name stops
 * before it is done: it makes the file pause_reached, then waits for
 * pause_go to exist (HANG_S at most).  So a test can stop an agent's
 * in-process release between its look at the lock file (still its
 * own?) and its removal.  Everything else goes straight to unlinkat.
 */
static const char *pause_name;
static char        pause_reached[PATH_MAX], pause_go[PATH_MAX];

__attribute__((visibility("default"))) int unlink(const char *path);

int
unlink(const char *path)
{
	const char *base = strrchr(path, '/');
	double      end;
	int         fd;

	base = base != NULL ? base + 1 : path;
	if (pause_name != NULL && strcmp(base, pause_name) == 0) {
		pause_name = NULL;      /* once */
		if ((fd = open(pause_reached, O_WRONLY | O_CREAT | O_EXCL,
		    0600)) != -1)
			close(fd);
		end = tl_now() + HANG_S;
		while (access(pause_go, F_OK) != 0 && tl_now() < end)
			tl_sleep(0.001);
	}
	return unlinkat(AT_FDCWD, path, 0);
}

/*
 * A RELEASE lost with the daemon, its in-process release (lock.c:
 * lost_release) stopped between its look at the lock file (the owner's
 * still) and its removal, the directory's lock held as it is there;
 * meanwhile the daemon is started again, the library's reader thread
 * reclaims the dropped hold and releases it (RECLAIM, RELEASE), and the
 * waiter, asking again, is granted the lock by the new daemon.  Then the
 * in-process release goes on.  The waiter's lock file must stay: the
 * lock is the waiter's, on disk as at the daemon.
 */
START_TEST(test_restart_lost_release_not_the_next_holders)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, w;
	lb_lock         *probe;
	char             dir[PATH_MAX], lock_file[PATH_MAX + 8];
	double           end;
	int              granted;

	tl_place_make(&p, "lk");
	snprintf(lock_file, sizeof(lock_file), "%s.lock", p.path);
	private_daemon(&d, dir);
	tl_path_join(pause_reached, sizeof(pause_reached), dir, "reached");
	tl_path_join(pause_go, sizeof(pause_go), dir, "go");
	pause_name = "lk.lock";
	agent_start(&h, p.path, 0, d.socket);
	pause_name = NULL;      /* h's alone */
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	probe = lock_new(p.path, LB_BROKER);
	agent_start(&w, p.path, 0, d.socket);
	agent_queues(&w, LB_FOREVER, probe, 1);
	lb_lock_free(probe);
	order_to_stopped(&d, &h, 'r', 0);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
	end = tl_now() + HANG_S;
	while (!tl_exists(pause_reached) && tl_now() < end)
		tl_sleep(0.005);
	ck_assert_msg(tl_exists(pause_reached), "the release after the lost "
	    "RELEASE did not come to remove the lock file");
	daemon_again(&d, dir, "state.db");
	/* Time for the reconnects and the grant, if the daemon makes it
	 * now; not asserted (a later grant is right too). */
	granted = agent_ready(&w, PROMPT_S);
	tl_write_text(pause_go, "");
	ck_assert_int_eq(agent_expect(&h, HANG_S, 0, "the release").r, 0);
	if (!granted)
		ck_assert_int_eq(agent_expect(&w, HANG_S, 0, "the waiter").r,
		    0);
	else
		ck_assert_int_eq(agent_answer(&w, 0).r, 0);
	ck_assert_msg(tl_exists(lock_file), "the in-process release after "
	    "the lost RELEASE removed %s, the next holder's lock file (the "
	    "waiter granted %s it went on)", lock_file, granted ? "before" :
	    "after");
	ck_assert_int_eq(agent_do(&w, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&w, 'r', 0), 0);
	agent_stop(&w);
	agent_stop(&h);
	private_daemon_end(&d, p.dir);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The case's tests, in the order they run. */
TCase *
broker_restart_case(void)
{
	TCase *tc = broker_case("restart", 90);

	tcase_add_test(tc, test_restart_after_kill);
	tcase_add_test(tc, test_restart_after_stop_with_waiter);
	tcase_add_test(tc, test_restart_hold_lost);
	tcase_add_test(tc, test_restart_i_am_locking_waits);
	broker_pidfile_restart_tests(tc);
	tcase_add_loop_test(tc, test_restart_every_step, 0,
	    (int)(sizeof(step_methods) / sizeof(step_methods[0])));
	tcase_add_loop_test(tc, test_handoff_every_step_leaves_nothing, 0,
	    (int)(sizeof(step_methods) / sizeof(step_methods[0])));
	tcase_add_loop_test(tc, test_break_lock_dir_every_step, 0,
	    (int)(sizeof(break_methods) / sizeof(break_methods[0])));
	tcase_add_test(tc, test_release_of_dead_holder_excludes_breakers);
	tcase_add_test(tc, test_release_without_dirlock_excludes_breakers);
	tcase_add_test(tc, test_release_in_unreadable_dir_excludes_breakers);
	tcase_add_test(tc, test_failed_handoff_release_excludes_breakers);
	tcase_add_test(tc, test_auto_daemon_gone);
	tcase_add_test(tc, test_restart_lost_release_excludes_handoffs);
	tcase_add_test(tc, test_restart_lost_release_not_the_next_holders);
	return tc;
}
