/*
 * looks.h: the budget of the looks the daemon makes on its own, on a
 * timer (looks.c): polls of locks held outside (watch.c) and retries of
 * releasing holds (releasing.c), bounded in rate and per loop iteration.
 */
#ifndef LBD_LOOKS_H
#define LBD_LOOKS_H

#include <stdint.h>

#include "daemon.h"

/* lbd_looks_delay_ms: how long until the next of n looks of one kind
 * that each come about every s seconds: s, or longer to keep within the
 * rate, spread by +-1/4.  In ms, 1 at least. */
uint64_t lbd_looks_delay_ms(double s, double n);

/* lbd_looks_turn_spent: 1 when this iteration's looks have used their
 * time already (a look due now waits lbd_looks_later_ms), else 0. */
int  lbd_looks_turn_spent(struct lbd *d);

/* lbd_looks_turn_took: a look that began at uv_hrtime() t0 has ended: its
 * time counts in this iteration's budget. */
void lbd_looks_turn_took(struct lbd *d, uint64_t t0);

/* lbd_looks_later_ms: how long a look put off by a spent turn waits: a
 * few ms, at random. */
uint64_t lbd_looks_later_ms(void);

#endif
