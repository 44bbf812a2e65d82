/*
 * kept.c: lockbroker acquire and release: a lock held for a process (the
 * holder: --pid PID, by default the command's parent, the shell that runs
 * it) across several commands, instead of for the life of one command.
 *
 * Through the broker the hold is a kept hold (docs/PROTOCOL.md, ACQUIRE
 * and RELEASE with pid=): the daemon makes the artefact naming PID, keeps
 * it when our connection closes, watches PID and releases the lock when
 * PID exits; it survives a restart of the daemon.  In-process (--local,
 * or auto when no daemon answers) the artefact naming PID is made here,
 * and nobody watches PID: the lock stays until release, or until it is
 * broken (break --stale, once PID is dead).
 *
 * acquire, drawn (auto: the broker when a daemon answers, else
 * in-process; broker: no fallback):
 *
 *   connect+HELLO --no daemon, auto--> in-process: try, back off, try ...
 *        |  \--no daemon, broker--> exit 69           until the deadline
 *        v
 *   ACQUIRE pid= timeout=LEFT --OK--> 0
 *        |    \--EALREADY, ETIMEOUT--> the -E code;  other ERR --> exit 69
 *        | connection lost, or ESHUTDOWN, while waiting
 *        v
 *   connect again (back-off; auto: for AUTO_FALLBACK_S, then in-process;
 *   broker: for RECONNECT_FOR_S) and send the ACQUIRE again with what is
 *   left of the time.  A grant whose reply was lost is found again: an
 *   ACQUIRE for the PID that keeps the lock answers OK, and in-process the
 *   artefact naming PID is ours.
 *
 * release makes one RELEASE (or one in-process release), without retries.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "lockbroker.h"
#include "lockfs.h"
#include "protocol.h"
#include "cli.h"
#include "wire.h"

/* In-process back-off between tries, as the library's (client/lock.c). */
#define BACKOFF_MIN       0.0005
#define BACKOFF_MAX       0.020
/* After a lost connection: how long to look for a daemon again. */
#define AUTO_FALLBACK_S   1.0   /* auto: then in-process */
#define RECONNECT_FOR_S   60.0  /* broker: then give up */
#define RECONNECT_FIRST_S 0.02
#define RECONNECT_MAX_S   0.25
/* Beyond the timeout a waiting ACQUIRE is given for its answer. */
#define ANSWER_GRACE_S    5.0
/* The answer to RELEASE. */
#define REQUEST_WAIT_S    30.0

/* How the lock is taken. */
enum transport {
	T_AUTO,
	T_BROKER,
	T_LOCAL
};

/* What one acquire or release works on. */
struct kept {
	const struct opts *o;
	enum transport     transport;
	pid_t              pid;         /* the holder */
	struct lockfs_lock fs;          /* the lock (path normalised) */
	char               why[PATH_MAX * 2 + 512]; /* why it failed */
};

/* What a step through the broker came to, besides an LB_E* code. */
#define NO_DAEMON  1    /* no daemon answers (why says so) */
#define CONN_LOST  2    /* the connection broke, or the daemon stops */

/*
 * The transport: --local or --broker; else LOCKBROKER_TRANSPORT (auto,
 * broker, local; another value is auto, with a warning), as the library
 * reads it.  A sqlite lock in auto mode with LOCKBROKER_SQLITE_DB set is
 * taken in-process, where that choice of database holds (as the
 * library does).
 */
static enum transport
transport_of(const struct opts *o)
{
	const char *v = getenv("LOCKBROKER_TRANSPORT");
	const char *db = getenv("LOCKBROKER_SQLITE_DB");

	if (o->flags & LB_LOCAL)
		return T_LOCAL;
	if (o->flags & LB_BROKER)
		return T_BROKER;
	if (v != NULL && strcmp(v, "broker") == 0)
		return T_BROKER;
	if (v != NULL && strcmp(v, "local") == 0)
		return T_LOCAL;
	if (v != NULL && *v != '\0' && strcmp(v, "auto") != 0)
		complain("LOCKBROKER_TRANSPORT=\"%.64s\" is not auto, broker "
		    "or local; using auto", v);
	if ((o->flags & LB_METHOD_MASK) == LB_SQLITE && db != NULL &&
	    *db != '\0')
		return T_LOCAL;
	return T_AUTO;
}

