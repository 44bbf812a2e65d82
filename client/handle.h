/*
 * handle.h: what the library's other files may see of an lb_lock handle
 * (lock.c owns it).  Internal: not installed.
 *
 * The calls that act for another process (kept.c) work on the handle's
 * lock, not on its owner: they read the lock and the transport, which do
 * not change during the handle's life, and record a failure's reason for
 * lb_lock_error.
 */
#ifndef LB_HANDLE_H
#define LB_HANDLE_H

#include "lockbroker.h"
#include "lockfs.h"
#include "broker.h"

/* A handle's lock, borrowed: valid until lb_lock_free. */
struct lb__handle_view {
	const char        *given;       /* the path as given */
	const char        *path;        /* absolute, normalised */
	unsigned           method;      /* LB_LINK ... LB_SQLITE */
	const char        *lock_file;   /* the artefact: PATH.lock, or PATH
	                                   (pidfile); the sqlite method's
	                                   row names it */
	const char        *dir;         /* the directory holding it */
	const char        *db;          /* sqlite method: the database file;
	                                   else NULL */
	enum lb__transport transport;   /* from the flags, else the
	                                   environment (lb_lock_new) */
};

/* lb__lock_view: fills *v with lock's lock and transport.  Never fails;
 * lock is not NULL. */
void lb__lock_view(lb_lock *lock, struct lb__handle_view *v);

/* lb__lock_failed: records err as the reason of the last failing call on
 * lock when r < 0 (lb_lock_error tells it); returns r. */
int lb__lock_failed(lb_lock *lock, int r, const struct lockfs_err *err);

struct lb__wait;        /* cancel.h */
struct lb__cancel;

/* lb__lock_cancel: lock's cancel state (cancel.h), for a call that is in
 * progress on it without an lb_acquire (lb_acquire_all). */
struct lb__cancel *lb__lock_cancel(lb_lock *lock);

/*
 * lb__acquire_member: lb_acquire(lock, timeout) for lb_acquire_all: also
 * ended, as by lb_lock_cancel, when any of the nset waits in set (begun
 * on the other handles of the set) is canceled.  *fresh is set on a
 * grant: 1 when the owner held the lock not before (lb_acquire_fresh).
 */
int lb__acquire_member(lb_lock *lock, double timeout,
    const struct lb__wait *set, size_t nset, int *fresh);

/*
 * lb__acquire_set: lb_acquire_all's locks (n handles, taken in the order
 * order gives, none named twice) as one set of the daemon's (protocol
 * version 3: granted together, FIFO with single acquires; set.c in the
 * daemon), with timeout; waits ended as lb__acquire_member's by any of
 * the waits in set.  0 with every lock held; LB__FALLBACK with none held
 * when the daemon cannot take it as one (none answers, an older one, a
 * handle in-process, handles of several owners or stale settings: the
 * caller does it lock by lock); else the failure, recorded on the lock it
 * is about (*failed its index), with none held.
 */
int lb__acquire_set(lb_lock **locks, size_t n, const size_t *order,
    double timeout, const struct lb__wait *set, size_t *failed);

#endif /* LB_HANDLE_H */
