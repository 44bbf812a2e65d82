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
 * readers_per_lock.  It is granted once `need` places have come free:
 * one for it, one for each owner's request ahead of it in the run (each
 * granted in turn takes one), past the bound; each reader's going frees
 * one, and each owner's ahead of it once it was granted (bounded_edges).
 * A search that meets such a wait cannot tell a cycle by a path alone:
 * it goes on over the part of the graph it reaches, then counts down
 * from the ends of the graph which owners can go (an owner once all its
 * waits can be granted; a wait once each owner it waits for can go, or
 * a bounded one once `need` of them can), and the searched owner is in
 * a cycle when it cannot go (fixpoint; a path back to it through owners
 * that cannot go names the cycle).  Every wait is looked at as it is queued: the graph had no cycle
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
	                                   must go before it is granted: all
	                                   of them, or of a bounded wait some;
	                                   counted down by fixpoint */
	unsigned char    bounded;       /* waits for any `need` of them */
	unsigned char    or_path;       /* reached past a bounded wait: a
	                                   path through it is no cycle by
	                                   itself */
};

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
	size_t                 mark;    /* bounded_edges': the step + 1 that
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
	size_t       *scratch;
	size_t        scratch_size;
	size_t        root;             /* the searched owner's number */
	size_t        nbounded;         /* bounded waits that need some */
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
 * Follows an edge from step i to owner (oc, ot), a bounded wait's when
 * bounded, and notes it: 1 when that owner is (c, tid), the searched one,
 * along a path of edges that each wait for their owner alone (a cycle:
 * the owner in *hc, *ht), else 0, that owner's waits added.
 */
