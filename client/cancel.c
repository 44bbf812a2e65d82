/*
 * cancel.c: ending a waiting acquire from outside (see cancel.h): a
 * handle's cancel epoch and interrupt hook, and each acquire's view of
 * them.
 */
#include <math.h>
#include <pthread.h>

#include "broker.h"
#include "cancel.h"
#include "lockfs.h"

/* lb__cancel_init: see cancel.h. */
void
lb__cancel_init(struct lb__cancel *c)
{
	pthread_mutex_init(&c->mu, NULL);
	c->epoch = 0;
	c->acquiring = 0;
	c->check = NULL;
	c->arg = NULL;
}

/* lb__cancel_fini: see cancel.h. */
void
lb__cancel_fini(struct lb__cancel *c)
{
	pthread_mutex_destroy(&c->mu);
}

/* lb__cancel_remake: see cancel.h. */
void
lb__cancel_remake(struct lb__cancel *c)
{
	pthread_mutex_init(&c->mu, NULL);
	c->acquiring = 0;
}

/* lb__cancel_request: see cancel.h.  The epoch moves before the waiters
 * are woken: a waiter that looked before the move is asleep on its
 * condition variable by then (it looks under the connection's mutex,
 * which the wake takes), and one that looks after sees it. */
int
lb__cancel_request(struct lb__cancel *c)
{
	int r;

	pthread_mutex_lock(&c->mu);
	__atomic_add_fetch(&c->epoch, 1, __ATOMIC_SEQ_CST);
	r = c->acquiring > 0;
	pthread_mutex_unlock(&c->mu);
	lb__broker_wake();
	return r;
}

/* lb__cancel_set_interrupt: see cancel.h. */
void
lb__cancel_set_interrupt(struct lb__cancel *c, int (*check)(void *),
    void *arg)
{
	pthread_mutex_lock(&c->mu);
	c->check = check;
	c->arg = check != NULL ? arg : NULL;
	pthread_mutex_unlock(&c->mu);
}

/* lb__wait_begin: see cancel.h. */
void
lb__wait_begin(struct lb__wait *w, struct lb__cancel *c)
{
	pthread_mutex_lock(&c->mu);
	w->c = c;
	w->epoch = __atomic_load_n(&c->epoch, __ATOMIC_SEQ_CST);
	w->check = c->check;
	w->arg = c->arg;
	c->acquiring++;
	pthread_mutex_unlock(&c->mu);
	w->next_check = lockfs_now() + LB__INTERRUPT_EVERY_S;
	w->why = 0;
	w->set = NULL;
	w->nset = 0;
}

/* lb__wait_end: see cancel.h. */
void
lb__wait_end(struct lb__wait *w)
{
	pthread_mutex_lock(&w->c->mu);
	w->c->acquiring--;
	pthread_mutex_unlock(&w->c->mu);
}

/* lb__wait_canceled: see cancel.h. */
int
lb__wait_canceled(struct lb__wait *w)
{
	size_t i;

	if (w->why == 0 &&
	    __atomic_load_n(&w->c->epoch, __ATOMIC_SEQ_CST) != w->epoch)
		w->why = 1;
	for (i = 0; w->why == 0 && i < w->nset; i++) {
		if (__atomic_load_n(&w->set[i].c->epoch, __ATOMIC_SEQ_CST) !=
		    w->set[i].epoch)
			w->why = 1;
	}
	return w->why != 0;
}

/* lb__wait_stopped: see cancel.h. */
int
lb__wait_stopped(struct lb__wait *w)
{
	if (lb__wait_canceled(w) || w->check == NULL)
		goto out;
	if (lockfs_now() < w->next_check)
		goto out;
	if (w->check(w->arg) != 0)
		w->why = 2;
	w->next_check = lockfs_now() + LB__INTERRUPT_EVERY_S;
out:
	return w->why != 0;
}

/* lb__wait_due: see cancel.h. */
double
lb__wait_due(const struct lb__wait *w)
{
	return w->check != NULL && w->why == 0 ? w->next_check : INFINITY;
}

/* lb__wait_fail: see cancel.h. */
int
lb__wait_fail(const struct lb__wait *w, const char *path,
    struct lockfs_err *err)
{
	return lockfs_fail(err, LB_ECANCELED, 0, "waiting for %s was %s",
	    path, w->why == 2 ? "interrupted by its interrupt hook" :
	    "canceled by lb_lock_cancel");
}
