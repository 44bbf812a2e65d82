/*
 * check_broker_pidfile.c: pidfile grants across a daemon restart: a grant
 * made but not confirmed, recorded or not (the daemon stopped at its
 * commit by the preload tests/stopcommit.c), given up by its caller;
 * pid files of another owner and of a kept hold, which are no leftovers;
 * several requests in flight on one connection; a hold ended while no
 * daemon ran whose pid file another thread holds since.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_broker.h"

/* What the pid file at path says: 1 when it names pid, 0 when it names
 * another process, -1 when there is none. */
static int
pidfile_names(const char *path, pid_t pid)
{
	FILE *f;
	long  v = 0;
	int   r = -1;

	if ((f = fopen(path, "r")) != NULL) {
		r = fscanf(f, "%ld", &v) == 1 && v == (long)pid;
		fclose(f);
	}
	return r;
}

/* The preload that stops the daemon at a commit: tests/stopcommit.c,
 * built in $LB_BUILDDIR/tests/.libs. */
#define STOPCOMMIT_SO "tests/.libs/stopcommit.so"

/*
 * private_daemon_stopping: in a test, a private daemon (as private_daemon,
 * in dir of PATH_MAX bytes) that stops itself (SIGSTOP) when (before or
 * after) the first COMMIT of its state database while the file trigger
 * exists: after it made a grant's artefact, before its reply went out
 * (the daemon owes the OK until the commit).  A restart in dir
 * (daemon_restart) starts a daemon without the preload.
 */
static void
private_daemon_stopping(struct tl_daemon *d, char *dir, const char *when,
    const char *trigger)
{
	char        stop[64], stop_if[PATH_MAX + 32];
	const char *vars[] = { stop, stop_if, NULL };

	snprintf(stop, sizeof(stop), "LB_TEST_STOP_COMMIT=%s", when);
	snprintf(stop_if, sizeof(stop_if), "LB_TEST_STOP_IF=%s", trigger);
	private_daemon_preloaded(d, dir, STOPCOMMIT_SO, vars);
}

/* Asserts that the pid file lock at path excludes a process that takes
 * it in-process (LB_LOCAL, as a lockfile PIDLockFile would): it is
 * really on disk. */
static void
assert_pidfile_excludes(const char *path)
{
	struct agent o;

	agent_start(&o, path, LB_PIDFILE | LB_LOCAL, NULL);
	ck_assert_int_eq(agent_do(&o, 'a', 0), LB_EALREADY);
	agent_stop(&o);
}

/*
 * grant_stopped: a private daemon that stops at the commit (when: before
 * or after it) of a pidfile grant of the lock p (made here) to agent h,
 * which has connected and sent its ACQUIRE (timeout seconds): returns
 * with the daemon stopped and the grant's pid file, naming h, on disk.
 */
static void
grant_stopped(struct tl_daemon *d, char *dir, struct tl_place *p,
    struct agent *h, const char *when, double timeout)
{
	tl_place_make(p, "lk");
	private_daemon_stopping(d, dir, when, p->path);
	agent_start(h, p->path, LB_PIDFILE | LB_BROKER, d->socket);
	ck_assert_int_eq(agent_do(h, 'l', 0), 0);       /* connected */
	agent_send(h, 'a', timeout);
	ck_assert_msg(tl_daemon_stopped(d, HANG_S), "the daemon did not stop "
	    "at the grant's commit; see %s", d->log);
	ck_assert_int_eq(pidfile_names(p->path, h->c.pid), 1);
}

/* A pidfile ACQUIRE whose grant the daemon made (the pid file, naming
 * the client) but never confirmed before it died: the client's library
 * removes that file before it asks the next daemon again (which cannot
 * tell it from another thread's hold), and is granted. */
