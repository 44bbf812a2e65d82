/*
 * kept.c: lb_acquire_for, lb_acquire_shared_for and lb_release_for: a
 * lock held for another process (the holder, pid), which keeps it beyond
 * the call and the handle, instead of for the handle's owner.  A shared
 * one (ACQUIRE pid= mode=shared, docs/SHARED.md) is the daemon's only:
 * without one it is refused, never taken exclusive.
 *
 * Through the broker the hold is a kept hold (docs/PROTOCOL.md, ACQUIRE
 * and RELEASE with pid=): the daemon makes the artefact naming pid, keeps
 * it when our connection closes, watches pid and releases the lock when
 * pid exits; it survives a restart of the daemon.  In-process (LB_LOCAL,
 * or AUTO when no daemon answers) the artefact naming pid is made here,
 * and nobody watches pid: the lock stays until release, or until it is
 * broken (once pid is dead).
 *
 * Each call uses a connection of its own (wire/), opened and closed
 * around it: a kept hold must not end with the process's shared
 * connection, and the shared one's hold registry is for the process's own
 * owners.
 *
 * lb_acquire_for, drawn (AUTO: the broker when a daemon answers, else
 * in-process; BROKER: no fallback):
 *
 *   connect+HELLO --no daemon, AUTO--> in-process: try, back off, try ...
 *        |  \--no daemon, BROKER--> LB_EFAILED        until the deadline
 *        v
 *   ACQUIRE pid= timeout=LEFT --OK--> 0
 *        |    \--EALREADY, ETIMEOUT--> that code;  other ERR --> its code
 *        | connection lost, or ESHUTDOWN, while waiting
 *        v
 *   connect again (back-off; AUTO: for AUTO_FALLBACK_S, then in-process;
 *   BROKER: for RECONNECT_FOR_S) and send the ACQUIRE again with what is
 *   left of the time.  A grant whose reply was lost is found again: an
 *   ACQUIRE for the pid that keeps the lock answers OK, and in-process the
 *   artefact naming pid is ours.
 *
 * lb_release_for makes one RELEASE (or one in-process release), without
 * retries.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockbroker.h"
#include "lockfs.h"
#include "os.h"
#include "protocol.h"
#include "wire.h"
#include "broker.h"
#include "clusterguard.h"
#include "handle.h"

/* The name this library gives in HELLO for these connections. */
/* In-process back-off between tries, as lb_acquire's (lock.c). */
#define BACKOFF_MIN       0.0005
#define BACKOFF_MAX       0.020
/* After a lost connection: how long to look for a daemon again. */
#define AUTO_FALLBACK_S   LB__AUTO_FALLBACK_S   /* AUTO: then in-process */
#define RECONNECT_FOR_S   60.0                  /* BROKER: then give up */
#define RECONNECT_FIRST_S 0.02
#define RECONNECT_MAX_S   0.25
/* Beyond the timeout a waiting ACQUIRE is given for its answer. */
#define ANSWER_GRACE_S    5.0
/* The answer to RELEASE. */
#define REQUEST_WAIT_S    30.0

/* What one call works on. */
struct kept {
	struct lb__handle_view h;       /* the lock and the transport */
	pid_t                  pid;     /* the holder */
	int                    shared;  /* mode=shared (the daemon's only) */
	lb_kept_info           how;     /* what the caller is told */
	struct lockfs_err      err;     /* why it failed */
	struct lbw_conn        w;       /* the connection to the daemon */
	struct lbp_msg         m;       /* the reply */
};

/* What a step through the broker came to, besides 0 and an LB_E* code
 * (positive: never taken for one). */
#define NO_DAEMON  1    /* no daemon answers (err says so) */
#define CONN_LOST  2    /* the connection broke, or the daemon stops */

/* Fills k->err with code and a formatted reason; returns code. */
#define FAIL(k, code, ...) \
	lockfs_fail(&(k)->err, (code), 0, __VA_ARGS__)

/*
 * A new struct kept for lock and pid (freed by the caller), or NULL when
 * out of memory.
 */
static struct kept *
kept_new(lb_lock *lock, pid_t pid)
{
	struct kept *k;

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	lb__lock_view(lock, &k->h);
	k->pid = pid;
	k->w.fd = -1;
	return k;
}

