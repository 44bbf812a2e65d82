/*
 * reqids.c: the request ids a connection still owes a reply to: its
 * waiting ACQUIREs and the OKs owed for grants the state database has not
 * recorded yet (and the LIST being sent, which list.c keeps on the
 * connection itself).  A request with such an id is refused (EID) before
 * it is looked at, so that no two replies with one id are ever
 * outstanding.
 *
 * A small hash table per connection, keyed by id, whose nodes live in the
 * waits and acks themselves: adding, removing and looking up cost O(1)
 * however many requests wait.  One id may be in the table twice for a
 * moment (a wait that is being granted, before it leaves the queue).
 */
#include <stdlib.h>

#include "daemon.h"
#include "reqids.h"

#define REQIDS_MIN_BUCKETS 16

/* The bucket of id in a table of n buckets (n a power of two). */
static size_t
reqid_bucket(uint64_t id, size_t n)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (n - 1);
}

/* Doubles c's table; on no memory keeps it (longer chains, still
 * correct). */
static void
reqids_grow(struct lbd_conn *c)
{
	struct lbd_reqids *t = &c->reqids;
	struct lbd_reqid_list *b;
	struct lbd_reqid  *r;
	size_t             n = t->nbuckets * 2, i;

	if ((b = calloc(n, sizeof(*b))) == NULL)
		return;
	for (i = 0; i < t->nbuckets; i++)
		while ((r = LIST_FIRST(&t->buckets[i])) != NULL) {
			LIST_REMOVE(r, entry);
			LIST_INSERT_HEAD(&b[reqid_bucket(r->id, n)], r, entry);
		}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

/* lbd_reqid_add: enters r (with r->id set) into c's ids in use.  0, or -1
 * when no memory is left for c's first table. */
int
lbd_reqid_add(struct lbd_conn *c, struct lbd_reqid *r)
{
	struct lbd_reqids *t = &c->reqids;

	if (t->buckets == NULL) {
		if ((t->buckets = calloc(REQIDS_MIN_BUCKETS,
		    sizeof(*t->buckets))) == NULL)
			return -1;
		t->nbuckets = REQIDS_MIN_BUCKETS;
	} else if (t->n >= t->nbuckets)
		reqids_grow(c);
	LIST_INSERT_HEAD(&t->buckets[reqid_bucket(r->id, t->nbuckets)], r,
	    entry);
	t->n++;
	return 0;
}

/* lbd_reqid_del: takes r, entered by lbd_reqid_add, out of c's ids. */
void
lbd_reqid_del(struct lbd_conn *c, struct lbd_reqid *r)
{
	LIST_REMOVE(r, entry);
	c->reqids.n--;
}

/* lbd_reqid_busy: 1 when c still owes a reply to a request with id (in
 * the table, or the LIST being sent: list.c), else 0. */
int
lbd_reqid_busy(const struct lbd_conn *c, uint64_t id)
{
	const struct lbd_reqids *t = &c->reqids;
	const struct lbd_reqid  *r;

	if (c->listing && c->list_id == id)
		return 1;
	if (t->n == 0)
		return 0;
	LIST_FOREACH(r, &t->buckets[reqid_bucket(id, t->nbuckets)], entry)
		if (r->id == id)
			return 1;
	return 0;
}

/* lbd_reqids_free: frees c's table (empty by then: its waits and acks are
 * gone). */
void
lbd_reqids_free(struct lbd_conn *c)
{
	free(c->reqids.buckets);
	c->reqids.buckets = NULL;
	c->reqids.nbuckets = c->reqids.n = 0;
}
