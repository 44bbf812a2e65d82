/*
 * cancel.h: how a waiting acquire is ended from outside (cancel.c):
 * lb_lock_cancel from any thread, or the handle's interrupt hook, which
 * the waiting thread itself calls.  Internal: not installed.
 *
 * Each handle has one struct lb__cancel; each lb_acquire on it has one
 * struct lb__wait, from lb__wait_begin to lb__wait_end, which the wait
 * paths ask whether to stop: the in-process poll between its tries
 * (lock.c), the broker's wait for the daemon's grant (broker.c), which
 * then sends CANCEL and waits for the daemon's word on it.
 *
 *   lb_lock_cancel:  epoch++, then every waiter on the connection is woken
 *                    (lb__broker_wake) to look again.  An acquire is
 *                    canceled when the epoch moved since it began: so a
 *                    cancel ends every acquire in progress on the handle
 *                    at the time of the call, and none begun after it.
 *   interrupt hook:  called by the waiting thread, with no lock of the
 *                    library held, once the acquire has waited
 *                    LB__INTERRUPT_EVERY_S and again every
 *                    LB__INTERRUPT_EVERY_S while it waits; non-zero ends
 *                    it.  An acquire that does not wait never calls it.
 */
#ifndef LB_CANCEL_H
#define LB_CANCEL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "lockfs.h"

/* How often the interrupt hook is called while an acquire waits. */
#define LB__INTERRUPT_EVERY_S 0.05

/* A handle's: what lb_lock_cancel and lb_lock_set_interrupt set. */
struct lb__cancel {
	pthread_mutex_t mu;             /* guards what follows but epoch's
	                                   reads, which are atomic */
	uint64_t        epoch;          /* lb_lock_cancel calls so far */
	unsigned        acquiring;      /* lb_acquire calls in progress */
	int           (*check)(void *); /* the interrupt hook, or NULL */
	void           *arg;            /* its argument */
};

/* One acquire's: its view of its handle's struct lb__cancel. */
struct lb__wait {
	struct lb__cancel *c;
	uint64_t           epoch;       /* c->epoch when the acquire began */
	int              (*check)(void *); /* c's hook when it began */
	void              *arg;
	double             next_check;  /* monotonic time the hook is due */
	int                why;         /* 0 goes on; 1 canceled; 2 the hook
	                                   said stop (sticky) */
	const struct lb__wait *set;     /* lb_acquire_all: the waits begun on
	                                   every handle of the set, whose
	                                   cancel ends this one too; or NULL */
	size_t             nset;        /* how many */
};

/* lb__cancel_init, lb__cancel_fini: make and unmake c (no hook, epoch
 * 0).  Never fail. */
void lb__cancel_init(struct lb__cancel *c);
void lb__cancel_fini(struct lb__cancel *c);

/* lb__cancel_remake: c in a forked child, before any other use there:
 * its mutex made anew (a thread of the parent may have held it) and no
 * acquire in progress (the parent's are not the child's); the epoch and
 * the hook stay.  Never fails. */
void lb__cancel_remake(struct lb__cancel *c);

/* lb__cancel_request: lb_lock_cancel's work: cancels every acquire in
 * progress on c and wakes the broker's waiters.  1 when one was in
 * progress, else 0.  Thread-safe; blocks only on the library's mutexes. */
int  lb__cancel_request(struct lb__cancel *c);

/* lb__cancel_set_interrupt: c's hook becomes check(arg) (NULL: none) for
 * the acquires begun after the call. */
void lb__cancel_set_interrupt(struct lb__cancel *c, int (*check)(void *),
    void *arg);

/* lb__wait_begin: w is an acquire on c from now (counted in progress),
 * until lb__wait_end(w); no set (the caller may set w->set, w->nset
 * next). */
void lb__wait_begin(struct lb__wait *w, struct lb__cancel *c);
void lb__wait_end(struct lb__wait *w);

/* lb__wait_canceled: 1 when lb_lock_cancel has ended w, or one of the
 * waits of its set (or the hook has already said stop), else 0.  Never calls the hook, never blocks: may
 * be called under any mutex. */
int  lb__wait_canceled(struct lb__wait *w);

/* lb__wait_stopped: 1 when w is to end: canceled, or the hook, called
 * now when it is due, says stop (then for good).  Call it with no mutex
 * of the library held: the hook is the caller's code. */
int  lb__wait_stopped(struct lb__wait *w);

/* lb__wait_due: the monotonic time the hook is next due: a wait that
 * sleeps longer wakes then to call lb__wait_stopped; INFINITY when there
 * is no hook. */
double lb__wait_due(const struct lb__wait *w);

/* lb__wait_fail: the failure of an acquire of path that w ended:
 * LB_ECANCELED, with err saying why (lb_lock_cancel, or the hook). */
int  lb__wait_fail(const struct lb__wait *w, const char *path,
    struct lockfs_err *err);

#endif /* LB_CANCEL_H */
