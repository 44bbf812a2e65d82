/*
 * lock.c: what the verbs do to a lock, and its waiters' turn: ACQUIRE
 * (granted, queued or refused), RELEASE, BREAK, and serving the waiters
 * of a lock no broker client holds.  The lock state machine, driven here
 * and by a hold's end (hold.c: handoff, release, releasing).  A lock in
 * the table is in one of these states (holder: l->holder; waiters:
 * l->waiters, FIFO):
 *
 *                     ACQUIRE, artefact made
 *        FREE --------------------------------> HELD
 *         ^  \                                 |  ^   ACQUIRE by another:
 *         |   \ ACQUIRE, artefact made by       |  |   queued (timeout > 0)
 *         |    \ someone outside the broker     |  |   or EALREADY
 *         |     v                               |  |
 *         |   FOREIGN (waiters; watching the    |  | RELEASE / holder's
 *         |   directory, polling as a safety    |  | connection closes,
 *         |   net) --- artefact gone: head -----+  | waiters: the head waiter
 *         |            waiter's made ---------->   | gets it, the artefact
 *         |                                        | replaced atomically
 *         +---- RELEASE / close, no waiters -------+ (never absent)
 *         |                                        |
 *         |           RELEASE / close / handoff,   | (sqlite only)
 *         |           database busy                v
 *         +---- row removed ---------------- RELEASING (no connection's;
 *                (or handed to the head         held, recorded, waiters
 *                waiter: HELD by it;            wait; queued with the
 *                BREAK: FREE)                   holder's user's other
 *                                               holds in that database,
 *                                               retried in turn as that
 *                                               user; busy again: back
 *                                               to the queue's tail)
 *
 * RELEASING: the sqlite method's row could not be removed or handed over
 * because another process keeps its database busy (any user who may read
 * it can).  The daemon does not wait for it in its loop, and does not
 * forget the hold either (the row would stay, held by nobody): the hold
 * stays the lock's holder, in d->releasing, owned by no connection (its
 * client's RELEASE was answered OK, its connection may close), and
 * releasing.c tries again, without waiting: one queue per user and
 * database, one try standing for the whole queue while the database is
 * busy (10 ms later, then twice as late each time up to 500 ms), within
 * a budget per loop iteration and a rate shared fairly by the users
 * (looks.c), so that what the retries cost does not grow with the number
 * of holds.  It counts in its user's locks_per_uid until it ends; BREAK
 * ends it as any hold.
 *
 * HELD may be shared (docs/SHARED.md): l->holder is then the artefact's
 * reader, and riders hold beside it with no artefact (l->readers); a
 * shared ACQUIRE joins them at once while nobody waits, and the head's
 * readers are granted together (readers.c, drawn there).  Its end hands
 * the artefact to a rider first, to the head waiter when none is left.
 *
 * FREE locks leave the table (lbd_lock_put).  Every artefact operation
 * runs with the filesystem credentials of the client it is for (creds.c).
 * A grant's OK goes out once the state database has recorded it
 * (reply.c).
 */
#include <errno.h>
#include <limits.h>

#include "cohort.h"
#include "creds.h"
#include "daemon.h"
#include "hold.h"
#include "lock.h"
#include "locktable.h"
#include "log.h"
#include "looks.h"
#include "os.h"
#include "readers.h"
#include "reconcile.h"
#include "reply.h"
#include "set.h"
#include "swap.h"
#include "wait.h"
#include "watch.h"

/*
 * l is held outside the broker: breaks its artefact if its holder is
 * provably dead (lockfs_break_stale), as c's user, for a requester that
 * asked so (stale=1).  1 when it broke it, else 0.
 */
static int
stale_break_as(struct lbd_lock *l, struct lbd_conn *c)
{
	struct lockfs_lock fs;
	struct lockfs_err  err;
	int                r = 0;

	if (lockfs_init(&fs, l->path, l->method, 0, &err) != 0)
		return 0;
	if (lbd_creds_enter(c->creds, &err) == 0) {
		r = lockfs_break_stale(&fs, &err) == 1;
		lbd_creds_leave();
	}
	if (r)
		log_info("%s: broke the lock of a holder that is gone, for "
		    "pid %ld (stale=1)", l->path, (long)c->pid);
	lockfs_fini(&fs);
	return r;
}