START_TEST(test_restart_pidfile_unconfirmed_grant)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h;
	char             dir[PATH_MAX];
	FILE            *f;

	private_daemon(&d, dir);
	tl_place_make(&p, "lk");
	agent_start(&h, p.path, LB_PIDFILE | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&h, 'l', 0), 0);      /* connected */
	order_to_stopped(&d, &h, 'a', HANG_S);
	ck_assert_ptr_nonnull(f = fopen(p.path, "w"));
	fprintf(f, "%ld\n", (long)h.c.pid);
	fclose(f);
	daemon_restart(&d, dir, "state.db");
	agent_expect(&h, HANG_S + PROMPT_S, 0, "acquire");
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_stop(&h);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * A pidfile grant the daemon made and recorded (its commit done) but did
 * not confirm before it was killed: after the restart the client's
 * ACQUIRE, sent again, takes it back (the new daemon has it recorded for
 * that owner), and the pid file, which the library must not take for a
 * leftover, stays: the lock excludes in-process takers, the release
 * removes it.
 */
START_TEST(test_restart_pidfile_grant_recorded)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h;
	struct answer    a;
	char             dir[PATH_MAX];
	lb_lock         *lock;
	lb_holder        who;

	grant_stopped(&d, dir, &p, &h, "after", HANG_S);
	ck_assert(!agent_ready(&h, 0.2));               /* no reply */
	daemon_restart(&d, dir, "state.db");

	a = agent_expect(&h, HANG_S + PROMPT_S, 0, "acquire");
	ck_assert_msg(pidfile_names(p.path, h.c.pid) == 1, "the granted lock's "
	    "pid file is gone (taken for a leftover)");
	assert_pidfile_excludes(p.path);
	lock = lock_new(p.path, LB_PIDFILE | LB_BROKER);
	ck_assert_int_eq(lb_acquire(lock, 0), LB_EALREADY);
	ck_assert_int_eq(lb_get_holder(lock, &who), 1);
	ck_assert_int_eq(who.pid, h.c.pid);
	agent_send(&h, 't', 0);
	a = agent_answer(&h, HANG_S);
	ck_assert_int_eq(a.r, 0);
	ck_assert_msg(who.token == a.token, "the daemon's token %llu, the "
	    "holder's %llu", (unsigned long long)who.token,
	    (unsigned long long)a.token);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(pidfile_names(p.path, h.c.pid), -1);
	take_and_release(lock);
	lb_lock_free(lock);
	agent_stop(&h);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * The same grant, the daemon killed before its commit: the new daemon has
 * no record of it, so the pid file (naming the client) is a leftover the
 * library removes before it asks again; the ACQUIRE sent again takes the
 * lock properly (its pid file made anew, excluding others), and the
 * release removes it.
 */
START_TEST(test_restart_pidfile_grant_unrecorded)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h;
	char             dir[PATH_MAX];

	grant_stopped(&d, dir, &p, &h, "before", HANG_S);
	ck_assert(!agent_ready(&h, 0.2));               /* no reply */
	daemon_restart(&d, dir, "state.db");

	agent_expect(&h, HANG_S + PROMPT_S, 0, "acquire");
	ck_assert_int_eq(pidfile_names(p.path, h.c.pid), 1);
	assert_pidfile_excludes(p.path);
	ck_assert_int_eq(agent_do(&h, 'i', 0), 1);
	ck_assert_int_eq(agent_do(&h, 't', 0), 0);      /* the broker's */
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	ck_assert_int_eq(pidfile_names(p.path, h.c.pid), -1);
	agent_stop(&h);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * The same unrecorded grant, but its caller gave up before the next
 * daemon came: _i 0, its ACQUIRE timed out while the connection was being
 * re-established; _i 1, the stopped daemon never answered and the caller
 * gave up on it (then it was killed).  No ACQUIRE of it is left to send
 * again, yet the pid file naming the client is still a leftover of the
 * lost grant: the library removes it once it reaches the next daemon, so
 * that neither its process nor any other waits on it for as long as the
 * client lives.
 */
