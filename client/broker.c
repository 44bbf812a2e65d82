/*
 * broker.c: the broker transport: the process's one connection to
 * lockbrokerd, the requests that travel over it, and the registry of the
 * locks the process holds through it.  See broker.h for the calls.
 *
 * The connection, drawn (conn.state; every transition under conn.mu):
 *
 *                caller: connect, HELLO
 *       IDLE ---------------------------> CONNECTING
 *        ^  ^                              |  |
 *        |  +------------- failed ---------+  | ok: reader thread started
 *        |                                    v
 *        |                                  READY <--------------------+
 *        |                                    |                        |
 *        |                 reader: EOF, error,| a line too long        |
 *        |                                    v                        |
 *        +--- 60 s and no daemon ------- RECONNECTING --- connect, ----+
 *             (reader: holds lost,        (reader: back-off, then   HELLO,
 *             requests fail; it exits)     try again)               RECLAIM
 *                                                                   each hold,
 *   fork(): the child starts over in IDLE, with new mutexes; the    resend the
 *   parent's sockets are closed in the child at once, so that the   waiting
 *   parent's holds end when the parent does.                        ACQUIREs
 *
 * Requests (struct req) are made by the calling thread, which waits on
 * its own condition variable; the reader thread reads every reply line,
 * parses it, and hands it to the request with its id.  A request is
 * UNSENT (queued while the connection is being re-established, or a
 * waiting ACQUIRE to send again), SENT (on the current connection) or
 * DONE.  When the connection is lost, SENT ACQUIREs become UNSENT, to be
 * sent again with what is left of their timeout, and SENT STATUSes too
 * (asked again once the holds are settled with the next daemon: an
 * LB_BROKER lb_i_am_locking waits for the reconnect, an AUTO one falls
 * back to the in-process look); every other SENT request fails
 * ("connection lost").  ERR ESHUTDOWN on an ACQUIRE (the daemon is
 * stopping) also makes it UNSENT: it waits for the next daemon.  The
 * daemon keeps the time of a waiting ACQUIRE; as a backstop against a
 * daemon that stops answering, a caller gives up ANSWER_GRACE_S after its
 * timeout (other requests: after REQUEST_WAIT_S), sends CANCEL, and
 * leaves the request ABANDONED to the reader, which releases a grant that
 * comes later.
 *
 * A pidfile ACQUIRE that went out and ends unanswered while the
 * connection is lost (its caller gave up, or no daemon came back) may
 * have left a pid file the lost daemon made and never recorded, which
 * would block everyone while this process lives: its lock is remembered
 * (struct suspect) and judged with the next daemon reached, as the
 * pidfile ACQUIREs sent again are (reader_judge).
 *
 * The registry (struct hold) is updated by the reader as replies arrive,
 * in the order the daemon sent them, so that a STATUS answered before a
 * grant cannot undo the grant.  A hold's states:
 *
 *      grant           connection lost, AUTO, no daemon within the
 *   ---------> LIVE --- fallback time: released in-process -----> DROPPED
 *               |  ^                                               |   ^
 *  RECLAIM      |  |  taken again in-process (pin, unpin ok)       |   |
 *  refused, or  |  +---------------------------- PINNED <---------+   |
 *  60 s without |                                   |   (pin)          |
 *  a daemon     v                                   +-- (unpin failed)-+
 *              LOST: reported once, on the owner's next call
 *
 *   DROPPED holds are settled with the next daemon (RECLAIM, then RELEASE),
 *   so that it does not keep a hold that ended while it was away.
 *
 * Locks: conn.mu guards everything in struct conn; conn.send_mu serialises
 * writes on the socket.  Where both are taken, send_mu comes first.  A
 * write never happens under conn.mu (except the reader's resend burst),
 * so a blocked write never stops replies from being handed out.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "owners.h"
#include "protocol.h"
#include "transport.h"

#define CLIENT_NAME       "liblockbroker"
#define ANSWER_WAIT_S     LB__ANSWER_WAIT_S /* HELLO's or RECLAIM's reply */
#define ANSWER_GRACE_S    5.0   /* a waiting ACQUIRE's answer, after its
	                           timeout (the daemon's timer) ends */
#define REQUEST_WAIT_S    30.0  /* the answer to any other request */
#define RECONNECT_FOR_S   60.0  /* then the holds are lost */
#define BACKOFF_FIRST_S   0.02
#define BACKOFF_MAX_S     0.25
#define READER_STACK      (256 * 1024)

enum req_state { REQ_UNSENT, REQ_SENT, REQ_DONE };

struct req {
	TAILQ_ENTRY(req)  entry;        /* in conn.pending */
	uint64_t          id;
	enum lbp_verb     verb;
	char             *path;
	char             *lock_file;
	unsigned          method;
	pid_t             tid;
	int               broker_only;
	int               break_stale;  /* ACQUIRE: stale=1 */
	double            timeout;      /* ACQUIRE: as lb_acquire had it */
	double            deadline;     /* ACQUIRE: monotonic end, or INFINITY */
	enum req_state    state;
	double            unsent_since;
	double            sent_at;      /* SENT: when */
	int               abandoned;    /* SENT: its caller gave up waiting;
	                                   the reader frees it (and releases
	                                   a late grant) */
	int               fail;         /* the code of a failure of this verb */
	int               result;       /* DONE: 0 or an LB_E* code */
	struct lockfs_err err;          /* DONE with a failure: why */
	struct lb__status st;           /* DONE STATUS */
	uint64_t          token;        /* DONE ACQUIRE */
	pthread_cond_t    cv;           /* signalled when state changes */
};

/* A lock whose pid file a lost daemon may have made for this process
 * and not recorded (see the top). */
struct suspect {
	TAILQ_ENTRY(suspect) entry;     /* in conn.suspects */
	char             *path;
	char             *lock_file;
	pid_t             tid;
};

enum hold_state { HOLD_LIVE, HOLD_DROPPED, HOLD_PINNED, HOLD_LOST };

struct hold {
	TAILQ_ENTRY(hold) entry;        /* in conn.holds */
	char             *path;
	char             *lock_file;
	unsigned          method;
	pid_t             tid;
	int               broker_only;
	uint64_t          token;
	enum hold_state   state;
	uint64_t          round;        /* the reclaim round that settled it */
	char             *why;          /* LOST: the reason */
};

enum conn_state {
	CONN_IDLE,
	CONN_CONNECTING,
	CONN_READY,
	CONN_RECONNECTING
};

TAILQ_HEAD(reqs, req);
TAILQ_HEAD(holds, hold);
TAILQ_HEAD(suspects, suspect);

static struct conn {
	pthread_mutex_t mu;
	pthread_mutex_t send_mu;
	pthread_mutex_t open_mu;        /* from before a connection's handle is
	                                   made until it is in opening */
	pthread_cond_t  changed;        /* state, reclaiming, pins */
	enum conn_state state;
	struct lb__tp  *tp;             /* READY: the reader's connection (sent
	                                   on by the requests); else NULL */
	struct lb__tp  *opening;        /* a connection being set up, or NULL */
	uint64_t        gen;            /* changes with each connection */
	uint64_t        next_id;
	uint64_t        round;          /* reclaim rounds */
	int             reclaiming;     /* the reader is settling the holds */
	unsigned        npinned;
	unsigned        nlost;          /* read without the lock: atomics */
	char            socket[LB__WHERE_MAX]; /* where the daemon is */
	struct reqs     pending;
	struct holds    holds;
	struct suspects suspects;       /* judged with the next daemon */
} conn;

static pthread_once_t conn_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------------ */
/* Clocks, waits, set-up.                                             */

/* Initialises a condition variable that waits on the monotonic clock (the
 * clock of lockfs_now, which every deadline here is measured on). */
static void
cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

/* Waits on cv until signalled or the monotonic time until (INFINITY: no
 * limit). */
static void
cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double until)
{
	struct timespec ts;

	if (isinf(until) || until > 2 * LB__TIMEOUT_MAX_S + lockfs_now()) {
		/* (A deadline that far would overflow time_t below.) */
		pthread_cond_wait(cv, mu);
		return;
	}
	ts.tv_sec = (time_t)until;
	ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

/* The state of a process that has never spoken to the broker. */
static void
conn_reset(void)
{
	pthread_mutex_init(&conn.mu, NULL);
	pthread_mutex_init(&conn.send_mu, NULL);
	pthread_mutex_init(&conn.open_mu, NULL);
	cond_init(&conn.changed);
	conn.state = CONN_IDLE;
	conn.tp = NULL;
	conn.opening = NULL;
	conn.reclaiming = 0;
	conn.npinned = 0;
	__atomic_store_n(&conn.nlost, 0, __ATOMIC_RELAXED);
	TAILQ_INIT(&conn.pending);
	TAILQ_INIT(&conn.holds);
	TAILQ_INIT(&conn.suspects);
}

/* fork(), before: holds conn.open_mu and conn.mu, so that the child sees
 * whole state and no socket made but not yet recorded. */
static void
conn_fork_prepare(void)
{
	pthread_mutex_lock(&conn.open_mu);
	pthread_mutex_lock(&conn.mu);
}

static void
conn_fork_parent(void)
{
	pthread_mutex_unlock(&conn.mu);
	pthread_mutex_unlock(&conn.open_mu);
}

/*
 * fork(), in the child: closes the parent's sockets at once (a child
 * must not keep its parent's holds alive) and starts over with new
 * mutexes.  The parent's requests and holds are not the child's; their
 * memory is left (freeing it could race with nothing, but it is not worth
 * the code).  The handles notice the new pid themselves (lock.c).  The
 * mutexes taken by this thread in conn_fork_prepare are unlocked before
 * they are made anew: initialising a locked mutex is undefined.
 */
static void
conn_fork_child(void)
{
	pthread_mutex_unlock(&conn.mu);
	pthread_mutex_unlock(&conn.open_mu);
	if (conn.tp != NULL)
		lb__tp_drop(conn.tp);
	if (conn.opening != NULL)
		lb__tp_drop(conn.opening);
	conn.gen++;
	conn_reset();
}

/* Once per process: the state, and the fork handlers. */
static void
conn_init(void)
{
	conn_reset();
	/* The registry's fork handlers first, so that a fork takes conn.mu
	 * before the registry's mutex, in the order the two are nested
	 * (hold_unreclaimable). */
	lb__owners_init();
	pthread_atfork(conn_fork_prepare, conn_fork_parent, conn_fork_child);
}

/* Takes conn.mu (initialising conn on first use). */
static void
conn_lock(void)
{
	pthread_once(&conn_once, conn_init);
	pthread_mutex_lock(&conn.mu);
}

static void
conn_unlock(void)
{
	pthread_mutex_unlock(&conn.mu);
}

/* Both locks, send_mu first. */
static void
conn_lock_both(void)
{
	pthread_once(&conn_once, conn_init);
	pthread_mutex_lock(&conn.send_mu);
	pthread_mutex_lock(&conn.mu);
}

static void
conn_unlock_both(void)
{
	pthread_mutex_unlock(&conn.mu);
	pthread_mutex_unlock(&conn.send_mu);
}

/* 1 when there is no connection and none is being made or re-made. */
static int
conn_idle(void)
{
	int r;

	conn_lock();
	r = conn.state == CONN_IDLE;
	conn_unlock();
	return r;
}

/* A fresh request id. */
static uint64_t
next_id(void)
{
	return __atomic_add_fetch(&conn.next_id, 1, __ATOMIC_RELAXED);
}

/* lb__transport_from_env: see broker.h. */
enum lb__transport
lb__transport_from_env(char *why, size_t size)
{
	const char *v = getenv("LOCKBROKER_TRANSPORT");

	if (v == NULL || *v == '\0' || strcmp(v, "auto") == 0)
		return LB__AUTO;
	if (strcmp(v, "broker") == 0)
		return LB__BROKER;
	if (strcmp(v, "local") == 0)
		return LB__LOCAL;
	snprintf(why, size, "LOCKBROKER_TRANSPORT=\"%.64s\" is not auto, "
	    "broker or local; using auto", v);
	return LB__AUTO;
}

/* ------------------------------------------------------------------ */
/* Opening a connection, without the reader thread.                   */

/* What conn_open's hook is told. */
struct opening {
	struct lb__tp   *c;
	int              recorded;      /* the hook ran: open_mu is free */
};

/* lb__tp_open's hook: records the connection whose handle was just made
 * as conn.opening, under conn.mu (so that no fork sees it open but
 * unrecorded), and lets forks go on (conn_open took conn.open_mu before
 * the handle was made). */
static void
opening_record(void *arg)
{
	struct opening *op = arg;

	conn_lock();
	conn.opening = op->c;
	conn_unlock();
	op->recorded = 1;
	pthread_mutex_unlock(&conn.open_mu);
}

/* Closes the connection being set up and forgets it, at once (under
 * conn.mu, so that no fork sees it open but unrecorded). */
static void
opening_close(struct lb__tp *c)
{
	conn_lock();
	conn.opening = NULL;
	lb__tp_close(c);
	conn_unlock();
}

/*
 * Connects c to the socket at path and says HELLO (c keeps what is read
 * after the reply).  Returns 0 with c open, recorded as conn.opening; or -1
 * with c closed and why filled, naming the socket.
 */
static int
conn_open(const char *path, struct lb__tp *c, char *why, size_t size)
{
	struct opening op = { c, 0 };
	int            r = -1;

	pthread_once(&conn_once, conn_init);
	pthread_mutex_lock(&conn.open_mu);
	r = lb__tp_open(c, path, next_id(), CLIENT_NAME, lockfs_now() +
	    ANSWER_WAIT_S, opening_record, &op, why, size);
	if (!op.recorded)
		pthread_mutex_unlock(&conn.open_mu);
	else if (r == -1)
		opening_close(c);
	return r;
}

/* ------------------------------------------------------------------ */
/* The registry of holds.  All under conn.mu.                          */

/* The hold of (lock_file, method, tid), or NULL. */
static struct hold *
hold_find(const char *lock_file, unsigned method, pid_t tid)
{
	struct hold *h;

	TAILQ_FOREACH(h, &conn.holds, entry)
		if (h->method == method && h->tid == tid &&
		    strcmp(h->lock_file, lock_file) == 0)
			return h;
	return NULL;
}

/* Takes h out of the registry and frees it. */
static void
hold_remove(struct hold *h)
{
	TAILQ_REMOVE(&conn.holds, h, entry);
	if (h->state == HOLD_LOST)
		__atomic_sub_fetch(&conn.nlost, 1, __ATOMIC_RELAXED);
	if (h->state == HOLD_PINNED && --conn.npinned == 0)
		pthread_cond_broadcast(&conn.changed);
	free(h->path);
	free(h->lock_file);
	free(h->why);
	free(h);
}

/* Moves h to state (a transition the drawing at the top allows; a new
 * grant may replace any state), keeping the counters. */
static void
hold_to(struct hold *h, enum hold_state state)
{
	assert(state == HOLD_LIVE ||
	    (state == HOLD_DROPPED &&
	    (h->state == HOLD_LIVE || h->state == HOLD_PINNED)) ||
	    (state == HOLD_PINNED && h->state == HOLD_DROPPED) ||
	    (state == HOLD_LOST && h->state == HOLD_LIVE));
	if (h->state == HOLD_LOST)
		__atomic_sub_fetch(&conn.nlost, 1, __ATOMIC_RELAXED);
	if (h->state == HOLD_PINNED && --conn.npinned == 0)
		pthread_cond_broadcast(&conn.changed);
	if (state == HOLD_LOST)
		__atomic_add_fetch(&conn.nlost, 1, __ATOMIC_RELAXED);
	if (state == HOLD_PINNED)
		conn.npinned++;
	h->state = state;
}

/* Records that q's owner holds its lock with token (a grant). */
static void
hold_granted(const struct req *q, uint64_t token)
{
	struct hold *h = hold_find(q->lock_file, q->method, q->tid);

	if (h == NULL) {
		if ((h = calloc(1, sizeof(*h))) == NULL ||
		    (h->path = strdup(q->path)) == NULL ||
		    (h->lock_file = strdup(q->lock_file)) == NULL) {
			/* Not registered (out of memory): the hold works,
			 * but is not reclaimed after a daemon restart. */
			if (h != NULL)
				free(h->path);
			free(h);
			return;
		}
		h->method = q->method;
		h->tid = q->tid;
		h->state = HOLD_LIVE;
		TAILQ_INSERT_TAIL(&conn.holds, h, entry);
	}
	free(h->why);
	h->why = NULL;
	hold_to(h, HOLD_LIVE);
	h->token = token;
	h->broker_only = q->broker_only;
}

/* Forgets the live hold of (lock_file, method, tid), if any (released,
 * broken, or not this owner's any more). */
static void
hold_ended(const char *lock_file, unsigned method, pid_t tid)
{
	struct hold *h = hold_find(lock_file, method, tid);

	if (h != NULL && h->state == HOLD_LIVE)
		hold_remove(h);
}

/* Forgets every live hold of the lock (lock_file, method) in this
 * process: it was broken. */
static void
hold_ended_all(const char *lock_file, unsigned method)
{
	struct hold *h, *next;

	for (h = TAILQ_FIRST(&conn.holds); h != NULL; h = next) {
		next = TAILQ_NEXT(h, entry);
		if (h->method == method && h->state == HOLD_LIVE &&
		    strcmp(h->lock_file, lock_file) == 0)
			hold_remove(h);
	}
}

/*
 * The broker will not (or cannot) give h back.  When h's artefact still
 * names this owner: in AUTO mode the hold lives on in-process, and is
 * simply no longer the broker's; for a broker-only owner the artefact is
 * removed, and h is LOST.  Otherwise h is LOST.  reason says why the
 * broker did not; h may be freed.
 */
static void
hold_unreclaimable(struct hold *h, const char *reason)
{
	struct lockfs_lock fs;
	struct lockfs_err  err;
	struct lb__owner_key k = { h->lock_file, h->method, h->tid };
	int                ours = 0, removed = 0;
	char              *why = NULL;
	size_t             size;

	if (lockfs_init(&fs, h->path, h->method, h->tid, &err) == 0) {
		/* A pid file names only the process: it is h's only when no
		 * other owner here holds or asks for it. */
		ours = lockfs_i_am_locking(&fs, &err) == 1 &&
		    (h->method != LB_PIDFILE || !lb__owners_other(&k));
		if (ours && h->broker_only)
			removed = lockfs_release(&fs, &err) == 0;
		lockfs_fini(&fs);
	}
	if (ours && !h->broker_only)
		hold_remove(h);
	else {
		size = strlen(h->path) + strlen(reason) + 128;
		if ((why = malloc(size)) != NULL)
			snprintf(why, size, "lost the lock on %s: %s%s",
			    h->path, reason, removed ?
			    "; its lock file was removed" : "");
		free(h->why);
		h->why = why;
		hold_to(h, HOLD_LOST);
	}
}

/* ------------------------------------------------------------------ */
/* Requests.                                                           */

/* Frees q (which is in no list). */
static void
req_free(struct req *q)
{
	if (q == NULL)
		return;
	pthread_cond_destroy(&q->cv);
	free(q->path);
	free(q->lock_file);
	free(q);
}

/*
 * q, a pidfile ACQUIRE that went out at least once, ends unanswered while
 * the connection is lost or being re-established (under conn.mu): its
 * lock is remembered, to be judged with the next daemon (reader_judge).
 * Out of memory: not remembered (a leftover then stays until an
 * in-process try of this process takes it over, or the process ends).
 */
static void
suspect_add(const struct req *q)
{
	struct suspect *v;

	if (q->verb != LBP_MSG_ACQUIRE || q->method != LB_PIDFILE ||
	    !(q->sent_at > 0))
		return;
	TAILQ_FOREACH(v, &conn.suspects, entry)
		if (strcmp(v->lock_file, q->lock_file) == 0)
			return;
	if ((v = calloc(1, sizeof(*v))) == NULL ||
	    (v->path = strdup(q->path)) == NULL ||
	    (v->lock_file = strdup(q->lock_file)) == NULL) {
		if (v != NULL)
			free(v->path);
		free(v);
		return;
	}
	v->tid = q->tid;
	TAILQ_INSERT_TAIL(&conn.suspects, v, entry);
}

/* A new request verb for t; fail is the code its failures get.  NULL when
 * out of memory. */
static struct req *
req_new(enum lbp_verb verb, const struct lb__target *t, int fail)
{
	struct req *q;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	if ((q->path = strdup(t->path)) == NULL ||
	    (q->lock_file = strdup(t->lock_file)) == NULL) {
		free(q->path);
		free(q);
		return NULL;
	}
	cond_init(&q->cv);
	q->verb = verb;
	q->method = t->method;
	q->tid = t->tid;
	q->break_stale = t->break_stale;
	q->broker_only = t->broker_only;
	q->fail = fail;
	q->timeout = 0;
	q->deadline = INFINITY;
	q->state = REQ_DONE;    /* in no queue yet */
	return q;
}

/* Formats q's line into o (an ACQUIRE with what is left of its timeout).
 * 0, or -1 when the line cannot be made (a path too long for it). */
static int
req_format(const struct req *q, struct lbp_out *o)
{
	double left;

	lbp_begin(o, q->verb, 1, q->id);
	lbp_add_str(o, "path", q->path);
	lbp_add_str(o, "method", lockfs_method_name(q->method));
	if (q->verb != LBP_MSG_BREAK && q->tid != 0)
		lbp_add_u64(o, "thread", (uint64_t)q->tid);
	if (q->verb == LBP_MSG_ACQUIRE) {
		if (isinf(q->timeout) && q->timeout > 0)
			left = INFINITY;
		else if (!(q->timeout > 0))
			left = 0;       /* one try */
		else if ((left = q->deadline - lockfs_now()) < 0.001)
			left = 0.001;   /* a wait that ends at once */
		else if (left > 1e9)
			left = 1e9;     /* decimals the daemon reads: 30 years */
		lbp_add_double(o, "timeout", left);
		if (q->break_stale)
			lbp_add_u64(o, "stale", 1);
	}
	return lbp_end(o);
}

/* Ends q with result r (and, for a failure, the reason msg); the caller
 * holds conn.mu.  Wakes its thread. */
static void
req_finish(struct req *q, int r, const char *msg)
{
	q->result = r;
	if (r < 0)
		lockfs_fail(&q->err, r, 0, "%s", msg);
	q->state = REQ_DONE;
	TAILQ_REMOVE(&conn.pending, q, entry);
	pthread_cond_signal(&q->cv);
}

/* Wakes every waiting request, so that each looks at the state again. */
static void
req_wake_all(void)
{
	struct req *q;

	TAILQ_FOREACH(q, &conn.pending, entry)
		pthread_cond_signal(&q->cv);
	pthread_cond_broadcast(&conn.changed);
}

/* The library code of an ERR reply's code, for a request whose failures
 * are otherwise fail. */
static int
req_code(enum lbp_error code, int fail)
{
	switch ((int)code) {
	case LBP_EALREADY:   return LB_EALREADY;
	case LBP_ETIMEOUT:   return LB_ETIMEOUT;
	case LBP_EFAILED:    return LB_EFAILED;
	case LBP_ENOTLOCKED: return LB_ENOTLOCKED;
	case LBP_ENOTMINE:   return LB_ENOTMINE;
	case LBP_EUNLOCK:    return LB_EUNLOCK;
	case LBP_EINVAL:     return LB_EINVAL;
	default:             return fail;
	}
}

/* Reads a STATUS reply's fields into *st. */
static void
status_read(const struct lbp_msg *m, struct lb__status *st)
{
	const char *host = lbp_get(m, "host");
	uint64_t    v;
	double      since = 0;

	memset(st, 0, sizeof(*st));
	st->uid = (uid_t)-1;
	st->locked = lbp_get_u64(m, "locked", &v) == 0 && v == 1;
	st->mine = lbp_get_u64(m, "mine", &v) == 0 && v == 1;
	if (lbp_get_u64(m, "holder_pid", &v) == 0 && v <= 0x7fffffff)
		st->pid = (pid_t)v;
	if (lbp_get_u64(m, "holder_tid", &v) == 0 && v <= 0x7fffffff)
		st->tid = (pid_t)v;
	if (lbp_get_u64(m, "holder_uid", &v) == 0 && v < (uid_t)-1)
		st->uid = (uid_t)v;
	if (host != NULL)
		snprintf(st->host, sizeof(st->host), "%s", host);
	if (lbp_get_timeout(m, "since", &since) == 0 && since > 0 &&
	    !isinf(since))
		st->since = since;
	if (lbp_get_u64(m, "token", &v) == 0)
		st->token = v;
	if (lbp_get_u64(m, "waiters", &v) == 0 && v <= 0xffffffffu)
		st->waiters = (unsigned)v;
}

/* Forward: the replies of requests whose callers wait. */
static void req_deliver(struct req *q, const struct lbp_msg *m);

/*
 * The reply m to q, whose caller gave up waiting (under conn.mu): the
 * registry learns from it as from any reply, and q is freed; but a
 * grant (not a re-entrant one of a hold the owner still has) is to be
 * released: then 1, with the RELEASE line in *o.
 */
static int
req_deliver_abandoned(struct req *q, const struct lbp_msg *m,
    struct lbp_out *o)
{
	struct hold *h = hold_find(q->lock_file, q->method, q->tid);
	int          r = 0;

	if (q->verb != LBP_MSG_ACQUIRE) {
		req_deliver(q, m);
		if (q->state == REQ_DONE)
			req_free(q);
		goto out;
	}
	if (m->verb == LBP_MSG_OK && (h == NULL || h->state != HOLD_LIVE)) {
		q->verb = LBP_MSG_RELEASE;
		q->id = next_id();
		r = req_format(q, o) == 0;
	}
	if (m->verb == LBP_MSG_OK || m->verb == LBP_MSG_ERR) {
		TAILQ_REMOVE(&conn.pending, q, entry);
		req_free(q);
	}
out:
	return r;
}

/*
 * Hands the reply m to its request q (SENT), updating the registry in the
 * order the daemon answered; the reader calls it under conn.mu.
 */
static void
req_deliver(struct req *q, const struct lbp_msg *m)
{
	const char    *msg, *name;
	char           text[1024];
	enum lbp_error code;
	uint64_t       token = 0;
	int            r;

	if (m->verb == LBP_MSG_ERR) {
		name = lbp_get(m, "code");
		code = (enum lbp_error)lbp_error_parse(name != NULL ? name :
		    "");
		msg = lbp_get(m, "message");
		if (code == LBP_ESHUTDOWN && q->verb == LBP_MSG_ACQUIRE) {
			/* The daemon stops: wait for the next one. */
			q->state = REQ_UNSENT;
			q->unsent_since = lockfs_now();
			pthread_cond_signal(&q->cv);
			return;
		}
		r = req_code(code, q->fail);
		if (q->verb == LBP_MSG_RELEASE &&
		    (r == LB_ENOTLOCKED || r == LB_ENOTMINE))
			hold_ended(q->lock_file, q->method, q->tid);
		if (r == q->fail || r == LB_EINVAL)
			snprintf(text, sizeof(text), "lockbrokerd refused %s of "
			    "%s: %s (%s)", lbp_verb_name(q->verb), q->path,
			    msg != NULL ? msg : "?", name != NULL ? name : "?");
		else
			snprintf(text, sizeof(text), "%s", msg != NULL ? msg :
			    lbp_error_text(code));
		req_finish(q, r, text);
		return;
	}
	if (m->verb != LBP_MSG_OK)
		return;         /* an ITEM: not asked for */
	switch ((int)q->verb) {
	case LBP_MSG_ACQUIRE:
		lbp_get_u64(m, "token", &token);
		q->token = token;
		hold_granted(q, token);
		break;
	case LBP_MSG_RELEASE:
		hold_ended(q->lock_file, q->method, q->tid);
		break;
	case LBP_MSG_STATUS:
		status_read(m, &q->st);
		if (!q->st.mine)
			hold_ended(q->lock_file, q->method, q->tid);
		break;
	case LBP_MSG_BREAK:
		hold_ended_all(q->lock_file, q->method);
		break;
	}
	req_finish(q, 0, NULL);
}

/*
 * The caller gives up waiting for the connection and does q's work
 * in-process: takes q out of the queue and, for a release or a break,
 * marks the holds it ends as DROPPED, to be settled with the next daemon.
 * Under conn.mu, while the reader is not settling holds.
 */
static void req_drop_holds(struct req *);

static void
req_fall_back(struct req *q)
{
	if (q->state == REQ_UNSENT)
		TAILQ_REMOVE(&conn.pending, q, entry);
	q->state = REQ_DONE;
	req_drop_holds(q);
}

/* Marks the live holds that q (a RELEASE or BREAK) ends as DROPPED. */
static void
req_drop_holds(struct req *q)
{
	struct hold *h;

	TAILQ_FOREACH(h, &conn.holds, entry) {
		if (h->state != HOLD_LIVE || h->method != q->method ||
		    strcmp(h->lock_file, q->lock_file) != 0)
			continue;
		if (q->verb == LBP_MSG_BREAK ||
		    (q->verb == LBP_MSG_RELEASE && h->tid == q->tid))
			hold_to(h, HOLD_DROPPED);
	}
}

/* Writes q's line o if the connection it was meant for (gen) is still
 * the current one; on a failed write, shuts the socket down so that the
 * reader sees the loss. */
static void
req_send(const struct lbp_out *o, uint64_t gen)
{
	pthread_mutex_lock(&conn.send_mu);
	if (conn.gen == gen && conn.state == CONN_READY && conn.tp != NULL &&
	    lb__tp_send(conn.tp, o->buf, o->len) == -1)
		lb__tp_shutdown(conn.tp);
	pthread_mutex_unlock(&conn.send_mu);
}

static int conn_establish(char *why, size_t size);

/* When the caller of q (SENT) stops waiting for its answer: a waiting
 * ACQUIRE's timeout plus ANSWER_GRACE_S (never, for LB_FOREVER: the
 * daemon answers when it grants), else REQUEST_WAIT_S after it went out. */
static double
req_answer_by(const struct req *q)
{
	if (q->verb != LBP_MSG_ACQUIRE || !(q->timeout > 0))
		return q->sent_at + REQUEST_WAIT_S;
	if (isinf(q->timeout))
		return INFINITY;
	return q->deadline + ANSWER_GRACE_S;
}

/*
 * The daemon did not answer q in time (under conn.mu): q is left to the
 * reader (abandoned); a waiting ACQUIRE is canceled (CANCEL, whose answer
 * nobody reads).  o is scratch space.  Returns the failure for the
 * caller, with err filled.
 */
static int
req_abandon(struct req *q, struct lbp_out *o, struct lockfs_err *err)
{
	uint64_t gen = conn.gen;
	int      r, cancel = 0;

	q->abandoned = 1;
	r = q->verb == LBP_MSG_ACQUIRE && q->timeout > 0 ? LB_ETIMEOUT :
	    q->fail;
	lockfs_fail(err, r, 0, "%s: lockbrokerd on %s did not answer %s "
	    "within %g s", q->path, conn.socket, lbp_verb_name(q->verb),
	    lockfs_now() - q->sent_at);
	if (q->verb == LBP_MSG_ACQUIRE) {
		lbp_begin(o, LBP_MSG_CANCEL, 1, next_id());
		lbp_add_u64(o, "target", q->id);
		cancel = lbp_end(o) == 0;
	}
	if (cancel) {
		conn_unlock();
		req_send(o, gen);
		conn_lock();
	}
	return r;
}

/*
 * Runs q: connects first when there is no connection (only when fallback
 * is infinite; otherwise LB__FALLBACK), sends q, or queues it while the
 * connection is being re-established, and waits for its reply.  Returns
 * q's result (err filled on failure), or LB__FALLBACK when q waited
 * unsent for fallback seconds.  Blocks; on return q belongs to the caller
 * again, unless *gone is set (abandoned: the reader frees it).
 */
static int
req_run(struct req *q, double fallback, int *gone, struct lockfs_err *err)
{
	struct lbp_out *o = NULL;
	char            why[512];
	double          now, until;
	uint64_t        gen;
	int             r;

	conn_lock();
	while (conn.state != CONN_READY && conn.state != CONN_RECONNECTING) {
		if (conn.state == CONN_CONNECTING) {
			pthread_cond_wait(&conn.changed, &conn.mu);
			continue;
		}
		if (!isinf(fallback)) {
			r = LB__FALLBACK;
			goto out;
		}
		conn_unlock();
		r = conn_establish(why, sizeof(why));
		conn_lock();
		if (r != 0) {
			r = lockfs_fail(err, q->fail, 0, "%s: %s", q->path,
			    why);
			goto out;
		}
	}
	if (conn.state == CONN_RECONNECTING && fallback == 0 &&
	    !conn.reclaiming) {
		req_fall_back(q);
		r = LB__FALLBACK;
		goto out;
	}
	q->id = next_id();
	if ((o = malloc(sizeof(*o))) == NULL || req_format(q, o) != 0) {
		r = lockfs_fail(err, o == NULL ? LB_ENOMEM : LB_EINVAL, 0,
		    "%s: %s", q->path, o == NULL ? "out of memory" :
		    "too long for the broker protocol");
		goto out;
	}
	TAILQ_INSERT_TAIL(&conn.pending, q, entry);
	if (conn.state == CONN_READY) {
		q->state = REQ_SENT;
		q->sent_at = lockfs_now();
		gen = conn.gen;
		conn_unlock();
		req_send(o, gen);
		conn_lock();
	} else {
		q->state = REQ_UNSENT;
		q->unsent_since = lockfs_now();
	}
	while (q->state != REQ_DONE) {
		if (q->state == REQ_SENT) {
			if (lockfs_now() < (until = req_answer_by(q))) {
				cond_wait_until(&q->cv, &conn.mu, until);
				continue;
			}
			r = req_abandon(q, o, err);
			*gone = 1;
			goto out;
		}
		/* Unsent: the connection is being re-established.  A one-try
		 * ACQUIRE waits for it too: it cannot tell "held" yet. */
		now = lockfs_now();
		until = q->verb == LBP_MSG_ACQUIRE && q->timeout > 0 ?
		    q->deadline : INFINITY;
		if (now >= until) {
			TAILQ_REMOVE(&conn.pending, q, entry);
			suspect_add(q);
			r = lockfs_fail(err, LB_ETIMEOUT, 0, "timed out after "
			    "%g s waiting for %s (the connection to lockbrokerd "
			    "on %s was being re-established)", q->timeout,
			    q->path, conn.socket);
			goto out;
		}
		if (!isinf(fallback) && !conn.reclaiming) {
			if (now >= q->unsent_since + fallback) {
				req_fall_back(q);
				r = LB__FALLBACK;
				goto out;
			}
			if (q->unsent_since + fallback < until)
				until = q->unsent_since + fallback;
		}
		cond_wait_until(&q->cv, &conn.mu, until);
	}
	r = q->result;
	if (r < 0)
		*err = q->err;
out:
	conn_unlock();
	free(o);
	return r;
}

/* ------------------------------------------------------------------ */
/* The reader thread.                                                  */

/* Hands one parsed reply to the request with its id, if one waits (or
 * was abandoned: then a late grant is released). */
static void
reader_deliver(const struct lbp_msg *m, struct lbp_out *o)
{
	struct req *q;
	uint64_t    gen = 0;
	int         release = 0;

	if (!m->has_id)
		return;         /* about the connection: EOF follows */
	conn_lock();
	TAILQ_FOREACH(q, &conn.pending, entry)
		if (q->id == m->id && q->state == REQ_SENT) {
			if (q->abandoned)
				release = req_deliver_abandoned(q, m, o);
			else
				req_deliver(q, m);
			break;
		}
	gen = conn.gen;
	conn_unlock();
	if (release)
		req_send(o, gen);
}

/* The connection c is gone: SENT ACQUIREs and STATUSes wait to be sent
 * again, the other SENT requests fail. */
static void
reader_lost(struct lb__tp *c)
{
	struct req *q, *next;
	char        text[512];
	double      now = lockfs_now();

	conn_lock_both();
	assert(conn.state == CONN_READY && conn.tp == c);
	lb__tp_close(c);
	conn.tp = NULL;
	conn.gen++;
	conn.state = CONN_RECONNECTING;
	snprintf(text, sizeof(text), "the connection to lockbrokerd on %s was "
	    "lost", conn.socket);
	for (q = TAILQ_FIRST(&conn.pending); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (q->state != REQ_SENT)
			continue;
		if (q->abandoned) {
			TAILQ_REMOVE(&conn.pending, q, entry);
			suspect_add(q);
			req_free(q);
		} else if (q->verb == LBP_MSG_ACQUIRE ||
		    q->verb == LBP_MSG_STATUS) {
			/* Asked again of the next daemon (STATUS changes
			 * nothing), after the holds are settled with it. */
			q->state = REQ_UNSENT;
			q->unsent_since = now;
		} else if (q->verb == LBP_MSG_RELEASE) {
			/* Whether the daemon did it or not, the hold ends:
			 * settled with the next daemon (RECLAIM, RELEASE),
			 * its artefact removed in-process by the caller. */
			req_drop_holds(q);
			req_finish(q, LB__RELEASE_LOST, text);
		} else
			req_finish(q, q->fail, text);
	}
	req_wake_all();
	conn_unlock_both();
}

/*
 * Settles every hold with the daemon just reached on c (after its
 * HELLO): RECLAIM for each live one (a refusal makes it unreclaimable);
 * RECLAIM then RELEASE for each dropped one, which is then forgotten.
 * Returns 0 with conn.mu held and conn.reclaiming set, or -1 (I/O
 * failure: try another connection) with conn.mu not held.
 */
static int
reader_reclaim(struct lb__tp *c, struct lbp_msg *m)
{
	struct lbp_out o;
	struct hold   *h;
	const char    *msg;
	char           why[512], text[1024];
	uint64_t       round, id;
	int            dropped, ok;

	conn_lock();
	round = ++conn.round;
	conn.reclaiming = 1;
	while (conn.npinned > 0)
		pthread_cond_wait(&conn.changed, &conn.mu);
	for (;;) {
		TAILQ_FOREACH(h, &conn.holds, entry)
			if ((h->state == HOLD_LIVE ||
			    h->state == HOLD_DROPPED) && h->round != round)
				break;
		if (h == NULL)
			break;
		/* While reclaiming, only this thread removes LIVE or
		 * DROPPED holds: h stays. */
		h->round = round;
		dropped = h->state == HOLD_DROPPED;
		conn_unlock();
		id = next_id();
		lbp_begin(&o, LBP_MSG_RECLAIM, 1, id);
		lbp_add_str(&o, "path", h->path);
		lbp_add_u64(&o, "token", h->token);
		lbp_add_str(&o, "method", lockfs_method_name(h->method));
		if (h->tid != 0)
			lbp_add_u64(&o, "thread", (uint64_t)h->tid);
		if (lb__tp_call(c, &o, id, lockfs_now() + ANSWER_WAIT_S, m, why,
		    sizeof(why)) != 0)
			goto fail;
		ok = m->verb == LBP_MSG_OK;
		msg = lbp_get(m, "message");
		snprintf(text, sizeof(text), "lockbrokerd on %s restarted and "
		    "did not give it back (%s)", conn.socket,
		    msg != NULL ? msg : "?");
		if (dropped && ok) {
			id = next_id();
			lbp_begin(&o, LBP_MSG_RELEASE, 1, id);
			lbp_add_str(&o, "path", h->path);
			lbp_add_str(&o, "method", lockfs_method_name(h->method));
			if (h->tid != 0)
				lbp_add_u64(&o, "thread", (uint64_t)h->tid);
			if (lb__tp_call(c, &o, id, lockfs_now() +
			    ANSWER_WAIT_S, m, why, sizeof(why)) != 0)
				goto fail;
		}
		conn_lock();
		if (dropped)
			hold_remove(h);
		else if (!ok)
			hold_unreclaimable(h, text);
	}
	return 0;

fail:
	conn_lock();
	conn.reclaiming = 0;
	req_wake_all();
	conn_unlock();
	return -1;
}

/*
 * Whether the pid file of the lock at path (thread tid's) may be a grant
 * the daemon just reached on c (nothing else is said on it yet) knows
 * of: it has a recorded hold of the lock by this process, tid's (one the
 * previous daemon recorded but could not confirm, which tid's ACQUIRE,
 * sent again, takes back) or another owner's here (a kept hold of this
 * process, or another thread's, whose pid file it is): 1, the pid file
 * is not a leftover.  0 when the daemon has no hold of it by this process
 * (or answered ERR); -1 when c failed.
 */
static int
reader_process_holds(struct lb__tp *c, struct lbp_msg *m,
    const char *path, pid_t tid)
{
	struct lbp_out o;
	uint64_t       id = next_id(), token = 0, pid = 0;
	char           why[512];

	lbp_begin(&o, LBP_MSG_STATUS, 1, id);
	lbp_add_str(&o, "path", path);
	lbp_add_str(&o, "method", lockfs_method_name(LB_PIDFILE));
	if (tid != 0)
		lbp_add_u64(&o, "thread", (uint64_t)tid);
	if (lb__tp_call(c, &o, id, lockfs_now() + ANSWER_WAIT_S, m, why,
	    sizeof(why)) != 0)
		return -1;
	return m->verb == LBP_MSG_OK &&
	    lbp_get_u64(m, "token", &token) == 0 && token != 0 &&
	    lbp_get_u64(m, "holder_pid", &pid) == 0 &&
	    pid == (uint64_t)getpid();
}

/*
 * Judges, with the daemon just reached on c, before anything else is sent
 * on it (so that the only reply read is the one asked for), the pid files
 * a lost daemon may have made for this process: those of the pidfile
 * ACQUIREs to be sent again and of the suspects (which are then
 * forgotten).  Such a file, naming this process, that no owner here holds
 * is a grant the previous daemon never recorded, which the new one cannot
 * tell from another thread's hold, and is removed; unless the new daemon
 * has a hold of it by this process (reader_process_holds): then it stays
 * (the owner's ACQUIRE, sent again, takes it back; another owner's waits
 * behind it).  Under conn.mu.  0, or -1 when c failed.
 */
static int
reader_judge(struct lb__tp *c, struct lbp_msg *m)
{
	struct suspect *v;
	struct req     *q;
	int             r = 0;

	TAILQ_FOREACH(q, &conn.pending, entry) {
		if (q->state != REQ_UNSENT || q->verb != LBP_MSG_ACQUIRE ||
		    q->method != LB_PIDFILE)
			continue;
		if ((r = reader_process_holds(c, m, q->path, q->tid)) ==
		    -1)
			goto out;
		if (r == 0)
			lb__owners_pidfile_forget_leftover(q->path,
			    q->lock_file);
	}
	while ((v = TAILQ_FIRST(&conn.suspects)) != NULL) {
		if ((r = reader_process_holds(c, m, v->path, v->tid)) ==
		    -1)
			goto out;
		if (r == 0)
			lb__owners_pidfile_forget_leftover(v->path,
			    v->lock_file);
		TAILQ_REMOVE(&conn.suspects, v, entry);
		free(v->path);
		free(v->lock_file);
		free(v);
	}
	r = 0;
out:
	return r;
}

/*
 * The connection c is ready again (holds settled; conn.mu held, as
 * reader_reclaim leaves it): READY, and every UNSENT request goes out.
 * Returns with no lock held.
 */
static void
reader_resume(struct lb__tp *c, struct lbp_msg *m)
{
	struct lbp_out o;
	struct req    *q;

	conn_unlock();
	conn_lock_both();
	assert(conn.state == CONN_RECONNECTING && conn.reclaiming);
	conn.opening = NULL;
	conn.tp = c;
	conn.gen++;
	conn.state = CONN_READY;
	conn.reclaiming = 0;
	/* First the pid files a lost daemon may have left. */
	if (reader_judge(c, m) == -1)
		lb__tp_shutdown(c);     /* nothing more goes out */
	TAILQ_FOREACH(q, &conn.pending, entry) {
		if (q->state != REQ_UNSENT)
			continue;
		q->state = REQ_SENT;
		q->sent_at = lockfs_now();
		if (req_format(q, &o) != 0 ||
		    lb__tp_send(c, o.buf, o.len) == -1) {
			lb__tp_shutdown(c);     /* the reader sees it */
			break;
		}
	}
	req_wake_all();
	conn_unlock_both();
}

/*
 * Gives up on the broker after RECONNECT_FOR_S seconds without it: back
 * to IDLE; waiting requests fail; live holds cannot be given back (see
 * hold_unreclaimable); dropped ones are forgotten.
 */
static void
reader_give_up(void)
{
	struct hold *h, *next;
	struct req  *q;
	char         text[512];

	conn_lock();
	assert(conn.state == CONN_RECONNECTING && conn.tp == NULL);
	conn.state = CONN_IDLE;
	conn.reclaiming = 0;
	snprintf(text, sizeof(text), "no lockbroker daemon answered on %s "
	    "within %g s after the connection was lost", conn.socket,
	    RECONNECT_FOR_S);
	while ((q = TAILQ_FIRST(&conn.pending)) != NULL) {
		suspect_add(q);         /* judged at the next connect */
		if (q->abandoned) {
			TAILQ_REMOVE(&conn.pending, q, entry);
			req_free(q);
		} else
			req_finish(q, q->fail, text);
	}
	for (h = TAILQ_FIRST(&conn.holds); h != NULL; h = next) {
		next = TAILQ_NEXT(h, entry);
		if (h->state == HOLD_LIVE)
			hold_unreclaimable(h, text);
		else if (h->state != HOLD_LOST)
			hold_remove(h);
	}
	req_wake_all();
	conn_unlock();
}

/*
 * Re-establishes the connection after a loss: connects with a growing
 * back-off, says HELLO, settles the holds, resends.  Returns 0 with c
 * open again (READY), or -1 after RECONNECT_FOR_S seconds without a daemon.
 */
static int
reader_reconnect(struct lb__tp *c, struct lbp_msg *m)
{
	struct lockfs_backoff b;
	double                until = lockfs_now() + RECONNECT_FOR_S;
	char                  why[512];

	lockfs_backoff_init(&b, BACKOFF_FIRST_S, BACKOFF_MAX_S);
	while (lockfs_backoff_sleep(&b, until) == 0) {
		if (conn_open(conn.socket, c, why, sizeof(why)) == -1)
			continue;
		if (reader_reclaim(c, m) == 0) {
			reader_resume(c, m);
			return 0;
		}
		opening_close(c);
	}
	return -1;
}

/*
 * The reader thread: reads reply lines from the connection and hands them
 * out; on a loss, reconnects; after RECONNECT_FOR_S seconds without a
 * daemon, gives up and ends.  arg: the connection (READY, with what was
 * read after the HELLO reply; the thread frees it).  All signals are
 * blocked.
 */
static void *
reader_main(void *arg)
{
	struct lb__tp *c = arg;
	struct lbp_msg  *m;
	struct lbp_out  *o;
	enum lbp_error   e;
	char             why[256];
	int              got;

	if ((m = malloc(sizeof(*m))) == NULL || (o = malloc(sizeof(*o))) ==
	    NULL)
		abort();        /* 24 KiB at thread start; nothing to do */
	for (;;) {
		while ((got = lb__tp_take(c, m, &e)) == 1)
			if (e == LBP_OK)
				reader_deliver(m, o);
		/* Blocks until bytes come (no deadline; EINTR resumes). */
		if (got == 0 && lb__tp_fill(c, INFINITY, why, sizeof(why)) > 0)
			continue;
		/* EOF, a read error, or a line too long: the same remedy. */
		reader_lost(c);
		if (reader_reconnect(c, m) == -1)
			break;
	}
	reader_give_up();
	free(o);
	free(m);
	lb__tp_free(c);
	return NULL;
}

/*
 * Connects from IDLE (see the drawing): the calling thread connects and
 * says HELLO, then starts the reader.  0 when the connection is READY (made
 * here or by another thread meanwhile), else -1 with why filled (naming
 * the socket).  Blocks for connect and HELLO.
 */
static int
conn_establish(char *why, size_t size)
{
	pthread_attr_t  attr;
	pthread_t       thread;
	sigset_t        all, old;
	struct lb__tp *c = NULL;
	struct lbp_msg  *m = NULL;
	char             path[sizeof(conn.socket)];
	int              opened = -1, r = -1;

	conn_lock();
	while (conn.state == CONN_CONNECTING)
		pthread_cond_wait(&conn.changed, &conn.mu);
	if (conn.state != CONN_IDLE) {
		r = conn.state == CONN_READY ? 0 : -1;
		if (r != 0)
			snprintf(why, size, "the connection to lockbrokerd on "
			    "%s is being re-established", conn.socket);
		conn_unlock();
		goto out;
	}
	conn.state = CONN_CONNECTING;
	lb__tp_where(conn.socket, sizeof(conn.socket));
	snprintf(path, sizeof(path), "%s", conn.socket);
	conn_unlock();

	if ((c = lb__tp_new()) == NULL)
		snprintf(why, size, "out of memory");
	else
		opened = conn_open(path, c, why, size);

	conn_lock_both();
	assert(conn.state == CONN_CONNECTING);
	/* Pid files a daemon lost before the library gave up on it may
	 * have left (judged before anything else is said). */
	if (opened == 0 && !TAILQ_EMPTY(&conn.suspects) &&
	    (m = malloc(sizeof(*m))) != NULL && reader_judge(c, m) == -1) {
		snprintf(why, size, "lockbrokerd on %s: the connection failed "
		    "while pid files a lost daemon may have left were judged",
		    path);
		conn.opening = NULL;
		lb__tp_close(c);
		opened = -1;
	}
	if (opened == 0) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, READER_STACK);
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		conn.tp = c;
		conn.opening = NULL;
		if (pthread_create(&thread, &attr, reader_main, c) == 0) {
			c = NULL;       /* the reader's now */
			conn.gen++;
			conn.state = CONN_READY;
			r = 0;
		} else {
			snprintf(why, size, "cannot start the lockbroker "
			    "reader thread: %s", strerror(errno));
			conn.tp = NULL;
			lb__tp_close(c);
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		pthread_attr_destroy(&attr);
	}
	if (r != 0)
		conn.state = CONN_IDLE;
	pthread_cond_broadcast(&conn.changed);
	conn_unlock_both();
	free(m);
	lb__tp_free(c);
out:
	return r;
}