/*
 * The same for the first of l's waiters that asked for it, if any, within
 * this loop iteration's budget of looks (looks.c): a judge may read the
 * lock's directory for readers' markers (lockfs_readers_live), and the
 * events and polls that bring a lock here come at any user's pace.  Past
 * the budget, 0: the lock stays watched, and its next poll judges it.
 */
static int
break_stale_for(struct lbd_lock *l)
{
	struct lbd_wait *w;
	uint64_t         t0;
	int              r;

	TAILQ_FOREACH(w, &l->waiters, lock_entry)
		if (w->stale) {
			if (lbd_looks_turn_spent(l->d))
				return 0;
			t0 = uv_hrtime();
			r = stale_break_as(l, w->conn);
			lbd_looks_turn_took(l->d, t0);
			return r;
		}
	return 0;
}

/*
 * lbd_lock_serve: serves l's waiters while the lock is not held by a
 * broker client: the head waiter gets it when its artefact can be made; a
 * waiter whose artefact cannot be made at all gets the error and the next
 * one is tried; while someone outside holds it, the lock is watched (and a
 * provably dead holder's artefact broken, if a waiter asked for that).
 * Held by an orphan that lingers past its grace (reconcile.c): looked at
 * again, forgotten when its artefact is gone, watched while it is not.
 * l may be freed on return.
 */
void
lbd_lock_serve(struct lbd_lock *l)
{
	struct lockfs_err err;
	struct lbd_wait  *w;
	struct lbd_conn  *c;
	pid_t             tid;
	int               r = 0, set_head = 0;

	l->serving++;           /* l stays while this turn runs */
	if (l->holder == NULL)          /* its readers went with it */
		lbd_readers_lost(l);
	if (l->holder != NULL && l->holder->lingering) {
		/* Held for a process that may hold it in-process: served
		 * once its artefact goes, watched meanwhile. */
		if (lbd_orphan_linger_look(l->holder) == 1)
			goto out;       /* forgotten; l served */
		if ((w = TAILQ_FIRST(&l->waiters)) != NULL)
			lbd_lock_watch(l, w->conn);
		else
			lbd_lock_unwatch(l);
		goto out;
	}
	if (l->holder == NULL) {
		/* A cluster lock: its key given up when nobody here wants
		 * it, or another host's turn has come (cohort.h); its
		 * waiters served only while its cohort holds the key. */
		lbd_cohort_unheld(l);
		if (!TAILQ_EMPTY(&l->waiters) && lbd_cohort_gate(l, &err) != 0) {
			lbd_lock_unwatch(l);
			goto out;
		}
	}
	while (l->holder == NULL && (w = TAILQ_FIRST(&l->waiters)) != NULL) {
		if (!lbd_wait_current(w)) {
			lbd_conn_error(w->conn, w->id, LBP_EFAILED, "process "
			    "%ld exited while its ACQUIRE of %s waited",
			    (long)w->kept_pid, l->path);
			lbd_wait_remove(w);
			r = 0;
			continue;
		}
		if (w->set != NULL) {
			/* A set's wait: granted with all its locks, or it
			 * keeps its place (set.c watches what it waits for). */
			if (lbd_set_try(w->set, l) == -1)
				continue;       /* refused: the next waiter */
			set_head = l->holder == NULL;
			break;
		}
		r = lbd_lock_try(l, w->conn, w->kept_pid, w->tid, &err);
		if (r == LB_EALREADY && break_stale_for(l))
			r = lbd_lock_try(l, w->conn, w->kept_pid, w->tid, &err);
		if (r == LB_EALREADY && w->cluster_try) {
			/* A cluster lock's try, its key held: held outside
			 * the broker here, it is answered as a local try. */
			lbd_conn_error(w->conn, w->id, LBP_EALREADY, "%s is "
			    "locked by another owner", l->path);
			lbd_wait_remove(w);
			r = 0;  /* (w gone: nothing to watch for it) */
			continue;
		}
		if (r == LB_EALREADY)
			break;
		if (r == 0) {
			lbd_hold_mode(l->holder, w->shared);
			lbd_cohort_handed(l);
			lbd_grant_reply(l->holder, w->conn, w->id);
		} else
			lbd_conn_error(w->conn, w->id, LBP_EFAILED, "%s",
			    err.msg);
		c = w->conn;
		tid = w->tid;
		lbd_wait_remove(w);
		if (r == 0)
			lbd_lock_own_waits(l, c, tid);
	}
	if (set_head)
		;               /* as lbd_set_try left it */
	else if (r == LB_EALREADY)
		lbd_lock_watch(l, w->conn);
	else
		lbd_lock_unwatch(l);
	lbd_readers_serve(l);   /* held shared: the readers behind it */
out:
	l->serving--;
	lbd_lock_put(l);
}

