/*
 * swapwait.h: how often a handoff whose last step is refused for its
 * lock file's readers tries again (swap.c's READERS), and which such
 * handoffs may try at full speed (swapwait.c): pure arithmetic, no
 * timers, no I/O.
 */
#ifndef LBD_SWAPWAIT_H
#define LBD_SWAPWAIT_H

#include <stdint.h>

/* A handoff at full speed waits LBD_SWAPWAIT_FIRST_MS, then twice as
 * long after each refusal, up to LBD_SWAPWAIT_FAST_MAX_MS; after
 * LBD_SWAPWAIT_FAST_WAITS waits (about 10 s) it leaves the budget, and
 * its waits go on doubling, up to LBD_SWAPWAIT_MAX_MS, which it waits
 * from then on.  A handoff beyond the budget waits LBD_SWAPWAIT_MAX_MS
 * from the first.  A user's handoffs waiting so beyond
 * LBD_SWAPWAIT_PER_UID are beyond the budget too. */
#define LBD_SWAPWAIT_FIRST_MS     2
#define LBD_SWAPWAIT_FAST_MAX_MS  100
#define LBD_SWAPWAIT_FAST_WAITS   100
#define LBD_SWAPWAIT_MAX_MS       1000
#define LBD_SWAPWAIT_PER_UID      16

/* Why a handoff waits beyond the budget (lbd_swapwait_begin). */
enum lbd_swapwait_why {
	LBD_SWAPWAIT_FAST = 0,  /* it does not: full speed */
	LBD_SWAPWAIT_BUDGET,    /* the daemon's budget is spent
	                           (limits.swap_readers_fast) */
	LBD_SWAPWAIT_USER       /* its user has LBD_SWAPWAIT_PER_UID waiting
	                           already, or is not known */
};

/* One handoff's waits. */
struct lbd_swapwait {
	uint64_t wait_ms;       /* the next wait */
	unsigned waits;         /* waited so far */
	int      fast;          /* counted in the daemon's *nfast */
};

/*
 * lbd_swapwait_begin: w starts waiting for readers.  nfast: the
 * daemon's count of handoffs at full speed; budget: how many it allows
 * (limits.swap_readers_fast; 0: none); user_waiting: w's user's
 * handoffs waiting for readers, w's included (0: no user known).  At
 * full speed when the budget and the user's share allow (counted in
 * *nfast), else beyond: what it returns says which, and why.
 */
enum lbd_swapwait_why lbd_swapwait_begin(struct lbd_swapwait *w,
    unsigned *nfast, unsigned budget, unsigned user_waiting);

/*
 * lbd_swapwait_next: the wait (ms) before w's next try, after a refusal;
 * the one after it grown (doubled, up to LBD_SWAPWAIT_FAST_MAX_MS at
 * full speed, else LBD_SWAPWAIT_MAX_MS).  A handoff that has waited
 * LBD_SWAPWAIT_FAST_WAITS times at full speed leaves it: it leaves
 * *nfast, its place free for another, and its waits grow on.
 */
uint64_t lbd_swapwait_next(struct lbd_swapwait *w, unsigned *nfast);

/* lbd_swapwait_end: w waits no longer (its step taken, failed or
 * forgotten): it leaves *nfast if it counted there.  Idempotent. */
void lbd_swapwait_end(struct lbd_swapwait *w, unsigned *nfast);

#endif
