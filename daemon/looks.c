/*
 * looks.c: the budget of the looks the daemon makes on its own, on a
 * timer: the polls of locks held outside the broker (watch.c) and the
 * retries of releasing holds (releasing.c).  No request asks for them
 * (no client's turn throttles them), and how many there are grows with
 * what users hold and wait for, so they are bounded twice:
 *
 *   in rate:   each kind spreads its schedule so that it makes at most
 *              LBD_LOOKS_PER_SECOND looks a second, however many are
 *              due (lbd_looks_delay_ms);
 *   per turn:  the looks of one loop iteration (every timer due fires
 *              in the same one) take about LBD_LOOKS_TURN_NS in all; a
 *              look due beyond that is made a little later
 *              (lbd_looks_turn_spent, lbd_looks_later_ms), so that
 *              requests are read and answered in between.
 */
#include <stdlib.h>

#include "daemon.h"
#include "looks.h"

#define LBD_LOOKS_PER_SECOND 1024
#define LBD_LOOKS_TURN_NS    500000ull  /* 0.5 ms */

/*
 * lbd_looks_delay_ms: how long until the next of n looks of one kind,
 * each of which comes about every s seconds: s, or longer when n such
 * looks would make more than LBD_LOOKS_PER_SECOND a second; between 3/4
 * and 5/4 of that, so that looks do not come in bursts.  In ms, 1 at
 * least.
 */
uint64_t
lbd_looks_delay_ms(double s, double n)
{
	if (n > s * LBD_LOOKS_PER_SECOND)
		s = n / LBD_LOOKS_PER_SECOND;
	s *= 0.75 + 0.5 * ((double)rand() / ((double)RAND_MAX + 1));
	return (uint64_t)(s * 1000) + 1;
}

/*
 * lbd_looks_turn_spent: 1 when this loop iteration's looks have taken
 * LBD_LOOKS_TURN_NS already (a look due now is then made
 * lbd_looks_later_ms later), else 0.
 */
int
lbd_looks_turn_spent(struct lbd *d)
{
	if (d->looks_turn != d->turn) {
		d->looks_turn = d->turn;
		d->looks_ns = 0;
	}
	return d->looks_ns >= LBD_LOOKS_TURN_NS;
}

/* lbd_looks_turn_took: a look that began at uv_hrtime() t0 has ended:
 * counts its time in this iteration's budget. */
void
lbd_looks_turn_took(struct lbd *d, uint64_t t0)
{
	lbd_looks_turn_spent(d);        /* a new iteration starts at 0 */
	d->looks_ns += uv_hrtime() - t0;
}

/* lbd_looks_later_ms: how long a look due in a spent turn waits: a few
 * ms, at random, so that the looks put off do not all come together. */
uint64_t
lbd_looks_later_ms(void)
{
	return 1 + (uint64_t)(rand() % 16);
}
