/*
 * loop.h: the loop's iteration bookkeeping (loop.c, where an iteration
 * and the stop are drawn): the end of each iteration (commit, then the
 * replies), the wall clock, and the graceful stop.
 */
#ifndef LBD_LOOP_H
#define LBD_LOOP_H

#include "daemon.h"

/* lbd_now: the wall clock, in seconds since the epoch. */
double lbd_now(void);

/* lbd_want_flush: makes sure this iteration reaches its end step
 * (commit, replies out) without blocking in poll first. */
void lbd_want_flush(struct lbd *d);

/* lbd_settle: commits the iteration's changes and settles the grants
 * they announce (their OKs sent, or the grants refused when the commit
 * fails); again while refusals hand locks on.  With may_carry, a
 * transaction of riders' rows alone may be carried over to the next
 * iteration instead (lbd_store_carry): 1, and the caller holds every
 * reply back until a settle commits; else 0. */
int  lbd_settle(struct lbd *d, int may_carry);

/* lbd_loop_start: readies the iteration's end (d's check and idle
 * handles) and the state database's watch, on d->loop.  Once, at start. */
void lbd_loop_start(struct lbd *d);

/* lbd_stop: begins the graceful stop (waiters get ESHUTDOWN, replies
 * flushed for a while, connections closed, holds kept for the next
 * daemon, the etcd lease revoked); uv_run returns once every connection
 * is closed and that revoke is over.  Idempotent. */
void lbd_stop(struct lbd *d);

#endif
