/*
 * check_broker_handoff.c: what the broker adds: waiters served in order
 * (FIFO), a prompt handoff on release, a dead holder's lock handed on, a
 * forked child that keeps nothing of its parent's, many threads on the
 * one connection, a handoff whose rename is refused as busy for a while.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_broker.h"

/* Five waiting processes are served in the order they came. */
START_TEST(test_fifo_five_waiters)
{
	struct tl_place p;
	struct agent    h, w[5];
	lb_lock        *lock;
	int             k;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	for (k = 0; k < 5; k++) {
		agent_start(&w[k], p.path, LB_BROKER, NULL);
		agent_queues(&w[k], HANG_S * 3, lock, (unsigned)k + 1);
	}
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	for (k = 0; k < 5; k++) {
		ck_assert_int_eq(agent_answer(&w[k], HANG_S).r, 0);
		if (k < 4)
			ck_assert_msg(!agent_ready(&w[k + 1], 0.05),
			    "waiter %d was served before waiter %d released",
			    k + 1, k);
		ck_assert_int_eq(agent_do(&w[k], 'r', 0), 0);
	}
	for (k = 0; k < 5; k++)
		agent_stop(&w[k]);
	agent_stop(&h);
	ck_assert_int_eq(lb_is_locked(lock), 0);
	lb_lock_free(lock);
}
END_TEST

/* A waiter has the lock promptly after the holder's release (no polling
 * interval in between). */
START_TEST(test_handoff_prompt)
{
	struct tl_place p;
	struct agent    h, w;
	struct answer   rel, got;
	lb_lock        *lock;
	int             round;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	agent_start(&w, p.path, LB_BROKER, NULL);
	for (round = 0; round < 3; round++) {
		ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
		agent_queues(&w, LB_FOREVER, lock, 1);
		agent_send(&h, 'r', 0);
		rel = agent_answer(&h, HANG_S);
		ck_assert_int_eq(rel.r, 0);
		got = agent_answer(&w, HANG_S);
		ck_assert_int_eq(got.r, 0);
		ck_assert_msg(got.at - rel.at < HANDOFF_S, "handoff took "
		    "%.3f s", got.at - rel.at);
		ck_assert_int_eq(agent_do(&w, 'r', 0), 0);
	}
	agent_stop(&w);
	agent_stop(&h);
	lb_lock_free(lock);
}
END_TEST

