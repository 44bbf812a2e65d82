/*
 * request.h: one parsed request to its verb (request.c), with the checks
 * every verb shares: HELLO first, the message's direction, ids in use,
 * each field's value.
 */
#ifndef LBD_REQUEST_H
#define LBD_REQUEST_H

#include "daemon.h"

/* lbd_request: handles one parsed message m from c; every outcome is a
 * reply queued on c (or, for a LIST or a wait, to come). */
void lbd_request(struct lbd_conn *c, const struct lbp_msg *m);

/* lbd_add_holder: adds what is known of a holder to a STATUS or ITEM
 * line: of the broker's hold h, or else of the artefact's holder fh
 * (either may be NULL), and the number of waiters. */
void lbd_add_holder(struct lbp_out *o, const struct lbd_hold *h,
         const struct lockfs_holder *fh, unsigned waiters);

#endif