START_TEST(test_restart_pidfile_unrecorded_grant_given_up)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct agent     h, o;
	char             dir[PATH_MAX];

	grant_stopped(&d, dir, &p, &h, "before", 0.5);
	if (_i == 0)
		ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
	agent_expect(&h, HANG_S, LB_ETIMEOUT, "acquire");
	if (_i == 1)
		ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
	ck_assert_int_eq(pidfile_names(p.path, h.c.pid), 1);
	daemon_again(&d, dir, "state.db");

	/* Answered once the library has reached the new daemon. */
	ck_assert_msg(agent_do(&h, 'l', 0) == 0, "the lost grant's pid file "
	    "is still there");
	ck_assert_int_eq(pidfile_names(p.path, h.c.pid), -1);
	agent_start(&o, p.path, LB_PIDFILE | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&o, 'a', 0), 0);
	ck_assert_int_eq(agent_do(&o, 'r', 0), 0);
	agent_stop(&o);
	ck_assert_int_eq(agent_do(&h, 'a', 0), 0);
	ck_assert_int_eq(pidfile_names(p.path, h.c.pid), 1);
	ck_assert_int_eq(agent_do(&h, 'r', 0), 0);
	agent_stop(&h);
	private_daemon_end(&d, p.dir);
}
END_TEST

/* Connects this process's library to the broker from the calling (main)
 * thread, before other threads use it, so that the library's state is
 * set up here: a fork of this thread (a daemon started) then runs the
 * library's fork handlers after its set-up, as ThreadSanitizer can
 * tell. */
static void
library_connect(const char *path)
{
	lb_lock *probe = lock_new(path, LB_PIDFILE | LB_BROKER);

	ck_assert_int_ge(lb_is_locked(probe), 0);
	lb_lock_free(probe);
}

/* A thread of this process: makes its own handle on path (unless it has
 * one) and makes one call on it. */
struct call {
	pthread_t   thread;
	const char *path;
	unsigned    flags;
	char        op;         /* 'a' acquire (arg), 'l' is_locked, 'r' */
	double      arg;
	lb_lock    *lock;
	int         r;
	char        why[512];
	int         done;       /* atomic */
};

static void *
call_run(void *arg)
{
	struct call *c = arg;

	if (c->lock == NULL)
		c->lock = lb_lock_new(c->path, c->flags);
	if (c->lock == NULL)
		c->r = -1000;
	else if (c->op == 'a')
		c->r = lb_acquire(c->lock, c->arg);
	else if (c->op == 'l')
		c->r = lb_is_locked(c->lock);
	else
		c->r = lb_release(c->lock);
	if (c->lock != NULL)
		snprintf(c->why, sizeof(c->why), "%s", lb_lock_error(c->lock));
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Starts a thread making the call op(arg) on path (flags), or on lock. */
static void
call_start(struct call *c, const char *path, unsigned flags, lb_lock *lock,
    char op, double arg)
{
	memset(c, 0, sizeof(*c));
	c->path = path;
	c->flags = flags;
	c->lock = lock;
	c->op = op;
	c->arg = arg;
	ck_assert_int_eq(pthread_create(&c->thread, NULL, call_run, c), 0);
}

/* call_done: 1 when the call has returned, else 0. */
static int
call_done(struct call *c)
{
	return __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
}

/* Waits (at most seconds) for the call to end; its result. */
static int
call_end(struct call *c, double seconds)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)seconds;
	ck_assert_msg(pthread_timedjoin_np(c->thread, NULL, &ts) == 0,
	    "a call '%c' on %s did not return within %g s", c->op, c->path,
	    seconds);
	return c->r;
}

/*
 * Pid-file locks of ANOTHER live owner are never leftovers: the daemon is
 * killed while this process's ACQUIRE waits (a) behind another process's
 * in-process hold, (b) behind another thread's in-process hold (a pid
 * file naming this process); after the restart the ACQUIRE sent again
 * waits and times out, and the pid file stays the holder's.
 */