/* ------------------------------------------------------------------ */
/* The calls lock.c makes (broker.h).                                  */

/* lb__broker_connect: see broker.h. */
int
lb__broker_connect(struct lockfs_err *err)
{
	char why[512];

	if (conn_establish(why, sizeof(why)) == 0)
		return 0;
	return lockfs_fail(err, LB_EFAILED, 0, "%s", why);
}

/* lb__broker_ready: see broker.h. */
int
lb__broker_ready(void)
{
	int r;

	conn_lock();
	r = conn.state == CONN_READY;
	conn_unlock();
	return r;
}

/* Runs a request of verb for t; the common part of the calls below.
 * Fills *done (when not NULL) with the finished request's answer. */
static int
broker_call(enum lbp_verb verb, const struct lb__target *t, int fail,
    double timeout, double deadline, double fallback, struct req *done,
    struct lockfs_err *err)
{
	struct req *q = NULL;
	int         r = LB__FALLBACK, gone = 0;

	/* Not worth a request: AUTO, and no connection at all. */
	if (!isinf(fallback) && conn_idle())
		goto out;
	if ((q = req_new(verb, t, fail)) == NULL) {
		r = lockfs_fail(err, LB_ENOMEM, ENOMEM, "request for %s",
		    t->path);
		goto out;
	}
	q->timeout = timeout;
	q->deadline = timeout > 0 && !isinf(timeout) ? deadline : INFINITY;
	r = req_run(q, fallback, &gone, err);
	if (gone)
		q = NULL;       /* the reader's now */
	else if (r == 0 && done != NULL) {
		done->token = q->token;
		done->st = q->st;
	}
out:
	req_free(q);
	return r;
}

