/*
 * releasing.h: the retries of releasing holds, whose sqlite database was
 * busy at their end (releasing.c, drawn there): one queue per user and
 * lock database, tried within the looks' budget.
 */
#ifndef LBD_RELEASING_H
#define LBD_RELEASING_H

#include "daemon.h"

/* lbd_releasing_add: h has just become releasing (hold.c), or is an
 * orphan whose artefact is to be looked at again (reconcile.c): queues it
 * at the tail of its user's queue for its database.  0, or -1 when out of
 * memory (not queued). */
int  lbd_releasing_add(struct lbd_hold *h);

/* lbd_releasing_soon: queued h is tried first in its queue, which is due
 * at once (an orphan refused to its process, to be forgotten). */
void lbd_releasing_soon(struct lbd_hold *h);

/* lbd_releasing_del: h ends or is forgotten: it leaves its queue, if it
 * is in one. */
void lbd_releasing_del(struct lbd_hold *h);

/* lbd_releasing_due: the end of an iteration: tries the queues due, a
 * hold at a time, round-robin over users and their queues, within the
 * looks' budget (one try at least). */
void lbd_releasing_due(struct lbd *d);

/* lbd_releasing_waiting: 1 when queues are due (the next iteration
 * should come at once), else 0. */
int  lbd_releasing_waiting(struct lbd *d);

#endif