/* Records on lock that a call ("lock", "release": doing) found no
 * memory; returns LB_ENOMEM. */
static int
out_of_memory(lb_lock *lock, const char *doing)
{
	struct lockfs_err err;

	return lb__lock_failed(lock, lockfs_fail(&err, LB_ENOMEM, 0,
	    "cannot %s %s: out of memory", doing, lb_lock_path(lock)), &err);
}

/*
 * Ends a call: records the reason of a failure on the handle, gives *how
 * the outcome of a success, frees k.  Returns r.
 */
static int
kept_end(lb_lock *lock, struct kept *k, int r, lb_kept_info *how)
{
	if (r == 0 && how != NULL)
		*how = k->how;
	lb__lock_failed(lock, r, &k->err);
	lbw_close(&k->w);
	free(k);
	return r;
}

/*
 * Whether this process may take or release a lock for k->pid, as the
 * daemon judges it: the process runs (and is not hidden from us), and is
 * this user's or we are root.  0, or an LB_E* code with k->err filled
 * (LB_EINVAL: no such process; LB_EFAILED: another user's).
 */
static int
pid_allowed(struct kept *k, const char *doing)
{
	uid_t uid;
	int   r = 0;

	if (lockfs_os_process_uid(k->pid, &uid) == -1)
		r = FAIL(k, LB_EINVAL, "cannot %s %s for pid %ld: %s%s", doing,
		    k->h.path, (long)k->pid, errno == ESRCH ? "no such "
		    "process" : errno == EACCES ? "no such process (one is "
		    "hidden from this user)" : strerror(errno), errno == ESRCH &&
		    strcmp(doing, "release") == 0 ? " (a lock it took in-process "
		    "is stale: see 'break --stale')" : "");
	else if (lb__os_euid() != 0 && uid != lb__os_euid())
		r = FAIL(k, LB_EFAILED, "cannot %s %s for pid %ld: it is a "
		    "process of another user (uid %ld); only root may", doing,
		    k->h.path, (long)k->pid, (long)uid);
	return r;
}

/*
 * The lock as held by k->pid, in-process, into *l (the caller finalises
 * it with lockfs_fini when 0 is returned).  0, or an LB_E* code with
 * k->err filled.
 */
static int
local_lock_for(struct kept *k, struct lockfs_lock *l, const char *doing)
{
	struct lockfs_owner owner;
	struct lockfs_err   err;
	int                 r;

	if ((r = pid_allowed(k, doing)) != 0)
		goto out;
	if (lockfs_owner_of_pid(&owner, k->pid, 0) == -1) {
		r = FAIL(k, errno == ESRCH ? LB_EINVAL : LB_EFAILED, "cannot "
		    "%s %s for pid %ld: %s", doing, k->h.path, (long)k->pid,
		    errno == ESRCH ? "no such process" : strerror(errno));
		goto out;
	}
	if ((r = lockfs_init_for(l, k->h.given, k->h.method, &owner,
	    &err)) != 0)
		FAIL(k, r, "cannot %s %s: %s", doing, k->h.path, err.msg);
out:
	return r;
}

/*
 * Takes the lock for k->pid in-process, trying until the deadline
 * (monotonic; timeout as for lb_acquire).  0, or an LB_E* code with
 * k->err filled.
 */
static int
local_acquire(struct kept *k, double timeout, double deadline)
{
	struct lockfs_lock    l;
	struct lockfs_err     err;
	struct lockfs_backoff b;
	int                   r;

	if ((r = local_lock_for(k, &l, "lock")) != 0)
		goto out;
	lockfs_backoff_init(&b, BACKOFF_MIN, BACKOFF_MAX);
	while ((r = lockfs_try_acquire(&l, &err)) == LB_EALREADY) {
		/* Nothing of a failed try stays on disk. */
		lockfs_abandon(&l);
		if (timeout <= 0 || lockfs_backoff_sleep(&b, isinf(timeout) ?
		    INFINITY : deadline) == -1)
			break;
	}
	if (r == LB_EALREADY && timeout > 0)
		r = LB_ETIMEOUT;
	if (r == LB_EALREADY || r == LB_ETIMEOUT)
		FAIL(k, r, "cannot lock %s for pid %ld: it is locked by "
		    "another owner", k->h.path, (long)k->pid);
	else if (r != 0) {
		lockfs_abandon(&l);
		FAIL(k, r, "cannot lock %s for pid %ld: %s", k->h.path,
		    (long)k->pid, err.msg);
	}
	lockfs_fini(&l);
out:
	return r;
}

