/*
 * holds.c: the registry of the locks this process holds through the
 * broker (see holds.h for the calls).  All of it under lb__conn.mu.
 *
 * The registry (struct hold) is updated by the reader as replies arrive,
 * in the order the daemon sent them, so that a STATUS answered before a
 * grant cannot undo the grant.  A hold's states:
 *
 *      grant           connection lost, AUTO, no daemon within the
 *   ---------> LIVE --- fallback time: released in-process -----> DROPPED
 *               |  ^                                               |   ^
 *  RECLAIM      |  |  taken again in-process (pin, unpin ok)       |   |
 *  refused, or  |  +---------------------------- PINNED <---------+   |
 *  60 s without |                                   |   (pin)          |
 *  a daemon     v                                   +-- (unpin failed)-+
 *              LOST: reported once, on the owner's next call
 *
 *   DROPPED holds are settled with the next daemon (RECLAIM, then RELEASE),
 *   so that it does not keep a hold that ended while it was away.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "broker.h"
#include "holds.h"
#include "lockfs.h"
#include "owners.h"
#include "session.h"

TAILQ_HEAD(holds, hold);

/* A loss to tell the lost hook of (lb_set_lost_hook). */
struct tell {
	char         *path, *why;
	struct tell  *next;
};

/* The registry, under lb__conn.mu. */
static struct {
	struct holds list;
	unsigned     npinned;
	unsigned     nlost;             /* read without the lock: atomics */
	lb_lost_hook hook;              /* lb_set_lost_hook's */
	void        *hook_arg;
	struct tell *tell, **tell_tail; /* losses not told yet, in order */
	int          calling;           /* the hook runs (on caller) */
	pthread_t    caller;
} reg = { TAILQ_HEAD_INITIALIZER(reg.list), 0, 0, NULL, NULL, NULL,
    &reg.tell, 0, 0 };

/* lb__holds_reset: see holds.h. */
void
lb__holds_reset(void)
{
	struct tell *t;

	TAILQ_INIT(&reg.list);
	reg.npinned = 0;
	__atomic_store_n(&reg.nlost, 0, __ATOMIC_RELAXED);
	while ((t = reg.tell) != NULL) {        /* the parent's losses */
		reg.tell = t->next;
		free(t->path);
		free(t->why);
		free(t);
	}
	reg.tell_tail = &reg.tell;
	reg.calling = 0;        /* (the parent's caller is not here) */
}

/* lb__hold_find: see holds.h. */
struct hold *
lb__hold_find(const char *lock_file, unsigned method, pid_t tid)
{
	struct hold *h;

	TAILQ_FOREACH(h, &reg.list, entry)
		if (h->method == method && h->tid == tid &&
		    strcmp(h->lock_file, lock_file) == 0)
			return h;
	return NULL;
}

/* lb__hold_remove: see holds.h. */
void
lb__hold_remove(struct hold *h)
{
	TAILQ_REMOVE(&reg.list, h, entry);
	if (h->state == HOLD_LOST)
		__atomic_sub_fetch(&reg.nlost, 1, __ATOMIC_RELAXED);
	if (h->state == HOLD_PINNED && --reg.npinned == 0)
		pthread_cond_broadcast(&lb__conn.changed);
	free(h->path);
	free(h->lock_file);
	free(h->why);
	free(h);
}

/* Queues lost hold h's loss for the lost hook, when one is set (told by
 * lb__holds_tell); out of memory, it is not told (its next call still
 * reports it). */
static void
tell_queue(const struct hold *h)
{
	struct tell *t;

	if (reg.hook == NULL || (t = calloc(1, sizeof(*t))) == NULL)
		return;
	if ((t->path = strdup(h->path)) == NULL || (t->why = strdup(
	    h->why != NULL ? h->why : "lost the lock")) == NULL) {
		free(t->path);
		free(t);
		return;
	}
	*reg.tell_tail = t;
	reg.tell_tail = &t->next;
}

/* lb__holds_tell: see holds.h.  Each loss is told to the hook set when
 * its turn comes (none: not told), never to one removed before. */
void
lb__holds_tell(void)
{
	struct tell *t;
	lb_lost_hook hook;
	void        *arg;

	lb__conn_lock();
	while ((t = reg.tell) != NULL) {
		if ((reg.tell = t->next) == NULL)
			reg.tell_tail = &reg.tell;
		if ((hook = reg.hook) != NULL) {
			arg = reg.hook_arg;
			reg.calling = 1;
			reg.caller = pthread_self();
			lb__conn_unlock();
			hook(t->path, t->why, arg);
			lb__conn_lock();
			reg.calling = 0;
			pthread_cond_broadcast(&lb__conn.changed);
		}
		free(t->path);
		free(t->why);
		free(t);
	}
	lb__conn_unlock();
}

/* lb_set_lost_hook: see lockbroker.h.  Returns once no call of the hook
 * it replaces runs (but from the hook itself). */
