/*
 * swapwait.c: the retries of handoffs waiting for their lock file's
 * readers (swapwait.h), bounded so that many readers held open by many
 * users cannot make the daemon spin.  A reader is mostly a look at the
 * lock (is_locked, Python's lockfile polling), there for a few calls:
 * under wine, with another process polling without pause, a handoff's
 * try was refused about 16 times before one passed; so a handoff at
 * full speed tries again soon and often (2 ms, doubling, to 100 ms),
 * not to keep its waiter waiting.  But only limits.swap_readers_fast
 * handoffs at a time, and LBD_SWAPWAIT_PER_UID of one user's, go at full
 * speed, and each only for its first LBD_SWAPWAIT_FAST_WAITS waits
 * (about 10 s): then its waits grow on, doubling to 1 s, and its place
 * goes to another; the others try once a second from the first.  So the
 * tries the daemon makes in a second are at most about ten per handoff
 * at full speed and one per other handoff, whatever the readers do;
 * none is ever given up (a handoff beyond the budget still finishes
 * once its readers close the file, at most a second later), and a
 * reader held open for good keeps no place at full speed for long.
 *
 *   fast (counted in *nfast): waits 2, 4 ... 64, then 100 ms
 *   | LBD_SWAPWAIT_FAST_WAITS waits done
 *   v
 *   growing (not counted): 200, 400, 800 ms
 *   |
 *   v
 *   slow (not counted): waits LBD_SWAPWAIT_MAX_MS each time
 *   ^
 *   | begun beyond the budget or its user's share
 *
 *   any of them ends (lbd_swapwait_end) when its step is taken, fails
 *   or is forgotten.
 */
#include "swapwait.h"

/* lbd_swapwait_begin: see swapwait.h. */
enum lbd_swapwait_why
lbd_swapwait_begin(struct lbd_swapwait *w, unsigned *nfast, unsigned budget,
    unsigned user_waiting)
{
	enum lbd_swapwait_why why = LBD_SWAPWAIT_FAST;

	if (user_waiting == 0 || user_waiting > LBD_SWAPWAIT_PER_UID)
		why = LBD_SWAPWAIT_USER;
	else if (*nfast >= budget)
		why = LBD_SWAPWAIT_BUDGET;
	w->fast = why == LBD_SWAPWAIT_FAST;
	w->wait_ms = w->fast ? LBD_SWAPWAIT_FIRST_MS : LBD_SWAPWAIT_MAX_MS;
	w->waits = 0;
	if (w->fast)
		(*nfast)++;
	return why;
}

/* lbd_swapwait_next: see swapwait.h. */
uint64_t
lbd_swapwait_next(struct lbd_swapwait *w, unsigned *nfast)
{
	uint64_t ms = w->wait_ms;
	uint64_t max = LBD_SWAPWAIT_MAX_MS;

	if (w->fast && ++w->waits >= LBD_SWAPWAIT_FAST_WAITS)
		lbd_swapwait_end(w, nfast);     /* its time at full speed
		                                   is over */
	if (w->fast)
		max = LBD_SWAPWAIT_FAST_MAX_MS;
	if ((w->wait_ms *= 2) > max)
		w->wait_ms = max;
	return ms;
}

/* lbd_swapwait_end: see swapwait.h. */
void
lbd_swapwait_end(struct lbd_swapwait *w, unsigned *nfast)
{
	if (w->fast && *nfast > 0)
		(*nfast)--;
	w->fast = 0;
}
