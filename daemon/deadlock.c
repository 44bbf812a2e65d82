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
 * one).
 *
 * One wait waits for any of several owners, not for each: a shared
 * request in the run of shared requests at the head of a lock's queue,
 * which the lock's readers serve, waits only for room under
 * readers_per_lock (a bounded wait).  The run is served in its order,
 * each request as room comes; a request of an owner that reads the lock
 * or asked earlier in the run takes no place.  So the run's place k is
 * granted once `need` owners have gone: past the bound, one for each
 * place up to it that takes one; each reader's going frees one, and the
 * going of each owner whose place, ahead of k, took one (once granted).
 * A search sums a lock's run up once, as its room (room_make: the
 * readers, then the places in order, each with its need), and draws no
 * edge from its waits.  A search that meets a room cannot tell a cycle
 * by a path alone: it goes on over the part of the graph it reaches,
 * then counts down from the ends of the graph which owners can go (an
 * owner once all its waits can be granted; a wait once each owner it
 * waits for can go; a room's places in order, each once the owners that
 * can go among its readers and the places ahead of it are as many as it
 * needs), and the searched owner is in a cycle when it cannot go
 * (fixpoint; a path back to it through owners that cannot go names the
 * cycle).  Every wait is looked at as it is queued: the graph had no cycle
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
#include "readers.h"
#include "wait.h"

/* A wait reached by the search, and the step it was reached from. */
struct step {
	struct lbd_wait *w;
	size_t           from;          /* index in the steps; ROOT for the
	                                   searched owner's own waits */
	size_t           owner;         /* its owner's number (owner.num) */
	size_t           edges;         /* its edges: the search's edges */
	size_t           nedges;        /* [edges, edges + nedges) */
	size_t           need;          /* of its edges' owners, how many
	                                   must go before it is granted
	                                   (counted down by fixpoint); of a
	                                   bounded wait, 1 till its place in
	                                   its room is granted, or 0 */
	size_t           room;          /* a bounded wait's room */
	size_t           item;          /* and its place's item there */
	unsigned char    bounded;       /* waits for room, not for edges */
	unsigned char    or_path;       /* reached past a room: a path
	                                   through it is no cycle by
	                                   itself */
};

/* A room: the run of shared requests at the head of a lock's queue, as
 * a search sums it up (room_make): its readers' items, then its places'
 * in the queue's order, in the search's items. */
struct room {
	struct lbd_lock *l;
	size_t           items, readers, n;  /* [items, items + n): the first
	                                        readers are the readers' */
	size_t           at;            /* fixpoint: the first place not
	                                   granted (an item's index) */
	size_t           gone;          /* fixpoint: readers that can go, and
	                                   owners that can go of the places
	                                   before at that take one */
};

/* An item of a room: a reader, or a place in its run. */
struct item {
	size_t        owner;            /* its owner's number, or NOBODY (a
	                                   hold or wait kept for a process:
	                                   may go) */
	size_t        step;             /* a place's wait's step, or NOBODY
	                                   (not in the search) */
	long long     need;             /* a place's: owners' goings that
	                                   grant it */
	struct lbd_conn *c;             /* its owner (room_make's) */
	pid_t         tid;
	size_t        room;             /* its room */
	unsigned char takes;            /* a place that takes one */
	unsigned char goes;             /* fixpoint: its owner can go */
};

#define NOBODY ((size_t)-1)

/* An edge: step's wait waits for owner (its number) to go. */
struct edge {
	size_t step;
	size_t owner;
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
	size_t                 num;     /* its number: the nth met */
	size_t                 mark;    /* room_make's: the room + 1 that
	                                   counted it */
};

/* A search's tables, kept from one search to the next (grown, never
 * given back till the daemon ends): a large search costs no allocation,
 * clearing or page faults the next time. */
struct lbd_deadlock_mem {
	struct step  *steps;
	size_t        steps_size;
	struct owner *owners;
	size_t        owners_size;
	struct edge  *edges;
	size_t        edges_size;
	struct room  *rooms;
	size_t        rooms_size;
	struct item  *items;
	size_t        items_size;
	size_t       *scratch;          /* fixpoint's */
	size_t        scratch_size;
};