void
lb_set_lost_hook(lb_lost_hook hook, void *arg)
{
	lb__conn_lock();
	reg.hook = hook;
	reg.hook_arg = arg;
	while (reg.calling && !pthread_equal(reg.caller, pthread_self()))
		pthread_cond_wait(&lb__conn.changed, &lb__conn.mu);
	lb__conn_unlock();
}

/* Moves h to state (a transition the drawing at the top allows; a new
 * grant may replace any state), keeping the counters. */
static void
hold_to(struct hold *h, enum hold_state state)
{
	assert(state == HOLD_LIVE ||
	    (state == HOLD_DROPPED &&
	    (h->state == HOLD_LIVE || h->state == HOLD_PINNED)) ||
	    (state == HOLD_PINNED && h->state == HOLD_DROPPED) ||
	    (state == HOLD_LOST && h->state == HOLD_LIVE));
	if (h->state == HOLD_LOST)
		__atomic_sub_fetch(&reg.nlost, 1, __ATOMIC_RELAXED);
	if (h->state == HOLD_PINNED && --reg.npinned == 0)
		pthread_cond_broadcast(&lb__conn.changed);
	if (state == HOLD_LOST)
		__atomic_add_fetch(&reg.nlost, 1, __ATOMIC_RELAXED);
	if (state == HOLD_PINNED)
		reg.npinned++;
	h->state = state;
	if (state == HOLD_LOST)
		tell_queue(h);
}

/* lb__hold_granted: see holds.h. */
void
lb__hold_granted(const struct lb__target *t, uint64_t token)
{
	struct hold *h = lb__hold_find(t->lock_file, t->method, t->tid);
	int          fresh = h == NULL || h->state != HOLD_LIVE ||
	    h->token != token;

	if (h == NULL) {
		if ((h = calloc(1, sizeof(*h))) == NULL ||
		    (h->path = strdup(t->path)) == NULL ||
		    (h->lock_file = strdup(t->lock_file)) == NULL) {
			/* Not registered (out of memory): the hold works,
			 * but is not reclaimed after a daemon restart. */
			if (h != NULL)
				free(h->path);
			free(h);
			return;
		}
		h->method = t->method;
		h->tid = t->tid;
		h->state = HOLD_LIVE;
		TAILQ_INSERT_TAIL(&reg.list, h, entry);
	}
	if (fresh)
		h->shared = t->shared;
	free(h->why);
	h->why = NULL;
	hold_to(h, HOLD_LIVE);
	h->token = token;
	h->broker_only = t->broker_only;
}

/* lb__hold_mode: see holds.h. */
void
lb__hold_mode(const char *lock_file, unsigned method, pid_t tid,
    int shared)
{
	struct hold *h = lb__hold_find(lock_file, method, tid);

	if (h != NULL && h->state == HOLD_LIVE)
		h->shared = shared;
}

/* lb__hold_ended: see holds.h. */
void
lb__hold_ended(const char *lock_file, unsigned method, pid_t tid)
{
	struct hold *h = lb__hold_find(lock_file, method, tid);

	if (h != NULL && h->state == HOLD_LIVE)
		lb__hold_remove(h);
}

/* lb__hold_ended_all: see holds.h. */
void
lb__hold_ended_all(const char *lock_file, unsigned method)
{
	struct hold *h, *next;

	for (h = TAILQ_FIRST(&reg.list); h != NULL; h = next) {
		next = TAILQ_NEXT(h, entry);
		if (h->method == method && h->state == HOLD_LIVE &&
		    strcmp(h->lock_file, lock_file) == 0)
			lb__hold_remove(h);
	}
}

/* lb__holds_drop: see holds.h. */
void
lb__holds_drop(const char *lock_file, unsigned method, pid_t tid, int all)
{
	struct hold *h;

	TAILQ_FOREACH(h, &reg.list, entry)
		if (h->state == HOLD_LIVE && h->method == method &&
		    strcmp(h->lock_file, lock_file) == 0 &&
		    (all || h->tid == tid))
			hold_to(h, HOLD_DROPPED);
}

/* lb__hold_unreclaimable: see holds.h. */
void
lb__hold_unreclaimable(struct hold *h, const char *reason)
{
	struct lockfs_lock fs;
	struct lockfs_err  err;
	struct lb__owner_key k = { h->lock_file, h->method, h->tid };
	int                ours = 0, removed = 0;
	char              *why = NULL;
	size_t             size;

	if (lockfs_init(&fs, h->path, h->method, h->tid, &err) == 0) {
		/* A pid file names only the process: it is h's only when no
		 * other owner here holds or asks for it. */
		ours = lockfs_i_am_locking(&fs, &err) == 1 &&
		    (h->method != LB_PIDFILE || !lb__owners_other(&k));
		if (ours && h->broker_only)
			removed = lockfs_release(&fs, &err) == 0;
		lockfs_fini(&fs);
	}
	if (ours && !h->broker_only)
		lb__hold_remove(h);
	else {
		size = strlen(h->path) + strlen(reason) + 128;
		if ((why = malloc(size)) != NULL)
			snprintf(why, size, "lost the lock on %s: %s%s",
			    h->path, reason, removed ?
			    "; its lock file was removed" : "");
		free(h->why);
		h->why = why;
		hold_to(h, HOLD_LOST);
	}
}