/* lbd_lock_break_stale: see lock.h. */
int
lbd_lock_break_stale(struct lbd_lock *l, struct lbd_conn *c)
{
	return stale_break_as(l, c);
}

/* lbd_lock_try_stale: see lock.h. */
int
lbd_lock_try_stale(struct lbd_lock *l, struct lbd_conn *c, pid_t tid,
    int stale, struct lockfs_err *err)
{
	int r;

	r = lbd_lock_try(l, c, 0, tid, err);
	if (r == LB_EALREADY && stale && stale_break_as(l, c) == 1)
		r = lbd_lock_try(l, c, 0, tid, err);
	return r;
}

/* Refuses c's exclusive ACQUIRE id of path, which c's owner holds shared:
 * a change of mode is UPGRADE's, never a silent OK (docs/SHARED.md). */
static void
shared_held(struct lbd_conn *c, uint64_t id, const char *path)
{
	lbd_conn_error(c, id, LBP_EFAILED, "%s is held shared by this "
	    "owner already: an exclusive hold of it is asked for with "
	    "UPGRADE (lb_upgrade), not ACQUIRE", path);
}

/* lbd_lock_own_waits: see lock.h. */
void
lbd_lock_own_waits(struct lbd_lock *l, struct lbd_conn *c, pid_t tid)
{
	struct lbd_wait *v, *next;
	int              shared;

	if (l->holder == NULL)
		return;
	shared = lbd_reader_find(l, c, tid) != NULL || (l->holder->shared &&
	    l->holder->conn == c && l->holder->tid == tid);
	if (!shared && (l->holder->conn != c || l->holder->tid != tid))
		return;         /* not its owner's: nothing to answer */
	for (v = TAILQ_FIRST(&l->waiters); v != NULL; v = next) {
		next = TAILQ_NEXT(v, lock_entry);
		if (v->conn != c || v->tid != tid || v->kept_pid != 0 ||
		    v->upgrade || v->set != NULL)
			continue;
		if (shared && !v->shared)
			shared_held(c, v->id, l->path);
		else
			lbd_grant_reply(l->holder, c, v->id);  /* re-entrant */
		lbd_wait_remove(v);
	}
}

/*
 * The ACQUIRE id of (c, tid) (kept_pid, stale, shared as asked) for cluster lock
 * l, whose cohort does not hold its etcd key now (cohort.h): queued, to
 * be served once it does.  A try (timeout 0 or less) fails at once when
 * someone here holds or waits for l; else it waits for the key's take,
 * at most LBD_COHORT_TRY_S, and is answered EALREADY when another host's
 * key holds (cohort.c).  Replies itself; 0.
 */
