/*
 * lock.c: the lb_lock handle and the LockFile API, over two transports:
 * in-process (lockfs: the artefact made by this process) and the broker
 * (broker.c: lockbrokerd makes the artefact on the owner's behalf, under
 * the same unique name, so either transport sees the other's holds).
 *
 * Which transport a call takes (lock->transport):
 *
 *   LOCAL   always in-process.
 *   BROKER  always the broker; LB_EFAILED (LB_EUNLOCK, LB_ERROR) naming
 *           the socket when no daemon answers.  While the connection is
 *           being re-established, calls wait for it (at most 60 s).
 *   AUTO    acquire, break_lock: the broker when its socket answers
 *           (connecting if need be), else in-process; a waiting acquire
 *           whose connection does not come back within LB__AUTO_FALLBACK_S
 *           goes on waiting in-process for the rest of its timeout.
 *           Every other call: the broker while connected (the daemon
 *           answers one connection's requests in order, so threads that
 *           share an owner see each other's calls in a consistent order),
 *           with an in-process look where the daemon says the lock is
 *           held outside the broker (the owner may hold it in-process,
 *           from before the connection was made).  While not connected:
 *           in-process; but a hold taken through the broker waits up to
 *           LB__AUTO_FALLBACK_S for the connection to come back, and is
 *           released in-process only when it does not.
 *
 * Ownership (docs/OWNERSHIP.md).  The owner is the thread that made the
 * handle, or the process for LB_UNTHREADED, for every method; two owners
 * never hold one lock at once.  Two handles of one owner on one lock share
 * its hold on either transport: an acquire through the second returns 0,
 * a release through either frees it.  But a handle going away
 * (lb_lock_free) releases only what that very handle acquired, and one
 * forgotten (lb_lock_forget) releases nothing: the hold stays with its
 * owner, for another handle of the owner to release.  The
 * process-wide registry in owners.c keeps what the artefact cannot say:
 * which handle acquired each hold, and, for the pidfile method (a pid
 * file names only the process), which owner of the process holds each
 * pid-file lock or is asking the broker for it; the in-process pidfile
 * steps go through it, so that another thread waits like any other owner.
 *
 * A handle is shared safely between threads: its mutex guards its state
 * (the owner identity, renewed in a forked child, and the last failure) and
 * serialises the single filesystem steps, but is never held while an
 * acquire sleeps or a broker request waits, so other threads may use the
 * handle meanwhile.  A forked child makes the mutex and the cancel state
 * anew (handle_own): a thread of the parent may have held their mutexes at
 * the fork.
 *
 * In-process acquire, drawn for one handle (held = the artefact names this
 * owner):
 *
 *          try_acquire ok / already ours
 *   free ---------------------------------> held
 *     |  ^                                  |
 *     |  | timeout <= 0: LB_EALREADY        | lb_release, lb_lock_free
 *     |  | deadline passed: LB_ETIMEOUT     v
 *     |  +------ waiting <-----------+     free
 *     |          (sleep with back-off,|
 *     +--------> try again; a stale  -+
 *   held by other   holder is broken only with LB_BREAK_STALE)
 *
 * Over the broker the daemon does the waiting (one ACQUIRE with the whole
 * timeout, FIFO); LB_BREAK_STALE there breaks a provably dead holder's
 * artefact in-process before the ACQUIRE goes out.
 *
 * A release (lb_release), drawn for the owner's hold:
 *
 *            RELEASE answered OK; in-process: removed
 *   held --------------------------------------------------> free
 *    |  |    RELEASE answered OK pending=1
 *    |  +------------------------------------> free, marked (owners.h: a
 *    |                                         lock file naming the owner
 *    | RELEASE lost with the daemon            is not its own until the
 *    v                                         handoff is shown over)
 *   lost: in-process, under the lock directory's lock (lost_release)
 *    |  |   had within LOST_RELEASE_WAIT_S: looked at, removed if still
 *    |  +-- the owner's ------------------------------------> free
 *    | not had, or not removed (kept for the readers beside it,
 *    | or a failure): LB_EUNLOCK, the hold still the owner's
 *    v
 *   held, lost (lb__owners_lost_owed): the next lb_release that the
 *         daemon does not do (none answers, or it has no hold of the
 *         owner's: the reconnect settled it) is done as lost again
 *
 * Either wait ends early, LB_ECANCELED, when lb_lock_cancel is called or
 * the interrupt hook says so (cancel.h): the in-process poll looks
 * between its tries, the broker's wait withdraws its ACQUIRE (broker.c).
 *
 * The asynchronous acquire (lb_acquire_start, lb_acquire_finish; one at a
 * time per handle, struct async), drawn:
 *
 *            start: ACQUIRE sent or queued          finish: answered
 *   idle ----------------------------------> broker -----------------> idle
 *     |                                        |  (0, or LB_E*)
 *     | start: no daemon (AUTO), or            | finish: unsent past the
 *     | one try refused                        | fallback time (AUTO)
 *     v                                        v
 *   local <------------------------------------+
 *     | finish, at next_try: one more try (back-off as above, to
 *     | ASYNC_BACKOFF_MAX); granted, deadline passed, canceled: idle
 *
 * broker: the reader sets the handle's note (os.h) when the answer comes
 * or the connection changes, lb_lock_cancel when it cancels; finish then
 * looks (lb__broker_acquire_look), sending CANCEL when canceled.  local:
 * nothing happens between the tries but a cancel (which sets the note);
 * the caller calls finish again by the time the previous call said.  The
 * interrupt hook is not called: the caller's event loop is in charge.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockbroker.h"
#include "lockfs.h"
#include "broker.h"
#include "cancel.h"
#include "clusterguard.h"
#include "holds.h"
#include "handle.h"
#include "os.h"
#include "owners.h"
#include "session.h"

/* Back-off between tries while another owner holds the lock: from
 * BACKOFF_MIN, doubling, to BACKOFF_MAX, with jitter so that waiters do not
 * move in step. */
#define BACKOFF_MIN 0.0005
#define BACKOFF_MAX 0.020

/* How long an in-process release after a lost RELEASE waits for the lock
 * directory's lock (lost_release). */
#define LOST_RELEASE_WAIT_S 5.0

/* The asynchronous acquire's in-process back-off goes up to this (its
 * tries are turns of the caller's event loop, each a call), and where
 * there is no note (os.h) finish is to be called again at least this
 * often while the broker's answer is awaited. */
#define ASYNC_BACKOFF_MAX 0.050
#define ASYNC_POLL_S      0.050

/* An asynchronous acquire in progress (drawn above); under the handle's
 * async_mu. */
struct async {
	int                   active;   /* one is in progress */
	int                   broker;   /* its ACQUIRE is q; else in-process */
	struct req           *q;        /* broker: the request (broker.h) */
	int                   asking;   /* pidfile, broker: bracketed by
	                                   lb__owners_asking */
	struct lb__note       note;     /* opened at the first start; fd -1
	                                   where there are none */
	int                   note_made; /* opening it was tried */
	struct lb__wait       w;        /* for lb_lock_cancel (no hook) */
	struct lb__target     t;        /* the lock and its owner */
	double                timeout;  /* as given (LB_FOREVER for > 1e9) */
	double                deadline; /* monotonic, or INFINITY */
	double                next_try; /* local: the next try's time */
	struct lockfs_backoff b;        /* local: the pauses */
};

/* What the calling thread's last acquire that returned 0 found (for
 * lb_acquire_fresh): the handle, by address and serial, and whether the
 * lock was taken afresh. */
struct last_grant {
	const lb_lock *lock;
	uint64_t       serial;
	int            fresh;
};

struct lb_lock {
	pthread_mutex_t     mu;
	pid_t               mu_pid;     /* the process whose threads use mu;
	                                   -pid while pid makes it anew */
	char               *given;      /* the path as given */
	unsigned            flags;
	int                 threaded;
	pid_t               tid;        /* the owner thread; 0: the process */
	uint64_t            serial;     /* names the handle in the registry */
	enum lb__transport  transport;
	struct lockfs_lock  fs;
	struct lockfs_err   err;        /* the last failure, or a note */
	struct lb__cancel   cancel;     /* lb_lock_cancel, the interrupt
	                                   hook */
	pthread_mutex_t     async_mu;   /* guards async; taken before every
	                                   other mutex of the library */
	struct async        async;      /* lb_acquire_start ... finish */
};

/* struct lb_holder as version 0.1 had it: the fields added since took
 * their room from reserved[], and the size must not change. */
struct lb_holder_v0_1 {
	char        host[256];
	char        unique_name[512];
	pid_t       pid;
	pid_t       tid;
	uid_t       uid;
	double      since;
	lb_liveness liveness;
	int         reserved[8];
};
_Static_assert(sizeof(lb_holder) == sizeof(struct lb_holder_v0_1),
    "struct lb_holder changed size");
