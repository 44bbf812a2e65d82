/*
 * broker.h: liblockbroker's broker transport, as lock.c calls it.
 * Internal: not installed.
 *
 * One connection per process to lockbrokerd, shared by every handle and
 * thread, opened lazily (session.c); a background reader thread hands
 * each reply to the request that waits for it, and re-establishes the
 * connection when the daemon restarts (reader.c); the requests (broker.c).
 * Beside it, the process-wide registry of the locks the process holds
 * through the broker (holds.h, which lock.c also asks directly).  Their
 * map is at the top of session.h.
 *
 * lock.c chooses the transport of each call (see there); these calls do
 * the broker's part.  Every lb__broker_* call may block while it waits for
 * the daemon; none is called with a handle's mutex held.
 */
#ifndef LB_BROKER_H
#define LB_BROKER_H

#include <stdint.h>
#include <sys/types.h>

#include "lockbroker.h"
#include "lockfs.h"

/* How a handle reaches its locks: from its flags, else from the
 * environment (lb__transport_from_env). */
enum lb__transport {
	LB__AUTO,       /* the broker when it answers, else in-process */
	LB__BROKER,     /* the broker only */
	LB__LOCAL       /* in-process only */
};

/* The name the library gives in HELLO, on every connection it makes. */
#define LB__CLIENT_NAME "liblockbroker"

/*
 * Returned (besides 0 and LB_E* codes) by the calls that take a fallback
 * time: the broker cannot serve the call now (no connection, or one being
 * re-established for longer than the fallback time); the caller does it
 * in-process.  Positive, so that it never passes for an LB_E* code.
 */
#define LB__FALLBACK 1

/*
 * Returned by lb__broker_release when the connection was lost while the
 * RELEASE was on its way: the daemon may or may not have done it.  The
 * hold is settled with the next daemon; the caller removes the artefact
 * in-process, under the lock directory's lock (lock.c: lost_release),
 * and finding it gone or someone else's means the daemon did.
 */
#define LB__RELEASE_LOST 2

/*
 * Returned by lb__broker_release when the daemon answered the RELEASE
 * pending=1: released as far as the owner is concerned, but the lock
 * file may still name it until the daemon's handoff or removal is done
 * (a reader keeps it open, a busy database); the reader has marked it
 * (lb__owners_unfinished) so that the owner never takes that file for
 * its own lock in-process.
 */
#define LB__RELEASE_PENDING 3

/*
 * Returned by the asynchronous acquire's calls (lb__broker_acquire_start,
 * lb__broker_acquire_look): the ACQUIRE is on its way or waits at the
 * daemon; look again when its note is set, or by the time given.
 */
#define LB__INPROGRESS 4

/* In AUTO mode: how long a call waits for a lost connection to come back
 * before it is done in-process instead. */
#define LB__AUTO_FALLBACK_S 1.0

/* A finite timeout longer than this (about 31.7 years) is taken as
 * LB_FOREVER: the wire carries at most this many seconds, and deadlines
 * much further out overflow the clocks' units (time_t, milliseconds in
 * 64 bits) on the way to a timed wait. */
#define LB__TIMEOUT_MAX_S 1e9

struct lb__wait;        /* cancel.h */
struct lb__note;        /* os.h */
struct req;             /* request.h */

/* Whom a request is for: the lock and its owner.  The strings (and wait)
 * are borrowed for the call (the daemon is sent path; lock_file is the
 * registry's key). */
struct lb__target {
	const char *path;       /* absolute, normalised */
	const char *lock_file;  /* the artefact's path */
	unsigned    method;     /* LB_LINK ... LB_SQLITE */
	pid_t       tid;        /* the owner thread's kernel id; 0: process */
	int         broker_only; /* the handle is LB__BROKER (not AUTO) */
	int         break_stale; /* ACQUIRE: LB_BREAK_STALE (stale=1) */
	struct lb__wait *wait;  /* ACQUIRE: what may end it early (cancel.h),
	                           or NULL */
	int         shared;     /* ACQUIRE: mode=shared (docs/SHARED.md) */
	uint64_t    set_key;    /* ACQUIRE: a member of set set_key ... */
	unsigned    set_of;     /* ... of set_of members (set=, of=); 0: not
	                           a set's */
};