static int
cluster_wait(struct lbd_lock *l, struct lbd_conn *c, uint64_t id,
    pid_t kept_pid, pid_t tid, double timeout, int stale, int shared)
{
	struct lockfs_err err;
	const char       *why;
	char              buf[1024], file[PATH_MAX];
	int               try = !(timeout > 0);

	/* What another host does with the lock is told only to whom may
	 * look at it here. */
	if (!lbd_creds_may_look(c->creds, lbd_lock_file(l, file), &err)) {
		lbd_conn_error(c, id, LBP_EFAILED, "%s", err.msg);
		return 0;
	}
	if (try && (l->holder != NULL || !TAILQ_EMPTY(&l->waiters))) {
		lbd_conn_error(c, id, LBP_EALREADY, "%s is locked by another "
		    "owner", l->path);
		return 0;
	}
	if (try && (why = lbd_cohort_leaseless(c->d, buf, sizeof(buf))) !=
	    NULL) {
		lbd_conn_error(c, id, LBP_EFAILED, "%s is a cluster lock, and "
		    "this lockbrokerd cannot ask etcd for it now: %s", l->path,
		    why);
		return 0;
	}
	if (try && (why = lbd_cohort_parked(l)) != NULL) {
		lbd_conn_error(c, id, LBP_EFAILED, "%s", why);
		return 0;
	}

	if (c->nwaits >= c->d->cfg.limits.waits_per_conn) {
		lbd_conn_error(c, id, LBP_ELIMIT, "waits_per_conn: this "
		    "connection waits for %u locks", c->nwaits);
		return 0;
	}
	if ((shared ? lbd_wait_add_mode(l, c, id, kept_pid, tid, try ?
	    LBD_COHORT_TRY_S : timeout, 1, 0) : lbd_wait_add(l, c, id,
	    kept_pid, tid, try ? LBD_COHORT_TRY_S : timeout, stale)) != 0) {
		lbd_conn_error(c, id, LBP_EINTERNAL, "out of memory");
		return 0;
	}
	TAILQ_LAST(&l->waiters, lbd_waitq)->cluster_try = try;
	(void)lbd_wait_deadlocked(TAILQ_LAST(&l->waiters, lbd_waitq));
	return 0;
}

/*
 * lbd_acquire: the ACQUIRE request id of (c, tid) for path with method
 * and timeout; with kept_pid not 0, for a hold kept for that process (see
 * lbd_hold; the caller checked that c may ask for it).  Replies now (granted, or an error) or queues the request
 * and replies when it is granted, times out, is canceled, or the daemon
 * stops.  Returns 0 when it replied or queued; otherwise an LBP_E* code
 * the caller replies with (err-less: limits and bad paths are reported
 * here already).
 */