_Static_assert(offsetof(lb_holder, waiters) ==
    offsetof(struct lb_holder_v0_1, reserved),
    "struct lb_holder's new fields must start in the old reserved room");

typedef int fs_step(struct lockfs_lock *, struct lockfs_err *);

static __thread char error_copy[sizeof(((struct lockfs_err *)0)->msg)];
static __thread struct last_grant last_grant;

/* In a forked child: the asynchronous acquire of the parent is not the
 * child's (its request, in the parent's connection, is left as
 * session.c leaves the parent's requests), nor its note (closed here;
 * the child's first start opens its own); async_mu made anew. */
static void
async_remake(lb_lock *lock)
{
	pthread_mutex_init(&lock->async_mu, NULL);
	lock->async.active = 0;
	lock->async.broker = 0;
	lock->async.q = NULL;
	lock->async.asking = 0;
	lb__os_note_close(&lock->async.note);
	lock->async.note_made = 0;
}

/*
 * Makes the calling process the one whose threads use the handle's
 * mutexes: a forked child has the handle's mutex and its cancel state
 * (cancel.h) as the fork found them, perhaps held by a thread of the
 * parent that the child does not have, and counting acquires that thread
 * had in progress (and the asynchronous acquire's, async_remake).  The
 * child's first call makes them anew (one thread of
 * the child does; any other waits for it).  Every call that takes either
 * mutex calls this first.
 */
static void
handle_own(lb_lock *lock)
{
	pid_t me = lockfs_os_pid();
	pid_t was = __atomic_load_n(&lock->mu_pid, __ATOMIC_ACQUIRE);

	if (was != me) {
		if (was != -me && __atomic_compare_exchange_n(&lock->mu_pid,
		    &was, -me, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			pthread_mutex_init(&lock->mu, NULL);
			lb__cancel_remake(&lock->cancel);
			async_remake(lock);
			__atomic_store_n(&lock->mu_pid, me, __ATOMIC_RELEASE);
		}
		while (__atomic_load_n(&lock->mu_pid, __ATOMIC_ACQUIRE) != me)
			sched_yield();
	}
}

/* Takes the handle's mutex (made anew first in a forked child:
 * handle_own). */
static void
handle_lock(lb_lock *lock)
{
	handle_own(lock);
	pthread_mutex_lock(&lock->mu);
}

/*
 * Begins a step on a handle: takes its mutex and, in a forked child, makes
 * the child a new owner (a child never holds its parent's locks).  Returns
 * 0, or an LB_E* code with the reason in *err and recorded (mutex
 * released).
 */
static int
step_begin(lb_lock *lock, struct lockfs_err *err)
{
	struct lockfs_owner o;
	pid_t               tid;
	int                 r = 0;

	handle_lock(lock);
	if (lock->fs.owner.pid == lockfs_os_pid())
		goto out;
	if (lockfs_owner_self(&o, lock->threaded) == -1)
		goto fail;
	tid = o.tid;
	if (lock->fs.method == LB_PIDFILE)
		o.tid = 0;      /* the artefact names the process only */
	if (lockfs_unique_make(&lock->fs, &o) == -1)
		goto fail;
	lock->tid = tid;
	lock->fs.owner = o;
	goto out;
fail:
	r = lockfs_fail(err, LB_ERROR, errno, "cannot tell who holds %s after "
	    "fork", lock->given);
	lock->err = *err;
	pthread_mutex_unlock(&lock->mu);
out:
	return r;
}

/* Ends a step: records a failure's reason from err, releases the mutex,
 * returns r. */
static int
step_end(lb_lock *lock, int r, const struct lockfs_err *err)
{
	if (r < 0 && err != NULL)
		lock->err = *err;
	pthread_mutex_unlock(&lock->mu);
	return r;
}

/* Records a failure's reason from err outside a step; returns r. */
static int
record(lb_lock *lock, int r, const struct lockfs_err *err)
{
	if (r < 0) {
		handle_lock(lock);
		lock->err = *err;
		pthread_mutex_unlock(&lock->mu);
	}
	return r;
}

/* Runs one in-process step on the handle, under its mutex. */
static int
local_step(lb_lock *lock, fs_step *step, struct lockfs_err *err)
{
	int r;

	if ((r = step_begin(lock, err)) != 0)
		return r;
	return step_end(lock, step(&lock->fs, err), err);
}

/*
 * Begins an API call: the owner is renewed after a fork (step_begin), *t
 * filled with the lock and its owner, and a broker hold the owner lost
 * while the daemon was away is reported (LB_ENOTLOCKED, once).  Returns 0,
 * or an LB_E* code with the reason recorded.  The mutex is not held on
 * return.
 */
static int
call_begin(lb_lock *lock, struct lb__target *t, struct lockfs_err *err)
{
	int r;

	if ((r = step_begin(lock, err)) != 0)
		return r;
	t->path = lock->fs.path;
	t->lock_file = lock->fs.lock_file;
	t->method = lock->fs.method;
	t->tid = lock->tid;
	t->broker_only = lock->transport == LB__BROKER;
	t->break_stale = (lock->flags & LB_BREAK_STALE) != 0;
	t->wait = NULL;
	t->shared = 0;
	t->set_key = 0;
	t->set_of = 0;
	r = 0;
	if (lock->transport != LB__LOCAL)
		r = lb__holds_take_lost(t, err);
	return step_end(lock, r, err);
}

/* After a call on the owner's hold: a broker hold lost while the call
 * waited (the daemon restarted and would not give it back) is reported
 * now, in place of the call's own answer. */
static int
lost_meanwhile(const lb_lock *lock, const struct lb__target *t, int r,
    struct lockfs_err *err)
{
	if (lock->transport != LB__LOCAL && lb__holds_take_lost(t, err) != 0)
		return LB_ENOTLOCKED;
	return r;
}

/* How long a call of this handle waits for a lost broker connection to
 * come back before it is done in-process instead. */
static double
fallback_of(const lb_lock *lock)
{
	return lock->transport == LB__BROKER ? INFINITY : LB__AUTO_FALLBACK_S;
}

/* The registry's key for the hold of t (owners.h). */
static void
key_of(const struct lb__target *t, struct lb__owner_key *k)
{
	k->lock_file = t->lock_file;
	k->method = t->method;
	k->tid = t->tid;
}

/* In-process: whether t's owner holds the lock (lockfs_i_am_locking; for
 * the pidfile method, whose artefact names only the pid, the registry
 * says which owner of the process does; a lock file still naming an
 * owner whose release the daemon answered pending is not its own).
 * Under the handle's mutex, taken by the caller. */
static int
mine_locked(lb_lock *lock, const struct lb__target *t,
    struct lockfs_err *err)
{
	struct lb__owner_key k;
	int                  r;

	key_of(t, &k);
	if (lb__owners_unfinished_named(&k, &lock->fs))
		r = 0;          /* its release pending: not its own */
	else if (lock->fs.method == LB_PIDFILE)
		r = lb__owners_pidfile_mine(&k, &lock->fs, err);
	else
		r = lockfs_i_am_locking(&lock->fs, err);
	return r;
}

/* mine_locked under the handle's mutex. */
static int
local_mine(lb_lock *lock, const struct lb__target *t, struct lockfs_err *err)
{
	int r;

	if ((r = step_begin(lock, err)) != 0)
		return r;
	return step_end(lock, mine_locked(lock, t, err), err);
}

/*
 * Whether lock's artefact must stay for the readers of a shared lock
 * (docs/SHARED.md): the daemon is away, t's owner was told it holds the
 * lock shared (never for a hold taken exclusive, so that no marker made
 * by another makes it keep a lock it alone held), the artefact names
 * this owner, and the marker of a live reader lies beside it, who reads
 * on the strength of this very file, or the directory cannot be read to
 * tell (lockfs_readers_live: -1, never taken for "no reader").  0:
 * release it; LB_EUNLOCK with err filled: kept, the owner's still (a
 * later release tries again).  Only a handle that may hold through the
 * daemon looks (a directory's read).
 */
static int
readers_keep(lb_lock *lock, const struct lb__target *t,
    struct lockfs_err *err)
{
	struct lockfs_err mine;

	if (lock->transport == LB__LOCAL || !lb__holds_shared(t) ||
	    lockfs_i_am_locking(&lock->fs, &mine) != 1 ||
	    lockfs_readers_live(&lock->fs) == 0)
		return 0;
	return lockfs_fail(err, LB_EUNLOCK, EBUSY, "%s is held shared: "
	    "other readers hold it with this owner's lock file (or its "
	    "directory cannot be read to tell), and lockbrokerd, which "
	    "would hand it to one of them, is away; "
	    "nothing removed, the lock still this owner's: release it "
	    "again once they have gone", lock->given);
}

/* In-process release of t's owner's hold (see local_mine); never of a
 * lock file whose release the daemon answered pending (the daemon's to
 * hand on). */
static int
local_release(lb_lock *lock, const struct lb__target *t,
    struct lockfs_err *err)
{
	struct lb__owner_key k;
	struct lockfs_err    mark;
	int                  r;

	if ((r = step_begin(lock, err)) != 0)
		return r;
	key_of(t, &k);
	if (lb__owners_unfinished_named(&k, &lock->fs))
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is being handed on by "
		    "lockbrokerd, which answered its release pending: not "
		    "removed", lock->given);
	else if ((r = readers_keep(lock, t, err)) != 0)
		;       /* kept for the readers: the owner's still */
	else if (lock->fs.method == LB_PIDFILE)
		r = lb__owners_pidfile_release(&k, &lock->fs, err);
	else
		r = lockfs_release(&lock->fs, err);
	if (r == LB_ENOTMINE && lock->transport != LB__LOCAL)
		/* A reader of a shared lock whose artefact names another:
		 * its own marker goes (docs/SHARED.md). */
		(void)lockfs_reader_unmark(&lock->fs, &lock->fs.owner, &mark);
	return step_end(lock, r, err);
}

