/*
 * deadlock.c: the wait-for graph of everything the daemon knows, looked
 * at when a wait is queued (docs/DEADLOCK.md).
 *
 * Its nodes are owners: a connection's thread (c, tid).  An owner waits
 * for another when one of its waits cannot be granted before the other
 * owner lets go:
 *
 *   owner (c, t) --wait w on lock l--> owner of
 *     l's artefact's hold          unless both are shared (an UPGRADE
 *                                  conflicts with every other holder)
 *     each of l's riders           when w is exclusive or an UPGRADE
 *     each waiter ahead of w in    unless both are shared (FIFO: w is
 *     l's queue                    never served before it)
 *
 * A hold with no connection (a kept hold, an orphan, one releasing) and a
 * lock held outside the daemon end a path: what their process waits for
 * is not known, so no cycle is ever drawn through them (never a false
 * one).  Every wait is looked at as it is queued: the graph had no cycle
 * before (each earlier wait was looked at), so a cycle now leaves the
 * new wait's owner by the new wait, and a search from that wait finds it
 * (none at all when nothing can wait for the owner: waited_for).  A hold
 * given with no wait queued (taken back, adopted) is searched from all
 * of its owner's waits (lbd_waits_recheck).  Holds change hands from a
 * queue only to owners whose wait is granted: those behind waited for
 * them already, which closes no cycle.
 *
 * The search is breadth-first over waits, each wait looked at once per
 * search (its stamp), so that its cost is the part of the graph the
 * owner reaches, never the whole, and SEARCH_WORK_MAX entries looked at
 * at most.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "creds.h"
#include "daemon.h"
#include "deadlock.h"
#include "locktable.h"
#include "wait.h"

/* A wait reached by the search, and the step it was reached from. */
struct step {
	struct lbd_wait *w;
	size_t           from;          /* index in the steps; ROOT for the
	                                   searched owner's own waits */
};

#define ROOT ((size_t)-1)

/* Entries one search looks at, at most (waits, riders, queue places,
 * owners): past them it stops and finds no cycle (never a false one), so
 * that a graph one user draws large costs each of its requests a bounded
 * time (a few milliseconds). */
#define SEARCH_WORK_MAX (1u << 18)

/* An owner the search has met: its waits (chained through their
 * deadlock_next, once its connection's waits were sorted out), and
 * whether they were added to the search. */
struct owner {
	uint64_t               stamp;   /* the search that met it; another:
	                                   a free slot */
	const struct lbd_conn *c;
	pid_t                  tid;
	int                    expanded;
	struct lbd_wait       *waits;
};

/* A search's tables, kept from one search to the next (grown, never
 * given back till the daemon ends): a large search costs no allocation,
 * clearing or page faults the next time. */
struct lbd_deadlock_mem {
	struct step  *steps;
	size_t        steps_size;
	struct owner *owners;
	size_t        owners_size;
};

struct search {
	struct step  *steps;
	size_t        n, size;
	struct owner *owners;           /* open addressing; a slot of
	                                   another stamp: free */
	size_t        nowners, owners_size;
	size_t        work;
	uint64_t      stamp;
	int           failed;           /* out of memory, or past the work */
};

/* Whether owner (a, at) is (b, bt). */
static int
same_owner(const struct lbd_conn *a, pid_t at, const struct lbd_conn *b,
    pid_t bt)
{
	return a == b && at == bt;
}

/* One more entry looked at; 0, or -1 (s failed) past the work. */
static int
work(struct search *s)
{
	if (++s->work > SEARCH_WORK_MAX)
		s->failed = 1;
	return s->failed ? -1 : 0;
}

/* The slot of owner (c, tid) in s's owners (its own, or the free one it
 * would take); each probe counts as work (a table of colliding ids costs
 * the search, never more than its bound). */
