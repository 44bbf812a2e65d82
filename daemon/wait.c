/*
 * wait.c: ACQUIREs waiting in a lock's queue (struct lbd_wait, FIFO in
 * l->waiters, listed in their connection's waits): queued with a timer
 * for their timeout, and ended by a grant (lbd_lock_serve, a handoff in
 * lbd_hold_end), by their timeout (ETIMEOUT), by CANCEL (ECANCELED), by
 * their connection's close (silently) or by the daemon's stop
 * (ESHUTDOWN).  A wait counts in its connection's waits and its user's
 * locks, and keeps its request id in use (reqids.c), until it ends.
 */
#include <math.h>
#include <stdlib.h>

#include "cohort.h"
#include "conn.h"
#include "daemon.h"
#include "deadlock.h"
#include "hold.h"
#include "lock.h"
#include "locktable.h"
#include "log.h"
#include "reply.h"
#include "reqids.h"
#include "readers.h"
#include "set.h"
#include "wait.h"

/* Frees a timer handle once libuv is done with it. */
static void
timer_free(uv_handle_t *h)
{
	free(h);
}

/* lbd_wait_remove: takes w out of its lock's queue and its connection's
 * list, and frees it; the caller then lets the lock go (lbd_lock_put,
 * lbd_lock_serve), which may free it. */
void
lbd_wait_remove(struct lbd_wait *w)
{
	struct lbd_lock *l = w->lock;

	if (w->set != NULL)
		lbd_set_wait_gone(w);
	TAILQ_REMOVE(&l->waiters, w, lock_entry);
	l->nwaiters--;
	LIST_REMOVE(w, conn_entry);
	w->conn->nwaits--;
	lbd_reqid_del(w->conn, &w->inuse);
	if (w->conn->uid_conns != NULL)
		w->conn->uid_conns->nlocks--;
	if (w->timer != NULL)
		uv_close((uv_handle_t *)w->timer, timer_free);
	free(w);
}

/* Refuses w, which closes the cycle of waits why: logged (bounded per
 * user and interval, as refused connections are), answered EDEADLK
 * (EFAILED to a version-1 session, which knows no EDEADLK) and removed;
 * the caller serves its lock. */
static void
wait_refuse(struct lbd_wait *w, const char *why)
{
	struct lbd_conn *c = w->conn;
	struct lbd_lock *l = w->lock;
	uint64_t         id = w->id;

	if (lbd_lograte_take(&c->d->deadlocks, (long)c->uid))
		log_info("%s: pid %ld's %s refused: a cycle of waits: %s",
		    l->path, (long)c->pid, w->upgrade ? "UPGRADE" :
		    "ACQUIRE", why);
	lbd_wait_remove(w);
	lbd_conn_error(c, id, c->version >= 2 ? LBP_EDEADLK : LBP_EFAILED,
	    "waiting for %s would deadlock: %s", l->path, why);
}

/* lbd_wait_deadlocked: see wait.h. */
int
lbd_wait_deadlocked(struct lbd_wait *w)
{
	struct lbd_wait *first;
	char             why[LBP_LINE_MAX];

	/* A wait kept for a process is that process's: what else it waits
	 * for is not known (a path's end, never a cycle drawn). */
	if (w->kept_pid != 0)
		return 0;
	/* An UPGRADE goes to the head: those behind it now wait for its
	 * owner, so a cycle may leave the owner by any of its waits; the
	 * UPGRADE, which closed it, is refused. */
	if (!lbd_deadlock_find(w->conn->d, w->conn, w->tid, w->upgrade ?
	    NULL : w, &first, why, sizeof(why)))
		return 0;
	wait_refuse(w, why);
	return 1;
}

/* lbd_waits_recheck: see wait.h. */
void
lbd_waits_recheck(struct lbd_conn *c, pid_t tid)
{
	struct lbd_wait *first;
	struct lbd_lock *l;
	char             why[LBP_LINE_MAX];

	/* Each refusal breaks the cycles through its wait: searched again
	 * until none is left (a hold can close several at once). */
	while (lbd_deadlock_find(c->d, c, tid, NULL, &first, why,
	    sizeof(why))) {
		l = first->lock;
		if (first->set != NULL) {       /* the whole set refused */
			lbd_set_refuse(first, NULL, LBP_EDEADLK, l->path,
			    "waiting for %s would deadlock: %s", l->path, why);
			continue;
		}
		wait_refuse(first, why);
		lbd_readers_serve(l);   /* readers it held back: their turn */
		lbd_lock_put(l);
	}
}