/*
 * In-process release of t's owner's hold after its RELEASE was lost with
 * the daemon (LB__RELEASE_LOST), and every later release of that hold
 * until one is done (lb__owners_lost_owed): under the lock directory's
 * lock, which a restarted daemon takes to finish a handoff it recorded
 * (lockfs_handoff_resume), so that the look at the lock file (still the
 * owner's?) and its removal never straddle that handoff's rename, which
 * would remove the next holder's file.  Never without it: the daemon,
 * lockbroker's breakers and releases hold it for a few system calls, and
 * it dies with its holder (it cannot be stale), so it is waited for up
 * to LOST_RELEASE_WAIT_S; held longer (a process that keeps it), the
 * release fails, LB_EUNLOCK, the lock file left as it is and the hold
 * still the owner's (lb__owners_lost_release), for a later lb_release
 * to try again.
 *
 * And never while this library gives the same hold back to a restarted
 * daemon (reader.c: RECLAIM, then RELEASE of the dropped hold): that
 * daemon's release and its grant to the next holder take no directory
 * lock (its handoff, finding the directory's lock taken here, releases
 * plainly and grants anew), so they could come between the look and the
 * removal, which would then remove the next holder's lock file.  The
 * dropped hold is pinned (lb__holds_pin) for the whole release, so that
 * the reader settles it before (the lock file then gone, or another's)
 * or after (it then finds the lock file gone: no RECLAIM); while it is
 * being settled, the release waits, within the same LOST_RELEASE_WAIT_S.
 * Blocks up to LOST_RELEASE_WAIT_S.
 */
static int
lost_release(lb_lock *lock, const struct lb__target *t,
    struct lockfs_err *err)
{
	struct timespec       pause = { 0, 1000000 };   /* 1 ms */
	struct lb__owner_key  k;
	struct lockfs_dirlock dl = { -1 };
	struct lockfs_err     why;
	double                deadline = lockfs_now() + LOST_RELEASE_WAIT_S;
	int                   pinned, r;

	key_of(t, &k);
	while ((pinned = lb__holds_pin(t)) == LB_EALREADY &&
	    lockfs_now() < deadline)
		nanosleep(&pause, NULL);
	if (pinned == LB_EALREADY) {
		lb__owners_lost_release(&k);
		r = lockfs_fail(err, LB_EUNLOCK, EWOULDBLOCK, "cannot release "
		    "%s in-process after lockbrokerd went away with its "
		    "RELEASE: its hold is still being given back to the "
		    "restarted daemon; nothing removed, the lock still this "
		    "owner's: release it again", lock->given);
		goto out;
	}
	if (lockfs_handoff_exclude(&lock->fs, fmax(deadline - lockfs_now(),
	    0), &dl, &why) != 0) {
		lb__owners_lost_release(&k);
		r = lockfs_fail(err, LB_EUNLOCK, why.sys_errno, "cannot "
		    "release %s in-process after lockbrokerd went away with "
		    "its RELEASE: the lock of its directory %s, which a "
		    "restarted daemon takes to finish a handoff, %s; nothing "
		    "removed, the lock still this owner's: release it again",
		    lock->given, lock->fs.dir, why.sys_errno == EWOULDBLOCK ?
		    "was held by another process for longer than the wait" :
		    "could not be taken");
		goto out;
	}
	/* Not done (the lock file kept for the readers beside it,
	 * LB_EUNLOCK, or a failure): the hold is still the owner's, and
	 * its next release is done as lost again, whatever the restarted
	 * daemon, given the dropped hold back and released meanwhile,
	 * answers (ENOTMINE: it handed the lock on). */
	if ((r = local_release(lock, t, err)) != 0 && r != LB_ENOTLOCKED &&
	    r != LB_ENOTMINE)
		lb__owners_lost_release(&k);
out:
	lockfs_dirlock_close(&dl);
	if (pinned == 1)
		lb__holds_unpin(t, 0);  /* dropped still: settled later */
	return r;
}

/* lb__lock_view: see handle.h.  The path, method and transport are set
 * by lb_lock_new and never change. */
void
lb__lock_view(lb_lock *lock, struct lb__handle_view *v)
{
	v->given = lock->given;
	v->path = lock->fs.path;
	v->method = lock->fs.method;
	v->lock_file = lock->fs.lock_file;
	v->dir = lock->fs.dir;
	v->db = lock->fs.db;
	v->transport = lock->transport;
}

/* lb__lock_failed: see handle.h. */
int
lb__lock_failed(lb_lock *lock, int r, const struct lockfs_err *err)
{
	return record(lock, r, err);
}