static int
edge_to(struct search *s, size_t i, struct lbd_conn *oc, pid_t ot,
    int bounded, struct lbd_conn *c, pid_t tid, struct lbd_conn **hc,
    pid_t *ht)
{
	struct owner *o;
	int           or_path = bounded || s->steps[i].or_path;

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

/* edge_to, of a wait that waits for that owner alone. */
static int
edge(struct search *s, size_t i, struct lbd_conn *oc, pid_t ot,
    struct lbd_conn *c, pid_t tid, struct lbd_conn **hc, pid_t *ht)
{
	return edge_to(s, i, oc, ot, 0, c, tid, hc, ht);
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

/*
 * Step i's edges when its wait w is a shared request in the run of
 * shared requests at the head of its lock's queue, which the lock's
 * readers serve (a bounded wait): w is granted once the room under
 * readers_per_lock has come for it and for each owner's request ahead
 * of it in the run, which takes `need` owners' going, of its lock's
 * readers or of those owners (once granted).  Its edges go to each of
 * them, once.  An owner that reads the lock already, or has a request
 * ahead already, takes no place (granted with what it holds); a reader
 * or a request kept for a process is one that may go (not known); a
 * wait behind its owner's own one is granted with it, and one of an
 * owner that reads the lock is granted once at the head (neither waits
 * for room: no edge, nothing needed).  A cluster lock's gate is not
 * known: no edge.  -1 when w is not such a wait (queue_edges draws its
 * edges), else 0.
 */
static int
bounded_edges(struct search *s, size_t i, struct lbd_conn *c, pid_t tid)
{
	struct lbd_wait *w = s->steps[i].w, *v;
	struct lbd_lock *l = w->lock;
	struct lbd_hold *r;
	struct owner    *o;
	struct lbd_conn *hc;
	pid_t            ht;
	size_t           ahead = 0, mark = i + 1;
	long long        need;

	if (wait_exclusive(w) || !lbd_readers_serving(l))
		return -1;
	for (v = TAILQ_PREV(w, lbd_waitq, lock_entry); v != NULL;
	    v = TAILQ_PREV(v, lbd_waitq, lock_entry)) {
		if (work(s) != 0)
			return 0;
		if (wait_exclusive(v))
			return -1;      /* a writer ahead: waits for it */
		if (v->kept_pid != 0)
			continue;       /* takes a place, and may free one */
		if (same_owner(v->conn, v->tid, w->conn, w->tid))
			return 0;       /* granted with that one */
		ahead++;
	}
	s->steps[i].bounded = 1;
	need = (long long)l->nreaders + 1 + (long long)ahead -
	    (long long)l->d->cfg.limits.readers_per_lock;
	if (need <= 0 || l->cohort != NULL)
		return 0;
	for (r = l->holder; r != NULL; r = r == l->holder ?
	    TAILQ_FIRST(&l->readers) : TAILQ_NEXT(r, reader_entry)) {
		/* The holder, then its riders. */
		if (work(s) != 0)
			return 0;
		if (r->conn == NULL) {
			need--;         /* kept: may go */
			continue;
		}
		if (same_owner(r->conn, r->tid, w->conn, w->tid))
			return 0;       /* granted once at the head */
		if ((o = owner_get(s, r->conn, r->tid)) == NULL)
			return 0;
		o->mark = mark;
		edge_to(s, i, r->conn, r->tid, 1, c, tid, &hc, &ht);
	}
	for (v = TAILQ_PREV(w, lbd_waitq, lock_entry); v != NULL;
	    v = TAILQ_PREV(v, lbd_waitq, lock_entry)) {
		if (work(s) != 0)
			return 0;
		if (v->kept_pid != 0)
			continue;
		if ((o = owner_get(s, v->conn, v->tid)) == NULL)
			return 0;
		if (o->mark == mark) {
			need--;         /* reads, or asked ahead: no place */
			continue;
		}
		o->mark = mark;
		edge_to(s, i, v->conn, v->tid, 1, c, tid, &hc, &ht);
	}
	s->steps[i].need = need > 0 ? (size_t)need : 0;
	return 0;
}

/* Follows every edge out of step i's wait (bounded_edges, else
 * queue_edges), and notes what it needs: 1 when a cycle back to owner
 * (c, tid) is found by a path (in *hc, *ht), else 0. */
static int
wait_edges(struct search *s, size_t i, struct lbd_conn *c, pid_t tid,
    struct lbd_conn **hc, pid_t *ht)
{
	int found;

	s->steps[i].edges = s->nedges;
	if ((found = bounded_edges(s, i, c, tid)) < 0)
		found = queue_edges(s, i, c, tid, hc, ht);
	s->steps[i].nedges = s->nedges - s->steps[i].edges;
	if (!s->steps[i].bounded)
		s->steps[i].need = s->steps[i].nedges;
	else if (s->steps[i].need > 0)
		s->nbounded++;
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
 * that lack some (0: it can go), where its edges in and its steps start
 * in rev and osteps, a queue of owners; the steps with an edge to each
 * owner (rev), each owner's steps (osteps), and a queue of steps. */
struct fix {
	size_t *blocked, *rstart, *ostart, *queue, *rev, *osteps, *bfs;
};

/* Lays s's fixpoint tables out in s->scratch, grown to fit: 0, or -1 (s
 * failed) when out of memory. */
static int
fix_tables(struct search *s, struct fix *f)
{
	size_t  no = s->nowners, size = 4 * no + 2 + s->nedges + 2 * s->n;
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
	f->queue = f->ostart + no + 1;
	f->rev = f->queue + no;
	f->osteps = f->rev + s->nedges;
	f->bfs = f->osteps + s->n;
	return 0;
}

/*
 * Whether the searched owner (s->root) can never go: which owners can go
 * is counted down from the ends of the graph (each step's need, each
 * owner's waits that need some), each owner that can go taking one off
 * the need of every wait with an edge to it.  Leaves in each step's need
 * what it still lacks (0: granted in time) and f filled (for
 * fixpoint_cycle).  0 when out of memory (s failed: never a false
 * cycle).
 */
static int
fixpoint(struct search *s, struct fix *f)
{
	size_t no = s->nowners, ne = s->nedges, n = s->n, j, k, o;
	size_t head = 0, tail = 0;

	if (fix_tables(s, f) != 0)
		return 0;
	memset(s->scratch, 0, (3 * no + 2) * sizeof(*s->scratch));
	/* Counted per owner, summed (each owner's end), then filled from
	 * the ends down: each owner's start, the next one's its end. */
	for (j = 0; j < ne; j++)
		f->rstart[s->edges[j].owner]++;
	for (j = 0; j < n; j++) {
		f->ostart[s->steps[j].owner]++;
		if (s->steps[j].need > 0)
			f->blocked[s->steps[j].owner]++;
	}
	for (o = 1; o <= no; o++) {
		f->rstart[o] += f->rstart[o - 1];
		f->ostart[o] += f->ostart[o - 1];
	}
	for (j = ne; j-- > 0; )
		f->rev[--f->rstart[s->edges[j].owner]] = s->edges[j].step;
	for (j = n; j-- > 0; )
		f->osteps[--f->ostart[s->steps[j].owner]] = j;
	for (o = 0; o < no; o++)
		if (f->blocked[o] == 0)
			f->queue[tail++] = o;
	while (head < tail) {
		o = f->queue[head++];
		for (k = f->rstart[o]; k < f->rstart[o + 1]; k++) {
			j = f->rev[k];
			if (s->steps[j].need == 0 || --s->steps[j].need > 0)
				continue;
			if (--f->blocked[s->steps[j].owner] == 0)
				f->queue[tail++] = s->steps[j].owner;
		}
	}
	return f->blocked[s->root] > 0;
}

/*
 * After fixpoint: a cycle back to the searched owner through waits never
 * granted, each to an owner that never goes, found breadth first from
 * the owner's waits: the last step of it (each step's from the one
 * before it), or ROOT when there is none (the owner waits for others'
 * cycle, which it does not close).
 */
static size_t
fixpoint_cycle(struct search *s, struct fix *f)
{
	size_t j, e, k, o, head = 0, tail = 0;

	f->blocked[s->root] = SIZE_MAX;         /* met */
	for (k = f->ostart[s->root]; k < f->ostart[s->root + 1]; k++)
		if (s->steps[f->osteps[k]].need > 0) {
			s->steps[f->osteps[k]].from = ROOT;
			f->bfs[tail++] = f->osteps[k];
		}
	while (head < tail) {
		j = f->bfs[head++];
		for (e = s->steps[j].edges; e < s->steps[j].edges +
		    s->steps[j].nedges; e++) {
			o = s->edges[e].owner;
			if (o == s->root)
				return j;
			if (f->blocked[o] == 0 || f->blocked[o] == SIZE_MAX)
				continue;       /* goes, or met */
			f->blocked[o] = SIZE_MAX;
			for (k = f->ostart[o]; k < f->ostart[o + 1]; k++)
				if (s->steps[f->osteps[k]].need > 0) {
					s->steps[f->osteps[k]].from = j;
					f->bfs[tail++] = f->osteps[k];
				}
		}
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
	if (found != 1 && !s.failed && s.nbounded > 0 && fixpoint(&s, &f) &&
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
	free(d->deadlock_mem->scratch);
	free(d->deadlock_mem);
	d->deadlock_mem = NULL;
}
