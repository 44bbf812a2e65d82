/*
 * reconcile.h: a restarted daemon and the holds of the previous run
 * (reconcile.c): judged at start, kept as orphans for their processes to
 * reclaim within the grace period, ended when those exit.
 */
#ifndef LBD_RECONCILE_H
#define LBD_RECONCILE_H

#include "daemon.h"

/* lbd_reconcile: judges every hold the state database records and starts
 * the grace period for those that stay.  Once, at start, before the
 * daemon accepts connections. */
void lbd_reconcile(struct lbd *d);

/* lbd_orphan_exited: h's process exited (pidwatch.c): h ends. */
void lbd_orphan_exited(struct lbd_hold *h);

/* lbd_orphan_linger_look: looks again at the artefact of h, an orphan
 * lingering past its grace (its process runs): gone, or not its holder's
 * any more, h is forgotten and its lock's waiters served: 1 (the lock may
 * be freed).  Else 0. */
int  lbd_orphan_linger_look(struct lbd_hold *h);

/* lbd_orphans_detach: the daemon stops: unclaimed orphans stay recorded,
 * their artefacts on disk, for the next daemon; the grace ends. */
void lbd_orphans_detach(struct lbd *d);

/* lbd_orphans_user_here: a process of user uid connected, with a token
 * to act with (Windows): the holds of the previous run that ended while
 * no token of uid was there (d->tokenless) end now. */
void lbd_orphans_user_here(struct lbd *d, uid_t uid);

/* lbd_orphan_adopt: l's holder, an orphan of c's process (pid, start
 * time, user) and thread tid, becomes c's hold, token and record
 * unchanged, when its artefact is still there and its holder's.  0, or
 * -1 when it is not such an orphan. */
int  lbd_orphan_adopt(struct lbd_conn *c, struct lbd_lock *l, pid_t tid);

/* lbd_kept_recheck: ACQUIRE pid= by c of kept hold h of the previous
 * run, whose artefact could not be looked at since: 0 when it is there
 * and its holder's now (or h is any other hold), -1 when it is not given
 * back (refused; or held, handed to the waiting ACQUIRE once judged). */
int  lbd_kept_recheck(struct lbd_conn *c, struct lbd_hold *h);

/* lbd_orphan_judge: looks again at the artefact of orphan h, which could
 * not be told before (releasing.c's retry): its holder's, h may be
 * reclaimed; gone or another's, h is forgotten; its database still busy,
 * h is queued again.  h may be freed on return. */
void lbd_orphan_judge(struct lbd_hold *h);
#define LBD_ORPHAN_REFUSED 2    /* lbd_hold.unjudged: see there */

/* lbd_reclaim: RECLAIM by c of the hold of path (method, tid) it had in
 * the previous run with token, its mode settled to mode (-1: as
 * recorded; 0: exclusive; 1: shared), as its owner was told
 * (docs/SHARED.md).  0; LBD_RECLAIM_READERS when exclusive is asked of a
 * shared hold while other readers hold beside it (a rider reclaimed, or
 * a live marker of the previous run's: refused, nothing changed, the
 * hold an orphan still); or -1 when there is no such orphan, or when it
 * is refused (its artefact gone, another's, or not to be looked at now:
 * forgotten, nothing touched). */
#define LBD_RECLAIM_READERS 2
int  lbd_reclaim(struct lbd_conn *c, const char *path, unsigned method,
         pid_t tid, uint64_t token, int mode);

#endif
