/*
 * reader.c: the reader thread of the broker transport (see reader.h): it
 * reads every reply line, parses it, and hands it to the request with its
 * id (broker.c); when the connection is lost it drives the connection's
 * states READY -> RECONNECTING -> READY or IDLE (drawn in session.c):
 * the requests that went out are moved (see broker.c), a new connection is
 * made with a growing back-off, the holds are settled with the new daemon
 * (RECLAIM, holds.c), and the waiting requests go out again; after
 * RECONNECT_FOR_S seconds without a daemon it gives up and ends.
 *
 * A pidfile ACQUIRE that went out and ends unanswered while the
 * connection is lost (its caller gave up, or no daemon came back) may
 * have left a pid file the lost daemon made and never recorded, which
 * would block everyone while this process lives: its lock is remembered
 * (struct suspect) and judged with the next daemon reached, as the
 * pidfile ACQUIREs sent again are (lb__reader_judge).
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "broker.h"
#include "holds.h"
#include "lockfs.h"
#include "owners.h"
#include "protocol.h"
#include "reader.h"
#include "request.h"
#include "session.h"
#include "transport.h"

#define ANSWER_WAIT_S     lb__answer_wait_s /* RECLAIM's or STATUS's reply */
#define RECONNECT_FOR_S   60.0  /* then the holds are lost */
#define BACKOFF_FIRST_S   0.02
#define BACKOFF_MAX_S     0.25

/* A lock whose pid file a lost daemon may have made for this process
 * and not recorded (see the top). */
struct suspect {
	TAILQ_ENTRY(suspect) entry;     /* in lb__conn.suspects */
	char             *path;
	char             *lock_file;
	pid_t             tid;
};

/* lb__suspect_add: see reader.h.  Out of memory: not remembered (a
 * leftover then stays until an in-process try of this process takes it
 * over, or the process ends). */
void
lb__suspect_add(const struct req *q)
{
	struct suspect *v;

	if (q->verb != LBP_MSG_ACQUIRE || q->method != LB_PIDFILE ||
	    !(q->sent_at > 0))
		return;
	TAILQ_FOREACH(v, &lb__conn.suspects, entry)
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
	TAILQ_INSERT_TAIL(&lb__conn.suspects, v, entry);
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
	uint64_t       id = lb__next_id(), token = 0, pid = 0;
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
	    pid == (uint64_t)lockfs_os_pid();
}

/*
 * lb__reader_judge: see reader.h.  Judges, with the daemon just reached on
 * c, before anything else is sent on it (so that the only reply read is
 * the one asked for), the pid files a lost daemon may have made for this
 * process: those of the pidfile ACQUIREs to be sent again and of the
 * suspects (which are then forgotten).  Such a file, naming this
 * process, that no owner here holds is a grant the previous daemon never
 * recorded, which the new one cannot tell from another thread's hold, and
 * is removed; unless the new daemon has a hold of it by this process
 * (reader_process_holds): then it stays (the owner's ACQUIRE, sent again,
 * takes it back; another owner's waits behind it).  Under lb__conn.mu.
 * 0, or -1 when c failed.
 */