/* lb_lock_new: see lockbroker.h. */
lb_lock *
lb_lock_new(const char *path, unsigned flags)
{
	struct lockfs_err err;
	lb_lock          *lock = NULL;
	unsigned          method = flags & LB_METHOD_MASK;
	unsigned          known = LB_METHOD_MASK | LB_UNTHREADED | LB_LOCAL |
	                      LB_BROKER | LB_BREAK_STALE;

	if (path == NULL || *path == '\0' || (flags & ~known) != 0 ||
	    lockfs_ops_for(method) == NULL ||
	    (flags & (LB_LOCAL | LB_BROKER)) == (LB_LOCAL | LB_BROKER)) {
		errno = EINVAL;
		goto fail;
	}
	if ((lock = calloc(1, sizeof(*lock))) == NULL ||
	    (lock->given = strdup(path)) == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	lb__conn_init();
	lock->flags = flags;
	lock->threaded = (flags & LB_UNTHREADED) == 0;
	lock->tid = lock->threaded ? lockfs_gettid() : 0;
	lock->serial = lb__owners_serial();
	if (flags & LB_LOCAL)
		lock->transport = LB__LOCAL;
	else if (flags & LB_BROKER)
		lock->transport = LB__BROKER;
	else
		lock->transport = lb__transport_from_env(lock->err.msg,
		    sizeof(lock->err.msg));
	/* A sqlite database of the client's own choosing is not the one the
	 * broker would use (the daemon's environment decides there): lock
	 * in-process, where the choice holds. */
	if (lock->transport == LB__AUTO && method == LB_SQLITE &&
	    getenv("LOCKBROKER_SQLITE_DB") != NULL &&
	    *getenv("LOCKBROKER_SQLITE_DB") != '\0')
		lock->transport = LB__LOCAL;
	if (lockfs_init(&lock->fs, path, method, lock->tid, &err) != 0)
		goto fail;      /* errno from lockfs_init */
	pthread_mutex_init(&lock->mu, NULL);
	lb__cancel_init(&lock->cancel);
	pthread_mutex_init(&lock->async_mu, NULL);
	lock->async.note.fd[0] = lock->async.note.fd[1] = -1;
	lock->mu_pid = lockfs_os_pid();
	return lock;

fail:
	if (lock != NULL) {
		int saved = errno;

		free(lock->given);
		free(lock);
		errno = saved;
	}
	return NULL;
}

/* Frees the handle itself: the registry no longer names it as the
 * acquiring handle of any hold (the holds stay with their owners). */
static void
lock_destroy(lb_lock *lock)
{
	handle_own(lock);
	lb__owners_forget_handle(lock->serial);
	lb__cancel_fini(&lock->cancel);
	lb__os_note_close(&lock->async.note);
	pthread_mutex_destroy(&lock->async_mu);
	pthread_mutex_destroy(&lock->mu);
	lockfs_fini(&lock->fs);
	free(lock->given);
	free(lock);
}

/* Forward: an asynchronous acquire in progress ended as the handle
 * goes (below, with the asynchronous acquire). */
static void async_abandon(lb_lock *lock, int wait);

/* lb_lock_free: see lockbroker.h.  Releases only a hold this very handle
 * acquired and its owner still holds (in a forked child: nothing of the
 * parent's, whose registry the child does not have). */
void
lb_lock_free(lb_lock *lock)
{
	struct lb__owner_key k;
	int                  saved = errno, acquired;

	if (lock == NULL)
		return;
	async_abandon(lock, 1);
	handle_lock(lock);
	k.lock_file = lock->fs.lock_file;
	k.method = lock->fs.method;
	k.tid = lock->tid;
	acquired = lock->fs.owner.pid == lockfs_os_pid() &&
	    lb__owners_acquired_by(&k, lock->serial);
	pthread_mutex_unlock(&lock->mu);
	if (acquired && lb_i_am_locking(lock) == 1)
		lb_release(lock);
	lock_destroy(lock);
	errno = saved;
}

/* lb_lock_forget: see lockbroker.h.  No filesystem step and no request:
 * the owner's hold, if any, is left as it is, in the registries too. */
void
lb_lock_forget(lb_lock *lock)
{
	int saved = errno;

	if (lock != NULL) {
		async_abandon(lock, 0);
		lock_destroy(lock);
	}
	errno = saved;
}

/* One in-process try, under the handle's mutex; breaks a stale holder's
 * lock and tries again when the flags ask for it.  In AUTO mode the try is
 * bracketed by lb__holds_pin/unpin (see holds.h).  A lock file naming an
 * owner whose release the daemon answered pending is another's (the
 * daemon's next holder's): never taken for the owner's own; nor is one
 * its owner holds shared (lb__holds_shared: LB_EFAILED).  *fresh is
 * set to whether the owner held no lock before the try (looked at under
 * the same mutex, just before it: race-free against the other calls
 * through this handle; the registry answers at once when the owner
 * holds nothing). */
static int
acquire_once(lb_lock *lock, const struct lb__target *t, int *fresh,
    struct lockfs_err *err)
{
	struct lb__owner_key k;
	struct lockfs_err    ignored;
	int                  pinned = 0, r;

	if ((r = step_begin(lock, err)) != 0)
		return r;
	key_of(t, &k);
	/* Its owner holds it shared through the daemon (readers may hold
	 * beside it): its own lock file is no exclusive lock. */
	if (lb__holds_shared(t)) {
		r = lockfs_fail(err, LB_EFAILED, 0, "%s is held shared by this "
		    "owner: only lb_upgrade, through lockbrokerd, makes it "
		    "exclusive", lock->given);
		goto out;
	}
	if (lb__owners_unfinished_named(&k, &lock->fs)) {
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is being handed on "
		    "by lockbrokerd, whose release of it is pending",
		    lock->given);
		goto out;
	}
	if (lock->transport == LB__AUTO && (pinned = lb__holds_pin(t)) < 0) {
		r = lockfs_fail(err, LB_EALREADY, 0, "%s is being handed back "
		    "to lockbrokerd", lock->given);
		goto out;
	}
	*fresh = !lb__owners_holds(&k) ||
	    mine_locked(lock, t, &ignored) != 1;
	if (lock->fs.method == LB_PIDFILE)
		r = lb__owners_pidfile_try(&k, &lock->fs, lock->serial, err);
	else
		r = lockfs_try_acquire(&lock->fs, err);
	if (r == LB_EALREADY && (lock->flags & LB_BREAK_STALE) != 0 &&
	    lockfs_break_stale(&lock->fs, err) == 1)
		r = lock->fs.method == LB_PIDFILE ?
		    lb__owners_pidfile_try(&k, &lock->fs, lock->serial, err) :
		    lockfs_try_acquire(&lock->fs, err);
	/* Nothing of a failed try stays on disk (the link method's unique
	 * file), so a process killed while it waits leaves nothing behind. */
	if (r != 0)
		lockfs_abandon(&lock->fs);
	if (pinned == 1)
		lb__holds_unpin(t, r == 0);
out:
	return step_end(lock, r, err);
}

/* Takes the lock in-process, polling with a bounded back-off until
 * deadline (monotonic; used when timeout is finite and > 0), or until
 * t->wait says stop (looked at before the first try and between the
 * tries); *fresh as acquire_once sets it at the try that took it. */
static int
local_acquire(lb_lock *lock, const struct lb__target *t, double timeout,
    double deadline, int *fresh, struct lockfs_err *err)
{
	struct lockfs_backoff b;
	int                   r;

	lockfs_backoff_init(&b, BACKOFF_MIN, BACKOFF_MAX);
	if (lb__wait_canceled(t->wait))
		r = lb__wait_fail(t->wait, lock->given, err);
	else
		r = acquire_once(lock, t, fresh, err);
	for (; r == LB_EALREADY; r = acquire_once(lock, t, fresh, err)) {
		if (timeout <= 0)
			break;
		if (lb__wait_stopped(t->wait)) {
			r = lb__wait_fail(t->wait, lock->given, err);
			break;
		}
		if (lockfs_backoff_sleep(&b, isinf(timeout) ? INFINITY :
		    deadline) == -1) {
			r = lockfs_fail(err, LB_ETIMEOUT, 0, "timed out after "
			    "%g s waiting for %s", timeout, lock->given);
			break;
		}
	}
	return r;
}

/* Takes the lock through the broker, which does the waiting (and, with
 * LB_BREAK_STALE, asked with stale=1, breaks a provably dead holder's
 * artefact, also one that dies while we wait). */
static int
broker_acquire(lb_lock *lock, const struct lb__target *t, double timeout,
    double deadline, int *fresh, struct lockfs_err *err)
{
	return lb__broker_acquire(t, timeout, deadline, fallback_of(lock),
	    NULL, fresh, err);
}

/* The broker's part of an acquire (*fresh set on a grant: see
 * lb__broker_acquire); for the pidfile method bracketed by
 * lb__owners_asking/asked, so that no other owner of this process takes
 * the pid file the daemon makes for this one for its own. */
static int
broker_acquire_owned(lb_lock *lock, const struct lb__target *t,
    double timeout, double deadline, int *fresh, struct lockfs_err *err)
{
	struct lb__owner_key k;
	int                  r;

	key_of(t, &k);
	if (t->method != LB_PIDFILE)
		return broker_acquire(lock, t, timeout, deadline, fresh, err);
	if (lb__owners_asking(&k) != 0)
		return lockfs_fail(err, LB_ENOMEM, ENOMEM, "acquire of %s",
		    lock->given);
	r = broker_acquire(lock, t, timeout, deadline, fresh, err);
	lb__owners_asked(&k, lock->serial, r == 0, *fresh);
	return r;
}

/* An acquire through lock returned 0 (fresh: the owner held no lock
 * before): the registry records this handle as the acquiring one when
 * fresh (the pidfile method's own steps record it), and the calling
 * thread remembers it for lb_acquire_fresh. */
static void
acquired(lb_lock *lock, const struct lb__target *t, int fresh)
{
	struct lb__owner_key k;

	if (t->method != LB_PIDFILE) {
		key_of(t, &k);
		lb__owners_acquired(&k, lock->serial, fresh);
	}
	last_grant.lock = lock;
	last_grant.serial = lock->serial;
	last_grant.fresh = fresh;
}

/* The reason a shared lock is refused without the daemon; LB_EFAILED. */
static int
shared_needs_daemon(const lb_lock *lock, struct lockfs_err *err)
{
	return lockfs_fail(err, LB_EFAILED, 0, "%s: shared locks need the "
	    "daemon (lockbrokerd), and none answers%s", lock->given,
	    lock->transport == LB__LOCAL ? " this handle (LB_LOCAL)" : "");
}

/* lb_acquire and lb_acquire_shared (shared: mode=shared, through the
 * daemon only).  Blocks up to timeout (in AUTO and BROKER mode, plus the
 * time to connect).  Records in the registry (owners.h) whether this
 * handle acquired the hold or found its owner holding it (acquired): the
 * daemon's answer tells, or the in-process try.  In progress, for
 * lb_lock_cancel, from its first step to its return; ended early also
 * by a cancel of one of the nset waits of set (lb_acquire_all's other
 * handles; cancel.h).  *freshp is set on a grant (acquired). */
