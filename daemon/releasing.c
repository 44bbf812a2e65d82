/*
 * releasing.c: the retries of releasing holds (lock.c draws the lock's
 * states): one queue per user and lock database, first in first out,
 * never a timer per hold.  A queue is named by its user and its locks'
 * directory, whose database it is (relq_dir).
 *
 *            busy try: the hold back to the queue's tail
 *          +----------------------------------------------+
 *          v                                              |
 *   WAITING (its timer: 10 ms, then twice  --->  DUE (in its user's
 *   as long after each busy try, up to     timer  queues due; the user
 *   500 ms; longer when the rate asks)            in the ring) --+
 *                                                   ^  try ended |
 *                                                   +--the hold--+
 *   (no holds left: the queue is freed)
 *
 * A database that another process keeps busy is busy for every hold in
 * it: a try that finds it so stands for its whole queue, which then
 * waits.  A try that ends its hold (its row removed or handed over)
 * leaves the queue due, for its next hold.  Tries are looks (looks.c):
 * the end of each loop iteration makes them, a hold at a time,
 * round-robin over the users with queues due and over each one's queues,
 * within the looks' budget per iteration (one try at least); and the
 * waits after busy tries are spread so that all queues together make at
 * most a quarter of the looks' rate of busy tries a second (256), shared
 * equally by the users who have releasing holds: a user's many holds and
 * databases slow down that user's own retries, not another's.  What busy
 * databases cost is thus bounded whatever the number of holds and
 * databases; each hold's own end, once its database is free, is one
 * try.
 *
 * The same queues look again at the orphans of the previous run whose
 * artefact could not be judged at start because their database was busy
 * (reconcile.c, lbd_orphan_judge): such a hold is held for its holder
 * meanwhile, and a look that finds the database busy again is a busy try
 * like a release's.  There are never more of them than the records read
 * at start (none is added later), and each ends with its grace period
 * (a kept hold, with its process).  An orphan refused to its process
 * (reconcile.c) is tried first, at once (lbd_releasing_soon): its try
 * only forgets it.
 *
 * A queue is keyed by the holds' uid (their tries run as that user, and
 * a user shares its part of the rate with nobody) and by the database's
 * name (a directory reached by two names gets two queues: more tries,
 * never fewer).  A hold leaves its queue when it ends, however that
 * comes (its row gone, handed over, broken, or detached when the daemon
 * stops); a queue without holds is freed.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "hold.h"
#include "log.h"
#include "looks.h"
#include "loop.h"
#include "reconcile.h"
#include "releasing.h"
#include "subuids.h"

#define LBD_RELEASE_RETRY_MS     10
#define LBD_RELEASE_RETRY_MAX_MS 500
#define RELQ_BUCKETS             1024
/* What a busy try costs in looks (looks.c) of the rate: it opens the
 * database, and writes and removes its journal, several times the work
 * of a poll's stat. */
#define LBD_RELEASE_TRY_LOOKS    4

/* A user who has releasing holds: its queues, and those of them that
 * are due for a try. */
struct relq_user {
	uid_t                    uid;       /* a subordinate uid's owner's
	                                       (subuids.h) */
	unsigned                 nqueues;
	TAILQ_HEAD(, lbd_relq)   ready;     /* its queues due, in turn */
	int                      listed;    /* in the users' ring */
	TAILQ_ENTRY(relq_user)   ring_entry;
	struct relq_user        *next;
};

struct lbd_relq {
	struct lbd              *d;
	uid_t                    uid;
	char                    *dir;       /* its lock database's directory
	                                       (relq_dir) */
	struct relq_user        *user;
	TAILQ_HEAD(, lbd_hold)   holds;     /* the head is tried next */
	uv_timer_t              *timer;     /* while not ready: its wait */
	unsigned                 backoff_ms; /* its wait after a busy try */
	int                      ended;     /* its last try ended a hold */
	int                      ready;     /* in user->ready: due */
	TAILQ_ENTRY(lbd_relq)    ready_entry;
	int                      trying;    /* a try is under way: not freed */
	struct lbd_hold         *tried;     /* the hold being tried */
	int                      busy;      /* the try found the database busy */
	struct lbd_relq         *hash_next;
};

