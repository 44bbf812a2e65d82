/*
 * list.h: LIST, sent as the client reads it (list.c): a cursor into the
 * lock table, moved on once per loop iteration.
 */
#ifndef LBD_LIST_H
#define LBD_LIST_H

#include "daemon.h"

/* lbd_list_start: starts sending c's LIST request id (the rest follows
 * in later iterations).  0, or -1 when c is sending one already. */
int  lbd_list_start(struct lbd_conn *c, uint64_t id);

/* lbd_lists_more: once per iteration, before the replies go out: the
 * LISTs being sent go on as far as their clients' queues and the
 * iteration's budget allow. */
void lbd_lists_more(struct lbd *d);

/* lbd_lists_waiting: 1 when a LIST could go on now (the loop must not
 * block), else 0. */
int  lbd_lists_waiting(struct lbd *d);

/* lbd_lists_shutdown: the daemon stops: each LIST ends with ESHUTDOWN
 * after the ITEMs sent so far. */
void lbd_lists_shutdown(struct lbd *d);

/* lbd_list_forget: c's LIST, if any, is not sent on. */
void lbd_list_forget(struct lbd_conn *c);

#endif
