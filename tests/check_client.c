/*
 * check_client.c: the check suite of liblockbroker's public API
 * (lockbroker.h), run against every lock method with check's loop tests
 * (_i indexes methods[]).
 *
 * Holders in other processes are real forked children, owners in other
 * threads are real threads.  Every test works in a directory of its own
 * under one private temporary directory that main() makes and removes.
 * Timing is asserted only with generous bounds (a wait of 0.3 s lasted at
 * least 0.25 s; nothing hung for 10 s).
 */
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lockbroker.h"
#include "testclient.h"
#include "testlib.h"

/* Generous bounds: a call that should return at once, and a hang. */
#define PROMPT_S 5.0
#define HANG_S   10.0

/* How long a holder keeps a lock that a waiter should get, and how long a
 * waiter waits for one it should not. */
#define HOLD_S   0.3
#define WAIT_S   0.3
#define WAIT_MIN 0.25

/* ------------------------------------------------------------------ */
/* Holders: forked children that hold a lock.                          */

struct holder {
	struct tl_child c;      /* finishing it tells the child to release */
};

/* What a holder child is to take. */
struct hold {
	const char *path;
	unsigned    flags;
	double      hold;
};

/* The holder child: takes the lock, tells the parent acquire's result,
 * keeps the lock until the parent finishes it or hold seconds (when > 0)
 * pass, then releases and exits with the negated result of lb_release. */
static int
holder_run(void *arg, int ctl, int ready)
{
	const struct hold *h = arg;
	struct pollfd      pfd = { .fd = ctl, .events = POLLIN };
	lb_lock           *lock;
	int                r = LB_ENOMEM;

	if ((lock = lb_lock_new(h->path, h->flags)) != NULL)
		r = lb_acquire(lock, HANG_S);
	if (write(ready, &r, sizeof(r)) != (ssize_t)sizeof(r) || r != 0)
		return 100;
	while (poll(&pfd, 1, h->hold > 0 ? (int)(h->hold * 1000) : -1) ==
	    -1 && errno == EINTR)
		;
	r = lb_release(lock);
	return -r;
}

/*
 * holder_start: forks a child that takes the lock on path with flags and
 * keeps it until holder_end (hold 0) or for hold seconds.  Returns the
 * child's lb_acquire result once it has it (0: the child holds the lock).
 */
static int
holder_start(struct holder *h, const char *path, unsigned flags, double hold)
{
	struct hold what = { path, flags, hold };
	int         r = LB_ERROR;

	tl_child_start(&h->c, TL_CLOSE_FDS, holder_run, &what);
	if (read(h->c.from, &r, sizeof(r)) != (ssize_t)sizeof(r))
		r = LB_ERROR;
	return r;
}

/* holder_end: tells the holder to release now (or, unless now, lets its
 * hold time run out), reaps it and returns its lb_release result; 1000
 * when it did not exit normally. */
static int
holder_end(struct holder *h, int now)
{
	int status;

	if (now)
		tl_child_finish(&h->c);
	status = tl_child_wait(&h->c);
	if (!WIFEXITED(status))
		return 1000;
	return -WEXITSTATUS(status);
}

/* holder_kill: kills the holder with SIGKILL and reaps it (a zombie would
 * still count as alive). */
static void
holder_kill(struct holder *h)
{
	int status = tl_child_kill(&h->c);

	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* ------------------------------------------------------------------ */
/* The timeout table.                                                  */

/* LB_FOREVER waits for a holder that lets go, then has the lock. */
START_TEST(test_timeout_forever)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct holder   h;
	lb_lock        *lock;
	double          t0, elapsed;

	tl_place_make(&p, "lk");
	ck_assert_int_eq(holder_start(&h, p.path, m, HOLD_S), 0);
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire(lock, LB_FOREVER), 0);
	elapsed = tl_now() - t0;
	ck_assert_msg(elapsed < HANG_S, "waited %.2f s", elapsed);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(holder_end(&h, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* timeout <= 0 tries once: LB_EALREADY at once while another holds it. */
START_TEST(test_timeout_try_once)
{
	static const double tries[] = { 0, -1, -INFINITY };
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct holder   h;
	lb_lock        *lock;
	double          t0, elapsed;
	size_t          k;
	int             r;

	tl_place_make(&p, "lk");
	ck_assert_int_eq(holder_start(&h, p.path, m, 0), 0);
	lock = lock_new(p.path, m);
	for (k = 0; k < sizeof(tries) / sizeof(tries[0]); k++) {
		t0 = tl_now();
		r = lb_acquire(lock, tries[k]);
		elapsed = tl_now() - t0;
		ck_assert_msg(r == LB_EALREADY, "timeout %g: %s", tries[k],
		    lb_error_name(r));
		ck_assert_msg(elapsed < PROMPT_S, "timeout %g took %.2f s",
		    tries[k], elapsed);
		assert_reason_names(lock, p.path);
		ck_assert_int_eq(lb_i_am_locking(lock), 0);
	}
	ck_assert_int_eq(holder_end(&h, 1), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* timeout > 0 against a longer hold: LB_ETIMEOUT after about that long,
 * and the holder keeps its lock. */
START_TEST(test_timeout_expires)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct holder   h;
	lb_holder       who;
	lb_lock        *lock;
	double          t0, elapsed;

	tl_place_make(&p, "lk");
	ck_assert_int_eq(holder_start(&h, p.path, m, 0), 0);
	lock = lock_new(p.path, m);
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire(lock, WAIT_S), LB_ETIMEOUT);
	elapsed = tl_now() - t0;
	ck_assert_msg(elapsed >= WAIT_MIN && elapsed < HANG_S,
	    "timeout %g s returned after %.3f s", WAIT_S, elapsed);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.pid, h.c.pid);
	ck_assert_int_eq(holder_end(&h, 1), 0);
	lb_lock_free(lock);
	/* A waiter that gave up leaves nothing behind. */
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* timeout > 0 and the holder lets go in time: granted. */
START_TEST(test_timeout_in_time)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct holder   h;
	lb_lock        *lock;
	double          t0, elapsed;

	tl_place_make(&p, "lk");
	ck_assert_int_eq(holder_start(&h, p.path, m, HOLD_S), 0);
	lock = lock_new(p.path, m);
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	elapsed = tl_now() - t0;
	ck_assert_msg(elapsed < HANG_S, "waited %.2f s", elapsed);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(holder_end(&h, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
}
END_TEST

/* A NaN timeout is LB_EINVAL and takes nothing. */
START_TEST(test_timeout_nan)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	lb_lock        *lock;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire(lock, NAN), LB_EINVAL);
	ck_assert_str_ne(lb_lock_error(lock), "");
	ck_assert_int_eq(lb_is_locked(lock), 0);
	lb_lock_free(lock);
	/* Nothing taken, and a look makes no sqlite database either. */
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Re-entrancy, ownership, release.                                    */

/* Acquiring twice needs one release; the second is LB_ENOTLOCKED. */
START_TEST(test_reentrant_no_counter)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	lb_lock        *lock;
	double          t0;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m);
	ck_assert_str_eq(lb_lock_error(lock), "");
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire(lock, LB_FOREVER), 0);
	ck_assert_int_eq(lb_acquire(lock, WAIT_S), 0);
	ck_assert(tl_now() - t0 < PROMPT_S);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_release(lock), 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	assert_reason_names(lock, p.path);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* Threaded ownership: a handle made in another thread is another owner
 * (for every method, LB_PIDFILE too, although its artefact names only the
 * process), and a handle shared between threads acts as the owner of the
 * thread that made it. */