int
lbd_acquire(struct lbd_conn *c, uint64_t id, const char *path,
    unsigned method, pid_t kept_pid, pid_t tid, double timeout, int stale,
    int shared)
{
	struct lbd       *d = c->d;
	struct lockfs_err   err;
	struct lbd_lock    *l;
	struct lbd_hold    *h;
	char                file[PATH_MAX];
	int                 r = 0, gated;

	/* A lingering orphan (reconcile.c) whose artefact went meanwhile
	 * is forgotten first, which may free l: it is got again. */
	if ((l = lbd_lock_get(d, path, method, &err)) == NULL ||
	    (l->holder != NULL && l->holder->lingering &&
	    lbd_orphan_linger_look(l->holder) == 1 &&
	    (l = lbd_lock_get(d, path, method, &err)) == NULL)) {
		lbd_conn_error(c, id, err.code == LB_EINVAL ? LBP_EINVAL :
		    LBP_EINTERNAL, "%s", err.msg);
		return 0;
	}
	if (lbd_reader_of(l, c, kept_pid, tid) != NULL) {
		if (!shared)
			shared_held(c, id, path);
		else
			lbd_grant_reply(l->holder, c, id);  /* re-entrant */
		goto out;
	}
	if (((h = lbd_hold_find(l, c, kept_pid, tid)) != NULL &&
	    lbd_kept_recheck(c, h) == 0) ||
	    (kept_pid == 0 && lbd_orphan_adopt(c, l, tid) == 0)) {
		/* Re-entrant; or granted by the previous daemon, which died
		 * before its reply went out.  Never a silent change of
		 * mode from shared to exclusive (docs/SHARED.md). */
		if (l->holder->shared && !shared)
			shared_held(c, id, path);
		else
			lbd_grant_reply(l->holder, c, id);
		if (kept_pid == 0)
			lbd_lock_own_waits(l, c, tid);
		goto out;
	}
	/* Holds and waits alike: each wait may be granted later, and
	 * refusing it then would cost its place in the queue. */
	if (c->nholds + c->nreaders + c->nwaits >=
	    d->cfg.limits.holds_per_conn) {
		lbd_conn_error(c, id, LBP_ELIMIT, "holds_per_conn: this "
		    "connection holds %u locks and waits for %u",
		    c->nholds + c->nreaders, c->nwaits);
		goto out;
	}
	if (c->uid_conns == NULL ||
	    c->uid_conns->nlocks >= d->cfg.limits.locks_per_uid) {
		lbd_conn_error(c, id, LBP_ELIMIT, "locks_per_uid: uid %ld "
		    "holds or waits for %u locks", (long)c->uid,
		    c->uid_conns != NULL ? c->uid_conns->nlocks : 0);
		goto out;
	}
	/* Where c may not look, every answer is the same "cannot look at
	 * it": whether the lock is held must not show.  A free lock's try
	 * (as c) that grants or finds it held (EALREADY) has looked as c
	 * already; any other answer is checked.  (The limits above do not
	 * depend on the lock.) */
	if ((l->holder != NULL || !TAILQ_EMPTY(&l->waiters)) &&
	    !lbd_creds_may_look(c->creds, lbd_lock_file(l, file), &err)) {
		lbd_conn_error(c, id, LBP_EFAILED, "%s", err.msg);
		goto out;
	}
	/* A cluster lock is granted here only while this daemon holds its
	 * etcd key (cohort.h): until then the request waits in the queue,
	 * a try (timeout 0) too, for the key's take to say.  A request that
	 * cannot be granted takes no etcd key. */
	if (l->holder == NULL && TAILQ_EMPTY(&l->waiters) &&
	    !lbd_cohort_may_make(l, c, &err)) {
		lbd_creds_may_look(c->creds, lbd_lock_file(l, file), &err);
		lbd_conn_error(c, id, LBP_EFAILED, "%s", err.msg);
		goto out;
	}
	if ((gated = lbd_cohort_gate(l, &err)) == -1) {
		/* Where c may not look, the same answer as ever. */
		lbd_creds_may_look(c->creds, lbd_lock_file(l, file), &err);
		lbd_conn_error(c, id, err.code == LB_EINVAL ? LBP_EINVAL :
		    LBP_EFAILED, "%s", err.msg);
		goto out;
	}
	if (gated) {
		r = cluster_wait(l, c, id, kept_pid, tid, timeout, stale,
		    shared);
		goto out;
	}
	/* Past readers_per_lock, a request with a timeout waits in the
	 * queue for a reader to go, as behind any holder: refusing it would
	 * let one user's readers fail every other reader of the lock. */
	if (shared && lbd_reader_joinable(l) &&
	    (l->nreaders < d->cfg.limits.readers_per_lock ||
	    !(timeout > 0))) {
		r = 0;
		if (l->nreaders >= d->cfg.limits.readers_per_lock)
			lbd_conn_error(c, id, LBP_ELIMIT, "readers_per_lock: "
			    "%s is held shared by %u readers already", path,
			    l->nreaders + 1);
		else if ((r = lbd_reader_join(l, c, kept_pid, tid, id,
		    &err)) == 0)
			lbd_cohort_handed(l);   /* a grant, to the bound */
		else if (r == LB_ENOTLOCKED)
			/* Its lock file is not its reader's any more (broken
			 * as stale): that hold ends, and this request goes
			 * on as any to a lock held outside the broker. */
			lbd_readers_artefact_lost(l, err.msg);
		else if (r == LBD_JOIN_BUSY)
			;       /* cannot join now: waits, as for a holder */
		else if (r != 0)
			lbd_conn_error(c, id, LBP_EFAILED, "%s", err.msg);
		if (r != LB_ENOTLOCKED && r != LBD_JOIN_BUSY)
			goto out;
	}
	/* A shared request of an owner whose own artefact is there already
	 * (its in-process hold): adopted exclusive below, never taken as a
	 * fresh grant made shared under an owner that may write. */
	if (l->holder == NULL && TAILQ_EMPTY(&l->waiters) && shared &&
	    lbd_own_artefact_adopt(l, c, kept_pid, tid) == 0) {
		lbd_grant_reply(l->holder, c, id);
		lbd_lock_own_waits(l, c, tid);
		lbd_waits_recheck(c, tid);      /* a cycle it closes */
		goto out;
	}
	if (l->holder == NULL && TAILQ_EMPTY(&l->waiters)) {
		r = lbd_lock_try(l, c, kept_pid, tid, &err);
		if (r == LB_EALREADY && stale &&
		    stale_break_as(l, c) == 1)
			r = lbd_lock_try(l, c, kept_pid, tid, &err);
		if (r == 0) {
			lbd_hold_mode(l->holder, shared);
			lbd_grant_reply(l->holder, c, id);
			goto out;
		}
		if (r != LB_EALREADY) {
			lbd_creds_may_look(c->creds, lbd_lock_file(l, file),
			    &err);
			lbd_conn_error(c, id, LBP_EFAILED, "%s", err.msg);
			goto out;
		}
	}
	/* Its own artefact already (an in-process hold of its owner, or a
	 * grant the previous daemon did not tell of): adopted exclusive,
	 * whatever the mode asked, as for an owner that holds it exclusive
	 * (never made shared under an owner that may write). */
	if (r != LBD_JOIN_BUSY &&
	    lbd_own_artefact_adopt(l, c, kept_pid, tid) == 0) {
		lbd_grant_reply(l->holder, c, id);
		/* A hold given with no wait queued draws edges to its owner
		 * (the waiters queued for l): a cycle that closes, if it
		 * waits elsewhere, is refused there. */
		lbd_lock_own_waits(l, c, tid);
		lbd_waits_recheck(c, tid);
		goto out;
	}
	if (!(timeout > 0)) {
		lbd_conn_error(c, id, LBP_EALREADY, "%s is locked by another "
		    "owner", l->path);
		goto out;
	}
	if (c->nwaits >= d->cfg.limits.waits_per_conn) {
		lbd_conn_error(c, id, LBP_ELIMIT, "waits_per_conn: this "
		    "connection waits for %u locks", c->nwaits);
		goto out;
	}
	if ((shared ? lbd_wait_add_mode(l, c, id, kept_pid, tid, timeout, 1,
	    0) :
	    lbd_wait_add(l, c, id, kept_pid, tid, timeout, stale)) != 0) {
		lbd_conn_error(c, id, LBP_EINTERNAL, "out of memory");
		goto out;
	}
	/* Queued at the tail: a cycle of waits it closes fails it at
	 * once, the others in the cycle waiting on. */
	if (lbd_wait_deadlocked(TAILQ_LAST(&l->waiters, lbd_waitq)))
		goto out;
	if (l->holder == NULL || l->holder->lingering || r == LBD_JOIN_BUSY)
		lbd_lock_watch(l, TAILQ_FIRST(&l->waiters)->conn);
out:
	lbd_lock_put(l);
	return 0;
}