/* What STATUS says of a lock. */
struct lb__status {
	int      locked;        /* 1: held, by anyone */
	int      mine;          /* 1: held by this owner */
	pid_t    pid;           /* holder's pid, 0 unknown */
	pid_t    tid;           /* holder's thread, 0 none or unknown */
	uid_t    uid;           /* holder's uid, (uid_t)-1 unknown */
	char     host[LOCKFS_HOST_MAX];
	double   since;         /* epoch seconds, 0 unknown */
	uint64_t token;         /* fencing token, 0 when the broker did not
	                           grant it (held outside the broker) */
	unsigned waiters;       /* ACQUIREs queued at the broker */
	int      unclaimed;     /* 1: held for a process that has not claimed
	                           its hold back from the previous daemon */
	int      shared;        /* 1: held shared (mode=shared) */
	unsigned holders;       /* how many hold it (holders=), 0 unknown */
	/* A cluster lock's fields (cluster_*, docs/CLUSTER.md): */
	int      cluster;       /* 1: the daemon said cluster_state */
	char     cstate[16];
	char     ckey[512];
	char     cholder[256];
	uint64_t crevision;
	unsigned cwaiters;
	char     cerror[256];
};

/*
 * lb__transport_from_env: the transport LOCKBROKER_TRANSPORT asks for:
 * "auto", "broker" or "local"; unset or empty is auto.  Any other value
 * is taken as auto, and a note saying so is written into why (size bytes;
 * left alone otherwise).
 */
enum lb__transport lb__transport_from_env(char *why, size_t size);

/*
 * lb__broker_connect: makes sure the connection is up: 0 when it is, or
 * was just made (connect, HELLO) from no connection at all; otherwise
 * LB_EFAILED with a reason naming the socket in *err: no daemon answers,
 * or the connection is being re-established (then no new one is tried).
 * Blocks for the connect and the HELLO (at most a few seconds).
 */
int lb__broker_connect(struct lockfs_err *err);

/* lb__broker_ready: 1 when the connection is up now, else 0.  Never
 * blocks on the network. */
int lb__broker_ready(void);

/* lb__broker_sets: whether the connection is ready and its daemon takes
 * sets (protocol version 3: ACQUIRE set= of=, granted together). */
int lb__broker_sets(void);

/*
 * lb__broker_acquire: ACQUIRE t with timeout (as lb_acquire takes it;
 * deadline: the monotonic time it ends, when finite and > 0).  The daemon
 * does the waiting.  0 with the hold registered (and *token set, when not
 * NULL; *fresh, when not NULL, 1 when the grant was not a re-entrant one
 * of a live hold the owner had: the registry of holds, which follows the
 * daemon's answers in their order, had none with the grant's token); an
 * LB_E* code with err filled (LB_EALREADY, LB_ETIMEOUT,
 * LB_EFAILED: no daemon, or it cannot take the lock; LB_EINVAL).  When the
 * connection is lost while it waits, the request is sent again, with what
 * is left of the timeout, once the connection is back; when it has been
 * waiting unsent for fallback seconds (INFINITY: never), LB__FALLBACK.
 * Blocks up to timeout (plus the time to reconnect).
 */
int lb__broker_acquire(const struct lb__target *t, double timeout,
    double deadline, double fallback, uint64_t *token, int *fresh,
    struct lockfs_err *err);

/*
 * lb__broker_upgrade: UPGRADE of t's shared hold (docs/SHARED.md), waiting
 * as lb__broker_acquire does (timeout, deadline, fallback; not ended
 * early by t->wait); lb__broker_downgrade: DOWNGRADE of t's exclusive
 * hold, at once.  0; an LB_E* code with err filled (LB_EALREADY,
 * LB_ETIMEOUT, LB_ENOTLOCKED, LB_ENOTMINE, LB_EFAILED: no daemon, or it
 * refused); LB__FALLBACK as lb__broker_acquire.  Block.
 */
int lb__broker_upgrade(const struct lb__target *t, double timeout,
    double deadline, double fallback, struct lockfs_err *err);
int lb__broker_downgrade(const struct lb__target *t, double fallback,
    struct lockfs_err *err);

/*
 * lb__broker_acquire ended early: when t->wait says stop (cancel.h)
 * while the ACQUIRE waits, the library sends CANCEL and waits for the
 * daemon's word: LB_ECANCELED (err filled) when the wait was withdrawn;
 * 0 with the hold registered when the grant came first (the caller holds
 * the lock).  A request not yet sent, or waiting unsent for the
 * connection to come back, is dropped: LB_ECANCELED.
 */