/*
 * Fills *k for o: the holder (o->pid, else the parent process) and the
 * lock.  0, or the exit status after saying why.
 */
static int
kept_init(struct kept *k, const struct opts *o, const char *doing)
{
	struct lockfs_err err;
	int               r = 0;

	memset(k, 0, sizeof(*k));
	k->o = o;
	k->transport = transport_of(o);
	k->pid = o->pid != 0 ? o->pid : getppid();
	if (o->pid == 0 && k->pid == 1) {
		/* Orphaned (or started by init): a lock kept for pid 1 would
		 * never end by itself. */
		complain("cannot %s %s: the parent process is pid 1, for which "
		    "a lock would be kept for ever; name the holder with "
		    "--pid", doing, o->path);
		r = EX_USAGE;
		goto out;
	}
	if (lockfs_init(&k->fs, o->path, o->flags & LB_METHOD_MASK, 0,
	    &err) != 0) {
		complain("cannot use %s as a lock: %s", o->path, err.msg);
		r = err.code == LB_ENOMEM ? EX_OSERR : EX_USAGE;
	}
out:
	return r;
}

/*
 * Whether this process may take or release a lock for pid, as the daemon
 * judges it: pid runs, and is this user's or we are root.  0, or an LB_E*
 * code with k->why filled (LB_EINVAL: no such process; LB_EFAILED: another
 * user's).
 */
static int
pid_allowed(struct kept *k, const char *doing)
{
	struct stat st;
	char        proc[32];

	snprintf(proc, sizeof(proc), "/proc/%ld", (long)k->pid);
	if (stat(proc, &st) == -1) {
		snprintf(k->why, sizeof(k->why), "cannot %s %s for pid %ld: no "
		    "such process%s", doing, k->fs.path, (long)k->pid,
		    strcmp(doing, "release") == 0 ? " (a lock it took "
		    "in-process is stale: see 'break --stale')" : "");
		return LB_EINVAL;
	}
	if (geteuid() != 0 && st.st_uid != geteuid()) {
		snprintf(k->why, sizeof(k->why), "cannot %s %s for pid %ld: it "
		    "is a process of another user (uid %ld); only root may",
		    doing, k->fs.path, (long)k->pid, (long)st.st_uid);
		return LB_EFAILED;
	}
	return 0;
}

/*
 * The lock as held by k->pid, in-process, into *l (the caller finalises
 * it with lockfs_fini when 0 is returned).  0, or an LB_E* code with
 * k->why filled.
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
		r = errno == ESRCH ? LB_EINVAL : LB_EFAILED;
		snprintf(k->why, sizeof(k->why), "cannot %s %s for pid %ld: %s",
		    doing, k->fs.path, (long)k->pid, errno == ESRCH ?
		    "no such process" : strerror(errno));
		goto out;
	}
	if ((r = lockfs_init_for(l, k->o->path, k->fs.method, &owner,
	    &err)) != 0)
		snprintf(k->why, sizeof(k->why), "cannot %s %s: %s", doing,
		    k->fs.path, err.msg);
out:
	return r;
}

/*
 * Takes the lock for k->pid in-process, trying until the deadline
 * (monotonic; timeout as for lb_acquire).  0, or an LB_E* code with
 * k->why filled.
 */
static int
local_acquire(struct kept *k, double timeout, double deadline)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	struct lockfs_backoff b;
	int                r;

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
	if (r != 0 && r != LB_EALREADY && r != LB_ETIMEOUT) {
		lockfs_abandon(&l);
		snprintf(k->why, sizeof(k->why), "cannot lock %s for pid %ld: "
		    "%s", k->fs.path, (long)k->pid, err.msg);
	}
	if (r == 0 && k->o->verbose)
		complain("locked %s for pid %ld in-process (%s); no daemon "
		    "watches pid %ld: the lock stays until release or break",
		    k->fs.path, (long)k->pid, l.lock_file, (long)k->pid);
	lockfs_fini(&l);