int
lb__reader_judge(struct lb__tp *c, struct lbp_msg *m)
{
	struct suspect *v;
	struct req     *q;
	int             r = 0;

	TAILQ_FOREACH(q, &lb__conn.pending, entry) {
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
	while ((v = TAILQ_FIRST(&lb__conn.suspects)) != NULL) {
		if ((r = reader_process_holds(c, m, v->path, v->tid)) ==
		    -1)
			goto out;
		if (r == 0)
			lb__owners_pidfile_forget_leftover(v->path,
			    v->lock_file);
		TAILQ_REMOVE(&lb__conn.suspects, v, entry);
		free(v->path);
		free(v->lock_file);
		free(v);
	}
	r = 0;
out:
	return r;
}

/* The connection c is gone: SENT ACQUIREs and STATUSes wait to be sent
 * again, the other SENT requests fail. */
static void
reader_lost(struct lb__tp *c)
{
	struct req *q, *next;
	char        text[512];
	double      now = lockfs_now();

	lb__conn_lock_both();
	assert(lb__conn.state == CONN_READY && lb__conn.tp == c);
	lb__tp_close(c);
	lb__conn.tp = NULL;
	lb__conn.gen++;
	lb__conn.state = CONN_RECONNECTING;
	snprintf(text, sizeof(text), "the connection to lockbrokerd on %s was "
	    "lost", lb__conn.socket);
	for (q = TAILQ_FIRST(&lb__conn.pending); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (q->state != REQ_SENT)
			continue;
		if (q->abandoned) {
			TAILQ_REMOVE(&lb__conn.pending, q, entry);
			lb__suspect_add(q);
			lb__req_free(q);
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
			lb__holds_drop(q->lock_file, q->method, q->tid, 0);
			lb__req_finish(q, LB__RELEASE_LOST, text);
		} else
			lb__req_finish(q, q->fail, text);
	}
	lb__req_wake_all();
	lb__conn_unlock_both();
}

/* The answer m to the RELEASE of h, a dropped hold given back: pending,
 * the owner is marked as for any RELEASE so answered (its lock file may
 * name it until the daemon's handoff is done: owners.h); a plain OK
 * drops such a mark. */
static void
reclaim_released(const struct hold *h, const struct lbp_msg *m)
{
	struct lb__owner_key k = { h->lock_file, h->method, h->tid };
	uint64_t             pending = 0;

	if (m->verb != LBP_MSG_OK)
		return;
	if (lbp_get_u64(m, "pending", &pending) == 0 && pending == 1)
		lb__owners_unfinished(&k);
	else
		lb__owners_finished(&k, 0);
}

/*
 * Settles every hold with the daemon just reached on c (after its
 * HELLO): RECLAIM for each live one (a refusal makes it unreclaimable;
 * so does a hold given back in another mode than its owner was told,
 * which is released at once); RECLAIM then RELEASE for each dropped one,
 * which is then forgotten.
 * A dropped pidfile hold is given back only while no owner here holds
 * its pid file (lb__owners_pidfile_settle_begin): the daemon would take
 * that owner's file for the hold's and remove it.
 * Returns 0 with lb__conn.mu held and lb__conn.reclaiming set, or -1 (I/O
 * failure: try another connection) with lb__conn.mu not held.
 */
static int
reader_reclaim(struct lb__tp *c, struct lbp_msg *m)
{
	struct lbp_out o;
	struct hold   *h;
	const char    *msg, *mode;
	char           why[512], text[1024];
	struct lb__owner_key k;
	uint64_t       round, id;
	int            dropped, ok, shared, mismatch, settling = 0;

	lb__conn_lock();
	round = ++lb__conn.round;
	lb__conn.reclaiming = 1;
	lb__holds_wait_unpinned();
	while ((h = lb__holds_unsettled(round)) != NULL) {
		/* While reclaiming, only this thread removes LIVE or
		 * DROPPED holds: h stays. */
		h->round = round;
		dropped = h->state == HOLD_DROPPED;
		lb__conn_unlock();
		k.lock_file = h->lock_file;
		k.method = h->method;
		k.tid = h->tid;
		settling = dropped && h->method == LB_PIDFILE;
		if (settling && lb__owners_pidfile_settle_begin(&k) == 0) {
			/* Another owner here holds the pid file now: it is
			 * that owner's, not this hold's; told nothing, the
			 * daemon keeps its record until the file goes. */
			lb__conn_lock();
			lb__hold_remove(h);
			continue;
		}
		id = lb__next_id();
		lbp_begin(&o, LBP_MSG_RECLAIM, 1, id);
		lbp_add_str(&o, "path", h->path);
		lbp_add_u64(&o, "token", h->token);
		lbp_add_str(&o, "method", lockfs_method_name(h->method));
		if (h->tid != 0)
			lbp_add_u64(&o, "thread", (uint64_t)h->tid);
		/* The mode its owner was told: a DOWNGRADE or UPGRADE the
		 * previous daemon recorded but did not answer is undone. */
		if (!dropped && lb__tp_version(c) >= LBP_VERSION_SHARED)
			lbp_add_str(&o, "mode", h->shared ? "shared" :
			    "exclusive");
		if (lb__tp_call(c, &o, id, lockfs_now() + ANSWER_WAIT_S, m, why,
		    sizeof(why)) != 0)
			goto fail;
		ok = m->verb == LBP_MSG_OK;
		mode = ok ? lbp_get(m, "mode") : NULL;
		shared = mode != NULL ? strcmp(mode, "shared") == 0 :
		    h->shared;
		msg = lbp_get(m, "message");
		snprintf(text, sizeof(text), "lockbrokerd on %s restarted and "
		    "did not give it back (%s)", lb__conn.socket,
		    msg != NULL ? msg : "?");
		/* Given back in another mode than its owner was told (a
		 * reader beside an owner that writes alone, or the reverse):
		 * not its hold; released, and lost to its owner. */
		mismatch = ok && !dropped && shared != h->shared;
		if (mismatch) {
			snprintf(text, sizeof(text), "lockbrokerd on %s "
			    "restarted and gave it back %s, where its owner "
			    "was told it holds it %s: released", lb__conn.socket,
			    shared ? "shared" : "exclusive", h->shared ?
			    "shared" : "exclusive");
			ok = 0;
		}
		if ((dropped && ok) || mismatch) {
			id = lb__next_id();
			lbp_begin(&o, LBP_MSG_RELEASE, 1, id);
			lbp_add_str(&o, "path", h->path);
			lbp_add_str(&o, "method", lockfs_method_name(h->method));
			if (h->tid != 0)
				lbp_add_u64(&o, "thread", (uint64_t)h->tid);
			if (lb__tp_call(c, &o, id, lockfs_now() +
			    ANSWER_WAIT_S, m, why, sizeof(why)) != 0)
				goto fail;
			reclaim_released(h, m);
		}
		if (settling)
			lb__owners_pidfile_settle_end(&k);
		lb__conn_lock();
		if (dropped)
			lb__hold_remove(h);
		else if (!ok)
			lb__hold_unreclaimable(h, text);
		else
			h->shared = shared;     /* as the daemon settled it */
	}
	return 0;

fail:
	if (settling)
		lb__owners_pidfile_settle_end(&k);
	lb__conn_lock();
	lb__conn.reclaiming = 0;
	lb__req_wake_all();
	lb__conn_unlock();
	return -1;
}

/* qsort's order of set members: by set. */
static int
by_set(const void *a, const void *b)
{
	const struct req *x = *(struct req *const *)a;
	const struct req *y = *(struct req *const *)b;

	return x->set_key < y->set_key ? -1 : x->set_key > y->set_key;
}

/*
 * The members of a set sent again are those not answered yet: each one's
 * of= counts them (a grant whose OKs came in part before the connection
 * was lost: the daemon would wait for the others for ever).  Sorted by
 * set, each set's members counted once (n log n: a connection may have
 * thousands of requests waiting to go again); without the memory for
 * that, each member counts its set's (n^2).  Under lb__conn.mu.
 */
static void
reader_sets_recount(void)
{
	struct req  *q, *v, **m;
	size_t       n = 0, i, j, k;
	unsigned     of;

	TAILQ_FOREACH(q, &lb__conn.pending, entry)
		n += q->state == REQ_UNSENT && q->set_of > 0;
	if (n == 0)
		return;
	if ((m = malloc(n * sizeof(*m))) == NULL) {
		TAILQ_FOREACH(q, &lb__conn.pending, entry) {
			if (q->state != REQ_UNSENT || q->set_of == 0)
				continue;
			of = 0;
			TAILQ_FOREACH(v, &lb__conn.pending, entry)
				of += v->state == REQ_UNSENT &&
				    v->set_of > 0 && v->set_key == q->set_key;
			q->set_of = of;
		}
		return;
	}
	n = 0;
	TAILQ_FOREACH(q, &lb__conn.pending, entry)
		if (q->state == REQ_UNSENT && q->set_of > 0)
			m[n++] = q;
	qsort(m, n, sizeof(*m), by_set);
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && m[j]->set_key == m[i]->set_key; j++)
			;
		for (k = i; k < j; k++)
			m[k]->set_of = (unsigned)(j - i);
	}
	free(m);
}