struct search {
	struct step  *steps;
	size_t        n, size;
	struct owner *owners;           /* open addressing; a slot of
	                                   another stamp: free */
	size_t        nowners, owners_size;
	struct edge  *edges;
	size_t        nedges, edges_size;
	struct room  *rooms;
	size_t        nrooms, rooms_size;
	struct item  *items;
	size_t        nitems, items_size;
	size_t       *scratch;
	size_t        scratch_size;
	size_t        root;             /* the searched owner's number */
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
		o->num = s->nowners++;
		o->mark = 0;
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

/* Adds wait w of owner number owner, reached from step from (past a
 * bounded wait: or_path), to the search (s failed when out of memory). */
static void
step_add(struct search *s, struct lbd_wait *w, size_t from, size_t owner,
    int or_path)
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
	memset(&s->steps[s->n], 0, sizeof(s->steps[s->n]));
	s->steps[s->n].w = w;
	s->steps[s->n].from = from;
	s->steps[s->n].owner = owner;
	s->steps[s->n].or_path = or_path != 0;
	s->n++;
}

/* Adds the edge from step i to owner number owner (s failed when out of
 * memory). */
static void
edge_add(struct search *s, size_t i, size_t owner)
{
	struct edge *grown;
	size_t       size;

	if (s->nedges == s->edges_size) {
		size = s->edges_size != 0 ? s->edges_size * 2 : 64;
		if ((grown = realloc(s->edges, size * sizeof(*grown))) ==
		    NULL) {
			s->failed = 1;
			return;
		}
		s->edges = grown;
		s->edges_size = size;
	}
	s->edges[s->nedges].step = i;
	s->edges[s->nedges].owner = owner;
	s->nedges++;
}

/* Adds every wait of owner (c, tid), reached from step from (past a
 * bounded wait: or_path), the first time the search reaches that
 * owner. */
static void
owner_waits(struct search *s, struct lbd_conn *c, pid_t tid, size_t from,
    int or_path)
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
			step_add(s, w, from, o->num, or_path);
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
 * Follows an edge from step i to owner (oc, ot), and notes it: 1 when
 * that owner is (c, tid), the searched one, along a path that met no
 * room (a cycle: the owner in *hc, *ht), else 0, that owner's waits
 * added.
 */
static int
edge(struct search *s, size_t i, struct lbd_conn *oc, pid_t ot,
    struct lbd_conn *c, pid_t tid, struct lbd_conn **hc, pid_t *ht)
{
	struct owner *o;
	int           or_path = s->steps[i].or_path;

	if ((o = owner_get(s, oc, ot)) == NULL)
		return 0;
	edge_add(s, i, o->num);
	if (s->failed)
		return 0;
	if (!same_owner(oc, ot, c, tid)) {
		owner_waits(s, oc, ot, i, or_path);
		return 0;
	}
	if (or_path)
		return 0;       /* the fixpoint judges it */
	*hc = oc;
	*ht = ot;
	return 1;
}


/*
 * Follows every edge out of step i's wait, one that waits for each of
 * them: to the owners it waits for (see above).  In the queue, only to those just ahead that it conflicts
 * with (the run of readers just ahead of a writer, or the writer nearest
 * ahead): they wait in turn for those ahead of them, which is the same
 * reach at a cost that does not grow with the queue for each of its
 * waits.  1 when one of the owners is (c, tid), the searched owner (in
 * *hc, *ht), else 0.
 */