static int
acquire_in(lb_lock *lock, double timeout, int shared,
    const struct lb__wait *set, size_t nset, int *freshp)
{
	struct lb__target    t;
	struct lb__wait      w;
	struct lockfs_err    err;
	double               deadline = INFINITY;
	int                  r, fresh = 0;

	if (lock == NULL)
		return LB_EINVAL;
	handle_own(lock);
	lb__wait_begin(&w, &lock->cancel);
	w.set = set;
	w.nset = nset;
	if (isnan(timeout)) {
		r = record(lock, lockfs_fail(&err, LB_EINVAL, 0,
		    "timeout for %s is not a number", lock->given), &err);
		goto out;
	}
	if (timeout > LB__TIMEOUT_MAX_S)
		timeout = INFINITY;     /* as good as forever: see broker.h */
	if (timeout > 0 && !isinf(timeout))
		deadline = lockfs_now() + timeout;
	if ((r = call_begin(lock, &t, &err)) != 0)
		goto out;
	t.wait = &w;
	t.shared = shared;
	r = LB__FALLBACK;
	if (lock->transport == LB__BROKER ||
	    (lock->transport == LB__AUTO && lb__broker_connect(&err) == 0))
		r = broker_acquire_owned(lock, &t, timeout, deadline, &fresh,
		    &err);
	if (r == LB__FALLBACK && shared)
		r = shared_needs_daemon(lock, &err);    /* never exclusive */
	else if (r == LB__FALLBACK && lock->transport == LB__AUTO &&
	    lb__cluster_guard(t.path, &err) != 0)
		r = LB_EFAILED;         /* a cluster lock: never here alone */
	else if (r == LB__FALLBACK)
		r = local_acquire(lock, &t, timeout, deadline, &fresh, &err);
	if (r == 0)
		acquired(lock, &t, fresh);
	r = record(lock, r, &err);
out:
	lb__wait_end(&w);
	*freshp = fresh;
	return r;
}

/* lb_acquire and lb_acquire_shared: acquire_in, alone. */
static int
acquire(lb_lock *lock, double timeout, int shared)
{
	int fresh;

	return acquire_in(lock, timeout, shared, NULL, 0, &fresh);
}

/* lb__acquire_member: see handle.h. */
int
lb__acquire_member(lb_lock *lock, double timeout,
    const struct lb__wait *set, size_t nset, int *fresh)
{
	return acquire_in(lock, timeout, 0, set, nset, fresh);
}

/*
 * Whether lb__acquire_set may ask the daemon for locks (the handles in
 * the caller's order) as one set: none in-process only, one owner (the
 * same thread, or LB_UNTHREADED alike), the same LB_BREAK_STALE, and a
 * daemon that takes sets (connected to now for a handle that uses it
 * when it answers).  *fallback is how long a request waits unsent for a
 * lost connection: as the handles' (AUTO's, when one is).
 */
static int
set_for_daemon(lb_lock **locks, size_t n, const size_t *order,
    double *fallback)
{
	struct lockfs_err ignored;
	size_t            j;
	lb_lock          *a = locks[order[0]], *b;

	*fallback = INFINITY;
	for (j = 0; j < n; j++) {
		b = locks[order[j]];
		handle_own(b);
		if (b->transport == LB__LOCAL || b->tid != a->tid ||
		    b->fs.owner.pid != lockfs_os_pid() ||
		    (b->flags & LB_BREAK_STALE) != (a->flags & LB_BREAK_STALE))
			return 0;
		if (b->transport == LB__AUTO)
			*fallback = LB__AUTO_FALLBACK_S;
	}
	return lb__broker_connect(&ignored) == 0 && lb__broker_sets();
}

/*
 * Gives back the locks of a set granted in part (the daemon answers a set
 * as one; a part comes from a connection lost between its replies, the
 * rest refused by the next daemon): released, the failure reported the
 * one that ended the set.
 */
static void
set_give_back(lb_lock **locks, size_t n, const size_t *order,
    const unsigned char *granted)
{
	size_t j;

	for (j = 0; j < n; j++)
		if (granted[j])
			(void)lb_release(locks[order[j]]);
}

/* lb__acquire_set: see handle.h. */
int
lb__acquire_set(lb_lock **locks, size_t n, const size_t *order,
    double timeout, const struct lb__wait *set, size_t *failed)
{
	struct lb__target    *t = NULL;
	struct lb__wait      *w = NULL;
	struct req          **qs = NULL;
	struct lb__owner_key  k;
	struct lockfs_err     err, first;
	unsigned char        *granted = NULL;
	int                  *fresh = NULL;
	double                deadline = INFINITY, fallback, until;
	uint64_t              key, token;
	size_t                j, begun = 0, started = 0, bad = SIZE_MAX;
	int                   r = LB__FALLBACK, rj, fell = 0;
	int                   culprit = 0, blamed = 0;
	lb_lock              *lock;

	if (!set_for_daemon(locks, n, order, &fallback))
		return LB__FALLBACK;
	if ((t = calloc(n, sizeof(*t))) == NULL ||
	    (w = calloc(n, sizeof(*w))) == NULL ||
	    (qs = calloc(n, sizeof(*qs))) == NULL ||
	    (granted = calloc(n, 1)) == NULL ||
	    (fresh = calloc(n, sizeof(*fresh))) == NULL)
		goto out;               /* lock by lock, then */
	if (timeout > LB__TIMEOUT_MAX_S)
		timeout = INFINITY;
	if (timeout > 0 && !isinf(timeout))
		deadline = lockfs_now() + timeout;
	key = lb__next_id();
	for (begun = 0; begun < n; begun++) {
		lock = locks[order[begun]];
		lb__wait_begin(&w[begun], &lock->cancel);
		w[begun].set = set;
		w[begun].nset = n;
		if ((r = call_begin(lock, &t[begun], &err)) != 0) {
			bad = begun++;
			goto out;
		}
		t[begun].wait = &w[begun];
		t[begun].set_key = key;
		t[begun].set_of = (unsigned)n;
		key_of(&t[begun], &k);
		if (lb__owners_holds(&k)) {
			r = record(lock, lockfs_fail(&err, LB_EINVAL, 0, "%s is "
			    "already held by this owner: lb_acquire_all takes "
			    "only locks it does not hold", lock->given), &err);
			bad = begun++;
			goto out;
		}
	}
	/* The pid files the daemon makes are this owner's (owners.h). */
	for (j = 0; j < n; j++) {
		key_of(&t[j], &k);
		if (t[j].method == LB_PIDFILE && lb__owners_asking(&k) != 0) {
			r = record(locks[order[j]], lockfs_fail(&err,
			    LB_ENOMEM, ENOMEM, "acquire of %s",
			    locks[order[j]]->given), &err);
			bad = j;
			while (j-- > 0)
				if (t[j].method == LB_PIDFILE) {
					key_of(&t[j], &k);
					lb__owners_asked(&k,
					    locks[order[j]]->serial, 0, 0);
				}
			goto out;
		}
	}
	/* Every member sent, then every answer waited for: the daemon
	 * answers the set as one, once its last member is in. */
	r = 0;
	for (started = 0; started < n; started++)
		if ((rj = lb__broker_acquire_start(&t[started], timeout,
		    deadline, fallback, NULL, &qs[started], &err)) !=
		    LB__INPROGRESS)
			break;
	if (started < n) {
		/* One that could not go: those sent are withdrawn (CANCEL
		 * of a set not complete refuses it). */
		for (j = 0; j < started; j++)
			granted[j] = lb__broker_acquire_drop(&qs[j], &fresh[j]);
		if (rj == LB__FALLBACK)
			fell = 1;
		else {
			granted[started] = rj == 0;     /* never, for a set */
			bad = started;
			r = rj != 0 ? rj : LB_EFAILED;
			first = err;
			if (rj == 0)
				lockfs_fail(&first, r, 0, "%s: granted alone, "
				    "out of its set", locks[order[started]]->given);
		}
	}
	/* The failure reported is the one of the lock the daemon refused
	 * the set for (lock=), else the first. */
	for (j = 0; started == n && j < n; j++) {
		rj = lb__broker_acquire_look(&qs[j], fallback, 1, &until,
		    &token, &fresh[j], &culprit, &err);
		if (rj == 0)
			granted[j] = 1;
		else if (rj == LB__FALLBACK)
			fell = 1;
		else if (bad == SIZE_MAX || (culprit && !blamed)) {
			bad = j;
			blamed = culprit;
			first = err;
			r = rj;
		}
	}
	for (j = 0; j < n; j++) {
		key_of(&t[j], &k);
		if (t[j].method == LB_PIDFILE)
			lb__owners_asked(&k, locks[order[j]]->serial, granted[j],
			    fresh[j]);
		if (granted[j])
			acquired(locks[order[j]], &t[j], fresh[j]);
	}
	if (r == 0 && !fell)
		goto out;
	set_give_back(locks, n, order, granted);
	if (r == 0)
		r = LB__FALLBACK;       /* every one unsent past its time */
	else
		r = record(locks[order[bad]], r, &first);
out:
	while (begun > 0)
		lb__wait_end(&w[--begun]);
	if (r != 0 && r != LB__FALLBACK && bad != SIZE_MAX)
		*failed = order[bad];
	free(t);
	free(w);
	free(qs);
	free(granted);
	free(fresh);
	return r;
}

/* lb__lock_cancel: see handle.h. */
struct lb__cancel *
lb__lock_cancel(lb_lock *lock)
{
	handle_own(lock);
	return &lock->cancel;
}

/* lb_acquire: see lockbroker.h. */
int
lb_acquire(lb_lock *lock, double timeout)
{
	return acquire(lock, timeout, 0);
}