/*
 * The connection c is ready again (holds settled; lb__conn.mu held, as
 * reader_reclaim leaves it): READY, and every UNSENT request goes out.
 * Returns with no lock held.
 */
static void
reader_resume(struct lb__tp *c, struct lbp_msg *m)
{
	struct lbp_out o;
	struct req    *q;

	lb__conn_unlock();
	lb__conn_lock_both();
	assert(lb__conn.state == CONN_RECONNECTING && lb__conn.reclaiming);
	lb__conn.opening = NULL;
	lb__conn.tp = c;
	lb__conn.gen++;
	lb__conn.state = CONN_READY;
	lb__conn.reclaiming = 0;
	/* First the pid files a lost daemon may have left. */
	if (lb__reader_judge(c, m) == -1)
		lb__tp_shutdown(c);     /* nothing more goes out */
	reader_sets_recount();
	TAILQ_FOREACH(q, &lb__conn.pending, entry) {
		if (q->state != REQ_UNSENT)
			continue;
		q->state = REQ_SENT;
		q->sent_at = lockfs_now();
		if (lb__req_format(q, &o) != 0 ||
		    lb__tp_send(c, o.buf, o.len) == -1) {
			lb__tp_shutdown(c);     /* the reader sees it */
			break;
		}
	}
	lb__req_wake_all();
	lb__conn_unlock_both();
}