/*
 * lb__broker_acquire_start: lb__broker_acquire begun without waiting: the
 * ACQUIRE is sent (or queued while the connection is being
 * re-established) and the call returns LB__INPROGRESS with *qp the
 * request, which is the caller's to look at (lb__broker_acquire_look)
 * until it has an outcome, or to drop (lb__broker_acquire_drop).  From
 * now on note (when not NULL; the caller keeps it open as long as *qp
 * is) is set whenever there is something new to look at: the answer, a
 * lost or re-established connection, a wake (lb__broker_wake: so
 * lb_lock_cancel).  Otherwise the outcome at once, as
 * lb__broker_acquire's, *qp NULL.  Blocks only when there is no
 * connection yet (connect and HELLO, with fallback INFINITY), and on the
 * library's mutexes and the write of the request.
 */
int lb__broker_acquire_start(const struct lb__target *t, double timeout,
    double deadline, double fallback, struct lb__note *note,
    struct req **qp, struct lockfs_err *err);

/*
 * lb__broker_acquire_look: looks at *qp, begun by lb__broker_acquire_start
 * with the same fallback: with block 0, once, without waiting for the
 * daemon: LB__INPROGRESS with *until set to the monotonic time by which
 * to look again (its timeout's backstop, the end of its fallback time, the
 * interrupt hook's turn; INFINITY: only when the note is set); with block
 * 1 it waits on until the outcome.  The outcome is as lb__broker_acquire's
 * (0, the hold registered, *token and *fresh set: 1 when the grant was
 * not a re-entrant one of a hold the owner had; LB__FALLBACK; an LB_E*
 * code with err filled; *culprit, when not NULL, 1 for a member of a set
 * that the daemon refused for this member's lock, else 0), and *qp is
 * then freed (or left to the reader) and NULL.  A wait ended by t->wait (cancel.h) sends CANCEL at this look
 * and is answered at a later one.
 */
int lb__broker_acquire_look(struct req **qp, double fallback, int block,
    double *until, uint64_t *token, int *fresh, int *culprit,
    struct lockfs_err *err);

/*
 * lb__broker_acquire_drop: gives *qp up without waiting: one queued
 * unsent is forgotten; one sent is withdrawn (CANCEL) and left to the
 * reader, which releases a grant that crossed the CANCEL; one answered
 * is freed (a grant's hold stays the owner's).  Returns 1 when the
 * daemon's grant had been delivered to it (the owner holds the lock;
 * *fresh as for lb__broker_acquire_look), else 0; *qp is NULL after.
 * Blocks only on the library's mutexes and the write of the CANCEL.
 */
int lb__broker_acquire_drop(struct req **qp, int *fresh);

/* lb__broker_wake: wakes every request waiting on the connection, so
 * that each looks again whether it is to stop.  Blocks only on the
 * connection's mutex. */
void lb__broker_wake(void);

/*
 * lb__broker_release: RELEASE t.  0; LB__RELEASE_PENDING (see above);
 * LB_ENOTLOCKED, LB_ENOTMINE, LB_EUNLOCK
 * (also for no daemon) with err filled; LB__RELEASE_LOST when the
 * connection was lost with the request on its way (see above); or,
 * when no connection is up within fallback seconds, LB__FALLBACK, with the
 * hold marked as released in-process (the caller removes its artefact; the
 * registry tells the daemon once it is back).
 */
int lb__broker_release(const struct lb__target *t, double fallback,
    struct lockfs_err *err);

/*
 * lb__broker_status: STATUS t into *st.  0; LB_ERROR or LB_EINVAL with err
 * filled; LB__FALLBACK when no connection is up within fallback seconds.
 * Keeps the registry in step with the answer (a hold the daemon no longer
 * gives this owner is forgotten).
 */
int lb__broker_status(const struct lb__target *t, double fallback,
    struct lb__status *st, struct lockfs_err *err);

/*
 * lb__broker_break: BREAK t's lock.  0 (also when it was not held);
 * LB_EUNLOCK with err filled; LB__FALLBACK when no connection is up within
 * fallback seconds, with this process's holds of the lock marked as ended
 * in-process (the caller breaks it in-process).
 */
int lb__broker_break(const struct lb__target *t, double fallback,
    struct lockfs_err *err);

#endif /* LB_BROKER_H */