/*
 * How long w's timer is to run (ms) to end no earlier than its deadline.
 * The loop's clock counts whole milliseconds, truncated, and is read once
 * per iteration: a timer may fire up to a millisecond (more with a coarse
 * clock) before its time on the precise one, hence the extra one here and
 * the look at the precise clock when it fires.
 */
static uint64_t
wait_ms(const struct lbd_wait *w)
{
	uint64_t now = uv_hrtime();

	if (now >= w->deadline)
		return 0;
	return (w->deadline - now + 999999) / 1000000 + 1;
}

/* A waiter's timer fired: ETIMEOUT once its deadline has passed on the
 * precise monotonic clock, else the timer runs on for the rest. */
static void
wait_expired(uv_timer_t *t)
{
	struct lbd_wait *w = t->data;
	struct lbd_lock *l = w->lock;

	if (uv_hrtime() < w->deadline) {
		uv_timer_start(t, wait_expired, wait_ms(w), 0);
		return;
	}
	if (w->set != NULL) {
		lbd_set_expired(w);
		return;
	}
	if (w->cluster_try)     /* (a try has no timeout of its own) */
		lbd_conn_error(w->conn, w->id, LBP_EFAILED, "%s is a cluster "
		    "lock, and etcd did not say within %d s whether another "
		    "host holds it", l->path, LBD_COHORT_TRY_S);
	else
		lbd_conn_error(w->conn, w->id, LBP_ETIMEOUT, "timed out "
		    "waiting for %s", l->path);
	lbd_wait_remove(w);
	lbd_readers_serve(l);   /* readers it held back: their turn */
	lbd_lock_put(l);
}

/* lbd_wait_current: see wait.h.  A process is its pid and its start
 * time, never the pid alone. */
int
lbd_wait_current(const struct lbd_wait *w)
{
	unsigned long long start;

	return w->kept_pid == 0 || (lockfs_os_start_time(w->kept_pid,
	    &start) == 0 && start == w->kept_start);
}

static int wait_add(struct lbd_lock *l, struct lbd_conn *c, uint64_t id,
    pid_t kept_pid, pid_t tid, double timeout, int stale, int shared,
    int upgrade);

/*
 * lbd_wait_add: queues c's ACQUIRE id of l, for thread tid (or kept for
 * kept_pid, not 0; stale as asked), at the tail of l's waiters: counted
 * in c's waits and its user's locks, its id in use, with a timer that
 * ends it with ETIMEOUT after timeout seconds (no timer: timeout is
 * LBP_TIMEOUT_FOREVER or more).  The caller checked the limits.  0, or -1
 * when memory is short (nothing queued; the caller replies).
 */
int
lbd_wait_add(struct lbd_lock *l, struct lbd_conn *c, uint64_t id,
    pid_t kept_pid, pid_t tid, double timeout, int stale)
{
	return wait_add(l, c, id, kept_pid, tid, timeout, stale, 0, 0);
}

/* lbd_wait_add_mode: see wait.h. */
int
lbd_wait_add_mode(struct lbd_lock *l, struct lbd_conn *c, uint64_t id,
    pid_t kept_pid, pid_t tid, double timeout, int shared, int upgrade)
{
	return wait_add(l, c, id, kept_pid, tid, timeout, 0, shared, upgrade);
}

