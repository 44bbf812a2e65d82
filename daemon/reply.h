/*
 * reply.h: the replies that wait for the state database (owed OKs of
 * grants, reply.c, drawn there), and the one place that queues an ERR
 * for a request.
 */
#ifndef LBD_REPLY_H
#define LBD_REPLY_H

#include "daemon.h"

/* lbd_conn_error: queues "ERR ID code=... message=..." for c. */
void lbd_conn_error(struct lbd_conn *c, uint64_t id, enum lbp_error code,
         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* lbd_conn_ok: queues "OK ID", with no fields, for c. */
void lbd_conn_ok(struct lbd_conn *c, uint64_t id);

/* lbd_conn_ok_pending: queues "OK ID pending=1" for c: a RELEASE done
 * as far as its client is concerned, while the lock file may still name
 * it (docs/PROTOCOL.md, RELEASE). */
void lbd_conn_ok_pending(struct lbd_conn *c, uint64_t id);

/* lbd_grant_reply: replies OK with h's token to c's request id: at once
 * when h is recorded, else owed until the settle that records it. */
void lbd_grant_reply(struct lbd_hold *h, struct lbd_conn *c, uint64_t id);

/* lbd_hold_pay: h ends before its record was settled: its owed OKs go
 * out now, ahead of what ends it (refused when its handoff failed). */
void lbd_hold_pay(struct lbd_hold *h);

/* lbd_acks_forget: c closes: the OKs owed to it (kept holds') are owed to
 * nobody; the holds stay. */
void lbd_acks_forget(struct lbd_conn *c);

/* lbd_grants_settle: the iteration's commit recorded every owed grant
 * (recorded), or failed for the reason why: sends the owed OKs, or
 * refuses each grant (ERR EINTERNAL) and ends its hold.  Grants made
 * meanwhile are left for the next settle. */
void lbd_grants_settle(struct lbd *d, int recorded, const char *why);

#endif