/*
 * lbd_release: RELEASE id of l by (c, tid), or of its hold kept for
 * kept_pid (not 0).  0; 1 when the lock was handed to a waiter whose
 * last step is owed (swap.c), which answers the RELEASE once the lock
 * file is no longer the releaser's; LBD_HOLD_LEFT_RELEASING when its
 * hold is left releasing, or kept for the previous run's readers
 * (lbd_reader_keep_for_readers), the lock file naming the releaser
 * still (to be answered OK pending=1); or an LB_E* code with err
 * filled: LB_ENOTLOCKED (nobody holds it), LB_ENOTMINE (another does,
 * inside or outside the broker), LB_EUNLOCK.  l may be freed on return.
 * What is not c's is looked at with c's credentials (the caller has
 * checked that c may look at l's artefact at all).
 */
int
lbd_release(struct lbd_conn *c, struct lbd_lock *l, pid_t kept_pid,
    pid_t tid, uint64_t id, struct lockfs_err *err)
{
	struct lockfs_lock fs;
	struct lbd_hold   *rd;
	int                r;

	if ((rd = lbd_reader_of(l, c, kept_pid, tid)) != NULL) {
		lbd_reader_end(rd);     /* a rider: nothing on disk */
		lbd_readers_serve(l);
		return 0;
	}
	if (lbd_hold_find(l, c, kept_pid, tid) != NULL ||
	    lbd_own_artefact_adopt(l, c, kept_pid, tid) == 0) {
		/* Held for the previous run's readers, the lock file
		 * naming the releaser still: OK pending=1, so that its
		 * library never takes that file for its own again. */
		if (lbd_reader_keep_for_readers(l, l->holder))
			return LBD_HOLD_LEFT_RELEASING;
		if ((r = lbd_hold_end(l, err)) == 1)
			lbd_swap_owe_release(l->holder, c, id);
		return r;
	}
	if (l->holder != NULL)
		r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked, but not by "
		    "you", l->path);
	else if ((r = lockfs_init(&fs, l->path, l->method, 0, err)) == 0) {
		if ((r = lbd_creds_enter(c->creds, err)) == 0) {
			r = lockfs_is_locked(&fs, err);
			lbd_creds_leave();
		}
		if (r == 1)
			r = lockfs_fail(err, LB_ENOTMINE, 0, "%s is locked "
			    "outside the broker", l->path);
		else if (r == 0)
			r = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s is not "
			    "locked", l->path);
		lockfs_fini(&fs);
	}
	lbd_lock_put(l);
	return r;
}