out:
	return r;
}

/*
 * Connects to the daemon: 0; or NO_DAEMON with k->why filled.  After a
 * lost connection (again != 0) it waits a little first (a stopping
 * daemon may still answer), then keeps trying with a back-off: in broker
 * mode for RECONNECT_FOR_S, in auto mode for AUTO_FALLBACK_S.
 */
static int
broker_connect(struct kept *k, struct lbw_conn *w, int again)
{
	double start = now_mono(), backoff = RECONNECT_FIRST_S;
	double limit = k->transport == T_BROKER ? RECONNECT_FOR_S :
	    AUTO_FALLBACK_S;

	for (;;) {
		if (again) {
			lockfs_sleep(backoff);
			if ((backoff *= 2) > RECONNECT_MAX_S)
				backoff = RECONNECT_MAX_S;
		}
		if (lbw_dial(w, NULL, PROGRAM, LBW_ANSWER_WAIT_S, NULL, 0,
		    k->why, sizeof(k->why)) == 0)
			return 0;
		if (!again || now_mono() - start >= limit)
			return NO_DAEMON;
	}
}

/* The LB_E* code for an ERR reply's code (a code that is no lock outcome
 * is a failure). */
static int
lb_code_of(enum lbp_error e)
{
	switch (e) {
	case LBP_EALREADY:
		return LB_EALREADY;
	case LBP_ETIMEOUT:
		return LB_ETIMEOUT;
	case LBP_ENOTLOCKED:
		return LB_ENOTLOCKED;
	case LBP_ENOTMINE:
		return LB_ENOTMINE;
	case LBP_EUNLOCK:
		return LB_EUNLOCK;
	case LBP_EINVAL:
		return LB_EINVAL;
	default:
		return LB_EFAILED;
	}
}

/*
 * One ACQUIRE pid= on w for what is left until the deadline.  0 (token in
 * *token), an LB_E* code with k->why filled, or CONN_LOST.
 */
static int
broker_acquire_once(struct kept *k, struct lbw_conn *w, double timeout,
    double deadline, uint64_t *token)
{
	struct lbp_msg *m = NULL;
	struct lbp_out  o;
	enum lbp_error  e;
	uint64_t        id = 2;
	double          left = timeout, wait = INFINITY;
	int             r;

	if ((m = malloc(sizeof(*m))) == NULL) {
		snprintf(k->why, sizeof(k->why), "cannot lock %s: out of "
		    "memory", k->fs.path);
		r = LB_ENOMEM;
		goto out;
	}
	if (timeout > 0 && !isinf(timeout)) {
		/* At least a little: 0 would be one try, not a wait. */
		if ((left = deadline - now_mono()) < 0.001)
			left = 0.001;
		wait = left + ANSWER_GRACE_S;
	} else if (timeout <= 0)
		wait = LBW_ANSWER_WAIT_S + ANSWER_GRACE_S;
	lbp_begin(&o, LBP_MSG_ACQUIRE, 1, id);
	lbp_add_str(&o, "path", k->fs.path);
	lbp_add_str(&o, "method", method_name(k->fs.method));
	lbp_add_u64(&o, "pid", (uint64_t)k->pid);
	lbp_add_double(&o, "timeout", left);
	if (lbw_call(w, &o, id, isinf(wait) ? INFINITY : now_mono() + wait,
	    NULL, NULL, m, k->why, sizeof(k->why)) == -1) {
		r = CONN_LOST;
		goto out;
	}
	if (m->verb == LBP_MSG_OK) {
		if (lbp_get_u64(m, "token", token) != 0)
			*token = 0;
		r = 0;
		goto out;
	}
	if ((e = lbw_code(m)) == LBP_ESHUTDOWN) {
		snprintf(k->why, sizeof(k->why), "lockbroker daemon on %s is "
		    "stopping", w->where);
		r = CONN_LOST;
		goto out;
	}
	r = lb_code_of(e);
	snprintf(k->why, sizeof(k->why), "cannot lock %s for pid %ld: %s (%s)",
	    k->fs.path, (long)k->pid, lbw_error(m), lbp_error_name(e));
out:
	free(m);
	return r;
}

