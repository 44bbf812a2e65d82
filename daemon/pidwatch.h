/*
 * pidwatch.h: the processes that kept holds and orphans are watched for
 * (pidwatch.c): a pidfd, within per-user and overall bounds, or a look a
 * second; the holds of one that exited end in turns (ending.c).
 */
#ifndef LBD_PIDWATCH_H
#define LBD_PIDWATCH_H

#include "daemon.h"

/* lbd_orphan_watch: h (an orphan or a kept hold) joins the watch of its
 * process, made if there is none; out of memory, h is not watched. */
void lbd_orphan_watch(struct lbd *d, struct lbd_hold *h);

/* lbd_orphan_exiting: 1 when h's process has exited and h waits for its
 * turn to end (found by no request meanwhile), else 0. */
int  lbd_orphan_exiting(const struct lbd_hold *h);

/* lbd_orphan_unwatch: h leaves its process's watch, if it is in one; the
 * last hold to leave ends the watch. */
void lbd_orphan_unwatch(struct lbd_hold *h);

#endif