/* kill -9 of a holder: its waiter has the lock promptly. */
START_TEST(test_holder_killed)
{
	struct tl_place p;
	struct agent    h, w;
	lb_lock        *lock;
	double          t0;

	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	agent_start(&w, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	agent_queues(&w, LB_FOREVER, lock, 1);
	t0 = tl_now();
	agent_kill(&h);
	ck_assert_int_eq(agent_answer(&w, HANG_S).r, 0);
	ck_assert_msg(tl_now() - t0 < HANDOFF_S, "granted %.3f s after the "
	    "holder died", tl_now() - t0);
	ck_assert_int_eq(agent_do(&w, 'i', 0), 1);
	agent_stop(&w);
	lb_lock_free(lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
}
END_TEST

/* A forked child neither owns its parent's lock nor keeps it alive: the
 * parent killed with SIGKILL, the lock goes to a waiter although the
 * child lives on. */
START_TEST(test_fork_child_keeps_nothing)
{
	struct tl_place p;
	struct agent    h;
	struct answer   child;
	lb_lock        *lock;
	double          t0;
	int             status;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	tl_place_make(&p, "lk");
	lock = lock_new(p.path, LB_BROKER);
	agent_start(&h, p.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	agent_send(&h, 'F', 0);
	child = agent_answer(&h, HANG_S);
	ck_assert_int_gt(child.pid, 0);
	ck_assert_msg(child.r == 0, "the child owns its parent's lock: "
	    "i_am_locking %lld (%s)", (long long)child.r, child.why);
	ck_assert_msg(child.r2 == LB_ENOTMINE, "the child's release: %s",
	    lb_error_name((int)child.r2));
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	agent_kill(&h);
	t0 = tl_now();
	ck_assert_int_eq(lb_acquire(lock, HANG_S), 0);
	ck_assert_msg(tl_now() - t0 < HANDOFF_S, "granted only after %.3f s",
	    tl_now() - t0);
	/* ... while the child still runs. */
	ck_assert_int_eq(waitpid((pid_t)child.pid, &status, WNOHANG), 0);
	ck_assert_int_eq(kill((pid_t)child.pid, 0), 0);
	ck_assert_int_eq(lb_release(lock), 0);
	kill((pid_t)child.pid, SIGKILL);
	ck_assert_int_eq(waitpid((pid_t)child.pid, &status, 0), child.pid);
	lb_lock_free(lock);
}
END_TEST

/* Many threads, each its own owner, over the one connection: exclusion
 * holds, and a thread blocked in a waiting acquire does not hold up the
 * others' requests. */
#define NWORKERS 6

struct worker {
	const char *path[2];
	double      until;
	int         rounds;
	int        *inside;     /* per lock: owners inside, must stay <= 1 */
	char        bad[160];
};

static pthread_mutex_t inside_mu = PTHREAD_MUTEX_INITIALIZER;

static void *
worker_run(void *arg)
{
	struct worker *wk = arg;
	lb_lock       *lock[2];
	int            k, r, n;

	for (k = 0; k < 2; k++)
		if ((lock[k] = lb_lock_new(wk->path[k], LB_BROKER)) == NULL) {
			snprintf(wk->bad, sizeof(wk->bad), "lb_lock_new");
			return NULL;
		}
	while (tl_now() < wk->until && wk->bad[0] == '\0') {
		k = wk->rounds % 2;
		if ((r = lb_acquire(lock[k], HANG_S)) != 0) {
			snprintf(wk->bad, sizeof(wk->bad), "acquire: %s (%s)",
			    lb_error_name(r), lb_lock_error(lock[k]));
			break;
		}
		pthread_mutex_lock(&inside_mu);
		n = ++wk->inside[k];
		pthread_mutex_unlock(&inside_mu);
		if (n != 1)
			snprintf(wk->bad, sizeof(wk->bad), "%d owners inside",
			    n);
		if ((r = lb_i_am_locking(lock[k])) != 1)
			snprintf(wk->bad, sizeof(wk->bad), "i_am_locking %d",
			    r);
		pthread_mutex_lock(&inside_mu);
		wk->inside[k]--;
		pthread_mutex_unlock(&inside_mu);
		if ((r = lb_release(lock[k])) != 0)
			snprintf(wk->bad, sizeof(wk->bad), "release: %s",
			    lb_error_name(r));
		wk->rounds++;
	}
	lb_lock_free(lock[0]);
	lb_lock_free(lock[1]);
	return NULL;
}

struct blocked {
	const char *path;
	int         r;
	double      done;
};

static void *
blocked_run(void *arg)
{
	struct blocked *b = arg;
	lb_lock        *lock = lb_lock_new(b->path, LB_BROKER);

	b->r = lock == NULL ? LB_ENOMEM : lb_acquire(lock, HANG_S);
	b->done = tl_now();
	if (b->r == 0)
		b->r = lb_release(lock);
	lb_lock_free(lock);
	return NULL;
}

START_TEST(test_threads_share_connection)
{
	struct tl_place p, q, z;
	struct worker   wk[NWORKERS];
	struct blocked  b;
	struct agent    h;
	pthread_t       t[NWORKERS], bt;
	lb_lock        *probe;
	int             inside[2] = { 0, 0 }, k, total = 0;
	double          released;

	tl_place_make(&p, "a");
	tl_place_make(&q, "b");
	tl_place_make(&z, "held");
	agent_start(&h, z.path, LB_BROKER, NULL);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	probe = lock_new(z.path, LB_BROKER);
	b.path = z.path;
	ck_assert_int_eq(pthread_create(&bt, NULL, blocked_run, &b), 0);
	wait_for_waiters(probe, 1);
	for (k = 0; k < NWORKERS; k++) {
		memset(&wk[k], 0, sizeof(wk[k]));
		wk[k].path[0] = p.path;
		wk[k].path[1] = q.path;
		wk[k].until = tl_now() + 0.7;
		wk[k].inside = inside;
		ck_assert_int_eq(pthread_create(&t[k], NULL, worker_run,
		    &wk[k]), 0);
	}
	for (k = 0; k < NWORKERS; k++) {
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
		ck_assert_msg(wk[k].bad[0] == '\0', "worker %d: %s", k,
		    wk[k].bad);
		total += wk[k].rounds;
	}
	/* The others made progress while one thread waited. */
	ck_assert_msg(total >= NWORKERS, "only %d rounds in all", total);
	ck_assert_int_eq(lb_is_locked(probe), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	released = tl_now();
	ck_assert_int_eq(pthread_join(bt, NULL), 0);
	ck_assert_int_eq(b.r, 0);
	ck_assert_msg(b.done - released < HANDOFF_S, "the blocked thread got "
	    "the lock %.3f s after its release", b.done - released);
	agent_stop(&h);
	lb_lock_free(probe);
}
END_TEST

/* The preload that refuses renames as busy: tests/busyrename.c, built in
 * $LB_BUILDDIR/tests/.libs. */
#define BUSYRENAME_SO "tests/.libs/busyrename.so"

/* What the busy-rename tests share. */
struct busy {
	struct tl_daemon d;
	struct tl_place  p;
	char             dir[PATH_MAX];
	struct agent     h, w;      /* the holder, the waiter */
	lb_lock         *lock;      /* through the daemon */
	lb_lock         *look;      /* in-process */
};

/* A private daemon whose first renames onto lk.lock are refused as busy
 * (the preload; renames: "LB_TEST_BUSY_RENAMES=N", how many), a lock lk
 * that agent h (flags) holds through it and agent w waits for (seen
 * queued; for process kept when it is not 0: lb_acquire_for), and this
 * process's handles on it.  0 when a sanitizer's runtime intercepts the
 * calls the preload interposes (nothing made: the normal build runs
 * these tests), else 1. */
static int
busy_start(struct busy *b, const char *renames, unsigned flags, pid_t kept)
{
	const char *san = getenv("LB_SANITIZERS");
	const char *vars[] = { "LB_TEST_BUSY_NAME=lk.lock", renames, NULL };

	if (san != NULL && *san != '\0')
		return 0;
	tl_place_make(&b->p, "lk");
	private_daemon_preloaded(&b->d, b->dir, BUSYRENAME_SO, vars);
	b->lock = lock_new(b->p.path, LB_BROKER);
	b->look = lock_new(b->p.path, LB_LOCAL);
	agent_start(&b->h, b->p.path, flags, b->d.socket);
	agent_start(&b->w, b->p.path, LB_BROKER, b->d.socket);
	ck_assert_int_eq(agent_do(&b->h, 'a', 0), 0);
	agent_send(&b->w, kept != 0 ? 'k' : 'a', kept != 0 ? kept :
	    LB_FOREVER);
	wait_for_waiters(b->lock, 1);
	return 1;
}

/* Ends what busy_start made, the lock's directory left empty. */
static void
busy_end(struct busy *b)
{
	agent_stop(&b->w);
	agent_stop(&b->h);
	lb_lock_free(b->look);
	lb_lock_free(b->lock);
	private_daemon_end(&b->d, b->p.dir);
}

/* Waits (HANG_S at most, asserted) until the daemon of b has logged that
 * a handoff waits for the lock file's readers. */
static void
busy_waits(struct busy *b)
{
	double until = tl_now() + HANG_S;

	while (tl_file_count(b->d.log, "waits for the lock file's "
	    "readers") == 0) {
		ck_assert_msg(tl_now() < until, "no handoff waited for "
		    "readers; see %s", b->d.log);
		tl_sleep(0.01);
	}
}

/* A handoff whose rename over the lock file is refused as busy, five
 * times (the preload tests/busyrename.c; Windows refuses so while a
 * reader has the lock file open): the daemon tries again until the
 * rename is done, rather than refusing the grant; the waiter has the
 * lock, the holder's release is answered only once the lock file names
 * the waiter (told "released", the holder never finds its own name
 * there, which its in-process look would take for its own lock), and
 * the daemon's log says the handoff waited five times. */
START_TEST(test_handoff_waits_for_busy_rename)
{
	struct busy b;
	lb_holder   named;

	if (!busy_start(&b, "LB_TEST_BUSY_RENAMES=5", LB_BROKER, 0))
		return;
	ck_assert_int_eq(agent_do(&b.h, 'r', 0), 0);
	ck_assert_int_eq(lb_get_holder(b.look, &named), 1);
	ck_assert_msg(named.pid == b.w.c.pid, "the release was answered "
	    "while the lock file named pid %ld, not the waiter %ld",
	    (long)named.pid, (long)b.w.c.pid);
	ck_assert_int_eq(agent_expect(&b.w, HANG_S, 0, "the waiter").r, 0);
	ck_assert_int_eq(agent_do(&b.w, 'i', 0), 1);
	ck_assert_int_eq(lb_is_locked(b.look), 1);
	ck_assert_uint_eq(tl_file_count(b.d.log, "waits for the lock file's "
	    "readers"), 5);
	ck_assert_int_eq(agent_do(&b.w, 'r', 0), 0);
	ck_assert_int_eq(lb_is_locked(b.look), 0);
	busy_end(&b);
}
END_TEST

/* The daemon killed while a handoff waits for its rename (refused as
 * busy for good): the holder's release, not answered before the rename,
 * is lost with the daemon, and its AUTO library removes the lock file,
 * still its own, in-process; so it never finds its own name there once
 * told "released".  Taking the lock again in-process while no daemon
 * runs, it holds a new lock file, which the restarted daemon does not
 * hand on: the waiter, never told of the grant, waits until the holder
 * releases it.  (Answered at once, the holder took the old lock file
 * for its own lock and the restarted daemon finished the handoff
 * under it: two holders.) */
START_TEST(test_handoff_busy_daemon_killed)
{
	struct busy b;

	if (!busy_start(&b, "LB_TEST_BUSY_RENAMES=1000000", 0, 0))
		return;
	agent_send(&b.h, 'r', 0);
	busy_waits(&b);
	ck_assert_msg(!agent_ready(&b.h, 0.3), "the release was answered "
	    "before the handoff's rename");
	ck_assert_int_eq(tl_daemon_stop(&b.d, SIGKILL), 0);
	ck_assert_int_eq(agent_expect(&b.h, HANG_S, 0, "the release").r, 0);
	ck_assert_int_eq(lb_is_locked(b.look), 0);
	ck_assert_int_eq(agent_do(&b.h, 'a', 0), 0);   /* in-process */
	daemon_again(&b.d, b.dir, "state.db");
	wait_for_waiters(b.lock, 1);
	ck_assert_msg(!agent_ready(&b.w, 0.5), "the waiter was granted a "
	    "lock held in-process");
	ck_assert_int_eq(agent_do(&b.h, 'r', 0), 0);
	ck_assert_int_eq(agent_expect(&b.w, HANG_S, 0, "the waiter").r, 0);
	ck_assert_int_eq(agent_do(&b.w, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&b.w, 'r', 0), 0);
	busy_end(&b);
}
END_TEST

/* A handoff waiting for its rename (refused as busy for good) to a hold
 * kept for a process, whose lock directory is then moved away and whose
 * process exits: the daemon forgets the kept hold (its directory is not
 * the one it was locked in), and the failed handoff is ended with it:
 * the holder's release is answered, and the lock is free at its path.
 * (The daemon had freed the hold with its handoff failed: the release
 * stayed owed for good, the library's answer limit then failing it.) */
START_TEST(test_handoff_busy_kept_forgotten)
{
	struct busy b;
	char        moved[PATH_MAX + 8];
	pid_t       kid = tl_sleeper_start();

	if (!busy_start(&b, "LB_TEST_BUSY_RENAMES=1000000", LB_BROKER, kid)) {
		tl_kill(kid);
		return;
	}
	agent_send(&b.h, 'r', 0);
	busy_waits(&b);
	snprintf(moved, sizeof(moved), "%s.moved", b.p.dir);
	ck_assert_int_eq(rename(b.p.dir, moved), 0);
	tl_mkdir(b.p.dir);
	tl_kill(kid);
	ck_assert_int_eq(agent_expect(&b.h, HANG_S, 0, "the release").r, 0);
	ck_assert_int_ne(agent_answer(&b.w, HANG_S).r, 0);
	ck_assert_int_eq(lb_is_locked(b.lock), 0);
	ck_assert_int_eq(tl_dir_remove(moved), 0);
	busy_end(&b);
}
END_TEST

/* A handoff waiting for its rename (refused as busy for good) to a hold
 * kept for a process, which then exits: the kept hold ends, its handoff
 * failing at its last try; its grant, still owed, is refused (never told
 * OK: the lock file was never its own), the holder's release answered,
 * and the lock free. */
START_TEST(test_handoff_busy_kept_ended)
{
	struct busy b;
	pid_t       kid = tl_sleeper_start();

	if (!busy_start(&b, "LB_TEST_BUSY_RENAMES=1000000", LB_BROKER, kid)) {
		tl_kill(kid);
		return;
	}
	agent_send(&b.h, 'r', 0);
	busy_waits(&b);
	tl_kill(kid);
	ck_assert_int_eq(agent_expect(&b.h, HANG_S, 0, "the release").r, 0);
	ck_assert_int_ne(agent_answer(&b.w, HANG_S).r, 0);
	ck_assert_int_eq(lb_is_locked(b.lock), 0);
	busy_end(&b);
}
END_TEST

/* Whether the lock file of b's lock names agent a (an in-process look). */
static int
busy_names(struct busy *b, const struct agent *a)
{
	lb_holder named;

	return lb_get_holder(b->look, &named) == 1 && named.pid == a->c.pid;
}

/* A handoff whose rename is refused as busy for longer than the daemon's
 * release_wait (3 s by default; 60 refusals, about 5.5 s): the holder's
 * release is answered before the rename, marked pending, its lock file
 * still naming it; the waiter has the lock once the rename is done. */
START_TEST(test_handoff_busy_release_pending)
{
	struct busy b;

	if (!busy_start(&b, "LB_TEST_BUSY_RENAMES=60", 0, 0))
		return;
	ck_assert_int_eq(agent_do(&b.h, 'r', 0), 0);
	ck_assert_uint_eq(tl_file_count(b.d.log, "answered pending"), 1);
	ck_assert_msg(busy_names(&b, &b.h), "the handoff was done before "
	    "release_wait");
	ck_assert_int_eq(agent_do(&b.h, 'i', 0), 0);
	ck_assert_int_eq(agent_do(&b.h, 'a', 0), LB_EALREADY);
	ck_assert_int_eq(agent_expect(&b.w, HANG_S, 0, "the waiter").r, 0);
	ck_assert(busy_names(&b, &b.w));
	ck_assert_int_eq(agent_do(&b.w, 'r', 0), 0);
	busy_end(&b);
}
END_TEST

/* The daemon killed after it answered a release pending (its handoff's
 * rename refused as busy for good): the former holder, whose AUTO
 * library now acts in-process, does not take the lock file that still
 * names it for its own (a restarted daemon would finish the handoff
 * under it): its acquire finds the lock held, and it does not say it
 * holds it. */
START_TEST(test_handoff_pending_not_adopted)
{
	struct busy b;

	if (!busy_start(&b, "LB_TEST_BUSY_RENAMES=1000000", 0, 0))
		return;
	ck_assert_int_eq(agent_do(&b.h, 'r', 0), 0);
	ck_assert(busy_names(&b, &b.h));
	ck_assert_int_eq(tl_daemon_stop(&b.d, SIGKILL), 0);
	ck_assert_int_eq(agent_do(&b.h, 'a', 0), LB_EALREADY);
	ck_assert_int_eq(agent_do(&b.h, 'i', 0), 0);
	ck_assert(busy_names(&b, &b.h));
	/* What the killed daemon left, cleared; the waiter asks the next
	 * daemon again and has the lock. */
	ck_assert_int_eq(tl_dir_remove(b.p.dir), 0);
	tl_mkdir(b.p.dir);
	daemon_again(&b.d, b.dir, "state.db");
	ck_assert_int_eq(agent_expect(&b.w, HANG_S, 0, "the waiter").r, 0);
	ck_assert_int_eq(agent_do(&b.w, 'r', 0), 0);
	busy_end(&b);
}
END_TEST

/* A test whose handoff waits for readers for good ends: the daemon d
 * (of directory dir) killed, what it left in the lock's directory lockdir
 * cleared, d started again, and the waiter w, asking it again, granted
 * and releasing. */
static void
ends_with_a_daemon_again(struct tl_daemon *d, const char *dir,
    const char *lockdir, struct agent *w)
{
	ck_assert_int_eq(tl_daemon_stop(d, SIGKILL), 0);
	ck_assert_int_eq(tl_dir_remove(lockdir), 0);
	tl_mkdir(lockdir);
	daemon_again(d, dir, "state.db");
	ck_assert_int_eq(agent_expect(w, HANG_S, 0, "the waiter").r, 0);
	ck_assert_int_eq(agent_do(w, 'r', 0), 0);
}

/* After its release was answered pending (the handoff's rename refused
 * as busy for good), a second release by the former holder is refused
 * (not its lock) and removes nothing: its lock file, which the daemon is
 * still handing on, stays; removed, the lock would be free on disk while
 * the daemon's rename, once done, gave it to the waiter too. */
START_TEST(test_handoff_pending_not_removed)
{
	struct busy b;

	if (!busy_start(&b, "LB_TEST_BUSY_RENAMES=1000000", 0, 0))
		return;
	ck_assert_int_eq(agent_do(&b.h, 'r', 0), 0);
	ck_assert(busy_names(&b, &b.h));
	ck_assert_int_eq(agent_do(&b.h, 'r', 0), LB_ENOTMINE);
	ck_assert_msg(busy_names(&b, &b.h), "the lock file being handed on "
	    "was removed by its former holder");
	ck_assert_int_eq(lb_is_locked(b.look), 1);
	ends_with_a_daemon_again(&b.d, b.dir, b.p.dir, &b.w);
	busy_end(&b);
}
END_TEST

/* The pid file method, whose file names only the process: after the
 * process owner's release was answered pending (the handoff's rename
 * onto the pid file refused as busy for good), another owner of the same
 * process (a thread, in-process) does not take the pid file, which still
 * names this process, for a leftover of its own: the daemon is handing
 * it to the waiter. */
START_TEST(test_handoff_pending_pidfile_other_owner)
{
	const char      *vars[] = { "LB_TEST_BUSY_NAME=pf",
	    "LB_TEST_BUSY_RENAMES=1000000", NULL };
	const char      *san = getenv("LB_SANITIZERS");
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     w;
	lb_lock         *proc, *thr, *look;
	char             dir[PATH_MAX];

	if (san != NULL && *san != '\0')
		return;         /* the preload: see busy_start */
	tl_place_make(&p, "pf");
	private_daemon_preloaded(&d, dir, BUSYRENAME_SO, vars);
	proc = lock_new(p.path, LB_PIDFILE | LB_UNTHREADED);
	thr = lock_new(p.path, LB_PIDFILE | LB_LOCAL);
	look = lock_new(p.path, LB_PIDFILE | LB_BROKER);
	agent_start(&w, p.path, LB_PIDFILE | LB_BROKER, d.socket);
	ck_assert_int_eq(lb_acquire(proc, 0), 0);
	agent_send(&w, 'a', LB_FOREVER);
	wait_for_waiters(look, 1);
	ck_assert_int_eq(lb_release(proc), 0);
	ck_assert_uint_eq(tl_file_count(d.log, "answered pending"), 1);
	ck_assert_int_eq(lb_acquire(thr, 0), LB_EALREADY);
	ck_assert_int_eq(lb_i_am_locking(thr), 0);
	ck_assert_int_eq(lb_i_am_locking(proc), 0);
	ends_with_a_daemon_again(&d, dir, p.dir, &w);
	agent_stop(&w);
	lb_lock_free(look);
	lb_lock_free(thr);
	lb_lock_free(proc);
	private_daemon_end(&d, p.dir);
}
END_TEST

/* Makes lock_file name the owner whose unique file is unique (the link
 * method), as a handoff from it not yet done leaves it; plant 0: removes
 * both again. */
static void
plant_named(const char *unique, const char *lock_file, int plant)
{
	if (plant) {
		tl_write_text(unique, "");
		ck_assert_int_eq(link(unique, lock_file), 0);
	} else {
		ck_assert_int_eq(unlink(lock_file), 0);
		ck_assert_int_eq(unlink(unique), 0);
	}
}

/*
 * A release answered pending (the handoff's rename refused as busy past
 * release_wait, then done) marks its owner, used through the broker
 * only: the handoff over and the waiter's release done, a lock file
 * naming the owner is still not its own (its in-process acquire finds
 * it held); a STATUS through the broker that finds the lock free (the
 * daemon shows no handoff of it owed) drops the mark, with no look at
 * the lock file: then such a file is the owner's own (its acquire
 * in-process takes it, as one it holds already).
 */
START_TEST(test_handoff_pending_mark_dropped_by_status)
{
	const char      *vars[] = { "LB_TEST_BUSY_NAME=lk.lock",
	    "LB_TEST_BUSY_RENAMES=60", NULL };
	const char      *san = getenv("LB_SANITIZERS");
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     w;
	lb_lock         *mine, *local;
	char             dir[PATH_MAX], unique[PATH_MAX];

	if (san != NULL && *san != '\0')
		return;         /* the preload: see busy_start */
	tl_place_make(&p, "lk");
	private_daemon_preloaded(&d, dir, BUSYRENAME_SO, vars);
	mine = lock_new(p.path, LB_BROKER);
	local = lock_new(p.path, LB_LOCAL);
	snprintf(unique, sizeof(unique), "%s", lb_unique_name(local));
	agent_start(&w, p.path, LB_BROKER, d.socket);
	ck_assert_int_eq(lb_acquire(mine, 0), 0);
	agent_send(&w, 'a', LB_FOREVER);
	wait_for_waiters(mine, 1);
	ck_assert_int_eq(lb_release(mine), 0);
	ck_assert_uint_eq(tl_file_count(d.log, "answered pending"), 1);
	ck_assert_int_eq(agent_expect(&w, HANG_S, 0, "the waiter").r, 0);
	ck_assert_int_eq(agent_do(&w, 'r', 0), 0);
	plant_named(unique, lb_lock_file(local), 1);
	ck_assert_int_eq(lb_acquire(local, 0), LB_EALREADY);
	plant_named(unique, lb_lock_file(local), 0);
	ck_assert_int_eq(lb_is_locked(mine), 0);
	plant_named(unique, lb_lock_file(local), 1);
	ck_assert_msg(lb_acquire(local, 0) == 0, "the mark was kept after "
	    "the daemon showed the lock free: %s", lb_lock_error(local));
	ck_assert_int_eq(lb_release(local), 0);
	ck_assert(!tl_exists(lb_lock_file(local)));
	agent_stop(&w);
	lb_lock_free(local);
	lb_lock_free(mine);
	private_daemon_end(&d, p.dir);
}
END_TEST

/* Seventeen handoffs to one user's waiters, each waiting for its lock
 * file's readers (renames onto lk.lock refused for good, in seventeen
 * directories): sixteen are tried again within 100 ms each time, the
 * seventeenth only once a second, so that many such handoffs cannot
 * keep the daemon's loop busy.  Then the waiters go: each handoff fails
 * and its holder's release is answered. */
START_TEST(test_handoff_busy_capped_per_user)
{
	enum { N = 17 };
	const char      *vars[] = { "LB_TEST_BUSY_NAME=lk.lock",
	    "LB_TEST_BUSY_RENAMES=1000000", NULL };
	const char      *san = getenv("LB_SANITIZERS");
	struct tl_daemon d;
	struct tl_place  p[N];
	struct agent     h[N], w[N];
	lb_lock         *probe;
	char             dir[PATH_MAX], what[64];
	unsigned         n, slow = 0, fast = 0;
	int              k;

	if (san != NULL && *san != '\0')
		return;         /* the preload: see busy_start */
	private_daemon_preloaded(&d, dir, BUSYRENAME_SO, vars);
	for (k = 0; k < N; k++) {
		tl_place_make(&p[k], "lk");
		agent_start(&h[k], p[k].path, LB_BROKER, d.socket);
		agent_start(&w[k], p[k].path, LB_BROKER, d.socket);
		ck_assert_int_eq(agent_do(&h[k], 'a', 0), 0);
		probe = lock_new(p[k].path, LB_BROKER);
		agent_queues(&w[k], LB_FOREVER, probe, 1);
		lb_lock_free(probe);
	}
	for (k = 0; k < N; k++)
		agent_send(&h[k], 'r', 0);
	tl_sleep(2.5);
	for (k = 0; k < N; k++) {
		snprintf(what, sizeof(what), "to pid %ld waits for",
		    (long)w[k].c.pid);
		n = tl_file_count(d.log, what);
		slow += n >= 1 && n <= 4;
		fast += n >= 10;
	}
	ck_assert_msg(slow == 1 && fast == N - 1, "%u handoffs retried once "
	    "a second, %u often (see %s)", slow, fast, d.log);
	for (k = 0; k < N; k++) {
		agent_kill(&w[k]);
		ck_assert_int_eq(agent_expect(&h[k], HANG_S, 0,
		    "the release").r, 0);
		agent_stop(&h[k]);
		ck_assert_int_eq(tl_count(p[k].dir), 0);
	}
	ck_assert_int_eq(tl_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* ------------------------------------------------------------------ */

/* The case's tests, in the order they run. */
TCase *
broker_handoff_case(void)
{
	TCase *tc = broker_case("broker", 60);

	tcase_add_test(tc, test_fifo_five_waiters);
	tcase_add_test(tc, test_handoff_prompt);
	tcase_add_test(tc, test_holder_killed);
	tcase_add_test(tc, test_fork_child_keeps_nothing);
	tcase_add_test(tc, test_threads_share_connection);
	tcase_add_test(tc, test_handoff_waits_for_busy_rename);
	tcase_add_test(tc, test_handoff_busy_daemon_killed);
	tcase_add_test(tc, test_handoff_busy_kept_forgotten);
	tcase_add_test(tc, test_handoff_busy_kept_ended);
	tcase_add_test(tc, test_handoff_busy_release_pending);
	tcase_add_test(tc, test_handoff_pending_not_adopted);
	tcase_add_test(tc, test_handoff_pending_not_removed);
	tcase_add_test(tc, test_handoff_pending_pidfile_other_owner);
	tcase_add_test(tc, test_handoff_pending_mark_dropped_by_status);
	tcase_add_test(tc, test_handoff_busy_capped_per_user);
	return tc;
}
