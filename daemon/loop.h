/*
 * loop.h: the loop's iteration: what every iteration ends with (commit,
 * then the replies), and the wall clock.
 */
#ifndef LBD_LOOP_H
#define LBD_LOOP_H

#include "daemon.h"

/* lbd_now: the wall clock, in seconds since the epoch. */
double lbd_now(void);

/* lbd_want_flush: makes sure this iteration reaches its end step
 * (commit, replies out) without blocking in poll first. */
void lbd_want_flush(struct lbd *d);

#endif