/*
 * Gives up on the broker after RECONNECT_FOR_S seconds without it: back
 * to IDLE; waiting requests fail; live holds cannot be given back (see
 * lb__hold_unreclaimable); dropped ones are forgotten.
 */
static void
reader_give_up(void)
{
	struct req *q;
	char        text[512];

	lb__conn_lock();
	assert(lb__conn.state == CONN_RECONNECTING && lb__conn.tp == NULL);
	lb__conn.state = CONN_IDLE;
	lb__conn.reclaiming = 0;
	snprintf(text, sizeof(text), "no lockbroker daemon answered on %s "
	    "within %g s after the connection was lost", lb__conn.socket,
	    RECONNECT_FOR_S);
	while ((q = TAILQ_FIRST(&lb__conn.pending)) != NULL) {
		lb__suspect_add(q);     /* judged at the next connect */
		if (q->abandoned) {
			TAILQ_REMOVE(&lb__conn.pending, q, entry);
			lb__req_free(q);
		} else
			lb__req_finish(q, q->fail, text);
	}
	lb__holds_give_up(text);
	lb__req_wake_all();
	lb__conn_unlock();
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
		if (lb__conn_open(lb__conn.socket, c, why, sizeof(why)) == -1)
			continue;
		if (reader_reclaim(c, m) == 0) {
			reader_resume(c, m);
			return 0;
		}
		lb__conn_opening_close(c);
	}
	return -1;
}

/* lb__reader_main: see reader.h.  Reads reply lines and hands them out;
 * on a loss, reconnects; after RECONNECT_FOR_S seconds without a daemon,
 * gives up and ends. */
void *
lb__reader_main(void *arg)
{
	struct lb__tp   *c = arg;
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
				lb__reqs_deliver(m, o);
		lb__holds_tell();       /* losses delivered: the hook told */
		/* Blocks until bytes come (no deadline; EINTR resumes). */
		if (got == 0 && lb__tp_fill(c, INFINITY, why, sizeof(why)) > 0)
			continue;
		/* EOF, a read error, or a line too long: the same remedy. */
		reader_lost(c);
		if (reader_reconnect(c, m) == -1)
			break;
		lb__holds_tell();       /* holds not given back */
	}
	reader_give_up();
	lb__holds_tell();
	free(o);
	free(m);
	lb__tp_free(c);
	return NULL;
}
