/*
 * ending.c: the holds whose holder has gone, ended a turn at a time.
 *
 * A closed connection's holds (conn.c), the kept holds and orphans of a
 * process that exited (pidwatch.c) and the orphans whose grace period is
 * over (reconcile.c) are each ended (handed to their next waiter, or
 * released) at the end of the loop iterations, about turn_us of them per
 * iteration in all, one at least: a holder that goes with thousands of
 * holds does not stall everyone for all of them.  Until its turn each
 * stays its gone holder's (held, recorded, never visible as anyone
 * else's), so new clients queue for it as for any held lock.
 *
 * Each such holder is one struct lbd_ending in d->endings, first in
 * first out; one with holds left after its turn goes behind the others,
 * so that one that goes with a few holds waits for a turn of each, not
 * for the thousands of holds of those that went before it:
 *
 *   lbd_ending_add --> QUEUED (in d->endings) --its turn: end_some--+
 *                        ^                                           |
 *                        +---- holds left: at the tail --------------+
 *                              none left: out (its owner may free it)
 */
#include "daemon.h"
#include "ending.h"
#include "loop.h"

/* lbd_ending_add: e has holds to end: at the tail of d->endings (this
 * iteration's end comes at once, not after a poll that could block). */
void
lbd_ending_add(struct lbd *d, struct lbd_ending *e)
{
	if (e->queued)
		return;
	e->queued = 1;
	TAILQ_INSERT_TAIL(&d->endings, e, entry);
	lbd_want_flush(d);
}

/* lbd_ending_del: e leaves d->endings, if it is in it. */
void
lbd_ending_del(struct lbd *d, struct lbd_ending *e)
{
	if (!e->queued)
		return;
	e->queued = 0;
	TAILQ_REMOVE(&d->endings, e, entry);
}

/*
 * lbd_endings_turn: ends the holds of the queued holders, the head's
 * first, until about turn_us has passed in this call (with all: until
 * none is left), one hold at least; a holder with holds left goes to the
 * tail.  Each end_some may free its holder once it has none left (it is
 * out of the queue by then).  Work left: the next iteration comes at
 * once.
 */
void
lbd_endings_turn(struct lbd *d, int all)
{
	struct lbd_ending *e;
	uint64_t           deadline = all ? UINT64_MAX :
	    uv_hrtime() + (uint64_t)d->cfg.limits.turn_us * 1000;

	while ((e = TAILQ_FIRST(&d->endings)) != NULL) {
		lbd_ending_del(d, e);
		if (e->end_some(e, deadline)) {
			lbd_ending_add(d, e);   /* behind the others */
			break;
		}
		if (uv_hrtime() >= deadline)
			break;
	}
	if (!TAILQ_EMPTY(&d->endings))
		lbd_want_flush(d);      /* the next turn comes at once */
}