/* lb_acquire_shared: see lockbroker.h. */
int
lb_acquire_shared(lb_lock *lock, double timeout)
{
	return acquire(lock, timeout, 1);
}

/* ------------------------------------------------------------------ */
/* The asynchronous acquire (drawn at the top; struct async).          */

/* One in-process try of a (a turn of its poll): LB__INPROGRESS with
 * a->next_try set when another is due, else the outcome (*fresh set on a
 * grant).  Under async_mu. */
static int
async_local_try(lb_lock *lock, struct async *a, int *fresh,
    struct lockfs_err *err)
{
	double pause;
	int    r;

	if (lb__wait_canceled(&a->w)) {
		r = lb__wait_fail(&a->w, lock->given, err);
		goto out;
	}
	r = acquire_once(lock, &a->t, fresh, err);
	if (r != LB_EALREADY || a->timeout <= 0)
		goto out;
	pause = lockfs_backoff_pause(&a->b, isinf(a->timeout) ? INFINITY :
	    a->deadline);
	if (pause < 0) {
		r = lockfs_fail(err, LB_ETIMEOUT, 0, "timed out after %g s "
		    "waiting for %s", a->timeout, lock->given);
		goto out;
	}
	a->next_try = lockfs_now() + pause;
	r = LB__INPROGRESS;
out:
	return r;
}

/* The broker's part of a's start: the ACQUIRE on its way (for the pidfile
 * method bracketed by lb__owners_asking, until its outcome: async_look).
 * LB__INPROGRESS (a->broker set), LB__FALLBACK, or a failure.  Under
 * async_mu. */
static int
async_broker_start(lb_lock *lock, struct async *a, struct lockfs_err *err)
{
	struct lb__owner_key k;
	int                  r;

	key_of(&a->t, &k);
	if (a->t.method == LB_PIDFILE) {
		if (lb__owners_asking(&k) != 0) {
			r = lockfs_fail(err, LB_ENOMEM, ENOMEM, "acquire of "
			    "%s", lock->given);
			goto out;
		}
		a->asking = 1;
	}
	r = lb__broker_acquire_start(&a->t, a->timeout, a->deadline,
	    fallback_of(lock), &a->note, &a->q, err);
	a->broker = r == LB__INPROGRESS;
	if (!a->broker && a->asking) {
		lb__owners_asked(&k, lock->serial, 0, 0);
		a->asking = 0;
	}
out:
	return r;
}

/* The broker's request of a has an outcome r (granted: fresh): a is
 * in-process from now on, and the pidfile bracket is closed. */
static void
async_broker_end(lb_lock *lock, struct async *a, int r, int fresh)
{
	struct lb__owner_key k;

	a->broker = 0;
	a->q = NULL;
	if (a->asking) {
		key_of(&a->t, &k);
		lb__owners_asked(&k, lock->serial, r == 0, fresh);
		a->asking = 0;
	}
}

/* Ends a with r unless r is LB__INPROGRESS: the wait ends (for
 * lb_lock_cancel), a grant is recorded (acquired), a failure's reason
 * too.  Returns r, LB__INPROGRESS as LB_INPROGRESS.  Under async_mu. */
static int
async_settle(lb_lock *lock, struct async *a, int r, int fresh,
    const struct lockfs_err *err)
{
	if (r == LB__INPROGRESS)
		return LB_INPROGRESS;
	a->active = 0;
	lb__wait_end(&a->w);
	if (r == 0)
		acquired(lock, &a->t, fresh);
	return record(lock, r, err);
}

/*
 * Looks at a once (block 0) or until its outcome (block 1): the broker's
 * answer, or an in-process try when one is due (or a cancel to see).
 * LB__INPROGRESS with *next the monotonic time by which to look again,
 * else the outcome (*fresh set on a grant).  Under async_mu.
 */
static int
async_look(lb_lock *lock, struct async *a, int block, double *next,
    int *fresh, struct lockfs_err *err)
{
	uint64_t token;
	int      r = LB__FALLBACK;

	if (a->broker) {
		r = lb__broker_acquire_look(&a->q, fallback_of(lock), block,
		    next, &token, fresh, NULL, err);
		if (r != LB__INPROGRESS)
			async_broker_end(lock, a, r, *fresh);
		if (r != LB__FALLBACK)
			goto out;
		/* The rest of the timeout in-process, from now; never a
		 * cluster lock's, on this host alone. */
		if (lock->transport == LB__AUTO &&
		    lb__cluster_guard(a->t.path, err) != 0) {
			r = LB_EFAILED;
			goto out;
		}
		a->next_try = 0;
	}
	for (;;) {
		if (lockfs_now() >= a->next_try || lb__wait_canceled(&a->w))
			r = async_local_try(lock, a, fresh, err);
		else
			r = LB__INPROGRESS;
		*next = a->next_try;
		if (r != LB__INPROGRESS || !block)
			break;
		lockfs_sleep(a->next_try - lockfs_now());
	}
out:
	return r;
}

/* lb_acquire_start: see lockbroker.h.  async_mu is held throughout, so
 * that the calls on one asynchronous acquire never overlap. */
int
lb_acquire_start(lb_lock *lock, double timeout)
{
	struct async     *a;
	struct lockfs_err err;
	int               r, fresh = 0;

	if (lock == NULL)
		return LB_EINVAL;
	handle_own(lock);
	pthread_mutex_lock(&lock->async_mu);
	a = &lock->async;
	if (a->active || isnan(timeout)) {
		r = record(lock, lockfs_fail(&err, LB_EINVAL, 0, a->active ?
		    "an asynchronous acquire of %s is in progress already" :
		    "timeout for %s is not a number", lock->given), &err);
		goto out;
	}
	if ((r = call_begin(lock, &a->t, &err)) != 0)
		goto out;
	if (timeout > LB__TIMEOUT_MAX_S)
		timeout = INFINITY;     /* as good as forever: see broker.h */
	a->timeout = timeout;
	a->deadline = timeout > 0 && !isinf(timeout) ? lockfs_now() + timeout :
	    INFINITY;
	a->next_try = 0;
	lockfs_backoff_init(&a->b, BACKOFF_MIN, ASYNC_BACKOFF_MAX);
	if (!a->note_made) {
		(void)lb__os_note_open(&a->note);   /* none: polled */
		a->note_made = 1;
	}
	lb__os_note_clear(&a->note);
	lb__wait_begin(&a->w, &lock->cancel);
	a->w.check = NULL;      /* no hook: the caller's loop is in charge */
	a->t.wait = &a->w;
	a->active = 1;
	r = LB__FALLBACK;
	if (lock->transport == LB__BROKER ||
	    (lock->transport == LB__AUTO && lb__broker_connect(&err) == 0))
		r = async_broker_start(lock, a, &err);
	if (r == LB__FALLBACK && lock->transport == LB__AUTO &&
	    lb__cluster_guard(a->t.path, &err) != 0)
		r = LB_EFAILED;         /* a cluster lock: never here alone */
	else if (r == LB__FALLBACK)
		r = async_local_try(lock, a, &fresh, &err);
	r = async_settle(lock, a, r, fresh, &err);
out:
	pthread_mutex_unlock(&lock->async_mu);
	return r;
}

/* lb_lock_fd: see lockbroker.h. */
int
lb_lock_fd(lb_lock *lock)
{
	struct lockfs_err err;
	int               r;

	if (lock == NULL)
		return LB_EINVAL;
	handle_own(lock);
	pthread_mutex_lock(&lock->async_mu);
	if (!lock->async.note_made)
		r = lockfs_fail(&err, LB_EINVAL, 0, "no asynchronous acquire "
		    "of %s was started", lock->given);
	else if ((r = lock->async.note.fd[0]) == -1)
		r = lockfs_fail(&err, LB_EFAILED, 0, "no descriptor tells of "
		    "%s's asynchronous acquire on this system: call "
		    "lb_acquire_finish again by the time it says", lock->given);
	pthread_mutex_unlock(&lock->async_mu);
	return r < 0 ? record(lock, r, &err) : r;
}

/* lb_acquire_finish: see lockbroker.h. */
int
lb_acquire_finish(lb_lock *lock, double *again)
{
	struct async     *a;
	struct lockfs_err err;
	double            next = INFINITY, now;
	int               r, fresh = 0;

	if (lock == NULL)
		return LB_EINVAL;
	handle_own(lock);
	pthread_mutex_lock(&lock->async_mu);
	a = &lock->async;
	if (!a->active) {
		r = record(lock, lockfs_fail(&err, LB_EINVAL, 0, "no "
		    "asynchronous acquire of %s is in progress", lock->given),
		    &err);
		goto out;
	}
	lb__os_note_clear(&a->note);
	r = async_look(lock, a, 0, &next, &fresh, &err);
	r = async_settle(lock, a, r, fresh, &err);
	if (r == LB_INPROGRESS && again != NULL) {
		/* (Clamped as a difference: now + ASYNC_POLL_S - now may
		 * round above ASYNC_POLL_S.) */
		now = lockfs_now();
		*again = next > now ? next - now : 0;
		if (a->note.fd[0] == -1 && *again > ASYNC_POLL_S)
			*again = ASYNC_POLL_S;
	}
out:
	pthread_mutex_unlock(&lock->async_mu);
	return r;
}