/* lb__hold_lost: see holds.h. */
void
lb__hold_lost(const char *path, unsigned method, pid_t tid,
    const char *reason)
{
	struct hold *h;
	char        *why;
	size_t       size;

	TAILQ_FOREACH(h, &reg.list, entry)
		if (h->state == HOLD_LIVE && h->method == method &&
		    h->tid == tid && strcmp(h->path, path) == 0)
			break;
	if (h == NULL)
		return;
	size = strlen(path) + strlen(reason) + 64;
	if ((why = malloc(size)) != NULL)
		snprintf(why, size, "lost the lock on %s: %s", path, reason);
	free(h->why);
	h->why = why;
	hold_to(h, HOLD_LOST);
}

/* lb__holds_wait_unpinned: see holds.h. */
void
lb__holds_wait_unpinned(void)
{
	while (reg.npinned > 0)
		pthread_cond_wait(&lb__conn.changed, &lb__conn.mu);
}

/* lb__holds_unsettled: see holds.h. */
struct hold *
lb__holds_unsettled(uint64_t round)
{
	struct hold *h;

	TAILQ_FOREACH(h, &reg.list, entry)
		if ((h->state == HOLD_LIVE || h->state == HOLD_DROPPED) &&
		    h->round != round)
			return h;
	return NULL;
}

/* lb__holds_give_up: see holds.h. */
void
lb__holds_give_up(const char *reason)
{
	struct hold *h, *next;

	for (h = TAILQ_FIRST(&reg.list); h != NULL; h = next) {
		next = TAILQ_NEXT(h, entry);
		if (h->state == HOLD_LIVE)
			lb__hold_unreclaimable(h, reason);
		else if (h->state != HOLD_LOST)
			lb__hold_remove(h);
	}
}

/* ------------------------------------------------------------------ */
/* The calls lock.c makes.                                             */

/* lb__holds_live: see holds.h. */
int
lb__holds_live(const struct lb__target *t, uint64_t *token)
{
	struct hold *h;
	int          r = 0;

	lb__conn_lock();
	h = lb__hold_find(t->lock_file, t->method, t->tid);
	if (h != NULL && h->state == HOLD_LIVE) {
		if (token != NULL)
			*token = h->token;
		r = 1;
	}
	lb__conn_unlock();
	return r;
}

/* lb__holds_shared: see holds.h. */
int
lb__holds_shared(const struct lb__target *t)
{
	struct hold *h;
	int          r;

	lb__conn_lock();
	h = lb__hold_find(t->lock_file, t->method, t->tid);
	r = h != NULL && h->state != HOLD_LOST && h->shared;
	lb__conn_unlock();
	return r;
}

/* lb__holds_take_lost: see holds.h.  Cheap when nothing was lost. */
int
lb__holds_take_lost(const struct lb__target *t, struct lockfs_err *err)
{
	struct hold *h;
	int          r = 0;

	if (__atomic_load_n(&reg.nlost, __ATOMIC_RELAXED) == 0)
		goto out;
	lb__conn_lock();
	h = lb__hold_find(t->lock_file, t->method, t->tid);
	if (h != NULL && h->state == HOLD_LOST) {
		r = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s", h->why != NULL ?
		    h->why : "lost the lock: the broker went away");
		lb__hold_remove(h);
	}
	lb__conn_unlock();
out:
	return r;
}

/* lb__holds_pin: see holds.h.  1: pinned (call lb__holds_unpin); 0:
 * nothing to pin, go ahead; LB_EALREADY: not now. */
int
lb__holds_pin(const struct lb__target *t)
{
	struct hold *h;
	int          r = 0;

	lb__conn_lock();
	h = lb__hold_find(t->lock_file, t->method, t->tid);
	if (h == NULL || h->state == HOLD_LIVE || h->state == HOLD_LOST)
		r = 0;
	else if (lb__conn.reclaiming || h->state == HOLD_PINNED)
		r = LB_EALREADY;
	else {
		hold_to(h, HOLD_PINNED);
		r = 1;
	}
	lb__conn_unlock();
	return r;
}

/* lb__holds_unpin: see holds.h. */
void
lb__holds_unpin(const struct lb__target *t, int acquired)
{
	struct hold *h;

	lb__conn_lock();
	h = lb__hold_find(t->lock_file, t->method, t->tid);
	if (h != NULL && h->state == HOLD_PINNED)
		hold_to(h, acquired ? HOLD_LIVE : HOLD_DROPPED);
	lb__conn_unlock();
}