static struct owner *
owner_slot(struct search *s, const struct lbd_conn *c, pid_t tid)
{
	size_t h = (((uintptr_t)c >> 4) ^ ((size_t)(unsigned)tid *
	    0x9e3779b97f4a7c15ull)) * 0x9e3779b97f4a7c15ull;
	size_t i = (h >> 17) & (s->owners_size - 1);

	while (s->owners[i].stamp == s->stamp && !same_owner(s->owners[i].c,
	    s->owners[i].tid, c, tid) && work(s) == 0)
		i = (i + 1) & (s->owners_size - 1);
	return &s->owners[i];
}

/* Owner (c, tid)'s entry, made when the search meets it first; NULL (s
 * failed) when out of memory or past the work. */
static struct owner *
owner_get(struct search *s, const struct lbd_conn *c, pid_t tid)
{
	struct owner *old = s->owners, *o;
	size_t        i, oldsize = s->owners_size;

	if (s->owners_size == 0 || (s->nowners + 1) * 2 > s->owners_size) {
		s->owners_size = oldsize != 0 ? oldsize * 2 : 64;
		if ((s->owners = calloc(s->owners_size,
		    sizeof(*s->owners))) == NULL) {
			s->owners = old;
			s->owners_size = oldsize;
			s->failed = 1;
			return NULL;
		}
		for (i = 0; i < oldsize; i++)
			if (old[i].stamp == s->stamp)
				*owner_slot(s, old[i].c, old[i].tid) = old[i];
		free(old);
	}
	o = owner_slot(s, c, tid);
	if (s->failed)
		return NULL;
	if (o->stamp != s->stamp) {
		o->stamp = s->stamp;
		o->c = c;
		o->tid = tid;
		o->expanded = 0;
		o->waits = NULL;
		s->nowners++;
	}
	return o;
}

/* Sorts c's waits out to their owners, once per search: a connection's
 * waits are walked once, however many of its threads the search meets. */
static void
conn_sort(struct search *s, struct lbd_conn *c)
{
	struct lbd_wait *w;
	struct owner    *o;

	if (c->deadlock_stamp == s->stamp)
		return;
	c->deadlock_stamp = s->stamp;
	LIST_FOREACH(w, &c->waits, conn_entry) {
		if (work(s) != 0)
			return;
		if (w->kept_pid != 0)
			continue;       /* the kept process's, not c's */
		if ((o = owner_get(s, c, w->tid)) == NULL)
			return;
		w->deadlock_next = o->waits;
		o->waits = w;
	}
}

/* Adds wait w, reached from step from, to the search (s failed when
 * out of memory). */
static void
step_add(struct search *s, struct lbd_wait *w, size_t from)
{
	struct step *grown;
	size_t       size;

	if (s->n == s->size) {
		size = s->size != 0 ? s->size * 2 : 64;
		if ((grown = realloc(s->steps, size * sizeof(*grown))) ==
		    NULL) {
			s->failed = 1;
			return;
		}
		s->steps = grown;
		s->size = size;
	}
	w->stamp = s->stamp;
	s->steps[s->n].w = w;
	s->steps[s->n].from = from;
	s->n++;
}

/* Adds every wait of owner (c, tid), reached from step from, the first
 * time the search reaches that owner. */
static void
owner_waits(struct search *s, struct lbd_conn *c, pid_t tid, size_t from)
{
	struct lbd_wait *w;
	struct owner    *o;

	conn_sort(s, c);
	if (s->failed || (o = owner_get(s, c, tid)) == NULL || o->expanded)
		return;
	o->expanded = 1;
	for (w = o->waits; w != NULL; w = w->deadlock_next) {
		if (work(s) != 0)
			return;
		if (w->stamp != s->stamp)
			step_add(s, w, from);
	}
}

/* Whether wait v is exclusive in the queue: an exclusive ACQUIRE, or an
 * UPGRADE. */
static int
wait_exclusive(const struct lbd_wait *v)
{
	return !v->shared || v->upgrade;
}

/*
 * Follows an edge from step i to owner (oc, ot): 1 when that owner is
 * (c, tid), the searched one (then in *hc, *ht), else 0, its waits added.
 */
