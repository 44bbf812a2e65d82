/*
 * reqids.h: the request ids a connection owes a reply to (reqids.c): a
 * waiting ACQUIRE's, an owed OK's.  Another request with such an id is
 * refused (EID) before it is looked at.  The nodes live in the waits and
 * acks themselves.
 */
#ifndef LBD_REQIDS_H
#define LBD_REQIDS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct lbd_conn;

/* A request id a connection owes a reply to (reqids.c). */
struct lbd_reqid {
	uint64_t                 id;
	LIST_ENTRY(lbd_reqid)    entry;     /* in its connection's table */
};

LIST_HEAD(lbd_reqid_list, lbd_reqid);

struct lbd_reqids {
	struct lbd_reqid_list   *buckets;   /* NULL until the first id */
	size_t                   nbuckets, n;
};
/* lbd_reqid_add: enters r (r->id set) into c's ids in use.  0, or -1
 * when no memory is left for c's first table. */
int  lbd_reqid_add(struct lbd_conn *c, struct lbd_reqid *r);

/* lbd_reqid_del: takes r, entered by lbd_reqid_add, out of c's ids. */
void lbd_reqid_del(struct lbd_conn *c, struct lbd_reqid *r);

/* lbd_reqid_busy: 1 when c still owes a reply to a request with id (a
 * wait's, an owed OK's, the LIST being sent), else 0. */
int  lbd_reqid_busy(const struct lbd_conn *c, uint64_t id);

/* lbd_reqids_free: frees c's table, empty by then. */
void lbd_reqids_free(struct lbd_conn *c);

#endif