TAILQ_HEAD(relq_ring, relq_user);

struct lbd_relqs {
	struct lbd_relq         *buckets[RELQ_BUCKETS];
	size_t                   n;         /* queues */
	struct relq_user        *users;
	unsigned                 nusers;
	struct relq_ring         ring;      /* users with queues due, in
	                                       turn */
};

/* FNV-1a of a queue's key: its user and the first len bytes of dir. */
static size_t
relq_hash(uid_t uid, const char *dir, size_t len)
{
	size_t h = 14695981039346656037ull ^ (size_t)uid;

	for (; len > 0; dir++, len--) {
		h ^= (unsigned char)*dir;
		h *= 1099511628211ull;
	}
	return h % RELQ_BUCKETS;
}

/* The length of the directory part of h's lock path, which names its
 * queue: a lock database is its directory's (DIR/.lockbroker.sqlite), and
 * a hold keeps only its path between steps (lbd_hold_names), so its
 * database's name is not at hand. */
static size_t
relq_dir(const struct lbd_hold *h)
{
	return lockfs_dir_len(h->fs.path);
}

/* Frees a timer handle once libuv is done with it. */
static void
timer_free(uv_handle_t *t)
{
	free(t);
}

/* How long q waits before its next try, in ms: its backoff, or longer
 * when its user's share of the looks' rate (an equal share for each user
 * with releasing holds, split among its queues; a try counting as
 * LBD_RELEASE_TRY_LOOKS looks) asks for it. */
static uint64_t
relq_delay(const struct lbd_relq *q)
{
	return lbd_looks_delay_ms(q->backoff_ms / 1000.0,
	    (double)LBD_RELEASE_TRY_LOOKS * q->d->relqs->nusers *
	    q->user->nqueues);
}

/* q is due: at the tail of its user's queues due, its user in the ring
 * (at the tail) if it was not; the iteration's end will try it. */
static void
relq_ready(struct lbd_relq *q)
{
	struct relq_user *u = q->user;

	if (q->ready)
		return;
	q->ready = 1;
	TAILQ_INSERT_TAIL(&u->ready, q, ready_entry);
	if (!u->listed) {
		u->listed = 1;
		TAILQ_INSERT_TAIL(&q->d->relqs->ring, u, ring_entry);
	}
	lbd_want_flush(q->d);
}

/* q is no longer due (its user leaves the ring with its last one). */
static void
relq_unready(struct lbd_relq *q)
{
	struct relq_user *u = q->user;

	if (!q->ready)
		return;
	q->ready = 0;
	TAILQ_REMOVE(&u->ready, q, ready_entry);
	if (TAILQ_EMPTY(&u->ready) && u->listed) {
		u->listed = 0;
		TAILQ_REMOVE(&q->d->relqs->ring, u, ring_entry);
	}
}

/* q's wait is over. */
static void
relq_wake(uv_timer_t *t)
{
	relq_ready(t->data);
}

/* Frees q, which has no holds and no try under way; and the table with
 * the last queue. */
static void
relq_free(struct lbd_relq *q)
{
	struct lbd        *d = q->d;
	struct lbd_relqs  *rs = d->relqs;
	struct lbd_relq  **pq = &rs->buckets[relq_hash(q->uid, q->dir,
	    strlen(q->dir))];
	struct relq_user **pu = &rs->users;

	relq_unready(q);
	while (*pq != q)
		pq = &(*pq)->hash_next;
	*pq = q->hash_next;
	rs->n--;
	if (--q->user->nqueues == 0) {
		while (*pu != q->user)
			pu = &(*pu)->next;
		*pu = q->user->next;
		free(q->user);
		rs->nusers--;
	}
	uv_close((uv_handle_t *)q->timer, timer_free);
	free(q->dir);
	free(q);
	if (rs->n == 0) {
		free(rs);
		d->relqs = NULL;
	}
}