static int
edge(struct search *s, size_t i, struct lbd_conn *oc, pid_t ot,
    struct lbd_conn *c, pid_t tid, struct lbd_conn **hc, pid_t *ht)
{
	if (same_owner(oc, ot, c, tid)) {
		*hc = oc;
		*ht = ot;
		return 1;
	}
	owner_waits(s, oc, ot, i);
	return 0;
}

/*
 * Follows every edge out of step i's wait: to the owners it waits for
 * (see above).  In the queue, only to those just ahead that it conflicts
 * with (the run of readers just ahead of a writer, or the writer nearest
 * ahead): they wait in turn for those ahead of them, which is the same
 * reach at a cost that does not grow with the queue for each of its
 * waits.  1 when one of the owners is (c, tid), the searched owner (in
 * *hc, *ht), else 0.
 */
static int
wait_edges(struct search *s, size_t i, struct lbd_conn *c, pid_t tid,
    struct lbd_conn **hc, pid_t *ht)
{
	struct lbd_wait *w = s->steps[i].w, *v;
	struct lbd_lock *l = w->lock;
	struct lbd_hold *h = l->holder, *r;
	int              exclusive = wait_exclusive(w), readers = 0;

	if (h != NULL && h->conn != NULL &&
	    !same_owner(h->conn, h->tid, w->conn, w->tid) &&
	    (exclusive || !h->shared) &&
	    edge(s, i, h->conn, h->tid, c, tid, hc, ht))
		return 1;
	if (exclusive)
		TAILQ_FOREACH(r, &l->readers, reader_entry) {
			if (work(s) != 0)
				return 0;
			/* (A kept rider's owner is not known: no edge.) */
			if (r->conn != NULL &&
			    !same_owner(r->conn, r->tid, w->conn, w->tid) &&
			    edge(s, i, r->conn, r->tid, c, tid, hc, ht))
				return 1;
		}
	for (v = TAILQ_PREV(w, lbd_waitq, lock_entry); v != NULL;
	    v = TAILQ_PREV(v, lbd_waitq, lock_entry)) {
		if (work(s) != 0)
			return 0;
		if (v->kept_pid != 0)
			continue;       /* a kept process's: its owner is not
			                   known (those ahead of it still are) */
		if (same_owner(v->conn, v->tid, w->conn, w->tid)) {
			/* Its owner's own wait, in the search with w: it
			 * waits for those ahead of it as w would, but a
			 * shared one not for the readers an exclusive w
			 * waits for.  (Walking on past each own wait made n
			 * waits of one owner on one lock cost n * n.) */
			if (exclusive && !wait_exclusive(v))
				continue;
			break;
		}
		if (wait_exclusive(v)) {
			/* A writer ahead: w waits for it (and it for those
			 * ahead), unless w waits for the readers just ahead
			 * of it already. */
			if (!readers && edge(s, i, v->conn, v->tid, c, tid, hc,
			    ht))
				return 1;
			break;
		}
		if (!exclusive)
			continue;       /* readers together */
		readers = 1;
		if (edge(s, i, v->conn, v->tid, c, tid, hc, ht))
			return 1;
	}
	return 0;
}

/* How owner (oc, ot) stands in the way of wait w: its lock's holder,
 * one of its readers, or a waiter queued ahead of it. */
static const char *
in_the_way(const struct lbd_wait *w, const struct lbd_conn *oc, pid_t ot)
{
	const struct lbd_hold *h = w->lock->holder, *r;

	if (h != NULL && same_owner(h->conn, h->tid, oc, ot))
		return h->shared ? "read by" : "held by";
	TAILQ_FOREACH(r, &w->lock->readers, reader_entry)
		if (same_owner(r->conn, r->tid, oc, ot))
			return "read by";
	return "waited for first by";
}

