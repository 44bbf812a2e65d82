/*
 * wait.h: ACQUIREs waiting in a lock's queue (wait.c): queued with a
 * timer for their timeout, ended by a grant (lock.c, hold.c), by their
 * timeout, by CANCEL, by their connection's close or by the daemon's
 * stop.
 */
#ifndef LBD_WAIT_H
#define LBD_WAIT_H

#include "daemon.h"

/* An ACQUIRE waiting in its lock's FIFO queue (l->waiters), listed in its
 * connection's waits. */
struct lbd_wait {
	struct lbd_lock         *lock;
	struct lbd_conn         *conn;
	uint64_t                 id;        /* the ACQUIRE's request id */
	struct lbd_reqid         inuse;     /* id, in conn's ids in use */
	uint64_t                 deadline;  /* uv_hrtime(), with timer */
	pid_t                    tid;
	pid_t                    kept_pid;  /* 0, or the process to keep the
	                                       hold for (ACQUIRE pid=) */
	unsigned long long       kept_start; /* and its start time then: a
	                                       process that runs with that
	                                       pid later is another */
	int                      stale;     /* stale=1: break a provably dead
	                                       holder's artefact */
	int                      shared;    /* mode=shared */
	int                      cluster_try; /* a try (timeout 0) of a
	                                       cluster lock, waiting for its
	                                       etcd key's take (cohort.c) */
	struct lbd_set          *set;       /* a set's member (set.c), or
	                                       NULL */
	int                      upgrade;   /* an UPGRADE of the owner's shared
	                                       hold, at the queue's head
	                                       (readers.c) */
	uv_timer_t              *timer;     /* NULL: waits without deadline */
	uint64_t                 stamp;     /* the last deadlock search that
	                                       looked at it (deadlock.c) */
	struct lbd_wait         *deadlock_next; /* its owner's next wait, in
	                                       that search */
	uint64_t                 room_stamp; /* the search that placed it in
	                                       its lock's room (deadlock.c) */
	size_t                   room_item; /* its place's item there */
	TAILQ_ENTRY(lbd_wait)    lock_entry;
	LIST_ENTRY(lbd_wait)     conn_entry;
};
/* lbd_wait_deadlocked: w, just queued, closes a cycle of waits (the
 * wait-for graph, deadlock.c): removes it, answers its request EDEADLK
 * naming the cycle (EFAILED to a version-1 session) and logs it: 1.
 * Else 0, w queued still. */
int  lbd_wait_deadlocked(struct lbd_wait *w);

/* lbd_waits_recheck: owner (c, tid) has just been given a hold (one of
 * the previous run taken back, its own artefact adopted, a rider's hold
 * reclaimed), which draws edges to it with no wait queued: when it waits
 * for a lock already and that now closes a cycle of waits, the wait the
 * cycle leaves it by (not its newest: that may be outside the cycle) is
 * refused EDEADLK as lbd_wait_deadlocked refuses one, and its lock
 * served (as after a CANCEL; that lock may be freed); again, until no
 * cycle is left. */
void lbd_waits_recheck(struct lbd_conn *c, pid_t tid);

/* lbd_wait_current: 1 when w is not for a kept hold, or the process it
 * keeps the hold for is still the one that ran when w was queued (same
 * pid, same start time); 0 when that process has exited (its pid maybe
 * another's by now). */
int  lbd_wait_current(const struct lbd_wait *w);

/* lbd_wait_add: queues c's ACQUIRE id of l (thread tid, or kept for
 * kept_pid; stale as asked) at the tail of l's waiters, with a timer for
 * timeout seconds (none from LBP_TIMEOUT_FOREVER on).  The caller checked
 * the limits.  0, or -1 when out of memory (nothing queued; the caller
 * replies). */
int  lbd_wait_add(struct lbd_lock *l, struct lbd_conn *c, uint64_t id,
         pid_t kept_pid, pid_t tid, double timeout, int stale);

/* lbd_wait_add_mode: lbd_wait_add with the request's mode: shared (an
 * ACQUIRE mode=shared, at the tail; kept for kept_pid when not 0) or
 * upgrade (an UPGRADE, at the head: its owner holds the lock already). */
int  lbd_wait_add_mode(struct lbd_lock *l, struct lbd_conn *c, uint64_t id,
         pid_t kept_pid, pid_t tid, double timeout, int shared,
         int upgrade);

/* lbd_wait_remove: takes w out of its lock's queue and its connection's
 * list, uncounts it and frees it; the caller then lets the lock go
 * (lbd_lock_put, lbd_lock_serve). */
void lbd_wait_remove(struct lbd_wait *w);

/* lbd_cancel: ends c's waiting ACQUIRE target with ECANCELED.  0, or -1
 * when c has no such waiting request. */
int  lbd_cancel(struct lbd_conn *c, uint64_t target);

/* lbd_conn_drop_all: c is going away: cancels its waits silently; with
 * keep_holds (the daemon stops) detaches its holds, artefacts and
 * records kept; else leaves them for lbd_conn_release_some. */
void lbd_conn_drop_all(struct lbd_conn *c, int keep_holds);

/* lbd_locks_shutdown: the daemon stops: every waiter gets ESHUTDOWN;
 * holds stay, releasing ones recorded as such, for the next daemon. */
void lbd_locks_shutdown(struct lbd *d);

#endif