/*
 * Connects k->w to the daemon: 0; or NO_DAEMON with k->err filled.  After
 * a lost connection (again != 0) it waits a little first (a stopping
 * daemon may still answer), then keeps trying with a back-off: BROKER for
 * RECONNECT_FOR_S, AUTO for AUTO_FALLBACK_S.
 */
static int
broker_connect(struct kept *k, int again)
{
	double start = lockfs_now(), backoff = RECONNECT_FIRST_S;
	double limit = k->h.transport == LB__BROKER ? RECONNECT_FOR_S :
	    AUTO_FALLBACK_S;
	int    r;

	for (;;) {
		if (again) {
			lockfs_sleep(backoff);
			if ((backoff *= 2) > RECONNECT_MAX_S)
				backoff = RECONNECT_MAX_S;
		}
		if (lbw_dial(&k->w, NULL, LB__CLIENT_NAME, LBW_ANSWER_WAIT_S,
		    NULL, 0, k->err.msg, sizeof(k->err.msg)) == 0) {
			r = 0;
			break;
		}
		if (!again || lockfs_now() - start >= limit) {
			k->err.code = LB_EFAILED;
			r = NO_DAEMON;
			break;
		}
	}
	return r;
}

/*
 * One ACQUIRE pid= on k->w for what is left until the deadline.  0 (the
 * token in k->how), an LB_E* code with k->err filled, or CONN_LOST.
 */
static int
broker_acquire_once(struct kept *k, double timeout, double deadline)
{
	struct lbp_out o;
	enum lbp_error e;
	uint64_t       id = 2, token;
	double         left = timeout, wait = INFINITY;
	int            r;

	if (timeout > 0 && !isinf(timeout)) {
		/* At least a little: 0 would be one try, not a wait. */
		if ((left = deadline - lockfs_now()) < 0.001)
			left = 0.001;
		wait = left + ANSWER_GRACE_S;
	} else if (timeout <= 0)
		wait = LBW_ANSWER_WAIT_S + ANSWER_GRACE_S;
	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, id);
	lbp_add_str(&o, "path", k->h.path);
	lbp_add_str(&o, "method", lockfs_method_name(k->h.method));
	lbp_add_u64(&o, "pid", (uint64_t)k->pid);
	lbp_add_double(&o, "timeout", left);
	if (k->shared && k->w.version < LBP_VERSION_SHARED) {
		r = FAIL(k, LB_EFAILED, "cannot lock %s shared for pid %ld: "
		    "the daemon on %s speaks protocol version %u, and shared "
		    "locks need %d", k->h.path, (long)k->pid, k->w.where,
		    k->w.version, LBP_VERSION_SHARED);
		goto out;
	}
	if (k->shared)
		lbp_add_str(&o, "mode", "shared");
	if (lbw_call(&k->w, &o, id, isinf(wait) ? INFINITY : lockfs_now() +
	    wait, NULL, NULL, &k->m, k->err.msg, sizeof(k->err.msg)) == -1) {
		r = CONN_LOST;
		goto out;
	}
	if (k->m.verb == LBP_MSG_OK) {
		if (lbp_get_u64(&k->m, "token", &token) != 0)
			token = 0;
		k->how.broker = 1;
		k->how.token = token;
		snprintf(k->how.socket, sizeof(k->how.socket), "%s",
		    k->w.where);
		r = 0;
		goto out;
	}
	if ((e = lbw_code(&k->m)) == LBP_ESHUTDOWN) {
		snprintf(k->err.msg, sizeof(k->err.msg), "lockbroker daemon "
		    "on %s is stopping", k->w.where);
		r = CONN_LOST;
		goto out;
	}
	r = FAIL(k, lbp_to_lb(e, LB_EFAILED), "cannot lock %s for pid %ld: "
	    "%s (%s)",
	    k->h.path, (long)k->pid, lbw_error(&k->m), lbp_error_name(e));
