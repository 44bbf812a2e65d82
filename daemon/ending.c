/*
 * ending.c: the holds whose holder has gone, ended a turn at a time.
 *
 * A closed connection's holds (conn.c), the kept holds and orphans of a
 * process that exited (pidwatch.c) and the orphans whose grace period is
 * over (reconcile.c) are each ended (handed to their next waiter, or
 * released) at the end of the loop iterations, about turn_us of them per
 * iteration in all, one at least (up to LBD_ENDING_TURNS times as long
 * while nothing else waits: ending_yield): a holder that goes with
 * thousands of holds does not stall everyone for all of them.  Until its
 * turn each stays its gone holder's (held, recorded, never visible as
 * anyone else's), so new clients queue for it as for any held lock.
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
#include "os.h"

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

/* An ending turn's length at most, in turns of a user (turn_us): 0.5 ms
 * by default, while no other work waits (ending_yield).  The holds'
 * ends share the turn's one transaction and one poll. */
#define LBD_ENDING_TURNS 10

/*
 * Whether an ending turn that has had turn_us should stop for the rest
 * of the loop: when it has given a lock to someone (a grant or handoff
 * owed its record and reply: it waits for its record no longer than one
 * a request made), or when the loop has events waiting (a request, a
 * connection, a signal: its descriptor polled without waiting; an error
 * counts as events), which thus wait for turn_us of ends at most, as
 * they did for one-turn_us turns.
 */
static int
ending_yield(struct lbd *d)
{
	if (!TAILQ_EMPTY(&d->acks) || !TAILQ_EMPTY(&d->swaps))
		return 1;
	return lbd_os_events_waiting(uv_backend_fd(d->loop));
}

/*
 * lbd_endings_turn: ends the holds of the queued holders, the head's
 * first, for turn_us in this call, and on up to LBD_ENDING_TURNS times
 * turn_us while nothing else waits (ending_yield), one hold at least;
 * with all, until none is left.  Each holder in turn ends holds for
 * turn_us at most, then goes to the tail if it has holds left.  Each
 * end_some may free its holder once it has none left (it is out of the
 * queue by then).  Work left: the next iteration comes at once.
 */
void
lbd_endings_turn(struct lbd *d, int all)
{
	struct lbd_ending *e;
	uint64_t           now = uv_hrtime();
	uint64_t           slice = (uint64_t)d->cfg.limits.turn_us * 1000;
	uint64_t           end = now + LBD_ENDING_TURNS * slice;
	uint64_t           first_end = now + slice;

	while ((e = TAILQ_FIRST(&d->endings)) != NULL) {
		lbd_ending_del(d, e);
		if (e->end_some(e, all ? UINT64_MAX : now + slice < end ?
		    now + slice : end))
			lbd_ending_add(d, e);   /* behind the others */
		if (all)
			continue;
		now = uv_hrtime();
		if (now >= end || (now >= first_end && ending_yield(d)))
			break;
	}
	if (!TAILQ_EMPTY(&d->endings))
		lbd_want_flush(d);      /* the next turn comes at once */
}
