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

/* An ending turn's length, in turns of a user (turn_us): 1 ms by
 * default.  The holds' ends share the turn's one transaction and one
 * poll; the other clients wait a turn at most for their next request to
 * be read. */
#define LBD_ENDING_TURNS 10

/* Whether a lock was given to someone since the iteration's settle (a
 * grant or handoff owed its record and reply): then the turn stops after
 * turn_us, as long as a request's turn, so that no grant waits longer
 * for its record than one a request made. */
static int
ending_granted(struct lbd *d)
{
	return !TAILQ_EMPTY(&d->acks) || !TAILQ_EMPTY(&d->swaps);
}

/*
 * lbd_endings_turn: ends the holds of the queued holders, the head's
 * first, for about LBD_ENDING_TURNS times turn_us in this call (with
 * all: until none is left), or turn_us once it has given a lock to
 * someone (ending_granted), one hold at least; each holder in turn ends
 * holds for turn_us at most, then goes to the tail if it has holds left.
 * Each end_some may free its holder once it has none left (it is out of
 * the queue by then).  Work left: the next iteration comes at once.
 */
void
lbd_endings_turn(struct lbd *d, int all)
{
	struct lbd_ending *e;
	uint64_t           now = uv_hrtime();
	uint64_t           slice = (uint64_t)d->cfg.limits.turn_us * 1000;
	uint64_t           end = now + LBD_ENDING_TURNS * slice;
	uint64_t           granted_end = now + slice;

	while ((e = TAILQ_FIRST(&d->endings)) != NULL) {
		lbd_ending_del(d, e);
		if (e->end_some(e, all ? UINT64_MAX : now + slice < end ?
		    now + slice : end))
			lbd_ending_add(d, e);   /* behind the others */
		if (all)
			continue;
		now = uv_hrtime();
		if (now >= end || (now >= granted_end && ending_granted(d)))
			break;
	}
	if (!TAILQ_EMPTY(&d->endings))
		lbd_want_flush(d);      /* the next turn comes at once */
}