out:
	return r;
}

/*
 * Takes the lock for k->pid through the broker, waiting at the daemon
 * until the deadline, connecting again when the connection is lost (see
 * the drawing).  0, an LB_E* code with k->err filled, or NO_DAEMON (AUTO:
 * go on in-process).
 */
static int
broker_acquire(struct kept *k, double timeout, double deadline)
{
	int r, again = 0;

	for (;;) {
		if ((r = broker_connect(k, again)) != 0)
			break;
		r = broker_acquire_once(k, timeout, deadline);
		lbw_close(&k->w);
		if (r != CONN_LOST)
			break;
		if (timeout > 0 && !isinf(timeout) &&
		    lockfs_now() >= deadline) {
			/* The time is up: one more try, to learn the answer. */
			timeout = 0;
		}
		again = 1;
	}
	if (r == NO_DAEMON && k->h.transport == LB__BROKER) {
		/* k->err names the socket and the reason. */
		r = LB_EFAILED;
	}
	return r;
}

/* lb_acquire_for and lb_acquire_shared_for (shared 1). */
static int
acquire_for(lb_lock *lock, pid_t pid, double timeout, int shared,
    lb_kept_info *how)
{
	struct kept *k;
	double       deadline = INFINITY;
	int          r = NO_DAEMON;

	if (lock == NULL)
		return LB_EINVAL;
	if ((k = kept_new(lock, pid)) == NULL)
		return out_of_memory(lock, "lock");
	k->shared = shared;
	if (isnan(timeout)) {
		r = FAIL(k, LB_EINVAL, "cannot lock %s for pid %ld: the "
		    "timeout is not a number", k->h.path, (long)pid);
		goto out;
	}
	if (timeout > LB__TIMEOUT_MAX_S)
		timeout = LB_FOREVER;
	if (pid <= 0) {
		r = pid_allowed(k, "lock");
		goto out;
	}
	if (timeout > 0 && !isinf(timeout))
		deadline = lockfs_now() + timeout;
	if (k->h.transport != LB__LOCAL)
		r = broker_acquire(k, timeout, deadline);
	if (r == NO_DAEMON && shared) {
		r = FAIL(k, LB_EFAILED, "cannot lock %s shared for pid %ld: "
		    "shared locks need the daemon (lockbrokerd), and none "
		    "answers%s", k->h.path, (long)pid, k->h.transport ==
		    LB__LOCAL ? " this handle (LB_LOCAL)" : "");
		goto out;
	}
	if (r == NO_DAEMON && k->h.transport == LB__AUTO &&
	    lb__cluster_guard(k->h.path, &k->err) != 0)
		r = LB_EFAILED;         /* a cluster lock: never here alone */
	else if (r == NO_DAEMON) {
		/* AUTO, and no daemon (any more): in-process, for the rest of
		 * the time. */
		if (timeout > 0 && !isinf(timeout) && lockfs_now() >= deadline)
			r = local_acquire(k, 0, deadline);
		else
			r = local_acquire(k, timeout, deadline);
	}
out:
	return kept_end(lock, k, r, how);
}

/* lb_acquire_for: see lockbroker.h. */
int
lb_acquire_for(lb_lock *lock, pid_t pid, double timeout, lb_kept_info *how)
{
	return acquire_for(lock, pid, timeout, 0, how);
}

/* lb_acquire_shared_for: see lockbroker.h. */
int
lb_acquire_shared_for(lb_lock *lock, pid_t pid, double timeout,
    lb_kept_info *how)
{
	return acquire_for(lock, pid, timeout, 1, how);
}

/*
 * One RELEASE pid= through the broker: 0, an LB_E* code with k->err
 * filled, or NO_DAEMON (AUTO: release in-process).
 */
