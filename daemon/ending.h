/*
 * ending.h: holds whose holder has gone, ended a turn at a time at the
 * end of each loop iteration (ending.c): a closed connection's (conn.c),
 * an exited process's kept holds and orphans (pidwatch.c), the orphans
 * whose grace period is over (reconcile.c).
 */
#ifndef LBD_ENDING_H
#define LBD_ENDING_H

#include "daemon.h"

/* lbd_ending_add: e (its end_some set) has holds to end: at the tail of
 * d->endings, its first turn at this iteration's end.  Already queued: a
 * no-op. */
void lbd_ending_add(struct lbd *d, struct lbd_ending *e);

/* lbd_ending_del: e leaves d->endings, if it is in it. */
void lbd_ending_del(struct lbd *d, struct lbd_ending *e);

/* lbd_endings_turn: the end of an iteration: ends queued holds for about
 * turn_us (all of them, with all), one at least, the queued taking
 * turns. */
void lbd_endings_turn(struct lbd *d, int all);

#endif