/* Whether c may look at l's artefact (its path and its owners told). */
static int
may_look(const struct lbd_conn *c, const struct lbd_lock *l)
{
	struct lockfs_err err;
	char              file[PATH_MAX];

	return lbd_creds_may_look(c->creds, lbd_lock_file(l, file), &err);
}

/* Owner (c, t) as told in a cycle: "pid P[ thread T]", or "an owner"
 * when named is 0. */
static void
owner_name(char *out, size_t size, const struct lbd_conn *c, pid_t t,
    int named)
{
	if (!named)
		snprintf(out, size, "an owner");
	else
		snprintf(out, size, t != 0 ? "pid %ld thread %ld" : "pid %ld",
		    (long)c->pid, (long)t);
}

/*
 * Appends to out (size bytes, *used used) one link of the cycle, as told
 * to a client: w's owner waits for w's lock, which owner (oc, ot) is in
 * the way of.  look tells whether that client may look at w's lock (else
 * only that a lock it may not look at is waited for), named_who and
 * named_whom whether each owner may be named (see lbd_deadlock_find).
 */
static void
cycle_link(char *out, size_t size, size_t *used, int look,
    const struct lbd_wait *w, int named_who, const struct lbd_conn *oc,
    pid_t ot, int named_whom)
{
	char who[64], whom[64];
	int  n;

	if (*used >= size)
		return;
	if (!look)
		n = snprintf(out + *used, size - *used, "%san owner waits for "
		    "a lock you may not look at", *used != 0 ? "; " : "");
	else {
		owner_name(who, sizeof(who), w->conn, w->tid, named_who);
		owner_name(whom, sizeof(whom), oc, ot, named_whom);
		n = snprintf(out + *used, size - *used, "%s%s waits for "
		    "%s%s, %s %s", *used != 0 ? "; " : "", who, w->lock->path,
		    w->upgrade ? " (to upgrade)" : w->shared ? " (shared)" :
		    "", in_the_way(w, oc, ot), whom);
	}
	*used = n < 0 || (size_t)n >= size - *used ? size : *used + (size_t)n;
}

/* Links of a cycle told, at most: each costs a look at its lock as the
 * client (a path's every directory), which the search's bound does not
 * count; past them, how many more there are. */
#define CYCLE_TOLD_MAX 64

/*
 * Tells in why (size bytes) the cycle of s's steps chain[0..n-1] (each
 * step's wait's owner in the way of the one before it; the last one's
 * lock in the way of owner (hc, ht)), as client c may be told it: of a
 * lock c may not look at, neither its path nor the two owners beside it
 * in the cycle (the one that waits for it and the one in its way); its
 * first CYCLE_TOLD_MAX links, as many of them as fit.
 */
static void
cycle_tell(const struct search *s, const size_t *chain, size_t n,
    const struct lbd_conn *c, struct lbd_conn *hc, pid_t ht, char *why,
    size_t size)
{
	const struct lbd_wait *w, *nx;
	size_t                 k, used = 0;
	int                    look, prev, next, first;

	if (size > 0)
		why[0] = '\0';
	next = first = may_look(c, s->steps[chain[0]].w->lock);
	prev = may_look(c, s->steps[chain[n - 1]].w->lock);
	for (k = 0; k < n && used < size; k++) {
		if (k == CYCLE_TOLD_MAX) {
			snprintf(why + used, size - used, "; and %lu more waits in the cycle",
			    (unsigned long)(n - k));
			break;
		}
		w = s->steps[chain[k]].w;
		nx = k + 1 < n ? s->steps[chain[k + 1]].w : NULL;
		look = next;
		next = nx != NULL ? may_look(c, nx->lock) : first;
		cycle_link(why, size, &used, look, w, look && prev,
		    nx != NULL ? nx->conn : hc, nx != NULL ? nx->tid : ht,
		    look && next);
		prev = look;
	}
}

/* Entries waited_for looks at, at most, before it leaves it to the
 * search. */
#define WAITED_FOR_MAX 64