START_TEST(test_restart_pidfile_other_owner)
{
	struct tl_daemon d;
	struct tl_place  p, q;
	struct agent     x;
	struct call      c1, c2;
	char             dir[PATH_MAX];
	lb_lock         *mine;

	private_daemon(&d, dir);
	tl_place_make(&p, "lk");
	tl_place_make(&q, "lk");
	agent_start(&x, p.path, LB_PIDFILE | LB_LOCAL, d.socket);
	ck_assert_int_eq(agent_do(&x, 'a', 0), 0);
	mine = lock_new(q.path, LB_PIDFILE | LB_LOCAL);
	ck_assert_int_eq(lb_acquire(mine, 0), 0);
	library_connect(p.path);
	call_start(&c1, p.path, LB_PIDFILE | LB_BROKER, NULL, 'a', 3.0);
	call_start(&c2, q.path, LB_PIDFILE | LB_BROKER, NULL, 'a', 3.0);
	tl_sleep(0.3);   /* both ACQUIREs wait at the daemon (or are queued) */
	ck_assert(!call_done(&c1));
	ck_assert(!call_done(&c2));
	daemon_restart(&d, dir, "state.db");

	ck_assert_msg(call_end(&c1, HANG_S) == LB_ETIMEOUT, "acquire behind "
	    "another process: %s (%s)", lb_error_name(c1.r), c1.why);
	ck_assert_msg(call_end(&c2, HANG_S) == LB_ETIMEOUT, "acquire behind "
	    "another thread: %s (%s)", lb_error_name(c2.r), c2.why);
	ck_assert_int_eq(pidfile_names(p.path, x.c.pid), 1);
	ck_assert_int_eq(pidfile_names(q.path, getpid()), 1);
	ck_assert_int_eq(agent_do(&x, 'i', 0), 1);
	ck_assert_int_eq(lb_i_am_locking(mine), 1);
	ck_assert_int_eq(agent_do(&x, 'r', 0), 0);
	ck_assert_int_eq(lb_release(mine), 0);
	lb_lock_free(mine);
	lb_lock_free(c1.lock);
	lb_lock_free(c2.lock);
	agent_stop(&x);
	ck_assert_int_eq(tl_count(p.dir), 0);
	ck_assert_int_eq(tl_count(q.dir), 0);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/*
 * A kept hold of the pid file for this very process (ACQUIRE pid=, whose
 * owner is the process, not a thread) is recorded, and a thread's
 * ACQUIRE of the same lock waits behind it when the daemon dies: after
 * the restart the kept hold's pid file, which names this process, is not
 * a leftover: the ACQUIRE times out, the pid file stays, and the kept
 * hold is released as such.
 */
START_TEST(test_restart_pidfile_kept_hold)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct call      c;
	char             dir[PATH_MAX], req[PATH_MAX + 256], reply[1024];

	private_daemon(&d, dir);
	tl_place_make(&p, "lk");
	snprintf(req, sizeof(req), "HELLO 1 version=1\nACQUIRE 2 path=%s "
	    "method=pidfile pid=%ld timeout=0\n", p.path, (long)getpid());
	ck_assert_msg(tl_exchange(d.socket, req, "OK 2 ", reply,
	    sizeof(reply), PROMPT_S) == 0, "kept ACQUIRE: %s", reply);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), 1);
	library_connect(p.path);
	call_start(&c, p.path, LB_PIDFILE | LB_BROKER, NULL, 'a', 3.0);
	tl_sleep(0.3);   /* the ACQUIRE waits at the daemon (or is queued) */
	ck_assert(!call_done(&c));
	daemon_restart(&d, dir, "state.db");

	ck_assert_msg(call_end(&c, HANG_S) == LB_ETIMEOUT, "acquire behind "
	    "the kept hold: %s (%s)", lb_error_name(c.r), c.why);
	ck_assert_msg(pidfile_names(p.path, getpid()) == 1, "the kept hold's "
	    "pid file is gone (taken for a leftover)");
	snprintf(req, sizeof(req), "HELLO 1 version=1\nRELEASE 2 path=%s "
	    "method=pidfile pid=%ld\n", p.path, (long)getpid());
	ck_assert_msg(tl_exchange(d.socket, req, "OK 2", reply,
	    sizeof(reply), PROMPT_S) == 0, "kept RELEASE: %s", reply);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), -1);
	take_and_release(c.lock);
	lb_lock_free(c.lock);
	private_daemon_end(&d, p.dir);
}
END_TEST