/*
 * Takes the lock for k->pid through the broker, waiting at the daemon
 * until the deadline, connecting again when the connection is lost
 * (see the drawing).  0, an LB_E* code with k->why filled, or NO_DAEMON
 * (auto mode: go on in-process).
 */
static int
broker_acquire(struct kept *k, double timeout, double deadline)
{
	struct lbw_conn *w;
	uint64_t         token = 0;
	int              r, again = 0;

	if ((w = malloc(sizeof(*w))) == NULL) {
		snprintf(k->why, sizeof(k->why), "cannot lock %s: out of "
		    "memory", k->fs.path);
		return LB_ENOMEM;
	}
	for (;;) {
		if ((r = broker_connect(k, w, again)) != 0)
			break;
		r = broker_acquire_once(k, w, timeout, deadline, &token);
		lbw_close(w);
		if (r != CONN_LOST)
			break;
		if (timeout > 0 && !isinf(timeout) && now_mono() >= deadline) {
			/* The time is up: one more try, to learn the answer. */
			timeout = 0;
		}
		again = 1;
	}
	if (r == NO_DAEMON && k->transport == T_BROKER) {
		/* k->why names the socket and the reason. */
		r = LB_EFAILED;
	}
	if (r == 0 && k->o->verbose)
		complain("locked %s for pid %ld through lockbrokerd on %s "
		    "(token %llu)", k->fs.path, (long)k->pid, w->where,
		    (unsigned long long)token);
	free(w);
	return r;
}

/*
 * acquire: takes the lock on o->path for process o->pid (default: the
 * parent) and returns, leaving it held.  Returns 0 when it is held for
 * PID (now or already), o->conflict when another holds it and -n or -w
 * gave up, EX_UNAVAILABLE when it cannot be taken, EX_USAGE for a path
 * or holder that cannot be used.
 */
int
cmd_acquire(const struct opts *o)
{
	struct kept *k;
	double       deadline = INFINITY;
	int          r, code;

	if ((k = malloc(sizeof(*k))) == NULL) {
		complain("cannot lock %s: out of memory", o->path);
		return EX_OSERR;
	}
	if ((r = kept_init(k, o, "lock")) != 0)
		goto out;
	if (o->timeout > 0 && !isinf(o->timeout))
		deadline = now_mono() + o->timeout;
	code = NO_DAEMON;
	if (k->transport != T_LOCAL)
		code = broker_acquire(k, o->timeout, deadline);
	if (code == NO_DAEMON) {
		/* Auto, and no daemon (any more): in-process, for the rest of
		 * the time. */
		if (o->timeout > 0 && !isinf(o->timeout) &&
		    now_mono() >= deadline)
			code = local_acquire(k, 0, deadline);
		else
			code = local_acquire(k, o->timeout, deadline);
	}
	if (code == 0)
		r = 0;
	else if (code == LB_EALREADY || code == LB_ETIMEOUT) {
		if (o->verbose)
			complain("%s is locked by another owner; gave up",
			    k->fs.path);
		r = o->conflict;
	} else {
		complain("%s", k->why);
		r = code == LB_ENOMEM ? EX_OSERR : EX_UNAVAILABLE;
	}
	lockfs_fini(&k->fs);
out:
	free(k);
	return r;
}

/*
 * One RELEASE pid= through the broker: 0, an LB_E* code with k->why
 * filled, or NO_DAEMON (auto mode: release in-process).
 */