/*
 * Whether some owner could wait for owner (c, tid): it holds a lock (a
 * hold, or a rider's) or another wait is queued behind one of its waits.
 * When none can, no cycle runs through it, and a search from its newest
 * wait (at its queue's tail) is spared: without this, each of n waits
 * queued behind one another walked the queue ahead of it.  Past
 * WAITED_FOR_MAX entries of c's it says 1 and leaves it to the search.
 */
static int
waited_for(const struct lbd_conn *c, pid_t tid)
{
	const struct lbd_hold *h;
	const struct lbd_wait *w;
	unsigned               n = 0;

	LIST_FOREACH(h, &c->holds, conn_entry)
		if (h->tid == tid || ++n > WAITED_FOR_MAX)
			return 1;
	LIST_FOREACH(h, &c->readers, conn_entry)
		if (h->tid == tid || ++n > WAITED_FOR_MAX)
			return 1;
	LIST_FOREACH(w, &c->waits, conn_entry)
		if ((w->tid == tid && TAILQ_NEXT(w, lock_entry) != NULL) ||
		    ++n > WAITED_FOR_MAX)
			return 1;
	return 0;
}

/* lbd_deadlock_find: see deadlock.h. */
int
lbd_deadlock_find(struct lbd *d, struct lbd_conn *c, pid_t tid,
    struct lbd_wait *from, struct lbd_wait **first, char *why, size_t size)
{
	struct search    s;
	struct lbd_conn *hc = NULL;
	struct owner    *o;
	size_t           i, j, k, *chain = NULL, nchain = 0;
	pid_t            ht = 0;
	int              found = 0;

	if (from != NULL && TAILQ_NEXT(from, lock_entry) == NULL &&
	    !waited_for(c, tid))
		return 0;
	if (d->deadlock_mem == NULL &&
	    (d->deadlock_mem = calloc(1, sizeof(*d->deadlock_mem))) == NULL)
		return 0;
	memset(&s, 0, sizeof(s));
	s.steps = d->deadlock_mem->steps;
	s.size = d->deadlock_mem->steps_size;
	s.owners = d->deadlock_mem->owners;
	s.owners_size = d->deadlock_mem->owners_size;
	s.stamp = ++d->deadlock_stamp;
	if (from == NULL)
		owner_waits(&s, c, tid, ROOT);
	else if ((o = owner_get(&s, c, tid)) != NULL) {
		/* From that wait alone: the owner's others were looked at
		 * as they were queued. */
		o->expanded = 1;
		step_add(&s, from, ROOT);
	}
	for (i = 0; i < s.n && !s.failed; i++)
		if ((found = wait_edges(&s, i, c, tid, &hc, &ht)) == 1)
			break;
	if (found != 1 || s.failed)
		goto out;
	/* The cycle: from one of the owner's waits (the one it leaves by)
	 * to step i's, whose way is stood in by the owner. */
	for (j = i; s.steps[j].from != ROOT; j = s.steps[j].from)
		nchain++;
	*first = s.steps[j].w;
	nchain++;
	if ((chain = calloc(nchain, sizeof(*chain))) == NULL) {
		snprintf(why, size, "a cycle of waits through pid %ld",
		    (long)c->pid);
		goto out;
	}
	for (j = i, k = nchain; j != ROOT; j = s.steps[j].from)
		chain[--k] = j;
	cycle_tell(&s, chain, nchain, c, hc, ht, why, size);
out:
	free(chain);
	d->deadlock_mem->steps = s.steps;
	d->deadlock_mem->steps_size = s.size;
	d->deadlock_mem->owners = s.owners;
	d->deadlock_mem->owners_size = s.owners_size;
	return found == 1 && !s.failed;
}

/* lbd_deadlock_end: see deadlock.h. */
void
lbd_deadlock_end(struct lbd *d)
{
	if (d->deadlock_mem == NULL)
		return;
	free(d->deadlock_mem->steps);
	free(d->deadlock_mem->owners);
	free(d->deadlock_mem);
	d->deadlock_mem = NULL;
}