/* lbd_wait_add and lbd_wait_add_mode: an UPGRADE goes to the head. */
static int
wait_add(struct lbd_lock *l, struct lbd_conn *c, uint64_t id,
    pid_t kept_pid, pid_t tid, double timeout, int stale, int shared,
    int upgrade)
{
	struct lbd      *d = c->d;
	struct lbd_wait *w;

	/* A timeout too long for the clock (LBP_TIMEOUT_FOREVER) is
	 * forever; a finite one ends at its deadline, never before: a wait
	 * whose timer cannot be had is refused, never left without one. */
	if ((w = calloc(1, sizeof(*w))) != NULL &&
	    timeout < LBP_TIMEOUT_FOREVER &&
	    (w->timer = malloc(sizeof(*w->timer))) == NULL) {
		free(w);
		w = NULL;
	}
	if (w != NULL) {
		w->inuse.id = id;
		if (lbd_reqid_add(c, &w->inuse) != 0) {
			free(w->timer);
			free(w);
			w = NULL;
		}
	}
	if (w == NULL)
		return -1;
	w->lock = l;
	w->conn = c;
	w->id = id;
	w->tid = tid;
	w->kept_pid = kept_pid;
	if (kept_pid != 0 && lockfs_os_start_time(kept_pid,
	    &w->kept_start) != 0)
		w->kept_start = 0;
	w->stale = stale;
	w->shared = shared;
	w->upgrade = upgrade;
	if (w->timer != NULL) {
		w->deadline = uv_hrtime() + (uint64_t)ceil(timeout * 1e9);
		uv_timer_init(d->loop, w->timer);
		w->timer->data = w;
		uv_timer_start(w->timer, wait_expired, wait_ms(w), 0);
	}
	if (upgrade)
		TAILQ_INSERT_HEAD(&l->waiters, w, lock_entry);
	else
		TAILQ_INSERT_TAIL(&l->waiters, w, lock_entry);
	l->nwaiters++;
	LIST_INSERT_HEAD(&c->waits, w, conn_entry);
	c->nwaits++;
	c->uid_conns->nlocks++;
	return 0;
}

/* lbd_cancel: ends c's waiting ACQUIRE target with ECANCELED.  0, or -1
 * when c has no such waiting request. */
int
lbd_cancel(struct lbd_conn *c, uint64_t target)
{
	struct lbd_wait *w;
	struct lbd_lock *l;

	LIST_FOREACH(w, &c->waits, conn_entry)
		if (w->id == target)
			break;
	if (w == NULL)
		return lbd_set_cancel(c, target);       /* being collected? */
	if (w->set != NULL) {           /* every member of its set */
		lbd_set_canceled(w);
		return 0;
	}
	l = w->lock;
	lbd_conn_error(c, target, LBP_ECANCELED, "canceled");
	lbd_wait_remove(w);
	lbd_readers_serve(l);   /* readers it held back: their turn */
	lbd_lock_put(l);
	return 0;
}

/*
 * lbd_conn_drop_all: c is going away: cancels its waits (silently: there
 * is nobody to tell); with keep_holds (the daemon is stopping), forgets
 * its holds but leaves their artefacts and records for the holders to
 * reclaim from the next daemon; else leaves them, held by c, for
 * lbd_conn_release_some.
 */
void
lbd_conn_drop_all(struct lbd_conn *c, int keep_holds)
{
	struct lbd_wait  *w;
	struct lbd_lock  *l;

	lbd_conn_sets_drop(c);          /* their waits with them */
	while ((w = LIST_FIRST(&c->waits)) != NULL) {
		l = w->lock;
		lbd_wait_remove(w);
		lbd_lock_serve(l);      /* the new head may be served now */
	}
	if (keep_holds)                 /* markers kept, to reclaim */
		lbd_conn_readers_detach(c);
	else
		lbd_conn_readers_drop(c);
	while (keep_holds && !LIST_EMPTY(&c->holds))
		lbd_hold_detach(LIST_FIRST(&c->holds)->lock);
}

/* lbd_locks_shutdown: the daemon stops: every waiter gets ESHUTDOWN.
 * Holds stay (their artefacts and records too), for the holders to reclaim
 * from the next daemon. */
void
lbd_locks_shutdown(struct lbd *d)
{
	struct lbd_conn *c;
	struct lbd_wait *w;
	struct lbd_lock *l;

	TAILQ_FOREACH(c, &d->conns, entry)
		while ((w = LIST_FIRST(&c->waits)) != NULL) {
			l = w->lock;
			lbd_conn_error(c, w->id, LBP_ESHUTDOWN,
			    "the daemon is stopping");
			lbd_wait_remove(w);
			lbd_lock_put(l);
		}
	/* Releasing holds stay recorded, as releasing, for the next daemon
	 * to end (reconcile.c): never its holder's again. */
	while (!LIST_EMPTY(&d->releasing))
		lbd_hold_detach(LIST_FIRST(&d->releasing)->lock);
}