/*
 * Several threads of this process with requests in flight on its one
 * connection when the daemon dies, stopped after it recorded a pidfile
 * grant to the first and before the reply: the first's ACQUIRE, a second
 * owner's ACQUIRE of the same pid file behind it, a STATUS of it, an
 * ACQUIRE of another lock and a RELEASE of a third.  After the restart
 * each caller has its own proper answer, none hangs, and the first
 * grant's pid file stays (the second owner's look at it does not take it
 * for a leftover); the second owner has it once the first releases.
 */
START_TEST(test_restart_pidfile_pipelined)
{
	struct tl_daemon d;
	struct tl_place  p, q, r;
	struct call      first, second, look, other, held, rel;
	char             dir[PATH_MAX];
	uint64_t         token;

	tl_place_make(&p, "lk");
	tl_place_make(&q, "lk");
	tl_place_make(&r, "lk");
	private_daemon_stopping(&d, dir, "after", p.path);
	call_start(&held, r.path, LB_BROKER, NULL, 'a', 0);
	ck_assert_int_eq(call_end(&held, HANG_S), 0);
	call_start(&first, p.path, LB_PIDFILE | LB_BROKER, NULL, 'a', HANG_S);
	ck_assert_msg(tl_daemon_stopped(&d, HANG_S), "the daemon did not stop "
	    "at the grant's commit; see %s", d.log);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), 1);
	call_start(&second, p.path, LB_PIDFILE | LB_BROKER, NULL, 'a',
	    HANG_S * 2);
	call_start(&look, p.path, LB_PIDFILE | LB_BROKER, NULL, 'l', 0);
	call_start(&other, q.path, LB_BROKER, NULL, 'a', HANG_S);
	call_start(&rel, r.path, LB_BROKER, held.lock, 'r', 0);
	tl_sleep(0.3);   /* their requests go out to the stopped daemon */
	ck_assert(!call_done(&first));
	ck_assert(!call_done(&second));
	ck_assert(!call_done(&look));
	ck_assert(!call_done(&other));
	daemon_restart(&d, dir, "state.db");

	ck_assert_msg(call_end(&first, HANG_S) == 0, "first: %s (%s)",
	    lb_error_name(first.r), first.why);
	ck_assert_msg(pidfile_names(p.path, getpid()) == 1, "the granted "
	    "lock's pid file is gone (taken for a leftover)");
	ck_assert_msg(call_end(&look, HANG_S) == 1, "is_locked: %d (%s)",
	    look.r, look.why);
	ck_assert_msg(call_end(&other, HANG_S) == 0, "other: %s (%s)",
	    lb_error_name(other.r), other.why);
	ck_assert_msg(call_end(&rel, HANG_S) == 0, "release: %s (%s)",
	    lb_error_name(rel.r), rel.why);
	ck_assert_int_eq(tl_count(r.dir), 0);
	ck_assert(!call_done(&second));
	assert_pidfile_excludes(p.path);
	ck_assert_int_eq(lb_i_am_locking(first.lock), 1);
	ck_assert_int_eq(lb_i_am_locking(second.lock), 0);
	ck_assert_int_eq(lb_fencing_token(first.lock, &token), 0);
	ck_assert_int_eq(lb_release(first.lock), 0);
	ck_assert_msg(call_end(&second, HANG_S) == 0, "second: %s (%s)",
	    lb_error_name(second.r), second.why);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), 1);
	ck_assert_int_eq(lb_i_am_locking(second.lock), 1);
	ck_assert_int_eq(lb_release(second.lock), 0);
	ck_assert_int_eq(lb_release(other.lock), 0);
	lb_lock_free(first.lock);
	lb_lock_free(second.lock);
	lb_lock_free(look.lock);
	lb_lock_free(other.lock);
	lb_lock_free(held.lock);
	ck_assert_int_eq(tl_count(p.dir), 0);
	ck_assert_int_eq(tl_count(q.dir), 0);
	ck_assert_int_eq(tl_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/*
 * A pid file names only the process, so a restarted daemon takes any pid
 * file naming this process for the hold it recorded, whichever thread's
 * it is now.  Here this thread's hold through the daemon ends while no
 * daemon runs, and another thread of this process then holds the pid
 * file in-process: (0) this thread's release fell back in-process (the
 * file removed) and the other thread made the file anew; (1) its RELEASE
 * was lost with the daemon while the other thread was asking for the
 * lock (the file left for it), and the other thread, falling back
 * in-process, took the file over.  The hold is not given back to the
 * next daemon, whose RELEASE would remove the other thread's file: the
 * file stays, the lock held for this process, until that thread
 * releases it.
 */
START_TEST(test_restart_pidfile_dropped_then_taken)
{
	struct tl_daemon d;
	struct tl_place  p;
	struct call      rel, other;
	struct agent     x;
	char             dir[PATH_MAX];
	lb_lock         *mine, *probe;
	uint64_t         token = 0;

	private_daemon(&d, dir);
	tl_place_make(&p, "lk");
	library_connect(p.path);
	mine = lock_new(p.path, LB_PIDFILE);
	ck_assert_int_eq(lb_acquire(mine, 0), 0);
	ck_assert_int_eq(lb_fencing_token(mine, &token), 0);
	ck_assert_msg(token != 0, "not held through the daemon");
	if (_i == 0) {
		ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
		ck_assert_int_eq(lb_release(mine), 0);
		ck_assert_int_eq(pidfile_names(p.path, getpid()), -1);
		call_start(&other, p.path, LB_PIDFILE, NULL, 'a', 0);
	} else {
		ck_assert_int_eq(kill(d.pid, SIGSTOP), 0);
		call_start(&rel, p.path, LB_PIDFILE, mine, 'r', 0);
		tl_sleep(0.3);   /* its RELEASE went out to the stopped daemon */
		call_start(&other, p.path, LB_PIDFILE, NULL, 'a', HANG_S);
		tl_sleep(0.3);   /* its ACQUIRE is out, or queued */
		ck_assert(!call_done(&rel));
		ck_assert_int_eq(tl_daemon_stop(&d, SIGKILL), 0);
		ck_assert_msg(call_end(&rel, HANG_S) == 0, "release: %s (%s)",
		    lb_error_name(rel.r), rel.why);
	}
	ck_assert_msg(call_end(&other, HANG_S) == 0, "other: %s (%s)",
	    lb_error_name(other.r), other.why);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), 1);
	daemon_again(&d, dir, "state.db");

	/* Through the daemon, once this process's holds are settled. */
	probe = lock_new(p.path, LB_PIDFILE | LB_BROKER);
	ck_assert_int_eq(lb_is_locked(probe), 1);
	ck_assert_msg(pidfile_names(p.path, getpid()) == 1, "the other "
	    "thread's pid file was removed by the restarted daemon");
	assert_pidfile_excludes(p.path);
	agent_start(&x, p.path, LB_PIDFILE | LB_BROKER, d.socket);
	ck_assert_int_eq(agent_do(&x, 'a', WAIT_S), LB_ETIMEOUT);
	agent_stop(&x);
	ck_assert_int_eq(lb_release(other.lock), 0);
	ck_assert_int_eq(pidfile_names(p.path, getpid()), -1);
	lb_lock_free(probe);
	lb_lock_free(other.lock);
	lb_lock_free(mine);
	private_daemon_end(&d, p.dir);
}
END_TEST

/* ------------------------------------------------------------------ */

/* Adds the tests to tc, in the order they run. */
void
broker_pidfile_restart_tests(TCase *tc)
{
	tcase_add_test(tc, test_restart_pidfile_unconfirmed_grant);
	tcase_add_test(tc, test_restart_pidfile_grant_recorded);
	tcase_add_test(tc, test_restart_pidfile_grant_unrecorded);
	tcase_add_loop_test(tc, test_restart_pidfile_unrecorded_grant_given_up,
	    0, 2);
	tcase_add_test(tc, test_restart_pidfile_other_owner);
	tcase_add_test(tc, test_restart_pidfile_kept_hold);
	tcase_add_test(tc, test_restart_pidfile_pipelined);
	tcase_add_loop_test(tc, test_restart_pidfile_dropped_then_taken, 0,
	    2);
}