/* lb__broker_acquire: see broker.h. */
int
lb__broker_acquire(const struct lb__target *t, double timeout,
    double deadline, double fallback, uint64_t *token,
    struct lockfs_err *err)
{
	struct req done;
	int        r;

	r = broker_call(LBP_MSG_ACQUIRE, t, LB_EFAILED, timeout, deadline,
	    fallback, &done, err);
	if (r == 0 && token != NULL)
		*token = done.token;
	return r;
}

/* lb__broker_release: see broker.h. */
int
lb__broker_release(const struct lb__target *t, double fallback,
    struct lockfs_err *err)
{
	return broker_call(LBP_MSG_RELEASE, t, LB_EUNLOCK, 0, 0, fallback,
	    NULL, err);
}

/* lb__broker_status: see broker.h. */
int
lb__broker_status(const struct lb__target *t, double fallback,
    struct lb__status *st, struct lockfs_err *err)
{
	struct req done;
	int        r;

	r = broker_call(LBP_MSG_STATUS, t, LB_ERROR, 0, 0, fallback, &done,
	    err);
	if (r == 0)
		*st = done.st;
	return r;
}

/* lb__broker_break: see broker.h. */
int
lb__broker_break(const struct lb__target *t, double fallback,
    struct lockfs_err *err)
{
	return broker_call(LBP_MSG_BREAK, t, LB_EUNLOCK, 0, 0, fallback,
	    NULL, err);
}