/* lb_acquire_fresh: see lockbroker.h. */
int
lb_acquire_fresh(lb_lock *lock)
{
	struct lockfs_err err;
	int               r;

	if (lock == NULL)
		r = LB_EINVAL;
	else if (last_grant.lock == lock && last_grant.serial == lock->serial)
		r = last_grant.fresh;
	else
		r = record(lock, lockfs_fail(&err, LB_EINVAL, 0, "no acquire "
		    "of %s by this thread has succeeded", lock->given), &err);
	return r;
}

/*
 * Ends an asynchronous acquire in progress on lock, for lb_lock_free
 * (wait 1: canceled, and waited for until it ends, a grant that crossed
 * the cancel recorded as any grant is, for the free to release) or
 * lb_lock_forget (wait 0: dropped at once, lb__broker_acquire_drop; a
 * grant delivered already stays its owner's).
 */
static void
async_abandon(lb_lock *lock, int wait)
{
	struct async     *a = &lock->async;
	struct lockfs_err err;
	double            next;
	int               r = LB_ECANCELED, fresh = 0;

	handle_own(lock);
	pthread_mutex_lock(&lock->async_mu);
	if (!a->active)
		goto out;
	if (wait) {
		(void)lb__cancel_request(&lock->cancel);
		r = async_look(lock, a, 1, &next, &fresh, &err);
	} else if (a->broker) {
		if (lb__broker_acquire_drop(&a->q, &fresh) == 1)
			r = 0;
		async_broker_end(lock, a, r, fresh);
	}
	if (r != 0)
		lockfs_fail(&err, r, 0, "the handle of %s was freed",
		    lock->given);
	(void)async_settle(lock, a, r, fresh, &err);
out:
	pthread_mutex_unlock(&lock->async_mu);
}

/* lb_upgrade, lb_downgrade: UPGRADE (upgrade 1, waiting up to timeout;
 * ended by lb_lock_cancel and the interrupt hook as an acquire is) or
 * DOWNGRADE of the owner's hold, through the daemon only. */
static int
change_mode(lb_lock *lock, double timeout, int upgrade)
{
	struct lb__target t;
	struct lb__wait   w;
	struct lockfs_err err;
	double            deadline = INFINITY;
	int               r;

	if (lock == NULL)
		return LB_EINVAL;
	handle_own(lock);
	if (upgrade)
		lb__wait_begin(&w, &lock->cancel);
	if (isnan(timeout)) {
		r = record(lock, lockfs_fail(&err, LB_EINVAL, 0, "timeout "
		    "for %s is not a number", lock->given), &err);
		goto out;
	}
	if (timeout > LB__TIMEOUT_MAX_S)
		timeout = INFINITY;
	if (timeout > 0 && !isinf(timeout))
		deadline = lockfs_now() + timeout;
	if ((r = call_begin(lock, &t, &err)) != 0)
		goto out;
	t.wait = upgrade ? &w : NULL;
	r = LB__FALLBACK;
	if (lock->transport == LB__BROKER ||
	    (lock->transport == LB__AUTO && lb__broker_ready()))
		r = upgrade ? lb__broker_upgrade(&t, timeout, deadline,
		    fallback_of(lock), &err) : lb__broker_downgrade(&t,
		    fallback_of(lock), &err);
	if (r == LB__FALLBACK)
		r = shared_needs_daemon(lock, &err);
	r = lost_meanwhile(lock, &t, r, &err);
	r = record(lock, r, &err);
out:
	if (upgrade)
		lb__wait_end(&w);
	return r;
}

/* lb_upgrade: see lockbroker.h. */
int
lb_upgrade(lb_lock *lock, double timeout)
{
	return change_mode(lock, timeout, 1);
}

/* lb_downgrade: see lockbroker.h. */
int
lb_downgrade(lb_lock *lock)
{
	return change_mode(lock, 0, 0);
}

/* lb_lock_cancel: see lockbroker.h. */
int
lb_lock_cancel(lb_lock *lock)
{
	int r;

	if (lock == NULL)
		return LB_EINVAL;
	handle_own(lock);
	r = lb__cancel_request(&lock->cancel);
	/* An asynchronous acquire's caller looks again (its broker request
	 * was woken already: its note is set too). */
	pthread_mutex_lock(&lock->async_mu);
	if (lock->async.active)
		lb__os_note_set(&lock->async.note);
	pthread_mutex_unlock(&lock->async_mu);
	return r;
}

/* lb_lock_set_interrupt: see lockbroker.h. */
int
lb_lock_set_interrupt(lb_lock *lock, int (*check)(void *arg), void *arg)
{
	if (lock == NULL)
		return LB_EINVAL;
	handle_own(lock);
	lb__cancel_set_interrupt(&lock->cancel, check, arg);
	return 0;
}

/* lb_release: see lockbroker.h.  Through any handle of the owner. */
int
lb_release(lb_lock *lock)
{
	struct lb__owner_key k;
	struct lb__target    t;
	struct lockfs_err    err;
	uint64_t             epoch;
	int                  r, lost;

	if (lock == NULL)
		return LB_EINVAL;
	if ((r = call_begin(lock, &t, &err)) != 0)
		goto out;
	key_of(&t, &k);
	epoch = lb__owners_epoch(&k);
	lost = lb__owners_lost_owed(&k);
	r = LB__FALLBACK;
	if (lock->transport == LB__BROKER)
		r = lb__broker_release(&t, INFINITY, &err);
	else if (lock->transport == LB__AUTO && lb__broker_ready()) {
		/* Not the broker's: maybe this owner's in-process hold. */
		if ((r = lb__broker_release(&t, 0, &err)) == LB_ENOTMINE)
			r = LB__FALLBACK;
	} else if (lock->transport == LB__AUTO && lb__holds_live(&t, NULL))
		r = lb__broker_release(&t, LB__AUTO_FALLBACK_S, &err);
	if (r == LB__RELEASE_PENDING)
		r = 0;          /* marked by the reader (broker.c) */
	else if (r == LB__RELEASE_LOST || (lost && (r == LB__FALLBACK ||
	    r == LB_ENOTLOCKED || r == LB_ENOTMINE))) {
		/* The daemon died with our RELEASE (now, or an earlier
		 * release whose in-process step was not done: lost): gone
		 * or someone else's means it had released (and handed on)
		 * the lock.  A pid file another owner of this process holds
		 * or asks for may be that owner's by now: the next daemon
		 * settles it. */
		r = 0;
		if (t.method != LB_PIDFILE || !lb__owners_other(&k))
			r = lost_release(lock, &t, &err);
		if (r == LB_ENOTLOCKED || r == LB_ENOTMINE)
			r = 0;
	} else if (r == LB__FALLBACK)
		r = local_release(lock, &t, &err);
	r = lost_meanwhile(lock, &t, r, &err);
	if (r == 0 || r == LB_ENOTLOCKED || r == LB_ENOTMINE)
		lb__owners_released(&k, epoch);
	r = record(lock, r, &err);
out:
	return r;
}

/* Asks the broker about the lock (LB_BROKER: always; AUTO: when its
 * socket answers, so that waiters and tokens are told too): 0 with *st
 * filled, LB__FALLBACK (ask the artefact), or an LB_E* code. */
static int
broker_status(lb_lock *lock, const struct lb__target *t,
    struct lb__status *st, struct lockfs_err *err)
{
	struct lockfs_err ignored;

	if (lock->transport == LB__LOCAL)
		return LB__FALLBACK;
	if (lock->transport == LB__AUTO)
		(void)lb__broker_connect(&ignored);
	return lb__broker_status(t, lock->transport == LB__BROKER ?
	    INFINITY : 0, st, err);
}

/* lb_is_locked: see lockbroker.h. */
int
lb_is_locked(lb_lock *lock)
{
	struct lb__target t;
	struct lb__status st;
	struct lockfs_err err;
	int               r;

	if (lock == NULL)
		return LB_EINVAL;
	if ((r = call_begin(lock, &t, &err)) != 0)
		goto out;
	if ((r = broker_status(lock, &t, &st, &err)) == 0)
		r = st.locked;
	else if (r == LB__FALLBACK)
		r = local_step(lock, lockfs_is_locked, &err);
	r = record(lock, r, &err);
out:
	return r;
}