static int
queue_edges(struct search *s, size_t i, struct lbd_conn *c, pid_t tid,
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

/* An array p (*size entries of elem bytes, n used) with room for one
 * more: p, or grown (*size updated), or NULL (s failed, p left as it
 * was) when out of memory. */
static void *
grow(struct search *s, void *p, size_t *size, size_t n, size_t elem)
{
	void   *grown;
	size_t  want;

	if (n < *size)
		return p;
	want = *size != 0 ? *size * 2 : 64;
	if ((grown = realloc(p, want * elem)) == NULL) {
		s->failed = 1;
		return NULL;
	}
	*size = want;
	return grown;
}

/* Adds an item (owner number, or NOBODY) to the room being made: its
 * index, or NOBODY (s failed). */
static size_t
item_add(struct search *s, size_t owner)
{
	struct item *it, *grown;

	if ((grown = grow(s, s->items, &s->items_size, s->nitems,
	    sizeof(*s->items))) == NULL)
		return NOBODY;
	s->items = grown;
	it = &s->items[s->nitems];
	memset(it, 0, sizeof(*it));
	it->owner = owner;
	it->step = NOBODY;
	it->room = s->nrooms;           /* the one being made */
	return s->nitems++;
}

/* The item of owner (c, tid) in room r (its number counted once: a
 * second item of it gets dup set), or NOBODY (s failed). */
static size_t
item_of(struct search *s, size_t r, struct lbd_conn *c, pid_t tid,
    int *dup)
{
	struct owner *o;

	size_t        it;

	if (work(s) != 0 || (o = owner_get(s, c, tid)) == NULL)
		return NOBODY;
	*dup = o->mark == r + 1;
	o->mark = r + 1;
	if ((it = item_add(s, o->num)) != NOBODY) {
		s->items[it].c = c;
		s->items[it].tid = tid;
	}
	return it;
}

/*
 * Sums up lock l's room (see above), once per search: its readers (one
 * kept for a process, which may go, frees one place: the bound less
 * one), then each place of its run (a kept request's place takes one,
 * and may go), each with the goings that grant it, each wait there
 * told its item.  The room's number, or NOBODY (s failed).
 */
static size_t
room_make(struct search *s, struct lbd_lock *l)
{
	struct room     *rm, *grown;
	struct lbd_hold *h;
	struct lbd_wait *v;
	size_t           r = s->nrooms, it, takers = 0;
	long long        base;
	int              dup;

	if (l->room_stamp == s->stamp)
		return l->room;
	if ((grown = grow(s, s->rooms, &s->rooms_size, s->nrooms,
	    sizeof(*s->rooms))) == NULL)
		return NOBODY;
	s->rooms = grown;
	rm = &s->rooms[r];
	memset(rm, 0, sizeof(*rm));
	rm->l = l;
	rm->items = s->nitems;
	base = (long long)l->nreaders + 1 -
	    (long long)l->d->cfg.limits.readers_per_lock;
	for (h = l->holder; h != NULL; h = h == l->holder ?
	    TAILQ_FIRST(&l->readers) : TAILQ_NEXT(h, reader_entry)) {
		/* The holder, then its riders. */
		if (h->conn == NULL)
			base--;
		else if (item_of(s, r, h->conn, h->tid, &dup) == NOBODY)
			return NOBODY;
		else
			s->rooms[r].readers++;
	}
	for (v = TAILQ_FIRST(&l->waiters); v != NULL && !wait_exclusive(v);
	    v = TAILQ_NEXT(v, lock_entry)) {
		if (v->kept_pid != 0) {
			dup = 0;
			if ((it = item_add(s, NOBODY)) == NOBODY)
				return NOBODY;
			s->items[it].goes = 1;
		} else if ((it = item_of(s, r, v->conn, v->tid, &dup)) ==
		    NOBODY)
			return NOBODY;
		/* A place that takes none is granted with the last one
		 * before it that does. */
		s->items[it].need = base + (long long)takers - (dup ? 1 : 0);
		if (dup && takers == 0)
			s->items[it].need = 0;
		s->items[it].takes = !dup;
		takers += !dup;
		v->room_stamp = s->stamp;
		v->room_item = it;
	}
	rm = &s->rooms[r];
	rm->n = s->nitems - rm->items;
	rm->at = rm->items + rm->readers;
	l->room_stamp = s->stamp;
	l->room = r;
	s->nrooms++;
	return r;
}

/*
 * Step i's wait w, when it is a bounded wait (a place in its lock's
 * room: the lock's readers serve its queue, and w is in the run of
 * shared requests at its head): noted as its room's, and, the first
 * time the search meets that room, every owner of the room reached (its
 * waits added, past a room: their paths prove nothing by themselves).
 * -1 when w is no such wait (queue_edges draws its edges), else 0.
 */
static int
bounded_edges(struct search *s, size_t i)
{
	struct lbd_wait *w = s->steps[i].w;
	struct lbd_lock *l = w->lock;
	struct item     *it;
	struct lbd_conn *oc;
	pid_t            ot;
	size_t           r, k;
	int              made = l->room_stamp != s->stamp;

	if (wait_exclusive(w) || !lbd_readers_serving(l) || l->cohort != NULL)
		return -1;
	if ((r = room_make(s, l)) == NOBODY || w->room_stamp != s->stamp)
		return s->failed ? 0 : -1;      /* a writer ahead */
	it = &s->items[w->room_item];
	it->step = i;
	s->steps[i].bounded = 1;
	s->steps[i].room = r;
	s->steps[i].item = w->room_item;
	s->steps[i].need = it->need > 0;
	if (!made)
		return 0;
	for (k = s->rooms[r].items; k < s->rooms[r].items + s->rooms[r].n &&
	    !s->failed; k++) {
		if (s->items[k].owner == NOBODY || s->items[k].owner == s->root)
			continue;
		oc = s->items[k].c;
		ot = s->items[k].tid;
		owner_waits(s, oc, ot, i, 1);
	}
	return 0;
}

/* Follows every edge out of step i's wait (bounded_edges, else
 * queue_edges), and notes what it needs: 1 when a cycle back to owner
 * (c, tid) is found by a path (in *hc, *ht), else 0. */
static int
wait_edges(struct search *s, size_t i, struct lbd_conn *c, pid_t tid,
    struct lbd_conn **hc, pid_t *ht)
{
	int found = 0;

	s->steps[i].edges = s->nedges;
	if (bounded_edges(s, i) < 0)
		found = queue_edges(s, i, c, tid, hc, ht);
	s->steps[i].nedges = s->nedges - s->steps[i].edges;
	if (!s->steps[i].bounded)
		s->steps[i].need = s->steps[i].nedges;
	return found;
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

/* fixpoint's tables, in s->scratch: per owner (by number) its waits
 * that lack some (0: it can go), where its edges in, its steps and its
 * room items start in rev, osteps and oitems, a queue of owners; the
 * steps with an edge to each owner (rev), each owner's steps (osteps),
 * each owner's room items (oitems), and a queue of steps. */
struct fix {
	size_t *blocked, *rstart, *ostart, *istart, *queue;
	size_t *rev, *osteps, *oitems, *bfs;
	size_t  tail;                   /* the queue's */
};

/* Lays s's fixpoint tables out in s->scratch, grown to fit: 0, or -1 (s
 * failed) when out of memory. */
static int
fix_tables(struct search *s, struct fix *f)
{
	size_t  no = s->nowners;
	size_t  size = 5 * no + 3 + s->nedges + 2 * s->n + s->nitems;
	size_t *grown;

	if (size > s->scratch_size) {
		if ((grown = realloc(s->scratch, size * sizeof(*grown))) ==
		    NULL) {
			s->failed = 1;
			return -1;
		}
		s->scratch = grown;
		s->scratch_size = size;
	}
	f->blocked = s->scratch;
	f->rstart = f->blocked + no;
	f->ostart = f->rstart + no + 1;
	f->istart = f->ostart + no + 1;
	f->queue = f->istart + no + 1;
	f->rev = f->queue + no;
	f->osteps = f->rev + s->nedges;
	f->oitems = f->osteps + s->n;
	f->bfs = f->oitems + s->nitems;
	f->tail = 0;
	return 0;
}

/* Fills an index by owner: start[0..no] (counted per owner in
 * start[owner], zeroed by the caller) and out, the n entries' positions
 * (of owner key(j)) grouped by owner, in order. */
#define BY_OWNER(start, out, n, key) do {				\
	size_t j_, o_;							\
	for (j_ = 0; j_ < (n); j_++)					\
		if ((key) != NOBODY)					\
			(start)[(key)]++;				\
	for (o_ = 1; o_ <= no; o_++)					\
		(start)[o_] += (start)[o_ - 1];				\
	for (j_ = (n); j_-- > 0; )					\
		if ((key) != NOBODY)					\
			(out)[--(start)[(key)]] = j_;			\
} while (0)

/* Step j (its need not 0) is granted: its owner, once all its waits
 * are, can go (queued in f). */
static void
step_granted(struct search *s, struct fix *f, size_t j)
{
	s->steps[j].need = 0;
	if (--f->blocked[s->steps[j].owner] == 0)
		f->queue[f->tail++] = s->steps[j].owner;
}

/* Grants room r's places in order while the goings counted reach the
 * next one's need (those after a place not granted are not: each needs
 * as many goings as the one before, or one more and one more owner). */
static void
room_serve(struct search *s, struct fix *f, size_t r)
{
	struct room *rm = &s->rooms[r];
	struct item *it;

	for (; rm->at < rm->items + rm->n; rm->at++) {
		it = &s->items[rm->at];
		if ((long long)rm->gone < it->need)
			break;
		if (it->step != NOBODY && s->steps[it->step].need > 0)
			step_granted(s, f, it->step);
		if (it->takes && it->goes)
			rm->gone++;
	}
}

/* Owner o can go: each of its room items counted (a reader's going, or
 * a place's once it is granted), its rooms served on. */
static void
owner_goes(struct search *s, struct fix *f, size_t o)
{
	struct item *it;
	struct room *rm;
	size_t       k;

	for (k = f->istart[o]; k < f->istart[o + 1]; k++) {
		it = &s->items[f->oitems[k]];
		it->goes = 1;
		rm = &s->rooms[it->room];
		if (f->oitems[k] < rm->items + rm->readers ||
		    (it->takes && f->oitems[k] < rm->at))
			rm->gone++;
		room_serve(s, f, it->room);
	}
}

/*
 * Whether the searched owner (s->root) can never go: which owners can go
 * is counted down from the ends of the graph (each step's need, each
 * owner's waits that need some), each owner that can go taking one off
 * the need of every wait with an edge to it, and counted in its rooms.
 * Leaves in each step's need what it still lacks (0: granted in time)
 * and f filled (for fixpoint_cycle).  0 when out of memory (s failed:
 * never a false cycle).
 */
static int
fixpoint(struct search *s, struct fix *f)
{
	size_t no = s->nowners, head = 0, j, k, o, r;

	if (fix_tables(s, f) != 0)
		return 0;
	memset(s->scratch, 0, (4 * no + 3) * sizeof(*s->scratch));
	BY_OWNER(f->rstart, f->rev, s->nedges, s->edges[j_].owner);
	BY_OWNER(f->ostart, f->osteps, s->n, s->steps[j_].owner);
	BY_OWNER(f->istart, f->oitems, s->nitems, s->items[j_].owner);
	for (j = 0; j < s->nedges; j++)
		f->rev[j] = s->edges[f->rev[j]].step;
	for (j = 0; j < s->n; j++)
		if (s->steps[j].need > 0)
			f->blocked[s->steps[j].owner]++;
	for (o = 0; o < no; o++)
		if (f->blocked[o] == 0)
			f->queue[f->tail++] = o;
	for (r = 0; r < s->nrooms; r++) {
		s->rooms[r].at = s->rooms[r].items + s->rooms[r].readers;
		s->rooms[r].gone = 0;
		room_serve(s, f, r);
	}
	while (head < f->tail) {
		o = f->queue[head++];
		for (k = f->rstart[o]; k < f->rstart[o + 1]; k++) {
			j = f->rev[k];
			if (s->steps[j].need == 1)
				step_granted(s, f, j);
			else if (s->steps[j].need > 1)
				s->steps[j].need--;
		}
		owner_goes(s, f, o);
	}
	return f->blocked[s->root] > 0;
}

/* Step j's way onwards in fixpoint_cycle, through owner o: 1 when o is
 * the searched owner (the cycle closed), else 0, o's waits never granted
 * queued from j unless o can go or was met. */
static int
cycle_step(struct search *s, struct fix *f, size_t j, size_t o)
{
	size_t k;

	if (o == NOBODY)
		return 0;
	if (o == s->root)
		return 1;
	if (f->blocked[o] == 0 || f->blocked[o] == SIZE_MAX)
		return 0;       /* goes, or met */
	f->blocked[o] = SIZE_MAX;
	for (k = f->ostart[o]; k < f->ostart[o + 1]; k++)
		if (s->steps[f->osteps[k]].need > 0) {
			s->steps[f->osteps[k]].from = j;
			f->bfs[f->tail++] = f->osteps[k];
		}
	return 0;
}

/*
 * After fixpoint: a cycle back to the searched owner through waits never
 * granted, each to an owner that never goes (of a bounded wait: a reader
 * of its room, or the owner of a place ahead of it), found breadth first
 * from the owner's waits: the last step of it (each step's from the one
 * before it), or ROOT when there is none (the owner waits for others'
 * cycle, which it does not close).
 */
static size_t
fixpoint_cycle(struct search *s, struct fix *f)
{
	struct room *rm;
	size_t       j, e, k, head = 0;

	f->tail = 0;
	f->blocked[s->root] = SIZE_MAX;         /* met */
	for (k = f->ostart[s->root]; k < f->ostart[s->root + 1]; k++)
		if (s->steps[f->osteps[k]].need > 0) {
			s->steps[f->osteps[k]].from = ROOT;
			f->bfs[f->tail++] = f->osteps[k];
		}
	while (head < f->tail) {
		j = f->bfs[head++];
		for (e = s->steps[j].edges; e < s->steps[j].edges +
		    s->steps[j].nedges; e++)
			if (cycle_step(s, f, j, s->edges[e].owner))
				return j;
		if (!s->steps[j].bounded)
			continue;
		rm = &s->rooms[s->steps[j].room];
		for (k = rm->items; k < s->steps[j].item; k++)
			if ((k < rm->items + rm->readers ||
			    s->items[k].takes) &&
			    cycle_step(s, f, j, s->items[k].owner))
				return j;
	}
	return ROOT;
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
 * the way of (bounded: w waits for room under readers_per_lock, which
 * none of its lock's readers makes).  look tells whether that client may
 * look at w's lock (else only that a lock it may not look at is waited
 * for), named_who and named_whom whether each owner may be named (see
 * lbd_deadlock_find).
 */
static void
cycle_link(char *out, size_t size, size_t *used, int look,
    const struct lbd_wait *w, int bounded, int named_who,
    const struct lbd_conn *oc, pid_t ot, int named_whom)
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
		    w->upgrade ? " (to upgrade)" : !w->shared ? "" : bounded ?
		    " (shared, past readers_per_lock: each reader waits)" :
		    " (shared)", in_the_way(w, oc, ot), whom);
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
		cycle_link(why, size, &used, look, w,
		    s->steps[chain[k]].bounded, look && prev,
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
	struct fix       f;
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
	s.edges = d->deadlock_mem->edges;
	s.edges_size = d->deadlock_mem->edges_size;
	s.rooms = d->deadlock_mem->rooms;
	s.rooms_size = d->deadlock_mem->rooms_size;
	s.items = d->deadlock_mem->items;
	s.items_size = d->deadlock_mem->items_size;
	s.scratch = d->deadlock_mem->scratch;
	s.scratch_size = d->deadlock_mem->scratch_size;
	s.stamp = ++d->deadlock_stamp;
	if (from == NULL)
		owner_waits(&s, c, tid, ROOT, 0);
	else if ((o = owner_get(&s, c, tid)) != NULL) {
		/* From that wait alone: the owner's others were looked at
		 * as they were queued. */
		o->expanded = 1;
		step_add(&s, from, ROOT, o->num, 0);
	}
	if ((o = owner_get(&s, c, tid)) != NULL)
		s.root = o->num;
	for (i = 0; i < s.n && !s.failed; i++)
		if ((found = wait_edges(&s, i, c, tid, &hc, &ht)) == 1)
			break;
	/* Past a bounded wait, a path is no proof: the owners that can go
	 * are counted. */
	if (found != 1 && !s.failed && s.nrooms > 0 && fixpoint(&s, &f) &&
	    !s.failed && (i = fixpoint_cycle(&s, &f)) != ROOT) {
		found = 1;
		hc = c;
		ht = tid;
	}
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
	d->deadlock_mem->edges = s.edges;
	d->deadlock_mem->edges_size = s.edges_size;
	d->deadlock_mem->rooms = s.rooms;
	d->deadlock_mem->rooms_size = s.rooms_size;
	d->deadlock_mem->items = s.items;
	d->deadlock_mem->items_size = s.items_size;
	d->deadlock_mem->scratch = s.scratch;
	d->deadlock_mem->scratch_size = s.scratch_size;
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
	free(d->deadlock_mem->edges);
	free(d->deadlock_mem->rooms);
	free(d->deadlock_mem->items);
	free(d->deadlock_mem->scratch);
	free(d->deadlock_mem);
	d->deadlock_mem = NULL;
}