/* lb__broker_holds: see broker.h. */
int
lb__broker_holds(const struct lb__target *t, uint64_t *token)
{
	struct hold *h;
	int          r = 0;

	conn_lock();
	h = hold_find(t->lock_file, t->method, t->tid);
	if (h != NULL && h->state == HOLD_LIVE) {
		if (token != NULL)
			*token = h->token;
		r = 1;
	}
	conn_unlock();
	return r;
}

/* lb__broker_take_lost: see broker.h.  Cheap when nothing was lost. */
int
lb__broker_take_lost(const struct lb__target *t, struct lockfs_err *err)
{
	struct hold *h;
	int          r = 0;

	if (__atomic_load_n(&conn.nlost, __ATOMIC_RELAXED) == 0)
		goto out;
	conn_lock();
	h = hold_find(t->lock_file, t->method, t->tid);
	if (h != NULL && h->state == HOLD_LOST) {
		r = lockfs_fail(err, LB_ENOTLOCKED, 0, "%s", h->why != NULL ?
		    h->why : "lost the lock: the broker went away");
		hold_remove(h);
	}
	conn_unlock();
out:
	return r;
}

/* lb__broker_pin: see broker.h.  1: pinned (call lb__broker_unpin); 0:
 * nothing to pin, go ahead; LB_EALREADY: not now. */
int
lb__broker_pin(const struct lb__target *t)
{
	struct hold *h;
	int          r = 0;

	conn_lock();
	h = hold_find(t->lock_file, t->method, t->tid);
	if (h == NULL || h->state == HOLD_LIVE || h->state == HOLD_LOST)
		r = 0;
	else if (conn.reclaiming || h->state == HOLD_PINNED)
		r = LB_EALREADY;
	else {
		hold_to(h, HOLD_PINNED);
		r = 1;
	}
	conn_unlock();
	return r;
}

/* lb__broker_unpin: see broker.h. */
void
lb__broker_unpin(const struct lb__target *t, int acquired)
{
	struct hold *h;

	conn_lock();
	h = hold_find(t->lock_file, t->method, t->tid);
	if (h != NULL && h->state == HOLD_PINNED)
		hold_to(h, acquired ? HOLD_LIVE : HOLD_DROPPED);
	conn_unlock();
}
