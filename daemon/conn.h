/*
 * conn.h: client connections (conn.c, whose states are drawn there):
 * accepting them, reading lines with fair turns, queued replies with
 * back-pressure, closing; and what each user has in the daemon (struct
 * lbd_uid_conns), counted against its limits.
 */
#ifndef LBD_CONN_H
#define LBD_CONN_H

#include "daemon.h"

/* lbd_conn_accept: accepts one pending connection on d's listener with
 * its peer's credentials and starts reading, or refuses it (ERR, closed)
 * at a connection limit. */
void lbd_conn_accept(struct lbd *d);

/* lbd_conns_accept: a connection waits on d's listener: accepted now
 * (lbd_conn_accept) unless accepting has taken its turn in this loop
 * iteration; then it waits for the next (lbd_conns_resume), libuv not
 * watching the listener meanwhile. */
void lbd_conns_accept(struct lbd *d);

/* lbd_conn_send: queues one formatted line for c (dropped when c is
 * closing); it goes out at the end of the loop iteration.  Never
 * blocks. */
void lbd_conn_send(struct lbd_conn *c, const struct lbp_out *o);

/* lbd_conn_flush_first: c's queued replies go out first at the end of
 * this iteration (nothing when it has none). */
void lbd_conn_flush_first(struct lbd_conn *c);

/* lbd_conn_close: moves c to CLOSING: its waits canceled, its holds
 * released a turn at a time (ending.c), the handle closed,
 * pending output dropped; c freed later.  Idempotent. */
void lbd_conn_close(struct lbd_conn *c);

/* lbd_conn_flush_all: hands every connection's queued replies to libuv,
 * once per iteration, after the state database commits. */
void lbd_conn_flush_all(struct lbd *d);

/* lbd_conns_resume: the iteration ends: connections throttled in it get
 * their next turn, unless back-pressure holds them. */
void lbd_conns_resume(struct lbd *d);

/* lbd_conns_of_uid: how many open connections c's user has, c among
 * them. */
unsigned lbd_conns_of_uid(struct lbd_conn *c);

/* lbd_conn_output_held: the memory held for c's replies (what
 * output_per_conn bounds). */
size_t lbd_conn_output_held(struct lbd_conn *c);

/* lbd_uid_get: what user uid has in the daemon, made when it has nothing
 * yet; NULL when out of memory.  Give it back with lbd_uid_put after
 * taking a count of it down. */
struct lbd_uid_conns *lbd_uid_get(struct lbd *d, uid_t uid);

/* lbd_uid_put: frees u when the user has nothing left in the daemon. */
void lbd_uid_put(struct lbd_uid_conns *u);

#endif