/*
 * Tries to end q's head hold (or, for an orphan whose artefact could not
 * be looked at, to judge it: reconcile.c), as its user, without waiting
 * for the database.  Ended (or judged): q stays due (its next hold at
 * its next turn), or is freed when it has no more.  Busy: the hold goes
 * back to q's tail, and q waits: its backoff, twice as long as the last
 * one (from LBD_RELEASE_RETRY_MS again after a try that ended a hold),
 * or as long as the looks' rate asks.
 */
static void
relq_try(struct lbd_relq *q)
{
	struct lbd_hold  *h = TAILQ_FIRST(&q->holds);
	struct lockfs_err err;
	int               try_ms = lockfs_sqlite_try_ms();
	int               step_ms = lockfs_sqlite_step_ms();

	TAILQ_REMOVE(&q->holds, h, relq_entry);
	h->relq = NULL;
	q->trying = 1;
	q->tried = h;
	q->busy = 0;
	lockfs_sqlite_busy(0, 0);
	if (!h->releasing)
		lbd_orphan_judge(h);    /* an orphan not judged yet */
	else if (lbd_hold_end(h->lock, &err) < 0)       /* h is gone */
		log_info("release of a hold left releasing: %s", err.msg);
	lockfs_sqlite_busy(try_ms, step_ms);
	q->trying = 0;
	q->tried = NULL;
	if (TAILQ_EMPTY(&q->holds)) {
		relq_free(q);
		return;
	}
	relq_unready(q);
	if (!q->busy) {
		q->ended = 1;
		relq_ready(q);          /* at its user's tail */
		return;
	}
	if (q->ended)
		q->backoff_ms = LBD_RELEASE_RETRY_MS;   /* busy anew */
	else if ((q->backoff_ms *= 2) > LBD_RELEASE_RETRY_MAX_MS)
		q->backoff_ms = LBD_RELEASE_RETRY_MAX_MS;
	q->ended = 0;
	uv_timer_start(q->timer, relq_wake, relq_delay(q), 0);
}

/*
 * lbd_releasing_due: the end of a loop iteration: tries the queues due,
 * a hold at a time, round-robin over the users who have queues due and,
 * for each, over its queues, for about the looks' budget of the
 * iteration (one try at least); the rest in the next iterations.
 */
void
lbd_releasing_due(struct lbd *d)
{
	struct relq_user *u;
	struct lbd_relq  *q;
	uint64_t          t0;
	int               first = 1;

	while (d->relqs != NULL &&
	    (u = TAILQ_FIRST(&d->relqs->ring)) != NULL &&
	    (first || !lbd_looks_turn_spent(d))) {
		first = 0;
		t0 = uv_hrtime();
		q = TAILQ_FIRST(&u->ready);
		TAILQ_REMOVE(&d->relqs->ring, u, ring_entry);
		TAILQ_INSERT_TAIL(&d->relqs->ring, u, ring_entry);
		relq_try(q);            /* may free q, u and d->relqs */
		lbd_looks_turn_took(d, t0);
	}
}

/* lbd_releasing_waiting: 1 when queues are due (the next iteration
 * should come at once), else 0. */
int
lbd_releasing_waiting(struct lbd *d)
{
	return d->relqs != NULL && !TAILQ_EMPTY(&d->relqs->ring);
}

/* A copy of the first len bytes of s (len at most strlen(s)),
 * NUL-terminated, to free; NULL when out of memory (strndup(3), which
 * not every C library has). */