static int
broker_release(struct kept *k)
{
	struct lbp_msg *m = NULL;
	struct lbw_conn *w = NULL;
	struct lbp_out   o;
	enum lbp_error   e;
	uint64_t         id = 2;
	int              r;

	if ((w = malloc(sizeof(*w))) != NULL)
		w->fd = -1;
	if (w == NULL || (m = malloc(sizeof(*m))) == NULL) {
		snprintf(k->why, sizeof(k->why), "cannot release %s: out of "
		    "memory", k->fs.path);
		r = LB_ENOMEM;
		goto out;
	}
	if ((r = broker_connect(k, w, 0)) != 0) {
		if (k->transport == T_BROKER)
			r = LB_EUNLOCK;
		goto out;
	}
	lbp_begin(&o, LBP_MSG_RELEASE, 1, id);
	lbp_add_str(&o, "path", k->fs.path);
	lbp_add_str(&o, "method", method_name(k->fs.method));
	lbp_add_u64(&o, "pid", (uint64_t)k->pid);
	if (lbw_call(w, &o, id, now_mono() + REQUEST_WAIT_S, NULL, NULL, m,
	    k->why, sizeof(k->why)) == -1) {
		r = LB_EUNLOCK;
		goto out;
	}
	if (m->verb == LBP_MSG_OK) {
		if (k->o->verbose)
			complain("released %s for pid %ld through lockbrokerd "
			    "on %s", k->fs.path, (long)k->pid, w->where);
		r = 0;
		goto out;
	}
	e = lbw_code(m);
	r = e == LBP_EINVAL ? LB_EINVAL : lb_code_of(e) == LB_EFAILED ?
	    LB_EUNLOCK : lb_code_of(e);
	if (r == LB_ENOTLOCKED)
		snprintf(k->why, sizeof(k->why), "cannot release %s: it is "
		    "not locked", k->fs.path);
	else if (r == LB_ENOTMINE)
		snprintf(k->why, sizeof(k->why), "cannot release %s: it is "
		    "not held for pid %ld, but by another owner", k->fs.path,
		    (long)k->pid);
	else
		snprintf(k->why, sizeof(k->why), "cannot release %s for pid "
		    "%ld: %s (%s)", k->fs.path, (long)k->pid, lbw_error(m),
		    lbp_error_name(e));
out:
	if (w != NULL)
		lbw_close(w);
	free(w);
	free(m);
	return r;
}

/* Releases the lock k->pid holds in-process: 0, or an LB_E* code with
 * k->why filled. */
static int
local_release(struct kept *k)
{
	struct lockfs_lock l;
	struct lockfs_err  err;
	int                r;

	if ((r = local_lock_for(k, &l, "release")) != 0)
		goto out;
	r = lockfs_release(&l, &err);
	if (r == LB_ENOTLOCKED)
		snprintf(k->why, sizeof(k->why), "cannot release %s: it is "
		    "not locked", k->fs.path);
	else if (r == LB_ENOTMINE)
		snprintf(k->why, sizeof(k->why), "cannot release %s: it is "
		    "not held for pid %ld, but by another owner", k->fs.path,
		    (long)k->pid);
	else if (r != 0)
		snprintf(k->why, sizeof(k->why), "cannot release %s for pid "
		    "%ld: %s", k->fs.path, (long)k->pid, err.msg);
	else if (k->o->verbose)
		complain("released %s for pid %ld in-process", k->fs.path,
		    (long)k->pid);
	lockfs_fini(&l);
out:
	return r;
}

/*
 * release: releases the lock on o->path that process o->pid (default:
 * the parent) holds.  Returns 0 when released, EXIT_NOT_HELD when the
 * lock is free or another owner's, EX_UNAVAILABLE when it cannot be
 * released, EX_USAGE for a path or holder that cannot be used.
 */
int
cmd_release(const struct opts *o)
{
	struct kept *k;
	int          r, code;

	if ((k = malloc(sizeof(*k))) == NULL) {
		complain("cannot release %s: out of memory", o->path);
		return EX_OSERR;
	}
	if ((r = kept_init(k, o, "release")) != 0)
		goto out;
	code = NO_DAEMON;
	if (k->transport != T_LOCAL)
		code = broker_release(k);
	if (code == NO_DAEMON)
		code = local_release(k);
	if (code == 0)
		r = 0;
	else {
		complain("%s", k->why);
		if (code == LB_ENOTLOCKED || code == LB_ENOTMINE)
			r = EXIT_NOT_HELD;
		else
			r = code == LB_ENOMEM ? EX_OSERR : EX_UNAVAILABLE;
	}
	lockfs_fini(&k->fs);
out:
	free(k);
	return r;
}
