/*
 * hold.h: a hold's life (hold.c, drawn there): made for a requester,
 * installed as its lock's holder once its artefact is made, ended by a
 * handoff or a release (or left releasing while its sqlite database is
 * busy), detached when the daemon stops; the previous run's holds
 * adopted as they are.
 */
#ifndef LBD_HOLD_H
#define LBD_HOLD_H

#include "daemon.h"

/* lbd_hold_new: a new hold of l, not installed, for thread tid of process
 * pid as c's user (c's own process, or the one a kept hold is for); or,
 * c NULL (a hold of the previous run), for owner (the caller sets its
 * uid, gid and creds).  NULL with err filled.  Free it with
 * lbd_hold_free unless it gets installed. */
struct lbd_hold *lbd_hold_new(struct lbd_lock *l, struct lbd_conn *c,
         pid_t pid, pid_t tid, const struct lockfs_owner *owner,
         struct lockfs_err *err);

/* lbd_hold_free: frees a hold that is not (or no longer) installed. */
void lbd_hold_free(struct lbd_hold *h);

/* lbd_hold_names: makes h's names for one step on its artefact; the
 * caller drops them after it (lockfs_names_drop).  0, or LB_ENOMEM with
 * err filled. */
int  lbd_hold_names(struct lbd_hold *h, struct lockfs_err *err);

/* lbd_hold_adopt: installs h as l's holder as it is (token, since and
 * record kept): a hold of the previous run (into d->orphans) or one
 * reclaimed over a new connection (into its holds). */
void lbd_hold_adopt(struct lbd_lock *l, struct lbd_hold *h);

/* lbd_hold_uninstall: takes l's holder out (its owed OKs sent, its record
 * removed) and returns it, the caller's to end and free; the artefact is
 * the caller's business. */
struct lbd_hold *lbd_hold_uninstall(struct lbd_lock *l);

/* lbd_lock_try: makes l's artefact for (c, tid), or kept for kept_pid, as
 * c's user, and installs the new hold.  0; LB_EALREADY when someone
 * outside the broker holds it; another code with err filled. */
int  lbd_lock_try(struct lbd_lock *l, struct lbd_conn *c, pid_t kept_pid,
         pid_t tid, struct lockfs_err *err);

/* lbd_own_artefact_adopt: installs a new hold for (c, tid) (or kept_pid)
 * when l's artefact is theirs already though the broker does not know it
 * (a grant the previous daemon did not record or answer).  0, or -1 (not
 * theirs, cannot tell, or the pidfile method but for kept holds). */
int  lbd_own_artefact_adopt(struct lbd_lock *l, struct lbd_conn *c,
         pid_t kept_pid, pid_t tid);

/* lbd_hold_kept_running: 1 when kept hold h's process is the one that runs
 * with its pid now (the same start time; the holder may have exited,
 * unseen yet by a once-a-second look, and its pid been given to another
 * process), else 0.  Start times count clock ticks: a pid given again
 * within a tick of the holder's start is not told apart (the kernel gives
 * a pid again only after all the others, unless root sets the next). */
int  lbd_hold_kept_running(const struct lbd_hold *h);

/* lbd_hold_find: l's hold by (c, tid), or kept for kept_pid (not 0), the
 * process that has that pid now, if c may act for it; NULL when there is
 * none (a releasing hold, or one whose process has exited, is nobody's). */
struct lbd_hold *lbd_hold_find(struct lbd_lock *l, struct lbd_conn *c,
         pid_t kept_pid, pid_t tid);

/*
 * lbd_hold_release_artefact: removes h's artefact (released, nobody
 * next), as h's user, under the lock of its directory (hold.c says why).
 * patient: h may be left releasing and tried again (lbd_hold_end), so a
 * live holder's lock whose directory's lock is taken waits up to 2 s for
 * it; else (a failed handoff's old holder, swap.c) a live holder's is
 * released at once without it.  A gone holder's never is without it.
 * 0, or an LB_E* code with err filled (sys_errno EBUSY: the directory's
 * lock was taken; nothing removed).  Does not block.
 */
int  lbd_hold_release_artefact(struct lbd_hold *h, int patient,
         struct lockfs_err *err);

/* lbd_hold_end: ends l's hold: hands the lock to a rider (a shared
 * hold's, readers.c), else to the head waiter, or removes the artefact.  0; 1 when handed on with the last step owed
 * (l->holder->swap: the lock file is still the old holder's until
 * swap.c takes it, l is not freed); LBD_HOLD_LEFT_RELEASING when it is
 * left releasing (its sqlite database busy, its lock file busy, no
 * memory: the artefact still names the old holder, releasing.c retries);
 * or what the release reports (LB_ENOTLOCKED, LB_ENOTMINE when someone
 * broke the lock meanwhile; LB_EUNLOCK) with err filled.  l may be freed
 * on return but for 1 and LBD_HOLD_LEFT_RELEASING. */
#define LBD_HOLD_LEFT_RELEASING 2
int  lbd_hold_end(struct lbd_lock *l, struct lockfs_err *err);

/* lbd_hold_detach: forgets l's hold in memory only (artefact and record
 * stay for the next daemon).  l may be freed on return. */
void lbd_hold_detach(struct lbd_lock *l);

/* lbd_hold_dirlock_take: takes the lock of h's directory (which
 * stale-breakers hold across their judgement and removal) into *dl, as
 * h's user, entered by the caller, or, where that user may not open the
 * directory, as the daemon, through a descriptor checked to be the
 * directory judged at the grant; *left is then set (h's user left: the
 * caller enters it again).  0 (taken: lockfs_dirlock_close drops it); 1
 * when another process holds it; -1 when it cannot be taken (dl->fd -1).
 * Does not block. */
struct lockfs_dirlock;
int  lbd_hold_dirlock_take(struct lbd_hold *h, struct lockfs_dirlock *dl,
         int *left);

/* lbd_hold_forget: drops l's hold whose artefact is gone already, and
 * lets the waiters try.  l may be freed on return. */
void lbd_hold_forget(struct lbd_lock *l);

/* lbd_conn_release_some: ends closed c's holds until none is left or
 * uv_hrtime() passes deadline (one at least).  1 while holds are left,
 * else 0. */
int  lbd_conn_release_some(struct lbd_conn *c, uint64_t deadline);

#endif
