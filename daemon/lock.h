/*
 * lock.h: what the verbs do to a lock, and its waiters' turn (lock.c,
 * where the lock state machine is drawn).  request.c checks a request's
 * fields and calls these; each replies, or says what to reply.
 */
#ifndef LBD_LOCK_H
#define LBD_LOCK_H

#include "daemon.h"

/* lbd_acquire: ACQUIRE request id of (c, tid) for path with method and
 * timeout (kept_pid not 0: a hold kept for that process, which c may ask
 * for; stale: break a provably dead holder's artefact; shared: a shared
 * hold, docs/SHARED.md, with kept_pid a kept reader).  Replies now
 * (granted, owed until recorded, or an error) or queues the request,
 * which is answered when granted, timed out, canceled or at the stop.
 * Returns 0. */
int  lbd_acquire(struct lbd_conn *c, uint64_t id, const char *path,
         unsigned method, pid_t kept_pid, pid_t tid, double timeout,
         int stale,
         int shared);

/* lbd_release: RELEASE id of l by (c, tid), or of its hold kept for
 * kept_pid.  0 (to be answered OK); 1 when the answer is owed to the
 * last step of a handoff to a waiter (swap.c answers it once the lock
 * file is no longer c's); or LB_ENOTLOCKED, LB_ENOTMINE, LB_EUNLOCK
 * with err filled.  The caller checked that c may look at l.  l may be
 * freed on return. */
int  lbd_release(struct lbd_conn *c, struct lbd_lock *l, pid_t kept_pid,
         pid_t tid, uint64_t id, struct lockfs_err *err);

/* lbd_break: BREAK of l by c, if c may (root, or the holder's user).  1
 * when a lock was broken, 0 when none was held, or an LB_E* code with err
 * filled (a refusal: LB_EUNLOCK, sys_errno EPERM).  l may be freed on
 * return. */
int  lbd_break(struct lbd_conn *c, struct lbd_lock *l, struct lockfs_err *err);

/* lbd_lock_serve: l is not held by a broker client: its head waiter gets
 * it when its artefact can be made (a waiter that cannot have it at all
 * gets the error, the next one is tried); while someone outside holds
 * it, l is watched.  l may be freed on return. */
void lbd_lock_serve(struct lbd_lock *l);

/* lbd_lock_break_stale: l is held outside the broker: its artefact broken
 * as c's user when its holder is provably dead (lockfs_break_stale),
 * for a requester that asked so (stale=1).  1 when it broke it, else 0. */
int  lbd_lock_break_stale(struct lbd_lock *l, struct lbd_conn *c);

/* lbd_lock_try_stale: lbd_lock_try for (c, tid); with stale (stale=1), a
 * provably dead holder's artefact broken first when someone outside the
 * broker holds it.  0, LB_EALREADY, or another code with err filled. */
int  lbd_lock_try_stale(struct lbd_lock *l, struct lbd_conn *c, pid_t tid,
    int stale, struct lockfs_err *err);

/* lbd_lock_own_waits: owner (c, tid) has just been granted l (its hold,
 * or a rider's): its other waits queued for l (pipelined ACQUIREs; not an
 * UPGRADE, not one kept for a process) are answered now as an ACQUIRE
 * coming now would be (docs/SHARED.md): OK re-entrant, or, of an
 * exclusive one beside its shared hold, EFAILED (a change of mode is
 * UPGRADE's), and removed: left queued, each would wait for its own
 * owner's hold until its timeout. */
void lbd_lock_own_waits(struct lbd_lock *l, struct lbd_conn *c, pid_t tid);

#endif
