/*
 * holds.h: the registry of the locks this process holds through the
 * broker (holds.c), so that a restarted daemon can be asked to give them
 * back, keyed by owner: (lock file, method, thread).  Internal: not
 * installed.
 *
 * Its states are drawn in holds.c.  The registry is updated by the reader
 * thread as replies arrive, in the order the daemon sent them (so that a
 * STATUS answered before a grant cannot undo the grant), and settled with
 * each new daemon by the reader (RECLAIM); lock.c asks it directly (the
 * calls at the end), which take lb__conn.mu themselves.  Every other call
 * is made with lb__conn.mu held (session.h).
 */
#ifndef LB_HOLDS_H
#define LB_HOLDS_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "broker.h"
#include "lockfs.h"

enum hold_state { HOLD_LIVE, HOLD_DROPPED, HOLD_PINNED, HOLD_LOST };

struct hold {
	TAILQ_ENTRY(hold) entry;        /* in the registry */
	char             *path;
	char             *lock_file;
	unsigned          method;
	pid_t             tid;
	int               broker_only;
	uint64_t          token;
	int               shared;       /* the mode its owner was told:
	                                   1 shared, 0 exclusive */
	enum hold_state   state;
	uint64_t          round;        /* the reclaim round that settled it */
	char             *why;          /* LOST: the reason */
};

/* lb__holds_reset: an empty registry (at the first use, and in a fork
 * child: the parent's holds are left, not freed). */
void lb__holds_reset(void);

/* lb__hold_find: the hold of (lock_file, method, tid), or NULL. */
struct hold *lb__hold_find(const char *lock_file, unsigned method,
    pid_t tid);

/* lb__hold_remove: takes h out of the registry and frees it. */
void lb__hold_remove(struct hold *h);

/* lb__hold_granted: records that t's owner holds its lock with token (a
 * grant; a new grant replaces any state), in t's mode (t->shared) unless
 * it held it live with that token already (re-entrant: the mode as it
 * was).  Out of memory, the hold is not registered: it works, but is not
 * reclaimed after a daemon restart. */
void lb__hold_granted(const struct lb__target *t, uint64_t token);

/* lb__hold_mode: the live hold of (lock_file, method, tid), if any, is
 * in mode shared (1) or exclusive (0) now, as the daemon answered (an
 * UPGRADE's or DOWNGRADE's OK, a STATUS, a RECLAIM). */
void lb__hold_mode(const char *lock_file, unsigned method, pid_t tid,
    int shared);

/* lb__hold_ended: forgets the live hold of (lock_file, method, tid), if
 * any (released, broken, or not this owner's any more).
 * lb__hold_ended_all: forgets every live hold of the lock (lock_file,
 * method) in this process: it was broken. */
void lb__hold_ended(const char *lock_file, unsigned method, pid_t tid);
void lb__hold_ended_all(const char *lock_file, unsigned method);

/* lb__holds_drop: marks as DROPPED (ended in-process while the daemon was
 * away; settled with the next one) the live holds of (lock_file, method)
 * by tid, or by every owner when all (a break). */
void lb__holds_drop(const char *lock_file, unsigned method, pid_t tid,
    int all);

/*
 * lb__hold_unreclaimable: the broker will not (or cannot) give h back.
 * When h's artefact still names this owner: in AUTO mode the hold lives
 * on in-process, and is simply no longer the broker's; for a broker-only
 * owner the artefact is removed, and h is LOST.  Otherwise h is LOST.
 * reason says why the broker did not; h may be freed.  Takes the owners'
 * registry's mutex (owners.h) inside lb__conn.mu.
 */
void lb__hold_unreclaimable(struct hold *h, const char *reason);

/* lb__hold_lost: the daemon said (LOST, docs/SHARED.md) that the live
 * hold of the lock path (method) by tid is gone: a shared hold whose
 * lock's artefact it could not take over.  The hold becomes LOST with
 * reason (the next call on it reports it: lb__holds_take_lost); nothing
 * when there is no such live hold. */
void lb__hold_lost(const char *path, unsigned method, pid_t tid,
    const char *reason);

/* lb__holds_tell: calls the lost hook (lb_set_lost_hook) for each loss
 * queued since the last call, in order, without lb__conn.mu (taken
 * here, released before the first call).  The reader thread's, after
 * the messages it delivered and after a reconnect or giving up. */
void lb__holds_tell(void);

/* lb__holds_wait_unpinned: waits (on lb__conn.changed) until no hold is
 * PINNED: no in-process acquire of a dropped hold is under way. */
void lb__holds_wait_unpinned(void);

/* lb__holds_unsettled: a LIVE or DROPPED hold not yet settled in reclaim
 * round round (its round field), or NULL when there is none. */
struct hold *lb__holds_unsettled(uint64_t round);

/* lb__holds_give_up: no daemon came back (reason says so): the live holds
 * are unreclaimable (lb__hold_unreclaimable), the dropped and pinned ones
 * forgotten, the lost ones kept to be reported. */
void lb__holds_give_up(const char *reason);

/* The calls lock.c makes.  Each takes lb__conn.mu; none blocks on the
 * network. */

/* lb__holds_live: 1 when the registry has a live hold of t (its token in
 * *token, when not NULL), else 0. */
int lb__holds_live(const struct lb__target *t, uint64_t *token);

/* lb__holds_shared: 1 when the registry has a hold of t (live, dropped
 * with the daemon or being settled, not lost) whose owner was told it
 * holds it shared, else 0. */
int lb__holds_shared(const struct lb__target *t);

/*
 * lb__holds_take_lost: when t's broker hold was lost (the daemon went
 * away and could not give it back), forgets it and returns LB_ENOTLOCKED
 * with the reason in *err: reported once, on the owner's next call.
 * Otherwise 0.  Cheap when nothing was lost.
 */
int lb__holds_take_lost(const struct lb__target *t, struct lockfs_err *err);

/*
 * lb__holds_pin / lb__holds_unpin: bracket an in-process acquire of t in
 * AUTO mode.  pin returns 1 (pinned: call unpin), 0 (nothing to pin: go
 * ahead), or LB_EALREADY when the lock cannot be taken in-process just
 * now (this owner's earlier broker hold is being settled with a
 * reconnected daemon: try again shortly).  unpin tells whether the
 * acquire succeeded, so that a hold this owner released in-process while
 * the daemon was away, and takes again now, is kept rather than released
 * when the daemon comes back.
 */
int  lb__holds_pin(const struct lb__target *t);
void lb__holds_unpin(const struct lb__target *t, int acquired);

#endif /* LB_HOLDS_H */
