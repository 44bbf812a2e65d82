/*
 * list.c: LIST, sent as the client reads it.  A LIST is not built whole:
 * the connection keeps a cursor into the lock table, and each loop
 * iteration (loop.c's check step) sends the ITEMs of the next buckets
 * while the memory held for the connection's replies is at most half of
 * output_per_conn and this iteration's budget of buckets lasts; a client
 * that does not read holds its LIST where it stopped, at the cost of its
 * own queue only.
 *
 * The cursor walks the buckets in reverse-binary order (the order of the
 * bits of the bucket index reversed): the table only grows, by doubling,
 * and in that order the buckets visited before a growth are exactly those
 * visited before the cursor after it.  So a lock that is in the table for
 * the whole LIST is listed exactly once; one that comes or goes meanwhile
 * may or may not be.
 *
 * Each lock is listed only when the asker may see it: root sees every
 * lock; another user the locks its own uid holds, and those whose
 * artefact it could look at itself (lbd_creds_may_look: lstat as the
 * user finds it, or finds nothing there).
 */
#include <limits.h>
#include <stdlib.h>

#include "cohort.h"
#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "list.h"
#include "locktable.h"
#include "log.h"
#include "loop.h"
#include "reply.h"
#include "request.h"

/* Buckets looked at per loop iteration, over every LIST being sent: the
 * work a LIST adds to one iteration, whatever the table's size. */
#define LIST_BUCKETS_PER_ITERATION 4096

/* The bits of v in reverse order. */
static size_t
bits_reversed(size_t v)
{
	size_t r = 0;
	size_t i;

	for (i = 0; i < sizeof(v) * 8; i++) {
		r = (r << 1) | (v & 1);
		v >>= 1;
	}
	return r;
}

/* The bucket after v in reverse-binary order for a table of n (a power of
 * two) buckets; 0 after the last. */
static size_t
cursor_next(size_t v, size_t n)
{
	v |= ~(n - 1);
	v = bits_reversed(v);
	v++;
	return bits_reversed(v);
}

/* Whether c may see l in a LIST (see above). */
static int
list_may_see(struct lbd_conn *c, struct lbd_lock *l)
{
	struct lockfs_err err;
	char              file[PATH_MAX];

	if (c->uid == 0 || (l->holder != NULL && l->holder->uid == c->uid))
		return 1;
	return lbd_creds_may_look(c->creds, lbd_lock_file(l, file), &err);
}

/* Sends c an ITEM of l held by h (NULL: by nobody the broker knows);
 * in a version-2 session with the hold's mode (docs/SHARED.md) and, for
 * a cluster lock, its cohort's state (docs/CLUSTER.md). */
static void
list_item(struct lbd_conn *c, struct lbd_lock *l, const struct lbd_hold *h)
{
	struct lbp_out o;
	const char    *cluster;

	lbp_begin(&o, LBP_MSG_ITEM, 1, c->list_id);
	lbp_add_str(&o, "path", l->path);
	lbp_add_str(&o, "method", lockfs_method_name(l->method));
	lbd_add_holder(&o, h, NULL, l->nwaiters);
	if (h != NULL && c->version >= LBP_VERSION_SHARED)
		lbp_add_str(&o, "mode", h->shared ? "shared" : "exclusive");
	if (c->version >= LBP_VERSION_SHARED &&
	    (cluster = lbd_cohort_list_state(l)) != NULL)
		lbp_add_str(&o, "cluster_state", cluster);
	lbp_end(&o);
	lbd_conn_send(c, &o);
	c->list_count++;
}

/* Ends c's LIST: the OK with the count. */
static void
list_end(struct lbd_conn *c)
{
	struct lbp_out o;

	lbp_begin(&o, LBP_MSG_OK, 1, c->list_id);
	lbp_add_u64(&o, "count", c->list_count);
	lbp_end(&o);
	lbd_list_forget(c);
	lbd_conn_send(c, &o);
}