START_TEST(test_owner_threaded)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct peek     pk;
	pthread_t       t;
	lb_lock        *mine, *theirs, *theirs_too;

	tl_place_make(&p, "lk");
	mine = lock_new(p.path, m);
	new_in_thread(p.path, m, &theirs, &theirs_too);

	ck_assert_int_eq(lb_acquire(mine, 0), 0);
	ck_assert_int_eq(lb_is_locked(theirs), 1);
	ck_assert_int_eq(lb_i_am_locking(theirs), 0);
	ck_assert_int_eq(lb_acquire(theirs, 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(theirs), LB_ENOTMINE);
	assert_reason_names(theirs, p.path);
	ck_assert_int_eq(lb_i_am_locking(mine), 1);
	ck_assert_int_eq(lb_release(mine), 0);

	/* theirs, used from this thread, is still the other thread's. */
	ck_assert_int_eq(lb_acquire(theirs, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(theirs_too), 1);
	ck_assert_int_eq(lb_i_am_locking(mine), 0);
	ck_assert_int_eq(lb_acquire(mine, 0), LB_EALREADY);
	/* ... and from a third thread too. */
	pk.lock = theirs;
	ck_assert_int_eq(pthread_create(&t, NULL, peek_and_release, &pk), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(pk.mine, 1);
	ck_assert_int_eq(pk.released, 0);
	ck_assert_int_eq(lb_is_locked(mine), 0);

	lb_lock_free(theirs_too);
	lb_lock_free(theirs);
	lb_lock_free(mine);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* LB_UNTHREADED: handles made in two threads of one process are one
 * owner. */
START_TEST(test_owner_unthreaded)
{
	unsigned        m = tl_all_methods[_i] | LB_UNTHREADED;
	struct tl_place p;
	lb_lock        *mine, *theirs, *theirs_too;

	tl_place_make(&p, "lk");
	mine = lock_new(p.path, m);
	new_in_thread(p.path, m, &theirs, &theirs_too);
	ck_assert_int_eq(lb_acquire(mine, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(theirs), 1);
	ck_assert_int_eq(lb_acquire(theirs, 0), 0);
	ck_assert_int_eq(lb_release(theirs), 0);
	ck_assert_int_eq(lb_i_am_locking(mine), 0);
	ck_assert_int_eq(lb_is_locked(mine), 0);
	ck_assert_int_eq(lb_release(mine), LB_ENOTLOCKED);
	ck_assert_int_eq(lb_acquire(theirs, 0), 0);
	ck_assert_int_eq(lb_release(mine), 0);
	lb_lock_free(theirs_too);
	lb_lock_free(theirs);
	lb_lock_free(mine);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m & LB_METHOD_MASK));
}
END_TEST

/* Release: LB_ENOTLOCKED when nobody holds the lock, LB_ENOTMINE when
 * another does (who keeps it), each with a reason naming the path. */
START_TEST(test_release_not_locked_not_mine)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct holder   h;
	lb_lock        *lock;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(holder_start(&h, p.path, m, 0), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTMINE);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_int_eq(holder_end(&h, 1), 0);
	ck_assert_int_eq(lb_release(lock), LB_ENOTLOCKED);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* lb_break_lock takes a lock from its holder; the old holder's late
 * release fails and leaves the new holder's lock alone. */
START_TEST(test_break_then_late_release)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct holder   h;
	lb_lock        *lock;

	tl_place_make(&p, "lk");
	ck_assert_int_eq(holder_start(&h, p.path, m, 0), 0);
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_break_lock(lock), 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(holder_end(&h, 1), LB_ENOTMINE);
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_release(lock), 0);
	/* Breaking a free lock is no error. */
	ck_assert_int_eq(lb_break_lock(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* What a child process sees of a lock its parent holds. */
struct view {
	const char *path;
	unsigned    method;
	int         locked;
	pid_t       holder;
};

static void
view_child(void *arg, char *why, size_t size)
{
	struct view *v = arg;
	lb_holder    who;
	lb_lock     *lock;

	if ((lock = lb_lock_new(v->path, v->method)) == NULL) {
		snprintf(why, size, "lb_lock_new: %s", strerror(errno));
		return;
	}
	TL_EXPECT(lb_is_locked(lock), v->locked);
	TL_EXPECT(lb_i_am_locking(lock), 0);
	TL_EXPECT(lb_get_holder(lock, &who), v->locked);
	TL_EXPECT(who.pid, v->holder);
	lb_lock_free(lock);
}

/* lb_is_locked and lb_i_am_locking agree across owners: threads and
 * processes. */
START_TEST(test_views_agree)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct view     v;
	lb_lock        *mine, *theirs, *theirs_too;

	tl_place_make(&p, "lk");
	mine = lock_new(p.path, m);
	new_in_thread(p.path, m, &theirs, &theirs_too);
	v.path = p.path;
	v.method = m;
	v.locked = 0;
	v.holder = 0;
	tl_in_child(0, view_child, &v);
	ck_assert_int_eq(lb_is_locked(mine), 0);
	ck_assert_int_eq(lb_is_locked(theirs), 0);
	ck_assert_int_eq(lb_i_am_locking(mine), 0);
	ck_assert_int_eq(lb_i_am_locking(theirs), 0);

	ck_assert_int_eq(lb_acquire(mine, 0), 0);
	v.locked = 1;
	v.holder = getpid();
	tl_in_child(0, view_child, &v);
	ck_assert_int_eq(lb_is_locked(mine), 1);
	ck_assert_int_eq(lb_is_locked(theirs), 1);
	ck_assert_int_eq(lb_i_am_locking(mine), 1);
	ck_assert_int_eq(lb_i_am_locking(theirs), 0);

	ck_assert_int_eq(lb_release(mine), 0);
	ck_assert_int_eq(lb_is_locked(theirs), 0);
	lb_lock_free(theirs_too);
	lb_lock_free(theirs);
	lb_lock_free(mine);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Holders, staleness, fork.                                           */

/* lb_get_holder names the holding child, alive; after SIGKILL, dead; and
 * when nobody holds the lock, nothing. */
START_TEST(test_get_holder)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct holder   h;
	lb_holder       who;
	lb_lock        *lock;
	char            host[256];

	host_name(host, sizeof(host));
	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m);
	assert_no_holder(lock, &who);
	ck_assert_str_eq(who.host, "");

	ck_assert_int_eq(holder_start(&h, p.path, m, 0), 0);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.pid, h.c.pid);
	ck_assert_str_eq(who.host, host);
	ck_assert_str_ne(who.unique_name, "");
	ck_assert_int_eq(who.liveness, LB_HOLDER_ALIVE);
	/* The child's main thread has the child's pid as its id. */
	ck_assert_int_eq(who.tid, m == LB_PIDFILE ? 0 : h.c.pid);
	if (m == LB_SQLITE)
		ck_assert(who.uid == (uid_t)-1 || who.uid == geteuid());
	else {
		ck_assert_int_eq(who.uid, geteuid());
		ck_assert_msg(who.since > 0 &&
		    fabs(who.since - (double)time(NULL)) < 600,
		    "since %f", who.since);
	}
	ck_assert_int_eq(lb_is_locked(lock), 1);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);

	holder_kill(&h);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.pid, h.c.pid);
	ck_assert_int_eq(who.liveness, LB_HOLDER_DEAD);
	ck_assert_int_eq(lb_is_locked(lock), 1);

	ck_assert_int_eq(lb_break_lock(lock), 0);
	ck_assert_int_eq(lb_get_holder(lock, &who), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* LB_BREAK_STALE takes a dead holder's lock; without it the lock stays
 * taken. */
START_TEST(test_break_stale_dead)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct holder   h;
	lb_holder       who;
	lb_lock        *plain, *breaker;

	tl_place_make(&p, "lk");
	ck_assert_int_eq(holder_start(&h, p.path, m, 0), 0);
	holder_kill(&h);
	plain = lock_new(p.path, m);
	breaker = lock_new(p.path, m | LB_BREAK_STALE);
	ck_assert_int_eq(lb_acquire(plain, 0), LB_EALREADY);
	ck_assert_int_eq(lb_acquire(breaker, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(breaker), 1);
	/* Both handles are this thread's: one owner, whatever the flags. */
	ck_assert_int_eq(lb_i_am_locking(plain), 1);
	ck_assert_int_eq(lb_get_holder(plain, &who), 1);
	ck_assert_int_eq(who.pid, getpid());
	ck_assert_int_eq(lb_release(breaker), 0);
	lb_lock_free(breaker);
	lb_lock_free(plain);
	/* The dead holder's artefacts went with its lock. */
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* LB_BREAK_STALE never breaks a live holder's lock. */
START_TEST(test_break_stale_alive)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct holder   h;
	lb_holder       who;
	lb_lock        *breaker;

	tl_place_make(&p, "lk");
	ck_assert_int_eq(holder_start(&h, p.path, m, 0), 0);
	breaker = lock_new(p.path, m | LB_BREAK_STALE);
	ck_assert_int_eq(lb_acquire(breaker, 0), LB_EALREADY);
	ck_assert_int_eq(lb_acquire(breaker, 0.1), LB_ETIMEOUT);
	ck_assert_int_eq(lb_get_holder(breaker, &who), 1);
	ck_assert_int_eq(who.pid, h.c.pid);
	ck_assert_int_eq(holder_end(&h, 1), 0);
	lb_lock_free(breaker);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* The parent's handle, in a forked child. */
struct forked {
	lb_lock    *lock;
	const char *path;
	unsigned    method;
};

static void
fork_child(void *arg, char *why, size_t size)
{
	struct forked *f = arg;
	lb_lock       *other;

	TL_EXPECT(lb_i_am_locking(f->lock), 0);
	TL_EXPECT(lb_is_locked(f->lock), 1);
	TL_EXPECT(lb_acquire(f->lock, 0), LB_EALREADY);
	TL_EXPECT(lb_release(f->lock), LB_ENOTMINE);
	lb_lock_free(f->lock);
	if ((other = lb_lock_new(f->path, f->method)) == NULL) {
		snprintf(why, size, "lb_lock_new: %s", strerror(errno));
		return;
	}
	TL_EXPECT(lb_is_locked(other), 1);
	TL_EXPECT(lb_i_am_locking(other), 0);
	lb_lock_free(other);
}

/* A forked child does not own its parent's lock, and freeing the handle
 * in the child leaves the parent's lock alone. */
START_TEST(test_fork_child_not_owner)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	struct forked   f;

	tl_place_make(&p, "lk");
	f.lock = lock_new(p.path, m);
	f.path = p.path;
	f.method = m;
	ck_assert_int_eq(lb_acquire(f.lock, 0), 0);
	tl_in_child(0, fork_child, &f);
	ck_assert_int_eq(lb_is_locked(f.lock), 1);
	ck_assert_int_eq(lb_i_am_locking(f.lock), 1);
	ck_assert_int_eq(lb_release(f.lock), 0);
	lb_lock_free(f.lock);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* A thread that calls call on a shared handle until stop. */
struct busy {
	lb_lock *lock;
	int    (*call)(lb_lock *);
	int      stop;
};

static void *
busy_run(void *arg)
{
	struct busy *b = arg;

	while (!__atomic_load_n(&b->stop, __ATOMIC_SEQ_CST))
		(void)b->call(b->lock);
	return NULL;
}

/* busy_fork's child: its calls on the handle answer (a hang ends it by
 * SIGALRM, which fails the check). */
static void
busy_fork_child(void *arg, char *why, size_t size)
{
	lb_lock *lock = arg;

	alarm((unsigned)HANG_S);
	TL_EXPECT(lb_acquire(lock, 0), 0);
	TL_EXPECT(lb_i_am_locking(lock), 1);
	TL_EXPECT(lb_release(lock), 0);
}

/* Forks n children (busy_fork_child) of a handle on a lock in method m
 * while another thread calls call on the handle again and again; then
 * frees it. */
static void
busy_fork(unsigned m, int (*call)(lb_lock *), int n)
{
	struct tl_place p;
	struct busy     b = { NULL, call, 0 };
	pthread_t       t;
	int             k;

	tl_place_make(&p, "lk");
	b.lock = lock_new(p.path, m | LB_LOCAL);
	ck_assert_int_eq(pthread_create(&t, NULL, busy_run, &b), 0);
	for (k = 0; k < n; k++)
		tl_in_child(0, busy_fork_child, b.lock);
	__atomic_store_n(&b.stop, 1, __ATOMIC_SEQ_CST);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	lock_free_clean(b.lock, p.dir, m);
}

/* Forks while another thread is inside calls on the handle (holding its
 * mutex for a step now and then): each child uses the handle as its own,
 * the mutex it inherited made anew.  Every method but sqlite, the last
 * of tl_all_methods: sqlite's own process-wide state is not made anew in
 * such a child (liblockbroker(3), BUGS). */
START_TEST(test_fork_while_handle_busy)
{
	busy_fork(tl_all_methods[_i], lb_is_locked, 40);
}
END_TEST

/* Forks while another thread cancels on the handle again and again
 * (each lb_lock_cancel holds the handle's cancel mutex for a moment):
 * each child's calls answer, the cancel mutex it inherited, perhaps
 * held, made anew.  One method: the cancel state is the same for all. */
START_TEST(test_fork_while_cancel_busy)
{
	const char *san = getenv("LB_SANITIZERS");

	/* Under a sanitizer a fork of a threaded process is slow (the
	 * thread sanitizer's: about 0.4 s): fewer, within the case's time. */
	busy_fork(tl_all_methods[0], lb_lock_cancel, san != NULL &&
	    *san != '\0' ? 40 : 150);
}
END_TEST

/* An acquire of a thread's own handle (made by the thread, its owner)
 * that waits while another owner holds the lock; waiting is set by its
 * interrupt hook, which a waiting acquire calls, after lock is set. */
struct waiter {
	const char *path;
	lb_lock    *lock;
	int         waiting;
	int         r;
};

static int
waiter_hook(void *arg)
{
	__atomic_store_n((int *)arg, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void *
waiter_run(void *arg)
{
	struct waiter *w = arg;

	w->lock = lock_new(w->path, LB_LOCAL);
	if (lb_lock_set_interrupt(w->lock, waiter_hook, &w->waiting) == 0)
		w->r = lb_acquire(w->lock, HANG_S);
	return NULL;
}

/* fork_cancel_idle's child: the parent's acquire in progress is not the
 * child's, so a cancel there ends nothing (0). */
static void
cancel_idle_child(void *arg, char *why, size_t size)
{
	TL_EXPECT(lb_lock_cancel(arg), 0);
}

/* A child forked while a thread of the parent waits in lb_acquire on a
 * handle has no acquire in progress on it: lb_lock_cancel, its first call
 * on the handle, says 0; the parent's cancel still ends the wait. */
START_TEST(test_fork_cancel_idle)
{
	struct tl_place p;
	struct waiter   w = { NULL, NULL, 0, -1 };
	lb_lock        *holder;
	pthread_t       t;
	double          t0;

	tl_place_make(&p, "lk");
	holder = lock_new(p.path, LB_LOCAL);
	ck_assert_int_eq(lb_acquire(holder, 0), 0);
	w.path = p.path;
	ck_assert_int_eq(pthread_create(&t, NULL, waiter_run, &w), 0);
	t0 = tl_now();
	while (!__atomic_load_n(&w.waiting, __ATOMIC_SEQ_CST) &&
	    tl_now() - t0 < PROMPT_S)
		usleep(1000);
	ck_assert_msg(w.waiting, "the acquire never waited");
	tl_in_child(0, cancel_idle_child, w.lock);
	ck_assert_int_eq(lb_lock_cancel(w.lock), 1);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(w.r, LB_ECANCELED);
	lb_lock_free(w.lock);
	ck_assert_int_eq(lb_release(holder), 0);
	lock_free_clean(holder, p.dir, LB_LOCAL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Failures.                                                           */

/* A lock in a directory that does not exist cannot be taken: LB_EFAILED
 * at once, whatever the timeout, with a reason naming the path. */
START_TEST(test_missing_directory)
{
	static const double timeouts[] = { 0, WAIT_S, LB_FOREVER };
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	lb_lock        *lock;
	double          t0, elapsed;
	size_t          k;
	int             r;

	tl_place_make(&p, "missing/lk");
	lock = lock_new(p.path, m);
	for (k = 0; k < sizeof(timeouts) / sizeof(timeouts[0]); k++) {
		t0 = tl_now();
		r = lb_acquire(lock, timeouts[k]);
		elapsed = tl_now() - t0;
		ck_assert_msg(r == LB_EFAILED, "timeout %g: %s", timeouts[k],
		    lb_error_name(r));
		ck_assert_msg(elapsed < PROMPT_S, "timeout %g took %.2f s",
		    timeouts[k], elapsed);
		assert_reason_names(lock, p.path);
	}
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* A lock to take in a directory the caller cannot write. */
struct unwritable {
	const char *dir;
	const char *path;
	unsigned    method;
};

static void
unwritable_child(void *arg, char *why, size_t size)
{
	struct unwritable *u = arg;
	lb_lock           *lock;

	/* The premise: this process may not write there. */
	TL_EXPECT(access(u->dir, W_OK) == -1 && errno == EACCES, 1);
	if ((lock = lb_lock_new(u->path, u->method)) == NULL) {
		snprintf(why, size, "lb_lock_new: %s", strerror(errno));
		return;
	}
	TL_EXPECT(lb_acquire(lock, 0), LB_EFAILED);
	if (strstr(lb_lock_error(lock), u->dir) == NULL) {
		snprintf(why, size, "reason \"%s\" does not name %s",
		    lb_lock_error(lock), u->dir);
		return;
	}
	TL_EXPECT(lb_acquire(lock, LB_FOREVER), LB_EFAILED);
	lb_lock_free(lock);
}

/* A directory the caller cannot write: LB_EFAILED.  Run as an unprivileged
 * child (root may write anywhere). */
START_TEST(test_unwritable_directory)
{
	struct unwritable u;
	struct tl_place   p;
	char              ro[PATH_MAX];

	tl_place_make(&p, "ro/lk");
	tl_path_join(ro, sizeof(ro), p.dir, "ro");
	ck_assert_int_eq(mkdir(ro, 0555), 0);
	ck_assert_int_eq(chmod(ro, 0555), 0);
	/* Let the unprivileged child reach it. */
	ck_assert_int_eq(chmod(tl_top, 0711), 0);
	ck_assert_int_eq(chmod(p.dir, 0711), 0);
	u.dir = ro;
	u.path = p.path;
	u.method = tl_all_methods[_i];
	tl_in_child(TL_AS_NOBODY, unwritable_child, &u);
	ck_assert_int_eq(tl_count(ro), 0);
}
END_TEST

/* File systems where link(2) of a fresh file fails. */
enum nolink_fs {
	NOLINK_TMPFS_FULL,      /* a tmpfs of two inodes: links count */
	NOLINK_VFAT             /* no hard links (nor symlinks) at all */
};

struct nolink {
	enum nolink_fs fs;
	const char    *dir;     /* where to put the image and mount point */
};

/*
 * Mounts the file system of n on mnt, in a mount namespace of this (child)
 * process's own, so that it goes when the child does.  Needs root (or
 * CAP_SYS_ADMIN); vfat needs mkfs.vfat or mkfs.fat and the kernel's vfat.
 * Returns 0, or -1 with TL_SKIP and the reason in why.
 */
static int
nolink_mount(const struct nolink *n, const char *mnt, char *why,
    size_t size)
{
	char img[PATH_MAX], cmd[4 * PATH_MAX];
	int  len, fd;

	if (unshare(CLONE_NEWNS) == -1 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1) {
		snprintf(why, size, TL_SKIP "no private mount namespace: %s",
		    strerror(errno));
		return -1;
	}
	if (n->fs == NOLINK_TMPFS_FULL) {
		if (mount("lbtest", mnt, "tmpfs", 0, "nr_inodes=2,size=1m") ==
		    -1) {
			snprintf(why, size, TL_SKIP "cannot mount tmpfs: %s",
			    strerror(errno));
			return -1;
		}
		/* The premise: the mount's root and one file use it up, so
		 * that link(2) fails (older kernels did not count links). */
		tl_path_join(img, sizeof(img), mnt, "probe");
		tl_path_join(cmd, sizeof(cmd), mnt, "probe2");
		if ((fd = open(img, O_WRONLY | O_CREAT, 0644)) == -1) {
			snprintf(why, size, "cannot create %s: %s", img,
			    strerror(errno));
			return -1;
		}
		close(fd);
		if (link(img, cmd) == 0) {
			snprintf(why, size, TL_SKIP "this tmpfs does not "
			    "count hard links as inodes");
			return -1;
		}
		unlink(img);
		return 0;
	}
	tl_path_join(img, sizeof(img), n->dir, "vfat.img");
	len = snprintf(cmd, sizeof(cmd), "{ command -v mkfs.vfat || "
	    "command -v mkfs.fat; } >/dev/null 2>&1 || exit 3; "
	    "{ truncate -s 8M '%s' && { mkfs.vfat '%s' || mkfs.fat '%s'; } && "
	    "mount -o loop -t vfat '%s' '%s'; } >/dev/null 2>&1",
	    img, img, img, img, mnt);
	if (len < 0 || (size_t)len >= sizeof(cmd)) {
		snprintf(why, size, "path too long");
		return -1;
	}
	switch (system(cmd)) {
	case 0:
		return 0;
	case 3 << 8:
		snprintf(why, size, TL_SKIP "no vfat: no mkfs.vfat or "
		    "mkfs.fat (dosfstools)");
		return -1;
	default:
		snprintf(why, size, TL_SKIP "no vfat: cannot make or mount "
		    "an image (kernel without vfat?)");
		return -1;
	}
}

static void
nolink_child(void *arg, char *why, size_t size)
{
	const struct nolink *n = arg;
	lb_lock             *lock;
	char                 mnt[PATH_MAX], path[PATH_MAX];
	double               t0;
	unsigned             method;

	tl_path_join(mnt, sizeof(mnt), n->dir, "mnt");
	tl_path_join(path, sizeof(path), mnt, "lk");
	if (mkdir(mnt, 0755) == -1) {
		snprintf(why, size, "mkdir %s: %s", mnt, strerror(errno));
		return;
	}
	if (nolink_mount(n, mnt, why, size) == -1)
		return;
	for (method = LB_LINK; method <= LB_SYMLINK; method++) {
		/* A full tmpfs still takes symlinks (no inode is free, but
		 * the check is of the link method there). */
		if (n->fs == NOLINK_TMPFS_FULL && method != LB_LINK)
			continue;
		if ((lock = lb_lock_new(path, method)) == NULL) {
			snprintf(why, size, "lb_lock_new: %s", strerror(errno));
			return;
		}
		t0 = tl_now();
		TL_EXPECT(lb_acquire(lock, 2.0), LB_EFAILED);
		TL_EXPECT(tl_now() - t0 < PROMPT_S, 1);
		TL_EXPECT(strstr(lb_lock_error(lock), path) != NULL, 1);
		TL_EXPECT(lb_acquire(lock, LB_FOREVER), LB_EFAILED);
		TL_EXPECT(lb_is_locked(lock), 0);
		lb_lock_free(lock);
		/* The link method's unique file is not left behind. */
		TL_EXPECT(tl_count(mnt), 0);
	}
}

/* Runs nolink_child on a file system fs mounted in a fresh directory. */
static void
nolink_check(enum nolink_fs fs)
{
	struct tl_place p;
	struct nolink   n;

	tl_place_make(&p, "unused");
	n.fs = fs;
	n.dir = p.dir;
	tl_in_child(0, nolink_child, &n);
}

/* Where link(2) fails for a reason other than EEXIST (a file system without
 * hard links, or a full one), the link method fails (LB_EFAILED) rather
 * than wait forever as lockfile does, and leaves nothing behind.  Needs
 * root for the mount; skipped, with a note, where it cannot be made. */
START_TEST(test_link_fails_on_full_fs)
{
	nolink_check(NOLINK_TMPFS_FULL);
}
END_TEST

/* The same on vfat, which has no hard links at all (nor symlinks, so the
 * symlink method fails too).  Skipped, with a note, where no vfat can be
 * made without installing anything. */
START_TEST(test_no_hard_links_vfat)
{
	nolink_check(NOLINK_VFAT);
}
END_TEST

/* LB_BROKER, with no broker in this build: every call fails, acquire with
 * LB_EFAILED and a reason, and nothing touches the disk. */
START_TEST(test_broker_unavailable)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	lb_holder       who;
	lb_lock        *lock;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m | LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EFAILED);
	assert_reason_names(lock, p.path);
	ck_assert_int_eq(lb_acquire(lock, LB_FOREVER), LB_EFAILED);
	ck_assert_int_lt(lb_release(lock), 0);
	ck_assert_int_lt(lb_is_locked(lock), 0);
	ck_assert_int_lt(lb_i_am_locking(lock), 0);
	ck_assert_int_lt(lb_break_lock(lock), 0);
	ck_assert_int_lt(lb_get_holder(lock, &who), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);

	/* LB_LOCAL is the in-process transport. */
	lock = lock_new(p.path, m | LB_LOCAL);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bad arguments.                                                      */

/* Asserts that lb_lock_new(path, flags) fails with errno want. */
static void
assert_new_fails(const char *path, unsigned flags, int want)
{
	lb_lock *lock;

	errno = 0;
	lock = lb_lock_new(path, flags);
	ck_assert_msg(lock == NULL, "lb_lock_new(%.40s..., %#x) succeeded",
	    path != NULL ? path : "(null)", flags);
	ck_assert_msg(errno == want, "lb_lock_new(%.40s..., %#x): errno %s, "
	    "expected %s", path != NULL ? path : "(null)", flags,
	    strerror(errno), strerror(want));
}

/* Names up to NAME_MAX - 5 fit (room for ".lock"); longer ones and paths
 * longer than PATH_MAX are ENAMETOOLONG. */
START_TEST(test_name_lengths)
{
	unsigned        m = tl_all_methods[_i];
	struct tl_place p;
	lb_lock        *lock;
	char            name[NAME_MAX + 2], *long_path;
	size_t          n;

	memset(name, 'n', NAME_MAX - 5);
	name[NAME_MAX - 5] = '\0';
	tl_place_make(&p, name);
	lock = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire(lock, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(lock), 1);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);

	memset(name, 'n', NAME_MAX - 4);
	name[NAME_MAX - 4] = '\0';
	tl_path_join(p.path, sizeof(p.path), p.dir, name);
	assert_new_fails(p.path, m, ENAMETOOLONG);

	/* "/d/d/d...": every component short, the whole too long. */
	for (n = PATH_MAX + 1; n <= 3 * PATH_MAX; n += PATH_MAX) {
		ck_assert_ptr_nonnull(long_path = malloc(n + 1));
		memset(long_path, '/', n);
		for (size_t k = 1; k < n; k += 2)
			long_path[k] = 'd';
		long_path[n] = '\0';
		assert_new_fails(long_path, m, ENAMETOOLONG);
		free(long_path);
	}
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* NULL or empty paths and bad flags are EINVAL. */
START_TEST(test_new_bad_arguments)
{
	static const unsigned bad[] = {
		0x0100u, 0x8000u, 0x80000000u, LB_LOCAL | LB_BROKER,
		LB_LOCAL | LB_BROKER | LB_MKDIR, 5, 6, 7, 8, 15,
	};
	char   path[PATH_MAX];
	size_t k;

	tl_path_join(path, sizeof(path), tl_top, "lk");
	assert_new_fails(NULL, 0, EINVAL);
	assert_new_fails("", 0, EINVAL);
	assert_new_fails(NULL, LB_PIDFILE, EINVAL);
	assert_new_fails("", LB_SQLITE, EINVAL);
	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_new_fails(path, bad[k], EINVAL);
}
END_TEST

static void
count_call(void *arg)
{
	(*(int *)arg)++;
}

/* Every function survives a NULL handle. */
START_TEST(test_null_handle)
{
	lb_holder who;
	int       calls = 0;

	ck_assert_int_eq(lb_acquire(NULL, 0), LB_EINVAL);
	ck_assert_int_eq(lb_acquire(NULL, LB_FOREVER), LB_EINVAL);
	ck_assert_int_eq(lb_release(NULL), LB_EINVAL);
	ck_assert_int_eq(lb_is_locked(NULL), LB_EINVAL);
	ck_assert_int_eq(lb_i_am_locking(NULL), LB_EINVAL);
	ck_assert_int_eq(lb_break_lock(NULL), LB_EINVAL);
	ck_assert_int_eq(lb_get_holder(NULL, &who), LB_EINVAL);
	ck_assert_ptr_null(lb_lock_path(NULL));
	ck_assert_ptr_null(lb_lock_file(NULL));
	ck_assert_ptr_null(lb_unique_name(NULL));
	/* The header does not say what this returns; it must not crash. */
	(void)lb_lock_error(NULL);
	lb_lock_free(NULL);
	lb_lock_forget(NULL);
	ck_assert_int_eq(lb_locked(NULL, 0, count_call, &calls), LB_EINVAL);
	ck_assert_int_eq(lb_locked("", 0, count_call, &calls), LB_EINVAL);
	ck_assert_int_eq(calls, 0);
}
END_TEST

/* A handle with a NULL out for lb_get_holder, a NULL fn for lb_locked, and
 * the getters of a good handle. */
START_TEST(test_null_arguments)
{
	struct tl_place p;
	lb_lock        *lock;
	char            want[PATH_MAX + 8];

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, 0);
	ck_assert_int_eq(lb_get_holder(lock, NULL), LB_EINVAL);
	ck_assert_int_eq(lb_locked(p.path, 0, NULL, NULL), LB_EINVAL);
	ck_assert_str_eq(lb_lock_path(lock), p.path);
	ck_assert_int_lt(snprintf(want, sizeof(want), "%s.lock", p.path),
	    (int)sizeof(want));
	ck_assert_str_eq(lb_lock_file(lock), want);
	ck_assert_ptr_nonnull(lb_unique_name(lock));
	ck_assert_str_ne(lb_unique_name(lock), "");
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* lb_locked.                                                          */

/* lb_locked calls fn once with the lock held and releases it after; when
 * another holds the lock it returns the timeout's code and fn is not
 * called. */
START_TEST(test_locked)
{
	struct locked_call c = { NULL, 0, -1, -1, NULL };
	struct tl_place    p;
	struct holder      h;
	lb_lock           *lock;
	double             t0, elapsed;

	tl_place_make(&p, "lk");
	c.path = p.path;
	ck_assert_int_eq(lb_locked(p.path, 0, locked_fn, &c), 0);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_ptr_nonnull(c.peer);
	ck_assert_int_eq(c.locked, 1);
	ck_assert_int_eq(c.mine, 1);
	ck_assert_int_eq(lb_is_locked(c.peer), 0);
	lb_lock_free(c.peer);
	ck_assert_int_eq(tl_count(p.dir), 0);

	c.calls = 0;
	ck_assert_int_eq(holder_start(&h, p.path, 0, 0), 0);
	ck_assert_int_eq(lb_locked(p.path, 0, locked_fn, &c), LB_EALREADY);
	ck_assert_int_eq(lb_locked(p.path, -1, locked_fn, &c), LB_EALREADY);
	t0 = tl_now();
	ck_assert_int_eq(lb_locked(p.path, WAIT_S, locked_fn, &c),
	    LB_ETIMEOUT);
	elapsed = tl_now() - t0;
	ck_assert_msg(elapsed >= WAIT_MIN && elapsed < HANG_S, "%.3f s",
	    elapsed);
	ck_assert_int_eq(c.calls, 0);
	ck_assert_int_eq(holder_end(&h, 1), 0);

	/* Waiting for a holder that lets go in time. */
	ck_assert_int_eq(holder_start(&h, p.path, 0, HOLD_S), 0);
	ck_assert_int_eq(lb_locked(p.path, LB_FOREVER, locked_fn, &c), 0);
	ck_assert_int_eq(c.calls, 1);
	lb_lock_free(c.peer);
	ck_assert_int_eq(holder_end(&h, 0), 0);
	lock = lock_new(p.path, 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Error codes.                                                        */

static const struct {
	int         code;
	const char *name;
	int         ancestors[3];   /* above it, up to LB_ERROR; 0 ends */
} codes[] = {
	{ LB_ERROR,      "LB_ERROR",      { 0 } },
	{ LB_ELOCK,      "LB_ELOCK",      { LB_ERROR, 0 } },
	{ LB_ETIMEOUT,   "LB_ETIMEOUT",   { LB_ELOCK, LB_ERROR, 0 } },
	{ LB_EALREADY,   "LB_EALREADY",   { LB_ELOCK, LB_ERROR, 0 } },
	{ LB_EFAILED,    "LB_EFAILED",    { LB_ELOCK, LB_ERROR, 0 } },
	{ LB_EUNLOCK,    "LB_EUNLOCK",    { LB_ERROR, 0 } },
	{ LB_ENOTLOCKED, "LB_ENOTLOCKED", { LB_EUNLOCK, LB_ERROR, 0 } },
	{ LB_ENOTMINE,   "LB_ENOTMINE",   { LB_EUNLOCK, LB_ERROR, 0 } },
	{ LB_EINVAL,     "LB_EINVAL",     { LB_ERROR, 0 } },
	{ LB_ENOMEM,     "LB_ENOMEM",     { LB_ERROR, 0 } },
	{ LB_ECANCELED,  "LB_ECANCELED",  { LB_ELOCK, LB_ERROR, 0 } },
	{ LB_EDEADLK,    "LB_EDEADLK",    { LB_ELOCK, LB_ERROR, 0 } },
};
#define NCODES ((int)(sizeof(codes) / sizeof(codes[0])))

/* Whether code descends from (or is) base, by the table above. */
static int
expect_is(int ci, int base)
{
	int k;

	if (codes[ci].code == base)
		return 1;
	for (k = 0; codes[ci].ancestors[k] != 0; k++)
		if (codes[ci].ancestors[k] == base)
			return 1;
	return 0;
}

/* lb_error_is for every pair of codes, lockfile's hierarchy. */
START_TEST(test_error_hierarchy)
{
	int a, b;

	for (a = 0; a < NCODES; a++)
		for (b = 0; b < NCODES; b++)
			ck_assert_msg(lb_error_is(codes[a].code,
			    codes[b].code) == expect_is(a, codes[b].code),
			    "lb_error_is(%s, %s)", codes[a].name,
			    codes[b].name);
	ck_assert_int_eq(lb_error_is(LB_ETIMEOUT, LB_ELOCK), 1);
	ck_assert_int_eq(lb_error_is(LB_ETIMEOUT, LB_ERROR), 1);
	ck_assert_int_eq(lb_error_is(LB_ETIMEOUT, LB_EUNLOCK), 0);
	ck_assert_int_eq(lb_error_is(LB_ENOTMINE, LB_EUNLOCK), 1);
	ck_assert_int_eq(lb_error_is(LB_ENOTMINE, LB_ELOCK), 0);
	ck_assert_int_eq(lb_error_is(LB_ELOCK, LB_ETIMEOUT), 0);
	/* 0 is success, not an error; unknown codes descend from nothing. */
	for (b = 0; b < NCODES; b++) {
		ck_assert_int_eq(lb_error_is(0, codes[b].code), 0);
		ck_assert_int_eq(lb_error_is(-42, codes[b].code), 0);
		ck_assert_int_eq(lb_error_is(7, codes[b].code), 0);
	}
}
END_TEST

/* lb_strerror and lb_error_name for every code and unknown ones. */
START_TEST(test_error_strings)
{
	static const int unknown[] = { -13, -42, 1, 9, -1000, -2147483647 };
	const char *msg[NCODES];
	size_t      k;
	int         a, b;

	for (a = 0; a < NCODES; a++) {
		ck_assert_str_eq(lb_error_name(codes[a].code), codes[a].name);
		msg[a] = lb_strerror(codes[a].code);
		ck_assert_ptr_nonnull(msg[a]);
		ck_assert_str_ne(msg[a], "");
		ck_assert_str_ne(msg[a], "unknown error");
		for (b = 0; b < a; b++)
			ck_assert_str_ne(msg[a], msg[b]);
	}
	ck_assert_str_eq(lb_strerror(LB_ETIMEOUT), "timed out waiting for lock");
	for (k = 0; k < sizeof(unknown) / sizeof(unknown[0]); k++) {
		ck_assert_str_eq(lb_strerror(unknown[k]), "unknown error");
		ck_assert_str_eq(lb_error_name(unknown[k]), "LB_E?");
	}
	ck_assert_ptr_nonnull(lb_strerror(0));
	ck_assert_ptr_nonnull(lb_error_name(0));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Threads.                                                            */

#define NTHREADS 8

/* One thread's use of a handle shared by all (LB_UNTHREADED: one owner). */
struct shared_use {
	lb_lock *lock;
	double   until;         /* monotonic deadline */
	int      max;           /* iterations at most */
	int      rounds;
	int      acquired;
	char     bad[128];      /* the first unexpected answer */
};

static void *
shared_use_run(void *arg)
{
	struct shared_use *u = arg;
	int                r;

	for (u->rounds = 0; u->rounds < u->max && tl_now() < u->until;
	    u->rounds++) {
		if ((r = lb_is_locked(u->lock)) != 0 && r != 1)
			goto bad;
		if ((r = lb_i_am_locking(u->lock)) != 0 && r != 1)
			goto bad;
		/* One owner: never held by another. */
		if ((r = lb_acquire(u->lock, 0)) != 0)
			goto bad;
		u->acquired++;
		if ((r = lb_i_am_locking(u->lock)) != 0 && r != 1)
			goto bad;
		if ((r = lb_release(u->lock)) != 0 && r != LB_ENOTLOCKED)
			goto bad;
	}
	return NULL;
bad:
	snprintf(u->bad, sizeof(u->bad), "round %d: %s (%s)", u->rounds,
	    lb_error_name(r), lb_lock_error(u->lock));
	return NULL;
}

/* Eight threads share one LB_UNTHREADED handle: no crash, and only the
 * answers one owner can get. */
START_TEST(test_threads_share_handle)
{
	unsigned          m = tl_all_methods[_i];
	struct shared_use use[NTHREADS];
	struct tl_place   p;
	pthread_t         t[NTHREADS];
	lb_lock          *lock;
	double            until;
	int               k, r;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m | LB_UNTHREADED);
	until = tl_now() + 0.7;
	for (k = 0; k < NTHREADS; k++) {
		memset(&use[k], 0, sizeof(use[k]));
		use[k].lock = lock;
		use[k].until = until;
		use[k].max = m == LB_SQLITE ? 40 : 300;
		ck_assert_int_eq(pthread_create(&t[k], NULL, shared_use_run,
		    &use[k]), 0);
	}
	for (k = 0; k < NTHREADS; k++)
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
	for (k = 0; k < NTHREADS; k++) {
		ck_assert_msg(use[k].bad[0] == '\0', "thread %d: %s", k,
		    use[k].bad);
		ck_assert_int_gt(use[k].acquired, 0);
	}
	r = lb_release(lock);
	ck_assert_msg(r == 0 || r == LB_ENOTLOCKED, "%s", lb_error_name(r));
	ck_assert_int_eq(lb_is_locked(lock), 0);
	ck_assert_int_eq(lb_i_am_locking(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* Mutual exclusion, counted: workers increment a counter under the lock,
 * and count how many are inside at once. */
struct counting {
	const char   *path;
	unsigned      method;
	int           rounds;
	volatile int *counter;
	int          *inside;   /* owners inside now (atomics) */
	char          bad[128];
};

/* Adds rounds to the counter, each under the lock, by a read, a pause and
 * a write that lose updates unless the lock excludes; an owner that finds
 * another inside, or whose acquire, look or release fails, says so in
 * bad. */
static void
count_under_lock(struct counting *c)
{
	struct timespec pause = { 0, 200 * 1000 };
	lb_lock        *lock;
	int             k, r = 0, v, n;

	if ((lock = lb_lock_new(c->path, c->method)) == NULL) {
		snprintf(c->bad, sizeof(c->bad), "lb_lock_new: %s",
		    strerror(errno));
		return;
	}
	for (k = 0; k < c->rounds; k++) {
		if ((r = lb_acquire(lock, 30.0)) != 0)
			break;
		if ((n = __atomic_add_fetch(c->inside, 1, __ATOMIC_SEQ_CST)) !=
		    1 && c->bad[0] == '\0')
			snprintf(c->bad, sizeof(c->bad), "round %d: %d owners "
			    "inside", k, n);
		if ((r = lb_i_am_locking(lock)) != 1) {
			snprintf(c->bad, sizeof(c->bad), "round %d: not mine "
			    "after acquire (%d)", k, r);
			break;
		}
		v = *c->counter;
		nanosleep(&pause, NULL);
		*c->counter = v + 1;
		__atomic_sub_fetch(c->inside, 1, __ATOMIC_SEQ_CST);
		if ((r = lb_release(lock)) != 0)
			break;
	}
	if (r < 0)
		snprintf(c->bad, sizeof(c->bad), "round %d: %s (%s)", k,
		    lb_error_name(r), lb_lock_error(lock));
	lb_lock_free(lock);
}

static void *
count_thread(void *arg)
{
	count_under_lock(arg);
	return NULL;
}

/* Eight owners on one path, with flags: threads of this process with
 * their own handles, or (processes) forked children; the count is exact,
 * no two are inside at once, and no call fails. */
static void
count_exactly(unsigned flags, int processes)
{
	struct counting c[NTHREADS];
	struct tl_place p;
	pthread_t       t[NTHREADS];
	pid_t           pid[NTHREADS];
	volatile int   *counter;
	int            *inside;
	int             k, status;
	int             rounds = (flags & LB_METHOD_MASK) == LB_SQLITE ? 10 : 40;

	tl_place_make(&p, "lk");
	counter = mmap(NULL, 2 * sizeof(int), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(counter != MAP_FAILED);
	inside = (int *)counter + 1;
	*counter = 0;
	*inside = 0;
	for (k = 0; k < NTHREADS; k++) {
		memset(&c[k], 0, sizeof(c[k]));
		c[k].path = p.path;
		c[k].method = flags;
		c[k].rounds = rounds;
		c[k].counter = counter;
		c[k].inside = inside;
		if (!processes) {
			ck_assert_int_eq(pthread_create(&t[k], NULL,
			    count_thread, &c[k]), 0);
			continue;
		}
		pid[k] = fork();
		ck_assert_int_ne(pid[k], -1);
		if (pid[k] == 0) {
			count_under_lock(&c[k]);
			if (c[k].bad[0] != '\0')
				fprintf(stderr, "worker %d: %s\n", k,
				    c[k].bad);
			_exit(c[k].bad[0] == '\0' ? 0 : 1);
		}
	}
	for (k = 0; k < NTHREADS; k++) {
		if (!processes) {
			ck_assert_int_eq(pthread_join(t[k], NULL), 0);
			ck_assert_msg(c[k].bad[0] == '\0', "thread %d: %s",
			    k, c[k].bad);
			continue;
		}
		ck_assert_int_eq(waitpid(pid[k], &status, 0), pid[k]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "worker %d: status %#x", k, status);
	}
	ck_assert_int_eq(*counter, NTHREADS * rounds);
	munmap((void *)counter, 2 * sizeof(int));
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(flags &
	    LB_METHOD_MASK));
}

/* Eight threads of this process, each with its own handle, in-process:
 * eight owners, for every method (the pidfile method too, whose artefact
 * names only the process). */
START_TEST(test_threads_count_exactly)
{
	count_exactly(tl_all_methods[_i] | LB_LOCAL, 0);
}
END_TEST

/* Eight processes. */
START_TEST(test_processes_count_exactly)
{
	count_exactly(tl_all_methods[_i] | LB_LOCAL, 1);
}
END_TEST

/* A probe: another handle of the same owner, made, used and freed while
 * the owner holds the lock, releases nothing; nor does one that acquired
 * again (re-entrant); the handle that acquired releases when freed; a
 * release through any handle of the owner releases, as in lockfile. */
START_TEST(test_probe_free_keeps_lock)
{
	unsigned        m = tl_all_methods[_i] | LB_LOCAL;
	struct tl_place p;
	lb_lock        *h, *q;

	tl_place_make(&p, "lk");
	h = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire(h, 0), 0);
	assert_probes_keep(h, p.path, m);
	ck_assert_int_eq(lb_is_locked(h), 1);
	ck_assert_int_eq(lb_release(h), 0);
	ck_assert_int_eq(lb_is_locked(h), 0);

	/* The acquiring handle's free releases. */
	q = lock_new(p.path, m);
	ck_assert_int_eq(lb_acquire(q, 0), 0);
	lb_lock_free(q);
	ck_assert_int_eq(lb_is_locked(h), 0);

	/* Released through a second handle of the owner; h freed after. */
	ck_assert_int_eq(lb_acquire(h, 0), 0);
	q = lock_new(p.path, m);
	ck_assert_int_eq(lb_release(q), 0);
	ck_assert_int_eq(lb_is_locked(h), 0);
	ck_assert_int_eq(lb_acquire(q, 0), 0);
	lb_lock_free(h);                /* acquired, but released since */
	ck_assert_int_eq(lb_i_am_locking(q), 1);
	ck_assert_int_eq(lb_release(q), 0);
	lb_lock_free(q);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(tl_all_methods[_i]));
}
END_TEST

/* A forgotten handle's hold stays with its owner, in-process
 * (assert_forget_keeps); its artefact stays on disk until released. */
START_TEST(test_forget_keeps_hold)
{
	unsigned        m = tl_all_methods[_i] | LB_LOCAL;
	struct tl_place p;

	tl_place_make(&p, "lk");
	assert_forget_keeps(p.path, m);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(tl_all_methods[_i]));
}
END_TEST

/* lb_locked whose function probes the lock with a handle of its own
 * returns 0: the probe's free released nothing. */
START_TEST(test_locked_probe_freed)
{
	struct locked_call c = { NULL, 0, -1, -1, NULL };
	struct tl_place    p;
	lb_lock           *lock;

	tl_place_make(&p, "lk");
	c.path = p.path;
	ck_assert_int_eq(lb_locked(p.path, 0, locked_probe_fn, &c), 0);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.locked, 1);
	ck_assert_int_eq(c.mine, 1);
	lock = lock_new(p.path, 0);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* A pid file naming this process that no owner of it holds (left by an
 * earlier process with this pid) is taken over by an acquire, and is
 * nobody's until then. */
START_TEST(test_pidfile_leftover)
{
	struct tl_place p;
	lb_lock        *a, *b, *b2;
	FILE           *f;

	tl_place_make(&p, "lk");
	ck_assert_ptr_nonnull(f = fopen(p.path, "w"));
	fprintf(f, "%ld\n", (long)getpid());
	fclose(f);
	a = lock_new(p.path, LB_PIDFILE | LB_LOCAL);
	new_in_thread(p.path, LB_PIDFILE | LB_LOCAL, &b, &b2);
	ck_assert_int_eq(lb_is_locked(a), 1);
	ck_assert_int_eq(lb_i_am_locking(a), 0);
	ck_assert_int_eq(lb_acquire(a, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(a), 1);
	ck_assert_int_eq(lb_i_am_locking(b), 0);
	ck_assert_int_eq(lb_acquire(b, 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(b), LB_ENOTMINE);
	ck_assert_int_eq(lb_release(a), 0);
	ck_assert_int_eq(lb_acquire(b, 0), 0);
	ck_assert_int_eq(lb_acquire(a, 0), LB_EALREADY);
	lb_lock_free(b2);
	lb_lock_free(b);
	ck_assert_int_eq(lb_is_locked(a), 0);
	lb_lock_free(a);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* A pidfile hold broken behind its owner's back (the file removed by
 * someone else), then taken by another thread: the first owner does not
 * think it holds it, and waits like any other owner. */
START_TEST(test_pidfile_broken_then_other_thread)
{
	struct tl_place p;
	lb_lock        *a, *b, *b2;

	tl_place_make(&p, "lk");
	a = lock_new(p.path, LB_PIDFILE | LB_LOCAL);
	new_in_thread(p.path, LB_PIDFILE | LB_LOCAL, &b, &b2);
	ck_assert_int_eq(lb_acquire(a, 0), 0);
	ck_assert_int_eq(unlink(p.path), 0);
	ck_assert_int_eq(lb_acquire(b, 0), 0);
	ck_assert_int_eq(lb_i_am_locking(a), 0);
	ck_assert_int_eq(lb_acquire(a, 0), LB_EALREADY);
	ck_assert_int_eq(lb_release(a), LB_ENOTMINE);
	ck_assert_int_eq(lb_i_am_locking(b), 1);
	ck_assert_int_eq(lb_release(b), 0);
	lb_lock_free(b2);
	lb_lock_free(b);
	lb_lock_free(a);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* A finite timeout beyond what clocks count (1e19 s, 1e300, DBL_MAX) is
 * forever: on a free lock, granted at once; on a held one, granted when
 * its holder lets go. */
START_TEST(test_timeout_huge)
{
	static const double huge[] = { 1e10, 1e19, 1e300, DBL_MAX };
	unsigned        m = tl_all_methods[_i] | LB_LOCAL;
	struct tl_place p;
	struct holder   h;
	lb_lock        *lock;
	double          t0;
	size_t          k;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, m);
	for (k = 0; k < sizeof(huge) / sizeof(huge[0]); k++) {
		t0 = tl_now();
		ck_assert_int_eq(lb_acquire(lock, huge[k]), 0);
		ck_assert(tl_now() - t0 < PROMPT_S);
		ck_assert_int_eq(lb_release(lock), 0);
	}
	ck_assert_int_eq(holder_start(&h, p.path, m, HOLD_S), 0);
	ck_assert_int_eq(lb_acquire(lock, 1e19), 0);
	ck_assert_int_eq(holder_end(&h, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	lb_lock_free(lock);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Several locks at once (lb_acquire_all), in-process.                 */

/* How many locks the sets below take. */
#define SET_N 3

/* Makes SET_N handles with flags on locks a, b, c in p's directory
 * (their paths into paths). */
static void
set_make(const struct tl_place *p, unsigned flags, lb_lock **set,
    char paths[][PATH_MAX])
{
	size_t i;

	for (i = 0; i < SET_N; i++) {
		char name[2] = { (char)('a' + i), '\0' };

		tl_path_join(paths[i], PATH_MAX, p->dir, name);
		set[i] = lock_new(paths[i], flags);
	}
}

/* Asserts that no lock of the set is held by anyone (looked at through
 * fresh handles of flags) and frees the set. */
static void
set_free_unheld(lb_lock **set, char paths[][PATH_MAX], unsigned flags)
{
	lb_lock *probe;
	size_t   i;

	for (i = 0; i < SET_N; i++) {
		probe = lock_new(paths[i], flags);
		ck_assert_msg(lb_is_locked(probe) == 0, "%s is held",
		    paths[i]);
		lb_lock_free(probe);
		lb_lock_free(set[i]);
	}
}

/* Free locks: all granted at once, each then held and released as
 * usual; nothing left behind. */
START_TEST(test_set_all_free)
{
	unsigned        m = tl_all_methods[_i] | LB_LOCAL;
	struct tl_place p;
	char            paths[SET_N][PATH_MAX];
	lb_lock        *set[SET_N];
	size_t          failed = 77, i;

	tl_place_make(&p, "set");
	set_make(&p, m, set, paths);
	ck_assert_int_eq(lb_acquire_all(set, SET_N, 0, &failed), 0);
	ck_assert_uint_eq(failed, 77);
	for (i = 0; i < SET_N; i++) {
		ck_assert_int_eq(lb_i_am_locking(set[i]), 1);
		ck_assert_int_eq(lb_release(set[i]), 0);
	}
	ck_assert_int_eq(lb_acquire_all(set, SET_N, HANG_S, NULL), 0);
	for (i = 0; i < SET_N; i++)
		ck_assert_int_eq(lb_release(set[i]), 0);
	set_free_unheld(set, paths, m);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* Another process holds the middle one: a timeout leaves none held and
 * names it; a single try says it is held. */
START_TEST(test_set_timeout_none_held)
{
	unsigned        m = tl_all_methods[_i] | LB_LOCAL;
	struct tl_place p;
	struct holder   h;
	char            paths[SET_N][PATH_MAX];
	lb_lock        *set[SET_N];
	size_t          failed = 77;
	double          t0, elapsed;

	tl_place_make(&p, "set");
	set_make(&p, m, set, paths);
	ck_assert_int_eq(holder_start(&h, paths[1], m, 0), 0);
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire_all(set, SET_N, WAIT_S, &failed),
	    LB_ETIMEOUT);
	elapsed = tl_now() - t0;
	ck_assert_msg(elapsed >= WAIT_MIN && elapsed < HANG_S,
	    "timeout %g s returned after %.3f s", WAIT_S, elapsed);
	ck_assert_uint_eq(failed, 1);
	assert_reason_names(set[1], paths[1]);
	ck_assert_int_eq(lb_i_am_locking(set[0]), 0);
	ck_assert_int_eq(lb_i_am_locking(set[2]), 0);
	ck_assert_int_eq(lb_is_locked(set[0]), 0);
	ck_assert_int_eq(lb_is_locked(set[2]), 0);
	failed = 77;
	ck_assert_int_eq(lb_acquire_all(set, SET_N, 0, &failed), LB_EALREADY);
	ck_assert_uint_eq(failed, 1);
	ck_assert_int_eq(lb_is_locked(set[0]), 0);
	ck_assert_int_eq(lb_is_locked(set[2]), 0);
	ck_assert_int_eq(holder_end(&h, 1), 0);
	set_free_unheld(set, paths, m);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* What set_taker's thread does: the set within timeout; r its result,
 * at the time it returned. */
struct set_call {
	lb_lock   **set;
	size_t      n;
	double      timeout;
	size_t      failed;
	int         r;
	double      at;
};

/* set_taker's thread. */
static void *
set_take(void *arg)
{
	struct set_call *c = arg;

	c->r = lb_acquire_all(c->set, c->n, c->timeout, &c->failed);
	c->at = tl_now();
	return NULL;
}

/* While a holder keeps the last lock, the set waits holding none of the
 * others (another owner takes and gives them back meanwhile), then gets
 * them all once the holder lets go. */
START_TEST(test_set_waits_then_gets_all)
{
	unsigned        m = tl_all_methods[_i] | LB_LOCAL;
	struct tl_place p;
	struct holder   h;
	struct set_call c;
	char            paths[SET_N][PATH_MAX];
	lb_lock        *set[SET_N], *other[2], *spare;
	pthread_t       th;
	size_t          i;
	double          t0;
	int             k;

	tl_place_make(&p, "set");
	set_make(&p, m, set, paths);
	/* Another owner's handles: another thread's. */
	for (i = 0; i < 2; i++) {
		new_in_thread(paths[i], m, &other[i], &spare);
		lb_lock_free(spare);
	}
	ck_assert_int_eq(holder_start(&h, paths[2], m, 0), 0);
	c = (struct set_call){ set, SET_N, HANG_S, 77, 1, 0 };
	t0 = tl_now();
	ck_assert_int_eq(pthread_create(&th, NULL, set_take, &c), 0);
	tl_sleep(0.1);
	for (k = 0; k < 5; k++) {
		for (i = 0; i < 2; i++) {
			ck_assert_msg(lb_acquire(other[i], 0.2) == 0,
			    "%s held while the set waits: %s", paths[i],
			    lb_lock_error(other[i]));
			ck_assert_int_eq(lb_acquire_fresh(other[i]), 1);
			ck_assert_int_eq(lb_release(other[i]), 0);
		}
		tl_sleep(0.02);
	}
	for (i = 0; i < 2; i++)
		lb_lock_free(other[i]);
	ck_assert_int_eq(holder_end(&h, 1), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(c.r == 0, "lb_acquire_all: %s (%s)", lb_strerror(c.r),
	    lb_lock_error(set[c.failed < SET_N ? c.failed : 0]));
	ck_assert(c.at - t0 >= 0.1);
	for (i = 0; i < SET_N; i++) {
		ck_assert_int_eq(lb_i_am_locking(set[i]), 1);
		ck_assert_int_eq(lb_release(set[i]), 0);
	}
	set_free_unheld(set, paths, m);
	ck_assert_int_eq(tl_count(p.dir), tl_leftovers(m));
}
END_TEST

/* lb_lock_cancel on a handle of the set other than the one waited for
 * ends the wait: LB_ECANCELED, none held. */
START_TEST(test_set_cancel_other)
{
	unsigned        m = tl_all_methods[_i] | LB_LOCAL;
	struct tl_place p;
	struct holder   h;
	struct set_call c;
	char            paths[SET_N][PATH_MAX];
	lb_lock        *set[SET_N];
	pthread_t       th;
	double          t0;

	tl_place_make(&p, "set");
	set_make(&p, m, set, paths);
	ck_assert_int_eq(holder_start(&h, paths[1], m, 0), 0);
	c = (struct set_call){ set, SET_N, HANG_S, 77, 1, 0 };
	ck_assert_int_eq(pthread_create(&th, NULL, set_take, &c), 0);
	tl_sleep(0.2);
	t0 = tl_now();
	ck_assert_int_eq(lb_lock_cancel(set[0]), 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(c.r, LB_ECANCELED);
	ck_assert(c.at - t0 < PROMPT_S);
	ck_assert_uint_eq(c.failed, 1);
	ck_assert_int_eq(lb_is_locked(set[0]), 0);
	ck_assert_int_eq(lb_is_locked(set[2]), 0);
	/* Nothing remembered: the next call goes on as usual. */
	ck_assert_int_eq(lb_lock_cancel(set[0]), 0);
	ck_assert_int_eq(lb_acquire_all(set, SET_N, 0, NULL), LB_EALREADY);
	ck_assert_int_eq(holder_end(&h, 1), 0);
	set_free_unheld(set, paths, m);
}
END_TEST

/* A lock its owner holds already is refused (LB_EINVAL), left held; the
 * others are given back. */
START_TEST(test_set_held_before)
{
	unsigned        m = tl_all_methods[_i] | LB_LOCAL;
	struct tl_place p;
	char            paths[SET_N][PATH_MAX];
	lb_lock        *set[SET_N];
	size_t          failed = 77;

	tl_place_make(&p, "set");
	set_make(&p, m, set, paths);
	ck_assert_int_eq(lb_acquire(set[2], 0), 0);
	ck_assert_int_eq(lb_acquire_all(set, SET_N, WAIT_S, &failed),
	    LB_EINVAL);
	ck_assert_uint_eq(failed, 2);
	ck_assert_ptr_nonnull(strstr(lb_lock_error(set[2]), "already held"));
	ck_assert_int_eq(lb_i_am_locking(set[2]), 1);
	ck_assert_int_eq(lb_is_locked(set[0]), 0);
	ck_assert_int_eq(lb_is_locked(set[1]), 0);
	ck_assert_int_eq(lb_release(set[2]), 0);
	set_free_unheld(set, paths, m);
}
END_TEST

/* One lock file named twice is refused before anything is taken: the
 * same handle twice, a directory reached through a symbolic link, and
 * methods whose artefacts coincide (PATH.lock of link and mkdir, the pid
 * file PATH.lock). */
START_TEST(test_set_named_twice)
{
	struct tl_place p;
	char            link_dir[PATH_MAX], a[PATH_MAX], a2[PATH_MAX];
	char            b[PATH_MAX], pid[PATH_MAX];
	lb_lock        *set[3];
	size_t          failed;
	const char     *why;

	tl_place_make(&p, "twice");
	tl_path_join(link_dir, sizeof(link_dir), p.dir, "via");
	tl_path_join(a, sizeof(a), p.dir, "x");
	tl_path_join(a2, sizeof(a2), link_dir, "x");
	tl_path_join(b, sizeof(b), p.dir, "y");
	tl_path_join(pid, sizeof(pid), p.dir, "x.lock");
	ck_assert_int_eq(symlink(".", link_dir), 0);

	/* The same handle twice. */
	set[0] = lock_new(a, LB_LOCAL);
	set[1] = lock_new(b, LB_LOCAL);
	set[2] = set[0];
	failed = 77;
	ck_assert_int_eq(lb_acquire_all(set, 3, 0, &failed), LB_EINVAL);
	ck_assert_uint_eq(failed, 2);
	ck_assert_ptr_nonnull(strstr(lb_lock_error(set[0]), "named twice"));
	ck_assert_int_eq(lb_is_locked(set[1]), 0);
	lb_lock_free(set[1]);

	/* Through the symbolic link, each method with itself; but the
	 * sqlite method's rows are told apart by the name as given: two
	 * locks there. */
	for (unsigned i = 0; i < TL_NMETHODS; i++) {
		unsigned mm = tl_all_methods[i] | LB_LOCAL;

		set[1] = lock_new(b, mm);
		set[2] = lock_new(a2, mm);
		lb_lock_free(set[0]);
		set[0] = lock_new(a, mm);
		failed = 77;
		if (tl_all_methods[i] == LB_SQLITE) {
			ck_assert_int_eq(lb_acquire_all(set, 3, 0, &failed),
			    0);
			for (unsigned j = 0; j < 3; j++)
				ck_assert_int_eq(lb_release(set[j]), 0);
			lb_lock_free(set[1]);
			lb_lock_free(set[2]);
			continue;
		}
		ck_assert_int_eq(lb_acquire_all(set, 3, HANG_S, &failed),
		    LB_EINVAL);
		ck_assert_uint_eq(failed, 2);
		why = lb_lock_error(set[2]);
		ck_assert_msg(strstr(why, "named twice") != NULL &&
		    strstr(why, a) != NULL && strstr(why, a2) != NULL,
		    "%s: %s", tl_method_name(mm), why);
		ck_assert_str_eq(lb_lock_error(set[0]), why);
		ck_assert_int_eq(lb_is_locked(set[1]), 0);
		ck_assert_int_eq(lb_is_locked(set[0]), 0);
		lb_lock_free(set[1]);
		lb_lock_free(set[2]);
	}
	lb_lock_free(set[0]);

	/* link and mkdir: both PATH.lock; a pid file on PATH.lock too;
	 * the other way round in the array. */
	set[0] = lock_new(pid, LB_PIDFILE | LB_LOCAL);
	set[1] = lock_new(a, LB_MKDIR | LB_LOCAL);
	set[2] = lock_new(b, LB_LOCAL);
	failed = 77;
	ck_assert_int_eq(lb_acquire_all(set, 3, 0, &failed), LB_EINVAL);
	ck_assert_uint_eq(failed, 1);
	ck_assert_ptr_nonnull(strstr(lb_lock_error(set[1]), "named twice"));
	lb_lock_free(set[0]);
	set[0] = lock_new(a2, LB_LINK | LB_LOCAL);
	failed = 77;
	ck_assert_int_eq(lb_acquire_all(set, 3, 0, &failed), LB_EINVAL);
	ck_assert_uint_eq(failed, 1);
	ck_assert_int_eq(lb_is_locked(set[2]), 0);
	/* But the sqlite method's row is no file: beside them, it is a
	 * lock of its own. */
	lb_lock_free(set[1]);
	set[1] = lock_new(a, LB_SQLITE | LB_LOCAL);
	ck_assert_int_eq(lb_acquire_all(set, 3, 0, &failed), 0);
	for (unsigned i = 0; i < 3; i++) {
		ck_assert_int_eq(lb_release(set[i]), 0);
		lb_lock_free(set[i]);
	}
	ck_assert_int_eq(unlink(link_dir), 0);
	ck_assert_int_eq(tl_count(p.dir), 1);   /* the sqlite database */
}
END_TEST

/* Every method at once, in one set: all or none. */
START_TEST(test_set_mixed_methods)
{
	struct tl_place p;
	struct holder   h;
	char            paths[TL_NMETHODS][PATH_MAX];
	lb_lock        *set[TL_NMETHODS];
	size_t          failed = 77, i;

	tl_place_make(&p, "mix");
	for (i = 0; i < TL_NMETHODS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "m%lu", (unsigned long)i);
		tl_path_join(paths[i], PATH_MAX, p.dir, name);
		set[i] = lock_new(paths[i], tl_all_methods[i] | LB_LOCAL);
	}
	ck_assert_int_eq(holder_start(&h, paths[TL_NMETHODS - 1],
	    tl_all_methods[TL_NMETHODS - 1] | LB_LOCAL, 0), 0);
	ck_assert_int_eq(lb_acquire_all(set, TL_NMETHODS, WAIT_S, &failed),
	    LB_ETIMEOUT);
	ck_assert_uint_eq(failed, TL_NMETHODS - 1);
	for (i = 0; i < TL_NMETHODS; i++)
		ck_assert_int_eq(lb_i_am_locking(set[i]), 0);
	ck_assert_int_eq(holder_end(&h, 1), 0);
	ck_assert_int_eq(lb_acquire_all(set, TL_NMETHODS, WAIT_S, &failed),
	    0);
	for (i = 0; i < TL_NMETHODS; i++) {
		ck_assert_int_eq(lb_i_am_locking(set[i]), 1);
		ck_assert_int_eq(lb_release(set[i]), 0);
		lb_lock_free(set[i]);
	}
}
END_TEST

/* Bad arguments: LB_EINVAL, nothing taken, *failed only where one lock
 * is to blame. */
START_TEST(test_set_bad_arguments)
{
	struct tl_place p;
	lb_lock        *set[258], *one;
	char            path[PATH_MAX], name[16];
	size_t          failed = 77, i;

	tl_place_make(&p, "bad");
	ck_assert_int_eq(lb_acquire_all(NULL, 1, 0, &failed), LB_EINVAL);
	ck_assert_int_eq(lb_acquire_all(NULL, 0, 0, NULL), LB_EINVAL);
	one = lock_new(p.path, LB_LOCAL);
	set[0] = one;
	ck_assert_int_eq(lb_acquire_all(set, 0, 0, &failed), LB_EINVAL);
	ck_assert_uint_eq(failed, 77);
	ck_assert_int_eq(lb_acquire_all(set, 1, NAN, &failed), LB_EINVAL);
	ck_assert_uint_eq(failed, 77);
	set[1] = NULL;
	ck_assert_int_eq(lb_acquire_all(set, 2, 0, &failed), LB_EINVAL);
	ck_assert_uint_eq(failed, 1);
	ck_assert_int_eq(lb_is_locked(one), 0);
	/* One lock alone: as lb_acquire. */
	ck_assert_int_eq(lb_acquire_all(set, 1, 0, NULL), 0);
	ck_assert_int_eq(lb_release(one), 0);
	/* 256 at most. */
	for (i = 0; i < 257; i++) {
		snprintf(name, sizeof(name), "n%lu", (unsigned long)i);
		tl_path_join(path, sizeof(path), p.dir, name);
		set[i] = lock_new(path, LB_LOCAL);
	}
	failed = 77;
	ck_assert_int_eq(lb_acquire_all(set, 257, 0, &failed), LB_EINVAL);
	ck_assert_uint_eq(failed, 77);
	ck_assert_int_eq(lb_acquire_all(set, 256, 0, &failed), 0);
	for (i = 0; i < 256; i++)
		ck_assert_int_eq(lb_release(set[i]), 0);
	for (i = 0; i < 257; i++)
		lb_lock_free(set[i]);
	/* A directory that is not there: LB_EFAILED, naming it. */
	set[0] = one;
	tl_path_join(path, sizeof(path), p.dir, "none/x");
	set[1] = lock_new(path, LB_LOCAL);
	failed = 77;
	ck_assert_int_eq(lb_acquire_all(set, 2, 0, &failed), LB_EFAILED);
	ck_assert_uint_eq(failed, 1);
	assert_reason_names(set[1], "none");
	ck_assert_int_eq(lb_is_locked(one), 0);
	lb_lock_free(set[1]);
	lb_lock_free(one);
}
END_TEST

/* ------------------------------------------------------------------ */

/* A test case of tests looped over every method. */
static TCase *
method_case(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 60);
	return tc;
}

static Suite *
client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc;

	tc = method_case("timeouts");
	tcase_add_loop_test(tc, test_timeout_forever, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_timeout_try_once, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_timeout_expires, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_timeout_in_time, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_timeout_nan, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_timeout_huge, 0, TL_NMETHODS);
	suite_add_tcase(s, tc);

	tc = method_case("ownership");
	tcase_add_loop_test(tc, test_reentrant_no_counter, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_owner_threaded, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_owner_unthreaded, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_release_not_locked_not_mine, 0,
	    TL_NMETHODS);
	tcase_add_loop_test(tc, test_break_then_late_release, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_views_agree, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_fork_child_not_owner, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_fork_while_handle_busy, 0,
	    TL_NMETHODS - 1);
	tcase_add_test(tc, test_fork_while_cancel_busy);
	tcase_add_test(tc, test_fork_cancel_idle);
	tcase_add_loop_test(tc, test_probe_free_keeps_lock, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_forget_keeps_hold, 0, TL_NMETHODS);
	tcase_add_test(tc, test_pidfile_leftover);
	tcase_add_test(tc, test_pidfile_broken_then_other_thread);
	suite_add_tcase(s, tc);

	tc = method_case("holders");
	tcase_add_loop_test(tc, test_get_holder, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_break_stale_dead, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_break_stale_alive, 0, TL_NMETHODS);
	suite_add_tcase(s, tc);

	tc = method_case("failures");
	tcase_add_loop_test(tc, test_missing_directory, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_unwritable_directory, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_broker_unavailable, 0, TL_NMETHODS);
	tcase_add_test(tc, test_link_fails_on_full_fs);
	tcase_add_test(tc, test_no_hard_links_vfat);
	suite_add_tcase(s, tc);

	tc = method_case("arguments");
	tcase_add_loop_test(tc, test_name_lengths, 0, TL_NMETHODS);
	tcase_add_test(tc, test_new_bad_arguments);
	tcase_add_test(tc, test_null_handle);
	tcase_add_test(tc, test_null_arguments);
	suite_add_tcase(s, tc);

	tc = method_case("locked");
	tcase_add_test(tc, test_locked);
	tcase_add_test(tc, test_locked_probe_freed);
	suite_add_tcase(s, tc);

	tc = method_case("errors");
	tcase_add_test(tc, test_error_hierarchy);
	tcase_add_test(tc, test_error_strings);
	suite_add_tcase(s, tc);

	tc = method_case("threads");
	tcase_add_loop_test(tc, test_threads_share_handle, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_threads_count_exactly, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_processes_count_exactly, 0, TL_NMETHODS);
	suite_add_tcase(s, tc);

	tc = method_case("sets");
	tcase_add_loop_test(tc, test_set_all_free, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_set_timeout_none_held, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_set_waits_then_gets_all, 0,
	    TL_NMETHODS);
	tcase_add_loop_test(tc, test_set_cancel_other, 0, TL_NMETHODS);
	tcase_add_loop_test(tc, test_set_held_before, 0, TL_NMETHODS);
	tcase_add_test(tc, test_set_named_twice);
	tcase_add_test(tc, test_set_mixed_methods);
	tcase_add_test(tc, test_set_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}

/* main: runs the suite (tl_main); exit 0 when every test passed. */
int
main(void)
{
	return tl_main("check_client", client_suite(), CK_NORMAL);
}