/*
 * lbd_break: BREAK of l by c: removes the artefact whoever holds it, if c
 * may (root, or the holder's user; for a lock held outside, the
 * artefact's owner: on Windows, where files name no owner, whoever the
 * removal, made as c, is allowed to).  1 when a lock was broken, 0 when none was held, or
 * an LB_E* code with err filled (a refusal is LB_EUNLOCK with sys_errno
 * EPERM).  l may be freed on return.
 */
int
lbd_break(struct lbd_conn *c, struct lbd_lock *l, struct lockfs_err *err)
{
	struct lockfs_holder fh;
	struct lockfs_lock   fs;
	struct lbd_hold     *h, *rd;
	uid_t                owner = (uid_t)-1, mine = c->uid;
	int                  r;

	lbd_swap_finish(l->holder);     /* a handoff to it, finished first */
	if ((r = lockfs_init(&fs, l->path, l->method, 0, err)) != 0)
		goto out;
	if (l->holder != NULL) {
		owner = l->holder->uid;
		/* A shared lock is every reader's: all of c's user. */
		TAILQ_FOREACH(rd, &l->readers, reader_entry)
			if (rd->uid != owner && c->uid != 0) {
				r = lockfs_fail(err, LB_EUNLOCK, EPERM, "%s is "
				    "held shared by uid %ld too", l->path,
				    (long)rd->uid);
				goto out;
			}
		r = 1;
	} else if ((r = lbd_creds_enter(c->creds, err)) == 0) {
		r = lockfs_holder(&fs, &fh, err);
		lbd_creds_leave();
		owner = fh.uid;
		mine = lbd_os_files_uid_of(c->uid);    /* as files say it */
	}
	if (r <= 0)
		goto out;       /* not held (0), or cannot tell */
	if (c->uid != 0 && owner != (uid_t)-1 && mine != owner) {
		r = lockfs_fail(err, LB_EUNLOCK, EPERM, "%s is held by uid %ld",
		    l->path, (long)owner);
		goto out;
	}
	if ((r = lbd_creds_enter(c->creds, err)) != 0)
		goto out;
	r = lockfs_break_lock(&fs, err);
	lbd_creds_leave();
	if (r != 0)
		goto out;
	if (l->holder != NULL) {
		h = lbd_hold_uninstall(l);
		log_info("%s: broken by pid %ld uid %ld; holder was pid %ld",
		    l->path, (long)c->pid, (long)c->uid,
		    (long)h->fs.owner.pid);
		lbd_hold_free(h);
	}
	r = 1;
out:
	lockfs_fini(&fs);
	lbd_lock_serve(l);      /* the waiters' turn, or l leaves */
	return r;
}