static int
broker_release(struct kept *k)
{
	struct lbp_out o;
	enum lbp_error e;
	uint64_t       id = 2;
	int            r;

	if ((r = broker_connect(k, 0)) != 0) {
		if (k->h.transport == LB__BROKER)
			r = k->err.code = LB_EUNLOCK;
		goto out;
	}
	lbp_begin(&o, LBP_MSG_RELEASE, 1, id);
	lbp_add_str(&o, "path", k->h.path);
	lbp_add_str(&o, "method", lockfs_method_name(k->h.method));
	lbp_add_u64(&o, "pid", (uint64_t)k->pid);
	if (lbw_call(&k->w, &o, id, lockfs_now() + REQUEST_WAIT_S, NULL, NULL,
	    &k->m, k->err.msg, sizeof(k->err.msg)) == -1) {
		r = k->err.code = LB_EUNLOCK;
		goto out;
	}
	if (k->m.verb == LBP_MSG_OK) {
		k->how.broker = 1;
		snprintf(k->how.socket, sizeof(k->how.socket), "%s",
		    k->w.where);
		r = 0;
		goto out;
	}
	e = lbw_code(&k->m);
	/* A release that fails is LB_EUNLOCK, not a lock's LB_EFAILED. */
	if ((r = lbp_to_lb(e, LB_EUNLOCK)) == LB_EFAILED)
		r = LB_EUNLOCK;
	if (r == LB_ENOTLOCKED)
		FAIL(k, r, "cannot release %s: it is not locked", k->h.path);
	else if (r == LB_ENOTMINE)
		FAIL(k, r, "cannot release %s: it is not held for pid %ld, "
		    "but by another owner", k->h.path, (long)k->pid);
	else
		FAIL(k, r, "cannot release %s for pid %ld: %s (%s)",
		    k->h.path, (long)k->pid, lbw_error(&k->m),
		    lbp_error_name(e));
out:
	return r;
}

/* Releases the lock k->pid holds in-process: 0, or an LB_E* code with
 * k->err filled. */
static int
local_release(struct kept *k)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	int                r;

	if ((r = local_lock_for(k, &l, "release")) != 0) {
		if (r == LB_EFAILED)
			r = LB_EUNLOCK; /* another user's process */
		goto out;
	}
	/* A shared hold's artefact (its reader kept for pid), with the
	 * marker of a live reader beside it, or a directory that cannot be
	 * read to tell, is kept for those readers while the daemon, which
	 * would hand it to one of them, is away (docs/SHARED.md). */
	if (k->h.transport != LB__LOCAL &&
	    lockfs_i_am_locking(&l, &err) == 1 &&
	    lockfs_readers_live(&l) != 0) {
		r = FAIL(k, LB_EUNLOCK, "cannot release %s for pid %ld: it is "
		    "held shared, other readers hold it with pid %ld's lock "
		    "file (or its directory cannot be read to tell), and "
		    "lockbrokerd, which would hand it to one of them, is away; "
		    "nothing removed: release it again once they have gone or "
		    "the daemon is back", k->h.path, (long)k->pid,
		    (long)k->pid);
		lockfs_fini(&l);
		goto out;
	}
	r = lockfs_release(&l, &err);
	if (r == LB_ENOTLOCKED)
		FAIL(k, r, "cannot release %s: it is not locked", k->h.path);
	else if (r == LB_ENOTMINE)
		FAIL(k, r, "cannot release %s: it is not held for pid %ld, "
		    "but by another owner", k->h.path, (long)k->pid);
	else if (r != 0)
		FAIL(k, r, "cannot release %s for pid %ld: %s", k->h.path,
		    (long)k->pid, err.msg);
	lockfs_fini(&l);
out:
	return r;
}

/* lb_release_for: see lockbroker.h. */
int
lb_release_for(lb_lock *lock, pid_t pid, lb_kept_info *how)
{
	struct kept *k;
	int          r = NO_DAEMON;

	if (lock == NULL)
		return LB_EINVAL;
	if ((k = kept_new(lock, pid)) == NULL)
		return out_of_memory(lock, "release");
	if (pid <= 0) {
		r = pid_allowed(k, "release");
		goto out;
	}
	if (k->h.transport != LB__LOCAL)
		r = broker_release(k);
	if (r == NO_DAEMON)
		r = local_release(k);
out:
	return kept_end(lock, k, r, how);
}