/* lb_i_am_locking: see lockbroker.h. */
int
lb_i_am_locking(lb_lock *lock)
{
	struct lb__target t;
	struct lb__status st;
	struct lockfs_err err;
	int               r, reader = 0;

	if (lock == NULL)
		return LB_EINVAL;
	if ((r = call_begin(lock, &t, &err)) != 0)
		goto out;
	if ((r = broker_status(lock, &t, &st, &err)) == 0) {
		r = st.mine;
		/* Held outside the broker: maybe by this owner in-process. */
		if (!st.mine && st.locked && st.token == 0 &&
		    lock->transport == LB__AUTO)
			r = LB__FALLBACK;
		/* A reader's: the artefact may name another reader, so
		 * the daemon's word is the answer (its 1 is not taken for
		 * LB__FALLBACK below). */
		reader = st.mine && st.shared;
	}
	if (r == LB__FALLBACK && !reader)
		r = local_mine(lock, &t, &err);
	r = record(lock, lost_meanwhile(lock, &t, r, &err), &err);
out:
	return r;
}

/* lb_break_lock: see lockbroker.h. */
int
lb_break_lock(lb_lock *lock)
{
	struct lb__target t;
	struct lockfs_err err;
	int               r;

	if (lock == NULL)
		return LB_EINVAL;
	if ((r = call_begin(lock, &t, &err)) != 0)
		goto out;
	r = LB__FALLBACK;
	if (lock->transport == LB__BROKER)
		r = lb__broker_break(&t, INFINITY, &err);
	else if (lock->transport == LB__AUTO) {
		(void)lb__broker_connect(&err);
		r = lb__broker_break(&t, 0, &err);
	}
	if (r == LB__FALLBACK)
		r = local_step(lock, lockfs_break_lock, &err);
	if (r == 0)
		lb__owners_broken(t.lock_file, t.method);
	r = record(lock, r, &err);
out:
	return r;
}

/* Fills *out from what the artefact says (the in-process view). */
static void
holder_from_fs(const struct lockfs_holder *h, lb_holder *out)
{
	snprintf(out->host, sizeof(out->host), "%s", h->host);
	snprintf(out->unique_name, sizeof(out->unique_name), "%s", h->unique);
	out->pid = h->pid;
	out->tid = h->tid;
	out->uid = lb__os_holder_uid(h->uid);
	out->since = h->since;
	out->liveness = lockfs_holder_liveness(h);
}

/* lb_get_cluster: see lockbroker.h. */
int
lb_get_cluster(lb_lock *lock, lb_cluster *out)
{
	struct lb__target t;
	struct lb__status st;
	struct lockfs_err err;
	int               r;

	if (lock == NULL || out == NULL)
		return LB_EINVAL;
	memset(out, 0, sizeof(*out));
	if ((r = call_begin(lock, &t, &err)) != 0)
		goto out;
	if ((r = broker_status(lock, &t, &st, &err)) == LB__FALLBACK) {
		/* No daemon to ask: its sign alone tells a cluster lock. */
		r = lb__cluster_guard(t.path, &err) != 0;
		if (r == 1) {
			out->cluster = 1;
			snprintf(out->state, sizeof(out->state), "unknown");
			snprintf(out->error, sizeof(out->error), "no "
			    "lockbroker daemon answers, and a daemon's "
			    "cluster_dir lies above it");
		}
	} else if (r == 0 && (r = st.cluster) == 1) {
		out->cluster = 1;
		snprintf(out->state, sizeof(out->state), "%s", st.cstate);
		snprintf(out->key, sizeof(out->key), "%s", st.ckey);
		snprintf(out->holder, sizeof(out->holder), "%s", st.cholder);
		snprintf(out->error, sizeof(out->error), "%s", st.cerror);
		out->revision = st.crevision;
		out->waiters = st.cwaiters;
	}
	r = record(lock, r, &err);
out:
	return r;
}

/*
 * Fills *out from the broker's STATUS, and, when the artefact names the
 * same process, its unique name and liveness from the artefact (which
 * the broker does not send); otherwise the liveness of the pid alone.
 */
static void
holder_from_broker(lb_lock *lock, const struct lb__status *st,
    lb_holder *out)
{
	struct lockfs_holder h;
	struct lockfs_err    err;
	int                  r;

	out->broker = 1;
	out->waiters = st->waiters;
	if (!st->locked)
		return;
	snprintf(out->host, sizeof(out->host), "%s", st->host);
	out->pid = st->pid;
	out->tid = st->tid;
	out->uid = lb__os_holder_uid(st->uid);
	out->since = st->since;
	out->unclaimed = st->unclaimed;
	out->token = st->token;
	out->shared = st->shared;
	out->holders = st->holders;
	if (step_begin(lock, &err) != 0)
		return;
	r = lockfs_holder(&lock->fs, &h, &err);
	pthread_mutex_unlock(&lock->mu);
	if (r == 1 && h.pid == st->pid && st->pid != 0) {
		snprintf(out->unique_name, sizeof(out->unique_name), "%s",
		    h.unique);
		out->liveness = lockfs_holder_liveness(&h);
		if (out->since == 0)
			out->since = h.since;
		return;
	}
	lockfs_holder_clear(&h);
	snprintf(h.host, sizeof(h.host), "%s", st->host);
	h.pid = st->pid;
	out->liveness = lockfs_holder_liveness(&h);
}

/* lb_get_holder: see lockbroker.h. */
int
lb_get_holder(lb_lock *lock, lb_holder *out)
{
	struct lockfs_holder h;
	struct lb__target    t;
	struct lb__status    st;
	struct lockfs_err    err;
	int                  r;

	if (lock == NULL || out == NULL)
		return LB_EINVAL;
	memset(out, 0, sizeof(*out));
	out->uid = (uid_t)-1;
	if ((r = call_begin(lock, &t, &err)) != 0)
		goto out;
	if ((r = broker_status(lock, &t, &st, &err)) == 0) {
		holder_from_broker(lock, &st, out);
		r = st.locked;
	} else if (r == LB__FALLBACK &&
	    (r = step_begin(lock, &err)) == 0) {
		if ((r = lockfs_holder(&lock->fs, &h, &err)) == 1)
			holder_from_fs(&h, out);
		r = step_end(lock, r, &err);
	}
	r = record(lock, r, &err);
out:
	return r;
}

/* lb_fencing_token: see lockbroker.h. */
int
lb_fencing_token(lb_lock *lock, uint64_t *token)
{
	struct lb__target t;
	struct lb__status st;
	struct lockfs_err err;
	uint64_t          known = 0;
	int               r;

	if (lock == NULL || token == NULL)
		return LB_EINVAL;
	if ((r = call_begin(lock, &t, &err)) != 0)
		goto out;
	if ((r = broker_status(lock, &t, &st, &err)) == 0) {
		if (st.mine) {
			*token = st.token;
			goto out;
		}
		r = lock->transport == LB__BROKER ? 0 : LB__FALLBACK;
	} else if (r == LB__FALLBACK && lb__holds_live(&t, &known)) {
		*token = known;         /* the daemon is away for now */
		r = 0;
		goto out;
	}
	if (r == LB__FALLBACK) {
		r = local_mine(lock, &t, &err);
		if (r == 1)
			r = lockfs_fail(&err, LB_EFAILED, 0, "%s is held "
			    "in-process, which has no fencing tokens",
			    lock->given);
	}
	if (r == 0)
		r = lockfs_fail(&err, LB_ENOTLOCKED, 0, "%s is not held by "
		    "this owner", lock->given);
	r = record(lock, lost_meanwhile(lock, &t, r, &err), &err);
out:
	return r;
}

const char *
lb_lock_path(const lb_lock *lock)
{
	return lock == NULL ? NULL : lock->given;
}

const char *
lb_lock_file(const lb_lock *lock)
{
	return lock == NULL ? NULL : lock->fs.lock_file;
}

const char *
lb_unique_name(const lb_lock *lock)
{
	return lock == NULL ? NULL : lock->fs.unique;
}

/* lb_lock_error: see lockbroker.h. */
const char *
lb_lock_error(lb_lock *lock)
{
	if (lock == NULL)
		return "no lock handle (NULL)";
	handle_lock(lock);
	snprintf(error_copy, sizeof(error_copy), "%s", lock->err.msg);
	pthread_mutex_unlock(&lock->mu);
	return error_copy;
}

/* lb_locked: see lockbroker.h.  Returns the release's failure, if any,
 * after fn has run. */
int
lb_locked(const char *path, double timeout, void (*fn)(void *), void *arg)
{
	lb_lock *lock;
	int      r;

	if (fn == NULL)
		return LB_EINVAL;
	if ((lock = lb_lock_new(path, 0)) == NULL)
		return errno == ENOMEM ? LB_ENOMEM : LB_EINVAL;
	if ((r = lb_acquire(lock, timeout)) == 0) {
		fn(arg);
		r = lb_release(lock);
	}
	lb_lock_free(lock);
	return r;
}