/*
 * Sends the ITEMs of the next buckets of c's LIST, at most *budget
 * buckets (decreased by those looked at), while the memory held for c's
 * replies is at most half its limit; the final OK when the table is
 * done.
 */
static void
list_more(struct lbd_conn *c, unsigned *budget)
{
	struct lbd      *d = c->d;
	struct lbd_lock *l;
	struct lbd_hold *r;

	while (c->listing && c->state != LBD_CONN_CLOSING && *budget > 0 &&
	    lbd_conn_output_held(c) <= d->cfg.limits.output_per_conn / 2) {
		(*budget)--;
		for (l = d->buckets[c->list_cursor & (d->nbuckets - 1)];
		    l != NULL; l = l->hash_next) {
			if (!list_may_see(c, l))
				continue;
			list_item(c, l, l->holder);
			if (c->version < LBP_VERSION_SHARED)
				continue;       /* version 1: one per lock */
			TAILQ_FOREACH(r, &l->readers, reader_entry)
				list_item(c, l, r);
		}
		if ((c->list_cursor = cursor_next(c->list_cursor,
		    d->nbuckets)) == 0)
			list_end(c);
	}
}

/*
 * lbd_list_start: the LIST request id of c: starts sending it (the rest
 * follows in later iterations, lbd_lists_more).  -1 when c is sending a
 * LIST already (the caller refuses this one), else 0.
 */
int
lbd_list_start(struct lbd_conn *c, uint64_t id)
{
	unsigned budget = LIST_BUCKETS_PER_ITERATION;

	if (c->listing)
		return -1;
	c->listing = 1;
	c->list_id = id;
	c->list_cursor = 0;
	c->list_count = 0;
	TAILQ_INSERT_TAIL(&c->d->listings, c, list_entry);
	list_more(c, &budget);
	if (c->listing)
		lbd_want_flush(c->d);
	return 0;
}

/*
 * lbd_lists_more: once per loop iteration, before the replies go out:
 * the LISTs being sent go on, in turn, as far as their clients' queues
 * and the iteration's budget allow.
 */
void
lbd_lists_more(struct lbd *d)
{
	struct lbd_conn *c;
	unsigned         budget = LIST_BUCKETS_PER_ITERATION;
	unsigned         n = 0;

	TAILQ_FOREACH(c, &d->listings, list_entry)
		n++;
	while (n-- > 0 && budget > 0 &&
	    (c = TAILQ_FIRST(&d->listings)) != NULL) {
		/* To the back of the line, then served. */
		TAILQ_REMOVE(&d->listings, c, list_entry);
		TAILQ_INSERT_TAIL(&d->listings, c, list_entry);
		list_more(c, &budget);
	}
}

/* lbd_lists_waiting: whether a LIST could go on now (its client's queue
 * has room): then the loop must not block. */
int
lbd_lists_waiting(struct lbd *d)
{
	struct lbd_conn *c;

	TAILQ_FOREACH(c, &d->listings, list_entry)
		if (lbd_conn_output_held(c) <=
		    d->cfg.limits.output_per_conn / 2)
			return 1;
	return 0;
}

/* lbd_lists_shutdown: the daemon stops: each LIST being sent ends with
 * ESHUTDOWN after the ITEMs sent so far. */
void
lbd_lists_shutdown(struct lbd *d)
{
	struct lbd_conn *c;

	while ((c = TAILQ_FIRST(&d->listings)) != NULL) {
		lbd_list_forget(c);
		lbd_conn_error(c, c->list_id, LBP_ESHUTDOWN, "the daemon is "
		    "stopping");
	}
}

/* lbd_list_forget: c's LIST, if any, is not sent on (done, or c
 * closes). */
void
lbd_list_forget(struct lbd_conn *c)
{
	if (!c->listing)
		return;
	c->listing = 0;
	TAILQ_REMOVE(&c->d->listings, c, list_entry);
}