static char *
copy_prefix(const char *s, size_t len)
{
	char *p;

	if ((p = malloc(len + 1)) != NULL) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* h's queue, made (its first try LBD_RELEASE_RETRY_MS away, or as its
 * user's share of the rate asks) when it has none.  NULL when out of
 * memory. */
static struct lbd_relq *
relq_get(struct lbd *d, const struct lbd_hold *h)
{
	struct lbd_relqs *rs = d->relqs;
	struct lbd_relq  *q = NULL;
	struct relq_user *u = NULL;
	const char       *dir = h->fs.path;
	size_t            len = relq_dir(h);
	uid_t             owner = lbd_subuids_owner(d, h->uid); /* whose
	                                       share of the rate it takes */
	size_t            b = relq_hash(h->uid, dir, len);

	if (rs == NULL) {
		if ((rs = d->relqs = calloc(1, sizeof(*rs))) == NULL)
			return NULL;
		TAILQ_INIT(&rs->ring);
	}
	for (q = rs->buckets[b]; q != NULL; q = q->hash_next)
		if (q->uid == h->uid && strncmp(q->dir, dir, len) == 0 &&
		    q->dir[len] == '\0')
			return q;
	for (u = rs->users; u != NULL && u->uid != owner; u = u->next)
		;
	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->dir = copy_prefix(dir, len)) == NULL ||
	    (q->timer = malloc(sizeof(*q->timer))) == NULL ||
	    (u == NULL && (u = calloc(1, sizeof(*u))) == NULL))
		goto out;
	if (u->nqueues == 0) {
		u->uid = owner;
		TAILQ_INIT(&u->ready);
		u->next = rs->users;
		rs->users = u;
		rs->nusers++;
	}
	u->nqueues++;
	q->d = d;
	q->uid = h->uid;
	q->user = u;
	TAILQ_INIT(&q->holds);
	q->backoff_ms = LBD_RELEASE_RETRY_MS;
	q->hash_next = rs->buckets[b];
	rs->buckets[b] = q;
	rs->n++;
	uv_timer_init(d->loop, q->timer);
	q->timer->data = q;
	uv_timer_start(q->timer, relq_wake, relq_delay(q), 0);
	return q;
out:
	if (q != NULL) {
		free(q->timer);
		free(q->dir);
		free(q);
	}
	if (rs->n == 0) {
		free(rs);
		d->relqs = NULL;
	}
	return NULL;
}

/*
 * lbd_releasing_add: h has just become releasing (hold.c's
 * hold_releasing), or is an orphan whose artefact is to be looked at
 * again (reconcile.c: h->unjudged; h->uid, h->fs.path and h->lock set):
 * queues it, at the tail of the queue of its user and database, which
 * tries it in turn.  0, or -1 when out of memory (h is not queued).
 */
int
lbd_releasing_add(struct lbd_hold *h)
{
	struct lbd_relq *q = relq_get(h->lock->d, h);

	if (q == NULL)
		return -1;
	TAILQ_INSERT_TAIL(&q->holds, h, relq_entry);
	h->relq = q;
	if (h == q->tried)
		q->busy = 1;
	return 0;
}

/* lbd_releasing_soon: h, queued, is tried first in its queue, which is
 * due at once (this iteration's end): a try that needs no database
 * (reconcile.c: an orphan refused to its process, to be forgotten).
 * Each orphan is refused once at most, so this cannot recur without
 * bound. */
void
lbd_releasing_soon(struct lbd_hold *h)
{
	struct lbd_relq *q = h->relq;

	if (q == NULL)
		return;
	TAILQ_REMOVE(&q->holds, h, relq_entry);
	TAILQ_INSERT_HEAD(&q->holds, h, relq_entry);
	uv_timer_stop(q->timer);
	relq_ready(q);
}

/* lbd_releasing_del: h ends or is forgotten: it leaves its queue, if it
 * is in one (a queue left empty is freed, unless it is being tried). */
void
lbd_releasing_del(struct lbd_hold *h)
{
	struct lbd_relq *q = h->relq;

	if (q == NULL)
		return;
	TAILQ_REMOVE(&q->holds, h, relq_entry);
	h->relq = NULL;
	if (TAILQ_EMPTY(&q->holds) && !q->trying)
		relq_free(q);
}
